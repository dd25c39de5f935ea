"""Rotation conversions: axis-angle, quaternion (wxyz), matrix and the two 6D layouts in use.

Every public function takes either a ``torch.Tensor`` or a ``numpy.ndarray`` (array-likes such as
lists are read as numpy) with any number of leading batch dimensions, and answers in kind:

- torch in -> torch out, on the same device and with the same floating dtype, differentiable;
  integer tensors are read as ``torch.get_default_dtype()``.
- numpy in -> numpy out: float32 stays float32, every other dtype is computed and returned as
  float64.

The math lives in one place: the torch path, which delegates to ``roma``. Numpy input is copied
into a CPU tensor, converted, and copied back, so both paths give the same numbers.

Conventions
-----------
- Quaternions are **wxyz** (scalar first, as in Blender). ``roma`` uses xyzw; the conversion
  happens only at the boundary of this module.
- Rotation matrices act on column vectors: ``v' = R @ v``.
- Axis-angle (rotation vector) results have their angle (the norm) in [0, pi], up to rounding.
  At exactly pi the axis sign is ambiguous; compare such rotations through their matrices.
- 6D, column-wise (Zhou et al. 2019, DIR/manopth-style code): the first column of R followed by
  the second, ``[R00, R10, R20, R01, R11, R21]``.
- 6D, interleaved (the official ACR code, inherited from HMR/SPIN, which reads the vector with
  ``x.view(-1, 3, 2)``): ``R[:, :2]`` flattened row-major, ``[R00, R01, R10, R11, R20, R21]``.
  Both decoders orthonormalise with Gram-Schmidt, so any non-degenerate 6-vector gives a proper
  rotation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np
import roma
import torch

__all__ = [
    "axis_angle_to_matrix",
    "axis_angle_to_quat",
    "matrix_to_axis_angle",
    "matrix_to_quat",
    "matrix_to_rot6d",
    "matrix_to_rot6d_interleaved",
    "quat_canonical",
    "quat_make_continuous",
    "quat_to_axis_angle",
    "quat_to_matrix",
    "rot6d_interleaved_to_axis_angle",
    "rot6d_interleaved_to_matrix",
    "rot6d_to_axis_angle",
    "rot6d_to_matrix",
]

Array = TypeVar("Array", torch.Tensor, np.ndarray)

# Below this norm a quaternion or Gram-Schmidt column counts as degenerate; the same value as the
# default of torch.nn.functional.normalize, which the ACR/DIR decoders use.
_NORM_EPS = 1e-12


def _as_torch(
    x: Array, trailing: tuple[int, ...], name: str
) -> tuple[torch.Tensor, Callable[[torch.Tensor], Array]]:
    """Check the trailing shape of ``x`` and return it as a float tensor plus a function that
    turns a result tensor back into the caller's type (numpy or torch)."""
    if isinstance(x, torch.Tensor):
        t = x if x.is_floating_point() else x.to(torch.get_default_dtype())
        back: Callable[[torch.Tensor], Array] = _identity
    else:
        arr = np.asarray(x)
        dtype = np.float32 if arr.dtype == np.float32 else np.float64
        # A fresh C-ordered copy: read-only or negatively strided input is fine, and the caller's
        # array is never shared with the result.
        t = torch.from_numpy(np.array(arr, dtype=dtype, order="C", copy=True))
        back = _to_numpy
    if tuple(t.shape[-len(trailing) :]) != trailing or t.dim() < len(trailing):
        expected = ", ".join(["...", *map(str, trailing)])
        raise ValueError(f"{name} expects shape ({expected}), got {tuple(t.shape)}")
    return t, back


def _identity(t: torch.Tensor) -> torch.Tensor:
    """Return a torch result unchanged (the caller passed torch)."""
    return t


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    """Turn a CPU result tensor back into numpy (the caller passed numpy)."""
    return t.detach().numpy()


def _xyzw_to_wxyz(q: torch.Tensor) -> torch.Tensor:
    """(..., 4) roma quaternion xyzw -> (..., 4) our quaternion wxyz."""
    return torch.cat((q[..., 3:], q[..., :3]), dim=-1)


def _wxyz_to_xyzw(q: torch.Tensor) -> torch.Tensor:
    """(..., 4) our quaternion wxyz -> (..., 4) roma quaternion xyzw."""
    return torch.cat((q[..., 1:], q[..., :1]), dim=-1)


def _normalize(v: torch.Tensor) -> torch.Tensor:
    """Scale the last dimension to unit norm (degenerate vectors are left near zero, not NaN)."""
    return v / v.norm(dim=-1, keepdim=True).clamp_min(_NORM_EPS)


# --- axis-angle <-> matrix -------------------------------------------------------------------


def axis_angle_to_matrix(axis_angle: Array) -> Array:
    """(..., 3) axis-angle -> (..., 3, 3) rotation matrix.

    Rodrigues' formula, with a first-order expansion for tiny angles so that the value and the
    gradient at exactly zero are finite and correct. Any angle is accepted (not only [0, pi]).
    """
    aa, back = _as_torch(axis_angle, (3,), "axis_angle_to_matrix")
    return back(roma.rotvec_to_rotmat(aa))


def matrix_to_axis_angle(matrix: Array) -> Array:
    """(..., 3, 3) rotation matrix -> (..., 3) axis-angle with angle in [0, pi].

    Goes through a quaternion found by Markley's method, which stays accurate near pi (where the
    usual trace/antisymmetric-part formula loses the axis) and near 0.
    """
    m, back = _as_torch(matrix, (3, 3), "matrix_to_axis_angle")
    return back(roma.rotmat_to_rotvec(m))


# --- axis-angle <-> quaternion ---------------------------------------------------------------


def axis_angle_to_quat(axis_angle: Array) -> Array:
    """(..., 3) axis-angle -> (..., 4) unit quaternion wxyz.

    Not canonicalised: ``w = cos(angle / 2)`` is negative when the angle exceeds pi, which keeps
    the map continuous. Use :func:`quat_canonical` for ``w >= 0``.
    """
    aa, back = _as_torch(axis_angle, (3,), "axis_angle_to_quat")
    return back(_xyzw_to_wxyz(roma.rotvec_to_unitquat(aa)))


def quat_to_axis_angle(quat: Array) -> Array:
    """(..., 4) quaternion wxyz -> (..., 3) axis-angle with angle in [0, pi].

    The quaternion is normalised first, so small drift from unit length does no harm; q and -q give
    the same result.
    """
    q, back = _as_torch(quat, (4,), "quat_to_axis_angle")
    return back(roma.unitquat_to_rotvec(_wxyz_to_xyzw(_normalize(q)), shortest_arc=True))


# --- quaternion <-> matrix -------------------------------------------------------------------


def quat_to_matrix(quat: Array) -> Array:
    """(..., 4) quaternion wxyz -> (..., 3, 3) rotation matrix.

    The quaternion is normalised first, so the result is a proper rotation even after drift
    (an all-zero quaternion, which is no rotation, gives a zero matrix rather than NaN).
    """
    q, back = _as_torch(quat, (4,), "quat_to_matrix")
    return back(roma.unitquat_to_rotmat(_wxyz_to_xyzw(_normalize(q))))


def matrix_to_quat(matrix: Array) -> Array:
    """(..., 3, 3) rotation matrix -> (..., 4) unit quaternion wxyz with ``w >= 0``.

    Markley's variant of Shepperd's method: accurate for every angle, and unit length even for
    slightly non-orthonormal input.
    """
    m, back = _as_torch(matrix, (3, 3), "matrix_to_quat")
    return back(_canonical(_xyzw_to_wxyz(roma.rotmat_to_unitquat(m))))


# --- quaternion helpers ----------------------------------------------------------------------


def _canonical(q: torch.Tensor) -> torch.Tensor:
    """(..., 4) wxyz -> (..., 4) wxyz with ``w >= 0`` (torch only)."""
    return torch.where(q[..., :1] < 0, -q, q)


def quat_canonical(quat: Array) -> Array:
    """(..., 4) quaternion wxyz -> (..., 4) the same rotation with ``w >= 0``.

    q and -q are one rotation; this picks the representative with a non-negative scalar part,
    which makes quaternions comparable one by one. (At ``w == 0`` both signs remain possible.)
    """
    q, back = _as_torch(quat, (4,), "quat_canonical")
    return back(_canonical(q))


def quat_make_continuous(quat: Array) -> Array:
    """(T, ..., 4) quaternion sequence wxyz -> (T, ..., 4) with signs flipped for continuity.

    Each quaternion is negated where needed so that consecutive ones have a non-negative dot
    product. The first frame keeps its sign. Needed before filtering or interpolating quaternions
    component-wise, where an arbitrary sign flip would look like a jump of 360 degrees.
    """
    q, back = _as_torch(quat, (4,), "quat_make_continuous")
    if q.dim() < 2 or q.shape[0] < 2:
        return back(q.clone())
    # Sign of each step relative to the raw previous frame; the flip of frame t is the product of
    # the step signs up to t, which accounts for the flips already applied to earlier frames.
    dots = (q[1:] * q[:-1]).sum(dim=-1, keepdim=True)
    steps = torch.where(dots < 0, -1.0, 1.0).to(q.dtype)
    flips = torch.cat((torch.ones_like(steps[:1]), steps.cumprod(dim=0)), dim=0)
    return back(q * flips)


# --- 6D, column-wise (Zhou et al. 2019) --------------------------------------------------------


def matrix_to_rot6d(matrix: Array) -> Array:
    """(..., 3, 3) rotation matrix -> (..., 6) column-wise 6D ``[R00, R10, R20, R01, R11, R21]``.

    The first column of R followed by the second, as in Zhou et al. 2019 and DIR/manopth code.
    """
    m, back = _as_torch(matrix, (3, 3), "matrix_to_rot6d")
    return back(m[..., :, :2].transpose(-1, -2).reshape(*m.shape[:-2], 6))


def rot6d_to_matrix(rot6d: Array) -> Array:
    """(..., 6) column-wise 6D -> (..., 3, 3) rotation matrix.

    Gram-Schmidt: a = x[:3] normalised, b = x[3:] minus its component along a, normalised,
    third column = cross(a, b). Any non-degenerate input gives a proper rotation.
    """
    x, back = _as_torch(rot6d, (6,), "rot6d_to_matrix")
    columns = x.reshape(*x.shape[:-1], 2, 3).transpose(-1, -2)
    return back(roma.special_gramschmidt(columns, epsilon=_NORM_EPS))


def rot6d_to_axis_angle(rot6d: Array) -> Array:
    """(..., 6) column-wise 6D -> (..., 3) axis-angle with angle in [0, pi]."""
    return matrix_to_axis_angle(rot6d_to_matrix(rot6d))


# --- 6D, interleaved (ACR / HMR / SPIN) --------------------------------------------------------


def matrix_to_rot6d_interleaved(matrix: Array) -> Array:
    """(..., 3, 3) rotation matrix -> (..., 6) interleaved 6D ``[R00, R01, R10, R11, R20, R21]``.

    ``R[:, :2]`` flattened row-major: the layout the official ACR code reads with
    ``x.view(-1, 3, 2)``.
    """
    m, back = _as_torch(matrix, (3, 3), "matrix_to_rot6d_interleaved")
    return back(m[..., :, :2].reshape(*m.shape[:-2], 6))


def rot6d_interleaved_to_matrix(rot6d: Array) -> Array:
    """(..., 6) interleaved 6D -> (..., 3, 3) rotation matrix.

    The columns are (x0, x2, x4) and (x1, x3, x5); Gram-Schmidt as in :func:`rot6d_to_matrix`.
    """
    x, back = _as_torch(rot6d, (6,), "rot6d_interleaved_to_matrix")
    columns = x.reshape(*x.shape[:-1], 3, 2)
    return back(roma.special_gramschmidt(columns, epsilon=_NORM_EPS))


def rot6d_interleaved_to_axis_angle(rot6d: Array) -> Array:
    """(..., 6) interleaved 6D (ACR output) -> (..., 3) axis-angle with angle in [0, pi]."""
    return matrix_to_axis_angle(rot6d_interleaved_to_matrix(rot6d))
