"""scripts/ab-gemm.sh with benchmarks/ab_gemm.cpp: one GEMM timed under two builds of the C++
library in one process (docs/tuning.md, "Measuring a change in one process").

Slow (it builds the library twice, about a minute on 2 cores): `.ci/run` runs it with
--runslow. Needs git and a checkout, cmake, and a C++ compiler with OpenMP (taken to be there when
this build of matgrad has it)."""
import math
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from matgrad import kernels

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "ab-gemm.sh"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists() or not SCRIPT.exists(),
                       reason="needs git and the checkout with scripts/ab-gemm.sh"),
    pytest.mark.skipif(shutil.which("cmake") is None or shutil.which(os.environ.get("CXX", "g++")) is None,
                       reason="needs cmake and a C++ compiler"),
    pytest.mark.skipif(not kernels.has_openmp(), reason="needs a compiler with OpenMP"),
]

# "37x29x50 A·B f32 (new kernels avx2, old avx2), 3 pairs: new 0.01 ms (fastest 0.01) | old ... |
#  old/new median 1.002"
REPORT = re.compile(
    r"^(\d+)x(\d+)x(\d+) (Aᵀ?)·(Bᵀ?) (f32|f64) \(new kernels (\w+), old (\w+)\), (\d+) pairs: "
    r"new (\S+) ms \(fastest (\S+)\) \| old (\S+) ms \(fastest (\S+)\) \| old/new median (\S+)$", re.M)


def _run(args, **env):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=900,
                          env={**os.environ, **env})


@pytest.fixture(scope="module")
def ab(tmp_path_factory):
    """HEAD against the work tree, built once; returns (the harness, that first run)."""
    work = tmp_path_factory.mktemp("ab_gemm")
    first = _run([SCRIPT, "HEAD", 37, 29, 50, "--pairs", 3], AB_GEMM_BUILD=str(work))
    assert first.returncode == 0, first.stderr
    return work / "ab_gemm", first


def _report(out: str) -> re.Match:
    match = REPORT.search(out)
    assert match, out
    return match


def test_head_against_the_work_tree(ab):
    _, first = ab
    head = _run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]).stdout.strip()
    assert f"== building {head} as matgrad_old, and this tree" in first.stderr  # the commit asked for
    m = _report(first.stdout)
    assert m.group(1, 2, 3) == ("37", "29", "50")
    assert (m.group(4), m.group(5), m.group(6), m.group(9)) == ("A", "B", "f32", "3")
    assert m.group(7) == m.group(8) == kernels.isa()  # no MATGRAD_ISA: the best set, both builds
    times = [float(m.group(i)) for i in (10, 11, 12, 13)]
    assert all(t > 0 and math.isfinite(t) for t in times)
    assert times[1] <= times[0] and times[3] <= times[2]  # the fastest call is no slower than the median
    assert 0 < float(m.group(14)) < 100
    # what the library is built from: its sources and the flags in CMakeLists.txt
    unchanged = _run(["git", "-C", ROOT, "diff", "--quiet", "HEAD", "--", "cpp", "CMakeLists.txt"]).returncode == 0
    if unchanged:  # the same C++: the same operations, the same bits
        assert "results: identical" in first.stdout


def test_transposes_and_f64(ab):
    harness, _ = ab
    run = _run([harness, 33, 17, 40, "--trans-a", "--trans-b", "--f64", "--pairs", 2, "--settle-ms", 0])
    assert run.returncode == 0, run.stderr
    m = _report(run.stdout)
    assert (m.group(4), m.group(5), m.group(6), m.group(9)) == ("Aᵀ", "Bᵀ", "f64", "2")


def test_two_kernel_sets_differ_and_require_identical_fails(ab):
    harness, _ = ab
    # K past every kc: the SSE2 baseline's separate multiply and add round where an FMA does not
    # (on aarch64 the baseline's vector extensions may be contracted to FMAs: x86 only).
    fma_sets = [s for s in ("avx512", "avx2") if kernels.isa_available(s)]
    if not fma_sets:
        pytest.skip("no x86 FMA kernel set on this CPU")
    args = [harness, 64, 48, 700, "--old-isa", "baseline", "--new-isa", fma_sets[0], "--pairs", 2]
    run = _run(args)
    assert run.returncode == 0, run.stderr
    m = _report(run.stdout)
    assert (m.group(7), m.group(8)) == (fma_sets[0], "baseline")
    found = re.search(r"^results: differ \(largest difference (\S+)\)$", run.stdout, re.M)
    assert found and 0 < float(found.group(1)) < 1e-2, run.stdout
    strict = _run(args + ["--require-identical"])
    assert strict.returncode == 1 and "results: differ" in strict.stdout


def test_two_blockings_of_one_build(ab):
    harness, _ = ab
    args = [harness, 61, 75, 300, "--f64", "--old-blocking", "16,24,36", "--new-blocking", "0,0,0", "--pairs", 2]
    run = _run(args)
    assert run.returncode == 0, run.stderr
    _report(run.stdout)
    blocks = re.search(r"^blocking: new kc (\d+) nc (\d+) mc (\d+), old kc (\d+) nc (\d+) mc (\d+)$",
                       run.stdout, re.M)
    assert blocks, run.stdout
    if "MATGRAD_BLOCKING" not in os.environ:  # 0,0,0 returns to the derived blocks, as config() has them
        derived = kernels.config()["blocking"]["float64"]
        assert tuple(map(int, blocks.group(1, 2, 3))) == (derived["kc"], derived["nc"], derived["mc"])
    assert tuple(map(int, blocks.group(4, 5, 6))) == (16, 24, 36)
    # K 300 in slices of 16 against the derived: other sums, other roundings, the same product
    found = re.search(r"^results: (identical|differ \(largest difference (\S+)\))$", run.stdout, re.M)
    assert found and (found.group(2) is None or float(found.group(2)) < 1e-9), run.stdout


@pytest.mark.parametrize("args, message", [
    ([3, 0, 3], "N must be an integer from 1 to 1048576, not '0'"),
    ([3, "99999999999999999999", 3], "N must be an integer from 1 to 1048576"),
    ([100000, 100000, 1], "each operand may hold at most 2^30 elements"),
    ([3, 3], "expected the three sizes M N K"),
    ([3, 3, 3, "--pairs"], "--pairs needs a value"),
    ([3, 3, 3, "--pairs", 0], "--pairs must be an integer from 1 to 100000, not '0'"),
    ([3, 3, 3, "--settle-ms", "-1"], "--settle-ms must be an integer from 0 to 100000, not '-1'"),
    ([3, 3, 3, "--bogus"], "unknown option '--bogus'"),
    ([3, 3, 3, "--new-isa", "sse9"], "unknown instruction set 'sse9'"),
    ([3, 3, 3, "--old-blocking", "256,448"], "--old-blocking takes KC,NC,MC, not '256,448'"),
    ([3, 3, 3, "--new-blocking", "1,2,3,4"], "--new-blocking takes KC,NC,MC, not '1,2,3,4'"),
    ([3, 3, 3, "--new-blocking", "256,x,0"], "--new-blocking NC must be an integer from 0 to 1048576, not 'x'"),
    ([3, 3, 3, "--old-blocking"], "--old-blocking needs a value"),
])
def test_bad_arguments_are_named(ab, args, message):
    harness, _ = ab
    run = _run([harness, *args])
    assert run.returncode == 2
    assert message in run.stderr and "usage: ab_gemm M N K" in run.stderr


def test_the_script_names_a_bad_commit():
    run = _run([SCRIPT, "no-such-commit", 3, 3, 3])
    assert run.returncode == 2
    assert "'no-such-commit' is not a commit" in run.stderr
