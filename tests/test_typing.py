"""matgrad is a typed package: it ships py.typed (and a stub for the extension), so a user's
type checker reads its hints. One mypy run (skipped without mypy) checks a user's snippet."""

import importlib.resources
import textwrap

import pytest


def test_py_typed_and_the_extension_stub_are_installed():
    package = importlib.resources.files("matgrad")
    assert package.joinpath("py.typed").is_file()
    assert package.joinpath("_core.pyi").is_file()


SNIPPET = textwrap.dedent("""\
    import matgrad as mg
    import numpy as np
    t = mg.tensor(np.ones(3), requires_grad=True)
    y = (t * 2.0).tanh().sum()
    y.backward()
    reveal_type(y)
    reveal_type(mg.nn.Linear(3, 2)(t).T)
    reveal_type(mg.kernels.matmul(np.ones((2, 2)), np.ones((2, 2))))
    w = mg.tensor(np.ones((1, 1, 3, 3)), requires_grad=True)
    mg.conv2d(t, w, stride='a')
""")
WRONG_CALL_LINE = 10


def test_a_user_snippet_type_checks(tmp_path):
    api = pytest.importorskip("mypy.api")
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\n")  # not the repository's [tool.mypy]: a user's plain setup
    stdout, stderr, status = api.run(["--config-file", str(config), "--cache-dir", str(tmp_path / "cache"),
                                      "--no-error-summary", "--hide-error-context", "-c", SNIPPET])
    lines = stdout.splitlines()
    revealed = [line for line in lines if "Revealed type" in line]
    errors = [line for line in lines if ": error:" in line]
    assert len(revealed) == 3, stdout + stderr
    assert revealed[0].endswith('Revealed type is "matgrad.tensor.Tensor"'), stdout
    assert revealed[1].endswith('Revealed type is "matgrad.tensor.Tensor"'), stdout
    assert "numpy.ndarray" in revealed[2] and "floating" in revealed[2], stdout
    # the one error: the wrong call, reported on its line (stride must be an int)
    assert len(errors) == 1, stdout + stderr
    assert errors[0].startswith(f"<string>:{WRONG_CALL_LINE}: error:"), stdout
    assert '"stride"' in errors[0] and "conv2d" in errors[0], stdout
    assert status == 1, (status, stdout, stderr)

