// ReLU forward and backward and the fused linear layer (linear.cpp) on every
// kernel set this CPU runs, against scalar loops written from the definitions:
// odd lengths and unaligned starts (the vector loops' heads and tails), NaN and
// -0.0 passing through, in place; the layer with and without bias and ReLU,
// transposed and strided x, and its backward (mask, db, dx, dw, accumulation).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "matgrad/matgrad.hpp"

namespace {

int failures = 0;

void fail(const std::string& what) {
    if (failures < 20) std::printf("FAIL: %s\n", what.c_str());
    ++failures;
}

template <class T>
T value(int64_t i, int salt) {  // deterministic, mixed signs, exact in float
    return T(int((i * 7919 + salt * 104729) % 17) - 8) / T(8);
}

template <class T>
bool same_bits(T a, T b) {  // NaN == NaN, and -0.0 != +0.0
    return std::memcmp(&a, &b, sizeof a) == 0 || (std::isnan(a) && std::isnan(b));
}

template <class T>
void test_relu(const char* isa) {
    const char* dt = sizeof(T) == 4 ? "f32" : "f64";
    for (int64_t n : {0, 1, 3, 4, 7, 15, 16, 17, 63, 64, 65, 1000, 70001})
        for (int64_t offset : {0, 1, 3}) {  // start off the vector alignment
            std::vector<T> xs(n + offset), ys(n + offset), dys(n + offset), dxs(n + offset);
            T* x = xs.data() + offset;
            T* y = ys.data() + offset;
            T* dy = dys.data() + offset;
            T* dx = dxs.data() + offset;
            for (int64_t i = 0; i < n; ++i) {
                x[i] = value<T>(i, 1);
                dy[i] = value<T>(i, 2);
            }
            if (n > 2) {
                x[n / 2] = std::numeric_limits<T>::quiet_NaN();
                x[n - 1] = T(-0.0);
            }
            matgrad::relu_forward(x, y, n);
            matgrad::relu_backward(dy, x, dx, n);
            for (int64_t i = 0; i < n; ++i) {
                const T want_y = x[i] < 0 ? T(0) : x[i];
                const T want_dx = x[i] > 0 ? dy[i] : T(0);
                if (!same_bits(y[i], want_y) || !same_bits(dx[i], want_dx)) {
                    fail(std::string(isa) + " relu " + dt + " n=" + std::to_string(n) + " offset=" +
                         std::to_string(offset) + " at " + std::to_string(i));
                    break;
                }
            }
            matgrad::relu_forward(x, x, n);  // in place
            for (int64_t i = 0; i < n; ++i)
                if (!same_bits(x[i], y[i])) {
                    fail(std::string(isa) + " relu in place " + dt + " n=" + std::to_string(n));
                    break;
                }
        }
}

template <class T, class Grads>
void test_linear(const char* isa, int64_t n, int64_t d, int64_t m, bool trans_x, bool bias, bool relu) {
    const std::string what = std::string(isa) + (sizeof(T) == 4 ? " f32" : " f64") + " linear " +
                             std::to_string(n) + "x" + std::to_string(d) + "x" + std::to_string(m) +
                             (trans_x ? " xT" : "") + (bias ? " bias" : "") + (relu ? " relu" : "");
    // x: [n×d], stored transposed ([d×n]) when trans_x; w: [d×m] row-major; y: [n×m], ldy = m + 2.
    std::vector<T> xs(n * d), w(d * m), b(m), dy(n * m);
    for (size_t i = 0; i < xs.size(); ++i) xs[i] = value<T>(i, 3);
    for (size_t i = 0; i < w.size(); ++i) w[i] = value<T>(i, 4);
    for (size_t i = 0; i < b.size(); ++i) b[i] = value<T>(i, 5);
    for (size_t i = 0; i < dy.size(); ++i) dy[i] = value<T>(i, 6);
    const int64_t rs_x = trans_x ? 1 : d, cs_x = trans_x ? n : 1;
    auto X = [&](int64_t i, int64_t p) { return xs[i * rs_x + p * cs_x]; };
    const int64_t ldy = m + 2;
    std::vector<T> y(n * ldy, T(7));
    matgrad::linear_forward(n, d, m, xs.data(), rs_x, cs_x, w.data(), m, 1, bias ? b.data() : nullptr,
                            relu, y.data(), ldy);
    std::vector<T> want(n * m);
    for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < m; ++j) {
            double s = bias ? double(b[j]) : 0.0;
            for (int64_t p = 0; p < d; ++p) s += double(X(i, p)) * double(w[p * m + j]);
            want[i * m + j] = T(relu && s < 0 ? 0.0 : s);  // exact: inputs are multiples of 1/8
        }
    for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < ldy; ++j)
            if (j < m ? y[i * ldy + j] != want[i * m + j] : y[i * ldy + j] != T(7)) {
                fail(what + ": forward at (" + std::to_string(i) + ", " + std::to_string(j) + ")");
                return;
            }
    // Backward from the contiguous forward output.
    std::vector<T> yc(n * m);
    for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < m; ++j) yc[i * m + j] = y[i * ldy + j];
    std::vector<T> dx(n * d, T(1)), dw(d * m, T(1)), db(m, T(1));
    Grads g;
    g.dx = dx.data();
    g.dw = dw.data();
    g.db = bias ? db.data() : nullptr;
    g.accumulate_dx = g.accumulate_dw = g.accumulate_db = true;  // added onto the ones
    matgrad::linear_backward(n, d, m, dy.data(), relu ? yc.data() : nullptr, xs.data(), rs_x, cs_x,
                             w.data(), m, 1, g);
    auto G = [&](int64_t i, int64_t j) {
        return double(relu && !(yc[i * m + j] > 0) ? T(0) : dy[i * m + j]);
    };
    for (int64_t i = 0; i < n; ++i)
        for (int64_t p = 0; p < d; ++p) {
            double s = 1.0;
            for (int64_t j = 0; j < m; ++j) s += G(i, j) * double(w[p * m + j]);
            if (dx[i * d + p] != T(s)) return fail(what + ": dx at " + std::to_string(i * d + p));
        }
    for (int64_t p = 0; p < d; ++p)
        for (int64_t j = 0; j < m; ++j) {
            double s = 1.0;
            for (int64_t i = 0; i < n; ++i) s += double(X(i, p)) * G(i, j);
            if (dw[p * m + j] != T(s)) return fail(what + ": dw at " + std::to_string(p * m + j));
        }
    if (bias)
        for (int64_t j = 0; j < m; ++j) {
            double s = 1.0;
            for (int64_t i = 0; i < n; ++i) s += G(i, j);
            if (db[j] != T(s)) return fail(what + ": db at " + std::to_string(j));
        }
}

}  // namespace

int main() {
#if defined(__aarch64__)
    // NEON is part of aarch64: it is what runs unless MATGRAD_ISA says otherwise.
    const char* forced = std::getenv("MATGRAD_ISA");
    if (!(forced && *forced) && std::strcmp(matgrad::isa(), "neon") != 0)
        fail(std::string("aarch64 starts on ") + matgrad::isa() + ", not neon");
#endif
    int sets = 0;
    for (const char* isa : {"baseline", "avx2", "avx512", "neon"}) {
        if (!matgrad::isa_available(isa)) continue;
        matgrad::set_isa(isa);
        ++sets;
        test_relu<float>(isa);
        test_relu<double>(isa);
        const int64_t shapes[][3] = {{1, 1, 1}, {5, 7, 13}, {13, 64, 25}, {64, 100, 10}, {33, 17, 130}};
        for (const auto& s : shapes)
            for (int flags = 0; flags < 8; ++flags) {
                const bool tx = flags & 1, bias = flags & 2, relu = flags & 4;
                test_linear<float, matgrad::LinearGrads>(isa, s[0], s[1], s[2], tx, bias, relu);
                test_linear<double, matgrad::LinearGrads64>(isa, s[0], s[1], s[2], tx, bias, relu);
            }
    }
    std::printf("%d kernel sets (active at start: %s), %d failures\n", sets, matgrad::isa(), failures);
    return failures == 0 && sets > 0 ? 0 : 1;
}
