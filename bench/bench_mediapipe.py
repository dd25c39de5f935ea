"""MediaPipe backend speed on CPU: landmarks per second, and fitting frames per second.

On the real ASL clip of ``../shared/realdata`` (620x1080, 325 frames, one hand): MediaPipe's
landmarks in video mode (tracking) and in image mode (detection every frame), then fitting the
open hand model to the clip's landmarks chunk by chunk as capture does (default
``FitSettings``), with its distance from the landmarks, and the single-image case
(``handmocap detect``: landmarks plus a fit of one frame).

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
from handmocap.core.fitting import FitSettings
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


CHUNK = 64


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
    found = []
    start = time.perf_counter()
    for i in range(0, n, CHUNK):
        found += backend.landmark_chunk([backend.prepare(f) for f in frames[i : i + CHUNK]])
    results.append(
        row(f"landmarks as capture takes them (chunks of {CHUNK}, one hand followed alone, "
            f"second hand searched every {backend.hands.search_every} frames)", n,
            time.perf_counter() - start)
    )  # fmt: skip
    focal, center = backend.camera(frames[0].shape)
    fitter = backend.fitters["right"]
    seconds, errors, mm = 0.0, [], []
    for i in range(0, n, CHUNK):
        track = track_from_landmarks(found[i : i + CHUNK], "right", focal, center)
        fitted, took = timed(lambda t=track: fitter.fit(t))
        seconds += took
        proj = fitted.keypoints[..., :2] / fitted.keypoints[..., 2:] * focal + center
        errors.append(np.linalg.norm(proj - track.pixels, axis=-1)[track.valid].ravel())
        kp, world = fitted.keypoints[track.valid], track.world[track.valid]
        centred = (kp - kp.mean(1, keepdims=True)) - (world - world.mean(1, keepdims=True))
        mm.append(np.linalg.norm(centred, axis=-1).ravel() * 1000)
    err, err_mm = np.concatenate(errors).mean(), np.concatenate(mm).mean()
    results.append(
        row(f"fitting, one hand, chunks of {CHUNK} (Levenberg-Marquardt, "
            f"{FitSettings().iterations} steps at most)", n, seconds,
            f", {err:.1f} px and {err_mm:.1f} mm from the landmarks")
    )  # fmt: skip
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
