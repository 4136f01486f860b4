"""compare.py's timing: one worker process per library, kept up for the whole run, the libraries
taking short turns at each case one after another (the first rotating), each turn starting once
the last library's threads have stopped spinning; and the medians and ratios over the turns.
Also run as a script, it is a worker: `compare_turns.py --worker LIB [--threads N] [--quick]
[--only REGEX]` reads case names on stdin and answers each with a JSON line (see worker)."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # compare_cases, however this runs
    sys.path.insert(0, HERE)
from compare_cases import cases  # noqa: E402

LIBRARIES = ("matgrad", "numpy", "torch")


# ---- worker: one library, one process ----------------------------------------------

# One turn of a library at a case: a call to bring the caches back after the other libraries'
# turns, then calls for at least this long (at least one); the turn reports their median.
TURN_SECONDS = 0.1


def time_call(fn, min_seconds: float = TURN_SECONDS) -> float:
    """One turn: a warm-up call, then calls for min_seconds (at least one, at most 200); the
    median seconds per call."""
    fn()
    times: list[float] = []
    start = time.perf_counter()
    while not times or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= 200:
            break
    return statistics.median(times)


def worker(lib: str, quick: bool, threads: int, only: str | None = None) -> None:
    """Takes turns at the cases named on stdin, one name per line, in this library: prints the
    turn's seconds per call (null where the library has no version of the case) as a JSON
    line. A case is built at its first turn and kept while the following turns are at it.
    Prints "ready" first, once the libraries are imported; anything else the libraries print
    goes to stderr, so that stdout carries only the replies."""
    replies, sys.stdout = sys.stdout, sys.stderr
    if lib == "torch":
        import torch
        torch.set_num_threads(threads)
    if lib == "matgrad":
        import matgrad
        matgrad.set_num_threads(threads)
    table = cases(quick, only)
    print(json.dumps("ready"), file=replies, flush=True)
    built, fn = None, None
    for line in sys.stdin:
        name = line.rstrip("\n")
        if name != built:
            fn = None  # the previous case's arrays go before the next case is built
            built = name
            if not (name.startswith("copy") and lib != "numpy"):  # the streaming reference: numpy only
                fn = table[name][0](lib)  # None: this library has no version of the case
            if fn is not None:
                fn()  # page faults, thread start
        print(json.dumps(None if fn is None else time_call(fn)), file=replies, flush=True)


# OpenBLAS's kernel for each of matgrad's instruction sets (OPENBLAS_CORETYPE).
OPENBLAS_CORETYPES = {"avx2": "Haswell", "avx512": "SkylakeX", "baseline": "Nehalem"}
# PyTorch's limit for each: ATen's kernels, MKL's GEMM and oneDNN's primitives. Without it
# PyTorch runs its AVX-512 code in an --isa avx2 run (lecture y = x·w: 8 against 14 ms here).
TORCH_ISA_ENV = {
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "avx512": {"ATEN_CPU_CAPABILITY": "avx512", "MKL_ENABLE_INSTRUCTIONS": "AVX512",
               "ONEDNN_MAX_CPU_ISA": "AVX512_CORE"},
    "baseline": {"ATEN_CPU_CAPABILITY": "default", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
                 "ONEDNN_MAX_CPU_ISA": "SSE41"},
}


def library_env(lib: str, threads: int, isa: str | None = None) -> dict:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(threads)
    env["OPENBLAS_NUM_THREADS"] = str(threads)
    if lib == "numpy":
        env.pop("OPENBLAS_CORETYPE", None)
        env.pop("OPENBLAS_L2_SIZE", None)
        if isa:
            env["OPENBLAS_CORETYPE"] = OPENBLAS_CORETYPES[isa]
    if lib == "matgrad" and isa:
        env["MATGRAD_ISA"] = isa
    if lib == "torch" and isa:
        env.update(TORCH_ISA_ENV[isa])
    return env


# After a library's calls its threads go on spinning for a while before they sleep: OpenMP's
# spin-wait for milliseconds, OpenBLAS's idle loop for up to 2^28 cycles (0.1 s and more).
# Threads still spinning while the next library runs take its cores: in one process on the
# model 207 Xeon, matgrad's AVX2 y = x·w ran 0.64× OpenBLAS with 50 ms between the calls and
# 1.07× with 400 ms. So the next turn waits until the last library's process is quiet.
QUIET_WINDOW = 0.01     # s: how long a process is watched at a time
QUIET_FRACTION = 0.05   # quiet: less than this share of one core used over a window
QUIET_LIMIT = 1.0       # s: the most a turn waits for the last one's threads
SETTLE_SECONDS = 0.3    # the wait where a process's CPU time cannot be read (not Linux)


def process_cpu_seconds(pid: int) -> float | None:
    """CPU time used so far by all threads of process `pid` (Linux's schedstat, in ns), or None
    where it cannot be read."""
    total = 0
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return total / 1e9


def wait_until_quiet(cpu_seconds, window: float = QUIET_WINDOW, fraction: float = QUIET_FRACTION,
                     limit: float = QUIET_LIMIT, clock=time.perf_counter, sleep=time.sleep) -> float:
    """Waits until `cpu_seconds()` (a process's CPU time, or None if unknown) grows at under
    `fraction` of a core over a `window` (a read that fails or goes backwards, as when a thread
    ends between reads, starts the window again), or until `limit` seconds have passed; where
    it is unknown from the start, sleeps SETTLE_SECONDS. Returns the seconds waited."""
    start = clock()
    before, since = cpu_seconds(), start
    if before is None:
        sleep(SETTLE_SECONDS)
        return clock() - start
    while clock() - start < limit:
        sleep(window)
        now, at = cpu_seconds(), clock()
        if now is None or now < before:  # a thread ended between reads: read again
            before, since = cpu_seconds(), clock()
            if before is None:  # the process has gone
                break
            continue
        if now - before < fraction * (at - since):
            break
        before, since = now, at
    return clock() - start


class Worker:
    """One library's worker process, kept for the whole run; `time(name)` has it time a case,
    `settle()` waits until its threads have stopped spinning."""

    def __init__(self, lib: str, quick: bool, threads: int, only: str | None, isa: str | None):
        import tempfile
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", lib, "--threads", str(threads)]
        if quick:
            cmd.append("--quick")
        if only:
            cmd += ["--only", only]
        self.lib = lib
        self.started = False  # its "ready" line read
        self.stderr = tempfile.TemporaryFile(mode="w+", errors="replace")  # read back on failure
        self.proc = subprocess.Popen(cmd, env=library_env(lib, threads, isa), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.stderr, text=True)

    def _reply(self, what: str):
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        try:
            if line:
                return json.loads(line)
        except json.JSONDecodeError:
            pass
        self.proc.kill()
        self.proc.wait()
        self.stderr.seek(0)
        raise RuntimeError(f"{self.lib} worker failed on {what} (its reply: {line!r}):\n{self.stderr.read()}")

    def ready(self) -> None:
        """Waits until the worker has imported its library (see start_workers)."""
        if not self.started:
            self._reply("start-up")
            self.started = True

    def time(self, name: str) -> float | None:
        assert self.proc.stdin is not None
        self.ready()
        try:
            self.proc.stdin.write(name + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass  # the reply is then empty, and _reply says what the worker printed
        return self._reply(repr(name))

    def settle(self) -> float:
        return wait_until_quiet(lambda: process_cpu_seconds(self.proc.pid))

    def close(self) -> None:
        if self.proc.stdin:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:  # the worker has already gone
                pass
        self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        self.stderr.close()


def start_workers(libs: list, quick: bool, threads: int, only: str | None, isa: str | None) -> dict:
    """One worker per library, all started together; returns once every one has imported its
    library, so that no timing overlaps another worker's start-up. On failure none is left."""
    workers: dict = {}
    try:
        for lib in libs:
            workers[lib] = Worker(lib, quick, threads, only, isa)
        for w in workers.values():
            w.ready()
    except BaseException:
        close_all(workers)
        raise
    return workers


def close_all(workers: dict) -> None:
    """Closes every worker: its stdin, then waits for it to exit."""
    for w in workers.values():
        w.close()


def turn_order(libs: list, sample: int, case_index: int) -> list:
    """Which library times a case first, second...: rotated from case to case and from sample
    to sample (run_rounds's sample, round·turns + turn), so that no library always goes
    first."""
    shift = (sample + case_index) % len(libs)
    return libs[shift:] + libs[:shift]


# Turns each library takes at a case in each round.
TURNS = 3


def run_rounds(workers: dict, names: list, rounds: int, turns: int = TURNS) -> dict:
    """runs[lib][s][name]: seconds per call of case `name` in sample s, one sample per turn
    (rounds·turns of them; absent where the library has no version of the case). The
    libraries take their turns at a case one after another, a fraction of a second each."""
    libs = list(workers)
    runs: dict = {lib: [{} for _ in range(rounds * turns)] for lib in libs}
    for r in range(rounds):
        for i, name in enumerate(names):
            for t in range(turns):
                sample = r * turns + t
                for lib in turn_order(libs, sample, i):
                    seconds = workers[lib].time(name)
                    if seconds is not None:
                        runs[lib][sample][name] = seconds
                    workers[lib].settle()
        print(f"round {r + 1}/{rounds} done", file=sys.stderr)
    return runs


def measure(libs: list, names: list, rounds: int, quick: bool, threads: int, only: str | None,
            isa: str | None) -> dict:
    """Starts a worker per library, lets them take their turns at the cases `names` for
    `rounds` rounds (see run_rounds, whose result this returns), and closes every worker."""
    workers = start_workers(libs, quick, threads, only, isa)
    try:
        return run_rounds(workers, names, rounds)
    finally:
        close_all(workers)


def summarize(runs: dict, name: str, libs: list) -> tuple[dict, dict, dict]:
    """Per library: the median seconds per call over the samples (turns) and the spread (max −
    min over the median); per other library: the median over the samples of its time over
    matgrad's in the same sample (the libraries' turns at a case in one pass, seconds apart)."""
    med, spread, ratio = {}, {}, {}
    for lib in libs:
        samples = [run[name] for run in runs[lib] if name in run]
        if samples:
            med[lib] = statistics.median(samples)
            spread[lib] = (max(samples) - min(samples)) / med[lib] if len(samples) > 1 else 0.0
    for lib in libs:
        if lib == "matgrad" or lib not in med or "matgrad" not in med:
            continue
        pairs = [(ours[name], theirs[name]) for ours, theirs in zip(runs["matgrad"], runs[lib])
                 if name in ours and name in theirs]
        ratio[lib] = statistics.median(t / m for m, t in pairs)
    return med, spread, ratio


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="a compare.py worker: one library, one process")
    parser.add_argument("--worker", choices=LIBRARIES, required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", metavar="REGEX")
    args = parser.parse_args(argv)
    worker(args.worker, args.quick, args.threads, args.only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
