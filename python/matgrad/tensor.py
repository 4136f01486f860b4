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

from __future__ import annotations

import functools
import itertools
import operator
import sys
import threading
from typing import (TYPE_CHECKING, Any, Callable, FrozenSet, Iterator, List, Literal, Optional, Sequence, SupportsIndex,
                    Tuple, TypeVar, Union)

import numpy as np
import numpy.typing as npt

__all__ = ["Tensor", "tensor", "from_dlpack", "no_grad", "enable_grad", "is_grad_enabled"]

# Type aliases for annotations (see python/matgrad/py.typed): what the ops accept.
Number = Union[int, float, np.integer, np.floating]
"""A Python or numpy real number."""
Operand = Union["Tensor", npt.ArrayLike]
"""An op's operand: a Tensor, or an ndarray, a number or a nested list (a constant)."""
Axis = Union[None, int, np.integer, Sequence[SupportsIndex]]
"""Reduction axes: None (all of them), one axis or several."""
Backward = Callable[[np.ndarray, bool], None]
"""An op's closure ``backward(gy, own)``: sends dL/dy to the op's inputs."""

_F = TypeVar("_F", bound=Callable[..., Any])

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


# --------------------------------------------------------------------------------------------
# grad mode: thread-local, so one thread's no_grad() never affects another's
# --------------------------------------------------------------------------------------------


class _GradMode(threading.local):
    def __init__(self) -> None:
        self.enabled = True
        self.saved: List[bool] = []  # the states to restore, innermost last


_grad_mode = _GradMode()


def is_grad_enabled() -> bool:
    """True when ops record the graph in this thread (the default)."""
    return _grad_mode.enabled


class _SetGradMode:
    """Context manager and decorator that sets grad mode in the current thread."""

    _enabled = True

    def __enter__(self) -> _SetGradMode:
        mode = _grad_mode
        mode.saved.append(mode.enabled)
        mode.enabled = self._enabled
        return self

    def __exit__(self, *exc: object) -> Literal[False]:
        mode = _grad_mode
        mode.enabled = mode.saved.pop()
        return False

    def __call__(self, func: _F) -> _F:
        cls = type(self)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with cls():
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]  # functools.wraps keeps func's signature


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


def _as_array(data: Any, dtype: Optional[npt.DTypeLike] = None) -> np.ndarray:
    """Return ``data`` as a C-contiguous, aligned float32/float64 ndarray (no copy when already one)."""
    if dtype is not None:
        dtype = np.dtype(dtype)
        if dtype not in _FLOATS:
            raise TypeError(f"tensor: dtype must be float32 or float64, got {dtype}")
    if isinstance(data, Tensor):
        data = data.data
    elif not isinstance(data, (np.ndarray, np.generic)) and hasattr(type(data), "__dlpack__"):
        data = _import_dlpack(data, "tensor")  # a torch tensor & co: shared, then the ndarray rules
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


_DLPACK_CPU = (1, 0)  # (kDLCPU, device 0): where every matgrad tensor lives


def _numpy_dlpack_keywords() -> FrozenSet[str]:
    """The keywords this numpy's ``ndarray.__dlpack__`` accepts besides ``stream``: numpy >= 2.1
    takes ``max_version``, ``dl_device`` and ``copy``; 1.22 to 2.0 take ``stream`` only."""
    probe = np.empty(0)
    accepted: set[str] = set()
    value: Any  # each keyword's own type
    for name, value in (("max_version", (1, 0)), ("dl_device", _DLPACK_CPU), ("copy", None)):
        try:
            probe.__dlpack__(**{name: value})  # the capsule, never consumed, frees itself
        except TypeError:
            continue
        accepted.add(name)
    return frozenset(accepted)


_NP_DLPACK_KW = _numpy_dlpack_keywords()


def _import_dlpack(obj: Any, who: str) -> np.ndarray:
    """``np.from_dlpack(obj)``: an ndarray sharing obj's memory (read-only when obj exports it so),
    with the exporter's refusals turned into TypeErrors that say what to do."""
    try:
        return np.from_dlpack(obj)
    except (BufferError, RuntimeError, TypeError, ValueError) as e:
        name = type(obj).__name__
        if getattr(obj, "requires_grad", False) is True:  # torch will not export what autograd tracks
            raise TypeError(f"{who}: this {name} requires grad, and its library refuses to export it through "
                            f"DLPack ({e}); pass obj.detach() (matgrad does not see the other library's "
                            "graph: the result is a new leaf either way)") from e
        raise TypeError(f"{who}: cannot import this {name} through DLPack: {e}") from e


class Tensor:
    """An ndarray plus what reverse mode needs: ``.grad``, ``.requires_grad`` and the op that made it.

    Build one with ``mg.tensor(...)``. The operators and methods that record the graph
    (``@``, ``+``, ``-``, ``*``, ``/``, ``**``, unary ``-``, indexing, ``.T``, ``.reshape``,
    ``.flatten``, ``.relu``, ``.tanh``, ``.sigmoid``, ``.exp``, ``.log``, ``.sum``, ``.mean``) are
    bound onto this class by ``matgrad.ops``.

    Interop: ``np.asarray(t)`` (``__array__``) and DLPack consumers such as ``torch.from_dlpack(t)``
    (``__dlpack__``) see ``t.data`` itself, not a copy, whether or not t requires grad (as
    ``t.numpy()`` does): writes through them change t, outside the graph. ``float(t)``, ``int(t)``,
    ``len(t)`` and ``for row in t`` behave as they do on the ndarray, the rows being recorded ops.
    """

    __slots__ = ("data", "grad", "requires_grad", "_prev", "_backward", "_op", "_gown", "_spare", "_seq",
                 "__weakref__")  # weakref.ref(tensor) works (e.g. to check that a graph was freed)
    __array_ufunc__ = None  # ndarray (op) Tensor defers to Tensor's reflected operator

    data: np.ndarray
    grad: Optional[np.ndarray]
    requires_grad: bool
    _prev: Tuple[Tensor, ...]
    _backward: Optional[Backward]
    _op: Optional[str]
    _gown: Optional[np.ndarray]
    _spare: Optional[np.ndarray]
    _seq: int

    def __init__(self, data: Any, dtype: Optional[npt.DTypeLike] = None, requires_grad: bool = False) -> None:
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
    def shape(self) -> Tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def is_leaf(self) -> bool:
        """True for tensors made by the user (not by a recorded op)."""
        return self._backward is None

    def numpy(self) -> np.ndarray:
        """The underlying ndarray (shared, not copied)."""
        return self.data

    def item(self) -> Any:
        """The single element as a Python float."""
        if self.data.size != 1:
            raise ValueError(f"item: the tensor has shape {self.data.shape} ({self.data.size} elements); "
                             "item() needs exactly one element")
        return self.data.item()

    def detach(self) -> Tensor:
        """A constant tensor sharing this one's data, outside any graph."""
        return _const(self.data)

    def zero_grad(self) -> None:
        """Drop the accumulated gradient (``.grad = None``); see ``_drop_grad``."""
        _drop_grad(self)

    # ---- interop: numpy, DLPack, Python scalars and sequences --------------------------------
    def __array__(self, dtype: Any = None, copy: Optional[bool] = None) -> np.ndarray:
        """``np.asarray(t)`` / ``np.array(t)``, with NumPy 2's ``copy`` semantics.

        ``copy=None`` (``np.asarray``) returns ``t.data`` itself when no conversion is asked, else a
        converted copy; ``copy=True`` (``np.array``) always returns a fresh array; ``copy=False``
        never copies, and raises ValueError when ``dtype`` differs from t's (a conversion is a copy).
        """
        data = self.data
        if dtype is not None and np.dtype(dtype) != data.dtype:
            if copy is False:
                raise ValueError(f"Tensor.__array__: converting this {data.dtype} tensor to {np.dtype(dtype)} "
                                 "needs a copy, and copy=False forbids one; use np.asarray(t, dtype=...) "
                                 "to allow it, or ask for the tensor's own dtype")
            return data.astype(dtype)
        return data.copy() if copy else data

    def __dlpack__(self, *, stream: Any = None, max_version: Optional[Tuple[int, int]] = None,
                   dl_device: Optional[Tuple[int, int]] = None, copy: Optional[bool] = None) -> Any:
        """Export ``t.data`` as a DLPack capsule (the array API's protocol): ``torch.from_dlpack(t)``,
        ``np.from_dlpack(t)`` and the like then share t's memory, outside the graph.

        Delegates to ``ndarray.__dlpack__``, passing on the keywords this numpy accepts. ``stream``
        must be None (the CPU has no streams; anything else is a ValueError); ``dl_device``, when
        given, must be the CPU, ``(1, 0)`` (else BufferError). ``copy=True`` exports a fresh copy,
        ``copy=False`` and ``None`` export the data itself (never copied). A read-only array is
        exported read-only, which needs ``max_version >= (1, 0)``: numpy raises BufferError for a
        legacy (unversioned) export of one.
        """
        if stream is not None:
            raise ValueError(f"__dlpack__: matgrad tensors live on the CPU, which has no streams; stream must "
                             f"be None, got {stream!r}")
        kwargs: dict[str, Any] = {}
        if dl_device is not None:
            try:
                device = tuple(int(v) for v in dl_device)
            except (TypeError, ValueError):
                raise TypeError(f"__dlpack__: dl_device must be a (device_type, device_id) pair, "
                                f"got {dl_device!r}") from None
            if device != _DLPACK_CPU:
                raise BufferError(f"__dlpack__: matgrad tensors live on the CPU, device {_DLPACK_CPU}; they "
                                  f"cannot be exported to device {device}")
            if "dl_device" in _NP_DLPACK_KW:
                kwargs["dl_device"] = dl_device
        if max_version is not None and "max_version" in _NP_DLPACK_KW:
            kwargs["max_version"] = max_version  # older numpy: a legacy capsule, which the standard allows
        data = self.data
        if copy is not None:
            if "copy" in _NP_DLPACK_KW:
                kwargs["copy"] = copy
            elif copy:
                data = data.copy()  # older numpy cannot copy for us
        return data.__dlpack__(**kwargs)

    def __dlpack_device__(self) -> Tuple[int, int]:
        """Where the data lives, as DLPack's (device_type, device_id): always the CPU, ``(1, 0)``."""
        return _DLPACK_CPU

    def _scalar(self, kind: str) -> Any:
        if self.data.size != 1:
            raise TypeError(f"{kind}(): only a tensor with exactly one element can be converted to a Python "
                            f"scalar; this one has shape {self.data.shape} ({self.data.size} elements)")
        return self.data.item()

    def __float__(self) -> float:
        """``float(t)`` for a tensor with one element, of any shape (``()``, ``(1,)``, ``(1, 1)``...);
        TypeError naming the shape otherwise. Not recorded in the graph (a Python float is a constant)."""
        return float(self._scalar("float"))

    def __int__(self) -> int:
        """``int(t)`` for a tensor with one element: its value truncated toward zero, as ``int()`` of
        a float; TypeError naming the shape otherwise (ValueError for NaN, OverflowError for inf)."""
        return int(self._scalar("int"))

    def __len__(self) -> int:
        """The length of the first axis; TypeError for a 0-d tensor, as numpy."""
        if not self.data.ndim:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __iter__(self) -> Iterator[Tensor]:
        """Iterate over the first axis: yields ``t[0], t[1], ...``, each a getitem op recorded in the
        graph (gradients flow back to t), a constant under ``no_grad``. TypeError for a 0-d tensor.

        Each row's backward scatters into zeros of t's shape, so backpropagating through all n rows
        costs n times t's size: fine for a few rows, slow for thousands (use slicing or matmul).
        """
        if not self.data.ndim:
            raise TypeError("iteration over a 0-d tensor")
        return map(self.__getitem__, range(self.data.shape[0]))

    def __bool__(self) -> bool:
        """Always True, as before Tensor had ``__len__`` (which would otherwise decide truth): a
        tensor's truth is not its values; compare ``t.item()`` or ``t.data`` instead."""
        return True

    def __repr__(self) -> str:
        body = np.array2string(self.data, prefix="tensor(", separator=", ")
        extra = ", requires_grad=True" if self.requires_grad else ""
        if self._op is not None:
            extra += f", op={self._op}"
        return f"tensor({body}, dtype={self.data.dtype}{extra})"

    # ---- the operators and methods that matgrad.ops binds onto Tensor -------------------------
    if TYPE_CHECKING:  # their signatures, for type checkers; at run time ops/__init__.py sets them
        def __matmul__(self, other: Operand) -> Tensor: ...
        def __rmatmul__(self, other: Operand) -> Tensor: ...
        def __add__(self, other: Operand) -> Tensor: ...
        def __radd__(self, other: Operand) -> Tensor: ...
        def __sub__(self, other: Operand) -> Tensor: ...
        def __rsub__(self, other: Operand) -> Tensor: ...
        def __mul__(self, other: Operand) -> Tensor: ...
        def __rmul__(self, other: Operand) -> Tensor: ...
        def __truediv__(self, other: Operand) -> Tensor: ...
        def __rtruediv__(self, other: Operand) -> Tensor: ...
        def __pow__(self, p: Number) -> Tensor: ...
        def __neg__(self) -> Tensor: ...
        def __getitem__(self, index: Any) -> Tensor: ...

        @property
        def T(self) -> Tensor:
            """The transpose (axes reversed): a view, recorded in the graph."""

        def relu(self) -> Tensor: ...
        def tanh(self) -> Tensor: ...
        def sigmoid(self) -> Tensor: ...
        def exp(self) -> Tensor: ...
        def log(self) -> Tensor: ...
        def sum(self, axis: Axis = None, keepdims: bool = False) -> Tensor: ...
        def mean(self, axis: Axis = None, keepdims: bool = False) -> Tensor: ...
        def reshape(self, *shape: Union[int, Sequence[int]]) -> Tensor: ...
        def flatten(self, start_axis: int = 1) -> Tensor: ...

    # ---- reverse mode ------------------------------------------------------------------------
    def backward(self, grad: Optional[Operand] = None, retain_graph: bool = False) -> None:
        """Backpropagate from this tensor: accumulate dL/d(leaf) into every leaf's ``.grad``.

        ``grad`` is dL/d(self), of self's shape and dtype; it may be omitted only when self has
        exactly one element (then it is 1). Unless ``retain_graph``, the buffers the ops saved
        are released as they are used, and a second backward through them raises RuntimeError.
        """
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad (it was made from inputs "
                               "that do not require grad, or inside no_grad())")
        shape, dtype = self.data.shape, self.data.dtype
        g: Optional[np.ndarray]
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
                    node._backward(gy, own)  # type: ignore[misc]  # every op in ops has a backward
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


def tensor(data: Any, dtype: Optional[npt.DTypeLike] = None, requires_grad: bool = False) -> Tensor:
    """Make a leaf Tensor.

    float32/float64 ndarrays are kept as they are (no copy when C-contiguous); Python numbers,
    lists and integer arrays become float32 unless ``dtype`` (float32 or float64) says otherwise.

    Any DLPack exporter (an object with ``__dlpack__``: a torch tensor, a JAX array...) is read with
    ``np.from_dlpack`` and then follows the same rules: a C-contiguous, aligned float32/float64
    one is shared, not copied (writes on either side show on the other); a non-contiguous one
    (a transposed torch tensor) is copied into a C-contiguous array; integer and bool ones become
    float32 copies. A torch tensor that requires grad is refused (TypeError): pass ``.detach()``.

    A read-only array (``writeable=False``, or a read-only DLPack export such as JAX's) is kept
    as it is: the ops only read their inputs and write their own outputs and gradients, so
    everything works on it except writing into ``t.data`` (optimizers refuse such parameters).
    """
    return Tensor(data, dtype=dtype, requires_grad=requires_grad)


def from_dlpack(obj: Any, *, copy: Optional[bool] = None, requires_grad: bool = False) -> Tensor:
    """A leaf Tensor over a DLPack exporter's memory (``np.from_dlpack``): a torch tensor, a numpy
    array, another matgrad tensor... Writes through either side are seen by the other.

    The data follows ``mg.tensor``'s rules: shared when it is a C-contiguous, aligned float32 or
    float64 array; otherwise (another dtype, non-contiguous strides) ``copy=None`` converts it to a
    C-contiguous float32 (integers, bools) copy, ``copy=False`` raises ValueError, and ``copy=True``
    always copies. A read-only export stays read-only (see ``mg.tensor``). A torch tensor that
    requires grad is refused with a TypeError: pass ``.detach()``.
    """
    if copy is not None and not isinstance(copy, bool):
        raise TypeError(f"from_dlpack: copy must be True, False or None, got {copy!r}")
    if not hasattr(type(obj), "__dlpack__"):
        raise TypeError(f"from_dlpack: expected an object with __dlpack__ (a DLPack exporter), "
                        f"got {type(obj).__name__}; use mg.tensor for lists, numbers and buffers")
    shared = _import_dlpack(obj, "from_dlpack")
    data = _as_array(shared)
    if copy is False and data is not shared:
        why = (f"its dtype is {shared.dtype}" if data.dtype != shared.dtype else
               "it is not C-contiguous" if not shared.flags.c_contiguous else "it is not aligned")
        raise ValueError(f"from_dlpack: copy=False, but the data cannot be shared: {why} (matgrad keeps "
                         "C-contiguous, aligned float32/float64 arrays); pass copy=None to allow a copy")
    if copy and data is shared:
        data = data.copy()
    return Tensor(data, requires_grad=requires_grad)


# --------------------------------------------------------------------------------------------
# helpers for the ops: building nodes and accumulating gradients
# --------------------------------------------------------------------------------------------

_new = object.__new__


def _node(data: Any, prev: Tuple[Tensor, ...], backward: Optional[Backward], op: Optional[str]) -> Tensor:
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


def _const(data: Any) -> Tensor:
    """A tensor outside any graph around an ndarray that is already valid (no checks)."""
    t = _node(data, (), None, None)
    t.requires_grad = False
    return t


def _drop_grad(t: Tensor) -> None:
    """``t.grad = None``, keeping the buffer as ``t._spare`` for the next backward to write into
    when nothing else references it: big gradients are then not reallocated (and page-faulted)
    at every training step. A buffer the caller still holds is never reused."""
    g = t.grad
    owned = g is not None and t._gown is g and g.flags.owndata  # a view's base may be held elsewhere
    t.grad = t._gown = None
    if owned and _getrefcount is not None and _getrefcount(g) == _UNIQUE_REFS:
        t._spare = g


def _unique_refs() -> int:
    """What getrefcount reports for an array held by one local name only (2 up to Python 3.13;
    measured, not assumed, since interpreters count stack references differently)."""
    g = np.empty(1)
    return _getrefcount(g)  # type: ignore[misc]  # called only where getrefcount exists


_getrefcount: Optional[Callable[[Any], int]] = getattr(sys, "getrefcount", None)  # absent on PyPy: no reuse there
_UNIQUE_REFS = _unique_refs() if _getrefcount is not None else None


def _accumulate(t: Tensor, g: Any, own: bool) -> None:
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


def _released(gy: np.ndarray, own: bool) -> None:
    raise RuntimeError(_RELEASED_MSG)


_RELEASED_MSG = ("backward: the graph behind this tensor was already released by an earlier backward() "
                 "(its saved buffers are freed); pass retain_graph=True to the first backward() to "
                 "backpropagate through the same graph twice")


def _graph(root: Tensor) -> Tuple[List[Tensor], List[Tensor]]:
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
