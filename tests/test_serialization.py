"""mg.save / mg.load: .npz round trip."""

import numpy as np
import pytest

import matgrad as mg


def test_save_load_round_trip(tmp_path):
    mg.manual_seed(0)
    a = mg.nn.MLP([3, 5, 2])
    path = tmp_path / "model.weights"  # written exactly here, whatever the extension
    mg.save(a, path)
    assert path.exists()
    with np.load(path) as f:
        assert sorted(f.files) == ["0.bias", "0.weight", "2.bias", "2.weight"]
    mg.manual_seed(1)
    b = mg.nn.MLP([3, 5, 2])
    assert not np.array_equal(a[0].weight.data, b[0].weight.data)
    assert mg.load(b, str(path)) is b
    x = mg.tensor(np.random.default_rng(0).standard_normal((4, 3)), dtype=np.float32)
    np.testing.assert_array_equal(a(x).data, b(x).data)


def test_load_into_a_different_architecture_fails_cleanly(tmp_path):
    a = mg.nn.MLP([3, 5, 2])
    mg.save(a, tmp_path / "m.npz")
    c = mg.nn.MLP([3, 4, 2])
    before = [p.data.copy() for p in c.parameters()]
    with pytest.raises(ValueError, match="0.weight has shape"):
        mg.load(c, tmp_path / "m.npz")
    for p, d in zip(c.parameters(), before):
        np.testing.assert_array_equal(p.data, d)
