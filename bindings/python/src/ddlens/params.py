"""Model parameters (``ddl_params_*``): fresh, from a flat vector or a file; get and set tensors."""

from __future__ import annotations

import os
from ctypes import byref, c_float, c_size_t
from typing import Any, Dict, Tuple, Union

import numpy as np

from ._core import Handle, as_array, cstr, fptr, out_ptr, take_json, uint
from ._lib import lib
from .bundle import Bundle
from .errors import check, invalid

PathLike = Union[str, "os.PathLike[str]"]


class Params(Handle):
    """A set of model parameters, independent of the bundle it came from.

    Read-only methods may run concurrently on one object; :meth:`set_flat`,
    :meth:`set_tensor` and :meth:`close` need exclusive use.
    """

    _free = staticmethod(lib.ddl_params_free)

    @classmethod
    def init(cls, bundle: Bundle, seed: int = 0) -> "Params":
        """A fresh initialisation (PyTorch's default initialisers) drawn from ``seed``."""
        out = out_ptr()
        check(lib.ddl_params_init(bundle.ptr, uint(seed, "seed"), byref(out)))
        return cls._adopt(out.value)

    @classmethod
    def from_flat(cls, bundle: Bundle, values: Any) -> "Params":
        """Parameters from a flat vector of ``bundle.num_parameters`` floats (copied)."""
        v = as_array(values, "values", [np.float32], ndim=1)
        out = out_ptr()
        check(lib.ddl_params_from_flat(bundle.ptr, fptr(v, c_float), v.size, byref(out)))
        return cls._adopt(out.value)

    @classmethod
    def load(cls, bundle: Bundle, path: PathLike) -> "Params":
        """Reads a safetensors parameter file (as :meth:`save` or PyTorch with the manifest's names writes)."""
        if path is None:
            raise invalid("`path` is None")
        out = out_ptr()
        check(lib.ddl_params_load(bundle.ptr, cstr(path, "path"), byref(out)))
        return cls._adopt(out.value)

    def save(self, bundle: Bundle, path: PathLike) -> None:
        """Writes the parameters to a safetensors file (atomically), named by ``bundle``'s manifest."""
        if path is None:
            raise invalid("`path` is None")
        check(lib.ddl_params_save(bundle.ptr, self.ptr, cstr(path, "path")))

    def clone(self) -> "Params":
        """A copy in a new handle."""
        out = out_ptr()
        check(lib.ddl_params_clone(self.ptr, byref(out)))
        return type(self)._adopt(out.value)

    @property
    def numel(self) -> int:
        """Total number of scalars (the flat length)."""
        n = c_size_t()
        check(lib.ddl_params_numel(self.ptr, byref(n)))
        return n.value

    def __len__(self) -> int:
        return self.numel

    def flat(self) -> np.ndarray:
        """All values as a new float32 vector, in the manifest's flat order."""
        v = np.empty(self.numel, np.float32)
        check(lib.ddl_params_get_flat(self.ptr, fptr(v, c_float), v.size))
        return v

    def set_flat(self, values: Any) -> None:
        """Overwrites all values from a flat vector of exactly :attr:`numel` floats."""
        v = as_array(values, "values", [np.float32]).reshape(-1)
        check(lib.ddl_params_set_flat(self.ptr, fptr(v, c_float), v.size))

    def tensor_shape(self, name: str) -> Tuple[int, ...]:
        """The shape of the tensor called ``name`` (e.g. ``"conv0.weight"``)."""
        ndim = c_size_t()
        key = cstr(name, "name")
        status = lib.ddl_params_tensor_shape(self.ptr, key, None, 0, byref(ndim))
        if status != 3:  # DDL_STATUS_BUFFER_TOO_SMALL is the expected answer when asking the rank
            check(status)
        shape = np.empty(max(ndim.value, 1), np.uintp)
        check(lib.ddl_params_tensor_shape(self.ptr, key, fptr(shape, c_size_t), shape.size, byref(ndim)))
        return tuple(int(d) for d in shape[: ndim.value])

    def tensor(self, name: str) -> np.ndarray:
        """A copy of the tensor called ``name``, shaped as in the manifest."""
        t = np.empty(self.tensor_shape(name), np.float32)
        check(lib.ddl_params_get_tensor(self.ptr, cstr(name, "name"), fptr(t, c_float), t.size))
        return t

    def set_tensor(self, name: str, values: Any) -> None:
        """Overwrites the tensor called ``name`` from exactly as many floats as it has."""
        v = as_array(values, "values", [np.float32])
        check(lib.ddl_params_set_tensor(self.ptr, cstr(name, "name"), fptr(v, c_float), v.size))

    def describe(self) -> Dict[str, Any]:
        """``{"numel", "params": [{"name", "shape"}...]}`` in flat order."""
        out = out_ptr()
        check(lib.ddl_params_describe(self.ptr, byref(out)))
        return take_json(out)

    def tensors(self) -> Dict[str, np.ndarray]:
        """Every tensor by name (copies), in flat order: e.g. for ``torch.nn.Module.load_state_dict``."""
        return {p["name"]: self.tensor(p["name"]) for p in self.describe()["params"]}
