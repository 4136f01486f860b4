"""Smooth activations and powers (tanh, sigmoid, exp, log, leaky ReLU, x ** p), and softmax /
log_softmax along one axis.

Each backward starts from whichever saved array makes dL/dx cheapest: the output for tanh
(1 − y²), sigmoid (y(1 − y)), exp (y), softmax and log_softmax (exp(y)); the input for log (1/x),
leaky ReLU (the sign of x) and pow (p·x^(p−1)). Numbers (the slope, the exponent) take the
tensor's dtype, so float32 stays float32.
"""

from __future__ import annotations

import operator
from typing import Any, SupportsIndex, Tuple

import numpy as np

from ..tensor import Number, Operand, Tensor, _accumulate, _const, _grad_mode, _node
from ._common import _tensor_arg

# ``pow`` below shadows the builtin inside this module, on purpose (mg.pow mirrors np.power).
__all__ = ["tanh", "sigmoid", "exp", "log", "leaky_relu", "pow", "softmax", "log_softmax"]

_NUMBER = (int, float, np.integer, np.floating)


def _array(v: Any) -> np.ndarray:
    """A ufunc on a 0-d array returns a numpy scalar; the backward needs an ndarray to write into."""
    return v if type(v) is np.ndarray else np.asarray(v)


def _scale_into(gy: np.ndarray, own: bool, d: np.ndarray) -> np.ndarray:
    """dL/dy · d for a fresh buffer d of gy's shape: written into gy when it is ours, else into d."""
    return np.multiply(gy, d, out=gy if own else d)


# --------------------------------------------------------------------------------------------
# elementwise
# --------------------------------------------------------------------------------------------


def tanh(x: Operand) -> Tensor:
    """y = tanh(x) elementwise."""
    x = _tensor_arg(x)
    y = _array(np.tanh(x.data))
    if not (_grad_mode.enabled and x.requires_grad):
        return _const(y)

    def backward(gy, own):
        # y = tanh(x)  ->  dL/dx = dL/dy · (1 − y²): from the output, no second tanh
        d = _array(np.multiply(y, y))
        np.subtract(1, d, out=d)
        _accumulate(x, _scale_into(gy, own, d), True)

    return _node(y, (x,), backward, "tanh")


def sigmoid(x: Operand) -> Tensor:
    """y = 1 / (1 + exp(−x)) elementwise, stable for any x: exp is only taken of −|x| ≤ 0, so it
    never overflows (sigmoid(±1000) is exactly 1 and 0, with no warning) and small outputs keep
    their relative precision."""
    x = _tensor_arg(x)
    xd = x.data
    e = np.exp(-np.abs(xd))  # in (0, 1]: exp(x) for x < 0, exp(−x) for x ≥ 0
    r = 1 / (1 + e)  # sigmoid(|x|)
    y = _array(np.where(xd >= 0, r, e * r))  # sigmoid(−|x|) = e/(1 + e) = e · sigmoid(|x|)
    if not (_grad_mode.enabled and x.requires_grad):
        return _const(y)

    def backward(gy, own):
        # y = σ(x)  ->  dL/dx = dL/dy · y(1 − y): from the output, no second exp
        d = _array(np.subtract(1, y))
        d *= y
        _accumulate(x, _scale_into(gy, own, d), True)

    return _node(y, (x,), backward, "sigmoid")


def exp(x: Operand) -> Tensor:
    """y = exp(x) elementwise (overflows to inf with numpy's RuntimeWarning past ~88 in float32,
    ~709 in float64)."""
    x = _tensor_arg(x)
    y = _array(np.exp(x.data))
    if not (_grad_mode.enabled and x.requires_grad):
        return _const(y)

    def backward(gy, own):
        # y = exp(x)  ->  dL/dx = dL/dy · y
        _accumulate(x, _array(np.multiply(gy, y, out=gy if own else None)), True)

    return _node(y, (x,), backward, "exp")


def log(x: Operand) -> Tensor:
    """y = ln(x) elementwise, exactly as numpy computes it: ln(0) is −inf (numpy's "divide by
    zero" RuntimeWarning) and ln of a negative number is NaN (numpy's "invalid value"
    RuntimeWarning). The warnings are numpy's own, so ``np.errstate`` controls them.
    """
    x = _tensor_arg(x)
    xd = x.data
    y = _array(np.log(xd))
    if not (_grad_mode.enabled and x.requires_grad):
        return _const(y)

    def backward(gy, own):
        # y = ln(x)  ->  dL/dx = dL/dy / x
        _accumulate(x, _array(np.divide(gy, xd, out=gy if own else None)), True)

    return _node(y, (x,), backward, "log")


def _number(v: Any, op: str, what: str) -> Number:
    """A real number argument; a Tensor or anything else is a TypeError naming ``what``."""
    if isinstance(v, Tensor):
        raise TypeError(f"{op}: {what} must be a number, got a Tensor (only a Python or numpy number "
                        f"is supported here)")
    if isinstance(v, np.ndarray) and v.ndim == 0 and v.dtype.kind in "biuf":
        v = v[()]
    if not isinstance(v, _NUMBER):
        raise TypeError(f"{op}: {what} must be a number, got {type(v).__name__}")
    return v


def leaky_relu(x: Operand, slope: Number = 0.01) -> Tensor:
    """y = x where x > 0, else slope·x, elementwise (the gradient at 0 is slope, as in PyTorch)."""
    slope = _number(slope, "leaky_relu", "slope")
    x = _tensor_arg(x)
    xd = x.data
    s = xd.dtype.type(slope)
    positive = xd > 0
    y = _array(np.where(positive, xd, xd * s))
    if not (_grad_mode.enabled and x.requires_grad):
        return _const(y)
    one = xd.dtype.type(1)

    def backward(gy, own):
        # y = where(x > 0, x, slope·x)  ->  dL/dx = dL/dy where x > 0, else slope·dL/dy
        _accumulate(x, _scale_into(gy, own, _array(np.where(positive, one, s))), True)

    return _node(y, (x,), backward, "leaky_relu")


def pow(x: Operand, p: Number) -> Tensor:
    """y = x ** p elementwise for a number p (``x ** p``), computed by np.power in x's dtype.

    As in numpy, a negative x to a fractional p is NaN (with numpy's RuntimeWarning) and 0 to a
    negative p is inf. The gradient of x ** 0 is 0 everywhere (x = 0 included).
    """
    p = _number(p, "pow", "the exponent")
    x = _tensor_arg(x)
    xd = x.data
    p = xd.dtype.type(p)
    y = _array(np.power(xd, p))
    if not (_grad_mode.enabled and x.requires_grad):
        return _const(y)

    def backward(gy, own):
        # y = x ** p  ->  dL/dx = dL/dy · p·x^(p−1)  (0 for p = 0, where y is the constant 1)
        if p == 0:
            _accumulate(x, np.zeros(xd.shape, xd.dtype), True)
            return
        d = _array(np.power(xd, p - 1))
        d *= p
        _accumulate(x, _scale_into(gy, own, d), True)

    return _node(y, (x,), backward, "pow")


# --------------------------------------------------------------------------------------------
# softmax / log_softmax along one axis
# --------------------------------------------------------------------------------------------


def _axis(axis: SupportsIndex, shape: Tuple[int, ...], op: str) -> int:
    """``axis`` as a non-negative int; anything else is an error naming the axis and the shape."""
    try:
        a = operator.index(axis)
    except TypeError:
        raise TypeError(f"{op}: axis must be an int, got {axis!r}") from None
    ndim = len(shape)
    if not -ndim <= a < ndim:
        raise ValueError(f"{op}: axis {axis!r} is invalid for a tensor of shape {shape}")
    return a + ndim if a < 0 else a


def softmax(x: Operand, axis: SupportsIndex = -1) -> Tensor:
    """y = exp(x) / Σ_axis exp(x) along ``axis``, any ndim. The max along the axis is subtracted
    first, so large inputs never overflow (softmax([1000, 0]) is [1, 0])."""
    x = _tensor_arg(x)
    xd = x.data
    axis = _axis(axis, xd.shape, "softmax")
    if xd.shape[axis] == 0:
        y = np.empty(xd.shape, xd.dtype)  # nothing to normalise (np.max would refuse the empty axis)
    else:
        z = np.subtract(xd, np.max(xd, axis=axis, keepdims=True))  # ≤ 0: exp cannot overflow
        e = np.exp(z, out=z)
        y = np.divide(e, np.add.reduce(e, axis=axis, keepdims=True), out=e)
    if not (_grad_mode.enabled and x.requires_grad):
        return _const(y)

    def backward(gy, own):
        # y = softmax(x)  ->  dL/dx = y · (dL/dy − Σ_axis dL/dy · y): the Jacobian diag(y) − y·yᵀ,
        # applied without forming it
        dot = np.add.reduce(gy * y, axis=axis, keepdims=True)
        dx = np.subtract(gy, dot, out=gy if own else None)
        dx *= y
        _accumulate(x, dx, True)

    return _node(y, (x,), backward, "softmax")


def log_softmax(x: Operand, axis: SupportsIndex = -1) -> Tensor:
    """y = x − log Σ_axis exp(x) along ``axis``, any ndim, computed stably (the max along the
    axis is subtracted before exp): better than log(softmax(x)), which is −inf where softmax
    underflows to 0."""
    x = _tensor_arg(x)
    xd = x.data
    axis = _axis(axis, xd.shape, "log_softmax")
    if xd.shape[axis] == 0:
        y = np.empty(xd.shape, xd.dtype)
    else:
        z = np.subtract(xd, np.max(xd, axis=axis, keepdims=True))
        lse = np.log(np.add.reduce(np.exp(z), axis=axis, keepdims=True))  # ≥ 0: the max term is 1
        y = np.subtract(z, lse, out=z)
    if not (_grad_mode.enabled and x.requires_grad):
        return _const(y)

    def backward(gy, own):
        # y = x − log Σ exp(x)  ->  dL/dx = dL/dy − softmax(x) · Σ_axis dL/dy, softmax(x) = exp(y)
        total = np.add.reduce(gy, axis=axis, keepdims=True)
        dx = np.exp(y)
        dx *= total
        np.subtract(gy, dx, out=dx)
        _accumulate(x, dx, True)

    return _node(y, (x,), backward, "log_softmax")
