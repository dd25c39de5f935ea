"""A hand in Blender: its armature (the rig of ``handmocap.core.rig``), its skinned mesh, and
its animation from bone rotations."""

from __future__ import annotations

import bpy
import numpy as np

from handmocap.blender_addon.anim import new_action, write_curves
from handmocap.core.handdata import HandModelData
from handmocap.core.rig import SIDE_SUFFIX, Rig, rest_vertices


def bone_names(rig: Rig) -> list[str]:
    return [f"{name}{SIDE_SUFFIX[rig.side]}" for name in rig.names]


def _link(obj: bpy.types.Object, collection: bpy.types.Collection | None) -> None:
    (collection or bpy.context.scene.collection).objects.link(obj)


def build_armature(
    name: str, rig: Rig, collection: bpy.types.Collection | None = None
) -> bpy.types.Object:
    """An armature object whose bones are the rig's (heads, tails, rolls, parents)."""
    armature = bpy.data.armatures.new(name)
    obj = bpy.data.objects.new(name, armature)
    _link(obj, collection)
    view_layer = bpy.context.view_layer
    previous = view_layer.objects.active
    view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    try:
        bones = []
        for bone_name, parent, head, tail, roll in zip(
            bone_names(rig), rig.parents, rig.heads, rig.tails, rig.rolls, strict=True
        ):
            bone = armature.edit_bones.new(bone_name)
            bone.head, bone.tail, bone.roll = head.tolist(), tail.tolist(), float(roll)
            if parent >= 0:
                bone.parent = bones[parent]
                bone.use_connect = False
            bones.append(bone)
    finally:
        bpy.ops.object.mode_set(mode="OBJECT")
        view_layer.objects.active = previous
    for pose_bone in obj.pose.bones:
        pose_bone.rotation_mode = "QUATERNION"
    return obj


def build_mesh(
    name: str,
    model: HandModelData,
    rig: Rig,
    armature: bpy.types.Object,
    collection: bpy.types.Collection | None = None,
) -> bpy.types.Object:
    """The hand model's surface at rest (the rig's shape), skinned to ``armature``: a vertex
    group per bone from the model's weights, and an Armature modifier."""
    verts = rest_vertices(model, rig.betas)
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(verts.tolist(), [], model.faces.tolist())
    mesh.update()
    obj = bpy.data.objects.new(name, mesh)
    _link(obj, collection)
    weights = np.asarray(model.arrays["weights"], dtype=np.float64)
    for j, bone_name in enumerate(bone_names(rig)):
        group = obj.vertex_groups.new(name=bone_name)
        for weight in np.unique(weights[:, j][weights[:, j] > 0]):
            ids = np.flatnonzero(weights[:, j] == weight).tolist()
            group.add(ids, float(weight), "REPLACE")
    modifier = obj.modifiers.new("Armature", "ARMATURE")
    modifier.object = armature
    obj.parent = armature
    return obj


def bake_bones(
    armature: bpy.types.Object, rig: Rig, action_name: str, frames, quats, location
) -> bpy.types.Action:
    """Key the bones: (T, 16, 4) rotations (wxyz) and (T, 3) the root's location, at
    ``frames`` (T,), into a fresh Action (``anim.new_action``)."""
    action, fcurves = new_action(armature, action_name)
    names = bone_names(rig)
    for j, bone_name in enumerate(names):
        path = f'pose.bones["{bone_name}"]'
        write_curves(fcurves, f"{path}.rotation_quaternion", bone_name, frames, quats[:, j])
    root = f'pose.bones["{names[0]}"]'
    write_curves(fcurves, f"{root}.location", names[0], frames, location)
    return action
