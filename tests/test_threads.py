"""Python threads: kernels and training loops run concurrently give exactly the results of running
them one after another; grad mode is per thread; changing the thread count from one thread does not
disturb another thread's kernels.

(The GIL release is shown by tests/test_gil.py; fork safety by
tests/test_dispatch.py::test_fork_after_parallel_kernels_does_not_hang.)
"""

import threading
import time

import numpy as np
import pytest

import matgrad as mg
from matgrad import kernels

WORKERS = 4
TIMEOUT = 120  # seconds: a deadlock fails the test instead of hanging CI


def run_in_threads(jobs):
    """Runs each job in its own thread, all released at once; returns their results in order and
    re-raises the first exception a job raised."""
    barrier = threading.Barrier(len(jobs))
    results = [None] * len(jobs)
    errors = []

    def worker(i, job):
        try:
            barrier.wait(timeout=TIMEOUT)
            results[i] = job()
        except BaseException as e:  # noqa: BLE001 - reported to the main thread below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i, job), daemon=True) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    assert not any(t.is_alive() for t in threads), "a thread is still running: deadlock?"
    if errors:
        raise errors[0]
    return results


# --------------------------------------------------------------------------------------------
# kernels
# --------------------------------------------------------------------------------------------


def kernel_job(seed, dtype):
    """A fixed sequence of kernel calls of mixed sizes (some big enough to use the OpenMP team):
    returns every result."""
    rng = np.random.default_rng(seed)
    out = []
    for m, n, k in [(97, 131, 75), (256, 192, 160), (3, 300, 17), (150, 150, 150), (64, 513, 33)]:
        a = rng.standard_normal((m, k)).astype(dtype)
        b = rng.standard_normal((n, k)).astype(dtype)
        c = kernels.matmul(a, b, trans_b=True)
        kernels.matmul(a.T.copy(), b.T, trans_a=True, out=c, accumulate=True)  # c += a·bᵀ
        h = kernels.relu_forward(c)
        gh = kernels.relu_backward(rng.standard_normal(c.shape).astype(dtype), c)
        bias = rng.standard_normal(n).astype(dtype)
        y = kernels.linear_forward(a, b.T, bias, relu=True)
        grads = kernels.linear_backward(gh, a, b.T, y, relu=True)
        kernels.axpy(-0.5, h, c)  # c -= h/2 in place
        out += [c, h, gh, y, *grads]
    return out


@pytest.mark.parametrize("kernel_threads", (1, 2))
def test_concurrent_kernels_match_sequential_runs(threads, kernel_threads):
    threads(kernel_threads)
    specs = [(seed, np.float32 if seed % 2 else np.float64) for seed in range(WORKERS)]
    sequential = [kernel_job(*spec) for spec in specs]
    for _ in range(5):
        concurrent = run_in_threads([lambda spec=spec: kernel_job(*spec) for spec in specs])
        for seq, con in zip(sequential, concurrent):
            assert len(seq) == len(con)
            for s, c in zip(seq, con):
                assert s.dtype == c.dtype and np.array_equal(s, c)  # bit for bit


# --------------------------------------------------------------------------------------------
# training loops
# --------------------------------------------------------------------------------------------

def make_problem(seed, dtype):
    """A model (initialised here, in one thread: mg.manual_seed's generator is global), its
    optimizer and a fixed data set."""
    mg.manual_seed(seed)
    model = mg.nn.MLP([20, 48, 32, 5], dtype=dtype)
    opt = (mg.optim.Adam(model.parameters(), lr=1e-2) if seed % 2
           else mg.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4))
    rng = np.random.default_rng(100 + seed)
    x = rng.standard_normal((96, 20)).astype(dtype)
    labels = rng.integers(0, 5, size=96)
    return model, opt, x, labels


def train(problem, steps=150):
    model, opt, x, labels = problem
    losses = []
    for step in range(steps):
        rows = slice((step * 32) % 96, (step * 32) % 96 + 32)
        logits = model(mg.tensor(x[rows]))
        loss = mg.cross_entropy(logits, labels[rows]) if step % 3 else mg.svm_loss(logits, labels[rows])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    with mg.no_grad():
        final = model(mg.tensor(x)).data
    return losses, [p.data.copy() for p in model.parameters()], final


def test_concurrent_training_loops_match_sequential_runs(threads):
    threads(2)
    specs = [(seed, np.float32 if seed < 2 else np.float64) for seed in range(WORKERS)]
    sequential = [train(make_problem(*spec)) for spec in specs]
    problems = [make_problem(*spec) for spec in specs]
    concurrent = run_in_threads([lambda p=p: train(p) for p in problems])
    for (l1, p1, f1), (l2, p2, f2) in zip(sequential, concurrent):
        assert l1 == l2
        for a, b in zip(p1, p2):
            assert np.array_equal(a, b)
        assert np.array_equal(f1, f2)


# --------------------------------------------------------------------------------------------
# grad mode
# --------------------------------------------------------------------------------------------


def test_no_grad_is_thread_local():
    w = mg.tensor(np.ones((3, 3)), requires_grad=True)
    inside = threading.Event()
    checked = threading.Event()
    seen = {}

    def in_no_grad():
        with mg.no_grad():
            seen["A enabled"] = mg.is_grad_enabled()
            seen["A records"] = (w @ w).requires_grad
            inside.set()
            assert checked.wait(TIMEOUT)
            seen["A still off"] = not mg.is_grad_enabled()  # B's grad mode did not leak in
        seen["A restored"] = mg.is_grad_enabled()

    def recording():
        assert inside.wait(TIMEOUT)  # A is inside no_grad() now
        seen["B enabled"] = mg.is_grad_enabled()
        y = (w @ w).sum()
        seen["B records"] = y.requires_grad
        y.backward()
        seen["B grad"] = w.grad.copy()
        with mg.enable_grad():
            pass
        checked.set()

    run_in_threads([in_no_grad, recording])
    assert seen == {**seen, "A enabled": False, "A records": False, "A still off": True, "A restored": True,
                    "B enabled": True, "B records": True}
    np.testing.assert_array_equal(seen["B grad"], np.full((3, 3), 6.0))
    assert mg.is_grad_enabled()  # the main thread was never affected


def test_no_grad_in_the_main_thread_does_not_reach_a_new_thread():
    result = {}
    with mg.no_grad():
        t = threading.Thread(target=lambda: result.setdefault("enabled", mg.is_grad_enabled()))
        t.start()
        t.join(TIMEOUT)
        assert not mg.is_grad_enabled()
    assert result == {"enabled": True}


# --------------------------------------------------------------------------------------------
# set_num_threads while another thread runs kernels
# --------------------------------------------------------------------------------------------


def test_set_num_threads_while_another_thread_runs_kernels(threads):
    if not kernels.has_openmp():
        pytest.skip("built without OpenMP")
    threads(2)
    rng = np.random.default_rng(7)
    a = rng.standard_normal((200, 180)).astype(np.float32)
    b = rng.standard_normal((180, 220)).astype(np.float32)
    x = rng.standard_normal(300_000).astype(np.float32)
    expected_c, expected_r = kernels.matmul(a, b), kernels.relu_forward(x)  # bit-identical for 1 and 2
    stop = threading.Event()
    counts = {"kernels": 0, "switches": 0}

    def compute():
        try:
            for _ in range(400):
                assert np.array_equal(kernels.matmul(a, b), expected_c)
                assert np.array_equal(kernels.relu_forward(x), expected_r)
                counts["kernels"] += 1
        finally:
            stop.set()

    def switch():
        n = 0
        while not stop.is_set():
            kernels.set_num_threads(1 + n % 2)
            n += 1
            time.sleep(0)  # let the other thread take the GIL back when its kernel returns
        counts["switches"] = n

    run_in_threads([compute, switch])
    assert counts["kernels"] == 400 and counts["switches"] > 10, counts
    assert kernels.get_num_threads() in (1, 2)
