"""FBX export of baked hands, with presets for game engines.

Both presets export the given armatures and meshes only: the hands, or a character the hands
were retargeted onto (``character_objects``), the animation baked per frame with no
simplification (so keys are exact), no leaf bones, bones along Y as Blender has them.
``unity``: Y up and -Z forward, scales applied so that one Blender metre is one Unity metre.
``unreal``: Z up and -Y forward as Unreal has them, scales left to the FBX unit (Unreal's
importer converts them). The FBX writer is Blender's own (``io_scene_fbx``); the tests read its
files back with ufbx, an independent reader.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import bpy

from handmocap.blender_addon.scene import write_whole
from handmocap.core.errors import HandmocapError

COMMON = {
    "use_selection": True,
    "object_types": {"ARMATURE", "MESH"},
    "add_leaf_bones": False,
    "primary_bone_axis": "Y",
    "secondary_bone_axis": "X",
    "bake_anim": True,
    "bake_anim_use_all_bones": True,
    "bake_anim_use_nla_strips": False,
    "bake_anim_use_all_actions": False,
    "bake_anim_force_startend_keying": True,
    "bake_anim_step": 1.0,
    "bake_anim_simplify_factor": 0.0,
    "use_armature_deform_only": False,
    "mesh_smooth_type": "FACE",
}
PRESETS = {
    "unity": {"axis_forward": "-Z", "axis_up": "Y", "apply_scale_options": "FBX_SCALE_ALL",
              "global_scale": 1.0},
    "unreal": {"axis_forward": "-Y", "axis_up": "Z", "apply_scale_options": "FBX_SCALE_NONE",
               "global_scale": 1.0},
}  # fmt: skip


def character_objects(armature: bpy.types.Object) -> list[bpy.types.Object]:
    """A character: its armature and the armatures and meshes below it."""
    below = [o for o in armature.children_recursive if o.type in {"ARMATURE", "MESH"}]
    return [armature, *below]


@contextlib.contextmanager
def _shown(objects):
    """The exporter takes the selected objects and skips hidden ones: a hand whose visibility
    Action hides it on the current frame would be left out. Such objects are shown, their
    Action set aside, for the export; the FBX carries no visibility anyway."""
    hidden = [o for o in objects if o.hide_viewport and o.animation_data is not None]
    saved = []
    for obj in hidden:
        data = obj.animation_data
        saved.append((obj, data.action, getattr(data, "action_slot", None)))
        data.action = None
        obj.hide_viewport = False
    try:
        yield
    finally:
        for obj, action, slot in saved:
            obj.animation_data.action = action
            if slot is not None:
                obj.animation_data.action_slot = slot


def export_fbx(path: Path, objects, preset: str = "unity") -> None:
    """Write ``objects`` (armatures and meshes, with their active Actions) to ``path``."""
    if preset not in PRESETS:
        raise HandmocapError(f"unknown FBX preset {preset!r}: use one of {', '.join(PRESETS)}")
    options = {**COMMON, **PRESETS[preset]}
    with _shown(objects):
        for obj in bpy.context.scene.objects:
            obj.select_set(obj in objects)
        write_whole(
            path,
            lambda temp: bpy.ops.export_scene.fbx(filepath=str(temp), **options),
            "Blender's FBX exporter",
        )
