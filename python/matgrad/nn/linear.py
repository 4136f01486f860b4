"""The fully connected layer. It keeps the lecture's convention y = x·w + b, so its weight has
shape (in, out) (PyTorch stores the transpose)."""

import math

import numpy as np

from .. import random as _random
from ..ops import linear
from ..tensor import Tensor
from .module import Module

__all__ = ["Linear"]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _check_dtype(layer, dtype):
    dtype = np.dtype(dtype)
    if dtype not in _FLOATS:
        raise TypeError(f"{layer}: dtype must be float32 or float64, got {dtype}")
    return dtype


def _check_positive(layer, what, v):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{layer}: {what} must be a positive integer, got {v!r}")
    return int(v)


def he_normal(shape, fan_in, dtype):
    """Weights ~ N(0, 2/fan_in) from ``mg.random.generator()`` (He et al. 2015, for ReLU nets)."""
    w = _random.generator().standard_normal(shape, dtype=dtype)
    w *= math.sqrt(2.0 / fan_in)
    return w


class Linear(Module):
    """y = x·w + b with weight (in_features, out_features) and bias (out_features,).

    He initialisation: weight ~ N(0, 2/in_features), bias = 0, drawn from ``mg.random.generator()``
    (seed it with ``mg.manual_seed``).
    """

    def __init__(self, in_features, out_features, bias=True, dtype=np.float32):
        self.in_features = _check_positive("Linear", "in_features", in_features)
        self.out_features = _check_positive("Linear", "out_features", out_features)
        dtype = _check_dtype("Linear", dtype)
        self.weight = Tensor(he_normal((self.in_features, self.out_features), self.in_features, dtype),
                             requires_grad=True)
        self.bias = Tensor(np.zeros(self.out_features, dtype), requires_grad=True) if bias else None

    def forward(self, x):
        return linear(x, self.weight, self.bias)  # x (N,in) · w (in,out) + b (out,) -> (N,out)

    def forward_relu(self, x):
        """relu(self(x)) as one fused node: what Sequential runs for Linear then ReLU."""
        return linear(x, self.weight, self.bias, relu=True)

    def __repr__(self):
        return (f"Linear(in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, dtype={self.weight.data.dtype})")
