"""The native kernels over numpy arrays.

Every function validates its arguments and raises a clear error that names the
problem (shapes, dtypes, ``out``) before touching memory; the GIL is released
while a kernel runs, except for tiny calls (under 16k multiply-adds or elements),
where releasing it would cost more than the kernel. See the docstrings of each function.
"""

from ._core import (  # noqa: F401  (re-exported API)
    axpy,
    cross_entropy_backward,
    cross_entropy_forward,
    get_num_threads,
    has_openmp,
    isa,
    isa_available,
    linear_backward,
    linear_forward,
    matmul,
    relu_backward,
    relu_forward,
    set_isa,
    set_num_threads,
)

__all__ = [
    "matmul",
    "relu_forward",
    "relu_backward",
    "linear_forward",
    "linear_backward",
    "axpy",
    "cross_entropy_forward",
    "cross_entropy_backward",
    "isa",
    "isa_available",
    "set_isa",
    "set_num_threads",
    "get_num_threads",
    "has_openmp",
]
