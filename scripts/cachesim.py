#!/usr/bin/env python3
"""Data moved between the caches by one GEMM, matgrad's against numpy's, in caches of another CPU.

Runs each product under valgrind's cachegrind, which simulates an L1d and one level behind it
(given here as the L2), with one thread, and prints per multiply-add: instructions, bytes moved
from L2 into L1 (L1 misses × 64) and from beyond L2 into L2 (L2 misses × 64). Each product runs
in two processes, called once after a warm-up call and then 1 + R times (R about 10⁸ over the
product's multiply-adds, from 1 to 1000), and the difference over R is one call: what the
start-up and the operands' set-up cost cancels out (PYTHONHASHSEED is fixed for that).

    scripts/cachesim.py [--l1d BYTES,WAYS] [--l2 BYTES,WAYS] [--isa NAME]
                        [--blocking kc=..,nc=..,mc=..] [--coretype NAME] [--libs matgrad,numpy]
                        [--jobs N] CASE [CASE ...]

CASE is "f32|f64 M N K [AB|AtB|ABt|AtBt]", e.g. "f64 48 2048 2048 AB". matgrad runs on --isa
(default avx2), numpy on OpenBLAS's --coretype kernel, by default the one compare.py --isa pairs
with that ISA (avx2: Haswell, baseline: Nehalem; benchmarks/compare_turns.py, OPENBLAS_CORETYPES).
What this measures is traffic, not time: cachegrind models no prefetching (valgrind decodes prefetch
instructions as no-ops) and no bandwidth, and its caches are LRU with no L3; it counts fills only (a
written line costs nothing until it must be read again). It answers whether a blocking or a path
moves more data than another on a CPU that is not at hand (docs/tuning.md, "Measuring a change in
one process").

Under valgrind the CPU reports valgrind's own cache sizes (32 KiB L1d, 256 KiB L2 on x86-64):
matgrad derives its blocks and paths from those, not from --l1d / --l2; the script prints the
caches, blocks and path matgrad used. --blocking passes MATGRAD_BLOCKING to matgrad. valgrind runs
no AVX-512 code, so --isa is avx2 or baseline on x86-64, and --coretype an OpenBLAS kernel without
AVX-512 (Haswell, Zen, Nehalem).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, NamedTuple, Tuple

LINE = 64
# cachegrind's summary lines, "==PID== I   refs:   1,234": the program's own output cannot match.
COUNTERS = {"instructions": r"^==\d+== I\s+refs:\s+([\d,]+)",
            "l1_misses": r"^==\d+== D1\s+misses:\s+([\d,]+)",
            "l2_misses": r"^==\d+== LLd\s+misses:\s+([\d,]+)"}
LAYOUTS = {"AB": (False, False), "AtB": (True, False), "ABt": (False, True), "AtBt": (True, True)}
BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))), "benchmarks")


def default_coretype(isa: str) -> str:
    """numpy's OpenBLAS kernel for matgrad's `isa`, the pair compare.py --isa measures."""
    if BENCHMARKS not in sys.path:
        sys.path.insert(0, BENCHMARKS)
    try:
        from compare_turns import OPENBLAS_CORETYPES
    except ImportError:
        raise ValueError(f"--isa {isa}: the kernel paired with it is read from {BENCHMARKS}"
                         "/compare_turns.py, which is missing; give --coretype") from None
    try:
        return OPENBLAS_CORETYPES[isa]
    except KeyError:
        raise ValueError(f"--isa {isa}: no OpenBLAS kernel is paired with it; give --coretype") from None


class Case(NamedTuple):
    dtype: str
    m: int
    n: int
    k: int
    layout: str

    def label(self) -> str:
        return f"{self.dtype} {self.m}×{self.n}×{self.k} {self.layout}"


def parse_case(text: str) -> Case:
    parts = text.split()
    if len(parts) not in (4, 5) or parts[0] not in ("f32", "f64"):
        raise ValueError(f"case {text!r}: expected 'f32|f64 M N K [AB|AtB|ABt|AtBt]'")
    layout = parts[4] if len(parts) == 5 else "AB"
    if layout not in LAYOUTS:
        raise ValueError(f"case {text!r}: layout {layout!r} is not one of {', '.join(LAYOUTS)}")
    try:
        m, n, k = (int(p) for p in parts[1:4])
    except ValueError:
        raise ValueError(f"case {text!r}: M, N and K must be integers") from None
    if min(m, n, k) < 1:
        raise ValueError(f"case {text!r}: M, N and K must be positive")
    return Case(parts[0], m, n, k, layout)


def parse_cache(text: str, option: str) -> Tuple[int, int]:
    try:
        size, ways = (int(p) for p in text.split(","))
    except ValueError:
        raise ValueError(f"{option} {text!r}: expected BYTES,WAYS") from None
    if ways <= 0:
        raise ValueError(f"{option} {text!r}: WAYS must be positive")
    sets = size // (ways * LINE)
    if size <= 0 or size % (ways * LINE) or sets & (sets - 1):
        raise ValueError(f"{option} {text!r}: the size must be WAYS × 64 × a power of two "
                         "(cachegrind simulates a power-of-two number of sets)")
    return size, ways


def parse_counts(stderr: str) -> Dict[str, int]:
    """cachegrind's summary lines -> {counter: count}."""
    counts = {}
    for name, pattern in COUNTERS.items():
        found = re.search(pattern, stderr, re.M)
        if found is None:
            raise RuntimeError(f"cachegrind printed no {name} line:\n{stderr[-2000:]}")
        counts[name] = int(found.group(1).replace(",", ""))
    return counts


def extra_calls(case: Case) -> int:
    """Calls the second run makes beyond the first's: about 10⁸ multiply-adds' worth (1 to 1000), so
    that what differs between two runs besides the product (their memory layout) stays small per
    call."""
    return max(1, min(1000, round(1e8 / (case.m * case.n * case.k))))


def per_multiply_add(once: Dict[str, int], more: Dict[str, int], case: Case, extra: int) -> Dict[str, float]:
    """One call's counts (the second run's, `extra` calls more, minus the first's) per multiply-add."""
    fmas = case.m * case.n * case.k * extra
    one = {name: more[name] - once[name] for name in COUNTERS}
    return {"instructions": one["instructions"] / fmas,
            "l2_to_l1_bytes": one["l1_misses"] * LINE / fmas,
            "to_l2_bytes": one["l2_misses"] * LINE / fmas}


def worker(lib: str, case: Case, calls: int) -> None:
    """Runs inside cachegrind: set-up, one warm-up call, then `calls` calls; checks the result
    (Freivalds: C·x against A·(B·x) for a random x, in float64, so that the check costs little
    beside the product)."""
    import numpy as np
    dtype = np.float32 if case.dtype == "f32" else np.float64
    trans_a, trans_b = LAYOUTS[case.layout]
    rng = np.random.default_rng(0)
    a = rng.standard_normal((case.k, case.m) if trans_a else (case.m, case.k)).astype(dtype)
    b = rng.standard_normal((case.n, case.k) if trans_b else (case.k, case.n)).astype(dtype)
    a_op: Any = a.T if trans_a else a
    b_op: Any = b.T if trans_b else b
    product: Callable[[Any, Any], Any]
    if lib == "matgrad":
        import matgrad
        matgrad.kernels.set_num_threads(1)
        config = matgrad.kernels.config()
        print(f"matgrad saw: isa {config['isa']}, caches {config['caches']}, "
              f"blocking {config['blocking'][case.dtype.replace('f', 'float')]}, "
              f"path {matgrad.kernels.gemm_path(a_op, b_op)}", file=sys.stderr)
        product = matgrad.kernels.matmul
    else:
        product = np.matmul
    c = product(a_op, b_op)
    for _ in range(calls):
        c = product(a_op, b_op)
    x = rng.standard_normal(case.n)
    exact = a_op.astype(np.float64) @ (b_op.astype(np.float64) @ x)
    error = float(np.abs(c.astype(np.float64) @ x - exact).max() / max(1.0, float(np.abs(exact).max())))
    if error > (1e-3 if dtype == np.float32 else 1e-10):
        raise SystemExit(f"{lib} {case.label()}: relative error {error:.2e}")


def simulate(lib: str, case: Case, calls: int, args: argparse.Namespace) -> Tuple[Dict[str, int], str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", PYTHONHASHSEED="0",
               MATGRAD_ISA=args.isa)
    if args.coretype:  # None where numpy does not run
        env["OPENBLAS_CORETYPE"] = args.coretype
    if args.blocking:
        env["MATGRAD_BLOCKING"] = args.blocking
    command = ["valgrind", "--tool=cachegrind", "--cache-sim=yes",
               f"--D1={args.l1d[0]},{args.l1d[1]},{LINE}", f"--LL={args.l2[0]},{args.l2[1]},{LINE}",
               "--cachegrind-out-file=/dev/null", sys.executable, os.path.abspath(__file__), "--worker",
               lib, str(calls), case.dtype, str(case.m), str(case.n), str(case.k), case.layout]
    run = subprocess.run(command, env=env, capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"{lib} {case.label()} failed under cachegrind:\n{run.stderr[-3000:]}")
    saw = next((line for line in run.stderr.splitlines() if line.startswith("matgrad saw:")), "")
    return parse_counts(run.stderr), saw


def measure(job: Tuple[str, Case], args: argparse.Namespace) -> Tuple[Dict[str, float], str]:
    lib, case = job
    extra = extra_calls(case)
    once, saw = simulate(lib, case, 1, args)
    more, _ = simulate(lib, case, 1 + extra, args)
    return per_multiply_add(once, more, case, extra), saw


def main(argv: List[str]) -> int:
    if argv[:1] == ["--worker"]:
        lib, calls, dtype, m, n, k, layout = argv[1:8]
        worker(lib, Case(dtype, int(m), int(n), int(k), layout), int(calls))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cases", nargs="+", help="'f32|f64 M N K [AB|AtB|ABt|AtBt]'")
    parser.add_argument("--l1d", default="32768,8", help="L1d BYTES,WAYS (default Zen 3's 32768,8)")
    parser.add_argument("--l2", default="524288,8", help="L2 BYTES,WAYS (default Zen 3's 524288,8)")
    parser.add_argument("--isa", default="avx2", choices=("avx2", "baseline", "neon", "avx512"),
                        help="MATGRAD_ISA for matgrad (default avx2)")
    parser.add_argument("--coretype", help="OPENBLAS_CORETYPE for numpy (default: the kernel paired "
                        "with --isa, Haswell for avx2, Nehalem for baseline)")
    parser.add_argument("--blocking", default="", help="MATGRAD_BLOCKING for matgrad")
    parser.add_argument("--libs", default="matgrad,numpy", help="comma-separated: matgrad, numpy")
    parser.add_argument("--jobs", type=int, default=2, help="simulations at once (default 2)")
    args = parser.parse_args(argv)
    try:
        cases = [parse_case(text) for text in args.cases]
        args.l1d, args.l2 = parse_cache(args.l1d, "--l1d"), parse_cache(args.l2, "--l2")
        libs = args.libs.split(",")
        for lib in libs:
            if lib not in ("matgrad", "numpy"):
                raise ValueError(f"--libs: {lib!r} is neither matgrad nor numpy")
        if args.isa == "avx512":
            raise ValueError("--isa avx512: valgrind runs no AVX-512 code (avx2 or baseline)")
        if args.jobs < 1:
            raise ValueError(f"--jobs {args.jobs}: at least 1")
        if args.coretype is None and "numpy" in libs:
            args.coretype = default_coretype(args.isa)
    except ValueError as error:
        parser.error(str(error))
    if shutil.which("valgrind") is None:
        parser.error("needs valgrind (its cachegrind tool) on PATH")
    jobs = [(lib, case) for case in cases for lib in libs]
    try:
        with ThreadPoolExecutor(args.jobs) as pool:
            results = list(pool.map(lambda job: measure(job, args), jobs))
    except RuntimeError as error:
        print(f"cachesim.py: {error}", file=sys.stderr)
        return 1
    kernels = {"matgrad": f"matgrad on MATGRAD_ISA={args.isa}",
               "numpy": f"numpy on OPENBLAS_CORETYPE={args.coretype}"}
    print(f"L1d {args.l1d[0] // 1024} KiB {args.l1d[1]}-way, L2 {args.l2[0] // 1024} KiB "
          f"{args.l2[1]}-way; one thread; per multiply-add; " + ", ".join(kernels[lib] for lib in libs))
    for (lib, case), (result, saw) in zip(jobs, results):
        if saw:
            print(f"  {saw}")
        print(f"{case.label():28s} {lib:8s} instructions {result['instructions']:6.3f}  "
              f"L2->L1 {result['l2_to_l1_bytes']:6.3f} B  ->L2 {result['to_l2_bytes']:7.4f} B")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
