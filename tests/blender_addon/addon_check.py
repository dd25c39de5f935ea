"""Run in the bpy process by test_addon.py: install the built extension zip the way Blender
does, then use the add-on as the panel does, on a real clip, and write what happened as JSON.

Blender's bundled Python has none of torch, scipy, OpenCV, MediaPipe or PyAV: they are blocked
here before anything is imported, so the add-on is proven to run without them. Capture and
preview run in the external Python (the project's virtual environment), as in Blender.

Without Blender's event loop the timer does not fire: the script calls ``addon.tick`` (what
the timer calls) itself. The panels are drawn into a recording layout that checks every
property and operator they name.

usage: python addon_check.py ZIP OUT.json WORKDIR VIDEO PYTHON
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from blocked_imports import blocker_source  # noqa: E402

exec(blocker_source())  # before bpy and handmocap: what Blender's Python lacks stays absent

import bpy  # noqa: E402

MODULE = "bl_ext.user_default.handmocap"


class Recorder:
    """A stand-in for ``UILayout`` that checks what a draw function names and logs it."""

    def __init__(self, log: list):
        self.log, self.enabled, self.alert, self.scale_y = log, True, False, 1.0

    def _child(self, *args, **kwargs):
        return Recorder(self.log)

    row = column = box = split = _child

    def label(self, text="", icon="NONE"):
        self.log.append(("label", icon, self.alert, text))

    def separator(self, **kwargs):
        pass

    def prop(self, data, name, text=None, expand=False, **kwargs):
        if name not in data.bl_rna.properties:
            raise AttributeError(f"{data!r} has no property {name!r}")
        rna = data.bl_rna.properties[name]
        value = getattr(data, name)
        if rna.type == "ENUM":
            shown = rna.enum_items[value].name
            if expand:  # the choices side by side, the chosen one marked
                shown = " | ".join(f"[{i.name}]" if i.identifier == value else i.name
                                   for i in rna.enum_items)  # fmt: skip
        elif rna.type == "POINTER":
            shown = value.name if value is not None else ""
        elif rna.type == "STRING":
            shown = Path(value).name if value else ""
        elif rna.type == "FLOAT":
            shown = f"{value:.3g}"
        else:
            shown = value
        label = rna.name if text is None else text
        self.log.append(("prop", name, label, shown, self.enabled))

    def operator(self, idname, text=None, icon="NONE", **kwargs):
        module, name = idname.split(".")
        op = getattr(getattr(bpy.ops, module), name)
        rna = op.get_rna_type()
        self.log.append(("operator", idname, text, text or rna.name, bool(op.poll()), icon))
        recorder = self

        class Properties:  # setting an operator property the operator lacks is an error
            def __setattr__(self, key, value):
                if key not in rna.properties:
                    raise AttributeError(f"{idname} has no property {key!r}")
                recorder.log.append(("operator_property", idname, key, value))

        return Properties()

    def progress(self, factor=0.0, type="BAR", text=""):
        assert 0.0 <= factor <= 1.0, factor
        self.log.append(("progress", round(factor, 3), text))

    def panel(self, title: str) -> None:  # not UILayout's: marks where a panel begins
        self.log.append(("panel", title))

    def template_list(self, list_type, list_id, data, prop, active_data, active_prop, **kw):
        assert hasattr(bpy.types, list_type), list_type
        assert prop in data.bl_rna.properties and active_prop in active_data.bl_rna.properties
        ui_list = getattr(bpy.types, list_type)
        for index, item in enumerate(getattr(data, prop)):  # each row, as Blender would
            ui_list.draw_item(None, bpy.context, Recorder(self.log), data, item, 0,
                              active_data, active_prop, index)  # fmt: skip
        self.log.append(("list", prop, len(getattr(data, prop))))


PANELS = ("HANDMOCAP_PT_capture", "HANDMOCAP_PT_takes", "HANDMOCAP_PT_retarget",
          "HANDMOCAP_PT_export")  # fmt: skip


def draw_all() -> list:
    """Draw every panel (and the preferences) as Blender would; -> the log."""
    log: list = []
    for name in PANELS:
        panel = getattr(bpy.types, name)
        layout = Recorder(log)
        layout.panel(panel.bl_label)
        panel.draw(SimpleNamespace(layout=layout), bpy.context)
    from handmocap.blender_addon.panel import draw_preferences  # what the preferences draw

    layout = Recorder(log)
    layout.panel("Preferences")
    draw_preferences(bpy.context.preferences.addons[MODULE].preferences, layout)
    return log


def main() -> None:
    zip_path, out, work, video, python = sys.argv[-5:]
    work = Path(work)
    result: dict = {"draws": {}}

    # install through Blender's own extension install, enabled at once
    done = bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default",
                                                    enable_on_install=True)  # fmt: skip
    result["install"] = sorted(done)
    result["enabled"] = MODULE in bpy.context.preferences.addons
    import handmocap.blender_addon as package
    from handmocap.blender_addon import addon

    result["addon_file"] = package.__file__
    result["registered"] = {name: hasattr(bpy.types, name) for name in (
        *PANELS, "HANDMOCAP_UL_takes", "HANDMOCAP_OT_capture", "HANDMOCAP_OT_build")}  # fmt: skip
    result["scene_settings"] = hasattr(bpy.context.scene, "handmocap")
    prefs = bpy.context.preferences.addons[MODULE].preferences
    result["draws"]["fresh"] = draw_all()
    result["capture_poll_unsaved"] = bpy.ops.handmocap.capture.poll()

    # preferences: the external Python, checked in the background
    prefs.python = python
    prefs.device = "cpu"
    bpy.ops.handmocap.check_python()
    addon.wait("check", 300)
    result["check"] = prefs.check_result

    bpy.ops.wm.save_as_mainfile(filepath=str(work / "shot.blend"))
    settings = bpy.context.scene.handmocap
    settings.video = video
    settings.backend = "mediapipe"
    settings.use_range, settings.frame_first, settings.frame_last = True, 1, 60
    settings.chunk = 10
    result["draws"]["no_take"] = draw_all()
    result["build_poll_no_take"] = bpy.ops.handmocap.build.poll()

    # a capture that fails: the video is not a video
    broken = work / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 100)
    settings.video = str(broken)
    bpy.ops.handmocap.capture()
    failed = addon.wait("capture", 300)
    result["failed"] = {"state": failed.state, "error": failed.error}
    result["draws"]["failed"] = draw_all()
    settings.video = video

    # capture, cancelled after its first chunks
    bpy.ops.handmocap.capture()
    result["draws"]["capturing"] = draw_all()
    job = addon.RUNNING["capture"]
    deadline = time.monotonic() + 300
    while job.running and job.done < 20 and time.monotonic() < deadline:
        addon.tick()
        time.sleep(0.05)
    result["draws"]["progress"] = draw_all()
    bpy.ops.handmocap.cancel(kind="capture")
    cancelled = addon.wait("capture", 120)
    from handmocap.core.take import read_take

    take_path = work / f"{Path(video).stem}.take"
    partial = read_take(take_path)
    result["cancelled"] = {"state": cancelled.state, "done": cancelled.done,
                           "frames": partial.num_frames,
                           "complete": partial.manifest.complete}  # fmt: skip
    result["draws"]["cancelled"] = draw_all()
    result["takes_after_cancel"] = [(t.name, t.frames, t.complete) for t in settings.takes]

    # capture again: it resumes
    bpy.ops.handmocap.capture()
    resumed = addon.wait("capture", 600)
    take = read_take(take_path)
    result["resumed"] = {"state": resumed.state, "messages": resumed.messages,
                         "frames": take.num_frames, "complete": take.manifest.complete,
                         "frame_index": [int(take.arrays["frame_index"][0]),
                                         int(take.arrays["frame_index"][-1])]}  # fmt: skip
    item = settings.active_take()
    result["take_item"] = {"name": item.name, "frames": item.frames, "fps": item.fps,
                           "complete": item.complete, "left": item.rate_left,
                           "right": item.rate_right}  # fmt: skip
    result["draws"]["done"] = draw_all()

    # build, then bake again with other smoothing
    result["build"] = sorted(bpy.ops.handmocap.build())
    result["build_poll_again"] = bpy.ops.handmocap.build.poll()
    hands = [o for o in bpy.data.objects if o.type == "ARMATURE" and o.get("handmocap_side")]
    result["hands"] = {}
    for obj in hands:
        curves = obj.animation_data.action
        result["hands"][obj["handmocap_side"]] = {"action": curves.name,
                                                  "frames": _key_frames(obj)}  # fmt: skip
    result["camera_background"] = [
        bool(o.data.background_images) for o in bpy.data.objects if o.type == "CAMERA"
    ]
    sample = hands[0] if hands else None
    before = _bone_rotations(sample)
    settings.smoothing = "none"
    result["bake"] = sorted(bpy.ops.handmocap.bake())
    result["bake_changed"] = float(abs(_bone_rotations(sample) - before).max()) if hands else 0

    # retarget onto a Rigify rig (recognised automatically)
    import addon_utils  # Blender's, importable once bpy is

    addon_utils.enable("rigify", default_set=True)
    result["retarget_poll_no_target"] = bpy.ops.handmocap.retarget.poll()
    bpy.ops.object.armature_human_metarig_add()
    bpy.ops.pose.rigify_generate()
    rig = bpy.data.objects["rig"]
    settings.target = rig
    result["retarget"] = sorted(bpy.ops.handmocap.retarget())
    result["rig_action"] = rig.animation_data.action.name if rig.animation_data else None
    result["rig_keyed"] = _key_frames(rig)

    # export the hands, then the character
    settings.fbx_path = str(work / "hands.fbx")
    result["export_hands"] = sorted(bpy.ops.handmocap.export_fbx())
    settings.fbx_scope, settings.fbx_path = "character", str(work / "character.fbx")
    settings.fbx_preset = "unreal"
    result["export_character"] = sorted(bpy.ops.handmocap.export_fbx())

    # preview, in the background
    bpy.ops.handmocap.preview()
    result["draws"]["preview"] = draw_all()
    preview = addon.wait("preview", 600)
    result["preview"] = {"state": preview.state, "error": preview.error,
                         "file": str(preview.output)}  # fmt: skip
    bpy.ops.wm.save_mainfile()

    # disable: everything unregistered
    bpy.ops.preferences.addon_disable(module=MODULE)
    result["after_disable"] = {"enabled": MODULE in bpy.context.preferences.addons,
                               "panel": hasattr(bpy.types, "HANDMOCAP_PT_capture"),
                               "operator": hasattr(bpy.types, "HANDMOCAP_OT_capture"),
                               "settings": hasattr(bpy.types.Scene, "handmocap")}  # fmt: skip
    result["blocked_loaded"] = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED_IMPORTS)  # noqa: F821
    Path(out).write_text(json.dumps(result, default=str))


def _key_frames(obj) -> list[float]:
    """The frames keyed on ``obj``'s Action (every F-curve), sorted."""
    from handmocap.blender_addon.anim import object_fcurves

    return sorted({k.co[0] for c in object_fcurves(obj) for k in c.keyframe_points})


def _bone_rotations(obj):
    import numpy as np

    scene = bpy.context.scene
    out = []
    for frame in range(scene.frame_start, scene.frame_end + 1, 5):
        scene.frame_set(frame)
        out.append([list(b.rotation_quaternion) for b in obj.pose.bones])
    return np.array(out)


if __name__ == "__main__":
    main()
