"""The hand skeleton's anatomy in numpy: finger chains, joint frames and joint limits.

Pure numpy, no torch: the rig (``rig``), retargeting (``retarget``) and the Blender add-on use
these, and fitting (``fitting``, through ``kinematics``) bounds its angles with them. The frames
come from the rest skeleton alone, so they serve any hand model of MANO's kinematic tree.
"""

from __future__ import annotations

import numpy as np

from handmocap.core.handdata import HandModelData

FINGER_CHAINS = {  # finger -> its joints in the 16-joint order, base to distal
    "index": (1, 2, 3),
    "middle": (4, 5, 6),
    "pinky": (7, 8, 9),
    "ring": (10, 11, 12),
    "thumb": (13, 14, 15),
}


def palm_axes(wrist, radial, ulnar, side: str) -> tuple[np.ndarray, np.ndarray]:
    """The palm's normal toward the back of the hand, and the unit vector across the palm
    toward the little finger, from the wrist and two knuckles (``radial`` nearer the thumb,
    e.g. the index finger's, ``ulnar`` nearer the little finger)."""
    wrist, radial, ulnar = (np.asarray(p, dtype=np.float64) for p in (wrist, radial, ulnar))
    sign = 1.0 if side == "right" else -1.0
    dorsal = -sign * np.cross(radial - wrist, ulnar - wrist)
    dorsal /= np.linalg.norm(dorsal)
    toward_pinky = ulnar - radial
    toward_pinky /= np.linalg.norm(toward_pinky)
    return dorsal, toward_pinky


def bone_frame(bone, finger: str, dorsal, toward_pinky, side: str) -> np.ndarray:
    """(3, 3) columns: flexion axis, abduction axis, the bone's unit direction.

    A positive rotation about the flexion axis curls the bone toward the palm (for the thumb:
    across the palm, toward the little finger); a positive abduction spreads it toward the
    thumb.
    """
    sign = 1.0 if side == "right" else -1.0
    bone = np.asarray(bone, dtype=np.float64)
    bone = bone / np.linalg.norm(bone)
    curl = -dorsal if finger != "thumb" else -0.6 * dorsal + 0.8 * toward_pinky
    flex = np.cross(bone, curl)
    flex -= bone * (flex @ bone)
    flex /= np.linalg.norm(flex)
    abduct = np.cross(bone, flex) * sign
    return np.stack([flex, abduct, bone], axis=1)


def joint_frames(model: HandModelData) -> np.ndarray:
    """(15, 3, 3) per finger joint: columns flexion axis, abduction axis, twist (bone) axis.

    From the rest skeleton alone, so it serves any hand model of MANO's kinematic tree: the
    twist axis runs along the bone, the abduction axis is the palm's normal toward the back of
    the hand, flexion is their cross product (a positive flexion curls toward the palm). The
    thumb flexes across the palm, so its flexion axis is tilted toward the little finger
    (``palm_axes``, ``bone_frame``).
    """
    a = model.arrays
    joints = np.asarray(a["J_regressor"]) @ np.asarray(a["v_template"])
    tips = np.asarray(a["v_template"])[model.fingertip_ids]
    tip_of = {
        "thumb": tips[0],
        "index": tips[1],
        "middle": tips[2],
        "ring": tips[3],
        "pinky": tips[4],
    }
    dorsal, toward_pinky = palm_axes(joints[0], joints[1], joints[7], model.side)
    frames = np.zeros((15, 3, 3))
    for finger, chain in FINGER_CHAINS.items():
        ends = [joints[j] for j in chain] + [tip_of[finger]]
        for k, j in enumerate(chain):
            frames[j - 1] = bone_frame(
                ends[k + 1] - ends[k], finger, dorsal, toward_pinky, model.side
            )
    return frames


# Joint ranges in degrees: (flexion, abduction, twist) lower and upper bounds, per joint of a
# finger (base, middle, distal); the thumb's base (carpometacarpal) moves the most.
FINGER_LIMITS = (
    ((-25.0, 95.0), (-30.0, 30.0), (-12.0, 12.0)),
    ((-5.0, 115.0), (-8.0, 8.0), (-8.0, 8.0)),
    ((-15.0, 90.0), (-8.0, 8.0), (-8.0, 8.0)),
)
THUMB_LIMITS = (
    ((-45.0, 70.0), (-45.0, 50.0), (-45.0, 45.0)),
    ((-25.0, 75.0), (-20.0, 20.0), (-20.0, 20.0)),
    ((-25.0, 95.0), (-10.0, 10.0), (-10.0, 10.0)),
)


def joint_limits() -> np.ndarray:
    """(15, 3, 2) radians: lower and upper bound of (flexion, abduction, twist) per joint."""
    limits = np.zeros((15, 3, 2))
    for finger, chain in FINGER_CHAINS.items():
        table = THUMB_LIMITS if finger == "thumb" else FINGER_LIMITS
        for k, j in enumerate(chain):
            limits[j - 1] = np.radians(np.array(table[k]))
    return limits
