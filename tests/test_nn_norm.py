"""BatchNorm1d, BatchNorm2d, LayerNorm and Dropout layers: parameters and buffers, train/eval mode,
state dicts and save/load, errors."""

import numpy as np
import pytest

import matgrad as mg
from matgrad import nn


def test_batchnorm1d_parameters_buffers_and_training_forward(rng):
    bn = nn.BatchNorm1d(3)
    assert [n for n, _ in bn.named_parameters()] == ["weight", "bias"]
    assert [n for n, _ in bn.named_buffers()] == ["running_mean", "running_var", "num_batches_tracked"]
    np.testing.assert_array_equal(bn.weight.data, 1.0)
    np.testing.assert_array_equal(bn.bias.data, 0.0)
    np.testing.assert_array_equal(bn.running_mean, 0.0)
    np.testing.assert_array_equal(bn.running_var, 1.0)
    assert bn.weight.dtype == np.float32 and bn.running_mean.dtype == np.float32
    assert bn.num_batches_tracked.dtype == np.int64 and bn.num_batches_tracked.shape == ()
    x = (rng.standard_normal((16, 3)) * 3 + 2).astype(np.float32)
    y = bn(mg.tensor(x))
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.data.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.data.std(0), 1.0, rtol=1e-3)
    np.testing.assert_allclose(bn.running_mean, 0.1 * x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(bn.running_var, 0.9 + 0.1 * x.var(0, ddof=1), rtol=1e-5)
    assert int(bn.num_batches_tracked) == 1
    bn(mg.tensor(x))
    assert int(bn.num_batches_tracked) == 2
    y.sum().backward()
    assert bn.weight.grad.shape == (3,) and bn.bias.grad.shape == (3,)


def test_batchnorm_eval_uses_running_statistics_and_does_not_update(rng):
    bn = nn.BatchNorm1d(2, dtype=np.float64, momentum=0.5)
    for _ in range(30):
        bn(mg.tensor(rng.standard_normal((32, 2)) * np.array([2.0, 0.5]) + np.array([3.0, -1.0])))
    bn.eval()
    assert not bn.training
    rm, rv, count = bn.running_mean.copy(), bn.running_var.copy(), int(bn.num_batches_tracked)
    x = rng.standard_normal((5, 2))
    y = bn(mg.tensor(x)).data
    np.testing.assert_allclose(y, (x - rm) / np.sqrt(rv + 1e-5), rtol=1e-12)
    np.testing.assert_array_equal(bn.running_mean, rm)
    np.testing.assert_array_equal(bn.running_var, rv)
    assert int(bn.num_batches_tracked) == count
    assert bn(mg.tensor(x[:1])).shape == (1, 2)  # a single sample is fine in eval mode


def test_batchnorm2d_per_channel(rng):
    bn = nn.BatchNorm2d(3, dtype=np.float64)
    assert bn.num_channels == 3
    x = rng.standard_normal((4, 3, 5, 5)) * np.array([1.0, 5.0, 0.2])[None, :, None, None]
    y = bn(mg.tensor(x)).data
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0.0, atol=1e-12)
    np.testing.assert_allclose(y.std(axis=(0, 2, 3)), 1.0, rtol=1e-3)
    n = 4 * 5 * 5
    np.testing.assert_allclose(bn.running_var, 0.9 + 0.1 * x.var(axis=(0, 2, 3)) * n / (n - 1), rtol=1e-12)
    assert "BatchNorm2d(3" in repr(bn)


def test_layernorm_layer(rng):
    ln = nn.LayerNorm(6, dtype=np.float64)
    assert nn.LayerNorm((6,)).normalized_shape == 6
    ln.weight.data[:] = np.arange(1.0, 7.0)
    ln.bias.data[:] = 0.5
    x = rng.standard_normal((2, 3, 6)) * 4
    y = ln(mg.tensor(x)).data
    naive = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5) * np.arange(1.0, 7.0) + 0.5
    np.testing.assert_allclose(y, naive, rtol=1e-12)
    assert [n for n, _ in ln.named_parameters()] == ["weight", "bias"]
    assert list(ln.named_buffers()) == []


def test_dropout_layer_follows_training():
    mg.manual_seed(0)
    drop = nn.Dropout(0.5)
    x = mg.tensor(np.ones((100, 100)))
    y = drop(x)
    assert 0.45 < (y.data == 0).mean() < 0.55
    drop.eval()
    assert drop(x) is x
    drop.train()
    assert drop(x) is not x


def test_train_eval_propagate_through_sequential_and_state_dict_round_trip(rng, tmp_path):
    mg.manual_seed(1)
    model = nn.Sequential(nn.Linear(4, 8, dtype=np.float64), nn.BatchNorm1d(8, dtype=np.float64), nn.ReLU(),
                          nn.Dropout(0.5), nn.Linear(8, 2, dtype=np.float64))
    assert all(m.training for m in model.modules())
    x = mg.tensor(rng.standard_normal((10, 4)))
    for _ in range(3):
        model(x)
    assert int(model[1].num_batches_tracked) == 3
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    a, b = model(x).data, model(x).data
    np.testing.assert_array_equal(a, b)  # no dropout, fixed statistics
    model.train()
    assert all(m.training for m in model.modules())
    assert not np.array_equal(model(x).data, model(x).data)  # dropout drops differently each time

    state = model.state_dict()
    for key in ("1.running_mean", "1.running_var", "1.num_batches_tracked", "1.weight", "1.bias"):
        assert key in state
    assert state["1.num_batches_tracked"].dtype == np.int64
    path = tmp_path / "model.npz"
    mg.save(model, path)
    mg.manual_seed(2)
    other = nn.Sequential(nn.Linear(4, 8, dtype=np.float64), nn.BatchNorm1d(8, dtype=np.float64), nn.ReLU(),
                          nn.Dropout(0.5), nn.Linear(8, 2, dtype=np.float64))
    assert not np.array_equal(other[1].running_mean, model[1].running_mean)
    mg.load(other, path)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(other.state_dict()[name], value)
    assert int(other[1].num_batches_tracked) == int(model[1].num_batches_tracked) == 5
    model.eval()
    other.eval()
    np.testing.assert_array_equal(other(x).data, model(x).data)


def test_a_refused_batch_of_one_leaves_the_layer_untouched():
    bn = nn.BatchNorm1d(3)
    with pytest.raises(ValueError, match="a batch of one cannot be normalised in training mode"):
        bn(mg.tensor(np.ones((1, 3), np.float32)))
    assert int(bn.num_batches_tracked) == 0
    np.testing.assert_array_equal(bn.running_mean, 0.0)
    np.testing.assert_array_equal(bn.running_var, 1.0)


@pytest.mark.parametrize("layer, shape, match", [
    (lambda: nn.BatchNorm1d(3), (4, 5), r"BatchNorm1d\(3\): expected input of shape \(N, num_features\).*\(4, 5\)"),
    (lambda: nn.BatchNorm1d(3), (4, 3, 2), r"BatchNorm1d\(3\).*got shape \(4, 3, 2\)"),
    (lambda: nn.BatchNorm2d(3), (4, 3), r"BatchNorm2d\(3\): expected input of shape \(N, num_channels, H, W\)"),
    (lambda: nn.BatchNorm2d(3), (2, 4, 5, 5), r"BatchNorm2d\(3\).*\(2, 4, 5, 5\)"),
    (lambda: nn.LayerNorm(5), (2, 4), r"LayerNorm\(5\): expected input of shape \(\.\.\., 5\), got shape \(2, 4\)"),
])
def test_wrong_input_shapes(layer, shape, match):
    with pytest.raises(ValueError, match=match):
        layer()(mg.tensor(np.ones(shape, np.float32)))


@pytest.mark.parametrize("make, exc, match", [
    (lambda: nn.BatchNorm1d(0), ValueError, "BatchNorm1d: num_features must be a positive integer"),
    (lambda: nn.BatchNorm2d(2.5), ValueError, "BatchNorm2d: num_channels must be a positive integer"),
    (lambda: nn.BatchNorm1d(3, eps=0), ValueError, "eps"),
    (lambda: nn.BatchNorm1d(3, momentum=-0.1), ValueError, "momentum"),
    (lambda: nn.BatchNorm2d(3, dtype=np.int32), TypeError, "float32 or float64"),
    (lambda: nn.LayerNorm((2, 3)), ValueError, "last axis"),
    (lambda: nn.LayerNorm(-1), ValueError, "positive integer"),
    (lambda: nn.Dropout(1.2), ValueError, "Dropout: p must be"),
    (lambda: nn.Dropout(-0.5), ValueError, "Dropout: p must be"),
])
def test_bad_constructor_arguments(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_layer_input_must_be_a_tensor():
    with pytest.raises(TypeError, match="BatchNorm1d: expected a Tensor"):
        nn.BatchNorm1d(2)(np.ones((3, 2), np.float32))


def test_batchnorm_layer_matches_torch(rng):
    torch = pytest.importorskip("torch")
    ours = nn.BatchNorm2d(3, momentum=0.2, dtype=np.float64)
    theirs = torch.nn.BatchNorm2d(3, momentum=0.2, dtype=torch.float64)
    for _ in range(3):
        x = rng.standard_normal((2, 3, 4, 4)) * 2 + 1
        ours(mg.tensor(x))
        theirs(torch.tensor(x))
    for name, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[name], value.numpy(), rtol=1e-13, err_msg=name)
    ours.eval()
    theirs.eval()
    x = rng.standard_normal((2, 3, 4, 4))
    np.testing.assert_allclose(ours(mg.tensor(x)).data, theirs(torch.tensor(x)).detach().numpy(), rtol=1e-12)
