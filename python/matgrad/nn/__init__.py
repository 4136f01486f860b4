"""Layers (``mg.nn``): Module and its train/eval mode, Linear, Conv2d and pooling, norms and
dropout, activations, Sequential, MLP.

``Linear`` keeps the lecture's convention y = x·w + b, so its weight has shape (in, out).
One module per family: ``module`` (the base class), ``linear``, ``conv``, ``norm``,
``activations``, ``containers``, ``utils`` (clip_grad_norm).
"""

from .activations import Flatten, LeakyReLU, ReLU, Sigmoid, Tanh
from .containers import MLP, Sequential
from .conv import AvgPool2d, Conv2d, MaxPool2d
from .linear import Linear
from .models import digits_cnn
from .module import Module
from .norm import BatchNorm1d, BatchNorm2d, Dropout, LayerNorm
from .utils import clip_grad_norm
from ..interop_torch import load_torch_state_dict, to_torch_state_dict

__all__ = ["Module", "Linear", "ReLU", "Sequential", "MLP", "BatchNorm1d", "BatchNorm2d", "LayerNorm", "Dropout",
           "clip_grad_norm"]
__all__ += ["Tanh", "Sigmoid", "LeakyReLU", "Flatten"]
__all__ += ["Conv2d", "MaxPool2d", "AvgPool2d", "digits_cnn"]
__all__ += ["to_torch_state_dict", "load_torch_state_dict"]
