"""Augmentation keeps every label exact: samples of the open hand model posed at random, with
marks drawn at the wrist and fingertips into the image, the part segmentation and the dense map,
are warped and flipped; afterwards the 2D labels are the projection of the 3D labels through the
new camera, the parameters pose to the 3D labels, and the marks sit at the new 2D labels."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from handmocap.core.handmodel import HandLayer
from handmocap.core.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from handmocap.training.augment import (
    AugmentConfig,
    augment,
    camera_change,
    flip_sample,
    motion_blur,
    motion_kernel,
    similarity,
    warp_sample,
)
from handmocap.training.sample import (
    LEFT_PART_OFFSET,
    RIGHT_PART_OFFSET,
    SIDES,
    check_sample,
    dense_colors,
    empty_sample,
)

SIZE = 192
MARKS = (0, 4, 8, 12, 16, 20)  # wrist and fingertips
RADIUS = 3.0
OFFSETS = (LEFT_PART_OFFSET, RIGHT_PART_OFFSET)  # seg class of part 0 by side index

# Mark colours: the image's colour names the keypoint, not the side (a flip moves the picture
# of a right hand onto the left hand's labels); the dense map's red channel mirrors with the
# side, as dense_colors does for mirror-image models.
_rng = np.random.default_rng(11)
IMAGE_PALETTE = np.full((256, 3), 90, np.uint8)
DENSE_PALETTE = np.zeros((256, 3), np.uint8)
for _j in range(len(MARKS)):
    IMAGE_PALETTE[[RIGHT_PART_OFFSET + _j, LEFT_PART_OFFSET + _j]] = _rng.integers(150, 256, 3)
    DENSE_PALETTE[RIGHT_PART_OFFSET + _j] = _rng.integers(1, 256, 3)
    DENSE_PALETTE[LEFT_PART_OFFSET + _j] = DENSE_PALETTE[RIGHT_PART_OFFSET + _j]
    DENSE_PALETTE[LEFT_PART_OFFSET + _j, 0] = 256 - int(DENSE_PALETTE[RIGHT_PART_OFFSET + _j, 0])

GEOMETRY = AugmentConfig(
    scale_prob=1.0,
    scale_range=(0.9, 1.1),
    rotate_prob=1.0,
    max_rotation=180.0,
    translate_prob=1.0,
    max_translation=0.04,
)
FLIP = AugmentConfig(flip_prob=1.0)
PHOTOMETRIC = AugmentConfig(
    jitter_prob=1.0,
    brightness=0.3,
    contrast=0.3,
    saturation=0.3,
    motion_blur_prob=1.0,
    blur_prob=1.0,
    noise_prob=1.0,
    gain=0.3,
    bias=0.05,
    noise_sigma=0.01,
)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def layer() -> HandLayer:
    return HandLayer.from_models_dir(None, "openhand")


def project(points: np.ndarray, camera: np.ndarray) -> np.ndarray:
    """(..., 3) camera frame -> (..., 2) pixels through the full K (skew included)."""
    p = points.astype(np.float64) @ camera.astype(np.float64).T
    return p[..., :2] / p[..., 2:]


def pose(layer: HandLayer, sample: dict, i: int) -> np.ndarray:
    """(21, 3) keypoints of hand ``i`` posed from the sample's parameters."""
    t = {k: torch.as_tensor(sample[k][i : i + 1]) for k in
         ("global_orient", "hand_pose", "betas", "transl")}  # fmt: skip
    with torch.no_grad():
        out = layer(SIDES[i], t["global_orient"], t["hand_pose"], t["betas"], t["transl"])
    return out.keypoints[0].numpy()


def make_sample(layer: HandLayer, seed: int, camera: np.ndarray | None = None) -> dict:
    """Both hands posed at random, palms to the camera, with well separated marks."""
    rng = np.random.default_rng(seed)
    focal = 1.1 * SIZE
    k = np.array([[focal, 0, SIZE / 2 + 3], [0, focal, SIZE / 2 - 2], [0, 0, 1]])
    k = k if camera is None else camera
    for _ in range(100):
        s = empty_sample(SIZE)
        s["camera"] = k.astype(np.float32)
        for i, side in enumerate(SIDES):
            upright = axis_angle_to_matrix(np.array([0, 0, np.pi / 2 * (2 * i - 1)]))
            palm = axis_angle_to_matrix(np.array([np.pi / 2, 0, 0]) + rng.normal(0, 0.2, 3))
            s["global_orient"][i] = matrix_to_axis_angle(upright @ palm)  # fingers up
            s["hand_pose"][i] = np.abs(rng.normal(0, 0.2, (15, 3))) * np.array([0, 0, 1])
            s["betas"][i] = rng.normal(0, 0.5, 10)
            s["transl"][i] = 0.0
            root = pose(layer, s, i)[9]
            target = np.array([(-0.07 if side == "left" else 0.07), 0.0, 0.6])
            s["transl"][i] = target + rng.normal(0, 0.01, 3) - root
            s["joints3d"][i] = pose(layer, s, i)
        s["joints2d"][..., :2] = project(s["joints3d"], k)
        s["joints2d"][..., 2] = 1.0
        marks = s["joints2d"][:, MARKS, :2].reshape(-1, 2)
        gaps = np.linalg.norm(marks[:, None] - marks[None], axis=-1) + 1e9 * np.eye(len(marks))
        if gaps.min() > 2 * RADIUS + 3 and np.all((marks > 20) & (marks < SIZE - 20)):
            break
    else:
        raise AssertionError("no sample with separate marks")
    centres = np.arange(SIZE) + 0.5
    gx, gy = np.meshgrid(centres, centres)
    for i in range(2):
        for j, kp in enumerate(MARKS):
            x, y = s["joints2d"][i, kp, :2]
            s["part_seg"][(gx - x) ** 2 + (gy - y) ** 2 <= RADIUS**2] = OFFSETS[i] + j
    s["image"] = IMAGE_PALETTE[s["part_seg"]]
    s["dense"] = DENSE_PALETTE[s["part_seg"]]
    for key in ("hand_valid", "joints3d_valid", "params_valid"):
        s[key][:] = 1.0
    s["seg_valid"] = np.float32(1.0)
    s["dense_valid"] = np.float32(1.0)
    s["interacting"] = np.float32(1.0)
    check_sample(s)
    return s


def assert_labels_exact(sample: dict, layer: HandLayer | None = None, image: bool = True,
                        tolerance: float = 0.75) -> np.ndarray:  # fmt: skip
    """The 2D labels project from the 3D ones, the parameters pose to the 3D labels, and the
    marks (image, segmentation, dense map) sit at the 2D labels, within ``tolerance`` pixels
    (nearest-neighbour resampling moves a mark by up to half a pixel). Returns (N, 2) the
    offsets of the N marks checked (those well inside the image) from their labels."""
    check_sample(sample)
    np.testing.assert_allclose(
        sample["joints2d"][..., :2], project(sample["joints3d"], sample["camera"]), atol=1e-3
    )
    if layer is not None:
        for i in range(2):
            if sample["params_valid"][i]:
                np.testing.assert_allclose(pose(layer, sample, i), sample["joints3d"][i], atol=1e-5)
    offsets = []
    centres = np.arange(SIZE) + 0.5
    gx, gy = np.meshgrid(centres, centres)
    for i in range(2):
        for j, kp in enumerate(MARKS):
            xy = sample["joints2d"][i, kp, :2]
            if np.any(xy < 6) or np.any(xy > SIZE - 6):
                continue
            cls = OFFSETS[i] + j
            where = sample["part_seg"] == cls
            assert where.sum() > 10, f"mark {cls} lost"
            centroid = np.array([gx[where].mean(), gy[where].mean()])
            np.testing.assert_allclose(centroid, xy, atol=tolerance, err_msg=f"mark {cls}")
            col, row = np.floor(xy).astype(int)
            np.testing.assert_array_equal(sample["dense"][row, col], DENSE_PALETTE[cls])
            if image:
                np.testing.assert_allclose(
                    sample["image"][row, col], IMAGE_PALETTE[cls], atol=2, err_msg=f"mark {cls}"
                )
            offsets.append(centroid - xy)
    np.testing.assert_array_equal(sample["dense"], DENSE_PALETTE[sample["part_seg"]])
    return np.reshape(offsets, (-1, 2))


def test_made_samples_are_consistent(layer):
    assert len(assert_labels_exact(make_sample(layer, 0), layer, tolerance=0.2)) == 12


def test_presets_follow_the_papers():
    d = AugmentConfig.dir()
    assert (d.scale_range, d.max_rotation, d.max_translation * 256) == ((0.9, 1.1), 180.0, 10.0)
    assert (d.scale_prob, d.rotate_prob, d.translate_prob, d.flip_prob) == (1, 1, 1, 0.5)
    assert (d.motion_blur_prob, d.motion_blur_sizes()) == (0.3, (3, 5, 7, 9))
    assert (d.noise_prob, d.gain, d.bias, d.noise_sigma) == (1.0, 0.3, 0.05, 0.01)
    assert d.jitter_prob == 0.0
    a = AugmentConfig.acr()
    assert (a.flip_prob, a.rotate_prob, a.jitter_prob) == (0.5, 0.2, 0.2)
    assert a.motion_blur_prob == a.noise_prob == a.translate_prob == 0.0
    n = AugmentConfig.none()
    assert all(getattr(n, f) == 0 for f in ("scale_prob", "rotate_prob", "flip_prob", "noise_prob"))


@pytest.mark.parametrize(
    "bad",
    [{"flip_prob": 1.5}, {"scale_range": (0.0, 1.0)}, {"motion_blur_kernel": (4, 4)},
     {"max_rotation": -1.0}, {"blur_sigma": (2.0, 1.0)}],
)  # fmt: skip
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValueError, match="AugmentConfig"):
        AugmentConfig(**bad)


@pytest.mark.parametrize("seed", range(4))
def test_zoom_rotation_shift_keep_labels_exact(layer, seed):
    sample = make_sample(layer, seed)
    out = augment(sample, GEOMETRY, np.random.default_rng(seed), hand_layer=layer)
    assert not np.allclose(out["joints3d"], sample["joints3d"], atol=1e-3)  # it did turn
    assert out["params_valid"].tolist() == [1.0, 1.0]
    assert len(assert_labels_exact(out, layer)) >= 6


def test_warped_marks_have_no_half_pixel_bias(layer):
    """Each mark lands within half a pixel of its label; on average, much closer: a wrong pixel
    convention (centres at integers rather than at + 0.5) would show as a shared offset."""
    offsets = []
    for seed in range(4):
        out = augment(make_sample(layer, seed), GEOMETRY, np.random.default_rng(seed + 10), layer)
        offsets.append(assert_labels_exact(out, layer))
    offsets = np.concatenate(offsets)
    assert len(offsets) >= 30
    assert np.abs(offsets.mean(0)).max() < 0.12, offsets.mean(0)


def test_rotation_turns_the_picture_about_the_centre(layer):
    sample = make_sample(layer, 1)
    out = warp_sample(sample, similarity((SIZE, SIZE), angle=90.0), layer)
    centre = np.array([SIZE / 2, SIZE / 2])
    before = sample["joints2d"][..., :2] - centre
    expected = np.stack([-before[..., 1], before[..., 0]], -1) + centre  # +x turns toward +y
    np.testing.assert_allclose(out["joints2d"][..., :2], expected, atol=1e-3)
    assert len(assert_labels_exact(out, layer)) >= 6


def test_a_non_square_skewed_camera_stays_exact(layer):
    camera = np.array([[1.15 * SIZE, 4.0, SIZE / 2], [0, 1.05 * SIZE, SIZE / 2 + 5], [0, 0, 1]])
    sample = make_sample(layer, 2, camera)
    out = warp_sample(sample, similarity((SIZE, SIZE), 1.05, 37.0, (4.0, -3.0)), layer)
    assert len(assert_labels_exact(out, layer)) >= 6
    assert len(assert_labels_exact(flip_sample(out, layer), layer)) >= 6
    k, rz = camera_change(camera, similarity((SIZE, SIZE), 1.05, 37.0, (4.0, -3.0)))
    np.testing.assert_allclose(rz @ rz.T, np.eye(3), atol=1e-12)
    assert k[1, 0] == k[2, 0] == k[2, 1] == 0 and k[0, 0] > 0 and k[1, 1] > 0


@pytest.mark.parametrize("seed", range(2))
def test_flip_keeps_labels_exact(layer, seed):
    sample = make_sample(layer, seed)
    out = augment(sample, FLIP, np.random.default_rng(seed), hand_layer=layer)
    assert out["params_valid"].tolist() == [1.0, 1.0]
    assert len(assert_labels_exact(out, layer, tolerance=0.2)) == 12
    np.testing.assert_array_equal(out["image"], sample["image"][:, ::-1])


@pytest.mark.parametrize("seed", range(3))
def test_dir_and_acr_presets_keep_labels_exact(layer, seed):
    sample = make_sample(layer, seed)
    for config in (AugmentConfig.dir(), AugmentConfig.acr()):
        out = augment(sample, config, np.random.default_rng(seed), hand_layer=layer)
        assert len(assert_labels_exact(out, layer, image=False)) >= 4


def test_flip_refits_transl_when_the_sides_are_not_mirror_images():
    """Real MANO's left model is the right one mirrored only nearly; here the left template is
    moved by a few centimetres, which posing carries over unchanged, so only a refitted
    translation brings the flipped parameters back onto the mirrored joints."""
    uneven = HandLayer.from_models_dir(None, "openhand")
    with torch.no_grad():
        uneven.mano["left"].v_template += torch.tensor([0.01, -0.02, 0.005])
    sample = make_sample(uneven, 3)
    out = flip_sample(sample, uneven)
    assert out["params_valid"].tolist() == [1.0, 1.0]
    assert len(assert_labels_exact(out, uneven, tolerance=0.2)) == 12
    assert not np.allclose(out["transl"] * [-1, 1, 1], sample["transl"][::-1], atol=1e-3)
    for seed in range(2):  # turned first, then flipped
        config = replace(GEOMETRY, flip_prob=1.0)
        out = augment(sample, config, np.random.default_rng(seed), uneven)
        assert len(assert_labels_exact(out, uneven)) >= 6


def test_flip_twice_is_the_identity(layer):
    sample = make_sample(layer, 3)
    back = flip_sample(flip_sample(sample, layer), layer)
    for key in ("image", "part_seg", "dense"):
        np.testing.assert_array_equal(back[key], sample[key])
    for key, value in sample.items():
        np.testing.assert_allclose(back[key], value, atol=1e-5, err_msg=key)


def test_flip_swaps_sides(layer):
    sample = make_sample(layer, 4)
    for key in ("hand_valid", "joints3d_valid", "params_valid"):
        sample[key][0] = 0.0  # only the right hand is labelled
    sample["part_seg"][sample["part_seg"] >= LEFT_PART_OFFSET] = 0
    out = flip_sample(sample, layer)
    for key in ("hand_valid", "joints3d_valid", "params_valid"):
        assert out[key].tolist() == [1.0, 0.0], key
    classes = set(np.unique(out["part_seg"]).tolist()) - {0}
    assert classes == {LEFT_PART_OFFSET + j for j in range(len(MARKS))}
    np.testing.assert_allclose(out["joints2d"][0, :, 0], SIZE - sample["joints2d"][1, :, 0])
    np.testing.assert_allclose(out["joints3d"][0], sample["joints3d"][1] * [-1, 1, 1])
    np.testing.assert_allclose(out["betas"][0], sample["betas"][1])
    np.testing.assert_allclose(out["global_orient"][0], sample["global_orient"][1] * [1, -1, -1])
    np.testing.assert_allclose(pose(layer, out, 0), out["joints3d"][0], atol=1e-5)


def test_dense_flip_rule_matches_the_models_colours(layer):
    rest = {s: layer.mano[s].v_template.double().numpy() for s in SIDES}
    left, right = dense_colors(rest["left"]), dense_colors(rest["right"])
    np.testing.assert_array_equal(left[:, 0].astype(int), 256 - right[:, 0].astype(int))
    np.testing.assert_array_equal(left[:, 1:], right[:, 1:])


def test_no_rotation_and_unit_zoom_change_nothing(layer):
    sample = make_sample(layer, 5)
    warped = warp_sample(sample, similarity((SIZE, SIZE)), layer)
    config = replace(GEOMETRY, scale_range=(1.0, 1.0), max_rotation=0.0, max_translation=0.0)
    augmented = augment(sample, config, np.random.default_rng(0), layer)
    for out in (warped, augmented):
        for key, value in sample.items():
            np.testing.assert_allclose(out[key], value, atol=1e-6, err_msg=key)
        for key in ("image", "part_seg", "dense"):
            np.testing.assert_array_equal(out[key], sample[key])


def test_photometric_changes_only_the_image(layer):
    sample = make_sample(layer, 6)
    out = augment(sample, PHOTOMETRIC, np.random.default_rng(3), layer)
    check_sample(out)
    assert np.abs(out["image"].astype(int) - sample["image"]).mean() > 3
    for key, value in sample.items():
        if key != "image":
            np.testing.assert_array_equal(out[key], value, err_msg=key)


def test_motion_blur_smears_along_its_direction():
    kernel = motion_kernel(7, 0.0)
    assert kernel.sum() == pytest.approx(1.0)
    image = np.zeros((21, 21, 3), np.float32)
    image[10, 10] = 255.0
    horizontal = motion_blur(image, 7, 0.0)[..., 0]
    assert horizontal[10, 7:14].min() > 0 and horizontal[[7, 13], 10].max() == 0
    vertical = motion_blur(image, 7, 90.0)[..., 0]
    assert vertical[7:14, 10].min() > 0 and vertical[10, [7, 13]].max() == 0
    flat = np.full((9, 9, 3), 77.0, np.float32)
    np.testing.assert_allclose(motion_blur(flat, 9, 33.0), flat, atol=1e-3)


def test_a_seed_gives_one_result(layer):
    sample = make_sample(layer, 7)
    config = replace(AugmentConfig.dir(), jitter_prob=1.0, brightness=0.2)
    one = augment(sample, config, np.random.default_rng(42), layer)
    two = augment(sample, config, np.random.default_rng(42), layer)
    other = augment(sample, config, np.random.default_rng(43), layer)
    for key in one:
        np.testing.assert_array_equal(one[key], two[key], err_msg=key)
    assert not np.array_equal(one["image"], other["image"])
    assert not np.array_equal(one["camera"], other["camera"])


def test_the_input_sample_is_left_alone(layer):
    sample = make_sample(layer, 8)
    kept = {k: v.copy() for k, v in sample.items()}
    config = replace(AugmentConfig.dir(), flip_prob=1.0)
    out = augment(sample, config, np.random.default_rng(0), layer)
    for key, value in kept.items():
        np.testing.assert_array_equal(sample[key], value, err_msg=key)
        assert not np.shares_memory(out[key], sample[key]), key


def test_without_a_hand_layer_moved_parameters_are_marked_invalid(layer):
    sample = make_sample(layer, 9)
    zoom = augment(sample, replace(GEOMETRY, rotate_prob=0.0), np.random.default_rng(0))
    assert zoom["params_valid"].tolist() == [1.0, 1.0]  # a zoom or shift needs no hand model
    assert_labels_exact(zoom, layer)
    for config in (GEOMETRY, FLIP):
        out = augment(sample, config, np.random.default_rng(1))
        assert out["params_valid"].tolist() == [0.0, 0.0]
        assert_labels_exact(out)  # every other label is still exact


def test_off_image_keypoints_keep_coordinates_and_lose_weight(layer):
    sample = make_sample(layer, 10)
    config = AugmentConfig(translate_prob=1.0, max_translation=0.5)
    hidden = 0
    for seed in range(4):
        out = augment(sample, config, np.random.default_rng(seed), layer)
        x, y = out["joints2d"][..., 0], out["joints2d"][..., 1]
        inside = (x >= 0) & (x <= SIZE) & (y >= 0) & (y <= SIZE)
        hidden += int((~inside).sum())
        np.testing.assert_array_equal(out["joints2d"][..., 2], inside.astype(np.float32))
        assert_labels_exact(out, layer)  # coordinates of the hidden ones are still exact
        assert out["hand_valid"].tolist() == [1.0, 1.0]
    assert hidden > 0
