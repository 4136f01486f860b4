// 2-D convolution forward + backward (im2col, one GEMM per image for y, dW and
// the columns of dx, then col2im) and 2×2 max pooling, fp32, at cs231n's
// ThreeLayerConvNet size and a 3×3 size. Counts the 3 products' FLOPs.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <vector>

#include "bench_data.hpp"
#include "matgrad/matgrad.hpp"

namespace {

matgrad::ConvShape shape_of(const benchmark::State& state) {
    matgrad::ConvShape s;
    s.n = state.range(0), s.c = state.range(1), s.h = s.w = state.range(2), s.f = state.range(3);
    s.kh = s.kw = state.range(4), s.stride = 1, s.pad = state.range(5);
    return s;
}

void BM_conv2d_forward_backward(benchmark::State& state) {
    const matgrad::ConvShape s = shape_of(state);
    const int64_t K = s.col_rows(), P = s.col_cols();
    const auto x = bench::random_vector(s.n * s.c * s.h * s.w, 1), w = bench::random_vector(s.f * K, 2);
    const auto b = bench::random_vector(s.f, 3), dy = bench::random_vector(s.n * s.f * P, 4);
    const bool uses_cols = matgrad::conv_uses_columns(s);  // else the implicit scheme: no columns
    std::vector<float> y(s.n * s.f * P), cols(uses_cols ? s.n * K * P : 0), dx(x.size()), dw(w.size()), db(s.f);
    for (auto _ : state) {
        matgrad::conv2d_forward(s, x.data(), w.data(), b.data(), false, cols.data(), y.data());
        matgrad::ConvGrads<float> grads;
        grads.dx = dx.data(), grads.dw = dw.data(), grads.db = db.data();
        matgrad::conv2d_backward(s, dy.data(), nullptr, false, x.data(), cols.data(), w.data(), grads);
        benchmark::ClobberMemory();
    }
    state.counters["FLOP/s"] = benchmark::Counter(3 * 2.0 * s.n * s.f * K * P,
                                                  benchmark::Counter::kIsIterationInvariantRate);
    state.SetLabel(std::string(matgrad::isa()) + (uses_cols ? " columns" : " implicit"));
}

void BM_max_pool2d_forward_backward(benchmark::State& state) {
    matgrad::PoolShape s;
    s.n = state.range(0), s.c = state.range(1), s.h = s.w = state.range(2);
    s.kh = s.kw = s.stride_h = s.stride_w = 2;
    const auto x = bench::random_vector(s.n * s.c * s.h * s.w, 1);
    const int64_t out = s.n * s.c * s.out_h() * s.out_w();
    const auto dy = bench::random_vector(out, 2);
    std::vector<float> y(out), dx(x.size());
    std::vector<int64_t> argmax(out);
    for (auto _ : state) {
        matgrad::max_pool2d_forward(s, x.data(), y.data(), argmax.data());
        matgrad::max_pool2d_backward(s, dy.data(), argmax.data(), dx.data(), false);
        benchmark::ClobberMemory();
    }
    state.counters["bytes/s"] = benchmark::Counter(4.0 * (2 * x.size() + 2 * out) + 8.0 * 2 * out,
                                                   benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

BENCHMARK(BM_conv2d_forward_backward)
    ->Args({50, 3, 32, 32, 7, 3})
    ->Args({64, 16, 16, 32, 3, 1})
    ->ArgNames({"n", "c", "hw", "f", "k", "pad"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_max_pool2d_forward_backward)
    ->Args({50, 32, 32})
    ->ArgNames({"n", "c", "hw"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

BENCHMARK_MAIN();
