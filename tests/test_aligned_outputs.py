"""Arrays the kernels allocate start on a 64-byte cache line (cpp/bindings/aligned_arrays.cpp).

They are ordinary numpy arrays that own their data, allocated through a numpy memory handler that
is set only while the bindings allocate; every other array keeps numpy's own allocator.
"""
import sys

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


def assert_ours(arr: np.ndarray) -> None:
    assert arr.ctypes.data % 64 == 0, f"data at {arr.ctypes.data:#x}, {arr.ctypes.data % 64} bytes into a line"
    assert arr.flags.owndata and arr.flags.c_contiguous and arr.flags.writeable
    assert get_handler_name(arr) == HANDLER


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m, k, n", [(1, 1, 1), (3, 5, 7), (128, 784, 512), (7, 0, 9), (0, 4, 3)])
def test_matmul_output_is_aligned_and_owned(dtype, m, k, n):
    r = np.random.default_rng(m * 100 + n)
    a, b = r.standard_normal((m, k)).astype(dtype), r.standard_normal((k, n)).astype(dtype)
    for _ in range(3):  # several allocations: malloc's offsets vary between them
        c = kernels.matmul(a, b)
        assert_ours(c)
        np.testing.assert_allclose(c, a @ b, rtol=1e-4 if dtype == np.float32 else 1e-12, atol=1e-4)


@pytest.mark.parametrize("dtype", DTYPES)
def test_other_kernel_outputs_are_aligned(dtype):
    r = np.random.default_rng(0)
    x = r.standard_normal((33, 17)).astype(dtype)
    w = r.standard_normal((17, 9)).astype(dtype)
    y = kernels.linear_forward(x, w, relu=True)
    assert_ours(y)
    assert_ours(kernels.relu_forward(x))
    for grad in kernels.linear_backward(np.ones_like(y), x, w, y=y, relu=True):
        assert_ours(grad)
    img = r.standard_normal((2, 3, 9, 9)).astype(dtype)
    filters = r.standard_normal((4, 3, 3, 3)).astype(dtype)
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
    for shape in [(0,), (1,), (3, 5), (2, 0, 4), (1 << 20,)]:
        arr = _core.empty_aligned(shape, dtype)
        assert arr.shape == shape and arr.dtype == dtype
        assert_ours(arr)
    with pytest.raises(ValueError, match=r"empty_aligned: negative dimension in shape \(3, -1\)"):
        _core.empty_aligned((3, -1), dtype)


def test_resize_keeps_the_data_and_the_alignment():
    # ndarray.resize goes through the handler's realloc, which must copy what was there.
    c = kernels.matmul(np.arange(12.0).reshape(3, 4), np.eye(4))
    c.resize((40, 40), refcheck=False)
    assert_ours(c)
    np.testing.assert_array_equal(c.ravel()[:12], np.arange(12.0))
    c.resize((2,), refcheck=False)
    np.testing.assert_array_equal(c, [0.0, 1.0])
    assert c.ctypes.data % 64 == 0


def test_recycled_buffers_are_aligned():
    grad_buffers.clear()
    buf = grad_buffers.take((256, 300), np.dtype(np.float32))
    if buf is None:
        pytest.skip("no reference counts here (PyPy): the pool hands out nothing")
    assert_ours(buf)
    grad_buffers.clear()


def test_training_step_gradients_are_aligned():
    r = np.random.default_rng(1)
    model = mg.nn.Sequential(mg.nn.Linear(20, 30), mg.nn.ReLU(), mg.nn.Linear(30, 5))
    x = mg.Tensor(r.standard_normal((16, 20)).astype(np.float32))
    loss = mg.cross_entropy(model(x), r.integers(0, 5, 16))
    loss.backward()
    for p in model.parameters():
        assert p.grad is not None and p.grad.ctypes.data % 64 == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss in KiB is Linux's")
def test_freed_outputs_are_given_back():
    resource = pytest.importorskip("resource")
    a = np.ones((2048, 1), np.float32)
    b = np.ones((1, 8192), np.float32)  # 64 MiB outputs
    kernels.matmul(a, b)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(40):  # 2.5 GiB if nothing were freed
        c = kernels.matmul(a, b)
        assert c[0, 0] == 1.0
        del c
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 512, f"peak memory grew by {grown_mib:.0f} MiB over 40 freed 64 MiB outputs"
