"""DIR's losses as its official code defines them (``models/dir.py``, ``models/loss.py``,
``models/lovasz_loss.py``), with masks for missing labels.

Per output stage (``init``, ``stage1``, ``stage2``), summed over both hands; ``sl1`` is the
official SmoothL1, ``0.5 z^2`` if ``|z| < 0.01`` else ``0.01 (|z| - 0.005)``, a mean over the
elements (= ``F.huber_loss`` with ``delta=0.01``):

- ``joint_uv`` (x10): sl1 of the 21 joints' uv (crop coordinates in [-1, 1]);
- ``mesh_uv`` (x10): sl1 of the vertices' uv (ground truth: the fit's vertices projected by K);
- ``joint_xyz`` (x10), ``mesh_xyz`` (x10): sl1 of root-relative joints and vertices / 0.15 m;
- ``edge`` (x1): mean ``|edge length - ground truth's|`` of the three edges of every face, on
  the meshes / 0.15 (plain L1, not sl1);
- ``normal`` (x0.1): mean ``|cos|`` between each predicted face edge and the ground-truth face
  normal, on the meshes / 0.15;
- ``offset`` (x10): sl1 of the right root minus the left root, in units of 0.15 m.

On the dense heads (their resolution, 32x32 for a 256 input):

- ``seg_ce`` (x0.1): cross-entropy over background / left / right with class weights
  (0.1, 0.45, 0.45) against ``sample.hand_masks(part_seg)`` downsampled (nearest);
- ``seg_lovasz`` (x0.1): Lovasz-softmax (Berman et al. 2018) over the classes present;
- ``dense`` (x1): sl1 of the dense map against the sample's, scaled to [0, 1] and downsampled
  (bilinear), background included, as officially.

Differences from the official code:

- Root: the official targets are centred at keypoint 9 (``center_left = handJ_left[9:10]``)
  whatever the network's ``root_joint``, which contradicts the released network (root 0, the
  wrist: its wrist is at the origin, the target's knuckle is). Here the targets are centred at
  ``root_joint`` (the network's), which is the official definition for ``root_joint=9``; the
  offset likewise joins the two ``root_joint`` keypoints.
- Lovasz-softmax: the official call passes the raw logits where the function expects
  probabilities; here the logits go through a softmax (``lovasz_on_logits=True``: official).
- Masks: the official data always has both hands and every label. Here each term counts only
  the labelled entries: joint uv by ``hand_valid`` and the per-joint weights
  ``joints2d[..., 2]`` (a mean over the labelled joints of the batch), joint xyz by
  ``joints3d_valid``, the mesh terms by ``params_valid``, the offset by both hands'
  ``joints3d_valid``, seg by ``seg_valid``, dense by ``dense_valid``. A term without any
  labelled entry is 0 (with a gradient). With everything labelled the means are the official.
- Ground truth: 2D joints are the labelled ones (officially: the fit's joints projected).
- Names: one term per stage summed over the hands (officially logged per hand; same total).

Everything is computed in float32, also under autocast. A term whose weight is 0 is left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from handmocap.core.dir.hands import OFFSET_UNIT, PosedHands
from handmocap.core.dir.model import DIROutput, DIRStage
from handmocap.core.handmodel import HandLayer
from handmocap.training.losses.common import weighted_mean
from handmocap.training.sample import LEFT_PART_OFFSET, RIGHT_PART_OFFSET, SIDES

SMOOTH_L1_BETA = 0.01
SEG_CLASS_WEIGHTS = (0.1, 0.45, 0.45)  # background, left, right


@dataclass(frozen=True)
class DIRLossWeights:
    """The official weights (``coord_weight`` 10, ``dense_weight`` 1)."""

    joint_uv: float = 10.0
    mesh_uv: float = 10.0
    joint_xyz: float = 10.0
    mesh_xyz: float = 10.0
    edge: float = 1.0
    normal: float = 0.1
    offset: float = 10.0
    seg_ce: float = 0.1
    seg_lovasz: float = 0.1
    dense: float = 1.0


@dataclass
class DIRTargets:
    """A batch's ground truth in the network's terms; per side where per hand (B batch, V
    vertices, h x w the dense heads' size). Invalid entries hold zeros."""

    joints_uv: dict[str, torch.Tensor]  # (B, 21, 2) in [-1, 1]
    joints_uv_weight: dict[str, torch.Tensor]  # (B, 21)
    vertices_uv: dict[str, torch.Tensor]  # (B, V, 2)
    joints: dict[str, torch.Tensor]  # (B, 21, 3) metres, keypoint root_joint at the origin
    joints_valid: dict[str, torch.Tensor]  # (B,)
    vertices: dict[str, torch.Tensor]  # (B, V, 3) metres, the fit's root_joint at the origin
    mesh_valid: dict[str, torch.Tensor]  # (B,)
    offset: torch.Tensor  # (B, 3) right root minus left root, units of 0.15 m
    offset_valid: torch.Tensor  # (B,)
    seg: torch.Tensor  # (B, h, w) int64: 0 background, 1 left, 2 right
    seg_valid: torch.Tensor  # (B,)
    dense: torch.Tensor  # (B, 3, h, w) in [0, 1]
    dense_valid: torch.Tensor  # (B,)


def smooth_l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Elementwise official SmoothL1: ``0.5 z^2`` if ``|z| < 0.01`` else ``0.01 (|z| - 0.005)``
    (a Huber loss with delta 0.01; torch's ``smooth_l1_loss`` divides by beta, this does not)."""
    return F.huber_loss(pred, target, reduction="none", delta=SMOOTH_L1_BETA)


def _face_edges(vertices: torch.Tensor, faces: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """(B, V, 3), (F, 3) -> the edges 0->1, 0->2, 1->2 of every face, each (B, F, 3)."""
    a, b, c = (vertices[:, faces[:, i]] for i in range(3))
    return b - a, c - a, c - b


def edge_length_loss(pred: torch.Tensor, gt: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(B, V, 3) meshes -> (B,) mean |length difference| over the 3 edges of every face."""
    length = lambda e: torch.sqrt((e**2).sum(-1) + 1e-12)  # noqa: E731  (eps as officially)
    pairs = zip(_face_edges(pred, faces), _face_edges(gt, faces), strict=True)
    return torch.cat([(length(p) - length(g)).abs() for p, g in pairs], 1).mean(1)


def normal_loss(pred: torch.Tensor, gt: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(B, V, 3) meshes -> (B,) mean |cos| between the predicted faces' three edges and the
    ground-truth faces' normals (0 when every predicted face lies in the true face's plane)."""
    gt_normal = F.normalize(torch.cross(*_face_edges(gt, faces)[:2], dim=-1), dim=-1)
    cosines = [(F.normalize(e, dim=-1) * gt_normal).sum(-1).abs() for e in _face_edges(pred, faces)]
    return torch.cat(cosines, 1).mean(1)


def lovasz_grad(fg_sorted: torch.Tensor) -> torch.Tensor:
    """(P, C) 0/1 ground truth sorted by decreasing error -> (P, C) the gradient of the Lovasz
    extension of the Jaccard loss (Berman et al. 2018, algorithm 1), per column."""
    total = fg_sorted.sum(0, keepdim=True)
    intersection = total - fg_sorted.cumsum(0)
    union = total + (1 - fg_sorted).cumsum(0)
    jaccard = 1 - intersection / union  # union >= 1 from the first row on
    return torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]], 0)


def lovasz_softmax(probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(P, C) class probabilities, (P,) int labels -> the Lovasz-softmax loss averaged over the
    classes present in ``labels`` (0 with a gradient when there are no pixels).

    For one-hot ``probs`` it is the mean over those classes of ``1 - IoU``.
    """
    fg = F.one_hot(labels, probs.shape[1]).to(probs.dtype)
    errors = (fg - probs).abs()
    errors_sorted, order = torch.sort(errors, 0, descending=True)
    per_class = (errors_sorted * lovasz_grad(fg.gather(0, order))).sum(0)  # (C,)
    present = (fg.sum(0) > 0).to(probs.dtype)
    return (per_class * present).sum() / present.sum().clamp(min=1)


def hand_classes(part_seg: torch.Tensor) -> torch.Tensor:
    """(...) part classes -> (...) int64 DIR classes: 0 background, 1 left, 2 right
    (``sample.hand_masks`` on tensors)."""
    right = (part_seg >= RIGHT_PART_OFFSET) & (part_seg < LEFT_PART_OFFSET)
    left = part_seg >= LEFT_PART_OFFSET
    return 2 * right.long() + left.long()


def project(points: torch.Tensor, camera: torch.Tensor, size: int) -> torch.Tensor:
    """(B, N, 3) camera-frame points, (B, 3, 3) K in pixels of a ``size`` px image -> (B, N, 2)
    in [-1, 1] over the image (as the official ``uv / img_size * 2 - 1``)."""
    p = points @ camera.transpose(1, 2)
    return p[..., :2] / p[..., 2:].clamp(min=1e-6) / size * 2 - 1


class DIRLoss(nn.Module):
    """Named, weighted DIR loss terms: ``forward(output, batch) -> {"init/joint_uv": ...,
    "stage2/normal": ..., "seg_ce": ..., "seg_lovasz": ..., "dense": ...}``.

    ``hand_layer`` poses the ground-truth meshes from the samples' parameters and gives the
    faces for the edge and normal terms; it must be the hand model the network's ``DIRHands``
    uses. ``root_joint`` must be the network's (``DIRConfig.root_joint``).
    """

    def __init__(
        self,
        hand_layer: HandLayer,
        weights: DIRLossWeights | None = None,
        root_joint: int = 0,
        lovasz_on_logits: bool = False,
    ):
        super().__init__()
        if not 0 <= root_joint < 21:
            raise ValueError(f"root_joint must be a keypoint index 0..20, got {root_joint}")
        self.layer = hand_layer
        self.weights = weights or DIRLossWeights()
        self.root_joint = root_joint
        self.lovasz_on_logits = lovasz_on_logits
        for side in SIDES:
            faces = torch.as_tensor(hand_layer.faces(side).astype("int64"))
            self.register_buffer(f"faces_{side}", faces, persistent=False)
        self.register_buffer("class_weights", torch.tensor(SEG_CLASS_WEIGHTS), persistent=False)

    def forward(self, output: DIROutput, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        with torch.autocast(output.seg.device.type, enabled=False):
            targets = self.targets(batch, tuple(output.seg.shape[-2:]))
            losses = {}
            for name, stage in output.stages.items():
                for term, value in self.stage_terms(stage, targets).items():
                    losses[f"{name}/{term}"] = value
            losses.update(self.dense_terms(output.seg, output.dense, targets))
        return losses

    @torch.no_grad()
    def targets(self, batch: dict[str, torch.Tensor], map_size: tuple[int, int]) -> DIRTargets:
        """The batch's ground truth in the network's terms, dense maps at ``map_size``."""
        f = lambda key: batch[key].float()  # noqa: E731
        size = batch["image"].shape[1]  # (B, S, S, 3); joints2d and K are in its pixels
        r = self.root_joint
        out: dict[str, dict[str, torch.Tensor]] = {k: {} for k in (
            "joints_uv", "joints_uv_weight", "vertices_uv", "joints", "joints_valid",
            "vertices", "mesh_valid")}  # fmt: skip
        roots = []
        for k, side in enumerate(SIDES):
            present = f("hand_valid")[:, k]
            weight = torch.where(present[:, None] > 0, f("joints2d")[:, k, :, 2], 0)
            out["joints_uv_weight"][side] = weight
            uv = f("joints2d")[:, k, :, :2] / size * 2 - 1
            out["joints_uv"][side] = torch.where(weight[..., None] > 0, uv, 0)
            valid = f("joints3d_valid")[:, k] * present
            joints = f("joints3d")[:, k]
            roots.append(joints[:, r])
            out["joints"][side] = torch.where(
                valid[:, None, None] > 0, joints - joints[:, r : r + 1], 0
            )
            out["joints_valid"][side] = valid
            valid = f("params_valid")[:, k] * present
            hand = self.layer(side, f("global_orient")[:, k], f("hand_pose")[:, k],
                              f("betas")[:, k], f("transl")[:, k])  # fmt: skip
            keep = valid.view(-1, 1, 1) > 0
            vertices = hand.vertices - hand.keypoints[:, r : r + 1]
            out["vertices"][side] = torch.where(keep, vertices, 0)
            uv = project(hand.vertices, f("camera"), size)
            out["vertices_uv"][side] = torch.where(keep, uv, 0)
            out["mesh_valid"][side] = valid
        offset_valid = out["joints_valid"]["left"] * out["joints_valid"]["right"]
        offset = torch.where(offset_valid[:, None] > 0, (roots[1] - roots[0]) / OFFSET_UNIT, 0)

        seg = F.interpolate(batch["part_seg"][:, None].float(), size=map_size, mode="nearest")
        dense = batch["dense"].permute(0, 3, 1, 2).float() / 255
        dense = F.interpolate(dense, size=map_size, mode="bilinear", align_corners=False)
        return DIRTargets(**out, offset=offset, offset_valid=offset_valid,
                          seg=hand_classes(seg[:, 0].round().long()), seg_valid=f("seg_valid"),
                          dense=dense, dense_valid=f("dense_valid"))  # fmt: skip

    def stage_terms(self, stage: DIRStage, t: DIRTargets) -> dict[str, torch.Tensor]:
        """One stage's weighted terms, each summed over both hands."""
        sums: dict[str, torch.Tensor] = {}
        for side in SIDES:
            for name, value in self.hand_terms(stage.hands[side], side, t).items():
                sums[name] = sums[name] + value if name in sums else value
        if self.weights.offset:
            sums["offset"] = weighted_mean(
                smooth_l1(stage.offset.float(), t.offset), t.offset_valid[:, None]
            )
        return {name: getattr(self.weights, name) * value for name, value in sums.items()}

    def hand_terms(self, hand: PosedHands, side: str, t: DIRTargets) -> dict[str, torch.Tensor]:
        """One hand's unweighted terms (those of non-zero weight)."""
        w, terms = self.weights, {}
        faces = getattr(self, f"faces_{side}")
        mesh, gt_mesh = hand.vertices.float() / OFFSET_UNIT, t.vertices[side] / OFFSET_UNIT
        mesh_valid = t.mesh_valid[side]
        if w.joint_uv:
            loss = smooth_l1(hand.joints_uv.float(), t.joints_uv[side])
            terms["joint_uv"] = weighted_mean(loss, t.joints_uv_weight[side][..., None])
        if w.mesh_uv:
            loss = smooth_l1(hand.vertices_uv.float(), t.vertices_uv[side])
            terms["mesh_uv"] = weighted_mean(loss, mesh_valid[:, None, None])
        if w.joint_xyz:
            loss = smooth_l1(hand.joints.float() / OFFSET_UNIT, t.joints[side] / OFFSET_UNIT)
            terms["joint_xyz"] = weighted_mean(loss, t.joints_valid[side][:, None, None])
        if w.mesh_xyz:
            terms["mesh_xyz"] = weighted_mean(smooth_l1(mesh, gt_mesh), mesh_valid[:, None, None])
        if w.edge:
            terms["edge"] = weighted_mean(edge_length_loss(mesh, gt_mesh, faces), mesh_valid)
        if w.normal:
            terms["normal"] = weighted_mean(normal_loss(mesh, gt_mesh, faces), mesh_valid)
        return terms

    def dense_terms(self, seg: torch.Tensor, dense: torch.Tensor, t: DIRTargets):
        """The weighted segmentation and dense terms over the images that have the labels."""
        w, losses = self.weights, {}
        seg = seg.float()
        if w.seg_ce:
            ce = F.cross_entropy(seg, t.seg, reduction="none")  # (B, h, w)
            pixel_weight = self.class_weights[t.seg] * t.seg_valid[:, None, None]
            losses["seg_ce"] = w.seg_ce * weighted_mean(ce, pixel_weight)
        if w.seg_lovasz:
            scores = seg if self.lovasz_on_logits else seg.softmax(1)
            keep = t.seg_valid > 0
            flat = scores[keep].permute(0, 2, 3, 1).reshape(-1, scores.shape[1])
            losses["seg_lovasz"] = w.seg_lovasz * lovasz_softmax(flat, t.seg[keep].reshape(-1))
        if w.dense:
            losses["dense"] = w.dense * weighted_mean(
                smooth_l1(dense.float(), t.dense), t.dense_valid[:, None, None, None]
            )
        return losses
