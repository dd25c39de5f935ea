"""The take: one capture's raw, non-destructive record on disk.

A capture writes what the backend observed, frame by frame, and nothing downstream (smoothing,
baking, export) ever rewrites it. On disk a take is a directory::

    NAME.take/
        manifest.json                   what was captured and how; ``complete`` once finished
        chunks/00000000-00000063.npz    per-frame arrays of video frames 0..63 (inclusive)
        chunks/00000064-00000127.npz
        ...

The manifest (format ``handmocap-take``, ``format_version`` 1) is a JSON object; see
:class:`TakeManifest`. Each chunk is a pickle-free ``.npz`` archive (a zip of deflated ``.npy``
members) holding exactly the fields of :data:`ARRAY_FIELDS` for a run of consecutive
video frames; its name is the first and last video frame index it holds, zero-padded to at least
eight digits. Chunks follow each other without gaps or overlaps, starting at the manifest's
``start_frame``.

Atomicity: every file (chunk or manifest) is written to a hidden temporary file in its final
directory (``.NAME.<random>.tmp``), flushed, fsynced, then renamed over its final name with
:func:`os.replace`, and the directory is fsynced. A reader therefore sees a chunk whole or not at
all, and a writer killed at any moment leaves every finished chunk readable. Readers ignore hidden
files; a resuming writer deletes stray temporary files.

Per frame and per hand ``h`` in ``("left", "right")`` a chunk holds ``h_present`` (bool),
``h_status`` (:class:`HandStatus` code), ``h_score`` and the hand model's parameters and joints
(float32; rotations axis-angle in the camera frame, lengths in metres, 2D joints in pixels of the
original frame). ``present`` is exactly ``status == HandStatus.OK``. A hand that was not detected
carries NaN in its float fields; a detection refused for a low score or by tracking may keep its
raw numbers (the take is non-destructive) but is not ``present``.

Loading never executes code (``allow_pickle=False``) and checks versions, names, dtypes, shapes,
frame continuity and status codes: every problem is one :class:`~handmocap.core.errors.TakeError`
naming the file and the field at fault.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import hashlib
import json
import math
import os
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import IO, Any, ClassVar, NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from handmocap.core.errors import TakeError

FORMAT_NAME = "handmocap-take"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
CHUNKS_DIR = "chunks"
HANDS = ("left", "right")

_TEMP_SUFFIX = ".tmp"
_SET_ASIDE_SUFFIX = ".damaged"
_CHUNK_NAME = re.compile(r"(\d{8,})-(\d{8,})\.npz")
_MAX_MANIFEST_BYTES = 16 << 20  # a manifest is a few hundred bytes plus settings

PathLike = str | os.PathLike[str]
Frames = dict[str, np.ndarray]


class HandStatus(enum.IntEnum):
    """Why a hand is or is not ``present`` in a frame (stored as uint8 in ``<side>_status``)."""

    OK = 0
    NOT_DETECTED = 1
    LOW_SCORE = 2
    REJECTED = 3  # rejected by tracking (for instance an implausible jump or a side swap)


class FieldSpec(NamedTuple):
    """The dtype and per-frame shape of one chunk array (the array is ``(T, *shape)``)."""

    dtype: np.dtype
    shape: tuple[int, ...]


#: Per-hand fields, stored once per side with the prefix ``left_`` or ``right_``.
HAND_FIELDS: Mapping[str, FieldSpec] = MappingProxyType(
    {
        "present": FieldSpec(np.dtype(np.bool_), ()),
        "status": FieldSpec(np.dtype(np.uint8), ()),
        "score": FieldSpec(np.dtype(np.float32), ()),
        "global_orient": FieldSpec(np.dtype(np.float32), (3,)),
        "hand_pose": FieldSpec(np.dtype(np.float32), (15, 3)),
        "betas": FieldSpec(np.dtype(np.float32), (10,)),
        "transl": FieldSpec(np.dtype(np.float32), (3,)),
        "joints3d": FieldSpec(np.dtype(np.float32), (21, 3)),
        "joints2d": FieldSpec(np.dtype(np.float32), (21, 2)),
    }
)

#: The array field table of a chunk: name -> (dtype, per-frame shape). Writer, reader and
#: validation all use it; a chunk holds exactly these fields.
ARRAY_FIELDS: Mapping[str, FieldSpec] = MappingProxyType(
    {
        "frame_index": FieldSpec(np.dtype(np.int64), ()),
        "timestamp": FieldSpec(np.dtype(np.float64), ()),
        **{f"{side}_{name}": spec for side in HANDS for name, spec in HAND_FIELDS.items()},
    }
)


# --------------------------------------------------------------------------------------------
# Manifest


def _show(value: Any, limit: int = 60) -> str:
    """``repr`` of a value cut to ``limit`` characters, for error messages about random input."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_count(value: Any) -> str | None:
    return (
        None if _is_int(value) and value >= 0 else f"expected an integer >= 0, got {_show(value)}"
    )


def _check_optional_count(value: Any) -> str | None:
    return None if value is None else _check_count(value)


def _check_size(value: Any) -> str | None:
    return (
        None if _is_int(value) and value >= 1 else f"expected an integer >= 1, got {_show(value)}"
    )


def _check_positive(value: Any) -> str | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    try:
        ok = ok and math.isfinite(float(value)) and value > 0
    except OverflowError:  # an integer beyond float range
        ok = False
    return None if ok else f"expected a positive number, got {_show(value)}"


def _check_name(value: Any) -> str | None:
    ok = isinstance(value, str) and value.strip() != ""
    return None if ok else f"expected a non-empty string, got {_show(value)}"


def _check_optional_name(value: Any) -> str | None:
    return None if value is None else _check_name(value)


def _check_bool(value: Any) -> str | None:
    return None if isinstance(value, bool) else f"expected true or false, got {_show(value)}"


def _check_time(value: Any) -> str | None:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            datetime.fromisoformat(value)
            return None
    return f"expected an ISO 8601 time, got {_show(value)}"


def _check_settings(value: Any) -> str | None:
    if not isinstance(value, dict):
        return f"expected a JSON object, got {_show(value)}"
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        return f"not plain JSON ({exc})"
    return None


def _check_sha256(value: Any) -> str | None:
    ok = isinstance(value, str) and re.fullmatch(r"[0-9a-f]{64}", value) is not None
    return None if ok else f"expected 64 lowercase hex digits, got {_show(value)}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class SourceVideo:
    """Identity of the video a take was captured from.

    ``size`` and ``sha256_head`` (SHA-256 of the first MiB) identify the footage cheaply, even
    for long videos; ``path`` is where it was, for the user's information only: a moved video
    is still the same source.
    """

    path: str
    size: int
    sha256_head: str

    HEAD_BYTES: ClassVar[int] = 1 << 20

    def __post_init__(self) -> None:
        for name, check in _SOURCE_CHECKS.items():
            problem = check(getattr(self, name))
            if problem:
                raise TakeError(f"SourceVideo: field {name!r}: {problem}")

    @classmethod
    def from_file(cls, path: PathLike) -> SourceVideo:
        """Identify the video at ``path`` (reads its size and first MiB)."""
        video = Path(path)
        try:
            size = video.stat().st_size
            with video.open("rb") as f:
                head = f.read(cls.HEAD_BYTES)
        except OSError as exc:
            raise TakeError(f"{video}: cannot read the source video ({exc.strerror})") from exc
        return cls(str(video.resolve()), size, hashlib.sha256(head).hexdigest())

    def same_footage(self, other: SourceVideo) -> bool:
        """Whether both identify the same bytes (the path may differ)."""
        return (self.size, self.sha256_head) == (other.size, other.sha256_head)


_SOURCE_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "path": _check_name,
    "size": _check_count,
    "sha256_head": _check_sha256,
}


@dataclass(frozen=True)
class TakeManifest:
    """What a take holds and how it was captured (``manifest.json``).

    The capture fills in everything up to ``settings``; ``created`` defaults to now, and the
    writer maintains ``complete`` and ``frames_written`` (the number of frames in the chunks,
    recorded when the writer closes normally, so that a lost final chunk is noticed).

    ``settings`` is free JSON: everything that changes the numbers in the chunks (detector
    thresholds, tracking options, ...). A capture resumes only with equal settings, so keep
    settings that do not affect the numbers (progress display, paths of outputs) out of it.
    ``frame_count`` is the number of frames the video is expected to hold (None if unknown); a
    complete take may hold fewer when the decoder finds fewer. ``start_frame`` is the video
    frame index of the take's first frame.
    """

    fps: float
    width: int
    height: int
    backend: str
    hand_model: str
    focal_length: float
    source: SourceVideo | None = None
    frame_count: int | None = None
    start_frame: int = 0
    checkpoint: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    created: str = field(default_factory=_now)
    complete: bool = False
    frames_written: int | None = None

    #: Fields that must be equal for a writer to resume a take (``source`` is compared by
    #: footage identity, not path).
    RESUME_FIELDS: ClassVar[tuple[str, ...]] = (
        "fps",
        "width",
        "height",
        "frame_count",
        "start_frame",
        "backend",
        "checkpoint",
        "hand_model",
        "focal_length",
        "settings",
    )

    def __post_init__(self) -> None:
        if self.source is not None and not isinstance(self.source, SourceVideo):
            raise TakeError(
                f"TakeManifest: field 'source': expected a SourceVideo or None, "
                f"got {_show(self.source)}"
            )
        problem = _manifest_problem({f: getattr(self, f) for f in _MANIFEST_CHECKS})
        if problem:
            raise TakeError(f"TakeManifest: {problem}")
        # Own a normalised copy: float fields as floats, settings as plain JSON (tuples -> lists).
        object.__setattr__(self, "fps", float(self.fps))
        object.__setattr__(self, "focal_length", float(self.focal_length))
        object.__setattr__(self, "settings", json.loads(json.dumps(self.settings)))

    def to_dict(self) -> dict[str, Any]:
        """The manifest as the JSON object stored in ``manifest.json``."""
        out: dict[str, Any] = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION}
        for f in dataclasses.fields(self):
            out[f.name] = getattr(self, f.name)
        out["source"] = dataclasses.asdict(self.source) if self.source else None
        out["settings"] = json.loads(json.dumps(self.settings))
        return out

    def to_json(self) -> str:
        """The text of ``manifest.json`` (strict JSON: no NaN or infinity)."""
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes, where: str = "manifest") -> TakeManifest:
        """Parse and validate a manifest; ``where`` (usually its path) starts every message."""
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise TakeError(f"{where}: not valid JSON ({_show(str(exc), 120)})") from exc
        return cls.from_dict(data, where)

    @classmethod
    def from_dict(cls, data: Any, where: str = "manifest") -> TakeManifest:
        """Validate a decoded manifest object: format, version, then every field."""
        if not isinstance(data, dict):
            raise TakeError(f"{where}: expected a JSON object, got {type(data).__name__}")
        if data.get("format") != FORMAT_NAME:
            got = _show(data.get("format")) if "format" in data else "nothing"
            raise TakeError(f"{where}: field 'format': expected {FORMAT_NAME!r}, got {got}")
        version = data.get("format_version")
        if not _is_int(version):
            raise TakeError(
                f"{where}: field 'format_version': expected an integer, got {_show(version)}"
            )
        if version != FORMAT_VERSION:
            raise TakeError(
                f"{where}: format_version {version}, this handmocap reads {FORMAT_VERSION}"
            )
        fields = {k: v for k, v in data.items() if k not in ("format", "format_version")}
        problem = _manifest_problem(fields) or _source_problem(fields.get("source"))
        if problem:
            raise TakeError(f"{where}: {problem}")
        source = fields.pop("source")
        return cls(source=SourceVideo(**source) if source is not None else None, **fields)

    def resume_conflicts(self, requested: TakeManifest) -> list[str]:
        """Why a writer asked for ``requested`` cannot continue this take (empty if it can)."""
        mine, theirs = self.to_dict(), requested.to_dict()
        out = [
            f"{name} is {_show(mine[name])} in the take but {_show(theirs[name])} now"
            for name in self.RESUME_FIELDS
            if mine[name] != theirs[name]
        ]
        a, b = self.source, requested.source
        if (a is None) != (b is None) or (a and b and not a.same_footage(b)):
            out.insert(0, "source is another video (size or first MiB differ)")
        return out


_MANIFEST_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "fps": _check_positive,
    "width": _check_size,
    "height": _check_size,
    "backend": _check_name,
    "hand_model": _check_name,
    "focal_length": _check_positive,
    "source": lambda value: None,  # checked by _source_problem or SourceVideo itself
    "frame_count": _check_optional_count,
    "start_frame": _check_count,
    "checkpoint": _check_optional_name,
    "settings": _check_settings,
    "created": _check_time,
    "complete": _check_bool,
    "frames_written": _check_optional_count,
}


def _fields_problem(fields: Mapping[str, Any], checks: Mapping[str, Any], owner: str) -> str | None:
    """The first unexpected, missing or invalid field against ``checks``; ``owner`` prefixes
    the field names (``"source."``) so that the message names the field in full."""
    for name in fields:
        if name not in checks:
            return f"unexpected field {_show(owner + str(name))}"
    for name, check in checks.items():
        if name not in fields:
            return f"missing field '{owner}{name}'"
        problem = check(fields[name])
        if problem:
            return f"field '{owner}{name}': {problem}"
    return None


def _manifest_problem(fields: Mapping[str, Any]) -> str | None:
    """The first problem in a manifest's fields (without format/version), or None."""
    problem = _fields_problem(fields, _MANIFEST_CHECKS, "")
    if problem is None and fields["complete"] and fields["frames_written"] is None:
        return "field 'frames_written': a complete take must record how many frames it holds"
    return problem


def _source_problem(source: Any) -> str | None:
    """The first problem in a decoded ``source`` object (null is fine), or None."""
    if source is None:
        return None
    if not isinstance(source, dict):
        return f"field 'source': expected an object or null, got {_show(source)}"
    return _fields_problem(source, _SOURCE_CHECKS, "source.")


def read_manifest(path: PathLike) -> TakeManifest:
    """Read and validate the manifest of the take directory ``path`` (no chunk is read)."""
    root = Path(path)
    file = root / MANIFEST_NAME
    if not root.is_dir():
        what = "does not exist" if not root.exists() else "is not a directory"
        raise TakeError(f"{root}: {what}; a take is a directory holding {MANIFEST_NAME}")
    try:
        if file.stat().st_size > _MAX_MANIFEST_BYTES:
            raise TakeError(f"{file}: too large for a take manifest")
        text = file.read_bytes()
    except FileNotFoundError as exc:
        raise TakeError(f"{file}: missing; {root} is not a take") from exc
    except OSError as exc:
        raise TakeError(f"{file}: cannot read ({exc.strerror})") from exc
    return TakeManifest.from_json(text, str(file))


# --------------------------------------------------------------------------------------------
# Chunk arrays: one validation for the writer and the reader


def chunk_name(first: int, last: int) -> str:
    """File name of the chunk holding video frames ``first..last`` (inclusive)."""
    return f"{first:08d}-{last:08d}.npz"


def blank_frames(frame_index: ArrayLike, timestamp: ArrayLike) -> Frames:
    """A batch of frames with both hands absent, ready for the capture to fill in.

    Float fields are NaN, ``present`` False and ``status`` :attr:`HandStatus.NOT_DETECTED`.
    """
    index = np.asarray(frame_index, dtype=np.int64).reshape(-1)
    times = np.asarray(timestamp, dtype=np.float64).reshape(-1)
    if times.shape != index.shape:
        raise ValueError(f"{len(index)} frame indices but {len(times)} timestamps")
    out: Frames = {"frame_index": index.copy(), "timestamp": times.copy()}
    for name, spec in ARRAY_FIELDS.items():
        if name in out:
            continue
        fill = {"b": False, "u": HandStatus.NOT_DETECTED}.get(spec.dtype.kind, np.nan)
        out[name] = np.full((len(index), *spec.shape), fill, dtype=spec.dtype)
    return out


def _check_names(names: Iterable[Any], where: str) -> None:
    """Exactly the fields of ARRAY_FIELDS, or one TakeError naming the first missing/extra."""
    names = set(names)
    missing = [name for name in ARRAY_FIELDS if name not in names]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise TakeError(f"{where}: missing field {missing[0]!r}{more}")
    extra = sorted((name for name in names if name not in ARRAY_FIELDS), key=str)
    if extra:
        raise TakeError(f"{where}: unexpected field {_show(extra[0])}")


def _expected_shape(count: int | None, spec: FieldSpec) -> str:
    dims = ["T" if count is None else str(count), *map(str, spec.shape)]
    return f"({dims[0]},)" if len(dims) == 1 else f"({', '.join(dims)})"


def _check_array(value: Any, name: str, count: int | None, where: str) -> int:
    """Check one array's dtype and shape (``count`` frames if known); return its frame count."""
    spec = ARRAY_FIELDS[name]
    if not isinstance(value, np.ndarray):
        raise TakeError(f"{where}: field {name!r} is not an array")
    if value.dtype != spec.dtype:
        raise TakeError(f"{where}: field {name!r} has dtype {value.dtype}, expected {spec.dtype}")
    ok = value.ndim == 1 + len(spec.shape) and value.shape[1:] == spec.shape
    if not ok or (count is not None and value.shape[0] != count):
        raise TakeError(
            f"{where}: field {name!r} has shape {value.shape}, "
            f"expected {_expected_shape(count, spec)}"
        )
    return int(value.shape[0])


def _check_frames(arrays: Mapping[str, Any], where: str, count: int | None = None) -> int:
    """Validate a batch of frames (names, dtypes, shapes, values); return its frame count."""
    _check_names(arrays.keys(), where)
    for name in ARRAY_FIELDS:
        count = _check_array(arrays[name], name, count, where)
    assert count is not None
    _check_frame_index(arrays["frame_index"], where)
    for side in HANDS:
        _check_status(arrays, side, where)
    return count


def _check_frame_index(index: np.ndarray, where: str) -> None:
    if index.size and index[0] < 0:
        raise TakeError(f"{where}: field 'frame_index' starts at {index[0]}, expected >= 0")
    steps = np.flatnonzero(np.diff(index) != 1)
    if steps.size:
        i = steps[0]
        raise TakeError(
            f"{where}: field 'frame_index' is not consecutive: "
            f"{index[i]} is followed by {index[i + 1]}"
        )


def _check_status(arrays: Mapping[str, np.ndarray], side: str, where: str) -> None:
    status, present = arrays[f"{side}_status"], arrays[f"{side}_present"]
    index = arrays["frame_index"]
    bad = np.flatnonzero(status > max(HandStatus))
    if bad.size:
        i = bad[0]
        codes = ", ".join(f"{s.value} {s.name.lower()}" for s in HandStatus)
        raise TakeError(
            f"{where}: field '{side}_status' holds {status[i]} at frame {index[i]}; "
            f"the codes are {codes}"
        )
    bad = np.flatnonzero(present != (status == HandStatus.OK))
    if bad.size:
        i = bad[0]
        raise TakeError(
            f"{where}: field '{side}_present' is {bool(present[i])} at frame {index[i]} "
            f"but '{side}_status' is {HandStatus(status[i]).name}"
        )


def _coerce_frames(frames: Mapping[str, ArrayLike], where: str) -> Frames:
    """Copy a caller's batch into the take's dtypes (only value-preserving kinds of cast)."""
    _check_names(frames.keys(), where)
    out: Frames = {}
    for name, spec in ARRAY_FIELDS.items():
        try:
            value = np.asarray(frames[name])
        except (TypeError, ValueError) as exc:
            raise TakeError(f"{where}: field {name!r} is not an array ({exc})") from exc
        integers = value.dtype.kind in "iu" and spec.dtype.kind in "iu"  # values checked below
        if not (integers or np.can_cast(value.dtype, spec.dtype, casting="same_kind")):
            raise TakeError(
                f"{where}: field {name!r} has dtype {value.dtype}, "
                f"which does not convert to {spec.dtype}"
            )
        converted = np.array(value, dtype=spec.dtype, copy=True)
        if spec.dtype.kind in "biu" and not np.array_equal(converted, value):
            raise TakeError(f"{where}: field {name!r} holds values outside {spec.dtype}")
        out[name] = converted
    return out


# --------------------------------------------------------------------------------------------
# Files: atomic writes, chunk listing and loading


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (POSIX; a no-op where directories can't be opened)."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_path(final: Path) -> Path:
    return final.with_name(f".{final.name}.{os.getpid()}-{secrets.token_hex(4)}{_TEMP_SUFFIX}")


def _atomic_write(final: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``final`` through a fsynced temporary file and a rename: whole or not at all."""
    temp = _temp_path(final)
    try:
        with temp.open("xb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    _fsync_dir(final.parent)


def _write_manifest(root: Path, manifest: TakeManifest) -> None:
    text = manifest.to_json().encode("utf-8")
    _atomic_write(root / MANIFEST_NAME, lambda f: f.write(text))


def _remove_temp_files(directory: Path) -> None:
    """Delete the temporary files a killed writer left in ``directory``."""
    if directory.is_dir():
        for path in directory.glob(f".*{_TEMP_SUFFIX}"):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


class _DirectoryLock:
    """An exclusive advisory lock on a take directory, so that two writers never interleave.

    POSIX ``flock`` on the directory itself: nothing is left on disk, and the system drops the
    lock when the process dies. Where ``fcntl`` does not exist (Windows) there is no lock.
    """

    def __init__(self, directory: Path) -> None:
        self._fd: int | None = None
        try:
            import fcntl
        except ImportError:
            return
        fd = os.open(directory, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            raise TakeError(f"{directory}: another writer has this take open") from exc
        self._fd = fd

    def release(self) -> None:
        """Drop the lock (does nothing twice)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class _ChunkFile(NamedTuple):
    first: int
    last: int
    path: Path


def _list_chunks(root: Path, start_frame: int) -> list[_ChunkFile]:
    """The take's chunk files in frame order, checked to follow each other from start_frame."""
    directory = root / CHUNKS_DIR
    if not directory.exists():
        return []
    try:
        names = sorted(p.name for p in directory.iterdir())
    except OSError as exc:
        raise TakeError(f"{directory}: cannot list ({exc.strerror})") from exc
    chunks = []
    for name in names:
        if name.startswith(".") or not name.endswith(".npz"):
            continue  # temporary or set-aside files, and anything that is not a chunk
        match = _CHUNK_NAME.fullmatch(name)
        first, last = (int(match[1]), int(match[2])) if match else (1, 0)
        if first > last:
            raise TakeError(
                f"{directory / name}: not a chunk name (FIRST-LAST.npz with FIRST <= LAST, "
                f"e.g. {chunk_name(0, 63)})"
            )
        chunks.append(_ChunkFile(first, last, directory / name))
    chunks.sort()
    _check_sequence(chunks, start_frame)
    return chunks


def _check_sequence(chunks: list[_ChunkFile], start_frame: int) -> None:
    """No gap, no overlap, and the first chunk at the manifest's start_frame."""
    expected, previous = start_frame, None
    for chunk in chunks:
        if chunk.first != expected:
            if previous is None:
                problem = f"starts at frame {chunk.first}, the take's start_frame is {expected}"
            elif chunk.first > expected:
                problem = f"frames {expected}..{chunk.first - 1} are missing before it"
            else:
                problem = f"overlaps {previous.path.name}"
            raise TakeError(f"{chunk.path}: {problem}")
        expected, previous = chunk.last + 1, chunk


def _describe(exc: BaseException) -> str:
    return _show(f"{type(exc).__name__}: {exc}", 160)


def _load_chunk(chunk: _ChunkFile) -> Frames:
    """Load and validate one chunk; every failure is a TakeError naming the file and field."""
    where = str(chunk.path)
    count = chunk.last - chunk.first + 1
    try:
        archive = np.load(chunk.path, allow_pickle=False)
    except Exception as exc:  # np.load fails in many ways on damaged bytes; all mean the same
        raise TakeError(
            f"{where}: cannot read the chunk, truncated or corrupt ({_describe(exc)})"
        ) from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise TakeError(f"{where}: not an .npz archive of arrays")
    with archive:
        _check_names(archive.files, where)
        sizes = {
            info.filename.removesuffix(".npy"): info.file_size for info in archive.zip.infolist()
        }
        arrays = {
            name: _load_member(archive, name, sizes.get(name, 0), count, where)
            for name in ARRAY_FIELDS
        }
    _check_frames(arrays, where, count)
    if arrays["frame_index"][0] != chunk.first:
        raise TakeError(
            f"{where}: field 'frame_index' starts at {arrays['frame_index'][0]}, "
            f"the chunk name says {chunk.first}"
        )
    return arrays


def _load_member(archive: Any, name: str, size: int, count: int, where: str) -> np.ndarray:
    """One array of a chunk, refusing members far larger than ``count`` frames can need."""
    spec = ARRAY_FIELDS[name]
    limit = 16 * count * math.prod(spec.shape) * spec.dtype.itemsize + (1 << 20)
    if size > limit:
        raise TakeError(
            f"{where}: field {name!r} holds {size} bytes, far more than "
            f"{count} frames need; corrupt chunk"
        )
    try:
        value = archive[name]
    except Exception as exc:  # zip CRC, zlib, npy header or pickle refusal: all corruption
        raise TakeError(
            f"{where}: field {name!r} cannot be read, truncated or corrupt ({_describe(exc)})"
        ) from exc
    if not isinstance(value, np.ndarray):
        raise TakeError(f"{where}: field {name!r} is not a .npy array")
    if value.dtype != spec.dtype and value.dtype.newbyteorder("=") == spec.dtype:
        value = value.astype(spec.dtype)  # written on a machine of the other byte order
    return value


# --------------------------------------------------------------------------------------------
# Reading


def _readable_chunks(root: Path, start_frame: int) -> tuple[list[_ChunkFile], list[_ChunkFile]]:
    """(the chunks that read back, the unreadable ones after them: what a crash left).

    Damage before a readable chunk is not a crash's doing: it raises, for the user to decide.
    """
    chunks = _list_chunks(root, start_frame)
    errors: list[TakeError | None] = []
    for chunk in chunks:
        try:
            _load_chunk(chunk)
            errors.append(None)
        except TakeError as exc:
            errors.append(exc)
    good = len(errors)
    while good and errors[good - 1] is not None:
        good -= 1
    damaged = next((e for e in errors[:good] if e is not None), None)
    if damaged is not None:
        raise damaged
    return chunks[:good], chunks[good:]


def resume_frame(path: PathLike) -> int | None:
    """The frame a ``TakeWriter`` on ``path`` would continue at: after the last readable
    chunk of an unfinished take; None where there is no take, or a complete one. Reads only."""
    root = Path(path)
    if not (root / MANIFEST_NAME).is_file():
        return None
    manifest = read_manifest(root)
    if manifest.complete:
        return None
    good, _ = _readable_chunks(root, manifest.start_frame)
    return good[-1].last + 1 if good else manifest.start_frame


@dataclass(frozen=True)
class Take:
    """A take read from disk: its manifest and the concatenated, read-only per-frame arrays."""

    path: Path
    manifest: TakeManifest
    arrays: Mapping[str, np.ndarray]
    chunks: tuple[Path, ...]

    @property
    def num_frames(self) -> int:
        """Number of frames in the take (rows of every array)."""
        return int(self.arrays["frame_index"].shape[0])

    @property
    def num_chunks(self) -> int:
        return len(self.chunks)

    def hand(self, side: str) -> dict[str, np.ndarray]:
        """One hand's arrays without the side prefix: ``take.hand("left")["joints3d"]``."""
        if side not in HANDS:
            raise ValueError(f"side must be one of {HANDS}, got {side!r}")
        return {name: self.arrays[f"{side}_{name}"] for name in HAND_FIELDS}


def _empty_frames() -> Frames:
    return {name: np.empty((0, *spec.shape), spec.dtype) for name, spec in ARRAY_FIELDS.items()}


def read_take(path: PathLike) -> Take:
    """Read and check a whole take: manifest, every chunk, and their continuity.

    An incomplete take (capture stopped or still running) reads as the frames finished so far.
    """
    root = Path(path)
    manifest = read_manifest(root)
    chunks = _list_chunks(root, manifest.start_frame)
    parts = [_load_chunk(chunk) for chunk in chunks] or [_empty_frames()]
    arrays = {name: np.concatenate([part[name] for part in parts]) for name in ARRAY_FIELDS}
    for value in arrays.values():
        value.setflags(write=False)
    count = len(arrays["frame_index"])
    if manifest.complete and manifest.frames_written != count:
        raise TakeError(
            f"{root / MANIFEST_NAME}: field 'frames_written' is {manifest.frames_written} "
            f"but the chunks hold {count} frames; chunks are missing"
        )
    return Take(root, manifest, MappingProxyType(arrays), tuple(c.path for c in chunks))


def summarize(take: Take) -> dict[str, Any]:
    """A JSON-ready summary of a take (what ``handmocap info`` prints).

    Keys: path, source, created, complete, frames, frame_count (expected, or None), first_frame
    and last_frame (None when empty), fps, duration_s, width, height, focal_length, backend,
    checkpoint, hand_model, chunks, hands_per_frame ({"0", "1", "2"}: frames with that many
    hands present), detection_rate (per side: fraction of frames present, None when empty) and
    status (per side: frames per :class:`HandStatus` name, lower case) and gaps (per side:
    runs of frames without the hand: count, longest, frames).
    """
    m, count = take.manifest, take.num_frames
    index = take.arrays["frame_index"]
    present = np.stack([take.arrays[f"{side}_present"] for side in HANDS])
    per_frame = np.bincount(present.sum(axis=0), minlength=len(HANDS) + 1)
    status = {
        side: {
            s.name.lower(): int(np.count_nonzero(take.arrays[f"{side}_status"] == s))
            for s in HandStatus
        }
        for side in HANDS
    }
    return {
        "path": str(take.path),
        "source": m.source.path if m.source else None,
        "created": m.created,
        "complete": m.complete,
        "frames": count,
        "frame_count": m.frame_count,
        "first_frame": int(index[0]) if count else None,
        "last_frame": int(index[-1]) if count else None,
        "fps": m.fps,
        "duration_s": count / m.fps,
        "width": m.width,
        "height": m.height,
        "focal_length": m.focal_length,
        "backend": m.backend,
        "checkpoint": m.checkpoint,
        "hand_model": m.hand_model,
        "chunks": take.num_chunks,
        "hands_per_frame": {str(k): int(n) for k, n in enumerate(per_frame)},
        "detection_rate": {
            side: float(present[i].mean()) if count else None for i, side in enumerate(HANDS)
        },
        "status": status,
        "gaps": {side: _gaps(present[i]) for i, side in enumerate(HANDS)},
    }


def _gaps(present: np.ndarray) -> dict[str, int]:
    """Runs of frames without the hand: how many, the longest, and frames missing in all."""
    missing = ~present
    edges = np.diff(np.concatenate([[0], missing.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    lengths = stops - starts
    return {
        "count": int(len(lengths)),
        "longest": int(lengths.max()) if len(lengths) else 0,
        "frames": int(missing.sum()),
    }


# --------------------------------------------------------------------------------------------
# Writing


class TakeWriter:
    """Write a take chunk by chunk; resume an incomplete one.

    Use it as a context manager::

        with TakeWriter("clip.take", manifest) as writer:
            for batch in capture(start=writer.next_frame):
                writer.append(batch)

    Leaving the block normally flushes the last frames and marks the take complete. Leaving it
    by an exception (including Ctrl-C) flushes the frames appended so far but leaves the take
    incomplete, so that a later writer resumes it. A process killed outright, or a writer
    dropped without :meth:`close`, keeps every chunk finished before and loses the frames
    still buffered (fewer than ``chunk_size``).

    Opening an existing incomplete take resumes it when its manifest agrees with ``manifest``
    on :attr:`TakeManifest.RESUME_FIELDS` and the source footage; the take keeps its original
    manifest (creation time included). Stray temporary files are deleted. Chunks at the end
    that cannot be read (the last thing a crash can damage) are renamed to hidden
    ``.NAME.npz.damaged`` files and their frames are captured again: see :attr:`set_aside`.
    """

    def __init__(self, path: PathLike, manifest: TakeManifest, chunk_size: int = 64) -> None:
        if not _is_int(chunk_size) or chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
        self.path = Path(path)
        self.chunk_size = chunk_size
        self.set_aside: list[Path] = []
        self._chunks_dir = self.path / CHUNKS_DIR
        self._pending: Frames | None = None
        self._closed = False
        if self.path.exists() and not self.path.is_dir():
            raise TakeError(f"{self.path}: exists and is not a directory")
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock = _DirectoryLock(self.path)
        try:
            if (self.path / MANIFEST_NAME).exists():
                self.manifest = self._resume(manifest)
            else:
                self.manifest = self._start(manifest)
            self._chunks_dir.mkdir(exist_ok=True)
        except BaseException:
            self._lock.release()
            raise

    # -- public

    @property
    def next_frame(self) -> int:
        """The video frame index the next :meth:`append` must start with."""
        return self._on_disk_next + self._pending_count

    @property
    def frames_on_disk(self) -> int:
        """Frames in finished chunks (what survives if the process dies now)."""
        return self._on_disk_next - self.manifest.start_frame

    def append(self, frames: Mapping[str, ArrayLike]) -> None:
        """Add a batch of consecutive frames (every field of :data:`ARRAY_FIELDS`, T rows).

        Values are copied and cast to the take's dtypes where that keeps their kind (float64
        joints become float32; floats never become integers). Full chunks go to disk at once.
        """
        self._check_open()
        where = f"{self.path}: append"
        batch = _coerce_frames(frames, where)
        count = _check_frames(batch, where)
        if count == 0:
            return
        if batch["frame_index"][0] != self.next_frame:
            raise TakeError(
                f"{where}: field 'frame_index' starts at {batch['frame_index'][0]}, "
                f"the take continues at frame {self.next_frame}"
            )
        if self._pending is not None:
            batch = {k: np.concatenate([self._pending[k], batch[k]]) for k in ARRAY_FIELDS}
        self._pending = batch
        self._flush(full_chunks_only=True)

    def close(self) -> None:
        """Write the remaining frames and mark the take complete (does nothing twice)."""
        if self._closed:
            return
        self._flush(full_chunks_only=False)
        self._closed = True
        self.manifest = dataclasses.replace(
            self.manifest, complete=True, frames_written=self.frames_on_disk
        )
        _write_manifest(self.path, self.manifest)
        self._lock.release()

    def __enter__(self) -> TakeWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
            return
        self._closed = True
        try:
            self._flush(full_chunks_only=False)
        except Exception as flush_error:  # keep the original exception; say what was lost
            exc.add_note(
                f"handmocap: frames from {self._on_disk_next} on were not saved "
                f"to {self.path}: {flush_error}"
            )
        finally:
            self._lock.release()

    def __del__(self) -> None:
        # A writer dropped without close() (its process going on) lets another writer resume.
        lock = getattr(self, "_lock", None)
        if lock is not None:
            lock.release()

    # -- internals

    @property
    def _pending_count(self) -> int:
        return 0 if self._pending is None else len(self._pending["frame_index"])

    def _check_open(self) -> None:
        if self._closed:
            raise TakeError(f"{self.path}: the writer is closed")

    def _start(self, manifest: TakeManifest) -> TakeManifest:
        if self._chunks_dir.is_dir() and any(
            p.suffix == ".npz" and not p.name.startswith(".") for p in self._chunks_dir.iterdir()
        ):
            raise TakeError(
                f"{self.path}: holds chunks but no {MANIFEST_NAME}; "
                f"not starting a new take over them"
            )
        fresh = dataclasses.replace(manifest, complete=False, frames_written=None)
        _write_manifest(self.path, fresh)
        self._on_disk_next = fresh.start_frame
        return fresh

    def _resume(self, manifest: TakeManifest) -> TakeManifest:
        file = self.path / MANIFEST_NAME
        existing = read_manifest(self.path)
        if existing.complete:
            raise TakeError(f"{file}: the take is complete; a finished take is never rewritten")
        conflicts = existing.resume_conflicts(manifest)
        if conflicts:
            raise TakeError(f"{file}: cannot resume this take: {'; '.join(conflicts)}")
        _remove_temp_files(self.path)
        _remove_temp_files(self._chunks_dir)
        self._on_disk_next = self._resume_point(existing.start_frame)
        return existing

    def _resume_point(self, start_frame: int) -> int:
        """Check the finished chunks; set aside unreadable ones at the end; return next frame."""
        good, tail = _readable_chunks(self.path, start_frame)
        for chunk in tail:
            target = chunk.path.with_name(f".{chunk.path.name}{_SET_ASIDE_SUFFIX}")
            os.replace(chunk.path, target)
            self.set_aside.append(target)
        return good[-1].last + 1 if good else start_frame

    def _flush(self, full_chunks_only: bool) -> None:
        """Write pending frames as chunks of chunk_size (and the remainder unless told not to)."""
        while self._pending is not None:
            count = self._pending_count
            if count < self.chunk_size and full_chunks_only:
                return
            cut = min(count, self.chunk_size)
            chunk = {k: v[:cut] for k, v in self._pending.items()}
            self._write_chunk(chunk)
            rest = {k: v[cut:] for k, v in self._pending.items()}
            self._pending = rest if cut < count else None

    def _write_chunk(self, chunk: Frames) -> None:
        first, last = int(chunk["frame_index"][0]), int(chunk["frame_index"][-1])
        final = self._chunks_dir / chunk_name(first, last)
        _atomic_write(final, lambda f: np.savez_compressed(f, **chunk))
        self._on_disk_next = last + 1
