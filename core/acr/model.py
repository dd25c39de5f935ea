"""The ACR network: backbone, part segmentation, per-hand global heads, part attention, fusion.

``ACR.forward`` takes images already scaled to [-1, 1] (see ``acr.preprocess``) and returns its
maps by name; ``acr.parse.parse_maps`` turns them into at most one left and one right hand per
image. No ``no_grad`` and no device moves inside, so the same module trains, runs on CPU or
CUDA, under autocast, with channels_last, and under ``torch.compile``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from handmocap.core.acr.heads import (
    NUM_PARTS,
    HandHeads,
    PartSegmentation,
    coord_maps,
    part_attention,
)
from handmocap.core.backbones.hrnet import HRNet

SIDES = ("left", "right")


@dataclass(frozen=True)
class ACRConfig:
    """What defines an ACR network. The defaults are the official release's."""

    backbone: str = "hrnet"  # "hrnet" (HRNet-W32, official) or "resnet" (ResNet-50, faster)
    hrnet_width: int = 32
    hrnet_stage_modules: tuple[int, ...] = (1, 4, 3)
    hrnet_blocks: int = 4
    resnet_layers: tuple[int, ...] = (3, 4, 6, 3)
    resnet_width: int = 64
    resnet_deconv: int = 256
    head_width: int = 64
    head_blocks: int = 2
    part_dim: int = 256
    input_size: int = 512

    @classmethod
    def tiny(cls, backbone: str = "hrnet") -> ACRConfig:
        """A few-thousand-parameter network of the same structure, for tests."""
        return cls(
            backbone=backbone,
            hrnet_width=8,
            hrnet_stage_modules=(1, 1, 1),
            hrnet_blocks=1,
            resnet_layers=(1, 1, 1, 1),
            resnet_width=8,
            resnet_deconv=16,
            head_width=16,
            head_blocks=1,
            part_dim=32,
            input_size=128,
        )


def build_backbone(config: ACRConfig) -> nn.Module:
    """The backbone named by the config; it exposes ``backbone_channels``."""
    if config.backbone == "hrnet":
        return HRNet(
            width=config.hrnet_width,
            stage_modules=config.hrnet_stage_modules,
            blocks=config.hrnet_blocks,
        )
    if config.backbone == "resnet":
        from handmocap.core.backbones.resnet import ResNetDeconvBackbone

        w = config.resnet_width
        return ResNetDeconvBackbone(
            trunk_layers=config.resnet_layers,
            trunk_widths=(w, 2 * w, 4 * w, 8 * w),
            deconv_channels=(config.resnet_deconv,) * 3,
            out_channels=32,
        )
    raise ValueError(f"unknown ACR backbone {config.backbone!r}: use 'hrnet' or 'resnet'")


class ACR(nn.Module):
    """Two-hand reconstruction from a full frame (Yu et al., CVPR 2023).

    Maps returned by ``forward`` (sizes for a 512 input):
      segm_logits             (B, 33, 256, 256) part segmentation, background first
      {left,right}_center     (B, 1, 64, 64)    hand centre confidence (raw, no sigmoid)
      {left,right}_params_global (B, 109, 64, 64) camera (3) + parameters (106) before fusion
      {left,right}_params     (B, 109, 64, 64)  the same after fusion with the part branch
      {left,right}_prior      (B, 106, 64, 64)  cross-hand prior, read at the other hand's centre
    """

    def __init__(
        self,
        backbone: nn.Module,
        head_width: int = 64,
        head_blocks: int = 2,
        part_dim: int = 256,
    ):
        super().__init__()
        self.backbone = backbone
        cin = backbone.backbone_channels
        self.part_segm = PartSegmentation(cin)
        self.part_features = nn.Sequential(
            nn.Conv2d(cin + 2, part_dim, 3, 1, 1),
            nn.BatchNorm2d(part_dim, momentum=0.1),
            nn.ReLU(inplace=True),
        )
        self.shape_features = nn.Conv2d(part_dim, 64, 1)
        self.left = HandHeads(cin + 2, head_width, head_blocks, part_dim)
        self.right = HandHeads(cin + 2, head_width, head_blocks, part_dim)

    @classmethod
    def from_config(cls, config: ACRConfig) -> ACR:
        return cls(build_backbone(config), config.head_width, config.head_blocks, config.part_dim)

    def predict(self, images: torch.Tensor, threshold: float = 0.35):
        """Maps and parsed hands: ``(maps, {"left": ParsedHands, "right": ParsedHands})``."""
        from handmocap.core.acr.parse import parse_maps

        maps = self.forward(images)
        return maps, parse_maps({k: v.float() for k, v in maps.items()}, threshold)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, 3, H, W) images in [-1, 1] -> maps by name (see the class docstring)."""
        features = self.backbone(images)
        segm_logits = self.part_segm(features)
        b, _, h, w = features.shape
        coords = coord_maps(h, w, features.device, features.dtype).expand(b, -1, -1, -1)
        x = torch.cat([features, coords], dim=1)
        maps = {"segm_logits": segm_logits}

        pose_features = self.part_features(x)
        shape_features = self.shape_features(pose_features)
        attention = F.interpolate(segm_logits, scale_factor=0.5, mode="nearest")[:, 1:]
        pose_parts = part_attention(pose_features, attention)  # (B, 256, 32)
        shape_parts = part_attention(shape_features, attention)  # (B, 64, 32)
        # Channels 1..16 of the segmentation are the right hand's parts, 17..32 the left's.
        for side, heads, parts in (
            ("left", self.left, slice(NUM_PARTS, 2 * NUM_PARTS)),
            ("right", self.right, slice(0, NUM_PARTS)),
        ):
            global_maps = heads.global_maps(x)
            maps[f"{side}_center"] = global_maps["center"]
            maps[f"{side}_prior"] = global_maps["prior"]
            maps[f"{side}_params_global"] = global_maps["params"]
            maps[f"{side}_params"] = heads.fuse(
                global_maps["params"], pose_parts[:, :, parts], shape_parts[:, :, parts]
            )
        return maps
