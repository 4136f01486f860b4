"""scripts/cachesim.py: its parsing of cases, cache shapes and cachegrind's summary, and the
per-call arithmetic. The simulation itself (minutes under valgrind) is run by hand, not here."""
import argparse
import importlib.util
import re
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "cachesim.py"
pytestmark = pytest.mark.skipif(not SCRIPT.exists(), reason="needs the checkout's scripts/")


@pytest.fixture(scope="module")
def cachesim():
    spec = importlib.util.spec_from_file_location("cachesim", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# What cachegrind 3.19 prints (a run of /bin/true), after a line of the program's own that looks
# like a counter: the I1, LLi and LL lines must not be taken for the D1 or LLd ones.
SUMMARY = """I   refs:      999
==23618== Cachegrind, a cache and branch-prediction profiler
==23618== Command: /bin/true
==23618== 
==23618== I   refs:      127,771
==23618== I1  misses:      1,073
==23618== LLi misses:      1,072
==23618== I1  miss rate:    0.84%
==23618== LLi miss rate:    0.84%
==23618== 
==23618== D   refs:       39,663  (29,397 rd   + 10,266 wr)
==23618== D1  misses:      1,493  ( 1,156 rd   +    337 wr)
==23618== LLd misses:      1,330  ( 1,018 rd   +    312 wr)
==23618== D1  miss rate:     3.8% (   3.9%     +    3.3%  )
==23618== LLd miss rate:     3.4% (   3.5%     +    3.0%  )
==23618== 
==23618== LL refs:         2,566  ( 2,229 rd   +    337 wr)
==23618== LL misses:       2,402  ( 2,090 rd   +    312 wr)
==23618== LL miss rate:      1.4% (   1.3%     +    3.0%  )
"""


def test_parse_counts_reads_totals(cachesim):
    assert cachesim.parse_counts(SUMMARY) == {
        "instructions": 127771, "l1_misses": 1493, "l2_misses": 1330}


def test_parse_counts_names_the_missing_line(cachesim):
    with pytest.raises(RuntimeError, match="no l2_misses line"):
        cachesim.parse_counts(SUMMARY.replace("LLd misses", "LLd msses"))


def test_per_multiply_add_is_one_call_per_fma(cachesim):
    case = cachesim.parse_case("f64 2 4 8 AtB")
    once = {"instructions": 100, "l1_misses": 10, "l2_misses": 1}
    more = {"instructions": 100 + 3 * 640, "l1_misses": 10 + 3 * 32, "l2_misses": 1 + 3 * 4}
    got = cachesim.per_multiply_add(once, more, case, 3)
    assert got == {"instructions": 10.0, "l2_to_l1_bytes": 32.0, "to_l2_bytes": 4.0}


def test_extra_calls_reach_about_1e8_multiply_adds(cachesim):
    assert cachesim.extra_calls(cachesim.parse_case("f32 512 512 512")) == 1
    assert cachesim.extra_calls(cachesim.parse_case("f32 96 80 112")) == 116
    assert cachesim.extra_calls(cachesim.parse_case("f32 1 1 1")) == 1000


@pytest.mark.parametrize("text, want", [
    ("f32 64 2048 2048", ("f32", 64, 2048, 2048, "AB")),
    ("f64 3 5 7 ABt", ("f64", 3, 5, 7, "ABt")),
    ("f32 1 1 1 AtBt", ("f32", 1, 1, 1, "AtBt")),
])
def test_parse_case(cachesim, text, want):
    assert tuple(cachesim.parse_case(text)) == want


@pytest.mark.parametrize("text, message", [
    ("f16 1 2 3", "expected 'f32|f64"),
    ("f32 1 2", "expected 'f32|f64"),
    ("f32 1 2 x", "must be integers"),
    ("f32 0 2 3", "must be positive"),
    ("f32 1 2 3 BA", "layout 'BA'"),
    ("f32 1 2 3 AB x", "expected 'f32|f64"),
])
def test_parse_case_rejects(cachesim, text, message):
    with pytest.raises(ValueError, match=message):
        cachesim.parse_case(text)


def test_parse_cache(cachesim):
    assert cachesim.parse_cache("32768,8", "--l1d") == (32768, 8)
    assert cachesim.parse_cache("49152,12", "--l1d") == (49152, 12)  # 64 sets
    for bad in ("32768", "1000,8", "a,8", "0,8"):
        with pytest.raises(ValueError, match="--l1d"):
            cachesim.parse_cache(bad, "--l1d")
    with pytest.raises(ValueError, match="WAYS must be positive"):
        cachesim.parse_cache("32768,0", "--l1d")
    with pytest.raises(ValueError, match="power of two"):
        cachesim.parse_cache("49152,8", "--l2")  # 96 sets: cachegrind refuses it


@pytest.mark.parametrize("options, message, without_pairs", [
    (["--libs", "matgrad,mkl"], "'mkl' is neither matgrad nor numpy", False),
    (["--isa", "avx512"], "valgrind runs no AVX-512 code", False),
    (["--isa", "AVX2"], "invalid choice: 'AVX2'", False),  # MATGRAD_ISA's names are lower case
    (["--isa", "neon"], "--isa neon: no OpenBLAS kernel is paired with it; give --coretype", False),
    # benchmarks/compare_turns.py, where the pairs are read, missing:
    (["--isa", "baseline"], "compare_turns.py, which is missing; give --coretype", True),
])
def test_bad_arguments_exit_with_usage(cachesim, capsys, monkeypatch, options, message, without_pairs):
    if without_pairs:
        monkeypatch.setitem(sys.modules, "compare_turns", None)
    with pytest.raises(SystemExit) as stopped:
        cachesim.main(["f32 1 2 3"] + options)
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err


def test_missing_valgrind_is_named(cachesim, capsys, monkeypatch):
    monkeypatch.setattr(cachesim.shutil, "which", lambda name: None)
    with pytest.raises(SystemExit) as stopped:
        cachesim.main(["f32 1 2 3"])
    assert stopped.value.code == 2
    assert "needs valgrind" in capsys.readouterr().err


def fake_cachegrind(monkeypatch, cachesim, returncode=0):
    """subprocess.run standing in for valgrind: the counts grow with the calls the worker is asked
    for (1000 instructions, 20 L1 and 3 L2 misses a call, over a start-up of 7, 5 and 2 thousand)."""
    seen = []

    def run(command, env, capture_output, text):
        seen.append((command, env))
        calls = int(command[command.index("--worker") + 2])
        stderr = (f"==1== I   refs:      {7000 + 1000 * calls:,}\n"
                  f"==1== D1  misses:      {5000 + 20 * calls:,}  (0 rd + 0 wr)\n"
                  f"==1== LLd misses:      {2000 + 3 * calls:,}  (0 rd + 0 wr)\n")
        return cachesim.subprocess.CompletedProcess(command, returncode, "", stderr)

    monkeypatch.setattr(cachesim.subprocess, "run", run)
    monkeypatch.setattr(cachesim.shutil, "which", lambda name: "/usr/bin/" + name)
    return seen


def test_measure_takes_one_call_from_two_runs(cachesim, monkeypatch):
    seen = fake_cachegrind(monkeypatch, cachesim)
    args = argparse.Namespace(l1d=(32768, 8), l2=(524288, 8), isa="avx2", coretype="Haswell",
                              blocking="kc=256,nc=96,mc=1020")
    case = cachesim.parse_case("f64 10 10 10")  # 1000 multiply-adds: R = 1000
    result, _ = cachesim.measure(("matgrad", case), args)
    assert result == {"instructions": 1.0, "l2_to_l1_bytes": 20 * 64 / 1000, "to_l2_bytes": 3 * 64 / 1000}
    (first, env), (second, _) = seen
    assert first[first.index("--worker") + 2] == "1" and second[second.index("--worker") + 2] == "1001"
    assert "--D1=32768,8,64" in first and "--LL=524288,8,64" in first
    assert env["OMP_NUM_THREADS"] == "1" and env["PYTHONHASHSEED"] == "0"
    assert env["MATGRAD_BLOCKING"] == "kc=256,nc=96,mc=1020" and env["OPENBLAS_CORETYPE"] == "Haswell"


def test_a_failed_simulation_is_reported(cachesim, monkeypatch, capsys):
    fake_cachegrind(monkeypatch, cachesim, returncode=1)
    assert cachesim.main(["f32 4 4 4", "--libs", "numpy"]) == 1
    assert "numpy f32 4×4×4 AB failed under cachegrind" in capsys.readouterr().err


def test_main_prints_a_row_per_library(cachesim, monkeypatch, capsys):
    fake_cachegrind(monkeypatch, cachesim)
    assert cachesim.main(["f32 10 10 10 AtB", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "L1d 32 KiB 8-way, L2 512 KiB 8-way" in out
    assert re.search(r"f32 10×10×10 AtB +matgrad +instructions +1\.000", out)
    assert re.search(r"f32 10×10×10 AtB +numpy +instructions +1\.000", out)


@pytest.mark.parametrize("options, coretype", [
    ([], "Haswell"),
    (["--isa", "baseline"], "Nehalem"),
    (["--isa", "baseline", "--coretype", "Zen"], "Zen"),
    (["--isa", "neon", "--coretype", "ARMV8"], "ARMV8"),
])
def test_numpy_runs_on_the_kernel_paired_with_the_isa(cachesim, monkeypatch, capsys, options, coretype):
    seen = fake_cachegrind(monkeypatch, cachesim)
    assert cachesim.main(["f32 4 4 4", "--libs", "numpy", "--jobs", "1"] + options) == 0
    assert [env["OPENBLAS_CORETYPE"] for _, env in seen] == [coretype, coretype]
    assert f"numpy on OPENBLAS_CORETYPE={coretype}" in capsys.readouterr().out


def test_matgrad_alone_needs_no_numpy_kernel(cachesim, monkeypatch, capsys):
    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)  # the script passes the caller's on
    seen = fake_cachegrind(monkeypatch, cachesim)
    assert cachesim.main(["f32 4 4 4", "--libs", "matgrad", "--isa", "neon", "--jobs", "1"]) == 0
    assert [env["MATGRAD_ISA"] for _, env in seen] == ["neon", "neon"]
    assert all("OPENBLAS_CORETYPE" not in env for _, env in seen)
    out = capsys.readouterr().out
    assert "matgrad on MATGRAD_ISA=neon" in out and "OPENBLAS_CORETYPE" not in out


@pytest.mark.parametrize("lib", ["matgrad", "numpy"])
@pytest.mark.parametrize("layout", ["AB", "AtBt"])
def test_worker_runs_and_checks_the_product(cachesim, capsys, lib, layout):
    from matgrad import kernels
    threads = kernels.get_num_threads()
    try:
        cachesim.worker(lib, cachesim.parse_case(f"f64 7 9 11 {layout}"), 2)
    finally:
        kernels.set_num_threads(threads)  # the worker sets one thread, as its own process would
    if lib == "matgrad":
        assert re.search(r"matgrad saw: isa \w+, caches .*, blocking .*, path \w+", capsys.readouterr().err)
