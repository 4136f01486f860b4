"""mg.save / mg.load / load_checkpoint: .npz checkpoints of a module, an optimizer and extra values;
old plain .npz files; atomic writes (a save killed midway leaves the previous file whole); every
unreadable, foreign or mismatched file raising CheckpointError with nothing changed."""

import io
import os
import pickle
import signal
import stat
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

import matgrad as mg
from matgrad.serialization import FORMAT_VERSION, TEMP_MARK, CheckpointError, load_checkpoint


def _mlp(seed, sizes=(3, 5, 2), dtype=np.float32):
    mg.manual_seed(seed)
    return mg.nn.MLP(list(sizes), dtype=dtype)


def _step(model, opt, n=2):
    x = mg.tensor(np.random.default_rng(0).standard_normal((4, model.sizes[0])), dtype=model[0].weight.data.dtype)
    for _ in range(n):
        opt.zero_grad()
        mg.mean(model(x) * model(x)).backward()
        opt.step()


def _module_state(model):
    return {k: v.copy() for k, v in model.state_dict().items()}


def _assert_module_state(model, state):
    got = model.state_dict()
    assert list(got) == list(state)
    for k in state:
        np.testing.assert_array_equal(got[k], state[k], err_msg=k)


def _opt_state(opt):
    return [(s.get("step"), {k: None if v is None or isinstance(v, int) else v.copy() for k, v in s.items()})
            for s in opt.state_dict()["state"]], {k: v for k, v in opt.state_dict().items() if k != "state"}


def _assert_opt_state(opt, before):
    now = _opt_state(opt)
    assert now[1] == before[1]
    for (_, a), (_, b) in zip(now[0], before[0]):
        assert a.keys() == b.keys()
        for k in a:
            if a[k] is None or b[k] is None:
                assert a[k] is None and b[k] is None
            else:
                np.testing.assert_array_equal(a[k], b[k])


def _temp_files(folder):
    return [n for n in os.listdir(folder) if TEMP_MARK in n]


# ---- round trips --------------------------------------------------------------------------------
def test_save_load_round_trip(tmp_path):
    a = _mlp(0)
    path = tmp_path / "model.weights"  # written exactly here, whatever the extension
    mg.save(a, path)
    assert path.exists() and _temp_files(tmp_path) == []
    with np.load(path) as f:
        assert sorted(f.files) == ["__matgrad__", "module/0.bias", "module/0.weight", "module/2.bias",
                                   "module/2.weight"]
        assert f["__matgrad__"] == FORMAT_VERSION
    b = _mlp(1)
    assert not np.array_equal(a[0].weight.data, b[0].weight.data)
    assert mg.load(b, str(path)) is b
    x = mg.tensor(np.random.default_rng(0).standard_normal((4, 3)), dtype=np.float32)
    np.testing.assert_array_equal(a(x).data, b(x).data)
    assert load_checkpoint(path, _mlp(2)) == {}  # no extra saved


def test_optimizer_and_extra_round_trip(tmp_path):
    a = _mlp(0)
    opt = mg.optim.SGD(a.parameters(), lr=0.1, momentum=0.9)
    _step(a, opt)
    sched = mg.optim.StepLR(opt, step_size=3)
    sched.step()
    rng = np.random.default_rng(7)
    rng.random(5)
    extra = {"epoch": np.int64(4), "loss": 0.25, "name": "run-1", "done": False, "note": None,
             "sizes": (3, 5, 2), "nested": {"a": [1, {"b": np.arange(4.0)}]}, "labels": np.array(["x", "y"]),
             "rng": rng.bit_generator.state, "scheduler": sched.state_dict(), "big": 2 ** 100}
    path = tmp_path / "ckpt.npz"
    mg.save(a, path, opt, extra=extra)
    b = _mlp(1)
    b_opt = mg.optim.SGD(b.parameters(), lr=1.0)
    got = load_checkpoint(path, b, b_opt)
    _assert_module_state(b, a.state_dict())
    _assert_opt_state(b_opt, _opt_state(opt))
    assert got["epoch"] == 4 and type(got["epoch"]) is int
    assert got["loss"] == 0.25 and got["name"] == "run-1" and got["done"] is False and got["note"] is None
    assert got["sizes"] == [3, 5, 2] and got["big"] == 2 ** 100  # tuples come back as lists
    np.testing.assert_array_equal(got["nested"]["a"][1]["b"], np.arange(4.0))
    assert got["nested"]["a"][0] == 1 and got["labels"].tolist() == ["x", "y"]
    assert got["scheduler"] == sched.state_dict()
    again = np.random.default_rng()
    again.bit_generator.state = got["rng"]
    np.testing.assert_array_equal(again.random(3), rng.random(3))
    # a checkpoint with optimizer state loads without an optimizer too
    c = _mlp(2)
    assert mg.load(c, path) is c
    _assert_module_state(c, a.state_dict())


def test_buffers_are_saved(tmp_path):
    model = mg.nn.Sequential(mg.nn.Linear(3, 4, dtype=np.float64), mg.nn.BatchNorm1d(4, dtype=np.float64))
    model(mg.tensor(np.random.default_rng(1).standard_normal((8, 3))))
    mg.save(model, tmp_path / "bn.npz")
    other = mg.nn.Sequential(mg.nn.Linear(3, 4, dtype=np.float64), mg.nn.BatchNorm1d(4, dtype=np.float64))
    mg.load(other, tmp_path / "bn.npz")
    _assert_module_state(other, model.state_dict())


def test_files_of_the_older_save_still_load(tmp_path):
    a = _mlp(0)
    path = tmp_path / "old.npz"
    with open(path, "wb") as f:
        np.savez(f, **a.state_dict())  # what save wrote before the checkpoint format
    b = _mlp(1)
    assert mg.load(b, path) is b
    _assert_module_state(b, a.state_dict())
    assert load_checkpoint(path, _mlp(2)) == {}
    c = _mlp(3)
    opt = mg.optim.Adam(c.parameters())
    _step(c, opt)
    before_m, before_o = _module_state(c), _opt_state(opt)
    with pytest.raises(CheckpointError, match=f"load: '{path}' holds no optimizer state"):
        mg.load(c, path, opt)
    _assert_module_state(c, before_m)
    _assert_opt_state(opt, before_o)


def test_save_follows_a_symbolic_link_and_keeps_permissions(tmp_path):
    real = tmp_path / "real.npz"
    mg.save(_mlp(0), real)
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(real).st_mode) == 0o666 & ~umask
    os.chmod(real, 0o640)
    link = tmp_path / "link.npz"
    link.symlink_to(real)
    a = _mlp(1)
    mg.save(a, link)
    assert link.is_symlink() and stat.S_IMODE(os.stat(real).st_mode) == 0o640
    _assert_module_state(mg.load(_mlp(2), real), a.state_dict())


# ---- atomic writes --------------------------------------------------------------------------------
@pytest.mark.parametrize("exc", [OSError("disk full"), KeyboardInterrupt()])
def test_a_failed_save_leaves_the_previous_file_and_no_temporary(tmp_path, monkeypatch, exc):
    path = tmp_path / "ckpt.npz"
    a = _mlp(0)
    mg.save(a, path)
    real_savez = np.savez

    def failing_savez(f, **arrays):
        f.write(b"PK\x03\x04 partial")
        raise exc

    monkeypatch.setattr(np, "savez", failing_savez)
    with pytest.raises(type(exc)):
        mg.save(_mlp(1), path)
    monkeypatch.setattr(np, "savez", real_savez)

    def failing_replace(src, dst):
        raise OSError("cannot rename")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="cannot rename"):
        mg.save(_mlp(1), path)
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]
    _assert_module_state(mg.load(_mlp(2), path), a.state_dict())


@pytest.mark.parametrize("extra, exc, match", [
    ({"s": {1, 2}}, TypeError, "save: extra/s is a set"),
    ({"o": np.array([None])}, TypeError, "save: extra/o is an ndarray of dtype object"),
    ({1: 2}, TypeError, "save: extra has a key 1; keys must be strings"),
    ({"a": {"b/c": 1}}, ValueError, "save: extra/a has a key 'b/c'; keys may not contain '/'"),
    ([1, 2], TypeError, "save: extra must be a dict or None, got list"),
])
def test_bad_extra_is_refused_before_the_file_is_touched(tmp_path, extra, exc, match):
    path = tmp_path / "ckpt.npz"
    a = _mlp(0)
    mg.save(a, path)
    with pytest.raises(exc, match=match):
        mg.save(_mlp(1), path, extra=extra)
    assert os.listdir(tmp_path) == ["ckpt.npz"]
    _assert_module_state(mg.load(_mlp(2), path), a.state_dict())


def test_save_argument_errors(tmp_path):
    with pytest.raises(TypeError, match="save: module must be a matgrad Module, got dict"):
        mg.save({}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match="save: optimizer must be a matgrad Optimizer or None, got str"):
        mg.save(_mlp(0), tmp_path / "x.npz", "adam")
    with pytest.raises(FileNotFoundError):
        mg.save(_mlp(0), tmp_path / "no" / "x.npz")
    with pytest.raises(FileNotFoundError):
        mg.load(_mlp(0), tmp_path / "missing.npz")
    assert os.listdir(tmp_path) == []


_CHILD = r"""
import sys
import numpy as np
import matgrad as mg

class Big(mg.nn.Module):
    def __init__(self):
        self.weight = mg.tensor(np.zeros((5000, 10000), np.float32), requires_grad=True)  # 200 MB

model, k = Big(), 0
while True:
    k += 1
    model.weight.data[...] = k
    mg.save(model, sys.argv[1])
    print(k, flush=True)
"""


class _Big(mg.nn.Module):
    def __init__(self):
        self.weight = mg.tensor(np.zeros((5000, 10000), np.float32), requires_grad=True)


def test_a_save_killed_midway_leaves_the_previous_checkpoint_whole(tmp_path):
    path = tmp_path / "ckpt.npz"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.dirname(os.path.dirname(mg.__file__))] + os.environ.get("PYTHONPATH", "").split(os.pathsep)))
    with subprocess.Popen([sys.executable, "-c", _CHILD, str(path)], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as child:
        try:
            first = child.stdout.readline()  # one whole save done
            assert first.strip() == "1", child.stderr.read()
            deadline = time.monotonic() + 20
            while not _temp_files(tmp_path):  # the next save has begun writing
                assert time.monotonic() < deadline and child.poll() is None
                time.sleep(0.001)
            time.sleep(0.05)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
            done = [int(line) for line in [first] + child.stdout.read().split()]
            child.stderr.read()
    assert child.returncode == -signal.SIGKILL
    model = mg.load(_Big(), path)
    value = model.weight.data[0, 0]
    assert value in (done[-1], done[-1] + 1)  # the last whole save (its print may not have happened)
    assert np.all(model.weight.data == value)
    # The killed save's temporary file may stay behind (SIGKILL leaves no time to remove it): next to
    # the target, hidden, named for it; load reads only the target (loaded whole above), and the
    # next save replaces the target as usual.
    left = _temp_files(tmp_path)
    assert sorted(os.listdir(tmp_path)) == sorted(["ckpt.npz"] + left)
    for name in left:
        assert name.startswith(".ckpt.npz" + TEMP_MARK)
        assert os.path.getsize(tmp_path / name) <= os.path.getsize(path)
    model.weight.data[...] = -1.0
    mg.save(model, path)
    assert mg.load(_Big(), path).weight.data[-1, -1] == -1.0
    assert sorted(_temp_files(tmp_path)) == sorted(left)
    for name in left + ["ckpt.npz"]:  # 200 MB each: not for pytest's kept tmp folders
        os.unlink(tmp_path / name)


# ---- files that cannot be loaded: CheckpointError, nothing changed ----------------------------------
@pytest.fixture
def saved(tmp_path):
    """A checkpoint of an MLP with Adam state and extra, and the fresh model and optimizer to load it
    into, trained a little (so that their state differs)."""
    a = _mlp(0)
    opt = mg.optim.Adam(a.parameters(), lr=0.01)
    _step(a, opt)
    path = tmp_path / "ckpt.npz"
    mg.save(a, path, opt, extra={"epoch": 1, "w": np.arange(3.0)})
    b = _mlp(1)
    b_opt = mg.optim.Adam(b.parameters(), lr=0.02)
    _step(b, b_opt, 1)
    return path, a, b, b_opt


def _rewrite(path, edit):
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    edit(arrays)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _flip_a_data_byte(path, a):
    raw = bytearray(path.read_bytes())
    at = raw.find(a[0].weight.data.tobytes())
    assert at > 0
    raw[at + 5] ^= 0xFF
    path.write_bytes(bytes(raw))


BAD_FILES = {
    "truncated-half": (lambda p, a: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
                       r"is not a readable \.npz archive \(truncated, corrupted or another format\): BadZipFile"),
    "truncated-last-byte": (lambda p, a: p.write_bytes(p.read_bytes()[:-1]), r"is not a readable \.npz archive"),
    "empty": (lambda p, a: p.write_bytes(b""), r"is not a readable \.npz archive .*EOFError"),
    "corrupted-data": (_flip_a_data_byte, r"is not a readable \.npz archive .*BadZipFile: Bad CRC-32"),
    "text": (lambda p, a: p.write_text("hello, world\n" * 10), r"is not a readable \.npz archive .*ValueError"),
    "pickle": (lambda p, a: p.write_bytes(pickle.dumps(a.state_dict())), r"is not a readable \.npz archive"),
    "npy": (lambda p, a: p.write_bytes(_npy_bytes(np.zeros(3))), r"is not an \.npz archive \(it holds a single \.npy array\)"),
    "zip-of-text": (lambda p, a: zipfile.ZipFile(p, "w").close() or _zip_text(p),
                    r"is not a matgrad checkpoint: its entry 'readme.txt' is not a \.npy array"),
    "foreign-npz": (lambda p, a: np.savez(p, images=np.zeros((2, 2)), labels=np.zeros(2)),
                    r"is not a matgrad checkpoint \(no '__matgrad__' marker\) and its arrays do not match the "
                    r"module: missing keys \['0.weight', '0.bias', '2.weight', '2.bias'\], "
                    r"unexpected keys \['images', 'labels'\]"),
    "newer-format": (lambda p, a: _rewrite(p, lambda d: d.update(__matgrad__=np.array(FORMAT_VERSION + 1))),
                     rf"is in matgrad checkpoint format {FORMAT_VERSION + 1}; this matgrad reads format "
                     rf"{FORMAT_VERSION} and older plain \.npz files"),
    "bad-marker": (lambda p, a: _rewrite(p, lambda d: d.update(__matgrad__=np.array("one"))),
                   r"is a damaged matgrad checkpoint: its '__matgrad__' format marker is not an integer"),
    "unexpected-entry": (lambda p, a: _rewrite(p, lambda d: d.update(junk=np.zeros(1))),
                         r"is a damaged matgrad checkpoint: unexpected entry 'junk'"),
    "missing-array": (lambda p, a: _rewrite(p, lambda d: d.pop("optimizer/state/2/exp_avg")),
                      r"is a damaged matgrad checkpoint: it refers to a missing array 'optimizer/state/2/exp_avg'"),
    "stray-array": (lambda p, a: _rewrite(p, lambda d: d.update({"extra/zz": np.zeros(1)})),
                    r"is a damaged matgrad checkpoint: unreferenced entry 'extra/zz'"),
    "bad-json": (lambda p, a: _rewrite(p, lambda d: d.update(__optimizer__=np.array("{not json"))),
                 r"is a damaged matgrad checkpoint: __optimizer__ is not valid JSON"),
    "no-optimizer": (lambda p, a: mg.save(a, p), r"holds no optimizer state"),
    "other-architecture": (lambda p, a: mg.save(_mlp(0, (3, 4, 2)), p),
                           r"does not match the module: 0.weight has shape \(3, 4\), the module's is \(3, 5\)"),
    "other-depth": (lambda p, a: mg.save(_mlp(0, (3, 5, 5, 2)), p),
                    r"does not match the module: missing keys \[\], unexpected keys \['4.weight', '4.bias'\]"),
    "int-weights": (lambda p, a: _rewrite(p, lambda d: d.update({"module/2.bias": np.zeros(2, np.int64)})),
                    r"does not match the module: 2.bias has dtype int64; expected floating point"),
    "other-optimizer": (lambda p, a: mg.save(a, p, mg.optim.SGD(a.parameters(), lr=0.1)),
                        r"does not match the optimizer: the state is for 'SGD', this optimizer is a Adam"),
    "bad-optimizer-array": (lambda p, a: _rewrite(p, lambda d: d.update(
        {"optimizer/state/3/exp_avg_sq": np.zeros(5)})),
        r"does not match the optimizer: state\[3\]\['exp_avg_sq'\] has shape \(5,\), parameter 3's is \(2,\)"),
}


def _npy_bytes(array):
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def _zip_text(path):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", "not arrays")


_OPTIMIZER_ONLY = ("no-optimizer", "other-optimizer", "bad-optimizer-array")  # fine without an optimizer


@pytest.mark.parametrize("case, with_optimizer", [(c, True) for c in sorted(BAD_FILES)] +
                         [(c, False) for c in sorted(BAD_FILES) if c not in _OPTIMIZER_ONLY])
def test_a_bad_file_raises_naming_it_and_changes_nothing(saved, case, with_optimizer):
    path, a, b, b_opt = saved
    damage, match = BAD_FILES[case]
    damage(path, a)
    before_m, before_o = _module_state(b), _opt_state(b_opt)
    opt = b_opt if with_optimizer else None
    for call in (lambda: mg.load(b, path, opt), lambda: load_checkpoint(path, b, opt)):
        with pytest.raises(CheckpointError, match=match) as info:
            call()
        assert str(info.value).startswith(f"load: '{path}' ")
        assert isinstance(info.value, ValueError)
        _assert_module_state(b, before_m)
        _assert_opt_state(b_opt, before_o)


def test_load_into_a_different_architecture_fails_cleanly(tmp_path):
    a = mg.nn.MLP([3, 5, 2])
    mg.save(a, tmp_path / "m.npz")
    c = mg.nn.MLP([3, 4, 2])
    before = [p.data.copy() for p in c.parameters()]
    with pytest.raises(ValueError, match="0.weight has shape"):
        mg.load(c, tmp_path / "m.npz")
    for p, d in zip(c.parameters(), before):
        np.testing.assert_array_equal(p.data, d)


def test_load_argument_errors(saved):
    path, _, b, _ = saved
    with pytest.raises(TypeError, match="load: module must be a matgrad Module, got str"):
        mg.load("model", path)
    with pytest.raises(TypeError, match="load_checkpoint: optimizer must be a matgrad Optimizer or None"):
        load_checkpoint(path, b, object())
