// Cache sizes at run time. CPUID leaf 4 (Intel) and 0x8000001D (AMD, when
// TOPOEXT is set) share one layout (decode_cache_leaf); sysctl on macOS and sysfs
// are the fallbacks for other CPUs and for hypervisors that hide the leaves. No AVX
// here: this unit runs on every CPU.
#include "cpu_info.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#if defined(__APPLE__)
#include <sys/sysctl.h>
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define MATGRAD_HAVE_CPUID 1
#elif defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
#include <immintrin.h>  // _xgetbv
#include <intrin.h>     // __cpuidex
#define MATGRAD_HAVE_CPUID 1
#endif

namespace matgrad::detail {
namespace {

// Level 1 data (type 1) or unified (type 3) caches only; instruction caches are skipped.
void keep_level(CpuCaches* caches, int level, int type, const CacheLevel& c) {
    if (type == 2) return;  // instruction cache
    if (level == 1 && type == 1) caches->l1d = c;
    if (level == 2) caches->l2 = c;
    if (level == 3) caches->l3 = c;
}

bool has_l1_or_l2(const CpuCaches& c) { return c.l1d.size > 0 || c.l2.size > 0; }

// "0-1", "0,2,4-7" -> how many CPUs the list names.
int count_cpu_list(const char* list) {
    int count = 0;
    const char* p = list;
    while (*p) {
        char* end = nullptr;
        const long first = std::strtol(p, &end, 10);
        if (end == p) break;
        long last = first;
        p = end;
        if (*p == '-') {
            last = std::strtol(p + 1, &end, 10);
            p = end;
        }
        if (last >= first) count += static_cast<int>(last - first + 1);
        if (*p == ',') ++p;
        else break;
    }
    return count > 0 ? count : 1;
}

bool read_text(const std::string& path, char* buf, size_t cap) {
    FILE* f = std::fopen(path.c_str(), "r");
    if (!f) return false;
    size_t len = std::fread(buf, 1, cap - 1, f);
    std::fclose(f);
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' ')) --len;
    buf[len] = '\0';
    return len > 0;
}

long read_long(const std::string& path, long fallback) {
    char buf[64];
    if (!read_text(path, buf, sizeof buf)) return fallback;
    char* end = nullptr;
    const long v = std::strtol(buf, &end, 10);
    return end == buf ? fallback : v;
}

// "48K", "2048K", "32M", "1024" (bytes) -> bytes; 0 when unreadable.
int64_t parse_size(const char* text) {
    char* end = nullptr;
    const long long v = std::strtoll(text, &end, 10);
    if (end == text || v <= 0) return 0;
    switch (*end) {
        case 'K': case 'k': return v << 10;
        case 'M': case 'm': return v << 20;
        case 'G': case 'g': return v << 30;
        default: return v;
    }
}

#if defined(MATGRAD_HAVE_CPUID)
// CPUID(leaf, subleaf), with no check of the CPU's highest leaf (cpuid() checks).
void cpuid_raw(unsigned leaf, unsigned subleaf, unsigned* eax, unsigned* ebx, unsigned* ecx,
               unsigned* edx) {
#if defined(_MSC_VER) && !defined(__clang__)
    int r[4];
    __cpuidex(r, static_cast<int>(leaf), static_cast<int>(subleaf));
    *eax = unsigned(r[0]), *ebx = unsigned(r[1]), *ecx = unsigned(r[2]), *edx = unsigned(r[3]);
#else
    __cpuid_count(leaf, subleaf, *eax, *ebx, *ecx, *edx);
#endif
}

// The register state the OS saves on a context switch (XCR0); read only when
// CPUID says OSXSAVE.
unsigned long long xcr0() {
#if defined(_MSC_VER) && !defined(__clang__)
    return _xgetbv(0);
#else
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (static_cast<unsigned long long>(hi) << 32) | lo;
#endif
}
#endif

}  // namespace

bool cpuid(unsigned leaf, unsigned subleaf, unsigned* eax, unsigned* ebx, unsigned* ecx, unsigned* edx) {
#if defined(MATGRAD_HAVE_CPUID)
    unsigned top, b, c, d;
    cpuid_raw(leaf & 0x80000000u, 0, &top, &b, &c, &d);  // highest basic or extended leaf
    if (leaf > top) return false;
    cpuid_raw(leaf, subleaf, eax, ebx, ecx, edx);
    return true;
#else
    (void)leaf, (void)subleaf, (void)eax, (void)ebx, (void)ecx, (void)edx;
    return false;
#endif
}

X86Features x86_features() {
    X86Features f;
#if defined(MATGRAD_HAVE_CPUID)
    unsigned eax, ebx, ecx, edx;
    if (!cpuid(1, 0, &eax, &ebx, &ecx, &edx)) return f;
    f.fma = ecx & (1u << 12);
    const bool osxsave = ecx & (1u << 27), avx = ecx & (1u << 28);
    const unsigned long long state = osxsave ? xcr0() : 0;
    // XMM and YMM state (bits 1, 2); AVX-512 adds opmask, ZMM0-15 upper halves, ZMM16-31 (5-7).
    const bool os_ymm = (state & 0x6) == 0x6, os_zmm = (state & 0xe6) == 0xe6;
    f.os_avx = avx && os_ymm;
    if (cpuid(7, 0, &eax, &ebx, &ecx, &edx)) {
        f.avx2 = f.os_avx && (ebx & (1u << 5));
        f.avx512f = f.os_avx && os_zmm && (ebx & (1u << 16));
    }
#endif
    return f;
}

CacheLeafEntry decode_cache_leaf(unsigned eax, unsigned ebx, unsigned ecx) {
    CacheLeafEntry e;
    e.type = static_cast<int>(eax & 0x1f);
    e.level = static_cast<int>((eax >> 5) & 0x7);
    CacheLevel& c = e.cache;
    c.ways = static_cast<int>((ebx >> 22) + 1);
    const int64_t partitions = ((ebx >> 12) & 0x3ff) + 1;
    c.line = static_cast<int>((ebx & 0xfff) + 1);
    const int64_t sets = int64_t(ecx) + 1;
    c.size = c.ways * partitions * c.line * sets;
    c.sharing = static_cast<int>(((eax >> 14) & 0xfff) + 1);
    if (eax & (1u << 9)) c.ways = static_cast<int>(sets * c.ways);  // fully associative
    return e;
}

bool caches_from_cache_leaf(const SubleafReader& read_subleaf, CpuCaches* out) {
    CpuCaches caches;
    for (unsigned index = 0; index < 16; ++index) {
        unsigned eax = 0, ebx = 0, ecx = 0;
        read_subleaf(index, &eax, &ebx, &ecx);
        const CacheLeafEntry e = decode_cache_leaf(eax, ebx, ecx);
        if (e.type == 0) break;  // no more caches
        keep_level(&caches, e.level, e.type, e.cache);
    }
    if (!has_l1_or_l2(caches)) return false;
    caches.source = "cpuid";
    *out = caches;
    return true;
}

bool caches_from_cpuid(CpuCaches* out) {
#if defined(MATGRAD_HAVE_CPUID)
    unsigned eax, ebx, ecx, edx;
    if (!cpuid(0, 0, &eax, &ebx, &ecx, &edx)) return false;
    const unsigned max_leaf = eax;
    const bool intel = ebx == 0x756e6547 && edx == 0x49656e69 && ecx == 0x6c65746e;  // GenuineIntel
    const bool amd = (ebx == 0x68747541 && edx == 0x69746e65 && ecx == 0x444d4163) ||  // AuthenticAMD
                     (ebx == 0x6f677948 && edx == 0x6e65476e && ecx == 0x656e6975);    // HygonGenuine
    unsigned leaf = 0;
    if (intel && max_leaf >= 4) leaf = 4;
    if (amd) {
        // 0x8000001D exists when 0x80000001 ECX bit 22 (TOPOEXT) is set.
        if (cpuid(0x80000001, 0, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 22))) leaf = 0x8000001D;
    }
    if (leaf == 0) return false;
    return caches_from_cache_leaf(
        [leaf](unsigned index, unsigned* a, unsigned* b, unsigned* c) {
            unsigned d;
            cpuid_raw(leaf, index, a, b, c, &d);
        },
        out);
#else
    (void)out;
    return false;
#endif
}

bool caches_from_sysfs(const std::string& root, CpuCaches* out) {
    CpuCaches caches;
    for (int index = 0; index < 16; ++index) {
        const std::string dir = root + "/index" + std::to_string(index) + "/";
        char type_text[32], size_text[32], shared[256];
        if (!read_text(dir + "type", type_text, sizeof type_text)) break;
        const long level = read_long(dir + "level", 0);
        const int type = std::strcmp(type_text, "Data") == 0          ? 1
                         : std::strcmp(type_text, "Instruction") == 0 ? 2
                         : std::strcmp(type_text, "Unified") == 0     ? 3
                                                                      : 0;
        if (type == 0 || !read_text(dir + "size", size_text, sizeof size_text)) continue;
        CacheLevel c;
        c.size = parse_size(size_text);
        c.ways = static_cast<int>(read_long(dir + "ways_of_associativity", 0));
        c.line = static_cast<int>(read_long(dir + "coherency_line_size", 64));
        if (c.line <= 0) c.line = 64;
        c.sharing = read_text(dir + "shared_cpu_list", shared, sizeof shared) ? count_cpu_list(shared) : 1;
        if (c.size > 0) keep_level(&caches, static_cast<int>(level), type, c);
    }
    if (!has_l1_or_l2(caches)) return false;
    caches.source = "sysfs";
    *out = caches;
    return true;
}

bool caches_from_sysctl(CpuCaches* out) {
#if defined(__APPLE__)
    // The values are 32- or 64-bit integers depending on the name and the OS release.
    auto read = [](const char* name) -> int64_t {
        unsigned char buf[8] = {};
        size_t len = sizeof buf;
        if (sysctlbyname(name, buf, &len, nullptr, 0) != 0) return 0;
        if (len == 4) {
            int32_t v;
            std::memcpy(&v, buf, 4);
            return v;
        }
        if (len == 8) {
            int64_t v;
            std::memcpy(&v, buf, 8);
            return v;
        }
        return 0;
    };
    auto first = [&](const char* a, const char* b) {
        const int64_t v = read(a);
        return v > 0 ? v : read(b);
    };
    CpuCaches caches;
    caches.l1d.size = first("hw.perflevel0.l1dcachesize", "hw.l1dcachesize");
    caches.l2.size = first("hw.perflevel0.l2cachesize", "hw.l2cachesize");
    caches.l3.size = read("hw.l3cachesize");
    const int64_t line = read("hw.cachelinesize");
    const int64_t per_l2 = read("hw.perflevel0.cpusperl2");
    for (CacheLevel* c : {&caches.l1d, &caches.l2, &caches.l3}) {
        c->ways = 0;  // not reported
        c->line = line > 0 ? static_cast<int>(line) : 64;
        c->sharing = 1;
    }
    if (per_l2 > 0) caches.l2.sharing = static_cast<int>(per_l2);
    if (!has_l1_or_l2(caches)) return false;
    caches.source = "sysctl";
    *out = caches;
    return true;
#else
    (void)out;
    return false;
#endif
}

CpuCaches detect_caches() {
    CpuCaches caches;
    if (caches_from_cpuid(&caches)) return caches;
    if (caches_from_sysctl(&caches)) return caches;
    if (caches_from_sysfs("/sys/devices/system/cpu/cpu0/cache", &caches)) return caches;
    return CpuCaches{};  // source "default": every size 0
}

}  // namespace matgrad::detail
