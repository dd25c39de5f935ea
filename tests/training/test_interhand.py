"""The InterHand2.6M reader on tiny copies written in the official layouts (5 fps, 30 fps and the
dataset page's flat one): samples keep the contract, world millimetres become camera metres,
the 42 joints land in the right side and order, the crop holds the hands and its camera
projects the 3D joints onto the 2D ones, the IH/SH filters, MANO fits in the sample's
convention, clear errors, and a real photograph inside such a tree."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from fixtures_official import INTERHAND_DIRS, Camera, Frame, write_interhand
from scipy.spatial.transform import Rotation
from torch.utils.data import default_collate

from handmocap.core.errors import HandmocapError
from handmocap.core.handdata import load_open_hand
from handmocap.training.datasets.crop import project
from handmocap.training.datasets.interhand import InterHandDataset
from handmocap.training.sample import SIDES, check_sample

REAL = Path("/work/shared/realdata/mmpose_freihand")
# Official InterHand2.6M order (README/skeleton: per hand thumb4..thumb1, forefinger4..1, ...,
# wrist): the file's joint for each of the project's 21 keypoints (wrist, thumb1..tip, ...).
FILE_JOINT_OF_KEYPOINT = [20, 3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12, 19, 18, 17, 16]
PARAMS = ("global_orient", "hand_pose", "betas", "transl")
RZ90 = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])


def hand(center, seed: int) -> np.ndarray:
    """(21, 3) camera-frame joints (metres) scattered around ``center``."""
    return np.asarray(center) + np.random.default_rng(seed).uniform(-0.03, 0.03, (21, 3))


def two_hands(**kw) -> Frame:
    joints = {"right": hand([0.035, 0.0, 0.5], 1), "left": hand([-0.035, 0.0, 0.5], 2)}
    return Frame("interacting", joints, **kw)


def mixed_frames() -> list[Frame]:
    return [
        two_hands(frame_idx=10000),
        two_hands(frame_idx=10006, hand_type_valid=0),
        Frame("right", {"right": hand([0.0, 0.01, 0.45], 3)}, frame_idx=10012),
        Frame("left", {"left": hand([0.0, -0.01, 0.55], 4)}, frame_idx=10018),
    ]


def labelled(sample: dict) -> np.ndarray:
    return sample["joints2d"][..., 2] > 0


def assert_projects(sample: dict) -> None:
    """The sample's camera takes its 3D joints onto its 2D joints (labelled ones)."""
    uv = project(sample["joints3d"].astype(np.float64), sample["camera"].astype(np.float64))
    keep = labelled(sample)
    assert keep.any()
    np.testing.assert_allclose(uv[keep], sample["joints2d"][..., :2][keep], atol=1e-3)


@pytest.mark.parametrize("layout", ["5fps", "30fps", "flat"])
def test_each_release_layout_is_found_and_read(tmp_path, layout):
    write_interhand(tmp_path, mixed_frames(), layout=layout)
    for asked in ("auto", layout):
        dataset = InterHandDataset(tmp_path, "train", 96, layout=asked)
        assert dataset.layout == layout and len(dataset) == 4
        assert dataset.image_dir == tmp_path / INTERHAND_DIRS[layout][0] / "train"
        for sample in dataset:
            check_sample(sample)
            assert sample["image"].shape == (96, 96, 3)
            assert_projects(sample)
        assert default_collate(list(dataset))["joints2d"].shape == (4, 2, 21, 3)
    other = "flat" if layout != "flat" else "5fps"
    with pytest.raises(HandmocapError, match=f"{other} layout: .* not found"):
        InterHandDataset(tmp_path, "train", 96, layout=other)


def test_30fps_annotations_beside_the_batch_folder(tmp_path):
    write_interhand(tmp_path, mixed_frames(), layout="30fps", split="val")
    inside = tmp_path / INTERHAND_DIRS["30fps"][1]
    shutil.move(inside, tmp_path / "annotations")
    dataset = InterHandDataset(tmp_path, "val", 64)
    assert dataset.layout == "30fps" and len(dataset) == 4
    assert dataset.annotation_dir == tmp_path / "annotations" / "val"


def test_two_releases_in_one_folder_need_a_choice(tmp_path):
    write_interhand(tmp_path, mixed_frames()[:1], layout="5fps")
    write_interhand(tmp_path, mixed_frames(), layout="30fps")
    with pytest.raises(HandmocapError, match="several .*5fps, 30fps.*layout="):
        InterHandDataset(tmp_path, "train")
    assert len(InterHandDataset(tmp_path, "train", layout="5fps")) == 1
    assert len(InterHandDataset(tmp_path, "train", layout="30fps")) == 4


def test_world_millimetres_become_camera_metres_on_a_hand_computed_case(tmp_path):
    camera = Camera(R=RZ90, campos=np.array([100.0, 200.0, -300.0]))
    world = np.zeros((42, 3))
    world[:21] = [105.0, 205.0, 210.0] + np.arange(21)[:, None] * [1.0, 0.0, 0.5]
    world[20] = [110.0, 200.0, 200.0]  # right wrist: R (10, 0, 500) = (0, 10, 500) mm
    world[0] = [100.0, 230.0, 220.0]  # right thumb tip: R (0, 30, 520) = (-30, 0, 520) mm
    write_interhand(tmp_path, [Frame("right", world=world)], camera)
    sample = InterHandDataset(tmp_path, "train", 128)[0]
    np.testing.assert_allclose(sample["joints3d"][1, 0], [0.0, 0.01, 0.5], atol=1e-6)
    np.testing.assert_allclose(sample["joints3d"][1, 4], [-0.03, 0.0, 0.52], atol=1e-6)
    np.testing.assert_array_equal(sample["hand_valid"], [0, 1])
    assert_projects(sample)


def test_each_file_joint_lands_on_its_keypoint(tmp_path):
    """Joint ``i`` of the file sits at a position that encodes ``i``."""
    i = np.arange(42)
    world = np.stack([2.0 * (i % 21) - 20.0, 1.5 * (i // 21) - 1.0, 500.0 + i], axis=1)
    write_interhand(tmp_path, [Frame("interacting", world=world)])
    sample = InterHandDataset(tmp_path, "train", 64)[0]
    right = world[FILE_JOINT_OF_KEYPOINT] / 1000
    left = world[21 + np.array(FILE_JOINT_OF_KEYPOINT)] / 1000
    np.testing.assert_allclose(sample["joints3d"][1], right, atol=1e-7)
    np.testing.assert_allclose(sample["joints3d"][0], left, atol=1e-7)
    np.testing.assert_array_equal(sample["joints3d_valid"], [1, 1])
    assert_projects(sample)


def test_a_left_hand_alone_fills_the_left_side_only(tmp_path):
    joints = hand([0.0, 0.0, 0.5], 5)
    write_interhand(tmp_path, [Frame("left", {"left": joints})])  # right joints: zeros in file
    sample = InterHandDataset(tmp_path, "train", 64)[0]
    check_sample(sample)
    np.testing.assert_array_equal(sample["hand_valid"], [1, 0])
    np.testing.assert_array_equal(sample["joints3d_valid"], [1, 0])
    np.testing.assert_allclose(sample["joints3d"][SIDES.index("left")], joints, atol=1e-6)
    assert not sample["joints3d"][1].any() and not sample["joints2d"][1].any()
    assert all(np.isfinite(v).all() for v in sample.values())
    assert sample["interacting"] == 0


def test_the_crop_holds_the_hands_where_the_labels_say(tmp_path):
    """The fixture's pictures carry a white dot per joint: each labelled 2D joint of the crop
    falls on one, and the crop leaves the hands whole."""
    write_interhand(tmp_path, mixed_frames())
    for sample in InterHandDataset(tmp_path, "train", 160):
        points = sample["joints2d"][labelled(sample)][:, :2]
        assert len(points) == 21 * sample["hand_valid"].sum()
        assert points.min() > 0.1 * 160 and points.max() < 0.9 * 160  # the margin
        gray = sample["image"].mean(-1)
        cols, rows = np.floor(points).astype(int).T
        assert (gray[rows, cols] > 100).all()


def test_hands_filter_and_interacting_flag(tmp_path):
    write_interhand(tmp_path, mixed_frames())
    everything = InterHandDataset(tmp_path, "train", 64)
    assert [s["interacting"] for s in everything] == [1, 0, 0, 0]
    assert [list(s["hand_valid"]) for s in everything] == [[1, 1], [1, 1], [0, 1], [1, 0]]
    ih = InterHandDataset(tmp_path, "train", 64, hands="interacting")
    assert len(ih) == 1 and ih[0]["interacting"] == 1
    sh = InterHandDataset(tmp_path, "train", 64, hands="single")
    assert [list(s["hand_valid"]) for s in sh] == [[0, 1], [1, 0]]


def test_invalid_joints_weigh_nothing_and_unlabelled_pictures_are_left_out(tmp_path):
    valid = np.ones(21)
    valid[[4, 8]] = 0  # two fingertips not annotated
    only_left = {"right": np.zeros(21), "left": np.ones(21)}  # the side hand_type does not name
    frames = [
        Frame("right", {"right": hand([0.0, 0.0, 0.5], 6)}, valid={"right": valid}),
        Frame(
            "right", {"right": hand([0.0, 0.0, 0.5], 7)}, valid={"right": 0 * valid}, frame_idx=6
        ),
        Frame("right", {"left": hand([0.0, 0.0, 0.5], 8)}, valid=only_left, frame_idx=12),
    ]
    write_interhand(tmp_path, frames)
    dataset = InterHandDataset(tmp_path, "train", 64)
    assert len(dataset) == 1
    weights = dataset[0]["joints2d"][1, :, 2]
    np.testing.assert_array_equal(weights, valid)
    assert dataset[0]["joints3d_valid"][1] == 0  # not all 21 joints have 3D


def mano_fit(seed: int, camera_distance: float = 0.5) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "pose": rng.normal(0, 0.3, 48),
        "shape": rng.normal(0, 1, 10),
        "trans": rng.normal(0, 0.02, 3) + [0, 0, camera_distance],
    }


def test_mano_fits_without_the_model_keep_only_what_needs_none(tmp_path):
    fits = {"right": mano_fit(1), "left": mano_fit(2)}
    write_interhand(tmp_path, [two_hands(mano=fits)], Camera(R=RZ90))
    sample = InterHandDataset(tmp_path, "train", 64)[0]
    for s, side in enumerate(SIDES):
        expected = Rotation.from_matrix(RZ90) * Rotation.from_rotvec(fits[side]["pose"][:3])
        np.testing.assert_allclose(sample["global_orient"][s], expected.as_rotvec(), atol=1e-5)
        np.testing.assert_allclose(sample["betas"][s], fits[side]["shape"], atol=1e-6)
    assert not sample["hand_pose"].any() and not sample["transl"].any()
    np.testing.assert_array_equal(sample["params_valid"], [0, 0])


def mano_stand_in() -> dict:
    """The open hand model under MANO's name: same pickle layout, so the conversion's algebra
    can be checked without the user's MANO files."""
    return {s: dataclasses.replace(load_open_hand(s), kind="mano") for s in SIDES}


@pytest.mark.usefixtures("one_torch_thread")
def test_mano_fits_with_the_model_give_the_same_hands_in_the_camera_frame(tmp_path):
    import torch

    from handmocap.core.handmodel import HandLayer

    models = mano_stand_in()
    layer = HandLayer(models)
    camera = Camera(
        R=Rotation.from_rotvec([0.3, -0.5, 0.2]).as_matrix(), campos=np.array([40.0, -30.0, 20.0])
    )
    fits = {"right": mano_fit(3), "left": mano_fit(4)}
    write_interhand(tmp_path, [two_hands(mano=fits)], camera)
    sample = InterHandDataset(tmp_path, "train", 64, hand_models=models)[0]
    np.testing.assert_array_equal(sample["params_valid"], [1, 1])

    def vertices(side, orient, pose, betas, transl):
        t = [torch.as_tensor(np.asarray(a, np.float32))[None] for a in (orient, pose, betas)]
        out = layer(side, *t, torch.as_tensor(np.asarray(transl, np.float32))[None])
        return out.vertices[0].double().numpy()

    for s, side in enumerate(SIDES):
        fit = fits[side]
        mean = np.asarray(models[side].arrays["hands_mean"]).reshape(15, 3)
        absolute = fit["pose"][3:].reshape(15, 3) + mean
        world = vertices(side, fit["pose"][:3], absolute, fit["shape"], fit["trans"])
        in_camera = (world - camera.campos / 1000) @ camera.R.T
        ours = vertices(side, *(sample[k][s] for k in PARAMS))
        np.testing.assert_allclose(ours, in_camera, atol=2e-5)


def test_a_missing_fit_leaves_that_hand_without_parameters(tmp_path):
    write_interhand(tmp_path, [two_hands(mano={"left": mano_fit(5)})])
    sample = InterHandDataset(tmp_path, "train", 64, hand_models=mano_stand_in())[0]
    np.testing.assert_array_equal(sample["params_valid"], [1, 0])
    assert InterHandDataset(tmp_path, "train", 64).has_mano
    write_interhand(tmp_path / "b", [two_hands()], mano=False)
    assert InterHandDataset(tmp_path / "b", "train", 64)[0]["params_valid"].sum() == 0


def test_bad_input_is_a_clear_error_naming_the_path(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(HandmocapError, match=f"not found: {missing}"):
        InterHandDataset(missing)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(HandmocapError, match=f"no InterHand2.6M train split in {empty}"):
        InterHandDataset(empty, "train", 0)  # as the data command calls it
    with pytest.raises(HandmocapError, match="no split 'training'"):
        InterHandDataset(empty, "training")
    with pytest.raises(HandmocapError, match="hands must be one of"):
        InterHandDataset(empty, "train", hands="both")

    root = write_interhand(tmp_path / "ih", mixed_frames())
    ann = root / "annotations" / "train"
    with pytest.raises(HandmocapError, match="MANO fits: give both sides"):
        InterHandDataset(root, hand_models={s: load_open_hand(s) for s in SIDES})

    camera_file = ann / "InterHand2.6M_train_camera.json"
    camera_file.rename(camera_file.with_suffix(".bak"))
    with pytest.raises(HandmocapError, match=f"camera file not found: {camera_file}"):
        InterHandDataset(root)
    camera_file.with_suffix(".bak").rename(camera_file)

    data_file = ann / "InterHand2.6M_train_data.json"
    good = data_file.read_text()
    data_file.write_text(good[:50])
    with pytest.raises(HandmocapError, match=f"{data_file} cannot be read as JSON"):
        InterHandDataset(root)
    data_file.write_text(json.dumps({"images": json.loads(good)["images"]}))
    with pytest.raises(HandmocapError, match=f"{data_file} is not an InterHand2.6M data file"):
        InterHandDataset(root)
    data_file.write_text(good)

    dataset = InterHandDataset(root)
    dataset.file_name(2).unlink()
    with pytest.raises(HandmocapError, match=f"image not found: {dataset.file_name(2)}"):
        dataset[2]


# --- a real photograph ----------------------------------------------------------------------

# FreiHAND training pose 355 (green-screen version), copied by mmpose as a test picture with its
# 2D joints (projected from FreiHAND's fit, 224 px, project order). A FreiHAND-like camera and a
# depth lift them to 3D; the world frame and camera pose are made up.
REAL_POSE, REAL_K, REAL_DEPTH = 355, np.array([[590.0, 0, 112], [0, 590.0, 112], [0, 0, 1]]), 0.6


def real_pose() -> tuple[np.ndarray, np.ndarray]:
    """(224, 224, 3) RGB picture and (21, 2) joints of pose 355, or a skip."""
    import cv2

    path = REAL / f"{REAL_POSE:08d}.jpg"
    if not path.is_file():
        pytest.skip(f"the real FreiHAND picture {path} is not here (see realdata SOURCES.md)")
    coco = json.loads((REAL / "test_freihand.json").read_text())
    ann = next(a for a in coco["annotations"] if a["image_id"] == REAL_POSE)
    picture = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    return picture, np.reshape(ann["keypoints"], (21, 3))[:, :2]


def lift(uv: np.ndarray, K: np.ndarray, depth: float) -> np.ndarray:
    """(21, 2) OpenCV pixels -> (21, 3) camera-frame points at ``depth`` that project there."""
    return depth * np.c_[uv, np.ones(len(uv))] @ np.linalg.inv(K).T


def skin(picture: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N,) share of skin-coloured pixels (red above green and blue) in the 5x5 patch at each
    (x, y) point; FreiHAND's green screen scores 0."""
    rgb = picture.astype(int)
    out = []
    for x, y in np.floor(points).astype(int):
        patch = rgb[max(y - 2, 0) : y + 3, max(x - 2, 0) : x + 3].reshape(-1, 3)
        out.append(np.mean((patch[:, 0] > patch[:, 1] + 5) & (patch[:, 0] > patch[:, 2])))
    return np.array(out)


def test_a_real_photograph_in_an_interhand_tree_gets_its_joints_on_the_hand(tmp_path):
    picture, uv = real_pose()
    camera = Camera(
        name="400030",
        R=Rotation.from_rotvec([0.1, 0.4, -0.2]).as_matrix(),
        campos=np.array([-150.0, 80.0, 900.0]),
        focal=(590.0, 590.0),
        princpt=(112.0, 112.0),
        width=224,
        height=224,
    )
    joints = lift(uv, REAL_K, REAL_DEPTH)
    frame = Frame("right", {"right": joints}, picture=picture, capture=13, seq_name="0266_dh_pray")
    write_interhand(tmp_path, [frame], camera)
    sample = InterHandDataset(tmp_path, "train", 256)[0]
    check_sample(sample)
    assert_projects(sample)
    points = sample["joints2d"][1, :, :2]
    on = skin(sample["image"], points)
    assert (on > 0.5).mean() >= 0.8, on
    everywhere = skin(sample["image"], np.mgrid[2:256:5, 2:256:5].reshape(2, -1).T)
    assert (everywhere > 0.5).mean() < 0.5  # the hand does not fill the crop: joints aimed
