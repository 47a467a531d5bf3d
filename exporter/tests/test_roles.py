"""The role functions (torch.func) against independent plain-autograd computations, in
float64, plus the features rule. These are the references the ONNX graphs are checked
against, so they are checked here first."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ddlens_exporter.models import TinyConv
from ddlens_exporter.roles import ROLE_NAMES, FunctionalModel, Roles, io_names
from ddlens_exporter.tracing import example_inputs


@pytest.fixture
def setup():
    torch.manual_seed(0)
    model = TinyConv().double()
    roles = Roles(FunctionalModel(model))
    params = [p.detach().clone() for p in model.parameters()]
    return model, roles, params


def _loss(model, params, x, y, w):
    logits = torch.func.functional_call(model, dict(zip([n for n, _ in model.named_parameters()], params)), (x,))
    return (w * F.cross_entropy(logits, y, reduction="none")).sum() / x.shape[0]


def _args(role, params, batch=4):
    args = example_inputs(role, params, (1, 8, 8), 3, 64, batch, torch.Generator().manual_seed(1))
    return [a.double() if a.is_floating_point() else a for a in args]


def test_grad(setup):
    model, roles, params = setup
    args = _args("grad", params)
    x, y, w = args[len(params):]
    leaves = [p.clone().requires_grad_() for p in params]
    loss = _loss(model, leaves, x, y, w)
    want = torch.autograd.grad(loss, leaves)
    got = roles.grad(*args)
    torch.testing.assert_close(got[0], loss.detach())
    for g, r in zip(got[1:], want):
        torch.testing.assert_close(g, r)


def test_grad_vjp_is_hessian_vector_product(setup):
    model, roles, params = setup
    k = len(params)
    args = _args("grad_vjp", params)
    x, y, w = args[k:k + 3]
    a = args[k + 3:]
    leaves = [p.clone().requires_grad_() for p in params]
    xl = x.clone().requires_grad_()
    g = torch.autograd.grad(_loss(model, leaves, xl, y, w), leaves, create_graph=True)
    dot = sum((gi * ai).sum() for gi, ai in zip(g, a))
    want = torch.autograd.grad(dot, [*leaves, xl])
    got = roles.grad_vjp(*args)
    for gg, r in zip(got, want):
        torch.testing.assert_close(gg, r)


def test_features_vjp_and_forward(setup):
    model, roles, params = setup
    args = _args("features_vjp", params)
    x, c = args[len(params):]
    logits, feats = roles.forward(*params, x)
    torch.testing.assert_close(logits, model(x))
    assert feats.shape == (x.shape[0], 64)
    xl = x.clone().requires_grad_()
    conv = model.pool(model.act(model.norm0(model.conv0(xl)))).flatten(1)
    (want,) = torch.autograd.grad((conv * c).sum(), xl)
    torch.testing.assert_close(roles.features_vjp(*args)[0], want)


def test_loss_jvp_eager_and_transpose_trick_agree_with_finite_differences(setup):
    _, roles, params = setup
    k = len(params)
    args = _args("loss_jvp", params)
    v, (x, y) = args[k:2 * k], args[2 * k:]
    eps = 1e-6
    names = roles.names

    def ce(ps):
        return roles.per_sample_ce(dict(zip(names, ps)), x, y)

    fd = (ce([p + eps * d for p, d in zip(params, v)]) - ce([p - eps * d for p, d in zip(params, v)])) / (2 * eps)
    (eager,) = roles.loss_jvp(*args)
    torch.testing.assert_close(eager, fd, rtol=1e-6, atol=1e-7)
    # The export's formulation: gradient w.r.t. u of <J^T u, v>, with J^T u from ce_vjp.
    staged = Roles(roles.fmodel, ce_vjp_graph=roles.ce_vjp)
    (transposed,) = staged.loss_jvp(*args)
    torch.testing.assert_close(transposed, eager)


def test_io_names_follow_the_format():
    p = ["a.weight", "a.bias"]
    assert io_names("forward", p) == (p + ["x"], ["logits", "features"])
    assert io_names("grad", p) == (p + ["x", "y", "w"], ["loss", "g:a.weight", "g:a.bias"])
    assert io_names("grad_vjp", p) == (p + ["x", "y", "w", "a:a.weight", "a:a.bias"],
                                       ["hv:a.weight", "hv:a.bias", "x_grad"])
    assert io_names("features_vjp", p) == (p + ["x", "c"], ["x_grad"])
    assert io_names("loss_jvp", p) == (p + ["v:a.weight", "v:a.bias", "x", "y"], ["dloss"])
    assert ROLE_NAMES == ("forward", "grad", "grad_vjp", "features_vjp", "loss_jvp")


class Explicit(nn.Module):
    """Uses the explicit rule: features(x) + classifier."""

    def __init__(self):
        super().__init__()
        self.body = nn.Linear(12, 5)
        self.classifier = nn.Linear(5, 2)

    def features(self, x):
        return torch.tanh(self.body(x.flatten(1)))

    def forward(self, x):
        return self.classifier(self.features(x))


class TwiceLast(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(12, 12)

    def forward(self, x):
        return self.fc(self.fc(x.flatten(1)))


def test_features_rules():
    torch.manual_seed(0)
    m = Explicit()
    fm = FunctionalModel(m)
    x = torch.randn(3, 1, 3, 4)
    logits, feats = fm(dict(m.named_parameters()), x)
    torch.testing.assert_close(feats, m.features(x))
    torch.testing.assert_close(logits, m(x))
    bad = FunctionalModel(TwiceLast())
    with pytest.raises(ValueError, match="ran 2 times"):
        bad(dict(bad.model.named_parameters()), x)
    with pytest.raises(ValueError, match="no nn.Linear"):
        FunctionalModel(nn.Sequential(nn.Flatten(), nn.Tanh()))
