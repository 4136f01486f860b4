// The lecture's layer y = relu(x·w + b) with N=64, D=M=4096, fp32: forward
// (fused bias + ReLU epilogue) and backward (mask + bias sum in one pass, then
// dL/dx = g·wᵀ and dL/dw = xᵀ·g). Counts the 3 products' FLOPs.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "bench_data.hpp"
#include "matgrad/matgrad.hpp"

namespace {

void BM_lecture_layer_forward_backward(benchmark::State& state) {
    const int64_t n = state.range(0), d = state.range(1), m = state.range(2);
    const auto x = bench::random_vector(n * d, 1), w = bench::random_vector(d * m, 2);
    const auto b = bench::random_vector(m, 3), dy = bench::random_vector(n * m, 4);
    std::vector<float> y(n * m), dx(n * d), dw(d * m), db(m);
    for (auto _ : state) {
        matgrad::linear_forward(n, d, m, x.data(), d, 1, w.data(), m, 1, b.data(), true, y.data(), m);
        matgrad::LinearGrads grads;
        grads.dx = dx.data();
        grads.dw = dw.data();
        grads.db = db.data();
        matgrad::linear_backward(n, d, m, dy.data(), y.data(), x.data(), d, 1, w.data(), m, 1, grads);
        benchmark::ClobberMemory();
    }
    state.counters["FLOP/s"] = benchmark::Counter(3 * 2.0 * n * d * m,
                                                  benchmark::Counter::kIsIterationInvariantRate);
    state.SetLabel(matgrad::isa());
}

}  // namespace

BENCHMARK(BM_lecture_layer_forward_backward)
    ->Args({64, 4096, 4096})
    ->Args({128, 784, 512})
    ->ArgNames({"n", "d", "m"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

BENCHMARK_MAIN();
