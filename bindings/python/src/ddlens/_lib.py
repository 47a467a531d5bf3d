"""Loading ``libddlens.so`` and the ctypes prototype of every function of ``include/ddlens.h``.

The library is found as the other bindings find it (bindings/julia/src/DDLens.jl):

1. the ``DDLENS_LIB`` environment variable (a path to ``libddlens.so``);
2. the repository's ``target/release`` then ``target/debug`` build, when this package is used
   from a checkout (``bindings/python/src/ddlens`` -> the repository root four levels up);
3. the system's library search path (``ctypes.util.find_library("ddlens")``, else
   ``libddlens.so``).

``PROTOTYPES`` is the single table of argument and return types. ``tests/ffi/bindings.rs``
parses it and fails when a prototype differs from the header, when a header function has none,
or when a function is never called by the package (outside the exemptions it lists).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from ctypes import (
    CFUNCTYPE,
    POINTER,
    c_bool,
    c_char_p,
    c_double,
    c_float,
    c_int,
    c_int64,
    c_size_t,
    c_uint32,
    c_uint64,
    c_void_p,
)
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

P = POINTER

#: ``int (*)(void* user_data, uint64_t step, uint64_t total)``.
PROGRESS_FN = CFUNCTYPE(c_int, c_void_p, c_uint64, c_uint64)

#: DdlStatus and the other ``uint32_t`` enums.
STATUS = c_uint32

# One line per header function: name -> (return type, [argument types]). Handles are
# ``c_void_p`` and handle/string outputs ``P(c_void_p)`` (strings are freed by
# ``ddl_string_free``, so their raw address is kept); ``const char*`` inputs are ``c_char_p``.
# tests/ffi/bindings.rs checks every line against the header.
PROTOTYPES: Dict[str, Tuple[Any, List[Any]]] = {
    "ddl_version": (c_char_p, []),
    "ddl_last_error": (c_char_p, []),
    "ddl_last_error_copy": (c_size_t, [c_char_p, c_size_t]),
    "ddl_status_name": (c_char_p, [c_uint32]),
    "ddl_string_free": (None, [c_void_p]),
    "ddl_runtime_init": (STATUS, [c_char_p, c_uint32, c_uint32]),
    "ddl_runtime_is_initialized": (c_bool, []),
    "ddl_runtime_describe": (STATUS, [P(c_void_p)]),
    "ddl_bundle_open": (STATUS, [c_char_p, P(c_void_p)]),
    "ddl_bundle_free": (None, [c_void_p]),
    "ddl_bundle_describe": (STATUS, [c_void_p, P(c_void_p)]),
    "ddl_bundle_input_shape": (STATUS, [c_void_p, P(c_size_t), P(c_size_t), P(c_size_t)]),
    "ddl_bundle_num_classes": (STATUS, [c_void_p, P(c_size_t)]),
    "ddl_bundle_feature_dim": (STATUS, [c_void_p, P(c_size_t)]),
    "ddl_bundle_num_parameters": (STATUS, [c_void_p, P(c_size_t)]),
    "ddl_bundle_normalization": (STATUS, [c_void_p, P(c_float), P(c_float), c_size_t]),
    "ddl_bundle_forward": (STATUS, [c_void_p, c_void_p, P(c_float), c_size_t, P(c_float), c_size_t, P(c_float), c_size_t]),
    "ddl_bundle_grad": (STATUS, [c_void_p, c_void_p, P(c_float), P(c_int64), P(c_float), c_size_t, P(c_float), P(c_float), c_size_t]),
    "ddl_params_init": (STATUS, [c_void_p, c_uint64, P(c_void_p)]),
    "ddl_params_from_flat": (STATUS, [c_void_p, P(c_float), c_size_t, P(c_void_p)]),
    "ddl_params_load": (STATUS, [c_void_p, c_char_p, P(c_void_p)]),
    "ddl_params_save": (STATUS, [c_void_p, c_void_p, c_char_p]),
    "ddl_params_clone": (STATUS, [c_void_p, P(c_void_p)]),
    "ddl_params_free": (None, [c_void_p]),
    "ddl_params_numel": (STATUS, [c_void_p, P(c_size_t)]),
    "ddl_params_get_flat": (STATUS, [c_void_p, P(c_float), c_size_t]),
    "ddl_params_set_flat": (STATUS, [c_void_p, P(c_float), c_size_t]),
    "ddl_params_tensor_shape": (STATUS, [c_void_p, c_char_p, P(c_size_t), c_size_t, P(c_size_t)]),
    "ddl_params_describe": (STATUS, [c_void_p, P(c_void_p)]),
    "ddl_params_get_tensor": (STATUS, [c_void_p, c_char_p, P(c_float), c_size_t]),
    "ddl_params_set_tensor": (STATUS, [c_void_p, c_char_p, P(c_float), c_size_t]),
    "ddl_dataset_load": (STATUS, [c_char_p, c_char_p, P(c_void_p), P(c_void_p)]),
    "ddl_dataset_from_memory": (STATUS, [c_void_p, c_uint32, P(c_size_t), c_size_t, P(c_int64), c_size_t, c_size_t, P(c_float), P(c_float), c_char_p, P(c_void_p)]),
    "ddl_dataset_free": (None, [c_void_p]),
    "ddl_dataset_len": (STATUS, [c_void_p, P(c_size_t)]),
    "ddl_dataset_num_classes": (STATUS, [c_void_p, P(c_size_t)]),
    "ddl_dataset_input_shape": (STATUS, [c_void_p, P(c_size_t), P(c_size_t), P(c_size_t)]),
    "ddl_dataset_get_images": (STATUS, [c_void_p, P(c_float), c_size_t]),
    "ddl_dataset_get_labels": (STATUS, [c_void_p, P(c_int64), c_size_t]),
    "ddl_dataset_class_balanced": (STATUS, [c_void_p, c_size_t, c_uint64, P(c_void_p)]),
    "ddl_dataset_select": (STATUS, [c_void_p, P(c_size_t), c_size_t, P(c_void_p)]),
    "ddl_dataset_describe": (STATUS, [c_void_p, P(c_void_p)]),
    "ddl_distilled_read": (STATUS, [c_char_p, P(c_void_p)]),
    "ddl_distilled_write": (STATUS, [c_void_p, c_char_p]),
    "ddl_distilled_create": (STATUS, [c_void_p, P(c_float), c_char_p, P(c_void_p)]),
    "ddl_distilled_free": (None, [c_void_p]),
    "ddl_distilled_data": (STATUS, [c_void_p, P(c_void_p)]),
    "ddl_distilled_lr": (STATUS, [c_void_p, P(c_bool), P(c_float)]),
    "ddl_distilled_describe": (STATUS, [c_void_p, P(c_void_p)]),
    "ddl_train_config_standard_eval": (STATUS, [c_uint64, c_float, c_size_t, c_uint64, P(c_void_p)]),
    "ddl_train_config_p_dist": (STATUS, [c_uint64, c_uint64, P(c_void_p)]),
    "ddl_train_config_p_real": (STATUS, [c_uint64, c_uint64, P(c_void_p)]),
    "ddl_train_config_from_json": (STATUS, [c_char_p, P(c_void_p)]),
    "ddl_train_config_to_json": (STATUS, [c_void_p, P(c_void_p)]),
    "ddl_train_config_total_steps": (STATUS, [c_void_p, c_size_t, P(c_uint64)]),
    "ddl_train_config_free": (None, [c_void_p]),
    "ddl_train_config_set_epochs": (STATUS, [c_void_p, c_uint64]),
    "ddl_train_config_set_max_steps": (STATUS, [c_void_p, c_uint64]),
    "ddl_train_config_set_batch_size": (STATUS, [c_void_p, c_uint64]),
    "ddl_train_config_set_lr": (STATUS, [c_void_p, c_float]),
    "ddl_train_config_set_momentum": (STATUS, [c_void_p, c_float]),
    "ddl_train_config_set_weight_decay": (STATUS, [c_void_p, c_float]),
    "ddl_train_config_set_seed": (STATUS, [c_void_p, c_uint64]),
    "ddl_train_config_set_schedule_constant": (STATUS, [c_void_p]),
    "ddl_train_config_set_schedule_step": (STATUS, [c_void_p, P(c_uint64), c_size_t, c_float]),
    "ddl_train_config_set_dsa": (STATUS, [c_void_p, c_char_p]),
    "ddl_train": (STATUS, [c_void_p, c_void_p, c_void_p, c_void_p, PROGRESS_FN, c_void_p, P(c_void_p), P(c_void_p)]),
    "ddl_evaluate": (STATUS, [c_void_p, c_void_p, c_void_p, P(c_double), P(c_double), P(c_void_p)]),
    "ddl_standard_evaluation": (STATUS, [c_void_p, c_void_p, c_void_p, c_size_t, c_uint64, c_float, c_uint64, PROGRESS_FN, c_void_p, P(c_void_p)]),
    "ddl_standard_evaluation_augmented": (STATUS, [c_void_p, c_void_p, c_void_p, c_size_t, c_uint64, c_float, c_uint64, c_char_p, PROGRESS_FN, c_void_p, P(c_void_p)]),
    "ddl_distill_config_new": (STATUS, [c_char_p, c_size_t, P(c_void_p)]),
    "ddl_distill_config_free": (None, [c_void_p]),
    "ddl_distill_config_describe": (STATUS, [c_void_p, P(c_void_p)]),
    "ddl_distill_config_set_iterations": (STATUS, [c_void_p, c_uint64]),
    "ddl_distill_config_set_seed": (STATUS, [c_void_p, c_uint64]),
    "ddl_distill_config_set_lr_img": (STATUS, [c_void_p, c_float]),
    "ddl_distill_config_set_momentum": (STATUS, [c_void_p, c_float]),
    "ddl_distill_config_set_batch_real": (STATUS, [c_void_p, c_uint64]),
    "ddl_distill_config_set_syn_steps": (STATUS, [c_void_p, c_uint64]),
    "ddl_distill_config_set_batch_syn": (STATUS, [c_void_p, c_uint64]),
    "ddl_distill_config_set_lr_lr": (STATUS, [c_void_p, c_float]),
    "ddl_distill_config_set_dsa": (STATUS, [c_void_p, c_bool]),
    "ddl_distill_config_set_experts": (STATUS, [c_void_p, c_char_p]),
    "ddl_distill_config_set_expert_epochs_ahead": (STATUS, [c_void_p, c_uint64]),
    "ddl_distill_config_set_max_start_epoch": (STATUS, [c_void_p, c_uint64]),
    "ddl_distill_config_set_window": (STATUS, [c_void_p, c_uint64]),
    "ddl_distill_config_set_learn_lr": (STATUS, [c_void_p, c_bool]),
    "ddl_distill_config_set_herding_params": (STATUS, [c_void_p, c_char_p]),
    "ddl_distill_config_set_checkpoint": (STATUS, [c_void_p, c_char_p, c_uint64]),
    "ddl_distill_config_set_resume": (STATUS, [c_void_p, c_bool]),
    "ddl_distill": (STATUS, [c_void_p, c_void_p, c_void_p, PROGRESS_FN, c_void_p, P(c_void_p), P(c_void_p)]),
    "ddl_generate_experts": (STATUS, [c_void_p, c_void_p, c_size_t, c_uint64, c_float, c_size_t, c_bool, c_uint64, c_char_p, PROGRESS_FN, c_void_p, P(c_void_p)]),
    "ddl_analysis_names": (STATUS, [P(c_void_p)]),
    "ddl_analyze": (STATUS, [c_char_p, c_void_p, c_void_p, c_void_p, P(c_void_p), P(c_char_p), c_size_t, c_uint32, c_char_p, c_uint64, c_char_p, PROGRESS_FN, c_void_p, P(c_void_p)]),
    "ddl_analyze_pixels": (STATUS, [c_void_p, c_void_p, c_void_p, P(c_void_p), P(c_char_p), c_size_t, c_uint32, c_char_p, c_uint64, c_char_p, PROGRESS_FN, c_void_p, P(c_void_p)]),
    "ddl_analyze_mixing": (STATUS, [c_void_p, c_void_p, c_void_p, P(c_void_p), P(c_char_p), c_size_t, c_uint32, c_char_p, c_uint64, c_char_p, PROGRESS_FN, c_void_p, P(c_void_p)]),
    "ddl_analyze_sensitivity": (STATUS, [c_void_p, c_void_p, c_void_p, P(c_void_p), P(c_char_p), c_size_t, c_uint32, c_char_p, c_uint64, c_char_p, PROGRESS_FN, c_void_p, P(c_void_p)]),
    "ddl_analyze_curvature": (STATUS, [c_void_p, c_void_p, c_void_p, P(c_void_p), P(c_char_p), c_size_t, c_uint32, c_char_p, c_uint64, c_char_p, PROGRESS_FN, c_void_p, P(c_void_p)]),
    "ddl_analyze_recognition": (STATUS, [c_void_p, c_void_p, c_void_p, P(c_void_p), P(c_char_p), c_size_t, c_uint32, c_char_p, c_uint64, c_char_p, PROGRESS_FN, c_void_p, P(c_void_p)]),
    "ddl_analyze_agreement": (STATUS, [c_void_p, c_void_p, c_void_p, P(c_void_p), P(c_char_p), c_size_t, c_uint32, c_char_p, c_uint64, c_char_p, PROGRESS_FN, c_void_p, P(c_void_p)]),
    "ddl_analyze_recognition_over_training": (STATUS, [c_void_p, c_void_p, c_void_p, P(c_void_p), P(c_char_p), c_size_t, c_uint32, c_char_p, c_uint64, c_char_p, PROGRESS_FN, c_void_p, P(c_void_p)]),
    "ddl_analyze_influence": (STATUS, [c_void_p, c_void_p, c_void_p, P(c_void_p), P(c_char_p), c_size_t, c_uint32, c_char_p, c_uint64, c_char_p, PROGRESS_FN, c_void_p, P(c_void_p)]),
}

#: The header version this package was written against (``DDL_VERSION_STRING``).
HEADER_VERSION = "0.1.0"


def _repository_root() -> Path:
    # src/ddlens/_lib.py -> src/ddlens -> src -> bindings/python -> bindings -> repository
    return Path(__file__).resolve().parents[4]


def find_library() -> str:
    """The path (or name) of ``libddlens.so`` this package loads.

    ``DDLENS_LIB`` when set; else the repository's ``target/release`` or ``target/debug``
    build when the package runs from a checkout; else the system's library search path.
    """
    env = os.environ.get("DDLENS_LIB")
    if env:
        return env
    root = _repository_root()
    for profile in ("release", "debug"):
        candidate = root / "target" / profile / "libddlens.so"
        if candidate.is_file():
            return str(candidate)
    return ctypes.util.find_library("ddlens") or "libddlens.so"


def _load() -> ctypes.CDLL:
    path = find_library()
    try:
        lib = ctypes.CDLL(path)
    except OSError as e:
        raise ImportError(
            f"ddlens: cannot load the ddlens library `{path}` ({e}); build it with "
            "`cargo build --release` in the repository, or set DDLENS_LIB=/path/to/libddlens.so"
        ) from e
    for name, (restype, argtypes) in PROTOTYPES.items():
        try:
            fn = getattr(lib, name)
        except AttributeError as e:
            raise ImportError(
                f"ddlens: `{path}` lacks `{name}`; it is older than this package "
                f"(header {HEADER_VERSION}); rebuild it or point DDLENS_LIB at a newer build"
            ) from e
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


#: The loaded library with every prototype set.
lib: ctypes.CDLL = _load()
#: Where it was loaded from.
LIBRARY_PATH: str = find_library()

