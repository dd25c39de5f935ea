"""``handmocap bake``: a take into a .blend (camera, footage, both hands animated), headless."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "bake"
HELP = "bake a take into a .blend (camera, footage, both hands animated) and an FBX"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("take", type=Path, metavar="TAKE")
    parser.add_argument(
        "-o", "--output", type=Path, default=None, metavar="OUT.blend",
        help="the .blend to write (default: TAKE.blend beside the take)",
    )  # fmt: skip
    parser.add_argument(
        "--smoothing", default="offline", help="smoothing preset: none, one-euro-acr or offline"
    )
    parser.add_argument(
        "--fbx", type=Path, default=None, metavar="OUT.fbx", help="also write an FBX"
    )
    parser.add_argument(
        "--preset", choices=("unity", "unreal"), default="unity", help="FBX settings (unity)"
    )
    parser.add_argument("--models", type=Path, default=None, help="models folder (for MANO)")


def run(args: argparse.Namespace) -> int:
    import importlib.util

    from handmocap.core.errors import HandmocapError
    from handmocap.core.handmodel import load_hand_models
    from handmocap.core.smoothing import PRESETS
    from handmocap.core.take import read_take

    if args.smoothing not in PRESETS:
        raise HandmocapError(f"--smoothing must be one of {', '.join(PRESETS)}")
    output = args.output or args.take.with_suffix(".blend")
    if output.suffix != ".blend":
        raise HandmocapError(f"{output}: the output must be a .blend file")
    if args.fbx is not None and args.fbx.suffix.lower() != ".fbx":
        raise HandmocapError(f"{args.fbx}: --fbx must name a .fbx file")
    take = read_take(args.take)
    kind = "mano" if take.manifest.hand_model.startswith("mano") else "openhand"
    models = load_hand_models(args.models, kind)
    if importlib.util.find_spec("bpy") is None:
        raise HandmocapError("baking needs the bpy module: make test / make demo install it")
    import bpy

    from handmocap.blender_addon.export import export_fbx
    from handmocap.blender_addon.scene import bake_take, save_blend

    bpy.ops.wm.read_factory_settings(use_empty=True)
    baked = bake_take(take, models, args.smoothing)
    save_blend(output)
    if args.fbx is not None:
        export_fbx(args.fbx, [o for pair in baked.hands.values() for o in pair], args.preset)
    first, last = baked.frames
    hands = ", ".join(sorted(baked.hands)) or "none"
    print(f"blend: {output} (frames {first}-{last}, hands: {hands}, smoothing {args.smoothing})")
    if args.fbx is not None:
        print(f"fbx:   {args.fbx} ({args.preset} preset)")
    for side in baked.missing:
        print(f"note: the {side} hand is never seen in {args.take}; it has no rig")
    return 0
