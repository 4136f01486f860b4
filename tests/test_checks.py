"""gradcheck and jacobian."""

import re

import numpy as np
import pytest

import matgrad as mg
from matgrad.tensor import _accumulate, _node

rng = np.random.default_rng(11)


def _broken_square(a):
    """y = a², with a backward that forgets the factor 2 on element (1, 2)."""
    y = a.data * a.data

    def backward(gy, own):
        g = gy * a.data * 2
        g[1, 2] /= 2
        _accumulate(a, g, True)

    return _node(y, (a,), backward, "broken_square")


def test_gradcheck_passes_and_restores_everything():
    x = mg.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    w = mg.tensor(rng.standard_normal((4, 2)), requires_grad=True)
    x.grad = np.full((3, 4), 9.0)
    data = x.data.copy()
    assert mg.gradcheck(lambda x, w: (x @ w).relu() * 1.5, x, w) is True
    np.testing.assert_array_equal(x.data, data)  # bit-for-bit
    np.testing.assert_array_equal(x.grad, 9.0)
    assert w.grad is None


def test_gradcheck_reports_the_input_the_element_and_both_values():
    a = mg.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    b = mg.tensor(rng.standard_normal((3, 4)) + 2.0, requires_grad=True)
    with pytest.raises(mg.GradcheckError) as info:
        mg.gradcheck(lambda a, b: _broken_square(b) * 1.0 + a.sum(), a, b)
    msg = str(info.value)
    assert "input 1" in msg and r"index (1, 2)" in msg and "1 of 12 elements" in msg
    found = re.search(r"backprop (\S+), numerical (\S+) ", msg)
    backprop, numerical = float(found.group(1)), float(found.group(2))
    assert numerical == pytest.approx(2 * backprop, rel=1e-6)  # the backward halved this element


def test_gradcheck_with_a_non_scalar_output_uses_a_random_upstream_gradient():
    a = mg.tensor(rng.standard_normal((3, 4)) + 2.0, requires_grad=True)
    # with an all-ones upstream gradient the row sums would hide a wrong split inside a row
    with pytest.raises(mg.GradcheckError, match="input 0"):
        mg.gradcheck(_broken_square, a)
    assert mg.gradcheck(lambda a: a * a, a)


def test_gradcheck_detects_a_missing_gradient():
    a = mg.tensor(rng.standard_normal(3), requires_grad=True)

    def forgets_backward(t):
        return mg.tensor(t.data * 3.0) + t * 0.0  # the 3·t part is not recorded

    with pytest.raises(mg.GradcheckError, match="input 0"):
        mg.gradcheck(forgets_backward, a)


def test_gradcheck_argument_errors():
    with pytest.raises(TypeError, match="float64"):
        mg.gradcheck(lambda a: a * 2.0, mg.tensor([1.0], requires_grad=True))
    with pytest.raises(ValueError, match="no input"):
        mg.gradcheck(lambda a: a * 2.0, mg.tensor([1.0], dtype=np.float64))
    with pytest.raises(TypeError, match="must return a Tensor"):
        mg.gradcheck(lambda a: 3.0, mg.tensor([1.0], dtype=np.float64, requires_grad=True))


def test_gradcheck_passes_non_tensor_arguments_through():
    x = mg.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    assert mg.gradcheck(mg.cross_entropy, x, np.array([0, 1, 2, 0]))


# ---- jacobian ------------------------------------------------------------------------------------


def test_jacobian_of_matmul_against_the_hand_derivation():
    x = mg.tensor(rng.standard_normal((2, 3)))
    w = mg.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    w.grad = np.full((3, 4), 7.0)
    J = mg.jacobian(lambda t: t @ w, x)
    assert J.shape == (2, 3, 2, 4)  # x.shape + y.shape
    # y[n', m] = Σ_d x[n', d] w[d, m]  ->  ∂y[n', m]/∂x[n, d] = δ(n, n') w[d, m]
    expect = np.einsum("ab,dm->adbm", np.eye(2), w.data)
    np.testing.assert_array_equal(J, expect)
    # dL/dx = J contracted with dL/dy = dL/dy·wᵀ
    gy = rng.standard_normal((2, 4))
    np.testing.assert_allclose(np.tensordot(J, gy, axes=2), gy @ w.data.T, rtol=1e-12)
    np.testing.assert_array_equal(w.grad, 7.0)  # the other leaf is untouched
    assert w.requires_grad and x.grad is None


def test_jacobian_with_respect_to_w_and_of_elementwise_ops():
    x = mg.tensor(rng.standard_normal((2, 3)))
    w = mg.tensor(rng.standard_normal((3, 4)))
    J = mg.jacobian(lambda t: x @ t, w)
    assert J.shape == (3, 4, 2, 4)
    # ∂y[n, m']/∂w[d, m] = x[n, d] δ(m, m')
    np.testing.assert_array_equal(J, np.einsum("nd,mk->dmnk", x.data, np.eye(4)))
    v = mg.tensor([1.0, -2.0, 3.0], dtype=np.float64)
    np.testing.assert_array_equal(mg.jacobian(lambda t: t * t, v), np.diag(2 * v.data))
    np.testing.assert_array_equal(mg.jacobian(lambda t: t.sum(), v), np.ones(3))  # y is a scalar
    np.testing.assert_array_equal(mg.jacobian(lambda t: t, v), np.eye(3))
    np.testing.assert_array_equal(mg.jacobian(lambda t: mg.tensor(np.ones(2)), v), np.zeros((3, 2)))


def test_jacobian_refuses_the_lectures_256_gib_before_allocating():
    x = mg.tensor(np.zeros((64, 4096), np.float32))
    w = mg.tensor(np.zeros((4096, 4096), np.float32), requires_grad=True)
    with pytest.raises(ValueError) as info:
        mg.jacobian(lambda t: t @ w, x)
    msg = str(info.value)
    assert "256 GiB" in msg and "(64, 4096, 64, 4096)" in msg and "max_bytes (1 GiB)" in msg
    assert w.grad is None


def test_jacobian_max_bytes():
    x = mg.tensor(np.ones(10))
    assert mg.jacobian(lambda t: t * 2.0, x, max_bytes=800).shape == (10, 10)  # exactly 800 bytes
    with pytest.raises(ValueError, match="more than max_bytes"):
        mg.jacobian(lambda t: t * 2.0, x, max_bytes=799)
