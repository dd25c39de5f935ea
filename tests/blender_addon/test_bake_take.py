"""``handmocap bake``: a take captured from a real clip, baked into a .blend and read back by
Blender: the hand lies on the video through the camera, and its joints are the take's."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
import torch
from helpers import ASL, assert_fbx_matches, bpy_env, cli, need_bpy, run_script

from handmocap.core.handmodel import HandLayer
from handmocap.core.take import read_take

pytestmark = [
    pytest.mark.skipif(not ASL.is_file(), reason=f"real clip not present: {ASL}"),
    pytest.mark.slow,
]

READ_BACK = textwrap.dedent(
    """
    import json, sys
    import bpy
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector
    bpy.ops.wm.open_mainfile(filepath=sys.argv[1])
    scene = bpy.context.scene
    camera = scene.camera
    arm = next(o for o in scene.objects if o.type == "ARMATURE")
    out = {"frames": [scene.frame_start, scene.frame_end], "size": [scene.render.resolution_x,
           scene.render.resolution_y], "actions": sorted(a.name for a in bpy.data.actions),
           "background": [b.source for b in camera.data.background_images],
           "camera_space": [], "pixels": [], "world": [],
           "names": [pb.name for pb in arm.pose.bones],
           "fps": scene.render.fps / scene.render.fps_base}
    to_camera = camera.matrix_world.inverted()
    for frame in range(scene.frame_start, scene.frame_end + 1):
        scene.frame_set(frame)
        heads = [arm.matrix_world @ pb.head for pb in arm.pose.bones]
        bones = [arm.matrix_world @ pb.matrix for pb in arm.pose.bones]
        out["world"].append([[list(r) for r in m] for m in bones])
        out["camera_space"].append([list(to_camera @ h) for h in heads])
        px = []
        for h in heads:
            v = world_to_camera_view(scene, camera, h)
            px.append([v.x * scene.render.resolution_x, (1 - v.y) * scene.render.resolution_y])
        out["pixels"].append(px)
    json.dump(out, open(sys.argv[2], "w"))
    """
)


@pytest.mark.parametrize("preset", ["unity", "unreal"])
def test_bake_a_captured_take_and_read_it_back(tmp_path, preset):
    need_bpy()
    env = bpy_env(tmp_path)
    take_path, blend = tmp_path / "asl.take", tmp_path / "asl.blend"
    done = cli("capture", str(ASL), "-o", str(take_path), "--end", "16", "--batch", "16",
               "--progress", "none", env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    fbx = tmp_path / "asl.fbx"
    done = cli("bake", str(take_path), "-o", str(blend), "--smoothing", "none", "--fbx", str(fbx),
               "--preset", preset, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"blend: {blend}" in done.stdout and "left hand is never seen" in done.stdout
    (tmp_path / "read.py").write_text(READ_BACK)
    run_script(tmp_path / "read.py", blend, tmp_path / "out.json", env=env)
    out = json.loads((tmp_path / "out.json").read_text())
    take = read_take(take_path)
    assert out["frames"] == [1, 16] and out["size"] == [620, 1080]
    assert out["actions"] == ["asl.right", "asl.right.visible"]
    assert out["background"] == ["MOVIE_CLIP"]
    hand = take.hand("right")
    # Blender's camera sees the joints where the take's 2D keypoints are (the joint rows)
    from handmocap.core.joints import KEYPOINTS_FROM_JOINTS_AND_TIPS as order

    joint_rows = [list(order).index(j) for j in range(16)]
    pixels = np.array(out["pixels"])
    error = np.linalg.norm(pixels - hand["joints2d"][:, joint_rows], axis=-1)
    assert error.max() < 0.5, error.max()
    # and in the camera's frame the joints are the hand model's for the take's parameters
    params = [torch.tensor(hand[k], dtype=torch.float64)
              for k in ("global_orient", "hand_pose", "betas", "transl")]  # fmt: skip
    with torch.no_grad():
        joints = HandLayer.from_models_dir(None, "openhand")("right", *params).joints.numpy()
    camera_space = np.array(out["camera_space"]) * [1, -1, -1]  # Blender's camera axes -> OpenCV
    error = np.linalg.norm(camera_space - joints, axis=-1)
    assert error.max() < 1e-4, error.max()  # 0.1 mm
    # the FBX, read by ufbx (not Blender), gives Blender's posed bones frame by frame
    assert_fbx_matches(fbx, np.array(out["world"]), out["names"], out["fps"], first=1)


def test_bake_bad_input_is_one_clear_line(tmp_path, capsys):
    from handmocap.core import cli as handmocap_cli

    assert handmocap_cli.main(["bake", str(tmp_path / "none.take")]) == 2
    assert "none.take" in capsys.readouterr().err
    take = tmp_path / "t.take"
    take.mkdir()
    (take / "manifest.json").write_text('{"format_version": 99}')
    assert handmocap_cli.main(["bake", str(take)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "manifest" in err
    assert handmocap_cli.main(["bake", str(take), "--smoothing", "heavy"]) == 2
    assert "--smoothing" in capsys.readouterr().err
    assert handmocap_cli.main(["bake", str(take), "-o", str(tmp_path / "x.fbx")]) == 2
    assert ".blend" in capsys.readouterr().err
    assert not (tmp_path / "x.fbx").exists()
