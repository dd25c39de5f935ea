"""ACR's input: pad the frame to a square with white, bicubic resize to 512, scale to [-1, 1].

As the official demo does (``img_preprocess``): the padding puts the floor of half the
difference before and the ceiling after; the offsets kept per frame map results back to the
original frame's pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch


@dataclass(frozen=True)
class Letterbox:
    """Where a frame sits in the square network input."""

    height: int  # original frame
    width: int
    pad_top: int
    pad_left: int
    size: int  # side of the padded square, original pixels
    input_size: int  # side of the network input

    @property
    def scale(self) -> float:
        """Network-input pixels per original pixel."""
        return self.input_size / self.size

    def from_normalized(self, points: np.ndarray) -> np.ndarray:
        """(..., 2) x, y in [-1, 1] of the network input -> original-frame pixels."""
        return (points + 1.0) * self.size / 2.0 - np.array([self.pad_left, self.pad_top])

    def principal_point(self) -> np.ndarray:
        """The square's centre in original-frame pixels (the camera's optical centre)."""
        return np.array([self.size / 2.0 - self.pad_left, self.size / 2.0 - self.pad_top])


def square_paddings(height: int, width: int) -> tuple[int, int, int, int]:
    """(top, right, bottom, left) padding that makes the frame square."""
    diff = abs(height - width)
    before, after = diff // 2, diff - diff // 2
    if height > width:
        return 0, after, 0, before
    return before, 0, after, 0


def letterbox(frame: np.ndarray, input_size: int = 512) -> tuple[np.ndarray, Letterbox]:
    """RGB uint8 (H, W, 3) -> (input_size, input_size, 3) uint8 and its Letterbox."""
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {frame.dtype} {frame.shape}")
    h, w = frame.shape[:2]
    top, right, bottom, left = square_paddings(h, w)
    padded = cv2.copyMakeBorder(
        frame, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(255, 255, 255)
    )
    resized = cv2.resize(padded, (input_size, input_size), interpolation=cv2.INTER_CUBIC)
    return resized, Letterbox(h, w, top, left, padded.shape[0], input_size)


def preprocess(frames, input_size: int = 512) -> tuple[torch.Tensor, list[Letterbox]]:
    """A list of RGB uint8 frames -> (B, S, S, 3) uint8 tensor and one Letterbox per frame."""
    images, boxes = zip(*(letterbox(np.asarray(f), input_size) for f in frames), strict=True)
    return torch.from_numpy(np.stack(images)), list(boxes)


def to_network_input(images: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
    """(B, S, S, 3) uint8 -> (B, 3, S, S) float in [-1, 1] (on the tensor's device)."""
    return (images.permute(0, 3, 1, 2).to(dtype) / 255.0) * 2.0 - 1.0
