"""The command line, as a user runs it: a model file outside the repository, exported and
checked through subprocesses; and the error messages for bad arguments."""

import json
import re
import subprocess
import sys
import textwrap

import pytest

from ddlens_exporter.__main__ import main
from ddlens_exporter.check import check_bundle
from ddlens_exporter.loading import build_user_model
from onnx_io import check_files

USER_MODEL = textwrap.dedent('''
    import torch
    from torch import nn


    class UserNet(nn.Module):
        """Strided conv, instance norm, LeakyReLU, group norm, max pool, Tanh, two Linear."""

        def __init__(self, width=6, classes=4):
            super().__init__()
            self.conv1 = nn.Conv2d(3, width, 3, stride=2, padding=1)   # 12 -> 6
            self.norm1 = nn.InstanceNorm2d(width, affine=True)
            self.act1 = nn.LeakyReLU(0.1)
            self.conv2 = nn.Conv2d(width, 8, 3, padding=1)
            self.norm2 = nn.GroupNorm(2, 8)
            self.pool = nn.MaxPool2d(2)                                # 6 -> 3
            self.act2 = nn.Tanh()
            self.flat = nn.Flatten()
            self.fc = nn.Linear(8 * 3 * 3, 16)
            self.head = nn.Linear(16, classes)

        def forward(self, x):
            x = self.act1(self.norm1(self.conv1(x)))
            x = self.act2(self.pool(self.norm2(self.conv2(x))))
            return self.head(self.act2(self.fc(self.flat(x))))
''')


@pytest.fixture(scope="session")
def user_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("user_project")
    path = folder / "my_net.py"
    path.write_text(USER_MODEL)
    return path


@pytest.fixture(scope="session")
def user_bundle(user_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("user_bundles") / "usernet"
    cmd = [sys.executable, "-m", "ddlens_exporter", "export", "--module", str(user_file), "--class", "UserNet",
           "--kwargs", '{"width": 6, "classes": 4}', "--input-shape", "3,12,12", "--num-classes", "4",
           "--normalization", "0.5,0.4,0.3;0.2,0.2,0.2", "--name", "usernet", "--out", str(out)]
    run = subprocess.run(cmd, cwd=user_file.parent, capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"wrote {out}" in run.stdout
    return out


def test_user_module_export(user_bundle, user_file):
    manifest = json.loads((user_bundle / "manifest.json").read_text())
    assert manifest["name"] == "usernet"
    assert manifest["input_shape"] == [3, 12, 12] and manifest["num_classes"] == 4
    assert manifest["feature_dim"] == 16
    assert manifest["normalization"] == {"dataset": "custom", "mean": [0.5, 0.4, 0.3], "std": [0.2, 0.2, 0.2]}
    assert [p["name"] for p in manifest["params"]][:4] == ["conv1.weight", "conv1.bias", "norm1.weight", "norm1.bias"]
    check_files(user_bundle, manifest)
    source = json.loads((user_bundle / "export.json").read_text())
    assert source == {"module": str(user_file.resolve()), "class": "UserNet", "kwargs": {"width": 6, "classes": 4}}
    model = build_user_model(user_file, "UserNet", {"width": 6, "classes": 4})
    mismatches = check_bundle(user_bundle, model, batches=(3, 7), draws=1)
    assert not mismatches, "\n".join(map(str, mismatches))


def test_check_command(user_bundle):
    run = subprocess.run([sys.executable, "-m", "ddlens_exporter", "check", str(user_bundle), "--batches", "2"],
                         capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "all roles match PyTorch" in run.stdout


@pytest.mark.parametrize("args, message", [
    (["--module", "/nonexistent/net.py", "--class", "Net"], "--module /nonexistent/net.py: no such file"),
    (["--class", "Missing"], "--class Missing: .*my_net.py defines no such class \\(nn.Module classes found: UserNet\\)"),
    (["--class", "UserNet", "--kwargs", "{bad"], "--kwargs '{bad' is not valid JSON"),
    (["--class", "UserNet", "--kwargs", '{"depth": 3}'], "constructing it failed.*depth"),
    (["--class", "UserNet", "--input-shape", "3,12"], "--input-shape '3,12': expected 3 positive integers"),
    (["--class", "UserNet", "--normalization", "imagenet"], "--normalization 'imagenet'"),
    (["--class", "UserNet", "--roles", "grad,hessian"], "--roles: unknown role\\(s\\) hessian"),
    (["--class", "UserNet", "--num-classes", "10"], "produces 4 logits but --num-classes is 10"),
])
def test_export_errors(user_file, tmp_path, capsys, args, message):
    base = {"--module": str(user_file), "--input-shape": "3,12,12", "--num-classes": "4", "--name": "n",
            "--out": str(tmp_path / "n")}
    given = dict(zip(args[::2], args[1::2]))
    argv = ["export"] + [x for k, v in {**base, **given}.items() for x in (k, v)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert re.search(message, err), err


def test_check_errors(tmp_path, capsys):
    assert main(["check", str(tmp_path)]) == 2
    assert "not a bundle folder (no manifest.json)" in capsys.readouterr().err


UNSUPPORTED_MODEL = textwrap.dedent('''
    import torch
    from torch import nn


    class ErfInv(nn.Module):
        def forward(self, x):
            return torch.erfinv(torch.tanh(x) * 0.5)


    class Odd(nn.Module):
        """erfinv, which torch.onnx cannot lower, two levels down: body.1.act."""

        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Sequential())
            self.body[1].add_module("act", ErfInv())
            self.head = nn.Linear(2 * 6 * 6, 3)

        def forward(self, x):
            return self.head(torch.flatten(self.body(x), 1))
''')


def test_unsupported_op_is_one_paragraph_naming_module_and_op(tmp_path, capsys):
    path = tmp_path / "odd.py"
    path.write_text(UNSUPPORTED_MODEL)
    argv = ["export", "--module", str(path), "--class", "Odd", "--input-shape", "1,8,8", "--num-classes", "3",
            "--name", "odd", "--out", str(tmp_path / "odd"), "--roles", "forward"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: odd, role forward: module `body.1.act` (ErfInv) uses `prims.erf_inv`"), err
    assert "Instead: " in err and "--verbose" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    # --verbose: the real traceback, with the paragraph as the last exception.
    with pytest.raises(RuntimeError, match="module `body.1.act`") as info:
        main([*argv, "--verbose"])
    assert info.value.__cause__ is not None


BN_MODEL = textwrap.dedent('''
    from torch import nn


    class BnNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.AvgPool2d(2))
            self.head = nn.Linear(3 * 4 * 4, 3)

        def forward(self, x):
            return self.head(self.body(x).flatten(1))
''')


def test_batchnorm_needs_the_flag_and_is_recorded(tmp_path, capsys):
    path = tmp_path / "bn.py"
    path.write_text(BN_MODEL)
    out = tmp_path / "bn"
    argv = ["export", "--module", str(path), "--class", "BnNet", "--input-shape", "1,8,8", "--num-classes", "3",
            "--name", "bn", "--out", str(out), "--roles", "forward"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "module `body.1` (BatchNorm2d) keeps running statistics" in err and "--batchnorm batch-stats" in err, err
    assert not out.exists()
    assert main([*argv, "--batchnorm", "batch-stats"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["norm_state"] == "batch-stats" and manifest["batch_statistics"] is True
    assert json.loads((out / "export.json").read_text())["batchnorm"] == "batch-stats"
    # `check` rebuilds the module from export.json in the same form (batch statistics).
    capsys.readouterr()
    assert main(["check", str(out), "--batches", "2,5"]) == 0
    assert "all roles match PyTorch" in capsys.readouterr().out
