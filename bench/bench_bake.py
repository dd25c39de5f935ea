"""Baking speed in Blender (the bpy module): 10,000 frames of two hands keyed in bulk, against
one ``keyframe_insert`` per bone and frame (what most mocap add-ons do), and saving the .blend.

Bulk: ``handmocap.blender_addon.build.bake_bones`` (``keyframe_points.add`` + ``foreach_set``
per F-curve). The per-key figure is timed on 500 frames and given per 10,000 frames (it grows
linearly). Run in a fresh process so that Blender starts from an empty scene.

    .venv/bin/python bench/bench_bake.py
"""

from __future__ import annotations

import os
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

        from handmocap.blender_addon.build import bake_bones, bone_names, build_armature
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
        start = time.perf_counter()
        save_blend(Path(tmp) / "bench.blend")
        saving = time.perf_counter() - start
        size = (Path(tmp) / "bench.blend").stat().st_size / 2**20
        version = bpy.app.version_string
    keys = FRAMES * 2 * (16 * 4 + 3)
    results = [
        {"setting": f"bulk bake, {FRAMES:,} frames x 2 hands ({keys:,} keys), bpy {version}",
         "seconds": bulk, "figure": f"{bulk:.2f} s ({keys / bulk / 1e6:.1f} M keys/s)"},
        {"setting": f"one keyframe_insert per bone and frame, per {FRAMES:,} frames "
                    f"(timed on {PER_KEY_FRAMES})",
         "seconds": per_key, "figure": f"{per_key:.1f} s ({per_key / bulk:.0f} x the bulk bake)"},
        {"setting": "saving the .blend", "seconds": saving,
         "figure": f"{saving:.2f} s ({size:.1f} MiB)"},
        {"setting": "peak RSS (process)", "mib": peak_rss_mib(),
         "figure": f"{peak_rss_mib():,.0f} MiB"},
    ]  # fmt: skip
    write_results("bake", "cpu", results)


if __name__ == "__main__":
    main()
