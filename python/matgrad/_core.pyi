"""Type stub for matgrad._core, the pybind11 extension (cpp/bindings/module.cpp and conv.cpp).

Arrays are numpy.ndarray (anything else is a TypeError at run time); float arrays are float32
or float64, the dtype of the inputs carried to the outputs. See each function's docstring in
the extension (``help(matgrad.kernels.matmul)``) for shapes and rules.
"""

from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

_FloatArray = npt.NDArray[np.floating[Any]]
_IndexArray = npt.NDArray[np.int64]
_Grads = Tuple[Optional[_FloatArray], Optional[_FloatArray], Optional[_FloatArray]]
_Stride = Union[int, Tuple[int, int], Sequence[int]]

# ---- GEMM, ReLU, linear layer, axpy (module.cpp) ------------------------------------------------

def matmul(
    a: _FloatArray,
    b: _FloatArray,
    trans_a: bool = False,
    trans_b: bool = False,
    out: Optional[_FloatArray] = None,
    accumulate: bool = False,
) -> _FloatArray: ...
def gemm_path(a: _FloatArray, b: _FloatArray, trans_a: bool = False, trans_b: bool = False) -> str: ...
def relu_forward(x: _FloatArray, out: Optional[_FloatArray] = None) -> _FloatArray: ...
def relu_backward(grad_y: _FloatArray, x: _FloatArray, out: Optional[_FloatArray] = None) -> _FloatArray: ...
def linear_forward(
    x: _FloatArray,
    w: _FloatArray,
    b: Optional[_FloatArray] = None,
    relu: bool = False,
    out: Optional[_FloatArray] = None,
) -> _FloatArray: ...
def linear_backward(
    grad_y: _FloatArray,
    x: _FloatArray,
    w: _FloatArray,
    y: Optional[_FloatArray] = None,
    relu: bool = False,
    need_dx: bool = True,
    need_dw: bool = True,
    need_db: bool = True,
    dx: Optional[_FloatArray] = None,
    dw: Optional[_FloatArray] = None,
    db: Optional[_FloatArray] = None,
    accumulate: Union[bool, Tuple[bool, bool, bool]] = True,
) -> _Grads: ...
def axpy(alpha: float, x: _FloatArray, y: _FloatArray) -> _FloatArray: ...

# ---- softmax cross-entropy -------------------------------------------------------------------------

def cross_entropy_forward(scores: _FloatArray, labels: _IndexArray) -> Tuple[_FloatArray, _FloatArray]: ...
def cross_entropy_backward(
    probs: _FloatArray, labels: _IndexArray, grad_loss: float = 1.0, out: Optional[_FloatArray] = None
) -> _FloatArray: ...

# ---- convolution and pooling (conv.cpp) ---------------------------------------------------------

def conv2d_forward(
    x: _FloatArray,
    w: _FloatArray,
    b: Optional[_FloatArray] = None,
    stride: int = 1,
    padding: int = 0,
    relu: bool = False,
    cols: Optional[_FloatArray] = None,
    out: Optional[_FloatArray] = None,
) -> Tuple[_FloatArray, Optional[_FloatArray]]: ...
def conv_uses_columns(x_shape: Sequence[int], w_shape: Sequence[int], stride: int = 1, padding: int = 0) -> bool: ...
def conv2d_backward(
    grad_y: _FloatArray,
    cols: Optional[_FloatArray],
    w: _FloatArray,
    x_shape: Sequence[int],
    stride: int = 1,
    padding: int = 0,
    y: Optional[_FloatArray] = None,
    relu: bool = False,
    need_dx: bool = True,
    need_dw: bool = True,
    need_db: bool = True,
    dx: Optional[_FloatArray] = None,
    dw: Optional[_FloatArray] = None,
    db: Optional[_FloatArray] = None,
    accumulate_dx: bool = True,
    accumulate_dw: bool = True,
    accumulate_db: bool = True,
    x: Optional[_FloatArray] = None,
) -> _Grads: ...
def im2col(x: _FloatArray, kh: int, kw: int, stride: int = 1, padding: int = 0) -> _FloatArray: ...
def col2im(
    cols: _FloatArray, x_shape: Sequence[int], kh: int, kw: int, stride: int = 1, padding: int = 0
) -> _FloatArray: ...
def max_pool2d_forward(
    x: _FloatArray,
    kh: int,
    kw: int,
    stride: _Stride,
    out: Optional[_FloatArray] = None,
    argmax_out: Optional[_IndexArray] = None,
) -> Tuple[_FloatArray, _IndexArray]: ...
def max_pool2d_backward(
    grad_y: _FloatArray,
    argmax: _IndexArray,
    x_shape: Sequence[int],
    kh: int,
    kw: int,
    stride: _Stride,
    out: Optional[_FloatArray] = None,
    accumulate: bool = False,
) -> _FloatArray: ...
def avg_pool2d_forward(x: _FloatArray, kh: int, kw: int, stride: _Stride) -> _FloatArray: ...
def avg_pool2d_backward(
    grad_y: _FloatArray,
    x_shape: Sequence[int],
    kh: int,
    kw: int,
    stride: _Stride,
    out: Optional[_FloatArray] = None,
    accumulate: bool = False,
) -> _FloatArray: ...

# ---- kernel sets, threads, caches and blocking ------------------------------------------------------

def isa() -> str: ...
def set_isa(name: str) -> None: ...
def isa_available(name: str) -> bool: ...
def set_num_threads(n: int) -> None: ...
def get_num_threads() -> int: ...
def has_openmp() -> bool: ...
def cpu_caches() -> Dict[str, Any]: ...
ALIGNED_MIN_BYTES: int  # arrays the bindings allocate start on a 64-byte line from this size on
def empty_aligned(shape: Union[int, Tuple[int, ...], List[int]], dtype: npt.DTypeLike) -> npt.NDArray[Any]: ...
def block_sizes(dtype: npt.DTypeLike) -> Dict[str, int]: ...
def blocking_source() -> str: ...
def set_blocking(kc: int, nc: int, mc: int) -> None: ...
def fma_peak(isa: str, dtype: npt.DTypeLike, threads: int = 1, seconds: float = 0.2) -> float: ...
