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

}  // namespace matgrad::detail
