"""Activation layers, and Flatten: thin Modules over the ops, holding only their arguments."""

from __future__ import annotations

import operator
from typing import SupportsIndex

import numpy as np

from ..ops import flatten, leaky_relu, relu, sigmoid, tanh
from ..tensor import Number, Operand, Tensor
from .module import Module

__all__ = ["ReLU", "Tanh", "Sigmoid", "LeakyReLU", "Flatten"]


class ReLU(Module):
    """y = max(0, x)."""

    def forward(self, x: Operand) -> Tensor:
        return relu(x)


class Tanh(Module):
    """y = tanh(x)."""

    def forward(self, x: Operand) -> Tensor:
        return tanh(x)


class Sigmoid(Module):
    """y = 1 / (1 + exp(−x)), stable for any x."""

    def forward(self, x: Operand) -> Tensor:
        return sigmoid(x)


class LeakyReLU(Module):
    """y = x where x > 0, else negative_slope·x."""

    def __init__(self, negative_slope: Number = 0.01) -> None:
        if isinstance(negative_slope, Tensor) or isinstance(negative_slope, bool) or \
                not isinstance(negative_slope, (int, float, np.integer, np.floating)):
            raise TypeError(f"LeakyReLU: negative_slope must be a number, got {type(negative_slope).__name__}")
        self.negative_slope = float(negative_slope)

    def forward(self, x: Operand) -> Tensor:
        return leaky_relu(x, self.negative_slope)

    def __repr__(self) -> str:
        return f"LeakyReLU(negative_slope={self.negative_slope!r})"


class Flatten(Module):
    """Merges the axes from ``start_axis`` on into one: (N, C, H, W) -> (N, C·H·W) by default."""

    def __init__(self, start_axis: SupportsIndex = 1) -> None:
        if isinstance(start_axis, bool):
            raise TypeError(f"Flatten: start_axis must be an int, got {start_axis!r}")
        try:
            self.start_axis = operator.index(start_axis)
        except TypeError:
            raise TypeError(f"Flatten: start_axis must be an int, got {start_axis!r}") from None

    def forward(self, x: Operand) -> Tensor:
        return flatten(x, self.start_axis)

    def __repr__(self) -> str:
        return f"Flatten(start_axis={self.start_axis})"
