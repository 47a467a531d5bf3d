"""Turning an export failure into one paragraph: which module of the model, which op, what to
use instead.

A graph fails to export when one of its ATen ops has no ONNX lowering (torch.onnx: "No ONNX
function found for ...") or when a ddlens rewrite refuses a configuration
(:class:`UnsupportedOp`). The op in such a failure is often a *backward* kernel
(``_adaptive_avg_pool2d_backward``) that no module calls by name, so :func:`op_owners` runs
the model's forward once under a dispatch mode that records, for every ATen op, the dotted
path of the innermost module whose ``forward`` called it; a backward op is matched to its
forward op by name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode


class UnsupportedOp(NotImplementedError):
    """A ddlens rewrite refuses an op configuration; ``op`` is the ATen op (e.g.
    ``aten.avg_pool2d_backward``) so that the error can name the module that uses it."""

    def __init__(self, op: str, message: str):
        super().__init__(message)
        self.op = op


class ExportError(RuntimeError):
    """A role graph could not be exported; the message is the one-paragraph explanation (the
    original exception is chained as ``__cause__``, shown with ``--verbose``)."""

    def __init__(self, message: str, *, op: str | None = None, module_path: str | None = None):
        super().__init__(message)
        self.op = op
        self.module_path = module_path


class _Recorder(TorchDispatchMode):
    def __init__(self, stack: list[str], owners: dict[str, list[str]]):
        super().__init__()
        self.stack = stack
        self.owners = owners

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        where = self.stack[-1] if self.stack else ""
        paths = self.owners.setdefault(name, [])
        if where not in paths:
            paths.append(where)
        return func(*args, **(kwargs or {}))


def op_owners(model: nn.Module, input_shape: Sequence[int]) -> dict[str, list[str]]:
    """ATen op name (overload packet, e.g. ``_adaptive_avg_pool2d``) -> dotted paths of the
    modules whose own ``forward`` called it (``""`` is the top-level module), from one forward
    pass on zeros of batch 2."""
    stack: list[str] = []
    owners: dict[str, list[str]] = {}
    handles = []
    def enter(path):
        def hook(_module, _args):
            stack.append(path)
        return hook

    def leave(_module, _args, _output):  # returns None: a hook's return value replaces the output
        stack.pop()

    for path, mod in model.named_modules():
        handles.append(mod.register_forward_pre_hook(enter(path)))
        handles.append(mod.register_forward_hook(leave))
    x = torch.zeros(2, *input_shape)
    try:
        with torch.no_grad(), _Recorder(stack, owners):
            model(x)
    finally:
        for h in handles:
            h.remove()
    return owners


_NO_LOWERING = re.compile(
    r"No ONNX function found for (?:<OpOverload\(op='(?P<qual>[\w.]+)', overload='\w+'\)>|(?P<plain>[\w.]+))")
_ANY_OP = re.compile(r"\b(?:aten|prims)\.\w+")


def failing_op(exc: BaseException) -> str | None:
    """The op an export failure is about (``aten.erfinv``, ``prims.erf_inv``...), from the
    exception chain; ``None`` when no op is named."""
    seen = set()
    chain = []
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        chain.append(e)
        e = e.__cause__ or e.__context__
    for e in chain:
        if isinstance(e, UnsupportedOp):
            return e.op
    for e in reversed(chain):  # the innermost exception names the op most precisely
        m = _NO_LOWERING.search(str(e))
        if m:
            return _short(m.group("qual") or m.group("plain"))
    for e in reversed(chain):
        m = _ANY_OP.search(str(e))
        if m:
            return _short(m.group(0))
    return None


def _short(op: str) -> str:
    """``aten._adaptive_avg_pool2d_backward.default`` -> ``aten._adaptive_avg_pool2d_backward``."""
    parts = op.split(".")
    if len(parts) >= 3:
        parts = parts[:2]
    return ".".join(parts)


def _key(name: str) -> str:
    """Name normalised for matching a backward or prims op to the forward op a module called."""
    name = name.split(".")[-1]
    for suffix in ("_backward", "_with_indices", "_functional"):
        name = name.replace(suffix, "")
    return name.replace("_", "").replace("native", "").replace("legit", "").replace("nostats", "")


def owner_of(op: str, owners: dict[str, list[str]]) -> list[str]:
    """Module paths that called ``op`` or the forward op whose derivative ``op`` is."""
    base = op.split(".")[-1]
    if base in owners:
        return owners[base]
    key = _key(base)
    for name, paths in owners.items():
        k = _key(name)
        if k and (k == key or (len(k) > 3 and key.startswith(k))):
            return paths
    return []


#: What to use instead, by a word of the op's name (first match wins).
ALTERNATIVES = [
    ("batch_norm", ("export with --batchnorm batch-stats (BatchNorm on the statistics of each batch) or "
                    "--batchnorm running-stats (running statistics as explicit state), or use "
                    "GroupNorm / InstanceNorm2d(affine=True)")),
    ("upsample", "use nn.Upsample(scale_factor=k, mode='nearest') with an integer k, or ConvTranspose2d"),
    ("pool", "use AvgPool2d / MaxPool2d with ceil_mode=False, or AdaptiveAvgPool2d / AdaptiveMaxPool2d"),
    ("convolution", "use groups=1 convolutions, or leave out the gradient roles with --roles forward,features_vjp"),
]
_DEFAULT_ALTERNATIVE = (
    "write the layer with ops the exporter supports (Conv*, Linear, GroupNorm / LayerNorm / InstanceNorm, "
    "AvgPool2d / MaxPool2d / adaptive pooling, elementwise activations such as ReLU, GELU, Tanh), or leave "
    "out the role with --roles (forward is always needed)"
)


def alternative(op: str) -> str:
    """The advice for an op that cannot be exported."""
    for word, advice in ALTERNATIVES:
        if word in op:
            return advice
    return _DEFAULT_ALTERNATIVE


def _first_line(exc: BaseException) -> str:
    """The innermost, most specific line of the failure (torch.onnx wraps it in pages)."""
    e: BaseException = exc
    while (e.__cause__ or e.__context__) is not None:
        e = e.__cause__ or e.__context__
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:300]


def explain(exc: BaseException, model: nn.Module, input_shape: Sequence[int], bundle: str, role: str) -> ExportError:
    """The one-paragraph :class:`ExportError` for ``exc``, raised while exporting ``role``."""
    op = failing_op(exc)
    if op is None:
        return ExportError(
            f"{bundle}, role {role}: export failed: {_first_line(exc)}. Leave out the role with --roles, or run "
            "with --verbose for the full traceback."
        )
    try:
        paths = owner_of(op, op_owners(model, input_shape))
    except Exception:  # noqa: BLE001 -- the diagnosis must never hide the real failure
        paths = []
    if paths:
        names = dict(model.named_modules())
        where = ", ".join(
            f"`{p}` ({type(names[p]).__name__})" if p else f"the model's own forward ({type(model).__name__})"
            for p in paths[:3])
        where = f"module {where}"
    else:
        where = "a module the exporter could not pin down"
    return ExportError(
        f"{bundle}, role {role}: {where} uses `{op}`, which ddlens cannot export ({_first_line(exc)}). "
        f"Instead: {alternative(op)}. Run with --verbose for the full traceback.",
        op=op, module_path=paths[0] if paths else None,
    )
