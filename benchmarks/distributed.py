"""Data-parallel training step over MPI: 1 rank against N ranks, one thread each.

    python benchmarks/distributed.py [--ranks 1,2] [--rounds 3] [--steps 40] [--write BENCHMARKS.md]

The step is the 784-512-256-10 MLP (float32) on a global batch of 256 random images: forward,
backward, ``mg.distributed.allreduce_gradients`` and an SGD step. With N ranks each rank takes 256/N
rows. Every rank runs one kernel thread (and one OpenBLAS thread), so N ranks use N cores: the
speedup of N ranks over 1 is what data parallelism buys on N cores, and the scaling efficiency is
that speedup divided by N. The allreduce time is measured inside the step on rank 0 (it includes
waiting for the slower rank), and again by itself after a barrier (the communication alone). Each rank count runs in its own ``mpiexec``; rounds alternate them
and the figures are medians over rounds. Needs ``pip install 'matgrad[mpi]'``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIZES = [784, 512, 256, 10]
GLOBAL_BATCH = 256


def worker(steps: int, threads: int) -> None:
    import numpy as np

    import matgrad as mg
    from matgrad import distributed as dist

    rank, world = dist.init(threads=threads)
    rng = np.random.default_rng(rank)
    local = GLOBAL_BATCH // world
    x = rng.standard_normal((local, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], local)
    mg.manual_seed(0)
    model = mg.nn.MLP(SIZES, dtype=np.float32)
    dist.broadcast_parameters(model)
    opt = mg.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step() -> float:
        opt.zero_grad()
        mg.cross_entropy(model(mg.tensor(x)), y).backward()
        t0 = time.perf_counter()
        dist.allreduce_gradients(model)
        reduce_time = time.perf_counter() - t0
        opt.step()
        return reduce_time

    for _ in range(5):
        step()
    dist.barrier()
    start = time.perf_counter()
    reduce_times = [step() for _ in range(steps)]
    dist.barrier()
    elapsed = time.perf_counter() - start
    alone = []  # the allreduce by itself: all ranks start it together, so no one waits
    for _ in range(max(steps // 2, 5)):
        dist.barrier()
        t0 = time.perf_counter()
        dist.allreduce_gradients(model)
        alone.append(time.perf_counter() - t0)
    if rank == 0:
        print(json.dumps({"ranks": world, "step_ms": 1e3 * elapsed / steps,
                          "allreduce_ms": 1e3 * statistics.median(reduce_times),
                          "allreduce_alone_ms": 1e3 * statistics.median(alone)}))


def _mpiexec() -> str:
    beside = Path(sys.executable).parent / "mpiexec"
    found = str(beside) if beside.exists() else shutil.which("mpiexec")
    if found is None:
        raise SystemExit("benchmarks/distributed.py needs mpiexec: pip install 'matgrad[mpi]'")
    return found


def run(ranks: int, steps: int, threads: int = 1) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    command = [_mpiexec(), "-n", str(ranks), "--oversubscribe", "--allow-run-as-root",
               sys.executable, str(Path(__file__).resolve()), "--worker", "--steps", str(steps),
               "--threads", str(threads)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{ranks} ranks failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ranks", default="1,2", help="rank counts to compare, the first is the baseline (default 1,2)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=40, help="timed steps per run (default 40)")
    p.add_argument("--quick", action="store_true", help="one round of 5 steps: a smoke run")
    p.add_argument("--write", metavar="FILE", help="also write the table as this CPU's section of FILE")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args.steps, args.threads)
        return 0
    if args.quick:
        args.rounds, args.steps = 1, 5
    counts = [int(r) for r in args.ranks.split(",")]
    widest = max(counts)
    results: dict = {r: [] for r in counts}
    results["threads"] = []  # for comparison: one process using the same cores through threads
    for i in range(args.rounds):
        for r in counts:
            results[r].append(run(r, args.steps))
        if widest > 1:
            results["threads"].append(run(1, args.steps, threads=widest))
        print(f"round {i + 1}/{args.rounds} done", file=sys.stderr)

    sys.path.insert(0, str(HERE))
    from compare import _cpu_model, write_sections

    def median(r, key: str) -> float:
        return statistics.median(x[key] for x in results[r])

    base = median(counts[0], "step_ms")
    lines = [f"`python benchmarks/distributed.py --rounds {args.rounds} --steps {args.steps}`", "",
             f"- machine: {os.cpu_count()} logical CPUs; {_cpu_model()}",
             f"- MLP {'-'.join(map(str, SIZES))} float32, global batch {GLOBAL_BATCH} split over the ranks, SGD; "
             "one kernel thread and one OpenBLAS thread per rank; Open MPI on one machine (shared memory)",
             f"- medians of {args.rounds} rounds of {args.steps} steps; efficiency = speedup / ranks, "
             f"against {counts[0]} rank{'s' if counts[0] > 1 else ''}", "",
             "| ranks | step ms | allreduce ms in the step | allreduce alone ms | speedup | scaling efficiency |",
             "|---|---|---|---|---|---|"]
    for r in counts:
        step = median(r, "step_ms")
        speedup = base / step
        lines.append(f"| {r} | {step:.2f} | {median(r, 'allreduce_ms'):.3f} | "
                     f"{median(r, 'allreduce_alone_ms'):.3f} | {speedup:.2f} | "
                     f"{100 * speedup * counts[0] / r:.0f}% |")
    if widest > 1:
        step = median("threads", "step_ms")
        lines.append(f"| 1 rank × {widest} threads (no MPI traffic) | {step:.2f} |  |  | {base / step:.2f} | "
                     f"{100 * base / step * counts[0] / widest:.0f}% |")
    print("\n".join(lines))
    if args.write:
        write_sections(args.write, f"## {_cpu_model()} · distributed (MPI)", lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
