"""ACR's post-processing on hand-made maps whose answers are known.

Centre maps are zero except for the peaks placed by each test; parameter and prior maps are
random, so reading a vector at the wrong cell (or adding the wrong prior) shows.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from handmocap.core.acr.parse import DEFAULT_THRESHOLD, find_centers, parse_maps, sample
from handmocap.core.rotations import (
    axis_angle_to_matrix,
    matrix_to_rot6d_interleaved,
    rot6d_to_matrix,
)

SIDES = ("left", "right")


def make_maps(batch: int = 1, size: int = 64, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    maps = {}
    for side in SIDES:
        maps[f"{side}_center"] = torch.zeros(batch, 1, size, size)
        maps[f"{side}_params"] = torch.randn(batch, 109, size, size, generator=generator)
        maps[f"{side}_prior"] = torch.randn(batch, 106, size, size, generator=generator)
    return maps


def put(maps, side: str, yx: tuple[int, int], score: float = 0.9, image: int = 0) -> None:
    maps[f"{side}_center"][image, 0, yx[0], yx[1]] = score


def raw(maps, side: str, yx: tuple[int, int], image: int = 0) -> torch.Tensor:
    return maps[f"{side}_params"][image, :, yx[0], yx[1]]


def prior(maps, side: str, yx: tuple[int, int], image: int = 0) -> torch.Tensor:
    return maps[f"{side}_prior"][image, :, yx[0], yx[1]]


def assert_no_prior(parsed, maps, left_yx, right_yx, image: int = 0) -> None:
    assert torch.equal(parsed["left"].params[image], raw(maps, "left", left_yx, image))
    assert torch.equal(parsed["right"].params[image], raw(maps, "right", right_yx, image))


def assert_cross_prior(parsed, maps, left_yx, right_yx, image: int = 0) -> None:
    """Each hand: camera as sampled, the rest plus its own prior read at the other's centre."""
    for side, own, other in (("left", left_yx, right_yx), ("right", right_yx, left_yx)):
        params = parsed[side].params[image]
        sampled = raw(maps, side, own, image)
        assert torch.equal(params[:3], sampled[:3])
        torch.testing.assert_close(params[3:], sampled[3:] + prior(maps, side, other, image))
        # not the prior at its own centre
        assert not torch.allclose(params[3:], sampled[3:] + prior(maps, side, own, image))


def test_one_hand():
    maps = make_maps()
    put(maps, "left", (10, 20), 0.9)
    put(maps, "right", (40, 40), 0.2)  # a peak, but below the threshold
    parsed = parse_maps(maps)
    left, right = parsed["left"], parsed["right"]
    assert left.detected.tolist() == [True] and right.detected.tolist() == [False]
    assert left.center.tolist() == [[10, 20]] and left.center.dtype == torch.long
    assert left.score.tolist() == pytest.approx([0.9])
    assert torch.equal(left.params[0], raw(maps, "left", (10, 20)))  # no prior: one hand only
    assert torch.equal(left.camera[0], raw(maps, "left", (10, 20))[:3])
    assert torch.equal(left.betas[0], raw(maps, "left", (10, 20))[99:])
    assert left.params.shape == (1, 109) and left.rotations.shape == (1, 16, 3, 3)
    assert left.global_orient.shape == (1, 3) and left.hand_pose_relative.shape == (1, 15, 3)


def test_two_hands_close_get_the_cross_prior():
    maps = make_maps()
    before = {k: v.clone() for k, v in maps.items()}
    left_yx, right_yx = (20, 22), (30, 40)  # 20.6 cells apart
    put(maps, "left", left_yx)
    put(maps, "right", right_yx, 0.8)
    parsed = parse_maps(maps)
    assert parsed["left"].detected.item() and parsed["right"].detected.item()
    assert parsed["right"].center.tolist() == [list(right_yx)]
    assert_cross_prior(parsed, maps, left_yx, right_yx)
    for key in ("left_params", "right_params", "left_prior", "right_prior"):
        assert torch.equal(maps[key], before[key]), "the parser changed its input"


def test_two_hands_far_apart_get_no_prior():
    maps = make_maps()
    put(maps, "left", (5, 5))
    put(maps, "right", (50, 50))
    parsed = parse_maps(maps)
    assert parsed["left"].detected.item() and parsed["right"].detected.item()
    assert_no_prior(parsed, maps, (5, 5), (50, 50))


@pytest.mark.parametrize(
    "left_yx, right_yx, added",
    [
        ((10, 10), (10, 42), True),  # exactly 32 cells: still added
        ((10, 10), (10, 43), False),
        ((10, 10), (42, 10), True),
        ((10, 10), (29, 35), True),  # 31.4
        ((10, 10), (30, 35), False),  # 32.02: just over
    ],
)
def test_distance_gate(left_yx, right_yx, added):
    maps = make_maps()
    put(maps, "left", left_yx)
    put(maps, "right", right_yx)
    parsed = parse_maps(maps)
    assert math.dist(left_yx, right_yx) <= 32 if added else math.dist(left_yx, right_yx) > 32
    check = assert_cross_prior if added else assert_no_prior
    check(parsed, maps, left_yx, right_yx)


@pytest.mark.parametrize(
    "size, offset, added",
    [(32, 16, True), (32, 17, False), (128, 64, True), (128, 65, False)],
)
def test_gate_scales_with_the_map_size(size, offset, added):
    """The gate is 32 cells of a 64-cell map: half the map's width at any size."""
    maps = make_maps(size=size)
    left_yx, right_yx = (3, 3), (3, 3 + offset)
    put(maps, "left", left_yx)
    put(maps, "right", right_yx)
    parsed = parse_maps(maps)
    assert parsed["right"].center.tolist() == [list(right_yx)]
    check = assert_cross_prior if added else assert_no_prior
    check(parsed, maps, left_yx, right_yx)


def test_threshold():
    assert DEFAULT_THRESHOLD == 0.35
    maps = make_maps()
    put(maps, "left", (10, 10), 0.35)  # not above the threshold
    put(maps, "right", (12, 12), 0.36)
    parsed = parse_maps(maps)
    assert parsed["left"].detected.tolist() == [False]
    assert parsed["right"].detected.tolist() == [True]
    assert_no_prior(parsed, maps, (10, 10), (12, 12))  # one hand: no prior for the other
    # a lower threshold finds both (and then the prior applies), a higher one neither
    lower = parse_maps(maps, threshold=0.3)
    assert lower["left"].detected.item() and lower["right"].detected.item()
    assert_cross_prior(lower, maps, (10, 10), (12, 12))
    higher = parse_maps(maps, threshold=0.5)
    assert not higher["left"].detected.item() and not higher["right"].detected.item()


def test_nothing_detected_on_empty_maps():
    maps = make_maps(batch=2)
    parsed = parse_maps(maps)
    for side in SIDES:
        assert parsed[side].detected.tolist() == [False, False]
        assert torch.isfinite(parsed[side].params).all()


def test_nms_keeps_the_maximum():
    center = torch.zeros(3, 1, 64, 64)
    center[0, 0, 10:13, 10:13] = 0.6  # a plateau
    center[0, 0, 40, 40] = 0.8  # a single higher peak
    center[1, 0, 5, 50] = 0.7  # a second, lower peak
    center[1, 0, 50, 5] = 0.9
    center[2, 0, 20, 20] = 0.9  # a high value right next to a higher one
    center[2, 0, 21, 21] = 0.95
    score, index = find_centers(center)
    assert score.tolist() == pytest.approx([0.8, 0.9, 0.95])
    assert [divmod(i, 64) for i in index.tolist()] == [(40, 40), (50, 5), (21, 21)]


def test_nms_plateau_is_found_when_it_is_the_maximum():
    center = torch.zeros(1, 1, 64, 64)
    center[0, 0, 10:13, 10:13] = 0.6
    center[0, 0, 40, 40] = 0.5
    score, index = find_centers(center)
    assert score.item() == pytest.approx(0.6)
    y, x = divmod(index.item(), 64)
    assert 10 <= y <= 12 and 10 <= x <= 12


def test_sample_reads_each_image_at_its_own_index():
    maps = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    index = torch.tensor([7, 19])  # (1, 2) in image 0, (3, 4) in image 1
    got = sample(maps, index)
    assert torch.equal(got, torch.stack([maps[0, :, 1, 2], maps[1, :, 3, 4]]))


def test_batch_images_are_parsed_independently():
    maps = make_maps(batch=3)
    # image 0: left hand only; image 1: two hands close; image 2: two hands far apart
    put(maps, "left", (10, 20), image=0)
    put(maps, "left", (20, 22), image=1)
    put(maps, "right", (30, 40), image=1)
    put(maps, "left", (60, 60), image=2)
    put(maps, "right", (2, 3), image=2)
    parsed = parse_maps(maps)
    assert parsed["left"].detected.tolist() == [True, True, True]
    assert parsed["right"].detected.tolist() == [False, True, True]
    assert parsed["left"].center.tolist() == [[10, 20], [20, 22], [60, 60]]
    assert torch.equal(parsed["left"].params[0], raw(maps, "left", (10, 20), 0))
    assert_cross_prior(parsed, maps, (20, 22), (30, 40), image=1)
    assert_no_prior(parsed, maps, (60, 60), (2, 3), image=2)
    # each row equals parsing that image alone
    for image in range(3):
        alone = parse_maps({k: v[image : image + 1] for k, v in maps.items()})
        for side in SIDES:
            assert torch.equal(alone[side].detected, parsed[side].detected[image : image + 1])
            torch.testing.assert_close(alone[side].params[0], parsed[side].params[image])


def random_rotations(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Axis-angles with angles in (0.1, 3.0) and their matrices."""
    generator = torch.Generator().manual_seed(seed)
    axes = torch.nn.functional.normalize(torch.randn(count, 3, generator=generator), dim=1)
    angles = 0.1 + 2.9 * torch.rand(count, 1, generator=generator)
    axis_angle = axes * angles
    return axis_angle, axis_angle_to_matrix(axis_angle)


def test_6d_decoding_in_the_interleaved_layout():
    axis_angle, matrices = random_rotations(16, seed=3)
    rot6d = matrix_to_rot6d_interleaved(matrices)  # (16, 6)
    # Gram-Schmidt: scaled columns, and a second column leaning on the first, decode the same
    first, second = rot6d[:, 0::2], rot6d[:, 1::2]
    columns = torch.stack([2.0 * first, 3.0 * second + 0.5 * first], dim=-1)  # (16, 3, 2)
    distorted = columns.reshape(16, 6)  # interleaved again: row-major over (3, 2)
    assert not torch.allclose(rot6d_to_matrix(distorted), matrices, atol=1e-2)  # layout matters

    maps = make_maps()
    yx = (33, 7)
    maps["left_params"][0, 3:99, yx[0], yx[1]] = distorted.reshape(96)
    put(maps, "left", yx)
    left = parse_maps(maps)["left"]
    torch.testing.assert_close(left.rotations[0], matrices, atol=1e-5, rtol=0)
    torch.testing.assert_close(left.global_orient[0], axis_angle[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(left.hand_pose_relative[0], axis_angle[1:], atol=1e-5, rtol=0)
    assert torch.equal(left.camera[0], maps["left_params"][0, :3, yx[0], yx[1]])
    assert torch.equal(left.betas[0], maps["left_params"][0, 99:109, yx[0], yx[1]])
    # every decoded matrix is a proper rotation, also where the parameters are random
    right = parse_maps(maps)["right"]
    eye = torch.eye(3).expand(16, 3, 3)
    rot = right.rotations[0]
    torch.testing.assert_close(rot @ rot.transpose(1, 2), eye, atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.linalg.det(rot), torch.ones(16), atol=1e-5, rtol=0)


def test_absolute_pose_adds_the_mean_pose():
    maps = make_maps(batch=2)
    put(maps, "right", (5, 6), image=0)
    put(maps, "right", (40, 41), image=1)
    right = parse_maps(maps)["right"]
    mean = torch.linspace(-0.5, 0.5, 45, dtype=torch.float64)  # a flat (45,) float64 vector
    absolute = right.absolute_pose(mean)
    assert absolute.shape == (2, 15, 3) and absolute.dtype == right.hand_pose_relative.dtype
    expected = right.hand_pose_relative + mean.float().reshape(1, 15, 3)
    torch.testing.assert_close(absolute, expected)
    # joint j's three numbers are mean[3j:3j+3]
    np.testing.assert_allclose(
        (absolute - right.hand_pose_relative)[1, 4].numpy(), mean[12:15].numpy(), atol=1e-6
    )
