"""Layers: shapes, He initialisation, seeding, parameters and state dicts, and a short training run."""

import numpy as np
import pytest

import matgrad as mg
from matgrad import nn


def test_linear_shapes_init_and_forward():
    mg.manual_seed(0)
    layer = nn.Linear(256, 512)
    w, b = layer.weight, layer.bias
    assert w.shape == (256, 512) and b.shape == (512,)
    assert w.dtype == np.float32 and w.requires_grad and b.requires_grad
    np.testing.assert_array_equal(b.data, 0.0)
    # He: N(0, 2/in); 131,072 draws pin the std within a few per mille
    assert w.data.std() == pytest.approx(np.sqrt(2 / 256), rel=0.02)
    assert abs(w.data.mean()) < 0.01
    x = np.random.default_rng(0).standard_normal((3, 256)).astype(np.float32)
    y = layer(mg.tensor(x))
    assert y.shape == (3, 512)
    np.testing.assert_allclose(y.data, x @ w.data + b.data, rtol=1e-5, atol=1e-5)
    assert "in_features=256" in repr(layer)


def test_linear_without_bias_and_float64():
    layer = nn.Linear(3, 2, bias=False, dtype=np.float64)
    assert layer.bias is None and layer.weight.dtype == np.float64
    assert [n for n, _ in layer.named_parameters()] == ["weight"]


@pytest.mark.parametrize("args, exc", [((0, 3), ValueError), ((3, -1), ValueError), ((2.5, 3), ValueError),
                                       ((True, 3), ValueError)])
def test_linear_bad_sizes(args, exc):
    with pytest.raises(exc, match="positive integer"):
        nn.Linear(*args)
    with pytest.raises(TypeError, match="float32 or float64"):
        nn.Linear(2, 2, dtype=np.int32)


def test_manual_seed_makes_initialisation_reproducible():
    mg.manual_seed(42)
    a = nn.MLP([4, 8, 3])
    mg.manual_seed(42)
    b = nn.MLP([4, 8, 3])
    mg.manual_seed(43)
    c = nn.MLP([4, 8, 3])
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert na == nb
        np.testing.assert_array_equal(pa.data, pb.data)
    assert not np.array_equal(a[0].weight.data, c[0].weight.data)
    with pytest.raises(ValueError, match="non-negative integer"):
        mg.manual_seed(-1)
    with pytest.raises(ValueError, match="non-negative integer"):
        mg.manual_seed(1.5)


def test_mlp_structure_and_parameter_names():
    model = nn.MLP([5, 7, 6, 2])
    kinds = [type(layer).__name__ for layer in model]
    assert kinds == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]  # no ReLU after the last layer
    names = [n for n, _ in model.named_parameters()]
    assert names == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]
    assert [p.shape for p in model.parameters()] == [(5, 7), (7,), (7, 6), (6,), (6, 2), (2,)]
    assert len(model) == 5 and "Linear" in repr(model)
    with pytest.raises(ValueError, match="at least"):
        nn.MLP([3])


def test_sequential_forward_matches_numpy_and_rejects_non_modules():
    mg.manual_seed(1)
    model = nn.Sequential(nn.Linear(3, 4, dtype=np.float64), nn.ReLU(), nn.Linear(4, 2, dtype=np.float64))
    x = np.random.default_rng(1).standard_normal((5, 3))
    l1, l2 = model[0], model[2]
    expect = np.maximum(x @ l1.weight.data + l1.bias.data, 0) @ l2.weight.data + l2.bias.data
    np.testing.assert_allclose(model(mg.tensor(x)).data, expect, rtol=1e-12)
    with pytest.raises(TypeError, match="layer 1 is a int"):
        nn.Sequential(nn.ReLU(), 3)


def test_module_forward_must_be_defined():
    with pytest.raises(NotImplementedError):
        nn.Module()(mg.tensor([1.0]))


def test_shared_parameters_are_listed_once():
    layer = nn.Linear(2, 2)
    model = nn.Sequential(layer, nn.ReLU(), layer)
    assert len(model.parameters()) == 2
    assert len(list(model.named_parameters())) == 4


def test_zero_grad_and_gradients_reach_every_parameter():
    model = nn.MLP([3, 4, 2], dtype=np.float64)
    x = mg.tensor(np.random.default_rng(2).standard_normal((6, 3)))
    mg.cross_entropy(model(x), np.array([0, 1, 0, 1, 1, 0])).backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_gradcheck_through_an_mlp():
    mg.manual_seed(3)
    model = nn.MLP([4, 5, 3], dtype=np.float64)
    x = mg.tensor(np.random.default_rng(3).standard_normal((6, 4)))
    labels = np.array([0, 1, 2, 0, 1, 2])
    w0, b0, w2, b2 = model.parameters()
    assert mg.gradcheck(lambda *ps: mg.cross_entropy(model(x), labels), w0, b0, w2, b2)


def test_state_dict_round_trip_and_errors():
    mg.manual_seed(4)
    a = nn.MLP([3, 4, 2])
    mg.manual_seed(5)
    b = nn.MLP([3, 4, 2])
    state = a.state_dict()
    assert list(state) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    state["0.weight"][0, 0] += 1  # a copy: the model is not touched
    assert a[0].weight.data[0, 0] != state["0.weight"][0, 0]
    b.load_state_dict(a.state_dict())
    for pa, pb in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(pa.data, pb.data)

    before = {k: v.copy() for k, v in b.state_dict().items()}
    bad_shape = dict(a.state_dict(), **{"2.bias": np.zeros(3, np.float32)})
    bad_shape["0.weight"] = bad_shape["0.weight"] + 1  # would be written first if checks were lazy
    with pytest.raises(ValueError, match=r"2.bias has shape \(3,\)"):
        b.load_state_dict(bad_shape)
    missing = a.state_dict()
    del missing["2.bias"]
    with pytest.raises(KeyError, match="missing keys.*2.bias"):
        b.load_state_dict(missing)
    with pytest.raises(KeyError, match="unexpected keys.*extra"):
        b.load_state_dict(dict(a.state_dict(), extra=np.zeros(1)))
    with pytest.raises(TypeError, match="floating point"):
        b.load_state_dict({k: v.astype(np.int64) for k, v in a.state_dict().items()})
    for k, v in b.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_a_short_training_run_learns():
    x_train, y_train, x_test, y_test = mg.data.load_digits_split()
    mg.manual_seed(0)
    model = nn.MLP([64, 32, 10])
    opt = mg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    def evaluate():
        with mg.no_grad():
            logits = model(mg.tensor(x_test))
            return mg.cross_entropy(logits, y_test).item(), float((logits.data.argmax(1) == y_test).mean())

    loss0, acc0 = evaluate()
    order = np.random.default_rng(0).permutation(len(x_train))
    for i in range(0, len(x_train), 32):  # one epoch
        idx = order[i:i + 32]
        loss = mg.cross_entropy(model(mg.tensor(x_train[idx])), y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    loss1, acc1 = evaluate()
    assert loss1 < 0.5 * loss0
    assert acc1 > 0.8 > acc0 + 0.3  # chance is 0.1


def test_sequential_fuses_linear_then_relu_without_changing_results():
    mg.manual_seed(7)
    net = mg.nn.MLP([5, 8, 6, 3], dtype=np.float64)
    x = mg.tensor(np.random.default_rng(3).standard_normal((4, 5)))
    out = net(x)
    ops_in_graph = []
    node = out
    while node._prev:  # walk back along the main path: first input of each node
        ops_in_graph.append(node._op)
        node = node._prev[0]
    assert ops_in_graph == ["linear", "linear_relu", "linear_relu"]
    # the same layers run one by one, unfused
    h = x
    for layer in net.layers:
        h = layer(h)
    np.testing.assert_allclose(out.data, h.data, rtol=1e-12, atol=1e-12)
    out.sum().backward()
    fused_grads = [p.grad.copy() for p in net.parameters()]
    net.zero_grad()
    h.sum().backward()
    for p, g in zip(net.parameters(), fused_grads):
        np.testing.assert_allclose(p.grad, g, rtol=1e-12, atol=1e-12)
