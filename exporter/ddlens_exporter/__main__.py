"""Command line: ``python -m ddlens_exporter {export,builtin,check} ...``.

* ``export``: a user's ``nn.Module`` class from a ``.py`` file -> bundle folder ``--out``;
* ``builtin``: rebuilds the prebuilt bundles into ``--out/<name>`` (``models/`` of the repository);
* ``check``: runs every role of a bundle in ONNX Runtime and in PyTorch and compares.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

from . import __version__
from .builtin import BUILTINS, get_builtin
from .check import check_bundle
from .decompositions import GRAD_WEIGHT_IMPLS
from .diagnose import ExportError
from .export import BundleSpec, export_bundle
from .loading import UserInputError, build_user_model, model_from_source, parse_kwargs
from .manifest import BATCHNORM_MODES, apply_batchnorm, parse_normalization
from .optimize import OPTIMIZE_LEVELS
from .roles import ROLE_NAMES


def _ints(text: str, flag: str, n: int | None = None, example: str = "1,28,28") -> list[int]:
    """Comma-separated positive integers (``n`` of them when given), or a message naming ``flag``."""
    try:
        values = [int(v) for v in text.replace("x", ",").split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(v <= 0 for v in values) or (n is not None and len(values) != n):
        want = f"{n} positive integers" if n else "positive integers"
        raise UserInputError(f"{flag} {text!r}: expected {want} separated by commas, e.g. {example}")
    return values


def _roles(text: str | None) -> list[str]:
    if not text:
        return list(ROLE_NAMES)
    roles = [r.strip() for r in text.split(",") if r.strip()]
    unknown = [r for r in roles if r not in ROLE_NAMES]
    if unknown:
        raise UserInputError(f"--roles: unknown role(s) {', '.join(unknown)}; known roles: {', '.join(ROLE_NAMES)}")
    if "forward" not in roles:
        raise UserInputError("--roles must include forward, which every bundle needs")
    return roles


def _report_check(bundle: Path, mismatches) -> int:
    if mismatches:
        print(f"{bundle}: {len(mismatches)} mismatch(es) between ONNX Runtime and PyTorch:")
        for m in mismatches:
            print(f"  {m}")
        return 1
    print(f"{bundle}: all roles match PyTorch")
    return 0


def cmd_export(args) -> int:
    shape = _ints(args.input_shape, "--input-shape", 3)
    kwargs = parse_kwargs(args.kwargs)
    model = build_user_model(args.module, args.class_name, kwargs)
    try:
        norm = parse_normalization(args.normalization, shape[0])
    except ValueError as e:
        raise UserInputError(str(e)) from e
    spec = BundleSpec(
        name=args.name, input_shape=tuple(shape), num_classes=args.num_classes, normalization=norm,
        description=args.description or f"{args.class_name} from {Path(args.module).name}",
        roles=_roles(args.roles), grad_weight_impl=args.grad_weight, batchnorm=args.batchnorm,
        optimize=args.optimize, source={"module": str(Path(args.module).resolve()), "class": args.class_name, "kwargs": kwargs,
                **({"batchnorm": args.batchnorm} if args.batchnorm else {})},
    )
    out = Path(args.out)
    t0 = time.time()
    export_bundle(model, spec, out)
    print(f"wrote {out} ({time.time() - t0:.0f} s)")
    if args.check:
        return _report_check(out, check_bundle(out, model))
    return 0


def cmd_builtin(args) -> int:
    names = [n.strip() for n in args.only.split(",")] if args.only else list(BUILTINS)
    for name in names:
        try:
            b = get_builtin(name)
        except ValueError as e:
            raise UserInputError(f"--only: {e}") from e
        out = Path(args.out) / b.name
        t0 = time.time()
        export_bundle(b.build(), b.spec(_roles(args.roles), args.grad_weight), out)
        print(f"wrote {out} ({time.time() - t0:.0f} s)", flush=True)
        if args.check and _report_check(out, check_bundle(out, b.build())):
            return 1
    return 0


def cmd_check(args) -> int:
    bundle = Path(args.bundle)
    if not (bundle / "manifest.json").is_file():
        raise UserInputError(f"{bundle}: not a bundle folder (no manifest.json)")
    if args.module:
        if not args.class_name:
            raise UserInputError("check --module needs --class too")
        model = apply_batchnorm(build_user_model(args.module, args.class_name, parse_kwargs(args.kwargs)),
                                args.batchnorm)
    else:
        source_file = bundle / "export.json"
        if not source_file.is_file():
            raise UserInputError(f"{bundle}: no export.json saying which module it came from; pass --module and --class")
        model = model_from_source(json.loads(source_file.read_text()), str(source_file))
    batches = _ints(args.batches, "--batches", example="3,7")
    return _report_check(bundle, check_bundle(bundle, model, batches=batches, rtol=args.rtol))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ddlens_exporter", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"ddlens-exporter {__version__} (torch {torch.__version__})")
    sub = p.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--verbose", action="store_true",
                        help="on failure show the full traceback, and torch.onnx's own output "
                             "(same as DDLENS_EXPORT_VERBOSE=1)")

    e = sub.add_parser("export", parents=[common], help="export a model class from a Python file as a bundle folder")
    e.add_argument("--module", required=True, help="path to the .py file defining the model class")
    e.add_argument("--class", dest="class_name", metavar="NAME", required=True,
                   help="name of the nn.Module class in that file")
    e.add_argument("--kwargs", help="JSON object of constructor arguments, e.g. '{\"width\": 64}'")
    e.add_argument("--input-shape", required=True, help="C,H,W of one example, e.g. 1,28,28")
    e.add_argument("--num-classes", type=int, required=True, help="number of logits")
    e.add_argument("--normalization", default="none",
                   help="fashion-mnist | mnist | cifar10 | none | 'm1,m2,m3;s1,s2,s3' (per-channel mean;std)")
    e.add_argument("--name", required=True, help="bundle name, as the manifest and the ddlens CLI know it")
    e.add_argument("--out", required=True, help="bundle folder to write, e.g. models/mynet (created if missing)")
    e.add_argument("--description", help="free-text description for the manifest")
    e.add_argument("--roles", help=f"comma-separated subset of {','.join(ROLE_NAMES)} (default: all)")
    e.add_argument("--grad-weight", choices=GRAD_WEIGHT_IMPLS, default="matmul",
                   help="lowering of the convolution weight gradient (default: matmul)")
    e.add_argument("--check", action="store_true", help="compare the bundle with PyTorch after exporting")
    e.add_argument("--batchnorm", choices=BATCHNORM_MODES, help="how to export BatchNorm layers that keep running statistics: batch-stats = training-mode BatchNorm in every graph (statistics of each batch; the manifest says norm_state batch-stats). Without it such a model is refused")
    e.add_argument("--optimize", choices=OPTIMIZE_LEVELS, default="full",
                   help="graph simplification: full = torch.onnx's optimizer with onnxscript's pattern rewriter "
                        "(default); light = constant folding and clean-up only, several times faster to export for "
                        "large models (ResNet-18) at the cost of a few more shape ops")
    e.set_defaults(func=cmd_export)

    b = sub.add_parser("builtin", parents=[common], help="rebuild the prebuilt bundles into OUT/<name>")
    b.add_argument("--out", required=True, help="folder receiving the bundles, e.g. models/")
    b.add_argument("--only", help=f"comma-separated subset of: {', '.join(BUILTINS)}")
    b.add_argument("--roles", help="comma-separated subset of roles (default: all)")
    b.add_argument("--grad-weight", choices=GRAD_WEIGHT_IMPLS, default="matmul")
    b.add_argument("--check", action="store_true", help="compare each bundle with PyTorch after exporting")
    b.set_defaults(func=cmd_builtin)

    c = sub.add_parser("check", parents=[common], help="compare a bundle's graphs (ONNX Runtime) with PyTorch")
    c.add_argument("bundle", help="bundle folder")
    c.add_argument("--module", help="model file (default: what the bundle's export.json names)")
    c.add_argument("--class", dest="class_name", metavar="NAME", help="model class in --module")
    c.add_argument("--kwargs", help="JSON constructor arguments for --class")
    c.add_argument("--batches", default="3,7", help="batch sizes to test (default 3,7)")
    c.add_argument("--rtol", type=float, default=1e-4, help="relative tolerance (default 1e-4)")
    c.add_argument("--batchnorm", choices=BATCHNORM_MODES, help="with --module: the --batchnorm the bundle was exported with")
    c.set_defaults(func=cmd_check)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    previous = os.environ.get("DDLENS_EXPORT_VERBOSE")
    if args.verbose:
        os.environ["DDLENS_EXPORT_VERBOSE"] = "1"  # read by export._quiet too
    try:
        return args.func(args)
    except (UserInputError, ValueError, NotImplementedError, ExportError) as e:
        # Problems with the user's input or model: one clear paragraph, no traceback (an
        # ExportError names the module, the op and what to use instead).
        if os.environ.get("DDLENS_EXPORT_VERBOSE"):
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        if args.verbose:
            if previous is None:
                os.environ.pop("DDLENS_EXPORT_VERBOSE", None)
            else:
                os.environ["DDLENS_EXPORT_VERBOSE"] = previous


if __name__ == "__main__":
    sys.exit(main())
