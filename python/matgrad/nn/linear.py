"""The fully connected layer. It keeps the lecture's convention y = x·w + b, so its weight has
shape (in, out) (PyTorch stores the transpose)."""

from __future__ import annotations

import math
from typing import Any, Tuple

import numpy as np
import numpy.typing as npt

from .. import random as _random
from ..ops import linear
from ..tensor import Operand, Tensor
from .module import Module

__all__ = ["Linear"]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _check_dtype(layer: str, dtype: npt.DTypeLike) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype not in _FLOATS:
        raise TypeError(f"{layer}: dtype must be float32 or float64, got {dtype}")
    return dtype


def _check_positive(layer: str, what: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{layer}: {what} must be a positive integer, got {v!r}")
    return int(v)


def he_normal(shape: Tuple[int, ...], fan_in: int, dtype: np.dtype) -> np.ndarray:
    """Weights ~ N(0, 2/fan_in) from ``mg.random.generator()`` (He et al. 2015, for ReLU nets)."""
    w = _random.generator().standard_normal(shape, dtype=dtype)
    w *= math.sqrt(2.0 / fan_in)
    return w


class Linear(Module):
    """y = x·w + b with weight (in_features, out_features) and bias (out_features,).

    He initialisation: weight ~ N(0, 2/in_features), bias = 0, drawn from ``mg.random.generator()``
    (seed it with ``mg.manual_seed``).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 dtype: npt.DTypeLike = np.float32) -> None:
        self.in_features = _check_positive("Linear", "in_features", in_features)
        self.out_features = _check_positive("Linear", "out_features", out_features)
        dtype = _check_dtype("Linear", dtype)
        self.weight = Tensor(he_normal((self.in_features, self.out_features), self.in_features, dtype),
                             requires_grad=True)
        self.bias = Tensor(np.zeros(self.out_features, dtype), requires_grad=True) if bias else None

    def forward(self, x: Operand) -> Tensor:
        return linear(x, self.weight, self.bias)  # x (N,in) · w (in,out) + b (out,) -> (N,out)

    def forward_relu(self, x: Operand) -> Tensor:
        """relu(self(x)) as one fused node: what Sequential runs for Linear then ReLU."""
        return linear(x, self.weight, self.bias, relu=True)

    def __repr__(self) -> str:
        return (f"Linear(in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, dtype={self.weight.data.dtype})")
