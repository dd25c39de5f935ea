"""Tests of handmocap.core.rotations: round trips, edge angles, 6D layouts, numpy/torch parity."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from handmocap.core import rotations as rot

SHAPES = [(), (7,), (4, 16)]
TORCH_DTYPES = [torch.float32, torch.float64]


# --- helpers ---------------------------------------------------------------------------------


def random_axis_angle(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """(*shape, 3) float64 axis-angles with uniformly random axes and angles in [0, pi)."""
    rng = np.random.default_rng(seed)
    axis = rng.normal(size=(*shape, 3))
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    return axis * rng.uniform(0.0, math.pi, size=(*shape, 1))


def random_matrix(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """(*shape, 3, 3) float64 random rotation matrices (via scipy, uniform on SO(3))."""
    n = int(np.prod(shape, dtype=int))
    return Rotation.random(n, random_state=seed).as_matrix().reshape(*shape, 3, 3)


def as_kind(x: np.ndarray, kind: str) -> np.ndarray | torch.Tensor:
    """Cast float64 test data to the numpy or torch dtype named by ``kind``."""
    if kind == "np64":
        return x
    return torch.from_numpy(x).to(torch.float32 if kind == "torch32" else torch.float64)


def to_np(x: np.ndarray | torch.Tensor) -> np.ndarray:
    """Return a float64 numpy copy of a result of either type."""
    if isinstance(x, torch.Tensor):
        return x.detach().double().numpy()
    return np.asarray(x, dtype=np.float64)


def tol(kind: str) -> float:
    """Absolute tolerance for the precision named by ``kind``."""
    return 2e-5 if kind == "torch32" else 1e-10


def rotation_about(axis: list[float], angle: float) -> np.ndarray:
    """(3, 3) matrix of a rotation by ``angle`` about a unit ``axis`` (Rodrigues, written out)."""
    k = np.asarray(axis, dtype=np.float64)
    skew = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(angle) * skew + (1 - math.cos(angle)) * skew @ skew


def assert_rotation(m: np.ndarray, atol: float) -> None:
    """Check that every (3, 3) matrix in ``m`` is orthonormal with determinant +1."""
    eye = np.broadcast_to(np.eye(3), m.shape)
    np.testing.assert_allclose(np.swapaxes(m, -1, -2) @ m, eye, atol=atol)
    np.testing.assert_allclose(np.linalg.det(m), 1.0, atol=atol)


KINDS = ["np64", "torch32", "torch64"]


# --- types, shapes, validation ---------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
def test_output_types_and_shapes(shape: tuple[int, ...]) -> None:
    aa = random_axis_angle(shape)
    out = rot.axis_angle_to_matrix(aa)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64 and out.shape == (*shape, 3, 3)
    out32 = rot.axis_angle_to_quat(aa.astype(np.float32))
    assert isinstance(out32, np.ndarray) and out32.dtype == np.float32
    assert out32.shape == (*shape, 4)
    for dtype in TORCH_DTYPES:
        t = rot.matrix_to_rot6d(torch.from_numpy(random_matrix(shape)).to(dtype))
        assert isinstance(t, torch.Tensor) and t.dtype == dtype and t.shape == (*shape, 6)
    # The identity in each 6D layout decodes to a zero axis-angle of the right shape.
    ident_interleaved = np.broadcast_to([1.0, 0, 0, 1, 0, 0], (*shape, 6))
    aa_np = rot.rot6d_interleaved_to_axis_angle(ident_interleaved)
    assert aa_np.shape == (*shape, 3) and np.all(aa_np == 0)
    ident_columns = torch.tensor([1.0, 0, 0, 0, 1, 0]).expand(*shape, 6)
    aa_t = rot.rot6d_to_axis_angle(ident_columns)
    assert aa_t.shape == (*shape, 3) and bool((aa_t == 0).all())


def test_integer_and_list_inputs_become_float() -> None:
    out = rot.axis_angle_to_matrix([0, 0, 0])
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, np.eye(3))
    t = rot.axis_angle_to_matrix(torch.zeros(3, dtype=torch.int64))
    assert t.dtype == torch.get_default_dtype()


def test_numpy_input_is_copied_not_shared() -> None:
    aa = random_axis_angle((5,), seed=10)
    reversed_view = aa[::-1]
    reversed_view.flags.writeable = False
    np.testing.assert_allclose(
        rot.axis_angle_to_matrix(reversed_view)[0], rot.axis_angle_to_matrix(aa[4])
    )
    q = np.array([[1.0, 0, 0, 0]])
    out = rot.quat_canonical(q)
    out[0, 0] = 5.0
    assert q[0, 0] == 1.0


def test_empty_batch() -> None:
    assert rot.axis_angle_to_matrix(np.zeros((0, 3))).shape == (0, 3, 3)
    assert rot.matrix_to_quat(torch.zeros(0, 3, 3)).shape == (0, 4)


@pytest.mark.parametrize(
    ("fn", "bad_shape", "expected"),
    [
        (rot.axis_angle_to_matrix, (5, 4), "(..., 3)"),
        (rot.axis_angle_to_quat, (), "(..., 3)"),
        (rot.quat_to_matrix, (3,), "(..., 4)"),
        (rot.quat_to_axis_angle, (2, 3), "(..., 4)"),
        (rot.matrix_to_axis_angle, (3, 4), "(..., 3, 3)"),
        (rot.matrix_to_quat, (9,), "(..., 3, 3)"),
        (rot.matrix_to_rot6d, (4, 3), "(..., 3, 3)"),
        (rot.matrix_to_rot6d_interleaved, (3,), "(..., 3, 3)"),
        (rot.rot6d_to_matrix, (3, 2), "(..., 6)"),
        (rot.rot6d_interleaved_to_matrix, (2, 3), "(..., 6)"),
        (rot.quat_make_continuous, (5, 3), "(..., 4)"),
    ],
)
def test_wrong_shape_raises(fn, bad_shape: tuple[int, ...], expected: str) -> None:
    for x in (np.zeros(bad_shape), torch.zeros(bad_shape)):
        with pytest.raises(ValueError, match=re.escape(expected)):
            fn(x)


# --- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", SHAPES)
def test_round_trips(kind: str, shape: tuple[int, ...]) -> None:
    aa = as_kind(random_axis_angle(shape, seed=1), kind)
    mat = as_kind(random_matrix(shape, seed=2), kind)
    atol = tol(kind)

    np.testing.assert_allclose(
        to_np(rot.matrix_to_axis_angle(rot.axis_angle_to_matrix(aa))), to_np(aa), atol=atol * 10
    )
    np.testing.assert_allclose(
        to_np(rot.quat_to_axis_angle(rot.axis_angle_to_quat(aa))), to_np(aa), atol=atol * 10
    )
    np.testing.assert_allclose(
        to_np(rot.quat_to_matrix(rot.matrix_to_quat(mat))), to_np(mat), atol=atol
    )
    np.testing.assert_allclose(
        to_np(rot.rot6d_to_matrix(rot.matrix_to_rot6d(mat))), to_np(mat), atol=atol
    )
    np.testing.assert_allclose(
        to_np(rot.rot6d_interleaved_to_matrix(rot.matrix_to_rot6d_interleaved(mat))),
        to_np(mat),
        atol=atol,
    )
    # 6D -> axis-angle convenience functions agree with the two-step path.
    np.testing.assert_allclose(
        to_np(rot.axis_angle_to_matrix(rot.rot6d_to_axis_angle(rot.matrix_to_rot6d(mat)))),
        to_np(mat),
        atol=atol * 10,
    )
    np.testing.assert_allclose(
        to_np(
            rot.axis_angle_to_matrix(
                rot.rot6d_interleaved_to_axis_angle(rot.matrix_to_rot6d_interleaved(mat))
            )
        ),
        to_np(mat),
        atol=atol * 10,
    )


@settings(max_examples=60, deadline=None)
@given(
    axis=st.tuples(*[st.floats(-1, 1, allow_nan=False)] * 3).filter(
        lambda v: sum(c * c for c in v) > 1e-6
    ),
    angle=st.floats(0.0, math.pi, allow_nan=False),
)
def test_axis_angle_round_trip_property(axis: tuple[float, float, float], angle: float) -> None:
    k = np.asarray(axis) / np.linalg.norm(axis)
    aa = k * angle
    mat = rot.axis_angle_to_matrix(aa)
    assert_rotation(mat, atol=1e-12)
    np.testing.assert_allclose(mat, rotation_about(k, angle), atol=1e-12)
    back = rot.matrix_to_axis_angle(mat)
    assert np.linalg.norm(back) <= math.pi + 1e-12
    # Compare through matrices: at exactly pi the axis sign is ambiguous.
    np.testing.assert_allclose(rot.axis_angle_to_matrix(back), mat, atol=1e-12)
    q = rot.axis_angle_to_quat(aa)
    assert q[0] >= 0.0
    np.testing.assert_allclose(np.linalg.norm(q), 1.0, atol=1e-12)
    np.testing.assert_allclose(rot.quat_to_matrix(q), mat, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    six=st.lists(st.floats(-10, 10, allow_nan=False), min_size=6, max_size=6).filter(
        lambda v: (
            np.linalg.norm(np.cross(v[:3], v[3:])) > 1e-3
            and np.linalg.norm(np.cross(v[0::2], v[1::2])) > 1e-3
        )
    )
)
def test_gram_schmidt_gives_rotation(six: list[float]) -> None:
    x = np.asarray(six)
    for decode in (rot.rot6d_to_matrix, rot.rot6d_interleaved_to_matrix):
        assert_rotation(decode(x), atol=1e-9)


def test_gram_schmidt_known_non_orthogonal_input() -> None:
    # Column-wise: a = (2, 0, 0), b = (1, 3, 0) -> x, y, z axes.
    np.testing.assert_allclose(rot.rot6d_to_matrix(np.array([2.0, 0, 0, 1, 3, 0])), np.eye(3))
    # Interleaved: the same two columns, stored row-major.
    np.testing.assert_allclose(
        rot.rot6d_interleaved_to_matrix(np.array([2.0, 1, 0, 3, 0, 0])), np.eye(3)
    )
    m = rot.rot6d_to_matrix(torch.tensor([[1.0, 0.2, -0.3, 0.5, 1.0, 0.1]]))
    assert_rotation(m.double().numpy(), atol=1e-6)


def test_robust_6d_treats_both_columns_alike() -> None:
    # orthonormal columns come back unchanged
    r = rot.axis_angle_to_matrix(np.array([0.3, -1.2, 0.5]))
    np.testing.assert_allclose(rot.rot6d_robust_to_matrix(np.concatenate([r[:, 0], r[:, 1]])), r,
                               atol=1e-12)  # fmt: skip
    # (1, 0, 0) and (1, 1, 0)/sqrt2 lie 45 degrees apart: the result's first two columns sit
    # 45 degrees either side of their bisector (Gram-Schmidt would keep the first column)
    m = rot.rot6d_robust_to_matrix(np.array([1.0, 0, 0, 1, 1, 0]))
    bisector = np.array([np.cos(np.pi / 8), np.sin(np.pi / 8), 0.0])
    np.testing.assert_allclose(m[:, 0] @ bisector, np.cos(np.pi / 4), atol=1e-12)
    np.testing.assert_allclose(m[:, 1] @ bisector, np.cos(np.pi / 4), atol=1e-12)
    np.testing.assert_allclose(m[:, 2], [0, 0, 1], atol=1e-12)
    assert_rotation(m[None], atol=1e-12)


# --- edge angles -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("angle", [0.0, 1e-8, 1e-4])
def test_small_angles(kind: str, angle: float) -> None:
    axis = np.array([0.48, -0.6, 0.64])
    aa = as_kind(axis * angle, kind)
    mat = rot.axis_angle_to_matrix(aa)
    np.testing.assert_allclose(to_np(mat), rotation_about(axis, angle), atol=tol(kind))
    for back in (rot.matrix_to_axis_angle(mat), rot.quat_to_axis_angle(rot.axis_angle_to_quat(aa))):
        assert np.all(np.isfinite(to_np(back)))
        np.testing.assert_allclose(to_np(back), axis * angle, atol=tol(kind) * 0.1)
    q = to_np(rot.matrix_to_quat(mat))
    np.testing.assert_allclose(
        q, [math.cos(angle / 2), *(axis * math.sin(angle / 2))], atol=tol(kind)
    )


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("angle", [math.pi - 1e-6, math.pi - 1e-7, math.pi])
@pytest.mark.parametrize("axis", [[1.0, 0, 0], [0, 0, -1.0], [0.48, -0.6, 0.64]])
def test_angles_near_pi(kind: str, angle: float, axis: list[float]) -> None:
    k = np.asarray(axis)
    mat = as_kind(rotation_about(k, angle), kind)
    for aa in (rot.matrix_to_axis_angle(mat), rot.quat_to_axis_angle(rot.matrix_to_quat(mat))):
        aa_np = to_np(aa)
        assert np.linalg.norm(aa_np) <= math.pi + 1e-6
        np.testing.assert_allclose(np.linalg.norm(aa_np), angle, atol=1e-5)
        # The axis is right up to the sign ambiguity at pi.
        assert abs(abs(np.dot(aa_np / np.linalg.norm(aa_np), k)) - 1.0) < 1e-6
        np.testing.assert_allclose(to_np(rot.axis_angle_to_matrix(aa)), to_np(mat), atol=1e-5)
    q = to_np(rot.matrix_to_quat(mat))
    assert q[0] >= 0.0
    np.testing.assert_allclose(to_np(rot.quat_to_matrix(q)), to_np(mat), atol=1e-5)


def test_angles_beyond_pi_are_wrapped() -> None:
    aa = np.array([0.0, 0.0, 1.5 * math.pi])
    back = rot.matrix_to_axis_angle(rot.axis_angle_to_matrix(aa))
    np.testing.assert_allclose(back, [0.0, 0.0, -0.5 * math.pi], atol=1e-12)
    q = rot.axis_angle_to_quat(aa)
    assert q[0] < 0  # continuous, not canonicalised
    np.testing.assert_allclose(rot.quat_to_axis_angle(q), back, atol=1e-12)
    np.testing.assert_allclose(rot.quat_canonical(q), -q)


# --- known values and layouts ----------------------------------------------------------------


def test_quarter_turn_about_x() -> None:
    aa = np.array([math.pi / 2, 0.0, 0.0])
    s = math.sqrt(0.5)
    expected_q = np.array([s, s, 0.0, 0.0])
    expected_m = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])
    np.testing.assert_allclose(rot.axis_angle_to_quat(aa), expected_q, atol=1e-15)
    np.testing.assert_allclose(rot.quat_to_matrix(expected_q), expected_m, atol=1e-15)
    np.testing.assert_allclose(rot.axis_angle_to_matrix(aa), expected_m, atol=1e-15)
    np.testing.assert_allclose(rot.matrix_to_quat(expected_m), expected_q, atol=1e-15)
    np.testing.assert_allclose(rot.matrix_to_axis_angle(expected_m), aa, atol=1e-15)
    np.testing.assert_allclose(rot.quat_to_axis_angle(expected_q), aa, atol=1e-15)


def test_6d_layouts_on_known_matrix() -> None:
    c, s = math.cos(math.radians(30)), math.sin(math.radians(30))
    rz = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(rot.axis_angle_to_matrix([0, 0, math.radians(30)]), rz, atol=1e-15)

    column_wise = rot.matrix_to_rot6d(rz)
    interleaved = rot.matrix_to_rot6d_interleaved(rz)
    # Column-wise: first column then second column.
    np.testing.assert_allclose(column_wise, [c, s, 0, -s, c, 0], atol=1e-15)
    # Interleaved: R[:, :2] row-major, as read by x.view(-1, 3, 2).
    np.testing.assert_allclose(interleaved, [c, -s, s, c, 0, 0], atol=1e-15)
    assert not np.allclose(column_wise, interleaved)

    np.testing.assert_allclose(rot.rot6d_to_matrix(column_wise), rz, atol=1e-15)
    np.testing.assert_allclose(rot.rot6d_interleaved_to_matrix(interleaved), rz, atol=1e-15)
    # Reading one layout with the other decoder gives a different rotation.
    assert not np.allclose(rot.rot6d_to_matrix(interleaved), rz, atol=1e-3)
    # The interleaved layout is exactly what ACR's view(-1, 3, 2) expects.
    view = torch.from_numpy(interleaved).view(-1, 3, 2)[0].numpy()
    np.testing.assert_array_equal(view, rz[:, :2])


# --- numpy/torch parity, scipy agreement, gradients ------------------------------------------


@pytest.mark.parametrize(
    ("fn", "make"),
    [
        (rot.axis_angle_to_matrix, lambda: random_axis_angle((4, 5), seed=3)),
        (rot.axis_angle_to_quat, lambda: random_axis_angle((4, 5), seed=3)),
        (rot.matrix_to_axis_angle, lambda: random_matrix((4, 5), seed=4)),
        (rot.matrix_to_quat, lambda: random_matrix((4, 5), seed=4)),
        (rot.quat_to_matrix, lambda: np.random.default_rng(5).normal(size=(4, 5, 4))),
        (rot.quat_to_axis_angle, lambda: np.random.default_rng(5).normal(size=(4, 5, 4))),
        (rot.rot6d_to_matrix, lambda: np.random.default_rng(6).normal(size=(4, 5, 6))),
        (rot.rot6d_interleaved_to_matrix, lambda: np.random.default_rng(6).normal(size=(4, 5, 6))),
    ],
)
def test_numpy_matches_torch(fn, make) -> None:
    x = make()
    out_np = fn(x)
    out_t = fn(torch.from_numpy(x))
    assert isinstance(out_np, np.ndarray) and isinstance(out_t, torch.Tensor)
    np.testing.assert_allclose(out_np, out_t.numpy(), rtol=0, atol=1e-14)
    out_np32 = fn(x.astype(np.float32))
    out_t32 = fn(torch.from_numpy(x).float())
    assert out_np32.dtype == np.float32 and out_t32.dtype == torch.float32
    np.testing.assert_allclose(out_np32, out_t32.numpy(), rtol=0, atol=1e-6)


def test_agrees_with_scipy() -> None:
    aa = random_axis_angle((50,), seed=7)
    ref = Rotation.from_rotvec(aa)
    np.testing.assert_allclose(rot.axis_angle_to_matrix(aa), ref.as_matrix(), atol=1e-12)
    q = rot.axis_angle_to_quat(aa)
    np.testing.assert_allclose(q, ref.as_quat(canonical=True, scalar_first=True), atol=1e-12)

    mats = Rotation.random(50, random_state=8)
    np.testing.assert_allclose(
        rot.matrix_to_quat(mats.as_matrix()),
        mats.as_quat(canonical=True, scalar_first=True),
        atol=1e-12,
    )
    np.testing.assert_allclose(
        rot.matrix_to_axis_angle(mats.as_matrix()), mats.as_rotvec(), atol=1e-12
    )
    quats = mats.as_quat(scalar_first=True)
    np.testing.assert_allclose(rot.quat_to_matrix(quats), mats.as_matrix(), atol=1e-12)
    np.testing.assert_allclose(rot.quat_to_axis_angle(quats), mats.as_rotvec(), atol=1e-12)


def test_gradcheck() -> None:
    gen = torch.Generator().manual_seed(0)
    aa = torch.randn(3, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    six = torch.randn(3, 6, dtype=torch.float64, generator=gen, requires_grad=True)
    quat = torch.randn(3, 4, dtype=torch.float64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(rot.axis_angle_to_matrix, (aa,))
    assert torch.autograd.gradcheck(rot.rot6d_to_matrix, (six,))
    assert torch.autograd.gradcheck(rot.rot6d_interleaved_to_matrix, (six,))
    assert torch.autograd.gradcheck(rot.quat_to_matrix, (quat,))
    assert torch.autograd.gradcheck(rot.quat_to_axis_angle, (quat,))


def test_gradient_at_zero_angle() -> None:
    zero = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    jac = torch.autograd.functional.jacobian(rot.axis_angle_to_matrix, zero)
    assert torch.isfinite(jac).all()
    # dR/d(aa_k) at the identity is the skew-symmetric generator of rotations about axis k.
    generators = torch.tensor(
        [
            [[0, 0, 0], [0, 0, -1], [0, 1, 0]],
            [[0, 0, 1], [0, 0, 0], [-1, 0, 0]],
            [[0, -1, 0], [1, 0, 0], [0, 0, 0]],
        ],
        dtype=torch.float64,
    )
    torch.testing.assert_close(jac.permute(2, 0, 1), generators)

    eye = torch.eye(3, dtype=torch.float64, requires_grad=True)
    jac_back = torch.autograd.functional.jacobian(rot.matrix_to_axis_angle, eye)
    assert torch.isfinite(jac_back).all()
    ident = torch.tensor([1.0, 0, 0, 0], dtype=torch.float64, requires_grad=True)
    assert torch.isfinite(torch.autograd.functional.jacobian(rot.quat_to_axis_angle, ident)).all()


# --- quaternion helpers ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_quat_make_continuous(kind: str) -> None:
    # A smooth sequence of 20 frames for a batch of 2 hands x 3 joints.
    t = np.linspace(0.0, 1.0, 20)[:, None, None, None]
    aa = random_axis_angle((1, 2, 3), seed=9) * (0.2 + t)
    smooth = rot.axis_angle_to_quat(aa)
    flips = np.ones((20, 2, 3, 1))
    flips[[3, 4, 9, 15]] = -1.0
    flips[0, 1, 2] = -1.0
    flips[11, 0, 1] = -1.0
    noisy = as_kind(smooth * flips, kind)

    fixed = rot.quat_make_continuous(noisy)
    assert type(fixed) is type(noisy)
    fixed_np = to_np(fixed)
    dots = (fixed_np[1:] * fixed_np[:-1]).sum(-1)
    assert (dots >= 0).all()
    # Each joint's sequence equals the smooth one up to the sign chosen by the first frame.
    np.testing.assert_allclose(fixed_np, smooth * flips[:1], atol=tol(kind))
    # The same rotations as before.
    np.testing.assert_allclose(
        to_np(rot.quat_to_matrix(fixed)), to_np(rot.quat_to_matrix(noisy)), atol=tol(kind)
    )


def test_quat_make_continuous_short_sequences() -> None:
    q = np.array([[0.0, 1.0, 0.0, 0.0]])
    np.testing.assert_array_equal(rot.quat_make_continuous(q), q)
    np.testing.assert_array_equal(rot.quat_make_continuous(np.zeros((0, 4))), np.zeros((0, 4)))


def test_quat_canonical() -> None:
    q = torch.tensor([[-0.5, 0.5, -0.5, 0.5], [0.5, 0.5, 0.5, 0.5], [0.0, -1.0, 0.0, 0.0]])
    out = rot.quat_canonical(q)
    assert (out[:, 0] >= 0).all()
    torch.testing.assert_close(out[0], -q[0])
    torch.testing.assert_close(out[1:], q[1:])


# --- against roma (the reference these closed forms replace) ----------------------------------


def test_every_conversion_matches_roma():
    roma = pytest.importorskip("roma", reason="roma is the reference implementation")
    aa = torch.from_numpy(random_axis_angle((64,), seed=3))
    aa = torch.cat([aa, torch.zeros(1, 3), 1e-7 * torch.ones(1, 3), torch.tensor([[0, 0, 3.14]])])
    matrix = roma.rotvec_to_rotmat(aa)
    torch.testing.assert_close(rot.axis_angle_to_matrix(aa), matrix)
    torch.testing.assert_close(rot.matrix_to_axis_angle(matrix), roma.rotmat_to_rotvec(matrix))
    quat = roma.rotvec_to_unitquat(aa)[..., [3, 0, 1, 2]]
    torch.testing.assert_close(rot.axis_angle_to_quat(aa), quat)
    torch.testing.assert_close(rot.quat_to_matrix(quat), matrix)
    torch.testing.assert_close(
        rot.quat_canonical(rot.matrix_to_quat(matrix)), rot.quat_canonical(quat)
    )
    six = torch.randn(32, 3, 2, dtype=torch.float64)
    torch.testing.assert_close(
        rot.rot6d_interleaved_to_matrix(six.reshape(32, 6)), roma.special_gramschmidt(six)
    )


@pytest.mark.parametrize("name", ["axis_angle_to_matrix", "axis_angle_to_quat"])
def test_gradients_are_finite_and_exact_at_zero(name):
    """At the identity the series take over: the derivative of R (or q) is the cross-product
    matrix (or half the identity), with no NaN."""
    zero = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    jac = torch.autograd.functional.jacobian(getattr(rot, name), zero)
    assert torch.isfinite(jac).all()
    if name == "axis_angle_to_matrix":
        expected = torch.stack([rot.skew(e) for e in torch.eye(3, dtype=torch.float64)], -1)
    else:
        expected = torch.cat([torch.zeros(1, 3), 0.5 * torch.eye(3)]).double()
    torch.testing.assert_close(jac, expected)


def test_right_jacobian_matches_finite_differences():
    aa = torch.tensor([0.4, -1.1, 0.7], dtype=torch.float64)
    for a in (aa, 1e-6 * aa):
        d = 1e-6 * torch.tensor([0.3, 0.2, -0.5], dtype=torch.float64)
        moved = rot.axis_angle_to_matrix(a + d)
        step = rot.axis_angle_to_matrix(rot.right_jacobian(a) @ d)
        torch.testing.assert_close(moved, rot.axis_angle_to_matrix(a) @ step, atol=1e-11, rtol=0)
