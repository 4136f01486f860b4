"""64-bit indexing: sizes and offsets whose products pass 2**31 are computed correctly.

- ``test_strided_offsets_past_2_31_elements``: a GEMM whose operands are views into a 12 GiB
  array of zeros that is never touched (so it costs a few MiB of memory, not 12 GiB), with row and
  column strides of 2**30 elements: element offsets reach 3·2**30 > 2**31 inside the packing code.
  Skipped where the system refuses the address space.
- ``test_more_than_2_31_elements`` (slow, ``--runslow``): one output of 2**31 + 192 float32
  elements (8 GiB) written by the fused linear kernel, accumulated into by GEMM, and run through ReLU
  forward and backward and axpy in place; every element is checked. Needs about 9 GiB of free
  memory and takes about a minute.
"""

import numpy as np
import pytest

from matgrad import kernels

GiB = 2**30


def mem_available():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def test_strided_offsets_past_2_31_elements():
    stride = 2**30  # elements: row i of the view starts 4·i GiB into the buffer
    try:
        big = np.zeros(3 * stride + 64, np.float32)  # calloc: untouched pages cost nothing
    except MemoryError:
        pytest.skip("the system refuses 12 GiB of address space")
    try:
        # (4, 5) and (3, 5) views whose rows are 4 GiB (2**30 elements) apart (strides in bytes)
        a = np.lib.stride_tricks.as_strided(big, shape=(4, 5), strides=(stride * 4, 4))
        b_t = np.lib.stride_tricks.as_strided(big[16:], shape=(3, 5), strides=(stride * 4, 4))
        a[...] = np.arange(20, dtype=np.float32).reshape(4, 5) - 7
        b_t[...] = np.arange(15, dtype=np.float32).reshape(3, 5) % 4 - 1
        small = (np.arange(8, dtype=np.float32).reshape(4, 2) - 3) / 2
        expected = a.astype(np.float64) @ b_t.T.astype(np.float64)  # small integers: exact
        for isa in ("avx512", "avx2", "baseline"):
            if not kernels.isa_available(isa):
                continue
            previous = kernels.isa()
            kernels.set_isa(isa)
            try:
                c = kernels.matmul(a, b_t, trans_b=True)  # op(B) = b_tᵀ: its column stride is 4 GiB
                ct = kernels.matmul(b_t, a, trans_b=True)  # and transposed the other way
                ca = kernels.matmul(a.T, b_t.T, trans_a=True)  # A read through a transposed view
                cs = kernels.matmul(a.T, small)  # op(A) = aᵀ: its column stride is 4 GiB
            finally:
                kernels.set_isa(previous)
            np.testing.assert_array_equal(c, expected)
            np.testing.assert_array_equal(ct, expected.T)
            np.testing.assert_array_equal(ca, expected)
            np.testing.assert_array_equal(cs, a.T.astype(np.float64) @ small)
    finally:
        del big


def _check_rows(c, expected_rows, rows_per_chunk=1 << 18):
    """Every row block of c against expected_rows(r0, r1), exactly."""
    m = c.shape[0]
    for r0 in range(0, m, rows_per_chunk):
        r1 = min(m, r0 + rows_per_chunk)
        want = expected_rows(r0, r1)
        if not np.array_equal(c[r0:r1], want):
            bad = np.argwhere(c[r0:r1] != want)[0]
            i, j = r0 + int(bad[0]), int(bad[1])
            pytest.fail(f"element ({i}, {j}) (flat index {i * c.shape[1] + j}) is {c[i, j]}, expected "
                        f"{want[bad[0], bad[1]]}")


@pytest.mark.slow
def test_more_than_2_31_elements():
    n, k = 64, 3
    m = 2**25 + 3  # m·n = 2**31 + 192 elements of C
    need = m * n * 4 + 2 * GiB
    avail = mem_available()
    if avail is not None and avail < need:
        pytest.skip(f"needs {need / GiB:.1f} GiB of free memory, {avail / GiB:.1f} GiB available")
    # A (m, k): a sliding window over a short vector (row i = base[i:i+k]), so each row differs but
    # A takes 128 MiB, not m·k·4 bytes. Small integers: every product and sum is exact in float32.
    base = (np.arange(m + k - 1) % 7 - 3).astype(np.float32)
    a = np.lib.stride_tricks.as_strided(base, shape=(m, k), strides=(4, 4), writeable=False)
    rng = np.random.default_rng(0)
    b = rng.integers(-2, 3, size=(k, n)).astype(np.float32)
    bias = rng.integers(-3, 4, size=n).astype(np.float32)

    def ab(r0, r1):
        return a[r0:r1] @ b

    try:
        c = kernels.linear_forward(a, b, bias)  # C = A·B + bias: 8 GiB
    except MemoryError:
        pytest.skip("not enough memory for an 8 GiB array")
    try:
        assert c.shape == (m, n) and c.size > 2**31
        _check_rows(c, lambda r0, r1: ab(r0, r1) + bias)
        kernels.matmul(a, b, out=c, accumulate=True)  # C = 2·A·B + bias
        kernels.relu_forward(c, out=c)  # C = relu(2·A·B + bias)
        _check_rows(c, lambda r0, r1: np.maximum(2 * ab(r0, r1) + bias, 0))
        kernels.matmul(a, -3 * b, out=c, accumulate=True)  # C = relu(2·A·B + bias) - 3·A·B
        kernels.relu_backward(c, c, out=c)  # C where C > 0, else 0
        kernels.axpy(-0.5, c, c)  # C = C/2 (halves of integers: exact)
        _check_rows(c, lambda r0, r1: np.maximum(np.maximum(2 * ab(r0, r1) + bias, 0) - 3 * ab(r0, r1), 0) / 2)
    finally:
        del c
