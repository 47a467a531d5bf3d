"""Writing a bundle: each role's traced graph -> one ONNX file, plus manifest.json.

Pipeline for one role (tracing in :mod:`.tracing`):

1. ``torch.export.export`` re-traces the symbolic ATen graph with only the batch dimension
   dynamic (all other sizes become constants again);
2. the exporter's opaque ops are lowered to ATen (:func:`.decompositions.lowering_table`);
3. ``torch.onnx.export`` translates to ONNX (opset 18) with the format's tensor names, with
   the faster translations of :mod:`.translations` for the ops they cover;
4. the model loses torch.onnx's debug metadata, is saved as one self-contained file and is
   checked: ``onnx.checker``, tensor names, a dynamic batch dimension.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx
import torch
from torch import nn

from .decompositions import lowering_table
from .diagnose import explain
from . import running_stats as rs
from .manifest import apply_batchnorm, build_manifest, norm_state, param_specs, uses_batch_statistics
from .optimize import check_level, full_optimize, light_optimize
from .roles import ROLE_NAMES, FunctionalModel, Roles, io_names
from .tracing import StagedTracer
from .translations import translation_table

OPSET = 18


@dataclass
class BundleSpec:
    """Everything needed to export one bundle besides the module itself."""

    name: str
    input_shape: tuple[int, int, int]
    num_classes: int
    normalization: dict[str, Any]
    description: str = ""
    roles: Sequence[str] = ROLE_NAMES
    grad_weight_impl: str = "matmul"
    #: How BatchNorm layers with running statistics are exported (``--batchnorm``, see
    #: :data:`.manifest.BATCHNORM_MODES`); ``None`` refuses them.
    batchnorm: str | None = None
    #: How hard each graph is simplified (``--optimize``, :data:`.optimize.OPTIMIZE_LEVELS`).
    optimize: str = "full"
    #: Written to ``export.json`` so ``python -m ddlens_exporter check`` can rebuild the module.
    source: dict[str, Any] = field(default_factory=dict)


def _quiet():
    """torch.onnx prints progress lines, warnings and log records on every export; keep the
    CLI readable (set DDLENS_EXPORT_VERBOSE=1 to see them)."""
    stack = contextlib.ExitStack()
    if os.environ.get("DDLENS_EXPORT_VERBOSE"):
        return stack
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    for name in ("torch.onnx", "torch.export", "torch._export", "onnxscript"):
        logger = logging.getLogger(name)
        previous = logger.level
        logger.setLevel(logging.ERROR)
        stack.callback(logger.setLevel, previous)
    return stack


@contextlib.contextmanager
def _no_conversion_to_the_same_opset():
    """``torch.onnx.export`` converts every model to ``opset_version`` with onnxscript's
    version converter, which first inlines every model-local function, even when the model is
    at that opset already (torch 2.15, onnxscript 0.7.2). ddlens's fused ops must stay
    functions (:mod:`.fused`), and torchlib writes opset 18 (:data:`OPSET`), so here the
    conversion is skipped when it has nothing to convert."""
    from onnxscript._framework_apis import torch_2_11 as apis

    original = apis.convert_version

    def convert_version(model, target_version: int):
        if model.opset_imports.get("") == target_version:
            return model
        return original(model, target_version)

    apis.convert_version = convert_version
    try:
        yield
    finally:
        apis.convert_version = original


def export_graph(gm: torch.fx.GraphModule, args: list[torch.Tensor], input_names: list[str],
                 output_names: list[str], batched: list[bool], path: Path, opset: int = OPSET,
                 optimize: str = "full") -> onnx.ModelProto:
    """Exports a traced role to one self-contained ONNX file with a dynamic ``batch`` dim,
    simplified at the ``optimize`` level (:mod:`.optimize`)."""
    check_level(optimize)
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    dynamic_shapes = tuple({0: batch} if b else None for b in batched)
    with tempfile.TemporaryDirectory() as tmp, _quiet(), _no_conversion_to_the_same_opset():
        tmp_path = Path(tmp) / "graph.onnx"
        # torch.export re-traces the graph with only the batch dynamic (other sizes become
        # constants again); then the exporter's opaque ops are lowered to ATen.
        exported = torch.export.export(gm, tuple(args), dynamic_shapes=dynamic_shapes)
        exported = exported.run_decompositions(lowering_table())
        program = torch.onnx.export(
            exported, tuple(args), dynamo=True, input_names=input_names, output_names=output_names,
            opset_version=opset, external_data=False, optimize=False,
            custom_translation_table=translation_table(),
        )
        (full_optimize if optimize == "full" else light_optimize)(program.model)
        program.save(str(tmp_path), external_data=False)
        model = onnx.load(str(tmp_path), load_external_data=True)
    _check_io(model, input_names, output_names, batched, path)
    _strip_metadata(model)
    # Re-save without external data: one self-contained file per role.
    onnx.save_model(model, str(path), save_as_external_data=False)
    onnx.checker.check_model(str(path), full_check=True)
    return model


def _strip_metadata(model: onnx.ModelProto) -> None:
    """Drops torch.onnx's per-node debug metadata (FX node text, stack traces, scopes): it is
    most of the file size and carries nothing the runtime uses."""
    for node in model.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    for fn in model.functions:
        for node in fn.node:
            del node.metadata_props[:]


def _check_io(model: onnx.ModelProto, input_names: list[str], output_names: list[str], batched: list[bool],
              path: Path) -> None:
    """The format's tensor names in order, a dynamic dim 0 on batched inputs, opset 18."""
    got_in = [i.name for i in model.graph.input]
    got_out = [o.name for o in model.graph.output]
    if got_in != input_names or got_out != output_names:
        raise RuntimeError(
            f"{path.name}: exported graph has inputs {got_in} and outputs {got_out}, "
            f"the format needs {input_names} and {output_names}"
        )
    for value, is_batched in zip(model.graph.input, batched):
        dims = value.type.tensor_type.shape.dim
        if is_batched and (not dims or dims[0].HasField("dim_value")):
            raise RuntimeError(f"{path.name}: input `{value.name}` lost its dynamic batch dimension")
    opset = {o.domain: o.version for o in model.opset_import}.get("", None)
    if opset != OPSET:
        raise RuntimeError(f"{path.name}: exported with opset {opset}, expected {OPSET}")


def feature_dim_of(fmodel: FunctionalModel, params: dict[str, torch.Tensor], input_shape: Sequence[int],
                   num_classes: int) -> int:
    """Runs the model once to read the feature size and check the logits size."""
    with torch.no_grad():
        logits, feats = fmodel(params, torch.zeros(2, *input_shape))
    if logits.shape[1] != num_classes:
        raise ValueError(f"the model produces {logits.shape[1]} logits but --num-classes is {num_classes}")
    return int(feats.shape[1])


def _check_roles(roles: Sequence[str]) -> None:
    unknown = [r for r in roles if r not in ROLE_NAMES]
    if unknown:
        raise ValueError(f"--roles: unknown role(s) {unknown}; known roles: {', '.join(ROLE_NAMES)}")
    if "forward" not in roles:
        raise ValueError("--roles must include `forward`, which every bundle needs")


def bundle_manifest(model: nn.Module, spec: BundleSpec) -> dict[str, Any]:
    """The manifest an export of ``model`` under ``spec`` writes, computed without tracing
    (parameters, feature size and graph table come from the module and the format).
    ``spec.batchnorm`` is applied to ``model`` in place (:func:`.manifest.apply_batchnorm`)."""
    _check_roles(spec.roles)
    apply_batchnorm(model, spec.batchnorm)
    params_meta = param_specs(model)
    fmodel = FunctionalModel(model)
    pdict = {n: p.detach() for n, p in model.named_parameters()}
    feature_dim = feature_dim_of(fmodel, pdict, spec.input_shape, spec.num_classes)
    graphs = {}
    for role in [r for r in ROLE_NAMES if r in spec.roles]:
        in_names, out_names = io_names(role, fmodel.param_names, fmodel.state_names)
        graphs[role] = {"file": f"{role}.onnx", "inputs": in_names, "outputs": out_names}
    return build_manifest(
        name=spec.name, description=spec.description, input_shape=list(spec.input_shape),
        num_classes=spec.num_classes, feature_dim=feature_dim, normalization=spec.normalization,
        opset=OPSET, params=params_meta, graphs=graphs,
        batch_statistics=uses_batch_statistics(model), norm_state=norm_state(model),
        state=rs.state_specs(model),
    )


def export_bundle(model: nn.Module, spec: BundleSpec, out_dir: str | os.PathLike, log=print) -> dict[str, Any]:
    """Exports ``model`` as a bundle into the folder ``out_dir``; returns the manifest.
    ``spec.batchnorm`` is applied to ``model`` in place, so that checking the bundle against
    the same module object compares like with like."""
    out = Path(out_dir)
    check_level(spec.optimize)
    manifest = bundle_manifest(model, spec)
    fmodel = FunctionalModel(model)
    params = [p.detach().clone() for p in model.parameters()]
    state = [torch.full(s["shape"], float(s["init"]["value"])) for s in manifest.get("state", [])]
    tracer = StagedTracer(Roles(fmodel), params, spec.input_shape, spec.num_classes, manifest["feature_dim"],
                          spec.grad_weight_impl, state=state)
    out.mkdir(parents=True, exist_ok=True)
    for role, graph in manifest["graphs"].items():
        log(f"  {spec.name}: {role}")
        try:
            gm = tracer.graph(role)
            export_graph(gm, tracer.example_inputs(role), graph["inputs"], graph["outputs"],
                         tracer.batch_dims(role), out / graph["file"], optimize=spec.optimize)
        except Exception as e:
            # One paragraph naming the module, the op and what to use instead; the original
            # exception stays chained for --verbose.
            raise explain(e, model, spec.input_shape, spec.name, role) from e
    for role in ROLE_NAMES:  # a re-export with fewer roles must not leave stale graphs behind
        if role not in manifest["graphs"]:
            (out / f"{role}.onnx").unlink(missing_ok=True)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    if spec.source:
        (out / "export.json").write_text(json.dumps(spec.source, indent=2) + "\n")
    return manifest
