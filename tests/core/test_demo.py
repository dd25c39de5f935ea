"""``handmocap demo`` end to end on the bundled real clip: take, preview video, contact sheet."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

from handmocap.core.cli import main
from handmocap.core.demo import DEMO_CLIP
from handmocap.core.handmodel import HandLayer
from handmocap.core.render import SIDE_COLORS
from handmocap.core.take import HandStatus, Take, read_take

FRAMES = 20


@dataclass
class DemoRun:
    out: Path
    stdout: str
    take: Take


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """One run of ``handmocap demo --frames 20``, shared by the tests of this module."""
    out = tmp_path_factory.mktemp("demo")
    stdout = _run_demo(out, FRAMES)
    return DemoRun(out, stdout, read_take(out / "asl.take"))


def _run_demo(out: Path, frames: int, *extra: str) -> str:
    """Run the demo command in a fresh process, as ``make demo`` does (Blender's bpy module
    is loaded there, not in the test process); return what it printed."""
    env = {**os.environ, "HANDMOCAP_MODELS": "", "BLENDER_USER_RESOURCES": str(out / "b")}
    done = subprocess.run(
        [sys.executable, "-m", "handmocap.core.cli", "demo", "--out", str(out), "--frames",
         str(frames), "--progress", "none", *extra],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def layer() -> HandLayer:
    return HandLayer.from_models_dir(None, "openhand")


def test_the_clip_ships_with_its_attribution() -> None:
    assert DEMO_CLIP.is_file()
    notice = (DEMO_CLIP.parent / "ATTRIBUTION.md").read_text()
    assert "Apache" in notice and DEMO_CLIP.name in notice


def test_prints_the_paths_and_the_time(demo: DemoRun) -> None:
    for name in ("asl.take", "asl_sheet.png", "asl_preview.mp4"):
        assert str(demo.out / name) in demo.stdout
        assert (demo.out / name).exists()
    assert "backend: mediapipe" in demo.stdout  # no weights here: the backend that needs none
    assert f"s for {FRAMES / 25:.1f} s of video" in demo.stdout


def test_the_blend_and_the_fbx(demo: DemoRun) -> None:
    if importlib.util.find_spec("bpy") is None:
        assert "blend:" not in demo.stdout
        pytest.skip("the bpy module is not installed: the demo writes no .blend (make demo does)")
    ufbx = pytest.importorskip("ufbx", reason="ufbx reads the FBX (make test installs it)")
    blend, fbx = demo.out / "asl.blend", demo.out / "asl.fbx"
    assert f"blend:   {blend}" in demo.stdout and f"fbx:     {fbx}" in demo.stdout
    assert blend.read_bytes()[:4] in (b"BLEN", b"\x28\xb5\x2f\xfd")  # plain or zstd
    scene = ufbx.load_file(str(fbx))
    names = {n.name for n in scene.nodes}
    assert {"wrist.R", "index3.R", "thumb3.R"} <= names and "wrist.L" not in names
    stack = scene.anim_stacks[0]
    assert stack.time_end - stack.time_begin == pytest.approx((FRAMES - 1) / 25, abs=1e-3)


def test_the_take_holds_the_signing_hand(demo: DemoRun) -> None:
    take = demo.take
    assert take.manifest.complete and take.num_frames == FRAMES
    assert np.array_equal(take.arrays["frame_index"], np.arange(FRAMES))
    right, left = take.hand("right"), take.hand("left")
    assert right["present"].all() and (right["status"] == HandStatus.OK).all()
    assert not left["present"].any()  # one hand in the clip: nothing invented


def test_joints_match_the_hand_model_and_the_camera(demo: DemoRun, layer: HandLayer) -> None:
    m = demo.take.manifest
    centre = np.array([m.width / 2, m.height / 2])
    hand = demo.take.hand("right")
    params = [torch.tensor(hand[k]) for k in ("global_orient", "hand_pose", "betas", "transl")]
    with torch.no_grad():
        keypoints = layer("right", *params).keypoints.double().numpy()
    assert np.abs(keypoints - hand["joints3d"]).max() < 1e-5
    projected = keypoints[..., :2] / keypoints[..., 2:] * m.focal_length + centre
    assert np.abs(projected - hand["joints2d"]).max() < 1e-2
    # in front of the camera at an arm's length (the default 65 degree field of view)
    assert 0.2 < np.median(keypoints[:, 0, 2]) < 1.5


def _pixels_of_color(image: np.ndarray, rgb: tuple[float, float, float]) -> int:
    """Pixels whose colour leans to that side colour (the mesh is drawn at 50 % over skin)."""
    pixels = image.reshape(-1, 3).astype(np.float64)
    total = pixels.sum(1).clip(1)
    chroma = pixels / total[:, None]
    target = np.asarray(rgb) / sum(rgb)
    return int((np.abs(chroma - target).max(1) < 0.06).sum())


def test_sheet_and_video_show_the_hand_over_the_footage(demo: DemoRun) -> None:
    sheet = cv2.cvtColor(cv2.imread(str(demo.out / "asl_sheet.png")), cv2.COLOR_BGR2RGB)
    assert sheet.shape[1] == 1600
    with av.open(str(demo.out / "asl_preview.mp4")) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == FRAMES and frames[0].shape == (720, 414, 3)  # preview height
    cap = cv2.VideoCapture(str(DEMO_CLIP))
    source = cv2.cvtColor(cap.read()[1], cv2.COLOR_BGR2RGB)
    source = cv2.resize(source, (414, 720), interpolation=cv2.INTER_AREA)
    assert (
        _pixels_of_color(frames[0], SIDE_COLORS["right"])
        > _pixels_of_color(source, SIDE_COLORS["right"]) + 2000
    )
    assert _pixels_of_color(frames[0], SIDE_COLORS["left"]) < 500  # no left hand drawn


def test_second_run_writes_a_fresh_take(demo: DemoRun, tmp_path: Path) -> None:
    out = tmp_path / "again"
    shutil.copytree(demo.out, out)
    _run_demo(out, 8, "--no-blend")
    take = read_take(out / "asl.take")
    assert take.manifest.complete and take.num_frames == 8


def test_bad_frame_count_is_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "nothing"
    assert main(["demo", "--out", str(out), "--frames", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--frames" in err
    assert not out.exists()
