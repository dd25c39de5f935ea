"""The ``acr`` backend: full frames in, at most one left and one right hand per frame out.

Frames are letterboxed to 512 (white padding, bicubic), run through the ACR network, parsed
(centre NMS, threshold, cross-hand prior), and each hand posed with the configured hand model:
finger pose = network output + the model's mean pose, translation from the weak-perspective
camera through the focal length. The official release was trained with MANO, so its weights
need the user's MANO files; without them the backend runs handmocap's own light weights
(``core/assets/acr_open``, trained on synthetic hands of the open hand model, 128 px input).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from handmocap.core.acr.model import ACR, ACRConfig
from handmocap.core.acr.parse import DEFAULT_THRESHOLD, ParsedHands, parse_maps
from handmocap.core.acr.preprocess import Letterbox, preprocess, to_network_input
from handmocap.core.backends.network import PRECISIONS, NetworkBackend  # noqa: F401
from handmocap.core.errors import HandmocapError
from handmocap.core.handmodel import HandLayer
from handmocap.core.joints import KEYPOINT_NAMES
from handmocap.core.models_dir import ACR_CHECKPOINT as CHECKPOINT
from handmocap.core.models_dir import OPEN_ACR_CHECKPOINT, OPEN_ACR_WEIGHTS, acr_weights
from handmocap.core.observation import SIDES, Frame, HandObservation, project

# The official demo's camera: focal length 1265 px for the 512 px network input.
OFFICIAL_FOCAL_512 = 1265.0
ROOT = KEYPOINT_NAMES.index("middle1")  # the weak-perspective camera centres the middle knuckle


class ACRBackend(NetworkBackend):
    """Callable: list of RGB uint8 frames -> one ``Frame`` (side -> observation) per frame."""

    name = "acr"
    checkpoint: str | None = None  # what a take records: "acr/wild.pkl", "handmocap/acr_open.pt"

    def __init__(
        self,
        model: ACR,
        hand_layer: HandLayer,
        device: str | torch.device = "cpu",
        threshold: float = DEFAULT_THRESHOLD,
        focal: float | None = None,
        precision: str = "fp32",
        channels_last: bool = False,
        input_size: int = 512,
    ):
        super().__init__(model, device, precision, channels_last)
        self.layer = hand_layer.to(self.device)
        self.threshold = threshold
        self.focal = focal  # original-frame pixels; None: the official demo's field of view
        self.input_size = input_size
        self.hands_mean = {
            s: torch.as_tensor(hand_layer.models[s].arrays["hands_mean"], dtype=torch.float32)
            for s in SIDES
        }

    @classmethod
    def from_models_dir(
        cls, models_dir: Path | None, weights: str = "auto", **kwargs
    ) -> ACRBackend:
        """The official network with ``MODELS/acr/wild.pkl`` and the user's MANO files, or
        handmocap's own weights with the open hand model (``weights``: "auto" takes the
        official ones when their files are all there, "official" or "open" insists)."""
        from handmocap.core.acr.checkpoint import load_official_acr

        if acr_weights(models_dir, weights) == "open":
            backend = cls.from_project_checkpoint(OPEN_ACR_WEIGHTS, **kwargs)
            backend.checkpoint = OPEN_ACR_CHECKPOINT
            return backend
        model = ACR.from_config(ACRConfig())
        load_official_acr(model, Path(models_dir) / CHECKPOINT)
        backend = cls(model, HandLayer.from_models_dir(models_dir, "mano"), **kwargs)
        backend.checkpoint = CHECKPOINT.as_posix()
        return backend

    @classmethod
    def from_project_checkpoint(
        cls, path: Path, models_dir: Path | None = None, **kwargs
    ) -> ACRBackend:
        """A network trained by ``handmocap train`` with the hand model it was trained with."""
        from handmocap.core.checkpoints import check_and_load, read_project_checkpoint

        state = read_project_checkpoint(path)
        if state["network"] != "acr":
            raise HandmocapError(f"{path} holds a {state['network']} network, not acr")
        config = ACRConfig(**{k: tuple(v) if isinstance(v, list) else v
                              for k, v in state["network_config"].items()})  # fmt: skip
        model = ACR.from_config(config)
        check_and_load(model, state["model"], str(path), "acr")
        kind = state["hand_model_kind"]
        layer = HandLayer.from_models_dir(models_dir, kind)
        ids = {s: layer.models[s].model_id for s in SIDES}
        if ids != state["hand_model_id"]:
            raise HandmocapError(
                f"{path} was trained with the hand model {state['hand_model_id']['right']}, "
                f"this one is {ids['right']}: the network's poses only fit its own model"
            )
        kwargs.setdefault("input_size", config.input_size)
        return cls(model, layer, **kwargs)

    def focal_512(self, box: Letterbox) -> float:
        """The focal length in network-input pixels (the official demo's field of view by
        default, whatever the input size)."""
        if self.focal is None:
            return OFFICIAL_FOCAL_512 * self.input_size / 512
        return self.focal * box.scale

    @torch.inference_mode()
    def run_network(self, frames) -> tuple[dict[str, ParsedHands], list[Letterbox]]:
        images, boxes = preprocess(frames, self.input_size)
        maps = self.forward_network(to_network_input(images.to(self.device)))
        # parsing (NMS, 6D decoding) always in fp32, outside autocast
        return parse_maps({k: v.float() for k, v in maps.items()}, self.threshold), boxes

    @torch.inference_mode()
    def __call__(self, frames) -> list[Frame]:
        parsed, boxes = self.run_network(frames)
        results: list[Frame] = [{} for _ in frames]
        for side in SIDES:
            hands = parsed[side]
            rows = torch.nonzero(hands.detected).flatten().tolist()
            if not rows:
                continue
            pose = hands.absolute_pose(self.hands_mean[side].to(self.device))[rows]
            out = self.layer(side, hands.global_orient[rows], pose, hands.betas[rows])
            for k, row in enumerate(rows):
                results[row][side] = self._observation(
                    side, hands, row, pose[k], out.keypoints[k], out.vertices[k], boxes[row]
                )
        return results

    def _observation(self, side, hands, row, pose, keypoints, vertices, box) -> HandObservation:
        """Place the posed hand with the weak-perspective camera; project into the frame."""
        scale, tx, ty = hands.camera[row].double().cpu().numpy()
        scale = max(scale, 1e-6)
        focal = self.focal_512(box)
        target = np.array([tx / scale, ty / scale, focal / (self.input_size / 2 * scale)])
        keypoints = keypoints.double().cpu().numpy()
        transl = target - keypoints[ROOT]
        joints3d = keypoints + transl
        focal_px = focal / box.scale
        return HandObservation(
            side=side,
            score=float(hands.score[row]),
            global_orient=hands.global_orient[row].double().cpu().numpy(),
            hand_pose=pose.double().cpu().numpy(),
            betas=hands.betas[row].double().cpu().numpy(),
            transl=transl,
            joints3d=joints3d,
            joints2d=project(joints3d, focal_px, box.principal_point()),
            vertices=vertices.double().cpu().numpy() + transl,
        )

    def camera(self, frame_shape) -> tuple[float, np.ndarray]:
        """(focal px, principal point px) of the camera this backend assumes for a frame."""
        from handmocap.core.acr.preprocess import square_paddings

        h, w = frame_shape[:2]
        top, _, _, left = square_paddings(h, w)
        box = Letterbox(h, w, top, left, max(h, w), self.input_size)
        return self.focal_512(box) / box.scale, box.principal_point()
