"""kernels.gemm_path (cpp/src/gemm.cpp, choose_gemm_path): the path matmul takes, by shape,
strides, dtype and kernel set, and matmul's own checks of its operands."""

import numpy as np
import pytest

from matgrad import kernels


def lecture(batch, dtype=np.float32, side=4096):
    """x: [batch×side], w: [side×side] (64 MiB in f32: past any L2), never written: np.empty
    costs no memory until touched."""
    return np.empty((batch, side), dtype), np.empty((side, side), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sizes_pick_the_simple_paths_on_every_set(isa, dtype):
    def path(m, n, k, trans_b=False):
        b = np.empty((n, k) if trans_b else (k, n), dtype)
        return kernels.gemm_path(np.empty((m, k), dtype), b, trans_b=trans_b)

    assert path(3, 4, 0) == "empty" and path(0, 4, 5) == "empty"
    assert path(8, 8, 8) == "small"
    assert path(1500, 61, 400) == "narrow"  # few columns, many rows: A not packed
    assert path(1, 3000, 700) == "row"  # one row of C against a row-major B
    assert path(1, 3000, 700, trans_b=True) == "row_dots"  # against wᵀ: dot products
    assert path(1024, 1024, 1024) == "packed"


def test_the_lectures_products_take_the_paths_tuned_for_them(isa):
    x, w = lecture(64)
    gy = np.empty((64, 4096), np.float32)
    y, dx = kernels.gemm_path(x, w), kernels.gemm_path(gy, w, trans_b=True)
    dw = kernels.gemm_path(x, gy, trans_a=True)  # 4096 rows of C: the packed loops
    assert dw == "packed"
    if isa == "avx2":
        assert (y, dx) == ("streamed_b", "transposed_rows")
    elif isa == "avx512":  # streamed B to 40 rows only
        assert dx == "transposed_rows" and y != "streamed_b"
    else:  # the baseline (64 rows: past its limits, 8 to 16 rows) and NEON (neither path)
        assert y not in ("streamed_b", "transposed_rows") and dx != "transposed_rows"


def test_the_few_row_paths_end_at_their_limits(isa):
    # One row past 64: dL/dx goes skinny, y leaves the streamed path.
    x, w = lecture(65)
    assert kernels.gemm_path(x, w, trans_b=True) == "skinny"
    assert kernels.gemm_path(x, w) != "streamed_b"
    if isa == "avx512":  # f32 panels of 32 rows: taken from half full
        assert kernels.gemm_path(*lecture(8), trans_b=True) != "transposed_rows"
        assert kernels.gemm_path(*lecture(16), trans_b=True) == "transposed_rows"
        for dtype in (np.float32, np.float64):  # streamed B to 40 rows, both dtypes
            assert kernels.gemm_path(*lecture(2, dtype)) == "streamed_b"
            assert kernels.gemm_path(*lecture(40, dtype)) == "streamed_b"
            assert kernels.gemm_path(*lecture(41, dtype)) != "streamed_b"
    if isa == "avx2":  # f32 panels of 16 rows; streamed B to 64 rows, both dtypes
        assert kernels.gemm_path(*lecture(7), trans_b=True) != "transposed_rows"
        assert kernels.gemm_path(*lecture(8), trans_b=True) == "transposed_rows"
        assert kernels.gemm_path(*lecture(8, np.float64)) == "streamed_b"
        assert kernels.gemm_path(*lecture(65, np.float64)) != "streamed_b"
        # f64 past 42 rows only where the L1d gives blocks of 512 bytes (blocking.hpp,
        # takes_streamed_b): a 48 KiB L1d does at 64 rows, a 32 KiB one does not.
        l1d = kernels.config()["caches"]["l1d"]
        if l1d >= 48 * 1024:
            assert kernels.gemm_path(*lecture(64, np.float64)) == "streamed_b"
        elif l1d <= 32 * 1024:
            assert kernels.gemm_path(*lecture(64, np.float64)) != "streamed_b"
            assert kernels.gemm_path(*lecture(42, np.float64)) == "streamed_b"
        assert kernels.gemm_path(*lecture(8, np.float64), trans_b=True) == "transposed_rows"


def test_the_baselines_few_row_paths_end_at_their_limits():
    if not kernels.isa_available("baseline"):
        pytest.skip("no baseline kernel set")
    previous = kernels.isa()
    kernels.set_isa("baseline")
    try:
        for rows in (2, 8, 16):  # streamed B: f32 to 16 rows
            assert kernels.gemm_path(*lecture(rows)) == "streamed_b"
        assert kernels.gemm_path(*lecture(17)) != "streamed_b"
        for rows in (4, 8):
            x, w = lecture(rows)
            assert kernels.gemm_path(x, w, trans_b=True) == "transposed_rows"
        x, w = lecture(12)  # two panels of 8, three quarters full: only the row limit stops it
        assert kernels.gemm_path(x, w, trans_b=True) != "transposed_rows"
        for rows in (2, 12):  # f64: streamed B to 12 rows, never transposed rows
            assert kernels.gemm_path(*lecture(rows, np.float64)) == "streamed_b"
        assert kernels.gemm_path(*lecture(13, np.float64)) != "streamed_b"
        x, w = lecture(8, np.float64)
        assert kernels.gemm_path(x, w, trans_b=True) != "transposed_rows"
    finally:
        kernels.set_isa(previous)


def test_strides_decide_as_the_flags_do(isa):
    # w stored column-major reads as a transposed row-major array: x·w with w in
    # Fortran order takes the path of x·wᵀ with the flag, and a .T view the same.
    x, w = lecture(64)
    w_f = np.asfortranarray(np.empty((4096, 4096), np.float32))
    assert kernels.gemm_path(x, w_f) == kernels.gemm_path(x, w, trans_b=True)
    assert kernels.gemm_path(x, w.T) == kernels.gemm_path(x, w, trans_b=True)
    assert kernels.gemm_path(x, w[::-1]) == kernels.gemm_path(x, w)  # rows in reverse: the same


def test_an_array_matmul_would_copy_is_judged_by_its_copy(isa):
    # A misaligned array cannot be read in place: matmul copies it to C order first, so
    # its path is the copy's, whatever view it came in as.
    raw = np.empty(4096 * 4096 * 4 + 1, np.uint8)
    w_t = raw[1:].view(np.float32).reshape(4096, 4096).T  # misaligned, a transposed view
    assert not w_t.flags.aligned
    x = np.empty((64, 4096), np.float32)
    assert kernels.gemm_path(x, w_t) == kernels.gemm_path(x, np.empty((4096, 4096), np.float32))


def test_bad_operands_fail_as_in_matmul():
    a = np.empty((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"gemm_path: shapes \(3, 4\) and \(5, 2\) are not align"):
        kernels.gemm_path(a, np.empty((5, 2), np.float32))
    with pytest.raises(TypeError, match="gemm_path"):
        kernels.gemm_path(a, np.empty((4, 2), np.float64))
    with pytest.raises((TypeError, ValueError), match="gemm_path"):
        kernels.gemm_path(np.empty(4, np.float32), np.empty((4, 2), np.float32))
    with pytest.raises(TypeError, match="gemm_path"):
        kernels.gemm_path(np.zeros((3, 4), np.int32), np.zeros((4, 2), np.int32))

