"""Every op: forward values against numpy, gradients by gradcheck in float64 (broadcasting and
reductions included), the backward's use of the kernels, and bad input."""

import numpy as np
import pytest

import matgrad as mg
from matgrad import ops

rng = np.random.default_rng(1234)


def t64(*shape, requires_grad=True, away_from_zero=False):
    a = rng.standard_normal(shape)
    if away_from_zero:  # keep ReLU inputs off its kink, where finite differences are meaningless
        a = np.where(a >= 0, a + 0.1, a - 0.1)
    return mg.tensor(a, requires_grad=requires_grad)


# ---- forward values ----------------------------------------------------------------------------


def test_forward_values_match_numpy():
    a, b = t64(3, 4), t64(3, 4)
    w = t64(4, 2)
    bias = t64(2)
    A, B, W, Bi = a.data, b.data, w.data, bias.data
    np.testing.assert_allclose((a @ w).data, A @ W, rtol=1e-12)
    np.testing.assert_allclose(mg.matmul(a, w).data, A @ W, rtol=1e-12)
    np.testing.assert_allclose(mg.linear(a, w, bias).data, A @ W + Bi, rtol=1e-12)
    np.testing.assert_allclose(mg.linear(a, w).data, A @ W, rtol=1e-12)
    np.testing.assert_array_equal((a + b).data, A + B)
    np.testing.assert_array_equal((a - b).data, A - B)
    np.testing.assert_array_equal((a * b).data, A * B)
    np.testing.assert_array_equal((-a).data, -A)
    np.testing.assert_array_equal((a / 4).data, A * 0.25)
    np.testing.assert_array_equal(a.relu().data, np.maximum(A, 0))
    np.testing.assert_array_equal(mg.relu(a).data, np.maximum(A, 0))
    np.testing.assert_allclose(a.sum().data, A.sum(), rtol=1e-12)
    np.testing.assert_allclose(a.sum(axis=0).data, A.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(a.mean(axis=1, keepdims=True).data, A.mean(axis=1, keepdims=True), rtol=1e-12)
    np.testing.assert_array_equal(a.T.data, A.T)
    np.testing.assert_array_equal(a.reshape(2, 6).data, A.reshape(2, 6))
    np.testing.assert_array_equal(a.reshape((-1,)).data, A.reshape(-1))
    assert a.sum().shape == () and isinstance(a.sum().data, np.ndarray)


def test_scalars_and_arrays_as_operands():
    a = mg.tensor([1.0, 2.0], requires_grad=True)  # float32
    for y, expect in [(a + 1, [2, 3]), (1 + a, [2, 3]), (a - 1, [0, 1]), (3 - a, [2, 1]), (a * 2, [2, 4]),
                      (2 * a, [2, 4]), (a / 2, [0.5, 1]), (a + np.float64(1.5), [2.5, 3.5]),
                      (np.array([1, 1]) + a, [2, 3]), (a * [2, 3], [2, 6])]:
        assert isinstance(y, mg.Tensor) and y.dtype == np.float32
        np.testing.assert_array_equal(y.data, expect)
    (3 - a).sum().backward()
    np.testing.assert_array_equal(a.grad, [-1, -1])
    y = np.ones((2, 2), np.float32) @ mg.tensor(np.eye(2, dtype=np.float32), requires_grad=True)
    assert isinstance(y, mg.Tensor) and y.requires_grad


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_outputs_and_gradients_keep_the_dtype(dtype):
    x = mg.tensor(np.ones((2, 3)), dtype=dtype, requires_grad=True)
    w = mg.tensor(np.ones((3, 4)), dtype=dtype, requires_grad=True)
    b = mg.tensor(np.ones(4), dtype=dtype, requires_grad=True)
    y = (mg.linear(x, w, b).relu() * 0.5 - 1.0).mean(axis=0)
    assert y.dtype == dtype
    y.sum().backward()
    for t in (x, w, b):
        assert t.grad.dtype == dtype and t.grad.shape == t.shape


# ---- gradients by gradcheck ----------------------------------------------------------------------

CASES = {
    "matmul": (lambda x, w: x @ w, [(3, 4), (4, 5)]),
    "matmul_fn": (mg.matmul, [(2, 3), (3, 2)]),
    "matmul_transposed_views": (lambda x, w: x.T @ w.T, [(4, 3), (2, 4)]),
    "linear": (mg.linear, [(3, 4), (4, 5), (5,)]),
    "linear_no_bias": (lambda x, w: mg.linear(x, w), [(3, 4), (4, 2)]),
    "linear_row_bias": (mg.linear, [(3, 4), (4, 2), (1, 2)]),
    "linear_relu_fused": (lambda x, w, b: mg.linear(x, w, b, relu=True), [(5, 4), (4, 6), (6,)]),
    "linear_relu_no_bias": (lambda x, w: mg.linear(x, w, relu=True), [(3, 7), (7, 4)]),
    "linear_relu_row_bias": (lambda x, w, b: mg.linear(x, w, b, relu=True), [(3, 4), (4, 2), (1, 2)]),
    "linear_relu_transposed_input": (lambda x, w, b: mg.linear(x.T, w, b, relu=True), [(4, 3), (4, 5), (5,)]),
    "add": (lambda a, b: a + b, [(3, 4), (3, 4)]),
    "add_bias_broadcast": (lambda a, b: a + b, [(3, 4), (4,)]),
    "add_outer_broadcast": (lambda a, b: a + b, [(3, 1), (1, 4)]),
    "add_leading_axes": (lambda a, b: a + b, [(2, 3, 4), (3, 1)]),
    "add_scalar": (lambda a: 2.5 + a, [(3,)]),
    "sub": (lambda a, b: a - b, [(3, 4), (3, 4)]),
    "sub_broadcast": (lambda a, b: a - b, [(4,), (3, 4)]),
    "rsub_scalar": (lambda a: 1.0 - a, [(2, 2)]),
    "mul": (lambda a, b: a * b, [(3, 4), (3, 4)]),
    "mul_broadcast": (lambda a, b: a * b, [(3, 4), (3, 1)]),
    "mul_0d": (lambda a, b: a * b, [(3, 4), ()]),
    "mul_scalar": (lambda a: a * -3.0, [(2, 3)]),
    "div_scalar": (lambda a: a / 4.0, [(2, 3)]),
    "neg": (lambda a: -a, [(2, 3)]),
    "square_same_tensor": (lambda a: a * a, [(2, 3)]),
    "sum_all": (lambda a: a.sum(), [(3, 4)]),
    "sum_axis0": (lambda a: a.sum(axis=0), [(3, 4)]),
    "sum_axis_neg": (lambda a: a.sum(axis=-1), [(2, 3, 4)]),
    "sum_axes_tuple": (lambda a: mg.sum(a, axis=(0, 2)), [(2, 3, 4)]),
    "sum_keepdims": (lambda a: a.sum(axis=1, keepdims=True), [(3, 4)]),
    "mean_all": (lambda a: a.mean(), [(3, 4)]),
    "mean_axis1": (lambda a: a.mean(axis=1), [(3, 4)]),
    "mean_keepdims": (lambda a: mg.mean(a, axis=0, keepdims=True), [(3, 4)]),
    "transpose": (lambda a: a.T, [(3, 4)]),
    "transpose_fn": (mg.transpose, [(2, 5)]),
    "reshape": (lambda a: a.reshape(6, 2), [(3, 4)]),
    "reshape_of_transpose": (lambda a: a.T.reshape(-1), [(3, 4)]),
    "two_layer_net": (lambda x, w1, b1, w2: mg.linear(x, w1, b1).relu() @ w2, [(4, 3), (3, 5), (5,), (5, 2)]),
    "fan_out": (lambda a, w: (a @ w) * (a @ w) + (a @ w).relu() - a.sum(axis=1, keepdims=True), [(3, 4), (4, 2)]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_gradcheck(name):
    fn, shapes = CASES[name]
    inputs = [t64(*s) for s in shapes]
    assert mg.gradcheck(fn, *inputs)


@pytest.mark.parametrize("shape", [(4,), (3, 4), (2, 3, 2)])
def test_gradcheck_relu(shape):
    assert mg.gradcheck(mg.relu, t64(*shape, away_from_zero=True))
    assert mg.gradcheck(lambda a: (a * 2.0).relu() * a, t64(*shape, away_from_zero=True))


def test_gradcheck_with_an_input_that_does_not_require_grad():
    x = t64(3, 4, requires_grad=False)
    w = t64(4, 2)
    assert mg.gradcheck(lambda x, w: (x @ w).relu() + x.sum(), x, w)
    assert x.grad is None


# ---- how the backward uses the kernels ----------------------------------------------------------


class _CountingMatmul:
    def __init__(self, real):
        self.real, self.calls = real, []

    def __call__(self, a, b, trans_a=False, trans_b=False, out=None, accumulate=False):
        self.calls.append((a.shape, b.shape, trans_a, trans_b, out is not None, accumulate))
        return self.real(a, b, trans_a, trans_b, out=out, accumulate=accumulate)


def test_matmul_backward_uses_transpose_flags_and_skips_inputs_without_grad(monkeypatch):
    x = mg.tensor(np.ones((2, 3), np.float32))  # no grad wanted
    w = mg.tensor(np.ones((3, 4), np.float32), requires_grad=True)
    y = x @ w
    spy = _CountingMatmul(ops.linalg._matmul)
    monkeypatch.setattr(ops.linalg, "_matmul", spy)
    y.backward(np.ones((2, 4), np.float32))
    # only dL/dw = xᵀ·dL/dy, with x passed untransposed and trans_a set
    assert spy.calls == [((2, 3), (2, 4), True, False, False, False)]
    assert x.grad is None


def test_matmul_backward_accumulates_into_the_existing_buffer(monkeypatch):
    x = mg.tensor(np.ones((2, 3), np.float32), requires_grad=True)
    w = mg.tensor(np.ones((3, 4), np.float32), requires_grad=True)
    (x @ w).backward(np.ones((2, 4), np.float32))
    gx, gw = x.grad, w.grad
    y = x @ w
    spy = _CountingMatmul(ops.linalg._matmul)
    monkeypatch.setattr(ops.linalg, "_matmul", spy)
    y.backward(np.ones((2, 4), np.float32))
    # dL/dx = dL/dy·wᵀ (trans_b) and dL/dw = xᵀ·dL/dy (trans_a), both added in place
    assert spy.calls == [((2, 4), (3, 4), False, True, True, True), ((2, 3), (2, 4), True, False, True, True)]
    assert x.grad is gx and w.grad is gw
    np.testing.assert_array_equal(w.grad, 4.0)
    np.testing.assert_array_equal(x.grad, 8.0)


def test_relu_backward_uses_the_kernel_mask(monkeypatch):
    seen = []
    real = ops.elementwise._relu_backward

    def spy(gy, x, out=None):
        seen.append(x.copy())
        return real(gy, x, out=out)

    monkeypatch.setattr(ops.elementwise, "_relu_backward", spy)
    x = mg.tensor([1.0, -2.0, 3.0, -1.0], requires_grad=True)
    x.relu().backward(np.array([4.0, -1.0, 5.0, 9.0], np.float32))
    assert len(seen) == 1
    np.testing.assert_array_equal(seen[0], [1, -2, 3, -1])
    np.testing.assert_array_equal(x.grad, [4, 0, 5, 0])


def test_zero_grad_buffer_is_reused_only_when_nobody_holds_it():
    x = mg.tensor(np.ones((2, 3), np.float32))
    w = mg.tensor(np.ones((3, 4), np.float32), requires_grad=True)
    (x @ w).sum().backward()
    kept = w.grad
    w.zero_grad()
    assert w.grad is None
    (x @ w * 2.0).sum().backward()
    assert w.grad is not kept  # the caller still holds the old one: it is not overwritten
    np.testing.assert_array_equal(kept, 2.0)
    np.testing.assert_array_equal(w.grad, 4.0)
    buf_id = id(w.grad)
    w.zero_grad()
    (x @ w * 3.0).sum().backward()
    assert id(w.grad) == buf_id  # reused
    np.testing.assert_array_equal(w.grad, 6.0)


def test_shared_upstream_buffers_are_never_written_in_place():
    # h feeds two consumers whose backward could reuse dL/dy in place; both must see the right one
    x = t64(3, 4)
    w = t64(4, 4)
    assert mg.gradcheck(lambda x, w: ((x @ w) + (x @ w)).relu() * 3.0 - (x @ w).T.T, x, w)
    a = t64(2, 3)
    assert mg.gradcheck(lambda a: -(a + a) + (-a).relu().relu() + a.reshape(3, 2).T, a)


# ---- bad input ------------------------------------------------------------------------------------


def _snapshot(*ts):
    return [(t.data.copy(), None if t.grad is None else t.grad.copy()) for t in ts]


def _unchanged(snap, ts):
    for (d, g), t in zip(snap, ts):
        np.testing.assert_array_equal(t.data, d)
        assert (t.grad is None) if g is None else np.array_equal(t.grad, g)
        assert t.is_leaf


@pytest.mark.parametrize("fn, exc, match", [
    (lambda a, b, w: a @ a, ValueError, r"\(3, 4\) and \(3, 4\) are not aligned"),
    (lambda a, b, w: a + b, ValueError, r"add: shapes \(3, 4\) and \(5,\) cannot be broadcast"),
    (lambda a, b, w: a - b, ValueError, r"sub: shapes \(3, 4\) and \(5,\)"),
    (lambda a, b, w: a * b, ValueError, r"mul: shapes \(3, 4\) and \(5,\)"),
    (lambda a, b, w: mg.linear(a, mg.tensor(np.ones((4, 2), np.float32)), b), ValueError,
     r"bias of shape \(5,\) does not broadcast to x·w of shape \(3, 2\)"),
    (lambda a, b, w: a + w, TypeError, "add: dtypes differ: float32 and float64"),
    (lambda a, b, w: a * w.T, TypeError, "mul: dtypes differ"),
    (lambda a, b, w: a @ w, TypeError, "float32.*float64"),
    (lambda a, b, w: mg.linear(a, mg.tensor(np.ones((4, 2), np.float32)), mg.tensor(np.ones(2))), TypeError,
     "linear: dtypes differ"),
    (lambda a, b, w: a + np.ones((3, 4)), TypeError, "float32 but the array is float64"),
    (lambda a, b, w: a + "x", TypeError, "got str"),
    (lambda a, b, w: a.sum(axis=2), ValueError, r"sum: axis 2 is invalid for a tensor of shape \(3, 4\)"),
    (lambda a, b, w: a.mean(axis=(0, 0)), ValueError, "mean: axis"),
    (lambda a, b, w: a.sum(axis="x"), TypeError, "axis must be"),
    (lambda a, b, w: a.reshape(5, 3), ValueError, r"cannot reshape a tensor of shape \(3, 4\).*\(5, 3\)"),
    (lambda a, b, w: a / b, ValueError, r"div: shapes \(3, 4\) and \(5,\) cannot be broadcast"),
    (lambda a, b, w: mg.tensor(np.ones(3), requires_grad=True) @ w, ValueError, "2-D"),
    (lambda a, b, w: mg.mean(mg.tensor(np.ones((0, 3))), axis=0), ValueError, "no elements"),
])
def test_bad_input_raises_and_changes_no_leaf(fn, exc, match):
    a = mg.tensor(np.ones((3, 4), np.float32), requires_grad=True)
    b = mg.tensor(np.ones(5, np.float32), requires_grad=True)
    w = mg.tensor(np.ones((4, 5), np.float64), requires_grad=True)
    a.grad = np.full((3, 4), 2.0, np.float32)
    snap = _snapshot(a, b, w)
    with pytest.raises(exc, match=match):
        fn(a, b, w)
    _unchanged(snap, [a, b, w])


def test_unary_functions_accept_arrays_as_constants():
    y = mg.relu(np.array([-1.0, 2.0]))
    assert isinstance(y, mg.Tensor) and not y.requires_grad and y.dtype == np.float64
    np.testing.assert_array_equal(y.data, [0, 2])
    with pytest.raises(TypeError):
        mg.relu("abc")


_GRAPH_OPS = [
    lambda a, b, c: a @ b, lambda a, b, c: a + b, lambda a, b, c: a - b, lambda a, b, c: a * b,
    lambda a, b, c: -a, lambda a, b, c: a.relu(), lambda a, b, c: a.T, lambda a, b, c: a.reshape(9).reshape(3, 3),
    lambda a, b, c: a + c, lambda a, b, c: c * a, lambda a, b, c: a * 0.7, lambda a, b, c: 1.5 - a,
]


def _random_graph(seed):
    """fn(w1, w2, bias) building a random DAG of 20 ops in which values are reused (fan-out)."""
    plan_rng = np.random.default_rng(seed)
    plan = [(int(plan_rng.integers(len(_GRAPH_OPS))), int(plan_rng.integers(3 + k)), int(plan_rng.integers(3 + k)))
            for k in range(20)]
    pick = [int(v) for v in plan_rng.integers(3, 23, size=3)]
    const = mg.tensor(plan_rng.standard_normal((3, 3)))

    def fn(w1, w2, bias):
        vals = [w1, w2, const]
        for op, i, j in plan:
            vals.append(_GRAPH_OPS[op](vals[i], vals[j], bias))
        return vals[pick[0]] + vals[pick[1]] * vals[pick[2]]

    return fn


@pytest.mark.parametrize("seed", range(0, 40, 4))
def test_gradcheck_random_graphs_with_fan_out(seed):
    # shared upstream gradients must never be written in place by one of their readers
    for s in range(seed, seed + 4):
        data = np.random.default_rng(1000 + s)
        w1, w2 = (mg.tensor(data.standard_normal((3, 3)), requires_grad=True) for _ in range(2))
        bias = mg.tensor(data.standard_normal(3), requires_grad=True)
        assert mg.gradcheck(_random_graph(s), w1, w2, bias)


def test_fused_linear_relu_is_one_node_and_matches_the_composed_graph():
    x, w, b = t64(6, 5), t64(5, 4), t64(4)
    gy = rng.standard_normal((6, 4))
    fused = mg.linear(x, w, b, relu=True)
    assert fused._op == "linear_relu" and len(fused._prev) == 3
    fused.backward(gy)
    grads = [t.grad.copy() for t in (x, w, b)]
    for t in (x, w, b):
        t.zero_grad()
    composed = (x @ w + b).relu()
    np.testing.assert_allclose(fused.data, composed.data, rtol=1e-12, atol=1e-12)
    composed.backward(gy)
    for t, g in zip((x, w, b), grads):
        np.testing.assert_allclose(t.grad, g, rtol=1e-12, atol=1e-12)


def test_fused_linear_accumulates_and_overwrites_recycled_buffers():
    x, w, b = t64(4, 3), t64(3, 2), t64(2)
    gy = rng.standard_normal((4, 2))
    mg.linear(x, w, b, relu=True).backward(gy)
    once = [t.grad.copy() for t in (x, w, b)]
    mg.linear(x, w, b, relu=True).backward(gy)  # no zero_grad: contributions add up
    for t, g in zip((x, w, b), once):
        np.testing.assert_allclose(t.grad, 2 * g, rtol=1e-12)
    for t in (x, w, b):
        t.zero_grad()  # keeps the buffers for reuse; the next backward must overwrite them
    mg.linear(x, w, b, relu=True).backward(gy)
    for t, g in zip((x, w, b), once):
        np.testing.assert_allclose(t.grad, g, rtol=1e-12)


def test_fused_linear_skips_inputs_that_need_no_gradient():
    x = t64(4, 3, requires_grad=False)
    w, b = t64(3, 2), t64(2, requires_grad=False)
    mg.linear(x, w, b, relu=True).sum().backward()
    assert x.grad is None and b.grad is None and w.grad.shape == (3, 2)


@pytest.mark.parametrize("relu", (False, True))
def test_linear_with_the_same_tensor_twice(relu):
    a = t64(4, 4)
    gy = rng.standard_normal((4, 4))
    mg.linear(a, a, relu=relu).backward(gy)
    fused = a.grad.copy()
    a.zero_grad()
    y = a @ a
    (y.relu() if relu else y).backward(gy)
    np.testing.assert_allclose(fused, a.grad, rtol=1e-12, atol=1e-12)
    a.zero_grad()
    mg.linear(a, a, relu=relu).backward(gy)  # again, into the recycled buffer
    np.testing.assert_allclose(a.grad, fused, rtol=1e-12, atol=1e-12)
    assert mg.gradcheck(lambda t: mg.linear(t, t, relu=relu), t64(3, 3, away_from_zero=True))


def test_division_by_zero_names_the_op():
    with pytest.raises(ZeroDivisionError, match="div: division of a tensor by zero"):
        t64(2, 2) / 0
