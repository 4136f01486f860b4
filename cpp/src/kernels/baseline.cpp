// Portable kernels of 16-byte vectors, compiled with the default flags of the
// target, so this path runs on every CPU the wheel installs on: SSE2 intrinsics on
// x86-64 (part of the architecture, and the one spelling GCC, Clang and MSVC share),
// GCC/Clang vector extensions elsewhere (NEON or scalar code).
#include "kernel_table.hpp"

#if defined(__x86_64__) || defined(_M_X64) || defined(__SSE2__)
#include <emmintrin.h>
#define MATGRAD_BASELINE_SSE2 1
#endif

namespace matgrad::detail {
namespace {

#if defined(MATGRAD_BASELINE_SSE2)
// No FMA in SSE2: a multiply, then an add (the same two roundings as the vector
// extensions below). max returns its second operand when either is NaN (as the
// AVX2 kernels' vmaxps): max(0, NaN) = NaN, max(0, -0.0) = -0.0.
// No broadcast load in SSE2 either (movddup is SSE3): set1 from memory is a load
// and a shuffle, and the shuffles of a 2-row tile's broadcasts compete with its
// multiplies and adds. So packed A stores each value W times in a row
// (kPackedACopies, pack.hpp), and the packed tiles broadcast with one load:
// GotoBLAS's SSE2 kernels duplicate their operands the same way. The tiles alone,
// one thread, in one process, alternated with the set1 version (Xeon family 6
// model 207): f64 2×12 1.06-1.09×, f32 2×24 1.07-1.11× the speed.
struct VecF32 {
    using T = float;
    using reg = __m128;
    static constexpr int W = 4;
    static constexpr int kPackedACopies = W;
    static reg zero() { return _mm_setzero_ps(); }
    static reg load(const T* p) { return _mm_load_ps(p); }
    static reg loadu(const T* p) { return _mm_loadu_ps(p); }
    static void storeu(T* p, reg r) { _mm_storeu_ps(p, r); }
    static reg set1(T x) { return _mm_set1_ps(x); }
    static reg fmadd(reg a, reg b, reg c) { return _mm_add_ps(_mm_mul_ps(a, b), c); }
    static reg add(reg a, reg b) { return _mm_add_ps(a, b); }
    // Plain stores, as on the other targets of this unit.
    static void stream(T* p, reg r) { storeu(p, r); }
    static void stream_fence() {}
    static reg relu(reg x) { return _mm_max_ps(_mm_setzero_ps(), x); }
    static reg relu_mask(reg dy, reg x) { return _mm_and_ps(_mm_cmpgt_ps(x, _mm_setzero_ps()), dy); }
};

struct VecF64 {
    using T = double;
    using reg = __m128d;
    static constexpr int W = 2;
    static constexpr int kPackedACopies = W;  // as VecF32's
    static reg zero() { return _mm_setzero_pd(); }
    static reg load(const T* p) { return _mm_load_pd(p); }
    static reg loadu(const T* p) { return _mm_loadu_pd(p); }
    static void storeu(T* p, reg r) { _mm_storeu_pd(p, r); }
    static reg set1(T x) { return _mm_set1_pd(x); }
    static reg fmadd(reg a, reg b, reg c) { return _mm_add_pd(_mm_mul_pd(a, b), c); }
    static reg add(reg a, reg b) { return _mm_add_pd(a, b); }
    static void stream(T* p, reg r) { storeu(p, r); }
    static void stream_fence() {}
    static reg relu(reg x) { return _mm_max_pd(_mm_setzero_pd(), x); }
    static reg relu_mask(reg dy, reg x) { return _mm_and_pd(_mm_cmpgt_pd(x, _mm_setzero_pd()), dy); }
};
#else
template <class Elem>
struct VecGeneric {
    using T = Elem;
    static constexpr int W = 16 / sizeof(T);
    // NEON's broadcast from memory is one load (ld1r); elsewhere plain copies.
    static constexpr int kPackedACopies = 1;
    typedef T reg __attribute__((vector_size(16)));
    static reg zero() { return reg{}; }
    static reg load(const T* p) { return *reinterpret_cast<const reg*>(p); }
    static reg loadu(const T* p) {
        reg r;
        __builtin_memcpy(&r, p, sizeof r);
        return r;
    }
    static void storeu(T* p, reg r) { __builtin_memcpy(p, &r, sizeof r); }
    // A braced list of x: GCC makes it one shuffle. Filling the lanes one by one
    // compiled to nine SSE instructions per broadcast (12.2, f32), which held the
    // baseline's float tiles to about half their speed; `reg{} + x` would add +0.0
    // to x first (an extra add, and -0.0 would become +0.0).
    static reg set1(T x) {
        static_assert(W == 4 || W == 2, "16-byte vectors of float or double");
        if constexpr (W == 4)
            return reg{x, x, x, x};
        else
            return reg{x, x};
    }
    static reg fmadd(reg a, reg b, reg c) { return a * b + c; }
    static reg add(reg a, reg b) { return a + b; }
    // No portable non-temporal store: plain stores.
    static void stream(T* p, reg r) { storeu(p, r); }
    static void stream_fence() {}
    // x < 0 is false for NaN, so NaN passes through.
    static reg relu(reg x) { return x < 0 ? reg{} : x; }
    static reg relu_mask(reg dy, reg x) { return x > 0 ? dy : reg{}; }
};
using VecF32 = VecGeneric<float>;
using VecF64 = VecGeneric<double>;
#endif

#include "kernel_set_impl.inc"

constexpr KernelTable kTable = make_table<VecF32, VecF64, baseline_blocking::f32.mr,
                                          baseline_blocking::f32.nr / VecF32::W,
                                          baseline_blocking::f64.mr,
                                          baseline_blocking::f64.nr / VecF64::W>(
    "baseline", baseline_blocking::f32, baseline_blocking::f64, nullptr, nullptr, nullptr, nullptr,
    nullptr, nullptr, baseline_blocking::kStreamedMaxRowsF32,
    baseline_blocking::kStreamedMaxRowsF64, baseline_blocking::kTransposedRowsMaxRows, 0,
    baseline_blocking::kStreamedNarrowMaxRowsF32, baseline_blocking::kStreamedNarrowMaxRowsF64);

}  // namespace

const KernelTable& baseline_kernels() { return kTable; }

}  // namespace matgrad::detail
