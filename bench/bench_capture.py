"""End-to-end capture speed: decode + inference + tracking + writing, next to inference alone,
and the whole demo against the length of its clip.

On the bundled real clip (``core/assets/demo/asl_hand.25fps.mp4``, 620x1080, 325 frames, 13 s,
one hand), for each backend that can run here (mediapipe on a machine without weights): the
whole ``capture`` into a fresh take; the backend alone on frames already decoded in memory, a
chunk at a time as capture runs it (landmarks, then the fit); decoding alone; and
``handmocap demo`` run as a user runs it (a fresh process: start-up, capture, preview video
and contact sheet), which the README promises takes less time than the clip lasts.

    .venv/bin/python bench/bench_capture.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import device_args, peak_rss_mib, setup_torch, write_results

from handmocap.core.backends.mediapipe import MediaPipeBackend
from handmocap.core.capture import CaptureSettings, capture, choose_backend
from handmocap.core.demo import DEMO_CLIP
from handmocap.core.handmodel import HandLayer
from handmocap.core.video import open_source

CHUNK = 64


def row(setting: str, frames: int, seconds: float) -> dict:
    fps = frames / seconds
    return {
        "setting": setting,
        "seconds": seconds,
        "frames_per_s": fps,
        "figure": f"{fps:,.1f} frames/s ({seconds:.1f} s for {frames} frames)",
    }


def main() -> None:
    device = device_args(__doc__.splitlines()[0], ("cpu",)).device
    setup_torch(device)
    name, _ = choose_backend("auto", None)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-capture-") as tmp:
        start = time.perf_counter()
        report = capture(DEMO_CLIP, Path(tmp) / "clip.take", CaptureSettings(chunk=CHUNK))
        results.append(
            row(f"capture end to end, {name} (decode + inference + tracking + writing)",
                report.frames, time.perf_counter() - start)
        )  # fmt: skip
    source = open_source(DEMO_CLIP)
    with source.frames() as stream:
        frames = [f.image for f in stream]
    backend = MediaPipeBackend(HandLayer.from_models_dir(None, "openhand"), video=True)
    start = time.perf_counter()
    for i in range(0, len(frames), CHUNK):
        chunk = frames[i : i + CHUNK]
        found = backend.landmark_chunk([backend.prepare(f) for f in chunk])
        backend.fit_hands([{h.side: h for h in hands} for hands in found], chunk[0].shape)
    results.append(
        row(f"inference alone, {name} (landmarks + fit, chunks of {CHUNK}, one thread)",
            len(frames), time.perf_counter() - start)
    )  # fmt: skip
    start = time.perf_counter()
    with source.frames() as stream:
        count = sum(1 for _ in stream)
    results.append(row("decoding alone (PyAV, background thread, RGB)", count,
                       time.perf_counter() - start))  # fmt: skip
    results.append(
        {"setting": "peak RSS (process)", "figure": f"{peak_rss_mib():,.0f} MiB",
         "mib": peak_rss_mib()}
    )  # fmt: skip
    results.append(demo_row(count / source.fps))
    write_results("capture", "cpu", results)


def demo_row(clip_seconds: float) -> dict:
    """``handmocap demo`` in a fresh process, as ``make demo`` runs it, against the clip."""
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
        command = [sys.executable, "-m", "handmocap.core.cli", "demo", "--out", tmp,
                   "--progress", "none"]  # fmt: skip
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        seconds = time.perf_counter() - start
    return {
        "setting": "handmocap demo, fresh process (start-up, capture, preview video and sheet)",
        "seconds": seconds,
        "clip_seconds": clip_seconds,
        "figure": f"{seconds:.1f} s for a {clip_seconds:.1f} s clip "
        f"({seconds / clip_seconds:.2f} x its length)",
    }


if __name__ == "__main__":
    main()
