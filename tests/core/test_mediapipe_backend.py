"""The mediapipe backend on real images and a real video, handedness, and bad input."""

from __future__ import annotations

import builtins
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from handmocap.core import cli
from handmocap.core.backends import mediapipe as mp_backend
from handmocap.core.backends.mediapipe import (
    Landmarks,
    MediaPipeBackend,
    MediaPipeLandmarker,
    one_per_side,
)
from handmocap.core.errors import HandmocapError
from handmocap.core.handmodel import HandLayer

REALDATA = Path(__file__).resolve().parents[3] / "shared" / "realdata"
WOMAN = REALDATA / "mediapipe_rs" / "google_sample_woman_hands.jpg"
THUMBS_UP = REALDATA / "mediapipe_samples" / "hand_landmarker" / "thumbs-up.png"
TWO_LEFT = REALDATA / "tfjs_models_hand_pose" / "hands.jpg"
ASL = REALDATA / "tfjs_models_hand_pose" / "asl_hand.25fps.mp4"
ASL_2D = REALDATA / "tfjs_models_hand_pose" / "asl_hand.full.json"
OFFICE = REALDATA / "acr_demo" / "magic.jpg"
pytestmark = pytest.mark.skipif(not WOMAN.is_file(), reason=f"real data not present: {REALDATA}")


def rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def video(path: Path, limit: int | None = None) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while limit is None or len(frames) < limit:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    return frames


@pytest.fixture(scope="module")
def layer():
    return HandLayer.from_models_dir(None, "openhand")


@pytest.fixture(scope="module")
def still(layer):
    return MediaPipeBackend(layer, video=False)


def test_handedness_on_a_real_image_with_known_hands():
    """The woman raises her right hand over her head and holds her left hand low."""
    with MediaPipeLandmarker(video=False) as landmarker:
        hands = {h.side: h for h in landmarker(rgb(WOMAN))}
    assert set(hands) == {"left", "right"}
    assert hands["right"].pixels[0, 1] < 500 < hands["left"].pixels[0, 1]  # wrist heights
    # a mirrored image swaps the hands; mirrored=True keeps MediaPipe's (selfie) labels
    with MediaPipeLandmarker(video=False) as landmarker:
        flipped = {h.side: h for h in landmarker(rgb(WOMAN)[:, ::-1])}
    assert flipped["left"].pixels[0, 1] < 500 < flipped["right"].pixels[0, 1]
    with MediaPipeLandmarker(video=False, mirrored=True) as landmarker:
        selfie = {h.side: h for h in landmarker(rgb(WOMAN))}
    assert selfie["left"].pixels[0, 1] < 500


def test_world_and_pixel_landmarks_agree_with_upstream_reference():
    """MediaPipe here reproduces the upstream test's landmarks for the ASL clip."""
    reference = np.array(json.loads(ASL_2D.read_text()))[:25, :, :2]
    with MediaPipeLandmarker(video=True) as landmarker:
        found = [landmarker(f) for f in video(ASL, 25)]
    pixels = np.array([f[0].pixels for f in found])
    assert np.linalg.norm(pixels - reference, axis=-1).max() < 5.0
    world = found[0][0].world
    assert 0.06 < np.linalg.norm(world[9] - world[0]) < 0.12  # metres: wrist to middle knuckle


def test_observations_on_real_images(still, layer):
    results = still([rgb(WOMAN), rgb(THUMBS_UP)])
    assert set(results[0]) == {"left", "right"} and len(results[1]) == 1
    focal, center = still.camera(rgb(WOMAN).shape)
    for frame in results:
        for side, hand in frame.items():
            assert hand.side == side
            assert np.isfinite(hand.joints3d).all() and (hand.joints3d[:, 2] > 0.1).all()
            assert hand.vertices is not None and hand.vertices.shape == (
                layer.models[side].num_vertices,
                3,
            )
    hand = results[0]["right"]
    np.testing.assert_allclose(
        hand.joints2d, hand.joints3d[:, :2] / hand.joints3d[:, 2:] * focal + center, atol=1e-6
    )
    # the fitted hand lies on MediaPipe's landmarks
    with MediaPipeLandmarker(video=False) as landmarker:
        marks = {h.side: h for h in landmarker(rgb(WOMAN))}
    for side in ("left", "right"):
        err = np.linalg.norm(results[0][side].joints2d - marks[side].pixels, axis=-1)
        assert err.mean() < 10.0, (side, err.mean())


@pytest.mark.slow
def test_real_video_fit_stays_on_mediapipes_landmarks(layer):
    """The whole ASL clip (325 frames): projected fitted keypoints within 8 px on average."""
    frames = video(ASL)
    backend = MediaPipeBackend(layer, video=True)
    found = backend.landmarks(frames)
    assert all(len(f) == 1 and f[0].side == "right" for f in found)  # one right hand signing
    results = backend(frames)
    errors = np.array(
        [
            np.linalg.norm(r["right"].joints2d - f[0].pixels, axis=-1)
            for r, f in zip(results, found, strict=True)
        ]
    )
    assert errors.mean() < 8.0, errors.mean()
    # one shape for the whole take
    assert len({tuple(r["right"].betas) for r in results}) == 1


def test_no_hands_one_hand_and_a_hand_leaving_the_frame(layer):
    office = rgb(OFFICE)
    empty = np.ascontiguousarray(office[:400, 1300:])  # shelves and a monitor, no hand
    gray = np.full((240, 320, 3), 128, np.uint8)
    one = rgb(THUMBS_UP)
    # slide a window over the woman image so that her raised (right) hand leaves the frame
    woman = rgb(WOMAN)
    windows = [np.ascontiguousarray(woman[250:890, x : x + 400]) for x in (0, 60, 120, 400, 480)]
    backend = MediaPipeBackend(layer, video=True)
    results = backend([empty, gray, one, *windows])
    assert results[0] == {} and results[1] == {}
    assert len(results[2]) == 1
    seen = ["right" in r for r in results[3:]]
    assert seen[0] and not seen[-1]  # present at first, gone once out of the window
    for frame in results:
        for hand in frame.values():
            assert np.isfinite(hand.joints2d).all()


def test_two_hands_claiming_one_side():
    """hands.jpg shows two hands MediaPipe both calls the same side: one keeps it."""
    with MediaPipeLandmarker(video=False) as landmarker:
        hands = landmarker(rgb(TWO_LEFT))
    assert sorted(h.side for h in hands) == ["left", "right"]
    a = Landmarks("left", 0.9, np.zeros((21, 2)), np.zeros((21, 3)))
    b = Landmarks("left", 0.6, np.ones((21, 2)), np.zeros((21, 3)))
    one_per_side([a, b])
    assert (a.side, b.side) == ("left", "right")


def test_detect_command_with_mediapipe(tmp_path, capsys):
    out = tmp_path / "woman.png"
    assert cli.main(["detect", str(WOMAN), "--json", "--overlay", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["images"][0]["backend"] == "mediapipe"
    assert {h["side"] for h in report["images"][0]["hands"]} == {"left", "right"}
    drawn = cv2.imread(str(out))
    assert drawn.shape[:2] == rgb(WOMAN).shape[:2]


def test_missing_mediapipe_is_one_clear_error(monkeypatch, layer):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "mediapipe":
            raise ImportError("No module named 'mediapipe'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(HandmocapError, match="mediapipe 0.10.21"):
        MediaPipeBackend(layer)
    assert "--no-deps" in mp_backend.INSTALL_HINT


def test_second_hand_search_loses_no_frame(layer):
    """Following one hand and looking for a second every few frames finds a hand that comes
    into view on the same frame as MediaPipe's search on every frame, and the same landmarks."""
    image = rgb(TWO_LEFT)
    one_hand = image.copy()
    one_hand[:, 360:] = 255  # the right-hand side of the picture empty: one hand in view
    frames = []
    for t in range(32):
        shown = image if 13 <= t < 24 else one_hand
        frames.append(np.ascontiguousarray(np.roll(shown, t % 5, axis=1)))  # a little motion

    def counts(every: int):
        backend = MediaPipeBackend(layer, search_every=every)
        found = backend.landmark_chunk([backend.prepare(f) for f in frames])
        return [len(hands) for hands in found], found

    every_frame, reference = counts(1)
    searched, found = counts(8)
    assert every_frame == [1] * 13 + [2] * 11 + [1] * 8  # the clip is what the test says
    assert searched == every_frame
    # the same hands, up to the few pixels by which a landmarker's crop follows its history
    for ours, theirs in zip(found, reference, strict=True):
        for a in ours:
            nearest = min(np.abs(a.pixels - b.pixels).max() for b in theirs)
            assert nearest < 8.0
