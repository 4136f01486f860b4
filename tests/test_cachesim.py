"""scripts/cachesim.py: its parsing of cases, cache shapes and cachegrind's summary, and the
per-call arithmetic. The simulation itself (minutes under valgrind) is run by hand, not here."""
import importlib.util
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


# The end of what cachegrind 3.19 prints (numbers from a 256³ f32 run).
SUMMARY = """==13913== I   refs:      1,234,567,890
==13913== D   refs:      221,963,749  (151,271,022 rd   + 70,692,727 wr)
==13913== D1  misses:      7,196,388  (  6,426,460 rd   +    769,928 wr)
==13913== LLd misses:      3,638,147  (  3,113,614 rd   +    524,533 wr)
==13913== LL misses:       4,526,374  (  4,001,841 rd   +    524,533 wr)
"""


def test_parse_counts_reads_totals(cachesim):
    assert cachesim.parse_counts(SUMMARY) == {
        "instructions": 1234567890, "l1_misses": 7196388, "l2_misses": 3638147}


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
])
def test_parse_case_rejects(cachesim, text, message):
    with pytest.raises(ValueError, match=message):
        cachesim.parse_case(text)


def test_parse_cache(cachesim):
    assert cachesim.parse_cache("32768,8", "--l1d") == (32768, 8)
    for bad in ("32768", "32768,0", "1000,8", "a,8"):
        with pytest.raises(ValueError, match="--l1d"):
            cachesim.parse_cache(bad, "--l1d")


def test_bad_arguments_exit_with_usage(cachesim, capsys):
    with pytest.raises(SystemExit) as stopped:
        cachesim.main(["f32 1 2 3", "--libs", "matgrad,mkl"])
    assert stopped.value.code == 2
    assert "'mkl' is neither matgrad nor numpy" in capsys.readouterr().err


def test_missing_valgrind_is_named(cachesim, capsys, monkeypatch):
    monkeypatch.setattr(cachesim.shutil, "which", lambda name: None)
    with pytest.raises(SystemExit) as stopped:
        cachesim.main(["f32 1 2 3"])
    assert stopped.value.code == 2
    assert "needs valgrind" in capsys.readouterr().err
