import importlib.util
import platform
import sys
from pathlib import Path

import numpy as np
import pytest

from matgrad import kernels

# The kernel sets of this architecture (each test skips those the CPU lacks).
_ARM = platform.machine().lower() in ("aarch64", "arm64")
ALL_ISAS = ("neon", "baseline") if _ARM else ("avx512", "avx2", "baseline")

# In a build without OpenMP, set_num_threads(n > 1) warns once (and pytest turns warnings into
# errors): tests that ask for threads then run on one. The warning itself is tested in
# test_single_threaded_build.py, which resets this flag.
if not kernels.has_openmp():
    kernels._warned_single_threaded = True


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip_slow = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


@pytest.fixture(params=ALL_ISAS)
def isa(request):
    """Runs the test once per kernel set this CPU supports, then restores the default."""
    name = request.param
    if not kernels.isa_available(name):
        pytest.skip(f"{name} kernels are not supported on this CPU")
    previous = kernels.isa()
    kernels.set_isa(name)
    yield name
    kernels.set_isa(previous)


@pytest.fixture
def threads():
    """Lets a test change the thread count; restores it afterwards."""
    previous = kernels.get_num_threads()
    yield kernels.set_num_threads
    kernels.set_num_threads(previous)


@pytest.fixture
def rng():
    return np.random.default_rng(20261126)


def matrix_with_layout(rng, rows, cols, dtype, layout):
    """A rows×cols matrix of standard normal values with the given memory layout: "C", "F",
    "strided" (a view with both strides > 1), "reversed" (negative strides) or "broadcast"
    (one row repeated: row stride 0, read-only)."""
    if layout == "C":
        return rng.standard_normal((rows, cols)).astype(dtype)
    if layout == "F":
        return np.asfortranarray(rng.standard_normal((rows, cols)).astype(dtype))
    if layout == "strided":
        return rng.standard_normal((2 * rows + 1, 3 * cols + 2)).astype(dtype)[1::2, 2::3]
    if layout == "reversed":
        return rng.standard_normal((rows, cols)).astype(dtype)[::-1, ::-1]
    if layout == "broadcast":
        return np.broadcast_to(rng.standard_normal((1, cols)).astype(dtype), (rows, cols))
    raise AssertionError(layout)


# Small deterministic inputs for the bad-input tables (test_kernel_errors, test_errors_contract).
def f32(*shape):
    return np.arange(np.prod(shape), dtype=np.float32).reshape(shape) - 3


def f64(*shape):
    return f32(*shape).astype(np.float64)


def read_only(arr):
    arr.flags.writeable = False
    return arr


def load_benchmark(name):
    """A script of benchmarks/ (not a package) imported as a module, for the tests of its pure
    functions."""
    path = Path(__file__).resolve().parent.parent / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # as an import would (dataclasses look their module up there)
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module
