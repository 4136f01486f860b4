// What one instruction-set translation unit exports: its micro-kernels and
// elementwise loops, behind plain function pointers (no templates, no inline
// code shared across ISA units, so the linker cannot mix them up).
#pragma once

#include <cstdint>

#include "../blocking.hpp"
#include "../portable.hpp"

// NEON is part of aarch64: its kernels are built there and nowhere else.
#if defined(__aarch64__) && defined(__ARM_NEON)
#define MATGRAD_HAVE_NEON_KERNELS 1
#endif

namespace matgrad::detail {

// What happens to a C tile as it is written, on the last K slice only:
// C = relu(C + bias), bias indexed by column (the fused linear layer).
template <class T>
struct Epilogue {
    const T* bias;  // this tile's first column's bias, or null
    bool relu;
};

// Computes one register tile C[0:rows, 0:cols] (rows <= mr, cols <= nr):
//   C = epilogue(Ap · Bp (+ C)) over kc steps.
// ap: packed A micro-panel, kc steps of mr values (zero-padded past rows), each
// value stored blocking.a_copies times in a row (pack.hpp).
// bp: packed B micro-panel, kc steps of nr values (zero-padded past cols).
// c: row-major with row stride ldc. accumulate == false: C is written, never read.
template <class T>
using MicroKernel = void (*)(int64_t kc, const T* ap, const T* bp, T* c, int64_t ldc,
                             int rows, int cols, bool accumulate, Epilogue<T> epilogue);

// Cache lines for a micro-kernel to prefetch while it computes, a few per k
// step, in order: `runs` runs of `run_lines` 64-byte lines, `stride` bytes
// apart (the source of the next B panel of a skinny product). Default: none.
// into_l1: the next tiles read these lines themselves (a B read in place), so
// they go into L1; otherwise a pack reads them after all of this panel's tiles,
// and they go into L2 only, where they do not evict the panel being read.
struct LineStream {
    const char* base = nullptr;
    int64_t stride = 0, run_lines = 0, runs = 0;
    bool into_l1 = false;
};

// A LineStream shared out over several tiles in turn (the packed tiles of one
// skinny panel): each tile fetches one line every step_mask + 1 k steps (a power
// of two) and leaves the cursor where it stopped, for the next tile.
struct LineCursor {
    LineStream lines;  // what is left: `runs` counts the current run
    int64_t line = 0;  // the current run's next line
    int64_t step_mask = 3;
};

// The micro-kernel, also fetching lines of `stream` as it computes (see LineCursor).
template <class T>
using StreamingMicroKernel = void (*)(int64_t kc, const T* ap, const T* bp, T* c, int64_t ldc,
                                      int rows, int cols, bool accumulate, Epilogue<T> epilogue,
                                      LineCursor* stream);

// The same tile from unpacked operands (small and skinny products): op(A)(r, p) =
// a[r*rs_a + p*cs_a] for r < rows; op(B)(p, j) = b[p*ldb + j], every one of the
// nr columns of each row readable (zero past `cols`).
template <class T>
using DirectKernel = void (*)(int64_t kc, const T* a, int64_t rs_a, int64_t cs_a, const T* b,
                              int64_t ldb, LineStream prefetch, T* c, int64_t ldc, int rows,
                              int cols, bool accumulate, Epilogue<T> epilogue);

// The packed tile summed over `taps` pairs of operands (the implicit-GEMM
// convolution, conv_implicit.cpp: one pair per kernel offset), all in registers:
//   C = epilogue(Σ_t Σ_{p<depth} A_t(r, p)·B_t(p, j) (+ C)),
// A_t packed as the micro-kernel's A (depth steps of mr values, zero past rows),
// the taps' panels one after another: A_t(r, p) = ap[((t·depth + p)·mr + r)·a_copies]
// (blocking.a_copies, each value stored that many times in a row);
// B_t read in place, B_t(p, j) = b[b_tap[t] + p*ldb + j], every one of the nr
// columns of each row readable.
template <class T>
using TapKernel = void (*)(int64_t depth, int64_t taps, const T* ap, const T* b, int64_t ldb,
                           const int64_t* b_tap, T* c, int64_t ldc, int rows, int cols, bool accumulate,
                           Epilogue<T> epilogue);

// Elementwise loops over a contiguous chunk; `stream` asks for non-temporal stores.
template <class T>
using ReluForwardLoop = void (*)(const T* x, T* y, int64_t n, bool stream);
template <class T>
using ReluBackwardLoop = void (*)(const T* dy, const T* x, T* dx, int64_t n, bool stream);

// Packs op(B)[0:depth, 0:cols] stored transposed, op(B)(p, j) = b[p + j*cs]
// (the wᵀ of dL/dx = dL/dy·wᵀ), into the layout pack_b documents (pack.hpp).
// Optional: null means the portable pack_b does it.
template <class T>
using PackBTransposed = void (*)(int64_t depth, int64_t cols, const T* b, int64_t cs, int nr,
                                 T* dst);

// Packs a row-major op(B)[0:depth, 0:cols], op(B)(p, j) = b[p*rs + j], into the
// layout pack_b documents (pack.hpp), with the ISA's vectors.
template <class T>
using PackBRows = void (*)(int64_t depth, int64_t cols, const T* b, int64_t rs, int nr, T* dst);
// One panel of rows <= mr rows of a row-major A (cs = 1) in pack_a's layout with one
// copy of each value (pack.hpp), dst[p*mr + r] = a[r*rs + p], 0 for r >= rows; pack_a
// spreads it where the kernel set asks for more copies.
template <class T>
using PackARows = void (*)(int64_t depth, const T* a, int64_t rs, int rows, T* dst);

// The inner loop of one row of C against a transposed B (gemm_row_dots,
// row_loops_impl.inc): out[r] = Σ_p x[p]·rows[r*stride + p] for r < count, x and
// each row k long.
template <class T>
using RowDotsLoop = void (*)(int64_t k, const T* x, const T* rows, int64_t stride, int64_t count,
                             T* out);

// The inner loop of one row of C against a row-major B (gemm_row, row_loops_impl.inc):
// acc[j] += Σ_{p<depth} x[p*cs_x]·b[p*rs + j] for j < n. Optional: null means
// gemm_row's own portable loops (the baseline's: faster there, see gemm_row.cpp).
template <class T>
using RowAxpysLoop = void (*)(int64_t n, int64_t depth, const T* x, int64_t cs_x, const T* b,
                              int64_t rs, T* acc);

// One K slice of one column block of C with B streamed through the registers
// (gemm_streamed_b.cpp, streamed_b_impl.inc), for r < rows, j < cols:
//   C[r·ldc + j] = epilogue(Σ_{p<depth} A(r, p)·b[p·rs + j] (+ C[r·ldc + j] if add_c)),
// A packed in groups of G = kStreamedGroupRows k steps (xp[(g·rows + r)·G + q] =
// A(r, g·G + q), zero past depth); part: rows × cols rounded up to whole chunks
// of 2 vectors (ldp at least that), scratch holding the sums between groups.
// next: the block computed after this one (same rs), whose first rows are fetched
// into L2 during this one's last; or null.
template <class T>
using StreamedBBlock = void (*)(int64_t depth, int64_t rows, const T* xp, const T* b, int64_t rs,
                                int64_t cols, const T* next, T* part, int64_t ldp, T* c, int64_t ldc,
                                bool add_c, Epilogue<T> epilogue);

// One tile of Cᵀ for C = A·Bᵀ with Bᵀ stored row-major (gemm_transposed_rows.cpp,
// transposed_rows_impl.inc), over one K slice: for i < rows (1 to
// kTransposedRowsGroup), v < 2 vectors (the panel width, gemm_transposed_rows):
//   acc[i·2W + v] (=, or += unless first) Σ_{p<depth} b_rows[i·ld + p] · at[p·2W + v]
// at: a panel of Aᵀ packed as pack_b packs (nr = 2W); prefetch: fetch the rows ahead.
template <class T>
using TransposedRowsTile = void (*)(int64_t depth, int rows, const T* b_rows, int64_t ld,
                                    const T* at, T* acc, bool first, bool prefetch);

// The machine's limit for this ISA: `iterations` rounds of independent vector
// FMA chains (enough of them to cover the FMA latency on every port). Returns
// the floating-point operations done (2 per lane per FMA); *sink receives a
// value that depends on all of them, so the loop cannot be optimised away.
template <class T>
using PeakLoop = double (*)(int64_t iterations, T* sink);

template <class T>
struct TypedKernels {
    Blocking blocking;
    MicroKernel<T> microkernel;
    StreamingMicroKernel<T> streaming_microkernel;
    DirectKernel<T> direct_kernel;
    TapKernel<T> tap_kernel;
    PackBTransposed<T> pack_b_transposed;
    PackBRows<T> pack_b_rows;
    PackARows<T> pack_a_rows;  // null where the ISA has no register transpose
    ReluForwardLoop<T> relu_forward;
    ReluBackwardLoop<T> relu_backward;
    RowDotsLoop<T> row_dots;
    RowAxpysLoop<T> row_axpys;  // null on the baseline
    PeakLoop<T> fma_peak;
    StreamedBBlock<T> streamed_b;
    // gemm_fused sends a product of kStreamedMinRows to this many rows with a large
    // row-major B (blocking.hpp) to gemm_streamed_b; 0: never (the sets and dtypes
    // where it did not win). Past streamed_b_narrow_max_rows only where the L1d gives
    // blocks of kStreamedWideBlockBytes or more (takes_streamed_b, blocking.hpp).
    int64_t streamed_b_max_rows = 0;
    int64_t streamed_b_narrow_max_rows = 0;
    TransposedRowsTile<T> transposed_rows;
    // gemm_fused sends a product of up to this many rows with a large Bᵀ stored
    // row-major (blocking.hpp) to gemm_transposed_rows; 0: never.
    int64_t transposed_rows_max_rows = 0;
    int transposed_rows_width = 0;  // the tile's columns of Cᵀ (A's rows): 2 vectors
};

struct KernelTable {
    const char* name;
    TypedKernels<float> f32;
    TypedKernels<double> f64;

    template <class T>
    const TypedKernels<T>& get() const;
};

template <>
inline const TypedKernels<float>& KernelTable::get<float>() const { return f32; }
template <>
inline const TypedKernels<double>& KernelTable::get<double>() const { return f64; }

// Defined one per ISA translation unit. Every entry is set except the optional
// pack_b_transposed, pack_a_rows and row_axpys (null on the baseline: the portable
// code is used); streamed_b_max_rows and transposed_rows_max_rows are 0 except where
// their paths are taken.
const KernelTable& avx512_kernels();
const KernelTable& avx2_kernels();
const KernelTable& neon_kernels();
const KernelTable& baseline_kernels();

// The table in use (dispatch.cpp).
const KernelTable& active_kernels();
// An ISA's own table (fixed blocking), checked as set_isa checks: throws for an
// unknown name or one this CPU cannot run.
const KernelTable& kernels_named(const char* name);

}  // namespace matgrad::detail
