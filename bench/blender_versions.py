"""The Blender side on several Blender versions: each Python interpreter given (one with the
``bpy`` module of a Blender release installed, and numpy, torch and handmocap importable) runs the
same checks in a fresh process, and a table says which pass on which version, with their errors.

The checks (in one Blender session per interpreter, from an empty scene; the motion is HOT3D's
real wrist trajectories from ``../shared/realdata/hot3d`` beside the checkout, an Aria clip,
with the fingers moving through their joint ranges, as ``tests/blender_addon/test_bake.py``
has it):

* ``build``: both hands built (``build_rig``, ``build_armature``, ``build_mesh``): 16 bones, the
  mesh's vertices, 16 vertex groups and an Armature modifier;
* ``rebake``: ``bake_bones`` run twice on both hands leaves exactly one Action per hand, assigned
  to it (and, on Blender 4.4 and later, one slot);
* ``curves``: each Action holds 67 F-curves (16 bones x 4 + the root's location) of every frame,
  linear, grouped per bone;
* ``joints``: the armature's evaluated joints against the hand model (``HandLayer``), every
  frame: within 0.1 mm;
* ``mesh``: the skinned mesh's evaluated vertices against the hand model's: within 1 mm;
* ``visibility``: a visibility Action (``anim.write_curves``, CONSTANT interpolation, on
  ``hide_viewport`` and ``hide_render`` as ``scene.bake_take`` writes it) evaluates to its keys,
  at every frame and half a frame after (no blending between keys);
* ``blend``: the .blend saved (``scene.save_blend``) and reopened holds the four Actions,
  assigned, and the joints evaluate as before saving;
* ``fbx-unity``, ``fbx-unreal``: ``export.export_fbx`` with each preset, read back by ufbx (an
  independent reader, in this process, not Blender's): every bone node's rotation at every frame
  within 1e-4 of Blender's evaluated pose, and its position within 0.01 mm;
* ``fbx-meshes``: both hands' meshes are in both files, exported (as ``handmocap bake --fbx``
  does) on a frame where the right hand's visibility Action hides it.

Interpreters default to the project's ``.venv`` and, when present, the throwaway environments
``/tmp/bpyenv42``, ``/tmp/bpyenv44`` and ``/tmp/bpyenv45`` (``bpy==4.2.*`` and so on, with
numpy 1.26, scipy and torch, and handmocap importable from this checkout). Each runs with
``BLENDER_USER_RESOURCES`` in a temporary folder, so no user preferences or add-ons interfere.
Writes ``bench/results/blender-versions.json`` (pass or fail and the largest error of each check,
per interpreter, with the versions and the date); exits with 1 when a check fails. Such an
environment, for example::

    python3.11 -m venv /tmp/bpyenv45
    /tmp/bpyenv45/bin/pip install "bpy==4.5.*" numpy==1.26.4 scipy torch
    /tmp/bpyenv45/bin/pip install --no-deps -e .

Then (about 5 s per interpreter on 2 CPU cores):

    .venv/bin/python bench/blender_versions.py [PYTHON ...] [--frames 40]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from common import RESULTS_DIR, environment

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "blender_addon"))
from helpers import HOT3D_CLIP as CLIP  # noqa: E402  (the tests' motion, shared)
from helpers import hot3d_motion  # noqa: E402

DEFAULT_PYTHONS = (
    ROOT / ".venv" / "bin" / "python",
    Path("/tmp/bpyenv42/bin/python"),
    Path("/tmp/bpyenv44/bin/python"),  # optional: 4.4 was the first with slotted Actions
    Path("/tmp/bpyenv45/bin/python"),
)
SIDES = {"left": "0", "right": "1"}  # HOT3D's hand keys
# check -> (what it measures, the limit of its largest error, the error's unit)
CHECKS = {
    "build": ("both hands built: bones, mesh, vertex groups, modifier", None, ""),
    "rebake": ("second bake leaves exactly one Action per hand", None, ""),
    "curves": ("67 F-curves per Action, every frame keyed, linear, grouped per bone", None, ""),
    "joints": ("armature joints vs HandLayer", 1e-4, "m"),
    "mesh": ("skinned mesh vertices vs HandLayer", 1e-3, "m"),
    "visibility": ("CONSTANT visibility Action evaluates to its keys", 0.0, ""),
    "blend": (".blend saved and reopened: Actions there, same joints", 1e-6, "m"),
    "fbx-unity": ("FBX (unity preset) bone rotations vs Blender, every frame", 1e-4, ""),
    "fbx-unreal": ("FBX (unreal preset) bone rotations vs Blender, every frame", 1e-4, ""),
    "fbx-meshes": ("both hand meshes in both FBX files (right hand hidden on the current frame)",
                   None, ""),
}  # fmt: skip
FBX_POSITION_LIMIT = 1e-5  # metres: bone positions in the FBX against Blender's


# --------------------------------------------------------------------------------------------
# The parent process: the motion, the hand model's answer, the FBX read back, the table.


def hidden_frames(count: int, side: str) -> np.ndarray:
    """(T,) 1 where the hand is hidden: two gaps, the right hand's first from the first frame."""
    hidden = np.zeros(count, dtype=np.float32)
    gaps = ((count // 4, count // 4 + 8), (count - 9, count - 6))
    if side == "right":
        gaps = ((0, 5), (count // 2, count // 2 + 4))
    for start, end in gaps:
        hidden[start:end] = 1
    return hidden


def make_motion(frames: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The child's input (betas, bone rotations, root location, hidden frames per side) and the
    hand model's joints and vertices for it."""
    import torch

    from handmocap.core.handmodel import HandLayer, load_hand_models
    from handmocap.core.kinematics import joint_frames
    from handmocap.core.rig import build_rig, pose_to_bones

    models = load_hand_models(kind="openhand")
    layer = HandLayer(models)
    motion, expected = {}, {}
    for side, key in SIDES.items():
        orient, angles, transl = hot3d_motion(key, frames)
        pose = np.einsum("jab,tjb->tja", joint_frames(models[side]), angles)
        betas = np.linspace(-0.8, 0.8, 10) * (1 if side == "left" else -1)
        quats, location = pose_to_bones(build_rig(models[side], betas), orient, pose, transl)
        motion.update({f"{side}_betas": betas, f"{side}_quats": quats,
                       f"{side}_location": location,
                       f"{side}_hidden": hidden_frames(len(orient), side)})  # fmt: skip
        params = (orient, pose, np.tile(betas, (len(orient), 1)), transl)
        with torch.no_grad():
            out = layer(side, *(torch.tensor(x, dtype=torch.float64) for x in params))
        expected[side] = {"joints": out.joints.numpy(), "verts": out.vertices.numpy()}
    return motion, expected


def fbx_errors(path: Path, names: list[str], world: np.ndarray, fps: float) -> dict[str, Any]:
    """Largest rotation and position error of the bones of ``path`` (read by ufbx in Blender's
    axes and metres) against Blender's posed bones ``world`` (T, B, 4, 4), frame by frame (FBX
    time = scene frame / fps, the scene starting at frame 1)."""
    import ufbx

    scene = ufbx.load_file(str(path), target_axes=ufbx.axes_right_handed_z_up,
                           target_unit_meters=1.0)  # fmt: skip
    stack = scene.anim_stacks[0]  # ufbx's objects live as long as what they came from
    rotation_error = position_error = 0.0
    missing: set[str] = set()
    for t in range(len(world)):
        evaluated = ufbx.evaluate_scene(scene, stack.anim, (t + 1) / fps)
        nodes = {n.name: n for n in evaluated.nodes}
        for j, name in enumerate(names):
            if name not in nodes:
                missing.add(name)
                continue
            m = nodes[name].node_to_world
            cols = np.array([[c.x, c.y, c.z] for c in (m.c0, m.c1, m.c2, m.c3)]).T  # (3, 4)
            rotation = cols[:, :3] / np.linalg.norm(cols[:, :3], axis=0)
            rotation_error = max(rotation_error, np.abs(rotation - world[t, j, :3, :3]).max())
            position_error = max(position_error, np.abs(cols[:, 3] - world[t, j, :3, 3]).max())
    meshes = sorted(n.name for n in scene.nodes if n.mesh is not None)
    return {"rotation": float(rotation_error), "position": float(position_error),
            "missing": sorted(missing), "meshes": meshes}  # fmt: skip


def compare(result: dict[str, Any], work: Path, expected: dict[str, Any]) -> None:
    """Fill in the checks that need the hand model or ufbx, from the child's evaluated poses."""
    checks = result["checks"]
    poses_path = work / "poses.npz"
    if not poses_path.is_file():
        return
    poses = np.load(poses_path)
    joints = verts = 0.0
    for side in SIDES:
        if f"joints_{side}" in poses:
            err = np.linalg.norm(poses[f"joints_{side}"] - expected[side]["joints"], axis=-1)
            joints = max(joints, float(err.max()))
        if f"verts_{side}" in poses:
            err = np.linalg.norm(poses[f"verts_{side}"] - expected[side]["verts"], axis=-1)
            verts = max(verts, float(err.max()))
    if "joints" not in checks and all(f"joints_{s}" in poses for s in SIDES):
        checks["joints"] = {"passed": joints < CHECKS["joints"][1], "max_error": joints}
    if "mesh" not in checks and all(f"verts_{s}" in poses for s in SIDES):
        checks["mesh"] = {"passed": verts < CHECKS["mesh"][1], "max_error": verts}
    names = [n for s in SIDES for n in result.get("names", {}).get(s, [])]
    if not all(f"world_{s}" in poses for s in SIDES):
        return
    world = np.concatenate([poses[f"world_{s}"] for s in SIDES], axis=1)
    meshes = {}
    for preset in ("unity", "unreal"):
        name, path = f"fbx-{preset}", work / f"{preset}.fbx"
        if name in checks or not path.is_file():
            continue
        try:
            got = fbx_errors(path, names, world, result["fps"])
        except Exception as error:  # noqa: BLE001 (recorded as the check's failure)
            checks[name] = {"passed": False, "error": f"{type(error).__name__}: {error}"}
            continue
        detail = f"position {got['position']:.1e} m" + (
            f"; bones missing: {', '.join(got['missing'])}" if got["missing"] else ""
        )
        passed = (got["rotation"] < CHECKS[name][1] and got["position"] < FBX_POSITION_LIMIT
                  and not got["missing"])  # fmt: skip
        checks[name] = {"passed": bool(passed), "max_error": got["rotation"],
                        "position_error": got["position"], "detail": detail}  # fmt: skip
        meshes[preset] = got["meshes"]
    if len(meshes) == 2:
        wanted = [f"hand_{side}_mesh" for side in SIDES]
        missing = sorted({f"{m} ({p})" for p, got in meshes.items() for m in wanted
                          if m not in got})  # fmt: skip
        detail = f"missing: {', '.join(missing)}" if missing else ""
        checks["fbx-meshes"] = {"passed": not missing, "max_error": None, "detail": detail}


def run_interpreter(python: Path, motion: Path, work: Path, expected: dict[str, Any]) -> dict:
    """Run the checks under ``python`` in a fresh process and compare its answers."""
    work.mkdir(parents=True)
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(work / "blender-user")}
    start = time.perf_counter()
    command = [str(python), str(Path(__file__).resolve()), "--child", str(motion), str(work)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as error:  # recorded as the checks not run
        done = subprocess.CompletedProcess(command, -1, "", f"{type(error).__name__}: {error}")
    seconds = time.perf_counter() - start
    result_path = work / "result.json"
    result = json.loads(result_path.read_text()) if result_path.is_file() else {"checks": {}}
    compare(result, work, expected)
    not_run = {"passed": False, "max_error": None, "error": "not run"}  # the child never got there
    result["checks"] = {name: result["checks"].get(name, not_run) for name in CHECKS}
    if done.returncode != 0:
        result["stderr_tail"] = done.stderr[-2000:]
    result.update({
        "interpreter": str(python), "returncode": done.returncode, "seconds": round(seconds, 1),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "passed": done.returncode == 0 and all(c["passed"] for c in result["checks"].values()),
    })  # fmt: skip
    return result


def cell(check: dict[str, Any]) -> str:
    """``pass`` or ``FAIL``, and the largest error where the check measures one (the reasons
    of a failure are printed below the table)."""
    word = "pass" if check["passed"] else "FAIL"
    error = check.get("max_error")
    return word if error is None else f"{word} {error:.1e}"


def print_table(results: list[dict[str, Any]]) -> None:
    heads = [f"bpy {r.get('bpy_version_string', '?')}" for r in results]
    width = max(len(h) for h in [*heads, "FAIL 1.0e-00"]) + 2
    print(f"{'check':<12}{'limit':>10}  " + "".join(f"{h:<{width}}" for h in heads))
    for name, (_, limit, unit) in CHECKS.items():
        bound = "" if limit is None else f"{limit:g} {unit}".strip()
        cells = "".join(f"{cell(r['checks'][name]):<{width}}" for r in results)
        print(f"{name:<12}{bound:>10}  {cells}")
    print(
        f"{'python':<12}{'':>10}  " + "".join(f"{r.get('python', '?'):<{width}}" for r in results)
    )
    for r in results:
        if not r["passed"]:
            failed = [n for n, c in r["checks"].items() if not c["passed"]]
            print(f"\n{r['interpreter']}: FAILED {', '.join(failed)}")
            for n in failed:
                c = r["checks"][n]
                print(f"  {n}: {c.get('error') or c.get('detail') or c.get('max_error')}")
            if r.get("stderr_tail"):
                print("  stderr: " + r["stderr_tail"][-800:].replace("\n", "\n  "))


def summary(r: dict[str, Any]) -> dict[str, Any]:
    """The result file's row for one interpreter (``setting`` and ``figure`` for TABLE.md)."""
    checks = r["checks"]
    errors = ", ".join(f"{n} {checks[n]['max_error']:.1e}" for n in
                       ("joints", "mesh", "fbx-unity", "fbx-unreal")
                       if checks[n].get("max_error") is not None)  # fmt: skip
    failed = [n for n, c in checks.items() if not c["passed"]]
    verdict = f"all {len(checks)} checks pass" if not failed else f"FAILED: {', '.join(failed)}"
    return {
        "setting": f"Blender side on bpy {r.get('bpy_version_string', '?')} "
                   f"(Python {r.get('python', '?')}, numpy {r.get('numpy', '?')})",
        "figure": f"{verdict}; largest errors: {errors}",
        **{k: r.get(k) for k in ("bpy", "bpy_version_string", "python", "numpy", "torch",
                                 "interpreter", "passed", "seconds", "date")},
        "checks": checks,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "pythons",
        nargs="*",
        type=Path,
        help="interpreters with bpy (default: .venv, /tmp/bpyenv4{2,4,5} when present)",
    )
    parser.add_argument("--frames", type=int, default=40, help="frames of motion (default 40)")
    parser.add_argument("--child", nargs=2, metavar=("MOTION", "WORK"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]))
        return
    if not CLIP.is_file():
        sys.exit(f"real motion not present: {CLIP}")
    pythons = args.pythons or [p for p in DEFAULT_PYTHONS if p.exists()]
    motion, expected = make_motion(args.frames)
    env = environment("cpu")  # before the children, whose CPU time would count as other work
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-blender-versions-") as tmp:
        np.savez(Path(tmp) / "motion.npz", **motion)
        for i, python in enumerate(pythons):
            print(f"== {python}", flush=True)
            result = run_interpreter(python, Path(tmp) / "motion.npz", Path(tmp) / f"{i}",
                                     expected)  # fmt: skip
            print(f"   bpy {result.get('bpy_version_string', '?')}: {result['seconds']:.0f} s",
                  flush=True)  # fmt: skip
            results.append(result)
    print()
    print_table(results)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / "blender-versions.json"
    data = {"benchmark": "blender-versions", "device": "cpu", "environment": env,
            "frames": args.frames, "checks": {n: c[0] for n, c in CHECKS.items()},
            "results": [summary(r) for r in results]}  # fmt: skip
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(f"\nwrote {path}")
    if not all(r["passed"] for r in results):
        sys.exit(1)


# --------------------------------------------------------------------------------------------
# The child process: one Blender session (bpy of the interpreter running it).


def child(motion_path: Path, work: Path) -> None:
    """Build, bake, evaluate, save, reopen and export in Blender; write ``result.json`` (after
    each check, so that a crash leaves what was done) and ``poses.npz`` for the parent."""
    from importlib import metadata

    import bpy

    from handmocap.blender_addon.anim import CONSTANT, new_action, write_curves
    from handmocap.blender_addon.anim import object_fcurves as curves_of
    from handmocap.blender_addon.build import bake_bones, bone_names, build_armature, build_mesh
    from handmocap.blender_addon.export import export_fbx
    from handmocap.blender_addon.scene import save_blend
    from handmocap.core.handmodel import load_hand_models
    from handmocap.core.rig import build_rig

    motion = dict(np.load(motion_path))
    result: dict[str, Any] = {
        "bpy": metadata.version("bpy"), "bpy_version_string": bpy.app.version_string,
        "python": platform.python_version(), "numpy": np.__version__,
        "torch": metadata.version("torch"), "checks": {}, "names": {},
    }  # fmt: skip
    poses: dict[str, np.ndarray] = {}

    def save() -> None:
        (work / "result.json").write_text(json.dumps(result, indent=1))
        np.savez(work / "poses.npz", **poses)

    def record(name: str, passed: bool, max_error: float | None = None, **extra) -> None:
        result["checks"][name] = {"passed": bool(passed), "max_error": max_error, **extra}
        save()

    def attempt(name: str, fn) -> bool:
        """Run ``fn``; an exception fails check ``name`` (else ``fn`` records it, or the
        parent does from what ``fn`` left in ``poses``)."""
        try:
            fn()
        except Exception as error:  # noqa: BLE001 (recorded as the check's failure)
            record(name, False, error=f"{type(error).__name__}: {error}",
                   traceback=traceback.format_exc()[-1500:])  # fmt: skip
            return False
        save()
        return result["checks"].get(name, {"passed": True})["passed"]

    def evaluate(hand: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(T, 16, 3) joints, (T, V, 3) skinned vertices, (T, 16, 4, 4) posed bones (world)."""
        arm, mesh, names, frames = hand["armature"], hand["mesh"], hand["names"], hand["frames"]
        joints, verts, world = [], [], []
        for frame in frames:
            scene.frame_set(int(frame))
            joints.append([list(arm.pose.bones[n].head) for n in names])
            world.append([np.array(arm.matrix_world @ arm.pose.bones[n].matrix) for n in names])
            if mesh is not None:
                evaluated = mesh.evaluated_get(bpy.context.evaluated_depsgraph_get())
                data = evaluated.to_mesh()
                co = np.empty(3 * len(data.vertices))
                data.vertices.foreach_get("co", co)
                evaluated.to_mesh_clear()
                verts.append(co.reshape(-1, 3))
        return np.array(joints), np.array(verts), np.array(world)

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    models = load_hand_models(kind="openhand")
    hands: dict[str, dict] = {}
    count = len(motion["left_quats"])
    scene.frame_start, scene.frame_end = 1, count
    result["fps"] = scene.render.fps / scene.render.fps_base

    def build() -> None:
        problems = []
        for side in SIDES:
            model = models[side]
            rig = build_rig(model, motion[f"{side}_betas"])
            arm = build_armature(f"hand_{side}", rig)
            mesh = build_mesh(f"hand_{side}_mesh", model, rig, arm)
            names = bone_names(rig)
            hands[side] = {"rig": rig, "armature": arm, "mesh": mesh, "names": names,
                           "frames": np.arange(1, count + 1)}  # fmt: skip
            result["names"][side] = names
            if [b.name for b in arm.data.bones] != names:
                problems.append(f"{side}: bones {[b.name for b in arm.data.bones]}")
            if len(mesh.data.vertices) != model.num_vertices:
                problems.append(f"{side}: {len(mesh.data.vertices)} vertices")
            if sorted(g.name for g in mesh.vertex_groups) != sorted(names):
                problems.append(f"{side}: vertex groups")
            mods = [(m.type, m.object) for m in mesh.modifiers]
            if mods != [("ARMATURE", arm)] or mesh.parent != arm:
                problems.append(f"{side}: modifiers {mods}")
        record("build", not problems, detail="; ".join(problems))

    def rebake() -> None:
        for _ in range(2):  # baking again replaces each hand's Action, nothing else
            for side, hand in hands.items():
                hand["action"] = bake_bones(hand["armature"], hand["rig"], f"take.{side}",
                                            hand["frames"], motion[f"{side}_quats"],
                                            motion[f"{side}_location"])  # fmt: skip
        actions = sorted(a.name for a in bpy.data.actions)
        problems = [] if actions == ["take.left", "take.right"] else [f"actions {actions}"]
        for side, hand in hands.items():
            data = hand["armature"].animation_data
            if data.action is None or data.action.name != f"take.{side}":
                problems.append(f"{side}: assigned {data.action}")
            if bpy.app.version >= (4, 4, 0):
                if len(data.action.slots) != 1 or data.action_slot != data.action.slots[0]:
                    problems.append(f"{side}: slots {list(data.action.slots)}")
        record("rebake", not problems, detail="; ".join(problems) or f"actions {actions}")

    def curves() -> None:
        problems = []
        for side, hand in hands.items():
            fcurves = curves_of(hand["armature"])
            names = hand["names"]
            if len(fcurves) != 16 * 4 + 3:
                problems.append(f"{side}: {len(fcurves)} F-curves")
            for c in fcurves:
                bone = c.data_path.split('"')[1]
                modes = {k.interpolation for k in c.keyframe_points}
                if len(c.keyframe_points) != count or modes != {"LINEAR"}:
                    problems.append(f"{side}: {c.data_path}[{c.array_index}] keys/interp")
                if c.group is None or c.group.name != bone:
                    group = c.group.name if c.group else None
                    problems.append(f"{side}: {c.data_path}[{c.array_index}] in group {group}")
            unknown = sorted({c.data_path.split('"')[1] for c in fcurves} - set(names))
            if unknown:
                problems.append(f"{side}: unknown bones {unknown}")
        record("curves", not problems, detail="; ".join(problems[:6])
               + (f" (+{len(problems) - 6} more)" if len(problems) > 6 else ""))  # fmt: skip

    def joints_and_mesh() -> None:  # compared with the hand model by the parent
        for side, hand in hands.items():
            poses[f"joints_{side}"], poses[f"verts_{side}"], poses[f"world_{side}"] = evaluate(hand)

    def visibility() -> None:
        error, problems = 0.0, []
        for side, hand in hands.items():
            _, fcurves = new_action(hand["mesh"], f"take.{side}.visible")
            hidden = motion[f"{side}_hidden"][:, None]
            for path in ("hide_viewport", "hide_render"):
                write_curves(fcurves, path, "visibility", hand["frames"], hidden, CONSTANT)
            hand["hidden"] = hidden[:, 0]
        for side, hand in hands.items():
            mesh, hidden = hand["mesh"], hand["hidden"]
            for c in curves_of(mesh):
                if {k.interpolation for k in c.keyframe_points} != {"CONSTANT"}:
                    problems.append(f"{side}: {c.data_path} not CONSTANT")
                if c.group is None or c.group.name != "visibility":
                    problems.append(f"{side}: {c.data_path} not in group visibility")
                for t, frame in enumerate(hand["frames"]):
                    for at in (frame, frame + 0.5):  # between keys: the earlier key's value
                        error = max(error, abs(c.evaluate(at) - hidden[t]))
            for t, frame in enumerate(hand["frames"]):
                scene.frame_set(int(frame))
                if (mesh.hide_viewport, mesh.hide_render) != (bool(hidden[t]),) * 2:
                    problems.append(f"{side}: frame {frame} shown/hidden wrongly")
        record("visibility", not problems and error == 0.0, float(error),
               detail="; ".join(problems[:6]))  # fmt: skip

    def fbx(preset: str) -> None:  # read back by the parent
        objects = [o for hand in hands.values() for o in (hand["armature"], hand["mesh"])]
        scene.frame_set(1)  # as after a bake: the right hand is hidden on the first frame
        export_fbx(work / f"{preset}.fbx", objects, preset)

    def blend() -> None:
        before = {side: poses[f"joints_{side}"] for side in hands}
        save_blend(work / "take.blend")
        bpy.ops.wm.open_mainfile(filepath=str(work / "take.blend"))
        nonlocal scene
        scene = bpy.context.scene
        actions = sorted(a.name for a in bpy.data.actions)
        expected = sorted(f"take.{s}{v}" for s in hands for v in ("", ".visible"))
        problems = [] if actions == expected else [f"actions {actions}"]
        error = 0.0
        for side, hand in hands.items():
            arm = bpy.data.objects[f"hand_{side}"]
            mesh = bpy.data.objects[f"hand_{side}_mesh"]
            for obj, name in ((arm, f"take.{side}"), (mesh, f"take.{side}.visible")):
                data = obj.animation_data
                if data is None or data.action is None or data.action.name != name:
                    problems.append(f"{obj.name}: no Action {name}")
                elif bpy.app.version >= (4, 4, 0) and data.action_slot is None:
                    problems.append(f"{obj.name}: no slot")
            joints, _, _ = evaluate({**hand, "armature": arm, "mesh": None})
            error = max(error, float(np.linalg.norm(joints - before[side], axis=-1).max()))
            for t, frame in enumerate(hand["frames"]):
                scene.frame_set(int(frame))
                if mesh.hide_render != bool(hand["hidden"][t]):
                    problems.append(f"{side}: frame {frame} visibility after reopening")
        record("blend", not problems and error < CHECKS["blend"][1], error,
               detail="; ".join(problems[:6]))  # fmt: skip

    if attempt("build", build):
        attempt("rebake", rebake)
        attempt("curves", curves)
        attempt("joints", joints_and_mesh)
        attempt("visibility", visibility)
        for preset in ("unity", "unreal"):
            attempt(f"fbx-{preset}", lambda preset=preset: fbx(preset))
        attempt("blend", blend)
    save()


if __name__ == "__main__":
    main()
