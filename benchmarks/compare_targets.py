"""Issue 9's speed targets, judged from one compare.py run's ratios (> 1: matgrad faster).

Every session on a new CPU has to answer the same question, "does this run meet the targets?",
and answered it by reading the table against the issue by hand; a case the table did not contain
(the transposed GEMM cases at 256³ and 512³ were missing from full runs until the twenty-seventh
session) then went unnoticed. Here each target names the cases it covers, and a target whose cases
the run did not measure says so instead of passing.

The targets (issue 9, "Targets", medians of ratios in one run, 2 threads):
- native ISA and --isa avx2 / avx512: every GEMM case at 256³ to 2048³ (four transpose cases, both
  dtypes) ≥ 1.0× numpy; the lecture's three products each ≥ 1.1× numpy; the lecture layer
  forward+backward ≥ 1.3× numpy and ≥ 1.6× PyTorch; the MLP 784-512-256-10 step ≥ 1.2× PyTorch;
  off-grid shapes "as fast relative to numpy as the grid", read here as the grid's own bar, ≥ 1.0×.
- the baseline kernel set (--isa baseline, against OpenBLAS's Nehalem kernel): the GEMM cases
  ≥ 1.0× numpy (the issue sets nothing else for it).
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
                           OFF_GRID_PREFIX, TRANSPOSE_CASES, gemm_case_name)


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
    missing: tuple[str, ...]  # cases of the target this run did not measure

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


def targets(kernel_set: str, case_names: list[str]) -> list[Target]:
    """The targets for a run of matgrad's `kernel_set` (config()["isa"]: "avx512", "avx2",
    "baseline", "neon"): the baseline set has only the GEMM bar. The off-grid target takes the
    off-grid rows of `case_names` (the run's table), whose shapes compare_cases.py chooses."""
    grid = Target("GEMM 256³–2048³, four transpose cases, f32 and f64", "numpy", 1.0, gemm_cases())
    if kernel_set == "baseline":
        return [grid]
    off_grid = tuple(n for n in case_names if n.startswith(OFF_GRID_PREFIX))
    return [
        grid,
        Target("off-grid GEMM shapes, as the grid", "numpy", 1.0, off_grid),
        Target("the lecture's three products", "numpy", 1.1, LECTURE_PRODUCTS),
        Target("the lecture layer forward+backward", "numpy", 1.3, (LECTURE_LAYER,)),
        Target("the lecture layer forward+backward", "torch", 1.6, (LECTURE_LAYER,)),
        Target("the MLP 784-512-256-10 training step", "torch", 1.2, (MLP_STEP,)),
    ]


def judge(targets_: list[Target], ratios: dict[str, dict[str, float]]) -> list[Verdict]:
    """ratios: case -> library -> matgrad's speed over that library's (summarize()'s ratios)."""
    verdicts = []
    for t in targets_:
        measured = {c: ratios[c][t.against] for c in t.cases
                    if c in ratios and t.against in ratios[c]}
        missing = tuple(c for c in t.cases if c not in measured)
        worst_case = min(measured, key=measured.__getitem__) if measured else None
        verdicts.append(Verdict(t, worst_case, measured.get(worst_case), missing))
    return verdicts


def report(verdicts: list[Verdict]) -> list[str]:
    """One Markdown bullet per target: its status, its worst case and ratio, what was missing."""
    lines = []
    for v in verdicts:
        t = v.target
        library = "PyTorch" if t.against == "torch" else t.against
        line = f"- {v.status}: {t.name} ≥ {t.at_least:.1f}× {library}"
        if v.worst is not None:
            lowest = f"{v.worst:.3f} ({v.worst_case})"
            line += f"; lowest {lowest}" if len(t.cases) > 1 else f"; {v.worst:.3f}"
        if v.missing and v.worst is not None:
            line += f"; {len(v.missing)} of its {len(t.cases)} cases not in this run"
        lines.append(line)
    return lines
