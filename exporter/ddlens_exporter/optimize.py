"""How hard the exporter simplifies each ONNX graph (``--optimize``).

``full`` is what ``torch.onnx.export(optimize=True)`` does: onnxscript's constant folding and
clean-up passes *plus* its pattern rewriter (the default rewrite rules and the ONNX fusions).
Both levels inline every local function except ddlens's fused ops (:mod:`.fused`).
The rewriter matches every rule at every node, again after each change, and that cost grows
faster than the graph: profiled on ResNet-18 (1x28x28, `forward` + `grad`, 2-core machine
under load), 460 s of a 773 s export were spent in the rewriter's matcher (385,715 tries),
against a few seconds for folding and clean-up.

``light`` keeps the folding and clean-up and skips the rewriter. On ConvNet-3 (`forward`,
`grad`, `grad_vjp`) it exported in 133 s instead of 191 s with the same compute ops (Conv,
ConvTranspose, MatMul, Gemm, reductions: identical counts) and 4-7 % more small shape ops
(Reshape, Concat, Transpose), which ONNX Runtime's own graph optimiser simplifies when a
session loads. The prebuilt ResNet-18 bundles use it; the other builtins keep ``full``.
"""

from __future__ import annotations

import onnx_ir as ir
import onnx_ir.passes.common as common_passes
import onnxscript.optimizer
from onnxscript.optimizer import _constant_folding
from onnxscript.rewriter import onnx_fusions

from .fused import DDLENS

#: The ``--optimize`` choices, the default first.
OPTIMIZE_LEVELS = ("full", "light")


def check_level(level: str) -> str:
    """``level`` if it is one of :data:`OPTIMIZE_LEVELS`, else a ``ValueError`` naming them."""
    if level not in OPTIMIZE_LEVELS:
        raise ValueError(f"--optimize: unknown level {level!r}; choose one of {', '.join(OPTIMIZE_LEVELS)}")
    return level


def keeps_fused_ops(model: ir.Model) -> None:
    """Inlines every local function but ddlens's fused ops (:mod:`.fused`), in place: those
    stay function calls, for ddlens's kernels to run."""
    common_passes.InlinePass(criteria=lambda f: f.domain != DDLENS.domain)(model)


def full_optimize(model: ir.Model) -> None:
    """What ``torch.onnx.export(optimize=True)`` does (onnxscript's ``optimize_ir`` and its
    ONNX fusions), but without inlining ddlens's fused ops."""
    keeps_fused_ops(model)
    onnxscript.optimizer.optimize_ir(model, inline=False)
    onnx_fusions.fuse(model)


def light_optimize(model: ir.Model) -> None:
    """onnxscript's ``optimize_ir`` pass list without its pattern rewriter, in place."""
    folding = ir.passes.PassManager(
        [
            _constant_folding.FoldConstantsPass(
                shape_inference=True,
                input_size_limit=_constant_folding.DEFAULT_CONSTANT_FOLD_INPUT_SIZE_LIMIT,
                output_size_limit=_constant_folding.DEFAULT_CONSTANT_FOLD_OUTPUT_SIZE_LIMIT,
            ),
            common_passes.RemoveUnusedNodesPass(),
            common_passes.RemoveUnusedFunctionsPass(),
            common_passes.RemoveUnusedOpsetsPass(),
        ],
        steps=2,
        early_stop=True,
    )
    keeps_fused_ops(model)
    ir.passes.Sequential(
        folding,
        common_passes.RemoveUnusedNodesPass(),
        common_passes.LiftConstantsToInitializersPass(lift_all_constants=True, size_limit=0),
        common_passes.LiftSubgraphInitializersToMainGraphPass(),
        common_passes.DeduplicateInitializersPass(),
        common_passes.CommonSubexpressionEliminationPass(),
        common_passes.OutputFixPass(),
        common_passes.NameFixPass(),
    )(model)
