"""scripts/vs-blas.sh with benchmarks/vs_blas.cpp: one GEMM timed under matgrad and under numpy's
own OpenBLAS, or PyTorch's MKL, in one process (docs/tuning.md, "Measuring a change in one process").

Slow (it builds the C++ library, about 40 s on 2 cores): `.ci/run` runs it with --runslow. Needs
cmake and a C++ compiler with OpenMP (taken to be there when this build of matgrad has it). Stand-in
libraries compiled here check the unsuffixed CBLAS entry points (32- and 64-bit integers), the
Fortran one, and that a wrong product is caught."""
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

# "37x29x50 A·B f32 (matgrad avx2; BLAS Haswell, scipy_cblas_sgemm64_ with 64-bit integers), 3 pairs:
#  matgrad 0.01 ms (fastest 0.01) | BLAS 0.01 ms (fastest 0.01) | BLAS/matgrad median 1.002"
REPORT = re.compile(
    r"^(\d+)x(\d+)x(\d+) (Aᵀ?)·(Bᵀ?) (f32|f64) \(matgrad (\w+); BLAS (.+), (\w+) with (32|64)-bit integers\), "
    r"(\d+) pairs: "
    r"matgrad (\S+) ms \(fastest (\S+)\) \| BLAS (\S+) ms \(fastest (\S+)\) \| BLAS/matgrad median (\S+)$", re.M)
RESULTS = re.compile(r"^results: (agree|DISAGREE) \(largest difference (\S+), largest \|C\| (\S+)\)$", re.M)

# A CBLAS by definition, row-major only, its integers FAKE_INT wide: 32 bits, or 64 with no
# suffix and an OpenBLAS-style configuration string that says so. It aborts on an order or a
# transpose it does not know, or a size out of range (an integer passed too narrow). FAKE_BLAS_WRONG makes C[0] wrong, FAKE_BLAS_NAN a NaN.
FAKE_BLAS = r"""
#include <cmath>
#include <cstdlib>
#include <initializer_list>
using Int = FAKE_INT;
template <class T>
static void gemm(int order, int ta, int tb, Int m, Int n, Int k, T alpha, const T* a, Int lda, const T* b,
                 Int ldb, T beta, T* c, Int ldc) {
    if (order != 101 || (ta != 111 && ta != 112) || (tb != 111 && tb != 112)) std::abort();
    for (Int v : {m, n, k, lda, ldb, ldc})  // an integer passed narrower than Int: its upper bits
        if (v < 0 || v > (Int(1) << 20)) std::abort();
    for (Int i = 0; i < m; ++i)
        for (Int j = 0; j < n; ++j) {
            T s = 0;
            for (Int p = 0; p < k; ++p)
                s += (ta == 112 ? a[p * lda + i] : a[i * lda + p]) * (tb == 112 ? b[j * ldb + p] : b[p * ldb + j]);
            c[i * ldc + j] = alpha * s + (beta == T(0) ? T(0) : beta * c[i * ldc + j]);
        }
    if (std::getenv("FAKE_BLAS_WRONG")) c[0] += T(1);
    if (std::getenv("FAKE_BLAS_NAN")) c[m * ldc - 1] = std::nan("");
}
extern "C" void cblas_sgemm(int order, int ta, int tb, Int m, Int n, Int k, float alpha, const float* a, Int lda,
                            const float* b, Int ldb, float beta, float* c, Int ldc) {
    gemm(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
extern "C" void cblas_dgemm(int order, int ta, int tb, Int m, Int n, Int k, double alpha, const double* a,
                            Int lda, const double* b, Int ldb, double beta, double* c, Int ldc) {
    gemm(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
#ifdef FAKE_CONFIG
extern "C" const char* openblas_get_config() { return "OpenBLAS 0.3.99 USE64BITINT DYNAMIC_ARCH"; }
#endif
"""


# The Fortran interface only (column-major, arguments by address, the two string lengths last),
# as MKL inside libtorch_cpu exports it. It aborts on a transpose letter it does not know, a
# string length other than 1, or a leading dimension too small for column-major storage.
FAKE_FORTRAN = r"""
#include <cstddef>
#include <cstdlib>
template <class T>
static void gemm(const char* ta, const char* tb, const int* m, const int* n, const int* k, const T* alpha,
                 const T* a, const int* lda, const T* b, const int* ldb, const T* beta, T* c, const int* ldc,
                 std::size_t la, std::size_t lb) {
    const bool at = *ta == 'T', bt = *tb == 'T';
    if ((!at && *ta != 'N') || (!bt && *tb != 'N') || la != 1 || lb != 1) std::abort();
    if (*lda < (at ? *k : *m) || *ldb < (bt ? *n : *k) || *ldc < *m) std::abort();
    for (int j = 0; j < *n; ++j)  // column-major: op(X)(i, p) = x[i + p*ld], transposed x[p + i*ld]
        for (int i = 0; i < *m; ++i) {
            T s = 0;
            for (int p = 0; p < *k; ++p)
                s += (at ? a[p + i * *lda] : a[i + p * *lda]) * (bt ? b[j + p * *ldb] : b[p + j * *ldb]);
            c[i + j * *ldc] = *alpha * s + (*beta == T(0) ? T(0) : *beta * c[i + j * *ldc]);
        }
}
extern "C" void sgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k,
                       const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
                       const float* beta, float* c, const int* ldc, std::size_t la, std::size_t lb) {
    gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, la, lb);
}
extern "C" void dgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k,
                       const double* alpha, const double* a, const int* lda, const double* b, const int* ldb,
                       const double* beta, double* c, const int* ldc, std::size_t la, std::size_t lb) {
    gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, la, lb);
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
    """Stand-in libraries: 32-bit integers, 64-bit without a suffix, and one with no GEMM."""
    work = tmp_path_factory.mktemp("fake_blas")
    source = work / "fake_blas.cpp"
    source.write_text(FAKE_BLAS)
    libraries = {}
    for name, flags in (("int32", ["-DFAKE_INT=int"]), ("int64", ["-DFAKE_INT=long long", "-DFAKE_CONFIG"])):
        libraries[name] = work / f"libfakeblas_{name}.so"
        build = _run([CXX, "-O1", "-shared", "-fPIC", *flags, source, "-o", libraries[name]])
        assert build.returncode == 0, build.stderr
    (work / "fake_fortran.cpp").write_text(FAKE_FORTRAN)
    libraries["fortran"] = work / "libfakefortran.so"
    build = _run([CXX, "-O1", "-shared", "-fPIC", work / "fake_fortran.cpp", "-o", libraries["fortran"]])
    assert build.returncode == 0, build.stderr
    (work / "no_gemm.cpp").write_text('extern "C" int not_a_blas() { return 1; }\n')
    libraries["none"] = work / "libnogemm.so"
    build = _run([CXX, "-shared", "-fPIC", work / "no_gemm.cpp", "-o", libraries["none"]])
    assert build.returncode == 0, build.stderr
    return libraries


def test_against_numpys_openblas(built):
    _, first = built
    assert "== building this tree; BLAS: " in first.stderr
    m = _report(first.stdout)
    assert m.group(1, 2, 3) == ("37", "29", "50")
    assert (m.group(4), m.group(5), m.group(6), m.group(11)) == ("A", "B", "f32", "3")
    assert m.group(7) == kernels.isa()  # no --isa: matgrad's best set
    assert (m.group(9), m.group(10)) in (("scipy_cblas_sgemm64_", "64"), ("cblas_sgemm64_", "64"),
                                         ("scipy_cblas_sgemm", "32"), ("cblas_sgemm", "32"), ("cblas_sgemm", "64"))
    times = [float(m.group(i)) for i in (12, 13, 14, 15)]
    assert all(t > 0 for t in times)
    assert times[1] <= times[0] and times[3] <= times[2]  # the fastest call is no slower than the median
    assert 0 < float(m.group(16)) < 100
    r = _results(first.stdout)
    assert r.group(1) == "agree" and float(r.group(3)) > 0 and float(r.group(2)) <= 1e-3 * float(r.group(3))


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


@pytest.mark.parametrize("library", ["int32", "int64", "fortran"])
def test_an_unsuffixed_cblas_or_fortran_gemm_and_every_transpose(built, fake_blas, library):
    harness, _ = built
    for flags in ([], ["--trans-a"], ["--trans-b"], ["--trans-a", "--trans-b"]):
        for dtype in ([], ["--f64"]):
            run = _run([harness, "--blas", fake_blas[library], 23, 19, 31, *flags, *dtype, "--pairs", 1,
                        "--settle-ms", 0, "--calls", 1])
            assert run.returncode == 0, run.stdout + run.stderr
            m = _report(run.stdout)
            letter = "d" if dtype else "s"
            if library == "fortran":
                assert (m.group(9), m.group(10)) == (letter + "gemm_", "32")
            else:
                assert m.group(9) == "cblas_" + letter + "gemm"
                assert m.group(10) == library[3:]  # the configuration string told the width
            assert m.group(8) == "unknown"
            assert m.group(4) == ("Aᵀ" if "--trans-a" in flags else "A")
            assert m.group(5) == ("Bᵀ" if "--trans-b" in flags else "B")
            r = _results(run.stdout)
            assert r.group(1) == "agree" and float(r.group(3)) > 0


def test_against_pytorchs_mkl(built):
    torch = pytest.importorskip("torch")
    if not torch.backends.mkl.is_available():  # aarch64 wheels and some builds use OpenBLAS
        pytest.skip("this PyTorch has no MKL")
    isa = ["--isa", "avx2"] if kernels.isa_available("avx2") else []
    run = _run([SCRIPT, *isa, "--torch", 29, 37, 45, "--trans-b", "--pairs", 2, "--settle-ms", 0, "--calls", 2],
               VS_BLAS_BUILD=str(built[0].parent), PYTHON=sys.executable)
    assert run.returncode == 0, run.stderr
    assert re.search(r"BLAS: \S*libtorch_cpu", run.stderr), run.stderr
    m = _report(run.stdout)
    assert (m.group(4), m.group(5), m.group(9), m.group(10)) == ("A", "Bᵀ", "sgemm_", "32")
    assert re.fullmatch(r"MKL \d[\d.]*" + (" up to AVX2" if isa else ""), m.group(8)), m.group(8)
    if isa:
        assert m.group(7) == "avx2"
    assert _results(run.stdout).group(1) == "agree"


def test_a_wrong_product_fails(built, fake_blas):
    harness, _ = built
    args = [harness, "--blas", fake_blas["int32"], 16, 16, 16, "--pairs", 1, "--settle-ms", 0, "--calls", 1]
    run = _run(args, FAKE_BLAS_WRONG="1")
    assert run.returncode == 1
    r = _results(run.stdout)
    assert r.group(1) == "DISAGREE" and float(r.group(2)) >= 0.5
    run = _run(args, FAKE_BLAS_NAN="1")  # std::max alone would step over the NaN
    assert run.returncode == 1
    assert _results(run.stdout).group(1) == "DISAGREE"


@pytest.mark.parametrize("args, message", [
    (["--blas", "/no/such/libblas.so", 3, 3, 3], "cannot open the BLAS library"),
    (["--blas", "NO_GEMM", 3, 3, 3],
     "no GEMM (scipy_cblas_sgemm64_, cblas_sgemm64_, scipy_cblas_sgemm, cblas_sgemm or sgemm_)"),
    ([3, 3, 3], "--blas LIBRARY is required"),
    (["--blas"], "--blas needs a value"),
    (["--blas", "x", 3, 0, 3], "N must be an integer from 1 to 1048576, not '0'"),
    (["--blas", "x", 3, 3, 3, "--pairs", 0], "--pairs must be an integer from 1 to 100000, not '0'"),
    (["--blas", "x", 3, 3, 3, "--calls", 0], "--calls must be an integer from 1 to 100000, not '0'"),
    (["--blas", "x", 3, 3, 3, "--calls"], "--calls needs a value"),
    (["--blas", "x", 3, 3, 3, "--bogus"], "unknown option '--bogus'"),
])
def test_bad_arguments_are_named(built, fake_blas, args, message):
    harness, _ = built
    run = _run([harness, *[fake_blas["none"] if a == "NO_GEMM" else a for a in args]])
    assert run.returncode == 2
    assert message in run.stderr
    if "GEMM" not in message:  # found after the command line was read
        assert "usage: vs_blas --blas LIBRARY M N K" in run.stderr


@pytest.mark.parametrize("args, message", [
    (["--isa", "sse9", 3, 3, 3], "--isa must be avx2, avx512 or baseline, not 'sse9'"),
    (["--isa"], "--isa needs a value"),
    ([3, 3], "expected the three sizes M N K"),
    (["--blas", "x", 3, 3, 3], "set VS_BLAS_LIBRARY to choose another"),
])
def test_the_script_names_bad_arguments(args, message):
    run = _run([SCRIPT, *args])
    assert run.returncode == 2
    assert message in run.stderr and "usage: scripts/vs-blas.sh" in run.stderr


def test_the_script_says_where_pytorch_is_missing(tmp_path):
    python = tmp_path / "python-without-torch"
    python.write_text("#!/bin/sh\nexit 1\n")
    python.chmod(0o755)
    run = _run([SCRIPT, "--torch", 3, 3, 3], PYTHON=str(python))
    assert run.returncode == 2
    assert "cannot find PyTorch's libtorch_cpu" in run.stderr and "usage: scripts/vs-blas.sh" in run.stderr


def test_the_script_says_where_the_blas_is_missing(built, tmp_path):
    run = _run([SCRIPT, 3, 3, 3], VS_BLAS_LIBRARY=str(tmp_path / "missing.so"), VS_BLAS_BUILD=str(built[0].parent))
    assert run.returncode == 2
    assert "cannot open the BLAS library" in run.stderr
