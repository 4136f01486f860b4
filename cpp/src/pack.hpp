// Packing: copy a block of op(A) or op(B), read through arbitrary strides, into
// contiguous micro-panels in the order the micro-kernel consumes them, with the
// edges zero-padded so the kernel never branches. Transposed operands are
// handled here (they are just other strides), never by a transposed copy.
#pragma once

#include <cstdint>

namespace matgrad::detail {

// A block: op(A)[0:rows, 0:depth] with op(A)(i, p) = a[i*rs + p*cs].
// Writes ceil(rows/mr) panels; panel q holds depth steps of mr values, each
// stored `copies` times in a row (the kernel set's blocking.a_copies: SSE2 has no
// broadcast load, so its tiles read a value's copies as one vector):
//   dst[(q*mr*depth + p*mr + r)*copies + i] = op(A)(q*mr + r, p) for i < copies,
//   0 past `rows`.
// pack_rows_panel, where given, packs each panel of a row-major A (cs == 1): the
// kernel set's pack_a_rows (kernel_table.hpp), whose panels are mr rows high.
template <class T>
void pack_a(int64_t rows, int64_t depth, const T* a, int64_t rs, int64_t cs, int mr, int copies,
            T* dst, void (*pack_rows_panel)(int64_t, const T*, int64_t, int, T*) = nullptr);

// B block: op(B)[0:depth, 0:cols] with op(B)(p, j) = b[p*rs + j*cs].
// Writes ceil(cols/nr) panels; panel q holds depth steps of nr values:
//   dst[q*nr*depth + p*nr + j] = op(B)(p, q*nr + j), 0 past `cols`.
template <class T>
void pack_b(int64_t depth, int64_t cols, const T* b, int64_t rs, int64_t cs, int nr, T* dst);

// pack_b, or the kernel set's own pack (kernel_table.hpp) where it has one: its
// register-transposing pack when op(B) is stored transposed (rs == 1: the wᵀ of
// dL/dx), its vector copy when op(B) is row-major (cs == 1). Same layout.
template <class T>
void pack_b_fastest(void (*pack_transposed)(int64_t, int64_t, const T*, int64_t, int, T*),
                    void (*pack_rows)(int64_t, int64_t, const T*, int64_t, int, T*),
                    int64_t depth, int64_t cols, const T* b, int64_t rs, int64_t cs, int nr, T* dst);

}  // namespace matgrad::detail
