"""Finger animation onto character rigs whose rest poses and bone rolls differ from ours
(DESIGN.md, 6). Pure numpy: the Blender side reads the rig and writes the keys.

What carries over is the shape of each finger, joint by joint: the direction of every bone
relative to the bone before it. Both hands, ours and the rig's, get anatomical frames from
their rest skeletons alone (``skeleton.palm_axes`` and ``bone_frame``: the bone's direction,
its flexion axis, its abduction axis), so neither the rig's bone rolls nor its rest curl
matter. A finger's first bone is measured against its metacarpal (wrist to knuckle); the
thumb's first bone against the hand's axis (wrist to the middle of the knuckles).

For each frame and bone, the direction the source bone takes in its parent's frame is turned
into the rig's parent frame, and the rig's bone is swung onto it by the smallest rotation from
its rest direction. So on the rig every joint's flexion and spread equal the source's, and no
bone turns about its own axis: a finger cannot twist, and the hand model's fits have a few
degrees of twist that are noise. The wrist is not carried over: a character's hand is placed
by its arm, which the footage does not give.

Bone maps name the rig's bones for our joints (``JOINT_NAMES``), per side: known naming
schemes (Rigify, Mixamo) are detected from the bone names, and any rig can be given a JSON map
of the same form: ``{"left": {"wrist": "hand.L", "index1": "...", ...}, "right": {...}}``. A
finger may be mapped in part (its first bone, or its first two), in order from the knuckle.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from handmocap.core.errors import HandmocapError
from handmocap.core.joints import FINGERS, JOINT_NAMES
from handmocap.core.rig import SIDE_SUFFIX, Rig
from handmocap.core.rotations import axis_angle_to_matrix
from handmocap.core.skeleton import FINGER_CHAINS, bone_frame, palm_axes

SCHEMES = ("rigify", "mixamo")
MAP_CHOICES = ("auto", *SCHEMES)
ACROSS = FINGERS[1:]  # the fingers from the thumb side across: index to pinky
SIDE_WORD = {"left": "Left", "right": "Right"}

BoneMap = dict[str, dict[str, str]]  # side -> our joint name -> the rig's bone


class RigMapError(HandmocapError):
    """A bone map that does not fit the rig: bones missing, no fingers, a broken chain."""


@dataclass(frozen=True)
class HandRest:
    """One hand of a rig at rest, in the rig's frame: the wrist joint, and per finger the
    heads of its mapped bones followed by the last bone's tail."""

    side: str
    wrist: np.ndarray  # (3,)
    fingers: dict  # finger -> (n + 1, 3)

    def mapped(self) -> dict[str, int]:
        return {f: len(p) - 1 for f, p in self.fingers.items()}


@dataclass(frozen=True)
class Anatomy:
    """The anatomical frames of a hand's mapped bones at rest (``bone_frame`` columns)."""

    bones: dict  # finger -> (n, 3, 3) each bone's frame
    references: dict  # finger -> (n, 3, 3) the frame each bone is measured against


def hand_rest_of_rig(rig: Rig, mapped: dict[str, int]) -> HandRest:
    """Our rig's rest skeleton, restricted to the bones a target has (``finger -> count``)."""
    fingers = {}
    for finger, count in mapped.items():
        chain = FINGER_CHAINS[finger][:count]
        fingers[finger] = np.concatenate([rig.heads[list(chain)], rig.tails[chain[-1]][None]])
    return HandRest(rig.side, rig.heads[0].copy(), fingers)


def anatomy(hand: HandRest) -> Anatomy:
    """Frames of every mapped bone and of the frame it is measured against."""
    across = [f for f in ACROSS if f in hand.fingers]
    if len(across) < 2:
        raise RigMapError(
            "the palm needs the first bones of two fingers besides the thumb; "
            f"mapped: {', '.join(hand.fingers) or 'none'}"
        )
    knuckles = {f: hand.fingers[f][0] for f in across}
    dorsal, toward_pinky = palm_axes(
        hand.wrist, knuckles[across[0]], knuckles[across[-1]], hand.side
    )
    hand_axis = np.mean(list(knuckles.values()), axis=0) - hand.wrist

    def frame(direction, finger):
        return bone_frame(direction, finger, dorsal, toward_pinky, hand.side)

    bones, references = {}, {}
    for finger, points in hand.fingers.items():
        own = [frame(points[k + 1] - points[k], finger) for k in range(len(points) - 1)]
        first = (
            frame(hand_axis, "middle")
            if finger == "thumb"
            else frame(points[0] - hand.wrist, finger)
        )
        bones[finger] = np.stack(own)
        references[finger] = np.stack([first, *own[:-1]])
    return Anatomy(bones, references)


def source_directions(rig: Rig, hand_pose, mapped: dict[str, int]) -> dict[str, np.ndarray]:
    """(T, 15, 3) poses -> per finger (T, n, 3): each mapped bone's direction in the frame it
    is measured against (its parent's anatomical frame, carried by the parent's pose)."""
    rest = hand_rest_of_rig(rig, mapped)
    frames = anatomy(rest)
    turns = axis_angle_to_matrix(np.asarray(hand_pose, dtype=np.float64).reshape(-1, 15, 3))
    out = {}
    for finger, count in mapped.items():
        chain = FINGER_CHAINS[finger][:count]
        dirs = []
        for k, j in enumerate(chain):
            rest_dir = frames.bones[finger][k][:, 2]
            # the bone's turn is relative to its parent, in the model's axes: its direction in
            # the parent's posed frame is R_j y; in the reference frame, F^T R_j y
            dirs.append(turns[:, j - 1] @ rest_dir @ frames.references[finger][k])
        out[finger] = np.stack(dirs, axis=1)
    return out


def _swing(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(3,) and (..., 3) unit vectors -> (..., 4) wxyz: the smallest rotation taking a onto b."""
    w = 1.0 + b @ a
    q = np.concatenate([w[..., None], np.cross(a, b)], axis=-1)
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def target_rotations(
    hand: HandRest, matrices: dict, directions: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Per finger (T, n, 4) wxyz: each mapped bone's pose rotation in its own rest axes
    (Blender's pose-bone quaternion), given its rest orientation ``matrices[finger]`` (n, 3, 3)
    in the rig's frame and the source ``directions`` (``source_directions``).

    Exact when, between a bone and the bone it is measured against (the previous bone, or the
    wrist for a first bone), the rig's bones stay at rest, as a character's do.
    """
    frames = anatomy(hand)
    out = {}
    for finger, dirs in directions.items():
        quats = []
        for k in range(dirs.shape[1]):
            rest_dir = frames.bones[finger][k][:, 2]
            wanted = dirs[:, k] @ frames.references[finger][k].T  # in the rig's rest frame
            wanted /= np.linalg.norm(wanted, axis=-1, keepdims=True)
            swing = _swing(rest_dir, wanted)
            # the same turn in the bone's own axes: its axis seen from the bone, C^T v
            local = np.concatenate([swing[:, :1], swing[:, 1:] @ matrices[finger][k]], axis=1)
            quats.append(local)
        out[finger] = np.stack(quats, axis=1)
    return out


def flexion_spread(direction: np.ndarray, side: str) -> tuple[np.ndarray, np.ndarray]:
    """(..., 3) a bone's direction in its reference's ``bone_frame`` axes -> its flexion
    (positive toward the palm) and spread (positive toward the thumb), radians."""
    sign = 1.0 if side == "right" else -1.0
    d = np.asarray(direction, dtype=np.float64)
    d = d / np.linalg.norm(d, axis=-1, keepdims=True)
    # flexion turns the bone toward flex x bone = -sign * abduct; abduction toward sign * flex
    flexion = np.arctan2(-sign * d[..., 1], d[..., 2])
    spread = np.arcsin(np.clip(sign * d[..., 0], -1.0, 1.0))
    return flexion, spread


def parse_target(value: str) -> tuple[Path, str | None]:
    """A target rig as the command line names it, ``RIG.blend:ARMATURE`` or ``RIG.blend``
    -> (path, armature name or None)."""
    path, _, name = value.rpartition(":")
    if path.lower().endswith(".blend") and name:
        return Path(path), name
    return Path(value), None


# --- bone maps ------------------------------------------------------------------------------


def _scheme_names(scheme: str, names: set[str], side: str) -> dict[str, list[str]]:
    """Our joint -> the candidate bone names of a scheme (first present wins)."""
    if scheme == "rigify":
        s = SIDE_SUFFIX[side]
        out = {"wrist": [f"DEF-hand{s}", f"hand{s}"]}  # generated rig, then the metarig
        for finger in FINGERS:
            stem = "thumb" if finger == "thumb" else f"f_{finger}"
            for k in (1, 2, 3):
                out[f"{finger}{k}"] = [f"{stem}.0{k}{s}"]
        return out
    if scheme == "mixamo":
        word = SIDE_WORD[side]
        pattern = re.compile(rf"^(.*){word}HandIndex1$")
        prefixes = sorted({m.group(1) for n in names if (m := pattern.match(n))}) or ["mixamorig:"]
        p = prefixes[0]
        out = {"wrist": [f"{p}{word}Hand"]}
        for finger in FINGERS:
            for k in (1, 2, 3):
                out[f"{finger}{k}"] = [f"{p}{word}Hand{finger.capitalize()}{k}"]
        return out
    raise RigMapError(f"unknown bone map {scheme!r}: use one of {', '.join(MAP_CHOICES)}")


def scheme_map(scheme: str, names) -> tuple[BoneMap, list[str]]:
    """The bones of ``names`` a known scheme finds, per side, and the ones it expected on a
    side it found but that are absent."""
    names = set(names)
    found, missing = {}, []
    for side in SIDE_SUFFIX:
        candidates = _scheme_names(scheme, names, side)
        side_map, side_missing = {}, []
        for joint, options in candidates.items():
            present = [n for n in options if n in names]
            if present:
                side_map[joint] = present[0]
            else:
                side_missing.append(options[-1])
        if any(j != "wrist" for j in side_map):
            found[side] = side_map
            missing += side_missing
    return found, missing


def read_map_file(path: Path) -> BoneMap:
    """A JSON bone map: ``{"left": {joint: bone}, "right": {...}}`` (either side optional)."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise RigMapError(f"{path}: no such bone map") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RigMapError(f"{path}: not a readable JSON bone map ({exc})") from None
    if not isinstance(data, dict) or not data or set(data) - set(SIDE_SUFFIX):
        raise RigMapError(f'{path}: a bone map is {{"left": {{...}}, "right": {{...}}}}')
    for side, side_map in data.items():
        if not isinstance(side_map, dict) or not all(isinstance(v, str) for v in side_map.values()):
            raise RigMapError(f"{path}: {side!r} must map joint names to bone names")
        unknown = sorted(set(side_map) - set(JOINT_NAMES))
        if unknown:
            raise RigMapError(
                f"{path}: unknown joints {', '.join(unknown)} (joints: {', '.join(JOINT_NAMES)})"
            )
    return data


def resolve_map(spec: str, names, rig: str = "the rig") -> tuple[str, BoneMap]:
    """``auto``, a scheme or a JSON file -> (what was used, the bone map), checked against the
    rig's bone ``names``: every named bone present, a wrist, whole chains from the knuckle."""
    names = set(names)
    if spec == "auto":
        results = {s: scheme_map(s, names) for s in SCHEMES}
        counts = {s: sum(len(m) for m in r[0].values()) for s, r in results.items()}
        best = max(SCHEMES, key=lambda s: counts[s])
        if counts[best] == 0:
            raise RigMapError(
                f"{rig} has no finger bones of a known naming scheme ({', '.join(SCHEMES)}); "
                "give it a bone map: --map MAP.json"
            )
        used, bone_map, missing = best, *results[best]
    elif spec in SCHEMES:
        bone_map, missing = scheme_map(spec, names)
        used = spec
        if not bone_map:
            raise RigMapError(f"{rig} has no finger bones named as {spec} names them")
    else:
        path = Path(spec)
        if path.suffix.lower() != ".json":
            raise RigMapError(f"--map must be one of {', '.join(MAP_CHOICES)} or a .json file")
        bone_map, used = read_map_file(path), str(path)
        missing = sorted({b for m in bone_map.values() for b in m.values()} - names)
    if missing:
        raise RigMapError(f"{rig} lacks bones the {used} map names: {', '.join(missing)}")
    for side, side_map in bone_map.items():
        if "wrist" not in side_map:
            raise RigMapError(f"{used} map, {side} hand: the wrist (hand) bone is not mapped")
        fingers = finger_counts(side_map)
        if not fingers:
            raise RigMapError(f"{rig} has no finger bones on the {side} hand ({used} map)")
        for finger in FINGERS:
            have = [k for k in (1, 2, 3) if f"{finger}{k}" in side_map]
            if have != list(range(1, len(have) + 1)):
                raise RigMapError(
                    f"{used} map, {side} {finger}: map its bones in order from the knuckle "
                    f"(mapped: {', '.join(f'{finger}{k}' for k in have)})"
                )
    return used, bone_map


def finger_counts(side_map: dict[str, str]) -> dict[str, int]:
    """finger -> how many of its bones a side's map names (fingers with none left out)."""
    counts = {f: sum(f"{f}{k}" in side_map for k in (1, 2, 3)) for f in FINGERS}
    return {f: n for f, n in counts.items() if n}
