"""ReLU forward/backward kernels (cpp/src/relu.cpp, kernels/*.cpp)."""

import numpy as np
import pytest

from matgrad import kernels

DTYPES = (np.float32, np.float64)
SIZES = (0, 1, 3, 15, 16, 17, 63, 64, 65, 1000, (1 << 16) + 5, (1 << 17) + 3)  # around vector steps and the parallel threshold


def relu_ref(x):
    return np.where(np.isnan(x), x, np.where(x > 0, x, 0)).astype(x.dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("n", SIZES)
def test_forward_matches_reference(isa, rng, n, dtype):
    x = rng.standard_normal(n).astype(dtype)
    before = x.copy()
    y = kernels.relu_forward(x)
    np.testing.assert_array_equal(y, relu_ref(x))
    np.testing.assert_array_equal(x, before)  # input never mutated


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("n", SIZES)
def test_backward_is_the_mask(isa, rng, n, dtype):
    x = rng.standard_normal(n).astype(dtype)
    dy = rng.standard_normal(n).astype(dtype)
    x_before, dy_before = x.copy(), dy.copy()
    dx = kernels.relu_backward(dy, x)
    np.testing.assert_array_equal(dx, np.where(x > 0, dy, 0).astype(dtype))
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(dy, dy_before)


def test_lecture_example(isa):
    # The lecture's 4-vector: x = [1, -2, 3, -1], upstream dL/dy = [4, -1, 5, 9].
    x = np.array([1, -2, 3, -1], np.float32)
    dy = np.array([4, -1, 5, 9], np.float32)
    np.testing.assert_array_equal(kernels.relu_forward(x), [1, 0, 3, 0])
    np.testing.assert_array_equal(kernels.relu_backward(dy, x), [4, 0, 5, 0])


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_special_values(isa, dtype):
    # Long enough that the values land in the vector loop and in the scalar tail.
    specials = np.array([np.nan, 0.0, -0.0, np.inf, -np.inf, 1.0, -1.0], dtype)
    x = np.tile(specials, 40)
    y = kernels.relu_forward(x)
    nan = np.isnan(x)
    assert np.all(np.isnan(y[nan]))  # relu(NaN) = NaN
    np.testing.assert_array_equal(y[~nan], np.maximum(x[~nan], 0))
    dy = np.full_like(x, 2.5)
    dx = kernels.relu_backward(dy, x)
    # Gradient is dy only where x > 0: not at 0, not at NaN, not at -inf.
    np.testing.assert_array_equal(dx, np.where(x > 0, 2.5, 0).astype(dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_any_shape_and_layout(rng, dtype):
    base = rng.standard_normal((6, 9, 10)).astype(dtype)
    for x in (base, base[:, ::2, 1:], np.asfortranarray(base), base[::-1]):
        y = kernels.relu_forward(x)
        assert y.shape == x.shape and y.flags.c_contiguous
        np.testing.assert_array_equal(y, relu_ref(x))
        dy = np.ones_like(x)
        np.testing.assert_array_equal(kernels.relu_backward(dy, x), (x > 0).astype(dtype))


def test_in_place(rng):
    x = rng.standard_normal(1000).astype(np.float32)
    expected = relu_ref(x)
    assert kernels.relu_forward(x, out=x) is x
    np.testing.assert_array_equal(x, expected)
    dy = rng.standard_normal(1000).astype(np.float32)
    mask = x > 0
    expected_dx = np.where(mask, dy, 0).astype(np.float32)
    assert kernels.relu_backward(dy, x, out=dy) is dy
    np.testing.assert_array_equal(dy, expected_dx)


def test_out_receives_result(rng):
    x = rng.standard_normal((50, 60))
    out = np.full_like(x, np.nan)
    assert kernels.relu_forward(x, out=out) is out
    np.testing.assert_array_equal(out, relu_ref(x))


def test_one_and_two_threads_identical(threads, rng):
    x = rng.standard_normal(1 << 18).astype(np.float32)
    dy = rng.standard_normal(1 << 18).astype(np.float32)
    threads(1)
    one = kernels.relu_forward(x), kernels.relu_backward(dy, x)
    threads(2)
    two = kernels.relu_forward(x), kernels.relu_backward(dy, x)
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])


@pytest.mark.parametrize("offset", (0, 1, 3))
def test_large_arrays_take_the_streaming_path(isa, rng, offset):
    # Past 48 MiB of output the kernels use non-temporal stores after peeling
    # elements until the output is vector-aligned; offsets exercise that peel.
    n = (13 << 20) + 7
    x = rng.standard_normal(n + offset).astype(np.float32)[offset:]
    out = np.empty(n + offset, np.float32)[offset:]
    kernels.relu_forward(x, out=out)
    np.testing.assert_array_equal(out, relu_ref(x))
    dy = rng.standard_normal(n).astype(np.float32)
    kernels.relu_backward(dy, x, out=out)
    np.testing.assert_array_equal(out, np.where(x > 0, dy, 0).astype(np.float32))
