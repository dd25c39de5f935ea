"""DIR's input: a square crop around both hands, as the official data code cuts it.

The official preparation (``dataset_utils.cut_img``) takes the union box of both hands' 2D
points, centres a square on it whose half side is the longer half extent divided by 0.8 (the
hands fill 80 % of the crop), and warps it to 256x256 with bilinear interpolation and black
padding outside the frame. The crop is then scaled to [0, 1] and normalised with ImageNet's
mean and std.

Here the hands' points come from a detector's 2D keypoints rather than the ground-truth mesh:
each hand's keypoint box is first grown by ``MARGIN`` of its size on every side, to cover the
skin beyond the joint centres as the mesh's box does. In video, ``CropTracker`` smooths the box
from frame to frame and starts afresh when it jumps.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from handmocap.core.dir.model import IMAGENET_MEAN, IMAGENET_STD

HAND_BOX_RATIO = 0.8  # the hands' extent over the crop's side (official HAND_BBOX_RATIO)
MARGIN = 0.1  # each hand's keypoint box is grown by this fraction of its size on every side
INPUT_SIZE = 256


@dataclass(frozen=True)
class CropBox:
    """A square in frame pixels: centre and half side."""

    cx: float
    cy: float
    half: float

    def matrix(self, size: int = INPUT_SIZE) -> np.ndarray:
        """(2, 3) affine map from frame pixels to crop pixels (the official ``M``)."""
        scale = size / (2 * self.half)
        return scale * np.array([[1.0, 0.0, self.half - self.cx], [0.0, 1.0, self.half - self.cy]])

    def to_frame(self, uv: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
        """(..., 2) crop coordinates in [-1, 1] -> frame pixels."""
        crop_px = (np.asarray(uv, dtype=np.float64) + 1) / 2 * size
        return crop_px * (2 * self.half / size) + np.array(
            [self.cx - self.half, self.cy - self.half]
        )

    def pixels_per_unit(self) -> float:
        """Frame pixels per unit of the crop's normalised coordinates."""
        return self.half


def hand_box(points: np.ndarray, margin: float = MARGIN) -> np.ndarray:
    """(N, 2) keypoints -> (2, 2) [min, max] corners, grown by ``margin`` of the larger side."""
    low, high = points.min(0), points.max(0)
    grow = margin * float((high - low).max())
    return np.stack([low - grow, high + grow])


def two_hand_box(points: dict[str, np.ndarray], ratio: float = HAND_BOX_RATIO,
                 margin: float = MARGIN) -> CropBox:  # fmt: skip
    """Both hands' keypoints (side -> (N, 2) pixels) -> the square crop holding them."""
    boxes = np.stack([hand_box(np.asarray(p, dtype=np.float64), margin) for p in points.values()])
    low, high = boxes[:, 0].min(0), boxes[:, 1].max(0)
    mid = (low + high) / 2
    half = max(float((high - low).max()) / 2 / ratio, 1.0)
    return CropBox(float(mid[0]), float(mid[1]), half)


def cut(frame: np.ndarray, box: CropBox, size: int = INPUT_SIZE) -> np.ndarray:
    """RGB uint8 frame -> (size, size, 3) uint8 crop (bilinear, black outside the frame)."""
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {frame.dtype} {frame.shape}")
    return cv2.warpAffine(frame, box.matrix(size), (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))  # fmt: skip


def to_network_input(crops: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
    """(B, S, S, 3) uint8 -> (B, 3, S, S) ImageNet-normalised (on the tensor's device)."""
    x = crops.permute(0, 3, 1, 2).to(dtype) / 255.0
    mean = torch.tensor(IMAGENET_MEAN, dtype=dtype, device=x.device)[:, None, None]
    std = torch.tensor(IMAGENET_STD, dtype=dtype, device=x.device)[:, None, None]
    return (x - mean) / std


class CropTracker:
    """Smooths the crop over consecutive frames; a jump (a cut, a new pair of hands) resets it.

    ``follow`` is the weight of the new box (1: no smoothing). A box whose centre moved by more
    than ``jump`` half sides, or whose size changed by more than ``resize`` times, is taken as
    it is.
    """

    def __init__(self, follow: float = 0.5, jump: float = 0.5, resize: float = 1.5):
        if not 0 < follow <= 1:
            raise ValueError(f"follow must be in (0, 1], got {follow}")
        self.follow, self.jump, self.resize = follow, jump, resize
        self.box: CropBox | None = None

    def reset(self) -> None:
        self.box = None

    def update(self, box: CropBox) -> CropBox:
        old = self.box
        if old is not None:
            moved = np.hypot(box.cx - old.cx, box.cy - old.cy) / old.half
            ratio = max(box.half / old.half, old.half / box.half)
            if moved <= self.jump and ratio <= self.resize:
                w = self.follow
                box = CropBox(
                    w * box.cx + (1 - w) * old.cx,
                    w * box.cy + (1 - w) * old.cy,
                    w * box.half + (1 - w) * old.half,
                )
        self.box = box
        return box
