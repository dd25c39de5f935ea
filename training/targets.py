"""Training targets computed from a sample's labels: ACR's hand centre maps.

The centre of a hand is the mean of its labelled knuckles (the joints that connect the fingers
to the palm, ACR section 3.2). Each side gets its own Gaussian heatmap whose kernel grows with
the hand's size (supplement section 5: ``k = k_min + delta_k * (d / (sqrt(2) W))**2`` with ``d``
the diagonal of the hand's keypoint box, ``W`` the image width, ``k_min = 2``, ``delta_k = 7``,
in cells of the map). When the two centres are closer than ``k_L + k_R + 1`` cells they are
pushed apart along the line joining them (section 3.3, Eq. 1, ROMP's collision-aware
representation) with intensity ``alpha`` (0.2, the official config's ``collision_factor``).
"""

from __future__ import annotations

import numpy as np

KNUCKLES = (1, 5, 9, 13, 17)  # project keypoint order: thumb1, index1, middle1, ring1, pinky1
K_MIN = 2.0
DELTA_K = 7.0
COLLISION_ALPHA = 0.2


def hand_centers(
    joints2d: np.ndarray, hand_valid: np.ndarray, image_size: int, map_size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(2, 21, 3) keypoints (x, y, weight) -> centres (2, 2) in map cells, kernels (2,), ok (2,).

    A hand has a centre when it is valid and at least one of its labelled knuckles (else any
    labelled keypoint) lies inside the image.
    """
    cell = map_size / image_size
    centers = np.zeros((2, 2))
    kernels = np.full(2, K_MIN)
    ok = np.zeros(2, bool)
    for side in range(2):
        points, weight = joints2d[side, :, :2], joints2d[side, :, 2] > 0
        inside = weight & np.all((points >= 0) & (points < image_size), axis=1)
        if not hand_valid[side] or not inside.any():
            continue
        knuckles = np.zeros(len(points), bool)
        knuckles[list(KNUCKLES)] = True
        use = inside & knuckles if (inside & knuckles).any() else inside
        centers[side] = points[use].mean(0) * cell
        box = points[inside].max(0) - points[inside].min(0)
        diagonal = float(np.hypot(*box))
        kernels[side] = K_MIN + DELTA_K * (diagonal / (np.sqrt(2) * image_size)) ** 2
        ok[side] = True
    return centers, kernels, ok


def repel(centers: np.ndarray, kernels: np.ndarray, alpha: float = COLLISION_ALPHA) -> np.ndarray:
    """(2, 2) left/right centres -> the same, pushed apart when closer than k_L + k_R + 1."""
    left, right = centers
    distance = float(np.linalg.norm(left - right))
    reach = kernels[0] + kernels[1] + 1
    if distance >= reach:
        return centers.copy()
    if distance < 1e-6:  # on top of each other: push apart horizontally, left to the left
        direction, distance = np.array([-1.0, 0.0]), 1e-6
    else:
        direction = (left - right) / distance
    push = (reach - distance) * direction  # R of Eq. 1, (C_L - C_R) scaled to the overlap
    return np.stack([left + alpha * push, right - alpha * push])


def gaussian_map(center: np.ndarray, kernel: float, map_size: int) -> np.ndarray:
    """A (map_size, map_size) Gaussian of peak 1 at ``center`` (x, y cells), radius ``kernel``.

    Sigma is a third of the radius (the kernel spans +-3 sigma); cells farther than the radius
    are 0, so far-away cells are pure negatives for the focal loss.
    """
    ys, xs = np.mgrid[0:map_size, 0:map_size].astype(np.float64)
    cx, cy = np.round(center)  # the peak on a cell, so that the cell holds exactly 1
    sigma = max(kernel, 1.0) / 3.0
    d2 = (xs - cx) ** 2 + (ys - cy) ** 2
    heat = np.exp(-d2 / (2 * sigma**2))
    heat[d2 > kernel**2] = 0.0
    return heat


def center_heatmaps(
    joints2d: np.ndarray,
    hand_valid: np.ndarray,
    image_size: int,
    map_size: int = 64,
    alpha: float = COLLISION_ALPHA,
) -> np.ndarray:
    """(2, 21, 3), (2,) -> (2, map_size, map_size) float32 centre maps, left then right."""
    centers, kernels, ok = hand_centers(joints2d, hand_valid, image_size, map_size)
    if ok.all():
        centers = repel(centers, kernels, alpha)
    centers = np.clip(centers, 0, map_size - 1)
    maps = np.zeros((2, map_size, map_size), np.float32)
    for side in range(2):
        if ok[side]:
            maps[side] = gaussian_map(centers[side], kernels[side], map_size)
    return maps


def center_cells(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(..., 2, h, w) centre maps -> flat cell index of each peak (..., 2), present (..., 2)."""
    flat = heatmaps.reshape(*heatmaps.shape[:-2], -1)
    return flat.argmax(-1), flat.max(-1) >= 1.0 - 1e-6
