"""Losses with a fused backward: one node each, not a graph of small ops.

Each returns a scalar (0-d) Tensor in its input's dtype. Inputs are checked first — shapes, label
dtype, length and range, non-finite values — and a bad one raises a ValueError/TypeError that
says what is wrong; nothing is recorded then.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np
import numpy.typing as npt

from .ops._common import _wrap
from .kernels import cross_entropy_backward as _cross_entropy_backward
from .kernels import cross_entropy_forward as _cross_entropy_forward
from .tensor import Operand, Tensor, _accumulate, _const, _grad_mode, _node

__all__ = ["cross_entropy", "svm_loss", "mse_loss"]


# --------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------


def _check_finite(a: np.ndarray, what: str, op: str) -> None:
    if not np.isfinite(a).all():
        bad = ~np.isfinite(a)
        first = tuple(int(i) for i in np.unravel_index(np.argmax(bad), a.shape))
        raise ValueError(f"{op}: {what} has non-finite values (nan or inf): {int(bad.sum())} of {a.size}, "
                         f"the first at index {first} is {a[first]}")


def _check_scores(scores: Tensor, op: str, check_finite: bool = True) -> np.ndarray:
    if not isinstance(scores, Tensor):
        raise TypeError(f"{op}: scores must be a Tensor of shape (N, C), got {type(scores).__name__}")
    s = scores.data
    if s.ndim != 2 or s.shape[0] == 0 or s.shape[1] == 0:
        raise ValueError(f"{op}: scores must have shape (N, C) with N >= 1 rows and C >= 1 classes, "
                         f"got shape {s.shape}")
    if check_finite:
        _check_finite(s, "scores", op)
    return s


def _check_labels(labels: npt.ArrayLike, n: int, c: int, op: str) -> np.ndarray:
    if isinstance(labels, Tensor):
        raise TypeError(f"{op}: labels must be an integer array, got a Tensor of dtype {labels.data.dtype}")
    y = np.asarray(labels)
    if y.dtype.kind not in "iu":
        raise TypeError(f"{op}: labels must be an integer array (class indices), got dtype {y.dtype}")
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"{op}: labels must have shape ({n},), one class index per row of the scores; "
                         f"got shape {y.shape}")
    bad = (y < 0) | (y >= c)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{op}: labels must be in [0, {c}) for {c} classes; labels[{i}] = {int(y[i])}")
    return y


def _labels_as_int64(labels: npt.ArrayLike, n: int, c: int, op: str) -> np.ndarray:
    """The labels as an (n,) int64 array, the kernels' type. An int64 array of the right shape is
    passed as it is (the kernel checks the range); anything else is checked here, then converted."""
    if type(labels) is np.ndarray and labels.dtype == np.int64 and labels.shape == (n,):
        return labels
    return _check_labels(labels, n, c, op).astype(np.int64)  # other integer types: N integers


def _scores_and_labels(scores: Tensor, labels: npt.ArrayLike, op: str) -> Tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """The checked (N, C) scores array, the (N,) labels, N, and arange(N) for row indexing."""
    s = _check_scores(scores, op)
    y = _check_labels(labels, s.shape[0], s.shape[1], op)
    return s, y, s.shape[0], np.arange(s.shape[0])


# --------------------------------------------------------------------------------------------
# softmax cross-entropy
# --------------------------------------------------------------------------------------------


def cross_entropy(logits: Tensor, labels: npt.ArrayLike) -> Tensor:
    """Mean over the batch of -log softmax(logits)[n, labels[n]]; logits (N, C), labels (N,) ints.

    The softmax, the loss and the backward run in the ``cross_entropy_forward`` /
    ``cross_entropy_backward`` kernels, one call each. Non-int64 labels are converted (N integers).
    """
    op = "cross_entropy"
    s = _check_scores(logits, op, check_finite=False)  # (N,C); finiteness: see below
    y = _labels_as_int64(labels, s.shape[0], s.shape[1], op)
    try:
        loss, probs = _cross_entropy_forward(s, y)  # (), (N,C) softmax of each row
    except ValueError:  # a label out of range: say so in this op's words
        _check_labels(labels, s.shape[0], s.shape[1], op)
        raise
    value = loss.item()
    if value != value:  # NaN: the kernel's sign of a non-finite score; find it for the message
        _check_finite(s, "scores", op)
    if not (_grad_mode.enabled and logits.requires_grad):
        return _const(loss)

    def backward(gl, own):  # gl = dL/dloss: ()
        # L = -(1/N) Σ_n log p[n, y_n]  ->  dL/ds = (p - onehot(y)) / N, times dL/dloss
        _accumulate(logits, _cross_entropy_backward(probs, y, float(gl)), True)

    return _node(loss, (logits,), backward, op)


# --------------------------------------------------------------------------------------------
# multiclass SVM (hinge) loss, as in cs231n
# --------------------------------------------------------------------------------------------


def svm_loss(scores: Tensor, labels: npt.ArrayLike) -> Tensor:
    """Mean over the batch of Σ_{j≠y_n} max(0, s[n,j] - s[n,y_n] + 1); scores (N, C), labels (N,)."""
    op = "svm_loss"
    s, y, n, rows = _scores_and_labels(scores, labels, op)  # (N,C), (N,), N, arange(N)
    margins = s - s[rows, y][:, None]  # (N,C) s_j - s_y
    margins += 1.0  # margin 1
    np.maximum(margins, 0, out=margins)
    margins[rows, y] = 0  # the right class does not count
    loss = np.array(margins.sum() / n, dtype=s.dtype)
    if not (_grad_mode.enabled and scores.requires_grad):
        return _const(loss)

    def backward(gl, own):  # gl = dL/dloss: ()
        # dL/ds[n,j] = 1[margin[n,j] > 0] / N for j ≠ y_n; dL/ds[n,y_n] = -(count of positive margins in row n) / N
        ds = (margins > 0).astype(s.dtype)  # (N,C)
        ds[rows, y] = -ds.sum(axis=1)
        ds *= gl / n
        _accumulate(scores, ds, True)

    return _node(loss, (scores,), backward, op)


# --------------------------------------------------------------------------------------------
# mean squared error
# --------------------------------------------------------------------------------------------


def mse_loss(pred: Tensor, target: Operand) -> Tensor:
    """Mean over all elements of (pred - target)²; target is a Tensor or an array of pred's shape."""
    op = "mse_loss"
    if not isinstance(pred, Tensor):
        raise TypeError(f"{op}: pred must be a Tensor, got {type(pred).__name__}")
    if not isinstance(target, Tensor):
        target = _wrap(target, pred.data.dtype, op)
    p, t = pred.data, target.data
    if p.dtype != t.dtype:
        raise TypeError(f"{op}: dtypes differ: pred is {p.dtype} but target is {t.dtype}")
    if p.shape != t.shape:
        raise ValueError(f"{op}: pred has shape {p.shape} but target has shape {t.shape} (they must be equal)")
    if p.size == 0:
        raise ValueError(f"{op}: pred is empty (shape {p.shape})")
    _check_finite(p, "pred", op)
    _check_finite(t, "target", op)
    n = p.size
    diff = p - t  # (...)
    loss = np.array(np.vdot(diff, diff) / n, dtype=p.dtype)
    rp, rt = pred.requires_grad, target.requires_grad
    if not (_grad_mode.enabled and (rp or rt)):
        return _const(loss)

    def backward(gl, own):  # gl = dL/dloss: ()
        # L = Σ (p - t)² / n  ->  dL/dp = 2 (p - t) / n, dL/dt = -dL/dp
        g = diff * (gl * (2.0 / n))
        if rt:
            _accumulate(target, np.negative(g), True)
        if rp:
            _accumulate(pred, g, True)

    return _node(loss, (pred, target), backward, op)
