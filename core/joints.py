"""Joint and keypoint orders: the 16 MANO joints, the project's 21 keypoints, and conversions.

The project-wide 21-keypoint order is MediaPipe's (= OpenPose's hand order, = manopth's): wrist,
then thumb, index, middle, ring and pinky, each from base to tip. Other orders are defined as
lists of the same names, so that every conversion is a name lookup that tests can check.
"""

from __future__ import annotations

import numpy as np

# The 16 joints of MANO's kinematic tree, which are also its 16 skinning parts.
JOINT_NAMES = (
    "wrist",
    "index1", "index2", "index3",
    "middle1", "middle2", "middle3",
    "pinky1", "pinky2", "pinky3",
    "ring1", "ring2", "ring3",
    "thumb1", "thumb2", "thumb3",
)  # fmt: skip
PARENTS = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14)
NUM_JOINTS = 16
NUM_KEYPOINTS = 21
FINGERS = ("thumb", "index", "middle", "ring", "pinky")

# Project order (MediaPipe / OpenPose / manopth).
KEYPOINT_NAMES = (
    "wrist",
    "thumb1", "thumb2", "thumb3", "thumb_tip",
    "index1", "index2", "index3", "index_tip",
    "middle1", "middle2", "middle3", "middle_tip",
    "ring1", "ring2", "ring3", "ring_tip",
    "pinky1", "pinky2", "pinky3", "pinky_tip",
)  # fmt: skip

# Keypoint -> parent keypoint, for drawing skeletons and bone lengths (project order).
KEYPOINT_PARENTS = (-1, 0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11, 0, 13, 14, 15, 0, 17, 18, 19)

# The 16 joints followed by the 5 fingertip vertices (thumb..pinky), as the hand layer builds them.
JOINTS_AND_TIPS_NAMES = JOINT_NAMES + tuple(f"{f}_tip" for f in FINGERS)

# InterHand2.6M: per hand, each finger from tip to base (thumb first), then the wrist; in its
# 42-joint arrays the right hand comes first (0-20), then the left (21-41).
INTERHAND_NAMES = tuple(
    name
    for finger in FINGERS
    for name in (f"{finger}_tip", f"{finger}3", f"{finger}2", f"{finger}1")
) + ("wrist",)

ORDERS: dict[str, tuple[str, ...]] = {
    "project": KEYPOINT_NAMES,
    "mediapipe": KEYPOINT_NAMES,
    "openpose": KEYPOINT_NAMES,
    "manopth": KEYPOINT_NAMES,
    "interhand": INTERHAND_NAMES,
    "mano16+tips": JOINTS_AND_TIPS_NAMES,
}


def order_indices(source: str, target: str) -> np.ndarray:
    """(21,) indices ``idx`` such that ``points_in_target = points_in_source[..., idx, :]``."""
    for name in (source, target):
        if name not in ORDERS:
            raise ValueError(f"unknown keypoint order {name!r}; known: {', '.join(ORDERS)}")
    src = {n: i for i, n in enumerate(ORDERS[source])}
    return np.array([src[n] for n in ORDERS[target]], dtype=np.int64)


def reorder(points, source: str, target: str):
    """(..., 21, D) keypoints in ``source`` order -> the same keypoints in ``target`` order.

    Works on numpy arrays and torch tensors alike.
    """
    if points.ndim < 2 or points.shape[-2] != NUM_KEYPOINTS:
        raise ValueError(f"expected (..., 21, D) keypoints, got shape {tuple(points.shape)}")
    return points[..., order_indices(source, target), :]


# Indices into cat(16 joints, 5 tips) that give the project order.
KEYPOINTS_FROM_JOINTS_AND_TIPS = order_indices("mano16+tips", "project")
