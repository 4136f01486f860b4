// Stride-1 convolutions as implicit GEMMs: no im2col columns in the forward or dx.
//
// Each image is copied once into a zero-bordered plane per channel, xp [c×Hp×Wp]
// (Hp = h + 2·pad, Wp = w + 2·pad). Output pixel (oy, ox) of kernel offset (r, s)
// reads xp[ci][oy + r][ox + s] = xp[ci·Hp·Wp + (r·Wp + s) + q] with q = oy·Wp + ox, so
// for one offset the GEMM's B rows (one per input channel) are the padded planes
// shifted by r·Wp + s, read where they lie. The products run over the "wide" grid
// q ∈ [0, (oh − 1)·Wp + ow), which computes Wp − ow columns per output row that are
// then dropped: a few per cent more multiply-adds instead of copying the input
// kh·kw times over.
//
//   forward  y_wide  = Σ_(r,s) W[:, :, r, s] · shift_(r,s)(xp)                  [f×c]·[c×Q]
//   dx       dx_wide = Σ_(r,s) W[:, :, kh−1−r, kw−1−s]ᵀ · shift_(r,s)(gp)      [c×f]·[f×Q']
//            dx is the stride-1 convolution of g, zero-padded by kh−1−pad rows and
//            kw−1−pad columns (gp), with W flipped and its two channel axes swapped
// The tap kernel (kernel_table.hpp) sums the kh·kw offsets in registers, with W packed
// once per call; each output tile is written once, then the wide grid's columns are
// copied out (plus the bias, through the ReLU). dW still needs the columns of x: the
// backward (conv.cpp) forms them per image in a buffer that stays in cache. Threads
// split the images; with fewer images than threads they split each image's panels.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <vector>

#include "conv_internal.hpp"
#include "kernels/kernel_table.hpp"
#include "pack.hpp"

// The image copies below move rows of a few dozen bytes, hundreds per image: GCC
// would turn each row's loop into a call of memcpy, which costs more than the copy.
#if defined(__GNUC__) && !defined(__clang__)
#define MATGRAD_INLINE_COPIES __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define MATGRAD_INLINE_COPIES
#endif

namespace matgrad {
namespace detail {
namespace {

std::atomic<ConvScheme> forced_scheme{ConvScheme::by_shape};

}  // namespace

void force_conv_scheme(ConvScheme scheme) { forced_scheme.store(scheme); }

}  // namespace detail

// The implicit scheme where it runs (stride 1, and a padding that leaves the kernel at
// least one row and column on the image: pad < kh, kw, so that dx's own padding
// kh − 1 − pad is ≥ 0) and pays: padded rows at most a quarter wider than the output
// rows (the wide grid's dropped columns), a kernel larger than 1×1, and from
// kImplicitMinChannels to kImplicitMaxChannels input channels. Each offset's product
// is c deep: with fewer channels, forming dW's columns in the backward costs what the
// forward saved; with more, or a 1×1 kernel (whose columns are x itself), the tiles
// lost to the columns' GEMMs (why is not known: prefetching the next panel, as the
// skinny path does, did not help; docs/tuning-log-xeon-167.md,
// "Tried and not kept (same Xeon, 2026-12-05, third session)"). The rule
// reads the shape only, never the kernel set, so a forward and its backward agree
// even if set_isa runs between them.
// Sapphire Rapids-class Xeon, AVX-512 f32, 2 threads, forward + backward, ms, columns
// -> implicit: 64×c→32 16×16 3×3 pad 1: c = 2 0.46 -> 0.52, 3 0.63 -> 0.68, 4 0.76 ->
// 0.84, 8 1.44 -> 1.33, 16 2.56 -> 2.49; 50×c→32 32×32 7×7 pad 3: c = 3 9.6 -> 9.2,
// 8 33.8 -> 19.5, 16 71.5 -> 39.5; 128×16→32 8×8 3×3 1.46 -> 1.45; 16×32→32 32×32
// 5×5 23.0-24.5 -> 13.1-13.2; 8×64→64 56×56 3×3 41.6-43.4 -> 28.6-29.1; 4×128→128
// 28×28 3×3 13.7-14.0 -> 13.7-13.8; 2×256→256 14×14 3×3 forward 2.27 -> 2.75, backward
// 5.1-5.4 -> 6.0-6.2; 8×64→64 56×56 1×1 4.2-4.3 -> 7.4.
constexpr int64_t kImplicitMinChannels = 8, kImplicitMaxChannels = 64;

bool conv_uses_columns(const ConvShape& s) {
    const detail::ConvScheme forced = detail::forced_scheme.load(std::memory_order_relaxed);
    if (forced == detail::ConvScheme::columns) return true;
    if (s.stride != 1 || s.pad >= s.kh || s.pad >= s.kw) return true;
    return forced == detail::ConvScheme::by_shape &&
           (s.c < kImplicitMinChannels || s.c > kImplicitMaxChannels || s.kh * s.kw == 1 ||
            4 * (s.w + 2 * s.pad) > 5 * s.out_w());
}

namespace detail {

WideGrid::WideGrid(int64_t planes_, int64_t rows_, int64_t cols_, int64_t top_, int64_t left_, int64_t kh,
                   int64_t kw, int64_t nr)
    : planes(planes_), rows(rows_), cols(cols_), top(top_), left(left_) {
    prow = cols + 2 * left;
    pplane = (rows + 2 * top) * prow;
    out_rows = rows + 2 * top - kh + 1;
    out_cols = prow - kw + 1;
    q = (out_rows - 1) * prow + out_cols;
    qr = conv_ceil_div(q, nr) * nr;
    // the farthest read: plane planes−1, shift (kh−1)·prow + kw−1, column qr−1; and
    // (kh−1)·prow + kw−1 + q = pplane, so it lies qr − q past the last plane
    elems = planes * pplane + (qr - q);
}

template <class T>
MATGRAD_INLINE_COPIES void WideGrid::fill(const T* __restrict src, T* __restrict dst) const {
    for (int64_t p = 0; p < planes; ++p)
        for (int64_t r = 0; r < rows; ++r) {
            const T* __restrict in = src + (p * rows + r) * cols;
            T* __restrict out = dst + p * pplane + (top + r) * prow + left;
            for (int64_t c = 0; c < cols; ++c) out[c] = in[c];
        }
}

namespace {

// The offsets of the kh·kw shifted planes in the padded ones, t = r·kw + s.
std::vector<int64_t> shifts(int64_t kh, int64_t kw, int64_t prow) {
    std::vector<int64_t> off(kh * kw);
    for (int64_t t = 0; t < kh * kw; ++t) off[t] = (t / kw) * prow + t % kw;
    return off;
}

// The weights as the tap kernel reads them: for each tile of mr output planes and
// each offset t, the [depth × mr] panel A_t(row, p) = w[row·rs + p·cs + tap(t)],
// each value `copies` times (pack.hpp). Tile i's panels start at i·taps·depth·mr·copies.
template <class T, class Tap>
std::vector<T> pack_taps(const T* w, int64_t rows, int64_t depth, int64_t rs, int64_t cs, int64_t taps,
                         int mr, int copies, const Tap& tap) {
    const int64_t tiles = conv_ceil_div(rows, mr), panel = depth * mr * copies;
    std::vector<T> packed(tiles * taps * panel);
    for (int64_t tile = 0; tile < tiles; ++tile)
        for (int64_t t = 0; t < taps; ++t)
            pack_a(std::min<int64_t>(mr, rows - tile * mr), depth, w + tile * mr * rs + tap(t), rs, cs, mr,
                   copies, packed.data() + (tile * taps + t) * panel);
    return packed;
}

// Runs body(first, end) over [0, count): split over a team of `threads` when > 1.
template <class Body>
void over_range(int threads, int64_t count, const Body& body) {
    if (threads <= 1) {
        body(int64_t{0}, count);
        return;
    }
    run_team(threads, [&](int tid, int team) { body(count * tid / team, count * (tid + 1) / team); });
}

// out [planes×rows×cols] (+)= the wide grid's outputs, wide [planes×qr] at row length prow.
template <class T>
MATGRAD_INLINE_COPIES void narrow(const T* __restrict wide, int64_t qr, int64_t prow, int64_t planes, int64_t rows, int64_t cols,
            T* __restrict out, bool accumulate) {
    for (int64_t p = 0; p < planes; ++p)
        for (int64_t r = 0; r < rows; ++r) {
            const T* __restrict src = wide + p * qr + r * prow;
            T* __restrict dst = out + (p * rows + r) * cols;
            if (accumulate)
                for (int64_t c = 0; c < cols; ++c) dst[c] += src[c];
            else
                for (int64_t c = 0; c < cols; ++c) dst[c] = src[c];
        }
}

}  // namespace

template <class T>
void conv2d_forward_implicit(const ConvShape& sh, const T* x, const T* wts, const T* bias, bool relu,
                             T* y) {
    const TypedKernels<T>& kern = active_kernels().get<T>();
    const int mr = kern.blocking.mr, nr = kern.blocking.nr, copies = kern.blocking.a_copies;
    const WideGrid grid(sh.c, sh.h, sh.w, sh.pad, sh.pad, sh.kh, sh.kw, nr);
    const int64_t F = sh.f, K = sh.col_rows(), taps = sh.kh * sh.kw;
    const int64_t oh = sh.out_h(), ow = sh.out_w(), P = oh * ow, x_image = sh.c * sh.h * sh.w;
    const std::vector<int64_t> b_tap = shifts(sh.kh, sh.kw, grid.prow);
    // W[f, ci, r, s] = wts[f·K + ci·taps + t]: A_t(f, ci) for each tile of mr filters
    const std::vector<T> packed_w =
        pack_taps(wts, F, sh.c, K, taps, taps, mr, copies, [](int64_t t) { return t; });
    const int threads = conv_threads(sh);
    const bool by_image = images_split(sh, threads, 1);
    const int sets = by_image ? threads : 1;
    // Per thread: the padded image (borders zeroed once, here) and the wide output.
    std::vector<T> padded(sets * grid.elems, T(0)), wide(sets * F * grid.qr);
    const TapKernel<T> kernel = kern.tap_kernel;

    for_images(sh, threads, 1, [&](int64_t first, int64_t end, int tid) {
        T* xp = padded.data() + tid * grid.elems;
        T* yw = wide.data() + tid * F * grid.qr;
        for (int64_t i = first; i < end; ++i) {
            grid.fill(x + i * x_image, xp);
            // y_wide[:, panel] = Σ_t W[:, :, t] · xp shifted by b_tap[t]: [F×c]·[c×nr] per tile
            over_range(by_image ? 1 : threads, grid.qr / nr, [&](int64_t p0, int64_t p1) {
                for (int64_t pn = p0; pn < p1; ++pn)
                    for (int64_t f0 = 0; f0 < F; f0 += mr)
                        kernel(sh.c, taps, packed_w.data() + f0 * taps * sh.c * copies, xp + pn * nr, grid.pplane,
                               b_tap.data(), yw + f0 * grid.qr + pn * nr, grid.qr,
                               static_cast<int>(std::min<int64_t>(mr, F - f0)), nr, false,
                               Epilogue<T>{nullptr, false});
            });
            // the wide grid's output columns, plus the bias, through the ReLU
            T* yi = y + i * F * P;
            for (int64_t fi = 0; fi < F; ++fi) {
                const T b = bias ? bias[fi] : T(0);
                for (int64_t oy = 0; oy < oh; ++oy) {
                    const T* __restrict src = yw + fi * grid.qr + oy * grid.prow;
                    T* __restrict dst = yi + fi * P + oy * ow;
                    if (relu)
                        for (int64_t ox = 0; ox < ow; ++ox) dst[ox] = std::max(src[ox] + b, T(0));
                    else
                        for (int64_t ox = 0; ox < ow; ++ox) dst[ox] = src[ox] + b;
                }
            }
        }
    });
}

template <class T>
ImplicitDx<T>::ImplicitDx(const ConvShape& sh, const T* wts, int sets)
    : sh_(sh),
      kern_(active_kernels().get<T>()),
      grid_(sh.f, sh.out_h(), sh.out_w(), sh.kh - 1 - sh.pad, sh.kw - 1 - sh.pad, sh.kh, sh.kw,
            kern_.blocking.nr),
      mr_(kern_.blocking.mr),
      nr_(kern_.blocking.nr),
      shifts_(shifts(sh.kh, sh.kw, grid_.prow)) {
    // A_t(ci, f) = W[f, ci, kh−1−r, kw−1−s] = wts[f·K + ci·taps + (taps − 1 − t)]
    const int64_t taps = sh.kh * sh.kw;
    packed_w_ = pack_taps(wts, sh.c, sh.f, taps, sh.col_rows(), taps, mr_, kern_.blocking.a_copies,
                          [taps](int64_t t) { return taps - 1 - t; });
    padded_.assign(sets * grid_.elems, T(0));  // the borders stay zero
    wide_.resize(sets * sh.c * grid_.qr);
}

template <class T>
void ImplicitDx<T>::image(const T* g_i, T* dx_i, bool accumulate, int set, int threads) {
    const TapKernel<T> kernel = kern_.tap_kernel;
    const int64_t C = sh_.c, taps = sh_.kh * sh_.kw, qr = grid_.qr;
    T* gp = padded_.data() + set * grid_.elems;
    T* dxw = wide_.data() + set * C * qr;
    grid_.fill(g_i, gp);
    // dx_wide[:, panel] = Σ_t W[:, :, flipped t]ᵀ · gp shifted by shifts_[t]: [c×f]·[f×nr] per tile
    over_range(threads, qr / nr_, [&](int64_t p0, int64_t p1) {
        for (int64_t pn = p0; pn < p1; ++pn)
            for (int64_t c0 = 0; c0 < C; c0 += mr_)
                kernel(sh_.f, taps, packed_w_.data() + c0 * taps * sh_.f * kern_.blocking.a_copies,
                       gp + pn * nr_, grid_.pplane,
                       shifts_.data(), dxw + c0 * qr + pn * nr_, qr,
                       static_cast<int>(std::min<int64_t>(mr_, C - c0)), nr_, false, Epilogue<T>{nullptr, false});
    });
    narrow(dxw, qr, grid_.prow, C, sh_.h, sh_.w, dx_i, accumulate);
}

template void WideGrid::fill<float>(const float*, float*) const;
template void WideGrid::fill<double>(const double*, double*) const;
template void conv2d_forward_implicit<float>(const ConvShape&, const float*, const float*, const float*,
                                             bool, float*);
template void conv2d_forward_implicit<double>(const ConvShape&, const double*, const double*,
                                              const double*, bool, double*);
template class ImplicitDx<float>;
template class ImplicitDx<double>;

}  // namespace detail
}  // namespace matgrad
