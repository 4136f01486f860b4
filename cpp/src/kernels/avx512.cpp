// AVX-512 kernels. Compiled with -mavx512f -mfma; only reached when CPUID says
// the CPU and OS support AVX-512 (dispatch.cpp).
#include "kernel_table.hpp"

#if defined(MATGRAD_HAVE_X86_ISAS)
#include <immintrin.h>

namespace matgrad::detail {
namespace {

// In-register transposes for the packing of op(B) = wᵀ (pack_b_transposed in
// pack_impl.inc).

// In: r[i] = row i (i < 16) of a 16×16 block. Out: r[q] = column q.
inline void transpose16(__m512 r[16]) {
    __m512 t[16], u[16];
    for (int i = 0; i < 8; ++i) {  // pairs of rows, per 128-bit lane
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int g = 0; g < 4; ++g) {  // u[4g + c], lane L: rows 4g..4g+3 of column 4L + c
        const __m512d a = _mm512_castps_pd(t[4 * g]), b = _mm512_castps_pd(t[4 * g + 1]);
        const __m512d c = _mm512_castps_pd(t[4 * g + 2]), d = _mm512_castps_pd(t[4 * g + 3]);
        u[4 * g] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        u[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        u[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        u[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    for (int c = 0; c < 4; ++c) {  // gather lane L of u[c], u[4+c], u[8+c], u[12+c]
        const __m512 lo01 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x44);
        const __m512 hi01 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xEE);
        const __m512 lo23 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x44);
        const __m512 hi23 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xEE);
        r[c] = _mm512_shuffle_f32x4(lo01, lo23, 0x88);
        r[4 + c] = _mm512_shuffle_f32x4(lo01, lo23, 0xDD);
        r[8 + c] = _mm512_shuffle_f32x4(hi01, hi23, 0x88);
        r[12 + c] = _mm512_shuffle_f32x4(hi01, hi23, 0xDD);
    }
}

// In: r[i] = row i (i < 8) of an 8×8 block of doubles. Out: r[q] = column q.
inline void transpose8(__m512d r[8]) {
    __m512d t[8];
    for (int i = 0; i < 4; ++i) {  // t[2g + c], lane L: rows 2g, 2g+1 of column 2L + c
        t[2 * i] = _mm512_unpacklo_pd(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_pd(r[2 * i], r[2 * i + 1]);
    }
    for (int c = 0; c < 2; ++c) {
        const __m512d lo01 = _mm512_shuffle_f64x2(t[c], t[2 + c], 0x44);
        const __m512d hi01 = _mm512_shuffle_f64x2(t[c], t[2 + c], 0xEE);
        const __m512d lo23 = _mm512_shuffle_f64x2(t[4 + c], t[6 + c], 0x44);
        const __m512d hi23 = _mm512_shuffle_f64x2(t[4 + c], t[6 + c], 0xEE);
        r[c] = _mm512_shuffle_f64x2(lo01, lo23, 0x88);
        r[2 + c] = _mm512_shuffle_f64x2(lo01, lo23, 0xDD);
        r[4 + c] = _mm512_shuffle_f64x2(hi01, hi23, 0x88);
        r[6 + c] = _mm512_shuffle_f64x2(hi01, hi23, 0xDD);
    }
}

struct VecF32 {
    using T = float;
    using reg = __m512;
    static constexpr int W = 16;
    static constexpr int kPackedACopies = 1;  // a broadcast from memory is one load
    static reg zero() { return _mm512_setzero_ps(); }
    static reg load(const T* p) { return _mm512_load_ps(p); }
    static reg loadu(const T* p) { return _mm512_loadu_ps(p); }
    static void storeu(T* p, reg r) { _mm512_storeu_ps(p, r); }
    static reg set1(T x) { return _mm512_set1_ps(x); }
    static reg fmadd(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
    static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
    static void stream(T* p, reg r) { _mm512_stream_ps(p, r); }
    static void stream_fence() { _mm_sfence(); }
    // vmaxps returns its second operand when either is NaN: max(0, NaN) = NaN.
    static reg relu(reg x) { return _mm512_max_ps(_mm512_setzero_ps(), x); }
    static reg relu_mask(reg dy, reg x) {
        return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GT_OQ), dy);
    }
    static void transpose(reg r[W]) { transpose16(r); }
};

struct VecF64 {
    using T = double;
    using reg = __m512d;
    static constexpr int W = 8;
    static constexpr int kPackedACopies = 1;  // a broadcast from memory is one load
    static reg zero() { return _mm512_setzero_pd(); }
    static reg load(const T* p) { return _mm512_load_pd(p); }
    static reg loadu(const T* p) { return _mm512_loadu_pd(p); }
    static void storeu(T* p, reg r) { _mm512_storeu_pd(p, r); }
    static reg set1(T x) { return _mm512_set1_pd(x); }
    static reg fmadd(reg a, reg b, reg c) { return _mm512_fmadd_pd(a, b, c); }
    static reg add(reg a, reg b) { return _mm512_add_pd(a, b); }
    static void stream(T* p, reg r) { _mm512_stream_pd(p, r); }
    static void stream_fence() { _mm_sfence(); }
    static reg relu(reg x) { return _mm512_max_pd(_mm512_setzero_pd(), x); }
    static reg relu_mask(reg dy, reg x) {
        return _mm512_maskz_mov_pd(_mm512_cmp_pd_mask(x, _mm512_setzero_pd(), _CMP_GT_OQ), dy);
    }
    static void transpose(reg r[W]) { transpose8(r); }
};

#include "kernel_set_impl.inc"

constexpr KernelTable kTable = make_table<VecF32, VecF64, avx512_blocking::f32.mr,
                                          avx512_blocking::f32.nr / VecF32::W,
                                          avx512_blocking::f64.mr,
                                          avx512_blocking::f64.nr / VecF64::W>(
    "avx512", avx512_blocking::f32, avx512_blocking::f64, &pack_b_transposed<VecF32>,
    &pack_b_transposed<VecF64>, &pack_a_rows<VecF32, avx512_blocking::f32.mr>,
    &pack_a_rows<VecF64, avx512_blocking::f64.mr>, &axpy_rows_loop<VecF32>, &axpy_rows_loop<VecF64>,
    avx512_blocking::kStreamedMaxRowsF32, avx512_blocking::kStreamedMaxRowsF64,
    avx512_blocking::kTransposedRowsMaxRows, avx512_blocking::kTransposedRowsMaxRows,
    avx512_blocking::kStreamedNarrowMaxRowsF32, avx512_blocking::kStreamedNarrowMaxRowsF64);

}  // namespace

const KernelTable& avx512_kernels() { return kTable; }

}  // namespace matgrad::detail
#endif
