"""Ready-made networks for the bundled digits: what ``python -m matgrad`` trains."""

from __future__ import annotations

from typing import Tuple

import numpy as np
import numpy.typing as npt

from .activations import Flatten, ReLU
from .containers import Sequential
from .conv import Conv2d, MaxPool2d
from .linear import Linear

__all__ = ["digits_cnn"]


def digits_cnn(channels: Tuple[int, int] = (16, 32), dtype: npt.DTypeLike = np.float32) -> Sequential:
    """A small CNN for 8×8 single-channel images, (N, 1, 8, 8) -> 10 scores:

    conv 3×3 (pad 1) → ReLU → conv 3×3 (pad 1) → ReLU → max pool 2×2 → flatten → linear.
    Each conv + ReLU pair runs as one fused node. ``channels``: the two convolutions' widths.
    """
    c1, c2 = channels
    return Sequential(
        Conv2d(1, c1, 3, padding=1, dtype=dtype), ReLU(),   # (N,1,8,8) -> (N,c1,8,8)
        Conv2d(c1, c2, 3, padding=1, dtype=dtype), ReLU(),  # -> (N,c2,8,8)
        MaxPool2d(2),                                       # -> (N,c2,4,4)
        Flatten(),                                          # -> (N,c2·16)
        Linear(c2 * 16, 10, dtype=dtype),                   # -> (N,10)
    )
