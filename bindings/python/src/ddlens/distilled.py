"""Distilled sets (``ddl_distilled_*``): read, write, create from arrays or tensors."""

from __future__ import annotations

import math
import os
from ctypes import byref, c_bool, c_float
from typing import Any, Dict, Mapping, Optional, Union

from ._core import Handle, cstr, json_arg, out_ptr, take_json
from ._lib import lib
from .dataset import Dataset
from .errors import check, invalid

PathLike = Union[str, "os.PathLike[str]"]


class DistilledSet(Handle):
    """A distilled set: a dataset, an optional learned learning rate and metadata.

    Immutable once created: every method may run concurrently on one set.
    """

    _free = staticmethod(lib.ddl_distilled_free)

    @classmethod
    def read(cls, path: PathLike) -> "DistilledSet":
        """Reads a set: a ddlens safetensors file, an ``.npz`` (``images``, ``labels``), an
        ``.npy`` of images with ``labels.npy`` beside it, or ``"zoo:NAME"`` (a set of the zoo)."""
        if path is None:
            raise invalid("`path` is None")
        out = out_ptr()
        check(lib.ddl_distilled_read(cstr(path, "path"), byref(out)))
        return cls._adopt(out.value)

    @classmethod
    def create(
        cls,
        data: Dataset,
        lr: Optional[float] = None,
        meta: Optional[Union[Mapping[str, Any], str]] = None,
    ) -> "DistilledSet":
        """A set from a dataset (copied), an optional learned learning rate and metadata.

        ``meta`` is a dict (or JSON text) with any of ``"method"``, ``"ipc"``, ``"dataset"``,
        ``"model"``, ``"seed"`` and ``"extra"`` (a dict of strings).
        """
        lr_arg = None
        if lr is not None:
            if not isinstance(lr, (int, float)) or not math.isfinite(lr):
                raise invalid(f"`lr` must be a finite number or None, got {lr!r}")
            lr_arg = byref(c_float(lr))
        out = out_ptr()
        check(lib.ddl_distilled_create(data.ptr, lr_arg, json_arg(meta, "meta"), byref(out)))
        return cls._adopt(out.value)

    @classmethod
    def from_arrays(
        cls,
        images: Any,
        labels: Any,
        num_classes: Optional[int] = None,
        lr: Optional[float] = None,
        meta: Optional[Union[Mapping[str, Any], str]] = None,
        mean: Optional[Any] = None,
        std: Optional[Any] = None,
    ) -> "DistilledSet":
        """A set straight from ``(N, C, H, W)`` images and ``N`` labels (arrays or tensors).

        The images are normalised already unless ``mean`` and ``std`` are given (see
        :meth:`Dataset.from_memory`, which reads them without an extra copy).
        """
        with Dataset.from_memory(images, labels, num_classes, mean, std, name="distilled") as d:
            return cls.create(d, lr=lr, meta=meta)

    def write(self, path: PathLike) -> None:
        """Writes the set to ``path`` (safetensors, atomically)."""
        if path is None:
            raise invalid("`path` is None")
        check(lib.ddl_distilled_write(self.ptr, cstr(path, "path")))

    def data(self) -> Dataset:
        """The images and labels as a new :class:`Dataset` (e.g. to train on)."""
        out = out_ptr()
        check(lib.ddl_distilled_data(self.ptr, byref(out)))
        return Dataset._adopt(out.value)

    @property
    def lr(self) -> Optional[float]:
        """The learned learning rate, or ``None`` when the set carries none."""
        has = c_bool()
        value = c_float()
        check(lib.ddl_distilled_lr(self.ptr, byref(has), byref(value)))
        return float(value.value) if has.value else None

    def describe(self) -> Dict[str, Any]:
        """Metadata and shape: ``{"method", "ipc", "dataset", "model", "seed", "extra", "lr",
        "len", "input_shape", "num_classes", "class_counts"}``."""
        out = out_ptr()
        check(lib.ddl_distilled_describe(self.ptr, byref(out)))
        return take_json(out)

    def __len__(self) -> int:
        return int(self.describe()["len"])


__all__ = ["DistilledSet"]
