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

from ..tensor import Tensor
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


def _rmatmul(self, other):
    return matmul(other, self)


def _rsub(self, other):
    return sub(other, self)


def _method_sum(self, axis=None, keepdims=False):
    return sum(self, axis, keepdims)


def _method_mean(self, axis=None, keepdims=False):
    return mean(self, axis, keepdims)


Tensor.__matmul__ = matmul
Tensor.__rmatmul__ = _rmatmul
Tensor.__add__ = add
Tensor.__radd__ = add
Tensor.__sub__ = sub
Tensor.__rsub__ = _rsub
Tensor.__mul__ = mul
Tensor.__rmul__ = mul
Tensor.__truediv__ = div
Tensor.__neg__ = neg
Tensor.T = property(transpose, doc="The transpose (axes reversed): a view, recorded in the graph.")
Tensor.relu = relu
Tensor.sum = _method_sum
Tensor.mean = _method_mean
Tensor.reshape = reshape


def _rtruediv(self, other):
    return div(other, self)


def _method_flatten(self, start_axis=1):
    return flatten(self, start_axis)


Tensor.__rtruediv__ = _rtruediv
Tensor.__pow__ = pow
Tensor.__getitem__ = getitem
Tensor.tanh = tanh
Tensor.sigmoid = sigmoid
Tensor.exp = exp
Tensor.log = log
Tensor.flatten = _method_flatten
