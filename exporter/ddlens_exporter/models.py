"""The architectures ddlens ships as prebuilt bundles.

``ConvNet`` follows the dataset-distillation reference model (docs: protocols, "Reference
model"): ``depth`` blocks of Conv 3x3 (bias, padding 1) -> instance norm with affine
(GroupNorm with one group per channel) -> ReLU -> AvgPool 2x2, then flatten -> Linear. On
28x28 inputs the first conv pads by 3 so the maps go 32 -> 16 -> 8 -> 4 as on CIFAR.
"""

from __future__ import annotations

import torch
from torch import nn


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
