"""The hand models (real MANO or the open hand model) and one layer that poses both sides.

Real MANO files are the user's (``MODELS/mano/MANO_RIGHT.pkl``, ``MANO_LEFT.pkl``); the open
hand model ships with handmocap (``core/assets/openhand``) and is used whenever no MANO files
are configured. Both are stored in MANO's pickle key layout and skinned through ``smplx``.
Loading them (``HandModelData``, ``load_hand_models``) lives in ``handdata``, which needs no
torch, and is re-exported here.

Pose convention (DESIGN.md): ``global_orient`` (B, 3) axis-angle about the wrist joint, camera
frame; ``hand_pose`` (B, 15, 3) axis-angle per finger joint, *absolute* (zero = flat hand, not
MANO's mean pose); ``betas`` (B, 10); ``transl`` (B, 3) metres, added after the rotation.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from handmocap.core.handdata import (  # noqa: F401  (re-exported: the models' data lives there)
    MANO_FINGERTIPS,
    HandModelData,
    _file_id,
    _model_data,
    load_hand_models,
    load_mano,
    load_open_hand,
)
from handmocap.core.joints import KEYPOINTS_FROM_JOINTS_AND_TIPS, NUM_JOINTS
from handmocap.core.models_dir import (  # noqa: F401  (re-exported: the hand model's files)
    MODELS_ENV,
    OPEN_MODEL_DIR,
    SIDES,
    default_models_dir,
    mano_model_path,
    open_model_path,
)
from handmocap.core.models_dir import check_side as _check_side


@dataclass
class HandOutput:
    """Result of posing a batch of hands (metres, same frame as the inputs)."""

    vertices: torch.Tensor  # (B, V, 3)
    joints: torch.Tensor  # (B, 16, 3) MANO kinematic order
    keypoints: torch.Tensor  # (B, 21, 3) project order (wrist, thumb..pinky base to tip)


def _smplx_mano(data: HandModelData) -> nn.Module:
    import smplx
    from smplx.utils import Struct

    arrays = {k: v for k, v in data.arrays.items() if isinstance(v, np.ndarray)}
    arrays["posedirs"] = np.asarray(arrays["posedirs"], dtype=np.float32)
    with contextlib.redirect_stdout(io.StringIO()):  # smplx prints a warning per construction
        return smplx.MANO(
            model_path=str(data.path),
            data_struct=Struct(**arrays),
            is_rhand=data.side == "right",
            use_pca=False,
            flat_hand_mean=True,
            num_betas=10,
            batch_size=1,
        )


class HandLayer(nn.Module):
    """Poses left and right hands: (side, pose, shape, translation) -> vertices, joints, keypoints.

    Differentiable, on whatever device the module is moved to. Skinning is smplx's MANO layer with
    an absolute (flat-hand) finger pose; the 21 keypoints are the 16 joints plus the 5 fingertip
    vertices of the model, in the project order.
    """

    def __init__(self, models: dict[str, HandModelData]):
        super().__init__()
        missing = [s for s in SIDES if s not in models]
        if missing:
            raise ValueError(f"HandLayer needs both sides, missing {missing}")
        self.models = models
        self.mano = nn.ModuleDict({s: _smplx_mano(models[s]) for s in SIDES})
        for s in SIDES:
            self.register_buffer(f"tips_{s}", torch.as_tensor(models[s].fingertip_ids))
        self.register_buffer("kp_index", torch.as_tensor(KEYPOINTS_FROM_JOINTS_AND_TIPS))

    @classmethod
    def from_models_dir(cls, models_dir: Path | None = None, kind: str = "auto") -> HandLayer:
        return cls(load_hand_models(models_dir, kind))

    def faces(self, side: str, drawing: bool = False) -> np.ndarray:
        """The side's faces (``drawing``: the lighter surface that previews draw)."""
        model = self.models[_check_side(side)]
        return model.drawing_faces if drawing else model.faces

    def forward(
        self,
        side: str,
        global_orient: torch.Tensor,
        hand_pose: torch.Tensor,
        betas: torch.Tensor | None = None,
        transl: torch.Tensor | None = None,
    ) -> HandOutput:
        """(B, 3), (B, 15, 3) or (B, 45), (B, 10), (B, 3) -> HandOutput."""
        layer = self.mano[_check_side(side)]
        batch = global_orient.shape[0]
        ref = layer.shapedirs
        if global_orient.shape != (batch, 3):
            raise ValueError(f"global_orient must be (B, 3), got {tuple(global_orient.shape)}")
        if hand_pose.shape not in ((batch, 15, 3), (batch, 45)):
            raise ValueError(
                f"hand_pose must be (B, 15, 3) or (B, 45), got {tuple(hand_pose.shape)}"
            )
        betas = ref.new_zeros(batch, 10) if betas is None else betas
        transl = ref.new_zeros(batch, 3) if transl is None else transl
        if betas.shape != (batch, 10) or transl.shape != (batch, 3):
            raise ValueError(
                f"betas must be (B, 10) and transl (B, 3), got {tuple(betas.shape)}, "
                f"{tuple(transl.shape)}"
            )
        out = layer(
            global_orient=global_orient.to(ref),
            hand_pose=hand_pose.reshape(batch, 45).to(ref),
            betas=betas.to(ref),
            transl=transl.to(ref),
        )
        tips = out.vertices[:, getattr(self, f"tips_{side}")]
        joints = out.joints[:, :NUM_JOINTS]
        keypoints = torch.cat([joints, tips], dim=1)[:, self.kp_index]
        return HandOutput(vertices=out.vertices, joints=joints, keypoints=keypoints)
