"""The ``dir`` backend: frames in, one left and one right hand per frame where both are seen.

DIR reconstructs two hands from a 256x256 crop that holds both, and always answers two hands:
it cannot tell that one is missing. So a detector finds the hands first (MediaPipe's hand
landmarks by default, or any backend that reports 2D keypoints, such as ``acr``); when it does
not see both a left and a right hand in a frame, that frame gets no hands and its reason is kept
in ``reasons`` rather than letting DIR invent the missing one. Otherwise the crop is cut as the
official data code does (``dir.crop``), smoothed over time in video, and DIR's final stage is
mapped back to the frame:

- pose: the robust-6D root and the mean-plus-PCA finger pose become the project's axis-angles
  (absolute finger pose), with DIR's betas;
- placement: DIR's camera is weak-perspective in the crop (``uv = s * xyz + t``, the root at
  ``t``), so each root lies on the ray through its pixel at the depth where a metre spans
  ``s`` crop units: ``z = focal / (s * half side of the crop in pixels)``. DIR's own relative
  position of the hands (the offset between the roots) then sets their depth difference around
  the pair's mean depth.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from handmocap.core.backends.mediapipe import frame_camera
from handmocap.core.backends.network import NetworkBackend
from handmocap.core.dir.crop import CropBox, CropTracker, cut, to_network_input, two_hand_box
from handmocap.core.dir.hands import BETAS, CAMERA, ROOT_6D, finger_axis_angles
from handmocap.core.dir.model import DIR, DIRConfig, DIROutput
from handmocap.core.errors import HandmocapError
from handmocap.core.handmodel import HandLayer
from handmocap.core.observation import SIDES, Frame, HandObservation, project
from handmocap.core.rotations import matrix_to_axis_angle, rot6d_robust_to_matrix

DETECTORS = ("mediapipe", "acr")


class MediaPipeDetector:
    """Both hands' 2D keypoints from MediaPipe (its palm detector and hand landmarks)."""

    def __init__(self, video: bool = True, mirrored: bool = False):
        from handmocap.core.backends.mediapipe import MediaPipeLandmarker

        self.landmarker = MediaPipeLandmarker(video=video, mirrored=mirrored)

    def __call__(self, frame: np.ndarray) -> dict[str, tuple[np.ndarray, float]]:
        return {h.side: (h.pixels, h.score) for h in self.landmarker(frame)}


class BackendDetector:
    """Both hands' 2D keypoints from another backend's observations (e.g. ACR's)."""

    def __init__(self, backend):
        self.backend = backend

    def __call__(self, frame: np.ndarray) -> dict[str, tuple[np.ndarray, float]]:
        found = self.backend([frame])[0]
        return {s: (o.joints2d, o.score) for s, o in found.items()}


class DIRBackend(NetworkBackend):
    """Callable: list of RGB uint8 frames (consecutive, for video) -> one ``Frame`` per frame."""

    name = "dir"

    def __init__(
        self,
        model: DIR,
        hand_layer: HandLayer,
        detector,
        device: str | torch.device = "cpu",
        focal: float | None = None,
        precision: str = "fp32",
        channels_last: bool = False,
        video: bool = True,
        follow: float = 0.5,
    ):
        super().__init__(model, device, precision, channels_last)
        self.layer = hand_layer.to(self.device)
        self.detector = detector
        self.focal = focal  # frame pixels; None: a 65 degree field of view
        self.tracker = CropTracker(follow if video else 1.0)
        self.reasons: list[str | None] = []  # per frame of the last call: why it has no hands
        self.boxes: list[CropBox | None] = []  # per frame of the last call: the crop used

    @classmethod
    def from_models_dir(cls, models_dir: Path | None, detector: str = "mediapipe",
                        video: bool = True, **kwargs) -> DIRBackend:  # fmt: skip
        """The official network with ``MODELS/dir/DIR.pth`` and the user's MANO files."""
        from handmocap.core.dir.checkpoint import load_official_dir
        from handmocap.core.models_dir import DIR_CHECKPOINT, missing_files

        missing = missing_files("dir", models_dir)
        if missing:
            raise HandmocapError("the dir backend cannot run yet: " + "; ".join(missing))
        layer = HandLayer.from_models_dir(models_dir, "mano")
        model = DIR(DIRConfig(), layer.models)
        load_official_dir(model, Path(models_dir) / DIR_CHECKPOINT)
        return cls(model, layer, make_detector(detector, models_dir, video, kwargs.get("device")),
                   video=video, **kwargs)  # fmt: skip

    def camera(self, frame_shape) -> tuple[float, np.ndarray]:
        return frame_camera(frame_shape, self.focal)

    def crops(self, frames) -> tuple[list[np.ndarray], dict[int, dict[str, float]]]:
        """Detect both hands in each frame: the crops of the frames where both were seen, and
        per such frame (index -> side -> detector score). Sets ``reasons`` and ``boxes``."""
        self.reasons, self.boxes = [], []
        crops, scores = [], {}
        for i, frame in enumerate(frames):
            frame = np.asarray(frame)
            found = self.detector(frame)
            if set(found) != set(SIDES):
                seen = " and ".join(found) or "no hand"
                self.reasons.append(f"the detector saw {seen}; DIR needs both hands")
                self.boxes.append(None)
                self.tracker.reset()
                continue
            box = self.tracker.update(two_hand_box({s: found[s][0] for s in SIDES}))
            self.reasons.append(None)
            self.boxes.append(box)
            scores[i] = {s: float(found[s][1]) for s in SIDES}
            crops.append(cut(frame, box))
        return crops, scores

    @torch.inference_mode()
    def run_network(self, crops: list[np.ndarray]) -> DIROutput:
        crops = torch.from_numpy(np.stack(crops)).to(self.device)
        return self.forward_network(to_network_input(crops))

    @torch.inference_mode()
    def __call__(self, frames) -> list[Frame]:
        results: list[Frame] = [{} for _ in frames]
        crops, scores = self.crops(frames)
        if not crops:
            return results
        final = self.run_network(crops).final
        posed = {}
        for side in SIDES:
            params = final.params[side].float()
            orient = matrix_to_axis_angle(rot6d_robust_to_matrix(params[:, ROOT_6D]))
            hands = self.model.hands
            pose = finger_axis_angles(
                params, hands.buffer(side, "components"), hands.buffer(side, "mean")
            )
            betas = params[:, BETAS]
            out = self.layer(side, orient, pose, betas)
            posed[side] = (params, orient, pose, betas, out)
        offsets = final.offset_metres.float().cpu().numpy()
        root = self.model.config.root_joint
        for k, row in enumerate(scores):
            box = self.boxes[row]
            focal, centre = self.camera(np.asarray(frames[row]).shape)  # frames may differ
            roots = {}
            for side in SIDES:
                s, tx, ty = posed[side][0][k, CAMERA].double().cpu().numpy()
                pixel = box.to_frame(np.array([tx, ty]))
                depth = focal / (max(abs(s), 1e-6) * box.pixels_per_unit())
                roots[side] = (pixel, depth)
            mean_depth = (roots["left"][1] + roots["right"][1]) / 2
            for sign, side in ((-1, "left"), (1, "right")):
                pixel = roots[side][0]
                depth = mean_depth + sign * offsets[k, 2] / 2
                target = np.array([*((pixel - centre) / focal * depth), depth])
                results[row][side] = self._observation(
                    side, posed[side], k, target, root, focal, centre, scores[row][side]
                )
        return results

    def _observation(self, side, posed, k, target, root, focal, centre, score) -> HandObservation:
        _, orient, pose, betas, out = posed
        keypoints = out.keypoints[k].double().cpu().numpy()
        transl = target - keypoints[root]
        joints3d = keypoints + transl
        return HandObservation(
            side=side,
            score=float(score),
            global_orient=orient[k].double().cpu().numpy(),
            hand_pose=pose[k].double().cpu().numpy(),
            betas=betas[k].double().cpu().numpy(),
            transl=transl,
            joints3d=joints3d,
            joints2d=project(joints3d, focal, centre),
            vertices=out.vertices[k].double().cpu().numpy() + transl,
        )


def make_detector(name: str, models_dir: Path | None, video: bool, device=None):
    """The detector that finds the hands DIR's crop must hold."""
    if name == "mediapipe":
        return MediaPipeDetector(video=video)
    if name == "acr":
        from handmocap.core.backends.acr import ACRBackend

        return BackendDetector(ACRBackend.from_models_dir(models_dir, device=device or "cpu"))
    raise HandmocapError(f"detector must be one of {', '.join(DETECTORS)}, got {name}")
