"""A take into files, headless: the .blend (camera, footage, hands, a character's fingers when
given one) and the FBX. What ``handmocap bake`` and ``handmocap demo`` run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import bpy

from handmocap.blender_addon.export import character_objects, export_fbx
from handmocap.blender_addon.retarget import Retargeted, retarget
from handmocap.blender_addon.scene import BakedTake, bake_take, quiet, save_blend
from handmocap.core.errors import HandmocapError
from handmocap.core.retarget import parse_target
from handmocap.core.take import Take


@dataclass
class BakeReport:
    baked: BakedTake
    retargeted: Retargeted | None


def open_target(target: str) -> bpy.types.Object:
    """Open the rig's .blend as the scene to bake into; -> its armature object."""
    path, name = parse_target(target)
    if path.suffix.lower() != ".blend" or not path.is_file():
        raise HandmocapError(f"--target {target}: give an existing RIG.blend[:ARMATURE]")
    try:
        with quiet():
            bpy.ops.wm.open_mainfile(filepath=str(path), load_ui=False)
    except RuntimeError as exc:
        raise HandmocapError(f"{path}: Blender cannot open it ({exc})") from None
    armatures = sorted(o.name for o in bpy.data.objects if o.type == "ARMATURE")
    if name is None and len(armatures) == 1:
        name = armatures[0]
    obj = bpy.data.objects.get(name) if name else None
    if obj is None or obj.type != "ARMATURE":
        what = f"no armature {name!r}" if name else "more than one armature"
        raise HandmocapError(
            f"{path}: {what}; name one as {path.name}:ARMATURE "
            f"(armatures: {', '.join(armatures) or 'none'})"
        )
    return obj


def bake_files(
    take: Take,
    models: dict,
    blend: Path,
    fbx: Path | None = None,
    preset: str = "unity",
    smoothing: str = "offline",
    target: str | None = None,
    bone_map: str = "auto",
    scope: str = "hands",
) -> BakeReport:
    """Bake ``take`` into a fresh scene (or into the ``target`` rig's file, keying its
    fingers through ``bone_map``), write the FBX of the hands or the character (``scope``),
    then the .blend: both files or neither."""
    if target is not None:
        armature = open_target(target)
    else:
        bpy.ops.wm.read_factory_settings(use_empty=True)
    baked = bake_take(take, models, smoothing)
    retargeted = None
    if target is not None:
        action = f"{take.path.stem}.{armature.name}"
        retargeted = retarget(armature, baked.motions, bone_map, action)
    if fbx is not None:
        if scope == "character":
            if retargeted is None:
                raise HandmocapError("an FBX of the character needs a target rig")
            objects = character_objects(retargeted.armature)
        else:
            objects = [o for pair in baked.hands.values() for o in pair]
        export_fbx(fbx, objects, preset)
    try:
        save_blend(blend)
    except HandmocapError:
        if fbx is not None:
            Path(fbx).unlink(missing_ok=True)
        raise
    return BakeReport(baked, retargeted)
