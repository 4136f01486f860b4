"""Rounding error of the float32 GEMM over long sums (K = 65,536), against float64, compared
with numpy's own float32 product on the same inputs: no worse than 1.5× numpy's error.

Inputs in [0, 1) make every partial sum grow, the worst case for accumulated rounding. The
measure is the RMS relative error over all outputs, averaged over three seeds (the largest
single error is too noisy to compare). One-row products take the row paths (gemm_row.cpp):
x·w streams w's rows, x·wᵀ and a single column are dot products with partial sums along K;
16 rows against 512 columns take the streamed-B path on the x86 sets (gemm_streamed_b.cpp); 16 rows
against a transposed B past the L2, the transposed-rows path on AVX2 and AVX-512
(gemm_transposed_rows.cpp)."""

import numpy as np
import pytest

from matgrad import kernels

K = 65536


def rms_relative_error(got, want):
    return float(np.sqrt(np.mean(((got.astype(np.float64) - want) / want) ** 2)))


@pytest.mark.parametrize("m, n, trans_b", [(4, 4, False), (16, 16, False), (64, 64, False),
                                           (130, 70, False), (1, 1, False), (1, 96, False),
                                           (1, 50, True), (4, 20, True), (16, 512, False),
                                           (16, 48, True)])
def test_long_sums_are_as_accurate_as_numpy(isa, m, n, trans_b):
    ours, numpys = [], []
    for seed in range(3):
        rng = np.random.default_rng(seed)
        a = rng.random((m, K), dtype=np.float32)
        b = rng.random((n, K) if trans_b else (K, n), dtype=np.float32)
        op_b = b.T if trans_b else b
        if (m, n, trans_b) == (16, 512, False) and isa != "neon":
            assert kernels.gemm_path(a, b) == "streamed_b"
        if (m, n, trans_b) == (16, 48, True) and isa in ("avx2", "avx512"):
            assert kernels.gemm_path(a, op_b) == "transposed_rows"
        exact = a.astype(np.float64) @ op_b.astype(np.float64)
        ours.append(rms_relative_error(kernels.matmul(a, b, trans_b=trans_b), exact))
        numpys.append(rms_relative_error(a @ op_b, exact))
    assert np.mean(ours) <= 1.5 * np.mean(numpys), (np.mean(ours), np.mean(numpys))
    assert np.mean(ours) < 1e-6  # and a few float32 epsilons in absolute terms


def test_small_path_slices_long_sums(isa):
    # 1×k·k×96 below 64³ multiply-adds takes the unpacked small path (96 is a whole number
    # of nr panels on every kernel set, so B is read in place); k spans about ten K slices.
    k = 2700
    ours, numpys = [], []
    for seed in range(3):
        rng = np.random.default_rng(seed)
        a = rng.random((1, k), dtype=np.float32)
        b = rng.random((k, 96), dtype=np.float32)
        exact = a.astype(np.float64) @ b.astype(np.float64)
        ours.append(rms_relative_error(kernels.matmul(a, b), exact))
        numpys.append(rms_relative_error(a @ b, exact))
    assert np.mean(ours) <= 1.5 * np.mean(numpys), (np.mean(ours), np.mean(numpys))


def test_transposed_operands_sum_in_the_same_order(isa):
    # Aᵀ·Bᵀ reads other strides but must round exactly like A·B of the copies.
    rng = np.random.default_rng(7)
    a = rng.random((K, 24), dtype=np.float32)
    b = rng.random((20, K), dtype=np.float32)
    np.testing.assert_array_equal(kernels.matmul(a, b, trans_a=True, trans_b=True),
                                  kernels.matmul(np.ascontiguousarray(a.T), np.ascontiguousarray(b.T)))
