// Two GEMMs timed in turn in one process, call by call on the same operands: the
// pieces ab_gemm (two builds of matgrad) and vs_blas (matgrad against a BLAS) share.
//
// Why in one process: on a shared 2-core host the same product moves by 10-50%
// from minute to minute, and two programs timed in separate processes differ by
// that much with no change at all. Called in turn, each pair of calls sees the same
// spell, and the median of the pairs' ratios moves far less than either side's
// times (docs/tuning.md, "Measuring a change in one process").
#pragma once

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace paired {

// The product both sides compute, and how often to time it.
struct GemmCase {
    int64_t m = 0, n = 0, k = 0;
    bool trans_a = false, trans_b = false, f64 = false;
    int pairs = 11, settle_ms = 0;
    int calls = 1;  // per turn, back to back; the turn's time is their median
};

// A bad command line: the program prints it with its usage line and exits 2.
struct BadArguments : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// The program's complaint and its usage line on stderr, then exit 2.
[[noreturn]] inline void exit_with_usage(const char* program, const std::string& why, const char* synopsis) {
    std::fprintf(stderr, "%s: %s\nusage: %s %s\n", program, why.c_str(), program, synopsis);
    std::exit(2);
}

inline int64_t integer(const char* text, const std::string& what, int64_t least, int64_t most) {
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(text, &end, 10);
    if (end == text || *end || errno == ERANGE || v < least || v > most)
        throw BadArguments(what + " must be an integer from " + std::to_string(least) + " to " +
                           std::to_string(most) + ", not '" + text + "'");
    return v;
}

constexpr int64_t kMaxSide = int64_t{1} << 20, kMaxElements = int64_t{1} << 30;

// M N K, --trans-a, --trans-b, --f64, --pairs P, --settle-ms S, --calls C. Any other option
// goes to own(option, the next argument or nullptr), which returns how many
// arguments it took (1 or 2), or 0 for an option it does not know.
template <class Own>
GemmCase parse_gemm_case(int argc, char** argv, GemmCase defaults, Own own) {
    GemmCase o = defaults;
    std::vector<std::string> sizes;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const char* next = i + 1 < argc ? argv[i + 1] : nullptr;
        if (a == "--trans-a") o.trans_a = true;
        else if (a == "--trans-b") o.trans_b = true;
        else if (a == "--f64") o.f64 = true;
        else if (a == "--pairs" || a == "--settle-ms" || a == "--calls") {
            if (!next) throw BadArguments(a + " needs a value");
            int& value = a == "--pairs" ? o.pairs : a == "--calls" ? o.calls : o.settle_ms;
            value = static_cast<int>(integer(next, a, a == "--settle-ms" ? 0 : 1, 100000));
            ++i;
        } else if (!a.empty() && a[0] == '-') {
            const int took = own(a, next);
            if (took == 0) throw BadArguments("unknown option '" + a + "'");
            i += took - 1;
        } else {
            sizes.push_back(a);
        }
    }
    if (sizes.size() != 3) throw BadArguments("expected the three sizes M N K");
    o.m = integer(sizes[0].c_str(), "M", 1, kMaxSide);
    o.n = integer(sizes[1].c_str(), "N", 1, kMaxSide);
    o.k = integer(sizes[2].c_str(), "K", 1, kMaxSide);
    if (o.m * o.k > kMaxElements || o.k * o.n > kMaxElements || o.m * o.n > kMaxElements)
        throw BadArguments("each operand may hold at most 2^30 elements");
    return o;
}

inline double median(std::vector<double> v) {  // v not empty (pairs >= 1)
    std::sort(v.begin(), v.end());
    const size_t h = v.size() / 2;
    return v.size() % 2 ? v[h] : (v[h - 1] + v[h]) / 2;
}

inline double fastest(const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }

// Thousandths in [-1, 1], whose products round, so that a change in the order or
// kind of the operations (FMA or not, K slices) shows in the results.
template <class T>
std::vector<T> thousandths(int64_t count, int salt) {
    std::vector<T> v(count);
    for (int64_t i = 0; i < count; ++i) v[i] = T(((i * 7919 + salt * 104729) % 2001) - 1000) / T(1000);
    return v;
}

// Each side's call times in ms, and second/first per pair (> 1: first is faster).
struct Timings {
    std::vector<double> first, second, ratio;
};

// Two warm-up rounds (first touches, thread start-up, packing buffers), then
// `pairs` pairs of turns, the side that goes first alternating. A turn: settle_ms
// of sleep, so that the other side's idle threads stop spinning (OpenBLAS's spin
// about 140 ms), then `calls` calls back to back, timed one by one; the turn's
// time is their median. With one call per turn, after a pause longer than the
// threads' spin, every call starts from idle threads; with several, the median is
// a call whose threads were already awake, as in a training loop and in
// compare.py's turns.
template <class First, class Second>
Timings alternate(First first, Second second, int pairs, int settle_ms, int calls) {
    auto timed = [settle_ms, calls](auto& call) {
        if (settle_ms) std::this_thread::sleep_for(std::chrono::milliseconds(settle_ms));
        std::vector<double> times;
        for (int i = 0; i < calls; ++i) {
            const auto t0 = std::chrono::steady_clock::now();
            call();
            times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        }
        return median(times);
    };
    for (int warm = 0; warm < 2; ++warm) {
        timed(first);
        timed(second);
    }
    Timings t;
    for (int p = 0; p < pairs; ++p) {
        double x, y;
        if (p % 2) {
            y = timed(second);
            x = timed(first);
        } else {
            x = timed(first);
            y = timed(second);
        }
        t.first.push_back(x);
        t.second.push_back(y);
        t.ratio.push_back(y / x);
    }
    return t;
}

}  // namespace paired
