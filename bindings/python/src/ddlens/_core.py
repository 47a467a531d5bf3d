"""Shared machinery: handle ownership, library strings, arrays in and out, progress and Ctrl-C."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import threading
from ctypes import POINTER, c_void_p
from typing import Any, Callable, Optional, Sequence, Tuple, Type, TypeVar

import numpy as np

from ._lib import PROGRESS_FN, lib
from .errors import DDL_STATUS_CANCELLED, DDL_STATUS_OK, CancelledError, check, error_for, invalid

#: A progress callback: ``progress(stage, done, total)``; returning ``False`` cancels the call
#: (any other return value, ``None`` included, lets it go on).
Progress = Callable[[str, int, int], Optional[bool]]


H = TypeVar("H", bound="Handle")


class Handle:
    """Owner of one C handle, freed once by :meth:`close`, the context manager or ``__del__``.

    Thread-safety is the C API's (docs/c-api.md): read-only methods may run concurrently on one
    object; setters and :meth:`close` need exclusive use of it.
    """

    _free: Callable[[Optional[int]], None]
    _kind: str = "handle"

    def __init__(self, ptr: int) -> None:
        if not ptr:
            raise invalid(f"{type(self).__name__}: NULL handle")
        self._ptr: Optional[int] = ptr

    @classmethod
    def _adopt(cls: Type[H], ptr: Optional[int]) -> H:
        """Takes ownership of a handle a C call returned."""
        obj = cls.__new__(cls)
        Handle.__init__(obj, ptr)  # type: ignore[arg-type]
        return obj

    @property
    def ptr(self) -> int:
        """The C handle (still owned by this object); raises if it was closed."""
        p = self._ptr
        if p is None:
            raise invalid(f"this {type(self).__name__} was closed")
        return p

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has released the handle."""
        return self._ptr is None

    def close(self) -> None:
        """Releases the C handle now; calling it again does nothing."""
        p, self._ptr = getattr(self, "_ptr", None), None
        if p is not None:
            type(self)._free(p)

    def __enter__(self: H) -> H:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: the library may be gone already
            pass

    def __repr__(self) -> str:
        state = "closed" if self._ptr is None else hex(self._ptr)
        return f"<ddlens.{type(self).__name__} {state}>"


def out_ptr() -> c_void_p:
    """A NULL ``void*`` to pass by reference as a handle or string output."""
    return c_void_p()


def take_string(p: c_void_p) -> str:
    """Copies a library string and frees it (``""`` for NULL)."""
    if not p.value:
        return ""
    try:
        return ctypes.string_at(p.value).decode("utf-8")
    finally:
        lib.ddl_string_free(p)


def take_json(p: c_void_p) -> Any:
    """Parses a library JSON string and frees it (``None`` for NULL)."""
    text = take_string(p)
    return json.loads(text) if text else None


def cstr(value: Optional[str], name: str) -> Optional[bytes]:
    """A ``str`` (or path) as UTF-8 bytes for a ``const char*``; ``None`` stays NULL."""
    if value is None:
        return None
    try:
        return os.fsencode(value) if not isinstance(value, str) else value.encode("utf-8")
    except TypeError:
        raise invalid(f"`{name}` must be a string or a path, got {type(value).__name__}") from None


def json_arg(value: Any, name: str) -> Optional[bytes]:
    """Settings given as a ``dict`` (serialised) or as JSON text; ``None`` stays NULL."""
    if value is None:
        return None
    if isinstance(value, (bytes, str)):
        return value.encode("utf-8") if isinstance(value, str) else value
    try:
        return json.dumps(value).encode("utf-8")
    except TypeError as e:
        raise invalid(f"`{name}` must be a dict or a JSON string: {e}") from None


def uint(value: Any, name: str, bits: int = 64) -> int:
    """A non-negative integer below ``2**bits``, or an error naming the argument."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise invalid(f"`{name}` must be an integer, got {type(value).__name__}")
    v = int(value)
    if not 0 <= v < 2**bits:
        raise invalid(f"`{name}` must be in 0..2^{bits}, got {v}")
    return v


def as_array(x: Any, name: str, dtypes: Sequence[Any], ndim: Optional[int] = None) -> np.ndarray:
    """``x`` as a C-contiguous NumPy array of one of ``dtypes``, without a copy when it already is.

    Accepts NumPy arrays, anything with ``__array_interface__`` / ``__array__`` and objects with
    ``__dlpack__`` (PyTorch CPU tensors, detached first when they require grad). A dtype outside
    ``dtypes`` is converted to the first of them when that is safe (float to float32, integer to
    int64...), which copies; the error names ``name`` otherwise.
    """
    if x is None:
        raise invalid(f"`{name}` is None; an array is required")
    arr: Optional[np.ndarray] = None
    if isinstance(x, np.ndarray):
        arr = x
    elif hasattr(x, "__dlpack__") and not hasattr(x, "__array_interface__"):
        if getattr(x, "requires_grad", False) and hasattr(x, "detach"):
            x = x.detach()
        try:
            arr = np.from_dlpack(x)
        except (BufferError, RuntimeError, TypeError, ValueError) as e:
            device = getattr(x, "device", None)
            raise invalid(
                f"`{name}` cannot be read through DLPack ({e}); ddlens needs host memory"
                + (f", the tensor is on `{device}` (use .cpu())" if device is not None else "")
            ) from None
    if arr is None:
        try:
            arr = np.asarray(x)
        except Exception as e:
            raise invalid(f"`{name}` is not an array ({type(x).__name__}): {e}") from None
    wanted = [np.dtype(d) for d in dtypes]
    if arr.dtype not in wanted:
        target = wanted[0]
        same_kind = (target.kind == "f" and arr.dtype.kind in "fiu") or (
            target.kind in "iu" and arr.dtype.kind in "iu"
        )
        if not same_kind:
            names = " or ".join(str(d) for d in wanted)
            raise invalid(f"`{name}` must hold {names} values, got dtype {arr.dtype}")
        arr = arr.astype(target)
    arr = np.ascontiguousarray(arr)
    if ndim is not None and arr.ndim != ndim:
        raise invalid(f"`{name}` must have {ndim} dimensions, got shape {tuple(arr.shape)}")
    return arr


def fptr(arr: Optional[np.ndarray], ctype: Any) -> Any:
    """The data pointer of a contiguous array as ``ctype*`` (NULL for ``None``)."""
    if arr is None:
        return None
    return arr.ctypes.data_as(POINTER(ctype))


class _Interrupt:
    """A SIGINT handler installed for the duration of one long call on the main thread.

    ctypes releases the GIL during the foreign call, so Python only sees the signal when the
    progress callback runs Python code again; this handler then records it and the callback
    returns nonzero, which makes the library stop and return ``DDL_STATUS_CANCELLED``.
    """

    def __init__(self) -> None:
        self.hit = False
        self.previous: Any = None
        self.installed = False

    def __enter__(self) -> "_Interrupt":
        if threading.current_thread() is threading.main_thread():
            try:
                self.previous = signal.signal(signal.SIGINT, self._handler)
                self.installed = True
            except (ValueError, OSError):  # not the main interpreter, or no signals here
                self.installed = False
        return self

    def _handler(self, signum: int, frame: Any) -> None:
        self.hit = True

    def __exit__(self, *exc: Any) -> None:
        if self.installed:
            # `None`: the previous handler was not installed from Python; Python's is the default.
            previous = signal.default_int_handler if self.previous is None else self.previous
            signal.signal(signal.SIGINT, previous)


def call_with_progress(
    what: str,
    fn: Callable[..., int],
    args_before: Tuple[Any, ...],
    args_after: Tuple[Any, ...],
    progress: Optional[Progress],
    stages: bool = False,
) -> None:
    """Runs a long C call ``fn(*args_before, callback, NULL, *args_after)`` and checks its status.

    ``progress(stage, done, total)`` is called on this thread before the first step and after
    each; ``stage`` is ``what`` (for analyses, whose counts restart with each stage,
    ``"<what>:<k>"`` with ``k`` counting from 1). Returning ``False`` cancels (raises
    :class:`~ddlens.errors.CancelledError`); an exception raised by ``progress`` cancels the
    call and is re-raised once it has returned. A Ctrl-C (SIGINT) on the main thread cancels the
    call too and raises :class:`KeyboardInterrupt` (from the ``CancelledError``).
    """
    if progress is not None and not callable(progress):
        raise invalid(f"`progress` must be callable, got {type(progress).__name__}")
    state: dict = {"error": None, "stage": 0, "last": None}

    with _Interrupt() as interrupt:

        def trampoline(_user: Any, done: int, total: int) -> int:
            if interrupt.hit:
                return 1
            if progress is None:
                return 0
            try:
                stage = what
                if stages:
                    if done == 0 or state["last"] is None or done < state["last"]:
                        state["stage"] += 1
                    stage = f"{what}:{state['stage']}"
                state["last"] = done
                keep_going = progress(stage, int(done), int(total))
            except BaseException as e:  # noqa: BLE001 - re-raised after the call
                state["error"] = e
                return 1
            if interrupt.hit:
                return 1
            return 1 if keep_going is False else 0

        callback = PROGRESS_FN(trampoline)
        status = fn(*args_before, callback, None, *args_after)
        message = None if status == DDL_STATUS_OK else error_for(status)

    if state["error"] is not None:
        raise state["error"]
    if interrupt.hit:
        cause = message if message is not None else CancelledError(f"{what}: interrupted")
        raise KeyboardInterrupt(f"ddlens {what} cancelled by Ctrl-C") from cause
    if message is not None:
        raise message
    check(status)


__all__ = [
    "Handle",
    "Progress",
    "as_array",
    "call_with_progress",
    "check",
    "cstr",
    "fptr",
    "json_arg",
    "out_ptr",
    "take_json",
    "take_string",
    "uint",
    "DDL_STATUS_CANCELLED",
]
