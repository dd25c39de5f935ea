"""The ``mediapipe`` backend: MediaPipe's hand landmarks, fitted to the hand model.

Works on real footage without any licensed file: the mediapipe 0.10.21 wheel carries its palm
detector and hand landmark models, which run offline on the CPU. Each frame gives up to two
hands with 21 landmarks in pixels and in metres (MediaPipe's "world" landmarks, centred on the
hand); ``fitting.HandFitter`` turns them into the hand model's parameters.

Handedness: MediaPipe labels hands as if the image were mirrored (a selfie camera), so for
ordinary footage its "Left" is the person's right hand. ``mirrored=True`` is for selfie footage.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from handmocap.core.errors import HandmocapError
from handmocap.core.observation import SIDES, Frame, HandObservation, project

if TYPE_CHECKING:  # torch and the fit load when a backend is built, not with this module
    from handmocap.core.fitting import FitSettings, KeypointTrack
    from handmocap.core.handmodel import HandLayer

# Without a focal length from the user or the video, assume a 65 degree field of view across
# the frame's longer side (typical of phone and webcam footage).
DEFAULT_FOV_DEGREES = 65.0
MAX_SIDE = 1280  # longest side of the frames given to MediaPipe (see MediaPipeBackend.prepare)
SEARCH_EVERY = 15  # frames between looks for a second hand (see MediaPipeBackend.landmark_chunk)
INSTALL_HINT = (
    "the mediapipe backend needs mediapipe 0.10.21: make test / make demo install it into .venv; "
    "elsewhere: pip install --no-deps mediapipe==0.10.21 absl-py attrs flatbuffers "
    "'protobuf>=4.25.3,<5' matplotlib"
)


def default_focal(height: int, width: int) -> float:
    return max(height, width) / 2 / np.tan(np.radians(DEFAULT_FOV_DEGREES) / 2)


def frame_camera(frame_shape, focal: float | None = None) -> tuple[float, np.ndarray]:
    """(focal px, principal point px) of a frame's camera: ``focal``, or a field of view of
    ``DEFAULT_FOV_DEGREES`` across the longer side; the optical centre in the middle."""
    h, w = frame_shape[:2]
    return (focal if focal is not None else default_focal(h, w)), np.array([w / 2.0, h / 2.0])


@dataclass
class Landmarks:
    """One hand found by MediaPipe in one frame (project keypoint order = MediaPipe's)."""

    side: str  # "left" or "right": the person's hand
    score: float  # handedness confidence
    pixels: np.ndarray  # (21, 2)
    world: np.ndarray  # (21, 3) metres, origin near the hand's centre


class MediaPipeLandmarker:
    """MediaPipe Hands: video mode tracks hands from frame to frame; image mode does not."""

    def __init__(
        self,
        video: bool = True,
        max_hands: int = 2,
        complexity: int = 1,
        min_detection: float = 0.5,
        min_tracking: float = 0.5,
        mirrored: bool = False,
    ):
        try:
            import mediapipe as mp
        except ImportError as exc:
            raise HandmocapError(INSTALL_HINT) from exc
        self.mirrored = mirrored
        self._hands = mp.solutions.hands.Hands(
            static_image_mode=not video,
            max_num_hands=max_hands,
            model_complexity=complexity,
            min_detection_confidence=min_detection,
            min_tracking_confidence=min_tracking,
        )

    def close(self) -> None:
        self._hands.close()

    def reset(self) -> None:
        """Forget the frames seen: the next one is the first of a new video."""
        self._hands.reset()

    def __enter__(self) -> MediaPipeLandmarker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __call__(self, frame: np.ndarray) -> list[Landmarks]:
        """RGB uint8 (H, W, 3) -> the hands found, at most one per side."""
        h, w = frame.shape[:2]
        result = self._hands.process(np.ascontiguousarray(frame))
        hands = []
        for label, image_lm, world_lm in zip(
            result.multi_handedness or [],
            result.multi_hand_landmarks or [],
            result.multi_hand_world_landmarks or [],
            strict=True,
        ):
            c = label.classification[0]
            side = c.label.lower()
            if not self.mirrored:
                side = "right" if side == "left" else "left"
            px = np.array([[p.x * w, p.y * h] for p in image_lm.landmark], dtype=np.float64)
            world = np.array([[p.x, p.y, p.z] for p in world_lm.landmark], dtype=np.float64)
            hands.append(Landmarks(side, float(c.score), px, world))
        return one_per_side(hands)


def one_per_side(hands: list[Landmarks]) -> list[Landmarks]:
    """When two hands claim the same side, the surer keeps it and the other takes the free one.

    With two hands in view they are almost always a left and a right; MediaPipe's handedness is
    the weaker of its two outputs. Tracking (a later stage) repairs identities over time.
    """
    if len(hands) == 2 and hands[0].side == hands[1].side:
        weaker = min(hands, key=lambda h: h.score)
        weaker.side = "left" if weaker.side == "right" else "right"
    return hands


class MediaPipeHands:
    """MediaPipe's landmarks chunk by chunk, for video: no hand model, no torch, so a capture
    can start them before it loads the rest."""

    def __init__(self, mirrored: bool = False, search_every: int = SEARCH_EVERY):
        self.mirrored = mirrored
        self.search_every = search_every
        self._local = threading.local()  # each thread its own landmarkers
        self._made: list[MediaPipeLandmarker] = []
        self._lock = threading.Lock()

    _KINDS = {"both": (True, 2), "one": (True, 1), "search": (False, 2)}  # video?, hands

    def _graph(self, kind: str) -> MediaPipeLandmarker:
        """This thread's landmarker of that kind, started afresh (a reset is as good as a new
        one, and cheaper: the models stay loaded)."""
        graphs = self._local.__dict__.setdefault("graphs", {})
        graph = graphs.get(kind)
        if graph is None:
            video, hands = self._KINDS[kind]
            graph = MediaPipeLandmarker(video=video, max_hands=hands, mirrored=self.mirrored)
            graphs[kind] = graph
            with self._lock:
                self._made.append(graph)
        else:
            graph.reset()
        return graph

    def close(self) -> None:
        """Close every landmarker the threads made."""
        with self._lock:
            for graph in self._made:
                graph.close()
            self._made.clear()
        self._local = threading.local()

    def __enter__(self) -> MediaPipeHands:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def prepare(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """A frame as the landmarker needs it: at most ``MAX_SIDE`` pixels on its longer side
        (MediaPipe looks at 192 and 224 pixel crops; this bounds memory on 4K footage), with
        the factor back to the frame's pixels."""
        long_side = max(image.shape[:2])
        if long_side <= MAX_SIDE:
            return image, 1.0
        import cv2

        scale = MAX_SIDE / long_side
        size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA), 1.0 / scale

    def landmark_chunk(self, prepared: list) -> list[list[Landmarks]]:
        """Landmarks of consecutive frames (from ``prepare``) with landmarkers of their own.

        MediaPipe tracks hands from frame to frame; starting it afresh for each chunk makes a
        chunk's landmarks depend on its own frames only, so chunks can run side by side (on
        threads: MediaPipe releases the GIL while it infers) and a resumed capture sees the
        same landmarks.

        While it tracks fewer than two hands, MediaPipe looks for more with its palm detector
        on every frame, which doubles the work when one hand is in view. Here a one-hand
        landmarker follows the hand instead, and a two-hand one looks for a second hand every
        ``search_every`` frames; when it finds one, the frames since its last look are
        landmarked again with both hands (so no frame misses the new hand), and the two-hand
        landmarker goes on until a hand is lost. Frames are let go once no look can return
        to them, which bounds memory.
        """
        n, every = len(prepared), max(1, self.search_every)
        out: list[list[Landmarks]] = [[] for _ in range(n)]

        def run(graph: MediaPipeLandmarker, k: int) -> list[Landmarks]:
            image, back = prepared[k]
            hands = graph(image)
            for hand in hands:
                hand.pixels = hand.pixels * back
            return hands

        both, one = self._graph("both"), None
        looked = 0  # the last frame searched for a second hand while one hand was followed
        k = freed = 0
        while k < n:
            if one is None:  # both hands followed, or none: MediaPipe as it is
                out[k] = run(both, k)
                if len(out[k]) == 1 and every > 1:  # follow it alone
                    one, looked = self._graph("one"), k
            else:
                out[k] = run(one, k)
                again = None
                if not out[k]:  # lost: MediaPipe as it is from this frame
                    again = k
                elif k - looked >= every:
                    if len(run(self._graph("search"), k)) >= 2:  # a second hand: from the last
                        again = looked + 1  # search on, both hands followed
                    looked = k
                if again is not None:
                    one, both = None, self._graph("both")
                    for j in range(again, k + 1):
                        out[j] = run(both, j)
            keep = looked + 1 if one is not None else k + 1  # no search goes back further
            while freed < keep:
                prepared[freed] = None
                freed += 1
            k += 1
        return out


class MediaPipeBackend:
    """Callable: list of RGB frames (consecutive, for video) -> one ``Frame`` per frame."""

    name = "mediapipe"

    def __init__(
        self,
        hand_layer: HandLayer,
        video: bool = True,
        focal: float | None = None,
        mirrored: bool = False,
        fit: FitSettings | None = None,
        device="cpu",
        search_every: int = SEARCH_EVERY,
    ):
        from handmocap.core.fitting import FitSettings, HandFitter

        self.layer = hand_layer
        self.hands = MediaPipeHands(mirrored, search_every)
        self.focal = focal
        self.fit_settings = fit if fit is not None else FitSettings()
        self.landmarker = MediaPipeLandmarker(video=video, mirrored=mirrored)
        self.fitters = {s: HandFitter(hand_layer.models[s], device) for s in SIDES}

    @classmethod
    def from_models_dir(cls, models_dir=None, **kwargs) -> MediaPipeBackend:
        """MediaPipe with the configured hand model (MANO when present, else the open model)."""
        from handmocap.core.handmodel import HandLayer

        return cls(HandLayer.from_models_dir(models_dir, "auto"), **kwargs)

    def camera(self, frame_shape) -> tuple[float, np.ndarray]:
        return frame_camera(frame_shape, self.focal)

    def landmarks(self, frames) -> list[list[Landmarks]]:
        return [self.landmarker(np.asarray(f)) for f in frames]

    def prepare(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        return self.hands.prepare(image)

    def landmark_chunk(self, prepared: list) -> list[list[Landmarks]]:
        return self.hands.landmark_chunk(prepared)

    def __call__(self, frames) -> list[Frame]:
        """Landmarks (sides as MediaPipe says, corrected for mirroring), then the fit."""
        if not frames:
            return []
        found = [{h.side: h for h in hands} for hands in self.landmarks(frames)]
        return self.fit_hands(found, np.asarray(frames[0]).shape)

    def fit_hands(
        self, hands: list[dict[str, Landmarks]], frame_shape, shapes: dict | None = None
    ) -> list[Frame]:
        """Landmarks already assigned to sides (e.g. by the tracker) -> observations.

        Each side's landmarks over the frames are fitted in one batch, with its own hand model;
        ``shapes`` gives a side's shape (betas) when it is already known.
        """
        results: list[Frame] = [{} for _ in hands]
        focal, center = self.camera(frame_shape)
        for side in SIDES:
            found = [[h[side]] if side in h else [] for h in hands]
            track = track_from_landmarks(found, None, focal, center)
            if track is None:
                continue
            known = None if shapes is None else shapes.get(side)
            fitted = self.fitters[side].fit(track, self.fit_settings, known)
            for t in np.flatnonzero(track.valid):
                joints3d = fitted.keypoints[t]
                results[t][side] = HandObservation(
                    side=side,
                    score=hands[t][side].score,
                    global_orient=fitted.global_orient[t],
                    hand_pose=fitted.hand_pose[t],
                    betas=fitted.betas,
                    transl=fitted.transl[t],
                    joints3d=joints3d,
                    joints2d=project(joints3d, focal, center),
                )
        self._add_vertices(results)
        return results

    def _add_vertices(self, results: list[Frame]) -> None:
        """Posed meshes for the observations (for overlays and previews)."""
        import torch

        for side in SIDES:
            rows = [t for t, frame in enumerate(results) if side in frame]
            if not rows:
                continue
            obs = [results[t][side] for t in rows]
            with torch.no_grad():
                out = self.layer(
                    side,
                    *(torch.tensor(np.stack([getattr(o, k) for o in obs]), dtype=torch.float32)
                      for k in ("global_orient", "hand_pose", "betas", "transl")),
                )  # fmt: skip
            for o, v in zip(obs, out.vertices.double().numpy(), strict=True):
                o.vertices = v


def track_from_landmarks(found, side: str | None, focal: float, center) -> KeypointTrack | None:
    """One side's landmarks over the frames as a KeypointTrack (None if never seen).

    ``found[t]`` lists frame t's hands; ``side=None`` takes every hand listed (at most one).
    """
    t = len(found)
    world = np.full((t, 21, 3), np.nan)
    pixels = np.full((t, 21, 2), np.nan)
    valid = np.zeros(t, dtype=bool)
    for i, hands in enumerate(found):
        for hand in hands:
            if side is None or hand.side == side:
                world[i], pixels[i], valid[i] = hand.world, hand.pixels, True
    if not valid.any():
        return None
    from handmocap.core.fitting import KeypointTrack

    return KeypointTrack(world=world, pixels=pixels, valid=valid, focal=focal, center=tuple(center))
