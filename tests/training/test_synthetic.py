"""The synthetic dataset: hands rendered by Blender (bpy, in a subprocess) whose labels agree
with the picture: 2D joints land on the rendered hand of their side, the part under a joint is
that joint's, masks cover the projected hand, dense maps cover exactly the hand pixels, and the
parameters give the labelled joints. Also: same seed, same samples; a stopped run resumes.

A handful of 128 px images (Cycles on the CPU, about 3 images/s on two cores)."""

from __future__ import annotations

import importlib.util
import json
import shutil

import cv2
import numpy as np
import pytest
import torch

from handmocap.core.errors import HandmocapError
from handmocap.core.handmodel import HandLayer
from handmocap.core.joints import KEYPOINTS_FROM_JOINTS_AND_TIPS, PARENTS
from handmocap.core.skeleton import joint_limits
from handmocap.training.datasets.synthetic import (
    SceneOptions,
    ScenePlanner,
    SyntheticDataset,
    background,
    generate,
    random_angles,
)
from handmocap.training.sample import SIDES, check_sample, hand_masks

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("bpy") is None,
        reason="the bpy module renders the dataset (make test installs it)",
    ),
    pytest.mark.slow,
    pytest.mark.usefixtures("one_torch_thread"),
]
SIZE, COUNT, SEED, SHARD = 128, 4, 3, 2
# More of everything than the defaults, so that four samples show two hands, contact,
# an occluder and a truncated hand (checked in test_scenes_have_what_was_asked).
OPTIONS = SceneOptions(two_hands=0.8, interaction=0.7, truncation=0.3, occluder=0.5)
OFFSETS = {"left": 17, "right": 1}


@pytest.fixture(scope="module")
def layer():
    return HandLayer.from_models_dir(None, "openhand")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    path = tmp_path_factory.mktemp("synth") / "data"
    generate(path, COUNT, SIZE, SEED, shard_size=SHARD, options=OPTIONS)
    return path


@pytest.fixture(scope="module")
def dataset(root):
    data = SyntheticDataset(root)
    return data, [data[i] for i in range(len(data))], [data.extras(i) for i in range(len(data))]


def own_side(seg: np.ndarray, side: str) -> np.ndarray:
    return (seg >= OFFSETS[side]) & (seg < OFFSETS[side] + 16)


def visible_joints(samples, extras):
    """(sample index, side, keypoint, integer pixel x, y) of every visible labelled joint."""
    out = []
    for n, (sample, extra) in enumerate(zip(samples, extras, strict=True)):
        for i, side in enumerate(SIDES):
            for j in range(21):
                if extra["joints_visible"][i, j] and sample["joints2d"][i, j, 2]:
                    x, y = np.floor(sample["joints2d"][i, j, :2]).astype(int)
                    out.append((n, side, j, x, y))
    return out


def test_samples_follow_the_contract(root, dataset):
    data, samples, _ = dataset
    assert len(data) == COUNT and data.size == SIZE
    assert data.hand_model_kind == "openhand"
    assert data.hand_model_id["right"].startswith("openhand-")
    for sample in samples:
        check_sample(sample)
        valid = sample["hand_valid"] > 0
        assert valid.any()
        np.testing.assert_array_equal(sample["params_valid"], sample["hand_valid"])
        assert sample["seg_valid"] == 1 and sample["dense_valid"] == 1
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["complete"] and manifest["count"] == COUNT and manifest["seed"] == SEED
    assert manifest["renderer_version"].startswith("Blender ")
    assert manifest["images_per_second"] > 0
    assert manifest["hand_model_id"] == data.hand_model_id


def test_scenes_have_what_was_asked(dataset):
    _, samples, extras = dataset
    assert any(s["hand_valid"].all() for s in samples)
    assert any(s["interacting"] == 1 for s in samples)
    assert any(e["occluded"] == 1 for e in extras)
    assert any((e["truncated"] > 0).any() for e in extras)
    for sample, extra in zip(samples, extras, strict=True):
        close = sample["hand_valid"].all() and extra["hand_distance"] < 0.03
        assert sample["interacting"] == float(close)


def test_joints_land_on_their_hand(dataset):
    """At a visible joint's pixel the segmentation shows its side's hand, and the picture is
    not the background there."""
    _, samples, extras = dataset
    joints = visible_joints(samples, extras)
    assert len(joints) >= 40
    exact = near = differs = 0
    for n, side, _, x, y in joints:
        seg = own_side(samples[n]["part_seg"], side)
        exact += seg[y, x]
        near += seg[max(y - 2, 0) : y + 3, max(x - 2, 0) : x + 3].any()
        backdrop = background(SIZE, SEED, n)[y, x].astype(int)
        differs += np.abs(samples[n]["image"][y, x].astype(int) - backdrop).max() > 12
    assert near / len(joints) >= 0.97
    assert exact / len(joints) >= 0.85
    assert differs / len(joints) >= 0.9


def test_joints_lie_on_their_own_part(dataset):
    """The part seen at a joint is that joint's, its parent's or a child's (wrist: the palm)."""
    _, samples, extras = dataset
    joint_of = [k if k < 16 else (15, 3, 6, 12, 9)[k - 16] for k in KEYPOINTS_FROM_JOINTS_AND_TIPS]
    right = checked = 0
    for n, side, j, x, y in visible_joints(samples, extras):
        seg = samples[n]["part_seg"]
        if not own_side(seg, side)[y, x]:
            continue
        part, joint = int(seg[y, x]) - OFFSETS[side], joint_of[j]
        children = [c for c, p in enumerate(PARENTS) if p == joint]
        right += part in (joint, PARENTS[joint], *children)
        checked += 1
    assert checked >= 30
    assert right / checked >= 0.8


def test_parameters_give_the_labelled_joints(dataset, layer):
    _, samples, _ = dataset
    for sample in samples:
        for i, side in enumerate(SIDES):
            if not sample["params_valid"][i]:
                continue
            out = posed(layer, sample, i, side)
            np.testing.assert_allclose(out.keypoints[0].numpy(), sample["joints3d"][i], atol=1e-5)
            k = sample["camera"].astype(np.float64)
            p = sample["joints3d"][i].astype(np.float64)
            uv = p[:, :2] / p[:, 2:] @ k[:2, :2].T + k[:2, 2]
            np.testing.assert_allclose(sample["joints2d"][i, :, :2], uv, atol=1e-3)


def posed(layer, sample, i, side):
    t = lambda key: torch.as_tensor(sample[key][i : i + 1])  # noqa: E731
    with torch.no_grad():
        return layer(side, t("global_orient"), t("hand_pose"), t("betas"), t("transl"))


def test_masks_cover_the_projected_hand(dataset, layer):
    """Each hand's mask lies inside the convex hull of its projected vertices (posed again
    from the labels) and fills a good part of it."""
    _, samples, extras = dataset
    for sample, extra in zip(samples, extras, strict=True):
        masks = hand_masks(sample["part_seg"])
        for i, side in enumerate(SIDES):
            if not sample["hand_valid"][i]:
                assert not (masks == i + 1).any()
                continue
            vertices = posed(layer, sample, i, side).vertices[0].numpy().astype(np.float64)
            k = sample["camera"].astype(np.float64)
            uv = vertices[:, :2] / vertices[:, 2:] @ k[:2, :2].T + k[:2, 2]
            hull = np.zeros((SIZE, SIZE), np.uint8)
            points = np.round(cv2.convexHull(uv.astype(np.float32))[:, 0] * 16).astype(np.int32)
            cv2.fillConvexPoly(hull, points, 1, cv2.LINE_8, 4)
            grown = cv2.dilate(hull, np.ones((5, 5), np.uint8)) > 0
            mask = masks == i + 1
            assert mask[grown].sum() >= 0.99 * mask.sum()
            alone = not extra["occluded"] and not sample["hand_valid"][1 - i]
            if alone and not extra["truncated"][i]:
                assert mask.sum() >= 0.35 * hull.sum()


def test_dense_map_covers_exactly_the_hands(dataset):
    _, samples, _ = dataset
    for sample in samples:
        hand = sample["part_seg"] > 0
        np.testing.assert_array_equal(sample["dense"].any(-1), hand)
        assert sample["dense"][hand].min() >= 1


def test_same_seed_same_samples_and_resume(root, dataset, tmp_path):
    """A run stopped after its first shard keeps it; the next run renders only the rest, and
    every sample equals the uninterrupted run's."""
    _, samples, _ = dataset
    other = tmp_path / "data"
    calls = []

    def stop(done, total, rate):
        calls.append(done)
        if done == SHARD + 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate(other, COUNT, SIZE, SEED, shard_size=SHARD, options=OPTIONS, progress=stop)
    assert sorted(p.name for p in other.glob("shard_*")) == ["shard_00000.npz"]
    assert not list(other.glob(".*partial"))
    with pytest.raises(HandmocapError, match="unfinished"):
        SyntheticDataset(other)
    kept = (other / "shard_00000.npz").stat().st_mtime_ns
    calls.clear()
    generate(other, COUNT, SIZE, SEED, shard_size=SHARD, options=OPTIONS, progress=stop)
    assert calls == [1, 2]
    assert (other / "shard_00000.npz").stat().st_mtime_ns == kept
    again = SyntheticDataset(other)
    for n, sample in enumerate(samples):
        for key, value in again[n].items():
            np.testing.assert_array_equal(value, sample[key], err_msg=key)
    with pytest.raises(HandmocapError, match="seed"):
        generate(other, COUNT, SIZE, SEED + 1, shard_size=SHARD, options=OPTIONS)


def test_missing_or_corrupt_dataset(root, tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(HandmocapError, match=str(missing)):
        SyntheticDataset(missing)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(HandmocapError, match="manifest.json"):
        SyntheticDataset(empty)
    broken = tmp_path / "broken"
    shutil.copytree(root, broken)
    shard = broken / "shard_00001.npz"
    shard.write_bytes(shard.read_bytes()[:1000])
    data = SyntheticDataset(broken)
    data[0]
    with pytest.raises(HandmocapError, match="shard_00001.npz"):
        data[SHARD]


def test_random_scenes():
    """Without rendering: angles within the joint limits; the shares of two-hand scenes,
    hands in contact and occluders follow the options."""
    rng = np.random.default_rng(0)
    limits = joint_limits()
    for _ in range(200):
        angles = random_angles(limits, rng)
        assert np.all(angles >= limits[..., 0] - 1e-9) and np.all(angles <= limits[..., 1] + 1e-9)
    planner = ScenePlanner(HandLayer.from_models_dir(None, "openhand"), SceneOptions())
    scenes = [planner.plan(SIZE, 0, n) for n in range(60)]
    two = [s for s in scenes if len(s.hands) == 2]
    assert 0.4 <= len(two) / len(scenes) <= 0.8
    assert sum(s.occluders != [] for s in scenes) >= 5
    from handmocap.training.datasets.synthetic import hand_distance

    close = [hand_distance(s) < 0.03 for s in two]
    assert 0.3 <= np.mean(close) <= 0.9
    assert all(hand_distance(s) >= 0.003 for s in two)  # placed apart, not inside each other
    again = planner.plan(SIZE, 0, 7)
    np.testing.assert_array_equal(again.camera, scenes[7].camera)
