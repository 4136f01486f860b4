// Block sizes from the caches (blocking.cpp, cpu_info.cpp) and GEMMs under forced
// blockings:
// - derive_blocking for known CPUs, against values worked out by hand from the
//   model and rules in blocking.cpp, and the invariants the model promises;
// - the CPUID cache leaf from registers read on real CPUs, the sysfs reader on a fake
//   /sys tree, the MATGRAD_BLOCKING parser;
// - a property test: random blockings (set_blocking) × random shapes, transposes,
//   dtypes and kernel sets, each product against the scalar reference.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <sys/stat.h>

#include "blocking.hpp"
#include "cpu_info.hpp"
#include "matgrad/matgrad.hpp"

namespace {

using matgrad::CacheLevel;
using matgrad::CpuCaches;
using matgrad::detail::Blocking;

int failures = 0;

void check(bool ok, const std::string& what) {
    if (!ok) {
        std::printf("FAIL: %s\n", what.c_str());
        ++failures;
    }
}

constexpr int64_t KiB = 1024, MiB = 1024 * 1024;

CpuCaches cpu(int64_t l1, int w1, int64_t l2, int w2, int64_t l3, int w3, int sharing) {
    CpuCaches c;
    c.l1d = CacheLevel{l1, w1, 64, 2};
    c.l2 = CacheLevel{l2, w2, 64, 2};
    c.l3 = CacheLevel{l3, w3, 64, sharing};
    c.source = "test";
    return c;
}

struct Known {
    const char* name;
    CpuCaches caches;
    // Expected {kc, nc, mc}: avx2 f32 (6×16), avx2 f64 (6×8), avx512 f32 (12×32), avx512 f64 (12×16).
    int64_t expect[4][3];
    // Expected kc_limit in the same order: 1.5·kc for f32 (the tables' ratio) on L1s of
    // 48 KiB or more, else kc; kc for f64.
    int64_t kc_limit[4];
};

namespace tables = matgrad::detail;
const Blocking kTiles[4] = {tables::avx2_blocking::f32, tables::avx2_blocking::f64,
                            tables::avx512_blocking::f32, tables::avx512_blocking::f64};
const int kElem[4] = {4, 8, 4, 8};
const char* const kTileName[4] = {"avx2 f32", "avx2 f64", "avx512 f32", "avx512 f64"};

void test_known_cpus() {
    const Known cpus[] = {
        // AMD Zen 3: 32 KiB 8-way L1d, 512 KiB 8-way L2, 32 MiB 16-way L3 per 16 CPUs.
        {"Zen 3", cpu(32 * KiB, 8, 512 * KiB, 8, 32 * MiB, 16, 16),
         {{320, 144, 1326}, {256, 96, 1020}, {256, 192, 1656}, {192, 128, 1104}},
         {320, 256, 256, 192}},
        // AMD Zen 4: 1 MiB 8-way L2.
        {"Zen 4", cpu(32 * KiB, 8, 1 * MiB, 8, 32 * MiB, 16, 16),
         {{320, 304, 1224}, {256, 192, 1020}, {256, 384, 1536}, {192, 256, 1020}},
         {320, 256, 256, 192}},
        // AMD Zen 5: 48 KiB 12-way L1d, 1 MiB 16-way L2.
        {"Zen 5", cpu(48 * KiB, 12, 1 * MiB, 16, 32 * MiB, 16, 16),
         {{320, 352, 1122}, {320, 176, 1020}, {256, 448, 1404}, {192, 288, 1020}},
         {480, 320, 384, 192}},
        // Intel Skylake-X: 1 MiB 16-way L2, 16.5 MiB of 11-way L3 shared by 24 logical CPUs (12
        // cores): a share of 704 KiB, which gives the mc floor.
        {"Skylake-X", cpu(32 * KiB, 8, 1 * MiB, 16, 16896 * KiB, 11, 24),
         {{320, 352, 1020}, {256, 224, 1020}, {256, 448, 1020}, {192, 288, 1020}},
         {320, 256, 256, 192}},
        // Intel Haswell: 256 KiB 8-way L2, 8 MiB 16-way L3 per 8 CPUs.
        {"Haswell", cpu(32 * KiB, 8, 256 * KiB, 8, 8 * MiB, 16, 8),
         {{320, 64, 1020}, {256, 48, 1020}, {256, 96, 1020}, {192, 32, 1020}},
         {320, 256, 256, 192}},
        // The Sapphire Rapids-class Xeon (docs/tuning.md): 48 KiB 12-way L1d, 2 MiB 16-way L2,
        // 480 MiB of L3 per 2 CPUs. avx512 f64: the model's kc 192 (12×16 tile: ⌊11·16/28⌋ = 6
        // ways of 4 KiB / 128 B), nc = 7 ways · 128 KiB / (192 · 8) = 597 -> 592.
        {"Sapphire Rapids-class Xeon", cpu(48 * KiB, 12, 2 * MiB, 16, 480 * MiB, 16, 2),
         {{320, 704, 4092}, {320, 352, 4092}, {256, 896, 4092}, {192, 592, 4092}},
         {480, 320, 384, 192}},
    };
    for (const Known& k : cpus)
        for (int t = 0; t < 4; ++t) {
            const Blocking b = matgrad::detail::derive_blocking(k.caches, kTiles[t], kElem[t]);
            const std::string what = std::string(k.name) + " " + kTileName[t];
            check(b.mr == kTiles[t].mr && b.nr == kTiles[t].nr, what + ": the register tile is kept");
            check(b.kc == k.expect[t][0], what + ": kc " + std::to_string(b.kc) + " != " +
                                              std::to_string(k.expect[t][0]));
            check(b.nc == k.expect[t][1], what + ": nc " + std::to_string(b.nc) + " != " +
                                              std::to_string(k.expect[t][1]));
            check(b.mc == k.expect[t][2], what + ": mc " + std::to_string(b.mc) + " != " +
                                              std::to_string(k.expect[t][2]));
            check(b.kc_limit == k.kc_limit[t], what + ": kc_limit " + std::to_string(b.kc_limit) +
                                                   " != " + std::to_string(k.kc_limit[t]));
            // What the model promises, whatever the numbers.
            const int64_t S = kElem[t];
            check(b.nc % b.nr == 0 && b.mc % b.mr == 0, what + ": nc, mc are whole tiles");
            check(b.kc * b.nc * S <= k.caches.l2.size / 2, what + ": the B block fits half of L2");
            check(b.kc >= (S == 8 ? 192 : 256) && b.kc <= 320, what + ": kc within the measured range");
            const bool grows = S == 4 && k.caches.l1d.size >= 48 * KiB;
            check(b.kc_limit == (grows ? b.kc + b.kc / 2 : b.kc),
                  what + ": f32 slices grow to 1.5·kc on a 48 KiB L1, f64 and smaller L1s not");
        }
}

// Packed A with copies (the SSE2 baseline's, Blocking::a_copies) takes a_copies times
// the room in L1, L2 and L3, worked out by hand. Zen 3 (4 KiB L1 ways, 64 KiB L2 ways), the
// baseline's f64 2×12 tile:
//   copies 1: ⌊7·12/14⌋ = 6 ways, kc = 6·4096/96 = 256; ⌈2·2·256·8/64 Ki⌉ = 1 way for A,
//             nc = 3·65536/(256·8) = 96;
//   copies 2: ⌊7·12/16⌋ = 5 ways, kc = 5·4096/96 = 213; 1 way for A,
//             nc = ⌊3·65536/(213·8)⌋ = 115 -> 108.
// On the Xeon of this machine's runs (48 KiB 12-way L1, 2 MiB 16-way L2) the f32 2×24
// tile's copies change nothing: kc is capped at 320 either way, A takes 1 L2 way.
void test_packed_a_copies_in_the_model() {
    const CpuCaches zen3 = cpu(32 * KiB, 8, 512 * KiB, 8, 32 * MiB, 16, 16);
    const CpuCaches xeon = cpu(48 * KiB, 12, 2 * MiB, 16, 300 * MiB, 20, 2);
    Blocking f64 = tables::baseline_blocking::f64, f32 = tables::baseline_blocking::f32;
    f64.a_copies = 1;
    Blocking b = matgrad::detail::derive_blocking(zen3, f64, 8);
    check(b.kc == 256 && b.nc == 96 && b.mc == 1024 && b.a_copies == 1,
          "Zen 3 baseline f64, one copy: kc 256 nc 96 mc 1024, got kc " + std::to_string(b.kc) + " nc " +
              std::to_string(b.nc) + " mc " + std::to_string(b.mc));
    f64.a_copies = 2;
    b = matgrad::detail::derive_blocking(zen3, f64, 8);
    check(b.kc == 213 && b.nc == 108 && b.mc == 1024 && b.a_copies == 2,
          "Zen 3 baseline f64, two copies: kc 213 nc 108 mc 1024, got kc " + std::to_string(b.kc) + " nc " +
              std::to_string(b.nc) + " mc " + std::to_string(b.mc));
    // Zen 3, the baseline's own f32 tile (2×24, 4 copies): ways_b = ⌊7·24/32⌋ = 5, kc =
    // 5·4096/96 = 213 -> the f32 floor 256; A ⌈2·8·256·4/64 Ki⌉ = 1 of the 4 L2 ways, nc =
    // 3·65536/(256·4) = 192; mc = 13·128 Ki/(256·4·4) = 416 -> the floor 1024.
    f32.a_copies = 4;
    b = matgrad::detail::derive_blocking(zen3, f32, 4);
    check(b.kc == 256 && b.nc == 192 && b.mc == 1024,
          "Zen 3 baseline f32, four copies: kc 256 nc 192 mc 1024, got kc " + std::to_string(b.kc) + " nc " +
              std::to_string(b.nc) + " mc " + std::to_string(b.mc));
    for (int copies : {1, 4}) {
        f32.a_copies = copies;
        b = matgrad::detail::derive_blocking(xeon, f32, 4);
        check(b.kc == 320 && b.nc == 696 && b.mc == 4096 && b.a_copies == copies,
              "Xeon baseline f32, " + std::to_string(copies) + " copies: kc 320 nc 696 mc 4096, got kc " +
                  std::to_string(b.kc) + " nc " + std::to_string(b.nc) + " mc " + std::to_string(b.mc));
    }
    // The L2 term: on a Haswell (32 KiB L2 ways), a 2-row f64 tile with 8 copies has A
    // panels of 16 values a step, as a 16-row tile with one: kc 192 (the floor; the model
    // gives ⌊7·12/28⌋·4096/96 = 128), 2 L2 ways for A (⌈2·16·192·8/32 Ki⌉),
    // nc = ⌊2·32768/(192·8)⌋ = 42 -> 36. Dropping the copies from the L2 term would
    // leave A 1 way and nc 60.
    const CpuCaches haswell = cpu(32 * KiB, 8, 256 * KiB, 8, 8 * MiB, 16, 8);
    Blocking eight = tables::baseline_blocking::f64, sixteen_rows = tables::baseline_blocking::f64;
    eight.a_copies = 8;
    sixteen_rows.mr = 16;
    sixteen_rows.a_copies = 1;
    const Blocking b8 = matgrad::detail::derive_blocking(haswell, eight, 8);
    const Blocking b16 = matgrad::detail::derive_blocking(haswell, sixteen_rows, 8);
    check(b8.kc == 192 && b8.nc == 36 && b16.kc == 192 && b16.nc == 36,
          "Haswell, 2 rows × 8 copies as 16 rows: kc 192 nc 36, got kc " + std::to_string(b8.kc) + " nc " +
              std::to_string(b8.nc) + " and kc " + std::to_string(b16.kc) + " nc " + std::to_string(b16.nc));
    // The L3 term, where mc is not clamped (an 8 MiB 16-way L3 for one CPU, 512 KiB
    // ways, beside the Xeon's L1 and L2): the f64 B block 320 × 348 takes 2 ways, and
    // mc = ⌊13·524288/(320·8·c)⌋ = 2662 with one copy, 1331 -> 1330 with two.
    const CpuCaches small_l3 = cpu(48 * KiB, 12, 2 * MiB, 16, 8 * MiB, 16, 1);
    for (int copies : {1, 2}) {
        f64.a_copies = copies;
        b = matgrad::detail::derive_blocking(small_l3, f64, 8);
        const int64_t want_mc = copies == 1 ? 2662 : 1330;
        check(b.kc == 320 && b.nc == 348 && b.mc == want_mc,
              "8 MiB L3, baseline f64, " + std::to_string(copies) + " copies: kc 320 nc 348 mc " +
                  std::to_string(want_mc) + ", got kc " + std::to_string(b.kc) + " nc " + std::to_string(b.nc) +
                  " mc " + std::to_string(b.mc));
    }
}

// The neon tiles (blocking.hpp: f32 8×12, f64 6×8) on aarch64 CPUs, worked out by
// hand from the model and rules in blocking.cpp.
void test_known_arm_cpus() {
    const Blocking neon_f32 = matgrad::detail::neon_blocking::f32, neon_f64 = matgrad::detail::neon_blocking::f64;
    struct Arm {
        const char* name;
        CpuCaches caches;
        int64_t f32[3], f64[3];
    };
    CpuCaches a72 = cpu(32 * KiB, 2, 1 * MiB, 16, 0, 0, 1);
    a72.l3 = CacheLevel{};  // Cortex-A72 (Raspberry Pi 4): no L3
    const Arm cpus[] = {
        // Neoverse N1 (Graviton 2): 64 KiB 4-way L1d, 1 MiB 8-way L2, 32 MiB 16-way
        // L3 per 64 cores. f32: kc = 16 KiB / 48 B = 341 -> 320; nc = 3 ways · 128 KiB /
        // (320 · 4) = 307 -> 300; mc: 512 KiB share leaves 3 ways -> 72 -> the floor 1024.
        {"Neoverse N1", cpu(64 * KiB, 4, 1 * MiB, 8, 32 * MiB, 16, 64), {320, 300, 1024}, {256, 192, 1020}},
        // Cortex-A72: a 2-way L1d leaves the B panel no way (kc -> the floor, 256 for f32,
        // 192 for f64); nc = 7 ways · 64 KiB / (256 · 4) = 448 -> 444 (f64: / (192 · 8) =
        // 298 -> 296); mc keeps the table's 1024.
        {"Cortex-A72", a72, {256, 444, 1024}, {192, 296, 1024}},
    };
    for (const Arm& k : cpus)
        for (int t = 0; t < 2; ++t) {
            const Blocking tile = t == 0 ? neon_f32 : neon_f64;
            const int64_t* want = t == 0 ? k.f32 : k.f64;
            const Blocking b = matgrad::detail::derive_blocking(k.caches, tile, t == 0 ? 4 : 8);
            const std::string what = std::string(k.name) + (t == 0 ? " neon f32" : " neon f64");
            check(b.mr == tile.mr && b.nr == tile.nr, what + ": the register tile is kept");
            check(b.kc == want[0] && b.nc == want[1] && b.mc == want[2],
                  what + ": got kc " + std::to_string(b.kc) + " nc " + std::to_string(b.nc) + " mc " +
                      std::to_string(b.mc));
            check(b.kc * b.nc * (t == 0 ? 4 : 8) <= k.caches.l2.size / 2, what + ": B block in half of L2");
            check(b.kc_limit == b.kc, what + ": K slices do not grow (not measured on ARM)");
        }
}

void test_unknown_levels_keep_the_fixed_table() {
    const CpuCaches none;  // source "default", all sizes 0
    for (int t = 0; t < 4; ++t) {
        const Blocking b = matgrad::detail::derive_blocking(none, kTiles[t], kElem[t]);
        check(b.kc == kTiles[t].kc && b.nc == kTiles[t].nc && b.mc == kTiles[t].mc &&
                  b.kc_limit == kTiles[t].kc,
              std::string("no caches known: ") + kTileName[t] + " keeps the fixed table, slices not grown");
    }
    CpuCaches only_l1 = none;
    only_l1.l1d = CacheLevel{32 * KiB, 8, 64, 1};
    const Blocking b = matgrad::detail::derive_blocking(only_l1, kTiles[0], 4);
    check(b.kc == 320 && b.nc == kTiles[0].nc && b.mc == kTiles[0].mc,
          "only L1 known: kc derived, nc and mc from the table");
    CpuCaches bogus_l2 = none;  // less than a line per way (a hypervisor's report): ignored
    bogus_l2.l2 = CacheLevel{8, 16, 64, 1};
    const Blocking bogus = matgrad::detail::derive_blocking(bogus_l2, kTiles[0], 4);
    check(bogus.nc == kTiles[0].nc, "an 8-byte 16-way L2 is ignored, not divided by");
    CpuCaches tiny_l2 = none;  // a B block cannot fit: one nr panel, never zero
    tiny_l2.l2 = CacheLevel{16 * KiB, 2, 64, 1};
    check(matgrad::detail::derive_blocking(tiny_l2, kTiles[0], 4).nc == 16, "tiny L2: nc = nr");
}

void write_file(const std::string& path, const std::string& text) {
    std::ofstream(path) << text << "\n";
}

void test_sysfs_reader() {
    char tmpl[] = "/tmp/matgrad-sysfs-XXXXXX";
    const std::string root = mkdtemp(tmpl);
    struct Index { const char *level, *type, *size, *ways, *shared; };
    const Index indexes[] = {{"1", "Data", "48K", "12", "0"},
                             {"1", "Instruction", "32K", "8", "0"},
                             {"2", "Unified", "2048K", "16", "0"},
                             {"3", "Unified", "32M", "16", "0-7,16-23"}};
    int i = 0;
    for (const Index& x : indexes) {
        const std::string dir = root + "/index" + std::to_string(i++);
        mkdir(dir.c_str(), 0755);
        write_file(dir + "/level", x.level);
        write_file(dir + "/type", x.type);
        write_file(dir + "/size", x.size);
        write_file(dir + "/ways_of_associativity", x.ways);
        write_file(dir + "/coherency_line_size", "64");
        write_file(dir + "/shared_cpu_list", x.shared);
    }
    CpuCaches c;
    check(matgrad::detail::caches_from_sysfs(root, &c), "sysfs: a cache tree is read");
    check(std::string(c.source) == "sysfs", "sysfs: source");
    check(c.l1d.size == 48 * KiB && c.l1d.ways == 12, "sysfs: L1d is the data cache, not the instruction one");
    check(c.l2.size == 2 * MiB && c.l2.ways == 16, "sysfs: L2");
    check(c.l3.size == 32 * MiB && c.l3.sharing == 16, "sysfs: L3 and the CPUs sharing it");
    CpuCaches untouched;
    check(!matgrad::detail::caches_from_sysfs(root + "/missing", &untouched) &&
              untouched.l1d.size == 0 && std::string(untouched.source) == "default",
          "sysfs: a missing tree is no source and leaves the result alone");
    std::system(("rm -rf " + root).c_str());
}

// CPUID's cache-parameter leaf, decoded from registers read on real CPUs (EAX, EBX, ECX of
// subleaves 0, 1, ...; a reader past the list gives zeros, type 0).
struct Subleaves {
    std::vector<std::array<unsigned, 3>> regs;
    int reads = 0;
    matgrad::detail::SubleafReader reader() {
        return [this](unsigned index, unsigned* a, unsigned* b, unsigned* c) {
            ++reads;
            const std::array<unsigned, 3> r = index < regs.size() ? regs[index] : std::array<unsigned, 3>{};
            *a = r[0], *b = r[1], *c = r[2];
        };
    }
};

bool same_level(const CacheLevel& c, int64_t size, int ways, int line, int sharing) {
    return c.size == size && c.ways == ways && c.line == line && c.sharing == sharing;
}

void test_cpuid_cache_leaf() {
    using matgrad::detail::caches_from_cache_leaf;
    using matgrad::detail::decode_cache_leaf;
    // Leaf 4 of the Sapphire Rapids-class Xeon (family 6 model 167, a KVM guest of 2 CPUs), read
    // there on 2026-12-08; its sysfs and lscpu: L1d 48K 12-way, L1i 64K 16-way, L2 2048K 16-way,
    // L3 491520K 16-way shared by CPUs 0-1.
    Subleaves xeon{{{0x04000121, 0x02c0003f, 0x0000003f},
                    {0x04000122, 0x03c0003f, 0x0000003f},
                    {0x04000143, 0x03c0003f, 0x000007ff},
                    {0x04004163, 0x03c0003f, 0x00077fff}}};
    CpuCaches c;
    check(caches_from_cache_leaf(xeon.reader(), &c), "leaf 4 (Xeon): read");
    check(std::string(c.source) == "cpuid", "leaf 4 (Xeon): source");
    check(same_level(c.l1d, 48 * KiB, 12, 64, 1), "leaf 4 (Xeon): L1d 48 KiB 12-way, not the 64 KiB L1i");
    check(same_level(c.l2, 2 * MiB, 16, 64, 1), "leaf 4 (Xeon): L2 2 MiB 16-way");
    check(same_level(c.l3, 480 * MiB, 16, 64, 2), "leaf 4 (Xeon): L3 480 MiB 16-way, 2 CPUs sharing");
    check(xeon.reads == 5, "leaf 4 (Xeon): reads up to the first subleaf of type 0");
    // The blocks these registers give are the known Xeon's (test_known_cpus).
    const CpuCaches known = cpu(48 * KiB, 12, 2 * MiB, 16, 480 * MiB, 16, 2);
    for (int t = 0; t < 4; ++t) {
        const Blocking from_leaf = matgrad::detail::derive_blocking(c, kTiles[t], kElem[t]);
        const Blocking from_known = matgrad::detail::derive_blocking(known, kTiles[t], kElem[t]);
        check(from_leaf.kc == from_known.kc && from_leaf.nc == from_known.nc &&
                  from_leaf.mc == from_known.mc && from_leaf.kc_limit == from_known.kc_limit,
              std::string("leaf 4 (Xeon): the known Xeon's blocks, ") + kTileName[t]);
    }

    // Leaf 0x8000001D of an AMD EPYC Zen 3 (family 25 model 1, a KVM guest), from a published
    // CPUID dump: L1d 32 KiB 8-way, L2 512 KiB 8-way, L3 32 MiB 16-way shared by the guest's 2.
    Subleaves zen3{{{0x00000121, 0x01c0003f, 0x0000003f},
                    {0x00000122, 0x01c0003f, 0x0000003f},
                    {0x00000143, 0x01c0003f, 0x000003ff},
                    {0x00004163, 0x03c0003f, 0x00007fff}}};
    check(caches_from_cache_leaf(zen3.reader(), &c), "leaf 0x8000001D (Zen 3): read");
    check(same_level(c.l1d, 32 * KiB, 8, 64, 1) && same_level(c.l2, 512 * KiB, 8, 64, 1) &&
              same_level(c.l3, 32 * MiB, 16, 64, 2),
          "leaf 0x8000001D (Zen 3): L1d 32 KiB, L2 512 KiB, L3 32 MiB");
    const Blocking zen3_f32 = matgrad::detail::derive_blocking(c, kTiles[0], kElem[0]);
    check(zen3_f32.kc == 320 && zen3_f32.nc == 144 && zen3_f32.mc == 4092,
          "leaf 0x8000001D (Zen 3): avx2 f32 kc 320, nc 144 (as test_known_cpus), mc 4092 (16 MiB of L3)");

    // Fields the two dumps leave at their simplest: partitions (EBX 21:12) multiply the size;
    // a fully associative cache (EAX bit 9) has as many ways as lines.
    const auto partitioned = decode_cache_leaf(0x00000143, (7u << 22) | (1u << 12) | 63u, 1023);
    check(partitioned.level == 2 && partitioned.type == 3 && partitioned.cache.size == 1 * MiB &&
              partitioned.cache.ways == 8,
          "decode: 2 partitions of 8 ways × 1024 sets × 64 B = 1 MiB");
    const auto full = decode_cache_leaf(0x00000243, 63u, 1023);
    check(full.cache.ways == 1024 && full.cache.size == 64 * KiB, "decode: fully associative, 1024 ways");
    const auto wide = decode_cache_leaf(0x00000121 | (7u << 14), 0x02c0007f, 0x1f);
    check(wide.cache.line == 128 && wide.cache.sharing == 8 && wide.cache.size == 12 * 128 * 32,
          "decode: 128-byte lines, 8 CPUs sharing");

    // Lists that give no data cache: nothing read, *out left alone.
    CpuCaches untouched;
    Subleaves empty{{}};
    check(!caches_from_cache_leaf(empty.reader(), &untouched) && empty.reads == 1 &&
              std::string(untouched.source) == "default",
          "an empty list (type 0 first): no source");
    Subleaves only_code{{{0x04000122, 0x03c0003f, 0x0000003f}}};
    check(!caches_from_cache_leaf(only_code.reader(), &untouched) && untouched.l1d.size == 0,
          "an instruction cache alone: no source");
    // A list that never ends (a broken hypervisor) is read 16 subleaves deep, no further.
    Subleaves endless{std::vector<std::array<unsigned, 3>>(40, {0x04000121, 0x02c0003f, 0x3f})};
    check(caches_from_cache_leaf(endless.reader(), &c) && endless.reads == 16, "an endless list: 16 subleaves");
}

void test_detected_caches_are_plausible() {
    const CpuCaches& c = matgrad::cpu_caches();
    const std::string source = c.source;
    check(source == "cpuid" || source == "sysctl" || source == "sysfs" || source == "default",
          "detected: a known source");
    if (source != "default") {
        check(c.l1d.size >= 4 * KiB && c.l1d.size <= 4 * MiB, "detected: L1d size plausible");
        check(c.l2.size == 0 || c.l2.size > c.l1d.size, "detected: L2 larger than L1d");
    }
}

// The ISA dispatch reads CPUID and XCR0 itself (so that MSVC builds can too); on
// GCC and Clang it must agree with their own detection, which checks the same
// OS support. The leaf-range check: a leaf past the highest is refused.
void test_x86_features() {
    using matgrad::detail::x86_features;
    const auto f = x86_features();
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    check(f.fma == bool(__builtin_cpu_supports("fma")), "x86_features: fma as __builtin_cpu_supports");
    check(f.avx2 == bool(__builtin_cpu_supports("avx2")), "x86_features: avx2 as __builtin_cpu_supports");
    check(f.avx512f == bool(__builtin_cpu_supports("avx512f")),
          "x86_features: avx512f as __builtin_cpu_supports");
    check(!f.avx2 || f.os_avx, "x86_features: avx2 only with the OS's YMM state");
    unsigned a = 7, b = 7, c = 7, d = 7, top = 0;
    check(matgrad::detail::cpuid(0, 0, &top, &b, &c, &d) && top >= 1, "cpuid: leaf 0 gives the highest leaf");
    a = b = c = d = 7;
    check(!matgrad::detail::cpuid(top + 1, 0, &a, &b, &c, &d) && a == 7 && d == 7,
          "cpuid: a leaf past the highest is refused, registers untouched");
    check(!matgrad::detail::cpuid(0x8fffffffu, 0, &a, &b, &c, &d), "cpuid: an extended leaf past the highest is refused");
#else
    check(!f.fma && !f.avx2 && !f.avx512f && !f.os_avx, "x86_features: all false off x86");
#endif
}

void expect_parse_error(const char* text, const char* fragment) {
    try {
        matgrad::detail::parse_blocking_override(text);
        check(false, std::string("parse '") + text + "' should fail");
    } catch (const std::invalid_argument& e) {
        const std::string msg = e.what();
        check(msg.find("MATGRAD_BLOCKING") != std::string::npos &&
                  msg.find(fragment) != std::string::npos,
              std::string("parse '") + text + "': message '" + msg + "' lacks '" + fragment + "'");
    }
}

void test_override_parser() {
    const auto o = matgrad::detail::parse_blocking_override("kc=256,nc=768,mc=3072");
    check(o.kc == 256 && o.nc == 768 && o.mc == 3072, "parse: all three");
    const auto p = matgrad::detail::parse_blocking_override("mc=7");
    check(p.kc == 0 && p.nc == 0 && p.mc == 7, "parse: one of them");
    const Blocking b = matgrad::detail::with_override(kTiles[0], p);
    check(b.kc == kTiles[0].kc && b.mc == 7, "override: only what is given changes");
    Blocking grown = kTiles[0];
    grown.kc_limit = 512;
    const Blocking set = matgrad::detail::with_override(grown, matgrad::detail::parse_blocking_override("kc=300"));
    check(set.kc == 300 && set.kc_limit == 300, "override: a kc set is the slice depth, not grown past it");
    check(matgrad::detail::with_override(grown, p).kc_limit == 512, "override without kc: kc_limit kept");
    expect_parse_error("kc=0", "positive");
    expect_parse_error("kc=-5", "positive integer");
    expect_parse_error("kc=12x", "positive integer");
    expect_parse_error("kc=", "positive integer");
    expect_parse_error("kc", "not name=value");
    expect_parse_error("kc=1,", "not name=value");
    expect_parse_error("xc=1", "unknown name 'xc'");
    expect_parse_error("kc=1,kc=2", "given twice");
    expect_parse_error("kc=99999999999", "larger than");
    expect_parse_error("kc=1048577", "larger than 1048576");
    expect_parse_error("kc=0000", "positive");
    check(matgrad::detail::parse_blocking_override("kc=0000000001").kc == 1, "parse: leading zeros");
}

// ---- property test: random blockings and shapes against the reference ----------

uint64_t rng_state = 0x9E3779B97F4A7C15ull;
int64_t uniform(int64_t lo, int64_t hi) {  // inclusive
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return lo + static_cast<int64_t>(rng_state % static_cast<uint64_t>(hi - lo + 1));
}

// The fused layer y = relu?(x·w + b): the epilogue must run once, on the last K slice.
template <class T>
bool layer_matches(int64_t n, int64_t d, int64_t m, bool relu) {
    std::vector<T> x(n * d), w(d * m), b(m), got(n * m, T(NAN)), want(n * m);
    for (auto& v : x) v = T(uniform(-8, 8)) / T(8);
    for (auto& v : w) v = T(uniform(-8, 8)) / T(8);
    for (auto& v : b) v = T(uniform(-8, 8)) / T(8);
    matgrad::linear_forward(n, d, m, x.data(), d, 1, w.data(), m, 1, b.data(), relu, got.data(), m);
    matgrad::reference::gemm_strided(n, m, d, x.data(), d, 1, w.data(), m, 1, want.data(), m, false);
    for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < m; ++j) {
            T& v = want[i * m + j];
            v += b[j];
            if (relu && v < 0) v = 0;
        }
    for (size_t i = 0; i < got.size(); ++i)
        if (!(got[i] == want[i])) return false;
    return true;
}

template <class T>
bool product_matches(int64_t m, int64_t n, int64_t k, bool ta, bool tb, bool accumulate) {
    std::vector<T> a(m * k), b(k * n), got(m * n), want(m * n);
    for (auto& v : a) v = T(uniform(-8, 8)) / T(8);
    for (auto& v : b) v = T(uniform(-8, 8)) / T(8);
    for (size_t i = 0; i < got.size(); ++i) got[i] = want[i] = accumulate ? T(uniform(-8, 8)) : T(NAN);
    const int64_t lda = ta ? m : k, ldb = tb ? k : n;
    matgrad::gemm(ta, tb, m, n, k, a.data(), lda, b.data(), ldb, got.data(), n, accumulate);
    if (!accumulate)
        for (auto& v : want) v = 0;
    matgrad::reference::gemm_strided(m, n, k, a.data(), ta ? 1 : lda, ta ? lda : 1, b.data(),
                                     tb ? 1 : ldb, tb ? ldb : 1, want.data(), n, true);
    for (size_t i = 0; i < got.size(); ++i)  // values are multiples of 1/64: sums are exact
        if (!(got[i] == want[i])) return false;
    return true;
}

void test_forced_blockings() {
    const char* isas[] = {"avx512", "avx2", "neon", "baseline"};
    int cases = 0;
    for (int round = 0; round < 120; ++round) {
        const int64_t kc = uniform(1, 3) == 1 ? uniform(1, 9) : uniform(1, 400);
        const int64_t nc = uniform(1, 3) == 1 ? uniform(1, 40) : uniform(1, 900);
        const int64_t mc = uniform(1, 3) == 1 ? uniform(1, 30) : uniform(1, 700);
        matgrad::set_blocking(kc, nc, mc);
        const matgrad::BlockSizes got = matgrad::block_sizes(false);
        check(got.kc == kc && got.nc == nc && got.mc == mc, "set_blocking is what block_sizes reports");
        check(std::string(matgrad::blocking_source()) == "override", "source is override");
        for (const char* isa : isas) {
            if (!matgrad::isa_available(isa)) continue;
            matgrad::set_isa(isa);
            // Shapes on every path: small (< 64³), skinny (m <= 128), packed.
            const int64_t m = uniform(1, 4) == 1 ? uniform(129, 260) : uniform(1, 140);
            const int64_t n = uniform(1, 200), k = uniform(1, 300);
            const bool ta = uniform(0, 1), tb = uniform(0, 1), acc = uniform(0, 1);
            const int kind = static_cast<int>(uniform(0, 2));
            const bool ok = kind == 0   ? product_matches<float>(m, n, k, ta, tb, acc)
                            : kind == 1 ? product_matches<double>(m, n, k, ta, tb, acc)
                                        : layer_matches<float>(m, k, n, acc);  // acc: relu or not
            ++cases;
            if (!ok)
                check(false, std::string(isa) + " kc=" + std::to_string(kc) + " nc=" + std::to_string(nc) +
                                 " mc=" + std::to_string(mc) + " m=" + std::to_string(m) + " n=" +
                                 std::to_string(n) + " k=" + std::to_string(k) + " ta=" + std::to_string(ta) +
                                 " tb=" + std::to_string(tb));
        }
    }
    matgrad::set_blocking(0, 0, 0);
    check(std::string(matgrad::blocking_source()) != "override", "set_blocking(0, 0, 0) returns to derived");
    try {
        matgrad::set_blocking(-1, 0, 0);
        check(false, "set_blocking(-1) should throw");
    } catch (const std::invalid_argument&) {
    }
    std::printf("forced blockings: %d products checked\n", cases);
}

}  // namespace

// The skinny path packs a row-major A slice where every thread reads it for two panels or more.
void test_skinny_packs_a() {
    using matgrad::detail::skinny_packs_a;
    check(skinny_packs_a(128, 2), "lecture dL/dx (128 panels, 2 threads): packed");
    check(skinny_packs_a(4, 2), "two panels per thread: packed");
    check(!skinny_packs_a(3, 2), "a thread with one panel: in place");
    check(!skinny_packs_a(1, 1), "one panel of filters (conv dW transposed): in place");
    check(!skinny_packs_a(8, 0), "no team: in place");
}

void test_takes_small_path() {
    using matgrad::detail::takes_small_path;
    const int64_t copy = int64_t{1} << 10;  // a small copy of B
    check(takes_small_path(32, 64, 64, false, copy) && takes_small_path(32, 64, 64, true, 0),
          "below 64³ multiply-adds: small, B copied or in place");
    check(!takes_small_path(32, 64, 64, false, (int64_t{1} << 16) + 1), "below 64³ but a large copy of B: packed");
    check(takes_small_path(64, 64, 64, true, 0), "64³ with B in place: small");
    check(!takes_small_path(64, 64, 64, false, copy), "64³ with B copied: packed");
    check(takes_small_path(64, 64, 128, true, 0) && takes_small_path(64, 96, 64, true, 0),
          "64 rows, B in place, under 96·96·64: small");
    check(!takes_small_path(64, 96, 96, true, 0), "96·96·64 multiply-adds: packed");
    check(!takes_small_path(65, 64, 64, true, 0) && !takes_small_path(128, 64, 64, true, 0),
          "more than 64 rows from 64³ on: packed");
    check(takes_small_path(128, 64, 31, true, 0), "more rows, but below 64³: small");
    check(takes_small_path(32, 128, 128, true, 0), "32 rows from 64³ on: small");
    check(!takes_small_path(1, 512, 784, true, 0), "one row (batch 1, 1×784·784×512): the row path's two threads");
    check(!takes_small_path(8, 256, 256, true, 0) && !takes_small_path(31, 128, 128, true, 0),
          "fewer than 32 rows from 64³ on: not small (skinny or packed)");
}

void test_transposed_rows_rules() {
    using matgrad::detail::transposed_rows_fill;
    using matgrad::detail::transposed_rows_budget;
    using matgrad::detail::transposed_rows_span;
    using matgrad::detail::transposed_rows_chunk;
    // f32, panels of 16 (AVX2) and 32 (AVX-512) of A's rows.
    check(transposed_rows_fill(8, 16, 4) && !transposed_rows_fill(7, 16, 4),
          "f32, one panel: taken from half full");
    check(transposed_rows_fill(16, 32, 4) && !transposed_rows_fill(15, 32, 4),
          "f32, one AVX-512 panel: from 16 rows");
    check(transposed_rows_fill(24, 16, 4) && !transposed_rows_fill(23, 16, 4) &&
              !transposed_rows_fill(17, 16, 4) && transposed_rows_fill(64, 16, 4),
          "f32, several panels: from three quarters of their rows");
    check(transposed_rows_fill(2, 8, 8) && transposed_rows_fill(2, 16, 8) &&
              transposed_rows_fill(9, 8, 8) && transposed_rows_fill(17, 16, 8),
          "f64: any fill");
    const int64_t l2 = int64_t{2} << 20;  // a Sapphire Rapids-class core's
    check(transposed_rows_budget(l2) == (int64_t{1} << 20) &&
              transposed_rows_budget(int64_t{512} << 10) == (int64_t{256} << 10),
          "budget: half the L2");
    check(transposed_rows_budget(0) == (int64_t{4} << 20) &&
              transposed_rows_budget(int64_t{16} << 20) == (int64_t{4} << 20),
          "budget: 4 MiB where the L2 is unknown, and at most that");
    const int64_t mib = int64_t{1} << 20;
    // The lecture's dL/dx, f32, K = 4096 in 13 slices of 316: 1 MiB of Aᵀ, one span.
    check(transposed_rows_span(64, 16, 4, 4096, 316, mib) == 4096 &&
              transposed_rows_span(64, 32, 4, 4096, 256, mib) == 4096,
          "lecture dL/dx: all of K in one span (AVX2, AVX-512)");
    // 256 bytes of Aᵀ a step: 12 slices of 316 in 1 MiB.
    check(transposed_rows_span(64, 16, 4, 8192, 316, mib) == 12 * 316,
          "64 rows × 8192: spans of 12 slices");
    check(transposed_rows_span(33, 16, 8, 4096, 187, mib) == 14 * 187,
          "f64, three AVX-512 panels (48 rows' worth): 384 bytes a step, 14 slices");
    check(transposed_rows_span(64, 16, 4, 4096, 316, 1) == 316,
          "a budget below one slice: one slice");
    check(transposed_rows_span(64, 16, 4, 200, 316, 1) == 200, "K shorter than a slice: all of it");
    // On a 512 KiB L2 (Zen 3) the lecture's dL/dx: spans of 3 slices of 316 (948) in
    // 256 KiB; on a 1 MiB L2 (Zen 4, Zen 5, Skylake-X): 6 slices (1896).
    const int64_t zen3_budget = transposed_rows_budget(int64_t{512} << 10);
    check(transposed_rows_span(64, 16, 4, 4096, 316, zen3_budget) == 3 * 316 &&
              transposed_rows_span(64, 16, 4, 4096, 316, transposed_rows_budget(mib)) == 6 * 316,
          "lecture dL/dx on a 512 KiB L2: spans of 948; on a 1 MiB L2: of 1896");
    // The sums kept between spans, 64 KiB: the lecture's f32 on AVX2, 4 panels of 6×16
    // (384 bytes each) a group: 42 groups; f64 on AVX-512, 4 panels of 6×16 doubles: 21.
    const int64_t sums = matgrad::detail::kTransposedRowsSumsBytes;
    check(sums == (int64_t{64} << 10), "sums between spans: 64 KiB a thread");
    check(transposed_rows_chunk(4, 384, sums) == 42 && transposed_rows_chunk(4, 768, sums) == 21,
          "chunks of groups whose sums fit");
    check(transposed_rows_chunk(1, 384, 1) == 1 && transposed_rows_chunk(200, 768, sums) == 1,
          "at least one group a chunk");
}

void test_streamed_block_bytes() {
    using matgrad::detail::streamed_block_bytes;
    const int64_t kib = 1024;
    // 48 KiB L1d (Sapphire Rapids-class Xeon, Zen 5): 36 KiB for the block of C
    // and a group's 6 rows of B, in whole 128 bytes.
    check(streamed_block_bytes(64, 48 * kib) == 512, "64 rows, 48 KiB L1d: 512 bytes (35 KiB)");
    check(streamed_block_bytes(32, 48 * kib) == 896 && streamed_block_bytes(16, 48 * kib) == 1664 &&
              streamed_block_bytes(8, 48 * kib) == 2560,
          "32, 16, 8 rows, 48 KiB L1d: 896, 1664, 2560 bytes");
    check(streamed_block_bytes(2, 48 * kib) == 4096, "2 rows: at most 4 KiB");
    // 32 KiB L1d (Zen 3, most Intel client cores), and unknown (counted as 32 KiB).
    check(streamed_block_bytes(64, 32 * kib) == 256 && streamed_block_bytes(64, 0) == 256,
          "64 rows, 32 KiB or unknown L1d: 256 bytes");
    check(streamed_block_bytes(16, 32 * kib) == 1024, "16 rows, 32 KiB L1d: 1 KiB");
    check(streamed_block_bytes(1000, 48 * kib) == 256, "more rows than fit: at least 256 bytes");
    // Which rows take the path: AVX2's limits (f32 64 at any width, f64 64 on blocks of
    // 512 bytes or more), on a 48 KiB and a 32 KiB L1d.
    using matgrad::detail::takes_streamed_b;
    check(takes_streamed_b(64, 64, 64, 32 * kib) && takes_streamed_b(64, 64, 0, 48 * kib),
          "64 rows: f32 at any width, f64 with 512-byte blocks (48 KiB L1d)");
    check(takes_streamed_b(42, 64, 0, 32 * kib) && !takes_streamed_b(43, 64, 0, 32 * kib) &&
              !takes_streamed_b(64, 64, 0, 32 * kib) && !takes_streamed_b(64, 64, 0, 0),
          "f64 on a 32 KiB or unknown L1d: to 42 rows (512-byte blocks), not past");
    check(!takes_streamed_b(1, 64, 64, 48 * kib) && !takes_streamed_b(65, 64, 64, 48 * kib) &&
              !takes_streamed_b(8, 0, 0, 48 * kib),
          "never one row, past the limit, or on a set without the path");
    for (int64_t rows : {2, 3, 7, 17, 40, 63, 64})
        for (int64_t l1 : {int64_t{0}, 16 * kib, 32 * kib, 48 * kib, 64 * kib, kib * kib}) {
            const int64_t w = streamed_block_bytes(rows, l1);
            check(w % matgrad::detail::kStreamedBlockQuantum == 0 && w >= 256 && w <= 4096,
                  "a whole number of quanta, 256 to 4096 bytes");
        }
}

void test_skinny_stream_step_mask() {
    using matgrad::detail::skinny_stream_step_mask;
    // The lecture's dL/dx on AVX2: 11 tiles of 316 steps, 16 runs of 20 lines.
    check(skinny_stream_step_mask(11, 316, 320) == 3, "enough steps: a line every 4");
    check(skinny_stream_step_mask(4, 316, 320) == 1, "4 tiles: 316 slots at 4, 632 at 2");
    check(skinny_stream_step_mask(2, 316, 320) == 0, "2 tiles: a line every step");
    check(skinny_stream_step_mask(1, 7, 320) == 0, "too few steps even at one a step: 0");
    check(skinny_stream_step_mask(5, 64, 0) == 3, "no stream: the mask is never used");
    check(skinny_stream_step_mask(3, 8, 6) == 3 && skinny_stream_step_mask(3, 8, 7) == 1,
          "3 tiles of 8 steps: 6 slots at 4, 12 at 2");
}

void test_equal_k_slices() {
    using matgrad::detail::equal_k_slices;
    // kc_limit == kc: as many slices as kc needs, of equal depth.
    check(equal_k_slices(0, 256, 256) == 0 && equal_k_slices(100, 256, 256) == 100, "K within one slice: K");
    check(equal_k_slices(256, 256, 256) == 256 && equal_k_slices(512, 256, 256) == 256, "whole slices: kc");
    check(equal_k_slices(784, 256, 256) == 196, "784 = 4 × 196, not 3 × 256 + 16");
    check(equal_k_slices(513, 256, 256) == 171, "513 = 3 × 171, not 2 × 256 + 1");
    check(equal_k_slices(257, 256, 256) == 129, "257: 129 + 128");
    check(equal_k_slices(2048, 192, 192) == 187, "2048 = 10 × 187 + 178");
    check(equal_k_slices(1024, 192, 0) == 171, "kc_limit 0 (the tables): kc");
    // kc_limit above kc (AVX2 f32 on a 48 KiB 12-way L1 has kc 320, kc_limit 480): K / kc
    // rounded to the nearest whole, within the limit.
    check(equal_k_slices(1024, 320, 512) == 342, "1024 / 320 = 3.2: 3 slices of 342, not 4 of 256");
    check(equal_k_slices(784, 320, 512) == 392, "784 / 320 = 2.45: 2 slices of 392");
    check(equal_k_slices(2048, 320, 512) == 342, "2048 / 320 = 6.4: 6 slices");
    check(equal_k_slices(400, 320, 512) == 400, "400 / 320 = 1.25: one slice");
    check(equal_k_slices(513, 320, 512) == 257, "513 / 320 = 1.6: 2 slices");
    check(equal_k_slices(784, 320, 384) == 262, "784 with the limit 384: 2 × 392 would pass it, 3 slices");
    check(equal_k_slices(1024, 320, 480) == 342 && equal_k_slices(700, 320, 100) == 234,
          "the derived limit 480; a limit below kc counts as kc");
    check(equal_k_slices(700, 320, 330) == 234, "700: 2 × 350 would pass the limit 330: 3");
    for (int64_t kc : {1, 7, 128, 192, 256, 320})
        for (int64_t limit : {kc, kc + 1, kc + kc / 3, 3 * kc / 2, 2 * kc, 4 * kc})
            for (int64_t k = 1; k < 2000; ++k) {
                // Equal depths (differing by less than one), never past the limit, and as
                // few slices as the nearest whole count of kc and the limit allow (for a tiny
                // kc, rounding the depth up may save one more).
                const int64_t d = equal_k_slices(k, kc, limit);
                const int64_t slices = (k + d - 1) / d;
                const int64_t nearest = std::max<int64_t>(1, (k + kc / 2) / kc);
                const int64_t fewest = std::max(nearest, (k + std::max(kc, limit) - 1) / std::max(kc, limit));
                const bool ok = k <= kc ? d == k
                                        : d == (k + slices - 1) / slices && d <= std::max(kc, limit) &&
                                              (kc >= 128 ? slices == fewest : slices <= fewest) &&
                                              d <= kc + kc / 2 + 1;
                if (!ok) {
                    check(false, "equal_k_slices(" + std::to_string(k) + ", " + std::to_string(kc) + ", " +
                                     std::to_string(limit) + ") = " + std::to_string(d));
                    return;
                }
            }
}

int main() {
    test_equal_k_slices();
    test_skinny_packs_a();
    test_takes_small_path();
    test_transposed_rows_rules();
    test_streamed_block_bytes();
    test_skinny_stream_step_mask();
    test_known_cpus();
    test_known_arm_cpus();
    test_packed_a_copies_in_the_model();
    test_unknown_levels_keep_the_fixed_table();
    test_sysfs_reader();
    test_cpuid_cache_leaf();
    test_detected_caches_are_plausible();
    test_x86_features();
    test_override_parser();
    test_forced_blockings();
    if (failures) {
        std::printf("%d failures\n", failures);
        return 1;
    }
    std::printf("all blocking tests passed\n");
    return 0;
}
