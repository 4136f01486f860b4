"""Indexing (``x[...]``), concatenation and flatten. Each backward puts dL/dy back where the
forward took its elements from: scattered into zeros of x's shape, split between the inputs,
or reshaped.
"""

from __future__ import annotations

import operator
from typing import Any, List, Sequence, SupportsIndex, Tuple

import numpy as np

from ..tensor import Operand, Tensor, _accumulate, _const, _grad_mode, _node
from ._common import _tensor_arg, _wrap

__all__ = ["getitem", "concat", "flatten"]


# --------------------------------------------------------------------------------------------
# x[index]
# --------------------------------------------------------------------------------------------


def _index_parts(index: Any) -> Tuple[Tuple[Any, ...], bool]:
    """``index`` as a tuple numpy reads the same way, and whether it can select an element twice.

    Lists become arrays (as numpy reads them) and arrays are copied, so that the backward sees the
    index the forward used even if the caller changes theirs. Ints, slices, ``...``, None and
    boolean masks select each element at most once; an integer array may repeat one.
    """
    parts = index if isinstance(index, tuple) else (index,)
    out, repeats = [], False
    for part in parts:
        if isinstance(part, Tensor):
            raise TypeError("getitem: a Tensor cannot be used as an index (its data is floating point); "
                            "index with ints, slices or an integer/boolean ndarray or list")
        if isinstance(part, (list, tuple, np.ndarray)):
            part = np.array(part)
            if part.size == 0 and part.dtype.kind == "f":
                part = part.astype(np.intp)  # [] is an empty integer index to numpy, not a float one
            repeats = repeats or part.dtype.kind != "b"
        out.append(part)
    return tuple(out), repeats


def getitem(x: Operand, index: Any) -> Tensor:
    """y = x[index] with numpy's rules: ints (negative ones too), slices with steps, ``...``, None,
    integer arrays or lists (repeats allowed) and boolean masks. Basic indexing gives a view.

    The gradient is zeros of x's shape with dL/dy written at the indexed places, and added up
    where an integer array picks one element more than once.
    """
    x = _tensor_arg(x)
    xd = x.data
    index, repeats = _index_parts(index)
    try:
        y = xd[index]
    except IndexError as e:
        raise IndexError(f"getitem: index {_show(index)} is out of range or invalid for a tensor of "
                         f"shape {xd.shape} ({e})") from None
    if type(y) is not np.ndarray:  # a single element comes back as a numpy scalar
        y = np.asarray(y)
    if not (_grad_mode.enabled and x.requires_grad):
        return _const(y)

    def backward(gy, own):
        # y = x[index]  ->  dL/dx = zeros(x.shape) with dL/dx[index] += dL/dy: a scatter, not a
        # Jacobian; np.add.at adds every occurrence of a repeated integer index
        gx = np.zeros(xd.shape, gy.dtype)
        if repeats:
            np.add.at(gx, index, gy)
        else:
            gx[index] = gy  # every element is selected at most once: a plain write
        _accumulate(x, gx, True)

    return _node(y, (x,), backward, "getitem")


def _show(index: Tuple[Any, ...]) -> str:
    """The index as the caller wrote it, compactly: ``(0, slice(1, 3, None))`` or ``[4, 9]``."""
    parts = [p.tolist() if isinstance(p, np.ndarray) and p.size <= 8 else
             f"<{p.dtype} array of shape {p.shape}>" if isinstance(p, np.ndarray) else p for p in index]
    return repr(parts[0]) if len(parts) == 1 else repr(tuple(parts))


# --------------------------------------------------------------------------------------------
# concat
# --------------------------------------------------------------------------------------------


def concat(tensors: Sequence[Operand], axis: SupportsIndex = 0) -> Tensor:
    """y = the tensors joined along ``axis`` (np.concatenate's rules: same ndim, equal shapes on
    every other axis, one dtype). Arrays and numbers among them are constants of that dtype."""
    if isinstance(tensors, (Tensor, np.ndarray)) or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"concat: expected a list or tuple of tensors, got {type(tensors).__name__}")
    if not tensors:
        raise ValueError("concat: needs at least one tensor, got an empty sequence")
    first = next((t for t in tensors if isinstance(t, Tensor)), None)
    if first is None:
        raise TypeError("concat: expected at least one Tensor among the inputs")
    dtype = first.data.dtype
    ts = []
    for i, t in enumerate(tensors):
        if isinstance(t, Tensor):
            if t.data.dtype != dtype:
                raise TypeError(f"concat: dtypes differ: tensor {i} is {t.data.dtype} but the first tensor is "
                                f"{dtype}; convert one with mg.tensor(..., dtype=...)")
        else:
            t = _wrap(t, dtype, "concat")
        ts.append(t)
    shapes = [t.data.shape for t in ts]
    ndim = len(shapes[0])
    try:
        ax = operator.index(axis)
    except TypeError:
        raise TypeError(f"concat: axis must be an int, got {axis!r}") from None
    if not -ndim <= ax < ndim:
        raise ValueError(f"concat: axis {axis!r} is invalid for tensors of shape {shapes[0]}")
    ax = ax + ndim if ax < 0 else ax
    if any(len(s) != ndim or s[:ax] + s[ax + 1:] != shapes[0][:ax] + shapes[0][ax + 1:] for s in shapes):
        raise ValueError(f"concat: shapes {', '.join(map(str, shapes))} differ on an axis other than axis "
                         f"{ax} (every tensor needs {ndim} axes and equal sizes except along axis {ax})")
    y = np.concatenate([t.data for t in ts], axis=ax)
    if not (_grad_mode.enabled and any(t.requires_grad for t in ts)):
        return _const(y)
    stops = np.cumsum([s[ax] for s in shapes]).tolist()
    lead = (slice(None),) * ax

    def backward(gy, own):
        # y = concatenate(ts, axis)  ->  dL/dts[i] = dL/dy[..., start_i:stop_i, ...] along axis:
        # views of gy, which other inputs' views share, so passed on as borrowed
        start = 0
        for t, stop in zip(ts, stops):
            if t.requires_grad:
                _accumulate(t, gy[lead + (slice(start, stop),)], False)
            start = stop

    return _node(y, tuple(ts), backward, "concat")


# --------------------------------------------------------------------------------------------
# flatten
# --------------------------------------------------------------------------------------------


def flatten(x: Operand, start_axis: SupportsIndex = 1) -> Tensor:
    """y = x with the axes from ``start_axis`` on merged into one: shape (N, C, H, W) becomes
    (N, C·H·W) for start_axis=1, (N·C·H·W,) for 0. Negative start_axis counts from the end."""
    x = _tensor_arg(x)
    xd = x.data
    try:
        a = operator.index(start_axis)
    except TypeError:
        raise TypeError(f"flatten: start_axis must be an int, got {start_axis!r}") from None
    if not -xd.ndim <= a < xd.ndim:
        raise ValueError(f"flatten: start_axis {start_axis!r} is invalid for a tensor of shape {xd.shape}")
    a = a + xd.ndim if a < 0 else a
    merged = 1
    for n in xd.shape[a:]:
        merged *= n  # explicit, not -1: numpy cannot infer -1 when another axis is 0
    y = xd.reshape(xd.shape[:a] + (merged,))
    if not (_grad_mode.enabled and x.requires_grad):
        return _const(y)

    def backward(gy, own):
        # y = x.reshape(x.shape[:start] + (-1,))  ->  dL/dx = dL/dy.reshape(x.shape)
        _accumulate(x, gy.reshape(xd.shape), own)

    return _node(y, (x,), backward, "flatten")
