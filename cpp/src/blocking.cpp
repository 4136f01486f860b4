// Cache blocks from the caches: the analytical model of Low, Igual, Smith and
// Quintana-Orti, "Analytical Modeling Is Enough for High-Performance BLIS"
// (ACM TOMS 2016), written for matgrad's row-major loops (gemm.cpp), where the
// A micro-panel (mr × kc) is the one that stays in L1 and the B micro-panels
// (nr × kc) stream from the B block in L2. Per cache level: W ways, and
// way = size / W bytes per way (sets · line); S = element size; c = a_copies,
// how many times packed A stores each value (pack.hpp: SSE2's baseline once per
// vector lane, every other kernel set once), so A takes c times its values' room.
//
//   kc: the resident A panel and the streaming B panel share L1, one way kept
//       free for C and the stack; the streaming panel gets
//         ways_b = ⌊(W1 − 1) / (1 + mr·c/nr)⌋  and  kc = ways_b · way1 / (nr · S).
//   nc: the B block kc × nc takes the L2 ways the model leaves it, beside the two
//       A panels (the current one and the next):
//         nc = (W2' − ⌈2 · mr · c · kc · S / way2⌉) · way2 / (kc · S), a multiple of nr,
//       where the model has W2' = W2 − 1 and the measured rule W2' = ⌊W2 / 2⌋.
//   mc: the A block mc × kc lives in this core's share of L3 beside its B block:
//         mc = (W3 − 1 − ⌈kc · nc · S / way3⌉) · way3 / (kc · S · c), a multiple of mr,
//       with way3 from the share (size / sharing).
//
// Measured rules on top (docs/tuning.md has the sweeps): see kc_min and friends.
#include <stdexcept>
#include <string>

#include "blocking.hpp"
#include "cpu_info.hpp"

namespace matgrad::detail {
namespace {

int64_t floor_to(int64_t x, int64_t step) { return x / step * step; }
int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t clamp(int64_t x, int64_t lo, int64_t hi) { return x < lo ? lo : x > hi ? hi : x; }

// Rules measured on top of the model (docs/tuning.md, "Cache blocks"; Sapphire
// Rapids-class Xeon, 48 KiB 12-way L1d, 2 MiB 16-way L2):
// - kc below 256 leaves the C tile's read and write-back (once per K slice) too
//   large a share of each micro-kernel call; kc = 512, which the model allows on a
//   48 KiB L1, was 10-15% slower than 256-320 (the L1 also holds C and prefetches),
//   and 384 was 5% slower than 320 for f64.
// - but for 8-byte elements the floor is 192: the floor of 256 was measured where
//   the model gave 256 or more (f32, and AVX2's narrow f64 tiles), and it overrode the
//   model's 192 for AVX-512's 12×16 f64 tile, whose A panel at kc = 256 (24 KiB) and B
//   panel (32 KiB) do not both fit a 48 KiB L1. Same Xeon, 2 threads, alternated 5×:
//   f64 1024³ and 2048³ +6% with kc 192 (nc 592, the model's); 160 did as well, 224
//   worse. Not lower: the model's 128 on 32 KiB 8-way L1s was not measured better
//   (a Zen 4 sweep of kc 128-512 for f64 was all within the noise), and 128-deep
//   slices cost 1-6% at 256³ here.
constexpr int64_t kKcMax = 320;
constexpr int64_t kc_min(int64_t elem_bytes) { return elem_bytes >= 8 ? 192 : 256; }
// - K slices grow past kc (the tables' kc_limit) only on an L1 of at least 48 KiB: the
//   growth was measured on the Xeon's 48 KiB 12-way L1 (docs/tuning-log-xeon-167.md,
//   "Seventh session"); on a 32 KiB L1 a 480-deep AVX2 f32 slice's A and B panels (41 KiB)
//   would not fit, and no such CPU has been measured with it.
constexpr int64_t kGrowMinL1 = 48 * 1024;
// - a B block filling the L2 but one way (the model) was 10-20% slower than one
//   in half of it: the L2 also keeps the A panels, C lines and the hardware
//   prefetcher's lines. The block gets half the ways.
constexpr bool kHalfL2 = true;
// - the A block: the B blocks are packed again for every A block, so below about
//   1000 rows the repacking shows (BLIS keeps its matching L3 block at 3000-6000
//   whatever the L3, for the same reason); past 4096 rows the per-block costs (the
//   B repacking, a shared block's barrier pair per K slice) are already rare. A
//   small L3 share (Skylake-X: 1.375 MiB a core, 704 KiB for each of its 24 logical
//   CPUs) thus gets the floor, not the model's few hundred rows. With two threads
//   along N each packs its own copy of the block (gemm.cpp): twice the L3
//   footprint, measured only where the L3 share is large (the 480 MiB Xeon).
constexpr int64_t kMcMin = 1024, kMcMax = 4096;

}  // namespace

bool usable_level(const CacheLevel& c) {
    // At least a line per way: a smaller report (a hypervisor's "8 bytes") is no cache.
    return c.size > 0 && c.ways > 1 && c.line > 0 && c.size / c.ways >= c.line;
}

Blocking derive_blocking(const CpuCaches& caches, const Blocking& tile, int elem_bytes) {
    Blocking b = tile;
    const int64_t S = elem_bytes, mr = tile.mr, nr = tile.nr, copies = tile.a_copies;
    const int64_t a_step = mr * copies;  // packed A values a k step
    if (usable_level(caches.l1d)) {
        const int64_t way = caches.l1d.size / caches.l1d.ways;
        const int64_t ways_b = (caches.l1d.ways - 1) * nr / (nr + a_step);
        b.kc = clamp(ways_b * way / (nr * S), kc_min(S), kKcMax);
    }
    // The table's growth allowance for K slices, as a ratio to kc (blocking.hpp), on
    // L1s like the one it was measured on; elsewhere (32 KiB L1s, unknown caches) the
    // slices keep to kc until measured there.
    const bool measured_l1 = usable_level(caches.l1d) && caches.l1d.size >= kGrowMinL1;
    b.kc_limit = measured_l1 && tile.kc_limit > tile.kc ? b.kc * tile.kc_limit / tile.kc : b.kc;
    if (usable_level(caches.l2)) {
        const int64_t way = caches.l2.size / caches.l2.ways;
        const int64_t ways_a = ceil_div(2 * a_step * b.kc * S, way);
        const int64_t ways_for_b = kHalfL2 ? caches.l2.ways / 2 : caches.l2.ways - 1;
        const int64_t free_ways = ways_for_b - ways_a;
        const int64_t nc = free_ways > 0 ? free_ways * way / (b.kc * S) : 0;
        b.nc = nc >= nr ? floor_to(nc, nr) : nr;
    }
    if (usable_level(caches.l3)) {
        const int64_t share = caches.l3.size / (caches.l3.sharing > 0 ? caches.l3.sharing : 1);
        const int64_t way = share / caches.l3.ways;
        const int64_t ways_b = way > 0 ? ceil_div(b.kc * b.nc * S, way) : caches.l3.ways;
        const int64_t free_ways = caches.l3.ways - 1 - ways_b;
        const int64_t mc = free_ways > 0 ? free_ways * way / (b.kc * S * copies) : 0;
        b.mc = clamp(floor_to(mc, mr), floor_to(kMcMin, mr), floor_to(kMcMax, mr));
    }
    return b;
}

BlockingOverride parse_blocking_override(const char* text) {
    BlockingOverride o;
    const std::string all = text ? text : "";
    auto fail = [&](const std::string& why) {
        throw std::invalid_argument("MATGRAD_BLOCKING='" + all + "': " + why +
                                    "; expected for example MATGRAD_BLOCKING=\"kc=256,nc=768,mc=3072\""
                                    " (any of kc, nc, mc, each a positive integer)");
    };
    if (all.empty()) fail("empty");
    size_t pos = 0;
    bool seen[3] = {false, false, false};
    while (pos <= all.size()) {
        const size_t comma = all.find(',', pos);
        const std::string item = all.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
        const size_t eq = item.find('=');
        if (eq == std::string::npos) fail("'" + item + "' is not name=value");
        const std::string name = item.substr(0, eq), value = item.substr(eq + 1);
        const int which = name == "kc" ? 0 : name == "nc" ? 1 : name == "mc" ? 2 : -1;
        if (which < 0) fail("unknown name '" + name + "'");
        if (seen[which]) fail("'" + name + "' given twice");
        seen[which] = true;
        if (value.empty() || value.find_first_not_of("0123456789") != std::string::npos)
            fail(name + " must be a positive integer, not '" + value + "'");
        const size_t digits = value.find_first_not_of('0');  // leading zeros do not count
        if (digits != std::string::npos && value.size() - digits > 18)
            fail(name + "=" + value + " is larger than " + std::to_string(kMaxBlock));
        const int64_t v = std::stoll(value);
        if (v > kMaxBlock) fail(name + "=" + value + " is larger than " + std::to_string(kMaxBlock));
        if (v <= 0) fail(name + " must be a positive integer, not " + value);
        (which == 0 ? o.kc : which == 1 ? o.nc : o.mc) = v;
        if (comma == std::string::npos) break;
        pos = comma + 1;
    }
    return o;
}

Blocking with_override(Blocking b, const BlockingOverride& o) {
    if (o.kc > 0) b.kc = b.kc_limit = o.kc;  // an overridden kc is the slice depth, as set
    if (o.nc > 0) b.nc = o.nc;
    if (o.mc > 0) b.mc = o.mc;
    return b;
}

}  // namespace matgrad::detail
