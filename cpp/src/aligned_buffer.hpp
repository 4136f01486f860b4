// A growable, 64-byte aligned scratch buffer. Pack buffers are kept per
// thread and reused between calls, so small GEMMs do not pay for malloc.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>
#if defined(_MSC_VER)
#include <malloc.h>
#endif

namespace matgrad::detail {

class AlignedBuffer {
public:
    AlignedBuffer() = default;
    AlignedBuffer(const AlignedBuffer&) = delete;
    AlignedBuffer& operator=(const AlignedBuffer&) = delete;
    ~AlignedBuffer() { release(data_); }

    // Returns at least `bytes` bytes; the contents are not kept across growth.
    void* reserve(std::size_t bytes) {
        if (bytes > capacity_) {
            release(data_);
            data_ = nullptr;
            const std::size_t rounded = (bytes + 63) / 64 * 64;
            data_ = allocate(rounded);
            if (!data_) {
                capacity_ = 0;
                throw std::bad_alloc();
            }
            capacity_ = rounded;
        }
        return data_;
    }

private:
    // MSVC's C library has no aligned_alloc (its free cannot release aligned blocks).
    static void* allocate(std::size_t bytes) {
#if defined(_MSC_VER)
        return _aligned_malloc(bytes, 64);
#else
        return std::aligned_alloc(64, bytes);
#endif
    }
    static void release(void* p) {
#if defined(_MSC_VER)
        _aligned_free(p);
#else
        std::free(p);
#endif
    }

    void* data_ = nullptr;
    std::size_t capacity_ = 0;
};

}  // namespace matgrad::detail
