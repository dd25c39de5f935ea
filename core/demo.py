"""The demo: handmocap's main job end to end on a real clip shipped with it.

``asl_hand.25fps.mp4`` (13 s, one hand signing letters; Apache-2.0, see ``assets/demo``) is
captured with the best backend available (MediaPipe on a fresh machine), written as a take,
smoothed, and drawn over the footage as a preview video and a contact sheet; then baked into a
.blend (the camera with the clip behind it, the hands animated) and an FBX for game engines.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass
from pathlib import Path

from handmocap.core.models_dir import default_models_dir
from handmocap.core.take import read_take

DEMO_CLIP = Path(__file__).resolve().parent / "assets" / "demo" / "asl_hand.25fps.mp4"


@dataclass
class DemoResult:
    take_path: Path
    sheet_path: Path
    video_path: Path | None
    backend: str
    reason: str  # why this backend
    frames: int
    capture_seconds: float
    preview_seconds: float
    clip_seconds: float  # how long the captured part of the clip lasts
    blend_path: Path | None = None  # None without the bpy module
    fbx_path: Path | None = None
    bake_seconds: float = 0.0


def run_demo(
    out_dir: Path, frames: int | None = None, video: bool = True, progress=None, bake=True
) -> DemoResult:
    """Capture the bundled clip (its first ``frames`` frames, or all) into ``out_dir``, then
    write the smoothed preview video (unless ``video`` is False) and the contact sheet, and
    (with ``bake`` and the bpy module) the .blend and the FBX."""
    from handmocap.core.capture import CaptureSettings, capture
    from handmocap.core.render import save_png

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    take_path = out_dir / "asl.take"
    settings = CaptureSettings(backend="auto", end=frames)
    models = default_models_dir()
    report = capture(DEMO_CLIP, take_path, settings, models, progress, overwrite=True)
    started = time.perf_counter()
    from handmocap.core.handmodel import HandLayer  # loaded by now: capture overlaps it
    from handmocap.core.models_dir import model_kind
    from handmocap.core.preview import write_preview

    take = read_take(take_path)
    kind = model_kind(take.manifest.hand_model)
    layer = HandLayer.from_models_dir(models, kind)
    clip = out_dir / "asl_preview.mp4" if video else None
    preview = write_preview(take, layer, clip, sheet=True, smoothing="offline")
    sheet = out_dir / "asl_sheet.png"
    save_png(sheet, preview.sheet)
    preview_seconds = time.perf_counter() - started
    blend = fbx = None
    started = time.perf_counter()
    if bake and importlib.util.find_spec("bpy") is not None:
        from handmocap.blender_addon.headless import bake_files
        from handmocap.core.handmodel import load_hand_models

        blend, fbx = out_dir / "asl.blend", out_dir / "asl.fbx"
        bake_files(take, load_hand_models(models, kind), blend, fbx)
    return DemoResult(
        take_path=take_path,
        sheet_path=sheet,
        video_path=clip,
        backend=report.backend,
        reason=report.reason,
        frames=report.frames,
        capture_seconds=report.seconds,
        preview_seconds=preview_seconds,
        clip_seconds=report.frames / take.manifest.fps,
        blend_path=blend,
        fbx_path=fbx,
        bake_seconds=time.perf_counter() - started if blend else 0.0,
    )
