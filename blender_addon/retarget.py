"""Baked hands onto a character's armature: its finger bones keyed to the shape of the take's
fingers (the math is ``handmocap.core.retarget``; here the rig is read and the keys written).

The character's finger bones get one Action per take and armature (``TAKE.ARMATURE``), keyed
in each bone's own rotation mode. Its other bones, the hand bone included, are not keyed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import bpy
import numpy as np
from mathutils import Euler, Quaternion

from handmocap.blender_addon.anim import new_action, write_curves
from handmocap.core.retarget import (
    HandRest,
    RigMapError,
    finger_counts,
    resolve_map,
    source_directions,
    target_rotations,
)
from handmocap.core.rig import Rig


@dataclass
class HandMotion:
    """One hand of a take, as baked: its rig, the scene frames it is keyed at, its poses."""

    rig: Rig
    frames: np.ndarray  # (T,) scene frames
    hand_pose: np.ndarray  # (T, 15, 3) the smoothed finger poses


@dataclass
class Retargeted:
    armature: bpy.types.Object
    bone_map: str  # the scheme or map file used
    action: bpy.types.Action | None = None
    bones: dict = field(default_factory=dict)  # side -> the keyed bones


def hand_rest(obj: bpy.types.Object, side: str, side_map: dict[str, str]):
    """One hand of ``obj`` at rest, as ``side_map`` names its bones, and the rest orientation
    of each mapped finger bone (``finger -> (n, 3, 3)``), in the armature's frame."""
    bones = obj.data.bones
    fingers, matrices = {}, {}
    for finger, count in finger_counts(side_map).items():
        chain = [bones[side_map[f"{finger}{k}"]] for k in range(1, count + 1)]
        fingers[finger] = np.array([b.head_local for b in chain] + [chain[-1].tail_local])
        matrices[finger] = np.array([np.array(b.matrix_local)[:3, :3] for b in chain])
    wrist = np.array(bones[side_map["wrist"]].head_local)
    return HandRest(side, wrist, fingers), matrices


def _check_chain(obj: bpy.types.Object, side_map: dict[str, str]) -> None:
    """Each mapped bone must hang below the bone it is measured against."""
    bones = obj.data.bones
    for finger, count in finger_counts(side_map).items():
        above = side_map["wrist"]
        for k in range(1, count + 1):
            name = side_map[f"{finger}{k}"]
            if above not in {b.name for b in bones[name].parent_recursive}:
                raise RigMapError(
                    f"{obj.name}: bone {name!r} ({finger}{k}) is not below {above!r} in the "
                    "bone hierarchy, so it cannot follow it"
                )
            above = name


def _rotation_channel(pose_bone, quats: np.ndarray) -> tuple[str, np.ndarray]:
    """The pose bone's rotation property and the (T, C) values of ``quats`` (wxyz) in it."""
    mode = pose_bone.rotation_mode
    if mode == "QUATERNION":
        return "rotation_quaternion", quats
    if mode == "AXIS_ANGLE":
        values = []
        for q in quats:
            axis, angle = Quaternion(q).to_axis_angle()
            values.append((angle, *axis))
        return "rotation_axis_angle", np.array(values)
    values, previous = [], Euler((0.0, 0.0, 0.0), mode)
    for q in quats:  # each Euler next to the previous one, so that curves do not jump
        previous = Quaternion(q).to_euler(mode, previous)
        values.append(tuple(previous))
    return "rotation_euler", np.array(values)


def retarget(
    armature: bpy.types.Object,
    motions: dict[str, HandMotion],
    bone_map: str = "auto",
    action_name: str = "take",
) -> Retargeted:
    """Key ``armature``'s finger bones with the ``motions`` of the hands (``side -> motion``)
    through ``bone_map`` (``auto``, ``rigify``, ``mixamo`` or a JSON file)."""
    if armature is None or armature.type != "ARMATURE":
        raise RigMapError(f"{getattr(armature, 'name', armature)!r} is not an armature")
    used, sides = resolve_map(bone_map, armature.data.bones.keys(), repr(armature.name))
    result = Retargeted(armature, used)
    pairs = [(side, sides[side]) for side in ("left", "right") if side in sides]
    for _, side_map in pairs:
        _check_chain(armature, side_map)
    pairs = [(side, side_map) for side, side_map in pairs if side in motions]
    if not pairs:
        return result
    result.action, fcurves = new_action(armature, action_name)
    for side, side_map in pairs:
        motion = motions[side]
        hand, matrices = hand_rest(armature, side, side_map)
        mapped = hand.mapped()
        directions = source_directions(motion.rig, motion.hand_pose, mapped)
        quats = target_rotations(hand, matrices, directions)
        keyed = []
        for finger, count in mapped.items():
            for k in range(count):
                name = side_map[f"{finger}{k + 1}"]
                prop, values = _rotation_channel(armature.pose.bones[name], quats[finger][:, k])
                path = f'pose.bones["{name}"].{prop}'
                write_curves(fcurves, path, name, motion.frames, values)
                keyed.append(name)
        result.bones[side] = keyed
    return result
