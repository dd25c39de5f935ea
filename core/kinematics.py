"""Fast keypoints of a hand model: forward kinematics of the 16 joints plus the 5 fingertips.

The same numbers as ``HandLayer`` (smplx skinning) for the 21 keypoints, without skinning the
whole mesh: what fitting loops need. Also the anatomical joint frames and limits that fitting
uses to keep fingers from bending backwards or twisting (those live in ``skeleton``, which
needs no torch, and are re-exported here).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from handmocap.core.handdata import HandModelData
from handmocap.core.joints import KEYPOINTS_FROM_JOINTS_AND_TIPS, PARENTS
from handmocap.core.rotations import axis_angle_to_matrix, right_jacobian, skew
from handmocap.core.skeleton import (  # noqa: F401  (re-exported: the skeleton's numpy parts)
    FINGER_CHAINS,
    FINGER_LIMITS,
    THUMB_LIMITS,
    bone_frame,
    joint_frames,
    joint_limits,
    palm_axes,
)


class KeypointLayer(nn.Module):
    """(global_orient, hand_pose, betas, transl) -> 21 keypoints (B, 21, 3), one side."""

    def __init__(self, model: HandModelData):
        super().__init__()
        a = model.arrays
        reg = np.asarray(a["J_regressor"], dtype=np.float64)
        v = np.asarray(a["v_template"], dtype=np.float64)
        dirs = np.asarray(a["shapedirs"], dtype=np.float64)[..., :10]
        tips = model.fingertip_ids
        f32 = torch.float32
        self.register_buffer("joints_rest", torch.tensor(reg @ v, dtype=f32))  # (16, 3)
        self.register_buffer(
            "joints_dirs", torch.tensor(np.einsum("jv,vcs->jcs", reg, dirs), dtype=f32)
        )
        self.register_buffer("tips_rest", torch.tensor(v[tips], dtype=f32))  # (5, 3)
        self.register_buffer("tips_dirs", torch.tensor(dirs[tips], dtype=f32))  # (5, 3, 10)
        posedirs = np.asarray(a["posedirs"], dtype=np.float64)[tips]  # (5, 3, P)
        self.register_buffer("tips_posedirs", torch.tensor(posedirs, dtype=f32))
        self.register_buffer(
            "tips_weights", torch.tensor(np.asarray(a["weights"])[tips], dtype=f32)
        )
        self.register_buffer("order", torch.as_tensor(KEYPOINTS_FROM_JOINTS_AND_TIPS))
        self.parents = PARENTS
        self._build_levels()

    def _build_levels(self) -> None:
        """Joints grouped by depth in the tree, and where each sits in the level-wise arrays."""
        depth = [0] * 16
        for j in range(1, 16):
            depth[j] = depth[PARENTS[j]] + 1
        order = [0]  # joints in the order the level-wise loop produces them
        self.levels, self.level_parents = [], []
        for d in range(1, max(depth) + 1):
            level = [j for j in range(16) if depth[j] == d]
            self.levels.append(torch.tensor(level))
            self.level_parents.append(torch.tensor([order.index(PARENTS[j]) for j in level]))
            order += level
        self.parent_joint = torch.tensor([max(p, 0) for p in PARENTS])
        self.joint_slot = torch.tensor([order.index(j) for j in range(16)])
        # below[j, m]: joint m lies strictly below joint j; subtree adds j itself
        below = np.zeros((16, 16))
        for m in range(16):
            j = PARENTS[m]
            while j >= 0:
                below[j, m] = 1.0
                j = PARENTS[j]
        self.register_buffer("below", torch.tensor(below, dtype=torch.float32))
        self.register_buffer("subtree", torch.tensor(below + np.eye(16), dtype=torch.float32))

    def rest_joints(self, betas: torch.Tensor) -> torch.Tensor:
        """(B, 10) -> (B, 16, 3) rest joints for these shapes."""
        return self.joints_rest + torch.einsum("jcs,bs->bjc", self.joints_dirs, betas)

    def forward(self, global_orient, hand_pose, betas, transl=None) -> torch.Tensor:
        """(B, 3), (B, 15, 3), (B, 10), (B, 3) -> (B, 21, 3) keypoints, project order."""
        keypoints = self._pose(global_orient, hand_pose, betas)["keypoints"]
        return keypoints if transl is None else keypoints + transl[:, None]

    def _pose(self, global_orient, hand_pose, betas) -> dict[str, torch.Tensor]:
        """Forward kinematics with its intermediate results (what ``jacobian`` needs too)."""
        b = global_orient.shape[0]
        pose = torch.cat([global_orient[:, None], hand_pose.reshape(b, 15, 3)], dim=1)
        rot = axis_angle_to_matrix(pose)  # (B, 16, 3, 3)
        rest = self.rest_joints(betas)
        # forward kinematics one tree level at a time (3 levels below the wrist, not 15 joints)
        g_rot, g_pos = rot[:, :1], rest[:, :1]
        for level, parent in zip(self.levels, self.level_parents, strict=True):
            parent_rot, parent_pos = g_rot[:, parent], g_pos[:, parent]
            offset = (rest[:, level] - rest[:, self.parent_joint[level]])[..., None]
            g_rot = torch.cat([g_rot, parent_rot @ rot[:, level]], dim=1)
            g_pos = torch.cat([g_pos, parent_pos + (parent_rot @ offset)[..., 0]], dim=1)
        g_rot, g_pos = g_rot[:, self.joint_slot], g_pos[:, self.joint_slot]  # (B, 16, ...)
        # fingertips: linear blend skinning of 5 vertices (with pose correctives, as smplx)
        eye = torch.eye(3, dtype=rot.dtype, device=rot.device)
        pose_feature = (rot[:, 1:] - eye).reshape(b, -1)
        tips = self.tips_rest + torch.einsum("tcs,bs->btc", self.tips_dirs, betas)
        tips = tips + torch.einsum("tcp,bp->btc", self.tips_posedirs, pose_feature)
        local = tips[:, None] - rest[:, :, None]  # (B, 16, 5, 3) relative to each joint
        moved = torch.einsum("bjcd,bjtd->bjtc", g_rot, local) + g_pos[:, :, None]
        tips = torch.einsum("tj,bjtc->btc", self.tips_weights, moved)
        keypoints = torch.cat([g_pos, tips], dim=1)[:, self.order]
        return {"keypoints": keypoints, "pose": pose, "g_rot": g_rot, "g_pos": g_pos,
                "moved": moved}  # fmt: skip

    def jacobian(self, global_orient, hand_pose, betas):
        """Keypoints and their derivatives, in closed form: what Gauss-Newton fitting needs.

        Returns (B, 21, 3) keypoints, (B, 21, 3, 16, 3) derivatives with respect to the 16
        axis-angle vectors (global orientation first, then ``hand_pose``), and (B, 21, 3, 10)
        with respect to the shape. A joint's rotation turns everything below it about the
        joint: a change of its axis-angle by d turns them by w = G J_r d in the world (G the
        joint's posed rotation, J_r the right Jacobian of SO(3)), which moves a point p by
        w x (p - joint). The fingertips' pose correctives (zero for the open hand model) are
        left out of the derivatives, so with MANO they are very close rather than exact.
        """
        out = self._pose(global_orient, hand_pose, betas)
        g_rot, g_pos, moved = out["g_rot"], out["g_pos"], out["moved"]
        w = g_rot @ right_jacobian(out["pose"])  # (B, 16, 3, 3): d(axis-angle) -> world turn
        # lever arms (B, 21 joints-and-tips, 16 joints, 3) from each joint to what it moves
        joints = (g_pos[:, None] - g_pos[:, :, None]) * self.below[..., None]  # [b, j, m]
        joints = joints.transpose(1, 2)  # [b, m, j]: joint m as moved by joint j
        weights = self.tips_weights[:, None, :] * self.subtree  # (5 tips, 16 j, 16 m)
        tips = torch.einsum("tjm,bmtc->btjc", weights, moved)
        tips = tips - weights.sum(-1)[None, :, :, None] * g_pos[:, None]
        lever = torch.cat([joints, tips], dim=1)[:, self.order]  # (B, 21, 16, 3)
        d_pose = -torch.einsum("bkjcd,bjde->bkcje", skew(lever), w)
        # shape: rest joints move with the shape, and each posed joint follows its parent
        dirs = self.joints_dirs  # (16, 3, 10)
        offsets = dirs - dirs[self.parent_joint]
        d_joint = [None] * 16
        d_joint[0] = dirs[0].expand(len(betas), 3, 10)
        for j in range(1, 16):
            p = self.parents[j]
            d_joint[j] = d_joint[p] + g_rot[:, p] @ offsets[j]
        d_joint = torch.stack(d_joint, dim=1)  # (B, 16, 3, 10)
        tip_offsets = self.tips_dirs[None, :, :, :] - dirs[:, None]  # (16, 5, 3, 10)
        d_tips = torch.einsum("bjcd,jtds->bjtcs", g_rot, tip_offsets) + d_joint[:, :, None]
        d_tips = torch.einsum("tj,bjtcs->btcs", self.tips_weights, d_tips)
        d_betas = torch.cat([d_joint, d_tips], dim=1)[:, self.order]
        return out["keypoints"], d_pose, d_betas
