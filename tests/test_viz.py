"""to_dot: the DOT source of a graph, and writing it."""

import os
import stat
import sys

import numpy as np
import pytest

import matgrad as mg
from matgrad import viz


def _net():
    x = mg.tensor(np.ones((2, 3), np.float32))
    w = mg.tensor(np.ones((3, 4), np.float32), requires_grad=True)
    b = mg.tensor(np.ones(4, np.float32), requires_grad=True)
    loss = mg.cross_entropy(mg.linear(x, w, b).relu(), np.array([0, 1]))
    return x, w, b, loss


def test_dot_source_names_ops_shapes_and_dtypes():
    x, w, b, loss = _net()
    src = mg.to_dot(loss, names={"w": w, "x": x})
    assert src.startswith("digraph matgrad {") and src.rstrip().endswith("}")
    for text in ["cross_entropy\\nscalar float32", "relu\\n2x4 float32", "linear\\n2x4 float32",
                 "w = leaf\\n3x4 float32", "x = const\\n2x3 float32", "leaf\\n4 float32"]:
        assert text in src
    assert src.count("->") == 5  # x, w, b -> linear -> relu -> cross_entropy
    assert src.count("[label=") == 6


def test_dot_quotes_labels():
    a = mg.tensor([1.0], requires_grad=True)
    src = mg.to_dot(a * 2.0, names={'say "hi"': a})
    assert 'say \\"hi\\" = leaf' in src


def test_write_dot_source(tmp_path):
    *_, loss = _net()
    path = tmp_path / "g.dot"
    src = mg.to_dot(loss, path=path)
    assert path.read_text() == src


def test_svg_without_graphviz_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(viz.shutil, "which", lambda name: None)
    *_, loss = _net()
    with pytest.raises(RuntimeError, match="Graphviz program 'dot'.*not on PATH"):
        mg.to_dot(loss, path=tmp_path / "g.svg")
    assert not (tmp_path / "g.svg").exists()
    with pytest.raises(ValueError, match="format"):
        mg.to_dot(loss, path=tmp_path / "g.jpeg")


@pytest.mark.skipif(sys.platform == "win32", reason="uses a shell script as a stand-in for dot")
def test_svg_and_png_are_rendered_by_dot(tmp_path, monkeypatch):
    fake = tmp_path / "dot"
    fake.write_text('#!/bin/sh\n# fake dot: -T<fmt> -o <path>, the source on stdin\n'
                    'fmt="${1#-T}"; out="$3"; { echo "$fmt"; cat; } > "$out"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(tmp_path) + os.pathsep + os.environ.get("PATH", ""))
    *_, loss = _net()
    for ext in ("svg", "png"):
        out = tmp_path / f"graph.{ext}"
        src = mg.to_dot(loss, path=out)
        assert out.read_text() == f"{ext}\n{src}"


def test_failing_dot_is_reported(tmp_path, monkeypatch):
    fake = tmp_path / "dot"
    fake.write_text("#!/bin/sh\necho 'syntax error' >&2\nexit 3\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(tmp_path) + os.pathsep + os.environ.get("PATH", ""))
    with pytest.raises(RuntimeError, match="exit code 3: syntax error"):
        mg.to_dot(mg.tensor([1.0], requires_grad=True) * 2.0, path=tmp_path / "g.svg")


def test_deep_graph_and_bad_argument():
    y = mg.tensor([1.0], requires_grad=True)
    for _ in range(5000):
        y = y + 1.0
    src = mg.to_dot(y)
    assert src.count("->") == 10000  # each add: the previous node and the constant
    with pytest.raises(TypeError, match="expected a Tensor"):
        mg.to_dot(np.ones(2))
