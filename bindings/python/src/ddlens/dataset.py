"""Datasets (``ddl_dataset_*``): benchmarks from files, arrays and tensors from memory, subsets."""

from __future__ import annotations

import os
from ctypes import byref, c_float, c_int64, c_size_t, c_void_p
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np

from ._core import Handle, as_array, cstr, fptr, out_ptr, take_json, uint
from ._lib import lib
from .errors import check, invalid

PathLike = Union[str, "os.PathLike[str]"]

#: Element types of caller memory (``DDL_DTYPE_*``).
DDL_DTYPE_F32 = 0
DDL_DTYPE_U8 = 1


class Dataset(Handle):
    """Labelled images: ``(N, C, H, W)`` float32 in normalised space and ``N`` int64 labels.

    Immutable once created: every method may run concurrently on one dataset.
    """

    _free = staticmethod(lib.ddl_dataset_free)

    @classmethod
    def from_memory(
        cls,
        images: Any,
        labels: Any,
        num_classes: Optional[int] = None,
        mean: Optional[Any] = None,
        std: Optional[Any] = None,
        name: Optional[str] = None,
    ) -> "Dataset":
        """A dataset copied from caller memory (read during the call, nothing kept after).

        Args:
            images: ``(N, C, H, W)`` array or tensor, float32 (any float is converted) or
                uint8 pixels; C-contiguous float32/uint8 memory is passed without a copy
                (NumPy arrays, PyTorch CPU tensors through DLPack).
            labels: ``N`` integer class ids in ``0..num_classes``.
            num_classes: number of classes; ``None`` takes ``max(labels) + 1``.
            mean, std: per-channel constants (``C`` floats each, both or neither, e.g.
                ``bundle.normalization()``) to normalise pixels as ``(p - mean) / std`` with
                ``p`` in ``[0, 1]`` (uint8: ``byte / 255``). Without them, float images are
                taken as already normalised and uint8 images become ``byte / 255``.
            name: used in messages (default ``"memory"``).
        """
        x = as_array(images, "images", [np.float32, np.uint8], ndim=4)
        y = as_array(labels, "labels", [np.int64], ndim=1)
        if num_classes is None:
            if y.size == 0:
                raise invalid("`num_classes` is needed when `labels` is empty")
            num_classes = int(y.max()) + 1
        if (mean is None) != (std is None):
            raise invalid("`mean` and `std` go together: give both or neither")
        m = s = None
        if mean is not None:
            m = as_array(mean, "mean", [np.float32], ndim=1)
            s = as_array(std, "std", [np.float32], ndim=1)
            if m.size != x.shape[1] or s.size != x.shape[1]:
                raise invalid(
                    f"`mean` and `std` must hold one value per channel ({x.shape[1]}), "
                    f"got {m.size} and {s.size}"
                )
        shape = np.asarray(x.shape, dtype=np.uintp)
        dtype = DDL_DTYPE_U8 if x.dtype == np.uint8 else DDL_DTYPE_F32
        out = out_ptr()
        check(
            lib.ddl_dataset_from_memory(
                c_void_p(x.ctypes.data),
                dtype,
                fptr(shape, c_size_t),
                4,
                fptr(y, c_int64),
                y.size,
                uint(num_classes, "num_classes"),
                fptr(m, c_float),
                fptr(s, c_float),
                cstr(name, "name"),
                byref(out),
            )
        )
        return cls._adopt(out.value)

    def __len__(self) -> int:
        n = c_size_t()
        check(lib.ddl_dataset_len(self.ptr, byref(n)))
        return n.value

    @property
    def num_classes(self) -> int:
        """Number of classes (labels lie in ``0..num_classes``)."""
        n = c_size_t()
        check(lib.ddl_dataset_num_classes(self.ptr, byref(n)))
        return n.value

    @property
    def input_shape(self) -> Tuple[int, int, int]:
        """Shape ``(C, H, W)`` of one example."""
        c, h, w = c_size_t(), c_size_t(), c_size_t()
        check(lib.ddl_dataset_input_shape(self.ptr, byref(c), byref(h), byref(w)))
        return (c.value, h.value, w.value)

    def images(self) -> np.ndarray:
        """The images as a new ``(N, C, H, W)`` float32 array (normalised), filled by the library."""
        x = np.empty((len(self), *self.input_shape), np.float32)
        check(lib.ddl_dataset_get_images(self.ptr, fptr(x, c_float), x.size))
        return x

    def labels(self) -> np.ndarray:
        """The labels as a new int64 vector."""
        y = np.empty(len(self), np.int64)
        check(lib.ddl_dataset_get_labels(self.ptr, fptr(y, c_int64), y.size))
        return y

    def class_balanced(self, per_class: int, seed: int = 0) -> "Dataset":
        """A random subset with ``per_class`` examples of every class (same seed, same subset)."""
        out = out_ptr()
        check(
            lib.ddl_dataset_class_balanced(
                self.ptr, uint(per_class, "per_class"), uint(seed, "seed"), byref(out)
            )
        )
        return type(self)._adopt(out.value)

    def select(self, indices: Any) -> "Dataset":
        """The examples at ``indices`` (0-based, repeats allowed), in that order."""
        idx = as_array(indices, "indices", [np.int64], ndim=1)
        if idx.size and idx.min() < 0:
            raise invalid(f"`indices` must be non-negative, got {int(idx.min())}")
        idx = idx.astype(np.uintp)
        out = out_ptr()
        check(lib.ddl_dataset_select(self.ptr, fptr(idx, c_size_t), idx.size, byref(out)))
        return type(self)._adopt(out.value)

    def describe(self) -> Dict[str, Any]:
        """``{"name", "len", "input_shape", "num_classes", "class_counts"}``."""
        out = out_ptr()
        check(lib.ddl_dataset_describe(self.ptr, byref(out)))
        return take_json(out)


def load_dataset(
    name: str, dir: Optional[PathLike] = None, split: str = "both"
) -> Any:
    """Loads a benchmark: ``"fashion-mnist"``, ``"mnist"`` or ``"cifar10"``, normalised.

    Args:
        name: the benchmark.
        dir: the folder with its standard files; ``None`` for the default (``DDLENS_DATA``, or
            the Debian package's folder for Fashion-MNIST).
        split: ``"both"`` returns ``(train, test)``; ``"train"`` or ``"test"`` one
            :class:`Dataset`.
    """
    if split not in ("both", "train", "test"):
        raise invalid(f"`split` must be 'both', 'train' or 'test', got {split!r}")
    if name is None:
        raise invalid("`name` is None")
    train, test = out_ptr(), out_ptr()
    check(
        lib.ddl_dataset_load(
            cstr(name, "name"),
            cstr(dir, "dir"),
            byref(train) if split in ("both", "train") else None,
            byref(test) if split in ("both", "test") else None,
        )
    )
    if split == "train":
        return Dataset._adopt(train.value)
    if split == "test":
        return Dataset._adopt(test.value)
    return Dataset._adopt(train.value), Dataset._adopt(test.value)
