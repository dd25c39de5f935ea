"""ACR's losses (paper section 3.5) with the paper's weights.

Total = L_mesh + w_c L_c + w_p L_seg, for each hand that has the label (paper: "each part is
activated only when the corresponding ground truth is available"):

- ``center`` (w_c = 80): the focal loss of CenterNet (alpha 2, beta 4) between each side's
  centre map and the Gaussian target of ``training.targets``. The network's centre map is
  raw (the official parser thresholds it at 0.35 without a sigmoid), so the loss reads it as a
  probability clamped into (1e-4, 1 - 1e-4) with a straight-through gradient: the value is
  clamped, the gradient is not, so a map that starts outside [0, 1] still learns.
- ``seg`` (w_p = 160): cross-entropy over the 33 part classes at the segmentation's resolution,
  only in the first ``seg_epochs`` epochs (paper: the first 2).
- ``pose`` (80) and ``shape`` (10): L2 on the parameters read at the hand's ground-truth centre
  (ROMP-style: a prediction is matched to its label by the label's centre cell; the cross-hand
  prior is added as the parser does). Rotations are compared as rotation matrices (the L2 of
  the 6D numbers would depend on the 6D's scale); finger rotations relative to the model's mean
  pose, as the network predicts them.
- ``joints3d`` (200) and ``pa_joints3d`` (360): mean joint distance in metres after aligning
  both at the middle knuckle, and after Procrustes alignment.
- ``joints2d`` (400): L2 between the labelled 2D joints (normalised to [-1, 1]) and the weak
  perspective projection ``s * (x - x_root) + t`` of the predicted joints (root = middle knuckle,
  as ``core.backends.acr`` places hands).
- ``bone`` (200): L2 between predicted and labelled bone lengths (metres).

Every term is a mean over the labelled entries of the batch (0 with a gradient when there are
none), computed in fp32.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from handmocap.core.acr.parse import decode, params_at
from handmocap.core.handmodel import HandLayer
from handmocap.core.joints import KEYPOINT_PARENTS
from handmocap.core.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from handmocap.training.losses.common import global_total
from handmocap.training.losses.common import weighted_mean as masked_mean
from handmocap.training.sample import SIDES

ROOT = 9  # middle knuckle, project keypoint order
BONES = torch.tensor([(c, p) for c, p in enumerate(KEYPOINT_PARENTS) if p >= 0])


@dataclass(frozen=True)
class ACRLossWeights:
    """The paper's weights (section 3.5)."""

    center: float = 80.0
    seg: float = 160.0
    pose: float = 80.0
    shape: float = 10.0
    joints3d: float = 200.0
    pa_joints3d: float = 360.0
    joints2d: float = 400.0
    bone: float = 200.0


def focal_loss(raw: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """CenterNet's focal loss: (B, h, w) raw maps, Gaussian targets, (B,) image mask -> scalar.

    Normalised by the number of peaks (cells where the target is 1) among the masked images.
    """
    eps = 1e-4
    p = raw + (raw.clamp(eps, 1 - eps) - raw).detach()  # straight-through clamp
    positive = (target >= 1 - 1e-6).to(raw.dtype)
    pos = -torch.log(p) * (1 - p) ** 2 * positive
    neg = -torch.log(1 - p) * p**2 * (1 - target) ** 4 * (1 - positive)
    m = mask.to(raw.dtype)[:, None, None]
    return ((pos + neg) * m).sum() / global_total((positive * m).sum()).clamp(min=1.0)


def procrustes_align(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """(B, N, 3) each -> (B, N, 3) ``pred`` moved onto ``gt`` by the best similarity transform.

    Differentiable (SVD); a proper rotation (no reflection).
    """
    mu_p, mu_g = pred.mean(1, keepdim=True), gt.mean(1, keepdim=True)
    p, g = pred - mu_p, gt - mu_g
    cov = p.transpose(1, 2) @ g  # (B, 3, 3)
    u, s, vh = torch.linalg.svd(cov)
    d = torch.sign(torch.det(u @ vh))
    fix = torch.ones_like(s)
    fix[:, -1] = d
    rotation = u @ torch.diag_embed(fix) @ vh  # applied on the right: p @ rotation
    scale = (s * fix).sum(1) / (p**2).sum((1, 2)).clamp(min=1e-12)
    return scale[:, None, None] * p @ rotation + mu_g


def weak_perspective_uv(keypoints: torch.Tensor, camera: torch.Tensor) -> torch.Tensor:
    """(B, 21, 3) metres, (B, 3) ``s, tx, ty`` -> (B, 21, 2) in [-1, 1] of the input image:
    ``s * (x - x_root) + t`` with the root at ``ROOT``, where ``core.backends.acr`` puts hands."""
    relative = keypoints[..., :2] - keypoints[:, ROOT : ROOT + 1, :2]
    return camera[:, None, :1] * relative + camera[:, None, 1:]


def labelled_centers(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Each side's labelled centre: (B, 2) flat cell of the centre map's peak, and (B, 2) bool
    where the hand is labelled and its map has a peak."""
    peak, cells = batch["center_maps"].float().flatten(2).max(-1)
    return cells, (peak >= 1 - 1e-6) & (batch["hand_valid"] > 0)


def read_at_centers(maps: dict[str, torch.Tensor], cells: torch.Tensor, present: torch.Tensor):
    """The network's parameters at the labelled centres, the cross-hand prior added as the
    parser adds it. ``cells`` (B, 2) flat indices of the label's centre per side, ``present``
    (B, 2) bool. Returns ``{side: ParsedHands}`` as ``core.acr.parse`` decodes them.
    """
    index = {side: cells[:, k] for k, side in enumerate(SIDES)}
    params, yx = params_at(maps, index, present.all(1))
    return {
        side: decode(params[side], present[:, k], params[side].new_zeros(len(cells)), yx[side])
        for k, side in enumerate(SIDES)
    }


class ACRLoss(nn.Module):
    """Named, weighted ACR loss terms for a batch: ``forward(maps, batch, epoch) -> dict``."""

    def __init__(
        self, hand_layer: HandLayer, weights: ACRLossWeights | None = None, seg_epochs: int = 2
    ):
        super().__init__()
        self.layer = hand_layer
        self.weights = weights or ACRLossWeights()
        self.seg_epochs = seg_epochs
        for side in SIDES:
            mean = np.asarray(hand_layer.models[side].arrays["hands_mean"], np.float32)
            self.register_buffer(f"mean_{side}", torch.from_numpy(mean.reshape(15, 3)), False)

    def forward(
        self, maps: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], epoch: int = 0
    ) -> dict[str, torch.Tensor]:
        w = self.weights
        maps = {k: v.float() for k, v in maps.items()}
        targets = batch["center_maps"].float()  # (B, 2, h, w)
        cells, present = labelled_centers(batch)
        losses = {
            "center": w.center
            * sum(
                focal_loss(maps[f"{s}_center"][:, 0], targets[:, k], batch["hand_valid"][:, k] > 0)
                for k, s in enumerate(SIDES)
            )
        }
        if epoch < self.seg_epochs:
            losses["seg"] = w.seg * self.seg_loss(maps["segm_logits"], batch)
        hands = read_at_centers(maps, cells, present)
        terms: dict[str, list[torch.Tensor]] = {}
        for k, side in enumerate(SIDES):
            for name, value in self.hand_terms(side, hands[side], batch, k, present[:, k]).items():
                terms.setdefault(name, []).append(value)
        for name, values in terms.items():
            losses[name] = getattr(w, name) * sum(values)
        return losses

    def seg_loss(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Cross-entropy at the logits' resolution; images without a segmentation count 0."""
        target = batch["part_seg"][:, None].float()
        target = F.interpolate(target, size=logits.shape[-2:], mode="nearest")[:, 0].long()
        ce = F.cross_entropy(logits.float(), target, reduction="none")  # (B, h, w)
        return masked_mean(ce, batch["seg_valid"][:, None, None] > 0)

    def hand_terms(self, side, hand, batch, k: int, present) -> dict[str, torch.Tensor]:
        """One side's mesh-recovery terms (unweighted) over the batch."""
        params_ok = present & (batch["params_valid"][:, k] > 0)
        # Unlabelled entries may hold anything, NaN included: a masked NaN would still turn
        # the gradient into NaN (0 * NaN), so labels are blanked where they are not used.
        blank = lambda x, ok: torch.where(ok.reshape(-1, *[1] * (x.dim() - 1)), x.float(), 0.0)  # noqa: E731
        gt_orient = axis_angle_to_matrix(blank(batch["global_orient"][:, k], params_ok))
        mean = getattr(self, f"mean_{side}")
        gt_fingers = axis_angle_to_matrix(blank(batch["hand_pose"][:, k], params_ok) - mean)
        gt_rot = torch.cat([gt_orient[:, None], gt_fingers], 1)
        pose = ((hand.rotations - gt_rot) ** 2).mean((1, 2, 3))
        shape = ((hand.betas - blank(batch["betas"][:, k], params_ok)) ** 2).mean(1)

        fingers = matrix_to_axis_angle(hand.rotations[:, 1:]) + mean
        posed = self.layer(side, matrix_to_axis_angle(hand.rotations[:, 0]), fingers, hand.betas)
        kp = posed.keypoints - posed.keypoints[:, ROOT : ROOT + 1]
        ok3d = present & (batch["joints3d_valid"][:, k] > 0)
        gt3d = blank(batch["joints3d"][:, k], ok3d)
        gt3d = gt3d - gt3d[:, ROOT : ROOT + 1]
        joints3d = (kp - gt3d).norm(dim=-1).mean(1)
        fit = torch.where(ok3d[:, None, None], kp, gt3d)  # the SVD sees finite input only
        pa = (procrustes_align(fit, gt3d) - gt3d).norm(dim=-1).mean(1)
        bones = BONES.to(kp.device)
        length = lambda j: (j[:, bones[:, 0]] - j[:, bones[:, 1]]).norm(dim=-1)  # noqa: E731
        bone = ((length(kp) - length(gt3d)) ** 2).mean(1)

        size = batch["image"].shape[1]  # (B, S, S, 3)
        gt2d = blank(batch["joints2d"][:, k], present)
        gt2d = torch.where(torch.isfinite(gt2d), gt2d, 0.0)
        uv = gt2d[..., :2] / size * 2 - 1
        projected = weak_perspective_uv(kp, hand.camera)
        ok2d = (gt2d[..., 2] > 0) & present[:, None]
        joints2d = ((projected - uv) ** 2).sum(-1)
        return {
            "pose": masked_mean(pose, params_ok),
            "shape": masked_mean(shape, params_ok),
            "joints3d": masked_mean(joints3d, ok3d),
            "pa_joints3d": masked_mean(pa, ok3d),
            "bone": masked_mean(bone, ok3d),
            "joints2d": masked_mean(joints2d, ok2d),
        }
