"""Rotation conversions: axis-angle, quaternion (wxyz), matrix and the two 6D layouts in use.

Every public function takes either a ``torch.Tensor`` or a ``numpy.ndarray`` (array-likes such as
lists are read as numpy) with any number of leading batch dimensions, and answers in kind:

- torch in -> torch out, on the same device and with the same floating dtype, differentiable;
  integer tensors are read as ``torch.get_default_dtype()``.
- numpy in -> numpy out: float32 stays float32, every other dtype is computed and returned as
  float64.

The math lives in one place: the torch path, written here (closed forms with series near the
singular points, so values and gradients stay finite; the tests check it against scipy and
``roma``). ``roma`` itself is not imported: it loads ``torch._dynamo`` on import, which costs
more than a second at the start of every command. Numpy input is copied into a CPU tensor,
converted, and copied back, so both paths give the same numbers.

Conventions
-----------
- Quaternions are **wxyz** (scalar first, as in Blender).
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
    "right_jacobian",
    "skew",
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


def _normalize(v: torch.Tensor) -> torch.Tensor:
    """Scale the last dimension to unit norm (degenerate vectors are left near zero, not NaN)."""
    return v / v.norm(dim=-1, keepdim=True).clamp_min(_NORM_EPS)


# Below this squared angle (or squared half-angle sine) the closed forms give way to their
# series, which are exact to rounding there in float32 and float64.
_SERIES = 1e-4


def skew(v: torch.Tensor) -> torch.Tensor:
    """(..., 3) -> (..., 3, 3) cross-product matrices: ``skew(a) @ b == cross(a, b)`` (torch)."""
    zero = torch.zeros_like(v[..., 0])
    x, y, z = v.unbind(-1)
    rows = (zero, -z, y), (z, zero, -x), (-y, x, zero)
    return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)


def _rodrigues(aa: torch.Tensor) -> torch.Tensor:
    """(..., 3) axis-angle -> (..., 3, 3): R = I + sin(t)/t K + (1 - cos t)/t^2 K^2."""
    t2 = aa.square().sum(-1)[..., None, None]
    small = t2 < _SERIES
    safe2 = torch.where(small, torch.ones_like(t2), t2)
    t = safe2.sqrt()
    a = torch.where(small, 1 - t2 / 6 + t2 * t2 / 120, torch.sin(t) / t)
    b = torch.where(small, 0.5 - t2 / 24 + t2 * t2 / 720, (1 - torch.cos(t)) / safe2)
    k = skew(aa)
    eye = torch.eye(3, dtype=aa.dtype, device=aa.device)
    return eye + a * k + b * (k @ k)


def right_jacobian(axis_angle: torch.Tensor) -> torch.Tensor:
    """(..., 3) -> (..., 3, 3): R(a + d) = R(a) exp(J_r(a) d) to first order in d (torch)."""
    t2 = axis_angle.square().sum(-1)[..., None, None]
    small = t2 < _SERIES
    safe2 = torch.where(small, torch.ones_like(t2), t2)
    t = safe2.sqrt()
    a = torch.where(small, 0.5 - t2 / 24 + t2 * t2 / 720, (1 - torch.cos(t)) / safe2)
    b = torch.where(small, 1 / 6 - t2 / 120 + t2 * t2 / 5040, (t - torch.sin(t)) / (safe2 * t))
    k = skew(axis_angle)
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device)
    return eye - a * k + b * (k @ k)


def _rotvec_to_quat(aa: torch.Tensor) -> torch.Tensor:
    """(..., 3) axis-angle -> (..., 4) wxyz: (cos(t/2), sin(t/2)/t * aa)."""
    t2 = aa.square().sum(-1, keepdim=True)
    small = t2 < _SERIES
    t = torch.where(small, torch.ones_like(t2), t2).sqrt()
    w = torch.where(small, 1 - t2 / 8 + t2 * t2 / 384, torch.cos(t / 2))
    scale = torch.where(small, 0.5 - t2 / 48 + t2 * t2 / 3840, torch.sin(t / 2) / t)
    return torch.cat((w, aa * scale), dim=-1)


def _quat_to_rotvec(q: torch.Tensor) -> torch.Tensor:
    """(..., 4) unit wxyz -> (..., 3) axis-angle, angle in [0, pi] (q and -q alike)."""
    q = _canonical(q)
    w, v = q[..., :1], q[..., 1:]
    n2 = v.square().sum(-1, keepdim=True)
    small = n2 < _SERIES
    n = torch.where(small, torch.ones_like(n2), n2).sqrt()
    # 2 atan2(n, w) / n, and its series in n for a unit quaternion (w near 1)
    safe_w = torch.where(small, w, torch.ones_like(w))
    series = 2 / safe_w * (1 - n2 / (3 * safe_w * safe_w))
    return v * torch.where(small, series, 2 * torch.atan2(n, w) / n)


def _quat_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """(..., 4) wxyz -> (..., 3, 3), homogeneous form (a zero quaternion gives zero)."""
    w, x, y, z = q.unbind(-1)
    rows = (
        (w * w + x * x - y * y - z * z, 2 * (x * y - w * z), 2 * (x * z + w * y)),
        (2 * (x * y + w * z), w * w - x * x + y * y - z * z, 2 * (y * z - w * x)),
        (2 * (x * z - w * y), 2 * (y * z + w * x), w * w - x * x - y * y + z * z),
    )
    return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)


def _matrix_to_quat(m: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (..., 4) unit wxyz (either sign): Markley's method, which builds the
    quaternion from whichever of w, x, y, z is largest, so no division loses precision."""
    d0, d1, d2 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    trace = d0 + d1 + d2
    s10, s01 = m[..., 1, 0], m[..., 0, 1]
    s20, s02 = m[..., 2, 0], m[..., 0, 2]
    s21, s12 = m[..., 2, 1], m[..., 1, 2]
    candidates = torch.stack(  # rows: from x, from y, from z, from w; columns w, x, y, z
        (
            torch.stack((s21 - s12, 1 + 2 * d0 - trace, s10 + s01, s20 + s02), -1),
            torch.stack((s02 - s20, s10 + s01, 1 + 2 * d1 - trace, s21 + s12), -1),
            torch.stack((s10 - s01, s20 + s02, s21 + s12, 1 + 2 * d2 - trace), -1),
            torch.stack((1 + trace, s21 - s12, s02 - s20, s10 - s01), -1),
        ),
        dim=-2,
    )
    choice = torch.stack((d0, d1, d2, trace), -1).argmax(-1)
    index = choice[..., None, None].expand(*choice.shape, 1, 4)
    return _normalize(candidates.gather(-2, index)[..., 0, :])


def _gram_schmidt(columns: torch.Tensor) -> torch.Tensor:
    """(..., 3, 2) two columns -> (..., 3, 3) rotation: a = c0 normalised, b = c1 minus its
    part along a, normalised, then a x b (as torch.nn.functional.normalize, so as ACR/DIR)."""
    a = _normalize(columns[..., 0])
    c1 = columns[..., 1]
    b = _normalize(c1 - (a * c1).sum(-1, keepdim=True) * a)
    return torch.stack((a, b, torch.cross(a, b, dim=-1)), dim=-1)


# --- axis-angle <-> matrix -------------------------------------------------------------------


def axis_angle_to_matrix(axis_angle: Array) -> Array:
    """(..., 3) axis-angle -> (..., 3, 3) rotation matrix.

    Rodrigues' formula, with a first-order expansion for tiny angles so that the value and the
    gradient at exactly zero are finite and correct. Any angle is accepted (not only [0, pi]).
    """
    aa, back = _as_torch(axis_angle, (3,), "axis_angle_to_matrix")
    return back(_rodrigues(aa))


def matrix_to_axis_angle(matrix: Array) -> Array:
    """(..., 3, 3) rotation matrix -> (..., 3) axis-angle with angle in [0, pi].

    Goes through a quaternion found by Markley's method, which stays accurate near pi (where the
    usual trace/antisymmetric-part formula loses the axis) and near 0.
    """
    m, back = _as_torch(matrix, (3, 3), "matrix_to_axis_angle")
    return back(_quat_to_rotvec(_matrix_to_quat(m)))


# --- axis-angle <-> quaternion ---------------------------------------------------------------


def axis_angle_to_quat(axis_angle: Array) -> Array:
    """(..., 3) axis-angle -> (..., 4) unit quaternion wxyz.

    Not canonicalised: ``w = cos(angle / 2)`` is negative when the angle exceeds pi, which keeps
    the map continuous. Use :func:`quat_canonical` for ``w >= 0``.
    """
    aa, back = _as_torch(axis_angle, (3,), "axis_angle_to_quat")
    return back(_rotvec_to_quat(aa))


def quat_to_axis_angle(quat: Array) -> Array:
    """(..., 4) quaternion wxyz -> (..., 3) axis-angle with angle in [0, pi].

    The quaternion is normalised first, so small drift from unit length does no harm; q and -q give
    the same result.
    """
    q, back = _as_torch(quat, (4,), "quat_to_axis_angle")
    return back(_quat_to_rotvec(_normalize(q)))


# --- quaternion <-> matrix -------------------------------------------------------------------


def quat_to_matrix(quat: Array) -> Array:
    """(..., 4) quaternion wxyz -> (..., 3, 3) rotation matrix.

    The quaternion is normalised first, so the result is a proper rotation even after drift
    (an all-zero quaternion, which is no rotation, gives a zero matrix rather than NaN).
    """
    q, back = _as_torch(quat, (4,), "quat_to_matrix")
    return back(_quat_to_matrix(_normalize(q)))


def matrix_to_quat(matrix: Array) -> Array:
    """(..., 3, 3) rotation matrix -> (..., 4) unit quaternion wxyz with ``w >= 0``.

    Markley's variant of Shepperd's method: accurate for every angle, and unit length even for
    slightly non-orthonormal input.
    """
    m, back = _as_torch(matrix, (3, 3), "matrix_to_quat")
    return back(_canonical(_matrix_to_quat(m)))


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
    return back(_gram_schmidt(columns))


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
    return back(_gram_schmidt(columns))


def rot6d_interleaved_to_axis_angle(rot6d: Array) -> Array:
    """(..., 6) interleaved 6D (ACR output) -> (..., 3) axis-angle with angle in [0, pi]."""
    return matrix_to_axis_angle(rot6d_interleaved_to_matrix(rot6d))
