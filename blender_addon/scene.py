"""A take in Blender: the camera that filmed it with the footage behind, and both hands baked.

Looking through the camera, the hands lie on the hands in the video: the camera has the take's
focal length (Blender's sensor spans the frame's longer side) and the frame's size, and the
hands hang from it in the take's camera frame (OpenCV axes: x right, y down, z forward, turned
into Blender's camera axes: y up, z back). Frame ``i`` of the video is scene frame ``i + 1``.

A hand's animation is one Action per take and hand (``TAKE.left``, ``TAKE.right``); frames where
the hand is neither seen nor bridged by the smoother hide its mesh (``TAKE.left.visible``).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import bpy
import numpy as np

from handmocap.blender_addon.anim import CONSTANT, new_action, write_curves
from handmocap.blender_addon.build import bake_bones, build_armature, build_mesh
from handmocap.blender_addon.retarget import HandMotion
from handmocap.core.errors import HandmocapError
from handmocap.core.handdata import HandModelData
from handmocap.core.rig import Rig, build_rig, pose_to_bones
from handmocap.core.rotations import quat_make_continuous
from handmocap.core.smoothing import smooth_hand
from handmocap.core.take import Take

SENSOR_MM = 36.0
# the take's camera axes (OpenCV) in Blender's camera axes: a half turn about x, as (w, x, y, z)
CAMERA_FROM_OPENCV = (0.0, 1.0, 0.0, 0.0)


@dataclass
class BakedTake:
    camera: bpy.types.Object
    hands: dict = field(default_factory=dict)  # side -> (armature, mesh)
    frames: tuple[int, int] = (1, 1)  # scene frame range
    missing: list[str] = field(default_factory=list)  # sides never seen
    motions: dict = field(default_factory=dict)  # side -> retarget.HandMotion, for retargeting


TAKE_KEY = "handmocap_take"  # custom property: the take (its path) an object was built from
SIDE_KEY = "handmocap_side"  # custom property of a hand's armature and mesh: left or right
BETAS_KEY = "handmocap_betas"  # custom property of a hand's armature: the shape it was built with


def build_camera(
    take: Take, name: str = "handmocap camera", collection: bpy.types.Collection | None = None
) -> bpy.types.Object:
    """The camera of the take, level and looking along +Y, with its footage as background."""
    m = take.manifest
    scene = bpy.context.scene
    camera = bpy.data.cameras.new(name)
    camera.sensor_fit = "AUTO"  # the sensor width spans the longer side of the frame
    camera.sensor_width = SENSOR_MM
    camera.lens = m.focal_length * SENSOR_MM / max(m.width, m.height)
    obj = bpy.data.objects.new(name, camera)
    (collection or scene.collection).objects.link(obj)
    obj.rotation_euler = (math.pi / 2, 0.0, 0.0)
    scene.camera = obj
    scene.render.resolution_x, scene.render.resolution_y = m.width, m.height
    scene.render.resolution_percentage = 100
    scene.render.pixel_aspect_x = scene.render.pixel_aspect_y = 1.0
    fps = round(m.fps)
    scene.render.fps, scene.render.fps_base = fps, fps / m.fps
    source = Path(m.source.path) if m.source is not None else None
    if source is not None and source.is_file():
        clip = bpy.data.movieclips.load(str(source), check_existing=True)
        clip.frame_start = 1
        camera.show_background_images = True
        background = camera.background_images.new()
        background.source = "MOVIE_CLIP"
        background.clip = clip
        background.alpha = 1.0
    return obj


@dataclass
class HandKeys:
    """One hand's keys for a take: the rig (shaped by ``betas``) and its bones per frame."""

    rig: Rig
    frames: np.ndarray  # (T,) scene frames of every take frame
    valid: np.ndarray  # (T,) bool: the hand is there (seen, or bridged by smoothing)
    quats: np.ndarray  # (V, 16, 4) bone rotations on the valid frames, sign-continuous
    location: np.ndarray  # (V, 3) the root bone's location on the valid frames
    motion: HandMotion  # the finger poses, for retargeting


def hand_keys(
    take: Take,
    side: str,
    model: HandModelData,
    smoothing: str = "offline",
    betas=None,
    **settings,
) -> HandKeys | None:
    """Smooth one hand of ``take`` (``smoothing``: a preset or method, ``settings`` its
    overrides) and pose its rig; None when the hand is never there. ``betas``: the shape of an
    existing rig, else the median of the smoothed shapes."""  # fmt: skip
    smoothed = smooth_hand(take.hand(side), take.manifest.fps, smoothing, **settings)
    valid = np.asarray(smoothed["valid"], dtype=bool)
    if not valid.any():
        return None
    if betas is None:
        betas = np.median(np.asarray(smoothed["betas"])[valid], axis=0)
    rig = build_rig(model, np.asarray(betas, dtype=np.float64))
    orient, pose, transl = (np.asarray(smoothed[k], dtype=np.float64)[valid]
                            for k in ("global_orient", "hand_pose", "transl"))  # fmt: skip
    quats, location = pose_to_bones(rig, orient, pose, transl)
    frames = np.asarray(take.arrays["frame_index"], dtype=np.int64) + 1
    motion = HandMotion(rig, frames[valid], pose)
    return HandKeys(rig, frames, valid, quat_make_continuous(quats), location, motion)


def key_hand(armature: bpy.types.Object, mesh: bpy.types.Object, name: str, keys: HandKeys):
    """Key a built hand: its bones into Action ``name``, its mesh's visibility into
    ``name.visible`` (hidden where the hand is not there). Earlier Actions stay in the file."""
    bake_bones(armature, keys.rig, name, keys.frames[keys.valid], keys.quats, keys.location)
    _, fcurves = new_action(mesh, f"{name}.visible")
    hidden = (~keys.valid).astype(np.float32)[:, None]
    for path in ("hide_viewport", "hide_render"):
        write_curves(fcurves, path, "visibility", keys.frames, hidden, CONSTANT)


def bake_take(
    take: Take,
    models: dict[str, HandModelData],
    smoothing: str = "offline",
    collection: bpy.types.Collection | None = None,
    **settings,
) -> BakedTake:
    """Build the camera and both hands of ``take`` in the current scene (in ``collection``,
    else the scene's) and key them; objects carry the take's path (``TAKE_KEY``)."""  # fmt: skip
    name = take.path.stem
    camera = build_camera(take, collection=collection)
    rows = np.asarray(take.arrays["frame_index"], dtype=np.int64)
    if len(rows) == 0:
        raise HandmocapError(f"{take.path}: the take holds no frames")
    camera[TAKE_KEY] = str(take.path)
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = int(rows[0]) + 1, int(rows[-1]) + 1
    baked = BakedTake(camera, frames=(scene.frame_start, scene.frame_end))
    for side, model in models.items():
        keys = hand_keys(take, side, model, smoothing, **settings)
        if keys is None:
            baked.missing.append(side)
            continue
        armature = build_armature(f"{name} {side} hand", keys.rig, collection)
        armature.parent = camera
        armature.rotation_mode = "QUATERNION"
        armature.rotation_quaternion = CAMERA_FROM_OPENCV
        mesh = build_mesh(f"{name} {side} hand mesh", model, keys.rig, armature, collection)
        for obj in (armature, mesh):
            obj[TAKE_KEY], obj[SIDE_KEY] = str(take.path), side
        armature[BETAS_KEY] = [float(b) for b in keys.rig.betas]
        key_hand(armature, mesh, f"{name}.{side}", keys)
        baked.motions[side] = keys.motion
        baked.hands[side] = (armature, mesh)
    return baked


@contextlib.contextmanager
def quiet():
    """Blender's own chatter (reading, saving, exporting: from C and from Python) kept off the
    standard output, where the command line reports; its errors still raise."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
            os.dup2(null.fileno(), 1)
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def write_whole(path: Path, write, what: str) -> None:
    """Run ``write(temp)`` on a file beside ``path``, then rename it to ``path``: the file is
    there whole or not at all (``what`` names the writer in the error)."""
    path = Path(path)
    temp = path.with_name(f".{path.stem}.writing{path.suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with quiet():
            write(temp)
        if not temp.is_file():
            raise HandmocapError(f"{path}: {what} wrote nothing")
        os.replace(temp, path)
    except OSError as exc:
        raise HandmocapError(f"{path}: cannot write it ({exc.strerror or exc})") from None
    finally:
        if temp.exists():
            temp.unlink()


def save_blend(path: Path) -> None:
    """Save the scene to ``path``, whole or not at all."""
    write_whole(
        path,
        lambda temp: bpy.ops.wm.save_as_mainfile(
            filepath=str(temp), check_existing=False, copy=True
        ),
        "Blender",
    )
