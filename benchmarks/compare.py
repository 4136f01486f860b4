"""matgrad against numpy (and PyTorch when installed), same machine, same run.

Each library runs in its own process, so one library's spinning worker threads
(OpenMP, OpenBLAS) never steal cores from another's timings. The processes stay
up for the whole run and take short turns (TURN_SECONDS of calls each, a few
turns per case per round) one after another at each case, the library that goes
first rotating; a turn starts when the last library's threads have stopped
spinning. A shared machine's slow spells (they last seconds to minutes and
can halve a core's speed) then hit the libraries' turns at a case alike, and a
ratio is the median over the turns of that turn's ratio. The table reports
medians over the turns, with the spread. Ratios > 1 mean matgrad is faster.

    python benchmarks/compare.py                 # all cases, print the table
    python benchmarks/compare.py --quick         # small sizes (CI smoke run)
    python benchmarks/compare.py --write BENCHMARKS.md
    python benchmarks/compare.py --isa avx2      # matgrad's AVX2 path vs OpenBLAS's Haswell kernel

numpy is timed with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed from its
environment (they pin an older, slower OpenBLAS kernel on some machines here),
or, with --isa, with OPENBLAS_CORETYPE set to the kernel for that instruction
set (avx2: Haswell, avx512: SkylakeX, baseline: Nehalem) while matgrad runs with
MATGRAD_ISA; the report names the kernel OpenBLAS picked. PyTorch is held to the same
instruction set with ATEN_CPU_CAPABILITY, MKL_ENABLE_INSTRUCTIONS and ONEDNN_MAX_CPU_ISA
(the report names the capability ATen took), so `--isa avx2` on an AVX-512 machine
compares the three libraries as an AVX2 machine would. GEMM rates are also
given as % of the FMA peak of that instruction set on this machine, measured in
the same run (matgrad.kernels.fma_peak).

--write FILE keeps one section per CPU and instruction set in FILE: a run
replaces its own section and leaves the others (a run with --only has a section
of its own, per pattern).
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


def _lecture_layer_case(n, d, m):
    """The lecture's layer y = relu(x·w + b), forward and backward (dL/dx, dL/dw, dL/db)."""
    def build(lib):
        import numpy as np
        rng = np.random.default_rng(0)
        x = rng.standard_normal((n, d)).astype(np.float32)
        w = (rng.standard_normal((d, m)) / np.sqrt(d)).astype(np.float32)
        b = rng.standard_normal(m).astype(np.float32)
        gy = rng.standard_normal((n, m)).astype(np.float32)
        if lib == "matgrad":
            import matgrad as mg
            tx, tw, tb = (mg.tensor(a, requires_grad=True) for a in (x, w, b))

            def step():
                for t in (tx, tw, tb):
                    t.zero_grad()
                mg.linear(tx, tw, tb, relu=True).backward(gy)
            return step
        if lib == "numpy":
            def step():
                y = np.maximum(x @ w + b, 0)
                g = gy * (y > 0)
                return g @ w.T, x.T @ g, g.sum(axis=0)
            return step
        import torch
        tx, tw, tb = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))
        tgy = torch.from_numpy(gy)

        def step():
            for t in (tx, tw, tb):
                t.grad = None
            torch.relu(torch.addmm(tb, tx, tw)).backward(tgy)
        return step
    return build, 3 * 2.0 * n * d * m, "GFLOP/s"


def _mlp_step_case(sizes, batch):
    """One training step: forward, softmax cross-entropy, backward, SGD update."""
    def build(lib):
        import numpy as np
        rng = np.random.default_rng(0)
        x = rng.standard_normal((batch, sizes[0])).astype(np.float32)
        labels = rng.integers(0, sizes[-1], batch)
        weights = [(rng.standard_normal((a, b)) * np.sqrt(2 / a)).astype(np.float32)
                   for a, b in zip(sizes[:-1], sizes[1:])]
        biases = [np.zeros(b, np.float32) for b in sizes[1:]]
        lr = 0.01
        if lib == "matgrad":
            import matgrad as mg
            net = mg.nn.MLP(sizes)
            for layer, w, b in zip(net.layers[::2], weights, biases):
                layer.weight.data[...] = w
                layer.bias.data[...] = b
            opt = mg.optim.SGD(net.parameters(), lr=lr)
            tx = mg.tensor(x)

            def step():
                opt.zero_grad()
                mg.cross_entropy(net(tx), labels).backward()
                opt.step()
            return step
        if lib == "numpy":  # written by hand: the floor for per-op overhead
            def step():
                acts = [x]
                for i, (w, b) in enumerate(zip(weights, biases)):
                    z = acts[-1] @ w + b
                    acts.append(np.maximum(z, 0, out=z) if i < len(weights) - 1 else z)
                z = acts[-1]
                p = np.exp(z - z.max(axis=1, keepdims=True))
                p /= p.sum(axis=1, keepdims=True)
                p[np.arange(batch), labels] -= 1
                g = p / batch
                for i in range(len(weights) - 1, -1, -1):
                    gw, gb = acts[i].T @ g, g.sum(axis=0)
                    if i:
                        g = g @ weights[i].T
                        g *= acts[i] > 0
                    weights[i] -= lr * gw
                    biases[i] -= lr * gb
            return step
        import torch
        layers = []
        for i, (w, b) in enumerate(zip(weights, biases)):
            lin = torch.nn.Linear(w.shape[0], w.shape[1])
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(w.T))
                lin.bias.copy_(torch.from_numpy(b))
            layers.append(lin)
            if i < len(weights) - 1:
                layers.append(torch.nn.ReLU())
        net = torch.nn.Sequential(*layers)
        opt = torch.optim.SGD(net.parameters(), lr=lr)
        tx, ty = torch.from_numpy(x), torch.from_numpy(labels)

        def step():
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(tx), ty).backward()
            opt.step()
        return step
    flops = 3 * 2.0 * batch * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    return build, flops, "GFLOP/s"


def _tiny_graph_case():
    """An 8×8 matmul, relu, sum and backward: nothing but per-op overhead."""
    def build(lib):
        import numpy as np
        rng = np.random.default_rng(0)
        x = rng.standard_normal((8, 8)).astype(np.float32)
        w = rng.standard_normal((8, 8)).astype(np.float32)
        if lib == "matgrad":
            import matgrad as mg
            tx, tw = mg.tensor(x, requires_grad=True), mg.tensor(w, requires_grad=True)

            def step():
                tx.zero_grad()
                tw.zero_grad()
                (tx @ tw).relu().sum().backward()
            return step
        if lib == "numpy":
            def step():
                y = x @ w
                g = (y > 0).astype(np.float32)
                return g @ w.T, x.T @ g, np.maximum(y, 0).sum()
            return step
        import torch
        tx, tw = torch.from_numpy(x).requires_grad_(), torch.from_numpy(w).requires_grad_()

        def step():
            tx.grad = tw.grad = None
            (tx @ tw).relu().sum().backward()
        return step
    return build, 3 * 2.0 * 8 ** 3, "GFLOP/s"


SWEEP_SIZES = (128, 256, 512, 1024, 2048)
# Shapes off every grid (odd, non-square, not multiples of any block), m×n×k.
OFF_GRID_SHAPES = ((1000, 1000, 1000), (777, 1023, 513), (1999, 61, 1500), (100, 3001, 299),
                   (33, 2047, 1025))


def _conv_cases(quick: bool):
    """The convolution rows, from benchmarks/conv_cases.py (found beside this file however it runs)."""
    here = os.path.dirname(os.path.abspath(__file__))
    if here not in sys.path:
        sys.path.insert(0, here)
    from conv_cases import conv_cases
    return conv_cases(quick)


def cases(quick: bool, only: str | None = None):
    """The benchmark table: name -> (build, work per call, unit). ``only``: a regex on names."""
    import re

    import numpy as np
    n_lect, d_lect = (16, 512) if quick else (64, 4096)
    side = 512 if quick else 4096
    table = {}
    for s in (256,) if quick else (1024, 2048):
        for dtype, dname in ((np.float32, "f32"), (np.float64, "f64")):
            for ta, tb in ((False, False), (False, True), (True, False), (True, True)):
                ops = ("Aᵀ" if ta else "A") + "·" + ("Bᵀ" if tb else "B")
                table[f"gemm {dname} {s}³ {ops}"] = _gemm_case(s, s, s, dtype, ta, tb)
    table.update({
        "lecture y = x·w f32": _gemm_case(n_lect, d_lect, d_lect, np.float32),
        "lecture dx = dy·wᵀ f32": _gemm_case(n_lect, d_lect, d_lect, np.float32, trans_b=True),
        "lecture dw = xᵀ·dy f32": _gemm_case(d_lect, d_lect, n_lect, np.float32, trans_a=True),
        "lecture layer fwd+bwd f32": _lecture_layer_case(n_lect, d_lect, d_lect),
        "batch 1 y = x·w f32": _gemm_case(1, d_lect, d_lect, np.float32),
        "batch 1 dx = dy·wᵀ f32": _gemm_case(1, d_lect, d_lect, np.float32, trans_b=True),
        f"relu forward f32 {side}²": _relu_forward_case(side),
        f"relu backward f32 {side}²": _relu_backward_case(side),
        f"copy f32 {side}² (streaming rate)": _copy_case(side),
        "train step MLP 784-512-256-10, batch 128": _mlp_step_case([784, 512, 256, 10], 128),
        "train step MLP 64-64-64-10, batch 32": _mlp_step_case([64, 64, 64, 10], 32),
        "tiny graph 8×8 matmul-relu-sum-backward": _tiny_graph_case(),
    })
    table.update(_conv_cases(quick))
    if not quick:
        for m, n, k in OFF_GRID_SHAPES:
            for dtype, dname in ((np.float32, "f32"), (np.float64, "f64")):
                table[f"off-grid gemm {dname} {m}×{n}×{k}"] = _gemm_case(m, n, k, dtype)
        for s in SWEEP_SIZES:
            for dtype, dname in ((np.float32, "f32"), (np.float64, "f64")):
                table[f"sweep gemm {dname} {s}³"] = _gemm_case(s, s, s, dtype)
    if only:
        table = {k: v for k, v in table.items() if re.search(only, k)}
    return table


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


# ---- driver ---------------------------------------------------------------------

def available_libraries():
    libs = ["matgrad", "numpy"]
    try:
        import torch  # noqa: F401
        libs.append("torch")
    except ImportError:
        pass
    return libs


def machine_facts(threads: int, isa: str | None) -> dict:
    """matgrad's view of the machine, from a matgrad process with the run's environment:
    config() (caches, blocking) and the FMA peak of the instruction set, both dtypes."""
    code = ("import json, matgrad\nk = matgrad.kernels\nc = k.config()\n"
            f"c['peak'] = {{d: k.fma_peak(c['isa'], d, threads={threads}, seconds=0.3) "
            "for d in ('float32', 'float64')}\nprint(json.dumps(c))")
    out = subprocess.run([sys.executable, "-c", code], env=library_env("matgrad", threads, isa),
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"matgrad failed:\n{out.stderr}")
    return json.loads(out.stdout)


def environment_summary(threads: int, isa: str | None, facts: dict) -> list[str]:
    import numpy as np
    import matgrad
    caches = facts["caches"]
    def slices(b: dict) -> str:  # kc, and how deep a slice may grow (kc_limit)
        limit = b.get("kc_limit", b["kc"])
        return f"kc {b['kc']}" + (f" (slices up to {limit})" if limit > b["kc"] else "")
    blocking = "; ".join(f"{d} {b['mr']}×{b['nr']} {slices(b)} nc {b['nc']} mc {b['mc']}"
                         for d, b in facts["blocking"].items())
    lines = [
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs; "
        f"{_cpu_model()}",
        f"caches ({facts['cache_source']}): L1d {caches['l1d'] >> 10} KiB, L2 {caches['l2'] >> 10} KiB, "
        f"L3 {caches['l3'] >> 20} MiB; blocking ({facts['blocking_source']}): {blocking}",
        f"FMA peak of {facts['isa']} here, {threads} threads: "
        f"{facts['peak']['float32']:.0f} GFLOP/s f32, {facts['peak']['float64']:.0f} f64",
        f"threads: {threads} per library; each library in its own process, the processes taking "
        "turns case by case",
        f"matgrad {matgrad.__version__} (kernels: {facts['isa']}"
        f"{', forced with --isa' if isa else ''}), numpy {np.__version__}"
        f" (OpenBLAS kernel: {_openblas_kernel(threads, isa)}"
        f"{', forced with OPENBLAS_CORETYPE' if isa else ''})",
    ]
    try:
        import torch
        lines[-1] += f", torch {torch.__version__} (ATen capability: {_torch_capability(threads, isa)}"
        lines[-1] += f"{', forced with ATEN_CPU_CAPABILITY, MKL_ENABLE_INSTRUCTIONS' if isa else ''})"
    except ImportError:
        lines[-1] += ", torch not installed"
    return lines


def _torch_capability(threads: int, isa: str | None = None) -> str:
    return _printed_in_env("torch", "import torch\nprint(torch.backends.cpu.get_cpu_capability())",
                           threads, isa)


def _printed_in_env(lib: str, code: str, threads: int, isa: str | None) -> str:
    """What `code` prints in a fresh interpreter with `lib`'s benchmark environment."""
    out = subprocess.run([sys.executable, "-c", code], env=library_env(lib, threads, isa),
                         capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


def _cpu_model() -> str:
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        return platform.platform()
    return (f"{fields.get('model name', 'unknown CPU')}, family {fields.get('cpu family', '?')}"
            f" model {fields.get('model', '?')}")


def _openblas_kernel(threads: int, isa: str | None = None) -> str:
    code = ("import numpy\ntry:\n from threadpoolctl import threadpool_info\n"
            " print(next((i.get('architecture') for i in threadpool_info() if i['internal_api']=="
            "'openblas'), 'unknown'))\nexcept ImportError:\n print('unknown (threadpoolctl missing)')")
    return _printed_in_env("numpy", code, threads, isa)


def section_key(facts: dict, isa: str | None) -> str:
    """The heading of this run's section in the --write file: one per CPU and instruction set."""
    return f"## {_cpu_model()} · {facts['isa']}{' (forced)' if isa else ' (native)'}"


def write_sections(path: str, key: str, body: list[str]) -> None:
    """Replaces the section headed `key` in `path` (or appends it), keeping the others."""
    title = ("# Benchmarks\n\nOne section per CPU and instruction set, each written by "
             "`python benchmarks/compare.py --write BENCHMARKS.md [--isa ISA]` on that machine;\n"
             "a run replaces only its own section. The CPU changes from session to session here:\n"
             "compare ratios within a section, not rates across sections.\n")
    text = ""
    if os.path.exists(path):
        with open(path) as f:
            text = f.read()
    parts = ("\n" + text).split("\n## ")
    head = parts[0].strip("\n") or title  # whatever precedes the first section is kept
    sections = ["## " + p for p in parts[1:]]
    new = key + "\n\n" + "\n".join(body).rstrip() + "\n"
    for i, sec in enumerate(sections):
        if sec.splitlines()[0].strip() == key:
            sections[i] = new
            break
    else:
        sections.append(new)
    with open(path, "w") as f:
        f.write(head.rstrip() + "\n\n" + "\n".join(s.rstrip() + "\n" for s in sections))


def write_plots(folder: str, table: dict, medians: dict, libs: list, lines: list) -> None:
    """GFLOP/s against size per library and dtype; training-step time per library."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(folder, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=False)
    for ax, dname in zip(axes, ("f32", "f64")):
        for lib in libs:
            sizes, rates = [], []
            for s in SWEEP_SIZES:
                name = f"sweep gemm {dname} {s}³"
                if name in medians and lib in medians[name]:
                    sizes.append(s)
                    rates.append(table[name][1] / medians[name][lib] / 1e9)
            if sizes:
                ax.plot(sizes, rates, marker="o", label=lib)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("n (n×n · n×n)")
        ax.set_ylabel("GFLOP/s")
        ax.set_title(f"GEMM {'float32' if dname == 'f32' else 'float64'}, 2 threads")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
    fig.suptitle(lines[0].split(";")[-1].strip(), fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(folder, "gemm_gflops.png"), dpi=110)
    plt.close(fig)

    steps = [k for k in table if k.startswith(("train step", "tiny graph", "lecture layer"))]
    fig, axes = plt.subplots(1, len(steps), figsize=(3.2 * len(steps), 3.6))
    for ax, name in zip(axes, steps):
        vals = [medians[name].get(lib, float("nan")) * 1e3 for lib in libs]
        bars = ax.bar(libs, vals, color=["#2a7", "#48c", "#d63"][: len(libs)])
        ax.bar_label(bars, fmt="%.3g")
        ax.set_title(name.replace(", batch", "\nbatch").replace(" 8×8", "\n8×8"), fontsize=8)
        ax.set_ylabel("ms per step (lower is better)")
    fig.tight_layout()
    fig.savefig(os.path.join(folder, "training_steps.png"), dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3,
                        help=f"rounds, each of {TURNS} turns per library per case (default 3)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--write", metavar="FILE", help="also write the table as Markdown")
    parser.add_argument("--plots", metavar="DIR", help="also write PNG plots there (needs matplotlib)")
    parser.add_argument("--only", metavar="REGEX", help="run only the cases whose name matches")
    parser.add_argument("--isa", choices=sorted(OPENBLAS_CORETYPES),
                        help="run matgrad with MATGRAD_ISA and numpy with the matching OpenBLAS kernel")
    parser.add_argument("--worker", choices=LIBRARIES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.quick, args.threads, args.only)
        return 0

    libs = available_libraries()
    facts = machine_facts(args.threads, args.isa)
    table = cases(args.quick, args.only)
    runs = measure(libs, list(table), args.rounds, args.quick, args.threads, args.only, args.isa)

    header = ["case", *[f"{lib} ms" for lib in libs], "rate (matgrad)", "% peak (matgrad / numpy)",
              *[f"× vs {lib}" for lib in libs if lib != "matgrad"]]
    rows = []
    medians = {}
    for name, (_, work, unit) in table.items():
        med, spread, ratio = summarize(runs, name, libs)
        medians[name] = med
        cells = [name]
        for lib in libs:
            cells.append(f"{med[lib] * 1e3:.3f} (±{spread[lib] * 50:.0f}%)" if lib in med else "")
        main_lib = "matgrad" if "matgrad" in med else "numpy"
        cells.append(f"{work / med[main_lib] / 1e9:.1f} {unit}")
        cells.append(_percent_of_peak(name, work, unit, med, facts["peak"]))
        for lib in libs:
            if lib == "matgrad":
                continue
            cells.append(f"{ratio[lib]:.2f}" if lib in ratio else "")
        rows.append(cells)

    lines = environment_summary(args.threads, args.isa, facts)
    md = [f"- {line}" for line in lines] + [
        f"- {args.rounds} rounds of {TURNS} turns per library per case (each turn the median of its "
        f"calls over {TURN_SECONDS} s or more), medians over the turns; ± is half the spread between "
        "turns; × is the median over the turns of that turn's ratio", "",
        "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    md += ["| " + " | ".join(r) + " |" for r in rows]
    print("\n".join(md))
    if args.plots:
        write_plots(args.plots, table, medians, libs, lines)
    if args.write:
        command = "python benchmarks/compare.py" + "".join(
            f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
        key = section_key(facts, args.isa) + (f" · only `{args.only}`" if args.only else "")
        write_sections(args.write, key, [f"`{command}`", ""] + md)
    return 0


def _percent_of_peak(name: str, work: float, unit: str, med: dict, peak: dict) -> str:
    """GEMM rows only: matgrad's and numpy's rate as % of this ISA's FMA peak."""
    if unit != "GFLOP/s" or "gemm" not in name and "lecture" not in name:
        return ""
    dtype = "float64" if " f64 " in f" {name} " else "float32"
    cells = [f"{100 * work / med[lib] / 1e9 / peak[dtype]:.0f}%" for lib in ("matgrad", "numpy")
             if lib in med]
    return " / ".join(cells)


if __name__ == "__main__":
    sys.exit(main())
