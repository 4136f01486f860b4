// matgrad: the C++ kernels behind backprop on matrices. No Python in here.
//
// Layout convention: every matrix is row-major unless strides say otherwise.
// Element (i, j) of a strided matrix X lives at x[i * rs + j * cs]; strides
// are in elements and may be negative or zero.
#pragma once

#include <cstdint>

namespace matgrad {

// ---- GEMM -----------------------------------------------------------------
//
// C = op(A) · op(B)            (accumulate == false: C is written, never read)
// C = op(A) · op(B) + C        (accumulate == true)
// with op(X) = X or Xᵀ. One routine serves the lecture's three products:
//   y    = x · w         gemm(false, false, ...)
//   dL/dx = dL/dy · wᵀ   gemm(false, true,  ...)
//   dL/dw = xᵀ · dL/dy   gemm(true,  false, ..., accumulate) into an existing gradient
//
// BLAS-style, row-major: op(A): [m×k], op(B): [k×n], C: [m×n]. C must not
// overlap A or B (the Python layer checks; from C++ it is the caller's promise).
// lda/ldb/ldc are the row strides of A, B, C as stored (before op).
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
          const float* a, int64_t lda, const float* b, int64_t ldb,
          float* c, int64_t ldc, bool accumulate);
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
          const double* a, int64_t lda, const double* b, int64_t ldb,
          double* c, int64_t ldc, bool accumulate);

// General strides: op(A)(i, p) = a[i*rs_a + p*cs_a], op(B)(p, j) = b[p*rs_b + j*cs_b].
// C is row-major with row stride ldc. Transposed or sliced views need no copy.
// A: [m×k], B: [k×n] -> C: [m×n]
void gemm_strided(int64_t m, int64_t n, int64_t k,
                  const float* a, int64_t rs_a, int64_t cs_a,
                  const float* b, int64_t rs_b, int64_t cs_b,
                  float* c, int64_t ldc, bool accumulate);
void gemm_strided(int64_t m, int64_t n, int64_t k,
                  const double* a, int64_t rs_a, int64_t cs_a,
                  const double* b, int64_t rs_b, int64_t cs_b,
                  double* c, int64_t ldc, bool accumulate);

// The path gemm_strided takes for these sizes and strides (elements, as there) on
// the kernel set and thread count in use, as a name: "empty" (m, n or k is 0),
// "small", "narrow", "row_dots", "row", "streamed_b", "transposed_rows", "skinny" or
// "packed" (docs/tuning.md says when and why each is taken). The rules read the
// L2's size; the skinny path also depends on the thread count. bias, ReLU and
// accumulate do not change the path.
const char* gemm_path(int64_t m, int64_t n, int64_t k, int64_t rs_a, int64_t cs_a, int64_t rs_b,
                      int64_t cs_b, bool double_precision);

// ---- ReLU -----------------------------------------------------------------
//
// Forward: y_i = max(0, x_i); relu(NaN) = NaN.             x: [n] -> y: [n]
// Backward: dx_i = dy_i if x_i > 0 else 0 (0 at x_i = 0).  dy, x: [n] -> dx: [n]
// The Jacobian is diagonal; it is applied as this mask and never formed.
// y may alias x (in place); dx may alias dy.
void relu_forward(const float* x, float* y, int64_t n);
void relu_forward(const double* x, double* y, int64_t n);
void relu_backward(const float* dy, const float* x, float* dx, int64_t n);
void relu_backward(const double* dy, const double* x, double* dx, int64_t n);

// ---- axpy --------------------------------------------------------------------------
// y += alpha · x, elementwise: the update of every optimizer step (p -= lr·g)
// in one pass. x, y: [n]; y must not partially overlap x.
void axpy(int64_t n, float alpha, const float* x, float* y);
void axpy(int64_t n, double alpha, const double* x, double* y);

// ---- Fused linear layer ----------------------------------------------------------
//
// Forward: y = x·w + b, then y = max(0, y) when relu; the bias and the ReLU are
// applied while the GEMM writes y (no extra pass over memory).
//   x: [n×d] (element (i, p) at x[i*rs_x + p*cs_x]), w: [d×m] (likewise),
//   b: [m] or null -> y: [n×m], row stride ldy.
void linear_forward(int64_t n, int64_t d, int64_t m, const float* x, int64_t rs_x, int64_t cs_x,
                    const float* w, int64_t rs_w, int64_t cs_w, const float* b, bool relu,
                    float* y, int64_t ldy);
void linear_forward(int64_t n, int64_t d, int64_t m, const double* x, int64_t rs_x, int64_t cs_x,
                    const double* w, int64_t rs_w, int64_t cs_w, const double* b, bool relu,
                    double* y, int64_t ldy);

// Backward of the same layer, the lecture's formulas with the ReLU mask:
//   g = dL/dy masked by y > 0 (relu; y is the forward's output: y > 0 exactly
//       where x·w + b > 0) or dL/dy itself (no relu, y null),
//   db = Σ_rows g  (summed in the same pass that applies the mask),
//   dx = g·wᵀ, dw = xᵀ·g  (transpose flags, no transposed copies).
// dy, y: [n×m] contiguous. dx: [n×d], dw: [d×m] contiguous, db: [m]; each may be
// null to skip it, and is added into instead of overwritten when its
// accumulate flag is set (gradient accumulation, no temporary).
struct LinearGrads {
    float* dx = nullptr;
    float* dw = nullptr;
    float* db = nullptr;
    bool accumulate_dx = false, accumulate_dw = false, accumulate_db = false;
};
struct LinearGrads64 {
    double* dx = nullptr;
    double* dw = nullptr;
    double* db = nullptr;
    bool accumulate_dx = false, accumulate_dw = false, accumulate_db = false;
};
void linear_backward(int64_t n, int64_t d, int64_t m, const float* dy, const float* y,
                     const float* x, int64_t rs_x, int64_t cs_x, const float* w, int64_t rs_w,
                     int64_t cs_w, const LinearGrads& grads);
void linear_backward(int64_t n, int64_t d, int64_t m, const double* dy, const double* y,
                     const double* x, int64_t rs_x, int64_t cs_x, const double* w,
                     int64_t rs_w, int64_t cs_w, const LinearGrads64& grads);

// ---- Softmax cross-entropy -------------------------------------------------------
//
// The classifier loss over n rows of c scores, with the softmax saved for the backward:
// Forward: probs[i, :] = softmax(scores[i, :]); returns L = -(1/n) Σ_i log probs[i, labels[i]].
//   scores: [n×c] (row stride ld), labels: [n] -> probs: [n×c] contiguous, not
//   overlapping scores.
//   Returns NaN when any score is NaN or ±inf (a -inf score would otherwise pass
//   silently as probability 0), and for n = 0.
// Backward: dscores = (probs - onehot(labels)) · dloss / n.
//   probs: [n×c], labels: [n] -> dscores: [n×c] contiguous; may alias probs.
// Every label must be in [0, c): otherwise std::out_of_range, before anything is written.
float cross_entropy_forward(int64_t n, int64_t c, const float* scores, int64_t ld,
                            const int64_t* labels, float* probs);
double cross_entropy_forward(int64_t n, int64_t c, const double* scores, int64_t ld,
                             const int64_t* labels, double* probs);
void cross_entropy_backward(int64_t n, int64_t c, const float* probs, const int64_t* labels,
                            float dloss, float* dscores);
void cross_entropy_backward(int64_t n, int64_t c, const double* probs, const int64_t* labels,
                            double dloss, double* dscores);

// ---- 2-D convolution (NCHW, cs231n's and PyTorch's layout) -----------------------
//
// x: [n×c×h×w], weights: [f×c×kh×kw], bias: [f] -> y: [n×f×oh×ow] with
// oh = 1 + (h + 2·pad − kh) / stride (floored, as PyTorch), ow likewise.
// The caller checks the shape with valid(): every size > 0 except n, which may
// be 0, stride ≥ 1, pad ≥ 0, each below 2³¹, kh ≤ h + 2·pad, kw ≤ w + 2·pad,
// and every array's element count (x, weights, y, cols) within int64.
struct ConvShape {
    int64_t n = 0, c = 0, h = 0, w = 0;  // input
    int64_t f = 0, kh = 0, kw = 0;       // filters
    int64_t stride = 1, pad = 0;
    int64_t out_h() const { return (h + 2 * pad - kh) / stride + 1; }
    int64_t out_w() const { return (w + 2 * pad - kw) / stride + 1; }
    int64_t col_rows() const { return c * kh * kw; }       // K of the GEMM
    int64_t col_cols() const { return out_h() * out_w(); }  // output pixels of one image
    bool valid() const;
};

// im2col: cols[i][(ci·kh + r)·kw + s][oy·ow + ox] = x[i][ci][oy·stride − pad + r][ox·stride − pad + s],
// 0 in the padding.   x: [n×c×h×w] -> cols: [n×(c·kh·kw)×(oh·ow)]
// col2im is its adjoint: each column entry is added back to the input pixel it
// was copied from (overlapping windows sum).   cols -> dx: [n×c×h×w]
// (dx overwritten, or added into when accumulate).
void im2col(const ConvShape& s, const float* x, float* cols);
void im2col(const ConvShape& s, const double* x, double* cols);
void col2im(const ConvShape& s, const float* cols, float* dx, bool accumulate);
void col2im(const ConvShape& s, const double* cols, double* dx, bool accumulate);

// Two schemes, chosen by conv_uses_columns(s) from the shape alone (so the forward
// and its backward always agree):
//  - columns (any stride): per image, cols_i = im2col(x_i), then one GEMM
//    y_i = W·cols_i with W the weights as [f×(c·kh·kw)]; cols [n×(c·kh·kw)×(oh·ow)]
//    is written and kept for the backward, which forms dW = Σ_i g_i·cols_iᵀ from it
//    and dx_i = col2im(Wᵀ·g_i).
//  - implicit (stride 1, pad < kh and kw, padded rows at most 5/4 of the output
//    rows, a kernel larger than 1×1, 8 to 64 input channels): no columns. The GEMMs read each image, copied once with a zero border,
//    at kh·kw shifts (conv_implicit.cpp); dx is the stride-1 convolution of g with W
//    flipped (or col2im(Wᵀ·g_i) where c is under a third of the tile's rows), and dW
//    forms the columns again from x: cols is not used (it may be null) and the
//    backward is given x instead.
// Both add the bias and apply the ReLU (relu) as y is written. When the work is
// large enough, threads split the images if there are at least as many images as
// threads (in the backward: groups of images, at most 8 groups); otherwise the
// images go one by one, each product threaded.
//   x: [n×c×h×w], weights: [f×c×kh×kw], bias: [f] or null
//   -> y: [n×f×oh×ow], cols: [n×(c·kh·kw)×(oh·ow)] (columns scheme only)
bool conv_uses_columns(const ConvShape& s);
void conv2d_forward(const ConvShape& s, const float* x, const float* weights, const float* bias,
                    bool relu, float* cols, float* y);
void conv2d_forward(const ConvShape& s, const double* x, const double* weights,
                    const double* bias, bool relu, double* cols, double* y);

// Backward, with g = dL/dy masked by y > 0 (relu; y the forward output) or dL/dy:
//   dW = Σ_i g_i·cols_iᵀ      [f×(c·kh·kw)]  (the columns of x_i, as the forward had them)
//   dx_i = col2im(Wᵀ·g_i)     [c×h×w]
//   db = Σ_i Σ_pixels g_i     [f]
// x is the forward's input, read by the implicit scheme (may be null for the
// columns scheme); cols the forward's columns, read by the columns scheme (may be
// null for the implicit one).
// Each gradient may be null (skipped), and is added into when its accumulate
// flag is set. dW and db are summed in a fixed order of image groups (at most
// 8, of ceil(n/8) images), so the results do not depend on the thread count.
template <class T>
struct ConvGrads {
    T* dx = nullptr;
    T* dw = nullptr;
    T* db = nullptr;
    bool accumulate_dx = false, accumulate_dw = false, accumulate_db = false;
};
void conv2d_backward(const ConvShape& s, const float* dy, const float* y, bool relu, const float* x,
                     const float* cols, const float* weights, const ConvGrads<float>& grads);
void conv2d_backward(const ConvShape& s, const double* dy, const double* y, bool relu,
                     const double* x, const double* cols, const double* weights,
                     const ConvGrads<double>& grads);

// ---- 2-D pooling (NCHW, no padding) ----------------------------------------------
//
// Windows of kh×kw moved by stride_h down and stride_w across each plane:
// oh = 1 + (h − kh) / stride_h, ow = 1 + (w − kw) / stride_w.
// Max: y = the window's maximum, argmax = its index in the plane (row·w + col);
// ties go to the first maximum in row-major order, and a NaN in the window
// wins (NaN propagates, as in PyTorch). Its backward routes each dy to its one
// input (summing where windows overlap). Average: y = the window's mean; the
// backward spreads dy / (kh·kw) over the window.
//   x: [n×c×h×w] -> y, argmax: [n×c×oh×ow];  dy -> dx: [n×c×h×w]
struct PoolShape {
    int64_t n = 0, c = 0, h = 0, w = 0, kh = 0, kw = 0, stride_h = 1, stride_w = 1;
    int64_t out_h() const { return (h - kh) / stride_h + 1; }
    int64_t out_w() const { return (w - kw) / stride_w + 1; }
    // n, c ≥ 0, the other sizes > 0, each below 2³¹, kh ≤ h, kw ≤ w, and the
    // element counts of x and y within int64.
    bool valid() const;
};
void max_pool2d_forward(const PoolShape& s, const float* x, float* y, int64_t* argmax);
void max_pool2d_forward(const PoolShape& s, const double* x, double* y, int64_t* argmax);
void max_pool2d_backward(const PoolShape& s, const float* dy, const int64_t* argmax, float* dx,
                         bool accumulate);
void max_pool2d_backward(const PoolShape& s, const double* dy, const int64_t* argmax, double* dx,
                         bool accumulate);
void avg_pool2d_forward(const PoolShape& s, const float* x, float* y);
void avg_pool2d_forward(const PoolShape& s, const double* x, double* y);
void avg_pool2d_backward(const PoolShape& s, const float* dy, float* dx, bool accumulate);
void avg_pool2d_backward(const PoolShape& s, const double* dy, double* dx, bool accumulate);

// ---- Threads ----------------------------------------------------------------
// Starts at OpenMP's default (OMP_NUM_THREADS when set). n < 1 is an error.
// A child process created by fork() starts with 1 thread: GNU libgomp's
// thread team does not survive fork, and entering it in the child would hang.
void set_num_threads(int n);
int get_num_threads();
bool has_openmp();

// ---- Instruction set --------------------------------------------------------
// The kernel set in use: "avx512", "avx2" or "baseline". Chosen on first use
// from CPUID, or forced by the environment variable MATGRAD_ISA.
const char* isa();
// Forces a kernel set; throws std::invalid_argument for an unknown name and
// std::runtime_error when this CPU cannot run it.
void set_isa(const char* name);
// Whether this CPU (and build) can run the named kernel set.
bool isa_available(const char* name);

// ---- Caches and block sizes ---------------------------------------------------
// The GEMM's cache blocks (kc, nc, mc) are derived at first use from the data
// caches the CPU reports (CPUID, else Linux sysfs); the register tile (mr × nr)
// is fixed per kernel set. See docs/tuning.md for the model and its rules.
struct CacheLevel {
    int64_t size = 0;  // bytes; 0 = unknown
    int ways = 0;      // associativity; 0 = unknown
    int line = 64;     // bytes
    int sharing = 1;   // logical CPUs sharing it (an L3's share per core is size / sharing)
};
struct CpuCaches {
    CacheLevel l1d, l2, l3;
    // "cpuid" (leaf 4 on Intel, 0x8000001D on AMD), "sysctl" (macOS: sizes, no
    // associativity), "sysfs" (/sys/devices/system/cpu/cpu0/cache) or "default"
    // (nothing readable: sizes 0).
    const char* source = "default";
};
// What this machine reported (read once).
const CpuCaches& cpu_caches();

struct BlockSizes {
    int mr, nr;             // register tile of C
    int64_t kc, nc, mc;     // K slice, packed B block columns, packed A block rows
    int64_t kc_limit;       // deepest K slice: K / kc is rounded to the nearest whole
                            // slice count while the slices stay within it (f32 on
                            // AVX-512 and AVX2 with a 48 KiB+ L1: 1.5·kc; elsewhere,
                            // and with kc set: kc)
};
// The blocks the active kernel set uses for float (double_precision false) or double.
BlockSizes block_sizes(bool double_precision);
// Where they came from: "derived" (from the caches), "fallback" (caches unknown:
// the fixed table in blocking.hpp), or "override" (MATGRAD_BLOCKING or set_blocking).
const char* blocking_source();
// Overrides kc, nc and mc for both dtypes and every kernel set; 0 keeps the
// derived value, so set_blocking(0, 0, 0) returns to the derived blocks.
// Negative values throw std::invalid_argument. The environment variable
// MATGRAD_BLOCKING="kc=..,nc=..,mc=.." does the same on first use.
void set_blocking(int64_t kc, int64_t nc, int64_t mc);

// ---- Machine limit ------------------------------------------------------------
// The FMA peak of one kernel set, measured: each of `threads` threads runs
// independent chains of vector FMAs for about `seconds`. Returns GFLOP/s (2 per
// FMA lane), summed over threads (one thread in a build without OpenMP). Throws
// like set_isa for an unusable set.
double fma_peak_gflops(const char* isa, bool double_precision, int threads, double seconds);

// ---- Reference --------------------------------------------------------------
// Plain scalar loops: the oracle for tests and benchmarks. Same contracts as above.
namespace reference {
void gemm_strided(int64_t m, int64_t n, int64_t k,
                  const float* a, int64_t rs_a, int64_t cs_a,
                  const float* b, int64_t rs_b, int64_t cs_b,
                  float* c, int64_t ldc, bool accumulate);
void gemm_strided(int64_t m, int64_t n, int64_t k,
                  const double* a, int64_t rs_a, int64_t cs_a,
                  const double* b, int64_t rs_b, int64_t cs_b,
                  double* c, int64_t ldc, bool accumulate);
}  // namespace reference

}  // namespace matgrad
