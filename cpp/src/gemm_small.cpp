// Small products (every op of a small network, the 8×8 of a tiny graph) and
// narrow ones (at most kNarrowMaxCols columns, many rows): the register tiles read
// the operands where they lie, with no packing of A; threads split the row tiles. Packing
// costs O(mk + kn) copies that a large product spreads over O(mnk) multiply-adds;
// below kSmallMaxMacs (blocking.hpp), and for 32-64 rows with B read in place below
// kSmallInPlaceMaxMacs (takes_small_path), the copies cost more than they save, and
// the operands are small enough to stay in L1/L2 while every tile reads them.
//
//   for each mr-row panel of C:        A read in place, one broadcast per (row, k)
//     for each nr-column panel:        B rows read in place (or packed once)
//       direct kernel: C tile (+)= op(A)[rows, :] · op(B)[:, cols]
#include "aligned_buffer.hpp"
#include "gemm_internal.hpp"
#include "kernels/kernel_table.hpp"
#include "pack.hpp"
#include "threads.hpp"

#include <algorithm>
#include <cstddef>

namespace matgrad::detail {
namespace {

constexpr size_t kKeptCopyBytes = size_t{4} << 20;

}  // namespace

template <class T>
void gemm_small(int64_t m, int64_t n, int64_t k, const T* a, int64_t rs_a, int64_t cs_a,
                const T* b, int64_t rs_b, int64_t cs_b, T* c, int64_t ldc, bool accumulate,
                const T* bias, bool relu) {
    const TypedKernels<T>& kern = active_kernels().get<T>();
    const int mr = kern.blocking.mr, nr = kern.blocking.nr;

    // The kernel loads whole nr-wide rows of B: read B in place when it is
    // row-major and its width a multiple of nr; otherwise pack it into nr-wide
    // zero-padded panels (pack.hpp; at most kSmallMaxCopiedB elements for a small
    // product, kNarrowMaxCopiedB for a narrow one: gemm_fused sends larger copies
    // elsewhere), where row p of panel q is at panel + p*nr. Copies up to
    // kKeptCopyBytes stay allocated per thread between calls; larger ones are freed.
    const T* rows_b = b;
    int64_t ldb = rs_b, panel_stride = nr;  // from one nr-column panel of B to the next
    thread_local AlignedBuffer kept;
    AlignedBuffer once;
    if (cs_b != 1 || n % nr != 0) {
        const size_t bytes = sizeof(T) * size_t(k) * size_t((n + nr - 1) / nr * nr);
        T* packed = static_cast<T*>((bytes <= kKeptCopyBytes ? kept : once).reserve(bytes));
        pack_b_fastest(kern.pack_b_transposed, kern.pack_b_rows, k, n, b, rs_b, cs_b, nr, packed);
        rows_b = packed;
        ldb = nr;
        panel_stride = nr * k;
    }

    // K in slices of kc, each added into C: with few outputs K can be long (a 1×k
    // times k×nr product with B read in place reaches this path for k up to about
    // 2¹⁸/nr: 8191 for AVX-512 f32), and one chain of k additions per output loses
    // more precision than kc-long chains summed (the packed path slices K in equal
    // parts of about kc, at most 1.5·kc where f32 slices grow, equal_k_slices). The
    // epilogue runs on the last slice.
    const int64_t kc = kern.blocking.kc;
    const DirectKernel<T> kernel = kern.direct_kernel;
    // Threads split the row tiles (narrow products: many rows, few columns).
    const int64_t tiles = (m + mr - 1) / mr;
    const int threads =
        static_cast<int>(std::min<int64_t>(m * n * k >= kParallelMinMacs ? max_threads() : 1, tiles));
    auto body = [&](int tid, int team) {
        const int64_t t_begin = tiles * tid / team, t_end = tiles * (tid + 1) / team;
        for (int64_t pc = 0; pc < k; pc += kc) {
            const int64_t kb = k - pc < kc ? k - pc : kc;
            const bool acc = accumulate || pc > 0, last = pc + kb >= k;
            for (int64_t t = t_begin; t < t_end; ++t) {
                const int64_t i = t * mr;
                const int rows = static_cast<int>(m - i < mr ? m - i : mr);
                for (int64_t j = 0, q = 0; j < n; j += nr, ++q) {
                    const int cols = static_cast<int>(n - j < nr ? n - j : nr);
                    kernel(kb, a + i * rs_a + pc * cs_a, rs_a, cs_a, rows_b + q * panel_stride + pc * ldb,
                           ldb, LineStream{}, c + i * ldc + j, ldc, rows, cols, acc,
                           Epilogue<T>{last && bias ? bias + j : nullptr, last && relu});
                }
            }
        }
    };
    run_team(threads, body);
}

template void gemm_small<float>(int64_t, int64_t, int64_t, const float*, int64_t, int64_t,
                                const float*, int64_t, int64_t, float*, int64_t, bool,
                                const float*, bool);
template void gemm_small<double>(int64_t, int64_t, int64_t, const double*, int64_t, int64_t,
                                 const double*, int64_t, int64_t, double*, int64_t, bool,
                                 const double*, bool);

}  // namespace matgrad::detail
