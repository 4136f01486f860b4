"""A two-layer network trained from scratch on the bundled handwritten digits.

Run it: python examples/two_layer_net.py
No mg.nn and no mg.optim: the parameters are plain tensors, the forward pass is written out,
and the update is the SGD rule itself. Compare with `python -m matgrad`, which does the same with
mg.nn.MLP and mg.optim.Adam.
"""

import numpy as np

import matgrad as mg

# data: 8×8 images as 64 pixels in [0, 1], labels 0..9, a fixed train/test split
x_train, y_train, x_test, y_test = mg.data.load_digits_split()
N, D = x_train.shape
H, C = 64, 10  # hidden units, classes

# parameters, He-initialised: w ~ N(0, 2/fan_in), b = 0. The lecture's convention: y = x·w + b.
rng = np.random.default_rng(0)
w1 = mg.tensor(rng.standard_normal((D, H)) * np.sqrt(2 / D), dtype=np.float32, requires_grad=True)  # [D×H]
b1 = mg.tensor(np.zeros(H), dtype=np.float32, requires_grad=True)  # [H]
w2 = mg.tensor(rng.standard_normal((H, C)) * np.sqrt(2 / H), dtype=np.float32, requires_grad=True)  # [H×C]
b2 = mg.tensor(np.zeros(C), dtype=np.float32, requires_grad=True)  # [C]
params = [w1, b1, w2, b2]


def forward(x):
    h = (x @ w1 + b1).relu()  # [B×H]; the bias (H,) is broadcast over the batch
    return h @ w2 + b2  # [B×C] class scores


def accuracy(x, y):
    with mg.no_grad():  # evaluation records no graph
        return float((forward(mg.tensor(x)).data.argmax(axis=1) == y).mean())


lr, momentum, batch, epochs = 0.1, 0.9, 32, 15
velocity = [np.zeros_like(p.data) for p in params]
print(f"two-layer net {D}-{H}-{C}, SGD lr {lr} momentum {momentum}, batch {batch}, {epochs} epochs")
print(f"before training: test accuracy {100 * accuracy(x_test, y_test):.2f}% (chance: 10%)")
for epoch in range(1, epochs + 1):
    order = rng.permutation(N)
    losses = []
    for i in range(0, N, batch):
        idx = order[i:i + batch]
        loss = mg.cross_entropy(forward(mg.tensor(x_train[idx])), y_train[idx])  # softmax + mean NLL
        for p in params:
            p.grad = None
        loss.backward()  # dL/dp for every parameter: dL/dw = xᵀ·dL/dy, dL/dx = dL/dy·wᵀ, ...
        for p, v in zip(params, velocity):
            v *= momentum  # v = μ·v + dL/dp
            v += p.grad
            p.data -= lr * v  # p = p − lr·v, in place
        losses.append(loss.item())
    if epoch % 5 == 0 or epoch == 1:
        print(f"epoch {epoch:2d}: mean training loss {np.mean(losses):.4f}, "
              f"test accuracy {100 * accuracy(x_test, y_test):.2f}%")
print(f"test accuracy: {100 * accuracy(x_test, y_test):.2f}%")
