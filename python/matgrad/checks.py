"""Gradient tools: ``gradcheck`` (backprop against central differences) and ``jacobian`` (the
explicit Jacobian of the lecture, computed exactly by backprop, refused when too big).

Both leave every leaf of the graph as they found it: gradients are saved and restored, and
inputs perturbed by gradcheck get their exact original values back.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

import numpy as np

from .tensor import Tensor, _graph, enable_grad, no_grad

__all__ = ["gradcheck", "jacobian", "GradcheckError"]


class GradcheckError(AssertionError):
    """Backprop and finite differences disagree."""


def _leaves(y: Tensor) -> List[Tensor]:
    """The leaves that require grad behind ``y``."""
    return _graph(y)[1] if y.requires_grad else []


def gradcheck(fn: Callable[..., Tensor], *inputs: Any, eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-3) -> bool:
    """Compare backprop with central differences for every input Tensor that requires grad.

    ``fn(*inputs)`` must return a Tensor; when it has more than one element the check uses
    L = Σ u·y for a random (seeded) upstream gradient u. Inputs that require grad must be float64.
    Returns True, or raises GradcheckError naming the input, the worst element and both values:
    an element fails when |backprop - numerical| > atol + rtol·|numerical|.
    """
    checked = [(i, t) for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input is a Tensor that requires grad")
    for i, t in checked:
        if t.data.dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} is {t.data.dtype}; use float64 inputs "
                            "(finite differences in float32 are too coarse)")
    with enable_grad():
        y = fn(*inputs)
    if not isinstance(y, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(y).__name__}")
    if y.data.dtype != np.float64:
        raise TypeError(f"gradcheck: fn returned {y.data.dtype}; it must return float64 for float64 inputs")
    if y.data.size == 1:
        u = np.ones(y.data.shape)
    else:
        u = np.random.default_rng(0).standard_normal(y.data.shape)

    # backprop, with every leaf's gradient saved and restored
    analytic: Dict[int, Optional[np.ndarray]] = {}
    if y.requires_grad:
        leaves = _leaves(y)
        saved = [(leaf, leaf.grad, leaf._gown) for leaf in leaves]
        try:
            for leaf in leaves:
                leaf.grad = None
            y.backward(u)
            for i, t in checked:
                analytic[i] = None if t.grad is None else t.grad.copy()
        finally:
            for leaf, g, own in saved:
                leaf.grad, leaf._gown = g, own

    def objective() -> float:
        with no_grad():
            out = fn(*inputs)
        return float(np.sum(u * out.data))

    for i, t in checked:
        x = t.data
        a = analytic.get(i)
        a = np.zeros_like(x) if a is None else a
        numerical = np.empty_like(x)
        for idx in np.ndindex(x.shape):  # one pair of forward passes per element: a test tool
            orig = x[idx]
            try:
                x[idx] = orig + eps
                f_plus = objective()
                x[idx] = orig - eps
                f_minus = objective()
            finally:
                x[idx] = orig
            numerical[idx] = (f_plus - f_minus) / (2 * eps)
        excess = np.abs(a - numerical) - (atol + rtol * np.abs(numerical))
        excess = np.where(np.isnan(excess), np.inf, excess)
        if excess.size and excess.max() > 0:
            worst = tuple(int(k) for k in np.unravel_index(np.argmax(excess), x.shape))
            bad = int((excess > 0).sum())
            raise GradcheckError(
                f"gradcheck: input {i} (shape {x.shape}): backprop and finite differences disagree at "
                f"{bad} of {x.size} elements; worst at index {worst}: backprop {float(a[worst])!r}, "
                f"numerical {float(numerical[worst])!r} (tolerance atol={atol} + rtol={rtol}·|numerical|)")
    return True


def _size(nbytes: int) -> str:
    """A byte count for people: 800 bytes, 1.5 MiB, 256 GiB, 16,384 GiB (16 TiB)."""
    if nbytes < 2**20:
        return f"{nbytes:,} bytes"
    if nbytes < 2**30:
        return f"{nbytes / 2**20:.4g} MiB"
    gib = nbytes / 2**30
    if gib < 1000:
        return f"{gib:.4g} GiB"
    return f"{gib:,.0f} GiB ({nbytes / 2**40:.4g} TiB)"


def jacobian(fn: Callable[[Tensor], Tensor], x: Any, max_bytes: int = 2**30) -> np.ndarray:
    """The explicit Jacobian of y = fn(x) in the lecture's layout: an array of shape
    ``x.shape + y.shape`` whose entry [i, j] is ∂y_j/∂x_i, so that dL/dx = J contracted with dL/dy.

    Computed exactly by backprop, one backward pass per element of y. When J would take more
    than ``max_bytes`` it refuses (ValueError stating the size) before allocating it.
    """
    if not isinstance(x, Tensor):
        x = Tensor(x)
    xl = Tensor(x.data, requires_grad=True)  # a fresh leaf sharing x's data: x.grad is untouched
    with enable_grad():
        y = fn(xl)
    if not isinstance(y, Tensor):
        raise TypeError(f"jacobian: fn must return a Tensor, got {type(y).__name__}")
    if y.data.dtype != x.data.dtype:
        raise TypeError(f"jacobian: fn returned {y.data.dtype} for a {x.data.dtype} input")
    shape = x.data.shape + y.data.shape
    nbytes = x.data.size * y.data.size * x.data.dtype.itemsize
    if nbytes > max_bytes:
        raise ValueError(
            f"jacobian: the Jacobian of y {y.data.shape} with respect to x {x.data.shape} has shape {shape}: "
            f"{x.data.size * y.data.size:,} {x.data.dtype} entries, {_size(nbytes)}, more than "
            f"max_bytes ({_size(max_bytes)}); work with it implicitly (backward) instead")
    jac = np.zeros((x.data.size, y.data.size), dtype=x.data.dtype)
    if not y.requires_grad:
        return jac.reshape(shape)
    # Other leaves (weights fn closes over) get neither gradients nor work while we backprop.
    others = [(leaf, leaf.grad, leaf._gown) for leaf in _leaves(y) if leaf is not xl]
    try:
        for leaf, _, _ in others:
            leaf.requires_grad = False
        seed = np.zeros(y.data.shape, dtype=y.data.dtype)
        flat_seed = seed.reshape(-1)  # a view: writing it writes seed
        last = y.data.size - 1
        for j in range(y.data.size):  # column j: dL/dx for dL/dy = e_j
            flat_seed[j] = 1
            xl.grad = None
            y.backward(seed, retain_graph=j < last)
            flat_seed[j] = 0
            if xl.grad is not None:
                jac[:, j] = xl.grad.reshape(-1)
    finally:
        for leaf, g, own in others:
            leaf.requires_grad = True
            leaf.grad, leaf._gown = g, own
    return jac.reshape(shape)
