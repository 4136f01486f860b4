"""Interop: ``__array__`` (NumPy 2 copy semantics), DLPack export/import (``__dlpack__``,
``mg.from_dlpack``, ``mg.tensor`` of a torch tensor), and the Python protocols ``float``, ``int``,
``len`` and iteration."""

import importlib
import math

import numpy as np
import pytest

import matgrad as mg
tensor_mod = importlib.import_module("matgrad.tensor")  # the module: mg.tensor is the function

torch = pytest.importorskip("torch")

FLOATS = [np.float32, np.float64]


class _Exporter:
    """A bare DLPack exporter around an ndarray (as a JAX array would be: no ``__array__``)."""

    def __init__(self, a):
        self.a = a

    def __dlpack__(self, **kwargs):
        return self.a.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self.a.__dlpack_device__()


def _read_only(a):
    a.flags.writeable = False
    return a


# ---- __array__ ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", FLOATS)
def test_asarray_shares_memory(dtype):
    t = mg.tensor(np.arange(6, dtype=dtype).reshape(2, 3), requires_grad=True)
    a = np.asarray(t)
    assert a is t.data
    a[0, 0] = 7
    assert t.data[0, 0] == 7
    assert np.asarray(t, dtype=dtype) is t.data  # the tensor's own dtype: no conversion, no copy
    assert np.array(t, copy=False) is t.data


@pytest.mark.parametrize("dtype", FLOATS)
def test_array_copies(dtype):
    t = mg.tensor(np.arange(4, dtype=dtype))
    for a in (np.array(t), np.array(t, copy=True), t.__array__(copy=True), t.__array__(dtype, copy=True)):
        assert not np.shares_memory(a, t.data) and a.dtype == dtype
        np.testing.assert_array_equal(a, t.data)
    a = np.array(t)
    a[0] = 9
    assert t.data[0] == 0


def test_dtype_conversion_copies_and_copy_false_refuses():
    t = mg.tensor([1.5, 2.5, -3.5])  # float32
    a = np.asarray(t, dtype=np.float64)
    assert a.dtype == np.float64 and not np.shares_memory(a, t.data)
    np.testing.assert_array_equal(a, [1.5, 2.5, -3.5])
    np.testing.assert_array_equal(np.array(t, dtype=np.int64), [1, 2, -3])  # as ndarray.astype
    with pytest.raises(ValueError, match=r"float32 tensor to float64 needs a copy.*copy=False"):
        np.array(t, dtype=np.float64, copy=False)
    with pytest.raises(ValueError, match="copy=False"):
        t.__array__(np.int32, copy=False)


def test_numpy_operands_still_defer_to_tensor():
    t = mg.tensor([1.0, 2.0], requires_grad=True)
    for y in (np.ones(2, np.float32) + t, np.float32(2.0) * t, np.ones(2, np.float32) - t):
        assert isinstance(y, mg.Tensor) and y.requires_grad
    np.testing.assert_array_equal(np.stack([np.asarray(t), np.asarray(t)]), [[1, 2], [1, 2]])


# ---- DLPack export --------------------------------------------------------------------------


def test_dlpack_device_is_cpu():
    assert mg.tensor([1.0]).__dlpack_device__() == (1, 0)
    assert np.ones(1).__dlpack_device__() == (1, 0)  # numpy agrees


@pytest.mark.parametrize("dtype", FLOATS)
def test_torch_from_dlpack_shares_memory_both_ways(dtype):
    t = mg.tensor(np.arange(6, dtype=dtype).reshape(2, 3), requires_grad=True)  # requires_grad: still shared
    x = torch.from_dlpack(t)
    assert x.shape == (2, 3) and x.dtype == {np.float32: torch.float32, np.float64: torch.float64}[dtype]
    x[1, 2] = 42
    assert t.data[1, 2] == 42
    t.data[0, 0] = -1
    assert x[0, 0].item() == -1


def test_numpy_from_dlpack_shares_and_copy_keyword():
    t = mg.tensor(np.arange(3.0))
    a = np.from_dlpack(t)
    assert np.shares_memory(a, t.data)
    assert np.shares_memory(np.from_dlpack(t, copy=False), t.data)
    c = np.from_dlpack(t, copy=True)
    assert not np.shares_memory(c, t.data)
    np.testing.assert_array_equal(c, t.data)
    assert not np.shares_memory(torch.from_dlpack(t, copy=True).numpy(), t.data)


def test_dlpack_stream_and_device_checks():
    t = mg.tensor([1.0, 2.0])
    with pytest.raises(ValueError, match="stream must be None"):
        t.__dlpack__(stream=1)
    with pytest.raises(ValueError, match="no streams"):
        t.__dlpack__(stream=-1)
    with pytest.raises(BufferError, match=r"cannot be exported to device \(2, 0\)"):
        t.__dlpack__(dl_device=(2, 0))  # CUDA
    with pytest.raises(BufferError, match="device"):
        t.__dlpack__(dl_device=(1, 1))
    with pytest.raises(TypeError, match="dl_device"):
        t.__dlpack__(dl_device="cpu")
    for kwargs in ({}, {"max_version": (1, 0)}, {"dl_device": (1, 0)}, {"copy": False}, {"copy": True}):
        assert t.__dlpack__(**kwargs) is not None  # a capsule


def test_numpy_keywords_detected():
    if tuple(int(v) for v in np.__version__.split(".")[:2]) >= (2, 1):
        assert tensor_mod._NP_DLPACK_KW == {"max_version", "dl_device", "copy"}


class _OldNumpyArray(np.ndarray):
    """An ndarray whose ``__dlpack__`` has numpy 1.22-2.0's signature (``stream`` only)."""

    def __dlpack__(self, stream=None):
        return self.view(np.ndarray).__dlpack__(stream=stream)


def test_dlpack_export_with_an_older_numpy_signature(monkeypatch):
    """Keywords the installed numpy does not take are not passed on; copy=True then copies here."""
    monkeypatch.setattr(tensor_mod, "_NP_DLPACK_KW", frozenset())
    t = mg.tensor(np.arange(4.0))
    t.data = t.data.view(_OldNumpyArray)
    shared = np.from_dlpack(_Exporter(t))  # numpy passes max_version, dl_device and copy to the tensor
    assert np.shares_memory(shared, t.data)
    copied = np.from_dlpack(_Exporter(t), copy=True)
    assert not np.shares_memory(copied, t.data)
    np.testing.assert_array_equal(copied, [0, 1, 2, 3])
    assert t.__dlpack__(max_version=(1, 0), dl_device=(1, 0), copy=False) is not None
    with pytest.raises(TypeError):  # the subclass really refuses the new keywords
        t.data.__dlpack__(max_version=(1, 0))


def test_read_only_tensor_exports_read_only():
    t = mg.tensor(_read_only(np.arange(3.0)))
    a = np.from_dlpack(t)  # versioned export: carries the read-only flag
    assert not a.flags.writeable and np.shares_memory(a, t.data)
    with pytest.raises(BufferError, match="readonly"):
        t.__dlpack__()  # a legacy capsule cannot say read-only
    assert np.from_dlpack(t, copy=True).flags.writeable


# ---- DLPack import: mg.tensor(obj), Tensor(obj), mg.from_dlpack(obj) ------------------------


@pytest.mark.parametrize("tdtype, dtype", [(torch.float32, np.float32), (torch.float64, np.float64)])
@pytest.mark.parametrize("make", [mg.tensor, mg.Tensor, mg.from_dlpack])
def test_float_torch_tensors_are_shared(make, tdtype, dtype):
    x = torch.arange(6, dtype=tdtype).reshape(2, 3)
    t = make(x)
    assert isinstance(t, mg.Tensor) and t.is_leaf and not t.requires_grad
    assert type(t.data) is np.ndarray and t.dtype == dtype and t.shape == (2, 3)
    x[0, 1] = 5
    assert t.data[0, 1] == 5
    t.data[1, 1] = -8
    assert x[1, 1].item() == -8


def test_zero_d_and_empty_torch_tensors():
    s = mg.tensor(torch.tensor(2.5, dtype=torch.float64))
    assert s.shape == () and s.dtype == np.float64 and float(s) == 2.5
    e = mg.tensor(torch.empty(0, 3))
    assert e.shape == (0, 3) and e.dtype == np.float32


def test_from_dlpack_of_a_numpy_array_shares():
    a = np.zeros((2, 2), np.float64)
    t = mg.from_dlpack(a, requires_grad=True)
    assert t.requires_grad and t.is_leaf and np.shares_memory(t.data, a)
    a[1, 0] = 3
    assert t.data[1, 0] == 3
    t.data[0, 1] = 4
    assert a[0, 1] == 4
    assert np.shares_memory(mg.from_dlpack(t).data, a)  # a matgrad Tensor is an exporter too


def test_non_contiguous_torch_tensor_is_copied():
    x = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    t = mg.tensor(x.T)
    assert t.data.flags.c_contiguous and t.shape == (3, 2)
    np.testing.assert_array_equal(t.data, x.T.numpy())
    x[0, 0] = 100
    assert t.data[0, 0] == 0  # a copy
    with pytest.raises(ValueError, match="not C-contiguous"):
        mg.from_dlpack(x.T, copy=False)
    np.testing.assert_array_equal(mg.from_dlpack(x[:, ::2]).data, [[100, 2], [3, 5]])


@pytest.mark.parametrize("tdtype", [torch.int64, torch.int32, torch.uint8, torch.bool])
def test_integer_and_bool_torch_tensors_become_float32_copies(tdtype):
    x = torch.tensor([[1, 0], [1, 1]], dtype=tdtype)
    for t in (mg.tensor(x), mg.from_dlpack(x)):
        assert t.dtype == np.float32 and t.data.flags.c_contiguous
        np.testing.assert_array_equal(t.data, [[1, 0], [1, 1]])
    assert mg.tensor(x, dtype=np.float64).dtype == np.float64
    with pytest.raises(ValueError, match=f"copy=False.*dtype is {x.numpy().dtype}"):
        mg.from_dlpack(x, copy=False)


def test_int64_torch_tensor_copy_is_independent():
    x = torch.arange(4)  # int64
    t = mg.tensor(x)
    x[0] = 9
    assert t.dtype == np.float32 and t.data[0] == 0


def test_float16_torch_tensor_follows_the_usual_rules():
    x = torch.ones(2, dtype=torch.float16)
    with pytest.raises(TypeError, match="float16"):
        mg.tensor(x)
    assert mg.tensor(x, dtype=np.float32).dtype == np.float32


def test_from_dlpack_copy_true_copies():
    a = np.ones(3, np.float32)
    t = mg.from_dlpack(a, copy=True)
    assert not np.shares_memory(t.data, a) and t.data.flags.writeable
    x = torch.ones(2, 2)
    t = mg.from_dlpack(x, copy=True)
    x[0, 0] = 0
    assert t.data[0, 0] == 1


@pytest.mark.parametrize("make", [mg.tensor, mg.from_dlpack])
def test_torch_tensor_requiring_grad_is_a_clear_type_error(make):
    x = torch.ones(2, 2, requires_grad=True)
    with pytest.raises(TypeError, match=r"requires grad.*\.detach\(\)"):
        make(x)
    t = make(x.detach())
    assert np.shares_memory(t.data, x.detach().numpy())


def test_from_dlpack_rejects_non_exporters_and_bad_copy():
    with pytest.raises(TypeError, match="__dlpack__"):
        mg.from_dlpack([1.0, 2.0])
    with pytest.raises(TypeError, match="copy must be"):
        mg.from_dlpack(np.ones(2), copy="yes")


def test_failed_dlpack_import_is_a_type_error():
    class Broken:
        def __dlpack__(self, **kwargs):
            raise BufferError("cannot export this one")

        def __dlpack_device__(self):
            return (1, 0)

    with pytest.raises(TypeError, match="cannot import this Broken through DLPack: cannot export this one"):
        mg.tensor(Broken())


def test_gradients_flow_to_a_tensor_made_from_torch():
    x = torch.tensor([[1.0, -2.0], [3.0, 0.5]], dtype=torch.float64)
    t = mg.tensor(x, requires_grad=True)
    ((t * t).sum() + (t @ t).relu().sum()).backward()
    xr = x.clone().requires_grad_(True)
    ((xr * xr).sum() + (xr @ xr).relu().sum()).backward()
    np.testing.assert_allclose(t.grad, xr.grad.numpy())


@pytest.mark.parametrize("make", [lambda a: mg.from_dlpack(a), lambda a: mg.tensor(_Exporter(a)),
                                  lambda a: mg.tensor(a)])
def test_read_only_data_is_kept_and_ops_work(make):
    a = _read_only(np.arange(1.0, 7.0).reshape(2, 3))
    t = make(a)
    assert not t.data.flags.writeable and np.shares_memory(t.data, a)  # kept, not copied
    t.requires_grad = True
    w = mg.tensor(np.full((3, 2), 0.5), requires_grad=True)
    loss = (mg.linear(t, w).tanh() * t[:, :2]).sum() + (t * t).mean() + t.T.reshape((6,)).relu().sum()
    loss.backward()
    r = mg.tensor(a.copy(), requires_grad=True)  # the same on a writable copy
    wr = mg.tensor(np.full((3, 2), 0.5), requires_grad=True)
    ((mg.linear(r, wr).tanh() * r[:, :2]).sum() + (r * r).mean() + r.T.reshape((6,)).relu().sum()).backward()
    np.testing.assert_allclose(t.grad, r.grad)
    np.testing.assert_allclose(w.grad, wr.grad)
    assert t.grad.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        mg.optim.SGD([t], lr=0.1)  # updating it in place is what a read-only tensor cannot do


# ---- float, int, len, iteration -------------------------------------------------------------


@pytest.mark.parametrize("shape", [(), (1,), (1, 1), (1, 1, 1)])
def test_float_and_int_of_one_element(shape):
    t = mg.tensor(np.full(shape, -2.75))
    f = float(t)
    assert type(f) is float and f == -2.75
    i = int(t)
    assert type(i) is int and i == -2 == int(np.float32(-2.75))  # truncated toward zero, as numpy
    assert int(mg.tensor(np.full(shape, 2.999), dtype=np.float64)) == 2
    assert math.isnan(float(mg.tensor(np.full(shape, np.nan))))


@pytest.mark.parametrize("shape", [(2,), (0,), (2, 2), (0, 1), (3, 1)])
def test_float_and_int_need_one_element(shape):
    t = mg.tensor(np.ones(shape))
    with pytest.raises(TypeError, match=rf"only a tensor with exactly one element.*shape {shape}".replace("(", r"\(")
                       .replace(")", r"\)")):
        float(t)
    with pytest.raises(TypeError, match=r"int\(\): only a tensor with exactly one element"):
        int(t)
    with pytest.raises(TypeError):  # numpy refuses these too
        float(np.ones(shape))


def test_int_of_nan_and_inf_as_python():
    with pytest.raises(ValueError):
        int(mg.tensor(float("nan")))
    with pytest.raises(OverflowError):
        int(mg.tensor(float("inf")))


@pytest.mark.parametrize("shape", [(5,), (3, 4), (0,), (0, 5), (2, 0), (1, 2, 3)])
def test_len_is_the_first_axis(shape):
    assert len(mg.tensor(np.zeros(shape))) == len(np.zeros(shape)) == shape[0]


def test_len_and_iteration_of_a_0d_tensor_are_type_errors():
    s = mg.tensor(3.0)
    with pytest.raises(TypeError, match="len\\(\\) of a 0-d tensor"):
        len(s)
    with pytest.raises(TypeError, match="iteration over a 0-d tensor"):
        iter(s)  # raised at once, not at the first next()
    with pytest.raises(TypeError):
        iter(np.array(3.0))  # as numpy
    assert bool(s) and bool(mg.tensor([0.0, 0.0])) and bool(mg.tensor(np.zeros(0)))  # truth unchanged by len


@pytest.mark.parametrize("shape", [(3,), (3, 2), (2, 3, 4), (0, 2), (1, 1)])
def test_iteration_matches_numpy(shape):
    a = np.arange(math.prod(shape), dtype=np.float64).reshape(shape)
    rows = list(mg.tensor(a))
    assert len(rows) == shape[0]
    for row, expected in zip(rows, a):
        assert isinstance(row, mg.Tensor) and row.shape == expected.shape and row.dtype == np.float64
        np.testing.assert_array_equal(row.data, expected)
    assert [r.shape for r in reversed(mg.tensor(a))] == [r.shape for r in reversed(a)]


def test_iteration_is_recorded_and_gradients_flow():
    x = mg.tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    rows = list(x)
    assert all(r.requires_grad and not r.is_leaf and r._op == "getitem" for r in rows)
    loss = sum(r.sum() * (i + 1.0) for i, r in enumerate(rows))
    loss.backward()
    np.testing.assert_array_equal(x.grad, [[1, 1], [2, 2], [3, 3]])
    a, b, c = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)  # unpacking iterates
    assert a.shape == () and float(b) == 2.0 and c.requires_grad
    v = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    p, q, r = v
    (p * q * r).backward()
    np.testing.assert_array_equal(v.grad, [6, 3, 2])


def test_iteration_under_no_grad_gives_constants():
    x = mg.tensor(np.ones((2, 2)), requires_grad=True)
    with mg.no_grad():
        rows = list(x)
    assert all(not r.requires_grad for r in rows)
