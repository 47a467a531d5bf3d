"""Parameter init distributions, normalisation presets and manifest layout."""

import math

import pytest
import torch
from torch import nn

from ddlens_exporter import __version__
from ddlens_exporter.manifest import (FORMAT, FORMAT_VERSION, apply_batchnorm, build_manifest, norm_state,
                                      param_specs, parse_normalization, uses_batch_statistics)
from ddlens_exporter.models import MLP, ConvNet


def test_convnet3_params_and_bounds():
    specs = param_specs(ConvNet(channels=1, num_classes=10, width=128, im_size=(28, 28)))
    by_name = {s["name"]: s for s in specs}
    assert [s["name"] for s in specs] == [
        "conv0.weight", "conv0.bias", "norm0.weight", "norm0.bias",
        "conv1.weight", "conv1.bias", "norm1.weight", "norm1.bias",
        "conv2.weight", "conv2.bias", "norm2.weight", "norm2.bias",
        "classifier.weight", "classifier.bias",
    ]
    assert sum(math.prod(s["shape"]) for s in specs) == 317_706  # 1 input channel (CIFAR: 320,010)
    # Kaiming-uniform(a=sqrt(5)) for weights and the bias rule both give 1/sqrt(fan_in).
    assert by_name["conv0.weight"]["init"] == {"kind": "uniform", "low": -1 / 3, "high": 1 / 3}
    assert by_name["conv1.bias"]["init"]["high"] == pytest.approx(1 / math.sqrt(128 * 9))
    assert by_name["classifier.weight"]["init"]["high"] == pytest.approx(1 / math.sqrt(2048))
    assert by_name["norm0.weight"]["init"] == {"kind": "constant", "value": 1.0}
    assert by_name["norm2.bias"]["init"] == {"kind": "constant", "value": 0.0}
    cifar = param_specs(ConvNet(channels=3, num_classes=10, width=128, im_size=(32, 32)))
    assert sum(math.prod(s["shape"]) for s in cifar) == 320_010


@pytest.mark.parametrize("module", [
    nn.Conv2d(3, 8, 3), nn.Conv2d(4, 8, 3, groups=2), nn.Conv1d(2, 3, 5), nn.Linear(20, 7),
    nn.ConvTranspose2d(4, 6, 3), nn.Conv2d(3, 4, (3, 5), bias=False),
])
def test_init_bounds_equal_pytorch_draws(module):
    """Fresh PyTorch draws lie inside the manifest's bounds and reach close to them."""
    torch.manual_seed(0)
    specs = {s["name"]: s for s in param_specs(module)}
    for name, p in module.named_parameters():
        init = specs[name]["init"]
        assert init["kind"] == "uniform"
        # Draw a few thousand values the way reset_parameters does, through the module itself.
        draws = []
        for _ in range(math.ceil(3000 / p.numel())):
            module.reset_parameters()
            draws.append(p.detach().flatten().clone())
        values = torch.cat(draws)
        assert values.min() >= init["low"] and values.max() <= init["high"]
        assert values.max() > init["high"] * 0.99 and values.min() < init["low"] * 0.99


def test_norm_and_mlp_inits():
    specs = param_specs(nn.Sequential(nn.Linear(4, 3), nn.LayerNorm(3), nn.GroupNorm(1, 3), nn.InstanceNorm2d(3, affine=True)))
    kinds = [(s["name"], s["init"]["kind"], s["init"].get("value")) for s in specs]
    assert kinds[2:] == [("1.weight", "constant", 1.0), ("1.bias", "constant", 0.0),
                         ("2.weight", "constant", 1.0), ("2.bias", "constant", 0.0),
                         ("3.weight", "constant", 1.0), ("3.bias", "constant", 0.0)]
    assert [s["shape"] for s in param_specs(MLP())] == [[128, 784], [128], [128, 128], [128], [10, 128], [10]]


def test_unsupported_modules_are_named():
    with pytest.raises(ValueError, match=r"`1` \(BatchNorm2d\) keeps running statistics.*--batchnorm batch-stats"):
        param_specs(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)))
    with pytest.raises(ValueError, match="`0.weight` belongs to a Embedding"):
        param_specs(nn.Sequential(nn.Embedding(3, 4)))


def test_batch_statistics_are_flagged_in_the_manifest():
    per_image = nn.Sequential(nn.Conv2d(1, 2, 3), nn.GroupNorm(2, 2))
    batch_stats = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2, track_running_stats=False))
    assert not uses_batch_statistics(per_image)
    assert uses_batch_statistics(batch_stats)
    common = dict(name="m", description="", input_shape=[1, 4, 4], num_classes=2, feature_dim=2,
                  normalization={"dataset": "none", "mean": [0.0], "std": [1.0]}, opset=18,
                  params=[], graphs={})
    assert "batch_statistics" not in build_manifest(**common)
    assert build_manifest(**common, batch_statistics=True)["batch_statistics"] is True


def test_normalization_presets():
    assert parse_normalization("fashion-mnist", 1) == {"dataset": "fashion-mnist", "mean": [0.2861], "std": [0.3530]}
    assert parse_normalization("mnist", 1)["std"] == [0.3081]
    assert parse_normalization("cifar10", 3)["mean"] == [0.4914, 0.4822, 0.4465]
    assert parse_normalization("none", 3) == {"dataset": "none", "mean": [0.0] * 3, "std": [1.0] * 3}
    assert parse_normalization("0.5;0.25", 3) == {"dataset": "custom", "mean": [0.5] * 3, "std": [0.25] * 3}
    assert parse_normalization("0.1,0.2;0.3,0.4", 2)["std"] == [0.3, 0.4]
    for bad, msg in [("imagenet", "expected one of"), ("0.1,0.2;0.3,0.4,0.5", "2 mean and 3 std"),
                     ("1;0", "positive"), ("cifar10", "3 mean"), ("a;b", "comma-separated floats")]:
        with pytest.raises(ValueError, match=msg):
            parse_normalization(bad, 2)


def test_manifest_header(tiny_bundle):
    manifest = tiny_bundle.manifest
    assert manifest["format"] == FORMAT == "ddlens-bundle"
    assert manifest["format_version"] == FORMAT_VERSION == 1
    assert manifest["opset"] == 18
    assert manifest["producer"].startswith(f"ddlens-exporter {__version__} (torch ")
    assert list(manifest) == ["format", "format_version", "name", "description", "input_shape", "num_classes",
                              "feature_dim", "normalization", "opset", "producer", "params", "graphs"]


def test_batchnorm_batch_stats_form():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 2))
    assert norm_state(model) == "batch-stats"
    assert norm_state(nn.Sequential(nn.Conv2d(1, 2, 3), nn.GroupNorm(2, 2))) == "none"
    assert apply_batchnorm(model, None) is model and model[1].running_mean is not None
    apply_batchnorm(model, "batch-stats")
    assert [n for n, _ in model.named_buffers()] == []
    assert [(s["name"], s["init"]) for s in param_specs(model)][2:4] == [
        ("1.weight", {"kind": "constant", "value": 1.0}), ("1.bias", {"kind": "constant", "value": 0.0})]
    # In eval() mode too, each batch is normalised with its own statistics.
    model.eval()
    x = torch.randn(6, 1, 4, 4)
    h = model[1](model[0](x))
    assert torch.allclose(h.mean(dim=(0, 2, 3)), torch.zeros(2), atol=1e-5)
    with pytest.raises(ValueError, match="--batchnorm 'running'"):
        apply_batchnorm(model, "running")


def test_norm_state_in_the_manifest():
    common = {"name": "m", "description": "", "input_shape": [1, 4, 4], "num_classes": 2, "feature_dim": 2,
              "normalization": {"dataset": "none", "mean": [0.0], "std": [1.0]}, "opset": 18,
              "params": [], "graphs": {}}
    assert "norm_state" not in build_manifest(**common)
    m = build_manifest(**common, norm_state="batch-stats")
    assert m["norm_state"] == "batch-stats" and m["batch_statistics"] is True  # never split its batches
    assert list(m)[-2:] == ["batch_statistics", "norm_state"]
    with pytest.raises(ValueError, match="norm_state 'running-stats'"):
        build_manifest(**common, norm_state="running-stats")
