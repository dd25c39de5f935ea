"""A small software renderer for pictures of hands: shaded meshes and skeletons into images.

Painter's algorithm with OpenCV polygon filling and Lambert shading, no OpenGL, so it works on
any headless machine. Good for previews and documentation, not for speed (about 20 ms a hand).
Cameras follow OpenCV: x right, y down, z forward.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from handmocap.core.joints import KEYPOINT_PARENTS

# One colour per skinning part (16 MANO joints), RGB 0..1: palm grey, then a hue per finger
# (index, middle, pinky, ring, thumb) getting lighter toward the tip.
_FINGER_HUES = {1: 0.60, 4: 0.33, 7: 0.0, 10: 0.12, 13: 0.78}


def part_colors() -> np.ndarray:
    """(16, 3) RGB colours, one per part."""
    colors = np.zeros((16, 3))
    colors[0] = (0.78, 0.74, 0.70)
    for base, hue in _FINGER_HUES.items():
        for k in range(3):
            hsv = np.uint8([[[hue * 180, 150 - 35 * k, 200 + 20 * k]]])
            colors[base + k] = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0] / 255.0
    return colors


SIDE_COLORS = {"left": (0.35, 0.55, 0.95), "right": (0.95, 0.50, 0.30)}


# Rotations from the hand model's frame (fingers -x, back of the hand +y, right thumb +z) to a
# camera frame, for pictures of a hand at rest: rows are the camera's x, y, z axes.
VIEWS = {
    "back": np.array([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]),
    "palm": np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),
    "side": np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]]),
}


@dataclass
class Mesh:
    """A mesh to draw: (V, 3) vertices in camera coordinates, (F, 3) faces, (V, 3) RGB colours."""

    vertices: np.ndarray
    faces: np.ndarray
    colors: np.ndarray


def draw_meshes(image: np.ndarray, meshes: list[Mesh], project) -> np.ndarray:
    """Draw meshes into an RGB uint8 image (in place) through ``project``: (N, 3) -> (N, 2) px.

    Faces of all meshes are sorted back to front together, so hands in front hide hands behind.
    Back faces are culled; the light comes from the camera.
    """
    polys, depths, shades = [], [], []
    for mesh in meshes:
        v, f = mesh.vertices, mesh.faces
        tri = v[f]
        normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        normal /= np.linalg.norm(normal, axis=1, keepdims=True) + 1e-12
        center = tri.mean(1)
        view = center / (np.linalg.norm(center, axis=1, keepdims=True) + 1e-12)
        facing = -(normal * view).sum(1)
        keep = facing > 0
        px = project(v)
        light = 0.30 + 0.70 * facing[keep] ** 0.8
        polys.append(px[f[keep]])
        depths.append(center[keep, 2])
        shades.append(mesh.colors[f[keep]].mean(1) * light[:, None])
    if not polys:
        return image
    polys, depths, shades = np.concatenate(polys), np.concatenate(depths), np.concatenate(shades)
    order = np.argsort(-depths)
    fixed = np.round(polys * 16).astype(np.int32)  # 4 fractional bits for smooth edges
    colors = np.clip(shades * 255, 0, 255).astype(np.uint8)
    for poly, color in zip(list(fixed[order]), colors[order].tolist(), strict=True):
        cv2.fillConvexPoly(image, poly, color, cv2.LINE_AA, 4)
    return image


def draw_skeleton(
    image: np.ndarray,
    keypoints_px: np.ndarray,
    color=(30, 30, 30),
    radius: int = 3,
    thickness: int = 2,
) -> np.ndarray:
    """Draw 21 keypoints (project order) and their bones into an RGB image (in place)."""
    pts = np.round(keypoints_px).astype(int)
    for child, parent in enumerate(KEYPOINT_PARENTS):
        if parent >= 0:
            cv2.line(image, tuple(pts[parent]), tuple(pts[child]), color, thickness, cv2.LINE_AA)
    for p in pts:
        cv2.circle(image, tuple(p), radius, color, -1, cv2.LINE_AA)
    return image


def orthographic(points: np.ndarray, size: int, margin: float = 0.08):
    """A projection that fits ``points`` (N, 3, camera frame) into a size x size image."""
    lo, hi = points[:, :2].min(0), points[:, :2].max(0)
    scale = (1 - 2 * margin) * size / max(float((hi - lo).max()), 1e-9)
    center = (lo + hi) / 2

    def project(p: np.ndarray) -> np.ndarray:
        return (p[:, :2] - center) * scale + size / 2

    return project


def perspective(focal: float, cx: float, cy: float):
    """Pinhole projection (N, 3) camera coordinates -> (N, 2) pixels."""

    def project(p: np.ndarray) -> np.ndarray:
        z = np.maximum(p[:, 2:3], 1e-6)
        return p[:, :2] / z * focal + np.array([cx, cy])

    return project


def label(image: np.ndarray, text: str, org=(8, 22), scale: float = 0.55) -> np.ndarray:
    """Dark text with a light outline, readable on any background."""
    cv2.putText(image, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 3, cv2.LINE_AA)
    cv2.putText(image, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (20, 20, 20), 1, cv2.LINE_AA)
    return image


def save_png(path, image_rgb: np.ndarray) -> None:
    """Write an RGB uint8 image as PNG (OpenCV wants BGR)."""
    if not cv2.imwrite(str(path), cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")
