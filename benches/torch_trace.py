#!/usr/bin/env python3
"""An independent PyTorch computation of the Hessian trace that `cargo bench --bench trace`
estimates with ddlens: same parameters (a ddlens safetensors file), same images (the first N
Fashion-MNIST training images, normalised with mean 0.2861, std 0.3530), same loss (mean
cross-entropy), Hutchinson's estimator with Rademacher probes and Hessian-vector products by
double backward in `torch.autograd` on the builtin module the bundle was exported from.
Prints JSON; the two traces must agree within their standard errors.

    .venv/bin/python benches/torch_trace.py --params target/trace-init.safetensors --images 256
"""

from __future__ import annotations

import argparse
import gzip
import json
import struct
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "exporter"))

from ddlens_exporter.builtin import get_builtin  # noqa: E402


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """The F32 tensors of a safetensors file (the format is an 8-byte header length, a JSON
    header and raw little-endian data), without the safetensors package."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            raise SystemExit(f"{path}: tensor {name} is {info['dtype']}, expected F32")
        a, b = info["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[a:b], dtype="<f4").copy()).reshape(info["shape"])
    return out


def fashion_mnist(n: int, folder: Path) -> tuple[torch.Tensor, torch.Tensor]:
    def read(name: str) -> bytes:
        plain = folder / name
        return plain.read_bytes() if plain.exists() else gzip.open(str(plain) + ".gz").read()
    images = np.frombuffer(read("train-images-idx3-ubyte"), dtype=np.uint8, offset=16)
    labels = np.frombuffer(read("train-labels-idx1-ubyte"), dtype=np.uint8, offset=8)
    x = images[: n * 784].reshape(n, 1, 28, 28).astype(np.float32) / 255.0
    x = (x - 0.2861) / 0.3530
    return torch.from_numpy(x), torch.from_numpy(labels[:n].astype(np.int64))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--params", required=True, type=Path)
    p.add_argument("--model", default="convnet3-1x28x28")
    p.add_argument("--images", type=int, default=256)
    p.add_argument("--probes", type=int, default=200)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data-dir", type=Path, default=Path("/usr/share/datasets/fashion-mnist"))
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    model = get_builtin(a.model).build()
    state = read_safetensors(a.params)
    model.load_state_dict(state, strict=True)
    x, y = fashion_mnist(a.images, a.data_dir)
    params = [q for q in model.parameters()]
    loss = torch.nn.functional.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, params, create_graph=True)
    gen = torch.Generator().manual_seed(a.seed)
    samples = []
    start = time.perf_counter()
    for _ in range(a.probes):
        v = [torch.randint(0, 2, q.shape, generator=gen).float() * 2 - 1 for q in params]
        hv = torch.autograd.grad(grads, params, grad_outputs=v, retain_graph=True)
        samples.append(sum((h * w).sum().item() for h, w in zip(hv, v)))
    s = np.array(samples)
    print(json.dumps({
        "engine": "PyTorch autograd", "model": a.model, "images": a.images,
        "trace": float(s.mean()), "std_error": float(s.std(ddof=1) / np.sqrt(len(s))),
        "probes": len(s), "seconds": time.perf_counter() - start,
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
