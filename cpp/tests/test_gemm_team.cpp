// The packed loop nest (gemm.cpp) under every thread grid it forms: threads
// splitting N only, M only, or both, with A panels packed by each thread that
// reads them (at most two threads per panel) or into one block the team shares
// (three or more along N, behind barriers). Small forced blocks give many M
// blocks, K slices and N blocks per call. Each result is checked against the
// scalar reference and, bit for bit, against the one-thread result: every
// element of C must come from the same operations whatever the grid; the gap
// past n in each row of C stays untouched. Thread counts above the core count
// are fine here: only correctness is measured.
#include <cmath>
#include <cstdio>
#include <vector>

#include "gemm_internal.hpp"
#include "matgrad/matgrad.hpp"

namespace {

// Up to 6 threads: 3 × 2 is the smallest grid with a shared A block (3 along N)
// whose threads start at different A panels (2 along M).
constexpr int kMaxThreads = 6;

struct Shape {
    int64_t m, n, k;
    bool trans_a;
};

// Deterministic, mixed signs, and not multiples of a power of two: the sums round,
// so a different order of additions would change the bits the test compares.
template <class T>
T value(int64_t i, int salt) {
    return T(int((i * 7919 + salt * 104729) % 1999) - 999) / T(997);
}

// C's row stride, wider than n.
int64_t ldc_of(const Shape& s) { return s.n + 3; }

// C = relu(op(A)·B + bias) with `threads` threads, forced blocking already set.
template <class T>
std::vector<T> run(const Shape& s, int threads, const std::vector<T>& a, const std::vector<T>& b,
                   const std::vector<T>& bias) {
    matgrad::set_num_threads(threads);
    std::vector<T> c(static_cast<size_t>(s.m * ldc_of(s)), T(-7));  // the gap past n must stay -7
    const int64_t rs_a = s.trans_a ? 1 : s.k, cs_a = s.trans_a ? s.m : 1;
    matgrad::detail::gemm_packed<T>(s.m, s.n, s.k, a.data(), rs_a, cs_a, b.data(), s.n, 1, c.data(),
                                    ldc_of(s), /*accumulate=*/true, bias.data(), /*relu=*/true);
    return c;
}

template <class T>
int check(const Shape& s, const char* isa, const char* blocks) {
    std::vector<T> a(static_cast<size_t>(s.m * s.k)), b(static_cast<size_t>(s.k * s.n));
    std::vector<T> bias(static_cast<size_t>(s.n));
    for (size_t i = 0; i < a.size(); ++i) a[i] = value<T>(int64_t(i), 1);
    for (size_t i = 0; i < b.size(); ++i) b[i] = value<T>(int64_t(i), 2);
    for (size_t i = 0; i < bias.size(); ++i) bias[i] = value<T>(int64_t(i), 3);

    std::vector<T> want(static_cast<size_t>(s.m * ldc_of(s)), T(-7));
    matgrad::reference::gemm_strided(s.m, s.n, s.k, a.data(), s.trans_a ? 1 : s.k, s.trans_a ? s.m : 1,
                                     b.data(), s.n, 1, want.data(), ldc_of(s), true);
    for (int64_t i = 0; i < s.m; ++i)
        for (int64_t j = 0; j < s.n; ++j) {
            T& w = want[size_t(i * ldc_of(s) + j)];
            w += bias[size_t(j)];
            if (w < 0) w = 0;
        }

    const std::vector<T> one = run(s, 1, a, b, bias);
    int failures = 0;
    for (int threads = 1; threads <= kMaxThreads; ++threads) {
        const std::vector<T> got = threads == 1 ? one : run(s, threads, a, b, bias);
        for (size_t i = 0; i < got.size(); ++i) {
            // Values below 1 summed over at most a few hundred terms.
            const bool close = std::fabs(got[i] - want[i]) <= T(sizeof(T) == 4 ? 1e-4 : 1e-12) * T(s.k + 1);
            const bool same = got[i] == one[i];
            if (!close || !same) {
                std::printf("FAIL %s %s blocks %s m=%lld n=%lld k=%lld ta=%d threads=%d at %zu: got %g, "
                            "reference %g, one thread %g\n",
                            isa, sizeof(T) == 4 ? "f32" : "f64", blocks, (long long)s.m, (long long)s.n,
                            (long long)s.k, s.trans_a, threads, i, double(got[i]), double(want[i]),
                            double(one[i]));
                ++failures;
                break;
            }
        }
    }
    return failures;
}

}  // namespace

int main() {
    // Which grid each shape gets depends on the kernel set's tile and the thread count
    // (gemm.cpp, choose_grid); together, on a CPU with AVX-512, they reach every grid of
    // up to 6 threads: N only (own and shared A), M only, 2 × 2 and 3 × 2.
    const Shape shapes[] = {
        {30, 400, 150, false},  // few rows, many columns: mostly N
        {200, 20, 150, true},   // one or two panels of columns: mostly M
        {200, 64, 150, false},  // a few panels each way: both
        {97, 131, 101, true},   // odd everywhere
        {300, 200, 90, false},  // 6 threads as 3 × 2 on AVX-512
    };
    struct Blocks {
        int64_t kc, nc, mc;
        const char* name;
    };
    // Forced blocks: several M blocks, K slices and N blocks; then the derived ones.
    const Blocks blocks[] = {{48, 64, 36, "kc48 nc64 mc36"}, {0, 0, 0, "derived"}};
    int failures = 0, cases = 0;
    for (const char* isa : {"baseline", "avx2", "avx512", "neon"}) {
        if (!matgrad::isa_available(isa)) continue;
        matgrad::set_isa(isa);
        for (const Blocks& bl : blocks) {
            matgrad::set_blocking(bl.kc, bl.nc, bl.mc);
            for (const Shape& s : shapes) {
                failures += check<float>(s, isa, bl.name) + check<double>(s, isa, bl.name);
                cases += 2;
            }
        }
        matgrad::set_blocking(0, 0, 0);
    }
    std::printf("%d cases (1-%d threads each), %d failures\n", cases, kMaxThreads, failures);
    return failures == 0 ? 0 : 1;
}
