"""Evaluation metrics against cases small enough to work out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from handmocap.training.metrics import (
    PROTOCOLS,
    SUBSETS,
    Evaluator,
    Protocol,
    align,
    auc,
    bone_scale,
    format_table,
    pck,
    pck_curve,
    point_errors,
    procrustes,
    relative_root_errors,
    weighted_mean,
)

WRIST, MIDDLE = 0, 9
CAMERA = Protocol(root=None)  # no alignment: errors as predicted
WRIST_ONLY = Protocol(root="wrist", scale=False)


def hand(seed: int = 0) -> np.ndarray:
    """(21, 3) a non-planar hand-sized point set in metres, wrist at (0, 0, 0.5)."""
    points = np.random.default_rng(seed).normal(scale=0.04, size=(21, 3))
    return points - points[WRIST] + [0.0, 0.0, 0.5]


def two_hands(batch: int = 1, seed: int = 0) -> np.ndarray:
    """(B, 2, 21, 3) left hand at the origin's side, right hand 0.1 m to its right."""
    out = np.stack([hand(seed), hand(seed + 1) + [0.1, 0.0, 0.0]])
    return np.repeat(out[None], batch, axis=0)


def run(pred, gt, valid, protocol=CAMERA, **kwargs) -> dict[str, dict[str, float]]:
    evaluator = Evaluator(protocol)
    evaluator.update(pred, gt, np.asarray(valid, float), **kwargs)
    return evaluator.summary()


# ---------------------------------------------------------------- point errors and alignment


def test_point_errors_of_a_3_4_5_offset_are_5():
    gt = hand()
    assert np.allclose(point_errors(gt + [0.003, 0.004, 0.0], gt), 0.005)
    assert np.allclose(point_errors(np.array([[3.0, 4.0]]), np.zeros((1, 2))), 5.0)


def test_mpjpe_in_mm_without_alignment_and_offset_cancelled_by_root_alignment():
    gt = two_hands()
    pred = gt + [0.003, 0.004, 0.0]
    assert run(pred, gt, [[1, 1]])["all"]["mpjpe"] == pytest.approx(5.0)
    for name in ("dir", "intaghand", "acr"):
        assert run(pred, gt, [[1, 1]], PROTOCOLS[name])["all"]["mpjpe"] == pytest.approx(0.0)


def test_wrist_and_middle_knuckle_roots_give_different_known_errors():
    # Only the wrist is 21 mm off. Aligned at the wrist, the 20 other keypoints are 21 mm off
    # (mean 20 mm); aligned at the middle knuckle only the wrist is (mean 1 mm).
    gt = two_hands()
    pred = gt.copy()
    pred[:, :, WRIST] += [0.021, 0.0, 0.0]
    wrist = run(pred, gt, [[1, 1]], Protocol(root="wrist"))["all"]
    middle = run(pred, gt, [[1, 1]], Protocol(root="middle"))["all"]
    assert wrist["mpjpe"] == pytest.approx(20.0)
    assert middle["mpjpe"] == pytest.approx(1.0)


def test_bone_scale_is_gt_over_predicted_wrist_to_middle_knuckle_length():
    gt = hand()
    assert bone_scale(2.0 * gt, gt) == pytest.approx(0.5)
    collapsed = np.zeros((21, 3))
    assert bone_scale(collapsed, gt) == 1.0  # no length: left unscaled, no division by zero


def test_scale_alignment_removes_a_known_factor_that_root_alignment_keeps():
    gt = hand()
    pred = 2.0 * (gt - gt[WRIST]) + gt[WRIST] + [0.05, 0.0, 0.0]  # twice as large, shifted
    scaled = align(pred, pred, gt, Protocol(root="wrist", scale=True))
    assert np.allclose(scaled, gt)
    unscaled = align(pred, pred, gt, WRIST_ONLY)
    # Twice as large about the wrist: each keypoint is off by its distance from the wrist.
    expected = np.linalg.norm(gt - gt[WRIST], axis=-1)
    assert np.allclose(point_errors(unscaled, gt), expected)


def test_scale_alignment_leaves_the_shape_error_scaled_down():
    # Twice as large, and the middle tip 20 mm further out: after scaling by 1/2 about the
    # middle knuckle only the tip is off, by 10 mm, so MPJPE = 10 / 21 mm.
    gt = two_hands()
    pred = 2.0 * gt
    pred[:, :, 12] += [0.02, 0.0, 0.0]
    summary = run(pred, gt, [[1, 1]], PROTOCOLS["intaghand"])["all"]
    assert summary["mpjpe"] == pytest.approx(10.0 / 21.0)
    assert run(pred, gt, [[1, 1]], PROTOCOLS["acr"])["all"]["mpjpe"] > 10.0


def test_vertices_move_with_their_hands_keypoints():
    gt_kp = two_hands()
    gt_v = np.concatenate([gt_kp, gt_kp + 0.01], axis=2)  # (1, 2, 42, 3) stand-in vertices
    shift = np.array([0.03, -0.02, 0.1])
    vertices = {"pred_vertices": gt_v + shift, "gt_vertices": gt_v}
    summary = run(gt_kp + shift, gt_kp, [[1, 1]], PROTOCOLS["dir"], **vertices)["all"]
    assert summary["mpvpe"] == pytest.approx(0.0)
    # A vertex error that the keypoints do not share stays.
    pred_v = gt_v + shift
    pred_v[..., 0, :] += [0.0, 0.0, 0.042]
    summary = run(gt_kp + shift, gt_kp, [[1, 1]], "dir", pred_vertices=pred_v, gt_vertices=gt_v)
    assert summary["all"]["mpvpe"] == pytest.approx(2 * 42.0 / 84)  # one vertex a hand


# ---------------------------------------------------------------- Procrustes


def test_procrustes_removes_rotation_scale_and_translation_exactly():
    gt = hand()
    rotation = Rotation.from_euler("xyz", [30, -50, 110], degrees=True).as_matrix()
    pred = 1.7 * gt @ rotation.T + [0.2, -0.1, 0.3]
    assert np.allclose(procrustes(pred, gt), gt, atol=1e-12)
    summary = run(pred[None, None].repeat(2, 1), gt[None, None].repeat(2, 1), [[1, 1]], "dir")
    assert summary["all"]["pa_mpjpe"] == pytest.approx(0.0, abs=1e-9)
    assert summary["all"]["mpjpe"] > 10.0  # the rotation is still there


def test_procrustes_error_of_a_quarter_turn_is_zero_but_root_aligned_error_is_known():
    # Keypoints 10 mm from the wrist in the xy plane, turned 90 degrees about z at the wrist:
    # each moves 10 * sqrt(2) mm, the wrist not at all.
    angles = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    ring = 0.01 * np.stack([np.cos(angles), np.sin(angles), 0.1 * np.cos(3 * angles)], -1)
    gt = np.concatenate([np.zeros((1, 3)), ring])
    quarter = Rotation.from_euler("z", 90, degrees=True).as_matrix()
    pred = gt @ quarter.T
    pred[1:, 2] = gt[1:, 2]  # turn only in the plane, keep heights
    errors = point_errors(align(pred, pred, gt, WRIST_ONLY), gt)
    assert errors[1:] == pytest.approx(np.full(20, 10.0 * math.sqrt(2) / 1000.0))
    assert np.allclose(procrustes(pred, gt), gt, atol=1e-12)


def test_procrustes_never_reflects():
    gt = hand()
    mirrored = gt * [-1.0, 1.0, 1.0]  # a reflection would fit it exactly; a rotation cannot
    assert point_errors(procrustes(mirrored, gt), gt).mean() > 1e-3
    # The fitted map (aligned = centred prediction @ M + t) turns, never mirrors: det M > 0.
    centred = mirrored - mirrored.mean(0)
    aligned = procrustes(mirrored, gt)
    fitted, *_ = np.linalg.lstsq(centred, aligned - aligned.mean(0), rcond=None)
    assert np.linalg.det(fitted) > 0.0


def test_procrustes_is_no_worse_than_root_alignment():
    rng = np.random.default_rng(3)
    gt = hand()
    pred = gt + rng.normal(scale=0.005, size=gt.shape)
    pa = point_errors(procrustes(pred, gt), gt)
    rooted = point_errors(align(pred, pred, gt, WRIST_ONLY), gt)
    assert (pa**2).sum() <= (rooted**2).sum()


def test_weighted_procrustes_ignores_points_without_weight():
    gt = hand()
    rotation = Rotation.from_euler("y", 40, degrees=True).as_matrix()
    pred = 0.8 * gt @ rotation.T + 0.1
    pred[5] += 1.0  # an unlabelled outlier
    weights = np.ones(21)
    weights[5] = 0.0
    aligned = procrustes(pred, gt, weights)
    assert np.allclose(np.delete(aligned, 5, 0), np.delete(gt, 5, 0), atol=1e-12)
    assert not np.allclose(procrustes(pred, gt), gt, atol=1e-4)


def test_procrustes_works_on_batches_and_empty_weights_stay_finite():
    gt = two_hands(batch=3)
    out = procrustes(gt + 0.01, gt, np.zeros(gt.shape[:-1]))
    assert out.shape == gt.shape and np.isfinite(out).all()
    assert np.allclose(procrustes(2 * gt, gt), gt)


# ---------------------------------------------------------------- MRRPE


def test_mrrpe_compares_the_right_hand_offset_from_the_left():
    gt = two_hands()
    pred = gt + [0.0, 0.0, 0.5]  # both hands moved together: no relative error
    pred[:, 1] += [0.03, 0.04, 0.0]  # right hand 50 mm off relative to the left
    assert relative_root_errors(pred, gt)[0] == pytest.approx(0.05)
    assert run(pred, gt, [[1, 1]], "dir")["all"]["mrrpe"] == pytest.approx(50.0)


def test_mrrpe_root_is_selectable():
    gt = two_hands()
    pred = gt.copy()
    pred[:, 1, MIDDLE] += [0.0, 0.012, 0.0]  # only the right middle knuckle is off
    wrist = run(pred, gt, [[1, 1]], Protocol(relative_root="wrist"))["all"]["mrrpe"]
    middle = run(pred, gt, [[1, 1]], Protocol(relative_root="middle"))["all"]["mrrpe"]
    assert wrist == pytest.approx(0.0) and middle == pytest.approx(12.0)


def test_mrrpe_needs_both_hands():
    gt = two_hands(batch=2)
    pred = gt.copy()
    pred[0, 1] += [0.01, 0.0, 0.0]  # 10 mm, both hands
    pred[1, 1] += [0.5, 0.0, 0.0]  # huge, but the left hand is missing: not counted
    summary = run(pred, gt, [[1, 1], [0, 1]], "dir")
    assert summary["all"]["mrrpe"] == pytest.approx(10.0)
    assert math.isnan(summary["single"]["mrrpe"])


# ---------------------------------------------------------------- PCK and AUC


ERRORS_MM = np.array([0.0, 10.0, 20.0, 30.0, 60.0])
THRESHOLDS_MM = np.linspace(0.0, 50.0, 6)  # 0, 10, ..., 50


def test_pck_counts_errors_at_or_below_the_threshold():
    assert pck(ERRORS_MM, 20.0) == pytest.approx(3 / 5)
    assert pck(ERRORS_MM, 19.9) == pytest.approx(2 / 5)
    assert pck(ERRORS_MM, 50.0, weights=[1, 1, 1, 1, 0]) == pytest.approx(1.0)
    expected = [1 / 5, 2 / 5, 3 / 5, 4 / 5, 4 / 5, 4 / 5]
    assert pck_curve(ERRORS_MM, THRESHOLDS_MM) == pytest.approx(expected)


def test_auc_is_the_trapezoid_area_over_the_range():
    curve = pck_curve(ERRORS_MM, THRESHOLDS_MM)
    # 10 mm steps: (.2+.4)/2 + (.4+.6)/2 + (.6+.8)/2 + .8 + .8 = 3.1, times 10 / 50.
    assert auc(THRESHOLDS_MM, curve) == pytest.approx(0.62)
    assert auc(THRESHOLDS_MM, np.ones(6)) == pytest.approx(1.0)
    assert auc(THRESHOLDS_MM, np.zeros(6)) == pytest.approx(0.0)


def test_evaluator_pck_and_auc_from_keypoint_errors():
    protocol = Protocol(root=None, pck_mm=20.0, auc_range_mm=(0.0, 50.0), auc_steps=6)
    gt = two_hands()
    pred = gt.copy()
    # Left hand: 21 keypoints, errors 0 (x11), 9 (x5), 60 (x5) mm along x (off the thresholds).
    offsets = np.array([0.0] * 11 + [0.009] * 5 + [0.06] * 5)
    pred[0, 0, :, 0] += offsets
    summary = run(pred, gt, [[1, 0]], protocol)["all"]
    assert summary["pck"] == pytest.approx(16 / 21)
    curve = np.array([11, 16, 16, 16, 16, 16]) / 21
    assert summary["auc"] == pytest.approx(auc(THRESHOLDS_MM, curve))
    assert summary["mpjpe"] == pytest.approx((5 * 9 + 5 * 60) / 21)


def test_default_auc_range_is_0_to_50_mm_in_100_steps():
    thresholds = Protocol().thresholds_mm()
    assert thresholds[0] == 0.0 and thresholds[-1] == 50.0 and len(thresholds) == 100
    evaluator = Evaluator("dir")
    gt = two_hands()
    evaluator.update(gt, gt, np.ones((1, 2)))
    assert evaluator.summary()["all"]["auc"] == pytest.approx(1.0)
    t, curve = evaluator.pck_curve("all")
    assert t.shape == curve.shape == (100,) and np.all(curve == 1.0)


def test_pck_2d_in_pixels():
    gt = two_hands()
    gt2d = np.zeros((1, 2, 21, 2))
    pred2d = gt2d + [3.0, 4.0]
    pred2d[0, 1, 0] += [100.0, 0.0]  # beyond the 10 px threshold
    weights = np.ones((1, 2, 21))
    summary = run(gt, gt, [[1, 1]], "dir", pred_2d=pred2d, gt_2d=gt2d, weights_2d=weights)
    assert summary["all"]["mpjpe_2d_left"] == pytest.approx(5.0)
    assert summary["all"]["pck_2d_left"] == pytest.approx(1.0)
    assert summary["all"]["pck_2d_right"] == pytest.approx(20 / 21)
    weights[0, 1, 0] = 0.0
    summary = run(gt, gt, [[1, 1]], "dir", pred_2d=pred2d, gt_2d=gt2d, weights_2d=weights)
    assert summary["all"]["pck_2d"] == pytest.approx(1.0)


# ---------------------------------------------------------------- subsets, sides, validity


def offset_batch(errors_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(B, 2) per-hand errors in mm -> (pred, gt) whose keypoints are all off by them, along z."""
    gt = two_hands(batch=len(errors_mm))
    pred = gt.copy()
    pred[..., 2] += np.asarray(errors_mm, float)[:, :, None] / 1000.0
    return pred, gt


def test_subsets_route_samples_by_the_interacting_flag_and_hand_count():
    # Interacting pair off by 1 mm; a left hand alone off by 2 mm; a flagged-not-interacting
    # pair off by 4 mm (in "all" only).
    pred, gt = offset_batch([[1, 1], [2, 9], [4, 4]])
    summary = run(pred, gt, [[1, 1], [1, 0], [1, 1]], interacting=np.array([1, 0, 0]))
    assert summary["all"]["mpjpe"] == pytest.approx((1 + 1 + 2 + 4 + 4) / 5)
    assert summary["interacting"]["mpjpe"] == pytest.approx(1.0)
    assert summary["single"]["mpjpe"] == pytest.approx(2.0)
    assert summary["single"]["mpjpe_left"] == pytest.approx(2.0)
    assert math.isnan(summary["single"]["mpjpe_right"])
    assert [summary[s]["samples"] for s in SUBSETS] == [3, 1, 1]


def test_sides_are_reported_apart_and_pooled():
    pred, gt = offset_batch([[1, 3], [1, 3]])
    summary = run(pred, gt, [[1, 1], [1, 1]])["all"]
    assert summary["mpjpe_left"] == pytest.approx(1.0)
    assert summary["mpjpe_right"] == pytest.approx(3.0)
    assert summary["mpjpe"] == pytest.approx(2.0)


def test_invalid_hands_and_unlabelled_keypoints_are_ignored_even_when_nan():
    pred, gt = offset_batch([[1, 1]])
    pred[0, 1] = np.nan  # the right hand is not labelled: whatever it holds
    gt[0, 1] = np.nan
    weights = np.ones((1, 2, 21))
    pred[0, 0, 7] += [1.0, 1.0, 1.0]  # an unlabelled keypoint far off
    gt[0, 0, 8] = np.nan
    weights[0, 0, [7, 8]] = 0.0
    summary = run(pred, gt, [[1, 0]], "dir", keypoint_weights=weights)["all"]
    for name in ("mpjpe", "pa_mpjpe", "pck", "auc", "pa_auc"):
        assert np.isfinite(summary[name]), name
    assert summary["mpjpe"] == pytest.approx(0.0, abs=1e-9)  # a pure shift, root-aligned
    assert math.isnan(summary["mpjpe_right"])


def test_a_hand_without_its_root_label_drops_out_of_root_aligned_metrics_only():
    pred, gt = offset_batch([[1, 1]])
    weights = np.ones((1, 2, 21))
    weights[0, 1, MIDDLE] = 0.0  # right hand: no middle knuckle, so no IntagHand alignment
    summary = run(pred, gt, [[1, 1]], "intaghand", keypoint_weights=weights)["all"]
    assert math.isnan(summary["mpjpe_right"])
    assert summary["mpjpe_left"] == pytest.approx(0.0)
    assert summary["pa_mpjpe_right"] == pytest.approx(0.0, abs=1e-9)


def test_empty_subsets_and_empty_evaluators_give_nan_not_errors():
    pred, gt = offset_batch([[1, 0]])
    summary = run(pred, gt, [[1, 0]])
    assert summary["interacting"]["samples"] == 0
    assert all(math.isnan(v) for k, v in summary["interacting"].items() if k != "samples")
    empty = Evaluator("acr")
    assert all(
        math.isnan(v) for row in empty.summary().values() for k, v in row.items() if k != "samples"
    )
    assert np.isnan(empty.pck_curve("single")[1]).all()
    assert math.isnan(weighted_mean(np.array([1.0, 2.0]), np.zeros(2)))
    assert math.isnan(pck(np.array([]), 10.0))


def test_batches_accumulate_like_one_batch():
    rng = np.random.default_rng(5)
    gt = two_hands(batch=6)
    pred = gt + rng.normal(scale=0.01, size=gt.shape)
    valid = np.array([[1, 1], [1, 0], [0, 1], [1, 1], [1, 1], [0, 1]])
    flags = np.array([1, 0, 0, 1, 0, 0])
    whole = run(pred, gt, valid, "dir", interacting=flags)
    parts = Evaluator("dir")
    for s in (slice(0, 2), slice(2, 5), slice(5, 6)):
        parts.update(pred[s], gt[s], valid[s], interacting=flags[s])
    for subset, row in whole.items():
        assert parts.summary()[subset] == pytest.approx(row, nan_ok=True)


# ---------------------------------------------------------------- protocols and table


def test_presets_match_the_papers_protocols():
    assert PROTOCOLS["dir"] == Protocol(root="wrist", scale=True)
    assert PROTOCOLS["intaghand"] == Protocol(root="middle", scale=True)
    assert PROTOCOLS["acr"] == Protocol(root="middle", scale=False)
    assert PROTOCOLS["freihand"].root is None


@pytest.mark.parametrize(
    "kwargs",
    [{"root": "thumb"}, {"root": None, "scale": True}, {"auc_steps": 1}, {"auc_range_mm": (5, 5)}],
)
def test_protocol_rejects_what_it_cannot_do(kwargs):
    with pytest.raises(ValueError):
        Protocol(**kwargs)


def test_unknown_preset_is_named():
    with pytest.raises(ValueError, match="presets"):
        Evaluator("interhand")


def test_format_table_prints_subsets_as_rows_and_metrics_as_columns():
    pred, gt = offset_batch([[1, 3], [2, 0]])
    table = format_table(run(pred, gt, [[1, 1], [1, 0]], "dir", interacting=np.array([1, 0])))
    lines = table.splitlines()
    assert lines[0].split() == ["subset", "samples", "mpjpe", "pa_mpjpe", "mrrpe", "pck", "auc"]
    assert [line.split()[0] for line in lines[1:]] == list(SUBSETS)
    interacting = lines[2].split()
    assert interacting[:3] == ["interacting", "1", "0.00"]
    assert lines[3].split()[4] == "-"  # no MRRPE for single hands
    assert "1.000" in lines[1]  # PCK printed as a fraction
