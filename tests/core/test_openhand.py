"""The open hand model: anatomy, parts, weights, regressor, shape space, bending, the files."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from handmocap.core.handmodel import HandLayer, load_hand_models, open_model_path
from handmocap.core.joints import KEYPOINT_NAMES, PARENTS
from handmocap.core.mano_io import load_mano_pickle
from handmocap.core.openhand import anatomy
from handmocap.core.openhand.generate import mesh_edges, signed_volume
from handmocap.core.poses import POSE_NAMES, named_pose

KP = {name: i for i, name in enumerate(KEYPOINT_NAMES)}
FOUR = ("index", "middle", "ring", "pinky")


@pytest.fixture(scope="module")
def models():
    return load_hand_models(kind="openhand")


@pytest.fixture(scope="module")
def layer(models):
    return HandLayer(models)


@pytest.fixture(scope="module")
def right(models):
    return models["right"]


@pytest.fixture(scope="module")
def edges(right):
    return mesh_edges(right.faces)


def pose(layer, hand_pose=None, betas=None, side="right"):
    """Vertices (V, 3) and keypoints (21, 3) in mm for one hand."""
    hp = np.zeros((15, 3)) if hand_pose is None else hand_pose
    with torch.no_grad():
        out = layer(
            side,
            torch.zeros(1, 3),
            torch.as_tensor(hp, dtype=torch.float32)[None],
            None if betas is None else torch.as_tensor(betas, dtype=torch.float32)[None],
        )
    return out.vertices[0].double().numpy() * 1000, out.keypoints[0].double().numpy() * 1000


def dist(kp, a, b):
    return float(np.linalg.norm(kp[KP[a]] - kp[KP[b]]))


def check_human_proportions(kp: np.ndarray) -> None:
    """Assert bone lengths (mm) in adult human ranges and in human proportions."""
    palm = dist(kp, "wrist", "middle1")
    assert 70 <= palm <= 105, palm
    hand_length = dist(kp, "wrist", "middle_tip")
    assert 150 <= hand_length <= 215, hand_length
    assert 45 <= dist(kp, "index1", "pinky1") <= 70
    lengths = {}
    for finger in FOUR:
        seg = [dist(kp, f"{finger}{a}", f"{finger}{b}") for a, b in ((1, 2), (2, 3), (3, "_tip"))]
        proximal, middle, distal = seg
        assert 1.2 <= proximal / middle <= 2.1, (finger, seg)
        assert 0.8 <= middle / distal <= 1.6, (finger, seg)
        lengths[finger] = sum(seg)
        assert 0.6 <= lengths[finger] / palm <= 1.3, (finger, lengths[finger], palm)
    assert lengths["middle"] == max(lengths.values())
    assert lengths["pinky"] == min(lengths.values())
    thumb = [
        dist(kp, "thumb1", "thumb2"),
        dist(kp, "thumb2", "thumb3"),
        dist(kp, "thumb3", "thumb_tip"),
    ]
    assert all(15 <= s <= 55 for s in thumb), thumb


def test_rest_hand_has_adult_proportions(layer):
    _, kp = pose(layer)
    assert 80 <= dist(kp, "wrist", "middle1") <= 95
    check_human_proportions(kp)


@pytest.mark.parametrize("index", range(10))
@pytest.mark.parametrize("value", [-2.0, 2.0])
def test_each_shape_direction_stays_human_at_two(layer, edges, right, index, value):
    betas = np.zeros(10)
    betas[index] = value
    verts, kp = pose(layer, betas=betas)
    check_human_proportions(kp)
    rest = right.arrays["v_template"][edges] * 1000
    ratio = (
        np.linalg.norm(np.diff(verts[edges], axis=1), axis=-1)[:, 0]
        / np.linalg.norm(np.diff(rest, axis=1), axis=-1)[:, 0]
    )
    assert 0.3 < ratio.min() and ratio.max() < 2.0


def test_random_shapes_stay_human(layer):
    rng = np.random.default_rng(0)
    for betas in np.clip(rng.normal(size=(40, 10)), -2, 2):
        _, kp = pose(layer, betas=betas)
        check_human_proportions(kp)


def test_shape_directions_are_independent_and_change_the_hand(right):
    dirs = right.arrays["shapedirs"].reshape(-1, 10)
    unit = dirs / np.linalg.norm(dirs, axis=0)
    # no direction is (nearly) a combination of the others
    assert np.linalg.svd(unit, compute_uv=False).min() > 0.03
    # one unit of shape moves some vertex by at least a millimetre
    assert (np.abs(dirs).max(0) > 1e-3).all()


def test_sixteen_parts_labelled_and_connected(right, edges):
    labels = right.part_labels
    counts = np.bincount(labels, minlength=16)
    assert len(counts) == 16 and counts.min() >= 30
    # Every part touches only its parent, its children, or (for finger bases) its neighbour.
    finger_bases = {1, 4, 7, 10}
    for a, b in {tuple(sorted(p)) for p in labels[edges] if p[0] != p[1]}:
        related = PARENTS[b] == a or PARENTS[a] == b or {a, b} <= finger_bases
        assert related, (anatomy.JOINT_NAMES[a], anatomy.JOINT_NAMES[b])


def test_fingertips_are_at_the_ends_of_the_fingers(right, layer):
    verts = right.arrays["v_template"] * 1000
    _, tips, _ = anatomy.rest_skeleton()
    ids = right.fingertip_ids
    assert len(set(ids.tolist())) == 5
    assert np.linalg.norm(verts[ids] - tips, axis=1).max() < 3.0
    for f, name in enumerate(anatomy.FINGERS):
        direction = anatomy.digit_direction(anatomy.DIGITS[name])
        on_finger = right.part_labels == anatomy.FINGER_JOINTS[name][2]
        assert verts[ids[f]] @ direction >= (verts[on_finger] @ direction).max() - 1e-9
        assert right.part_labels[ids[f]] == anatomy.FINGER_JOINTS[name][2]


def test_skinning_weights_sum_to_one_and_vary_smoothly(right, edges):
    w = right.arrays["weights"]
    verts = right.arrays["v_template"] * 1000
    assert (w >= 0).all()
    np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-9)
    step = np.abs(w[edges[:, 0]] - w[edges[:, 1]]).max(1)
    length = np.linalg.norm(verts[edges[:, 0]] - verts[edges[:, 1]], axis=1)
    assert step.max() < 0.75
    assert (step / length).max() < 0.2  # per millimetre
    assert np.percentile(step, 99) < 0.5
    # at most four influences per vertex, as game engines skin
    assert (w > 0).sum(1).max() <= 4


def test_joint_regressor_reproduces_the_skeleton(right):
    reg = right.arrays["J_regressor"]
    assert reg.shape == (16, right.num_vertices)
    assert (reg >= 0).all()
    np.testing.assert_allclose(reg.sum(1), 1.0, atol=1e-9)
    joints, _, _ = anatomy.rest_skeleton()
    np.testing.assert_allclose(reg @ right.arrays["v_template"] * 1000, joints, atol=0.05)
    assert ((reg > 0).sum(1) >= 4).all()  # a ring of vertices, not a single vertex


@pytest.mark.parametrize("name", POSE_NAMES)
def test_posed_fingers_bend_without_tearing(layer, right, edges, name):
    verts, _ = pose(layer, named_pose(name))
    rest = right.arrays["v_template"] * 1000
    ratio = np.linalg.norm(verts[edges[:, 0]] - verts[edges[:, 1]], axis=1) / np.linalg.norm(
        rest[edges[:, 0]] - rest[edges[:, 1]], axis=1
    )
    assert np.isfinite(verts).all()
    assert 0.05 < ratio.min() and ratio.max() < 2.5, (ratio.min(), ratio.max())


def test_full_flexion_stays_within_bounds(layer, right, edges):
    hp = anatomy.flexion_axes()[1:] * np.radians(90)
    hp[12:] *= 0.5  # the thumb's joints bend about half as far
    verts, kp = pose(layer, hp)
    rest = right.arrays["v_template"] * 1000
    ratio = np.linalg.norm(verts[edges[:, 0]] - verts[edges[:, 1]], axis=1) / np.linalg.norm(
        rest[edges[:, 0]] - rest[edges[:, 1]], axis=1
    )
    assert 0.03 < ratio.min() and ratio.max() < 4.0
    # curled fingertips come back toward the palm
    _, flat = pose(layer)
    for finger in FOUR:
        assert dist(kp, "wrist", f"{finger}_tip") < 0.7 * dist(flat, "wrist", f"{finger}_tip")


def test_left_is_the_mirror_of_right(models):
    r, left = models["right"].arrays, models["left"].arrays
    np.testing.assert_array_equal(left["v_template"], r["v_template"] * [-1, 1, 1])
    np.testing.assert_array_equal(left["f"], r["f"][:, ::-1])
    np.testing.assert_array_equal(left["weights"], r["weights"])
    np.testing.assert_array_equal(left["J_regressor"], r["J_regressor"])
    np.testing.assert_array_equal(left["shapedirs"][:, 0], -r["shapedirs"][:, 0])
    np.testing.assert_array_equal(left["shapedirs"][:, 1:], r["shapedirs"][:, 1:])
    np.testing.assert_array_equal(models["left"].fingertip_ids, models["right"].fingertip_ids)


def test_meshes_are_closed_and_outward(models):
    for side in ("left", "right"):
        data = models[side]
        faces = data.faces
        e = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), 1)
        _, counts = np.unique(e, axis=0, return_counts=True)
        assert (counts == 2).all()  # every edge shared by two faces: watertight
        v = data.arrays["v_template"]
        a, b, c = v[faces[:, 0]], v[faces[:, 1]], v[faces[:, 2]]
        volume = np.einsum("ij,ij->", a, np.cross(b, c)) / 6
        assert 2e-4 < volume < 6e-4  # m^3: an adult hand is about 400 ml


def test_files_use_manos_layout_and_smplx_loads_them():
    import smplx

    for side in ("right", "left"):
        path = open_model_path(side)
        data = load_mano_pickle(path)  # the restricted loader accepts them
        for key in ("f", "v_template", "shapedirs", "posedirs", "J_regressor", "weights",
                    "kintree_table", "hands_components", "hands_mean"):  # fmt: skip
            assert key in data
        layer = smplx.MANO(model_path=str(path), use_pca=False, flat_hand_mean=True)
        assert layer.is_rhand == (side == "right")
        out = layer(
            global_orient=torch.zeros(2, 3),
            hand_pose=torch.zeros(2, 45),
            betas=torch.zeros(2, 10),
            transl=torch.zeros(2, 3),
        )
        assert out.vertices.shape == (2, len(data["v_template"]), 3)
        assert out.joints.shape == (2, 16, 3)
        assert torch.isfinite(out.vertices).all()


def _regressed_joints(model: dict) -> np.ndarray:
    """(16, 3) rest joints of a model pickle, whatever its regressor's storage."""
    regressor = model["J_regressor"]
    regressor = regressor.toarray() if hasattr(regressor, "toarray") else np.asarray(regressor)
    return regressor @ np.asarray(model["v_template"])


def _posed(path, side: str) -> tuple[np.ndarray, np.ndarray]:
    """(V, 3) vertices and (16, 3) joints of the model at ``path`` in a fixed bent pose."""
    import smplx

    generator = torch.Generator().manual_seed(0)
    layer = smplx.MANO(model_path=str(path), is_rhand=side == "right", use_pca=False,
                       flat_hand_mean=True)  # fmt: skip
    out = layer(
        global_orient=torch.tensor([[0.3, -0.5, 0.2]]),
        hand_pose=0.4 * torch.randn(1, 45, generator=generator),
        betas=torch.randn(1, 10, generator=generator),
    )
    return out.vertices[0].detach().numpy(), out.joints[0].detach().numpy()


@pytest.mark.slow
def test_generator_rebuilds_the_committed_model(tmp_path):
    """The generator rebuilds the committed model: the same layout and fixed tables exactly,
    the same geometry to a fraction of a millimetre.

    Not bit for bit: MeshLab's remeshing takes other decisions in another install of the same
    versions (2793 against 2787 vertices, measured in two virtual environments that differed
    only in their path), so vertex counts and orders may differ a little.
    """
    from scipy.spatial import cKDTree

    from handmocap.core.openhand.generate import PREVIEW_FACES, signed_volume

    # In a fresh process, as the generator is meant to run.
    subprocess.run(
        [sys.executable, "-m", "handmocap.core.openhand.generate", "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    with np.load(tmp_path / "OPENHAND_PREVIEW.npz") as preview:
        assert set(preview.files) == {"left", "right"}
        for side in preview.files:
            assert abs(len(preview[side]) - PREVIEW_FACES) <= 0.02 * PREVIEW_FACES
    for side in ("right", "left"):
        new_path = tmp_path / f"OPENHAND_{side.upper()}.pkl"
        new = pickle.loads(new_path.read_bytes())
        old = load_mano_pickle(open_model_path(side))
        assert new.keys() == old.keys()
        for key in ("kintree_table", "hands_components", "hands_mean", "model_name", "side",
                    "model_version", "bs_style", "bs_type"):  # fmt: skip
            np.testing.assert_array_equal(new[key], old[key], err_msg=key)
        v_new, v_old = np.asarray(new["v_template"]), np.asarray(old["v_template"])
        assert abs(len(v_new) - len(v_old)) <= 0.01 * len(v_old)
        for array in ("weights", "shapedirs", "posedirs", "part_labels"):
            assert len(new[array]) == len(v_new), array
        volume = [signed_volume(v, np.asarray(m["f"], np.int64)) for v, m in
                  ((v_new, new), (v_old, old))]  # fmt: skip
        assert volume[0] == pytest.approx(volume[1], rel=1e-3)
        np.testing.assert_allclose(_regressed_joints(new), _regressed_joints(old), atol=1e-5)
        np.testing.assert_allclose(v_new[new["fingertip_ids"]], v_old[old["fingertip_ids"]],
                                   atol=1e-5)  # fmt: skip
        # Posed and shaped: skinning, pose and shape blend shapes agree on the surface.
        pv_new, pj_new = _posed(new_path, side)
        pv_old, pj_old = _posed(open_model_path(side), side)
        np.testing.assert_allclose(pj_new, pj_old, atol=5e-4)  # 0.5 mm
        gaps = np.concatenate([cKDTree(pv_old).query(pv_new)[0], cKDTree(pv_new).query(pv_old)[0]])
        assert gaps.mean() < 1.2e-3  # vertex to nearest vertex; edges are 4 mm long


def test_preview_surface_is_closed_over_the_models_own_vertices(models):
    """The coarse surface previews draw: a quarter of the faces, every edge shared by two
    faces (no holes), wound as the full surface (outward normals), on the model's vertices."""
    for side, data in models.items():
        coarse, full = data.drawing_faces, data.faces
        assert 0.2 * len(full) < len(coarse) < 0.3 * len(full)
        assert coarse.max() < data.num_vertices
        edges = mesh_edges(coarse)
        _, counts = np.unique(np.sort(
            np.concatenate([coarse[:, [0, 1]], coarse[:, [1, 2]], coarse[:, [2, 0]]]), axis=1
        ), axis=0, return_counts=True)  # fmt: skip
        assert (counts == 2).all() and len(edges) == len(counts)
        v = np.asarray(data.arrays["v_template"])
        ratio = signed_volume(v, coarse) / signed_volume(v, full)
        assert 0.85 < ratio < 1.05, (side, ratio)
