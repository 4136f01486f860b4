"""matgrad: reverse-mode autodiff on matrices, on the CPU."""

from . import kernels
from .kernels import get_num_threads, set_num_threads

__version__ = "0.1.0"

__all__ = ["kernels", "set_num_threads", "get_num_threads", "__version__"]
