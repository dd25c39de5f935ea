"""Rotation conversions: axis-angle, quaternion (wxyz), matrix and the two 6D layouts in use.

Every public function takes either a ``torch.Tensor`` or a ``numpy.ndarray`` (array-likes such as
lists are read as numpy) with any number of leading batch dimensions, and answers in kind:

- torch in -> torch out, on the same device and with the same floating dtype, differentiable;
  integer tensors are read as ``torch.get_default_dtype()``.
- numpy in -> numpy out: float32 stays float32, every other dtype is computed and returned as
  float64. The input is copied, never shared with the result.

The math lives in one place, written once for both libraries (closed forms with series near the
singular points, so values and gradients stay finite; the tests check it against scipy and
``roma``). Each formula reaches the few operations that numpy and torch spell differently
(``stack(axis=)`` against ``stack(dim=)``, ``arctan2`` against ``atan2``, ...) through a small
namespace picked from its input, so numpy input is computed by numpy and torch input by torch,
with the same formulas, in the same order. torch is never imported here: a tensor can only come
from a caller that has imported it, which is why numpy callers (the Blender add-on, whose Python
has no torch) can use this module. The two libraries may round the last bit differently (their
``sin`` or ``norm``), nothing more. ``roma`` itself is not imported: it loads ``torch._dynamo``
on import, which costs more than a second at the start of every command.

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

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

if TYPE_CHECKING:
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

Array = TypeVar("Array", "torch.Tensor", np.ndarray)

# Below this norm a quaternion or Gram-Schmidt column counts as degenerate; the same value as the
# default of torch.nn.functional.normalize, which the ACR/DIR decoders use.
_NORM_EPS = 1e-12


# --- the operations numpy and torch spell differently ----------------------------------------


@dataclass(frozen=True)
class _Ops:
    """The array operations the formulas use that are not spelled alike in numpy and torch.

    Everything else (arithmetic, ``@``, indexing, ``reshape``, ``argmax(-1)``, ``cumprod(0)``,
    ``ndim``, ``shape``) is the same in both and used directly.
    """

    stack: Callable[[Any, int], Any]  # (arrays, axis)
    cat: Callable[[Any, int], Any]  # (arrays, axis)
    sum: Callable[..., Any]  # (x, axis, keepdims=False)
    norm: Callable[[Any], Any]  # Euclidean norm over the last axis, kept
    sqrt: Callable[[Any], Any]
    sin: Callable[[Any], Any]
    cos: Callable[[Any], Any]
    atan2: Callable[[Any, Any], Any]
    where: Callable[[Any, Any, Any], Any]
    ones_like: Callable[[Any], Any]
    zeros_like: Callable[[Any], Any]
    maximum: Callable[[Any, float], Any]  # (x, scalar): clamp from below
    cross: Callable[[Any, Any], Any]  # over the last axis
    eye3: Callable[[Any], Any]  # the 3x3 identity in the dtype (and device) of the argument
    swap_last: Callable[[Any], Any]  # swap the last two axes
    take_rows: Callable[[Any, Any], Any]  # (x (..., n, m), index (...)) -> x[..., index, :]
    copy: Callable[[Any], Any]


_NUMPY = _Ops(
    stack=lambda arrays, axis: np.stack(arrays, axis=axis),
    cat=lambda arrays, axis: np.concatenate(arrays, axis=axis),
    sum=lambda x, axis, keepdims=False: x.sum(axis, keepdims=keepdims),
    norm=lambda x: np.linalg.norm(x, axis=-1, keepdims=True),
    sqrt=np.sqrt,
    sin=np.sin,
    cos=np.cos,
    atan2=np.arctan2,
    where=np.where,
    ones_like=np.ones_like,
    zeros_like=np.zeros_like,
    maximum=np.maximum,
    cross=lambda a, b: np.cross(a, b, axis=-1),
    eye3=lambda like: np.eye(3, dtype=like.dtype),
    swap_last=lambda x: np.swapaxes(x, -1, -2),
    take_rows=lambda x, index: np.take_along_axis(x, index[..., None, None], axis=-2)[..., 0, :],
    copy=np.copy,
)


@functools.cache
def _torch_ops() -> _Ops:
    """The torch spellings; built on the first tensor, so importing this module never imports
    torch."""
    import torch

    def take_rows(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        expanded = index[..., None, None].expand(*index.shape, 1, x.shape[-1])
        return x.gather(-2, expanded)[..., 0, :]

    return _Ops(
        stack=lambda arrays, axis: torch.stack(arrays, dim=axis),
        cat=lambda arrays, axis: torch.cat(arrays, dim=axis),
        sum=lambda x, axis, keepdims=False: x.sum(axis, keepdim=keepdims),
        # torch's norm, not sqrt of a sum: its gradient at a zero vector is 0, not NaN
        norm=lambda x: x.norm(dim=-1, keepdim=True),
        sqrt=torch.sqrt,
        sin=torch.sin,
        cos=torch.cos,
        atan2=torch.atan2,
        where=torch.where,
        ones_like=torch.ones_like,
        zeros_like=torch.zeros_like,
        maximum=torch.clamp_min,
        cross=lambda a, b: torch.cross(a, b, dim=-1),
        eye3=lambda like: torch.eye(3, dtype=like.dtype, device=like.device),
        swap_last=lambda x: x.transpose(-1, -2),
        take_rows=take_rows,
        copy=torch.clone,
    )


def _is_tensor(x: object) -> bool:
    """Whether ``x`` is a torch tensor, without importing torch (a tensor implies it is loaded)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _ops(x: object) -> _Ops:
    """The namespace for ``x``: torch's for a tensor, numpy's for anything else."""
    return _torch_ops() if _is_tensor(x) else _NUMPY


def _prepare(
    x: Any, trailing: tuple[int, ...], name: str, batch_axis: bool = True
) -> tuple[_Ops, Any, Callable[[Any], Any]]:
    """Check the trailing shape of ``x``; return its namespace, ``x`` as a float array of its own
    library, and a function that turns a result back into what the caller should get.

    Numpy input is copied into a fresh C-ordered float32 or float64 array (read-only or
    negatively strided input is fine, and the caller's array is never shared with the result)
    and, with ``batch_axis``, given a leading axis of length 1 that the returned function takes
    off again: numpy (before 2.0) promotes the 0-d results of reductions and indexing to float64
    when they meet a Python float, and with a batch axis none arises, so float32 stays float32.
    """
    if _is_tensor(x):
        import torch

        arr = x if x.is_floating_point() else x.to(torch.get_default_dtype())
        xp, back = _torch_ops(), _identity
    else:
        arr = np.asarray(x)
        dtype = np.float32 if arr.dtype == np.float32 else np.float64
        arr = np.array(arr, dtype=dtype, order="C", copy=True)
        xp, back = _NUMPY, functools.partial(_to_numpy, dtype=dtype, batch_axis=batch_axis)
    if tuple(arr.shape[-len(trailing) :]) != trailing or arr.ndim < len(trailing):
        expected = ", ".join(["...", *map(str, trailing)])
        raise ValueError(f"{name} expects shape ({expected}), got {tuple(arr.shape)}")
    if batch_axis and xp is _NUMPY:
        arr = arr[None]
    return xp, arr, back


def _identity(t: Any) -> Any:
    """Return a torch result unchanged (the caller passed torch)."""
    return t


def _to_numpy(out: np.ndarray, dtype: type, batch_axis: bool) -> np.ndarray:
    """Take the batch axis ``_prepare`` added off a numpy result, in the caller's dtype."""
    return np.asarray(out[0] if batch_axis else out, dtype=dtype)


def _normalize(xp: _Ops, v: Any) -> Any:
    """Scale the last dimension to unit norm (degenerate vectors are left near zero, not NaN)."""
    return v / xp.maximum(xp.norm(v), _NORM_EPS)


# Below this squared angle (or squared half-angle sine) the closed forms give way to their
# series, which are exact to rounding there in float32 and float64.
_SERIES = 1e-4


def _skew(xp: _Ops, v: Any) -> Any:
    """(..., 3) -> (..., 3, 3) cross-product matrices."""
    zero = xp.zeros_like(v[..., 0])
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    rows = (zero, -z, y), (z, zero, -x), (-y, x, zero)
    return xp.stack([xp.stack(r, -1) for r in rows], -2)


def skew(v: Array) -> Array:
    """(..., 3) -> (..., 3, 3) cross-product matrices: ``skew(a) @ b == cross(a, b)``.

    No conversion: a float tensor or float numpy array in, the same kind out.
    """
    return _skew(_ops(v), v)


def _rodrigues(xp: _Ops, aa: Any) -> Any:
    """(..., 3) axis-angle -> (..., 3, 3): R = I + sin(t)/t K + (1 - cos t)/t^2 K^2."""
    t2 = xp.sum(aa * aa, -1, True)[..., None]
    small = t2 < _SERIES
    safe2 = xp.where(small, xp.ones_like(t2), t2)
    t = xp.sqrt(safe2)
    a = xp.where(small, 1 - t2 / 6 + t2 * t2 / 120, xp.sin(t) / t)
    b = xp.where(small, 0.5 - t2 / 24 + t2 * t2 / 720, (1 - xp.cos(t)) / safe2)
    k = _skew(xp, aa)
    return xp.eye3(aa) + a * k + b * (k @ k)


def right_jacobian(axis_angle: Array) -> Array:
    """(..., 3) -> (..., 3, 3): R(a + d) = R(a) exp(J_r(a) d) to first order in d.

    No conversion: a float tensor or float numpy array in, the same kind out.
    """
    xp = _ops(axis_angle)
    t2 = xp.sum(axis_angle * axis_angle, -1, True)[..., None]
    small = t2 < _SERIES
    safe2 = xp.where(small, xp.ones_like(t2), t2)
    t = xp.sqrt(safe2)
    a = xp.where(small, 0.5 - t2 / 24 + t2 * t2 / 720, (1 - xp.cos(t)) / safe2)
    b = xp.where(small, 1 / 6 - t2 / 120 + t2 * t2 / 5040, (t - xp.sin(t)) / (safe2 * t))
    k = _skew(xp, axis_angle)
    return xp.eye3(axis_angle) - a * k + b * (k @ k)


def _rotvec_to_quat(xp: _Ops, aa: Any) -> Any:
    """(..., 3) axis-angle -> (..., 4) wxyz: (cos(t/2), sin(t/2)/t * aa)."""
    t2 = xp.sum(aa * aa, -1, True)
    small = t2 < _SERIES
    t = xp.sqrt(xp.where(small, xp.ones_like(t2), t2))
    w = xp.where(small, 1 - t2 / 8 + t2 * t2 / 384, xp.cos(t / 2))
    scale = xp.where(small, 0.5 - t2 / 48 + t2 * t2 / 3840, xp.sin(t / 2) / t)
    return xp.cat((w, aa * scale), -1)


def _quat_to_rotvec(xp: _Ops, q: Any) -> Any:
    """(..., 4) unit wxyz -> (..., 3) axis-angle, angle in [0, pi] (q and -q alike)."""
    q = _canonical(xp, q)
    w, v = q[..., :1], q[..., 1:]
    n2 = xp.sum(v * v, -1, True)
    small = n2 < _SERIES
    n = xp.sqrt(xp.where(small, xp.ones_like(n2), n2))
    # 2 atan2(n, w) / n, and its series in n for a unit quaternion (w near 1)
    safe_w = xp.where(small, w, xp.ones_like(w))
    series = 2 / safe_w * (1 - n2 / (3 * safe_w * safe_w))
    return v * xp.where(small, series, 2 * xp.atan2(n, w) / n)


def _quat_to_matrix(xp: _Ops, q: Any) -> Any:
    """(..., 4) wxyz -> (..., 3, 3), homogeneous form (a zero quaternion gives zero)."""
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    rows = (
        (w * w + x * x - y * y - z * z, 2 * (x * y - w * z), 2 * (x * z + w * y)),
        (2 * (x * y + w * z), w * w - x * x + y * y - z * z, 2 * (y * z - w * x)),
        (2 * (x * z - w * y), 2 * (y * z + w * x), w * w - x * x - y * y + z * z),
    )
    return xp.stack([xp.stack(r, -1) for r in rows], -2)


def _matrix_to_quat(xp: _Ops, m: Any) -> Any:
    """(..., 3, 3) -> (..., 4) unit wxyz (either sign): Markley's method, which builds the
    quaternion from whichever of w, x, y, z is largest, so no division loses precision."""
    d0, d1, d2 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    trace = d0 + d1 + d2
    s10, s01 = m[..., 1, 0], m[..., 0, 1]
    s20, s02 = m[..., 2, 0], m[..., 0, 2]
    s21, s12 = m[..., 2, 1], m[..., 1, 2]
    candidates = xp.stack(  # rows: from x, from y, from z, from w; columns w, x, y, z
        (
            xp.stack((s21 - s12, 1 + 2 * d0 - trace, s10 + s01, s20 + s02), -1),
            xp.stack((s02 - s20, s10 + s01, 1 + 2 * d1 - trace, s21 + s12), -1),
            xp.stack((s10 - s01, s20 + s02, s21 + s12, 1 + 2 * d2 - trace), -1),
            xp.stack((1 + trace, s21 - s12, s02 - s20, s10 - s01), -1),
        ),
        -2,
    )
    choice = xp.stack((d0, d1, d2, trace), -1).argmax(-1)
    return _normalize(xp, xp.take_rows(candidates, choice))


def _gram_schmidt(xp: _Ops, columns: Any) -> Any:
    """(..., 3, 2) two columns -> (..., 3, 3) rotation: a = c0 normalised, b = c1 minus its
    part along a, normalised, then a x b (as torch.nn.functional.normalize, so as ACR/DIR)."""
    a = _normalize(xp, columns[..., 0])
    c1 = columns[..., 1]
    b = _normalize(xp, c1 - xp.sum(a * c1, -1, True) * a)
    return xp.stack((a, b, xp.cross(a, b)), -1)


# --- axis-angle <-> matrix -------------------------------------------------------------------


def axis_angle_to_matrix(axis_angle: Array) -> Array:
    """(..., 3) axis-angle -> (..., 3, 3) rotation matrix.

    Rodrigues' formula, with a first-order expansion for tiny angles so that the value and the
    gradient at exactly zero are finite and correct. Any angle is accepted (not only [0, pi]).
    """
    xp, aa, back = _prepare(axis_angle, (3,), "axis_angle_to_matrix")
    return back(_rodrigues(xp, aa))


def matrix_to_axis_angle(matrix: Array) -> Array:
    """(..., 3, 3) rotation matrix -> (..., 3) axis-angle with angle in [0, pi].

    Goes through a quaternion found by Markley's method, which stays accurate near pi (where the
    usual trace/antisymmetric-part formula loses the axis) and near 0.
    """
    xp, m, back = _prepare(matrix, (3, 3), "matrix_to_axis_angle")
    return back(_quat_to_rotvec(xp, _matrix_to_quat(xp, m)))


# --- axis-angle <-> quaternion ---------------------------------------------------------------


def axis_angle_to_quat(axis_angle: Array) -> Array:
    """(..., 3) axis-angle -> (..., 4) unit quaternion wxyz.

    Not canonicalised: ``w = cos(angle / 2)`` is negative when the angle exceeds pi, which keeps
    the map continuous. Use :func:`quat_canonical` for ``w >= 0``.
    """
    xp, aa, back = _prepare(axis_angle, (3,), "axis_angle_to_quat")
    return back(_rotvec_to_quat(xp, aa))


def quat_to_axis_angle(quat: Array) -> Array:
    """(..., 4) quaternion wxyz -> (..., 3) axis-angle with angle in [0, pi].

    The quaternion is normalised first, so small drift from unit length does no harm; q and -q give
    the same result.
    """
    xp, q, back = _prepare(quat, (4,), "quat_to_axis_angle")
    return back(_quat_to_rotvec(xp, _normalize(xp, q)))


# --- quaternion <-> matrix -------------------------------------------------------------------


def quat_to_matrix(quat: Array) -> Array:
    """(..., 4) quaternion wxyz -> (..., 3, 3) rotation matrix.

    The quaternion is normalised first, so the result is a proper rotation even after drift
    (an all-zero quaternion, which is no rotation, gives a zero matrix rather than NaN).
    """
    xp, q, back = _prepare(quat, (4,), "quat_to_matrix")
    return back(_quat_to_matrix(xp, _normalize(xp, q)))


def matrix_to_quat(matrix: Array) -> Array:
    """(..., 3, 3) rotation matrix -> (..., 4) unit quaternion wxyz with ``w >= 0``.

    Markley's variant of Shepperd's method: accurate for every angle, and unit length even for
    slightly non-orthonormal input.
    """
    xp, m, back = _prepare(matrix, (3, 3), "matrix_to_quat")
    return back(_canonical(xp, _matrix_to_quat(xp, m)))


# --- quaternion helpers ----------------------------------------------------------------------


def _canonical(xp: _Ops, q: Any) -> Any:
    """(..., 4) wxyz -> (..., 4) wxyz with ``w >= 0``."""
    return xp.where(q[..., :1] < 0, -q, q)


def quat_canonical(quat: Array) -> Array:
    """(..., 4) quaternion wxyz -> (..., 4) the same rotation with ``w >= 0``.

    q and -q are one rotation; this picks the representative with a non-negative scalar part,
    which makes quaternions comparable one by one. (At ``w == 0`` both signs remain possible.)
    """
    xp, q, back = _prepare(quat, (4,), "quat_canonical")
    return back(_canonical(xp, q))


def quat_make_continuous(quat: Array) -> Array:
    """(T, ..., 4) quaternion sequence wxyz -> (T, ..., 4) with signs flipped for continuity.

    Each quaternion is negated where needed so that consecutive ones have a non-negative dot
    product. The first frame keeps its sign. Needed before filtering or interpolating quaternions
    component-wise, where an arbitrary sign flip would look like a jump of 360 degrees.
    """
    # no batch axis added: the first axis is time, and q has two axes wherever it matters
    xp, q, back = _prepare(quat, (4,), "quat_make_continuous", batch_axis=False)
    if q.ndim < 2 or q.shape[0] < 2:
        return back(xp.copy(q))
    # Sign of each step relative to the raw previous frame; the flip of frame t is the product of
    # the step signs up to t, which accounts for the flips already applied to earlier frames.
    dots = xp.sum(q[1:] * q[:-1], -1, True)
    ones = xp.ones_like(dots)
    steps = xp.where(dots < 0, -ones, ones)
    flips = xp.cat((ones[:1], steps.cumprod(0)), 0)
    return back(q * flips)


# --- 6D, column-wise (Zhou et al. 2019) --------------------------------------------------------


def matrix_to_rot6d(matrix: Array) -> Array:
    """(..., 3, 3) rotation matrix -> (..., 6) column-wise 6D ``[R00, R10, R20, R01, R11, R21]``.

    The first column of R followed by the second, as in Zhou et al. 2019 and DIR/manopth code.
    """
    xp, m, back = _prepare(matrix, (3, 3), "matrix_to_rot6d")
    return back(xp.swap_last(m[..., :, :2]).reshape(*m.shape[:-2], 6))


def rot6d_to_matrix(rot6d: Array) -> Array:
    """(..., 6) column-wise 6D -> (..., 3, 3) rotation matrix.

    Gram-Schmidt: a = x[:3] normalised, b = x[3:] minus its component along a, normalised,
    third column = cross(a, b). Any non-degenerate input gives a proper rotation.
    """
    xp, x, back = _prepare(rot6d, (6,), "rot6d_to_matrix")
    columns = xp.swap_last(x.reshape(*x.shape[:-1], 2, 3))
    return back(_gram_schmidt(xp, columns))


def rot6d_robust_to_matrix(rot6d: Array) -> Array:
    """(..., 6) column-wise 6D -> (..., 3, 3) rotation, the symmetric variant DIR's root uses.

    Unlike Gram-Schmidt, neither column is preferred: with a, b the two columns normalised,
    m = n(a + b) and o = n(a - b), the first two columns are n(m + o) and n(m - o) (each at 45
    degrees from m) and the third is their normalised cross product (manopth's
    ``robust_compute_rotation_matrix_from_ortho6d``).
    """
    xp, x, back = _prepare(rot6d, (6,), "rot6d_robust_to_matrix")
    a, b = _normalize(xp, x[..., :3]), _normalize(xp, x[..., 3:])
    middle, across = _normalize(xp, a + b), _normalize(xp, a - b)
    first, second = _normalize(xp, middle + across), _normalize(xp, middle - across)
    return back(xp.stack((first, second, _normalize(xp, xp.cross(first, second))), -1))


def rot6d_to_axis_angle(rot6d: Array) -> Array:
    """(..., 6) column-wise 6D -> (..., 3) axis-angle with angle in [0, pi]."""
    return matrix_to_axis_angle(rot6d_to_matrix(rot6d))


# --- 6D, interleaved (ACR / HMR / SPIN) --------------------------------------------------------


def matrix_to_rot6d_interleaved(matrix: Array) -> Array:
    """(..., 3, 3) rotation matrix -> (..., 6) interleaved 6D ``[R00, R01, R10, R11, R20, R21]``.

    ``R[:, :2]`` flattened row-major: the layout the official ACR code reads with
    ``x.view(-1, 3, 2)``.
    """
    xp, m, back = _prepare(matrix, (3, 3), "matrix_to_rot6d_interleaved")
    return back(m[..., :, :2].reshape(*m.shape[:-2], 6))


def rot6d_interleaved_to_matrix(rot6d: Array) -> Array:
    """(..., 6) interleaved 6D -> (..., 3, 3) rotation matrix.

    The columns are (x0, x2, x4) and (x1, x3, x5); Gram-Schmidt as in :func:`rot6d_to_matrix`.
    """
    xp, x, back = _prepare(rot6d, (6,), "rot6d_interleaved_to_matrix")
    columns = x.reshape(*x.shape[:-1], 3, 2)
    return back(_gram_schmidt(xp, columns))


def rot6d_interleaved_to_axis_angle(rot6d: Array) -> Array:
    """(..., 6) interleaved 6D (ACR output) -> (..., 3) axis-angle with angle in [0, pi]."""
    return matrix_to_axis_angle(rot6d_interleaved_to_matrix(rot6d))
