"""The demo job, as far as handmocap goes today: hand models -> performance -> take -> picture.

A synthetic two-hand performance (both open hand models moving through named poses in front of
a virtual camera) is written as a take, read back and checked, and drawn as a film strip: the
hands posed from the read-back take, seen through the take's camera, with the take's 2D
keypoints on top. Later issues replace the synthetic performance with capture from a bundled
video and add the Blender bake and FBX export.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from handmocap.core.handmodel import SIDES, HandLayer
from handmocap.core.picture import model_sheet
from handmocap.core.poses import named_pose
from handmocap.core.render import (
    SIDE_COLORS,
    Mesh,
    draw_meshes,
    draw_skeleton,
    label,
    perspective,
    save_png,
)
from handmocap.core.rotations import matrix_to_axis_angle
from handmocap.core.take import HandStatus, TakeManifest, TakeWriter, blank_frames, read_take

# Camera of the synthetic performance: 640x480 pixels, 600 px focal length.
WIDTH, HEIGHT, FOCAL, FPS = 640, 480, 600.0, 30.0

# Backs of the hands toward the camera, fingers up (model frame -> camera frame).
FACING_CAMERA = {
    "right": np.array([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]),
    "left": np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]),
}
WRIST_POSITION = {"right": (0.10, 0.10, 0.55), "left": (-0.10, 0.10, 0.55)}
KEY_POSES = {
    "right": ("flat", "fist", "point", "spread", "flat"),
    "left": ("spread", "pinch", "relaxed", "fist", "spread"),
}


@dataclass
class DemoResult:
    take_path: Path
    picture_path: Path
    model_picture_path: Path
    summary: dict


def _pose_track(side: str, n_frames: int) -> np.ndarray:
    """(T, 15, 3) finger poses moving through the side's key poses (slerp per joint)."""
    import roma

    keys = [torch.as_tensor(named_pose(n, side)) for n in KEY_POSES[side]]
    spans = np.array_split(np.arange(n_frames), len(keys) - 1)
    track = []
    for k, span in enumerate(spans):
        steps = torch.linspace(0, 1, len(span) + 1, dtype=torch.float64)[:-1]
        ease = 0.5 - 0.5 * torch.cos(np.pi * steps)
        track.append(roma.rotvec_slerp(keys[k], keys[k + 1], ease))
    return torch.cat(track).numpy()


def synthetic_performance(layer: HandLayer, n_frames: int = 90) -> dict[str, np.ndarray]:
    """Take frames (``take.ARRAY_FIELDS``) of both hands performing in front of the camera.

    The left hand drops out for a few frames (marked not detected), as it would in real footage.
    """
    from handmocap.core.rotations import axis_angle_to_matrix

    t = np.arange(n_frames)
    frames = blank_frames(t, t / FPS)
    for side in SIDES:
        sway = 0.25 * np.sin(2 * np.pi * t / n_frames)[:, None] * np.array([0.0, 1.0, 0.3])
        orient = matrix_to_axis_angle(axis_angle_to_matrix(sway) @ FACING_CAMERA[side])
        transl = np.asarray(WRIST_POSITION[side]) + 0.03 * np.stack(
            [np.sin(2 * np.pi * t / n_frames), np.cos(2 * np.pi * t / n_frames), 0 * t], 1
        )
        pose = _pose_track(side, n_frames)
        betas = np.full((n_frames, 10), 0.5 if side == "right" else -0.5)
        with torch.no_grad():
            out = layer(
                side,
                torch.as_tensor(orient, dtype=torch.float32),
                torch.as_tensor(pose, dtype=torch.float32),
                torch.as_tensor(betas, dtype=torch.float32),
                torch.zeros(n_frames, 3),
            )
        # The layer rotates about the wrist: place the wrist at the wanted point.
        wrist = out.joints[:, 0].numpy()
        shift = transl - wrist
        joints3d = out.keypoints.numpy() + shift[:, None]
        z = joints3d[..., 2:3]
        joints2d = joints3d[..., :2] / z * FOCAL + np.array([WIDTH / 2, HEIGHT / 2])
        present = np.ones(n_frames, bool)
        if side == "left":
            present[n_frames // 3 : n_frames // 3 + 6] = False
        p = present
        frames[f"{side}_present"] = present
        frames[f"{side}_status"] = np.where(present, HandStatus.OK, HandStatus.NOT_DETECTED)
        frames[f"{side}_score"][p] = 0.95
        frames[f"{side}_global_orient"][p] = orient[p]
        frames[f"{side}_hand_pose"][p] = pose[p]
        frames[f"{side}_betas"][p] = betas[p]
        frames[f"{side}_transl"][p] = shift[p]
        frames[f"{side}_joints3d"][p] = joints3d[p]
        frames[f"{side}_joints2d"][p] = joints2d[p]
    return frames


def render_take_frame(layer: HandLayer, take, frame: int) -> np.ndarray:
    """One frame of a take as the camera saw it: posed meshes plus the stored 2D keypoints."""
    m = take.manifest
    image = np.full((m.height, m.width, 3), 235, np.uint8)
    project = perspective(m.focal_length, m.width / 2, m.height / 2)
    meshes, skeletons = [], []
    for side in SIDES:
        hand = take.hand(side)
        if not hand["present"][frame]:
            continue
        with torch.no_grad():
            out = layer(
                side,
                *(
                    torch.tensor(hand[k][frame : frame + 1], dtype=torch.float32)
                    for k in ("global_orient", "hand_pose", "betas", "transl")
                ),
            )
        colors = np.tile(SIDE_COLORS[side], (layer.models[side].num_vertices, 1))
        meshes.append(Mesh(out.vertices[0].double().numpy(), layer.faces(side), colors))
        skeletons.append(hand["joints2d"][frame])
    draw_meshes(image, meshes, project)
    for kp in skeletons:
        draw_skeleton(image, kp, color=(20, 20, 20), radius=3, thickness=1)
    missing = [s for s in SIDES if not take.hand(s)["present"][frame]]
    text = f"frame {frame}" + (f"  ({', '.join(missing)} hand not detected)" if missing else "")
    return label(image, text, org=(10, 26), scale=0.7)


def film_strip(layer: HandLayer, take, frames: list[int], columns: int = 3) -> np.ndarray:
    """Several take frames side by side, half size, in rows of ``columns``."""
    import cv2

    tiles = [render_take_frame(layer, take, f) for f in frames]
    tiles = [cv2.resize(t, (t.shape[1] // 2, t.shape[0] // 2), interpolation=cv2.INTER_AREA)
             for t in tiles]  # fmt: skip
    while len(tiles) % columns:
        tiles.append(np.full_like(tiles[0], 255))
    rows = [np.concatenate(tiles[i : i + columns], 1) for i in range(0, len(tiles), columns)]
    return np.concatenate(rows, 0)


def run_demo(out_dir: Path, n_frames: int = 90) -> DemoResult:
    """Build the hand models, perform, write and re-read a take, check it, draw pictures."""
    out_dir.mkdir(parents=True, exist_ok=True)
    layer = HandLayer.from_models_dir(None, "openhand")
    frames = synthetic_performance(layer, n_frames)
    take_path = out_dir / "demo.take"
    if take_path.exists():  # a fresh take each run
        import shutil

        shutil.rmtree(take_path)
    manifest = TakeManifest(
        fps=FPS,
        width=WIDTH,
        height=HEIGHT,
        backend="synthetic",
        hand_model=layer.models["right"].model_id,
        focal_length=FOCAL,
        frame_count=n_frames,
        settings={"demo": "two open hands moving through named poses"},
    )
    with TakeWriter(take_path, manifest, chunk_size=32) as writer:
        for start in range(0, n_frames, 25):  # the capture appends in batches
            writer.append({k: v[start : start + 25] for k, v in frames.items()})
    take = read_take(take_path)
    for key, value in frames.items():
        if not np.array_equal(take.arrays[key], value, equal_nan=value.dtype.kind == "f"):
            raise RuntimeError(f"take read back differs from what was written in {key}")
    picture = out_dir / "demo.png"
    shown = np.linspace(0, n_frames - 1, 6).round().astype(int).tolist()
    shown[2] = n_frames // 3 + 2  # a frame where the left hand was not detected
    save_png(picture, film_strip(layer, take, sorted(shown)))
    model_picture = out_dir / "hand_model.png"
    save_png(model_picture, model_sheet(layer, cell=200))
    from handmocap.core.take import summarize

    return DemoResult(take_path, picture, model_picture, summarize(take))


DEMO_CLIP = Path(__file__).resolve().parent / "assets" / "demo" / "asl_hand.25fps.mp4"


@dataclass
class ClipResult:
    take_path: Path
    sheet_path: Path
    video_path: Path | None
    backend: str
    frames: int
    capture_seconds: float


def run_clip_demo(out_dir: Path, frames: int | None = None, video: bool = True, progress=None):
    """The real main job on the bundled clip: capture (best backend available), take,
    smoothing, and the preview video and contact sheet."""
    from handmocap.core.capture import CaptureSettings, capture
    from handmocap.core.handmodel import default_models_dir
    from handmocap.core.preview import contact_sheet, render_preview

    take_path = out_dir / "asl.take"
    settings = CaptureSettings(backend="auto", end=frames)
    report = capture(DEMO_CLIP, take_path, settings, default_models_dir(), progress, overwrite=True)
    take = read_take(take_path)
    kind = "mano" if take.manifest.hand_model.startswith("mano") else "openhand"
    layer = HandLayer.from_models_dir(default_models_dir(), kind)
    sheet = out_dir / "asl_sheet.png"
    save_png(sheet, contact_sheet(take, layer, smoothing="offline"))
    clip = out_dir / "asl_preview.mp4" if video else None
    if clip is not None:
        render_preview(take, layer, clip, smoothing="offline")
    return ClipResult(take_path, sheet, clip, report.backend, report.frames, report.seconds)
