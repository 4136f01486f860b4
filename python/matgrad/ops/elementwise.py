"""Elementwise arithmetic with numpy broadcasting (+ − × ÷), and ReLU."""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..tensor import Operand, Tensor, _accumulate, _const, _grad_mode, _node
from ._common import _broadcast_error, _pair, _reduce_to, _tensor_arg

_relu_forward = kernels.relu_forward
_relu_backward = kernels.relu_backward

__all__ = ["add", "sub", "mul", "neg", "div", "relu"]


def add(a: Operand, b: Operand) -> Tensor:
    """y = a + b (numpy broadcasting; numbers take the tensor's dtype)."""
    a, b = _pair(a, b, "add")
    try:
        y = a.data + b.data
    except ValueError:
        raise _broadcast_error("add", a, b) from None
    if not (_grad_mode.enabled and (a.requires_grad or b.requires_grad)):
        return _const(y)

    def backward(gy, own):
        # y = a + b  ->  dL/da = dL/dy, dL/db = dL/dy, each summed over its broadcast axes
        ra, rb = a.requires_grad, b.requires_grad
        share = ra and rb and a.data.shape == b.data.shape  # both would keep gy itself
        if ra:
            _accumulate(a, *_reduce_to(gy, a.data.shape, own and not share))
        if rb:
            _accumulate(b, *_reduce_to(gy, b.data.shape, own and not share))

    return _node(y, (a, b), backward, "add")


def sub(a: Operand, b: Operand) -> Tensor:
    """y = a - b (numpy broadcasting; numbers take the tensor's dtype)."""
    a, b = _pair(a, b, "sub")
    try:
        y = a.data - b.data
    except ValueError:
        raise _broadcast_error("sub", a, b) from None
    if not (_grad_mode.enabled and (a.requires_grad or b.requires_grad)):
        return _const(y)

    def backward(gy, own):
        # y = a - b  ->  dL/da = dL/dy, dL/db = -dL/dy, each summed over its broadcast axes
        ra, rb = a.requires_grad, b.requires_grad
        if rb:
            gb, fresh = _reduce_to(gy, b.data.shape, own and not ra)
            _accumulate(b, np.negative(gb, out=gb) if fresh else np.negative(gb), True)
        if ra:
            _accumulate(a, *_reduce_to(gy, a.data.shape, own))

    return _node(y, (a, b), backward, "sub")


def mul(a: Operand, b: Operand) -> Tensor:
    """y = a * b elementwise (numpy broadcasting; numbers take the tensor's dtype)."""
    a, b = _pair(a, b, "mul")
    try:
        y = a.data * b.data
    except ValueError:
        raise _broadcast_error("mul", a, b) from None
    if not (_grad_mode.enabled and (a.requires_grad or b.requires_grad)):
        return _const(y)

    def backward(gy, own):
        # y = a * b  ->  dL/da = dL/dy * b, dL/db = dL/dy * a, each summed over its broadcast axes
        ra, rb = a.requires_grad, b.requires_grad
        if ra:
            if own and not rb and a.data.shape == gy.shape:
                _accumulate(a, np.multiply(gy, b.data, out=gy), True)  # reuse gy: nobody else reads it
            else:
                _accumulate(a, *_reduce_to(gy * b.data, a.data.shape, True))
        if rb:
            _accumulate(b, *_reduce_to(gy * a.data, b.data.shape, True))

    return _node(y, (a, b), backward, "mul")


def neg(a: Operand) -> Tensor:
    """y = -a."""
    a = _tensor_arg(a)
    y = np.negative(a.data)
    if not (_grad_mode.enabled and a.requires_grad):
        return _const(y)

    def backward(gy, own):
        # y = -a  ->  dL/da = -dL/dy
        _accumulate(a, np.negative(gy, out=gy) if own else np.negative(gy), True)

    return _node(y, (a,), backward, "neg")


def div(a: Operand, b: Operand) -> Tensor:
    """y = a / b elementwise (numpy broadcasting; numbers take the tensor's dtype).

    A tensor divided by a Python or numpy number s is recorded as a * (1/s), and s = 0 raises
    ZeroDivisionError. Between tensors (or a number over a tensor) a zero divisor gives ±inf or
    NaN with numpy's RuntimeWarning, as numpy does.
    """
    if isinstance(a, Tensor) and isinstance(b, (int, float, np.integer, np.floating)):
        if b == 0:
            raise ZeroDivisionError("div: division of a tensor by zero")
        return mul(a, 1.0 / float(b))
    a, b = _pair(a, b, "div")
    ad, bd = a.data, b.data
    try:
        y = ad / bd
    except ValueError:
        raise _broadcast_error("div", a, b) from None
    if type(y) is not np.ndarray:  # 0-d operands give a numpy scalar
        y = np.asarray(y)
    if not (_grad_mode.enabled and (a.requires_grad or b.requires_grad)):
        return _const(y)

    def backward(gy, own):
        # y = a / b  ->  dL/da = dL/dy / b,  dL/db = −dL/dy · a / b² = −(dL/da) · y,
        # each summed over its broadcast axes (gy has y's shape, so dL/da can be written into it)
        ra, rb = a.requires_grad, b.requires_grad
        ga = np.divide(gy, bd, out=gy if own else np.empty(y.shape, y.dtype))
        if rb:
            gb = np.multiply(ga, y, out=np.empty(y.shape, y.dtype) if ra else ga)
            _accumulate(b, *_reduce_to(np.negative(gb, out=gb), bd.shape, True))
        if ra:
            _accumulate(a, *_reduce_to(ga, ad.shape, True))

    return _node(y, (a, b), backward, "div")


# --------------------------------------------------------------------------------------------
# ReLU
# --------------------------------------------------------------------------------------------


def relu(x: Operand) -> Tensor:
    """y = max(0, x) elementwise, any shape."""
    x = _tensor_arg(x)
    y = _relu_forward(x.data)
    if not (_grad_mode.enabled and x.requires_grad):
        return _const(y)
    xd = x.data  # the mask x > 0 is all the backward needs

    def backward(gy, own):
        # y = max(0, x)  ->  dL/dx = dL/dy where x > 0, else 0: the diagonal Jacobian as a mask
        out = gy if own and gy.flags.c_contiguous else None
        _accumulate(x, _relu_backward(gy, xd, out), True)

    return _node(y, (x,), backward, "relu")
