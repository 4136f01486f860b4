"""Tensor, grad mode and the reverse-mode driver.

A Tensor wraps one float32 or float64 ndarray (``.data``). An op's output remembers its inputs
(``_prev``) and a closure ``_backward(gy, own)`` that sends dL/dy to those inputs; leaves have
``_backward is None``. The ops themselves, and the operators (``@ + - * / ** -x .T x[...]``) bound
onto Tensor, live in the ``ops`` package: this module imports nothing from there, so the imports
run one way.

Gradient buffers. During a backward pass every tensor's ``.grad`` slot is its accumulator. A
buffer is either *owned* (``t._gown is t.grad``: matgrad made it for this tensor, so later passes
accumulate into it in place, as PyTorch does; a reference the caller keeps to it sees that) or
*borrowed* (shared with another tensor's gradient or with an upstream gradient, or assigned by the
caller, so it is replaced, never written). Ownership goes by identity: assigning ``t.grad = arr``
by hand makes the gradient borrowed, whatever happened before.
An op's backward receives ``own=True`` when it may reuse dL/dy's buffer (for instance ReLU masks it
in place). Leaves end every pass with an owned, C-contiguous ``.grad``; intermediates' gradients
are dropped as soon as their op's backward has run.
"""

import functools
import itertools
import operator
import sys
import threading

import numpy as np

__all__ = ["Tensor", "tensor", "no_grad", "enable_grad", "is_grad_enabled"]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


# --------------------------------------------------------------------------------------------
# grad mode: thread-local, so one thread's no_grad() never affects another's
# --------------------------------------------------------------------------------------------


class _GradMode(threading.local):
    def __init__(self):
        self.enabled = True
        self.saved = []  # the states to restore, innermost last


_grad_mode = _GradMode()


def is_grad_enabled():
    """True when ops record the graph in this thread (the default)."""
    return _grad_mode.enabled


class _SetGradMode:
    """Context manager and decorator that sets grad mode in the current thread."""

    _enabled = True

    def __enter__(self):
        mode = _grad_mode
        mode.saved.append(mode.enabled)
        mode.enabled = self._enabled
        return self

    def __exit__(self, *exc):
        mode = _grad_mode
        mode.enabled = mode.saved.pop()
        return False

    def __call__(self, func):
        cls = type(self)

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with cls():
                return func(*args, **kwargs)

        return wrapper


class no_grad(_SetGradMode):
    """Record nothing: ops return constant tensors. ``with mg.no_grad(): ...`` or ``@mg.no_grad()``.

    Thread-local: other threads keep recording.
    """

    _enabled = False


class enable_grad(_SetGradMode):
    """Record the graph again inside a ``no_grad`` block (context manager and decorator)."""

    _enabled = True


# --------------------------------------------------------------------------------------------
# Tensor
# --------------------------------------------------------------------------------------------


def _as_array(data, dtype=None):
    """Return ``data`` as a C-contiguous, aligned float32/float64 ndarray (no copy when already one)."""
    if dtype is not None:
        dtype = np.dtype(dtype)
        if dtype not in _FLOATS:
            raise TypeError(f"tensor: dtype must be float32 or float64, got {dtype}")
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, np.ndarray):
        arr = data if type(data) is np.ndarray else np.asarray(data)  # np.matrix & co: plain arrays
        if arr.dtype in _FLOATS:
            if dtype is None or arr.dtype == dtype:
                if arr.flags.c_contiguous and arr.flags.aligned:
                    return arr
                return np.array(arr, order="C")  # a fresh buffer is aligned, as the kernels need
            return arr.astype(dtype)
        kind = arr.dtype.kind
        if dtype is None and kind == "f" and arr.dtype.itemsize in (4, 8):
            dtype = arr.dtype.newbyteorder("=")  # float32/float64 in foreign byte order
        if kind not in "biuf":
            raise TypeError(f"tensor: expected an array of numbers, got dtype {arr.dtype}")
        if kind == "f" and dtype is None:
            raise TypeError(f"tensor: {arr.dtype} arrays are not supported; pass dtype=np.float32 or np.float64")
    else:
        try:
            arr = np.asarray(data)
        except (ValueError, TypeError) as e:
            raise TypeError(f"tensor: cannot make an array of numbers from this {type(data).__name__}: {e}") from None
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"tensor: expected numbers, got {type(data).__name__} "
                            f"(as an array: dtype {arr.dtype})")
    # Python numbers, lists and integer arrays become float32 unless dtype says otherwise
    return np.asarray(arr, dtype=np.float32 if dtype is None else dtype, order="C")


class Tensor:
    """An ndarray plus what reverse mode needs: ``.grad``, ``.requires_grad`` and the op that made it.

    Build one with ``mg.tensor(...)``. The operators and methods that record the graph
    (``@``, ``+``, ``-``, ``*``, ``/``, ``**``, unary ``-``, indexing, ``.T``, ``.reshape``,
    ``.flatten``, ``.relu``, ``.tanh``, ``.sigmoid``, ``.exp``, ``.log``, ``.sum``, ``.mean``) are
    bound onto this class by ``matgrad.ops``.
    """

    __slots__ = ("data", "grad", "requires_grad", "_prev", "_backward", "_op", "_gown", "_spare", "_seq",
                 "__weakref__")  # weakref.ref(tensor) works (e.g. to check that a graph was freed)
    __array_ufunc__ = None  # ndarray (op) Tensor defers to Tensor's reflected operator

    def __init__(self, data, dtype=None, requires_grad=False):
        self.data = _as_array(data, dtype)
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self._prev = ()
        self._backward = None
        self._op = None
        self._gown = None
        self._spare = None
        self._seq = -1  # leaves are never ordered; see _graph

    # ---- ndarray-like read-only views --------------------------------------------------------
    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def size(self):
        return self.data.size

    @property
    def is_leaf(self):
        """True for tensors made by the user (not by a recorded op)."""
        return self._backward is None

    def numpy(self):
        """The underlying ndarray (shared, not copied)."""
        return self.data

    def item(self):
        """The single element as a Python float."""
        if self.data.size != 1:
            raise ValueError(f"item: the tensor has shape {self.data.shape} ({self.data.size} elements); "
                             "item() needs exactly one element")
        return self.data.item()

    def detach(self):
        """A constant tensor sharing this one's data, outside any graph."""
        return _const(self.data)

    def zero_grad(self):
        """Drop the accumulated gradient (``.grad = None``); see ``_drop_grad``."""
        _drop_grad(self)

    def __repr__(self):
        body = np.array2string(self.data, prefix="tensor(", separator=", ")
        extra = ", requires_grad=True" if self.requires_grad else ""
        if self._op is not None:
            extra += f", op={self._op}"
        return f"tensor({body}, dtype={self.data.dtype}{extra})"

    # ---- reverse mode ------------------------------------------------------------------------
    def backward(self, grad=None, retain_graph=False):
        """Backpropagate from this tensor: accumulate dL/d(leaf) into every leaf's ``.grad``.

        ``grad`` is dL/d(self), of self's shape and dtype; it may be omitted only when self has
        exactly one element (then it is 1). Unless ``retain_graph``, the buffers the ops saved
        are released as they are used, and a second backward through them raises RuntimeError.
        """
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad (it was made from inputs "
                               "that do not require grad, or inside no_grad())")
        shape, dtype = self.data.shape, self.data.dtype
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward: the tensor has shape {shape}; pass grad=dL/dy of that shape "
                                   "(it can be left out only for a tensor with one element)")
            g, own = (np.array(1, dtype) if not shape else np.ones(shape, dtype)), True  # dL/dL = 1
        else:
            g = grad.data if isinstance(grad, Tensor) else np.asarray(grad)
            if g.shape != shape:
                raise ValueError(f"backward: grad has shape {g.shape} but the tensor has shape {shape}")
            if g.dtype != dtype:
                if g.dtype.kind == "f":
                    raise TypeError(f"backward: grad is {g.dtype} but the tensor is {dtype}")
                if g.dtype.kind not in "biu":
                    raise TypeError(f"backward: grad must hold numbers, got dtype {g.dtype}")
                g = g.astype(dtype)
            own = False
        ops, leaves = _graph(self)  # raises before anything changes if the graph was released
        if self.grad is None and own:
            self.grad = self._gown = g
        else:
            _accumulate(self, g, own)
        try:
            for node in ops:
                gy = node.grad
                own = gy is not None and node._gown is gy
                node.grad = node._gown = None  # intermediates keep no gradient
                if gy is not None:
                    node._backward(gy, own)
                if not retain_graph:
                    node._backward = _released
                    node._prev = ()
        except BaseException:
            for node in ops:
                node.grad = node._gown = None
            raise
        for leaf in leaves:
            g = leaf.grad
            if g is not None and not (leaf._gown is g and g.flags.c_contiguous):  # owned: see the module docstring
                leaf.grad = leaf._gown = np.array(g, order="C")  # never hand the caller a shared buffer


def tensor(data, dtype=None, requires_grad=False):
    """Make a leaf Tensor.

    float32/float64 ndarrays are kept as they are (no copy when C-contiguous); Python numbers,
    lists and integer arrays become float32 unless ``dtype`` (float32 or float64) says otherwise.
    """
    return Tensor(data, dtype=dtype, requires_grad=requires_grad)


# --------------------------------------------------------------------------------------------
# helpers for the ops: building nodes and accumulating gradients
# --------------------------------------------------------------------------------------------

_new = object.__new__


def _node(data, prev, backward, op):
    """An op's output: remembers its inputs and the closure that backpropagates to them."""
    t = _new(Tensor)
    t.data = data if type(data) is np.ndarray else np.asarray(data)
    t.grad = None
    t.requires_grad = True
    t._prev = prev
    t._backward = backward
    t._op = op
    t._gown = None
    t._spare = None
    t._seq = _next_seq()
    return t


_next_seq = itertools.count().__next__  # creation order of op outputs: see _graph


def _const(data):
    """A tensor outside any graph around an ndarray that is already valid (no checks)."""
    t = _node(data, (), None, None)
    t.requires_grad = False
    return t


def _drop_grad(t):
    """``t.grad = None``, keeping the buffer as ``t._spare`` for the next backward to write into
    when nothing else references it: big gradients are then not reallocated (and page-faulted)
    at every training step. A buffer the caller still holds is never reused."""
    g = t.grad
    owned = g is not None and t._gown is g and g.flags.owndata  # a view's base may be held elsewhere
    t.grad = t._gown = None
    if owned and _getrefcount is not None and _getrefcount(g) == _UNIQUE_REFS:
        t._spare = g


def _unique_refs():
    """What getrefcount reports for an array held by one local name only (2 up to Python 3.13;
    measured, not assumed, since interpreters count stack references differently)."""
    g = np.empty(1)
    return _getrefcount(g)


_getrefcount = getattr(sys, "getrefcount", None)  # absent on PyPy: no reuse there
_UNIQUE_REFS = _unique_refs() if _getrefcount is not None else None


def _accumulate(t, g, own):
    """t.grad += g. ``own``: g is a fresh buffer nobody else holds, so t may keep and write it."""
    if type(g) is not np.ndarray:  # a numpy scalar from a ufunc on 0-d arrays cannot be added into
        g = np.asarray(g)
    cur = t.grad
    if cur is None:
        t.grad = g
        t._gown = g if own else None
    elif t._gown is cur:  # owned (module docstring): written in place
        cur += g
    else:  # a borrowed buffer is never written: replace it
        t.grad = t._gown = np.add(cur, g, order="C")


def _released(gy, own):
    raise RuntimeError(_RELEASED_MSG)


_RELEASED_MSG = ("backward: the graph behind this tensor was already released by an earlier backward() "
                 "(its saved buffers are freed); pass retain_graph=True to the first backward() to "
                 "backpropagate through the same graph twice")


def _graph(root):
    """The recorded ops that lead to ``root`` (root first, each before all of its inputs) and the
    leaves that require grad behind it.

    Nodes are found breadth-first from root. When no op is reached twice (the graph of ops is a
    tree, as in a chain of layers) each op is found from its only consumer, after it, so that
    order is already a valid one. Otherwise the ops are sorted by creation (``_seq``): an op's
    output is always made after its inputs, so creation order is a topological order.
    """
    backward = root._backward
    if backward is None:
        return [], [root] if root.requires_grad else []
    if backward is _released:
        raise RuntimeError(_RELEASED_MSG)
    ops, leaves = [root], []
    seen = {root}  # Tensor hashes by identity
    shared = False
    for node in ops:  # ops grows while it is walked: a breadth-first queue
        for p in node._prev:
            if p.requires_grad:
                if p in seen:
                    shared = shared or p._backward is not None
                    continue
                seen.add(p)
                backward = p._backward
                if backward is None:
                    leaves.append(p)
                elif backward is _released:
                    raise RuntimeError(_RELEASED_MSG)
                else:
                    ops.append(p)
    if shared:
        ops.sort(key=_seq_of, reverse=True)
    return ops, leaves


_seq_of = operator.attrgetter("_seq")
