// ReLU drivers: split the array into cache-line aligned chunks, one per thread,
// and run the active ISA's loop on each. Elementwise, so any split gives the
// same bits.
#include <algorithm>

#include "blocking.hpp"
#include "kernels/kernel_table.hpp"
#include "matgrad/matgrad.hpp"
#include "threads.hpp"

namespace matgrad {
namespace detail {
namespace {

// Calls body(begin, end) over [0, n), in parallel above the threshold.
template <class T, class Body>
void parallel_chunks(int64_t n, const Body& body) {
    const int threads = n >= kReluParallelMin ? max_threads() : 1;
    if (threads <= 1) {
        body(int64_t{0}, n);
        return;
    }
    constexpr int64_t line = 64 / sizeof(T);  // whole cache lines per thread
    const int64_t chunk = (n / threads + line - 1) / line * line;
#if defined(_OPENMP)
#pragma omp parallel num_threads(threads)
#endif
    {
        const int64_t begin = std::min<int64_t>(n, thread_index() * chunk);
        const int64_t end = (thread_index() == team_size() - 1) ? n : std::min(n, begin + chunk);
        if (end > begin) body(begin, end);
    }
}

template <class T>
void relu_forward_impl(const T* x, T* y, int64_t n) {
    const ReluForwardLoop<T> loop = active_kernels().get<T>().relu_forward;
    const bool stream = n * int64_t(sizeof(T)) >= kReluStreamBytes && x != y;
    parallel_chunks<T>(n, [&](int64_t b, int64_t e) { loop(x + b, y + b, e - b, stream); });
}

template <class T>
void relu_backward_impl(const T* dy, const T* x, T* dx, int64_t n) {
    const ReluBackwardLoop<T> loop = active_kernels().get<T>().relu_backward;
    const bool stream = n * int64_t(sizeof(T)) >= kReluStreamBytes && dx != dy && dx != x;
    parallel_chunks<T>(n, [&](int64_t b, int64_t e) { loop(dy + b, x + b, dx + b, e - b, stream); });
}

}  // namespace
}  // namespace detail

void relu_forward(const float* x, float* y, int64_t n) { detail::relu_forward_impl(x, y, n); }
void relu_forward(const double* x, double* y, int64_t n) { detail::relu_forward_impl(x, y, n); }
void relu_backward(const float* dy, const float* x, float* dx, int64_t n) {
    detail::relu_backward_impl(dy, x, dx, n);
}
void relu_backward(const double* dy, const double* x, double* dx, int64_t n) {
    detail::relu_backward_impl(dy, x, dx, n);
}

}  // namespace matgrad
