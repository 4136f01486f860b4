"""Fused linear layer (cpp/src/linear.cpp): y = relu?(x·w + b) and its backward."""

import numpy as np
import pytest

from matgrad import kernels

DTYPES = (np.float32, np.float64)
SHAPES = [(0, 3, 4), (3, 0, 4), (3, 4, 0), (1, 1, 1), (7, 13, 40), (13, 385, 33), (64, 70, 129)]


def tol(dtype, k):
    return 4 * max(k, 1) * np.finfo(dtype).eps


def reference_forward(x, w, b, relu):
    y = x.astype(np.float64) @ w.astype(np.float64)
    if b is not None:
        y = y + b
    return np.maximum(y, 0) if relu else y


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("relu", (False, True), ids=("linear", "relu"))
@pytest.mark.parametrize("with_bias", (False, True), ids=("nobias", "bias"))
@pytest.mark.parametrize("n,d,m", SHAPES, ids=str)
def test_forward_and_backward_match_reference(isa, rng, n, d, m, with_bias, relu, dtype):
    x = rng.standard_normal((n, d)).astype(dtype)
    w = rng.standard_normal((d, m)).astype(dtype)
    b = rng.standard_normal(m).astype(dtype) if with_bias else None
    y = kernels.linear_forward(x, w, b, relu=relu)
    scale = np.abs(x).astype(np.float64) @ np.abs(w) + (np.abs(b) if with_bias else 0) + 1
    assert y.shape == (n, m) and y.dtype == dtype
    assert np.all(np.abs(y - reference_forward(x, w, b, relu)) <= tol(dtype, d + 1) * scale)
    if relu:
        assert np.all(y >= 0)

    gy = rng.standard_normal((n, m)).astype(dtype)
    dx, dw, db = kernels.linear_backward(gy, x, w, y if relu else None, relu=relu)
    g = gy.astype(np.float64) * (y > 0) if relu else gy.astype(np.float64)
    assert dx.shape == x.shape and dw.shape == w.shape and db.shape == (m,)
    assert np.all(np.abs(dx - g @ w.T) <= tol(dtype, m) * (np.abs(g) @ np.abs(w.T) + 1))
    assert np.all(np.abs(dw - x.T @ g) <= tol(dtype, n) * (np.abs(x.T) @ np.abs(g) + 1))
    assert np.all(np.abs(db - g.sum(axis=0)) <= tol(dtype, n) * (np.abs(g).sum(axis=0) + 1))


def test_lecture_layer_example():
    # The lecture's x·w example as a layer with a ReLU; dL/dy is the slide's upstream gradient.
    x = np.array([[2, 1, -3], [-3, 4, 2]], np.float64)
    w = np.array([[3, 2, 1, -1], [2, 1, 3, 2], [3, 2, 1, -2]], np.float64)
    dy = np.array([[2, 3, -3, 9], [-8, 1, 4, 6]], np.float64)
    y = kernels.linear_forward(x, w, relu=True)
    np.testing.assert_array_equal(y, [[0, 0, 2, 6], [5, 2, 11, 7]])  # relu(x·w), x·w = [[-1,-1,2,6],[5,2,11,7]]
    dx, dw, db = kernels.linear_backward(dy, x, w, y, relu=True)
    g = dy * (y > 0)  # [[0, 0, -3, 9], [-8, 1, 4, 6]]
    np.testing.assert_array_equal(dx, g @ w.T)
    np.testing.assert_array_equal(dw, x.T @ g)
    np.testing.assert_array_equal(db, [-8, 1, 1, 15])


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_gradients_accumulate_into_given_arrays(rng, dtype):
    x = rng.standard_normal((9, 20)).astype(dtype)
    w = rng.standard_normal((20, 11)).astype(dtype)
    y = kernels.linear_forward(x, w, relu=True)
    gy = rng.standard_normal((9, 11)).astype(dtype)
    fresh = kernels.linear_backward(gy, x, w, y, relu=True)
    dx0, dw0, db0 = (rng.standard_normal(a.shape).astype(dtype) for a in fresh)
    dx, dw, db = dx0.copy(), dw0.copy(), db0.copy()
    out = kernels.linear_backward(gy, x, w, y, relu=True, dx=dx, dw=dw, db=db)
    assert out[0] is dx and out[1] is dw and out[2] is db
    for got, start, add in zip((dx, dw, db), (dx0, dw0, db0), fresh):
        np.testing.assert_allclose(got, start + add, rtol=1e-5, atol=1e-5)


def test_unneeded_gradients_are_skipped(rng):
    x = rng.standard_normal((5, 6))
    w = rng.standard_normal((6, 7))
    gy = rng.standard_normal((5, 7))
    dx, dw, db = kernels.linear_backward(gy, x, w, need_dx=False, need_db=False)
    assert dx is None and db is None
    np.testing.assert_allclose(dw, x.T @ gy)


def test_strided_and_transposed_operands(rng):
    x = rng.standard_normal((30, 40))[::2, 1::3]          # (15, 13), strided
    w = np.asfortranarray(rng.standard_normal((13, 17)))   # column-major
    b = rng.standard_normal(34)[::2]                       # strided bias
    y = kernels.linear_forward(x, w, b, relu=True)
    np.testing.assert_allclose(y, np.maximum(x @ w + b, 0), atol=1e-12)
    gy = rng.standard_normal((15, 17))
    dx, dw, db = kernels.linear_backward(gy, x, w.T.T, y, relu=True)
    g = gy * (y > 0)
    np.testing.assert_allclose(dx, g @ w.T, atol=1e-12)
    np.testing.assert_allclose(dw, x.T @ g, atol=1e-12)


def test_nan_propagates_and_masks_like_relu():
    x = np.ones((3, 2), np.float32)
    w = np.ones((2, 4), np.float32)
    x[1, 0] = np.nan
    y = kernels.linear_forward(x, w, np.zeros(4, np.float32), relu=True)
    assert np.all(np.isnan(y[1])) and np.all(y[[0, 2]] == 2)
    dx, dw, db = kernels.linear_backward(np.ones((3, 4), np.float32), x, w, y, relu=True)
    np.testing.assert_array_equal(db, [2, 2, 2, 2])  # NaN rows have mask 0, as relu_backward


def test_one_and_two_threads_identical(threads, rng):
    x = rng.standard_normal((64, 300)).astype(np.float32)
    w = rng.standard_normal((300, 700)).astype(np.float32)
    b = rng.standard_normal(700).astype(np.float32)
    gy = rng.standard_normal((64, 700)).astype(np.float32)
    results = []
    for t in (1, 2):
        threads(t)
        y = kernels.linear_forward(x, w, b, relu=True)
        results.append((y, *kernels.linear_backward(gy, x, w, y, relu=True)))
    for one, two in zip(*results):
        np.testing.assert_array_equal(one, two)


def f64(*shape):
    return np.zeros(shape)


@pytest.mark.parametrize("call,exc,pattern", [
    (lambda: kernels.linear_forward(f64(2, 3), f64(4, 5)), ValueError, r"shapes \(2, 3\) and \(4, 5\) are not aligned: 3 != 4"),
    (lambda: kernels.linear_forward(f64(2, 3), f64(3, 5), f64(4)), ValueError, r"b has shape \(4,\), expected \(5,\)"),
    (lambda: kernels.linear_forward(f64(2, 3), f64(3, 5), np.zeros(5, np.float32)), TypeError, r"dtypes differ: x is float64, b is float32"),
    (lambda: kernels.linear_forward(f64(3), f64(3, 5)), ValueError, r"x must be 2-D"),
    (lambda: kernels.linear_backward(f64(2, 5), f64(2, 3), f64(3, 5), relu=True), ValueError, r"relu=True needs y"),
    (lambda: kernels.linear_backward(f64(2, 4), f64(2, 3), f64(3, 5)), ValueError, r"grad_y has shape \(2, 4\), expected \(2, 5\)"),
    (lambda: kernels.linear_backward(f64(2, 5), f64(2, 3), f64(3, 5), dw=f64(5, 3)), ValueError, r"linear_backward: dw has shape \(5, 3\), expected \(3, 5\)"),
    (lambda: kernels.linear_backward(f64(2, 5), f64(2, 3), f64(3, 5), need_db=False, db=f64(5)), ValueError, r"db was given but need_db is False"),
], ids=("misaligned", "bias shape", "bias dtype", "1-D x", "relu without y", "grad shape", "dw shape", "db unneeded"))
def test_bad_input(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


def test_gradient_output_overlapping_input_is_rejected():
    x = np.ones((3, 3))
    w = np.ones((3, 3))
    before = x.copy()
    with pytest.raises(ValueError, match="dx overlaps input x"):
        kernels.linear_backward(np.ones((3, 3)), x, w, dx=x)
    np.testing.assert_array_equal(x, before)


def test_given_gradients_can_be_overwritten_per_output(rng):
    x = rng.standard_normal((6, 5))
    w = rng.standard_normal((5, 4))
    gy = rng.standard_normal((6, 4))
    fresh = kernels.linear_backward(gy, x, w)
    dx = np.full((6, 5), np.nan)  # overwritten: never read, so NaN cannot leak in
    dw = np.ones((5, 4))          # accumulated into
    db = np.full(4, np.nan)
    kernels.linear_backward(gy, x, w, dx=dx, dw=dw, db=db, accumulate=(False, True, False))
    np.testing.assert_allclose(dx, fresh[0])
    np.testing.assert_allclose(dw, fresh[1] + 1)
    np.testing.assert_allclose(db, fresh[2])
    with pytest.raises(TypeError, match="accumulate must be a bool or a tuple of 3 bools"):
        kernels.linear_backward(gy, x, w, accumulate=(True, False))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m", [3, 256, 300])  # within one column chunk, exactly one, past one
def test_masked_gradient_drops_nan_and_inf_where_y_is_not_positive(dtype, m, rng):
    # The mask reads dy everywhere (a vector select): a NaN or inf of dy under a zero
    # output must still give 0 in db and dw, never leak through as NaN.
    x = rng.standard_normal((70, 5)).astype(dtype)
    w = rng.standard_normal((5, m)).astype(dtype)
    y = kernels.linear_forward(x, w, relu=True)
    dy = rng.standard_normal((70, m)).astype(dtype)
    dead = y <= 0
    dy[dead] = np.where(rng.random(int(dead.sum())) < 0.5, np.nan, np.inf)
    dx, dw, db = kernels.linear_backward(dy, x, w, y, relu=True)
    g = np.where(y > 0, dy, 0)
    assert np.isfinite(db).all() and np.isfinite(dw).all() and np.isfinite(dx).all()
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(db, g.sum(axis=0), rtol=tol, atol=tol)
    np.testing.assert_allclose(dw, x.T @ g, rtol=tol, atol=tol)
