"""scripts/vs-blas.sh with benchmarks/vs_blas.cpp: one GEMM timed under matgrad and under numpy's
own OpenBLAS in one process (docs/tuning.md, "Measuring a change in one process").

Slow (it builds the C++ library, about 40 s on 2 cores): `.ci/run` runs it with --runslow. Needs
cmake and a C++ compiler with OpenMP (taken to be there when this build of matgrad has it). A
stand-in CBLAS compiled here checks the 32-bit-integer entry point and that a wrong product is
caught."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from matgrad import kernels

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "vs-blas.sh"
CXX = os.environ.get("CXX", "g++")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform != "linux", reason="the harness opens the BLAS with dlopen; Linux only here"),
    pytest.mark.skipif(shutil.which("cmake") is None or shutil.which(CXX) is None,
                       reason="needs cmake and a C++ compiler"),
    pytest.mark.skipif(not kernels.has_openmp(), reason="needs a compiler with OpenMP"),
]

# "37x29x50 A·B f32 (matgrad avx2; BLAS Haswell, scipy_cblas_sgemm64_), 3 pairs: matgrad 0.01 ms
#  (fastest 0.01) | BLAS 0.01 ms (fastest 0.01) | BLAS/matgrad median 1.002"
REPORT = re.compile(
    r"^(\d+)x(\d+)x(\d+) (Aᵀ?)·(Bᵀ?) (f32|f64) \(matgrad (\w+); BLAS (.+), (\w+)\), (\d+) pairs: "
    r"matgrad (\S+) ms \(fastest (\S+)\) \| BLAS (\S+) ms \(fastest (\S+)\) \| BLAS/matgrad median (\S+)$", re.M)
RESULTS = re.compile(r"^results: (agree|DISAGREE) \(largest difference (\S+), largest \|C\| (\S+)\)$", re.M)

# A CBLAS with 32-bit integers, row-major only, by definition; FAKE_BLAS_WRONG makes C[0] wrong.
FAKE_BLAS = r"""
#include <cstdlib>
template <class T>
static void gemm(int ta, int tb, int m, int n, int k, T alpha, const T* a, int lda, const T* b, int ldb,
                 T beta, T* c, int ldc) {
    for (int i = 0; i < m; ++i)
        for (int j = 0; j < n; ++j) {
            T s = 0;
            for (int p = 0; p < k; ++p)
                s += (ta == 112 ? a[p * lda + i] : a[i * lda + p]) * (tb == 112 ? b[j * ldb + p] : b[p * ldb + j]);
            c[i * ldc + j] = alpha * s + (beta == T(0) ? T(0) : beta * c[i * ldc + j]);
        }
    if (std::getenv("FAKE_BLAS_WRONG")) c[0] += T(1);
}
extern "C" void cblas_sgemm(int, int ta, int tb, int m, int n, int k, float alpha, const float* a, int lda,
                            const float* b, int ldb, float beta, float* c, int ldc) {
    gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
extern "C" void cblas_dgemm(int, int ta, int tb, int m, int n, int k, double alpha, const double* a, int lda,
                            const double* b, int ldb, double beta, double* c, int ldc) {
    gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
"""


def _run(args, **env):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=900,
                          env={**os.environ, **env})


def _report(out: str) -> re.Match:
    match = REPORT.search(out)
    assert match, out
    return match


def _results(out: str) -> re.Match:
    match = RESULTS.search(out)
    assert match, out
    return match


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The harness, built once by the script against numpy's OpenBLAS; returns (harness, that run)."""
    work = tmp_path_factory.mktemp("vs_blas")
    first = _run([SCRIPT, 37, 29, 50, "--pairs", 3, "--settle-ms", 0], VS_BLAS_BUILD=str(work),
                 PYTHON=sys.executable)
    assert first.returncode == 0, first.stderr
    return work / "vs_blas", first


@pytest.fixture(scope="module")
def fake_blas(tmp_path_factory):
    work = tmp_path_factory.mktemp("fake_blas")
    source = work / "fake_blas.cpp"
    source.write_text(FAKE_BLAS)
    library = work / "libfakeblas.so"
    build = _run([CXX, "-O1", "-shared", "-fPIC", source, "-o", library])
    assert build.returncode == 0, build.stderr
    return library


def test_against_numpys_openblas(built):
    _, first = built
    assert "== building this tree; BLAS: " in first.stderr
    m = _report(first.stdout)
    assert m.group(1, 2, 3) == ("37", "29", "50")
    assert (m.group(4), m.group(5), m.group(6), m.group(10)) == ("A", "B", "f32", "3")
    assert m.group(7) == kernels.isa()  # no --isa: matgrad's best set
    assert m.group(9) in ("scipy_cblas_sgemm64_", "cblas_sgemm64_", "cblas_sgemm")
    times = [float(m.group(i)) for i in (11, 12, 13, 14)]
    assert all(t > 0 for t in times)
    assert times[1] <= times[0] and times[3] <= times[2]  # the fastest call is no slower than the median
    assert 0 < float(m.group(15)) < 100
    r = _results(first.stdout)
    assert r.group(1) == "agree" and float(r.group(2)) <= 1e-3 * float(r.group(3))


def test_the_isa_option_sets_both_kernels(built, tmp_path):
    if not kernels.isa_available("avx2"):
        pytest.skip("no AVX2 on this CPU")
    run = _run([SCRIPT, "--isa", "avx2", 40, 33, 70, "--f64", "--trans-a", "--pairs", 2, "--settle-ms", 0,
                "--calls", 2],
               VS_BLAS_BUILD=str(built[0].parent), PYTHON=sys.executable)
    assert run.returncode == 0, run.stderr
    m = _report(run.stdout)
    assert (m.group(4), m.group(5), m.group(6)) == ("Aᵀ", "B", "f64")
    assert m.group(7) == "avx2"
    if m.group(8) != "unknown":  # OpenBLAS names its kernel
        assert m.group(8).lower() == "haswell"
    assert _results(run.stdout).group(1) == "agree"


def test_a_32_bit_cblas_and_every_transpose(built, fake_blas):
    harness, _ = built
    for flags in ([], ["--trans-a"], ["--trans-b"], ["--trans-a", "--trans-b"]):
        for dtype in ([], ["--f64"]):
            run = _run([harness, "--blas", fake_blas, 23, 19, 31, *flags, *dtype, "--pairs", 1, "--settle-ms", 0])
            assert run.returncode == 0, run.stdout + run.stderr
            m = _report(run.stdout)
            assert (m.group(8), m.group(9)) == ("unknown", "cblas_dgemm" if dtype else "cblas_sgemm")
            assert m.group(4) == ("Aᵀ" if "--trans-a" in flags else "A")
            assert m.group(5) == ("Bᵀ" if "--trans-b" in flags else "B")
            r = _results(run.stdout)
            assert r.group(1) == "agree" and float(r.group(3)) > 0


def test_a_wrong_product_fails(built, fake_blas):
    harness, _ = built
    run = _run([harness, "--blas", fake_blas, 16, 16, 16, "--pairs", 1, "--settle-ms", 0], FAKE_BLAS_WRONG="1")
    assert run.returncode == 1
    r = _results(run.stdout)
    assert r.group(1) == "DISAGREE" and float(r.group(2)) >= 0.5


@pytest.mark.parametrize("args, message", [
    (["--blas", "/no/such/libblas.so", 3, 3, 3], "cannot open the BLAS library"),
    (["--blas", "libm.so.6", 3, 3, 3], "no CBLAS GEMM (scipy_cblas_sgemm64_, cblas_sgemm64_ or cblas_sgemm)"),
    ([3, 3, 3], "--blas LIBRARY is required"),
    (["--blas"], "--blas needs a value"),
    (["--blas", "x", 3, 0, 3], "N must be an integer from 1 to 1048576, not '0'"),
    (["--blas", "x", 3, 3, 3, "--pairs", 0], "--pairs must be an integer from 1 to 100000, not '0'"),
    (["--blas", "x", 3, 3, 3, "--calls", 0], "--calls must be an integer from 1 to 100000, not '0'"),
    (["--blas", "x", 3, 3, 3, "--calls"], "--calls needs a value"),
    (["--blas", "x", 3, 3, 3, "--bogus"], "unknown option '--bogus'"),
])
def test_bad_arguments_are_named(built, args, message):
    harness, _ = built
    run = _run([harness, *args])
    assert run.returncode == 2
    assert message in run.stderr
    if "GEMM" not in message:  # found after the command line was read
        assert "usage: vs_blas --blas LIBRARY M N K" in run.stderr


@pytest.mark.parametrize("args, message", [
    (["--isa", "sse9", 3, 3, 3], "--isa must be avx2, avx512 or baseline, not 'sse9'"),
    (["--isa"], "--isa needs a value"),
    ([3, 3], "expected the three sizes M N K"),
])
def test_the_script_names_bad_arguments(args, message):
    run = _run([SCRIPT, *args])
    assert run.returncode == 2
    assert message in run.stderr and "usage: scripts/vs-blas.sh" in run.stderr


def test_the_script_says_where_the_blas_is_missing(built, tmp_path):
    run = _run([SCRIPT, 3, 3, 3], VS_BLAS_LIBRARY=str(tmp_path / "missing.so"), VS_BLAS_BUILD=str(built[0].parent))
    assert run.returncode == 2
    assert "cannot open the BLAS library" in run.stderr
