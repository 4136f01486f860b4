// Picks the kernel table once, from CPUID or the MATGRAD_ISA override, and
// gives it the cache blocks derived from this machine's caches (blocking.cpp),
// or those MATGRAD_BLOCKING / set_blocking ask for.
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <string>

#include "cpu_info.hpp"
#include "kernels/kernel_table.hpp"
#include "matgrad/matgrad.hpp"

namespace matgrad {
namespace detail {
namespace {

bool cpu_has(const char* name) {
#if defined(MATGRAD_HAVE_X86_ISAS)
    static const X86Features x86 = x86_features();  // includes the OS's saving of the registers
    if (std::strcmp(name, "avx512") == 0) return x86.avx512f && x86.fma;
    if (std::strcmp(name, "avx2") == 0) return x86.avx2 && x86.fma;
#endif
#if defined(MATGRAD_HAVE_NEON_KERNELS)
    if (std::strcmp(name, "neon") == 0) return true;  // part of the architecture
#endif
    return std::strcmp(name, "baseline") == 0;
}

const KernelTable* table_named(const char* name) {
#if defined(MATGRAD_HAVE_X86_ISAS)
    if (std::strcmp(name, "avx512") == 0) return &avx512_kernels();
    if (std::strcmp(name, "avx2") == 0) return &avx2_kernels();
#endif
#if defined(MATGRAD_HAVE_NEON_KERNELS)
    if (std::strcmp(name, "neon") == 0) return &neon_kernels();
#endif
    if (std::strcmp(name, "baseline") == 0) return &baseline_kernels();
    return nullptr;
}

const KernelTable* checked_table(const char* name) {
    const bool known = std::strcmp(name, "avx512") == 0 || std::strcmp(name, "avx2") == 0 ||
                       std::strcmp(name, "baseline") == 0 || std::strcmp(name, "neon") == 0;
    if (!known)
        throw std::invalid_argument(std::string("unknown instruction set '") + name +
                                    "'; expected one of: avx512, avx2, baseline, neon");
    if (!cpu_has(name) || !table_named(name))
        throw std::runtime_error(std::string("instruction set '") + name +
                                 "' is not supported by this CPU or build");
    return table_named(name);
}

const KernelTable* best_table() {
    for (const char* name : {"avx512", "avx2", "neon"})
        if (cpu_has(name) && table_named(name)) return table_named(name);
    return &baseline_kernels();
}

// The ISA's own table with kc, nc and mc replaced: derived from the caches,
// then overridden where asked. Tables handed out are never freed or changed (a
// GEMM running on another thread may still read one); equal ones are reused,
// so the store grows only with distinct (ISA, override) pairs.
struct Tuning {
    const KernelTable* isa_table;
    BlockingOverride override;
};

bool same_blocking(const Blocking& a, const Blocking& b) {
    return a.mr == b.mr && a.nr == b.nr && a.kc == b.kc && a.nc == b.nc && a.mc == b.mc &&
           a.kc_limit == b.kc_limit && a.a_copies == b.a_copies;
}

bool has_override(const BlockingOverride& o) { return o.kc > 0 || o.nc > 0 || o.mc > 0; }

std::mutex& tuning_mutex() {
    static std::mutex m;
    return m;
}

const KernelTable* tuned_table(const Tuning& t) {
    const CpuCaches& caches = cpu_caches();
    KernelTable table = *t.isa_table;
    table.f32.blocking = with_override(derive_blocking(caches, t.isa_table->f32.blocking, 4), t.override);
    table.f64.blocking = with_override(derive_blocking(caches, t.isa_table->f64.blocking, 8), t.override);
    // Guarded by tuning_mutex(); never destroyed, not even at exit, where a GEMM
    // still running on another thread may read the table it was handed.
    static std::deque<KernelTable>& store = *new std::deque<KernelTable>;
    for (const KernelTable& kept : store)
        if (kept.name == table.name && same_blocking(kept.f32.blocking, table.f32.blocking) &&
            same_blocking(kept.f64.blocking, table.f64.blocking))
            return &kept;
    store.push_back(table);
    return &store.back();
}

Tuning& current_tuning() {  // guarded by tuning_mutex()
    static Tuning tuning{nullptr, {}};
    return tuning;
}

const KernelTable* initial_table() {
    const char* forced = std::getenv("MATGRAD_ISA");
    const char* blocking = std::getenv("MATGRAD_BLOCKING");
    Tuning t{forced && *forced ? checked_table(forced) : best_table(), {}};
    if (blocking && *blocking) t.override = parse_blocking_override(blocking);
    std::lock_guard<std::mutex> lock(tuning_mutex());
    current_tuning() = t;
    return tuned_table(t);
}

std::atomic<const KernelTable*>& active() {
    // Initialised on first use; a bad MATGRAD_ISA or MATGRAD_BLOCKING throws
    // here, at import.
    static std::atomic<const KernelTable*> table{initial_table()};
    return table;
}

// Applies a change to the tuning and makes the result the active table.
template <class Change>
void retune(const Change& change) {
    active();  // the environment is read first, so a later change is not undone by it
    std::lock_guard<std::mutex> lock(tuning_mutex());
    Tuning t = current_tuning();
    change(t);
    const KernelTable* table = tuned_table(t);
    current_tuning() = t;
    active().store(table, std::memory_order_release);
}

}  // namespace

const KernelTable& active_kernels() { return *active().load(std::memory_order_acquire); }

const KernelTable& kernels_named(const char* name) { return *checked_table(name); }

}  // namespace detail

const char* isa() { return detail::active_kernels().name; }

void set_isa(const char* name) {
    const detail::KernelTable* table = detail::checked_table(name);
    detail::retune([&](detail::Tuning& t) { t.isa_table = table; });
}

const CpuCaches& cpu_caches() {
    static const CpuCaches caches = detail::detect_caches();
    return caches;
}

BlockSizes block_sizes(bool double_precision) {
    const detail::KernelTable& t = detail::active_kernels();
    const detail::Blocking& b = double_precision ? t.f64.blocking : t.f32.blocking;
    return BlockSizes{b.mr, b.nr, b.kc, b.nc, b.mc, b.kc_limit > b.kc ? b.kc_limit : b.kc};
}

const char* blocking_source() {
    detail::active();
    std::lock_guard<std::mutex> lock(detail::tuning_mutex());
    if (detail::has_override(detail::current_tuning().override)) return "override";
    const CpuCaches& c = cpu_caches();
    return detail::usable_level(c.l1d) || detail::usable_level(c.l2) ? "derived" : "fallback";
}

void set_blocking(int64_t kc, int64_t nc, int64_t mc) {
    for (int64_t v : {kc, nc, mc})
        if (v < 0 || v > detail::kMaxBlock)
            throw std::invalid_argument("set_blocking: kc, nc and mc must be in [0, " +
                                        std::to_string(detail::kMaxBlock) +
                                        "] (0 keeps the derived value), got " + std::to_string(v));
    detail::retune([&](detail::Tuning& t) { t.override = detail::BlockingOverride{kc, nc, mc}; });
}

bool isa_available(const char* name) {
    return detail::cpu_has(name) && detail::table_named(name) != nullptr;
}

}  // namespace matgrad
