"""Distillation (``ddl_distill_config_*``, ``ddl_distill``, ``ddl_generate_experts``)."""

from __future__ import annotations

import os
from ctypes import byref
from typing import Any, Callable, Dict, Optional, Tuple, Union

from ._core import Handle, Progress, call_with_progress, cstr, out_ptr, take_json, uint
from ._lib import lib
from .bundle import Bundle
from .dataset import Dataset
from .distilled import DistilledSet
from .errors import check, invalid
from .train import _finite

PathLike = Union[str, "os.PathLike[str]"]

#: The methods ``DistillConfig`` accepts.
METHODS = ("random", "herding", "dm", "dc", "dsa", "mtt", "bptt")


def _bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise invalid(f"`{name}` must be True or False, got {value!r}")
    return value


class DistillConfig(Handle):
    """A distillation configuration: method, images per class and every hyperparameter, with
    the defaults of ``ddlens distill`` until a setting changes them.

    >>> config = DistillConfig("dm", ipc=10, iterations=200, seed=1)

    Settings (keywords of the constructor and of :meth:`configure`; docs/c-api.md lists which
    methods use which): ``iterations``, ``seed``, ``lr_img``, ``momentum``, ``batch_real``,
    ``syn_steps``, ``batch_syn``, ``lr_lr``, ``dsa``, ``experts``, ``expert_epochs_ahead``,
    ``max_start_epoch``, ``window``, ``learn_lr``, ``herding_params``, ``checkpoint`` (a path,
    or ``(path, every)``), ``resume``. A setting the method does not use is refused by name.

    Read-only methods may run concurrently on one object; setters need exclusive use.
    """

    _free = staticmethod(lib.ddl_distill_config_free)

    def __init__(self, method: str, ipc: int, **settings: Any) -> None:
        """A configuration for ``method`` (``"random"``, ``"herding"``, ``"dm"``, ``"dc"``,
        ``"dsa"``, ``"mtt"`` or ``"bptt"``) distilling ``ipc`` images per class."""
        if method is None:
            raise invalid(f"`method` is None; one of {', '.join(METHODS)}")
        out = out_ptr()
        check(lib.ddl_distill_config_new(cstr(method, "method"), uint(ipc, "ipc"), byref(out)))
        super().__init__(out.value)  # type: ignore[arg-type]
        self.configure(**settings)

    def describe(self) -> Dict[str, Any]:
        """The effective settings, defaults resolved."""
        out = out_ptr()
        check(lib.ddl_distill_config_describe(self.ptr, byref(out)))
        return take_json(out)

    def set_iterations(self, iterations: int) -> "DistillConfig":
        """Iterations (at least 1). dm, dc, dsa, mtt, bptt."""
        check(lib.ddl_distill_config_set_iterations(self.ptr, uint(iterations, "iterations")))
        return self

    def set_seed(self, seed: int) -> "DistillConfig":
        """Seed of the initial set and of every random draw. All methods."""
        check(lib.ddl_distill_config_set_seed(self.ptr, uint(seed, "seed")))
        return self

    def set_lr_img(self, lr_img: float) -> "DistillConfig":
        """Image learning rate (positive). dm, dc, dsa, mtt, bptt."""
        check(lib.ddl_distill_config_set_lr_img(self.ptr, _finite(lr_img, "lr_img")))
        return self

    def set_momentum(self, momentum: float) -> "DistillConfig":
        """Momentum of the image optimiser, in ``[0, 1)``. dm, dc, dsa, mtt, bptt."""
        check(lib.ddl_distill_config_set_momentum(self.ptr, _finite(momentum, "momentum")))
        return self

    def set_batch_real(self, batch_real: int) -> "DistillConfig":
        """Real images per class per iteration (bptt: its outer batch). dm, dc, dsa, bptt."""
        check(lib.ddl_distill_config_set_batch_real(self.ptr, uint(batch_real, "batch_real")))
        return self

    def set_syn_steps(self, syn_steps: int) -> "DistillConfig":
        """mtt's student steps / bptt's unrolled steps."""
        check(lib.ddl_distill_config_set_syn_steps(self.ptr, uint(syn_steps, "syn_steps")))
        return self

    def set_batch_syn(self, batch_syn: Optional[int]) -> "DistillConfig":
        """Synthetic minibatch of mtt/bptt's inner training; ``None`` or 0 = the whole set."""
        check(lib.ddl_distill_config_set_batch_syn(self.ptr, uint(batch_syn or 0, "batch_syn")))
        return self

    def set_lr_lr(self, lr_lr: float) -> "DistillConfig":
        """Learning rate of the learned learning rate. mtt, bptt with ``learn_lr``."""
        check(lib.ddl_distill_config_set_lr_lr(self.ptr, _finite(lr_lr, "lr_lr")))
        return self

    def set_dsa(self, dsa: bool) -> "DistillConfig":
        """DSA augmentation on or off. dm, mtt (dsa always augments)."""
        check(lib.ddl_distill_config_set_dsa(self.ptr, _bool(dsa, "dsa")))
        return self

    def set_experts(self, experts_dir: PathLike) -> "DistillConfig":
        """mtt's expert trajectories: a folder from :func:`generate_experts`."""
        check(lib.ddl_distill_config_set_experts(self.ptr, cstr(experts_dir, "experts_dir")))
        return self

    def set_expert_epochs_ahead(self, epochs: int) -> "DistillConfig":
        """mtt's expert epochs M between start and target."""
        check(lib.ddl_distill_config_set_expert_epochs_ahead(self.ptr, uint(epochs, "expert_epochs_ahead")))
        return self

    def set_max_start_epoch(self, epoch: int) -> "DistillConfig":
        """mtt's start epochs are drawn from ``0..max_start_epoch``."""
        check(lib.ddl_distill_config_set_max_start_epoch(self.ptr, uint(epoch, "max_start_epoch")))
        return self

    def set_window(self, window: Optional[int]) -> "DistillConfig":
        """RaT-BPTT window; ``None`` or 0 = full BPTT. bptt."""
        check(lib.ddl_distill_config_set_window(self.ptr, uint(window or 0, "window")))
        return self

    def set_learn_lr(self, learn_lr: bool) -> "DistillConfig":
        """Whether bptt learns its inner learning rate too."""
        check(lib.ddl_distill_config_set_learn_lr(self.ptr, _bool(learn_lr, "learn_lr")))
        return self

    def set_herding_params(self, params_path: Optional[PathLike]) -> "DistillConfig":
        """herding's feature model from a parameter file; ``None`` = one epoch of P_real."""
        check(lib.ddl_distill_config_set_herding_params(self.ptr, cstr(params_path, "params_path")))
        return self

    def set_checkpoint(self, path: Optional[PathLike], every: int = 0) -> "DistillConfig":
        """Checkpoint to ``path`` every ``every`` iterations and after the last (0: last only)."""
        check(lib.ddl_distill_config_set_checkpoint(self.ptr, cstr(path, "path"), uint(every, "every")))
        return self

    def set_resume(self, resume: bool) -> "DistillConfig":
        """Continue from the checkpoint of an earlier run with the same settings."""
        check(lib.ddl_distill_config_set_resume(self.ptr, _bool(resume, "resume")))
        return self

    def configure(self, **settings: Any) -> "DistillConfig":
        """Applies settings by name (see the class docstring); returns ``self``."""
        for key, value in settings.items():
            setter: Optional[Callable[..., Any]] = getattr(self, f"set_{key}", None)
            if setter is None:
                raise invalid(f"unknown distillation setting `{key}`; known settings: {', '.join(SETTINGS)}")
            if key == "checkpoint" and isinstance(value, tuple):
                setter(*value)
            else:
                setter(value)
        return self


#: The settings :meth:`DistillConfig.configure` takes.
SETTINGS = tuple(
    name[len("set_"):] for name in vars(DistillConfig) if name.startswith("set_")
)


def distill(
    bundle: Bundle,
    real: Dataset,
    config: DistillConfig,
    progress: Optional[Progress] = None,
) -> Tuple[DistilledSet, Dict[str, Any]]:
    """Distils ``real`` for the model of ``bundle`` with ``config`` (as ``ddlens distill``).

    ``progress("distill", iteration, total)`` is called before the first iteration and after
    each; returning ``False`` or Ctrl-C cancels (a checkpoint due by then is written, so the
    run can be resumed).

    Returns:
        ``(set, report)`` with ``report`` holding ``"loss_per_iteration"``, ``"wall_seconds"``...
    """
    out_set, out_json = out_ptr(), out_ptr()
    call_with_progress(
        "distill",
        lib.ddl_distill,
        (bundle.ptr, real.ptr, config.ptr),
        (byref(out_set), byref(out_json)),
        progress,
    )
    return DistilledSet._adopt(out_set.value), take_json(out_json)


def generate_experts(
    bundle: Bundle,
    dataset: Dataset,
    out_dir: PathLike,
    num_experts: int = 10,
    epochs: int = 50,
    lr: float = 0.01,
    batch: int = 256,
    dsa: bool = True,
    seed: int = 0,
    progress: Optional[Progress] = None,
) -> Dict[str, Any]:
    """Trains MTT's expert trajectories and writes them to ``out_dir`` (as ``ddlens experts``).

    Calling again with the same arguments continues an interrupted generation.
    ``progress("experts", epoch, total)`` counts epochs over all experts.

    Returns:
        The index written to ``out_dir/experts.json``.
    """
    if out_dir is None:
        raise invalid("`out_dir` is None")
    out = out_ptr()
    call_with_progress(
        "experts",
        lib.ddl_generate_experts,
        (
            bundle.ptr,
            dataset.ptr,
            uint(num_experts, "num_experts"),
            uint(epochs, "epochs"),
            _finite(lr, "lr"),
            uint(batch, "batch"),
            _bool(dsa, "dsa"),
            uint(seed, "seed"),
            cstr(out_dir, "out_dir"),
        ),
        (byref(out),),
        progress,
    )
    return take_json(out)
