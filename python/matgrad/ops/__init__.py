"""The ops that record the graph, one module per family, each forward with its backward right below it.

Every op computes its output with one kernel call or one vectorised numpy expression, and, when
grad mode is on and an input requires grad, returns a node holding a closure
``backward(gy, own)``. ``gy`` is dL/dy (y's shape and dtype); ``own`` says that the op may reuse
gy's buffer, because nothing else holds it. The closure sends dL/d(input) to each input that
requires grad (and only to those) with ``_accumulate``, which adds into an existing gradient.

Modules: ``linalg`` (matmul, linear), ``elementwise`` (arithmetic, activations), ``reduce`` (sum,
mean), ``shape`` (transpose, reshape), ``norm`` (batch_norm, layer_norm, dropout: one node each,
with a fused backward), ``activations`` (tanh, sigmoid, exp, log, leaky_relu, pow, softmax,
log_softmax), ``index`` (x[...], concat, flatten). The operators on Tensor
(``@ + - * / ** -x .T x[...]``) and its methods are bound at the bottom of this file, the one
place where Tensor learns about its ops.
"""

from __future__ import annotations

from typing import Any, Dict, SupportsIndex

from ..tensor import Axis, Operand, Tensor
from .activations import exp, leaky_relu, log, log_softmax, pow, sigmoid, softmax, tanh
from .conv import avg_pool2d, conv2d, max_pool2d
from .elementwise import add, div, mul, neg, relu, sub
from .index import concat, flatten, getitem
from .linalg import linear, matmul
from .norm import batch_norm, dropout, layer_norm
from .reduce import mean, sum
from .shape import reshape, transpose

# ``sum`` shadows the builtin in this namespace, on purpose (mg.sum mirrors np.sum).
__all__ = ["matmul", "add", "sub", "mul", "neg", "div", "relu", "sum", "mean", "transpose", "reshape",
           "linear", "batch_norm", "layer_norm", "dropout"]
# ``pow`` shadows the builtin here too, on purpose (mg.pow mirrors np.power).
__all__ += ["tanh", "sigmoid", "exp", "log", "leaky_relu", "pow", "softmax", "log_softmax", "getitem",
            "concat", "flatten"]
__all__ += ["conv2d", "max_pool2d", "avg_pool2d"]


def _rmatmul(self: Tensor, other: Operand) -> Tensor:
    return matmul(other, self)


def _rsub(self: Tensor, other: Operand) -> Tensor:
    return sub(other, self)


def _rtruediv(self: Tensor, other: Operand) -> Tensor:
    return div(other, self)


def _method_sum(self: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:
    return sum(self, axis, keepdims)


def _method_mean(self: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:
    return mean(self, axis, keepdims)


def _method_flatten(self: Tensor, start_axis: SupportsIndex = 1) -> Tensor:
    return flatten(self, start_axis)


# Set with setattr: type checkers read these signatures from the TYPE_CHECKING block of Tensor.
_METHODS: Dict[str, Any] = {
    "__matmul__": matmul,
    "__rmatmul__": _rmatmul,
    "__add__": add,
    "__radd__": add,
    "__sub__": sub,
    "__rsub__": _rsub,
    "__mul__": mul,
    "__rmul__": mul,
    "__truediv__": div,
    "__neg__": neg,
    "T": property(transpose, doc="The transpose (axes reversed): a view, recorded in the graph."),
    "relu": relu,
    "sum": _method_sum,
    "mean": _method_mean,
    "reshape": reshape,
    "__rtruediv__": _rtruediv,
    "__pow__": pow,
    "__getitem__": getitem,
    "tanh": tanh,
    "sigmoid": sigmoid,
    "exp": exp,
    "log": log,
    "flatten": _method_flatten,
}
for _name, _value in _METHODS.items():
    setattr(Tensor, _name, _value)
del _name, _value
