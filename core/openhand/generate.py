"""Generate the open hand model files (both sides) from the anatomy in ``anatomy.py``.

    python -m handmocap.core.openhand.generate --out core/assets/openhand

Steps: an implicit surface (tapered capsules for the digits, a rounded slab for the palm, a wrist
stub, smoothly blended) is meshed by marching cubes (scikit-image) and remeshed into even
triangles (MeshLab's isotropic remeshing, through pymeshlab); skinning weights are smooth
functions of the position along each digit; the joint regressor is a convex combination of the
vertices ringing each joint; the 10 shape directions are anatomical (size, finger length, palm
width, ...) deformations, linear in the shape values. Files are written in MANO's pickle key
layout so that ``smplx.MANO`` loads them.

Reproducibility: the implicit field and the marching-cubes mesh are bit-identical from run to
run, but MeshLab's remeshing is not the same from one install to another. Two virtual
environments with the same pinned versions at different paths remeshed the same input into
2793 and 2787 vertices. So a regenerated model matches the committed files in geometry (joints,
volume, surface) rather than bit for bit. The committed files are the model.
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
from pathlib import Path

import numpy as np
from scipy.optimize import nnls
from scipy.spatial import cKDTree

from handmocap.core.openhand import anatomy as A

MODEL_NAME = "openhand"
MODEL_VERSION = 1
VOXEL_MM = 1.2
EDGE_MM = 4.0
N_SHAPE = 10
N_POSE_BASIS = 135  # 15 joints x 9 rotation-matrix entries, as MANO's posedirs
PREVIEW_FACES = 1400  # faces of the coarser surface that previews draw


# --------------------------------------------------------------------------------------------
# Implicit surface
# --------------------------------------------------------------------------------------------


def smin(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Polynomial smooth minimum: blends two distance fields over a band of width k (mm)."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b * (1 - h) + a * h - k * h * (1 - h)


def tapered_capsule(p: np.ndarray, a: np.ndarray, b: np.ndarray, ra: float, rb: float):
    """(N, 3) points -> (N,) distance to a capsule from a (radius ra) to b (radius rb)."""
    ab = b - a
    # einsum, not @: BLAS may sum in another order with another thread count, and the mesh
    # (marching cubes, then remeshing) must not depend on the last bits of the field
    t = np.clip(np.einsum("ij,j->i", p - a, ab) / (ab @ ab), 0.0, 1.0)
    closest = a + t[:, None] * ab
    return np.linalg.norm(p - closest, axis=1) - (ra + t * (rb - ra))


def polygon_sdf(q: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """(N, 2) points -> (N,) signed distance to a closed polygon (negative inside)."""
    d = np.full(len(q), np.inf)
    inside = np.zeros(len(q), dtype=bool)
    for i in range(len(poly)):
        a, b = poly[i], poly[(i + 1) % len(poly)]
        e, w = b - a, q - a
        t = np.clip(np.einsum("ij,j->i", w, e) / (e @ e), 0.0, 1.0)
        d = np.minimum(d, np.linalg.norm(w - t[:, None] * e, axis=1))
        crosses = (a[1] <= q[:, 1]) != (b[1] <= q[:, 1])
        x_at = a[0] + (q[:, 1] - a[1]) * e[0] / np.where(e[1] == 0, 1e-12, e[1])
        inside ^= crosses & (q[:, 0] < x_at)
    return np.where(inside, -d, d)


def palm_sdf(p: np.ndarray) -> np.ndarray:
    """Rounded slab whose outline is ``PALM_OUTLINE`` (inset by the rounding radius)."""
    forward, lateral, up = -p[:, 0], p[:, 2], p[:, 1]
    d2 = polygon_sdf(np.stack([forward, lateral], 1), np.asarray(A.PALM_OUTLINE)) + A.PALM_ROUNDING
    dz = np.abs(up) - (A.PALM_HALF_THICKNESS - A.PALM_ROUNDING)
    outside = np.linalg.norm(np.stack([np.maximum(d2, 0), np.maximum(dz, 0)], 1), axis=1)
    return outside + np.minimum(np.maximum(d2, dz), 0) - A.PALM_ROUNDING


def wrist_sdf(p: np.ndarray) -> np.ndarray:
    """Elliptical cylinder around the wrist, cut flat on the forearm side (approximate SDF)."""
    forward, lateral, up = -p[:, 0], p[:, 2], p[:, 1]
    a, b = A.WRIST_SEMI_AXES
    radial = (np.sqrt((lateral / a) ** 2 + (up / b) ** 2) - 1.0) * min(a, b)
    middle, half = (A.WRIST_START + A.WRIST_END) / 2, (A.WRIST_END - A.WRIST_START) / 2
    return np.maximum(radial, np.abs(forward - middle) - half)


def digit_sdf(p: np.ndarray, name: str, joints: np.ndarray, tips: np.ndarray) -> np.ndarray:
    """Union of the digit's three segments; the distal one ends exactly at the fingertip."""
    digit = A.DIGITS[name]
    ids = A.FINGER_JOINTS[name]
    tip = tips[A.FINGERS.index(name)]
    direction = A.digit_direction(digit)
    points = [joints[ids[0]], joints[ids[1]], joints[ids[2]], tip - digit.radii[3] * direction]
    d = None
    for k in range(3):
        seg = tapered_capsule(p, points[k], points[k + 1], digit.radii[k], digit.radii[k + 1])
        d = seg if d is None else smin(d, seg, 2.0)
    if name == "thumb":  # the thenar eminence: flesh around the thumb's metacarpal
        mid = 0.55 * points[0] + 0.45 * points[1] + A.frame_point(0, -3.0, -3.0)
        thenar = tapered_capsule(p, points[0] + A.frame_point(4, -6, -2), mid, 13.5, 11.0)
        d = smin(d, thenar, 6.0)
    return d


def hand_sdf(p: np.ndarray) -> np.ndarray:
    """(N, 3) points in mm -> (N,) implicit hand surface (negative inside)."""
    joints, tips, _ = A.rest_skeleton()
    body = smin(palm_sdf(p), wrist_sdf(p), 14.0)
    d = None
    for name in A.FINGERS:
        k = 9.0 if name == "thumb" else 5.0
        part = smin(body, digit_sdf(p, name, joints, tips), k)
        d = part if d is None else np.minimum(d, part)
    return d


# --------------------------------------------------------------------------------------------
# Mesh
# --------------------------------------------------------------------------------------------


def build_mesh(voxel: float = VOXEL_MM, edge: float = EDGE_MM):
    """Marching cubes on the implicit surface, then isotropic remeshing: (V, 3) mm, (F, 3).

    Isotropic remeshing (MeshLab's, through pymeshlab) gives near-equilateral triangles of one
    size everywhere, which skinning needs: long thin triangles would tear when fingers bend.
    """
    import pymeshlab
    from skimage.measure import marching_cubes

    lo, hi = np.array([-200.0, -25.0, -60.0]), np.array([25.0, 25.0, 110.0])
    axes = [np.arange(lo[i], hi[i] + voxel, voxel) for i in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    values = np.concatenate([hand_sdf(chunk) for chunk in np.array_split(grid, 16)])
    volume = values.reshape(len(axes[0]), len(axes[1]), len(axes[2]))
    verts, faces, _, _ = marching_cubes(volume, level=0.0, spacing=(voxel,) * 3)
    meshes = pymeshlab.MeshSet()
    meshes.add_mesh(pymeshlab.Mesh(verts + lo, faces))
    meshes.meshing_isotropic_explicit_remeshing(iterations=8, targetlen=pymeshlab.PureValue(edge))
    meshes.meshing_close_holes(maxholesize=30)
    verts = np.asarray(meshes.current_mesh().vertex_matrix(), np.float64)
    faces = np.asarray(meshes.current_mesh().face_matrix(), np.int64)
    verts, faces = largest_component(verts, faces)
    # marching_cubes orients faces toward increasing values (outside) - make normals point out.
    if signed_volume(verts, faces) < 0:
        faces = faces[:, ::-1]
    return verts, faces


def largest_component(verts: np.ndarray, faces: np.ndarray):
    """Drop unreferenced vertices and any small disconnected pieces."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(verts)
    rows = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2]])
    cols = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0]])
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    used = np.bincount(faces.ravel(), minlength=n) > 0
    sizes = np.bincount(labels[used])
    keep = used & (labels == np.argmax(sizes))
    new_index = np.cumsum(keep) - 1
    faces = faces[keep[faces].all(1)]
    return verts[keep], new_index[faces]


def signed_volume(verts: np.ndarray, faces: np.ndarray) -> float:
    a, b, c = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    return float(np.einsum("ij,ij->", a, np.cross(b, c)) / 6.0)


def mesh_edges(faces: np.ndarray) -> np.ndarray:
    """(E, 2) unique undirected edges of a triangle mesh."""
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    return np.unique(np.sort(e, axis=1), axis=0)


# --------------------------------------------------------------------------------------------
# Skinning weights and part labels
# --------------------------------------------------------------------------------------------


def smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def digit_axis_distance(verts: np.ndarray, name: str, joints, tips) -> np.ndarray:
    """(V,) distance of each vertex to the digit's bone polyline, minus the local radius."""
    ids = A.FINGER_JOINTS[name]
    digit = A.DIGITS[name]
    points = [joints[i] for i in ids] + [tips[A.FINGERS.index(name)]]
    d = np.full(len(verts), np.inf)
    for k in range(3):
        seg = tapered_capsule(verts, points[k], points[k + 1], digit.radii[k], digit.radii[k + 1])
        d = np.minimum(d, seg)
    return d


def skinning_weights(verts: np.ndarray, blend=(1.0, 0.8, 0.8)) -> np.ndarray:
    """(V, 3) mm -> (V, 16) weights: smooth in space, summing to one, local to each joint.

    Along a digit, the weight passes from a segment to the next across the plane through the
    joint perpendicular to the digit, over a band of ``blend[k]`` times the local radius (for
    the base, middle and distal joint of the digit). A vertex
    belongs to the digits softly (softmin over the distances to their bones), so the web between
    two fingers blends them instead of jumping from one to the other.
    """
    joints, tips, radii = A.rest_skeleton()
    dist = np.stack([digit_axis_distance(verts, n, joints, tips) for n in A.FINGERS], 1)
    # The four fingers part sharply (they only meet at their webs); the thumb's web with the
    # palm is wide, so the thumb's share fades out over a much wider band.
    fingers = dist[:, 1:]
    share = np.exp(-(fingers - fingers.min(1, keepdims=True)) / 3.0)
    share /= share.sum(1, keepdims=True)
    thumb = 1.0 / (1.0 + np.exp((dist[:, 0] - fingers.min(1)) / 7.0))
    membership = np.concatenate([thumb[:, None], (1.0 - thumb)[:, None] * share], axis=1)
    weights = np.zeros((len(verts), 16))
    for f, name in enumerate(A.FINGERS):
        direction = A.digit_direction(A.DIGITS[name])
        ids = A.FINGER_JOINTS[name]
        # s[k]: how far past joint k (0 before the band, 1 after it).
        s = []
        for k, j in enumerate(ids):
            width = blend[k] * radii[j]
            offset = (verts - joints[j]) @ direction
            shift = width * (0.6 if k == 0 else 0.0)  # the base joint bends inside the palm
            s.append(smoothstep((offset + shift) / (2 * width) + 0.5))
        s1, s2, s3 = s
        m = membership[:, f]
        weights[:, ids[0]] += m * s1 * (1 - s2)
        weights[:, ids[1]] += m * s1 * s2 * (1 - s3)
        weights[:, ids[2]] += m * s1 * s2 * s3
        weights[:, 0] += m * (1 - s1)
    return limit_influences(weights)


def limit_influences(weights: np.ndarray, most: int = 4, floor: float = 0.005) -> np.ndarray:
    """Keep each vertex's ``most`` largest weights above ``floor`` and renormalise.

    Game engines skin with at most four bones per vertex (Unity's default, Unreal's minimum);
    a model that already obeys the limit exports without silent changes.
    """
    order = np.argsort(-weights, axis=1)
    keep = np.zeros_like(weights, dtype=bool)
    np.put_along_axis(keep, order[:, :most], True, axis=1)
    pruned = np.where(keep & (weights >= floor), weights, 0.0)
    return pruned / pruned.sum(1, keepdims=True)


def fingertip_ids(verts: np.ndarray) -> np.ndarray:
    """(5,) vertex ids of the fingertips (thumb..pinky): the vertex furthest along each digit."""
    joints, tips, _ = A.rest_skeleton()
    ids = []
    for f, name in enumerate(A.FINGERS):
        direction = A.digit_direction(A.DIGITS[name])
        near = np.linalg.norm(verts - tips[f], axis=1) < 8.0
        score = np.where(near, verts @ direction, -np.inf)
        ids.append(int(np.argmax(score)))
    return np.asarray(ids, dtype=np.int64)


# --------------------------------------------------------------------------------------------
# Joint regressor
# --------------------------------------------------------------------------------------------


def joint_ring(verts: np.ndarray, joint: int, joints: np.ndarray, radii) -> np.ndarray:
    """Ids of the vertices that ring a joint: near the plane through it, around its bone."""
    if joint == 0:
        direction = A.frame_point(1.0, 0.0, 0.0)
    else:
        name = next(n for n, ids in A.FINGER_JOINTS.items() if joint in ids)
        direction = A.digit_direction(A.DIGITS[name])
    rel = verts - joints[joint]
    along = rel @ direction
    across = np.linalg.norm(rel - along[:, None] * direction, axis=1)
    reach = 2.2 * radii[joint] if joint else 40.0
    for band in (1.5, 2.5, 4.0, 6.0):
        ring = np.flatnonzero((np.abs(along) < band) & (across < reach))
        if len(ring) >= 8:
            return ring
    raise RuntimeError(f"no vertex ring found around joint {A.JOINT_NAMES[joint]}")


def joint_regressor(verts: np.ndarray) -> np.ndarray:
    """(16, V) non-negative rows summing to one that reproduce the rest joints from the mesh.

    Each row solves min |w - uniform|^2 with w >= 0 over the joint's ring of vertices, subject
    (by a heavy penalty) to sum(w) = 1 and w @ ring = joint, so the regressed joints follow the
    surface when the shape changes, as MANO's do.
    """
    joints, _, radii = A.rest_skeleton()
    regressor = np.zeros((16, len(verts)))
    penalty = 1e4
    for j in range(16):
        ring = joint_ring(verts, j, joints, radii)
        n = len(ring)
        lhs = np.vstack([penalty * verts[ring].T, penalty * np.ones((1, n)), np.eye(n)])
        rhs = np.concatenate([penalty * joints[j], [penalty], np.full(n, 1.0 / n)])
        w, _ = nnls(lhs, rhs, maxiter=50 * n)
        regressor[j, ring] = w / w.sum()
    return regressor


# --------------------------------------------------------------------------------------------
# Shape directions
# --------------------------------------------------------------------------------------------

# Per shape value: (what changes, relative change per unit). Each is linear in the value.
SHAPE_DIRECTIONS = (
    {"size": 0.04},
    {"finger_length": 0.04},
    {"palm_width": 0.045},
    {"palm_length": 0.035},
    {"digit_girth": 0.05},
    {"thumb_length": 0.045},
    {"palm_taper": 0.06},
    {"index_length": 0.015, "ring_length": -0.015},
    {"pinky_length": 0.05},
    {"distal_length": 0.05, "proximal_length": -0.025},
)


def deform(verts: np.ndarray, weights: np.ndarray, change: dict[str, float]) -> np.ndarray:
    """Move the rest mesh by one anatomical change: per-bone maps blended by the weights.

    The palm scales about the wrist in its own axes and may taper (wider at the knuckles than
    at the wrist); each digit segment moves with its (moved) base joint, stretches along its
    axis and scales across it. Every map is linear in the amounts of ``change``, so the
    displacement is a valid linear shape direction.
    """
    joints, tips, _ = A.rest_skeleton()
    g = change.get
    size = g("size", 0.0)
    palm_scale = np.array([
        1 + size + g("palm_length", 0.0),  # x: along the fingers
        1 + size,  # y: thickness
        1 + size + g("palm_width", 0.0),  # z: across the palm
    ])  # fmt: skip
    knuckles = -joints[A.FINGER_JOINTS["middle"][0], 0]  # forward distance wrist -> knuckles

    def palm(p: np.ndarray) -> np.ndarray:
        rel = p - joints[0]
        taper = g("palm_taper", 0.0) * np.clip(-rel[..., 0] / knuckles, 0.0, None)
        out = rel * palm_scale
        out[..., 2] += taper * rel[..., 2]
        return joints[0] + out

    maps = [palm]
    for name in A.FINGERS:
        ids = A.FINGER_JOINTS[name]
        direction = A.digit_direction(A.DIGITS[name])
        along = np.outer(direction, direction)
        head = palm(joints[ids[0]])
        stretch_name = "thumb_length" if name == "thumb" else "finger_length"
        for k, j in enumerate(ids):
            segment_change = size + g(stretch_name, 0.0) + g(f"{name}_length", 0.0)
            segment_change += g(("proximal_length", "middle_length", "distal_length")[k], 0.0)
            girth = 1 + size + g("digit_girth", 0.0)
            matrix = (1 + segment_change) * along + girth * (np.eye(3) - along)
            maps.append(_affine(joints[j], matrix, head))
            child = joints[ids[k + 1]] if k < 2 else tips[A.FINGERS.index(name)]
            head = head + matrix @ (child - joints[j])
    out = np.zeros_like(verts)
    order = [0] + [j for n in A.FINGERS for j in A.FINGER_JOINTS[n]]
    for bone_map, j in zip(maps, order, strict=True):
        out += weights[:, j : j + 1] * bone_map(verts)
    return out


def _affine(origin: np.ndarray, matrix: np.ndarray, target: np.ndarray):
    """p -> matrix (p - origin) + target."""
    return lambda p: (p - origin) @ matrix.T + target


def shape_directions(verts: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(V, 3, 10) displacement per unit shape value."""
    dirs = [deform(verts, weights, change) - verts for change in SHAPE_DIRECTIONS]
    return np.stack(dirs, axis=-1)


# --------------------------------------------------------------------------------------------
# Relaxed mean pose and assembly
# --------------------------------------------------------------------------------------------


def relaxed_pose() -> np.ndarray:
    """(45,) axis-angle of a relaxed hand (slightly curled fingers), MANO's ``hands_mean``."""
    axes = A.flexion_axes()
    angles = np.zeros(16)
    for name in ("index", "middle", "ring", "pinky"):
        angles[list(A.FINGER_JOINTS[name])] = np.radians([12.0, 16.0, 8.0])
    angles[list(A.FINGER_JOINTS["thumb"])] = np.radians([4.0, 8.0, 10.0])
    return (axes * angles[:, None])[1:].reshape(45)


def mirror(model: dict) -> dict:
    """Right-hand model -> left-hand model: x negated, faces flipped, same vertex order."""
    left = dict(model)
    left["v_template"] = model["v_template"] * np.array([-1.0, 1.0, 1.0])
    left["f"] = model["f"][:, ::-1].copy()
    shapedirs = model["shapedirs"].copy()
    shapedirs[:, 0, :] *= -1
    left["shapedirs"] = shapedirs
    flip = np.array([1.0, -1.0, -1.0])  # a rotation mirrored in x: axis-angle (x, -y, -z)
    left["hands_mean"] = (model["hands_mean"].reshape(15, 3) * flip).reshape(45)
    left["side"] = "left"
    return left


def build_right_model(voxel: float = VOXEL_MM, edge: float = EDGE_MM) -> dict:
    """The right-hand model as a dict in MANO's pickle key layout (metres)."""
    verts, faces = build_mesh(voxel, edge)
    weights = skinning_weights(verts)
    labels = np.argmax(weights, axis=1)
    regressor = joint_regressor(verts)
    shapedirs = shape_directions(verts, weights)
    parents = np.array(A.PARENTS, dtype=np.int64)
    kintree = np.stack([np.where(parents < 0, 2**32 - 1, parents), np.arange(16)]).astype(np.uint32)
    return {
        "v_template": verts / 1000.0,
        "f": faces.astype(np.uint32),
        "weights": weights,
        "J_regressor": regressor,
        "shapedirs": shapedirs / 1000.0,
        "posedirs": np.zeros((len(verts), 3, N_POSE_BASIS), dtype=np.float32),
        "kintree_table": kintree,
        "hands_components": np.eye(45),
        "hands_mean": relaxed_pose(),
        "bs_style": "lbs",
        "bs_type": "lrotmin",
        # open-model extras (smplx ignores them)
        "part_labels": labels.astype(np.int64),
        "fingertip_ids": fingertip_ids(verts),
        "model_name": MODEL_NAME,
        "model_version": MODEL_VERSION,
        "side": "right",
    }


def preview_faces(verts: np.ndarray, faces: np.ndarray, target: int = PREVIEW_FACES) -> np.ndarray:
    """A coarser triangulation of the same surface over a subset of the same vertices.

    Quadric edge collapse without moving vertices, so the faces index the model's own posed
    vertices: previews draw a quarter of the triangles and look the same at video sizes.
    """
    import pymeshlab

    meshes = pymeshlab.MeshSet()
    meshes.add_mesh(pymeshlab.Mesh(verts, faces))
    meshes.meshing_decimation_quadric_edge_collapse(
        targetfacenum=target, optimalplacement=False, preservetopology=True
    )
    kept = meshes.current_mesh()
    distance, lookup = cKDTree(verts).query(kept.vertex_matrix())
    if distance.max() > 1e-6 or len(set(lookup.tolist())) != len(lookup):  # MeshLab: float32
        raise RuntimeError("decimation moved a vertex; the preview faces need the model's own")
    return lookup[kept.face_matrix()].astype(np.uint32)


def write_models(out_dir: Path, voxel: float = VOXEL_MM, edge: float = EDGE_MM):
    """Write ``OPENHAND_RIGHT.pkl``, ``OPENHAND_LEFT.pkl`` and ``OPENHAND_PREVIEW.npz`` (the
    coarser faces previews draw); return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    right = build_right_model(voxel, edge)
    coarse = preview_faces(right["v_template"], right["f"])
    preview = out_dir / "OPENHAND_PREVIEW.npz"
    np.savez(preview, right=coarse, left=coarse[:, ::-1].copy())
    print(f"wrote {preview} ({len(coarse)} faces a side, for previews)")
    paths = [preview]
    for side, model in (("RIGHT", right), ("LEFT", mirror(right))):
        path = out_dir / f"OPENHAND_{side}.pkl"
        data = pickle.dumps(model, protocol=2)
        path.write_bytes(data)
        paths.append(path)
        print(f"wrote {path} ({len(model['v_template'])} vertices, {len(model['f'])} faces, "
              f"sha256 {hashlib.sha256(data).hexdigest()[:12]})")  # fmt: skip
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the model files")
    parser.add_argument("--voxel", type=float, default=VOXEL_MM, help="marching-cubes grid, mm")
    parser.add_argument("--edge", type=float, default=EDGE_MM, help="target edge length, mm")
    args = parser.parse_args(argv)
    write_models(args.out, args.voxel, args.edge)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
