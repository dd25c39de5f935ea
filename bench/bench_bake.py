"""Baking speed in Blender (the bpy module): 10,000 frames of two hands keyed in bulk, against
one ``keyframe_insert`` per bone and frame (what most mocap add-ons do); retargeting them onto
a Mixamo-named character; saving the .blend; exporting the FBX (both presets).

Bulk: ``handmocap.blender_addon.build.bake_bones`` (``keyframe_points.add`` + ``foreach_set``
per F-curve). The per-key figure is timed on 500 frames and given per 10,000 frames (it grows
linearly). The FBX holds the two hands' armatures and skinned meshes, every frame baked (the
presets of ``blender_addon.export``). Run in a fresh process so that Blender starts from an
empty scene.

    .venv/bin/python bench/bench_bake.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import device_args, peak_rss_mib, write_results

FRAMES = 10_000
PER_KEY_FRAMES = 500


def main() -> None:
    device_args(__doc__.splitlines()[0], ("cpu",))
    with tempfile.TemporaryDirectory(prefix="bench-bake-") as tmp:
        os.environ["BLENDER_USER_RESOURCES"] = str(Path(tmp) / "blender")
        import bpy

        from handmocap.blender_addon.build import (
            bake_bones,
            bone_names,
            build_armature,
            build_mesh,
        )
        from handmocap.blender_addon.export import export_fbx
        from handmocap.blender_addon.retarget import HandMotion, retarget
        from handmocap.blender_addon.scene import save_blend
        from handmocap.core.handmodel import load_hand_models
        from handmocap.core.rig import build_rig

        bpy.ops.wm.read_factory_settings(use_empty=True)
        models = load_hand_models(kind="openhand")
        rng = np.random.default_rng(0)
        hands = {}
        for side in ("left", "right"):
            rig = build_rig(models[side])
            quats = rng.normal(size=(FRAMES, 16, 4))
            quats /= np.linalg.norm(quats, axis=-1, keepdims=True)
            hands[side] = (rig, build_armature(f"hand {side}", rig), quats,
                           rng.normal(size=(FRAMES, 3)))  # fmt: skip
            build_mesh(f"hand {side} mesh", models[side], rig, hands[side][1])
        frames = np.arange(1, FRAMES + 1)
        start = time.perf_counter()
        for side, (rig, arm, quats, loc) in hands.items():
            bake_bones(arm, rig, f"bench.{side}", frames, quats, loc)
        bulk = time.perf_counter() - start
        start = time.perf_counter()
        for rig, arm, quats, loc in hands.values():
            arm.animation_data_clear()
            for f in range(PER_KEY_FRAMES):
                for j, name in enumerate(bone_names(rig)):
                    bone = arm.pose.bones[name]
                    bone.rotation_quaternion = quats[f, j]
                    bone.keyframe_insert("rotation_quaternion", frame=f + 1)
                root = arm.pose.bones[bone_names(rig)[0]]
                root.location = loc[f]
                root.keyframe_insert("location", frame=f + 1)
        per_key = (time.perf_counter() - start) * FRAMES / PER_KEY_FRAMES
        for side, (rig, arm, quats, loc) in hands.items():  # the bulk bake back for saving
            bake_bones(arm, rig, f"bench.{side}", frames, quats, loc)
        motions = {  # finger poses within reach: small random turns of every joint
            side: HandMotion(rig, frames, rng.normal(scale=0.3, size=(FRAMES, 15, 3)))
            for side, (rig, *_) in hands.items()
        }
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "blender_addon"))
        from rigs import mixamo_rig

        character = mixamo_rig(rng)
        start = time.perf_counter()
        retarget(character, motions, "auto", "bench.character")
        retargeting = time.perf_counter() - start
        bpy.data.objects.remove(character)
        start = time.perf_counter()
        save_blend(Path(tmp) / "bench.blend")
        saving = time.perf_counter() - start
        size = (Path(tmp) / "bench.blend").stat().st_size / 2**20
        objects = [o for o in bpy.context.scene.objects if o.type in {"ARMATURE", "MESH"}]
        scene = bpy.context.scene  # the exporter bakes the scene's frame range
        scene.frame_start, scene.frame_end = 1, FRAMES
        exports = {}
        for preset in ("unity", "unreal"):
            start = time.perf_counter()
            export_fbx(Path(tmp) / f"{preset}.fbx", objects, preset)
            exports[preset] = (time.perf_counter() - start,
                               (Path(tmp) / f"{preset}.fbx").stat().st_size / 2**20)  # fmt: skip
        version = bpy.app.version_string
    keys = FRAMES * 2 * (16 * 4 + 3)
    results = [
        {"setting": f"bulk bake, {FRAMES:,} frames x 2 hands ({keys:,} keys), bpy {version}",
         "seconds": bulk, "figure": f"{bulk:.2f} s ({keys / bulk / 1e6:.1f} M keys/s)"},
        {"setting": f"one keyframe_insert per bone and frame, per {FRAMES:,} frames "
                    f"(timed on {PER_KEY_FRAMES})",
         "seconds": per_key, "figure": f"{per_key:.1f} s ({per_key / bulk:.0f} x the bulk bake)"},
        {"setting": f"retarget onto a Mixamo-named character, {FRAMES:,} frames x 2 hands "
                    "(30 finger bones)", "seconds": retargeting,
         "figure": f"{retargeting:.2f} s"},
        {"setting": "saving the .blend", "seconds": saving,
         "figure": f"{saving:.2f} s ({size:.1f} MiB)"},
        *({"setting": f"FBX export, {preset} preset, {FRAMES:,} frames x 2 hands with meshes",
           "seconds": seconds, "figure": f"{seconds:.1f} s ({mib:.0f} MiB)"}
          for preset, (seconds, mib) in exports.items()),
        {"setting": "peak RSS (process)", "mib": peak_rss_mib(),
         "figure": f"{peak_rss_mib():,.0f} MiB"},
    ]  # fmt: skip
    write_results("bake", "cpu", results)


if __name__ == "__main__":
    main()
