"""ResNet-50 (torchvision v1.5 layout) and the ResNet-50 + deconvolution backbone for ACR.

Written in plain torch from the architecture's published facts (He et al. 2016, bottleneck
variant with the stride on the 3x3 convolution as in torchvision's "v1.5"), because torchvision
cannot be imported here. The module and parameter names equal torchvision's ``resnet50()``, so
an ImageNet checkpoint of it loads with ``load_state_dict(strict=True)``.

``ResNetDeconvBackbone`` is the ACR paper's "faster" ResNet-50 option. The official ACR code
ships only HRNet-W32, so its neck is our design: the SimpleBaseline head (Xiao et al. 2018,
three stride-2 transposed convolutions of 256 channels) takes the stride-32 map back to
stride 4, and a 1x1 convolution gives the 32 channels that the ACR heads read from HRNet-W32.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

BN_EPS = 1e-5
BN_MOMENTUM = 0.1
EXPANSION = 4  # bottleneck output channels = EXPANSION * its width
RESNET50_LAYERS = (3, 4, 6, 3)
RESNET50_WIDTHS = (64, 128, 256, 512)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carries the stride), 1x1 expand, plus the identity or a projection.

    (B, in_channels, H, W) -> (B, EXPANSION * width, H / stride, W / stride).
    """

    def __init__(self, in_channels: int, width: int, stride: int = 1) -> None:
        super().__init__()
        out_channels = EXPANSION * width
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = _bn(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = _bn(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = _bn(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Sequential | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                _bn(out_channels),
            )

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """Bottleneck ResNet: 7x7/2 stem, 3x3/2 max-pool, four stages at strides 4, 8, 16, 32.

    ``layers`` gives the blocks per stage and ``widths`` the bottleneck widths (stage outputs are
    ``EXPANSION`` times wider; the stem has ``widths[0]`` channels). The defaults are ResNet-50;
    ``ResNet((1, 1, 1, 1), (8, 16, 32, 64))`` is a tiny variant for tests.
    """

    def __init__(
        self,
        layers: Sequence[int] = RESNET50_LAYERS,
        widths: Sequence[int] = RESNET50_WIDTHS,
        *,
        num_classes: int = 1000,
        include_top: bool = True,
        in_channels: int = 3,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        if len(layers) != 4 or len(widths) != 4:
            raise ValueError(f"need 4 stages, got layers={layers!r} widths={widths!r}")
        self.include_top = include_top
        self.feature_channels = tuple(EXPANSION * w for w in widths)
        self.out_channels = self.feature_channels[-1]

        self.conv1 = nn.Conv2d(in_channels, widths[0], 7, stride=2, padding=3, bias=False)
        self.bn1 = _bn(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        channels = widths[0]
        for index, (blocks, width) in enumerate(zip(layers, widths, strict=True)):
            stage = []
            for block in range(blocks):
                stride = 2 if block == 0 and index > 0 else 1
                stage.append(Bottleneck(channels, width, stride))
                channels = EXPANSION * width
            self.add_module(f"layer{index + 1}", nn.Sequential(*stage))
        if include_top:
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(channels, num_classes)

        self._init_weights(zero_init_residual)

    def _init_weights(self, zero_init_residual: bool) -> None:
        """torchvision's defaults: He normal (fan_out) convolutions, BN gamma 1 and beta 0.

        ``fc`` keeps ``nn.Linear``'s own initialisation, as torchvision's does. With
        ``zero_init_residual`` each block's last BN gamma starts at 0, so blocks start as identity.
        """
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        if zero_init_residual:
            for module in self.modules():
                if isinstance(module, Bottleneck):
                    nn.init.zeros_(module.bn3.weight)

    def forward_features(self, x: Tensor) -> list[Tensor]:
        """(B, C_in, H, W) image -> outputs of layer1..layer4.

        Shapes (B, feature_channels[i], H / s, W / s) for s = 4, 8, 16, 32 (rounded up, as the
        convolutions pad); for ResNet-50 the channels are 256, 512, 1024, 2048.
        """
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        features = []
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = stage(x)
            features.append(x)
        return features

    def forward_head(self, x: Tensor) -> Tensor:
        """(B, out_channels, h, w) layer4 map -> (B, num_classes) logits (global average pool)."""
        if not self.include_top:
            raise RuntimeError("this ResNet was built with include_top=False: it has no head")
        return self.fc(torch.flatten(self.avgpool(x), 1))

    def forward(self, x: Tensor) -> Tensor:
        """(B, C_in, H, W) -> (B, num_classes) logits, or the (B, out_channels, H/32, W/32) map
        of layer4 when built with ``include_top=False``."""
        x = self.forward_features(x)[-1]
        return self.forward_head(x) if self.include_top else x


def resnet50(
    *, include_top: bool = True, num_classes: int = 1000, zero_init_residual: bool = False
) -> ResNet:
    """ResNet-50 with torchvision's key names: 25,557,032 parameters and 320 state_dict entries
    (BN buffers included) with the 1000-class top; 23,508,032 and 318 without it."""
    return ResNet(
        RESNET50_LAYERS,
        RESNET50_WIDTHS,
        num_classes=num_classes,
        include_top=include_top,
        zero_init_residual=zero_init_residual,
    )


class ResNetDeconvBackbone(nn.Module):
    """ResNet trunk (no top), SimpleBaseline deconvolutions, 1x1 projection: a stride-4 map.

    (B, 3, H, W) normalised float image -> (B, out_channels, H/4, W/4), with H and W multiples
    of 32 (each transposed convolution exactly doubles the stride-32 map). The caller normalises
    the image (ACR scales it to [-1, 1] itself). Module names: ``trunk`` (a ``ResNet``, so an
    ImageNet checkpoint loads through ``load_trunk_state_dict``), ``deconv``, ``final``.

    The defaults are the ACR ResNet-50 option: 512x512 in, 32x128x128 out like HRNet-W32.
    ``ResNetDeconvBackbone((1, 1, 1, 1), (8, 16, 32, 64), (16, 16, 16))`` is a tiny variant.
    """

    def __init__(
        self,
        trunk_layers: Sequence[int] = RESNET50_LAYERS,
        trunk_widths: Sequence[int] = RESNET50_WIDTHS,
        deconv_channels: Sequence[int] = (256, 256, 256),
        out_channels: int = 32,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if len(deconv_channels) != 3:
            raise ValueError(f"need 3 deconvolution stages (stride 32 -> 4), got {deconv_channels}")
        self.trunk = ResNet(trunk_layers, trunk_widths, include_top=False, in_channels=in_channels)
        self.backbone_channels = out_channels

        stages: list[nn.Module] = []
        channels = self.trunk.out_channels
        for width in deconv_channels:
            stages += [
                nn.ConvTranspose2d(
                    channels, width, 4, stride=2, padding=1, output_padding=0, bias=False
                ),
                _bn(width),
                nn.ReLU(inplace=True),
            ]
            channels = width
        self.deconv = nn.Sequential(*stages)
        self.final = nn.Sequential(
            nn.Conv2d(channels, out_channels, 1, bias=False),
            _bn(out_channels),
            nn.ReLU(inplace=True),
        )
        self._init_neck()

    def _init_neck(self) -> None:
        """SimpleBaseline's init for the transposed convolutions (normal, std 0.001); He normal
        (fan_out) for the 1x1 projection as in the trunk; BN gamma 1, beta 0."""
        for module in (*self.deconv, *self.final):
            if isinstance(module, nn.ConvTranspose2d):
                nn.init.normal_(module.weight, std=0.001)
            elif isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def load_trunk_state_dict(self, state_dict: Mapping[str, Tensor]) -> None:
        """Load a (torchvision-layout) ResNet checkpoint into the trunk, strictly, dropping its
        ``fc.*`` classifier entries, which the trunk does not have."""
        trunk_state = {k: v for k, v in state_dict.items() if not k.startswith("fc.")}
        self.trunk.load_state_dict(trunk_state, strict=True)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C_in, H, W) -> (B, backbone_channels, H/4, W/4) features."""
        return self.final(self.deconv(self.trunk(x)))
