"""Training configurations, training, evaluation and the standard evaluation."""

from __future__ import annotations

import math
from ctypes import byref, c_double, c_uint64
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ._core import Handle, Progress, call_with_progress, cstr, fptr, json_arg, out_ptr, take_json, uint
from ._lib import lib
from .bundle import Bundle
from .dataset import Dataset
from .errors import check, invalid
from .params import Params


def _finite(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise invalid(f"`{name}` must be a number, got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v):
        raise invalid(f"`{name}` must be finite, got {v}")
    return v


class TrainConfig(Handle):
    """A training recipe (SGD). Build one with :meth:`standard_eval`, :meth:`p_dist`,
    :meth:`p_real` or :meth:`from_json`, then adjust it with :meth:`configure` or the setters
    (each validates its value, names the field when it refuses it, and returns ``self``).

    Read-only methods may run concurrently on one object; setters and :meth:`close` need
    exclusive use.
    """

    _free = staticmethod(lib.ddl_train_config_free)

    @classmethod
    def standard_eval(cls, epochs: int = 300, lr: float = 0.01, train_size: int = 0, seed: int = 0) -> "TrainConfig":
        """The standard evaluation recipe: SGD ``lr``, momentum 0.9, weight decay 5e-4, batch
        256, ``epochs`` epochs, lr x0.1 at half of them, shuffling seeded by ``seed``."""
        out = out_ptr()
        check(
            lib.ddl_train_config_standard_eval(
                uint(epochs, "epochs"), _finite(lr, "lr"), uint(train_size, "train_size"), uint(seed, "seed"), byref(out)
            )
        )
        return cls._adopt(out.value)

    @classmethod
    def p_dist(cls, steps: int, seed: int = 0) -> "TrainConfig":
        """P_dist of the paper: full-batch SGD for ``steps`` steps, lr 0.01, momentum 0.9."""
        out = out_ptr()
        check(lib.ddl_train_config_p_dist(uint(steps, "steps"), uint(seed, "seed"), byref(out)))
        return cls._adopt(out.value)

    @classmethod
    def p_real(cls, epochs: int, seed: int = 0) -> "TrainConfig":
        """P_real of the paper: minibatch 256, lr 0.01, momentum 0.9, ``epochs`` epochs."""
        out = out_ptr()
        check(lib.ddl_train_config_p_real(uint(epochs, "epochs"), uint(seed, "seed"), byref(out)))
        return cls._adopt(out.value)

    @classmethod
    def from_json(cls, config: Union[str, Mapping[str, Any]]) -> "TrainConfig":
        """A configuration from the JSON :meth:`to_json` returns (a dict or its text)."""
        if config is None:
            raise invalid("`config` is None")
        out = out_ptr()
        check(lib.ddl_train_config_from_json(json_arg(config, "config"), byref(out)))
        return cls._adopt(out.value)

    def to_json(self) -> Dict[str, Any]:
        """Every field: epochs, max_steps, batch_size, lr, sgd, schedule, seed, augment."""
        out = out_ptr()
        check(lib.ddl_train_config_to_json(self.ptr, byref(out)))
        return take_json(out)

    def total_steps(self, train_size: int) -> int:
        """The number of updates a run on ``train_size`` examples makes."""
        n = c_uint64()
        check(lib.ddl_train_config_total_steps(self.ptr, uint(train_size, "train_size"), byref(n)))
        return n.value

    def set_epochs(self, epochs: int) -> "TrainConfig":
        """Number of epochs (at least 1)."""
        check(lib.ddl_train_config_set_epochs(self.ptr, uint(epochs, "epochs")))
        return self

    def set_max_steps(self, max_steps: Optional[int]) -> "TrainConfig":
        """Stop after ``max_steps`` updates; ``None`` or 0 removes the limit."""
        check(lib.ddl_train_config_set_max_steps(self.ptr, uint(max_steps or 0, "max_steps")))
        return self

    def set_batch_size(self, batch_size: Optional[int]) -> "TrainConfig":
        """Minibatch size; ``None`` or 0 trains full-batch."""
        check(lib.ddl_train_config_set_batch_size(self.ptr, uint(batch_size or 0, "batch_size")))
        return self

    def set_lr(self, lr: float) -> "TrainConfig":
        """Base learning rate (positive, finite)."""
        check(lib.ddl_train_config_set_lr(self.ptr, _finite(lr, "lr")))
        return self

    def set_momentum(self, momentum: float) -> "TrainConfig":
        """SGD momentum, in ``[0, 1)``."""
        check(lib.ddl_train_config_set_momentum(self.ptr, _finite(momentum, "momentum")))
        return self

    def set_weight_decay(self, weight_decay: float) -> "TrainConfig":
        """L2 weight decay (non-negative)."""
        check(lib.ddl_train_config_set_weight_decay(self.ptr, _finite(weight_decay, "weight_decay")))
        return self

    def set_seed(self, seed: int) -> "TrainConfig":
        """Seed of the shuffling order."""
        check(lib.ddl_train_config_set_seed(self.ptr, uint(seed, "seed")))
        return self

    def set_schedule_constant(self) -> "TrainConfig":
        """Keeps the learning rate constant."""
        check(lib.ddl_train_config_set_schedule_constant(self.ptr))
        return self

    def set_schedule_step(self, milestones: Sequence[int], gamma: float = 0.1) -> "TrainConfig":
        """Multiplies the learning rate by ``gamma`` from each of the update numbers ``milestones``."""
        m = np.asarray([uint(v, "milestones") for v in milestones], dtype=np.uint64)
        check(lib.ddl_train_config_set_schedule_step(self.ptr, fptr(m, c_uint64), m.size, _finite(gamma, "gamma")))
        return self

    def set_dsa(self, strategy: Optional[str]) -> "TrainConfig":
        """DSA augmentation of every minibatch (e.g. ``"color_crop_cutout_flip_scale_rotate"``);
        ``None``, ``""`` or ``"none"`` switches it off."""
        check(lib.ddl_train_config_set_dsa(self.ptr, cstr(strategy, "strategy")))
        return self

    _SETTERS = {
        "epochs": "set_epochs",
        "max_steps": "set_max_steps",
        "batch_size": "set_batch_size",
        "lr": "set_lr",
        "momentum": "set_momentum",
        "weight_decay": "set_weight_decay",
        "seed": "set_seed",
        "dsa": "set_dsa",
    }

    def configure(self, **settings: Any) -> "TrainConfig":
        """Applies several settings by name: ``epochs``, ``max_steps``, ``batch_size``, ``lr``,
        ``momentum``, ``weight_decay``, ``seed``, ``dsa``, and ``schedule`` (``"constant"`` or
        ``(milestones, gamma)``)."""
        for key, value in settings.items():
            if key == "schedule":
                if value == "constant":
                    self.set_schedule_constant()
                else:
                    try:
                        milestones, gamma = value
                    except (TypeError, ValueError):
                        raise invalid("`schedule` must be 'constant' or (milestones, gamma)") from None
                    self.set_schedule_step(milestones, gamma)
            elif key in self._SETTERS:
                getattr(self, self._SETTERS[key])(value)
            else:
                known = ", ".join(sorted([*self._SETTERS, "schedule"]))
                raise invalid(f"unknown training setting `{key}`; known settings: {known}")
        return self


def train(
    bundle: Bundle,
    init: Params,
    data: Dataset,
    config: TrainConfig,
    progress: Optional[Progress] = None,
) -> Tuple[Params, Dict[str, Any]]:
    """Trains a copy of ``init`` on ``data`` with ``config`` (same seed, same result on the CPU).

    ``progress("train", step, total)`` is called before the first update and after each;
    returning ``False`` cancels (:class:`~ddlens.errors.CancelledError`), Ctrl-C cancels and
    raises :class:`KeyboardInterrupt`.

    Returns:
        ``(params, report)``: the trained parameters and ``{"steps", "total_steps",
        "stopped_early", "final_loss", "log": [...]}``.
    """
    out = out_ptr()
    report = out_ptr()
    args = (bundle.ptr, init.ptr, data.ptr, config.ptr)
    # On failure the library leaves both outputs NULL, so nothing is left to free.
    call_with_progress("train", lib.ddl_train, args, (byref(out), byref(report)), progress)
    return Params._adopt(out.value), take_json(report)


def evaluate(bundle: Bundle, params: Params, data: Dataset) -> Dict[str, Any]:
    """Accuracy, mean cross-entropy and confusion matrix of ``params`` on every example of ``data``.

    Returns:
        ``{"accuracy", "loss", "confusion": [[count of label i predicted j]...]}``.
    """
    acc, loss = c_double(), c_double()
    out = out_ptr()
    check(lib.ddl_evaluate(bundle.ptr, params.ptr, data.ptr, byref(acc), byref(loss), byref(out)))
    result = take_json(out)
    result["accuracy"], result["loss"] = acc.value, loss.value
    return result


def standard_evaluation(
    bundle: Bundle,
    train_set: Union[Dataset, Any],
    test_set: Dataset,
    runs: int = 5,
    epochs: Optional[int] = None,
    lr: Optional[float] = None,
    seed: int = 0,
    progress: Optional[Progress] = None,
    augment: Optional[str] = None,
) -> Dict[str, Any]:
    """The standard evaluation: ``runs`` fresh models trained on ``train_set`` (SGD ``lr``,
    momentum 0.9, weight decay 5e-4, batch 256, ``epochs`` epochs, lr x0.1 at half), each
    evaluated on ``test_set``; run ``r`` seeded with ``seed + r``.

    Args:
        train_set: a :class:`Dataset` or a :class:`~ddlens.DistilledSet` (whose learned
            learning rate is used when ``lr`` is ``None``).
        epochs: epochs per run; ``None`` = the protocol's: 300, or 1000 with ``augment``.
        lr: learning rate; ``None`` = the set's learned rate, else 0.01.
        progress: ``progress("evaluation", step, total)``, one count over all runs.
        augment: a DSA strategy applied to every minibatch (``"color_crop_cutout_flip_scale_rotate"``
            is the protocol's, as ``ddlens eval --dsa``); ``None`` trains on the plain images.

    Returns:
        ``{"label", "train_size", "accuracies": [...], "mean", "std"}``.
    """
    from .distilled import DistilledSet

    owned = None
    if isinstance(train_set, DistilledSet):
        if lr is None:
            lr = train_set.lr
        owned = train_set.data()
        data = owned
    elif isinstance(train_set, Dataset):
        data = train_set
    else:
        raise invalid(f"`train_set` must be a Dataset or a DistilledSet, got {type(train_set).__name__}")
    lr = 0.01 if lr is None else _finite(lr, "lr")
    out = out_ptr()
    try:
        if epochs is None:
            epochs = 300 if augment is None else 1000
        args = (bundle.ptr, data.ptr, test_set.ptr, uint(runs, "runs"), uint(epochs, "epochs"), lr, uint(seed, "seed"))
        if augment is None:
            call_with_progress("evaluation", lib.ddl_standard_evaluation, args, (byref(out),), progress)
        else:
            call_with_progress("evaluation", lib.ddl_standard_evaluation_augmented,
                               (*args, cstr(augment, "augment")), (byref(out),), progress)
    finally:
        if owned is not None:
            owned.close()
    return take_json(out)
