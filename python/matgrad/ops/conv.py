"""2-D convolution and pooling (NCHW), each forward with its backward below it.

conv2d is im2col and one GEMM per image in C++ (``kernels.conv2d_forward``); its backward is one
GEMM for dL/dw over the same columns, one GEMM and a col2im for dL/dx, and a sum for dL/db
(``kernels.conv2d_backward``). No Jacobian is formed: dL/dx comes back with x's shape.
Stride-1 convolutions with 8 to 64 input channels, a kernel larger than 1×1, padding below the kernel
size and rows at most 5/4 wider once padded (``kernels.conv_uses_columns``) keep no columns:
their products read the zero-padded image at each kernel offset, and the backward reads x again.

The columns (N, C·KH·KW, OH·OW) are the one large buffer a convolution needs. They live from the
forward to its backward, then the buffer is reused by the next forward of the same size and dtype
(see ``_Workspaces``), so a training loop does not allocate (and page-fault) them at every step.
The backward closure holds a ``_Lease``: while it lives, no other forward is given the buffer.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

from .. import _core, kernels
from ..tensor import Operand, Tensor, _accumulate, _const, _grad_mode, _node
from ._common import _NO_TARGET, _grad_target, _tensor_arg, output_buffers

__all__ = ["conv2d", "max_pool2d", "avg_pool2d"]

Size2 = Union[int, Tuple[int, int], Sequence[int]]
"""A window size or a stride: an int (both axes) or a pair (height, width)."""

_conv_forward = kernels.conv2d_forward
_conv_backward = kernels.conv2d_backward
_conv_uses_columns = kernels.conv_uses_columns
_max_pool_forward = kernels.max_pool2d_forward
_max_pool_backward = kernels.max_pool2d_backward
_avg_pool_forward = kernels.avg_pool2d_forward
_avg_pool_backward = kernels.avg_pool2d_backward


# --------------------------------------------------------------------------------------------
# the im2col buffers
# --------------------------------------------------------------------------------------------


class _Lease:
    """What a convolution's backward closure holds while it may still read its columns: the slot
    is busy exactly as long as this object lives (the closure, or a copy of the node sharing it)."""

    __slots__ = ("__weakref__",)


class _Slot:
    __slots__ = ("array", "lease")

    def __init__(self, array: np.ndarray) -> None:
        self.array = array  # flat
        self.lease: Any = None  # None (free), _CLAIMED (a forward is filling it) or a weakref to a _Lease

    def is_free(self) -> bool:
        lease = self.lease
        if lease is None:
            return True
        return lease is not _CLAIMED and lease() is None


_CLAIMED = object()


class _Workspaces:
    """A few flat buffers, each lent to one convolution from its forward until the backward
    closure that reads it is gone (backpropagated without retain_graph, or freed). A forward takes
    a free buffer of its dtype that is large enough, or grows one, or makes a new one; at most
    ``limit`` buffers are kept. A forward whose columns no backward will read (no_grad) uses a free
    buffer that fits, or a temporary one: it never grows the pool."""

    def __init__(self, limit: int = 4) -> None:
        self._slots: List[_Slot] = []
        self._limit = limit
        self._lock = threading.Lock()

    def take(self, shape: Tuple[int, ...], dtype: npt.DTypeLike, keep: bool) -> Tuple[Optional[_Slot], np.ndarray]:
        """(slot or None, a C-contiguous array of ``shape``). ``keep``: a backward will read it."""
        count = int(np.prod(shape))
        with self._lock:
            free = [s for s in self._slots if s.array.dtype == dtype and s.is_free()]
            fits = [s for s in free if s.array.size >= count]
            if fits:
                slot = min(fits, key=lambda s: s.array.size)
            elif not keep:
                return None, _core.empty_aligned(shape, dtype)
            elif free:
                slot = max(free, key=lambda s: s.array.size)
                slot.array = _core.empty_aligned((count,), dtype)  # grown: the old buffer goes
            else:
                slot = _Slot(_core.empty_aligned((count,), dtype))
                self._slots.append(slot)
            slot.lease = _CLAIMED
            idle = [s for s in self._slots if s.is_free()]
            while len(self._slots) > self._limit and idle:
                self._slots.remove(idle.pop(0))
        return slot, slot.array[:count].reshape(shape)

    def clear(self) -> None:
        """Drop every buffer not in use (their memory is returned as their last view goes)."""
        with self._lock:
            self._slots = [s for s in self._slots if not s.is_free()]

    def nbytes(self) -> int:
        """Bytes held in buffers now."""
        return sum(s.array.nbytes for s in self._slots)


workspaces = _Workspaces()


# --------------------------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------------------------


_MAX_SIZE = 1 << 31  # strides, paddings and windows: the kernels' limit (ConvShape::valid)


def _int_arg(op: str, name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{op}: {name} must be an integer, got {value!r}")
    if value < low:
        raise ValueError(f"{op}: {name} must be >= {low}, got {value}")
    if value >= _MAX_SIZE:
        raise ValueError(f"{op}: {name} must be < 2**31, got {value}")
    return int(value)


def _pair_arg(op: str, name: str, value: Any, low: int) -> Tuple[int, int]:
    """An int or a pair of ints (height, width)."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{op}: {name} must be an integer or a pair of integers, got {value!r}")
        return _int_arg(op, name, value[0], low), _int_arg(op, name, value[1], low)
    v = _int_arg(op, name, value, low)
    return v, v


def _image_arg(op: str, x: Operand) -> Tensor:
    x = _tensor_arg(x)
    if x.data.ndim != 4:
        raise ValueError(f"{op}: x must be 4-D (N, C, H, W), got shape {x.data.shape}")
    return x


# --------------------------------------------------------------------------------------------
# convolution
# --------------------------------------------------------------------------------------------


def conv2d(x: Operand, w: Tensor, b: Optional[Tensor] = None, stride: int = 1, padding: int = 0,
           relu: bool = False) -> Tensor:
    """y = conv(x, w) + b (cross-correlation, as PyTorch and cs231n), then max(0, y) when ``relu``.

    x is (N, C, H, W), w is (F, C, KH, KW), b is (F,) or None; y is (N, F, OH, OW) with
    OH = 1 + (H + 2·padding − KH) // stride (floored when the stride does not tile the input,
    as PyTorch), OW likewise. ``stride`` and ``padding`` are non-negative integers (stride ≥ 1).
    """
    stride = _int_arg("conv2d", "stride", stride, 1)
    padding = _int_arg("conv2d", "padding", padding, 0)
    x = _image_arg("conv2d", x)
    if not isinstance(w, Tensor):
        raise TypeError(f"conv2d: w must be a Tensor, got {type(w).__name__}")
    if b is not None and not isinstance(b, Tensor):
        raise TypeError(f"conv2d: b must be a Tensor or None, got {type(b).__name__}")
    xd, wd = x.data, w.data
    if wd.ndim != 4:
        raise ValueError(f"conv2d: w must be 4-D (F, C, KH, KW), got shape {wd.shape}")
    if xd.dtype != wd.dtype or (b is not None and b.data.dtype != wd.dtype):
        kinds = f"x is {xd.dtype}, w is {wd.dtype}" + ("" if b is None else f", b is {b.data.dtype}")
        raise TypeError(f"conv2d: dtypes differ: {kinds}")
    n, c, h, width = xd.shape
    f, wc, kh, kw = wd.shape
    if wc != c:
        raise ValueError(f"conv2d: x has {c} channels (shape {xd.shape}) but w expects {wc} "
                         f"(shape {wd.shape})")
    if kh > h + 2 * padding or kw > width + 2 * padding:
        raise ValueError(f"conv2d: the {kh}x{kw} kernel (w of shape {wd.shape}) is larger than the padded "
                         f"input {h + 2 * padding}x{width + 2 * padding} (x of shape {xd.shape}, "
                         f"padding {padding})")
    if b is not None and b.data.shape != (f,):
        raise ValueError(f"conv2d: b has shape {b.data.shape}, expected ({f},) (one bias per filter)")
    oh, ow = (h + 2 * padding - kh) // stride + 1, (width + 2 * padding - kw) // stride + 1
    rb = b is not None and b.requires_grad
    record = _grad_mode.enabled and (x.requires_grad or w.requires_grad or rb)
    # Stride-1 shapes run as implicit GEMMs over the padded input: no columns to keep
    if _conv_uses_columns(xd.shape, wd.shape, stride, padding):
        slot, cols = workspaces.take((n, c * kh * kw, oh * ow), wd.dtype, keep=record)
    else:
        slot, cols = None, None
    try:
        # (N,C,H,W) * (F,C,KH,KW) -> (N,F,OH,OW), columns (N, C·KH·KW, OH·OW) kept for the backward
        y_out = output_buffers.take((n, f, oh, ow), wd.dtype)
        y, cols = _conv_forward(xd, wd, None if b is None else b.data, stride, padding, relu, cols, y_out)
    except BaseException:
        if slot is not None:
            slot.lease = None
        raise
    if not record:
        if slot is not None:
            slot.lease = None  # no backward will read the columns
        return _const(y)
    lease = _Lease()  # the slot stays claimed until the lease is in place (no other thread takes it)

    def backward(gy, own, lease=lease):  # gy = dL/dy: (N,F,OH,OW); the lease keeps cols ours
        # y_i = relu?(W·cols_i + b)  ->  g = dL/dy ⊙ [y > 0];  dW = Σ_i g_i·cols_iᵀ;
        # dx_i = col2im(Wᵀ·g_i);  db = Σ_{i,pixels} g
        rx, rw, rb = x.requires_grad, w.requires_grad, b is not None and b.requires_grad
        same = w is x  # conv2d(a, a): one buffer for a; its second share is added after
        dx, acc_x = _grad_target(x) if rx else _NO_TARGET
        dw, acc_w = _grad_target(w) if rw and not same else _NO_TARGET
        db, acc_b = _grad_target(b) if rb else _NO_TARGET  # type: ignore[arg-type]  # rb: b is a Tensor
        gx, gw, gb = _conv_backward(gy, cols, wd, xd.shape, stride, padding, y if relu else None, relu,
                                    rx, rw, rb, dx, dw, db, acc_x, acc_w, acc_b, None if cols is not None else xd)
        if rx:
            x.grad = x._gown = gx
        if rw:
            if same:
                _accumulate(w, gw, True)
            else:
                w.grad = w._gown = gw
        if rb:
            b.grad = b._gown = gb  # type: ignore[union-attr]

    if slot is not None:
        slot.lease = weakref.ref(lease)
    return _node(y, (x, w) if b is None else (x, w, b), backward, "conv2d_relu" if relu else "conv2d")


# --------------------------------------------------------------------------------------------
# pooling
# --------------------------------------------------------------------------------------------


def _pool_args(op: str, x: Operand, kernel_size: Size2, stride: Optional[Size2]) -> Tuple[Tensor, int, int, Tuple[int, int]]:
    x = _image_arg(op, x)
    kh, kw = _pair_arg(op, "kernel_size", kernel_size, 1)
    stride = (kh, kw) if stride is None else _pair_arg(op, "stride", stride, 1)
    h, w = x.data.shape[2:]
    if kh > h or kw > w:
        raise ValueError(f"{op}: the {kh}x{kw} window is larger than the input {h}x{w} "
                         f"(x of shape {x.data.shape})")
    return x, kh, kw, stride


def max_pool2d(x: Operand, kernel_size: Size2, stride: Optional[Size2] = None) -> Tensor:
    """The maximum of each kernel_size window of x (N, C, H, W), moved by ``stride`` (default:
    kernel_size); output (N, C, OH, OW) with OH = 1 + (H − KH) // stride. ``kernel_size`` and
    ``stride`` are each an int or a pair (height, width). The forward keeps the
    argmax, so the backward routes each gradient to its one input (ties: the first maximum in
    row-major order; a NaN in a window propagates)."""
    x, kh, kw, stride = _pool_args("max_pool2d", x, kernel_size, stride)
    xd = x.data
    n, c, h, w = xd.shape
    out_shape = (n, c, (h - kh) // stride[0] + 1, (w - kw) // stride[1] + 1)
    y_out = output_buffers.take(out_shape, xd.dtype)
    argmax_out = output_buffers.take(out_shape, np.dtype(np.int64)) if y_out is not None else None
    # (N,C,H,W) -> (N,C,OH,OW) and where each max is
    y, argmax = _max_pool_forward(xd, kh, kw, stride, y_out, argmax_out)
    if not (_grad_mode.enabled and x.requires_grad):
        return _const(y)

    def backward(gy, own):
        # y = x[argmax]  ->  dL/dx[argmax] += dL/dy (summed where windows overlap), 0 elsewhere
        out, acc = _grad_target(x)
        x.grad = x._gown = _max_pool_backward(gy, argmax, xd.shape, kh, kw, stride, out, acc)

    return _node(y, (x,), backward, "max_pool2d")


def avg_pool2d(x: Operand, kernel_size: Size2, stride: Optional[Size2] = None) -> Tensor:
    """The mean of each kernel_size window of x (N, C, H, W), moved by ``stride`` (default:
    kernel_size); output (N, C, OH, OW) with OH = 1 + (H − KH) // stride."""
    x, kh, kw, stride = _pool_args("avg_pool2d", x, kernel_size, stride)
    xd = x.data
    y = _avg_pool_forward(xd, kh, kw, stride)  # (N,C,H,W) -> (N,C,OH,OW)
    if not (_grad_mode.enabled and x.requires_grad):
        return _const(y)

    def backward(gy, own):
        # y = Σ_window x / (KH·KW)  ->  dL/dx = dL/dy / (KH·KW) spread over each window
        out, acc = _grad_target(x)
        x.grad = x._gown = _avg_pool_backward(gy, xd.shape, kh, kw, stride, out, acc)

    return _node(y, (x,), backward, "avg_pool2d")
