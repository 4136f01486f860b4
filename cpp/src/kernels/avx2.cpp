// AVX2+FMA kernels. Compiled with -mavx2 -mfma; only reached when CPUID says
// the CPU supports AVX2 and FMA (dispatch.cpp).
#include "kernel_table.hpp"

#if defined(MATGRAD_HAVE_X86_ISAS)
#include <immintrin.h>

namespace matgrad::detail {
namespace {

// In-register transposes for the packing of op(B) = wᵀ (pack_b_transposed in
// pack_impl.inc). In: r[i] = row i of an 8×8 block of floats. Out: r[q] = column q.
inline void transpose8x8(__m256 r[8]) {
    __m256 t[8], u[8];
    for (int i = 0; i < 4; ++i) {  // pairs of rows, per 128-bit lane
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int g = 0; g < 2; ++g) {  // u[4g + c], lane L: rows 4g..4g+3 of column 4L + c
        const __m256d a = _mm256_castps_pd(t[4 * g]), b = _mm256_castps_pd(t[4 * g + 1]);
        const __m256d c = _mm256_castps_pd(t[4 * g + 2]), d = _mm256_castps_pd(t[4 * g + 3]);
        u[4 * g] = _mm256_castpd_ps(_mm256_unpacklo_pd(a, c));
        u[4 * g + 1] = _mm256_castpd_ps(_mm256_unpackhi_pd(a, c));
        u[4 * g + 2] = _mm256_castpd_ps(_mm256_unpacklo_pd(b, d));
        u[4 * g + 3] = _mm256_castpd_ps(_mm256_unpackhi_pd(b, d));
    }
    for (int c = 0; c < 4; ++c) {  // low lanes: columns 0..3, high lanes: columns 4..7
        r[c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x20);
        r[4 + c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x31);
    }
}

// In: r[i] = row i of a 4×4 block of doubles. Out: r[q] = column q.
inline void transpose4x4(__m256d r[4]) {
    const __m256d t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);
    const __m256d t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);
    r[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
    r[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
    r[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
    r[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
}

struct VecF32 {
    using T = float;
    using reg = __m256;
    static constexpr int W = 8;
    static constexpr int kPackedACopies = 1;  // a broadcast from memory is one load
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
    static void transpose(reg r[W]) { transpose8x8(r); }
};

struct VecF64 {
    using T = double;
    using reg = __m256d;
    static constexpr int W = 4;
    static constexpr int kPackedACopies = 1;  // a broadcast from memory is one load
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
    static void transpose(reg r[W]) { transpose4x4(r); }
};

#include "kernel_set_impl.inc"

constexpr KernelTable kTable = make_table<VecF32, VecF64, avx2_blocking::f32.mr,
                                          avx2_blocking::f32.nr / VecF32::W,
                                          avx2_blocking::f64.mr,
                                          avx2_blocking::f64.nr / VecF64::W>(
    "avx2", avx2_blocking::f32, avx2_blocking::f64, &pack_b_transposed<VecF32>,
    &pack_b_transposed<VecF64>, &pack_a_rows<VecF32, avx2_blocking::f32.mr>,
    &pack_a_rows<VecF64, avx2_blocking::f64.mr>, &axpy_rows_loop<VecF32>, &axpy_rows_loop<VecF64>,
    avx2_blocking::kStreamedMaxRowsF32, avx2_blocking::kStreamedMaxRowsF64,
    avx2_blocking::kTransposedRowsMaxRows, avx2_blocking::kTransposedRowsMaxRows,
    avx2_blocking::kStreamedNarrowMaxRowsF32, avx2_blocking::kStreamedNarrowMaxRowsF64);

}  // namespace

const KernelTable& avx2_kernels() { return kTable; }

}  // namespace matgrad::detail
#endif
