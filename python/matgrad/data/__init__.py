"""The bundled dataset: UCI optical recognition of handwritten digits, 8×8 images.

Optical Recognition of Handwritten Digits, E. Alpaydin and C. Kaynak (1998), UCI Machine Learning
Repository, licensed CC BY 4.0 — the 1,797-image set as
distributed with scikit-learn. ``digits.csv.gz``: one image per row, 64 pixel values 0..16 (row
by row), then the label 0..9. Read with gzip and numpy; nothing is downloaded.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Tuple

import numpy as np
import numpy.typing as npt

__all__ = ["DIGITS_PATH", "ATTRIBUTION", "load_digits", "train_test_split", "load_digits_split"]

DIGITS_PATH = Path(__file__).with_name("digits.csv.gz")
ATTRIBUTION = ("Optical Recognition of Handwritten Digits, E. Alpaydin and C. Kaynak (1998), "
               "UCI Machine Learning Repository, CC BY 4.0")


def load_digits(dtype: npt.DTypeLike = np.float32) -> Tuple[np.ndarray, np.ndarray]:
    """(X, y): X (1797, 64) pixels scaled to [0, 1] in ``dtype``; y (1797,) int64 labels 0..9."""
    with gzip.open(DIGITS_PATH, "rt", encoding="ascii") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    x = (table[:, :64] / 16.0).astype(dtype)
    y = np.ascontiguousarray(table[:, 64])
    return x, y


def train_test_split(x: np.ndarray, y: np.ndarray, test_fraction: float = 0.2,
                     seed: int = 0) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A fixed shuffle (seeded) split: (x_train, y_train, x_test, y_test)."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"train_test_split: test_fraction must be in (0, 1), got {test_fraction}")
    n = len(x)
    order = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * test_fraction))
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


def load_digits_split(dtype: npt.DTypeLike = np.float32) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The demo's fixed split of the digits: 1,438 training and 359 test images."""
    x, y = load_digits(dtype)
    return train_test_split(x, y, test_fraction=0.2, seed=0)
