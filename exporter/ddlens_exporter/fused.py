"""Fused ops: ONNX functions in the ``ai.ddlens`` domain that ddlens runs with its own kernels.

A backward pass through a norm is a dozen elementwise passes and reductions when written in
standard ONNX ops, each a trip through memory and a kernel launch in ONNX Runtime. The
exporter emits such a block as one node of a *model-local function*: the function's body is
standard ONNX, so the graph stays a plain ONNX file that any ONNX Runtime (or other runtime)
runs by inlining the body, while ddlens registers a kernel for the function's name on its CPU
sessions (``src/runtime/kernels``), which ONNX Runtime then runs instead of inlining it
(checked on ONNX Runtime 1.31: a registered kernel takes precedence over a local function of
the same domain and name). The kernel and the body compute the same values; the tests run both
on the same inputs.

``InstanceNormBackward`` is ``aten.native_group_norm_backward`` with one channel per group
(ConvNet's instance norm): the input gradient and the affine parameters' gradients, given the
output gradient, the norm's input and the mean and 1/std of its forward pass. Per item ``n``
and channel ``c`` over the ``M`` spatial positions, with ``x̂ = (x − mean) · rstd``::

    dx     = γ · rstd · (dy − mean(dy) − x̂ · mean(dy · x̂))
    dgamma = Σₙ Σ dy · x̂        dbeta = Σₙ Σ dy

``ReluInstanceNormBackward`` is the same with the ReLU that follows the norm folded in: its
``dy`` is ``where(relu_out <= 0, 0, g)``, which the kernel applies as it reads ``g`` instead
of writing the masked gradient out first. :func:`fuse_relu_into_norm_backward` finds that
pattern in a traced graph.

``InstanceNormDoubleBackward`` is the derivative of ``InstanceNormBackward`` (in ``grad_vjp``):
given the cotangents ``u`` of its ``dx``, ``ggamma`` and ``gbeta`` of its ``dgamma`` and
``dbeta``, with ``r = rstd``, ``P(v) = v − mean(v) − x̂ · mean(v · x̂)`` (so ``dx = γ · r ·
P(dy)``), ``a = mean(dy)``, ``b = mean(dy · x̂)``, ``t = mean(u · x̂)``, ``m = mean(u · (dy −
a))``::

    d_dy     = γ · r · P(u) + ggamma · x̂ + gbeta
    d_x      = γ · r² · (x̂ · (b · t − m) − t · P(dy) − b · P(u)) + ggamma · r · P(dy)
    d_gamma  = Σₙ Σ r · u · P(dy)
"""

import torch
from onnxscript import opset18 as op
from onnxscript import script
from onnxscript.onnx_types import FLOAT
from onnxscript.values import Opset

#: The domain of ddlens's fused ops (``ai.ddlens``, version 1).
DDLENS = Opset("ai.ddlens", 1)

_aten = torch.ops.aten


@script(DDLENS, default_opset=op)
def InstanceNormBackward(dy: FLOAT, x: FLOAT, mean: FLOAT, rstd: FLOAT,
                         gamma: FLOAT) -> tuple[FLOAT, FLOAT, FLOAT]:
    """(dx, dgamma, dbeta) of an instance norm; ``x``, ``dy``: [N, C, H, W]; ``mean``,
    ``rstd``: [N, C]; ``gamma``: [C]."""
    stats = op.Constant(value_ints=[0, -1, 1, 1])
    r = op.Reshape(rstd, stats)
    xhat = op.Mul(op.Sub(x, op.Reshape(mean, stats)), r)
    spatial = op.Constant(value_ints=[2, 3])
    mdb = op.ReduceMean(dy, spatial)
    mds = op.ReduceMean(op.Mul(dy, xhat), spatial)
    scale = op.Mul(op.Reshape(gamma, op.Constant(value_ints=[1, -1, 1, 1])), r)
    dx = op.Mul(scale, op.Sub(op.Sub(dy, mdb), op.Mul(xhat, mds)))
    size = op.CastLike(op.ReduceProd(op.Shape(x, start=2)), dy)
    items = op.Constant(value_ints=[0, 2, 3])
    dgamma = op.Mul(op.ReduceSum(mds, items, keepdims=0), size)
    dbeta = op.Mul(op.ReduceSum(mdb, items, keepdims=0), size)
    return dx, dgamma, dbeta


@script(DDLENS, default_opset=op)
def ReluInstanceNormBackward(g: FLOAT, relu_out: FLOAT, x: FLOAT, mean: FLOAT, rstd: FLOAT,
                             gamma: FLOAT) -> tuple[FLOAT, FLOAT, FLOAT]:
    """:func:`InstanceNormBackward` of ``dy = where(relu_out <= 0, 0, g)``."""
    zero = op.CastLike(op.Constant(value_float=0.0), g)
    dy = op.Where(op.LessOrEqual(relu_out, zero), zero, g)
    stats = op.Constant(value_ints=[0, -1, 1, 1])
    r = op.Reshape(rstd, stats)
    xhat = op.Mul(op.Sub(x, op.Reshape(mean, stats)), r)
    spatial = op.Constant(value_ints=[2, 3])
    mdb = op.ReduceMean(dy, spatial)
    mds = op.ReduceMean(op.Mul(dy, xhat), spatial)
    scale = op.Mul(op.Reshape(gamma, op.Constant(value_ints=[1, -1, 1, 1])), r)
    dx = op.Mul(scale, op.Sub(op.Sub(dy, mdb), op.Mul(xhat, mds)))
    size = op.CastLike(op.ReduceProd(op.Shape(x, start=2)), dy)
    items = op.Constant(value_ints=[0, 2, 3])
    dgamma = op.Mul(op.ReduceSum(mds, items, keepdims=0), size)
    dbeta = op.Mul(op.ReduceSum(mdb, items, keepdims=0), size)
    return dx, dgamma, dbeta


@script(DDLENS, default_opset=op)
def InstanceNormDoubleBackward(dy: FLOAT, x: FLOAT, mean: FLOAT, rstd: FLOAT, gamma: FLOAT, u: FLOAT,
                               ggamma: FLOAT, gbeta: FLOAT) -> tuple[FLOAT, FLOAT, FLOAT]:
    """The derivative of :func:`InstanceNormBackward`: given the cotangents ``u`` of its ``dx``,
    ``ggamma`` and ``gbeta`` of its ``dgamma`` and ``dbeta``, the cotangents of its inputs
    ``dy``, ``x`` (through the statistics too) and ``gamma`` (see the module doc)."""
    stats = op.Constant(value_ints=[0, -1, 1, 1])
    per_channel = op.Constant(value_ints=[1, -1, 1, 1])
    r = op.Reshape(rstd, stats)
    xhat = op.Mul(op.Sub(x, op.Reshape(mean, stats)), r)
    spatial = op.Constant(value_ints=[2, 3])
    a = op.ReduceMean(dy, spatial)
    b = op.ReduceMean(op.Mul(dy, xhat), spatial)
    mu = op.ReduceMean(u, spatial)
    t = op.ReduceMean(op.Mul(u, xhat), spatial)
    m = op.Sub(op.ReduceMean(op.Mul(u, dy), spatial), op.Mul(a, mu))
    pu = op.Sub(op.Sub(u, mu), op.Mul(xhat, t))
    pdy = op.Sub(op.Sub(dy, a), op.Mul(xhat, b))
    g = op.Reshape(gamma, per_channel)
    gg = op.Reshape(ggamma, per_channel)
    d_dy = op.Add(op.Add(op.Mul(op.Mul(g, r), pu), op.Mul(gg, xhat)), op.Reshape(gbeta, per_channel))
    inner = op.Sub(op.Sub(op.Mul(xhat, op.Sub(op.Mul(b, t), m)), op.Mul(t, pdy)), op.Mul(b, pu))
    d_x = op.Add(op.Mul(op.Mul(g, op.Mul(r, r)), inner), op.Mul(op.Mul(gg, r), pdy))
    d_gamma = op.ReduceSum(op.Mul(op.Mul(r, u), pdy), op.Constant(value_ints=[0, 2, 3]), keepdims=0)
    return d_dy, d_x, d_gamma


@script(DDLENS, default_opset=op)
def Im2Col(x: FLOAT, kernel_shape: list[int], strides: list[int], pads: list[int],
           dilations: list[int]) -> FLOAT:
    """The im2col matrix of a 2-D convolution's input: ``x`` [N, C, H, W] -> [C·K, N·Ho·Wo]
    with ``K = kh·kw`` taps; row ``c·K + k`` holds, for every item and output position, the
    input that tap ``k`` multiplies (zero in the padding). ``pads`` as Conv's
    ([top, left, bottom, right]). The body is a Conv with one-hot kernels, one per tap."""
    ks = op.Constant(value_ints=kernel_shape)
    taps = op.ReduceProd(ks, keepdims=1)
    onehot = op.EyeLike(op.ConstantOfShape(op.Concat(taps, taps, axis=0)), dtype=1)
    one = op.Constant(value_ints=[1])
    weight = op.CastLike(op.Reshape(onehot, op.Concat(taps, one, ks, axis=0)), x)
    dims = op.Shape(x)
    n, c = op.Slice(dims, [0], [1]), op.Slice(dims, [1], [2])
    planes = op.Reshape(x, op.Concat(op.Constant(value_ints=[-1]), one, op.Slice(dims, [2], [4]), axis=0))
    cols = op.Conv(planes, weight, strides=strides, pads=pads, dilations=dilations)
    cols = op.Reshape(cols, op.Concat(n, c, taps, op.Constant(value_ints=[-1]), axis=0))
    # Flatten, not a Reshape to a computed [C·K, -1]: onnxscript's constant folding turned
    # that shape into an empty tensor inside the function (onnxscript 0.7.2, attribute refs).
    return op.Flatten(op.Transpose(cols, perm=[1, 2, 0, 3]), axis=2)


def native_group_norm_backward(grad_out, input, mean, rstd, weight=None, N=None, C=None, HxW=None,
                               group: int = 1, output_mask=None):
    """The translation of ``aten.native_group_norm_backward`` with ``group == C`` (the only
    form the tracing keeps: :func:`.decompositions.native_group_norm_backward`)."""
    if weight is None:
        weight = op.Expand(op.CastLike(op.Constant(value_float=1.0), input),
                           op.Constant(value_ints=[C]))
    return InstanceNormBackward(grad_out, input, mean, rstd, weight)


def relu_instance_norm_backward_translation(grad, relu_out, input, mean, rstd, weight):
    """The translation of ``ddlens::relu_instance_norm_backward``."""
    return ReluInstanceNormBackward(grad, relu_out, input, mean, rstd, weight)


def instance_norm_backward_translation(dy, x, mean, rstd, weight):
    """The translation of ``ddlens::instance_norm_backward``."""
    return InstanceNormBackward(dy, x, mean, rstd, weight)


def instance_norm_double_backward_translation(dy, x, mean, rstd, weight, u, g_gamma, g_beta):
    """The translation of ``ddlens::instance_norm_double_backward``."""
    return InstanceNormDoubleBackward(dy, x, mean, rstd, weight, u, g_gamma, g_beta)


def im2col_translation(x, kernel_size, stride, padding, dilation):
    """The translation of ``ddlens::im2col`` (2-D only)."""
    return Im2Col(x, kernel_shape=list(kernel_size), strides=list(stride),
                  pads=[*padding, *padding], dilations=list(dilation))


@torch.library.custom_op("ddlens::im2col", mutates_args=())
def im2col(x: torch.Tensor, kernel_size: list[int], stride: list[int], padding: list[int],
           dilation: list[int]) -> torch.Tensor:
    """The im2col matrix [C·K, N·Ho·Wo] of a 2-D convolution's input ``x`` [N, C, H, W]
    (what :func:`Im2Col` computes), by :func:`torch.nn.functional.unfold`."""
    n, c = x.shape[0], x.shape[1]
    cols = torch.nn.functional.unfold(x, kernel_size, dilation=dilation, padding=padding, stride=stride)
    k = kernel_size[0] * kernel_size[1]
    return cols.reshape(n, c * k, -1).transpose(0, 1).reshape(c * k, -1).contiguous()


@im2col.register_fake
def _im2col_fake(x, kernel_size, stride, padding, dilation):
    out = [(s + 2 * p - d * (k - 1) - 1) // st + 1
           for s, k, st, p, d in zip(x.shape[2:], kernel_size, stride, padding, dilation)]
    return x.new_empty([x.shape[1] * kernel_size[0] * kernel_size[1], x.shape[0] * out[0] * out[1]])


def _im2col_setup(ctx, inputs, output):
    x, kernel_size, stride, padding, dilation = inputs
    ctx.geometry = (list(x.shape), list(kernel_size), list(stride), list(padding), list(dilation))


def _im2col_backward(ctx, cot):
    """The adjoint of im2col: col2im (:func:`torch.nn.functional.fold`), which sums each
    input's copies."""
    shape, kernel_size, stride, padding, dilation = ctx.geometry
    n = shape[0]
    cols = cot.reshape(cot.shape[0], n, -1).transpose(0, 1)  # [N, C*K, L]
    return (torch.nn.functional.fold(cols, shape[2:], kernel_size, dilation=dilation, padding=padding,
                                     stride=stride), None, None, None, None)


im2col.register_autograd(_im2col_backward, setup_context=_im2col_setup)


# --------------------------------------------------------------------------------------------
# the instance norm as three ops, for the graphs that are differentiated twice
# --------------------------------------------------------------------------------------------
#
# ``grad_vjp`` differentiates the traced gradient graph once more, which PyTorch cannot do
# through ``aten.native_group_norm`` (its statistics are non-differentiable outputs), so those
# graphs used the norm written as reductions and traced the first and second derivatives of
# those: about 40 elementwise passes and reductions per norm. Here the norm is an op whose
# derivative is an op (:func:`instance_norm_backward`, ONNX: ``InstanceNormBackward``) whose
# derivative is an op (:func:`instance_norm_double_backward`, ONNX:
# ``InstanceNormDoubleBackward``, a kernel of two passes). The mean and 1/std are outputs of the
# norm passed along as a cache: each derivative accounts for their dependence on ``x``, so
# their own cotangents are ignored (they are marked non-differentiable).


@torch.library.custom_op("ddlens::instance_norm", mutates_args=())
def instance_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                  eps: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A group norm with one group per channel of ``x`` [N, C, H, W]: (out, mean [N, C],
    rstd [N, C]), as ``aten.native_group_norm``."""
    n, c = x.shape[0], x.shape[1]
    out, mean, rstd = _aten.native_group_norm(x, weight, bias, n, c, x[0, 0].numel(), c, eps)
    return out.clone(), mean.clone(), rstd.clone()


@instance_norm.register_fake
def _instance_norm_fake(x, weight, bias, eps):
    return torch.empty_like(x), x.new_empty([x.shape[0], x.shape[1]]), x.new_empty([x.shape[0], x.shape[1]])


def _instance_norm_setup(ctx, inputs, output):
    x, weight, _, _ = inputs
    _, mean, rstd = output
    ctx.save_for_backward(x, weight, mean, rstd)
    ctx.mark_non_differentiable(mean, rstd)


def _instance_norm_backward(ctx, g_out, _g_mean, _g_rstd):
    x, weight, mean, rstd = ctx.saved_tensors
    dx, dw, db = torch.ops.ddlens.instance_norm_backward(g_out, x, mean, rstd, weight)
    return dx, dw, db, None


instance_norm.register_autograd(_instance_norm_backward, setup_context=_instance_norm_setup)


@torch.library.custom_op("ddlens::instance_norm_backward", mutates_args=())
def instance_norm_backward(dy: torch.Tensor, x: torch.Tensor, mean: torch.Tensor, rstd: torch.Tensor,
                           weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(dx, dgamma, dbeta) of :func:`instance_norm` (what :func:`InstanceNormBackward` computes)."""
    n, c = x.shape[0], x.shape[1]
    dx, dw, db = _aten.native_group_norm_backward(dy, x, mean, rstd, weight, n, c, x[0, 0].numel(), c,
                                                  [True, True, True])
    return dx.clone(), dw.clone(), db.clone()


@instance_norm_backward.register_fake
def _instance_norm_backward_fake(dy, x, mean, rstd, weight):
    return torch.empty_like(x), weight.new_empty(weight.shape), weight.new_empty(weight.shape)


def _instance_norm_backward_setup(ctx, inputs, output):
    ctx.save_for_backward(*inputs)


def _instance_norm_backward_backward(ctx, u, g_gamma, g_beta):
    dy, x, mean, rstd, weight = ctx.saved_tensors
    d_dy, d_x, d_w = torch.ops.ddlens.instance_norm_double_backward(dy, x, mean, rstd, weight, u, g_gamma,
                                                                    g_beta)
    return d_dy, d_x, None, None, d_w


instance_norm_backward.register_autograd(_instance_norm_backward_backward,
                                         setup_context=_instance_norm_backward_setup)


@torch.library.custom_op("ddlens::instance_norm_double_backward", mutates_args=())
def instance_norm_double_backward(dy: torch.Tensor, x: torch.Tensor, mean: torch.Tensor, rstd: torch.Tensor,
                                  weight: torch.Tensor, u: torch.Tensor, g_gamma: torch.Tensor,
                                  g_beta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The cotangents of ``dy``, ``x`` and ``weight`` of :func:`instance_norm_backward` given those
    of its outputs (``u``, ``g_gamma``, ``g_beta``): the formula of the module doc, which
    :func:`InstanceNormDoubleBackward` computes too. No derivative of its own (third order)."""
    r = rstd[:, :, None, None]
    xhat = (x - mean[:, :, None, None]) * r
    spatial = (2, 3)
    a, b = dy.mean(spatial, keepdim=True), (dy * xhat).mean(spatial, keepdim=True)
    mu, t = u.mean(spatial, keepdim=True), (u * xhat).mean(spatial, keepdim=True)
    m = (u * dy).mean(spatial, keepdim=True) - a * mu
    pu, pdy = u - mu - xhat * t, dy - a - xhat * b
    g, gg, gb = (v[None, :, None, None] for v in (weight, g_gamma, g_beta))
    d_dy = g * r * pu + gg * xhat + gb
    d_x = g * r * r * (xhat * (b * t - m) - t * pdy - b * pu) + gg * r * pdy
    d_w = (r * u * pdy).sum((0, 2, 3))
    return d_dy, d_x, d_w


@instance_norm_double_backward.register_fake
def _instance_norm_double_backward_fake(dy, x, mean, rstd, weight, u, g_gamma, g_beta):
    return torch.empty_like(dy), torch.empty_like(x), weight.new_empty(weight.shape)


# --------------------------------------------------------------------------------------------
# folding the ReLU mask into the norm's backward, on the traced graph
# --------------------------------------------------------------------------------------------


@torch.library.custom_op("ddlens::relu_instance_norm_backward", mutates_args=())
def relu_instance_norm_backward(grad: torch.Tensor, relu_out: torch.Tensor, inp: torch.Tensor,
                                mean: torch.Tensor, rstd: torch.Tensor,
                                weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``native_group_norm_backward`` (one group per channel) of ``where(relu_out <= 0, 0, grad)``."""
    n, c = inp.shape[0], inp.shape[1]
    dy = torch.where(relu_out <= 0, torch.zeros((), dtype=grad.dtype), grad)
    dx, dw, db = _aten.native_group_norm_backward(dy, inp, mean, rstd, weight, n, c, inp[0, 0].numel(), c,
                                                  [True, True, True])
    return dx.clone(), dw.clone(), db.clone()


@relu_instance_norm_backward.register_fake
def _relu_instance_norm_backward_fake(grad, relu_out, inp, mean, rstd, weight):
    return torch.empty_like(inp), weight.new_empty(weight.shape), weight.new_empty(weight.shape)


def _relu_mask_of(node) -> tuple | None:
    """``(g, relu_out)`` when ``node`` is ``where(le(relu_out, 0), 0, g)`` used once, else None."""
    if not (isinstance(node, torch.fx.Node) and node.target == _aten.where.self and len(node.users) == 1):
        return None
    cond, zero, g = node.args
    if not (isinstance(cond, torch.fx.Node) and cond.target == _aten.le.Scalar and cond.args[1] == 0):
        return None
    if not (isinstance(zero, torch.fx.Node) and zero.target == _aten.scalar_tensor.default and zero.args[0] == 0):
        return None
    return g, cond.args[0]


def fuse_relu_into_norm_backward(gm: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """Rewrites every ``native_group_norm_backward(where(relu_out <= 0, 0, g), x, mean, rstd,
    weight, ...)`` of ``gm`` (the tracing keeps that op only for one group per channel) into
    ``ddlens::relu_instance_norm_backward(g, relu_out, x, mean, rstd, weight)``, in place."""
    changed = False
    for node in list(gm.graph.nodes):
        if node.target != _aten.native_group_norm_backward.default:
            continue
        dy, x, mean, rstd, weight = node.args[:5]
        mask = _relu_mask_of(dy)
        if mask is None or weight is None:
            continue
        g, relu_out = mask
        with gm.graph.inserting_before(node):
            fused = gm.graph.call_function(torch.ops.ddlens.relu_instance_norm_backward.default,
                                           (g, relu_out, x, mean, rstd, weight))
        node.replace_all_uses_with(fused)
        gm.graph.erase_node(node)
        changed = True
    if changed:
        gm.graph.eliminate_dead_code()
        gm.recompile()
    return gm
