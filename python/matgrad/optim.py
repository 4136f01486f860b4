"""Optimizers: SGD (momentum, weight decay) and Adam, updating parameters in place.

The update rules are PyTorch's (and the textbooks'); each is a few vectorised numpy expressions per
parameter. Parameters whose ``.grad`` is None are skipped.
"""

import math

import numpy as np

from .kernels import axpy as _axpy
from .tensor import Tensor, _drop_grad

__all__ = ["Optimizer", "SGD", "Adam"]


def _check_number(name, value, low=0.0, high=None, open_low=False):
    ok = (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
          and math.isfinite(value))
    if ok:
        ok = (value > low if open_low else value >= low) and (high is None or value < high)
    if not ok:
        bound = f"{'>' if open_low else '>='} {low}" + (f" and < {high}" if high is not None else "")
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return float(value)


class Optimizer:
    """Holds the parameters; ``zero_grad()`` drops their gradients, ``step()`` updates them."""

    def __init__(self, params):
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__}: parameter {i} is a {type(p).__name__}, not a Tensor")
            if not p.requires_grad:
                raise ValueError(f"{type(self).__name__}: parameter {i} (shape {p.data.shape}) does not require grad")
            if not p.data.flags.writeable:
                raise ValueError(f"{type(self).__name__}: parameter {i} (shape {p.data.shape}) is read-only")
        self.params = params

    def zero_grad(self):
        """Drop the parameters' gradients (``.grad = None``; an unreferenced buffer is kept for
        the next backward to write into)."""
        for p in self.params:
            _drop_grad(p)

    def step(self):
        raise NotImplementedError


class SGD(Optimizer):
    """g = grad + weight_decay·p;  v = momentum·v + g (v = g at the first step);  p -= lr·v."""

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0):
        super().__init__(params)
        self.lr = _check_number("SGD: lr", lr, open_low=True)
        self.momentum = _check_number("SGD: momentum", momentum)
        self.weight_decay = _check_number("SGD: weight_decay", weight_decay)
        self._velocity = [None] * len(self.params)
        self._scratch = [None] * len(self.params)  # per parameter: no temporaries at each step

    def step(self):
        lr, mu, wd = self.lr, self.momentum, self.weight_decay
        for i, p in enumerate(self.params):
            g = p.grad
            if g is None:
                continue
            if wd:
                s = self._scratch[i]
                if s is None:
                    s = self._scratch[i] = np.empty_like(p.data)
                np.multiply(p.data, wd, out=s)  # g = grad + wd·p: the gradient of (wd/2)·‖p‖²
                s += g
                g = s
            if mu:
                v = self._velocity[i]
                if v is None:
                    v = self._velocity[i] = np.array(g, order="C")  # v = g at the first step
                else:
                    v *= mu  # v = μ·v + g
                    v += g
                g = v
            _axpy(-lr, g, p.data)  # p = p - lr·v, one pass


class Adam(Optimizer):
    """g = grad + weight_decay·p;  m = β1·m + (1-β1)·g;  v = β2·v + (1-β2)·g²;
    p -= lr · m̂ / (√v̂ + eps) with m̂ = m/(1-β1^t), v̂ = v/(1-β2^t), t the parameter's step count."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params)
        self.lr = _check_number("Adam: lr", lr, open_low=True)
        try:
            b1, b2 = betas
        except (TypeError, ValueError):
            raise ValueError(f"Adam: betas must be a pair (beta1, beta2), got {betas!r}") from None
        self.betas = (_check_number("Adam: beta1", b1, high=1.0), _check_number("Adam: beta2", b2, high=1.0))
        self.eps = _check_number("Adam: eps", eps)
        self.weight_decay = _check_number("Adam: weight_decay", weight_decay)
        self._m = [np.zeros_like(p.data) for p in self.params]
        self._v = [np.zeros_like(p.data) for p in self.params]
        self._t = [0] * len(self.params)
        self._scratch = [None] * len(self.params)

    def step(self):
        lr, eps, wd = self.lr, self.eps, self.weight_decay
        b1, b2 = self.betas
        for i, p in enumerate(self.params):
            g = p.grad
            if g is None:
                continue
            m, v, s = self._m[i], self._v[i], self._scratch[i]
            if s is None:
                s = self._scratch[i] = np.empty_like(p.data)
            if wd:
                g = g + wd * p.data  # the gradient of (wd/2)·‖p‖²
            t = self._t[i] = self._t[i] + 1
            m *= b1  # m = β1·m + (1-β1)·g
            np.multiply(g, 1.0 - b1, out=s)
            m += s
            v *= b2  # v = β2·v + (1-β2)·g²
            np.multiply(g, g, out=s)
            s *= 1.0 - b2
            v += s
            # p = p - lr·m̂/(√v̂ + eps) with m̂ = m/(1-β1^t), v̂ = v/(1-β2^t):
            # the same as p - (lr/(1-β1^t))·m / (√v/√(1-β2^t) + eps)
            np.sqrt(v, out=s)
            s *= 1.0 / math.sqrt(1.0 - b2 ** t)
            s += eps
            np.divide(m, s, out=s)
            s *= lr / (1.0 - b1 ** t)
            p.data -= s
