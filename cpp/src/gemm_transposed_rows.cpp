// Few rows of C against a large Bᵀ stored row-major: the lecture's dL/dx =
// dL/dy·wᵀ (64×4096 · (4096×4096)ᵀ), where op(B)(p, j) = w[j][p]. The skinny path
// packs wᵀ panel by panel, transposing it in registers, a pass in the core that the
// tiles wait for. Here the product is taken the other way round, Cᵀ = w·Aᵀ: w's
// rows are the tile's broadcast operand, read in place along K in the order they
// are stored (the hardware prefetcher follows them), and Aᵀ (a few rows × a span of
// K that fits half the L2) is what is packed (kernels/transposed_rows_impl.inc):
//
//   threads split N (B's stored rows), in groups of kTransposedRowsGroup
//   for each chunk of the thread's groups (all of them where K is one span):
//     for each span of K (whole slices of kc; usually all of K):
//       pack Aᵀ for the span, in panels of 2 vectors of A's rows (once, for one span)
//       for each group of rows of w in the chunk:
//         for each panel of Aᵀ:
//           sums = Cᵀ (accumulating, first span), 0, or the sums of the span before
//           for pc in the span by kc:  sums += w[group, pc:pc+kc] · Aᵀ[pc:pc+kc, panel]
//           after the last span: C[panel rows, group columns] = sumsᵀ, through the epilogue
//
// Each element of C is summed as on the skinny and packed paths: C (when added
// into), then each slice's sum in order, so the results are the same bit for bit,
// whatever the thread count, the spans or the chunks, and the rounding grows with
// kc + K/kc. Which products come here: gemm_fused (a stored Bᵀ past the L2),
// blocking.hpp (kTransposedRowsMaxRows, transposed_rows_fill); the spans and chunks:
// transposed_rows_span and transposed_rows_chunk there. The write-up:
// docs/tuning-log-xeon-167.md, "Twenty-fourth session" to "Twenty-sixth session".
#include <algorithm>
#include <cstdint>

#include "aligned_buffer.hpp"
#include "blocking.hpp"
#include "gemm_internal.hpp"
#include "kernels/kernel_table.hpp"
#include "matgrad/matgrad.hpp"
#include "pack.hpp"
#include "portable.hpp"
#include "threads.hpp"

namespace matgrad::detail {

template <class T>
void gemm_transposed_rows(int64_t m, int64_t n, int64_t k, const T* a, int64_t rs_a, int64_t cs_a,
                          const T* b, int64_t cs_b, T* c, int64_t ldc, bool accumulate,
                          const T* bias, bool relu, int64_t packed_budget,
                          int64_t sums_budget) {
    if (m <= 0 || n <= 0 || k <= 0)  // an empty C or an empty sum: C = relu((C or 0) + bias)
        return gemm_fused(m, n, k, a, rs_a, cs_a, b, int64_t{1}, cs_b, c, ldc, accumulate, bias,
                          relu);
    const TypedKernels<T>& kern = active_kernels().get<T>();
    const int64_t width = kern.transposed_rows_width;  // A's rows per panel of Aᵀ
    const int64_t panels = (m + width - 1) / width;
    const int64_t kc = equal_k_slices(kern.blocking, k);
    constexpr int64_t group = kTransposedRowsGroup;
    const int64_t groups = (n + group - 1) / group;
    const int threads =
        static_cast<int>(std::min<int64_t>(m * n * k >= kParallelMinMacs ? max_threads() : 1,
                                           groups));
    const TransposedRowsTile<T> tile = kern.transposed_rows;
    // K in spans of whole slices whose packed Aᵀ stays within the budget (blocking.hpp).
    if (packed_budget <= 0) packed_budget = transposed_rows_budget(cpu_caches().l2.size);
    const int64_t span = transposed_rows_span(m, width, int64_t(sizeof(T)), k, kc, packed_budget);
    const bool one_span = span >= k;
    // One tile's sums (rows of B × A's rows). With K in several spans each tile keeps
    // its sums in a buffer between spans, for a chunk of groups at a time that fits
    // the sums' budget (Aᵀ is packed again for each chunk; blocking.hpp).
    const int64_t tile_elems = group * width;
    if (sums_budget <= 0) sums_budget = kTransposedRowsSumsBytes;
    const int64_t chunk_groups =
        one_span ? groups
                 : transposed_rows_chunk(panels, tile_elems * int64_t(sizeof(T)), sums_budget);

    // Per team member: Aᵀ packed for one span of K (panels × span × width) and the
    // sums of one tile, or of a chunk's tiles (a team smaller than asked gives a
    // member more groups, never a larger chunk), allocated here so that nothing can
    // throw inside the team.
    const int64_t at_elems = (panels * span * width + 15) / 16 * 16;
    const int64_t chunk_tiles = one_span ? 1 : std::min(chunk_groups, groups) * panels;
    const int64_t sums_elems = (chunk_tiles * tile_elems + 15) / 16 * 16;
    thread_local AlignedBuffer scratch;
    T* const buffers =
        static_cast<T*>(scratch.reserve(sizeof(T) * (at_elems + sums_elems) * threads));

    auto body = [&](int tid, int team) {
        const int64_t first = groups * tid / team, end = groups * (tid + 1) / team;
        if (first >= end) return;
        T* const at = buffers + (at_elems + sums_elems) * tid;
        T* const sums_base = at + at_elems;
        for (int64_t g0 = first; g0 < end; g0 += chunk_groups) {
            const int64_t g1 = std::min(end, g0 + chunk_groups);
            for (int64_t k0 = 0; k0 < k; k0 += span) {
                const int64_t depth = std::min(span, k - k0);
                const bool first_span = k0 == 0, last_span = k0 + depth >= k;
                // Aᵀ as pack_b packs a B: op(B)(p, i) = A(i, k0 + p), panels of `width` of
                // A's rows; with one span, once for all of the thread's groups.
                if (!one_span || g0 == first)
                    pack_b_fastest(kern.pack_b_transposed, kern.pack_b_rows, depth, m,
                                   a + k0 * cs_a, cs_a, rs_a, static_cast<int>(width), at);
                for (int64_t grp = g0; grp < g1; ++grp) {
                    const int64_t j = grp * group;
                    const int rows = static_cast<int>(std::min(group, n - j));
                    // op(B)(k0 + p, j + r) = b_rows[r·cs_b + p]
                    const T* const b_rows = b + j * cs_b + k0;
                    for (int64_t q = 0; q < panels; ++q) {
                        const int64_t i0 = q * width, live = std::min(width, m - i0);
                        const T* const panel = at + q * depth * width;
                        const int64_t tile_index = (grp - g0) * panels + q;  // in the chunk
                        T* const sums = sums_base + (one_span ? 0 : tile_index * tile_elems);
                        // sums[r][v] starts as C[i0 + v][j + r] (the tile is Cᵀ) when C is
                        // added into, as the other paths add each slice into C: the same
                        // sums in the same order.
                        if (first_span && accumulate)
                            for (int r = 0; r < rows; ++r)
                                for (int64_t v = 0; v < width; ++v)
                                    sums[r * width + v] =
                                        v < live ? c[(i0 + v) * ldc + j + r] : T(0);
                        else if (!first_span)  // from a span before: where it went, L2 or L3
                            for (int64_t l = 0; l < tile_elems; l += 64 / int64_t(sizeof(T)))
                                MATGRAD_PREFETCH(sums + l, 1, 3);
                        // The first panel reads the rows from memory: it fetches ahead; the
                        // others find them in cache.
                        for (int64_t pc = 0; pc < depth; pc += kc)
                            tile(std::min(kc, depth - pc), rows, b_rows + pc, cs_b,
                                 panel + pc * width, sums, pc == 0 && first_span && !accumulate,
                                 q == 0);
                        if (!last_span) continue;
                        // C[i0 + v][j + r] = sums[r][v], through the epilogue.
                        for (int64_t v = 0; v < live; ++v) {
                            T* const out = c + (i0 + v) * ldc + j;
                            for (int r = 0; r < rows; ++r) {
                                T t = sums[r * width + v];
                                if (bias) t += bias[j + r];
                                if (relu && t < T(0)) t = T(0);  // keeps NaN, as V::relu
                                out[r] = t;
                            }
                        }
                    }
                }
            }
        }
    };
    run_team(threads, body);
}

template void gemm_transposed_rows<float>(int64_t, int64_t, int64_t, const float*, int64_t,
                                          int64_t, const float*, int64_t, float*, int64_t, bool,
                                          const float*, bool, int64_t, int64_t);
template void gemm_transposed_rows<double>(int64_t, int64_t, int64_t, const double*, int64_t,
                                           int64_t, const double*, int64_t, double*, int64_t, bool,
                                           const double*, bool, int64_t, int64_t);

}  // namespace matgrad::detail
