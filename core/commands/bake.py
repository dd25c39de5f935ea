"""``handmocap bake``: a take into a .blend (camera, footage, both hands animated), optionally
retargeted onto a character's rig and exported as FBX, headless."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

NAME = "bake"
HELP = "bake a take into a .blend (camera, footage, hands animated), a character rig and an FBX"


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
    parser.add_argument(
        "--target", default=None, metavar="RIG.blend:ARMATURE",
        help="a character's rig to key the fingers of; the output is that file with the take "
        "added (ARMATURE may be left out when the file has one armature)",
    )  # fmt: skip
    parser.add_argument(
        "--map", default="auto", metavar="auto|rigify|mixamo|MAP.json",
        help="how the rig's bones are named (auto: detect rigify or mixamo names)",
    )  # fmt: skip
    parser.add_argument(
        "--fbx-scope", choices=("hands", "character"), default=None,
        help="what the FBX holds: the take's hands, or the target character "
        "(default: the character with --target, else the hands)",
    )  # fmt: skip
    parser.add_argument("--models", type=Path, default=None, help="models folder (for MANO)")


def check_writable(path: Path) -> None:
    """Refuse, before any work, an output that cannot be written: a folder in its way, or a
    folder that does not let us write."""
    from handmocap.core.errors import HandmocapError

    if path.is_dir():
        raise HandmocapError(f"{path}: is a folder, not a file")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise HandmocapError(f"{path}: cannot write it ({parent} is not a folder)")
    if not os.access(parent, os.W_OK):
        raise HandmocapError(f"{path}: cannot write it ({parent} is not writable)")


def run(args: argparse.Namespace) -> int:
    import importlib.util

    from handmocap.core.errors import HandmocapError
    from handmocap.core.handmodel import load_hand_models
    from handmocap.core.models_dir import model_kind
    from handmocap.core.retarget import MAP_CHOICES, parse_target
    from handmocap.core.smoothing import PRESETS
    from handmocap.core.take import read_take

    if args.smoothing not in PRESETS:
        raise HandmocapError(f"--smoothing must be one of {', '.join(PRESETS)}")
    output = args.output or args.take.with_suffix(".blend")
    if output.suffix != ".blend":
        raise HandmocapError(f"{output}: the output must be a .blend file")
    if args.fbx is not None and args.fbx.suffix.lower() != ".fbx":
        raise HandmocapError(f"{args.fbx}: --fbx must name a .fbx file")
    if args.map not in MAP_CHOICES and not args.map.lower().endswith(".json"):
        raise HandmocapError(f"--map must be one of {', '.join(MAP_CHOICES)} or a .json file")
    if args.target is not None:
        rig_path = parse_target(args.target)[0]
        if rig_path.exists() and output.exists() and rig_path.samefile(output):
            raise HandmocapError(f"{output}: would overwrite the target rig; give another -o")
    scope = args.fbx_scope or ("character" if args.target else "hands")
    if scope == "character" and args.target is None:
        raise HandmocapError("--fbx-scope character needs a --target rig")
    for path in (output, args.fbx):
        if path is not None:
            check_writable(path)
    take = read_take(args.take)
    kind = model_kind(take.manifest.hand_model)
    models = load_hand_models(args.models, kind)
    if importlib.util.find_spec("bpy") is None:
        raise HandmocapError("baking needs the bpy module: make test / make demo install it")
    from handmocap.blender_addon.headless import bake_files

    report = bake_files(take, models, output, args.fbx, args.preset, args.smoothing,
                        args.target, args.map, scope)  # fmt: skip
    baked, retargeted = report.baked, report.retargeted
    first, last = baked.frames
    hands = ", ".join(sorted(baked.hands)) or "none"
    print(f"blend: {output} (frames {first}-{last}, hands: {hands}, smoothing {args.smoothing})")
    if retargeted is not None:
        keyed = "; ".join(f"{side} hand {len(b)} bones" for side, b in retargeted.bones.items())
        name = retargeted.armature.name
        print(f"rig:   {name} ({retargeted.bone_map} map): {keyed or 'nothing keyed'}")
    if args.fbx is not None:
        print(f"fbx:   {args.fbx} ({args.preset} preset, {scope})")
    for side in baked.missing:
        print(f"note: the {side} hand is never seen in {args.take}; it has no rig")
    return 0
