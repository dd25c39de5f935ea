"""Software renderer speed: one model-sheet cell, one preview frame, the whole model sheet.

The renderer (core/render.py) fills every visible triangle with OpenCV, back to front, on the
CPU; no GPU is involved. A model-sheet cell is one posed hand coloured by part with its
skeleton (260 px, as ``handmocap draw-model``); a preview frame is both hands of a take drawn
over a 640x480 frame as ``handmocap preview`` draws them (shaded preview surface, outline,
keypoints; posing done beforehand, as the preview does for the whole take). Figures are
medians after warm-up.

    .venv/bin/python bench/bench_render.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from common import device_args, median_seconds, peak_rss_mib, setup_torch, write_results
from synthetic import FOCAL, FPS, HEIGHT, WIDTH, synthetic_performance

from handmocap.core.handmodel import SIDES, HandLayer
from handmocap.core.overlay import draw_overlay
from handmocap.core.picture import model_sheet, pose_hand, render_cell
from handmocap.core.poses import named_pose
from handmocap.core.preview import posed_hands
from handmocap.core.take import Take, TakeManifest, TakeWriter, read_take

TAKE_FRAMES = 30


def demo_take(layer: HandLayer, folder: Path) -> Take:
    """A short take of the demo's synthetic performance, written and read back."""
    manifest = TakeManifest(
        fps=FPS, width=WIDTH, height=HEIGHT, backend="synthetic",
        hand_model=layer.models["right"].model_id, focal_length=FOCAL,
    )  # fmt: skip
    with TakeWriter(folder / "demo.take", manifest) as writer:
        writer.append(synthetic_performance(layer, TAKE_FRAMES))
    return read_take(folder / "demo.take")


def time_row(setting: str, seconds: float) -> dict[str, Any]:
    return {
        "setting": setting,
        "seconds": seconds,
        "per_s": 1 / seconds,
        "figure": f"{seconds * 1e3:.3g} ms ({1 / seconds:.1f}/s)",
    }


def bench_cell(layer: HandLayer) -> dict[str, Any]:
    verts, kps = pose_hand(layer, "right", named_pose("fist", "right"))
    seconds = median_seconds(lambda: render_cell(layer, "right", verts, kps, "back", 260), 30)
    return time_row("model-sheet cell (one hand, 260 px)", seconds)


def bench_preview_frame(layer: HandLayer) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-render-") as tmp:
        take = demo_take(layer, Path(tmp))
    both = np.flatnonzero(take.arrays["left_present"] & take.arrays["right_present"])
    hands = posed_hands(take, layer, "none")[int(both[0])]
    faces = {s: layer.faces(s, drawing=True) for s in SIDES}
    background = np.full((HEIGHT, WIDTH, 3), 200, np.uint8)
    center = (WIDTH / 2, HEIGHT / 2)
    seconds = median_seconds(lambda: draw_overlay(background, hands, faces, FOCAL, center), 20)
    return time_row(f"preview frame (two hands over {WIDTH}x{HEIGHT})", seconds)


def bench_sheet(layer: HandLayer) -> dict[str, Any]:
    seconds = median_seconds(lambda: model_sheet(layer, cell=200), 3, 1)
    return time_row("whole model sheet (24 cells of 200 px, posing included)", seconds)


def main() -> None:
    device = device_args(__doc__.splitlines()[0], ("cpu",)).device
    setup_torch(device)
    layer = HandLayer.from_models_dir(None, "openhand")
    with torch.inference_mode():
        results = [bench_cell(layer), bench_preview_frame(layer), bench_sheet(layer)]
    rss = peak_rss_mib()
    results.append({"setting": "peak RSS (process)", "mib": rss, "figure": f"{rss:.0f} MiB"})
    write_results("render", "cpu", results)


if __name__ == "__main__":
    main()
