"""Tiny InterHand2.6M and FreiHAND copies in the official on-disk layouts, for the reader tests.

Every file has the official name, folder and JSON structure (key names, nesting, units: world
millimetres and camera positions in mm for InterHand2.6M, metres for FreiHAND); only the number
of samples and the picture sizes are small. Pictures are black with a white dot on each labelled
joint (unless a picture is given), so a test can see where the joints landed in a crop.

The layout facts are written out here on their own (not imported from the readers), so a
reader that gets them wrong fails its tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from handmocap.core.joints import reorder

# layout -> (images folder, annotations folder) of each official release, relative to the root
INTERHAND_DIRS = {
    "5fps": ("InterHand2.6M_5fps_batch1/images", "annotations"),
    "30fps": ("InterHand2.6M_30fps_batch1/images", "InterHand2.6M_30fps_batch1/annotations"),
    "flat": ("images", "annotations"),
}
FREIHAND_POSES = 32560  # training picture ids repeat every 32560 (one block per version)


@dataclass
class Camera:
    """One InterHand2.6M camera: world -> camera is ``R @ (X - campos)`` in millimetres."""

    name: str = "400262"
    R: np.ndarray = field(default_factory=lambda: np.eye(3))
    campos: np.ndarray = field(default_factory=lambda: np.zeros(3))  # mm
    focal: tuple[float, float] = (120.0, 120.0)
    princpt: tuple[float, float] = (40.0, 60.0)
    width: int = 80
    height: int = 120

    def K(self) -> np.ndarray:
        return np.array(
            [[self.focal[0], 0, self.princpt[0]], [0, self.focal[1], self.princpt[1]], [0, 0, 1]]
        )

    def to_world(self, points_m: np.ndarray) -> np.ndarray:
        """(..., 3) camera-frame metres -> world millimetres."""
        return points_m * 1000.0 @ np.asarray(self.R) + self.campos


@dataclass
class Frame:
    """One annotated picture of InterHand2.6M.

    ``joints``: side -> (21, 3) camera-frame metres in the project's order; or ``world``: the
    raw (42, 3) world millimetres in the file's order. ``valid``: side -> (21,) joint_valid in
    the project's order (default: the hand's side is labelled). ``mano``: side -> dict with
    pose (48), shape (10), trans (3), world frame.
    """

    hand_type: str
    joints: dict[str, np.ndarray] = field(default_factory=dict)
    world: np.ndarray | None = None
    valid: dict[str, np.ndarray] | None = None
    hand_type_valid: int = 1
    mano: dict[str, dict] | None = None
    capture: int = 0
    frame_idx: int = 10000
    seq_name: str = "0000_neutral_relaxed"
    picture: np.ndarray | None = None  # (H, W, 3) RGB instead of the dots

    def file_name(self, camera: Camera) -> str:
        return f"Capture{self.capture}/{self.seq_name}/cam{camera.name}/image{self.frame_idx}.jpg"


def _interhand_arrays(frame: Frame, camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """-> (42, 3) world mm and (42,) joint_valid, right hand first, InterHand2.6M's order."""
    world = np.zeros((42, 3))
    valid = np.zeros(42)
    sides = {"right": 0, "left": 21}
    for side, start in sides.items():
        if side in frame.joints:
            points = reorder(np.asarray(frame.joints[side], float), "project", "interhand")
            world[start : start + 21] = camera.to_world(points)
        present = frame.hand_type in (side, "interacting")
        flags = (frame.valid or {}).get(side, np.full(21, float(present)))
        flags = reorder(np.asarray(flags, float)[:, None], "project", "interhand")
        valid[start : start + 21] = flags[:, 0]
    if frame.world is not None:
        world = np.asarray(frame.world, float)
    return world, valid


def _dots(camera: Camera, world: np.ndarray, valid: np.ndarray) -> np.ndarray:
    picture = np.zeros((camera.height, camera.width, 3), np.uint8)
    cam = (world - camera.campos) @ np.asarray(camera.R).T
    for point, v in zip(cam, valid, strict=True):
        if v > 0 and point[2] > 0:
            u = camera.K() @ point
            cv2.circle(picture, (round(u[0] / u[2]), round(u[1] / u[2])), 1, (255, 255, 255), -1)
    return picture


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


def write_picture(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    bgr = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)
    assert cv2.imwrite(str(path), bgr, [cv2.IMWRITE_JPEG_QUALITY, 98])


def write_interhand(
    root: Path,
    frames: list[Frame],
    camera: Camera | None = None,
    split: str = "train",
    layout: str = "5fps",
    mano: bool = True,
) -> Path:
    """InterHand2.6M's four annotation files and the pictures of ``frames``; returns ``root``."""
    camera = camera or Camera()
    keys = [(f.capture, f.frame_idx) for f in frames]
    assert len(set(keys)) == len(keys), "one picture per (capture, frame_idx) and camera"
    image_dir, ann_dir = (root / d / split for d in INTERHAND_DIRS[layout])
    images, annotations, joints, fits = [], [], {}, {}
    for n, frame in enumerate(frames):
        world, valid = _interhand_arrays(frame, camera)
        picture = frame.picture if frame.picture is not None else _dots(camera, world, valid)
        write_picture(image_dir / frame.file_name(camera), picture)
        height, width = picture.shape[:2]
        images.append(
            {
                "id": n,
                "file_name": frame.file_name(camera),
                "width": width,
                "height": height,
                "capture": frame.capture,
                "subject": frame.capture + 1,
                "seq_name": frame.seq_name,
                "camera": camera.name,
                "frame_idx": frame.frame_idx,
            }
        )
        annotations.append(
            {
                "id": n,
                "image_id": n,
                "bbox": [0.0, 0.0, float(width), float(height)],
                "joint_valid": [[int(v)] for v in valid],
                "hand_type": frame.hand_type,
                "hand_type_valid": frame.hand_type_valid,
            }
        )
        joints.setdefault(str(frame.capture), {})[str(frame.frame_idx)] = {
            "world_coord": world.tolist(),
            "joint_valid": [[int(v)] for v in valid],
            "hand_type": frame.hand_type,
            "hand_type_valid": bool(frame.hand_type_valid),
        }
        fits.setdefault(str(frame.capture), {})[str(frame.frame_idx)] = {
            side: None
            if side not in (frame.mano or {})
            else {k: np.asarray(v, float).tolist() for k, v in frame.mano[side].items()}
            for side in ("right", "left")
        }
    prefix = ann_dir / f"InterHand2.6M_{split}"
    write_json(Path(f"{prefix}_data.json"), {"images": images, "annotations": annotations})
    captures = sorted({f.capture for f in frames}) or [0]
    write_json(
        Path(f"{prefix}_camera.json"),
        {
            str(c): {
                "campos": {camera.name: np.asarray(camera.campos, float).tolist()},
                "camrot": {camera.name: np.asarray(camera.R, float).tolist()},
                "focal": {camera.name: list(camera.focal)},
                "princpt": {camera.name: list(camera.princpt)},
            }
            for c in captures
        },
    )
    write_json(Path(f"{prefix}_joint_3d.json"), joints)
    if mano:
        write_json(Path(f"{prefix}_MANO_NeuralAnnot.json"), fits)
    return root


@dataclass
class Pose:
    """One FreiHAND pose: (21, 3) camera-frame metres (project order), K of the 224 picture,
    the 61 MANO values, and its pictures: one per version, None for dots, [] for no files."""

    xyz: np.ndarray
    K: np.ndarray
    mano: np.ndarray = field(default_factory=lambda: np.zeros(61))
    pictures: list[np.ndarray] | None = None


def freihand_dots(pose: Pose, shade: int = 0, size: int = 224) -> np.ndarray:
    picture = np.full((size, size, 3), shade, np.uint8)
    uv = pose.xyz @ np.asarray(pose.K).T
    for u, v, w in uv:
        cv2.circle(picture, (round(u / w), round(v / w)), 1, (255, 255, 255), -1)
    return picture


VERSION_SHADES = (0, 40, 80, 120)  # a background per version, to tell the pictures apart


def write_freihand(root: Path, poses: list[Pose], split: str = "training") -> Path:
    """FreiHAND's ``{split}_*.json`` files and pictures of ``poses``; returns ``root``."""
    write_json(root / f"{split}_xyz.json", [np.asarray(p.xyz, float).tolist() for p in poses])
    write_json(root / f"{split}_K.json", [np.asarray(p.K, float).tolist() for p in poses])
    write_json(root / f"{split}_mano.json", [[np.asarray(p.mano, float).tolist()] for p in poses])
    write_json(root / f"{split}_verts.json", [np.zeros((778, 3)).tolist() for _ in poses])
    bones = [float(np.linalg.norm(np.subtract(p.xyz[9], p.xyz[10]))) for p in poses]
    write_json(root / f"{split}_scale.json", bones)
    versions = 4 if split == "training" else 1
    for n, pose in enumerate(poses):
        if pose.pictures is not None and not pose.pictures:
            continue
        for v in range(versions):
            picture = pose.pictures[v] if pose.pictures else freihand_dots(pose, VERSION_SHADES[v])
            write_picture(root / split / "rgb" / f"{n + FREIHAND_POSES * v:08d}.jpg", picture)
        if split == "training":
            mask = (freihand_dots(pose) > 0).astype(np.uint8) * 255
            write_picture(root / split / "mask" / f"{n:08d}.jpg", mask)
    return root
