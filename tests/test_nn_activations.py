"""nn/activations.py: Tanh, Sigmoid, LeakyReLU and Flatten as layers: forward equal to their ops,
reprs, no parameters, gradients through a Sequential, and bad arguments."""

import numpy as np
import pytest

import matgrad as mg
from matgrad import nn

rng = np.random.default_rng(97)


@pytest.mark.parametrize("layer, op", [
    (nn.Tanh(), mg.tanh),
    (nn.Sigmoid(), mg.sigmoid),
    (nn.LeakyReLU(), mg.leaky_relu),
    (nn.LeakyReLU(0.2), lambda x: mg.leaky_relu(x, 0.2)),
    (nn.LeakyReLU(negative_slope=np.float64(0.5)), lambda x: mg.leaky_relu(x, 0.5)),
    (nn.Flatten(), mg.flatten),
    (nn.Flatten(0), lambda x: mg.flatten(x, 0)),
    (nn.Flatten(start_axis=2), lambda x: x.flatten(2)),
])
def test_layers_compute_their_op(layer, op):
    x = mg.tensor(rng.standard_normal((2, 3, 4)), requires_grad=True)
    y = layer(x)
    np.testing.assert_array_equal(y.data, op(x).data)
    assert y.requires_grad and y.dtype == np.float64
    assert layer.parameters() == [] and layer.state_dict() == {}
    g = rng.standard_normal(y.shape)
    y.backward(g)
    expect = mg.tensor(x.data, requires_grad=True)
    op(expect).backward(g)
    np.testing.assert_array_equal(x.grad, expect.grad)


def test_leaky_relu_layer_uses_its_slope():
    x = mg.tensor([-2.0, 3.0], dtype=np.float64, requires_grad=True)
    y = nn.LeakyReLU(0.25)(x)
    np.testing.assert_array_equal(y.data, [-0.5, 3.0])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [0.25, 1.0])
    np.testing.assert_array_equal(nn.LeakyReLU()(x).data, [-0.02, 3.0])


def test_reprs_show_the_arguments():
    assert repr(nn.Tanh()) == "Tanh()"
    assert repr(nn.Sigmoid()) == "Sigmoid()"
    assert repr(nn.LeakyReLU()) == "LeakyReLU(negative_slope=0.01)"
    assert repr(nn.LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2)"
    assert repr(nn.Flatten()) == "Flatten(start_axis=1)"
    assert repr(nn.Flatten(start_axis=0)) == "Flatten(start_axis=0)"
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2), nn.Tanh())
    assert "(0): Flatten(start_axis=1)" in repr(model) and "(2): Tanh()" in repr(model)


def test_layers_are_exported():
    for name in ("Tanh", "Sigmoid", "LeakyReLU", "Flatten"):
        assert name in nn.__all__ and getattr(nn, name).__module__ == "matgrad.nn.activations"


def test_gradcheck_through_a_sequential_with_every_new_layer():
    mg.manual_seed(3)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 6, dtype=np.float64), nn.Tanh(),
                          nn.Linear(6, 5, dtype=np.float64), nn.LeakyReLU(0.1), nn.Linear(5, 3, dtype=np.float64),
                          nn.Sigmoid())
    x = mg.tensor(rng.standard_normal((4, 3, 2, 2)), requires_grad=True)
    y = model(x)
    assert y.shape == (4, 3) and np.all((y.data > 0) & (y.data < 1))
    assert mg.gradcheck(model, x)
    w = model[1].weight
    assert mg.gradcheck(lambda w: model(x), w)


def test_float32_model_stays_float32_and_trains():
    mg.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 1), nn.Sigmoid())
    x = mg.tensor(rng.standard_normal((16, 2, 4)), dtype=np.float32)
    target = mg.tensor((x.data.sum(axis=(1, 2)) > 0).astype(np.float32).reshape(16, 1))
    opt = mg.optim.SGD(model.parameters(), lr=0.5)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = mg.mse_loss(model(x), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert model(x).dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in model.parameters())
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("make, match", [
    (lambda: nn.LeakyReLU("0.1"), "LeakyReLU: negative_slope must be a number, got str"),
    (lambda: nn.LeakyReLU(mg.tensor(0.1)), "negative_slope must be a number, got Tensor"),
    (lambda: nn.LeakyReLU(True), "negative_slope must be a number, got bool"),
    (lambda: nn.Flatten(1.5), "Flatten: start_axis must be an int, got 1.5"),
    (lambda: nn.Flatten(True), "Flatten: start_axis must be an int, got True"),
])
def test_bad_arguments(make, match):
    with pytest.raises(TypeError, match=match):
        make()


def test_flatten_layer_on_an_input_with_too_few_axes():
    x = mg.tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError, match=r"flatten: start_axis 1 is invalid for a tensor of shape \(3,\)"):
        nn.Flatten()(x)
    assert x.grad is None
