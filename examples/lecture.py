"""Lecture 4, "Neural Networks and Backpropagation", walked through with matgrad.

Run it: python examples/lecture.py
Read it top to bottom: each section prints what the slide shows and checks it.
"""

import numpy as np

import matgrad as mg

np.set_printoptions(suppress=True)


def section(title):
    print(f"\n== {title} ==")


# ------------------------------------------------------------------------------------------------
section("Vector derivatives")
# Scalar to scalar: y = x², dy/dx = 2x. "If x changes by a small amount, how much will y change?"
x = mg.tensor([3.0], dtype=np.float64, requires_grad=True)
(x * x).backward()
print("scalar to scalar: y = x^2 at x = 3, dy/dx =", x.grad[0])

# Vector to scalar: the derivative is the gradient, of x's shape: (dy/dx)_n = dy/dx_n.
x = mg.tensor([1.0, 2.0, 3.0], dtype=np.float64, requires_grad=True)
(x * x).sum().backward()
print("vector to scalar: y = sum(x^2) at x = [1 2 3], gradient =", x.grad)

# Vector to vector: the derivative is the Jacobian, N×M, (dy/dx)_{n,m} = dy_m/dx_n.
# mg.jacobian builds it exactly, by backprop, in this layout: shape x.shape + y.shape.
a = mg.tensor([[1.0, 0.0], [2.0, -1.0], [0.0, 3.0]], dtype=np.float64)  # y = x·a maps R^3 -> R^2
x = mg.tensor([[1.0, 2.0, 3.0]], dtype=np.float64)
J = mg.jacobian(lambda t: t @ a, x)[0, :, 0, :]  # drop the batch axes of size 1
print("vector to vector: y = x·a, Jacobian (3x2), J[n, m] = dy_m/dx_n:")
print(J)
assert np.array_equal(J, a.data)

# ------------------------------------------------------------------------------------------------
section("Backprop with vectors: ReLU on a 4D input")
x = mg.tensor([1.0, -2.0, 3.0, -1.0], requires_grad=True)
y = mg.relu(x)  # f(x) = max(0, x), elementwise
upstream = np.array([4.0, -1.0, 5.0, 9.0], np.float32)  # dL/dy, the upstream gradient
print("x     =", x.data)
print("y     =", y.data)
print("dL/dy =", upstream)

# Explicitly: the Jacobian dy/dx, then [dy/dx][dL/dy].
J = mg.jacobian(mg.relu, x)
print("Jacobian dy/dx (sparse: off-diagonal entries always zero):")
print(J)
explicit = J @ upstream
print("dL/dx = [dy/dx][dL/dy] =", explicit)

# Implicitly: never form the Jacobian. (dL/dx)_i = (dL/dy)_i if x_i > 0, else 0.
y.backward(upstream)
print("dL/dx by backprop (a mask, no Jacobian) =", x.grad)
assert np.array_equal(x.grad, explicit) and np.array_equal(x.grad, [4, 0, 5, 0])

# ------------------------------------------------------------------------------------------------
section("Backprop with matrices: y = x·w")
x = mg.tensor([[2, 1, -3], [-3, 4, 2]], requires_grad=True)  # [N×D] = [2×3]
w = mg.tensor([[3, 2, 1, -1], [2, 1, 3, 2], [3, 2, 1, -2]], requires_grad=True)  # [D×M] = [3×4]
upstream = np.array([[2, 3, -3, 9], [-8, 1, 4, 6]], np.float32)  # dL/dy [N×M]
y = x @ w  # y[n,m] = sum_d x[n,d] w[d,m]
print("y = x·w =")  # the slide's y is illustrative; this is the true product
print(y.data)
y.backward(upstream)
print("dL/dx = (dL/dy)·w^T  [N×D] =")
print(x.grad)
print("dL/dw = x^T·(dL/dy)  [D×M] =")
print(w.grad)
# Each gradient has the shape of its variable. One element by the lecture's sum:
# dL/dx[n,d] = sum_m dL/dy[n,m] · w[d,m]: x[0,1] affects the whole row y[0,:], by w[1,m].
by_hand = float(np.sum(upstream[0, :] * w.data[1, :]))
print(f"dL/dx[0,1] = sum_m dL/dy[0,m]·w[1,m] = {by_hand:g}")
assert x.grad[0, 1] == by_hand
assert np.array_equal(x.grad, upstream @ w.data.T) and np.array_equal(w.grad, x.data.T @ upstream)

# ------------------------------------------------------------------------------------------------
section("Why Jacobians must stay implicit")
# For a neural net we may have N = 64, D = M = 4096. dy/dx is [(N×D)×(N×M)].
N, D, M = 64, 4096, 4096
x = mg.tensor(np.zeros((N, D), np.float32))
w = mg.tensor(np.zeros((D, M), np.float32))
try:
    mg.jacobian(lambda t: t @ w, x)
except ValueError as err:
    print(err)
# The backward pass needs only dL/dy·wᵀ and xᵀ·dL/dy: arrays the size of x and w.
x.requires_grad = w.requires_grad = True
(x @ w).backward(np.ones((N, M), np.float32))
print(f"implicitly: dL/dx is {x.grad.shape} ({x.grad.nbytes / 2**20:g} MiB), "
      f"dL/dw is {w.grad.shape} ({w.grad.nbytes / 2**20:g} MiB)")
