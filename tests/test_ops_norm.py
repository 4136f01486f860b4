"""batch_norm, layer_norm and dropout: gradcheck, cs231n's statistical checks, the running-statistics
update, errors, and (when torch is importable) parity with torch.nn.functional in float64."""

import math

import numpy as np
import pytest

import matgrad as mg


def _t(a, requires_grad=True):
    return mg.tensor(np.array(a), requires_grad=requires_grad)


def _bn_inputs(rng, shape):
    d = shape[1]
    x = _t(rng.standard_normal(shape) * 2.0 + 0.5)
    gamma = _t(rng.uniform(0.5, 1.5, d))
    beta = _t(rng.standard_normal(d))
    return x, gamma, beta


# --------------------------------------------------------------------------------------------
# gradcheck (float64)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(6, 4), (3, 2, 3, 2)])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradcheck(rng, shape, training):
    x, gamma, beta = _bn_inputs(rng, shape)
    d = shape[1]
    rm, rv = rng.standard_normal(d), rng.uniform(0.5, 2.0, d)
    # training mode ignores (and updates) the running statistics: fresh copies on every call
    # keep the eval-mode ones fixed, as the finite differences need
    assert mg.gradcheck(lambda x, g, b: mg.batch_norm(x, g, b, rm.copy(), rv.copy(), training), x, gamma, beta)
    assert mg.gradcheck(lambda x: mg.batch_norm(x, None, None, rm.copy(), rv.copy(), training), x)


def test_batch_norm_gradcheck_of_gamma_and_beta_alone(rng):
    x, gamma, beta = _bn_inputs(rng, (5, 3))
    x.requires_grad = False
    assert mg.gradcheck(lambda g, b: mg.batch_norm(x, g, b, None, None, True), gamma, beta)


@pytest.mark.parametrize("shape", [(5, 4), (2, 3, 6), (7,)])
def test_layer_norm_gradcheck(rng, shape):
    d = shape[-1]
    x = _t(rng.standard_normal(shape) * 3.0 - 1.0)
    gamma, beta = _t(rng.uniform(0.5, 1.5, d)), _t(rng.standard_normal(d))
    assert mg.gradcheck(lambda x, g, b: mg.layer_norm(x, g, b), x, gamma, beta)
    assert mg.gradcheck(lambda x: mg.layer_norm(x, None, None), x)


@pytest.mark.parametrize("p", [0.3, 0.75, 1.0])
def test_dropout_gradcheck_with_a_fixed_mask(rng, p):
    x = _t(rng.standard_normal((6, 5)))

    def fn(x):
        mg.manual_seed(7)  # the same mask on every call
        return mg.dropout(x, p, True)

    assert mg.gradcheck(fn, x)


def test_a_norm_is_one_node(rng):
    x, gamma, beta = _bn_inputs(rng, (4, 3))
    y = mg.batch_norm(x, gamma, beta, np.zeros(3), np.ones(3), True)
    assert y._op == "batch_norm" and set(map(id, y._prev)) == {id(x), id(gamma), id(beta)}
    z = mg.layer_norm(x, gamma, beta)
    assert z._op == "layer_norm" and len(z._prev) == 3


# --------------------------------------------------------------------------------------------
# cs231n's checks, references computed here
# --------------------------------------------------------------------------------------------


def test_train_mode_output_has_means_beta_and_stds_gamma(rng):
    n, d = 200, 3
    x = rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) * 5.0 + 12.0
    assert np.all(np.abs(x.mean(axis=0)) > 1.0)
    gamma, beta = np.array([1.0, 2.0, 3.0]), np.array([11.0, 12.0, 13.0])
    y = mg.batch_norm(mg.tensor(x), mg.tensor(gamma), mg.tensor(beta), np.zeros(d), np.ones(d), True).data
    np.testing.assert_allclose(y.mean(axis=0), beta, rtol=1e-10)
    np.testing.assert_allclose(y.std(axis=0), gamma, rtol=1e-4)  # eps = 1e-5 shrinks them slightly
    y = mg.batch_norm(mg.tensor(x), None, None, np.zeros(d), np.ones(d), True).data
    np.testing.assert_allclose(y.mean(axis=0), 0.0, atol=1e-10)
    np.testing.assert_allclose(y.std(axis=0), 1.0, rtol=1e-4)


def test_4d_train_mode_statistics_are_per_channel(rng):
    x = rng.standard_normal((4, 3, 5, 6)) * np.array([1.0, 4.0, 0.5])[None, :, None, None] + 7.0
    gamma, beta = np.array([2.0, 0.5, 1.0]), np.array([-1.0, 0.0, 3.0])
    y = mg.batch_norm(mg.tensor(x), mg.tensor(gamma), mg.tensor(beta), np.zeros(3), np.ones(3), True).data
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), beta, atol=1e-10)
    np.testing.assert_allclose(y.std(axis=(0, 2, 3)), gamma, rtol=1e-4)
    mean, var = x.mean(axis=(0, 2, 3), keepdims=True), x.var(axis=(0, 2, 3), keepdims=True)
    naive = (x - mean) / np.sqrt(var + 1e-5) * gamma[None, :, None, None] + beta[None, :, None, None]
    np.testing.assert_allclose(y, naive, rtol=1e-12, atol=1e-12)


def test_running_statistics_follow_pytorchs_update(rng):
    x = rng.standard_normal((8, 3)) * 3.0 + 1.0
    rm, rv = np.array([0.5, -1.0, 2.0]), np.array([1.0, 2.0, 0.25])
    rm0, rv0 = rm.copy(), rv.copy()
    mg.batch_norm(mg.tensor(x), None, None, rm, rv, True, momentum=0.2)
    np.testing.assert_allclose(rm, 0.8 * rm0 + 0.2 * x.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(rv, 0.8 * rv0 + 0.2 * x.var(axis=0, ddof=1), rtol=1e-14)  # unbiased
    # eval mode leaves them alone
    rm1, rv1 = rm.copy(), rv.copy()
    mg.batch_norm(mg.tensor(x), None, None, rm, rv, False)
    np.testing.assert_array_equal(rm, rm1)
    np.testing.assert_array_equal(rv, rv1)


def test_eval_mode_uses_running_statistics_after_training(rng):
    d = 4
    mu, sigma = np.array([5.0, -3.0, 0.0, 10.0]), np.array([2.0, 0.5, 1.0, 4.0])
    gamma, beta = mg.tensor(rng.uniform(0.5, 2.0, d)), mg.tensor(rng.standard_normal(d))
    rm, rv = np.zeros(d), np.ones(d)
    for _ in range(200):
        batch = mu + sigma * rng.standard_normal((64, d))
        mg.batch_norm(mg.tensor(batch), gamma, beta, rm, rv, True)
    np.testing.assert_allclose(rm, mu, atol=0.15 * sigma.max())
    np.testing.assert_allclose(rv, sigma ** 2, rtol=0.15)
    x = mu + sigma * rng.standard_normal((50, d))
    y = mg.batch_norm(mg.tensor(x), gamma, beta, rm, rv, False).data
    naive = (x - rm) / np.sqrt(rv + 1e-5) * gamma.data + beta.data  # the running statistics, not the batch's
    np.testing.assert_allclose(y, naive, rtol=1e-12, atol=1e-12)
    batch_stats = (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5) * gamma.data + beta.data
    assert not np.allclose(y, batch_stats, atol=1e-3)
    # a single sample can be normalised in eval mode
    one = mg.batch_norm(mg.tensor(x[:1]), gamma, beta, rm, rv, False).data
    np.testing.assert_allclose(one, naive[:1], rtol=1e-12)


def test_eval_mode_backward_is_the_affine_one(rng):
    x, gamma, beta = _bn_inputs(rng, (5, 3))
    rm, rv = rng.standard_normal(3), rng.uniform(0.5, 2.0, 3)
    g = rng.standard_normal((5, 3))
    mg.batch_norm(x, gamma, beta, rm, rv, False).backward(g)
    invstd = 1 / np.sqrt(rv + 1e-5)
    np.testing.assert_allclose(x.grad, g * gamma.data * invstd, rtol=1e-13)
    np.testing.assert_allclose(gamma.grad, (g * (x.data - rm) * invstd).sum(0), rtol=1e-12)
    np.testing.assert_allclose(beta.grad, g.sum(0), rtol=1e-13)


def test_layer_norm_matches_the_naive_formula(rng):
    x = rng.standard_normal((3, 4, 6)) * 5 + 2
    gamma, beta = rng.uniform(0.5, 2, 6), rng.standard_normal(6)
    y = mg.layer_norm(mg.tensor(x), mg.tensor(gamma), mg.tensor(beta), eps=1e-3).data
    naive = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-3) * gamma + beta
    np.testing.assert_allclose(y, naive, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("p", [0.3, 0.6, 0.75])
def test_dropout_keeps_the_mean_and_drops_about_p(p):
    mg.manual_seed(0)
    x = np.random.default_rng(1).standard_normal((500, 500)) + 10.0
    y = mg.dropout(mg.tensor(x), p, True).data
    assert y.mean() == pytest.approx(x.mean(), rel=0.01)
    assert (y == 0).mean() == pytest.approx(p, abs=0.005)
    kept = y != 0
    np.testing.assert_allclose(y[kept], x[kept] / (1 - p), rtol=1e-14)


def test_dropout_eval_and_p0_are_the_identity_and_p1_zeros(rng):
    x = mg.tensor(rng.standard_normal((4, 5)), requires_grad=True)
    assert mg.dropout(x, 0.5, False) is x
    assert mg.dropout(x, 0.0, True) is x
    y = mg.dropout(x, 1.0, True)
    np.testing.assert_array_equal(y.data, 0.0)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, 0.0)


def test_dropout_backward_uses_the_forward_mask_and_seed_reproduces_it(rng):
    x = mg.tensor(rng.standard_normal((30, 20)), requires_grad=True)
    mg.manual_seed(3)
    y = mg.dropout(x, 0.4, True)
    mg.manual_seed(3)
    y2 = mg.dropout(x, 0.4, True)
    np.testing.assert_array_equal(y.data, y2.data)
    y3 = mg.dropout(x, 0.4, True)  # the generator moved on: another mask
    assert not np.array_equal(y.data, y3.data)
    y.sum().backward()
    mask = y.data / x.data
    np.testing.assert_allclose(x.grad, mask, rtol=1e-12)
    assert set(np.round(np.unique(x.grad), 12)) <= {0.0, round(1 / 0.6, 12)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtypes_are_preserved(rng, dtype):
    x = mg.tensor(rng.standard_normal((6, 3)).astype(dtype), requires_grad=True)
    g = mg.tensor(np.ones(3, dtype), requires_grad=True)
    b = mg.tensor(np.zeros(3, dtype), requires_grad=True)
    rm, rv = np.zeros(3, dtype), np.ones(3, dtype)
    x4 = mg.tensor(rng.standard_normal((2, 3, 2, 2)).astype(dtype), requires_grad=True)
    outs = [mg.batch_norm(x, g, b, rm, rv, True), mg.batch_norm(x, g, b, rm, rv, False),
            mg.batch_norm(x4, g, b, rm, rv, True), mg.layer_norm(x, g, b), mg.dropout(x, 0.5, True)]
    for y in outs:
        assert y.dtype == dtype
        y.sum().backward()
    for t in (x, g, b, x4):
        assert t.grad.dtype == dtype
    assert rm.dtype == dtype and rv.dtype == dtype


def test_no_grad_still_updates_the_running_statistics(rng):
    x, gamma, beta = _bn_inputs(rng, (5, 2))
    rm, rv = np.zeros(2), np.ones(2)
    with mg.no_grad():
        y = mg.batch_norm(x, gamma, beta, rm, rv, True)
    assert not y.requires_grad
    assert not np.array_equal(rm, 0.0) and not np.array_equal(rv, 1.0)


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 3), (1, 3, 1, 1)])
def test_a_batch_of_one_in_training_mode_changes_nothing(shape):
    x = mg.tensor(np.arange(3.0).reshape(shape), requires_grad=True)
    rm, rv = np.full(3, 0.5), np.full(3, 2.0)
    with pytest.raises(ValueError, match="a batch of one cannot be normalised in training mode"):
        mg.batch_norm(x, None, None, rm, rv, True)
    np.testing.assert_array_equal(rm, 0.5)
    np.testing.assert_array_equal(rv, 2.0)
    assert mg.batch_norm(x, None, None, rm, rv, False).shape == shape  # eval mode can


def test_a_4d_batch_of_one_image_with_pixels_is_fine():
    x = mg.tensor(np.arange(12.0).reshape(1, 3, 2, 2))
    y = mg.batch_norm(x, None, None, np.zeros(3), np.ones(3), True)
    np.testing.assert_allclose(y.data.mean(axis=(0, 2, 3)), 0.0, atol=1e-12)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(gamma=np.ones(4)), ValueError, r"gamma must have shape \(3,\)"),
    (dict(beta=np.zeros(2)), ValueError, r"beta must have shape \(3,\)"),
    (dict(running_mean=np.zeros(4)), ValueError, r"running_mean must have shape \(3,\)"),
    (dict(running_var=np.ones((3, 1))), ValueError, r"running_var must have shape \(3,\)"),
    (dict(running_mean=None), ValueError, "both"),
    (dict(running_mean=np.zeros(3, np.int64)), TypeError, "running_mean must be a float ndarray"),
    (dict(gamma=mg.tensor(np.ones(3, np.float32))), TypeError, "dtypes differ"),
    (dict(momentum=1.5), ValueError, "momentum"),
    (dict(eps=0.0), ValueError, "eps"),
    (dict(training=1), TypeError, "training must be True or False"),
])
def test_batch_norm_bad_arguments(kwargs, exc, match):
    args = dict(x=mg.tensor(np.ones((4, 3))), gamma=None, beta=None, running_mean=np.zeros(3),
                running_var=np.ones(3), training=True)
    args.update(kwargs)
    before = [a.copy() for a in (args["running_mean"], args["running_var"]) if isinstance(a, np.ndarray)]
    with pytest.raises(exc, match=match):
        mg.batch_norm(**args)
    after = [a for a in (args["running_mean"], args["running_var"]) if isinstance(a, np.ndarray)]
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)


def test_batch_norm_wrong_ndim_eval_without_stats_and_read_only_stats():
    with pytest.raises(ValueError, match=r"\(N, D\) or \(N, C, H, W\), got shape \(2, 3, 4\)"):
        mg.batch_norm(mg.tensor(np.ones((2, 3, 4))), None, None, None, None, True)
    with pytest.raises(ValueError, match="eval mode"):
        mg.batch_norm(mg.tensor(np.ones((2, 3))), None, None, None, None, False)
    ro = np.zeros(3)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        mg.batch_norm(mg.tensor(np.ones((2, 3))), None, None, ro, np.ones(3), True)


def test_layer_norm_bad_arguments():
    x = mg.tensor(np.ones((2, 5)))
    with pytest.raises(ValueError, match=r"gamma must have shape \(5,\)"):
        mg.layer_norm(x, mg.tensor(np.ones(4)), None)
    with pytest.raises(ValueError, match=r"beta must have shape \(5,\)"):
        mg.layer_norm(x, None, mg.tensor(np.ones((1, 5))))
    with pytest.raises(ValueError, match="eps"):
        mg.layer_norm(x, None, None, eps=-1.0)


@pytest.mark.parametrize("p", [-0.1, 1.5, math.nan, True, "0.5"])
def test_dropout_bad_p(p):
    with pytest.raises(ValueError, match="p must be a finite number >= 0.0 and <= 1.0"):
        mg.dropout(mg.tensor(np.ones(3)), p, True)


# --------------------------------------------------------------------------------------------
# parity with torch.nn.functional (float64)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(7, 4), (3, 4, 5, 2)])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_matches_torch(rng, shape, training):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    d = shape[1]
    x, gamma, beta = _bn_inputs(rng, shape)
    rm, rv = rng.standard_normal(d), rng.uniform(0.5, 2.0, d)
    g = rng.standard_normal(shape)
    trm, trv = torch.tensor(rm), torch.tensor(rv)
    tx, tg, tb = (torch.tensor(t.data, requires_grad=True) for t in (x, gamma, beta))
    ty = F.batch_norm(tx, trm, trv, tg, tb, training=training, momentum=0.3, eps=1e-4)
    ty.backward(torch.tensor(g))
    y = mg.batch_norm(x, gamma, beta, rm, rv, training, momentum=0.3, eps=1e-4)
    y.backward(g)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gamma.grad, tg.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(beta.grad, tb.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(rm, trm.numpy(), rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(rv, trv.numpy(), rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("shape", [(6, 5), (2, 3, 8)])
def test_layer_norm_matches_torch(rng, shape):
    torch = pytest.importorskip("torch")
    d = shape[-1]
    x = _t(rng.standard_normal(shape) * 2 + 1)
    gamma, beta = _t(rng.uniform(0.5, 1.5, d)), _t(rng.standard_normal(d))
    g = rng.standard_normal(shape)
    tx, tg, tb = (torch.tensor(t.data, requires_grad=True) for t in (x, gamma, beta))
    ty = torch.nn.functional.layer_norm(tx, (d,), tg, tb, eps=1e-5)
    ty.backward(torch.tensor(g))
    y = mg.layer_norm(x, gamma, beta)
    y.backward(g)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    for ours, theirs in ((x, tx), (gamma, tg), (beta, tb)):
        np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-10, atol=1e-12)
