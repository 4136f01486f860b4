// Skinny products: few rows of C against a large row-major B, such as the
// lecture's y = x·w with a batch of 64 (64×4096 · 4096×4096). Each element of B
// is used only m times, so packing B (a full extra read and write of it) costs
// a large share of the time; here the register tiles read B where it lies.
//
//   threads split N, in whole nr-column panels (no shared state, no barriers)
//   for pc in K by kc:                       A slice (m×kc) stays in L2
//     for each of this thread's B panels:    kc×nr of B, read in place
//       for each mr-row panel of C:          the first one prefetches the next B panel
//         direct kernel: C tile (+)= A[rows, pc:pc+kc] · B[pc:pc+kc, cols]
//
// C tiles accumulate across K slices (C is m×n: small, it stays in cache); the
// bias/ReLU epilogue runs on the last slice. A right-edge panel narrower than nr
// is copied, zero-padded, to a small buffer: the kernel loads whole nr-wide rows.
#include <algorithm>

#include "aligned_buffer.hpp"
#include "gemm_internal.hpp"
#include "kernels/kernel_table.hpp"
#include "threads.hpp"

namespace matgrad::detail {

template <class T>
void gemm_skinny(int64_t m, int64_t n, int64_t k, const T* a, int64_t rs_a, int64_t cs_a,
                 const T* b, int64_t rs_b, T* c, int64_t ldc, bool accumulate, const T* bias,
                 bool relu) {
    const TypedKernels<T>& kern = active_kernels().get<T>();
    const int mr = kern.blocking.mr, nr = kern.blocking.nr;
    const int64_t kc = kern.blocking.kc;
    const int64_t panels = (n + nr - 1) / nr;
    const int threads =
        static_cast<int>(std::min<int64_t>(m * n * k >= kParallelMinMacs ? max_threads() : 1, panels));
    const DirectKernel<T> kernel = kern.direct_kernel;

    auto body = [&](int tid, int team) {
        const int64_t first = panels * tid / team, last_panel = panels * (tid + 1) / team;
        thread_local AlignedBuffer edge_scratch;  // the narrow right-edge panel, padded
        for (int64_t pc = 0; pc < k; pc += kc) {
            const int64_t kb = std::min(kc, k - pc);
            const bool acc = accumulate || pc > 0, last = pc + kb >= k;
            const T* b_slice = b + pc * rs_b;
            for (int64_t q = first; q < last_panel; ++q) {
                const int64_t j = q * nr;
                const int cols = static_cast<int>(std::min<int64_t>(nr, n - j));
                const T* panel = b_slice + j;
                int64_t ldb = rs_b;
                if (cols < nr) {
                    T* padded = static_cast<T*>(edge_scratch.reserve(sizeof(T) * kb * nr));
                    for (int64_t p = 0; p < kb; ++p)
                        for (int jj = 0; jj < nr; ++jj)
                            padded[p * nr + jj] = jj < cols ? panel[p * rs_b + jj] : T(0);
                    panel = padded;
                    ldb = nr;
                }
                // The next panel of this thread, while this one is computed (not the
                // padded edge: its source rows are shorter than nr).
                const bool next_is_full = q + 1 < last_panel && (q + 2) * nr <= n;
                const T* next = next_is_full ? b_slice + j + nr : nullptr;
                const Epilogue<T> epi{last && bias ? bias + j : nullptr, last && relu};
                for (int64_t i = 0; i < m; i += mr) {
                    const int rows = static_cast<int>(std::min<int64_t>(mr, m - i));
                    kernel(kb, a + i * rs_a + pc * cs_a, rs_a, cs_a, panel, ldb, i == 0 ? next : nullptr,
                           c + i * ldc + j, ldc, rows, cols, acc, epi);
                }
            }
        }
    };
#if defined(_OPENMP)
    if (threads > 1) {
#pragma omp parallel num_threads(threads)
        body(thread_index(), team_size());
        return;
    }
#endif
    body(0, 1);
}

template void gemm_skinny<float>(int64_t, int64_t, int64_t, const float*, int64_t, int64_t,
                                 const float*, int64_t, float*, int64_t, bool, const float*, bool);
template void gemm_skinny<double>(int64_t, int64_t, int64_t, const double*, int64_t, int64_t,
                                  const double*, int64_t, double*, int64_t, bool, const double*,
                                  bool);

}  // namespace matgrad::detail
