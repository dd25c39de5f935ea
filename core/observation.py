"""What a backend reports for one hand in one frame (DESIGN.md, data flow step 2)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SIDES = ("left", "right")


@dataclass
class HandObservation:
    """One hand in one frame; camera frame as OpenCV (x right, y down, z forward), metres.

    ``hand_pose`` is absolute (zero = flat hand); ``transl`` is added after ``global_orient``
    rotates the hand about its wrist (the hand layer's convention), so that posing the hand model
    with these parameters gives ``joints3d``; ``joints2d`` are those joints projected into the
    original frame's pixels.
    """

    side: str
    score: float
    global_orient: np.ndarray  # (3,)
    hand_pose: np.ndarray  # (15, 3)
    betas: np.ndarray  # (10,)
    transl: np.ndarray  # (3,)
    joints3d: np.ndarray  # (21, 3)
    joints2d: np.ndarray  # (21, 2)
    vertices: np.ndarray | None = field(default=None, repr=False)  # (V, 3), for overlays

    def to_json(self) -> dict:
        return {
            "side": self.side,
            "score": float(self.score),
            "global_orient": self.global_orient.tolist(),
            "hand_pose": self.hand_pose.tolist(),
            "betas": self.betas.tolist(),
            "transl": self.transl.tolist(),
            "joints3d": self.joints3d.tolist(),
            "joints2d": self.joints2d.tolist(),
        }


# One frame's result: side -> observation; a side that was not found is absent.
Frame = dict[str, HandObservation]


def project(points: np.ndarray, focal: float, center: np.ndarray) -> np.ndarray:
    """(..., 3) camera-frame points -> (..., 2) pixels of a pinhole camera."""
    return points[..., :2] / points[..., 2:3] * focal + center
