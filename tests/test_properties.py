"""Property tests (hypothesis): the kernels and the autograd layer against references, on inputs
that hypothesis draws and shrinks, under every ISA path (the ``isa`` fixture).

- GEMM: sizes 0..70 (crossing the register-tile edges mr 2/6/12 and nr 8/12/16/24/32 of every ISA),
  the four transpose cases, both dtypes, C order, Fortran order, strided, reversed and broadcast
  (zero-stride) views, accumulate on and off, with NaN/±Inf sprinkled in; against a float64
  reference with a tolerance scaled by k.
- ReLU forward and backward over any shape (0-d to 4-d, empty included) with NaN, ±Inf, -0.0 and
  subnormals, contiguous or not, in place or not: exact, bit for bit. The same inputs for axpy
  (y += alpha·x, the optimizers' update), within one rounding of numpy's result.
- Autograd: random small graphs (matmul, linear, add/sub/mul with broadcasting, relu, sum, mean,
  transpose, reshape, the losses) checked by ``mg.gradcheck`` in float64.

Budget: bounded ``max_examples`` and no deadline (the ISA loop runs every test three times); the
file takes a few seconds. ``database=None``: nothing is written to .hypothesis/.
"""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import matgrad as mg
from matgrad import kernels
from conftest import matrix_with_layout

# When a hypothesis test fails, its pytest plugin imports hypothesis.extra._patching (libcst) to
# write a patch; in this environment that import warns (mypy_extensions.TypedDict is deprecated),
# and with filterwarnings = error the failure turns into a pytest INTERNALERROR that hides it.
# Importing it here, warnings silenced, keeps a failure a readable failure.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import hypothesis.extra._patching  # noqa: F401
    except ImportError:
        pass

DTYPES = (np.float32, np.float64)
LAYOUTS = ("C", "F", "strided", "reversed", "broadcast")


def _settings(max_examples):
    return settings(max_examples=max_examples, deadline=None, database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


# --------------------------------------------------------------------------------------------
# GEMM
# --------------------------------------------------------------------------------------------




def _with_specials(arr, specials):
    """``arr`` (a fresh array of ours) with non-finite values written at (i, j) spots."""
    if not specials or arr.size == 0:
        return arr
    if not arr.flags.writeable:  # broadcast: materialise, keeping a non-contiguous layout
        arr = np.array(arr, order="F")
    rows, cols = arr.shape
    for i, j, v in specials:
        arr[i % rows, j % cols] = v
    return arr


@st.composite
def gemm_cases(draw):
    special = st.tuples(st.integers(0, 10**6), st.integers(0, 10**6),
                        st.sampled_from((np.nan, np.inf, -np.inf)))
    return {
        "m": draw(st.integers(0, 70)),
        "n": draw(st.integers(0, 70)),
        "k": draw(st.integers(0, 70)),
        "layout_a": draw(st.sampled_from(LAYOUTS)),
        "layout_b": draw(st.sampled_from(LAYOUTS)),
        "accumulate": draw(st.booleans()),
        "seed": draw(st.integers(0, 2**32 - 1)),
        # mostly finite; sometimes a few NaN/±Inf in a or b (they must propagate)
        "specials_a": draw(st.lists(special, max_size=2) | st.just([])),
        "specials_b": draw(st.lists(special, max_size=2) | st.just([])),
    }


def _exact_reference(opa, opb):
    """op(a)·op(b) in float64 with IEEE propagation of NaN/Inf (no BLAS shortcuts)."""
    with np.errstate(invalid="ignore", over="ignore"):
        return (opa[:, :, None] * opb[None, :, :]).sum(axis=1)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (False, True), (True, False), (True, True)],
                         ids=("NN", "NT", "TN", "TT"))
@_settings(max_examples=60)
@given(case=gemm_cases())
def test_gemm_matches_float64_reference(isa, trans_a, trans_b, dtype, case):
    m, n, k = case["m"], case["n"], case["k"]
    rng = np.random.default_rng(case["seed"])
    a = matrix_with_layout(rng, k if trans_a else m, m if trans_a else k, dtype, case["layout_a"])
    b = matrix_with_layout(rng, n if trans_b else k, k if trans_b else n, dtype, case["layout_b"])
    a = _with_specials(a, case["specials_a"])
    b = _with_specials(b, case["specials_b"])
    a_before, b_before = a.copy(), b.copy()

    accumulate = case["accumulate"]
    if accumulate:
        c0 = rng.standard_normal((m, n)).astype(dtype)
        out = c0.copy()
    else:
        c0 = np.zeros((m, n))
        out = np.full((m, n), np.nan, dtype)  # never read with accumulate=False
    got = kernels.matmul(a, b, trans_a=trans_a, trans_b=trans_b, out=out, accumulate=accumulate)
    assert got is out

    opa = (a.T if trans_a else a).astype(np.float64)
    opb = (b.T if trans_b else b).astype(np.float64)
    if case["specials_a"] or case["specials_b"]:
        ref = _exact_reference(opa, opb)
        with np.errstate(invalid="ignore"):
            ref = ref + c0
    else:
        ref = opa @ opb + c0
    finite = np.isfinite(ref)
    with np.errstate(invalid="ignore"):
        abs_prod = np.abs(np.where(np.isfinite(opa), opa, 0)) @ np.abs(np.where(np.isfinite(opb), opb, 0))
    eps = np.finfo(dtype).eps
    # rounding error of a k-term dot product (plus the accumulated C) is at most ~k·eps·Σ|a||b|
    tol = 2 * (k + 1) * eps * (abs_prod + np.abs(c0)) + np.finfo(dtype).tiny
    c = got.astype(np.float64)
    assert np.all(np.isfinite(c[finite])), "a finite reference gave a non-finite result"
    with np.errstate(invalid="ignore"):
        err = np.abs(c - ref)  # inf - inf: NaN, at non-finite spots only (checked below)
    assert np.all(err[finite] <= tol[finite]), f"max error {err[finite].max()} over tolerance"
    # non-finite results: the same NaN positions and the same infinities
    assert np.array_equal(np.isnan(c), np.isnan(ref))
    inf = np.isinf(ref)
    assert np.array_equal(c[inf], ref[inf])
    np.testing.assert_array_equal(a, a_before)  # inputs untouched
    np.testing.assert_array_equal(b, b_before)


# --------------------------------------------------------------------------------------------
# ReLU
# --------------------------------------------------------------------------------------------

_UINT = {np.dtype(np.float32): np.uint32, np.dtype(np.float64): np.uint64}


def _any_floats(dtype):
    return hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=10),
                      elements=st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True,
                                         width=np.dtype(dtype).itemsize * 8))


def _view(arr, how):
    """``arr`` itself, or a non-contiguous view of the same values (reversed or transposed)."""
    if how == "reversed" and arr.ndim:
        return arr[::-1]
    if how == "transposed":
        return arr.T.copy(order="C").T  # same values, Fortran-ordered storage (0-d stays 0-d)
    return arr


def _assert_bits_equal(got, expected):
    """Identical bit patterns, NaN payloads aside (any NaN matches any NaN)."""
    assert got.shape == expected.shape and got.dtype == expected.dtype
    nan = np.isnan(expected)
    assert np.array_equal(np.isnan(got), nan)
    u = _UINT[got.dtype]
    assert np.array_equal(got[~nan].view(u), expected[~nan].view(u))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@_settings(max_examples=100)
@given(data=st.data())
def test_relu_forward_any_shape_with_nan_and_inf(isa, dtype, data):
    x = data.draw(_any_floats(dtype), label="x")
    x = _view(x, data.draw(st.sampled_from(("as is", "reversed", "transposed")), label="view"))
    target = data.draw(st.sampled_from(("new", "out", "in place")), label="target")
    expected = np.where(x < 0, np.zeros((), dtype), x)  # NaN < 0 is False: NaN passes; -0.0 stays
    before = x.copy()
    if target == "new":
        got = kernels.relu_forward(x)
    elif target == "out":
        out = np.full(x.shape, np.nan, dtype)
        got = kernels.relu_forward(x, out=out)
        assert got is out
    else:
        x = x.copy(order="C")  # (np.ascontiguousarray would make a 0-d x 1-d)
        got = kernels.relu_forward(x, out=x)
        assert got is x
    _assert_bits_equal(got, expected)
    if target != "in place":
        _assert_bits_equal(x, before)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@_settings(max_examples=100)
@given(data=st.data())
def test_relu_backward_any_shape_with_nan_and_inf(isa, dtype, data):
    x = data.draw(_any_floats(dtype), label="x")
    dy = data.draw(hnp.arrays(dtype, x.shape, elements=st.floats(width=np.dtype(dtype).itemsize * 8)),
                   label="grad_y")
    how = data.draw(st.sampled_from(("as is", "reversed", "transposed")), label="view")
    x, dy = _view(x, how), _view(dy, how)
    in_place = data.draw(st.booleans(), label="in place")
    expected = np.where(x > 0, dy, np.zeros((), dtype))  # NaN > 0 is False: a NaN x gives 0
    x_before = x.copy()
    if in_place:
        dy = dy.copy(order="C")
        got = kernels.relu_backward(dy, x, out=dy)
        assert got is dy
    else:
        dy_before = dy.copy()
        got = kernels.relu_backward(dy, x)
        _assert_bits_equal(dy, dy_before)
    _assert_bits_equal(got, expected)
    _assert_bits_equal(x, x_before)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@_settings(max_examples=100)
@given(data=st.data())
def test_axpy_any_shape_with_nan_and_inf(isa, dtype, data):
    width = np.dtype(dtype).itemsize * 8
    x = data.draw(_any_floats(dtype), label="x")
    y = data.draw(hnp.arrays(dtype, x.shape, elements=st.floats(width=width)), label="y")
    alpha = data.draw(st.floats(-1e3, 1e3, width=width), label="alpha")
    x = _view(x, data.draw(st.sampled_from(("as is", "reversed", "transposed")), label="view"))
    same = data.draw(st.booleans(), label="y is x")
    if same:
        x = y
    x_before = x.copy()
    with np.errstate(all="ignore"):
        product = dtype(alpha) * x
        expected = y + product  # numpy: rounded product, then rounded sum
    assert kernels.axpy(alpha, x, y) is y
    # one fused multiply-add is allowed as well (a contracting compiler): 1 ulp of slack
    finite = np.isfinite(expected)
    assert np.array_equal(np.isnan(y), np.isnan(expected))
    assert np.array_equal(y[np.isinf(expected)], expected[np.isinf(expected)])
    with np.errstate(all="ignore"):
        slack = 2 * np.finfo(dtype).eps * (np.abs(expected) + np.abs(product)) + np.finfo(dtype).tiny
        assert np.all(np.abs(y - expected)[finite] <= slack[finite])
    if not same:
        _assert_bits_equal(x, x_before)


# --------------------------------------------------------------------------------------------
# autograd: random small graphs, checked by gradcheck in float64
# --------------------------------------------------------------------------------------------

# Each body op maps h (N, M) to a new (N, M) tensor; ``t`` holds the other inputs.
BODY_OPS = {
    "add_b": lambda h, t: h + t["b"],  # broadcasting, b's shape drawn below
    "b_sub": lambda h, t: t["b"] - h,
    "mul_b": lambda h, t: h * t["b"],
    "mul_v": lambda h, t: h * t["v"],
    "square": lambda h, t: h * h,  # one tensor used twice
    "relu": lambda h, t: h.relu(),
    "neg": lambda h, t: -h,
    "div": lambda h, t: h / 3.0,
    "matmul_w2": lambda h, t: h @ t["w2"],
    "transposes": lambda h, t: (t["w2"].T @ h.T).T,  # = h·w2 through transpose nodes
    "linear": lambda h, t: mg.linear(h, t["w2"], t["b2"]),
    "linear_relu": lambda h, t: mg.linear(h, t["w2"], t["b2"], relu=True),
    "reshape": lambda h, t: h.reshape(-1).reshape(h.shape),
    "center_rows": lambda h, t: h - h.mean(axis=1, keepdims=True),
    "scale_cols": lambda h, t: h * h.sum(axis=0, keepdims=True),
}

HEADS = {
    "sum": lambda h, t: h.sum(),
    "mean": lambda h, t: h.mean(),
    "sum_axis0": lambda h, t: h.sum(axis=0),  # non-scalar outputs: gradcheck draws dL/dy
    "mean_axis1": lambda h, t: mg.mean(h, axis=1),
    "identity": lambda h, t: h,
    "cross_entropy": lambda h, t: mg.cross_entropy(h, t["labels"]),
    "svm_loss": lambda h, t: mg.svm_loss(h, t["labels"]),
    "mse_const": lambda h, t: mg.mse_loss(h, t["target"]),
    "mse_tensor": lambda h, t: mg.mse_loss(h, t["v"]),
}

INPUTS = ("x", "w", "b", "v", "w2", "b2")
# Ops that raise the polynomial degree of the output in the inputs: chained, the loss reaches
# 1e6 and central differences lose more than gradcheck's atol to rounding (not a matgrad bug).
_SQUARING = {"square", "scale_cols"}


def _tame(body):
    """At most one squaring op per graph."""
    out, squared = [], False
    for op in body:
        if op in _SQUARING:
            if squared:
                continue
            squared = True
        out.append(op)
    return out


@st.composite
def graphs(draw):
    return {
        "n": draw(st.integers(1, 4)),
        "d": draw(st.integers(1, 4)),
        "m": draw(st.integers(1, 4)),
        "first": draw(st.sampled_from(("matmul", "linear", "linear_relu"))),
        "body": draw(st.lists(st.sampled_from(sorted(BODY_OPS)), min_size=0, max_size=4).map(_tame)),
        "head": draw(st.sampled_from(sorted(HEADS))),
        "b_shape": draw(st.sampled_from(("M", "1M", "N1", "NM", "scalar"))),
        "requires_grad": draw(st.lists(st.booleans(), min_size=len(INPUTS), max_size=len(INPUTS))
                              .map(lambda r: r if any(r) else [True, *r[1:]])),
        "seed": draw(st.integers(0, 2**32 - 1)),
    }


def _graph_inputs(g):
    n, d, m = g["n"], g["d"], g["m"]
    rng = np.random.default_rng(g["seed"])
    b_shape = {"M": (m,), "1M": (1, m), "N1": (n, 1), "NM": (n, m), "scalar": ()}[g["b_shape"]]
    shapes = {"x": (n, d), "w": (d, m), "b": b_shape, "v": (n, m), "w2": (m, m), "b2": (m,)}
    tensors = {name: mg.tensor(rng.standard_normal(shapes[name]), dtype=np.float64, requires_grad=r)
               for name, r in zip(INPUTS, g["requires_grad"])}
    consts = {"labels": rng.integers(0, m, size=n), "target": rng.standard_normal((n, m))}
    return tensors, consts


@_settings(max_examples=200)
@given(g=graphs())
def test_random_graphs_pass_gradcheck(isa, g):
    tensors, consts = _graph_inputs(g)

    def fn(*args):
        t = dict(zip(INPUTS, args))
        t.update(consts)
        if g["first"] == "matmul":
            h = t["x"] @ t["w"]
        else:  # the fused node (bias (M,) only; other shapes go through add)
            bias = t["b"] if t["b"].shape == (g["m"],) else None
            h = mg.linear(t["x"], t["w"], bias, relu=g["first"] == "linear_relu")
        for op in g["body"]:
            h = BODY_OPS[op](h, t)
        return HEADS[g["head"]](h, t)

    args = [tensors[name] for name in INPUTS]
    values = [a.data.copy() for a in args]
    assert mg.gradcheck(fn, *args)
    for a, v in zip(args, values):  # gradcheck restores the inputs exactly
        np.testing.assert_array_equal(a.data, v)
        assert a.grad is None
