"""Gradient utilities for training loops: ``clip_grad_norm``."""

from __future__ import annotations

import math
from typing import Iterable, Union

import numpy as np

from ..tensor import Tensor

__all__ = ["clip_grad_norm"]


def clip_grad_norm(parameters: Union[Tensor, Iterable[Tensor]], max_norm: float) -> float:
    """Scale the gradients so that their total L2 norm is at most about ``max_norm``; returns the
    total norm before clipping, as a float.

    The total is √(Σ_p ‖p.grad‖²) over the parameters that have a gradient (the others are
    skipped). When max_norm/(total + 1e-6) < 1 every gradient is multiplied by that factor
    (PyTorch's ``clip_grad_norm_``): in place when matgrad owns the buffer, otherwise (a buffer
    assigned by hand or shared) it is replaced by a scaled copy, never written.
    """
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    params = list(parameters)
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(f"clip_grad_norm: parameter {i} is a {type(p).__name__}, not a Tensor")
    ok = (isinstance(max_norm, (int, float, np.integer, np.floating)) and not isinstance(max_norm, bool)
          and math.isfinite(max_norm) and max_norm > 0)
    if not ok:
        raise ValueError(f"clip_grad_norm: max_norm must be a finite number > 0, got {max_norm!r}")
    grads = [p for p in params if p.grad is not None]
    total = 0.0
    g: np.ndarray  # every p in grads has one
    for p in grads:
        g = p.grad.ravel()  # type: ignore[union-attr]
        total += float(np.dot(g, g))  # ‖g‖², in the gradient's dtype
    total = math.sqrt(total)
    coef = float(max_norm) / (total + 1e-6)
    if coef < 1.0:
        for p in grads:
            g = p.grad  # type: ignore[assignment]
            if p._gown is g and g.flags.writeable:  # owned (see tensor.py): scaled in place
                g *= g.dtype.type(coef)
            else:
                p.grad = p._gown = np.multiply(g, g.dtype.type(coef), order="C")
    return total
