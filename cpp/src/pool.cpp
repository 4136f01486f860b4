// 2-D max and average pooling over NCHW planes. Each (image, channel) plane is
// independent, so threads split the planes; within a plane the backward adds
// into dx in a fixed order, so overlapping windows (stride < kernel) sum the
// same way whatever the thread count.
#include <algorithm>

#include "matgrad/matgrad.hpp"
#include "pool_max_plane.hpp"
#include "threads.hpp"

namespace matgrad {
namespace detail {
namespace {

constexpr int64_t kPoolParallelMinWork = int64_t{1} << 15;  // window reads

template <class Body>
void for_planes(int64_t planes, int64_t work, const Body& body) {
    const int threads = work >= kPoolParallelMinWork ? max_threads() : 1;
    if (threads <= 1 || planes < 2) {
        body(int64_t{0}, planes);
        return;
    }
    run_team(threads, [&](int tid, int team) {
        const int64_t base = planes / team, extra = planes % team;
        const int64_t first = tid * base + std::min<int64_t>(tid, extra);
        body(first, first + base + (tid < extra ? 1 : 0));
    });
}

// x: [n×c×h×w] -> y, argmax: [n×c×oh×ow]
template <class T>
void max_forward(const PoolShape& s, const T* x, T* y, int64_t* argmax) {
    const int64_t plane = s.h * s.w, out_plane = s.out_h() * s.out_w();
    const MaxPlaneFn<T> plane_fn = max_plane_for<T>(s);
    for_planes(s.n * s.c, s.n * s.c * out_plane * s.kh * s.kw, [&](int64_t first, int64_t end) {
        for (int64_t p = first; p < end; ++p) plane_fn(s, x + p * plane, y + p * out_plane, argmax + p * out_plane);
    });
}

// dy, argmax: [n×c×oh×ow] -> dx: [n×c×h×w]
template <class T>
void max_backward(const PoolShape& s, const T* dy, const int64_t* argmax, T* dx, bool accumulate) {
    const int64_t plane = s.h * s.w, out_plane = s.out_h() * s.out_w();
    for_planes(s.n * s.c, s.n * s.c * (plane + out_plane), [&](int64_t first, int64_t end) {
        for (int64_t p = first; p < end; ++p) {
            T* dxp = dx + p * plane;
            if (!accumulate) std::fill(dxp, dxp + plane, T(0));
            const T* dyp = dy + p * out_plane;
            const int64_t* ap = argmax + p * out_plane;
            // y = x[argmax]  ->  dL/dx[argmax] += dL/dy
            for (int64_t o = 0; o < out_plane; ++o) dxp[ap[o]] += dyp[o];
        }
    });
}

template <class T>
void avg_forward(const PoolShape& s, const T* x, T* y) {
    const int64_t oh = s.out_h(), ow = s.out_w(), plane = s.h * s.w, out_plane = oh * ow;
    const T scale = T(1) / T(s.kh * s.kw);
    for_planes(s.n * s.c, s.n * s.c * out_plane * s.kh * s.kw, [&](int64_t first, int64_t end) {
        for (int64_t p = first; p < end; ++p) {
            const T* xp = x + p * plane;
            T* yp = y + p * out_plane;
            for (int64_t oy = 0; oy < oh; ++oy)
                for (int64_t ox = 0; ox < ow; ++ox) {
                    T sum = 0;
                    for (int64_t r = 0; r < s.kh; ++r) {
                        const T* row = xp + (oy * s.stride_h + r) * s.w + ox * s.stride_w;
                        for (int64_t c = 0; c < s.kw; ++c) sum += row[c];
                    }
                    yp[oy * ow + ox] = sum * scale;
                }
        }
    });
}

template <class T>
void avg_backward(const PoolShape& s, const T* dy, T* dx, bool accumulate) {
    const int64_t oh = s.out_h(), ow = s.out_w(), plane = s.h * s.w, out_plane = oh * ow;
    const T scale = T(1) / T(s.kh * s.kw);
    for_planes(s.n * s.c, s.n * s.c * out_plane * s.kh * s.kw, [&](int64_t first, int64_t end) {
        for (int64_t p = first; p < end; ++p) {
            T* dxp = dx + p * plane;
            if (!accumulate) std::fill(dxp, dxp + plane, T(0));
            const T* dyp = dy + p * out_plane;
            // y = Σ_window x / (kh·kw)  ->  each x in the window gets dL/dy / (kh·kw)
            for (int64_t oy = 0; oy < oh; ++oy)
                for (int64_t ox = 0; ox < ow; ++ox) {
                    const T g = dyp[oy * ow + ox] * scale;
                    for (int64_t r = 0; r < s.kh; ++r) {
                        T* row = dxp + (oy * s.stride_h + r) * s.w + ox * s.stride_w;
                        for (int64_t c = 0; c < s.kw; ++c) row[c] += g;
                    }
                }
        }
    });
}

}  // namespace
}  // namespace detail

bool PoolShape::valid() const {
    constexpr int64_t kLimit = int64_t{1} << 31;
    for (const int64_t v : {n, c, h, w, kh, kw, stride_h, stride_w})
        if (v < 0 || v >= kLimit) return false;
    if (h == 0 || w == 0 || kh == 0 || kw == 0 || stride_h == 0 || stride_w == 0) return false;
    if (kh > h || kw > w) return false;
    const double count = double(n) * double(c) * double(h) * double(w);  // y has fewer
    return count < 9.0e18;
}

void max_pool2d_forward(const PoolShape& s, const float* x, float* y, int64_t* argmax) {
    detail::max_forward(s, x, y, argmax);
}
void max_pool2d_forward(const PoolShape& s, const double* x, double* y, int64_t* argmax) {
    detail::max_forward(s, x, y, argmax);
}
void max_pool2d_backward(const PoolShape& s, const float* dy, const int64_t* argmax, float* dx,
                         bool accumulate) {
    detail::max_backward(s, dy, argmax, dx, accumulate);
}
void max_pool2d_backward(const PoolShape& s, const double* dy, const int64_t* argmax, double* dx,
                         bool accumulate) {
    detail::max_backward(s, dy, argmax, dx, accumulate);
}
void avg_pool2d_forward(const PoolShape& s, const float* x, float* y) { detail::avg_forward(s, x, y); }
void avg_pool2d_forward(const PoolShape& s, const double* x, double* y) { detail::avg_forward(s, x, y); }
void avg_pool2d_backward(const PoolShape& s, const float* dy, float* dx, bool accumulate) {
    detail::avg_backward(s, dy, dx, accumulate);
}
void avg_pool2d_backward(const PoolShape& s, const double* dy, double* dx, bool accumulate) {
    detail::avg_backward(s, dy, dx, accumulate);
}

}  // namespace matgrad
