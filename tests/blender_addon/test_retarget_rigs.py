"""Retargeting a take captured from a real clip onto character rigs whose rest poses and bone
rolls differ from ours, evaluated by Blender: Rigify (generated from its human metarig), a
Mixamo-named T-posed body in centimetres, a rig of its own naming through a JSON map. Every
finger joint's flexion and spread on the rig equal the source's within 3 degrees (they come
out within a thousandth of a degree), and no finger bone twists about its own axis.

Also ``handmocap bake --target``: the character in the .blend and in the FBX (read by ufbx),
and its bad inputs.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
from helpers import ASL, assert_fbx_matches, bpy_env, cli, need_bpy, run_script

HERE = Path(__file__).parent
pytestmark = [
    pytest.mark.skipif(not ASL.is_file(), reason=f"real clip not present: {ASL}"),
    pytest.mark.slow,
]
FRAMES = 40


@pytest.fixture(scope="module")
def captured(tmp_path_factory):
    """The first FRAMES frames of the real ASL clip, captured (MediaPipe and the fit)."""
    need_bpy()
    folder = tmp_path_factory.mktemp("retarget")
    take = folder / "asl.take"
    done = cli("capture", str(ASL), "-o", str(take), "--end", str(FRAMES), "--progress", "none",
               env=bpy_env(folder))  # fmt: skip
    assert done.returncode == 0, done.stderr
    return take


@pytest.fixture(scope="module")
def rigs(captured):
    """mixamo.blend, custom.blend and handless.blend, built by tests/blender_addon/rigs.py."""
    folder = captured.parent
    run_script(HERE / "rigs.py", folder, env=bpy_env(folder))
    return folder


def table(measured: dict, key: str) -> tuple[list[str], np.ndarray]:
    joints = list(measured[key][0])
    return joints, np.array([[row[j] for j in joints] for row in measured[key]])


def test_fingers_keep_their_angles_on_three_rigs(captured, tmp_path):
    out = tmp_path / "out.json"
    run_script(HERE / "retarget_check.py", captured, out, tmp_path, env=bpy_env(tmp_path))
    result = json.loads(out.read_text())
    assert len(result["frames"]) == FRAMES
    targets = result["targets"]
    assert targets["rigify"]["map"] == "rigify" and targets["mixamo"]["map"] == "mixamo"
    assert targets["custom"]["map"].endswith("map.json")
    for name in ("rigify", "mixamo"):
        assert {s: len(b) for s, b in targets[name]["keyed"].items()} == {"left": 15, "right": 15}
    assert {s: len(b) for s, b in targets["custom"]["keyed"].items()} == {"right": 14}
    assert {"take.rig", "take.mixamo", "take.custom"} <= set(result["actions"])
    # the Mixamo rig's Euler and axis-angle bones were keyed in their own modes
    assert result["targets"]["mixamo"]["left_modes"]["mixamorig:LeftHandThumb3"] == "AXIS_ANGLE"
    checked = 0
    for name, target in targets.items():
        for side in ("left", "right"):
            if side not in target:
                continue
            source = result["source"][side]
            for key in ("flexion", "spread", "bend"):  # bend: plain geometry, no frames
                joints, got = table(target[side], key)
                _, want = table({key: [{j: r[j] for j in joints} for r in source[key]]}, key)
                error = np.abs(got - want)
                assert error.max() < 3.0, (name, side, key, joints[error.max(0).argmax()])
                checked += error.size
            joints, twist = table(target[side], "twist")
            assert np.abs(twist).max() < 0.5, (name, side, joints[np.abs(twist).max(0).argmax()])
    assert checked > 5 * 3 * 14 * FRAMES
    # the motion is real finger motion, not a hand at rest
    _, flexion = table(result["source"]["right"], "flexion")
    assert np.ptp(flexion, axis=0).max() > 30.0


READ_CHARACTER = textwrap.dedent(
    """
    import json, sys
    import bpy
    bpy.ops.wm.open_mainfile(filepath=sys.argv[1])
    scene = bpy.context.scene
    arm = bpy.data.objects["Armature"]
    names = [b.name for b in arm.pose.bones if "Hand" in b.name]
    out = {"action": arm.animation_data.action.name, "names": names,
           "actions": sorted(a.name for a in bpy.data.actions),
           "frames": [scene.frame_start, scene.frame_end],
           "fps": scene.render.fps / scene.render.fps_base, "world": []}
    for frame in range(scene.frame_start, scene.frame_end + 1):
        scene.frame_set(frame)
        out["world"].append([[list(r) for r in arm.matrix_world @ arm.pose.bones[n].matrix]
                             for n in names])
    json.dump(out, open(sys.argv[2], "w"))
    """
)


def test_bake_onto_a_character_and_export_it(captured, rigs, tmp_path):
    env = bpy_env(tmp_path)
    blend, fbx = tmp_path / "out.blend", tmp_path / "out.fbx"
    done = cli("bake", str(captured), "-o", str(blend), "--target", f"{rigs}/mixamo.blend:Armature",
               "--fbx", str(fbx), "--preset", "unreal", env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "rig:   Armature (mixamo map): right hand 15 bones" in done.stdout
    assert "(unreal preset, character)" in done.stdout
    (tmp_path / "read.py").write_text(READ_CHARACTER)
    run_script(tmp_path / "read.py", blend, tmp_path / "out.json", env=env)
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["action"] == "asl.Armature" and out["frames"] == [1, FRAMES]
    assert "own animation" in out["actions"]  # the character's own Action is kept
    world = np.array(out["world"])
    rotations = world[:, :, :3, :3] / np.linalg.norm(world[:, :, :3, :3], axis=-2, keepdims=True)
    assert np.ptp(rotations, axis=0).max() > 0.3  # the fingers move
    # the character's FBX, read by ufbx: its bones as Blender poses them, frame by frame
    assert_fbx_matches(fbx, world, out["names"], out["fps"], first=1)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_bad_targets_are_one_clear_line_and_write_nothing(captured, rigs, tmp_path):
    env = bpy_env(tmp_path)
    out = tmp_path / "out.blend"
    take = str(captured)
    cases = [
        (["--target", f"{rigs}/handless.blend"], "no finger bones of a known naming scheme"),
        (["--target", f"{rigs}/mixamo.blend:Nope"], "no armature 'Nope'"),
        (["--target", f"{rigs}/none.blend"], "give an existing RIG.blend"),
        (["--target", f"{rigs}/custom.blend", "--map", "mixamo"], "no finger bones named as"),
        (["--target", f"{rigs}/mixamo.blend", "--map", "rig.txt"], "--map must be one of"),
        (["--fbx-scope", "character"], "needs a --target rig"),
        (["-o", str(tmp_path / "file.txt" / "out.blend")], "is not a folder"),
    ]
    (tmp_path / "file.txt").write_text("in the way")
    bad_map = tmp_path / "map.json"
    bad_map.write_text(json.dumps({"right": {"wrist": "Hand_R", "index1": "Finger_Index_X_R"}}))
    cases.append((["--target", f"{rigs}/custom.blend", "--map", str(bad_map)], "Finger_Index_X_R"))
    for extra, message in cases:
        args = ["bake", take, "-o", str(out), *extra]
        if "-o" in extra:
            args = ["bake", take, *extra]
        done = cli(*args, env=env)
        assert done.returncode == 2, (extra, done.stdout, done.stderr)
        assert message in done.stderr and done.stderr.count("\n") == 1, (extra, done.stderr)
        assert not out.exists()
    leftovers = [p.name for p in tmp_path.iterdir() if p.name not in {"b", "file.txt", "map.json"}]
    assert leftovers == []


HIDDEN_HAND = textwrap.dedent(
    """
    import sys
    import bpy
    import numpy as np
    from handmocap.blender_addon.anim import CONSTANT, new_action, write_curves
    from handmocap.blender_addon.export import export_fbx
    bpy.ops.wm.open_mainfile(filepath=sys.argv[1])
    scene = bpy.context.scene
    mesh = next(o for o in scene.objects if o.type == "MESH")
    _, fcurves = new_action(mesh, "hidden")  # the hand unseen on every frame
    frames = np.arange(scene.frame_start, scene.frame_end + 1)
    write_curves(fcurves, "hide_viewport", "visibility", frames, np.ones(len(frames)), CONSTANT)
    scene.frame_set(scene.frame_start)
    assert mesh.hide_viewport
    export_fbx(sys.argv[2], [mesh.parent, mesh], "unity")
    scene.frame_set(scene.frame_start + 1)
    assert mesh.animation_data.action.name == "hidden" and mesh.hide_viewport
    print(mesh.name)
    """
)


def test_a_hand_hidden_on_the_current_frame_is_still_exported(captured, tmp_path):
    """Blender's exporter skips hidden objects; a hand unseen on the current frame is not."""
    ufbx = pytest.importorskip("ufbx", reason="ufbx is the independent FBX reader")
    env = bpy_env(tmp_path)
    blend, fbx = tmp_path / "hands.blend", tmp_path / "hands.fbx"
    assert cli("bake", str(captured), "-o", str(blend), env=env).returncode == 0
    (tmp_path / "hide.py").write_text(HIDDEN_HAND)
    mesh = run_script(tmp_path / "hide.py", blend, fbx, env=env).stdout.strip().splitlines()[-1]
    scene = ufbx.load_file(str(fbx))
    meshes = [n for n in scene.nodes if n.mesh is not None]
    assert [n.name for n in meshes] == [mesh] and len(meshes[0].mesh.vertices) > 700
