"""Tracing the role graphs with a symbolic batch size.

Each role is traced with ``make_fx`` on fake inputs whose batch size is a symbol (all other
sizes static), so nothing in the recorded ATen graph bakes in the example batch. Derivatives are taken in stages, see
:class:`StagedTracer`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.fx.experimental.proxy_tensor import make_fx
from torch.fx.experimental.symbolic_shapes import DimDynamic, ShapeEnv, StatelessSymbolicContext

from .decompositions import decomposition_table, twice_differentiable_table
from .fused import fuse_relu_into_norm_backward
from .roles import GraphModel, Roles, io_names

#: Batch size of the example inputs used for tracing. Not 0 or 1, which PyTorch specialises.
TRACE_BATCH = 5


def example_inputs(role: str, params: list[torch.Tensor], input_shape: Sequence[int], num_classes: int,
                   feature_dim: int, batch: int, generator: torch.Generator | None = None,
                   state: Sequence[torch.Tensor] = ()) -> list[torch.Tensor]:
    """Random inputs for ``role`` in the format's order (params first, then the running-stats
    ``state`` where the role takes it, both as given)."""
    g = generator

    def randn(*shape):
        return torch.randn(*shape, generator=g)

    x = randn(batch, *input_shape)
    y = torch.randint(0, num_classes, (batch,), generator=g)
    w = torch.rand(batch, generator=g) + 0.5
    like = [randn(*p.shape) for p in params]
    if role == "forward":
        return [*params, *state, x]
    if role == "grad":
        return [*params, *state, x, y, w]
    if role == "grad_vjp":
        return [*params, x, y, w, *like]
    if role == "features_vjp":
        return [*params, x, randn(batch, feature_dim)]
    if role == "loss_jvp":
        return [*params, *like, x, y]
    raise ValueError(f"unknown role {role!r}")


def batch_dims(role: str, n_params: int, n_state: int = 0) -> list[bool]:
    """For each input of ``role``: does it carry the batch dimension (dim 0)? ``n_state``:
    running-stats state tensors (taken by ``forward`` and ``grad`` after the parameters)."""
    if role == "ce_vjp":
        return [False] * n_params + [True] * 3
    n_state = n_state if role in STATEFUL_ROLES else 0
    n_in = len(io_names(role, ["p"] * n_params, ["s"] * n_state)[0])
    flags = [False] * n_in
    if role == "loss_jvp":
        flags[2 * n_params:] = [True, True]
    else:
        extra = {"forward": 1, "grad": 3, "grad_vjp": 3, "features_vjp": 2}[role]
        start = n_params + n_state
        flags[start:start + extra] = [True] * extra
    return flags


#: The roles that take the running-stats state (after the parameters).
STATEFUL_ROLES = ("forward", "grad")


class StagedTracer:
    """Traces the roles of one model in stages, so that autograd never differentiates a
    backward kernel and forward-mode AD is never used.

    Why: PyTorch's higher-order derivative formulas are C++ that reads concrete sizes
    (``_convolution_double_backward`` and the differentiable group-norm backward call
    ``sizes()``; so does functorch's forward mode), which silently fixes the symbolic batch
    size to the example's. So each derivative is taken of an already traced graph whose ops
    only have first-order, size-generic rules:

    * stage 1: ``forward`` = the model traced (fused norm ops kept, fast in ONNX Runtime;
      for a model with running-stats BatchNorm this is evaluation mode, and its training-mode
      twin ``forward_train``, which also outputs the batch statistics, is what the later
      stages differentiate),
      and ``forward_prim``, the same with the norm ops decomposed into reductions and
      elementwise ops: the backward of a fused norm reads its saved mean/rstd outputs, which
      PyTorch treats as non-differentiable (a second derivative would silently miss terms;
      it did for ``InstanceNorm2d``) or differentiates with the size-reading C++ rule;
    * stage 2: ``grad``, ``features_vjp`` and the helper ``ce_vjp`` = torch.func on
      ``forward`` (``grad_prim``: ``grad`` on ``forward_prim``); the backward kernels this
      produces are rewritten into forward ops while tracing (:mod:`.decompositions`), the
      conv weight gradient into the opaque ``ddlens::conv_weight_grad``;
    * stage 3: ``grad_vjp`` = gradient of ``<grad_prim graph, a>`` w.r.t. parameters and x,
      ``loss_jvp`` = gradient of ``u -> <ce_vjp graph(u), v>`` w.r.t. u (the transpose of a
      vector-Jacobian product is a Jacobian-vector product). Both by plain first-order
      autograd, which is what ``ddlens::conv_weight_grad``'s derivative rule supports.
    """

    def __init__(self, roles: Roles, params: list[torch.Tensor], input_shape: Sequence[int], num_classes: int,
                 feature_dim: int, grad_weight_impl: str = "matmul", batch: int = TRACE_BATCH,
                 state: Sequence[torch.Tensor] = ()):
        self.names = roles.names
        self.state_names = roles.state_names
        self.params = params
        self.state = list(state)
        if len(self.state) != len(self.state_names):
            raise ValueError(f"{len(self.state)} state tensors for state {self.state_names}")
        self.table = decomposition_table(grad_weight_impl)
        self._eager = roles
        self._example = lambda role, state: example_inputs(
            role, params, input_shape, num_classes, feature_dim, batch, torch.Generator().manual_seed(0), state)
        self._graphs: dict[str, torch.fx.GraphModule] = {}
        # The forward graph that gets differentiated twice has its norm ops decomposed.
        self._prim_table = twice_differentiable_table(grad_weight_impl)

    def example_inputs(self, role: str, stateful: bool = True) -> list[torch.Tensor]:
        """Example inputs of a role or helper graph (fixed seed, batch :data:`TRACE_BATCH`);
        ``stateful=False`` leaves the running-stats state out (the stateless helpers)."""
        if role == "ce_vjp":
            x, y = self._example("loss_jvp", ())[-2:]
            return [*self.params, x, y, torch.rand(x.shape[0])]
        return self._example(role, self.state if stateful else ())

    def batch_dims(self, role: str) -> list[bool]:
        """:func:`batch_dims` of a bundle role of this model."""
        return batch_dims(role, len(self.names), len(self.state_names))

    def _trace(self, role: str, fn, table=None, stateful: bool = True) -> torch.fx.GraphModule:
        batched = batch_dims(role, len(self.names), len(self.state_names) if stateful else 0)
        args = _fake_inputs(self.example_inputs(role, stateful), batched)
        gm = make_fx(fn, decomposition_table=table or self.table, tracing_mode="fake")(*args)
        _check_batch_symbolic(gm, role, batched)
        return gm

    def _on(self, forward: str, stateless: bool = False, **inner) -> Roles:
        """Roles computed on a traced training-mode stage-1 graph (plus traced inner
        derivatives); ``stateless`` builds roles without the running-stats state."""
        state = () if stateless else self.state_names
        return Roles(GraphModel(self.graph(forward), self.names, state, self._eager.fmodel.momenta), **inner)

    def graph(self, role: str) -> torch.fx.GraphModule:
        """The traced graph of a role or helper (cached; stages traced on demand)."""
        if role not in self._graphs:
            self._graphs[role] = self._build(role)
        return self._graphs[role]

    def _build(self, role: str) -> torch.fx.GraphModule:
        if role == "forward":
            return self._trace(role, self._eager.forward)
        if role == "forward_train":
            # Without state the forward graph is the training-mode graph already.
            if not self.state_names:
                return self.graph("forward")
            return self._trace("forward", self._eager.forward_train, stateful=False)
        if role == "forward_prim":
            gm = self._trace("forward", self._eager.forward_train, self._prim_table, stateful=False)
            _check_twice_differentiable(gm)
            return gm
        if role == "grad":
            return fuse_relu_into_norm_backward(self._trace(role, self._on("forward_train").grad))
        if role == "features_vjp":
            return fuse_relu_into_norm_backward(self._trace(role, self._on("forward_train", stateless=True).get(role)))
        if role == "ce_vjp":
            return self._trace(role, self._on("forward_train", stateless=True).get(role))
        if role == "grad_prim":
            return self._trace("grad", self._on("forward_prim", stateless=True).grad, stateful=False)
        if role == "grad_vjp":
            roles = self._on("forward_prim", stateless=True, grad_graph=self.graph("grad_prim"))
            return self._trace(role, roles.grad_vjp)
        if role == "loss_jvp":
            return self._trace(role, self._on("forward_train", stateless=True,
                                              ce_vjp_graph=self.graph("ce_vjp")).loss_jvp)
        raise ValueError(f"unknown role {role!r}")


def _fake_inputs(args: list[torch.Tensor], batched: list[bool]) -> list[torch.Tensor]:
    """Fake tensors in one fresh shape environment, with a symbolic dim 0 on batched inputs
    and every other size static.

    Why not ``tracing_mode="symbolic"``: it makes *every* size symbolic (weights, H, W), and
    the symbolic reasoning about strided convolution sizes made a grad_vjp trace take a minute
    instead of seconds. Only the batch needs to stay symbolic."""
    shape_env = ShapeEnv()
    mode = FakeTensorMode(shape_env=shape_env, allow_non_fake_inputs=False)
    out = []
    for t, is_batched in zip(args, batched):
        dims = [DimDynamic.DYNAMIC if (is_batched and i == 0) else DimDynamic.STATIC for i in range(t.dim())]
        context = StatelessSymbolicContext(dynamic_sizes=dims)
        out.append(mode.from_tensor(t, symbolic_context=context))
    return out


def _aux_output_ops() -> set:
    """Fused ops whose saved statistics (mean, rstd, logsumexp...) are non-differentiable
    outputs in PyTorch: their backward reads them, so a second derivative through such an op
    silently misses terms."""
    aten = torch.ops.aten
    packets = ["native_batch_norm", "_native_batch_norm_legit", "_native_batch_norm_legit_functional",
               "_native_batch_norm_legit_no_training", "native_group_norm", "native_layer_norm",
               "_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_flash_attention",
               "_scaled_dot_product_efficient_attention", "_scaled_dot_product_cudnn_attention"]
    ops = set()
    for name in packets:
        packet = getattr(aten, name, None)
        if packet is not None:
            ops.update(getattr(packet, o) for o in packet.overloads())
    return ops


def _check_twice_differentiable(gm: torch.fx.GraphModule) -> None:
    """Refuses a forward graph for ``grad_vjp`` that still holds an op of :func:`_aux_output_ops`
    (the norms ddlens knows are rewritten before; anything else would give wrong numbers)."""
    bad = _aux_output_ops()
    for node in gm.graph.nodes:
        if node.op == "call_function" and node.target in bad:
            raise NotImplementedError(
                f"grad_vjp: the model uses {node.target}, whose second derivative PyTorch does not "
                "provide in full; export without grad_vjp (--roles) or use GroupNorm/LayerNorm/InstanceNorm"
            )


def _check_batch_symbolic(gm: torch.fx.GraphModule, role: str, batched: list[bool]) -> None:
    """Fails loudly if tracing specialised the batch size (the graph would only run at it)."""
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    for node, is_batched in zip(placeholders, batched):
        val = node.meta.get("val")
        if is_batched and val is not None and _is_concrete(val.shape[0]):
            raise RuntimeError(
                f"role {role}: tracing fixed the batch size to {val.shape[0]} (some PyTorch kernel read a "
                "concrete size); the graph would not have a dynamic batch"
            )


def _is_concrete(size) -> bool:
    """True when a traced size is (or was later refined to) a plain number."""
    if not isinstance(size, torch.SymInt):
        return True
    node = size.node
    return bool(node.shape_env.replace(node.expr).is_number)
