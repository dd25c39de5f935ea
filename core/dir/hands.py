"""DIR's hand layer: 64 numbers per hand -> root-relative joints and vertices (metres).

DIR regresses, per hand, ``[root 6D (6) | PCA finger pose (45) | betas (10) | s, tx, ty (3)]``
and poses MANO as its vendored manopth does (``ManoLayer(root_rot_mode='6D', use_pca=True,
ncomps=45, flat_hand_mean=False, robust_rot=True)``):

- root rotation: the symmetric ("robust") 6D, ``rotations.rot6d_robust_to_matrix``;
- finger pose: the model's mean pose plus the 45 coefficients times all 45 PCA components,
  axis-angle per joint;
- linear blend skinning of the configured hand model (``smplx.lbs`` with rotation matrices);
- the 21 keypoints in the project (= manopth) order, the 5 fingertips being the model's own
  fingertip vertices, everything moved so that keypoint ``root_joint`` is at the origin
  (0, the wrist, for the released weights; 9, the middle knuckle, before commit 329e381);
- 2D: ``uv = s * xyz[..., :2] + (tx, ty)``, the crop's normalised coordinates in [-1, 1].

The model data (real MANO or the open hand model) come from ``handdata``; they are buffers
that move with the module but are not part of the state dict: a checkpoint never carries them.
The layer always computes in float32, also under autocast.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from handmocap.core.handdata import HandModelData
from handmocap.core.joints import KEYPOINTS_FROM_JOINTS_AND_TIPS, PARENTS
from handmocap.core.rotations import axis_angle_to_matrix, rot6d_robust_to_matrix

SIDES = ("left", "right")
PARAMS = 64  # per hand
POSE, BETAS, CAMERA = slice(0, 51), slice(51, 61), slice(61, 64)
ROOT_6D, PCA = slice(0, 6), slice(6, 51)
OFFSET_UNIT = 0.15  # metres: DIR's offset between the hands' roots is predicted in this unit


@dataclass
class PosedHands:
    """One side, a batch: root-relative keypoints and vertices, and their 2D projections."""

    joints: torch.Tensor  # (B, 21, 3) metres, keypoint root_joint at the origin
    vertices: torch.Tensor  # (B, V, 3)
    joints_uv: torch.Tensor  # (B, 21, 2) crop coordinates in [-1, 1]
    vertices_uv: torch.Tensor  # (B, V, 2)


def weak_projection(camera: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """(B, 3) ``s, tx, ty`` and (B, N, 3) points -> (B, N, 2) ``s * xy + t``."""
    return camera[:, None, :1] * points[..., :2] + camera[:, None, 1:]


def finger_axis_angles(params: torch.Tensor, components: torch.Tensor, mean: torch.Tensor):
    """(B, 64) parameters -> (B, 15, 3) absolute finger axis-angles (mean + PCA)."""
    return (mean + params[:, PCA] @ components).reshape(-1, 15, 3)


class DIRHands(nn.Module):
    """Both sides of the configured hand model, posed from DIR's 64 parameters per hand."""

    def __init__(self, models: dict[str, HandModelData], root_joint: int = 0):
        super().__init__()
        if not 0 <= root_joint < 21:
            raise ValueError(f"root_joint must be a keypoint index 0..20, got {root_joint}")
        self.root_joint = root_joint
        for side in SIDES:
            arrays = models[side].arrays
            components = np.asarray(arrays["hands_components"], dtype=np.float32)
            if components.shape[0] < 45:
                raise ValueError(f"{side} hand model has {components.shape[0]} PCA components")
            posedirs = np.asarray(arrays["posedirs"], dtype=np.float32)
            buffers = {
                "v_template": np.asarray(arrays["v_template"], dtype=np.float32),
                "shapedirs": np.asarray(arrays["shapedirs"], dtype=np.float32)[..., :10],
                "posedirs": posedirs.reshape(-1, posedirs.shape[-1]).T.copy(),
                "J_regressor": np.asarray(arrays["J_regressor"], dtype=np.float32),
                "weights": np.asarray(arrays["weights"], dtype=np.float32),
                "components": components[:45],
                "mean": np.asarray(arrays["hands_mean"], dtype=np.float32),
                "tips": np.asarray(models[side].fingertip_ids, dtype=np.int64),
            }
            for name, value in buffers.items():
                self.register_buffer(f"{side}_{name}", torch.from_numpy(value), persistent=False)
        self.register_buffer("parents", torch.tensor(PARENTS), persistent=False)
        self.register_buffer(
            "keypoint_index", torch.as_tensor(KEYPOINTS_FROM_JOINTS_AND_TIPS), persistent=False
        )

    def buffer(self, side: str, name: str) -> torch.Tensor:
        return getattr(self, f"{side}_{name}")

    def rotations(self, side: str, params: torch.Tensor) -> torch.Tensor:
        """(B, 64) -> (B, 16, 3, 3) joint rotations: the root, then the 15 finger joints."""
        root = rot6d_robust_to_matrix(params[:, ROOT_6D])
        pose = finger_axis_angles(
            params, self.buffer(side, "components"), self.buffer(side, "mean")
        )
        return torch.cat([root[:, None], axis_angle_to_matrix(pose)], 1)

    def forward(self, side: str, params: torch.Tensor) -> PosedHands:
        from smplx.lbs import lbs

        with torch.autocast(params.device.type, enabled=False):
            params = params.float()
            b = lambda name: self.buffer(side, name)  # noqa: E731
            vertices, joints = lbs(
                params[:, BETAS],
                self.rotations(side, params),
                b("v_template"),
                b("shapedirs"),
                b("posedirs"),
                b("J_regressor"),
                self.parents,
                b("weights"),
                pose2rot=False,
            )
            tips = vertices[:, b("tips")]
            keypoints = torch.cat([joints, tips], 1)[:, self.keypoint_index]
            root = keypoints[:, self.root_joint : self.root_joint + 1]
            keypoints, vertices = keypoints - root, vertices - root
            camera = params[:, CAMERA]
            return PosedHands(
                joints=keypoints,
                vertices=vertices,
                joints_uv=weak_projection(camera, keypoints),
                vertices_uv=weak_projection(camera, vertices),
            )
