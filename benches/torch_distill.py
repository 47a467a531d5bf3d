#!/usr/bin/env python3
"""One distillation iteration of DM, DC and DSA, and one epoch of the standard evaluation, in
PyTorch eager: the reference implementation that `cargo bench --bench distill` times ddlens
against. Prints one JSON object on the last stdout line, seconds by ``METHOD-IPC``:
``{"dm-1": median_s, "dc-10": median_s, ..., "eval-10": s_per_epoch, "eval-dsa-10": ...}``.

    .venv/bin/python benches/torch_distill.py --methods dm,dc,dsa --ipc 1,10 --iters 3 --threads 2
        [--device cpu|cuda] [--eval-epochs 20] [--batch-real 256] [--model convnet3-1x28x28]
        [--data-dir /usr/share/datasets/fashion-mnist]

The code follows the reference DC/DSA/DM code of Zhao & Bilen (``main.py``, ``main_DM.py``,
``utils.py``): ``get_images`` (a random subset of one class, without replacement),
``match_loss`` with ``dis_metric = 'ours'`` (``distance_wb``: per tensor of rank >= 2, rows =
output channels, sum of 1 - cos with 1e-6 in the denominator; rank-1 tensors count 0),
``DiffAugment`` with ``ParamDiffAug`` (one family per call, ``aug_mode = 'S'``; Siamese mode by
re-seeding with a shared seed; per-image draws without a seed), a fresh network per iteration,
the class terms summed into one loss and one ``loss.backward()`` / ``optimizer_img.step()``,
DC's synthetic gradient by ``torch.autograd.grad(..., create_graph=True)``. The settings are
ddlens's (src/distill/dm.rs, dc.rs, src/train/), which are the reference ones except where
noted:

* model: ConvNet-3 as the exporter builds it (``ddlens_exporter.builtin``: width 128,
  GroupNorm(128, 128), ReLU, AvgPool 2, first conv padding 3 on 1x28x28); the embedding of DM
  is the flattened input of the classifier (ddlens's ``features``); loss mean cross-entropy.
* data: the Fashion-MNIST training set (gz IDX files), normalised with mean 0.2861, std 0.3530;
  the synthetic set starts from ``ipc`` random real images per class, class-major.
* DM: batch_real 256 per class, images SGD lr 1, momentum 0.5, DSA
  ``color_crop_cutout_flip_scale_rotate`` shared by the real and synthetic batch of a class.
* DC / DSA: ``get_loops`` (IPC 1: outer 1 x inner 1; IPC 10: outer 10 x inner 50; nearest
  listed IPC otherwise), images SGD lr 0.1 momentum 0.5, network SGD lr 0.01 momentum 0.5
  (ddlens's ``DcConfig``; the DC repository's ``optimizer_net`` has no momentum, which costs
  the same), batch_real 256, batch_train 256, no network update after the last image step; DSA
  augments the matching batches Siamese-style and the inner-loop minibatches per image.
* evaluation (``eval-IPC``, ``eval-dsa-IPC``): time per epoch of training a fresh ConvNet-3 on
  ``IPC`` real images per class (the size of an IPC-``IPC`` distilled set; only time is
  measured) with ddlens's standard evaluation (``TrainConfig::standard_eval``, what ``ddlens
  eval`` runs): SGD lr 0.01, momentum 0.9, weight decay 5e-4, batch 256 shuffled, lr x0.1 at
  epoch E/2; ``eval`` without augmentation (the default of ``ddlens eval``), ``eval-dsa`` with
  a per-image DSA draw on every minibatch (``ddlens eval --dsa``). One warm-up epoch, then
  ``--eval-epochs`` epochs in one run, divided by their number; the final test-set accuracy of
  the protocol is not timed. ``--eval-epochs 0`` skips these rows.

Deviations from the reference code, all of them same work with less Python overhead: the
affine matrices of ``rand_scale``/``rand_rotate`` are built with tensor operations instead of a
Python list over the batch, and minibatches are ``randperm`` slices instead of a
``DataLoader(TensorDataset)`` (same shuffled batches). Timing: per (method, IPC), ``--warmup``
(1) untimed iterations then ``--iters`` timed ones, the median; on CUDA each is closed by
``torch.cuda.synchronize()``. A DC or DSA iteration at IPC 10 takes minutes on a CPU, so
``--iters 1 --warmup 0`` is the practical setting there.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "exporter"))  # works without `pip install -e exporter` too

from ddlens_exporter.builtin import get_builtin  # noqa: E402

MEAN, STD = 0.2861, 0.3530
STRATEGY = "color_crop_cutout_flip_scale_rotate"
# The reference get_loops: ipc -> (outer_loop, inner_loop); other IPCs take the nearest.
LOOPS = {1: (1, 1), 10: (10, 50), 20: (20, 25), 30: (30, 20), 40: (40, 15), 50: (50, 10)}


# ---------------------------------------------------------------- data


def fashion_mnist(folder: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """The 60,000 training images, normalised, and their labels."""
    def read(name: str) -> bytes:
        plain = folder / name
        return plain.read_bytes() if plain.exists() else gzip.open(str(plain) + ".gz").read()
    images = np.frombuffer(read("train-images-idx3-ubyte"), dtype=np.uint8, offset=16)
    labels = np.frombuffer(read("train-labels-idx1-ubyte"), dtype=np.uint8, offset=8)
    x = images.reshape(-1, 1, 28, 28).astype(np.float32) / 255.0
    x = (x - MEAN) / STD
    return torch.from_numpy(x), torch.from_numpy(labels.astype(np.int64))


class Real:
    """The real training set on the device with its per-class indices (reference main.py)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, device: str):
        self.images_all = images.to(device)
        self.labels_all = labels.to(device)
        self.num_classes = int(labels.max()) + 1
        self.indices_class = [np.flatnonzero(labels.numpy() == c) for c in range(self.num_classes)]

    def get_images(self, c: int, n: int) -> torch.Tensor:
        """n random images of class c, without replacement."""
        idx_shuffle = np.random.permutation(self.indices_class[c])[:n]
        return self.images_all[torch.from_numpy(idx_shuffle).to(self.images_all.device)]


# ---------------------------------------------------------------- DiffAugment (reference utils.py)


class ParamDiffAug:
    def __init__(self):
        self.aug_mode = "S"  # one family per call
        self.prob_flip = 0.5
        self.ratio_scale = 1.2
        self.ratio_rotate = 15.0
        self.ratio_crop_pad = 0.125
        self.ratio_cutout = 0.5  # the size would be 0.5x0.5
        self.brightness = 1.0
        self.saturation = 2.0
        self.contrast = 0.5
        self.batchmode = False
        self.latestseed = -1


def set_seed_DiffAug(param: ParamDiffAug) -> None:
    if param.latestseed == -1:
        return
    torch.random.manual_seed(param.latestseed)
    param.latestseed += 1


def DiffAugment(x: torch.Tensor, strategy: str = STRATEGY, seed: int = -1, param: ParamDiffAug = None):
    """One transform family drawn uniformly from ``strategy``; with a seed, one draw for the
    whole batch (Siamese mode), else one per image."""
    param.batchmode = seed != -1
    param.latestseed = seed
    if strategy in ("None", "none", ""):
        return x
    pbties = strategy.split("_")
    set_seed_DiffAug(param)
    p = pbties[torch.randint(0, len(pbties), size=(1,)).item()]
    for f in AUGMENT_FNS[p]:
        x = f(x, param)
    return x.contiguous()


def _affine(x: torch.Tensor, theta: torch.Tensor, param: ParamDiffAug) -> torch.Tensor:
    if param.batchmode:
        theta[:] = theta[0].clone()
    grid = F.affine_grid(theta.to(x.device), list(x.shape), align_corners=True)
    return F.grid_sample(x, grid, align_corners=True)


def rand_scale(x, param):
    ratio = param.ratio_scale
    set_seed_DiffAug(param)
    sx = torch.rand(x.shape[0]) * (ratio - 1.0 / ratio) + 1.0 / ratio
    set_seed_DiffAug(param)
    sy = torch.rand(x.shape[0]) * (ratio - 1.0 / ratio) + 1.0 / ratio
    zero = torch.zeros_like(sx)
    theta = torch.stack([torch.stack([sx, zero, zero], 1), torch.stack([zero, sy, zero], 1)], 1)
    return _affine(x, theta, param)


def rand_rotate(x, param):
    ratio = param.ratio_rotate
    set_seed_DiffAug(param)
    theta = (torch.rand(x.shape[0]) - 0.5) * 2 * ratio / 180 * float(np.pi)
    c, s, zero = torch.cos(theta), torch.sin(theta), torch.zeros_like(theta)
    theta = torch.stack([torch.stack([c, -s, zero], 1), torch.stack([s, c, zero], 1)], 1)
    return _affine(x, theta, param)


def rand_flip(x, param):
    prob = param.prob_flip
    set_seed_DiffAug(param)
    randf = torch.rand(x.size(0), 1, 1, 1, device=x.device)
    if param.batchmode:
        randf[:] = randf[0].clone()
    return torch.where(randf < prob, x.flip(3), x)


def rand_brightness(x, param):
    ratio = param.brightness
    set_seed_DiffAug(param)
    randb = torch.rand(x.size(0), 1, 1, 1, dtype=x.dtype, device=x.device)
    if param.batchmode:
        randb[:] = randb[0].clone()
    return x + (randb - 0.5) * ratio


def rand_saturation(x, param):
    ratio = param.saturation
    x_mean = x.mean(dim=1, keepdim=True)
    set_seed_DiffAug(param)
    rands = torch.rand(x.size(0), 1, 1, 1, dtype=x.dtype, device=x.device)
    if param.batchmode:
        rands[:] = rands[0].clone()
    return (x - x_mean) * (rands * ratio) + x_mean


def rand_contrast(x, param):
    ratio = param.contrast
    x_mean = x.mean(dim=[1, 2, 3], keepdim=True)
    set_seed_DiffAug(param)
    randc = torch.rand(x.size(0), 1, 1, 1, dtype=x.dtype, device=x.device)
    if param.batchmode:
        randc[:] = randc[0].clone()
    return (x - x_mean) * (randc + ratio) + x_mean


def rand_crop(x, param):
    # The image is padded on its surrounding and then cropped.
    ratio = param.ratio_crop_pad
    shift_x, shift_y = int(x.size(2) * ratio + 0.5), int(x.size(3) * ratio + 0.5)
    set_seed_DiffAug(param)
    translation_x = torch.randint(-shift_x, shift_x + 1, size=[x.size(0), 1, 1], device=x.device)
    set_seed_DiffAug(param)
    translation_y = torch.randint(-shift_y, shift_y + 1, size=[x.size(0), 1, 1], device=x.device)
    if param.batchmode:
        translation_x[:] = translation_x[0].clone()
        translation_y[:] = translation_y[0].clone()
    grid_batch, grid_x, grid_y = torch.meshgrid(
        torch.arange(x.size(0), dtype=torch.long, device=x.device),
        torch.arange(x.size(2), dtype=torch.long, device=x.device),
        torch.arange(x.size(3), dtype=torch.long, device=x.device),
        indexing="ij",
    )
    grid_x = torch.clamp(grid_x + translation_x + 1, 0, x.size(2) + 1)
    grid_y = torch.clamp(grid_y + translation_y + 1, 0, x.size(3) + 1)
    x_pad = F.pad(x, [1, 1, 1, 1, 0, 0, 0, 0])
    return x_pad.permute(0, 2, 3, 1).contiguous()[grid_batch, grid_x, grid_y].permute(0, 3, 1, 2)


def rand_cutout(x, param):
    ratio = param.ratio_cutout
    cutout_size = int(x.size(2) * ratio + 0.5), int(x.size(3) * ratio + 0.5)
    set_seed_DiffAug(param)
    offset_x = torch.randint(0, x.size(2) + (1 - cutout_size[0] % 2), size=[x.size(0), 1, 1], device=x.device)
    set_seed_DiffAug(param)
    offset_y = torch.randint(0, x.size(3) + (1 - cutout_size[1] % 2), size=[x.size(0), 1, 1], device=x.device)
    if param.batchmode:
        offset_x[:] = offset_x[0].clone()
        offset_y[:] = offset_y[0].clone()
    grid_batch, grid_x, grid_y = torch.meshgrid(
        torch.arange(x.size(0), dtype=torch.long, device=x.device),
        torch.arange(cutout_size[0], dtype=torch.long, device=x.device),
        torch.arange(cutout_size[1], dtype=torch.long, device=x.device),
        indexing="ij",
    )
    grid_x = torch.clamp(grid_x + offset_x - cutout_size[0] // 2, min=0, max=x.size(2) - 1)
    grid_y = torch.clamp(grid_y + offset_y - cutout_size[1] // 2, min=0, max=x.size(3) - 1)
    mask = torch.ones(x.size(0), x.size(2), x.size(3), dtype=x.dtype, device=x.device)
    mask[grid_batch, grid_x, grid_y] = 0
    return x * mask.unsqueeze(1)


AUGMENT_FNS = {
    "color": [rand_brightness, rand_saturation, rand_contrast],
    "crop": [rand_crop],
    "cutout": [rand_cutout],
    "flip": [rand_flip],
    "scale": [rand_scale],
    "rotate": [rand_rotate],
}


# ---------------------------------------------------------------- gradient matching (reference utils.py)


def distance_wb(gwr: torch.Tensor, gws: torch.Tensor) -> torch.Tensor:
    shape = gwr.shape
    if len(shape) == 4:  # conv, out*in*h*w
        gwr = gwr.reshape(shape[0], shape[1] * shape[2] * shape[3])
        gws = gws.reshape(shape[0], shape[1] * shape[2] * shape[3])
    elif len(shape) == 3:  # layernorm, C*h*w
        gwr = gwr.reshape(shape[0], shape[1] * shape[2])
        gws = gws.reshape(shape[0], shape[1] * shape[2])
    elif len(shape) == 1:  # batchnorm/instancenorm, C; groupnorm x, bias
        return torch.tensor(0, dtype=torch.float, device=gwr.device)
    return torch.sum(1 - torch.sum(gwr * gws, dim=-1)
                     / (torch.norm(gwr, dim=-1) * torch.norm(gws, dim=-1) + 0.000001))


def match_loss(gw_syn, gw_real, device) -> torch.Tensor:
    dis = torch.tensor(0.0, device=device)
    for gwr, gws in zip(gw_real, gw_syn):
        dis = dis + distance_wb(gwr, gws)
    return dis


# ---------------------------------------------------------------- the methods


def embed(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """ConvNet features before the classifier (the reference ``net.embed``)."""
    for i in range(net.depth):
        x = getattr(net, f"conv{i}")(x)
        x = getattr(net, f"norm{i}")(x)
        x = net.pool(net.act(x))
    return torch.flatten(x, 1)


def shuffled_batches(n: int, batch: int, device: str):
    order = torch.randperm(n, device=device)
    return [order[i:i + batch] for i in range(0, n, batch)]


def train_epoch(net, optimizer, criterion, x, y, batch, device, dsa_param=None):
    """The reference ``epoch('train', ...)``: one pass over (x, y) in shuffled minibatches, a
    per-image DSA draw on each when ``dsa_param`` is given."""
    loss_sum = 0.0
    for idx in shuffled_batches(x.shape[0], batch, device):
        img, lab = x[idx], y[idx]
        if dsa_param is not None:
            img = DiffAugment(img, STRATEGY, param=dsa_param)
        loss = criterion(net(img), lab)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss_sum += loss.item() * lab.shape[0]
    return loss_sum / x.shape[0]


class Distiller:
    """The synthetic set and image optimiser of one (method, IPC), kept across iterations as
    in the reference (and ddlens)."""

    def __init__(self, method: str, ipc: int, real: Real, new_net, args):
        self.method, self.ipc, self.real, self.new_net, self.args = method, ipc, real, new_net, args
        self.device = args.device
        self.num_classes = real.num_classes
        init = torch.cat([real.get_images(c, ipc) for c in range(self.num_classes)])
        self.image_syn = init.detach().clone().requires_grad_(True)
        self.label_syn = torch.arange(self.num_classes, device=self.device).repeat_interleave(ipc)
        lr_img = 1.0 if method == "dm" else 0.1  # DM lr 1; DC/DSA lr_img 0.1; momentum 0.5
        self.optimizer_img = torch.optim.SGD([self.image_syn], lr=lr_img, momentum=0.5)
        self.dsa_param = ParamDiffAug()
        self.criterion = nn.CrossEntropyLoss().to(self.device)
        nearest = min(LOOPS, key=lambda k: abs(k - ipc))
        self.outer_loop, self.inner_loop = LOOPS[nearest]

    def syn_of(self, c: int) -> torch.Tensor:
        return self.image_syn[c * self.ipc:(c + 1) * self.ipc]

    def iterate(self) -> float:
        return self.iterate_dm() if self.method == "dm" else self.iterate_dc(self.method == "dsa")

    def iterate_dm(self) -> float:
        """main_DM.py: one random network, mean-embedding matching per class, one image step."""
        net = self.new_net().to(self.device)
        net.train()
        for param in net.parameters():
            param.requires_grad = False
        loss = torch.tensor(0.0, device=self.device)
        for c in range(self.num_classes):
            img_real = self.real.get_images(c, self.args.batch_real)
            img_syn = self.syn_of(c)
            seed = int(time.time() * 1000) % 100000
            img_real = DiffAugment(img_real, STRATEGY, seed=seed, param=self.dsa_param)
            img_syn = DiffAugment(img_syn, STRATEGY, seed=seed, param=self.dsa_param)
            output_real = embed(net, img_real).detach()
            output_syn = embed(net, img_syn)
            loss = loss + torch.sum((torch.mean(output_real, dim=0) - torch.mean(output_syn, dim=0)) ** 2)
        self.optimizer_img.zero_grad()
        loss.backward()
        self.optimizer_img.step()
        return loss.item()

    def iterate_dc(self, dsa: bool) -> float:
        """main.py (DC, and DSA with ``dsa``): one random network; outer_loop times, the summed
        per-class gradient-matching loss takes one image step, then (except after the last)
        the network trains inner_loop epochs on the synthetic set."""
        net = self.new_net().to(self.device)
        net.train()
        net_parameters = list(net.parameters())
        optimizer_net = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.5)
        optimizer_net.zero_grad()
        loss_avg = 0.0
        for ol in range(self.outer_loop):
            loss = torch.tensor(0.0, device=self.device)
            for c in range(self.num_classes):
                img_real = self.real.get_images(c, self.args.batch_real)
                lab_real = torch.ones((img_real.shape[0],), device=self.device, dtype=torch.long) * c
                img_syn = self.syn_of(c)
                lab_syn = torch.ones((self.ipc,), device=self.device, dtype=torch.long) * c
                if dsa:
                    seed = int(time.time() * 1000) % 100000
                    img_real = DiffAugment(img_real, STRATEGY, seed=seed, param=self.dsa_param)
                    img_syn = DiffAugment(img_syn, STRATEGY, seed=seed, param=self.dsa_param)
                output_real = net(img_real)
                loss_real = self.criterion(output_real, lab_real)
                gw_real = torch.autograd.grad(loss_real, net_parameters)
                gw_real = [g.detach().clone() for g in gw_real]
                output_syn = net(img_syn)
                loss_syn = self.criterion(output_syn, lab_syn)
                gw_syn = torch.autograd.grad(loss_syn, net_parameters, create_graph=True)
                loss = loss + match_loss(gw_syn, gw_real, self.device)
            self.optimizer_img.zero_grad()
            loss.backward()
            self.optimizer_img.step()
            loss_avg += loss.item()
            if ol == self.outer_loop - 1:
                break
            image_syn_train = self.image_syn.detach().clone()
            label_syn_train = self.label_syn.clone()
            for _ in range(self.inner_loop):
                train_epoch(net, optimizer_net, self.criterion, image_syn_train, label_syn_train,
                            256, self.device, self.dsa_param if dsa else None)
        return loss_avg / (self.num_classes * self.outer_loop)


def eval_seconds_per_epoch(ipc: int, real: Real, new_net, args, dsa: bool) -> float:
    """Seconds per epoch of the standard evaluation's training on ipc images per class."""
    x = torch.cat([real.get_images(c, ipc) for c in range(real.num_classes)])
    y = torch.arange(real.num_classes, device=args.device).repeat_interleave(ipc)
    criterion = nn.CrossEntropyLoss().to(args.device)
    param = ParamDiffAug() if dsa else None
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)

    def run(epochs: int) -> float:
        net = new_net().to(args.device)
        net.train()
        optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=0.0005)
        sched = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[epochs // 2], gamma=0.1)
        sync()
        t0 = time.perf_counter()
        for _ in range(epochs):
            train_epoch(net, optimizer, criterion, x, y, 256, args.device, param)
            sched.step()
        sync()
        return time.perf_counter() - t0

    run(1)  # warm-up
    return run(args.eval_epochs) / args.eval_epochs


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", default="dm,dc,dsa", help="comma-separated: dm, dc, dsa")
    p.add_argument("--ipc", default="1,10", help="comma-separated images per class")
    p.add_argument("--iters", type=int, default=3, help="timed iterations after the warm-up")
    p.add_argument("--warmup", type=int, default=1, help="untimed warm-up iterations first")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--eval-epochs", type=int, default=20,
                   help="epochs timed for the eval rows (0: no eval rows)")
    p.add_argument("--batch-real", type=int, default=256, help="real images per class and step")
    p.add_argument("--model", default="convnet3-1x28x28", help="builtin model of the exporter")
    p.add_argument("--data-dir", type=Path, default=Path("/usr/share/datasets/fashion-mnist"))
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    methods = [m.strip().lower() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in methods if m not in ("dm", "dc", "dsa")]
    if bad:
        p.error(f"unknown method(s) {bad}; expected dm, dc, dsa")
    ipcs = [int(v) for v in args.ipc.split(",") if v.strip()]
    if any(i < 1 for i in ipcs):
        p.error("--ipc values must be at least 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: this PyTorch sees no CUDA device")
    iters = max(args.iters, 1)

    torch.set_num_threads(args.threads)
    builtin = get_builtin(args.model)
    # A fresh network per iteration, as the reference's get_network: the exporter's module
    # factory, which `builtin.build()` calls after `torch.manual_seed(0)` (not re-seeded here).
    new_net = builtin.factory
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    images, labels = fashion_mnist(args.data_dir)
    if tuple(images.shape[1:]) != tuple(builtin.input_shape):
        p.error(f"{args.model} takes {builtin.input_shape} images, Fashion-MNIST is {tuple(images.shape[1:])}")
    real = Real(images, labels, args.device)
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)

    result: dict[str, float] = {}
    for method in methods:
        for ipc in ipcs:
            d = Distiller(method, ipc, real, new_net, args)
            times = []
            for it in range(max(args.warmup, 0) + iters):
                sync()
                t0 = time.perf_counter()
                loss = d.iterate()
                sync()
                if it >= args.warmup:  # the first ones are the warm-up
                    times.append(time.perf_counter() - t0)
            result[f"{method}-{ipc}"] = statistics.median(times)
            print(f"{method:<4} ipc {ipc:>3}: median {result[f'{method}-{ipc}']:.3f} s over {iters}, "
                  f"last loss {loss:.5f}", file=sys.stderr)
    if args.eval_epochs > 0:
        for ipc in ipcs:
            for dsa in (False, True):
                key = f"eval{'-dsa' if dsa else ''}-{ipc}"
                result[key] = eval_seconds_per_epoch(ipc, real, new_net, args, dsa)
                print(f"{key}: {result[key]:.4f} s per epoch", file=sys.stderr)
    print(json.dumps({k: round(v, 6) for k, v in result.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
