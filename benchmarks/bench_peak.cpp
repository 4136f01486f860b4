// The machine's limit: the FMA peak of each kernel set (independent vector FMA
// chains, matgrad::fma_peak_gflops), on 1 thread and on all of matgrad's threads.
// bench_gemm and benchmarks/compare.py report GEMM rates as % of these.
#include <benchmark/benchmark.h>

#include "matgrad/matgrad.hpp"

namespace {

const char* const kIsas[] = {"avx512", "avx2", "baseline"};

// args: isa index, double precision, threads
void BM_fma_peak(benchmark::State& state) {
    const char* isa = kIsas[state.range(0)];
    const bool f64 = state.range(1);
    const int threads = static_cast<int>(state.range(2));
    if (!matgrad::isa_available(isa)) {
        state.SkipWithError("this CPU cannot run this kernel set");
        return;
    }
    double total = 0;
    int64_t runs = 0;
    for (auto _ : state) {
        total += matgrad::fma_peak_gflops(isa, f64, threads, 0.05);
        ++runs;
    }
    state.counters["GFLOP/s"] = total / double(runs);
    state.SetLabel(std::string(isa) + (f64 ? " f64" : " f32"));
}

void all_sets(benchmark::internal::Benchmark* b) {
    const int most = matgrad::get_num_threads();
    for (int isa = 0; isa < 3; ++isa)
        for (int f64 : {0, 1})
            for (int threads : {1, most}) {
                b->Args({isa, f64, threads});
                if (most == 1) break;
            }
    b->ArgNames({"isa", "f64", "threads"});
}

}  // namespace

BENCHMARK(BM_fma_peak)->Apply(all_sets)->Iterations(4)->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
