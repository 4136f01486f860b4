// NEON kernels for aarch64, where NEON (AdvSIMD) is part of the architecture:
// chosen at build time (no run-time check is needed), with the portable baseline
// beside it for MATGRAD_ISA=baseline. 32 vector registers of 128 bits hold
// bigger register tiles than x86's 16: f32 8 rows × 3 vectors (24 accumulators,
// 3 B vectors, 1 broadcast), f64 6 rows × 4 vectors (24 + 4 + 1), the shapes of
// BLIS's armv8a kernels (8×12 s, 6×8 d, there column-major).
#include "kernel_table.hpp"

#if defined(MATGRAD_HAVE_NEON_KERNELS)
#include <arm_neon.h>

namespace matgrad::detail {
namespace {

struct VecF32 {
    using T = float;
    using reg = float32x4_t;
    static constexpr int W = 4;
    static constexpr int kPackedACopies = 1;  // a broadcast from memory is one load
    static reg zero() { return vdupq_n_f32(0.0f); }
    static reg load(const T* p) { return vld1q_f32(p); }
    static reg loadu(const T* p) { return vld1q_f32(p); }
    static void storeu(T* p, reg r) { vst1q_f32(p, r); }
    static reg set1(T x) { return vdupq_n_f32(x); }
    static reg fmadd(reg a, reg b, reg c) { return vfmaq_f32(c, a, b); }
    static reg add(reg a, reg b) { return vaddq_f32(a, b); }
    // NEON has no non-temporal store intrinsic (STNP is only a hint): plain stores.
    static void stream(T* p, reg r) { vst1q_f32(p, r); }
    static void stream_fence() {}
    // A bit-select rather than vmaxq: x < 0 is false for NaN and for -0.0, so both
    // pass through unchanged, as in the scalar reference.
    static reg relu(reg x) { return vbslq_f32(vcltq_f32(x, zero()), zero(), x); }
    static reg relu_mask(reg dy, reg x) {
        return vreinterpretq_f32_u32(vandq_u32(vcgtq_f32(x, zero()), vreinterpretq_u32_f32(dy)));
    }
    // In: r[i] = row i of a 4×4 block. Out: r[q] = column q.
    static void transpose(reg r[W]) {
        const reg t0 = vtrn1q_f32(r[0], r[1]), t1 = vtrn2q_f32(r[0], r[1]);
        const reg t2 = vtrn1q_f32(r[2], r[3]), t3 = vtrn2q_f32(r[2], r[3]);
        const float64x2_t d0 = vreinterpretq_f64_f32(t0), d1 = vreinterpretq_f64_f32(t1);
        const float64x2_t d2 = vreinterpretq_f64_f32(t2), d3 = vreinterpretq_f64_f32(t3);
        r[0] = vreinterpretq_f32_f64(vtrn1q_f64(d0, d2));
        r[1] = vreinterpretq_f32_f64(vtrn1q_f64(d1, d3));
        r[2] = vreinterpretq_f32_f64(vtrn2q_f64(d0, d2));
        r[3] = vreinterpretq_f32_f64(vtrn2q_f64(d1, d3));
    }
};

struct VecF64 {
    using T = double;
    using reg = float64x2_t;
    static constexpr int W = 2;
    static constexpr int kPackedACopies = 1;  // a broadcast from memory is one load
    static reg zero() { return vdupq_n_f64(0.0); }
    static reg load(const T* p) { return vld1q_f64(p); }
    static reg loadu(const T* p) { return vld1q_f64(p); }
    static void storeu(T* p, reg r) { vst1q_f64(p, r); }
    static reg set1(T x) { return vdupq_n_f64(x); }
    static reg fmadd(reg a, reg b, reg c) { return vfmaq_f64(c, a, b); }
    static reg add(reg a, reg b) { return vaddq_f64(a, b); }
    static void stream(T* p, reg r) { vst1q_f64(p, r); }
    static void stream_fence() {}
    static reg relu(reg x) { return vbslq_f64(vcltq_f64(x, zero()), zero(), x); }
    static reg relu_mask(reg dy, reg x) {
        return vreinterpretq_f64_u64(vandq_u64(vcgtq_f64(x, zero()), vreinterpretq_u64_f64(dy)));
    }
    // In: r[i] = row i of a 2×2 block. Out: r[q] = column q.
    static void transpose(reg r[W]) {
        const reg c0 = vtrn1q_f64(r[0], r[1]), c1 = vtrn2q_f64(r[0], r[1]);
        r[0] = c0;
        r[1] = c1;
    }
};

#include "kernel_set_impl.inc"

constexpr KernelTable kTable = make_table<VecF32, VecF64, neon_blocking::f32.mr,
                                          neon_blocking::f32.nr / VecF32::W,
                                          neon_blocking::f64.mr,
                                          neon_blocking::f64.nr / VecF64::W>(
    "neon", neon_blocking::f32, neon_blocking::f64, &pack_b_transposed<VecF32>,
    &pack_b_transposed<VecF64>, &pack_a_rows<VecF32, neon_blocking::f32.mr>,
    &pack_a_rows<VecF64, neon_blocking::f64.mr>);

}  // namespace

const KernelTable& neon_kernels() { return kTable; }

}  // namespace matgrad::detail
#endif
