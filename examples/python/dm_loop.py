"""A user's own Distribution Matching (DM) loop in a few lines of PyTorch, on Fashion-MNIST; the
distilled set goes straight to ddlens for the standard evaluation and two of the paper's analyses.

    .venv/bin/python examples/python/dm_loop.py --threads 2                 # ~3 minutes on 2 cores
    .venv/bin/python examples/python/dm_loop.py --iterations 1000 --ipc 10  # closer to the paper
    .venv/bin/python examples/python/dm_loop.py --smoke                     # seconds (the test)

Needs torch and numpy, the ddlens package (``pip install -e bindings/python``, or
``PYTHONPATH=bindings/python/src``), ``cargo build --release`` and ``scripts/setup`` (ONNX Runtime,
Fashion-MNIST).
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn as nn

import ddlens


def embedder(width: int = 128) -> nn.Module:
    """A randomly initialised ConvNet-3 without its classifier (DM's embedding network)."""
    layers, ch = [], 1
    for i in range(3):
        layers += [nn.Conv2d(ch, width, 3, padding=3 if i == 0 else 1), nn.GroupNorm(width, width),
                   nn.ReLU(), nn.AvgPool2d(2)]
        ch = width
    return nn.Sequential(*layers, nn.Flatten())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ipc", type=int, default=10, help="images per class (10)")
    ap.add_argument("--iterations", type=int, default=100, help="DM iterations (100)")
    ap.add_argument("--batch-real", type=int, default=32, help="real images per class per iteration (32)")
    ap.add_argument("--runs", type=int, default=3, help="models of the standard evaluation (3)")
    ap.add_argument("--epochs", type=int, default=300, help="epochs of the standard evaluation (300)")
    ap.add_argument("--threads", type=int, default=0, help="threads for PyTorch and ddlens (0 = all cores)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="write the set here (.safetensors) and the analyses' figures beside it")
    ap.add_argument("--smoke", action="store_true", help="the smallest budget: seconds, for the tests")
    args = ap.parse_args()
    if args.smoke:
        args.ipc, args.iterations, args.batch_real, args.runs, args.epochs = 1, 3, 8, 1, 2
    if args.threads:
        torch.set_num_threads(args.threads)

    ddlens.init_runtime(provider="cpu", threads=args.threads)
    train, test = ddlens.load_dataset("fashion-mnist")           # normalised, as the bundles expect
    if args.smoke:
        test = test.class_balanced(50, seed=0)
    x_real = torch.from_numpy(train.images())                     # ddlens fills NumPy, torch shares it
    y_real = torch.from_numpy(train.labels())

    # ---- the user's DM loop (Zhao & Bilen 2023), nothing ddlens-specific -----------------------
    torch.manual_seed(args.seed)
    by_class = [x_real[y_real == c] for c in range(10)]
    syn = torch.cat([xc[torch.randperm(len(xc))[: args.ipc]] for xc in by_class]).requires_grad_(True)
    labels = torch.arange(10).repeat_interleave(args.ipc)
    opt = torch.optim.SGD([syn], lr=1.0, momentum=0.5)
    start = time.time()
    for it in range(args.iterations):
        net = embedder().requires_grad_(False)
        loss = sum(
            ((net(xc[torch.randint(len(xc), (args.batch_real,))]).mean(0)
              - net(syn[c * args.ipc:(c + 1) * args.ipc]).mean(0)) ** 2).sum()
            for c, xc in enumerate(by_class)
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
        if it % max(1, args.iterations // 10) == 0 or it == args.iterations - 1:
            print(f"DM iteration {it + 1}/{args.iterations}: loss {loss.item():.2f}", flush=True)
    dm_seconds = time.time() - start
    # ---------------------------------------------------------------------------------------------

    # Straight to ddlens: the tensor is read in place (DLPack), no file in between.
    mine = ddlens.DistilledSet.from_arrays(
        syn.detach(), labels, meta={"method": "dm-pytorch", "ipc": args.ipc, "dataset": "fashion-mnist",
                                    "seed": args.seed})
    if args.out:
        mine.write(args.out)
    random_real = ddlens.DistilledSet.create(train.class_balanced(args.ipc, seed=args.seed))
    bundle = ddlens.Bundle("convnet3-1x28x28")

    def bar(stage: str, done: int, total: int) -> None:
        if done == total or done % max(1, total // 4) == 0:
            print(f"  {stage}: {done}/{total}", flush=True)

    results = {"dm_seconds": round(dm_seconds, 1), "ipc": args.ipc, "iterations": args.iterations}
    start = time.time()
    for name, s in (("my-dm", mine), ("random-real", random_real)):
        ev = ddlens.standard_evaluation(bundle, s, test, runs=args.runs, epochs=args.epochs, seed=args.seed,
                                        progress=bar)
        results[name] = {"mean": ev["mean"], "std": ev["std"], "accuracies": ev["accuracies"]}
        print(f"standard evaluation of {name}: {100 * ev['mean']:.2f} +- {100 * ev['std']:.2f} % "
              f"({args.runs} runs, {args.epochs} epochs)", flush=True)
    results["eval_seconds"] = round(time.time() - start, 1)

    # Two of the paper's analyses: pixel statistics, and when real-trained models recognise the set.
    budget = "smoke" if args.smoke else "cpu"
    out_dir = None if not args.out else args.out.rsplit(".", 1)[0] + "-analyses"
    pixels = ddlens.analyze("pixels", bundle, train, test, [mine], names=["my-dm"], budget=budget,
                            options={"real_images": 2000}, out_dir=out_dir)
    mine_px = pixels["sets"][1]["channels"][0]
    real_px = pixels["sets"][0]["channels"][0]
    print(f"pixels: my-dm mean {mine_px['mean']:.3f} std {mine_px['std']:.3f}, outside the real range "
          f"{100 * mine_px['outside_real_range']:.1f}% (real: mean {real_px['mean']:.3f} std {real_px['std']:.3f})")
    rot_options = {"steps": 1, "every": 1, "test_images": 100} if args.smoke else {"steps": 30, "every": 5}
    rot = ddlens.analyze("recognition-over-training", bundle, train, test, [mine], names=["my-dm"],
                         budget=budget, options=rot_options, out_dir=out_dir, progress=bar)
    acc = rot["sets"][0]["accuracy"]
    print(f"recognition over P_real training: my-dm accuracy {[round(a, 2) for a in acc]} at steps "
          f"{rot['steps']} (test: {[round(a, 2) for a in rot['test']['accuracy']]})")
    print(f"verdicts: pixels {pixels['verdict']['state']}, recognition-over-training {rot['verdict']['state']}")
    results["verdicts"] = {"pixels": pixels["verdict"]["state"], "recognition-over-training": rot["verdict"]["state"]}
    print(json.dumps(results))


if __name__ == "__main__":
    main()
