"""Data augmentation as ACR and DIR describe it (scale, rotation, translation, horizontal flip
with side swap, colour jitter, blur, noise), keeping every label of the sample exact.

Geometry is a change of camera, not of the hands. An orientation-preserving affine map ``A`` of
the image (zoom, shift, in-plane rotation) satisfies ``A K = K' Rz`` for a new intrinsic
matrix ``K'`` and a rotation ``Rz`` about the optical axis (an RQ decomposition of the 2x2
part; ``Rz`` turns by the image rotation when ``fx == fy``, else ``K'`` gains a little skew).
So the image, ``part_seg`` and ``dense`` are warped by ``A``, ``joints2d`` moved by ``A``, the
camera becomes ``K'``, and the 3D labels turn by ``Rz``: ``joints3d`` and ``global_orient``
exactly, ``transl`` through the hand layer, because the hand rotates about its root joint ``J0``
(which depends on ``betas``), not about the origin: ``transl' = Rz (J0 + transl) - J0``.

A horizontal flip mirrors the images (``x -> S - x``), the camera (``cx -> S - cx``, skew
negated) and the 3D labels (``x -> -x``); it swaps the sides of every per-hand key, the
part-segmentation classes (1..16 <-> 17..32) and the dense map's x channel (``r -> 256 - r``:
``dense_colors`` scales each side's own rest mesh, and the left rest mesh is the right one
mirrored: exactly for the open hand model, to a colour step or so for MANO). Axis-angles
mirror as ``(x, y, z) -> (x, -y, -z)``; the other side's ``transl`` is refitted through the
hand layer (least squares over the vertices), which is exact where the two models are mirror
images (the open hand model) and the best fit where they nearly are (MANO).

Conventions:

- Pixel coordinates are continuous: pixel ``(row i, column j)`` covers ``[j, j + 1) x [i, i + 1)``
  and its centre is ``(j + 0.5, i + 0.5)``; the image spans ``[0, S]``. A flip maps ``x`` to
  ``S - x``. (OpenCV's warps index pixel centres at integers; ``_cv_matrix`` converts.)
- A 2D keypoint outside the image after augmentation keeps its coordinates but gets weight 0
  (``hide_off_image``); 3D labels, parameters and ``hand_valid`` stay, so truncated hands still
  train everything but the 2D term of the joints that left the picture.
- Parameters need the hand layer they belong to. Without one (``hand_layer=None``) a rotation or
  flip still rotates or mirrors ``global_orient`` and ``hand_pose`` but cannot refit ``transl``,
  so it sets ``params_valid`` to 0 for the hands it moved. Zoom and shift need no layer.
- Keys outside the sample contract are copied through unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import cv2
import numpy as np
import torch

from handmocap.core.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from handmocap.training.sample import LEFT_PART_OFFSET, RIGHT_PART_OFFSET, SIDES

PER_HAND_KEYS = (
    "hand_valid",
    "joints2d",
    "joints3d",
    "joints3d_valid",
    "global_orient",
    "hand_pose",
    "betas",
    "transl",
    "params_valid",
)
MIRROR = np.array([-1.0, 1.0, 1.0])  # camera-frame mirror across the YZ plane
MIRROR_AXIS_ANGLE = np.array([1.0, -1.0, -1.0])  # M exp([w]) M = exp([(x, -y, -z)])
GRAY = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R 601 luma, as torchvision's jitter


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges of each augmentation; everything off by default.

    Geometry (about the image centre): zoom by ``U(scale_range)``, rotate by ``U(+-max_rotation)``
    degrees, shift by ``U(+-max_translation)`` of the image side per axis, then flip. Image only:
    colour jitter (brightness, contrast, saturation factors ``U(1 +- value)``, in random order),
    motion blur (odd kernel in ``motion_blur_kernel``, random direction), Gaussian blur
    (``sigma`` in ``blur_sigma`` pixels), then DIR's noise (per-channel gain ``U(1 +- gain)``, one
    bias ``U(+-bias) * 255``, Gaussian noise of ``noise_sigma * 255``).
    """

    scale_prob: float = 0.0
    scale_range: tuple[float, float] = (1.0, 1.0)
    rotate_prob: float = 0.0
    max_rotation: float = 0.0  # degrees
    translate_prob: float = 0.0
    max_translation: float = 0.0  # fraction of the image side
    flip_prob: float = 0.0
    jitter_prob: float = 0.0
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    motion_blur_prob: float = 0.0
    motion_blur_kernel: tuple[int, int] = (3, 9)
    blur_prob: float = 0.0
    blur_sigma: tuple[float, float] = (0.5, 1.5)
    noise_prob: float = 0.0
    gain: float = 0.0
    bias: float = 0.0
    noise_sigma: float = 0.0
    hide_off_image: bool = True

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_prob") and not 0.0 <= value <= 1.0:
                raise ValueError(f"AugmentConfig.{f.name} must be in [0, 1], got {value}")
        checks = (
            (0 < self.scale_range[0] <= self.scale_range[1], "scale_range must be 0 < lo <= hi"),
            (self.blur_sigma[0] <= self.blur_sigma[1], "blur_sigma must be lo <= hi"),
            (bool(self.motion_blur_sizes()), "motion_blur_kernel must hold an odd size >= 1"),
            (
                min(self.max_rotation, self.max_translation, self.brightness, self.contrast,
                    self.saturation, self.gain, self.bias, self.noise_sigma) >= 0,
                "ranges must not be negative",
            ),
        )  # fmt: skip
        for ok, message in checks:
            if not ok:
                raise ValueError(f"AugmentConfig: {message}")

    def motion_blur_sizes(self) -> tuple[int, ...]:
        """The odd kernel sizes in ``motion_blur_kernel`` (inclusive), drawn uniformly."""
        lo, hi = self.motion_blur_kernel
        return tuple(k for k in range(max(lo, 1), hi + 1) if k % 2)

    @classmethod
    def none(cls) -> AugmentConfig:
        """No augmentation (2D keypoints outside the image still lose their weight)."""
        return cls()

    @classmethod
    def acr(cls) -> AugmentConfig:
        """ACR (CVPR 2023, section 4: "random scale, rotation, flip, and colour jitter").

        The paper gives no numbers. The probabilities are the ROMP-style flags left in the
        official config (reference notes 1.9: flip 0.5, rotation 0.2, colour jitter 0.2); the
        ranges are ROMP's, which that code derives from: rotation +-30 degrees, jitter of
        brightness, contrast and saturation by 0.1, no hue. The zoom is assumed: ROMP crops
        around people with probability 0.9 (``shuffle_crop_ratio_3d``); here a zoom of
        0.8..1.2 with that probability.
        """
        return cls(
            scale_prob=0.9,
            scale_range=(0.8, 1.2),
            rotate_prob=0.2,
            max_rotation=30.0,
            flip_prob=0.5,
            jitter_prob=0.2,
            brightness=0.1,
            contrast=0.1,
            saturation=0.1,
        )

    @classmethod
    def dir(cls) -> AugmentConfig:
        """DIR (ICCV 2023, section 4.1), with the official code's numbers (reference notes 2.6):
        zoom 0.9..1.1, rotation +-180 degrees, shift +-10 px of 256, flip 0.5 with side swap,
        motion blur 0.3 with kernels 3..9, and always the noise (gain 1 +- 0.3 per channel,
        bias +-0.05 * 255, Gaussian 0.01 * 255). The official code also adds the noise at test
        time; this module only runs in training."""
        return cls(
            scale_prob=1.0,
            scale_range=(0.9, 1.1),
            rotate_prob=1.0,
            max_rotation=180.0,
            translate_prob=1.0,
            max_translation=10.0 / 256.0,
            flip_prob=0.5,
            motion_blur_prob=0.3,
            motion_blur_kernel=(3, 9),
            noise_prob=1.0,
            gain=0.3,
            bias=0.05,
            noise_sigma=0.01,
        )


# --- geometry -----------------------------------------------------------------------------------


def similarity(
    size: tuple[int, int], scale: float = 1.0, angle: float = 0.0, shift=(0.0, 0.0)
) -> np.ndarray:
    """(height, width), zoom, degrees, (dx, dy) pixels -> (2, 3) affine map of pixel coordinates.

    Zoom and rotation are about the image centre; positive angles turn +x toward +y (clockwise
    on screen, y pointing down).
    """
    h, w = size
    c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))
    linear = scale * np.array([[c, -s], [s, c]])
    centre = np.array([w / 2, h / 2])
    return np.concatenate([linear, (centre + np.asarray(shift) - linear @ centre)[:, None]], 1)


def camera_change(camera: np.ndarray, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(3, 3) K, (2, 3) affine of positive determinant -> (3, 3) K', (3, 3) Rz with A K = K' Rz.

    RQ decomposition of the 2x2 part ``L K[:2, :2] = U Q``: ``U`` upper triangular with a
    positive diagonal (the new focal lengths and skew), ``Q`` a rotation (the camera turning
    about its optical axis); the principal point moves with the image.
    """
    linear, offset = matrix[:, :2], matrix[:, 2]
    m = linear @ camera[:2, :2]
    if np.linalg.det(m) <= 0:
        raise ValueError("the affine map must preserve orientation (flip with flip_sample)")
    phi = np.arctan2(m[1, 0], m[1, 1])
    c, s = np.cos(phi), np.sin(phi)
    upper = m @ np.array([[c, s], [-s, c]])  # M Q^T
    new = np.eye(3)
    new[0, :2] = upper[0]
    new[1, 1] = upper[1, 1]
    new[:2, 2] = linear @ camera[:2, 2] + offset
    rz = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return new, rz


def _cv_matrix(matrix: np.ndarray) -> np.ndarray:
    """(2, 3) affine of continuous pixel coordinates -> the same map for OpenCV, whose pixel
    centres are at integers: ``x_cv = x - 0.5`` on both sides."""
    out = np.array(matrix, np.float64)
    out[:, 2] += out[:, :2] @ [0.5, 0.5] - 0.5
    return out


def _hand_model_points(layer, side: str, orient, pose, betas) -> tuple[np.ndarray, np.ndarray]:
    """One hand posed without translation -> (V, 3) vertices and (3,) root joint, float64.

    The root joint does not move with ``global_orient``: it is ``J0(betas)``.
    """
    ref = layer.mano[side].shapedirs

    def tensor(a) -> torch.Tensor:
        return torch.as_tensor(np.asarray(a, np.float32)[None], device=ref.device)

    with torch.no_grad():
        out = layer(side, tensor(orient), tensor(pose), tensor(betas))
    return out.vertices[0].double().cpu().numpy(), out.joints[0, 0].double().cpu().numpy()


def _rotate_hands(sample: dict, rz: np.ndarray, hand_layer) -> dict[int, np.ndarray]:
    """Turn the 3D labels by ``rz`` (camera frame), in place. Returns the (V, 3) vertices of the
    hands it posed (new orientation, no translation), which a flip can reuse."""
    posed = {}
    if np.array_equal(rz, np.eye(3)):
        return posed
    f32 = np.float32
    sample["joints3d"] = (sample["joints3d"].astype(np.float64) @ rz.T).astype(f32)
    orient = axis_angle_to_matrix(sample["global_orient"].astype(np.float64))
    sample["global_orient"] = matrix_to_axis_angle(rz @ orient).astype(f32)
    for i, side in enumerate(SIDES):
        if not sample["params_valid"][i]:
            continue
        if hand_layer is None:
            sample["params_valid"][i] = 0.0
            continue
        posed[i], root = _hand_model_points(
            hand_layer, side, sample["global_orient"][i], sample["hand_pose"][i],
            sample["betas"][i],
        )  # fmt: skip
        sample["transl"][i] = rz @ (root + sample["transl"][i]) - root
    return posed


def _warp_in_place(sample: dict, matrix: np.ndarray, hand_layer) -> dict[int, np.ndarray]:
    camera, rz = camera_change(sample["camera"].astype(np.float64), matrix)
    h, w = sample["image"].shape[:2]
    cv = _cv_matrix(matrix)
    for key, interpolation in (
        ("image", cv2.INTER_LINEAR), ("part_seg", cv2.INTER_NEAREST), ("dense", cv2.INTER_NEAREST)
    ):  # fmt: skip
        sample[key] = cv2.warpAffine(
            sample[key], cv, (w, h), flags=interpolation, borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )  # fmt: skip
    xy = sample["joints2d"][..., :2].astype(np.float64)
    sample["joints2d"][..., :2] = xy @ matrix[:, :2].T + matrix[:, 2]
    sample["camera"] = camera.astype(np.float32)
    return _rotate_hands(sample, rz, hand_layer)


def _flip_in_place(sample: dict, hand_layer, posed: dict[int, np.ndarray] | None = None) -> None:
    """Mirror the sample, in place; ``posed``: vertices ``_rotate_hands`` already computed."""
    f32 = np.float32
    w = sample["image"].shape[1]
    for key in ("image", "part_seg", "dense"):
        sample[key] = np.ascontiguousarray(sample[key][:, ::-1])
    swap = np.arange(256, dtype=np.uint8)
    swap[RIGHT_PART_OFFSET:LEFT_PART_OFFSET] = np.arange(16) + LEFT_PART_OFFSET
    swap[LEFT_PART_OFFSET : LEFT_PART_OFFSET + 16] = np.arange(16) + RIGHT_PART_OFFSET
    sample["part_seg"] = swap[sample["part_seg"]]
    dense = sample["dense"]
    on_hand = dense.any(-1)
    dense[..., 0] = np.where(on_hand, 256 - dense[..., 0].astype(np.int16), 0).astype(np.uint8)
    camera = sample["camera"].copy()
    camera[0, 1] = -camera[0, 1]
    camera[0, 2] = w - camera[0, 2]
    sample["camera"] = camera
    sample["joints2d"][..., 0] = w - sample["joints2d"][..., 0]
    sample["joints3d"] = (sample["joints3d"] * MIRROR).astype(f32)

    old_orient, old_pose = sample["global_orient"].copy(), sample["hand_pose"].copy()
    sample["global_orient"] = (old_orient * MIRROR_AXIS_ANGLE).astype(f32)
    sample["hand_pose"] = (old_pose * MIRROR_AXIS_ANGLE).astype(f32)
    transl = sample["transl"].astype(np.float64) * MIRROR
    for i, side in enumerate(SIDES):
        if not sample["params_valid"][i]:
            continue
        if hand_layer is None:
            sample["params_valid"][i] = 0.0
            continue
        betas = sample["betas"][i]
        if posed and i in posed:
            source = posed[i]
        else:
            source, _ = _hand_model_points(hand_layer, side, old_orient[i], old_pose[i], betas)
        other = SIDES[1 - i]  # the mirrored hand is the other side's
        target, _ = _hand_model_points(
            hand_layer, other, sample["global_orient"][i], sample["hand_pose"][i], betas
        )
        transl[i] += (source * MIRROR - target).mean(0)
    sample["transl"] = transl.astype(f32)
    for key in PER_HAND_KEYS:
        sample[key] = np.ascontiguousarray(sample[key][::-1])


def _copy(sample: dict) -> dict:
    return {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in sample.items()}


def warp_sample(sample: dict, matrix: np.ndarray, hand_layer=None) -> dict:
    """A new sample seen through the (2, 3) orientation-preserving affine map ``matrix`` of pixel
    coordinates (e.g. ``similarity``): images warped, camera and labels changed to match.
    2D keypoints keep their weights (``augment`` hides those that left the image)."""
    out = _copy(sample)
    _warp_in_place(out, np.asarray(matrix, np.float64), hand_layer)
    return out


def flip_sample(sample: dict, hand_layer=None) -> dict:
    """A new sample mirrored left to right, with left and right hands swapped."""
    out = _copy(sample)
    _flip_in_place(out, hand_layer)
    return out


def hide_off_image(joints2d: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(2, 21, 3) keypoints -> the same with weight 0 where (x, y) lies outside the image."""
    h, w = size
    x, y = joints2d[..., 0], joints2d[..., 1]
    inside = (x >= 0) & (x <= w) & (y >= 0) & (y <= h)
    out = joints2d.copy()
    out[..., 2] = np.where(inside, out[..., 2], 0.0)
    return out


# --- the image alone (float32 RGB in 0..255, (H, W, 3)) -------------------------------------------


def jitter_colors(image: np.ndarray, factors: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Brightness, contrast and saturation ``factors`` (3,) applied in ``order`` (a permutation
    of 0, 1, 2), clipped after each, as torchvision's ``ColorJitter`` does (written here so
    that the sample's own generator draws the factors)."""
    out = image
    for op in order:
        f = float(factors[op])
        if op == 0:
            out = out * f
        elif op == 1:
            out = f * out + (1 - f) * float((out @ GRAY).mean())
        else:
            out = f * out + (1 - f) * (out @ GRAY)[..., None]
        out = np.clip(out, 0, 255)
    return out.astype(np.float32)


def motion_kernel(size: int, angle: float) -> np.ndarray:
    """A (size, size) line kernel through the centre at ``angle`` degrees, summing to 1."""
    line = np.zeros((size, size), np.float32)
    line[size // 2] = 1.0
    turn = cv2.getRotationMatrix2D(((size - 1) / 2, (size - 1) / 2), angle, 1.0)
    kernel = cv2.warpAffine(line, turn, (size, size), flags=cv2.INTER_LINEAR)
    return kernel / kernel.sum()


def motion_blur(image: np.ndarray, size: int, angle: float) -> np.ndarray:
    """Blur along a line of ``size`` pixels at ``angle`` degrees (a moving hand or camera)."""
    return cv2.filter2D(image, -1, motion_kernel(size, angle), borderType=cv2.BORDER_REFLECT)


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)


def add_noise(
    image: np.ndarray, gain: np.ndarray, bias: float, sigma: float, rng: np.random.Generator
) -> np.ndarray:
    """DIR's noise: ``gain`` (3,) per channel, one ``bias`` and Gaussian noise of ``sigma``, in
    0..255 units, clipped."""
    noise = rng.normal(0.0, sigma, image.shape) if sigma > 0 else 0.0
    return np.clip(image * gain + bias + noise, 0, 255).astype(np.float32)


# --- all together ---------------------------------------------------------------------------------


def augment(
    sample: dict[str, np.ndarray], config: AugmentConfig, rng: np.random.Generator, hand_layer=None
) -> dict[str, np.ndarray]:
    """A new, augmented sample (the input is left alone) that still passes ``check_sample``.

    Order: zoom, rotation and shift (one warp), flip, colour jitter, motion blur, Gaussian
    blur, noise. Every random number comes from ``rng`` in a fixed order, whatever is switched
    on, so a seed gives one result. ``hand_layer``: the ``HandLayer`` the sample's parameters
    belong to (see the module notes for what happens without one).
    """
    c = config
    out = _copy(sample)
    h, w = out["image"].shape[:2]
    coin = rng.random(8)
    scale = rng.uniform(*c.scale_range) if coin[0] < c.scale_prob else 1.0
    angle = rng.uniform(-c.max_rotation, c.max_rotation)
    angle = angle if coin[1] < c.rotate_prob else 0.0
    shift = rng.uniform(-c.max_translation, c.max_translation, 2) * np.array([w, h])
    shift = shift if coin[2] < c.translate_prob else np.zeros(2)
    flip = coin[3] < c.flip_prob
    factors = 1 + rng.uniform(-1, 1, 3) * np.array([c.brightness, c.contrast, c.saturation])
    order = rng.permutation(3)
    kernel = int(rng.choice(c.motion_blur_sizes()))
    blur_angle = rng.uniform(0.0, 180.0)
    sigma = rng.uniform(*c.blur_sigma)
    gain = rng.uniform(1 - c.gain, 1 + c.gain, 3)
    bias = rng.uniform(-c.bias, c.bias) * 255

    posed = {}
    if scale != 1.0 or angle != 0.0 or shift.any():
        posed = _warp_in_place(out, similarity((h, w), scale, angle, shift), hand_layer)
    if flip:
        _flip_in_place(out, hand_layer, posed)
    image, changed = out["image"].astype(np.float32), False
    if coin[4] < c.jitter_prob:
        image, changed = jitter_colors(image, factors, order), True
    if coin[5] < c.motion_blur_prob and kernel > 1:
        image, changed = motion_blur(image, kernel, blur_angle), True
    if coin[6] < c.blur_prob and sigma > 0:
        image, changed = gaussian_blur(image, sigma), True
    if coin[7] < c.noise_prob:
        image, changed = add_noise(image, gain, bias, c.noise_sigma * 255, rng), True
    if changed:
        out["image"] = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    if c.hide_off_image:
        out["joints2d"] = hide_off_image(out["joints2d"], (h, w))
    return out
