"""ddlens from Python: distil datasets and run the analyses of "What is Dataset Distillation
Learning?" through the ddlens C ABI (ctypes over ``libddlens.so``; no compiler needed).

>>> import ddlens
>>> ddlens.init_runtime(provider="cpu")
>>> bundle = ddlens.Bundle("convnet3-1x28x28")
>>> train, test = ddlens.load_dataset("fashion-mnist")
>>> s = ddlens.DistilledSet.from_arrays(images, labels)          # NumPy arrays or torch tensors
>>> ddlens.standard_evaluation(bundle, s, test, runs=5)["mean"]
>>> ddlens.analyze("pixels", bundle, train, test, [s], names=["mine"], budget="smoke")

Every failure raises a :class:`DdlError` subclass (one per status) carrying ``status``,
``status_name`` and ``message``; long calls take ``progress(stage, done, total)`` and are
cancelled by Ctrl-C. See docs/python.md.
"""

from ._lib import LIBRARY_PATH, find_library
from .analysis import (
    BUDGETS,
    analysis_names,
    analyze,
    analyze_agreement,
    analyze_curvature,
    analyze_influence,
    analyze_mixing,
    analyze_pixels,
    analyze_recognition,
    analyze_recognition_over_training,
    analyze_sensitivity,
)
from .bundle import Bundle
from .dataset import Dataset, load_dataset
from .distill import METHODS, DistillConfig, distill, generate_experts
from .distilled import DistilledSet
from .errors import (
    BufferTooSmallError,
    BundleError,
    CancelledError,
    DataError,
    DdlError,
    DdlIOError,
    InternalError,
    InvalidArgumentError,
    MissingRoleError,
    NotFoundError,
    NullArgumentError,
    OrtError,
    PanicError,
    ProviderError,
    RuntimeConfigError,
    RuntimeNotFoundError,
    RuntimeNotInitializedError,
    last_error,
    status_name,
)
from .params import Params
from .runtime import init_runtime, runtime_info, runtime_initialized, version
from .train import TrainConfig, evaluate, standard_evaluation, train

__version__ = "0.1.0"

__all__ = [
    "BUDGETS",
    "LIBRARY_PATH",
    "METHODS",
    "BufferTooSmallError",
    "Bundle",
    "BundleError",
    "CancelledError",
    "DataError",
    "Dataset",
    "DdlError",
    "DdlIOError",
    "DistillConfig",
    "DistilledSet",
    "InternalError",
    "InvalidArgumentError",
    "MissingRoleError",
    "NotFoundError",
    "NullArgumentError",
    "OrtError",
    "PanicError",
    "Params",
    "ProviderError",
    "RuntimeConfigError",
    "RuntimeNotFoundError",
    "RuntimeNotInitializedError",
    "TrainConfig",
    "analysis_names",
    "analyze",
    "analyze_agreement",
    "analyze_curvature",
    "analyze_influence",
    "analyze_mixing",
    "analyze_pixels",
    "analyze_recognition",
    "analyze_recognition_over_training",
    "analyze_sensitivity",
    "distill",
    "evaluate",
    "find_library",
    "generate_experts",
    "init_runtime",
    "last_error",
    "load_dataset",
    "runtime_info",
    "runtime_initialized",
    "standard_evaluation",
    "status_name",
    "train",
    "version",
]
