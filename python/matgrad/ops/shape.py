"""Views: transpose and reshape (no copies; the backward applies the inverse view)."""

from __future__ import annotations

from typing import Sequence, Union

import numpy as np

from ..tensor import Operand, Tensor, _accumulate, _const, _grad_mode, _node
from ._common import _tensor_arg

__all__ = ["transpose", "reshape"]


def transpose(x: Operand) -> Tensor:
    """y = xᵀ (axes reversed, as numpy's .T): a view, no copy."""
    x = _tensor_arg(x)
    y = x.data.T
    if not (_grad_mode.enabled and x.requires_grad):
        return _const(y)

    def backward(gy, own):
        # y = xᵀ  ->  dL/dx = (dL/dy)ᵀ
        _accumulate(x, gy.T, own)

    return _node(y, (x,), backward, "transpose")


def reshape(x: Operand, *shape: Union[int, Sequence[int]]) -> Tensor:
    """y = x with a new shape (``reshape(2, 3)`` or ``reshape((2, 3))``; one -1 allowed)."""
    if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
        shape = tuple(shape[0])
    x = _tensor_arg(x)
    xd = x.data
    try:
        y = xd.reshape(shape)  # type: ignore[arg-type]  # ints by now (else the TypeError below)
    except (ValueError, TypeError):
        raise ValueError(f"reshape: cannot reshape a tensor of shape {xd.shape} ({xd.size} elements) "
                         f"into shape {shape}") from None
    if not (_grad_mode.enabled and x.requires_grad):
        return _const(y)

    def backward(gy, own):
        # y = x.reshape(shape)  ->  dL/dx = dL/dy.reshape(x.shape)
        _accumulate(x, gy.reshape(xd.shape), own)

    return _node(y, (x,), backward, "reshape")
