// One GEMM timed under matgrad and under a BLAS library (numpy's own OpenBLAS, or PyTorch's MKL) in one
// process, the calls taking turns on the same operands. Built and run by
// scripts/vs-blas.sh, which finds the library and says how; why in one process:
// paired_calls.hpp. A diagnostic beside compare.py, whose figures (each library in
// its own process) are the ones BENCHMARKS.md records.
//
//   vs_blas --blas LIBRARY M N K [--trans-a] [--trans-b] [--f64] [--pairs P] [--settle-ms S]
//           [--calls C]
//
// LIBRARY is opened with dlopen; its GEMM is the first of: scipy_cblas_?gemm64_
// (numpy 2's scipy-openblas64 wheels), cblas_?gemm64_ (numpy 1.22-1.26's openblas64_),
// both with 64-bit integers, then scipy_cblas_?gemm (scipy-openblas32) or cblas_?gemm,
// with 32-bit integers unless the library is an OpenBLAS whose configuration says
// USE64BITINT (an ILP64 build without the suffix, such as Debian's libopenblas64);
// failing those, the Fortran ?gemm_ with 32-bit integers (MKL inside PyTorch's
// libtorch_cpu, the GEMM PyTorch's CPU products call).
// Threads: matgrad's OMP_NUM_THREADS, OpenBLAS's OPENBLAS_NUM_THREADS, MKL's
// MKL_NUM_THREADS (else OMP_NUM_THREADS); kernels: MATGRAD_ISA, OPENBLAS_CORETYPE and
// MKL_ENABLE_INSTRUCTIONS. --settle-ms (default 300) goes before every turn, so that the
// other library's idle threads have stopped spinning: OpenBLAS's spin about 140 ms
// after a call, and a shorter pause leans against whichever library follows it
// (docs/tuning-log-xeon-207.md, "Eleventh session"). --calls (default 3) back to back in a turn,
// their median the turn's time: a call whose threads are awake, as in compare.py.
//
// Prints each library's median and fastest turn and the median of BLAS/matgrad per
// pair (> 1: matgrad is faster), then whether the two Cs agree: every value finite
// in both, and their largest difference within 1e-3 (f32) or 1e-9 (f64) of C's
// largest magnitude, far above rounding at these sizes and far below a wrong
// product's. Exit 1 where they do not.
#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

#include "matgrad/matgrad.hpp"
#include "paired_calls.hpp"

namespace {

// CBLAS's enum values (cblas.h), passed as int.
constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;

template <class T, class Int>
using CblasGemm = void (*)(int, int, int, Int, Int, Int, T, const T*, Int, const T*, Int, T, T*, Int);
// The Fortran interface (column-major, every argument by address, then the lengths
// of the two one-letter strings), as MKL inside PyTorch's libtorch_cpu exports it.
template <class T>
using FortranGemm = void (*)(const char*, const char*, const int*, const int*, const int*, const T*, const T*,
                             const int*, const T*, const int*, const T*, T*, const int*, size_t, size_t);

// A BLAS's GEMM for T: whichever symbol the library has, and its integer width.
template <class T>
struct Blas {
    CblasGemm<T, int64_t> gemm64 = nullptr;
    CblasGemm<T, int> gemm32 = nullptr;
    FortranGemm<T> fortran = nullptr;
    std::string symbol, core = "unknown";

    void operator()(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b,
                    int64_t ldb, T* c, int64_t ldc) const {
        const int op_a = ta ? kTrans : kNoTrans, op_b = tb ? kTrans : kNoTrans;
        // Sizes are at most 2^20 (paired_calls.hpp): they fit an int.
        if (gemm64) {
            gemm64(kRowMajor, op_a, op_b, m, n, k, T(1), a, lda, b, ldb, T(0), c, ldc);
        } else if (gemm32) {
            gemm32(kRowMajor, op_a, op_b, int(m), int(n), int(k), T(1), a, int(lda), b, int(ldb), T(0), c,
                   int(ldc));
        } else {  // row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ
            const T one = 1, zero = 0;
            const int m32 = int(m), n32 = int(n), k32 = int(k), lda32 = int(lda), ldb32 = int(ldb),
                      ldc32 = int(ldc);
            fortran(tb ? "T" : "N", ta ? "T" : "N", &n32, &m32, &k32, &one, b, &ldb32, a, &lda32, &zero, c, &ldc32,
                    1, 1);
        }
    }
    int integer_bits() const { return gemm64 ? 64 : 32; }
};

// The text of the first of OpenBLAS's string functions `names` the library has, or "".
std::string openblas_text(void* library, std::initializer_list<const char*> names) {
    for (const char* name : names)
        if (void* f = dlsym(library, name)) {
            const char* text = reinterpret_cast<const char* (*)()>(f)();
            return text ? text : "";
        }
    return "";
}

template <class T>
Blas<T> find_blas(void* library) {
    const std::string s = sizeof(T) == 8 ? "d" : "s";
    const std::string wide[] = {"scipy_cblas_" + s + "gemm64_", "cblas_" + s + "gemm64_"};
    const std::string plain[] = {"scipy_cblas_" + s + "gemm", "cblas_" + s + "gemm"};
    Blas<T> blas;
    for (const std::string& name : wide)
        if (void* f = dlsym(library, name.c_str())) {
            blas.gemm64 = reinterpret_cast<CblasGemm<T, int64_t>>(f);
            blas.symbol = name;
            break;
        }
    if (!blas.gemm64) {
        for (const std::string& name : plain)
            if (void* f = dlsym(library, name.c_str())) {
                // An unsuffixed OpenBLAS may still take 64-bit integers: its build says so.
                const std::string config =
                    openblas_text(library, {"scipy_openblas_get_config", "openblas_get_config"});
                if (config.find("USE64BITINT") != std::string::npos)
                    blas.gemm64 = reinterpret_cast<CblasGemm<T, int64_t>>(f);
                else
                    blas.gemm32 = reinterpret_cast<CblasGemm<T, int>>(f);
                blas.symbol = name;
                break;
            }
        if (blas.symbol.empty()) {
            const std::string fortran = s + "gemm_";
            if (void* f = dlsym(library, fortran.c_str())) {
                blas.fortran = reinterpret_cast<FortranGemm<T>>(f);
                blas.symbol = fortran;
            }
        }
        if (blas.symbol.empty())
            throw std::runtime_error("no GEMM (" + wide[0] + ", " + wide[1] + ", " + plain[0] + ", " + plain[1] +
                                     " or " + s + "gemm_) in the library");
    }
    // OpenBLAS says which kernel it runs; MKL, only its version (the instructions it may
    // use are MKL_ENABLE_INSTRUCTIONS's, where set).
    const std::string core = openblas_text(
        library, {"scipy_openblas_get_corename64_", "openblas_get_corename64_", "scipy_openblas_get_corename",
                  "openblas_get_corename"});
    if (!core.empty()) {
        blas.core = core;
    } else if (void* f = dlsym(library, "MKL_Get_Version_String")) {
        char text[256] = {};
        reinterpret_cast<void (*)(char*, int)>(f)(text, int(sizeof text) - 1);
        // "Intel(R) oneAPI Math Kernel Library Version 2024.2-Product Build 20240605 for ...": 2024.2
        const std::string version = text;
        const size_t at = version.find("Version ");
        blas.core = "MKL";
        if (at != std::string::npos)
            blas.core += " " + version.substr(at + 8, version.find_first_of(" -", at + 8) - at - 8);
        if (const char* limit = std::getenv("MKL_ENABLE_INSTRUCTIONS"))
            blas.core += std::string(" up to ") + limit;
    }
    return blas;
}

struct Options {
    paired::GemmCase product;
    std::string library;
};

[[noreturn]] void usage(const std::string& why) {
    paired::exit_with_usage("vs_blas", why,
                            "--blas LIBRARY M N K [--trans-a] [--trans-b] [--f64] [--pairs P] [--settle-ms S] "
                            "[--calls C]");
}

Options parse(int argc, char** argv) {
    Options o;
    auto own = [&o](const std::string& a, const char* next) -> int {
        if (a != "--blas") return 0;
        if (!next) throw paired::BadArguments(a + " needs a value");
        o.library = next;
        return 2;
    };
    paired::GemmCase defaults;
    defaults.settle_ms = 300;
    defaults.calls = 3;
    try {
        o.product = paired::parse_gemm_case(argc, argv, defaults, own);
    } catch (const paired::BadArguments& e) {
        usage(e.what());
    }
    if (o.library.empty()) usage("--blas LIBRARY is required");
    return o;
}

template <class T>
int run(const paired::GemmCase& o, void* library) {
    const Blas<T> blas = find_blas<T>(library);
    const std::vector<T> a = paired::thousandths<T>(o.m * o.k, 1), b = paired::thousandths<T>(o.k * o.n, 2);
    std::vector<T> c_ours(o.m * o.n), c_blas(o.m * o.n);
    const int64_t lda = o.trans_a ? o.m : o.k, ldb = o.trans_b ? o.k : o.n;
    auto ours = [&] {
        matgrad::gemm(o.trans_a, o.trans_b, o.m, o.n, o.k, a.data(), lda, b.data(), ldb, c_ours.data(), o.n, false);
    };
    auto theirs = [&] { blas(o.trans_a, o.trans_b, o.m, o.n, o.k, a.data(), lda, b.data(), ldb, c_blas.data(), o.n); };
    const paired::Timings t = paired::alternate(ours, theirs, o.pairs, o.settle_ms, o.calls);

    // A NaN or an infinity anywhere is a disagreement (std::max would pass a NaN over).
    bool finite = true;
    double max_diff = 0, max_c = 0;
    for (size_t i = 0; i < c_ours.size(); ++i) {
        finite = finite && std::isfinite(c_ours[i]) && std::isfinite(c_blas[i]);
        max_diff = std::max(max_diff, double(std::fabs(c_ours[i] - c_blas[i])));
        max_c = std::max(max_c, double(std::fabs(c_blas[i])));
    }
    if (!finite) max_diff = HUGE_VAL;
    const double tolerance = (sizeof(T) == 8 ? 1e-9 : 1e-3) * max_c;
    const bool agree = finite && max_diff <= tolerance;
    std::printf("%lldx%lldx%lld %s%s %s (matgrad %s; BLAS %s, %s with %d-bit integers), %d pairs: "
                "matgrad %.4g ms (fastest %.4g) | "
                "BLAS %.4g ms (fastest %.4g) | BLAS/matgrad median %.3f\n",
                (long long)o.m, (long long)o.n, (long long)o.k, o.trans_a ? "Aᵀ" : "A", o.trans_b ? "·Bᵀ" : "·B",
                o.f64 ? "f64" : "f32", matgrad::isa(), blas.core.c_str(), blas.symbol.c_str(), blas.integer_bits(), o.pairs,
                paired::median(t.first), paired::fastest(t.first), paired::median(t.second),
                paired::fastest(t.second), paired::median(t.ratio));
    std::printf("results: %s (largest difference %g, largest |C| %g)\n", agree ? "agree" : "DISAGREE", max_diff,
                max_c);
    return agree ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    const Options o = parse(argc, argv);
    void* library = dlopen(o.library.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!library) usage(std::string("cannot open the BLAS library: ") + dlerror());
    try {  // no GEMM in the library, a bad MATGRAD_ISA or MATGRAD_BLOCKING, memory
        return o.product.f64 ? run<double>(o.product, library) : run<float>(o.product, library);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "vs_blas: %s\n", e.what());
        return 2;
    }
}
