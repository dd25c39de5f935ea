"""What one training or evaluation sample is: the contract between datasets, augmentation,
target builders, losses, the trainer and the metrics.

A sample is a plain ``dict[str, numpy.ndarray]`` (so torch's default collate batches it). Hands
are indexed by side, ``0 = left, 1 = right`` (``SIDES``); keypoints are the project's 21 in its
order (``core.joints``: wrist, then thumb..pinky base to tip); metres and an OpenCV camera (x
right, y down, z forward). Every label has a validity entry so that datasets without it
(a single hand, no segmentation, no 3D) batch with the ones that have it.

Keys (``S`` the square image size the dataset was asked for):

  image          (S, S, 3) uint8    RGB
  camera         (3, 3) float32     intrinsics K in pixels of ``image``
  hand_valid     (2,) float32       1 where the hand is in the sample at all
  joints2d       (2, 21, 3) float32 x, y in pixels of ``image``, then a 0/1 weight (labelled)
  joints3d       (2, 21, 3) float32 camera frame, metres
  joints3d_valid (2,) float32
  global_orient  (2, 3) float32     axis-angle, camera frame (``HandLayer`` convention)
  hand_pose      (2, 15, 3) float32 axis-angle, absolute (zero = flat hand)
  betas          (2, 10) float32
  transl         (2, 3) float32     HandLayer(side, global_orient, hand_pose, betas, transl)
                                    gives the camera-frame hand
  params_valid   (2,) float32       1 where the four entries above hold the hand's fit
  part_seg       (S, S) uint8       0 background, 1..16 right-hand parts, 17..32 left-hand
                                    parts (ACR's 33 classes; part k = MANO joint k - 1)
  seg_valid      () float32
  dense          (S, S, 3) uint8    DIR's dense map: each hand pixel coloured by its surface
                                    point's rest-pose position (``dense_colors``); 0 outside
  dense_valid    () float32
  interacting    () float32         1 for the interacting-hands subset (both hands, close)

A dataset states which hand model its parameters belong to in ``hand_model_kind``
("mano" or "openhand"); parameters only mean something with that model.
"""

from __future__ import annotations

import numpy as np

SIDES = ("left", "right")
NUM_KEYPOINTS = 21
NUM_SEG_CLASSES = 33  # background + 16 parts per hand
RIGHT_PART_OFFSET = 1  # right-hand part k -> class 1 + k
LEFT_PART_OFFSET = 17  # left-hand part k -> class 17 + k

IMAGE_KEYS = ("image", "part_seg", "dense")


def empty_sample(size: int) -> dict[str, np.ndarray]:
    """A sample with every key present and every label marked missing."""
    f = np.float32
    return {
        "image": np.zeros((size, size, 3), np.uint8),
        "camera": np.eye(3, dtype=f),
        "hand_valid": np.zeros(2, f),
        "joints2d": np.zeros((2, NUM_KEYPOINTS, 3), f),
        "joints3d": np.zeros((2, NUM_KEYPOINTS, 3), f),
        "joints3d_valid": np.zeros(2, f),
        "global_orient": np.zeros((2, 3), f),
        "hand_pose": np.zeros((2, 15, 3), f),
        "betas": np.zeros((2, 10), f),
        "transl": np.zeros((2, 3), f),
        "params_valid": np.zeros(2, f),
        "part_seg": np.zeros((size, size), np.uint8),
        "seg_valid": np.zeros((), f),
        "dense": np.zeros((size, size, 3), np.uint8),
        "dense_valid": np.zeros((), f),
        "interacting": np.zeros((), f),
    }


def check_sample(sample: dict[str, np.ndarray]) -> None:
    """Raise ValueError naming the first key whose shape or dtype breaks the contract."""
    size = sample["image"].shape[0]
    reference = empty_sample(size)
    for key, ref in reference.items():
        if key not in sample:
            raise ValueError(f"sample lacks {key!r}")
        value = np.asarray(sample[key])
        if value.shape != ref.shape or value.dtype != ref.dtype:
            raise ValueError(
                f"sample[{key!r}] is {value.dtype}{list(value.shape)}, "
                f"expected {ref.dtype}{list(ref.shape)}"
            )


def hand_masks(part_seg: np.ndarray) -> np.ndarray:
    """(..., S, S) part classes -> (..., S, S) DIR's classes: 0 background, 1 left, 2 right."""
    out = np.zeros_like(part_seg)
    out[(part_seg >= RIGHT_PART_OFFSET) & (part_seg < LEFT_PART_OFFSET)] = 2
    out[part_seg >= LEFT_PART_OFFSET] = 1
    return out


def dense_colors(rest_vertices: np.ndarray) -> np.ndarray:
    """(V, 3) rest-pose vertices -> (V, 3) uint8 colours: positions scaled into 1..255 per axis.

    DIR's dense head regresses a colour per hand pixel that names the surface point seen there;
    both sides use the same colours (a left hand's colours come from its own rest mesh).
    """
    lo, hi = rest_vertices.min(0), rest_vertices.max(0)
    unit = (rest_vertices - lo) / np.maximum(hi - lo, 1e-9)
    return np.round(1 + 254 * unit).astype(np.uint8)
