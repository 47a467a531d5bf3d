"""The prebuilt bundles of ddlens (``models/`` in the repository) and how to rebuild them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .export import BundleSpec
from .manifest import apply_batchnorm, parse_normalization
from .models import MLP, VGG11, AlexNet, ConvNet, ResNet18, TinyBatchNormConv, TinyConv, TinyMaxPoolNet
from .roles import ROLE_NAMES


@dataclass(frozen=True)
class Builtin:
    """One prebuilt bundle: the module factory and the manifest facts."""

    name: str
    factory: Callable[[], nn.Module]
    input_shape: tuple[int, int, int]
    num_classes: int
    normalization: str
    description: str
    #: ``--batchnorm`` form of the bundle (None: the model has no BatchNorm).
    batchnorm: str | None = None
    #: ``--optimize`` level of its graphs (:mod:`.optimize`): ``light`` for ResNet-18, whose
    #: export the full level's pattern rewriter would more than double.
    optimize: str = "full"

    def build(self) -> nn.Module:
        torch.manual_seed(0)  # graphs do not depend on the values; keeps tracing reproducible
        return apply_batchnorm(self.factory(), self.batchnorm)

    def spec(self, roles: Sequence[str] | None = None, grad_weight_impl: str = "matmul") -> BundleSpec:
        """The export settings of this bundle."""
        return BundleSpec(
            name=self.name, input_shape=self.input_shape, num_classes=self.num_classes,
            normalization=parse_normalization(self.normalization, self.input_shape[0]),
            description=self.description, roles=list(roles or ROLE_NAMES), grad_weight_impl=grad_weight_impl,
            batchnorm=self.batchnorm, optimize=self.optimize, source={"builtin": self.name},
        )


def _convnet(width: int, c: int, hw: int) -> Callable[[], nn.Module]:
    return lambda: ConvNet(channels=c, num_classes=10, width=width, depth=3, im_size=(hw, hw))


#: (channels, side, normalization) of the two input formats the architectures are built for.
_FORMATS = ((1, 28, "fashion-mnist"), (3, 32, "cifar10"))


def _architectures() -> list[Builtin]:
    """The cross-architecture models of the distillation literature, for both input formats."""
    out = []
    for c, hw, norm in _FORMATS:
        shape = f"{c}x{hw}x{hw}"
        out += [
            # Running statistics as state: trained in train() and tested in eval(), as the DC
            # code's evaluate_synset does with its ResNet18BN.
            Builtin(f"resnet18bn-{shape}", lambda c=c: ResNet18(c, 10, norm="batchnorm"), (c, hw, hw), 10, norm,
                    f"ResNet-18 (BatchNorm with running statistics as state, 3x3 stem, global avg pool) for "
                    f"{shape} inputs", batchnorm="running-stats", optimize="light"),
            Builtin(f"resnet18in-{shape}", lambda c=c: ResNet18(c, 10, norm="instancenorm"), (c, hw, hw), 10, norm,
                    f"ResNet-18 (instance norm, 3x3 stem, global avg pool) for {shape} inputs", optimize="light"),
            Builtin(f"vgg11-{shape}", lambda c=c: VGG11(c, 10), (c, hw, hw), 10, norm,
                    f"VGG-11 (instance norm, max pool) for {shape} inputs"),
            Builtin(f"alexnet-{shape}", lambda c=c: AlexNet(c, 10), (c, hw, hw), 10, norm,
                    f"AlexNet (5 convs 128-192-256-192-192, ReLU, max pool) for {shape} inputs"),
        ]
    return out


BUILTINS: dict[str, Builtin] = {b.name: b for b in [
    Builtin("convnet3-1x28x28", _convnet(128, 1, 28), (1, 28, 28), 10, "fashion-mnist",
            "ConvNet-3 (width 128, instance norm, avg pool; first conv padding 3) for 1x28x28 inputs"),
    Builtin("convnet3-3x32x32", _convnet(128, 3, 32), (3, 32, 32), 10, "cifar10",
            "ConvNet-3 (width 128, instance norm, avg pool) for 3x32x32 inputs"),
    Builtin("convnettiny-1x28x28", _convnet(16, 1, 28), (1, 28, 28), 10, "fashion-mnist",
            "ConvNet-Tiny (ConvNet-3 with width 16; first conv padding 3) for 1x28x28 inputs"),
    Builtin("convnettiny-3x32x32", _convnet(16, 3, 32), (3, 32, 32), 10, "cifar10",
            "ConvNet-Tiny (ConvNet-3 with width 16) for 3x32x32 inputs"),
    Builtin("mlp-1x28x28", lambda: MLP(784, 128, 10), (1, 28, 28), 10, "fashion-mnist",
            "MLP 784-128-128-10 with ReLU for 1x28x28 inputs"),
    Builtin("tiny-1x8x8", lambda: TinyConv(1, 3, 4), (1, 8, 8), 3, "none",
            "test model: Conv(1->4, 3x3) -> GroupNorm(4, 4) -> ReLU -> AvgPool 2 -> Linear(64 -> 3)"),
    Builtin("tiny-maxpool-1x8x8", lambda: TinyMaxPoolNet(1, 3, 4), (1, 8, 8), 3, "none",
            "test model: Conv(1->4, 3x3) -> Tanh -> MaxPool 2 -> Linear(64 -> 16) -> Tanh -> Linear(16 -> 3)"),
    Builtin("tiny-bn-1x8x8", lambda: TinyBatchNormConv(1, 3, 4), (1, 8, 8), 3, "none",
            "test model: Conv(1->4, 3x3) -> BatchNorm2d(4) (running statistics as state) -> ReLU -> AvgPool 2 "
            "-> Linear(64 -> 3)", batchnorm="running-stats"),
    *_architectures(),
]}


def get_builtin(name: str) -> Builtin:
    if name not in BUILTINS:
        raise ValueError(f"unknown builtin bundle {name!r}; known: {', '.join(BUILTINS)}")
    return BUILTINS[name]
