"""The hand model's skeleton as armature bones, and its poses as bone rotations (DESIGN.md, 6).

Pure numpy: what the Blender side (``blender_addon``) and any other animation tool needs.

Bones follow Blender's conventions. A bone runs from its head (the joint) to its tail; its
local Y axis points along it, and its roll turns X and Z about Y. Here each finger bone's X
axis is the joint's flexion axis and Z its abduction axis (``skeleton.joint_frames``), so
bending a finger is a rotation about one bone axis, as animators expect. The root bone (the
wrist) runs to the middle finger's base, with X across the palm and Z out of the back of the
hand.

Poses: the hand model turns joint ``j`` by ``R_j`` relative to its parent, about axes that are
the model's own at rest. A bone whose rest orientation is ``B_j`` (its axes as columns) takes
that same turn as the local rotation ``B_j^T R_j B_j``: Blender's pose-bone rotation. The
root's location is the hand's translation, in the root bone's rest axes. ``pose_to_bones``
and ``bones_to_pose`` invert each other exactly (up to rounding).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from handmocap.core.handdata import HandModelData
from handmocap.core.joints import FINGERS, JOINT_NAMES, PARENTS
from handmocap.core.rotations import (
    axis_angle_to_matrix,
    matrix_to_axis_angle,
    matrix_to_quat,
    quat_to_matrix,
)
from handmocap.core.skeleton import FINGER_CHAINS, joint_frames

TIP_BONE_LENGTH = 0.02  # metres, for a tip's bone when no fingertip lies beyond it
SIDE_SUFFIX = {"left": ".L", "right": ".R"}  # Blender's naming: mirror tools pair .L with .R


@dataclass(frozen=True)
class Rig:
    """One hand's bones at rest, in the hand model's frame (metres)."""

    side: str
    names: tuple[str, ...]  # the 16 joints' names (MANO order)
    parents: tuple[int, ...]  # -1 for the root
    heads: np.ndarray  # (16, 3) the joints
    tails: np.ndarray  # (16, 3)
    rolls: np.ndarray  # (16,) radians, Blender's roll
    matrices: np.ndarray  # (16, 3, 3) rest orientation: columns X, Y (along the bone), Z
    betas: np.ndarray  # (10,) the shape the skeleton was made for

    @property
    def lengths(self) -> np.ndarray:
        return np.linalg.norm(self.tails - self.heads, axis=-1)


def bone_matrix(direction: np.ndarray, roll: np.ndarray | float) -> np.ndarray:
    """(..., 3) bone directions and rolls -> (..., 3, 3) orientations, as Blender makes them.

    With no roll, the orientation is the smallest rotation taking Y onto the bone; the roll
    then turns it about the bone. A bone pointing straight down -Y has no smallest rotation:
    Blender takes the half turn about Z, and so does this.
    """
    y = np.asarray(direction, dtype=np.float64)
    y = y / np.linalg.norm(y, axis=-1, keepdims=True)
    x, yy, z = y[..., 0], y[..., 1], y[..., 2]
    # rotation about the axis Y x d = (z, 0, -x) by the angle between Y and d (Rodrigues,
    # with 1 - cos over sin^2 written as 1 / (1 + cos) so that it stays finite near +Y)
    k = 1.0 / np.maximum(1.0 + yy, 1e-12)
    base = np.stack(
        [
            np.stack([1 - x * x * k, x, -x * z * k], -1),
            np.stack([-x, yy, -z], -1),
            np.stack([-x * z * k, z, 1 - z * z * k], -1),
        ],
        -2,
    )
    down = 1.0 + yy < 1e-7  # straight down: the half turn about Z
    base = np.where(down[..., None, None], np.diag([-1.0, -1.0, 1.0]), base)
    roll = np.asarray(roll, dtype=np.float64)
    c, s = np.cos(roll), np.sin(roll)
    zero, one = np.zeros_like(c), np.ones_like(c)
    about_y = np.stack(
        [np.stack([c, zero, s], -1), np.stack([zero, one, zero], -1), np.stack([-s, zero, c], -1)],
        -2,
    )
    return base @ about_y


def roll_of(matrix: np.ndarray) -> np.ndarray:
    """(..., 3, 3) bone orientations -> (...,) Blender's roll (the inverse of ``bone_matrix``
    for a given direction)."""
    m = np.asarray(matrix, dtype=np.float64)
    turn = np.swapaxes(bone_matrix(m[..., :, 1], 0.0), -1, -2) @ m  # a rotation about Y
    return np.arctan2(turn[..., 0, 2], turn[..., 0, 0])


def rest_vertices(model: HandModelData, betas=None) -> np.ndarray:
    """(V, 3) the flat hand's surface at rest, for the shape ``betas`` (default: the mean)."""
    a = model.arrays
    betas = np.zeros(10) if betas is None else np.asarray(betas, dtype=np.float64)
    dirs = np.asarray(a["shapedirs"], dtype=np.float64)[..., : len(betas)]
    return np.asarray(a["v_template"], dtype=np.float64) + dirs @ betas


def rest_skeleton(model: HandModelData, betas=None) -> tuple[np.ndarray, np.ndarray]:
    """(16, 3) joints and (5, 3) fingertips (thumb..pinky) of the flat hand at rest."""
    verts = rest_vertices(model, betas)
    joints = np.asarray(model.arrays["J_regressor"], dtype=np.float64) @ verts
    return joints, verts[model.fingertip_ids]


def build_rig(model: HandModelData, betas=None) -> Rig:
    """The bones of ``model`` at rest, for the shape ``betas`` (default: the mean shape)."""
    joints, tips = rest_skeleton(model, betas)
    frames = joint_frames(model)  # (15, 3, 3) flexion, abduction, twist (from the mean shape)
    tails = np.zeros((16, 3))
    tip_of = dict(zip(FINGERS, tips, strict=True))
    for finger, chain in FINGER_CHAINS.items():
        ends = [joints[j] for j in chain[1:]] + [tip_of[finger]]
        for j, end in zip(chain, ends, strict=True):
            tails[j] = end
    tails[0] = joints[FINGER_CHAINS["middle"][0]]
    matrices = np.zeros((16, 3, 3))
    for j in range(16):
        y = tails[j] - joints[j]
        y /= np.linalg.norm(y)
        if j == 0:  # across the palm, index side to pinky side, for the wrist's X
            x = joints[FINGER_CHAINS["pinky"][0]] - joints[FINGER_CHAINS["index"][0]]
        else:
            x = frames[j - 1][:, 0]  # the flexion axis
        x = x - y * (x @ y)
        x /= np.linalg.norm(x)
        matrices[j] = np.stack([x, y, np.cross(x, y)], axis=1)
    if model.side == "left":  # mirrored hand: keep the bones right-handed with Z to the back
        matrices[0] = np.stack([-matrices[0][:, 0], matrices[0][:, 1], -matrices[0][:, 2]], 1)
    return Rig(
        side=model.side,
        names=JOINT_NAMES,
        parents=PARENTS,
        heads=joints,
        tails=tails,
        rolls=roll_of(matrices),
        matrices=matrices,
        betas=np.zeros(10) if betas is None else np.asarray(betas, dtype=np.float64),
    )


def pose_to_bones(rig: Rig, global_orient, hand_pose, transl) -> tuple[np.ndarray, np.ndarray]:
    """(T, 3), (T, 15, 3) absolute finger pose, (T, 3) -> (T, 16, 4) bone rotations (wxyz, in
    each bone's rest axes) and (T, 3) the root bone's location (in its rest axes)."""
    orient = np.asarray(global_orient, dtype=np.float64).reshape(-1, 1, 3)
    pose = np.asarray(hand_pose, dtype=np.float64).reshape(len(orient), 15, 3)
    turns = axis_angle_to_matrix(np.concatenate([orient, pose], axis=1))  # (T, 16, 3, 3)
    b = rig.matrices
    local = np.swapaxes(b, -1, -2) @ turns @ b
    location = np.asarray(transl, dtype=np.float64) @ b[0]  # B_0^T t, row-wise
    return matrix_to_quat(local), location


def bones_to_pose(rig: Rig, quats, location) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse of ``pose_to_bones``: -> (T, 3) global orientation, (T, 15, 3), (T, 3)."""
    b = rig.matrices
    turns = b @ quat_to_matrix(np.asarray(quats, dtype=np.float64)) @ np.swapaxes(b, -1, -2)
    aa = matrix_to_axis_angle(turns)
    transl = np.asarray(location, dtype=np.float64) @ b[0].T
    return aa[:, 0], aa[:, 1:], transl


def posed_heads(rig: Rig, quats, location) -> np.ndarray:
    """(T, 16, 3) where the bones' heads go, by the armature's own forward kinematics (what
    Blender evaluates: each bone turns about its head, in its parent's posed frame)."""
    local = quat_to_matrix(np.asarray(quats, dtype=np.float64))  # (T, 16, 3, 3)
    b = rig.matrices
    t = len(local)
    world = np.zeros((t, 16, 3, 3))  # posed orientation of each bone
    heads = np.zeros((t, 16, 3))
    root = np.asarray(location, dtype=np.float64) @ b[0].T
    for j in range(16):
        p = rig.parents[j]
        if p < 0:
            world[:, j] = b[j] @ local[:, j]
            heads[:, j] = rig.heads[j] + root
        else:
            offset = np.swapaxes(b[p], -1, -2) @ (rig.heads[j] - rig.heads[p])  # in p's axes
            world[:, j] = world[:, p] @ (b[p].T @ b[j]) @ local[:, j]
            heads[:, j] = heads[:, p] + world[:, p] @ offset
    return heads
