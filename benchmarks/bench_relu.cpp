// ReLU forward and backward on 4096×4096 float32, in GB/s of memory traffic,
// beside a plain copy of the same bytes: the streaming rate they should reach.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "bench_data.hpp"
#include "matgrad/matgrad.hpp"

namespace {

constexpr int64_t kSide = 4096;

void BM_copy(benchmark::State& state) {
    const int64_t n = kSide * kSide;
    const auto x = bench::random_vector(n, 1);
    std::vector<float> y(static_cast<size_t>(n));
    for (auto _ : state) {
        std::memcpy(y.data(), x.data(), n * sizeof(float));
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * 2 * n * int64_t(sizeof(float)));
}

void BM_relu_forward(benchmark::State& state) {
    const int64_t n = kSide * kSide;
    const auto x = bench::random_vector(n, 1);
    std::vector<float> y(static_cast<size_t>(n));
    for (auto _ : state) {
        matgrad::relu_forward(x.data(), y.data(), n);
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * 2 * n * int64_t(sizeof(float)));
    state.SetLabel(matgrad::isa());
}

void BM_relu_backward(benchmark::State& state) {
    const int64_t n = kSide * kSide;
    const auto x = bench::random_vector(n, 1), dy = bench::random_vector(n, 2);
    std::vector<float> dx(static_cast<size_t>(n));
    for (auto _ : state) {
        matgrad::relu_backward(dy.data(), x.data(), dx.data(), n);
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * 3 * n * int64_t(sizeof(float)));
    state.SetLabel(matgrad::isa());
}

}  // namespace

BENCHMARK(BM_copy)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_relu_forward)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_relu_backward)->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
