// One GEMM timed under two builds of the library in one process: this tree's
// (namespace matgrad) and another commit's, compiled with -Dmatgrad=matgrad_old so
// that its symbols differ. Built and run by scripts/ab-gemm.sh, which says how.
//
// Why in one process: on a shared 2-core host the same product moves by 10-50%
// from minute to minute, and two builds timed in separate processes differ by that
// much with no change at all. Called in turn on the same operands, each pair of
// calls sees the same spell, and the median of the pairs' ratios moves far less
// than either build's times (docs/tuning.md, "Measuring a change in one process").
//
//   ab_gemm M N K [--trans-a] [--trans-b] [--f64] [--pairs P] [--settle-ms S]
//           [--old-isa NAME] [--new-isa NAME] [--require-identical]
// --old-isa/--new-isa: that build's kernel set (set_isa; MATGRAD_ISA sets both), so
// that one commit against itself compares two kernel sets call by call.
// Threads: OMP_NUM_THREADS (both builds share one OpenMP runtime). Prints each
// build's median and fastest call and the median of old/new per pair (> 1: the
// new build is faster), and whether the two Cs are bit for bit the same.
// --require-identical: exit 1 where they are not (a change that should not
// touch the arithmetic).
#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <thread>
#include <vector>

#include "matgrad/matgrad.hpp"
#ifndef MATGRAD_OLD_HEADER
#error "build with -DMATGRAD_OLD_HEADER='\"<old tree>/cpp/include/matgrad/matgrad.hpp\"' (scripts/ab-gemm.sh)"
#endif
#define matgrad matgrad_old
#include MATGRAD_OLD_HEADER
#undef matgrad

namespace {

struct Options {
    int64_t m = 0, n = 0, k = 0;
    bool trans_a = false, trans_b = false, f64 = false, require_identical = false;
    int pairs = 11, settle_ms = 0;
    std::string old_isa, new_isa;
};

[[noreturn]] void usage(const std::string& why) {
    std::fprintf(stderr,
                 "ab_gemm: %s\nusage: ab_gemm M N K [--trans-a] [--trans-b] [--f64] [--pairs P] "
                 "[--settle-ms S] [--old-isa NAME] [--new-isa NAME] [--require-identical]\n",
                 why.c_str());
    std::exit(2);
}

int64_t integer(const char* text, const std::string& what, int64_t least, int64_t most) {
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(text, &end, 10);
    if (end == text || *end || errno == ERANGE || v < least || v > most)
        usage(what + " must be an integer from " + std::to_string(least) + " to " + std::to_string(most) +
              ", not '" + text + "'");
    return v;
}

constexpr int64_t kMaxSide = int64_t{1} << 20, kMaxElements = int64_t{1} << 30;

Options parse(int argc, char** argv) {
    Options o;
    std::vector<std::string> sizes;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--trans-a") o.trans_a = true;
        else if (a == "--trans-b") o.trans_b = true;
        else if (a == "--f64") o.f64 = true;
        else if (a == "--require-identical") o.require_identical = true;
        else if (a == "--pairs" || a == "--settle-ms") {
            if (i + 1 >= argc) usage(a + " needs a value");
            const bool pairs = a == "--pairs";
            (pairs ? o.pairs : o.settle_ms) = static_cast<int>(integer(argv[++i], a, pairs ? 1 : 0, 100000));
        } else if (a == "--old-isa" || a == "--new-isa") {
            if (i + 1 >= argc) usage(a + " needs a value");
            (a == "--old-isa" ? o.old_isa : o.new_isa) = argv[++i];
        } else if (!a.empty() && a[0] == '-') usage("unknown option '" + a + "'");
        else sizes.push_back(a);
    }
    if (sizes.size() != 3) usage("expected the three sizes M N K");
    o.m = integer(sizes[0].c_str(), "M", 1, kMaxSide);
    o.n = integer(sizes[1].c_str(), "N", 1, kMaxSide);
    o.k = integer(sizes[2].c_str(), "K", 1, kMaxSide);
    if (o.m * o.k > kMaxElements || o.k * o.n > kMaxElements || o.m * o.n > kMaxElements)
        usage("each operand may hold at most 2^30 elements");
    return o;
}

double median(std::vector<double> v) {  // v not empty (pairs >= 1)
    std::sort(v.begin(), v.end());
    const size_t h = v.size() / 2;
    return v.size() % 2 ? v[h] : (v[h - 1] + v[h]) / 2;
}

template <class T>
int run(const Options& o) {
    // The same inputs for both builds: thousandths in [-1, 1], whose products round, so
    // that a change in the order or kind of the operations (FMA or not, K slices) shows.
    auto filled = [](int64_t count, int salt) {
        std::vector<T> v(count);
        for (int64_t i = 0; i < count; ++i) v[i] = T(((i * 7919 + salt * 104729) % 2001) - 1000) / T(1000);
        return v;
    };
    const std::vector<T> a = filled(o.m * o.k, 1), b = filled(o.k * o.n, 2);
    std::vector<T> c_new(o.m * o.n), c_old(o.m * o.n);
    const int64_t lda = o.trans_a ? o.m : o.k, ldb = o.trans_b ? o.k : o.n;
    auto timed = [&](bool fresh) {
        if (o.settle_ms) std::this_thread::sleep_for(std::chrono::milliseconds(o.settle_ms));
        const auto t0 = std::chrono::steady_clock::now();
        if (fresh)
            matgrad::gemm(o.trans_a, o.trans_b, o.m, o.n, o.k, a.data(), lda, b.data(), ldb, c_new.data(), o.n, false);
        else
            matgrad_old::gemm(o.trans_a, o.trans_b, o.m, o.n, o.k, a.data(), lda, b.data(), ldb, c_old.data(), o.n,
                              false);
        return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    };
    for (int warm = 0; warm < 2; ++warm) {  // first touches, thread start-up, packing buffers
        timed(true);
        timed(false);
    }
    std::vector<double> t_new, t_old, ratio;
    for (int p = 0; p < o.pairs; ++p) {  // which build goes first alternates
        double x, y;
        if (p % 2) {
            y = timed(false);
            x = timed(true);
        } else {
            x = timed(true);
            y = timed(false);
        }
        t_new.push_back(x);
        t_old.push_back(y);
        ratio.push_back(y / x);
    }
    double max_diff = 0;
    for (size_t i = 0; i < c_new.size(); ++i) max_diff = std::max(max_diff, double(std::fabs(c_new[i] - c_old[i])));
    const bool identical = std::memcmp(c_new.data(), c_old.data(), sizeof(T) * c_new.size()) == 0;
    std::printf("%lldx%lldx%lld %s%s %s (new kernels %s, old %s), %d pairs: new %.4g ms (fastest %.4g) | "
                "old %.4g ms (fastest %.4g) | old/new median %.3f\n",
                (long long)o.m, (long long)o.n, (long long)o.k, o.trans_a ? "Aᵀ" : "A", o.trans_b ? "·Bᵀ" : "·B",
                o.f64 ? "f64" : "f32", matgrad::isa(), matgrad_old::isa(), o.pairs, median(t_new),
                *std::min_element(t_new.begin(), t_new.end()), median(t_old),
                *std::min_element(t_old.begin(), t_old.end()), median(ratio));
    if (identical)
        std::printf("results: identical\n");
    else
        std::printf("results: differ (largest difference %g)\n", max_diff);
    return o.require_identical && !identical ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
    const Options o = parse(argc, argv);
    try {  // an unknown kernel set, or one this CPU lacks: set_isa says which
        if (!o.new_isa.empty()) matgrad::set_isa(o.new_isa.c_str());
        if (!o.old_isa.empty()) matgrad_old::set_isa(o.old_isa.c_str());
    } catch (const std::exception& e) {
        usage(e.what());
    }
    try {  // a bad MATGRAD_ISA or MATGRAD_BLOCKING (read at the first call), memory
        return o.f64 ? run<double>(o) : run<float>(o);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ab_gemm: %s\n", e.what());
        return 2;
    }
}
