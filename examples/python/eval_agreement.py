"""Does ddlens's standard evaluation of a distilled set agree with a plain PyTorch training loop?

Both train freshly initialised models of the same architecture on the set with the same
protocol -- SGD lr 0.01 (or the set's learned lr), momentum 0.9, weight decay 5e-4, batch 256,
lr x0.1 at half of the epochs, no augmentation -- and report the final test accuracy of each
run. They agree within noise when the 95% Welch t interval of the difference of the means
contains 0.

    .venv/bin/python examples/python/eval_agreement.py --threads 2                   # zoo:dm-ipc1, 5+5 runs
    .venv/bin/python examples/python/eval_agreement.py --set my.safetensors --runs 10
    .venv/bin/python examples/python/eval_agreement.py --smoke                       # seconds (the test)
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import ddlens


class ConvNet3(nn.Module):
    """ConvNet-3 exactly as the bundle convnet3-1x28x28 (exporter/ddlens_exporter/models.py)."""

    def __init__(self, width: int = 128, num_classes: int = 10) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(1, width, 3, padding=3)
        self.norm0 = nn.GroupNorm(width, width)
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.norm1 = nn.GroupNorm(width, width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.norm2 = nn.GroupNorm(width, width)
        self.classifier = nn.Linear(width * 4 * 4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv, norm in ((self.conv0, self.norm0), (self.conv1, self.norm1), (self.conv2, self.norm2)):
            x = F.avg_pool2d(F.relu(norm(conv(x))), 2)
        return self.classifier(x.flatten(1))


class MLP(nn.Module):
    """The bundle mlp-1x28x28: 784 -> 128 -> 128 -> 10."""

    def __init__(self) -> None:
        super().__init__()
        self.fc0, self.fc1, self.classifier = nn.Linear(784, 128), nn.Linear(128, 128), nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(F.relu(self.fc1(F.relu(self.fc0(x.flatten(1))))))


MODELS = {"convnet3": ("convnet3-1x28x28", ConvNet3), "mlp": ("mlp-1x28x28", MLP)}


def pytorch_run(net: nn.Module, x, y, x_test, y_test, epochs: int, lr: float, seed: int) -> float:
    """The standard protocol as a plain PyTorch loop; the final test accuracy."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[epochs // 2], gamma=0.1)
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=g).split(256):
            opt.zero_grad()
            F.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()
        sched.step()
    with torch.no_grad():
        correct = sum((net(xb).argmax(1) == yb).sum().item() for xb, yb in zip(x_test.split(1000), y_test.split(1000)))
    return correct / len(x_test)


def t_quantile(p: float, df: float) -> float:
    """Student's t quantile by bisection on the CDF (Simpson's rule on the density)."""
    c = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)

    def cdf(t: float, n: int = 2000) -> float:
        h = t / n
        s = sum((1 if i in (0, n) else 4 if i % 2 else 2) * (1 + (i * h) ** 2 / df) ** (-(df + 1) / 2)
                for i in range(n + 1))
        return 0.5 + c * s * h / 3

    lo, hi = 0.0, 100.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) < p else (lo, mid)
    return (lo + hi) / 2


def welch(a: list, b: list) -> dict:
    """95% Welch t interval of mean(a) - mean(b)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    diff = float(a.mean() - b.mean())
    se = math.sqrt(va + vb)
    if se == 0:
        return {"difference": diff, "lo": diff, "hi": diff, "df": float("inf")}
    df = float((va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1)))
    q = t_quantile(0.975, df)
    return {"difference": diff, "lo": diff - q * se, "hi": diff + q * se, "df": df}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", default="zoo:dm-ipc1", help="a distilled set: file or zoo:NAME (zoo:dm-ipc1)")
    ap.add_argument("--model", choices=sorted(MODELS), default="convnet3")
    ap.add_argument("--runs", type=int, default=5, help="runs of each (5)")
    ap.add_argument("--epochs", type=int, default=300, help="epochs (300)")
    ap.add_argument("--test-images", type=int, default=0, help="class-balanced test sample (0 = all 10,000)")
    ap.add_argument("--threads", type=int, default=0, help="threads for PyTorch and ddlens (0 = all cores)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--smoke", action="store_true", help="the smallest budget: seconds, for the tests")
    args = ap.parse_args()
    if args.smoke:
        args.model, args.runs, args.epochs, args.test_images = "mlp", 2, 4, 200
    if args.threads:
        torch.set_num_threads(args.threads)

    ddlens.init_runtime(provider="cpu", threads=args.threads)
    test = ddlens.load_dataset("fashion-mnist", split="test")
    if args.test_images:
        test = test.class_balanced(args.test_images // 10, seed=args.seed)
    s = ddlens.DistilledSet.read(args.set)
    lr = s.lr if s.lr is not None else 0.01
    bundle_name, net_class = MODELS[args.model]
    bundle = ddlens.Bundle(bundle_name)

    start = time.time()
    ours = ddlens.standard_evaluation(bundle, s, test, runs=args.runs, epochs=args.epochs, lr=lr, seed=args.seed)
    ddlens_seconds = time.time() - start

    with s.data() as d:
        x, y = torch.from_numpy(d.images()), torch.from_numpy(d.labels())
    x_test, y_test = torch.from_numpy(test.images()), torch.from_numpy(test.labels())
    start = time.time()
    theirs = []
    for r in range(args.runs):
        torch.manual_seed(args.seed + r)
        theirs.append(pytorch_run(net_class(), x, y, x_test, y_test, args.epochs, lr, args.seed + r))
    torch_seconds = time.time() - start

    w = welch(ours["accuracies"], theirs)
    agree = bool(w["lo"] <= 0 <= w["hi"])

    def summary(acc: list) -> str:
        return f"{100 * np.mean(acc):.2f} +- {100 * np.std(acc, ddof=1):.2f} %"

    print(f"set {args.set} ({len(s)} images, lr {lr:g}), {bundle_name}, {args.runs} runs x {args.epochs} epochs, "
          f"{len(test)} test images")
    print(f"  ddlens standard evaluation: {summary(ours['accuracies'])}  ({ddlens_seconds:.1f} s)")
    print(f"  plain PyTorch loop:         {summary(theirs)}  ({torch_seconds:.1f} s)")
    print(f"  difference ddlens - PyTorch: {100 * w['difference']:+.2f} points, 95% Welch interval "
          f"[{100 * w['lo']:+.2f}, {100 * w['hi']:+.2f}] (df {w['df']:.1f}): "
          + ("agree within noise" if agree else "DISAGREE"))
    print(json.dumps({"set": args.set, "model": bundle_name, "runs": args.runs, "epochs": args.epochs,
                      "test_images": len(test), "ddlens": ours["accuracies"], "pytorch": theirs,
                      "ddlens_seconds": round(ddlens_seconds, 1), "pytorch_seconds": round(torch_seconds, 1),
                      "welch": w, "agree": agree}))


if __name__ == "__main__":
    main()
