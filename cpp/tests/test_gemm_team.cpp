// The packed loop nest (gemm.cpp) under every thread grid it forms: threads
// splitting N only, M only, or both, with A panels packed by each thread that
// reads them (at most two threads per panel) or into one block the team shares
// (three or more along N, behind barriers). Small forced blocks give many M
// blocks, K slices and N blocks per call. Each result is checked against the
// scalar reference and, bit for bit, against the one-thread result: every
// element of C must come from the same operations whatever the grid; the gap
// past n in each row of C stays untouched. Thread counts above the core count
// are fine here: only correctness is measured. The same products also run as the
// solo fallback (OpenMP giving one thread where the grid asked for more), and the
// packing area's layout (pack_layout) is checked against what the packs write.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

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
#if defined(_OPENMP)
    // Inside a parallel region with nesting off, the product's own team gets one thread
    // for the grid it sized for kMaxThreads: the solo fallback, which packs the whole A
    // block and nc-wide B blocks into the slots.
    const int levels = omp_get_max_active_levels();
    omp_set_max_active_levels(1);
    std::vector<T> solo;
#pragma omp parallel num_threads(2)
    {
#pragma omp master
        solo = run(s, kMaxThreads, a, b, bias);
    }
    omp_set_max_active_levels(levels);
    for (size_t i = 0; i < solo.size(); ++i)
        if (solo[i] != one[i]) {
            std::printf("FAIL %s %s blocks %s m=%lld n=%lld k=%lld ta=%d solo at %zu: got %g, "
                        "one thread %g\n",
                        isa, sizeof(T) == 4 ? "f32" : "f64", blocks, (long long)s.m, (long long)s.n,
                        (long long)s.k, s.trans_a, i, double(solo[i]), double(one[i]));
            ++failures;
            break;
        }
#endif
    return failures;
}

// A half-open range of a packing area, in elements.
struct Range {
    int64_t begin, end;
};

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

struct Tile {
    int mr, nr, copies;
    int64_t line;  // elements in 64 bytes
};

// One layout's failures, each printed (up to a few) with the inputs that made it.
struct LayoutCase {
    Tile t;
    int64_t mc, nc, kc, n;
    int along_n, along_m;
    int64_t min_slot;

    bool fail(const char* what) const {
        static int printed = 0;
        if (++printed <= 10)
            std::printf("FAIL pack_layout %s: tile %d×%d copies %d, mc %lld nc %lld kc %lld "
                        "n %lld, %d along N × %d along M, min_slot %lld\n",
                        what, t.mr, t.nr, t.copies, (long long)mc, (long long)nc, (long long)kc,
                        (long long)n, along_n, along_m, (long long)min_slot);
        return true;
    }

    // Inside the area, on a line each, and no two of `ranges` (written at once) overlap.
    int check_ranges(const std::vector<Range>& ranges, int64_t reserve) const {
        int failures = 0;
        for (size_t i = 0; i < ranges.size(); ++i) {
            const Range& r = ranges[i];
            if (r.begin % t.line) failures += fail("off a line");
            if (r.begin < 0 || r.end > reserve) failures += fail("outside the area");
            for (size_t j = i + 1; j < ranges.size(); ++j)
                if (r.begin < ranges[j].end && ranges[j].begin < r.end) failures += fail("overlap");
        }
        return failures;
    }

    int check() const {
        const matgrad::detail::PackLayout l = matgrad::detail::pack_layout(
            mc, nc, kc, n, t.mr, t.nr, t.copies, along_n, along_m, t.line, min_slot);
        // What the packs write (pack.hpp): a member's columns of B padded to whole panels,
        // its share of A's panels along M, or the whole block.
        const int64_t b_values = std::min(nc, ceil_div(ceil_div(n, t.nr), along_n) * t.nr) * kc;
        const int64_t own_a_values = ceil_div(ceil_div(mc, t.mr), along_m) * t.mr * t.copies * kc;
        const int64_t block_a_values = mc * t.copies * kc;
        std::vector<Range> team;
        int failures = 0;
        for (int tid = 0; tid < along_n * along_m; ++tid) {
            const int64_t b0 = l.b_offset(tid, false), a0 = l.a_offset(tid, false);
            team.push_back({b0, b0 + b_values});
            if (l.own_a)
                team.push_back({a0, a0 + own_a_values});
            else if (a0 != l.a_offset(0, false))
                failures += fail("the shared A block differs between members");
        }
        if (!l.own_a) team.push_back({l.a_offset(0, false), l.a_offset(0, false) + block_a_values});
        const int64_t sb = l.b_offset(0, true), sa = l.a_offset(0, true);
        const std::vector<Range> solo = {{sb, sb + nc * kc}, {sa, sa + block_a_values}};
        if (l.slot < min_slot) failures += fail("the slot shrank");
        return failures + check_ranges(team, l.reserve) + check_ranges(solo, l.reserve);
    }
};

// pack_layout against what the packs write: every member's B block and own A panels,
// the shared A block and a solo thread's blocks lie inside the area, start on a line,
// and no two ranges written at once overlap. Tiles of every kernel set, blocks off
// every multiple, every grid of up to 8 threads, and a larger slot left by earlier
// products.
int check_pack_layout() {
    const Tile tiles[] = {{6, 16, 1, 16}, {6, 8, 1, 8},  {12, 32, 1, 16}, {12, 16, 1, 8},
                          {8, 12, 1, 16}, {2, 24, 4, 16}, {2, 12, 2, 8}};
    const int64_t sizes_m[] = {1, 7, 37, 128, 1000}, sizes_n[] = {1, 10, 97, 512, 3001};
    int failures = 0, layouts = 0;
    for (const Tile& t : tiles)
        for (int64_t m : sizes_m)
            for (int64_t n : sizes_n)
                for (int64_t kc : {int64_t(1), int64_t(13), int64_t(392)})
                    for (int threads = 1; threads <= 8; ++threads)
                        for (int along_n = 1; along_n <= threads; ++along_n) {
                            if (threads % along_n) continue;
                            const int64_t mc = std::min(ceil_div(m, t.mr), int64_t(40)) * t.mr;
                            const int64_t nc = std::min(ceil_div(n, t.nr), int64_t(44)) * t.nr;
                            for (int64_t min_slot : {int64_t(0), int64_t(1) << 20}) {
                                const int along_m = threads / along_n;
                                const LayoutCase c{t, mc, nc, kc, n, along_n, along_m, min_slot};
                                failures += c.check();
                                ++layouts;
                            }
                        }
    std::printf("%d pack layouts, %d failures\n", layouts, failures);
    std::fflush(stdout);  // seen even if a wrong layout then corrupts the heap
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
    // The layout first: a wrong one would corrupt the heap in the products below.
    int failures = check_pack_layout(), cases = 0;
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
    std::printf("%d cases (1-%d threads each, and solo), %d failures\n", cases, kMaxThreads,
                failures);
    return failures == 0 ? 0 : 1;
}
