"""Keypoint orders: hand-written conversion tables, round trips, reorder on arrays, real landmarks.

The expected tables below are written out by hand from the definitions (not computed from
``joints.py``), so that a wrong name list or a wrong lookup direction makes them fail.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from handmocap.core.joints import (
    INTERHAND_NAMES,
    JOINT_NAMES,
    JOINTS_AND_TIPS_NAMES,
    KEYPOINT_NAMES,
    KEYPOINT_PARENTS,
    KEYPOINTS_FROM_JOINTS_AND_TIPS,
    NUM_JOINTS,
    NUM_KEYPOINTS,
    ORDERS,
    PARENTS,
    order_indices,
    reorder,
)

THUMBS_UP = Path(
    "/work/shared/realdata/mediapipe_samples/hand_landmarker/thumbs-up_expected_landmarks.json"
)

# Project order: 0 wrist; thumb 1-4, index 5-8, middle 9-12, ring 13-16, pinky 17-20 (base to tip).
FINGER_KEYPOINTS = {
    "thumb": (1, 2, 3, 4),
    "index": (5, 6, 7, 8),
    "middle": (9, 10, 11, 12),
    "ring": (13, 14, 15, 16),
    "pinky": (17, 18, 19, 20),
}

# interhand[i] == project[INTERHAND_FROM_PROJECT[i]]. InterHand2.6M, per hand: each finger from
# tip to base, thumb first, then the wrist last.
INTERHAND_FROM_PROJECT = [
    4, 3, 2, 1,  # thumb tip, thumb3, thumb2, thumb1
    8, 7, 6, 5,  # index
    12, 11, 10, 9,  # middle
    16, 15, 14, 13,  # ring
    20, 19, 18, 17,  # pinky
    0,  # wrist
]  # fmt: skip

# project[j] == interhand[PROJECT_FROM_INTERHAND[j]].
PROJECT_FROM_INTERHAND = [
    20,  # wrist
    3, 2, 1, 0,  # thumb1, thumb2, thumb3, thumb tip
    7, 6, 5, 4,  # index
    11, 10, 9, 8,  # middle
    15, 14, 13, 12,  # ring
    19, 18, 17, 16,  # pinky
]  # fmt: skip

# cat(16 MANO joints, 5 tips) -> project order. MANO joints: 0 wrist, 1-3 index, 4-6 middle,
# 7-9 pinky, 10-12 ring, 13-15 thumb; tips 16-20: thumb, index, middle, ring, pinky.
PROJECT_FROM_MANO16_TIPS = [
    0,
    13,
    14,
    15,
    16,
    1,
    2,
    3,
    17,
    4,
    5,
    6,
    18,
    10,
    11,
    12,
    19,
    7,
    8,
    9,
    20,
]


def named(order: str) -> np.ndarray:
    """(21, 1) array of keypoint names in ``order``: reordering it shows exactly what moved."""
    return np.array(ORDERS[order], dtype=object)[:, None]


# --------------------------------------------------------------------------------------------
# Name lists and tables
# --------------------------------------------------------------------------------------------


def test_project_order_names():
    assert KEYPOINT_NAMES[0] == "wrist"
    for finger, ids in FINGER_KEYPOINTS.items():
        assert [KEYPOINT_NAMES[i] for i in ids] == [
            f"{finger}1",
            f"{finger}2",
            f"{finger}3",
            f"{finger}_tip",
        ]
    assert len(KEYPOINT_NAMES) == NUM_KEYPOINTS == 21
    for alias in ("mediapipe", "openpose", "manopth"):
        assert ORDERS[alias] == ORDERS["project"]


def test_interhand_names_by_hand():
    assert INTERHAND_NAMES[0] == "thumb_tip"
    assert INTERHAND_NAMES[3] == "thumb1"
    assert INTERHAND_NAMES[4] == "index_tip"
    assert INTERHAND_NAMES[16] == "pinky_tip"
    assert INTERHAND_NAMES[19] == "pinky1"
    assert INTERHAND_NAMES[20] == "wrist"


@pytest.mark.parametrize("order", sorted(ORDERS))
def test_every_order_is_a_permutation_of_the_same_names(order):
    names = ORDERS[order]
    assert len(names) == NUM_KEYPOINTS
    assert len(set(names)) == NUM_KEYPOINTS
    assert set(names) == set(KEYPOINT_NAMES)


def test_project_to_interhand_table():
    np.testing.assert_array_equal(order_indices("project", "interhand"), INTERHAND_FROM_PROJECT)
    # Spot checks straight from the definition.
    idx = order_indices("project", "interhand")
    assert idx[0] == 4  # InterHand 0 = thumb tip = project 4
    assert idx[3] == 1  # InterHand 3 = thumb1 = project 1
    assert idx[20] == 0  # InterHand 20 = wrist = project 0


def test_interhand_to_project_table():
    np.testing.assert_array_equal(order_indices("interhand", "project"), PROJECT_FROM_INTERHAND)


def test_tables_are_inverse_permutations():
    to_ih = order_indices("project", "interhand")
    from_ih = order_indices("interhand", "project")
    np.testing.assert_array_equal(to_ih[from_ih], np.arange(21))
    np.testing.assert_array_equal(from_ih[to_ih], np.arange(21))


def test_keypoints_from_mano_joints_and_tips():
    np.testing.assert_array_equal(KEYPOINTS_FROM_JOINTS_AND_TIPS, PROJECT_FROM_MANO16_TIPS)
    assert KEYPOINTS_FROM_JOINTS_AND_TIPS.dtype == np.int64
    assert JOINTS_AND_TIPS_NAMES[16:] == (
        "thumb_tip",
        "index_tip",
        "middle_tip",
        "ring_tip",
        "pinky_tip",
    )


def test_mano_joint_tree():
    assert len(JOINT_NAMES) == len(PARENTS) == NUM_JOINTS == 16
    assert PARENTS[0] == -1
    for finger in ("index", "middle", "pinky", "ring", "thumb"):
        j1, j2, j3 = (JOINT_NAMES.index(f"{finger}{k}") for k in (1, 2, 3))
        assert (PARENTS[j1], PARENTS[j2], PARENTS[j3]) == (0, j1, j2)


def test_keypoint_parents_form_finger_chains_rooted_at_the_wrist():
    assert len(KEYPOINT_PARENTS) == NUM_KEYPOINTS
    assert KEYPOINT_PARENTS[0] == -1
    assert [i for i, p in enumerate(KEYPOINT_PARENTS) if p == -1] == [0]
    for ids in FINGER_KEYPOINTS.values():
        assert [KEYPOINT_PARENTS[i] for i in ids] == [0, ids[0], ids[1], ids[2]]
    # Every keypoint reaches the wrist in at most 4 steps (a tree, no cycles).
    for k in range(NUM_KEYPOINTS):
        steps = 0
        while k != 0:
            k = KEYPOINT_PARENTS[k]
            steps += 1
            assert steps <= 4
    children = [i for i, p in enumerate(KEYPOINT_PARENTS) if p == 0]
    assert children == [1, 5, 9, 13, 17]


# --------------------------------------------------------------------------------------------
# reorder
# --------------------------------------------------------------------------------------------


def test_reorder_names_project_to_interhand():
    out = reorder(named("project"), "project", "interhand")
    assert tuple(out[:, 0]) == INTERHAND_NAMES


@pytest.mark.parametrize("order", sorted(ORDERS))
def test_reorder_round_trip_is_identity(order):
    points = np.random.default_rng(0).normal(size=(21, 3))
    there = reorder(points, "project", order)
    np.testing.assert_array_equal(reorder(there, order, "project"), points)
    assert tuple(reorder(named("project"), "project", order)[:, 0]) == ORDERS[order]


def test_reorder_mano16_tips_matches_the_hand_layer_table():
    points = np.arange(21 * 2, dtype=np.float64).reshape(21, 2)
    np.testing.assert_array_equal(
        reorder(points, "mano16+tips", "project"), points[PROJECT_FROM_MANO16_TIPS]
    )


def test_reorder_batched_numpy():
    rng = np.random.default_rng(1)
    points = rng.normal(size=(4, 5, 21, 2))
    out = reorder(points, "project", "interhand")
    assert out.shape == (4, 5, 21, 2)
    np.testing.assert_array_equal(out, points[:, :, INTERHAND_FROM_PROJECT, :])
    np.testing.assert_array_equal(out[..., 20, :], points[..., 0, :])  # wrist last


def test_reorder_torch_keeps_type_and_gradient():
    points = torch.randn(3, 21, 3, requires_grad=True)
    out = reorder(points, "interhand", "project")
    assert isinstance(out, torch.Tensor)
    assert out.shape == (3, 21, 3)
    assert torch.equal(out, points[:, PROJECT_FROM_INTERHAND, :])
    out[:, 0, :].sum().backward()  # project wrist = InterHand 20
    assert points.grad[:, 20].eq(1).all()
    assert points.grad[:, :20].eq(0).all()


def test_interhand_42_joint_arrays_split_into_right_then_left():
    # A 42-joint InterHand2.6M array: right hand 0-20, left hand 21-41.
    names = np.array(
        [f"right_{n}" for n in INTERHAND_NAMES] + [f"left_{n}" for n in INTERHAND_NAMES],
        dtype=object,
    )[:, None]
    right, left = reorder(names.reshape(2, 21, 1), "interhand", "project")
    assert tuple(right[:, 0]) == tuple(f"right_{n}" for n in KEYPOINT_NAMES)
    assert tuple(left[:, 0]) == tuple(f"left_{n}" for n in KEYPOINT_NAMES)
    assert names[20, 0] == "right_wrist" and names[41, 0] == "left_wrist"


@pytest.mark.parametrize("shape", [(20, 3), (42, 3), (2, 16, 3), (21,), (3, 21)])
def test_reorder_rejects_wrong_keypoint_count(shape):
    with pytest.raises(ValueError, match="21"):
        reorder(np.zeros(shape), "project", "interhand")
    with pytest.raises(ValueError, match="21"):
        reorder(torch.zeros(shape), "project", "interhand")


@pytest.mark.parametrize(("source", "target"), [("coco", "project"), ("project", "InterHand")])
def test_unknown_order_names_raise(source, target):
    with pytest.raises(ValueError, match="unknown keypoint order"):
        order_indices(source, target)
    with pytest.raises(ValueError, match="unknown keypoint order"):
        reorder(np.zeros((21, 3)), source, target)


# --------------------------------------------------------------------------------------------
# Real data: MediaPipe's landmarks on thumbs-up.png
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def thumbs_up() -> np.ndarray:
    """(21, 3) landmarks in MediaPipe (= project) order, in pixels (z scaled like x)."""
    if not THUMBS_UP.is_file():
        pytest.skip(f"{THUMBS_UP} not present")
    data = json.loads(THUMBS_UP.read_text())
    landmarks = np.asarray(data["landmarks_normalized_xyz"], dtype=np.float64)
    assert landmarks.shape == (21, 3)
    width, height = data["image_size_wh"]
    return landmarks * np.array([width, height, width])


def test_real_landmarks_round_trip_through_every_order(thumbs_up):
    for order in ORDERS:
        there = reorder(thumbs_up, "mediapipe", order)
        np.testing.assert_array_equal(reorder(there, order, "project"), thumbs_up)
    ih = reorder(thumbs_up, "mediapipe", "interhand")
    np.testing.assert_array_equal(ih[20], thumbs_up[0])  # wrist
    np.testing.assert_array_equal(ih[0], thumbs_up[4])  # thumb tip


def test_real_thumbs_up_is_anatomical_in_project_order(thumbs_up):
    p = reorder(thumbs_up, "mediapipe", "project")

    def dist(a, b):
        return float(np.linalg.norm(p[a] - p[b]))

    # Thumbs up: the thumb is extended, so its tip is far from the wrist and is the highest point
    # (smallest y); along the thumb every joint is farther from the thumb base than the last.
    assert dist(4, 0) > dist(1, 0)
    assert int(np.argmin(p[:, 1])) == 4
    assert int(np.argmax([dist(k, 0) for k in range(21)])) == 4
    assert dist(1, 2) < dist(1, 3) < dist(1, 4)
    # The other four fingers are curled: their tips are closer to the wrist than their bases.
    for finger in ("index", "middle", "ring", "pinky"):
        base, _, _, tip = FINGER_KEYPOINTS[finger]
        assert dist(tip, 0) < dist(base, 0), finger
    # Pose-independent anatomy: in every digit the distal phalanx is shorter than the proximal
    # one, and no bone has zero length.
    for finger, (j1, j2, j3, tip) in FINGER_KEYPOINTS.items():
        assert dist(j3, tip) < dist(j1, j2), finger
        assert min(dist(j1, j2), dist(j2, j3), dist(j3, tip), dist(0, j1)) > 10, finger
    # The finger bases lie across the palm in order: index-pinky is the widest pair, and each
    # base's nearest other base is a neighbour in the order index, middle, ring, pinky.
    bases = [FINGER_KEYPOINTS[f][0] for f in ("index", "middle", "ring", "pinky")]
    widths = {(a, b): dist(a, b) for i, a in enumerate(bases) for b in bases[i + 1 :]}
    assert max(widths, key=widths.get) == (5, 17)
    for i, a in enumerate(bases):
        nearest = min((b for b in bases if b != a), key=lambda b, a=a: dist(a, b))
        assert abs(bases.index(nearest) - i) == 1, (a, nearest)
