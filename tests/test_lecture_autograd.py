"""Lecture 4's examples, through the autograd API."""

import numpy as np
import pytest

import matgrad as mg


def test_derivative_gradient_and_jacobian_definitions():
    # scalar to scalar: y = x³, dy/dx = 3x²
    x = mg.tensor([2.0], dtype=np.float64, requires_grad=True)
    (x * x * x).backward()
    assert x.grad[0] == 12.0
    # vector to scalar: the gradient has x's shape, (dy/dx)_n = ∂y/∂x_n
    v = mg.tensor([1.0, -2.0, 3.0], dtype=np.float64, requires_grad=True)
    (v * v).sum().backward()
    np.testing.assert_array_equal(v.grad, [2.0, -4.0, 6.0])
    # vector to vector: the Jacobian is N×M with (dy/dx)_{n,m} = ∂y_m/∂x_n
    a = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])  # y = x·a: N = 2 inputs... as a row vector
    x2 = mg.tensor([[1.0, -1.0, 2.0]], dtype=np.float64)  # (1, 3)
    J = mg.jacobian(lambda t: t @ mg.tensor(a), x2)
    assert J.shape == (1, 3, 1, 2)
    np.testing.assert_array_equal(J[0, :, 0, :], a)  # ∂y_m/∂x_n = a[n, m]


def test_relu_on_the_4_vector():
    x = mg.tensor([1.0, -2.0, 3.0, -1.0], requires_grad=True)
    y = mg.relu(x)
    np.testing.assert_array_equal(y.data, [1, 0, 3, 0])
    upstream = np.array([4.0, -1.0, 5.0, 9.0], np.float32)
    # explicitly: the Jacobian is diagonal (sparse), and dL/dx = [dy/dx][dL/dy]
    J = mg.jacobian(mg.relu, x)
    np.testing.assert_array_equal(J, np.diag([1, 0, 1, 0]))
    np.testing.assert_array_equal(J @ upstream, [4, 0, 5, 0])
    # implicitly: (dL/dx)_i = (dL/dy)_i if x_i > 0 else 0
    y.backward(upstream)
    np.testing.assert_array_equal(x.grad, [4, 0, 5, 0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_matmul_example(dtype):
    x = mg.tensor([[2, 1, -3], [-3, 4, 2]], dtype=dtype, requires_grad=True)  # [N×D]
    w = mg.tensor([[3, 2, 1, -1], [2, 1, 3, 2], [3, 2, 1, -2]], dtype=dtype, requires_grad=True)  # [D×M]
    upstream = np.array([[2, 3, -3, 9], [-8, 1, 4, 6]], dtype)  # dL/dy [N×M]
    y = x @ w
    np.testing.assert_array_equal(y.data, [[-1, -1, 2, 6], [5, 2, 11, 7]])  # the true x·w
    y.backward(upstream)
    # dL/dx = dL/dy·wᵀ [N×D], dL/dw = xᵀ·dL/dy [D×M]: shapes match their variables
    np.testing.assert_array_equal(x.grad, [[0, 16, -9], [-24, 9, -30]])
    np.testing.assert_array_equal(w.grad, [[28, 3, -18, 0], [-30, 7, 13, 33], [-22, -7, 17, -15]])
    assert x.grad.shape == x.shape and w.grad.shape == w.shape
    # one element by the lecture's sum: dL/dx[0,1] = Σ_m dL/dy[0,m]·w[1,m]
    assert x.grad[0, 1] == sum(upstream[0, m] * w.data[1, m] for m in range(4))
    # and the same values from the explicit Jacobian, contracted with dL/dy
    J = mg.jacobian(lambda t: t @ w, mg.tensor(x.data))
    np.testing.assert_array_equal(np.tensordot(J, upstream, axes=2), x.grad)


def test_the_jacobians_of_a_real_layer_would_take_256_gib():
    x = mg.tensor(np.zeros((64, 4096), np.float32))  # N = 64, D = 4096
    w = mg.tensor(np.zeros((4096, 4096), np.float32))  # D = M = 4096
    with pytest.raises(ValueError, match="256 GiB"):
        mg.jacobian(lambda t: t @ w, x)
    # dy/dw is (D×M)×(N×M): 64 times bigger still (the slide's "each ... 256 GB" holds for dy/dx)
    with pytest.raises(ValueError, match=r"16,384 GiB \(16 TiB\)"):
        mg.jacobian(lambda t: x @ t, w)
