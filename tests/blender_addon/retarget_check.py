"""Run in the bpy process by test_retarget_rigs.py: bake a captured take, retarget it onto three
character rigs (Rigify generated from its human metarig, a Mixamo-named T-posed body, a rig
with a JSON map) and write, frame by frame, what Blender evaluates on each rig and on the
source hands.

usage: python retarget_check.py TAKE OUT.json WORKDIR
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import bpy
import numpy as np
from mathutils import Matrix

sys.path.insert(0, str(Path(__file__).parent))
from rigs import CUSTOM_NAMES, custom_rig, mixamo_rig  # noqa: E402

from handmocap.blender_addon.build import bake_bones, bone_names, build_armature  # noqa: E402
from handmocap.blender_addon.retarget import HandMotion, hand_rest, retarget  # noqa: E402
from handmocap.blender_addon.scene import bake_take  # noqa: E402
from handmocap.core.handmodel import load_hand_models  # noqa: E402
from handmocap.core.retarget import anatomy, finger_counts, flexion_spread  # noqa: E402
from handmocap.core.rig import SIDE_SUFFIX, build_rig, pose_to_bones  # noqa: E402
from handmocap.core.take import read_take  # noqa: E402


def rotation(m) -> np.ndarray:
    m = np.array(m)[:3, :3]
    return m / np.linalg.norm(m, axis=0)


def measure(obj, side, side_map, frames):
    """Per frame and mapped joint: flexion and spread (degrees, in the anatomical frames of
    ``core.retarget``), the bend angle between the bone and the one before it (the wrist to
    the knuckle for a first bone; plain geometry), and the bone's twist about its own axis
    relative to its parent (degrees; from the evaluated matrices)."""
    scene = bpy.context.scene
    frames_of = anatomy(hand_rest(obj, side, side_map)[0])
    bones, pose = obj.data.bones, obj.pose.bones
    rest = {b.name: rotation(b.matrix_local) for b in bones}
    out = {"flexion": [], "spread": [], "bend": [], "twist": []}
    for frame in frames:
        scene.frame_set(int(frame))
        row = {k: {} for k in out}
        posed = {b.name: np.array(b.matrix) for b in pose}
        for finger, count in finger_counts(side_map).items():
            for k in range(count):
                name, joint = side_map[f"{finger}{k + 1}"], f"{finger}{k + 1}"
                carrier = side_map["wrist"] if k == 0 else side_map[f"{finger}{k}"]
                ref = rotation(posed[carrier]) @ rest[carrier].T @ frames_of.references[finger][k]
                y = rotation(posed[name])[:, 1]
                flex, spread = flexion_spread(ref.T @ y, side)
                row["flexion"][joint] = math.degrees(flex)
                row["spread"][joint] = math.degrees(spread)
                wrist = posed[side_map["wrist"]][:3, 3]
                if k == 0 and finger == "thumb":  # the hand's axis: to the knuckles' middle
                    knuckles = [posed[side_map[f"{f}1"]][:3, 3] for f in frames_of.bones
                                if f != "thumb"]  # fmt: skip
                    before = np.mean(knuckles, axis=0) - wrist
                elif k == 0:  # the metacarpal: the wrist to the knuckle
                    before = posed[name][:3, 3] - wrist
                else:
                    before = rotation(posed[carrier])[:, 1]
                before = before / np.linalg.norm(before)
                row["bend"][joint] = math.degrees(math.acos(np.clip(before @ y, -1, 1)))
                parent = bones[name].parent.name
                relative = (rest[parent].T @ rest[name]).T @ (
                    rotation(posed[parent]).T @ rotation(posed[name])
                )
                q = Matrix(relative.tolist()).to_quaternion()
                row["twist"][joint] = math.degrees(2 * math.atan2(q.y, q.w))
        for key in out:
            out[key].append(row[key])
    return out


def main(take_path, out_path, workdir):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    models = load_hand_models(kind="openhand")
    baked = bake_take(read_take(take_path), models, "offline")
    right = baked.motions["right"]
    # a left hand doing what the right hand does, mirrored (the model's left is its right
    # mirrored in x: axis-angles flip their y and z)
    left_rig = build_rig(models["left"], right.rig.betas)
    motions = {
        "right": right,
        "left": HandMotion(left_rig, right.frames, right.hand_pose * np.array([1.0, -1, -1])),
    }
    frames = right.frames
    result = {"frames": frames.tolist(), "source": {}, "targets": {}}
    for side, motion in motions.items():  # the source hands, alone, where Blender measures
        arm = build_armature(f"source {side}", motion.rig)
        t = len(motion.hand_pose)
        quats, location = pose_to_bones(motion.rig, np.zeros((t, 3)), motion.hand_pose,
                                        np.zeros((t, 3)))  # fmt: skip
        bake_bones(arm, motion.rig, f"source.{side}", motion.frames, quats, location)
        names = dict(zip(motion.rig.names, bone_names(motion.rig), strict=True))
        result["source"][side] = measure(arm, side, names, frames)
    rng = np.random.default_rng(7)

    # Rigify: the human metarig, generated; its finger controls keyed, its DEF bones measured
    import addon_utils  # Blender's, importable once bpy is

    addon_utils.enable("rigify", default_set=True)
    bpy.ops.object.armature_human_metarig_add()
    bpy.ops.pose.rigify_generate()
    rigify = bpy.data.objects["rig"]
    done = retarget(rigify, motions, "auto", "take.rig")
    result["targets"]["rigify"] = {"map": done.bone_map, "keyed": done.bones}
    for side in ("left", "right"):
        s = SIDE_SUFFIX[side]
        deform = {"wrist": f"DEF-hand{s}"}
        for finger in ("thumb", "index", "middle", "ring", "pinky"):
            stem = "thumb" if finger == "thumb" else f"f_{finger}"
            deform.update({f"{finger}{k}": f"DEF-{stem}.0{k}{s}" for k in (1, 2, 3)})
        result["targets"]["rigify"][side] = measure(rigify, side, deform, frames)

    # a Mixamo-named T-posed body in centimetres, its arm bent so the hand is not at rest
    mixamo = mixamo_rig(rng)
    mixamo.pose.bones["mixamorig:LeftForeArm"].rotation_mode = "XYZ"
    mixamo.pose.bones["mixamorig:LeftForeArm"].rotation_euler = (0.4, 0.3, 0.9)
    done = retarget(mixamo, motions, "auto", "take.mixamo")
    result["targets"]["mixamo"] = {"map": done.bone_map, "keyed": done.bones}
    for side in ("left", "right"):
        word = side.capitalize()
        names = {"wrist": f"mixamorig:{word}Hand"}
        for finger in ("thumb", "index", "middle", "ring", "pinky"):
            names.update({f"{finger}{k}": f"mixamorig:{word}Hand{finger.capitalize()}{k}"
                          for k in (1, 2, 3)})  # fmt: skip
        result["targets"]["mixamo"][side] = measure(mixamo, side, names, frames)
        pose = mixamo.pose.bones
        result["targets"]["mixamo"][f"{side}_modes"] = {
            n: pose[n].rotation_mode for n in names.values()
        }

    # a rig of its own naming, through a JSON map (the little finger has two bones)
    custom = custom_rig(rng)
    side_map = {j: n for j, n in CUSTOM_NAMES.items() if j != "pinky3"}
    map_path = Path(workdir) / "map.json"
    map_path.write_text(json.dumps({"right": side_map}))
    done = retarget(custom, motions, str(map_path), "take.custom")
    result["targets"]["custom"] = {"map": done.bone_map, "keyed": done.bones,
                                   "right": measure(custom, "right", side_map, frames)}  # fmt: skip
    result["actions"] = sorted(a.name for a in bpy.data.actions)
    Path(out_path).write_text(json.dumps(result))


if __name__ == "__main__":
    main(*sys.argv[1:4])
