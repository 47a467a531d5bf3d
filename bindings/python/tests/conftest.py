"""Shared fixtures: the runtime (CPU, one thread), the tiny bundle and a learnable toy problem.

The tiny bundle (`models/tiny-1x8x8`, 3 classes of 1x8x8 images) keeps every test at seconds;
`DDLENS_TEST_MODELS=DIR` points the tests at bundles elsewhere, as for the Rust tests.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[3]
# The package from this checkout, also without `pip install -e bindings/python`.
sys.path.insert(0, str(ROOT / "bindings" / "python" / "src"))

import ddlens  # noqa: E402

MODELS = Path(os.environ.get("DDLENS_TEST_MODELS", ROOT / "models"))
TINY = str(MODELS / "tiny-1x8x8")


def banded(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The learnable 3-class problem of the C and Rust tests: class c lights rows 2c and 2c+1
    of an 8x8 image, plus Gaussian noise."""
    rng = np.random.default_rng(seed)
    x = (0.3 * rng.standard_normal((n, 1, 8, 8))).astype(np.float32)
    y = np.arange(n, dtype=np.int64) % 3
    for i in range(n):
        c = 2 * int(y[i])
        x[i, 0, c : c + 2, :] += 2.0
    return x, y


@pytest.fixture(scope="session")
def runtime() -> None:
    ddlens.init_runtime(provider="cpu", threads=1)


@pytest.fixture(scope="session")
def bundle(runtime: None) -> ddlens.Bundle:
    return ddlens.Bundle(TINY)


@pytest.fixture(scope="session")
def toy(runtime: None) -> tuple[ddlens.Dataset, ddlens.Dataset]:
    """(train, test): 90 and 45 banded examples."""
    return (
        ddlens.Dataset.from_memory(*banded(90, 1), num_classes=3, name="toy-train"),
        ddlens.Dataset.from_memory(*banded(45, 2), num_classes=3, name="toy-test"),
    )


def run_python(code: str, timeout: float = 60, **kwargs):  # type: ignore[no-untyped-def]
    """Runs `code` in a fresh interpreter that imports this checkout's package."""
    import subprocess

    env = dict(os.environ, PYTHONPATH=str(ROOT / "bindings" / "python" / "src"))
    env.update(kwargs.pop("env", {}))
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env, **kwargs
    )
