"""Convolution forward and backward on a tiny input, the lecture's way: no Jacobian, ever.

Run it: python examples/conv_net.py
A 3×3 convolution is im2col followed by one matrix product, so its backward is the lecture's two
products again (dL/dw = dL/dy·colsᵀ, dL/dcols = wᵀ·dL/dy) and a col2im that adds each column entry
back to the pixel it was copied from. Every gradient has the shape of its input.
"""

import numpy as np

import matgrad as mg
from matgrad import kernels

np.set_printoptions(precision=3, suppress=True)

# x: one image, one channel, 4×4; w: two 3×3 filters; padding 1 keeps the 4×4 size
x = mg.tensor(np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4), requires_grad=True)
w = mg.tensor(np.array([[[[0, 0, 0], [0, 1, 0], [0, 0, 0]]],        # the identity filter
                        [[[1, 0, -1], [2, 0, -2], [1, 0, -1]]]],    # a Sobel filter (edges along x)
                       dtype=np.float64), requires_grad=True)
b = mg.tensor(np.array([0.0, 0.5]), requires_grad=True)
print("x (N, C, H, W) =", x.shape)
print(x.data[0, 0])

# ---- forward: im2col, then one product --------------------------------------------------
cols = kernels.im2col(x.data, 3, 3, stride=1, padding=1)  # (N, C·3·3, H'·W') = (1, 9, 16)
print("\nim2col: each column holds the 3×3 window one output pixel sees:", cols.shape)
w_rows = w.data.reshape(2, 9)  # (F, C·3·3)
y_by_hand = (w_rows @ cols[0] + b.data[:, None]).reshape(1, 2, 4, 4)  # y = W·cols + b: (F, H'·W')
y = mg.conv2d(x, w, b, stride=1, padding=1)
print("y = conv2d(x, w, b):", y.shape, "; equal to W·cols + b:", np.allclose(y.data, y_by_hand))
print("filter 1 (identity) gives x back:\n", y.data[0, 0])
print("filter 2 (Sobel):\n", y.data[0, 1])

# ---- backward ---------------------------------------------------------------------------
# Suppose L = Σ dy ⊙ y for an upstream gradient dy of y's shape.
dy = np.ones_like(y.data)
y.backward(dy)
print("\ndL/dx has the shape of x:", x.grad.shape, "; dL/dw that of w:", w.grad.shape,
      "; dL/db that of b:", b.grad.shape)

g = dy[0].reshape(2, 16)  # dL/dy as (F, H'·W')
dw_by_hand = (g @ cols[0].T).reshape(w.shape)  # dL/dw = dL/dy·colsᵀ: one product
dcols = w_rows.T @ g  # dL/dcols = Wᵀ·dL/dy: (9, 16), one product
dx_by_hand = kernels.col2im(dcols[None], x.shape, 3, 3, stride=1, padding=1)  # back onto the pixels
print("dL/dw = dL/dy·colsᵀ:", np.allclose(w.grad, dw_by_hand))
print("dL/dx = col2im(Wᵀ·dL/dy):", np.allclose(x.grad, dx_by_hand))
print("dL/db = Σ dL/dy over pixels:", b.grad, "(16 pixels each)")
# each pixel gets 1 from the identity filter, plus the Sobel weights of every window it falls in
# (the border pixels fall in fewer windows, so their Sobel weights do not cancel)
print("dL/dx:\n", x.grad[0, 0])

# The explicit Jacobian dy/dx would be (F·H'·W') × (C·H·W) = 32 × 16 here, and for a 32-filter
# 3×3 layer on a batch of 64 images of 3×32×32 it would be 2,097,152 × 196,608 float32 values:
n, c, h, f = 64, 3, 32, 32
print(f"\nA Jacobian for N={n}, C={c}, {h}×{h}, F={f}: {n * f * h * h:,} × {n * c * h * h:,} values, "
      f"{n * f * h * h * n * c * h * h * 4 / 2**40:.1f} TiB; the backward above never forms it.")
