// Argument checks shared by the bindings: every problem is an error that names the
// function, the argument and what was wrong, raised before any memory is touched.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "aligned_arrays.hpp"

namespace matgrad_bindings {

namespace py = pybind11;

// ---- describing arrays in error messages -------------------------------------

using Shape = std::vector<py::ssize_t>;

inline std::string shape_str(const Shape& shape) {
    std::string s = "(";
    for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + (shape.size() == 1 ? ",)" : ")");
}

inline Shape shape_of(const py::array& arr) { return Shape(arr.shape(), arr.shape() + arr.ndim()); }

inline std::string shape_str(const py::array& arr) { return shape_str(shape_of(arr)); }

inline std::string dtype_str(const py::array& arr) { return py::str(arr.dtype()).cast<std::string>(); }

[[noreturn]] inline void fail_type(const std::string& msg) { throw py::type_error(msg); }
[[noreturn]] inline void fail_value(const std::string& msg) { throw py::value_error(msg); }

// ---- checks -------------------------------------------------------------------

enum class Dtype { f32, f64 };

// Calls f with a value of the element type, f(float{}) or f(double{}), so that
// one generic lambda serves both dtypes.
template <class F>
void with_element_type(Dtype dt, F&& f) {
    if (dt == Dtype::f32)
        f(float{});
    else
        f(double{});
}

inline py::array require_ndarray(const char* fn, const char* name, const py::handle& obj) {
    if (!py::isinstance<py::array>(obj))
        fail_type(std::string(fn) + ": " + name + " must be a numpy.ndarray, got " +
                  py::str(py::type::of(obj).attr("__name__")).cast<std::string>());
    return py::reinterpret_borrow<py::array>(obj);
}

inline py::array require_2d(const char* fn, const char* name, const py::handle& obj) {
    py::array arr = require_ndarray(fn, name, obj);
    if (arr.ndim() != 2)
        fail_value(std::string(fn) + ": " + name + " must be 2-D, got " +
                   std::to_string(arr.ndim()) + "-D array of shape " + shape_str(arr));
    return arr;
}

// "fn: shapes (2, 3) and (4, 5) are not aligned: 3 != 4", with notes on transposed operands.
[[noreturn]] inline void fail_not_aligned(const char* fn, const Shape& sa, const char* note_a, const Shape& sb,
                                   const char* note_b) {
    fail_value(std::string(fn) + ": shapes " + shape_str(sa) + note_a + " and " + shape_str(sb) +
               note_b + " are not aligned: " + std::to_string(sa[1]) + " != " + std::to_string(sb[0]));
}

inline Dtype require_float(const char* fn, const char* name, const py::array& arr) {
    if (arr.dtype().is(py::dtype::of<float>()) || arr.dtype().equal(py::dtype::of<float>()))
        if (arr.dtype().byteorder() != '>') return Dtype::f32;
    if (arr.dtype().is(py::dtype::of<double>()) || arr.dtype().equal(py::dtype::of<double>()))
        if (arr.dtype().byteorder() != '>') return Dtype::f64;
    fail_type(std::string(fn) + ": " + name + " has dtype " + dtype_str(arr) +
              "; expected float32 or float64");
}

inline void require_same_dtype(const char* fn, const char* n1, const py::array& a1, const char* n2,
                        const py::array& a2) {
    if (!a1.dtype().equal(a2.dtype()))
        fail_type(std::string(fn) + ": dtypes differ: " + n1 + " is " + dtype_str(a1) + ", " +
                  n2 + " is " + dtype_str(a2) + " (convert one with .astype)");
}

// Byte range [lo, hi) that an array's elements can touch.
struct Extent {
    const char* lo;
    const char* hi;
};

inline Extent extent_of(const py::array& arr) {
    const char* base = static_cast<const char*>(arr.data());
    py::ssize_t lo = 0, hi = 0;
    for (py::ssize_t i = 0; i < arr.ndim(); ++i) {
        const py::ssize_t span = (arr.shape(i) - 1) * arr.strides(i);
        (span < 0 ? lo : hi) += span;
    }
    return {base + lo, base + hi + arr.itemsize()};
}

inline bool overlaps(const py::array& x, const py::array& y) {
    if (x.size() == 0 || y.size() == 0) return false;
    const Extent ex = extent_of(x), ey = extent_of(y);
    return ex.lo < ey.hi && ey.lo < ex.hi;
}

inline bool same_memory(const py::array& x, const py::array& y) {
    if (x.data() != y.data() || x.ndim() != y.ndim()) return false;
    for (py::ssize_t i = 0; i < x.ndim(); ++i)
        if (x.shape(i) != y.shape(i) || x.strides(i) != y.strides(i)) return false;
    return true;
}

inline bool is_c_contiguous(const py::array& arr) {
    return (arr.flags() & py::array::c_style) != 0;
}

inline bool is_aligned(const py::array& arr) { return (arr.flags() & 0x0100 /* NPY_ARRAY_ALIGNED */) != 0; }

// `out` must be exactly what the caller would get back: writing into a copy
// would silently lose the result, so every problem is an error.
inline py::array check_out(const char* fn, const char* name, const py::handle& out_obj,
                    const py::array& like_dtype, const Shape& expected) {
    py::array out = require_ndarray(fn, name, out_obj);
    const std::string who = std::string(fn) + ": " + name;
    if (!out.dtype().equal(like_dtype.dtype()))
        fail_type(who + " has dtype " + dtype_str(out) + ", expected " + dtype_str(like_dtype));
    if (shape_of(out) != expected)
        fail_value(who + " has shape " + shape_str(out) + ", expected " + shape_str(expected));
    if (!is_c_contiguous(out) || !is_aligned(out))
        fail_value(who + " must be C-contiguous and aligned (got strides " +
                   py::str(out.attr("strides")).cast<std::string>() +
                   "); results written to a copy would be lost");
    if (!out.writeable()) fail_value(who + " is read-only");
    return out;
}

// A C-contiguous, aligned copy. (np.ascontiguousarray is not enough: it returns a
// C-contiguous array as it is, misaligned or not.)
inline py::array aligned_copy(const py::array& arr) {
    return py::module_::import("numpy").attr("array")(arr, py::arg("copy") = true,
                                                      py::arg("order") = "C");
}

// Inputs whose strides are not whole elements, or that are misaligned, are
// copied once (inputs only; never `out`).
inline bool readable_in_place(const py::array& arr) {
    bool ok = is_aligned(arr);
    for (py::ssize_t i = 0; ok && i < arr.ndim(); ++i) ok = arr.strides(i) % arr.itemsize() == 0;
    return ok;
}

inline py::array readable(const py::array& arr) {
    return readable_in_place(arr) ? arr : aligned_copy(arr);
}

inline py::array contiguous(const py::array& arr) {
    return is_c_contiguous(arr) && is_aligned(arr) ? arr : aligned_copy(arr);
}

// ---- releasing the GIL ------------------------------------------------------------

// Releases the GIL for the enclosing scope when the kernel has enough work for
// another Python thread to use the time. Releasing and re-taking it costs about
// 0.1 µs, more than a tiny kernel itself (an 8×8 matmul takes 0.07 µs), so
// small calls keep it, as numpy does below a few hundred elements.
// work: multiply-adds for products, elements for elementwise kernels.
class GilReleaseFor {
public:
    explicit GilReleaseFor(int64_t work) {
        if (work >= kMinWork) release_.emplace();
    }

private:
    static constexpr int64_t kMinWork = int64_t{1} << 14;
    std::optional<py::gil_scoped_release> release_;
};


inline void require_shape(const char* fn, const char* name, const py::array& arr, const Shape& want,
                   const char* why) {
    if (shape_of(arr) != want)
        fail_value(std::string(fn) + ": " + name + " has shape " + shape_str(arr) + ", expected " +
                   shape_str(want) + " " + why);
}

// A gradient output: the caller's array (added into), a new one (written), or
// none when the gradient is not needed.
struct GradOut {
    std::optional<py::array> array;
    bool accumulate = false;
    void* data() { return array ? array->mutable_data() : nullptr; }
    py::object result() const { return array ? py::object(*array) : py::object(py::none()); }
};

inline GradOut grad_out(const char* fn, const char* name, bool needed, const py::handle& obj,
                 bool accumulate, const py::array& like, const Shape& shape,
                 std::initializer_list<std::pair<const char*, const py::array*>> inputs) {
    // inputs: the arrays a gradient must not overlap (null entries are absent inputs)
    GradOut g;
    if (!needed) {
        if (!obj.is_none())
            fail_value(std::string(fn) + ": " + name + " was given but need_" + name + " is False");
        return g;
    }
    if (obj.is_none()) {
        g.array = new_aligned_array(like.dtype(), shape);
        return g;
    }
    g.array = check_out(fn, name, obj, like, shape);
    for (const auto& [in_name, arr] : inputs)
        if (arr && overlaps(*g.array, *arr))
            fail_value(std::string(fn) + ": " + name + " overlaps input " + in_name);
    g.accumulate = accumulate;
    return g;
}

}  // namespace matgrad_bindings
