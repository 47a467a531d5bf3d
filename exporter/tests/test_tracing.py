"""Traced role graphs (before ONNX) against the eager roles, for a zoo of layer types.

Cheap (no ONNX export), so it covers many layer combinations; the ONNX path itself is covered
by test_bundles.py and test_cli.py. Graphs run in float32, the reference in float64."""

import pytest
import torch
from torch import nn

from ddlens_exporter.check import compare
from ddlens_exporter.export import feature_dim_of
from ddlens_exporter.roles import ROLE_NAMES, FunctionalModel, Roles
from ddlens_exporter.tracing import StagedTracer, example_inputs


def zoo():
    return {
        "strided-instancenorm-leaky": nn.Sequential(
            nn.Conv2d(3, 6, 3, stride=2, padding=1), nn.InstanceNorm2d(6, affine=True), nn.LeakyReLU(0.1),
            nn.Conv2d(6, 4, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 36, 4)),
        "overlapping-pools-layernorm-gelu": nn.Sequential(
            nn.Conv2d(3, 5, 3, padding=2, dilation=2, bias=False), nn.AvgPool2d(3, 2, 1, count_include_pad=False),
            nn.GELU(), nn.MaxPool2d(3, 1, 1), nn.Flatten(), nn.LayerNorm(5 * 36), nn.Linear(5 * 36, 4)),
        "silu-dropout-maxpool-odd": nn.Sequential(
            nn.Conv2d(3, 4, 5, padding=1), nn.SiLU(), nn.MaxPool2d(2), nn.Dropout(0.5), nn.Flatten(),
            nn.Linear(4 * 25, 8), nn.ELU(), nn.Linear(8, 4)),
        "groupnorm-groups-avgpool": nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.GroupNorm(2, 8), nn.Softplus(), nn.AvgPool2d(2), nn.Flatten(),
            nn.Linear(8 * 36, 4)),
    }


@pytest.mark.parametrize("name", list(zoo()))
def test_traced_graphs_match_eager_roles(name):
    torch.manual_seed(0)
    model = zoo()[name]
    roles = Roles(FunctionalModel(model))
    params = [p.detach().clone() for p in model.parameters()]
    fdim = feature_dim_of(roles.fmodel, dict(zip(roles.names, params)), (3, 12, 12), 4)
    tracer = StagedTracer(roles, params, (3, 12, 12), 4, fdim)
    for role in ROLE_NAMES:
        graph = tracer.graph(role)
        for batch in (2, 6):  # neither is the tracing batch: the graphs are batch-generic
            args = example_inputs(role, params, (3, 12, 12), 4, fdim, batch, torch.Generator().manual_seed(batch))
            got = [t.detach().numpy() for t in graph(*args)]
            want = [t.detach().numpy() for t in roles.get(role)(*[a.double() if a.is_floating_point() else a
                                                                  for a in args])]
            bad = compare(want, got, [f"out{i}" for i in range(len(want))], role, batch, rtol=1e-4)
            assert not bad, "\n".join(map(str, bad))


def test_grouped_conv_weight_gradient_is_refused():
    model = nn.Sequential(nn.Conv2d(4, 4, 3, groups=2), nn.Flatten(), nn.Linear(4 * 36, 3))
    roles = Roles(FunctionalModel(model))
    params = [p.detach() for p in model.parameters()]
    tracer = StagedTracer(roles, params, (4, 8, 8), 3, 4 * 36)
    tracer.graph("forward")
    tracer.graph("features_vjp")  # input gradients of grouped convolutions are fine
    with pytest.raises(NotImplementedError, match="groups=2"):
        tracer.graph("grad")
