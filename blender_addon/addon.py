"""The Hand Mocap add-on: registration, the takes beside the .blend, and the background jobs.

Background work (capture, preview, the preferences' Check) runs as a :class:`~.jobs.Job` in the
external Python. One timer, on Blender's main thread, polls the jobs, redraws the panel and,
when a job ends, lists the takes again and reports the outcome. Scripts and tests that run
Blender without its event loop (``bpy`` as a module, ``--background``) drive the same path by
calling :func:`tick` themselves, or :func:`wait`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import bpy

from handmocap.blender_addon import jobs, operators, panel, props
from handmocap.blender_addon.jobs import Job

TICK_S = 0.25
TAKE_SUFFIX = ".take"

# kind ("capture", "preview", "check") -> the job running now, and the last one that ended
RUNNING: dict[str, Job] = {}
ENDED: dict[str, Job] = {}
_ON_END: dict[str, Callable[[Job], None]] = {}
_SUMMARIES: dict[str, tuple[tuple, dict]] = {}  # take path -> (its files' stamp, summary)


# --- background jobs ------------------------------------------------------------------------


def start_job(kind: str, job: Job, on_end: Callable[[Job], None] | None = None) -> Job:
    """Start ``job`` as the running job of its kind and make sure the timer polls it."""
    if kind in RUNNING and RUNNING[kind].running:
        raise RuntimeError(f"a {kind} is already running")
    ENDED.pop(kind, None)
    job.start()
    RUNNING[kind] = job
    if on_end is not None:
        _ON_END[kind] = on_end
    if not bpy.app.timers.is_registered(tick):
        bpy.app.timers.register(tick, first_interval=TICK_S, persistent=True)
    if not job.running:  # it could not even start: end it now, reported as a failure
        tick()
    return job


def tick() -> float | None:
    """The timer: poll every job; -> seconds to the next call, None when nothing runs."""
    for kind, job in list(RUNNING.items()):
        if job.poll():
            continue
        del RUNNING[kind]
        ENDED[kind] = job
        on_end = _ON_END.pop(kind, None)
        if on_end is not None:
            on_end(job)
    _redraw()
    return TICK_S if RUNNING else None


def wait(kind: str, timeout: float = 600.0) -> Job | None:
    """Tick until the ``kind`` job ends (for scripts without Blender's event loop)."""
    end = time.monotonic() + timeout
    while kind in RUNNING:
        if time.monotonic() > end:
            return None
        tick()
        time.sleep(0.05)
    return ENDED.get(kind)


def report(kind: str, message: str) -> None:
    """Show a report from the timer (which has no operator of its own to report through)."""
    try:
        bpy.ops.handmocap.report(kind=kind, message=message)
    except RuntimeError:  # an error report, called from a script, raises once it is shown
        pass


def _redraw() -> None:
    window_manager = getattr(bpy.context, "window_manager", None)
    for window in getattr(window_manager, "windows", ()):
        for area in window.screen.areas:
            if area.type in {"VIEW_3D", "PREFERENCES"}:
                area.tag_redraw()


# --- takes beside the .blend ----------------------------------------------------------------


def takes_dir() -> Path | None:
    """Where takes are written and listed: the saved .blend's folder (None if unsaved)."""
    return Path(bpy.path.abspath("//")) if bpy.data.filepath else None


def _stamp(path: Path) -> tuple:
    """What changes when a take changes: its manifest's time and its chunk files."""
    manifest = path / "manifest.json"
    chunks = sorted(p.name for p in (path / "chunks").glob("*.npz")) if path.is_dir() else []
    return (manifest.stat().st_mtime_ns if manifest.is_file() else None, tuple(chunks))


def summarize_take(path: Path) -> dict:
    """The take's summary (``core.take.summarize``), read again only when its files changed;
    ``{"error": why}`` when it cannot be read."""
    from handmocap.core.errors import HandmocapError
    from handmocap.core.take import read_take, summarize

    stamp = _stamp(path)
    cached = _SUMMARIES.get(str(path))
    if cached is not None and cached[0] == stamp:
        return cached[1]
    try:
        summary = summarize(read_take(path))
    except (HandmocapError, OSError, ValueError) as exc:
        summary = {"error": str(exc)}
    _SUMMARIES[str(path)] = (stamp, summary)
    return summary


def refresh_takes(scene: bpy.types.Scene) -> int:
    """List the takes beside the .blend in ``scene``'s settings, keeping the selection."""
    settings = scene.handmocap
    active = settings.active_take()
    keep = active.path if active is not None else None
    settings.takes.clear()
    folder = takes_dir()
    found = sorted(folder.glob(f"*{TAKE_SUFFIX}")) if folder is not None else []
    for path in (p for p in found if p.is_dir()):
        summary = summarize_take(path)
        item = settings.takes.add()
        item.name, item.path = path.stem, str(path)
        if "error" in summary:
            item.error = summary["error"]
            continue
        item.frames = summary["frames"]
        item.expected = summary["frame_count"] or 0
        item.fps = summary["fps"]
        item.complete = summary["complete"]
        item.backend = summary["backend"]
        rates = summary["detection_rate"]
        item.rate_left, item.rate_right = rates["left"] or 0.0, rates["right"] or 0.0
    paths = [t.path for t in settings.takes]
    settings.take_index = paths.index(keep) if keep in paths else min(settings.take_index,
                                                                      len(paths) - 1)  # fmt: skip
    return len(paths)


def select_take(scene: bpy.types.Scene, path: Path) -> None:
    settings = scene.handmocap
    for i, item in enumerate(settings.takes):
        if Path(item.path) == Path(path):
            settings.take_index = i


@bpy.app.handlers.persistent
def _on_load(_unused) -> None:
    for scene in bpy.data.scenes:
        refresh_takes(scene)


# --- registration ---------------------------------------------------------------------------

CLASSES = (*props.CLASSES, *operators.CLASSES, *panel.CLASSES)


def register(package: str = "handmocap") -> None:
    """Register everything; ``package`` is the extension's module name (the preferences' id)."""
    props.PACKAGE["name"] = package
    props.HandmocapPreferences.bl_idname = package
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.handmocap = bpy.props.PointerProperty(type=props.HandmocapSettings)
    bpy.app.handlers.load_post.append(_on_load)


def unregister() -> None:
    for job in RUNNING.values():
        job.cancel()
    if bpy.app.timers.is_registered(tick):
        bpy.app.timers.unregister(tick)
    if _on_load in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.remove(_on_load)
    del bpy.types.Scene.handmocap
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)


__all__ = ["jobs", "register", "unregister", "tick", "wait", "refresh_takes"]
