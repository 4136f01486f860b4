// matgrad._core: numpy arrays in and out. Validate, take pointers, release the
// GIL, call the kernel. No math here.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "matgrad/matgrad.hpp"

namespace py = pybind11;

#include "aligned_arrays.hpp"
#include "checks.hpp"

using namespace matgrad_bindings;

void bind_conv(py::module_& m);  // conv.cpp: convolution and pooling

namespace {

// ---- matmul --------------------------------------------------------------------

// op(X) as a strided [rows×cols] matrix, in elements.
struct Operand {
    const void* data;
    int64_t rows, cols, rs, cs;
};

Operand operand(const py::array& arr, bool transposed) {
    const int64_t item = arr.itemsize();
    Operand o{arr.data(), arr.shape(0), arr.shape(1), arr.strides(0) / item, arr.strides(1) / item};
    if (transposed) {
        std::swap(o.rows, o.cols);
        std::swap(o.rs, o.cs);
    }
    return o;
}

// matmul's checks of a and b (2-D, float, one dtype, op(a)'s columns = op(b)'s rows).
Dtype check_matmul_operands(const char* fn, const py::array& a, const py::array& b, bool trans_a,
                            bool trans_b) {
    const Dtype dt = require_float(fn, "a", a);
    require_float(fn, "b", b);
    require_same_dtype(fn, "a", a, "b", b);
    const int64_t a_rows = a.shape(trans_a ? 1 : 0), a_cols = a.shape(trans_a ? 0 : 1);
    const int64_t b_rows = b.shape(trans_b ? 1 : 0), b_cols = b.shape(trans_b ? 0 : 1);
    if (a_cols != b_rows)
        fail_not_aligned(fn, Shape{a_rows, a_cols}, trans_a ? " (a transposed)" : "",
                         Shape{b_rows, b_cols}, trans_b ? " (b transposed)" : "");
    return dt;
}

template <class T>
void call_gemm(const Operand& a, const Operand& b, void* c, bool accumulate) {
    GilReleaseFor release(std::max(a.rows * b.cols * a.cols, a.rows * b.cols));  // k = 0 still fills C
    matgrad::gemm_strided(a.rows, b.cols, a.cols, static_cast<const T*>(a.data), a.rs, a.cs,
                          static_cast<const T*>(b.data), b.rs, b.cs, static_cast<T*>(c), b.cols,
                          accumulate);
}

py::array matmul(const py::handle& a_obj, const py::handle& b_obj, bool trans_a, bool trans_b,
                 const py::handle& out_obj, bool accumulate) {
    const char* fn = "matmul";
    py::array a = require_2d(fn, "a", a_obj), b = require_2d(fn, "b", b_obj);
    // Shapes of op(a), op(b) from the arrays as given; out is checked (overlap
    // included) before any input is copied.
    const Dtype dt = check_matmul_operands(fn, a, b, trans_a, trans_b);
    const int64_t m = a.shape(trans_a ? 1 : 0), n = b.shape(trans_b ? 0 : 1);

    py::array out;
    if (out_obj.is_none()) {
        if (accumulate)
            fail_value(std::string(fn) + ": accumulate=True needs out (the array to add into)");
        out = new_aligned_array(a.dtype(), Shape{m, n});
    } else {
        out = check_out(fn, "out", out_obj, a, Shape{m, n});
        if (overlaps(out, a)) fail_value(std::string(fn) + ": out overlaps input a");
        if (overlaps(out, b)) fail_value(std::string(fn) + ": out overlaps input b");
    }
    a = readable(a);
    b = readable(b);
    const Operand oa = operand(a, trans_a), ob = operand(b, trans_b);
    void* c = out.mutable_data();
    with_element_type(dt, [&](auto zero) { call_gemm<decltype(zero)>(oa, ob, c, accumulate); });
    return out;
}

// The path matmul(a, b, trans_a, trans_b) takes: the same checks, and the strides it
// reads (of the aligned C-order copy it makes of an array it cannot read in place).
std::string gemm_path(const py::handle& a_obj, const py::handle& b_obj, bool trans_a,
                      bool trans_b) {
    const char* fn = "gemm_path";
    const py::array a = require_2d(fn, "a", a_obj), b = require_2d(fn, "b", b_obj);
    const Dtype dt = check_matmul_operands(fn, a, b, trans_a, trans_b);
    auto as_read = [](const py::array& arr, bool transposed) {
        Operand o = operand(arr, transposed);
        if (!readable_in_place(arr)) {  // readable() copies it, C order
            o.rs = transposed ? 1 : arr.shape(1);
            o.cs = transposed ? arr.shape(1) : 1;
        }
        return o;
    };
    const Operand oa = as_read(a, trans_a), ob = as_read(b, trans_b);
    return matgrad::gemm_path(oa.rows, ob.cols, oa.cols, oa.rs, oa.cs, ob.rs, ob.cs,
                              dt == Dtype::f64);
}

// ---- relu -----------------------------------------------------------------------

py::array prepare_elementwise_out(const char* fn, const py::handle& out_obj, const py::array& like,
                                  std::initializer_list<const py::array*> inputs) {
    if (out_obj.is_none()) return new_aligned_array(like.dtype(), shape_of(like));
    py::array out = check_out(fn, "out", out_obj, like, shape_of(like));
    // Writing in place over an input is fine (each element is read before it is
    // written); a partial overlap is not.
    for (const py::array* in : inputs)
        if (overlaps(out, *in) && !same_memory(out, *in))
            fail_value(std::string(fn) + ": out partially overlaps an input");
    return out;
}

py::array relu_forward(const py::handle& x_obj, const py::handle& out_obj) {
    const char* fn = "relu_forward";
    py::array x = require_ndarray(fn, "x", x_obj);
    const Dtype dt = require_float(fn, "x", x);
    py::array out = prepare_elementwise_out(fn, out_obj, x, {&x});
    x = contiguous(x);
    const void* xp = x.data();
    void* yp = out.mutable_data();
    const int64_t n = x.size();
    {
        GilReleaseFor release(n);
        with_element_type(dt, [&](auto zero) {
            using T = decltype(zero);
            matgrad::relu_forward(static_cast<const T*>(xp), static_cast<T*>(yp), n);
        });
    }
    return out;
}

py::array relu_backward(const py::handle& dy_obj, const py::handle& x_obj,
                        const py::handle& out_obj) {
    const char* fn = "relu_backward";
    py::array dy = require_ndarray(fn, "grad_y", dy_obj), x = require_ndarray(fn, "x", x_obj);
    const Dtype dt = require_float(fn, "grad_y", dy);
    require_float(fn, "x", x);
    require_same_dtype(fn, "grad_y", dy, "x", x);
    if (shape_of(dy) != shape_of(x))
        fail_value(std::string(fn) + ": grad_y has shape " + shape_str(dy) + " but x has shape " +
                   shape_str(x) + "; they must match");
    py::array out = prepare_elementwise_out(fn, out_obj, x, {&x, &dy});
    dy = contiguous(dy);
    x = contiguous(x);
    const void* dyp = dy.data();
    const void* xp = x.data();
    void* dxp = out.mutable_data();
    const int64_t n = x.size();
    {
        GilReleaseFor release(n);
        with_element_type(dt, [&](auto zero) {
            using T = decltype(zero);
            matgrad::relu_backward(static_cast<const T*>(dyp), static_cast<const T*>(xp),
                                   static_cast<T*>(dxp), n);
        });
    }
    return out;
}

// ---- axpy ----------------------------------------------------------------------------

py::array axpy(double alpha, const py::handle& x_obj, const py::handle& y_obj) {
    const char* fn = "axpy";
    py::array x = require_ndarray(fn, "x", x_obj);
    const Dtype dt = require_float(fn, "x", x);
    py::array y = check_out(fn, "y", y_obj, x, shape_of(x));  // written in place: the rules of out
    if (overlaps(y, x) && !same_memory(y, x)) fail_value(std::string(fn) + ": y partially overlaps x");
    x = contiguous(x);
    const void* xp = x.data();
    void* yp = y.mutable_data();
    const int64_t n = x.size();
    {
        GilReleaseFor release(n);
        with_element_type(dt, [&](auto zero) {
            using T = decltype(zero);
            matgrad::axpy(n, static_cast<T>(alpha), static_cast<const T*>(xp), static_cast<T*>(yp));
        });
    }
    return y;
}

// ---- fused linear layer ------------------------------------------------------------



py::array linear_forward(const py::handle& x_obj, const py::handle& w_obj, const py::handle& b_obj,
                         bool relu, const py::handle& out_obj) {
    const char* fn = "linear_forward";
    py::array x = require_2d(fn, "x", x_obj), w = require_2d(fn, "w", w_obj);
    const Dtype dt = require_float(fn, "x", x);
    require_float(fn, "w", w);
    require_same_dtype(fn, "x", x, "w", w);
    if (x.shape(1) != w.shape(0)) fail_not_aligned(fn, shape_of(x), "", shape_of(w), "");
    const int64_t n = x.shape(0), d = x.shape(1), m = w.shape(1);
    // Optional arrays are std::optional: a default py::array is an empty array, not "none".
    std::optional<py::array> b;
    if (!b_obj.is_none()) {
        b = require_ndarray(fn, "b", b_obj);
        require_float(fn, "b", *b);
        require_same_dtype(fn, "x", x, "b", *b);
        require_shape(fn, "b", *b, Shape{m}, "(one bias per output column)");
        b = contiguous(*b);
    }
    py::array out;
    if (out_obj.is_none()) {
        out = new_aligned_array(x.dtype(), Shape{n, m});
    } else {
        out = check_out(fn, "out", out_obj, x, Shape{n, m});
        if (overlaps(out, x)) fail_value(std::string(fn) + ": out overlaps input x");
        if (overlaps(out, w)) fail_value(std::string(fn) + ": out overlaps input w");
        if (b && overlaps(out, *b)) fail_value(std::string(fn) + ": out overlaps input b");
    }
    x = readable(x);
    w = readable(w);
    const Operand ox = operand(x, false), ow = operand(w, false);
    const void* bp = b ? b->data() : nullptr;
    void* yp = out.mutable_data();
    {
        GilReleaseFor release(std::max(n * d * m, n * m));
        with_element_type(dt, [&](auto zero) {
            using T = decltype(zero);
            matgrad::linear_forward(n, d, m, static_cast<const T*>(ox.data), ox.rs, ox.cs,
                                    static_cast<const T*>(ow.data), ow.rs, ow.cs,
                                    static_cast<const T*>(bp), relu, static_cast<T*>(yp), m);
        });
    }
    return out;
}


py::tuple linear_backward(const py::handle& dy_obj, const py::handle& x_obj,
                          const py::handle& w_obj, const py::handle& y_obj, bool relu,
                          bool need_dx, bool need_dw, bool need_db, const py::handle& dx_obj,
                          const py::handle& dw_obj, const py::handle& db_obj,
                          const py::handle& accumulate_obj) {
    const char* fn = "linear_backward";
    // accumulate: one bool for every given gradient array, or one per (dx, dw, db).
    bool accumulate[3];
    if (py::isinstance<py::bool_>(accumulate_obj)) {
        accumulate[0] = accumulate[1] = accumulate[2] = accumulate_obj.cast<bool>();
    } else {
        py::tuple flags;
        if (py::isinstance<py::tuple>(accumulate_obj)) flags = py::reinterpret_borrow<py::tuple>(accumulate_obj);
        if (flags.size() != 3)
            fail_type(std::string(fn) + ": accumulate must be a bool or a tuple of 3 bools (dx, dw, db)");
        for (int i = 0; i < 3; ++i) {
            try {
                accumulate[i] = flags[i].cast<bool>();
            } catch (const py::cast_error&) {
                fail_type(std::string(fn) +
                          ": accumulate must be a bool or a tuple of 3 bools (dx, dw, db); item " +
                          std::to_string(i) + " is a " +
                          py::str(py::type::of(flags[i]).attr("__name__")).cast<std::string>());
            }
        }
    }
    py::array dy = require_2d(fn, "grad_y", dy_obj), x = require_2d(fn, "x", x_obj),
              w = require_2d(fn, "w", w_obj);
    const Dtype dt = require_float(fn, "grad_y", dy);
    require_float(fn, "x", x);
    require_float(fn, "w", w);
    require_same_dtype(fn, "grad_y", dy, "x", x);
    require_same_dtype(fn, "x", x, "w", w);
    if (x.shape(1) != w.shape(0)) fail_not_aligned(fn, shape_of(x), "", shape_of(w), "");
    const int64_t n = x.shape(0), d = x.shape(1), m = w.shape(1);
    require_shape(fn, "grad_y", dy, Shape{n, m}, "(the shape of y = x·w)");
    std::optional<py::array> y;
    if (relu) {
        if (y_obj.is_none())
            fail_value(std::string(fn) + ": relu=True needs y, the forward output (its mask y > 0)");
        y = require_2d(fn, "y", y_obj);
        require_float(fn, "y", *y);
        require_same_dtype(fn, "x", x, "y", *y);
        require_shape(fn, "y", *y, Shape{n, m}, "(the forward output)");
    } else if (!y_obj.is_none()) {
        fail_value(std::string(fn) + ": y is only used with relu=True");
    }
    const std::initializer_list<std::pair<const char*, const py::array*>> inputs{
        {"grad_y", &dy}, {"x", &x}, {"w", &w}, {"y", y ? &*y : nullptr}};
    GradOut gdx = grad_out(fn, "dx", need_dx, dx_obj, accumulate[0], x, Shape{n, d}, inputs);
    GradOut gdw = grad_out(fn, "dw", need_dw, dw_obj, accumulate[1], x, Shape{d, m}, inputs);
    GradOut gdb = grad_out(fn, "db", need_db, db_obj, accumulate[2], x, Shape{m}, inputs);
    for (GradOut* a : {&gdx, &gdw})
        for (GradOut* b : {&gdw, &gdb})
            if (a != b && a->array && b->array && overlaps(*a->array, *b->array))
                fail_value(std::string(fn) + ": gradient outputs overlap each other");

    dy = contiguous(dy);
    if (y) y = contiguous(*y);
    x = readable(x);
    w = readable(w);
    const Operand ox = operand(x, false), ow = operand(w, false);
    const void* dyp = dy.data();
    const void* yp = y ? y->data() : nullptr;
    void *dxp = gdx.data(), *dwp = gdw.data(), *dbp = gdb.data();
    {
        GilReleaseFor release(std::max(n * d * m, n * m));
        if (dt == Dtype::f32) {
            matgrad::LinearGrads g{static_cast<float*>(dxp), static_cast<float*>(dwp),
                                   static_cast<float*>(dbp), gdx.accumulate, gdw.accumulate,
                                   gdb.accumulate};
            matgrad::linear_backward(n, d, m, static_cast<const float*>(dyp),
                                     static_cast<const float*>(yp), static_cast<const float*>(ox.data),
                                     ox.rs, ox.cs, static_cast<const float*>(ow.data), ow.rs, ow.cs, g);
        } else {
            matgrad::LinearGrads64 g{static_cast<double*>(dxp), static_cast<double*>(dwp),
                                     static_cast<double*>(dbp), gdx.accumulate, gdw.accumulate,
                                     gdb.accumulate};
            matgrad::linear_backward(n, d, m, static_cast<const double*>(dyp),
                                     static_cast<const double*>(yp), static_cast<const double*>(ox.data),
                                     ox.rs, ox.cs, static_cast<const double*>(ow.data), ow.rs, ow.cs, g);
        }
    }
    return py::make_tuple(gdx.result(), gdw.result(), gdb.result());
}

// ---- softmax cross-entropy -------------------------------------------------------

// labels: a 1-D int64 array of n class indices, each in [0, c); checked here so
// that a bad one is a ValueError naming it, before the kernel runs. Returned as
// a private copy: the kernel indexes memory with them, possibly after the GIL
// is released, when another thread could change the caller's array.
std::vector<int64_t> checked_labels(const char* fn, const py::handle& obj, int64_t n, int64_t c) {
    py::array labels = require_ndarray(fn, "labels", obj);
    if (!labels.dtype().equal(py::dtype::of<int64_t>()))
        fail_type(std::string(fn) + ": labels has dtype " + dtype_str(labels) +
                  "; expected int64 (class indices)");
    if (shape_of(labels) != Shape{n})
        fail_value(std::string(fn) + ": labels has shape " + shape_str(labels) + ", expected " +
                   shape_str(Shape{n}) + " (one class index per row)");
    std::vector<int64_t> y(static_cast<size_t>(n));
    const char* base = static_cast<const char*>(labels.data());
    const py::ssize_t stride = labels.strides(0);
    for (int64_t i = 0; i < n; ++i) {
        std::memcpy(&y[i], base + i * stride, sizeof(int64_t));
        if (y[i] < 0 || y[i] >= c)
            fail_value(std::string(fn) + ": labels must be in [0, " + std::to_string(c) + ") for " +
                       std::to_string(c) + " classes; labels[" + std::to_string(i) +
                       "] = " + std::to_string(y[i]));
    }
    return y;
}

py::tuple cross_entropy_forward(const py::handle& scores_obj, const py::handle& labels_obj) {
    const char* fn = "cross_entropy_forward";
    py::array s = require_2d(fn, "scores", scores_obj);
    const Dtype dt = require_float(fn, "scores", s);
    const int64_t n = s.shape(0), c = s.shape(1);
    if (n == 0 || c == 0)
        fail_value(std::string(fn) + ": scores must have at least one row and one class, got shape " +
                   shape_str(s));
    const std::vector<int64_t> labels = checked_labels(fn, labels_obj, n, c);
    s = contiguous(s);
    py::array probs = new_aligned_array(s.dtype(), Shape{n, c}), loss = new_aligned_array(s.dtype(), Shape{});
    const void* sp = s.data();
    const int64_t* yp = labels.data();
    void* pp = probs.mutable_data();
    void* lp = loss.mutable_data();
    {
        GilReleaseFor release(n * c);
        with_element_type(dt, [&](auto zero) {
            using T = decltype(zero);
            *static_cast<T*>(lp) = matgrad::cross_entropy_forward(n, c, static_cast<const T*>(sp), c, yp,
                                                                  static_cast<T*>(pp));
        });
    }
    return py::make_tuple(loss, probs);
}

py::array cross_entropy_backward(const py::handle& probs_obj, const py::handle& labels_obj,
                                 double grad_loss, const py::handle& out_obj) {
    const char* fn = "cross_entropy_backward";
    py::array p = require_2d(fn, "probs", probs_obj);
    const Dtype dt = require_float(fn, "probs", p);
    const int64_t n = p.shape(0), c = p.shape(1);
    const std::vector<int64_t> labels = checked_labels(fn, labels_obj, n, c);
    py::array out = prepare_elementwise_out(fn, out_obj, p, {&p});
    p = contiguous(p);
    const void* pp = p.data();
    const int64_t* yp = labels.data();
    void* dp = out.mutable_data();
    {
        GilReleaseFor release(n * c);
        with_element_type(dt, [&](auto zero) {
            using T = decltype(zero);
            matgrad::cross_entropy_backward(n, c, static_cast<const T*>(pp), yp, static_cast<T>(grad_loss),
                                            static_cast<T*>(dp));
        });
    }
    return out;
}

py::dict cache_level_dict(const matgrad::CacheLevel& c) {
    py::dict d;
    d["size"] = c.size;
    d["ways"] = c.ways;
    d["line"] = c.line;
    d["sharing"] = c.sharing;
    return d;
}

py::dict cpu_caches() {
    const matgrad::CpuCaches& c = matgrad::cpu_caches();
    py::dict d;
    d["l1d"] = cache_level_dict(c.l1d);
    d["l2"] = cache_level_dict(c.l2);
    d["l3"] = cache_level_dict(c.l3);
    d["source"] = c.source;
    return d;
}

bool is_double(const py::dtype& dt) {
    if (dt.is(py::dtype::of<double>()) || dt.equal(py::dtype::of<double>())) return true;
    if (dt.equal(py::dtype::of<float>())) return false;
    fail_type("dtype must be float32 or float64, got " + py::str(dt).cast<std::string>());
}

// shape: an int or a tuple / list of ints (anything with __index__, not bool).
py::array empty_aligned(const py::handle& shape_obj, const py::object& dtype) {
    const char* fn = "empty_aligned";
    auto is_int = [](const py::handle& d) { return PyIndex_Check(d.ptr()) && !PyBool_Check(d.ptr()); };
    auto type_of = [](const py::handle& d) { return std::string(Py_TYPE(d.ptr())->tp_name); };
    Shape shape;
    auto add = [&](const py::handle& d) {
        if (!is_int(d)) fail_type(std::string(fn) + ": dimensions must be ints, got " + type_of(d));
        const py::object index = py::reinterpret_steal<py::object>(PyNumber_Index(d.ptr()));
        if (!index) throw py::error_already_set();  // an __index__ that raised (a 1-D ndarray)
        const Py_ssize_t value = PyLong_AsSsize_t(index.ptr());
        if (value == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            fail_value(std::string(fn) + ": dimension " + py::str(index).cast<std::string>() + " is too large");
        }
        shape.push_back(value);
    };
    if (py::isinstance<py::tuple>(shape_obj) || py::isinstance<py::list>(shape_obj)) {
        for (const py::handle d : shape_obj) add(d);
    } else if (is_int(shape_obj)) {
        add(shape_obj);
    } else {
        fail_type(std::string(fn) + ": shape must be an int, or a tuple or list of ints, got " +
                  type_of(shape_obj));
    }
    for (py::ssize_t d : shape)
        if (d < 0) fail_value(std::string(fn) + ": negative dimension in shape " + shape_str(shape));
    return new_aligned_array(py::dtype::from_args(dtype), shape);
}

py::dict block_sizes(const py::object& dtype) {
    const matgrad::BlockSizes b = matgrad::block_sizes(is_double(py::dtype::from_args(dtype)));
    py::dict d;
    d["mr"] = b.mr;
    d["nr"] = b.nr;
    d["kc"] = b.kc;
    d["nc"] = b.nc;
    d["mc"] = b.mc;
    d["kc_limit"] = b.kc_limit;
    return d;
}

double fma_peak(const std::string& isa, const py::object& dtype, int threads, double seconds) {
    const bool f64 = is_double(py::dtype::from_args(dtype));
    py::gil_scoped_release release;
    return matgrad::fma_peak_gflops(isa.c_str(), f64, threads, seconds);
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "matgrad's native kernels (GEMM, ReLU) over numpy arrays";
    // Resolve the kernel set now, so a bad MATGRAD_ISA fails the import, and set
    // up thread control now (it installs the at-fork handler).
    matgrad::isa();  // also reads MATGRAD_BLOCKING
    init_aligned_arrays();
    matgrad::get_num_threads();

    m.def("matmul", &matmul, py::arg("a"), py::arg("b"), py::arg("trans_a") = false,
          py::arg("trans_b") = false, py::arg("out") = py::none(), py::arg("accumulate") = false,
          R"doc(Return op(a) @ op(b), with op(x) = x.T when the trans flag is set.

a, b: 2-D float32 or float64 arrays of the same dtype; any strides (transposed
views, slices, Fortran order) are read without a copy.
out: optional C-contiguous, writeable array of shape (m, n) and the same dtype,
not overlapping a or b; it is returned. accumulate=True adds into out.)doc");
    m.def("gemm_path", &gemm_path, py::arg("a"), py::arg("b"), py::arg("trans_a") = false,
          py::arg("trans_b") = false,
          R"doc(The path matmul(a, b, trans_a, trans_b) takes now: 'empty', 'small', 'narrow',
'row_dots', 'row', 'streamed_b', 'transposed_rows', 'skinny' or 'packed'.

It depends on the shapes, the strides, the dtype, the kernel set and the L2's
size (and for 'skinny' on the thread count); docs/tuning.md explains each path.
a and b are checked as matmul checks them; nothing is computed.)doc");
    m.def("relu_forward", &relu_forward, py::arg("x"), py::arg("out") = py::none(),
          "Return max(0, x) elementwise (NaN stays NaN). out may be x itself.");
    m.def("relu_backward", &relu_backward, py::arg("grad_y"), py::arg("x"),
          py::arg("out") = py::none(),
          "Return grad_y where x > 0, else 0: the ReLU Jacobian applied as a mask.");
    m.def("linear_forward", &linear_forward, py::arg("x"), py::arg("w"), py::arg("b") = py::none(),
          py::arg("relu") = false, py::arg("out") = py::none(),
          R"doc(Return x @ w + b, then max(0, .) when relu: the bias and ReLU are applied
while the GEMM writes its output. x: (n, d), w: (d, m), b: (m,) or None.)doc");
    m.def("linear_backward", &linear_backward, py::arg("grad_y"), py::arg("x"), py::arg("w"),
          py::arg("y") = py::none(), py::arg("relu") = false,
          py::arg("need_dx") = true, py::arg("need_dw") = true, py::arg("need_db") = true,
          py::arg("dx") = py::none(), py::arg("dw") = py::none(), py::arg("db") = py::none(),
          py::arg("accumulate") = true,
          R"doc(Backward of linear_forward: returns (dx, dw, db).

g = grad_y masked by y > 0 when relu (y: the forward output), else grad_y;
db = g summed over rows (in the same pass as the mask), dx = g @ w.T, dw = x.T @ g.
A gradient not needed (need_* False) is None. A gradient array passed in
(dx, dw, db) is written and returned: added into when accumulate is True (the
default), overwritten (never read) when False; accumulate may also be a tuple
of three bools, one per (dx, dw, db). Otherwise a new array is returned.)doc");
    m.def("axpy", &axpy, py::arg("alpha"), py::arg("x"), py::arg("y"),
          "y += alpha * x in place (y: C-contiguous, writeable, x's shape and dtype); returns y.");
    m.def("cross_entropy_forward", &cross_entropy_forward, py::arg("scores"), py::arg("labels"),
          R"doc(Softmax cross-entropy: returns (loss, probs).

scores: (n, c) float32 or float64, n, c >= 1; labels: (n,) int64, each in [0, c).
probs = softmax of each row of scores, the input of the backward; loss = the
mean over rows of -log probs[i, labels[i]], a 0-d array of scores' dtype. The
loss is NaN when any score is NaN or infinite.)doc");
    m.def("cross_entropy_backward", &cross_entropy_backward, py::arg("probs"), py::arg("labels"),
          py::arg("grad_loss") = 1.0, py::arg("out") = py::none(),
          R"doc(Backward of cross_entropy_forward: returns dL/dscores =
(probs - onehot(labels)) * grad_loss / n. out may be probs itself (in place).)doc");
    m.def("isa", &matgrad::isa, "The kernel set in use: 'avx512', 'avx2' or 'baseline'.");
    m.def("set_isa", [](const std::string& name) { matgrad::set_isa(name.c_str()); },
          py::arg("name"), "Force a kernel set (for tests); MATGRAD_ISA does this at import.");
    m.def("isa_available", [](const std::string& name) { return matgrad::isa_available(name.c_str()); },
          py::arg("name"), "Whether this CPU and build can run the named kernel set.");
    m.def("set_num_threads", &matgrad::set_num_threads, py::arg("n"),
          "Set the number of threads kernels use (n >= 1).");
    m.def("get_num_threads", &matgrad::get_num_threads, "Threads kernels use.");
    m.def("has_openmp", &matgrad::has_openmp, "Whether the kernels were built with OpenMP.");
    m.def("cpu_caches", &cpu_caches,
          "The data caches this CPU reports: {'l1d', 'l2', 'l3': {'size', 'ways', 'line', "
          "'sharing'}, 'source': 'cpuid' | 'sysfs' | 'sysctl' | 'default'}; sizes in bytes, 0 if unknown.");
    m.def("empty_aligned", &empty_aligned, py::arg("shape"), py::arg("dtype"),
          "An uninitialised C-contiguous array for buffers the kernels write into: like the "
          "kernels' own outputs, its data starts on a 64-byte cache line when it holds 64 KiB "
          "or more (smaller ones keep numpy's allocator). shape: an int, or a tuple or list of "
          "ints, none negative.");
    // The threshold itself, so that tests and tools need not repeat it.
    m.attr("ALIGNED_MIN_BYTES") = kAlignedMinBytes;
    m.def("block_sizes", &block_sizes, py::arg("dtype"),
          "The active kernel set's GEMM blocks for float32 or float64: {'mr', 'nr', 'kc', 'nc', 'mc', "
          "'kc_limit'}.");
    m.def("blocking_source", &matgrad::blocking_source,
          "Where the blocks came from: 'derived', 'fallback' or 'override'.");
    m.def("set_blocking", &matgrad::set_blocking, py::arg("kc"), py::arg("nc"), py::arg("mc"),
          "Override kc, nc, mc for both dtypes (0 keeps the derived value).");
    m.def("fma_peak", &fma_peak, py::arg("isa"), py::arg("dtype"), py::arg("threads") = 1,
          py::arg("seconds") = 0.2,
          "Measured FMA peak of a kernel set in GFLOP/s, summed over `threads` threads.");
    bind_conv(m);
}
