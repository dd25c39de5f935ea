"""Fit the hand model to keypoints: 21 landmarks per frame in, hand model parameters out.

A general piece of ``core``: MediaPipe's landmarks, another backend's keypoints or a dataset's
annotations all come in as a ``KeypointTrack`` (3D landmarks in metres with any origin, and/or
2D landmarks in pixels with the camera that saw them) and leave as the parameters of
DESIGN.md's observations: global orientation, 15 absolute finger rotations, one shape per track
and a translation per frame.

Finger joints move only within anatomical limits: each joint's rotation is written in its own
frame (flexion, abduction, twist; ``skeleton.joint_frames``) and each angle is bounded
(``skeleton.joint_limits``) through a sigmoid, so a fitted finger can never bend backwards
or twist about its bone beyond a few degrees.

The solver: a start in closed form (the palm by Kabsch, each finger bone pointed along the
observed one, the translation by linear least squares), then Levenberg-Marquardt with the
keypoints' derivatives in closed form (``KeypointLayer.jacobian``). Frames share only the
shape, so each step solves one small system per frame plus one for the shape (Schur
complement): a few milliseconds a step for a chunk of frames, about ten steps. Frames are
fitted independently; smoothing over time is ``smoothing``'s job.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from handmocap.core.handdata import HandModelData
from handmocap.core.joints import FINGERS, KEYPOINTS_FROM_JOINTS_AND_TIPS
from handmocap.core.kinematics import KeypointLayer
from handmocap.core.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from handmocap.core.skeleton import FINGER_CHAINS, joint_frames, joint_limits

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
    """Weights and solver settings; the defaults suit MediaPipe landmarks."""

    iterations: int = 8  # Levenberg-Marquardt steps at most
    tolerance: float = 1e-5  # stop once a step lowers the cost by less than this fraction
    world_weight: float = 1.0  # per mm^2 of centred 3D landmark error
    pixel_weight: float = 1.0  # per px^2 (Huber beyond pixel_huber px)
    pixel_huber: float = 8.0
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
    iterations: int = 0  # Levenberg-Marquardt steps taken


def kabsch(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(..., N, 3) point sets -> (..., 3, 3) rotation best mapping centred source to target."""
    s = source - source.mean(-2, keepdims=True)
    t = target - target.mean(-2, keepdims=True)
    u, _, vt = np.linalg.svd(np.swapaxes(s, -1, -2) @ t)
    d = np.sign(np.linalg.det(np.swapaxes(vt, -1, -2) @ np.swapaxes(u, -1, -2)))
    fix = np.ones(u.shape[:-1])
    fix[..., -1] = d
    return np.swapaxes(vt, -1, -2) @ (fix[..., None] * np.swapaxes(u, -1, -2))


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
        self.layer64 = KeypointLayer(model).to(dtype=torch.float64)  # the solver's, on the CPU
        frames, limits = joint_frames(model), joint_limits()
        self.frames = torch.tensor(frames, dtype=torch.float32, device=self.device)
        self.low = torch.tensor(limits[..., 0], dtype=torch.float32, device=self.device)
        self.high = torch.tensor(limits[..., 1], dtype=torch.float32, device=self.device)
        # the solver's copies (float64, CPU), and the rest keypoints every start needs
        self.frames64, self.limits64 = torch.tensor(frames), torch.tensor(limits)
        zero = torch.zeros(1, 3, dtype=torch.float64)
        with torch.no_grad():
            rest = self.layer64(zero, zero.new_zeros(1, 15, 3), zero.new_zeros(1, 10))
        self._rest = rest[0].numpy()

    def angles_to_pose(self, angles: torch.Tensor) -> torch.Tensor:
        """(T, 15, 3) joint-frame angles -> (T, 15, 3) axis-angles in the model's frame."""
        return torch.einsum("jab,tjb->tja", self.frames, angles)

    def initial_orient(self, track: KeypointTrack) -> np.ndarray:
        """(T, 3) orientation aligning the rest palm with the observed palm (Kabsch)."""
        rest = self.rest_keypoints()
        if track.world is not None:
            observed = track.world[:, PALM]
        else:  # pixels only: a rough orientation from the image plane
            flat = np.concatenate([track.pixels, np.zeros((*track.pixels.shape[:2], 1))], -1)
            observed = flat[:, PALM] / track.focal
        rot = kabsch(np.broadcast_to(rest[list(PALM)], observed.shape), np.nan_to_num(observed))
        return matrix_to_axis_angle(rot)

    def initial_angles(self, track: KeypointTrack, orient: np.ndarray) -> np.ndarray:
        """(T, 15, 3) joint angles pointing each bone of the rest skeleton along the observed one.

        Inverse kinematics in closed form, finger by finger from the palm outward: a joint's
        rotation is the smallest one turning its rest bone onto the observed bone (seen from the
        parent's posed frame), so it has no twist; flexion and abduction are then clipped to the
        joint's limits before the next joint is solved. Frames without 3D landmarks stay flat.
        """
        t = track.num_frames
        angles = np.zeros((t, 15, 3))
        if track.world is None:
            return angles
        rest = self.rest_keypoints()  # (21, 3)
        world = np.nan_to_num(track.world)
        slot = {int(src): k for k, src in enumerate(KEYPOINTS_FROM_JOINTS_AND_TIPS)}
        tip_of = {f: 16 + k for k, f in enumerate(FINGERS)}  # after the 16 joints
        frames = self.frames64.numpy()
        low, high = self.limits64[..., 0].numpy(), self.limits64[..., 1].numpy()
        margin = 1e-3 * (high - low)
        wrist = axis_angle_to_matrix(np.asarray(orient, dtype=np.float64))  # (T, 3, 3)
        for finger, chain in FINGER_CHAINS.items():
            parent = wrist
            ends = [slot[j] for j in chain] + [slot[tip_of[finger]]]
            for k, j in enumerate(chain):
                a, b = ends[k], ends[k + 1]
                bone = rest[b] - rest[a]
                bone /= np.linalg.norm(bone)
                seen = np.einsum("tji,tj->ti", parent, world[:, b] - world[:, a])
                seen /= np.linalg.norm(seen, axis=-1, keepdims=True).clip(1e-9)
                axis = np.cross(bone, seen)
                sin = np.linalg.norm(axis, axis=-1, keepdims=True)
                turn = axis / sin.clip(1e-9) * np.arctan2(sin, seen @ bone[:, None])
                local = turn @ frames[j - 1]  # components along flexion, abduction, twist
                local = np.clip(local, low[j - 1] + margin[j - 1], high[j - 1] - margin[j - 1])
                angles[:, j - 1] = local
                parent = parent @ axis_angle_to_matrix(local @ frames[j - 1].T)
        angles[~np.asarray(track.valid)] = 0.0
        return angles

    def rest_keypoints(self) -> np.ndarray:
        """(21, 3) keypoints of the flat hand at rest, mean shape, wrist at the origin."""
        return self._rest

    def initial_transl(self, track: KeypointTrack, size_3d: float) -> np.ndarray:
        """(T, 3) wrist positions from the pixels: depth from the palm's size in the image."""
        px = np.nan_to_num(track.pixels)
        palm_px = np.linalg.norm(px[:, 9] - px[:, 0], axis=-1).clip(1.0)
        depth = track.focal * size_3d / palm_px
        xy = (px[:, 0] - np.asarray(track.center)) / track.focal * depth[:, None]
        return np.concatenate([xy, depth[:, None]], axis=1)

    def fit(
        self, track: KeypointTrack, settings: FitSettings | None = None, betas=None
    ) -> FitResult:
        """Fit every frame of the track (one shape for all); returns the parameters.

        ``betas``: the hand's shape when it is already known (10 values): then only the pose
        and translation are fitted.

        Runs torch on one CPU thread: the problem is small (overhead-bound, no faster on two),
        and one thread makes the result independent of how busy the machine is, which a
        resumed capture needs to end with the same take.
        """
        if not np.asarray(track.valid).any():
            raise ValueError("the track has no frame with the hand in it")
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return self._fit(track, settings if settings is not None else FitSettings(), betas)
        finally:
            torch.set_num_threads(threads)

    def _fit(self, track: KeypointTrack, s: FitSettings, known_betas=None) -> FitResult:
        """Levenberg-Marquardt with a damping per frame (frames differ in how hard they are):
        a frame takes its step only when the step lowers its cost; the shared shape takes its
        step when that lowers the total."""
        problem = _Problem(self, track, s, known_betas)
        x, betas = problem.start()
        costs = problem.frame_costs(x, betas)
        damping = torch.full((len(x),), 1e-3, dtype=torch.float64)
        shape_damping, steps = 1e-3, 0
        while steps < s.iterations:
            steps += 1
            before = float(costs.sum()) + problem.shape_cost(betas)
            solved = problem.solve(x, betas, damping, shape_damping)
            if solved is None:
                break
            x_try, betas_try = x - solved[0], betas - solved[1]
            tried = problem.frame_costs(x_try, betas_try)
            kept = problem.frame_costs(x, betas_try)
            better = tried < kept
            after = float(torch.where(better, tried, kept).sum()) + problem.shape_cost(betas_try)
            if after < before:
                betas, costs = betas_try, torch.where(better, tried, kept)
                shape_damping = max(shape_damping / 3, 1e-7)
            else:
                shape_damping = min(shape_damping * 5, 1e7)
                tried = problem.frame_costs(x_try, betas)
                better = tried < costs
                costs = torch.where(better, tried, costs)
                after = float(costs.sum()) + problem.shape_cost(betas)
            x = torch.where(better[:, None], x_try, x)
            damping = torch.where(better, damping / 3, damping * 5).clamp(1e-7, 1e7)
            if better.any() and (before - after) < s.tolerance * before:
                break
            if not better.any() and bool((damping >= 1e7).all()):
                break
        total = float(costs.sum()) + problem.shape_cost(betas)
        return problem.result(x, betas, total, steps)


class _Problem:
    """One track's Levenberg-Marquardt problem, in float64.

    Per frame: orientation (3), raw joint angles (45, bounded through a sigmoid) and, with
    pixels, translation (3, in centimetres: balances its scale against the angles'); one
    shape (10) for the track. Residuals per frame: centred 3D landmarks (mm), reprojection
    (px, Huber through reweighting) and twist about each bone (rad), each weighted as
    ``FitSettings`` says and divided by the number of frames seen.
    """

    def __init__(self, fitter: HandFitter, track: KeypointTrack, s: FitSettings, betas=None):
        f64 = torch.float64
        self.fitter, self.track, self.s = fitter, track, s
        self.known_betas = None if betas is None else torch.tensor(np.asarray(betas), dtype=f64)
        self.layer = fitter.layer64
        self.frames = fitter.frames64
        self.low, self.high = fitter.limits64[..., 0], fitter.limits64[..., 1]
        self.valid = torch.as_tensor(np.asarray(track.valid))
        self.t = len(self.valid)
        n = float(self.valid.sum())
        self.world = self.pixels = None
        if track.world is not None:
            self.world = torch.tensor(np.nan_to_num(track.world), dtype=f64) * 1000
        if track.pixels is not None:
            self.pixels = torch.tensor(np.nan_to_num(track.pixels), dtype=f64)
        self.center = torch.tensor(track.center, dtype=f64)
        self.focal = float(track.focal)
        self.scale = {
            "world": np.sqrt(s.world_weight / 21 / n),
            "pixel": np.sqrt(s.pixel_weight / 21 / n),
            "twist": np.sqrt(s.twist_weight / n),
        }
        self.size = 51 if self.pixels is not None else 48

    def start(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Parameters in closed form: Kabsch palm, bones pointed along the observed bones."""
        f, track = self.fitter, self.track
        orient = f.initial_orient(track)
        angles = torch.tensor(f.initial_angles(track, orient))
        # a little inside the limits: at a limit the sigmoid is flat and the joint would stick
        frac = ((angles - self.low) / (self.high - self.low)).clamp(0.05, 0.95)
        raw = torch.log(frac / (1 - frac))
        x = torch.cat([torch.tensor(orient), raw.reshape(self.t, 45)], dim=1)
        betas = torch.zeros(10, dtype=torch.float64)
        if self.known_betas is not None:
            betas = self.known_betas.clone()
        if self.pixels is not None:
            if self.world is not None:
                kp = self.keypoints(x, betas)
                transl = solve_translation(kp, self.pixels, self.focal, self.center)
            else:
                rest = torch.tensor(f.rest_keypoints(), dtype=torch.float64)
                palm = float((rest[9] - rest[0]).norm())
                transl = torch.tensor(f.initial_transl(track, palm)) - rest[0]
            x = torch.cat([x, transl * 100], dim=1)
        return x, betas

    def _split(self, x):
        angles = self.low + (self.high - self.low) * torch.sigmoid(x[:, 3:48].reshape(-1, 15, 3))
        pose = torch.einsum("jab,tjb->tja", self.frames, angles)
        transl = x[:, 48:51] / 100 if x.shape[1] == 51 else None
        return x[:, :3], angles, pose, transl

    def keypoints(self, x, betas) -> torch.Tensor:
        orient, _, pose, transl = self._split(x)
        return self.layer(orient, pose, betas.expand(len(x), 10), transl)

    def _pixel_error(self, kp) -> tuple[torch.Tensor, torch.Tensor]:
        z = kp[..., 2:3].clamp(min=1e-3)
        proj = kp[..., :2] / z * self.focal + self.center
        return proj - self.pixels, z

    def frame_costs(self, x, betas) -> torch.Tensor:
        """(T,) each frame's share of the objective (``FitSettings``' weights, the true
        Huber, divided by the frames seen); zero where the hand was not seen."""
        s = self.s
        orient, angles, pose, transl = self._split(x)
        kp = self.layer(orient, pose, betas.expand(len(x), 10))
        per_frame = s.twist_weight * angles[..., 2].square().sum(-1)
        if self.world is not None:
            diff = self._centred(kp * 1000) - self._centred(self.world)
            per_frame = per_frame + s.world_weight * diff.square().sum(-1).mean(-1)
        if self.pixels is not None:
            err = self._pixel_error(kp + transl[:, None])[0].norm(dim=-1)
            d = s.pixel_huber
            huber = torch.where(err < d, err.square(), 2 * d * err - d * d)
            per_frame = per_frame + s.pixel_weight * huber.mean(-1)
        per_frame = torch.nan_to_num(per_frame, nan=float("inf"))
        return torch.where(self.valid, per_frame, 0.0) / self.valid.sum().clamp(min=1)

    def shape_cost(self, betas) -> float:
        return self.s.shape_weight * float(betas.square().sum())

    def cost(self, x, betas) -> float:
        """The whole objective."""
        return float(self.frame_costs(x, betas).sum()) + self.shape_cost(betas)

    @staticmethod
    def _centred(points):
        return points - points.mean(-2, keepdim=True)

    def linearize(self, x, betas):
        """Residuals (T, R) and their derivatives (T, R, P) and (T, R, 10) at x, betas."""
        s, t = self.s, len(x)
        orient, angles, pose, transl = self._split(x)
        kp, d_pose, d_betas = self.layer.jacobian(orient, pose, betas.expand(t, 10))
        # joint angles -> axis-angles -> keypoints; raw -> angles through the sigmoid
        sig = torch.sigmoid(x[:, 3:48].reshape(t, 15, 3))
        d_angle = (self.high - self.low) * sig * (1 - sig)  # (T, 15, 3)
        d_aa = self.frames * d_angle[:, :, None, :]  # (T, 15, 3, 3): d(axis-angle)/d(raw)
        d_raw = torch.einsum("tkcja,tjab->tkcjb", d_pose[..., 1:, :], d_aa)
        d_kp = torch.cat([d_pose[..., 0, :], d_raw.reshape(t, 21, 3, 45)], dim=-1)
        residuals, jac_x, jac_b = [], [], []
        if self.world is not None:
            w = self.scale["world"] * 1000
            residuals.append((self._centred(kp * 1000) - self._centred(self.world)).reshape(t, 63)
                             * self.scale["world"])  # fmt: skip
            jac = (d_kp - d_kp.mean(1, keepdim=True)) * w
            jac_x.append(jac.reshape(t, 63, 48))
            jac_b.append(((d_betas - d_betas.mean(1, keepdim=True)) * w).reshape(t, 63, 10))
        if self.pixels is not None:
            cam = kp + transl[:, None]
            err, z = self._pixel_error(cam)
            # Huber through reweighting: weight 1 inside pixel_huber, huber/error beyond
            norm = err.norm(dim=-1, keepdim=True)
            d = s.pixel_huber
            weight = torch.where(norm < d, torch.ones_like(norm), (d / norm.clamp(min=1e-9)))
            weight = weight.sqrt() * self.scale["pixel"]
            residuals.append((err * weight).reshape(t, 42))
            # d(projection)/d(camera point): f / z [[1, 0, -x/z], [0, 1, -y/z]]
            d_proj = torch.zeros(t, 21, 2, 3, dtype=torch.float64)
            d_proj[..., 0, 0] = d_proj[..., 1, 1] = 1.0
            d_proj[..., :, 2] = -cam[..., :2] / z
            d_proj = d_proj * (self.focal / z)[..., None] * weight[..., None]
            jx = torch.einsum("tkpc,tkcq->tkpq", d_proj, d_kp)
            jt = d_proj / 100
            jac_x.append(torch.cat([jx, jt], dim=-1).reshape(t, 42, 51))
            jac_b.append(torch.einsum("tkpc,tkcs->tkps", d_proj, d_betas).reshape(t, 42, 10))
            if self.world is not None:
                jac_x[0] = torch.cat([jac_x[0], jac_x[0].new_zeros(t, 63, 3)], dim=-1)
        twist = angles[..., 2] * self.scale["twist"]
        jt = torch.zeros(t, 15, self.size, dtype=torch.float64)
        rows = torch.arange(15)
        jt[:, rows, 3 + 3 * rows + 2] = d_angle[..., 2] * self.scale["twist"]
        residuals.append(twist)
        jac_x.append(jt)
        jac_b.append(torch.zeros(t, 15, 10, dtype=torch.float64))
        keep = self.valid.to(torch.float64)
        r = torch.cat(residuals, dim=1) * keep[:, None]
        jx = torch.cat(jac_x, dim=1) * keep[:, None, None]
        jb = torch.cat(jac_b, dim=1) * keep[:, None, None]
        return r, jx, jb

    def solve(self, x, betas, damping: torch.Tensor, shape_damping: float):
        """The damped Gauss-Newton step (d_x, d_betas) to subtract, or None if singular.

        The normal equations couple the frames only through the shape: each frame's block is
        solved on its own and the shape from the Schur complement.
        """
        r, jx, jb = self.linearize(x, betas)
        p = self.size
        m = torch.cat([jx, jb, r[..., None]], dim=-1)
        normal = m.transpose(1, 2) @ m  # every product of the normal equations at once
        a, b, gx = normal[:, :p, :p], normal[:, :p, p : p + 10], normal[:, :p, p + 10 :]
        sw = self.s.shape_weight
        eye10 = torch.eye(10, dtype=torch.float64)
        c = normal[:, p : p + 10, p : p + 10].sum(0) + sw * eye10
        gb = normal[:, p : p + 10, p + 10 :].sum(0) + sw * betas[:, None]
        eye = torch.eye(self.size, dtype=torch.float64)
        diag = torch.diagonal(a, dim1=1, dim2=2)[..., None] * eye + 1e-6 * eye
        a = a + damping[:, None, None] * diag
        c = c + shape_damping * (torch.diagonal(c) + 1e-6) * eye10
        try:
            solved = torch.linalg.solve(a, torch.cat([b, gx], dim=-1))
            a_b, a_g = solved[..., :10], solved[..., 10:]
            if self.known_betas is not None:  # the shape stays as given
                d_betas = torch.zeros(10, 1, dtype=torch.float64)
            else:
                schur = c - (b.transpose(1, 2) @ a_b).sum(0)
                d_betas = torch.linalg.solve(schur, gb - (b.transpose(1, 2) @ a_g).sum(0))
        except torch.linalg.LinAlgError:
            return None
        d_x = (a_g - a_b @ d_betas)[..., 0]
        if not (torch.isfinite(d_x).all() and torch.isfinite(d_betas).all()):
            return None
        return d_x, d_betas[:, 0]

    def result(self, x, betas, cost: float, steps: int) -> FitResult:
        """Parameters as numpy; frames without the hand take the nearest fitted frame's."""
        seen = np.flatnonzero(self.valid.numpy())
        nearest = seen[np.abs(np.arange(self.t)[:, None] - seen[None]).argmin(1)]
        x = x[torch.as_tensor(nearest)]
        orient, angles, pose, transl = self._split(x)
        keypoints = self.layer(orient, pose, betas.expand(self.t, 10), transl)
        return FitResult(
            global_orient=orient.numpy().copy(),
            hand_pose=pose.numpy(),
            betas=betas.numpy().copy(),
            transl=np.full((self.t, 3), np.nan) if transl is None else transl.numpy().copy(),
            keypoints=keypoints.numpy(),
            angles=angles.numpy(),
            loss=cost,
            iterations=steps,
        )
