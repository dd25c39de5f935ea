"""The dir backend: the two-hand crop, its tracking, the way back to the frame, and a real image.

The network has random weights here (the official checkpoint is not shipped), so the tests check
geometry and plumbing: the crop holds both detected hands as the official data code would cut
it, results land where DIR's weak-perspective camera puts them, and a frame without both hands
gets no hands and a reason.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from handmocap.core.backends.dir import BackendDetector, DIRBackend
from handmocap.core.dir.crop import (
    CropBox,
    CropTracker,
    cut,
    hand_box,
    to_network_input,
    two_hand_box,
)
from handmocap.core.dir.hands import OFFSET_UNIT
from handmocap.core.dir.model import DIR, DIRConfig
from handmocap.core.handmodel import HandLayer
from handmocap.core.observation import HandObservation

REALDATA = Path(__file__).resolve().parents[3] / "shared" / "realdata"
TWO_HANDS = REALDATA / "mediapipe_rs" / "google_sample_woman_hands.jpg"
needs_image = pytest.mark.skipif(
    not TWO_HANDS.is_file(), reason=f"real two-hand image {TWO_HANDS} not present"
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def layer():
    return HandLayer.from_models_dir(None, "openhand")


@pytest.fixture(scope="module")
def model(layer):
    torch.manual_seed(0)
    return DIR(DIRConfig.tiny(), layer.models).eval()


# --- the crop ---------------------------------------------------------------------------------


def test_two_hand_box_is_the_official_square():
    # two hands given as boxes of keypoints; no margin: the official cut on the points
    left = np.array([[100.0, 200.0], [140.0, 260.0]])
    right = np.array([[180.0, 210.0], [220.0, 240.0]])
    box = two_hand_box({"left": left, "right": right}, margin=0.0)
    assert (box.cx, box.cy) == (160.0, 230.0)
    assert box.half == pytest.approx(120 / 2 / 0.8)  # the longer extent fills 80 %


def test_hand_box_margin_grows_every_side():
    box = hand_box(np.array([[0.0, 0.0], [10.0, 20.0]]), margin=0.1)
    np.testing.assert_allclose(box, [[-2.0, -2.0], [12.0, 22.0]])


def test_cut_and_back_to_the_frame_agree():
    frame = np.zeros((300, 400, 3), np.uint8)
    frame[149:152, 249:252] = 255  # a white dot around pixel (250, 150)
    box = CropBox(cx=240.0, cy=160.0, half=64.0)
    crop = cut(frame, box)
    assert crop.shape == (256, 256, 3)
    ys, xs = np.nonzero(crop[..., 0] > 128)
    centre_px = np.array([xs.mean(), ys.mean()])  # pixel centres (x + 0.5) round-trip, as cv2
    uv = centre_px / 256 * 2 - 1
    np.testing.assert_allclose(box.to_frame(uv), [250.0, 150.0], atol=1.0)
    np.testing.assert_allclose(box.to_frame(np.array([-1.0, -1.0])), [176.0, 96.0])
    np.testing.assert_allclose(box.to_frame(np.array([1.0, 1.0])), [304.0, 224.0])


def test_cut_pads_with_black_outside_the_frame():
    frame = np.full((100, 100, 3), 200, np.uint8)
    crop = cut(frame, CropBox(cx=0.0, cy=50.0, half=50.0))
    assert crop[128, :100].max() == 0 and crop[128, 160:].min() == 200


def test_cut_rejects_a_grey_image():
    with pytest.raises(ValueError, match="RGB uint8"):
        cut(np.zeros((10, 10), np.uint8), CropBox(5.0, 5.0, 5.0))


def test_network_input_is_imagenet_normalised():
    crops = torch.full((1, 4, 4, 3), 255, dtype=torch.uint8)
    x = to_network_input(crops)
    assert x.shape == (1, 3, 4, 4)
    torch.testing.assert_close(x[0, :, 0, 0], (1 - torch.tensor([0.485, 0.456, 0.406])) /
                               torch.tensor([0.229, 0.224, 0.225]))  # fmt: skip


def test_crop_tracker_smooths_and_restarts_on_a_jump():
    tracker = CropTracker(follow=0.5)
    first = tracker.update(CropBox(100.0, 100.0, 50.0))
    assert first == CropBox(100.0, 100.0, 50.0)
    moved = tracker.update(CropBox(110.0, 100.0, 60.0))
    assert moved == CropBox(105.0, 100.0, 55.0)
    jumped = tracker.update(CropBox(400.0, 100.0, 55.0))  # centre moved ~5 half sides
    assert jumped == CropBox(400.0, 100.0, 55.0)
    tracker.reset()
    assert tracker.update(CropBox(1.0, 2.0, 3.0)) == CropBox(1.0, 2.0, 3.0)
    with pytest.raises(ValueError):
        CropTracker(follow=0.0)


# --- frames in, hands out ---------------------------------------------------------------------


class FixedDetector:
    """Reports the same two hands (or only those in ``sides``) in every frame."""

    def __init__(self, sides=("left", "right")):
        self.sides = sides
        self.points = {
            "left": np.array([[120.0, 140.0], [180.0, 230.0]]),
            "right": np.array([[200.0, 150.0], [260.0, 220.0]]),
        }

    def __call__(self, frame):
        return {s: (self.points[s], 0.9) for s in self.sides}


def test_results_land_where_dirs_camera_puts_them(model, layer):
    backend = DIRBackend(model, layer, FixedDetector(), video=False, focal=500.0)
    frame = np.random.default_rng(0).integers(0, 255, (360, 480, 3), dtype=np.uint8)
    found = backend([frame])[0]
    assert set(found) == {"left", "right"} and backend.reasons == [None]
    box = backend.boxes[0]
    assert box == two_hand_box(FixedDetector().points)
    crop = torch.from_numpy(cut(frame, box))[None]
    with torch.no_grad():
        final = model(to_network_input(crop)).final
    for side, obs in found.items():
        assert isinstance(obs, HandObservation) and obs.score == pytest.approx(0.9)
        assert obs.joints3d.shape == (21, 3) and obs.hand_pose.shape == (15, 3)
        s, tx, ty = final.params[side][0, 61:64].double().numpy()
        # the wrist (DIR's root) sits on the ray through its pixel in the crop ...
        np.testing.assert_allclose(obs.joints2d[0], box.to_frame(np.array([tx, ty])), atol=1e-6)
        # ... and the hands lie in front of the camera
        assert obs.joints3d[0, 2] > 0
    # the hands' depth difference is DIR's offset
    dz = found["right"].joints3d[0, 2] - found["left"].joints3d[0, 2]
    assert dz == pytest.approx(float(final.offset[0, 2]) * OFFSET_UNIT, abs=1e-6)
    # a posed hand has the shape of DIR's own, root-relative
    rel = found["left"].joints3d - found["left"].joints3d[0]
    np.testing.assert_allclose(rel, final.hands["left"].joints[0].double().numpy(), atol=1e-5)


def test_a_frame_without_both_hands_gets_none_and_a_reason(model, layer):
    backend = DIRBackend(model, layer, FixedDetector(("right",)), video=True)
    frames = [np.zeros((120, 160, 3), np.uint8)] * 2
    assert backend(frames) == [{}, {}]
    assert backend.reasons == ["the detector saw right; DIR needs both hands"] * 2
    assert backend.boxes == [None, None]


def test_another_backend_can_be_the_detector(model, layer):
    class Backend:
        def __call__(self, frames):
            obs = lambda side, x: HandObservation(  # noqa: E731
                side, 0.8, np.zeros(3), np.zeros((15, 3)), np.zeros(10), np.zeros(3),
                np.zeros((21, 3)), np.array([[x, 50.0], [x + 30, 90.0]]),
            )  # fmt: skip
            return [{"left": obs("left", 20.0), "right": obs("right", 80.0)} for _ in frames]

    backend = DIRBackend(model, layer, BackendDetector(Backend()), video=False)
    found = backend([np.zeros((120, 160, 3), np.uint8)])[0]
    assert set(found) == {"left", "right"}
    assert found["left"].score == pytest.approx(0.8)


def test_precision_is_checked(model, layer):
    from handmocap.core.errors import HandmocapError

    with pytest.raises(HandmocapError, match="precision"):
        DIRBackend(model, layer, FixedDetector(), precision="fp8")


@needs_image
def test_real_two_hand_image_with_mediapipe_as_the_detector(model, layer):
    import cv2

    from handmocap.core.backends.dir import MediaPipeDetector

    frame = cv2.cvtColor(cv2.imread(str(TWO_HANDS)), cv2.COLOR_BGR2RGB)
    detector = MediaPipeDetector(video=False)
    seen = detector(frame)
    assert set(seen) == {"left", "right"}
    backend = DIRBackend(model, layer, detector, video=False)
    found = backend([frame, frame[:, : frame.shape[1] // 3].copy()])
    assert set(found[0]) == {"left", "right"} and backend.reasons[0] is None
    box = backend.boxes[0]
    for side, (points, _) in seen.items():
        # both hands inside the crop, with the official 80 % framing
        assert np.all(np.abs(points - [box.cx, box.cy]) < box.half * 0.85), side
        assert np.isfinite(found[0][side].joints2d).all()
    # the left third of the picture holds at most one hand: no hands, and why
    assert found[1] == {} and "DIR needs both hands" in backend.reasons[1]


def test_detect_command_says_what_the_dir_backend_lacks(tmp_path):
    image = tmp_path / "frame.png"
    import cv2

    cv2.imwrite(str(image), np.zeros((32, 32, 3), np.uint8))
    env = {"HANDMOCAP_MODELS": str(tmp_path / "models"), "PATH": "/usr/bin:/bin"}
    (tmp_path / "models").mkdir()
    run = subprocess.run(
        [sys.executable, "-m", "handmocap.core.cli", "detect", str(image), "--backend", "dir"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert run.returncode != 0
    assert "the dir backend cannot run yet" in run.stderr
    assert "DIR.pth" in run.stderr and "MANO_RIGHT.pkl" in run.stderr
    assert "Traceback" not in run.stderr  # one clear message, not a crash


@needs_image
def test_capture_with_the_dir_backend_keeps_frames_without_both_hands_empty(
    tmp_path, capsys, monkeypatch, model, layer
):
    """``handmocap capture --backend dir`` end to end, with random weights in place of DIR.pth."""
    import cv2

    from handmocap.core import cli
    from handmocap.core.backends.dir import MediaPipeDetector
    from handmocap.core.take import read_take

    def build(cls, models_dir, detector="mediapipe", video=True, **kwargs):
        assert detector == "mediapipe"
        return cls(model, layer, MediaPipeDetector(video=video), video=video, **kwargs)

    monkeypatch.setattr(DIRBackend, "from_models_dir", classmethod(build))
    monkeypatch.setenv("HANDMOCAP_MODELS", "")
    photo = cv2.resize(cv2.imread(str(TWO_HANDS)), (320, 480))
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(5):
        frame = photo.copy()
        if i == 3:
            frame[:, 130:] = 90  # the right half covered: one hand left in view
        cv2.imwrite(str(folder / f"frame{i}.png"), frame)
    take = tmp_path / "two.take"
    args = ["capture", str(folder), "-o", str(take), "--backend", "dir", "--progress", "none"]
    assert cli.main(args) == 0, capsys.readouterr().err
    result = read_take(take)
    assert result.manifest.backend == "dir" and result.num_frames == 5
    assert result.manifest.settings["detector"] == "mediapipe"
    for side in ("left", "right"):
        present = result.hand(side)["present"]
        assert present[[0, 1, 2, 4]].all() and not present[3], side
