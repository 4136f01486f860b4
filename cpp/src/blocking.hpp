// GEMM tuning choices, per instruction set and dtype.
//
// Row-major C = A·B mirrors BLIS's column-major loops (C = Bᵀ·Aᵀ there):
//   mr×nr  register tile of C; nr runs along N and is a multiple of the vector width.
//   kc     depth of one K slice. The A micro-panel (mr×kc) stays in L1 while the
//          B micro-panels (nr×kc) stream past it from L2.
//   nc     columns of the packed B block (kc×nc), private to a thread, in L2.
//   mc     rows of the packed A block (mc×kc), in L3: each thread packs the panels it
//          reads, or, with 3+ threads along N, the team shares one block (gemm.cpp).
// The register tile is fixed per ISA (the micro-kernels are compiled for it); kc,
// nc and mc are derived at run time from the caches the CPU reports
// (derive_blocking below, blocking.cpp), and the table here is only their
// fallback when a cache size cannot be read.
// Header-only constants: the ISA translation units include it without sharing code.
#pragma once

#include <cstdint>

namespace matgrad {
struct CacheLevel;  // matgrad.hpp
struct CpuCaches;
}

namespace matgrad::detail {

struct Blocking {
    int mr, nr;
    int64_t kc, nc, mc;
    // The deepest a K slice may grow to when K is not a whole number of kc slices
    // (equal_k_slices). In the tables below it is a ratio to kc that derive_blocking
    // keeps for the derived kc; 0: kc itself, the slices never grow.
    int64_t kc_limit = 0;
    // How many times packed A stores each value in a row (pack.hpp): the kernel
    // set's V::kPackedACopies, which make_table (kernel_set_impl.inc) sets here.
    // More than 1 only on SSE2, which has no broadcast load (kernels/baseline.cpp).
    int a_copies = 1;
};

// The fixed table (fallback) was measured on a Zen 5 (48 KiB L1d, 1 MiB L2).
// avx512: 24 zmm accumulators (12 rows × 2 zmm fp32, 12 rows × 2 zmm fp64), as
//   BLIS zen4 (32×12 column-major) and OpenBLAS SkylakeX use. kc×nc of B fills
//   most of L2: fp32 384×512×4 B = 768 KiB, fp64 256×384×8 B = 768 KiB.
// avx2: 16 ymm registers: 6 rows × 2 ymm accumulators (12) + 2 B + 1 broadcast.
// baseline: 16-byte vectors (SSE2 or whatever the target has), 12 accumulators:
//   2 rows × 6 vectors (f32 2×24, f64 2×12). SSE2 has no FMA and no broadcast
//   load (each broadcast is a load and a shuffle), so fewer rows and more vectors
//   per row won: 1024³, 2 threads, Sapphire Rapids-class Xeon, GFLOP/s f32 / f64:
//   4×8 / 4×4 (the old tiles) 58-60 / 26-27; 4×12 / 4×6 62-65 / 29-31; 2×32 / 2×16
//   62-63 / 32; 2×24 / 2×12 58-61 / 32-33. Those tiles all read B's vectors first;
//   since the k step holds the 2 broadcasts instead (rank1_step, microkernel_impl.inc)
//   a 2-row tile fits SSE2's 16 registers without spilling, and f32 moved from 4×12
//   to 2×24. Xeon family 6 model 207, one thread, in one process: the tile alone
//   1.07× (3×16 and 2×16 1.05×); 1024³ against OpenBLAS Nehalem, OpenBLAS's time over
//   matgrad's, 1.02-1.25 -> 1.19-1.29; 777×1023×513 0.88-0.89 -> 0.93-1.00;
//   128×512×784 0.93-0.96 -> 1.00-1.01; 1024³ Aᵀ·Bᵀ 0.86 -> 0.91. On SSE2 packed A
//   holds each value once per lane (a_copies, kernels/baseline.cpp), so a broadcast
//   is one load: f64 products 1.03-1.08×, f32 0.99-1.06× (same Xeon, in one process).
// kc_limit: f32 on AVX-512 and AVX2 lets a K slice grow to 1.5·kc (K / kc rounded
//   to the nearest whole, equal_k_slices): one pass fewer over every C tile. Not f64
//   (AVX-512 1024³ 4% and AVX2 1024³ and 2048³ 2-3% slower with the deeper slices),
//   nor the baseline (128×512·784×512 3% slower). Sapphire Rapids-class Xeon;
//   docs/tuning-log-xeon-167.md, "Seventh session". Applied only on L1s of 48 KiB or
//   more (blocking.cpp).
// How measured: see docs/tuning.md (bench_gemm at 1024³ and 64×4096×4096).
namespace avx512_blocking {
inline constexpr Blocking f32{12, 32, 384, 512, 3072, 576};
inline constexpr Blocking f64{12, 16, 256, 384, 3072};
// Products of up to this many rows against a large stored Bᵀ take the
// transposed-rows path (gemm_transposed_rows.cpp): f32 where its panels are filled,
// f64 at any fill, in spans of K: see transposed_rows_fill and
// transposed_rows_span below.
inline constexpr int64_t kTransposedRowsMaxRows = 64;
// Products of kStreamedMinRows to this many rows take the streamed-B path
// (gemm_streamed_b.cpp), since its blocks are sized by the L1d (streamed_block_bytes;
// with 256-byte blocks f32 4-48 rows had given 0.97-1.13, not taken). Sapphire
// Rapids-class Xeon, 2 threads, scripts/ab-gemm.sh against the paths before (old
// time over new, 9 pairs, one or two runs; twenty-eighth session): f32 2, 4, 8, 16,
// 32, 40, 48, 56, 64×4096² 1.41-1.47, 1.39-1.41, 1.27-1.32, 1.35-1.41, 1.16-1.17,
// 1.10-1.11, 1.04-1.06, 1.01-1.02, 0.97-0.98; 24, 40, 48×2048² 1.18-1.19, 1.07-1.09,
// 1.00-1.01; 17×1001×3003 1.24-1.37; 32, 40, 48×1000×3000 1.04-1.06, 1.10-1.14,
// 0.99. f64 2, 4, 8, 16, 32, 40, 48, 64×4096² 1.62, 1.74, 1.76, 1.22, 1.11, 1.09,
// 1.00, 1.01; 32, 40×2048² 1.09-1.13, 1.10-1.11, 48, 64×2048² 1.02, 0.98;
// 17×1001×3003 1.17; 32, 40×1000×3000 1.04, 1.03, 64×1000×3000 0.93; 64×700×800 0.97.
inline constexpr int64_t kStreamedMaxRowsF32 = 40;
inline constexpr int64_t kStreamedMaxRowsF64 = 40;
// Measured with blocks of 512 bytes or more only (48 KiB L1d): no narrow limits.
inline constexpr int64_t kStreamedNarrowMaxRowsF32 = 0;
inline constexpr int64_t kStreamedNarrowMaxRowsF64 = 0;
}  // namespace avx512_blocking
namespace avx2_blocking {
inline constexpr Blocking f32{6, 16, 256, 768, 3072, 384};
inline constexpr Blocking f64{6, 8, 256, 384, 3072};
// Products of kStreamedMinRows to this many rows take the streamed-B path
// (gemm_streamed_b.cpp). f64 since its blocks are sized by the L1d
// (streamed_block_bytes; with 256-byte blocks it lost at every row count measured,
// below): Sapphire Rapids-class Xeon, 2 threads, scripts/ab-gemm.sh against the
// paths before (old time over new, 9 pairs; twenty-eighth session): 2, 4, 8, 16, 32,
// 48, 64×4096² 1.66, 1.61, 1.58, 1.30, 1.21, 1.08, 1.05; 48, 64×2048² 1.07, 1.07;
// 17×1001×3003 1.44; 64×1000×3000 1.02; 64×700×800 1.12. f32, with 256-byte blocks
// (old time over new, 7 or 9 pairs; 0.975 at 64 rows: 15):
// 2×4096² 1.30, 4×4096² 1.24, 8×4096² 1.29, 16×4096² 1.13, 17×1001×3003 1.21,
// 24×2048² 1.13, 32×4096² 1.09, 32×1024² 1.23, 40×4096×1024 1.07, 48×2048² 1.04,
// 48×1000×3000 1.04; then 64×4096² 0.975-1.00, 64×2048×1024 1.02, 64×700×800 0.97.
// With the rows unrolled by 4 (twenty-fourth session; 9 or 15 pairs): 50, 52, 56, 63
// ×4096² 1.057, 1.042, 1.054-1.057, 1.047; 60×2048² 1.046; 64×2048² 1.033-1.060,
// 64×4096×1024 1.081, 64×1024² 1.081; 64×4096² (the lecture's y) 0.993-1.010 here
// but 10.05-10.15 -> 9.82-9.87 ms in compare.py (separate processes, two
// alternations); 64×1024×4096 0.966-0.988, 64×1000×3000 0.989-0.992, 64×700×800
// 0.968-0.977. So up to 64 rows. f64 8, 16, 32 and 64×4096² 0.975, 0.885, 0.932,
// 0.936.
inline constexpr int64_t kStreamedMaxRowsF32 = 64;
inline constexpr int64_t kStreamedMaxRowsF64 = 64;
// f32 won with 256-byte blocks too, at every row count to 64; f64 lost with them (above).
inline constexpr int64_t kStreamedNarrowMaxRowsF32 = 64;
inline constexpr int64_t kStreamedNarrowMaxRowsF64 = 0;
// Products of up to this many rows against a large stored Bᵀ (dL/dx = dL/dy·wᵀ)
// take the transposed-rows path (gemm_transposed_rows.cpp): f32 where its panels
// are filled, f64 at any fill, in spans of K: see transposed_rows_fill and
// transposed_rows_span.
inline constexpr int64_t kTransposedRowsMaxRows = 64;
}  // namespace avx2_blocking
// neon (aarch64, 32 × 128-bit registers): f32 8×12, f64 6×8, 24 accumulators
//   each (BLIS armv8a's tiles). kc×nc of B = 384 KiB, within the 1 MiB L2 of a
//   Neoverse N1 / Graviton 2 and half of a Cortex-A72's. Not measured: no ARM
//   machine here (emulation says nothing about speed); derived from the caches
//   where they can be read.
namespace neon_blocking {
inline constexpr Blocking f32{8, 12, 256, 384, 1024};
inline constexpr Blocking f64{6, 8, 256, 192, 1024};
}  // namespace neon_blocking
namespace baseline_blocking {
inline constexpr Blocking f32{2, 24, 256, 512, 1024};
inline constexpr Blocking f64{2, 12, 256, 256, 1024};
// Products of a few rows take the streamed-B path (y = x·w; f32 and f64, limits
// below) and f32 the transposed-rows path (x·wᵀ, where its panel of 8 rows is at
// least half full): with SSE's 4 lanes one panel is as fast as w's stream, more
// rows are not. With 256-byte streamed blocks (twenty-sixth session), both for f32
// to 8 rows:
// Sapphire Rapids-class Xeon, 2 threads, scripts/ab-gemm.sh with MATGRAD_ISA=baseline
// against the paths before (old time over new, 5 to 9 pairs; twenty-sixth session):
// streamed B, rows × N × K: 2, 3, 4, 8×4096² 1.07, 1.21, 1.10, 1.13; 8×2048² 1.04;
// 2×1001×3003 1.41, 8×1001×3003 1.12; 4, 6, 8×700×800 1.18, 1.11, 1.07; then 12,
// 16×4096² 1.02, 1.04, 16×2048² 0.96, 17×1001×3003 0.98, 12×700×800 0.99, 20, 24,
// 32×4096² 0.94, 0.99, 0.89. Transposed rows: 4, 5, 6, 8×4096² 1.05-1.18, 1.27, 1.34,
// 1.39-1.41; 7×2048² 1.35; 4×1024² 1.04, 8×1024² 1.30; 5, 8×1001×3003 1.16, 1.15-1.39;
// 6×700×800 1.13 but 4×700×800 0.96; then 12, 16, 64×4096² 0.90, 1.06, 0.79. f64
// neither then: transposed rows 8, 16, 64×4096² 1.00, 0.90, 0.72 (streamed B:
// twenty-third session, 16×4096² 0.98). Measured on SSE2 only: the portable vectors of the set
// elsewhere (aarch64, where the NEON set is the one chosen) take the same limits.
// Since the streamed-B blocks are sized by the L1d (streamed_block_bytes;
// twenty-eighth session, against the paths before, 9 pairs): f32 12, 16, 24,
// 32×4096² 1.13, 1.03-1.07, 1.01, 0.95; 16×2048² 1.01, 16×1000×3000 1.01,
// 12×1001×3003 1.08; f64 4, 8, 12, 16, 24, 32×4096² 1.53, 1.31, 1.14, 1.04-1.06,
// 0.97, 0.92; 16×2048² 0.98, 16×1000×3000 0.94, 12×1001×3003 1.02, 6×700×800 1.30.
// So f32 to 16 rows, f64 to 12.
inline constexpr int64_t kStreamedMaxRowsF32 = 16;
inline constexpr int64_t kStreamedMaxRowsF64 = 12;
// f32 to 8 rows won with 256-byte blocks too (twenty-sixth session).
inline constexpr int64_t kStreamedNarrowMaxRowsF32 = 8;
inline constexpr int64_t kStreamedNarrowMaxRowsF64 = 0;
inline constexpr int64_t kTransposedRowsMaxRows = 8;
}  // namespace baseline_blocking

// kc, nc and mc for the register tile of `tile` (its mr, nr) and elements of
// `elem_bytes` bytes, from the caches (the analytical model of Low et al., 2016,
// with the measured rules documented in blocking.cpp and docs/tuning.md). A level
// whose size or associativity is unknown keeps `tile`'s own kc, nc or mc. Pure.
Blocking derive_blocking(const matgrad::CpuCaches& caches, const Blocking& tile, int elem_bytes);

// MATGRAD_BLOCKING="kc=..,nc=..,mc=..": any of the three, in any order, each a
// positive integer; a field left 0 keeps the derived value. parse_blocking_override
// throws std::invalid_argument naming MATGRAD_BLOCKING and the bad part for anything
// else (a value of 0 included).
struct BlockingOverride {
    int64_t kc = 0, nc = 0, mc = 0;
};
BlockingOverride parse_blocking_override(const char* text);
// The largest value an override may set: keeps every buffer-size product in range.
inline constexpr int64_t kMaxBlock = int64_t{1} << 20;
// Replaces only what the override gives: nc and mc are not re-derived for an
// overridden kc (tuning experiments set what they mean to set).
Blocking with_override(Blocking derived, const BlockingOverride& override);
// Whether a cache level's report is usable for the model (size, ways, at least a
// line per way).
bool usable_level(const matgrad::CacheLevel& level);

// Below this many multiply-adds a GEMM skips packing (gemm_small.cpp): the
// tiles read A and B in place. Measured with bench_gemm's small shapes; see
// docs/tuning.md.
inline constexpr int64_t kSmallMaxMacs = 64 * 64 * 64;
// ... as long as the padded copy of B it may need stays within this many
// elements (a 1×k·k×1 product would otherwise pad k values to k·nr).
inline constexpr int64_t kSmallMaxCopiedB = int64_t{1} << 16;
// Up to kSmallInPlaceMaxMacs (exclusive) for a product of kSmallInPlaceMinRows to
// kSmallInPlaceMaxRows rows whose row-major B the tiles read in place (width a
// multiple of nr): each element of B is used only m times, too few to pay for
// copying it, and from 64³ on the small path's threads split the row tiles as the
// packed path's split N (with 32 rows or more there is a row tile for each of two
// threads; fewer rows keep the row, skinny and packed paths, which were not
// measured against this one). Xeon family 6 model 207, 2 threads, both paths in one
// process (scripts/ab-gemm.sh, turns of 20 calls, 21 pairs unless said; packed time
// over small, AVX-512 / AVX2): 64³ f32 1.22 / 1.25, 1.27 / 1.16, and 1.59 / 1.10 in
// an 11-pair run; f64 1.20 / 1.04; 64×96×64 1.30 / 1.09; 64×64×128 f32 1.31 / 1.02,
// f64 1.06 / 1.18; 64×128×64 1.19 / 0.98; 32×128×128 1.00 / 0.96. The limit rests on
// the AVX-512 gains; on AVX2 the larger of these are level. Past the limits they did
// not gain: 128×64×64 (more rows) 1.00 / 0.91, f64 0.98 / 0.92; 80³ 0.97 / 0.97;
// 96×96×96 1.04 / 0.92; 128³ 1.08 / 0.81; 112³ 0.94 / 0.91. Where B must be copied
// (a width off the panels) the small path lost 20-45% at these sizes: 72³ 0.58 /
// 0.49; 100³ 0.58 / 0.60 (the other thread reading the one copy across the cores;
// with a copy per thread it came level with the packed path, not ahead:
// docs/tuning-log-xeon-207.md, "Sixteenth session"). Two products that took the same
// path in both builds, timed alike, came out at 0.89-1.05: differences under 10% are
// this host's noise.
inline constexpr int64_t kSmallInPlaceMaxMacs = 96 * 96 * 64;
inline constexpr int64_t kSmallInPlaceMinRows = 32;
inline constexpr int64_t kSmallInPlaceMaxRows = 64;
// Whether gemm_fused sends a product to the small path: b_in_place, its B is
// row-major with a width that is a multiple of nr; b_copy_elements, the padded copy
// of B it would need otherwise (k times the width rounded up to nr).
inline constexpr bool takes_small_path(int64_t m, int64_t n, int64_t k, bool b_in_place,
                                       int64_t b_copy_elements) {
    const int64_t macs = m * n * k;
    return (macs < kSmallMaxMacs && (b_in_place || b_copy_elements <= kSmallMaxCopiedB)) ||
           (b_in_place && m >= kSmallInPlaceMinRows && m <= kSmallInPlaceMaxRows && macs < kSmallInPlaceMaxMacs);
}
// GEMMs with at most this many rows and a transposed B take B panel by panel
// (gemm_skinny.cpp): each element of B is used only m times, too few to pay for
// packing it in large blocks, so wᵀ is packed one panel at a time; N is split
// across threads, so there must be a panel for each. Measured on the Zen 5 with a
// C++ loop over both paths, fp32, 2 threads: 64×4096·4096×4096 7.1 -> 6.0 ms,
// 128×4096·4096×4096 11.5 -> 10.3 ms; at 256 rows the two were within noise.
//
// For a transposed B (wᵀ): a row-major B read in place was slower than the
// packed path on two of the three CPUs measured, except for very few rows (below). Sapphire Rapids-class Xeon,
// 64×4096·4096×4096 f32, 2 threads, real data (C++ loop calling each path, medians
// of 9): AVX-512 in place 14.7-16.7 ms against 10.0-11.4 packed, AVX2 19.8-37.6
// against 17.1-17.8; on a Zen 3 (AVX2) the in-place y = x·w ran at 0.45× numpy.
// On the Zen 5 in place was the faster (5.8-6.8 against 6.9-7.8 ms). wᵀ stays
// skinny: AVX-512 9.5-9.8 ms against 11.0-11.2 packed, AVX2 13.0-14.7 against
// 13.9-14.5.
//
// And only when wᵀ is larger than a core's L2 (gemm_fused): a wᵀ that fits is read from
// cache either way, and the packed path then won. Sapphire Rapids-class Xeon, C++ loop,
// 2 threads, packed / skinny, µs: 128×512·(256)ᵀ (the MLP's dL/dx) native 111-116 /
// 127-137, AVX2 173-179 / 201-208; 128×256·(512)ᵀ 130 / 140; 64×512·(784)ᵀ 198 / 219;
// 128×256·(10)ᵀ 10.9 / 15.8. Larger ones stay skinny (64×4096·(4096)ᵀ packed 9.9-10.2,
// skinny 10.2-11.0 ms: not measured on the Zen 5 again, where skinny won by 15%).
inline constexpr int64_t kSkinnyMaxRows = 128;
// ... and a row-major B, read in place, only for at most this many rows and when
// each tile reads at least kSkinnyInPlaceMinRowBytes of every B row: with so few
// rows each B element is used too few times to pay for copying it. Same Xeon, C++
// loop, 1..64×4096·4096×4096 f32, 2 threads, in place / packed (ms): AVX-512
// m = 1 2.24 / 3.38, m = 8 2.88 / 4.22, m = 16 5.15 / 5.54, m = 32 9.20 / 7.56;
// AVX2 (one 64-byte line per row) m = 1 6.44 / 4.11, m = 16 8.97 / 6.45. Through
// Python at m = 16 AVX-512 in place was behind numpy (6.7-7.6 against 6.0-6.4 ms)
// while at m = 8 it was 1.7× ahead, hence 8.
inline constexpr int64_t kSkinnyInPlaceMaxRows = 8;
inline constexpr int64_t kSkinnyInPlaceMinRowBytes = 128;
// The depth of each K slice: K in equal slices. A short last slice (784 = 3·256 +
// 16, 513 = 2·256 + 1) would read and write every C tile once more for a few k
// steps. Sapphire Rapids-class Xeon, 777×1023×513, 2 threads, alternated 3×: f32
// 285-301 -> 298-311 GFLOP/s, f64 136-138 -> 149-151; 1000³ and 1024²×1040 unchanged.
// With a kc_limit above kc (Blocking) the count is K / kc rounded to the nearest
// whole rather than up, as long as the slices stay within kc_limit: each slice
// fewer is one pass fewer over every C tile (AVX2 f32 1024³ 3 slices of 342 instead
// of 4 of 256: 10.58 -> 10.30 ms; see the tables above for where it lost).
inline constexpr int64_t equal_k_slices(int64_t k, int64_t kc, int64_t kc_limit) {
    if (k <= kc) return k;
    const int64_t limit = kc_limit > kc ? kc_limit : kc;
    const int64_t nearest = (k + kc / 2) / kc, needed = (k + limit - 1) / limit;
    const int64_t slices = nearest > needed ? nearest : needed;
    return (k + slices - 1) / slices;
}
inline constexpr int64_t equal_k_slices(const Blocking& b, int64_t k) {
    return equal_k_slices(k, b.kc, b.kc_limit);
}
// Whether the skinny path packs a row-major A slice (m × kc) per K slice into
// mr-row panels instead of letting the tiles read its mr rows in place: where each
// thread reads the slice for two panels or more (the smallest share, panels /
// threads). For one panel, packing copies what the tiles would read once anyway:
// the convolutions' dWᵀ = cols_i·g_iᵀ (K×P·P×32), Sapphire Rapids-class Xeon,
// AVX-512, `bench_conv`, ms, medians (ranges) of 16 runs in place / 8 packed:
// cs231n 9.2 (8.5-10.0) / 10.3 (9.6-10.9), 3×3 2.09 (2.01-2.17) / 2.31 (2.23-2.37).
// Where it is read again, the packed rows are one stream instead of mr streams a
// row apart (rows 4 KiB apart, or a multiple of it, share one L1 set), and the
// tile reads them at constant offsets (direct_tiles_impl.inc, direct_tile_unit_rows).
// Lecture dL/dx = dL/dy·wᵀ, 64×4096·(4096×4096)ᵀ, same Xeon, 2 threads, C++ loop,
// alternated, in place -> packed: AVX-512 f32 12-row tiles 10.8-11.4 -> 10.6-11.2
// ms; AVX2 6-row tiles f32 14.8 -> 13.6, f64 31.3 -> 28.6; baseline f32 37.3 ->
// 36.8, f64 70.7 -> 67.7. Until the constant offsets, AVX2's tiles lost with the
// packing, on this Xeon (14.2 -> 15.4 ms) and on an AMD Zen 4 (two threads 134-144
// -> 105-128 GFLOP/s), and it was done only for tiles with as many rows as the L1
// has ways; the Zen 4 has not been measured since (docs/tuning-log-xeon-167.md,
// "Sixth session").
inline constexpr bool skinny_packs_a(int64_t panels, int threads) {
    return threads > 0 && panels / threads >= 2;
}
// The skinny path shares the next panel's source (`lines` cache lines) out over the
// current panel's `tiles` packed tiles of `depth` k steps each: one line every
// mask + 1 steps, mask 3, or 1 or 0 where the tiles have too few steps for the whole
// stream at that rate. A tile is counted depth / (mask + 1) slots; it has the
// ceiling of that (it fetches at step 0), so the count errs towards the denser mask.
// What is left over at mask 0 the pack reads itself (half the stream for a single
// AVX-512 tile, whose panel has two lines a k step; gemm_skinny.cpp has the figures).
// Lecture dL/dx, AVX2 f32: one line every 2, 4 or 8 steps timed alike (docs/tuning-log-xeon-167.md,
// "Tenth session").
inline constexpr int64_t skinny_stream_step_mask(int64_t tiles, int64_t depth, int64_t lines) {
    int64_t mask = 3;
    while (mask > 0 && tiles * (depth / (mask + 1)) < lines) mask >>= 1;
    return mask;
}
// GEMMs with at most kNarrowMaxCols columns, at least kNarrowMinRows rows, a
// row-major A and a copy of B (padded to whole nr panels) of at most
// kNarrowMaxCopiedB elements take the unpacked path too, threads splitting the
// rows (gemm_small.cpp): each element of A is used only n times, too few to pay
// for packing A. Sapphire Rapids-class Xeon, f32, 2 threads, C++ loop, unpacked /
// packed (ms), AVX2 and AVX-512: 1999×61×1500 2.01 / 2.78 and 1.46 / 2.23,
// 4096×10×256 0.16 / 0.34 and 0.25 / 0.43, 2048×32×2048 1.41 / 2.60 and 1.06 /
// 1.73, 2048×192×512 2.26 / 2.49 and 1.46 / 1.71, 4096×128×4096 24.5 / 31.4 and
// 14.8 / 21.1. Where it lost: 256 columns at 1024 rows on AVX-512 (0.71 / 0.63),
// a transposed A (784×512×128 Aᵀ, AVX2: 0.92 / 0.61), few rows (128×10×256,
// AVX-512: 0.022 / 0.015), and from 512 columns on (1024³: 14.3 / 11.6).
inline constexpr int64_t kNarrowMaxCols = 192;
inline constexpr int64_t kNarrowMinRows = 512;
inline constexpr int64_t kNarrowMaxCopiedB = int64_t{1} << 22;
// The streamed-B path (gemm_streamed_b.cpp): rows of B taken per group (each
// vector of C loaded and stored takes this many FMAs: 6 rows × 2 vectors of B fill
// 12 of AVX2's 16 registers); blocks taken together over all of K
// (kStreamedSpanBlocks, their C stays in L2 between slices). Which products take
// the path: each kernel set's streamed_b_max_rows (kernels/kernel_table.hpp), rows
// from kStreamedMinRows, a row-major B larger than the L2 (or of unknown L2) and
// rows of at least kStreamedMinRowBytes. Sapphire Rapids-class Xeon, AVX2, f32, 2
// threads, scripts/ab-gemm.sh (old time over new): the lecture's y (64 rows) with
// groups of 4 rows 0.979, 0.996, with groups of 6 0.996, 0.975 (15 pairs each);
// a C++ loop in separate processes 11.3-11.9 ms (6 rows) against 12.1-12.8 (4
// rows). Rows of 4 blocks of 256 bytes (16×256×8192) 0.90 (15 pairs), 0.92 (7); of
// 6 (8×384×4096) 1.18; B just over the L2, 16×700×800 1.17, 32×700×800 1.08 (15
// pairs each).
inline constexpr int kStreamedGroupRows = 6;
inline constexpr int64_t kStreamedMinRows = 2;
inline constexpr int64_t kStreamedSpanBlocks = 8;
inline constexpr int64_t kStreamedMinRowBytes = 1536;
// Each block's width, in bytes of a row of B: the block of C (rows × width) and a
// group's rows of B (kStreamedGroupRows × width) within three quarters of the L1d,
// in whole kStreamedBlockQuantum (a whole chunk of two vectors on every kernel
// set), from kStreamedMinBlockBytes to kStreamedMaxBlockBytes. A wider block reads
// longer runs of each row of B from memory. Sapphire Rapids-class Xeon (48 KiB L1d),
// AVX2 f32, 2 threads, scripts/ab-gemm.sh against 256-byte blocks (old time over
// new, 9 or 15 pairs), m×4096²: one width for all rows first, at 64 rows 512 bytes
// 1.01-1.07, 768 1.02-1.05 (block and group 54 KiB), 1024 0.96-0.98; 32 rows 768 /
// 1024 1.07-1.10 / 1.07; 16 rows 1024 1.10-1.15 but 2048 0.87-0.96 (44 KiB); 8 rows
// 2048 1.30-1.33. This rule: 2, 8, 16, 32, 64 rows 1.30-1.33, 1.38, 1.19-1.35,
// 1.09-1.12, 1.06-1.07; the whole L1d instead of three quarters 0.98-1.02
// (docs/tuning.md, "Blocks sized by the L1d (twenty-eighth session)"). An unknown
// L1d counts as 32 KiB: 256 bytes at 64 rows.
inline constexpr int64_t kStreamedBlockQuantum = 128;
inline constexpr int64_t kStreamedMinBlockBytes = 256;
inline constexpr int64_t kStreamedMaxBlockBytes = 4096;
constexpr int64_t streamed_block_bytes(int64_t rows, int64_t l1d_bytes) {
    const int64_t budget = (l1d_bytes > 0 ? l1d_bytes : int64_t{32} << 10) / 4 * 3;
    const int64_t fit = budget / (rows + kStreamedGroupRows) / kStreamedBlockQuantum *
                        kStreamedBlockQuantum;
    return fit < kStreamedMinBlockBytes   ? kStreamedMinBlockBytes
           : fit > kStreamedMaxBlockBytes ? kStreamedMaxBlockBytes
                                          : fit;
}
// Whether m rows take the streamed-B path on a kernel set and dtype whose limits are
// max_rows and narrow_max_rows (the sets' kStreamedMaxRowsF32 / F64 and
// kStreamedNarrowMaxRowsF32 / F64): to narrow_max_rows whatever the block's width, and
// past it, to max_rows, only where the L1d gives blocks of kStreamedWideBlockBytes or
// more. The limits past the narrow ones were measured with such blocks only (a 48 KiB
// L1d); with 256-byte blocks AVX2 f64 had lost at 8-64 rows (0.885-0.975). So on a
// 32 KiB L1d (Zen 3, most Intel client cores) AVX2 f64 takes the path to 42 rows
// (blocks of 512 bytes or more), not at 43-64 (384 or 256). In cachegrind's 32 KiB L1d
// (scripts/cachesim.py) those narrower blocks kept 40 rows' L1 traffic: at 48 and 64
// rows 0.52 bytes per multiply-add, against 1.9 on the packed path. So the guard rests
// on the times above, not on the L1's size, and is untimed on a 32 KiB-L1d CPU
// (docs/tuning-log-xeon-167.md, "Thirtieth session").
inline constexpr int64_t kStreamedWideBlockBytes = 512;
constexpr bool takes_streamed_b(int64_t m, int64_t max_rows, int64_t narrow_max_rows,
                                int64_t l1d_bytes) {
    return m >= kStreamedMinRows && m <= max_rows &&
           (m <= narrow_max_rows || streamed_block_bytes(m, l1d_bytes) >= kStreamedWideBlockBytes);
}
// The transposed-rows path (gemm_transposed_rows.cpp): rows of the stored Bᵀ taken
// per tile (6 rows × 2 vectors of Cᵀ: 12 of AVX2's 16 registers). Which products
// take it: each kernel set's transposed_rows_max_rows, a Bᵀ stored row-major and
// larger than the L2 (as the skinny path's wᵀ).
inline constexpr int kTransposedRowsGroup = 6;
// Its tiles cover A's rows in panels of `width` (2 vectors), so a product whose panels
// are mostly padding pays for rows it does not have: f32 is taken with one panel at
// least half full (one panel's time is then about w's stream), or with three quarters
// of several panels' rows filled. Sapphire Rapids-class Xeon, m×4096·(4096×4096)ᵀ f32,
// scripts/ab-gemm.sh against the skinny path (old time over new, 5 to 9 pairs): AVX2
// (width 16) m = 2, 4, 8, 12, 16 1.15, 1.25, 1.54, 1.67, 1.76; 17 0.97 (and
// 17×1001×3003 0.86), 20 1.10, 24 1.11, 32 1.38, 33 0.94, 40 1.07, 48 1.18, 56 1.03,
// 60 1.10, 64 1.13; AVX-512 (width 32) 8 0.91, 16 1.29, 20 1.31, 32 1.66, 33 1.03, 40
// 1.00, 48 1.00, 64 1.22. One rule for both sets: it gives up AVX2's gains at 2-7 rows
// on 4096² (1.10-1.62), which lose on smaller products (4×1024² 0.76, 2×1001×3003
// 0.85, 6×700×800 0.80; twenty-fifth session), and at 18-23 (20: 1.10). f64 is taken
// at any fill: its skinny path streams twice the bytes for the same multiply-adds, so
// padded panels cost less than w's stream (twenty-fifth session, against the skinny
// path, before the tile fetched every line of f64): AVX2 (width 8) 2, 4, 8, 9, 12, 16,
// 17, 20, 24, 32 rows × 4096² 1.66, 1.73, 2.22, 1.27, 1.38, 1.44, 1.07, 1.18, 1.28,
// 1.20; 2×1001×3003 1.62, 4×1024² 1.43, 8×700×800 1.64; AVX-512 (width 16) 2, 4, 8,
// 16, 17, 20, 24, 32 rows × 4096² 1.48, 1.50, 1.68, 1.79, 1.08, 1.06, 1.17, 1.45;
// 2×1001×3003 1.08, 4×1024² 0.99, 8×700×800 1.52.
constexpr bool transposed_rows_fill(int64_t m, int64_t width, int64_t item_bytes) {
    if (item_bytes >= 8) return true;
    const int64_t panels = (m + width - 1) / width;
    return panels <= 1 ? 2 * m >= width : 4 * m >= 3 * panels * width;
}
// Each thread packs Aᵀ (panels × width values per step of K), and each group of B's
// rows reads all of what is packed: so K is taken in spans of whole slices of kc
// whose packed Aᵀ fits the budget, half a core's L2 (past that it comes from L3 for
// every group) and never more than kTransposedRowsMaxPackedBytes (the only bound
// where the L2 is unknown). Sapphire Rapids-class Xeon (2 MiB L2), against the
// skinny path (old time over new), twenty-fifth session unless marked: Aᵀ of up to
// 1 MiB in one span, AVX2 f32 16×2048×16384 1.74, 32×4096×8192 1.37; Aᵀ of 1.5-2
// MiB in one span (the twenty-fourth session's 4 MiB bound) 32×2048×16384 0.98,
// 64×1024×8192 0.88, f64 AVX2 48 and 64 rows × 4096² 0.97 and 0.83, AVX-512 33 and
// 48 rows 0.80 and 1.00, 64 rows 0.69 (twenty-fourth session). In spans of at most
// 1 MiB (their count in brackets): AVX2 f32 32×2048×16384 (3) 1.34, 64×1024×8192 (3)
// 1.11, 64×4096×8192 (3) 1.16, 64×1024×12288 (4) 1.11, 16×2048×49152 (4) 1.85, f64
// 32×4096×8192 (3) 1.08, 48 and 64 rows × 4096² (2, 3) 1.04 and 1.00; AVX-512 f32
// 32×2048×16384 (2) 1.49, 64×1024×8192 (2) 1.19, 64×4096×8192 (2) 1.16, f64 33, 48,
// 64 rows × 4096² (2, 2, 3) 1.02, 1.21, 1.05 (f64 with the tile fetching a line of w
// every 8 k steps, transposed_rows_impl.inc).
// Between spans each tile's sums wait in a buffer of the thread's, for a chunk of
// its groups at a time whose sums fit kTransposedRowsSumsBytes (so that they stay in
// L2 beside the span of Aᵀ, which is packed again for each chunk). They went through
// C before: a scalar pass transposing them out and back at every span. The same
// Xeon, twenty-sixth session, a C++ loop with the budget forced smaller, each span
// count against one span in the same process, the lecture's dL/dx (spans of 1896,
// 948, 316: 3, 5, 13 spans): chunks of 64 KiB 0.94-0.97, 0.92-0.96, 0.87-0.94; one
// chunk of all the thread's groups 0.97-1.00, 0.94-0.96, 0.85-0.89; the pass through C
// 0.95-0.98, 0.91-0.92, 0.76-0.78; the skinny path 0.86-0.91. With n = 16384 (a thread's sums
// 2 MiB, past what the L2 holds beside Aᵀ), ms, one span 43.3-44.8: 5 / 13 spans in
// chunks of 64 KiB 45.5-46.4 / 47.6-47.9, of 256 KiB 45.6 / 50.0, of 1 MiB 48.1 /
// 53.6, in one chunk 49.0 / 60.5, through C 52.1 / 67.6. In chunks of 64 KiB every
// span count measured beats the skinny path or is level with it (against it: the
// lecture's dL/dx at 5 and 13 spans 1.03-1.12 and 0.98-1.07, through C 1.01-1.04 and
// 0.85-0.88; AVX2 f32 64×1024×8192 at 9-26 spans 1.08, 32×700×3000 at 2-9 1.26-1.28,
// 16×2048×16384 at 5-17 1.48-1.75; f64 32 rows × 4096² at 3-13 1.09-1.10 (through C
// 1.07-0.91), 64 rows at 5-13 0.97-0.99 (0.92-0.87); AVX-512 f32 64 rows × 4096² at
// 2-8 1.11-1.15 (1.16-0.92)), so the path takes any span: f64 at 64 rows then runs 1-3%
// behind the skinny path, left so for one rule.
inline constexpr int64_t kTransposedRowsMaxPackedBytes = int64_t{4} << 20;
inline constexpr int64_t kTransposedRowsSumsBytes = int64_t{64} << 10;
// The budget for each thread's packed Aᵀ on a core with this L2 (0: unknown).
constexpr int64_t transposed_rows_budget(int64_t l2_bytes) {
    const bool known = l2_bytes > 0 && l2_bytes / 2 < kTransposedRowsMaxPackedBytes;
    return known ? l2_bytes / 2 : kTransposedRowsMaxPackedBytes;
}
// K per span for m rows of A in panels of `width`: whole slices of kc (at least one)
// whose packed Aᵀ fits the budget; all of K where it fits.
constexpr int64_t transposed_rows_span(int64_t m, int64_t width, int64_t item_bytes, int64_t k,
                                       int64_t kc, int64_t budget) {
    const int64_t bytes_per_k = (m + width - 1) / width * width * item_bytes;
    if (bytes_per_k * k <= budget) return k;
    const int64_t slices = budget / (bytes_per_k * kc);
    const int64_t span = (slices > 1 ? slices : 1) * kc;
    return span < k ? span : k;
}
// Groups of B's rows per chunk whose sums (panels tiles of tile_bytes each a group)
// fit sums_budget: at least one.
constexpr int64_t transposed_rows_chunk(int64_t panels, int64_t tile_bytes, int64_t sums_budget) {
    const int64_t groups = sums_budget / (panels * tile_bytes);
    return groups > 1 ? groups : 1;
}

// Below this many multiply-adds a GEMM runs on one thread: waking the team
// costs more than it saves.
inline constexpr int64_t kParallelMinMacs = 64 * 64 * 64;
// ReLU: elements below which one thread is faster than two.
inline constexpr int64_t kReluParallelMin = 1 << 16;
// ReLU outputs of at least this many bytes bypass the caches (non-temporal
// stores): well past the Zen 5's 32 MiB L3, where they would be evicted before
// reuse. Zen 5, 4096² fp32 (64 MiB): 35 -> 48 GB/s in bench_relu when it was
// added, 51-58 in the runs docs/tuning.md quotes ("Memory-side choices").
inline constexpr int64_t kReluStreamBytes = int64_t{48} << 20;

}  // namespace matgrad::detail
