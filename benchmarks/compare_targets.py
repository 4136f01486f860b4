"""Issue 9's speed targets, judged from one compare.py run's ratios (> 1: matgrad faster).

Every session on a new CPU has to answer the same question, "does this run meet the targets?",
and answered it by reading the table against the issue by hand; a case the table did not contain
(the transposed GEMM cases at 256³ and 512³ were missing from full runs until the twenty-seventh
session) then went unnoticed. Here each target names the cases it covers, and a target whose cases
the run did not measure says so instead of passing.

The targets (issue 9, "Targets", medians of ratios in one run, 2 threads; compare.py judges only
runs at 2 threads):
- the native kernel set and --isa avx2 / avx512: every GEMM case at 256³, 512³, 1024³ and 2048³
  (four transpose cases, both dtypes) ≥ 1.0× numpy; the lecture's three products each ≥ 1.1× numpy;
  the lecture layer forward+backward ≥ 1.3× numpy and ≥ 1.6× PyTorch; the MLP 784-512-256-10 step
  ≥ 1.2× PyTorch; off-grid shapes "as fast relative to numpy as the grid". That last one is read
  here as the grid's own bar, ≥ 1.0× (our reading, and the weaker one: the report also gives the
  off-grid cases' lowest ratio beside the grid's, so the stricter reading can be checked by eye).
- --isa baseline (against OpenBLAS's Nehalem kernel): "GEMM f32 and f64 ≥ 1.0× numpy", read as the
  same grid. A machine whose native set is the baseline gets the first bullet's targets.
Not judged here: "AVX-512 machines: no regression against BENCHMARKS.md" (a comparison across runs)
and the accuracy target (tests/test_gemm_accuracy.py).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # its sibling module, however it runs
    sys.path.insert(0, HERE)
from compare_cases import (GEMM_SIZES, LECTURE_LAYER, LECTURE_PRODUCTS, MLP_STEP,  # noqa: E402
                           OFF_GRID_SHAPES, TRANSPOSE_CASES, gemm_case_name, off_grid_case_name)


@dataclass(frozen=True)
class Target:
    """One bar: every case named must reach `at_least` against `against`."""
    name: str
    against: str  # "numpy" or "torch"
    at_least: float
    cases: tuple[str, ...]


@dataclass(frozen=True)
class Verdict:
    target: Target
    worst_case: str | None  # the case with the lowest ratio among those measured
    worst: float | None
    missing: tuple[str, ...]  # cases of the target this run has no ratio for against `against`

    @property
    def status(self) -> str:
        if self.worst is None:
            return "not measured"
        if self.worst < self.target.at_least:
            return "missed"
        return "met" if not self.missing else "met where measured"


def gemm_cases() -> tuple[str, ...]:
    """The grid's rows: every size, dtype and transpose case."""
    return tuple(gemm_case_name(d, s, ta, tb) for s in GEMM_SIZES for d in ("f32", "f64")
                 for ta, tb in TRANSPOSE_CASES)


def off_grid_cases() -> tuple[str, ...]:
    return tuple(off_grid_case_name(d, *shape) for shape in OFF_GRID_SHAPES for d in ("f32", "f64"))


GRID = "GEMM 256³, 512³, 1024³, 2048³, four transpose cases, f32 and f64"
OFF_GRID = "off-grid GEMM shapes, at the grid's bar (our reading of \"as fast as the grid\")"


def targets(kernel_set: str, forced: bool) -> list[Target]:
    """The targets for a run of matgrad's `kernel_set` (config()["isa"]), `forced` with --isa or
    native: a forced baseline set has only the GEMM bar."""
    grid = Target(GRID, "numpy", 1.0, gemm_cases())
    if kernel_set == "baseline" and forced:
        return [grid]
    return [
        grid,
        Target(OFF_GRID, "numpy", 1.0, off_grid_cases()),
        Target("the lecture's three products", "numpy", 1.1, LECTURE_PRODUCTS),
        Target("the lecture layer forward+backward", "numpy", 1.3, (LECTURE_LAYER,)),
        Target("the lecture layer forward+backward", "torch", 1.6, (LECTURE_LAYER,)),
        Target("the MLP 784-512-256-10 training step", "torch", 1.2, (MLP_STEP,)),
    ]


def judge(targets_: list[Target], ratios: dict[str, dict[str, float]]) -> list[Verdict]:
    """ratios: case -> library -> that library's time over matgrad's (summarize()'s ratios)."""
    verdicts = []
    for t in targets_:
        measured = {c: ratios[c][t.against] for c in t.cases
                    if c in ratios and t.against in ratios[c]}
        missing = tuple(c for c in t.cases if c not in measured)
        worst_case = min(measured, key=measured.__getitem__) if measured else None
        verdicts.append(Verdict(t, worst_case, measured.get(worst_case), missing))
    return verdicts


def shown(ratio: float, bar: float) -> str:
    """`ratio` with 3 decimals, or as many more as it takes to print on its side of `bar`: a
    miss at 1.0996 against 1.1 must not read 1.100."""
    for digits in range(3, 10):
        text = f"{ratio:.{digits}f}"
        if (float(text) >= bar) == (ratio >= bar):
            return text
    return repr(ratio)


def report(verdicts: list[Verdict]) -> list[str]:
    """One Markdown bullet per target: its status, its lowest case and ratio, what it lacked."""
    lines = []
    for v in verdicts:
        t = v.target
        library = "PyTorch" if t.against == "torch" else t.against
        line = f"- {v.status}: {t.name} ≥ {t.at_least:.1f}× {library}"
        if v.worst is not None:
            ratio = shown(v.worst, t.at_least)
            line += f"; lowest {ratio} ({v.worst_case})" if len(t.cases) > 1 else f"; {ratio}"
        if v.missing and v.worst is not None:
            line += (f"; {len(v.missing)} of its {len(t.cases)} cases not measured against "
                     f"{library} in this run")
        lines.append(line)
    return lines
