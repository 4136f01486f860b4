"""Instruction-set dispatch (cpp/src/dispatch.cpp) and thread control (threads.cpp)."""

import os
import subprocess
import sys

import numpy as np
import pytest

from matgrad import kernels
from conftest import ALL_ISAS


def test_isa_reports_a_known_kernel_set():
    assert kernels.isa() in ALL_ISAS
    assert kernels.isa_available("baseline")
    assert kernels.isa_available(kernels.isa())


def test_default_is_the_best_available():
    expected = next(name for name in ALL_ISAS if kernels.isa_available(name))
    env = {k: v for k, v in os.environ.items() if k != "MATGRAD_ISA"}
    out = subprocess.run([sys.executable, "-c", "import matgrad; print(matgrad.kernels.isa())"],
                         env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert out == expected


@pytest.mark.parametrize("name", ALL_ISAS)
def test_environment_variable_forces_a_path(name):
    if not kernels.isa_available(name):
        pytest.skip(f"{name} not supported here")
    code = ("import numpy as np, matgrad; a = np.arange(6.0).reshape(2, 3); "
            "print(matgrad.kernels.isa(), matgrad.kernels.matmul(a, a.T).tolist())")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "MATGRAD_ISA": name},
                         capture_output=True, text=True, check=True).stdout.split(" ", 1)
    assert out[0] == name
    assert out[1].strip() == "[[5.0, 14.0], [14.0, 50.0]]"


def test_bad_environment_value_fails_import_clearly():
    proc = subprocess.run([sys.executable, "-c", "import matgrad"],
                          env={**os.environ, "MATGRAD_ISA": "sse9"}, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "unknown instruction set 'sse9'" in proc.stderr
    assert "avx512, avx2, baseline" in proc.stderr


def test_set_isa_rejects_unknown_name():
    before = kernels.isa()
    with pytest.raises(ValueError, match="unknown instruction set 'fast'"):
        kernels.set_isa("fast")
    assert kernels.isa() == before


def test_every_isa_gives_the_same_small_product(isa):
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(kernels.matmul(a, a.T), (a.astype(np.float64) @ a.T))


def test_thread_count_round_trip(threads):
    threads(1)
    assert kernels.get_num_threads() == 1
    threads(3)
    assert kernels.get_num_threads() == (3 if kernels.has_openmp() else 1)


def test_thread_count_must_be_positive(threads):
    before = kernels.get_num_threads()
    with pytest.raises(ValueError, match="n must be >= 1, got 0"):
        kernels.set_num_threads(0)
    assert kernels.get_num_threads() == before


def test_omp_num_threads_is_respected():
    if not kernels.has_openmp():
        pytest.skip("built without OpenMP")
    out = subprocess.run([sys.executable, "-c", "import matgrad; print(matgrad.get_num_threads())"],
                         env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "1"


def _child_product(queue):
    a = np.arange(40000.0, dtype=np.float32).reshape(200, 200) / 4e4
    queue.put((kernels.get_num_threads(), float(kernels.matmul(a, a).sum())))


@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_fork_after_parallel_kernels_does_not_hang(threads):
    import multiprocessing as mp

    if not hasattr(os, "fork"):
        pytest.skip("no fork on this platform")
    threads(2)
    a = np.arange(40000.0, dtype=np.float32).reshape(200, 200) / 4e4
    expected = float(kernels.matmul(a, a).sum())  # starts the parent's thread team
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_product, args=(queue,))
    child.start()
    child.join(timeout=60)
    if child.is_alive():
        child.kill()
        pytest.fail("the forked child hung in a kernel")
    assert child.exitcode == 0
    child_threads, child_sum = queue.get(timeout=5)
    assert child_threads == 1  # dropped by the at-fork handler
    assert child_sum == expected
    # the parent keeps its setting (one thread in a build without OpenMP)
    assert kernels.get_num_threads() == (2 if kernels.has_openmp() else 1)
