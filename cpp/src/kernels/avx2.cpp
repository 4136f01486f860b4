// AVX2+FMA kernels. Compiled with -mavx2 -mfma; only reached when CPUID says
// the CPU supports AVX2 and FMA (dispatch.cpp).
#include "kernel_table.hpp"

#if defined(MATGRAD_HAVE_X86_ISAS)
#include <immintrin.h>

namespace matgrad::detail {
namespace {

struct VecF32 {
    using T = float;
    using reg = __m256;
    static constexpr int W = 8;
    static reg zero() { return _mm256_setzero_ps(); }
    static reg load(const T* p) { return _mm256_load_ps(p); }
    static reg loadu(const T* p) { return _mm256_loadu_ps(p); }
    static void storeu(T* p, reg r) { _mm256_storeu_ps(p, r); }
    static reg set1(T x) { return _mm256_set1_ps(x); }
    static reg fmadd(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
    static reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
    static void stream(T* p, reg r) { _mm256_stream_ps(p, r); }
    static void stream_fence() { _mm_sfence(); }
    // vmaxps returns its second operand when either is NaN: max(0, NaN) = NaN.
    static reg relu(reg x) { return _mm256_max_ps(_mm256_setzero_ps(), x); }
    static reg relu_mask(reg dy, reg x) {
        return _mm256_and_ps(_mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ), dy);
    }
};

struct VecF64 {
    using T = double;
    using reg = __m256d;
    static constexpr int W = 4;
    static reg zero() { return _mm256_setzero_pd(); }
    static reg load(const T* p) { return _mm256_load_pd(p); }
    static reg loadu(const T* p) { return _mm256_loadu_pd(p); }
    static void storeu(T* p, reg r) { _mm256_storeu_pd(p, r); }
    static reg set1(T x) { return _mm256_set1_pd(x); }
    static reg fmadd(reg a, reg b, reg c) { return _mm256_fmadd_pd(a, b, c); }
    static reg add(reg a, reg b) { return _mm256_add_pd(a, b); }
    static void stream(T* p, reg r) { _mm256_stream_pd(p, r); }
    static void stream_fence() { _mm_sfence(); }
    static reg relu(reg x) { return _mm256_max_pd(_mm256_setzero_pd(), x); }
    static reg relu_mask(reg dy, reg x) {
        return _mm256_and_pd(_mm256_cmp_pd(x, _mm256_setzero_pd(), _CMP_GT_OQ), dy);
    }
};

#include "microkernel_impl.inc"

constexpr KernelTable kTable = make_table<VecF32, VecF64, avx2_blocking::f32.mr,
                                          avx2_blocking::f32.nr / VecF32::W,
                                          avx2_blocking::f64.mr,
                                          avx2_blocking::f64.nr / VecF64::W>(
    "avx2", avx2_blocking::f32, avx2_blocking::f64);

}  // namespace

const KernelTable& avx2_kernels() { return kTable; }

}  // namespace matgrad::detail
#endif
