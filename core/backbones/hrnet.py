"""HRNet (Sun et al. 2019) returning its highest-resolution branch, as ACR uses it.

The parameter names follow the HRNet-W32 of the official ACR release (``conv1``, ``layer1``,
``transitionN``, ``stageN.<module>.branches`` / ``fuse_layers``), so its checkpoint loads as is.
Widths, module and block counts are constructor arguments so that tests can build a tiny one.
The stem keeps the input's scaling to the caller: it takes a float batch (B, 3, H, W) and
returns (B, width, H/4, W/4).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

BN_MOMENTUM = 0.1


def conv_bn(cin: int, cout: int, kernel: int, stride: int, relu: bool, momentum=0.1) -> nn.Module:
    """Conv (no bias) + BatchNorm (+ ReLU), as a Sequential named 0, 1 (, 2)."""
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False),
        nn.BatchNorm2d(cout, momentum=momentum),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet's basic block)."""

    expansion = 1

    def __init__(self, cin: int, cout: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 -> 1x1 convolutions, 4x channel expansion, residual connection."""

    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width, momentum=BN_MOMENTUM)
        self.conv3 = nn.Conv2d(width, width * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width * 4, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


def make_blocks(block, cin: int, width: int, count: int) -> nn.Sequential:
    """``count`` blocks; the first gets a 1x1 projection when the channel count changes."""
    cout = width * block.expansion
    downsample = None
    if cin != cout:
        downsample = conv_bn(cin, cout, 1, 1, relu=False, momentum=BN_MOMENTUM)
    layers = [block(cin, width, 1, downsample)]
    layers += [block(cout, width) for _ in range(count - 1)]
    return nn.Sequential(*layers)


class HRModule(nn.Module):
    """Parallel branches at several resolutions, then exchange between them (sum fusion).

    Output i is relu(sum_j f_ij(x_j)): f_ii is the identity, a lower-resolution input is
    projected by a 1x1 conv and upsampled (nearest), a higher-resolution one is brought down by
    strided 3x3 convolutions. With ``outputs=1`` only the highest resolution is produced.
    """

    def __init__(self, widths: Sequence[int], blocks: int, outputs: int):
        super().__init__()
        self.branches = nn.ModuleList([make_blocks(BasicBlock, w, w, blocks) for w in widths])
        n = len(widths)
        self.fuse_layers = nn.ModuleList()
        for i in range(outputs if n > 1 else 0):
            row = nn.ModuleList()
            for j in range(n):
                if j > i:
                    row.append(nn.Sequential(
                        nn.Conv2d(widths[j], widths[i], 1, 1, 0, bias=False),
                        nn.BatchNorm2d(widths[i]),
                        nn.Upsample(scale_factor=2 ** (j - i), mode="nearest"),
                    ))  # fmt: skip
                elif j == i:
                    row.append(None)
                else:
                    steps = [
                        conv_bn(widths[j], widths[j], 3, 2, relu=True) for _ in range(i - j - 1)
                    ]
                    steps.append(conv_bn(widths[j], widths[i], 3, 2, relu=False))
                    row.append(nn.Sequential(*steps))
            self.fuse_layers.append(row)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs, strict=True)]
        if len(xs) == 1:
            return xs
        out = []
        for i, row in enumerate(self.fuse_layers):
            y = xs[0] if i == 0 else row[0](xs[0])
            for j in range(1, len(xs)):
                y = y + (xs[j] if i == j else row[j](xs[j]))
            out.append(self.relu(y))
        return out


class HRNet(nn.Module):
    """HRNet trunk; ``forward`` returns the highest-resolution branch (B, width, H/4, W/4).

    Defaults are HRNet-W32 as in ACR: a stem of two stride-2 convolutions (no max-pool), four
    bottlenecks, then stages of 1, 4 and 3 modules with 2, 3 and 4 branches of 4 basic blocks.
    """

    def __init__(
        self,
        width: int = 32,
        stage_modules: Sequence[int] = (1, 4, 3),
        blocks: int = 4,
        stem_blocks: int = 4,
        stem_width: int = 64,
    ):
        super().__init__()
        self.backbone_channels = width
        self.conv1 = nn.Conv2d(3, stem_width, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_width, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(stem_width, stem_width, 3, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(stem_width, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = make_blocks(Bottleneck, stem_width, 64, stem_blocks)
        widths = [width * 2**k for k in range(4)]
        previous = [64 * Bottleneck.expansion]
        for s, modules in enumerate(stage_modules, start=2):
            current = widths[:s]
            setattr(self, f"transition{s - 1}", self._transition(previous, current))
            last = s == len(stage_modules) + 1
            stage = [
                HRModule(current, blocks, 1 if last and m == modules - 1 else len(current))
                for m in range(modules)
            ]
            setattr(self, f"stage{s}", nn.Sequential(*stage))
            previous = current

    @staticmethod
    def _transition(previous: Sequence[int], current: Sequence[int]) -> nn.ModuleList:
        """Adapt existing branches whose width changes; grow new, lower-resolution branches."""
        layers = nn.ModuleList()
        for i, w in enumerate(current):
            if i < len(previous):
                layers.append(
                    conv_bn(previous[i], w, 3, 1, relu=True) if previous[i] != w else None
                )
            else:
                cin = previous[-1]
                steps = []
                for k in range(i + 1 - len(previous)):
                    cout = w if k == i - len(previous) else cin
                    steps.append(conv_bn(cin, cout, 3, 2, relu=True))
                layers.append(nn.Sequential(*steps))
        return layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        ys = [self.layer1(x)]
        stage = 2
        while hasattr(self, f"stage{stage}"):
            xs = []
            for i, layer in enumerate(getattr(self, f"transition{stage - 1}")):
                source = ys[i] if i < len(ys) else ys[-1]  # new branches grow from the lowest
                xs.append(source if layer is None else layer(source))
            ys = getattr(self, f"stage{stage}")(xs)
            stage += 1
        return ys[0]
