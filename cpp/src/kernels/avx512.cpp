// AVX-512 kernels. Compiled with -mavx512f -mfma; only reached when CPUID says
// the CPU and OS support AVX-512 (dispatch.cpp).
#include "kernel_table.hpp"

#if defined(MATGRAD_HAVE_X86_ISAS)
#include <immintrin.h>

namespace matgrad::detail {
namespace {

struct VecF32 {
    using T = float;
    using reg = __m512;
    static constexpr int W = 16;
    static reg zero() { return _mm512_setzero_ps(); }
    static reg load(const T* p) { return _mm512_load_ps(p); }
    static reg loadu(const T* p) { return _mm512_loadu_ps(p); }
    static void storeu(T* p, reg r) { _mm512_storeu_ps(p, r); }
    static reg set1(T x) { return _mm512_set1_ps(x); }
    static reg fmadd(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
    static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
    // vmaxps returns its second operand when either is NaN: max(0, NaN) = NaN.
    static reg relu(reg x) { return _mm512_max_ps(_mm512_setzero_ps(), x); }
    static reg relu_mask(reg dy, reg x) {
        return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GT_OQ), dy);
    }
};

struct VecF64 {
    using T = double;
    using reg = __m512d;
    static constexpr int W = 8;
    static reg zero() { return _mm512_setzero_pd(); }
    static reg load(const T* p) { return _mm512_load_pd(p); }
    static reg loadu(const T* p) { return _mm512_loadu_pd(p); }
    static void storeu(T* p, reg r) { _mm512_storeu_pd(p, r); }
    static reg set1(T x) { return _mm512_set1_pd(x); }
    static reg fmadd(reg a, reg b, reg c) { return _mm512_fmadd_pd(a, b, c); }
    static reg add(reg a, reg b) { return _mm512_add_pd(a, b); }
    static reg relu(reg x) { return _mm512_max_pd(_mm512_setzero_pd(), x); }
    static reg relu_mask(reg dy, reg x) {
        return _mm512_maskz_mov_pd(_mm512_cmp_pd_mask(x, _mm512_setzero_pd(), _CMP_GT_OQ), dy);
    }
};

#include "microkernel_impl.inc"

constexpr KernelTable kTable = make_table<VecF32, VecF64, avx512_blocking::f32.mr,
                                          avx512_blocking::f32.nr / VecF32::W,
                                          avx512_blocking::f64.mr,
                                          avx512_blocking::f64.nr / VecF64::W>(
    "avx512", avx512_blocking::f32, avx512_blocking::f64);

}  // namespace

const KernelTable& avx512_kernels() { return kTable; }

}  // namespace matgrad::detail
#endif
