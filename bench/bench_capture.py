"""End-to-end capture speed: decode + inference + tracking + writing, next to inference alone.

On the bundled real clip (``core/assets/demo/asl_hand.25fps.mp4``, 620x1080, 325 frames, one
hand), for each backend that can run here (mediapipe on a machine without weights): the whole
``capture`` into a fresh take, and the backend alone on frames already decoded in memory.

    .venv/bin/python bench/bench_capture.py
"""

from __future__ import annotations

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
        backend(frames[i : i + CHUNK])
    results.append(
        row(f"inference alone, {name} (landmarks + fit, chunks of {CHUNK})", len(frames),
            time.perf_counter() - start)
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
    write_results("capture", "cpu", results)


if __name__ == "__main__":
    main()
