"""Hands built and baked in Blender (the bpy module, in a fresh process) move exactly as the
hand model: the armature's joints within 0.1 mm, the skinned mesh within 1 mm, every frame.

The motion: HOT3D's real wrist trajectories (``../shared/realdata/hot3d``, an Aria clip) with
the fingers moving through their joint ranges.
"""

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
from helpers import HOT3D_CLIP, hot3d_motion

from handmocap.core.handmodel import HandLayer, load_hand_models
from handmocap.core.kinematics import joint_frames
from handmocap.core.rig import build_rig, pose_to_bones

CLIP = HOT3D_CLIP
pytestmark = [
    pytest.mark.skipif(not CLIP.is_file(), reason=f"real motion not present: {CLIP}"),
    pytest.mark.slow,
]
FRAMES = 40

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import bpy
    import numpy as np
    from handmocap.blender_addon.build import bake_bones, bone_names, build_armature, build_mesh
    from handmocap.core.handmodel import load_hand_models
    from handmocap.core.rig import build_rig

    data = json.load(open(sys.argv[1]))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    out = {"version": list(bpy.app.version)}
    for side, motion in data.items():
        model = load_hand_models(kind="openhand")[side]
        rig = build_rig(model, motion["betas"])
        armature = build_armature(f"hand_{side}", rig)
        mesh = build_mesh(f"hand_{side}_mesh", model, rig, armature)
        frames = np.arange(1, len(motion["quats"]) + 1)
        for attempt in range(2):  # baking again replaces the take's action, nothing else
            action = bake_bones(armature, rig, f"take.{side}", frames, np.array(motion["quats"]),
                                np.array(motion["location"]))
        out[side] = {"actions": [a.name for a in bpy.data.actions], "joints": [], "verts": []}
        names = bone_names(rig)
        for frame in frames:
            scene.frame_set(int(frame))
            out[side]["joints"].append([list(armature.pose.bones[n].head) for n in names])
            evaluated = mesh.evaluated_get(bpy.context.evaluated_depsgraph_get())
            verts = np.array([v.co[:] for v in evaluated.to_mesh().vertices])
            evaluated.to_mesh_clear()
            out[side]["verts"].append((verts[::7]).tolist())
    json.dump(out, open(sys.argv[2], "w"))
    """
)


def test_baked_hands_move_as_the_hand_model(tmp_path):
    if importlib.util.find_spec("bpy") is None:  # not imported here: it runs in a subprocess
        pytest.skip("the bpy module runs Blender headless")
    models = load_hand_models(kind="openhand")
    layer = HandLayer(models)
    data, expected = {}, {}
    for side, key in (("left", "0"), ("right", "1")):
        orient, angles, transl = hot3d_motion(key, FRAMES)
        pose = np.einsum("jab,tjb->tja", joint_frames(models[side]), angles)
        betas = np.linspace(-0.8, 0.8, 10) * (1 if side == "left" else -1)
        rig = build_rig(models[side], betas)
        quats, location = pose_to_bones(rig, orient, pose, transl)
        data[side] = {"betas": betas.tolist(), "quats": quats.tolist(),
                      "location": location.tolist()}  # fmt: skip
        params = (orient, pose, np.tile(betas, (len(orient), 1)), transl)
        with torch.no_grad():
            out = layer(side, *(torch.tensor(x, dtype=torch.float64) for x in params))
        expected[side] = out
    (tmp_path / "in.json").write_text(json.dumps(data))
    (tmp_path / "bake.py").write_text(SCRIPT)
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(tmp_path / "blender")}
    done = subprocess.run(
        [sys.executable, str(tmp_path / "bake.py"), str(tmp_path / "in.json"),
         str(tmp_path / "out.json")], capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "out.json").read_text())
    for side in ("left", "right"):
        got = result[side]
        assert sorted(got["actions"])[-1] == f"take.{side}"
        assert got["actions"].count(f"take.{side}") == 1  # the second bake replaced the first
        joints = np.array(got["joints"])
        error = np.linalg.norm(joints - expected[side].joints.numpy(), axis=-1)
        assert error.max() < 1e-4, (side, error.max())  # 0.1 mm
        verts = np.array(got["verts"])
        error = np.linalg.norm(verts - expected[side].vertices.numpy()[:, ::7], axis=-1)
        assert error.max() < 1e-3, (side, error.max())  # 1 mm
