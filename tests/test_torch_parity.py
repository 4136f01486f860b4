"""Forward values and gradients against PyTorch in float64 (skipped when torch is not installed)."""

import numpy as np
import pytest

import matgrad as mg

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _pair(a):
    return mg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)


@pytest.mark.parametrize("seed", range(4))
def test_random_mlps_match_pytorch(seed):
    rng = np.random.default_rng(seed)
    sizes = [int(s) for s in rng.integers(2, 9, size=rng.integers(3, 5))]
    n = int(rng.integers(1, 7))
    x_np = rng.standard_normal((n, sizes[0]))
    labels = rng.integers(0, sizes[-1], n)
    mg.manual_seed(seed)
    model = mg.nn.MLP(sizes, dtype=np.float64)
    params = model.parameters()
    for p in params:  # random biases too, so that no ReLU input sits at zero by construction
        p.data[...] = rng.standard_normal(p.shape)
    tparams = [torch.tensor(p.data, requires_grad=True) for p in params]
    x, tx = _pair(x_np)

    loss = mg.cross_entropy(model(x), labels)
    h = tx
    for i in range(0, len(tparams), 2):
        h = h @ tparams[i] + tparams[i + 1]
        if i + 2 < len(tparams):
            h = torch.relu(h)
    tloss = F.cross_entropy(h, torch.tensor(labels))
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-12)
    loss.backward()
    tloss.backward()
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    for p, tp in zip(params, tparams):
        np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_broadcasting_reductions_and_views_match_pytorch():
    rng = np.random.default_rng(5)
    (a, ta), (b, tb), (c, tc) = _pair(rng.standard_normal((3, 4))), _pair(rng.standard_normal(4)), \
        _pair(rng.standard_normal((3, 1)))
    y = ((a + b) * c - b).relu().mean(axis=0) + (a.T.reshape(2, 6) * 2.0).sum(axis=1).sum() - (-c).sum()
    ty = ((ta + tb) * tc - tb).relu().mean(dim=0) + (ta.T.reshape(2, 6) * 2.0).sum(dim=1).sum() - (-tc).sum()
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-12)
    g = rng.standard_normal(y.shape)
    y.backward(g)
    ty.backward(torch.tensor(g))
    for t, tt in ((a, ta), (b, tb), (c, tc)):
        np.testing.assert_allclose(t.grad, tt.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_losses_match_pytorch():
    rng = np.random.default_rng(6)
    s_np = rng.standard_normal((6, 5))
    labels = rng.integers(0, 5, 6)
    s, ts = _pair(s_np)
    mg.svm_loss(s, labels).backward()
    # multi_margin_loss averages over the classes too: ×C gives cs231n's sum over classes
    tl = F.multi_margin_loss(ts, torch.tensor(labels), margin=1.0) * 5
    tl.backward()
    np.testing.assert_allclose(mg.svm_loss(mg.tensor(s_np), labels).item(), tl.item(), rtol=1e-12)
    np.testing.assert_allclose(s.grad, ts.grad.numpy(), rtol=1e-12)
    (p, tp), (t, tt) = _pair(s_np), _pair(rng.standard_normal((6, 5)))
    loss, tloss = mg.mse_loss(p, t), F.mse_loss(tp, tt)
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-12)
    loss.backward()
    tloss.backward()
    np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(t.grad, tt.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("name", ["sgd", "sgd_momentum_wd", "adam", "adam_wd"])
def test_optimizer_steps_match_pytorch(name):
    rng = np.random.default_rng(8)
    p0 = rng.standard_normal((3, 4))
    p, tp = _pair(p0.copy())
    make = {
        "sgd": (lambda ps: mg.optim.SGD(ps, lr=0.1), lambda ps: torch.optim.SGD(ps, lr=0.1)),
        "sgd_momentum_wd": (lambda ps: mg.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=0.01),
                            lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=0.01)),
        "adam": (lambda ps: mg.optim.Adam(ps, lr=0.01), lambda ps: torch.optim.Adam(ps, lr=0.01)),
        "adam_wd": (lambda ps: mg.optim.Adam(ps, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
                    lambda ps: torch.optim.Adam(ps, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    }[name]
    opt, topt = make[0]([p]), make[1]([tp])
    for _ in range(5):
        g = rng.standard_normal((3, 4))
        p.grad = g.copy()
        tp.grad = torch.tensor(g)
        opt.step()
        topt.step()
    np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-12, atol=1e-14)


_FUZZ_OPS = {
    "matmul": lambda a, b, bias: a @ b,
    "add": lambda a, b, bias: a + b,
    "sub": lambda a, b, bias: a - b,
    "mul": lambda a, b, bias: a * b,
    "neg": lambda a, b, bias: -a,
    "relu": lambda a, b, bias: a.relu(),
    "T": lambda a, b, bias: a.T,
    "reshape": lambda a, b, bias: a.reshape(-1).reshape(3, 3),
    "add_bias": lambda a, b, bias: a + bias,
    "bias_mul": lambda a, b, bias: bias * a,
    "scale": lambda a, b, bias: a * 0.7,
    "rsub": lambda a, b, bias: 1.5 - a,
}


@pytest.mark.parametrize("chunk", range(4))
def test_random_graphs_with_fan_out_match_pytorch(chunk):
    """Random DAGs of 25 ops where values are reused (fan-out), so upstream gradient buffers are
    shared: checks that no backward writes into a buffer another input still reads."""
    for seed in range(chunk * 50, chunk * 50 + 50):
        rng = np.random.default_rng(seed)
        arrays = [rng.standard_normal((3, 3)) for _ in range(3)] + [rng.standard_normal(3)]
        needs = [True, True, False, True]
        ours = [mg.tensor(a.copy(), requires_grad=r) for a, r in zip(arrays, needs)]
        theirs = [torch.tensor(a.copy(), requires_grad=r) for a, r in zip(arrays, needs)]
        leaves = list(zip(ours, theirs))
        mats = [0, 1, 2]
        for _ in range(25):
            fn = _FUZZ_OPS[rng.choice(list(_FUZZ_OPS))]
            i, j = (int(k) for k in rng.choice(mats, 2))
            ours.append(fn(ours[i], ours[j], ours[3]))
            theirs.append(fn(theirs[i], theirs[j], theirs[3]))
            mats.append(len(ours) - 1)
        k = [int(v) for v in rng.choice(mats[3:], 3)]
        out = (ours[k[0]] + ours[k[1]] * ours[k[2]]).mean(axis=0)
        tout = (theirs[k[0]] + theirs[k[1]] * theirs[k[2]]).mean(dim=0)
        np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-10, atol=1e-10)
        if not out.requires_grad:
            continue
        g = rng.standard_normal(out.shape)
        twice = bool(rng.integers(2))
        out.backward(g, retain_graph=twice)
        tout.backward(torch.tensor(g), retain_graph=twice)
        if twice:
            out.backward(g)
            tout.backward(torch.tensor(g))
        for m, t in leaves:
            if t.grad is None:
                assert m.grad is None or not np.any(m.grad), seed
            else:
                np.testing.assert_allclose(m.grad, t.grad.numpy(), rtol=1e-9, atol=1e-9, err_msg=f"seed {seed}")
