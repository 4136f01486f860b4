"""Arrays the kernels allocate start on a 64-byte cache line (cpp/bindings/aligned_arrays.cpp).

They are ordinary numpy arrays that own their data, allocated through a numpy memory handler that
is set only while the bindings allocate one of 64 KiB or more (kAlignedMinBytes); smaller ones, and
every other array, keep numpy's own allocator.
"""
import os

import numpy as np
import pytest

import matgrad as mg
from matgrad import _core, kernels
from matgrad.ops._common import grad_buffers

try:  # numpy 2
    from numpy._core.multiarray import get_handler_name
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import get_handler_name  # type: ignore[no-redef]

DTYPES = [np.float32, np.float64]
HANDLER = "matgrad_aligned_64"
MIN_BYTES = _core.ALIGNED_MIN_BYTES  # kAlignedMinBytes in cpp/bindings/aligned_arrays.hpp


def test_the_threshold_is_the_one_the_shapes_here_straddle():
    """The shapes below are chosen around 64 KiB ((127, 3, 129) f32 is 4 bytes short of it, a
    (1 << 14,) f32 array exactly it): a new threshold needs new shapes, not silent passes."""
    assert MIN_BYTES == 1 << 16


def assert_ours(arr: np.ndarray) -> None:
    assert arr.ctypes.data % 64 == 0, f"data at {arr.ctypes.data:#x}, {arr.ctypes.data % 64} bytes into a line"
    assert arr.flags.owndata and arr.flags.c_contiguous and arr.flags.writeable
    assert get_handler_name(arr) == HANDLER


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m, k, n", [(1, 1, 1), (3, 5, 7), (128, 784, 512), (7, 0, 9), (0, 4, 3),
                                     (127, 3, 129), (64, 8, 64), (1, 2, 16385)])
def test_matmul_output_is_aligned_from_64_kib(dtype, m, k, n):
    r = np.random.default_rng(m * 100 + n)
    a, b = r.standard_normal((m, k)).astype(dtype), r.standard_normal((k, n)).astype(dtype)
    large = m * n * np.dtype(dtype).itemsize >= MIN_BYTES
    for _ in range(3):  # several allocations: malloc's offsets vary between them
        c = kernels.matmul(a, b)
        if large:
            assert_ours(c)
        else:  # small: numpy's allocator, which is cheaper to call
            assert c.flags.owndata and get_handler_name(c) != HANDLER
        np.testing.assert_allclose(c, a @ b, rtol=1e-4 if dtype == np.float32 else 1e-12, atol=1e-4)


@pytest.mark.parametrize("dtype", DTYPES)
def test_other_kernel_outputs_are_aligned(dtype):
    r = np.random.default_rng(0)
    x = r.standard_normal((330, 170)).astype(dtype)  # every array here holds 64 KiB or more
    w = r.standard_normal((170, 99)).astype(dtype)
    y = kernels.linear_forward(x, w, relu=True)
    assert_ours(y)
    assert_ours(kernels.relu_forward(x))
    dx, dw, db = kernels.linear_backward(np.ones_like(y), x, w, y=y, relu=True)
    assert_ours(dx)
    assert_ours(dw)
    assert get_handler_name(db) != HANDLER  # 99 values: numpy's allocator
    img = r.standard_normal((8, 3, 32, 32)).astype(dtype)
    filters = r.standard_normal((16, 3, 3, 3)).astype(dtype)
    out, cols = kernels.conv2d_forward(img, filters, padding=1)
    assert_ours(out)
    if cols is not None:
        assert_ours(cols)


def test_other_arrays_keep_numpys_allocator():
    kernels.matmul(np.ones((4, 4)), np.ones((4, 4)))
    assert get_handler_name(np.empty(1000)) != HANDLER
    assert get_handler_name(np.ones((64, 64)) @ np.ones((64, 64))) != HANDLER


@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_aligned(dtype):
    for shape in [(1 << 14,), (128, 128), (1 << 20,), (3, 1 << 13)]:
        arr = _core.empty_aligned(shape, dtype)
        assert arr.shape == shape and arr.dtype == dtype
        assert_ours(arr)
    for shape in [(0,), (1,), (3, 5), (2, 0, 4), (0, 1 << 40)]:  # small or empty: numpy's allocator
        arr = _core.empty_aligned(shape, dtype)
        assert arr.shape == shape and arr.dtype == dtype and get_handler_name(arr) != HANDLER
    assert _core.empty_aligned(7, dtype).shape == (7,)
    assert _core.empty_aligned([np.int64(2), 3], dtype).shape == (2, 3)
    with pytest.raises(ValueError, match=r"empty_aligned: negative dimension in shape \(3, -1\)"):
        _core.empty_aligned((3, -1), dtype)
    with pytest.raises(TypeError, match="empty_aligned: dimensions must be ints, got float"):
        _core.empty_aligned((3, 2.0), dtype)
    with pytest.raises(TypeError, match="empty_aligned: shape must be an int, or a tuple or list of ints, got str"):
        _core.empty_aligned("34", dtype)
    with pytest.raises(TypeError):  # a 1-D array's __index__ raises: an error, not a crash
        _core.empty_aligned(np.array([2, 3]), dtype)
    with pytest.raises(ValueError, match="empty_aligned: dimension 36893488147419103232 is too large"):
        _core.empty_aligned((1 << 65,), dtype)


def test_resize_keeps_the_data_and_the_alignment():
    # ndarray.resize goes through the handler's realloc, which must copy what was there.
    a = np.arange(12000.0).reshape(3000, 4)
    c = kernels.matmul(a, np.eye(4))  # 96,000 bytes: the handler's
    assert_ours(c)
    c.resize((400, 400), refcheck=False)
    assert_ours(c)
    np.testing.assert_array_equal(c.ravel()[:12000], np.arange(12000.0))
    c.resize((2,), refcheck=False)
    np.testing.assert_array_equal(c, [0.0, 1.0])
    assert c.ctypes.data % 64 == 0


def test_recycled_buffers_are_aligned():
    grad_buffers.clear()
    buf = grad_buffers.take((256, 300), np.dtype(np.float32))  # 300 KiB
    if buf is None:
        pytest.skip("no reference counts here (PyPy): the pool hands out nothing")
    assert_ours(buf)
    grad_buffers.clear()


def test_training_step_gradients_are_aligned():
    r = np.random.default_rng(1)
    model = mg.nn.Sequential(mg.nn.Linear(200, 300), mg.nn.ReLU(), mg.nn.Linear(300, 100))
    x = mg.Tensor(r.standard_normal((64, 200)).astype(np.float32))
    loss = mg.cross_entropy(model(x), r.integers(0, 100, 64))
    loss.backward()
    for p in model.parameters():
        assert p.grad is not None
        if p.grad.nbytes >= MIN_BYTES:  # the weights' gradients (the biases' are small)
            assert p.grad.ctypes.data % 64 == 0


def _resident_mib() -> float:
    with open("/proc/self/statm") as f:  # size resident shared ... in pages
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / (1 << 20)


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads Linux's /proc/self/statm")
def test_freed_outputs_are_given_back():
    a = np.ones((2048, 1), np.float32)
    b = np.ones((1, 8192), np.float32)  # 64 MiB outputs: mmap'd by malloc, unmapped when freed
    kernels.matmul(a, b)
    before = _resident_mib()
    for _ in range(40):  # 2.5 GiB if nothing were freed
        c = kernels.matmul(a, b)
        assert c[0, 0] == 1.0 and get_handler_name(c) == HANDLER
        del c
    grown = _resident_mib() - before
    assert grown < 256, f"resident memory grew by {grown:.0f} MiB over 40 freed 64 MiB outputs"
