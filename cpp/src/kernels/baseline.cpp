// Portable kernels: GCC/Clang vector extensions of 16 bytes, which become SSE2
// on x86-64 and NEON or scalar code elsewhere. Compiled with the default flags
// of the target, so this path runs on every CPU the wheel installs on.
#include "kernel_table.hpp"

namespace matgrad::detail {
namespace {

template <class Elem>
struct VecGeneric {
    using T = Elem;
    static constexpr int W = 16 / sizeof(T);
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

#include "microkernel_impl.inc"

using VecF32 = VecGeneric<float>;
using VecF64 = VecGeneric<double>;

constexpr KernelTable kTable = make_table<VecF32, VecF64, baseline_blocking::f32.mr,
                                          baseline_blocking::f32.nr / VecF32::W,
                                          baseline_blocking::f64.mr,
                                          baseline_blocking::f64.nr / VecF64::W>(
    "baseline", baseline_blocking::f32, baseline_blocking::f64);

}  // namespace

const KernelTable& baseline_kernels() { return kTable; }

}  // namespace matgrad::detail
