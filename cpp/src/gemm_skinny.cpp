// Skinny products: few rows of C against a large B, such as the lecture's
// dL/dx = dL/dy·wᵀ with a batch of 64 (64×4096 · 4096×4096). gemm_fused sends a
// transposed B here, and a row-major B only for a handful of rows on kernel sets
// whose tiles read 128 bytes of each B row (blocking.hpp, kSkinnyMaxRows). conv.cpp
// calls it directly for its per-image products whose B was just written and sits in
// cache (forward_reads_cols_in_place, dw_transposed_for there): up to 64 rows, or
// K = c·kh·kw rows against one panel of filters. Each
// element of B is used only m times, so packing B in large blocks, a separate
// pass over all of it before the tiles run, costs a large share of the time.
// Here B goes panel by panel, and the next panel streams in from memory while
// the current one is computed:
//
//   threads split N, in whole nr-column panels (no shared state, no barriers)
//   for pc in K by kc:                       A slice (m×kc) stays in L2
//     row-major A, two or more panels for every thread: the slice packed in
//       mr-row panels
//     for each of this thread's B panels:    kc×nr of op(B)
//       row-major B: read in place;  wᵀ (or a narrow right edge): packed, one panel (L1)
//       for each mr-row panel of C:
//         direct kernel: C tile (+)= A[rows, pc:pc+kc] · B[pc:pc+kc, cols]
//           (the first tile prefetches the next panel's source)
//         or, when A and the panel are both packed, the packed tile, all of them
//           sharing out the next panel's source between them
//
// C tiles accumulate across K slices (C is m×n: small, it stays in cache); the
// bias/ReLU epilogue runs on the last slice. K = 0 (and empty C) go to gemm_fused,
// which handles them without coming back here.
#include <algorithm>
#include <cstdint>

#include "aligned_buffer.hpp"
#include "blocking.hpp"
#include "gemm_internal.hpp"
#include "kernels/kernel_table.hpp"
#include "matgrad/matgrad.hpp"
#include "pack.hpp"
#include "threads.hpp"

namespace matgrad::detail {
namespace {

int64_t lines_for(int64_t bytes) { return (bytes + 63) / 64; }

// The memory op(B)[p0:p0+depth, j0:j0+cols] comes from, as runs of cache lines,
// counted from the line each run starts in (the prefetcher rounds a run's start
// down to its line).
// - Rows (a row-major op(B)): the tiles read them in place (LineStream::into_l1),
//   so every line a row's cols touch is fetched, one more than they fill where the
//   row starts off a line (numpy's large arrays start 16 bytes in). With a stride
//   off the line size each row is given the most lines any row can touch.
// - Columns (wᵀ, packed panel by panel): the lines the run's bytes fill, from the
//   line it starts in. Its last line, where the run starts off one, is left to the
//   pack: fetching it too made the lecture's dL/dx 3-4% slower on AVX-512
//   (docs/tuning-log-xeon-167.md, "Eighth session").
template <class T>
LineStream source_of(const T* b, int64_t rs_b, int64_t cs_b, int64_t p0, int64_t depth, int64_t j0,
                     int64_t cols, bool read_in_place) {
    const char* base = reinterpret_cast<const char*>(b + p0 * rs_b + j0 * cs_b);
    const int64_t item = sizeof(T);
    if (cs_b != 1) return LineStream{base, cs_b * item, lines_for(depth * item), cols, false};  // rs_b == 1
    const int64_t stride = rs_b * item;
    const int64_t offset = stride % 64 == 0 ? static_cast<int64_t>(reinterpret_cast<uintptr_t>(base) % 64) : 63;
    return LineStream{base, stride, lines_for(offset + cols * item), depth, read_in_place};
}

}  // namespace

template <class T>
void gemm_skinny(int64_t m, int64_t n, int64_t k, const T* a, int64_t rs_a, int64_t cs_a,
                 const T* b, int64_t rs_b, int64_t cs_b, T* c, int64_t ldc, bool accumulate,
                 const T* bias, bool relu, SkinnyA a_mode) {
    if (m <= 0 || n <= 0 || k <= 0)  // an empty C or an empty sum: C = relu((C or 0) + bias)
        return gemm_fused(m, n, k, a, rs_a, cs_a, b, rs_b, cs_b, c, ldc, accumulate, bias, relu);
    const TypedKernels<T>& kern = active_kernels().get<T>();
    const int mr = kern.blocking.mr, nr = kern.blocking.nr;
    const int64_t kc = equal_k_slices(kern.blocking, k);
    const int64_t panels = (n + nr - 1) / nr;
    const int threads =
        static_cast<int>(std::min<int64_t>(m * n * k >= kParallelMinMacs ? max_threads() : 1, panels));
    const DirectKernel<T> kernel = kern.direct_kernel;
    const StreamingMicroKernel<T> streaming_kernel = kern.streaming_microkernel;
    const bool in_place = cs_b == 1;  // row-major op(B): its rows are the kernel's B rows

    // A row-major A slice (m × kc, a few tens of KiB) is packed once per K slice into
    // mr-row panels where each thread reads it for two panels or more
    // (blocking.hpp, skinny_packs_a); otherwise the tiles read it in place.
    const bool pack_a_slices =
        rs_a != 1 && (a_mode == SkinnyA::by_policy ? skinny_packs_a(panels, threads)
                                                    : a_mode == SkinnyA::packed);
    const int64_t a_rows = (m + mr - 1) / mr * mr;

    // One packed B panel (kc × nr) and, when packed, one A slice per team member,
    // allocated here so that nothing can throw inside the team.
    const int64_t panel_elems = (std::min(kc, k) * nr + 15) / 16 * 16;  // 64-byte multiples
    const int copies = kern.blocking.a_copies;  // of each packed value (pack.hpp)
    const int64_t slice_elems = pack_a_slices ? (std::min(kc, k) * a_rows * copies + 15) / 16 * 16 : 0;
    thread_local AlignedBuffer scratch;
    T* const panel_buffers =
        static_cast<T*>(scratch.reserve(sizeof(T) * (panel_elems + slice_elems) * threads));

    auto body = [&](int tid, int team) {
        const int64_t first = panels * tid / team, end = panels * (tid + 1) / team;
        T* const packed = panel_buffers + (panel_elems + slice_elems) * tid;
        T* const slice = packed + panel_elems;
        for (int64_t pc = 0; pc < k; pc += kc) {
            const int64_t kb = std::min(kc, k - pc);
            const bool acc = accumulate || pc > 0, last = pc + kb >= k;
            // Tile i's rows of op(A)[:, pc:pc+kb], as the direct kernel reads them.
            const T* a_tile = a + pc * cs_a;
            int64_t a_tile_step = mr * rs_a, a_rs = rs_a, a_cs = cs_a;
            if (pack_a_slices && first < end) {
                pack_a(m, kb, a + pc * cs_a, rs_a, cs_a, mr, copies, slice, kern.pack_a_rows);
                a_tile = slice;  // the direct kernel reads one of each value's copies
                a_tile_step = mr * kb * copies;
                a_rs = copies;
                a_cs = mr * copies;
            }
            for (int64_t q = first; q < end; ++q) {
                const int64_t j = q * nr;
                const int cols = static_cast<int>(std::min<int64_t>(nr, n - j));
                const T* panel = b + pc * rs_b + j;
                int64_t ldb = rs_b;
                const bool panel_packed = !in_place || cols < nr;
                if (panel_packed) {
                    const T* src = b + pc * rs_b + j * cs_b;
                    pack_b_fastest(kern.pack_b_transposed, kern.pack_b_rows, kb, cols, src, rs_b, cs_b, nr, packed);
                    panel = packed;
                    ldb = nr;
                }
                // The next panel's source, fetched while this one is computed.
                const int64_t next_cols = std::min<int64_t>(nr, n - j - nr);
                const LineStream next = q + 1 < end ? source_of(b, rs_b, cs_b, pc, kb, j + nr, next_cols,
                                                                in_place && next_cols == nr)
                                                    : LineStream{};
                const Epilogue<T> epi{last && bias ? bias + j : nullptr, last && relu};
                // With the A slice and the panel both packed, the operands are laid out as the
                // packed loop nest's are, and every tile takes the packed tile: constant strides,
                // its k loop unrolled, B prefetched ahead. The next panel's stream is shared out
                // over all of them, one line every 4 k steps (more often where the tiles are too
                // few to take it all). Carried by the first tile alone, two lines a k step, it
                // made that tile take 2.7 times as long as each of the others (perf): the misses
                // stall the arithmetic instead of overlapping it. Lecture dL/dx, C++ loop: AVX2 f32
                // -8-12%, f64 -13-15%; AVX-512 f64 -13-15%, f32 -1-9%; the baseline -2-7%
                // (docs/tuning-log-xeon-167.md, "Tenth session"). A panel of one AVX-512 tile
                // fetches only half its stream this way (its rows are 128 bytes, two lines a k
                // step), and the pack reads the rest: measured, that still beat the direct tile's
                // two lines a step at 4 and 8 rows (-8-14%), and lost at 12 (+4-9%).
                if (pack_a_slices && panel_packed) {
                    const int64_t tiles = (m + mr - 1) / mr;
                    LineCursor cursor{next, 0, skinny_stream_step_mask(tiles, kb, next.runs * next.run_lines)};
                    for (int64_t i = 0; i < m; i += mr)
                        streaming_kernel(kb, a_tile + (i / mr) * a_tile_step, panel, c + i * ldc + j, ldc,
                                         static_cast<int>(std::min<int64_t>(mr, m - i)), cols, acc, epi,
                                         &cursor);
                } else {
                    for (int64_t i = 0; i < m; i += mr)
                        kernel(kb, a_tile + (i / mr) * a_tile_step, a_rs, a_cs, panel, ldb,
                               i == 0 ? next : LineStream{}, c + i * ldc + j, ldc,
                               static_cast<int>(std::min<int64_t>(mr, m - i)), cols, acc, epi);
                }
            }
        }
    };
    run_team(threads, body);
}

template void gemm_skinny<float>(int64_t, int64_t, int64_t, const float*, int64_t, int64_t,
                                 const float*, int64_t, int64_t, float*, int64_t, bool,
                                 const float*, bool, SkinnyA);
template void gemm_skinny<double>(int64_t, int64_t, int64_t, const double*, int64_t, int64_t,
                                  const double*, int64_t, int64_t, double*, int64_t, bool,
                                  const double*, bool, SkinnyA);

}  // namespace matgrad::detail
