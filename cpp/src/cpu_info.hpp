// The machine's data caches, as the hardware reports them: facts, no policy
// (blocking.cpp turns them into block sizes).
#pragma once

#include <functional>
#include <string>

#include "matgrad/matgrad.hpp"  // CacheLevel, CpuCaches

namespace matgrad::detail {

using matgrad::CacheLevel;
using matgrad::CpuCaches;

// What this machine reports, trying CPUID, then sysctl (macOS), then sysfs, then the
// defaults. A level no source gives stays 0 (the blocking derivation then uses its
// fallback).
CpuCaches detect_caches();

// Each source alone, for tests. Each returns false, leaving *out alone, when the
// source gives no L1d and no L2.
bool caches_from_cpuid(CpuCaches* out);

// One subleaf of CPUID's cache-parameter leaf (4 on Intel, 0x8000001D on AMD: the two
// share a layout), decoded from its EAX, EBX and ECX: the cache's level, its type (0:
// no cache, the end of the list; 1 data, 2 instruction, 3 unified) and its geometry.
struct CacheLeafEntry {
    int level = 0;
    int type = 0;
    CacheLevel cache;
};
CacheLeafEntry decode_cache_leaf(unsigned eax, unsigned ebx, unsigned ecx);
// The L1d, L2 and L3 a cache-parameter leaf lists, read subleaf by subleaf through
// read_subleaf(index, &eax, &ebx, &ecx) up to the first of type 0 (16 at most): what
// caches_from_cpuid does with the CPU's own leaf, apart from the CPU, so that tests can
// feed it other CPUs' registers.
using SubleafReader = std::function<void(unsigned index, unsigned* eax, unsigned* ebx, unsigned* ecx)>;
bool caches_from_cache_leaf(const SubleafReader& read_subleaf, CpuCaches* out);
// root: a directory laid out as /sys/devices/system/cpu/cpu0/cache (index*/level, type,
// size, ways_of_associativity, coherency_line_size, shared_cpu_list).
bool caches_from_sysfs(const std::string& root, CpuCaches* out);
// macOS: sysctl hw.perflevel0.l1dcachesize / l2cachesize (the performance cores;
// the flat hw.l2cachesize is the efficiency cores' on Apple M1), falling back to
// hw.l1dcachesize / hw.l2cachesize. macOS reports no associativity, so these levels
// are not usable by the model and the ISA's fixed blocks apply. false elsewhere.
bool caches_from_sysctl(CpuCaches* out);

// CPUID(leaf, subleaf) into the four registers; false, leaving them alone, on a CPU
// without CPUID or when the leaf is above its highest (basic or extended) leaf.
bool cpuid(unsigned leaf, unsigned subleaf, unsigned* eax, unsigned* ebx, unsigned* ecx, unsigned* edx);

// What the x86 kernel sets need, from CPUID and XCR0: each ISA only when the OS
// also saves its registers (os_avx: YMM state; avx512f: ZMM and opmask state too).
// All false elsewhere. Read with CPUID rather than GCC's __builtin_cpu_supports so
// that MSVC builds dispatch the same way.
struct X86Features {
    bool os_avx = false;
    bool fma = false;
    bool avx2 = false;
    bool avx512f = false;
};
X86Features x86_features();

}  // namespace matgrad::detail
