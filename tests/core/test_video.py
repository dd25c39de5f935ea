"""Decoding videos and image folders: frames, seeking, rotation, bad input, the decoder thread."""

from __future__ import annotations

import gc
import hashlib
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from handmocap.core.errors import HandmocapError
from handmocap.core.take import SourceVideo
from handmocap.core.video import (
    Frame,
    FrameSource,
    ImageFolderSource,
    SourceWarning,
    VideoSource,
    iter_batches,
    natural_key,
    open_source,
    orientation_from_display_matrix,
    rotate_upright,
)

av = pytest.importorskip("av")
cv2 = pytest.importorskip("cv2")

REALDATA = Path(__file__).resolve().parents[3] / "shared" / "realdata"
ASL = REALDATA / "tfjs_models_hand_pose" / "asl_hand.25fps.mp4"

W, H = 64, 48


def digest(image: np.ndarray) -> str:
    return hashlib.sha1(image.tobytes()).hexdigest()


def pattern(i: int) -> np.ndarray:
    """An RGB frame that says its index: a flat grey level plus an asymmetric marker."""
    image = np.full((H, W, 3), (i * 8) % 200 + 20, np.uint8)
    image[:8, :16] = (250, 30, 30)  # a wide red block in the top-left corner
    return image


def write_video(
    path: Path,
    n: int,
    *,
    rate: int = 10,
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
    rotation: int | None = None,
    hflip: bool = False,
    frames: list[np.ndarray] | None = None,
    pts_ms: list[int] | None = None,
) -> Path:
    """A small H.264 video made with PyAV (B-frames on; ``options`` e.g. {"g": "5"})."""
    container = av.open(str(path), "w", options=container_options or {})
    stream = container.add_stream("libx264", rate=rate, options=options or {})
    stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
    if rotation is not None:
        stream.set_display_rotation(rotation, hflip=hflip)
    if pts_ms is not None:
        stream.codec_context.time_base = Fraction(1, 1000)
    container.start_encoding()
    for i in range(n):
        frame = av.VideoFrame.from_ndarray(
            frames[i] if frames is not None else pattern(i), format="rgb24"
        )
        if pts_ms is not None:
            frame.pts, frame.time_base = pts_ms[i], Fraction(1, 1000)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path


def decode_all(source: FrameSource, start: int = 0, end: int | None = None):
    return [(f.index, f.timestamp, digest(f.image)) for f in source.frames(start, end)]


def wait_until(condition, timeout: float = 1.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def decoder_threads(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"handmocap-decode:{name}"]


# ---------------------------------------------------------------------------------------------
# A real video


@pytest.fixture(scope="module")
def asl():
    if not ASL.is_file():
        pytest.skip(f"real-data video not present: {ASL}")
    source = open_source(ASL)
    frames = []
    first = last = None
    for frame in source.frames():
        frames.append((frame.index, frame.timestamp, digest(frame.image)))
        if first is None:
            first = frame
        last = frame
    return source, frames, first, last


def test_real_video_properties(asl):
    source, _, _, _ = asl
    assert isinstance(source, VideoSource)
    assert source.fps == 25
    assert (source.frame_count, source.frame_count_exact) == (325, True)
    assert (source.width, source.height, source.rotation, source.mirrored) == (620, 1080, 0, False)
    assert source.source_identity() == SourceVideo.from_file(ASL)


def test_real_video_full_decode(asl):
    _, frames, first, last = asl
    assert [f[0] for f in frames] == list(range(325))
    for frame in (first, last):
        assert frame.image.shape == (1080, 620, 3) and frame.image.dtype == np.uint8
        assert frame.image.flags.c_contiguous and frame.image.std() > 5  # a picture, not a blank
    assert (first.index, last.index) == (0, 324)
    times = np.array([f[1] for f in frames])
    assert times[0] == 0.0
    np.testing.assert_allclose(np.diff(times), 1 / 25, atol=1e-9)
    assert len({f[2] for f in frames}) > 300  # frames differ from each other


@pytest.mark.parametrize("start,end", [(1, 3), (203, 207), (300, 303), (323, None), (325, None)])
def test_real_video_slices_equal_full_decode(asl, start, end):
    """Seeks land on the keyframe before (205 is one; B-frames reorder around it)."""
    source, frames, _, _ = asl
    assert decode_all(source, start, end) == frames[start:end]


# ---------------------------------------------------------------------------------------------
# Synthetic videos


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    """30 frames at 10 fps, a keyframe every 5 frames, B-frames."""
    return write_video(tmp_path_factory.mktemp("video") / "synthetic.mp4", 30, options={"g": "5"})


def test_synthetic_video(synthetic):
    source = open_source(synthetic)
    assert (source.fps, source.frame_count, source.frame_count_exact) == (10, 30, True)
    assert (source.width, source.height, source.rotation) == (W, H, 0)
    frames = list(source.frames())
    assert [f.index for f in frames] == list(range(30))
    np.testing.assert_allclose([f.timestamp for f in frames], np.arange(30) / 10, atol=1e-9)
    for frame in frames:  # the frames are the ones written, in order
        assert np.abs(frame.image.astype(int) - pattern(frame.index)).mean() < 3
    assert all(isinstance(f, Frame) for f in frames)


def test_synthetic_every_start_equals_full_decode(synthetic):
    source = open_source(synthetic)
    full = decode_all(source)
    assert len(source._packet_table()[1]) >= 6  # keyframes at 0, 5, ..., 25 (+ scene cuts)
    for start in range(31):
        assert decode_all(source, start, start + 3) == full[start : start + 3], start
    assert decode_all(source, 7) == full[7:]
    assert decode_all(source, 40) == []


def test_matroska_frame_count_is_an_estimate(tmp_path):
    path = write_video(tmp_path / "clip.mkv", 20, options={"g": "4"})
    source = open_source(path)
    assert not source.frame_count_exact and abs(source.frame_count - 20) <= 1
    full = decode_all(source)
    assert len(full) == 20
    for start in (3, 9, 17):
        assert decode_all(source, start, start + 2) == full[start : start + 2]


def test_variable_frame_rate_timestamps_come_from_pts(tmp_path):
    pts = [0, 100, 150, 300, 320, 500, 800, 810, 900, 1000, 1100, 1300]
    source = open_source(
        write_video(tmp_path / "vfr.mp4", len(pts), options={"g": "4"}, pts_ms=pts)
    )
    full = decode_all(source)
    assert [f[0] for f in full] == list(range(len(pts)))
    np.testing.assert_allclose([f[1] for f in full], np.array(pts) / 1000, atol=1e-9)
    for start in range(len(pts)):
        assert decode_all(source, start) == full[start:]


# ---------------------------------------------------------------------------------------------
# Rotation


def test_rotate_upright_on_arrays():
    image = np.arange(2 * 3 * 3).reshape(2, 3, 3)
    assert np.array_equal(rotate_upright(image, 0), image)
    assert np.array_equal(rotate_upright(image, 90), np.rot90(image, -1))  # clockwise
    assert np.array_equal(rotate_upright(image, 180), np.rot90(image, 2))
    assert np.array_equal(rotate_upright(image, 270), np.rot90(image, 1))
    assert np.array_equal(rotate_upright(image, 90, mirrored=True), np.rot90(image, -1)[:, ::-1])
    with pytest.raises(ValueError):
        rotate_upright(image, 45)
    one = 1 << 16  # 16.16 fixed point, FFmpeg's display matrix
    ccw90 = [0, -one, 0, one, 0, 0, 0, 0, 1 << 30]
    assert np.array_equal(orientation_from_display_matrix(ccw90).apply(image), np.rot90(image))
    hflip = [-one, 0, 0, 0, one, 0, 0, 0, 1 << 30]
    assert np.array_equal(orientation_from_display_matrix(hflip).apply(image), image[:, ::-1])
    vflip = [one, 0, 0, 0, -one, 0, 0, 0, 1 << 30]
    assert np.array_equal(orientation_from_display_matrix(vflip).apply(image), image[::-1])
    # no matrix, or one that is not axis-aligned: the nearest quarter turn of FFmpeg's angle
    assert np.array_equal(
        orientation_from_display_matrix(None, -90.0).apply(image), np.rot90(image, -1)
    )
    assert np.array_equal(
        orientation_from_display_matrix([1] * 9, 170.0).apply(image), np.rot90(image, 2)
    )


@pytest.mark.parametrize("degrees,clockwise", [(90, 270), (180, 180), (-90, 90)])
def test_rotated_video_comes_out_upright_as_opencv_shows_it(tmp_path, degrees, clockwise):
    """PyAV writes a display matrix; OpenCV's FFmpeg auto-orientation is the independent check."""
    path = write_video(tmp_path / f"rot{degrees}.mp4", 3, rotation=degrees)
    source = open_source(path)
    assert (source.rotation, source.mirrored) == (clockwise, False)
    upright = (H, W) if clockwise == 180 else (W, H)
    assert (source.height, source.width) == upright
    frames = list(source.frames())
    capture = cv2.VideoCapture(str(path))
    capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    ok, bgr = capture.read()
    capture.release()
    assert ok and bgr.shape[:2] == upright
    assert frames[0].image.shape[:2] == upright
    assert np.abs(frames[0].image.astype(int) - bgr[..., ::-1]).max() <= 2
    stored = pattern(0)
    assert np.abs(frames[0].image.astype(int) - rotate_upright(stored, clockwise)).mean() < 3
    assert decode_all(source, 1) == decode_all(source)[1:]


def test_mirrored_video(tmp_path):
    """PyAV's set_display_rotation: the rotation (counter-clockwise), then the mirror."""
    source = open_source(write_video(tmp_path / "mirror.mp4", 2, rotation=90, hflip=True))
    assert (source.rotation, source.mirrored, source.width, source.height) == (270, True, H, W)
    image = next(iter(source.frames())).image
    expected = np.rot90(pattern(0), 1)[:, ::-1]
    assert np.abs(image.astype(int) - expected).mean() < 3


# ---------------------------------------------------------------------------------------------
# Bad video input


def test_missing_path(tmp_path):
    with pytest.raises(HandmocapError, match="nope.mp4: no such"):
        open_source(tmp_path / "nope.mp4")


@pytest.mark.parametrize(
    "name,content",
    [
        ("random.mp4", bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8))),
        ("empty.mp4", b""),
        ("notes.txt", b"hello world\n" * 50),
    ],
)
def test_not_a_video(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(HandmocapError, match=name) as caught:
        open_source(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_video_without_frames(tmp_path):
    path = write_video(tmp_path / "zero.avi", 0)  # a container whose video stream is empty
    with pytest.raises(HandmocapError, match="zero.avi: the video stream holds no frames"):
        open_source(path)


def test_truncated_mp4_without_its_index(tmp_path):
    """A plain mp4 keeps its index at the end: cut, it cannot be opened at all."""
    whole = write_video(tmp_path / "whole.mp4", 20).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(HandmocapError, match="cut.mp4"):
        open_source(cut)


def test_video_truncated_in_the_middle(tmp_path):
    """Index first (faststart), data cut: the frames before the damage, then a clean stop."""
    rng = np.random.default_rng(1)
    noisy = [rng.integers(0, 256, (H, W, 3), dtype=np.uint8) for _ in range(30)]
    path = write_video(
        tmp_path / "whole.mp4",
        30,
        options={"g": "5"},
        container_options={"movflags": "faststart"},
        frames=noisy,
    )
    intact = decode_all(open_source(path))
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    issues: list[tuple[Path, str]] = []
    source = open_source(cut, on_issue=lambda p, reason: issues.append((p, reason)))
    assert (source.frame_count, source.frame_count_exact) == (30, True)  # as the index says
    got = decode_all(source)
    assert 5 < len(got) < 30
    assert got == intact[: len(got)]
    assert len(issues) == 1 and issues[0][0] == cut
    assert source.damaged == issues[0][1]
    assert f"after frame {len(got) - 1} of 30" in source.damaged
    # seeking into the good part still works; a seek past the damage finds nothing
    assert decode_all(source, 7, 9) == intact[7:9]
    assert decode_all(source, 28) == []
    assert len(issues) == 1  # the same damage is reported once
    with pytest.warns(SourceWarning, match="cut.mp4: the video is damaged or truncated"):
        decode_all(open_source(cut))


# ---------------------------------------------------------------------------------------------
# Image folders


def write_png(path: Path, image: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), image[..., ::-1])
    return path


def test_natural_key():
    names = ["frame10.png", "frame2.png", "Frame1.png", "frame02b.png", "a.png"]
    assert sorted(names, key=natural_key) == [
        "a.png",
        "Frame1.png",
        "frame2.png",
        "frame02b.png",
        "frame10.png",
    ]


@pytest.fixture
def folder(tmp_path) -> Path:
    """frame1..frame12 in natural order (written shuffled), a hidden file and a text file."""
    folder = tmp_path / "shots"
    folder.mkdir()
    for i in (10, 2, 12, 1, 11, 3, 4, 5, 6, 7, 8, 9):
        ext = ".png" if i % 2 else ".PNG"
        write_png(folder / f"frame{i}{ext}", pattern(i - 1))
    (folder / "notes.txt").write_text("not an image")
    (folder / "._frame1.png").write_bytes(b"AppleDouble junk")
    return folder


def test_image_folder(folder):
    source = open_source(folder, fps=12)
    assert isinstance(source, ImageFolderSource)
    assert [p.name for p in source.files][:3] == ["frame1.png", "frame2.PNG", "frame3.png"]
    assert (source.frame_count, source.frame_count_exact, source.fps) == (12, True, 12)
    assert (source.width, source.height, source.rotation) == (W, H, 0)
    frames = list(source.frames())
    assert [f.index for f in frames] == list(range(12))
    np.testing.assert_allclose([f.timestamp for f in frames], np.arange(12) / 12)
    for frame in frames:
        assert np.array_equal(frame.image, pattern(frame.index))  # PNG: lossless, RGB
    assert decode_all(source, 4, 7) == decode_all(source)[4:7]
    assert source.skipped == []
    assert open_source(folder).fps == 30


def test_image_folder_skips_and_reports_bad_images(folder):
    bad = folder / "frame5.png"
    bad.write_bytes(bad.read_bytes()[:60])  # a copy cut short
    odd = write_png(folder / "frame8.PNG", np.zeros((H + 2, W, 3), np.uint8))
    issues: list[tuple[Path, str]] = []
    source = open_source(folder, on_issue=lambda p, reason: issues.append((p, reason)))
    frames = list(iter_batches(source, 4))
    indices = [f.index for batch in frames for f in batch]
    assert indices == [0, 1, 2, 3, 5, 6, 8, 9, 10, 11]  # index = position in the sorted list
    assert [p for p, _ in issues] == [bad, odd]
    assert source.skipped == issues
    assert "not an image" in issues[0][1] and "differs" in issues[1][1]
    list(source.frames())
    assert len(issues) == 2  # reported once per source
    with pytest.warns(SourceWarning, match="frame5.png: skipped"):
        list(open_source(folder).frames(3, 6))


def test_image_folder_first_images_bad(folder):
    (folder / "frame1.png").write_bytes(b"broken")
    with pytest.warns(SourceWarning, match="frame1.png"):
        source = open_source(folder)
    assert (source.width, source.height) == (W, H)
    assert [f.index for f in source.frames()] == list(range(1, 12))


def test_image_folder_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(HandmocapError, match="empty: the folder holds no images"):
        open_source(empty)
    (empty / "readme.txt").write_text("x")
    with pytest.raises(HandmocapError, match="holds no images"):
        open_source(empty)
    broken = tmp_path / "broken"
    broken.mkdir()
    for i in range(3):
        (broken / f"{i}.jpg").write_bytes(b"not a jpeg")
    with pytest.warns(SourceWarning), pytest.raises(HandmocapError, match="none of its 3 images"):
        open_source(broken)


def test_image_folder_identity(folder):
    source = open_source(folder)
    identity = source.source_identity()
    assert identity.path == str(folder.resolve())
    assert identity.size == sum(p.stat().st_size for p in source.files)
    assert open_source(folder).source_identity() == identity
    write_png(folder / "frame1.png", pattern(40))
    assert not open_source(folder).source_identity().same_footage(identity)


# ---------------------------------------------------------------------------------------------
# The decoder thread


class CountingSource(FrameSource):
    """Frames made on demand; counts how many were produced; can fail or never end."""

    def __init__(self, name: str, n: int | None, *, fail_at: int | None = None, prefetch=3):
        super().__init__(
            Path(name),
            fps=10,
            frame_count=n or 0,
            frame_count_exact=n is not None,
            width=4,
            height=2,
            prefetch=prefetch,
        )
        self.produced = 0
        self.fail_at = fail_at

    def _decode(self, start: int, end: int | None, size=None) -> Iterator[Frame]:
        index = start
        while (end is None or index < end) and (
            self.frame_count_exact is False or index < self.frame_count
        ):
            if index == self.fail_at:
                raise ValueError(f"boom at {index}")
            self.produced += 1
            yield Frame(index, index / 10, np.zeros((2, 4, 3), np.uint8))
            index += 1

    def source_identity(self) -> SourceVideo:
        raise NotImplementedError


def test_producer_stays_at_most_prefetch_frames_ahead():
    source = CountingSource("bounded", 20, prefetch=3)
    consumed, ahead = 0, []
    for frame in source.frames():
        consumed += 1
        assert frame.index == consumed - 1
        time.sleep(0.02)  # a slow consumer: the producer has time to fill every slot
        ahead.append(source.produced - consumed)
    assert consumed == 20
    assert max(ahead) == 3  # it does run ahead, but never more than prefetch
    assert source.produced == 20


def test_early_stop_ends_the_thread():
    source = CountingSource("endless-break", None)
    for frame in source.frames():
        if frame.index == 4:
            break
    assert wait_until(lambda: not decoder_threads("endless-break"))
    assert source.produced <= 5 + source.prefetch

    source = CountingSource("endless-close", None)
    stream = source.frames()
    next(stream)
    started = time.monotonic()
    stream.close()
    assert time.monotonic() - started < 1 and not stream.running
    with pytest.raises(StopIteration):
        next(stream)

    source = CountingSource("endless-dropped", None)
    source.frames()  # never iterated, dropped at once
    gc.collect()
    assert wait_until(lambda: not decoder_threads("endless-dropped"))

    source = CountingSource("endless-source-close", None)
    with source:
        stream = source.frames()
        next(stream)
    assert wait_until(lambda: not stream.running)


def test_early_stop_on_a_video(synthetic):
    source = open_source(synthetic, prefetch=2)
    batches = iter_batches(source, 4, start=3)
    assert [f.index for f in next(batches)] == [3, 4, 5, 6]
    batches.close()
    assert wait_until(lambda: not decoder_threads(synthetic.name))


def test_decoder_exception_reaches_the_consumer():
    source = CountingSource("failing", 10, fail_at=3)
    stream = source.frames()
    assert [next(stream).index for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ValueError, match="boom at 3"):
        next(stream)
    assert not stream.running
    with pytest.raises(StopIteration):
        next(stream)


def test_iter_batches():
    source = CountingSource("batches", 10)
    assert [[f.index for f in b] for b in iter_batches(source, 4)] == [
        [0, 1, 2, 3],
        [4, 5, 6, 7],
        [8, 9],
    ]
    assert [[f.index for f in b] for b in iter_batches(source, 3, 2, 7)] == [[2, 3, 4], [5, 6]]
    with pytest.raises(ValueError):
        next(iter_batches(source, 0))


def test_argument_checks(synthetic):
    source = open_source(synthetic)
    for bad in ({"start": -1}, {"start": 5, "end": 2}):
        with pytest.raises(ValueError):
            source.frames(**bad)
    with pytest.raises(ValueError):
        open_source(synthetic, prefetch=0)
    with pytest.raises(ValueError):
        open_source(synthetic, fps=0)


# ---------------------------------------------------------------------------------------------
# Scaled decoding (previews)


@pytest.mark.parametrize("degrees", [None, 90])
def test_frames_scaled_to_a_height_stay_upright(tmp_path, degrees):
    """Scaled while decoded: the same picture, smaller, upright even when the video is rotated."""
    source = open_source(write_video(tmp_path / "scaled.mp4", 3, rotation=degrees))
    full = [f.image for f in source.frames()]
    height = source.height // 2
    small = [f.image for f in source.frames(height=height)]
    assert small[0].shape[:2] == (height, source.scaled_size(height)[0])
    for a, b in zip(full, small, strict=True):
        shrunk = cv2.resize(a, b.shape[1::-1], interpolation=cv2.INTER_AREA)
        assert np.abs(shrunk.astype(int) - b).mean() < 6
    assert source.scaled_size(source.height) is None  # never enlarged
    assert source.scaled_size(None) is None


def test_image_folder_scaled(folder):
    source = open_source(folder, fps=12)
    frames = list(source.frames(2, 4, height=H // 2))
    assert [f.image.shape[:2] for f in frames] == [(H // 2, round(W / 2 / 2) * 2)] * 2
