"""Writes, with torch.save, the layouts `ddlens import` reads (tests/core/data_import.rs and
the pt_import fuzz seeds). Usage: make_sets.py OUT_DIR

Pixel k of a set (row-major index into its images) is value(k) = ((k % 97) - 48) / 16, exact in
float16 and float32, so the Rust side can compute every expected value. Labels: ipc per class,
class-major (0, 0, 1, 1, ...), int64 as both reference repositories make them.
"""

import os
import sys

import torch

OUT = sys.argv[1]
FUZZ = sys.argv[2:] == ["fuzz"]


def values(n, offset=0):
    k = torch.arange(offset, offset + n, dtype=torch.float64)
    return (((k % 97) - 48) / 16).float()


def images(n, c, h, w, offset=0):
    return values(n * c * h * w, offset).reshape(n, c, h, w)


def labels(classes, ipc):
    return torch.arange(classes, dtype=torch.long).repeat_interleave(ipc)


def save(obj, *path):
    full = os.path.join(OUT, *path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    torch.save(obj, full)


if FUZZ:
    # Small seeds for the pt_import fuzz target (tests/fuzz_corpora.rs): float16 1x28x28
    # images, one per class.
    os.makedirs(OUT, exist_ok=True)
    small = images(10, 1, 28, 28).half()
    torch.save(small, os.path.join(OUT, "images_fuzz.pt"))
    torch.save(labels(10, 1), os.path.join(OUT, "labels_fuzz.pt"))
    torch.save({"data": [[small, labels(10, 1)]], "accs_all_exps": {}}, os.path.join(OUT, "res.pt"))

    class Trajectory:
        pass

    torch.save({"data": [[Trajectory(), labels(10, 1)]]}, os.path.join(OUT, "custom.pt"))
    sys.exit(0)

# MTT: images_best.pt, labels_best.pt, syn_lr_best.pt (a 0-d tensor), CIFAR-10 shaped.
save(images(20, 3, 32, 32), "mtt", "images_best.pt")
save(labels(10, 2), "mtt", "labels_best.pt")
save(torch.tensor(0.01), "mtt", "syn_lr_best.pt")

# MTT without syn_lr, float16 images, tag "fp16".
save(images(10, 3, 32, 32).half(), "fp16", "images_fp16.pt")
save(labels(10, 1), "fp16", "labels_fp16.pt")

# A strided view with an offset: torch.save keeps the whole storage. Pixel k of the view is
# storage element 2k + 1, i.e. value(2k + 1).
base = values(2 * 10 * 3 * 32 * 32).reshape(10, 3, 32, 64)
view = base[..., 1::2]
assert not view.is_contiguous()
save(view, "strided", "images_best.pt")
save(labels(10, 1), "strided", "labels_best.pt")

# DC (VICO-UoE/DatasetCondensation): res_<method>_<dataset>_<model>_<ipc>ipc.pt, two
# experiments; experiment e's pixels are value(k + 1000 e).
save(
    {
        "data": [[images(20, 3, 32, 32, 1000 * e), labels(10, 2)] for e in range(2)],
        "accs_all_exps": {"ConvNet": [0.25, 0.5]},
    },
    "dc",
    "res_DC_CIFAR10_ConvNet_2ipc.pt",
)

# DM on MNIST: the dataset comes from the name; the same without it is ambiguous.
mnist = {"data": [[images(10, 1, 28, 28), labels(10, 1)]], "accs_all_exps": {}}
save(mnist, "dm", "res_DM_MNIST_ConvNet_1ipc.pt")
save(mnist, "ambiguous", "set.pt")


# Unexpected objects: a class whose unpickling would run a shell command, and a plain
# custom object. Neither may run or be built.
class Evil:
    def __reduce__(self):
        return (os.system, ("touch " + os.path.join(OUT, "PWNED"),))


class Trajectory:
    def __init__(self):
        self.step = 3


save({"data": [[Evil(), labels(10, 1)]]}, "evil", "res_DC_CIFAR10_ConvNet_1ipc.pt")
save({"data": [[Trajectory(), labels(10, 1)]]}, "custom", "res_DC_CIFAR10_ConvNet_1ipc.pt")

# A truncated archive.
with open(os.path.join(OUT, "dc", "res_DC_CIFAR10_ConvNet_2ipc.pt"), "rb") as f:
    whole = f.read()
os.makedirs(os.path.join(OUT, "truncated"), exist_ok=True)
with open(os.path.join(OUT, "truncated", "res_DC_CIFAR10_ConvNet_2ipc.pt"), "wb") as f:
    f.write(whole[: len(whole) // 2])
