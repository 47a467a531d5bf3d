"""Model bundles (``ddl_bundle_*``): open, describe, forward and gradient on caller batches."""

from __future__ import annotations

import os
from ctypes import byref, c_float, c_int64, c_size_t
from typing import TYPE_CHECKING, Any, Dict, Literal, Optional, Tuple, Union, overload

import numpy as np

from ._core import Handle, as_array, cstr, fptr, out_ptr, take_json
from ._lib import lib
from .errors import check, invalid

if TYPE_CHECKING:
    from .params import Params


class Bundle(Handle):
    """An opened, validated model bundle (ONNX graphs with parameters as inputs).

    Immutable: every method may run on one bundle from several threads at once.

    >>> bundle = Bundle("convnet3-1x28x28")     # a name in models/ (or DDLENS_MODELS), or a folder
    """

    _free = staticmethod(lib.ddl_bundle_free)

    def __init__(self, path_or_name: Union[str, "os.PathLike[str]"]) -> None:
        """Opens the bundle folder ``path_or_name``, or the bundle of that name in ``models/``.

        Raises :class:`~ddlens.errors.RuntimeNotInitializedError` before
        :func:`ddlens.init_runtime`, :class:`~ddlens.errors.NotFoundError` for an unknown path
        or name, :class:`~ddlens.errors.BundleError` for a malformed bundle.
        """
        if path_or_name is None:
            raise invalid("`path_or_name` is None; give a bundle folder or name")
        out = out_ptr()
        check(lib.ddl_bundle_open(cstr(path_or_name, "path_or_name"), byref(out)))
        super().__init__(out.value)  # type: ignore[arg-type]

    def describe(self) -> Dict[str, Any]:
        """The manifest summary: name, input shape, classes, parameters (the flat order), roles..."""
        out = out_ptr()
        check(lib.ddl_bundle_describe(self.ptr, byref(out)))
        return take_json(out)

    @property
    def input_shape(self) -> Tuple[int, int, int]:
        """Shape ``(C, H, W)`` of one example."""
        c, h, w = c_size_t(), c_size_t(), c_size_t()
        check(lib.ddl_bundle_input_shape(self.ptr, byref(c), byref(h), byref(w)))
        return (c.value, h.value, w.value)

    def _size(self, fn: Any) -> int:
        n = c_size_t()
        check(fn(self.ptr, byref(n)))
        return n.value

    @property
    def num_classes(self) -> int:
        """Number of classes (logits)."""
        return self._size(lib.ddl_bundle_num_classes)

    @property
    def feature_dim(self) -> int:
        """Size of the penultimate feature vector."""
        return self._size(lib.ddl_bundle_feature_dim)

    @property
    def num_parameters(self) -> int:
        """Total number of scalar parameters (the length of a flat parameter vector)."""
        return self._size(lib.ddl_bundle_num_parameters)

    def normalization(self) -> Tuple[np.ndarray, np.ndarray]:
        """Per-channel ``(mean, std)`` (float32 arrays of C values): ``x = (pixel/255 - mean) / std``."""
        c = self.input_shape[0]
        mean = np.empty(c, np.float32)
        std = np.empty(c, np.float32)
        check(lib.ddl_bundle_normalization(self.ptr, fptr(mean, c_float), fptr(std, c_float), c))
        return mean, std

    def _batch(self, x: Any, name: str = "x") -> np.ndarray:
        arr = as_array(x, name, [np.float32], ndim=4)
        if tuple(arr.shape[1:]) != self.input_shape:
            raise invalid(
                f"`{name}` must have shape (N, {', '.join(map(str, self.input_shape))}) for this "
                f"bundle, got {tuple(arr.shape)}"
            )
        return arr

    @overload
    def forward(self, params: "Params", x: Any, features: Literal[False] = ...) -> np.ndarray: ...

    @overload
    def forward(self, params: "Params", x: Any, features: Literal[True]) -> Tuple[np.ndarray, np.ndarray]: ...

    def forward(self, params: "Params", x: Any, features: bool = False) -> Any:
        """Runs the model on a batch.

        Args:
            params: the parameters to use.
            x: ``(N, C, H, W)`` normalised images (float32, or any float array/tensor).
            features: also return the ``(N, feature_dim)`` penultimate features.

        Returns:
            ``(N, num_classes)`` logits, or ``(logits, features)`` with ``features=True``.
        """
        xs = self._batch(x)
        n = xs.shape[0]
        logits = np.empty((n, self.num_classes), np.float32)
        feats = np.empty((n, self.feature_dim), np.float32) if features else None
        check(
            lib.ddl_bundle_forward(
                self.ptr,
                params.ptr,
                fptr(xs, c_float),
                n,
                fptr(logits, c_float),
                logits.size,
                fptr(feats, c_float),
                0 if feats is None else feats.size,
            )
        )
        return (logits, feats) if features else logits

    def grad(
        self, params: "Params", x: Any, y: Any, weights: Optional[Any] = None
    ) -> Tuple[float, np.ndarray]:
        """Weighted mean cross-entropy ``(1/N) sum_i w_i ce_i`` and its flat gradient.

        Args:
            params: the parameters.
            x: ``(N, C, H, W)`` normalised images.
            y: ``N`` integer labels in ``0..num_classes``.
            weights: ``N`` per-example weights, or ``None`` for all ones.

        Returns:
            ``(loss, grad)`` with ``grad`` a float32 vector in the flat parameter order.
        """
        xs = self._batch(x)
        n = xs.shape[0]
        ys = as_array(y, "y", [np.int64], ndim=1)
        if ys.shape[0] != n:
            raise invalid(f"`y` must hold {n} labels (one per image), got {ys.shape[0]}")
        ws = None
        if weights is not None:
            ws = as_array(weights, "weights", [np.float32], ndim=1)
            if ws.shape[0] != n:
                raise invalid(f"`weights` must hold {n} values (one per image), got {ws.shape[0]}")
        loss = c_float()
        g = np.empty(self.num_parameters, np.float32)
        check(
            lib.ddl_bundle_grad(
                self.ptr,
                params.ptr,
                fptr(xs, c_float),
                fptr(ys, c_int64),
                fptr(ws, c_float),
                n,
                byref(loss),
                fptr(g, c_float),
                g.size,
            )
        )
        return float(loss.value), g
