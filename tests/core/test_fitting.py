"""Fitting the hand model to keypoints: accuracy on known sequences, limits, kinematics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from handmocap.core.fitting import FitSettings, HandFitter, KeypointTrack, kabsch
from handmocap.core.handmodel import HandLayer, load_hand_models
from handmocap.core.kinematics import KeypointLayer, joint_frames, joint_limits
from handmocap.core.rotations import axis_angle_to_matrix

FOCAL, CENTER = 900.0, (320.0, 240.0)
DEG = np.pi / 180


@pytest.fixture(scope="module")
def models():
    return load_hand_models(kind="openhand")


@pytest.fixture(scope="module")
def fitters(models):
    return {s: HandFitter(models[s]) for s in ("left", "right")}


def angle_track(frames: int, keys: list[dict[str, tuple]], rng) -> np.ndarray:
    """(T, 15, 3) joint angles (radians) easing through key poses given per finger in degrees.

    A key maps a finger to ((flex1, flex2, flex3), abduction of the base joint).
    """
    chains = {"index": 0, "middle": 3, "pinky": 6, "ring": 9, "thumb": 12}
    poses = []
    for key in keys:
        a = np.zeros((15, 3))
        for finger, (flex, spread) in key.items():
            base = chains[finger]
            a[base : base + 3, 0] = np.radians(flex)
            a[base, 1] = np.radians(spread)
        poses.append(a + rng.normal(scale=2 * DEG, size=a.shape) * [1, 1, 0])
    spans = np.array_split(np.arange(frames), len(poses) - 1)
    out = []
    for k, span in enumerate(spans):
        w = np.linspace(0, 1, len(span), endpoint=False)[:, None, None]
        out.append((1 - w) * poses[k] + w * poses[k + 1])
    return np.concatenate(out)


BENT = {f: ((60, 80, 40), 0) for f in ("index", "middle", "ring", "pinky")} | {
    "thumb": ((30, 30, 40), 10)
}
SPREAD = {"index": ((0, 5, 0), 20), "middle": ((5, 5, 0), 0), "ring": ((5, 5, 0), -15),
          "pinky": ((5, 5, 0), -25), "thumb": ((-20, 0, 0), 35)}  # fmt: skip
# middle finger crossed over the index: index abducted toward the middle, middle toward thumb
CROSSED = {"index": ((20, 10, 5), -22), "middle": ((25, 10, 5), 25), "ring": ((70, 90, 40), 0),
           "pinky": ((70, 90, 40), 0), "thumb": ((40, 40, 30), -20)}  # fmt: skip
FLAT = {f: ((0, 0, 0), 0) for f in ("index", "middle", "ring", "pinky", "thumb")}


def synthetic(fitter: HandFitter, angles: np.ndarray, rng):
    """Truth and observations (3D with an arbitrary origin, 2D through a camera)."""
    t = len(angles)
    pose = fitter.angles_to_pose(torch.tensor(angles, dtype=torch.float32))
    orient = torch.tensor(rng.normal(size=3) * 0.7, dtype=torch.float32) + torch.linspace(
        0, 0.4, t
    )[:, None] * torch.tensor([0.0, 1.0, 0.3])
    betas = torch.tensor(np.clip(rng.normal(size=10), -2, 2), dtype=torch.float32)
    transl = torch.tensor([0.04, -0.03, 0.45]) + torch.linspace(0, 0.05, t)[:, None]
    with torch.no_grad():
        kp = fitter.layer(orient, pose, betas.expand(t, 10), transl).double().numpy()
    pixels = kp[..., :2] / kp[..., 2:] * FOCAL + np.array(CENTER)
    world = kp - kp[:, :1] + np.array([0.3, -0.1, 0.2])
    truth = {"pose": pose.double().numpy(), "keypoints": kp}
    return truth, KeypointTrack(world=world, pixels=pixels, focal=FOCAL, center=CENTER)


def joint_errors_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(T, 15, 3) axis-angles -> (T, 15) geodesic angle between the joint rotations."""
    rel = np.einsum("tjab,tjac->tjbc", axis_angle_to_matrix(a), axis_angle_to_matrix(b))
    cos = (np.trace(rel, axis1=-2, axis2=-1) - 1) / 2
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("side", "keys"),
    [
        ("right", [FLAT, BENT, SPREAD]),
        ("left", [SPREAD, CROSSED, BENT]),
        ("right", [CROSSED, FLAT]),
    ],
    ids=["right-bent-spread", "left-crossed", "right-crossed"],
)
def test_fit_recovers_known_sequences(fitters, side, keys):
    rng = np.random.default_rng(len(keys) + (side == "left"))
    angles = angle_track(16, keys, rng)
    truth, track = synthetic(fitters[side], angles, rng)
    result = fitters[side].fit(track)
    keypoint_error = np.linalg.norm(result.keypoints - truth["keypoints"], axis=-1) * 1000
    assert keypoint_error.mean() < 2.0, keypoint_error.mean()
    errors = joint_errors_deg(result.hand_pose, truth["pose"])
    assert errors.max() < 20.0, (errors.max(), errors.max(0).round(1))


def test_fitted_angles_stay_within_the_limits(fitters):
    """Even landmarks that ask for an impossible pose give an anatomically possible one."""
    rng = np.random.default_rng(5)
    fitter = fitters["right"]
    impossible = np.zeros((4, 15, 3))
    impossible[:, :12, 0] = np.radians(-70)  # fingers bent far backwards
    impossible[:, :12, 2] = np.radians(60)  # and twisted
    pose = torch.einsum("jab,tjb->tja", fitter.frames, torch.tensor(impossible).float())
    with torch.no_grad():
        kp = fitter.layer(torch.zeros(4, 3), pose, torch.zeros(4, 10)).double().numpy()
    result = fitter.fit(KeypointTrack(world=kp + rng.normal(0, 1e-3, kp.shape)),
                        FitSettings(iterations=8))  # fmt: skip
    limits = joint_limits()
    assert (result.angles >= limits[..., 0] - 1e-6).all()
    assert (result.angles <= limits[..., 1] + 1e-6).all()
    assert np.isnan(result.transl).all()  # no pixels: no absolute position


def test_keypoint_layer_matches_the_hand_layer(models):
    layer = HandLayer(models)
    g = torch.Generator().manual_seed(3)
    for side in ("left", "right"):
        fast = KeypointLayer(models[side])
        args = (torch.randn(5, 3, generator=g), 0.5 * torch.randn(5, 15, 3, generator=g),
                torch.randn(5, 10, generator=g), torch.randn(5, 3, generator=g))  # fmt: skip
        torch.testing.assert_close(fast(*args), layer(side, *args).keypoints, atol=1e-5, rtol=0)


def test_joint_frames_are_anatomical(models):
    for side in ("left", "right"):
        frames = joint_frames(models[side])
        eye = np.einsum("jab,jac->jbc", frames, frames)
        np.testing.assert_allclose(eye, np.broadcast_to(np.eye(3), eye.shape), atol=1e-9)
    # positive flexion of every finger joint curls the fingertip toward the palm side
    fitter = HandFitter(models["right"])
    flat = fitter.layer(torch.zeros(1, 3), torch.zeros(1, 15, 3), torch.zeros(1, 10))[0]
    curl = np.zeros((1, 15, 3))
    curl[0, :, 0] = np.radians(45)
    bent = fitter.layer(
        torch.zeros(1, 3), fitter.angles_to_pose(torch.tensor(curl).float()), torch.zeros(1, 10)
    )[0]
    flat, bent = flat.double().numpy(), bent.detach().double().numpy()
    palm_down = np.cross(flat[5] - flat[0], flat[17] - flat[0])  # right hand: toward the palm
    palm_down /= np.linalg.norm(palm_down)
    for tip in (4, 8, 12, 16, 20):
        assert (bent[tip] - flat[tip]) @ palm_down > 0.01, tip


def test_kabsch_recovers_a_rotation():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(10, 3))
    rot = axis_angle_to_matrix(np.array([0.3, -1.2, 0.5]))
    np.testing.assert_allclose(kabsch(points, points @ rot.T + 2.0), rot, atol=1e-9)


def test_track_needs_landmarks():
    with pytest.raises(ValueError, match="needs"):
        KeypointTrack()


def test_keypoint_jacobian_matches_autograd(models):
    """The closed-form derivatives the solver uses equal torch's autograd ones."""
    g = torch.Generator().manual_seed(7)
    for side in ("left", "right"):
        layer = KeypointLayer(models[side]).double()
        orient = torch.randn(3, 3, generator=g, dtype=torch.float64)
        pose = 0.6 * torch.randn(3, 15, 3, generator=g, dtype=torch.float64)
        betas = torch.randn(3, 10, generator=g, dtype=torch.float64)
        keypoints, d_pose, d_betas = layer.jacobian(orient, pose, betas)
        torch.testing.assert_close(keypoints, layer(orient, pose, betas))
        jo, jp, jb = torch.autograd.functional.jacobian(layer, (orient, pose, betas))
        for b in range(3):  # frames are independent: the block of frame b on itself
            torch.testing.assert_close(d_pose[b, ..., 0, :], jo[b, :, :, b])
            torch.testing.assert_close(d_pose[b, ..., 1:, :], jp[b, :, :, b])
            torch.testing.assert_close(d_betas[b], jb[b, :, :, b])


def test_fit_lowers_the_cost_below_its_closed_form_start(fitters):
    """The solver improves on its closed-form start on noisy landmarks with a gap."""
    rng = np.random.default_rng(11)
    fitter = fitters["right"]
    angles = angle_track(12, [BENT, CROSSED], rng)
    _, track = synthetic(fitter, angles, rng)
    track.world = track.world + rng.normal(0, 4e-3, track.world.shape)  # MediaPipe-like noise
    track.pixels = track.pixels + rng.normal(0, 3.0, track.pixels.shape)
    track.valid[4:6] = False
    start = fitter.fit(track, FitSettings(iterations=0))
    result = fitter.fit(track)
    assert result.iterations > 0
    assert result.loss < 0.8 * start.loss, (result.loss, start.loss)
    # frames without the hand hold the nearest fitted frame's parameters
    np.testing.assert_array_equal(result.hand_pose[4], result.hand_pose[3])
    np.testing.assert_array_equal(result.hand_pose[5], result.hand_pose[6])


def test_a_known_shape_is_kept(fitters):
    rng = np.random.default_rng(4)
    fitter = fitters["left"]
    _, track = synthetic(fitter, angle_track(10, [FLAT, BENT], rng), rng)
    shape = np.linspace(-0.5, 0.5, 10)
    result = fitter.fit(track, betas=shape)
    np.testing.assert_array_equal(result.betas, shape)
    free = fitter.fit(track)
    assert result.loss >= free.loss - 1e-9  # fixing the shape can only cost
