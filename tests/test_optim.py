"""Optimizers against the textbook update formulas, written out independently in float64."""

import math

import numpy as np
import pytest

import matgrad as mg

GRADS = [np.array([[0.5, -1.0], [2.0, 0.25]]), np.array([[-0.3, 0.7], [0.1, -2.0]]),
         np.array([[1.5, 0.0], [-0.5, 0.9]])]
P0 = np.array([[1.0, -2.0], [0.5, 3.0]])


def _run(opt_factory, grads=GRADS):
    p = mg.tensor(P0.copy(), requires_grad=True)
    opt = opt_factory([p])
    data_id = id(p.data)
    for g in grads:
        p.grad = g.copy()
        opt.step()
    assert id(p.data) == data_id  # updated in place
    return p.data


@pytest.mark.parametrize("lr, mu, wd", [(0.1, 0.0, 0.0), (0.1, 0.9, 0.0), (0.05, 0.5, 0.01), (0.2, 0.0, 0.1)])
def test_sgd_matches_the_formula(lr, mu, wd):
    got = _run(lambda ps: mg.optim.SGD(ps, lr=lr, momentum=mu, weight_decay=wd))
    p, v = P0.copy(), None
    for g in GRADS:
        d = g + wd * p
        v = d if v is None else mu * v + d
        p = p - lr * (v if mu else d)
    np.testing.assert_allclose(got, p, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("lr, betas, eps, wd", [(1e-3, (0.9, 0.999), 1e-8, 0.0), (0.1, (0.8, 0.99), 1e-6, 0.05)])
def test_adam_matches_the_formula(lr, betas, eps, wd):
    got = _run(lambda ps: mg.optim.Adam(ps, lr=lr, betas=betas, eps=eps, weight_decay=wd))
    b1, b2 = betas
    p, m, v = P0.copy(), np.zeros_like(P0), np.zeros_like(P0)
    for t, g in enumerate(GRADS, start=1):
        g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1 ** t)
        v_hat = v / (1 - b2 ** t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    np.testing.assert_allclose(got, p, rtol=1e-12, atol=1e-15)


def test_adam_first_step_moves_each_weight_by_about_lr():
    got = _run(lambda ps: mg.optim.Adam(ps, lr=0.01), grads=GRADS[:1])
    np.testing.assert_allclose(np.abs(got - P0), 0.01, rtol=1e-5)


@pytest.mark.parametrize("make", [lambda ps: mg.optim.SGD(ps, lr=0.1, momentum=0.9),
                                  lambda ps: mg.optim.Adam(ps, lr=0.1)])
def test_parameters_without_grad_are_skipped_and_zero_grad(make):
    a = mg.tensor(np.ones(2, np.float32), requires_grad=True)
    b = mg.tensor(np.ones(2, np.float32), requires_grad=True)
    opt = make([a, b])
    a.grad = np.ones(2, np.float32)
    opt.step()
    np.testing.assert_array_equal(b.data, 1.0)
    assert np.all(a.data < 1.0) and a.data.dtype == np.float32
    opt.zero_grad()
    assert a.grad is None and b.grad is None


def test_optimizers_accept_a_generator_of_parameters():
    model = mg.nn.MLP([2, 3, 1])
    assert len(mg.optim.SGD(model.parameters(), lr=0.1).params) == 4
    assert len(mg.optim.Adam(iter(model.parameters())).params) == 4


@pytest.mark.parametrize("make, match", [
    (lambda ps: mg.optim.SGD(ps, lr=0.0), "lr must be a finite number > 0"),
    (lambda ps: mg.optim.SGD(ps, lr=math.nan), "lr"),
    (lambda ps: mg.optim.SGD(ps, lr=0.1, momentum=-0.5), "momentum"),
    (lambda ps: mg.optim.SGD(ps, lr=0.1, weight_decay=-1), "weight_decay"),
    (lambda ps: mg.optim.Adam(ps, betas=(0.9, 1.0)), "beta2"),
    (lambda ps: mg.optim.Adam(ps, betas=0.9), "pair"),
    (lambda ps: mg.optim.Adam(ps, eps=-1e-8), "eps"),
    (lambda ps: mg.optim.SGD([], lr=0.1), "empty"),
    (lambda ps: mg.optim.SGD([mg.tensor([1.0])], lr=0.1), "does not require grad"),
])
def test_bad_hyperparameters(make, match):
    p = mg.tensor([1.0], requires_grad=True)
    with pytest.raises(ValueError, match=match):
        make([p])


def test_non_tensor_and_read_only_parameters():
    with pytest.raises(TypeError, match="not a Tensor"):
        mg.optim.SGD([np.ones(2)], lr=0.1)
    ro = np.ones(2, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        mg.optim.Adam([mg.tensor(ro, requires_grad=True)])
