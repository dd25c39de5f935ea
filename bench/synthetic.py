"""A synthetic two-hand performance for the benchmarks: both open hand models moving through
named poses in front of a virtual camera, as take frames (``take.ARRAY_FIELDS``)."""

from __future__ import annotations

import numpy as np
import torch

from handmocap.core.handmodel import SIDES, HandLayer
from handmocap.core.poses import named_pose
from handmocap.core.rotations import matrix_to_axis_angle
from handmocap.core.take import HandStatus, blank_frames

# Camera of the synthetic performance: 640x480 pixels, 600 px focal length.
WIDTH, HEIGHT, FOCAL, FPS = 640, 480, 600.0, 30.0

# Backs of the hands toward the camera, fingers up (model frame -> camera frame).
FACING_CAMERA = {
    "right": np.array([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]),
    "left": np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]),
}
WRIST_POSITION = {"right": (0.10, 0.10, 0.55), "left": (-0.10, 0.10, 0.55)}
KEY_POSES = {
    "right": ("flat", "fist", "point", "spread", "flat"),
    "left": ("spread", "pinch", "relaxed", "fist", "spread"),
}


def _pose_track(side: str, n_frames: int) -> np.ndarray:
    """(T, 15, 3) finger poses moving through the side's key poses (slerp per joint)."""
    import roma

    keys = [torch.as_tensor(named_pose(n, side)) for n in KEY_POSES[side]]
    spans = np.array_split(np.arange(n_frames), len(keys) - 1)
    track = []
    for k, span in enumerate(spans):
        steps = torch.linspace(0, 1, len(span) + 1, dtype=torch.float64)[:-1]
        ease = 0.5 - 0.5 * torch.cos(np.pi * steps)
        track.append(roma.rotvec_slerp(keys[k], keys[k + 1], ease))
    return torch.cat(track).numpy()


def synthetic_performance(layer: HandLayer, n_frames: int = 90) -> dict[str, np.ndarray]:
    """Take frames (``take.ARRAY_FIELDS``) of both hands performing in front of the camera.

    The left hand drops out for a few frames (marked not detected), as it would in real footage.
    """
    from handmocap.core.rotations import axis_angle_to_matrix

    t = np.arange(n_frames)
    frames = blank_frames(t, t / FPS)
    for side in SIDES:
        sway = 0.25 * np.sin(2 * np.pi * t / n_frames)[:, None] * np.array([0.0, 1.0, 0.3])
        orient = matrix_to_axis_angle(axis_angle_to_matrix(sway) @ FACING_CAMERA[side])
        transl = np.asarray(WRIST_POSITION[side]) + 0.03 * np.stack(
            [np.sin(2 * np.pi * t / n_frames), np.cos(2 * np.pi * t / n_frames), 0 * t], 1
        )
        pose = _pose_track(side, n_frames)
        betas = np.full((n_frames, 10), 0.5 if side == "right" else -0.5)
        with torch.no_grad():
            out = layer(
                side,
                torch.as_tensor(orient, dtype=torch.float32),
                torch.as_tensor(pose, dtype=torch.float32),
                torch.as_tensor(betas, dtype=torch.float32),
                torch.zeros(n_frames, 3),
            )
        # The layer rotates about the wrist: place the wrist at the wanted point.
        wrist = out.joints[:, 0].numpy()
        shift = transl - wrist
        joints3d = out.keypoints.numpy() + shift[:, None]
        z = joints3d[..., 2:3]
        joints2d = joints3d[..., :2] / z * FOCAL + np.array([WIDTH / 2, HEIGHT / 2])
        present = np.ones(n_frames, bool)
        if side == "left":
            present[n_frames // 3 : n_frames // 3 + 6] = False
        p = present
        frames[f"{side}_present"] = present
        frames[f"{side}_status"] = np.where(present, HandStatus.OK, HandStatus.NOT_DETECTED)
        frames[f"{side}_score"][p] = 0.95
        frames[f"{side}_global_orient"][p] = orient[p]
        frames[f"{side}_hand_pose"][p] = pose[p]
        frames[f"{side}_betas"][p] = betas[p]
        frames[f"{side}_transl"][p] = shift[p]
        frames[f"{side}_joints3d"][p] = joints3d[p]
        frames[f"{side}_joints2d"][p] = joints2d[p]
    return frames
