// Softmax cross-entropy, forward and backward side by side (the classifier
// loss). One pass per row: the row maximum, then exp and its sum, then the
// normalisation; the forward keeps the probabilities, which are all the
// backward needs. Rows are short (one score per class), so this is plain
// scalar code on one thread: a call's cost is its overhead, which it keeps low
// next to the dozen numpy calls it replaces.
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "matgrad/matgrad.hpp"

namespace matgrad {
namespace detail {
namespace {

void check_labels(int64_t n, int64_t c, const int64_t* labels) {
    for (int64_t i = 0; i < n; ++i)
        if (labels[i] < 0 || labels[i] >= c)
            throw std::out_of_range("cross_entropy: labels[" + std::to_string(i) + "] = " +
                                    std::to_string(labels[i]) + " is outside [0, " +
                                    std::to_string(c) + ")");
}

// scores: [n×c] (row stride ld), labels: [n] -> probs: [n×c]; returns the mean loss.
template <class T>
T cross_entropy_forward_impl(int64_t n, int64_t c, const T* scores, int64_t ld,
                             const int64_t* labels, T* probs) {
    check_labels(n, c, labels);
    if (n <= 0) return std::numeric_limits<T>::quiet_NaN();  // the mean of no rows
    bool finite = true;
    double total = 0;  // Σ_i -log softmax(s_i)[y_i], summed in double
    for (int64_t i = 0; i < n; ++i) {
        const T* s = scores + i * ld;
        T* p = probs + i * c;
        T top = s[0];
        for (int64_t j = 0; j < c; ++j) {
            finite = finite && std::isfinite(s[j]);
            top = s[j] > top ? s[j] : top;
        }
        double sum = 0;  // Σ_j exp(s_j - max) >= 1: exp cannot overflow
        for (int64_t j = 0; j < c; ++j) {
            p[j] = std::exp(s[j] - top);
            sum += p[j];
        }
        const T inv = T(1.0 / sum);
        for (int64_t j = 0; j < c; ++j) p[j] *= inv;
        // -log softmax(s)[y] = log Σ_j exp(s_j - max) - (s_y - max)
        total += std::log(sum) - double(s[labels[i]] - top);
    }
    // A -inf score would otherwise pass as probability 0: any non-finite score makes the loss NaN.
    return finite ? T(total / double(n)) : std::numeric_limits<T>::quiet_NaN();
}

// probs: [n×c], labels: [n] -> dscores: [n×c] (may be probs itself).
template <class T>
void cross_entropy_backward_impl(int64_t n, int64_t c, const T* probs, const int64_t* labels,
                                 T dloss, T* dscores) {
    check_labels(n, c, labels);
    // L = -(1/N) Σ_i log p[i, y_i]  ->  dL/ds[i, j] = (p[i, j] - [j == y_i]) / N, times dL/dL
    const T scale = dloss / T(n);
    for (int64_t e = 0; e < n * c; ++e) dscores[e] = probs[e] * scale;
    for (int64_t i = 0; i < n; ++i) dscores[i * c + labels[i]] -= scale;
}

}  // namespace
}  // namespace detail

float cross_entropy_forward(int64_t n, int64_t c, const float* scores, int64_t ld,
                            const int64_t* labels, float* probs) {
    return detail::cross_entropy_forward_impl(n, c, scores, ld, labels, probs);
}
double cross_entropy_forward(int64_t n, int64_t c, const double* scores, int64_t ld,
                             const int64_t* labels, double* probs) {
    return detail::cross_entropy_forward_impl(n, c, scores, ld, labels, probs);
}
void cross_entropy_backward(int64_t n, int64_t c, const float* probs, const int64_t* labels,
                            float dloss, float* dscores) {
    detail::cross_entropy_backward_impl(n, c, probs, labels, dloss, dscores);
}
void cross_entropy_backward(int64_t n, int64_t c, const double* probs, const int64_t* labels,
                            double dloss, double* dscores) {
    detail::cross_entropy_backward_impl(n, c, probs, labels, dloss, dscores);
}

}  // namespace matgrad
