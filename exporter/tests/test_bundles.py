"""Exported bundles: file layout and every role in ONNX Runtime against PyTorch at two batch
sizes (which also proves the batch dimension is dynamic)."""

import json
from collections import Counter

import onnx
import pytest
import torch
from torch import nn

from ddlens_exporter.check import check_bundle
from ddlens_exporter.export import BundleSpec, export_bundle
from ddlens_exporter.manifest import parse_normalization
from onnx_io import check_files


def zoo_model():
    """Layers the ConvNets do not have: dilated conv without bias, overlapping average pooling
    without padding counts, GELU, a strided conv with a non-square kernel whose floor division
    drops a row, overlapping max pooling (the scatter-add fallback), LayerNorm."""
    return nn.Sequential(
        nn.Conv2d(3, 5, 3, padding=2, dilation=2, bias=False), nn.AvgPool2d(3, 2, 1, count_include_pad=False),
        nn.GELU(), nn.Conv2d(5, 5, (3, 2), stride=(2, 1), padding=1), nn.MaxPool2d(3, 1, 1), nn.Flatten(),
        nn.LayerNorm(5 * 21), nn.Linear(5 * 21, 4))


@pytest.fixture(scope="module")
def zoo_bundle(export_root):
    spec = BundleSpec(name="zoo", input_shape=(3, 12, 12), num_classes=4,
                      normalization=parse_normalization("cifar10", 3))
    model = zoo_model()
    export_bundle(model, spec, export_root / "zoo", log=lambda *_: None)
    return export_root / "zoo", model


def adaptive_model():
    """Adaptive pooling in all four lowerings: average with divisible sizes (8 -> 4) and with
    windows of different lengths (3 -> 2), max with overlapping windows (4 -> 3) and global."""
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), nn.Tanh(), nn.AdaptiveAvgPool2d(4), nn.AdaptiveMaxPool2d(3),
        nn.Conv2d(3, 3, 1), nn.Tanh(), nn.AdaptiveAvgPool2d(2), nn.AdaptiveMaxPool2d(1), nn.Flatten(),
        nn.Linear(3, 3))


@pytest.fixture(params=["tiny_bundle", "tiny_maxpool_bundle"])
def bundle(request):
    return request.getfixturevalue(request.param)


def test_files_follow_the_format(bundle):
    assert sorted(bundle.manifest["graphs"]) == sorted(["forward", "grad", "grad_vjp", "features_vjp", "loss_jvp"])
    check_files(bundle.path, bundle.manifest)
    for spec in bundle.manifest["graphs"].values():
        onnx.checker.check_model(str(bundle.path / spec["file"]), full_check=True)


def test_roles_match_pytorch(bundle):
    # Small models: no ReLU kink lands within float32 round-off, so every draw must match.
    mismatches = check_bundle(bundle.path, bundle.model, batches=(3, 7), draws=1)
    assert not mismatches, "\n".join(map(str, mismatches))


def test_more_layer_types(zoo_bundle):
    path, model = zoo_bundle
    check_files(path, json.loads((path / "manifest.json").read_text()))
    mismatches = check_bundle(path, model, batches=(3, 7), draws=1)
    assert not mismatches, "\n".join(map(str, mismatches))
    # Each weight gradient starts from one fused Im2Col (a model-local function that ONNX
    # Runtime inlines here), with its convolution's geometry as attributes.
    graph = onnx.load(str(path / "grad.onnx"))
    geometry = sorted(tuple((a.name, tuple(a.ints)) for a in n.attribute)
                      for n in graph.graph.node if (n.domain, n.op_type) == ("ai.ddlens", "Im2Col"))
    assert geometry == [
        (("kernel_shape", (3, 2)), ("strides", (2, 1)), ("pads", (1, 1, 1, 1)), ("dilations", (1, 1))),
        (("kernel_shape", (3, 3)), ("strides", (1, 1)), ("pads", (2, 2, 2, 2)), ("dilations", (2, 2))),
    ]
    assert [(f.domain, f.name) for f in graph.functions] == [("ai.ddlens", "Im2Col")]


def test_single_sample_and_larger_batches(tiny_bundle):
    mismatches = check_bundle(tiny_bundle.path, tiny_bundle.model, batches=(1, 33), draws=1, seed=5)
    assert not mismatches, "\n".join(map(str, mismatches))


def test_manifest_params_and_feature_dim(tiny_bundle):
    m = tiny_bundle.manifest
    assert m["name"] == "tiny-1x8x8" and m["input_shape"] == [1, 8, 8] and m["num_classes"] == 3
    assert m["feature_dim"] == 64
    assert m["normalization"] == {"dataset": "none", "mean": [0.0], "std": [1.0]}
    assert [(p["name"], p["shape"]) for p in m["params"]] == [
        ("conv0.weight", [4, 1, 3, 3]), ("conv0.bias", [4]), ("norm0.weight", [4]), ("norm0.bias", [4]),
        ("classifier.weight", [3, 64]), ("classifier.bias", [3]),
    ]
    assert m["params"][0]["init"] == {"kind": "uniform", "low": -1 / 3, "high": 1 / 3}
    assert m["params"][4]["init"]["high"] == pytest.approx(0.125)


def test_role_subset_replaces_stale_graphs(tmp_path, tiny_bundle):
    out = tmp_path / "forward-only"
    out.mkdir()
    (out / "grad.onnx").write_bytes(b"stale")
    spec = BundleSpec(name="forward-only", input_shape=(1, 8, 8), num_classes=3,
                      normalization=parse_normalization("none", 1), roles=["forward"])
    manifest = export_bundle(tiny_bundle.model, spec, out, log=lambda *_: None)
    assert list(manifest["graphs"]) == ["forward"]
    assert sorted(p.name for p in out.iterdir()) == ["forward.onnx", "manifest.json"]
    with pytest.raises(ValueError, match="must include `forward`"):
        export_bundle(tiny_bundle.model, BundleSpec("x", (1, 8, 8), 3, spec.normalization, roles=["grad"]), out)


def test_adaptive_pooling(export_root):
    """Every role of a model with adaptive pooling (forward and the backward kernels
    ``_adaptive_avg_pool2d_backward`` / ``adaptive_max_pool2d_backward`` rewritten into forward
    ops) against torch.func in PyTorch."""
    model = adaptive_model()
    spec = BundleSpec(name="adaptive", input_shape=(1, 8, 8), num_classes=3,
                      normalization=parse_normalization("none", 1))
    export_bundle(model, spec, export_root / "adaptive", log=lambda *_: None)
    manifest = json.loads((export_root / "adaptive" / "manifest.json").read_text())
    assert sorted(manifest["graphs"]) == sorted(["forward", "grad", "grad_vjp", "features_vjp", "loss_jvp"])
    check_files(export_root / "adaptive", manifest)
    mismatches = check_bundle(export_root / "adaptive", model, batches=(3, 7), draws=1)
    assert not mismatches, "\n".join(map(str, mismatches))


def test_batchnorm_on_batch_statistics(export_root):
    """BatchNorm2d with running statistics, exported with ``batchnorm="batch-stats"``: every
    role normalises with the statistics of its batch and matches torch.func on the same
    module (whose running statistics the export dropped)."""
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.AvgPool2d(2),
                          nn.Flatten(), nn.Linear(48, 3))
    spec = BundleSpec(name="bn", input_shape=(1, 8, 8), num_classes=3, normalization=parse_normalization("none", 1),
                      batchnorm="batch-stats")
    manifest = export_bundle(model, spec, export_root / "bn", log=lambda *_: None)
    assert manifest["norm_state"] == "batch-stats" and manifest["batch_statistics"] is True
    assert model[1].running_mean is None
    check_files(export_root / "bn", manifest)
    mismatches = check_bundle(export_root / "bn", model, batches=(3, 7), draws=1)
    assert not mismatches, "\n".join(map(str, mismatches))


def test_light_optimization_keeps_every_role_exact(export_root):
    """``optimize="light"`` (folding and clean-up without onnxscript's pattern rewriter, used
    for ResNet-18) writes the same files and graphs that still match PyTorch in every role;
    an unknown level is an error naming the flag."""
    model = zoo_model()
    spec = BundleSpec(name="zoo-light", input_shape=(3, 12, 12), num_classes=4,
                      normalization=parse_normalization("cifar10", 3), optimize="light")
    manifest = export_bundle(model, spec, export_root / "zoo-light", log=lambda *_: None)
    check_files(export_root / "zoo-light", manifest)
    mismatches = check_bundle(export_root / "zoo-light", model, batches=(3, 7), draws=1)
    assert not mismatches, "\n".join(map(str, mismatches))
    spec.optimize = "fast"
    with pytest.raises(ValueError, match="--optimize: unknown level 'fast'"):
        export_bundle(model, spec, export_root / "zoo-bad", log=lambda *_: None)


def test_group_norm_translation(export_root):
    """Group norm through the exporter's translation (:mod:`ddlens_exporter.translations`),
    in all three forms: one group per channel without affine, fewer groups than channels
    (the broadcast affine), and one group per channel with affine (folded into
    ``InstanceNormalization``). Every role matches PyTorch; ``forward`` normalises each
    per-channel norm with one ``InstanceNormalization`` and the grouped one with one
    ``LayerNormalization``, and ``grad`` takes every norm's statistics from one
    ``LayerNormalization`` (no ``ReduceMean`` passes). In ``grad`` and ``features_vjp`` the
    backward of each per-channel norm is one fused node (:mod:`ddlens_exporter.fused`), a
    model-local function that ONNX Runtime inlines here: ``InstanceNormBackward`` for the
    first (a Tanh follows it), ``ReluInstanceNormBackward`` for the last (the ReLU after it
    folded in). In ``grad_vjp`` each per-channel norm is an ``InstanceNormalization`` (its statistics
    from a ``LayerNormalization``), two
    ``InstanceNormBackward`` (the gradient's and its derivative's first-order part) and one
    ``InstanceNormDoubleBackward``; only the grouped norm is left as reductions."""
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.GroupNorm(4, 4, affine=False), nn.Tanh(),
        nn.Conv2d(4, 6, 3, padding=1), nn.GroupNorm(2, 6), nn.Tanh(), nn.AvgPool2d(2),
        nn.Conv2d(6, 4, 3, padding=1), nn.GroupNorm(4, 4), nn.ReLU(), nn.Flatten(), nn.Linear(64, 3))
    with torch.no_grad():  # non-trivial affines, so a dropped scale or shift shows
        for norm in (model[4], model[8]):
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.5, 0.5)
    spec = BundleSpec(name="gn", input_shape=(1, 8, 8), num_classes=3, normalization=parse_normalization("none", 1))
    export_bundle(model, spec, export_root / "gn", log=lambda *_: None)
    mismatches = check_bundle(export_root / "gn", model, batches=(3, 7), draws=1)
    assert not mismatches, "\n".join(map(str, mismatches))
    ops = [n.op_type for n in onnx.load(str(export_root / "gn" / "forward.onnx")).graph.node]
    assert ops.count("InstanceNormalization") == 2  # the per-channel norms, affine included
    assert ops.count("LayerNormalization") == 1 and "ReduceMean" not in ops  # GroupNorm(2, 6)
    grad_ops = [n.op_type for n in onnx.load(str(export_root / "gn" / "grad.onnx")).graph.node]
    assert grad_ops.count("LayerNormalization") == 3 and "ReduceMean" not in grad_ops
    for role in ("grad", "features_vjp"):
        graph = onnx.load(str(export_root / "gn" / f"{role}.onnx"))
        fused = [n.op_type for n in graph.graph.node if n.domain == "ai.ddlens"]
        im2col = 3 if role == "grad" else 0  # one per weight gradient
        assert sorted(fused) == ["Im2Col"] * im2col + ["InstanceNormBackward", "ReluInstanceNormBackward"], role
        assert sorted((f.domain, f.name) for f in graph.functions) == sorted(
            [("ai.ddlens", "InstanceNormBackward"), ("ai.ddlens", "ReluInstanceNormBackward")]
            + [("ai.ddlens", "Im2Col")] * (im2col > 0))
        assert {o.domain: o.version for o in graph.opset_import} == {"": 18, "ai.ddlens": 1}
    graph = onnx.load(str(export_root / "gn" / "grad_vjp.onnx"))
    fused = Counter(n.op_type for n in graph.graph.node if n.domain == "ai.ddlens")
    assert fused == {"InstanceNormBackward": 4, "InstanceNormDoubleBackward": 2, "Im2Col": 5}
    ops = Counter(n.op_type for n in graph.graph.node)
    assert ops["InstanceNormalization"] == 2 and ops["LayerNormalization"] == 2  # per-channel, stats
