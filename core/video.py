"""Decoding: frames of a video file or an image folder, streamed with bounded memory.

:func:`open_source` opens either kind of input and checks it at once (the first frame is
decoded), so that a bad input stops before any work with one :class:`HandmocapError` naming it.
:meth:`FrameSource.frames` then streams :class:`Frame` objects (index, timestamp in seconds, RGB
uint8 image) decoded on a background thread that runs at most ``prefetch`` frames ahead of the
caller, so decoding overlaps inference and memory stays bounded whatever the video's length.
:func:`iter_batches` groups them for a backend.

Decisions, for the record:

* **Frame index** is the frame's position in decoding order from the start of the video (or in
  the naturally sorted image list), whatever ``start`` was: ``frames(start=n)`` yields exactly the
  frames, indices and timestamps that ``frames()`` yields from index ``n`` on.
* **Timestamps** come from the stream's presentation timestamps, in seconds relative to the first
  frame's (so the first frame is at 0.0 even when the container starts later); a frame with no
  timestamp gets ``index / fps``. Image folders have no timestamps: ``index / fps``.
* **Seeking** (video, ``start > 0``): the video stream's packets are read once (no decoding) into
  a table of presentation timestamps; the container seeks to the last keyframe at or before the
  target, decoding resumes there and frames before the target are dropped. If the seek does not
  land on the target frame exactly (a file with a damaged index or without timestamps), decoding
  restarts from the beginning and counts frames, so seeking never changes the result.
* **Rotation**: frames are returned upright as the video's display matrix says (rotations by
  multiples of 90 degrees and mirroring; checked against OpenCV's FFmpeg auto-orientation).
  ``rotation`` is the clockwise turn applied, in degrees, the convention of the legacy ``rotate``
  tag that phones write (a portrait phone video has 90). ``width``/``height`` are the upright size.
  Non-square pixels (sample aspect ratio) are not resampled.
* **Bad images in a folder** are skipped and reported, and the capture goes on: the remaining
  frames keep their index (= position in the sorted list, so indices map back to files), so the
  index sequence has a hole where the bad image was. Each is recorded once in
  :attr:`FrameSource.skipped` and passed to the ``on_issue`` callback (default: a
  :class:`SourceWarning`). An image whose size differs from the first image's is skipped too.
  Hidden files (``.name``, such as macOS ``._frame1.jpg``) are not images of the sequence.
* **A damaged or truncated video**: the frames up to the damage are decoded (including the ones
  the decoder still holds), then the stream stops cleanly and the damage is reported through
  ``on_issue`` and recorded in :attr:`FrameSource.damaged`; the caller sees fewer frames than
  ``frame_count``. A video that cannot be decoded at all is an error at :func:`open_source`. The
  decoder runs with slice threading only: frame threading hides a bad packet's error and
  silently drops the frames it held.

Issues are reported, and callbacks called, on the caller's thread, in order with the frames.
"""

from __future__ import annotations

import contextlib
import hashlib
import queue
import re
import threading
import warnings
import weakref
from abc import ABC, abstractmethod
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from handmocap.core.errors import HandmocapError
from handmocap.core.take import SourceVideo

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
DEFAULT_FPS = 30.0
DEFAULT_PREFETCH = 8

_POLL_S = 0.1  # how often a blocked producer or consumer looks at the other side
_JOIN_S = 5.0  # how long close() waits for the decoder thread (it is a daemon either way)

IssueCallback = Callable[[Path, str], None]


class SourceWarning(UserWarning):
    """A problem with the input that does not stop the capture (a skipped image, damage)."""


@dataclass(frozen=True, eq=False)
class Frame:
    """One decoded frame: its index in the source, its time in seconds, the upright RGB image."""

    index: int
    timestamp: float
    image: np.ndarray  # (height, width, 3) uint8, RGB, C-contiguous, owned by this frame


@dataclass(frozen=True)
class _Issue:
    path: Path
    reason: str
    skipped: bool  # an image left out (True) or damage that ended a video (False)


@dataclass(frozen=True)
class _Failure:
    error: BaseException


_END = object()


# ---------------------------------------------------------------------------------------------
# The source and its stream


class FrameSource(ABC):
    """Frames of one input, indexed from 0, each ``width`` x ``height`` after rotation.

    Read-only attributes: ``path``, ``fps`` (frames per second), ``frame_count`` (exact when
    ``frame_count_exact``: the image count, or the count a video's container declares, as in the
    mp4/mov sample table, which decoding meets unless the file is damaged; else an estimate from
    the duration, 0 when even that is unknown), ``width``, ``height``,
    ``rotation`` (clockwise degrees applied to make frames upright), ``mirrored`` (the display
    matrix also mirrors), ``prefetch``, ``skipped`` (``(path, reason)`` of every image left out)
    and ``damaged`` (why a video stopped early, or None).

    Subclasses implement :meth:`_decode`; everything about threads lives here.
    """

    def __init__(
        self,
        path: Path,
        *,
        fps: float,
        frame_count: int,
        frame_count_exact: bool,
        width: int,
        height: int,
        rotation: int = 0,
        mirrored: bool = False,
        prefetch: int = DEFAULT_PREFETCH,
        on_issue: IssueCallback | None = None,
    ) -> None:
        if not isinstance(prefetch, int) or prefetch < 1:
            raise ValueError(f"prefetch must be a positive integer, got {prefetch!r}")
        self.path = path
        self.fps = float(fps)
        self.frame_count = int(frame_count)
        self.frame_count_exact = bool(frame_count_exact)
        self.width = int(width)
        self.height = int(height)
        self.rotation = int(rotation)
        self.mirrored = bool(mirrored)
        self.prefetch = prefetch
        self.skipped: list[tuple[Path, str]] = []
        self.damaged: str | None = None
        self._on_issue = on_issue
        self._streams: weakref.WeakSet[FrameStream] = weakref.WeakSet()

    def __repr__(self) -> str:
        count = f"{self.frame_count}" if self.frame_count_exact else f"~{self.frame_count}"
        return (
            f"{type(self).__name__}({str(self.path)!r}, {self.width}x{self.height}, "
            f"{self.fps:g} fps, {count} frames)"
        )

    @abstractmethod
    def _decode(
        self, start: int, end: int | None, size: tuple[int, int] | None = None
    ) -> Iterator[Frame | _Issue]:
        """Frames ``start <= index < end`` in order (and issues), upright, scaled to ``size``
        (width, height) when given; runs on the decoder thread."""

    @abstractmethod
    def source_identity(self) -> SourceVideo:
        """The input's identity, as a take's manifest records it."""

    def frames(
        self, start: int = 0, end: int | None = None, height: int | None = None
    ) -> FrameStream:
        """Stream the frames with ``start <= index < end`` (``end=None``: to the last one).

        ``height``: frames taller than this come scaled down to it (aspect kept, even sizes),
        scaled as they are decoded, which costs less than decoding them whole (previews).
        Decoding starts at once on a background thread. Iterate the result, and stop early by
        breaking out of the loop, calling ``close()`` or using it as a context manager.
        """
        if not isinstance(start, int) or start < 0:
            raise ValueError(f"start must be a non-negative integer, got {start!r}")
        if end is not None and (not isinstance(end, int) or end < start):
            raise ValueError(f"end must be None or an integer >= start ({start}), got {end!r}")
        stream = FrameStream(
            self, self._decode(start, end, self.scaled_size(height)), self.prefetch
        )
        self._streams.add(stream)
        return stream

    def __iter__(self) -> Iterator[Frame]:
        return iter(self.frames())

    def scaled_size(self, height: int | None) -> tuple[int, int] | None:
        """(width, height) of frames at most ``height`` tall (None: as stored)."""
        if height is None or height >= self.height:
            return None
        if height < 2:
            raise ValueError(f"height must be at least 2, got {height}")
        scale = height / self.height
        return max(2, round(self.width * scale / 2) * 2), max(2, round(height / 2) * 2)

    def close(self) -> None:
        """Stop every stream still running (a source holds no other resource between streams)."""
        for stream in list(self._streams):
            stream.close()

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _report(self, issue: _Issue) -> None:
        """Record an issue and tell the caller (on the caller's thread)."""
        if issue.skipped:
            if any(path == issue.path for path, _ in self.skipped):
                return  # reported when an earlier stream met it
            self.skipped.append((issue.path, issue.reason))
            message = f"{issue.path}: skipped: {issue.reason}"
        else:
            if self.damaged == issue.reason:
                return
            self.damaged = issue.reason
            message = f"{issue.path}: {issue.reason}"
        if self._on_issue is not None:
            self._on_issue(issue.path, issue.reason)
        else:
            warnings.warn(message, SourceWarning, stacklevel=3)


class FrameStream(Iterator[Frame]):
    """An iterator over frames decoded ahead on a background thread.

    At most ``prefetch`` items are decoded ahead of the consumer: the producer takes a slot of a
    semaphore before decoding each item and the consumer gives it back when it takes the item.
    The thread ends when the frames run out, on :meth:`close`, or when the stream is garbage
    collected; an exception raised while decoding is raised again by ``next()``.
    """

    def __init__(self, source: FrameSource, items: Iterator[Any], prefetch: int) -> None:
        self.source = source
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._slots = threading.Semaphore(prefetch)
        self._stop = threading.Event()
        self._done = False
        # The thread must not reference this object, or it would never be collected.
        self._thread = threading.Thread(
            target=_produce,
            args=(items, self._queue, self._slots, self._stop),
            name=f"handmocap-decode:{source.path.name}",
            daemon=True,
        )
        weakref.finalize(self, self._stop.set)
        self._thread.start()

    @property
    def running(self) -> bool:
        """Whether the decoder thread is still alive."""
        return self._thread.is_alive()

    def __iter__(self) -> FrameStream:
        return self

    def __next__(self) -> Frame:
        while not self._done:
            item = self._get()
            if item is _END:
                self._finish()
                break
            if isinstance(item, _Failure):
                self._finish()
                raise item.error
            self._slots.release()
            if isinstance(item, _Issue):
                self.source._report(item)
                continue
            return item
        raise StopIteration

    def _get(self) -> Any:
        while True:
            try:
                return self._queue.get(timeout=_POLL_S)
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    return _Failure(RuntimeError("the decoder thread ended without a result"))

    def _finish(self, timeout: float = _JOIN_S) -> None:
        self._done = True
        self._stop.set()
        self._slots.release()  # wake a producer waiting for a slot
        self._thread.join(timeout)
        with contextlib.suppress(queue.Empty):
            while True:  # drop decoded frames now rather than with this object
                self._queue.get_nowait()

    def close(self) -> None:
        """Stop decoding and wait (a few seconds at most) for the decoder thread to end."""
        if not self._done or self._thread.is_alive():
            self._finish()

    def __enter__(self) -> FrameStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _produce(
    items: Iterator[Any],
    out: queue.SimpleQueue[Any],
    slots: threading.Semaphore,
    stop: threading.Event,
) -> None:
    """The decoder thread: move items into ``out`` while slots are free; always end with _END."""
    try:
        while not stop.is_set():
            if not slots.acquire(timeout=_POLL_S) or stop.is_set():
                continue
            item = next(items, _END)
            if item is _END:
                break
            out.put(item)
    except BaseException as exc:  # handed to the consumer, which raises it
        out.put(_Failure(exc))
    finally:
        close = getattr(items, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                close()
        out.put(_END)


def iter_batches(
    source: FrameSource, batch_size: int, start: int = 0, end: int | None = None
) -> Iterator[list[Frame]]:
    """Frames ``start <= index < end`` in lists of ``batch_size`` (the last one may be shorter).

    Stopping early (breaking out, or closing this generator) stops the decoder thread.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    with source.frames(start, end) as stream:
        batch: list[Frame] = []
        for frame in stream:
            batch.append(frame)
            if len(batch) == batch_size:
                yield batch
                batch = []
        if batch:
            yield batch


# ---------------------------------------------------------------------------------------------
# Opening


def read_rgb(path: Path) -> np.ndarray:
    """One image file as (H, W, 3) uint8 RGB; a missing or undecodable file is one error naming
    its path."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise HandmocapError(f"image not found: {path}")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise HandmocapError(f"image cannot be decoded: {path} (not an image OpenCV can read)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def open_source(
    path: str | Path,
    *,
    fps: float | None = None,
    prefetch: int = DEFAULT_PREFETCH,
    on_issue: IssueCallback | None = None,
) -> FrameSource:
    """Open a video file or a folder of images, check it, and return its :class:`FrameSource`.

    ``fps``: the frame rate of an image folder (default 30); for a video, the stream's own rate
    wins and ``fps`` is only a fallback for a stream that declares none. ``prefetch``: how many
    frames the decoder thread may run ahead. ``on_issue(path, reason)``: called (on the
    consumer's thread) for each skipped image and for damage that ends a video early; without
    it each issue is a :class:`SourceWarning`.

    Raises :class:`HandmocapError` naming the path for a missing path, a file FFmpeg cannot read
    as a video, a video without frames, and a folder without decodable images.
    """
    source = Path(path)
    if fps is not None and not (isinstance(fps, int | float) and 0 < fps < float("inf")):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    if source.is_dir():
        return ImageFolderSource(
            source, fps=DEFAULT_FPS if fps is None else fps, prefetch=prefetch, on_issue=on_issue
        )
    if not source.exists():
        raise HandmocapError(f"{source}: no such video file or image folder")
    if not source.is_file():
        raise HandmocapError(f"{source}: not a regular file (a video) nor an image folder")
    return VideoSource(source, fps=fps, prefetch=prefetch, on_issue=on_issue)


# ---------------------------------------------------------------------------------------------
# Video files


@dataclass(frozen=True)
class _SeekPlan:
    offset: int  # what to give container.seek (stream time base), at or before the keyframe
    target_pts: int  # the pts of frame ``target_index``
    target_index: int  # the frame decoding aligns on; frames before ``start`` are then dropped


@dataclass(frozen=True)
class Orientation:
    """How to turn a stored frame upright: transpose, then flip rows, then flip columns."""

    transpose: bool = False
    flip_rows: bool = False
    flip_cols: bool = False

    def apply(self, image: np.ndarray) -> np.ndarray:
        if self.transpose:
            image = image.transpose(1, 0, *range(2, image.ndim))
        if self.flip_rows:
            image = image[::-1]
        if self.flip_cols:
            image = image[:, ::-1]
        return np.ascontiguousarray(image)

    def as_rotation(self) -> tuple[int, bool]:
        """``(rotation, mirrored)`` such that :func:`rotate_upright` does the same."""
        probe = np.arange(6).reshape(2, 3)
        target = self.apply(probe)
        for rotation in (0, 90, 180, 270):
            for mirrored in (False, True):
                turned = rotate_upright(probe, rotation, mirrored)
                if turned.shape == target.shape and (turned == target).all():
                    return rotation, mirrored
        raise AssertionError(f"{self} is not a rotation with or without a mirror")


_QUARTER_TURNS = {  # counter-clockwise quarter turns -> orientation (np.rot90 with k turns)
    0: Orientation(),
    1: Orientation(transpose=True, flip_rows=True),
    2: Orientation(flip_rows=True, flip_cols=True),
    3: Orientation(transpose=True, flip_cols=True),
}


def orientation_from_display_matrix(
    matrix: Iterable[float] | None, rotation_ccw: float = 0.0
) -> Orientation:
    """The orientation an FFmpeg display matrix (9 numbers, row-major) asks for.

    FFmpeg maps a stored pixel ``(p, q)`` (x right, y down) to ``(a p + c q, b p + d q)`` with
    ``a, b, c, d = m[0], m[1], m[3], m[4]``. For the eight axis-aligned matrices (rotations by
    quarter turns, with or without a mirror) this is exact; any other matrix falls back to the
    nearest quarter turn of ``rotation_ccw`` (FFmpeg's counter-clockwise rotation), unmirrored.
    """
    if matrix is not None:
        m = np.asarray(list(matrix), dtype=np.float64)
        if m.shape == (9,):
            a, b, c, d = (float(v) for v in m[[0, 1, 3, 4]] / max(np.abs(m[[0, 1, 3, 4]]).max(), 1))
            signs = [round(v) for v in (a, b, c, d)]
            if all(abs(v - s) < 1e-3 for v, s in zip((a, b, c, d), signs, strict=True)):
                sa, sb, sc, sd = signs
                if sb == 0 and sc == 0 and sa != 0 and sd != 0:
                    return Orientation(flip_rows=sd < 0, flip_cols=sa < 0)
                if sa == 0 and sd == 0 and sb != 0 and sc != 0:
                    return Orientation(transpose=True, flip_rows=sb < 0, flip_cols=sc < 0)
    return _QUARTER_TURNS[round(rotation_ccw / 90) % 4]


def rotate_upright(image: np.ndarray, rotation: int, mirrored: bool = False) -> np.ndarray:
    """Turn ``image`` clockwise by ``rotation`` degrees (a multiple of 90), then mirror it
    left-right if ``mirrored``: the public form of what the decoder applies."""
    if rotation % 90:
        raise ValueError(f"rotation must be a multiple of 90 degrees, got {rotation!r}")
    turned = _QUARTER_TURNS[(-rotation // 90) % 4].apply(image)
    return np.ascontiguousarray(turned[:, ::-1]) if mirrored else turned


class VideoSource(FrameSource):
    """The frames of a video file, decoded with PyAV (FFmpeg). See the module's decisions."""

    def __init__(
        self,
        path: Path,
        *,
        fps: float | None = None,
        prefetch: int = DEFAULT_PREFETCH,
        on_issue: IssueCallback | None = None,
    ) -> None:
        av = _import_av()
        self._table_lock = threading.Lock()
        self._table: tuple[list[int], list[tuple[int, int]]] | None = None
        with self._open(path) as container:
            if container.format.name == "tty":  # FFmpeg renders text files as "ANSI art" video
                raise HandmocapError(f"{path}: a text file, not a video")
            stream = _video_stream(container, path)
            self._stream_index = stream.index
            self._time_base = Fraction(stream.time_base) if stream.time_base else None
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            rate_f = float(rate) if rate else 0.0
            fps_f = rate_f if 0 < rate_f < 10_000 else (fps or DEFAULT_FPS)
            damage: list[BaseException] = []
            with contextlib.closing(_decoded(container, stream, damage)) as decoded:
                first = next(decoded, None)
            if first is None:
                if damage:
                    raise HandmocapError(f"{path}: cannot decode the video ({damage[0]})")
                raise HandmocapError(f"{path}: the video stream holds no frames")
            self._origin = first.pts
            matrix = _display_matrix(first, av)
            self._orientation = orientation_from_display_matrix(matrix, first.rotation)
            upright = self._orientation.apply(np.empty((first.height, first.width, 0), np.uint8))
            count, exact = _frame_count(container, stream, fps_f)
        rotation, mirrored = self._orientation.as_rotation()
        super().__init__(
            path,
            fps=fps_f,
            frame_count=count,
            frame_count_exact=exact,
            width=upright.shape[1],
            height=upright.shape[0],
            rotation=rotation,
            mirrored=mirrored,
            prefetch=prefetch,
            on_issue=on_issue,
        )

    def source_identity(self) -> SourceVideo:
        return SourceVideo.from_file(self.path)

    @staticmethod
    def _open(path: Path) -> Any:
        av = _import_av()
        try:
            return av.open(str(path), mode="r")
        except av.FFmpegError as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise HandmocapError(f"{path}: not a video file FFmpeg can read ({reason})") from exc
        except OSError as exc:
            raise HandmocapError(f"{path}: cannot read the video ({exc.strerror})") from exc

    def _decode(
        self, start: int, end: int | None, size: tuple[int, int] | None = None
    ) -> Iterator[Frame | _Issue]:
        if start > 0:
            plan = self._seek_plan(start)
            if plan is not None:
                finished = yield from self._run(start, end, plan, size)
                if finished:
                    return
        yield from self._run(start, end, None, size)

    def _run(
        self, start: int, end: int | None, plan: _SeekPlan | None, size: tuple[int, int] | None
    ) -> Iterator[Frame | _Issue]:  # returns (via StopIteration) False if the seek missed
        with self._open(self.path) as container:
            stream = container.streams.video[self._stream_index]
            stream.thread_type = "SLICE"
            if plan is not None:
                container.seek(plan.offset, backward=True, any_frame=False, stream=stream)
            index = -1 if plan is None else None  # None: not aligned on the target yet
            damage: list[BaseException] = []
            with contextlib.closing(_decoded(container, stream, damage)) as decoded:
                for frame in decoded:
                    if index is None:
                        assert plan is not None
                        if frame.pts is None:
                            return False
                        if frame.pts < plan.target_pts:
                            continue
                        if frame.pts != plan.target_pts:
                            return False
                        index = plan.target_index
                    else:
                        index += 1
                    if index < start:
                        continue
                    if end is not None and index >= end:
                        return True
                    yield Frame(index, self._timestamp(frame.pts, index), self._image(frame, size))
            if damage:
                if index is None:
                    return False  # damage before the target: let the run from 0 report it
                if index < 0:
                    raise HandmocapError(f"{self.path}: cannot decode the video ({damage[0]})")
                declared = f" of {self.frame_count}" if self.frame_count_exact else ""
                yield _Issue(
                    self.path,
                    f"the video is damaged or truncated after frame {index}{declared}: "
                    f"decoding stopped there ({damage[0]})",
                    skipped=False,
                )
            return True

    def _timestamp(self, pts: int | None, index: int) -> float:
        if pts is None or self._origin is None or self._time_base is None:
            return index / self.fps
        return float((pts - self._origin) * self._time_base)

    def _image(self, frame: Any, size: tuple[int, int] | None = None) -> np.ndarray:
        if size is None:
            return self._orientation.apply(frame.to_ndarray(format="rgb24"))
        width, height = size[::-1] if self._orientation.transpose else size  # as stored
        image = frame.to_ndarray(
            format="rgb24", width=width, height=height, interpolation="FAST_BILINEAR"
        )
        return self._orientation.apply(image)

    def _seek_plan(self, start: int) -> _SeekPlan | None:
        """Where to seek for frame ``start``, or None to decode from the beginning."""
        pts_list, keyframes = self._packet_table()
        if not pts_list:
            return None
        target_index = min(start, len(pts_list) - 1)
        target_pts = pts_list[target_index]
        k = bisect_right(keyframes, (target_pts, float("inf"))) - 1
        if k <= 0 and (k < 0 or keyframes[0][0] <= pts_list[0]):
            return None  # the target's keyframe is the first one: decode from the start
        return _SeekPlan(keyframes[k][1], target_pts, target_index)

    def _packet_table(self) -> tuple[list[int], list[tuple[int, int]]]:
        """(sorted pts of every frame, sorted (pts, seek offset) of keyframes), read once.

        Empty lists when some packet has no timestamp (seeking then decodes from the start).
        """
        with self._table_lock:
            if self._table is None:
                self._table = self._read_packet_table()
            return self._table

    def _read_packet_table(self) -> tuple[list[int], list[tuple[int, int]]]:
        av = _import_av()
        pts_list: list[int] = []
        keyframes: list[tuple[int, int]] = []
        with self._open(self.path) as container:
            stream = container.streams.video[self._stream_index]
            try:
                for packet in container.demux(stream):
                    if packet.size == 0 or packet.is_discard:
                        continue
                    if packet.pts is None:
                        return [], []
                    pts_list.append(packet.pts)
                    if packet.is_keyframe:
                        dts = packet.dts if packet.dts is not None else packet.pts
                        keyframes.append((packet.pts, min(packet.pts, dts)))
            except av.FFmpegError:
                pass  # a damaged tail: the table covers what could be read
        origin = self._origin if self._origin is not None else min(pts_list, default=0)
        pts_list = sorted(p for p in pts_list if p >= origin)
        keyframes = sorted(k for k in keyframes if k[0] >= origin)
        return pts_list, keyframes


def _import_av() -> Any:
    try:
        import av
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise HandmocapError(
            "reading videos needs PyAV: pip install 'handmocap[video]' (or: pip install av)"
        ) from exc
    return av


def _video_stream(container: Any, path: Path) -> Any:
    streams = container.streams.video
    if not streams:
        raise HandmocapError(f"{path}: holds no video stream")
    with contextlib.suppress(Exception):
        best = container.streams.best("video")
        if best is not None:
            return best
    return streams[0]


def _decoded(container: Any, stream: Any, damage: list[BaseException]) -> Iterator[Any]:
    """Decoded frames of ``stream``; at the first error, drain the decoder, note it, and stop."""
    av = _import_av()
    try:
        for packet in container.demux(stream):
            try:
                frames = packet.decode()  # the final empty packet flushes the decoder
            except av.FFmpegError as exc:
                damage.append(exc)
                break
            yield from frames
    except av.FFmpegError as exc:  # the demuxer failed to read
        damage.append(exc)
    if damage:
        with contextlib.suppress(av.FFmpegError):
            yield from stream.codec_context.decode(None)


def _display_matrix(frame: Any, av: Any) -> list[int] | None:
    """The frame's display matrix (9 int32, 16.16 fixed point) or None."""
    display = av.sidedata.sidedata.Type.DISPLAYMATRIX
    with contextlib.suppress(Exception):
        for data in frame.side_data:
            if data.type == display:
                raw = bytes(data)
                if len(raw) >= 36:
                    return np.frombuffer(raw[:36], dtype=np.int32).tolist()
    return None


def _frame_count(container: Any, stream: Any, fps: float) -> tuple[int, bool]:
    """(count, exact): the container's declared frame count, else duration x fps (0: unknown)."""
    if stream.frames and stream.frames > 0:
        return int(stream.frames), True
    seconds = 0.0
    if stream.duration and stream.time_base:
        seconds = float(stream.duration * stream.time_base)
    elif container.duration:
        seconds = container.duration / 1_000_000
    return round(seconds * fps), False


# ---------------------------------------------------------------------------------------------
# Image folders


def natural_key(name: str) -> tuple[Any, ...]:
    """Sort key that orders ``frame2`` before ``frame10`` (case-insensitive; ties by name)."""
    parts = re.split(r"(\d+)", name)
    return (
        tuple(int(p) if i % 2 else p.casefold() for i, p in enumerate(parts)),
        name,
    )


class ImageFolderSource(FrameSource):
    """The images of a folder, naturally sorted by name, as frames at ``fps``.

    Index ``i`` is the ``i``-th image of the sorted list, at ``i / fps`` seconds. Images that
    fail to decode, or whose size differs from the first good image's, are skipped and
    reported; their index is left out. Images are read with OpenCV, which applies EXIF
    orientation, so ``rotation`` is always 0.
    """

    def __init__(
        self,
        path: Path,
        *,
        fps: float = DEFAULT_FPS,
        prefetch: int = DEFAULT_PREFETCH,
        on_issue: IssueCallback | None = None,
    ) -> None:
        try:
            files = [
                p
                for p in path.iterdir()
                if p.suffix.lower() in IMAGE_EXTENSIONS
                and not p.name.startswith(".")
                and p.is_file()
            ]
        except OSError as exc:
            raise HandmocapError(f"{path}: cannot list the image folder ({exc.strerror})") from exc
        if not files:
            raise HandmocapError(
                f"{path}: the folder holds no images ({', '.join(IMAGE_EXTENSIONS)})"
            )
        self.files: list[Path] = sorted(files, key=lambda p: natural_key(p.name))
        self._size: tuple[int, int] | None = None
        super().__init__(
            path,
            fps=fps,
            frame_count=len(self.files),
            frame_count_exact=True,
            width=0,
            height=0,
            prefetch=prefetch,
            on_issue=on_issue,
        )
        first_problem = None
        for file in self.files:
            image, reason = self._read(file)
            if image is not None:
                self.height, self.width = image.shape[:2]
                self._size = (self.height, self.width)
                break
            first_problem = first_problem or f"{file.name}: {reason}"
            self._report(_Issue(file, reason, skipped=True))
        else:
            raise HandmocapError(
                f"{path}: none of its {len(self.files)} images can be decoded "
                f"(first: {first_problem})"
            )

    def _read(self, file: Path) -> tuple[np.ndarray | None, str]:
        import cv2

        try:
            data = np.fromfile(file, dtype=np.uint8)
        except OSError as exc:
            return None, f"cannot read the file ({exc.strerror})"
        image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
        if image is None:
            return None, "not an image OpenCV can decode"
        if self._size is not None and image.shape[:2] != self._size:
            h, w = image.shape[:2]
            return None, f"size {w}x{h} differs from the first image's {self.width}x{self.height}"
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB), ""

    def _decode(
        self, start: int, end: int | None, size: tuple[int, int] | None = None
    ) -> Iterator[Frame | _Issue]:
        stop = len(self.files) if end is None else min(end, len(self.files))
        for index in range(start, stop):
            file = self.files[index]
            image, reason = self._read(file)
            if image is None:
                yield _Issue(file, reason, skipped=True)
            else:
                if size is not None:
                    import cv2

                    image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
                yield Frame(index, index / self.fps, image)

    def source_identity(self) -> SourceVideo:
        """Identity of the sequence: ``size`` is the images' total bytes; ``sha256_head`` hashes
        the sorted names and sizes, then the first MiB of the images' bytes in order."""
        digest = hashlib.sha256()
        total = 0
        try:
            sizes = [file.stat().st_size for file in self.files]
            for file, size in zip(self.files, sizes, strict=True):
                digest.update(f"{file.name}\0{size}\n".encode())
            total = sum(sizes)
            left = SourceVideo.HEAD_BYTES
            for file in self.files:
                if left <= 0:
                    break
                with file.open("rb") as f:
                    head = f.read(left)
                digest.update(head)
                left -= len(head)
        except OSError as exc:
            raise HandmocapError(f"{self.path}: cannot read the images ({exc.strerror})") from exc
        return SourceVideo(str(self.path.resolve()), total, digest.hexdigest())
