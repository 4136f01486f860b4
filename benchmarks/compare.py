"""matgrad against numpy (and PyTorch when installed), same machine, same run.

Each library runs in its own process, so one library's spinning worker threads
(OpenMP, OpenBLAS) never steal cores from another's timings; the processes
alternate over several rounds and the table reports medians across rounds,
with the spread. Ratios > 1 mean matgrad is faster.

    python benchmarks/compare.py                 # all cases, print the table
    python benchmarks/compare.py --quick         # small sizes, one round (CI smoke run)
    python benchmarks/compare.py --write BENCHMARKS.md

numpy is timed with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed from its
environment (they pin an older, slower OpenBLAS kernel on some machines here);
the report names the kernel OpenBLAS picked.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

LIBRARIES = ("matgrad", "numpy", "torch")


# ---- cases -------------------------------------------------------------------
# Each case builds its inputs with numpy and returns a zero-argument callable
# that does the work once in the given library. `work` is FLOPs (or bytes for
# memory-bound cases) per call, used for the rate column.

def _gemm_case(m, n, k, dtype, trans_a=False, trans_b=False):
    def build(lib):
        import numpy as np
        rng = np.random.default_rng(0)
        a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
        b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
        c = np.empty((m, n), dtype)
        if lib == "matgrad":
            from matgrad import kernels
            return lambda: kernels.matmul(a, b, trans_a=trans_a, trans_b=trans_b, out=c)
        if lib == "numpy":
            opa, opb = (a.T if trans_a else a), (b.T if trans_b else b)
            return lambda: np.matmul(opa, opb, out=c)
        import torch
        ta, tb, tc = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(c)
        opa, opb = (ta.T if trans_a else ta), (tb.T if trans_b else tb)
        return lambda: torch.matmul(opa, opb, out=tc)
    return build, 2.0 * m * n * k, "GFLOP/s"


def _relu_forward_case(side):
    def build(lib):
        import numpy as np
        x = np.random.default_rng(0).standard_normal((side, side)).astype(np.float32)
        y = np.empty_like(x)
        if lib == "matgrad":
            from matgrad import kernels
            return lambda: kernels.relu_forward(x, out=y)
        if lib == "numpy":
            return lambda: np.maximum(x, 0, out=y)
        import torch
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        return lambda: torch.clamp_min(tx, 0, out=ty)
    return build, 2.0 * side * side * 4, "GB/s"


def _relu_backward_case(side):
    def build(lib):
        import numpy as np
        rng = np.random.default_rng(0)
        x = rng.standard_normal((side, side)).astype(np.float32)
        g = rng.standard_normal((side, side)).astype(np.float32)
        d = np.empty_like(x)
        if lib == "matgrad":
            from matgrad import kernels
            return lambda: kernels.relu_backward(g, x, out=d)
        if lib == "numpy":
            return lambda: np.multiply(g, x > 0, out=d)
        import torch
        tx, tg = torch.from_numpy(x), torch.from_numpy(g)
        return lambda: torch.ops.aten.threshold_backward(tg, tx, 0)
    return build, 3.0 * side * side * 4, "GB/s"


def _copy_case(side):
    """The streaming rate: a plain copy of the bytes a ReLU forward moves."""
    def build(lib):
        import numpy as np
        x = np.random.default_rng(0).standard_normal((side, side)).astype(np.float32)
        y = np.empty_like(x)
        return lambda: np.copyto(y, x)
    return build, 2.0 * side * side * 4, "GB/s"


def cases(quick: bool):
    import numpy as np
    s = 256 if quick else 1024
    n_lect, d_lect = (16, 512) if quick else (64, 4096)
    side = 512 if quick else 4096
    table = {
        f"gemm f32 {s}³": _gemm_case(s, s, s, np.float32),
        f"gemm f64 {s}³": _gemm_case(s, s, s, np.float64),
        "lecture y = x·w f32": _gemm_case(n_lect, d_lect, d_lect, np.float32),
        "lecture dx = dy·wᵀ f32": _gemm_case(n_lect, d_lect, d_lect, np.float32, trans_b=True),
        "lecture dw = xᵀ·dy f32": _gemm_case(d_lect, d_lect, n_lect, np.float32, trans_a=True),
        f"relu forward f32 {side}²": _relu_forward_case(side),
        f"relu backward f32 {side}²": _relu_backward_case(side),
        f"copy f32 {side}² (streaming rate)": _copy_case(side),
    }
    return table


# ---- worker: one library, one process ----------------------------------------------

def time_call(fn, min_calls=5, min_seconds=0.3):
    fn(), fn()  # warm up: page faults, thread start, caches
    times = []
    start = time.perf_counter()
    while len(times) < min_calls or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= 200:
            break
    return statistics.median(times)


def worker(lib: str, quick: bool, threads: int) -> None:
    if lib == "torch":
        import torch
        torch.set_num_threads(threads)
    if lib == "matgrad":
        import matgrad
        matgrad.set_num_threads(threads)
    results = {}
    for name, (build, _, _) in cases(quick).items():
        if name.startswith("copy") and lib != "numpy":
            continue  # the streaming reference is measured once
        results[name] = time_call(build(lib))
    print(json.dumps(results))


def library_env(lib: str, threads: int) -> dict:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(threads)
    env["OPENBLAS_NUM_THREADS"] = str(threads)
    if lib == "numpy":
        env.pop("OPENBLAS_CORETYPE", None)
        env.pop("OPENBLAS_L2_SIZE", None)
    return env


def run_worker(lib: str, quick: bool, threads: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", lib, "--threads", str(threads)]
    if quick:
        cmd.append("--quick")
    out = subprocess.run(cmd, env=library_env(lib, threads), capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{lib} worker failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---- driver ---------------------------------------------------------------------

def available_libraries():
    libs = ["matgrad", "numpy"]
    try:
        import torch  # noqa: F401
        libs.append("torch")
    except ImportError:
        pass
    return libs


def environment_summary(threads: int) -> list[str]:
    import numpy as np
    import matgrad
    lines = [
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs; "
        f"{_cpu_model()}",
        f"threads: {threads} per library; each library in its own process, processes alternated",
        f"matgrad {matgrad.__version__} (kernels: {matgrad.kernels.isa()}), numpy {np.__version__}"
        f" (OpenBLAS kernel: {_openblas_kernel(threads)})",
    ]
    try:
        import torch
        lines[-1] += f", torch {torch.__version__}"
    except ImportError:
        lines[-1] += ", torch not installed"
    return lines


def _cpu_model() -> str:
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        return platform.platform()
    return f"{fields.get('model name', 'unknown CPU')}, family {fields.get('cpu family', '?')}"


def _openblas_kernel(threads: int) -> str:
    code = ("import numpy\ntry:\n from threadpoolctl import threadpool_info\n"
            " print(next((i.get('architecture') for i in threadpool_info() if i['internal_api']=="
            "'openblas'), 'unknown'))\nexcept ImportError:\n print('unknown (threadpoolctl missing)')")
    out = subprocess.run([sys.executable, "-c", code], env=library_env("numpy", threads),
                         capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--write", metavar="FILE", help="also write the table as Markdown")
    parser.add_argument("--worker", choices=LIBRARIES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.quick, args.threads)
        return 0

    libs = available_libraries()
    runs = {lib: [] for lib in libs}
    for r in range(args.rounds):
        order = libs if r % 2 == 0 else libs[::-1]
        for lib in order:
            runs[lib].append(run_worker(lib, args.quick, args.threads))
            print(f"round {r + 1}/{args.rounds}: {lib} done", file=sys.stderr)

    table = cases(args.quick)
    header = ["case", *[f"{lib} ms" for lib in libs], "rate (matgrad)",
              *[f"× vs {lib}" for lib in libs if lib != "matgrad"]]
    rows = []
    for name, (_, work, unit) in table.items():
        med = {}
        spread = {}
        for lib in libs:
            samples = [run[name] for run in runs[lib] if name in run]
            if samples:
                med[lib] = statistics.median(samples)
                spread[lib] = (max(samples) - min(samples)) / med[lib] if len(samples) > 1 else 0.0
        cells = [name]
        for lib in libs:
            cells.append(f"{med[lib] * 1e3:.3f} (±{spread[lib] * 50:.0f}%)" if lib in med else "")
        main_lib = "matgrad" if "matgrad" in med else "numpy"
        cells.append(f"{work / med[main_lib] / 1e9:.1f} {unit}")
        for lib in libs:
            if lib == "matgrad":
                continue
            cells.append(f"{med[lib] / med['matgrad']:.2f}" if "matgrad" in med and lib in med else "")
        rows.append(cells)

    lines = environment_summary(args.threads)
    md = [f"- {line}" for line in lines] + [
        f"- medians of {args.rounds} rounds (each itself a median of repeated calls); "
        "± is half the spread between rounds", "",
        "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    md += ["| " + " | ".join(r) + " |" for r in rows]
    print("\n".join(md))
    if args.write:
        with open(args.write, "w") as f:
            f.write("# Benchmarks\n\nGenerated by `python benchmarks/compare.py --write "
                    f"{os.path.basename(args.write)}`.\n\n" + "\n".join(md) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
