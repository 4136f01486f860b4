// The FMA peak of a kernel set: what "% of peak" in the benchmarks divides by.
#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <vector>

#include "kernels/kernel_table.hpp"
#include "matgrad/matgrad.hpp"
#include "threads.hpp"

namespace matgrad {
namespace {

template <class T>
double peak_gflops(detail::PeakLoop<T> loop, int threads, double seconds) {
    using clock = std::chrono::steady_clock;
    T sink{};
    // Calibrate on one thread: iterations for about `seconds`.
    int64_t iterations = 1 << 16;
    for (;;) {
        const auto t0 = clock::now();
        loop(iterations, &sink);
        const double took = std::chrono::duration<double>(clock::now() - t0).count();
        if (took > 0.02 || iterations > (int64_t{1} << 40)) {
            iterations = std::max<int64_t>(1, static_cast<int64_t>(iterations * seconds / took));
            break;
        }
        iterations *= 4;
    }
    std::vector<double> flops(threads, 0.0);
    std::vector<T> sinks(threads);
    const auto t0 = clock::now();
    detail::run_team(threads, [&](int tid, int) { flops[tid] = loop(iterations, &sinks[tid]); });
    const double took = std::chrono::duration<double>(clock::now() - t0).count();
    double total = 0;
    for (double f : flops) total += f;
    return total / took / 1e9;
}

}  // namespace

// A build without OpenMP runs one thread whatever `threads` says: the rate is then
// that one thread's (matgrad.hpp).
double fma_peak_gflops(const char* isa, bool double_precision, int threads, double seconds) {
    if (threads < 1) throw std::invalid_argument("fma_peak_gflops: threads must be >= 1");
    if (!(seconds > 0)) throw std::invalid_argument("fma_peak_gflops: seconds must be > 0");
    const detail::KernelTable& table = detail::kernels_named(isa);
    return double_precision ? peak_gflops<double>(table.f64.fma_peak, threads, seconds)
                            : peak_gflops<float>(table.f32.fma_peak, threads, seconds);
}

}  // namespace matgrad
