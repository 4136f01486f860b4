"""Activation layers: thin Modules over the elementwise ops."""

from ..ops import relu
from .module import Module

__all__ = ["ReLU"]


class ReLU(Module):
    """y = max(0, x)."""

    def forward(self, x):
        return relu(x)
