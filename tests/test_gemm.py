"""GEMM (cpp/src/gemm.cpp, pack.cpp, kernels/*.cpp) against a float64 numpy reference."""

import numpy as np
import pytest

from matgrad import kernels
from conftest import matrix_with_layout

DTYPES = (np.float32, np.float64)

# (m, n, k): zero sizes, 1, small primes, the register and cache block edges of
# every ISA (mr 2/6/12, nr 8/12/16/24/32, kc 256/384, nc 384-768) plus and minus one,
# and a few hundred.
SHAPES = [
    (0, 5, 3), (5, 0, 3), (0, 0, 0),
    (1, 1, 1), (2, 3, 5), (7, 13, 11), (3, 1, 17),
    (4, 8, 255), (5, 9, 257), (6, 16, 256), (11, 31, 383), (12, 32, 384), (13, 33, 385),
    (25, 65, 129), (23, 47, 53), (3, 24, 40), (2, 49, 31), (97, 513, 19), (37, 769, 7), (300, 200, 129),
    # each path by shape (gemm.cpp's gemm_fused): small with B read in place, small with B
    # copied, skinny (m <= 128) with several N panels, skinny shape but one panel (packed)
    (16, 64, 64), (1, 3, 20000), (64, 200, 400), (100, 20, 500),
    # small past 64³: 32-64 rows with B read in place (blocking.hpp, takes_small_path)
    (64, 64, 64), (48, 64, 160),
    # streamed B: a few rows against a row-major B past a 2 MiB L2, to the path's most rows
    # (64 on AVX2, the lecture's batch; 40 on AVX-512); with B transposed, the
    # transposed-rows path
    (16, 2048, 600), (40, 2048, 600), (64, 2048, 600),
    # transposed rows for f64 at a few rows (f32 stays skinny there: its panels too empty)
    (3, 2048, 600),
    # the baseline's streamed-B (f32 to 16 rows, f64 to 12) and transposed-rows (f32 to 8)
    # paths
    (6, 2048, 600),
    # transposed rows with K in several spans (Aᵀ past half of a 2 MiB L2)
    (16, 64, 20000),
]
LAYOUTS = ("C", "F", "strided", "reversed")




def operands(rng, m, n, k, trans_a, trans_b, dtype, layout):
    a = matrix_with_layout(rng, k if trans_a else m, m if trans_a else k, dtype, layout)
    b = matrix_with_layout(rng, n if trans_b else k, k if trans_b else n, dtype, layout)
    return a, b


def reference(a, b, trans_a, trans_b):
    opa = (a.T if trans_a else a).astype(np.float64)
    opb = (b.T if trans_b else b).astype(np.float64)
    return opa @ opb, np.abs(opa) @ np.abs(opb)


def assert_close_to_reference(c, ref, abs_prod, k, dtype):
    # Rounding error of a k-term dot product is bounded by k·eps·Σ|a||b|.
    eps = np.finfo(dtype).eps
    tol = 2 * max(k, 1) * eps * abs_prod + np.finfo(dtype).tiny
    err = np.abs(c.astype(np.float64) - ref)
    assert c.shape == ref.shape
    assert np.all(err <= tol), f"max error {err.max()} exceeds tolerance at {np.unravel_index(np.argmax(err - tol), err.shape)}"


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("trans_b", (False, True), ids=("B", "Bt"))
@pytest.mark.parametrize("trans_a", (False, True), ids=("A", "At"))
@pytest.mark.parametrize("m,n,k", SHAPES, ids=lambda v: str(v))
def test_matches_reference_every_isa(isa, rng, m, n, k, trans_a, trans_b, dtype):
    a, b = operands(rng, m, n, k, trans_a, trans_b, dtype, "C")
    c = kernels.matmul(a, b, trans_a=trans_a, trans_b=trans_b)
    assert c.dtype == dtype and c.flags.c_contiguous
    assert_close_to_reference(c, *reference(a, b, trans_a, trans_b), k, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (False, True), (True, False), (True, True)])
@pytest.mark.parametrize("m,n,k", [(13, 33, 385), (64, 70, 90), (1, 40, 3)], ids=str)
def test_any_memory_layout(isa, rng, m, n, k, trans_a, trans_b, layout, dtype):
    a, b = operands(rng, m, n, k, trans_a, trans_b, dtype, layout)
    a_before, b_before = a.copy(), b.copy()
    c = kernels.matmul(a, b, trans_a=trans_a, trans_b=trans_b)
    assert_close_to_reference(c, *reference(a, b, trans_a, trans_b), k, dtype)
    np.testing.assert_array_equal(a, a_before)
    np.testing.assert_array_equal(b, b_before)


def test_transposed_views_equal_transpose_flags(rng):
    a = rng.standard_normal((70, 50)).astype(np.float32)
    b = rng.standard_normal((90, 50)).astype(np.float32)
    # a @ b.T two ways: a .T view of b, or the flag on b itself. Same kernel, same bits.
    np.testing.assert_array_equal(kernels.matmul(a, b.T), kernels.matmul(a, b, trans_b=True))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("m,n,k", [(13, 33, 385), (64, 100, 7), (5, 3, 0)], ids=str)
def test_accumulate_adds_into_out(isa, rng, m, n, k, dtype):
    a = rng.standard_normal((k, m)).astype(dtype)  # used transposed: dL/dw = xᵀ·dL/dy
    b = rng.standard_normal((k, n)).astype(dtype)
    out = rng.standard_normal((m, n)).astype(dtype)
    before = out.copy()
    result = kernels.matmul(a, b, trans_a=True, out=out, accumulate=True)
    assert result is out
    ref, abs_prod = reference(a, b, True, False)
    assert_close_to_reference(out, ref + before, abs_prod + np.abs(before), k + 1, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_out_is_overwritten_never_read(isa, rng, dtype):
    a = rng.standard_normal((30, 40)).astype(dtype)
    b = rng.standard_normal((40, 50)).astype(dtype)
    out = np.full((30, 50), np.nan, dtype=dtype)
    assert kernels.matmul(a, b, out=out) is out
    assert np.all(np.isfinite(out))
    assert_close_to_reference(out, *reference(a, b, False, False), 40, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_zero_depth_gives_zeros_or_leaves_out_alone(isa, dtype):
    a = np.ones((3, 0), dtype)
    b = np.ones((0, 4), dtype)
    np.testing.assert_array_equal(kernels.matmul(a, b), np.zeros((3, 4), dtype))
    out = np.full((3, 4), 7.0, dtype)
    kernels.matmul(a, b, out=out, accumulate=True)
    np.testing.assert_array_equal(out, np.full((3, 4), 7.0, dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_nan_and_inf_propagate(isa, dtype):
    a = np.ones((20, 30), dtype)
    b = np.ones((30, 40), dtype)
    a[3, 7] = np.nan
    b[5, :] = 0.0
    a[9, 5] = np.inf  # inf · 0 = NaN: no shortcut may skip the zero row of b
    b[11, 17] = np.inf
    c = kernels.matmul(a, b)
    assert np.all(np.isnan(c[3]))
    assert np.all(np.isnan(c[9]))
    others = np.delete(c, [3, 9], axis=0)
    assert np.all(np.isposinf(others[:, 17]))
    assert np.all(np.isfinite(np.delete(others, 17, axis=1)))


def test_lecture_matmul_example():
    # The lecture's x: [N×D], w: [D×M], upstream dL/dy: [N×M] (N=2, D=3, M=4).
    x = np.array([[2, 1, -3], [-3, 4, 2]], np.float64)
    w = np.array([[3, 2, 1, -1], [2, 1, 3, 2], [3, 2, 1, -2]], np.float64)
    dy = np.array([[2, 3, -3, 9], [-8, 1, 4, 6]], np.float64)
    y = kernels.matmul(x, w)
    np.testing.assert_array_equal(y, [[-1, -1, 2, 6], [5, 2, 11, 7]])  # the true x·w
    dx = kernels.matmul(dy, w, trans_b=True)  # dL/dx = dL/dy·wᵀ: [N×D]
    dw = kernels.matmul(x, dy, trans_a=True)  # dL/dw = xᵀ·dL/dy: [D×M]
    assert dx.shape == x.shape and dw.shape == w.shape  # gradients have the shape of x and w
    np.testing.assert_array_equal(dx, [[0, 16, -9], [-24, 9, -30]])
    np.testing.assert_array_equal(dw, [[28, 3, -18, 0], [-30, 7, 13, 33], [-22, -7, 17, -15]])


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("m,n,k,trans_a,trans_b", [
    (200, 300, 257, False, False),   # threads split N
    (640, 20, 300, True, False),     # N too narrow: threads split M
    (64, 512, 385, False, True),     # the lecture's skinny shape, smaller
    (64, 512, 385, False, False),    # the same with row-major B: packed
    (6, 512, 385, False, False),     # a few rows: row-major B read in place on AVX-512
    (16, 2048, 600, False, False),   # a few rows, B past the L2: streamed B on the x86 sets
    (16, 384, 6000, False, False),   # the same with rows of 1536 bytes, the path's narrowest
    (64, 2048, 600, False, False),   # the streamed path's most rows (AVX2; the lecture's batch)
    (40, 2048, 600, False, False),   # AVX-512's most rows on it, and one past them
    (41, 2048, 600, False, False),
    (16, 2048, 600, False, True),    # a few rows times a large wᵀ: transposed rows (AVX2, AVX-512)
    (64, 2048, 600, False, True),    # the same at the lecture's batch (several panels of A's rows)
    (3, 2048, 600, False, True),     # 3 rows times a large wᵀ: transposed rows for f64 only
    (6, 2048, 600, False, True),     # 6 rows times a large wᵀ: transposed rows on the baseline (f32)
    (8, 2048, 600, False, True),     # the baseline's most rows on it, and one past them
    (9, 2048, 600, False, True),
    (12, 2048, 600, False, False),   # the baseline's most f64 rows on streamed B, and one past
    (13, 2048, 600, False, False),
    (17, 2048, 600, False, False),   # one past its most f32 rows there (16, above)
    (16, 64, 20000, False, True),    # a long K: transposed rows in spans of K
    (64, 600, 5000, False, True),    # spans, and a thread's sums between them in several chunks
    (1, 3000, 700, False, False),    # one row: B streamed row by row (gemm_row.cpp)
    (1, 3000, 700, False, True),     # one row times wᵀ: dot products
    (700, 1, 3000, False, False),    # one column: dot products too (rs_b == cs_b == 1)
    (1500, 61, 400, False, False),   # narrow: unpacked, threads split the rows
])
def test_one_and_two_threads_bit_identical(isa, threads, rng, m, n, k, trans_a, trans_b, dtype):
    # On every kernel set: each takes its own paths (the streamed one to its own row limits).
    a, b = operands(rng, m, n, k, trans_a, trans_b, dtype, "C")
    threads(1)
    one = kernels.matmul(a, b, trans_a=trans_a, trans_b=trans_b)
    threads(2)
    two = kernels.matmul(a, b, trans_a=trans_a, trans_b=trans_b)
    np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("m,n,k", [(3, 2048, 600), (4, 2048, 600), (6, 2048, 600), (16, 2048, 600),
                                   (64, 2048, 600), (16, 64, 20000), (64, 600, 5000)])
def test_transposed_rows_path_with_w_reversed_and_accumulating(isa, rng, m, n, k, dtype):
    # wᵀ with w's rows in reverse (a negative stride between B's stored rows), on the
    # transposed-rows path on AVX2 and AVX-512 (B past the L2; f32 from 8 or 16 rows,
    # f64 at any; K = 20000 and 5000 in spans, the sums kept between them, for 64 rows
    # in several chunks of a thread's groups) and on the baseline (f32, 4 to 8 rows),
    # adding into C.
    a = rng.standard_normal((m, k)).astype(dtype)
    w = rng.standard_normal((n, k)).astype(dtype)[::-1]
    c0 = rng.standard_normal((m, n)).astype(dtype)
    want = c0.astype(np.float64) + a.astype(np.float64) @ w.T.astype(np.float64)
    got = kernels.matmul(a, w, trans_b=True, out=c0.copy(), accumulate=True)
    tol = 1e-3 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(got, want, rtol=tol / 10, atol=tol)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("layout", ["C", "strided", "reversed", "broadcast"])
@pytest.mark.parametrize("m,n,k", [(1, 700, 300), (600, 70, 300)])
def test_row_and_narrow_paths_any_layout(isa, rng, m, n, k, layout, dtype):
    # One row of C and narrow products through gemm_fused, with operands in every layout
    # (strided, negative and zero strides) and both transposes, against float64.
    for trans_a in (False, True):
        for trans_b in (False, True):
            a = matrix_with_layout(rng, k if trans_a else m, m if trans_a else k, dtype, layout)
            b = matrix_with_layout(rng, n if trans_b else k, k if trans_b else n, dtype, layout)
            got = kernels.matmul(a, b, trans_a=trans_a, trans_b=trans_b)
            want = (a.T if trans_a else a).astype(np.float64) @ (b.T if trans_b else b).astype(np.float64)
            np.testing.assert_allclose(got, want, rtol=1e-4 if dtype == np.float32 else 1e-10,
                                       atol=1e-3 if dtype == np.float32 else 1e-10)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_row_major_and_transposed_a_give_the_same_bits(isa, rng, dtype):
    # The small path's tiles reach a row-major A by groups of four rows
    # (direct_tile_row_groups, for tiles of more than four rows) and a transposed A at
    # constant offsets (direct_tile_unit_rows): the same multiply-adds in the same order.
    for m in range(1, 14):
        a = rng.standard_normal((m, 50)).astype(dtype)
        b = rng.standard_normal((50, 64)).astype(dtype)
        row_major = kernels.matmul(a, b)
        transposed = kernels.matmul(np.ascontiguousarray(a.T), b, trans_a=True)
        np.testing.assert_array_equal(row_major, transposed, err_msg=f"{m} rows")


def test_large_block_edges_single_case(rng):
    # Crosses the M block (mc = 3072) and several N blocks with a cheap depth.
    a = rng.standard_normal((3085, 9)).astype(np.float32)
    b = rng.standard_normal((9, 1031)).astype(np.float32)
    assert_close_to_reference(kernels.matmul(a, b), *reference(a, b, False, False), 9, np.float32)
