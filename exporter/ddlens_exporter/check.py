"""Comparing a bundle's ONNX graphs (run in ONNX Runtime) with the same roles in eager PyTorch.

Parameters are drawn from the manifest's init distributions (so the check also exercises
them), inputs at random but seeded (with one intra-op thread a check is deterministic); every
role listed in the manifest is run at several batch sizes, which proves the batch dimension
is really dynamic. The PyTorch reference is the torch.func definition of each role
(:mod:`.roles`) with PyTorch's own kernels, in float64.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .roles import FunctionalModel, Roles
from .tracing import example_inputs


@dataclass
class Mismatch:
    """One role output that differs from the reference beyond the tolerance."""

    role: str
    batch: int
    output: str
    max_abs_err: float
    scale: float

    def __str__(self) -> str:
        return (f"role {self.role}, batch {self.batch}, output `{self.output}`: max |ort - torch| = "
                f"{self.max_abs_err:.3g} (reference scale {self.scale:.3g})")


def draw_params(manifest: dict[str, Any], generator: torch.Generator) -> list[torch.Tensor]:
    """A fresh parameter set drawn from the manifest's ``init`` distributions."""
    out = []
    for p in manifest["params"]:
        init, shape = p["init"], p["shape"]
        if init["kind"] == "uniform":
            t = torch.rand(*shape, generator=generator) * (init["high"] - init["low"]) + init["low"]
        elif init["kind"] == "normal":
            t = torch.randn(*shape, generator=generator) * init["std"] + init["mean"]
        else:
            # Perturb constant inits (norm weights 1, biases 0) so the check does not only see
            # the special point where those parameters are trivial.
            t = torch.full(shape, float(init["value"])) + 0.1 * torch.randn(*shape, generator=generator)
        out.append(t)
    return out


def draw_state(manifest: dict[str, Any], generator: torch.Generator) -> list[torch.Tensor]:
    """Running-statistics state around the manifest's ``init`` values: means ``0 + N(0, 0.3)``,
    variances ``1 + U(0, 0.5)`` (positive), so that evaluation mode is checked away from the
    trivial point."""
    out = []
    for s in manifest.get("state", []):
        value, shape = float(s["init"]["value"]), s["shape"]
        if value > 0:
            out.append(value + 0.5 * torch.rand(*shape, generator=generator))
        else:
            out.append(value + 0.3 * torch.randn(*shape, generator=generator))
    return out


def session(path: Path, threads: int = 1):
    """An ONNX Runtime CPU session (one thread by default: deterministic and test-friendly)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run_ort(bundle: Path, manifest: dict[str, Any], role: str, args: list[torch.Tensor], sess=None) -> list[np.ndarray]:
    spec = manifest["graphs"][role]
    sess = sess or session(bundle / spec["file"])
    feeds = {name: a.numpy() for name, a in zip(spec["inputs"], args)}
    return sess.run(spec["outputs"], feeds)


def run_torch(roles: Roles, role: str, args: list[torch.Tensor], dtype: torch.dtype = torch.float64) -> list[np.ndarray]:
    """The role in eager PyTorch (torch.func, native backward kernels, no decompositions).

    The reference runs in float64 by default: the graphs run in float32, and a float32
    reference has errors of its own (a pre-activation within round-off of a ReLU kink flips
    the gradient mask; seen in PyTorch, not in ONNX Runtime, on ConvNet-3)."""
    args = [a.to(dtype) if a.is_floating_point() else a for a in args]
    with warnings.catch_warnings():
        # torch.func.jvp trips an internal deprecation warning of torch.jit.script.
        warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)
        outs = roles.get(role)(*args)
    return [o.detach().numpy() for o in outs]


def compare(ref: list[np.ndarray], got: list[np.ndarray], names: list[str], role: str, batch: int,
            rtol: float) -> list[Mismatch]:
    """Per output: max abs error against ``rtol`` times the reference's max magnitude.

    The magnitude is floored at 1% of the largest magnitude among the role's outputs, so that
    outputs which are mathematically zero (e.g. the gradient of a conv bias followed by a
    norm layer) are judged against the role's scale instead of their own round-off noise."""
    role_scale = max((float(np.abs(r).max()) for r in ref if r.size), default=0.0)
    bad = []
    for name, r, g in zip(names, ref, got):
        if r.shape != g.shape:
            bad.append(Mismatch(role, batch, f"{name} (shape {g.shape} vs {r.shape})", float("inf"), 0.0))
            continue
        scale = float(np.abs(r).max()) if r.size else 0.0
        err = float(np.abs(r - g).max()) if r.size else 0.0
        if not np.isfinite(g).all() or err > rtol * max(scale, 1e-2 * role_scale, 1e-6):
            bad.append(Mismatch(role, batch, name, err, scale))
    return bad


def check_bundle(bundle: str | Path, model: nn.Module, batches=(3, 7), rtol: float = 1e-4, seed: int = 0,
                 roles: list[str] | None = None, draws: int = 3) -> list[Mismatch]:
    """Runs every role of ``bundle`` in ONNX Runtime and in PyTorch; returns the mismatches.

    ``draws``: independent random inputs tried per (role, batch size); the pair passes when
    one of them matches. Why: in a ReLU network a float32 pre-activation within round-off of
    zero (about one in 10^7 on ConvNet-3) may land on the other side of the kink than the
    float64 reference, which legitimately changes a gradient by percents. That is a rare
    per-draw event, while a wrong graph fails every draw. Use ``draws=1`` for small models."""
    bundle = Path(bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    fmodel = FunctionalModel(model)
    names = [p["name"] for p in manifest["params"]]
    if fmodel.param_names != names:
        raise ValueError(f"{bundle}: the module's parameters {fmodel.param_names} differ from the manifest's {names}")
    state_names = [s["name"] for s in manifest.get("state", [])]
    if fmodel.state_names != state_names:
        raise ValueError(f"{bundle}: the module's state {fmodel.state_names} differs from the manifest's {state_names}"
                         " (was it exported with another --batchnorm?)")
    torch_roles = Roles(fmodel)
    gen = torch.Generator().manual_seed(seed)
    params = draw_params(manifest, gen)
    state = draw_state(manifest, gen)
    mismatches = []
    for role in roles or list(manifest["graphs"]):
        sess = session(bundle / manifest["graphs"][role]["file"])
        outputs = manifest["graphs"][role]["outputs"]
        for b in batches:
            failures = []
            for _ in range(draws):
                args = example_inputs(role, params, manifest["input_shape"], manifest["num_classes"],
                                      manifest["feature_dim"], b, gen, state)
                bad = compare(run_torch(torch_roles, role, args), run_ort(bundle, manifest, role, args, sess),
                              outputs, role, b, rtol)
                if not bad:
                    break
                failures.append(bad)
            else:
                mismatches += min(failures, key=len)
    return mismatches
