"""Thread scaling of matgrad against numpy: GEMM 2048³ float32 and the lecture's layer
(y = relu(x·w + b), N=64, D=M=4096, forward + backward) at 1, 2, 4, 8, 16 threads.

Each (library, thread count) runs in its own process, as in compare.py; the libraries alternate
and each figure is the median over the rounds. Prints a Markdown table.

    python benchmarks/thread_scaling.py --threads 1 2 4 8 16 --rounds 2
"""

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402

GEMM = "gemm f32 2048³ A·B"
LAYER = "lecture layer fwd+bwd f32"
ONLY = "^(gemm f32 2048³ A·B|lecture layer fwd\\+bwd f32)$"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)

    table = compare.cases(False, ONLY)
    flops = {name: work for name, (_, work, _) in table.items()}
    results = {}
    for t in args.threads:
        runs = {"matgrad": [], "numpy": []}
        for r in range(args.rounds):
            for lib in (("matgrad", "numpy") if r % 2 == 0 else ("numpy", "matgrad")):
                runs[lib].append(compare.run_worker(lib, False, t, ONLY))
        results[t] = {lib: {name: statistics.median(run[name] for run in rs) for name in table}
                      for lib, rs in runs.items()}
        print(f"{t} threads done", file=sys.stderr, flush=True)

    print(f"- {compare._cpu_model()}, {os.cpu_count()} logical CPUs; medians of {args.rounds} rounds")
    print()
    print("| threads | matgrad GEMM 2048³ GFLOP/s | numpy GEMM GFLOP/s | × vs numpy "
          "| matgrad layer ms | numpy layer ms | × vs numpy |")
    print("|---|---|---|---|---|---|---|")
    for t, res in results.items():
        mg_g, np_g = res["matgrad"][GEMM], res["numpy"][GEMM]
        mg_l, np_l = res["matgrad"][LAYER], res["numpy"][LAYER]
        print(f"| {t} | {flops[GEMM] / mg_g / 1e9:.0f} | {flops[GEMM] / np_g / 1e9:.0f} | {np_g / mg_g:.2f} "
              f"| {mg_l * 1e3:.2f} | {np_l * 1e3:.2f} | {np_l / mg_l:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
