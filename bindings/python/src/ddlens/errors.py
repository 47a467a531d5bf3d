"""Exceptions: one class per ``DdlStatus``, all subclasses of :class:`DdlError`.

A failing call raises the class of its status, carrying the status value (``.status``), its
name (``.status_name``, e.g. ``"DDL_STATUS_NOT_FOUND"``) and the library's message
(``.message``, read with ``ddl_last_error`` on the calling thread right after the call).
"""

from __future__ import annotations

from typing import Dict, Type

from ._lib import lib

# DdlStatus values (include/ddlens.h; append-only, checked against the header by
# tests/ffi/bindings.rs).
DDL_STATUS_OK = 0
DDL_STATUS_NULL_ARGUMENT = 1
DDL_STATUS_INVALID_ARGUMENT = 2
DDL_STATUS_BUFFER_TOO_SMALL = 3
DDL_STATUS_NOT_FOUND = 4
DDL_STATUS_IO = 5
DDL_STATUS_RUNTIME_NOT_INITIALIZED = 6
DDL_STATUS_RUNTIME_NOT_FOUND = 7
DDL_STATUS_RUNTIME_CONFIG = 8
DDL_STATUS_PROVIDER = 9
DDL_STATUS_BUNDLE = 10
DDL_STATUS_MISSING_ROLE = 11
DDL_STATUS_DATA = 12
DDL_STATUS_ORT = 13
DDL_STATUS_CANCELLED = 14
DDL_STATUS_PANIC = 15
DDL_STATUS_INTERNAL = 16


class DdlError(Exception):
    """A failed ddlens call.

    Attributes:
        status: the ``DDL_STATUS_*`` value.
        status_name: its name, e.g. ``"DDL_STATUS_NOT_FOUND"``.
        message: the library's message, naming the function and the argument at fault.
    """

    #: The status this class stands for (-1 on the base class, which takes it as an argument).
    STATUS: int = -1

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status: int = self.STATUS if status is None else status
        self.status_name: str = status_name(self.status)
        self.message: str = message
        super().__init__(f"{self.status_name}: {message}")


class NullArgumentError(DdlError, ValueError):
    """A required argument was missing (``DDL_STATUS_NULL_ARGUMENT``)."""

    STATUS = DDL_STATUS_NULL_ARGUMENT


class InvalidArgumentError(DdlError, ValueError):
    """An argument has a bad value, size, shape or type (``DDL_STATUS_INVALID_ARGUMENT``)."""

    STATUS = DDL_STATUS_INVALID_ARGUMENT


class BufferTooSmallError(DdlError):
    """An output buffer was too small (``DDL_STATUS_BUFFER_TOO_SMALL``)."""

    STATUS = DDL_STATUS_BUFFER_TOO_SMALL


class NotFoundError(DdlError):
    """A file or folder named by an argument does not exist (``DDL_STATUS_NOT_FOUND``)."""

    STATUS = DDL_STATUS_NOT_FOUND


class DdlIOError(DdlError):
    """Reading or writing a file failed (``DDL_STATUS_IO``)."""

    STATUS = DDL_STATUS_IO


class RuntimeNotInitializedError(DdlError):
    """:func:`ddlens.init_runtime` has not been called yet (``DDL_STATUS_RUNTIME_NOT_INITIALIZED``)."""

    STATUS = DDL_STATUS_RUNTIME_NOT_INITIALIZED


class RuntimeNotFoundError(DdlError):
    """The ONNX Runtime library was not found (``DDL_STATUS_RUNTIME_NOT_FOUND``)."""

    STATUS = DDL_STATUS_RUNTIME_NOT_FOUND


class RuntimeConfigError(DdlError):
    """The runtime is already set up with other settings (``DDL_STATUS_RUNTIME_CONFIG``)."""

    STATUS = DDL_STATUS_RUNTIME_CONFIG


class ProviderError(DdlError):
    """The requested execution provider cannot be used (``DDL_STATUS_PROVIDER``)."""

    STATUS = DDL_STATUS_PROVIDER


class BundleError(DdlError):
    """A model bundle is malformed (``DDL_STATUS_BUNDLE``)."""

    STATUS = DDL_STATUS_BUNDLE


class MissingRoleError(DdlError):
    """The bundle lacks a graph role the computation needs (``DDL_STATUS_MISSING_ROLE``)."""

    STATUS = DDL_STATUS_MISSING_ROLE


class DataError(DdlError):
    """A dataset or data file is missing pieces, malformed or inconsistent (``DDL_STATUS_DATA``)."""

    STATUS = DDL_STATUS_DATA


class OrtError(DdlError):
    """ONNX Runtime failed while running a graph (``DDL_STATUS_ORT``)."""

    STATUS = DDL_STATUS_ORT


class CancelledError(DdlError):
    """The progress callback asked to stop; no result was produced (``DDL_STATUS_CANCELLED``).

    A Ctrl-C during a long call raises :class:`KeyboardInterrupt` instead, with this error as
    its ``__cause__``.
    """

    STATUS = DDL_STATUS_CANCELLED


class PanicError(DdlError):
    """A bug inside ddlens (``DDL_STATUS_PANIC``); please report the message."""

    STATUS = DDL_STATUS_PANIC


class InternalError(DdlError):
    """An internal failure that is not the caller's fault (``DDL_STATUS_INTERNAL``)."""

    STATUS = DDL_STATUS_INTERNAL


#: The exception class of each known status.
ERROR_CLASSES: Dict[int, Type[DdlError]] = {
    cls.STATUS: cls
    for cls in (
        NullArgumentError,
        InvalidArgumentError,
        BufferTooSmallError,
        NotFoundError,
        DdlIOError,
        RuntimeNotInitializedError,
        RuntimeNotFoundError,
        RuntimeConfigError,
        ProviderError,
        BundleError,
        MissingRoleError,
        DataError,
        OrtError,
        CancelledError,
        PanicError,
        InternalError,
    )
}


def status_name(status: int) -> str:
    """The name of a status value (``"DDL_STATUS_UNKNOWN"`` for values the library does not know)."""
    if not 0 <= status < 2**32:
        return "DDL_STATUS_UNKNOWN"
    return lib.ddl_status_name(status).decode()


def last_error() -> str:
    """The message of the last failing ddlens call on the calling thread (``""`` if none)."""
    return lib.ddl_last_error().decode("utf-8", "replace")


def error_for(status: int, message: str | None = None) -> DdlError:
    """The exception for a failing ``status`` with ``message`` (default: the thread's last error)."""
    cls = ERROR_CLASSES.get(status, DdlError)
    return cls(last_error() if message is None else message, status)


def check(status: int) -> None:
    """Raises the exception of ``status`` unless it is ``DDL_STATUS_OK``.

    Called right after the C call, on the same thread, so the message is that call's.
    """
    if status != DDL_STATUS_OK:
        raise error_for(status)


def invalid(message: str) -> InvalidArgumentError:
    """An :class:`InvalidArgumentError` raised by the wrapper itself (a check it can make in Python)."""
    return InvalidArgumentError(message)
