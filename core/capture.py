"""Capture: footage in, a take out (DESIGN.md data flow steps 1 to 4).

Frames stream from the decoder (a background thread, bounded memory) in chunks; each chunk goes
through the backend, the tracker, and into the take, which makes it visible atomically. A
capture stopped at any moment keeps every finished chunk; the same command again resumes after
the last one and ends with the same take as an uninterrupted run, because every chunk is
processed from its own frames and from the tracker's state at the end of the chunk before,
which is rebuilt from the take when resuming (MediaPipe's own tracking restarts each chunk).
"""

from __future__ import annotations

import contextlib
import importlib.util
from dataclasses import asdict, dataclass, replace
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
    detector: str = "mediapipe"  # dir: what finds the two hands its crop must hold
    weights: str = "auto"  # acr: "official", "open" (handmocap's own) or "auto" (official if there)
    workers: int = 2  # mediapipe: chunks landmarked side by side (threads)

    def recorded(self) -> dict:
        """The settings that a resumed capture must share with the first run."""
        keep = ("chunk", "focal", "precision", "threshold")
        keep += ("detector",) if self.backend == "dir" else ()
        return {k: v for k, v in asdict(self).items() if k in keep}


def choose_backend(
    requested: str, models_dir: Path | None, weights: str = "auto"
) -> tuple[str, str]:
    """(backend name, why): ``auto`` takes ACR with its official weights when their files are
    present, else MediaPipe when installed, else ACR with handmocap's own weights."""
    from handmocap.core.models_dir import acr_missing_files, acr_weights, describe_acr_weights

    if requested not in BACKENDS:
        raise HandmocapError(f"unknown backend {requested!r}: use one of {', '.join(BACKENDS)}")
    if requested == "acr":
        return "acr", f"as requested, with {describe_acr_weights(acr_weights(models_dir, weights))}"
    if requested != "auto":
        return requested, "as requested"
    if weights == "auto" and not acr_missing_files(models_dir):
        return "acr", f"ACR's official weights and the MANO files are in {models_dir}"
    if weights != "auto":  # naming the weights names the backend
        return "acr", f"{weights} acr weights requested: " + describe_acr_weights(
            acr_weights(models_dir, weights)
        )
    where = f"in {models_dir}" if models_dir else "(no models folder given)"
    if importlib.util.find_spec("mediapipe") is not None:
        return "mediapipe", (
            f"no ACR weights and MANO files {where}; MediaPipe needs no licensed files"
        )
    acr_weights(models_dir, "open")  # refuses an installation without them
    return "acr", (
        f"no ACR weights and MANO files {where} and mediapipe is not installed: "
        f"{describe_acr_weights('open')}"
    )


def build_backend(
    name: str, models_dir: Path | None, settings: CaptureSettings, device: str, video: bool = True
):
    """The backend object for a capture (``video``: frames are consecutive, so MediaPipe
    tracks hands from one to the next; still images are detected each on its own)."""
    if name == "acr":
        from handmocap.core.backends.acr import ACRBackend

        return ACRBackend.from_models_dir(
            models_dir,
            weights=settings.weights,
            device=device,
            threshold=settings.threshold,
            focal=settings.focal,
            precision=settings.precision,
        )
    if name == "dir":
        from handmocap.core.backends.dir import DIRBackend

        return DIRBackend.from_models_dir(
            models_dir,
            detector=settings.detector,
            video=video,
            device=device,
            focal=settings.focal,
            precision=settings.precision,
        )
    if name == "mediapipe":
        from handmocap.core.backends.mediapipe import MediaPipeBackend

        return MediaPipeBackend.from_models_dir(
            models_dir, video=video, focal=settings.focal, device=device
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


@dataclass
class CaptureReport:
    take: Path
    backend: str
    reason: str  # why this backend
    frames: int  # frames in the take
    resumed_from: int | None  # first frame processed by this run when it resumed a take
    hands_seen: dict[str, int]  # frames with each hand present
    skipped: list[tuple[str, str]]  # images that failed to decode, with the reason
    seconds: float


STATE_DIR = "capture_state"  # tracker state and known shapes at each chunk boundary, for resuming


def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise HandmocapError(f"--device {name}: this machine's torch sees no CUDA device")
    if name != "cpu" and not name.startswith("cuda"):
        raise HandmocapError(f"--device must be auto, cpu or cuda[:N], got {name!r}")
    return name


def _state_path(take: Path, frame: int) -> Path:
    return take / STATE_DIR / f"{frame:08d}.json"


def _save_state(take: Path, frame: int, state: dict) -> None:
    """Tracker state before ``frame``, written atomically before that chunk's frames exist."""
    import json
    import os

    path = _state_path(take, frame)
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, path)


def _load_state(take: Path, frame: int):
    import json

    from handmocap.core.tracking import HandTracker

    path = _state_path(take, frame)
    if not path.is_file():
        raise HandmocapError(
            f"{take}: cannot resume at frame {frame}: the tracker state {path.name} is missing; "
            "capture again with --overwrite"
        )
    state = json.loads(path.read_text())
    return HandTracker.from_state(state["tracker"]), state["shapes"]


def _groups(stream, start: int, chunk: int):
    """Frames of the stream grouped by chunk: (first index, stop index, frames).

    Every chunk but the last spans ``chunk`` indices (frames that failed to decode leave holes,
    recorded as frames without hands); the last one ends after the last decoded frame.
    """
    current, frames = None, []
    for frame in stream:
        g = (frame.index - start) // chunk
        if current is not None and g != current:
            first = start + current * chunk
            yield first, first + chunk, frames
            frames = []
        current = g
        frames.append(frame)
    if frames:
        yield start + current * chunk, frames[-1].index + 1, frames


class _LandmarksAhead:
    """MediaPipe's landmarks for the coming chunks, each chunk on a worker thread, while the
    caller tracks, fits and writes the chunk before (and, at the start, loads the rest of
    the capture: torch, the hand model). At most ``workers`` chunks of frames are held."""

    def __init__(self, hands, groups, workers: int):
        from collections import deque
        from concurrent.futures import ThreadPoolExecutor

        self.hands, self.groups, self.workers = hands, groups, max(1, workers)
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="landmarks")
        self.pending: deque = deque()
        self._fill()

    def _fill(self) -> None:
        while len(self.pending) < self.workers:
            group = next(self.groups, None)
            if group is None:
                return
            first, stop, frames = group
            prepared = [self.hands.prepare(f.image) for f in frames]
            frames = [replace(f, image=None) for f in frames]  # the workers hold them
            # each half of a chunk from a fresh start (so a resumed capture, which starts on a
            # chunk boundary, sees the same): both workers busy sooner at the start of a
            # capture, and no worker waiting long on the other at its end
            half = (len(prepared) + 1) // 2
            jobs = [self.pool.submit(self.hands.landmark_chunk, part)
                    for part in (prepared[:half], prepared[half:]) if part]  # fmt: skip
            self.pending.append((first, stop, frames, jobs))

    def __iter__(self):
        """(first, stop, frames without images, landmarks) per chunk, in order."""
        while self.pending:
            first, stop, frames, jobs = self.pending.popleft()
            landmarks = [hands for job in jobs for hands in job.result()]
            self._fill()
            yield first, stop, frames, landmarks

    def __enter__(self) -> _LandmarksAhead:
        return self

    def __exit__(self, *exc) -> None:
        for *_, jobs in self.pending:
            for job in jobs:
                job.cancel()
        self.pool.shutdown(wait=True)
        self.hands.close()


def _chunks(backend, groups):
    """(first, stop, frames, observations) per chunk, a chunk at a time (network backends)."""
    for first, stop, frames in groups:
        yield first, stop, frames, backend([f.image for f in frames])


SHAPE_FRAMES = 8  # frames of a hand in one chunk that fix its shape for the rest of the take


def _track_chunk(name: str, backend, tracker, results, shape, shapes: dict):
    """A chunk's backend results through the tracker -> per frame {side: (observation, status)}.

    MediaPipe's hands are fitted with one shape per hand for the whole take (a hand keeps its
    proportions; the rig is built for one shape): the first chunk that sees a hand in at least
    ``SHAPE_FRAMES`` frames fits it, later chunks reuse it (``shapes``, updated here).
    """
    if name == "mediapipe":
        tracked = [tracker.update(hands) for hands in results]
        chosen = [
            {s: a.candidate.source for s, a in frame.items() if a.present} for frame in tracked
        ]
        fitted = backend.fit_hands(chosen, shape, shapes)
        for side in SIDES:
            seen = [frame[side] for frame in fitted if side in frame]
            if side not in shapes and len(seen) >= SHAPE_FRAMES:
                shapes[side] = [float(b) for b in seen[0].betas]
        records = []
        for frame, obs in zip(tracked, fitted, strict=True):
            records.append({s: (obs.get(s), frame[s].status) for s in SIDES})
        return records
    records = []
    for frame in results:
        tf = tracker.update(list(frame.values()))
        record = {}
        for side in SIDES:
            a = tf[side]
            if a.candidate is not None and a.relabelled:
                # the network gave this hand the other side's parameters: flag, never swap
                record[side] = (a.candidate.source, HandStatus.REJECTED)
            else:
                record[side] = (a.observation, a.status)
        records.append(record)
    return records


def capture(
    source_path: Path,
    take_path: Path,
    settings: CaptureSettings,
    models_dir: Path | None = None,
    progress=None,
    overwrite: bool = False,
) -> CaptureReport:
    """Run a capture (or resume one); see the module docstring."""
    import shutil
    import time
    from dataclasses import asdict as dc_asdict

    from handmocap.core.progress import ProgressReporter
    from handmocap.core.take import TakeManifest, TakeWriter, read_manifest, resume_frame
    from handmocap.core.tracking import HandTracker, TrackerSettings
    from handmocap.core.video import open_source

    progress = progress or ProgressReporter("none")
    started = time.perf_counter()
    if settings.chunk < 1 or settings.start < 0:
        raise HandmocapError("--batch must be at least 1 and --start at least 0")
    if settings.end is not None and settings.end <= settings.start:
        raise HandmocapError(f"--end {settings.end} must be after --start {settings.start}")
    take_path = Path(take_path)
    if take_path.exists() and overwrite:
        shutil.rmtree(take_path)
    elif take_path.exists() and (take_path / "manifest.json").is_file():
        if read_manifest(take_path).complete:
            raise HandmocapError(f"{take_path}: a complete take is already there; use --overwrite")
    elif take_path.exists() and any(take_path.iterdir()):
        raise HandmocapError(f"{take_path}: exists and is not a take; use another path")

    skipped: list[tuple[str, str]] = []

    def on_issue(path, why):
        skipped.append((str(path), why))
        progress.message(f"skipped {path}: {why}")

    source = open_source(source_path, on_issue=on_issue)
    name, reason = choose_backend(settings.backend, models_dir, settings.weights)
    progress.message(f"backend: {name} ({reason})")
    shape = (source.height, source.width)
    end = settings.end
    if end is None and source.frame_count_exact:
        end = source.frame_count
    if end is not None and source.frame_count_exact:
        end = min(end, source.frame_count)
    seen = {s: 0 for s in SIDES}
    with contextlib.ExitStack() as stack:
        ahead = None
        if name == "mediapipe":
            # MediaPipe needs neither torch nor a hand model: its landmarks start on the first
            # chunks now, and the rest of the capture loads while they run
            from handmocap.core.backends.mediapipe import MediaPipeHands

            early = resume_frame(take_path)
            early = settings.start if early is None else early
            stream = stack.enter_context(source.frames(early, end))
            groups = _groups(stream, settings.start, settings.chunk)
            ahead = stack.enter_context(_LandmarksAhead(MediaPipeHands(), groups, settings.workers))
        backend = build_backend(name, models_dir, settings, resolve_device(settings.device))
        focal = float(backend.camera(shape)[0])
        manifest = TakeManifest(
            fps=float(source.fps),
            width=source.width,
            height=source.height,
            backend=name,
            hand_model=backend.layer.models["right"].model_id,
            focal_length=focal,
            source=source.source_identity(),
            frame_count=None if end is None else end - settings.start,
            start_frame=settings.start,
            checkpoint=getattr(backend, "checkpoint", None),
            settings={**settings.recorded(), "tracker": dc_asdict(TrackerSettings())},
        )
        writer = stack.enter_context(TakeWriter(take_path, manifest, chunk_size=settings.chunk))
        begin = writer.next_frame
        if ahead is not None and begin != early:
            raise HandmocapError(
                f"{take_path}: the take changed while this capture started; run it again"
            )
        resumed = begin if begin > settings.start else None
        tracker, shapes = HandTracker(), {}
        if resumed is not None:
            tracker, shapes = _load_state(take_path, begin)
        if resumed is not None:
            progress.message(f"resuming {take_path} at frame {begin}")
        total = None if end is None else end - settings.start
        progress.total = total
        progress.start(backend=name, take=str(take_path), source=str(source_path))
        if begin > settings.start:
            progress.advance(begin - settings.start)  # the part done by an earlier run
        if ahead is None:
            stream = stack.enter_context(source.frames(begin, end))
            chunks = _chunks(backend, _groups(stream, settings.start, settings.chunk))
        else:
            chunks = iter(ahead)
        for first, stop, frames, results in chunks:
            records = _track_chunk(name, backend, tracker, results, shape, shapes)
            # the state that the next chunk starts from exists before this chunk does
            _save_state(take_path, stop, {"tracker": tracker.state(), "shapes": shapes})
            by_index = dict(zip((f.index for f in frames), records, strict=True))
            stamps = {f.index: f.timestamp for f in frames}
            indices = list(range(first, stop))
            hands = [by_index.get(i, {}) for i in indices]
            times = [stamps.get(i, i / source.fps) for i in indices]
            for record in hands:
                for side in SIDES:
                    seen[side] += int(side in record and record[side][1] == HandStatus.OK)
            writer.append(take_frames(indices, times, hands))
            progress.advance(len(indices))
        if source.damaged:
            raise HandmocapError(
                f"{source_path}: {source.damaged}; the frames before it are in {take_path}, "
                "which stays incomplete"
            )
    report = CaptureReport(
        take=take_path,
        backend=name,
        reason=reason,
        frames=writer.next_frame - settings.start,
        resumed_from=resumed,
        hands_seen=seen,
        skipped=skipped,
        seconds=time.perf_counter() - started,
    )
    progress.finish(frames=report.frames, hands_seen=seen)
    return report
