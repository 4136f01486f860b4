"""Losses: hand-computed values and gradients, gradcheck, numerical stability, bad input."""

import numpy as np
import pytest

import matgrad as mg

rng = np.random.default_rng(7)


# ---- cross-entropy -------------------------------------------------------------------------------


def test_cross_entropy_hand_computed():
    logits = mg.tensor([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]], dtype=np.float64, requires_grad=True)
    labels = np.array([2, 0])
    loss = mg.cross_entropy(logits, labels)
    # row 0: log(e + e² + e³) - 3; row 1: log 3
    row0 = np.log(np.e + np.e ** 2 + np.e ** 3) - 3
    assert loss.shape == () and loss.dtype == np.float64
    assert loss.item() == pytest.approx((row0 + np.log(3)) / 2, rel=1e-12)
    loss.backward()
    p0 = np.exp([1.0, 2.0, 3.0]) / np.exp([1.0, 2.0, 3.0]).sum()
    expect = np.array([p0 - [0, 0, 1], np.full(3, 1 / 3) - [1, 0, 0]]) / 2
    np.testing.assert_allclose(logits.grad, expect, rtol=1e-12)


def test_cross_entropy_is_stable_for_huge_logits():
    small = mg.cross_entropy(mg.tensor([[0.0, 1.0, -2.0]]), [1]).item()
    big = mg.cross_entropy(mg.tensor([[1000.0, 1001.0, 998.0]]), [1]).item()
    assert np.isfinite(big) and big == pytest.approx(small, rel=1e-6)
    x = mg.tensor([[1e30, -1e30]], requires_grad=True)  # float32
    loss = mg.cross_entropy(x, [0])
    assert loss.item() == 0.0
    loss.backward()
    assert np.all(np.isfinite(x.grad))


def test_cross_entropy_float32_and_upstream_scale():
    x = mg.tensor(rng.standard_normal((5, 4)), dtype=np.float32, requires_grad=True)
    y = rng.integers(0, 4, 5)
    loss = mg.cross_entropy(x, y)
    assert loss.dtype == np.float32
    (loss * 3.0).backward()
    x64 = mg.tensor(x.data.astype(np.float64), requires_grad=True)
    mg.cross_entropy(x64, y).backward()
    np.testing.assert_allclose(x.grad, 3 * x64.grad, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("as_given", [list, lambda y: y.astype(np.int32), lambda y: y.astype(np.uint8),
                                      lambda y: np.repeat(y, 2)[::2]])
def test_cross_entropy_labels_of_any_integer_kind(as_given):
    # The kernel reads int64; other integer arrays (and lists, and strided views) are converted.
    y = np.array([2, 0, 1, 1])
    x = mg.tensor(rng.standard_normal((4, 3)), dtype=np.float64, requires_grad=True)
    want = mg.cross_entropy(x, y)
    want.backward()
    want_grad = x.grad
    x.zero_grad()
    got = mg.cross_entropy(x, as_given(y))
    got.backward()
    assert got.item() == want.item()
    np.testing.assert_array_equal(x.grad, want_grad)


def test_cross_entropy_backward_twice_with_retain_graph():
    # The saved probabilities must survive the first backward.
    x = mg.tensor(rng.standard_normal((3, 5)), dtype=np.float64, requires_grad=True)
    loss = mg.cross_entropy(x, np.array([4, 0, 2]))
    loss.backward(retain_graph=True)
    first = x.grad.copy()
    loss.backward()
    np.testing.assert_allclose(x.grad, 2 * first, rtol=1e-15)


# ---- SVM -------------------------------------------------------------------------------------------


def test_svm_loss_cs231n_example():
    # the three images of cs231n's lecture 3 (rows), classes cat, car, frog: losses 2.9, 0, 12.9
    scores = mg.tensor([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]], dtype=np.float64, requires_grad=True)
    loss = mg.svm_loss(scores, np.array([0, 1, 2]))
    assert loss.item() == pytest.approx((2.9 + 0.0 + 12.9) / 3, rel=1e-12)
    loss.backward()
    # row 0: margins car 2.9 > 0, frog -3.9: ds = [-1, 1, 0]; row 1: none; row 2: cat 6.3, car 6.6 -> [1, 1, -2]
    expect = np.array([[-1, 1, 0], [0, 0, 0], [1, 1, -2]]) / 3
    np.testing.assert_allclose(scores.grad, expect, rtol=1e-12)


def test_svm_loss_margin_is_exactly_one():
    s = mg.tensor([[2.0, 1.0]], dtype=np.float64)
    assert mg.svm_loss(s, [0]).item() == 0.0  # s_j - s_y + 1 = 0: no loss
    assert mg.svm_loss(mg.tensor([[2.0, 1.5]], dtype=np.float64), [0]).item() == pytest.approx(0.5)


# ---- MSE ---------------------------------------------------------------------------------------------


def test_mse_hand_computed():
    p = mg.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=np.float64, requires_grad=True)
    t = mg.tensor([[1.0, 0.0], [0.0, 4.0]], dtype=np.float64, requires_grad=True)
    loss = mg.mse_loss(p, t)
    assert loss.item() == pytest.approx((0 + 4 + 9 + 0) / 4)
    loss.backward()
    np.testing.assert_allclose(p.grad, [[0, 1], [1.5, 0]])
    np.testing.assert_allclose(t.grad, [[0, -1], [-1.5, 0]])
    assert mg.mse_loss(p, np.array([[1, 0], [0, 4]])).item() == pytest.approx(13 / 4)


# ---- gradcheck ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("n, c", [(1, 2), (4, 3), (7, 10)])
def test_gradcheck_cross_entropy_and_svm(n, c):
    labels = rng.integers(0, c, n)
    x = mg.tensor(rng.standard_normal((n, c)), requires_grad=True)
    assert mg.gradcheck(lambda s: mg.cross_entropy(s, labels), x)
    assert mg.gradcheck(lambda s: mg.svm_loss(s, labels), x)


def test_gradcheck_losses_inside_a_network():
    labels = np.array([0, 2, 1, 2])
    x = mg.tensor(rng.standard_normal((4, 5)))
    w = mg.tensor(rng.standard_normal((5, 3)), requires_grad=True)
    b = mg.tensor(rng.standard_normal(3), requires_grad=True)
    assert mg.gradcheck(lambda w, b: mg.cross_entropy(mg.linear(x, w, b), labels) * 2.0, w, b)
    assert mg.gradcheck(lambda w, b: mg.svm_loss(mg.linear(x, w, b), labels), w, b)
    target = mg.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    assert mg.gradcheck(lambda w, t: mg.mse_loss(x @ w, t), w, target)


# ---- bad input ---------------------------------------------------------------------------------------


def _logits():
    x = mg.tensor(np.ones((3, 4), np.float32), requires_grad=True)
    x.grad = np.full((3, 4), 5.0, np.float32)
    return x


@pytest.mark.parametrize("loss", [mg.cross_entropy, mg.svm_loss])
@pytest.mark.parametrize("labels, exc, match", [
    (np.array([0, 1, 4]), ValueError, r"labels must be in \[0, 4\) for 4 classes; labels\[2\] = 4"),
    (np.array([0, -1, 2]), ValueError, r"labels\[1\] = -1"),
    (np.array([0, 1]), ValueError, r"labels must have shape \(3,\).*got shape \(2,\)"),
    (np.array([[0, 1, 2]]), ValueError, r"got shape \(1, 3\)"),
    (np.array([0.0, 1.0, 2.0]), TypeError, "integer array.*float64"),
    (np.array([True, False, True]), TypeError, "integer"),
    (mg.tensor([0, 1, 2]), TypeError, "got a Tensor"),
])
def test_bad_labels(loss, labels, exc, match):
    x = _logits()
    with pytest.raises(exc, match=match):
        loss(x, labels)
    np.testing.assert_array_equal(x.grad, 5.0)
    np.testing.assert_array_equal(x.data, 1.0)


@pytest.mark.parametrize("loss", [mg.cross_entropy, mg.svm_loss])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_scores_are_reported(loss, bad):
    x = _logits()
    x.data[1, 2] = bad
    with pytest.raises(ValueError, match=r"scores has non-finite values \(nan or inf\): 1 of 12.*\(1, 2\)"):
        loss(x, [0, 1, 2])
    np.testing.assert_array_equal(x.grad, 5.0)


def test_huge_finite_scores_are_not_called_non_finite():
    x = mg.tensor([[2e38, 2e38, 0.0]], dtype=np.float32)  # their sum overflows; each is finite
    assert np.isfinite(mg.cross_entropy(x, [0]).item())


@pytest.mark.parametrize("scores, match", [
    (np.ones((3, 4), np.float32), "must be a Tensor"),
    (mg.tensor(np.ones(4)), r"shape \(N, C\).*got shape \(4,\)"),
    (mg.tensor(np.ones((0, 4))), r"got shape \(0, 4\)"),
])
def test_bad_scores(scores, match):
    with pytest.raises((TypeError, ValueError), match=match):
        mg.cross_entropy(scores, np.zeros(len(scores) if not isinstance(scores, mg.Tensor) else scores.shape[0], int))


def test_mse_bad_input():
    p = mg.tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(ValueError, match=r"pred has shape \(2, 3\) but target has shape \(3, 2\)"):
        mg.mse_loss(p, np.ones((3, 2)))
    with pytest.raises(TypeError, match="float64.*float32"):
        mg.mse_loss(p, mg.tensor(np.ones((2, 3), np.float32)))
    with pytest.raises(ValueError, match="target has non-finite"):
        mg.mse_loss(p, np.full((2, 3), np.nan))
    with pytest.raises(ValueError, match="pred has non-finite"):
        mg.mse_loss(mg.tensor([[np.inf]], dtype=np.float64), np.ones((1, 1)))
    assert p.grad is None
