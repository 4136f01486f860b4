"""python -m matgrad: the training demo."""

import re
import subprocess
import sys

import numpy as np
import pytest

import matgrad as mg
from matgrad.__main__ import main

LAST_LINE = re.compile(r"^test accuracy: (\d{1,3}\.\d\d)%$")


def _last_line(text):
    return text.rstrip("\n").split("\n")[-1]


def test_default_run_reaches_95_percent():
    done = subprocess.run([sys.executable, "-m", "matgrad"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    found = LAST_LINE.match(_last_line(done.stdout))
    assert found, done.stdout
    assert float(found.group(1)) >= 95.0
    # one tqdm bar per epoch, with the loss and the accuracy
    for epoch in (1, 20):
        assert f"epoch {epoch:>2}/20: 100%" in done.stderr
    assert "loss=" in done.stderr and "acc=" in done.stderr and "test acc=" in done.stderr


def test_options_in_process(tmp_path, capsys):
    threads = mg.get_num_threads()
    save = tmp_path / "mlp.npz"
    try:
        assert main(["--epochs", "2", "--hidden", "16,12", "--batch-size", "64", "--optimizer", "sgd",
                     "--lr", "0.1", "--threads", "1", "--seed", "3", "--dtype", "float64",
                     "--save", str(save)]) == 0
        assert mg.get_num_threads() == 1
    finally:
        mg.set_num_threads(threads)
    out = capsys.readouterr().out
    assert LAST_LINE.match(_last_line(out)), out
    assert "MLP 64-16-12-10" in out and "sgd lr 0.1" in out and "float64" in out
    model = mg.load(mg.nn.MLP([64, 16, 12, 10], dtype=np.float64), save)
    x_train, y_train, x_test, y_test = mg.data.load_digits_split(np.float64)
    with mg.no_grad():
        acc = (model(mg.tensor(x_test)).data.argmax(1) == y_test).mean()
    assert f"test accuracy: {100 * acc:.2f}%" == _last_line(out)  # the saved model is the one evaluated


def test_cnn_default_run_reaches_98_5_percent():
    done = subprocess.run([sys.executable, "-m", "matgrad", "--model", "cnn"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    found = LAST_LINE.match(_last_line(done.stdout))
    assert found, done.stdout
    assert float(found.group(1)) >= 98.5
    assert "epoch 20/20: 100%" in done.stderr


def test_cnn_learns_in_a_short_run(capsys):
    assert main(["--model", "cnn", "--epochs", "2", "--threads", "2"]) == 0
    out = capsys.readouterr().out
    assert "CNN conv3x3(16)-conv3x3(32)-maxpool2-linear(10)" in out and "adam lr 0.003 (x0.25 every 8 epochs)" in out
    found = LAST_LINE.match(_last_line(out))
    assert found, out
    assert float(found.group(1)) > 60.0  # chance is 10%; the default 20 epochs reach ~99%


def test_hidden_applies_to_the_mlp_only(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--model", "cnn", "--hidden", "32"])
    assert exc.value.code == 2
    assert "--hidden sets the MLP's layers; it does not apply to --model cnn" in capsys.readouterr().err


def test_same_seed_same_result(capsys):
    main(["--epochs", "1", "--seed", "7"])
    first = _last_line(capsys.readouterr().out)
    main(["--epochs", "1", "--seed", "7"])
    assert _last_line(capsys.readouterr().out) == first


def test_plot_writes_a_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = tmp_path / "curves.png"
    assert main(["--epochs", "2", "--plot", str(path)]) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert LAST_LINE.match(_last_line(capsys.readouterr().out))


def test_plot_without_matplotlib_is_a_usage_error(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(SystemExit) as info:
        main(["--plot", str(tmp_path / "c.png")])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "--plot needs matplotlib" in err and "pip install 'matgrad[plot]'" in err
    assert not (tmp_path / "c.png").exists()


@pytest.mark.parametrize("argv, match", [
    (["--epochs", "0"], "--epochs: expected a positive integer, got '0'"),
    (["--epochs", "x"], "--epochs: expected a positive integer"),
    (["--hidden", "64,abc"], "--hidden: expected sizes like 128 or 128,64"),
    (["--hidden", "0"], "--hidden: hidden sizes must be positive"),
    (["--lr", "-1"], "--lr: expected a positive number"),
    (["--lr", "nan"], "--lr: expected a positive number"),
    (["--batch-size", "0"], "--batch-size"),
    (["--optimizer", "rmsprop"], "invalid choice: 'rmsprop'"),
    (["--dtype", "float16"], "invalid choice: 'float16'"),
    (["--threads", "0"], "--threads"),
    (["--seed", "-2"], "--seed: expected a non-negative integer"),
    (["--bogus"], "unrecognized arguments: --bogus"),
])
def test_bad_options_are_usage_errors(argv, match, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: python -m matgrad")
    assert match in err


def test_help_lists_every_option(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for opt in ["--hidden", "--epochs", "--lr", "--batch-size", "--optimizer", "--threads", "--seed", "--dtype",
                "--save", "--plot", "--distributed"]:
        assert opt in out


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_resuming_equals_training_straight_through(tmp_path, capsys, model):
    threads = mg.get_num_threads()
    straight, half = tmp_path / "straight.npz", tmp_path / "half.npz"
    common = ["--model", model, "--threads", "1", "--seed", "4"]
    try:
        main([*common, "--epochs", "10", "--save", str(straight)])
        main([*common, "--epochs", "5", "--save", str(half)])
        capsys.readouterr()
        main([*common, "--epochs", "10", "--resume", str(half), "--save", str(half)])
    finally:
        mg.set_num_threads(threads)
    out = capsys.readouterr().out
    assert f"resumed from {half} after epoch 5" in out
    with np.load(straight) as a, np.load(half) as b:
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:  # parameters, optimizer moments and step counts, the data order, history
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_resume_checks_the_checkpoint_and_the_options(tmp_path, capsys):
    ckpt = tmp_path / "c.npz"
    main(["--epochs", "1", "--save", str(ckpt)])
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["--epochs", "2", "--resume", str(ckpt), "--batch-size", "64"])
    assert f"--resume: {ckpt} was trained with batch_size 32; this run has 64" in capsys.readouterr().err
    plain = tmp_path / "plain.npz"
    mg.save(mg.nn.MLP([64, 128, 10]), plain)  # parameters only
    with pytest.raises(SystemExit):
        main(["--resume", str(plain)])
    assert f"--resume: load: {str(plain)!r} holds no optimizer state" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--resume", str(ckpt), "--hidden", "32"])
    assert "does not match the module" in capsys.readouterr().err
