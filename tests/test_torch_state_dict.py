"""mg.nn.to_torch_state_dict / mg.nn.load_torch_state_dict: weights exchanged with the equivalent
torch.nn.Sequential (strict loading), outputs compared in float64 in eval mode, and the error
contract: every key, shape and dtype checked before anything is written."""

import numpy as np
import pytest

import matgrad as mg
from matgrad import nn

torch = pytest.importorskip("torch")
tnn = torch.nn

F64 = np.float64


def _randomize(model, rng):
    """Random parameters and batch-norm statistics (so that a transposed or skipped tensor shows)."""
    for _, p in model.named_parameters():
        p.data[...] = rng.standard_normal(p.data.shape)
    for name, b in model.named_buffers():
        if name.endswith("running_mean"):
            b[...] = rng.standard_normal(b.shape)
        elif name.endswith("running_var"):
            b[...] = rng.uniform(0.5, 2.0, b.shape)
        elif name.endswith("num_batches_tracked"):
            b[...] = rng.integers(1, 100)
    return model


def _mlp():
    m = nn.MLP([5, 8, 7, 3], dtype=F64)
    t = tnn.Sequential(tnn.Linear(5, 8), tnn.ReLU(), tnn.Linear(8, 7), tnn.ReLU(), tnn.Linear(7, 3))
    return m, t, (4, 5)


def _cnn():
    m = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, dtype=F64), nn.BatchNorm2d(4, dtype=F64), nn.ReLU(),
                      nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 3 * 3, 5, dtype=F64))
    t = tnn.Sequential(tnn.Conv2d(2, 4, 3, padding=1), tnn.BatchNorm2d(4), tnn.ReLU(), tnn.MaxPool2d(2),
                       tnn.Flatten(), tnn.Linear(4 * 3 * 3, 5))
    return m, t, (3, 2, 6, 6)


def _mixed():
    # conv (stride 2, no bias) -> leaky relu -> avg pool (stride (2, 1)) -> flatten -> linear ->
    # batch norm 1d -> layer norm -> tanh -> dropout -> linear (no bias) -> sigmoid
    m = nn.Sequential(nn.Conv2d(1, 3, 3, stride=2, padding=1, bias=False, dtype=F64), nn.LeakyReLU(0.2),
                      nn.AvgPool2d(2, stride=(2, 1)), nn.Flatten(), nn.Linear(3 * 2 * 3, 6, dtype=F64),
                      nn.BatchNorm1d(6, dtype=F64), nn.LayerNorm(6, eps=1e-3, dtype=F64), nn.Tanh(),
                      nn.Dropout(0.3), nn.Linear(6, 2, bias=False, dtype=F64), nn.Sigmoid())
    t = tnn.Sequential(tnn.Conv2d(1, 3, 3, stride=2, padding=1, bias=False), tnn.LeakyReLU(0.2),
                       tnn.AvgPool2d(2, stride=(2, 1)), tnn.Flatten(), tnn.Linear(3 * 2 * 3, 6),
                       tnn.BatchNorm1d(6), tnn.LayerNorm(6, eps=1e-3), tnn.Tanh(), tnn.Dropout(0.3),
                       tnn.Linear(6, 2, bias=False), tnn.Sigmoid())
    return m, t, (5, 1, 8, 8)


MODELS = {"mlp": _mlp, "cnn": _cnn, "mixed": _mixed}


def _outputs(m, t, x):
    m.eval()
    t.eval()
    with mg.no_grad():
        ym = m(mg.tensor(x)).data
    with torch.no_grad():
        yt = t(torch.from_numpy(x)).numpy()
    return ym, yt


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_to_torch_round_trip(kind, rng):
    m, t, shape = MODELS[kind]()
    _randomize(m, rng)
    t = t.double()
    state = nn.to_torch_state_dict(m)
    assert set(state) == set(t.state_dict())
    for k, v in t.state_dict().items():
        assert state[k].shape == tuple(v.shape), k
        assert isinstance(state[k], np.ndarray) and state[k].flags.c_contiguous
    t.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    ym, yt = _outputs(m, t, rng.standard_normal(shape))
    np.testing.assert_allclose(ym, yt, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_load_from_torch(kind, rng):
    m, t, shape = MODELS[kind]()
    torch.manual_seed(0)
    t = t.double()
    with torch.no_grad():  # non-trivial batch norm statistics
        for name, b in t.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(torch.randn(b.shape))
            elif name.endswith("running_var"):
                b.copy_(torch.rand(b.shape) + 0.5)
            elif name.endswith("num_batches_tracked"):
                b.fill_(11)
        for name, p in t.named_parameters():
            if "weight" in name and p.ndim == 1:
                p.copy_(torch.randn(p.shape))  # norm scales, not all ones
    nn.load_torch_state_dict(m, t.state_dict())
    ym, yt = _outputs(m, t, rng.standard_normal(shape))
    np.testing.assert_allclose(ym, yt, rtol=1e-10, atol=1e-12)
    for name, b in m.named_buffers():
        if name.endswith("num_batches_tracked"):
            assert b.dtype == np.int64 and b.shape == () and int(b) == 11
    # and back again: the same arrays as torch's
    for k, v in nn.to_torch_state_dict(m).items():
        np.testing.assert_array_equal(v, t.state_dict()[k].numpy())


def test_layouts_dtypes_and_copies():
    m = nn.Sequential(nn.Linear(1, 4), nn.BatchNorm1d(4), nn.Linear(4, 1, dtype=np.float32))
    state = nn.to_torch_state_dict(m)
    assert state["0.weight"].shape == (4, 1) and state["2.weight"].shape == (1, 4)
    np.testing.assert_array_equal(state["0.weight"], m[0].weight.data.T)
    assert state["0.weight"].dtype == np.float32
    assert state["1.num_batches_tracked"].dtype == np.int64 and state["1.num_batches_tracked"].shape == ()
    for k, v in state.items():  # copies, even where the transpose of (1, n) is contiguous already
        v[...] = 42
    assert not np.any(m[0].weight.data == 42) and not np.any(m[2].weight.data == 42)
    assert int(m[1].num_batches_tracked) == 0 and not np.any(m[1].running_mean == 42)


def test_accepts_parameters_float32_and_arrays(rng):
    m, t, shape = _mlp()
    # nn.Parameters with requires_grad (detached here), float32 into a float64 module (cast)
    nn.load_torch_state_dict(m, dict(t.named_parameters()))
    np.testing.assert_allclose(m[0].weight.data, t[0].weight.detach().numpy().T.astype(F64))
    assert m[0].weight.data.dtype == F64 and m[0].weight.data.flags.c_contiguous
    # plain arrays work too
    arrays = {k: rng.standard_normal(v.shape) for k, v in t.state_dict().items()}
    nn.load_torch_state_dict(m, arrays)
    np.testing.assert_array_equal(m[4].weight.data, arrays["4.weight"].T)


def test_custom_module_names():
    class Net(nn.Module):
        def __init__(self):
            self.body = nn.Sequential(nn.Linear(3, 4, dtype=F64), nn.ReLU())
            self.head = nn.Linear(4, 2, dtype=F64)

        def forward(self, x):
            return self.head(self.body(x))

    class TNet(tnn.Module):
        def __init__(self):
            super().__init__()
            self.body = tnn.Sequential(tnn.Linear(3, 4), tnn.ReLU())
            self.head = tnn.Linear(4, 2)

        def forward(self, x):
            return self.head(self.body(x))

    m, t = Net(), TNet().double()
    t.load_state_dict({k: torch.from_numpy(v) for k, v in nn.to_torch_state_dict(m).items()}, strict=True)
    x = np.random.default_rng(1).standard_normal((3, 3))
    with torch.no_grad():
        np.testing.assert_allclose(m(mg.tensor(x)).data, t(torch.from_numpy(x)).numpy(), rtol=1e-12)


# ---- errors: nothing written -------------------------------------------------------------------


def _snapshot(m):
    return {k: v.copy() for k, v in m.state_dict().items()}


def _assert_unchanged(m, before):
    after = m.state_dict()
    assert set(after) == set(before)
    for k in before:
        np.testing.assert_array_equal(after[k], before[k])
        assert after[k].dtype == before[k].dtype


def _good_state(t):
    torch.manual_seed(3)
    return {k: v.clone() for k, v in t.double().state_dict().items()}


def test_missing_and_unexpected_keys(rng):
    m, t, _ = _cnn()
    _randomize(m, rng)
    before = _snapshot(m)
    state = _good_state(t)
    del state["1.running_var"]
    state["9.weight"] = torch.zeros(3)
    with pytest.raises(KeyError) as e:
        nn.load_torch_state_dict(m, state)
    assert "1.running_var" in str(e.value) and "9.weight" in str(e.value)
    _assert_unchanged(m, before)


def test_wrong_shape_names_key_and_torch_shapes(rng):
    m, t, _ = _cnn()
    _randomize(m, rng)
    before = _snapshot(m)
    state = _good_state(t)
    state["5.weight"] = state["5.weight"].T.contiguous()  # matgrad's (in, out): wrong for torch's layout
    with pytest.raises(ValueError) as e:
        nn.load_torch_state_dict(m, state)
    msg = str(e.value)
    assert "5.weight" in msg and "(36, 5)" in msg and "(5, 36)" in msg
    _assert_unchanged(m, before)  # 0.* came first in order and were not written either


@pytest.mark.parametrize("key, value", [
    ("5.bias", lambda v: v.to(torch.int64)),  # an integer tensor for a float parameter
    ("1.num_batches_tracked", lambda v: v.to(torch.float64)),  # a float for the int64 counter
    ("1.running_mean", lambda v: v.to(torch.bool)),
])
def test_wrong_dtype_kind(key, value, rng):
    m, t, _ = _cnn()
    _randomize(m, rng)
    before = _snapshot(m)
    state = _good_state(t)
    state[key] = value(state[key])
    with pytest.raises(TypeError, match=key.replace(".", r"\.")):
        nn.load_torch_state_dict(m, state)
    _assert_unchanged(m, before)


def test_not_a_mapping_or_module():
    m, _, _ = _mlp()
    with pytest.raises(TypeError):
        nn.load_torch_state_dict(m, [("0.weight", np.zeros((8, 5)))])
    with pytest.raises(TypeError):
        nn.to_torch_state_dict(tnn.Linear(2, 3))
