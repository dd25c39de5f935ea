"""Capture: footage in, a take out (DESIGN.md data flow steps 1 to 4).

Frames stream from the decoder (a background thread, bounded memory) in chunks; each chunk goes
through the backend, the tracker, and into the take, which makes it visible atomically. A
capture stopped at any moment keeps every finished chunk; the same command again resumes after
the last one and ends with the same take as an uninterrupted run, because every chunk is
processed from its own frames and from the tracker's state at the end of the chunk before,
which is rebuilt from the take when resuming (MediaPipe's own tracking restarts each chunk).
"""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from handmocap.core.errors import HandmocapError
from handmocap.core.observation import SIDES, HandObservation
from handmocap.core.take import HandStatus, blank_frames

BACKENDS = ("auto", "acr", "dir", "mediapipe")


@dataclass(frozen=True)
class CaptureSettings:
    """What a capture does; every field that changes the result is recorded in the take."""

    backend: str = "auto"
    device: str = "auto"
    chunk: int = 64  # frames per chunk: the unit of work, of writing and of resuming
    start: int = 0
    end: int | None = None
    focal: float | None = None  # pixels of the frame; None: the backend's documented default
    precision: str = "fp32"
    threshold: float = 0.35  # acr's hand confidence

    def recorded(self) -> dict:
        """The settings that a resumed capture must share with the first run."""
        keep = ("chunk", "focal", "precision", "threshold")
        return {k: v for k, v in asdict(self).items() if k in keep}


def choose_backend(requested: str, models_dir: Path | None) -> tuple[str, str]:
    """(backend name, why): ``auto`` takes the best backend whose files are present."""
    if requested not in BACKENDS:
        raise HandmocapError(f"unknown backend {requested!r}: use one of {', '.join(BACKENDS)}")
    if requested == "dir":
        raise HandmocapError("the dir backend is not built yet in this version of handmocap")
    if requested != "auto":
        return requested, "as requested"
    from handmocap.core.backends.acr import missing_files

    acr_missing = missing_files(models_dir)
    if not acr_missing:
        return "acr", f"ACR's official weights and the MANO files are in {models_dir}"
    if importlib.util.find_spec("mediapipe") is not None:
        where = f"in {models_dir}" if models_dir else "(no models folder given)"
        return "mediapipe", (
            f"no ACR weights and MANO files {where}; MediaPipe needs no licensed files"
        )
    raise HandmocapError(
        "no backend can run: " + "; ".join(acr_missing) + "; and mediapipe is not installed"
    )


def build_backend(name: str, models_dir: Path | None, settings: CaptureSettings, device: str):
    """The backend object for a capture (video mode: frames are consecutive)."""
    if name == "acr":
        from handmocap.core.backends.acr import ACRBackend

        return ACRBackend.from_models_dir(
            models_dir,
            device=device,
            threshold=settings.threshold,
            focal=settings.focal,
            precision=settings.precision,
        )
    if name == "mediapipe":
        from handmocap.core.backends.mediapipe import MediaPipeBackend

        return MediaPipeBackend.from_models_dir(
            models_dir, video=True, focal=settings.focal, device=device
        )
    raise HandmocapError(f"the {name} backend is not built yet in this version of handmocap")


def take_frames(
    indices: list[int],
    timestamps: list[float],
    hands: list[dict[str, tuple[HandObservation | None, int]]],
) -> dict[str, np.ndarray]:
    """Tracked frames -> the take's arrays for these frames.

    ``hands[t][side]`` is (observation or None, status). A detection that tracking flagged
    (low score, rejected) keeps its numbers in the record but is not ``present``.
    """
    frames = blank_frames(np.asarray(indices), np.asarray(timestamps))
    for t, frame in enumerate(hands):
        for side in SIDES:
            obs, status = frame.get(side, (None, HandStatus.NOT_DETECTED))
            frames[f"{side}_status"][t] = status
            if obs is None:
                continue
            frames[f"{side}_present"][t] = status == HandStatus.OK
            frames[f"{side}_score"][t] = obs.score
            frames[f"{side}_global_orient"][t] = obs.global_orient
            frames[f"{side}_hand_pose"][t] = obs.hand_pose
            frames[f"{side}_betas"][t] = obs.betas
            frames[f"{side}_transl"][t] = obs.transl
            frames[f"{side}_joints3d"][t] = obs.joints3d
            frames[f"{side}_joints2d"][t] = obs.joints2d
    return frames
