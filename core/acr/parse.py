"""ACR's post-processing: centres, parameter sampling, cross-hand prior, 6D decoding.

As the official result parser does it for its demo: 5x5 max-pool NMS on each hand's raw centre
map, the single best centre per image and hand kept when its score exceeds the threshold
(official 0.35), the 109 parameters read at that centre, and when both hands are found, each
hand's cross-hand prior read at the *other* hand's centre and added to its 106 non-camera
parameters, unless the centres are more than 32 cells of a 64-cell map apart. Rotations are
6D in the official (interleaved, ``view(-1, 3, 2)``) layout; finger rotations are relative to
MANO's mean pose.

Batches are parsed image by image (the official parser applies the prior to a batch only when
every image has both hands, and gates it with the first image's distance: identical for the
single-image batches of its demo).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from handmocap.core.acr.heads import CAMERA_DIM
from handmocap.core.rotations import matrix_to_axis_angle, rot6d_interleaved_to_matrix

DEFAULT_THRESHOLD = 0.35
NMS_KERNEL = 5
PRIOR_MAX_DISTANCE = 32.0  # cells of a 64-cell centre map


@dataclass
class ParsedHands:
    """One side's result for a batch of images (every field has the batch first)."""

    detected: torch.Tensor  # (B,) bool
    score: torch.Tensor  # (B,) raw centre-map value at the centre
    center: torch.Tensor  # (B, 2) long: y, x cell of the centre map
    params: torch.Tensor  # (B, 109) camera + parameters, prior applied
    camera: torch.Tensor  # (B, 3) weak perspective: scale, x, y (input normalised to [-1, 1])
    global_orient: torch.Tensor  # (B, 3) axis-angle
    hand_pose_relative: torch.Tensor  # (B, 15, 3) axis-angle, relative to MANO's mean pose
    betas: torch.Tensor  # (B, 10)
    rotations: torch.Tensor  # (B, 16, 3, 3) decoded 6D: global orientation then 15 joints

    def absolute_pose(self, hands_mean: torch.Tensor) -> torch.Tensor:
        """(B, 15, 3) finger pose relative to the flat hand: the mean pose added (axis-angle)."""
        return self.hand_pose_relative + hands_mean.reshape(1, 15, 3).to(self.hand_pose_relative)


def find_centers(center_map: torch.Tensor, kernel: int = NMS_KERNEL):
    """(B, 1, h, w) raw map -> best local maximum per image: score (B,), flat index (B,)."""
    pooled = F.max_pool2d(center_map, kernel, stride=1, padding=kernel // 2)
    peaks = center_map * (pooled == center_map).to(center_map.dtype)
    score, index = peaks.flatten(1).max(dim=1)
    return score, index


def sample(maps: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """(B, C, h, w) maps, (B,) flat indices -> (B, C) the vector at each image's index."""
    flat = maps.flatten(2)
    return flat.gather(2, index[:, None, None].expand(-1, flat.shape[1], 1))[..., 0]


def parse_maps(
    maps: dict[str, torch.Tensor], threshold: float = DEFAULT_THRESHOLD
) -> dict[str, ParsedHands]:
    """The network's maps -> ``{"left": ParsedHands, "right": ParsedHands}``."""
    found = {side: find_centers(maps[f"{side}_center"].float()) for side in ("left", "right")}
    ok = {side: score > threshold for side, (score, _) in found.items()}
    index = {side: idx for side, (_, idx) in found.items()}
    params, yx = params_at(maps, index, ok["left"] & ok["right"])
    return {
        side: decode(params[side], ok[side], found[side][0], yx[side]) for side in ("left", "right")
    }


def params_at(
    maps: dict[str, torch.Tensor], index: dict[str, torch.Tensor], both: torch.Tensor
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Each side's 109 parameters at its centre cell ``index[side]`` (B,) flat, with the
    cross-hand prior read at the other side's centre and added where ``both`` (B,) hands are
    there and their centres are near. Also each centre as (B, 2) y, x cells.

    The parser calls it at the centres it finds, training at the labelled centres.
    """
    width = maps["left_center"].shape[-1]
    yx = {s: torch.stack([i // width, i % width], 1) for s, i in index.items()}
    distance = (yx["left"] - yx["right"]).float().norm(dim=1)
    gate = (both & (distance <= PRIOR_MAX_DISTANCE * width / 64)).float()[:, None]
    params = {}
    for side, other in (("left", "right"), ("right", "left")):
        own = sample(maps[f"{side}_params"].float(), index[side])
        prior = sample(maps[f"{side}_prior"].float(), index[other])  # at the other's centre
        params[side] = torch.cat([own[:, :CAMERA_DIM], own[:, CAMERA_DIM:] + gate * prior], 1)
    return params, yx


def decode(params: torch.Tensor, detected, score, center) -> ParsedHands:
    """(B, 109) parameter vectors -> camera, rotations (6D decoded) and shape."""
    b = len(params)
    rotations = rot6d_interleaved_to_matrix(params[:, 3:99].reshape(b, 16, 6))
    axis_angle = matrix_to_axis_angle(rotations)
    return ParsedHands(
        detected=detected,
        score=score,
        center=center,
        params=params,
        camera=params[:, :3],
        global_orient=axis_angle[:, 0],
        hand_pose_relative=axis_angle[:, 1:],
        betas=params[:, 99:109],
        rotations=rotations,
    )
