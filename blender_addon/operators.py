"""The panel's operators: capture (in the background), cancel, takes, build, bake, retarget,
export, preview, and the preferences' Check.

Each operator's ``poll`` says why it is unavailable (Blender shows it as the button's tooltip),
each reports what it did, and those that change the scene are undoable. Heavy work runs on
Blender's main thread only when it is quick (building, keying, exporting); capture and preview
run in the external Python (``jobs.py``)."""

from __future__ import annotations

import functools
from pathlib import Path

import bpy
from bpy.props import BoolProperty, EnumProperty, StringProperty

from handmocap.blender_addon import props
from handmocap.blender_addon.jobs import CANCELLED, DONE, Job
from handmocap.core.errors import HandmocapError
from handmocap.core.models_dir import SIDES


def _addon():
    from handmocap.blender_addon import addon

    return addon


def _fail(cls, message: str) -> bool:
    cls.poll_message_set(message)
    return False


def reporting(execute):
    """Turn handmocap's errors (bad input, unreadable takes, unmappable rigs) into one error
    report and a cancelled operator, with nothing half done left in the undo history."""

    @functools.wraps(execute)
    def wrapped(self, context):
        try:
            return execute(self, context)
        except HandmocapError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}

    return wrapped


# --- shared lookups ---------------------------------------------------------------------------


NO_PYTHON = "Set the Python that runs capture in the add-on's preferences"


def external_python() -> str:
    prefs = props.preferences()
    return bpy.path.abspath(prefs.python) if prefs is not None and prefs.python else ""


def models_dir() -> Path | None:
    prefs = props.preferences()
    if prefs is not None and prefs.models_dir:
        return Path(bpy.path.abspath(prefs.models_dir))
    from handmocap.core.models_dir import default_models_dir

    return default_models_dir()


def models_args() -> list[str]:
    folder = models_dir()
    return ["--models", str(folder)] if folder is not None else []


def readable_take(cls, context):
    """The selected take's item when it can be used, else None with the reason set."""
    item = context.scene.handmocap.active_take()
    if item is None:
        return _fail(cls, "Capture a video first, or select a take in the list") or None
    if item.error:
        return _fail(cls, f"The take cannot be read: {item.error}") or None
    if item.frames == 0:
        return _fail(cls, "The take holds no frames yet") or None
    return item


def load_take(item):
    from handmocap.core.take import read_take

    return read_take(Path(item.path))


def take_models(take) -> dict:
    """Both sides of the hand model the take was captured with."""
    from handmocap.core.handdata import load_hand_models
    from handmocap.core.models_dir import model_kind

    kind = model_kind(take.manifest.hand_model)
    return load_hand_models(models_dir(), kind)


def built_hands(take_path: str) -> tuple[bpy.types.Object | None, dict]:
    """The camera and the hands (side -> (armature, mesh)) built from the take at ``take_path``."""
    from handmocap.blender_addon.scene import SIDE_KEY, TAKE_KEY

    camera, parts = None, {}
    for obj in bpy.data.objects:
        if obj.get(TAKE_KEY) != take_path:
            continue
        if obj.type == "CAMERA":
            camera = obj
        elif obj.get(SIDE_KEY) in ("left", "right"):
            parts.setdefault(obj[SIDE_KEY], {})[obj.type] = obj
    hands = {side: (p["ARMATURE"], p["MESH"]) for side, p in parts.items()
             if "ARMATURE" in p and "MESH" in p}  # fmt: skip
    return camera, hands


def capture_source(context) -> Path:
    """The footage to capture: the scene's movie clip or the chosen video."""
    settings = context.scene.handmocap
    if settings.use_clip:
        clip = context.scene.active_clip
        if clip is None:
            raise HandmocapError("the scene has no movie clip: open one in the Movie Clip editor")
        path = Path(bpy.path.abspath(clip.filepath))
    else:
        if not settings.video:
            raise HandmocapError("choose a video to capture")
        path = Path(bpy.path.abspath(settings.video))
    if not path.exists():
        raise HandmocapError(f"{path}: no such video or image folder")
    return path


def take_for(source: Path) -> Path | None:
    folder = _addon().takes_dir()
    return folder / f"{source.stem}{_addon().TAKE_SUFFIX}" if folder is not None else None


def take_state(take: Path | None) -> str:
    """ "new", "unfinished" or "complete": what a capture into ``take`` would do."""
    if take is None or not (take / "manifest.json").is_file():
        return "new"
    from handmocap.core.take import read_manifest

    try:
        return "complete" if read_manifest(take).complete else "unfinished"
    except HandmocapError:
        return "new"


def capture_state(context) -> str:
    """:func:`take_state` of the take the panel's Capture would write."""
    try:
        return take_state(take_for(capture_source(context)))
    except HandmocapError:
        return "new"


# --- reports from the timer -------------------------------------------------------------------


class HANDMOCAP_OT_report(bpy.types.Operator):
    """Show a message from background work"""

    bl_idname = "handmocap.report"
    bl_label = "Hand Mocap Report"
    bl_options = {"INTERNAL"}

    kind: EnumProperty(items=[(k, k.title(), "") for k in ("INFO", "WARNING", "ERROR")])
    message: StringProperty()

    def execute(self, context):
        self.report({self.kind}, self.message)
        return {"FINISHED"}


# --- preferences ------------------------------------------------------------------------------


class HANDMOCAP_OT_check_python(bpy.types.Operator):
    """Run the external Python: report its handmocap, torch, CUDA devices and ready backends"""

    bl_idname = "handmocap.check_python"
    bl_label = "Check"

    @classmethod
    def poll(cls, context):
        if not external_python():
            return _fail(cls, "Name the Python that runs capture first")
        if "check" in _addon().RUNNING:
            return _fail(cls, "Checking already")
        return True

    def execute(self, context):
        job = Job(external_python(), ["check", "--json", *models_args()], "Checking Python")
        _addon().start_job("check", job, _check_ended)
        props.preferences().check_result = "checking..."
        self.report({"INFO"}, f"Checking {job.python}")
        return {"FINISHED"}


def _check_ended(job: Job) -> None:
    from handmocap.core.commands.check import summary

    prefs = props.preferences()
    facts = job.stdout_json() if job.state == DONE else None
    if facts is None:
        text = f"Check failed: {job.error or 'no answer from ' + job.python}"
        kind = "ERROR"
    else:
        text, kind = summary(facts), "INFO"
        if not any(b["ready"] for b in facts["backends"]):
            kind = "WARNING"
    if prefs is not None:
        prefs.check_result = text
    _addon().report(kind, text)


# --- capture ----------------------------------------------------------------------------------


class HANDMOCAP_OT_capture(bpy.types.Operator):
    """Capture the hands in the video into a take beside the .blend, in the background (a take left unfinished is resumed)"""  # noqa: E501

    bl_idname = "handmocap.capture"
    bl_label = "Capture"

    overwrite: BoolProperty(name="Replace", description="Capture again over a finished take")

    @classmethod
    def poll(cls, context):
        if not bpy.data.filepath:
            return _fail(cls, "Save the .blend first: takes are written beside it")
        if not external_python():
            return _fail(cls, NO_PYTHON)
        if "capture" in _addon().RUNNING:
            return _fail(cls, "A capture is running")
        return True

    def invoke(self, context, event):
        if self.overwrite:
            return context.window_manager.invoke_confirm(self, event)
        return self.execute(context)

    @reporting
    def execute(self, context):
        settings = context.scene.handmocap
        source = capture_source(context)
        take = take_for(source)
        state = take_state(take)
        if state == "complete" and not self.overwrite:
            raise HandmocapError(f"{take.name} is captured already: Capture Again replaces it")
        prefs = props.preferences()
        device = prefs.device if settings.device == "prefs" else settings.device
        args = ["capture", str(source), "-o", str(take), "--backend", settings.backend,
                "--device", device, "--batch", str(settings.chunk), "--progress", "json",
                *models_args()]  # fmt: skip
        if settings.use_range:
            if settings.frame_last < settings.frame_first:
                raise HandmocapError("the frame range's last frame is before its first")
            args += ["--start", str(settings.frame_first - 1), "--end", str(settings.frame_last)]
        if self.overwrite:
            args.append("--overwrite")
        job = Job(external_python(), args, f"Capturing {source.name}", output=take)
        _addon().start_job("capture", job, _capture_ended)
        how = "resuming " if state == "unfinished" and not self.overwrite else ""
        self.report({"INFO"}, f"Capture of {source.name} started, {how}into {take}")
        return {"FINISHED"}


def _capture_ended(job: Job) -> None:
    addon = _addon()
    for scene in bpy.data.scenes:
        addon.refresh_takes(scene)
        addon.select_take(scene, job.output)
    if job.state == DONE:
        summary = addon.summarize_take(job.output)  # the whole take, resumed parts included
        rates = summary.get("detection_rate", {})
        seen = ", ".join(f"{side} hand in {rate:.0%}" for side, rate in rates.items() if rate)
        addon.report("INFO", f"Captured {job.output.name}: {summary.get('frames')} frames, "
                             f"{seen or 'no hand seen'}")  # fmt: skip
    elif job.state == CANCELLED:
        addon.report("WARNING", f"Capture cancelled after {job.done} frames: the finished "
                                "chunks are kept, and Resume carries on from them")  # fmt: skip
    else:
        addon.report("ERROR", f"Capture failed: {job.error}")


class HANDMOCAP_OT_cancel(bpy.types.Operator):
    """Stop the background work: a capture keeps its finished chunks, and resumes from them"""

    bl_idname = "handmocap.cancel"
    bl_label = "Cancel"

    kind: EnumProperty(items=[("capture", "Capture", ""), ("preview", "Preview", "")])

    @classmethod
    def poll(cls, context):
        return bool(_addon().RUNNING) or _fail(cls, "Nothing is running")

    def execute(self, context):
        job = _addon().RUNNING.get(self.kind)
        if job is None:
            self.report({"WARNING"}, f"No {self.kind} is running")
            return {"CANCELLED"}
        job.cancel()
        self.report({"INFO"}, f"Cancelling: {job.title}")
        return {"FINISHED"}


class HANDMOCAP_OT_refresh_takes(bpy.types.Operator):
    """List the takes beside the .blend again"""

    bl_idname = "handmocap.refresh_takes"
    bl_label = "Refresh Takes"

    @classmethod
    def poll(cls, context):
        return bool(bpy.data.filepath) or _fail(cls, "Save the .blend: takes are listed beside it")

    def execute(self, context):
        count = _addon().refresh_takes(context.scene)
        self.report({"INFO"}, f"{count} take(s) beside {bpy.path.basename(bpy.data.filepath)}")
        return {"FINISHED"}


# --- build, bake, retarget, export, preview ---------------------------------------------------


class HANDMOCAP_OT_build(bpy.types.Operator):
    """Build the take's camera (with its footage as background) and hand rigs, keyed with the smoothing below"""  # noqa: E501

    bl_idname = "handmocap.build"
    bl_label = "Build"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        item = readable_take(cls, context)
        if not item:
            return False
        if built_hands(item.path)[0] is not None:
            return _fail(cls, "Built already: Bake keys it again")
        return True

    @reporting
    def execute(self, context):
        from handmocap.blender_addon.scene import bake_take

        settings = context.scene.handmocap
        take = load_take(settings.active_take())
        collection = bpy.data.collections.new(take.path.stem)
        context.scene.collection.children.link(collection)
        baked = bake_take(take, take_models(take), settings.smoothing, collection,
                          **settings.smoothing_settings())  # fmt: skip
        first, last = baked.frames
        hands = " and ".join(sorted(baked.hands)) or "no"
        text = f"Built {take.path.stem}: camera and {hands} hand(s), frames {first}-{last}"
        if baked.missing:
            text += f"; never seen: {', '.join(baked.missing)} hand"
        self.report({"INFO"}, text)
        return {"FINISHED"}


class HANDMOCAP_OT_bake(bpy.types.Operator):
    """Key the built hands again from the take with the smoothing below (no new capture)"""

    bl_idname = "handmocap.bake"
    bl_label = "Bake"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        item = readable_take(cls, context)
        if not item:
            return False
        return bool(built_hands(item.path)[1]) or _fail(cls, "Build the take first")

    @reporting
    def execute(self, context):
        from handmocap.blender_addon.scene import key_hand

        settings = context.scene.handmocap
        take = load_take(settings.active_take())
        built = built_hands(str(take.path))[1]
        keyed = []
        for side, keys in take_keys(take, settings, built).items():
            armature, mesh = built[side]
            key_hand(armature, mesh, f"{take.path.stem}.{side}", keys)
            keyed.append(f"{side} hand {int(keys.valid.sum())} frames")
        self.report({"INFO"}, f"Baked {take.path.stem} ({settings.smoothing} smoothing): "
                              f"{', '.join(keyed) or 'nothing to key'}")  # fmt: skip
        return {"FINISHED"}


def take_keys(take, settings, built: dict, sides=None) -> dict:
    """side -> ``scene.HandKeys`` of the take with the scene's smoothing, for ``sides``
    (default: the built ones); a built hand keeps the shape it was built with."""
    from handmocap.blender_addon.scene import BETAS_KEY, hand_keys

    models = take_models(take)
    out = {}
    for side in built if sides is None else sides:
        betas = list(built[side][0][BETAS_KEY]) if side in built else None
        keys = hand_keys(take, side, models[side], settings.smoothing, betas=betas,
                         **settings.smoothing_settings())  # fmt: skip
        if keys is not None:
            out[side] = keys
    return out


class HANDMOCAP_OT_retarget(bpy.types.Operator):
    """Key the target armature's fingers with the take's finger motion"""

    bl_idname = "handmocap.retarget"
    bl_label = "Retarget"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        if not readable_take(cls, context):
            return False
        settings = context.scene.handmocap
        if settings.target is None:
            return _fail(cls, "Pick the character's armature as Target")
        if settings.bone_map == "file" and not settings.map_file:
            return _fail(cls, "Choose the JSON map file")
        return True

    @reporting
    def execute(self, context):
        from handmocap.blender_addon.retarget import retarget

        settings = context.scene.handmocap
        take = load_take(settings.active_take())
        target = settings.target
        bone_map = (bpy.path.abspath(settings.map_file) if settings.bone_map == "file"
                    else settings.bone_map)  # fmt: skip
        built = built_hands(str(take.path))[1]
        motions = {side: keys.motion for side, keys in
                   take_keys(take, settings, built, SIDES).items()}  # fmt: skip
        done = retarget(target, motions, bone_map, f"{take.path.stem}.{target.name}")
        keyed = "; ".join(f"{side} hand {len(b)} bones" for side, b in done.bones.items())
        self.report({"INFO"}, f"Retargeted {take.path.stem} onto {target.name} "
                              f"({done.bone_map} map): {keyed or 'nothing keyed'}")  # fmt: skip
        return {"FINISHED"}


def fbx_path(context, item) -> Path:
    settings = context.scene.handmocap
    if settings.fbx_path:
        return Path(bpy.path.abspath(settings.fbx_path))
    return Path(item.path).with_suffix(".fbx")


class HANDMOCAP_OT_export_fbx(bpy.types.Operator):
    """Write the hands (or the character) with the take's animation to an FBX file"""

    bl_idname = "handmocap.export_fbx"
    bl_label = "Export FBX"

    @classmethod
    def poll(cls, context):
        item = readable_take(cls, context)
        if not item:
            return False
        settings = context.scene.handmocap
        if settings.fbx_scope == "character":
            return settings.target is not None or _fail(cls, "Pick the character as Target")
        return bool(built_hands(item.path)[1]) or _fail(cls, "Build the take first")

    @reporting
    def execute(self, context):
        from handmocap.blender_addon.export import character_objects, export_fbx

        settings = context.scene.handmocap
        item = settings.active_take()
        path = fbx_path(context, item)
        if path.suffix.lower() != ".fbx":
            raise HandmocapError(f"{path}: the FBX path must end in .fbx")
        if settings.fbx_scope == "character":
            objects = character_objects(settings.target)
        else:
            objects = [o for pair in built_hands(item.path)[1].values() for o in pair]
        export_fbx(path, objects, settings.fbx_preset)
        self.report({"INFO"}, f"Wrote {path} ({len(objects)} objects, "
                              f"{settings.fbx_preset} preset)")  # fmt: skip
        return {"FINISHED"}


def preview_path(item) -> Path:
    take = Path(item.path)
    return take.with_name(f"{take.stem}_preview.mp4")


class HANDMOCAP_OT_preview(bpy.types.Operator):
    """Draw the take's hands over its footage into a video beside the take, in the background, then open it"""  # noqa: E501

    bl_idname = "handmocap.preview"
    bl_label = "Preview"

    @classmethod
    def poll(cls, context):
        if not readable_take(cls, context):
            return False
        if not external_python():
            return _fail(cls, NO_PYTHON)
        if "preview" in _addon().RUNNING:
            return _fail(cls, "A preview is being drawn")
        return True

    def execute(self, context):
        settings = context.scene.handmocap
        item = settings.active_take()
        out = preview_path(item)
        args = ["preview", item.path, "-o", str(out), "--smoothing", settings.smoothing,
                *models_args()]  # fmt: skip
        job = Job(external_python(), args, f"Drawing the preview of {item.name}", output=out)
        _addon().start_job("preview", job, _preview_ended)
        self.report({"INFO"}, f"Drawing {out.name} in the background")
        return {"FINISHED"}


def _preview_ended(job: Job) -> None:
    addon = _addon()
    if job.state == DONE:
        addon.report("INFO", f"Preview written: {job.output}")
        if not bpy.app.background:
            bpy.ops.wm.path_open(filepath=str(job.output))
    elif job.state == CANCELLED:
        addon.report("WARNING", "Preview cancelled")
    else:
        addon.report("ERROR", f"Preview failed: {job.error}")


CLASSES = (
    HANDMOCAP_OT_report,
    HANDMOCAP_OT_check_python,
    HANDMOCAP_OT_capture,
    HANDMOCAP_OT_cancel,
    HANDMOCAP_OT_refresh_takes,
    HANDMOCAP_OT_build,
    HANDMOCAP_OT_bake,
    HANDMOCAP_OT_retarget,
    HANDMOCAP_OT_export_fbx,
    HANDMOCAP_OT_preview,
)
