"""The take format: round trips, chunking, interruption and resume, and bad input of every kind."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handmocap.core.errors import TakeError
from handmocap.core.take import (
    ARRAY_FIELDS,
    FORMAT_VERSION,
    HAND_FIELDS,
    HANDS,
    HandStatus,
    SourceVideo,
    TakeManifest,
    TakeWriter,
    blank_frames,
    chunk_name,
    read_manifest,
    read_take,
    summarize,
)

SOURCE = SourceVideo(path="/videos/clip.mp4", size=123456, sha256_head="ab" * 32)


def make_manifest(**changes: object) -> TakeManifest:
    """A valid manifest of a 30 fps 640x480 capture, with ``changes`` applied."""
    fields: dict[str, object] = dict(
        fps=30.0,
        width=640,
        height=480,
        backend="acr",
        hand_model="openhand-v1",
        focal_length=800.0,
        source=SOURCE,
        frame_count=300,
        checkpoint="wild.pkl",
        settings={"score_threshold": 0.5, "tracking": {"max_jump_m": 0.2}},
    )
    fields.update(changes)
    return TakeManifest(**fields)  # type: ignore[arg-type]


def make_frames(start: int, count: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Deterministic frames ``start..start+count-1``: hands present, missing (NaN) or low score.

    The values depend only on the frame index, so any split into batches gives the same take.
    """
    index = np.arange(start, start + count)
    frames = blank_frames(index, index / 30.0)
    for side_number, side in enumerate(HANDS):
        for row, frame in enumerate(index):
            rng = np.random.default_rng([seed, side_number, int(frame)])
            state = rng.integers(0, 4)  # 0, 1: present; 2: not detected; 3: low score (kept)
            if state == 2:
                continue
            status = HandStatus.LOW_SCORE if state == 3 else HandStatus.OK
            frames[f"{side}_status"][row] = status
            frames[f"{side}_present"][row] = status == HandStatus.OK
            for name, spec in HAND_FIELDS.items():
                if spec.dtype.kind == "f":
                    frames[f"{side}_{name}"][row] = rng.standard_normal(spec.shape)
    return frames


def slice_frames(frames: dict[str, np.ndarray], start: int, stop: int) -> dict[str, np.ndarray]:
    return {name: value[start:stop] for name, value in frames.items()}


def write_take(
    path: Path,
    count: int,
    chunk_size: int = 64,
    batch: int = 50,
    manifest: TakeManifest | None = None,
) -> dict[str, np.ndarray]:
    """Write a complete take of ``count`` frames in batches; return the frames written."""
    frames = make_frames(0, count)
    with TakeWriter(path, manifest or make_manifest(), chunk_size=chunk_size) as writer:
        for start in range(0, count, batch):
            writer.append(slice_frames(frames, start, start + batch))
    return frames


def assert_bit_exact(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    """Same fields, dtypes, shapes and bytes (NaN included)."""
    assert set(got) == set(want) == set(ARRAY_FIELDS)
    for name, spec in ARRAY_FIELDS.items():
        assert got[name].dtype == spec.dtype, name
        assert got[name].shape == want[name].shape, name
        assert got[name].tobytes() == want[name].tobytes(), name


def chunk_files(take: Path) -> list[str]:
    return sorted(p.name for p in (take / "chunks").iterdir())


def rewrite_chunk(chunk: Path, mutate: Callable[[dict[str, np.ndarray]], None]) -> None:
    """Load a chunk, let ``mutate`` change its dict of arrays, and save it back."""
    with np.load(chunk) as archive:
        arrays = dict(archive)
    mutate(arrays)
    with chunk.open("wb") as f:
        np.savez(f, **arrays)


def take_error(path: Path, *needles: str) -> str:
    """Read ``path``, expect one TakeError of one line containing every needle; return it."""
    with pytest.raises(TakeError) as caught:
        read_take(path)
    message = str(caught.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, (needle, message)
    return message


# ------------------------------------------------------------------------------------------
# Round trips and chunking


def test_round_trip_is_bit_exact(tmp_path: Path) -> None:
    take_dir = tmp_path / "clip.take"
    frames = write_take(take_dir, 200, chunk_size=64, batch=37)
    take = read_take(take_dir)
    assert_bit_exact(dict(take.arrays), frames)
    assert take.num_frames == 200
    assert take.num_chunks == 4
    assert np.isnan(take.hand("left")["joints3d"][~take.hand("left")["present"]]).any()
    assert take.manifest.complete and take.manifest.frames_written == 200
    assert dataclasses.replace(
        take.manifest, complete=False, frames_written=None
    ) == dataclasses.replace(make_manifest(), created=take.manifest.created)
    assert not take.arrays["left_joints3d"].flags.writeable  # the raw record stays raw


@pytest.mark.parametrize(
    ("count", "chunk_size", "names"),
    [
        (0, 4, []),
        (1, 4, ["00000000-00000000"]),
        (4, 4, ["00000000-00000003"]),
        (5, 4, ["00000000-00000003", "00000004-00000004"]),
        (9, 4, ["00000000-00000003", "00000004-00000007", "00000008-00000008"]),
        (130, 64, ["00000000-00000063", "00000064-00000127", "00000128-00000129"]),
    ],
)
def test_chunk_boundaries(tmp_path: Path, count: int, chunk_size: int, names: list[str]) -> None:
    take_dir = tmp_path / "clip.take"
    frames = write_take(take_dir, count, chunk_size=chunk_size, batch=3)
    assert chunk_files(take_dir) == [f"{name}.npz" for name in names]
    take = read_take(take_dir)
    assert take.num_frames == count
    assert_bit_exact(dict(take.arrays), frames)
    assert summarize(take)["hands_per_frame"] == {
        str(k): int((frames["left_present"].astype(int) + frames["right_present"] == k).sum())
        for k in range(3)
    }


@settings(max_examples=15, deadline=None)
@given(
    count=st.integers(0, 90),
    chunk_size=st.integers(1, 40),
    cuts=st.lists(st.integers(0, 90), max_size=6),
)
def test_any_batching_gives_the_same_take(count: int, chunk_size: int, cuts: list[int]) -> None:
    frames = make_frames(0, count)
    bounds = sorted({0, count, *(c for c in cuts if c < count)})
    with tempfile.TemporaryDirectory() as tmp:
        take_dir = Path(tmp) / "clip.take"
        with TakeWriter(take_dir, make_manifest(), chunk_size=chunk_size) as writer:
            for start, stop in zip(bounds, bounds[1:], strict=False):
                writer.append(slice_frames(frames, start, stop))
        take = read_take(take_dir)
        assert take.num_chunks == math.ceil(count / chunk_size)
        assert_bit_exact(dict(take.arrays), frames)


def test_take_may_start_later_in_the_video(tmp_path: Path) -> None:
    take_dir = tmp_path / "late.take"
    frames = make_frames(1000, 70)
    with TakeWriter(take_dir, make_manifest(start_frame=1000), chunk_size=64) as writer:
        assert writer.next_frame == 1000
        writer.append(frames)
    assert chunk_files(take_dir) == ["00001000-00001063.npz", "00001064-00001069.npz"]
    assert_bit_exact(dict(read_take(take_dir).arrays), frames)


def test_append_casts_compatible_dtypes_and_copies(tmp_path: Path) -> None:
    frames = make_frames(0, 10)
    given_frames = {
        k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in frames.items()
    }
    given_frames["left_status"] = frames["left_status"].astype(np.int64)
    with TakeWriter(tmp_path / "t.take", make_manifest(), chunk_size=64) as writer:
        writer.append(given_frames)
        given_frames["left_joints3d"][:] = 5.0  # the writer holds its own copy
    assert_bit_exact(dict(read_take(tmp_path / "t.take").arrays), frames)


def test_hand_and_summary(tmp_path: Path) -> None:
    take_dir = tmp_path / "clip.take"
    frames = write_take(take_dir, 100)
    take = read_take(take_dir)
    left = take.hand("left")
    assert set(left) == set(HAND_FIELDS)
    assert left["hand_pose"].shape == (100, 15, 3)
    with pytest.raises(ValueError):
        take.hand("middle")
    summary = summarize(take)
    json.dumps(summary)  # JSON-ready
    present = frames["left_present"].astype(int) + frames["right_present"]
    assert summary["frames"] == 100 and summary["chunks"] == 2 and summary["complete"]
    assert summary["duration_s"] == pytest.approx(100 / 30)
    assert summary["hands_per_frame"] == {str(k): int((present == k).sum()) for k in range(3)}
    assert summary["detection_rate"]["right"] == pytest.approx(frames["right_present"].mean())
    assert sum(summary["status"]["left"].values()) == 100


# ------------------------------------------------------------------------------------------
# Interruption and resume


def test_interrupted_writer_resumes_to_the_uninterrupted_result(tmp_path: Path) -> None:
    reference = write_take(tmp_path / "reference.take", 300)

    take_dir = tmp_path / "clip.take"
    with pytest.raises(RuntimeError, match="capture crashed"):
        with TakeWriter(take_dir, make_manifest(), chunk_size=64) as writer:
            for start in range(0, 150, 50):
                writer.append(slice_frames(reference, start, start + 50))
            raise RuntimeError("capture crashed")
    stopped = read_take(take_dir)  # every finished frame is readable, the take is incomplete
    assert not stopped.manifest.complete and stopped.manifest.frames_written is None
    assert_bit_exact(dict(stopped.arrays), slice_frames(reference, 0, 150))

    # What a crash at a bad moment could leave: a temporary file and a damaged last chunk.
    stray = take_dir / "chunks" / ".00000150-00000213.npz.999-abcd1234.tmp"
    stray.write_bytes(b"half a chunk")
    damaged = take_dir / "chunks" / "00000150-00000213.npz"
    whole = (take_dir / "chunks" / "00000000-00000063.npz").read_bytes()
    damaged.write_bytes(whole[: len(whole) // 2])
    take_error(take_dir, str(damaged))

    with TakeWriter(take_dir, make_manifest(), chunk_size=64) as writer:
        assert writer.next_frame == 150
        assert writer.set_aside == [damaged.with_name(".00000150-00000213.npz.damaged")]
        assert not stray.exists()
        writer.append(slice_frames(reference, 150, 300))
    resumed = read_take(take_dir)
    assert resumed.manifest.complete and resumed.manifest.frames_written == 300
    assert resumed.manifest.created == stopped.manifest.created
    assert_bit_exact(dict(resumed.arrays), reference)


def test_killed_writer_keeps_finished_chunks(tmp_path: Path) -> None:
    take_dir = tmp_path / "clip.take"
    frames = make_frames(0, 200)
    writer = TakeWriter(take_dir, make_manifest(), chunk_size=64)
    writer.append(slice_frames(frames, 0, 100))
    assert writer.frames_on_disk == 64 and writer.next_frame == 100
    del writer  # killed: never closed, pending frames lost
    take = read_take(take_dir)
    assert take.num_frames == 64 and not take.manifest.complete

    with TakeWriter(take_dir, make_manifest(), chunk_size=64) as writer:
        assert writer.next_frame == 64
        writer.append(slice_frames(frames, 64, 200))
    assert_bit_exact(dict(read_take(take_dir).arrays), frames)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"backend": "dir"}, "backend is 'acr' in the take but 'dir' now"),
        ({"settings": {"score_threshold": 0.7}}, "settings"),
        ({"fps": 25.0}, "fps"),
        ({"source": dataclasses.replace(SOURCE, size=1)}, "source is another video"),
        ({"source": None}, "source is another video"),
    ],
)
def test_resume_refuses_another_capture(tmp_path: Path, change: dict, reason: str) -> None:
    take_dir = tmp_path / "clip.take"
    with pytest.raises(KeyboardInterrupt):
        with TakeWriter(take_dir, make_manifest()) as writer:
            writer.append(make_frames(0, 10))
            raise KeyboardInterrupt
    with pytest.raises(TakeError, match="cannot resume") as caught:
        TakeWriter(take_dir, make_manifest(**change))
    assert reason in str(caught.value) and "manifest.json" in str(caught.value)
    moved = dataclasses.replace(SOURCE, path="/elsewhere/clip.mp4")  # same footage, moved
    TakeWriter(take_dir, make_manifest(source=moved)).close()


def test_complete_take_is_never_rewritten(tmp_path: Path) -> None:
    write_take(tmp_path / "clip.take", 10)
    with pytest.raises(TakeError, match="complete"):
        TakeWriter(tmp_path / "clip.take", make_manifest())


def test_resume_refuses_damage_before_good_chunks(tmp_path: Path) -> None:
    take_dir = tmp_path / "clip.take"
    frames = make_frames(0, 100)
    writer = TakeWriter(take_dir, make_manifest(), chunk_size=32)
    writer.append(frames)  # three chunks on disk, never closed
    del writer  # killed
    first = take_dir / "chunks" / "00000000-00000031.npz"
    first.write_bytes(first.read_bytes()[:100])
    with pytest.raises(TakeError, match="00000000-00000031.npz"):
        TakeWriter(take_dir, make_manifest(), chunk_size=32)


def test_writer_refuses_bad_batches(tmp_path: Path) -> None:
    frames = make_frames(0, 10)
    with TakeWriter(tmp_path / "t.take", make_manifest()) as writer:
        with pytest.raises(TakeError, match="missing field 'right_betas'"):
            writer.append({k: v for k, v in frames.items() if k != "right_betas"})
        with pytest.raises(TakeError, match="'frame_index' starts at 5"):
            writer.append(make_frames(5, 3))
        with pytest.raises(TakeError, match="'frame_index' has dtype float64"):
            writer.append({**frames, "frame_index": frames["frame_index"].astype(float)})
        with pytest.raises(TakeError, match=r"'left_joints3d' has shape \(10, 20, 3\)"):
            writer.append({**frames, "left_joints3d": frames["left_joints3d"][:, :20]})
        with pytest.raises(TakeError, match="'right_status' holds values outside uint8"):
            writer.append({**frames, "right_status": np.full(10, 259)})
        with pytest.raises(TakeError, match="'left_present' is"):
            writer.append({**frames, "left_present": ~frames["left_present"]})
        writer.append(frames)
    with pytest.raises(TakeError, match="closed"):
        writer.append(make_frames(10, 1))
    assert read_take(tmp_path / "t.take").num_frames == 10


def test_one_writer_at_a_time(tmp_path: Path) -> None:
    take_dir = tmp_path / "clip.take"
    with TakeWriter(take_dir, make_manifest()) as writer:
        writer.append(make_frames(0, 5))
        with pytest.raises(TakeError, match="another writer has this take open"):
            TakeWriter(take_dir, make_manifest())
    assert read_take(take_dir).num_frames == 5


def test_writer_refuses_a_file_as_take(tmp_path: Path) -> None:
    (tmp_path / "file.take").write_text("not a take")
    with pytest.raises(TakeError, match="not a directory"):
        TakeWriter(tmp_path / "file.take", make_manifest())


def test_writer_refuses_chunks_without_manifest(tmp_path: Path) -> None:
    take_dir = tmp_path / "clip.take"
    write_take(take_dir, 10)
    (take_dir / "manifest.json").unlink()
    with pytest.raises(TakeError, match="holds chunks but no manifest.json"):
        TakeWriter(take_dir, make_manifest())


# ------------------------------------------------------------------------------------------
# Manifest


def test_manifest_json_round_trip(tmp_path: Path) -> None:
    manifest = make_manifest(settings={"thresholds": (0.5, 0.6)})
    again = TakeManifest.from_json(manifest.to_json())
    assert again == manifest and again.settings == {"thresholds": [0.5, 0.6]}
    assert json.loads(manifest.to_json())["format_version"] == FORMAT_VERSION
    assert TakeManifest.from_json(make_manifest(source=None).to_json()).source is None


def test_source_video_identity(tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"x" * 3_000_000)
    source = SourceVideo.from_file(video)
    assert source.size == 3_000_000 and len(source.sha256_head) == 64
    video.write_bytes(b"x" * 2_000_000 + b"y" * 1_000_000)  # differs after the first MiB only
    assert SourceVideo.from_file(video).same_footage(source) is True
    with pytest.raises(TakeError, match="missing.mp4"):
        SourceVideo.from_file(tmp_path / "missing.mp4")


@pytest.mark.parametrize(
    ("change", "field"),
    [({"fps": 0}, "fps"), ({"width": 2.5}, "width"), ({"backend": ""}, "backend")],
)
def test_manifest_constructor_validates(change: dict, field: str) -> None:
    with pytest.raises(TakeError, match=f"field '{field}'"):
        make_manifest(**change)


# ------------------------------------------------------------------------------------------
# One clear error per bad take


@pytest.fixture
def good_take(tmp_path: Path) -> Path:
    """A complete take of 128 frames in two chunks of 64."""
    take_dir = tmp_path / "clip.take"
    write_take(take_dir, 128)
    return take_dir


def first_chunk(take_dir: Path) -> Path:
    return take_dir / "chunks" / "00000000-00000063.npz"


def edit_manifest(take_dir: Path, edit: Callable[[dict], None]) -> Path:
    path = take_dir / "manifest.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    return path


def test_missing_take_and_missing_manifest(tmp_path: Path, good_take: Path) -> None:
    take_error(tmp_path / "nowhere.take", "nowhere.take", "does not exist")
    (good_take / "manifest.json").unlink()
    take_error(good_take, str(good_take / "manifest.json"), "missing")


def test_corrupt_manifest(good_take: Path) -> None:
    manifest = good_take / "manifest.json"
    manifest.write_text('{"format": "handmocap-take", "format_ver')
    take_error(good_take, str(manifest), "not valid JSON")


@pytest.mark.parametrize(
    ("edit", "needles"),
    [
        (lambda d: d.pop("fps"), ["missing field 'fps'"]),
        (lambda d: d.update(width="640"), ["field 'width'", "'640'"]),
        (lambda d: d.update(complete="yes"), ["field 'complete'"]),
        (lambda d: d.update(source={"path": "a"}), ["field 'source.size'"]),
        (lambda d: d.update(format="something-else"), ["field 'format'"]),
        (lambda d: d.update(colour="blue"), ["unexpected field 'colour'"]),
    ],
)
def test_manifest_field_errors(good_take: Path, edit: Callable, needles: list[str]) -> None:
    path = edit_manifest(good_take, edit)
    take_error(good_take, str(path), *needles)


def test_wrong_format_version(good_take: Path) -> None:
    path = edit_manifest(good_take, lambda d: d.update(format_version=7))
    take_error(good_take, f"{path}: format_version 7, this handmocap reads 1")


def test_truncated_chunk(good_take: Path) -> None:
    chunk = first_chunk(good_take)
    chunk.write_bytes(chunk.read_bytes()[:-200])
    take_error(good_take, str(chunk), "truncated or corrupt")


def test_corrupt_bytes_inside_a_chunk(good_take: Path) -> None:
    chunk = first_chunk(good_take)
    data = bytearray(chunk.read_bytes())
    data[len(data) // 3 : len(data) // 3 + 64] = bytes(64)
    chunk.write_bytes(bytes(data))
    take_error(good_take, str(chunk))


@pytest.mark.parametrize(
    ("mutate", "needles"),
    [
        (
            lambda a: a.update(right_joints3d=a["right_joints3d"][:, :20]),
            ["field 'right_joints3d' has shape (64, 20, 3), expected (64, 21, 3)"],
        ),
        (
            lambda a: a.update(left_score=a["left_score"][:63]),
            ["field 'left_score' has shape (63,), expected (64,)"],
        ),
        (
            lambda a: a.update(left_transl=a["left_transl"].astype(np.float64)),
            ["field 'left_transl' has dtype float64, expected float32"],
        ),
        (lambda a: a.pop("timestamp"), ["missing field 'timestamp'"]),
        (lambda a: a.update(extra=np.zeros(3)), ["unexpected field 'extra'"]),
        (
            lambda a: a.update(frame_index=a["frame_index"] + 1),
            ["field 'frame_index' starts at 1, the chunk name says 0"],
        ),
        (
            lambda a: a.update(right_status=np.full(64, 9, np.uint8)),
            ["field 'right_status' holds 9"],
        ),
        (
            lambda a: a.update(left_betas=np.array([object()] * 64)),
            ["field 'left_betas' cannot be read"],
        ),
    ],
)
def test_chunk_field_errors(good_take: Path, mutate: Callable, needles: list[str]) -> None:
    chunk = first_chunk(good_take)
    rewrite_chunk(chunk, mutate)
    take_error(good_take, str(chunk), *needles)


def test_pickled_chunk_is_never_loaded(good_take: Path) -> None:
    import pickle

    chunk = first_chunk(good_take)
    chunk.write_bytes(pickle.dumps({"frame_index": np.arange(64)}))
    take_error(good_take, str(chunk), "truncated or corrupt")


def test_npy_instead_of_npz(good_take: Path) -> None:
    chunk = first_chunk(good_take)
    with chunk.open("wb") as f:
        np.save(f, np.arange(64))
    take_error(good_take, str(chunk), "not an .npz archive")


def test_gap_overlap_and_names(good_take: Path) -> None:
    chunks = good_take / "chunks"
    second = chunks / "00000064-00000127.npz"
    second.rename(chunks / "00000070-00000133.npz")
    take_error(good_take, "00000070-00000133.npz", "frames 64..69 are missing")
    (chunks / "00000070-00000133.npz").rename(chunks / "00000060-00000123.npz")
    take_error(good_take, "00000060-00000123.npz", "overlaps 00000000-00000063.npz")
    (chunks / "00000060-00000123.npz").rename(chunks / "notes.npz")
    take_error(good_take, "notes.npz", "not a chunk name")
    (chunks / "notes.npz").rename(chunks / "00000064-00000127.npz")
    first_chunk(good_take).rename(chunks / "00000001-00000064.npz")
    take_error(good_take, "00000001-00000064.npz", "start_frame is 0")


def test_chunk_name_must_match_its_frames(good_take: Path) -> None:
    chunks = good_take / "chunks"
    (chunks / "00000064-00000127.npz").unlink()
    first_chunk(good_take).rename(chunks / "00000000-00000127.npz")
    take_error(good_take, "00000000-00000127.npz", "has shape (64,), expected (128,)")


def test_lost_last_chunk_of_a_complete_take(good_take: Path) -> None:
    (good_take / "chunks" / "00000064-00000127.npz").unlink()
    take_error(good_take, "manifest.json", "field 'frames_written' is 128", "hold 64 frames")


def test_hidden_and_temporary_files_are_ignored(good_take: Path) -> None:
    (good_take / "chunks" / ".00000128-00000191.npz.1-2.tmp").write_bytes(b"junk")
    (good_take / ".manifest.json.1-2.tmp").write_bytes(b"junk")
    assert read_take(good_take).num_frames == 128
    assert read_manifest(good_take).complete


# ------------------------------------------------------------------------------------------
# Property-based: random bad input is a TakeError, never another exception or a wrong success

PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def small_take(root: Path, count: int = 8) -> Path:
    take_dir = root / "t.take"
    write_take(take_dir, count, chunk_size=64, batch=count)
    return take_dir


@PROPERTY
@given(data=st.binary(max_size=2000))
def test_random_bytes_as_chunk(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        take_dir = small_take(Path(tmp))
        chunk = take_dir / "chunks" / chunk_name(0, 7)
        chunk.write_bytes(data)
        take_error(take_dir, str(chunk))


@PROPERTY
@given(data=st.binary(min_size=1, max_size=64), at=st.integers(0, 10**6))
def test_random_bytes_spliced_into_a_chunk(data: bytes, at: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        take_dir = small_take(Path(tmp))
        chunk = take_dir / "chunks" / chunk_name(0, 7)
        whole = chunk.read_bytes()
        at %= len(whole)
        spliced = whole[:at] + data + whole[at + len(data) :]
        chunk.write_bytes(spliced)
        try:
            take = read_take(take_dir)
        except TakeError as exc:
            assert str(chunk) in str(exc)
        else:  # the bytes changed nothing that matters (e.g. a zip comment): still well-formed
            for name, spec in ARRAY_FIELDS.items():
                assert take.arrays[name].shape == (8, *spec.shape)
                assert take.arrays[name].dtype == spec.dtype


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
MANIFEST_KEYS = [
    "format",
    "format_version",
    *(f.name for f in dataclasses.fields(TakeManifest)),
    "unknown",
]


@PROPERTY
@given(key=st.sampled_from(MANIFEST_KEYS), value=JSON_VALUES, delete=st.booleans())
def test_random_manifest_values(key: str, value: object, delete: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        take_dir = small_take(Path(tmp))
        path = take_dir / "manifest.json"
        data = json.loads(path.read_text())
        if delete:
            data.pop(key, None)
        else:
            data[key] = value
        path.write_text(json.dumps(data))
        try:
            take = read_take(take_dir)
        except TakeError as exc:
            # Names the manifest, or the chunk that disagrees with it (e.g. start_frame).
            assert str(take_dir) in str(exc) and "\n" not in str(exc)
            return
    # Accepted: nothing required was removed, nothing unknown added, and the value reads back.
    if delete:
        assert key == "unknown"  # every real field is required
        return
    assert key != "unknown"
    if key in ("format", "format_version"):
        assert value == {"format": "handmocap-take", "format_version": FORMAT_VERSION}[key]
        assert type(value) in (str, int)
        return
    got = getattr(take.manifest, key)
    assert (dataclasses.asdict(got) if isinstance(got, SourceVideo) else got) == value
    assert not isinstance(value, bool) or key == "complete"


@PROPERTY
@given(text=st.text(max_size=200))
def test_random_text_as_manifest(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        take_dir = small_take(Path(tmp))
        (take_dir / "manifest.json").write_text(text)
        take_error(take_dir, "manifest.json")


OTHER_DTYPES = [
    np.dtype(d)
    for d in ("?", "u1", "i1", "i2", "i4", "i8", "u8", "f2", "f4", "f8", "c8", "U3", "O", "S2")
]


@st.composite
def chunk_mutations(draw: st.DrawFn) -> tuple[str, str, Callable[[dict], None]]:
    """(field named in the error, description, mutation) of a valid 8-frame chunk."""
    name = draw(st.sampled_from(sorted(ARRAY_FIELDS)))
    spec = ARRAY_FIELDS[name]
    shape = (8, *spec.shape)
    kind = draw(st.sampled_from(["dtype", "add_dim", "drop_dim", "resize_dim", "scalar", "drop"]))
    if kind == "dtype":
        dtype = draw(st.sampled_from([d for d in OTHER_DTYPES if d != spec.dtype]))
    else:
        dtype = spec.dtype
    if kind == "add_dim":
        shape = (*shape, draw(st.integers(1, 4)))
    elif kind == "drop_dim":
        shape = shape[:-1]
    elif kind == "resize_dim":
        axis = draw(st.integers(0, len(shape) - 1))
        size = draw(st.integers(0, 30).filter(lambda n: n != shape[axis]))
        shape = (*shape[:axis], size, *shape[axis + 1 :])
    elif kind == "scalar":
        shape = ()

    def mutate(arrays: dict) -> None:
        if kind == "drop":
            arrays.pop(name, None)
        else:
            arrays[name] = np.zeros(shape, dtype)

    return name, f"{kind} {shape} {dtype}", mutate


@PROPERTY
@given(mutations=st.lists(chunk_mutations(), min_size=1, max_size=3))
def test_random_chunk_mutations(mutations: list) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        take_dir = small_take(Path(tmp))
        chunk = take_dir / "chunks" / chunk_name(0, 7)
        rewrite_chunk(chunk, lambda arrays: [mutate(arrays) for _, _, mutate in mutations])
        message = take_error(take_dir, str(chunk))
        assert any(f"field '{name}'" in message for name, _, _ in mutations), message


def test_writer_leaves_only_manifest_and_chunks(good_take: Path) -> None:
    assert sorted(os.listdir(good_take)) == ["chunks", "manifest.json"]
    assert chunk_files(good_take) == ["00000000-00000063.npz", "00000064-00000127.npz"]
