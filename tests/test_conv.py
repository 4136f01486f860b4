"""conv2d, max_pool2d, avg_pool2d: against naive loops (cs231n's), by gradcheck, against PyTorch,
with bad input, across thread counts, and the im2col buffer's reuse."""

import gc

import numpy as np
import pytest

import matgrad as mg
from matgrad import kernels
from matgrad.ops import conv as conv_ops


# ---- naive references, as cs231n's assignment writes them ----------------------------------


def conv_forward_naive(x, w, b, stride, pad):
    n, c, h, width = x.shape
    f, _, hh, ww = w.shape
    oh, ow = 1 + (h + 2 * pad - hh) // stride, 1 + (width + 2 * pad - ww) // stride
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((n, f, oh, ow), x.dtype)
    for i in range(n):
        for k in range(f):
            for r in range(oh):
                for s in range(ow):
                    window = xp[i, :, r * stride:r * stride + hh, s * stride:s * stride + ww]
                    out[i, k, r, s] = np.sum(window * w[k]) + (0 if b is None else b[k])
    return out


def max_pool_forward_naive(x, kh, kw, sh, sw):
    n, c, h, w = x.shape
    oh, ow = 1 + (h - kh) // sh, 1 + (w - kw) // sw
    out = np.zeros((n, c, oh, ow), x.dtype)
    for r in range(oh):
        for s in range(ow):
            out[:, :, r, s] = x[:, :, r * sh:r * sh + kh, s * sw:s * sw + kw].max(axis=(2, 3))
    return out


def avg_pool_forward_naive(x, kh, kw, sh, sw):
    n, c, h, w = x.shape
    oh, ow = 1 + (h - kh) // sh, 1 + (w - kw) // sw
    out = np.zeros((n, c, oh, ow), x.dtype)
    for r in range(oh):
        for s in range(ow):
            out[:, :, r, s] = x[:, :, r * sh:r * sh + kh, s * sw:s * sw + kw].mean(axis=(2, 3))
    return out


def rand(*shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# ---- forward values ------------------------------------------------------------------------


def test_conv_forward_matches_cs231n_naive_on_linspace_inputs():
    # cs231n's check: x (2, 3, 4, 4), w (3, 3, 4, 4), b (3,), stride 2, pad 1, all linspace
    x = np.linspace(-0.1, 0.5, num=2 * 3 * 4 * 4).reshape(2, 3, 4, 4)
    w = np.linspace(-0.2, 0.3, num=3 * 3 * 4 * 4).reshape(3, 3, 4, 4)
    b = np.linspace(-0.1, 0.2, num=3)
    y = mg.conv2d(mg.tensor(x), mg.tensor(w), mg.tensor(b), stride=2, padding=1)
    assert y.shape == (2, 3, 2, 2)
    np.testing.assert_allclose(y.data, conv_forward_naive(x, w, b, 2, 1), rtol=1e-12, atol=1e-14)
    # the first value cs231n's notebook prints for this case
    assert y.data[0, 0, 0, 0] == pytest.approx(-0.08759809, abs=1e-8)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, stride, pad", [
    ((2, 3, 7, 5), 1, 0), ((3, 2, 9, 9), 2, 1), ((1, 1, 6, 6), 3, 2), ((2, 4, 5, 8), 2, 0),
    ((4, 3, 1, 1), 1, 1), ((2, 1, 8, 8), 1, 1),
])
@pytest.mark.parametrize("kernel", [(1, 1), (3, 3), (2, 3)])
def test_conv_forward_matches_naive(dtype, shape, stride, pad, kernel):
    x = rand(*shape, dtype=dtype)
    if kernel[0] > shape[2] + 2 * pad or kernel[1] > shape[3] + 2 * pad:
        pytest.skip("kernel larger than the padded input")
    w = rand(5, shape[1], *kernel, seed=1, dtype=dtype)
    b = rand(5, seed=2, dtype=dtype)
    y = mg.conv2d(mg.tensor(x), mg.tensor(w), mg.tensor(b), stride, pad)
    assert y.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y.data, conv_forward_naive(x, w, b, stride, pad), rtol=tol, atol=tol)
    fused = mg.conv2d(mg.tensor(x), mg.tensor(w), mg.tensor(b), stride, pad, relu=True)
    np.testing.assert_array_equal(fused.data, np.maximum(y.data, 0))


def test_stride_that_does_not_tile_the_input_floors_as_pytorch():
    x = rand(1, 2, 8, 7)
    w = rand(3, 2, 3, 3, seed=1)
    y = mg.conv2d(mg.tensor(x), mg.tensor(w), stride=3, padding=1)
    assert y.shape == (1, 3, 1 + (8 + 2 - 3) // 3, 1 + (7 + 2 - 3) // 3) == (1, 3, 3, 3)
    np.testing.assert_allclose(y.data, conv_forward_naive(x, w, None, 3, 1), rtol=1e-12, atol=1e-13)


def test_conv_with_zero_images():
    x = mg.tensor(np.zeros((0, 2, 5, 5)), requires_grad=True)
    w = mg.tensor(rand(3, 2, 3, 3), requires_grad=True)
    y = mg.conv2d(x, w, padding=1)
    assert y.shape == (0, 3, 5, 5)
    y.sum().backward()
    assert x.grad.shape == (0, 2, 5, 5)
    np.testing.assert_array_equal(w.grad, 0.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kernel, stride", [(2, None), (3, 2), (3, 1), ((2, 3), 1), ((2, 3), None), (2, (1, 3))])
def test_pools_match_naive(dtype, kernel, stride):
    x = rand(2, 3, 7, 8, dtype=dtype)
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    sh, sw = (kh, kw) if stride is None else (stride, stride) if isinstance(stride, int) else stride
    np.testing.assert_array_equal(mg.max_pool2d(x, kernel, stride).data, max_pool_forward_naive(x, kh, kw, sh, sw))
    avg = mg.avg_pool2d(x, kernel, stride)
    assert avg.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(avg.data, avg_pool_forward_naive(x, kh, kw, sh, sw), rtol=tol, atol=tol)


# ---- gradients -----------------------------------------------------------------------------


@pytest.mark.parametrize("x_shape, w_shape, stride, pad", [
    ((2, 3, 7, 6), (4, 3, 3, 3), 2, 1),  # stride 2 with padding
    ((2, 3, 5, 5), (4, 3, 1, 1), 1, 0),  # 1×1 kernel
    ((2, 2, 4, 3), (3, 2, 6, 5), 1, 1),  # the kernel as large as the padded input
    ((3, 1, 6, 6), (2, 1, 3, 3), 1, 1),  # C = 1
    ((1, 2, 8, 7), (2, 2, 3, 2), 3, 2),  # the stride does not tile the input
    ((2, 8, 9, 9), (4, 8, 3, 3), 1, 1),  # stride 1 "same", 8 channels: the implicit scheme (no columns)
    ((2, 9, 10, 9), (3, 9, 3, 2), 1, 0),  # stride 1 without padding, kh != kw: implicit
])
@pytest.mark.parametrize("relu", [False, True])
def test_conv_gradcheck(x_shape, w_shape, stride, pad, relu):
    x = mg.tensor(rand(*x_shape), requires_grad=True)
    w = mg.tensor(rand(*w_shape, seed=1), requires_grad=True)
    b = mg.tensor(rand(w_shape[0], seed=2), requires_grad=True)
    assert mg.gradcheck(lambda x, w, b: mg.conv2d(x, w, b, stride, pad, relu=relu), x, w, b)
    assert mg.gradcheck(lambda x, w: mg.conv2d(x, w, None, stride, pad, relu=relu), x, w)


def test_conv_gradient_has_the_inputs_shapes_and_accumulates():
    x = mg.tensor(rand(2, 3, 6, 6), requires_grad=True)
    w = mg.tensor(rand(4, 3, 3, 3, seed=1), requires_grad=True)
    b = mg.tensor(rand(4, seed=2), requires_grad=True)
    mg.conv2d(x, w, b, 1, 1).sum().backward()
    assert x.grad.shape == x.shape and w.grad.shape == w.shape and b.grad.shape == b.shape
    first = (x.grad.copy(), w.grad.copy(), b.grad.copy())
    mg.conv2d(x, w, b, 1, 1).sum().backward()  # a second pass adds into the same buffers
    for g, g1 in zip((x.grad, w.grad, b.grad), first):
        np.testing.assert_allclose(g, 2 * g1, rtol=1e-12)
    np.testing.assert_allclose(b.grad, 2 * 2 * 36)  # dL/db = Σ over images and pixels of 1


def test_only_the_inputs_that_require_grad_get_one():
    x = mg.tensor(rand(2, 3, 6, 6))
    w = mg.tensor(rand(4, 3, 3, 3, seed=1), requires_grad=True)
    mg.conv2d(x, w).sum().backward()
    assert x.grad is None and w.grad is not None


@pytest.mark.parametrize("kernel, stride", [(2, None), (3, 2), (3, 1), ((2, 3), 1), ((3, 2), (2, 1))])
def test_pool_gradcheck(kernel, stride):
    # stride < kernel: overlapping windows, whose gradients add up in the input
    x = mg.tensor(rand(2, 3, 7, 8), requires_grad=True)
    assert mg.gradcheck(lambda x: mg.max_pool2d(x, kernel, stride), x)
    assert mg.gradcheck(lambda x: mg.avg_pool2d(x, kernel, stride), x)


def test_max_pool_ties_go_to_the_first_maximum_and_nan_propagates():
    x = mg.tensor(np.array([[[[1.0, 3.0, 3.0], [3.0, 0.0, 2.0], [3.0, 1.0, 1.0]]]]), requires_grad=True)
    y = mg.max_pool2d(x, 2, 1)
    np.testing.assert_array_equal(y.data, [[[[3.0, 3.0], [3.0, 2.0]]]])
    y.backward(np.array([[[[1.0, 10.0], [100.0, 1000.0]]]]))
    # windows at (0,0), (0,1), (1,0) all hold 3s: each gradient goes to its first 3 in row-major order
    np.testing.assert_array_equal(x.grad, [[[[0, 11, 0], [100, 0, 1000], [0, 0, 0]]]])
    z = np.ones((1, 1, 2, 2))
    z[0, 0, 1, 0] = np.nan
    assert np.isnan(mg.max_pool2d(z, 2).data).all()


def test_max_pool_routes_the_gradient_to_one_input_per_window():
    x = mg.tensor(rand(2, 2, 4, 4), requires_grad=True)
    mg.max_pool2d(x, 2).sum().backward()
    assert x.grad.shape == x.shape
    # each 2×2 window of x has exactly one 1, at its maximum
    windows = x.grad.reshape(2, 2, 2, 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(2, 2, 2, 2, 4)
    np.testing.assert_array_equal(windows.sum(axis=-1), 1.0)
    xw = x.data.reshape(2, 2, 2, 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(2, 2, 2, 2, 4)
    np.testing.assert_array_equal(windows.argmax(axis=-1), xw.argmax(axis=-1))


def test_im2col_and_col2im_are_adjoint():
    x = rand(2, 3, 6, 5)
    cols = kernels.im2col(x, 3, 2, 2, 1)
    assert cols.shape == (2, 3 * 3 * 2, 3 * 3)
    c = rand(*cols.shape, seed=1)
    # <im2col(x), c> = <x, col2im(c)>: col2im is the transpose of im2col, the backward of the copy
    assert np.vdot(cols, c) == pytest.approx(np.vdot(x, kernels.col2im(c, x.shape, 3, 2, 2, 1)), rel=1e-12)


# ---- against PyTorch -----------------------------------------------------------------------


def test_conv_pool_network_matches_pytorch_in_float64():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(3)
    xs = rng.standard_normal((3, 2, 11, 10))
    w1, b1 = rng.standard_normal((4, 2, 3, 3)), rng.standard_normal(4)
    w2, b2 = rng.standard_normal((5, 4, 2, 2)), rng.standard_normal(5)
    params = [mg.tensor(a, requires_grad=True) for a in (xs, w1, b1, w2, b2)]
    x, mw1, mb1, mw2, mb2 = params
    h = mg.conv2d(x, mw1, mb1, stride=2, padding=1, relu=True)
    h = mg.max_pool2d(h, 2, 1)
    h = mg.conv2d(h, mw2, mb2, stride=1, padding=2)
    y = mg.avg_pool2d(h, 3, 2)
    upstream = rng.standard_normal(y.shape)
    y.backward(upstream)

    tparams = [torch.tensor(a, requires_grad=True) for a in (xs, w1, b1, w2, b2)]
    tx, tw1, tb1, tw2, tb2 = tparams
    th = F.relu(F.conv2d(tx, tw1, tb1, stride=2, padding=1))
    th = F.max_pool2d(th, 2, 1)
    th = F.conv2d(th, tw2, tb2, stride=1, padding=2)
    ty = F.avg_pool2d(th, 3, 2)
    ty.backward(torch.tensor(upstream))
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    for p, tp in zip(params, tparams):
        np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-10, atol=1e-11)


# ---- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize("make, exc, match", [
    (lambda x, w: mg.conv2d(x.reshape(3, 6, 6), w), ValueError, r"x must be 4-D \(N, C, H, W\), got shape \(3, 6, 6\)"),
    (lambda x, w: mg.conv2d(x, w.reshape(4, 27)), ValueError, r"w must be 4-D \(F, C, KH, KW\)"),
    (lambda x, w: mg.conv2d(x, mg.tensor(rand(4, 2, 3, 3))), ValueError, "x has 3 channels .* but w expects 2"),
    (lambda x, w: mg.conv2d(x, mg.tensor(rand(4, 3, 9, 3))), ValueError,
     r"the 9x3 kernel .* is larger than the padded input 6x6"),
    (lambda x, w: mg.conv2d(x, w, stride=0), ValueError, "stride must be >= 1, got 0"),
    (lambda x, w: mg.conv2d(x, w, padding=-1), ValueError, "padding must be >= 0, got -1"),
    (lambda x, w: mg.conv2d(x, w, stride=1.5), TypeError, "stride must be an integer, got 1.5"),
    (lambda x, w: mg.conv2d(x, w, padding=True), TypeError, "padding must be an integer"),
    (lambda x, w: mg.conv2d(x, w, mg.tensor(rand(3))), ValueError, r"b has shape \(3,\), expected \(4,\)"),
    (lambda x, w: mg.conv2d(x, mg.tensor(rand(4, 3, 3, 3).astype(np.float32))), TypeError, "dtypes differ"),
    (lambda x, w: mg.max_pool2d(x, 7), ValueError, "the 7x7 window is larger than the input 6x6"),
    (lambda x, w: mg.avg_pool2d(x, (2, 7)), ValueError, "the 2x7 window is larger than the input 6x6"),
    (lambda x, w: mg.max_pool2d(x, 2, stride=0), ValueError, "stride must be >= 1"),
    (lambda x, w: mg.max_pool2d(x, 2.0), TypeError, "kernel_size must be an integer"),
    (lambda x, w: mg.avg_pool2d(x.reshape(1, 3, 36), 2), ValueError, "x must be 4-D"),
    (lambda x, w: mg.conv2d(x, w, stride=2**63 - 1, padding=2), ValueError, r"stride must be < 2\*\*31"),
    (lambda x, w: mg.conv2d(x, w, padding=2**62), ValueError, r"padding must be < 2\*\*31"),
])
def test_bad_input_is_a_clear_error_and_changes_nothing(make, exc, match):
    x = mg.tensor(rand(1, 3, 6, 6), requires_grad=True)
    w = mg.tensor(rand(4, 3, 3, 3, seed=1), requires_grad=True)
    before = x.data.copy(), w.data.copy()
    with pytest.raises(exc, match=match):
        make(x, w)
    np.testing.assert_array_equal(x.data, before[0])
    np.testing.assert_array_equal(w.data, before[1])


def test_kernel_errors_name_the_kernel():
    with pytest.raises(ValueError, match="conv2d_forward: x has 2 channels"):
        kernels.conv2d_forward(rand(1, 2, 5, 5), rand(3, 4, 3, 3))
    with pytest.raises(ValueError, match=r"im2col: stride must be < 2\*\*31"):
        kernels.im2col(rand(1, 1, 4, 4), 3, 3, 2**63 - 1, 2)
    with pytest.raises(ValueError, match=r"col2im: padding must be < 2\*\*31"):
        kernels.col2im(rand(1, 4, 1), (1, 1, 1, 1), 2, 2, 1, 2**31)
    with pytest.raises(ValueError, match="would have more than 2\\*\\*63 elements"):
        kernels.im2col(rand(1, 1, 1, 1), 2, 2, 1, 2**31 - 1)
    with pytest.raises(ValueError, match=r"conv2d_forward: padding must be < 2\*\*31"):
        kernels.conv2d_forward(rand(1, 1, 4, 4), rand(1, 1, 1, 1), padding=2**63 - 1)
    with pytest.raises(ValueError, match="conv2d_backward: cols has shape"):
        kernels.conv2d_backward(rand(1, 3, 3, 3), rand(1, 5, 9), rand(3, 2, 3, 3), (1, 2, 5, 5))
    with pytest.raises(ValueError, match="max_pool2d_backward: argmax holds 99"):
        kernels.max_pool2d_backward(rand(1, 1, 1, 1), np.array([[[[99]]]]), (1, 1, 2, 2), 2, 2, 2)


def test_kernel_outputs_must_not_overlap():
    x, w = rand(1, 2, 5, 5), rand(3, 2, 3, 3, seed=1)
    y, cols = kernels.conv2d_forward(x, w, padding=1)
    dw = np.zeros_like(w)
    with pytest.raises(ValueError, match="conv2d_backward: dw and db overlap"):
        kernels.conv2d_backward(np.ones_like(y), cols, w, x.shape, 1, 1, dw=dw, db=dw.reshape(-1)[:3])
    np.testing.assert_array_equal(dw, 0.0)
    # a pooling gradient written over the argmax it reads: refused (the indices would change under it)
    buf = np.zeros(32)
    dx = buf[:16].reshape(1, 1, 4, 4)
    argmax = buf[16:20].view(np.int64).reshape(1, 1, 2, 2)
    argmax[...] = [[[[0, 2], [8, 10]]]]
    with pytest.raises(ValueError, match="max_pool2d_backward: out overlaps argmax"):
        kernels.max_pool2d_backward(np.ones((1, 1, 2, 2)), argmax, (1, 1, 4, 4), 2, 2, 2, out=buf[12:28].reshape(1, 1, 4, 4))
    out = kernels.max_pool2d_backward(np.ones((1, 1, 2, 2)), argmax, (1, 1, 4, 4), 2, 2, 2, out=dx)
    assert out is dx and dx.sum() == 4 and dx[0, 0, 0, 0] == 1 and dx[0, 0, 2, 2] == 1


def test_given_gradients_are_overwritten_without_accumulate():
    x, w = rand(2, 2, 5, 5), rand(3, 2, 3, 3, seed=1)
    y, cols = kernels.conv2d_forward(x, w, padding=1)
    gy = rand(*y.shape, seed=2)
    fresh = kernels.conv2d_backward(gy, cols, w, x.shape, 1, 1)
    given = [np.full(x.shape, 9.0), np.full(w.shape, 9.0), np.full(3, 9.0)]
    out = kernels.conv2d_backward(gy, cols, w, x.shape, 1, 1, dx=given[0], dw=given[1], db=given[2],
                                  accumulate_dx=False, accumulate_dw=False, accumulate_db=False)
    for o, g, f in zip(out, given, fresh):
        assert o is g
        np.testing.assert_array_equal(o, f)
    out = kernels.conv2d_backward(gy, cols, w, x.shape, 1, 1, dx=given[0], dw=given[1], db=given[2])
    for o, f in zip(out, fresh):
        np.testing.assert_allclose(o, 2 * f, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_given_forward_outputs_are_overwritten_and_checked(dtype):
    x, w, b = rand(2, 2, 5, 5, dtype=dtype), rand(3, 2, 3, 3, seed=1, dtype=dtype), rand(3, seed=2, dtype=dtype)
    fresh, _ = kernels.conv2d_forward(x, w, b, 1, 1, True)
    given = np.full(fresh.shape, np.nan, dtype)  # NaN: any read of it would show
    y, _ = kernels.conv2d_forward(x, w, b, 1, 1, True, out=given)
    assert y is given
    np.testing.assert_array_equal(y, fresh)
    with pytest.raises(ValueError, match="conv2d_forward: out has shape"):
        kernels.conv2d_forward(x, w, b, 1, 1, out=np.empty((2, 3, 5, 4), dtype))
    with pytest.raises(TypeError, match="conv2d_forward: out has dtype"):
        kernels.conv2d_forward(x, w, b, 1, 1, out=np.empty(fresh.shape, np.float16))
    with pytest.raises(ValueError, match="conv2d_forward: out must be C-contiguous"):
        kernels.conv2d_forward(x, w, b, 1, 1, out=np.empty((2, 3, 5, 10), dtype)[..., ::2])
    shared = np.zeros(x.size + fresh.size, dtype)  # x and out in one buffer, overlapping by half of x
    x_in = shared[: x.size].reshape(x.shape)
    x_in[...] = x
    with pytest.raises(ValueError, match="conv2d_forward: out overlaps an input"):
        kernels.conv2d_forward(x_in, w, b, 1, 1, out=shared[x.size // 2 : x.size // 2 + fresh.size].reshape(fresh.shape))

    xp = rand(2, 3, 6, 6, seed=3, dtype=dtype)
    y0, a0 = kernels.max_pool2d_forward(xp, 2, 2, 2)
    y_out, a_out = np.full(y0.shape, np.nan, dtype), np.full(y0.shape, -7, np.int64)
    y1, a1 = kernels.max_pool2d_forward(xp, 2, 2, 2, out=y_out, argmax_out=a_out)
    assert y1 is y_out and a1 is a_out
    np.testing.assert_array_equal(y1, y0)
    np.testing.assert_array_equal(a1, a0)
    with pytest.raises(TypeError, match="max_pool2d_forward: argmax_out has dtype int32, expected int64"):
        kernels.max_pool2d_forward(xp, 2, 2, 2, argmax_out=np.empty(y0.shape, np.int32))
    with pytest.raises(ValueError, match="max_pool2d_forward: out has shape"):
        kernels.max_pool2d_forward(xp, 2, 2, 2, out=np.empty((2, 3, 3, 2), dtype))
    both = np.zeros(y0.size, np.int64)  # y and argmax in the same bytes
    with pytest.raises(ValueError, match="max_pool2d_forward: argmax_out overlaps an input"):
        kernels.max_pool2d_forward(xp, 2, 2, 2, out=both.view(dtype)[: y0.size].reshape(y0.shape),
                                   argmax_out=both.reshape(y0.shape))


# ---- threads and the columns buffer --------------------------------------------------------


def _conv_step(seed=0, dtype=np.float32, stride=1, n=16, side=12):
    # 16 images, 2.6M multiply-adds, in 8 groups: enough for the threads to split the images;
    # one 20×20 image, 460k: enough for them to split its products
    x = mg.tensor(rand(n, 8, side, side, seed=seed, dtype=dtype), requires_grad=True)
    w = mg.tensor(rand(16, 8, 3, 3, seed=seed + 1, dtype=dtype), requires_grad=True)
    b = mg.tensor(rand(16, seed=seed + 2, dtype=dtype), requires_grad=True)
    y = mg.max_pool2d(mg.conv2d(x, w, b, stride, 1, relu=True), 3, 2)
    y.backward(rand(*y.shape, seed=seed + 3, dtype=dtype))
    return y.data, x.grad, w.grad, b.grad


# stride 1: the implicit scheme, images split between the threads (16 images) and one image
# whose products the threads split; stride 2: the columns scheme
@pytest.mark.parametrize("stride, n, side", [(1, 16, 12), (1, 1, 20), (2, 16, 12)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_and_two_threads_give_the_same_bits(threads, dtype, stride, n, side):
    assert kernels.conv_uses_columns((n, 8, side, side), (16, 8, 3, 3), stride, 1) == (stride == 2)
    assert n * 16 * 72 * side * side >= 2**18  # kConvParallelMinMacs: two threads share the work
    threads(1)
    one = _conv_step(dtype=dtype, stride=stride, n=n, side=side)
    threads(2)
    two = _conv_step(dtype=dtype, stride=stride, n=n, side=side)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


def test_the_columns_buffer_is_reused_across_steps():
    conv_ops.workspaces.clear()
    x = mg.tensor(rand(4, 3, 10, 10, dtype=np.float32))
    w = mg.tensor(rand(8, 3, 3, 3, dtype=np.float32), requires_grad=True)
    held = []
    for _ in range(3):
        mg.conv2d(x, w, stride=2, padding=1).sum().backward()
        gc.collect()
        held.append(conv_ops.workspaces.nbytes())
    assert held[0] == held[1] == held[2] == 4 * 27 * 25 * 4  # one buffer of N·K·P floats, kept


def test_stride_one_convolutions_keep_no_columns():
    conv_ops.workspaces.clear()
    x = mg.tensor(rand(4, 8, 10, 10, dtype=np.float32), requires_grad=True)
    w = mg.tensor(rand(8, 8, 3, 3, dtype=np.float32), requires_grad=True)
    y = mg.conv2d(x, w, padding=1)
    assert conv_ops.workspaces.nbytes() == 0  # the backward reads x again
    y.sum().backward()
    assert x.grad.shape == x.shape and w.grad.shape == w.shape


@pytest.mark.parametrize("x_shape, w_shape, stride, pad, columns", [
    ((64, 16, 16, 16), (32, 16, 3, 3), 1, 1, False),  # 3×3 "same": padded rows 18 <= 5/4 · 16
    ((50, 8, 32, 32), (32, 8, 7, 7), 1, 3, False),    # 7×7: 38 <= 40
    ((2, 8, 5, 5), (4, 8, 1, 1), 1, 0, True),         # 1×1: its columns are x itself
    ((2, 65, 9, 9), (4, 65, 3, 3), 1, 1, True),       # more than 64 channels
    ((2, 64, 9, 9), (4, 64, 3, 3), 1, 1, False),      # 64
    ((50, 3, 32, 32), (32, 3, 7, 7), 1, 3, True),     # cs231n's: 3 channels (fewer than 8)
    ((64, 16, 16, 16), (32, 16, 3, 3), 2, 1, True),   # stride 2
    ((1, 8, 8, 8), (4, 8, 3, 3), 1, 3, True),         # padding >= the kernel
    ((1, 8, 6, 6), (4, 8, 3, 3), 1, 1, True),         # padded rows 8 > 5/4 · 6
])
def test_which_convolutions_use_columns(x_shape, w_shape, stride, pad, columns):
    assert kernels.conv_uses_columns(x_shape, w_shape, stride, pad) is columns
    x, w = rand(*x_shape[:1], *x_shape[1:]), rand(*w_shape, seed=1)
    if x.size > 10_000:
        return
    y, cols = kernels.conv2d_forward(x, w, None, stride, pad)
    assert (cols is not None) == columns
    np.testing.assert_allclose(y, conv_forward_naive(x, w, None, stride, pad), rtol=1e-12, atol=1e-12)


def test_the_implicit_scheme_kernels_take_x_not_columns():
    x, w = rand(2, 8, 9, 9), rand(3, 8, 3, 3, seed=1)
    assert not kernels.conv_uses_columns(x.shape, w.shape, 1, 1)
    y, cols = kernels.conv2d_forward(x, w, padding=1)
    assert cols is None
    with pytest.raises(ValueError, match="conv2d_forward: this convolution .* runs without im2col columns"):
        kernels.conv2d_forward(x, w, padding=1, cols=np.empty((2, 72, 81)))
    gy = rand(*y.shape, seed=2)
    with pytest.raises(ValueError, match="conv2d_backward: this convolution .* reads the forward's input for dw"):
        kernels.conv2d_backward(gy, None, w, x.shape, 1, 1)
    with pytest.raises(ValueError, match="conv2d_backward: this convolution .* has no columns"):
        kernels.conv2d_backward(gy, np.empty((2, 72, 81)), w, x.shape, 1, 1, x=x)
    with pytest.raises(ValueError, match="conv2d_backward: x has shape"):
        kernels.conv2d_backward(gy, None, w, x.shape, 1, 1, x=x[:1])
    dx, dw, db = kernels.conv2d_backward(gy, None, w, x.shape, 1, 1, x=x)
    # against the columns: dw = Σ_i g_i·cols_iᵀ, dx = col2im(wᵀ·g_i)
    cols = kernels.im2col(x, 3, 3, 1, 1)
    g = gy.reshape(2, 3, 81)
    np.testing.assert_allclose(dw.reshape(3, -1), sum(g[i] @ cols[i].T for i in range(2)), rtol=1e-12)
    dcols = np.stack([w.reshape(3, -1).T @ g[i] for i in range(2)])
    np.testing.assert_allclose(dx, kernels.col2im(dcols, x.shape, 3, 3, 1, 1), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(db, gy.sum(axis=(0, 2, 3)), rtol=1e-12)
    with pytest.raises(ValueError, match="conv2d_backward: x has shape"):  # checked even where not read
        kernels.conv2d_backward(gy, None, w, x.shape, 1, 1, need_dw=False, x=x[:1])
    # dx alone needs neither x nor columns
    only_dx = kernels.conv2d_backward(gy, None, w, x.shape, 1, 1, need_dw=False, need_db=False)
    np.testing.assert_array_equal(only_dx[0], dx)
    assert only_dx[1] is None and only_dx[2] is None


def test_a_copy_of_the_output_keeps_the_columns_lent():
    import copy

    x1, x2 = mg.tensor(rand(2, 3, 6, 6, seed=1)), mg.tensor(rand(2, 3, 6, 6, seed=2))
    w = mg.tensor(rand(4, 3, 3, 3, seed=3), requires_grad=True)
    gy = rand(2, 4, 6, 6, seed=4)
    mg.conv2d(x1, w, padding=1).backward(gy)
    want = w.grad.copy()
    w.grad = None
    y = mg.conv2d(x1, w, padding=1)
    y_copy = copy.copy(y)  # shares y's backward, and with it the columns
    del y
    gc.collect()
    mg.conv2d(x2, w, padding=1)  # must not be given the same buffer
    y_copy.backward(gy)
    np.testing.assert_array_equal(w.grad, want)


def test_the_pool_keeps_at_most_four_buffers_and_no_grad_does_not_grow_it():
    conv_ops.workspaces.clear()
    w = mg.tensor(rand(4, 3, 3, 3), requires_grad=True)
    kept = [mg.conv2d(mg.tensor(rand(2, 3, 6, 6, seed=i)), w, padding=1) for i in range(10)]
    assert len(conv_ops.workspaces._slots) == 10  # all lent: each output may still be backpropagated
    del kept
    gc.collect()
    mg.conv2d(mg.tensor(rand(2, 3, 6, 6)), w, padding=1)
    assert len(conv_ops.workspaces._slots) <= 4
    held = conv_ops.workspaces.nbytes()
    with mg.no_grad():
        mg.conv2d(mg.tensor(rand(50, 3, 6, 6)), w, padding=1)  # larger than any buffer kept
    assert conv_ops.workspaces.nbytes() == held


def test_two_forwards_before_a_backward_do_not_share_columns():
    x1 = mg.tensor(rand(2, 3, 6, 6, seed=1))
    x2 = mg.tensor(rand(2, 3, 6, 6, seed=2))
    w = mg.tensor(rand(4, 3, 3, 3, seed=3), requires_grad=True)
    loss = (mg.conv2d(x1, w, padding=1) * 2.0).sum() + mg.conv2d(x2, w, padding=1).sum()
    loss.backward()
    w_both = w.grad.copy()
    w.grad = None
    mg.conv2d(x1, w, padding=1).sum().backward()
    w_one = w.grad.copy()
    w.grad = None
    mg.conv2d(x2, w, padding=1).sum().backward()
    np.testing.assert_allclose(w_both, 2 * w_one + w.grad, rtol=1e-12)


def test_retain_graph_keeps_the_columns_for_a_second_backward():
    x = mg.tensor(rand(2, 3, 6, 6))
    w = mg.tensor(rand(4, 3, 3, 3, seed=1), requires_grad=True)
    y = mg.conv2d(x, w, padding=1).sum()
    y.backward(retain_graph=True)
    first = w.grad.copy()
    mg.conv2d(mg.tensor(rand(2, 3, 6, 6, seed=9)), w, padding=1)  # another forward in between
    y.backward()
    np.testing.assert_allclose(w.grad, 2 * first, rtol=1e-12)


# ---- layers --------------------------------------------------------------------------------


def test_conv2d_layer_shapes_init_and_fusion_with_relu():
    mg.manual_seed(0)
    layer = mg.nn.Conv2d(16, 32, 3, padding=1)
    assert layer.weight.shape == (32, 16, 3, 3) and layer.bias.shape == (32,)
    assert layer.weight.dtype == np.float32
    assert layer.weight.data.std() == pytest.approx(np.sqrt(2 / (16 * 9)), rel=0.03)  # He
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]
    x = mg.tensor(rand(2, 16, 5, 5, dtype=np.float32))
    fused = mg.nn.Sequential(layer, mg.nn.ReLU())(x)
    assert fused._op == "conv2d_relu"
    np.testing.assert_array_equal(fused.data, mg.relu(layer(x)).data)
    pool = mg.nn.MaxPool2d(2)(fused)
    assert pool.shape == (2, 32, 2, 2)
    assert mg.nn.AvgPool2d(3, stride=1)(fused).shape == (2, 32, 3, 3)


def test_conv2d_layer_bad_arguments():
    with pytest.raises(ValueError, match="Conv2d: in_channels must be a positive integer"):
        mg.nn.Conv2d(0, 3, 3)
    with pytest.raises(ValueError, match="Conv2d: stride must be the same along height and width"):
        mg.nn.Conv2d(1, 3, 3, stride=(1, 2))
    with pytest.raises(TypeError, match="Conv2d: kernel_size must be an integer"):
        mg.nn.Conv2d(1, 3, 2.5)


def test_a_small_cnn_gradchecks_end_to_end():
    mg.manual_seed(1)
    model = mg.nn.Sequential(mg.nn.Conv2d(1, 2, 3, padding=1, dtype=np.float64), mg.nn.ReLU(),
                             mg.nn.MaxPool2d(2), mg.nn.Flatten(), mg.nn.Linear(2 * 9, 3, dtype=np.float64))
    x = mg.tensor(rand(2, 1, 6, 6), requires_grad=True)
    labels = np.array([0, 2])
    assert mg.gradcheck(lambda x, *ps: mg.cross_entropy(model(x), labels), x, *model.parameters())


def test_conv_batchnorm_layernorm_network_matches_pytorch_in_float64():
    torch = pytest.importorskip("torch")
    tnn = torch.nn
    mg.manual_seed(5)
    d = np.float64
    net = mg.nn.Sequential(mg.nn.Conv2d(2, 4, 3, padding=1, dtype=d), mg.nn.BatchNorm2d(4, dtype=d), mg.nn.ReLU(),
                           mg.nn.MaxPool2d(2), mg.nn.Flatten(), mg.nn.LayerNorm(4 * 9, dtype=d),
                           mg.nn.Linear(4 * 9, 3, dtype=d))
    ref = tnn.Sequential(tnn.Conv2d(2, 4, 3, padding=1), tnn.BatchNorm2d(4), tnn.ReLU(), tnn.MaxPool2d(2),
                         tnn.Flatten(), tnn.LayerNorm(4 * 9), tnn.Linear(4 * 9, 3)).double()
    rng = np.random.default_rng(8)
    with torch.no_grad():  # the same parameters, with non-trivial norms' affine parts
        for name, p in net.named_parameters():
            p.data[...] = rng.standard_normal(p.data.shape)
            tp = dict(ref.named_parameters())[name]
            tp.copy_(torch.from_numpy(p.data.T.copy() if name == "6.weight" else p.data))  # Linear is (in, out)
    xs = rng.standard_normal((5, 2, 6, 7))
    upstream = rng.standard_normal((5, 3))
    x = mg.tensor(xs, requires_grad=True)
    net(x).backward(upstream)
    tx = torch.tensor(xs, requires_grad=True)
    ref(tx).backward(torch.tensor(upstream))
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-9, atol=1e-11)
    tparams = dict(ref.named_parameters())
    for name, p in net.named_parameters():
        want = tparams[name].grad.numpy()
        np.testing.assert_allclose(p.grad, want.T if name == "6.weight" else want, rtol=1e-9, atol=1e-11,
                                   err_msg=name)
    np.testing.assert_allclose(net[1].running_mean, ref[1].running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(net[1].running_var, ref[1].running_var.numpy(), rtol=1e-12)
    net.eval(), ref.eval()
    with torch.no_grad():
        np.testing.assert_allclose(net(mg.tensor(xs)).data, ref(torch.tensor(xs)).numpy(), rtol=1e-10, atol=1e-12)
