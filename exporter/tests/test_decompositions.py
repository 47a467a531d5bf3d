"""The backward-op rewrites against PyTorch's own kernels (eager, float64, no ONNX)."""

import pytest
import torch
import torch.nn.functional as F

from ddlens_exporter import decompositions as D

aten = torch.ops.aten


def _close(a, b, tol=1e-9):
    assert a.shape == b.shape, (a.shape, b.shape)
    assert torch.allclose(a, b, atol=tol, rtol=tol), (a - b).abs().max()


CONV_CASES = [
    # (in_ch, out_ch, size, kernel, stride, padding, dilation, groups)
    (3, 4, 9, 3, 1, 1, 1, 1),
    (1, 4, 28, 3, 1, 3, 1, 1),  # padding beyond the kernel reach (ConvNet's first conv on 28x28)
    (3, 5, 10, 3, 2, 1, 1, 1),  # strided, the floor division drops a row
    (2, 3, 11, 3, 2, 0, 2, 1),  # strided + dilated
    (2, 4, 7, 1, 1, 0, 1, 1),
    (3, 2, 8, (3, 1), (2, 1), (1, 0), 1, 1),  # non-square
    (4, 6, 8, 3, 1, 1, 1, 2),  # grouped: input gradient only
]


@pytest.mark.parametrize("impl", D.GRAD_WEIGHT_IMPLS)
@pytest.mark.parametrize("case", CONV_CASES)
def test_convolution_backward(case, impl):
    cin, cout, size, k, s, p, d, g = case
    torch.manual_seed(0)
    x = torch.randn(3, cin, size, size + 1, dtype=torch.float64)
    conv = torch.nn.Conv2d(cin, cout, k, s, p, d, g).double()
    y = conv(x)
    go = torch.randn_like(y)
    args = (go, x, conv.weight, [cout], conv.stride, conv.padding, conv.dilation, False, [0, 0], g)
    mask = [True, g == 1, True]
    want = aten.convolution_backward.default(*args, mask)
    got = D.make_convolution_backward(impl)(*args, mask)
    for w_, g_ in zip(want, got):
        if g_ is not None:
            _close(g_, w_)


@pytest.mark.parametrize("case", [(3, 4, 5, 3, 2, 1, 1), (2, 3, 4, 2, 2, 0, 1), (2, 2, 6, 3, 1, 1, 1)])
def test_transposed_convolution_backward(case):
    cin, cout, size, k, s, p, op = case
    torch.manual_seed(1)
    x = torch.randn(2, cin, size, size, dtype=torch.float64)
    conv = torch.nn.ConvTranspose2d(cin, cout, k, s, p, output_padding=op if s > 1 else 0).double()
    y = conv(x)
    go = torch.randn_like(y)
    args = (go, x, conv.weight, [cout], conv.stride, conv.padding, conv.dilation, True, conv.output_padding, 1)
    want = aten.convolution_backward.default(*args, [True, True, True])
    got = D.make_convolution_backward()(*args, [True, True, True])
    for w_, g_ in zip(want, got):
        _close(g_, w_)


def test_grouped_weight_gradient_is_refused_clearly():
    x = torch.randn(2, 4, 5, 5)
    w = torch.randn(4, 2, 3, 3)
    go = torch.randn(2, 4, 3, 3)
    with pytest.raises(NotImplementedError, match="groups=2"):
        D.make_convolution_backward()(go, x, w, None, [1, 1], [0, 0], [1, 1], False, [0, 0], 2, [False, True, False])


def test_conv_weight_grad_op_derivatives():
    """The opaque weight-gradient op's derivative rule against autograd through the
    im2col formulation (what its lowering computes)."""
    torch.manual_seed(2)
    for stride, padding, dilation, size in [([1, 1], [1, 1], [1, 1], 6), ([2, 2], [1, 0], [1, 2], 9), ([1, 1], [3, 3], [1, 1], 5)]:
        x = torch.randn(2, 3, size, size, dtype=torch.float64, requires_grad=True)
        w = torch.randn(4, 3, 3, 3, dtype=torch.float64)
        y = F.conv2d(x, w, None, stride, padding, dilation)
        g = torch.randn_like(y, requires_grad=True)
        cot = torch.randn_like(w)
        op = torch.ops.ddlens.conv_weight_grad(g, x, [3, 3], stride, padding, dilation, "matmul")
        ref = D._conv_grad_weight_matmul(g, x, [3, 3], stride, padding, dilation)
        _close(op, ref)
        got = torch.autograd.grad((op * cot).sum(), [g, x])
        want = torch.autograd.grad((ref * cot).sum(), [g, x])
        for a, b in zip(got, want):
            _close(a, b)


IM2COL_CASES = [
    # (size, kernel, stride, padding, dilation)
    ((7, 6), [3, 3], [1, 1], [1, 1], [1, 1]),
    ((7, 6), [2, 3], [2, 1], [0, 1], [1, 2]),
    ((9, 8), [3, 2], [1, 3], [2, 0], [2, 1]),
    ((5, 5), [3, 3], [3, 3], [3, 3], [1, 1]),  # padding beyond the kernel's reach
]


@pytest.mark.parametrize("case", IM2COL_CASES)
def test_im2col_op_against_the_strided_slices_and_its_derivative(case):
    """``ddlens::im2col`` (the fused op the weight gradient starts from) against the strided
    slices it replaced, and its derivative rule (col2im) against autograd through them."""
    size, k, s, p, d = case
    torch.manual_seed(3)
    x = torch.randn(2, 3, *size, dtype=torch.float64, requires_grad=True)
    out = [(n + 2 * p_ - d_ * (k_ - 1) - 1) // s_ + 1 for n, k_, s_, p_, d_ in zip(size, k, s, p, d)]
    xp = F.pad(x.transpose(0, 1), [p[1], p[1], p[0], p[0]])
    taps = [xp[:, :, a * d[0]:a * d[0] + (out[0] - 1) * s[0] + 1:s[0], b * d[1]:b * d[1] + (out[1] - 1) * s[1] + 1:s[1]]
            for a in range(k[0]) for b in range(k[1])]
    want = torch.stack(taps, 1).reshape(3 * k[0] * k[1], -1)
    got = torch.ops.ddlens.im2col(x, k, s, p, d)
    _close(got, want)
    cot = torch.randn_like(want)
    _close(torch.autograd.grad((got * cot).sum(), x)[0], torch.autograd.grad((want * cot).sum(), x)[0])


POOL_CASES = [
    # (size, kernel, stride, padding, count_include_pad, divisor_override)
    (8, 2, 2, 0, True, None),
    (9, 2, 2, 0, True, None),  # odd size: the last row is in no window
    (8, 3, 2, 1, True, None),
    (8, 3, 2, 1, False, None),
    (7, 3, 1, 1, False, None),
    (8, 2, 2, 0, True, 3),
    (8, (3, 2), (2, 1), (1, 0), False, None),
]


@pytest.mark.parametrize("case", POOL_CASES)
def test_avg_pool2d_backward(case):
    size, k, s, p, cip, div = case
    x = torch.randn(2, 3, size, size + 1, dtype=torch.float64)
    y = F.avg_pool2d(x, k, s, p, False, cip, div)
    go = torch.randn_like(y)
    args = (go, x, k if isinstance(k, tuple) else [k], s if isinstance(s, tuple) else [s],
            p if isinstance(p, tuple) else [p], False, cip, div)
    _close(D.avg_pool2d_backward(*args), aten.avg_pool2d_backward.default(*args))


def test_avg_pool2d_backward_refuses_ceil_mode():
    x = torch.randn(1, 1, 5, 5)
    go = torch.randn(1, 1, 3, 3)
    with pytest.raises(NotImplementedError, match="ceil_mode"):
        D.avg_pool2d_backward(go, x, [2], [2], [0], True, True, None)


@pytest.mark.parametrize("case", [(8, 2, 2, 0), (9, 2, 2, 0), (9, 3, 3, 0), (8, 3, 2, 1), (8, 2, 1, 0)])
def test_max_pool2d_backward(case):
    size, k, s, p = case
    x = torch.randn(2, 3, size, size + 1, dtype=torch.float64)
    y, idx = F.max_pool2d(x, k, s, p, return_indices=True)
    go = torch.randn_like(y)
    args = (go, x, [k], [s], [p], [1], False, idx)
    _close(D.max_pool2d_with_indices_backward(*args), aten.max_pool2d_with_indices_backward.default(*args))


ADAPTIVE_CASES = [
    # (height, width, output size)
    (8, 8, (4, 4)),  # divisible: a plain pool with kernel = stride = 2
    (6, 9, (1, 1)),  # global pooling
    (8, 6, (2, 3)),  # divisible, non-square
    (7, 9, (3, 4)),  # windows of different lengths that overlap
    (5, 7, (5, 3)),  # one axis identity, the other general
    (4, 4, (6, 6)),  # output larger than the input: windows repeat pixels
]


def _adaptive_eager_grads(fn, x, go):
    """Input gradient of ``<fn(x), go>`` with PyTorch's own kernels (torch.func)."""
    return torch.func.vjp(fn, x)[1](go)[0]


@pytest.mark.parametrize("case", ADAPTIVE_CASES)
def test_adaptive_avg_pool2d_forward_and_backward(case):
    h, w, out = case
    torch.manual_seed(3)
    x = torch.randn(2, 3, h, w, dtype=torch.float64)
    want = F.adaptive_avg_pool2d(x, out)
    _close(D.adaptive_avg_pool2d(x, out), want)
    go = torch.randn_like(want)
    want_grad = _adaptive_eager_grads(lambda t: F.adaptive_avg_pool2d(t, out), x, go)
    _close(D.adaptive_avg_pool2d_backward(go, x), want_grad)
    # Unbatched [C, H, W] inputs too.
    _close(D.adaptive_avg_pool2d_backward(go[0], x[0]), want_grad[0])


@pytest.mark.parametrize("case", ADAPTIVE_CASES)
def test_adaptive_max_pool2d_forward_and_backward(case):
    h, w, out = case
    torch.manual_seed(4)
    x = torch.randn(2, 3, h, w, dtype=torch.float64)
    want, want_idx = F.adaptive_max_pool2d(x, out, return_indices=True)
    got, got_idx = D.adaptive_max_pool2d(x, out)
    _close(got, want)
    assert torch.equal(got_idx, want_idx)
    go = torch.randn_like(want)
    want_grad = _adaptive_eager_grads(lambda t: F.adaptive_max_pool2d(t, out), x, go)
    _close(D.adaptive_max_pool2d_backward(go, x, want_idx), want_grad)
    _close(D.adaptive_max_pool2d_backward(go[0], x[0], want_idx[0]), want_grad[0])


@pytest.mark.parametrize("case", [(0, 5, 1), (1, 9, 1), (2, 8, 2), (1, 10, 3), (-4, 2**62, 1), (3, 7, 4)])
def test_slice_backward(case):
    start, end, step = case
    x = torch.randn(3, 10, 4, dtype=torch.float64)
    go = torch.randn_like(x[:, start:end:step] if start >= 0 else x[:, start:])
    args = (go, list(x.shape), 1, start, end, step)
    _close(D.slice_backward(*args), aten.slice_backward.default(*args))


def test_norm_rewrites_match_the_fused_ops():
    x = torch.randn(3, 6, 5, 5, dtype=torch.float64)
    w, b = torch.randn(6, dtype=torch.float64), torch.randn(6, dtype=torch.float64)
    want = aten.native_group_norm.default(x, w, b, 3, 6, 25, 3, 1e-5)
    got = D.native_group_norm(x, w, b, 3, 6, 25, 3, 1e-5)
    for a, c in zip(got, want):
        _close(a, c)
    w2, b2 = torch.randn(5, 5, dtype=torch.float64), torch.randn(5, 5, dtype=torch.float64)
    want = aten.native_layer_norm.default(x, [5, 5], w2, b2, 1e-5)
    got = D.native_layer_norm(x, [5, 5], w2, b2, 1e-5)
    for a, c in zip(got, want):
        _close(a, c)


@pytest.mark.parametrize("spread", [1.0, 3e-3])  # 3e-3: the variance near eps, which then matters
def test_instance_norm_ops_differentiate_twice_as_the_reductions(spread):
    """``ddlens::instance_norm`` (whose derivative is ``ddlens::instance_norm_backward``, whose
    derivative is ``ddlens::instance_norm_double_backward``) against the norm written as
    reductions, through a gradient and the gradient of its inner product with a random vector
    (what ``grad_vjp`` computes), float64."""
    torch.manual_seed(0)
    x = torch.randn(3, 4, 5, 6, dtype=torch.float64) * spread + 0.3
    w, b = torch.randn(4, dtype=torch.float64), torch.randn(4, dtype=torch.float64)
    h = torch.randn_like(x)
    ax, aw, ab = torch.randn_like(x), torch.randn_like(w), torch.randn_like(b)

    def second_order(norm):
        leaves = [t.clone().requires_grad_() for t in (x, w, b)]
        loss = (torch.tanh(norm(*leaves)) * h).sum()
        grads = torch.autograd.grad(loss, leaves, create_graph=True)
        inner = sum((g * a).sum() for g, a in zip(grads, (ax, aw, ab)))
        return [g.detach() for g in grads] + list(torch.autograd.grad(inner, leaves))

    want = second_order(_reduction_instance_norm)
    table = D.twice_differentiable_table()
    got = second_order(lambda x, w, b: table[aten.native_group_norm.default](x, w, b, 3, 4, 30, 4, 1e-5)[0])
    for a, c in zip(got, want):
        _close(a, c, tol=1e-9 / spread)


def _reduction_instance_norm(x, w, b):
    """An instance norm written out as reductions (what the twice-differentiable graphs used
    before ``ddlens::instance_norm``)."""
    mean = x.mean((2, 3), keepdim=True)
    rstd = torch.rsqrt(((x - mean) ** 2).mean((2, 3), keepdim=True) + 1e-5)
    return (x - mean) * rstd * w[None, :, None, None] + b[None, :, None, None]


def test_table_contents():
    table = D.decomposition_table()
    for op in (aten.convolution_backward.default, aten.avg_pool2d_backward.default,
               aten.max_pool2d_with_indices_backward.default, aten.slice_backward.default,
               aten._adaptive_avg_pool2d_backward.default, aten.adaptive_max_pool2d_backward.default,
               aten._adaptive_avg_pool2d.default, aten.adaptive_max_pool2d.default):
        assert op in table
    assert aten.native_group_norm.default not in table  # fused in the forward graphs
    assert aten.native_group_norm.default in D.twice_differentiable_table()
    with pytest.raises(ValueError, match="grad_weight_impl"):
        D.make_convolution_backward("nope")
