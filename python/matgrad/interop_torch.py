"""State dicts in PyTorch's names and layouts: ``mg.nn.to_torch_state_dict`` and
``mg.nn.load_torch_state_dict``.

matgrad's layers already use PyTorch's names (``0.weight``, ``1.running_mean``,
``1.num_batches_tracked``) and, for convolutions and norms, its layouts. The one difference is
``Linear``: matgrad keeps y = x·w + b with w (in, out), PyTorch stores (out, in). These two
functions transpose Linear weights on the way out and back, and leave everything else as it is,
so a matgrad ``Sequential`` and the ``torch.nn.Sequential`` of the same layers exchange weights
with ``torch_module.load_state_dict(..., strict=True)``.

Nothing here imports torch: values coming back may be torch tensors (anything with ``detach``,
``cpu`` and ``numpy``) or arrays.
"""

from __future__ import annotations

from typing import Any, Dict, Iterator, Mapping, Set, Tuple

import numpy as np

from .nn.linear import Linear
from .nn.module import Module

__all__ = ["to_torch_state_dict", "load_torch_state_dict"]


def _named_modules(module: Module, prefix: str = "") -> Iterator[Tuple[str, Module]]:
    """(prefix, module) for the module and every sub-module; prefix is "" or ends with "."."""
    yield prefix, module
    for name, child in module.named_children():
        yield from _named_modules(child, f"{prefix}{name}.")


def _linear_weight_keys(module: Module) -> Set[str]:
    """The state-dict keys of the Linear weights: the ones stored transposed in PyTorch."""
    return {prefix + "weight" for prefix, m in _named_modules(module) if isinstance(m, Linear)}


def _targets(module: Module) -> Dict[str, np.ndarray]:
    """{name: the array written on load}: parameters' data, then buffers, as in state_dict."""
    if not isinstance(module, Module):
        raise TypeError(f"expected a matgrad Module, got {type(module).__name__}")
    targets = {name: p.data for name, p in module.named_parameters()}
    targets.update(module.named_buffers())
    return targets


def to_torch_state_dict(module: Module) -> Dict[str, np.ndarray]:
    """The module's parameters and buffers as ``{name: ndarray}`` in PyTorch's names and layouts.

    Every value is a fresh C-contiguous copy in the module's dtype. Linear weights are transposed
    to PyTorch's (out_features, in_features); convolution weights (out, in, kh, kw), biases and
    batch norm's ``running_mean``, ``running_var`` and ``num_batches_tracked`` (a 0-d int64
    array) are as matgrad keeps them. Load it into the equivalent torch module with
    ``torch_module.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})``.
    """
    targets = _targets(module)
    transposed = _linear_weight_keys(module)
    state = {}
    for name, a in targets.items():
        a = np.asarray(a)
        if name in transposed and a.ndim == 2:
            a = a.T
        state[name] = np.array(a, order="C", copy=True)  # a copy even when a.T is contiguous
    return state


def _to_numpy(name: str, value: Any) -> np.ndarray:
    """A torch tensor (detached, moved to the CPU) or anything array-like, as an ndarray."""
    if hasattr(value, "detach") and hasattr(value, "numpy"):
        try:
            value = value.detach()
            if hasattr(value, "cpu"):
                value = value.cpu()
            return np.asarray(value.numpy())
        except (TypeError, RuntimeError) as e:  # e.g. bfloat16, which numpy has no dtype for
            raise TypeError(f"load_torch_state_dict: {name} cannot be converted to a NumPy array: {e}") from None
    return np.asarray(value)


def load_torch_state_dict(module: Module, state: Mapping[str, Any]) -> None:
    """Copy a PyTorch-style state dict into the module's parameters and buffers, in place.

    ``state`` maps names to torch tensors (detached and moved to the CPU here) or arrays, in
    PyTorch's layouts: Linear weights are (out_features, in_features) and are transposed back to
    matgrad's (in, out). Every key, shape and dtype is checked before anything is written, so on
    an error the module is unchanged:

    * KeyError: missing and unexpected keys, both listed;
    * ValueError: a shape differs (the message names the key and both shapes, in PyTorch's layout);
    * TypeError: the dtype kind differs (an integer array for a floating-point parameter, a float
      for ``num_batches_tracked``, ...). Values of the right kind are cast to the module's dtype.
    """
    targets = _targets(module)
    if not isinstance(state, Mapping):
        raise TypeError(f"load_torch_state_dict: state must be a mapping of names to tensors, "
                        f"got {type(state).__name__}")
    missing = [k for k in targets if k not in state]
    unexpected = [k for k in state if k not in targets]
    if missing or unexpected:
        raise KeyError(f"load_torch_state_dict: missing keys {missing}, unexpected keys {unexpected}")
    transposed = _linear_weight_keys(module)
    ready = {}
    for name, target in targets.items():
        a = _to_numpy(name, state[name])
        flip = name in transposed and target.ndim == 2
        expected = target.shape[::-1] if flip else target.shape  # PyTorch's layout
        if a.shape != expected:
            raise ValueError(f"load_torch_state_dict: {name} has shape {tuple(a.shape)}, "
                             f"the module's is {tuple(expected)} (PyTorch layout)")
        kind = target.dtype.kind
        if kind == "f" and a.dtype.kind != "f":
            raise TypeError(f"load_torch_state_dict: {name} has dtype {a.dtype}; expected floating point")
        if kind in "iu" and a.dtype.kind not in "iu":
            raise TypeError(f"load_torch_state_dict: {name} has dtype {a.dtype}; expected an integer")
        if not np.can_cast(a.dtype, target.dtype, casting="same_kind"):
            raise TypeError(f"load_torch_state_dict: {name} has dtype {a.dtype}, which cannot be cast "
                            f"to the module's {target.dtype}")
        # A cast copy now, so that the writes below cannot fail (or alias the source) half-way.
        ready[name] = np.array(a.T if flip else a, dtype=target.dtype, copy=True)
    for name, target in targets.items():
        np.copyto(target, ready[name])
