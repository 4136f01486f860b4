"""Sequential and MLP."""

from __future__ import annotations

from typing import Any, Iterator, List, Sequence, Tuple

import numpy as np
import numpy.typing as npt

from ..tensor import Tensor
from .activations import ReLU
from .linear import Linear
from .module import Module

__all__ = ["Sequential", "MLP"]


class Sequential(Module):
    """Layers applied in order; parameters are named ``<index>.<name>``.

    A layer with a ``forward_relu`` method (Linear, Conv2d) followed by a ReLU runs as one fused
    node: the bias and the ReLU are applied as the GEMM writes its output.
    """

    def __init__(self, *layers: Module) -> None:
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential: layer {i} is a {type(layer).__name__}, not a Module")
        self.layers = list(layers)

    def forward(self, x: Any) -> Tensor:
        layers = self.layers
        i, count = 0, len(layers)
        while i < count:
            layer = layers[i]
            fused = getattr(layer, "forward_relu", None)
            if fused is not None and i + 1 < count and type(layers[i + 1]) is ReLU:
                x = fused(x)
                i += 2
            else:
                x = layer(x)
                i += 1
        return x

    def named_children(self) -> Iterator[Tuple[str, Module]]:
        for i, layer in enumerate(self.layers):
            yield str(i), layer

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i: int) -> Module:
        return self.layers[i]

    def __iter__(self) -> Iterator[Module]:
        return iter(self.layers)

    def __repr__(self) -> str:
        inner = "".join(f"\n  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"{type(self).__name__}({inner}\n)"


class MLP(Sequential):
    """Linear/ReLU stack for ``sizes`` = [in, hidden..., out]: no ReLU after the last Linear."""

    def __init__(self, sizes: Sequence[int], bias: bool = True, dtype: npt.DTypeLike = np.float32) -> None:
        sizes = list(sizes)
        if len(sizes) < 2:
            raise ValueError(f"MLP: sizes needs at least an input and an output size, got {sizes}")
        layers: List[Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(Linear(a, b, bias=bias, dtype=dtype))
            if i < len(sizes) - 2:
                layers.append(ReLU())
        super().__init__(*layers)
        self.sizes = sizes
