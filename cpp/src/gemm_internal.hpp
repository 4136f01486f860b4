// The GEMM driver with an epilogue, shared by gemm.cpp and linear.cpp.
#pragma once

#include <cstdint>

namespace matgrad::detail {

// C = relu?(op(A)·op(B) (+ C) + bias), strides as in matgrad::gemm_strided;
// bias: [n] or null. The epilogue is applied while each C tile is written.
template <class T>
void gemm_fused(int64_t m, int64_t n, int64_t k, const T* a, int64_t rs_a, int64_t cs_a,
                const T* b, int64_t rs_b, int64_t cs_b, T* c, int64_t ldc, bool accumulate,
                const T* bias, bool relu);

// Which path gemm_fused takes for these sizes and strides, on the kernel set and
// thread count in use (the conditions: gemm.cpp; the rules: blocking.hpp). Pure but
// for those two settings and the caches read once.
enum class GemmPath {
    empty, small, narrow, row_dots, row, streamed_b, transposed_rows, skinny, packed
};
template <class T>
GemmPath choose_gemm_path(int64_t m, int64_t n, int64_t k, int64_t rs_a, int64_t cs_a, int64_t rs_b,
                          int64_t cs_b);
const char* gemm_path_name(GemmPath path);

// The paths gemm_fused chooses between (by shape: blocking.hpp), exposed so that
// tests can check each against the reference: the packed loop nest (gemm.cpp),
// the skinny one (gemm_skinny.cpp), the unpacked one for small and narrow
// products (gemm_small.cpp) and the two for one row of C (gemm_row.cpp).
// All: m, n, k > 0; C does not overlap A or B.
template <class T>
void gemm_packed(int64_t m, int64_t n, int64_t k, const T* a, int64_t rs_a, int64_t cs_a,
                 const T* b, int64_t rs_b, int64_t cs_b, T* c, int64_t ldc, bool accumulate,
                 const T* bias, bool relu);
// Where gemm_packed's team packs, in elements from the start of its area (the why:
// gemm.cpp, pack_layout). a_elems: a member's own A panels, or the shared A block;
// b_share: a member's B block; b_elems: a solo thread's B block (nc columns).
struct PackLayout {
    int64_t a_elems = 0, b_share = 0, b_elems = 0;
    int64_t slot = 0;     // from one member's slot to the next
    int64_t reserve = 0;  // what the area must hold
    bool own_a = true;    // each member packs the A panels it reads
    int threads = 1;
    // solo: the only member that works, OpenMP having given fewer than `threads`.
    int64_t b_offset(int tid, bool solo) const { return solo ? 0 : slot * tid; }
    int64_t a_offset(int tid, bool solo) const {
        if (!own_a) return slot * threads;  // the shared block, solo or not
        return solo ? b_elems : slot * (tid + 1) - a_elems;
    }
};
// Pure: the blocks (mc, nc, kc: gemm_packed's, kc the longest K slice), N, the tile
// (mr × nr, a_copies as in Blocking), the grid, a cache line in elements and the slot
// size the calling thread's earlier products left (0 at first).
PackLayout pack_layout(int64_t mc, int64_t nc, int64_t kc, int64_t n, int mr, int nr,
                       int a_copies, int along_n, int along_m, int64_t line_elems,
                       int64_t min_slot);
// Skinny (few rows): B panel by panel, read in place when row-major, threads split N.
// A row-major A is packed per K slice or read in place as skinny_packs_a says
// (blocking.hpp), or as `a_mode` forces (tests: both ways on any CPU).
enum class SkinnyA { by_policy, in_place, packed };
template <class T>
void gemm_skinny(int64_t m, int64_t n, int64_t k, const T* a, int64_t rs_a, int64_t cs_a,
                 const T* b, int64_t rs_b, int64_t cs_b, T* c, int64_t ldc, bool accumulate,
                 const T* bias, bool relu, SkinnyA a_mode = SkinnyA::by_policy);
// One row of C (m = 1) against a row-major B (cs_b = 1), B streamed row by row
// (gemm_row.cpp). a: op(A)'s row, element p at a[p*cs_a]; c: n contiguous values.
template <class T>
void gemm_row(int64_t n, int64_t k, const T* a, int64_t cs_a, const T* b, int64_t rs_b, T* c,
              bool accumulate, const T* bias, bool relu);
// One row of C against a transposed B (rs_b = 1): a dot product per output, each
// row of w read once (gemm_row.cpp). The bias and ReLU apply as everywhere.
template <class T>
void gemm_row_dots(int64_t n, int64_t k, const T* a, int64_t cs_a, const T* b, int64_t cs_b, T* c,
                   bool accumulate, const T* bias, bool relu);
// Few rows of C against a large row-major B (cs_b = 1), B streamed once through the
// registers, no copy of it (gemm_streamed_b.cpp); threads split N. block_bytes:
// each block's width in bytes of a row of B (0: streamed_block_bytes, blocking.hpp;
// tests force others, rounded up to a multiple of kStreamedBlockQuantum).
template <class T>
void gemm_streamed_b(int64_t m, int64_t n, int64_t k, const T* a, int64_t rs_a, int64_t cs_a,
                     const T* b, int64_t rs_b, T* c, int64_t ldc, bool accumulate, const T* bias,
                     bool relu, int64_t block_bytes = 0);
// Few rows of C against a large Bᵀ stored row-major (rs_b = 1: wᵀ in dL/dx =
// dL/dy·wᵀ), computed as Cᵀ = B·Aᵀ with B's stored rows read in place and Aᵀ packed
// (gemm_transposed_rows.cpp); threads split N. packed_budget: the bytes of Aᵀ each
// thread packs at a time (K is taken in spans that fit); 0: half the L2, at most
// 4 MiB, or 4 MiB where the L2 is unknown (transposed_rows_budget, blocking.hpp).
// sums_budget: the bytes of tiles' sums each thread keeps between spans (its groups
// are taken in chunks that fit); 0: kTransposedRowsSumsBytes.
template <class T>
void gemm_transposed_rows(int64_t m, int64_t n, int64_t k, const T* a, int64_t rs_a, int64_t cs_a,
                          const T* b, int64_t cs_b, T* c, int64_t ldc, bool accumulate,
                          const T* bias, bool relu, int64_t packed_budget = 0,
                          int64_t sums_budget = 0);

template <class T>
void gemm_small(int64_t m, int64_t n, int64_t k, const T* a, int64_t rs_a, int64_t cs_a,
                const T* b, int64_t rs_b, int64_t cs_b, T* c, int64_t ldc, bool accumulate,
                const T* bias, bool relu);

}  // namespace matgrad::detail
