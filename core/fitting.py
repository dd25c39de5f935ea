"""Fit the hand model to keypoints: 21 landmarks per frame in, hand model parameters out.

A general piece of ``core``: MediaPipe's landmarks, another backend's keypoints or a dataset's
annotations all come in as a ``KeypointTrack`` (3D landmarks in metres with any origin, and/or
2D landmarks in pixels with the camera that saw them) and leave as the parameters of
DESIGN.md's observations: global orientation, 15 absolute finger rotations, one shape per track
and a translation per frame, batched over all frames in torch.

Finger joints move only within anatomical limits: each joint's rotation is written in its own
frame (flexion, abduction, twist; ``kinematics.joint_frames``) and each angle is bounded
(``kinematics.joint_limits``) through a sigmoid, so a fitted finger can never bend backwards
or twist about its bone beyond a few degrees. A temporal term ties neighbouring frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from handmocap.core.handmodel import HandModelData
from handmocap.core.kinematics import KeypointLayer, joint_frames, joint_limits
from handmocap.core.rotations import matrix_to_axis_angle

PALM = (0, 5, 9, 13, 17)  # wrist and the four finger bases, project order


@dataclass
class KeypointTrack:
    """Observed landmarks of one hand over T frames (project keypoint order)."""

    world: np.ndarray | None = None  # (T, 21, 3) metres, any origin (e.g. MediaPipe world)
    pixels: np.ndarray | None = None  # (T, 21, 2) pixels of the frame
    valid: np.ndarray | None = None  # (T,) frames where the hand was seen (default: all)
    focal: float = 1000.0  # pixels, for ``pixels``
    center: tuple[float, float] = (0.0, 0.0)  # principal point, pixels

    def __post_init__(self) -> None:
        if self.world is None and self.pixels is None:
            raise ValueError("a KeypointTrack needs world landmarks, pixel landmarks or both")
        first = self.world if self.world is not None else self.pixels
        if self.valid is None:
            self.valid = np.ones(len(first), dtype=bool)

    @property
    def num_frames(self) -> int:
        return len(self.valid)


@dataclass(frozen=True)
class FitSettings:
    """Weights and optimiser settings; the defaults suit MediaPipe landmarks."""

    iterations: int = 600  # Adam steps (robust start)
    refine_iterations: int = 200  # L-BFGS steps (precise finish)
    learning_rate: float = 0.05
    world_weight: float = 1.0  # per mm^2 of centred 3D landmark error
    pixel_weight: float = 1.0  # per px^2 (Huber beyond pixel_huber px)
    pixel_huber: float = 8.0
    temporal_weight: float = 0.5  # per (rad/frame^2)^2 and (cm/frame^2)^2 of acceleration
    shape_weight: float = 0.05  # per unit^2 of shape value
    twist_weight: float = 20.0  # per rad^2 of twist about a bone


@dataclass
class FitResult:
    """Per-frame parameters (frames where the hand was not seen hold the nearest fit)."""

    global_orient: np.ndarray  # (T, 3)
    hand_pose: np.ndarray  # (T, 15, 3) absolute
    betas: np.ndarray  # (10,) one shape for the track
    transl: np.ndarray  # (T, 3) metres (NaN without pixel landmarks: no absolute position)
    keypoints: np.ndarray  # (T, 21, 3) posed model keypoints (metres)
    angles: np.ndarray  # (T, 15, 3) flexion, abduction, twist per joint (radians)
    loss: float


def kabsch(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(..., N, 3) point sets -> (..., 3, 3) rotation best mapping centred source to target."""
    s = source - source.mean(-2, keepdims=True)
    t = target - target.mean(-2, keepdims=True)
    u, _, vt = np.linalg.svd(np.swapaxes(s, -1, -2) @ t)
    d = np.sign(np.linalg.det(np.swapaxes(vt, -1, -2) @ np.swapaxes(u, -1, -2)))
    fix = np.ones(u.shape[:-1])
    fix[..., -1] = d
    return np.swapaxes(vt, -1, -2) @ (fix[..., None] * np.swapaxes(u, -1, -2))


def second_difference(x: torch.Tensor) -> torch.Tensor:
    """(T, ...) -> (T - 2, ...): x[t+1] - 2 x[t] + x[t-1]."""
    return x[2:] - 2 * x[1:-1] + x[:-2]


def solve_translation(keypoints, pixels, focal: float, center) -> torch.Tensor:
    """(T, 21, 3) points, (T, 21, 2) pixels -> (T, 3) translation best reprojecting them.

    Each keypoint gives two equations linear in the translation T:
    f (X + Tx) - (u - cx) (Z + Tz) = 0 (and the same in y); solved by least squares per frame.
    """
    u = pixels - center  # (T, 21, 2)
    t, n = keypoints.shape[:2]
    a = keypoints.new_zeros(t, n, 2, 3)
    a[..., 0, 0] = focal
    a[..., 1, 1] = focal
    a[..., :, 2] = -u
    b = u * keypoints[..., 2:3] - focal * keypoints[..., :2]
    solution = torch.linalg.lstsq(a.reshape(t, 2 * n, 3), b.reshape(t, 2 * n, 1)).solution
    return solution[..., 0]


class HandFitter:
    """Fits one side's hand model to keypoint tracks."""

    def __init__(self, model: HandModelData, device: str | torch.device = "cpu"):
        self.model = model
        self.device = torch.device(device)
        self.layer = KeypointLayer(model).to(self.device)
        self.frames = torch.tensor(joint_frames(model), dtype=torch.float32, device=self.device)
        limits = torch.tensor(joint_limits(), dtype=torch.float32, device=self.device)
        self.low, self.high = limits[..., 0], limits[..., 1]

    def angles_to_pose(self, angles: torch.Tensor) -> torch.Tensor:
        """(T, 15, 3) joint-frame angles -> (T, 15, 3) axis-angles in the model's frame."""
        return torch.einsum("jab,tjb->tja", self.frames, angles)

    def pose_to_angles(self, pose: torch.Tensor) -> torch.Tensor:
        """Inverse of ``angles_to_pose`` (the frames are orthonormal)."""
        return torch.einsum("jab,tja->tjb", self.frames, pose)

    def _bounded(self, raw: torch.Tensor) -> torch.Tensor:
        return self.low + (self.high - self.low) * torch.sigmoid(raw)

    def _unbounded(self, angles: torch.Tensor) -> torch.Tensor:
        span = self.high - self.low
        frac = ((angles - self.low) / span).clamp(1e-3, 1 - 1e-3)
        return torch.log(frac / (1 - frac))

    def initial_orient(self, track: KeypointTrack) -> np.ndarray:
        """(T, 3) orientation aligning the rest palm with the observed palm (Kabsch)."""
        rest = (
            self.layer(
                torch.zeros(1, 3, device=self.device),
                torch.zeros(1, 15, 3, device=self.device),
                torch.zeros(1, 10, device=self.device),
            )[0]
            .cpu()
            .numpy()
        )
        if track.world is not None:
            observed = track.world[:, PALM]
        else:  # pixels only: a rough orientation from the image plane
            flat = np.concatenate([track.pixels, np.zeros((*track.pixels.shape[:2], 1))], -1)
            observed = flat[:, PALM] / track.focal
        rot = kabsch(np.broadcast_to(rest[list(PALM)], observed.shape), np.nan_to_num(observed))
        return matrix_to_axis_angle(rot)

    def initial_transl(self, track: KeypointTrack, size_3d: float) -> np.ndarray:
        """(T, 3) wrist positions from the pixels: depth from the palm's size in the image."""
        px = np.nan_to_num(track.pixels)
        palm_px = np.linalg.norm(px[:, 9] - px[:, 0], axis=-1).clip(1.0)
        depth = track.focal * size_3d / palm_px
        xy = (px[:, 0] - np.asarray(track.center)) / track.focal * depth[:, None]
        return np.concatenate([xy, depth[:, None]], axis=1)

    def fit(self, track: KeypointTrack, settings: FitSettings | None = None) -> FitResult:
        """Optimise all frames of the track at once; returns the fitted parameters.

        Runs torch on one CPU thread: the problem is small (overhead-bound, no faster on two),
        and one thread makes the result independent of how busy the machine is, which a
        resumed capture needs to end with the same take.
        """
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return self._fit(track, settings if settings is not None else FitSettings())
        finally:
            torch.set_num_threads(threads)

    def _fit(self, track: KeypointTrack, settings: FitSettings) -> FitResult:
        dev, t = self.device, track.num_frames
        valid = torch.as_tensor(track.valid, device=dev)
        rest_kp = self.layer(
            torch.zeros(1, 3, device=dev), torch.zeros(1, 15, 3, device=dev),
            torch.zeros(1, 10, device=dev),
        )[0]  # fmt: skip
        palm_size = float((rest_kp[9] - rest_kp[0]).norm())

        orient = torch.tensor(self.initial_orient(track), dtype=torch.float32, device=dev)
        raw = self._unbounded(torch.zeros(t, 15, 3, device=dev)).detach()
        betas = torch.zeros(10, device=dev)
        params = {"orient": orient, "raw": raw, "betas": betas}
        world = pixels = None
        if track.world is not None:
            world = torch.tensor(np.nan_to_num(track.world), dtype=torch.float32, device=dev) * 1000
        if track.pixels is not None:
            pixels = torch.tensor(np.nan_to_num(track.pixels), dtype=torch.float32, device=dev)
            init = self.initial_transl(track, palm_size) - rest_kp[0].cpu().numpy()
            # centimetres inside the optimiser: balances its curvature against the angles'
            params["transl"] = torch.tensor(init * 100, dtype=torch.float32, device=dev)
        center = torch.tensor(track.center, dtype=torch.float32, device=dev)
        both = valid[1:] & valid[:-1]

        def objective(use_pixels: bool = True):
            px = pixels if use_pixels else None
            return self._loss(params, valid, both, world, px, track.focal, center, settings)

        # 1. pose and shape from the 3D landmarks (or, without them, from the pixels)
        first = {k: v for k, v in params.items() if world is None or k != "transl"}
        for p in first.values():
            p.requires_grad_(True)
        optimizer = torch.optim.Adam(first.values(), lr=settings.learning_rate)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, settings.iterations)
        for _ in range(settings.iterations):
            optimizer.zero_grad()
            objective(use_pixels=world is None).backward()
            optimizer.step()
            schedule.step()
        # 2. the translation that best reprojects the posed keypoints (closed form per frame)
        if pixels is not None and world is not None:
            with torch.no_grad():
                kp = self.layer(
                    params["orient"],
                    self.angles_to_pose(self._bounded(params["raw"])),
                    params["betas"][None].expand(t, 10),
                )
                params["transl"] = solve_translation(kp, pixels, track.focal, center) * 100
        # 3. everything together, precisely
        for p in params.values():
            p.requires_grad_(True)
        if settings.refine_iterations:
            lbfgs = torch.optim.LBFGS(
                params.values(), max_iter=settings.refine_iterations, line_search_fn="strong_wolfe"
            )

            def closure():
                lbfgs.zero_grad()
                value = objective()
                value.backward()
                return value

            lbfgs.step(closure)
        with torch.no_grad():
            loss = self._loss(params, valid, both, world, pixels, track.focal, center, settings)
            angles = self._bounded(params["raw"])
            pose = self.angles_to_pose(angles)
            betas = params["betas"][None].expand(t, 10)
            transl = params["transl"] / 100 if "transl" in params else None
            keypoints = self.layer(params["orient"], pose, betas, transl)
        nan_transl = np.full((t, 3), np.nan)
        return FitResult(
            global_orient=params["orient"].detach().cpu().numpy().astype(np.float64),
            hand_pose=pose.cpu().numpy().astype(np.float64),
            betas=params["betas"].detach().cpu().numpy().astype(np.float64),
            transl=nan_transl if transl is None else transl.detach().cpu().numpy().astype(float),
            keypoints=keypoints.cpu().numpy().astype(np.float64),
            angles=angles.cpu().numpy().astype(np.float64),
            loss=float(loss),
        )

    def _loss(self, params, valid, both, world, pixels, focal, center, s: FitSettings):
        t = len(valid)
        angles = self._bounded(params["raw"])
        pose = self.angles_to_pose(angles)
        betas = params["betas"][None].expand(t, 10)
        kp = self.layer(params["orient"], pose, betas) * 1000  # mm, wrist-rotated, no transl
        n = valid.sum().clamp(min=1)
        loss = s.shape_weight * params["betas"].square().sum()
        loss = loss + s.twist_weight * (angles[..., 2].square().sum(-1) * valid).sum() / n
        if world is not None:
            diff = (kp - kp.mean(1, keepdim=True)) - (world - world.mean(1, keepdim=True))
            loss = loss + s.world_weight * (diff.square().sum(-1).mean(-1) * valid).sum() / n
        if pixels is not None:
            cam = kp / 1000 + params["transl"][:, None] / 100
            proj = cam[..., :2] / cam[..., 2:3].clamp(min=1e-3) * focal + center
            err = (proj - pixels).norm(dim=-1)
            huber = torch.where(
                err < s.pixel_huber, err.square(), 2 * s.pixel_huber * err - s.pixel_huber**2
            )
            loss = loss + s.pixel_weight * (huber.mean(-1) * valid).sum() / n
        if t > 2 and s.temporal_weight > 0:
            # acceleration, not velocity: steady motion costs nothing, jitter does
            three = both[1:] & both[:-1]
            smooth = second_difference(angles).square().sum((-1, -2))
            smooth = smooth + second_difference(params["orient"]).square().sum(-1)
            if "transl" in params:
                smooth = smooth + second_difference(params["transl"]).square().sum(-1)
            loss = loss + s.temporal_weight * (smooth * three).sum() / three.sum().clamp(min=1)
        return loss
