"""Keyframes in bulk, through the one place that knows each Blender version's Action API.

Blender 4.4 put F-curves in channel bags (an Action has slots, layers and keyframe strips) and
5.0 removed ``Action.fcurves``; 4.2 has only ``Action.fcurves``. ``new_action`` hides that, and
``write_curves`` writes every key of a curve at once (``keyframe_points.add`` and
``foreach_set``), about 200 times faster than one ``keyframe_insert`` per key.
"""

from __future__ import annotations

import bpy
import numpy as np

CONSTANT, LINEAR = 0, 1  # keyframe interpolation enum values (BEZIER is 2)


def new_action(obj: bpy.types.Object, name: str):
    """A fresh Action called ``name`` on ``obj``, and the collection its F-curves go in.

    An Action of that name from an earlier bake is removed first, so baking again (other
    smoothing, say) replaces that take and hand's animation and nothing else. An Action of
    another name that ``obj`` had (a character's own animation) is unassigned but kept.
    """
    data = obj.animation_data
    previous = data.action if data is not None else None
    if previous is not None and previous.name != name:
        previous.use_fake_user = True  # a character's own animation stays in the file
    old = bpy.data.actions.get(name)
    if old is not None:
        bpy.data.actions.remove(old)
    action = bpy.data.actions.new(name)
    action.use_fake_user = True  # kept in the .blend when another take is assigned
    data = obj.animation_data_create()
    data.action = action
    if bpy.app.version >= (4, 4, 0):
        slot = action.slots.new(id_type="OBJECT", name=obj.name)
        data.action_slot = slot
        layer = action.layers.new("Layer")
        strip = layer.strips.new(type="KEYFRAME")
        return action, strip.channelbag(slot, ensure=True).fcurves
    return action, action.fcurves


def object_fcurves(obj: bpy.types.Object) -> list:
    """The F-curves that animate ``obj``: its Action's, in its slot on 4.4 and later (what
    ``new_action`` made)."""
    data = obj.animation_data
    if data is None or data.action is None:
        return []
    if bpy.app.version < (4, 4, 0):
        return list(data.action.fcurves)
    for layer in data.action.layers:
        for strip in layer.strips:
            bag = strip.channelbag(data.action_slot)
            if bag is not None:
                return list(bag.fcurves)
    return []


def _new_fcurve(fcurves, data_path: str, index: int, group: str):
    """A new F-curve in the channel group ``group`` (made if need be), as ``keyframe_insert``
    would group it: the dope sheet then shows a bone's channels under the bone."""
    if bpy.app.version >= (5, 0, 0):
        return fcurves.new(data_path, index=index, group_name=group)
    if bpy.app.version < (4, 4, 0):
        return fcurves.new(data_path, index=index, action_group=group)  # Action.fcurves
    # 4.4 and 4.5: a channel bag's fcurves.new takes no group; the groups are the channel bag's
    curve = fcurves.new(data_path, index=index)
    groups = fcurves.data.groups  # ``data``: the ActionChannelbag that holds ``fcurves``
    curve.group = groups.get(group) or groups.new(group)
    return curve


def write_curves(
    fcurves, data_path: str, group: str, frames, values, interpolation: int = LINEAR
) -> None:
    """One F-curve per column of ``values`` (T, C), keyed at ``frames`` (T,)."""
    frames = np.asarray(frames, dtype=np.float32)
    values = np.asarray(values, dtype=np.float32).reshape(len(frames), -1)
    co = np.empty(2 * len(frames), dtype=np.float32)
    co[0::2] = frames
    modes = np.full(len(frames), interpolation, dtype=np.int32)
    for index in range(values.shape[1]):
        curve = _new_fcurve(fcurves, data_path, index, group)
        curve.keyframe_points.add(len(frames))
        co[1::2] = values[:, index]
        curve.keyframe_points.foreach_set("co", co)
        curve.keyframe_points.foreach_set("interpolation", modes)
        curve.update()
