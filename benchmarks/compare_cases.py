"""compare.py's cases: name -> (build, work per call, unit), where build(lib) returns a
zero-argument callable that does the work once in library `lib` ("matgrad", "numpy", "torch"),
or None where that library has no version of the case. The convolution rows come from
conv_cases.py. Imported by compare.py, compare_turns.py (its workers) and thread_scaling.py."""

from __future__ import annotations

import os
import sys

# ---- cases -------------------------------------------------------------------
# Each case builds its inputs with numpy and returns a zero-argument callable
# that does the work once in the given library. `work` is FLOPs (or bytes for
# memory-bound cases) per call, used for the rate column.

def _gemm_case(m, n, k, dtype, trans_a=False, trans_b=False):
    def build(lib):
        import numpy as np
        rng = np.random.default_rng(0)
        a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
        b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
        c = np.empty((m, n), dtype)
        if lib == "matgrad":
            from matgrad import kernels
            return lambda: kernels.matmul(a, b, trans_a=trans_a, trans_b=trans_b, out=c)
        if lib == "numpy":
            opa, opb = (a.T if trans_a else a), (b.T if trans_b else b)
            return lambda: np.matmul(opa, opb, out=c)
        import torch
        ta, tb, tc = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(c)
        opa, opb = (ta.T if trans_a else ta), (tb.T if trans_b else tb)
        return lambda: torch.matmul(opa, opb, out=tc)
    return build, 2.0 * m * n * k, "GFLOP/s"


def _relu_forward_case(side):
    def build(lib):
        import numpy as np
        x = np.random.default_rng(0).standard_normal((side, side)).astype(np.float32)
        y = np.empty_like(x)
        if lib == "matgrad":
            from matgrad import kernels
            return lambda: kernels.relu_forward(x, out=y)
        if lib == "numpy":
            return lambda: np.maximum(x, 0, out=y)
        import torch
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        return lambda: torch.clamp_min(tx, 0, out=ty)
    return build, 2.0 * side * side * 4, "GB/s"


def _relu_backward_case(side):
    def build(lib):
        import numpy as np
        rng = np.random.default_rng(0)
        x = rng.standard_normal((side, side)).astype(np.float32)
        g = rng.standard_normal((side, side)).astype(np.float32)
        d = np.empty_like(x)
        if lib == "matgrad":
            from matgrad import kernels
            return lambda: kernels.relu_backward(g, x, out=d)
        if lib == "numpy":
            return lambda: np.multiply(g, x > 0, out=d)
        import torch
        tx, tg = torch.from_numpy(x), torch.from_numpy(g)
        return lambda: torch.ops.aten.threshold_backward(tg, tx, 0)
    return build, 3.0 * side * side * 4, "GB/s"


def _copy_case(side):
    """The streaming rate: a plain copy of the bytes a ReLU forward moves."""
    def build(lib):
        import numpy as np
        x = np.random.default_rng(0).standard_normal((side, side)).astype(np.float32)
        y = np.empty_like(x)
        return lambda: np.copyto(y, x)
    return build, 2.0 * side * side * 4, "GB/s"


def _lecture_layer_case(n, d, m):
    """The lecture's layer y = relu(x·w + b), forward and backward (dL/dx, dL/dw, dL/db)."""
    def build(lib):
        import numpy as np
        rng = np.random.default_rng(0)
        x = rng.standard_normal((n, d)).astype(np.float32)
        w = (rng.standard_normal((d, m)) / np.sqrt(d)).astype(np.float32)
        b = rng.standard_normal(m).astype(np.float32)
        gy = rng.standard_normal((n, m)).astype(np.float32)
        if lib == "matgrad":
            import matgrad as mg
            tx, tw, tb = (mg.tensor(a, requires_grad=True) for a in (x, w, b))

            def step():
                for t in (tx, tw, tb):
                    t.zero_grad()
                mg.linear(tx, tw, tb, relu=True).backward(gy)
            return step
        if lib == "numpy":
            def step():
                y = np.maximum(x @ w + b, 0)
                g = gy * (y > 0)
                return g @ w.T, x.T @ g, g.sum(axis=0)
            return step
        import torch
        tx, tw, tb = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))
        tgy = torch.from_numpy(gy)

        def step():
            for t in (tx, tw, tb):
                t.grad = None
            torch.relu(torch.addmm(tb, tx, tw)).backward(tgy)
        return step
    return build, 3 * 2.0 * n * d * m, "GFLOP/s"


def matgrad_training_step(net, opt, x, labels):
    """A training step in matgrad: gradients cleared, softmax cross-entropy of net(x) against the
    integer labels, backward, the optimizer's update."""
    import matgrad as mg
    tx = mg.tensor(x)

    def step():
        opt.zero_grad()
        mg.cross_entropy(net(tx), labels).backward()
        opt.step()
    return step


def torch_training_step(net, opt, x, labels):
    """The same step in PyTorch."""
    import torch
    tx, ty = torch.from_numpy(x), torch.from_numpy(labels)

    def step():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(tx), ty).backward()
        opt.step()
    return step


def _mlp_step_case(sizes, batch):
    """One training step: forward, softmax cross-entropy, backward, SGD update."""
    def build(lib):
        import numpy as np
        rng = np.random.default_rng(0)
        x = rng.standard_normal((batch, sizes[0])).astype(np.float32)
        labels = rng.integers(0, sizes[-1], batch)
        weights = [(rng.standard_normal((a, b)) * np.sqrt(2 / a)).astype(np.float32)
                   for a, b in zip(sizes[:-1], sizes[1:])]
        biases = [np.zeros(b, np.float32) for b in sizes[1:]]
        lr = 0.01
        if lib == "matgrad":
            import matgrad as mg
            net = mg.nn.MLP(sizes)
            for layer, w, b in zip(net.layers[::2], weights, biases):
                layer.weight.data[...] = w
                layer.bias.data[...] = b
            return matgrad_training_step(net, mg.optim.SGD(net.parameters(), lr=lr), x, labels)
        if lib == "numpy":  # written by hand: the floor for per-op overhead
            def step():
                acts = [x]
                for i, (w, b) in enumerate(zip(weights, biases)):
                    z = acts[-1] @ w + b
                    acts.append(np.maximum(z, 0, out=z) if i < len(weights) - 1 else z)
                z = acts[-1]
                p = np.exp(z - z.max(axis=1, keepdims=True))
                p /= p.sum(axis=1, keepdims=True)
                p[np.arange(batch), labels] -= 1
                g = p / batch
                for i in range(len(weights) - 1, -1, -1):
                    gw, gb = acts[i].T @ g, g.sum(axis=0)
                    if i:
                        g = g @ weights[i].T
                        g *= acts[i] > 0
                    weights[i] -= lr * gw
                    biases[i] -= lr * gb
            return step
        import torch
        layers = []
        for i, (w, b) in enumerate(zip(weights, biases)):
            lin = torch.nn.Linear(w.shape[0], w.shape[1])
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(w.T))
                lin.bias.copy_(torch.from_numpy(b))
            layers.append(lin)
            if i < len(weights) - 1:
                layers.append(torch.nn.ReLU())
        net = torch.nn.Sequential(*layers)
        return torch_training_step(net, torch.optim.SGD(net.parameters(), lr=lr), x, labels)
    flops = 3 * 2.0 * batch * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    return build, flops, "GFLOP/s"


def _tiny_graph_case():
    """An 8×8 matmul, relu, sum and backward: nothing but per-op overhead."""
    def build(lib):
        import numpy as np
        rng = np.random.default_rng(0)
        x = rng.standard_normal((8, 8)).astype(np.float32)
        w = rng.standard_normal((8, 8)).astype(np.float32)
        if lib == "matgrad":
            import matgrad as mg
            tx, tw = mg.tensor(x, requires_grad=True), mg.tensor(w, requires_grad=True)

            def step():
                tx.zero_grad()
                tw.zero_grad()
                (tx @ tw).relu().sum().backward()
            return step
        if lib == "numpy":
            def step():
                y = x @ w
                g = (y > 0).astype(np.float32)
                return g @ w.T, x.T @ g, np.maximum(y, 0).sum()
            return step
        import torch
        tx, tw = torch.from_numpy(x).requires_grad_(), torch.from_numpy(w).requires_grad_()

        def step():
            tx.grad = tw.grad = None
            (tx @ tw).relu().sum().backward()
        return step
    return build, 3 * 2.0 * 8 ** 3, "GFLOP/s"


# The GEMM grid of issue 9's targets (four transpose cases, both dtypes, at each size) and the
# sizes of the rate-against-size plot, whose points at grid sizes are the grid's A·B rows.
GEMM_SIZES = (256, 512, 1024, 2048)
SWEEP_SIZES = (128, 256, 512, 1024, 2048)
TRANSPOSE_CASES = ((False, False), (False, True), (True, False), (True, True))


# Rows that issue 9's targets name (compare_targets.py).
LECTURE_PRODUCTS = ("lecture y = x·w f32", "lecture dx = dy·wᵀ f32", "lecture dw = xᵀ·dy f32")
LECTURE_LAYER = "lecture layer fwd+bwd f32"
MLP_STEP = "train step MLP 784-512-256-10, batch 128"
OFF_GRID_PREFIX = "off-grid gemm "


def gemm_case_name(dname: str, s: int, trans_a: bool = False, trans_b: bool = False) -> str:
    return f"gemm {dname} {s}³ {'Aᵀ' if trans_a else 'A'}·{'Bᵀ' if trans_b else 'B'}"


def sweep_case_name(dname: str, s: int) -> str:
    """The row of the plot's point at size s: the grid's A·B row where there is one."""
    return gemm_case_name(dname, s) if s in GEMM_SIZES else f"sweep gemm {dname} {s}³"


def off_grid_case_name(dname: str, m: int, n: int, k: int) -> str:
    return f"{OFF_GRID_PREFIX}{dname} {m}×{n}×{k}"


# Shapes off every grid (odd, non-square, not multiples of any block), m×n×k.
OFF_GRID_SHAPES = ((1000, 1000, 1000), (777, 1023, 513), (1999, 61, 1500), (100, 3001, 299),
                   (33, 2047, 1025))


def _conv_cases(quick: bool):
    """The convolution rows, from benchmarks/conv_cases.py (found beside this file however it runs)."""
    here = os.path.dirname(os.path.abspath(__file__))
    if here not in sys.path:
        sys.path.insert(0, here)
    from conv_cases import conv_cases
    return conv_cases(quick)


def cases(quick: bool, only: str | None = None):
    """The benchmark table: name -> (build, work per call, unit). ``only``: a regex on names."""
    import re

    import numpy as np
    n_lect, d_lect = (16, 512) if quick else (64, 4096)
    side = 512 if quick else 4096
    table = {}
    for s in (256,) if quick else GEMM_SIZES:
        for dtype, dname in ((np.float32, "f32"), (np.float64, "f64")):
            for ta, tb in TRANSPOSE_CASES:
                table[gemm_case_name(dname, s, ta, tb)] = _gemm_case(s, s, s, dtype, ta, tb)
    table.update({
        LECTURE_PRODUCTS[0]: _gemm_case(n_lect, d_lect, d_lect, np.float32),
        LECTURE_PRODUCTS[1]: _gemm_case(n_lect, d_lect, d_lect, np.float32, trans_b=True),
        LECTURE_PRODUCTS[2]: _gemm_case(d_lect, d_lect, n_lect, np.float32, trans_a=True),
        LECTURE_LAYER: _lecture_layer_case(n_lect, d_lect, d_lect),
        "batch 1 y = x·w f32": _gemm_case(1, d_lect, d_lect, np.float32),
        "batch 1 dx = dy·wᵀ f32": _gemm_case(1, d_lect, d_lect, np.float32, trans_b=True),
        f"relu forward f32 {side}²": _relu_forward_case(side),
        f"relu backward f32 {side}²": _relu_backward_case(side),
        f"copy f32 {side}² (streaming rate)": _copy_case(side),
        MLP_STEP: _mlp_step_case([784, 512, 256, 10], 128),
        "train step MLP 64-64-64-10, batch 32": _mlp_step_case([64, 64, 64, 10], 32),
        "tiny graph 8×8 matmul-relu-sum-backward": _tiny_graph_case(),
    })
    table.update(_conv_cases(quick))
    if not quick:
        for m, n, k in OFF_GRID_SHAPES:
            for dtype, dname in ((np.float32, "f32"), (np.float64, "f64")):
                table[off_grid_case_name(dname, m, n, k)] = _gemm_case(m, n, k, dtype)
        for s in SWEEP_SIZES:
            for dtype, dname in ((np.float32, "f32"), (np.float64, "f64")):
                table.setdefault(sweep_case_name(dname, s), _gemm_case(s, s, s, dtype))
    if only:
        table = {k: v for k, v in table.items() if re.search(only, k)}
    return table
