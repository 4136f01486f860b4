"""Normalisation and dropout layers: BatchNorm1d, BatchNorm2d, LayerNorm, Dropout.

Names follow PyTorch: the affine parameters are ``weight`` (ones) and ``bias`` (zeros); batch
norm's buffers ``running_mean`` (zeros), ``running_var`` (ones) and ``num_batches_tracked`` (a 0-d
int64 array) are registered with ``register_buffer``, so they are in the state dict and saved by
``mg.save``. Batch norm and dropout follow ``self.training`` (``train()`` / ``eval()``).
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

from ..ops.norm import batch_norm, dropout, layer_norm
from ..tensor import Number, Operand, Tensor
from .linear import _check_dtype, _check_positive
from .module import Module

__all__ = ["BatchNorm1d", "BatchNorm2d", "LayerNorm", "Dropout"]


def _check_number(layer: str, what: str, v: Any, low: float, high: Optional[float] = None,
                  open_low: bool = False) -> float:
    ok = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(v)
    if ok:
        ok = (v > low if open_low else v >= low) and (high is None or v <= high)
    if not ok:
        bound = f"{'>' if open_low else '>='} {low}" + (f" and <= {high}" if high is not None else "")
        raise ValueError(f"{layer}: {what} must be a finite number {bound}, got {v!r}")
    return float(v)


def _check_input(layer: str, x: Any) -> Tuple[int, ...]:
    if not isinstance(x, Tensor):
        raise TypeError(f"{layer}: expected a Tensor, got {type(x).__name__}")
    return x.data.shape


class _BatchNorm(Module):
    _ndim = 2
    _layout = "(N, D)"
    _size_name = "num_features"

    running_mean: np.ndarray  # the buffers, set by register_buffer
    running_var: np.ndarray
    num_batches_tracked: np.ndarray

    def __init__(self, size: int, eps: Number, momentum: Number, dtype: npt.DTypeLike) -> None:
        layer = type(self).__name__
        size = _check_positive(layer, self._size_name, size)
        setattr(self, self._size_name, size)
        self.eps = _check_number(layer, "eps", eps, 0.0, open_low=True)
        self.momentum = _check_number(layer, "momentum", momentum, 0.0, 1.0)
        dtype = _check_dtype(layer, dtype)
        self.weight = Tensor(np.ones(size, dtype), requires_grad=True)
        self.bias = Tensor(np.zeros(size, dtype), requires_grad=True)
        self.register_buffer("running_mean", np.zeros(size, dtype))
        self.register_buffer("running_var", np.ones(size, dtype))
        self.register_buffer("num_batches_tracked", np.array(0, np.int64))

    def forward(self, x: Tensor) -> Tensor:
        layer, size = type(self).__name__, getattr(self, self._size_name)
        shape = _check_input(layer, x)
        if len(shape) != self._ndim or shape[1] != size:
            raise ValueError(f"{layer}({size}): expected input of shape {self._layout} with {size} "
                             f"at axis 1, got shape {shape}")
        training = self.training
        y = batch_norm(x, self.weight, self.bias, self.running_mean, self.running_var, training,
                       momentum=self.momentum, eps=self.eps)
        if training:  # after batch_norm's checks passed: a refused batch changes nothing
            self.num_batches_tracked += 1
        return y

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({getattr(self, self._size_name)}, eps={self.eps}, "
                f"momentum={self.momentum}, dtype={self.weight.data.dtype})")


class BatchNorm1d(_BatchNorm):
    """Batch norm of x (N, D) per feature: batch statistics in training mode (updating the running
    ones), the running statistics in eval mode."""

    _ndim = 2
    _layout = "(N, num_features)"
    _size_name = "num_features"
    num_features: int

    def __init__(self, num_features: int, eps: Number = 1e-5, momentum: Number = 0.1,
                 dtype: npt.DTypeLike = np.float32) -> None:
        super().__init__(num_features, eps, momentum, dtype)


class BatchNorm2d(_BatchNorm):
    """Batch norm of images x (N, C, H, W) per channel, with statistics over N, H and W."""

    _ndim = 4
    _layout = "(N, num_channels, H, W)"
    _size_name = "num_channels"
    num_channels: int

    def __init__(self, num_channels: int, eps: Number = 1e-5, momentum: Number = 0.1,
                 dtype: npt.DTypeLike = np.float32) -> None:
        super().__init__(num_channels, eps, momentum, dtype)


class LayerNorm(Module):
    """Layer norm over the last axis of x (..., D): each row normalised with its own mean and
    variance, then scaled by ``weight`` (D,) and shifted by ``bias`` (D,)."""

    def __init__(self, normalized_shape: Union[int, Sequence[int]], eps: Number = 1e-5,
                 dtype: npt.DTypeLike = np.float32) -> None:
        if isinstance(normalized_shape, (tuple, list)):
            if len(normalized_shape) != 1:
                raise ValueError(f"LayerNorm: only the last axis can be normalised: normalized_shape must be "
                                 f"an int or a 1-tuple, got {tuple(normalized_shape)!r}")
            normalized_shape = normalized_shape[0]
        self.normalized_shape = _check_positive("LayerNorm", "normalized_shape", normalized_shape)
        self.eps = _check_number("LayerNorm", "eps", eps, 0.0, open_low=True)
        dtype = _check_dtype("LayerNorm", dtype)
        self.weight = Tensor(np.ones(self.normalized_shape, dtype), requires_grad=True)
        self.bias = Tensor(np.zeros(self.normalized_shape, dtype), requires_grad=True)

    def forward(self, x: Tensor) -> Tensor:
        d = self.normalized_shape
        shape = _check_input("LayerNorm", x)
        if not shape or shape[-1] != d:
            raise ValueError(f"LayerNorm({d}): expected input of shape (..., {d}), got shape {shape}")
        return layer_norm(x, self.weight, self.bias, eps=self.eps)

    def __repr__(self) -> str:
        return f"LayerNorm({self.normalized_shape}, eps={self.eps}, dtype={self.weight.data.dtype})"


class Dropout(Module):
    """Inverted dropout with drop probability p in training mode; the identity in eval mode."""

    def __init__(self, p: Number = 0.5) -> None:
        self.p = _check_number("Dropout", "p", p, 0.0, 1.0)

    def forward(self, x: Operand) -> Tensor:
        return dropout(x, self.p, self.training)

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"
