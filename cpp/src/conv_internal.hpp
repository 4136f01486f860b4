// What the two convolution schemes share: the column scheme (conv.cpp: im2col and
// GEMMs) and the implicit one for stride 1 (conv_implicit.cpp: no columns).
#pragma once

#include <algorithm>
#include <cstdint>
#include <exception>
#include <vector>

#include "kernels/kernel_table.hpp"
#include "matgrad/matgrad.hpp"
#include "threads.hpp"

namespace matgrad::detail {

// Below this many multiply-adds a whole convolution runs on one thread.
inline constexpr int64_t kConvParallelMinMacs = int64_t{1} << 18;
// dW and db are summed per group of images (at most this many groups, each of
// ceil(n / groups) images), then over the groups in order: the same sums
// whatever the thread count, and at most this many partial dW in memory.
inline constexpr int64_t kMaxGroups = 8;

// ceil(a / b) for a ≥ 0, b > 0, without the overflow of (a + b − 1) / b.
inline int64_t conv_ceil_div(int64_t a, int64_t b) { return a == 0 ? 0 : (a - 1) / b + 1; }

// Σ x[0..n) in 8 interleaved partial sums (a fixed order, so the same bits on
// every thread count), which the compiler can keep in vector registers.
template <class T>
T row_sum(const T* __restrict x, int64_t n) {
    T part[8] = {};
    int64_t e = 0;
    for (; e + 8 <= n; e += 8)
        for (int j = 0; j < 8; ++j) part[j] += x[e + j];
    T sum = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
    for (; e < n; ++e) sum += x[e];
    return sum;
}

// The threads a convolution uses: read once per call, since the per-thread
// scratch is sized by it (another Python thread may change the count meanwhile).
inline int conv_threads(const ConvShape& sh) {
    const double macs = double(sh.n) * double(sh.f) * double(sh.col_rows()) * double(sh.col_cols());
    return macs >= double(kConvParallelMinMacs) ? std::max(1, max_threads()) : 1;
}

// Whether for_images gives each thread whole groups of images (else they run one by
// one on the calling thread, each GEMM threaded).
inline bool images_split(const ConvShape& sh, int threads, int64_t group) {
    return threads > 1 && conv_ceil_div(sh.n, group) >= threads;
}

// Runs body(first_image, end_image, tid) over the images, split in whole groups
// over a team of at most `threads` when there are enough groups (else on the
// calling thread, whose GEMMs may then use the threads), and rethrows on the
// caller's thread what a member threw (an exception must not leave an OpenMP region).
template <class Body>
void for_images(const ConvShape& sh, int threads, int64_t group, const Body& body) {
    const int64_t units = conv_ceil_div(sh.n, group);
    if (!images_split(sh, threads, group)) {
        body(int64_t{0}, sh.n, 0);
        return;
    }
    std::exception_ptr error;
    run_team(threads, [&](int tid, int team) {
        SerialScope serial;  // one image's GEMMs per thread
        const int64_t base = units / team, extra = units % team;
        const int64_t u0 = tid * base + std::min<int64_t>(tid, extra);
        const int64_t u1 = u0 + base + (tid < extra ? 1 : 0);
        try {
            body(std::min(sh.n, u0 * group), std::min(sh.n, u1 * group), tid);
        } catch (...) {
#if defined(_OPENMP)
#pragma omp critical(matgrad_conv_error)
#endif
            if (!error) error = std::current_exception();
        }
    });
    if (error) std::rethrow_exception(error);
}

// Which scheme conv_uses_columns picks: by shape (the default), or, so that tests can
// check both on one shape, always the columns, or the implicit scheme wherever it can
// run (stride 1, pad < kh and kw) however wide its grid. Not for concurrent use.
enum class ConvScheme { by_shape, columns, implicit };
void force_conv_scheme(ConvScheme scheme);

// The implicit scheme (conv_implicit.cpp), for shapes where conv_uses_columns is false.

// One image's wide grid: a zero-bordered copy of `planes` planes of rows×cols with
// `top` rows and `left` columns of border on each side (so that a kh×kw window
// fits at every output position), and the columns its products run over.
struct WideGrid {
    int64_t planes, rows, cols;  // the data
    int64_t top, left;           // border on each side
    int64_t prow, pplane;        // padded row and plane lengths
    int64_t out_rows, out_cols;  // outputs of the kh×kw window over the padded planes
    int64_t q;                   // wide columns holding outputs: (out_rows − 1)·prow + out_cols
    int64_t qr;                  // q rounded up to whole panels of nr
    int64_t elems;               // the padded planes plus what the last panel reads past them

    WideGrid(int64_t planes, int64_t rows, int64_t cols, int64_t top, int64_t left, int64_t kh,
             int64_t kw, int64_t nr);
    // src [planes×rows×cols] -> the data part of dst (whose border is already zero)
    template <class T>
    void fill(const T* src, T* dst) const;
};

template <class T>
void conv2d_forward_implicit(const ConvShape& sh, const T* x, const T* wts, const T* bias, bool relu,
                             T* y);

// dx by the implicit scheme, one image at a time: the stride-1 convolution of g,
// padded by kh−1−pad and kw−1−pad, with W flipped and its channels swapped. Made
// once per call: W packed for the tap kernel, and `sets` scratch areas (one per
// thread calling image() at the same time).
template <class T>
class ImplicitDx {
public:
    ImplicitDx(const ConvShape& sh, const T* wts, int sets);
    // dx_i [c×h×w] (+)= the above, from g_i [f×oh×ow], in scratch area `set`. With
    // threads > 1 the image's panels are split over a team of that many.
    void image(const T* g_i, T* dx_i, bool accumulate, int set, int threads);

private:
    ConvShape sh_;
    const TypedKernels<T>& kern_;  // read once: set_isa may run meanwhile (the GIL is released)
    WideGrid grid_;
    int mr_, nr_;
    std::vector<int64_t> shifts_;
    std::vector<T> packed_w_, padded_, wide_;
};

}  // namespace matgrad::detail
