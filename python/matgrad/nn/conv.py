"""Convolution and pooling layers (NCHW, PyTorch's layout and names)."""

from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np
import numpy.typing as npt

from ..ops import avg_pool2d, conv2d, max_pool2d
from ..ops.conv import Size2, _pair_arg
from ..tensor import Operand, Tensor
from .linear import _check_dtype, _check_positive, he_normal
from .module import Module

__all__ = ["Conv2d", "MaxPool2d", "AvgPool2d"]


class Conv2d(Module):
    """y = conv(x, weight) + bias: x (N, in_channels, H, W) -> (N, out_channels, OH, OW).

    weight is (out_channels, in_channels, kh, kw), He-initialised (N(0, 2/fan_in) with
    fan_in = in_channels·kh·kw); bias is (out_channels,), zero. ``kernel_size`` is an int or a
    pair (kh, kw); ``stride`` (≥ 1) and ``padding`` (≥ 0) are ints, as in ``mg.conv2d``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Size2, stride: Size2 = 1,
                 padding: Size2 = 0, bias: bool = True, dtype: npt.DTypeLike = np.float32) -> None:
        self.in_channels = _check_positive("Conv2d", "in_channels", in_channels)
        self.out_channels = _check_positive("Conv2d", "out_channels", out_channels)
        self.kernel_size = _pair_arg("Conv2d", "kernel_size", kernel_size, 1)
        self.stride = _square("Conv2d", "stride", stride, 1)
        self.padding = _square("Conv2d", "padding", padding, 0)
        dtype = _check_dtype("Conv2d", dtype)
        kh, kw = self.kernel_size
        fan_in = self.in_channels * kh * kw
        self.weight = Tensor(he_normal((self.out_channels, self.in_channels, kh, kw), fan_in, dtype),
                             requires_grad=True)
        self.bias = Tensor(np.zeros(self.out_channels, dtype), requires_grad=True) if bias else None

    def forward(self, x: Operand) -> Tensor:
        return conv2d(x, self.weight, self.bias, self.stride, self.padding)

    def forward_relu(self, x: Operand) -> Tensor:
        """relu(self(x)) as one node: the ReLU applied as the GEMM writes each image's output."""
        return conv2d(x, self.weight, self.bias, self.stride, self.padding, relu=True)

    def __repr__(self) -> str:
        return (f"Conv2d({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}, "
                f"dtype={self.weight.data.dtype})")


def _square(layer: str, name: str, value: Any, low: int) -> int:
    """An int, or a pair (a, a): one value for both axes (the kernels take one stride and one
    padding)."""
    a, b = _pair_arg(layer, name, value, low)
    if a != b:
        raise ValueError(f"{layer}: {name} must be the same along height and width, got {tuple(value)}")
    return a


class MaxPool2d(Module):
    """The maximum of each window (``mg.max_pool2d``); stride defaults to kernel_size."""

    def __init__(self, kernel_size: Size2, stride: Optional[Size2] = None) -> None:
        self.kernel_size = _pair_arg("MaxPool2d", "kernel_size", kernel_size, 1)
        self.stride = None if stride is None else _pair_arg("MaxPool2d", "stride", stride, 1)

    def forward(self, x: Operand) -> Tensor:
        return max_pool2d(x, self.kernel_size, self.stride)

    def __repr__(self) -> str:
        return f"MaxPool2d(kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size})"


class AvgPool2d(Module):
    """The mean of each window (``mg.avg_pool2d``); stride defaults to kernel_size."""

    def __init__(self, kernel_size: Size2, stride: Optional[Size2] = None) -> None:
        self.kernel_size = _pair_arg("AvgPool2d", "kernel_size", kernel_size, 1)
        self.stride = None if stride is None else _pair_arg("AvgPool2d", "stride", stride, 1)

    def forward(self, x: Operand) -> Tensor:
        return avg_pool2d(x, self.kernel_size, self.stride)

    def __repr__(self) -> str:
        return f"AvgPool2d(kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size})"
