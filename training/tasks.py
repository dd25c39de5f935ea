"""What differs between training ACR and training DIR, behind one small interface.

A ``Task`` knows its network's input (ACR: [-1, 1]; DIR: ImageNet-normalised), the extra
targets its losses need (ACR's centre maps), its losses, and how to turn its output into
evaluation predictions: per side, root-relative keypoints and vertices (metres) and whether the
hand was found. The trainer and the evaluation call only this interface.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from handmocap.core.handmodel import HandLayer
from handmocap.training.config import Config
from handmocap.training.sample import SIDES


@dataclass
class Predictions:
    """One batch's answers (numpy), sides left then right."""

    keypoints: np.ndarray  # (B, 2, 21, 3) metres, camera orientation, left root at the origin
    vertices: np.ndarray  # (B, 2, V, 3) or (B, 2, 0, 3) when the sides' models differ in size
    found: np.ndarray  # (B, 2) bool
    keypoints_2d: np.ndarray | None = None  # (B, 2, 21, 2) pixels of the network's input image


class Task:
    network: str
    model: nn.Module
    loss: nn.Module

    def inputs(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def add_targets(self, sample: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return sample

    def losses(self, output, batch, epoch: int) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def predictions(self, output, batch) -> Predictions:
        raise NotImplementedError


class ACRTask(Task):
    network = "acr"

    def __init__(self, model, hand_layer: HandLayer, loss_options: dict, threshold: float = 0.25):
        from handmocap.training.losses.acr import ACRLoss, ACRLossWeights

        self.model = model
        self.layer = hand_layer
        options = dict(loss_options)
        seg_epochs = int(options.pop("seg_epochs", 2))
        self.loss = ACRLoss(hand_layer, ACRLossWeights(**options), seg_epochs)
        self.threshold = threshold  # the paper's test threshold (section 4)

    def inputs(self, batch):
        from handmocap.core.acr.preprocess import to_network_input

        return to_network_input(batch["image"])

    def add_targets(self, sample):
        from handmocap.training.targets import center_heatmaps

        size = sample["image"].shape[0]
        out = dict(sample)
        maps = center_heatmaps(sample["joints2d"], sample["hand_valid"], size, size // 8)
        out["center_maps"] = maps  # the network's maps are 1/8 of its input
        return out

    def losses(self, output, batch, epoch):
        return self.loss(output, batch, epoch)

    @torch.no_grad()
    def predictions(self, output, batch) -> Predictions:
        from handmocap.core.acr.parse import parse_maps
        from handmocap.training.losses.acr import ROOT, weak_perspective_uv

        parsed = parse_maps({k: v.float() for k, v in output.items()}, self.threshold)
        size = batch["image"].shape[1]
        keypoints, vertices, found, roots, uv = [], [], [], [], []
        for side in SIDES:
            hands = parsed[side]
            mean = getattr(self.loss, f"mean_{side}")
            posed = self.layer(side, hands.global_orient, hands.absolute_pose(mean), hands.betas)
            keypoints.append(posed.keypoints)
            vertices.append(posed.vertices)
            found.append(hands.detected)
            roots.append(weak_perspective_root(hands.camera, batch["camera"].float(), size))
            uv.append(weak_perspective_uv(posed.keypoints, hands.camera))
        pred = _predictions(keypoints, vertices, found, roots[1] - roots[0], ROOT)
        pred.keypoints_2d = _pixels(uv, size)
        return pred


class DIRTask(Task):
    network = "dir"

    def __init__(self, model, hand_layer: HandLayer, loss_options: dict):
        from handmocap.training.losses.dir import DIRLoss, DIRLossWeights

        self.model = model
        self.layer = hand_layer
        root = model.hands.root_joint
        self.loss = DIRLoss(hand_layer, DIRLossWeights(**loss_options), root_joint=root)

    def inputs(self, batch):
        from handmocap.core.dir.crop import to_network_input

        return to_network_input(batch["image"])

    def losses(self, output, batch, epoch):
        return self.loss(output, batch)

    @torch.no_grad()
    def predictions(self, output, batch) -> Predictions:
        final = output.final
        b = len(final.offset)
        keypoints = [final.hands[s].joints.float() for s in SIDES]
        vertices = [final.hands[s].vertices.float() for s in SIDES]
        found = [torch.ones(b, dtype=torch.bool)] * 2  # DIR's crop always holds both hands
        # the offset joins the hands' roots (the network's root keypoint)
        root = self.model.hands.root_joint
        pred = _predictions(keypoints, vertices, found, final.offset_metres.float(), root)
        pred.keypoints_2d = _pixels(
            [final.hands[s].joints_uv for s in SIDES], batch["image"].shape[1]
        )
        return pred


def _pixels(uv: list[torch.Tensor], size: int) -> np.ndarray:
    """Per side (B, 21, 2) in [-1, 1] -> (B, 2, 21, 2) pixels of a ``size`` image (continuous
    coordinates: -1 and 1 are the image's edges, as ``joints2d``)."""
    return ((torch.stack([u.float() for u in uv], 1) + 1) * size / 2).cpu().numpy()


def weak_perspective_root(camera: torch.Tensor, k: torch.Tensor, size: int) -> torch.Tensor:
    """(B, 3) ``s, tx, ty`` (input normalised to [-1, 1]), (B, 3, 3) K -> (B, 3) root, metres.

    As ``core.backends.acr`` places a hand: the root (middle knuckle) at depth
    ``f / (size / 2 * s)``, where the camera's projection of it lands on ``(tx, ty)``.
    """
    s = camera[:, 0].clamp(min=1e-6)
    focal, principal = k[:, 0, 0], k[:, :2, 2]
    depth = focal / (size / 2 * s)
    pixel = (camera[:, 1:] + 1) * size / 2  # the root's pixel
    xy = (pixel - principal) / focal[:, None] * depth[:, None]
    return torch.cat([xy, depth[:, None]], 1)


def _predictions(keypoints, vertices, found, right_from_left, root: int) -> Predictions:
    """Both sides in one frame: each hand's ``root`` keypoint moved to the origin, then the
    right hand moved by the network's right-from-left root offset."""
    move = [torch.zeros_like(right_from_left), right_from_left]
    centre = [k[:, root : root + 1] for k in keypoints]
    kp = [keypoints[i] - centre[i] + move[i][:, None] for i in range(2)]
    verts = [vertices[i] - centre[i] + move[i][:, None] for i in range(2)]
    kp = torch.stack(kp, 1).cpu().numpy()
    if verts[0].shape == verts[1].shape:
        verts = torch.stack(verts, 1).cpu().numpy()
    else:
        verts = np.zeros((len(kp), 2, 0, 3), np.float32)
    found = torch.stack([f.cpu() for f in found], 1).numpy()
    return Predictions(keypoints=kp, vertices=verts, found=found)


def build_model(config: Config, hand_models) -> nn.Module:
    """The network the config describes, freshly initialised."""
    network_config = config.model.network_config()
    if config.model.network == "acr":
        from handmocap.core.acr.model import ACR

        model = ACR.from_config(network_config)
        start_centre_maps_low(model)
        return model
    from handmocap.core.dir.model import DIR

    return DIR(network_config, hand_models)


def start_centre_maps_low(model: nn.Module, level: float = 0.01) -> None:
    """Make a fresh ACR's centre maps start near ``level`` everywhere (CenterNet's prior).

    Its centre maps are probabilities without a sigmoid: from a default initialisation they
    start anywhere in about [-1, 1], and every cell above 1 costs the focal loss ~9, so the
    first steps would be spent (with huge gradients) only on pulling the maps down.
    """
    for side in SIDES:
        last = getattr(model, side).center[-1]
        nn.init.normal_(last.weight, std=1e-3)
        nn.init.constant_(last.bias, level)


def build_task(config: Config, model: nn.Module, hand_layer: HandLayer) -> Task:
    options = dict(config.loss)
    if config.model.network == "acr":
        return ACRTask(model, hand_layer, options)
    options.pop("seg_epochs", None)
    return DIRTask(model, hand_layer, options)


def input_size(config: Config) -> int:
    return int(config.model.network_config().input_size)
