"""A few named hand poses (absolute finger axis-angles) for demos, pictures and tests.

Built from the open hand model's anatomical axes (``openhand.anatomy``); MANO's rest frame is
close enough (fingers along -x, right thumb on +z) for them to read the same on MANO.
"""

from __future__ import annotations

import numpy as np

from handmocap.core.joints import FINGERS
from handmocap.core.openhand import anatomy as A

# Per pose: finger -> (flexion of joints 1, 2, 3 in degrees, spread of joint 1 in degrees).
_POSES: dict[str, dict[str, tuple[tuple[float, float, float], float]]] = {
    "flat": {},
    "fist": {
        "thumb": ((20.0, 35.0, 40.0), 0.0),
        **{f: ((85.0, 95.0, 55.0), 0.0) for f in ("index", "middle", "ring", "pinky")},
    },
    "point": {
        "thumb": ((25.0, 30.0, 30.0), 0.0),
        "index": ((5.0, 5.0, 0.0), 0.0),
        **{f: ((80.0, 95.0, 50.0), 0.0) for f in ("middle", "ring", "pinky")},
    },
    "spread": {
        "thumb": ((-5.0, 0.0, 0.0), 12.0),
        "index": ((0.0, 0.0, 0.0), 12.0),
        "middle": ((0.0, 0.0, 0.0), 0.0),
        "ring": ((0.0, 0.0, 0.0), -10.0),
        "pinky": ((0.0, 0.0, 0.0), -20.0),
    },
    "pinch": {
        "thumb": ((35.0, 25.0, 20.0), 0.0),
        "index": ((45.0, 45.0, 25.0), 0.0),
        **{f: ((15.0, 20.0, 10.0), 0.0) for f in ("middle", "ring", "pinky")},
    },
}
POSE_NAMES = ("flat", "relaxed", "spread", "pinch", "point", "fist")


def mirror_pose(pose: np.ndarray) -> np.ndarray:
    """(..., 3) axis-angles of a right hand -> the mirror image (left hand): (x, -y, -z)."""
    return pose * np.array([1.0, -1.0, -1.0], dtype=pose.dtype)


def named_pose(name: str, side: str = "right") -> np.ndarray:
    """(15, 3) absolute finger axis-angles of a named pose (see POSE_NAMES)."""
    if name not in POSE_NAMES:
        raise ValueError(f"unknown pose {name!r}; known: {', '.join(POSE_NAMES)}")
    if name == "relaxed":
        from handmocap.core.openhand.generate import relaxed_pose

        pose = relaxed_pose().reshape(15, 3)
    else:
        flex, spread = A.flexion_axes(), A.spread_axes()
        full = np.zeros((16, 3))
        for finger in FINGERS:
            angles, spread_deg = _POSES[name].get(finger, ((0.0, 0.0, 0.0), 0.0))
            for k, joint in enumerate(A.FINGER_JOINTS[finger]):
                full[joint] = np.radians(angles[k]) * flex[joint]
            base = A.FINGER_JOINTS[finger][0]
            full[base] = _compose(full[base], np.radians(spread_deg) * spread[base])
        pose = full[1:]
    return mirror_pose(pose) if side == "left" else pose


def _compose(first: np.ndarray, then: np.ndarray) -> np.ndarray:
    """Axis-angle of applying ``first`` then ``then`` (both in the parent frame)."""
    from handmocap.core.rotations import axis_angle_to_matrix, matrix_to_axis_angle

    return matrix_to_axis_angle(axis_angle_to_matrix(then) @ axis_angle_to_matrix(first))
