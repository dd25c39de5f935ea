"""The acr backend on a real image (deterministic random weights), its errors, and `detect`."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from handmocap.core import cli
from handmocap.core.acr.checkpoint import official_to_port, port_to_official
from handmocap.core.acr.model import ACR, ACRConfig
from handmocap.core.acr.preprocess import letterbox
from handmocap.core.backends import acr as acr_backend
from handmocap.core.backends.acr import ACRBackend
from handmocap.core.capture import choose_backend
from handmocap.core.commands import detect
from handmocap.core.errors import HandmocapError
from handmocap.core.handmodel import HandLayer, open_model_path
from handmocap.core.models_dir import OPEN_ACR_CHECKPOINT, acr_weights
from handmocap.core.models_dir import acr_missing_files as missing_files

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "parity"))
import deterministic  # noqa: E402

REALDATA = Path(__file__).resolve().parents[3] / "shared" / "realdata"
IMAGE = REALDATA / "acr_demo" / "magic.jpg"
needs_image = pytest.mark.skipif(not IMAGE.is_file(), reason=f"real image {IMAGE} not present")


@pytest.fixture(scope="module")
def model():
    net = ACR.from_config(ACRConfig())
    state, _ = official_to_port(
        deterministic.fill(port_to_official(net.state_dict()), prefix="module.")
    )
    net.load_state_dict(state)
    return net.eval()


@pytest.fixture(scope="module")
def layer():
    return HandLayer.from_models_dir(None, "openhand")


@pytest.fixture(scope="module")
def frame():
    return cv2.cvtColor(cv2.imread(str(IMAGE)), cv2.COLOR_BGR2RGB)


@needs_image
def test_real_image_gives_consistent_observations(model, layer, frame):
    backend = ACRBackend(model, layer)
    parsed, boxes = backend.run_network([frame])
    (result,) = backend([frame])
    assert set(result) == {"left", "right"}
    focal, center = backend.camera(frame.shape)
    assert focal == pytest.approx(1265.0 * max(frame.shape[:2]) / 512)
    for side, hand in result.items():
        assert hand.joints3d.shape == (21, 3) and hand.joints2d.shape == (21, 2)
        assert np.isfinite(hand.joints3d).all() and (hand.joints3d[:, 2] > 0).all()
        # the 2D joints are the 3D joints seen through the backend's camera
        expected = hand.joints3d[:, :2] / hand.joints3d[:, 2:] * focal + center
        np.testing.assert_allclose(hand.joints2d, expected, atol=1e-6)
        # the middle knuckle lands where the weak-perspective camera put it
        scale, tx, ty = parsed[side].camera[0].double().numpy()
        np.testing.assert_allclose(
            hand.joints2d[9], boxes[0].from_normalized(np.array([tx, ty])), atol=1e-3
        )
        # absolute finger pose = network output + the model's mean pose
        mean = layer.models[side].arrays["hands_mean"].reshape(15, 3)
        rel = parsed[side].hand_pose_relative[0].double().numpy()
        np.testing.assert_allclose(hand.hand_pose, rel + mean, atol=1e-5)
        # posing the hand model with the observation reproduces its joints
        with torch.no_grad():
            out = layer(
                side,
                *(torch.tensor(a, dtype=torch.float32)[None]
                  for a in (hand.global_orient, hand.hand_pose, hand.betas, hand.transl)),
            )  # fmt: skip
        np.testing.assert_allclose(out.keypoints[0].numpy(), hand.joints3d, atol=1e-5)


@needs_image
def test_focal_length_sets_the_depth(model, layer, frame):
    near = ACRBackend(model, layer, focal=1000.0)([frame])[0]
    far = ACRBackend(model, layer, focal=2000.0)([frame])[0]
    for side in near:
        assert far[side].joints3d[9, 2] == pytest.approx(2 * near[side].joints3d[9, 2])
        np.testing.assert_allclose(far[side].joints2d[9], near[side].joints2d[9], atol=1e-6)


@needs_image
def test_frames_of_different_sizes_in_one_batch(model, layer, frame):
    small = cv2.resize(frame, (480, 270))
    portrait = np.ascontiguousarray(frame[:, 600:1300])
    results = ACRBackend(model, layer)([frame, small, portrait])
    assert len(results) == 3
    image, box = letterbox(portrait)
    assert box.pad_left > 0 and box.pad_top == 0


def test_missing_files_are_named(tmp_path):
    msgs = missing_files(tmp_path)
    assert len(msgs) == 3
    assert any(str(tmp_path / "acr" / "wild.pkl") in m for m in msgs)
    assert any("MANO_LEFT.pkl" in m and "mano.is.tue.mpg.de" in m for m in msgs)
    (tmp_path / "acr").mkdir()
    (tmp_path / "acr" / "wild.pkl").write_bytes(b"x")
    assert len(missing_files(tmp_path)) == 2
    with pytest.raises(HandmocapError, match="official weights cannot run yet.*MANO_RIGHT.pkl"):
        ACRBackend.from_models_dir(tmp_path, weights="official")
    assert all("--models" in m for m in missing_files(None))


def test_from_models_dir_loads_an_official_format_checkpoint(tmp_path, model):
    (tmp_path / "acr").mkdir()
    torch.save(port_to_official(model.state_dict()), tmp_path / "acr" / "wild.pkl")
    (tmp_path / "mano").mkdir()
    for side in ("right", "left"):  # files in MANO's layout stand in for the user's
        shutil.copy(open_model_path(side), tmp_path / "mano" / f"MANO_{side.upper()}.pkl")
    backend = ACRBackend.from_models_dir(tmp_path)
    loaded = backend.model.state_dict()
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded[key], value)
    assert backend.layer.models["right"].kind == "mano"


@needs_image
def test_detect_command_json_and_overlay(tmp_path, monkeypatch, capsys, model, layer, frame):
    monkeypatch.setattr(detect, "build_backend", lambda args: ACRBackend(model, layer))
    out = tmp_path / "overlay.png"
    assert (
        cli.main(["detect", str(IMAGE), "--backend", "acr", "--json", "--overlay", str(out)]) == 0
    )
    report = json.loads(capsys.readouterr().out)
    (item,) = report["images"]
    assert item["width"] == frame.shape[1] and item["backend"] == "acr"
    assert {h["side"] for h in item["hands"]} == {"left", "right"}
    drawn = cv2.cvtColor(cv2.imread(str(out)), cv2.COLOR_BGR2RGB)
    assert drawn.shape == frame.shape
    changed = np.abs(drawn.astype(int) - frame).sum(2) > 30
    assert changed.sum() > 50  # keypoints, bones and labels were drawn
    # several images: the overlay argument is a folder
    folder = tmp_path / "many"
    assert (
        cli.main(["detect", str(IMAGE), str(IMAGE), "--backend", "acr", "--overlay", str(folder)])
        == 0
    )
    assert (folder / "magic_hands.png").is_file()
    assert "left (" in capsys.readouterr().out


def test_detect_command_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("HANDMOCAP_MODELS", raising=False)
    bad = tmp_path / "not_an_image.png"
    bad.write_bytes(b"hello")
    assert cli.main(["detect", str(bad)]) == 2
    assert "not an image" in capsys.readouterr().err
    good = tmp_path / "blank.png"
    cv2.imwrite(str(good), np.zeros((32, 32, 3), np.uint8))
    argv = ["detect", str(good), "--backend", "acr", "--models", str(tmp_path)]
    assert cli.main([*argv, "--acr-weights", "official"]) == 2
    err = capsys.readouterr().err
    assert "wild.pkl" in err and "MANO_RIGHT.pkl" in err and len(err.strip().splitlines()) == 1


def test_precision_must_be_known(model, layer):
    with pytest.raises(HandmocapError, match="precision"):
        ACRBackend(model, layer, precision="int8")
    assert acr_backend.PRECISIONS["bf16"] is torch.bfloat16


@needs_image
@pytest.mark.slow
def test_capture_through_the_acr_backend(model, layer, frame, tmp_path, monkeypatch):
    """A capture with the acr backend (deterministic weights standing in for wild.pkl): every
    frame through the network, the tracker and into a complete take, chunk by chunk."""
    from handmocap.core import capture as capture_module
    from handmocap.core.take import HandStatus, read_take

    folder = tmp_path / "frames"
    folder.mkdir()
    small = cv2.resize(frame, (frame.shape[1] // 2, frame.shape[0] // 2))
    for i in range(5):  # the picture drifting a little, as a hand-held camera would
        cv2.imwrite(str(folder / f"{i:03d}.png"), np.roll(small, 3 * i, axis=1)[..., ::-1])
    backend = ACRBackend(model, layer)
    backend.checkpoint = "acr/wild.pkl"  # what from_models_dir records for the official file
    monkeypatch.setattr(capture_module, "build_backend", lambda *args, **kwargs: backend)
    settings = capture_module.CaptureSettings(backend="acr", device="cpu", chunk=2)
    report = capture_module.capture(folder, tmp_path / "acr.take", settings)
    take = read_take(tmp_path / "acr.take")
    assert report.backend == "acr" and take.manifest.complete and take.num_frames == 5
    assert len(take.chunks) == 3 and take.manifest.checkpoint == "acr/wild.pkl"
    expected = backend([np.ascontiguousarray(small)])[0]  # the first frame, on its own
    for side in ("left", "right"):
        hand = take.hand(side)
        seen = hand["status"] != HandStatus.NOT_DETECTED
        assert seen.all(), side  # the network sees both hands in every frame
        if hand["present"][0]:
            # random weights place hands far away: float32 numbers, compared relatively
            np.testing.assert_allclose(hand["joints3d"][0], expected[side].joints3d, rtol=1e-5)
        # what the take holds is what the hand model gives for the stored parameters
        rows = hand["present"]
        params = [
            torch.tensor(hand[k][rows]) for k in ("global_orient", "hand_pose", "betas", "transl")
        ]
        if rows.any():
            with torch.no_grad():
                keypoints = layer(side, *params).keypoints.double().numpy()
            np.testing.assert_allclose(keypoints, hand["joints3d"][rows], rtol=1e-5, atol=1e-4)


# --------------------------------------------------------------------------------------------
# handmocap's own weights (core/assets/acr_open): what runs while the official files are missing
# --------------------------------------------------------------------------------------------


@pytest.fixture
def official_folder(tmp_path) -> Path:
    """A models folder with every official file (MANO stand-ins in MANO's layout)."""
    (tmp_path / "acr").mkdir()
    (tmp_path / "acr" / "wild.pkl").write_bytes(b"not read unless the official weights run")
    (tmp_path / "mano").mkdir()
    for side in ("right", "left"):
        shutil.copy(open_model_path(side), tmp_path / "mano" / f"MANO_{side.upper()}.pkl")
    return tmp_path


def test_the_shipped_weights_run_without_the_official_files(tmp_path, official_folder):
    for folder in (None, tmp_path / "empty"):
        backend = ACRBackend.from_models_dir(folder)
        assert backend.checkpoint == OPEN_ACR_CHECKPOINT == "handmocap/acr_open.pt"
        assert backend.layer.models["right"].kind == "openhand"
        assert backend.input_size == 128  # the shipped network's, from its checkpoint
    # asked for, they run even where the official files are
    backend = ACRBackend.from_models_dir(official_folder, weights="open", threshold=0.5)
    assert backend.checkpoint == OPEN_ACR_CHECKPOINT and backend.threshold == 0.5
    assert acr_weights(official_folder) == "official"
    assert acr_weights(official_folder, "open") == "open" and acr_weights(None) == "open"
    with pytest.raises(HandmocapError, match="acr weights must be one of auto, official, open"):
        acr_weights(None, "wild")


def test_backend_choice_names_the_weights(tmp_path, official_folder, monkeypatch):
    from handmocap.core import capture as capture_module

    name, why = choose_backend("acr", None)
    assert name == "acr" and "own light ACR weights" in why
    assert choose_backend("auto", official_folder) == (
        "acr", f"ACR's official weights and the MANO files are in {official_folder}")  # fmt: skip
    assert choose_backend("auto", None)[0] == "mediapipe"  # better on real footage than ours
    name, why = choose_backend("auto", official_folder, "open")
    assert name == "acr" and "open acr weights requested" in why
    with pytest.raises(HandmocapError, match="official weights cannot run yet.*wild.pkl"):
        choose_backend("auto", tmp_path / "nothing", "official")
    real = capture_module.importlib.util.find_spec
    monkeypatch.setattr(capture_module.importlib.util, "find_spec",
                        lambda n, *a: None if n == "mediapipe" else real(n, *a))  # fmt: skip
    name, why = choose_backend("auto", None)
    assert name == "acr" and "mediapipe is not installed" in why and "own light" in why


def test_capture_with_the_shipped_weights_records_them(tmp_path, monkeypatch):
    """A real clip through ``handmocap capture --backend acr`` with no models folder: the take
    says which weights and which hand model made it."""
    from handmocap.core.take import read_take

    monkeypatch.delenv("HANDMOCAP_MODELS", raising=False)
    clip = Path(cli.__file__).resolve().parent / "assets" / "demo" / "asl_hand.25fps.mp4"
    take = tmp_path / "open.take"
    argv = ["capture", str(clip), "-o", str(take), "--backend", "acr", "--end", "6",
            "--batch", "3", "--progress", "none", "--device", "cpu"]  # fmt: skip
    assert cli.main(argv) == 0
    read = read_take(take)
    assert read.manifest.complete and read.num_frames == 6
    assert read.manifest.checkpoint == "handmocap/acr_open.pt"
    assert read.manifest.hand_model.startswith("openhand-")
