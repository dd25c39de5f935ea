"""The hand layer: shapes, keypoints, conventions, gradients, model selection, devices."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from handmocap.core.errors import ModelFileError
from handmocap.core.handmodel import (
    MANO_FINGERTIPS,
    HandLayer,
    load_hand_models,
    open_model_path,
)
from handmocap.core.poses import mirror_pose, named_pose
from handmocap.core.rotations import axis_angle_to_matrix


@pytest.fixture(scope="module")
def layer():
    return HandLayer.from_models_dir(None, "openhand")


def random_inputs(batch, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(batch, 3, generator=g, dtype=dtype),
        0.3 * torch.randn(batch, 15, 3, generator=g, dtype=dtype),
        torch.randn(batch, 10, generator=g, dtype=dtype),
        torch.randn(batch, 3, generator=g, dtype=dtype),
    )


@pytest.mark.parametrize("side", ["left", "right"])
def test_shapes_and_keypoint_order(layer, side):
    out = layer(side, *random_inputs(5))
    v = layer.models[side].num_vertices
    assert out.vertices.shape == (5, v, 3)
    assert out.joints.shape == (5, 16, 3)
    assert out.keypoints.shape == (5, 21, 3)
    tips = layer.models[side].fingertip_ids
    torch.testing.assert_close(out.keypoints[:, 0], out.joints[:, 0])  # wrist
    torch.testing.assert_close(out.keypoints[:, 1], out.joints[:, 13])  # thumb1
    torch.testing.assert_close(out.keypoints[:, 5], out.joints[:, 1])  # index1
    torch.testing.assert_close(out.keypoints[:, 17], out.joints[:, 7])  # pinky1
    torch.testing.assert_close(out.keypoints[:, [4, 8, 12, 16, 20]], out.vertices[:, tips])


def test_flat_hand_pose_is_absolute(layer):
    """Zero finger pose is the flat template, not the model's relaxed mean pose."""
    out = layer("right", torch.zeros(1, 3), torch.zeros(1, 15, 3))
    template = torch.as_tensor(layer.models["right"].arrays["v_template"], dtype=torch.float32)
    torch.testing.assert_close(out.vertices[0], template, atol=1e-6, rtol=0)


def test_translation_and_rotation_about_the_wrist(layer):
    orient, pose, betas, transl = random_inputs(3)
    base = layer("right", torch.zeros(3, 3), pose, betas)
    moved = layer("right", orient, pose, betas, transl)
    wrist = base.joints[:, :1]
    rot = axis_angle_to_matrix(orient)
    expected = (base.vertices - wrist) @ rot.transpose(1, 2) + wrist + transl[:, None]
    torch.testing.assert_close(moved.vertices, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(moved.joints[:, 0], base.joints[:, 0] + transl, atol=1e-6, rtol=0)


def test_left_hand_mirrors_right(layer):
    for name in ("fist", "pinch"):
        right = layer("right", torch.zeros(1, 3), torch.as_tensor(named_pose(name)).float()[None])
        left_pose = torch.as_tensor(mirror_pose(named_pose(name))).float()[None]
        left = layer("left", torch.zeros(1, 3), left_pose)
        torch.testing.assert_close(left.keypoints, right.keypoints * torch.tensor([-1.0, 1, 1]))


def test_gradients_reach_every_input(layer):
    inputs = [t.clone().double().requires_grad_(True) for t in random_inputs(2)]
    layer_d = layer.double()
    try:
        out = layer_d("right", *inputs)
        (out.vertices.square().sum() + out.keypoints.sum()).backward()
        for t in inputs:
            assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0
    finally:
        layer.float()


def test_accepts_flat_45_vector_and_rejects_bad_shapes(layer):
    orient, pose, betas, transl = random_inputs(2)
    a = layer("left", orient, pose, betas, transl)
    b = layer("left", orient, pose.reshape(2, 45), betas, transl)
    torch.testing.assert_close(a.vertices, b.vertices)
    with pytest.raises(ValueError, match="hand_pose"):
        layer("left", orient, pose[:, :14], betas, transl)
    with pytest.raises(ValueError, match="betas"):
        layer("left", orient, pose, betas[:, :5], transl)
    with pytest.raises(ValueError, match="side"):
        layer("middle", orient, pose, betas, transl)


def test_auto_picks_mano_when_present(tmp_path, monkeypatch):
    monkeypatch.delenv("HANDMOCAP_MODELS", raising=False)
    assert load_hand_models(tmp_path)["right"].kind == "openhand"
    with pytest.raises(ModelFileError, match="MANO_RIGHT.pkl"):
        load_hand_models(tmp_path, kind="mano")
    # Files in MANO's key layout (the open model's, renamed) stand in for the user's MANO files.
    (tmp_path / "mano").mkdir()
    for side in ("right", "left"):
        shutil.copy(open_model_path(side), tmp_path / "mano" / f"MANO_{side.upper()}.pkl")
    models = load_hand_models(tmp_path)
    assert models["right"].kind == "mano" and models["left"].kind == "mano"
    assert models["right"].model_id.startswith("mano-")
    np.testing.assert_array_equal(models["left"].fingertip_ids, MANO_FINGERTIPS["left"])
    monkeypatch.setenv("HANDMOCAP_MODELS", str(tmp_path))
    assert load_hand_models()["left"].kind == "mano"
    out = HandLayer(models)("left", *random_inputs(2))
    assert torch.isfinite(out.keypoints).all()


def test_model_ids_name_the_file_content():
    a = load_hand_models(kind="openhand")
    assert a["right"].model_id.startswith("openhand-")
    assert a["right"].model_id != a["left"].model_id


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(layer):
    inputs = random_inputs(4)
    cpu = layer("right", *inputs)
    gpu_layer = HandLayer.from_models_dir(None, "openhand").cuda()
    gpu = gpu_layer("right", *[t.cuda() for t in inputs])
    torch.testing.assert_close(gpu.vertices.cpu(), cpu.vertices, atol=1e-5, rtol=1e-4)
