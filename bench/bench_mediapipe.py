"""MediaPipe backend speed on CPU: landmarks per second, and fitting frames per second.

On the real ASL clip of ``../shared/realdata`` (620x1080, 325 frames, one hand): MediaPipe's
landmarks in video mode (tracking) and in image mode (detection every frame), then fitting the
open hand model to the whole clip's landmarks in one batch (default ``FitSettings``), and the
single-image case (``handmocap detect``: landmarks plus a fit of one frame).

    .venv/bin/python bench/bench_mediapipe.py
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
from common import device_args, peak_rss_mib, setup_torch, write_results

from handmocap.core.backends.mediapipe import (
    MediaPipeBackend,
    MediaPipeLandmarker,
    track_from_landmarks,
)
from handmocap.core.handmodel import HandLayer

CLIP = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "tfjs_models_hand_pose"
VIDEO = CLIP / "asl_hand.25fps.mp4"


def read_frames(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            return frames
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def row(setting: str, frames: int, seconds: float, extra: str = "") -> dict:
    fps = frames / seconds
    return {
        "setting": setting,
        "seconds": seconds,
        "frames_per_s": fps,
        "figure": f"{fps:,.1f} frames/s ({seconds / frames * 1e3:.1f} ms/frame){extra}",
    }


def main() -> None:
    device = device_args(__doc__.splitlines()[0], ("cpu",)).device
    setup_torch(device)
    frames = read_frames(VIDEO)
    n = len(frames)
    results = []
    for video in (True, False):
        with MediaPipeLandmarker(video=video) as landmarker:
            landmarker(frames[0])  # warm-up: graph start
            found, seconds = timed(lambda lm=landmarker: [lm(f) for f in frames])
        mode = "video mode, tracking" if video else "image mode, detection every frame"
        results.append(row(f"landmarks, {mode} ({n} frames 620x1080)", n, seconds))
    backend = MediaPipeBackend(HandLayer.from_models_dir(None, "openhand"), video=True)
    focal, center = backend.camera(frames[0].shape)
    track = track_from_landmarks(found, "right", focal, center)
    fitter = backend.fitters["right"]
    fitted, seconds = timed(lambda: fitter.fit(track))
    proj = fitted.keypoints[..., :2] / fitted.keypoints[..., 2:] * focal + center
    err = np.linalg.norm(proj - track.pixels, axis=-1).mean()
    results.append(
        row(f"fitting, one hand, {n} frames in one batch", n, seconds, f", {err:.1f} px mean")
    )
    still = MediaPipeBackend(HandLayer.from_models_dir(None, "openhand"), video=False)
    still([frames[0]])  # warm-up
    _, seconds = timed(lambda: still([frames[100]]))
    results.append(row("single image: landmarks + fit (handmocap detect)", 1, seconds))
    results.append(
        {
            "setting": "peak RSS (process)",
            "figure": f"{peak_rss_mib():,.0f} MiB",
            "mib": peak_rss_mib(),
        }
    )
    write_results("mediapipe", "cpu", results)


if __name__ == "__main__":
    main()
