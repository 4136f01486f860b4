"""Thread scaling of matgrad against numpy (and PyTorch, when installed): GEMM 2048³ float32, the
lecture's layer (y = relu(x·w + b), N=64, D=M=4096, forward + backward) and the MLP
784-512-256-10 training step, at 1, 2, 4, 8, 16 threads.

Each (library, thread count) runs in its own process, as in compare.py (its cases and turns:
compare_cases.py, compare_turns.py); the libraries take short turns at each case and each figure is
the median over the turns (rounds × compare_turns.TURNS); a ratio is the ratio of two such medians.
Prints one Markdown table per case.

    python benchmarks/thread_scaling.py --threads 1 2 4 8 16 --rounds 2
"""

import argparse
import os
import re
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402
import compare_cases  # noqa: E402
import compare_turns  # noqa: E402

GEMM = "gemm f32 2048³ A·B"
LAYER = "lecture layer fwd+bwd f32"
MLP = "train step MLP 784-512-256-10, batch 128"
CASES = (GEMM, LAYER, MLP)
ONLY = "^(" + "|".join(re.escape(name) for name in CASES) + ")$"


def format_tables(results: dict, flops: dict, libraries: list) -> list:
    """Markdown lines: one table per case, a row per thread count; GEMM in GFLOP/s, the others
    in ms. results: {threads: {library: {case: seconds}}}; flops: {case: floating-point ops}.
    The ratio columns are each other library's time over matgrad's (above 1: matgrad faster)."""
    others = [lib for lib in libraries if lib != "matgrad"]
    lines = []
    for case in CASES:
        rate = case == GEMM
        unit = "GFLOP/s" if rate else "ms"
        lines += [f"{case} ({unit})", ""]
        lines.append("| threads | " + " | ".join(libraries) + " | "
                     + " | ".join(f"× vs {lib}" for lib in others) + " |")
        lines.append("|---" * (1 + len(libraries) + len(others)) + "|")
        for t, by_lib in results.items():
            seconds = {lib: by_lib[lib][case] for lib in libraries if case in by_lib[lib]}
            cells = [(f"{flops[case] / seconds[lib] / 1e9:.0f}" if rate else f"{seconds[lib] * 1e3:.2f}")
                     if lib in seconds else "—" for lib in libraries]
            ratios = [f"{seconds[lib] / seconds['matgrad']:.2f}"
                      if lib in seconds and "matgrad" in seconds else "—" for lib in others]
            lines.append(f"| {t} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
        lines.append("")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    if args.rounds < 1 or any(t < 1 for t in args.threads):
        parser.error("--rounds and every --threads value must be at least 1")

    table = compare_cases.cases(False, ONLY)
    flops = {name: work for name, (_, work, _) in table.items()}
    libraries = compare.available_libraries()
    results = {}
    for t in args.threads:
        runs = compare_turns.measure(libraries, list(table), args.rounds, False, t, ONLY, None)
        results[t] = {lib: {name: statistics.median(run[name] for run in rs)
                            for name in table if all(name in run for run in rs)}
                      for lib, rs in runs.items()}
        print(f"{t} threads done", file=sys.stderr, flush=True)

    print(f"- {compare._cpu_model()}, {os.cpu_count()} logical CPUs; medians of {args.rounds} rounds"
          f" of {compare_turns.TURNS} turns")
    print()
    print("\n".join(format_tables(results, flops, libraries)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
