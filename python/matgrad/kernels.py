"""The native kernels over numpy arrays.

Every function validates its arguments and raises a clear error that names the
problem (shapes, dtypes, ``out``) before touching memory; the GIL is released
while a kernel runs, except for tiny calls (under 16k multiply-adds or elements),
where releasing it would cost more than the kernel. See the docstrings of each function.
"""

from __future__ import annotations

import warnings
from typing import Any, Dict, Optional

import numpy as np
import numpy.typing as npt

from . import _core
from ._core import (  # noqa: F401  (re-exported API)
    avg_pool2d_backward,
    avg_pool2d_forward,
    axpy,
    col2im,
    conv2d_backward,
    conv2d_forward,
    conv_uses_columns,
    cross_entropy_backward,
    cross_entropy_forward,
    gemm_path,
    get_num_threads,
    has_openmp,
    im2col,
    isa,
    isa_available,
    linear_backward,
    linear_forward,
    matmul,
    max_pool2d_backward,
    max_pool2d_forward,
    relu_backward,
    relu_forward,
    set_isa,
)


_warned_single_threaded = False


def set_num_threads(n: int) -> None:
    """Set the number of threads the kernels use (n >= 1).

    In a build without OpenMP (``config()["openmp"]`` is False) the kernels always run
    on one thread: asking for more warns once (a ``RuntimeWarning``) and changes nothing.
    """
    global _warned_single_threaded
    _core.set_num_threads(n)
    if n > 1 and not _core.has_openmp() and not _warned_single_threaded:
        _warned_single_threaded = True
        warnings.warn(f"set_num_threads({n}): matgrad was built without OpenMP, so its kernels run "
                      "on one thread", RuntimeWarning, stacklevel=2)


def config() -> Dict[str, Any]:
    """What the kernels run with on this machine, as a dict.

    ``isa``: the kernel set in use; ``threads``: kernel threads; ``openmp``: whether the
    build has OpenMP; ``caches``: ``{"l1d", "l2", "l3"}`` in bytes as the CPU reports
    them (0 when unknown), with ``cache_source`` saying where they came from
    (``"cpuid"``, ``"sysfs"``, ``"sysctl"`` on macOS, or ``"default"``) and ``cache_geometry`` the ways, line
    size and sharing of each level; ``blocking``: ``{"float32": {"mr", "nr", "kc", "nc",
    "mc", "kc_limit"}, "float64": {...}}`` for the kernel set in use (``kc_limit``: the
    deepest a K slice grows when K is not a whole number of kc slices), with ``blocking_source``
    (``"derived"`` from the caches, ``"fallback"`` to the fixed table when they are
    unknown, or ``"override"`` by ``MATGRAD_BLOCKING`` / :func:`set_blocking`).
    """
    caches = _core.cpu_caches()
    return {
        "isa": _core.isa(),
        "threads": _core.get_num_threads(),
        "openmp": _core.has_openmp(),
        "caches": {level: caches[level]["size"] for level in ("l1d", "l2", "l3")},
        "cache_source": caches["source"],
        "cache_geometry": {level: caches[level] for level in ("l1d", "l2", "l3")},
        "blocking": {name: _core.block_sizes(np.dtype(name)) for name in ("float32", "float64")},
        "blocking_source": _core.blocking_source(),
    }


_MAX_BLOCK = 1 << 20  # kMaxBlock in cpp/src/blocking.hpp


def set_blocking(kc: Optional[int] = None, nc: Optional[int] = None, mc: Optional[int] = None) -> None:
    """Override the GEMM's cache blocks for both dtypes and every kernel set.

    Each of ``kc`` (K slice), ``nc`` (columns of the packed B block) and ``mc`` (rows
    of the packed A block) is a positive int, or None to keep the value derived from
    the caches; ``set_blocking()`` returns to the derived blocks. For tuning
    experiments: results stay correct under any blocking. ``MATGRAD_BLOCKING=
    "kc=..,nc=..,mc=.."`` does the same at import.
    """
    values = []
    for name, value in (("kc", kc), ("nc", nc), ("mc", mc)):
        if value is None:
            values.append(0)
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"set_blocking: {name} must be an int or None, got {type(value).__name__}")
        if value <= 0:
            raise ValueError(f"set_blocking: {name} must be positive, got {value}")
        if value > _MAX_BLOCK:
            raise ValueError(f"set_blocking: {name} must be at most {_MAX_BLOCK}, got {value}")
        values.append(int(value))
    _core.set_blocking(*values)


def fma_peak(isa: Optional[str] = None, dtype: npt.DTypeLike = np.float32, threads: Optional[int] = None,
             seconds: float = 0.2) -> float:
    """The FMA peak of a kernel set in GFLOP/s, measured now.

    Each of ``threads`` threads (default: the kernel thread count) runs independent
    vector FMA chains for about ``seconds``; the rates are summed. ``isa`` defaults
    to the kernel set in use. The limit a GEMM's "% of peak" divides by.
    """
    return _core.fma_peak(isa or _core.isa(), np.dtype(dtype),
                          threads if threads is not None else _core.get_num_threads(), seconds)


__all__ = [
    "config",
    "set_blocking",
    "fma_peak",
    "matmul",
    "gemm_path",
    "relu_forward",
    "relu_backward",
    "linear_forward",
    "linear_backward",
    "axpy",
    "cross_entropy_forward",
    "cross_entropy_backward",
    "conv2d_forward",
    "conv2d_backward",
    "conv_uses_columns",
    "im2col",
    "col2im",
    "max_pool2d_forward",
    "max_pool2d_backward",
    "avg_pool2d_forward",
    "avg_pool2d_backward",
    "isa",
    "isa_available",
    "set_isa",
    "set_num_threads",
    "get_num_threads",
    "has_openmp",
]
