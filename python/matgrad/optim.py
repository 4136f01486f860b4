"""Optimizers: SGD (momentum, Nesterov, weight decay), Adam and RMSprop, updating parameters in
place, and the StepLR learning-rate schedule.

The update rules are PyTorch's (and the textbooks'); each is a few vectorised numpy expressions per
parameter. Parameters whose ``.grad`` is None are skipped.
"""

import math

import numpy as np

from .kernels import axpy as _axpy
from .tensor import Tensor, _drop_grad

__all__ = ["Optimizer", "SGD", "Adam", "RMSprop", "StepLR"]


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
    """g = grad + weight_decay·p;  v = momentum·v + g (v = g at the first step);  p -= lr·v.

    With ``nesterov=True`` (which needs momentum > 0), PyTorch's Nesterov form:
    p -= lr·(g + momentum·v), with v updated first.
    """

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(params)
        self.lr = _check_number("SGD: lr", lr, open_low=True)
        self.momentum = _check_number("SGD: momentum", momentum)
        self.weight_decay = _check_number("SGD: weight_decay", weight_decay)
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"SGD: nesterov must be True or False, got {nesterov!r}")
        if nesterov and self.momentum <= 0:
            raise ValueError(f"SGD: nesterov requires momentum > 0, got momentum={momentum!r}")
        self.nesterov = bool(nesterov)
        self._velocity = [None] * len(self.params)
        self._scratch = [None] * len(self.params)  # per parameter: no temporaries at each step

    def step(self):
        lr, mu, wd, nesterov = self.lr, self.momentum, self.weight_decay, self.nesterov
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
                if nesterov:  # g = g + μ·v (after the update of v)
                    s = self._scratch[i]
                    if s is None:
                        s = self._scratch[i] = np.empty_like(p.data)
                    if g is not s:
                        np.copyto(s, g)
                    _axpy(mu, v, s)
                    g = s
                else:
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


class RMSprop(Optimizer):
    """PyTorch's RMSprop: g = grad + weight_decay·p;  v = α·v + (1-α)·g²  (v starts at 0);
    p -= lr·g/(√v + eps), or with momentum μ > 0: b = μ·b + g/(√v + eps) (b starts at 0), p -= lr·b."""

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0):
        super().__init__(params)
        self.lr = _check_number("RMSprop: lr", lr, open_low=True)
        self.alpha = _check_number("RMSprop: alpha", alpha, high=1.0)
        self.eps = _check_number("RMSprop: eps", eps)
        self.weight_decay = _check_number("RMSprop: weight_decay", weight_decay)
        self.momentum = _check_number("RMSprop: momentum", momentum)
        self._v = [np.zeros_like(p.data) for p in self.params]
        self._buf = [np.zeros_like(p.data) for p in self.params] if self.momentum else None
        self._scratch = [None] * len(self.params)

    def step(self):
        lr, alpha, eps, wd, mu = self.lr, self.alpha, self.eps, self.weight_decay, self.momentum
        for i, p in enumerate(self.params):
            g = p.grad
            if g is None:
                continue
            v, s = self._v[i], self._scratch[i]
            if s is None:
                s = self._scratch[i] = np.empty_like(p.data)
            if wd:
                g = g + wd * p.data  # the gradient of (wd/2)·‖p‖²
            v *= alpha  # v = α·v + (1-α)·g²
            np.multiply(g, g, out=s)
            s *= 1.0 - alpha
            v += s
            np.sqrt(v, out=s)  # s = g/(√v + eps)
            s += eps
            np.divide(g, s, out=s)
            if mu:
                b = self._buf[i]
                b *= mu  # b = μ·b + g/(√v + eps)
                b += s
                s = b
            _axpy(-lr, s, p.data)  # p = p - lr·step


class StepLR:
    """Multiply the optimizer's lr by gamma every ``step_size`` epochs: call ``step()`` once per
    epoch; after e calls, lr = initial_lr · gamma^(e // step_size) (PyTorch's StepLR)."""

    def __init__(self, optimizer, step_size, gamma=0.1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"StepLR: optimizer must be a matgrad Optimizer, got {type(optimizer).__name__}")
        if isinstance(step_size, bool) or not isinstance(step_size, (int, np.integer)) or step_size < 1:
            raise ValueError(f"StepLR: step_size must be a positive integer, got {step_size!r}")
        self.optimizer = optimizer
        self.step_size = int(step_size)
        self.gamma = _check_number("StepLR: gamma", gamma, open_low=True)
        self.base_lr = float(optimizer.lr)
        self.last_epoch = 0

    def step(self):
        """End of an epoch: set the optimizer's lr for the next one."""
        self.last_epoch += 1
        self.optimizer.lr = self.base_lr * self.gamma ** (self.last_epoch // self.step_size)

    def get_last_lr(self):
        """The learning rates now in use, as a list (one per parameter group, as in PyTorch: matgrad's
        optimizers have one)."""
        return [self.optimizer.lr]
