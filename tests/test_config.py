"""Caches, block sizes and the machine's limit (cpp/src/cpu_info.cpp, blocking.cpp, peak.cpp):
kernels.config(), MATGRAD_BLOCKING, set_blocking, fma_peak. The derivation for known CPUs and a
larger forced-blocking sweep are C++ tests (cpp/tests/test_blocking.cpp, run by ctest)."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matgrad import kernels


@pytest.fixture
def blocking():
    """Lets a test force blockings; returns to the derived ones afterwards."""
    yield kernels.set_blocking
    kernels.set_blocking()


def test_config_has_the_documented_shape():
    cfg = kernels.config()
    assert cfg["isa"] == kernels.isa()
    assert cfg["threads"] == kernels.get_num_threads()
    assert set(cfg["caches"]) == {"l1d", "l2", "l3"}
    assert all(isinstance(v, int) and v >= 0 for v in cfg["caches"].values())
    assert cfg["cache_source"] in ("cpuid", "sysctl", "sysfs", "default")
    assert set(cfg["blocking"]) == {"float32", "float64"}
    for dtype, b in cfg["blocking"].items():
        assert set(b) == {"mr", "nr", "kc", "nc", "mc", "kc_limit"}
        assert all(isinstance(v, int) and v > 0 for v in b.values())
        assert b["nc"] % b["nr"] == 0 and b["mc"] % b["mr"] == 0, dtype
        # K slices grow to 1.5·kc for f32 on the FMA kernel sets, on an L1 of 48 KiB or more
        # (blocking.cpp, kGrowMinL1).
        l1 = cfg["cache_geometry"]["l1d"]
        grows = (dtype == "float32" and cfg["isa"] in ("avx512", "avx2") and l1["size"] >= 48 * 1024
                 and l1["ways"] > 1 and l1["size"] // l1["ways"] >= l1["line"] > 0)
        assert b["kc_limit"] == (b["kc"] + b["kc"] // 2 if grows else b["kc"]), (dtype, cfg["isa"], b)
    assert cfg["blocking_source"] in ("derived", "fallback")


def test_caches_agree_with_sysfs_where_linux_has_it():
    index0 = Path("/sys/devices/system/cpu/cpu0/cache/index0")
    if not index0.exists():
        pytest.skip("no sysfs cache tree")
    sizes = {}
    for index in index0.parent.glob("index*"):
        level, kind = (index / "level").read_text().strip(), (index / "type").read_text().strip()
        text = (index / "size").read_text().strip()
        size = int(text[:-1]) * {"K": 1 << 10, "M": 1 << 20}[text[-1]] if text[-1] in "KM" else int(text)
        if kind != "Instruction":
            sizes[{"1": "l1d", "2": "l2", "3": "l3"}[level]] = size
    caches = kernels.config()["caches"]
    assert caches["l1d"] == sizes["l1d"]
    assert caches["l2"] == sizes.get("l2", 0)


def test_derived_blocks_respect_the_caches():
    cfg = kernels.config()
    if cfg["blocking_source"] != "derived" or not cfg["caches"]["l2"]:
        pytest.skip("caches unknown here")
    for dtype, b in cfg["blocking"].items():
        size = np.dtype(dtype).itemsize
        assert b["kc"] * b["nc"] * size <= cfg["caches"]["l2"] // 2, dtype  # B block in half of L2
        # the model's L1 value within the measured range: 256 (floats) or 192 (doubles) to 320
        assert (192 if size == 8 else 256) <= b["kc"] <= 320, dtype


def _child_config(env):
    code = "import json, matgrad; print(json.dumps(matgrad.kernels.config()))"
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env},
                         capture_output=True, text=True, check=True).stdout
    import json
    return json.loads(out)


def test_environment_override_applies_to_both_dtypes():
    cfg = _child_config({"MATGRAD_BLOCKING": "kc=40,nc=100,mc=30"})
    assert cfg["blocking_source"] == "override"
    for b in cfg["blocking"].values():
        assert (b["kc"], b["nc"], b["mc"]) == (40, 100, 30)
        assert b["kc_limit"] == 40  # a kc set is the slice depth: slices do not grow past it


def test_environment_override_of_one_value_keeps_the_others():
    derived = _child_config({"MATGRAD_BLOCKING": ""})
    cfg = _child_config({"MATGRAD_BLOCKING": "mc=24"})
    for dtype in ("float32", "float64"):
        assert cfg["blocking"][dtype]["mc"] == 24
        assert cfg["blocking"][dtype]["kc"] == derived["blocking"][dtype]["kc"]
        assert cfg["blocking"][dtype]["nc"] == derived["blocking"][dtype]["nc"]
        assert cfg["blocking"][dtype]["kc_limit"] == derived["blocking"][dtype]["kc_limit"]


def test_products_are_right_under_an_environment_override():
    code = ("import numpy as np, matgrad; r = np.random.default_rng(1); "
            "a = r.standard_normal((77, 301)); b = r.standard_normal((301, 95)); "
            "print(np.abs(matgrad.kernels.matmul(a, b) - a @ b).max())")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "MATGRAD_BLOCKING": "kc=7,nc=5,mc=3"},
                         capture_output=True, text=True, check=True).stdout
    assert float(out) < 1e-10


@pytest.mark.parametrize("value, fragment", [
    ("kc=0", "kc must be a positive integer, not 0"),
    ("nc=abc", "nc must be a positive integer, not 'abc'"),
    ("kc=1;nc=2", "kc must be a positive integer, not '1;nc=2'"),
    ("kc", "'kc' is not name=value"),
    ("kc=1,", "'' is not name=value"),
    ("kc=1,kc=2", "'kc' given twice"),
    ("mc=99999999999", "larger than 1048576"),
])
def test_bad_environment_override_fails_import_naming_the_variable(value, fragment):
    proc = subprocess.run([sys.executable, "-c", "import matgrad"],
                          env={**os.environ, "MATGRAD_BLOCKING": value}, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "MATGRAD_BLOCKING" in proc.stderr
    assert fragment in proc.stderr


def test_set_blocking_round_trip(blocking):
    derived = kernels.config()["blocking"]
    blocking(kc=16, mc=9)
    cfg = kernels.config()
    assert cfg["blocking_source"] == "override"
    for dtype in ("float32", "float64"):
        assert cfg["blocking"][dtype]["kc"] == 16 and cfg["blocking"][dtype]["mc"] == 9
        assert cfg["blocking"][dtype]["nc"] == derived[dtype]["nc"]
    blocking()
    assert kernels.config()["blocking"] == derived


def test_set_blocking_survives_a_change_of_instruction_set(blocking):
    previous = kernels.isa()
    blocking(kc=33, nc=65, mc=13)  # set first, then switch: the override must carry over
    try:
        for name in ("avx512", "avx2", "baseline"):
            if not kernels.isa_available(name):
                continue
            kernels.set_isa(name)
            for b in kernels.config()["blocking"].values():
                assert (b["kc"], b["nc"], b["mc"]) == (33, 65, 13), name
    finally:
        kernels.set_isa(previous)


@settings(max_examples=60, deadline=None)
@given(kc=st.integers(1, 300), nc=st.integers(1, 300), mc=st.integers(1, 300),
       m=st.integers(1, 200), n=st.integers(1, 150), k=st.integers(1, 400),
       trans_a=st.booleans(), trans_b=st.booleans(), double=st.booleans(),
       isa_name=st.sampled_from(["avx512", "avx2", "baseline"]))
def test_products_are_right_under_any_blocking(kc, nc, mc, m, n, k, trans_a, trans_b, double, isa_name):
    if not kernels.isa_available(isa_name):
        return
    previous = kernels.isa()
    try:
        kernels.set_isa(isa_name)
        kernels.set_blocking(kc=kc, nc=nc, mc=mc)
        dtype = np.float64 if double else np.float32
        rng = np.random.default_rng(m * 1000003 + n * 1009 + k)
        # Multiples of 1/8 with small sums: every product is exact in both dtypes.
        a = (rng.integers(-8, 9, (k, m) if trans_a else (m, k)) / 8).astype(dtype)
        b = (rng.integers(-8, 9, (n, k) if trans_b else (k, n)) / 8).astype(dtype)
        got = kernels.matmul(a, b, trans_a=trans_a, trans_b=trans_b)
        want = (a.T if trans_a else a).astype(np.float64) @ (b.T if trans_b else b).astype(np.float64)
        np.testing.assert_array_equal(got, want)
    finally:
        kernels.set_blocking()
        kernels.set_isa(previous)


def test_fma_peak_is_a_positive_rate(isa):
    for dtype in (np.float32, np.float64):
        rate = kernels.fma_peak(isa, dtype, threads=1, seconds=0.01)
        assert np.isfinite(rate) and rate > 0


def test_fma_peak_rejects_bad_arguments():
    with pytest.raises(ValueError, match="threads must be >= 1"):
        kernels.fma_peak("baseline", np.float32, threads=0)
    with pytest.raises(ValueError, match="seconds must be > 0"):
        kernels.fma_peak("baseline", np.float32, seconds=0)
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        kernels.fma_peak("baseline", np.int32)
