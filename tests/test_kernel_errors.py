"""Bad input to matgrad.kernels: a clear error that names the problem, and nothing changed."""

import numpy as np
import pytest

from matgrad import kernels
from conftest import f32, f64, read_only




_shared = f32(4, 8)

# (id, function, args, kwargs, exception, message pattern)
BAD_INPUTS = [
    ("matmul 1-D a", kernels.matmul, (f32(3), f32(3, 2)), {}, ValueError, r"matmul: a must be 2-D, got 1-D array of shape \(3,\)"),
    ("matmul 3-D b", kernels.matmul, (f32(2, 3), f32(3, 2, 2)), {}, ValueError, r"matmul: b must be 2-D, got 3-D"),
    ("matmul misaligned", kernels.matmul, (f32(2, 3), f32(4, 5)), {}, ValueError, r"matmul: shapes \(2, 3\) and \(4, 5\) are not aligned: 3 != 4"),
    ("matmul misaligned transposed", kernels.matmul, (f32(2, 3), f32(4, 5)), {"trans_a": True}, ValueError, r"shapes \(3, 2\) \(a transposed\) and \(4, 5\) are not aligned: 2 != 4"),
    ("matmul int dtype", kernels.matmul, (np.ones((2, 2), np.int64), f32(2, 2)), {}, TypeError, r"matmul: a has dtype int64; expected float32 or float64"),
    ("matmul float16", kernels.matmul, (f32(2, 2), np.ones((2, 2), np.float16)), {}, TypeError, r"b has dtype float16"),
    ("matmul big-endian", kernels.matmul, (f32(2, 2), f32(2, 2).astype(">f4")), {}, TypeError, r"b has dtype >f4"),
    ("matmul mixed dtypes", kernels.matmul, (f32(2, 3), f64(3, 2)), {}, TypeError, r"matmul: dtypes differ: a is float32, b is float64"),
    ("matmul list", kernels.matmul, ([[1.0]], f32(1, 1)), {}, TypeError, r"matmul: a must be a numpy.ndarray, got list"),
    ("matmul out shape", kernels.matmul, (f32(2, 3), f32(3, 4)), {"out": f32(2, 3)}, ValueError, r"matmul: out has shape \(2, 3\), expected \(2, 4\)"),
    ("matmul out dtype", kernels.matmul, (f32(2, 3), f32(3, 4)), {"out": f64(2, 4)}, TypeError, r"matmul: out has dtype float64, expected float32"),
    ("matmul out not contiguous", kernels.matmul, (f32(2, 3), f32(3, 4)), {"out": f32(4, 2).T}, ValueError, r"out must be C-contiguous"),
    ("matmul out read-only", kernels.matmul, (f32(2, 3), f32(3, 4)), {"out": read_only(f32(2, 4))}, ValueError, r"matmul: out is read-only"),
    ("matmul accumulate without out", kernels.matmul, (f32(2, 3), f32(3, 4)), {"accumulate": True}, ValueError, r"accumulate=True needs out"),
    ("relu int", kernels.relu_forward, (np.ones(3, np.int32),), {}, TypeError, r"relu_forward: x has dtype int32"),
    ("relu out shape", kernels.relu_forward, (f32(3, 4),), {"out": f32(4, 3)}, ValueError, r"relu_forward: out has shape \(4, 3\), expected \(3, 4\)"),
    ("relu out dtype", kernels.relu_forward, (f32(3),), {"out": f64(3)}, TypeError, r"out has dtype float64, expected float32"),
    ("relu out read-only", kernels.relu_forward, (f32(3),), {"out": read_only(f32(3))}, ValueError, r"out is read-only"),
    ("relu out strided", kernels.relu_forward, (f32(3),), {"out": f32(6)[::2]}, ValueError, r"must be C-contiguous"),
    ("relu out partial overlap", kernels.relu_forward, (_shared[0, :6],), {"out": _shared[0, 2:8]}, ValueError, r"out partially overlaps an input"),
    ("relu_backward shapes", kernels.relu_backward, (f32(3), f32(4)), {}, ValueError, r"relu_backward: grad_y has shape \(3,\) but x has shape \(4,\)"),
    ("relu_backward mixed", kernels.relu_backward, (f32(3), f64(3)), {}, TypeError, r"relu_backward: dtypes differ: grad_y is float32, x is float64"),
    ("relu_backward tuple", kernels.relu_backward, ((1.0,), f32(1)), {}, TypeError, r"grad_y must be a numpy.ndarray, got tuple"),
]


@pytest.mark.parametrize("case", [c for c in BAD_INPUTS if c[4] is not None], ids=lambda c: c[0])
def test_bad_input_raises_and_changes_nothing(case):
    _, fn, args, kwargs, exc, pattern = case
    arrays = [a for a in (*args, *kwargs.values()) if isinstance(a, np.ndarray)]
    before = [a.copy() for a in arrays]
    with pytest.raises(exc, match=pattern):
        fn(*args, **kwargs)
    for a, b in zip(arrays, before):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("which", ("a", "b"))
def test_out_overlapping_an_input_is_rejected(which):
    buf = f32(20)
    a, b = buf[:9].reshape(3, 3), f32(3, 3)
    if which == "b":
        a, b = b, a
    before = buf.copy()
    with pytest.raises(ValueError, match=f"matmul: out overlaps input {which}"):
        kernels.matmul(a, b, out=buf[5:14].reshape(3, 3))
    np.testing.assert_array_equal(buf, before)


def test_out_that_is_an_input_is_rejected():
    a = f32(3, 3)
    before = a.copy()
    with pytest.raises(ValueError, match="out overlaps input a"):
        kernels.matmul(a, f32(3, 3), out=a)
    np.testing.assert_array_equal(a, before)
