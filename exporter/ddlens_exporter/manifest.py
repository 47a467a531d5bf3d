"""manifest.json: parameter init distributions, normalisation presets and the manifest itself.

See docs/bundle-format.md. The init distributions replicate PyTorch's default
``reset_parameters`` of each module type, so that a caller drawing from them gets the same
distribution as a freshly constructed PyTorch module.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from . import __version__
from . import running_stats as rs

FORMAT = "ddlens-bundle"
FORMAT_VERSION = 1

#: Per-channel pixel statistics of the datasets ddlens knows (pixels in [0, 1]).
NORMALIZATIONS: dict[str, tuple[list[float], list[float]]] = {
    "fashion-mnist": ([0.2861], [0.3530]),
    "mnist": ([0.1307], [0.3081]),
    "cifar10": ([0.4914, 0.4822, 0.4465], [0.2023, 0.1994, 0.2010]),
}

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_NORM = (nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d,
         nn.modules.batchnorm._BatchNorm, rs.RunningStatsBatchNorm)

#: ``--batchnorm`` choices: how BatchNorm layers with running statistics are exported.
#: ``batch-stats``: training-mode BatchNorm everywhere (every graph normalises with the
#: statistics of its batch; the running statistics are dropped), a pure function of the
#: parameters. ``running-stats``: the running mean and variance become explicit state
#: (:mod:`.running_stats`): ``forward`` reads it in evaluation mode, ``grad`` also outputs
#: its update, the other roles run in training mode.
BATCHNORM_MODES = ("batch-stats", "running-stats")

#: Values of the manifest's ``norm_state``: which form of normalisation state the graphs use.
#: ``none``: no BatchNorm (absent field); ``batch-stats``: BatchNorm on batch statistics;
#: ``running-stats``: running statistics carried as state (the manifest's ``state``).
NORM_STATES = ("none", "batch-stats", "running-stats")


def parse_normalization(spec: str, channels: int) -> dict[str, Any]:
    """``fashion-mnist`` | ``mnist`` | ``cifar10`` | ``none`` | ``"m1,m2;s1,s2"`` -> manifest field.

    A single custom value is repeated over all channels."""
    key = spec.strip().lower()
    if key == "none":
        mean, std, dataset = [0.0] * channels, [1.0] * channels, "none"
    elif key in NORMALIZATIONS:
        mean, std = NORMALIZATIONS[key]
        dataset = key
    elif ";" in spec:
        try:
            m_txt, s_txt = spec.split(";")
            mean = [float(v) for v in m_txt.split(",")]
            std = [float(v) for v in s_txt.split(",")]
        except ValueError as e:
            raise ValueError(f"--normalization {spec!r}: expected 'mean;std' with comma-separated floats ({e})") from e
        mean = mean * channels if len(mean) == 1 else mean
        std = std * channels if len(std) == 1 else std
        dataset = "custom"
    else:
        known = ", ".join([*NORMALIZATIONS, "none"])
        raise ValueError(f"--normalization {spec!r}: expected one of {known} or 'mean;std'")
    if len(mean) != channels or len(std) != channels:
        raise ValueError(
            f"--normalization {spec!r} has {len(mean)} mean and {len(std)} std values, "
            f"but the input has {channels} channels"
        )
    if any(not (s > 0 and math.isfinite(s)) for s in std):
        raise ValueError(f"--normalization {spec!r}: std values must be positive")
    return {"dataset": dataset, "mean": [float(m) for m in mean], "std": [float(s) for s in std]}


def _fan_in(weight: torch.Tensor) -> int:
    # Exactly the fan_in PyTorch's reset_parameters uses (including its ConvTranspose quirk).
    fan_in, _ = nn.init._calculate_fan_in_and_fan_out(weight)
    return fan_in


def _kaiming_bound(fan_in: int) -> float:
    # kaiming_uniform_(a=sqrt(5)): gain = sqrt(2 / (1 + 5)), bound = gain * sqrt(3 / fan_in) = 1 / sqrt(fan_in)
    return 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0


def param_init(module: nn.Module, local_name: str, tensor: torch.Tensor, full_name: str) -> dict[str, Any]:
    """Default-init distribution of one parameter, from its owning module's type."""
    if isinstance(module, (nn.Linear, nn.Bilinear) + _CONV):
        weight = module.weight
        bound = _kaiming_bound(_fan_in(weight) if not isinstance(module, nn.Bilinear) else weight.size(1))
        if local_name in ("weight", "bias"):
            return {"kind": "uniform", "low": -bound, "high": bound}
    if isinstance(module, _NORM) and local_name in ("weight", "bias"):
        return {"kind": "constant", "value": 1.0 if local_name == "weight" else 0.0}
    if isinstance(module, nn.PReLU) and local_name == "weight":
        return {"kind": "constant", "value": float(tensor.detach().flatten()[0])}
    raise ValueError(
        f"parameter `{full_name}` belongs to a {type(module).__name__}, whose default initialisation the "
        "ddlens exporter does not know (supported: Linear, Conv*/ConvTranspose*, GroupNorm, LayerNorm, "
        "InstanceNorm*, BatchNorm* (with --batchnorm), PReLU)"
    )


def _batchnorms(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def apply_batchnorm(model: nn.Module, mode: str | None) -> nn.Module:
    """Puts the BatchNorm layers of ``model`` (in place) into the form ``mode`` selects.

    ``None`` leaves the model as it is (BatchNorm with running statistics is then refused by
    :func:`param_specs`); ``"batch-stats"`` drops the running statistics, so that BatchNorm
    normalises with the statistics of the batch in every graph (PyTorch's training-mode
    formula, also in ``eval()``), as the distillation reference code's ``ResNet18BN`` is
    trained and evaluated inside distillation loops; ``"running-stats"`` replaces each layer
    by a :class:`.running_stats.RunningStatsBatchNorm` whose running statistics are graph
    state. Applying the same mode twice changes nothing."""
    if mode is None:
        return model
    if mode not in BATCHNORM_MODES:
        raise ValueError(f"--batchnorm {mode!r}: expected one of {', '.join(BATCHNORM_MODES)}")
    if mode == "running-stats":
        return rs.convert(model)
    for _, m in _batchnorms(model):
        m.track_running_stats = False
        m.running_mean = None
        m.running_var = None
        m.num_batches_tracked = None
    return model


def norm_state(model: nn.Module) -> str:
    """The manifest's ``norm_state`` for ``model`` (see :data:`NORM_STATES`)."""
    if rs.layers(model):
        return "running-stats"
    return "batch-stats" if _batchnorms(model) else "none"


def param_specs(model: nn.Module) -> list[dict[str, Any]]:
    """``params`` entries in ``named_parameters`` order, with their init distributions."""
    stateful = [(n, m) for n, m in _batchnorms(model) if m.running_mean is not None or m.running_var is not None]
    if stateful:
        name, mod = stateful[0]
        raise ValueError(
            f"module `{name}` ({type(mod).__name__}) keeps running statistics (running_mean, running_var) "
            f"and {len(stateful)} BatchNorm layer(s) in all; ddlens graphs are pure functions of the "
            "parameters: export with --batchnorm batch-stats to normalise with the statistics of each "
            "batch (BatchNorm in training mode, in every graph), with --batchnorm running-stats to carry "
            "the running statistics as explicit state, or use GroupNorm / InstanceNorm2d(affine=True)"
        )
    buffers = [n for n, _ in model.named_buffers()]
    if buffers:
        raise ValueError(
            f"{type(model).__name__} has buffers ({', '.join(buffers[:4])}); ddlens graphs are pure functions "
            "of the parameters, so modules with state such as BatchNorm running statistics are not "
            "supported (use GroupNorm, or InstanceNorm2d(affine=True) without running stats)"
        )
    owners = {}
    for mod_name, mod in model.named_modules():
        for local, p in mod.named_parameters(recurse=False):
            owners[f"{mod_name}.{local}" if mod_name else local] = (mod, local)
    specs = []
    for name, p in model.named_parameters():
        mod, local = owners[name]
        specs.append({"name": name, "shape": list(p.shape), "init": param_init(mod, local, p, name)})
    return specs


def build_manifest(*, name: str, description: str, input_shape: list[int], num_classes: int,
                   feature_dim: int, normalization: dict[str, Any], opset: int,
                   params: list[dict[str, Any]], graphs: dict[str, dict[str, Any]],
                   batch_statistics: bool = False, norm_state: str = "none",
                   state: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The manifest dict, fields in the order of docs/bundle-format.md. ``state``: the
    running-statistics entries (:func:`.running_stats.state_specs`), required exactly when
    ``norm_state`` is ``running-stats``."""
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name,
        "description": description,
        "input_shape": list(input_shape),
        "num_classes": num_classes,
        "feature_dim": feature_dim,
        "normalization": normalization,
        "opset": opset,
        "producer": f"ddlens-exporter {__version__} (torch {torch.__version__})",
        "params": params,
    }
    if norm_state not in NORM_STATES:
        raise ValueError(f"norm_state {norm_state!r}: expected one of {', '.join(NORM_STATES)}")
    if bool(state) != (norm_state == "running-stats"):
        raise ValueError(f"norm_state {norm_state!r} with {len(state or [])} state entries: the "
                         "running-stats form, and only it, has state")
    if state:
        manifest["state"] = state
    manifest["graphs"] = graphs
    if batch_statistics or norm_state in ("batch-stats", "running-stats"):
        manifest["batch_statistics"] = True
    if norm_state != "none":
        manifest["norm_state"] = norm_state
    return manifest


def uses_batch_statistics(model: torch.nn.Module) -> bool:
    """Whether ``model`` normalises with statistics of the batch (BatchNorm without running
    statistics, or with running statistics as state, whose training-mode graphs still use the
    batch's): ddlens must then never split a batch into chunks."""
    return any(isinstance(m, (torch.nn.modules.batchnorm._BatchNorm, rs.RunningStatsBatchNorm))
               for m in model.modules())
