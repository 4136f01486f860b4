// One (image, channel) plane of 2-D max pooling: the maxima and where they are.
// Every output compares its window's elements in row-major order against the
// running maximum: strictly greater replaces it, so ties keep the first maximum,
// and a NaN replaces a number but not an earlier NaN, so the first NaN wins.
// The vector path, SSE2 on x86-64 and NEON on aarch64 (each architecture's
// baseline, so no dispatch), does those comparisons for 4 floats or 2 doubles
// of adjacent outputs at once (a row's last group overlapping the one before
// it); the scalar path does rows narrower than a group, and every row where
// neither is there. Both select without a branch: a branch the data decides is
// mispredicted half the time.
#pragma once

#include <cstdint>
#include <cstring>

#include "matgrad/matgrad.hpp"

#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
#define MATGRAD_POOL_SSE2 1
#define MATGRAD_POOL_LANES 1
#elif defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#define MATGRAD_POOL_NEON 1
#define MATGRAD_POOL_LANES 1
#endif

namespace matgrad {
namespace detail {

template <class T>
struct SameWidthUint;
template <>
struct SameWidthUint<float> {
    using type = uint32_t;
};
template <>
struct SameWidthUint<double> {
    using type = uint64_t;
};

// take ? v : b on bit patterns: compilers keep a `take ? v : b` of floats as a branch.
template <class T>
inline T select_bits(bool take, T v, T b) {
    using U = typename SameWidthUint<T>::type;
    U vu, bu;
    std::memcpy(&vu, &v, sizeof(T));
    std::memcpy(&bu, &b, sizeof(T));
    const U mask = U(0) - U(take);
    const U r = (vu & mask) | (bu & ~mask);
    T out;
    std::memcpy(&out, &r, sizeof(T));
    return out;
}

// One window, its running maximum and index in registers.
//   xp: [h×w], window from xp[start] -> *y, *at
template <int64_t kKernel, class T>
inline void max_window(const PoolShape& s, const T* __restrict xp, int64_t start, T* y, int64_t* at) {
    const int64_t kh = kKernel > 0 ? kKernel : s.kh, kw = kKernel > 0 ? kKernel : s.kw;
    T b = xp[start];
    int64_t b_at = start;
    for (int64_t r = 0; r < kh; ++r)
        for (int64_t c = r == 0 ? 1 : 0; c < kw; ++c) {
            const int64_t here = start + r * s.w + c;
            const T v = xp[here];
            const bool take = (v > b) | ((v != v) & (b == b));
            const int64_t mask = -int64_t(take);
            b_at = (here & mask) | (b_at & ~mask);
            b = select_bits(take, v, b);
        }
    *y = b;
    *at = b_at;
}

#if defined(MATGRAD_POOL_SSE2)

// The lanes of one SSE2 register: adjacent outputs, their column stride sw
// (kStride when it is a constant, 0 when only sw knows it). The window offsets
// ride in integer lanes as wide as the values, so the value's mask selects
// them too: 32 bits for floats.
template <class T>
struct VecLanes;

template <>
struct VecLanes<float> {
    static constexpr int64_t kCount = 4;
    using Vec = __m128;
    using Mask = __m128;
    using Off = __m128i;
    template <int64_t kStride>
    static Vec load(const float* p, int64_t sw) {
        if (kStride == 1) return _mm_loadu_ps(p);
        if (kStride == 2) {
            // p[0..3] and p[3..6]: lanes 0 and 2 of the first, 1 and 3 of the second,
            // so nothing past the last element the outputs read is touched
            const __m128 lo = _mm_loadu_ps(p), hi = _mm_loadu_ps(p + 3);
            return _mm_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 2, 0));
        }
        return _mm_set_ps(p[3 * sw], p[2 * sw], p[sw], p[0]);
    }
    // v > b, or v NaN where b is not
    static Mask take(Vec v, Vec b) {
        return _mm_or_ps(_mm_cmpgt_ps(v, b), _mm_andnot_ps(_mm_cmpunord_ps(b, b), _mm_cmpunord_ps(v, v)));
    }
    static Vec select(Mask m, Vec v, Vec b) { return _mm_or_ps(_mm_and_ps(m, v), _mm_andnot_ps(m, b)); }
    static Off zero_offsets() { return _mm_setzero_si128(); }
    static Off select_offset(Mask m, int64_t o, Off b) {
        const __m128i bits = _mm_castps_si128(m);
        return _mm_or_si128(_mm_and_si128(bits, _mm_set1_epi32(int32_t(o))), _mm_andnot_si128(bits, b));
    }
    static void store(Vec b, Off off, int64_t start, int64_t sw, float* y, int64_t* at) {
        _mm_storeu_ps(y, b);
        alignas(16) int32_t o[4];
        _mm_store_si128(reinterpret_cast<__m128i*>(o), off);
        for (int l = 0; l < 4; ++l) at[l] = start + l * sw + o[l];
    }
};

template <>
struct VecLanes<double> {
    static constexpr int64_t kCount = 2;
    using Vec = __m128d;
    using Mask = __m128d;
    using Off = __m128i;
    template <int64_t kStride>
    static Vec load(const double* p, int64_t sw) {
        if (kStride == 1) return _mm_loadu_pd(p);
        return _mm_loadh_pd(_mm_load_sd(p), p + (kStride > 0 ? kStride : sw));
    }
    static Mask take(Vec v, Vec b) {
        return _mm_or_pd(_mm_cmpgt_pd(v, b), _mm_andnot_pd(_mm_cmpunord_pd(b, b), _mm_cmpunord_pd(v, v)));
    }
    static Vec select(Mask m, Vec v, Vec b) { return _mm_or_pd(_mm_and_pd(m, v), _mm_andnot_pd(m, b)); }
    static Off zero_offsets() { return _mm_setzero_si128(); }
    static Off select_offset(Mask m, int64_t o, Off b) {
        const __m128i bits = _mm_castpd_si128(m);
        return _mm_or_si128(_mm_and_si128(bits, _mm_set1_epi64x(o)), _mm_andnot_si128(bits, b));
    }
    static void store(Vec b, Off off, int64_t start, int64_t sw, double* y, int64_t* at) {
        _mm_storeu_pd(y, b);
        alignas(16) int64_t o[2];
        _mm_store_si128(reinterpret_cast<__m128i*>(o), off);
        for (int l = 0; l < 2; ++l) at[l] = start + l * sw + o[l];
    }
};

#elif defined(MATGRAD_POOL_NEON)

// The same lanes in one NEON register (aarch64's baseline): vbsl selects by
// the comparison's mask, for the values and the offsets alike.
template <class T>
struct VecLanes;

template <>
struct VecLanes<float> {
    static constexpr int64_t kCount = 4;
    using Vec = float32x4_t;
    using Mask = uint32x4_t;
    using Off = uint32x4_t;
    template <int64_t kStride>
    static Vec load(const float* p, int64_t sw) {
        if (kStride == 1) return vld1q_f32(p);
        if (kStride == 2) {
            // p[0..3] and p[3..6] (nothing past p[6] is touched): rotate the
            // second to p[4], p[5], p[6], p[3], then take the even lanes of both
            const float32x4_t lo = vld1q_f32(p), hi = vld1q_f32(p + 3);
            return vuzp1q_f32(lo, vextq_f32(hi, hi, 1));
        }
        const float lanes[4] = {p[0], p[sw], p[2 * sw], p[3 * sw]};
        return vld1q_f32(lanes);
    }
    // v > b, or v NaN where b is not (x == x is false only for NaN)
    static Mask take(Vec v, Vec b) { return vorrq_u32(vcgtq_f32(v, b), vbicq_u32(vceqq_f32(b, b), vceqq_f32(v, v))); }
    static Vec select(Mask m, Vec v, Vec b) { return vbslq_f32(m, v, b); }
    static Off zero_offsets() { return vdupq_n_u32(0); }
    static Off select_offset(Mask m, int64_t o, Off b) { return vbslq_u32(m, vdupq_n_u32(uint32_t(o)), b); }
    static void store(Vec b, Off off, int64_t start, int64_t sw, float* y, int64_t* at) {
        vst1q_f32(y, b);
        uint32_t o[4];
        vst1q_u32(o, off);
        for (int l = 0; l < 4; ++l) at[l] = start + l * sw + int64_t(o[l]);
    }
};

template <>
struct VecLanes<double> {
    static constexpr int64_t kCount = 2;
    using Vec = float64x2_t;
    using Mask = uint64x2_t;
    using Off = uint64x2_t;
    template <int64_t kStride>
    static Vec load(const double* p, int64_t sw) {
        if (kStride == 1) return vld1q_f64(p);
        return vld1q_lane_f64(p + (kStride > 0 ? kStride : sw), vld1q_dup_f64(p), 1);
    }
    static Mask take(Vec v, Vec b) { return vorrq_u64(vcgtq_f64(v, b), vbicq_u64(vceqq_f64(b, b), vceqq_f64(v, v))); }
    static Vec select(Mask m, Vec v, Vec b) { return vbslq_f64(m, v, b); }
    static Off zero_offsets() { return vdupq_n_u64(0); }
    static Off select_offset(Mask m, int64_t o, Off b) { return vbslq_u64(m, vdupq_n_u64(uint64_t(o)), b); }
    static void store(Vec b, Off off, int64_t start, int64_t sw, double* y, int64_t* at) {
        vst1q_f64(y, b);
        uint64_t o[2];
        vst1q_u64(o, off);
        for (int l = 0; l < 2; ++l) at[l] = start + l * sw + int64_t(o[l]);
    }
};

#endif

#ifdef MATGRAD_POOL_LANES

// Float lanes carry a window offset r·w + c in 32 bits.
inline bool window_offsets_fit_lanes(const PoolShape& s, float) {
    return (s.kh - 1) * s.w + (s.kw - 1) <= INT32_MAX;
}
inline bool window_offsets_fit_lanes(const PoolShape&, double) { return true; }

// One group of L::kCount adjacent outputs, the first window at xp[start].
template <int64_t kStride, int64_t kKernel, class T>
inline void max_lanes(const PoolShape& s, const T* __restrict xp, int64_t start, int64_t sw, T* y, int64_t* at) {
    using L = VecLanes<T>;
    const int64_t kh = kKernel > 0 ? kKernel : s.kh, kw = kKernel > 0 ? kKernel : s.kw;
    const T* window = xp + start;
    typename L::Vec b = L::template load<kStride>(window, sw);
    typename L::Off b_off = L::zero_offsets();
    for (int64_t r = 0; r < kh; ++r)
        for (int64_t c = r == 0 ? 1 : 0; c < kw; ++c) {
            const int64_t off = r * s.w + c;
            const typename L::Vec v = L::template load<kStride>(window + off, sw);
            const typename L::Mask take = L::take(v, b);
            b_off = L::select_offset(take, off, b_off);
            b = L::select(take, v, b);
        }
    L::store(b, b_off, start, sw, y, at);
}

#endif  // MATGRAD_POOL_LANES

// xp: [h×w] -> yp, ap: [oh×ow]; kStride > 0 is stride_w known at compile
// time, kKernel > 0 a square kernel's side (the loops over the window unroll).
template <int64_t kStride, int64_t kKernel, class T>
void max_plane(const PoolShape& s, const T* __restrict xp, T* __restrict yp, int64_t* __restrict ap) {
    const int64_t oh = s.out_h(), ow = s.out_w(), sw = kStride > 0 ? kStride : s.stride_w;
#ifdef MATGRAD_POOL_LANES
    using L = VecLanes<T>;
    const bool lanes = window_offsets_fit_lanes(s, T());
#endif
    for (int64_t oy = 0; oy < oh; ++oy) {
        const int64_t top = oy * s.stride_h * s.w;
        T* __restrict y = yp + oy * ow;
        int64_t* __restrict at = ap + oy * ow;
#ifdef MATGRAD_POOL_LANES
        if (lanes && ow >= L::kCount) {
            // the last group ends at the row's end, overlapping the one before
            // it: those outputs are computed twice, to the same bits, instead
            // of by the scalar path at several times the cost per output
            const int64_t last = ow - L::kCount;
            for (int64_t ox = 0; ox < last; ox += L::kCount)
                max_lanes<kStride, kKernel>(s, xp, top + ox * sw, sw, y + ox, at + ox);
            max_lanes<kStride, kKernel>(s, xp, top + last * sw, sw, y + last, at + last);
            continue;
        }
#endif
        for (int64_t ox = 0; ox < ow; ++ox) max_window<kKernel>(s, xp, top + ox * sw, y + ox, at + ox);
    }
}

template <class T>
using MaxPlaneFn = void (*)(const PoolShape&, const T*, T*, int64_t*);

// The common strides (1, 2) and square kernels (2×2, 3×3) as constants.
template <int64_t kStride, class T>
MaxPlaneFn<T> max_plane_for_kernel(const PoolShape& s) {
    if (s.kh == s.kw && s.kh == 2) return max_plane<kStride, 2, T>;
    if (s.kh == s.kw && s.kh == 3) return max_plane<kStride, 3, T>;
    return max_plane<kStride, 0, T>;
}
template <class T>
MaxPlaneFn<T> max_plane_for(const PoolShape& s) {
    if (s.stride_w == 1) return max_plane_for_kernel<1, T>(s);
    if (s.stride_w == 2) return max_plane_for_kernel<2, T>(s);
    return max_plane_for_kernel<0, T>(s);
}

}  // namespace detail
}  // namespace matgrad
