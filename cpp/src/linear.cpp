// The fused linear layer: y = relu?(x·w + b) and its backward.
//
// Forward: one GEMM whose epilogue adds the bias and applies the ReLU as each
// tile of y is written.
// Backward (quoting the forward line it inverts, y = relu(x·w + b)):
//   g  = dL/dy ⊙ [y > 0]          the ReLU Jacobian as a mask, never formed
//   db = Σ_rows g                  in the same pass over g
//   dx = g·wᵀ,  dw = xᵀ·g          the lecture's formulas via transpose flags
#include <algorithm>

#include "aligned_buffer.hpp"
#include "blocking.hpp"
#include "gemm_internal.hpp"
#include "matgrad/matgrad.hpp"
#include "threads.hpp"

namespace matgrad {
namespace detail {
namespace {

// Columns per work item of the mask-and-sum pass: the running sums stay in
// registers/L1, and each column is summed by one thread, top to bottom, so the
// result does not depend on the thread count.
constexpr int64_t kSumColumns = 256;
// Scratch up to this size stays allocated per thread between calls.
constexpr size_t kKeptScratchBytes = size_t{4} << 20;

// g = relu ? (y > 0 ? dy : 0) : dy (written to g only when relu), and
// db (+)= Σ_rows g. dy, y, g: [n×m]; db: [m] or null.
template <class T>
void mask_and_sum_columns(int64_t n, int64_t m, const T* dy, const T* y, T* g, T* db,
                          bool accumulate_db) {
    const int64_t chunks = (m + kSumColumns - 1) / kSumColumns;
    auto sum_chunk = [&](int64_t chunk) {
        const int64_t j0 = chunk * kSumColumns, width = std::min(kSumColumns, m - j0);
        T sums[kSumColumns] = {};
        for (int64_t i = 0; i < n; ++i) {
            const T* __restrict dy_row = dy + i * m + j0;
            if (y) {
                const T* __restrict y_row = y + i * m + j0;
                T* __restrict g_row = g + i * m + j0;
                // dy is read whatever the mask, so that the select compiles to a vector
                // compare-and-mask, not a branch per element (0.25 -> 0.025 ms at 128×512 f32
                // with 2 threads on a Zen 1: half of all masks mispredict).
                for (int64_t j = 0; j < width; ++j) {
                    const T d = dy_row[j];
                    const T v = y_row[j] > T(0) ? d : T(0);
                    g_row[j] = v;
                    sums[j] += v;
                }
            } else {
                for (int64_t j = 0; j < width; ++j) sums[j] += dy_row[j];
            }
        }
        if (db)
            for (int64_t j = 0; j < width; ++j) db[j0 + j] = (accumulate_db ? db[j0 + j] : T(0)) + sums[j];
    };
    const int threads = n * m >= kReluParallelMin ? std::min<int64_t>(max_threads(), chunks) : 1;
#if defined(_OPENMP)
    if (threads > 1) {
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int64_t chunk = 0; chunk < chunks; ++chunk) sum_chunk(chunk);
        return;
    }
#endif
    for (int64_t chunk = 0; chunk < chunks; ++chunk) sum_chunk(chunk);  // small: no team
}

template <class T, class Grads>
void linear_backward_impl(int64_t n, int64_t d, int64_t m, const T* dy, const T* y, const T* x,
                          int64_t rs_x, int64_t cs_x, const T* w, int64_t rs_w, int64_t cs_w,
                          const Grads& grads) {
    const T* g = dy;
    if (y) {
        // The masked gradient, [n×m]: a per-thread buffer reused by small layers, a
        // buffer of its own for large ones (freed on return, not kept per thread).
        thread_local AlignedBuffer reused;
        AlignedBuffer own;
        const size_t bytes = sizeof(T) * static_cast<size_t>(std::max<int64_t>(n * m, 1));
        T* masked = static_cast<T*>((bytes <= kKeptScratchBytes ? reused : own).reserve(bytes));
        if (grads.db)
            mask_and_sum_columns(n, m, dy, y, masked, grads.db, grads.accumulate_db);
        else
            matgrad::relu_backward(dy, y, masked, n * m);
        g = masked;
    } else if (grads.db) {
        mask_and_sum_columns<T>(n, m, dy, nullptr, nullptr, grads.db, grads.accumulate_db);
    }
    // dL/dx = dL/dy·wᵀ : [n×m]·[m×d]; wᵀ(p, j) = w(j, p) = w[j*rs_w + p*cs_w]
    if (grads.dx)
        gemm_fused<T>(n, d, m, g, m, 1, w, cs_w, rs_w, grads.dx, d, grads.accumulate_dx, nullptr,
                      false);
    // dL/dw = xᵀ·dL/dy : [d×n]·[n×m]; xᵀ(i, p) = x(p, i) = x[p*rs_x + i*cs_x]
    if (grads.dw)
        gemm_fused<T>(d, m, n, x, cs_x, rs_x, g, m, 1, grads.dw, m, grads.accumulate_dw, nullptr,
                      false);
}

}  // namespace
}  // namespace detail

void linear_forward(int64_t n, int64_t d, int64_t m, const float* x, int64_t rs_x, int64_t cs_x,
                    const float* w, int64_t rs_w, int64_t cs_w, const float* b, bool relu,
                    float* y, int64_t ldy) {
    detail::gemm_fused(n, m, d, x, rs_x, cs_x, w, rs_w, cs_w, y, ldy, false, b, relu);
}

void linear_forward(int64_t n, int64_t d, int64_t m, const double* x, int64_t rs_x, int64_t cs_x,
                    const double* w, int64_t rs_w, int64_t cs_w, const double* b, bool relu,
                    double* y, int64_t ldy) {
    detail::gemm_fused(n, m, d, x, rs_x, cs_x, w, rs_w, cs_w, y, ldy, false, b, relu);
}

void linear_backward(int64_t n, int64_t d, int64_t m, const float* dy, const float* y,
                     const float* x, int64_t rs_x, int64_t cs_x, const float* w, int64_t rs_w,
                     int64_t cs_w, const LinearGrads& grads) {
    detail::linear_backward_impl(n, d, m, dy, y, x, rs_x, cs_x, w, rs_w, cs_w, grads);
}

void linear_backward(int64_t n, int64_t d, int64_t m, const double* dy, const double* y,
                     const double* x, int64_t rs_x, int64_t cs_x, const double* w,
                     int64_t rs_w, int64_t cs_w, const LinearGrads64& grads) {
    detail::linear_backward_impl(n, d, m, dy, y, x, rs_x, cs_x, w, rs_w, cs_w, grads);
}

}  // namespace matgrad
