"""The build without OpenMP (`pip install . -C cmake.define.MATGRAD_OPENMP=OFF`, or a compiler
without it) is a working single-threaded matgrad: asking for more threads warns once and stays
at one, and config() says OpenMP is absent. CI builds and tests that variant; in the usual
build the same calls change the thread count without a warning."""

import warnings

import numpy as np
import pytest

import matgrad as mg
from matgrad import kernels


@pytest.mark.skipif(kernels.has_openmp(), reason="the build has OpenMP")
def test_without_openmp_more_threads_warn_once_and_stay_at_one(threads, monkeypatch):
    monkeypatch.setattr(kernels, "_warned_single_threaded", False)
    assert kernels.config()["openmp"] is False
    with pytest.warns(RuntimeWarning, match=r"set_num_threads\(3\): matgrad was built without OpenMP"):
        mg.set_num_threads(3)
    assert mg.get_num_threads() == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second request is silent
        mg.set_num_threads(2)
        mg.set_num_threads(1)
    assert mg.get_num_threads() == 1 and kernels.config()["threads"] == 1
    with pytest.raises(ValueError, match="n must be >= 1"):
        mg.set_num_threads(0)
    a = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(kernels.matmul(a, a.T), a @ a.T)


@pytest.mark.skipif(not kernels.has_openmp(), reason="the build has no OpenMP")
def test_with_openmp_the_thread_count_changes_without_a_warning(threads):
    assert kernels.config()["openmp"] is True
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mg.set_num_threads(3)
    assert mg.get_num_threads() == 3 and kernels.config()["threads"] == 3
