"""Anatomy of the open hand model: the rest skeleton and the flesh around it, in millimetres.

The numbers are those of an average adult right hand (palm length, finger segment lengths and
widths from hand anthropometry surveys), rounded. The frame follows MANO's right hand so that the
two models are interchangeable: fingers point along -x, the thumb lies on the +z side, the back of
the hand faces +y; the wrist joint is the origin. The left hand is the mirror image (x negated).

Everything here is plain data; ``generate.py`` turns it into a mesh, weights and a regressor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from handmocap.core.joints import FINGERS, JOINT_NAMES, PARENTS

__all__ = ["FINGERS", "JOINT_NAMES", "PARENTS", "FINGER_JOINTS", "DIGITS", "rest_skeleton"]

# Finger name -> its three joint ids (base to distal) in the 16-joint order.
FINGER_JOINTS = {
    "thumb": (13, 14, 15),
    "index": (1, 2, 3),
    "middle": (4, 5, 6),
    "ring": (10, 11, 12),
    "pinky": (7, 8, 9),
}


@dataclass(frozen=True)
class Digit:
    """One finger: base joint, direction, three segment lengths and four radii (mm, degrees).

    ``base`` is (forward, lateral, up) from the wrist: forward along the fingers, lateral toward
    the thumb, up toward the back of the hand. ``yaw`` turns the finger toward the thumb in the
    palm plane, ``pitch`` toward the back of the hand. ``lengths`` are base->joint2->joint3->tip;
    the tip is the skin surface at the end of the finger. ``radii`` at base, joint2, joint3, tip.
    """

    base: tuple[float, float, float]
    yaw: float
    pitch: float
    lengths: tuple[float, float, float]
    radii: tuple[float, float, float, float]


DIGITS = {
    # Thumb: base at the carpometacarpal joint inside the thenar eminence.
    "thumb": Digit((24.0, 19.0, -9.0), 48.0, 2.0, (41.0, 31.0, 26.0), (12.0, 10.2, 9.6, 8.4)),
    "index": Digit((85.0, 21.0, 0.0), 9.0, 0.0, (40.0, 24.0, 21.0), (9.2, 8.4, 7.6, 6.8)),
    "middle": Digit((88.0, 0.0, 1.0), 0.0, 0.0, (45.0, 28.0, 22.0), (9.6, 8.7, 7.8, 7.0)),
    "ring": Digit((84.0, -18.5, 0.0), -9.0, 0.0, (42.0, 27.0, 22.0), (9.0, 8.2, 7.4, 6.6)),
    "pinky": Digit((75.0, -35.0, -2.0), -19.0, 0.0, (33.0, 20.0, 19.0), (8.0, 7.2, 6.6, 6.0)),
}

# Palm outline in the (forward, lateral) plane, counter-clockwise, and its half thickness.
PALM_OUTLINE = (
    (-2.0, -24.0),
    (40.0, -39.0),
    (76.0, -39.0),
    (90.0, -24.0),
    (96.0, -4.0),
    (94.0, 14.0),
    (87.0, 28.0),
    (45.0, 32.0),
    (8.0, 22.0),
)
PALM_HALF_THICKNESS = 9.5
PALM_ROUNDING = 5.5

# Wrist stub: an elliptical cylinder around the wrist joint, cut flat on the forearm side.
WRIST_START, WRIST_END = -16.0, 18.0
WRIST_SEMI_AXES = (27.0, 16.5)  # lateral, up


def frame_point(forward: float, lateral: float, up: float) -> np.ndarray:
    """(forward, lateral, up) in mm -> model coordinates (x, y, z) in mm."""
    return np.array([-forward, up, lateral], dtype=np.float64)


def digit_direction(digit: Digit) -> np.ndarray:
    """Unit direction (model frame) in which the digit points at rest."""
    yaw, pitch = np.radians(digit.yaw), np.radians(digit.pitch)
    return frame_point(np.cos(yaw) * np.cos(pitch), np.sin(yaw) * np.cos(pitch), np.sin(pitch))


def rest_skeleton() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rest joints (16, 3) mm, fingertips (5, 3) mm in FINGERS order, radii (16+5,) mm."""
    joints = np.zeros((16, 3))
    tips = np.zeros((5, 3))
    radii = np.zeros(21)
    radii[0] = WRIST_SEMI_AXES[1]
    for f, name in enumerate(FINGERS):
        digit = DIGITS[name]
        direction = digit_direction(digit)
        point = frame_point(*digit.base)
        for k, joint in enumerate(FINGER_JOINTS[name]):
            joints[joint] = point
            radii[joint] = digit.radii[k]
            point = point + digit.lengths[k] * direction
        tips[f] = point
        radii[16 + f] = digit.radii[3]
    return joints, tips, radii


def flexion_axes() -> np.ndarray:
    """(16, 3) unit axes about which a positive rotation curls each joint toward the palm.

    For the four fingers the axis is perpendicular to the finger in the palm plane; the thumb curls
    across the palm, toward the little finger, so its axis is tilted accordingly. Row 0 is unused.
    """
    axes = np.zeros((16, 3))
    palm_down = frame_point(0.0, 0.0, -1.0)
    for name in FINGERS:
        direction = digit_direction(DIGITS[name])
        toward = palm_down
        if name == "thumb":
            toward = frame_point(0.0, -0.8, -0.6)
        axis = np.cross(direction, toward)
        axes[list(FINGER_JOINTS[name])] = axis / np.linalg.norm(axis)
    return axes


def spread_axes() -> np.ndarray:
    """(16, 3) unit axes about which a positive rotation spreads a finger toward the thumb."""
    axes = np.zeros((16, 3))
    for name in FINGERS:
        axes[list(FINGER_JOINTS[name])] = frame_point(0.0, 0.0, 1.0)
    return axes
