"""compare.py's convolution cases: conv forward + backward at two sizes, and a training step of the
digits CNN that ``python -m matgrad --model cnn`` trains.

numpy's entry is a vectorised im2col implementation written here (a strided window view copied into
columns, one matmul forward and two backward, col2im as KH·KW strided adds): what a student writes
after cs231n's "fast" layers, the baseline matgrad's C++ kernels are measured against.
"""

import numpy as np

from compare_cases import matgrad_training_step, torch_training_step  # beside this file


# ---- the numpy im2col convolution -----------------------------------------------------------


def numpy_conv_forward(x, w, b, stride, pad):
    """y (N, F, OH, OW) and the columns (N·OH·OW, C·KH·KW) the backward reuses."""
    n, c, h, width = x.shape
    f, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]
    oh, ow = windows.shape[2], windows.shape[3]
    cols = windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, c * kh * kw)  # the copy
    y = cols @ w.reshape(f, -1).T + b  # (N·OH·OW, F)
    return y.reshape(n, oh, ow, f).transpose(0, 3, 1, 2), cols


def numpy_conv_backward(dy, cols, x_shape, w, stride, pad):
    """dx, dw, db for numpy_conv_forward."""
    n, c, h, width = x_shape
    f, _, kh, kw = w.shape
    oh, ow = dy.shape[2], dy.shape[3]
    g = dy.transpose(0, 2, 3, 1).reshape(-1, f)  # (N·OH·OW, F)
    dw = (g.T @ cols).reshape(w.shape)
    db = g.sum(axis=0)
    dcols = (g @ w.reshape(f, -1)).reshape(n, oh, ow, c, kh, kw)
    dxp = np.zeros((n, c, h + 2 * pad, width + 2 * pad), dy.dtype)
    for i in range(kh):  # col2im: each kernel offset adds one strided slice
        for j in range(kw):
            dxp[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride] += dcols[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return dxp[:, :, pad:pad + h, pad:pad + width], dw, db


# ---- cases ---------------------------------------------------------------------------------


def _conv_case(n, c, hw, f, k, stride, pad):
    """conv forward + backward (dx, dw, db) in float32."""
    def build(lib):
        rng = np.random.default_rng(0)
        x = rng.standard_normal((n, c, hw, hw)).astype(np.float32)
        w = (rng.standard_normal((f, c, k, k)) * 0.1).astype(np.float32)
        b = np.zeros(f, np.float32)
        oh = (hw + 2 * pad - k) // stride + 1
        gy = rng.standard_normal((n, f, oh, oh)).astype(np.float32)
        if lib == "matgrad":
            import matgrad as mg
            tx, tw, tb = (mg.tensor(a, requires_grad=True) for a in (x, w, b))

            def step():
                tx.zero_grad(), tw.zero_grad(), tb.zero_grad()
                mg.conv2d(tx, tw, tb, stride, pad).backward(gy)
            return step
        if lib == "numpy":
            def step():
                y, cols = numpy_conv_forward(x, w, b, stride, pad)
                return numpy_conv_backward(gy, cols, x.shape, w, stride, pad)
            return step
        import torch
        tx, tw, tb = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))
        tgy = torch.from_numpy(gy)

        def step():
            tx.grad = tw.grad = tb.grad = None
            torch.nn.functional.conv2d(tx, tw, tb, stride, pad).backward(tgy)
        return step
    oh = (hw + 2 * pad - k) // stride + 1
    return build, 3 * 2.0 * n * f * c * k * k * oh * oh, "GFLOP/s"


def _digits_cnn_step_case(batch):
    """One Adam step of mg.nn.digits_cnn on (batch, 1, 8, 8) images, and the same net in PyTorch."""
    def build(lib):
        rng = np.random.default_rng(0)
        x = rng.random((batch, 1, 8, 8)).astype(np.float32)
        labels = rng.integers(0, 10, batch)
        if lib == "matgrad":
            import matgrad as mg
            mg.manual_seed(0)
            net = mg.nn.digits_cnn()
            return matgrad_training_step(net, mg.optim.Adam(net.parameters(), lr=2e-3), x, labels)
        if lib == "numpy":
            return None  # no hand-written CNN step: the comparison is with PyTorch
        import torch
        nn = torch.nn
        torch.manual_seed(0)
        net = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1),
                            nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 16, 10))
        return torch_training_step(net, torch.optim.Adam(net.parameters(), lr=2e-3), x, labels)
    flops = 3 * 2.0 * batch * (16 * 9 * 64 + 32 * 16 * 9 * 64 + 512 * 10)
    return build, flops, "GFLOP/s"


def conv_cases(quick):
    if quick:
        return {
            "conv fwd+bwd f32 N8 3→8 16×16 5×5 pad 2": _conv_case(8, 3, 16, 8, 5, 1, 2),
            "train step digits CNN, batch 32": _digits_cnn_step_case(32),
        }
    return {
        "conv fwd+bwd f32 N50 3→32 32×32 7×7 pad 3 (cs231n)": _conv_case(50, 3, 32, 32, 7, 1, 3),
        "conv fwd+bwd f32 N64 16→32 16×16 3×3 pad 1": _conv_case(64, 16, 16, 32, 3, 1, 1),
        "conv fwd+bwd f32 N64 16→32 16×16 3×3 stride 2 pad 1": _conv_case(64, 16, 16, 32, 3, 2, 1),
        "train step digits CNN, batch 32": _digits_cnn_step_case(32),
        "train step digits CNN, batch 128": _digits_cnn_step_case(128),
    }
