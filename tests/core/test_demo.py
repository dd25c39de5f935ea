"""``handmocap demo`` end to end: the take it writes, the hands in it, and its pictures."""

from __future__ import annotations

import contextlib
import io
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from handmocap.core.cli import main
from handmocap.core.handmodel import SIDES, HandLayer
from handmocap.core.render import SIDE_COLORS
from handmocap.core.take import HAND_FIELDS, HandStatus, Take, read_take

FRAMES = 24
DROPPED = range(FRAMES // 3, FRAMES // 3 + 6)  # core/demo.py drops the left hand here


@dataclass
class DemoRun:
    out: Path
    stdout: str
    take: Take


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """One run of ``handmocap demo --frames 24``, shared by the tests of this module."""
    out = tmp_path_factory.mktemp("demo")
    stdout = _run_demo(out, FRAMES)
    return DemoRun(out, stdout, read_take(out / "demo.take"))


def _run_demo(out: Path, frames: int) -> str:
    """Run the demo command through the real entry point; return what it printed."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["demo", "--out", str(out), "--frames", str(frames), "--clip-frames", "16"])
        assert code == 0
    return buffer.getvalue()


@pytest.fixture(scope="module")
def layer() -> HandLayer:
    return HandLayer.from_models_dir(None, "openhand")


def test_prints_the_paths(demo: DemoRun) -> None:
    for name in ("demo.take", "demo.png", "hand_model.png", "asl.take", "asl_sheet.png",
                 "asl_preview.mp4"):  # fmt: skip
        assert str(demo.out / name) in demo.stdout
        assert (demo.out / name).exists()


def test_real_clip_is_captured(demo: DemoRun) -> None:
    clip = read_take(demo.out / "asl.take")
    assert clip.manifest.complete and clip.num_frames == 16
    assert clip.manifest.backend == "mediapipe"  # no weights here: the backend that needs none
    assert clip.hand("right")["present"].all()


def test_take_is_complete(demo: DemoRun) -> None:
    take = demo.take
    assert take.manifest.complete and take.manifest.frames_written == FRAMES
    assert take.num_frames == FRAMES
    assert np.array_equal(take.arrays["frame_index"], np.arange(FRAMES))


def test_hands_present_except_dropped_frames(demo: DemoRun) -> None:
    left, right = demo.take.hand("left"), demo.take.hand("right")
    assert right["present"].all()
    assert (right["status"] == HandStatus.OK).all()
    expected = np.ones(FRAMES, bool)
    expected[list(DROPPED)] = False
    assert np.array_equal(left["present"], expected)
    assert (left["status"][list(DROPPED)] == HandStatus.NOT_DETECTED).all()
    assert (left["status"][expected] == HandStatus.OK).all()
    both = left["present"] & right["present"]
    assert both.sum() > FRAMES // 2
    for name, spec in HAND_FIELDS.items():  # an undetected hand carries NaN, nothing else
        if spec.dtype.kind == "f":
            assert np.isnan(left[name][list(DROPPED)]).all(), name


def test_joints3d_match_the_hand_model(demo: DemoRun, layer: HandLayer) -> None:
    for side in SIDES:
        hand = demo.take.hand(side)
        rows = hand["present"]
        params = [
            torch.as_tensor(hand[k][rows])
            for k in ("global_orient", "hand_pose", "betas", "transl")
        ]
        with torch.no_grad():
            keypoints = layer(side, *params).keypoints.double().numpy()
        assert np.abs(keypoints - hand["joints3d"][rows]).max() < 1e-5, side


def test_joints2d_are_the_projected_joints3d(demo: DemoRun) -> None:
    m = demo.take.manifest
    centre = np.array([m.width / 2, m.height / 2])
    for side in SIDES:
        hand = demo.take.hand(side)
        joints3d = hand["joints3d"][hand["present"]].astype(np.float64)
        projected = joints3d[..., :2] / joints3d[..., 2:] * m.focal_length + centre
        assert np.abs(projected - hand["joints2d"][hand["present"]]).max() < 1e-3, side


def _read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, f"cv2 cannot read {path}"
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _pixels_of_color(image: np.ndarray, rgb: tuple[float, float, float]) -> int:
    """Pixels of that colour under any Lambert shade: same chromaticity, not too dark."""
    pixels = image.reshape(-1, 3).astype(np.float64)
    total = pixels.sum(1)
    lit = total > 60
    chroma = pixels[lit] / total[lit, None]
    target = np.asarray(rgb) / sum(rgb)
    return int((np.abs(chroma - target).max(1) < 0.03).sum())


def test_demo_picture_shows_both_hands(demo: DemoRun) -> None:
    image = _read_rgb(demo.out / "demo.png")
    assert image.shape[0] > 100 and image.shape[1] > 100
    assert image.std() > 10  # not blank
    for side in SIDES:
        assert _pixels_of_color(image, SIDE_COLORS[side]) > 2000, side


def test_model_picture_is_not_blank(demo: DemoRun) -> None:
    image = _read_rgb(demo.out / "hand_model.png")
    assert image.shape[0] > 100 and image.shape[1] > 100
    background = (image >= 245).all(-1)
    assert (~background).mean() > 0.1  # the model sheet colours by part, not by side
    saturation = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)[..., 1]
    assert (saturation > 60).sum() > 5000


def test_second_run_writes_a_fresh_take(demo: DemoRun, tmp_path: Path) -> None:
    out = tmp_path / "again"
    shutil.copytree(demo.out, out)
    _run_demo(out, 9)
    take = read_take(out / "demo.take")
    assert take.manifest.complete and take.num_frames == 9
    assert len(take.chunks) == 1
    assert (out / "demo.png").is_file() and (out / "hand_model.png").is_file()


def test_too_few_frames_is_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "nothing"
    assert main(["demo", "--out", str(out), "--frames", "3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--frames" in err and "3" in err
    assert not out.exists()
