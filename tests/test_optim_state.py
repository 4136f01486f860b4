"""Optimizer and StepLR state_dict / load_state_dict: contents, copies (no aliasing), every error
leaving the optimizer unchanged, and resumed training bit-identical to uninterrupted training,
through the dicts and through mg.save / mg.load files."""

import copy

import numpy as np
import pytest

import matgrad as mg
from matgrad.serialization import CheckpointError, load_checkpoint

X = np.random.default_rng(3).standard_normal((16, 4))
Y = np.random.default_rng(4).integers(0, 3, 16)

OPTIMIZERS = {
    "sgd": lambda ps: mg.optim.SGD(ps, lr=0.1),
    "sgd-momentum": lambda ps: mg.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=0.01),
    "sgd-nesterov": lambda ps: mg.optim.SGD(ps, lr=0.05, momentum=0.8, nesterov=True),
    "adam": lambda ps: mg.optim.Adam(ps, lr=0.01, betas=(0.8, 0.99), weight_decay=0.01),
    "rmsprop": lambda ps: mg.optim.RMSprop(ps, lr=0.01, alpha=0.9),
    "rmsprop-momentum": lambda ps: mg.optim.RMSprop(ps, lr=0.01, momentum=0.9, weight_decay=0.01),
}


def _model(seed, dtype=np.float64):
    mg.manual_seed(seed)
    return mg.nn.MLP([4, 6, 3], dtype=dtype)


def _train(model, opt, steps, start=0, sched=None):
    """``steps`` steps; at even step numbers the last layer's bias gets no gradient (so that Adam's
    per-parameter step counts differ)."""
    x = mg.tensor(X, dtype=model[0].weight.data.dtype)
    for k in range(start, start + steps):
        opt.zero_grad()
        loss = mg.cross_entropy(model(x), Y)
        loss.backward()
        if k % 2 == 0:
            model[2].bias.grad = None
        opt.step()
        if sched is not None:
            sched.step()


def _snapshot(opt):
    return copy.deepcopy(opt.state_dict())


def _assert_state_equal(a, b):
    assert type(a) is type(b) or (isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)))
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _assert_state_equal(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for u, v in zip(a, b):
            _assert_state_equal(u, v)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    else:
        assert a == b


# ---- resumed training is bit-identical -------------------------------------------------------
@pytest.mark.parametrize("via", ["dict", "file"])
@pytest.mark.parametrize("kind", sorted(OPTIMIZERS))
def test_resume_is_bit_identical_to_uninterrupted_training(kind, via, tmp_path):
    make = OPTIMIZERS[kind]
    ref = _model(0)
    ref_opt = make(ref.parameters())
    ref_sched = mg.optim.StepLR(ref_opt, step_size=2, gamma=0.5)
    _train(ref, ref_opt, 7, sched=ref_sched)

    a = _model(0)
    a_opt = make(a.parameters())
    a_sched = mg.optim.StepLR(a_opt, step_size=2, gamma=0.5)
    _train(a, a_opt, 3, sched=a_sched)

    b = _model(1)  # other weights, default hyper-parameters: everything comes from the state
    b_opt = type(a_opt)(b.parameters(), lr=0.5)
    b_sched = mg.optim.StepLR(b_opt, step_size=5)
    if via == "dict":
        b.load_state_dict(a.state_dict())
        b_opt.load_state_dict(a_opt.state_dict())
        b_sched.load_state_dict(a_sched.state_dict())
    else:
        path = tmp_path / "ckpt.npz"
        mg.save(a, path, a_opt, extra={"epoch": 3, "scheduler": a_sched.state_dict()})
        extra = load_checkpoint(path, b, b_opt)
        assert extra["epoch"] == 3
        b_sched.load_state_dict(extra["scheduler"])
    del a, a_opt, a_sched
    initial_lr = make([mg.tensor(np.ones(1), requires_grad=True)]).lr
    assert b_opt.lr == initial_lr * 0.5  # restored: StepLR halved it after epoch 2
    _train(b, b_opt, 4, start=3, sched=b_sched)

    for (name, p), (_, q) in zip(ref.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(q.data, p.data, err_msg=name)
    _assert_state_equal(b_opt.state_dict(), ref_opt.state_dict())
    assert b_sched.state_dict() == ref_sched.state_dict()


def test_adam_step_counts_are_per_parameter():
    model = _model(0)
    opt = mg.optim.Adam(model.parameters(), lr=0.01)
    _train(model, opt, 5)
    steps = [s["step"] for s in opt.state_dict()["state"]]
    assert steps == [5, 5, 5, 2]  # the last bias had no gradient at steps 0, 2 and 4


def test_float32_round_trip_through_a_file_is_bit_identical(tmp_path):
    ref = _model(0, np.float32)
    ref_opt = mg.optim.Adam(ref.parameters(), lr=0.01)
    _train(ref, ref_opt, 6)
    a = _model(0, np.float32)
    a_opt = mg.optim.Adam(a.parameters(), lr=0.01)
    _train(a, a_opt, 2)
    mg.save(a, tmp_path / "c.npz", a_opt)
    b = _model(5, np.float32)
    b_opt = mg.optim.Adam(b.parameters())
    assert mg.load(b, tmp_path / "c.npz", b_opt) is b
    assert b_opt.state_dict()["state"][0]["exp_avg"].dtype == np.float32
    _train(b, b_opt, 4, start=2)
    for p, q in zip(ref.parameters(), b.parameters()):
        np.testing.assert_array_equal(q.data, p.data)


# ---- contents and copies ---------------------------------------------------------------------
def test_state_dict_contents_before_and_after_the_first_step():
    p = mg.tensor(np.ones((2, 3)), requires_grad=True)
    sgd = mg.optim.SGD([p], lr=0.1, momentum=0.9)
    assert sgd.state_dict() == {"type": "SGD", "lr": 0.1, "momentum": 0.9, "weight_decay": 0.0,
                                "nesterov": False, "state": [{"momentum_buffer": None}]}
    rms = mg.optim.RMSprop([p], momentum=0.5)
    plain_rms = mg.optim.RMSprop([p])
    adam = mg.optim.Adam([p])
    s = adam.state_dict()
    assert s["betas"] == [0.9, 0.999] and s["state"][0]["step"] == 0
    assert rms.state_dict()["state"][0]["momentum_buffer"] is None
    plain_sgd = mg.optim.SGD([p], lr=0.1)
    for opt in (sgd, rms, plain_rms, adam, plain_sgd):
        p.grad = np.full((2, 3), 0.5)
        opt.step()
    np.testing.assert_array_equal(sgd.state_dict()["state"][0]["momentum_buffer"], np.full((2, 3), 0.5))
    assert isinstance(rms.state_dict()["state"][0]["momentum_buffer"], np.ndarray)
    assert plain_rms.state_dict()["state"][0]["momentum_buffer"] is None  # momentum 0: never a buffer
    assert plain_sgd.state_dict()["state"][0]["momentum_buffer"] is None
    assert adam.state_dict()["state"][0]["step"] == 1


def test_state_dicts_share_no_memory_with_the_optimizer():
    model = _model(0)
    opt = mg.optim.Adam(model.parameters(), lr=0.01)
    _train(model, opt, 2)
    out = opt.state_dict()
    before = _snapshot(opt)
    out["state"][0]["exp_avg"][...] = 7.0
    out["lr"] = 3.0
    _assert_state_equal(opt.state_dict(), before)

    given = _snapshot(opt)
    other = mg.optim.Adam(_model(1).parameters())
    other.load_state_dict(given)
    given["state"][0]["exp_avg"][...] = 9.0
    given["state"][1]["exp_avg_sq"][...] = 9.0
    _assert_state_equal(other.state_dict(), before)


def test_steplr_round_trip_leaves_the_optimizers_lr_alone():
    p = mg.tensor(np.ones(2), requires_grad=True)
    opt = mg.optim.SGD([p], lr=1.0)
    sched = mg.optim.StepLR(opt, step_size=2, gamma=0.5)
    for _ in range(3):
        sched.step()
    state = sched.state_dict()
    assert state == {"type": "StepLR", "step_size": 2, "gamma": 0.5, "base_lrs": [1.0], "last_epoch": 3}
    opt2 = mg.optim.SGD([p], lr=0.25)
    sched2 = mg.optim.StepLR(opt2, step_size=7)
    sched2.load_state_dict(state)
    assert opt2.lr == 0.25 and sched2.state_dict() == state
    sched2.step()
    assert opt2.lr == 0.25  # 1.0 · 0.5^(4 // 2)


# ---- errors: nothing changed ------------------------------------------------------------------
def _trained(kind):
    model = _model(0)
    opt = OPTIMIZERS[kind](model.parameters())
    _train(model, opt, 3)
    return opt


def _set(path, value):
    def edit(s):
        node = s
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value
    return edit


def _delete(path):
    def edit(s):
        node = s
        for k in path[:-1]:
            node = node[k]
        del node[path[-1]]
    return edit


ERROR_CASES = [
    ("adam", _delete(["eps"]), KeyError, r"Adam.load_state_dict: missing keys \['eps'\], unexpected keys \[\]"),
    ("adam", _set(["foo"], 1), KeyError, r"missing keys \[\], unexpected keys \['foo'\]"),
    ("adam", _set(["type"], "SGD"), ValueError, r"the state is for 'SGD', this optimizer is a Adam"),
    ("adam", lambda s: s["state"].pop(), ValueError, r"the state is for 3 parameters, this optimizer has 4"),
    ("adam", _set(["state", 3, "exp_avg"], np.zeros((4, 3))), ValueError,
     r"state\[3\]\['exp_avg'\] has shape \(4, 3\), parameter 3's is \(3,\)"),
    ("adam", _set(["state", 3, "exp_avg_sq"], np.zeros(3, np.int64)), TypeError,
     r"state\[3\]\['exp_avg_sq'\] has dtype int64; expected floating point"),
    ("adam", _set(["state", 3, "exp_avg"], [0.0, 0.0, 0.0]), TypeError, r"must be an ndarray, got list"),
    ("adam", _set(["state", 3, "step"], -1), ValueError, r"state\[3\]\['step'\] must be an integer >= 0, got -1"),
    ("adam", _set(["state", 3, "step"], True), ValueError, r"must be an integer >= 0, got True"),
    ("adam", _delete(["state", 3, "step"]), KeyError, r"state\[3\]: missing keys \['step'\]"),
    ("adam", _set(["state"], {}), TypeError, r"state\['state'\] must be a list, got dict"),
    ("adam", _set(["betas"], [0.9]), ValueError, r"betas must be a pair"),
    ("adam", _set(["betas"], [0.9, 1.0]), ValueError, r"beta2 must be a finite number >= 0.0 and < 1.0, got 1.0"),
    ("adam", _set(["lr"], -1.0), ValueError, r"Adam.load_state_dict: lr must be a finite number > 0.0, got -1.0"),
    ("sgd-momentum", _set(["state", 3, "momentum_buffer"], np.zeros(2)), ValueError,
     r"state\[3\]\['momentum_buffer'\] has shape \(2,\), parameter 3's is \(3,\)"),
    ("sgd-momentum", _set(["state", 0, "momentum_buffer"], "none"), TypeError, r"must be an ndarray or None, got str"),
    ("sgd-momentum", _set(["nesterov"], 1), TypeError, r"nesterov must be True or False, got 1"),
    ("sgd-nesterov", _set(["momentum"], 0.0), ValueError, r"nesterov requires momentum > 0"),
    ("sgd", _set(["state", 0, "momentum_buffer"], np.zeros((4, 6))), ValueError,
     r"state\[0\]\['momentum_buffer'\] must be None with momentum 0"),
    ("rmsprop", _set(["state", 3, "momentum_buffer"], np.zeros(3)), ValueError, r"must be None with momentum 0"),
    ("rmsprop-momentum", _set(["alpha"], 1.5), ValueError, r"alpha must be a finite number"),
    ("rmsprop-momentum", _delete(["state", 2, "square_avg"]), KeyError, r"state\[2\]: missing keys \['square_avg'\]"),
]


@pytest.mark.parametrize("kind, edit, exc, match", ERROR_CASES)
def test_bad_state_raises_and_changes_nothing(kind, edit, exc, match):
    source = _trained(kind)
    state = _snapshot(source)
    edit(state)
    target = _trained(kind)
    target.lr *= 0.5  # hyper-parameters too: none may be written before the failure
    before = _snapshot(target)
    with pytest.raises(exc, match=match):
        target.load_state_dict(state)
    _assert_state_equal(target.state_dict(), before)


def test_not_a_dict_and_other_class():
    opt = _trained("sgd")
    with pytest.raises(TypeError, match="SGD.load_state_dict must be a dict, got list"):
        opt.load_state_dict([])
    with pytest.raises(ValueError, match="this optimizer is a SGD"):
        opt.load_state_dict(_trained("adam").state_dict())


@pytest.mark.parametrize("edit, exc, match", [
    (_delete(["gamma"]), KeyError, r"StepLR.load_state_dict: missing keys \['gamma'\]"),
    (_set(["type"], "Adam"), ValueError, r"the state is for 'Adam', this scheduler is a StepLR"),
    (_set(["step_size"], 0), ValueError, r"step_size must be an integer >= 1, got 0"),
    (_set(["base_lrs"], [0.1, 0.2]), ValueError, r"base_lrs must be a list of one learning rate"),
    (_set(["last_epoch"], -2), ValueError, r"last_epoch must be an integer >= 0, got -2"),
    (_set(["gamma"], float("nan")), ValueError, r"gamma must be a finite number > 0.0, got nan"),
])
def test_bad_steplr_state_raises_and_changes_nothing(edit, exc, match):
    p = mg.tensor(np.ones(2), requires_grad=True)
    sched = mg.optim.StepLR(mg.optim.SGD([p], lr=1.0), step_size=3)
    sched.step()
    state = sched.state_dict()
    edit(state)
    before = sched.state_dict()
    with pytest.raises(exc, match=match):
        sched.load_state_dict(state)
    assert sched.state_dict() == before


def test_load_with_a_mismatched_optimizer_changes_neither_module_nor_optimizer(tmp_path):
    a = _model(0)
    a_opt = mg.optim.Adam(a.parameters(), lr=0.01)
    _train(a, a_opt, 2)
    mg.save(a, tmp_path / "c.npz", a_opt)
    b = _model(1)
    for b_opt, match in [(mg.optim.SGD(b.parameters(), lr=0.1, momentum=0.9),
                          r"does not match the optimizer: the state is for 'Adam', this optimizer is a SGD"),
                         (mg.optim.Adam(b.parameters()[:3]),
                          r"does not match the optimizer: the state is for 4 parameters, this optimizer has 3")]:
        _train(b, b_opt, 1)
        before_m = {k: v.copy() for k, v in b.state_dict().items()}
        before_o = _snapshot(b_opt)
        with pytest.raises(CheckpointError, match=match) as info:
            mg.load(b, tmp_path / "c.npz", b_opt)
        assert str(tmp_path / "c.npz") in str(info.value)
        for k, v in b.state_dict().items():
            np.testing.assert_array_equal(v, before_m[k])
        _assert_state_equal(b_opt.state_dict(), before_o)
