"""matgrad: reverse-mode autodiff on matrices, on the CPU.

``import matgrad as mg``: tensors and their ops, losses, layers (``mg.nn``), optimizers
(``mg.optim``), gradient tools, graph drawing, save/load, the bundled digits (``mg.data``),
data-parallel training over MPI (``mg.distributed``) and the native kernels (``mg.kernels``). See docs/autograd.md.
"""

import numpy as np

from . import kernels
from .kernels import get_num_threads, set_num_threads
from .tensor import Tensor, enable_grad, from_dlpack, is_grad_enabled, no_grad, tensor
from . import ops  # binds the operators onto Tensor
from .ops import add, div, linear, matmul, mean, mul, neg, relu, reshape, sub, sum, transpose
from .ops import batch_norm, dropout, layer_norm
from .ops import avg_pool2d, conv2d, max_pool2d
from .ops import concat, exp, flatten, leaky_relu, log, log_softmax, pow, sigmoid, softmax, tanh
from .losses import cross_entropy, mse_loss, svm_loss
from . import data, nn, optim, random
from . import distributed  # mg.distributed: data-parallel over MPI; mpi4py is imported only by init()
from . import onnx  # mg.onnx.export; the onnx package itself is imported only by export
from .random import manual_seed
from .checks import GradcheckError, gradcheck, jacobian
from .viz import to_dot
from .serialization import CheckpointError, load, load_checkpoint, save

__version__ = "0.1.0"

float32 = np.float32
float64 = np.float64

__all__ = [
    "kernels", "set_num_threads", "get_num_threads", "__version__",
    "Tensor", "tensor", "from_dlpack", "no_grad", "enable_grad", "is_grad_enabled", "float32", "float64",
    "matmul", "linear", "add", "sub", "mul", "neg", "div", "relu", "mean", "transpose", "reshape",  # mg.sum too, left
    # out of __all__ so that `from matgrad import *` does not shadow the builtin sum
    "batch_norm", "layer_norm", "dropout", "conv2d", "max_pool2d", "avg_pool2d",
    "tanh", "sigmoid", "exp", "log", "leaky_relu", "softmax", "log_softmax", "concat", "flatten",  # mg.pow
    # too, left out like sum: it would shadow the builtin pow
    "cross_entropy", "svm_loss", "mse_loss",
    "nn", "optim", "manual_seed", "distributed",  # also mg.data and mg.random, kept out of star imports
    "gradcheck", "jacobian", "GradcheckError", "to_dot", "save", "load", "load_checkpoint", "CheckpointError",
]
