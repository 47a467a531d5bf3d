"""Loading a user's model class from a Python file anywhere on disk."""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import json
import sys
from pathlib import Path
from typing import Any

from torch import nn


class UserInputError(ValueError):
    """A problem with what the user passed (file, class, arguments); the CLI prints it plainly."""


def parse_kwargs(text: str | None) -> dict[str, Any]:
    """``--kwargs`` JSON object -> dict."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserInputError(f"--kwargs {text!r} is not valid JSON: {e}") from e
    if not isinstance(value, dict):
        raise UserInputError(f"--kwargs must be a JSON object like '{{\"width\": 64}}', got {text!r}")
    return value


def load_module_file(path: str | Path):
    """Imports a Python file by path (its folder is put on ``sys.path`` so that it can import
    its siblings)."""
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise UserInputError(f"--module {path}: no such file")
    # A unique module name per path, so two files called model.py do not collide.
    name = f"ddlens_user_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UserInputError(f"--module {path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        del sys.modules[name]
        raise UserInputError(f"--module {path}: importing it failed: {type(e).__name__}: {e}") from e
    return module


def build_user_model(path: str | Path, class_name: str, kwargs: dict[str, Any]) -> nn.Module:
    """Instantiates ``class_name(**kwargs)`` from the file at ``path``."""
    module = load_module_file(path)
    cls = getattr(module, class_name, None)
    if cls is None:
        found = [n for n, v in vars(module).items()
                 if inspect.isclass(v) and issubclass(v, nn.Module) and v.__module__ == module.__name__]
        raise UserInputError(
            f"--class {class_name}: {path} defines no such class (nn.Module classes found: {', '.join(found) or 'none'})"
        )
    if not (inspect.isclass(cls) and issubclass(cls, nn.Module)):
        raise UserInputError(f"--class {class_name}: in {path} it is not a torch.nn.Module subclass")
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise UserInputError(f"--class {class_name} --kwargs {json.dumps(kwargs)}: constructing it failed: {e}") from e


def model_from_source(source: dict[str, Any], where: str) -> nn.Module:
    """Rebuilds the module an ``export.json`` describes (a builtin name or a user file), in the
    BatchNorm form it was exported with (``batchnorm``)."""
    from .builtin import BUILTINS

    if "builtin" in source:
        name = source["builtin"]
        if name not in BUILTINS:
            raise UserInputError(f"{where}: unknown builtin model {name!r}")
        return BUILTINS[name].build()
    if "module" in source and "class" in source:
        from .manifest import apply_batchnorm

        model = build_user_model(source["module"], source["class"], source.get("kwargs", {}))
        return apply_batchnorm(model, source.get("batchnorm"))
    raise UserInputError(f"{where}: expected a `builtin` name or `module` + `class`")
