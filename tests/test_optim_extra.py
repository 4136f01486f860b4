"""RMSprop, SGD with Nesterov momentum, StepLR and clip_grad_norm: against the formulas written out
here, and (when torch is importable) against torch.optim / torch.nn.utils over a few steps."""

import math

import numpy as np
import pytest

import matgrad as mg

RNG = np.random.default_rng(5)
P0 = RNG.standard_normal((3, 2))
GRADS = [RNG.standard_normal((3, 2)) for _ in range(5)]


def _run(make, grads=GRADS):
    p = mg.tensor(P0.copy(), requires_grad=True)
    opt = make([p])
    data_id = id(p.data)
    traj = []
    for g in grads:
        p.grad = g.copy()
        opt.step()
        traj.append(p.data.copy())
    assert id(p.data) == data_id  # updated in place
    return traj


def _torch_run(torch, make, grads=GRADS):
    p = torch.tensor(P0.copy(), requires_grad=True)
    opt = make([p])
    traj = []
    for g in grads:
        p.grad = torch.tensor(g)
        opt.step()
        traj.append(p.detach().numpy().copy())
    return traj


RMSPROP_CASES = [dict(lr=1e-2), dict(lr=0.05, alpha=0.9, eps=1e-6), dict(lr=0.01, weight_decay=0.1),
                 dict(lr=0.02, momentum=0.8), dict(lr=0.03, alpha=0.5, momentum=0.5, weight_decay=0.05)]


@pytest.mark.parametrize("kw", RMSPROP_CASES)
def test_rmsprop_matches_the_formula(kw):
    got = _run(lambda ps: mg.optim.RMSprop(ps, **kw))
    lr, alpha, eps = kw["lr"], kw.get("alpha", 0.99), kw.get("eps", 1e-8)
    wd, mu = kw.get("weight_decay", 0.0), kw.get("momentum", 0.0)
    p, v, b = P0.copy(), np.zeros_like(P0), np.zeros_like(P0)
    for g, ours in zip(GRADS, got):
        g = g + wd * p
        v = alpha * v + (1 - alpha) * g * g
        step = g / (np.sqrt(v) + eps)
        if mu:
            b = mu * b + step
            step = b
        p = p - lr * step
        np.testing.assert_allclose(ours, p, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("kw", RMSPROP_CASES)
def test_rmsprop_matches_torch(kw):
    torch = pytest.importorskip("torch")
    ours = _run(lambda ps: mg.optim.RMSprop(ps, **kw))
    theirs = _torch_run(torch, lambda ps: torch.optim.RMSprop(ps, **kw))
    np.testing.assert_allclose(np.array(ours), np.array(theirs), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("lr, mu, wd", [(0.1, 0.9, 0.0), (0.05, 0.5, 0.01)])
def test_sgd_nesterov_matches_the_formula(lr, mu, wd):
    got = _run(lambda ps: mg.optim.SGD(ps, lr=lr, momentum=mu, weight_decay=wd, nesterov=True))
    p, v = P0.copy(), None
    for g, ours in zip(GRADS, got):
        d = g + wd * p
        v = d.copy() if v is None else mu * v + d
        p = p - lr * (d + mu * v)
        np.testing.assert_allclose(ours, p, rtol=1e-13, atol=1e-15)
    plain = _run(lambda ps: mg.optim.SGD(ps, lr=lr, momentum=mu, weight_decay=wd))
    assert not np.allclose(plain[-1], got[-1])


@pytest.mark.parametrize("lr, mu, wd", [(0.1, 0.9, 0.0), (0.05, 0.5, 0.01)])
def test_sgd_nesterov_matches_torch(lr, mu, wd):
    torch = pytest.importorskip("torch")
    ours = _run(lambda ps: mg.optim.SGD(ps, lr=lr, momentum=mu, weight_decay=wd, nesterov=True))
    theirs = _torch_run(torch, lambda ps: torch.optim.SGD(ps, lr=lr, momentum=mu, weight_decay=wd, nesterov=True))
    np.testing.assert_allclose(np.array(ours), np.array(theirs), rtol=1e-12, atol=1e-14)


def test_nesterov_does_not_write_the_gradient():
    p = mg.tensor(np.ones(3), requires_grad=True)
    g = np.array([1.0, 2.0, 3.0])
    p.grad = g
    opt = mg.optim.SGD([p], lr=0.1, momentum=0.9, nesterov=True)
    opt.step()
    opt.step()
    np.testing.assert_array_equal(g, [1.0, 2.0, 3.0])


def test_step_lr_schedule():
    p = mg.tensor(np.ones(2), requires_grad=True)
    opt = mg.optim.SGD([p], lr=0.5)
    sched = mg.optim.StepLR(opt, step_size=3, gamma=0.5)
    assert sched.get_last_lr() == [0.5]
    lrs = []
    for _ in range(8):
        p.grad = np.ones(2)
        opt.step()
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    expected = [0.5 * 0.5 ** (e // 3) for e in range(1, 9)]
    np.testing.assert_allclose(lrs, expected, rtol=1e-15)
    assert opt.lr == lrs[-1]
    # p moved by Σ lr over the epochs: lr was 0.5 for epochs 0-2, 0.25 for 3-5, 0.125 for 6-7
    np.testing.assert_allclose(p.data, 1.0 - (3 * 0.5 + 3 * 0.25 + 2 * 0.125), rtol=1e-14)


def test_step_lr_matches_torch():
    torch = pytest.importorskip("torch")
    p = mg.tensor(P0.copy(), requires_grad=True)
    tp = torch.tensor(P0.copy(), requires_grad=True)
    opt, topt = mg.optim.Adam([p], lr=0.1), torch.optim.Adam([tp], lr=0.1)
    sched, tsched = mg.optim.StepLR(opt, 2, gamma=0.3), torch.optim.lr_scheduler.StepLR(topt, 2, gamma=0.3)
    for g in GRADS:
        p.grad, tp.grad = g.copy(), torch.tensor(g)
        opt.step()
        topt.step()
        sched.step()
        tsched.step()
        np.testing.assert_allclose(sched.get_last_lr(), tsched.get_last_lr(), rtol=1e-15)
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-12, atol=1e-14)


# --------------------------------------------------------------------------------------------
# clip_grad_norm
# --------------------------------------------------------------------------------------------


def _params_with_grads(grads):
    ps = []
    for g in grads:
        p = mg.tensor(np.zeros_like(g), requires_grad=True)
        (p * mg.tensor(np.zeros_like(g))).sum().backward()  # an owned gradient buffer ...
        p.grad[...] = g  # ... holding g
        ps.append(p)
    return ps


def test_clip_grad_norm_scales_when_above_and_returns_the_norm():
    grads = [np.array([3.0, 0.0]), np.array([[0.0, 4.0], [0.0, 0.0]])]
    ps = _params_with_grads(grads)
    buffers = [p.grad for p in ps]
    total = mg.nn.clip_grad_norm(ps, 1.0)
    assert isinstance(total, float) and total == pytest.approx(5.0, rel=1e-15)
    for p, g, buf in zip(ps, grads, buffers):
        assert p.grad is buf  # in place
        np.testing.assert_allclose(p.grad, g / (5.0 + 1e-6), rtol=1e-14)
    new_total = math.sqrt(sum(float((p.grad ** 2).sum()) for p in ps))
    assert new_total == pytest.approx(1.0, rel=1e-5)


def test_clip_grad_norm_below_the_limit_and_without_grads():
    grads = [np.array([0.3, 0.4])]
    ps = _params_with_grads(grads)
    skipped = mg.tensor(np.ones(3), requires_grad=True)  # no grad: skipped
    assert mg.nn.clip_grad_norm(ps + [skipped], 10.0) == pytest.approx(0.5, rel=1e-15)
    np.testing.assert_array_equal(ps[0].grad, [0.3, 0.4])
    assert skipped.grad is None
    assert mg.nn.clip_grad_norm([skipped], 1.0) == 0.0


def test_clip_grad_norm_never_writes_a_borrowed_gradient():
    p = mg.tensor(np.zeros(2), requires_grad=True)
    g = np.array([6.0, 8.0])
    p.grad = g  # assigned by hand: borrowed
    assert mg.nn.clip_grad_norm(p, 5.0) == pytest.approx(10.0)
    np.testing.assert_array_equal(g, [6.0, 8.0])
    np.testing.assert_allclose(p.grad, g * 5.0 / (10.0 + 1e-6), rtol=1e-14)


def test_clip_grad_norm_float32_keeps_dtype():
    p = mg.tensor(np.zeros(4, np.float32), requires_grad=True)
    (p * 2.0).sum().backward()
    total = mg.nn.clip_grad_norm([p], 1.0)
    assert total == pytest.approx(4.0, rel=1e-6)
    assert p.grad.dtype == np.float32
    np.testing.assert_allclose(p.grad, 0.5, rtol=1e-5)


@pytest.mark.parametrize("max_norm", [0.5, 3.0, 100.0])
def test_clip_grad_norm_matches_torch(max_norm):
    torch = pytest.importorskip("torch")
    grads = [RNG.standard_normal((3, 2)), RNG.standard_normal(4)]
    ps = _params_with_grads(grads)
    tps = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for tp, g in zip(tps, grads):
        tp.grad = torch.tensor(g)
    total = mg.nn.clip_grad_norm(ps, max_norm)
    ttotal = torch.nn.utils.clip_grad_norm_(tps, max_norm)
    assert total == pytest.approx(float(ttotal), rel=1e-14)
    for p, tp in zip(ps, tps):
        np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-14)


# --------------------------------------------------------------------------------------------
# bad arguments
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("make, exc, match", [
    (lambda ps: mg.optim.SGD(ps, lr=0.1, nesterov=True), ValueError, "nesterov requires momentum > 0"),
    (lambda ps: mg.optim.SGD(ps, lr=0.1, momentum=0.0, nesterov=True), ValueError, "nesterov requires momentum"),
    (lambda ps: mg.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov="yes"), TypeError, "nesterov must be True or False"),
    (lambda ps: mg.optim.RMSprop(ps, lr=0.0), ValueError, "RMSprop: lr must be a finite number > 0"),
    (lambda ps: mg.optim.RMSprop(ps, alpha=1.5), ValueError, "RMSprop: alpha"),
    (lambda ps: mg.optim.RMSprop(ps, alpha=-0.1), ValueError, "RMSprop: alpha"),
    (lambda ps: mg.optim.RMSprop(ps, eps=-1e-8), ValueError, "RMSprop: eps"),
    (lambda ps: mg.optim.RMSprop(ps, weight_decay=-1.0), ValueError, "RMSprop: weight_decay"),
    (lambda ps: mg.optim.RMSprop(ps, momentum=math.nan), ValueError, "RMSprop: momentum"),
    (lambda ps: mg.optim.RMSprop([]), ValueError, "empty"),
    (lambda ps: mg.optim.StepLR(mg.optim.SGD(ps, lr=0.1), step_size=0), ValueError, "step_size must be a positive"),
    (lambda ps: mg.optim.StepLR(mg.optim.SGD(ps, lr=0.1), step_size=2.0), ValueError, "step_size"),
    (lambda ps: mg.optim.StepLR(mg.optim.SGD(ps, lr=0.1), 2, gamma=0.0), ValueError, "StepLR: gamma"),
    (lambda ps: mg.optim.StepLR(object(), 2), TypeError, "StepLR: optimizer must be"),
    (lambda ps: mg.nn.clip_grad_norm(ps, 0.0), ValueError, "max_norm must be a finite number > 0"),
    (lambda ps: mg.nn.clip_grad_norm(ps, math.inf), ValueError, "max_norm"),
    (lambda ps: mg.nn.clip_grad_norm([np.ones(2)], 1.0), TypeError, "not a Tensor"),
])
def test_bad_arguments(make, exc, match):
    p = mg.tensor([1.0], requires_grad=True)
    with pytest.raises(exc, match=match):
        make([p])


def test_rmsprop_skips_parameters_without_grad_and_keeps_float32():
    a = mg.tensor(np.ones(2, np.float32), requires_grad=True)
    b = mg.tensor(np.ones(2, np.float32), requires_grad=True)
    opt = mg.optim.RMSprop([a, b], lr=0.01, momentum=0.9)
    a.grad = np.ones(2, np.float32)
    opt.step()
    np.testing.assert_array_equal(b.data, 1.0)
    assert np.all(a.data < 1.0) and a.data.dtype == np.float32
    # first step: v = (1-α)·g², so the step is lr·g/√((1-α)·g²) = lr/√0.01 = 0.1
    np.testing.assert_allclose(a.data, 0.9, rtol=1e-5)
