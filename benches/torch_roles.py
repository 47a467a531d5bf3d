#!/usr/bin/env python3
"""Times each bundle role in PyTorch eager (or, with --ort, in ONNX Runtime's Python API).

Two PyTorch styles, on the same math as the graphs:

* ``--style func`` (default): the torch.func definitions the graphs were exported from
  (``ddlens_exporter.roles``);
* ``--style module``: what a training loop writes, an ``nn.Module`` with its parameters set
  and plain autograd: ``model(x)`` for ``forward``, ``loss.backward()`` for ``grad``,
  ``autograd.grad(create_graph=True)`` then ``backward()`` for ``grad_vjp``, a forward hook
  and ``backward(c)`` for ``features_vjp``, and the double-backward trick for ``loss_jvp``
  (``d/du <J^T u, v>``).

Prints one JSON object ``{"role": median_ms, ...}`` on stdout.

    python benches/torch_roles.py --threads 4                 # PyTorch, ConvNet-3 1x28x28, batch 256
    python benches/torch_roles.py --threads 4 --style module  # nn.Module + backward()
    python benches/torch_roles.py --threads 4 --ort           # the same bundle in ONNX Runtime
    python benches/torch_roles.py --bundle models/tiny-1x8x8 --roles forward,grad --batch 32
    python benches/torch_roles.py --device cuda               # PyTorch on the GPU (scripts/gpu-check)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "exporter"))  # works without `pip install -e exporter` too

import torch

from ddlens_exporter.check import draw_params, session
from ddlens_exporter.loading import model_from_source
from ddlens_exporter.roles import FunctionalModel, Roles
from ddlens_exporter.tracing import example_inputs


def time_calls(fn, warmup: int, repeats: int, device: str = "cpu") -> float:
    """Median wall time of ``fn()`` in milliseconds, after ``warmup`` untimed calls (on CUDA,
    until the GPU has finished)."""
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        samples.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(samples)


class ModuleRoles:
    """The roles as eager ``nn.Module`` code with plain autograd (``--style module``)."""

    def __init__(self, model, manifest):
        self.model = model.eval()
        self.params = list(model.parameters())
        self.k = len(self.params)
        linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
        self.last = linears[-1]

    def _set(self, values):
        with torch.no_grad():
            for p, v in zip(self.params, values):
                p.copy_(v)

    def _loss(self, x, y, w):
        ce = torch.nn.functional.cross_entropy(self.model(x), y, reduction="none")
        return (w * ce).sum() / x.shape[0]

    def forward(self, *args):
        self._set(args[:self.k])
        with torch.no_grad():
            return self.model(args[self.k])

    def grad(self, *args):
        self._set(args[:self.k])
        x, y, w = args[self.k:self.k + 3]
        self.model.zero_grad(set_to_none=True)
        loss = self._loss(x, y, w)
        loss.backward()
        return loss

    def grad_vjp(self, *args):
        self._set(args[:self.k])
        x, y, w = args[self.k:self.k + 3]
        a = args[self.k + 3:]
        x = x.detach().requires_grad_(True)
        self.model.zero_grad(set_to_none=True)
        g = torch.autograd.grad(self._loss(x, y, w), self.params, create_graph=True)
        sum((gi * ai).sum() for gi, ai in zip(g, a)).backward()
        return x.grad

    def features_vjp(self, *args):
        self._set(args[:self.k])
        x, c = args[self.k:self.k + 2]
        x = x.detach().requires_grad_(True)
        captured = []
        handle = self.last.register_forward_pre_hook(lambda _m, inp: captured.append(inp[0]))
        try:
            self.model(x)
        finally:
            handle.remove()
        captured[0].backward(c)
        return x.grad

    def loss_jvp(self, *args):
        self._set(args[:self.k])
        v = args[self.k:2 * self.k]
        x, y = args[2 * self.k:2 * self.k + 2]
        ce = torch.nn.functional.cross_entropy(self.model(x), y, reduction="none")
        u = torch.zeros_like(ce, requires_grad=True)
        jt_u = torch.autograd.grad(ce, self.params, grad_outputs=u, create_graph=True)
        (dloss,) = torch.autograd.grad(sum((j * vi).sum() for j, vi in zip(jt_u, v)), u)
        return dloss

    def get(self, role):
        return getattr(self, role)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", default=str(REPO / "models" / "convnet3-1x28x28"), help="bundle folder")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads / ORT intra-op threads")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--roles", help="comma-separated roles (default: all roles of the bundle)")
    p.add_argument("--ort", action="store_true", help="time the bundle's ONNX graphs in ONNX Runtime instead")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="PyTorch device (not with --ort)")
    p.add_argument("--style", choices=["func", "module"], default="func",
                   help="torch.func definitions (func) or nn.Module + autograd (module)")
    args = p.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: this PyTorch sees no CUDA device")

    bundle = Path(args.bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    roles = args.roles.split(",") if args.roles else list(manifest["graphs"])
    missing = [r for r in roles if r not in manifest["graphs"]]
    if missing:
        p.error(f"{bundle} has no role(s) {missing}")
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    params = draw_params(manifest, gen)
    if not args.ort:
        model = model_from_source(json.loads((bundle / "export.json").read_text()), str(bundle / "export.json"))
        model = model.to(args.device)
        torch_roles = ModuleRoles(model, manifest) if args.style == "module" else Roles(FunctionalModel(model))

    result = {}
    for role in roles:
        inputs = example_inputs(role, params, manifest["input_shape"], manifest["num_classes"],
                                manifest["feature_dim"], args.batch, gen)
        if args.ort:
            spec = manifest["graphs"][role]
            sess = session(bundle / spec["file"], threads=args.threads)
            feeds = {n: t.numpy() for n, t in zip(spec["inputs"], inputs)}
            result[role] = time_calls(partial(sess.run, spec["outputs"], feeds), args.warmup, args.repeats)
        else:
            inputs = [t.to(args.device) for t in inputs]
            fn = partial(torch_roles.get(role), *inputs)
            result[role] = time_calls(fn, args.warmup, args.repeats, args.device)
    print(json.dumps({k: round(v, 3) for k, v in result.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
