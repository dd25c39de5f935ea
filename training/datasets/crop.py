"""What the dataset readers share: reading their files, square crops with the camera that goes
with them, and the two MANO quantities that turn official fits into the sample's convention.

Pixel coordinates are continuous, as in ``training.augment``: pixel ``(row i, column j)`` covers
``[j, j + 1) x [i, i + 1)``, so its centre is ``(j + 0.5, i + 0.5)``. Calibrations that come with
datasets put pixel centres at integers (OpenCV's convention; neither InterHand2.6M nor FreiHAND
says otherwise), so ``continuous_camera`` adds half a pixel to their principal point.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from handmocap.core.errors import HandmocapError


def read_json(path: Path, what: str):
    """A dataset's JSON file; a missing or unreadable one is a ``HandmocapError`` naming it."""
    if not path.is_file():
        raise HandmocapError(f"{what} not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise HandmocapError(f"{what} {path} cannot be read as JSON: {e}") from None


def continuous_camera(focal, principal) -> np.ndarray:
    """OpenCV intrinsics (pixel centres at integers) -> (3, 3) float64 K of continuous pixels."""
    return np.array(
        [
            [focal[0], 0.0, principal[0] + 0.5],
            [0.0, focal[1], principal[1] + 0.5],
            [0.0, 0.0, 1.0],
        ]
    )


def project(points: np.ndarray, camera: np.ndarray) -> np.ndarray:
    """(..., 3) camera-frame points -> (..., 2) pixels; points at or behind the camera give 0."""
    uvw = points @ np.asarray(camera, np.float64).T
    z = uvw[..., 2:]
    front = z > 1e-9
    return np.where(front, uvw[..., :2] / np.where(front, z, 1.0), 0.0)


def square_box(points: np.ndarray, scale: float, min_side: float) -> tuple[float, float, float]:
    """(N, 2) pixels -> ``(x0, y0, side)``: the square centred on their bounding box whose side
    is ``scale`` times its longer edge (at least ``min_side``)."""
    lo, hi = points.min(0), points.max(0)
    side = max(float((hi - lo).max()) * scale, min_side)
    cx, cy = (lo + hi) / 2
    return float(cx - side / 2), float(cy - side / 2), side


def box_affine(box: tuple[float, float, float], size: int) -> np.ndarray:
    """(2, 3) map of continuous pixels taking the square ``box`` onto ``[0, size]^2``."""
    x0, y0, side = box
    s = size / side
    return np.array([[s, 0.0, -s * x0], [0.0, s, -s * y0]])


def _warp(image: np.ndarray, affine: np.ndarray, size: int) -> np.ndarray:
    m = np.array(affine, np.float64)
    m[:, 2] += m[:, :2] @ [0.5, 0.5] - 0.5  # OpenCV's warps index pixel centres at integers
    return cv2.warpAffine(
        image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )


def crop_square(
    image: np.ndarray, box: tuple[float, float, float], size: int
) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) picture -> ((size, size, 3) view of the square ``box``, (2, 3) continuous-pixel
    map from the picture to the view). Outside the picture is black.

    Shrinking cuts the box at full resolution first (its side rounded up to whole pixels) and
    then averages pixels (``INTER_AREA``), which OpenCV's warps cannot do.
    """
    x0, y0, side = box
    if side > size:
        side = float(np.ceil(side))
        patch = _warp(image, np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0]]), int(side))
        patch = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    else:
        patch = _warp(image, box_affine(box, size), size)
    return patch, box_affine((x0, y0, side), size)


def camera_after(camera: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """(3, 3) K of a picture -> K of the picture warped by the (2, 3) continuous ``affine``."""
    return np.vstack([affine, [0.0, 0.0, 1.0]]) @ camera


def check_mano_models(models: dict | None, dataset: str) -> dict | None:
    """``models`` (side -> ``HandModelData``) when they are MANO's; official fits are MANO fits
    and mean nothing on another model."""
    if models is None:
        return None
    kinds = {side: getattr(m, "kind", None) for side, m in models.items()}
    if set(kinds) < {"left", "right"} or set(kinds.values()) != {"mano"}:
        raise HandmocapError(
            f"{dataset}'s hand parameters are MANO fits: give both sides of the MANO model "
            f"(got {kinds})"
        )
    return models


def rest_joints(model, betas: np.ndarray) -> np.ndarray:
    """(10,) shape -> (16, 3) joints of the model in its rest pose (metres, model frame)."""
    a = model.arrays
    shaped = a["v_template"] + np.asarray(a["shapedirs"])[:, :, : len(betas)] @ betas
    return np.asarray(a["J_regressor"]) @ shaped


def hands_mean(model) -> np.ndarray:
    """(15, 3) MANO's mean finger pose: official fits store the finger pose relative to it."""
    return np.asarray(model.arrays["hands_mean"], np.float64).reshape(15, 3)
