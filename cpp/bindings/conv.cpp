// Bindings of the convolution and pooling kernels: validate, take pointers,
// release the GIL, call. No math here.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>

#include "aligned_arrays.hpp"
#include "checks.hpp"
#include "matgrad/matgrad.hpp"

namespace py = pybind11;
using namespace matgrad_bindings;

namespace {

py::array require_4d(const char* fn, const char* name, const py::handle& obj, const char* layout) {
    py::array arr = require_ndarray(fn, name, obj);
    if (arr.ndim() != 4)
        fail_value(std::string(fn) + ": " + name + " must be 4-D " + layout + ", got " +
                   std::to_string(arr.ndim()) + "-D array of shape " + shape_str(arr));
    return arr;
}

constexpr int64_t kMaxSize = int64_t{1} << 31;  // for strides, paddings and windows (ConvShape::valid)

int64_t require_positive(const char* fn, const char* name, int64_t v) {
    if (v < 1) fail_value(std::string(fn) + ": " + name + " must be >= 1, got " + std::to_string(v));
    if (v >= kMaxSize)
        fail_value(std::string(fn) + ": " + name + " must be < 2**31, got " + std::to_string(v));
    return v;
}

// (n, c, h, w) from a Python sequence of 4 ints.
Shape require_image_shape(const char* fn, const py::handle& obj) {
    Shape s;
    try {
        for (const py::handle item : obj) s.push_back(item.cast<py::ssize_t>());
    } catch (const py::cast_error&) {
        fail_type(std::string(fn) + ": x_shape must be a tuple of 4 ints (N, C, H, W)");
    }
    if (s.size() != 4 || s[0] < 0 || s[1] < 1 || s[2] < 1 || s[3] < 1)
        fail_value(std::string(fn) + ": x_shape must be 4 sizes (N, C, H, W) with N >= 0 and the "
                   "others >= 1, got " + shape_str(s));
    return s;
}

matgrad::ConvShape conv_shape(const char* fn, const Shape& xs, const Shape& ws, int64_t stride,
                              int64_t pad) {
    if (xs[1] != ws[1])
        fail_value(std::string(fn) + ": x has " + std::to_string(xs[1]) + " channels but w of shape " +
                   shape_str(ws) + " expects " + std::to_string(ws[1]));
    require_positive(fn, "stride", stride);
    if (pad < 0) fail_value(std::string(fn) + ": padding must be >= 0, got " + std::to_string(pad));
    if (pad >= kMaxSize)
        fail_value(std::string(fn) + ": padding must be < 2**31, got " + std::to_string(pad));
    matgrad::ConvShape s;
    s.n = xs[0], s.c = xs[1], s.h = xs[2], s.w = xs[3];
    s.f = ws[0], s.kh = ws[2], s.kw = ws[3], s.stride = stride, s.pad = pad;
    if (s.f < 1 || s.kh < 1 || s.kw < 1)
        fail_value(std::string(fn) + ": w of shape " + shape_str(ws) + " has an empty dimension");
    if (s.kh > s.h + 2 * pad || s.kw > s.w + 2 * pad)
        fail_value(std::string(fn) + ": kernel " + std::to_string(s.kh) + "x" + std::to_string(s.kw) +
                   " (w of shape " + shape_str(ws) + ") is larger than the padded input " +
                   std::to_string(s.h + 2 * pad) + "x" + std::to_string(s.w + 2 * pad) +
                   " (x of shape " + shape_str(xs) + ", padding " + std::to_string(pad) + ")");
    if (!s.valid())
        fail_value(std::string(fn) + ": x of shape " + shape_str(xs) + " with w of shape " + shape_str(ws) +
                   ", stride " + std::to_string(stride) + " and padding " + std::to_string(pad) +
                   ": an array of this convolution would have more than 2**63 elements");
    return s;
}

Shape cols_shape(const matgrad::ConvShape& s) { return Shape{s.n, s.col_rows(), s.col_cols()}; }

// A work or output array given by the caller: exactly the right one, or an error.
py::array given_or_new(const char* fn, const char* name, const py::handle& obj, const py::array& like,
                       const Shape& shape, std::initializer_list<const py::array*> inputs) {
    if (obj.is_none()) return new_aligned_array(like.dtype(), shape);
    py::array out = check_out(fn, name, obj, like, shape);
    for (const py::array* in : inputs)
        if (in && overlaps(out, *in)) fail_value(std::string(fn) + ": " + name + " overlaps an input");
    return out;
}

py::tuple conv2d_forward(const py::handle& x_obj, const py::handle& w_obj, const py::handle& b_obj,
                         int64_t stride, int64_t padding, bool relu, const py::handle& cols_obj,
                         const py::handle& out_obj) {
    const char* fn = "conv2d_forward";
    py::array x = require_4d(fn, "x", x_obj, "(N, C, H, W)");
    py::array w = require_4d(fn, "w", w_obj, "(F, C, KH, KW)");
    const Dtype dt = require_float(fn, "x", x);
    require_float(fn, "w", w);
    require_same_dtype(fn, "x", x, "w", w);
    const matgrad::ConvShape s = conv_shape(fn, shape_of(x), shape_of(w), stride, padding);
    std::optional<py::array> b;
    if (!b_obj.is_none()) {
        b = require_ndarray(fn, "b", b_obj);
        require_float(fn, "b", *b);
        require_same_dtype(fn, "x", x, "b", *b);
        require_shape(fn, "b", *b, Shape{s.f}, "(one bias per filter)");
        b = contiguous(*b);
    }
    x = contiguous(x);
    w = contiguous(w);
    const bool uses_cols = matgrad::conv_uses_columns(s);
    if (!uses_cols && !cols_obj.is_none())
        fail_value(std::string(fn) + ": this convolution (stride 1, x of shape " + shape_str(shape_of(x)) +
                   ", w of shape " + shape_str(shape_of(w)) + ") runs without im2col columns "
                   "(conv_uses_columns is False): pass cols=None");
    std::optional<py::array> cols;
    if (uses_cols) cols = given_or_new(fn, "cols", cols_obj, x, cols_shape(s), {&x, &w, b ? &*b : nullptr});
    py::array y = given_or_new(fn, "out", out_obj, x, Shape{s.n, s.f, s.out_h(), s.out_w()},
                               {&x, &w, b ? &*b : nullptr, cols ? &*cols : nullptr});
    const void *xp = x.data(), *wp = w.data(), *bp = b ? b->data() : nullptr;
    void *cp = cols ? cols->mutable_data() : nullptr, *yp = y.mutable_data();
    {
        GilReleaseFor release(s.n * s.f * s.col_rows() * s.col_cols());
        with_element_type(dt, [&](auto zero) {
            using T = decltype(zero);
            matgrad::conv2d_forward(s, static_cast<const T*>(xp), static_cast<const T*>(wp),
                                    static_cast<const T*>(bp), relu, static_cast<T*>(cp),
                                    static_cast<T*>(yp));
        });
    }
    return py::make_tuple(y, cols ? py::object(*cols) : py::object(py::none()));
}

py::tuple conv2d_backward(const py::handle& dy_obj, const py::handle& cols_obj,
                          const py::handle& w_obj, const py::handle& x_shape_obj, int64_t stride,
                          int64_t padding, const py::handle& y_obj, bool relu, bool need_dx,
                          bool need_dw, bool need_db, const py::handle& dx_obj,
                          const py::handle& dw_obj, const py::handle& db_obj, bool accumulate_dx,
                          bool accumulate_dw, bool accumulate_db, const py::handle& x_obj) {
    const char* fn = "conv2d_backward";
    py::array w = require_4d(fn, "w", w_obj, "(F, C, KH, KW)");
    const Dtype dt = require_float(fn, "w", w);
    const Shape xs = require_image_shape(fn, x_shape_obj);
    const matgrad::ConvShape s = conv_shape(fn, xs, shape_of(w), stride, padding);
    const Shape ys{s.n, s.f, s.out_h(), s.out_w()};
    py::array dy = require_ndarray(fn, "grad_y", dy_obj);
    require_float(fn, "grad_y", dy);
    require_same_dtype(fn, "w", w, "grad_y", dy);
    require_shape(fn, "grad_y", dy, ys, "(the shape of the forward output)");
    // The columns scheme reads the forward's columns; the implicit one reads x again
    // (for dw). x is checked whenever it is given, read only where needed.
    const bool uses_cols = matgrad::conv_uses_columns(s);
    std::optional<py::array> cols, x;
    if (!x_obj.is_none()) {
        x = require_ndarray(fn, "x", x_obj);
        require_same_dtype(fn, "w", w, "x", *x);
        require_shape(fn, "x", *x, xs, "(x_shape)");
    }
    if (uses_cols) {
        if (cols_obj.is_none())
            fail_value(std::string(fn) + ": this convolution needs the forward's columns: cols is None");
        cols = require_ndarray(fn, "cols", cols_obj);
        require_same_dtype(fn, "w", w, "cols", *cols);
        require_shape(fn, "cols", *cols, cols_shape(s), "(the forward's columns)");
        cols = contiguous(*cols);
    } else {
        if (!cols_obj.is_none())
            fail_value(std::string(fn) + ": this convolution (stride 1) has no columns (conv_uses_columns is "
                       "False): pass cols=None and x");
        if (need_dw && !x)
            fail_value(std::string(fn) + ": this convolution (stride 1) reads the forward's input for dw: "
                       "pass x");
    }
    if (x && need_dw && !uses_cols)
        x = contiguous(*x);
    else
        x.reset();  // checked, not read
    std::optional<py::array> y;
    if (relu) {
        if (y_obj.is_none()) fail_value(std::string(fn) + ": relu=True needs y, the forward output");
        y = require_ndarray(fn, "y", y_obj);
        require_same_dtype(fn, "w", w, "y", *y);
        require_shape(fn, "y", *y, ys, "(the forward output)");
        y = contiguous(*y);
    } else if (!y_obj.is_none()) {
        fail_value(std::string(fn) + ": y is only used with relu=True");
    }
    dy = contiguous(dy);
    w = contiguous(w);
    const std::initializer_list<std::pair<const char*, const py::array*>> inputs{
        {"grad_y", &dy}, {"cols", cols ? &*cols : nullptr}, {"w", &w}, {"y", y ? &*y : nullptr},
        {"x", x ? &*x : nullptr}};
    GradOut gdx = grad_out(fn, "dx", need_dx, dx_obj, accumulate_dx, w, xs, inputs);
    GradOut gdw = grad_out(fn, "dw", need_dw, dw_obj, accumulate_dw, w, shape_of(w), inputs);
    GradOut gdb = grad_out(fn, "db", need_db, db_obj, accumulate_db, w, Shape{s.f}, inputs);
    const std::pair<const char*, const GradOut*> outs[] = {{"dx", &gdx}, {"dw", &gdw}, {"db", &gdb}};
    for (int i = 0; i < 3; ++i)
        for (int j = i + 1; j < 3; ++j)
            if (outs[i].second->array && outs[j].second->array &&
                overlaps(*outs[i].second->array, *outs[j].second->array))
                fail_value(std::string(fn) + ": " + outs[i].first + " and " + outs[j].first + " overlap");
    const void *dyp = dy.data(), *cp = cols ? cols->data() : nullptr, *wp = w.data(), *yp = y ? y->data() : nullptr;
    const void* xp = x ? x->data() : nullptr;
    void *dxp = gdx.data(), *dwp = gdw.data(), *dbp = gdb.data();
    {
        GilReleaseFor release(s.n * s.f * s.col_rows() * s.col_cols());
        with_element_type(dt, [&](auto zero) {
            using T = decltype(zero);
            matgrad::ConvGrads<T> g;
            g.dx = static_cast<T*>(dxp), g.dw = static_cast<T*>(dwp), g.db = static_cast<T*>(dbp);
            g.accumulate_dx = gdx.accumulate, g.accumulate_dw = gdw.accumulate, g.accumulate_db = gdb.accumulate;
            matgrad::conv2d_backward(s, static_cast<const T*>(dyp), static_cast<const T*>(yp), relu,
                                     static_cast<const T*>(xp), static_cast<const T*>(cp),
                                     static_cast<const T*>(wp), g);
        });
    }
    return py::make_tuple(gdx.result(), gdw.result(), gdb.result());
}

matgrad::ConvShape window_shape(const char* fn, const Shape& xs, int64_t kh, int64_t kw,
                                int64_t stride, int64_t padding) {
    require_positive(fn, "kh", kh);
    require_positive(fn, "kw", kw);
    return conv_shape(fn, xs, Shape{1, xs[1], kh, kw}, stride, padding);
}

py::array im2col(const py::handle& x_obj, int64_t kh, int64_t kw, int64_t stride, int64_t padding) {
    const char* fn = "im2col";
    py::array x = require_4d(fn, "x", x_obj, "(N, C, H, W)");
    const Dtype dt = require_float(fn, "x", x);
    const matgrad::ConvShape s = window_shape(fn, shape_of(x), kh, kw, stride, padding);
    x = contiguous(x);
    py::array cols = new_aligned_array(x.dtype(), cols_shape(s));
    const void* xp = x.data();
    void* cp = cols.mutable_data();
    {
        GilReleaseFor release(cols.size());
        with_element_type(dt, [&](auto zero) {
            using T = decltype(zero);
            matgrad::im2col(s, static_cast<const T*>(xp), static_cast<T*>(cp));
        });
    }
    return cols;
}

py::array col2im(const py::handle& cols_obj, const py::handle& x_shape_obj, int64_t kh, int64_t kw,
                 int64_t stride, int64_t padding) {
    const char* fn = "col2im";
    const Shape xs = require_image_shape(fn, x_shape_obj);
    const matgrad::ConvShape s = window_shape(fn, xs, kh, kw, stride, padding);
    py::array cols = require_ndarray(fn, "cols", cols_obj);
    const Dtype dt = require_float(fn, "cols", cols);
    require_shape(fn, "cols", cols, cols_shape(s), "(N, C*KH*KW, OH*OW) for x_shape and the window");
    cols = contiguous(cols);
    py::array dx = new_aligned_array(cols.dtype(), xs);
    const void* cp = cols.data();
    void* dp = dx.mutable_data();
    {
        GilReleaseFor release(cols.size());
        with_element_type(dt, [&](auto zero) {
            using T = decltype(zero);
            matgrad::col2im(s, static_cast<const T*>(cp), static_cast<T*>(dp), false);
        });
    }
    return dx;
}

// stride: an int, or a pair (down, across).
matgrad::PoolShape pool_shape(const char* fn, const Shape& xs, int64_t kh, int64_t kw,
                              const py::handle& stride) {
    require_positive(fn, "kh", kh);
    require_positive(fn, "kw", kw);
    int64_t sh = 0, sw = 0;
    try {
        if (py::isinstance<py::tuple>(stride) || py::isinstance<py::list>(stride)) {
            py::sequence seq = py::reinterpret_borrow<py::sequence>(stride);
            if (seq.size() != 2) throw py::cast_error();
            sh = seq[0].cast<int64_t>(), sw = seq[1].cast<int64_t>();
        } else {
            sh = sw = stride.cast<int64_t>();
        }
    } catch (const py::cast_error&) {
        fail_type(std::string(fn) + ": stride must be an int or a pair of ints");
    }
    require_positive(fn, "stride", sh);
    require_positive(fn, "stride", sw);
    matgrad::PoolShape s;
    s.n = xs[0], s.c = xs[1], s.h = xs[2], s.w = xs[3], s.kh = kh, s.kw = kw, s.stride_h = sh, s.stride_w = sw;
    if (kh > s.h || kw > s.w)
        fail_value(std::string(fn) + ": window " + std::to_string(kh) + "x" + std::to_string(kw) +
                   " is larger than the input " + std::to_string(s.h) + "x" + std::to_string(s.w) +
                   " (x of shape " + shape_str(xs) + ")");
    if (!s.valid()) fail_value(std::string(fn) + ": x of shape " + shape_str(xs) + " is too large");
    return s;
}

Shape pooled_shape(const matgrad::PoolShape& s) { return Shape{s.n, s.c, s.out_h(), s.out_w()}; }

py::object pool_forward(const py::handle& x_obj, int64_t kh, int64_t kw, const py::handle& stride, bool is_max,
                        const py::handle& out_obj, const py::handle& argmax_obj) {
    const char* fn = is_max ? "max_pool2d_forward" : "avg_pool2d_forward";
    py::array x = require_4d(fn, "x", x_obj, "(N, C, H, W)");
    const Dtype dt = require_float(fn, "x", x);
    const matgrad::PoolShape s = pool_shape(fn, shape_of(x), kh, kw, stride);
    x = contiguous(x);
    py::array y = given_or_new(fn, "out", out_obj, x, pooled_shape(s), {&x});
    std::optional<py::array> argmax;
    if (is_max) {
        const py::array int64_like = py::array_t<int64_t>(Shape{0});
        argmax = given_or_new(fn, "argmax_out", argmax_obj, int64_like, pooled_shape(s), {&x, &y});
    }
    const void* xp = x.data();
    void* yp = y.mutable_data();
    int64_t* ap = argmax ? static_cast<int64_t*>(argmax->mutable_data()) : nullptr;
    {
        GilReleaseFor release(y.size() * kh * kw);
        with_element_type(dt, [&](auto zero) {
            using T = decltype(zero);
            if (is_max)
                matgrad::max_pool2d_forward(s, static_cast<const T*>(xp), static_cast<T*>(yp), ap);
            else
                matgrad::avg_pool2d_forward(s, static_cast<const T*>(xp), static_cast<T*>(yp));
        });
    }
    if (is_max) return py::make_tuple(y, *argmax);
    return std::move(y);
}

py::array pool_backward(const char* fn, const py::handle& dy_obj, const py::handle* argmax_obj,
                        const py::handle& x_shape_obj, int64_t kh, int64_t kw, const py::handle& stride,
                        const py::handle& out_obj, bool accumulate) {
    const Shape xs = require_image_shape(fn, x_shape_obj);
    const matgrad::PoolShape s = pool_shape(fn, xs, kh, kw, stride);
    py::array dy = require_ndarray(fn, "grad_y", dy_obj);
    const Dtype dt = require_float(fn, "grad_y", dy);
    require_shape(fn, "grad_y", dy, pooled_shape(s), "(the shape of the forward output)");
    dy = contiguous(dy);
    std::optional<py::array_t<int64_t>> argmax;
    std::optional<py::array> argmax_given;
    if (argmax_obj) {
        py::array a = require_ndarray(fn, "argmax", *argmax_obj);
        argmax_given = a;
        if (!a.dtype().equal(py::dtype::of<int64_t>()))
            fail_type(std::string(fn) + ": argmax has dtype " + dtype_str(a) + "; expected int64");
        require_shape(fn, "argmax", a, pooled_shape(s), "(the forward's argmax)");
        // A private copy, validated: the kernel writes dx at these indices, so neither
        // another thread (the GIL is released) nor a dx overlapping them may change them.
        argmax.emplace(pooled_shape(s));
        std::memcpy(argmax->mutable_data(), py::array_t<int64_t, py::array::c_style>::ensure(a).data(),
                    sizeof(int64_t) * argmax->size());
        const int64_t plane = s.h * s.w, count = argmax->size();
        const int64_t* ap = argmax->data();
        for (int64_t i = 0; i < count; ++i)
            if (ap[i] < 0 || ap[i] >= plane)
                fail_value(std::string(fn) + ": argmax holds " + std::to_string(ap[i]) +
                           ", outside the input plane of " + std::to_string(plane) + " pixels");
    }
    py::array dx;
    if (out_obj.is_none()) {
        dx = new_aligned_array(dy.dtype(), xs);
        accumulate = false;
    } else {
        dx = check_out(fn, "out", out_obj, dy, xs);
        if (overlaps(dx, dy)) fail_value(std::string(fn) + ": out overlaps grad_y");
        if (argmax_given && overlaps(dx, *argmax_given)) fail_value(std::string(fn) + ": out overlaps argmax");
    }
    const void* dyp = dy.data();
    const int64_t* ap = argmax ? argmax->data() : nullptr;
    void* dp = dx.mutable_data();
    {
        GilReleaseFor release(dx.size() + dy.size() * (argmax ? 1 : kh * kw));
        with_element_type(dt, [&](auto zero) {
            using T = decltype(zero);
            if (ap)
                matgrad::max_pool2d_backward(s, static_cast<const T*>(dyp), ap, static_cast<T*>(dp), accumulate);
            else
                matgrad::avg_pool2d_backward(s, static_cast<const T*>(dyp), static_cast<T*>(dp), accumulate);
        });
    }
    return dx;
}

}  // namespace

void bind_conv(py::module_& m) {
    m.def("conv2d_forward", &conv2d_forward, py::arg("x"), py::arg("w"), py::arg("b") = py::none(),
          py::arg("stride") = 1, py::arg("padding") = 0, py::arg("relu") = false,
          py::arg("cols") = py::none(), py::arg("out") = py::none(),
          R"doc(2-D convolution (cross-correlation, as PyTorch): returns (y, cols).

x: (N, C, H, W), w: (F, C, KH, KW), b: (F,) or None, float32 or float64.
y: (N, F, OH, OW) with OH = 1 + (H + 2*padding - KH) // stride (likewise OW),
then max(0, .) when relu. cols: where conv_uses_columns says so, the im2col
columns (N, C*KH*KW, OH*OW) that the backward needs; pass a C-contiguous array
of that shape and dtype to have them written there (a buffer reused across
steps), else one is allocated. Other shapes (stride 1) run without columns:
cols must be None and None is returned; their backward reads x instead.
out: likewise for y, (N, F, OH, OW) in x's dtype, overwritten (never read).)doc");
    m.def("conv2d_backward", &conv2d_backward, py::arg("grad_y"), py::arg("cols"), py::arg("w"),
          py::arg("x_shape"), py::arg("stride") = 1, py::arg("padding") = 0,
          py::arg("y") = py::none(), py::arg("relu") = false, py::arg("need_dx") = true,
          py::arg("need_dw") = true, py::arg("need_db") = true, py::arg("dx") = py::none(),
          py::arg("dw") = py::none(), py::arg("db") = py::none(), py::arg("accumulate_dx") = true,
          py::arg("accumulate_dw") = true, py::arg("accumulate_db") = true, py::arg("x") = py::none(),
          R"doc(Backward of conv2d_forward: returns (dx, dw, db), None where not needed.

g = grad_y (masked by y > 0 when relu); dw = sum over images of g_i @ cols_i.T,
dx = col2im(w.T @ g_i) per image, db = g summed over images and pixels. cols:
the forward's columns where conv_uses_columns says so; other shapes take
cols=None and x, the forward's input (read for dw). Arrays passed as dx/dw/db
are added into when its accumulate_* flag is set (the default), else
overwritten (never read).)doc");
    m.def(
        "conv_uses_columns",
        [](const py::handle& x_shape, const py::handle& w_shape, int64_t stride, int64_t padding) {
            const char* fn = "conv_uses_columns";
            const Shape xs = require_image_shape(fn, x_shape);
            Shape ws;
            try {
                for (const py::handle item : w_shape) ws.push_back(item.cast<py::ssize_t>());
            } catch (const py::cast_error&) {
                fail_type(std::string(fn) + ": w_shape must be a tuple of 4 ints (F, C, KH, KW)");
            }
            if (ws.size() != 4)
                fail_value(std::string(fn) + ": w_shape must be 4 sizes (F, C, KH, KW), got " + shape_str(ws));
            return matgrad::conv_uses_columns(conv_shape(fn, xs, ws, stride, padding));
        },
        py::arg("x_shape"), py::arg("w_shape"), py::arg("stride") = 1, py::arg("padding") = 0,
        "Whether conv2d_forward writes (and conv2d_backward reads) im2col columns for this convolution. "
        "Stride-1 convolutions with padding below the kernel size, padded rows at most 5/4 of the output "
        "rows, a kernel larger than 1x1 and 8 to 64 input channels do not: they run as implicit GEMMs over "
        "the padded input.");
    m.def("im2col", &im2col, py::arg("x"), py::arg("kh"), py::arg("kw"), py::arg("stride") = 1,
          py::arg("padding") = 0,
          "The columns of x (N, C, H, W) for a KH x KW window: (N, C*KH*KW, OH*OW), 0 in the padding.");
    m.def("col2im", &col2im, py::arg("cols"), py::arg("x_shape"), py::arg("kh"), py::arg("kw"),
          py::arg("stride") = 1, py::arg("padding") = 0,
          "The adjoint of im2col: each column entry added back to its input pixel; returns (N, C, H, W).");
    m.def("max_pool2d_forward",
          [](const py::handle& x, int64_t kh, int64_t kw, const py::handle& stride, const py::handle& out,
             const py::handle& argmax_out) {
              return pool_forward(x, kh, kw, stride, true, out, argmax_out);
          },
          py::arg("x"), py::arg("kh"), py::arg("kw"), py::arg("stride"), py::arg("out") = py::none(),
          py::arg("argmax_out") = py::none(),
          "Max pooling of x (N, C, H, W), stride an int or (down, across): returns (y, argmax), argmax the int64 "
          "index in the plane of each maximum. out / argmax_out: C-contiguous arrays of y's shape (x's dtype, "
          "int64) to write them into (overwritten, never read), else they are allocated.");
    m.def("max_pool2d_backward",
          [](const py::handle& dy, const py::handle& argmax, const py::handle& x_shape, int64_t kh,
             int64_t kw, const py::handle& stride, const py::handle& out, bool accumulate) {
              return pool_backward("max_pool2d_backward", dy, &argmax, x_shape, kh, kw, stride, out, accumulate);
          },
          py::arg("grad_y"), py::arg("argmax"), py::arg("x_shape"), py::arg("kh"), py::arg("kw"),
          py::arg("stride"), py::arg("out") = py::none(), py::arg("accumulate") = false,
          "dL/dx of max pooling: each grad_y routed to its argmax (summed where windows overlap).");
    m.def("avg_pool2d_forward",
          [](const py::handle& x, int64_t kh, int64_t kw, const py::handle& stride) {
              return pool_forward(x, kh, kw, stride, false, py::none(), py::none());
          },
          py::arg("x"), py::arg("kh"), py::arg("kw"), py::arg("stride"),
          "Average pooling of x (N, C, H, W).");
    m.def("avg_pool2d_backward",
          [](const py::handle& dy, const py::handle& x_shape, int64_t kh, int64_t kw,
             const py::handle& stride, const py::handle& out, bool accumulate) {
              return pool_backward("avg_pool2d_backward", dy, nullptr, x_shape, kh, kw, stride, out, accumulate);
          },
          py::arg("grad_y"), py::arg("x_shape"), py::arg("kh"), py::arg("kw"), py::arg("stride"),
          py::arg("out") = py::none(), py::arg("accumulate") = false,
          "dL/dx of average pooling: grad_y / (KH*KW) spread over each window.");
}
