"""The GIL is released while a kernel runs (cpp/bindings/module.cpp)."""

import threading
import time

import numpy as np

from matgrad import kernels


def test_python_thread_progresses_during_a_large_matmul(threads):
    threads(1)  # one kernel thread, so the counting thread has a core to run on
    a = np.ones((1500, 1500), np.float32)
    ticks = []
    done = threading.Event()

    def count():
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    counter = threading.Thread(target=count)
    kernel_time = []
    try:
        counter.start()
        time.sleep(0.02)  # let the counter start ticking
        t0 = time.perf_counter()
        kernels.matmul(a, a)
        t1 = time.perf_counter()
        kernel_time = [t0, t1]
    finally:
        done.set()
        counter.join()
    during = [t for t in ticks if kernel_time[0] < t < kernel_time[1]]
    # Holding the GIL would freeze the counter for the whole call; released, it
    # keeps ticking about once a millisecond. Ask for a handful of ticks only.
    expected = (kernel_time[1] - kernel_time[0]) / 0.001
    assert expected > 5, "the matmul was too quick to tell"
    assert len(during) >= 3, f"only {len(during)} ticks during a {kernel_time[1] - kernel_time[0]:.3f} s kernel"
