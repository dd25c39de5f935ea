"""Character rigs for the retargeting tests, built in Blender (imported in the bpy process only).

``add_hand`` makes one hand of a rig from a description of its rest pose: where the hand
points, which way the back of the hand faces, the fingers' rest curl and spread, a random roll
per bone. ``mixamo_rig`` is a T-posed body with Mixamo's bone names, in centimetres as
Mixamo's FBX files come in; ``custom_rig`` is a right hand hanging down with names of its own
and a little finger of two bones, for a JSON map; ``handless_rig`` has arms and hands but no
fingers.
"""

from __future__ import annotations

import math

import bpy
import numpy as np

FINGER_LAYOUT = {  # across the palm (toward the little finger), knuckle distance, spread (deg)
    "index": (-0.022, 0.086, -7.0),
    "middle": (0.0, 0.088, 0.0),
    "ring": (0.019, 0.084, 6.0),
    "pinky": (0.036, 0.076, 13.0),
}
LENGTHS = {"thumb": (0.045, 0.035, 0.03), "index": (0.042, 0.026, 0.021),
           "middle": (0.047, 0.029, 0.023), "ring": (0.043, 0.028, 0.022),
           "pinky": (0.034, 0.021, 0.019)}  # fmt: skip


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def _turn(v, axis, degrees) -> np.ndarray:
    """``v`` turned about the unit ``axis`` (Rodrigues)."""
    a, t = _unit(axis), math.radians(degrees)
    return v * math.cos(t) + np.cross(a, v) * math.sin(t) + a * (a @ v) * (1 - math.cos(t))


def _edit(obj):
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    return obj.data.edit_bones


def _bone(edit_bones, name, head, tail, parent, roll, connect=False):
    bone = edit_bones.new(name)
    bone.head, bone.tail, bone.roll = tuple(head), tuple(tail), float(roll)
    if parent is not None:
        bone.parent = parent
        bone.use_connect = connect
    return bone


def add_hand(edit_bones, names, side, wrist, along, dorsal, parent, rng, scale=1.0, curl=10.0,
             fingers=("thumb", "index", "middle", "ring", "pinky"), count=None):  # fmt: skip
    """One hand: ``names`` maps our joint names to the rig's; ``along`` is where the fingers
    point, ``dorsal`` where the back of the hand faces; every joint curled by ``curl`` degrees
    at rest; ``count`` limits a finger's number of bones (finger -> n)."""
    along, dorsal = _unit(along), _unit(dorsal)
    across = np.cross(along, dorsal) if side == "right" else np.cross(dorsal, along)  # to pinky
    wrist = np.asarray(wrist, dtype=np.float64)
    hand = _bone(edit_bones, names["wrist"], wrist, wrist + along * 0.07 * scale, parent,
                 rng.uniform(-math.pi, math.pi))  # fmt: skip
    flex_axis = -across if side == "right" else across  # curling toward the palm
    for finger in fingers:
        if finger == "thumb":
            head = wrist + (along * 0.025 - across * 0.022 - dorsal * 0.012) * scale
            direction = _unit(along * 0.75 - across * 0.6 - dorsal * 0.35)
            bend_axis = np.cross(direction, -dorsal * 0.6 + across * 0.8)
        else:
            offset, reach, spread = FINGER_LAYOUT[finger]
            head = wrist + (along * reach + across * offset) * scale
            direction = _turn(along, dorsal, -spread if side == "right" else spread)
            bend_axis = flex_axis
        above = hand
        for k in range(count.get(finger, 3) if count else 3):
            direction = _turn(direction, bend_axis, curl)
            tail = head + direction * LENGTHS[finger][k] * scale
            above = _bone(edit_bones, names[f"{finger}{k + 1}"], head, tail, above,
                          rng.uniform(-math.pi, math.pi), connect=k > 0)  # fmt: skip
            head = tail
    return hand


def new_armature(name: str):
    obj = bpy.data.objects.new(name, bpy.data.armatures.new(name))
    bpy.context.scene.collection.objects.link(obj)
    return obj


def mixamo_names(side: str, prefix: str = "mixamorig:") -> dict[str, str]:
    word = side.capitalize()
    names = {"wrist": f"{prefix}{word}Hand"}
    for finger in ("thumb", "index", "middle", "ring", "pinky"):
        for k in (1, 2, 3):
            names[f"{finger}{k}"] = f"{prefix}{word}Hand{finger.capitalize()}{k}"
    return names


def mixamo_rig(rng, name="Armature"):
    """A T-posed body in centimetres (object scale 0.01), Mixamo names, random rolls, some
    bones in Euler and axis-angle rotation modes."""
    obj = new_armature(name)
    s = 100.0
    eb = _edit(obj)
    hips = _bone(eb, "mixamorig:Hips", (0, 0, 1.0 * s), (0, 0, 1.1 * s), None, 0.0)
    spine = _bone(eb, "mixamorig:Spine", (0, 0, 1.1 * s), (0, 0, 1.4 * s), hips, 0.0, True)
    for side, x in (("left", 1.0), ("right", -1.0)):
        word = side.capitalize()
        arm = _bone(eb, f"mixamorig:{word}Arm", (0.18 * x * s, 0, 1.4 * s),
                    (0.45 * x * s, 0, 1.4 * s), spine, 0.3)  # fmt: skip
        fore = _bone(eb, f"mixamorig:{word}ForeArm", (0.45 * x * s, 0, 1.4 * s),
                     (0.7 * x * s, 0, 1.4 * s), arm, -0.2, True)  # fmt: skip
        add_hand(eb, mixamo_names(side), side, (0.7 * x * s, 0, 1.4 * s), (x, 0, 0), (0, 0, 1),
                 fore, rng, scale=s, curl=8.0)  # fmt: skip
    bpy.ops.object.mode_set(mode="OBJECT")
    obj.scale = (0.01, 0.01, 0.01)
    modes = ("XYZ", "ZXY", "AXIS_ANGLE", "YZX")
    for k, finger in enumerate(("Index2", "Middle1", "Thumb3", "Pinky3")):
        obj.pose.bones[f"mixamorig:LeftHand{finger}"].rotation_mode = modes[k]
    return obj


CUSTOM_NAMES = {"wrist": "Hand_R", **{f"{f}{k}": f"Finger_{f.title()}_{'ABC'[k - 1]}_R"
                                      for f in ("thumb", "index", "middle", "ring", "pinky")
                                      for k in (1, 2, 3)}}  # fmt: skip


def custom_rig(rng, name="Hands"):
    """A right hand hanging down, the back of the hand facing out (+X), its own bone names;
    its little finger has two bones."""
    obj = new_armature(name)
    eb = _edit(obj)
    root = _bone(eb, "Root", (0, 0, 0), (0, 0, 0.1), None, 0.0)
    add_hand(eb, CUSTOM_NAMES, "right", (0, 0, 1.0), (0, 0, -1), (1, 0, 0), root, rng,
             curl=15.0, count={"pinky": 2})  # fmt: skip
    bpy.ops.object.mode_set(mode="OBJECT")
    return obj


def handless_rig(name="Armature"):
    """Arms and hands with Mixamo's names, no fingers."""
    obj = new_armature(name)
    eb = _edit(obj)
    arm = _bone(eb, "mixamorig:LeftArm", (0.2, 0, 1.4), (0.45, 0, 1.4), None, 0.0)
    fore = _bone(eb, "mixamorig:LeftForeArm", (0.45, 0, 1.4), (0.7, 0, 1.4), arm, 0.0, True)
    _bone(eb, "mixamorig:LeftHand", (0.7, 0, 1.4), (0.78, 0, 1.4), fore, 0.0, True)
    bpy.ops.object.mode_set(mode="OBJECT")
    return obj


def save_rigs(folder: str) -> None:
    """Write mixamo.blend, custom.blend and handless.blend (one rig each) into ``folder``."""
    for name, build in (("mixamo", lambda: mixamo_rig(np.random.default_rng(3))),
                        ("custom", lambda: custom_rig(np.random.default_rng(4))),
                        ("handless", handless_rig)):  # fmt: skip
        bpy.ops.wm.read_factory_settings(use_empty=True)
        rig = build()
        rig.animation_data_create().action = bpy.data.actions.new("own animation")
        bpy.ops.wm.save_as_mainfile(filepath=f"{folder}/{name}.blend")


if __name__ == "__main__":
    import sys

    save_rigs(sys.argv[1])
