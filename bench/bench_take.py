"""Take speed and size: TakeWriter write and read_take read throughput, bytes per frame on disk.

3000 frames (100 s at 30 fps) in chunks of 64, appended 16 frames at a time as a capture would.
Two kinds of content: the demo's synthetic two-hand performance (smooth motion, the left hand
missing now and then), and random values in every float field (what compresses worst). Writes
go to a temporary folder and include the fsyncs that make each chunk atomic, so the disk
matters. Figures are medians of a few runs.

    .venv/bin/python bench/bench_take.py
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from common import device_args, median_seconds, setup_torch, write_results
from synthetic import synthetic_performance

from handmocap.core.handmodel import HandLayer
from handmocap.core.take import HandStatus, TakeManifest, TakeWriter, blank_frames, read_take

FRAMES, CHUNK, BATCH, RUNS = 3000, 64, 16, 5
MANIFEST = TakeManifest(
    fps=30.0,
    width=1920,
    height=1080,
    backend="bench",
    hand_model="openhand-bench",
    focal_length=1500.0,
    frame_count=FRAMES,
)


def random_frames(count: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Both hands present in every frame, every float field filled with random numbers."""
    rng = np.random.default_rng(seed)
    frames = blank_frames(np.arange(count), np.arange(count) / MANIFEST.fps)
    for name, value in frames.items():
        if name.endswith("_present"):
            value[:] = True
        elif name.endswith("_status"):
            value[:] = HandStatus.OK
        elif name != "timestamp" and value.dtype.kind == "f":
            value[:] = rng.standard_normal(value.shape)
    return frames


def batches(frames: dict[str, np.ndarray]) -> Iterator[dict[str, np.ndarray]]:
    for start in range(0, FRAMES, BATCH):
        yield {k: v[start : start + BATCH] for k, v in frames.items()}


def write(path: Path, frames: dict[str, np.ndarray]) -> None:
    shutil.rmtree(path, ignore_errors=True)
    with TakeWriter(path, MANIFEST, chunk_size=CHUNK) as writer:
        for batch in batches(frames):
            writer.append(batch)


def disk_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def bench_content(label: str, frames: dict[str, np.ndarray], folder: Path) -> list[dict]:
    path = folder / f"{label.split()[0]}.take"
    write_s = median_seconds(lambda: write(path, frames), RUNS, 1)
    read_s = median_seconds(lambda: read_take(path), RUNS, 1)
    assert read_take(path).num_frames == FRAMES
    per_frame = disk_bytes(path) / FRAMES
    return [
        rate_row(f"write, {label}", write_s),
        rate_row(f"read_take, {label}", read_s),
        {
            "setting": f"size on disk, {label}",
            "bytes_per_frame": per_frame,
            "figure": f"{per_frame:,.0f} bytes/frame ({per_frame * 30 * 3600 / 2**20:.0f} MiB/h)",
        },
    ]


def rate_row(setting: str, seconds: float) -> dict[str, Any]:
    fps = FRAMES / seconds
    return {
        "setting": f"{setting} ({FRAMES} frames, chunk {CHUNK})",
        "seconds": seconds,
        "frames_per_s": fps,
        "figure": f"{fps:,.0f} frames/s ({seconds * 1e3:.0f} ms)",
    }


def main() -> None:
    device = device_args(__doc__.splitlines()[0], ("cpu",)).device
    setup_torch(device)
    with torch.inference_mode():
        synthetic = synthetic_performance(HandLayer.from_models_dir(None, "openhand"), FRAMES)
    contents = {"synthetic performance": synthetic, "random values": random_frames(FRAMES)}
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-take-") as tmp:
        for label, frames in contents.items():
            results += bench_content(label, frames, Path(tmp))
    write_results("take", "cpu", results)


if __name__ == "__main__":
    main()
