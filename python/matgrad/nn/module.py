"""Module: parameters, buffers, sub-modules, train/eval mode and state dicts.

A module's parameters are the Tensors among its attributes that require grad; its buffers are the
arrays it registered with ``register_buffer`` (batch norm's running statistics): saved and loaded
with the parameters, never trained. Sub-modules are Module attributes (``Sequential`` lists its
layers as ``0``, ``1``, ...), and names are dotted paths as in PyTorch (``0.weight``,
``2.running_mean``).
"""

from __future__ import annotations

from typing import Any, Dict, Iterator, List, Mapping, Tuple, TypeVar

import numpy as np

from ..tensor import Tensor, _drop_grad

__all__ = ["Module"]

_M = TypeVar("_M", bound="Module")


class Module:
    """Base class: a callable with parameters, buffers and sub-modules."""

    training = True  # until train()/eval() set it on the instance

    def __call__(self, x: Any) -> Tensor:
        return self.forward(x)

    def forward(self, x: Any) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} must define forward(x)")

    # ---- structure -----------------------------------------------------------------------
    def named_children(self) -> Iterator[Tuple[str, Module]]:
        """(name, module) for each direct sub-module, in attribute order."""
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def modules(self) -> Iterator[Module]:
        """This module and every sub-module below it, depth first."""
        yield self
        for _, child in self.named_children():
            yield from child.modules()

    def named_parameters(self, prefix: str = "") -> Iterator[Tuple[str, Tensor]]:
        """(name, tensor) pairs, in attribute order: ``weight``, ``0.bias``, ..."""
        for name, value in vars(self).items():
            if isinstance(value, Tensor) and value.requires_grad:
                yield prefix + name, value
        for name, child in self.named_children():
            yield from child.named_parameters(f"{prefix}{name}.")

    def parameters(self) -> List[Tensor]:
        """The parameters as a list (each tensor once, even when shared)."""
        seen: set[int] = set()
        out: List[Tensor] = []
        for _, p in self.named_parameters():
            if id(p) not in seen:
                seen.add(id(p))
                out.append(p)
        return out

    def register_buffer(self, name: str, array: np.ndarray) -> None:
        """Keep ``array`` (an ndarray) as attribute ``name``: in the state dict, not a parameter."""
        if not isinstance(array, np.ndarray):
            raise TypeError(f"register_buffer: {name} must be an ndarray, got {type(array).__name__}")
        names = self.__dict__.setdefault("_buffer_names", [])
        if name not in names:
            names.append(name)
        setattr(self, name, array)

    def named_buffers(self, prefix: str = "") -> Iterator[Tuple[str, np.ndarray]]:
        """(name, ndarray) for every registered buffer, this module's first."""
        for name in self.__dict__.get("_buffer_names", ()):
            yield prefix + name, getattr(self, name)
        for name, child in self.named_children():
            yield from child.named_buffers(f"{prefix}{name}.")

    # ---- mode ----------------------------------------------------------------------------
    def train(self: _M, mode: bool = True) -> _M:
        """Set training mode (dropout drops, batch norm uses and updates batch statistics) on
        this module and every sub-module; returns self."""
        if not isinstance(mode, bool):
            raise TypeError(f"train: mode must be True or False, got {mode!r}")
        for m in self.modules():
            m.training = mode
        return self

    def eval(self: _M) -> _M:
        """Evaluation mode: ``train(False)``; returns self."""
        return self.train(False)

    # ---- gradients and state -------------------------------------------------------------
    def zero_grad(self) -> None:
        """Drop every parameter's gradient (``.grad = None``; an unreferenced buffer is kept for
        the next backward to write into)."""
        for p in self.parameters():
            _drop_grad(p)

    def state_dict(self) -> Dict[str, np.ndarray]:
        """{name: copy of the array} for every parameter, then every buffer."""
        state = {name: p.data.copy() for name, p in self.named_parameters()}
        state.update((name, np.array(b, copy=True)) for name, b in self.named_buffers())
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Copy arrays into the parameters and buffers, in place. Every key, shape and dtype kind
        is checked before anything is written; values are cast to the target's dtype."""
        targets = {name: p.data for name, p in self.named_parameters()}
        targets.update(self.named_buffers())
        missing = [k for k in targets if k not in state]
        unexpected = [k for k in state if k not in targets]
        if missing or unexpected:
            raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        arrays: Dict[str, np.ndarray] = {}
        for name, target in targets.items():
            a = np.asarray(state[name])
            if a.shape != target.shape:
                raise ValueError(f"load_state_dict: {name} has shape {a.shape}, the module's is {target.shape}")
            if target.dtype.kind == "f" and a.dtype.kind != "f":
                raise TypeError(f"load_state_dict: {name} has dtype {a.dtype}; expected floating point")
            if target.dtype.kind in "iu" and a.dtype.kind not in "iu":
                raise TypeError(f"load_state_dict: {name} has dtype {a.dtype}; expected an integer")
            arrays[name] = a
        for name, target in targets.items():
            np.copyto(target, arrays[name], casting="same_kind")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
