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
"""

from onnxscript import opset18 as op
from onnxscript import script
from onnxscript.onnx_types import FLOAT
from onnxscript.values import Opset

#: The domain of ddlens's fused ops (``ai.ddlens``, version 1).
DDLENS = Opset("ai.ddlens", 1)


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


def native_group_norm_backward(grad_out, input, mean, rstd, weight=None, N=None, C=None, HxW=None,
                               group: int = 1, output_mask=None):
    """The translation of ``aten.native_group_norm_backward`` with ``group == C`` (the only
    form the tracing keeps: :func:`.decompositions.native_group_norm_backward`)."""
    if weight is None:
        weight = op.Expand(op.CastLike(op.Constant(value_float=1.0), input),
                           op.Constant(value_ints=[C]))
    return InstanceNormBackward(grad_out, input, mean, rstd, weight)
