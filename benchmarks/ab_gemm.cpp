// One GEMM timed under two builds of the library in one process: this tree's
// (namespace matgrad) and another commit's, compiled with -Dmatgrad=matgrad_old so
// that its symbols differ. Built and run by scripts/ab-gemm.sh, which says how;
// why in one process: paired_calls.hpp.
//
//   ab_gemm M N K [--trans-a] [--trans-b] [--f64] [--pairs P] [--settle-ms S] [--calls C]
//           [--old-isa NAME] [--new-isa NAME] [--old-blocking KC,NC,MC] [--new-blocking KC,NC,MC]
//           [--require-identical]
// --settle-ms, --calls: the pause before each turn and the calls in it (paired_calls.hpp;
// default no pause, one call).
// --old-isa/--new-isa: that build's kernel set (set_isa; MATGRAD_ISA sets both), so
// that one commit against itself compares two kernel sets call by call.
// --old-blocking/--new-blocking: that build's kc, nc and mc (set_blocking, for both
// dtypes; 0 keeps the derived value), so that one commit against itself compares two
// blockings; a line after the report gives each build's blocks for the dtype timed.
// Threads: OMP_NUM_THREADS (both builds share one OpenMP runtime). Prints each
// build's median and fastest turn and the median of old/new per pair (> 1: the
// new build is faster), and whether the two Cs are bit for bit the same.
// --require-identical: exit 1 where they are not (a change that should not
// touch the arithmetic).
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "matgrad/matgrad.hpp"
#include "paired_calls.hpp"
#ifndef MATGRAD_OLD_HEADER
#error "build with -DMATGRAD_OLD_HEADER='\"<old tree>/cpp/include/matgrad/matgrad.hpp\"' (scripts/ab-gemm.sh)"
#endif
#define matgrad matgrad_old
#include MATGRAD_OLD_HEADER
#undef matgrad

namespace {

struct Blocks {
    bool set = false;
    int64_t kc = 0, nc = 0, mc = 0;
};

struct Options {
    paired::GemmCase product;
    bool require_identical = false;
    std::string old_isa, new_isa;
    Blocks old_blocks, new_blocks;
};

// "KC,NC,MC": three integers from 0 (the derived value) to 2^20.
Blocks blocks_from(const std::string& option, const char* text) {
    const std::string t = text;
    const size_t first = t.find(','), second = first == std::string::npos ? first : t.find(',', first + 1);
    if (second == std::string::npos || t.find(',', second + 1) != std::string::npos)
        throw paired::BadArguments(option + " takes KC,NC,MC, not '" + t + "'");
    Blocks b;
    b.set = true;
    b.kc = paired::integer(t.substr(0, first).c_str(), option + " KC", 0, paired::kMaxSide);
    b.nc = paired::integer(t.substr(first + 1, second - first - 1).c_str(), option + " NC", 0, paired::kMaxSide);
    b.mc = paired::integer(t.substr(second + 1).c_str(), option + " MC", 0, paired::kMaxSide);
    return b;
}

[[noreturn]] void usage(const std::string& why) {
    paired::exit_with_usage("ab_gemm", why,
                            "M N K [--trans-a] [--trans-b] [--f64] [--pairs P] [--settle-ms S] [--calls C] "
                            "[--old-isa NAME] [--new-isa NAME] [--old-blocking KC,NC,MC] "
                            "[--new-blocking KC,NC,MC] [--require-identical]");
}

Options parse(int argc, char** argv) {
    Options o;
    auto own = [&o](const std::string& a, const char* next) -> int {
        if (a == "--require-identical") {
            o.require_identical = true;
            return 1;
        }
        if (a == "--old-isa" || a == "--new-isa") {
            if (!next) throw paired::BadArguments(a + " needs a value");
            (a == "--old-isa" ? o.old_isa : o.new_isa) = next;
            return 2;
        }
        if (a == "--old-blocking" || a == "--new-blocking") {
            if (!next) throw paired::BadArguments(a + " needs a value");
            (a == "--old-blocking" ? o.old_blocks : o.new_blocks) = blocks_from(a, next);
            return 2;
        }
        return 0;
    };
    try {
        o.product = paired::parse_gemm_case(argc, argv, paired::GemmCase{}, own);
    } catch (const paired::BadArguments& e) {
        usage(e.what());
    }
    return o;
}

template <class T>
int run(const Options& opts) {
    const paired::GemmCase& o = opts.product;
    const std::vector<T> a = paired::thousandths<T>(o.m * o.k, 1), b = paired::thousandths<T>(o.k * o.n, 2);
    std::vector<T> c_new(o.m * o.n), c_old(o.m * o.n);
    const int64_t lda = o.trans_a ? o.m : o.k, ldb = o.trans_b ? o.k : o.n;
    auto fresh = [&] {
        matgrad::gemm(o.trans_a, o.trans_b, o.m, o.n, o.k, a.data(), lda, b.data(), ldb, c_new.data(), o.n, false);
    };
    auto old = [&] {
        matgrad_old::gemm(o.trans_a, o.trans_b, o.m, o.n, o.k, a.data(), lda, b.data(), ldb, c_old.data(), o.n,
                          false);
    };
    const paired::Timings t = paired::alternate(fresh, old, o.pairs, o.settle_ms, o.calls);
    double max_diff = 0;
    for (size_t i = 0; i < c_new.size(); ++i) max_diff = std::max(max_diff, double(std::fabs(c_new[i] - c_old[i])));
    const bool identical = std::memcmp(c_new.data(), c_old.data(), sizeof(T) * c_new.size()) == 0;
    std::printf("%lldx%lldx%lld %s%s %s (new kernels %s, old %s), %d pairs: new %.4g ms (fastest %.4g) | "
                "old %.4g ms (fastest %.4g) | old/new median %.3f\n",
                (long long)o.m, (long long)o.n, (long long)o.k, o.trans_a ? "Aᵀ" : "A", o.trans_b ? "·Bᵀ" : "·B",
                o.f64 ? "f64" : "f32", matgrad::isa(), matgrad_old::isa(), o.pairs, paired::median(t.first),
                paired::fastest(t.first), paired::median(t.second), paired::fastest(t.second),
                paired::median(t.ratio));
    if (opts.old_blocks.set || opts.new_blocks.set) {
        const bool f64 = sizeof(T) == 8;
        const matgrad::BlockSizes nb = matgrad::block_sizes(f64);
        const matgrad_old::BlockSizes ob = matgrad_old::block_sizes(f64);
        std::printf("blocking: new kc %lld nc %lld mc %lld, old kc %lld nc %lld mc %lld\n", (long long)nb.kc,
                    (long long)nb.nc, (long long)nb.mc, (long long)ob.kc, (long long)ob.nc, (long long)ob.mc);
    }
    if (identical)
        std::printf("results: identical\n");
    else
        std::printf("results: differ (largest difference %g)\n", max_diff);
    return opts.require_identical && !identical ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
    const Options o = parse(argc, argv);
    try {  // an unknown kernel set, or one this CPU lacks: set_isa says which
        if (!o.new_isa.empty()) matgrad::set_isa(o.new_isa.c_str());
        if (!o.old_isa.empty()) matgrad_old::set_isa(o.old_isa.c_str());
        if (o.new_blocks.set) matgrad::set_blocking(o.new_blocks.kc, o.new_blocks.nc, o.new_blocks.mc);
        if (o.old_blocks.set) matgrad_old::set_blocking(o.old_blocks.kc, o.old_blocks.nc, o.old_blocks.mc);
    } catch (const std::exception& e) {
        usage(e.what());
    }
    try {  // a bad MATGRAD_ISA or MATGRAD_BLOCKING (read at the first call), memory
        return o.product.f64 ? run<double>(o) : run<float>(o);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ab_gemm: %s\n", e.what());
        return 2;
    }
}
