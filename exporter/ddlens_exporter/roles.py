"""The five graph roles of a bundle as pure functions of (parameters, data), built with torch.func.

Every role function takes flat positional tensors in the order docs/bundle-format.md gives
and returns a flat tuple in the format's output order, so it can be traced as it is.

Features rule: the *features* of a model are the input of its classifier, found as follows:

1. if the module has a ``features(x)`` method **and** a ``classifier`` submodule, then
   ``features = features(x)`` (flattened to ``[B, F]``) and ``logits = classifier(features)``
   (``forward`` is not called; it must compute the same thing);
2. otherwise the model's ``forward`` runs and the features are the input of the **last
   ``nn.Linear`` in registration order** (captured with a forward pre-hook). That Linear must
   run exactly once per forward pass and see a 2-D input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from . import running_stats as rs

#: Role names in the order the format lists them.
ROLE_NAMES = ("forward", "grad", "grad_vjp", "features_vjp", "loss_jvp")


def _last_linear(model: nn.Module) -> nn.Linear:
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(
            f"{type(model).__name__} has no nn.Linear layer; ddlens needs a final Linear classifier "
            "(or a `features(x)` method plus a `classifier` submodule) to define the features"
        )
    return linears[-1]


def _uses_features_method(model: nn.Module) -> bool:
    return callable(getattr(model, "features", None)) and isinstance(getattr(model, "classifier", None), nn.Module)


class FunctionalModel:
    """``model`` as a pure function ``(params dict, x) -> (logits, features)``."""

    def __init__(self, model: nn.Module):
        model.eval()  # no dropout noise in graphs; BatchNorm forms are set by --batchnorm
        self.model = model
        self.param_names = [n for n, _ in model.named_parameters()]
        #: Running-statistics state (``--batchnorm running-stats``), in manifest order.
        self.state_names = rs.state_names(model)
        self.momenta = rs.momenta(model)
        self._explicit = _uses_features_method(model)
        self._hooked = None if self._explicit else _last_linear(model)

    def __call__(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self._explicit:
            return self._call_explicit(params, x)
        captured: list[torch.Tensor] = []

        def hook(_module, args):
            captured.append(args[0])

        handle = self._hooked.register_forward_pre_hook(hook)
        try:
            logits = functional_call(self.model, params, (x,))
        finally:
            handle.remove()
        if len(captured) != 1:
            raise ValueError(
                f"{type(self.model).__name__}: the last nn.Linear ran {len(captured)} times in one forward "
                "pass; ddlens takes its input as the features, so it must run exactly once"
            )
        feats = captured[0]
        if feats.dim() != 2 or logits.dim() != 2:
            raise ValueError(
                f"{type(self.model).__name__}: features {tuple(feats.shape)} and logits {tuple(logits.shape)} "
                "must both be 2-D [batch, n]"
            )
        return logits, feats

    def call_eval(self, params: dict[str, torch.Tensor], state: list[torch.Tensor], x: torch.Tensor):
        """Evaluation mode: the running-stats BatchNorm layers normalise with ``state``."""
        with rs.evaluating(self.model, state):
            return self(params, x)

    def call_with_stats(self, params: dict[str, torch.Tensor], x: torch.Tensor):
        """Training mode, plus each running-stats layer's batch mean and unbiased variance
        (flat, in state order): ``(logits, features, stats)``."""
        with rs.recording(self.model) as rec:
            logits, feats = self(params, x)
            return logits, feats, rec.stats()

    def _call_explicit(self, params, x):
        model = self.model

        def run(inp):
            feats = torch.flatten(model.features(inp), 1)
            return model.classifier(feats), feats

        # functional_call only drives a module's forward; a throwaway wrapper module whose
        # forward is `run` lets it swap the parameters in for the features/classifier calls.
        return functional_call(_MethodRunner(model, run), _prefix(params), (x,))


class _MethodRunner(nn.Module):
    """Wraps a model so that ``functional_call`` can run an arbitrary function of it."""

    def __init__(self, model: nn.Module, fn: Callable):
        super().__init__()
        self.model = model
        self._fn = fn

    def forward(self, x):
        return self._fn(x)


def _prefix(params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"model.{k}": v for k, v in params.items()}


class GraphModel:
    """A traced training-mode forward graph ``(P..., x) -> (logits, features, stats...)``
    behind the same interface as :class:`FunctionalModel` (used by the staged tracing in
    :mod:`.tracing`). ``stats`` are the batch statistics of the running-stats BatchNorm layers
    (none for other models); ``state_names`` empty makes the roles built on it stateless."""

    def __init__(self, graph: Callable, param_names: list[str], state_names: list[str] = (),
                 momenta: list[float] = ()):
        self.graph = graph
        self.param_names = list(param_names)
        self.state_names = list(state_names)
        self.momenta = list(momenta)

    def call_with_stats(self, params, x):
        logits, feats, *stats = self.graph(*[params[n] for n in self.param_names], x)
        return logits, feats, stats

    def __call__(self, params, x):
        logits, feats, _ = self.call_with_stats(params, x)
        return logits, feats


@dataclass
class Roles:
    """The role functions of one model; each takes and returns flat tensors (format order).

    The optional graphs replace an inner derivative by an already traced graph, so that the
    outer derivative is a first-order one, taken with plain autograd (see
    :class:`.tracing.StagedTracer`):

    * ``grad_graph`` computes the ``grad`` role ``(P..., x, y, w) -> (loss, g...)`` and is the
      inner gradient of ``grad_vjp``;
    * ``ce_vjp_graph`` computes :meth:`ce_vjp` and turns ``loss_jvp`` into a derivative of a
      vector-Jacobian product (forward mode is not used then).
    """

    fmodel: FunctionalModel | GraphModel
    grad_graph: Callable | None = None
    ce_vjp_graph: Callable | None = None

    @property
    def names(self) -> list[str]:
        return self.fmodel.param_names

    @property
    def state_names(self) -> list[str]:
        """Running-statistics state taken by ``forward`` and ``grad`` (empty: stateless)."""
        return self.fmodel.state_names

    def _split(self, args, n_groups: int):
        """Splits the leading ``n_groups`` parameter-shaped groups off ``args``."""
        k = len(self.names)
        groups = [dict(zip(self.names, args[i * k:(i + 1) * k])) for i in range(n_groups)]
        return groups, args[n_groups * k:]

    def _split_state(self, args):
        """``P..., S..., rest...`` -> (params dict, state list, rest)."""
        (params,), rest = self._split(args, 1)
        s = len(self.state_names)
        return params, list(rest[:s]), rest[s:]

    # -- losses ----------------------------------------------------------------------------

    def per_sample_ce(self, params, x, y):
        """Per-sample cross-entropy ``[B]``."""
        logits, _ = self.fmodel(params, x)
        return F.cross_entropy(logits, y, reduction="none")

    def loss(self, params, x, y, w):
        """``L = (1/B) * sum_i w_i * ce_i``."""
        return (w * self.per_sample_ce(params, x, y)).sum() / x.shape[0]

    # -- roles -----------------------------------------------------------------------------

    def forward(self, *args):
        """``P..., S..., x -> logits, features`` (``S``: running statistics, evaluation mode)."""
        params, state, (x,) = self._split_state(args)
        if state:
            return self.fmodel.call_eval(params, state, x)
        return self.fmodel(params, x)

    def forward_train(self, *args):
        """Helper graph ``P..., x -> logits, features, stats...``: training mode, with the
        batch statistics of the running-stats layers (not a bundle role)."""
        (params,), (x,) = self._split(args, 1)
        logits, feats, stats = self.fmodel.call_with_stats(params, x)
        return (logits, feats, *stats)

    def grad(self, *args):
        """``P..., S..., x, y, w -> loss, g:<param>..., new:<state>...`` (training mode; the
        updated running statistics only when the model has state)."""
        params, state, (x, y, w) = self._split_state(args)
        if not state:
            # Plain first-order autograd, not torch.func: torch.func runs the backward with
            # grad mode on, where PyTorch writes a norm's backward as its twice-differentiable
            # composite of a dozen ops; here it stays one op (native_group_norm_backward), which
            # the exporter emits as a fused op (fused.py).
            leaves = {n: params[n].detach().requires_grad_() for n in self.names}
            with torch.enable_grad():
                loss = self.loss(leaves, x, y, w)
                grads = torch.autograd.grad(loss, [leaves[n] for n in self.names], allow_unused=True)
            grads = [torch.zeros_like(leaves[n]) if g is None else g for n, g in zip(self.names, grads)]
            return (loss.detach(), *grads)

        def loss_and_stats(p):
            logits, _, stats = self.fmodel.call_with_stats(p, x)
            return (w * F.cross_entropy(logits, y, reduction="none")).sum() / x.shape[0], stats

        grads, (loss, stats) = torch.func.grad_and_value(loss_and_stats, has_aux=True)(params)
        new_state = rs.updated_state(state, stats, self.fmodel.momenta)
        return (loss, *[grads[n] for n in self.names], *new_state)

    def grad_vjp(self, *args):
        """``P..., x, y, w, a... -> hv:<param>..., x_grad`` = gradient of ``<grad L, a>``
        w.r.t. the parameters (the Hessian-vector product H a) and w.r.t. x."""
        k = len(self.names)
        params = dict(zip(self.names, args[:k]))
        x, y, w = args[k:k + 3]
        a = dict(zip(self.names, args[k + 3:]))
        if self.grad_graph is not None:
            def grad_dot_a(*leaves):
                outs = self.grad_graph(*leaves, y, w)
                return _dot(dict(zip(self.names, outs[1:])), a, self.names)

            grads = _autograd_grad(grad_dot_a, [params[n] for n in self.names] + [x])
            return tuple(grads)

        def eager_grad_dot_a(p, xx):
            return _dot(torch.func.grad(self.loss)(p, xx, y, w), a, self.names)

        hv, x_grad = torch.func.grad(eager_grad_dot_a, argnums=(0, 1))(params, x)
        return (*[hv[n] for n in self.names], x_grad)

    def features_vjp(self, *args):
        """``P..., x, c -> x_grad`` = d/dx ``<features(x), c>``."""
        (params,), (x, c) = self._split(args, 1)
        # Plain autograd, as in grad (the norms' backward stays one op).
        leaf = x.detach().requires_grad_()
        with torch.enable_grad():
            (x_grad,) = torch.autograd.grad(self.fmodel(params, leaf)[1], [leaf], grad_outputs=[c])
        return (x_grad,)

    def loss_jvp(self, *args):
        """``P..., v..., x, y -> dloss`` = per-sample d/de ce_i(theta + e v).

        Eagerly this is forward mode (``torch.func.jvp``). With ``ce_vjp_graph`` it is the
        transpose trick instead: ``u -> <J^T u, v>`` is linear in ``u`` with gradient ``J v``,
        so one reverse pass through the traced vector-Jacobian product gives every per-sample
        directional derivative (forward-mode rules read concrete sizes while tracing)."""
        (params, v), (x, y) = self._split(args, 2)
        if self.ce_vjp_graph is None:
            _, dloss = torch.func.jvp(lambda p: self.per_sample_ce(p, x, y), (params,), (v,))
            return (dloss,)

        def vjp_dot_v(u):
            jt_u = self.ce_vjp_graph(*[params[n] for n in self.names], x, y, u)
            return _dot(dict(zip(self.names, jt_u)), v, self.names)

        u0 = torch.zeros_like(y, dtype=x.dtype)  # any u works: the function is linear in u
        return tuple(_autograd_grad(vjp_dot_v, [u0]))

    def ce_vjp(self, *args):
        """Helper graph ``P..., x, y, u -> (d/dtheta <ce(theta), u>)...`` (not a bundle role)."""
        (params,), (x, y, u) = self._split(args, 1)
        grads = torch.func.grad(lambda p: (self.per_sample_ce(p, x, y) * u).sum())(params)
        return tuple(grads[n] for n in self.names)

    def get(self, role: str) -> Callable:
        if role not in ROLE_NAMES and role not in ("ce_vjp", "forward_train"):
            raise ValueError(f"unknown role {role!r}; known roles: {', '.join(ROLE_NAMES)}")
        return getattr(self, role)


def _autograd_grad(fn: Callable, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    """Gradient of the scalar ``fn(*inputs)`` by plain (first-order) autograd.

    Used on traced graphs instead of torch.func: ops registered with
    ``torch.library.register_autograd`` (the exporter's opaque weight-gradient op) support
    autograd but not functorch transforms. Inputs the output does not depend on get zeros."""
    leaves = [t.detach().requires_grad_() for t in inputs]
    with torch.enable_grad():
        out = fn(*leaves)
        grads = torch.autograd.grad(out, leaves, allow_unused=True)
    return [torch.zeros_like(t) if g is None else g for t, g in zip(inputs, grads)]


def _dot(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], names: list[str]) -> torch.Tensor:
    """``sum_n <a[n], b[n]>`` written with ``dot`` of flattened tensors: its derivative is
    ``b * scalar``, where ``(a * b).sum()`` would give an ``expand`` of the unit seed that the
    ONNX optimiser folds into a parameter-sized constant."""
    total = None
    for n in names:
        d = torch.dot(a[n].reshape(-1), b[n].reshape(-1))
        total = d if total is None else total + d
    return total


def io_names(role: str, param_names: list[str], state_names: list[str] = ()) -> tuple[list[str], list[str]]:
    """Input and output tensor names of ``role`` exactly as docs/bundle-format.md lists them
    (``state_names``: the running-statistics state, read by ``forward`` and updated by ``grad``)."""
    p = list(param_names)
    s = list(state_names)

    def pre(prefix):
        return [prefix + n for n in p]

    table = {
        "forward": (p + s + ["x"], ["logits", "features"]),
        "grad": (p + s + ["x", "y", "w"], ["loss"] + pre("g:") + ["new:" + n for n in s]),
        "grad_vjp": (p + ["x", "y", "w"] + pre("a:"), pre("hv:") + ["x_grad"]),
        "features_vjp": (p + ["x", "c"], ["x_grad"]),
        "loss_jvp": (p + pre("v:") + ["x", "y"], ["dloss"]),
    }
    if role not in table:
        raise ValueError(f"unknown role {role!r}; known roles: {', '.join(ROLE_NAMES)}")
    return table[role]
