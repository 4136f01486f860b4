"""The ops that record the graph, each forward with its backward right below it.

Every op computes its output with one kernel call or one vectorised numpy expression, and, when
grad mode is on and an input requires grad, returns a node holding a closure
``backward(gy, own)``. ``gy`` is dL/dy (y's shape and dtype); ``own`` says that the op may reuse
gy's buffer, because nothing else holds it. The closure sends dL/d(input) to each input that
requires grad (and only to those) with ``_accumulate``, which adds into an existing gradient.

Shapes follow the lecture: x is (N, D), w is (D, M), y = x·w is (N, M). The operators on Tensor
(``@ + - * / -x .T``) and its methods (``relu``, ``sum``, ``mean``, ``reshape``) are bound at the
bottom of this file, the one place where Tensor learns about its ops.
"""

import operator

import numpy as np

from . import kernels
from .tensor import Tensor, _accumulate, _const, _grad_mode, _node

# ``sum`` below shadows the builtin inside this module, on purpose (mg.sum mirrors np.sum).
__all__ = ["matmul", "add", "sub", "mul", "neg", "div", "relu", "sum", "mean", "transpose", "reshape",
           "linear"]

_matmul = kernels.matmul
_relu_forward = kernels.relu_forward
_relu_backward = kernels.relu_backward
_linear_forward = kernels.linear_forward
_linear_backward = kernels.linear_backward


# --------------------------------------------------------------------------------------------
# operands and gradient plumbing
# --------------------------------------------------------------------------------------------


def _wrap(v, dtype, op):
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


def _pair(a, b, op):
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


def _tensor_arg(x):
    """Unary ops take a Tensor; anything else becomes a constant one (with mg.tensor's rules)."""
    return x if isinstance(x, Tensor) else Tensor(x)


def _broadcast_error(op, a, b):
    return ValueError(f"{op}: shapes {a.data.shape} and {b.data.shape} cannot be broadcast together")


def _reduce_to(g, shape, own):
    """dL/dy summed over the axes along which an operand of ``shape`` was broadcast to y's shape.

    Returns (gradient, own): a reduction is a fresh buffer, so it is owned.
    """
    if g.shape == shape:
        return g, own
    lead = g.ndim - len(shape)  # axes numpy prepended
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1)
    return np.add.reduce(g, axis=axes, keepdims=True).reshape(shape), True


def _grad_target(t):
    """Where an op's kernel should put t's gradient, as (array or None, accumulate?).

    An owned gradient is added into; the buffer zero_grad() left behind is overwritten (never
    read); otherwise the kernel allocates. A borrowed gradient is copied first: never written.
    """
    cur = t.grad
    if cur is None:
        spare = t._spare
        if spare is not None:
            t._spare = None
            if spare.shape == t.data.shape and spare.dtype == t.data.dtype:
                return spare, False
        return None, False
    if t._gown is cur and cur.flags.c_contiguous:  # owned (tensor.py's docstring): written in place
        return cur, True
    return np.array(cur, order="C"), True


_NO_TARGET = (None, False)


def _accumulate_matmul(t, a, b, trans_a, trans_b):
    """t.grad += op(a)·op(b) through the kernel: into t's own buffer when it has one."""
    out, accumulate = _grad_target(t)
    try:
        g = _matmul(a, b, trans_a, trans_b, out, accumulate)
    except ValueError:  # out overlaps an operand (a gradient assigned by hand): no in-place write
        g = _matmul(a, b, trans_a, trans_b)
        if accumulate:
            g += out
    t.grad = t._gown = g


# --------------------------------------------------------------------------------------------
# matrix multiply and linear
# --------------------------------------------------------------------------------------------


def matmul(x, w):
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


def linear(x, w, b=None, relu=False):
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
        db, acc_b = _grad_target(b) if rb else _NO_TARGET
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
            b.grad = b._gown = gb

    return _node(y, (x, w) if b is None else (x, w, b), backward, "linear_relu" if relu else "linear")


# --------------------------------------------------------------------------------------------
# elementwise arithmetic, with numpy broadcasting
# --------------------------------------------------------------------------------------------


def add(a, b):
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


def sub(a, b):
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


def mul(a, b):
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


def neg(a):
    """y = -a."""
    a = _tensor_arg(a)
    y = np.negative(a.data)
    if not (_grad_mode.enabled and a.requires_grad):
        return _const(y)

    def backward(gy, own):
        # y = -a  ->  dL/da = -dL/dy
        _accumulate(a, np.negative(gy, out=gy) if own else np.negative(gy), True)

    return _node(y, (a,), backward, "neg")


def div(a, s):
    """y = a / s for a number s (recorded as a * (1/s))."""
    if isinstance(s, Tensor) or not isinstance(s, (int, float, np.integer, np.floating)):
        raise TypeError(f"div: only division by a number is supported, got {type(s).__name__}")
    if s == 0:
        raise ZeroDivisionError("div: division of a tensor by zero")
    return mul(a, 1.0 / float(s))


# --------------------------------------------------------------------------------------------
# ReLU
# --------------------------------------------------------------------------------------------


def relu(x):
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


_relu_op = relu  # for linear(), whose ``relu`` argument shadows the op


# --------------------------------------------------------------------------------------------
# reductions
# --------------------------------------------------------------------------------------------


_ALL_AXES = tuple(tuple(range(ndim)) for ndim in range(8))  # axis=None, precomputed for sum()


def _axes(axis, ndim, op, shape):
    """Normalise ``axis`` (None, int or sequence) to a tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    try:
        axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
        axes = [operator.index(a) for a in axes]
    except TypeError:
        raise TypeError(f"{op}: axis must be None, an int or a sequence of ints, got {axis!r}") from None
    out = tuple(a + ndim if a < 0 else a for a in axes)
    if any(not 0 <= a < ndim for a in out) or len(set(out)) != len(out):
        raise ValueError(f"{op}: axis {axis!r} is invalid for a tensor of shape {shape}")
    return out


def _spread(g, shape, axes, keepdims):
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


def sum(x, axis=None, keepdims=False):
    """Sum over ``axis`` (None: all elements)."""
    x = _tensor_arg(x)
    xd = x.data
    axes = _ALL_AXES[xd.ndim] if axis is None and xd.ndim < 8 else _axes(axis, xd.ndim, "sum", xd.shape)
    y = np.add.reduce(xd, axis=axes, keepdims=keepdims)
    if type(y) is not np.ndarray:  # a numpy scalar when every axis is summed
        y = np.asarray(y)
    if not (_grad_mode.enabled and x.requires_grad):
        return _const(y)

    def backward(gy, own):
        # y = Σ_axes x  ->  dL/dx = dL/dy copied along the summed axes
        _accumulate(x, *_spread(gy, xd.shape, axes, keepdims))

    return _node(y, (x,), backward, "sum")


def mean(x, axis=None, keepdims=False):
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


# --------------------------------------------------------------------------------------------
# views: transpose and reshape
# --------------------------------------------------------------------------------------------


def transpose(x):
    """y = xᵀ (axes reversed, as numpy's .T): a view, no copy."""
    x = _tensor_arg(x)
    y = x.data.T
    if not (_grad_mode.enabled and x.requires_grad):
        return _const(y)

    def backward(gy, own):
        # y = xᵀ  ->  dL/dx = (dL/dy)ᵀ
        _accumulate(x, gy.T, own)

    return _node(y, (x,), backward, "transpose")


def reshape(x, *shape):
    """y = x with a new shape (``reshape(2, 3)`` or ``reshape((2, 3))``; one -1 allowed)."""
    if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
        shape = tuple(shape[0])
    x = _tensor_arg(x)
    xd = x.data
    try:
        y = xd.reshape(shape)
    except (ValueError, TypeError):
        raise ValueError(f"reshape: cannot reshape a tensor of shape {xd.shape} ({xd.size} elements) "
                         f"into shape {shape}") from None
    if not (_grad_mode.enabled and x.requires_grad):
        return _const(y)

    def backward(gy, own):
        # y = x.reshape(shape)  ->  dL/dx = dL/dy.reshape(x.shape)
        _accumulate(x, gy.reshape(xd.shape), own)

    return _node(y, (x,), backward, "reshape")


# --------------------------------------------------------------------------------------------
# the operators and methods of Tensor: bound here, once
# --------------------------------------------------------------------------------------------


def _rmatmul(self, other):
    return matmul(other, self)


def _rsub(self, other):
    return sub(other, self)


def _method_sum(self, axis=None, keepdims=False):
    return sum(self, axis, keepdims)


def _method_mean(self, axis=None, keepdims=False):
    return mean(self, axis, keepdims)


Tensor.__matmul__ = matmul
Tensor.__rmatmul__ = _rmatmul
Tensor.__add__ = add
Tensor.__radd__ = add
Tensor.__sub__ = sub
Tensor.__rsub__ = _rsub
Tensor.__mul__ = mul
Tensor.__rmul__ = mul
Tensor.__truediv__ = div
Tensor.__neg__ = neg
Tensor.T = property(transpose, doc="The transpose (axes reversed): a view, recorded in the graph.")
Tensor.relu = relu
Tensor.sum = _method_sum
Tensor.mean = _method_mean
Tensor.reshape = reshape
