"""The Python examples in README.md run as written (docs stay in step with the code)."""

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S) if README.exists() else []


def test_readme_starts_with_the_two_commands():
    lines = [l.strip() for l in README.read_text(encoding="utf-8").splitlines() if l.strip()]
    commands = [l for l in lines[:6] if l.startswith("pip install")]
    assert commands == ['pip install . && python -m matgrad', 'pip install ".[test]" && pytest']


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_block_runs(index, tmp_path, monkeypatch):
    block = BLOCKS[index]
    if "import numpy as np, torch" in block:  # the interop example needs the optional peers
        pytest.importorskip("torch")
        pytest.importorskip("onnx")
    monkeypatch.chdir(tmp_path)  # files a block writes land here
    namespace = {}
    exec(compile(BLOCKS[index], f"README.md block {index}", "exec"), namespace)
    assert namespace  # the block defined something


def test_readme_has_python_examples():
    assert len(BLOCKS) >= 2
