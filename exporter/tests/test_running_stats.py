"""BatchNorm with running statistics carried as explicit state (``--batchnorm running-stats``):
the manifest's ``state``, every role against torch.func, ``grad``'s updated state against
PyTorch's own ``nn.BatchNorm2d`` in training mode, ``forward`` against the module in
evaluation mode, and finite differences of the ONNX graphs with the state held fixed."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from ddlens_exporter.builtin import BUILTINS
from ddlens_exporter.check import check_bundle, draw_params, draw_state, run_ort, session
from ddlens_exporter.export import BundleSpec, export_bundle
from ddlens_exporter.manifest import apply_batchnorm, parse_normalization
from ddlens_exporter.models import TinyBatchNormConv
from ddlens_exporter.roles import FunctionalModel
from ddlens_exporter.running_stats import RunningStatsBatchNorm
from onnx_io import check_files

NAME = "tiny-bn-1x8x8"


@pytest.fixture(scope="module")
def bundle(export_root):
    b = BUILTINS[NAME]
    model = b.build()
    manifest = export_bundle(model, b.spec(), export_root / NAME, log=lambda *_: None)
    return export_root / NAME, manifest, model


def _inputs(manifest, seed=0, batch=6):
    gen = torch.Generator().manual_seed(seed)
    params = draw_params(manifest, gen)
    state = draw_state(manifest, gen)
    x = torch.randn(batch, 1, 8, 8, generator=gen) * 1.5 + 0.7  # away from zero mean / unit var
    y = torch.randint(0, 3, (batch,), generator=gen)
    return params, state, x, y


def _pytorch_module(manifest, params, state):
    """The original, unconverted module with the same parameters and running statistics."""
    model = TinyBatchNormConv(1, 3, 4)
    named = dict(zip([p["name"] for p in manifest["params"]], params))
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(named[n])
        buffers = dict(model.named_buffers())
        for s, t in zip(manifest["state"], state):
            buffers[s["name"]].copy_(t)
    return model


def test_manifest_lists_the_state(bundle):
    path, manifest, model = bundle
    assert manifest["norm_state"] == "running-stats" and manifest["batch_statistics"] is True
    assert manifest["state"] == [
        {"name": "norm0.running_mean", "shape": [4], "init": {"kind": "constant", "value": 0.0}},
        {"name": "norm0.running_var", "shape": [4], "init": {"kind": "constant", "value": 1.0}},
    ]
    assert isinstance(model.norm0, RunningStatsBatchNorm) and not list(model.buffers())
    assert manifest["graphs"]["forward"]["inputs"] == [
        "conv0.weight", "conv0.bias", "norm0.weight", "norm0.bias", "classifier.weight", "classifier.bias",
        "norm0.running_mean", "norm0.running_var", "x"]
    assert manifest["graphs"]["grad"]["outputs"][-2:] == ["new:norm0.running_mean", "new:norm0.running_var"]
    assert "norm0.running_mean" not in manifest["graphs"]["grad_vjp"]["inputs"]
    check_files(path, manifest)
    assert json.loads((path / "export.json").read_text()) == {"builtin": NAME}


def test_every_role_matches_torch_func(bundle):
    path, _, model = bundle
    mismatches = check_bundle(path, model, batches=(3, 7), draws=1)
    assert not mismatches, "\n".join(map(str, mismatches))


def test_grad_updates_the_state_as_batchnorm2d_in_training_mode(bundle):
    path, manifest, _ = bundle
    params, state, x, y = _inputs(manifest)
    w = torch.ones(x.shape[0])
    out = run_ort(path, manifest, "grad", [*params, *state, x, y, w])
    reference = _pytorch_module(manifest, params, state).train()
    logits = reference(x)
    loss = nn.functional.cross_entropy(logits, y)
    np.testing.assert_allclose(out[0], loss.item(), rtol=1e-5)
    np.testing.assert_allclose(out[-2], reference.norm0.running_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[-1], reference.norm0.running_var.numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(out[-2], state[0].numpy())  # the state really moved


def test_forward_is_evaluation_mode_on_the_state(bundle):
    path, manifest, _ = bundle
    params, state, x, _ = _inputs(manifest, seed=1)
    logits, _ = run_ort(path, manifest, "forward", [*params, *state, x])
    reference = _pytorch_module(manifest, params, state).eval()
    np.testing.assert_allclose(logits, reference(x).detach().numpy(), rtol=1e-5, atol=1e-5)
    # ... and not the batch statistics: training mode gives other logits on this skewed batch.
    assert not np.allclose(logits, reference.train()(x).detach().numpy(), atol=1e-3)


def _fd(f, p, v, eps):
    return (f([a + eps * d for a, d in zip(p, v)]) - f([a - eps * d for a, d in zip(p, v)])) / (2 * eps)


def test_graphs_agree_with_finite_differences_with_the_state_fixed(bundle):
    """Central differences (float32 graphs, so a loose tolerance) of the ONNX outputs along a
    random parameter direction, the state held fixed: grad's loss and forward's logits."""
    path, manifest, _ = bundle
    params, state, x, y = _inputs(manifest, seed=2)
    # BatchNorm biases of +-8 keep every ReLU clearly on or off near the point (as the Rust
    # finite-difference tests do), so the network is smooth there and differences are valid.
    names = [p["name"] for p in manifest["params"]]
    params[names.index("norm0.bias")] = torch.tensor([8.0, -8.0, 8.0, -8.0])
    gen = torch.Generator().manual_seed(3)
    v = [torch.randn(p.shape, generator=gen) for p in params]
    norm = sum(float((d * d).sum()) for d in v) ** 0.5
    v = [d / norm for d in v]  # unit steps: a ReLU network is smooth only near the point
    w = torch.ones(x.shape[0])
    k = len(params)
    grad_sess, fwd_sess = (session(path / manifest["graphs"][r]["file"]) for r in ("grad", "forward"))

    def loss(p):
        return float(run_ort(path, manifest, "grad", [*p, *state, x, y, w], grad_sess)[0])

    out = run_ort(path, manifest, "grad", [*params, *state, x, y, w], grad_sess)
    analytic = sum(float((torch.from_numpy(g) * d).sum()) for g, d in zip(out[1:1 + k], v))
    assert _fd(loss, params, v, 1e-2) == pytest.approx(analytic, rel=2e-2, abs=1e-4)
    # grad_vjp: H v against the difference of two gradients (the state plays no part).
    a = v
    hv = run_ort(path, manifest, "grad_vjp", [*params, x, y, w, *a])[:k]

    def grads(p):
        return [torch.from_numpy(g) for g in run_ort(path, manifest, "grad", [*p, *state, x, y, w], grad_sess)[1:1 + k]]

    eps = 1e-2
    plus, minus = grads([p + eps * d for p, d in zip(params, a)]), grads([p - eps * d for p, d in zip(params, a)])
    fd_hv = [(u - m) / (2 * eps) for u, m in zip(plus, minus)]
    scale = max(float(h.abs().max()) for h in fd_hv)
    for h, f in zip(hv, fd_hv):
        np.testing.assert_allclose(h, f.numpy(), atol=3e-2 * scale)
    # forward in evaluation mode is differentiable in the parameters too: its logits move
    # linearly along v for small steps (first-order consistency of the eval graph).
    def logits(p):
        return run_ort(path, manifest, "forward", [*p, *state, x], fwd_sess)[0].astype(np.float64)

    d1, d2 = _fd(logits, params, v, 1e-2), _fd(logits, params, v, 5e-3)
    np.testing.assert_allclose(d1, d2, rtol=5e-2, atol=1e-3)


def test_momentum_none_is_refused():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2, momentum=None), nn.Flatten(), nn.Linear(72, 2))
    with pytest.raises(ValueError, match=r"`1` \(BatchNorm2d\) has momentum=None"):
        apply_batchnorm(model, "running-stats")


def test_a_user_module_exports_with_running_stats(export_root):
    """A Sequential with two BatchNorm layers: state in registration order, roles check."""
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3, momentum=0.3), nn.ReLU(),
                          nn.AvgPool2d(2), nn.Flatten(), nn.Linear(48, 5), nn.BatchNorm1d(5), nn.Tanh(),
                          nn.Linear(5, 3))
    spec = BundleSpec(name="bn2", input_shape=(1, 8, 8), num_classes=3, normalization=parse_normalization("none", 1),
                      batchnorm="running-stats")
    manifest = export_bundle(model, spec, export_root / "bn2", log=lambda *_: None)
    assert [s["name"] for s in manifest["state"]] == [
        "1.running_mean", "1.running_var", "6.running_mean", "6.running_var"]
    assert FunctionalModel(model).momenta == [0.3, 0.3, 0.1, 0.1]
    mismatches = check_bundle(export_root / "bn2", model, batches=(3, 5), draws=1)
    assert not mismatches, "\n".join(map(str, mismatches))
