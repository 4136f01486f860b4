// One row of C against a row-major B: y = x·w for a single x (a batch of one,
// inference). Each element of B is used once, so the product is bound by reading
// B, and the right order is B's own: row by row, each row of the thread's columns
// contiguous, which the hardware prefetchers follow at full speed. (The tiles of
// the other paths read B panel by panel, a line or two of every row at a time.)
//
//   threads split N into contiguous column ranges (whole cache lines)
//   for each block of up to kRowBlock columns of this range:
//     for pc in K by kc:                          one K slice
//       acc[cols] = Σ_{p in slice} x[p] · B[p, cols]   four rows of B per pass
//       c[cols] (+)= acc[cols]
//     epilogue: c = relu?(c + bias)
//
// The inner loop is the ISA's (row_loops_impl.inc, axpy_rows_loop) where the kernel
// set has one: the product is memory-bound, but a loop slower than memory adds to
// the wait rather than hiding under it. 1×4096·4096×4096, Sapphire Rapids-class
// Xeon, 2 threads, alternated 5-6×, against the portable loops below: f32 AVX-512
// 1.22-1.25 -> 1.08-1.09 ms, AVX2 1.22-1.23 -> 1.09-1.13, f64 AVX-512 4.09 -> 3.34;
// 1×512·784×512 f32 15.9 -> 14.4 and 16.7 -> 14.4 µs; 1×1024·1024×1024 f32 (B in
// cache) unchanged, f64 147 -> 130 µs. The baseline keeps the portable loops,
// which GCC vectorises for SSE2 better than the 16-byte V (no fused multiply-add)
// does: 1×1024·1024×1024 80 against 93 µs.
// Every output is summed in the same order whatever the thread count.
#include <algorithm>

#include "aligned_buffer.hpp"
#include "gemm_internal.hpp"
#include "kernels/kernel_table.hpp"
#include "threads.hpp"

namespace matgrad::detail {
namespace {

// Columns per block: the block's partial sums (and c's) stay in L1 while a K slice
// of B's rows streams past. 2048 floats = 8 KiB.
constexpr int64_t kRowBlock = 2048;

// acc[0:n] += Σ_{p<depth} x[p·cs_x]·b[p·rs + 0:n] in plain loops, four rows of B
// per pass (RowAxpysLoop's contract; the kernel set's own loop where it has one).
template <class T>
void axpy_rows_portable(int64_t n, int64_t depth, const T* x, int64_t cs_x, const T* b, int64_t rs,
                        T* __restrict acc) {
    int64_t p = 0;
    for (; p + 4 <= depth; p += 4) {
        const T a0 = x[p * cs_x], a1 = x[(p + 1) * cs_x], a2 = x[(p + 2) * cs_x], a3 = x[(p + 3) * cs_x];
        const T* __restrict b0 = b + p * rs;
        const T* __restrict b1 = b0 + rs;
        const T* __restrict b2 = b1 + rs;
        const T* __restrict b3 = b2 + rs;
        for (int64_t j = 0; j < n; ++j) acc[j] += a0 * b0[j] + a1 * b1[j] + a2 * b2[j] + a3 * b3[j];
    }
    for (; p < depth; ++p) {
        const T a0 = x[p * cs_x];
        const T* __restrict b0 = b + p * rs;
        for (int64_t j = 0; j < n; ++j) acc[j] += a0 * b0[j];
    }
}

}  // namespace

template <class T>
void gemm_row(int64_t n, int64_t k, const T* a, int64_t cs_a, const T* b, int64_t rs_b, T* c,
              bool accumulate, const T* bias, bool relu) {
    const TypedKernels<T>& kern = active_kernels().get<T>();
    const int64_t kc = kern.blocking.kc;
    const RowAxpysLoop<T> axpys = kern.row_axpys;
    constexpr int64_t kLine = 64 / int64_t(sizeof(T));
    const int64_t lines = (n + kLine - 1) / kLine;
    const int threads = static_cast<int>(
        std::min<int64_t>(n * k >= kParallelMinMacs ? max_threads() : 1, lines));

    auto body = [&](int tid, int team) {
        const int64_t j_begin = std::min(n, lines * tid / team * kLine);
        const int64_t j_end = std::min(n, lines * (tid + 1) / team * kLine);
        alignas(64) T acc[kRowBlock];
        for (int64_t j0 = j_begin; j0 < j_end; j0 += kRowBlock) {
            const int64_t nb = std::min(kRowBlock, j_end - j0);
            T* const y = c + j0;
            for (int64_t pc = 0; pc < k; pc += kc) {
                const int64_t kb = std::min(kc, k - pc);
                std::fill(acc, acc + nb, T(0));
                if (axpys)
                    axpys(nb, kb, a + pc * cs_a, cs_a, b + pc * rs_b + j0, rs_b, acc);
                else
                    axpy_rows_portable(nb, kb, a + pc * cs_a, cs_a, b + pc * rs_b + j0, rs_b, acc);
                const bool add = accumulate || pc > 0;
                for (int64_t j = 0; j < nb; ++j) y[j] = add ? y[j] + acc[j] : acc[j];
            }
            if (bias || relu)
                for (int64_t j = 0; j < nb; ++j) {
                    const T v = y[j] + (bias ? bias[j0 + j] : T(0));
                    y[j] = (relu && v < 0) ? T(0) : v;
                }
        }
    };
    run_team(threads, body);
}

// One row of C against a transposed B (op(B)(p, j) = b[p + j*cs_b]: the wᵀ of
// dL/dx = dL/dy·wᵀ for a batch of one): each output is a dot product of a with a
// contiguous row of w, read once, in order, in the ISA's vectors, two rows at a
// time so that each load of a serves both (row_loops_impl.inc; an output's sums
// are the same wherever it falls). Against the portable SSE2 loop this replaces,
// 1×4096·(256×4096)ᵀ and ·(4096×4096)ᵀ f32 (w in L3 and in memory), AMD Zen 4,
// alternated runs: one thread 0.085 -> 0.072-0.082 ms and 3.9-4.8 -> 3.5-4.3 ms,
// two threads 0.044-0.13 -> 0.037-0.046 ms and 2.2-4.1 -> 1.9-2.3 ms.
template <class T>
void gemm_row_dots(int64_t n, int64_t k, const T* a, int64_t cs_a, const T* b, int64_t cs_b, T* c,
                   bool accumulate, const T* bias, bool relu) {
    const RowDotsLoop<T> dots = active_kernels().get<T>().row_dots;
    const int threads = static_cast<int>(
        std::min<int64_t>(n * k >= kParallelMinMacs ? max_threads() : 1, n));
    // a, contiguous, so that the inner loop reads unit-stride streams.
    thread_local AlignedBuffer scratch;
    const T* x = a;
    if (cs_a != 1) {
        T* copy = static_cast<T*>(scratch.reserve(sizeof(T) * k));
        for (int64_t p = 0; p < k; ++p) copy[p] = a[p * cs_a];
        x = copy;
    }
    auto body = [&](int tid, int team) {
        const int64_t j_begin = n * tid / team, j_end = n * (tid + 1) / team;
        constexpr int64_t kChunk = 64;  // outputs per call of the loop
        for (int64_t j0 = j_begin; j0 < j_end; j0 += kChunk) {
            const int64_t count = std::min(kChunk, j_end - j0);
            T dot[kChunk];
            dots(k, x, b + j0 * cs_b, cs_b, count, dot);
            for (int64_t q = 0; q < count; ++q) {
                const int64_t j = j0 + q;
                T v = (accumulate ? c[j] : T(0)) + dot[q] + (bias ? bias[j] : T(0));
                c[j] = (relu && v < 0) ? T(0) : v;
            }
        }
    };
    run_team(threads, body);
}

template void gemm_row_dots<float>(int64_t, int64_t, const float*, int64_t, const float*, int64_t,
                                   float*, bool, const float*, bool);
template void gemm_row_dots<double>(int64_t, int64_t, const double*, int64_t, const double*, int64_t,
                                    double*, bool, const double*, bool);
template void gemm_row<float>(int64_t, int64_t, const float*, int64_t, const float*, int64_t, float*,
                              bool, const float*, bool);
template void gemm_row<double>(int64_t, int64_t, const double*, int64_t, const double*, int64_t,
                               double*, bool, const double*, bool);

}  // namespace matgrad::detail
