"""BatchNorm whose running statistics are explicit graph state (``--batchnorm running-stats``).

Each ``nn.BatchNorm*`` of the model is replaced by a :class:`RunningStatsBatchNorm` holding the
same ``weight`` and ``bias`` parameters (so parameter names do not change) and no buffers. Its
running mean and variance become *state* tensors named like PyTorch's buffers
(``<module>.running_mean``, ``<module>.running_var``), listed in the manifest's ``state`` and
passed to the graphs as inputs:

* evaluation mode (the ``forward`` role) normalises with the state it is given;
* training mode (every other role) normalises with the statistics of the batch, exactly as
  the ``batch-stats`` form does; when asked to record, each layer also keeps its batch mean and
  unbiased variance, from which ``grad`` computes the updated state with PyTorch's rule
  ``new = (1 - momentum) * old + momentum * batch`` (:func:`updated_state`).

``num_batches_tracked`` is not needed for a fixed ``momentum``; ``momentum=None`` (PyTorch's
cumulative average) is refused.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

#: The state tensors of one layer, in manifest order, with their initial values.
STATE_FIELDS = (("running_mean", 0.0), ("running_var", 1.0))


class RunningStatsBatchNorm(nn.Module):
    """A BatchNorm layer with its running statistics supplied from outside (see the module
    documentation). ``running`` set: evaluation mode on those statistics; otherwise training
    mode, recording ``(mean, unbiased var)`` of the batch in ``batch_stats`` when ``record``."""

    def __init__(self, bn: nn.modules.batchnorm._BatchNorm, path: str):
        super().__init__()
        if bn.momentum is None:
            raise ValueError(
                f"module `{path}` ({type(bn).__name__}) has momentum=None (a cumulative average of "
                "every batch so far); --batchnorm running-stats needs a fixed momentum (PyTorch's "
                "default is 0.1)"
            )
        self.weight = bn.weight
        self.bias = bn.bias
        self.num_features = bn.num_features
        self.eps = float(bn.eps)
        self.momentum = float(bn.momentum)
        self.kind = type(bn).__name__
        self.running: tuple[torch.Tensor, torch.Tensor] | None = None
        self.record = False
        self.batch_stats: tuple[torch.Tensor, torch.Tensor] | None = None

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum} (from {self.kind}, running stats as state)"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = [1, -1] + [1] * (x.dim() - 2)
        if self.running is not None:
            mean, var = self.running
            out = (x - mean.reshape(shape)) * torch.rsqrt(var.reshape(shape) + self.eps)
            if self.weight is not None:
                out = out * self.weight.reshape(shape)
            if self.bias is not None:
                out = out + self.bias.reshape(shape)
            return out
        if self.record:
            dims = [0, *range(2, x.dim())]
            self.batch_stats = (x.mean(dim=dims), x.var(dim=dims, correction=1))
        return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)


def layers(model: nn.Module) -> list[tuple[str, RunningStatsBatchNorm]]:
    """The running-stats layers of ``model`` in registration order (the state's order)."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, RunningStatsBatchNorm)]


def convert(model: nn.Module) -> nn.Module:
    """Replaces every ``nn.BatchNorm*`` of ``model`` in place by a :class:`RunningStatsBatchNorm`."""
    targets = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for path, bn in targets:
        parent_path, _, child = path.rpartition(".")
        parent = model.get_submodule(parent_path) if parent_path else model
        setattr(parent, child, RunningStatsBatchNorm(bn, path))
    return model


def state_specs(model: nn.Module) -> list[dict[str, Any]]:
    """The manifest's ``state`` entries: per layer its running mean (init 0) and running
    variance (init 1), shape ``[C]``, named like PyTorch's buffers."""
    return [
        {"name": f"{path}.{field}", "shape": [m.num_features], "init": {"kind": "constant", "value": value}}
        for path, m in layers(model) for field, value in STATE_FIELDS
    ]


def momenta(model: nn.Module) -> list[float]:
    """The momentum of each state tensor, in state order."""
    return [m.momentum for _, m in layers(model) for _ in STATE_FIELDS]


def state_names(model: nn.Module) -> list[str]:
    """The state tensor names, in order."""
    return [s["name"] for s in state_specs(model)]


class evaluating:
    """Context: the layers normalise with ``state`` (a flat list in state order)."""

    def __init__(self, model: nn.Module, state: list[torch.Tensor]):
        self.layers = [m for _, m in layers(model)]
        self.state = list(state)
        if len(self.state) != 2 * len(self.layers):
            raise ValueError(f"{len(self.state)} state tensors for {len(self.layers)} running-stats layers")

    def __enter__(self):
        for i, m in enumerate(self.layers):
            m.running = (self.state[2 * i], self.state[2 * i + 1])
        return self

    def __exit__(self, *exc):
        for m in self.layers:
            m.running = None
        return False


class recording:
    """Context: the layers run in training mode and record their batch statistics; ``stats()``
    returns them flat, in state order (mean, unbiased var per layer)."""

    def __init__(self, model: nn.Module):
        self.layers = [m for _, m in layers(model)]

    def __enter__(self):
        for m in self.layers:
            m.record, m.batch_stats = True, None
        return self

    def stats(self) -> list[torch.Tensor]:
        out = []
        for m in self.layers:
            if m.batch_stats is None:
                raise ValueError(f"a running-stats BatchNorm ({m.kind}) did not run in the forward pass")
            out += list(m.batch_stats)
        return out

    def __exit__(self, *exc):
        for m in self.layers:
            m.record, m.batch_stats = False, None
        return False


def updated_state(state: list[torch.Tensor], batch_stats: list[torch.Tensor], momenta_: list[float]) -> list[torch.Tensor]:
    """PyTorch's running-statistics update: ``(1 - m) * old + m * batch`` per state tensor
    (the batch variance is the unbiased one, as ``nn.BatchNorm*`` in training mode uses)."""
    return [(1.0 - m) * s + m * b for s, b, m in zip(state, batch_stats, momenta_)]
