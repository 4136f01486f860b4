"""Layers: Module, Linear, ReLU, Sequential, MLP.

``Linear`` keeps the lecture's convention y = x·w + b, so its weight has shape (in, out).
"""

import math

import numpy as np

from . import random as _random
from .ops import linear, relu
from .tensor import Tensor, _drop_grad

__all__ = ["Module", "Linear", "ReLU", "Sequential", "MLP"]


class Module:
    """Base class: a callable with parameters (the Tensors among its attributes, and those of its
    sub-modules)."""

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        raise NotImplementedError(f"{type(self).__name__} must define forward(x)")

    def named_parameters(self, prefix=""):
        """(name, tensor) pairs, in attribute order: ``weight``, ``0.bias``, ..."""
        for name, value in vars(self).items():
            if isinstance(value, Tensor) and value.requires_grad:
                yield prefix + name, value
            elif isinstance(value, Module):
                yield from value.named_parameters(f"{prefix}{name}.")

    def parameters(self):
        """The parameters as a list (each tensor once, even when shared)."""
        seen, out = set(), []
        for _, p in self.named_parameters():
            if id(p) not in seen:
                seen.add(id(p))
                out.append(p)
        return out

    def zero_grad(self):
        """Drop every parameter's gradient (``.grad = None``; an unreferenced buffer is kept for
        the next backward to write into)."""
        for p in self.parameters():
            _drop_grad(p)

    def state_dict(self):
        """{name: copy of the parameter's array}."""
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state):
        """Copy arrays into the parameters, in place. Every key, shape and dtype kind is checked
        before anything is written; float arrays are cast to the parameter's dtype."""
        params = dict(self.named_parameters())
        missing = [k for k in params if k not in state]
        unexpected = [k for k in state if k not in params]
        if missing or unexpected:
            raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        arrays = {}
        for name, p in params.items():
            a = np.asarray(state[name])
            if a.shape != p.data.shape:
                raise ValueError(f"load_state_dict: {name} has shape {a.shape}, the parameter has shape {p.data.shape}")
            if a.dtype.kind != "f":
                raise TypeError(f"load_state_dict: {name} has dtype {a.dtype}; expected floating point")
            arrays[name] = a
        for name, p in params.items():
            np.copyto(p.data, arrays[name], casting="same_kind")

    def __repr__(self):
        return f"{type(self).__name__}()"


class Linear(Module):
    """y = x·w + b with weight (in_features, out_features) and bias (out_features,).

    He initialisation: weight ~ N(0, 2/in_features), bias = 0, drawn from ``mg.random.generator()``
    (seed it with ``mg.manual_seed``).
    """

    def __init__(self, in_features, out_features, bias=True, dtype=np.float32):
        for what, v in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"Linear: {what} must be a positive integer, got {v!r}")
        dtype = np.dtype(dtype)
        if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise TypeError(f"Linear: dtype must be float32 or float64, got {dtype}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        w = _random.generator().standard_normal((self.in_features, self.out_features), dtype=dtype)
        w *= math.sqrt(2.0 / self.in_features)
        self.weight = Tensor(w, requires_grad=True)
        self.bias = Tensor(np.zeros(self.out_features, dtype), requires_grad=True) if bias else None

    def forward(self, x):
        return linear(x, self.weight, self.bias)  # x (N,in) · w (in,out) + b (out,) -> (N,out)

    def __repr__(self):
        return (f"Linear(in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, dtype={self.weight.data.dtype})")


class ReLU(Module):
    """y = max(0, x)."""

    def forward(self, x):
        return relu(x)


class Sequential(Module):
    """Layers applied in order; parameters are named ``<index>.<name>``."""

    def __init__(self, *layers):
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential: layer {i} is a {type(layer).__name__}, not a Module")
        self.layers = list(layers)

    def forward(self, x):
        layers = self.layers
        i, count = 0, len(layers)
        while i < count:
            layer = layers[i]
            if type(layer) is Linear and i + 1 < count and type(layers[i + 1]) is ReLU:
                # Linear then ReLU: one fused node (bias and ReLU applied as the GEMM writes y)
                x = linear(x, layer.weight, layer.bias, relu=True)
                i += 2
            else:
                x = layer(x)
                i += 1
        return x

    def named_parameters(self, prefix=""):
        for i, layer in enumerate(self.layers):
            yield from layer.named_parameters(f"{prefix}{i}.")

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, i):
        return self.layers[i]

    def __iter__(self):
        return iter(self.layers)

    def __repr__(self):
        inner = "".join(f"\n  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"{type(self).__name__}({inner}\n)"


class MLP(Sequential):
    """Linear/ReLU stack for ``sizes`` = [in, hidden..., out]: no ReLU after the last Linear."""

    def __init__(self, sizes, bias=True, dtype=np.float32):
        sizes = list(sizes)
        if len(sizes) < 2:
            raise ValueError(f"MLP: sizes needs at least an input and an output size, got {sizes}")
        layers = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(Linear(a, b, bias=bias, dtype=dtype))
            if i < len(sizes) - 2:
                layers.append(ReLU())
        super().__init__(*layers)
        self.sizes = sizes
