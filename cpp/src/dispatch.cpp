// Picks the kernel table once, from CPUID or the MATGRAD_ISA override.
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include "kernels/kernel_table.hpp"
#include "matgrad/matgrad.hpp"

namespace matgrad {
namespace detail {
namespace {

bool cpu_has(const char* name) {
#if defined(MATGRAD_HAVE_X86_ISAS)
    __builtin_cpu_init();
    // __builtin_cpu_supports also checks that the OS saves the wide registers.
    if (std::strcmp(name, "avx512") == 0)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
    if (std::strcmp(name, "avx2") == 0)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return std::strcmp(name, "baseline") == 0;
}

const KernelTable* table_named(const char* name) {
#if defined(MATGRAD_HAVE_X86_ISAS)
    if (std::strcmp(name, "avx512") == 0) return &avx512_kernels();
    if (std::strcmp(name, "avx2") == 0) return &avx2_kernels();
#endif
    if (std::strcmp(name, "baseline") == 0) return &baseline_kernels();
    return nullptr;
}

const KernelTable* checked_table(const char* name) {
    const bool known = std::strcmp(name, "avx512") == 0 || std::strcmp(name, "avx2") == 0 ||
                       std::strcmp(name, "baseline") == 0;
    if (!known)
        throw std::invalid_argument(std::string("unknown instruction set '") + name +
                                    "'; expected one of: avx512, avx2, baseline");
    if (!cpu_has(name) || !table_named(name))
        throw std::runtime_error(std::string("instruction set '") + name +
                                 "' is not supported by this CPU or build");
    return table_named(name);
}

const KernelTable* best_table() {
    for (const char* name : {"avx512", "avx2"})
        if (cpu_has(name) && table_named(name)) return table_named(name);
    return &baseline_kernels();
}

const KernelTable* initial_table() {
    const char* forced = std::getenv("MATGRAD_ISA");
    if (forced && *forced) return checked_table(forced);
    return best_table();
}

std::atomic<const KernelTable*>& active() {
    // Initialised on first use; a bad MATGRAD_ISA throws here, at import.
    static std::atomic<const KernelTable*> table{initial_table()};
    return table;
}

}  // namespace

const KernelTable& active_kernels() { return *active().load(std::memory_order_acquire); }

}  // namespace detail

const char* isa() { return detail::active_kernels().name; }

void set_isa(const char* name) {
    const detail::KernelTable* table = detail::checked_table(name);
    detail::active().store(table, std::memory_order_release);
}

bool isa_available(const char* name) {
    return detail::cpu_has(name) && detail::table_named(name) != nullptr;
}

}  // namespace matgrad
