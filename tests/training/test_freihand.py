"""The FreiHAND reader on tiny copies written in the official layout (training with its four
picture versions, evaluation): samples keep the contract, the right hand keeps the file's
joints and order, the camera projects them onto the 2D joints and the pictures' dots, the
version blocks repeat every 32560 pictures, MANO fits in the sample's convention, clear errors,
and a real FreiHAND photograph with its real 2D joints."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from fixtures_official import VERSION_SHADES, Pose, freihand_dots, write_freihand

from handmocap.core.errors import HandmocapError
from handmocap.core.handdata import load_open_hand
from handmocap.training.datasets.crop import project
from handmocap.training.datasets.freihand import FreiHANDDataset
from handmocap.training.sample import SIDES, check_sample

REAL = Path("/work/shared/realdata/mmpose_freihand")
K = np.array([[560.0, 0.0, 111.0], [0.0, 562.0, 113.0], [0.0, 0.0, 1.0]])


def joints(seed: int, depth: float = 0.6) -> np.ndarray:
    """(21, 3) metres; joint ``k`` sits ``k`` millimetres deeper than the first, so every
    position names its joint."""
    base = np.random.default_rng(seed).uniform(-0.04, 0.04, (21, 3))
    base[:, 2] = depth + np.arange(21) / 1000
    return base


def poses(count: int = 3) -> list[Pose]:
    return [Pose(joints(n), K) for n in range(count)]


def assert_projects(sample: dict) -> None:
    uv = project(sample["joints3d"][1].astype(np.float64), sample["camera"].astype(np.float64))
    np.testing.assert_allclose(uv, sample["joints2d"][1, :, :2], atol=1e-3)


def test_training_split_reads_every_version_of_every_pose(tmp_path):
    written = poses()
    write_freihand(tmp_path, written)
    dataset = FreiHANDDataset(tmp_path)  # split "training", 224 px, all four versions
    assert len(dataset) == 12 and dataset.versions == ("gs", "hom", "sample", "auto")
    for index, sample in enumerate(dataset):
        version, pose = divmod(index, 3)
        check_sample(sample)
        assert dataset.file_name(index).name == f"{pose + 32560 * version:08d}.jpg"
        assert abs(float(np.median(sample["image"])) - VERSION_SHADES[version]) < 8
        np.testing.assert_allclose(sample["joints3d"][1], written[pose].xyz, atol=1e-6)
        np.testing.assert_array_equal(sample["hand_valid"], [0, 1])
        np.testing.assert_array_equal(sample["joints3d_valid"], [0, 1])
        assert not sample["joints3d"][0].any() and sample["interacting"] == 0
        assert_projects(sample)
    only = FreiHANDDataset(tmp_path, "train", 224, versions=["hom"])
    assert len(only) == 3 and only.file_name(1).name == f"{1 + 32560:08d}.jpg"


def test_evaluation_split(tmp_path):
    write_freihand(tmp_path, poses(2), split="evaluation")
    dataset = FreiHANDDataset(tmp_path, "evaluation")
    assert len(dataset) == 2 and dataset.file_name(1).name == "00000001.jpg"
    for sample in dataset:
        check_sample(sample)
        assert_projects(sample)
    assert len(FreiHANDDataset(tmp_path, "test")) == 2
    with pytest.raises(HandmocapError, match="evaluation versions must be among gs"):
        FreiHANDDataset(tmp_path, "evaluation", versions=["hom"])


@pytest.mark.parametrize("size", [224, 256, 128])
def test_the_camera_follows_the_resize_and_the_joints_sit_on_their_dots(tmp_path, size):
    write_freihand(tmp_path, poses(1))
    sample = FreiHANDDataset(tmp_path, "training", size, versions=["gs"])[0]
    s = size / 224
    expected = np.array(
        [[K[0, 0] * s, 0, (K[0, 2] + 0.5) * s], [0, K[1, 1] * s, (K[1, 2] + 0.5) * s]]
    )
    np.testing.assert_allclose(sample["camera"][:2], expected, rtol=1e-6)
    assert_projects(sample)
    points = sample["joints2d"][1]
    assert (points[:, 2] == 1).all()
    cols, rows = np.floor(points[:, :2]).astype(int).T
    gray = np.pad(sample["image"].mean(-1), 1)  # within a pixel: shrinking dims the dots
    near = [gray[rows + 1 + dy, cols + 1 + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    assert (np.max(near, axis=0) > 100).all()


def test_joints_outside_the_picture_weigh_nothing(tmp_path):
    xyz = joints(0)
    xyz[8, 0] = 0.3  # index tip far right of the 224 px picture
    write_freihand(tmp_path, [Pose(xyz, K)])
    weights = FreiHANDDataset(tmp_path, versions=["gs"])[0]["joints2d"][1, :, 2]
    np.testing.assert_array_equal(weights, np.arange(21) != 8)


def fit(xyz: np.ndarray, seed: int, k: np.ndarray = K) -> np.ndarray:
    """61 MANO values in the toolbox's layout; uv_root and scale place keypoint 9 at xyz[9]
    (exactly where fx = fy: the toolbox back-projects with their mean)."""
    rng = np.random.default_rng(seed)
    uv = k @ xyz[9]
    focal = (k[0, 0] + k[1, 1]) / 2
    pose, shape = rng.normal(0, 0.3, 48), rng.normal(0, 1, 10)
    return np.concatenate([pose, shape, uv[:2] / uv[2], [focal / xyz[9, 2]]])


def test_mano_fits_without_the_model_keep_only_what_needs_none(tmp_path):
    pose = Pose(joints(1), K, fit(joints(1), 1))
    write_freihand(tmp_path, [pose])
    sample = FreiHANDDataset(tmp_path, versions=["gs"])[0]
    np.testing.assert_allclose(sample["global_orient"][1], pose.mano[:3], atol=1e-6)
    np.testing.assert_allclose(sample["betas"][1], pose.mano[48:58], atol=1e-6)
    assert not sample["hand_pose"].any() and not sample["transl"].any()
    assert sample["params_valid"].sum() == 0


@pytest.mark.usefixtures("one_torch_thread")
def test_mano_fits_with_the_model_put_keypoint_9_at_the_official_root(tmp_path):
    import torch

    from handmocap.core.handmodel import HandLayer

    # the open hand model under MANO's name: same layout, so the algebra can be checked
    models = {s: dataclasses.replace(load_open_hand(s), kind="mano") for s in SIDES}
    square = np.diag([560.0, 560.0, 1.0]) + [[0, 0, 111], [0, 0, 113], [0, 0, 0]]
    pose = Pose(joints(2), square, fit(joints(2), 2, square))
    write_freihand(tmp_path, [pose])
    sample = FreiHANDDataset(tmp_path, versions=["gs"], hand_models=models)[0]
    assert sample["params_valid"].tolist() == [0, 1]
    mean = np.asarray(models["right"].arrays["hands_mean"]).reshape(15, 3)
    absolute = pose.mano[3:48].reshape(15, 3) + mean
    np.testing.assert_allclose(sample["hand_pose"][1], absolute, atol=1e-6)
    args = [torch.as_tensor(sample[k][1:2]) for k in ("global_orient", "hand_pose", "betas")]
    out = HandLayer(models)("right", *args, torch.as_tensor(sample["transl"][1:2]))
    np.testing.assert_allclose(out.keypoints[0, 9].double().numpy(), pose.xyz[9], atol=1e-5)


def test_bad_input_is_a_clear_error_naming_the_path(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(HandmocapError, match=f"FreiHAND folder not found: {missing}"):
        FreiHANDDataset(missing)
    with pytest.raises(HandmocapError, match=f"picture folder not found: {tmp_path}"):
        FreiHANDDataset(tmp_path)
    root = write_freihand(tmp_path / "fh", poses(2))
    with pytest.raises(HandmocapError, match="no split 'val'"):
        FreiHANDDataset(root, "val")
    with pytest.raises(HandmocapError, match="versions must be among"):
        FreiHANDDataset(root, versions=["green"])
    with pytest.raises(HandmocapError, match="MANO fits: give both sides"):
        FreiHANDDataset(root, hand_models={s: load_open_hand(s) for s in SIDES})

    xyz = root / "training_xyz.json"
    good = xyz.read_text()
    xyz.unlink()
    with pytest.raises(HandmocapError, match=f"annotation file not found: {xyz}"):
        FreiHANDDataset(root)
    xyz.write_text(good[:40])
    with pytest.raises(HandmocapError, match=f"{xyz} cannot be read as JSON"):
        FreiHANDDataset(root)
    xyz.write_text(json.dumps(np.zeros((2, 20, 3)).tolist()))
    with pytest.raises(
        HandmocapError, match=r"training_xyz.json is not a FreiHAND file.*\[2, 20, 3\]"
    ):
        FreiHANDDataset(root)
    xyz.write_text(json.dumps(json.loads(good)[:1]))
    with pytest.raises(HandmocapError, match=r"disagree on the number of samples \(\[1, 2\]\)"):
        FreiHANDDataset(root)
    xyz.write_text(good)

    dataset = FreiHANDDataset(root)
    dataset.file_name(5).unlink()
    with pytest.raises(HandmocapError, match=f"image not found: {dataset.file_name(5)}"):
        dataset[5]
    assert dataset[4]["hand_valid"][1] == 1


def test_a_real_freihand_photograph_gets_its_joints_on_the_hand(tmp_path):
    """FreiHAND training pose 355 in all four versions (mmpose's test copies), at their real
    file names, with their real 2D joints (projected from FreiHAND's fit; 224 px). Poses 0-354
    are fillers without pictures. A FreiHAND-like camera and depth lift the 2D joints to 3D."""
    import cv2

    names = [f"{355 + 32560 * v:08d}.jpg" for v in range(4)]
    if not all((REAL / n).is_file() for n in names):
        pytest.skip(f"the real FreiHAND pictures are not in {REAL} (see realdata SOURCES.md)")
    coco = json.loads((REAL / "test_freihand.json").read_text())
    ann = next(a for a in coco["annotations"] if a["image_id"] == 355)
    uv = np.reshape(ann["keypoints"], (21, 3))[:, :2]
    camera = np.array([[590.0, 0, 112], [0, 590.0, 112], [0, 0, 1]])
    xyz = 0.6 * np.c_[uv, np.ones(21)] @ np.linalg.inv(camera).T
    pictures = [cv2.cvtColor(cv2.imread(str(REAL / n)), cv2.COLOR_BGR2RGB) for n in names]
    filler = Pose(xyz, camera, pictures=[])
    write_freihand(tmp_path, [filler] * 355 + [Pose(xyz, camera, pictures=pictures)])
    dataset = FreiHANDDataset(tmp_path, "training", 256)
    assert len(dataset) == 356 * 4
    for version in range(4):
        index = 356 * version + 355
        assert dataset.file_name(index).name == names[version]
        sample = dataset[index]
        check_sample(sample)
        assert_projects(sample)
        rgb = sample["image"].astype(int)
        cols, rows = np.floor(sample["joints2d"][1, :, :2]).astype(int).T
        step = np.arange(-2, 3)
        patch = rgb[rows[:, None, None] + step[:, None], cols[:, None, None] + step]
        skin = ((patch[..., 0] > patch[..., 1] + 5) & (patch[..., 0] > patch[..., 2])).mean((1, 2))
        assert (skin > 0.5).mean() >= 0.8, skin
        if version == 0:  # green screen: a hand's length below, the joints see no skin
            below = rgb[np.minimum(rows + 90, 255), cols]
            assert ((below[:, 0] > below[:, 1] + 5) & (below[:, 0] > below[:, 2])).mean() < 0.2


def test_dots_helper_matches_the_reader(tmp_path):
    """The fixtures' dots are drawn at the OpenCV pixel of each joint; the reader's continuous
    pixels are half a pixel further, inside that very pixel."""
    pose = poses(1)[0]
    picture = freihand_dots(pose)
    write_freihand(tmp_path, [pose])
    sample = FreiHANDDataset(tmp_path, versions=["gs"])[0]
    cols, rows = np.floor(sample["joints2d"][1, :, :2]).astype(int).T
    assert (picture[rows, cols] == 255).all()


def test_training_data_passes_real_mano_models_to_the_reader(tmp_path):
    from handmocap.training.data import open_dataset

    square = np.diag([560.0, 560.0, 1.0]) + [[0, 0, 111], [0, 0, 113], [0, 0, 0]]
    write_freihand(tmp_path, [Pose(joints(2), square, fit(joints(2), 2, square))])
    as_mano = {s: dataclasses.replace(load_open_hand(s), kind="mano") for s in SIDES}
    openhand = {s: load_open_hand(s) for s in SIDES}
    with_fits = open_dataset("freihand", str(tmp_path), "training", 224, as_mano)
    assert with_fits[0]["params_valid"].tolist() == [0, 1]
    # the fits are MANO's: with the open hand model they would pose another hand, so none
    without = open_dataset("freihand", str(tmp_path), "training", 224, openhand)
    assert without[0]["params_valid"].sum() == 0
