"""Tests of handmocap.core.smoothing: gaps, sign flips, confidence, One Euro, zero-lag smoothing."""

from __future__ import annotations

import math

import numpy as np
import pytest

from handmocap.core import smoothing as sm
from handmocap.core.rotations import axis_angle_to_matrix
from handmocap.core.take import HAND_FIELDS, HandStatus, blank_frames

FPS = 30.0
ALL = ("none", "one-euro-acr", "offline")


def make_hand(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A present hand of ``n`` frames with slowly moving parameters (take dtypes)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None] / FPS
    base = rng.normal(scale=0.3, size=(1, 16, 3))
    rot = base + 0.2 * np.sin(2 * math.pi * 0.5 * t)[..., None]
    return {
        "present": np.ones(n, dtype=bool),
        "status": np.zeros(n, dtype=np.uint8),
        "score": np.ones(n, dtype=np.float32),
        "global_orient": rot[:, 0].astype(np.float32),
        "hand_pose": rot[:, 1:].astype(np.float32),
        "betas": np.repeat(rng.normal(size=(1, 10)), n, 0).astype(np.float32),
        "transl": (np.array([0.0, 0.0, 0.5]) + 0.05 * np.sin(t * [1.0, 2.0, 3.0])).astype(
            np.float32
        ),
    }


def absent(hand: dict[str, np.ndarray], frames) -> dict[str, np.ndarray]:
    """A copy of ``hand`` with ``frames`` not detected (NaN, as a take stores them)."""
    out = {k: v.copy() for k, v in hand.items()}
    out["present"][frames] = False
    out["status"][frames] = 1
    for name in ("score", *sm.OUTPUT_FIELDS):
        out[name][frames] = np.nan
    return out


def rotation_angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(..., 3), (..., 3) axis-angles -> (...) angle of the rotation between them, radians."""
    ma, mb = axis_angle_to_matrix(np.asarray(a, np.float64)), axis_angle_to_matrix(np.asarray(b))
    trace = np.einsum("...ij,...ij->...", ma, mb)
    return np.arccos(np.clip((trace - 1.0) / 2.0, -1.0, 1.0))


def z_rotation(angles: np.ndarray) -> np.ndarray:
    """(T,) angles -> (T, 3) axis-angles about z, written with angles in [0, pi]."""
    wrapped = (angles + math.pi) % (2 * math.pi) - math.pi
    return np.stack([0 * wrapped, 0 * wrapped, wrapped], -1)


# --- shapes, empty input, one frame, presets -------------------------------------------------


@pytest.mark.parametrize("method", ALL)
def test_empty_input(method):
    out = sm.smooth_hand(make_hand(0), FPS, method)
    assert out["hand_pose"].shape == (0, 15, 3) and out["valid"].shape == (0,)


@pytest.mark.parametrize("method", ALL)
def test_one_frame_comes_back(method):
    hand = make_hand(1)
    out = sm.smooth_hand(hand, FPS, method)
    assert out["valid"].tolist() == [True] and not out["bridged"].any()
    assert rotation_angle(out["hand_pose"], hand["hand_pose"]).max() < 1e-3
    np.testing.assert_allclose(out["transl"], hand["transl"], atol=1e-6)
    np.testing.assert_allclose(out["betas"], hand["betas"], atol=1e-5)


@pytest.mark.parametrize("method", ALL)
def test_output_fields_and_dtypes(method):
    out = sm.smooth_hand(make_hand(12), FPS, method)
    for name in sm.OUTPUT_FIELDS:
        assert out[name].shape == (12, *HAND_FIELDS[name].shape)
        assert out[name].dtype == np.float32 and np.isfinite(out[name]).all()
    assert out["valid"].all() and not out["bridged"].any()


def test_none_preset_is_the_raw_take():
    hand = absent(make_hand(20), [3, 4, 15])
    out = sm.smooth_hand(hand, FPS, "none")
    present = hand["present"]
    for name in sm.OUTPUT_FIELDS:
        np.testing.assert_array_equal(out[name][present], hand[name][present])
        assert np.isnan(out[name][~present]).all()
    assert (out["valid"] == present).all()


def test_take_layout():
    """A take's per-hand arrays (take.hand(side)) go in as they are."""
    frames = blank_frames(np.arange(8), np.arange(8) / FPS)
    hand = make_hand(8)
    for name in ("score", *sm.OUTPUT_FIELDS):
        frames[f"right_{name}"][2:] = hand[name][2:]
    frames["right_present"][2:] = True
    frames["right_status"][2:] = HandStatus.OK
    right = {name: frames[f"right_{name}"] for name in HAND_FIELDS}
    out = sm.smooth_hand(right, FPS, "offline")
    assert out["valid"].tolist() == [False] * 2 + [True] * 6
    left = sm.smooth_hand({name: frames[f"left_{name}"] for name in HAND_FIELDS}, FPS)
    assert not left["valid"].any() and np.isnan(left["hand_pose"]).all()


def test_presets_and_settings():
    text = sm.describe_presets()
    assert len(text.splitlines()) == len(sm.PRESETS)
    for name in sm.PRESETS:
        assert text.count(f"{name}:") >= 1
    method, settings = sm.resolve_settings("offline", smoothing_s=0.5)
    assert method == "offline" and settings.smoothing_s == 0.5
    method, settings = sm.resolve_settings("one-euro-acr")
    assert (settings.mincutoff_pose, settings.beta_pose, settings.dcutoff) == (4.0, 0.7, 1.0)
    assert (settings.mincutoff_betas, settings.beta_betas) == (0.6, 0.7)


@pytest.mark.parametrize(
    ("method", "settings", "message"),
    [
        ("gaussian", {}, "unknown smoothing method"),
        ("offline", {"cutoff": 3.0}, "has no setting cutoff"),
        ("offline", {"smoothing_s": -1.0}, "smoothing_s"),
        ("offline", {"degree": 4}, "degree"),
        ("one-euro", {"mincutoff_pose": 0.0}, "mincutoff_pose"),
        ("offline", {"max_gap": 2.5}, "max_gap"),
    ],
)
def test_bad_settings_are_named(method, settings, message):
    with pytest.raises(sm.SmoothingError, match=message):
        sm.smooth_hand(make_hand(3), FPS, method, **settings)


def test_bad_arrays_are_named():
    hand = make_hand(4)
    hand["hand_pose"] = hand["hand_pose"].reshape(4, 45)
    with pytest.raises(ValueError, match="hand_pose"):
        sm.smooth_hand(hand, FPS)
    with pytest.raises(sm.SmoothingError, match="transl"):
        sm.smooth_hand({k: v for k, v in make_hand(4).items() if k != "transl"}, FPS)


# --- gaps ------------------------------------------------------------------------------------


def test_find_segments():
    present = np.array([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 1, 1, 0], dtype=bool)
    segments, bridged = sm.find_segments(present, max_gap=2)
    assert segments == [(1, 6), (10, 12)]
    assert np.flatnonzero(bridged).tolist() == [3, 4]
    assert sm.find_segments(np.zeros(4, bool), 5)[0] == []


@pytest.mark.parametrize("method", ALL)
def test_short_gap_is_bridged(method):
    hand = absent(make_hand(30), slice(10, 15))  # 5 frames: the default bridge length
    out = sm.smooth_hand(hand, FPS, method, max_gap=5)
    assert out["valid"].all()
    assert np.flatnonzero(out["bridged"]).tolist() == [10, 11, 12, 13, 14]
    # the motion is slow: bridged, it comes out close to what the method makes of it unbroken
    unbroken = sm.smooth_hand(make_hand(30), FPS, method)
    assert rotation_angle(out["hand_pose"], unbroken["hand_pose"]).max() < 0.05
    np.testing.assert_allclose(out["transl"], unbroken["transl"], atol=3e-3)


def test_bridge_is_slerp_and_linear():
    hand = make_hand(3)
    hand["global_orient"] = np.array([[0, 0, 0.2], [0, 0, 0], [0, 0, 2.8]], np.float32)
    hand["transl"] = np.array([[0, 0, 1], [0, 0, 0], [0, 0, 2]], np.float32)
    out = sm.smooth_hand(absent(hand, [1]), FPS, "none", max_gap=1)
    np.testing.assert_allclose(out["global_orient"][1], [0, 0, 1.5], atol=1e-6)
    np.testing.assert_allclose(out["transl"][1], [0, 0, 1.5], atol=1e-6)
    # across pi: 170 deg -> -170 deg about z is a 20 deg step through 180, not through 0
    hand["global_orient"] = z_rotation(np.radians([170.0, 0.0, 190.0])).astype(np.float32)
    out = sm.smooth_hand(absent(hand, [1]), FPS, "none", max_gap=1)
    assert rotation_angle(out["global_orient"][1], [0, 0, math.pi]) < 1e-5


@pytest.mark.parametrize("method", ALL)
def test_long_gap_stays_a_gap(method):
    hand = absent(make_hand(40), [*range(0, 3), *range(10, 20), *range(37, 40)])
    out = sm.smooth_hand(hand, FPS, method, max_gap=5)
    assert not out["bridged"].any()
    assert (out["valid"] == hand["present"]).all()
    for name in sm.OUTPUT_FIELDS:
        assert np.isnan(out[name][~hand["present"]]).all()
        assert np.isfinite(out[name][hand["present"]]).all()


def test_one_euro_restarts_after_a_long_gap():
    hand = make_hand(30)
    hand["transl"][20:] += 1.0  # the hand reappears a metre away
    out = sm.smooth_hand(absent(hand, range(10, 20)), FPS, "one-euro-acr")
    np.testing.assert_allclose(out["transl"][20], hand["transl"][20], atol=1e-6)
    np.testing.assert_allclose(out["betas"][20], hand["betas"][20], atol=1e-5)
    assert rotation_angle(out["hand_pose"][20], hand["hand_pose"][20]).max() < 1e-3


# --- rotations on the manifold ---------------------------------------------------------------


@pytest.mark.parametrize("method", ["one-euro-acr", "offline"])
def test_rotation_through_pi_is_not_averaged_through_zero(method):
    # 150 deg -> 210 deg about z: the axis-angle vector flips from (0,0,+2.6) to (0,0,-2.6);
    # some frames are written the long way round (angle - 2 pi), which is the same rotation
    angles = np.radians(np.linspace(150.0, 210.0, 31))
    truth = z_rotation(angles)
    written = truth.copy()
    written[::3] = np.stack([0 * angles, 0 * angles, angles - 2 * math.pi], -1)[::3]
    hand = make_hand(31)
    hand["global_orient"] = written.astype(np.float32)
    hand["hand_pose"][:] = written[:, None].astype(np.float32)
    out = sm.smooth_hand(hand, FPS, method)
    assert rotation_angle(out["global_orient"], truth).max() < math.radians(3.0)
    assert rotation_angle(out["hand_pose"], truth[:, None]).max() < math.radians(3.0)
    # averaging the axis-angle vectors themselves would pass near the identity
    naive = 0.5 * (truth[14] + truth[16])
    assert rotation_angle(naive, truth[15]) > math.radians(150.0)


def test_quaternion_sign_flips_do_not_matter():
    rng = np.random.default_rng(3)
    quats = sm._qexp(np.linspace(0.0, 1.0, 20)[:, None, None] * [[0.3, -0.2, 0.9]])
    signs = rng.choice([-1.0, 1.0], size=(20, 1, 1))
    a = sm.one_euro_quat(quats, FPS, 4.0, 0.7)
    b = sm.one_euro_quat(quats * signs, FPS, 4.0, 0.7)
    same = np.abs((a * b).sum(-1))
    np.testing.assert_allclose(same, 1.0, atol=1e-9)


# --- confidence weighting --------------------------------------------------------------------


@pytest.mark.parametrize("method", ["one-euro-acr", "offline"])
def test_low_score_outlier_moves_the_output_less(method):
    def deviation(score: float) -> tuple[float, float]:
        hand = make_hand(21)
        hand["transl"][:] = [0.0, 0.0, 0.5]
        hand["global_orient"][:] = 0.0
        hand["transl"][10, 0] += 0.05  # a 5 cm outlier in x
        hand["global_orient"][10] = [0.0, 0.0, 0.5]  # and a 29 deg one in orientation
        hand["score"][10] = score
        out = sm.smooth_hand(hand, FPS, method)
        turn = rotation_angle(out["global_orient"], np.zeros(3)).max()
        return float(np.abs(out["transl"][:, 0]).max()), float(turn)

    low, high = deviation(0.1), deviation(1.0)
    assert low[0] < 0.5 * high[0] and low[1] < 0.5 * high[1]
    untouched = sm.smooth_hand(make_hand(5), FPS, method, use_score=False)
    assert np.isfinite(untouched["transl"]).all()


# --- One Euro filter -------------------------------------------------------------------------


def test_one_euro_step():
    x = np.r_[np.zeros(10), np.ones(50)][:, None]
    y = sm.one_euro_vector(x, FPS, mincutoff=1.0, beta=0.0)[:, 0]
    assert (y[:10] == 0).all()
    assert (np.diff(y) >= -1e-12).all() and y.max() <= 1.0  # monotone, no overshoot
    assert 0.0 < y[10] < 0.5 and y[-1] > 0.99
    # a larger beta follows the step faster
    fast = sm.one_euro_vector(x, FPS, mincutoff=1.0, beta=5.0)[:, 0]
    assert fast[12] > y[12]


def test_one_euro_ramp_lag_decreases_with_beta():
    t = np.arange(90) / FPS
    x = (0.5 * t)[:, None]  # 0.5 units/s

    def lag(beta: float) -> float:  # seconds behind the ramp once settled
        return float((x[-1, 0] - sm.one_euro_vector(x, FPS, 1.0, beta)[-1, 0]) / 0.5)

    lags = [lag(beta) for beta in (0.0, 0.5, 2.0, 10.0)]
    assert all(a > b for a, b in zip(lags, lags[1:], strict=False))
    assert lags[0] == pytest.approx(1 / (2 * math.pi * 1.0), rel=0.02)  # tau of 1 Hz
    # the same on rotations: a constant angular velocity about an axis
    quats = sm._qexp((2.0 * t)[:, None, None] * [[0.0, 0.6, 0.8]])

    def rot_lag(beta: float) -> float:
        q = sm.one_euro_quat(quats, FPS, 1.0, beta)[-1, 0]
        return 2 * math.acos(min(1.0, abs(float(q @ quats[-1, 0]))))

    rot_lags = [rot_lag(beta) for beta in (0.0, 0.5, 2.0)]
    assert all(a > b for a, b in zip(rot_lags, rot_lags[1:], strict=False))


# --- offline smoother ------------------------------------------------------------------------


def test_offline_cutoff_matches_smoothing_s():
    """A sine at 1 / smoothing_s Hz keeps 1/sqrt(2) of its amplitude (away from the ends)."""
    for smoothing_s, degree in ((0.5, 2), (0.5, 1), (1.0, 2)):
        t = np.arange(300) / FPS
        x = np.sin(2 * math.pi / smoothing_s * t)
        sigma = sm.offline_sigma_frames(smoothing_s, FPS, degree)
        y = sm.local_poly_smooth(x, sigma, degree=degree)
        inner = slice(60, 240)
        gain = (y[inner] @ x[inner]) / (x[inner] @ x[inner])
        assert gain == pytest.approx(1 / math.sqrt(2), abs=0.03)


def test_offline_passes_smooth_motion_without_lag():
    n = 90
    t = np.arange(n) / FPS
    hand = make_hand(n)
    hand["transl"][:, 0] = 0.1 * np.sin(2 * math.pi * 0.7 * t)  # peaks at t = 0.357 s
    out = sm.smooth_hand(hand, FPS, "offline")
    np.testing.assert_allclose(out["transl"][:, 0], hand["transl"][:, 0], atol=2e-3)
    assert rotation_angle(out["hand_pose"], hand["hand_pose"]).max() < 0.01
    # no phase lag: the peak is at the same frame; the causal One Euro filter peaks later
    peak = int(np.argmax(hand["transl"][:40, 0]))
    assert int(np.argmax(out["transl"][:40, 0])) == peak
    euro = sm.smooth_hand(hand, FPS, "one-euro", beta_transl=0.0)
    assert int(np.argmax(euro["transl"][:40, 0])) > peak


def test_offline_reduces_noise():
    rng = np.random.default_rng(0)
    n = 150
    t = np.arange(n) / FPS
    hand = make_hand(n)
    clean = 0.1 * np.sin(2 * math.pi * 0.5 * t)
    hand["transl"][:, 0] = clean + rng.normal(scale=0.01, size=n)
    rot_clean = hand["hand_pose"].copy()
    hand["hand_pose"] += rng.normal(scale=math.radians(5) / math.sqrt(3), size=(n, 15, 3))
    out = sm.smooth_hand(hand, FPS, "offline")
    rms_raw = np.sqrt(np.mean((hand["transl"][:, 0] - clean) ** 2))
    rms = np.sqrt(np.mean((out["transl"][:, 0] - clean) ** 2))
    assert rms < 0.7 * rms_raw
    accel_raw = np.abs(np.diff(hand["transl"][:, 0], 2) - np.diff(clean, 2)).mean()
    accel = np.abs(np.diff(out["transl"][:, 0], 2) - np.diff(clean, 2)).mean()
    assert accel < 0.2 * accel_raw
    angle_raw = rotation_angle(hand["hand_pose"], rot_clean).mean()
    assert rotation_angle(out["hand_pose"], rot_clean).mean() < 0.6 * angle_raw


def test_local_poly_is_exact_on_parabolas_with_weights_and_edges():
    t = np.arange(25, dtype=np.float64)
    x = np.stack([3.0 - 0.5 * t + 0.02 * t**2, t], -1)
    weights = np.random.default_rng(1).uniform(0.1, 1.0, 25)
    np.testing.assert_allclose(sm.local_poly_smooth(x, 3.0, weights), x, atol=1e-6)
    # a window with no weight gives no estimate rather than a made-up one
    y = sm.local_poly_smooth(x[:3], 0.2, np.array([1.0, 0.0, 0.0]))
    assert np.isfinite(y[0]).all() and np.isnan(y[2]).all()
