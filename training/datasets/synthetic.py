"""A synthetic two-hand dataset: the open hand model posed at random and rendered by Blender.

Each sample shows one or two hands of the hand model (``openhand``) in random poses within the
skeleton's joint limits, sometimes close together (interaction), sometimes across the frame
border (truncation) or behind a box or a stick (occlusion), with random skin tones, lights and
backgrounds, and carries every label of ``training.sample``: 2D and 3D keypoints, hand model
parameters, the 33-class part segmentation (so DIR's hand masks, ``sample.hand_masks``), DIR's
dense map; ACR's centre maps are built from the keypoints at training time (``targets``).

Renderer: Blender's Cycles on the CPU, through the ``bpy`` module (a pinned dependency of the
project for the add-on's tests). It is maintained, renders headless with neither a GPU nor
OpenGL (this machine has no EGL or OSMesa, so pyrender and moderngl cannot run here), and gives
the labels from the same render as the picture: the part classes from the material index pass
(each part's material has its class as ``pass_index``), hand depth from the depth pass, and the
dense map from a colour AOV divided by a coverage AOV (``synthetic_render``). One long-lived
bpy process per worker builds the scene once and per sample only moves vertices and changes
colours, lights and the camera. Backgrounds are composited under the transparent film here, so
they cost nothing to render. Speed on this 2-core machine (shared with other work; 8 samples per
pixel, OIDN denoising, one worker on both cores): about 3 images/s at 128 px and 1.3 to 1.5
images/s at 256 px, scene planning overlapped with rendering.

Geometry is posed here with ``HandLayer`` (torch) and crosses to Blender as arrays; Blender's
camera is set from the same intrinsics ``K`` (OpenCV axes, pixel centres at +0.5 as in
``augment``) that project the keypoints, so the labels sit on the rendered hands.

On disk: ``manifest.json`` and shards ``shard_00000.npz`` of ``shard_size`` samples each. A
shard holds the images as JPEG, the part segmentation and dense maps as PNG (byte blobs with
offsets) and the labels as stacked arrays, stored uncompressed so that the reader memory-maps
them. Sample ``i`` depends only on ``(seed, i)``, so a generation that stops keeps its finished
shards (each written atomically) and a new run with the same arguments finishes the rest.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from handmocap.core.errors import HandmocapError
from handmocap.training.sample import (
    LEFT_PART_OFFSET,
    RIGHT_PART_OFFSET,
    SIDES,
    dense_colors,
    empty_sample,
)

FORMAT = "handmocap-synthetic"
VERSION = 1
MANIFEST = "manifest.json"
RENDERER = "Blender Cycles (CPU) through the bpy module"
HAND_MODEL_KIND = "openhand"
VISIBLE_DEPTH = 0.025  # m: a keypoint is hidden when a surface lies this much in front of it
CLOSE_DISTANCE = 0.03  # m: two hands nearer than this (closest vertices) are interacting
CONTACT_GAP = 0.004  # m: hands placed together are pushed apart until this far
LABEL_KEYS = tuple(k for k in empty_sample(1) if k not in ("image", "part_seg", "dense"))
EXTRA_KEYS = ("joints_visible", "truncated", "occluded", "hand_distance")
ProgressFn = Callable[[int, int, float], None]


@dataclass(frozen=True)
class SceneOptions:
    """How scenes are drawn at random, and how Cycles renders them."""

    two_hands: float = 0.6  # share of scenes with both hands
    interaction: float = 0.6  # share of two-hand scenes whose hands are placed together
    truncation: float = 0.2  # share of hands placed across the frame border
    occluder: float = 0.25  # share of scenes with an object in front of a hand
    fov_degrees: tuple[float, float] = (30.0, 60.0)  # horizontal field of view
    hand_fraction: tuple[float, float] = (0.3, 0.75)  # hand length / image side
    samples: int = 8  # Cycles samples per pixel
    denoise: bool = True  # OpenImageDenoise on the picture (the passes are not denoised)


# ---------------------------------------------------------------------------------------------
# Random scenes


@dataclass
class PosedHand:
    """One hand of a scene: parameters (``HandLayer`` convention) and the posed surface."""

    side: str
    global_orient: np.ndarray  # (3,)
    hand_pose: np.ndarray  # (15, 3)
    betas: np.ndarray  # (10,)
    transl: np.ndarray  # (3,)
    vertices: np.ndarray  # (V, 3) camera frame, metres
    keypoints: np.ndarray  # (21, 3)

    def move(self, offset: np.ndarray) -> None:
        self.transl = self.transl + offset
        self.vertices = self.vertices + offset
        self.keypoints = self.keypoints + offset


@dataclass
class Scene:
    """Everything one picture needs, in the OpenCV camera frame."""

    size: int
    camera: np.ndarray  # (3, 3) K
    hands: dict[str, PosedHand]
    skin: dict[str, tuple[np.ndarray, float]]  # linear RGB, roughness
    lights: list[dict]
    ambient: np.ndarray
    ambient_strength: float
    occluders: list[dict] = field(default_factory=list)
    seed: int = 0

    def request(self, options: SceneOptions) -> dict:
        """The message ``synthetic_render`` renders."""
        centre = np.mean([h.keypoints.mean(0) for h in self.hands.values()], axis=0)
        return {
            "kind": "render",
            "size": self.size,
            "camera": self.camera,
            "vertices": {s: h.vertices.astype(np.float32) for s, h in self.hands.items()},
            "skin": self.skin,
            "lights": self.lights,
            "target": centre,
            "ambient": self.ambient,
            "ambient_strength": self.ambient_strength,
            "occluders": self.occluders,
            "samples": options.samples,
            "seed": self.seed,
        }


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """(3,) axis-angle of a rotation drawn uniformly (a normalised Gaussian quaternion)."""
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    q *= np.sign(q[0]) or 1.0
    angle = 2 * math.acos(min(q[0], 1.0))
    axis = q[1:] / max(np.linalg.norm(q[1:]), 1e-12)
    return axis * angle


def random_angles(limits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(15, 3, 2) joint limits -> (15, 3) random (flexion, abduction, twist) in radians.

    Each finger gets a curl in 0..1 (often near open or closed, neighbours alike) that bends
    its three joints together; spread and twist are drawn inside a part of their range. The
    thumb's base moves freely within its limits.
    """
    from handmocap.core.skeleton import FINGER_CHAINS

    angles = np.zeros((15, 3))
    shared = rng.random()
    for finger, chain in FINGER_CHAINS.items():
        kind = rng.random()
        if kind < 0.25:
            curl = rng.uniform(0.0, 0.15)
        elif kind < 0.45:
            curl = rng.uniform(0.7, 1.0)
        elif kind < 0.7:
            curl = float(np.clip(shared + rng.normal(0, 0.15), 0, 1))
        else:
            curl = rng.random()
        for k, joint in enumerate(chain):
            lo, hi = limits[joint - 1, :, 0], limits[joint - 1, :, 1]
            flex = curl * hi[0] * rng.uniform(0.8, 1.1) + rng.normal(0, 0.05)
            if curl < 0.1:
                flex += rng.uniform(0.0, 0.4) * lo[0]  # a little hyperextension
            spread = rng.uniform(0.6 * lo[1], 0.6 * hi[1])
            twist = rng.normal(0, 0.25 * hi[2])
            angles[joint - 1] = (flex, spread, twist)
            if finger == "thumb" and k == 0:
                angles[joint - 1] = rng.uniform(0.8 * lo, 0.8 * hi)
    return np.clip(angles, limits[..., 0], limits[..., 1])


def skin_tone(rng: np.random.Generator) -> np.ndarray:
    """(3,) linear RGB of a skin colour between very light and very dark (sRGB anchors)."""
    anchors = np.array(
        [
            (0.96, 0.82, 0.72),
            (0.87, 0.69, 0.57),
            (0.76, 0.56, 0.42),
            (0.60, 0.42, 0.30),
            (0.42, 0.28, 0.19),
            (0.27, 0.17, 0.12),
        ]
    )
    t = rng.uniform(0, len(anchors) - 1)
    k = min(int(t), len(anchors) - 2)
    srgb = anchors[k] + (t - k) * (anchors[k + 1] - anchors[k]) + rng.normal(0, 0.02, 3)
    srgb = np.clip(srgb, 0.05, 1.0)
    return ((srgb + 0.055) / 1.055) ** 2.4


def _light_color(rng: np.random.Generator) -> np.ndarray:
    warm, cool = np.array([1.0, 0.78, 0.55]), np.array([0.75, 0.85, 1.0])
    t = rng.random()
    color = (1 - t) * warm + t * cool if rng.random() < 0.7 else rng.uniform(0.5, 1.0, 3)
    return color / color.max()


def random_lights(target: np.ndarray, rng: np.random.Generator) -> list[dict]:
    """A sun and up to two area lights, mostly from the camera's side of the hands."""
    lights = []
    for k in range(rng.integers(1, 4)):
        direction = rng.normal(size=3)
        direction[2] = -abs(direction[2]) - 0.3  # toward the camera (z forward)
        direction /= np.linalg.norm(direction)
        if k == 0:
            position = target + direction
            strength, size = rng.uniform(1.0, 4.0), rng.uniform(0.05, 0.5)
        else:
            distance = rng.uniform(0.4, 1.2)
            position = target + distance * direction
            strength = rng.uniform(10.0, 60.0) * distance**2
            size = rng.uniform(0.1, 0.8)
        lights.append(
            {"position": position, "color": _light_color(rng), "strength": strength, "size": size}
        )
    if len(lights) == 1 or rng.random() < 0.5:
        return lights
    return lights[1:]  # some scenes without the sun


class ScenePlanner:
    """Draws random scenes: poses hands with the hand layer and places them in the frame."""

    def __init__(self, layer, options: SceneOptions):
        from handmocap.core.skeleton import joint_frames, joint_limits

        self.layer = layer
        self.options = options
        self.limits = joint_limits()
        self.frames = {s: joint_frames(layer.models[s]) for s in SIDES}

    def pose(self, side: str, rng: np.random.Generator) -> PosedHand:
        """A hand at the origin (``transl`` 0): random orientation, fingers and shape."""
        import torch

        orient = random_rotation(rng)
        pose = np.einsum("jab,jb->ja", self.frames[side], random_angles(self.limits, rng))
        betas = np.clip(rng.normal(0, 1.0, 10), -2.5, 2.5)
        t = lambda a: torch.as_tensor(a[None], dtype=torch.float32)  # noqa: E731
        with torch.no_grad():
            out = self.layer(side, t(orient), t(pose), t(betas))
        return PosedHand(
            side=side,
            global_orient=orient,
            hand_pose=pose,
            betas=betas,
            transl=np.zeros(3),
            vertices=out.vertices[0].numpy().astype(np.float64),
            keypoints=out.keypoints[0].numpy().astype(np.float64),
        )

    def plan(self, size: int, seed: int, index: int) -> Scene:
        """The scene of sample ``index`` (depends only on ``seed`` and ``index``)."""
        rng = np.random.default_rng([seed, index, 0])
        o = self.options
        fov = math.radians(rng.uniform(*o.fov_degrees))
        focal = size / 2 / math.tan(fov / 2)
        centre = size / 2 + np.clip(rng.normal(0, 0.02 * size, 2), -0.05 * size, 0.05 * size)
        camera = np.array([[focal, 0, centre[0]], [0, focal, centre[1]], [0, 0, 1.0]])
        if rng.random() < o.two_hands:
            sides = list(SIDES)
            rng.shuffle(sides)
        else:
            sides = [SIDES[int(rng.integers(2))]]
        hands: dict[str, PosedHand] = {}
        first = self.pose(sides[0], rng)
        depth = self._place(first, camera, size, rng, depth=None)
        hands[first.side] = first
        if len(sides) == 2:
            second = self.pose(sides[1], rng)
            if rng.random() < o.interaction:
                self._place_near(second, first, rng)
            else:
                self._place(second, camera, size, rng, depth=depth * rng.uniform(0.8, 1.25))
            _separate(second, first)
            hands[second.side] = second
        tone = skin_tone(rng)
        skin = {}
        for side in hands:
            own = tone if rng.random() < 0.8 else skin_tone(rng)
            skin[side] = (own, float(rng.uniform(0.35, 0.7)))
        target = np.mean([h.keypoints.mean(0) for h in hands.values()], axis=0)
        ambient = _light_color(rng) * rng.uniform(0.6, 1.0)
        scene = Scene(
            size=size,
            camera=camera,
            hands={s: hands[s] for s in SIDES if s in hands},
            skin=skin,
            lights=random_lights(target, rng),
            ambient=ambient,
            ambient_strength=float(rng.uniform(0.15, 0.9)),
            seed=int(rng.integers(2**31 - 1)),
        )
        if rng.random() < o.occluder:
            scene.occluders.append(self._occluder(scene, rng))
        return scene

    def _place(self, hand: PosedHand, camera, size, rng, depth: float | None) -> float:
        """Move ``hand`` to a random spot of the picture at a random (or the given) depth."""
        focal = camera[0, 0]
        extent = float(np.ptp(hand.keypoints, axis=0).max())
        if depth is None:
            depth = focal * extent / (size * rng.uniform(*self.options.hand_fraction))
        depth = max(depth, 0.15)
        truncate = rng.random() < self.options.truncation
        for _ in range(20):
            pixel = rng.uniform(0.15 * size, 0.85 * size, 2)
            if truncate:  # centre near a border, sometimes just outside
                axis, end = rng.integers(2), rng.integers(2)
                inward = rng.uniform(-0.08, 0.12) * size
                pixel[axis] = inward if end == 0 else size - inward
            point = np.array([*(pixel - camera[:2, 2]) / focal * depth, depth])
            offset = point - hand.keypoints.mean(0)
            if _inside_fraction(hand.vertices + offset, camera, size) >= 0.3:
                break
        hand.move(offset)
        return depth

    def _place_near(self, hand: PosedHand, other: PosedHand, rng) -> None:
        """Put ``hand``'s centre a few centimetres from ``other``'s (interaction)."""
        direction = rng.normal(size=3) * np.array([1.0, 1.0, 0.5])
        direction /= np.linalg.norm(direction)
        point = other.keypoints.mean(0) + direction * rng.uniform(0.02, 0.09)
        hand.move(point - hand.keypoints.mean(0))

    def _occluder(self, scene: Scene, rng) -> dict:
        """A box or a stick between the camera and a random keypoint of a random hand."""
        hand = list(scene.hands.values())[int(rng.integers(len(scene.hands)))]
        point = hand.keypoints[int(rng.integers(21))]
        centre = point * rng.uniform(0.55, 0.85)
        width = rng.uniform(0.08, 0.3) * scene.size * centre[2] / scene.camera[0, 0]
        if rng.random() < 0.5:
            kind, scale = "box", width * rng.uniform(0.5, 2.0, 3)
        else:
            kind, scale = "cylinder", width * np.array([0.5, 0.5, rng.uniform(3.0, 8.0)])
        color = rng.uniform(0.02, 0.9, 3) ** 1.5
        return {
            "kind": kind,
            "center": centre,
            "scale": scale,
            "rotation": rng.uniform(-math.pi, math.pi, 3),
            "color": color,
            "roughness": float(rng.uniform(0.2, 0.9)),
        }


def _inside_fraction(vertices: np.ndarray, camera: np.ndarray, size: int) -> float:
    """Share of the vertices that project into the picture."""
    uv = vertices[:, :2] / vertices[:, 2:3] * camera[0, 0] + camera[:2, 2]
    inside = (vertices[:, 2] > 0) & np.all((uv >= 0) & (uv < size), axis=1)
    return float(inside.mean())


def _separate(hand: PosedHand, other: PosedHand, steps: int = 100) -> None:
    """Push ``hand`` away from ``other`` until their closest vertices are CONTACT_GAP apart.

    Checked on vertices (a KD-tree), which keeps hands from sinking into each other: a hand
    entering the other must cross its surface, where the vertex distance becomes small.
    """
    from scipy.spatial import cKDTree

    tree = cKDTree(other.vertices)
    direction = hand.keypoints.mean(0) - other.keypoints.mean(0)
    direction /= max(np.linalg.norm(direction), 1e-9)
    for _ in range(steps):
        near, _ = tree.query(hand.vertices, k=1, distance_upper_bound=CONTACT_GAP)
        if np.isinf(near).all():
            return
        hand.move(direction * 0.004)


def hand_distance(scene: Scene) -> float:
    """Closest distance between the two hands' vertices (inf with one hand), metres."""
    from scipy.spatial import cKDTree

    if len(scene.hands) < 2:
        return math.inf
    left, right = scene.hands["left"], scene.hands["right"]
    return float(cKDTree(left.vertices).query(right.vertices, k=1)[0].min())


# ---------------------------------------------------------------------------------------------
# Backgrounds (composited under the transparent film)


def background(size: int, seed: int, index: int) -> np.ndarray:
    """(size, size, 3) uint8 RGB background of sample ``index``: a colour gradient, smooth
    coloured noise, or random shapes ("dead leaves"), sometimes blurred, always grainy."""
    rng = np.random.default_rng([seed, index, 1])
    kind = rng.integers(3)
    if kind == 0:
        image = _gradient(size, rng)
    elif kind == 1:
        image = _smooth_noise(size, rng)
    else:
        image = _shapes(size, rng)
    if rng.random() < 0.3:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 3.0))
    image = image + rng.normal(0, rng.uniform(1.0, 6.0), image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def _gradient(size: int, rng) -> np.ndarray:
    a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    angle = rng.uniform(0, 2 * math.pi)
    ys, xs = np.mgrid[0:size, 0:size] / size
    t = (xs - 0.5) * math.cos(angle) + (ys - 0.5) * math.sin(angle) + 0.5
    t = np.clip(t, 0, 1)[..., None]
    return (1 - t) * a + t * b


def _smooth_noise(size: int, rng) -> np.ndarray:
    field = np.zeros((size, size, 3))
    for octave, cells in enumerate((3, 6, 12, 24)):
        low = rng.normal(size=(cells, cells, 3)).astype(np.float32)
        field += cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC) * 0.6**octave
    field = (field - field.min()) / max(np.ptp(field), 1e-9)
    a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    return a + field * (b - a)


def _shapes(size: int, rng) -> np.ndarray:
    image = np.empty((size, size, 3), np.uint8)
    image[:] = rng.integers(0, 256, 3).tolist()
    for _ in range(int(rng.integers(15, 60))):
        color = rng.integers(0, 256, 3).tolist()
        centre = rng.integers(-size // 4, size + size // 4, 2).tolist()
        radius = int(size * 0.5 * rng.random() ** 2.5) + 2
        if rng.random() < 0.5:
            cv2.circle(image, centre, radius, color, -1, cv2.LINE_AA)
        else:
            corner = (centre[0] + radius, centre[1] + int(radius * rng.uniform(0.2, 2)))
            cv2.rectangle(image, centre, corner, color, -1, cv2.LINE_AA)
    return image.astype(np.float64)


# ---------------------------------------------------------------------------------------------
# The Blender process


def face_classes(part_labels: np.ndarray, faces: np.ndarray, side: str) -> np.ndarray:
    """(V,) vertex parts, (F, 3) faces -> (F,) segmentation class of each face (the part most
    of its corners belong to, offset by side)."""
    corners = part_labels[faces]
    part = np.where(corners[:, 1] == corners[:, 2], corners[:, 1], corners[:, 0])
    offset = RIGHT_PART_OFFSET if side == "right" else LEFT_PART_OFFSET
    return (part + offset).astype(np.int64)


class Renderer:
    """A Blender process (``synthetic_render``) that renders scenes; close it when done."""

    def __init__(self, layer, options: SceneOptions, threads: int = 1):
        self.options = options
        self._log = tempfile.NamedTemporaryFile(prefix="handmocap_blender_", suffix=".log")
        self._home = tempfile.TemporaryDirectory(prefix="handmocap_blender_")
        env = {**os.environ, "BLENDER_USER_RESOURCES": self._home.name}  # not the user's
        self._process = subprocess.Popen(
            [sys.executable, "-m", "handmocap.training.datasets.synthetic_render"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
        )
        hands = {}
        for side in SIDES:
            model = layer.models[side]
            faces = model.faces
            hands[side] = {
                "faces": faces,
                "face_class": face_classes(model.part_labels, faces, side),
                "colors": dense_colors(np.asarray(model.arrays["v_template"])) / 255.0,
            }
        setup = {"kind": "setup", "hands": hands, "threads": threads, "denoise": options.denoise}
        try:
            self.version = self._call(setup)["version"]
        except BaseException:
            self.close()
            raise

    def _call(self, message: dict) -> dict:
        self._send(message)
        return self._receive()

    def _send(self, message: dict) -> None:
        try:
            pickle.dump(message, self._process.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self._process.stdin.flush()
        except BrokenPipeError:
            raise HandmocapError(f"the Blender renderer stopped:\n{self._log_tail()}") from None

    def _receive(self) -> dict:
        try:
            reply = pickle.load(self._process.stdout)
        except (EOFError, pickle.UnpicklingError):
            raise HandmocapError(f"the Blender renderer stopped:\n{self._log_tail()}") from None
        if not reply.get("ok"):
            raise HandmocapError(f"the Blender renderer failed:\n{reply.get('error')}")
        return reply

    def _log_tail(self, chars: int = 3000) -> str:
        self._log.flush()
        return Path(self._log.name).read_text(errors="replace")[-chars:]

    def send(self, scene: Scene) -> None:
        """Start rendering ``scene`` (one at a time: ``receive`` its passes before the next)."""
        self._send(scene.request(self.options))

    def receive(self) -> dict:
        """-> rgba (S, S, 4) uint8, index (S, S) uint8, depth, dense (S, S, 3), cover."""
        reply = self._receive()
        bgra = cv2.imdecode(np.frombuffer(reply.pop("rgba_png"), np.uint8), cv2.IMREAD_UNCHANGED)
        reply["rgba"] = cv2.cvtColor(bgra, cv2.COLOR_BGRA2RGBA)
        return reply

    def render(self, scene: Scene) -> dict:
        self.send(scene)
        return self.receive()

    def close(self) -> None:
        if self._process.poll() is None:
            try:
                pickle.dump({"kind": "quit"}, self._process.stdin)
                self._process.stdin.close()
                self._process.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self._process.kill()
                self._process.wait()
        self._log.close()
        self._home.cleanup()

    def __enter__(self) -> Renderer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------
# Samples


def label_sample(
    scene: Scene, passes: dict, backdrop: np.ndarray
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """A rendered scene -> (sample as ``training.sample`` says, extra per-sample records).

    Extras: ``joints_visible`` (2, 21) 1 where the keypoint is in the picture and no surface
    lies more than VISIBLE_DEPTH in front of it (from the depth pass); ``truncated`` (2,) 1
    where part of the hand is outside the picture; ``occluded`` () 1 with an occluder;
    ``hand_distance`` () closest distance between the hands (m, inf with one hand).
    """
    size = scene.size
    sample = empty_sample(size)
    rgba = passes["rgba"].astype(np.float32)
    alpha = rgba[..., 3:] / 255.0
    sample["image"] = np.round(rgba[..., :3] * alpha + backdrop * (1 - alpha)).astype(np.uint8)
    seg = passes["index"]
    sample["part_seg"] = seg
    sample["seg_valid"] = np.float32(1)
    hand = seg > 0
    dense = np.round(passes["dense"] * 255).clip(1, 255).astype(np.uint8)
    sample["dense"] = np.where(hand[..., None], dense, 0).astype(np.uint8)
    sample["dense_valid"] = np.float32(1)
    sample["camera"] = scene.camera.astype(np.float32)
    visible = np.zeros((2, 21), np.float32)
    truncated = np.zeros(2, np.float32)
    depth = passes["depth"]
    for i, side in enumerate(SIDES):
        hand_ = scene.hands.get(side)
        lo = RIGHT_PART_OFFSET if side == "right" else LEFT_PART_OFFSET
        if hand_ is None or not ((seg >= lo) & (seg < lo + 16)).any():
            continue
        uv = hand_.keypoints[:, :2] / hand_.keypoints[:, 2:] * scene.camera[0, 0]
        uv = uv + scene.camera[:2, 2]
        inside = np.all((uv >= 0) & (uv < size), axis=1)
        sample["hand_valid"][i] = 1
        sample["joints2d"][i, :, :2] = uv
        sample["joints2d"][i, :, 2] = inside
        sample["joints3d"][i] = hand_.keypoints
        sample["joints3d_valid"][i] = 1
        sample["global_orient"][i] = hand_.global_orient
        sample["hand_pose"][i] = hand_.hand_pose
        sample["betas"][i] = hand_.betas
        sample["transl"][i] = hand_.transl
        sample["params_valid"][i] = 1
        px = np.clip(np.floor(uv).astype(int), 0, size - 1)
        surface = depth[px[:, 1], px[:, 0]]
        visible[i] = inside & (surface >= hand_.keypoints[:, 2] - VISIBLE_DEPTH)
        truncated[i] = _inside_fraction(hand_.vertices, scene.camera, size) < 1.0
    distance = hand_distance(scene)
    sample["interacting"] = np.float32(sample["hand_valid"].all() and distance < CLOSE_DISTANCE)
    extras = {
        "joints_visible": visible,
        "truncated": truncated,
        "occluded": np.float32(len(scene.occluders) > 0),
        "hand_distance": np.float32(distance),
    }
    return sample, extras


def render_samples(
    planner: ScenePlanner, renderer: Renderer, size: int, seed: int, indices: Sequence[int]
) -> Iterator[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]:
    """Samples ``indices`` of the dataset ``(size, seed)``: planned, rendered, labelled; each
    next scene is planned while Blender renders the one before."""
    scene = planner.plan(size, seed, indices[0]) if len(indices) else None
    for n, index in enumerate(indices):
        renderer.send(scene)
        following = planner.plan(size, seed, indices[n + 1]) if n + 1 < len(indices) else None
        passes = renderer.receive()
        yield label_sample(scene, passes, background(size, seed, index))
        scene = following


# ---------------------------------------------------------------------------------------------
# Shards


def _encode(image: np.ndarray, ext: str) -> bytes:
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if ext == ".jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 3]
    ok, data = cv2.imencode(ext, image, params)
    if not ok:
        raise HandmocapError(f"could not encode an image as {ext}")
    return data.tobytes()


def _decode(data: np.ndarray, color: bool) -> np.ndarray:
    flag = cv2.IMREAD_COLOR if color else cv2.IMREAD_UNCHANGED
    image = cv2.imdecode(np.asarray(data), flag)
    if image is None:
        raise ValueError("undecodable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if color else image


BLOBS = {"image": ".jpg", "part_seg": ".png", "dense": ".png"}


def write_shard(path: Path, records: list[tuple[dict, dict]]) -> None:
    """Write samples (with their extras) as one shard, atomically (temporary file, rename)."""
    arrays: dict[str, np.ndarray] = {}
    for key, ext in BLOBS.items():
        blobs = [_encode(sample[key], ext) for sample, _ in records]
        arrays[f"{key}_bytes"] = np.frombuffer(b"".join(blobs), np.uint8)
        arrays[f"{key}_offsets"] = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
    for key in LABEL_KEYS:
        arrays[key] = np.stack([sample[key] for sample, _ in records])
    for key in EXTRA_KEYS:
        arrays[key] = np.stack([extra[key] for _, extra in records])
    partial = path.with_name(f".{path.name}.partial")
    with open(partial, "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, path)


def _npz_memmaps(path: Path) -> dict[str, np.ndarray]:
    """Every array of an uncompressed ``.npz`` as a read-only memory map.

    numpy cannot memory-map the members of an archive, but ``np.savez`` stores them
    uncompressed, so each one is a plain ``.npy`` at a known offset of the file.
    """
    out = {}
    with zipfile.ZipFile(path) as archive, open(path, "rb") as f:
        for info in archive.infolist():
            if info.compress_type != zipfile.ZIP_STORED:
                raise ValueError(f"{info.filename} is compressed")
            f.seek(info.header_offset + 26)
            name_len, extra_len = np.frombuffer(f.read(4), "<u2")
            f.seek(info.header_offset + 30 + int(name_len) + int(extra_len))
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            if dtype.hasobject or fortran:
                raise ValueError(f"{info.filename} is not a plain array")
            name = info.filename.removesuffix(".npy")
            if math.prod(shape) == 0:
                out[name] = np.zeros(shape, dtype)
            else:
                out[name] = np.memmap(f, dtype=dtype, mode="r", offset=f.tell(), shape=shape)
    return out


def shard_name(k: int) -> str:
    return f"shard_{k:05d}.npz"


def _shard_ok(path: Path, count: int) -> bool:
    try:
        arrays = _npz_memmaps(path)
        return len(arrays["hand_valid"]) == count and len(arrays["image_offsets"]) == count + 1
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return False


# ---------------------------------------------------------------------------------------------
# Generation


def _manifest_key(manifest: dict) -> dict:
    keys = ("format", "version", "count", "size", "seed", "shard_size", "hand_model_id", "options")
    return {k: manifest.get(k) for k in keys}


def generate(
    out_dir: Path,
    count: int,
    size: int = 256,
    seed: int = 0,
    workers: int = 1,
    progress: ProgressFn | None = None,
    shard_size: int = 256,
    options: SceneOptions | None = None,
    threads: int | None = None,
) -> dict:
    """Render ``count`` samples of ``size`` px into ``out_dir``; -> the manifest.

    Resumable: shards already there (from a stopped run with the same arguments) are kept.
    ``workers`` Blender processes render whole shards side by side, each with ``threads``
    threads (default: the available cores shared out). ``progress(done, total, images/s)`` is
    called after every sample rendered in this run.
    """
    from handmocap.core.handmodel import HandLayer

    options = options or SceneOptions()
    if count < 1 or size < 16 or shard_size < 1 or workers < 1:
        raise HandmocapError("count, workers and shard size must be positive, size >= 16 px")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    layer = HandLayer.from_models_dir(None, HAND_MODEL_KIND)
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "count": count,
        "size": size,
        "seed": seed,
        "shard_size": shard_size,
        "hand_model_kind": HAND_MODEL_KIND,
        "hand_model_id": {s: layer.models[s].model_id for s in SIDES},
        "options": json.loads(json.dumps(asdict(options))),
        "renderer": RENDERER,
        "complete": False,
    }
    old = _read_manifest(out_dir) if (out_dir / MANIFEST).is_file() else None
    if old is not None:
        for key, value in _manifest_key(manifest).items():
            if old.get(key) != value:
                raise HandmocapError(
                    f"{out_dir} holds a dataset made with {key}={old.get(key)!r}, not "
                    f"{value!r}: give another folder, or the arguments it was made with"
                )
        manifest.update({k: old[k] for k in ("renderer_version", "images_per_second") if k in old})
    shards = [(k, min(shard_size, count - k * shard_size)) for k in range(-(-count // shard_size))]
    todo = [(k, n) for k, n in shards if not _shard_ok(out_dir / shard_name(k), n)]
    _write_manifest(out_dir, manifest)
    total = sum(n for _, n in todo)
    if todo:
        run = _Run(out_dir, ScenePlanner(layer, options), size, seed, shard_size)
        if threads is None:
            threads = max(1, len(os.sched_getaffinity(0)) // min(workers, len(todo)))
        rate, version = run.render(todo, workers, threads, progress, total)
        manifest["renderer_version"] = f"Blender {version}"
        manifest["images_per_second"] = round(rate, 3)
    manifest["complete"] = True
    manifest["shards"] = [shard_name(k) for k, _ in shards]
    _write_manifest(out_dir, manifest)
    return manifest


@dataclass
class _Run:
    """Shards of one dataset rendered by Blender processes side by side."""

    out_dir: Path
    planner: ScenePlanner
    size: int
    seed: int
    shard_size: int

    def render(self, todo, workers, threads, progress, total) -> tuple[float, str]:
        """Render and write the shards ``todo`` ((index, count) pairs); -> (images/s, Blender
        version)."""
        self.queue, self.lock, self.done = list(reversed(todo)), threading.Lock(), 0
        self.progress, self.total = progress, total
        renderers: list[Renderer] = []
        try:
            for _ in range(min(workers, len(todo))):
                renderers.append(Renderer(self.planner.layer, self.planner.options, threads))
            self.start = time.perf_counter()
            if len(renderers) == 1:
                self._work(renderers[0])
            else:
                with ThreadPoolExecutor(len(renderers)) as pool:
                    futures = [pool.submit(self._work, r) for r in renderers]
                    try:
                        for future in futures:
                            future.result()
                    except BaseException:
                        with self.lock:
                            self.queue.clear()  # the others finish their shard, then stop
                        raise
        finally:
            for renderer in renderers:
                renderer.close()
        rate = self.done / max(time.perf_counter() - self.start, 1e-9)
        return rate, renderers[0].version

    def _work(self, renderer: Renderer) -> None:
        while True:
            with self.lock:
                if not self.queue:
                    return
                k, n = self.queue.pop()
            records = []
            indices = range(k * self.shard_size, k * self.shard_size + n)
            for record in render_samples(self.planner, renderer, self.size, self.seed, indices):
                records.append(record)
                with self.lock:
                    self.done += 1
                    if self.progress is not None:
                        rate = self.done / (time.perf_counter() - self.start)
                        self.progress(self.done, self.total, rate)
            write_shard(self.out_dir / shard_name(k), records)


def _write_manifest(out_dir: Path, manifest: dict) -> None:
    partial = out_dir / f".{MANIFEST}.partial"
    partial.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(partial, out_dir / MANIFEST)


def _read_manifest(root: Path) -> dict:
    path = Path(root) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise HandmocapError(
            f"{root} is not a synthetic dataset (no {MANIFEST}): make one with "
            f"handmocap data synth --out {root}"
        ) from None
    except (OSError, ValueError) as exc:
        raise HandmocapError(f"{path} is unreadable: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise HandmocapError(f"{path} is not a handmocap synthetic dataset manifest")
    if manifest.get("version") != VERSION:
        raise HandmocapError(
            f"{path} is format version {manifest.get('version')}, this handmocap reads {VERSION}"
        )
    return manifest


# ---------------------------------------------------------------------------------------------
# Reading


class SyntheticDataset:
    """The samples of a folder written by ``generate``, read lazily (shards memory-mapped)."""

    hand_model_kind = HAND_MODEL_KIND

    def __init__(self, root: Path, cached_shards: int = 64):
        self.root = Path(root)
        if not self.root.is_dir():
            raise HandmocapError(f"synthetic dataset folder not found: {self.root}")
        manifest = _read_manifest(self.root)
        if not manifest.get("complete"):
            raise HandmocapError(
                f"{self.root} is unfinished: run handmocap data synth --out {self.root} again "
                "with the same arguments to finish it"
            )
        self.manifest = manifest
        self.size = int(manifest["size"])
        self.count = int(manifest["count"])
        self.shard_size = int(manifest["shard_size"])
        self.hand_model_id = manifest["hand_model_id"]
        missing = [n for n in manifest["shards"] if not (self.root / n).is_file()]
        if missing:
            raise HandmocapError(f"{self.root} lacks {len(missing)} shard(s), e.g. {missing[0]}")
        self._cached = cached_shards
        self._shards: OrderedDict[int, dict[str, np.ndarray]] = OrderedDict()

    def __len__(self) -> int:
        return self.count

    def __getstate__(self) -> dict:
        """Without the open shards: a copy for another process maps them again."""
        return {**self.__dict__, "_shards": OrderedDict()}

    def _shard(self, k: int) -> dict[str, np.ndarray]:
        if k in self._shards:
            self._shards.move_to_end(k)
            return self._shards[k]
        path = self.root / shard_name(k)
        try:
            arrays = _npz_memmaps(path)
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise HandmocapError(
                f"{path} is corrupt ({exc}): delete it and run handmocap data synth again"
            ) from None
        self._shards[k] = arrays
        if len(self._shards) > self._cached:
            self._shards.popitem(last=False)
        return arrays

    def _locate(self, index: int) -> tuple[dict[str, np.ndarray], int]:
        if not -self.count <= index < self.count:
            raise IndexError(f"sample {index} of {self.count}")
        index %= self.count
        return self._shard(index // self.shard_size), index % self.shard_size

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        arrays, j = self._locate(int(index))
        sample = {key: np.array(arrays[key][j]) for key in LABEL_KEYS}
        try:
            for key in BLOBS:
                a, b = arrays[f"{key}_offsets"][j : j + 2]
                sample[key] = _decode(arrays[f"{key}_bytes"][a:b], color=key != "part_seg")
        except (ValueError, KeyError) as exc:
            raise HandmocapError(
                f"{self.root / shard_name(index // self.shard_size)}: sample {index} is "
                f"corrupt ({exc})"
            ) from None
        return sample

    def extras(self, index: int) -> dict[str, np.ndarray]:
        """The per-sample records outside the sample contract (see ``label_sample``)."""
        arrays, j = self._locate(int(index))
        return {key: np.array(arrays[key][j]) for key in EXTRA_KEYS}
