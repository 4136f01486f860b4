// Few rows of C against a large row-major B, B streamed once through the registers
// and never copied (kernels/streamed_b_impl.inc): y = x·w for a small batch, such as
// 8×4096·4096×4096. The packed path copies each kc×nc block of B before its tiles
// read it; with few rows to share that copy, it is a large part of the product (at
// 64 rows about a fifth on a Sapphire Rapids-class Xeon's AVX2 path:
// docs/tuning-log-xeon-167.md, "Twenty-second session"). Here:
//
//   each thread packs A, all of K, in groups of kStreamedGroupRows k steps
//   threads split N at cache lines of B's first row (where B's rows are whole
//   lines apart); each thread's share goes in blocks as wide as
//   streamed_block_bytes (blocking.hpp) allows
//   for each span of kStreamedSpanBlocks of this thread's blocks:
//     for pc in K by kc (a multiple of the group):
//       for each block of the span:
//         part (rows × block, in L1) = A[:, pc:pc+kc] · B[pc:pc+kc, block]
//         C[:, block] = part (+ C), and on the last slice + bias, ReLU
//
// Each element of C is summed in the same order whatever the thread count (in
// slices of kc, each slice in order), so results are bit-identical for any number
// of threads, and, as on the packed path, the sum of K products is built from
// slices of kc: the rounding error grows with kc + K/kc, not with K.
// Figures and which products come here: blocking.hpp (each set's
// kStreamedMaxRowsF32 / F64, kStreamedGroupRows and streamed_block_bytes); the
// write-ups: docs/tuning-log-xeon-167.md, "Twenty-third session" (the path) and
// "Twenty-eighth session" (blocks sized by the L1d, f64 and AVX-512).
#include <algorithm>
#include <cstdint>

#include "aligned_buffer.hpp"
#include "blocking.hpp"
#include "gemm_internal.hpp"
#include "kernels/kernel_table.hpp"
#include "matgrad/matgrad.hpp"
#include "threads.hpp"

namespace matgrad::detail {
namespace {

// op(A)[0:rows, 0:depth] in groups of G = kStreamedGroupRows k steps:
// dst[(g·rows + r)·G + q] = A(r, g·G + q), zero past depth: the broadcasts of one
// group for all the rows, in the order the block's kernel reads them.
template <class T>
void pack_streamed_a(int64_t rows, int64_t depth, const T* a, int64_t rs_a, int64_t cs_a, T* dst) {
    constexpr int g = kStreamedGroupRows;
    const int64_t groups = (depth + g - 1) / g;
    if (rs_a == 1 && cs_a != 1) {  // Aᵀ stored: walk its rows (A's columns) in order
        for (int64_t grp = 0; grp < groups; ++grp)
            for (int q = 0; q < g; ++q) {
                const int64_t p = grp * g + q;
                T* out = dst + grp * rows * g + q;
                if (p < depth)
                    for (int64_t r = 0; r < rows; ++r) out[r * g] = a[p * cs_a + r];
                else
                    for (int64_t r = 0; r < rows; ++r) out[r * g] = T(0);
            }
        return;
    }
    const int64_t whole = depth / g;
    for (int64_t r = 0; r < rows; ++r) {
        const T* row = a + r * rs_a;
        for (int64_t grp = 0; grp < whole; ++grp) {
            T* out = dst + (grp * rows + r) * g;
            const T* in = row + grp * g * cs_a;
            if (cs_a == 1)
                for (int q = 0; q < g; ++q) out[q] = in[q];
            else
                for (int q = 0; q < g; ++q) out[q] = in[q * cs_a];
        }
        for (int64_t grp = whole; grp < groups; ++grp) {
            T* out = dst + (grp * rows + r) * g;
            for (int q = 0; q < g; ++q) {
                const int64_t p = grp * g + q;
                out[q] = p < depth ? row[p * cs_a] : T(0);
            }
        }
    }
}

}  // namespace

template <class T>
void gemm_streamed_b(int64_t m, int64_t n, int64_t k, const T* a, int64_t rs_a, int64_t cs_a,
                     const T* b, int64_t rs_b, T* c, int64_t ldc, bool accumulate, const T* bias,
                     bool relu, int64_t block_bytes) {
    if (m <= 0 || n <= 0 || k <= 0)  // an empty C or an empty sum: C = relu((C or 0) + bias)
        return gemm_fused(m, n, k, a, rs_a, cs_a, b, rs_b, int64_t{1}, c, ldc, accumulate, bias,
                          relu);
    const TypedKernels<T>& kern = active_kernels().get<T>();
    constexpr int64_t g = kStreamedGroupRows;
    const int64_t kc = (equal_k_slices(kern.blocking, k) + g - 1) / g * g;
    // A whole number of quanta (a forced width too), so that every block is whole
    // chunks (streamed_b_edge writes a whole chunk into part).
    constexpr int64_t quantum = kStreamedBlockQuantum;
    block_bytes = block_bytes > 0 ? (block_bytes + quantum - 1) / quantum * quantum
                                  : streamed_block_bytes(m, cpu_caches().l1d.size);
    const int64_t block_cols = block_bytes / int64_t(sizeof(T));
    // Where B's rows are a whole number of lines apart, blocks start on a cache line
    // of B's first row (numpy's large arrays start 16 bytes into one), so that each
    // chunk of a block's rows is whole lines: the first `head` columns, before B's
    // first line boundary, are a narrow block of their own, and the threads' shares
    // of N start on lines. Otherwise shares start at whole lines' worth of columns
    // from column 0. Lecture y, AVX2, an early build: w 16 bytes into a line, blocks
    // from column 0, 17.3 ms; w on a line 13.1.
    constexpr int64_t line = 64 / int64_t(sizeof(T));
    const auto address = reinterpret_cast<uintptr_t>(b);
    const bool rows_on_lines = (rs_b * int64_t(sizeof(T))) % 64 == 0 && address % sizeof(T) == 0;
    const int64_t head = rows_on_lines ? int64_t((64 - address % 64) % 64 / sizeof(T)) : 0;
    const int64_t row_bytes = n * int64_t(sizeof(T));
    const int threads = static_cast<int>(std::min<int64_t>(
        m * n * k >= kParallelMinMacs ? max_threads() : 1,
        std::max<int64_t>(1, row_bytes / kStreamedMinBlockBytes)));
    const StreamedBBlock<T> block_kernel = kern.streamed_b;

    // Per team member: A packed for all of K (m × K) and the block of C (m ×
    // block_cols), allocated here so that nothing can throw inside the team.
    const int64_t groups = (k + g - 1) / g;
    const int64_t a_elems = (m * groups * g + 15) / 16 * 16;
    const int64_t part_elems = (m * block_cols + 15) / 16 * 16;
    thread_local AlignedBuffer scratch;
    T* const buffers =
        static_cast<T*>(scratch.reserve(sizeof(T) * (a_elems + part_elems) * threads));

    auto body = [&](int tid, int team) {
        // This thread's columns [c0, c1): an equal share, its edges moved to the
        // nearest of head + a whole number of lines (or kept at 0 and n).
        auto edge = [&](int t) -> int64_t {
            if (t == 0 || t == team) return t == 0 ? 0 : n;
            const int64_t lines = (n * t / team - head + line / 2) / line;
            return std::clamp<int64_t>(head + lines * line, 0, n);
        };
        const int64_t c0 = edge(tid), c1 = edge(tid + 1);
        if (c0 >= c1) return;
        // Its blocks: the first ends at B's first line boundary where it starts
        // before one, the others are block_cols wide (the last may be narrower).
        const int64_t first_end = std::min(c1, c0 < head ? head : c0 + block_cols);
        const int64_t blocks = 1 + (c1 - first_end + block_cols - 1) / block_cols;
        auto block_start = [&](int64_t q) {
            return q == 0 ? c0 : first_end + (q - 1) * block_cols;
        };
        auto block_end = [&](int64_t q) {
            return q == 0 ? first_end : std::min(c1, first_end + q * block_cols);
        };
        T* const packed_a = buffers + (a_elems + part_elems) * tid;
        T* const part = packed_a + a_elems;
        pack_streamed_a(m, k, a, rs_a, cs_a, packed_a);
        for (int64_t s0 = 0; s0 < blocks; s0 += kStreamedSpanBlocks) {
            const int64_t s1 = std::min(blocks, s0 + kStreamedSpanBlocks);
            for (int64_t pc = 0; pc < k; pc += kc) {
                const int64_t kb = std::min(kc, k - pc);
                const bool last = pc + kb >= k;
                for (int64_t q = s0; q < s1; ++q) {
                    const int64_t j = block_start(q), cols = block_end(q) - j;
                    // What this thread reads next: the following block, or the span's
                    // first block in the next slice, or the next span's first rows.
                    const T* next = q + 1 < s1 ? b + pc * rs_b + block_start(q + 1)
                                    : !last    ? b + (pc + kb) * rs_b + block_start(s0)
                                    : s1 < blocks ? b + block_start(s1)
                                                  : nullptr;
                    block_kernel(kb, m, packed_a + pc * m, b + pc * rs_b + j, rs_b, cols, next,
                                 part, block_cols, c + j, ldc, accumulate || pc > 0,
                                 Epilogue<T>{last && bias ? bias + j : nullptr, last && relu});
                }
            }
        }
    };
    run_team(threads, body);
}

template void gemm_streamed_b<float>(int64_t, int64_t, int64_t, const float*, int64_t, int64_t,
                                     const float*, int64_t, float*, int64_t, bool, const float*,
                                     bool, int64_t);
template void gemm_streamed_b<double>(int64_t, int64_t, int64_t, const double*, int64_t, int64_t,
                                      const double*, int64_t, double*, int64_t, bool, const double*,
                                      bool, int64_t);

}  // namespace matgrad::detail
