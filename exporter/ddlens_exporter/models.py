"""The architectures ddlens ships as prebuilt bundles.

``AlexNet``, ``VGG11`` and ``ResNet18`` follow ``networks.py`` of the dataset-condensation
reference code (DC/DSA/DM, reused by MTT), layer for layer and with the same parameter names,
so that the cross-architecture tables of the literature can be reproduced.

``ConvNet`` follows the dataset-distillation reference model (docs: protocols, "Reference
model"): ``depth`` blocks of Conv 3x3 (bias, padding 1) -> instance norm with affine
(GroupNorm with one group per channel) -> ReLU -> AvgPool 2x2, then flatten -> Linear. On
28x28 inputs the first conv pads by 3 so the maps go 32 -> 16 -> 8 -> 4 as on CIFAR.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: ``norm`` choices of :class:`VGG11` and :class:`ResNet18`.
NORMS = ("instancenorm", "batchnorm")


def _norm(kind: str, channels: int) -> nn.Module:
    """Instance norm as the reference code writes it (GroupNorm, one group per channel,
    affine) or BatchNorm2d (whose running statistics the exporter handles, see
    ``--batchnorm``)."""
    if kind == "instancenorm":
        return nn.GroupNorm(channels, channels, affine=True)
    if kind == "batchnorm":
        return nn.BatchNorm2d(channels)
    raise ValueError(f"norm must be one of {NORMS}, got {kind!r}")


class ConvNet(nn.Module):
    """ConvNet-``depth`` of the dataset-distillation literature (width 128 = ConvNet-3)."""

    def __init__(self, channels: int = 1, num_classes: int = 10, width: int = 128, depth: int = 3,
                 im_size: tuple[int, int] = (28, 28)):
        super().__init__()
        h, w = im_size
        if h != w:
            raise ValueError(f"ConvNet needs square images, got {h}x{w}")
        # 28x28 inputs are padded to 32x32 by the first conv, as in the DC/DSA/DM code.
        first_pad = 3 if h == 28 else 1
        size = h + 2 * first_pad - 2
        in_ch = channels
        for i in range(depth):
            conv = nn.Conv2d(in_ch, width, kernel_size=3, padding=first_pad if i == 0 else 1, bias=True)
            setattr(self, f"conv{i}", conv)
            setattr(self, f"norm{i}", nn.GroupNorm(width, width, affine=True))
            in_ch = width
            size //= 2
        self.depth = depth
        self.act = nn.ReLU()
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)
        self.feature_dim = width * size * size
        self.classifier = nn.Linear(self.feature_dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(self.depth):
            x = getattr(self, f"conv{i}")(x)
            x = getattr(self, f"norm{i}")(x)
            x = self.pool(self.act(x))
        return self.classifier(torch.flatten(x, 1))


class MLP(nn.Module):
    """Flatten -> Linear(in, hidden) -> ReLU -> Linear(hidden, hidden) -> ReLU -> Linear(classes)."""

    def __init__(self, in_features: int = 784, hidden: int = 128, num_classes: int = 10):
        super().__init__()
        self.fc0 = nn.Linear(in_features, hidden)
        self.fc1 = nn.Linear(hidden, hidden)
        self.classifier = nn.Linear(hidden, num_classes)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(x, 1)
        x = self.act(self.fc0(x))
        x = self.act(self.fc1(x))
        return self.classifier(x)


class TinyConv(nn.Module):
    """The cheap test model: Conv(1->4, 3x3, pad 1) -> GroupNorm(4, 4) -> ReLU -> AvgPool 2
    -> flatten -> Linear(4*4*4 -> 3) on 1x8x8 inputs."""

    def __init__(self, channels: int = 1, num_classes: int = 3, width: int = 4):
        super().__init__()
        self.conv0 = nn.Conv2d(channels, width, kernel_size=3, padding=1)
        self.norm0 = nn.GroupNorm(width, width)
        self.act = nn.ReLU()
        self.pool = nn.AvgPool2d(2)
        self.classifier = nn.Linear(width * 4 * 4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.act(self.norm0(self.conv0(x))))
        return self.classifier(torch.flatten(x, 1))


class TinyBatchNormConv(nn.Module):
    """The cheap BatchNorm test model: Conv(1->4, 3x3, pad 1) -> BatchNorm2d(4) -> ReLU ->
    AvgPool 2 -> flatten -> Linear(4*4*4 -> 3) on 1x8x8 inputs (exported with running
    statistics as state, see ``--batchnorm running-stats``)."""

    def __init__(self, channels: int = 1, num_classes: int = 3, width: int = 4):
        super().__init__()
        self.conv0 = nn.Conv2d(channels, width, kernel_size=3, padding=1)
        self.norm0 = nn.BatchNorm2d(width)
        self.act = nn.ReLU()
        self.pool = nn.AvgPool2d(2)
        self.classifier = nn.Linear(width * 4 * 4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.act(self.norm0(self.conv0(x))))
        return self.classifier(torch.flatten(x, 1))


class TinyMaxPoolNet(nn.Module):
    """Second cheap test model covering max pooling and a smooth activation: Conv(1->4, 3x3,
    pad 1) -> Tanh -> MaxPool 2 -> flatten -> Linear(64 -> 16) -> Tanh -> Linear(16 -> 3)."""

    def __init__(self, channels: int = 1, num_classes: int = 3, width: int = 4):
        super().__init__()
        self.conv0 = nn.Conv2d(channels, width, kernel_size=3, padding=1)
        self.act = nn.Tanh()
        self.pool = nn.MaxPool2d(2)
        self.fc0 = nn.Linear(width * 4 * 4, 16)
        self.classifier = nn.Linear(16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.act(self.conv0(x)))
        x = self.act(self.fc0(torch.flatten(x, 1)))
        return self.classifier(x)


class AlexNet(nn.Module):
    """AlexNet of the dataset-condensation code for 28/32-px inputs: five 3x3/5x5 convs
    (128-192-256-192-192, ReLU) with three 2x2 max pools, then Linear(192*4*4 -> classes).
    One-channel 28x28 inputs get padding 4 in the first conv, so the maps go 32-16-8-4."""

    def __init__(self, channels: int = 3, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 128, kernel_size=5, stride=1, padding=4 if channels == 1 else 2),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Conv2d(128, 192, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Conv2d(192, 256, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(256, 192, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(192, 192, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),
        )
        self.fc = nn.Linear(192 * 4 * 4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.features(x), 1))


#: VGG-11 layer plan: output channels of each 3x3 conv, ``"M"`` for a 2x2 max pool.
VGG11_CFG = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


class VGG11(nn.Module):
    """VGG-11 of the dataset-condensation code (its default ``VGG11``: instance norm): blocks
    of Conv 3x3 -> norm -> ReLU with five 2x2 max pools, then Linear(512 -> classes). The
    first conv pads one-channel inputs by 3 (28 -> 32 px)."""

    def __init__(self, channels: int = 3, num_classes: int = 10, norm: str = "instancenorm"):
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = channels
        for i, item in enumerate(VGG11_CFG):
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(in_ch, item, kernel_size=3, padding=3 if channels == 1 and i == 0 else 1),
                           _norm(norm, item), nn.ReLU()]
                in_ch = item
        layers.append(nn.AvgPool2d(kernel_size=1, stride=1))  # as in the reference (an identity)
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


class BasicBlock(nn.Module):
    """ResNet basic block: Conv 3x3 (stride) -> norm -> ReLU -> Conv 3x3 -> norm, plus the
    shortcut (identity, or Conv 1x1 (stride) -> norm when the shape changes), then ReLU."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1, norm: str = "instancenorm"):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = _norm(norm, planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = _norm(norm, planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False), _norm(norm, planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 of the dataset-condensation code: 3x3 stem (stride 1, no max pool), basic
    blocks [2, 2, 2, 2] with 64-128-256-512 channels, global average pooling, Linear(512).

    ``norm="instancenorm"`` is the reference ``ResNet18``, ``norm="batchnorm"`` its
    ``ResNet18BN``. The reference pools with ``avg_pool2d(out, 4)``, which is global pooling
    on the 4x4 maps that 32- and 28-px inputs end with; this is written as adaptive pooling."""

    def __init__(self, channels: int = 3, num_classes: int = 10, norm: str = "instancenorm"):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = _norm(norm, 64)
        in_planes = 64
        for i, (planes, stride) in enumerate([(64, 1), (128, 2), (256, 2), (512, 2)]):
            blocks = [BasicBlock(in_planes, planes, stride, norm), BasicBlock(planes, planes, 1, norm)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            in_planes = planes
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.classifier(torch.flatten(self.pool(out), 1))
