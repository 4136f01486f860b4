// A growable, 64-byte aligned scratch buffer. Pack buffers are kept per
// thread and reused between calls, so small GEMMs do not pay for malloc.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>

namespace matgrad::detail {

class AlignedBuffer {
public:
    AlignedBuffer() = default;
    AlignedBuffer(const AlignedBuffer&) = delete;
    AlignedBuffer& operator=(const AlignedBuffer&) = delete;
    ~AlignedBuffer() { std::free(data_); }

    // Returns at least `bytes` bytes; the contents are not kept across growth.
    void* reserve(std::size_t bytes) {
        if (bytes > capacity_) {
            std::free(data_);
            const std::size_t rounded = (bytes + 63) / 64 * 64;
            data_ = std::aligned_alloc(64, rounded);
            if (!data_) {
                capacity_ = 0;
                throw std::bad_alloc();
            }
            capacity_ = rounded;
        }
        return data_;
    }

private:
    void* data_ = nullptr;
    std::size_t capacity_ = 0;
};

}  // namespace matgrad::detail
