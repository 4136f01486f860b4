// Convolution and pooling against direct loops over the definition (the oracle):
// odd sizes, strides, padding, kernels as large as the padded input, 1×1, the
// fused ReLU, accumulation, zero images, both dtypes, and 1 vs 2 threads;
// max pooling's ties and NaNs index for index.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "conv_internal.hpp"
#include "matgrad/matgrad.hpp"

namespace {

int failures = 0;
int runs_with_columns = 0, runs_implicit = 0;  // check_conv calls per scheme

template <class T>
void expect_close(const char* what, const std::vector<T>& got, const std::vector<T>& want, double tol) {
    double worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < want.size(); ++i) {
        const double err = std::fabs(double(got[i]) - double(want[i])) / (1.0 + std::fabs(double(want[i])));
        if (!(err <= worst)) worst = err, at = i;  // NaN counts as the worst
    }
    if (got.size() != want.size() || !(worst <= tol)) {
        std::printf("FAIL %s: error %.3g at %zu (got %.9g, want %.9g)\n", what, worst, at,
                    double(got[at]), double(want[at]));
        ++failures;
    }
}

template <class T>
std::vector<T> random_vector(size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<double> dist;
    std::vector<T> v(n);
    for (auto& e : v) e = T(dist(rng));
    return v;
}

// x(i, c, y, x) with zero padding outside.
template <class T>
T at(const matgrad::ConvShape& s, const std::vector<T>& x, int64_t i, int64_t c, int64_t y, int64_t xx) {
    if (y < 0 || y >= s.h || xx < 0 || xx >= s.w) return T(0);
    return x[((i * s.c + c) * s.h + y) * s.w + xx];
}

template <class T>
void check_conv(matgrad::ConvShape s, bool relu, bool with_bias, double tol, unsigned seed) {
    const int64_t oh = s.out_h(), ow = s.out_w(), K = s.col_rows(), P = s.col_cols();
    const auto x = random_vector<T>(s.n * s.c * s.h * s.w, seed);
    const auto w = random_vector<T>(s.f * K, seed + 1);
    const auto b = random_vector<T>(s.f, seed + 2);
    const auto dy = random_vector<T>(s.n * s.f * P, seed + 3);

    // forward by the definition
    std::vector<T> want_y(s.n * s.f * P);
    for (int64_t i = 0; i < s.n; ++i)
        for (int64_t f = 0; f < s.f; ++f)
            for (int64_t oy = 0; oy < oh; ++oy)
                for (int64_t ox = 0; ox < ow; ++ox) {
                    double sum = with_bias ? b[f] : 0;
                    for (int64_t c = 0; c < s.c; ++c)
                        for (int64_t r = 0; r < s.kh; ++r)
                            for (int64_t q = 0; q < s.kw; ++q)
                                sum += double(w[((f * s.c + c) * s.kh + r) * s.kw + q]) *
                                       at(s, x, i, c, oy * s.stride - s.pad + r, ox * s.stride - s.pad + q);
                    want_y[((i * s.f + f) * oh + oy) * ow + ox] = T(relu && sum < 0 ? 0 : sum);
                }
    // backward by the definition: each output pixel sends g·w to its window and g·x to w
    std::vector<double> dx(x.size()), dw(w.size()), db(s.f);
    for (int64_t i = 0; i < s.n; ++i)
        for (int64_t f = 0; f < s.f; ++f)
            for (int64_t oy = 0; oy < oh; ++oy)
                for (int64_t ox = 0; ox < ow; ++ox) {
                    const int64_t o = ((i * s.f + f) * oh + oy) * ow + ox;
                    const double g = (relu && !(want_y[o] > 0)) ? 0 : dy[o];
                    db[f] += g;
                    for (int64_t c = 0; c < s.c; ++c)
                        for (int64_t r = 0; r < s.kh; ++r)
                            for (int64_t q = 0; q < s.kw; ++q) {
                                const int64_t yy = oy * s.stride - s.pad + r, xx = ox * s.stride - s.pad + q;
                                const int64_t wi = ((f * s.c + c) * s.kh + r) * s.kw + q;
                                dw[wi] += g * at(s, x, i, c, yy, xx);
                                if (yy >= 0 && yy < s.h && xx >= 0 && xx < s.w)
                                    dx[((i * s.c + c) * s.h + yy) * s.w + xx] += g * w[wi];
                            }
                }

    std::vector<T> first_y, first_dx, first_dw, first_db;  // the 1-thread results, to compare bits
    for (int threads : {1, 2}) {
        matgrad::set_num_threads(threads);
        // The implicit scheme is given no columns: it must not need them.
        const bool uses_cols = matgrad::conv_uses_columns(s);
        ++(uses_cols ? runs_with_columns : runs_implicit);
        std::vector<T> y(want_y.size()), cols_buffer(uses_cols ? s.n * K * P : 0);
        T* cols = uses_cols ? cols_buffer.data() : nullptr;
        matgrad::conv2d_forward(s, x.data(), w.data(), with_bias ? b.data() : nullptr, relu, cols, y.data());
        expect_close("conv2d_forward", y, want_y, tol);
        // accumulate: start every gradient at 1 and expect the sum plus 1
        std::vector<T> gx(x.size(), T(1)), gw(w.size(), T(1)), gb(s.f, T(1));
        matgrad::ConvGrads<T> grads;
        grads.dx = gx.data(), grads.dw = gw.data(), grads.db = gb.data();
        grads.accumulate_dx = grads.accumulate_dw = grads.accumulate_db = true;
        matgrad::conv2d_backward(s, dy.data(), y.data(), relu, uses_cols ? nullptr : x.data(), cols, w.data(), grads);
        auto plus_one = [](const std::vector<double>& v) {
            std::vector<T> out(v.size());
            for (size_t e = 0; e < v.size(); ++e) out[e] = T(v[e] + 1);
            return out;
        };
        expect_close("conv2d_backward dx", gx, plus_one(dx), tol);
        expect_close("conv2d_backward dw", gw, plus_one(dw), tol);
        expect_close("conv2d_backward db", gb, plus_one(db), tol);
        if (threads == 1) {
            first_y = y, first_dx = gx, first_dw = gw, first_db = gb;
        } else if (y != first_y || gx != first_dx || gw != first_dw || gb != first_db) {
            std::printf("FAIL conv n=%lld: 1 and 2 threads give different bits\n", static_cast<long long>(s.n));
            ++failures;
        }
        // overwrite, dx only
        std::vector<T> gx2(x.size(), T(7));
        matgrad::ConvGrads<T> only_dx;
        only_dx.dx = gx2.data();
        matgrad::conv2d_backward(s, dy.data(), y.data(), relu, uses_cols ? nullptr : x.data(), cols, w.data(), only_dx);
        std::vector<T> want_dx(dx.begin(), dx.end());
        expect_close("conv2d_backward dx overwritten", gx2, want_dx, tol);
        // overwrite, dw and db only (whichever form dW takes, the old values are never read)
        std::vector<T> gw2(w.size(), T(7)), gb2(s.f, T(7));
        matgrad::ConvGrads<T> only_dw;
        only_dw.dw = gw2.data(), only_dw.db = gb2.data();
        matgrad::conv2d_backward(s, dy.data(), y.data(), relu, uses_cols ? nullptr : x.data(), cols, w.data(), only_dw);
        expect_close("conv2d_backward dw overwritten", gw2, std::vector<T>(dw.begin(), dw.end()), tol);
        expect_close("conv2d_backward db overwritten", gb2, std::vector<T>(db.begin(), db.end()), tol);
    }
}

template <class T>
void check_pools(matgrad::PoolShape s, double tol, unsigned seed) {
    const int64_t oh = s.out_h(), ow = s.out_w();
    const auto x = random_vector<T>(s.n * s.c * s.h * s.w, seed);
    const auto dy = random_vector<T>(s.n * s.c * oh * ow, seed + 1);
    std::vector<T> want_max(dy.size()), want_avg(dy.size());
    std::vector<double> want_dmax(x.size()), want_davg(x.size());
    for (int64_t p = 0; p < s.n * s.c; ++p)
        for (int64_t oy = 0; oy < oh; ++oy)
            for (int64_t ox = 0; ox < ow; ++ox) {
                const int64_t o = (p * oh + oy) * ow + ox;
                T best = x[p * s.h * s.w + oy * s.stride_h * s.w + ox * s.stride_w];
                int64_t best_at = oy * s.stride_h * s.w + ox * s.stride_w;
                double sum = 0;
                for (int64_t r = 0; r < s.kh; ++r)
                    for (int64_t q = 0; q < s.kw; ++q) {
                        const int64_t in = (oy * s.stride_h + r) * s.w + ox * s.stride_w + q;
                        const T v = x[p * s.h * s.w + in];
                        sum += v;
                        if (v > best) best = v, best_at = in;
                    }
                want_max[o] = best;
                want_avg[o] = T(sum / double(s.kh * s.kw));
                want_dmax[p * s.h * s.w + best_at] += dy[o];
                for (int64_t r = 0; r < s.kh; ++r)
                    for (int64_t q = 0; q < s.kw; ++q)
                        want_davg[p * s.h * s.w + (oy * s.stride_h + r) * s.w + ox * s.stride_w + q] +=
                            dy[o] / double(s.kh * s.kw);
            }
    for (int threads : {1, 2}) {
        matgrad::set_num_threads(threads);
        std::vector<T> y(dy.size()), dx(x.size(), T(5));
        std::vector<int64_t> argmax(dy.size());
        matgrad::max_pool2d_forward(s, x.data(), y.data(), argmax.data());
        expect_close("max_pool2d_forward", y, want_max, 0);
        matgrad::max_pool2d_backward(s, dy.data(), argmax.data(), dx.data(), false);
        expect_close("max_pool2d_backward", dx, std::vector<T>(want_dmax.begin(), want_dmax.end()), tol);
        matgrad::avg_pool2d_forward(s, x.data(), y.data());
        expect_close("avg_pool2d_forward", y, want_avg, tol);
        std::fill(dx.begin(), dx.end(), T(1));
        matgrad::avg_pool2d_backward(s, dy.data(), dx.data(), true);
        std::vector<T> want(x.size());
        for (size_t e = 0; e < want.size(); ++e) want[e] = T(want_davg[e] + 1);
        expect_close("avg_pool2d_backward accumulate", dx, want, tol);
    }
}

// Max pooling's choice among equals: values drawn from {0, 1, 2, 3} tie in
// most windows, and about one element in twelve is NaN (sometimes a window's
// first, sometimes a later one). The oracle scans each window in row-major
// order: strictly greater replaces the maximum (ties keep the first), a NaN
// replaces a number but not an earlier NaN (the first NaN wins). The argmax
// must match index for index, on the vector lanes and the scalar tail alike.
template <class T>
void check_max_pool_ties_and_nan(matgrad::PoolShape s, unsigned seed) {
    const int64_t oh = s.out_h(), ow = s.out_w(), plane = s.h * s.w;
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> level(0, 3), nan_one_in(0, 11);
    std::vector<T> x(s.n * s.c * plane);
    for (auto& e : x) e = nan_one_in(rng) == 0 ? T(NAN) : T(level(rng));
    std::vector<int64_t> want_at(s.n * s.c * oh * ow);
    for (int64_t p = 0; p < s.n * s.c; ++p)
        for (int64_t oy = 0; oy < oh; ++oy)
            for (int64_t ox = 0; ox < ow; ++ox) {
                int64_t best_at = oy * s.stride_h * s.w + ox * s.stride_w;
                for (int64_t r = 0; r < s.kh; ++r)
                    for (int64_t q = 0; q < s.kw; ++q) {
                        const int64_t in = (oy * s.stride_h + r) * s.w + ox * s.stride_w + q;
                        const T v = x[p * plane + in], best = x[p * plane + best_at];
                        if (v > best || (std::isnan(v) && !std::isnan(best))) best_at = in;
                    }
                want_at[(p * oh + oy) * ow + ox] = best_at;
            }
    for (int threads : {1, 2}) {
        matgrad::set_num_threads(threads);
        std::vector<T> y(want_at.size());
        std::vector<int64_t> at(want_at.size(), -1);
        matgrad::max_pool2d_forward(s, x.data(), y.data(), at.data());
        for (size_t o = 0; o < at.size(); ++o) {
            const int64_t p = int64_t(o) / (oh * ow);
            const T want_y = x[p * plane + want_at[o]];
            const bool same_y = std::isnan(want_y) ? std::isnan(y[o]) : y[o] == want_y;
            if (at[o] != want_at[o] || !same_y) {
                std::printf("FAIL max_pool2d_forward ties/NaN (%zu-byte, %lldx%lld k%lldx%lld s%lldx%lld): output %zu "
                            "argmax %lld, want %lld\n",
                            sizeof(T), static_cast<long long>(s.h), static_cast<long long>(s.w),
                            static_cast<long long>(s.kh), static_cast<long long>(s.kw),
                            static_cast<long long>(s.stride_h), static_cast<long long>(s.stride_w), o,
                            static_cast<long long>(at[o]), static_cast<long long>(want_at[o]));
                ++failures;
                break;
            }
        }
    }
}

matgrad::ConvShape conv(int64_t n, int64_t c, int64_t h, int64_t w, int64_t f, int64_t kh, int64_t kw,
                        int64_t stride, int64_t pad) {
    matgrad::ConvShape s;
    s.n = n, s.c = c, s.h = h, s.w = w, s.f = f, s.kh = kh, s.kw = kw, s.stride = stride, s.pad = pad;
    if (!s.valid()) std::abort();
    return s;
}

matgrad::PoolShape pool(int64_t n, int64_t c, int64_t h, int64_t w, int64_t kh, int64_t kw, int64_t sh,
                        int64_t sw) {
    matgrad::PoolShape s;
    s.n = n, s.c = c, s.h = h, s.w = w, s.kh = kh, s.kw = kw, s.stride_h = sh, s.stride_w = sw;
    if (!s.valid()) std::abort();
    return s;
}

}  // namespace

int main() {
    const matgrad::ConvShape shapes[] = {
        conv(2, 3, 7, 5, 4, 3, 3, 1, 1),   conv(3, 2, 9, 9, 5, 3, 3, 2, 1),
        conv(1, 1, 6, 6, 2, 3, 3, 3, 2),   conv(2, 4, 5, 8, 3, 1, 1, 1, 0),
        conv(2, 2, 4, 3, 3, 6, 5, 1, 1),   conv(9, 3, 11, 10, 6, 5, 4, 2, 2),  // 9 images: dW in 5 groups (4 of 2, 1 of 1)
        conv(0, 2, 5, 5, 3, 3, 3, 1, 1),
        conv(17, 5, 12, 12, 8, 3, 3, 1, 1),  // 881k multiply-adds, 6 groups: 2 threads split the images
        // stride 1 with ow == w take im2col's one-run-per-row path: a kernel column wholly in the padding
        // (w = 1 under a 3-wide kernel), 5×5 over a 3×3 image, kh ≠ kw, and one large enough to thread
        conv(2, 2, 3, 1, 3, 3, 3, 1, 1),   conv(2, 2, 3, 3, 3, 5, 5, 1, 2),
        conv(3, 3, 6, 9, 4, 1, 5, 1, 2),   conv(12, 4, 16, 16, 8, 3, 3, 1, 1),
        // dW formed transposed (the filters fill 3/4 of a panel or more: 6 and 8 for nr 8,
        // 12 and 16 for nr 16, 24 and 32 for nr 32; the baseline's 12 for f64's nr 12 and 24
        // for f32's nr 24), also over the output pixels in K slices (400 > kc, 320 at most;
        // 576 past the 480 that f32 slices may grow to, blocking.hpp); filters past one panel
        // (dW as g·colsᵀ: 33, 36, 40) and past kSkinnyMaxFilters (70: the forward packs);
        // the forward's product over c·kh·kw = 360 > kc (and 576, more than one slice
        // even where f32 slices grow to 1.5·kc); one image with two threads (the
        // GEMMs split their own columns, so neither skinny form is taken: the same bits)
        conv(3, 2, 20, 20, 24, 3, 3, 1, 1), conv(2, 3, 9, 9, 12, 3, 3, 1, 1),
        conv(2, 2, 8, 8, 32, 3, 3, 2, 1),   conv(2, 2, 6, 6, 16, 3, 3, 1, 1),
        conv(2, 2, 20, 20, 12, 3, 3, 1, 1), conv(2, 2, 20, 20, 8, 3, 3, 1, 1),
        conv(3, 3, 20, 20, 40, 3, 3, 1, 1), conv(2, 40, 6, 6, 33, 3, 3, 1, 1),
        conv(1, 8, 20, 20, 36, 3, 3, 1, 1), conv(1, 8, 20, 20, 32, 3, 3, 1, 1),
        conv(2, 3, 7, 7, 70, 3, 3, 1, 1),
        conv(2, 64, 6, 6, 33, 3, 3, 1, 1), conv(1, 2, 24, 24, 24, 3, 3, 1, 1),
    };
    unsigned seed = 1;
    // Every kernel set this CPU runs: the paths the products take depend on its tiles
    // (conv.cpp: the forward reads cols in place for AVX-512's; dW is formed transposed
    // for filters that nearly fill one panel of nr columns).
    // Each shape under the scheme its shape picks, and then under the other one where
    // that can run (conv_internal.hpp): stride 1 with pad < kh, kw runs either way.
    const std::string native = matgrad::isa();
    using matgrad::detail::ConvScheme;
    for (const char* isa : {"baseline", "avx2", "avx512", "neon"}) {
        if (!matgrad::isa_available(isa)) continue;
        matgrad::set_isa(isa);
        for (ConvScheme scheme : {ConvScheme::by_shape, ConvScheme::columns, ConvScheme::implicit}) {
            matgrad::detail::force_conv_scheme(scheme);
            for (const auto& s : shapes) {
                if (scheme != ConvScheme::by_shape) {  // only where the forced scheme differs
                    matgrad::detail::force_conv_scheme(ConvScheme::by_shape);
                    const bool by_shape = matgrad::conv_uses_columns(s);
                    matgrad::detail::force_conv_scheme(scheme);
                    if (matgrad::conv_uses_columns(s) == by_shape) continue;
                }
                for (bool relu : {false, true})
                    for (bool bias : {false, true}) {
                        check_conv<double>(s, relu, bias, 1e-12, seed);
                        check_conv<float>(s, relu, bias, 1e-4, seed);  // dW sums up to 3,072 products in float32
                        seed += 10;
                    }
            }
        }
        matgrad::detail::force_conv_scheme(ConvScheme::by_shape);
    }
    matgrad::set_isa(native.c_str());
    if (runs_with_columns == 0 || runs_implicit == 0) {
        std::printf("FAIL: %d runs with columns, %d implicit: both schemes must be checked\n", runs_with_columns,
                    runs_implicit);
        ++failures;
    }
    const matgrad::PoolShape pools[] = {pool(2, 3, 7, 8, 2, 2, 2, 2), pool(2, 3, 7, 8, 3, 3, 2, 2),
                                        pool(1, 2, 5, 6, 3, 2, 1, 1), pool(3, 1, 9, 9, 2, 3, 1, 3),
                                        pool(0, 2, 4, 4, 2, 2, 2, 2), pool(8, 16, 32, 32, 3, 3, 2, 2)};
    for (const auto& s : pools) {
        check_pools<double>(s, 1e-12, seed);
        check_pools<float>(s, 1e-5, seed);
        seed += 10;
    }
    // Rows of outputs that fill the vector lanes (4 floats, 2 doubles) with a
    // group left over (it overlaps the one before), and rows narrower than a
    // group; strides 1 and 2 and kernels 2×2 and 3×3 (constants in the kernel)
    // and others (not); overlapping and disjoint windows; 8×8 planes as in the
    // digits CNN.
    const matgrad::PoolShape tie_pools[] = {
        pool(3, 2, 6, 11, 3, 3, 1, 1), pool(2, 3, 7, 15, 3, 3, 2, 2),  pool(2, 2, 5, 20, 2, 3, 2, 3),
        pool(4, 4, 8, 8, 2, 2, 2, 2),  pool(1, 2, 9, 9, 2, 3, 1, 3),   pool(64, 16, 16, 16, 3, 3, 2, 2),
        pool(2, 2, 6, 13, 2, 2, 1, 1), pool(2, 2, 7, 14, 3, 2, 2, 2),  pool(2, 2, 6, 17, 2, 2, 3, 3),
        pool(2, 3, 7, 7, 3, 3, 2, 2),  pool(2, 3, 5, 5, 2, 2, 1, 1),   pool(2, 2, 4, 9, 4, 4, 1, 1)};
    for (const auto& s : tie_pools) {
        check_max_pool_ties_and_nan<double>(s, seed);
        check_max_pool_ties_and_nan<float>(s, seed + 1);
        seed += 10;
    }
    if (failures) {
        std::printf("%d failures\n", failures);
        return 1;
    }
    std::printf("conv and pooling match the definition\n");
    return 0;
}
