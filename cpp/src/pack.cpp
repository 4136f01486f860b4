#include "pack.hpp"

#include <algorithm>
#include <cstring>

namespace matgrad::detail {

namespace {

// pack_a with one copy of each value.
template <class T>
void pack_a_once(int64_t rows, int64_t depth, const T* a, int64_t rs, int64_t cs, int mr, T* dst,
                 void (*pack_rows_panel)(int64_t, const T*, int64_t, int, T*)) {
    if (rs == 1) {
        // A stored transposed (xᵀ in dL/dw = xᵀ·dL/dy) is a row-major depth×rows
        // matrix whose mr-wide column panels are A's packed panels: pack it as B,
        // reading k rows in groups across all panels. Panel by panel, each panel's
        // k rows, a whole stride apart, evicted each other from L1 before the next
        // panel reread the same lines (a 1024-float stride maps every row to one L1
        // set). Aᵀ·B, Sapphire Rapids-class Xeon, 2 threads, ms, alternated: AVX2 f32
        // 1024³ 10.6-11.0 -> 9.9-10.7, f64 2048³ 165-167 -> 157; AVX-512 f32 2048³
        // 53.0-57.8 -> 51.6-55.0; the lecture's xᵀ·dy (K = 64) within noise.
        pack_b(depth, rows, a, cs, 1, mr, dst);
        return;
    }
    for (int64_t i0 = 0; i0 < rows; i0 += mr, dst += mr * depth) {
        const int live = static_cast<int>(std::min<int64_t>(mr, rows - i0));
        const T* src = a + i0 * rs;
        if (cs == 1 && pack_rows_panel) {
            pack_rows_panel(depth, src, rs, live, dst);
        } else if (cs == 1 && live == mr && mr <= 16) {
            // Row-major A, a full panel: walk k and gather the mr rows, so that the
            // writes are contiguous (mr live read streams, one write stream). Measured
            // on 2048×2048 f32 with mr = 6, every K slice: 3.5-5.2 -> 1.7-1.9 ms.
            const T* rows[16];
            for (int r = 0; r < mr; ++r) rows[r] = src + r * rs;
            for (int64_t p = 0; p < depth; ++p)
                for (int r = 0; r < mr; ++r) dst[p * mr + r] = rows[r][p];
        } else {
            // Row-major A: each row's k run is contiguous; read rows, scatter by mr.
            for (int r = 0; r < live; ++r) {
                const T* row = src + r * rs;
                T* out = dst + r;
                if (cs == 1)
                    for (int64_t p = 0; p < depth; ++p) out[p * mr] = row[p];
                else
                    for (int64_t p = 0; p < depth; ++p) out[p * mr] = row[p * cs];
            }
            for (int r = live; r < mr; ++r)
                for (int64_t p = 0; p < depth; ++p) dst[p * mr + r] = T(0);
        }
    }
}

// dst[s·C + i] = src[s] for i < C, s < values. C a constant, so that the copies of a
// value are one vector store (-O3): with C a run-time count, the spreading loop took
// 2.3% of a baseline f32 1024³ product (perf, one thread), more than the pack itself.
template <int C, class T>
void spread(const T* src, int64_t values, T* dst) {
    for (int64_t s = 0; s < values; ++s) {
        const T v = src[s];
        for (int i = 0; i < C; ++i) dst[s * C + i] = v;
    }
}

}  // namespace

template <class T>
void pack_a(int64_t rows, int64_t depth, const T* a, int64_t rs, int64_t cs, int mr, int copies,
            T* dst, void (*pack_rows_panel)(int64_t, const T*, int64_t, int, T*)) {
    if (copies == 1) return pack_a_once(rows, depth, a, rs, cs, mr, dst, pack_rows_panel);
    // Packed once into the last 1/copies of the area (every pack above, unchanged),
    // then spread forward: value s moves to [s·copies, (s + 1)·copies), which ends
    // at or before the next unread value, at values·(copies − 1) + s + 1, so nothing is
    // overwritten before it is read. The pass reads and writes the block in cache,
    // small beside the nr multiply-adds each packed value feeds per B panel.
    const int64_t values = (rows + mr - 1) / mr * mr * depth;
    T* const once = dst + values * (copies - 1);
    pack_a_once(rows, depth, a, rs, cs, mr, once, pack_rows_panel);
    if (copies == 2)
        spread<2>(once, values, dst);
    else if (copies == 4)
        spread<4>(once, values, dst);
    else  // no kernel set packs other counts (kPackedACopies is 1 or W); test_gemm_paths checks 3
        for (int64_t s = 0; s < values; ++s)
            for (int i = 0; i < copies; ++i) dst[s * copies + i] = once[s];
}

namespace {

// Rows of B packed together: each panel receives one contiguous run of
// kRowGroup·nr elements from kRowGroup rows read side by side (see pack_b).
constexpr int kRowGroup = 8;

// `rows` rows of `count` pieces of Bytes each: piece q of row g, at
// src + g*row_stride + q*Bytes, goes to dst + q*panel_stride + g*Bytes. A copy
// of a constant size compiles to a few vector moves; a call to memcpy per
// 64-byte piece cost as much as the copy.
template <int Bytes, int Rows>
void copy_rows(const char* src, int64_t row_stride, char* dst, int64_t count, int64_t panel_stride,
               int rows) {
    const int live = Rows > 0 ? Rows : rows;
    for (int64_t q = 0; q < count; ++q)
        for (int g = 0; g < live; ++g)
            std::memcpy(dst + q * panel_stride + g * Bytes, src + g * row_stride + q * Bytes, Bytes);
}

// A whole group unrolled; the last group of a block, when shorter, in a loop.
template <int Bytes>
void copy_fixed(const char* src, int64_t row_stride, char* dst, int64_t count, int64_t panel_stride,
                int rows) {
    if (rows == kRowGroup)
        copy_rows<Bytes, kRowGroup>(src, row_stride, dst, count, panel_stride, rows);
    else
        copy_rows<Bytes, 0>(src, row_stride, dst, count, panel_stride, rows);
}

// The same in elements: rows × count pieces of nr elements from rows `rs` apart
// into panels `panel` apart.
template <class T>
void copy_pieces(const T* src, int64_t rs, T* dst, int64_t count, int nr, int64_t panel, int rows) {
    const char* s = reinterpret_cast<const char*>(src);
    char* d = reinterpret_cast<char*>(dst);
    const int64_t rsb = rs * int64_t(sizeof(T)), pb = panel * int64_t(sizeof(T));
    switch (nr * int(sizeof(T))) {
        case 16: return copy_fixed<16>(s, rsb, d, count, pb, rows);
        case 24: return copy_fixed<24>(s, rsb, d, count, pb, rows);
        case 32: return copy_fixed<32>(s, rsb, d, count, pb, rows);
        case 48: return copy_fixed<48>(s, rsb, d, count, pb, rows);
        case 64: return copy_fixed<64>(s, rsb, d, count, pb, rows);
        case 96: return copy_fixed<96>(s, rsb, d, count, pb, rows);
        case 128: return copy_fixed<128>(s, rsb, d, count, pb, rows);
        default:
            for (int64_t q = 0; q < count; ++q)
                for (int g = 0; g < rows; ++g)
                    std::memcpy(dst + q * panel + g * nr, src + g * rs + q * nr, nr * sizeof(T));
    }
}

}  // namespace

template <class T>
void pack_b(int64_t depth, int64_t cols, const T* b, int64_t rs, int64_t cs, int nr, T* dst) {
    if (cs == 1) {
        // Row-major B: read each row of the block once, left to right, dealing its
        // nr-wide pieces out to the panels. Reading panel by panel instead touches
        // one or two cache lines of every row per panel, rows a whole stride apart,
        // which the hardware prefetchers cannot follow (64×4096·4096×4096 f32, AVX2,
        // Sapphire Rapids-class Xeon: the pack was 30% of the product's time).
        // kRowGroup rows go side by side, so that each panel gets one contiguous
        // run of kRowGroup pieces and the rows stream in together: packing all of a
        // 4096×4096 f32 B from memory in 256×384 blocks (nr 32), one thread, AMD
        // Zen 4: 9.0-11.3 ms one row at a time, 4.3-6.4 ms in groups of 8 (4 did as well).
        const int64_t full = cols / nr, tail = cols - full * nr;
        const int64_t panel = nr * depth;  // elements from one panel to the next
        for (int64_t p = 0; p < depth; p += kRowGroup) {
            const int rows = static_cast<int>(std::min<int64_t>(kRowGroup, depth - p));
            copy_pieces(b + p * rs, rs, dst + p * nr, full, nr, panel, rows);
            if (tail)
                for (int g = 0; g < rows; ++g) {
                    T* edge = dst + (p + g) * nr + full * panel;
                    std::memcpy(edge, b + (p + g) * rs + full * nr, tail * sizeof(T));
                    std::fill(edge + tail, edge + nr, T(0));
                }
        }
        return;
    }
    for (int64_t j0 = 0; j0 < cols; j0 += nr, dst += nr * depth) {
        const int live = static_cast<int>(std::min<int64_t>(nr, cols - j0));
        const T* src = b + j0 * cs;
        {
            // B stored transposed (wᵀ in dL/dx = dL/dy·wᵀ): each column's k run is
            // contiguous when rs == 1. Transpose in strips of kStrip k steps, so the
            // strip of the panel being written (kStrip × nr) stays in L1 while every
            // column contributes a short contiguous read.
            constexpr int64_t kStrip = 16;
            for (int64_t p0 = 0; p0 < depth; p0 += kStrip) {
                const int64_t steps = std::min(kStrip, depth - p0);
                for (int j = 0; j < live; ++j) {
                    const T* col = src + j * cs + p0 * rs;
                    T* out = dst + p0 * nr + j;
                    if (rs == 1)
                        for (int64_t p = 0; p < steps; ++p) out[p * nr] = col[p];
                    else
                        for (int64_t p = 0; p < steps; ++p) out[p * nr] = col[p * rs];
                }
            }
            for (int j = live; j < nr; ++j)
                for (int64_t p = 0; p < depth; ++p) dst[p * nr + j] = T(0);
        }
    }
}

template <class T>
void pack_b_fastest(void (*pack_transposed)(int64_t, int64_t, const T*, int64_t, int, T*),
                    void (*pack_rows)(int64_t, int64_t, const T*, int64_t, int, T*),
                    int64_t depth, int64_t cols, const T* b, int64_t rs, int64_t cs, int nr, T* dst) {
    if (rs == 1 && cs != 1 && pack_transposed)
        pack_transposed(depth, cols, b, cs, nr, dst);
    else if (cs == 1 && pack_rows)
        pack_rows(depth, cols, b, rs, nr, dst);
    else
        pack_b(depth, cols, b, rs, cs, nr, dst);
}

template void pack_a<float>(int64_t, int64_t, const float*, int64_t, int64_t, int, int, float*,
                            void (*)(int64_t, const float*, int64_t, int, float*));
template void pack_a<double>(int64_t, int64_t, const double*, int64_t, int64_t, int, int, double*,
                             void (*)(int64_t, const double*, int64_t, int, double*));
template void pack_b<float>(int64_t, int64_t, const float*, int64_t, int64_t, int, float*);
template void pack_b<double>(int64_t, int64_t, const double*, int64_t, int64_t, int, double*);
template void pack_b_fastest<float>(void (*)(int64_t, int64_t, const float*, int64_t, int, float*),
                                    void (*)(int64_t, int64_t, const float*, int64_t, int, float*), int64_t, int64_t, const float*, int64_t, int64_t, int, float*);
template void pack_b_fastest<double>(void (*)(int64_t, int64_t, const double*, int64_t, int, double*),
                                     void (*)(int64_t, int64_t, const double*, int64_t, int, double*), int64_t, int64_t, const double*, int64_t, int64_t, int, double*);

}  // namespace matgrad::detail
