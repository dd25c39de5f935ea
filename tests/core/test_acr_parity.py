"""The ACR port computes what the official implementation computes (fp32, CPU).

``tests/data/acr_reference.npz`` holds the official network's outputs on the ACR demo image
with deterministic weights (``tests/parity/make_acr_reference.py`` wrote it from a checkout of
the official repository). Here the port gets the same weights by name and the same input.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from handmocap.core.acr.checkpoint import official_to_port, port_to_official
from handmocap.core.acr.model import ACR, ACRConfig
from handmocap.core.acr.parse import parse_maps
from handmocap.core.acr.preprocess import to_network_input
from handmocap.core.rotations import axis_angle_to_matrix

DATA = Path(__file__).resolve().parents[1] / "data"
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "parity"))

import deterministic  # noqa: E402
from make_acr_reference import synthetic_maps  # noqa: E402

TOL = 1e-4


@pytest.fixture(scope="module")
def reference():
    return dict(np.load(DATA / "acr_reference.npz"))


@pytest.fixture(scope="module")
def port_outputs(reference):
    torch.manual_seed(0)
    model = ACR.from_config(ACRConfig()).eval()
    official_names = port_to_official(model.state_dict())
    filled = deterministic.fill(official_names, prefix="module.")
    state, unknown = official_to_port(filled)
    assert not unknown
    model.load_state_dict(state)
    image = torch.from_numpy(reference["image"])[None]
    with torch.no_grad():
        maps = model(to_network_input(image))
        parsed = parse_maps(maps)
    return maps, parsed


def test_official_key_names_and_shapes_are_all_used():
    import json

    official = json.loads((DATA / "acr_official_keys.json").read_text())
    model = ACR.from_config(ACRConfig())
    renamed, unknown = official_to_port({k: torch.empty(v) for k, v in official.items()})
    assert not unknown
    ours = model.state_dict()
    assert set(renamed) == set(ours)
    for key, value in renamed.items():
        assert tuple(value.shape) == tuple(ours[key].shape), key
    dropped = set(official) - {"module." + k for k in port_to_official(ours)}.union(
        port_to_official(ours)
    )
    assert dropped and all(k.startswith("module.segmentation_layers.") for k in dropped)


@pytest.mark.parametrize(
    "name",
    ["segm_logits", "left_params_global", "right_params_global", "left_params", "right_params",
     "left_prior", "right_prior"],
)  # fmt: skip
def test_maps_match(reference, port_outputs, name):
    maps, _ = port_outputs
    s = int(reference["step"])
    ours = maps[name][0, :, ::s, ::s].numpy()
    np.testing.assert_allclose(ours, reference[name], atol=TOL, rtol=0)


def test_center_maps_and_segmentation_means_match(reference, port_outputs):
    maps, _ = port_outputs
    for side in ("left", "right"):
        np.testing.assert_allclose(
            maps[f"{side}_center"][0].numpy(), reference[f"{side}_center"], atol=TOL, rtol=0
        )
    np.testing.assert_allclose(
        maps["segm_logits"][0].mean((1, 2)).numpy(), reference["segm_logits_mean"], atol=TOL
    )


def check_parsed(parsed, reference, prefix=""):
    for row, side in enumerate(("left", "right")):
        hand = parsed[side]
        assert bool(hand.detected[0])
        y, x = hand.center[0].tolist()
        np.testing.assert_array_equal([x, y], reference[f"{prefix}{side}_center_xy"][0])
        np.testing.assert_allclose(
            hand.params[0].numpy(), reference[f"{prefix}params_pred"][row], atol=TOL, rtol=0
        )
        # axis-angle compared as rotations (the axis sign is free at pi)
        pose = np.concatenate(
            [hand.global_orient[0].numpy()[None], hand.hand_pose_relative[0].numpy()]
        )
        ref = np.concatenate(
            [reference[f"{prefix}global_orient"][row][None],
             reference[f"{prefix}hand_pose"][row].reshape(15, 3)]
        )  # fmt: skip
        np.testing.assert_allclose(
            axis_angle_to_matrix(pose), axis_angle_to_matrix(ref), atol=TOL, rtol=0
        )


def test_parsed_hands_match(reference, port_outputs):
    _, parsed = port_outputs
    check_parsed(parsed, reference)
    # these centres are far apart: the official gate switched the prior off
    assert (parsed["left"].center[0] - parsed["right"].center[0]).float().norm() > 32


def test_parsing_with_the_cross_prior_matches(reference):
    official = synthetic_maps()
    maps = {
        "left_params": official["l_params_maps"],
        "right_params": official["r_params_maps"],
        "left_prior": official["l_prior_maps"],
        "right_prior": official["r_prior_maps"],
        "left_center": official["l_center_map"],
        "right_center": official["r_center_map"],
    }
    parsed = parse_maps(maps)
    check_parsed(parsed, reference, prefix="synthetic_")
    # the prior really was added (close centres)
    raw = maps["left_params"][0, :, 20, 22]
    assert not torch.allclose(parsed["left"].params[0, 3:], raw[3:])
