"""What the Blender-side tests share: the real clip, the command line in a subprocess, the
bpy module's environment, and the FBX check through ufbx (an FBX reader that is not Blender)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REALDATA = Path(__file__).resolve().parents[3] / "shared" / "realdata"
ASL = REALDATA / "tfjs_models_hand_pose" / "asl_hand.25fps.mp4"
HOT3D_CLIP = REALDATA / "hot3d" / "Aria_P0003_c701bd11" / "mano_hand_pose_trajectory.jsonl"


def hot3d_motion(side_key: str, frames: int):
    """(orient, finger pose, transl) of one HOT3D hand (``side_key`` "0" left, "1" right): its
    real wrist, its fingers moving through their joint ranges (HOT3D's finger poses are in
    MANO's licensed PCA basis)."""
    from handmocap.core.kinematics import joint_limits
    from handmocap.core.rotations import quat_to_axis_angle

    lines = HOT3D_CLIP.read_text().splitlines()
    hands = [json.loads(line)["hand_poses"].get(side_key) for line in lines]
    hands = [h for h in hands if h is not None][:frames]
    quats = np.array([h["wrist_xform"]["q_wxyz"] for h in hands])
    transl = np.array([h["wrist_xform"]["t_xyz"] for h in hands])
    t = np.linspace(0, 1, len(hands))[:, None, None]
    limits = joint_limits()
    angles = limits[..., 0] + (limits[..., 1] - limits[..., 0]) * (0.5 + 0.45 * np.sin(
        2 * np.pi * (t * 1.5 + np.arange(15)[None, :, None] / 15 + np.arange(3) / 7)
    ))  # fmt: skip
    return quat_to_axis_angle(quats), angles, transl


def need_bpy() -> None:
    """Skip without the bpy module (not imported here: Blender runs in subprocesses)."""
    import pytest  # here, not above: the bench imports this module where pytest may be absent

    if importlib.util.find_spec("bpy") is None:
        pytest.skip("the bpy module runs Blender headless (make test installs it)")


def bpy_env(tmp_path: Path) -> dict:
    """The environment of a bpy subprocess: the open hand model, Blender's user resources in
    a temporary folder (nothing read from or written to the user's Blender)."""
    return {**os.environ, "HANDMOCAP_MODELS": "", "BLENDER_USER_RESOURCES": str(tmp_path / "b")}


def cli(*args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "handmocap.core.cli", *args],
                          capture_output=True, text=True, env=env, timeout=600)  # fmt: skip


def run_script(script: Path, *args, env=None) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, str(script), *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def assert_fbx_matches(fbx: Path, world: np.ndarray, names: list[str], fps: float, first: int):
    """The FBX read by ufbx, in Blender's axes and metres, gives Blender's posed bones
    ``world`` (T, B, 4, 4) for the bones ``names``, frame by frame (FBX time = frame / fps):
    positions within 1e-5 m, rotations within 1e-4."""
    import pytest

    ufbx = pytest.importorskip("ufbx", reason="ufbx is the independent FBX reader")
    scene = ufbx.load_file(str(fbx), target_axes=ufbx.axes_right_handed_z_up,
                           target_unit_meters=1.0)  # fmt: skip
    stack = scene.anim_stacks[0]  # ufbx's objects live as long as what they came from
    for t in range(len(world)):
        evaluated = ufbx.evaluate_scene(scene, stack.anim, (first + t) / fps)  # owns nodes
        nodes = {n.name: n for n in evaluated.nodes}
        for j, name in enumerate(names):
            m = nodes[name].node_to_world
            cols = np.array([[c.x, c.y, c.z] for c in (m.c0, m.c1, m.c2, m.c3)]).T  # (3, 4)
            rotation = cols[:, :3] / np.linalg.norm(cols[:, :3], axis=0)
            expected = world[t, j, :3, :3] / np.linalg.norm(world[t, j, :3, :3], axis=0)
            np.testing.assert_allclose(cols[:, 3], world[t, j, :3, 3], atol=1e-5)
            np.testing.assert_allclose(rotation, expected, atol=1e-4)
