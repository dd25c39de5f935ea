"""Results drawn over the frame they came from: shaded mesh, its outline, 2D keypoints."""

from __future__ import annotations

import cv2
import numpy as np

from handmocap.core.observation import Frame
from handmocap.core.render import SIDE_COLORS, Mesh, draw_meshes, draw_skeleton, label, perspective


def draw_overlay(
    image: np.ndarray,
    frame: Frame,
    faces: dict[str, np.ndarray],
    focal: float,
    center,
    copy: bool = True,
) -> np.ndarray:
    """RGB uint8 image + one frame's hands -> the image with the hands drawn on it (a new
    image, or ``image`` itself with ``copy=False``).

    Each hand: its mesh shaded in the side's colour at 50 % opacity, the mesh outline, and the
    21 keypoints with their bones; left and right in different colours. The mesh is drawn
    within the hand's bounding box only, which keeps a frame's cost independent of its size.
    """
    out = image.copy() if copy else image
    h, w = image.shape[:2]
    for side, hand in frame.items():
        color = np.array(SIDE_COLORS[side])
        if hand.vertices is not None and (hand.vertices[:, 2] > 0).all():
            px = hand.vertices[:, :2] / hand.vertices[:, 2:] * focal + np.asarray(center)
            x0, y0 = np.floor(px.min(0)).astype(int) - 3
            x1, y1 = np.ceil(px.max(0)).astype(int) + 4
            x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
            if x1 > x0 and y1 > y0:
                box = out[y0:y1, x0:x1]
                layer = np.zeros_like(box)
                colors = np.tile(color, (len(hand.vertices), 1))
                project = perspective(focal, float(center[0]) - x0, float(center[1]) - y0)
                draw_meshes(layer, [Mesh(hand.vertices, faces[side], colors)], project)
                gray = cv2.cvtColor(layer, cv2.COLOR_RGB2GRAY)  # drawn colours are bright
                mask = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY)[1]
                cv2.copyTo(cv2.addWeighted(box, 0.5, layer, 0.5, 0), mask, box)
                contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
                cv2.drawContours(box, contours, -1, tuple(int(c) for c in color * 200), 2)
        dark = tuple(int(c) for c in color * 140)
        thickness = max(1, round(min(image.shape[:2]) / 300))
        draw_skeleton(out, hand.joints2d, color=dark, radius=thickness + 1, thickness=thickness)
        wrist = hand.joints2d[0]
        label(out, f"{side} {hand.score:.2f}", org=(int(wrist[0]) + 6, int(wrist[1]) + 6))
    return out
