"""Optimizers: SGD (momentum, Nesterov, weight decay), Adam and RMSprop, updating parameters in
place, and the StepLR learning-rate schedule.

The update rules are PyTorch's (and the textbooks'); each is a few vectorised numpy expressions per
parameter. Parameters whose ``.grad`` is None are skipped.

Every optimizer (and StepLR) has ``state_dict()``, a dict of plain Python values and ndarray copies
(hyper-parameters such as ``lr``, and a list ``state`` with one dict per parameter, in parameter
order), and ``load_state_dict(state)``, which checks every key, type, shape, dtype and the parameter
count before it writes anything, then copies the values in (nothing is shared with ``state``).
``mg.save`` / ``mg.load`` store it in a checkpoint next to the module's parameters. Per-parameter
state, by optimizer (PyTorch's names):

- SGD: ``momentum_buffer``: the velocity, an ndarray, or None before the parameter's first step
  (always None with momentum 0).
- Adam: ``step`` (an int: the parameter's step count), ``exp_avg`` (m), ``exp_avg_sq`` (v).
- RMSprop: ``square_avg`` (v) and ``momentum_buffer`` (None before the first step, and always with
  momentum 0).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Tuple

import numpy as np

from .kernels import axpy as _axpy
from .tensor import Tensor, _drop_grad

__all__ = ["Optimizer", "SGD", "Adam", "RMSprop", "StepLR"]


def _check_number(name: str, value: Any, low: float = 0.0, high: Optional[float] = None,
                  open_low: bool = False) -> float:
    ok = (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
          and math.isfinite(value))
    if ok:
        ok = (value > low if open_low else value >= low) and (high is None or value < high)
    if not ok:
        bound = f"{'>' if open_low else '>='} {low}" + (f" and < {high}" if high is not None else "")
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return float(value)


def _check_keys(where: str, got: Any, expected: Sequence[str]) -> None:
    """KeyError (the wording of Module.load_state_dict) unless mapping ``got`` has exactly the keys
    ``expected``."""
    if not isinstance(got, Mapping):
        raise TypeError(f"{where} must be a dict, got {type(got).__name__}")
    missing = [k for k in expected if k not in got]
    unexpected = [k for k in got if k not in expected]
    if missing or unexpected:
        raise KeyError(f"{where}: missing keys {missing}, unexpected keys {unexpected}")


def _check_count(where: str, value: Any, low: int) -> int:
    """An int (not a bool) >= low, as a Python int."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{where} must be an integer >= {low}, got {value!r}")
    return int(value)


def _check_flag(where: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{where} must be True or False, got {value!r}")
    return bool(value)


def _copy_state_array(where: str, value: Any, param: Tensor, index: int,
                      allow_none: bool = False) -> Optional[np.ndarray]:
    """A C-contiguous copy of ``value`` in ``param``'s dtype, once its type (an ndarray; None too
    when ``allow_none``), shape (the parameter's) and dtype kind (floating point) are checked."""
    if value is None and allow_none:
        return None
    if not isinstance(value, np.ndarray):
        wanted = "an ndarray or None" if allow_none else "an ndarray"
        raise TypeError(f"{where} must be {wanted}, got {type(value).__name__}")
    if value.shape != param.data.shape:
        raise ValueError(f"{where} has shape {value.shape}, parameter {index}'s is {param.data.shape}")
    if value.dtype.kind != "f":
        raise TypeError(f"{where} has dtype {value.dtype}; expected floating point")
    return np.array(value, dtype=param.data.dtype, order="C", copy=True)


def _copy_or_none(a: Optional[np.ndarray]) -> Optional[np.ndarray]:
    return None if a is None else a.copy()


class Optimizer:
    """Holds the parameters; ``zero_grad()`` drops their gradients, ``step()`` updates them."""

    lr: float  # set by every subclass (StepLR changes it)

    def __init__(self, params: Iterable[Tensor]) -> None:
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

    def zero_grad(self) -> None:
        """Drop the parameters' gradients (``.grad = None``; an unreferenced buffer is kept for
        the next backward to write into)."""
        for p in self.params:
            _drop_grad(p)

    def step(self) -> None:
        raise NotImplementedError

    # ---- state ---------------------------------------------------------------------------------
    # A subclass lists its hyper-parameters in _HYPER and its per-parameter keys in _PARAM_KEYS,
    # and defines _hyper_state, _check_hyper, _param_state, _check_param_state and _install.
    _HYPER: Tuple[str, ...] = ()
    _PARAM_KEYS: Tuple[str, ...] = ()

    if TYPE_CHECKING:  # what each subclass defines (signatures only)
        def _hyper_state(self) -> Dict[str, Any]: ...
        def _check_hyper(self, where: str, state: Mapping[str, Any]) -> Dict[str, Any]: ...
        def _param_state(self, i: int) -> Dict[str, Any]: ...
        def _check_param_state(self, at: str, i: int, p: Tensor, entry: Mapping[str, Any],
                               hyper: Dict[str, Any]) -> Any: ...
        def _install(self, hyper: Dict[str, Any], per_param: List[Any]) -> None: ...

    def state_dict(self) -> Dict[str, Any]:
        """The optimizer's state as plain values and ndarray copies: ``type`` (the class name),
        the hyper-parameters (``lr``, ...) and ``state``, a list with one dict per parameter (see
        the module docstring). Changing the result changes nothing in the optimizer."""
        if not self._PARAM_KEYS:
            raise NotImplementedError(f"{type(self).__name__} does not define state_dict")
        state: Dict[str, Any] = {"type": type(self).__name__}
        state.update(self._hyper_state())
        state["state"] = [self._param_state(i) for i in range(len(self.params))]
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a ``state_dict()`` of the same optimizer class over as many parameters of the
        same shapes: the hyper-parameters (lr included) and every parameter's state. Every key,
        type, value, shape and dtype kind is checked before anything is written (KeyError,
        TypeError or ValueError, nothing changed); arrays are copied, in the parameters' dtype."""
        self._install(*self._prepare_state(state))

    def _prepare_state(self, state: Mapping[str, Any]) -> Tuple[Dict[str, Any], List[Any]]:
        """The checked, copied contents of ``state``, ready for ``_install``; writes nothing."""
        name = type(self).__name__
        where = f"{name}.load_state_dict"
        if not self._PARAM_KEYS:
            raise NotImplementedError(f"{name} does not define load_state_dict")
        kind = state.get("type") if isinstance(state, Mapping) else None
        if kind is not None and not (isinstance(kind, str) and kind == name):  # before the keys
            raise ValueError(f"{where}: the state is for {state['type']!r}, this optimizer is a {name}")
        _check_keys(where, state, ("type",) + self._HYPER + ("state",))
        hyper = self._check_hyper(where, state)
        entries = state["state"]
        if isinstance(entries, (str, bytes)) or not isinstance(entries, Sequence):
            raise TypeError(f"{where}: state['state'] must be a list, got {type(entries).__name__}")
        if len(entries) != len(self.params):
            raise ValueError(f"{where}: the state is for {len(entries)} parameters, "
                             f"this optimizer has {len(self.params)}")
        per_param = []
        for i, (p, entry) in enumerate(zip(self.params, entries)):
            at = f"{where}: state[{i}]"
            _check_keys(at, entry, self._PARAM_KEYS)
            per_param.append(self._check_param_state(at, i, p, entry, hyper))
        return hyper, per_param


class SGD(Optimizer):
    """g = grad + weight_decay·p;  v = momentum·v + g (v = g at the first step);  p -= lr·v.

    With ``nesterov=True`` (which needs momentum > 0), PyTorch's Nesterov form:
    p -= lr·(g + momentum·v), with v updated first.
    """

    def __init__(self, params: Iterable[Tensor], lr: float, momentum: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False) -> None:
        super().__init__(params)
        self.lr = _check_number("SGD: lr", lr, open_low=True)
        self.momentum = _check_number("SGD: momentum", momentum)
        self.weight_decay = _check_number("SGD: weight_decay", weight_decay)
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"SGD: nesterov must be True or False, got {nesterov!r}")
        if nesterov and self.momentum <= 0:
            raise ValueError(f"SGD: nesterov requires momentum > 0, got momentum={momentum!r}")
        self.nesterov = bool(nesterov)
        self._velocity: List[Optional[np.ndarray]] = [None] * len(self.params)
        self._scratch: List[Optional[np.ndarray]] = [None] * len(self.params)  # per parameter: no temporaries

    def step(self) -> None:
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

    _HYPER = ("lr", "momentum", "weight_decay", "nesterov")
    _PARAM_KEYS = ("momentum_buffer",)

    def _hyper_state(self) -> Dict[str, Any]:
        return {"lr": self.lr, "momentum": self.momentum, "weight_decay": self.weight_decay,
                "nesterov": self.nesterov}

    def _check_hyper(self, where: str, state: Mapping[str, Any]) -> Dict[str, Any]:
        hyper = {"lr": _check_number(f"{where}: lr", state["lr"], open_low=True),
                 "momentum": _check_number(f"{where}: momentum", state["momentum"]),
                 "weight_decay": _check_number(f"{where}: weight_decay", state["weight_decay"]),
                 "nesterov": _check_flag(f"{where}: nesterov", state["nesterov"])}
        if hyper["nesterov"] and hyper["momentum"] <= 0:
            raise ValueError(f"{where}: nesterov requires momentum > 0, got momentum={state['momentum']!r}")
        return hyper

    def _param_state(self, i: int) -> Dict[str, Any]:
        return {"momentum_buffer": _copy_or_none(self._velocity[i])}

    def _check_param_state(self, at: str, i: int, p: Tensor, entry: Mapping[str, Any],
                           hyper: Dict[str, Any]) -> Any:
        buf = _copy_state_array(f"{at}['momentum_buffer']", entry["momentum_buffer"], p, i, allow_none=True)
        if buf is not None and not hyper["momentum"]:
            raise ValueError(f"{at}['momentum_buffer'] must be None with momentum 0")
        return buf

    def _install(self, hyper: Dict[str, Any], buffers: List[Any]) -> None:
        self.lr, self.momentum = hyper["lr"], hyper["momentum"]
        self.weight_decay, self.nesterov = hyper["weight_decay"], hyper["nesterov"]
        self._velocity = buffers


class Adam(Optimizer):
    """g = grad + weight_decay·p;  m = β1·m + (1-β1)·g;  v = β2·v + (1-β2)·g²;
    p -= lr · m̂ / (√v̂ + eps) with m̂ = m/(1-β1^t), v̂ = v/(1-β2^t), t the parameter's step count."""

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-3, betas: Tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
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
        self._scratch: List[Optional[np.ndarray]] = [None] * len(self.params)

    def step(self) -> None:
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

    _HYPER = ("lr", "betas", "eps", "weight_decay")
    _PARAM_KEYS = ("step", "exp_avg", "exp_avg_sq")

    def _hyper_state(self) -> Dict[str, Any]:
        return {"lr": self.lr, "betas": list(self.betas), "eps": self.eps, "weight_decay": self.weight_decay}

    def _check_hyper(self, where: str, state: Mapping[str, Any]) -> Dict[str, Any]:
        betas = state["betas"]
        if isinstance(betas, (str, bytes)) or not isinstance(betas, Sequence) or len(betas) != 2:
            raise ValueError(f"{where}: betas must be a pair (beta1, beta2), got {betas!r}")
        return {"lr": _check_number(f"{where}: lr", state["lr"], open_low=True),
                "betas": (_check_number(f"{where}: beta1", betas[0], high=1.0),
                          _check_number(f"{where}: beta2", betas[1], high=1.0)),
                "eps": _check_number(f"{where}: eps", state["eps"]),
                "weight_decay": _check_number(f"{where}: weight_decay", state["weight_decay"])}

    def _param_state(self, i: int) -> Dict[str, Any]:
        return {"step": self._t[i], "exp_avg": self._m[i].copy(), "exp_avg_sq": self._v[i].copy()}

    def _check_param_state(self, at: str, i: int, p: Tensor, entry: Mapping[str, Any],
                           hyper: Dict[str, Any]) -> Any:
        return (_check_count(f"{at}['step']", entry["step"], 0),
                _copy_state_array(f"{at}['exp_avg']", entry["exp_avg"], p, i),
                _copy_state_array(f"{at}['exp_avg_sq']", entry["exp_avg_sq"], p, i))

    def _install(self, hyper: Dict[str, Any], per_param: List[Any]) -> None:
        self.lr, self.betas = hyper["lr"], hyper["betas"]
        self.eps, self.weight_decay = hyper["eps"], hyper["weight_decay"]
        self._t = [t for t, _, _ in per_param]
        self._m = [m for _, m, _ in per_param]
        self._v = [v for _, _, v in per_param]


class RMSprop(Optimizer):
    """PyTorch's RMSprop: g = grad + weight_decay·p;  v = α·v + (1-α)·g²  (v starts at 0);
    p -= lr·g/(√v + eps), or with momentum μ > 0: b = μ·b + g/(√v + eps) (b starts at 0), p -= lr·b."""

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0) -> None:
        super().__init__(params)
        self.lr = _check_number("RMSprop: lr", lr, open_low=True)
        self.alpha = _check_number("RMSprop: alpha", alpha, high=1.0)
        self.eps = _check_number("RMSprop: eps", eps)
        self.weight_decay = _check_number("RMSprop: weight_decay", weight_decay)
        self.momentum = _check_number("RMSprop: momentum", momentum)
        self._v = [np.zeros_like(p.data) for p in self.params]
        self._buf: List[Optional[np.ndarray]] = [None] * len(self.params)  # made at a parameter's first step
        self._scratch: List[Optional[np.ndarray]] = [None] * len(self.params)

    def step(self) -> None:
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
                if b is None:  # b starts at 0
                    b = self._buf[i] = np.zeros_like(p.data)
                b *= mu  # b = μ·b + g/(√v + eps)
                b += s
                s = b
            _axpy(-lr, s, p.data)  # p = p - lr·step

    _HYPER = ("lr", "alpha", "eps", "weight_decay", "momentum")
    _PARAM_KEYS = ("square_avg", "momentum_buffer")

    def _hyper_state(self) -> Dict[str, Any]:
        return {"lr": self.lr, "alpha": self.alpha, "eps": self.eps, "weight_decay": self.weight_decay,
                "momentum": self.momentum}

    def _check_hyper(self, where: str, state: Mapping[str, Any]) -> Dict[str, Any]:
        return {"lr": _check_number(f"{where}: lr", state["lr"], open_low=True),
                "alpha": _check_number(f"{where}: alpha", state["alpha"], high=1.0),
                "eps": _check_number(f"{where}: eps", state["eps"]),
                "weight_decay": _check_number(f"{where}: weight_decay", state["weight_decay"]),
                "momentum": _check_number(f"{where}: momentum", state["momentum"])}

    def _param_state(self, i: int) -> Dict[str, Any]:
        return {"square_avg": self._v[i].copy(), "momentum_buffer": _copy_or_none(self._buf[i])}

    def _check_param_state(self, at: str, i: int, p: Tensor, entry: Mapping[str, Any],
                           hyper: Dict[str, Any]) -> Any:
        v = _copy_state_array(f"{at}['square_avg']", entry["square_avg"], p, i)
        buf = _copy_state_array(f"{at}['momentum_buffer']", entry["momentum_buffer"], p, i, allow_none=True)
        if buf is not None and not hyper["momentum"]:
            raise ValueError(f"{at}['momentum_buffer'] must be None with momentum 0")
        return v, buf

    def _install(self, hyper: Dict[str, Any], per_param: List[Any]) -> None:
        self.lr, self.alpha, self.eps = hyper["lr"], hyper["alpha"], hyper["eps"]
        self.weight_decay, self.momentum = hyper["weight_decay"], hyper["momentum"]
        self._v = [v for v, _ in per_param]
        self._buf = [b for _, b in per_param]


class StepLR:
    """Multiply the optimizer's lr by gamma every ``step_size`` epochs: call ``step()`` once per
    epoch; after e calls, lr = initial_lr · gamma^(e // step_size) (PyTorch's StepLR)."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"StepLR: optimizer must be a matgrad Optimizer, got {type(optimizer).__name__}")
        if isinstance(step_size, bool) or not isinstance(step_size, (int, np.integer)) or step_size < 1:
            raise ValueError(f"StepLR: step_size must be a positive integer, got {step_size!r}")
        self.optimizer = optimizer
        self.step_size = int(step_size)
        self.gamma = _check_number("StepLR: gamma", gamma, open_low=True)
        self.base_lr = float(optimizer.lr)
        self.last_epoch = 0

    def step(self) -> None:
        """End of an epoch: set the optimizer's lr for the next one."""
        self.last_epoch += 1
        self.optimizer.lr = self.base_lr * self.gamma ** (self.last_epoch // self.step_size)

    def get_last_lr(self) -> List[float]:
        """The learning rates now in use, as a list (one per parameter group, as in PyTorch: matgrad's
        optimizers have one)."""
        return [self.optimizer.lr]

    def state_dict(self) -> Dict[str, Any]:
        """``{"type": "StepLR", "step_size", "gamma", "base_lrs": [initial lr], "last_epoch"}``:
        plain values (JSON-able: ``mg.save(..., extra={"scheduler": sched.state_dict()})``)."""
        return {"type": "StepLR", "step_size": self.step_size, "gamma": self.gamma,
                "base_lrs": [self.base_lr], "last_epoch": self.last_epoch}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a ``state_dict()``, every key and value checked first (KeyError, TypeError or
        ValueError, nothing changed). The optimizer's lr is left alone: the optimizer's own state
        holds the lr in use."""
        where = "StepLR.load_state_dict"
        kind = state.get("type") if isinstance(state, Mapping) else None
        if kind is not None and not (isinstance(kind, str) and kind == "StepLR"):
            raise ValueError(f"{where}: the state is for {state['type']!r}, this scheduler is a StepLR")
        _check_keys(where, state, ("type", "step_size", "gamma", "base_lrs", "last_epoch"))
        step_size = _check_count(f"{where}: step_size", state["step_size"], 1)
        gamma = _check_number(f"{where}: gamma", state["gamma"], open_low=True)
        base_lrs = state["base_lrs"]
        if isinstance(base_lrs, (str, bytes)) or not isinstance(base_lrs, Sequence) or len(base_lrs) != 1:
            raise ValueError(f"{where}: base_lrs must be a list of one learning rate, got {base_lrs!r}")
        base_lr = _check_number(f"{where}: base_lrs[0]", base_lrs[0], open_low=True)
        last_epoch = _check_count(f"{where}: last_epoch", state["last_epoch"], 0)
        self.step_size, self.gamma, self.base_lr, self.last_epoch = step_size, gamma, base_lr, last_epoch
