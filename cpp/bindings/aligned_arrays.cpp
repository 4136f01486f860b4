// The 64-byte aligned numpy memory handler (aligned_arrays.hpp). The only file of
// the bindings that uses numpy's C API, so only it imports it.
#define PY_ARRAY_UNIQUE_SYMBOL matgrad_ARRAY_API
#define NPY_NO_DEPRECATED_API NPY_1_23_API_VERSION
#define NPY_TARGET_VERSION NPY_1_23_API_VERSION  // pyproject: numpy>=1.23 at run time
#include "aligned_arrays.hpp"

#include <numpy/arrayobject.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__linux__)
#include <sys/mman.h>
#endif

// Under AddressSanitizer (scripts/sanitize.sh) the slack around the array is poisoned,
// so a kernel writing past the end of an output is reported as it would be for
// numpy's exact-size blocks.
#if defined(__SANITIZE_ADDRESS__)
#define MATGRAD_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MATGRAD_ASAN 1
#endif
#endif
#if defined(MATGRAD_ASAN)
#include <sanitizer/asan_interface.h>
#endif

namespace matgrad_bindings {
namespace {

constexpr std::size_t kAlign = 64;

// Stored just below the aligned pointer: what malloc returned, and the size asked
// for (numpy's realloc passes only the new size).
struct Header {
    void* raw;
    std::size_t size;
};
constexpr std::size_t kSlack = kAlign - 1 + sizeof(Header);

void* place(void* raw, std::size_t size) {
    if (!raw) return nullptr;
    const auto first = reinterpret_cast<std::uintptr_t>(raw) + sizeof(Header);
    void* aligned = reinterpret_cast<void*>((first + kAlign - 1) & ~std::uintptr_t(kAlign - 1));
    Header* h = static_cast<Header*>(aligned) - 1;
    h->raw = raw;
    h->size = size;
#if defined(MATGRAD_ASAN)
    char* const bytes = static_cast<char*>(raw);
    ASAN_POISON_MEMORY_REGION(bytes, reinterpret_cast<char*>(h) - bytes);
    ASAN_POISON_MEMORY_REGION(static_cast<char*>(aligned) + size,
                              bytes + size + kSlack - (static_cast<char*>(aligned) + size));
#endif
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    // As numpy's default allocator does from 4 MiB: huge pages where the kernel's THP
    // mode is madvise (a C++ loop over 4 KiB pages ran 3-5% slower;
    // docs/tuning-log-xeon-167.md, "Sixth session").
    if (size >= (std::size_t{1} << 22)) {
        constexpr std::uintptr_t page = 4096;
        const auto begin = (reinterpret_cast<std::uintptr_t>(aligned) + page - 1) & ~(page - 1);
        const auto end = reinterpret_cast<std::uintptr_t>(aligned) + size;
        if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);  // advice only
    }
#endif
    return aligned;
}

Header* header_of(void* ptr) { return static_cast<Header*>(ptr) - 1; }

void* aligned_malloc(void*, std::size_t size) {
    if (size > SIZE_MAX - kSlack) return nullptr;
    return place(std::malloc(size + kSlack), size);
}

void* aligned_calloc(void*, std::size_t nelem, std::size_t elsize) {
    if (elsize != 0 && nelem > (SIZE_MAX - kSlack) / elsize) return nullptr;
    const std::size_t size = nelem * elsize;
    return place(std::calloc(1, size + kSlack), size);  // zeroed, header included
}

void aligned_free(void*, void* ptr, std::size_t) {
    if (!ptr) return;
    void* const raw = header_of(ptr)->raw;
#if defined(MATGRAD_ASAN)
    ASAN_UNPOISON_MEMORY_REGION(raw, header_of(ptr)->size + kSlack);
#endif
    std::free(raw);
}

void* aligned_realloc(void* ctx, void* ptr, std::size_t new_size) {
    if (!ptr) return aligned_malloc(ctx, new_size);
    void* fresh = aligned_malloc(ctx, new_size);
    if (!fresh) return nullptr;  // the old block stays valid, as realloc promises
    const std::size_t old_size = header_of(ptr)->size;
    std::memcpy(fresh, ptr, old_size < new_size ? old_size : new_size);
    aligned_free(ctx, ptr, old_size);
    return fresh;
}

PyDataMem_Handler aligned_handler = {
    "matgrad_aligned_64",
    1,
    {nullptr, aligned_malloc, aligned_calloc, aligned_realloc, aligned_free},
};

// The capsule numpy keeps a reference to in every array the handler allocated.
// Never released: arrays may outlive the module object.
PyObject* handler_capsule = nullptr;

// Whether the array holds kAlignedMinBytes or more (counted up to that, so no shape overflows).
bool holds_enough(py::ssize_t itemsize, const std::vector<py::ssize_t>& shape) {
    py::ssize_t bytes = itemsize;
    for (py::ssize_t d : shape) {
        if (d <= 0) return false;
        bytes = d >= kAlignedMinBytes ? kAlignedMinBytes : std::min(bytes * d, kAlignedMinBytes);
    }
    return bytes >= kAlignedMinBytes;
}

}  // namespace

void init_aligned_arrays() {
    static_assert(sizeof(Header) <= kAlign, "the header fits below the aligned pointer");
    if (_import_array() < 0) throw py::error_already_set();
    handler_capsule = PyCapsule_New(&aligned_handler, "mem_handler", nullptr);
    if (!handler_capsule) throw py::error_already_set();
}

py::array new_aligned_array(const py::dtype& dtype, const std::vector<py::ssize_t>& shape) {
    if (!holds_enough(dtype.itemsize(), shape)) return py::array(dtype, shape);
    // The handler applies to arrays created while it is set (a context variable, so
    // other threads and contexts are unaffected); the previous one is set back.
    PyObject* previous = PyDataMem_SetHandler(handler_capsule);
    if (!previous) throw py::error_already_set();
    py::object made;
    try {
        made = py::array(dtype, shape);
    } catch (...) {
        Py_XDECREF(PyDataMem_SetHandler(previous));
        Py_DECREF(previous);
        throw;
    }
    PyObject* ours = PyDataMem_SetHandler(previous);
    Py_DECREF(previous);
    if (!ours) throw py::error_already_set();
    Py_DECREF(ours);
    return py::reinterpret_borrow<py::array>(made);
}

}  // namespace matgrad_bindings
