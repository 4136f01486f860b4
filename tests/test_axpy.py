"""y += alpha·x (cpp/src/axpy.cpp): the optimizers' update step."""

import numpy as np
import pytest

from matgrad import kernels


@pytest.mark.parametrize("dtype", (np.float32, np.float64), ids=("float32", "float64"))
@pytest.mark.parametrize("n", (0, 1, 7, 1000, (1 << 16) + 3))  # across the parallel threshold
def test_matches_numpy(rng, n, dtype):
    x = rng.standard_normal(n).astype(dtype)
    y = rng.standard_normal(n).astype(dtype)
    expected = y + dtype(-0.25) * x
    x_before = x.copy()
    assert kernels.axpy(-0.25, x, y) is y
    np.testing.assert_allclose(y, expected, rtol=np.finfo(dtype).eps * 4)
    np.testing.assert_array_equal(x, x_before)


def test_any_shape_and_strided_x(rng):
    x = rng.standard_normal((6, 10))[:, ::2]
    y = np.zeros((6, 5))
    kernels.axpy(2.0, x, y)
    np.testing.assert_array_equal(y, 2.0 * x)


def test_in_place_on_itself():
    y = np.arange(4.0)
    kernels.axpy(1.0, y, y)
    np.testing.assert_array_equal(y, [0, 2, 4, 6])


@pytest.mark.parametrize("x,y,exc,pattern", [
    (np.ones(3), np.ones(4), ValueError, r"axpy: y has shape \(4,\), expected \(3,\)"),
    (np.ones(3), np.ones(3, np.float32), TypeError, r"axpy: y has dtype float32, expected float64"),
    (np.ones(3, np.int64), np.ones(3), TypeError, r"axpy: x has dtype int64"),
    (np.ones(3), np.ones(6)[::2], ValueError, r"axpy: y must be C-contiguous"),
], ids=("shape", "dtype", "int", "strided y"))
def test_bad_input_changes_nothing(x, y, exc, pattern):
    before = y.copy()
    with pytest.raises(exc, match=pattern):
        kernels.axpy(1.0, x, y)
    np.testing.assert_array_equal(y, before)
