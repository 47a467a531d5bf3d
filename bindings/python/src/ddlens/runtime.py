"""The library version and the ONNX Runtime set-up (``ddl_version``, ``ddl_runtime_*``)."""

from __future__ import annotations

from typing import Any, Dict, Optional, Union
import os

from ._core import cstr, out_ptr, take_json, uint
from ._lib import lib
from .errors import check, invalid

#: Execution providers (``DDL_PROVIDER_*``).
DDL_PROVIDER_AUTO = 0
DDL_PROVIDER_CPU = 1
DDL_PROVIDER_CUDA = 2

PROVIDERS: Dict[str, int] = {"auto": DDL_PROVIDER_AUTO, "cpu": DDL_PROVIDER_CPU, "cuda": DDL_PROVIDER_CUDA}


def version() -> str:
    """The loaded library's version, e.g. ``"0.1.0"``."""
    return lib.ddl_version().decode()


def init_runtime(
    library: Optional[Union[str, "os.PathLike[str]"]] = None,
    provider: str = "auto",
    threads: int = 0,
) -> None:
    """Sets ONNX Runtime up for the process; call it once before opening bundles.

    Args:
        library: path of ``libonnxruntime.so``; ``None`` searches (``DDLENS_ORT_LIB``,
            ``ORT_DYLIB_PATH``, the project's ``.ddlens/onnxruntime``, python3's onnxruntime).
        provider: ``"auto"`` (CUDA when it really works), ``"cpu"`` or ``"cuda"``.
        threads: worker threads for graph calls; 0 = one per available core.

    Calling it again with the same settings does nothing; other settings raise
    :class:`~ddlens.errors.RuntimeConfigError` (one environment per process).
    """
    if provider not in PROVIDERS:
        raise invalid(f"`provider` must be 'auto', 'cpu' or 'cuda', got {provider!r}")
    check(lib.ddl_runtime_init(cstr(library, "library"), PROVIDERS[provider], uint(threads, "threads", 32)))


def runtime_initialized() -> bool:
    """Whether :func:`init_runtime` has succeeded in this process."""
    return bool(lib.ddl_runtime_is_initialized())


def runtime_info() -> Dict[str, Any]:
    """The runtime's description: library, ONNX Runtime version, provider in use, threads...

    Raises :class:`~ddlens.errors.RuntimeNotInitializedError` before :func:`init_runtime`.
    """
    out = out_ptr()
    check(lib.ddl_runtime_describe(out))
    return take_json(out)
