"""ops/activations.py and tensor division (ops/elementwise.py's div): forward values against numpy
(and torch in float64 when it is installed), gradients by gradcheck in float64, dtypes kept,
numerical stability, and bad input that raises before anything changes."""

import warnings

import numpy as np
import pytest

import matgrad as mg

rng = np.random.default_rng(4321)


def t64(*shape, kind="normal", requires_grad=True):
    """normal: N(0, 1); positive: U(0.5, 2); away: N(0, 1) pushed ±0.1 off the kink at 0."""
    if kind == "positive":
        a = rng.uniform(0.5, 2.0, shape)
    else:
        a = rng.standard_normal(shape)
        if kind == "away":
            a = np.where(a >= 0, a + 0.1, a - 0.1)
    return mg.tensor(a, requires_grad=requires_grad)


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


def _softmax(a, axis):
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# ---- forward values ------------------------------------------------------------------------------


def test_forward_values_match_numpy():
    x, p = t64(3, 4), t64(3, 4, kind="positive")
    X, P = x.data, p.data
    np.testing.assert_allclose(mg.tanh(x).data, np.tanh(X), rtol=1e-15)
    np.testing.assert_allclose(x.tanh().data, np.tanh(X), rtol=1e-15)
    np.testing.assert_allclose(mg.sigmoid(x).data, _sigmoid(X), rtol=1e-14)
    np.testing.assert_allclose(x.sigmoid().data, _sigmoid(X), rtol=1e-14)
    np.testing.assert_array_equal(mg.exp(x).data, np.exp(X))
    np.testing.assert_array_equal(x.exp().data, np.exp(X))
    np.testing.assert_array_equal(mg.log(p).data, np.log(P))
    np.testing.assert_array_equal(p.log().data, np.log(P))
    np.testing.assert_array_equal(mg.leaky_relu(x).data, np.where(X > 0, X, 0.01 * X))
    np.testing.assert_array_equal(mg.leaky_relu(x, slope=0.3).data, np.where(X > 0, X, 0.3 * X))
    np.testing.assert_allclose((x ** 3).data, X ** 3, rtol=1e-14)
    np.testing.assert_allclose(mg.pow(p, -1.5).data, P ** -1.5, rtol=1e-14)
    np.testing.assert_allclose((p ** 0.5).data, np.sqrt(P), rtol=1e-15)
    np.testing.assert_array_equal((x ** 0).data, np.ones((3, 4)))
    np.testing.assert_allclose(mg.softmax(x).data, _softmax(X, -1), rtol=1e-14)
    np.testing.assert_allclose(mg.softmax(x, axis=0).data, _softmax(X, 0), rtol=1e-14)
    np.testing.assert_allclose(mg.log_softmax(x).data, np.log(_softmax(X, -1)), rtol=1e-13)
    np.testing.assert_allclose(mg.log_softmax(x, axis=0).data, np.log(_softmax(X, 0)), rtol=1e-13)
    np.testing.assert_allclose((x / p).data, X / P, rtol=1e-15)
    np.testing.assert_allclose((2 / p).data, 2 / P, rtol=1e-15)
    np.testing.assert_allclose((np.arange(4.0) / p).data, np.arange(4.0) / P, rtol=1e-15)


def test_softmax_rows_sum_to_one_on_any_axis_of_a_3d_input():
    x = t64(2, 3, 4)
    for axis in (0, 1, 2, -1, -2):
        y = mg.softmax(x, axis=axis).data
        np.testing.assert_allclose(y.sum(axis=axis), 1.0, rtol=1e-14)
        np.testing.assert_allclose(y, _softmax(x.data, axis), rtol=1e-14)
        np.testing.assert_allclose(mg.log_softmax(x, axis=axis).data, np.log(y), rtol=1e-12, atol=1e-15)


def test_zero_dimensional_inputs():
    x = mg.tensor(np.array(0.5), requires_grad=True)
    for fn, dfn in [(mg.tanh, lambda v: 1 - np.tanh(v) ** 2), (mg.sigmoid, lambda v: _sigmoid(v) * (1 - _sigmoid(v))),
                    (mg.exp, np.exp), (mg.log, lambda v: 1 / v), (lambda t: t ** 3, lambda v: 3 * v ** 2),
                    (mg.leaky_relu, lambda v: 1.0), (lambda t: 3 / t, lambda v: -3 / v ** 2)]:
        x.grad = None
        y = fn(x)
        assert y.shape == () and isinstance(y.data, np.ndarray)
        y.backward()
        assert x.grad.shape == ()
        np.testing.assert_allclose(x.grad, dfn(0.5), rtol=1e-14)


# ---- gradients by gradcheck ------------------------------------------------------------------------

CASES = {
    "tanh": (mg.tanh, [(3, 4)], "normal"),
    "tanh_method_3d": (lambda a: a.tanh(), [(2, 3, 2)], "normal"),
    "sigmoid": (mg.sigmoid, [(3, 4)], "normal"),
    "sigmoid_wide_range": (lambda a: (a * 8.0).sigmoid(), [(4, 5)], "normal"),
    "exp": (mg.exp, [(3, 4)], "normal"),
    "log": (mg.log, [(3, 4)], "positive"),
    "leaky_relu": (mg.leaky_relu, [(3, 4)], "away"),
    "leaky_relu_slope": (lambda a: mg.leaky_relu(a, 0.25), [(3, 4)], "away"),
    "pow_square": (lambda a: a ** 2, [(3, 4)], "normal"),
    "pow_cube_int": (lambda a: mg.pow(a, 3), [(3, 4)], "normal"),
    "pow_negative": (lambda a: a ** -2, [(3, 4)], "positive"),
    "pow_fractional": (lambda a: a ** 0.5, [(3, 4)], "positive"),
    "pow_negative_fractional": (lambda a: a ** np.float64(-1.5), [(3, 4)], "positive"),
    "pow_zero": (lambda a: a ** 0 * a, [(3, 4)], "normal"),
    "softmax_last": (mg.softmax, [(3, 4)], "normal"),
    "softmax_axis0": (lambda a: mg.softmax(a, axis=0), [(3, 4)], "normal"),
    "softmax_3d_axis1": (lambda a: mg.softmax(a, axis=1), [(2, 3, 4)], "normal"),
    "softmax_3d_last": (lambda a: mg.softmax(a, axis=-1), [(2, 3, 4)], "normal"),
    "softmax_1d": (mg.softmax, [(5,)], "normal"),
    "log_softmax_last": (mg.log_softmax, [(3, 4)], "normal"),
    "log_softmax_axis0": (lambda a: mg.log_softmax(a, axis=0), [(3, 4)], "normal"),
    "log_softmax_3d_axis0": (lambda a: mg.log_softmax(a, axis=0), [(2, 3, 4)], "normal"),
    "log_softmax_3d_last": (lambda a: mg.log_softmax(a, -1), [(2, 3, 4)], "normal"),
    "div": (lambda a, b: a / b, [(3, 4), (3, 4)], "positive"),
    "div_fn": (mg.div, [(3, 4), (3, 4)], "positive"),
    "div_broadcast_divisor": (lambda a, b: a / b, [(3, 4), (4,)], "positive"),
    "div_broadcast_dividend": (lambda a, b: a / b, [(4,), (3, 4)], "positive"),
    "div_broadcast_both_ways": (lambda a, b: a / b, [(3, 1), (1, 4)], "positive"),
    "div_leading_axes": (lambda a, b: a / b, [(2, 3, 4), (3, 1)], "positive"),
    "div_by_0d": (lambda a, b: a / b, [(3, 4), ()], "positive"),
    "div_same_tensor": (lambda a: a / a + a, [(3, 4)], "positive"),
    "rtruediv_number": (lambda a: 2.0 / a, [(3, 4)], "positive"),
    "rtruediv_array": (lambda a: np.arange(1.0, 5.0) / a, [(3, 4)], "positive"),
    "div_by_number": (lambda a: a / 4, [(3, 4)], "normal"),
    "chain": (lambda a: (mg.exp(a.tanh()) / (a.sigmoid() + 1.0)).log() ** 2, [(3, 4)], "normal"),
    "fan_out": (lambda a: mg.softmax(a.exp()) * a.exp() + mg.log_softmax(a.exp(), axis=0), [(3, 4)], "normal"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_gradcheck(name):
    fn, shapes, kind = CASES[name]
    assert mg.gradcheck(fn, *[t64(*s, kind=kind) for s in shapes])


UNARY = {
    "tanh": (mg.tanh, "normal"), "sigmoid": (mg.sigmoid, "normal"), "exp": (mg.exp, "normal"),
    "log": (mg.log, "positive"), "leaky_relu": (mg.leaky_relu, "away"), "pow": (lambda a: a ** 1.5, "positive"),
    "softmax": (mg.softmax, "normal"), "log_softmax": (mg.log_softmax, "normal"),
    "rdiv": (lambda a: 1.0 / a, "positive"),
}


@pytest.mark.parametrize("name", list(UNARY))
def test_gradcheck_with_fresh_and_read_only_upstream_gradients(name):
    # .sum() hands the op a buffer it may overwrite (own=True); .sum(axis=0) a read-only
    # broadcast view (own=False) that it must not write; * 2.0 a fresh product
    fn, kind = UNARY[name]
    x = t64(3, 4, kind=kind)
    assert mg.gradcheck(lambda a: fn(a).sum(), x)
    assert mg.gradcheck(lambda a: fn(a).sum(axis=0), x)
    assert mg.gradcheck(lambda a: fn(a) * 2.0, x)
    assert mg.gradcheck(lambda a: fn(a) + fn(a).T.T, x)  # two consumers of one input


def test_gradients_accumulate_across_backward_calls():
    x = t64(2, 3)
    mg.tanh(x).sum().backward()
    first = x.grad.copy()
    np.testing.assert_allclose(first, 1 - np.tanh(x.data) ** 2, rtol=1e-14)
    mg.tanh(x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * first, rtol=1e-14)


def test_leaky_relu_gradient_at_zero_is_the_slope():
    x = mg.tensor([-2.0, 0.0, 3.0], dtype=np.float64, requires_grad=True)
    mg.leaky_relu(x, 0.2).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.2, 0.2, 1.0])


def test_pow_zero_has_zero_gradient_even_at_zero():
    x = mg.tensor([0.0, 2.0], dtype=np.float64, requires_grad=True)
    (x ** 0).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0])


def test_softmax_backward_matches_the_explicit_jacobian():
    x = t64(4)
    y = mg.softmax(x).data
    jac = mg.jacobian(mg.softmax, x)  # [i, j] = ∂y_j/∂x_i
    np.testing.assert_allclose(jac, np.diag(y) - np.outer(y, y), rtol=1e-12, atol=1e-15)


def test_no_graph_is_recorded_without_grad():
    x = t64(2, 3, kind="positive")
    with mg.no_grad():
        ys = [mg.tanh(x), mg.sigmoid(x), mg.exp(x), mg.log(x), mg.leaky_relu(x), x ** 2, mg.softmax(x),
              mg.log_softmax(x), x / x, 1 / x]
    assert all(not y.requires_grad and y.is_leaf for y in ys)
    c = t64(2, 3, requires_grad=False)
    assert not mg.softmax(c).requires_grad and not (c / x.detach()).requires_grad
    assert (c / x).requires_grad


# ---- against torch ---------------------------------------------------------------------------------

TORCH_CASES = {
    "tanh": (mg.tanh, lambda t, a: t.tanh(a), "normal"),
    "sigmoid": (mg.sigmoid, lambda t, a: t.sigmoid(a), "normal"),
    "exp": (mg.exp, lambda t, a: t.exp(a), "normal"),
    "log": (mg.log, lambda t, a: t.log(a), "positive"),
    "leaky_relu": (lambda a: mg.leaky_relu(a, 0.1), lambda t, a: t.nn.functional.leaky_relu(a, 0.1), "normal"),
    "pow": (lambda a: a ** -0.7, lambda t, a: a ** -0.7, "positive"),
    "softmax_axis1": (lambda a: mg.softmax(a, 1), lambda t, a: t.softmax(a, 1), "normal"),
    "softmax_last": (mg.softmax, lambda t, a: t.softmax(a, -1), "normal"),
    "log_softmax_axis0": (lambda a: mg.log_softmax(a, 0), lambda t, a: t.log_softmax(a, 0), "normal"),
    "log_softmax_last": (mg.log_softmax, lambda t, a: t.log_softmax(a, -1), "normal"),
    "rdiv": (lambda a: 3.0 / a, lambda t, a: 3.0 / a, "positive"),
}


@pytest.mark.parametrize("name", list(TORCH_CASES))
def test_matches_torch_in_float64(name):
    torch = pytest.importorskip("torch")
    fn, tfn, kind = TORCH_CASES[name]
    x = t64(2, 3, 4, kind=kind)
    g = rng.standard_normal((2, 3, 4))
    y = fn(x)
    y.backward(g)
    xt = torch.tensor(x.data, requires_grad=True)
    yt = tfn(torch, xt)
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(x.grad, xt.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_broadcast_division_matches_torch_in_float64():
    torch = pytest.importorskip("torch")
    a, b = t64(3, 1, kind="positive"), t64(2, 1, 4, kind="positive")
    g = rng.standard_normal((2, 3, 4))
    (a / b).backward(g)
    at, bt = torch.tensor(a.data, requires_grad=True), torch.tensor(b.data, requires_grad=True)
    (at / bt).backward(torch.tensor(g))
    np.testing.assert_allclose(a.grad, at.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(b.grad, bt.grad.numpy(), rtol=1e-12)
    assert a.grad.shape == (3, 1) and b.grad.shape == (2, 1, 4)


# ---- dtypes ----------------------------------------------------------------------------------------

DTYPE_OPS = {
    "tanh": mg.tanh, "sigmoid": mg.sigmoid, "exp": mg.exp, "log": mg.log,
    "leaky_relu": lambda a: mg.leaky_relu(a, 0.2),
    "leaky_relu_np_float64": lambda a: mg.leaky_relu(a - 1.0, np.float64(0.2)),
    "pow": lambda a: a ** 1.5, "pow_np_float64": lambda a: a ** np.float64(2),
    "softmax": lambda a: mg.softmax(a, 0), "log_softmax": mg.log_softmax,
    "div": lambda a: a / (a + 1.0), "rdiv": lambda a: 2.0 / a, "rdiv_float64_scalar": lambda a: np.float64(2.0) / a,
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(DTYPE_OPS))
def test_outputs_and_gradients_keep_the_dtype(name, dtype):
    x = mg.tensor(rng.uniform(0.5, 2.0, (3, 4)), dtype=dtype, requires_grad=True)
    y = DTYPE_OPS[name](x)
    assert y.dtype == dtype
    y.sum().backward()
    assert x.grad.dtype == dtype and x.grad.shape == (3, 4) and np.all(np.isfinite(x.grad))


def test_float32_values_are_close_to_float64():
    x64 = rng.standard_normal((3, 4))
    x32 = mg.tensor(x64, dtype=np.float32)
    for fn in (mg.tanh, mg.sigmoid, mg.exp, mg.softmax, mg.log_softmax, lambda a: mg.leaky_relu(a, 0.1)):
        np.testing.assert_allclose(fn(x32).data, fn(mg.tensor(x64)).data, rtol=1e-5, atol=1e-6)


# ---- numerical stability ---------------------------------------------------------------------------


def test_sigmoid_is_stable_for_large_inputs():
    for dtype in (np.float32, np.float64):
        x = mg.tensor([-1000.0, -40.0, 0.0, 40.0, 1000.0], dtype=dtype, requires_grad=True)
        with np.errstate(over="raise", invalid="raise", divide="raise"), warnings.catch_warnings():
            warnings.simplefilter("error")
            y = mg.sigmoid(x)
            y.sum().backward()
        assert y.data[0] == 0 and y.data[-1] == 1 and y.data[2] == 0.5
        assert np.all(np.isfinite(x.grad)) and x.grad[0] == 0 and x.grad[-1] == 0
    # the small tail keeps its relative precision (1 - (1 - tiny) would lose it)
    y = mg.sigmoid(mg.tensor([-40.0, -700.0], dtype=np.float64)).data
    np.testing.assert_allclose(y, [np.exp(-40.0) / (1 + np.exp(-40.0)), np.exp(-700.0)], rtol=1e-14)


def test_softmax_and_log_softmax_are_stable_for_large_inputs():
    for dtype in (np.float32, np.float64):
        x = mg.tensor([[1000.0, 0.0], [-1000.0, -1000.0]], dtype=dtype, requires_grad=True)
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            y = mg.softmax(x)
            ls = mg.log_softmax(x)
            (y * mg.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=dtype)).sum().backward()
            ls.sum().backward()
        np.testing.assert_array_equal(y.data, [[1.0, 0.0], [0.5, 0.5]])
        np.testing.assert_allclose(ls.data, [[0.0, -1000.0], [-np.log(2), -np.log(2)]], rtol=1e-6)
        assert np.all(np.isfinite(x.grad))


def test_log_follows_numpy_at_zero_and_below():
    x = mg.tensor([-1.0, 0.0, 1.0], dtype=np.float64, requires_grad=True)
    with pytest.warns(RuntimeWarning, match="invalid value encountered in log"):
        y = mg.log(x[0:1])
    assert np.isnan(y.data[0])
    with pytest.warns(RuntimeWarning, match="divide by zero encountered in log"):
        y = mg.log(x[1:])
    np.testing.assert_array_equal(y.data, [-np.inf, 0.0])
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(mg.log(x).data, np.log(x.data))


def test_tensor_division_by_zero_follows_numpy():
    a = mg.tensor([1.0, -1.0], dtype=np.float64)
    with pytest.warns(RuntimeWarning, match="divide by zero"):
        y = a / mg.tensor([0.0, 0.0], dtype=np.float64)
    np.testing.assert_array_equal(y.data, [np.inf, -np.inf])


def test_division_by_a_number_is_unchanged():
    a = t64(3, 4)
    np.testing.assert_array_equal((a / 4).data, a.data * 0.25)
    assert (a / 4)._op == "mul"
    with pytest.raises(ZeroDivisionError, match="div: division of a tensor by zero"):
        a / 0.0
    with pytest.raises(ZeroDivisionError, match="div: division of a tensor by zero"):
        mg.div(a, np.int64(0))


# ---- bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fn, exc, match", [
    (lambda a, b, w: a ** b, TypeError, "pow: the exponent must be a number, got a Tensor"),
    (lambda a, b, w: mg.pow(a, "2"), TypeError, "pow: the exponent must be a number, got str"),
    (lambda a, b, w: a ** np.ones(2), TypeError, "pow: the exponent must be a number, got ndarray"),
    (lambda a, b, w: mg.leaky_relu(a, b), TypeError, "leaky_relu: slope must be a number, got a Tensor"),
    (lambda a, b, w: mg.softmax(a, axis=2), ValueError, r"softmax: axis 2 is invalid for a tensor of shape \(3, 4\)"),
    (lambda a, b, w: mg.softmax(a, axis=-3), ValueError, r"softmax: axis -3 is invalid .* shape \(3, 4\)"),
    (lambda a, b, w: mg.log_softmax(b, axis=1), ValueError, r"log_softmax: axis 1 is invalid .* shape \(5,\)"),
    (lambda a, b, w: mg.softmax(mg.tensor(1.0, requires_grad=True)), ValueError, r"axis -1 is invalid .* shape \(\)"),
    (lambda a, b, w: mg.log_softmax(a, axis=1.0), TypeError, "log_softmax: axis must be an int, got 1.0"),
    (lambda a, b, w: a / b, ValueError, r"div: shapes \(3, 4\) and \(5,\) cannot be broadcast together"),
    (lambda a, b, w: w / a, TypeError, "div: dtypes differ: float64 and float32"),
    (lambda a, b, w: a / np.ones((3, 4)), TypeError,
     "div: dtypes differ: the tensor is float32 but the array is float64"),
    (lambda a, b, w: a / "x", TypeError, "div: expected a Tensor, an ndarray or a number, got str"),
    (lambda a, b, w: "x" / a, TypeError, "div: expected a Tensor, an ndarray or a number, got str"),
    (lambda a, b, w: mg.div(2.0, 3.0), TypeError, "div: expected at least one Tensor"),
    (lambda a, b, w: mg.tanh("abc"), TypeError, "expected numbers"),
])
def test_bad_input_raises_and_changes_nothing(fn, exc, match):
    a = mg.tensor(np.ones((3, 4), np.float32), requires_grad=True)
    b = mg.tensor(np.ones(5, np.float32), requires_grad=True)
    w = mg.tensor(np.ones((4, 3), np.float64), requires_grad=True)
    a.grad = np.full((3, 4), 2.0, np.float32)
    before = [(t.data.copy(), None if t.grad is None else t.grad.copy()) for t in (a, b, w)]
    with pytest.raises(exc, match=match):
        fn(a, b, w)
    for (d, g), t in zip(before, (a, b, w)):
        np.testing.assert_array_equal(t.data, d)
        assert (t.grad is None) if g is None else np.array_equal(t.grad, g)
        assert t.is_leaf
    np.testing.assert_array_equal(a.grad, 2.0)
