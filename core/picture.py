"""Pictures made of rendered hands: the model sheet (``draw-model``) and the demo's picture."""

from __future__ import annotations

import numpy as np
import torch

from handmocap.core.handmodel import HandLayer
from handmocap.core.poses import named_pose
from handmocap.core.render import (
    VIEWS,
    Mesh,
    draw_meshes,
    draw_skeleton,
    label,
    orthographic,
    part_colors,
)

SHEET_POSES = ("flat", "relaxed", "spread", "pinch", "point", "fist")
SHEET_VIEWS = ("back", "side")


def pose_hand(layer: HandLayer, side: str, hand_pose: np.ndarray, betas=None):
    """One hand at the origin with no global rotation -> (vertices (V, 3), keypoints (21, 3))."""
    with torch.no_grad():
        out = layer(
            side,
            torch.zeros(1, 3),
            torch.as_tensor(hand_pose, dtype=torch.float32)[None],
            None if betas is None else torch.as_tensor(betas, dtype=torch.float32)[None],
        )
    return out.vertices[0].numpy().astype(np.float64), out.keypoints[0].numpy().astype(np.float64)


def render_cell(layer, side, vertices, keypoints, view: str, size: int, skeleton: bool = True):
    """One hand seen from a named view, fitted into a size x size image, coloured by part."""
    rot = VIEWS[view]
    if side == "left":  # mirror the view too, so both hands are seen the same way
        rot = rot * np.array([-1.0, 1.0, 1.0])
    cam_v = vertices @ rot.T
    cam_v[:, 2] += 1.0  # in front of the camera, for the painter's sort and the light direction
    cam_k = keypoints @ rot.T
    cam_k[:, 2] += 1.0
    project = orthographic(cam_v, size)
    colors = part_colors()[layer.models[side].part_labels]
    faces = layer.faces(side)
    if np.linalg.det(rot) < 0:  # a mirrored view turns the mesh inside out: flip the winding
        faces = faces[:, ::-1]
    image = np.full((size, size, 3), 250, np.uint8)
    draw_meshes(image, [Mesh(cam_v, faces, colors)], project)
    if skeleton:
        draw_skeleton(image, project(cam_k), color=(40, 40, 40), radius=2, thickness=1)
    return image


def model_sheet(layer: HandLayer, cell: int = 260) -> np.ndarray:
    """Grid: one row per pose; columns right/left x back/side views. RGB uint8."""
    rows = []
    for pose_name in SHEET_POSES:
        row = []
        for side in ("right", "left"):
            verts, kps = pose_hand(layer, side, named_pose(pose_name, side))
            for view in SHEET_VIEWS:
                image = render_cell(layer, side, verts, kps, view, cell)
                row.append(label(image, f"{side} {pose_name}, {view}"))
        rows.append(np.concatenate(row, axis=1))
    sheet = np.concatenate(rows, axis=0)
    kind = layer.models["right"].kind
    header = np.full((34, sheet.shape[1], 3), 255, np.uint8)
    label(header, f"handmocap {kind} hand model: {layer.models['right'].num_vertices} vertices, "
          "16 parts (colours), 21 keypoints (dots)", org=(8, 24), scale=0.65)  # fmt: skip
    return np.concatenate([header, sheet], axis=0)
