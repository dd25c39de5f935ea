"""Results drawn over the frame they came from: shaded mesh, its outline, 2D keypoints."""

from __future__ import annotations

import cv2
import numpy as np

from handmocap.core.observation import Frame
from handmocap.core.render import SIDE_COLORS, Mesh, draw_meshes, draw_skeleton, label, perspective


def draw_overlay(
    image: np.ndarray, frame: Frame, faces: dict[str, np.ndarray], focal: float, center
) -> np.ndarray:
    """RGB uint8 image + one frame's hands -> a new RGB image with the hands drawn on it.

    Each hand: its mesh shaded in the side's colour at 50 % opacity, the mesh outline, and the
    21 keypoints with their bones; left and right in different colours.
    """
    out = image.copy()
    project = perspective(focal, float(center[0]), float(center[1]))
    for side, hand in frame.items():
        color = np.array(SIDE_COLORS[side])
        if hand.vertices is not None and (hand.vertices[:, 2] > 0).all():
            layer = np.zeros_like(image)
            colors = np.tile(color, (len(hand.vertices), 1))
            draw_meshes(layer, [Mesh(hand.vertices, faces[side], colors)], project)
            mask = layer.any(axis=2)
            out[mask] = (0.5 * out[mask] + 0.5 * layer[mask]).astype(np.uint8)
            contours, _ = cv2.findContours(
                mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE
            )
            cv2.drawContours(out, contours, -1, tuple(int(c) for c in color * 200), 2)
        dark = tuple(int(c) for c in color * 140)
        thickness = max(1, round(min(image.shape[:2]) / 300))
        draw_skeleton(out, hand.joints2d, color=dark, radius=thickness + 1, thickness=thickness)
        wrist = hand.joints2d[0]
        label(out, f"{side} {hand.score:.2f}", org=(int(wrist[0]) + 6, int(wrist[1]) + 6))
    return out
