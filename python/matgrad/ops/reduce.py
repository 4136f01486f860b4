"""Reductions: sum and mean over any axes; the backward copies dL/dy back along them."""

from __future__ import annotations

import operator
from typing import Any, Sequence, Tuple

import numpy as np

from ..tensor import Axis, Operand, Tensor, _accumulate, _const, _grad_mode, _node
from ._common import _tensor_arg

# ``sum`` below shadows the builtin inside this module, on purpose (mg.sum mirrors np.sum).
__all__ = ["sum", "mean"]


_ALL_AXES = tuple(tuple(range(ndim)) for ndim in range(8))  # axis=None, precomputed for sum()


def _axes(axis: Axis, ndim: int, op: str, shape: Tuple[int, ...]) -> Tuple[int, ...]:
    """Normalise ``axis`` (None, int or sequence) to a tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axes: Sequence[Any]
    try:
        axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
        axes = [operator.index(a) for a in axes]
    except TypeError:
        raise TypeError(f"{op}: axis must be None, an int or a sequence of ints, got {axis!r}") from None
    out = tuple(a + ndim if a < 0 else a for a in axes)
    if any(not 0 <= a < ndim for a in out) or len(set(out)) != len(out):
        raise ValueError(f"{op}: axis {axis!r} is invalid for a tensor of shape {shape}")
    return out


def _spread(g: np.ndarray, shape: Tuple[int, ...], axes: Tuple[int, ...],
            keepdims: bool) -> Tuple[np.ndarray, bool]:
    """dL/dy copied along the reduced ``axes`` to ``shape``, as (array, own).

    A reduction over every axis (``loss.sum()``) gets a fresh filled buffer that the next op's
    backward may reuse (ReLU masks it in place; a leaf keeps it). A partial reduction gets a
    read-only zero-stride view, built directly with np.ndarray (0.2 µs, where np.broadcast_to
    takes 3 µs): no copy until a consumer needs one.
    """
    if len(axes) == len(shape):
        full = np.empty(shape, g.dtype)
        full[...] = g  # g is 0-d, or all ones in shape with keepdims
        return full, True
    if not g.flags.c_contiguous:
        return np.broadcast_to(g if keepdims else np.expand_dims(g, axes), shape), False
    strides, g_strides = [], iter(g.strides)
    for i in range(len(shape)):
        if i in axes:
            strides.append(0)
            if keepdims:
                next(g_strides)
        else:
            strides.append(next(g_strides))
    view = np.ndarray(shape, g.dtype, g, 0, tuple(strides))
    view.flags.writeable = False
    return view, False


def sum(x: Operand, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Sum over ``axis`` (None: all elements)."""
    x = _tensor_arg(x)
    xd = x.data
    axes = _ALL_AXES[xd.ndim] if axis is None and xd.ndim < 8 else _axes(axis, xd.ndim, "sum", xd.shape)
    y = np.add.reduce(xd, axis=axes, keepdims=keepdims)  # type: ignore[call-overload]  # stubs: Literal keepdims
    if type(y) is not np.ndarray:  # a numpy scalar when every axis is summed
        y = np.asarray(y)
    if not (_grad_mode.enabled and x.requires_grad):
        return _const(y)

    def backward(gy, own):
        # y = Σ_axes x  ->  dL/dx = dL/dy copied along the summed axes
        _accumulate(x, *_spread(gy, xd.shape, axes, keepdims))

    return _node(y, (x,), backward, "sum")


def mean(x: Operand, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Mean over ``axis`` (None: all elements)."""
    x = _tensor_arg(x)
    xd = x.data
    axes = _axes(axis, xd.ndim, "mean", xd.shape)
    count = 1
    for a in axes:
        count *= xd.shape[a]
    if count == 0:
        raise ValueError(f"mean: no elements to average over (shape {xd.shape}, axis {axis!r})")
    y = np.asarray(np.mean(xd, axis=axes, keepdims=keepdims))
    if not (_grad_mode.enabled and x.requires_grad):
        return _const(y)
    scale = 1.0 / count

    def backward(gy, own):
        # y = Σ_axes x / count  ->  dL/dx = dL/dy / count, copied along the averaged axes
        g = np.multiply(gy, scale)
        g = g if type(g) is np.ndarray else np.asarray(g)  # a 0-d product comes back as a scalar
        _accumulate(x, *_spread(g, xd.shape, axes, keepdims))

    return _node(y, (x,), backward, "mean")
