"""The bad-input contract: every row of docs/errors.md is a case here, run to check that it raises
exactly the documented exception and message, and that nothing changed: no input array, no
tensor's data, gradient or graph, no module parameter, no process-wide setting (kernel set, thread
count, grad mode, the initialisation generator).

docs/errors.md is the table; CASES below holds how to build each row's input. The two are kept
in step by ``test_every_case_is_documented``: a row without a case, or a case without a row,
fails. ``python tests/test_errors_contract.py`` prints the rows as the library behaves now (to
update the doc after a deliberate change of a message).
"""

import contextlib
import io
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

import matgrad as mg
from conftest import f32, f64, read_only
from matgrad import kernels
from matgrad.__main__ import main

DOC = Path(__file__).resolve().parents[1] / "docs" / "errors.md"

# Rows whose documented behaviour is not the library's yet: xfail(strict=True) until fixed.
KNOWN_GAPS = {}




def t32(*shape, requires_grad=True):
    return mg.tensor(f32(*shape), requires_grad=requires_grad)


def t64(*shape, requires_grad=True):
    return mg.tensor(f64(*shape), requires_grad=requires_grad)


def labels(*values):
    return np.array(values, np.int64)


def call(fn, *args, **kwargs):
    """A case whose watched objects are exactly its arguments."""
    return (lambda: fn(*args, **kwargs)), [list(args), dict(kwargs)]


class UsageExit(Exception):
    """A CLI run that exited: ``code`` and the last line it wrote to stderr."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


DATA_DIR = Path(tempfile.gettempdir()) / "matgrad-contract-data"  # a fixed path: the messages name it


def data_file(name, text=None, arrays=None):
    """A file for --data cases, written when the case is built."""
    DATA_DIR.mkdir(exist_ok=True)
    path = DATA_DIR / name
    if arrays is not None:
        np.savez(path, **arrays)
    elif text is not None:
        path.write_text(text)
    return str(path)


def cli(*argv, hide=()):
    """A ``python -m matgrad`` case, in process: SystemExit becomes UsageExit(code, last stderr line).
    ``hide``: modules made unimportable for the run (sys.modules[name] = None)."""
    def run():
        err = io.StringIO()
        saved = {name: sys.modules.get(name, ...) for name in hide}
        try:
            sys.modules.update({name: None for name in hide})
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                main(list(argv))
        except SystemExit as e:
            lines = [line for line in err.getvalue().splitlines() if line.strip()]
            raise UsageExit(e.code, lines[-1] if lines else "") from None
        finally:
            for name, mod in saved.items():
                if mod is ...:
                    sys.modules.pop(name, None)
                else:
                    sys.modules[name] = mod
    return run, [list(argv)]


class ChildError(Exception):
    """An exception that ended a child Python process: its type name and message."""

    def __init__(self, type_name, message):
        super().__init__(message)
        self.type_name = type_name


def in_child(code, **env):
    """Runs ``code`` in a fresh interpreter; its final exception becomes ChildError."""
    def run():
        done = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env},
                              capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            last = done.stderr.strip().splitlines()[-1]
            name, _, message = last.partition(": ")
            raise ChildError(name, message)
    return run, []


# --------------------------------------------------------------------------------------------
# cases that need a few statements
# --------------------------------------------------------------------------------------------


def _backward_twice():
    x = t64(2, 3)
    y = (x * 2.0).sum()
    y.backward()
    return y.backward, [x, y]


def _backward_through_released_node():
    x = t64(2, 3)
    h = x.relu()
    h.sum().backward()
    y2 = (h * 3.0).sum()  # a new root whose graph reaches the released node h
    return y2.backward, [x, h, y2]


def _backward(grad=None, shape=(2, 3), requires_grad=True):
    def make():
        x = mg.tensor(np.ones(shape), dtype=np.float64, requires_grad=requires_grad)
        y = x * 2.0
        return (lambda: y.backward(grad)), [x, y, grad]
    return make


def _gradcheck_disagrees():
    x = mg.tensor(np.zeros(1), dtype=np.float64, requires_grad=True)  # relu's kink: 0 vs 0.5
    return call(mg.gradcheck, lambda t: t.relu().sum(), x)


def _module_without_forward():
    m = mg.nn.Module()
    x = t32(2, 2)
    return (lambda: m(x)), [x]


def _load_state_dict(edit):
    def make():
        mg.manual_seed(0)
        model = mg.nn.MLP([3, 4, 2])
        state = model.state_dict()
        edit(state)
        return (lambda: model.load_state_dict(state)), [model, state]
    return make


def _model(edit_args):
    """A case on a fresh MLP([3, 4, 2]): ``edit_args(model)`` returns (function, arguments)."""
    def make():
        mg.manual_seed(0)
        model = mg.nn.MLP([3, 4, 2])
        fn, args = edit_args(model)
        return (lambda: fn(*args)), [model, list(args)]
    return make


class _Custom(mg.nn.Module):
    """A user's own layer: no ONNX counterpart."""

    def forward(self, x):
        return x


_Custom.__module__, _Custom.__qualname__ = "user", "Custom"  # the same name in the message however run


def _bad_checkpoint(kind):
    def edit(model):
        path = DATA_DIR / f"{kind}.npz"
        DATA_DIR.mkdir(exist_ok=True)
        if kind == "truncated":
            mg.save(model, path)
            path.write_bytes(path.read_bytes()[:100])
            return mg.load, (model, str(path))
        mg.save(model, path)  # parameters only
        return mg.load, (model, str(path), mg.optim.SGD(model.parameters(), lr=0.1))
    return edit


def _drop_key(state):
    del state["2.bias"]


def _reshape_key(state):
    state["0.weight"] = np.zeros((4, 3), np.float32)


def _int_key(state):
    state["0.bias"] = np.zeros(4, np.int64)


def _set_isa_unsupported():
    missing = [name for name in ("avx512", "avx2") if not kernels.isa_available(name)]
    if not missing:
        pytest.skip("every kernel set runs on this CPU")
    return call(kernels.set_isa, missing[0])


# --------------------------------------------------------------------------------------------
# the table: (section, id, input as written in the doc, make() -> (call, watched))
# --------------------------------------------------------------------------------------------

K, T, L, C, N, O, D, X = ("kernels", "tensors", "losses", "checks", "nn", "optim", "distributed", "cli")
_shared = f32(40)

CASES = [
    # ---- matgrad.kernels: matmul ---------------------------------------------------------
    (K, "matmul-a-not-array", "matmul([[1.0]], f32(1, 1))", lambda: call(kernels.matmul, [[1.0]], f32(1, 1))),
    (K, "matmul-b-not-array", "matmul(f32(1, 1), 2.0)", lambda: call(kernels.matmul, f32(1, 1), 2.0)),
    (K, "matmul-a-1d", "matmul(f32(3), f32(3, 2))", lambda: call(kernels.matmul, f32(3), f32(3, 2))),
    (K, "matmul-b-3d", "matmul(f32(2, 3), f32(3, 2, 2))", lambda: call(kernels.matmul, f32(2, 3), f32(3, 2, 2))),
    (K, "matmul-int", "matmul(int64 (2, 2), f32(2, 2))",
     lambda: call(kernels.matmul, np.ones((2, 2), np.int64), f32(2, 2))),
    (K, "matmul-float16", "matmul(f32(2, 2), float16 (2, 2))",
     lambda: call(kernels.matmul, f32(2, 2), np.ones((2, 2), np.float16))),
    (K, "matmul-big-endian", "matmul(f32(2, 2), f32(2, 2).astype('>f4'))",
     lambda: call(kernels.matmul, f32(2, 2), f32(2, 2).astype(">f4"))),
    (K, "matmul-mixed-dtypes", "matmul(f32(2, 3), f64(3, 2))", lambda: call(kernels.matmul, f32(2, 3), f64(3, 2))),
    (K, "matmul-not-aligned", "matmul(f32(2, 3), f32(4, 5))", lambda: call(kernels.matmul, f32(2, 3), f32(4, 5))),
    (K, "matmul-not-aligned-transposed", "matmul(f32(2, 3), f32(4, 5), trans_a=True)",
     lambda: call(kernels.matmul, f32(2, 3), f32(4, 5), trans_a=True)),
    (K, "matmul-accumulate-without-out", "matmul(f32(2, 3), f32(3, 4), accumulate=True)",
     lambda: call(kernels.matmul, f32(2, 3), f32(3, 4), accumulate=True)),
    (K, "matmul-out-not-array", "matmul(f32(2, 3), f32(3, 4), out=[[0.0] * 4] * 2)",
     lambda: call(kernels.matmul, f32(2, 3), f32(3, 4), out=[[0.0] * 4] * 2)),
    (K, "matmul-out-dtype", "matmul(f32(2, 3), f32(3, 4), out=f64(2, 4))",
     lambda: call(kernels.matmul, f32(2, 3), f32(3, 4), out=f64(2, 4))),
    (K, "matmul-out-shape", "matmul(f32(2, 3), f32(3, 4), out=f32(2, 3))",
     lambda: call(kernels.matmul, f32(2, 3), f32(3, 4), out=f32(2, 3))),
    (K, "matmul-out-not-contiguous", "matmul(f32(2, 3), f32(3, 4), out=f32(4, 2).T)",
     lambda: call(kernels.matmul, f32(2, 3), f32(3, 4), out=f32(4, 2).T)),
    (K, "matmul-out-misaligned", "matmul(f32(2, 3), f32(3, 4), out=<float32 (2, 4) at an odd address>)",
     lambda: call(kernels.matmul, f32(2, 3), f32(3, 4), out=np.zeros(33, np.uint8)[1:].view(np.float32).reshape(2, 4))),
    (K, "matmul-out-read-only", "matmul(f32(2, 3), f32(3, 4), out=<read-only f32(2, 4)>)",
     lambda: call(kernels.matmul, f32(2, 3), f32(3, 4), out=read_only(f32(2, 4)))),
    (K, "matmul-out-overlaps-a", "matmul(buf[:9].reshape(3, 3), f32(3, 3), out=buf[5:14].reshape(3, 3))",
     lambda: (lambda buf: call(kernels.matmul, buf[:9].reshape(3, 3), f32(3, 3), out=buf[5:14].reshape(3, 3)))(f32(20))),
    (K, "matmul-out-overlaps-b", "matmul(f32(3, 3), buf[:9].reshape(3, 3), out=buf[5:14].reshape(3, 3))",
     lambda: (lambda buf: call(kernels.matmul, f32(3, 3), buf[:9].reshape(3, 3), out=buf[5:14].reshape(3, 3)))(f32(20))),
    (K, "matmul-out-is-a", "matmul(a, f32(3, 3), out=a)",
     lambda: (lambda a: call(kernels.matmul, a, f32(3, 3), out=a))(f32(3, 3))),
    (K, "matmul-bad-flag", "matmul(f32(2, 2), f32(2, 2), trans_a='yes')",
     lambda: call(kernels.matmul, f32(2, 2), f32(2, 2), trans_a="yes")),
    # ---- relu_forward / relu_backward ---------------------------------------------------------
    (K, "relu-x-not-array", "relu_forward([1.0, -1.0])", lambda: call(kernels.relu_forward, [1.0, -1.0])),
    (K, "relu-int", "relu_forward(int32 (3,))", lambda: call(kernels.relu_forward, np.ones(3, np.int32))),
    (K, "relu-out-shape", "relu_forward(f32(3, 4), out=f32(4, 3))",
     lambda: call(kernels.relu_forward, f32(3, 4), out=f32(4, 3))),
    (K, "relu-out-dtype", "relu_forward(f32(3), out=f64(3))", lambda: call(kernels.relu_forward, f32(3), out=f64(3))),
    (K, "relu-out-strided", "relu_forward(f32(3), out=f32(6)[::2])",
     lambda: call(kernels.relu_forward, f32(3), out=f32(6)[::2])),
    (K, "relu-out-read-only", "relu_forward(f32(3), out=<read-only f32(3)>)",
     lambda: call(kernels.relu_forward, f32(3), out=read_only(f32(3)))),
    (K, "relu-out-partial-overlap", "relu_forward(buf[:6], out=buf[2:8])",
     lambda: (lambda buf: call(kernels.relu_forward, buf[:6], out=buf[2:8]))(f32(10))),
    (K, "relu_backward-grad-not-array", "relu_backward((1.0,), f32(1))",
     lambda: call(kernels.relu_backward, (1.0,), f32(1))),
    (K, "relu_backward-x-not-array", "relu_backward(f32(1), 1.0)", lambda: call(kernels.relu_backward, f32(1), 1.0)),
    (K, "relu_backward-int", "relu_backward(f32(3), int64 (3,))",
     lambda: call(kernels.relu_backward, f32(3), np.ones(3, np.int64))),
    (K, "relu_backward-mixed-dtypes", "relu_backward(f32(3), f64(3))",
     lambda: call(kernels.relu_backward, f32(3), f64(3))),
    (K, "relu_backward-shapes", "relu_backward(f32(3), f32(4))", lambda: call(kernels.relu_backward, f32(3), f32(4))),
    (K, "relu_backward-out-partial-overlap", "relu_backward(buf[:6], f32(6), out=buf[3:9])",
     lambda: (lambda buf: call(kernels.relu_backward, buf[:6], f32(6), out=buf[3:9]))(f32(10))),
    # ---- axpy ----------------------------------------------------------------------------------
    (K, "axpy-x-not-array", "axpy(1.0, [1.0, 2.0], f64(2))", lambda: call(kernels.axpy, 1.0, [1.0, 2.0], f64(2))),
    (K, "axpy-x-int", "axpy(1.0, int64 (3,), f64(3))", lambda: call(kernels.axpy, 1.0, np.ones(3, np.int64), f64(3))),
    (K, "axpy-y-not-array", "axpy(1.0, f64(2), [0.0, 0.0])", lambda: call(kernels.axpy, 1.0, f64(2), [0.0, 0.0])),
    (K, "axpy-y-shape", "axpy(1.0, f64(3), f64(4))", lambda: call(kernels.axpy, 1.0, f64(3), f64(4))),
    (K, "axpy-y-dtype", "axpy(1.0, f64(3), f32(3))", lambda: call(kernels.axpy, 1.0, f64(3), f32(3))),
    (K, "axpy-y-strided", "axpy(1.0, f64(3), f64(6)[::2])", lambda: call(kernels.axpy, 1.0, f64(3), f64(6)[::2])),
    (K, "axpy-y-read-only", "axpy(1.0, f64(3), <read-only f64(3)>)", lambda: call(kernels.axpy, 1.0, f64(3), read_only(f64(3)))),
    (K, "axpy-y-partial-overlap", "axpy(1.0, buf[:6], buf[2:8])",
     lambda: (lambda buf: call(kernels.axpy, 1.0, buf[:6], buf[2:8]))(f64(10))),
    (K, "axpy-alpha", "axpy('2', f64(3), f64(3))", lambda: call(kernels.axpy, "2", f64(3), f64(3))),
    # ---- cross_entropy_forward / cross_entropy_backward ----------------------------------------
    (K, "ce_forward-scores-not-array", "cross_entropy_forward([[1.0]], labels(0))",
     lambda: call(kernels.cross_entropy_forward, [[1.0]], labels(0))),
    (K, "ce_forward-scores-1d", "cross_entropy_forward(f32(3), labels(0))",
     lambda: call(kernels.cross_entropy_forward, f32(3), labels(0))),
    (K, "ce_forward-scores-int", "cross_entropy_forward(int64 (2, 3), labels(0, 1))",
     lambda: call(kernels.cross_entropy_forward, np.ones((2, 3), np.int64), labels(0, 1))),
    (K, "ce_forward-scores-empty", "cross_entropy_forward(f32(0, 3), labels())",
     lambda: call(kernels.cross_entropy_forward, f32(0, 3), labels())),
    (K, "ce_forward-labels-not-array", "cross_entropy_forward(f32(2, 3), [0, 1])",
     lambda: call(kernels.cross_entropy_forward, f32(2, 3), [0, 1])),
    (K, "ce_forward-labels-int32", "cross_entropy_forward(f32(2, 3), int32 [0, 1])",
     lambda: call(kernels.cross_entropy_forward, f32(2, 3), np.array([0, 1], np.int32))),
    (K, "ce_forward-labels-shape", "cross_entropy_forward(f32(2, 3), labels(0, 1, 2))",
     lambda: call(kernels.cross_entropy_forward, f32(2, 3), labels(0, 1, 2))),
    (K, "ce_forward-labels-range", "cross_entropy_forward(f32(2, 3), labels(0, 3))",
     lambda: call(kernels.cross_entropy_forward, f32(2, 3), labels(0, 3))),
    (K, "ce_forward-labels-negative", "cross_entropy_forward(f64(2, 3), labels(-1, 0))",
     lambda: call(kernels.cross_entropy_forward, f64(2, 3), labels(-1, 0))),
    (K, "ce_backward-probs-1d", "cross_entropy_backward(f32(3), labels(0))",
     lambda: call(kernels.cross_entropy_backward, f32(3), labels(0))),
    (K, "ce_backward-labels-range", "cross_entropy_backward(f32(2, 3), labels(1, 5))",
     lambda: call(kernels.cross_entropy_backward, f32(2, 3), labels(1, 5))),
    (K, "ce_backward-out-dtype", "cross_entropy_backward(f32(2, 3), labels(0, 1), out=f64(2, 3))",
     lambda: call(kernels.cross_entropy_backward, f32(2, 3), labels(0, 1), out=f64(2, 3))),
    (K, "ce_backward-out-shape", "cross_entropy_backward(f32(2, 3), labels(0, 1), out=f32(3, 2))",
     lambda: call(kernels.cross_entropy_backward, f32(2, 3), labels(0, 1), out=f32(3, 2))),
    (K, "ce_backward-out-partial-overlap", "cross_entropy_backward(buf[:6] as (2, 3), labels(0, 1), out=buf[2:8] as (2, 3))",
     lambda: (lambda buf: call(kernels.cross_entropy_backward, buf[:6].reshape(2, 3), labels(0, 1),
                               out=buf[2:8].reshape(2, 3)))(f32(10))),
    # ---- linear_forward -----------------------------------------------------------------------
    (K, "linear_forward-x-1d", "linear_forward(f32(3), f32(3, 2))",
     lambda: call(kernels.linear_forward, f32(3), f32(3, 2))),
    (K, "linear_forward-w-3d", "linear_forward(f32(2, 3), f32(3, 2, 1))",
     lambda: call(kernels.linear_forward, f32(2, 3), f32(3, 2, 1))),
    (K, "linear_forward-int", "linear_forward(int32 (2, 3), f32(3, 2))",
     lambda: call(kernels.linear_forward, np.ones((2, 3), np.int32), f32(3, 2))),
    (K, "linear_forward-mixed-dtypes", "linear_forward(f32(2, 3), f64(3, 2))",
     lambda: call(kernels.linear_forward, f32(2, 3), f64(3, 2))),
    (K, "linear_forward-not-aligned", "linear_forward(f32(2, 3), f32(4, 2))",
     lambda: call(kernels.linear_forward, f32(2, 3), f32(4, 2))),
    (K, "linear_forward-b-not-array", "linear_forward(f32(2, 3), f32(3, 2), [0.0, 0.0])",
     lambda: call(kernels.linear_forward, f32(2, 3), f32(3, 2), [0.0, 0.0])),
    (K, "linear_forward-b-dtype", "linear_forward(f32(2, 3), f32(3, 2), f64(2))",
     lambda: call(kernels.linear_forward, f32(2, 3), f32(3, 2), f64(2))),
    (K, "linear_forward-b-shape", "linear_forward(f32(2, 3), f32(3, 2), f32(1, 2))",
     lambda: call(kernels.linear_forward, f32(2, 3), f32(3, 2), f32(1, 2))),
    (K, "linear_forward-out-shape", "linear_forward(f32(2, 3), f32(3, 2), out=f32(3, 2))",
     lambda: call(kernels.linear_forward, f32(2, 3), f32(3, 2), out=f32(3, 2))),
    (K, "linear_forward-out-overlaps-x", "linear_forward(buf[:6].reshape(2, 3), f32(3, 2), out=buf[4:8].reshape(2, 2))",
     lambda: (lambda buf: call(kernels.linear_forward, buf[:6].reshape(2, 3), f32(3, 2), out=buf[4:8].reshape(2, 2)))(f32(10))),
    (K, "linear_forward-out-overlaps-w", "linear_forward(f32(2, 3), buf[:6].reshape(3, 2), out=buf[4:8].reshape(2, 2))",
     lambda: (lambda buf: call(kernels.linear_forward, f32(2, 3), buf[:6].reshape(3, 2), out=buf[4:8].reshape(2, 2)))(f32(10))),
    (K, "linear_forward-out-overlaps-b", "linear_forward(f32(2, 3), f32(3, 2), buf[:2], out=buf[:4].reshape(2, 2))",
     lambda: (lambda buf: call(kernels.linear_forward, f32(2, 3), f32(3, 2), buf[:2], out=buf[:4].reshape(2, 2)))(f32(10))),
    # ---- linear_backward ----------------------------------------------------------------------
    (K, "linear_backward-accumulate-type", "linear_backward(f32(2, 2), f32(2, 3), f32(3, 2), accumulate='yes')",
     lambda: call(kernels.linear_backward, f32(2, 2), f32(2, 3), f32(3, 2), accumulate="yes")),
    (K, "linear_backward-accumulate-length", "linear_backward(f32(2, 2), f32(2, 3), f32(3, 2), accumulate=(True, False))",
     lambda: call(kernels.linear_backward, f32(2, 2), f32(2, 3), f32(3, 2), accumulate=(True, False))),
    (K, "linear_backward-accumulate-item", "linear_backward(f32(2, 2), f32(2, 3), f32(3, 2), accumulate=(True, 'no', True))",
     lambda: call(kernels.linear_backward, f32(2, 2), f32(2, 3), f32(3, 2), accumulate=(True, "no", True))),
    (K, "linear_backward-grad-1d", "linear_backward(f32(4), f32(2, 3), f32(3, 2))",
     lambda: call(kernels.linear_backward, f32(4), f32(2, 3), f32(3, 2))),
    (K, "linear_backward-mixed-dtypes", "linear_backward(f32(2, 2), f32(2, 3), f64(3, 2))",
     lambda: call(kernels.linear_backward, f32(2, 2), f32(2, 3), f64(3, 2))),
    (K, "linear_backward-not-aligned", "linear_backward(f32(2, 2), f32(2, 3), f32(4, 2))",
     lambda: call(kernels.linear_backward, f32(2, 2), f32(2, 3), f32(4, 2))),
    (K, "linear_backward-grad-shape", "linear_backward(f32(2, 3), f32(2, 3), f32(3, 2))",
     lambda: call(kernels.linear_backward, f32(2, 3), f32(2, 3), f32(3, 2))),
    (K, "linear_backward-relu-without-y", "linear_backward(f32(2, 2), f32(2, 3), f32(3, 2), relu=True)",
     lambda: call(kernels.linear_backward, f32(2, 2), f32(2, 3), f32(3, 2), relu=True)),
    (K, "linear_backward-y-without-relu", "linear_backward(f32(2, 2), f32(2, 3), f32(3, 2), f32(2, 2))",
     lambda: call(kernels.linear_backward, f32(2, 2), f32(2, 3), f32(3, 2), f32(2, 2))),
    (K, "linear_backward-y-shape", "linear_backward(f32(2, 2), f32(2, 3), f32(3, 2), f32(2, 3), relu=True)",
     lambda: call(kernels.linear_backward, f32(2, 2), f32(2, 3), f32(3, 2), f32(2, 3), relu=True)),
    (K, "linear_backward-y-dtype", "linear_backward(f32(2, 2), f32(2, 3), f32(3, 2), f64(2, 2), relu=True)",
     lambda: call(kernels.linear_backward, f32(2, 2), f32(2, 3), f32(3, 2), f64(2, 2), relu=True)),
    (K, "linear_backward-dx-not-needed", "linear_backward(f32(2, 2), f32(2, 3), f32(3, 2), need_dx=False, dx=f32(2, 3))",
     lambda: call(kernels.linear_backward, f32(2, 2), f32(2, 3), f32(3, 2), need_dx=False, dx=f32(2, 3))),
    (K, "linear_backward-dw-shape", "linear_backward(f32(2, 2), f32(2, 3), f32(3, 2), dw=f32(2, 3))",
     lambda: call(kernels.linear_backward, f32(2, 2), f32(2, 3), f32(3, 2), dw=f32(2, 3))),
    (K, "linear_backward-db-read-only", "linear_backward(f32(2, 2), f32(2, 3), f32(3, 2), db=<read-only f32(2)>)",
     lambda: call(kernels.linear_backward, f32(2, 2), f32(2, 3), f32(3, 2), db=read_only(f32(2)))),
    (K, "linear_backward-dx-overlaps-input", "linear_backward(f32(2, 2), x, f32(3, 2), dx=x)  # x = f32(2, 3)",
     lambda: (lambda x: call(kernels.linear_backward, f32(2, 2), x, f32(3, 2), dx=x))(f32(2, 3))),
    (K, "linear_backward-grads-overlap", "linear_backward(f32(2, 2), f32(2, 3), f32(3, 2), dx=buf[:6].reshape(2, 3), dw=buf[4:10].reshape(3, 2))",
     lambda: (lambda buf: call(kernels.linear_backward, f32(2, 2), f32(2, 3), f32(3, 2), dx=buf[:6].reshape(2, 3),
                               dw=buf[4:10].reshape(3, 2)))(f32(10))),
    # ---- threads, instruction sets ----------------------------------------------------------
    (K, "set_num_threads-zero", "set_num_threads(0)", lambda: call(kernels.set_num_threads, 0)),
    (K, "set_num_threads-float", "set_num_threads(1.5)", lambda: call(kernels.set_num_threads, 1.5)),
    (K, "set_isa-unknown", "set_isa('fast')", lambda: call(kernels.set_isa, "fast")),
    (K, "set_isa-unsupported", "set_isa('avx512') on a CPU without AVX-512", _set_isa_unsupported),
    (K, "import-bad-isa", "MATGRAD_ISA=sse9 python -c 'import matgrad'",
     lambda: in_child("import matgrad", MATGRAD_ISA="sse9")),
    (K, "set_blocking-zero", "set_blocking(kc=0)", lambda: call(kernels.set_blocking, kc=0)),
    (K, "set_blocking-float", "set_blocking(nc=2.5)", lambda: call(kernels.set_blocking, nc=2.5)),
    (K, "set_blocking-too-large", "set_blocking(mc=2**40)", lambda: call(kernels.set_blocking, mc=2**40)),
    (K, "import-bad-blocking", "MATGRAD_BLOCKING='kc=-3' python -c 'import matgrad'",
     lambda: in_child("import matgrad", MATGRAD_BLOCKING="kc=-3")),
    (K, "import-blocking-unknown-name", "MATGRAD_BLOCKING='kc=256,xc=4' python -c 'import matgrad'",
     lambda: in_child("import matgrad", MATGRAD_BLOCKING="kc=256,xc=4")),
    (K, "fma_peak-unknown-isa", "fma_peak('sse9')", lambda: call(kernels.fma_peak, "sse9")),

    # ---- tensors -----------------------------------------------------------------------------
    (T, "tensor-float16", "mg.tensor(np.ones(2, np.float16))", lambda: call(mg.tensor, np.ones(2, np.float16))),
    (T, "tensor-complex", "mg.tensor(np.ones(2, complex))", lambda: call(mg.tensor, np.ones(2, complex))),
    (T, "tensor-strings", "mg.tensor(['a', 'b'])", lambda: call(mg.tensor, ["a", "b"])),
    (T, "tensor-ragged", "mg.tensor([[1, 2], [3]])", lambda: call(mg.tensor, [[1, 2], [3]])),
    (T, "tensor-dtype", "mg.tensor([1.0], dtype=np.int64)", lambda: call(mg.tensor, [1.0], dtype=np.int64)),
    (T, "item-not-single", "t32(2, 3).item()", lambda: (lambda t: (t.item, [t]))(t32(2, 3))),
    (T, "backward-no-grad", "x.backward()  # x does not require grad", _backward(shape=(), requires_grad=False)),
    (T, "backward-needs-grad", "y.backward()  # y of shape (2, 3)", _backward()),
    (T, "backward-grad-shape", "y.backward(np.ones((3, 2)))", _backward(np.ones((3, 2)))),
    (T, "backward-grad-dtype", "y.backward(np.ones((2, 3), np.float32))  # y float64",
     _backward(np.ones((2, 3), np.float32))),
    (T, "backward-grad-not-numbers", "y.backward(np.full((2, 3), 'a'))", _backward(np.full((2, 3), "a"))),
    (T, "backward-twice", "y.backward(); y.backward()", _backward_twice),
    (T, "backward-released-node", "h = x.relu(); h.sum().backward(); (h * 3.0).sum().backward()",
     _backward_through_released_node),
    (T, "op-mixed-dtypes", "t32(2, 3) + t64(2, 3)", lambda: call(mg.add, t32(2, 3), t64(2, 3))),
    (T, "op-array-dtype", "t32(2, 3) * f64(2, 3)", lambda: call(mg.mul, t32(2, 3), f64(2, 3))),
    (T, "op-not-a-number", "t32(2, 3) - 'a'", lambda: call(mg.sub, t32(2, 3), "a")),
    (T, "op-object-array", "t32(2) + np.array([None, None])", lambda: call(mg.add, t32(2), np.array([None, None]))),
    (T, "op-no-tensor", "mg.mul(f32(2), f32(2))", lambda: call(mg.mul, f32(2), f32(2))),
    (T, "add-broadcast", "t32(3, 4) + t32(5)", lambda: call(mg.add, t32(3, 4), t32(5))),
    (T, "sub-broadcast", "t32(3, 4) - t32(3)", lambda: call(mg.sub, t32(3, 4), t32(3))),
    (T, "mul-broadcast", "t32(2, 3) * t32(3, 2)", lambda: call(mg.mul, t32(2, 3), t32(3, 2))),
    (T, "div-broadcast", "t32(3, 4) / t32(5)", lambda: call(mg.div, t32(3, 4), t32(5))),
    (T, "conv-ndim", "mg.conv2d(t32(3, 6, 6), t32(4, 3, 3, 3))", lambda: call(mg.conv2d, t32(3, 6, 6), t32(4, 3, 3, 3))),
    (T, "conv-channels", "mg.conv2d(t32(1, 3, 6, 6), t32(4, 2, 3, 3))",
     lambda: call(mg.conv2d, t32(1, 3, 6, 6), t32(4, 2, 3, 3))),
    (T, "conv-kernel-too-large", "mg.conv2d(t32(1, 3, 4, 4), t32(2, 3, 7, 7), padding=1)",
     lambda: call(mg.conv2d, t32(1, 3, 4, 4), t32(2, 3, 7, 7), padding=1)),
    (T, "conv-stride", "mg.conv2d(t32(1, 3, 6, 6), t32(4, 3, 3, 3), stride=0)",
     lambda: call(mg.conv2d, t32(1, 3, 6, 6), t32(4, 3, 3, 3), stride=0)),
    (T, "conv-padding-type", "mg.conv2d(t32(1, 3, 6, 6), t32(4, 3, 3, 3), padding=1.5)",
     lambda: call(mg.conv2d, t32(1, 3, 6, 6), t32(4, 3, 3, 3), padding=1.5)),
    (T, "pool-window-too-large", "mg.max_pool2d(t32(1, 1, 3, 3), 4)", lambda: call(mg.max_pool2d, t32(1, 1, 3, 3), 4)),
    (T, "batch-norm-batch-of-one", "mg.nn.BatchNorm1d(3)(t32(1, 3))", lambda: call(mg.nn.BatchNorm1d(3), t32(1, 3))),
    (T, "div-by-zero", "t32(2) / 0", lambda: call(mg.div, t32(2), 0)),
    (T, "op-matmul-not-aligned", "t32(3, 4) @ t32(3, 4)", lambda: call(mg.matmul, t32(3, 4), t32(3, 4))),
    (T, "op-matmul-1d", "t32(3) @ t32(3, 2)", lambda: call(mg.matmul, t32(3), t32(3, 2))),
    (T, "sum-axis-range", "t32(2, 3).sum(axis=2)", lambda: call(mg.sum, t32(2, 3), 2)),
    (T, "sum-axis-type", "t32(2, 3).sum(axis=1.0)", lambda: call(mg.sum, t32(2, 3), 1.0)),
    (T, "sum-axis-repeated", "t32(2, 3).sum(axis=(1, -1))", lambda: call(mg.sum, t32(2, 3), (1, -1))),
    (T, "mean-empty", "t32(0, 3).mean(axis=0)", lambda: call(mg.mean, t32(0, 3), 0)),
    (T, "reshape-size", "t32(2, 3).reshape(4, 2)", lambda: call(mg.reshape, t32(2, 3), 4, 2)),
    (T, "op-linear-w-not-tensor", "mg.linear(t32(2, 3), f32(3, 2))", lambda: call(mg.linear, t32(2, 3), f32(3, 2))),
    (T, "op-linear-mixed-dtypes", "mg.linear(t32(2, 3), t32(3, 2), t64(2))",
     lambda: call(mg.linear, t32(2, 3), t32(3, 2), t64(2))),
    (T, "op-linear-bias-broadcast", "mg.linear(t32(2, 3), t32(3, 2), t32(3, 1))",
     lambda: call(mg.linear, t32(2, 3), t32(3, 2), t32(3, 1))),
    (T, "op-linear-not-aligned", "mg.linear(t32(2, 3), t32(4, 2))", lambda: call(mg.linear, t32(2, 3), t32(4, 2))),

    # ---- losses ------------------------------------------------------------------------------
    (L, "loss-scores-not-tensor", "mg.cross_entropy(f32(2, 3), [0, 1])",
     lambda: call(mg.cross_entropy, f32(2, 3), np.array([0, 1]))),
    (L, "loss-scores-1d", "mg.cross_entropy(t32(3), [0])", lambda: call(mg.cross_entropy, t32(3), np.array([0]))),
    (L, "loss-scores-empty", "mg.svm_loss(t32(0, 3), [])",
     lambda: call(mg.svm_loss, t32(0, 3), np.array([], np.int64))),
    (L, "loss-labels-tensor", "mg.cross_entropy(t32(2, 3), mg.tensor([0, 1]))",
     lambda: call(mg.cross_entropy, t32(2, 3), mg.tensor([0, 1]))),
    (L, "loss-labels-float", "mg.cross_entropy(t32(2, 3), np.array([0.0, 1.0]))",
     lambda: call(mg.cross_entropy, t32(2, 3), np.array([0.0, 1.0]))),
    (L, "loss-labels-bool", "mg.svm_loss(t32(2, 3), np.array([True, False]))",
     lambda: call(mg.svm_loss, t32(2, 3), np.array([True, False]))),
    (L, "loss-labels-shape", "mg.cross_entropy(t32(2, 3), np.array([0, 1, 2]))",
     lambda: call(mg.cross_entropy, t32(2, 3), np.array([0, 1, 2]))),
    (L, "loss-labels-range", "mg.cross_entropy(t32(3, 4), np.array([0, 1, 4]))",
     lambda: call(mg.cross_entropy, t32(3, 4), np.array([0, 1, 4]))),
    (L, "loss-labels-negative", "mg.svm_loss(t32(2, 3), np.array([0, -1]))",
     lambda: call(mg.svm_loss, t32(2, 3), np.array([0, -1]))),
    (L, "loss-scores-nan", "mg.cross_entropy(scores, labels)  # scores (3, 4) with a NaN at (1, 2)",
     lambda: (lambda s: call(mg.cross_entropy, s, np.array([0, 1, 2])))(
         mg.tensor(np.where(np.arange(12).reshape(3, 4) == 6, np.nan, 1.0), requires_grad=True))),
    (L, "loss-scores-neg-inf", "mg.cross_entropy(scores, labels)  # scores (2, 3) with -inf at (0, 2), not a label",
     lambda: (lambda s: call(mg.cross_entropy, s, np.array([0, 1])))(
         mg.tensor(np.where(np.arange(6).reshape(2, 3) == 2, -np.inf, 1.0), requires_grad=True))),
    (L, "loss-labels-int32-negative", "mg.cross_entropy(t32(2, 3), np.array([0, -1], np.int32))",
     lambda: call(mg.cross_entropy, t32(2, 3), np.array([0, -1], np.int32))),
    (L, "mse-pred-not-tensor", "mg.mse_loss(f32(2), t32(2))", lambda: call(mg.mse_loss, f32(2), t32(2))),
    (L, "mse-mixed-dtypes", "mg.mse_loss(t32(2), t64(2))", lambda: call(mg.mse_loss, t32(2), t64(2))),
    (L, "mse-array-dtype", "mg.mse_loss(t32(2), f64(2))", lambda: call(mg.mse_loss, t32(2), f64(2))),
    (L, "mse-shapes", "mg.mse_loss(t32(2, 3), f32(3))", lambda: call(mg.mse_loss, t32(2, 3), f32(3))),
    (L, "mse-empty", "mg.mse_loss(t32(0), f32(0))", lambda: call(mg.mse_loss, t32(0), f32(0))),
    (L, "mse-target-inf", "mg.mse_loss(t32(2), np.array([0, np.inf], np.float32))",
     lambda: call(mg.mse_loss, t32(2), np.array([0, np.inf], np.float32))),

    # ---- gradient tools ------------------------------------------------------------------------
    (C, "gradcheck-nothing-to-check", "mg.gradcheck(fn, t64(2, requires_grad=False))",
     lambda: call(mg.gradcheck, lambda t: t.sum(), t64(2, requires_grad=False))),
    (C, "gradcheck-float32", "mg.gradcheck(fn, t32(2))", lambda: call(mg.gradcheck, lambda t: t.sum(), t32(2))),
    (C, "gradcheck-returns-array", "mg.gradcheck(lambda t: t.data, t64(2))",
     lambda: call(mg.gradcheck, lambda t: t.data, t64(2))),
    (C, "gradcheck-returns-float32", "mg.gradcheck(lambda t: mg.tensor([1.0]), t64(2))",
     lambda: call(mg.gradcheck, lambda t: mg.tensor([1.0]), t64(2))),
    (C, "gradcheck-disagrees", "mg.gradcheck(lambda t: t.relu().sum(), <float64 [0.0]>)", _gradcheck_disagrees),
    (C, "jacobian-too-large", "mg.jacobian(lambda t: t.relu(), np.zeros((64, 4096), np.float32))",
     lambda: call(mg.jacobian, lambda t: t.relu(), mg.tensor(np.zeros((64, 4096), np.float32)))),
    (C, "jacobian-returns-array", "mg.jacobian(lambda t: t.data, t32(2))",
     lambda: call(mg.jacobian, lambda t: t.data, t32(2))),
    (C, "jacobian-dtype", "mg.jacobian(lambda t: mg.tensor(t.data, dtype=np.float64), t32(2))",
     lambda: call(mg.jacobian, lambda t: mg.tensor(t.data, dtype=np.float64), t32(2))),

    # ---- nn, save/load, seeds, drawing, data ------------------------------------------------------
    (N, "nn-linear-features-zero", "mg.nn.Linear(0, 3)", lambda: call(mg.nn.Linear, 0, 3)),
    (N, "nn-linear-features-bool", "mg.nn.Linear(3, True)", lambda: call(mg.nn.Linear, 3, True)),
    (N, "nn-linear-dtype", "mg.nn.Linear(3, 2, dtype=np.float16)", lambda: call(mg.nn.Linear, 3, 2, dtype=np.float16)),
    (N, "sequential-not-module", "mg.nn.Sequential(mg.nn.ReLU(), 'relu')",
     lambda: call(mg.nn.Sequential, mg.nn.ReLU(), "relu")),
    (N, "mlp-sizes", "mg.nn.MLP([64])", lambda: call(mg.nn.MLP, [64])),
    (N, "module-no-forward", "mg.nn.Module()(x)", _module_without_forward),
    (N, "load-missing-key", "model.load_state_dict(state without '2.bias')", _load_state_dict(_drop_key)),
    (N, "load-shape", "model.load_state_dict(state with '0.weight' of shape (4, 3))", _load_state_dict(_reshape_key)),
    (N, "load-dtype", "model.load_state_dict(state with an int64 '0.bias')", _load_state_dict(_int_key)),
    (T, "array-copy-false", "np.asarray(t32(2, 3), dtype=np.float64, copy=False)",
     lambda: call(np.asarray, t32(2, 3), dtype=np.float64, copy=False)),
    (T, "from-dlpack-not-exporter", "mg.from_dlpack([1, 2])", lambda: call(mg.from_dlpack, [1, 2])),
    (T, "float-many", "float(t32(2, 3))", lambda: call(float, t32(2, 3))),
    (T, "len-0d", "len(mg.tensor(1.0))", lambda: call(len, mg.tensor(1.0))),
    (N, "torch-state-missing", "mg.nn.load_torch_state_dict(model, {})",
     _model(lambda m: (mg.nn.load_torch_state_dict, (m, {})))),
    (N, "torch-state-shape", "mg.nn.load_torch_state_dict(model, state with '0.weight' of shape (3, 4))",
     _model(lambda m: (mg.nn.load_torch_state_dict,
                       (m, {**mg.nn.to_torch_state_dict(m), "0.weight": np.zeros((3, 4), np.float32)})))),
    (N, "onnx-unsupported-layer", "mg.onnx.export(Sequential(model, Custom()), '/tmp/matgrad-contract-data/m.onnx', f32(1, 3))",
     _model(lambda m: (mg.onnx.export, (mg.nn.Sequential(m, _Custom()), str(DATA_DIR / "m.onnx"), f32(1, 3))))),
    (N, "checkpoint-truncated", "mg.load(model, '/tmp/matgrad-contract-data/truncated.npz')  (cut after 100 bytes)",
     _model(_bad_checkpoint("truncated"))),
    (N, "checkpoint-no-optimizer", "mg.load(model, '/tmp/matgrad-contract-data/plain.npz', optimizer)  (saved without one)",
     _model(_bad_checkpoint("plain"))),
    (N, "manual-seed-negative", "mg.manual_seed(-1)", lambda: call(mg.manual_seed, -1)),
    (N, "manual-seed-float", "mg.manual_seed(1.5)", lambda: call(mg.manual_seed, 1.5)),
    (N, "to_dot-not-tensor", "mg.to_dot(f32(2))", lambda: call(mg.to_dot, f32(2))),
    (N, "to_dot-extension", "mg.to_dot(t32(2), 'graph.txt')", lambda: call(mg.to_dot, t32(2), "graph.txt")),
    (N, "split-fraction", "mg.data.train_test_split(x, y, test_fraction=1.0)",
     lambda: call(mg.data.train_test_split, f32(4, 2), np.arange(4), test_fraction=1.0)),

    # ---- optimizers --------------------------------------------------------------------------
    (O, "optim-empty", "mg.optim.SGD([], lr=0.1)", lambda: call(mg.optim.SGD, [], lr=0.1)),
    (O, "optim-not-tensor", "mg.optim.Adam([t32(2), f32(2)])", lambda: call(mg.optim.Adam, [t32(2), f32(2)])),
    (O, "optim-no-grad", "mg.optim.SGD([t32(2, 3, requires_grad=False)], lr=0.1)",
     lambda: call(mg.optim.SGD, [t32(2, 3, requires_grad=False)], lr=0.1)),
    (O, "optim-read-only", "mg.optim.Adam([<tensor over a read-only array>])",
     lambda: call(mg.optim.Adam, [mg.tensor(read_only(f32(2)), requires_grad=True)])),
    (O, "sgd-lr-zero", "mg.optim.SGD(params, lr=0)", lambda: call(mg.optim.SGD, [t32(2)], lr=0)),
    (O, "sgd-lr-nan", "mg.optim.SGD(params, lr=float('nan'))", lambda: call(mg.optim.SGD, [t32(2)], lr=float("nan"))),
    (O, "sgd-momentum", "mg.optim.SGD(params, lr=0.1, momentum=-0.9)",
     lambda: call(mg.optim.SGD, [t32(2)], lr=0.1, momentum=-0.9)),
    (O, "sgd-lr-bool", "mg.optim.SGD(params, lr=True)", lambda: call(mg.optim.SGD, [t32(2)], lr=True)),
    (O, "adam-betas", "mg.optim.Adam(params, betas=0.9)", lambda: call(mg.optim.Adam, [t32(2)], betas=0.9)),
    (O, "adam-beta1", "mg.optim.Adam(params, betas=(1.0, 0.999))",
     lambda: call(mg.optim.Adam, [t32(2)], betas=(1.0, 0.999))),
    (O, "adam-eps", "mg.optim.Adam(params, eps=-1e-8)", lambda: call(mg.optim.Adam, [t32(2)], eps=-1e-8)),
    (O, "adam-weight-decay", "mg.optim.Adam(params, weight_decay=-0.1)",
     lambda: call(mg.optim.Adam, [t32(2)], weight_decay=-0.1)),

    # ---- python -m matgrad ---------------------------------------------------------------------
    (X, "cli-epochs-zero", "--epochs 0", lambda: cli("--epochs", "0")),
    (X, "cli-epochs-text", "--epochs x", lambda: cli("--epochs", "x")),
    (X, "cli-hidden-text", "--hidden 64,abc", lambda: cli("--hidden", "64,abc")),
    (X, "cli-hidden-zero", "--hidden 0", lambda: cli("--hidden", "0")),
    (X, "cli-lr-negative", "--lr -1", lambda: cli("--lr", "-1")),
    (X, "cli-lr-nan", "--lr nan", lambda: cli("--lr", "nan")),
    (X, "cli-batch-size-zero", "--batch-size 0", lambda: cli("--batch-size", "0")),
    (X, "cli-optimizer", "--optimizer rmsprop", lambda: cli("--optimizer", "rmsprop")),
    (X, "cli-dtype", "--dtype float16", lambda: cli("--dtype", "float16")),
    (X, "cli-threads-zero", "--threads 0", lambda: cli("--threads", "0")),
    (X, "cli-seed-negative", "--seed -2", lambda: cli("--seed", "-2")),
    (X, "cli-unknown-option", "--bogus", lambda: cli("--bogus")),
    (X, "cli-missing-value", "--epochs", lambda: cli("--epochs")),
    (X, "cli-plot-without-matplotlib", "--plot curves.png  (matplotlib not installed)",
     lambda: cli("--plot", "curves.png", hide=("matplotlib",))),
    (X, "cli-data-missing", "--data /tmp/matgrad-contract-data/none.csv", lambda: cli("--data", data_file("none.csv"))),
    (X, "cli-data-type", "--data /tmp/matgrad-contract-data/table.txt", lambda: cli("--data", data_file("table.txt", "a,b\n1,2\n"))),
    (X, "cli-data-empty", "--data /tmp/matgrad-contract-data/empty.csv  (an empty file)", lambda: cli("--data", data_file("empty.csv", ""))),
    (X, "cli-data-no-rows", "--data /tmp/matgrad-contract-data/header.csv  (a header only)",
     lambda: cli("--data", data_file("header.csv", "a,b,label\n"))),
    (X, "cli-data-non-numeric", "--data /tmp/matgrad-contract-data/text.csv  (column b holds 'high' at row 2)",
     lambda: cli("--data", data_file("text.csv", "a,b,label\n1,2,x\n3,high,y\n"))),
    (X, "cli-data-nan", "--data /tmp/matgrad-contract-data/nan.csv  (column a holds nan at row 2)",
     lambda: cli("--data", data_file("nan.csv", "a,b,label\n1,2,x\nnan,4,y\n"))),
    (X, "cli-data-one-class", "--data /tmp/matgrad-contract-data/one.csv  (every label is x)",
     lambda: cli("--data", data_file("one.csv", "a,b,label\n1,2,x\n3,4,x\n"))),
    (X, "cli-data-target", "--data /tmp/matgrad-contract-data/ok.csv --target kind",
     lambda: cli("--data", data_file("ok.csv", "a,b,label\n1,2,x\n3,4,y\n"), "--target", "kind")),
    (X, "cli-data-npz-no-y", "--data /tmp/matgrad-contract-data/noy.npz  (only X)",
     lambda: cli("--data", data_file("noy.npz", arrays={"X": np.zeros((3, 2))}))),
    (X, "cli-data-npz-lengths", "--data /tmp/matgrad-contract-data/len.npz  (X 3 rows, y 2)",
     lambda: cli("--data", data_file("len.npz", arrays={"X": np.zeros((3, 2)), "y": np.array([0, 1])}))),
    (X, "cli-data-and-dataset", "--data t.csv --dataset iris", lambda: cli("--data", "t.csv", "--dataset", "iris")),
    (X, "cli-target-without-data", "--target label", lambda: cli("--target", "label")),
    (X, "cli-cnn-with-data", "--model cnn --dataset iris", lambda: cli("--model", "cnn", "--dataset", "iris")),
    (X, "cli-test-size-range", "--test-size 1.5", lambda: cli("--test-size", "1.5")),
    (X, "cli-dataset-without-sklearn", "--dataset wine  (scikit-learn not installed)",
     lambda: cli("--dataset", "wine", hide=("sklearn",))),
    (X, "cli-distributed-without-mpi4py", "--distributed  (mpi4py not installed)",
     lambda: cli("--distributed", "--epochs", "1", hide=("mpi4py",))),
    # ---- mg.distributed (before init(): these need no MPI) ------------------------------------
    (D, "dist-before-init", "mg.distributed.rank()  (before init)", lambda: call(mg.distributed.rank)),
    (D, "dist-allreduce-before-init", "allreduce_gradients(mg.nn.Linear(2, 2))  (before init)",
     lambda: call(mg.distributed.allreduce_gradients, mg.nn.Linear(2, 2))),
    (D, "dist-init-threads", "init(threads=0)", lambda: call(mg.distributed.init, threads=0)),
    (D, "dist-shard-negative", "shard(-1, rank=0, world_size=1)",
     lambda: call(mg.distributed.shard, -1, rank=0, world_size=1)),
    (D, "dist-shard-rank", "shard(10, rank=2, world_size=2)",
     lambda: call(mg.distributed.shard, 10, rank=2, world_size=2)),
    (D, "dist-shard-epoch", "shard(10, epoch=1.5, rank=0, world_size=1)",
     lambda: call(mg.distributed.shard, 10, epoch=1.5, rank=0, world_size=1)),
    (X, "cli-save-missing-dir", "--save /nonexistent/dir/model.npz",
     lambda: cli("--epochs", "1", "--hidden", "8", "--save", "/nonexistent/dir/model.npz")),
    (X, "cli-plot-missing-dir", "--plot /nonexistent/dir/curves.png",
     lambda: cli("--epochs", "1", "--hidden", "8", "--plot", "/nonexistent/dir/curves.png")),
]

SECTIONS = {
    K: "Kernels: `matgrad.kernels`",
    T: "Tensors and ops",
    L: "Losses",
    C: "Gradient tools",
    N: "Layers, save/load, seeds, drawing, data",
    O: "Optimizers",
    D: "Distributed: `mg.distributed`",
    X: "Command line: `python -m matgrad`",
}

# --------------------------------------------------------------------------------------------
# snapshots: "nothing changed"
# --------------------------------------------------------------------------------------------


def snapshot(obj, seen=None):
    """A comparable picture of everything an input holds (values, not identity)."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return ("seen", id(obj))
    if isinstance(obj, np.ndarray):
        return ("ndarray", obj.shape, obj.dtype.str, obj.strides, obj.flags.writeable, obj.tobytes())
    seen.add(id(obj))
    if isinstance(obj, mg.Tensor):
        return ("Tensor", snapshot(obj.data, seen), None if obj.grad is None else snapshot(obj.grad, seen),
                obj.requires_grad, obj._backward, tuple(id(p) for p in obj._prev),
                obj.grad is not None and obj._gown is obj.grad)
    if isinstance(obj, mg.nn.Module):
        return ("Module", [(name, snapshot(p, seen)) for name, p in obj.named_parameters()])
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__, [snapshot(o, seen) for o in obj])
    if isinstance(obj, dict):
        return ("dict", [(k, snapshot(v, seen)) for k, v in obj.items()])
    return ("object", id(obj))


def process_state():
    gen = mg.random.generator()
    return (kernels.isa(), kernels.get_num_threads(), mg.is_grad_enabled(), id(gen), str(gen.bit_generator.state))


# --------------------------------------------------------------------------------------------
# the doc
# --------------------------------------------------------------------------------------------

_ROW = re.compile(r"^\|\s*`(?P<id>[^`]+)`\s*\|(?P<input>.*)\|(?P<raises>.*)\|(?P<message>.*)\|\s*$")


def _unquote(cell):
    """The text of a markdown code span: `x` or `` x `` (for text with a backtick); | unescaped."""
    cell = cell.strip()
    ticks = len(cell) - len(cell.lstrip("`"))
    assert ticks and cell.endswith("`" * ticks), f"not a code span: {cell!r}"
    return cell[ticks:-ticks].strip(" ").replace("\\|", "|")


def doc_rows():
    """{id: (exception name, message, prefix?)} from docs/errors.md."""
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        m = _ROW.match(line.replace("\\|", "\0"))
        if not m:
            continue
        cells = {k: v.replace("\0", "\\|") for k, v in m.groupdict().items()}
        message = cells["message"].strip()
        prefix = message.endswith("…")
        rows[cells["id"]] = (_unquote(cells["raises"]), _unquote(message.rstrip("…").strip()), prefix)
    return rows


def exception_name(e):
    if isinstance(e, UsageExit):
        return f"SystemExit({e.code})"
    if isinstance(e, ChildError):
        return f"{e.type_name} (at import)"
    return type(e).__name__


def exception_message(e):
    text = str(e.args[0]) if e.args else ""
    return text


def _code(text):
    text = text.replace("|", "\\|")
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def render_rows():
    """The doc's tables as the library behaves now (``python tests/test_errors_contract.py``)."""
    out = []
    for section, title in SECTIONS.items():
        out += [f"\n## {title}\n", "| case | input | raises | message |", "|---|---|---|---|"]
        for sec, cid, text, make in CASES:
            if sec != section:
                continue
            try:
                fn, _ = make()
                fn()
                raised, message = "(nothing)", ""
            except BaseException as e:  # noqa: BLE001 - reporting tool
                if isinstance(e, pytest.skip.Exception):
                    raised, message = "(skipped here)", ""
                else:
                    raised, message = exception_name(e), exception_message(e)
            first = message.splitlines()[0] if message else ""
            tail = " …" if first != message else ""
            out.append(f"| `{cid}` | {_code(text)} | `{raised}` | {_code(first)}{tail} |")
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# the tests
# --------------------------------------------------------------------------------------------


def test_every_case_is_documented():
    documented = set(doc_rows())
    cases = [c[1] for c in CASES]
    assert len(cases) == len(set(cases)), "duplicate case ids"
    assert sorted(set(cases) - documented) == [], "cases missing from docs/errors.md"
    assert sorted(documented - set(cases)) == [], "rows of docs/errors.md without a case here"


def _params():
    out = []
    for section, cid, _, make in CASES:
        marks = [pytest.mark.xfail(strict=True, reason=KNOWN_GAPS[cid])] if cid in KNOWN_GAPS else []
        out.append(pytest.param(cid, make, id=cid, marks=marks))
    return out


@pytest.mark.parametrize("cid, make", _params())
def test_rejected_input_raises_documented_error_and_changes_nothing(cid, make):
    raises, message, prefix = doc_rows()[cid]
    if cid == "set_isa-unsupported":
        message = message.replace("avx512", "{name}")
    fn, watched = make()
    before, state = snapshot(watched), process_state()
    with pytest.raises(BaseException) as info:
        fn()
    e = info.value
    if isinstance(e, (KeyboardInterrupt, pytest.fail.Exception)):
        raise e
    assert exception_name(e) == raises, f"{type(e).__name__}: {e}"
    got = exception_message(e)
    if cid == "set_isa-unsupported":
        got = re.sub(r"'(avx512|avx2)'", "'{name}'", got)
    if prefix:
        assert got.startswith(message), got
    else:
        assert got == message
    assert snapshot(watched) == before, "an input or parameter changed"
    assert process_state() == state, "a process-wide setting changed"


def test_cli_bad_option_exits_with_status_2_in_a_real_process():
    done = subprocess.run([sys.executable, "-m", "matgrad", "--epochs", "0"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert done.stdout == ""
    raises, message, _ = doc_rows()["cli-epochs-zero"]
    assert raises == "SystemExit(2)"
    assert done.stderr.startswith("usage: python -m matgrad")
    assert done.stderr.strip().splitlines()[-1] == message


if __name__ == "__main__":
    print(render_rows())
