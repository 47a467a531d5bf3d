"""The prebuilt bundles committed under models/: same names, shapes and inits as a fresh
export of the same module would write, and every role matching PyTorch.

Skipped when models/ is absent (e.g. an exporter-only checkout); rebuild the bundles with
``python -m ddlens_exporter builtin --out models``."""

import json
from pathlib import Path

import pytest

from ddlens_exporter.builtin import BUILTINS
from ddlens_exporter.check import check_bundle
from ddlens_exporter.export import bundle_manifest
from onnx_io import check_files

MODELS = Path(__file__).resolve().parents[2] / "models"


def _folder(name: str) -> Path:
    folder = MODELS / name
    if not (folder / "manifest.json").is_file():
        pytest.skip(f"{folder} is not present")
    return folder


@pytest.mark.parametrize("name", list(BUILTINS))
def test_committed_bundle_matches_a_fresh_export(name):
    folder = _folder(name)
    builtin = BUILTINS[name]
    committed = json.loads((folder / "manifest.json").read_text())
    expected = bundle_manifest(builtin.build(), builtin.spec())
    for key, value in expected.items():
        if key != "producer":  # names the torch version, which may differ
            assert committed[key] == value, f"{folder}/manifest.json: field {key}"
    assert committed["producer"].startswith("ddlens-exporter ")
    check_files(folder, committed)
    assert json.loads((folder / "export.json").read_text()) == {"builtin": name}


@pytest.mark.parametrize("name", list(BUILTINS))
def test_committed_bundle_roles_match_pytorch(name):
    folder = _folder(name)
    # Small batches keep the float64 ConvNet-3 references quick; three draws per batch size
    # absorb a ReLU kink landing within float32 round-off (see check_bundle).
    mismatches = check_bundle(folder, BUILTINS[name].build(), batches=(2, 3), draws=3)
    assert not mismatches, "\n".join(map(str, mismatches))


def test_bundle_sizes_stay_small():
    if not MODELS.is_dir():
        pytest.skip("models/ is not present")
    total = sum(f.stat().st_size for name in BUILTINS for f in (MODELS / name).glob("*") if f.is_file())
    assert total < 30 * 2**20, f"prebuilt bundles take {total / 2**20:.1f} MiB"
