"""The recycled buffers of intermediate gradients and forward outputs (ops/_common.py:
grad_buffers, output_buffers)."""

import sys

import numpy as np
import pytest

import matgrad as mg
from matgrad.ops._common import _RecycledBuffers, grad_buffers, output_buffers

needs_refcounts = pytest.mark.skipif(not hasattr(sys, "getrefcount"), reason="no reference counts (PyPy)")


@needs_refcounts
def test_a_buffer_is_handed_out_again_only_when_nothing_else_refers_to_it():
    pool = _RecycledBuffers(min_bytes=0)
    dt = np.dtype(np.float32)
    a = pool.take((64, 64), dt)
    b = pool.take((64, 64), dt)
    assert a is not None and b is not None and a is not b
    assert pool.take((64, 64), dt) is None  # two per shape, both in use
    a_id = id(a)
    view = a[1:]
    del a
    assert pool.take((64, 64), dt) is None  # the view keeps its base in use
    del view
    c = pool.take((64, 64), dt)
    assert c is not None and id(c) == a_id
    assert pool.take((64, 32), dt) is not None  # another shape: its own buffers
    assert pool.nbytes() == 2 * 64 * 64 * 4 + 64 * 32 * 4
    pool.clear()
    assert pool.nbytes() == 0


def test_small_arrays_and_the_byte_limit_are_left_to_the_allocator():
    pool = _RecycledBuffers(min_bytes=1024, max_bytes=4096)
    dt = np.dtype(np.float64)
    assert pool.take((10,), dt) is None  # 80 bytes: below min_bytes
    if hasattr(sys, "getrefcount"):
        kept = pool.take((512,), dt)  # 4096 bytes: fits exactly
        assert kept is not None
        assert pool.take((256,), dt) is None  # would pass max_bytes
        assert pool.nbytes() == 4096


def _poison(pool):
    """NaN (or, in an index array, -1) into every held buffer (a function, so that no name here
    keeps one in use)."""
    for buffers in pool._held.values():
        for buf in buffers:
            buf.fill(np.nan if buf.dtype.kind == "f" else -1)


def _cnn_step(net, x, labels):
    for p in net.parameters():
        p.zero_grad()
    loss = mg.cross_entropy(net(x), labels)
    loss.backward()
    return [p.grad.copy() for p in net.parameters()] + [loss.data.copy()]


@needs_refcounts
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_recycled_buffers_are_overwritten_not_read(dtype):
    # The digits CNN's intermediates (conv, max-pool, flatten, linear) get their gradients, and
    # the conv and max-pool forwards their outputs and argmax, in recycled buffers from the
    # second step on: poisoning those buffers between steps must not change the loss or a
    # single gradient.
    rng = np.random.default_rng(3)
    mg.manual_seed(0)
    net = mg.nn.digits_cnn()
    if dtype == np.float64:
        for p in net.parameters():
            p.data = p.data.astype(np.float64)
    x = mg.tensor(rng.random((64, 1, 8, 8)).astype(dtype))
    labels = rng.integers(0, 10, 64)
    grad_buffers.clear()
    output_buffers.clear()
    first = _cnn_step(net, x, labels)
    held, held_out = grad_buffers.nbytes(), output_buffers.nbytes()
    assert held > 0  # the (64, 32, 8, 8) max-pool input gradient at least
    assert held_out > 0  # the conv outputs, the max-pool output and its argmax
    _poison(grad_buffers)
    _poison(output_buffers)
    second = _cnn_step(net, x, labels)
    for g1, g2 in zip(first, second):
        np.testing.assert_array_equal(g1, g2)
    assert grad_buffers.nbytes() == held  # the same buffers again, none added
    assert output_buffers.nbytes() == held_out
    grad_buffers.clear()
    output_buffers.clear()
    third = _cnn_step(net, x, labels)  # and the same as with fresh allocations
    for g1, g3 in zip(first, third):
        np.testing.assert_array_equal(g1, g3)


def test_a_leaf_gradient_never_comes_from_the_pool():
    w = mg.tensor(np.ones((256, 256), np.float32), requires_grad=True)
    before = grad_buffers.nbytes()
    (w * 2.0).sum().backward()
    assert grad_buffers.nbytes() == before or all(
        buf is not w.grad for bufs in grad_buffers._held.values() for buf in bufs)
    np.testing.assert_array_equal(w.grad, np.full((256, 256), 2.0, np.float32))


@needs_refcounts
def test_a_forward_output_still_held_is_not_written_over():
    rng = np.random.default_rng(5)
    x = mg.tensor(rng.random((32, 4, 8, 8)).astype(np.float32))
    w = mg.tensor(rng.random((8, 4, 3, 3)).astype(np.float32))
    y1 = mg.conv2d(x, w, padding=1)
    kept = y1.data.copy()
    y2 = mg.conv2d(x * 2.0, w, padding=1)  # y1 still alive: y2 must get other memory
    assert not np.shares_memory(y1.data, y2.data)
    np.testing.assert_array_equal(y1.data, kept)
    del y1
    y3 = mg.conv2d(x, w, padding=1)  # y1's buffer is free now and may be reused
    np.testing.assert_array_equal(y3.data, kept)
    np.testing.assert_allclose(y2.data, 2 * kept, rtol=1e-5)
