// 2-D convolution as GEMMs on im2col columns (Caffe's and cs231n's scheme), and the
// backward of both schemes (matgrad.hpp; the implicit one's forward and dx are in
// conv_implicit.cpp).
//
// One image at a time: its columns cols_i [K×P] (K = c·kh·kw, P = oh·ow) hold,
// for every output pixel, the input values its window sees; then
//   forward   y_i  = W·cols_i              [f×K]·[K×P] -> [f×P], lands in NCHW as is
//   backward  dW  += g_i·cols_iᵀ           [f×P]·[P×K] -> [f×K]
//         or  dWᵀ += cols_i·g_iᵀ           [K×P]·[P×f] -> [K×f], transposed once at the end
//             dx_i = col2im(Wᵀ·g_i)        [K×f]·[f×P] -> [K×P] -> [c×h×w]
// The transposes are GEMM transpose flags: nothing is transposed in memory.
// With few filters the forward and dW products take the skinny path (gemm_skinny.cpp):
// cols_i was just written and sits in L2, so the forward's tiles read it where it
// lies instead of packing it first, and W is read in place rather than packed again
// for every image (forward_reads_cols_in_place). dW is formed transposed when the
// filters nearly fill one panel of the kernel's columns (dw_transposed_for): the
// operand packed per image is then g_i (f×P) rather than cols_i (K×P), cols_i is read
// once, and the tiles run down its K rows. Both rules and their measurements are
// below. Sapphire Rapids-class Xeon, 64 images 16→32 channels 16×16 3×3 pad 1, f32,
// AVX-512, 2 threads: forward 0.90 -> 0.81 ms, dW and db 0.78 -> 0.58 ms.
// Threads split the images when there are enough of them (each image's GEMMs
// then run on one thread); otherwise images go one by one, each GEMM threaded.
#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <vector>

#include "conv_internal.hpp"
#include "gemm_internal.hpp"
#include "kernels/kernel_table.hpp"
#include "matgrad/matgrad.hpp"
#include "threads.hpp"

namespace matgrad {
namespace detail {
namespace {

// The forward's product W·cols_i takes the skinny path, reading cols_i in place,
// for at most this many filters (its rows; each row tile reads the B panel again),
// and only where a tile reads at least kSkinnyInPlaceMinRowBytes of each cols_i row
// (blocking.hpp: AVX-512's tiles; AVX2's and the baseline's narrower tiles lost).
// Sapphire Rapids-class Xeon, f32, 2 threads, forward, packed -> skinny (ms), AVX-512:
// 64×16→32 16×16 3×3 0.94-0.96 -> 0.84-0.87, 32×32→64 8×8 0.42-0.43 -> 0.33-0.35,
// 64×16→48 1.18 -> 1.09-1.12, 64×16→32 3×3 stride 2 0.37 -> 0.31; 16×64→128 16×16
// 2.36-2.44 -> 2.47-2.50 (a loss), 50×3→32 32×32 7×7 2.93-2.98 -> 2.94-2.99. AVX2:
// 50×3→32 7×7 3.9-4.1 -> 4.9; baseline: 2× slower on every shape tried.
constexpr int64_t kSkinnyMaxFilters = 64;
template <class T>
bool forward_reads_cols_in_place(int64_t filters) {
    return filters <= kSkinnyMaxFilters &&
           active_kernels().get<T>().blocking.nr * int64_t(sizeof(T)) >= kSkinnyInPlaceMinRowBytes;
}
// dW is formed transposed, dWᵀ = cols_i·g_iᵀ, when the filters fill at least three
// quarters of one panel of the kernel's columns (nr): cols_i is then read once per
// image and few of the panel's columns are padding. dW+db, 2 threads, same Xeon, ms,
// g·colsᵀ -> transposed: AVX-512 (nr 32) 64×16→32 16×16 0.78 -> 0.58, →24 0.67 -> 0.64,
// →20 0.61 -> 0.61, →16 0.52 -> 0.58, →8 0.35 -> 0.58, 50×3→24 7×7 2.57 -> 2.40; AVX2
// (nr 16) →16 0.60 -> 0.44, →12 0.47 -> 0.43, →8 0.47 -> 0.49; baseline (nr 12) →12
// 2.05 -> 1.79, →8 1.45 -> 1.84. With more than one panel cols_i is read once per
// panel: 32×32→64 8×8 0.37 -> 0.44, 8×128→256 14×14 3.8 -> 6.5. With fewer than nr
// window elements (K = c·kh·kw) g·colsᵀ's one panel of K columns is mostly padding
// too, and the transposed form wins with any one-panel filter count: the digits CNN's
// first layer, 128×1→16 8×8 3×3 (K = 9), AVX-512, 0.070 -> 0.043.
template <class T>
bool dw_transposed_for(int64_t filters, int64_t window) {
    const int64_t nr = active_kernels().get<T>().blocking.nr;
    return filters <= nr && (4 * filters >= 3 * nr || window < nr);
}

// The outputs o along one axis whose input o·stride − pad + t (t the kernel
// offset) lies in [0, extent): [lo, hi), empty as lo == hi.
struct Range {
    int64_t lo, hi;
};
Range valid_outputs(int64_t extent, int64_t pad, int64_t stride, int64_t t, int64_t outputs) {
    const int64_t first = pad - t;  // o·stride ≥ pad − t
    const int64_t lo = first > 0 ? std::min(outputs, conv_ceil_div(first, stride)) : 0;
    const int64_t last = extent - 1 + pad - t;  // o·stride ≤ extent − 1 + pad − t
    return {lo, std::max(lo, last >= 0 ? std::min(outputs, last / stride + 1) : int64_t{0})};
}

// For each kernel row r and column s, the output rows and columns that see the
// input (the others fall on the padding). Computed once per call: the divisions
// cost more than the short rows they bound.
struct ValidOutputs {
    std::vector<Range> rows, cols;
    explicit ValidOutputs(const ConvShape& sh) {
        for (int64_t r = 0; r < sh.kh; ++r)
            rows.push_back(valid_outputs(sh.h, sh.pad, sh.stride, r, sh.out_h()));
        for (int64_t s = 0; s < sh.kw; ++s)
            cols.push_back(valid_outputs(sh.w, sh.pad, sh.stride, s, sh.out_w()));
    }
};

// Stride 1 with ow == w (a "same" convolution, kw = 2·pad + 1): for one (ci, r, s)
// the output rows that see the input read one contiguous run of the input plane,
// shifted by (r − pad)·w + s − pad, so im2col copies the run whole and col2im adds
// it back whole. The lanes of the run that fall on the left or right padding
// belong to the neighbouring input row: im2col zeroes them after the copy, and
// col2im zeroes them in its scratch columns before the add (adding 0 leaves the
// neighbour as it was).
bool one_run_per_row(const ConvShape& sh) { return sh.stride == 1 && sh.out_w() == sh.w; }

// Zeroes the lanes of one column row [oh×ow] that fall on the padding: the rows
// outside `rows` whole, and in the rows inside it the columns outside `cols`, column
// by column (strided stores: a short loop of zero stores per output row would
// become a memset call each).
template <class T>
void zero_padding_lanes(T* __restrict row, int64_t oh, int64_t ow, Range rows, Range cols) {
    if (rows.lo == rows.hi || cols.lo == cols.hi) {
        std::fill(row, row + oh * ow, T(0));
        return;
    }
    if (rows.lo > 0) std::fill(row, row + rows.lo * ow, T(0));
    auto zero_column = [&](int64_t ox) {
        for (int64_t oy = rows.lo; oy < rows.hi; ++oy) row[oy * ow + ox] = T(0);
    };
    for (int64_t ox = 0; ox < cols.lo; ++ox) zero_column(ox);
    for (int64_t ox = cols.hi; ox < ow; ++ox) zero_column(ox);
    if (rows.hi < oh) std::fill(row + rows.hi * ow, row + oh * ow, T(0));
}

// x: [c×h×w] -> cols: [K×P]
template <class T>
void im2col_image(const ConvShape& sh, const ValidOutputs& valid, const T* __restrict x,
                  T* __restrict cols) {
    const int64_t oh = sh.out_h(), ow = sh.out_w(), P = oh * ow, stride = sh.stride, w = sh.w;
    const bool one_run = one_run_per_row(sh);
    for (int64_t ci = 0; ci < sh.c; ++ci)
        for (int64_t r = 0; r < sh.kh; ++r)
            for (int64_t s = 0; s < sh.kw; ++s) {
                T* __restrict row = cols + ((ci * sh.kh + r) * sh.kw + s) * P;
                const Range rows = valid.rows[r], lanes = valid.cols[s];
                // row[oy·ow + ox] = x[ci][oy·stride − pad + r][ox·stride − pad + s] = x[base + oy·stride·w + ox·stride]
                const int64_t base = ci * sh.h * w + (r - sh.pad) * w + (s - sh.pad);
                if (rows.lo < rows.hi && lanes.lo < lanes.hi) {
                    if (one_run) {  // the run's ends are in range because rows and lanes bound what is
                        const int64_t begin = rows.lo * ow + lanes.lo, end = (rows.hi - 1) * ow + lanes.hi;
                        std::copy(x + (base + begin), x + (base + end), row + begin);
                    } else {
                        for (int64_t oy = rows.lo; oy < rows.hi; ++oy) {
                            T* __restrict out = row + oy * ow;
                            const T* __restrict in = x + (base + oy * stride * w);  // in[ox·stride], ox ≥ lanes.lo
                            if (stride == 1) {
                                for (int64_t ox = lanes.lo; ox < lanes.hi; ++ox) out[ox] = in[ox];
                            } else if (stride == 2) {  // a constant stride the compiler vectorises (even lanes)
                                for (int64_t ox = lanes.lo; ox < lanes.hi; ++ox) out[ox] = in[2 * ox];
                            } else {
                                for (int64_t ox = lanes.lo; ox < lanes.hi; ++ox) out[ox] = in[ox * stride];
                            }
                        }
                    }
                }
                zero_padding_lanes(row, oh, ow, rows, lanes);
            }
}

// The adjoint of im2col: cols [K×P] -> dx [c×h×w], added into (the caller zeroes it first).
template <class T>
void col2im_image(const ConvShape& sh, const ValidOutputs& valid, const T* __restrict cols,
                  T* __restrict dx) {
    const int64_t oh = sh.out_h(), ow = sh.out_w(), P = oh * ow, stride = sh.stride, w = sh.w;
    for (int64_t ci = 0; ci < sh.c; ++ci)
        for (int64_t r = 0; r < sh.kh; ++r)
            for (int64_t s = 0; s < sh.kw; ++s) {
                const T* row = cols + ((ci * sh.kh + r) * sh.kw + s) * P;
                const Range rows = valid.rows[r], lanes = valid.cols[s];
                const int64_t base = ci * sh.h * w + (r - sh.pad) * w + (s - sh.pad);
                for (int64_t oy = rows.lo; oy < rows.hi; ++oy) {
                    const T* __restrict in = row + oy * ow;
                    T* __restrict out = dx + (base + oy * stride * w);  // out[ox·stride], ox ≥ lanes.lo
                    if (stride == 1) {
                        for (int64_t ox = lanes.lo; ox < lanes.hi; ++ox) out[ox] += in[ox];
                    } else if (stride == 2) {
                        for (int64_t ox = lanes.lo; ox < lanes.hi; ++ox) out[2 * ox] += in[ox];
                    } else {
                        for (int64_t ox = lanes.lo; ox < lanes.hi; ++ox) out[ox * stride] += in[ox];
                    }
                }
            }
}

// col2im of columns that are the caller's scratch, read once and then free to
// overwrite: a one-run-per-row shape zeroes their padding lanes and adds each
// (ci, r, s) row back as one run.
template <class T>
void col2im_image_scratch(const ConvShape& sh, const ValidOutputs& valid, T* __restrict cols,
                          T* __restrict dx) {
    if (!one_run_per_row(sh)) return col2im_image(sh, valid, cols, dx);
    const int64_t oh = sh.out_h(), ow = sh.out_w(), P = oh * ow, w = sh.w;
    for (int64_t ci = 0; ci < sh.c; ++ci)
        for (int64_t r = 0; r < sh.kh; ++r)
            for (int64_t s = 0; s < sh.kw; ++s) {
                T* __restrict row = cols + ((ci * sh.kh + r) * sh.kw + s) * P;
                const Range rows = valid.rows[r], lanes = valid.cols[s];
                if (rows.lo == rows.hi || lanes.lo == lanes.hi) continue;
                zero_padding_lanes(row, oh, ow, rows, lanes);
                // the inverse of im2col's run copy: dx[base + e] += row[e]
                const int64_t base = ci * sh.h * w + (r - sh.pad) * w + (s - sh.pad);
                const int64_t begin = rows.lo * ow + lanes.lo, end = (rows.hi - 1) * ow + lanes.hi;
                for (int64_t e = begin; e < end; ++e) dx[base + e] += row[e];
            }
}

// Whether the implicit scheme's dx is ImplicitDx's convolution of g (else, as in the
// columns scheme, col2im(Wᵀ·g_i), which needs no columns of x either): its products
// have c rows, and tiles of fewer than a third of mr rows lose to the one GEMM of
// c·kh·kw rows. Sapphire Rapids-class Xeon, AVX-512 f32 (mr 12), 2 threads, dx only,
// ms, col2im -> taps: 64×c→32 16×16 3×3 c = 3 0.21 -> 0.31, c = 4 0.27 -> 0.27,
// c = 8 0.48 -> 0.40, c = 16 0.95 -> 0.70; 50×c→32 32×32 7×7 c = 3 3.1 -> 5.3,
// c = 4 3.9 -> 3.7, c = 8 7.8 -> 6.0.
template <class T>
bool dx_by_taps(const ConvShape& sh) {
    return 3 * sh.c >= active_kernels().get<T>().blocking.mr;
}

// Whether each per-image GEMM runs on one thread: then a product whose one panel of
// columns the skinny path cannot split between threads loses nothing.
bool gemms_single_threaded(const ConvShape& sh, int threads, int64_t group) {
    return threads == 1 || images_split(sh, threads, group);
}

template <class T>
void conv2d_forward_impl(const ConvShape& sh, const T* x, const T* wts, const T* bias, bool relu,
                         T* cols, T* y) {
    const ValidOutputs valid(sh);
    const int64_t K = sh.col_rows(), P = sh.col_cols(), F = sh.f;
    const int64_t x_image = sh.c * sh.h * sh.w, y_image = F * P;
    const int threads = conv_threads(sh);
    // The skinny path splits only N between threads: with images one by one, its product
    // must have a panel of columns for each thread (as gemm_fused asks).
    const int64_t panels = conv_ceil_div(P, active_kernels().get<T>().blocking.nr);
    const bool in_place = forward_reads_cols_in_place<T>(F) &&
                          (gemms_single_threaded(sh, threads, 1) || panels >= threads);
    for_images(sh, threads, 1, [&](int64_t first, int64_t end, int) {
        for (int64_t i = first; i < end; ++i) {
            T* col = cols + i * K * P;
            T* yi = y + i * y_image;
            im2col_image(sh, valid, x + i * x_image, col);
            if (bias)  // y_i starts as the bias; the GEMM adds W·cols_i into it
                for (int64_t fi = 0; fi < F; ++fi) std::fill(yi + fi * P, yi + (fi + 1) * P, bias[fi]);
            // y_i = relu?(W·cols_i + y_i): [F×K]·[K×P]
            if (in_place)  // cols_i read where it lies, W in place (top of the file)
                gemm_skinny<T>(F, P, K, wts, K, 1, col, P, 1, yi, P, bias != nullptr, nullptr, relu,
                               SkinnyA::in_place);
            else
                gemm_fused<T>(F, P, K, wts, K, 1, col, P, 1, yi, P, bias != nullptr, nullptr, relu);
        }
    });
}

// The backward of either scheme. The columns scheme reads cols_i from the forward's
// buffer; the implicit one forms them again per image, from x, in a per-thread buffer
// (for dW only: they stay in cache for the one product that reads them), and its dx
// is ImplicitDx's convolution of g instead of col2im(Wᵀ·g_i).
template <class T>
void conv2d_backward_impl(const ConvShape& sh, const T* dy, const T* y, bool relu, const T* x,
                          const T* cols, const T* wts, const ConvGrads<T>& g) {
    const ValidOutputs valid(sh);
    const bool implicit = !conv_uses_columns(sh);
    const int64_t K = sh.col_rows(), P = sh.col_cols(), F = sh.f;
    const int64_t x_image = sh.c * sh.h * sh.w, y_image = F * P;
    const int64_t per_group = std::max<int64_t>(1, conv_ceil_div(sh.n, kMaxGroups));  // images per group
    const int64_t groups = conv_ceil_div(sh.n, per_group);
    const int threads = conv_threads(sh);
    const bool by_image = images_split(sh, threads, per_group);
    // dWᵀ has one panel of columns (F ≤ nr): the skinny path would run it on one thread,
    // so it is taken only where each thread has its own images. Both forms add the same
    // products in the same order (fma(a, b, c) = fma(b, a, c)): the same bits either way.
    const bool dw_transposed =
        dw_transposed_for<T>(F, K) && gemms_single_threaded(sh, threads, per_group);
    // Per group: its share of dW and db. Per thread: the masked gradient, dcols (columns
    // scheme) or the columns for dW (implicit scheme).
    std::vector<T> dw_parts(g.dw ? groups * F * K : 0), db_parts(g.db ? groups * F : 0);
    const int sets = by_image ? threads : 1;  // threads running images at once
    std::vector<T> masked(relu ? sets * y_image : 0);
    const bool dx_taps = implicit && dx_by_taps<T>(sh);
    std::vector<T> dcols(g.dx && !dx_taps ? sets * K * P : 0), own_cols(g.dw && implicit ? sets * K * P : 0);
    std::unique_ptr<ImplicitDx<T>> implicit_dx;
    if (g.dx && dx_taps) implicit_dx = std::make_unique<ImplicitDx<T>>(sh, wts, sets);
    if (g.dx && !dx_taps && !g.accumulate_dx) std::fill(g.dx, g.dx + sh.n * x_image, T(0));

    const ReluBackwardLoop<T> relu_backward_loop = active_kernels().get<T>().relu_backward;
    for_images(sh, threads, per_group, [&](int64_t first, int64_t end, int tid) {
        T* gi_buf = relu ? masked.data() + tid * y_image : nullptr;
        T* dcol = dcols.empty() ? nullptr : dcols.data() + tid * K * P;
        for (int64_t i = first; i < end; ++i) {
            const int64_t group = i / per_group;
            const bool group_start = i % per_group == 0;
            const T* gi = dy + i * y_image;
            if (relu) {  // y = relu(z)  ->  dL/dz = dL/dy where y > 0
                // The ISA's ReLU-backward loop, called directly: this thread's image only.
                relu_backward_loop(gi, y + i * y_image, gi_buf, y_image, false);
                gi = gi_buf;
            }
            if (g.db) {  // db[f] += Σ_p g_i[f, p]
                T* db = db_parts.data() + group * F;
                for (int64_t fi = 0; fi < F; ++fi) {
                    const T sum = row_sum(gi + fi * P, P);
                    db[fi] = group_start ? sum : db[fi] + sum;
                }
            }
            const T* col = implicit ? nullptr : cols + i * K * P;
            if (g.dw && implicit) {
                T* mine = own_cols.data() + tid * K * P;
                im2col_image(sh, valid, x + i * x_image, mine);
                col = mine;
            }
            T* dw_group = dw_parts.data() + group * F * K;
            if (g.dw && dw_transposed)  // dW_groupᵀ (+)= cols_i·g_iᵀ: [K×P]·[P×F], g_i read transposed
                gemm_skinny<T>(K, F, P, col, P, 1, gi, 1, P, dw_group, F, !group_start, nullptr, false);
            else if (g.dw)  // dW_group (+)= g_i·cols_iᵀ: [F×P]·[P×K], cols_i read transposed
                gemm_fused<T>(F, K, P, gi, P, 1, col, 1, P, dw_group, K, !group_start, nullptr, false);
            if (g.dx && dx_taps) {  // dx_i = conv(pad(g_i), W flipped) (conv_implicit.cpp)
                implicit_dx->image(gi, g.dx + i * x_image, g.accumulate_dx, by_image ? tid : 0,
                                   by_image ? 1 : threads);
            } else if (g.dx) {  // dcols = Wᵀ·g_i: [K×F]·[F×P], W read transposed; then col2im
                gemm_fused<T>(K, P, F, wts, 1, K, gi, P, 1, dcol, P, false, nullptr, false);
                col2im_image_scratch(sh, valid, dcol, g.dx + i * x_image);
            }
        }
    });
    // The groups' shares, summed in order.
    if (g.dw) {
        const int64_t count = F * K;
        if (!g.accumulate_dw) std::fill(g.dw, g.dw + count, T(0));
        for (int64_t gr = 0; gr < groups; ++gr) {
            const T* part = dw_parts.data() + gr * count;  // dWᵀ [K×F] or dW [F×K]
            if (dw_transposed) {
                for (int64_t fi = 0; fi < F; ++fi)
                    for (int64_t kk = 0; kk < K; ++kk) g.dw[fi * K + kk] += part[kk * F + fi];
            } else {
                for (int64_t e = 0; e < count; ++e) g.dw[e] += part[e];
            }
        }
    }
    if (g.db) {
        if (!g.accumulate_db) std::fill(g.db, g.db + F, T(0));
        for (int64_t gr = 0; gr < groups; ++gr)
            for (int64_t fi = 0; fi < F; ++fi) g.db[fi] += db_parts[gr * F + fi];
    }
}

template <class T>
void im2col_impl(const ConvShape& sh, const T* x, T* cols) {
    const ValidOutputs valid(sh);
    const int64_t x_image = sh.c * sh.h * sh.w, col_image = sh.col_rows() * sh.col_cols();
    for_images(sh, conv_threads(sh), 1, [&](int64_t first, int64_t end, int) {
        for (int64_t i = first; i < end; ++i) im2col_image(sh, valid, x + i * x_image, cols + i * col_image);
    });
}

template <class T>
void col2im_impl(const ConvShape& sh, const T* cols, T* dx, bool accumulate) {
    const ValidOutputs valid(sh);
    const int64_t x_image = sh.c * sh.h * sh.w, col_image = sh.col_rows() * sh.col_cols();
    for_images(sh, conv_threads(sh), 1, [&](int64_t first, int64_t end, int) {
        for (int64_t i = first; i < end; ++i) {
            T* dxi = dx + i * x_image;
            if (!accumulate) std::fill(dxi, dxi + x_image, T(0));
            col2im_image(sh, valid, cols + i * col_image, dxi);
        }
    });
}

}  // namespace

// a·b·… ≤ INT64_MAX for non-negative factors.
bool product_fits(std::initializer_list<int64_t> factors) {
    int64_t p = 1;
    for (const int64_t v : factors) {
        if (v != 0 && p > INT64_MAX / v) return false;
        p *= v;
    }
    return true;
}

}  // namespace detail

bool ConvShape::valid() const {
    constexpr int64_t kLimit = int64_t{1} << 31;
    for (const int64_t v : {n, c, h, w, f, kh, kw, stride, pad})
        if (v < 0 || v >= kLimit) return false;
    if (c == 0 || h == 0 || w == 0 || f == 0 || kh == 0 || kw == 0 || stride == 0) return false;
    if (kh > h + 2 * pad || kw > w + 2 * pad) return false;  // sums of values < 2³¹: no overflow
    const int64_t oh = out_h(), ow = out_w();
    return detail::product_fits({n, c, h, w}) && detail::product_fits({f, c, kh, kw}) &&
           detail::product_fits({n, f, oh, ow}) && detail::product_fits({n, c, kh, kw, oh, ow});
}

void im2col(const ConvShape& s, const float* x, float* cols) { detail::im2col_impl(s, x, cols); }
void im2col(const ConvShape& s, const double* x, double* cols) { detail::im2col_impl(s, x, cols); }
void col2im(const ConvShape& s, const float* cols, float* dx, bool accumulate) {
    detail::col2im_impl(s, cols, dx, accumulate);
}
void col2im(const ConvShape& s, const double* cols, double* dx, bool accumulate) {
    detail::col2im_impl(s, cols, dx, accumulate);
}
namespace detail {
namespace {

template <class T>
void conv2d_forward_any(const ConvShape& s, const T* x, const T* weights, const T* bias, bool relu,
                        T* cols, T* y) {
    if (conv_uses_columns(s))
        conv2d_forward_impl(s, x, weights, bias, relu, cols, y);
    else
        conv2d_forward_implicit(s, x, weights, bias, relu, y);
}

}  // namespace
}  // namespace detail

void conv2d_forward(const ConvShape& s, const float* x, const float* weights, const float* bias,
                    bool relu, float* cols, float* y) {
    detail::conv2d_forward_any(s, x, weights, bias, relu, cols, y);
}
void conv2d_forward(const ConvShape& s, const double* x, const double* weights,
                    const double* bias, bool relu, double* cols, double* y) {
    detail::conv2d_forward_any(s, x, weights, bias, relu, cols, y);
}
void conv2d_backward(const ConvShape& s, const float* dy, const float* y, bool relu, const float* x,
                     const float* cols, const float* weights, const ConvGrads<float>& grads) {
    detail::conv2d_backward_impl(s, dy, y, relu, x, cols, weights, grads);
}
void conv2d_backward(const ConvShape& s, const double* dy, const double* y, bool relu,
                     const double* x, const double* cols, const double* weights,
                     const ConvGrads<double>& grads) {
    detail::conv2d_backward_impl(s, dy, y, relu, x, cols, weights, grads);
}

}  // namespace matgrad
