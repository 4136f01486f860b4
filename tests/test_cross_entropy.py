"""cpp/src/cross_entropy.cpp: the softmax cross-entropy kernels against a float64 numpy oracle."""

import numpy as np
import pytest

from matgrad import kernels


def reference(scores, labels):
    """(loss, probs) in float64, by log-sum-exp."""
    s = scores.astype(np.float64)
    z = s - s.max(axis=1, keepdims=True)
    log_sum = np.log(np.exp(z).sum(axis=1))
    probs = np.exp(z - log_sum[:, None])
    return np.mean(log_sum - z[np.arange(len(labels)), labels]), probs


TOL = {np.float32: 2e-6, np.float64: 1e-13}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, c", [(1, 1), (1, 7), (3, 1), (32, 10), (17, 33), (128, 1000)])
def test_forward_and_backward_match_the_reference(dtype, n, c):
    rng = np.random.default_rng(n * 1000 + c)
    scores = (rng.standard_normal((n, c)) * 5).astype(dtype)
    labels = rng.integers(0, c, n)
    loss, probs = kernels.cross_entropy_forward(scores, labels)
    want_loss, want_probs = reference(scores, labels)
    assert loss.shape == () and loss.dtype == dtype and probs.dtype == dtype
    np.testing.assert_allclose(loss, want_loss, rtol=10 * TOL[dtype], atol=TOL[dtype])
    np.testing.assert_allclose(probs, want_probs, rtol=10 * TOL[dtype], atol=TOL[dtype])
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=10 * TOL[dtype] * c)

    grad = kernels.cross_entropy_backward(probs, labels, 0.5)
    onehot = np.zeros((n, c))
    onehot[np.arange(n), labels] = 1
    np.testing.assert_allclose(grad, (want_probs - onehot) * 0.5 / n, rtol=10 * TOL[dtype], atol=TOL[dtype])


def test_backward_in_place_over_probs():
    scores = np.random.default_rng(0).standard_normal((4, 5))
    labels = np.array([0, 4, 2, 2])
    _, probs = kernels.cross_entropy_forward(scores, labels)
    want = kernels.cross_entropy_backward(probs, labels)
    got = kernels.cross_entropy_backward(probs, labels, 1.0, out=probs)
    assert got is probs
    np.testing.assert_array_equal(got, want)


def test_huge_scores_are_stable():
    scores = np.array([[1e30, 0.0, -1e30], [3e38, 3e38, 0.0]], np.float32)
    loss, probs = kernels.cross_entropy_forward(scores, np.array([0, 1]))
    np.testing.assert_allclose(probs, [[1, 0, 0], [0.5, 0.5, 0]])
    np.testing.assert_allclose(loss, np.log(2) / 2, rtol=1e-6)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [(0, 0), (1, 2)])  # (1, 2) is not row 1's label
def test_any_non_finite_score_makes_the_loss_nan(bad, where):
    scores = np.zeros((2, 3))
    scores[where] = bad
    loss, _ = kernels.cross_entropy_forward(scores, np.array([0, 1]))
    assert np.isnan(loss)


@pytest.mark.parametrize("layout", ["fortran", "strided", "negative"])
def test_non_contiguous_scores(layout):
    base = np.random.default_rng(1).standard_normal((6, 8)).astype(np.float32)
    scores = {"fortran": np.asfortranarray(base), "strided": base[::2, ::2], "negative": base[::-1]}[layout]
    labels = np.arange(scores.shape[0]) % scores.shape[1]
    loss, probs = kernels.cross_entropy_forward(scores, labels)
    want_loss, want_probs = kernels.cross_entropy_forward(np.ascontiguousarray(scores), labels)
    np.testing.assert_array_equal(probs, want_probs)
    assert loss == want_loss


def test_strided_labels_are_read_correctly():
    scores = np.random.default_rng(2).standard_normal((3, 4))
    labels = np.array([3, 9, 0, 9, 2, 9])[::2]  # every other element
    loss, _ = kernels.cross_entropy_forward(scores, labels)
    np.testing.assert_allclose(loss, reference(scores, labels)[0], rtol=1e-13)


def test_a_bad_label_writes_nothing():
    probs = np.full((2, 3), 0.25)
    out = np.full((2, 3), 7.0)
    with pytest.raises(ValueError, match=r"labels\[1\] = 3"):
        kernels.cross_entropy_backward(probs, np.array([0, 3]), 1.0, out=out)
    np.testing.assert_array_equal(out, 7.0)
