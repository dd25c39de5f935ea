"""ACR's losses and centre-map targets on hand-checked cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from toydata import PosedHands

from handmocap.core.acr.model import ACR, ACRConfig
from handmocap.core.handmodel import HandLayer
from handmocap.core.rotations import axis_angle_to_matrix
from handmocap.training.losses.acr import ACRLoss, focal_loss, procrustes_align
from handmocap.training.targets import K_MIN, center_heatmaps, hand_centers, repel

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_focal_loss_on_a_hand_computed_case():
    target = torch.zeros(1, 2, 2)
    target[0, 0, 0] = 1.0
    target[0, 1, 1] = 0.5
    raw = torch.tensor([[[0.8, 0.1], [0.0, 0.4]]])
    pos = -math.log(0.8) * 0.2**2
    neg = -math.log(0.9) * 0.1**2 * 1.0 + (-math.log(0.6) * 0.4**2 * 0.5**4)
    neg += -math.log(1 - 1e-4) * 1e-8  # the cell at 0 is clamped to 1e-4
    value = focal_loss(raw, target, torch.ones(1))
    assert float(value) == pytest.approx(pos + neg, rel=1e-4)
    assert float(focal_loss(raw, target, torch.zeros(1))) == 0.0


def test_focal_loss_gradient_passes_the_clamp():
    raw = torch.full((1, 3, 3), -0.5, requires_grad=True)
    target = torch.zeros(1, 3, 3)
    target[0, 1, 1] = 1.0
    focal_loss(raw, target, torch.ones(1)).backward()
    assert raw.grad[0, 1, 1] < 0  # the peak is pushed up although it starts below the clamp


def test_procrustes_removes_a_similarity_exactly():
    rng = np.random.default_rng(0)
    gt = torch.as_tensor(rng.normal(size=(2, 21, 3)), dtype=torch.float64)
    rot = axis_angle_to_matrix(
        torch.tensor([[0.3, -1.0, 0.5], [2.0, 0.1, 0.0]], dtype=torch.float64)
    )
    pred = 1.7 * gt @ rot.transpose(1, 2) + torch.tensor([0.1, 0.2, -0.3], dtype=torch.float64)
    torch.testing.assert_close(procrustes_align(pred, gt), gt, atol=1e-9, rtol=0)


def test_centre_kernel_grows_with_the_hand_and_close_centres_repel():
    joints = np.zeros((2, 21, 3))
    joints[..., 2] = 1
    joints[0, :, :2] = np.linspace([10, 10], [20, 20], 21)  # a small left hand
    joints[1, :, :2] = np.linspace([40, 40], [120, 120], 21)  # a large right hand
    centers, kernels, ok = hand_centers(joints, np.ones(2), 128, 64)
    knuckles = joints[1, [1, 5, 9, 13, 17], :2].mean(0) * 0.5
    np.testing.assert_allclose(centers[1], knuckles)
    diagonal = np.hypot(80, 80)
    assert kernels[1] == pytest.approx(K_MIN + 7 * (diagonal / (math.sqrt(2) * 128)) ** 2)
    assert K_MIN < kernels[0] < kernels[1] and ok.all()
    close = np.array([[30.0, 30.0], [32.0, 30.0]])
    moved = repel(close, np.array([2.0, 2.0]))
    # d = 2 < k_L + k_R + 1 = 5: each moves 0.2 * (5 - 2) = 0.6 cells apart along x
    np.testing.assert_allclose(moved, [[29.4, 30.0], [32.6, 30.0]])
    far = np.array([[10.0, 10.0], [40.0, 10.0]])
    np.testing.assert_array_equal(repel(far, np.array([2.0, 2.0])), far)
    maps = center_heatmaps(joints, np.array([0.0, 1.0]), 128, 64)
    assert maps[0].max() == 0 and maps[1].max() == pytest.approx(1.0)


def test_unlabelled_hands_never_reach_the_loss():
    layer = HandLayer.from_models_dir(None, "openhand")
    model = ACR.from_config(ACRConfig.tiny())
    loss = ACRLoss(layer)
    data = PosedHands(2, 128, seed=4, layer=layer)
    samples = []
    for i in range(2):
        s = data[i]
        s["center_maps"] = center_heatmaps(s["joints2d"], s["hand_valid"], 128, 16)
        samples.append(s)
    samples[1]["joints3d_valid"][0] = 0
    samples[1]["params_valid"][0] = 0
    samples[1]["joints3d"][0] = np.nan
    samples[1]["hand_pose"][0] = np.nan
    batch = {k: torch.as_tensor(np.stack([s[k] for s in samples])) for k in samples[0]}
    images = batch["image"].permute(0, 3, 1, 2).float() / 127.5 - 1
    terms = loss(model(images), batch, epoch=0)
    total = sum(terms.values())
    assert torch.isfinite(total)
    total.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
