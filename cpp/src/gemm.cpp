// The GEMM loop framework (Goto/BLIS), mirrored for row-major C:
//
//   for ic in M by mc:                    A block (L2/L3)
//     for pc in K by kc:
//       pack A[ic:ic+mc, pc:pc+kc]        each thread its own panels, or the team's shared block
//       for jc in this thread's N range by nc:
//         pack B[pc:pc+kc, jc:jc+nc]      private to the thread (its own L2)
//         for each A micro-panel (mr rows) of this thread's M range:   (stays in L1)
//           for each B micro-panel (nr cols):                          (from L2)
//             micro-kernel: C tile (+)= A panel · B panel
//
// Threads split N (each owns whole columns of C), M, or both (choose_grid); no
// two threads ever write the same C tile, and each element of C is computed by
// the same sequence of operations whatever the thread count, so results are
// bit-identical for any number of threads. Where at most
// kMaxThreadsPerAPanel threads read each A panel, every thread packs the panels
// it reads into its own block and the team never waits; with more, one shared
// block is packed by all, behind a barrier before and after each K slice.
#include <algorithm>

#include "aligned_buffer.hpp"
#include "gemm_internal.hpp"
#include "kernels/kernel_table.hpp"
#include "matgrad/matgrad.hpp"
#include "pack.hpp"
#include "threads.hpp"

namespace matgrad {
namespace detail {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// Contiguous share `part` of `count` items split `parts` ways, in whole items.
void split_range(int64_t count, int parts, int part, int64_t* begin, int64_t* end) {
    const int64_t base = count / parts, extra = count % parts;
    *begin = part * base + std::min<int64_t>(part, extra);
    *end = *begin + base + (part < extra ? 1 : 0);
}

struct ThreadGrid {
    int threads, along_n, along_m;  // threads == along_n * along_m
};

// A panel is packed by each thread that reads it (no barriers) while at most this
// many threads read it, i.e. split N. Sapphire Rapids-class Xeon, f32 AVX-512,
// 2 threads split N, µs, shared block -> own panels (alternated 4-6×): 128×512×784
// 356 -> 337, 128×256×512 137 -> 118, 2048×256×2048 8290 -> 7700, 4096×512×512
// 7040 -> 6630, 256³ 124 -> 115; 1024³, 2048³, 777×1023×513 and 784×512×128 (Aᵀ)
// within ±2%. The barriers and the other core's half of the block cost more than
// packing A twice. Not measured with more than 2 threads, where the duplicated
// packing grows with the threads along N: those keep the shared block.
constexpr int kMaxThreadsPerAPanel = 2;
bool each_packs_own_a(int along_n) { return along_n <= kMaxThreadsPerAPanel; }

// Picks how many threads split N and how many split M: the factorisation whose
// busiest thread does the least work per k step, counting its register tiles
// (mr·nr multiply-adds each) and what it packs (its A rows, or its share of a
// shared A block, and its B columns), one packed element taken as nr
// multiply-adds. The packing term makes the split follow the longer side of C:
// two threads splitting N each pack all of A, splitting M each pack all of B.
// Sapphire Rapids-class Xeon, f32 AVX-512, 2 threads, µs, N split -> M split
// (alternated 5×): 512×256×128 (the MLP's second dL/dw) 104 -> 89, 784×512×128
// (xᵀ·g) 291 -> 261, 2048×256×2048 7080 -> 5900, 4096×512×512 6020 -> 5490, 256³
// 101 -> 92; the other way, 128×512×784 (the MLP's first layer) 316 -> 329 and
// 256×4096×1024 5760 -> 6040, so those keep N; square 1024³ and 2048³ within ±2%.
ThreadGrid choose_grid(int64_t m, int64_t n, int64_t k, const Blocking& bl) {
    int threads = max_threads();
    if (m * n * k < kParallelMinMacs) threads = 1;
    const int64_t m_panels = ceil_div(m, bl.mr), n_panels = ceil_div(n, bl.nr);
    auto cost_of = [&](int along_n, int along_m) {
        const int64_t tiles = ceil_div(n_panels, along_n) * ceil_div(m_panels, along_m);
        const bool own_a = each_packs_own_a(along_n);
        const int64_t a_rows = ceil_div(m_panels, own_a ? along_m : along_n * along_m) * bl.mr;
        const int64_t b_cols = ceil_div(n_panels, along_n) * bl.nr;
        return tiles * bl.mr + a_rows + b_cols;
    };
    ThreadGrid best{1, 1, 1};
    int64_t best_cost = cost_of(1, 1);
    for (int along_n = threads; along_n >= 1; --along_n) {
        if (threads % along_n) continue;
        const int along_m = threads / along_n;
        const int64_t cost = cost_of(along_n, along_m);
        if (cost < best_cost) {
            best = ThreadGrid{threads, along_n, along_m};
            best_cost = cost;
        }
    }
    return best;
}

// K = 0: the product is an empty sum, so C = relu((C or 0) + bias).
template <class T>
void empty_product(int64_t m, int64_t n, T* c, int64_t ldc, bool accumulate, const T* bias,
                   bool relu) {
    for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
            T v = (accumulate ? c[i * ldc + j] : T(0)) + (bias ? bias[j] : T(0));
            c[i * ldc + j] = (relu && v < 0) ? T(0) : v;
        }
}

}  // namespace

template <class T>
GemmPath choose_gemm_path(int64_t m, int64_t n, int64_t k, [[maybe_unused]] int64_t rs_a,
                          int64_t cs_a, int64_t rs_b, int64_t cs_b) {  // no rule reads rs_a yet
    if (m <= 0 || n <= 0 || k <= 0) return GemmPath::empty;
    const TypedKernels<T>& kern = active_kernels().get<T>();
    const int64_t nr = kern.blocking.nr;
    const int64_t panels = ceil_div(n, nr);
    // The small path copies B whole, padded to nr columns, unless it can read
    // it in place: only while that copy stays small (a 1×k·k×1 product would
    // otherwise pad k values to k·nr); and with B in place up to larger products
    // of few rows (blocking.hpp).
    const bool b_in_place = cs_b == 1 && n % nr == 0;
    if (takes_small_path(m, n, k, b_in_place, k * panels * nr)) return GemmPath::small;
    // Narrow products (few columns, many rows) take the same unpacked path, threads
    // splitting the rows: packing A would cost more than the few columns use it.
    // (narrow needs m >= 512, so it never competes with the row or skinny paths.)
    if (n <= kNarrowMaxCols && m >= kNarrowMinRows && cs_a == 1 &&
        (b_in_place || k * panels * nr <= kNarrowMaxCopiedB))
        return GemmPath::narrow;
    if (m == 1 && rs_b == 1) return GemmPath::row_dots;  // wᵀ, or a single column: dot products
    if (m == 1 && cs_b == 1) return GemmPath::row;
    // A row-major B larger than L2 against few rows: streamed through the registers
    // (gemm_streamed_b.cpp), on the kernel sets and dtypes where that won. Not
    // depending on the thread count, so that 1 and 2 threads take the same path.
    const int64_t l2_bytes = cpu_caches().l2.size;
    const int64_t row_bytes = n * int64_t(sizeof(T));
    if (cs_b == 1 &&
        takes_streamed_b(m, kern.streamed_b_max_rows, kern.streamed_b_narrow_max_rows,
                         cpu_caches().l1d.size) &&
        (l2_bytes <= 0 || k * row_bytes > l2_bytes) &&
        row_bytes >= kStreamedMinRowBytes)
        return GemmPath::streamed_b;
    // wᵀ goes skinny only when it is larger than a core's L2, so that it streams from
    // L3 or memory and the skinny path's single pass over it pays (blocking.hpp).
    const bool transposed_b = rs_b == 1 && cs_b != 1 &&
                              (l2_bytes <= 0 || k * n * int64_t(sizeof(T)) > l2_bytes);
    // A large Bᵀ stored row-major against few rows: B's rows read in place as the
    // broadcast operand of Cᵀ = B·Aᵀ (gemm_transposed_rows.cpp), where that won: its
    // panels of A's rows filled (f32; blocking.hpp).
    if (transposed_b && m <= kern.transposed_rows_max_rows &&
        transposed_rows_fill(m, kern.transposed_rows_width, int64_t(sizeof(T))))
        return GemmPath::transposed_rows;
    // The skinny path splits N only: it needs a panel for every thread.
    const int threads = m * n * k >= kParallelMinMacs ? max_threads() : 1;
    const bool in_place_b = cs_b == 1 && m <= kSkinnyInPlaceMaxRows &&
                            nr * int64_t(sizeof(T)) >= kSkinnyInPlaceMinRowBytes;
    if (m <= kSkinnyMaxRows && (transposed_b || in_place_b) && panels >= threads)
        return GemmPath::skinny;
    return GemmPath::packed;
}

const char* gemm_path_name(GemmPath path) {
    switch (path) {
        case GemmPath::empty: return "empty";
        case GemmPath::small: return "small";
        case GemmPath::narrow: return "narrow";
        case GemmPath::row_dots: return "row_dots";
        case GemmPath::row: return "row";
        case GemmPath::streamed_b: return "streamed_b";
        case GemmPath::transposed_rows: return "transposed_rows";
        case GemmPath::skinny: return "skinny";
        case GemmPath::packed: return "packed";
    }
    return "packed";
}

template <class T>
void gemm_fused(int64_t m, int64_t n, int64_t k, const T* a, int64_t rs_a, int64_t cs_a,
                const T* b, int64_t rs_b, int64_t cs_b, T* c, int64_t ldc, bool accumulate,
                const T* bias, bool relu) {
    switch (choose_gemm_path<T>(m, n, k, rs_a, cs_a, rs_b, cs_b)) {
        case GemmPath::empty:
            if (m > 0 && n > 0) empty_product(m, n, c, ldc, accumulate, bias, relu);  // K = 0
            return;
        case GemmPath::small:
        case GemmPath::narrow:
            return gemm_small(m, n, k, a, rs_a, cs_a, b, rs_b, cs_b, c, ldc, accumulate, bias,
                              relu);
        case GemmPath::row_dots:
            return gemm_row_dots(n, k, a, cs_a, b, cs_b, c, accumulate, bias, relu);
        case GemmPath::row:
            return gemm_row(n, k, a, cs_a, b, rs_b, c, accumulate, bias, relu);
        case GemmPath::streamed_b:
            return gemm_streamed_b(m, n, k, a, rs_a, cs_a, b, rs_b, c, ldc, accumulate, bias,
                                   relu);
        case GemmPath::transposed_rows:
            return gemm_transposed_rows(m, n, k, a, rs_a, cs_a, b, cs_b, c, ldc, accumulate, bias,
                                        relu);
        case GemmPath::skinny:
            return gemm_skinny(m, n, k, a, rs_a, cs_a, b, rs_b, cs_b, c, ldc, accumulate, bias,
                               relu);
        case GemmPath::packed:
            break;
    }
    gemm_packed(m, n, k, a, rs_a, cs_a, b, rs_b, cs_b, c, ldc, accumulate, bias, relu);
}

// Each team member packs into a slot of its own: its B block at the slot's start, its
// own A panels at the slot's end. The slots keep the largest size the calling thread
// has asked for (min_slot), so a member packs every product into the lines it packed
// the products before into, still in its core's L2 once the slots have reached their
// size, rather than into lines that move with each product's sizes. Before, the area
// held every member's A panels, then every member's B block, each as large as the
// product needed: in the MLP step (784-512-256-10, batch 128), seven products of five
// shapes, the second core's first-layer B block lay where no other product packs, and
// was cold at every step. Sapphire Rapids-class Xeon, 2 threads, the step alternated
// in one process, old time over new: AVX2 1.017-1.039, AVX-512 1.008
// (docs/tuning-log-xeon-167.md, "Twenty-ninth session").
// Behind the slots, the team's shared A block (3+ threads along N). A solo thread
// (OpenMP gave fewer threads than the grid) packs inside the slots: its B block (nc
// columns) from the start, then, with own A panels, the whole A block.
PackLayout pack_layout(int64_t mc, int64_t nc, int64_t kc, int64_t n, int mr, int nr,
                       int a_copies, int along_n, int along_m, int64_t line_elems,
                       int64_t min_slot) {
    PackLayout l;
    l.threads = along_n * along_m;
    l.own_a = each_packs_own_a(along_n);  // each member packs the A panels it reads
    // A member's own A panels: its share of the block's along the M split (pack.hpp).
    const int64_t a_rows = l.own_a ? ceil_div(ceil_div(mc, mr), along_m) * mr : mc;
    l.a_elems = round_up(a_rows * a_copies * kc, line_elems);
    l.b_elems = round_up(nc * kc, line_elems);
    // A member's B block: nc columns, or its share of N where that is narrower.
    l.b_share = round_up(std::min(nc, ceil_div(ceil_div(n, nr), along_n) * nr) * kc, line_elems);
    l.slot = std::max(min_slot, (l.own_a ? l.a_elems : 0) + l.b_share);
    // A solo thread's B and own-A blocks fit the slots: threads·b_share ≥ b_elems, as the
    // shares cover N and nc ≤ N rounded to nr; its A block is threads·a_elems.
    l.reserve = l.slot * l.threads + (l.own_a ? 0 : l.a_elems);
    return l;
}

template <class T>
void gemm_packed(int64_t m, int64_t n, int64_t k, const T* a, int64_t rs_a, int64_t cs_a,
                 const T* b, int64_t rs_b, int64_t cs_b, T* c, int64_t ldc, bool accumulate,
                 const T* bias, bool relu) {
    const TypedKernels<T>& kern = active_kernels().get<T>();
    const Blocking& bl = kern.blocking;
    const ThreadGrid grid = choose_grid(m, n, k, bl);

    const int64_t mc = std::min(round_up(m, bl.mr), round_up(bl.mc, bl.mr));
    const int64_t kc_max = equal_k_slices(bl, k);  // blocking.hpp
    const int64_t nc = std::min(round_up(n, bl.nr), round_up(bl.nc, bl.nr));
    // The team's packing area: one per calling thread, allocated here so that nothing can
    // throw inside the team. Its slots keep the largest size asked so far (pack_layout).
    thread_local AlignedBuffer scratch;
    thread_local int64_t slot_elems = 0;
    const PackLayout layout = pack_layout(mc, nc, kc_max, n, bl.mr, bl.nr, bl.a_copies,
                                          grid.along_n, grid.along_m, 64 / int64_t(sizeof(T)),
                                          slot_elems);
    slot_elems = layout.slot;
    T* const area = static_cast<T*>(scratch.reserve(sizeof(T) * layout.reserve));
    const MicroKernel<T> kernel = kern.microkernel;

    // The work of one team member. Its barriers run only inside matgrad's own
    // team: a body run directly (team == 1) may be inside the caller's parallel
    // region, where an orphaned barrier would bind to the caller's threads.
    auto body = [&](const int tid, const int team) {
        // The grid was sized for grid.threads; if OpenMP gave fewer (nested
        // regions, thread limits), fall back to one thread doing everything.
        const bool solo = team != grid.threads;
        const int along_n = solo ? 1 : grid.along_n, along_m = solo ? 1 : grid.along_m;
        const int n_part = solo ? 0 : tid % along_n, m_part = solo ? 0 : tid / along_n;
        const bool works = !solo || tid == 0;
        // The layout is a copy: a worker's own thread_local slot_elems would be 0.
        T* const packed_b = area + layout.b_offset(tid, solo);
        T* const packed_a = area + layout.a_offset(tid, solo);
        const bool shared_a = !layout.own_a && !solo;  // 3+ threads along N share one block

        int64_t j_begin, j_end;  // this thread's columns, in whole nr panels
        split_range(ceil_div(n, bl.nr), along_n, n_part, &j_begin, &j_end);
        j_begin *= bl.nr;
        j_end = std::min(j_end * bl.nr, n);

        for (int64_t ic = 0; ic < m; ic += mc) {
            const int64_t mb = std::min(mc, m - ic);
            const int64_t a_panels = ceil_div(mb, bl.mr);
            int64_t p_begin, p_end;  // this thread's A micro-panels
            split_range(a_panels, along_m, m_part, &p_begin, &p_end);

            for (int64_t pc = 0; pc < k; pc += kc_max) {
                const int64_t kb = std::min(kc_max, k - pc);
                const bool acc = accumulate || pc > 0;
                const bool last = pc + kb >= k;  // the epilogue runs as C is final

                // Pack A: this thread's own panels [p_begin, p_end), stored from the start of
                // its area, or its share of the team's block, stored where the block has it.
                int64_t s_begin = p_begin, s_end = p_end;
                if (shared_a) split_range(a_panels, team, tid, &s_begin, &s_end);
                const int64_t first_stored = shared_a ? 0 : p_begin;  // panel q at (q − first_stored)·a_panel
                const int64_t a_panel = bl.mr * bl.a_copies * kb;  // a packed panel's values (pack.hpp)
                if (works && s_end > s_begin) {
                    const int64_t r0 = s_begin * bl.mr;
                    const int64_t rows = std::min(s_end * bl.mr, mb) - r0;
                    pack_a(rows, kb, a + (ic + r0) * rs_a + pc * cs_a, rs_a, cs_a, bl.mr, bl.a_copies,
                           packed_a + (s_begin - first_stored) * a_panel, kern.pack_a_rows);
                }
#if defined(_OPENMP)
                if (shared_a) {
#pragma omp barrier
                }
#endif
                if (works) {
                    for (int64_t jc = j_begin; jc < j_end; jc += nc) {
                        const int64_t nb = std::min(nc, j_end - jc);
                        const T* b_block = b + pc * rs_b + jc * cs_b;
                        pack_b_fastest(kern.pack_b_transposed, kern.pack_b_rows, kb, nb, b_block, rs_b, cs_b, bl.nr,
                                       packed_b);
                        for (int64_t q = p_begin; q < p_end; ++q) {
                            const int64_t i = q * bl.mr;
                            const int rows = static_cast<int>(std::min<int64_t>(bl.mr, mb - i));
                            const T* ap = packed_a + (q - first_stored) * a_panel;
                            T* crow = c + (ic + i) * ldc + jc;
                            for (int64_t j = 0; j < nb; j += bl.nr) {
                                const int cols = static_cast<int>(std::min<int64_t>(bl.nr, nb - j));
                                const Epilogue<T> epi{last && bias ? bias + jc + j : nullptr,
                                                      last && relu};
                                kernel(kb, ap, packed_b + j * kb, crow + j, ldc, rows, cols, acc,
                                       epi);
                            }
                        }
                    }
                }
#if defined(_OPENMP)
                if (shared_a) {  // the block is repacked next
#pragma omp barrier
                }
#endif
            }
        }
    };
    run_team(grid.threads, body);
}

template void gemm_packed<float>(int64_t, int64_t, int64_t, const float*, int64_t, int64_t,
                                 const float*, int64_t, int64_t, float*, int64_t, bool,
                                 const float*, bool);
template void gemm_packed<double>(int64_t, int64_t, int64_t, const double*, int64_t, int64_t,
                                  const double*, int64_t, int64_t, double*, int64_t, bool,
                                  const double*, bool);
template void gemm_fused<float>(int64_t, int64_t, int64_t, const float*, int64_t, int64_t,
                                const float*, int64_t, int64_t, float*, int64_t, bool,
                                const float*, bool);
template void gemm_fused<double>(int64_t, int64_t, int64_t, const double*, int64_t, int64_t,
                                 const double*, int64_t, int64_t, double*, int64_t, bool,
                                 const double*, bool);
template GemmPath choose_gemm_path<float>(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                                          int64_t);
template GemmPath choose_gemm_path<double>(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                                           int64_t);

}  // namespace detail

const char* gemm_path(int64_t m, int64_t n, int64_t k, int64_t rs_a, int64_t cs_a, int64_t rs_b,
                      int64_t cs_b, bool double_precision) {
    return detail::gemm_path_name(
        double_precision ? detail::choose_gemm_path<double>(m, n, k, rs_a, cs_a, rs_b, cs_b)
                         : detail::choose_gemm_path<float>(m, n, k, rs_a, cs_a, rs_b, cs_b));
}

void gemm_strided(int64_t m, int64_t n, int64_t k, const float* a, int64_t rs_a, int64_t cs_a,
                  const float* b, int64_t rs_b, int64_t cs_b, float* c, int64_t ldc,
                  bool accumulate) {
    detail::gemm_fused(m, n, k, a, rs_a, cs_a, b, rs_b, cs_b, c, ldc, accumulate,
                       static_cast<const float*>(nullptr), false);
}

void gemm_strided(int64_t m, int64_t n, int64_t k, const double* a, int64_t rs_a, int64_t cs_a,
                  const double* b, int64_t rs_b, int64_t cs_b, double* c, int64_t ldc,
                  bool accumulate) {
    detail::gemm_fused(m, n, k, a, rs_a, cs_a, b, rs_b, cs_b, c, ldc, accumulate,
                       static_cast<const double*>(nullptr), false);
}

// BLAS-style entry points: op(X) = Xᵀ just swaps the strides.
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a,
          int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, bool accumulate) {
    gemm_strided(m, n, k, a, trans_a ? 1 : lda, trans_a ? lda : 1, b, trans_b ? 1 : ldb,
                 trans_b ? ldb : 1, c, ldc, accumulate);
}

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const double* a,
          int64_t lda, const double* b, int64_t ldb, double* c, int64_t ldc, bool accumulate) {
    gemm_strided(m, n, k, a, trans_a ? 1 : lda, trans_a ? lda : 1, b, trans_b ? 1 : ldb,
                 trans_b ? ldb : 1, c, ldc, accumulate);
}

}  // namespace matgrad
