"""Small, quick samples for trainer tests: both hands of the open hand model, posed at random,
drawn by the OpenCV painter of ``core.render`` (no Blender), with every label the sample
contract has except segmentation and dense maps. The rendered dataset's own tests live in
``test_synthetic.py``; these only need samples whose labels agree with each other.
"""

from __future__ import annotations

import numpy as np
import torch

from handmocap.core.handmodel import HandLayer
from handmocap.core.render import Mesh, draw_meshes, part_colors, perspective
from handmocap.training.sample import SIDES, empty_sample


class PosedHands(torch.utils.data.Dataset):
    """``count`` samples of ``size`` px, fixed by ``seed``; made once, kept in memory."""

    hand_model_kind = "openhand"

    def __init__(self, count: int = 8, size: int = 128, seed: int = 0, layer=None):
        layer = layer or HandLayer.from_models_dir(None, "openhand")
        rng = np.random.default_rng(seed)
        self.samples = [self._make(layer, size, rng) for _ in range(count)]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self.samples[index].items()}

    @staticmethod
    def _make(layer: HandLayer, size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        s = empty_sample(size)
        focal = 1.6 * size
        k = np.array([[focal, 0, size / 2], [0, focal, size / 2], [0, 0, 1]], np.float32)
        image = np.full((size, size, 3), rng.integers(40, 200, 3), np.uint8)
        meshes = []
        for i, side in enumerate(SIDES):
            orient = rng.normal(0, 0.4, 3) + np.array([np.pi / 2, 0, 0])  # palm to the camera
            pose = np.abs(rng.normal(0, 0.3, (15, 3))) * np.array([0, 0, 1])  # curl, no splay
            betas = rng.normal(0, 0.5, 10)
            t = torch.as_tensor
            out = layer(side, t(orient[None]).float(), t(pose[None]).float(),
                        t(betas[None]).float())  # fmt: skip
            root = out.keypoints[0, 9].numpy()
            target = np.array([(-0.07 if side == "left" else 0.07), 0.0, 0.55])
            target += rng.normal(0, 0.02, 3)
            transl = target - root
            joints = out.keypoints[0].numpy() + transl
            uv = joints[:, :2] / joints[:, 2:] * focal + size / 2
            s["joints3d"][i] = joints
            s["joints2d"][i, :, :2] = uv
            s["joints2d"][i, :, 2] = 1.0
            s["global_orient"][i], s["hand_pose"][i], s["betas"][i] = orient, pose, betas
            s["transl"][i] = transl
            labels = layer.models[side].part_labels
            verts = out.vertices[0].numpy() + transl
            meshes.append(Mesh(verts, layer.faces(side, drawing=True), part_colors()[labels]))
        draw_meshes(image, meshes, perspective(focal, size / 2, size / 2))
        s["image"] = image
        s["camera"] = k
        for key in ("hand_valid", "joints3d_valid", "params_valid"):
            s[key][:] = 1.0
        s["interacting"] = np.float32(1.0)
        return s
