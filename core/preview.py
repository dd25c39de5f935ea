"""Preview of a take: the reconstructed hands drawn over the original frames.

``write_preview`` writes an H.264 video (PyAV) of the footage with each hand's shaded mesh,
its outline and its 21 keypoints on top (left and right in different colours), after the
chosen smoothing, and a contact sheet of evenly spaced frames of the same, so a person can
judge a capture at a glance; one pass over the footage gives both.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from handmocap.core.errors import HandmocapError
from handmocap.core.handmodel import HandLayer
from handmocap.core.observation import SIDES, HandObservation, project
from handmocap.core.overlay import draw_overlay
from handmocap.core.render import label
from handmocap.core.smoothing import smooth_hand
from handmocap.core.take import Take

PREVIEW_HEIGHT = 720  # previews of taller footage are drawn at this height (a proxy, as editors do)


def posed_hands(take: Take, layer: HandLayer, smoothing: str = "offline") -> list[dict]:
    """Per frame of the take: side -> HandObservation (vertices included), after smoothing.

    Frames where a hand is neither present nor bridged by the smoother hold no entry for it.
    """
    m = take.manifest
    center = np.array([m.width / 2.0, m.height / 2.0])
    frames: list[dict] = [{} for _ in range(take.num_frames)]
    for side in SIDES:
        hand = take.hand(side)
        smoothed = smooth_hand(hand, m.fps, smoothing)
        rows = np.flatnonzero(smoothed["valid"])
        for start in range(0, len(rows), 256):  # bounded memory on long takes
            chunk = rows[start : start + 256]
            params = [
                torch.tensor(np.asarray(smoothed[k][chunk], dtype=np.float32))
                for k in ("global_orient", "hand_pose", "betas", "transl")
            ]
            with torch.no_grad():
                out = layer(side, *params)
            for k, t in enumerate(chunk):
                joints3d = out.keypoints[k].double().numpy()
                frames[t][side] = HandObservation(
                    side=side,
                    score=float(hand["score"][t]) if hand["present"][t] else 0.0,
                    global_orient=params[0][k].double().numpy(),
                    hand_pose=params[1][k].double().numpy(),
                    betas=params[2][k].double().numpy(),
                    transl=params[3][k].double().numpy(),
                    joints3d=joints3d,
                    joints2d=project(joints3d, m.focal_length, center),
                    vertices=out.vertices[k].double().numpy(),
                )
    return frames


def _source_frames(take: Take, height: int | None = None) -> Iterator:
    from handmocap.core.video import open_source

    m = take.manifest
    if m.source is None:
        raise HandmocapError(f"{take.path}: the take records no source footage to draw on")
    path = Path(m.source.path)
    if not path.exists():
        raise HandmocapError(f"{take.path}: its footage {path} is not there any more")
    source = open_source(path)
    first = int(take.arrays["frame_index"][0]) if take.num_frames else 0
    last = int(take.arrays["frame_index"][-1]) + 1 if take.num_frames else 0
    with source.frames(first, last, height=height) as stream:
        yield from stream


def overlay_frames(
    take: Take,
    layer: HandLayer,
    smoothing: str = "offline",
    only: set[int] | None = None,
    height: int | None = PREVIEW_HEIGHT,
) -> Iterator:
    """(frame index, RGB image with the hands drawn) for every frame of the take, or for the
    frame indices in ``only`` (the others are decoded but not drawn); frames taller than
    ``height`` are drawn scaled down to it (None: the footage's size)."""
    hands = posed_hands(take, layer, smoothing)
    row_of = {int(i): r for r, i in enumerate(take.arrays["frame_index"])}
    m = take.manifest
    faces = {s: layer.faces(s, drawing=True) for s in SIDES}
    center = (m.width / 2.0, m.height / 2.0)

    for frame in _source_frames(take, height):
        r = row_of.get(frame.index)
        if r is None or (only is not None and frame.index not in only):
            continue
        scale = frame.image.shape[0] / m.height  # the camera of the scaled frame
        here = hands[r]
        if scale != 1.0:
            here = {s: replace(h, joints2d=h.joints2d * scale) for s, h in here.items()}
        focal, middle = m.focal_length * scale, (center[0] * scale, center[1] * scale)
        image = draw_overlay(frame.image, here, faces, focal, middle, copy=False)
        yield frame.index, label(image, f"frame {frame.index}", org=(10, 30), scale=0.8)


def sheet_frames(take: Take, count: int = 12) -> set[int]:
    """Frame indices of ``count`` evenly spaced frames of the take."""
    if take.num_frames == 0:
        raise HandmocapError(f"{take.path}: the take holds no frames")
    rows = np.linspace(0, take.num_frames - 1, min(count, take.num_frames)).round().astype(int)
    return {int(take.arrays["frame_index"][r]) for r in set(rows)}


def tile_sheet(tiles: list[np.ndarray], columns: int, width: int) -> np.ndarray:
    """Images in a grid of ``columns``, each scaled to ``width // columns`` pixels wide."""
    import cv2

    tile_w = width // columns
    tiles = [
        cv2.resize(
            t, (tile_w, round(t.shape[0] * tile_w / t.shape[1])), interpolation=cv2.INTER_AREA
        )
        for t in tiles
    ]
    while len(tiles) % columns:
        tiles.append(np.full_like(tiles[0], 255))
    rows = [np.concatenate(tiles[i : i + columns], 1) for i in range(0, len(tiles), columns)]
    return np.concatenate(rows, 0)


@dataclass
class Preview:
    frames: int  # frames written to the video (0 without one)
    sheet: np.ndarray | None  # the contact sheet, RGB


def write_preview(
    take: Take,
    layer: HandLayer,
    video: Path | None = None,
    sheet: bool = True,
    smoothing: str = "offline",
    count: int = 12,
    columns: int = 4,
    width: int = 1600,
    height: int | None = PREVIEW_HEIGHT,
) -> Preview:
    """The overlay video (H.264 at the take's frame rate, at most ``height`` pixels tall;
    None: the footage's size) and/or the contact sheet of ``count`` evenly spaced frames, in
    one pass over the footage."""
    from fractions import Fraction

    import av
    import cv2

    wanted = sheet_frames(take, count) if sheet else set()
    tiles, written = [], 0
    container = stream = None
    if video is not None:
        video.parent.mkdir(parents=True, exist_ok=True)
        container = av.open(str(video), "w")
    try:
        only = None if video is not None else wanted
        for index, image in overlay_frames(take, layer, smoothing, only, height):
            if index in wanted:
                tiles.append(image.copy())
            if container is None:
                continue
            if stream is None:  # sized by the first frame as drawn (4:2:0 wants even sizes)
                rate = Fraction(take.manifest.fps).limit_denominator(1001)
                stream = container.add_stream("libx264", rate=rate)
                stream.height, stream.width = (n - n % 2 for n in image.shape[:2])
                stream.pix_fmt = "yuv420p"
                stream.options = {"crf": "22", "preset": "ultrafast"}
            # OpenCV's conversion to the encoder's YUV 4:2:0 is many times FFmpeg's speed
            yuv = cv2.cvtColor(image[: stream.height, : stream.width], cv2.COLOR_RGB2YUV_I420)
            for packet in stream.encode(av.VideoFrame.from_ndarray(yuv, format="yuv420p")):
                container.mux(packet)
            written += 1
        if stream is not None:
            for packet in stream.encode():
                container.mux(packet)
    finally:
        if container is not None:
            container.close()
    return Preview(written, tile_sheet(tiles, columns, width) if tiles else None)
