"""Shared fixtures: bundles exported once per test session into temporary folders."""

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from torch import nn

from ddlens_exporter.builtin import BUILTINS
from ddlens_exporter.export import export_bundle

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Bundle:
    path: Path
    manifest: dict
    model: nn.Module


def _export_builtin(name: str, root: Path) -> Bundle:
    b = BUILTINS[name]
    export_bundle(b.build(), b.spec(), root / name, log=lambda *_: None)
    manifest = json.loads((root / name / "manifest.json").read_text())
    return Bundle(root / name, manifest, b.build())


@pytest.fixture(scope="session")
def export_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bundles")


@pytest.fixture(scope="session")
def tiny_bundle(export_root) -> Bundle:
    """tiny-1x8x8 (conv, group norm, ReLU, avg pool), freshly exported."""
    return _export_builtin("tiny-1x8x8", export_root)


@pytest.fixture(scope="session")
def tiny_maxpool_bundle(export_root) -> Bundle:
    """tiny-maxpool-1x8x8 (conv, tanh, max pool, two Linear layers), freshly exported."""
    return _export_builtin("tiny-maxpool-1x8x8", export_root)
