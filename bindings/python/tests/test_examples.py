"""Both Python examples run at their smallest budget (`--smoke`) and print their results."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import ddlens
from conftest import ROOT

pytest.importorskip("torch")


def _fashion_mnist_available() -> bool:
    try:
        ddlens.load_dataset("fashion-mnist", split="test").close()
        return True
    except ddlens.DdlError:
        return False


needs_data = pytest.mark.skipif(not _fashion_mnist_available(), reason="Fashion-MNIST not installed (scripts/setup)")


def _run(example: str, *args: str) -> tuple[str, dict]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "bindings" / "python" / "src"))
    r = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "python" / example), "--smoke", "--threads", "1", *args],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    last = r.stdout.strip().splitlines()[-1]
    return r.stdout, json.loads(last)


@needs_data
def test_dm_loop_hands_its_set_to_ddlens(tmp_path):
    out, result = _run("dm_loop.py", "--out", str(tmp_path / "mine.safetensors"))
    assert "DM iteration 3/3" in out
    for name in ("my-dm", "random-real"):
        assert 0.0 <= result[name]["mean"] <= 1.0 and len(result[name]["accuracies"]) == 1
    assert set(result["verdicts"]) == {"pixels", "recognition-over-training"}
    s = ddlens.DistilledSet.read(tmp_path / "mine.safetensors")
    assert s.describe()["method"] == "dm-pytorch" and len(s) == 10
    assert (tmp_path / "mine-analyses" / "pixels.json").exists()


@needs_data
def test_eval_agreement_compares_ddlens_with_a_pytorch_loop():
    out, result = _run("eval_agreement.py", "--set", "zoo:random-ipc1")
    assert len(result["ddlens"]) == len(result["pytorch"]) == 2
    w = result["welch"]
    assert w["lo"] <= w["difference"] <= w["hi"]
    assert result["agree"] == (w["lo"] <= 0 <= w["hi"])
    assert "plain PyTorch loop" in out
