"""The scripts in examples/ run and print what they promise."""

import re
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _run(name):
    done = subprocess.run([sys.executable, str(EXAMPLES / name)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_lecture_example():
    out = _run("lecture.py")
    assert "dL/dx = [dy/dx][dL/dy] = [4. 0. 5. 0.]" in out
    assert "dL/dx by backprop (a mask, no Jacobian) = [4. 0. 5. 0.]" in out
    assert "[[-1. -1.  2.  6.]\n [ 5.  2. 11.  7.]]" in out  # y = x·w
    assert "[[  0.  16.  -9.]\n [-24.   9. -30.]]" in out  # dL/dx
    assert "[[ 28.   3. -18.   0.]\n [-30.   7.  13.  33.]\n [-22.  -7.  17. -15.]]" in out  # dL/dw
    assert "(64, 4096, 64, 4096)" in out and "256 GiB" in out
    assert "dL/dw is (4096, 4096) (64 MiB)" in out


def test_two_layer_net_example():
    out = _run("two_layer_net.py")
    accs = [float(a) for a in re.findall(r"test accuracy:? (\d+\.\d\d)%", out)]
    assert accs[0] < 30  # before training: about chance
    assert out.rstrip().split("\n")[-1].startswith("test accuracy: ")
    assert accs[-1] > 90
    losses = [float(v) for v in re.findall(r"mean training loss (\d+\.\d+)", out)]
    assert len(losses) >= 3 and losses[-1] < losses[0] / 5


def test_conv_net_example():
    out = _run("conv_net.py")
    assert "im2col: each column holds the 3×3 window one output pixel sees: (1, 9, 16)" in out
    assert "equal to W·cols + b: True" in out
    assert "dL/dx has the shape of x: (1, 1, 4, 4) ; dL/dw that of w: (2, 1, 3, 3)" in out
    assert "dL/dw = dL/dy·colsᵀ: True" in out and "dL/dx = col2im(Wᵀ·dL/dy): True" in out
    assert "dL/db = Σ dL/dy over pixels: [16. 16.]" in out
    assert "[[ 4.  1.  1. -2.]\n [ 5.  1.  1. -3.]" in out  # dL/dx
    assert "1.5 TiB" in out


def test_data_parallel_example_runs_as_one_process():
    out = _run("data_parallel.py")
    assert out.startswith("1 rank(s), 32 rows each per step, 45 steps per epoch")
    losses = [float(v) for v in re.findall(r"mean training loss (\d+\.\d+) over 1438 rows", out)]
    assert len(losses) == 10 and losses[-1] < losses[0] / 5
    assert float(re.search(r"test accuracy: (\d+\.\d\d)%", out).group(1)) > 95
