"""benchmarks/compare_turns.py, compare.py's timing: the libraries take short turns one after
another at each case, the one that goes first rotates, and a ratio is the median of each turn's
ratio, so that a slow spell of the machine that hits one turn does not tilt the comparison. Each
library's worker runs with that library held to the run's instruction set (library_env)."""

import os
import statistics
import time

import pytest

from conftest import load_benchmark


@pytest.fixture(scope="module")
def turns():
    return load_benchmark("compare_turns")


def test_each_library_goes_first_equally_often(turns):
    libs = ["matgrad", "numpy", "torch"]
    firsts = [turns.turn_order(libs, s, i)[0] for s in range(3) for i in range(4)]
    assert {lib: firsts.count(lib) for lib in libs} == {"matgrad": 4, "numpy": 4, "torch": 4}
    for s in range(3):
        for i in range(4):
            order = turns.turn_order(libs, s, i)
            assert sorted(order) == sorted(libs)  # everyone, once
    # consecutive cases of a round start with different libraries
    assert turns.turn_order(libs, 0, 0)[0] != turns.turn_order(libs, 0, 1)[0]


def test_ratio_is_the_median_of_each_rounds_ratio(turns):
    # Turn 1 is a slow spell for both libraries (twice as slow); matgrad is 1.25× faster in
    # every turn.
    runs = {"matgrad": [{"c": 1.0}, {"c": 2.0}, {"c": 0.8}],
            "numpy": [{"c": 1.25}, {"c": 2.5}, {"c": 1.0}]}
    med, spread, ratio = turns.summarize(runs, "c", ["matgrad", "numpy"])
    assert med == {"matgrad": 1.0, "numpy": 1.25}
    assert ratio["numpy"] == pytest.approx(1.25)
    assert spread["matgrad"] == pytest.approx((2.0 - 0.8) / 1.0)
    # A different pairing of the same samples gives a different answer: the pairing is used.
    runs["numpy"] = [{"c": 2.5}, {"c": 1.0}, {"c": 1.25}]
    _, _, ratio = turns.summarize(runs, "c", ["matgrad", "numpy"])
    assert ratio["numpy"] == pytest.approx(statistics.median([2.5, 0.5, 1.5625]))


def test_a_case_one_library_lacks_has_no_ratio(turns):
    runs = {"matgrad": [{"c": 1.0}], "numpy": [{}], "torch": [{"c": 3.0}]}
    med, _, ratio = turns.summarize(runs, "c", ["matgrad", "numpy", "torch"])
    assert "numpy" not in med and "numpy" not in ratio
    assert ratio["torch"] == pytest.approx(3.0)


class FakeWorker:
    def __init__(self, lib, log, times):
        self.lib, self.log, self.times = lib, log, times

    def time(self, name):
        self.log.append((self.lib, name))
        base = self.times.get(name)
        return None if base is None else base + len(self.log) / 1000  # which call it was

    def settle(self):
        self.log.append((self.lib, "settled"))
        return 0.0


def test_run_rounds_takes_turns_at_each_case(turns):
    log = []
    workers = {"matgrad": FakeWorker("matgrad", log, {"a": 1.0, "b": 2.0}),
               "numpy": FakeWorker("numpy", log, {"a": 3.0})}  # numpy has no case b
    runs = turns.run_rounds(workers, ["a", "b"], rounds=2, turns=3)
    assert all(entry[1] == "settled" for entry in log[1::2])  # every turn waits for its threads
    assert all(entry[0] == before[0] for before, entry in zip(log[::2], log[1::2]))
    log[:] = log[::2]
    assert len(log) == 2 * 2 * 3 * 2  # rounds × cases × turns × libraries
    for start in range(0, len(log), 2):  # the two libraries' turns at a case are adjacent
        assert log[start][1] == log[start + 1][1]
        assert {log[start][0], log[start + 1][0]} == {"matgrad", "numpy"}
    assert [case for _, case in log[:12]] == ["a"] * 6 + ["b"] * 6  # a case's turns, then the next
    firsts = [log[start][0] for start in range(0, 6, 2)]
    assert firsts in (["matgrad", "numpy", "matgrad"], ["numpy", "matgrad", "numpy"])  # rotating
    assert len(runs["matgrad"]) == len(runs["numpy"]) == 6  # one sample per turn
    assert all(set(sample) == {"a", "b"} for sample in runs["matgrad"])
    assert all(set(sample) == {"a"} for sample in runs["numpy"])
    for ours, theirs in zip(runs["matgrad"], runs["numpy"]):  # a sample holds adjacent calls
        # the two turns two log entries apart (a turn, its settle(), the other library's turn)
        assert round(abs((ours["a"] - 1.0) - (theirs["a"] - 3.0)) * 1000) == 2


def test_a_worker_process_times_the_cases_it_is_sent(turns):
    worker = turns.Worker("numpy", True, 1, "^(tiny graph|copy)", None)
    try:
        worker.ready()
        worker.ready()  # once is enough: a second call reads nothing
        seconds = worker.time("tiny graph 8×8 matmul-relu-sum-backward")
        assert isinstance(seconds, float) and 0 < seconds < 1
        assert isinstance(worker.time("copy f32 512² (streaming rate)"), float)
    finally:
        worker.close()
    assert worker.proc.returncode == 0  # stdin closed: the worker ends cleanly


def test_the_streaming_reference_is_numpys_alone(turns):
    worker = turns.Worker("matgrad", True, 1, "^copy", None)
    try:
        assert worker.time("copy f32 512² (streaming rate)") is None
    finally:
        worker.close()


def test_a_worker_that_fails_names_itself_and_the_case(turns):
    worker = turns.Worker("numpy", True, 1, "^tiny graph", None)
    try:
        with pytest.raises(RuntimeError, match="numpy worker failed on 'no such case'"):
            worker.time("no such case")
    finally:
        worker.close()


class FakeProcess:
    """A process's CPU time on a fake clock: it spins (one core) until `quiet_at`, then sleeps."""

    def __init__(self, quiet_at):
        self.now, self.quiet_at = 0.0, quiet_at

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds

    def cpu_seconds(self):
        return min(self.now, self.quiet_at)


def test_the_next_turn_waits_until_the_last_process_is_quiet(turns):
    spinning = FakeProcess(quiet_at=0.13)  # OpenBLAS's idle loop, about 2^28 cycles
    waited = turns.wait_until_quiet(spinning.cpu_seconds, window=0.01, fraction=0.05, limit=1.0,
                                      clock=spinning.clock, sleep=spinning.sleep)
    assert 0.13 <= waited <= 0.15
    quiet = FakeProcess(quiet_at=0.0)
    assert turns.wait_until_quiet(quiet.cpu_seconds, window=0.01, clock=quiet.clock,
                                    sleep=quiet.sleep) == pytest.approx(0.01)
    busy = FakeProcess(quiet_at=99.0)  # never quiet: the limit ends the wait
    waited = turns.wait_until_quiet(busy.cpu_seconds, window=0.01, limit=0.5, clock=busy.clock,
                                      sleep=busy.sleep)
    assert 0.5 <= waited <= 0.52
    # A thread that ends between two reads makes the total go back once: the window restarts.
    ending = FakeProcess(quiet_at=0.05)
    reads = iter([0.0, 0.01, 0.005] + [None] * 0)

    def cpu_with_a_drop():
        value = next(reads, None)
        return ending.cpu_seconds() if value is None else value
    waited = turns.wait_until_quiet(cpu_with_a_drop, window=0.01, limit=1.0, clock=ending.clock,
                                      sleep=ending.sleep)
    assert 0.05 <= waited <= 0.08
    unknown = FakeProcess(quiet_at=0.0)
    waited = turns.wait_until_quiet(lambda: None, clock=unknown.clock, sleep=unknown.sleep)
    assert waited == pytest.approx(turns.SETTLE_SECONDS)


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="reads Linux's /proc")
def test_a_process_cpu_time_grows_while_it_works(turns):
    before = turns.process_cpu_seconds(os.getpid())
    assert before is not None and before > 0
    end = time.perf_counter() + 0.05
    while time.perf_counter() < end:
        pass
    after = turns.process_cpu_seconds(os.getpid())
    assert after - before >= 0.02
    assert turns.process_cpu_seconds(2**22 + 12345) is None  # no such process


def test_start_workers_leaves_none_running_when_one_fails(turns, monkeypatch):
    made = []
    real = turns.Worker

    class Failing(real):
        def __init__(self, lib, *args):
            super().__init__("numpy", True, 1, "^tiny graph", None)
            made.append(self)
            if lib == "torch":
                self.proc.kill()  # dies before its "ready" line

    monkeypatch.setattr(turns, "Worker", Failing)
    with pytest.raises(RuntimeError, match="failed on start-up"):
        turns.start_workers(["matgrad", "torch"], True, 1, "^tiny graph", None)
    assert len(made) == 2 and all(w.proc.returncode is not None for w in made)


def test_measure_closes_every_worker_even_when_a_turn_fails(turns, monkeypatch):
    closed = []

    class Closing(FakeWorker):
        def close(self):
            closed.append(self.lib)

    log = []
    workers = {"matgrad": Closing("matgrad", log, {"a": 1.0}), "numpy": Closing("numpy", log, {"a": 2.0})}
    monkeypatch.setattr(turns, "start_workers", lambda *args: workers)
    runs = turns.measure(["matgrad", "numpy"], ["a"], 1, True, 1, None, None)
    assert sorted(closed) == ["matgrad", "numpy"]
    assert len(runs["numpy"]) == turns.TURNS and all("a" in sample for sample in runs["numpy"])

    def broken(name):
        raise RuntimeError("numpy's worker stopped")

    closed.clear()
    workers["numpy"].time = broken
    with pytest.raises(RuntimeError, match="stopped"):
        turns.measure(["matgrad", "numpy"], ["a"], 1, True, 1, None, None)
    assert sorted(closed) == ["matgrad", "numpy"]


def test_a_turn_is_a_warm_up_call_then_at_least_one_timed_call(turns, monkeypatch):
    calls = []
    seconds = turns.time_call(lambda: calls.append(1), min_seconds=0.0)
    assert len(calls) == 2 and seconds >= 0.0

    class Clock:  # every reading 0.01 s after the last
        now = 0.0

        @classmethod
        def perf_counter(cls):
            cls.now += 0.01
            return cls.now

    monkeypatch.setattr(turns, "time", Clock)
    calls.clear()
    turns.time_call(lambda: calls.append(1), min_seconds=0.1)
    # Each timed call reads the clock twice and the loop test once: 0.03 s per call, so the
    # calls stop once 0.1 s have passed since the start, after the warm-up and four calls.
    assert len(calls) == 1 + 4


@pytest.mark.parametrize("isa", ["avx2", "avx512", "baseline"])
def test_isa_runs_hold_every_library_to_that_instruction_set(turns, isa, monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Prescott")  # a stale pin in the caller's environment
    assert turns.library_env("matgrad", 2, isa)["MATGRAD_ISA"] == isa
    assert turns.library_env("numpy", 2, isa)["OPENBLAS_CORETYPE"] == turns.OPENBLAS_CORETYPES[isa]
    torch_env = turns.library_env("torch", 2, isa)
    assert torch_env["ATEN_CPU_CAPABILITY"] == {"avx2": "avx2", "avx512": "avx512", "baseline": "default"}[isa]
    assert torch_env["MKL_ENABLE_INSTRUCTIONS"] and torch_env["ONEDNN_MAX_CPU_ISA"]
    for lib in ("matgrad", "numpy", "torch"):
        env = turns.library_env(lib, 3, isa)
        assert env["OMP_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == "3"


def test_native_runs_force_no_instruction_set(turns, monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Prescott")
    monkeypatch.delenv("MATGRAD_ISA", raising=False)
    for var in ("ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA"):
        monkeypatch.delenv(var, raising=False)
    assert "OPENBLAS_CORETYPE" not in turns.library_env("numpy", 2)  # the stale pin removed
    assert "MATGRAD_ISA" not in turns.library_env("matgrad", 2)
    assert not {"ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS"} & set(turns.library_env("torch", 2))
