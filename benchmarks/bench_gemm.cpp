// GEMM throughput (GFLOP/s) for the shapes that matter to matgrad: square
// sizes in all four transpose cases, and the lecture's layer N=64, D=M=4096
// (y = x·w, dL/dx = dL/dy·wᵀ, dL/dw = xᵀ·dL/dy). Run with
//   MATGRAD_ISA=avx2 ./bench_gemm   to measure another kernel set.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "bench_data.hpp"
#include "matgrad/matgrad.hpp"

namespace {

// The active kernel set's FMA peak on matgrad's threads, measured once per set and dtype.
template <class T>
double peak_gflops() {
    static std::map<std::string, double> measured;
    const std::string key = std::string(matgrad::isa()) + (sizeof(T) == 8 ? " f64" : " f32");
    auto it = measured.find(key);
    if (it == measured.end())
        it = measured.emplace(key, matgrad::fma_peak_gflops(matgrad::isa(), sizeof(T) == 8,
                                                            matgrad::get_num_threads(), 0.2)).first;
    return it->second;
}

// args: m, n, k, trans_a, trans_b
template <class T>
void BM_gemm(benchmark::State& state) {
    const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
    const bool ta = state.range(3), tb = state.range(4);
    // Stored shapes: A is [m×k] or, transposed, [k×m]; likewise B.
    const auto a = bench::random_vector<T>((ta ? k : m) * (ta ? m : k), 1);
    const auto b = bench::random_vector<T>((tb ? n : k) * (tb ? k : n), 2);
    std::vector<T> c(static_cast<size_t>(m * n));
    const int64_t lda = ta ? m : k, ldb = tb ? k : n;
    const auto start = std::chrono::steady_clock::now();  // for %peak, beside the library's own clock
    for (auto _ : state) {
        matgrad::gemm(ta, tb, m, n, k, a.data(), lda, b.data(), ldb, c.data(), n, false);
        benchmark::DoNotOptimize(c.data());
        benchmark::ClobberMemory();
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    state.counters["FLOP/s"] = benchmark::Counter(2.0 * m * n * k,
                                                  benchmark::Counter::kIsIterationInvariantRate);
    const double gflops = 2.0 * m * n * k * double(state.iterations()) / seconds / 1e9;
    state.counters["%peak"] = 100.0 * gflops / peak_gflops<T>();  // the peak measured after the loop
    state.SetLabel(matgrad::isa());
}

void square_sizes(benchmark::internal::Benchmark* b) {
    for (int64_t s : {256, 1024, 2048})
        for (int ta : {0, 1})
            for (int tb : {0, 1}) b->Args({s, s, s, ta, tb});
    b->ArgNames({"m", "n", "k", "ta", "tb"});
}

// The lecture's three products for N=64, D=M=4096.
void lecture_layer(benchmark::internal::Benchmark* b) {
    b->Args({64, 4096, 4096, 0, 0});    // y = x·w
    b->Args({64, 4096, 4096, 0, 1});    // dL/dx = dL/dy·wᵀ
    b->Args({4096, 4096, 64, 1, 0});    // dL/dw = xᵀ·dL/dy
    b->ArgNames({"m", "n", "k", "ta", "tb"});
}

}  // namespace

BENCHMARK(BM_gemm<float>)->Apply(square_sizes)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_gemm<double>)->Apply(square_sizes)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_gemm<float>)->Name("BM_lecture_layer<float>")->Apply(lecture_layer)
    ->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
