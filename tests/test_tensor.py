"""Tensor construction, the backward driver (order, accumulation, release, errors) and grad mode."""

import gc
import threading
import weakref

import numpy as np
import pytest

import matgrad as mg


# ---- construction ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_arrays_are_kept_without_copy(dtype):
    a = np.arange(6, dtype=dtype).reshape(2, 3)
    t = mg.tensor(a)
    assert t.data is a
    assert t.dtype == dtype and t.shape == (2, 3) and t.ndim == 2 and t.size == 6
    assert t.numpy() is a
    assert t.grad is None and not t.requires_grad and t.is_leaf


def test_non_contiguous_arrays_become_c_contiguous_copies():
    a = np.arange(6, dtype=np.float64).reshape(2, 3)
    t = mg.tensor(a.T)
    assert t.data.flags.c_contiguous and t.dtype == np.float64
    np.testing.assert_array_equal(t.data, a.T)


@pytest.mark.parametrize("data", [3, 2.5, [1, 2, 3], [[1.5, 2.0]], np.arange(4), np.array([True, False])])
def test_numbers_lists_and_integer_arrays_become_float32(data):
    t = mg.tensor(data)
    assert t.dtype == np.float32 and type(t.data) is np.ndarray
    assert t.shape == np.shape(data)  # a Python number is a 0-d tensor
    np.testing.assert_array_equal(t.data, np.asarray(data, dtype=np.float32))


def test_dtype_argument_converts():
    assert mg.tensor([1, 2], dtype=np.float64).dtype == np.float64
    assert mg.tensor(np.ones(2, np.float64), dtype="float32").dtype == np.float32
    big_endian = np.arange(3, dtype=">f8")
    t = mg.tensor(big_endian)
    assert t.dtype == np.float64 and t.dtype.isnative
    np.testing.assert_array_equal(t.data, [0, 1, 2])


@pytest.mark.parametrize("bad, match", [
    (np.ones(2, np.float16), "float16"),
    (np.array(["a"]), "dtype"),
    (np.ones(2, np.complex128), "complex"),
    ("abc", "numbers"),
    ([[1, 2], [3]], "cannot make an array"),
])
def test_bad_data_is_a_type_error(bad, match):
    with pytest.raises(TypeError, match=match):
        mg.tensor(bad)


@pytest.mark.parametrize("dtype", [np.int32, np.float16, "complex64"])
def test_bad_dtype_argument(dtype):
    with pytest.raises(TypeError, match="float32 or float64"):
        mg.tensor([1.0], dtype=dtype)


class _SubArray(np.ndarray):
    pass


def test_array_subclasses_become_plain_arrays():
    t = mg.tensor(np.ones((1, 2)).view(_SubArray))
    assert type(t.data) is np.ndarray and t.shape == (1, 2)


def test_0d_tensors_stay_arrays_through_ops_and_accumulate():
    s = mg.tensor(2.0, dtype=np.float64, requires_grad=True)
    y = s * s * 3.0 - s  # 3s² - s
    assert type(y.data) is np.ndarray and y.shape == ()
    y.backward(retain_graph=True)
    assert type(s.grad) is np.ndarray and s.grad.shape == () and s.grad == 11.0  # 6s - 1
    y.backward()
    assert s.grad == 22.0
    (-s).backward()
    assert s.grad == 21.0


def test_item_and_repr():
    assert mg.tensor([[2.5]]).item() == 2.5
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        mg.tensor([1, 2]).item()
    r = repr(mg.tensor([1.0, 2.0], requires_grad=True))
    assert "requires_grad=True" in r and "float32" in r


def test_detach_shares_data_and_leaves_the_graph():
    a = mg.tensor([1.0, 2.0], requires_grad=True)
    d = (a * 2).detach()
    assert not d.requires_grad and d.is_leaf
    np.testing.assert_array_equal(d.data, [2, 4])


# ---- backward: seeds and errors -------------------------------------------------------------


def test_scalar_backward_needs_no_grad_argument():
    x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [2, 4, 6])
    assert x.grad.dtype == np.float32


def test_upstream_gradient_for_a_non_scalar_output():
    x = mg.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    y = x * 3.0
    g = np.array([[1, 2, 3], [4, 5, 6]], np.float64)
    y.backward(g)
    np.testing.assert_array_equal(x.grad, 3 * g)
    g[0, 0] = 100  # the caller's array is not the gradient buffer
    assert x.grad[0, 0] == 3
    y2 = x * 1.0
    y2.backward(mg.tensor(np.ones((2, 3))))  # a Tensor works as grad too
    np.testing.assert_array_equal(x.grad, 3 * np.array([[1, 2, 3], [4, 5, 6]]) + 1)


def test_integer_upstream_gradient_is_cast():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    (x * 2.0).backward(np.array([1, 1]))
    np.testing.assert_array_equal(x.grad, [2, 2])
    assert x.grad.dtype == np.float32


def _leaf_state(*ts):
    return [(t.data.copy(), None if t.grad is None else t.grad.copy()) for t in ts]


def _assert_same_state(before, ts):
    for (data, grad), t in zip(before, ts):
        np.testing.assert_array_equal(t.data, data)
        if grad is None:
            assert t.grad is None
        else:
            np.testing.assert_array_equal(t.grad, grad)


def test_non_scalar_backward_without_grad_raises_and_changes_nothing():
    x = mg.tensor(np.ones((2, 2)), dtype=np.float32, requires_grad=True)
    x.grad = np.full((2, 2), 7.0, np.float32)
    before = _leaf_state(x)
    y = x * 2.0
    with pytest.raises(RuntimeError, match=r"shape \(2, 2\).*grad="):
        y.backward()
    _assert_same_state(before, [x])
    y.backward(np.ones((2, 2), np.float32))  # the graph was not released by the failed call
    np.testing.assert_array_equal(x.grad, 9.0)


@pytest.mark.parametrize("grad, exc, match", [
    (np.ones((3, 2), np.float32), ValueError, r"grad has shape \(3, 2\) but the tensor has shape \(2, 3\)"),
    (np.ones(6, np.float32), ValueError, "shape"),
    (np.ones((2, 3), np.float64), TypeError, "float64.*float32"),
    (np.array([["a"] * 3] * 2), TypeError, "numbers"),
])
def test_bad_upstream_gradient_raises_and_changes_nothing(grad, exc, match):
    x = mg.tensor(np.ones((2, 3)), dtype=np.float32, requires_grad=True)
    w = mg.tensor(np.ones((3, 3)), dtype=np.float32, requires_grad=True)
    before = _leaf_state(x, w)
    y = x @ w
    with pytest.raises(exc, match=match):
        y.backward(grad)
    _assert_same_state(before, [x, w])


def test_backward_on_a_tensor_without_grad():
    with pytest.raises(RuntimeError, match="does not require grad"):
        mg.tensor([1.0]).backward()
    a = mg.tensor([1.0, 2.0])
    with pytest.raises(RuntimeError, match="does not require grad"):
        (a * 2).sum().backward()


def test_backward_on_a_leaf():
    x = mg.tensor([[3.0]], requires_grad=True)
    x.backward()
    x.backward()
    np.testing.assert_array_equal(x.grad, [[2.0]])


# ---- accumulation, fan-out, ownership of buffers ----------------------------------------------


def test_fan_out_accumulates_both_contributions():
    a = mg.tensor([1.0, -2.0, 3.0], dtype=np.float64, requires_grad=True)
    b = a + a  # b = 2a
    c = b * b  # c = 4a², dc/da = 8a
    c.sum().backward()
    np.testing.assert_array_equal(a.grad, 8 * a.data)


@pytest.mark.parametrize("build, grad_y", [
    # breadth-first from the root finds y before relu(y), one of its consumers
    (lambda y: y + y.relu(), lambda y: 1.0 + (y > 0)),
    (lambda y: y.relu() + y, lambda y: 1.0 + (y > 0)),
    (lambda y: (y * 2.0).relu() + y.relu() * 3.0, lambda y: 5.0 * (y > 0)),
])
def test_an_op_feeding_several_ops_runs_after_all_of_them(build, grad_y):
    # Where the breadth-first discovery order is not a valid order, the ops are sorted by
    # creation; running y's backward before relu(y)'s would drop relu(y)'s share of dL/dy.
    a = mg.tensor(np.array([[1.0, -2.0], [3.0, -0.5]]), requires_grad=True)
    b = mg.tensor(np.array([[0.5, 1.0], [-1.0, 2.0]]), requires_grad=True)
    build(a @ b).sum().backward()
    dy = grad_y(a.data @ b.data)
    np.testing.assert_allclose(a.grad, dy @ b.data.T)
    np.testing.assert_allclose(b.grad, a.data.T @ dy)


def test_gradients_accumulate_across_backward_calls():
    w = mg.tensor(np.ones((2, 2), np.float32), requires_grad=True)
    x = mg.tensor(np.array([[1.0, 2.0]], np.float32))
    (x @ w).sum().backward()
    first = w.grad.copy()
    buf = w.grad
    (x @ w).sum().backward()
    np.testing.assert_array_equal(w.grad, 2 * first)
    assert w.grad is buf  # accumulated into the same buffer (the kernel's accumulate mode)


def test_leaves_get_separate_owned_buffers():
    a = mg.tensor(np.ones(3, np.float32), requires_grad=True)
    b = mg.tensor(np.ones(3, np.float32), requires_grad=True)
    g = np.array([1.0, 2.0, 3.0], np.float32)
    (a + b).backward(g)
    assert a.grad is not b.grad and a.grad is not g
    assert a.grad.flags.c_contiguous and a.grad.flags.writeable
    a.grad[0] = 50
    np.testing.assert_array_equal(b.grad, [1, 2, 3])
    np.testing.assert_array_equal(g, [1, 2, 3])


def test_leaf_grad_of_a_transposed_use_is_c_contiguous():
    w = mg.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    w.T.sum().backward()
    assert w.grad.shape == (2, 3) and w.grad.flags.c_contiguous and w.grad.flags.writeable
    np.testing.assert_array_equal(w.grad, np.ones((2, 3)))


def test_intermediate_gradients_are_not_kept():
    x = mg.tensor(np.ones((2, 3)), requires_grad=True)
    w = mg.tensor(np.ones((3, 4)), requires_grad=True)
    h = x @ w
    r = h.relu()
    r.sum().backward()
    assert h.grad is None and r.grad is None
    assert x.grad is not None and w.grad is not None


# ---- retain_graph and release ------------------------------------------------------------------


def _graph(retain_data):
    x = mg.tensor(np.ones((2, 3)), requires_grad=True)
    w = mg.tensor(np.full((3, 4), 0.5), requires_grad=True)
    h = (x @ w).relu()  # h's data is only held by the graph once h goes out of scope
    retain_data.append(weakref.ref(h.data))
    return x, w, (h * 2.0).sum()


def test_backward_twice_raises_and_changes_nothing():
    refs = []
    x, w, loss = _graph(refs)
    loss.backward()
    before = _leaf_state(x, w)
    with pytest.raises(RuntimeError, match="already released.*retain_graph=True"):
        loss.backward()
    _assert_same_state(before, [x, w])


def test_saved_buffers_are_released_after_backward():
    refs = []
    x, w, loss = _graph(refs)
    gc.collect()
    assert refs[0]() is not None  # held by the graph
    loss.backward()
    gc.collect()
    assert refs[0]() is None  # released with the graph


def test_retain_graph_keeps_buffers_and_allows_a_second_backward():
    refs = []
    x, w, loss = _graph(refs)
    loss.backward(retain_graph=True)
    gc.collect()
    assert refs[0]() is not None
    first = w.grad.copy()
    loss.backward()
    np.testing.assert_array_equal(w.grad, 2 * first)
    with pytest.raises(RuntimeError, match="already released"):
        loss.backward()


def test_a_new_graph_through_a_released_node_raises():
    x = mg.tensor(np.ones(3), requires_grad=True)
    h = x * 2.0
    h.sum().backward()
    with pytest.raises(RuntimeError, match="already released"):
        (h * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [2, 2, 2])


def test_a_chain_of_100000_ops():
    x = mg.tensor([1.0, 2.0], dtype=np.float64, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.00001
    y.sum().backward()  # iterative: no recursion limit
    np.testing.assert_allclose(x.grad, [1.00001 ** 100_000] * 2, rtol=1e-9)


def test_a_retained_chain_of_100000_ops_backward_twice_then_freed():
    x = mg.tensor([1.0], dtype=np.float64, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y + 1.0
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_array_equal(x.grad, [2.0])
    z = x
    for _ in range(100_000):
        z = z - 1.0
    del z  # an unreleased 100,000-node graph dropped at once (a recursive teardown would crash)
    gc.collect()
    np.testing.assert_array_equal(x.data, [1.0])


def test_an_error_inside_backward_leaves_no_intermediate_gradients(monkeypatch):
    x = mg.tensor(np.ones((2, 2), np.float32), requires_grad=True)
    h = x * 2.0
    y = h.relu()

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(mg.ops.elementwise, "_relu_backward", broken)
    with pytest.raises(RuntimeError, match="boom"):
        y.backward(np.ones((2, 2), np.float32))
    assert h.grad is None and y.grad is None and x.grad is None


# ---- grad mode ----------------------------------------------------------------------------------


def test_no_grad_records_nothing():
    x = mg.tensor(np.ones(3), requires_grad=True)
    with mg.no_grad():
        assert not mg.is_grad_enabled()
        y = (x * 2.0).relu().sum()
    assert mg.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()


def test_no_grad_as_decorator_nested_and_enable_grad():
    x = mg.tensor(np.ones(3), requires_grad=True)

    @mg.no_grad()
    def f(t):
        return t * 2.0

    assert not f(x).requires_grad
    assert f.__name__ == "f"
    with mg.no_grad():
        with mg.no_grad():
            pass
        assert not mg.is_grad_enabled()  # the inner block restored the outer state
        with mg.enable_grad():
            assert (x * 2.0).requires_grad
        assert not (x * 2.0).requires_grad
    assert (x * 2.0).requires_grad


def test_no_grad_restores_the_state_after_an_exception():
    with pytest.raises(KeyError):
        with mg.no_grad():
            raise KeyError
    assert mg.is_grad_enabled()


def test_no_grad_is_thread_local():
    x = mg.tensor(np.ones(3), requires_grad=True)
    entered, checked = threading.Event(), threading.Event()
    seen = {}

    def other():
        entered.wait(10)
        seen["enabled"] = mg.is_grad_enabled()
        seen["records"] = (x * 2.0).requires_grad
        checked.set()

    t = threading.Thread(target=other)
    t.start()
    with mg.no_grad():
        entered.set()
        checked.wait(10)
        seen["main"] = mg.is_grad_enabled()
    t.join(10)
    assert seen == {"enabled": True, "records": True, "main": False}


def test_requires_grad_propagates_only_from_inputs_that_need_it():
    a = mg.tensor([1.0, 2.0])
    b = mg.tensor([3.0, 4.0], requires_grad=True)
    assert not (a * 2.0).requires_grad
    assert (a * b).requires_grad
    (a * b).sum().backward()
    assert a.grad is None
    np.testing.assert_array_equal(b.grad, [1, 2])


def test_gradient_assigned_by_hand_is_never_written_in_place():
    # Ownership goes by identity: after a backward the leaf owns its buffer, but an array the
    # caller assigns to .grad is theirs, and the next backward must replace it, not add into it.
    w = mg.tensor(np.ones((2, 2)), dtype=np.float64, requires_grad=True)
    x = mg.tensor(np.ones((2, 2)), dtype=np.float64)
    (x @ w).sum().backward()  # w now owns its gradient
    mine = np.zeros((2, 2))
    w.grad = mine
    (x @ w).sum().backward()
    np.testing.assert_array_equal(mine, np.zeros((2, 2)))  # untouched
    np.testing.assert_array_equal(w.grad, np.full((2, 2), 2.0))  # 0 + the new contribution
    w.grad = mine  # assigned by hand on a tensor that never owned it: also left alone
    (x @ w).sum().backward()
    np.testing.assert_array_equal(mine, np.zeros((2, 2)))


def test_spare_buffer_is_not_reused_while_a_view_of_it_is_held():
    x = mg.tensor(np.ones((3, 2)), dtype=np.float64)
    w = mg.tensor(np.ones((2, 2)), dtype=np.float64, requires_grad=True)
    b = mg.tensor(np.zeros(2), dtype=np.float64, requires_grad=True)
    (x @ w + b).sum().backward()
    kept = b.grad[:]  # a view: the refcount of b.grad itself does not show it
    before = kept.copy()
    b.zero_grad()
    mg.linear(x, w, b).sum().backward()
    np.testing.assert_array_equal(kept, before)


def test_matmul_spare_buffer_survives_a_dtype_change():
    x = mg.tensor(np.ones((2, 3)), dtype=np.float32)
    w = mg.tensor(np.ones((3, 2)), dtype=np.float32, requires_grad=True)
    (x @ w).sum().backward()
    w.zero_grad()
    w.data = w.data.astype(np.float64)
    (mg.tensor(np.ones((2, 3)), dtype=np.float64) @ w).sum().backward()
    assert w.grad.dtype == np.float64
    np.testing.assert_array_equal(w.grad, np.full((3, 2), 2.0))


def test_misaligned_float_arrays_are_copied_so_optimizers_can_update_them():
    raw = np.zeros(4 * 6 + 1, np.uint8)
    misaligned = raw[1:].view(np.float32).reshape(2, 3)
    assert not misaligned.flags.aligned
    p = mg.tensor(misaligned, requires_grad=True)
    assert p.data.flags.aligned and p.data.flags.c_contiguous
    (p * 2.0).sum().backward()
    mg.optim.SGD([p], lr=0.5).step()
    np.testing.assert_array_equal(p.data, np.full((2, 3), -1.0, np.float32))
