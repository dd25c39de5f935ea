"""The rig: bones from the hand model's rest skeleton, poses as bone rotations, and Blender's
own reading of both (through the bpy module, in a fresh process)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from handmocap.core.handmodel import HandLayer, load_hand_models
from handmocap.core.kinematics import joint_frames, joint_limits
from handmocap.core.rig import (
    bone_matrix,
    bones_to_pose,
    build_rig,
    pose_to_bones,
    posed_heads,
    roll_of,
)
from handmocap.core.rotations import axis_angle_to_matrix


@pytest.fixture(scope="module")
def models():
    return load_hand_models(kind="openhand")


def random_motion(models, side: str, frames: int, seed: int):
    """Joint angles anywhere within the limits, a turning wrist and a moving hand."""
    rng = np.random.default_rng(seed)
    limits = joint_limits()
    angles = rng.uniform(limits[..., 0], limits[..., 1], size=(frames, 15, 3))
    pose = np.einsum("jab,tjb->tja", joint_frames(models[side]), angles)
    orient = rng.normal(size=(frames, 3))
    transl = rng.normal(scale=0.2, size=(frames, 3)) + [0, 0, 0.6]
    return orient, pose, transl


def test_bone_matrix_and_roll_invert_each_other():
    rng = np.random.default_rng(0)
    directions = rng.normal(size=(200, 3))
    directions[:3] = [[0, 1, 0], [0, -1, 0], [1e-9, -1, 0]]  # along Y, and straight down it
    rolls = rng.uniform(-np.pi, np.pi, size=200)
    m = bone_matrix(directions, rolls)
    np.testing.assert_allclose(m @ np.swapaxes(m, -1, -2), np.broadcast_to(np.eye(3), m.shape),
                               atol=1e-12)  # fmt: skip
    np.testing.assert_allclose(np.linalg.det(m), 1.0, atol=1e-12)
    unit = directions / np.linalg.norm(directions, axis=-1, keepdims=True)
    np.testing.assert_allclose(m[..., :, 1], unit, atol=1e-8)  # Y along (snapped straight down)
    np.testing.assert_allclose(np.cos(roll_of(m) - rolls), 1.0, atol=1e-12)


@pytest.mark.parametrize("side", ["left", "right"])
def test_rig_bones_follow_the_skeleton_and_flex_about_x(models, side):
    betas = np.linspace(-1, 1, 10)
    rig = build_rig(models[side], betas)
    layer = HandLayer(models)
    with torch.no_grad():
        rest = layer(side, torch.zeros(1, 3), torch.zeros(1, 15, 3),
                     torch.tensor(betas[None], dtype=torch.float32), torch.zeros(1, 3))  # fmt: skip
    np.testing.assert_allclose(rig.heads, rest.joints[0].double().numpy(), atol=1e-6)
    assert (rig.lengths > 0.005).all()
    m = rig.matrices
    np.testing.assert_allclose(np.linalg.det(m), 1.0, atol=1e-12)
    along = (rig.tails - rig.heads) / rig.lengths[:, None]
    np.testing.assert_allclose(m[:, :, 1], along, atol=1e-12)
    np.testing.assert_allclose(bone_matrix(along, rig.rolls), m, atol=1e-12)
    # bending a finger joint (flexion alone) is a turn about its bone's X axis alone
    angles = np.zeros((1, 15, 3))
    angles[0, :, 0] = 0.8
    pose = np.einsum("jab,tjb->tja", joint_frames(models[side]), angles)
    quats, _ = pose_to_bones(rig, np.zeros((1, 3)), pose, np.zeros((1, 3)))
    axis = quats[0, 1:, 1:] / np.linalg.norm(quats[0, 1:, 1:], axis=-1, keepdims=True)
    # finger bones' Y points at the next joint, slightly off the flexion frame's bone axis:
    # the X component dominates and the twist about Y stays small
    assert (np.abs(axis[:, 0]) > 0.97).all(), axis.round(3)
    assert (np.abs(axis[:, 1]) < 0.1).all(), axis.round(3)


@pytest.mark.parametrize("side", ["left", "right"])
def test_pose_to_bones_round_trip_and_forward_kinematics(models, side):
    orient, pose, transl = random_motion(models, side, 40, seed=3)
    rig = build_rig(models[side], np.full(10, 0.3))
    quats, location = pose_to_bones(rig, orient, pose, transl)
    np.testing.assert_allclose(np.linalg.norm(quats, axis=-1), 1.0, atol=1e-12)
    back = bones_to_pose(rig, quats, location)
    for a, b in ((back[0], orient), (back[1], pose)):
        np.testing.assert_allclose(axis_angle_to_matrix(a), axis_angle_to_matrix(b), atol=1e-9)
    np.testing.assert_allclose(back[2], transl, atol=1e-12)
    # the armature's forward kinematics put the heads where the hand model puts the joints
    layer = HandLayer(models)
    params = (orient, pose, np.tile(rig.betas, (40, 1)), transl)
    with torch.no_grad():
        joints = layer(side, *(torch.tensor(x, dtype=torch.float64) for x in params)).joints
    np.testing.assert_allclose(posed_heads(rig, quats, location), joints.numpy(), atol=1e-6)


BLENDER_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import bpy
    data = json.load(open(sys.argv[1]))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    arm = bpy.data.armatures.new("hand")
    obj = bpy.data.objects.new("hand", arm)
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    bones = []
    for name, parent, head, tail, roll in zip(data["names"], data["parents"], data["heads"],
                                              data["tails"], data["rolls"]):
        b = arm.edit_bones.new(name)
        b.head, b.tail, b.roll = head, tail, roll
        if parent >= 0:
            b.parent = bones[parent]
            b.use_connect = False
        bones.append(b)
    bpy.ops.object.mode_set(mode="OBJECT")
    out = {"matrices": [], "heads": []}
    for bone in arm.bones:
        out["matrices"].append([list(r)[:3] for r in bone.matrix_local][:3])
    for quats, location in zip(data["quats"], data["location"]):
        for k, pb in enumerate(obj.pose.bones):
            pb.rotation_mode = "QUATERNION"
            pb.rotation_quaternion = quats[k]
            pb.location = location if k == 0 else (0.0, 0.0, 0.0)
        bpy.context.view_layer.update()
        out["heads"].append([list(pb.head) for pb in obj.pose.bones])
    json.dump(out, open(sys.argv[2], "w"))
    """
)


@pytest.mark.slow
def test_blender_reads_the_rig_and_its_poses_as_we_do(models, tmp_path):
    """Blender (the bpy module) builds the same bone axes from heads, tails and rolls, and its
    posed bones' heads land on the hand model's joints."""
    if importlib.util.find_spec("bpy") is None:  # not imported here: it runs in a subprocess
        pytest.skip("the bpy module is the reference for Blender's conventions")
    side = "right"
    orient, pose, transl = random_motion(models, side, 5, seed=8)
    rig = build_rig(models[side], np.full(10, -0.4))
    quats, location = pose_to_bones(rig, orient, pose, transl)
    data = {"names": list(rig.names), "parents": list(rig.parents), "heads": rig.heads.tolist(),
            "tails": rig.tails.tolist(), "rolls": rig.rolls.tolist(), "quats": quats.tolist(),
            "location": location.tolist()}  # fmt: skip
    (tmp_path / "in.json").write_text(json.dumps(data))
    (tmp_path / "script.py").write_text(BLENDER_SCRIPT)
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(tmp_path / "blender")}
    subprocess.run([sys.executable, str(tmp_path / "script.py"), str(tmp_path / "in.json"),
                    str(tmp_path / "out.json")], check=True, capture_output=True, env=env,
                   timeout=300)  # fmt: skip
    out = json.loads((tmp_path / "out.json").read_text())
    np.testing.assert_allclose(np.array(out["matrices"]), rig.matrices, atol=1e-5)  # float32
    np.testing.assert_allclose(np.array(out["heads"]), posed_heads(rig, quats, location),
                               atol=1e-5)  # fmt: skip
