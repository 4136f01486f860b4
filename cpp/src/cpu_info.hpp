// The machine's data caches, as the hardware reports them: facts, no policy
// (blocking.cpp turns them into block sizes).
#pragma once

#include <string>

#include "matgrad/matgrad.hpp"  // CacheLevel, CpuCaches

namespace matgrad::detail {

using matgrad::CacheLevel;
using matgrad::CpuCaches;

// What this machine reports, trying CPUID, then sysfs, then the defaults. A level
// neither source gives stays 0 (the blocking derivation then uses its fallback).
CpuCaches detect_caches();

// Each source alone, for tests. Both return false, leaving *out alone, when the
// source gives no L1d and no L2.
bool caches_from_cpuid(CpuCaches* out);
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
