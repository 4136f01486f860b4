// Scalar reference kernels: the oracle for tests and benchmarks. Plain loops,
// accumulated in the element type, no blocking.
#include "matgrad/matgrad.hpp"

namespace matgrad::reference {
namespace {

template <class T>
void gemm_ref(int64_t m, int64_t n, int64_t k, const T* a, int64_t rs_a, int64_t cs_a,
              const T* b, int64_t rs_b, int64_t cs_b, T* c, int64_t ldc, bool accumulate) {
    for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
            T sum = 0;
            for (int64_t p = 0; p < k; ++p) sum += a[i * rs_a + p * cs_a] * b[p * rs_b + j * cs_b];
            c[i * ldc + j] = accumulate ? c[i * ldc + j] + sum : sum;
        }
}

}  // namespace

void gemm_strided(int64_t m, int64_t n, int64_t k, const float* a, int64_t rs_a, int64_t cs_a,
                  const float* b, int64_t rs_b, int64_t cs_b, float* c, int64_t ldc,
                  bool accumulate) {
    gemm_ref(m, n, k, a, rs_a, cs_a, b, rs_b, cs_b, c, ldc, accumulate);
}

void gemm_strided(int64_t m, int64_t n, int64_t k, const double* a, int64_t rs_a, int64_t cs_a,
                  const double* b, int64_t rs_b, int64_t cs_b, double* c, int64_t ldc,
                  bool accumulate) {
    gemm_ref(m, n, k, a, rs_a, cs_a, b, rs_b, cs_b, c, ldc, accumulate);
}

}  // namespace matgrad::reference
