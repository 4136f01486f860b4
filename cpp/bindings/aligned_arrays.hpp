// Arrays of 64 KiB or more the bindings allocate (outputs, gradients, work arrays)
// start on a 64-byte cache line.
//
// numpy's own allocator returns malloc's 16-byte alignment: a fresh array's data
// starts 16, 32 or 48 bytes into a line, and a C tile row of 32 floats then spans
// three lines instead of two. Each K slice of a GEMM reads and writes every C tile
// once, so the offset costs 3-6% on the MLP's products (docs/tuning-log-xeon-167.md,
// "Seventh session"). The arrays are ordinary numpy arrays that own their data: they carry a
// numpy memory handler (NEP 49) that aligns, and frees what it allocated.
#pragma once

#include <pybind11/numpy.h>

#include <vector>

namespace matgrad_bindings {

namespace py = pybind11;

// Installs the handler's numpy C API; call once, from the module's init.
void init_aligned_arrays();

// Below this many bytes an array keeps numpy's allocator: setting the handler and
// back costs about 0.25 µs per array (relu_forward on 8×8 went 0.20 -> 0.44 µs),
// more than a line's offset costs a product that small.
inline constexpr py::ssize_t kAlignedMinBytes = py::ssize_t{1} << 16;

// An uninitialised C-contiguous array of `dtype` and `shape`, its data on a 64-byte
// line when it holds kAlignedMinBytes or more.
py::array new_aligned_array(const py::dtype& dtype, const std::vector<py::ssize_t>& shape);

// The handler's name, as numpy reports it for such arrays (get_handler_name).
inline constexpr const char* kAlignedHandlerName = "matgrad_aligned_64";

}  // namespace matgrad_bindings
