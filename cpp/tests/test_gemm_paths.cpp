// The GEMM loop nests, packed (gemm.cpp), unpacked small (gemm_small.cpp),
// skinny (gemm_skinny.cpp) and, for a row-major B, streamed-B (gemm_streamed_b.cpp,
// with B placed at an offset within a cache line that varies with the case), for a
// transposed B the transposed-rows path (gemm_transposed_rows.cpp), and for one row
// of C the row path (gemm_row.cpp), each
// against the scalar reference,
// on every kernel set this CPU runs. gemm_fused picks one by shape, so the
// Python tests reach each path only where it is chosen; here all run on the
// same shapes, including ones far
// from where they would be chosen: odd sizes around the register tiles, the four
// transpose cases, a negative stride, C with a row stride wider than n,
// accumulate, and the bias/ReLU epilogue.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "gemm_internal.hpp"
#include "kernels/kernel_table.hpp"
#include "matgrad/matgrad.hpp"
#include "pack.hpp"

namespace {

using matgrad::detail::gemm_packed;
using matgrad::detail::gemm_row;
using matgrad::detail::gemm_row_dots;
using matgrad::detail::gemm_skinny;
using matgrad::detail::gemm_small;
using matgrad::detail::gemm_streamed_b;
using matgrad::detail::gemm_transposed_rows;

struct Case {
    int64_t m, n, k;
    bool trans_a, trans_b, negative_rows_a, accumulate, bias, relu;
};

template <class T>
T value(int64_t i, int salt) {  // deterministic, mixed signs, exact in float
    return T(int((i * 7919 + salt * 104729) % 17) - 8) / T(8);
}

// The epilogue on a reference product (m×n, row-major): want = relu(want + bias).
template <class T>
void add_bias_relu(std::vector<T>& want, int64_t m, int64_t n, const std::vector<T>& bias) {
    for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
            T& w = want[i * n + j];
            w += bias[j];
            if (w < 0) w = 0;
        }
}

// op(A) viewed with strides; storage holds A as given (transposed or not).
struct View {
    int64_t rs, cs, offset;
};

View view_a(const Case& c) {
    // A stored [m×k] (or [k×m] when transposed), row-major.
    View v = c.trans_a ? View{1, c.m, 0} : View{c.k, 1, 0};
    if (c.negative_rows_a) {  // op(A)'s rows in reverse order: rs < 0, start at the last row
        v.offset = (c.m - 1) * v.rs;
        v.rs = -v.rs;
    }
    return v;
}

template <class T>
int run_case(const Case& c, const char* isa) {
    const int64_t ldc = c.n + 3;  // C's row stride wider than n: the gap must stay untouched
    std::vector<T> a(c.m * c.k), b(c.k * c.n), bias(c.n), c0(c.m * ldc);
    for (size_t i = 0; i < a.size(); ++i) a[i] = value<T>(i, 1);
    for (size_t i = 0; i < b.size(); ++i) b[i] = value<T>(i, 2);
    for (size_t i = 0; i < bias.size(); ++i) bias[i] = value<T>(i, 3);
    const T sentinel = T(12345);
    for (size_t i = 0; i < c0.size(); ++i)
        c0[i] = (int64_t(i) % ldc >= c.n) ? sentinel
                : c.accumulate ? value<T>(i, 4) : std::numeric_limits<T>::quiet_NaN();

    const View va = view_a(c);
    const int64_t rs_b = c.trans_b ? 1 : c.n, cs_b = c.trans_b ? c.k : 1;
    const T* bias_p = c.bias ? bias.data() : nullptr;

    std::vector<T> want = c0;
    matgrad::reference::gemm_strided(c.m, c.n, c.k, a.data() + va.offset, va.rs, va.cs, b.data(),
                                     rs_b, cs_b, want.data(), ldc, c.accumulate);
    for (int64_t i = 0; i < c.m; ++i)
        for (int64_t j = 0; j < c.n; ++j) {
            T& w = want[i * ldc + j];
            if (bias_p) w += bias_p[j];
            if (c.relu && w < 0) w = 0;
        }

    int failures = 0;
    static const char* const kPaths[] = {"small",      "packed",     "skinny",
                                         "skinny, A packed", "skinny, A in place", "streamed B",
                                         "row",        "transposed rows"};
    // The row paths (gemm_row.cpp) take one row of C: gemm_row a row-major B,
    // gemm_row_dots a transposed one. The skinny path runs as this CPU's policy
    // says and with A forced each way, so both are checked on any CPU. The
    // streamed-B path takes a row-major B only; it gets a copy of B starting
    // (m + k) elements past a cache line (mod a line), as its blocks follow B's lines.
    // The transposed-rows path takes a transposed B only (its stored rows read in place).
    std::vector<T> b_shifted(b.size() + 64);
    const int64_t line = 64 / int64_t(sizeof(T));
    const auto base = reinterpret_cast<uintptr_t>(b_shifted.data());
    T* const b_line = b_shifted.data() + ((64 - base % 64) % 64) / sizeof(T);  // on a line
    T* const b_off = b_line + (c.m + c.k) % line;
    std::copy(b.begin(), b.end(), b_off);
    for (int path = 0; path < 8; ++path) {
        if (path == 5 && c.trans_b) continue;
        if (path == 6 && c.m != 1) continue;
        if (path == 7 && !c.trans_b) continue;
        std::vector<T> got = c0;
        const T* a0 = a.data() + va.offset;
        if (path == 0)
            gemm_small<T>(c.m, c.n, c.k, a0, va.rs, va.cs, b.data(), rs_b, cs_b, got.data(), ldc,
                          c.accumulate, bias_p, c.relu);
        else if (path == 1)
            gemm_packed<T>(c.m, c.n, c.k, a0, va.rs, va.cs, b.data(), rs_b, cs_b, got.data(), ldc,
                           c.accumulate, bias_p, c.relu);
        else if (path >= 2 && path <= 4)
            gemm_skinny<T>(c.m, c.n, c.k, a0, va.rs, va.cs, b.data(), rs_b, cs_b, got.data(), ldc,
                           c.accumulate, bias_p, c.relu,
                           path == 2   ? matgrad::detail::SkinnyA::by_policy
                           : path == 3 ? matgrad::detail::SkinnyA::packed
                                       : matgrad::detail::SkinnyA::in_place);
        else if (path == 5)
            gemm_streamed_b<T>(c.m, c.n, c.k, a0, va.rs, va.cs, b_off, rs_b, got.data(), ldc,
                               c.accumulate, bias_p, c.relu);
        else if (path == 7)
            gemm_transposed_rows<T>(c.m, c.n, c.k, a0, va.rs, va.cs, b.data(), cs_b, got.data(),
                                    ldc, c.accumulate, bias_p, c.relu);
        else if (!c.trans_b)
            gemm_row<T>(c.n, c.k, a0, va.cs, b.data(), rs_b, got.data(), c.accumulate, bias_p, c.relu);
        else
            gemm_row_dots<T>(c.n, c.k, a0, va.cs, b.data(), cs_b, got.data(), c.accumulate, bias_p,
                             c.relu);
        for (size_t i = 0; i < got.size(); ++i) {
            // Inputs are multiples of 1/8 and k is small: every path is exact
            // up to the order of additions, so the tolerance is tight.
            const T tol = T(1e-5) * T(c.k + 1);
            if (!(std::fabs(got[i] - want[i]) <= tol)) {
                if (failures < 5)
                    std::printf("FAIL %s %s %s m=%lld n=%lld k=%lld ta=%d tb=%d neg=%d acc=%d bias=%d "
                                "relu=%d at %zu: got %g want %g\n",
                                isa, sizeof(T) == 4 ? "f32" : "f64", kPaths[path],
                                (long long)c.m, (long long)c.n, (long long)c.k, c.trans_a, c.trans_b,
                                c.negative_rows_a, c.accumulate, c.bias, c.relu, i, double(got[i]),
                                double(want[i]));
                ++failures;
                break;
            }
        }
    }
    return failures;
}

// The kernel set's vector pack of a row-major B (pack_b_rows) writes exactly what
// the portable pack_b writes, padding included: whole and partial row groups, a
// right edge narrower than a panel, and an nr other than the tile's.
template <class T>
int check_pack_b_rows(const matgrad::detail::TypedKernels<T>& kern, const char* isa) {
    int failures = 0;
    const int tile_nr = kern.blocking.nr;
    for (int nr : {tile_nr, 5})
        for (int64_t depth : {1, 7, 8, 9, 17})
            for (int64_t cols : {int64_t(1), int64_t(nr - 1), int64_t(nr), int64_t(3 * nr + 2)}) {
                if (cols < 1) continue;
                const int64_t rs = cols + 3;  // rows wider than the block
                std::vector<T> b(depth * rs);
                for (size_t i = 0; i < b.size(); ++i) b[i] = value<T>(int64_t(i), 3);
                const int64_t size = (cols + nr - 1) / nr * nr * depth;
                std::vector<T> want(size, T(-99)), got(size, T(-77));
                matgrad::detail::pack_b(depth, cols, b.data(), rs, 1, nr, want.data());
                kern.pack_b_rows(depth, cols, b.data(), rs, nr, got.data());
                if (want != got) {
                    std::printf("FAIL pack_b_rows %s %s nr=%d depth=%lld cols=%lld\n", isa,
                                sizeof(T) == 4 ? "f32" : "f64", nr, (long long)depth, (long long)cols);
                    ++failures;
                }
            }
    return failures;
}

// pack_a's layout (pack.hpp), against the scalar definition, for the kernel set's
// mr and its a_copies and for copies of 1, 2, 3 and 4 (3: pack_a's general spreading
// loop, which no kernel set takes): row-major A (through the kernel
// set's pack_a_rows where it has one), transposed A, a general stride and a negative
// row stride; rows off the panel and whole panels; nothing written past the area.
// The SSE2 baseline packs each value once per lane (kernels/baseline.cpp); the
// other kernel sets once.
template <class T>
int check_pack_a(const matgrad::detail::TypedKernels<T>& kern, const char* isa) {
    int failures = 0;
    const int mr = kern.blocking.mr;
    const int want_copies =
#if defined(__x86_64__) || defined(_M_X64) || defined(__SSE2__)
        std::string(isa) == "baseline" ? int(16 / sizeof(T)) : 1;
#else
        1;
#endif
    if (kern.blocking.a_copies != want_copies) {
        std::printf("FAIL %s %s a_copies %d, want %d\n", isa, sizeof(T) == 4 ? "f32" : "f64",
                    kern.blocking.a_copies, want_copies);
        ++failures;
    }
    for (int copies : {1, 2, 3, 4, kern.blocking.a_copies})
        for (int64_t rows : {int64_t(1), int64_t(mr), int64_t(mr + 1), int64_t(3 * mr - 1)})
            for (int64_t depth : {1, 3, 17})
                for (int layout = 0; layout < 4; ++layout) {
                    // op(A)(i, p) = origin[i*rs + p*cs]. 0: row-major, 1: transposed,
                    // 2: row-major with the rows in reverse (rs < 0), 3: every other column.
                    const int64_t ld = (layout == 1 ? rows : layout == 3 ? 2 * depth : depth) + 2;
                    const int64_t rs = layout == 1 ? 1 : layout == 2 ? -ld : ld;
                    const int64_t cs = layout == 1 ? ld : layout == 3 ? 2 : 1;
                    std::vector<T> a((layout == 1 ? depth : rows) * ld);
                    for (size_t i = 0; i < a.size(); ++i) a[i] = value<T>(int64_t(i), 4);
                    const T* origin = a.data() + (layout == 2 ? (rows - 1) * ld : 0);
                    const int64_t panels = (rows + mr - 1) / mr, size = panels * mr * depth * copies;
                    std::vector<T> got(size + 8, T(-77));
                    matgrad::detail::pack_a(rows, depth, origin, rs, cs, mr, copies, got.data(),
                                            kern.pack_a_rows);
                    bool ok = true;
                    for (int64_t q = 0; q < panels; ++q)
                        for (int64_t p = 0; p < depth; ++p)
                            for (int r = 0; r < mr; ++r) {
                                const int64_t i = q * mr + r;
                                const T want = i < rows ? origin[i * rs + p * cs] : T(0);
                                for (int c = 0; c < copies; ++c)
                                    ok = ok && got[(q * mr * depth + p * mr + r) * copies + c] == want;
                            }
                    for (int64_t i = size; i < size + 8; ++i) ok = ok && got[i] == T(-77);
                    if (!ok) {
                        std::printf("FAIL pack_a %s %s mr=%d copies=%d rows=%lld depth=%lld layout=%d\n", isa,
                                    sizeof(T) == 4 ? "f32" : "f64", mr, copies, (long long)rows,
                                    (long long)depth, layout);
                        ++failures;
                    }
                }
    return failures;
}

// The streamed-B path where its blocks follow B's cache lines: rows a whole number
// of lines apart and B at every offset within a line (a narrow first block), or
// rows off the lines; blocks of 256 bytes (more than one span of blocks on each of
// two threads), of 384 (300 asked: rounded up) and of the width derived from this
// CPU's L1d, which must give the same bits; rows wider and narrower than a block,
// one narrower than a line with B's rows further apart than its width; 2 and 8
// threads; one K slice and several (K = 1031, accumulating into C), and the
// epilogue. Against the scalar reference.
template <class T>
int check_streamed_b_blocks(const char* isa) {
    int failures = 0;
    const int previous_threads = matgrad::get_num_threads();
    const int64_t line = 64 / int64_t(sizeof(T));
    const int64_t wide = 72 * line;  // 4608 bytes of f32: 18 blocks of 256
    struct Rows {
        int64_t n, rs;  // columns, and the distance between B's rows
    };
    const Rows kRows[] = {{wide, wide},
                          {wide - 3, wide - 3},
                          {24 * line, 24 * line},
                          {24 * line + 3, 24 * line + 3},
                          {2 * line, 2 * line},
                          {3 * line + 5, 3 * line + 5},
                          {5, 4 * line},  // narrower than a line, and than B's first head
                          {line + 3, 4 * line}};
    for (int threads : {2, 8}) {
        matgrad::set_num_threads(threads);
        for (const Rows& rows : kRows)
            for (int64_t k : {int64_t(13), int64_t(1031)}) {
                const int64_t n = rows.n, rs_b = rows.rs;
                if (threads == 8 && (k < 100 || n > 24 * line + 3)) continue;
                for (int64_t offset = 0; offset < line;
                     offset += rs_b % line != 0 ? line : k > 100 ? 5 : 1) {
                    const int64_t m = 3 + offset % 4;
                    const bool accumulate = k > 100;
                    std::vector<T> a(m * k), storage(k * rs_b + 2 * line), bias(n);
                    for (size_t i = 0; i < a.size(); ++i) a[i] = value<T>(int64_t(i), 1);
                    for (size_t i = 0; i < bias.size(); ++i) bias[i] = value<T>(int64_t(i), 3);
                    const auto base = reinterpret_cast<uintptr_t>(storage.data());
                    T* const b = storage.data() + ((64 - base % 64) % 64) / sizeof(T) + offset;
                    for (int64_t i = 0; i < k * rs_b; ++i) b[i] = value<T>(i, 2);
                    const T unset = std::numeric_limits<T>::quiet_NaN();
                    std::vector<T> start(m * n), first;
                    for (int64_t i = 0; i < m * n; ++i)
                        start[i] = accumulate ? value<T>(i, 4) : unset;
                    std::vector<T> want = start;
                    matgrad::reference::gemm_strided(m, n, k, a.data(), k, 1, b, rs_b, 1,
                                                     want.data(), n, accumulate);
                    add_bias_relu(want, m, n, bias);
                    for (int64_t block_bytes : {int64_t(256), int64_t(300), int64_t(0)}) {
                        std::vector<T> got = start;
                        gemm_streamed_b<T>(m, n, k, a.data(), k, 1, b, rs_b, got.data(), n,
                                           accumulate, bias.data(), true, block_bytes);
                        const T tol = T(1e-5) * T(k + 1);
                        bool ok = true;
                        for (size_t i = 0; i < got.size() && ok; ++i)
                            if (!(std::fabs(got[i] - want[i]) <= tol)) {
                                std::printf("FAIL %s %s streamed B blocks of %lld bytes, %d "
                                            "threads, m=%lld n=%lld rs_b=%lld k=%lld "
                                            "offset=%lld at %zu: got %g want %g\n",
                                            isa, sizeof(T) == 4 ? "f32" : "f64",
                                            (long long)block_bytes, threads, (long long)m,
                                            (long long)n, (long long)rs_b, (long long)k,
                                            (long long)offset, i, double(got[i]),
                                            double(want[i]));
                                ok = false;
                            }
                        if (ok && !first.empty() && got != first) {
                            std::printf("FAIL %s %s streamed B: blocks of %lld bytes give other "
                                        "bits than 256 (m=%lld n=%lld k=%lld offset=%lld)\n",
                                        isa, sizeof(T) == 4 ? "f32" : "f64", (long long)block_bytes,
                                        (long long)m, (long long)n, (long long)k,
                                        (long long)offset);
                            ok = false;
                        }
                        if (first.empty()) first = got;
                        failures += ok ? 0 : 1;
                    }
                }
            }
    }
    matgrad::set_num_threads(previous_threads);
    return failures;
}

// The transposed-rows path with several panels of A's rows on every kernel set (33 and
// 64 rows: two panels of 32 on AVX-512), several K slices (K = 1031), B's stored rows
// at a positive and a negative stride, with and without accumulating into C, and the
// epilogue; all of K in one span, and spans of one slice (a budget of 1 byte), their
// sums kept for all of a thread's groups or for one group at a time (a sums budget
// of 1 byte: a chunk per group). Against the scalar reference.
template <class T>
int check_transposed_rows(const char* isa) {
    int failures = 0;
    static constexpr size_t kRows[] = {33, 64}, kCols[] = {13, 50}, kDepth = 1031;
    for (size_t m_count : kRows)
        for (size_t n_count : kCols)
            for (int sign : {1, -1})
                for (bool accumulate : {false, true})
                    for (int budgets : {0, 1, 2}) {
                    // (packed Aᵀ, sums): one span; spans of a slice; and in chunks of a group
                    const int64_t budget = budgets > 0 ? 1 : 0, sums_budget = budgets > 1 ? 1 : 0;
                    const int64_t m = int64_t(m_count), n = int64_t(n_count), k = int64_t(kDepth);
                    std::vector<T> a(m_count * kDepth), b(n_count * kDepth), bias(n_count);
                    for (size_t i = 0; i < a.size(); ++i) a[i] = value<T>(int64_t(i), 1);
                    for (size_t i = 0; i < b.size(); ++i) b[i] = value<T>(int64_t(i), 2);
                    for (size_t i = 0; i < bias.size(); ++i) bias[i] = value<T>(int64_t(i), 3);
                    // op(B)(p, j) = b0[p + j·cs_b]: B's rows in order, or from the last one back.
                    const T* b0 = sign > 0 ? b.data() : b.data() + (n - 1) * k;
                    const int64_t cs_b = sign * k;
                    std::vector<T> want(m_count * n_count), got(m_count * n_count);
                    for (int64_t i = 0; i < m * n; ++i)
                        want[i] = got[i] =
                            accumulate ? value<T>(i, 4) : std::numeric_limits<T>::quiet_NaN();
                    matgrad::reference::gemm_strided(m, n, k, a.data(), k, 1, b0, 1, cs_b,
                                                     want.data(), n, accumulate);
                    add_bias_relu(want, m, n, bias);
                    gemm_transposed_rows<T>(m, n, k, a.data(), k, 1, b0, cs_b, got.data(), n,
                                            accumulate, bias.data(), true, budget, sums_budget);
                    const T tol = T(1e-5) * T(k + 1);
                    for (size_t i = 0; i < got.size(); ++i)
                        if (!(std::fabs(got[i] - want[i]) <= tol)) {
                            std::printf("FAIL %s %s transposed rows m=%lld n=%lld cs_b=%lld acc=%d "
                                        "budget=%lld sums=%lld at %zu: got %g want %g\n",
                                        isa, sizeof(T) == 4 ? "f32" : "f64", (long long)m,
                                        (long long)n, (long long)cs_b, accumulate,
                                        (long long)budget, (long long)sums_budget, i,
                                        double(got[i]), double(want[i]));
                            ++failures;
                            break;
                        }
                }
    return failures;
}

// Spans of K give the same bits as one span: A stored transposed (rs_a = 1), C with a
// row stride wider than its rows, added into and written, values that round (so a
// different order of additions would show), spans of two K slices against all of K in
// one span, their sums kept for all of a thread's groups and in chunks of two groups
// (7 groups: a thread's last chunk may hold one).
template <class T>
int check_transposed_rows_spans_bits(const char* isa) {
    // The kernel set in use (its blocking derived from this CPU's caches), as the path sees it.
    const matgrad::detail::TypedKernels<T>& kern = matgrad::detail::active_kernels().get<T>();
    // K = 1290: 4 to 7 slices on the x86 sets, so a span after the first holds two.
    const int64_t m = 33, n = 40, k = 1290, ldc = n + 3;
    const int64_t width = kern.transposed_rows_width, kc = matgrad::detail::equal_k_slices(kern.blocking, k);
    const int64_t panels = (m + width - 1) / width;
    const int64_t two_slices = panels * width * int64_t(sizeof(T)) * 2 * kc;
    const int64_t two_groups =
        2 * panels * matgrad::detail::kTransposedRowsGroup * width * int64_t(sizeof(T));
    std::vector<T> at(m * k), b(n * k), c0(m * ldc), bias(n);
    for (size_t i = 0; i < at.size(); ++i) at[i] = T(std::sin(0.37 * double(i)));
    for (size_t i = 0; i < b.size(); ++i) b[i] = T(std::cos(0.11 * double(i)));
    for (size_t i = 0; i < c0.size(); ++i) c0[i] = T(std::sin(1.3 * double(i)));
    for (size_t i = 0; i < bias.size(); ++i) bias[i] = T(0.25 * double(i) - 1.0);
    // op(A)(i, p) = at[p·m + i]; op(B)(p, j) = b[j·k + p].
    int failures = 0;
    for (bool accumulate : {true, false}) {
        std::vector<T> one = c0, spans = c0, chunks = c0;
        gemm_transposed_rows<T>(m, n, k, at.data(), 1, m, b.data(), k, one.data(), ldc, accumulate,
                                bias.data(), true, 0);
        gemm_transposed_rows<T>(m, n, k, at.data(), 1, m, b.data(), k, spans.data(), ldc,
                                accumulate, bias.data(), true, two_slices);
        gemm_transposed_rows<T>(m, n, k, at.data(), 1, m, b.data(), k, chunks.data(), ldc,
                                accumulate, bias.data(), true, two_slices, two_groups);
        for (const std::vector<T>* got : {&spans, &chunks})
            for (size_t i = 0; i < one.size(); ++i)
                if (!((*got)[i] == one[i]) && !(one[i] != one[i] && (*got)[i] != (*got)[i])) {
                    std::printf("FAIL %s %s transposed rows: spans%s differ from one span (acc=%d) "
                                "at %zu: %.17g %.17g\n",
                                isa, sizeof(T) == 4 ? "f32" : "f64",
                                got == &chunks ? " in chunks of two groups" : "", accumulate, i,
                                double((*got)[i]), double(one[i]));
                    ++failures;
                    break;
                }
    }
    return failures;
}

// matgrad::gemm_path, the public name of gemm_fused's choice, on the paths every
// kernel set takes by size alone (the Python tests check the tuned few-row paths).
int check_gemm_path_names(const char* isa) {
    int failures = 0;
    auto expect = [&](const char* got, const char* want, const char* what) {
        if (std::string(got) != want) {
            std::printf("FAIL %s gemm_path %s: %s, want %s\n", isa, what, got, want);
            ++failures;
        }
    };
    for (bool f64 : {false, true}) {
        expect(matgrad::gemm_path(3, 4, 0, 1, 1, 4, 1, f64), "empty", "k = 0");
        expect(matgrad::gemm_path(8, 8, 8, 8, 1, 8, 1, f64), "small", "8³");
        expect(matgrad::gemm_path(1500, 61, 400, 400, 1, 61, 1, f64), "narrow", "1500×61×400");
        expect(matgrad::gemm_path(1, 3000, 700, 700, 1, 3000, 1, f64), "row", "one row");
        expect(matgrad::gemm_path(1, 3000, 700, 700, 1, 1, 700, f64), "row_dots", "one row, Bᵀ");
        expect(matgrad::gemm_path(1024, 1024, 1024, 1024, 1, 1024, 1, f64), "packed", "1024³");
    }
    return failures;
}

}  // namespace

int main(int argc, char** argv) {
    // --emulated (ctest under qemu, scripts/test-aarch64.sh): the largest sizes
    // are cut to what still crosses every block (nc <= 384, kc <= 384 on the
    // kernel sets with such a CPU), so the run fits an emulator's speed.
    const bool emulated = argc > 1 && std::string(argv[1]) == "--emulated";
    // Bottom tiles of 1, 4, 5, 11 rows and whole ones on 12- and 6-row tiles; 8 and 9
    // rows: two whole groups of four rows and one row past them in the direct tiles
    // that reach A by groups (direct_tile_row_groups).
    const int64_t ms[] = {1, 5, 8, 9, 12, 16, 23};
    // 2049: past one column block; 1031: several K slices, an odd remainder. 2, 3, 6, 10:
    // right-edge tiles of every vector count, partial and full, on the 8- and 12-wide tiles;
    // 20, 24, 48: 5 vectors and whole tiles on the baseline f32's 24-wide one.
    const int64_t ns[] = {1,  2,  3,  6,  8,  10, 12, 16, 20,
                          24, 31, 32, 33, 48, 64, 65, emulated ? 401 : 2049};
    const int64_t ks[] = {1, 7, 64, 385, emulated ? 833 : 1031};
    int failures = 0, cases = 0;
    for (const char* isa : {"baseline", "avx2", "avx512", "neon"}) {
        if (!matgrad::isa_available(isa)) continue;
        matgrad::set_isa(isa);
        const matgrad::detail::KernelTable& table = matgrad::detail::kernels_named(isa);
        failures += check_pack_b_rows(table.f32, isa) + check_pack_b_rows(table.f64, isa);
        failures += check_pack_a(table.f32, isa) + check_pack_a(table.f64, isa);
        failures += check_streamed_b_blocks<float>(isa) + check_streamed_b_blocks<double>(isa);
        failures += check_transposed_rows<float>(isa) + check_transposed_rows<double>(isa);
        failures += check_transposed_rows_spans_bits<float>(isa) +
                    check_transposed_rows_spans_bits<double>(isa);
        failures += check_gemm_path_names(isa);
        for (int64_t m : ms)
            for (int64_t n : ns)
                for (int64_t k : ks)
                    for (int flags = 0; flags < 16; ++flags) {
                        const bool ta = flags & 1, tb = flags & 2, acc = flags & 4, epi = flags & 8;
                        const Case c{m, n, k, ta, tb, /*negative_rows_a=*/(m + n + k) % 3 == 0,
                                     acc, epi, epi && (n % 2 == 1)};
                        failures += run_case<float>(c, isa) + run_case<double>(c, isa);
                        cases += 2;
                    }
    }
    std::printf("%d cases, %d failures\n", cases, failures);
    return failures == 0 ? 0 : 1;
}
