"""ops/index.py: x[...] (basic, integer-array and boolean indexing), concat and flatten: forward
values against numpy (and torch in float64 when installed), gradients by gradcheck in float64,
repeated indices accumulating, dtypes kept, and bad input that raises before anything changes."""

import numpy as np
import pytest

import matgrad as mg

rng = np.random.default_rng(8765)


def t64(*shape, requires_grad=True):
    return mg.tensor(rng.standard_normal(shape), requires_grad=requires_grad)


# ---- x[index] --------------------------------------------------------------------------------------

INDICES_2D = {
    "int": 1,
    "negative_int": -1,
    "slice": slice(0, 2),
    "step": slice(None, None, 2),
    "reversed": slice(None, None, -1),
    "negative_step_range": slice(3, 0, -2),
    "column": (slice(None), 2),
    "ellipsis_slice": (Ellipsis, slice(1, 3)),
    "element": (1, -2),
    "newaxis": (None, 0),
    "int_list_repeated": [0, 2, 0],
    "int_array": np.array([2, -3]),
    "column_list_repeated": (slice(None), [1, 1, 3, -1]),
    "pairs": ([0, 1, 1], [2, 3, 2]),
    "pairs_as_tuples": ((0, 1, 1), (2, 3, 2)),
    "bool_mask_rows": np.array([True, False, True]),
    "bool_list_rows": [False, True, True],
    "empty_list": [],
}


@pytest.mark.parametrize("name", list(INDICES_2D))
def test_getitem_matches_numpy_and_gradchecks(name):
    index = INDICES_2D[name]
    x = t64(3, 4)
    y = x[index]
    expect = x.data[tuple(np.array(p) if isinstance(p, tuple) else p for p in index)
                    if name == "pairs_as_tuples" else index]
    assert y.shape == expect.shape and y.dtype == np.float64
    np.testing.assert_array_equal(y.data, expect)
    assert y._op == "getitem"
    assert mg.gradcheck(lambda a: a[index], x)


def test_boolean_mask_of_the_same_shape():
    x = t64(3, 4)
    mask = x.data > 0
    np.testing.assert_array_equal(x[mask].data, x.data[mask])
    assert mg.gradcheck(lambda a: a[mask] * 3.0, x)
    x.grad = None
    x[mask].sum().backward()
    np.testing.assert_array_equal(x.grad, mask.astype(np.float64))


def test_getitem_on_3d_and_1d_inputs():
    x = t64(2, 3, 4)
    for index in [(1, Ellipsis, slice(None, None, 2)), (slice(1, None), slice(None), [0, 0]), (Ellipsis, -1),
                  ([1, 0, 1], slice(None), 2), (0, 1, 2)]:
        np.testing.assert_array_equal(x[index].data, x.data[index])
        assert mg.gradcheck(lambda a: a[index], x)
    v = t64(5)
    np.testing.assert_array_equal(v[[4, 4, 0]].data, v.data[[4, 4, 0]])
    assert mg.gradcheck(lambda a: a[1:4] * a[[0, 0, 4]], v)


def test_repeated_integer_indices_accumulate():
    x = t64(4, 2)
    idx = [0, 3, 0, 0, 2]
    g = rng.standard_normal((5, 2))
    x[idx].backward(g)
    expect = np.zeros((4, 2))
    np.add.at(expect, idx, g)
    np.testing.assert_allclose(x.grad, expect, rtol=1e-15)
    np.testing.assert_allclose(x.grad[0], g[0] + g[2] + g[3], rtol=1e-15)
    np.testing.assert_array_equal(x.grad[1], 0.0)
    assert mg.gradcheck(lambda a: a[[1, 1, 1, 0]] ** 2, x)


def test_a_single_element_is_a_0d_tensor():
    x = t64(3, 4)
    y = x[2, 1]
    assert y.shape == () and isinstance(y.data, np.ndarray) and y.item() == x.data[2, 1]
    y.backward()
    expect = np.zeros((3, 4))
    expect[2, 1] = 1
    np.testing.assert_array_equal(x.grad, expect)


def test_index_arrays_changed_after_the_forward_do_not_change_the_gradient():
    x = t64(3)
    idx = np.array([0, 0])
    y = x[idx]
    idx[:] = 2
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 0.0, 0.0])


def test_indexing_the_same_tensor_twice_and_gradients_accumulating():
    x = t64(3, 4)
    assert mg.gradcheck(lambda a: a[0] * a[:, 1].sum() + a[1:, ::2].sum(axis=0).sum(), x)
    x.grad = None
    x[0].sum().backward()
    x[0].sum().backward()
    np.testing.assert_array_equal(x.grad[0], 2.0)
    np.testing.assert_array_equal(x.grad[1:], 0.0)


def test_getitem_without_grad_and_on_float32():
    x = mg.tensor(np.arange(12.0).reshape(3, 4), dtype=np.float32, requires_grad=True)
    y = x[[2, 2], 1:]
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, [[0, 0, 0, 0], [0, 0, 0, 0], [0, 2, 2, 2]])
    with mg.no_grad():
        assert not x[0].requires_grad
    assert not mg.tensor(np.ones(3))[1:].requires_grad


def test_getitem_matches_torch_in_float64():
    torch = pytest.importorskip("torch")
    x = t64(4, 3)
    idx = [3, 0, 3, 1, 3]
    g = rng.standard_normal((5, 2))
    x[idx, 1:].backward(g)
    xt = torch.tensor(x.data, requires_grad=True)
    yt = xt[idx, 1:]
    yt.backward(torch.tensor(g))
    np.testing.assert_array_equal(x[idx, 1:].data, yt.detach().numpy())
    np.testing.assert_allclose(x.grad, xt.grad.numpy(), rtol=1e-15)


@pytest.mark.parametrize("index, exc, match", [
    (5, IndexError, r"getitem: index 5 is out of range or invalid for a tensor of shape \(3, 4\)"),
    (-4, IndexError, r"index -4 .* shape \(3, 4\).*out of bounds"),
    ((0, 4), IndexError, r"index \(0, 4\) .* shape \(3, 4\)"),
    ((0, 0, 0), IndexError, r"index \(0, 0, 0\) .* shape \(3, 4\).*too many indices"),
    ([0, 7], IndexError, r"index \[0, 7\] .* shape \(3, 4\)"),
    (np.array([True, False]), IndexError, r"shape \(3, 4\).*boolean index did not match"),
    (1.5, IndexError, r"index 1.5 .* shape \(3, 4\)"),
    ("a", IndexError, r"index 'a' .* shape \(3, 4\)"),
])
def test_bad_index_raises_and_writes_no_gradient(index, exc, match):
    x = mg.tensor(np.ones((3, 4)), requires_grad=True)
    x.grad = np.full((3, 4), 2.0)
    with pytest.raises(exc, match=match):
        x[index]
    np.testing.assert_array_equal(x.grad, 2.0)
    np.testing.assert_array_equal(x.data, 1.0)


def test_a_tensor_is_not_an_index():
    x = t64(3, 4)
    with pytest.raises(TypeError, match="a Tensor cannot be used as an index"):
        x[mg.tensor([0, 1])]
    with pytest.raises(TypeError, match="a Tensor cannot be used as an index"):
        x[:, mg.tensor([0])]
    assert x.grad is None


def test_large_index_arrays_are_shown_compactly():
    x = t64(3, 4)
    with pytest.raises(IndexError, match=r"<int64 array of shape \(20,\)>"):
        x[np.arange(20)]


# ---- concat ----------------------------------------------------------------------------------------


def test_concat_matches_numpy():
    a, b, c = t64(2, 3), t64(4, 3), t64(1, 3)
    np.testing.assert_array_equal(mg.concat([a, b, c]).data, np.concatenate([a.data, b.data, c.data]))
    d, e = t64(2, 1), t64(2, 5)
    np.testing.assert_array_equal(mg.concat((a, d, e), axis=1).data, np.concatenate([a.data, d.data, e.data], 1))
    np.testing.assert_array_equal(mg.concat([a, e], axis=-1).data, np.concatenate([a.data, e.data], -1))
    one = mg.concat([a])
    np.testing.assert_array_equal(one.data, a.data)
    assert one.data is not a.data
    x3, y3 = t64(2, 3, 4), t64(2, 2, 4)
    np.testing.assert_array_equal(mg.concat([x3, y3], axis=1).data, np.concatenate([x3.data, y3.data], 1))


@pytest.mark.parametrize("shapes, axis", [
    ([(2, 3), (4, 3)], 0), ([(3, 2), (3, 1), (3, 4)], 1), ([(2, 3), (2, 2)], -1), ([(2, 3, 2), (2, 1, 2)], 1),
    ([(3,), (2,)], 0), ([(2, 0), (2, 3)], 1),
])
def test_gradcheck_concat(shapes, axis):
    inputs = [t64(*s) for s in shapes]
    assert mg.gradcheck(lambda *ts: mg.concat(list(ts), axis=axis), *inputs)


def test_concat_gradients_split_and_skip_constants():
    a, b = t64(2, 3), t64(2, 2)
    c = rng.standard_normal((2, 1))  # an array: a constant
    g = rng.standard_normal((2, 6))
    mg.concat([a, c, b], axis=1).backward(g)
    np.testing.assert_array_equal(a.grad, g[:, :3])
    np.testing.assert_array_equal(b.grad, g[:, 4:])
    assert a.grad.flags.c_contiguous and b.grad.flags.c_contiguous
    x = t64(2, 2)
    assert mg.gradcheck(lambda x: mg.concat([x, x * 2.0, x], axis=0) ** 2, x)
    x.grad = None
    mg.concat([x, x]).sum().backward()
    np.testing.assert_array_equal(x.grad, 2.0)
    k = t64(2, 2, requires_grad=False)
    assert not mg.concat([k, k]).requires_grad
    assert mg.concat([k, x]).requires_grad


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_concat_and_flatten_keep_the_dtype(dtype):
    a = mg.tensor(np.ones((2, 3)), dtype=dtype, requires_grad=True)
    b = mg.tensor(np.ones((1, 3)), dtype=dtype, requires_grad=True)
    y = mg.concat([a, b, np.zeros((1, 3), dtype=np.int64)])  # integer arrays take the dtype
    assert y.dtype == dtype
    y.sum().backward()
    assert a.grad.dtype == dtype and b.grad.dtype == dtype
    z = mg.tensor(np.ones((2, 3, 4)), dtype=dtype, requires_grad=True)
    f = z.flatten()
    assert f.dtype == dtype
    f.sum().backward()
    assert z.grad.dtype == dtype


def test_concat_matches_torch_in_float64():
    torch = pytest.importorskip("torch")
    a, b = t64(3, 2), t64(3, 4)
    g = rng.standard_normal((3, 6))
    mg.concat([a, b], axis=1).backward(g)
    at, bt = torch.tensor(a.data, requires_grad=True), torch.tensor(b.data, requires_grad=True)
    torch.cat([at, bt], dim=1).backward(torch.tensor(g))
    np.testing.assert_array_equal(a.grad, at.grad.numpy())
    np.testing.assert_array_equal(b.grad, bt.grad.numpy())


@pytest.mark.parametrize("fn, exc, match", [
    (lambda a, b, w: mg.concat([a, w]), TypeError,
     "concat: dtypes differ: tensor 1 is float64 but the first tensor is float32"),
    (lambda a, b, w: mg.concat([a, b]), ValueError, r"concat: shapes \(3, 4\), \(5,\) differ"),
    (lambda a, b, w: mg.concat([a, w.T.T[:, :3]], axis=0), TypeError, "dtypes differ"),
    (lambda a, b, w: mg.concat([a, mg.tensor(np.ones((3, 5), np.float32))], axis=0), ValueError,
     r"concat: shapes \(3, 4\), \(3, 5\) differ on an axis other than axis 0"),
    (lambda a, b, w: mg.concat([a, a], axis=2), ValueError, r"concat: axis 2 is invalid for tensors of shape \(3, 4\)"),
    (lambda a, b, w: mg.concat([a, a], axis="x"), TypeError, "concat: axis must be an int"),
    (lambda a, b, w: mg.concat([]), ValueError, "at least one tensor"),
    (lambda a, b, w: mg.concat(a), TypeError, "expected a list or tuple of tensors, got Tensor"),
    (lambda a, b, w: mg.concat([np.ones(2), np.ones(2)]), TypeError, "at least one Tensor"),
    (lambda a, b, w: mg.concat([a, np.ones((3, 4))]), TypeError, "float32 but the array is float64"),
    (lambda a, b, w: mg.flatten(a, 2), ValueError, r"flatten: start_axis 2 is invalid for a tensor of shape \(3, 4\)"),
    (lambda a, b, w: b.flatten(-2), ValueError, r"start_axis -2 is invalid .* shape \(5,\)"),
    (lambda a, b, w: a.flatten(1.0), TypeError, "flatten: start_axis must be an int"),
])
def test_bad_input_raises_and_changes_nothing(fn, exc, match):
    a = mg.tensor(np.ones((3, 4), np.float32), requires_grad=True)
    b = mg.tensor(np.ones(5, np.float32), requires_grad=True)
    w = mg.tensor(np.ones((4, 3), np.float64), requires_grad=True)
    a.grad = np.full((3, 4), 2.0, np.float32)
    with pytest.raises(exc, match=match):
        fn(a, b, w)
    np.testing.assert_array_equal(a.grad, 2.0)
    assert b.grad is None and w.grad is None
    for t in (a, b, w):
        np.testing.assert_array_equal(t.data, 1.0)


# ---- flatten ---------------------------------------------------------------------------------------


def test_flatten_shapes():
    x = t64(2, 3, 4, 5)
    assert x.flatten().shape == (2, 60)
    assert mg.flatten(x).shape == (2, 60)
    assert mg.flatten(x, 0).shape == (120,)
    assert x.flatten(start_axis=2).shape == (2, 3, 20)
    assert x.flatten(-1).shape == (2, 3, 4, 5)
    assert x.flatten(-2).shape == (2, 3, 20)
    np.testing.assert_array_equal(x.flatten().data, x.data.reshape(2, -1))
    assert x.flatten()._op == "flatten"
    empty = mg.tensor(np.ones((0, 3, 4)))
    assert empty.flatten().shape == (0, 12)
    assert mg.tensor(np.ones((2, 0, 4))).flatten().shape == (2, 0)
    np.testing.assert_array_equal(x.T.flatten().data, x.data.T.reshape(5, -1))  # a non-contiguous input


@pytest.mark.parametrize("start_axis", [0, 1, 2, 3, -3])
def test_gradcheck_flatten_4d(start_axis):
    x = t64(2, 3, 2, 2)
    assert mg.gradcheck(lambda a: mg.flatten(a, start_axis) * 2.0, x)
    assert mg.gradcheck(lambda a: a.T.flatten(start_axis).sum(axis=0), x)
