// y += alpha · x. Memory-bound: the compiler's vectorised loop on the
// baseline target streams as fast as the ISA-specific ones would, and large
// arrays are split across threads like ReLU.
#include <algorithm>

#include "blocking.hpp"
#include "matgrad/matgrad.hpp"
#include "threads.hpp"

namespace matgrad {
namespace detail {
namespace {

template <class T>
void axpy_range(const T alpha, const T* x, T* y, int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) y[i] += alpha * x[i];
}

template <class T>
void axpy_impl(int64_t n, T alpha, const T* x, T* y) {
    const int threads = n >= kReluParallelMin ? max_threads() : 1;
#if defined(_OPENMP)
    if (threads > 1) {
#pragma omp parallel num_threads(threads)
        {
            const int64_t chunk = (n + team_size() - 1) / team_size();
            const int64_t begin = std::min(n, thread_index() * chunk);
            axpy_range(alpha, x, y, begin, std::min(n, begin + chunk));
        }
        return;
    }
#endif
    axpy_range(alpha, x, y, 0, n);
}

}  // namespace
}  // namespace detail

void axpy(int64_t n, float alpha, const float* x, float* y) { detail::axpy_impl(n, alpha, x, y); }
void axpy(int64_t n, double alpha, const double* x, double* y) { detail::axpy_impl(n, alpha, x, y); }

}  // namespace matgrad
