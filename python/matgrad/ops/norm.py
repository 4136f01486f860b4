"""Normalisation and dropout: batch norm, layer norm and inverted dropout, one node each.

Each norm is one node with a fused backward (the simplified one-pass formulas), not a graph of
small ops. Batch norm takes its running statistics as plain float ndarrays and, in training mode,
updates them in place with PyTorch's convention: running = (1 - momentum)·running +
momentum·batch_stat, the running variance from the unbiased batch variance (n/(n-1)), while the
batch is normalised with the biased one. Every argument is checked before anything is computed
or changed.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Tuple

import numpy as np

from .. import random as _random
from ..tensor import Number, Operand, Tensor, _accumulate, _const, _grad_mode, _node
from ._common import _tensor_arg

__all__ = ["batch_norm", "layer_norm", "dropout"]


# --------------------------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------------------------


def _check_float(op: str, name: str, value: Any, low: float, high: Optional[float] = None,
                 open_low: bool = False) -> float:
    """A finite number in [low, high] (or (low, high] with open_low), as a float."""
    ok = (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
          and math.isfinite(value))
    if ok:
        ok = (value > low if open_low else value >= low) and (high is None or value <= high)
    if not ok:
        bound = f"{'>' if open_low else '>='} {low}" + (f" and <= {high}" if high is not None else "")
        raise ValueError(f"{op}: {name} must be a finite number {bound}, got {value!r}")
    return float(value)


def _check_bool(op: str, name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{op}: {name} must be True or False, got {value!r}")
    return bool(value)


def _affine(op: str, name: str, t: Optional[Operand], d: int, what: str, dtype: np.dtype) -> Optional[Tensor]:
    """gamma/beta: None or a Tensor of shape (d,) in x's dtype (arrays become constant tensors)."""
    if t is None:
        return None
    if not isinstance(t, Tensor):
        if not isinstance(t, (np.ndarray, list, tuple)):
            raise TypeError(f"{op}: {name} must be a Tensor of shape ({d},) or None, got {type(t).__name__}")
        a = np.asarray(t)
        if a.dtype.kind not in "biuf" or (a.dtype.kind == "f" and a.dtype != dtype):
            raise TypeError(f"{op}: {name} has dtype {a.dtype} but x is {dtype}")
        t = _const(np.ascontiguousarray(a, dtype=dtype))
    if t.data.dtype != dtype:
        raise TypeError(f"{op}: dtypes differ: x is {dtype} but {name} is {t.data.dtype}")
    if t.data.shape != (d,):
        raise ValueError(f"{op}: {name} must have shape ({d},), one value per {what}; got shape {t.data.shape}")
    return t


def _running(op: str, name: str, a: Optional[np.ndarray], d: int, what: str, training: bool) -> Optional[np.ndarray]:
    """A running statistic: a float ndarray of shape (d,), writeable when it is to be updated."""
    if a is None:
        if training:
            return None  # not tracked
        raise ValueError(f"{op}: {name} is None; eval mode (training=False) normalises with the running "
                         "statistics, so running_mean and running_var are needed")
    if not isinstance(a, np.ndarray) or a.dtype.kind != "f":
        got = f"dtype {a.dtype}" if isinstance(a, np.ndarray) else type(a).__name__
        raise TypeError(f"{op}: {name} must be a float ndarray of shape ({d},), got {got}")
    if a.shape != (d,):
        raise ValueError(f"{op}: {name} must have shape ({d},), one value per {what}; got shape {a.shape}")
    if training and not a.flags.writeable:
        raise ValueError(f"{op}: {name} is read-only; training mode updates it in place")
    return a


# --------------------------------------------------------------------------------------------
# batch norm
# --------------------------------------------------------------------------------------------


def batch_norm(x: Operand, gamma: Optional[Operand], beta: Optional[Operand], running_mean: Optional[np.ndarray],
               running_var: Optional[np.ndarray], training: bool, momentum: Number = 0.1, eps: Number = 1e-5) -> Tensor:
    """y = γ·(x - μ)/√(σ² + eps) + β per feature of x (N, D) or per channel of x (N, C, H, W).

    Training: μ, σ² are the batch's mean and biased variance over N (and H, W), and the running
    statistics (float ndarrays of shape (D,)/(C,), or None for both: not tracked) are updated in
    place: running = (1 - momentum)·running + momentum·stat, with the unbiased variance.
    Eval (``training=False``): μ, σ² are running_mean, running_var. gamma, beta: Tensors of shape
    (D,)/(C,), or None (1 and 0). A batch with one value per feature cannot be normalised in
    training mode (ValueError, raised before anything changes).
    """
    op = "batch_norm"
    x = _tensor_arg(x)
    xd = x.data
    axes: Tuple[int, ...]
    if xd.ndim == 2:
        axes, what = (0,), "feature"  # x (N,D): statistics over N
    elif xd.ndim == 4:
        axes, what = (0, 2, 3), "channel"  # x (N,C,H,W): statistics over N, H, W
    else:
        raise ValueError(f"{op}: x must have shape (N, D) or (N, C, H, W), got shape {xd.shape}")
    if xd.size == 0:
        raise ValueError(f"{op}: x is empty (shape {xd.shape})")
    d, dtype = xd.shape[1], xd.dtype
    training = _check_bool(op, "training", training)
    momentum = _check_float(op, "momentum", momentum, 0.0, 1.0)
    eps = _check_float(op, "eps", eps, 0.0, open_low=True)
    gamma = _affine(op, "gamma", gamma, d, what, dtype)
    beta = _affine(op, "beta", beta, d, what, dtype)
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{op}: running_mean and running_var must both be arrays or both be None")
    running_mean = _running(op, "running_mean", running_mean, d, what, training)
    running_var = _running(op, "running_var", running_var, d, what, training)
    n = xd.size // d  # values per feature/channel
    if training and n == 1:
        raise ValueError(f"{op}: a batch of one cannot be normalised in training mode: x has shape {xd.shape}, "
                         f"one value per {what} (the variance would be 0); use a larger batch or eval mode")
    bshape = (1, d) if xd.ndim == 2 else (1, d, 1, 1)  # a (d,) vector broadcast against x

    if training:
        mean = xd.mean(axis=axes)  # (d,)
        xc = xd - mean.reshape(bshape)  # x - μ
        var = np.einsum("nc,nc->c", xc, xc) if xd.ndim == 2 else np.einsum("nchw,nchw->c", xc, xc)
        var /= n  # biased: what the batch is normalised with
        if running_mean is not None:
            # running = (1 - m)·running + m·stat; the variance unbiased, n/(n - 1)
            running_mean *= 1.0 - momentum
            running_mean += mean.astype(running_mean.dtype, copy=False) * momentum
            # running_var is an array too: _running and the check above let through both or neither
            running_var *= 1.0 - momentum  # type: ignore[operator, assignment]
            running_var += var.astype(running_var.dtype, copy=False) * (momentum * n / (n - 1))  # type: ignore[union-attr]
        invstd = 1.0 / np.sqrt(var + dtype.type(eps))  # (d,)
        xhat = np.multiply(xc, invstd.reshape(bshape), out=xc)  # (x - μ)/√(σ² + eps)
    else:
        # eval mode: _running returned both arrays (it raises on None)
        mean = running_mean.astype(dtype, copy=False)  # type: ignore[union-attr]
        invstd = (1.0 / np.sqrt(running_var.astype(dtype, copy=False)  # type: ignore[union-attr]
                                + dtype.type(eps))).astype(dtype, copy=False)
        xhat = xd - mean.reshape(bshape)
        xhat *= invstd.reshape(bshape)
    y = xhat * gamma.data.reshape(bshape) if gamma is not None else xhat.copy()
    if beta is not None:
        y += beta.data.reshape(bshape)

    rx = x.requires_grad
    rg = gamma is not None and gamma.requires_grad
    rb = beta is not None and beta.requires_grad
    if not (_grad_mode.enabled and (rx or rg or rb)):
        return _const(y)
    prev = tuple(t for t in (x, gamma, beta) if t is not None)
    g_data = None if gamma is None else gamma.data

    def backward(gy, own):
        # y = γ·x̂ + β with x̂ = (x - μ)·invstd  ->  dγ = Σ g·x̂, dβ = Σ g (sums over N (, H, W));
        # training (μ, σ² from the batch, n values each):
        #     dx = (γ·invstd / n)·(n·g - Σg - x̂·Σ(g·x̂))
        # eval (μ, σ² constants): dx = γ·invstd·g
        sub = "nc" if gy.ndim == 2 else "nchw"
        sum_g = np.einsum(f"{sub}->c", gy) if (rb or (rx and training)) else None  # Σ g: (d,)
        sum_gx = np.einsum(f"{sub},{sub}->c", gy, xhat) if (rg or (rx and training)) else None  # Σ g·x̂
        if rx:
            scale = invstd if g_data is None else g_data * invstd  # γ·invstd: (d,)
            if training:
                # training with rx: both sums were computed above
                dx = xhat * (-sum_gx).reshape(bshape)  # type: ignore[operator]  # -x̂·Σ(g·x̂)
                dx += gy * dtype.type(n)  # + n·g
                dx -= sum_g.reshape(bshape)  # type: ignore[union-attr]  # - Σg
                dx *= (scale / n).reshape(bshape)
            else:
                dx = gy * scale.reshape(bshape)
            _accumulate(x, dx, True)
        if rg:  # rg and rb imply that gamma and beta are Tensors
            _accumulate(gamma, sum_gx, True)  # type: ignore[arg-type]
        if rb:
            _accumulate(beta, sum_g, True)  # type: ignore[arg-type]

    return _node(y, prev, backward, op)


# --------------------------------------------------------------------------------------------
# layer norm
# --------------------------------------------------------------------------------------------


def layer_norm(x: Operand, gamma: Optional[Operand], beta: Optional[Operand], eps: Number = 1e-5) -> Tensor:
    """y = γ·(x - μ)/√(σ² + eps) + β with μ, σ² (biased) over the last axis of x (any shape (..., D)).

    gamma, beta: Tensors of shape (D,), or None (1 and 0).
    """
    op = "layer_norm"
    x = _tensor_arg(x)
    xd = x.data
    if xd.ndim < 1 or xd.size == 0:
        raise ValueError(f"{op}: x must have at least one axis and no empty axis, got shape {xd.shape}")
    d, dtype = xd.shape[-1], xd.dtype
    eps = _check_float(op, "eps", eps, 0.0, open_low=True)
    gamma = _affine(op, "gamma", gamma, d, "element of the last axis", dtype)
    beta = _affine(op, "beta", beta, d, "element of the last axis", dtype)

    mean = xd.mean(axis=-1, keepdims=True)  # (..., 1)
    xc = xd - mean
    var = np.einsum("...d,...d->...", xc, xc)[..., None]  # (..., 1)
    var /= d  # biased
    invstd = 1.0 / np.sqrt(var + dtype.type(eps))  # (..., 1)
    xhat = np.multiply(xc, invstd, out=xc)
    y = xhat * gamma.data if gamma is not None else xhat.copy()
    if beta is not None:
        y += beta.data

    rx = x.requires_grad
    rg = gamma is not None and gamma.requires_grad
    rb = beta is not None and beta.requires_grad
    if not (_grad_mode.enabled and (rx or rg or rb)):
        return _const(y)
    prev = tuple(t for t in (x, gamma, beta) if t is not None)
    g_data = None if gamma is None else gamma.data

    def backward(gy, own):
        # y = γ·x̂ + β, x̂ = (x - μ)·invstd over the last axis (D values)  ->
        #     dγ = Σ_rows g·x̂, dβ = Σ_rows g,
        #     dx = (invstd / D)·(D·ĝ - Σĝ - x̂·Σ(ĝ·x̂)) with ĝ = g·γ and the sums over the last axis
        if rg:  # rg and rb imply that gamma and beta are Tensors
            _accumulate(gamma, np.einsum("nd,nd->d", gy.reshape(-1, d), xhat.reshape(-1, d)),  # type: ignore[arg-type]
                        True)
        if rb:
            _accumulate(beta, gy.reshape(-1, d).sum(axis=0), True)  # type: ignore[arg-type]
        if rx:
            gh = gy * g_data if g_data is not None else gy  # ĝ
            sum_gh = gh.sum(axis=-1, keepdims=True)  # Σĝ: (..., 1)
            sum_ghx = np.einsum("...d,...d->...", gh, xhat)[..., None]  # Σ(ĝ·x̂): (..., 1)
            dx = xhat * -sum_ghx
            dx += gh * dtype.type(d)
            dx -= sum_gh
            dx *= invstd / dtype.type(d)
            _accumulate(x, dx, True)

    return _node(y, prev, backward, op)


# --------------------------------------------------------------------------------------------
# dropout
# --------------------------------------------------------------------------------------------


def dropout(x: Operand, p: Number, training: bool) -> Tensor:
    """Inverted dropout: in training, keep each element with probability 1 - p and scale the kept
    ones by 1/(1 - p), so the expected value is unchanged; the mask is drawn from
    ``mg.random.generator()`` (``mg.manual_seed`` makes it reproducible). In eval mode, or with
    p = 0, x itself is returned; p = 1 gives zeros.
    """
    op = "dropout"
    p = _check_float(op, "p", p, 0.0, 1.0)
    training = _check_bool(op, "training", training)
    x = _tensor_arg(x)
    if not training or p == 0.0:
        return x
    xd = x.data
    dtype = xd.dtype
    if p == 1.0:
        mask = np.zeros(xd.shape, dtype)
    else:
        keep = _random.generator().random(xd.shape, dtype=np.float64) >= p  # P(keep) = 1 - p
        mask = keep.astype(dtype)
        mask *= dtype.type(1.0 / (1.0 - p))  # the kept elements scaled by 1/(1 - p)
    y = xd * mask
    if not (_grad_mode.enabled and x.requires_grad):
        return _const(y)

    def backward(gy, own):
        # y = x·m with m = keep/(1 - p)  ->  dL/dx = dL/dy·m
        _accumulate(x, np.multiply(gy, mask, out=gy) if own else gy * mask, True)

    return _node(y, (x,), backward, op)
