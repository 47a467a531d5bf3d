"""Decompositions used while tracing the role graphs.

The role graphs (gradients, Hessian-vector products, ...) are traced *below* autograd with
``make_fx``, so PyTorch's backward kernels show up in them as single ops:
``aten.convolution_backward``, ``aten.avg_pool2d_backward``,
``aten.max_pool2d_with_indices_backward``. ``torch.onnx`` has no ONNX lowering for them, so
this module rewrites each one into *forward* ops that ONNX has (Conv, ConvTranspose, MatMul,
Where, Pad) while tracing. Everything else goes through PyTorch's own core-ATen table.

The backward lowering is where ONNX Runtime wins or loses against PyTorch, so each rewrite
picks a formulation that ONNX Runtime runs with its fast kernels (timings in the comments are
ConvNet-3 at batch 256 on one CPU thread): plain ``Conv`` rather than ``ConvTranspose`` for
the stride-1 input gradient, one large GEMM for the weight gradient, a depthwise
``ConvTranspose`` for pooling gradients, ``Pad`` instead of ``ScatterND`` for slice gradients.

Three more groups of rewrites serve the second-order graphs (see :mod:`.tracing`):

* ``ddlens::conv_weight_grad``, an opaque op for the weight gradient whose derivative rule is
  two convolutions; :func:`lowering_table` expands it at ONNX export;
* the fused norms (:func:`twice_differentiable_table`), because PyTorch treats their saved
  statistics as non-differentiable: the instance norm as ``ddlens::instance_norm``, whose
  derivatives are ops too (:mod:`.fused`), every other norm as plain reductions;
* :func:`slice_backward` as padding.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch._decomp import core_aten_decompositions
from torch._decomp import decompositions as _stock

from . import fused  # noqa: F401  (registers the ddlens:: ops)
from .diagnose import UnsupportedOp

aten = torch.ops.aten

#: How the convolution weight gradient is lowered: ``"matmul"`` (im2col by strided slices,
#: then one GEMM with a long reduction axis: fast in ONNX Runtime) or ``"conv"`` (a Conv of the
#: input and the output gradient with batch and channel axes swapped: the textbook identity,
#: but ONNX Runtime runs it as many skinny GEMMs; grad_vjp of ConvNet-3 took 3x as long).
GRAD_WEIGHT_IMPLS = ("matmul", "conv")


def _tuple(value: int | Sequence[int], n: int) -> list[Any]:
    """Expands an int or a length-1 list to ``n`` entries (PyTorch's ``_pair`` for any n)."""
    if isinstance(value, (list, tuple)):
        if len(value) == 1:
            return list(value) * n
        if len(value) != n:
            raise ValueError(f"expected {n} values, got {list(value)}")
        return list(value)
    return [value] * n


# --------------------------------------------------------------------------------------------
# convolution_backward
# --------------------------------------------------------------------------------------------


def _conv_grad_input(grad_out, inp, weight, stride, padding, dilation, groups):
    """Gradient of ``conv(inp, weight)`` w.r.t. ``inp``: the adjoint (transposed) convolution."""
    nsp = weight.dim() - 2
    ksize = list(weight.shape[2:])
    if all(s == 1 for s in stride):
        # Stride 1: the adjoint of a cross-correlation is a cross-correlation of the output
        # gradient with the flipped kernel whose in/out channel axes are swapped (per group).
        # ONNX Runtime runs this Conv a little faster than the equivalent ConvTranspose (186 vs
        # 199 ms on [256, 128, 16, 16], 3x3, one thread).
        out_ch, in_per_group = weight.shape[0], weight.shape[1]
        w = weight.reshape([groups, out_ch // groups, in_per_group, *ksize])
        w = w.transpose(1, 2).reshape([groups * in_per_group, out_ch // groups, *ksize])
        w = torch.flip(w, dims=list(range(2, 2 + nsp)))
        pads = [dilation[i] * (ksize[i] - 1) - padding[i] for i in range(nsp)]
        g = grad_out
        for i, p in enumerate(pads):
            if p < 0:
                # The forward padding exceeds the kernel reach (e.g. padding 3 for a 3x3
                # kernel): the outermost output rows only saw zeros, crop them instead of
                # using a negative padding.
                g = g.narrow(2 + i, -p, g.shape[2 + i] + 2 * p)
        pads = [max(p, 0) for p in pads]
        return aten.convolution.default(g, w, None, [1] * nsp, pads, list(dilation), False, [0] * nsp, groups)
    # Strided: ConvTranspose with the forward kernel. output_padding restores the input rows
    # the forward floor division dropped.
    out_pad = []
    for i in range(nsp):
        size = (grad_out.shape[2 + i] - 1) * stride[i] - 2 * padding[i] + dilation[i] * (ksize[i] - 1) + 1
        out_pad.append(inp.shape[2 + i] - size)
    return aten.convolution.default(
        grad_out, weight, None, list(stride), list(padding), list(dilation), True, out_pad, groups
    )


def _conv_grad_weight_conv(grad_out, inp, ksize, stride, padding, dilation):
    """Weight gradient as a convolution with batch and channel axes swapped.

    ``gw[o, c, k] = sum_{n, i} g[n, o, i] * x[n, c, i*stride + k*dilation - padding]`` is a
    cross-correlation of ``x^T`` ([C, N, H, W]) with the kernel ``g^T`` ([O, N, Ho, Wo]) where
    stride and dilation trade places. The result can be larger than the kernel when the
    forward pass dropped rows (floor division); those extra taps are cut off.
    """
    nsp = len(ksize)
    gw = aten.convolution.default(
        inp.transpose(0, 1), grad_out.transpose(0, 1), None,
        list(dilation), list(padding), list(stride), False, [0] * nsp, 1,
    )
    gw = gw.transpose(0, 1)
    for i, k in enumerate(ksize):
        if gw.shape[2 + i] != k:
            gw = gw.narrow(2 + i, 0, k)
    return gw


def _conv_grad_weight_matmul(grad_out, inp, ksize, stride, padding, dilation):
    """Weight gradient as one GEMM over an im2col matrix built from strided slices.

    For each kernel tap ``k`` the slice ``x_pad[:, :, k*dilation :: stride]`` (cropped to the
    output size) is exactly the set of inputs that tap multiplies. Stacking the taps gives the
    im2col matrix ``[C*K, N*Ho*Wo]`` and ``gw = g^T @ cols^T`` is a single well-shaped GEMM
    ([O, N*L] x [N*L, C*K]), which ONNX Runtime's MLAS runs near peak, instead of the C
    skinny GEMMs the swapped-axes Conv formulation turns into.
    """
    c_in = inp.shape[1]
    g = grad_out.transpose(0, 1).reshape([grad_out.shape[1], -1])  # [O, N*L]
    if len(ksize) == 2:
        # One fused op (fused.py's Im2Col, a Rust kernel in ddlens) instead of a Pad, K
        # Slices and a Concat.
        cols = torch.ops.ddlens.im2col(inp, list(ksize), list(stride), list(padding), list(dilation))
        return torch.mm(g, cols.t()).reshape([grad_out.shape[1], c_in, *ksize])
    out_sizes = list(grad_out.shape[2:])
    x = inp.transpose(0, 1)  # [C, N, *spatial]
    if any(p != 0 for p in padding):
        pad: list[Any] = []
        for p in reversed(padding):
            pad += [p, p]
        x = aten.constant_pad_nd.default(x, pad, 0.0)
    taps = []
    for offsets in itertools.product(*[range(k) for k in ksize]):
        t = x
        for i, k in enumerate(offsets):
            start = k * dilation[i]
            end = start + (out_sizes[i] - 1) * stride[i] + 1
            t = aten.slice.Tensor(t, 2 + i, start, end, stride[i])
        taps.append(t)
    cols = torch.stack(taps, dim=1)  # [C, K, N, *out]
    cols = cols.reshape([c_in * len(taps), -1])
    gw = torch.mm(g, cols.t())  # [O, C*K]
    return gw.reshape([grad_out.shape[1], c_in, *ksize])


_GRAD_WEIGHT_FNS = {"matmul": _conv_grad_weight_matmul, "conv": _conv_grad_weight_conv}


# The weight gradient is kept as one opaque op while the role graphs are traced and lowered
# only at ONNX export (see :func:`lowering_table`). Why: ``grad_vjp`` differentiates the
# ``grad`` graph again, and the derivative of the im2col formulation is a col2im made of K
# Pad + Add of whole activation tensors; the op's own derivative rule below is two
# convolutions instead (``<G, gw(g, x)> = <conv(x, G), g>``): ConvNet-3 grad_vjp at batch 256
# went from 6.5 s to 5.1 s on one thread.
@torch.library.custom_op("ddlens::conv_weight_grad", mutates_args=())
def conv_weight_grad(grad_out: torch.Tensor, inp: torch.Tensor, kernel_size: Sequence[int], stride: Sequence[int],
                     padding: Sequence[int], dilation: Sequence[int], impl: str) -> torch.Tensor:
    """Weight gradient of a plain (groups=1) convolution given its output gradient and input."""
    return _GRAD_WEIGHT_FNS[impl](grad_out, inp, list(kernel_size), stride, padding, dilation).clone()


@conv_weight_grad.register_fake
def _conv_weight_grad_fake(grad_out, inp, kernel_size, stride, padding, dilation, impl):
    return grad_out.new_empty([grad_out.shape[1], inp.shape[1], *kernel_size])


def _conv_weight_grad_setup(ctx, inputs, output):
    grad_out, inp, _ksize, stride, padding, dilation, _impl = inputs
    ctx.save_for_backward(grad_out, inp)
    ctx.geometry = (list(stride), list(padding), list(dilation))


def _conv_weight_grad_backward(ctx, cot):
    """``gw(g, x)`` is bilinear with ``<cot, gw> = <conv(x, cot), g>``: so d/dg is the forward
    convolution of x with the cotangent as kernel and d/dx its input gradient."""
    grad_out, inp = ctx.saved_tensors
    stride, padding, dilation = ctx.geometry
    nsp = len(stride)
    d_grad_out = d_inp = None
    if ctx.needs_input_grad[0]:
        d_grad_out = aten.convolution.default(inp, cot, None, stride, padding, dilation, False, [0] * nsp, 1)
    if ctx.needs_input_grad[1]:
        d_inp = _conv_grad_input(grad_out, inp, cot, stride, padding, dilation, 1)
    return d_grad_out, d_inp, None, None, None, None, None


conv_weight_grad.register_autograd(_conv_weight_grad_backward, setup_context=_conv_weight_grad_setup)


def _lower_conv_weight_grad(grad_out, inp, kernel_size, stride, padding, dilation, impl):
    return _GRAD_WEIGHT_FNS[impl](grad_out, inp, list(kernel_size), stride, padding, dilation)


def lowering_table() -> dict:
    """Decompositions applied at ONNX export time: the opaque ops of this module -> ATen."""
    return {torch.ops.ddlens.conv_weight_grad.default: _lower_conv_weight_grad}


def make_convolution_backward(grad_weight_impl: str = "matmul") -> Callable:
    """Returns a decomposition of ``aten.convolution_backward`` into forward ops."""
    if grad_weight_impl not in GRAD_WEIGHT_IMPLS:
        raise ValueError(f"grad_weight_impl must be one of {GRAD_WEIGHT_IMPLS}, got {grad_weight_impl!r}")

    def convolution_backward(
        grad_out, inp, weight, bias_sizes, stride, padding, dilation, transposed,
        output_padding, groups, output_mask,
    ):
        nsp = weight.dim() - 2
        if inp.dim() != weight.dim():
            raise UnsupportedOp("aten.convolution_backward",
                                "ddlens exporter: unbatched convolution inputs are not supported")
        stride = _tuple(stride, nsp)
        padding = _tuple(padding, nsp)
        dilation = _tuple(dilation, nsp)
        grad_input = grad_weight = grad_bias = None
        if output_mask[0]:
            if transposed:
                # A transposed convolution is the adjoint of the plain one, so its input
                # gradient is the plain convolution (output_padding only added unreached rows).
                grad_input = aten.convolution.default(
                    grad_out, weight, None, stride, padding, dilation, False, [0] * nsp, groups)
            else:
                grad_input = _conv_grad_input(grad_out, inp, weight, stride, padding, dilation, groups)
        if output_mask[1]:
            if groups != 1:
                raise UnsupportedOp(
                    "aten.convolution_backward",
                    f"ddlens exporter: the weight gradient of a grouped convolution (groups={groups}) "
                    "is not supported; only groups=1 convolutions can be trained"
                )
            ksize = list(weight.shape[2:])
            if transposed:
                # <g, convT(x, w)> = <conv(g, w), x>: the weight gradient of a plain convolution
                # whose input is g and whose output gradient is x.
                grad_weight = conv_weight_grad(inp, grad_out, ksize, stride, padding, dilation, grad_weight_impl)
            else:
                grad_weight = conv_weight_grad(grad_out, inp, ksize, stride, padding, dilation, grad_weight_impl)
        if output_mask[2]:
            grad_bias = grad_out.sum(dim=[0, *range(2, 2 + nsp)])
        return grad_input, grad_weight, grad_bias

    return convolution_backward


# --------------------------------------------------------------------------------------------
# pooling backward
# --------------------------------------------------------------------------------------------


def _upsample_blocks(t, kh, kw, scale=1.0, out_hw=None):
    """Nearest-neighbour upsampling by whole blocks, times ``scale``: [N, C, h, w] ->
    [N, C, h*kh, w*kw], zero-padded at the bottom/right up to ``out_hw``.

    Written as a depthwise ConvTranspose (stride = block, constant kernel): ONNX Runtime runs
    that about 8x faster than Reshape + Expand + Reshape (measured on [256, 128, 16, 16]), and
    the kernel value folds in the averaging divisor. Exact: every output gets one product."""
    c, h, w = t.shape[1], t.shape[2], t.shape[3]
    out_pad = [0, 0] if out_hw is None else [out_hw[0] - h * kh, out_hw[1] - w * kw]
    weight = t.new_full([c, 1, kh, kw], scale)
    return aten.convolution.default(t, weight, None, [kh, kw], [0, 0], [1, 1], True, out_pad, c)


def _with_batch(fn):
    """Lets a 4-D pooling-backward rewrite accept unbatched [C, H, W] tensors too."""

    def wrapper(grad_output, inp, *args):
        if inp.dim() == 3:
            args = [a.unsqueeze(0) if isinstance(a, torch.Tensor) else a for a in args]
            return fn(grad_output.unsqueeze(0), inp.unsqueeze(0), *args).squeeze(0)
        return fn(grad_output, inp, *args)

    return wrapper


@_with_batch
def avg_pool2d_backward(grad_output, inp, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    """Gradient of ``avg_pool2d``: spread each output gradient evenly over its window.

    That is a depthwise ConvTranspose with a constant kernel (1/divisor) and the pooling's
    stride and padding; for non-overlapping windows (the ConvNet case) it is block upsampling,
    which ONNX Runtime runs about 8x faster this way than as Reshape + Expand (measured on
    [256, 128, 16, 16]).
    """
    kh, kw = _tuple(kernel_size, 2)
    sh, sw = _tuple(stride, 2) if stride else (kh, kw)
    ph, pw = _tuple(padding, 2)
    if ceil_mode:
        raise UnsupportedOp(
            "aten.avg_pool2d_backward",
            "ddlens exporter: avg_pool2d backward with ceil_mode=True is not supported; use ceil_mode=False",
        )
    c, height, width = inp.shape[1], inp.shape[2], inp.shape[3]
    g = grad_output
    if divisor_override:
        scale = 1.0 / divisor_override
    elif count_include_pad or (ph == 0 and pw == 0):
        # Without ceil_mode every window lies inside the padded input: the divisor is kh*kw.
        scale = 1.0 / (kh * kw)
    else:
        # Windows overlapping the padding average over fewer pixels: divide by the per-window
        # count of real pixels (a constant map once H, W are fixed).
        ones = inp.new_ones([1, 1, height, width])
        counts = aten.avg_pool2d.default(ones, [kh, kw], [sh, sw], [ph, pw], False, True, None) * (kh * kw)
        g, scale = grad_output / counts, 1.0
    ho, wo = grad_output.shape[2], grad_output.shape[3]
    # output_padding restores the bottom/right rows the forward floor division dropped.
    out_pad = [height - ((ho - 1) * sh - 2 * ph + kh), width - ((wo - 1) * sw - 2 * pw + kw)]
    weight = inp.new_full([c, 1, kh, kw], scale)
    return aten.convolution.default(g, weight, None, [sh, sw], [ph, pw], [1, 1], True, out_pad, c)


@_with_batch
def max_pool2d_with_indices_backward(grad_output, inp, kernel_size, stride, padding, dilation, ceil_mode, indices):
    """Gradient of ``max_pool2d``: route each output gradient to its argmax.

    For non-overlapping windows (kernel == stride, no padding, no dilation) each input pixel
    belongs to one window, so the gradient is the block-upsampled output gradient where the
    block-upsampled argmax index equals the pixel's own flat index, else 0 (ConvTranspose +
    Equal + Where, no scatter; the indices travel as float32, exact below 2^24 pixels).
    Overlapping windows fall back to PyTorch's scatter-add rewrite (ONNX ScatterElements
    with add), which is correct but slower.
    """
    kh, kw = _tuple(kernel_size, 2)
    sh, sw = _tuple(stride, 2) if stride else (kh, kw)
    ph, pw = _tuple(padding, 2)
    dh, dw = _tuple(dilation, 2)
    height, width = inp.shape[2], inp.shape[3]
    ho, wo = grad_output.shape[2], grad_output.shape[3]
    blocks = (kh, kw) == (sh, sw) and ph == 0 and pw == 0 and dh == 1 and dw == 1
    if not blocks or ho * kh > height or wo * kw > width or height * width >= 1 << 24:
        out = _stock.max_pool2d_with_indices_backward(
            grad_output, inp, kernel_size, stride, padding, dilation, ceil_mode, indices
        )
        if out is NotImplemented:
            raise UnsupportedOp("aten.max_pool2d_with_indices_backward",
                                "ddlens exporter: no ONNX lowering for this max_pool2d backward")
        return out
    up_grad = _upsample_blocks(grad_output, kh, kw, 1.0, (height, width))
    up_idx = _upsample_blocks(indices.to(grad_output.dtype), kh, kw, 1.0, (height, width))
    flat = torch.arange(height * width, device=inp.device, dtype=grad_output.dtype).reshape([height, width])
    return torch.where(up_idx == flat, up_grad, up_grad.new_zeros([]))


# --------------------------------------------------------------------------------------------
# adaptive pooling (forward and backward)
# --------------------------------------------------------------------------------------------


def _adaptive_windows(in_size: int, out_size: int) -> list[tuple[int, int]]:
    """PyTorch's adaptive pooling windows along one axis: ``[floor(i*in/out), ceil((i+1)*in/out))``."""
    return [((i * in_size) // out_size, -((-(i + 1) * in_size) // out_size)) for i in range(out_size)]


def _adaptive_block(inp, output_size) -> tuple[int, int] | None:
    """The kernel (= stride) when adaptive pooling is a plain pool: every input size is a
    multiple of its output size (global pooling included); else ``None``."""
    height, width = inp.shape[-2], inp.shape[-1]
    oh, ow = _tuple(output_size, 2)
    if oh > 0 and ow > 0 and height % oh == 0 and width % ow == 0:
        return height // oh, width // ow
    return None


def _pool_matrix(in_size: int, out_size: int, like: torch.Tensor) -> torch.Tensor:
    """``[out, in]`` averaging matrix of adaptive average pooling along one axis: row ``i`` is
    ``1/len`` on window ``i``. Built from ``arange`` comparisons (no data constant), so the
    traced graph holds a few ops on constants that the ONNX optimiser folds."""
    rows = torch.arange(out_size, device=like.device, dtype=torch.int64).unsqueeze(1)
    cols = torch.arange(in_size, device=like.device, dtype=torch.int64).unsqueeze(0)
    starts = torch.div(rows * in_size, out_size, rounding_mode="floor")
    ends = torch.div((rows + 1) * in_size + out_size - 1, out_size, rounding_mode="floor")
    inside = (cols >= starts) & (cols < ends)
    return inside.to(like.dtype) / (ends - starts).to(like.dtype)


def _adaptive_check(op: str, inp) -> None:
    if inp.dim() not in (3, 4):
        raise UnsupportedOp(f"aten.{op}", f"ddlens exporter: {op} needs a 3-D or 4-D input, got {inp.dim()}-D")


def adaptive_avg_pool2d(inp, output_size):
    """``adaptive_avg_pool2d`` as forward ops ONNX Runtime runs well.

    When each input size is a multiple of the output size the windows are a plain
    ``avg_pool2d`` with kernel = stride = in/out (global pooling too), whose gradient is
    :func:`avg_pool2d_backward`. Otherwise the windows have different lengths and overlap; the
    pool is then linear and separable: ``P_h @ x @ P_w^T`` with the constant averaging
    matrices of :func:`_pool_matrix` (two MatMuls; their gradient is two MatMuls too)."""
    _adaptive_check("adaptive_avg_pool2d", inp)
    block = _adaptive_block(inp, output_size)
    if block is not None:
        return aten.avg_pool2d.default(inp, list(block), list(block), [0, 0], False, True, None)
    oh, ow = _tuple(output_size, 2)
    ph = _pool_matrix(inp.shape[-2], oh, inp)
    pw = _pool_matrix(inp.shape[-1], ow, inp)
    return torch.matmul(torch.matmul(ph, inp), pw.t())


def adaptive_avg_pool2d_backward(grad_output, inp):
    """Gradient of :func:`adaptive_avg_pool2d`: :func:`avg_pool2d_backward` with kernel = stride
    = in/out when the sizes divide, else the transposed pooling matrices
    ``P_h^T @ g @ P_w``."""
    _adaptive_check("_adaptive_avg_pool2d_backward", inp)
    oh, ow = grad_output.shape[-2], grad_output.shape[-1]
    block = _adaptive_block(inp, [oh, ow])
    if block is not None:
        return avg_pool2d_backward(grad_output, inp, list(block), list(block), [0, 0], False, True, None)
    ph = _pool_matrix(inp.shape[-2], oh, inp)
    pw = _pool_matrix(inp.shape[-1], ow, inp)
    return torch.matmul(torch.matmul(ph.t(), grad_output), pw)


def adaptive_max_pool2d(inp, output_size):
    """``adaptive_max_pool2d`` (values and flat ``h*W + w`` argmax indices, as PyTorch).

    Divisible sizes (global pooling included) are ``max_pool2d_with_indices`` with kernel =
    stride = in/out, whose gradient is the fast block rewrite of
    :func:`max_pool2d_with_indices_backward`. Otherwise every window is gathered at the
    longest window length (``index_select`` per axis), positions beyond a window's end masked
    to -inf, and the max taken over the gathered taps; the flat index of the winning tap
    comes from a constant index table."""
    _adaptive_check("adaptive_max_pool2d", inp)
    if inp.dim() == 3:
        values, indices = adaptive_max_pool2d(inp.unsqueeze(0), output_size)
        return values.squeeze(0), indices.squeeze(0)
    block = _adaptive_block(inp, output_size)
    if block is not None:
        return aten.max_pool2d_with_indices.default(inp, list(block), list(block), [0, 0], [1, 1], False)
    oh, ow = _tuple(output_size, 2)
    c, height, width = inp.shape[1], inp.shape[2], inp.shape[3]

    def taps(in_size, out_size):
        windows = _adaptive_windows(in_size, out_size)
        length = max(e - s for s, e in windows)
        idx = [[min(s + k, in_size - 1) for k in range(length)] for s, _ in windows]
        valid = [[s + k < e for k in range(length)] for s, e in windows]
        return idx, valid, length

    idx_h, valid_h, lh = taps(height, oh)
    idx_w, valid_w, lw = taps(width, ow)
    dev = inp.device
    ih = torch.tensor(idx_h, dtype=torch.int64, device=dev)  # [oh, lh]
    iw = torch.tensor(idx_w, dtype=torch.int64, device=dev)  # [ow, lw]
    vals = inp.index_select(2, ih.reshape([-1])).index_select(3, iw.reshape([-1]))  # [N, C, oh*lh, ow*lw]
    vals = vals.reshape([-1, c, oh, lh, ow, lw]).permute(0, 1, 2, 4, 3, 5).reshape([-1, c, oh, ow, lh * lw])
    mask = [[[a and b for a in vh for b in vw] for vw in valid_w] for vh in valid_h]  # [oh, ow, lh*lw]
    keep = torch.tensor(mask, dtype=torch.bool, device=dev)
    vals = torch.where(keep, vals, vals.new_full([], float("-inf")))
    values, arg = vals.max(dim=-1)
    flat = (ih.reshape([oh, 1, lh, 1]) * width + iw.reshape([1, ow, 1, lw])).reshape([1, 1, oh, ow, lh * lw])
    indices = torch.gather(flat.expand([vals.shape[0], c, oh, ow, lh * lw]), -1, arg.unsqueeze(-1)).squeeze(-1)
    return values, indices


@_with_batch
def adaptive_max_pool2d_backward(grad_output, inp, indices):
    """Gradient of :func:`adaptive_max_pool2d`: route each output gradient to its argmax.

    Divisible sizes: :func:`max_pool2d_with_indices_backward` with kernel = stride = in/out
    (the indices are the same flat ``h*W + w`` positions). Otherwise the windows may overlap,
    so the gradient is a scatter-add of the output gradient at the indices (ONNX
    ScatterElements with add), as PyTorch's own fallback does."""
    block = _adaptive_block(inp, [grad_output.shape[-2], grad_output.shape[-1]])
    if block is not None:
        return max_pool2d_with_indices_backward(
            grad_output, inp, list(block), list(block), [0, 0], [1, 1], False, indices)
    c, height, width = inp.shape[1], inp.shape[2], inp.shape[3]
    flat_grad = grad_output.reshape([-1, c, grad_output.shape[2] * grad_output.shape[3]])
    flat_idx = indices.reshape([-1, c, indices.shape[2] * indices.shape[3]])
    zeros = grad_output.new_zeros([grad_output.shape[0], c, height * width])
    return zeros.scatter_add(2, flat_idx, flat_grad).reshape([-1, c, height, width])


# --------------------------------------------------------------------------------------------
# slice_backward
# --------------------------------------------------------------------------------------------


def slice_backward(grad_output, input_sizes, dim, start, end, step):
    """Gradient of ``x[..., start:end:step, ...]``: the output gradient put back in place.

    PyTorch's decomposition writes it as zeros + ``slice_scatter``, which ONNX turns into
    ScatterND (an index tensor as large as the data). The gradient of the im2col slices of the
    weight-gradient rewrite is taken in every ``grad_vjp``, so write it as what it is: zero
    padding (Pad), with zero-interleaving (Pad + Reshape) for strided slices."""
    ndim = len(input_sizes)
    dim = dim % ndim
    size = input_sizes[dim]
    if start < 0:
        start = start + size
    start = min(max(start, 0), size)
    g = grad_output
    n = g.shape[dim]
    if step > 1:
        # Interleave step-1 zeros after every element: [.., n, ..] -> [.., n*step, ..].
        g = g.unsqueeze(dim + 1)
        g = aten.constant_pad_nd.default(g, [0, 0] * (ndim - 1 - dim) + [0, step - 1], 0.0)
        shape = list(grad_output.shape)
        shape[dim] = n * step
        g = g.reshape(shape)
        n = n * step
    right = size - start - n
    if right < 0:
        g = g.narrow(dim, 0, n + right)
        right = 0
    if start == 0 and right == 0:
        return g
    return aten.constant_pad_nd.default(g, [0, 0] * (ndim - 1 - dim) + [start, right], 0.0)


# --------------------------------------------------------------------------------------------
# norms written as plain reductions (for graphs that are differentiated twice)
# --------------------------------------------------------------------------------------------


def native_group_norm(inp, weight, bias, n, c, hxw, group, eps):
    """Group norm for forward graphs that get differentiated twice.

    One group per channel of a 2-D activation (ConvNet's instance norm) becomes
    ``ddlens::instance_norm``, whose first and second derivatives are ops of their own
    (:mod:`.fused`; ONNX: fused kernels). Any other grouping is written as mean/variance
    reductions and elementwise ops: the fused op's differentiable backward is C++ that reads
    concrete sizes, and PyTorch's stock decomposition goes through ``as_strided``, whose
    gradient (``as_strided_scatter``) ONNX cannot express."""
    if group == c and inp.dim() == 4:
        weight = weight if weight is not None else inp.new_ones([c])
        bias = bias if bias is not None else inp.new_zeros([c])
        return torch.ops.ddlens.instance_norm(inp, weight, bias, eps)
    x = inp.reshape([inp.shape[0], group, -1])
    mean = x.mean(dim=-1, keepdim=True)
    centered = x - mean
    rstd = torch.rsqrt((centered * centered).mean(dim=-1, keepdim=True) + eps)
    out = (centered * rstd).reshape(inp.shape)
    affine_shape = [1, inp.shape[1]] + [1] * (inp.dim() - 2)
    if weight is not None:
        out = out * weight.reshape(affine_shape)
    if bias is not None:
        out = out + bias.reshape(affine_shape)
    return out, mean.squeeze(-1), rstd.squeeze(-1)


def native_layer_norm(inp, normalized_shape, weight, bias, eps):
    """Layer norm as reductions and elementwise ops (same reason as :func:`native_group_norm`)."""
    dims = list(range(inp.dim() - len(normalized_shape), inp.dim()))
    mean = inp.mean(dim=dims, keepdim=True)
    centered = inp - mean
    rstd = torch.rsqrt((centered * centered).mean(dim=dims, keepdim=True) + eps)
    out = centered * rstd
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out, mean, rstd


def batch_norm_no_stats(inp, weight, bias, training, momentum, eps):
    """Batch norm on batch statistics (what ``InstanceNorm*`` runs, on a [1, N*C, ...] view)
    as reductions and elementwise ops (same reason as :func:`native_group_norm`; PyTorch's
    second-order rule for the fused op gives wrong Hessian-vector products through
    ``instance_norm``)."""
    dims = [0, *range(2, inp.dim())]
    mean = inp.mean(dim=dims, keepdim=True)
    centered = inp - mean
    rstd = torch.rsqrt((centered * centered).mean(dim=dims, keepdim=True) + eps)
    out = centered * rstd
    affine_shape = [1, inp.shape[1]] + [1] * (inp.dim() - 2)
    if weight is not None:
        out = out * weight.reshape(affine_shape)
    if bias is not None:
        out = out + bias.reshape(affine_shape)
    return out, mean.reshape([-1]), rstd.reshape([-1])


def native_batch_norm(inp, weight, bias, running_mean, running_var, training, momentum, eps):
    """``native_batch_norm`` in training mode (batch statistics), as :func:`batch_norm_no_stats`.
    (Running statistics never reach here: modules with buffers are refused.)"""
    if not training:
        raise UnsupportedOp("aten.native_batch_norm",
                            "ddlens exporter: batch norm with running statistics is not supported")
    return batch_norm_no_stats(inp, weight, bias, training, momentum, eps)


def twice_differentiable_table(grad_weight_impl: str = "matmul") -> dict:
    """:func:`decomposition_table` plus the norm rewrites above."""
    table = decomposition_table(grad_weight_impl)
    table[aten.native_group_norm.default] = native_group_norm
    table[aten.native_layer_norm.default] = native_layer_norm
    table[aten._native_batch_norm_legit.no_stats] = batch_norm_no_stats
    table[aten.native_batch_norm.default] = native_batch_norm
    return table


# --------------------------------------------------------------------------------------------
# the table
# --------------------------------------------------------------------------------------------


def native_group_norm_backward(grad_out, inp, mean, rstd, weight, n, c, hxw, group, output_mask):
    """Kept as one op when every channel is its own group of a 2-D activation (ONNX: the
    fused ``ai.ddlens::InstanceNormBackward``, :mod:`.fused`); other cases get PyTorch's
    decomposition."""
    if group == c and inp.dim() == 4:
        return NotImplemented
    return _stock.native_group_norm_backward(grad_out, inp, mean, rstd, weight, n, c, hxw, group,
                                             output_mask)


def decomposition_table(grad_weight_impl: str = "matmul") -> dict:
    """PyTorch's core-ATen decompositions plus the backward-op rewrites of this module.

    ``grad_weight_impl`` selects the convolution weight-gradient formulation (see
    :data:`GRAD_WEIGHT_IMPLS`)."""
    table = dict(core_aten_decompositions())
    table[aten.convolution_backward.default] = make_convolution_backward(grad_weight_impl)
    table[aten.avg_pool2d_backward.default] = avg_pool2d_backward
    table[aten.max_pool2d_with_indices_backward.default] = max_pool2d_with_indices_backward
    table[aten.slice_backward.default] = slice_backward
    table[aten.native_group_norm_backward.default] = native_group_norm_backward
    table[aten._adaptive_avg_pool2d.default] = adaptive_avg_pool2d
    table[aten._adaptive_avg_pool2d_backward.default] = adaptive_avg_pool2d_backward
    table[aten.adaptive_max_pool2d.default] = adaptive_max_pool2d
    table[aten.adaptive_max_pool2d_backward.default] = adaptive_max_pool2d_backward
    return table
