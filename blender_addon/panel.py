"""The Hand Mocap tab of the 3D viewport's sidebar, and the preferences' layout.

Drawing only reads: the settings, the takes list and the jobs' state (``addon.RUNNING``,
``addon.ENDED``), which the timer keeps current."""

from __future__ import annotations

import bpy

from handmocap.blender_addon import operators
from handmocap.blender_addon.jobs import CANCELLED, FAILED


def _addon():
    from handmocap.blender_addon import addon

    return addon


def _job_status(layout, kind: str) -> bool:
    """A running job's progress bar and Cancel, or how the last one ended; -> one is running."""
    addon = _addon()
    job = addon.RUNNING.get(kind)
    if job is not None:
        box = layout.box()
        fraction = job.fraction
        if fraction is None:
            text = f"{job.title}: starting..." if kind == "capture" else f"{job.title}..."
            box.progress(factor=0.0, type="BAR", text=text)
        else:
            eta = f", {job.eta_s:.0f} s left" if job.eta_s is not None else ""
            fps = f", {job.fps:.1f} frames/s" if job.fps else ""
            box.progress(factor=fraction, type="BAR",
                         text=f"{job.done}/{job.total} frames{fps}{eta}")  # fmt: skip
        if job.messages:
            box.label(text=job.messages[-1], icon="INFO")
        box.operator("handmocap.cancel", icon="CANCEL").kind = kind
        return True
    ended = addon.ENDED.get(kind)
    if ended is not None and ended.state == FAILED:
        col = layout.column(align=True)
        col.alert = True
        col.label(text=f"{kind.title()} failed:", icon="ERROR")
        col.label(text=ended.error[:200])
    elif ended is not None and ended.state == CANCELLED:
        layout.label(text=f"{kind.title()} cancelled after {ended.done} frames", icon="CANCEL")
    return False


def draw_capture(layout, context) -> None:
    settings = context.scene.handmocap
    if not bpy.data.filepath:
        layout.label(text="Save the .blend: takes go beside it", icon="ERROR")
    if not operators.external_python():
        layout.label(text="Set the capture Python in Preferences", icon="ERROR")
    col = layout.column()
    col.prop(settings, "use_clip")
    if settings.use_clip:
        clip = context.scene.active_clip
        col.label(text=clip.name if clip else "no movie clip in the scene", icon="FILE_MOVIE")
    else:
        col.prop(settings, "video")
    col.prop(settings, "backend")
    col.prop(settings, "device")
    row = col.row(align=True)
    row.prop(settings, "use_range", text="")
    sub = row.row(align=True)
    sub.enabled = settings.use_range
    sub.prop(settings, "frame_first")
    sub.prop(settings, "frame_last")
    if _job_status(layout, "capture"):
        return
    state = operators.capture_state(context)
    row = layout.row()
    row.scale_y = 1.4
    if state == "complete":
        row.operator(
            "handmocap.capture", text="Capture Again", icon="FILE_REFRESH"
        ).overwrite = True
    elif state == "unfinished":
        row.operator("handmocap.capture", text="Resume Capture", icon="PLAY").overwrite = False
    else:
        row.operator("handmocap.capture", icon="REC").overwrite = False


class HANDMOCAP_UL_takes(bpy.types.UIList):
    """The takes beside the .blend: frames, fps, how often each hand was seen."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_property, index):
        if item.error:
            layout.label(text=item.name, icon="ERROR")
            return
        split = layout.split(factor=0.45)
        icon = "CHECKMARK" if item.complete else "SORTTIME"
        split.label(text=item.name, icon=icon)
        frames = f"{item.frames}" if item.complete else f"{item.frames}/{item.expected or '?'}"
        split.label(text=f"{frames} fr  {item.fps:.0f} fps  "
                         f"L {item.rate_left:.0%} R {item.rate_right:.0%}")  # fmt: skip


def draw_takes(layout, context) -> None:
    settings = context.scene.handmocap
    row = layout.row()
    row.template_list("HANDMOCAP_UL_takes", "", settings, "takes", settings, "take_index",
                      rows=3)  # fmt: skip
    row.operator("handmocap.refresh_takes", text="", icon="FILE_REFRESH")
    item = settings.active_take()
    if item is None:
        layout.label(text="No take yet: capture a video above", icon="INFO")
        return
    if item.error:
        col = layout.column()
        col.alert = True
        col.label(text=item.error[:200], icon="ERROR")
        return
    layout.label(text=f"{item.backend}, {item.frames / max(item.fps, 1e-9):.1f} s, "
                      f"{'complete' if item.complete else 'unfinished'}")  # fmt: skip
    col = layout.column(align=True)
    col.prop(settings, "smoothing")
    sub = col.row()
    sub.enabled = settings.smoothing == "offline"
    sub.prop(settings, "strength")
    row = layout.row(align=True)
    row.operator("handmocap.build", icon="OUTLINER_OB_ARMATURE")
    row.operator("handmocap.bake", icon="KEYINGSET")
    if not _job_status(layout, "preview"):
        layout.operator("handmocap.preview", icon="SEQUENCE")


def draw_retarget(layout, context) -> None:
    settings = context.scene.handmocap
    col = layout.column()
    col.prop(settings, "target")
    col.prop(settings, "bone_map")
    if settings.bone_map == "file":
        col.prop(settings, "map_file")
    layout.operator("handmocap.retarget", icon="ARMATURE_DATA")


def draw_export(layout, context) -> None:
    settings = context.scene.handmocap
    col = layout.column()
    col.prop(settings, "fbx_scope", expand=True)
    col.prop(settings, "fbx_preset")
    col.prop(settings, "fbx_path")
    layout.operator("handmocap.export_fbx", icon="EXPORT")


def draw_preferences(prefs, layout) -> None:
    col = layout.column()
    row = col.row(align=True)
    row.prop(prefs, "python")
    row.operator("handmocap.check_python", icon="VIEWZOOM")
    if prefs.check_result:
        failed = prefs.check_result.startswith("Check failed")
        sub = col.column()
        sub.alert = failed
        sub.label(text=prefs.check_result, icon="ERROR" if failed else "INFO")
    col.prop(prefs, "models_dir")
    col.prop(prefs, "device")


class _Sidebar:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Hand Mocap"


class HANDMOCAP_PT_capture(_Sidebar, bpy.types.Panel):
    bl_label = "Capture"

    def draw(self, context):
        draw_capture(self.layout, context)


class HANDMOCAP_PT_takes(_Sidebar, bpy.types.Panel):
    bl_label = "Takes"

    def draw(self, context):
        draw_takes(self.layout, context)


class HANDMOCAP_PT_retarget(_Sidebar, bpy.types.Panel):
    bl_label = "Retarget"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        draw_retarget(self.layout, context)


class HANDMOCAP_PT_export(_Sidebar, bpy.types.Panel):
    bl_label = "Export"

    def draw(self, context):
        draw_export(self.layout, context)


CLASSES = (
    HANDMOCAP_UL_takes,
    HANDMOCAP_PT_capture,
    HANDMOCAP_PT_takes,
    HANDMOCAP_PT_retarget,
    HANDMOCAP_PT_export,
)
DRAWN = (draw_capture, draw_takes, draw_retarget, draw_export)
