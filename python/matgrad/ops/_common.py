"""Operand plumbing shared by the ops: wrapping numbers and arrays as constant tensors, checking
dtypes, summing a gradient back over broadcast axes, and choosing where a kernel writes a gradient.
"""

from __future__ import annotations

import math
import threading
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .. import _core
from ..tensor import Operand, Tensor, _const, _getrefcount

def _wrap(v: Any, dtype: np.dtype, op: str) -> Tensor:
    """A constant tensor for a non-Tensor operand; numbers and integer arrays take ``dtype``."""
    if isinstance(v, (int, float)) or (isinstance(v, np.generic) and v.dtype.kind in "biuf"):
        return _const(np.array(v, dtype))
    if isinstance(v, (list, tuple)):
        v = np.asarray(v)
    if isinstance(v, np.ndarray):
        kind = v.dtype.kind
        if kind == "f" and v.dtype != dtype:
            raise TypeError(f"{op}: dtypes differ: the tensor is {dtype} but the array is {v.dtype} "
                            f"(convert one with .astype or mg.tensor(..., dtype=...))")
        if kind not in "biuf":
            raise TypeError(f"{op}: expected a Tensor, an array of numbers or a number, "
                            f"got an array of dtype {v.dtype}")
        return _const(v if v.dtype == dtype else v.astype(dtype))
    raise TypeError(f"{op}: expected a Tensor, an ndarray or a number, got {type(v).__name__}")


def _pair(a: Operand, b: Operand, op: str) -> Tuple[Tensor, Tensor]:
    """Both operands as Tensors of one dtype (float32 and float64 never mix)."""
    if not isinstance(a, Tensor):
        if not isinstance(b, Tensor):
            raise TypeError(f"{op}: expected at least one Tensor, got {type(a).__name__} and {type(b).__name__}")
        a = _wrap(a, b.data.dtype, op)
    elif not isinstance(b, Tensor):
        b = _wrap(b, a.data.dtype, op)
    else:
        da, db = a.data.dtype, b.data.dtype
        if da is not db and da != db:
            raise TypeError(f"{op}: dtypes differ: {da} and {db} "
                            f"(shapes {a.data.shape} and {b.data.shape}); convert one with mg.tensor(..., dtype=...)")
    return a, b


def _tensor_arg(x: Operand) -> Tensor:
    """Unary ops take a Tensor; anything else becomes a constant one (with mg.tensor's rules)."""
    return x if isinstance(x, Tensor) else Tensor(x)


def _broadcast_error(op: str, a: Tensor, b: Tensor) -> ValueError:
    return ValueError(f"{op}: shapes {a.data.shape} and {b.data.shape} cannot be broadcast together")


def _reduce_to(g: np.ndarray, shape: Tuple[int, ...], own: bool) -> Tuple[np.ndarray, bool]:
    """dL/dy summed over the axes along which an operand of ``shape`` was broadcast to y's shape.

    Returns (gradient, own): a reduction is a fresh buffer, so it is owned.
    """
    if g.shape == shape:
        return g, own
    lead = g.ndim - len(shape)  # axes numpy prepended
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1)
    return np.add.reduce(g, axis=axes, keepdims=True).reshape(shape), True


class _RecycledBuffers:
    """Buffers for the gradients of intermediate tensors (``grad_buffers``) and for the outputs of
    some forwards (``output_buffers``), kept from one step to the next.

    An intermediate's gradient lives only until the backward of the op that made it has run;
    allocated afresh each time, every large one arrives as new pages from the kernel, faulted in
    one by one (the digits CNN at batch 128: max_pool2d's backward took 0.6–0.8 ms in a training
    step against 0.1 ms on its own, on an AMD Zen 4). Here such a buffer is handed out again once
    nothing but this pool refers to it (the reference count says so: a caller's name, a view or an
    exported buffer keeps it out of reach). Kernels given a target with accumulate=False overwrite
    it without reading it, so what it held does not matter. Only arrays of at least ``min_bytes``,
    at most ``per_shape`` per (shape, dtype), ``max_bytes`` in all; ``clear()`` lets them go.
    """

    def __init__(self, min_bytes: int = 1 << 16, per_shape: int = 2, max_bytes: int = 1 << 28) -> None:
        self._held: Dict[Tuple[Tuple[int, ...], np.dtype], List[np.ndarray]] = {}
        self._bytes = 0
        self._min, self._per_shape, self._max = min_bytes, per_shape, max_bytes
        self._lock = threading.Lock()
        # What getrefcount reports for an array held by a list only, measured the way take()
        # asks (interpreters count the references of a call's argument differently).
        probe = [np.empty(1)]
        self._free_refs: Optional[int] = _getrefcount(probe[0]) if _getrefcount is not None else None

    def take(self, shape: Tuple[int, ...], dtype: np.dtype) -> Optional[np.ndarray]:
        """A C-contiguous array of ``shape`` and ``dtype`` that nothing else refers to, or None
        (then the kernel allocates)."""
        if _getrefcount is None or self._free_refs is None:
            return None  # no reference counts (PyPy): nothing can be known to be free
        nbytes = math.prod(shape) * dtype.itemsize  # math.prod: np.prod costs a ufunc call
        if nbytes < self._min:
            return None
        key = (shape, dtype)
        with self._lock:
            held = self._held.setdefault(key, [])
            for i in range(len(held)):
                if _getrefcount(held[i]) == self._free_refs:  # the list's reference only
                    return held[i]
            if len(held) >= self._per_shape or self._bytes + nbytes > self._max:
                return None
            fresh = _core.empty_aligned(shape, dtype)  # on a cache line, as the kernels' outputs
            held.append(fresh)
            self._bytes += nbytes
            return fresh

    def clear(self) -> None:
        """Drop every buffer (those still in use live on with their users)."""
        with self._lock:
            self._held.clear()
            self._bytes = 0

    def nbytes(self) -> int:
        """Bytes held now."""
        return self._bytes


grad_buffers = _RecycledBuffers()
# The same for the outputs of the convolution and max-pooling forwards (and max pooling's
# argmax): a buffer is written again only once nothing refers to it any more (the tensor
# holding it, its graph node and every view of it gone).
output_buffers = _RecycledBuffers()


def _grad_target(t: Tensor) -> Tuple[Optional[np.ndarray], bool]:
    """Where an op's kernel should put t's gradient, as (array or None, accumulate?).

    An owned gradient is added into; the buffer zero_grad() left behind is overwritten (never
    read), and so is a recycled one for an intermediate tensor (``grad_buffers``); otherwise the
    kernel allocates. A borrowed gradient is copied first: never written.
    """
    cur = t.grad
    if cur is None:
        spare = t._spare
        if spare is not None:
            t._spare = None
            if spare.shape == t.data.shape and spare.dtype == t.data.dtype:
                return spare, False
        if t._backward is not None:  # an intermediate: its gradient is dropped once used
            return grad_buffers.take(t.data.shape, t.data.dtype), False
        return None, False
    if t._gown is cur and cur.flags.c_contiguous:  # owned (tensor.py's docstring): written in place
        return cur, True
    return np.array(cur, order="C"), True


_NO_TARGET: Tuple[Optional[np.ndarray], bool] = (None, False)
