"""The analyses of "What is Dataset Distillation Learning?" (``ddl_analysis_names``, ``ddl_analyze``)."""

from __future__ import annotations

import os
from ctypes import byref, c_char_p, c_void_p
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from ._core import Progress, call_with_progress, cstr, json_arg, out_ptr, take_json, uint
from ._lib import lib
from .bundle import Bundle
from .dataset import Dataset
from .distilled import DistilledSet
from .errors import check, invalid

PathLike = Union[str, "os.PathLike[str]"]

#: Analysis budgets (``DDL_BUDGET_*``).
DDL_BUDGET_PAPER = 0
DDL_BUDGET_CPU = 1
DDL_BUDGET_SMOKE = 2

BUDGETS: Dict[str, int] = {"paper": DDL_BUDGET_PAPER, "cpu": DDL_BUDGET_CPU, "smoke": DDL_BUDGET_SMOKE}


def analysis_names() -> List[Dict[str, Any]]:
    """Every analysis, in the paper's order: ``[{"name", "about", "own_baseline"}...]``."""
    out = out_ptr()
    check(lib.ddl_analysis_names(byref(out)))
    return take_json(out)


def analyze(
    name: str,
    bundle: Bundle,
    train_set: Dataset,
    test_set: Dataset,
    sets: Sequence[DistilledSet] = (),
    names: Optional[Sequence[Optional[str]]] = None,
    budget: str = "cpu",
    options: Optional[Union[Mapping[str, Any], str]] = None,
    seed: int = 0,
    out_dir: Optional[PathLike] = None,
    progress: Optional[Progress] = None,
) -> Dict[str, Any]:
    """Runs the analysis ``name`` (one of :func:`analysis_names`) on distilled ``sets``.

    Args:
        name: ``"mixing"``, ``"sensitivity"``, ``"pixels"``, ``"recognition"``,
            ``"agreement"``, ``"recognition-over-training"``, ``"curvature"`` or ``"influence"``.
        bundle: the model.
        train_set, test_set: the real data (normalised).
        sets: the distilled sets, studied in that order.
        names: one name per set (``None`` entries, or ``names=None``, give ``set<i>``).
        budget: ``"paper"`` (the paper's protocol), ``"cpu"`` (minutes on 2 cores) or
            ``"smoke"`` (seconds).
        options: settings overriding the budget's (docs/analyses.md), as a dict or JSON text;
            an unknown field raises :class:`~ddlens.errors.InvalidArgumentError` naming it.
        seed: seeds every random draw.
        out_dir: folder receiving ``<name>.json`` and the PNG figures (for ``ddlens report``).
        progress: ``progress("<name>:<stage>", done, total)``; counts restart with each stage.

    Returns:
        The result (the ``result`` object of ``<name>.json``), with its ``"verdict"``.
    """
    if budget not in BUDGETS:
        raise invalid(f"`budget` must be 'paper', 'cpu' or 'smoke', got {budget!r}")
    if name is None:
        raise invalid("`name` is None; see analysis_names()")
    sets = list(sets)
    for i, s in enumerate(sets):
        if not isinstance(s, DistilledSet):
            raise invalid(f"`sets[{i}]` must be a DistilledSet, got {type(s).__name__}")
    if names is not None and len(names) != len(sets):
        raise invalid(f"`names` must hold one name per set ({len(sets)}), got {len(names)}")
    n = len(sets)
    set_array = (c_void_p * max(n, 1))(*[s.ptr for s in sets])
    name_array = None
    if names is not None:
        name_array = (c_char_p * max(n, 1))(*[cstr(x, f"names[{i}]") for i, x in enumerate(names)])
    out = out_ptr()
    call_with_progress(
        name,
        lib.ddl_analyze,
        (
            cstr(name, "name"),
            bundle.ptr,
            train_set.ptr,
            test_set.ptr,
            set_array if n else None,
            name_array if n else None,
            n,
            BUDGETS[budget],
            json_arg(options, "options"),
            uint(seed, "seed"),
            cstr(out_dir, "out_dir"),
        ),
        (byref(out),),
        progress,
        stages=True,
    )
    return take_json(out)


def _shorthand(analysis: str):  # type: ignore[no-untyped-def]
    def run(
        bundle: Bundle,
        train_set: Dataset,
        test_set: Dataset,
        sets: Sequence[DistilledSet] = (),
        **kwargs: Any,
    ) -> Dict[str, Any]:
        return analyze(analysis, bundle, train_set, test_set, sets, **kwargs)

    run.__name__ = "analyze_" + analysis.replace("-", "_")
    run.__doc__ = f"``analyze({analysis!r}, ...)``: see :func:`analyze`."
    return run


analyze_mixing = _shorthand("mixing")
analyze_sensitivity = _shorthand("sensitivity")
analyze_pixels = _shorthand("pixels")
analyze_recognition = _shorthand("recognition")
analyze_agreement = _shorthand("agreement")
analyze_recognition_over_training = _shorthand("recognition-over-training")
analyze_curvature = _shorthand("curvature")
analyze_influence = _shorthand("influence")
