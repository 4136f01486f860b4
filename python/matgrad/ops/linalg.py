"""Matrix multiply and the fused linear layer: the lecture's three products through one GEMM.

Shapes follow the lecture: x is (N, D), w is (D, M), y = x·w is (N, M).
"""

from __future__ import annotations

from typing import Optional, Union

import numpy as np

from .. import kernels
from ..tensor import Operand, Tensor, _accumulate, _const, _grad_mode, _node
from ._common import _NO_TARGET, _grad_target, _pair, _wrap
from .elementwise import add, relu as _relu_op

_matmul = kernels.matmul
_linear_forward = kernels.linear_forward
_linear_backward = kernels.linear_backward

__all__ = ["matmul", "linear"]


def _accumulate_matmul(t: Tensor, a: np.ndarray, b: np.ndarray, trans_a: bool, trans_b: bool) -> None:
    """t.grad += op(a)·op(b) through the kernel: into t's own buffer when it has one."""
    out, accumulate = _grad_target(t)
    try:
        g = _matmul(a, b, trans_a, trans_b, out, accumulate)
    except ValueError:  # out overlaps an operand (a gradient assigned by hand): no in-place write
        g = _matmul(a, b, trans_a, trans_b)
        if accumulate:
            g += out  # type: ignore[arg-type]  # accumulate: out is an array
    t.grad = t._gown = g


def matmul(x: Operand, w: Operand) -> Tensor:
    """y = x·w for 2-D x (N, D) and w (D, M); y is (N, M)."""
    if not (isinstance(x, Tensor) and isinstance(w, Tensor)):
        x, w = _pair(x, w, "matmul")
    y = _matmul(x.data, w.data)  # (N,D)·(D,M) -> (N,M); the kernel checks shapes and dtypes
    if not (_grad_mode.enabled and (x.requires_grad or w.requires_grad)):
        return _const(y)

    def backward(gy, own):  # gy = dL/dy: (N,M)
        # y[n,m] = Σ_d x[n,d]·w[d,m]
        if x.requires_grad:  # dL/dx = dL/dy·wᵀ: (N,M)·(M,D) -> (N,D)
            _accumulate_matmul(x, gy, w.data, False, True)
        if w.requires_grad:  # dL/dw = xᵀ·dL/dy: (D,N)·(N,M) -> (D,M)
            _accumulate_matmul(w, x.data, gy, True, False)

    return _node(y, (x, w), backward, "matmul")


def linear(x: Operand, w: Tensor, b: Optional[Operand] = None, relu: bool = False) -> Tensor:
    """y = x·w + b, then max(0, y) when ``relu``: one node in the graph.

    x is (N, D), w is (D, M), b is (M,) or None (another shape that broadcasts onto (N, M), such
    as (1, M), is added by separate ``add`` and ``relu`` nodes). The fused kernel adds the bias and applies the
    ReLU while the GEMM writes y; the backward masks dL/dy, sums the bias gradient in the same
    pass, and forms dL/dx = g·wᵀ and dL/dw = xᵀ·g through the transpose flags.
    """
    if not isinstance(w, Tensor):
        raise TypeError(f"linear: w must be a Tensor, got {type(w).__name__}")
    if not isinstance(x, Tensor):
        x = _wrap(x, w.data.dtype, "linear")
    if b is not None and not isinstance(b, Tensor):
        b = _wrap(b, w.data.dtype, "linear")
    if x.data.dtype != w.data.dtype or (b is not None and b.data.dtype != w.data.dtype):
        kinds = f"x is {x.data.dtype}, w is {w.data.dtype}" + ("" if b is None else f", b is {b.data.dtype}")
        raise TypeError(f"linear: dtypes differ: {kinds}")
    if b is not None and (w.data.ndim != 2 or b.data.shape != (w.data.shape[1],)):
        # A bias of another shape that broadcasts onto (N, M), such as (1, M): composed ops.
        y: Union[Tensor, np.ndarray]
        yw = matmul(x, w)
        try:
            np.broadcast_shapes(yw.data.shape, b.data.shape)
        except ValueError:
            raise ValueError(f"linear: bias of shape {b.data.shape} does not broadcast to x·w of shape "
                             f"{yw.data.shape} (expected ({yw.data.shape[1]},))") from None
        y = add(yw, b)
        return _relu_op(y) if relu else y
    # (N,D)·(D,M) + (M,) -> (N,M); the kernel checks the shapes
    y = _linear_forward(x.data, w.data, None if b is None else b.data, relu)
    rb = b is not None and b.requires_grad
    if not (_grad_mode.enabled and (x.requires_grad or w.requires_grad or rb)):
        return _const(y)

    def backward(gy, own):  # gy = dL/dy: (N,M)
        # y = relu(x·w + b)  ->  g = dL/dy ⊙ [y > 0];  dL/db = Σ_n g;  dL/dx = g·wᵀ;  dL/dw = xᵀ·g
        rx, rw, rb = x.requires_grad, w.requires_grad, b is not None and b.requires_grad
        same = w is x  # linear(a, a): one buffer for a; its second share is added after
        dx, acc_x = _grad_target(x) if rx else _NO_TARGET
        dw, acc_w = _grad_target(w) if rw and not same else _NO_TARGET
        db, acc_b = _grad_target(b) if rb else _NO_TARGET  # type: ignore[arg-type]  # rb: b is a Tensor
        # positional: each keyword costs the binding about 0.1 µs to match
        gx, gw, gb = _linear_backward(gy, x.data, w.data, y if relu else None, relu,  # y, relu
                                      rx, rw, rb, dx, dw, db, (acc_x, acc_w, acc_b))  # need_*, outs, accumulate
        if rx:
            x.grad = x._gown = gx
        if rw:
            if same:
                _accumulate(w, gw, True)
            else:
                w.grad = w._gown = gw
        if rb:
            b.grad = b._gown = gb  # type: ignore[union-attr]

    return _node(y, (x, w) if b is None else (x, w, b), backward, "linear_relu" if relu else "linear")
