#!/usr/bin/env python3
"""One MTT-style distillation iteration in PyTorch eager, as the MTT reference code does it
(Cazenavette et al. 2022, `distill.py`): N plain SGD steps of the student on the synthetic
images with ``torch.autograd.grad(..., create_graph=True)``, the trajectory-matching loss
``|θ_N − θ*|² / |θ_0 − θ*|²`` and one ``backward()`` to the images and the learning rate.

It is the PyTorch side of ``cargo bench --bench unroll``, with the same work: the builtin
module the bundle was exported from, random normal images (IPC × classes of them), labels
``i % classes``, lr 0.01, every step on ``--batch`` images (all of them by default, in
order), no augmentation. Prints one JSON object on its last line:
``{"<steps>": {"s": seconds per iteration, "peak_mib": peak RSS of this process}}``.

    python benches/torch_unroll.py --steps 20 --ipc 10 --threads 2
    python benches/torch_unroll.py --steps 20 --device cuda
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "exporter"))  # works without `pip install -e exporter` too

import torch
import torch.nn.functional as F
from torch.func import functional_call

from ddlens_exporter.loading import model_from_source


def iteration(model, names, theta0, target, x, y, lr, steps, batch):
    """One distillation iteration; returns the gradients (images, lr) so nothing is skipped."""
    params = [p.clone().requires_grad_(True) for p in theta0]
    start = params
    n = x.shape[0]
    for k in range(steps):
        lo = (k * batch) % n
        idx = torch.arange(lo, lo + batch, device=x.device) % n
        logits = functional_call(model, dict(zip(names, params)), (x[idx],))
        loss = F.cross_entropy(logits, y[idx])
        grads = torch.autograd.grad(loss, params, create_graph=True)
        params = [p - lr * g for p, g in zip(params, grads)]
    num = sum(((p - t) ** 2).sum() for p, t in zip(params, target))
    den = sum(((p - t) ** 2).sum() for p, t in zip(start, target)).detach()
    (num / den).backward()
    return x.grad, lr.grad


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", default=str(REPO / "models" / "convnet3-1x28x28"), help="bundle folder")
    p.add_argument("--steps", default="20", help="N, comma-separated for several")
    p.add_argument("--ipc", type=int, default=10)
    p.add_argument("--batch", type=int, help="images per step (default: all)")
    p.add_argument("--iters", type=int, default=1, help="timed iterations (median), after one warm-up")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = p.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: this PyTorch sees no CUDA device")
    torch.set_num_threads(args.threads)
    bundle = Path(args.bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    model = model_from_source(json.loads((bundle / "export.json").read_text()), str(bundle / "export.json"))
    model = model.to(args.device).eval()
    names = [n for n, _ in model.named_parameters()]
    gen = torch.Generator().manual_seed(0)
    k = manifest["num_classes"]
    n = args.ipc * k
    batch = min(args.batch or n, n)
    theta0 = [torch.randn(q.shape, generator=gen).mul_(0.05).to(args.device) for q in model.parameters()]
    target = [torch.randn(q.shape, generator=gen).mul_(0.05).to(args.device) for q in model.parameters()]
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)
    result = {}
    for steps in [int(s) for s in args.steps.split(",")]:
        times = []
        for i in range(args.iters + 1):
            x = torch.randn(n, *manifest["input_shape"], generator=gen).to(args.device).requires_grad_(True)
            y = (torch.arange(n) % k).to(args.device)
            lr = torch.tensor(0.01, device=args.device, requires_grad=True)
            sync()
            t0 = time.perf_counter()
            iteration(model, names, theta0, target, x, y, lr, steps, batch)
            sync()
            if i > 0:
                times.append(time.perf_counter() - t0)
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        result[str(steps)] = {"s": round(statistics.median(times), 3), "peak_mib": round(peak_kib / 1024, 1)}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
