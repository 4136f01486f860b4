"""Layers (``mg.nn``): Module and its train/eval mode, Linear, activations, Sequential, MLP.

``Linear`` keeps the lecture's convention y = x·w + b, so its weight has shape (in, out).
One module per family: ``module`` (the base class), ``linear``, ``activations``, ``containers``.
"""

from .activations import ReLU
from .containers import MLP, Sequential
from .linear import Linear
from .module import Module

__all__ = ["Module", "Linear", "ReLU", "Sequential", "MLP"]
