"""The DIR network: shapes, gradients, the history switch, and its pieces on known answers.

Most tests run ``DIRConfig.tiny()`` (same structure, narrow layers) with the open hand model.
The graph convolution, the bone projection and the hand layer are checked on hand-made cases
whose answers are worked out by hand; ``test_dir_parity.py`` checks the full-size network
against the official implementation.
"""

from __future__ import annotations

import pytest
import torch

from handmocap.core.dir.hands import DIRHands, finger_axis_angles
from handmocap.core.dir.model import (
    BONE_CHILDREN,
    BONE_PARENTS,
    DIR,
    DIRConfig,
    PGraphConv,
    bone_projection,
    pixel_centres,
    skeleton_adjacency,
)
from handmocap.core.handmodel import HandLayer, load_hand_models
from handmocap.core.rotations import matrix_to_axis_angle, rot6d_robust_to_matrix

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def models():
    return load_hand_models(None, "openhand")


def tiny(models, **changes) -> DIR:
    torch.manual_seed(0)
    return DIR(DIRConfig.tiny(**changes), models)


def images(batch: int = 2, size: int = 256) -> torch.Tensor:
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(1))


def test_forward_returns_every_stage_by_name(models):
    out = tiny(models).eval()(images())
    assert list(out.stages) == ["init", "stage1", "stage2"]
    assert out.final is out.stages["stage2"]
    vertices = models["right"].num_vertices
    for stage in out.stages.values():
        assert stage.offset.shape == (2, 3)
        for side in ("left", "right"):
            hand = stage.hands[side]
            assert stage.params[side].shape == (2, 64)
            assert hand.joints.shape == (2, 21, 3) and hand.joints_uv.shape == (2, 21, 2)
            assert hand.vertices.shape == (2, vertices, 3)
            assert hand.vertices_uv.shape == (2, vertices, 2)
            assert torch.allclose(hand.joints[:, 0], torch.zeros(2, 3), atol=1e-6)  # wrist root
    assert out.seg.shape == out.dense.shape == (2, 3, 32, 32)
    assert out.proj_feat.shape == (2, 20 * 8, 32, 32)
    assert out.stages["stage1"].features["img_feat"].shape == (2, 32, 16, 16)


def test_backward_reaches_every_parameter_but_the_unused_block(models):
    model = tiny(models).train()
    out = model(images())
    loss = out.seg.square().mean() + out.dense.square().mean()
    for stage in out.stages.values():
        loss = loss + stage.offset.square().mean()
        for hand in stage.hands.values():
            loss = loss + hand.joints.square().mean() + hand.vertices_uv.square().mean()
    loss.backward()
    without = {n for n, p in model.named_parameters() if p.grad is None}
    assert without and all(".interaction.STEblocks.0." in n for n in without)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_corrected_behaviour_trains_the_first_block(models):
    model = tiny(models, behaviour="corrected").train()
    out = model(images())
    out.final.hands["right"].joints.square().mean().backward()
    grads = [
        p.grad for n, p in model.named_parameters() if "projecter_3.interaction.STEblocks.0" in n
    ]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)


def test_behaviours_differ_where_the_history_does(models):
    x = images(1)
    outs = {}
    for behaviour in ("release", "latest", "corrected"):
        model = tiny(models, behaviour=behaviour).eval()
        with torch.no_grad():
            outs[behaviour] = model(x)
    same_weights = ("release", "latest", "corrected")
    for b in same_weights[1:]:
        torch.testing.assert_close(outs[b].stages["init"].params["right"],
                                   outs["release"].stages["init"].params["right"])  # fmt: skip
    # release feeds the right regressor the left hand's initial parameters: only the right hand
    # of the refinement stages changes; left is the same
    r, latest = outs["release"].stages["stage1"], outs["latest"].stages["stage1"]
    torch.testing.assert_close(r.params["left"], latest.params["left"])
    assert not torch.allclose(r.params["right"], latest.params["right"])
    assert not torch.allclose(
        latest.params["left"], outs["corrected"].stages["stage1"].params["left"]
    )


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="behaviour"):
        DIRConfig(behaviour="newest")
    with pytest.raises(ValueError, match="multiple of 32"):
        DIRConfig(input_size=250)


def test_batch_items_are_independent(models):
    model = tiny(models).eval()
    x = images(3)
    with torch.no_grad():
        together = model(x).final.hands["left"].joints
        alone = model(x[1:2]).final.hands["left"].joints
    torch.testing.assert_close(together[1:2], alone, atol=1e-5, rtol=0)


def test_channels_last_and_bf16_autocast(models):
    model = tiny(models).eval()
    x = images(2)
    with torch.no_grad():
        ref = model(x)
        cl = model.to(memory_format=torch.channels_last)(
            x.contiguous(memory_format=torch.channels_last)
        )
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(x)
    torch.testing.assert_close(cl.final.hands["right"].joints, ref.final.hands["right"].joints,
                               atol=1e-5, rtol=0)  # fmt: skip
    hand = low.final.hands["right"]
    assert hand.joints.dtype == torch.float32  # the hand layer stays in float32
    assert torch.isfinite(hand.joints).all() and torch.isfinite(low.seg).all()


# --- the graph convolution --------------------------------------------------------------------


def test_skeleton_adjacency_is_the_hand():
    adj = skeleton_adjacency()
    assert torch.equal(adj, adj.T) and adj.diagonal().sum() == 0
    assert adj.sum() == 40  # 20 bones, both directions
    assert adj[0].nonzero().flatten().tolist() == [1, 5, 9, 13, 17]  # the wrist's five
    assert adj[4].nonzero().flatten().tolist() == [3]  # a fingertip: its parent only


def graph_conv(channels: int = 3) -> PGraphConv:
    conv = PGraphConv(channels, channels, skeleton_adjacency())
    assert conv.e_0.shape == (1, 21) and conv.e_1.shape == (1, 40)
    with torch.no_grad():
        conv.W.zero_()
        conv.bias.zero_()
    return conv


def test_graph_conv_self_term_uses_each_joints_own_weights():
    conv = graph_conv()
    x = torch.randn(2, 21, 3)
    with torch.no_grad():
        conv.W[0] = torch.eye(3)
        conv.W[0, 7] = 2 * torch.eye(3)  # joint 7 alone gets its own matrix
    out = conv(x)
    expected = x.clone()
    expected[:, 7] *= 2
    torch.testing.assert_close(out, expected)


def test_graph_conv_neighbour_term_averages_the_neighbours():
    conv = graph_conv()
    x = torch.randn(2, 21, 3)
    with torch.no_grad():
        conv.W[1] = torch.eye(3)
        conv.bias.fill_(0.5)
    out = conv(x)
    torch.testing.assert_close(out[:, 0], x[:, [1, 5, 9, 13, 17]].mean(1) + 0.5)
    torch.testing.assert_close(out[:, 4], x[:, 3] + 0.5)
    torch.testing.assert_close(out[:, 2], (x[:, 1] + x[:, 3]) / 2 + 0.5)


def test_graph_conv_edge_logits_weight_the_neighbours():
    conv = graph_conv()
    x = torch.randn(1, 21, 3)
    with torch.no_grad():
        conv.W[1] = torch.eye(3)
        # edges are numbered row by row over the adjacency: joint 0's five come first
        conv.e_1[0, 0] = 1 + torch.log(torch.tensor(4.0))  # edge 0 -> 1: four times the others
    out = conv(x)
    weights = torch.tensor([4.0, 1, 1, 1, 1]) / 8
    torch.testing.assert_close(out[0, 0], (weights[:, None] * x[0, [1, 5, 9, 13, 17]]).sum(0))


# --- the bone projection ----------------------------------------------------------------------


def test_pixel_centres_are_row_major_xy():
    centres = pixel_centres(4)
    assert centres.shape == (16, 2)
    assert centres[1].tolist() == [1.5, 0.5] and centres[4].tolist() == [0.5, 1.5]


def to_uv(pixels, size: int) -> torch.Tensor:
    return torch.as_tensor(pixels, dtype=torch.float32) * 2 / size - 1


def one_bone(size: int = 8):
    """Keypoint 0 at pixel (2.5, 2.5), keypoint 1 at (6.5, 2.5), every other at keypoint 0:
    bone 0 (0 -> 1) and bone 1 (1 -> 2) lie on the same segment, the rest have no length."""
    pixels = torch.tensor([[2.5, 2.5]]).repeat(21, 1)
    pixels[1] = torch.tensor([6.5, 2.5])
    feats = torch.zeros(1, 21, 2)
    feats[0, :, 0] = 1.0  # every keypoint [1, 0] ...
    feats[0, 1] = torch.tensor([0.0, 1.0])  # ... but keypoint 1: [0, 1]
    return to_uv(pixels, size)[None], feats


def test_bone_projection_interpolates_along_the_bone():
    size = 8
    uv, feats = one_bone(size)
    out = bone_projection(uv, feats, pixel_centres(size), size, distance=1.0)
    assert out.shape == (1, 20 * 2, size, size)
    bone0 = out[0, 0:2]  # channels of bone 0
    torch.testing.assert_close(bone0[:, 2, 4], torch.tensor([0.5, 0.5]), atol=1e-5, rtol=0)
    torch.testing.assert_close(bone0[:, 2, 3], torch.tensor([0.75, 0.25]), atol=1e-5, rtol=0)
    torch.testing.assert_close(bone0[:, 2, 6], torch.tensor([0.0, 1.0]), atol=1e-5, rtol=0)
    assert bone0[:, 4, 4].abs().sum() == 0  # two pixels off the bone: farther than 1
    assert bone0[:, 2, 1].abs().sum() == 0  # one pixel beyond the end: not closer than 1
    bone1 = out[0, 2:4]  # 1 -> 2 runs back along the same segment, feature order swapped
    torch.testing.assert_close(bone1[:, 2, 3], torch.tensor([0.75, 0.25]), atol=1e-5, rtol=0)
    assert out[0, 4:].abs().sum() == 0  # zero-length bones paint nothing, and no NaN
    assert torch.isfinite(out).all()


def test_bone_projection_distance_widens_the_band():
    size = 8
    uv, feats = one_bone(size)
    out = bone_projection(uv, feats, pixel_centres(size), size, distance=2.0)
    bone0 = out[0, 0:2]
    # one pixel beyond keypoint 0: |p - a| = 1, |p - b| = 5 -> w_a = 5/6
    torch.testing.assert_close(bone0[:, 2, 1], torch.tensor([5 / 6, 1 / 6]), atol=1e-5, rtol=0)
    torch.testing.assert_close(bone0[:, 3, 4], torch.tensor([0.5, 0.5]), atol=1e-5, rtol=0)
    assert bone0[:, 4, 4].abs().sum() == 0


def test_bone_tables_are_the_skeleton():
    assert len(BONE_PARENTS) == len(BONE_CHILDREN) == 20
    adj = skeleton_adjacency()
    assert all(adj[a, b] == 1 for a, b in zip(BONE_PARENTS, BONE_CHILDREN, strict=True))


# --- the hand layer ---------------------------------------------------------------------------


@pytest.mark.parametrize("root", [0, 9])
def test_hand_layer_agrees_with_the_project_hand_layer(models, root):
    hands, layer = DIRHands(models, root), HandLayer(models)
    params = 0.5 * torch.randn(3, 64, generator=torch.Generator().manual_seed(3))
    for side in ("left", "right"):
        posed = hands(side, params)
        orient = matrix_to_axis_angle(rot6d_robust_to_matrix(params[:, :6]))
        pose = finger_axis_angles(
            params, hands.buffer(side, "components"), hands.buffer(side, "mean")
        )
        ref = layer(side, orient, pose, params[:, 51:61])
        centre = ref.keypoints[:, root : root + 1]
        torch.testing.assert_close(posed.joints, ref.keypoints - centre, atol=1e-5, rtol=0)
        torch.testing.assert_close(posed.vertices, ref.vertices - centre, atol=1e-5, rtol=0)
        assert posed.joints[:, root].abs().max() < 1e-6
        s, t = params[:, 61:62, None], params[:, None, 62:64]
        torch.testing.assert_close(posed.joints_uv, s * posed.joints[..., :2] + t)


def test_hand_layer_pose_zero_is_the_mean_pose(models):
    hands = DIRHands(models)
    params = torch.zeros(1, 64)
    params[0, 0], params[0, 4] = 1.0, 1.0  # identity root in the symmetric 6D
    pose = finger_axis_angles(
        params, hands.buffer("right", "components"), hands.buffer("right", "mean")
    )
    torch.testing.assert_close(pose.reshape(1, 45), hands.buffer("right", "mean")[None])
    torch.testing.assert_close(rot6d_robust_to_matrix(params[:, :6])[0], torch.eye(3))


def test_hand_layer_rejects_a_bad_root(models):
    with pytest.raises(ValueError, match="root_joint"):
        DIRHands(models, 21)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(models):
    model = tiny(models).eval()
    x = images(2)
    with torch.no_grad():
        cpu = model(x).final
        gpu = model.cuda()(x.cuda()).final
    for side in ("left", "right"):
        torch.testing.assert_close(gpu.hands[side].joints.cpu(), cpu.hands[side].joints,
                                   atol=1e-4, rtol=0)  # fmt: skip
        torch.testing.assert_close(gpu.params[side].cpu(), cpu.params[side], atol=1e-4, rtol=0)
