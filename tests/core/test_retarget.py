"""Retargeting math (``core.retarget``) on hand-made cases with known answers, and the bone
maps: detection of the known naming schemes, JSON maps, and what is refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

from handmocap.core.handmodel import load_hand_models
from handmocap.core.kinematics import FINGER_CHAINS, joint_frames, joint_limits
from handmocap.core.retarget import (
    FINGERS,
    HandRest,
    RigMapError,
    anatomy,
    flexion_spread,
    hand_rest_of_rig,
    resolve_map,
    source_directions,
    target_rotations,
)
from handmocap.core.rig import Rig, build_rig, pose_to_bones, posed_heads
from handmocap.core.rotations import axis_angle_to_matrix

ALL = {f: 3 for f in FINGERS}


@pytest.fixture(scope="module")
def models():
    return load_hand_models(kind="openhand")


def swing_poses(model, frames: int, seed: int, twist: bool = False) -> np.ndarray:
    """(T, 15, 3) flexion and abduction within the joint limits (twist only if asked)."""
    rng = np.random.default_rng(seed)
    limits = joint_limits()
    angles = rng.uniform(limits[..., 0], limits[..., 1], size=(frames, 15, 3))
    if not twist:
        angles[..., 2] = 0.0
    return np.einsum("jab,tjb->tja", joint_frames(model), angles)


def turned_copy(rig: Rig, turn: np.ndarray, seed: int) -> Rig:
    """Our rig turned as a whole, each bone with another roll: a rig of the same rest pose
    whose bone axes all differ from ours."""
    rolls = np.random.default_rng(seed).uniform(-np.pi, np.pi, 16)
    about_y = axis_angle_to_matrix(np.outer(rolls, [0.0, 1.0, 0.0]))
    return Rig(rig.side, rig.names, rig.parents, rig.heads @ turn.T, rig.tails @ turn.T,
               rig.rolls + rolls, turn @ rig.matrices @ about_y, rig.betas)  # fmt: skip


@pytest.mark.parametrize("side", ["left", "right"])
def test_anatomy_of_our_rig_is_the_fits_joint_frames(models, side):
    rig = build_rig(models[side])
    frames = anatomy(hand_rest_of_rig(rig, ALL))
    expected = joint_frames(models[side])
    for finger, chain in FINGER_CHAINS.items():
        np.testing.assert_allclose(frames.bones[finger], expected[[j - 1 for j in chain]],
                                   atol=1e-12)  # fmt: skip
        np.testing.assert_allclose(frames.references[finger][1:], frames.bones[finger][:-1])


@pytest.mark.parametrize("side", ["left", "right"])
def test_a_turned_rig_with_other_rolls_moves_exactly_as_ours(models, side):
    """Without twist in the source, the target's joints are the source's, turned."""
    rig = build_rig(models[side])
    turn = axis_angle_to_matrix(np.array([0.3, -1.2, 2.0]))
    target = turned_copy(rig, turn, seed=1)
    pose = swing_poses(models[side], 20, seed=2)
    directions = source_directions(rig, pose, ALL)
    hand = hand_rest_of_rig(target, ALL)
    matrices = {f: target.matrices[list(c)] for f, c in FINGER_CHAINS.items()}
    quats = target_rotations(hand, matrices, directions)
    full = np.zeros((20, 16, 4))
    full[..., 0] = 1.0
    for finger, chain in FINGER_CHAINS.items():
        full[:, list(chain)] = quats[finger]
    got = posed_heads(target, full, np.zeros((20, 3)))
    source = posed_heads(rig, *pose_to_bones(rig, np.zeros((20, 3)), pose, np.zeros((20, 3))))
    np.testing.assert_allclose(got, source @ turn.T, atol=1e-9)


def test_target_bones_never_twist_and_flexion_carries_over(models):
    rig = build_rig(models["right"])
    pose = swing_poses(models["right"], 30, seed=3, twist=True)
    directions = source_directions(rig, pose, ALL)
    target = turned_copy(rig, np.eye(3), seed=4)
    matrices = {f: target.matrices[list(c)] for f, c in FINGER_CHAINS.items()}
    quats = target_rotations(hand_rest_of_rig(target, ALL), matrices, directions)
    for q in quats.values():  # a swing off the bone's own axis (Y) has no Y component
        np.testing.assert_allclose(q[..., 2], 0.0, atol=1e-12)
        np.testing.assert_allclose(np.linalg.norm(q, axis=-1), 1.0, atol=1e-12)
    # a pure flexion of index2 by 40 degrees adds 40 degrees to its flexion and (its axis being
    # the bone's own, a hair off its parent's) next to nothing to its spread
    still = np.zeros((2, 15, 3))
    still[1, 1] = joint_frames(models["right"])[1][:, 0] * np.radians(40.0)
    flexion, spread = flexion_spread(source_directions(rig, still, ALL)["index"], "right")
    assert np.degrees(flexion[1, 1] - flexion[0, 1]) == pytest.approx(40.0, abs=1e-9)
    assert np.degrees(spread[1, 1] - spread[0, 1]) == pytest.approx(0.0, abs=1e-5)


def rigify_names(metarig: bool = False) -> set[str]:
    names = set()
    for s in (".L", ".R"):
        names |= {f"hand{s}" if metarig else f"DEF-hand{s}", f"palm.01{s}", f"forearm{s}"}
        for k in (1, 2, 3):
            names |= {f"thumb.0{k}{s}"} | {f"f_{f}.0{k}{s}" for f in FINGERS[1:]}
    return names


def mixamo_names(prefix: str, sides=("Left", "Right")) -> set[str]:
    names = {f"{prefix}Hips"}
    for word in sides:
        names |= {f"{prefix}{word}Hand", f"{prefix}{word}ForeArm"}
        names |= {f"{prefix}{word}Hand{f.capitalize()}{k}" for f in FINGERS for k in (1, 2, 3)}
    return names


def test_known_schemes_are_detected():
    used, bone_map = resolve_map("auto", rigify_names())
    assert used == "rigify" and bone_map["left"]["wrist"] == "DEF-hand.L"
    assert bone_map["right"]["index3"] == "f_index.03.R" and len(bone_map["right"]) == 16
    assert resolve_map("auto", rigify_names(metarig=True))[1]["left"]["wrist"] == "hand.L"
    for prefix in ("mixamorig:", "mixamorig1:", ""):
        used, bone_map = resolve_map("auto", mixamo_names(prefix))
        assert used == "mixamo"
        assert bone_map["right"]["thumb1"] == f"{prefix}RightHandThumb1"
    used, bone_map = resolve_map("mixamo", mixamo_names("mixamorig:", sides=("Left",)))
    assert list(bone_map) == ["left"]


def test_maps_that_do_not_fit_the_rig_are_refused(tmp_path):
    names = mixamo_names("mixamorig:") - {"mixamorig:LeftHandRing2"}
    with pytest.raises(RigMapError, match="lacks bones the mixamo map names: mixamorig:LeftHand"):
        resolve_map("auto", names, "'Armature'")
    with pytest.raises(RigMapError, match="no finger bones of a known naming scheme"):
        resolve_map("auto", {"Hips", "mixamorig:LeftHand", "hand.L"})
    with pytest.raises(RigMapError, match="no finger bones named as rigify"):
        resolve_map("rigify", mixamo_names(""))

    def write(data) -> str:
        path = tmp_path / "map.json"
        path.write_text(data if isinstance(data, str) else json.dumps(data))
        return str(path)

    rig = {"Hand", "I1", "I2", "I3", "M1", "P1"}
    good = {"wrist": "Hand", "index1": "I1", "index2": "I2", "middle1": "M1", "pinky1": "P1"}
    used, bone_map = resolve_map(write({"right": good}), rig)
    assert bone_map == {"right": good} and used.endswith("map.json")
    refused = [
        ("{not json", "not a readable JSON bone map"),
        ({"middle": good}, "a bone map is"),
        ({"right": {**good, "elbow": "E"}}, "unknown joints elbow"),
        ({"right": {**good, "index3": "I3", "index2": None}}, "must map joint names to bone"),
        ({"right": {k: v for k, v in good.items() if k != "wrist"}}, r"wrist \(hand\) bone"),
        ({"right": {"wrist": "Hand"}}, "no finger bones on the right hand"),
        ({"right": {**good, "ring2": "I3"}}, "in order from the knuckle"),
        ({"right": {**good, "thumb1": "T1"}}, "lacks bones the .* map names: T1"),
    ]
    for data, message in refused:
        with pytest.raises(RigMapError, match=message):
            resolve_map(write(data), rig)
    with pytest.raises(RigMapError, match="no such bone map"):
        resolve_map(str(tmp_path / "none.json"), rig)
    with pytest.raises(RigMapError, match="--map must be one of"):
        resolve_map("unity", rig)


def test_a_palm_needs_two_fingers_besides_the_thumb():
    hand = HandRest("right", np.zeros(3), {"thumb": np.eye(3), "index": np.eye(3) + 1})
    with pytest.raises(RigMapError, match="two fingers besides the thumb"):
        anatomy(hand)
