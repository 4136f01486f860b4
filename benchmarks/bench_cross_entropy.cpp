// Softmax cross-entropy forward and backward at classifier shapes (batch × classes):
// the MLP benchmarks' 32×10 and 128×10, and a wide 1024×1000. Rates are elements per second.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "bench_data.hpp"
#include "matgrad/matgrad.hpp"

namespace {

std::vector<int64_t> labels_for(int64_t n, int64_t c) {
    std::vector<int64_t> labels(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) labels[i] = (i * 7) % c;
    return labels;
}

void BM_cross_entropy_forward(benchmark::State& state) {
    const int64_t n = state.range(0), c = state.range(1);
    const auto scores = bench::random_vector(n * c, 1);
    const auto labels = labels_for(n, c);
    std::vector<float> probs(static_cast<size_t>(n * c));
    for (auto _ : state) {
        benchmark::DoNotOptimize(
            matgrad::cross_entropy_forward(n, c, scores.data(), c, labels.data(), probs.data()));
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations() * n * c);
}

void BM_cross_entropy_backward(benchmark::State& state) {
    const int64_t n = state.range(0), c = state.range(1);
    const auto probs = bench::random_vector(n * c, 2);
    const auto labels = labels_for(n, c);
    std::vector<float> grad(static_cast<size_t>(n * c));
    for (auto _ : state) {
        matgrad::cross_entropy_backward(n, c, probs.data(), labels.data(), 1.0f, grad.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations() * n * c);
}

}  // namespace

BENCHMARK(BM_cross_entropy_forward)->ArgNames({"n", "c"})->Args({32, 10})->Args({128, 10})->Args({1024, 1000});
BENCHMARK(BM_cross_entropy_backward)->ArgNames({"n", "c"})->Args({32, 10})->Args({128, 10})->Args({1024, 1000});

BENCHMARK_MAIN();
