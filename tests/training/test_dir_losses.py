"""DIR's losses: the pieces on hand-worked numbers, then the whole loss on a tiny DIR and two
synthetic samples of the open hand model (both hands posed at random, projected into a 128 px
image, rectangles for the segmentation and dense maps)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import default_collate

from handmocap.core.dir.crop import to_network_input
from handmocap.core.dir.hands import OFFSET_UNIT, PosedHands
from handmocap.core.dir.model import DIR, DIRConfig, DIROutput, DIRStage
from handmocap.core.handmodel import HandLayer, load_hand_models
from handmocap.training.losses.dir import (
    DIRLoss,
    DIRLossWeights,
    edge_length_loss,
    hand_classes,
    lovasz_softmax,
    normal_loss,
    smooth_l1,
)
from handmocap.training.sample import SIDES, empty_sample, hand_masks

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SIZE = 128  # the samples' image
STAGES = ("init", "stage1", "stage2")
HAND_TERMS = ("joint_uv", "mesh_uv", "joint_xyz", "mesh_xyz", "edge", "normal", "offset")
NAMES = {f"{s}/{t}" for s in STAGES for t in HAND_TERMS} | {"seg_ce", "seg_lovasz", "dense"}
LABELS = ("hand_valid", "joints3d_valid", "params_valid", "seg_valid", "dense_valid")


@pytest.fixture(scope="module")
def models():
    return load_hand_models(None, "openhand")


@pytest.fixture(scope="module")
def layer(models):
    return HandLayer(models)


@pytest.fixture(scope="module")
def loss(layer):
    return DIRLoss(layer)


@pytest.fixture()
def batch(layer):
    rng = np.random.default_rng(0)
    return default_collate([synthetic_sample(layer, rng) for _ in range(2)])


def synthetic_sample(layer: HandLayer, rng: np.random.Generator) -> dict[str, np.ndarray]:
    s = empty_sample(SIZE)
    focal = 1.6 * SIZE
    k = np.array([[focal, 0, SIZE / 2], [0, focal, SIZE / 2], [0, 0, 1]], np.float32)
    s["camera"] = k
    s["image"] = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    for i, side in enumerate(SIDES):
        orient = rng.normal(0, 0.3, 3) + np.array([np.pi / 2, 0, 0])
        pose, betas = rng.normal(0, 0.2, (15, 3)), rng.normal(0, 0.5, 10)
        t = lambda a: torch.as_tensor(a[None], dtype=torch.float32)  # noqa: E731
        root = layer(side, t(orient), t(pose), t(betas)).keypoints[0, 9].numpy()
        transl = np.array([-0.07 if side == "left" else 0.07, 0.0, 0.55]) - root
        hand = layer(side, t(orient), t(pose), t(betas), t(transl))
        joints, vertices = hand.keypoints[0].numpy(), hand.vertices[0].numpy()
        uv = joints @ k.T
        s["joints2d"][i, :, :2] = uv[:, :2] / uv[:, 2:]
        s["joints2d"][i, :, 2] = 1
        s["joints3d"][i] = joints
        s["global_orient"][i], s["hand_pose"][i], s["betas"][i] = orient, pose, betas
        s["transl"][i] = transl
        # the projected vertices' box, one part class per hand (left 17 + 2, right 1 + 4)
        p = vertices @ k.T
        p = np.clip(p[:, :2] / p[:, 2:], 0, SIZE - 1).astype(int)
        (x0, y0), (x1, y1) = p.min(0), p.max(0) + 1
        s["part_seg"][y0:y1, x0:x1] = 19 if side == "left" else 5
        s["dense"][y0:y1, x0:x1] = (200, 40, 90) if side == "left" else (30, 220, 120)
    for key in LABELS:
        s[key][...] = 1
    return s


def tiny_dir(models) -> DIR:
    torch.manual_seed(0)
    return DIR(DIRConfig.tiny(), models).train()


def network_input(batch) -> torch.Tensor:
    x = to_network_input(batch["image"])
    return F.interpolate(x, size=256, mode="bilinear", align_corners=False)


def target_output(loss: DIRLoss, batch) -> DIROutput:
    """A DIR output that is exactly the batch's ground truth, in every stage."""
    t = loss.targets(batch, (32, 32))
    hands = {
        s: PosedHands(t.joints[s], t.vertices[s], t.joints_uv[s], t.vertices_uv[s]) for s in SIDES
    }
    params = {s: torch.zeros(2, 64) for s in SIDES}
    stages = {name: DIRStage(params, hands, t.offset) for name in STAGES}
    seg = 40.0 * F.one_hot(t.seg, 3).permute(0, 3, 1, 2).float()
    return DIROutput(stages, seg, t.dense, torch.zeros(2, 1, 32, 32))


# ---------------------------------------------------------------- the pieces, by hand


def test_smooth_l1_is_the_official_formula():
    z = torch.tensor([0.0, 0.005, -0.009, 0.01, 0.02, -1.0])
    # 0.5 z^2 below 0.01, else 0.01 (|z| - 0.005)
    expected = torch.tensor([0.0, 1.25e-5, 4.05e-5, 5e-5, 1.5e-4, 0.00995])
    assert torch.allclose(smooth_l1(z, torch.zeros(6)), expected, rtol=1e-5, atol=1e-12)
    assert torch.allclose(smooth_l1(z + 3, torch.full((6,), 3.0)), expected, rtol=1e-3)


def test_lovasz_softmax_on_hand_worked_cases():
    labels = torch.tensor([0, 1])
    # class 0: errors (0.2, 0.4), sorted fg (0, 1) -> Jaccard steps (0.5, 0.5) -> 0.3
    # class 1: errors (0.2, 0.4), sorted fg (1, 0) -> steps (1, 0) -> 0.4; mean 0.35
    probs = torch.tensor([[0.8, 0.2, 0.0], [0.4, 0.6, 0.0]])  # class 2 absent: not counted
    assert lovasz_softmax(probs, labels).item() == pytest.approx(0.35)
    assert lovasz_softmax(F.one_hot(labels, 3).float(), labels).item() == 0.0
    # one-hot predictions: the mean over present classes of 1 - IoU (1/2 and 2/3)
    labels = torch.tensor([0, 0, 1, 1])
    wrong = F.one_hot(torch.tensor([0, 1, 1, 1]), 2).float()
    assert lovasz_softmax(wrong, labels).item() == pytest.approx((0.5 + 1 / 3) / 2)
    empty = torch.zeros(0, 3, requires_grad=True)
    value = lovasz_softmax(empty, torch.zeros(0, dtype=torch.long))
    value.backward()
    assert value.item() == 0.0 and empty.grad is not None


def test_edge_and_normal_losses_on_one_triangle():
    faces = torch.tensor([[0, 1, 2]])
    tri = torch.tensor([[[0.0, 0, 0], [1, 0, 0], [0, 1, 0]]])
    assert edge_length_loss(tri, tri, faces).item() == pytest.approx(0, abs=1e-6)
    assert normal_loss(tri, tri, faces).item() == 0.0
    # twice the size: every edge off by its length; still in the plane
    assert edge_length_loss(2 * tri, tri, faces).item() == pytest.approx((2 + math.sqrt(2)) / 3)
    assert normal_loss(2 * tri, tri, faces).item() == pytest.approx(0, abs=1e-7)
    lifted = torch.tensor([[[0.0, 0, 0], [1, 0, 0], [0, 1, 1]]])
    expected = (0 + 1 / math.sqrt(2) + 1 / math.sqrt(3)) / 3
    assert normal_loss(lifted, tri, faces).item() == pytest.approx(expected)


def test_hand_classes_match_the_sample_contract():
    part_seg = np.random.default_rng(0).integers(0, 33, (4, 9, 9)).astype(np.uint8)
    assert np.array_equal(hand_classes(torch.from_numpy(part_seg)).numpy(), hand_masks(part_seg))


# ---------------------------------------------------------------- the whole loss


def test_every_term_is_finite_and_positive_on_a_tiny_dir(models, loss, batch):
    losses = loss(tiny_dir(models)(network_input(batch)), batch)
    assert set(losses) == NAMES
    for name, value in losses.items():
        assert value.dtype == torch.float32 and value.shape == (), name
        assert torch.isfinite(value) and value > 0, name


def test_terms_vanish_when_the_output_is_the_target(loss, batch):
    losses = loss(target_output(loss, batch), batch)
    assert set(losses) == NAMES
    for name, value in losses.items():
        assert value.item() == pytest.approx(0, abs=1e-6), name


def test_targets_follow_the_sample(models, loss, batch):
    t = loss.targets(batch, (32, 32))
    assert t.seg.shape == (2, 32, 32) and set(t.seg.unique().tolist()) == {0, 1, 2}
    assert t.dense.shape == (2, 3, 32, 32) and 0 <= t.dense.min() and t.dense.max() <= 1
    tips = [4, 8, 12, 16, 20]  # keypoints that are vertices: the mesh targets must agree
    for side in SIDES:
        assert torch.allclose(t.joints[side][:, 0], torch.zeros(2, 3))  # root_joint 0: wrist
        on_mesh = t.vertices[side][:, models[side].fingertip_ids]
        assert torch.allclose(on_mesh, t.joints[side][:, tips], atol=1e-6)
        on_mesh = t.vertices_uv[side][:, models[side].fingertip_ids]
        assert torch.allclose(on_mesh, t.joints_uv[side][:, tips], atol=1e-5)
    roots = batch["joints3d"][:, :, 0]
    assert torch.allclose(t.offset * OFFSET_UNIT, roots[:, 1] - roots[:, 0], atol=1e-6)
    knuckle = DIRLoss(loss.layer, root_joint=9).targets(batch, (32, 32))
    assert torch.allclose(knuckle.joints["left"][:, 9], torch.zeros(2, 3))
    assert torch.allclose(knuckle.vertices["left"], t.vertices["left"] - t.joints["left"][:, 9:10])


def test_unlabelled_batch_gives_zeros_with_a_gradient(models, loss, batch):
    for key in LABELS:
        batch[key].zero_()
    for key in ("joints2d", "joints3d", "global_orient", "transl", "camera"):
        batch[key].fill_(float("nan"))  # whatever a missing label holds must not leak
    model = tiny_dir(models)
    losses = loss(model(network_input(batch)), batch)
    assert set(losses) == NAMES
    for name, value in losses.items():
        assert value.item() == 0.0 and value.requires_grad, name
    sum(losses.values()).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_masked_labels_change_nothing(models, loss, batch):
    model = tiny_dir(models).eval()
    with torch.no_grad():
        output = model(network_input(batch))
    batch["hand_valid"][0, 0] = 0  # sample 0's left hand is missing
    batch["joints2d"][1, 1, 5, 2] = 0  # sample 1's right index knuckle is unlabelled
    batch["seg_valid"][1] = batch["dense_valid"][0] = 0
    batch["joints3d_valid"][1, 1] = batch["params_valid"][1, 0] = 0
    clean = loss(output, batch)
    batch["joints2d"][0, 0] = batch["joints3d"][0, 0] = 5.0
    batch["global_orient"][0, 0] = batch["transl"][0, 0] = 3.0
    batch["joints2d"][1, 1, 5, :2] = -40.0
    batch["joints3d"][1, 1] = batch["transl"][1, 0] = 7.0
    batch["part_seg"][1] = 20
    batch["dense"][0] = 255
    corrupted = loss(output, batch)
    for name in NAMES:
        assert torch.equal(corrupted[name], clean[name]), name
    batch["hand_valid"][0, 0] = 1  # the corrupted hand counts again
    assert loss(output, batch)["stage2/joint_uv"] > clean["stage2/joint_uv"]


def test_weights_scale_and_drop_terms(layer, loss, batch):
    output = target_output(loss, batch)
    output.stages["stage2"].offset = output.stages["stage2"].offset + 1.0
    output.dense = output.dense + 0.5
    base = loss(output, batch)
    assert base["stage2/offset"].item() == pytest.approx(10 * 0.01 * (1 - 0.005))
    assert base["dense"].item() == pytest.approx(0.01 * (0.5 - 0.005))
    changed = DIRLoss(layer, DIRLossWeights(offset=20.0, dense=0.0, edge=0.0))(output, batch)
    assert changed["stage2/offset"].item() == pytest.approx(2 * base["stage2/offset"].item())
    assert "dense" not in changed and not any(n.endswith("/edge") for n in changed)


def test_gradient_reaches_every_parameter_the_losses_touch(models, loss, batch):
    model = tiny_dir(models)
    sum(loss(model(network_input(batch)), batch).values()).backward()
    without = {n for n, p in model.named_parameters() if p.grad is None}
    # the only parameters no loss reaches: the transformer block the official forward skips
    assert without and all(".interaction.STEblocks.0." in n for n in without)
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert all(torch.isfinite(g).all() for g in grads)
    assert sum(bool(g.abs().sum() > 0) for g in grads) > 0.95 * len(grads)


def test_losses_are_float32_under_autocast(models, loss, batch):
    model = tiny_dir(models)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = loss(model(network_input(batch)), batch)
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in losses.values())


def test_adam_steps_lower_the_total_loss(models, loss, batch):
    model = tiny_dir(models)
    x = network_input(batch)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    totals = []
    for _ in range(10):
        total = sum(loss(model(x), batch).values())
        optimiser.zero_grad()
        total.backward()
        optimiser.step()
        totals.append(total.item())
    assert totals[-1] < 0.7 * totals[0], totals
