"""ONNX export (``mg.onnx.export``): a Sequential of matgrad layers as an ONNX model, opset 17.

The model is traced layer by layer, in eval mode, on an example input: batch norm uses its
running statistics and dropout is the identity. Weights become initializers in the module's dtype
(float32 or float64), named as in the state dict (``0.weight``); the graph reads ``input`` with a
dynamic batch dimension ``N`` and writes ``output``.

========================  ===================================================================
matgrad layer             ONNX
========================  ===================================================================
Sequential (nested too)   its layers, in order
Linear                    Gemm (transB=0: the weight is (in, out)), or MatMul + Add off 2-D
ReLU, Tanh, Sigmoid       Relu, Tanh, Sigmoid
LeakyReLU                 LeakyRelu (alpha = negative_slope)
Conv2d                    Conv (kernel_shape, strides, pads)
MaxPool2d, AvgPool2d      MaxPool, AveragePool (kernel_shape, strides; no padding, floor)
BatchNorm1d, BatchNorm2d  BatchNormalization (inference: running mean and variance)
LayerNorm                 LayerNormalization (axis -1, epsilon)
Flatten                   Flatten (axis 1), or Reshape for another start_axis
Dropout                   Identity
========================  ===================================================================

The ``onnx`` package is imported only when ``export`` runs: ``pip install 'matgrad[onnx]'``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple, Type, Union

import numpy as np

from .nn.activations import Flatten, LeakyReLU, ReLU, Sigmoid, Tanh
from .nn.containers import Sequential
from .nn.conv import AvgPool2d, Conv2d, MaxPool2d
from .nn.linear import Linear
from .nn.module import Module
from .nn.norm import BatchNorm1d, BatchNorm2d, Dropout, LayerNorm
from .tensor import Tensor, no_grad

if TYPE_CHECKING:  # only for the annotation: the package is imported by export itself
    import onnx

__all__ = ["export", "OPSET"]

OPSET = 17
_IR_VERSION = 8  # the IR version that came with opset 17: readable by older runtimes too
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _import_onnx() -> Tuple[Any, Any, Any]:
    try:
        import onnx  # the package: this module is matgrad.onnx, imports are absolute
        from onnx import helper, numpy_helper
    except ImportError as e:
        raise ImportError("mg.onnx.export needs the onnx package: pip install 'matgrad[onnx]'") from e
    return onnx, helper, numpy_helper


def _display(path: str) -> str:
    return repr(path) if path else "<root>"


def _exportable(layer: Module, cls: Type[Module]) -> bool:
    """``layer`` is a ``cls`` that computes what ``cls`` computes (no overridden forward/__call__)."""
    t = type(layer)
    return isinstance(layer, cls) and t.forward is cls.forward and t.__call__ is Module.__call__


_LEAVES = (Linear, ReLU, Tanh, Sigmoid, LeakyReLU, Conv2d, MaxPool2d, AvgPool2d, BatchNorm1d,
           BatchNorm2d, LayerNorm, Flatten, Dropout)


def _leaf_class(layer: Module) -> Optional[Type[Module]]:
    for cls in _LEAVES:
        if _exportable(layer, cls):
            return cls
    return None


def _check_supported(module: Module, path: str = "") -> None:
    """TypeError naming the first layer (path and class) that has no ONNX counterpart."""
    if not isinstance(module, Module):
        raise TypeError(f"mg.onnx.export: layer {_display(path)} is a {type(module).__name__}, not a matgrad Module")
    if _exportable(module, Sequential):
        for name, child in module.named_children():
            _check_supported(child, f"{path}.{name}" if path else name)
        return
    if _leaf_class(module) is None:
        cls = type(module)
        supported = ", ".join(c.__name__ for c in (Sequential,) + _LEAVES)
        raise TypeError(f"mg.onnx.export: layer {_display(path)} ({cls.__module__}.{cls.__qualname__}) has no "
                        f"ONNX counterpart; supported layers: {supported}")


def _module_dtype(module: Module, x: np.ndarray) -> np.dtype:
    dtypes = {p.data.dtype for p in module.parameters()}
    if len(dtypes) > 1:
        raise TypeError(f"mg.onnx.export: the module mixes dtypes {sorted(str(d) for d in dtypes)}")
    dtype = dtypes.pop() if dtypes else x.dtype
    if dtype not in _FLOATS:
        raise TypeError(f"mg.onnx.export: the model's dtype must be float32 or float64, got {dtype}")
    return dtype


class _Graph:
    """The nodes and initializers being built, and the running name of the current value."""

    def __init__(self, helper: Any, numpy_helper: Any, dtype: np.dtype) -> None:
        self.helper, self.numpy_helper, self.dtype = helper, numpy_helper, dtype
        self.nodes: List[Any] = []
        self.initializers: List[Any] = []
        self._used: Dict[str, int] = {}

    def name(self, base: str) -> str:
        n = self._used.get(base, 0)
        self._used[base] = n + 1
        return base if n == 0 else f"{base}_{n}"

    def const(self, name: str, array: np.ndarray, dtype: Optional[np.dtype] = None) -> str:
        name = self.name(name)
        a = np.ascontiguousarray(np.asarray(array, dtype=self.dtype if dtype is None else dtype))
        self.initializers.append(self.numpy_helper.from_array(a, name))
        return name

    def node(self, op: str, inputs: List[str], path: str, **attrs: Any) -> str:
        base = path or "root"
        out = self.name(f"{base}/{op}")
        self.nodes.append(self.helper.make_node(op, inputs, [out], name=out, **attrs))
        return out


def _emit_leaf(g: _Graph, cls: Type[Module], layer: Any, path: str, x: str, shape: Tuple[int, ...]) -> str:
    """Add the nodes for one layer reading value ``x`` of (traced) ``shape``; returns its output."""
    p = f"{path}." if path else ""
    if cls is Linear:
        w = g.const(p + "weight", layer.weight.data)
        b = None if layer.bias is None else g.const(p + "bias", layer.bias.data)
        if len(shape) == 2:
            return g.node("Gemm", [x, w] + ([b] if b else []), path, transA=0, transB=0)
        y = g.node("MatMul", [x, w], path)
        return y if b is None else g.node("Add", [y, b], path)
    if cls is ReLU:
        return g.node("Relu", [x], path)
    if cls is Tanh:
        return g.node("Tanh", [x], path)
    if cls is Sigmoid:
        return g.node("Sigmoid", [x], path)
    if cls is LeakyReLU:
        return g.node("LeakyRelu", [x], path, alpha=float(layer.negative_slope))
    if cls is Conv2d:
        w = g.const(p + "weight", layer.weight.data)
        inputs = [x, w] + ([] if layer.bias is None else [g.const(p + "bias", layer.bias.data)])
        s, pad = int(layer.stride), int(layer.padding)
        return g.node("Conv", inputs, path, kernel_shape=list(layer.kernel_size), strides=[s, s],
                      pads=[pad, pad, pad, pad], dilations=[1, 1], group=1)
    if cls is MaxPool2d or cls is AvgPool2d:
        stride = layer.stride or layer.kernel_size
        return g.node("MaxPool" if cls is MaxPool2d else "AveragePool", [x], path,
                      kernel_shape=list(layer.kernel_size), strides=list(stride), pads=[0, 0, 0, 0], ceil_mode=0)
    if cls is BatchNorm1d or cls is BatchNorm2d:  # (N, C) and (N, C, H, W) are both ONNX's layouts
        inputs = [x, g.const(p + "weight", layer.weight.data), g.const(p + "bias", layer.bias.data),
                  g.const(p + "running_mean", layer.running_mean), g.const(p + "running_var", layer.running_var)]
        # ONNX's momentum weighs the running value (1 - PyTorch's); inference does not use it
        return g.node("BatchNormalization", inputs, path, epsilon=float(layer.eps),
                      momentum=float(1.0 - layer.momentum), training_mode=0)
    if cls is LayerNorm:
        # stash_type stays the default (1, float): the spec allows no double statistics
        return g.node("LayerNormalization", [x, g.const(p + "weight", layer.weight.data),
                                             g.const(p + "bias", layer.bias.data)],
                      path, axis=-1, epsilon=float(layer.eps))
    if cls is Flatten:
        a = layer.start_axis + len(shape) if layer.start_axis < 0 else layer.start_axis
        if a == 1 and len(shape) >= 2:  # ONNX's Flatten is always 2-D: the same only for axis 1
            return g.node("Flatten", [x], path, axis=1)
        # matgrad keeps the axes before start_axis: (N, C, H, W), 2 -> (N, C, H·W). 0 copies a dim.
        target = g.const(p + "shape", np.array([0] * a + [-1], np.int64), np.dtype(np.int64))
        return g.node("Reshape", [x, target], path, allowzero=0)
    if cls is Dropout:
        return g.node("Identity", [x], path)
    raise AssertionError(cls)  # _check_supported let through a class with no emitter


def _trace(g: _Graph, module: Module, path: str, x: str, value: Tensor, batch: bool) -> Tuple[str, Tensor, bool]:
    """Emit ``module`` on value ``x`` (``value``: the example flowing through, for shapes).
    ``batch``: axis 0 is still the batch axis. Returns the new (name, value, batch)."""
    if _exportable(module, Sequential):
        for name, child in module.named_children():
            x, value, batch = _trace(g, child, f"{path}.{name}" if path else name, x, value, batch)
        return x, value, batch
    cls = _leaf_class(module)
    shape = tuple(value.data.shape)
    y = _emit_leaf(g, cls, module, path, x, shape)  # type: ignore[arg-type]  # _check_supported: a leaf class
    value = module(value)
    if cls is Flatten and (module.start_axis == 0  # type: ignore[attr-defined]  # module is a Flatten
                           or module.start_axis == -len(shape)):  # type: ignore[attr-defined]
        batch = False  # the batch axis was merged with the others
    return y, value, batch


def _eval_flags(module: Module) -> Callable[[], None]:
    """Put every sub-module in eval mode; returns a function restoring each one's own flag."""
    missing = object()
    saved = [(m, m.__dict__.get("training", missing)) for m in module.modules()]
    module.eval()

    def restore() -> None:
        for m, flag in saved:
            if flag is missing:
                m.__dict__.pop("training", None)
            else:
                m.training = flag

    return restore


def export(module: Module, path: Union[str, "os.PathLike[str]"], example_input: Any) -> "onnx.ModelProto":
    """Write ``module`` as an ONNX model (opset 17) to ``path``; returns the ``onnx.ModelProto``.

    ``module`` is a ``Sequential`` (nested ones too) of the layers in this module's table, or one
    such layer. It is traced in eval mode on ``example_input`` (a Tensor or an array, cast to the
    module's dtype; its batch size does not matter: axis 0 becomes the dynamic dimension ``N``),
    and the module's own train/eval flags are left as they were. The weights are stored in the
    module's dtype (float32 or float64); the graph's input is ``input``, its output ``output``.
    The model passes ``onnx.checker.check_model`` before it is written.

    Raises ImportError when the ``onnx`` package is missing (``pip install 'matgrad[onnx]'``),
    TypeError naming the layer (its path and class) when a layer has no ONNX counterpart, such as a
    user-defined Module; no file is written on any error.
    """
    _check_supported(module)
    onnx, helper, numpy_helper = _import_onnx()
    x = example_input.data if isinstance(example_input, Tensor) else np.asarray(example_input)
    if x.ndim < 1:
        raise ValueError(f"mg.onnx.export: example_input needs a batch axis, got shape {x.shape}")
    if x.dtype.kind != "f":
        raise TypeError(f"mg.onnx.export: example_input must be floating point, got {x.dtype}")
    dtype = _module_dtype(module, x)
    x = np.ascontiguousarray(x, dtype=dtype)
    elem = helper.np_dtype_to_tensor_dtype(dtype)

    g = _Graph(helper, numpy_helper, dtype)
    restore = _eval_flags(module)
    try:
        with no_grad():
            out, value, batch = _trace(g, module, "", "input", Tensor(x), True)
    finally:
        restore()
    if out == "input":  # no layers: the output is still a separate value
        out = g.node("Identity", [out], "")
    g.nodes[-1].output[0] = "output"

    out_shape = list(value.data.shape)
    out_dims = (["N"] + out_shape[1:]) if batch else [None] * len(out_shape)
    graph = helper.make_graph(
        g.nodes, type(module).__name__,
        [helper.make_tensor_value_info("input", elem, ["N"] + list(x.shape[1:]))],
        [helper.make_tensor_value_info("output", elem, out_dims)],
        g.initializers)
    from . import __version__
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=_IR_VERSION,
                              producer_name="matgrad", producer_version=__version__,
                              doc_string=f"matgrad {type(module).__name__}, eval mode")
    onnx.checker.check_model(model, full_check=True)
    onnx.save_model(model, os.fspath(path))
    return model
