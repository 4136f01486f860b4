// matgrad called from inside the caller's own OpenMP parallel region.
//
// One thread of the caller's team runs GEMMs (small ones, which run on the
// calling thread, and a large one, which asks for a nested team) while the
// other thread waits for it. If matgrad's barriers bound to the caller's team
// this would hang; alarm() turns a hang into a failure.
#include <omp.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <vector>

#include "matgrad/matgrad.hpp"

namespace {

bool product_is_right(int64_t m, int64_t n, int64_t k, const std::vector<float>& a,
                      const std::vector<float>& b, const std::vector<float>& c) {
    std::vector<float> ref(static_cast<size_t>(m * n));
    matgrad::reference::gemm_strided(m, n, k, a.data(), k, 1, b.data(), n, 1, ref.data(), n, false);
    for (size_t i = 0; i < ref.size(); ++i)
        if (std::fabs(ref[i] - c[i]) > 1e-3f * (1 + std::fabs(ref[i]))) return false;
    return true;
}

std::vector<float> filled(int64_t count, float scale) {
    std::vector<float> v(static_cast<size_t>(count));
    for (size_t i = 0; i < v.size(); ++i) v[i] = scale * static_cast<float>(int(i % 7) - 3);
    return v;
}

}  // namespace

int main() {
    alarm(60);  // SIGALRM ends a hung run with a failure
    const int64_t small = 8, depth = 16, big = 256;
    const auto a = filled(small * depth, 0.5f), b = filled(depth * small, 0.25f);
    const auto A = filled(big * big, 0.01f), B = filled(big * big, 0.02f);
    std::vector<float> c(static_cast<size_t>(small * small)), C(static_cast<size_t>(big * big));
    std::atomic<bool> done{false};
    bool ok = true;
    matgrad::set_num_threads(2);
#pragma omp parallel num_threads(2)
    {
        if (omp_get_thread_num() == 0) {
            for (int r = 0; r < 100; ++r)
                matgrad::gemm(false, false, small, small, depth, a.data(), depth, b.data(), small,
                              c.data(), small, false);
            matgrad::gemm(false, false, big, big, big, A.data(), big, B.data(), big, C.data(), big,
                          false);
            done = true;
        } else {
            while (!done) {
            }
        }
    }
    ok = product_is_right(small, small, depth, a, b, c) && product_is_right(big, big, big, A, B, C);
    std::printf("%s: gemm inside the caller's parallel region\n", ok ? "passed" : "FAILED");
    return ok ? 0 : 1;
}
