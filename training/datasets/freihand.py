"""FreiHAND from its official files (training and evaluation splits, dataset v2).

Files, as the official toolbox (lmb-freiburg/freihand ``utils/fh_utils.py``, ``pred.py``,
``utils/model.py``) reads them, ``{split}`` being "training" or "evaluation"::

  {split}_xyz.json    (N, 21, 3) joints, metres, camera frame
  {split}_K.json      (N, 3, 3) intrinsics of the 224 x 224 pictures
  {split}_mano.json   (N, 1, 61) MANO fit
  {split}_verts.json  (N, 778, 3) and {split}_scale.json (N,): not needed here
  {split}/rgb/%08d.jpg
  training/mask/%08d.jpg  (N foreground masks; not used: the sample's segmentation has parts)

The training split has N = 32560 poses, each in four pictures ("versions": green screen "gs",
then "hom", "sample", "auto" with other backgrounds): picture ``id + 32560 * version``
(``sample_version.map_id``), so the file names repeat every 32560 whatever N a copy holds. The
evaluation split has one picture per pose. All hands are right hands; the 21 joints are in the
project's order (the toolbox assembles them as wrist, then thumb, index, middle, ring and pinky
from base to tip), so nothing is reordered.

The pictures are already crops: a sample is the picture resized to ``size``, with K scaled to
match (``camera`` follows the crop helper's continuous pixels, half a pixel from the file's).

MANO: the toolbox splits the 61 values into ``pose`` (48, axis-angle, camera frame, the first
three the global rotation about MANO's root joint, the other 45 the finger pose relative to
MANO's mean pose: it poses with ``flat_hand_mean=False``), ``shape`` (10) and, not a translation,
``uv_root`` (2, pixels) and ``scale`` (1): the fit's middle-finger base (keypoint 9) sits at
``[(uv_root - principal point), focal] / scale`` with ``focal`` the mean of fx and fy.
The sample wants the absolute finger pose and a translation (``HandLayer``), which need MANO's
``hands_mean`` and rest joints from the user's MANO files, never shipped:

- with ``hand_models`` (both sides of MANO): ``hand_pose = pose[3:] + hands_mean``,
  ``global_orient = pose[:3]``, ``betas = shape``, and ``transl`` puts MANO's joint of that
  keypoint where the toolbox puts the fit's (the toolbox regresses it from the posed mesh
  instead of taking the posed joint, a small difference); ``params_valid = 1``;
- without: ``global_orient`` and ``betas`` are filled for inspection, ``hand_pose`` and
  ``transl`` stay zero and ``params_valid`` is 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from handmocap.core.errors import HandmocapError
from handmocap.core.joints import JOINT_NAMES
from handmocap.core.rotations import axis_angle_to_matrix
from handmocap.core.video import read_rgb
from handmocap.training.datasets.crop import (
    camera_after,
    check_mano_models,
    continuous_camera,
    crop_square,
    hands_mean,
    project,
    read_json,
    rest_joints,
)
from handmocap.training.sample import empty_sample

SPLITS = {
    "training": "training",
    "train": "training",
    "evaluation": "evaluation",
    "eval": "evaluation",
    "test": "evaluation",
}
VERSIONS = ("gs", "hom", "sample", "auto")  # the toolbox's sample_version order
TRAINING_POSES = 32560  # the toolbox's db_size("training"): picture ids repeat every 32560
DEFAULT_SIZE = 224
RIGHT = 1  # the sample's side index of the right hand
ROOT_JOINT = JOINT_NAMES.index("middle1")  # MANO joint of keypoint 9, FreiHAND's root
NAME = "FreiHAND"


def _array(path: Path, shapes: tuple[tuple[int, ...], ...]) -> np.ndarray:
    """One of the ``{split}_*.json`` files as an (N, ...) float64 array of the first of
    ``shapes`` (per sample) that fits."""
    data = read_json(path, f"{NAME} annotation file")
    try:
        array = np.asarray(data, np.float64)
    except (TypeError, ValueError):
        array = None
    for shape in shapes:
        if array is not None and array.ndim == len(shape) + 1 and array.shape[1:] == shape:
            return array.reshape(len(array), *shapes[0])
    found = "ragged lists" if array is None else f"shape {list(array.shape)}"
    raise HandmocapError(f"{path} is not a {NAME} file: expected (N, {shapes[0]}), got {found}")


class FreiHANDDataset(Dataset):
    """FreiHAND samples (``training.sample``): one right hand per picture."""

    hand_model_kind = "mano"

    def __init__(
        self,
        root: Path,
        split: str = "training",
        size: int = DEFAULT_SIZE,
        versions: Sequence[str] | None = None,
        hand_models: dict | None = None,
    ):
        self.root = Path(root)
        if not self.root.is_dir():
            raise HandmocapError(f"{NAME} folder not found: {self.root}")
        if split not in SPLITS:
            raise HandmocapError(f"{NAME} has no split {split!r}: training or evaluation")
        self.split = SPLITS[split]
        training = self.split == "training"
        self.versions = tuple(versions or (VERSIONS if training else ("gs",)))
        allowed = VERSIONS if training else ("gs",)
        if not self.versions or any(v not in allowed for v in self.versions):
            raise HandmocapError(
                f"{NAME} {self.split} versions must be among {', '.join(allowed)}, "
                f"not {', '.join(self.versions) or 'none'}"
            )
        self.size = int(size or DEFAULT_SIZE)
        self.hand_models = check_mano_models(hand_models, NAME)
        self.image_dir = self.root / self.split / "rgb"
        if not self.image_dir.is_dir():
            raise HandmocapError(f"{NAME} picture folder not found: {self.image_dir}")
        self._xyz = _array(self.root / f"{self.split}_xyz.json", ((21, 3),))
        self._K = _array(self.root / f"{self.split}_K.json", ((3, 3),))
        mano_path = self.root / f"{self.split}_mano.json"
        self.has_mano = mano_path.is_file()
        self._mano = _array(mano_path, ((61,), (1, 61))) if self.has_mano else None
        counts = {len(self._xyz), len(self._K)} | ({len(self._mano)} if self.has_mano else set())
        if len(counts) > 1:
            raise HandmocapError(
                f"{NAME} {self.split} files in {self.root} disagree on the number of samples "
                f"({sorted(counts)})"
            )
        if training and len(self._xyz) > TRAINING_POSES:
            raise HandmocapError(
                f"{NAME} training has {TRAINING_POSES} poses, {self.root} lists {len(self._xyz)}"
            )
        self.poses = len(self._xyz)

    def __len__(self) -> int:
        return self.poses * len(self.versions)

    def file_name(self, index: int) -> Path:
        """The picture of sample ``index`` (version-major: all poses of the first version, ...)."""
        version, pose = divmod(range(len(self))[index], self.poses)
        offset = TRAINING_POSES * VERSIONS.index(self.versions[version])
        return self.image_dir / f"{pose + offset:08d}.jpg"

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        pose = range(len(self))[index] % self.poses
        image = read_rgb(self.file_name(index))
        h, w = image.shape[:2]
        side = max(h, w)
        image, affine = crop_square(image, ((w - side) / 2, (h - side) / 2, side), self.size)
        k = self._K[pose]
        camera = camera_after(continuous_camera(np.diag(k)[:2], k[:2, 2]), affine)
        xyz = self._xyz[pose]
        uv = project(xyz, camera)
        labelled = (xyz[:, 2] > 1e-6) & ((uv >= 0) & (uv <= self.size)).all(-1)

        sample = empty_sample(self.size)
        sample["image"] = image
        sample["camera"] = camera.astype(np.float32)
        sample["hand_valid"][RIGHT] = 1
        sample["joints2d"][RIGHT, :, :2] = uv
        sample["joints2d"][RIGHT, :, 2] = labelled
        sample["joints3d"][RIGHT] = xyz
        sample["joints3d_valid"][RIGHT] = 1
        if self.has_mano:
            self._fill_params(sample, self._mano[pose], k)
        return sample

    def _fill_params(self, sample: dict, fit: np.ndarray, k: np.ndarray) -> None:
        """The official fit (61,) with the file's K -> the sample's right-hand parameters."""
        sample["global_orient"][RIGHT] = fit[:3]
        sample["betas"][RIGHT] = fit[48:58]
        scale = fit[60]
        if self.hand_models is None or not scale > 0:
            return
        model = self.hand_models["right"]
        focal = (k[0, 0] + k[1, 1]) / 2
        root = np.append(fit[58:60] - k[:2, 2], focal) / scale
        joints = rest_joints(model, fit[48:58])
        posed_root = joints[0] + axis_angle_to_matrix(fit[:3]) @ (joints[ROOT_JOINT] - joints[0])
        sample["hand_pose"][RIGHT] = fit[3:48].reshape(15, 3) + hands_mean(model)
        sample["transl"][RIGHT] = root - posed_root
        sample["params_valid"][RIGHT] = 1.0
