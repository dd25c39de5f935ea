"""InterHand2.6M from its official annotation files (5 fps and 30 fps releases, v1.0).

Files, as the official loader (facebookresearch/InterHand2.6M ``data/InterHand2.6M/dataset.py``),
the README and the dataset page describe them::

  images/{split}/Capture{c}/{seq_name}/cam{camera}/image{frame}.jpg
  annotations/{split}/InterHand2.6M_{split}_data.json             COCO-style
      images: id, file_name (relative to images/{split}), width, height, capture, subject,
              seq_name, camera, frame_idx
      annotations: id, image_id, bbox, joint_valid (42), hand_type ("right", "left",
              "interacting"), hand_type_valid
  annotations/{split}/InterHand2.6M_{split}_camera.json           capture -> campos, camrot,
      focal, princpt -> camera name -> value (mm, pixels; no distortion terms)
  annotations/{split}/InterHand2.6M_{split}_joint_3d.json         capture -> frame ->
      world_coord (42, 3) mm, joint_valid, hand_type, hand_type_valid
  annotations/{split}/InterHand2.6M_{split}_MANO_NeuralAnnot.json capture -> frame ->
      right / left -> pose (48), shape (10), trans (3), or null

The 30 fps release "has exactly the same directory structure" as the 5 fps one (the dataset's
first DATASET.md). What differs is the folder its image archives unpack into, as public loaders
read them: the 5 fps images under ``InterHand2.6M_5fps_batch1/images``, mostly with the 5 fps
annotation archive unpacked beside that folder as ``annotations`` (sometimes inside it); the
30 fps images under ``InterHand2.6M_30fps_batch1/images``, with their annotations inside that
folder. ``LAYOUTS`` lists where each layout looks; "flat" is the dataset page's ``${ROOT}``
(``images`` and ``annotations`` side by side), also what a ``root`` inside a batch folder gives.
``layout="auto"`` takes the one layout present for the split. (The first release's annotation
folders per annotator, ``annotations/{all,human_annot,machine_annot}``, are not read.)

Joints: 42 in world millimetres, right hand 0-20 then left 21-41, each in the order
``core.joints`` calls "interhand" (fingers tip to base, thumb first, wrist last). A camera sees
``X_cam = camrot @ (X_world - campos)`` (the official ``world2cam``); the sample takes metres.
``joint_valid`` in data.json means "annotated and inside the image": it weights the 2D joints,
and a hand is in the sample (``hand_valid``) when ``hand_type`` names it and one of its joints is
valid; its 3D counts (``joints3d_valid``) when joint_3d.json marks all 21 of its joints valid.

The crop: a square on the box of the present hands' valid 2D joints, ``box_scale`` times its
longer side, resized to ``size``. (IntagHand crops so that the hands' vertices fill 80 % of the
square; joints lie inside the hand, hence a larger factor: 1.5 is an estimate of the same
margin.) ``interacting`` is ``hand_type == "interacting"`` with ``hand_type_valid``
(InterHand2.6M's IH subset, IntagHand's selection); ``hands`` keeps all annotations, only those,
or only the single-hand ones (hand_type "right" or "left"). Annotations without a valid joint on
the hands their hand_type names are left out.

MANO (``MANO_NeuralAnnot``): ``pose`` is axis-angle in the world frame, its first three values
the global rotation about MANO's root joint and the other 45 the finger pose *relative to MANO's
mean pose* (the official tools pose it with smplx's default ``flat_hand_mean=False``; IntagHand
adds ``hands_mean``); ``trans`` is metres in the world frame. The sample wants the absolute
finger pose in the camera frame (``HandLayer``), which needs two things from the user's MANO
files, never shipped: ``hands_mean`` and the rest root joint ``J0(betas)``. So:

- with ``hand_models`` (both sides of MANO): ``hand_pose = pose[3:] + hands_mean``,
  ``global_orient = camrot . R(pose[:3])``, ``betas = shape``,
  ``transl = camrot (J0 + trans - campos / 1000) - J0``, and ``params_valid = 1``;
- without: ``global_orient`` and ``betas`` (which need no model) are filled for inspection,
  ``hand_pose`` and ``transl`` stay zero and ``params_valid`` is 0.

Loading: the annotation files are read once, in ``__init__``, into flat numpy arrays (file names
as bytes, cameras and frames as tables with an index per sample), so that data-loader workers
share them without copying Python objects; the big JSON trees are dropped afterwards.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from handmocap.core.errors import HandmocapError
from handmocap.core.joints import order_indices
from handmocap.core.rotations import axis_angle_to_matrix, matrix_to_axis_angle
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
    square_box,
)
from handmocap.training.sample import SIDES, empty_sample

SPLITS = ("train", "val", "test")
HAND_FILTERS = ("all", "interacting", "single")
DEFAULT_SIZE = 256
MIN_BOX = 32.0  # px of the original picture: the smallest crop (one valid joint, say)
# layout -> (images folder, annotation folders tried in order), relative to the root
LAYOUTS = {
    "5fps": (
        "InterHand2.6M_5fps_batch1/images",
        ("annotations", "InterHand2.6M_5fps_batch1/annotations"),
    ),
    "30fps": (
        "InterHand2.6M_30fps_batch1/images",
        ("InterHand2.6M_30fps_batch1/annotations", "annotations"),
    ),
    "flat": ("images", ("annotations",)),
}
# (2, 21): the 42-joint array's rows of the left and right hand, in the project's order
_TO_PROJECT = order_indices("interhand", "project")
SIDE_ROWS = np.stack([21 + _TO_PROJECT, _TO_PROJECT])
HAND_SIDES = {"left": (1, 0), "right": (0, 1), "interacting": (1, 1)}  # sample order: left, right
NAME = "InterHand2.6M"


def find_layout(root: Path, split: str, layout: str = "auto") -> tuple[str, Path, Path]:
    """(layout, images/{split} folder, annotations/{split} folder) under ``root``."""
    if not root.is_dir():
        raise HandmocapError(f"{NAME} folder not found: {root}")
    if layout != "auto" and layout not in LAYOUTS:
        raise HandmocapError(f"unknown {NAME} layout {layout!r}: auto, {', '.join(LAYOUTS)}")
    found = []
    for name, (images, ann_dirs) in LAYOUTS.items():
        if layout not in ("auto", name):
            continue
        image_dir = root / images / split
        ann_dir = next((root / a / split for a in ann_dirs if (root / a / split).is_dir()), None)
        if image_dir.is_dir() and ann_dir is not None:
            found.append((name, image_dir, ann_dir))
        elif layout == name:
            missing = image_dir if not image_dir.is_dir() else root / ann_dirs[0] / split
            raise HandmocapError(f"{NAME} {name} layout: {missing} not found")
    if len(found) == 1:
        return found[0]
    if not found:
        expected = "; ".join(
            f"{n}: {img}/{split} with {' or '.join(f'{a}/{split}' for a in anns)}"
            for n, (img, anns) in LAYOUTS.items()
        )
        raise HandmocapError(f"no {NAME} {split} split in {root}; expected one of ({expected})")
    names = ", ".join(f[0] for f in found)
    raise HandmocapError(f"{root} holds several {NAME} layouts ({names}): choose one with layout=")


def _records(path: Path, hands: str) -> dict[str, np.ndarray]:
    """data.json -> per annotation: file name, (capture, camera) and (capture, frame) keys,
    joint_valid, present sides, interacting; filtered by ``hands``."""
    data = read_json(path, f"{NAME} annotation file")
    rows: dict[str, list] = {k: [] for k in ("file", "camera", "frame", "valid", "sides")}
    rows["interacting"] = []
    try:
        images = {img["id"]: img for img in data["images"]}
        for ann in data["annotations"]:
            img = images[ann["image_id"]]
            hand_type = ann["hand_type"]
            if hand_type not in HAND_SIDES:
                raise ValueError(f"hand_type {hand_type!r}")
            interacting = hand_type == "interacting" and bool(ann["hand_type_valid"])
            if (hands == "interacting" and not interacting) or (
                hands == "single" and hand_type == "interacting"
            ):
                continue
            capture = str(img["capture"])
            rows["file"].append(str(img["file_name"]).encode())
            rows["camera"].append((capture, str(img["camera"])))
            rows["frame"].append((capture, str(img["frame_idx"])))
            rows["valid"].append(ann["joint_valid"])
            rows["sides"].append(HAND_SIDES[hand_type])
            rows["interacting"].append(interacting)
        valid = np.array(rows["valid"], np.float32).reshape(len(rows["valid"]), -1) > 0
        if valid.shape[1:] != (42,):
            raise ValueError(f"joint_valid of {valid.shape[1]} values, expected 42")
    except (KeyError, TypeError, ValueError) as e:
        raise HandmocapError(f"{path} is not an {NAME} data file: bad or missing {e}") from None
    sides = np.array(rows["sides"], bool).reshape(-1, 2)
    # no valid joint on the hands their hand_type names: nothing to crop around
    keep = (sides[:, 0] & valid[:, 21:].any(1)) | (sides[:, 1] & valid[:, :21].any(1))
    kept = np.flatnonzero(keep)
    return {
        "file": np.array(rows["file"], dtype=np.bytes_)[keep],
        "camera": [rows["camera"][i] for i in kept],
        "frame": [rows["frame"][i] for i in kept],
        "valid": valid[keep],
        "sides": sides[keep],
        "interacting": np.array(rows["interacting"], bool)[keep],
    }


def _table(keys: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], np.ndarray]:
    """Per-sample keys -> (distinct keys in first-seen order, (N,) int32 row of each sample)."""
    rows: dict[tuple[str, str], int] = {}
    index = np.array([rows.setdefault(k, len(rows)) for k in keys], np.int32)
    return list(rows), index


def _cameras(path: Path, keys: list[tuple[str, str]]) -> dict[str, np.ndarray]:
    """camera.json -> for each (capture, camera): K (continuous pixels), camrot, campos (mm)."""
    cameras = read_json(path, f"{NAME} camera file")
    out = {"K": [], "R": [], "campos": []}
    try:
        for capture, cam in keys:
            c = cameras[capture]
            out["K"].append(continuous_camera(c["focal"][cam], c["princpt"][cam]))
            out["R"].append(np.asarray(c["camrot"][cam], np.float64).reshape(3, 3))
            out["campos"].append(np.asarray(c["campos"][cam], np.float64).reshape(3))
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise HandmocapError(f"{path} lacks camera {cam} of capture {capture}: {e!r}") from None
    return {
        "K": np.array(out["K"], np.float64).reshape(-1, 3, 3),
        "R": np.array(out["R"], np.float64).reshape(-1, 3, 3),
        "campos": np.array(out["campos"], np.float64).reshape(-1, 3),
    }


def _frames(path: Path, keys: list[tuple[str, str]]) -> dict[str, np.ndarray]:
    """joint_3d.json -> for each (capture, frame): world joints (42, 3) mm and their validity
    (all valid where the file has none, the first release's plain Jx3 lists)."""
    joints = read_json(path, f"{NAME} joint file")
    world, valid = [], np.ones((len(keys), 42), bool)
    try:
        for row, (capture, frame) in enumerate(keys):
            entry = joints[capture][frame]
            if isinstance(entry, dict):
                world.append(entry["world_coord"])
                if "joint_valid" in entry:
                    valid[row] = np.reshape(entry["joint_valid"], 42) > 0
            else:
                world.append(entry)
        world = np.array(world, np.float32).reshape(len(keys), 42, 3)
    except KeyError as e:
        raise HandmocapError(f"{path} lacks frame {frame} of capture {capture}: {e!r}") from None
    except (TypeError, ValueError) as e:
        raise HandmocapError(f"{path} is not an {NAME} joint file: {e}") from None
    return {"world": world, "valid3d": valid}


def _mano(path: Path, keys: list[tuple[str, str]]) -> tuple[np.ndarray, np.ndarray]:
    """MANO_NeuralAnnot.json -> ((F, 2, 61) pose, shape, trans per side, (F, 2) present)."""
    fits = read_json(path, f"{NAME} MANO file")
    params = np.zeros((len(keys), 2, 61), np.float32)
    present = np.zeros((len(keys), 2), bool)
    rows, values = [], []
    try:
        for row, (capture, frame) in enumerate(keys):
            entry = fits.get(capture, {}).get(frame) or {}
            for s, side in enumerate(SIDES):
                fit = entry.get(side)
                if fit is not None:
                    rows.append((row, s))
                    values.append([*fit["pose"], *fit["shape"], *fit["trans"]])
        if rows:
            index = tuple(np.array(rows).T)
            params[index] = np.array(values, np.float32).reshape(len(rows), 61)
            present[index] = True
    except (AttributeError, KeyError, TypeError, ValueError) as e:
        raise HandmocapError(f"{path} is not an {NAME} MANO file: bad or missing {e}") from None
    return params, present


class InterHandDataset(Dataset):
    """InterHand2.6M samples (``training.sample``), one per annotated image."""

    hand_model_kind = "mano"

    def __init__(
        self,
        root: Path,
        split: str = "train",
        size: int = DEFAULT_SIZE,
        layout: str = "auto",
        hands: str = "all",
        box_scale: float = 1.5,
        hand_models: dict | None = None,
    ):
        if split not in SPLITS:
            raise HandmocapError(f"{NAME} has no split {split!r}: {', '.join(SPLITS)}")
        if hands not in HAND_FILTERS:
            raise HandmocapError(f"hands must be one of {', '.join(HAND_FILTERS)}, not {hands!r}")
        self.root = Path(root)
        self.split, self.size, self.box_scale = split, int(size or DEFAULT_SIZE), box_scale
        self.hand_models = check_mano_models(hand_models, NAME)
        self.layout, self.image_dir, self.annotation_dir = find_layout(self.root, split, layout)
        prefix = f"InterHand2.6M_{split}"
        rec = _records(self.annotation_dir / f"{prefix}_data.json", hands)
        camera_keys, self._camera_row = _table(rec["camera"])
        frame_keys, self._frame_row = _table(rec["frame"])
        cams = _cameras(self.annotation_dir / f"{prefix}_camera.json", camera_keys)
        self._K, self._camrot, self._campos = cams["K"], cams["R"], cams["campos"]
        frames = _frames(self.annotation_dir / f"{prefix}_joint_3d.json", frame_keys)
        self._world, self._valid3d = frames["world"], frames["valid3d"]
        mano_path = self.annotation_dir / f"{prefix}_MANO_NeuralAnnot.json"
        self.has_mano = mano_path.is_file()
        if self.has_mano:
            self._mano, self._mano_present = _mano(mano_path, frame_keys)
        else:
            self._mano = np.zeros((len(frame_keys), 2, 61), np.float32)
            self._mano_present = np.zeros((len(frame_keys), 2), bool)
        self._files, self._valid = rec["file"], rec["valid"]
        self._sides, self._interacting = rec["sides"], rec["interacting"]

    def __len__(self) -> int:
        return len(self._files)

    def file_name(self, index: int) -> Path:
        """The picture of sample ``index``."""
        return self.image_dir / self._files[index].decode()

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        i = range(len(self))[index]
        cam, frame = self._camera_row[i], self._frame_row[i]
        camrot, campos = self._camrot[cam], self._campos[cam]
        world = self._world[frame].astype(np.float64)
        joints = ((world - campos) @ camrot.T / 1000.0)[SIDE_ROWS]  # (2, 21, 3) metres
        front = joints[..., 2] > 1e-6
        valid2d = self._valid[i][SIDE_ROWS] & self._sides[i][:, None] & front
        hand_valid = valid2d.any(1)
        valid2d &= hand_valid[:, None]
        valid3d = self._valid3d[frame][SIDE_ROWS] & hand_valid[:, None] & front
        known = valid2d | valid3d
        joints = np.where(known[..., None], joints, 0.0)

        image = read_rgb(self.file_name(i))
        points = project(joints, self._K[cam])[valid2d]
        if not len(points):  # every labelled joint behind the camera: broken data, whole picture
            points = np.array([[0.0, 0.0], image.shape[1::-1]])
        box = square_box(points, self.box_scale, MIN_BOX)
        image, affine = crop_square(image, box, self.size)
        camera = camera_after(self._K[cam], affine)
        uv = np.where(known[..., None], project(joints, camera), 0.0)
        inside = ((uv >= 0) & (uv <= self.size)).all(-1)

        sample = empty_sample(self.size)
        sample["image"] = image
        sample["camera"] = camera.astype(np.float32)
        sample["hand_valid"] = hand_valid.astype(np.float32)
        sample["joints2d"][..., :2] = uv
        sample["joints2d"][..., 2] = valid2d & inside
        sample["joints3d"] = joints.astype(np.float32)
        sample["joints3d_valid"] = valid3d.all(1).astype(np.float32)
        sample["interacting"] = np.float32(self._interacting[i])
        for s in np.flatnonzero(hand_valid & self._mano_present[frame]):
            self._fill_params(sample, s, self._mano[frame, s].astype(np.float64), camrot, campos)
        return sample

    def _fill_params(self, sample: dict, s: int, fit: np.ndarray, camrot, campos) -> None:
        """Side ``s``'s official world-frame fit -> the sample's camera-frame parameters."""
        orient = camrot @ axis_angle_to_matrix(fit[:3])
        sample["global_orient"][s] = matrix_to_axis_angle(orient)
        sample["betas"][s] = fit[48:58]
        if self.hand_models is None:
            return
        model = self.hand_models[SIDES[s]]
        root = rest_joints(model, fit[48:58])[0]
        sample["hand_pose"][s] = fit[3:48].reshape(15, 3) + hands_mean(model)
        sample["transl"][s] = camrot @ (root + fit[58:61] - campos / 1000.0) - root
        sample["params_valid"][s] = 1.0
