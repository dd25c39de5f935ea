"""ACR's heads: coordinate maps, part segmentation, global map heads, part attention, fusion.

Shapes are given for the official 512x512 input: backbone features (B, 32, 128, 128), part
segmentation logits (B, 33, 256, 256), per-hand maps (B, C, 64, 64). Every size here follows
the input, so a smaller input (tests) gives proportionally smaller maps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from handmocap.core.backbones.hrnet import BasicBlock

NUM_PARTS = 16  # per hand: MANO's 16 joints
NUM_CLASSES = 1 + 2 * NUM_PARTS  # background, 16 right-hand parts, 16 left-hand parts
POSE_DIM = 6 * NUM_PARTS  # 6D rotation per part: global orientation + 15 finger joints
SHAPE_DIM = 10
CAMERA_DIM = 3  # weak perspective: scale, x, y
PARAMS_DIM = POSE_DIM + SHAPE_DIM  # 106, what the parameter and prior maps hold
FULL_DIM = CAMERA_DIM + PARAMS_DIM  # 109: camera then parameters


def coord_maps(height: int, width: int, device=None, dtype=None) -> torch.Tensor:
    """(1, 2, H, W): x then y, each running linearly from -1 to 1 (CoordConv)."""
    ys = torch.arange(height, device=device, dtype=torch.float32) / (height - 1) * 2 - 1
    xs = torch.arange(width, device=device, dtype=torch.float32) / (width - 1) * 2 - 1
    ys, xs = ys.to(dtype or torch.float32), xs.to(dtype or torch.float32)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y])[None]


def conv_bn_relu(cin: int, cout: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    """Conv (with bias) + BatchNorm + ReLU, as the ACR heads build them."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2),
        nn.BatchNorm2d(cout, momentum=0.1),
        nn.ReLU(inplace=True),
    )


class PartSegmentation(nn.Module):
    """Backbone features (B, C, H, W) -> part logits (B, 33, 2H, 2W).

    Bilinear 2x upsampling (corners aligned), two conv-BN-ReLU layers (C -> C/2 -> 64), then
    conv-BN-ReLU-conv to the 33 classes: raw logits, background first.
    """

    def __init__(self, cin: int = 32, hidden: int = 64, classes: int = NUM_CLASSES):
        super().__init__()
        mid = cin // 2
        self.upsample = nn.Sequential(
            nn.Conv2d(cin, mid, 3, padding=1),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, hidden, 3, padding=1),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
        )
        self.classify = nn.Sequential(
            nn.Conv2d(hidden, classes, 3, padding=1),
            nn.BatchNorm2d(classes),
            nn.ReLU(inplace=True),
            nn.Conv2d(classes, classes, 3, padding=1),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(features, scale_factor=2.0, mode="bilinear", align_corners=True)
        return self.classify(self.upsample(x))


def map_head(cin: int, cout: int, width: int = 64, blocks: int = 2) -> nn.Sequential:
    """(B, cin, H, W) -> (B, cout, H/2, W/2): strided conv, ``blocks`` basic blocks, 1x1 conv."""
    return nn.Sequential(
        conv_bn_relu(cin, width, 3, 2),
        nn.Sequential(*(nn.Sequential(BasicBlock(width, width)) for _ in range(blocks))),
        nn.Conv2d(width, cout, 1),
    )


class PartPose(nn.Module):
    """Per-part linear maps (B, C, 16) -> (B, 96): part k's features give its own 6D rotation.

    The weight keeps the layout of the official locally connected layer, (1, 6, C, 16, 1, 1),
    so official checkpoints load unchanged. Output is part-major: 6 numbers for part 0, ...
    """

    def __init__(self, cin: int = 256, parts: int = NUM_PARTS):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, 6, cin, parts, 1, 1))

    def forward(self, part_features: torch.Tensor) -> torch.Tensor:
        w = self.weight[0, :, :, :, 0, 0]  # (6, C, parts)
        out = torch.einsum("bcp,ocp->bpo", part_features, w)  # (B, parts, 6)
        return out.reshape(len(part_features), -1)


class HandHeads(nn.Module):
    """Everything one hand (left or right) owns: global map heads, part layers, fusion."""

    def __init__(self, cin: int, head_width: int = 64, head_blocks: int = 2, part_dim: int = 256):
        super().__init__()
        self.params = map_head(cin, PARAMS_DIM, head_width, head_blocks)
        self.center = map_head(cin, 1, head_width, head_blocks)
        self.camera = map_head(cin, CAMERA_DIM, head_width, head_blocks)
        self.prior = map_head(cin, PARAMS_DIM, head_width, head_blocks)
        self.part_pose = PartPose(part_dim, NUM_PARTS)
        self.part_shape = nn.Linear(64 * NUM_PARTS, SHAPE_DIM)
        self.fusion = nn.Conv2d(2 * FULL_DIM, FULL_DIM, 1)

    def global_maps(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Global maps: camera+parameters (B, 109, h, w), center (B, 1, h, w), prior (B, 106)."""
        camera = self.camera(x)
        # The scale must stay positive: it becomes 1.1 ** raw.
        camera = torch.cat([torch.pow(1.1, camera[:, :1]), camera[:, 1:]], dim=1)
        return {
            "params": torch.cat([camera, self.params(x)], dim=1),
            "center": self.center(x),
            "prior": self.prior(x),
        }

    def fuse(self, global_params: torch.Tensor, pose_feats, shape_feats) -> torch.Tensor:
        """Per-part predictions, broadcast over the map, fused with the global map (1x1 conv).

        pose_feats (B, 256, 16), shape_feats (B, 64, 16) -> (B, 109, h, w).
        """
        pose = self.part_pose(pose_feats)
        shape = self.part_shape(shape_feats.flatten(1))
        b, _, h, w = global_params.shape
        local = torch.cat([pose, shape], dim=1)[:, :, None, None].expand(b, PARAMS_DIM, h, w)
        local = torch.cat([global_params[:, :CAMERA_DIM], local], dim=1)
        return self.fusion(torch.cat([global_params, local], dim=1))


def part_attention(features: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Pool features under each part's spatial softmax: (B, C, H, W), (B, P, H, W) -> (B, C, P).

    The softmax runs over all pixels of each part's raw logits (no softmax across parts).
    """
    b, c = features.shape[:2]
    attention = torch.softmax(logits.flatten(2), dim=-1)  # (B, P, HW)
    return torch.bmm(features.reshape(b, c, -1), attention.transpose(1, 2))
