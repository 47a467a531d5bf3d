"""ONNX translations of ATen ops that replace torch.onnx's own, for speed in ONNX Runtime.

Passed to ``torch.onnx.export(custom_translation_table=...)`` by :func:`.export.export_graph`;
each one computes the same values as torch.onnx's translation, with fewer passes over memory.

``aten.native_group_norm`` (every GroupNorm / instance norm of the builtins). torch.onnx's
translation normalises with ``InstanceNormalization`` (unit scale), applies the affine with a
broadcast ``Mul`` and ``Add``, and then computes the statistics the backward needs (mean,
1/std) a second time with ``ReduceMean``, ``Sub``, ``Mul``, ``ReduceMean`` and another
``ReduceMean``: seven passes over the activation. Here the statistics come from one ``LayerNormalization`` over each group (its optional Mean
and InvStdDev outputs; it accumulates accurately: relative error of 1/std 2e-7 at an offset
of 1000 against float64, the seven-pass form 1e-6), and when every channel is its own group
the affine goes into ``InstanceNormalization``'s scale and bias. Measured on one
[64, 128, 32, 32] activation, one thread: 14 ms against 25-28 ms for torch.onnx's form
(``LayerNormalization`` with a broadcast affine instead: 22 ms; the broadcast ``Mul`` and
``Add`` cost 7 ms each, as much as the whole ``InstanceNormalization``). In graphs that do
not use the statistics (``forward``) the ``LayerNormalization`` is removed as dead code.
Whole ConvNet-3 graphs, batch 8, one thread: ``forward`` 15 % faster, ``grad`` 3 %
(docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from onnxscript import opset18 as op

from . import fused


def native_group_norm(input, weight=None, bias=None, N=None, C=None, HxW=None, group: int = 1,
                      eps: float = 1e-05):
    """``native_group_norm`` -> (output, mean [N, group], rstd [N, group]), see the module doc."""
    channels = input.shape[1]
    per_group = _item_size(input) // group
    grouped = op.Reshape(input, op.Constant(value_ints=[0, group, -1]))
    ones = op.Expand(op.CastLike(op.Constant(value_float=1.0), input), op.Constant(value_ints=[per_group]))
    normed, mean, rstd = op.LayerNormalization(grouped, ones, axis=2, epsilon=eps)
    stats_shape = op.Constant(value_ints=[0, group])
    mean, rstd = op.Reshape(mean, stats_shape), op.Reshape(rstd, stats_shape)
    if group == channels:
        scale = weight if weight is not None else _filled(1.0, input, channels)
        shift = bias if bias is not None else _filled(0.0, input, channels)
        return op.InstanceNormalization(input, scale, shift, epsilon=eps), mean, rstd
    out = op.Reshape(normed, op.Shape(input))
    affine_shape = op.Constant(value_ints=[1, channels] + [1] * (len(input.shape) - 2))
    if weight is not None:
        out = op.Mul(out, op.Reshape(weight, affine_shape))
    if bias is not None:
        out = op.Add(out, op.Reshape(bias, affine_shape))
    return out, mean, rstd


def instance_norm(input, weight, bias, eps: float = 1e-05):
    """The translation of ``ddlens::instance_norm``: :func:`native_group_norm` with one group
    per channel."""
    channels = input.shape[1]
    return native_group_norm(input, weight, bias, group=channels, eps=eps)


def _filled(value: float, like, n: int):
    """A length-``n`` vector of ``value`` in ``like``'s dtype."""
    return op.Expand(op.CastLike(op.Constant(value_float=value), like), op.Constant(value_ints=[n]))


def _item_size(value) -> int:
    """Elements per batch item: the product of the (static) non-batch dims."""
    size = 1
    for d in list(value.shape)[1:]:
        if not isinstance(d, int):
            raise NotImplementedError(f"native_group_norm: dimension {d} is not static")
        size *= d
    return size


def translation_table() -> dict[Callable, Callable]:
    """The ``custom_translation_table`` for ``torch.onnx.export``."""
    return {
        torch.ops.aten.native_group_norm.default: native_group_norm,
        torch.ops.aten.native_group_norm_backward.default: fused.native_group_norm_backward,
        torch.ops.ddlens.relu_instance_norm_backward.default: fused.relu_instance_norm_backward_translation,
        torch.ops.ddlens.im2col.default: fused.im2col_translation,
        torch.ops.ddlens.instance_norm.default: instance_norm,
        torch.ops.ddlens.instance_norm_backward.default: fused.instance_norm_backward_translation,
        torch.ops.ddlens.instance_norm_double_backward.default: fused.instance_norm_double_backward_translation,
    }
