"""Temporal smoothing of one hand's parameters: the take's raw observations in, keyframes out.

Smoothing runs on demand, at bake or export time, on a copy: the take is never rewritten
(DESIGN.md, data flow step 5). One call smooths one hand of one take::

    out = smooth_hand(take.hand("right"), take.manifest.fps, "offline", smoothing_s=0.15)
    out["global_orient"], out["hand_pose"], out["betas"], out["transl"], out["valid"]

How the numbers are treated:

- **Rotations on the rotation manifold.** ``global_orient`` and the 15 finger rotations are
  turned into unit quaternions (wxyz), their signs are made continuous over time (q and -q are
  one rotation; averaging axis-angle vectors across the angle-pi boundary would pass through
  the identity), filtered, renormalised and turned back into axis-angle.
- **Vectors as vectors.** ``transl`` (metres) and ``betas`` are filtered component by component.
- **Confidence.** Every present frame carries a weight, its ``score`` clipped to [0.001, 1]
  (1 when the hand's arrays have no score, or with ``use_score=False``): a low-score frame pulls
  the result less than a confident one.
- **Gaps.** A frame takes part only where the hand is ``present`` (and its numbers finite). A
  run of at most ``max_gap`` absent frames between two present ones is *bridged*: filled by
  slerp (rotations) and linear interpolation (vectors) between the frames around it, weighted
  as the weaker of those two, filtered like its neighbours and marked in ``bridged``. A longer
  gap, and every absent frame before the first or after the last present one, stays a gap:
  NaN in the output, ``valid`` False, and the filter starts afresh after it (nothing invented,
  no state carried across).

Methods (``METHODS``) and the named presets built on them (``PRESETS``):

- ``"none"``: the raw numbers, unfiltered (short gaps bridged only if ``max_gap`` > 0).
- ``"one-euro"``: the One Euro filter (Casiez, Roussel and Vogel, CHI 2012): causal, an
  adaptive low-pass whose cutoff rises with speed, so slow motion is smoothed hard and fast
  motion keeps little lag. Preset ``"one-euro-acr"`` uses the official ACR demo's settings, but
  on quaternions (ACR filters axis-angle and rotation-matrix entries directly).
- ``"offline"``: zero-lag smoothing of recorded footage: a confidence-weighted local quadratic
  regression with a Gaussian window (a weighted Savitzky-Golay filter), symmetric in time so it
  adds no phase lag, unbiased at the ends of a segment, and exact on motion that is locally a
  parabola. Its strength is one number, ``smoothing_s``.

Joints (``joints3d``, ``joints2d``) are not smoothed here: the caller poses the hand model with
the smoothed parameters.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from handmocap.core.errors import HandmocapError
from handmocap.core.rotations import axis_angle_to_quat, quat_make_continuous, quat_to_axis_angle

__all__ = [
    "DEFAULT_MAX_GAP",
    "DEFAULT_SMOOTHING_S",
    "METHODS",
    "PRESETS",
    "NoSmoothing",
    "OfflineSettings",
    "OneEuroSettings",
    "Preset",
    "SmoothingError",
    "describe_presets",
    "find_segments",
    "local_poly_smooth",
    "offline_sigma_frames",
    "one_euro_quat",
    "one_euro_vector",
    "resolve_settings",
    "smooth_hand",
]

#: Longest run of absent frames (at the take's frame rate) that is bridged by interpolation.
DEFAULT_MAX_GAP = 5
#: Default strength of the offline smoother in seconds (-3 dB cutoff 1 / 0.25 s = 4 Hz, the ACR
#: One Euro preset's cutoff at rest); chosen on real hand motion with per-frame-network noise
#: (bench/bench_smoothing.py: acceleration error -89 % against the raw input; smoothing the
#: clean motion moves its keypoints 0.13 mm on average).
DEFAULT_SMOOTHING_S = 0.25
#: Per-hand fields that are smoothed; all others (joints, status) are left to the caller.
OUTPUT_FIELDS = ("global_orient", "hand_pose", "betas", "transl")
MIN_WEIGHT = 1e-3  # a present frame always counts a little, whatever its score


class SmoothingError(HandmocapError, ValueError):
    """Smoothing settings or per-hand arrays that cannot be used (one line, names the input)."""


# --------------------------------------------------------------------------------------------
# Settings and presets


def _check_gap(max_gap: Any) -> None:
    if isinstance(max_gap, bool) or not isinstance(max_gap, int) or max_gap < 0:
        raise SmoothingError(
            f"smoothing setting max_gap: expected an integer >= 0, got {max_gap!r}"
        )


def _check_number(name: str, value: Any, minimum: float = 0.0, strict: bool = True) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > minimum if strict else value >= minimum)
    if not ok:
        bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
        raise SmoothingError(f"smoothing setting {name}: expected a number {bound}, got {value!r}")


@dataclass(frozen=True)
class NoSmoothing:
    """Method ``"none"``: the raw numbers; gaps of up to ``max_gap`` frames bridged."""

    max_gap: int = 0

    def __post_init__(self) -> None:
        _check_gap(self.max_gap)


@dataclass(frozen=True)
class OneEuroSettings:
    """Method ``"one-euro"``: cutoffs in Hz, betas in Hz per unit of speed.

    Speed is rad/s for rotations (the angular speed of each joint), m/s for ``transl`` and
    units/s for ``betas``: the cutoff is ``mincutoff + beta * |filtered speed|``; ``dcutoff`` is
    the cutoff of the speed's own low-pass. The defaults are the official ACR demo's (freq 30,
    which here is the take's fps; dcutoff 1; fingers and global orientation 4.0 / 0.7; shape
    0.6 / 0.7). ACR leaves translation unfiltered; here it gets mincutoff 1 Hz and beta 20 Hz per
    m/s: at rest depth jitter is cut hard, and from about 0.15 m/s (a hand moving at all) the
    cutoff is above 4 Hz, as for the rotations.
    """

    mincutoff_pose: float = 4.0
    beta_pose: float = 0.7
    mincutoff_orient: float = 4.0
    beta_orient: float = 0.7
    mincutoff_betas: float = 0.6
    beta_betas: float = 0.7
    mincutoff_transl: float = 1.0
    beta_transl: float = 20.0
    dcutoff: float = 1.0
    max_gap: int = DEFAULT_MAX_GAP
    use_score: bool = True

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if f.name.startswith(("mincutoff", "dcutoff")):
                _check_number(f.name, getattr(self, f.name))
            elif f.name.startswith("beta"):
                _check_number(f.name, getattr(self, f.name), strict=False)
        _check_gap(self.max_gap)


@dataclass(frozen=True)
class OfflineSettings:
    """Method ``"offline"``: zero-lag local polynomial smoothing of recorded footage.

    ``smoothing_s`` (seconds) is the strength: motion repeating faster than once per
    ``smoothing_s`` counts as jitter. Precisely, the filter's -3 dB cutoff (amplitude kept
    1/sqrt(2)) is ``1 / smoothing_s`` Hz: 0.25 s keeps motion slower than 4 Hz nearly intact and
    removes faster jitter (7 % of it is left at 8 Hz, 0.07 % at 12 Hz); 0 turns smoothing off.
    ``degree`` 2 (local quadratic, the default) keeps peaks and turning points sharper than 1
    (local linear) at the same cutoff.
    """

    smoothing_s: float = DEFAULT_SMOOTHING_S
    degree: int = 2
    max_gap: int = DEFAULT_MAX_GAP
    use_score: bool = True

    def __post_init__(self) -> None:
        _check_number("smoothing_s", self.smoothing_s, strict=False)
        if self.degree not in (1, 2):
            raise SmoothingError(f"smoothing setting degree: expected 1 or 2, got {self.degree!r}")
        _check_gap(self.max_gap)


Settings = NoSmoothing | OneEuroSettings | OfflineSettings
_SETTINGS: Mapping[str, type[Settings]] = MappingProxyType(
    {"none": NoSmoothing, "one-euro": OneEuroSettings, "offline": OfflineSettings}
)
METHODS = tuple(_SETTINGS)


@dataclass(frozen=True)
class Preset:
    """A named choice of method and settings, with one line for the user."""

    method: str
    settings: Mapping[str, Any]
    description: str


PRESETS: Mapping[str, Preset] = MappingProxyType(
    {
        "none": Preset("none", {}, "the raw observations: no smoothing, gaps left as gaps"),
        "one-euro-acr": Preset(
            "one-euro",
            {
                "mincutoff_pose": 4.0,
                "beta_pose": 0.7,
                "mincutoff_orient": 4.0,
                "beta_orient": 0.7,
                "mincutoff_betas": 0.6,
                "beta_betas": 0.7,
                "dcutoff": 1.0,
            },
            "One Euro filter with the official ACR demo's settings, on quaternions: causal, "
            "light smoothing, little lag",
        ),
        "offline": Preset(
            "offline",
            {"smoothing_s": DEFAULT_SMOOTHING_S},
            f"zero-lag smoothing of recorded footage, strength smoothing_s="
            f"{DEFAULT_SMOOTHING_S:g} s (removes jitter faster than "
            f"{1 / DEFAULT_SMOOTHING_S:g} Hz)",
        ),
    }
)


def resolve_settings(method: str, **overrides: Any) -> tuple[str, Settings]:
    """A method or preset name plus overrides -> (method, its checked settings).

    Preset names come first (``"none"`` is both a preset and a method, with equal settings).
    """
    if method in PRESETS:
        preset = PRESETS[method]
        base, name = dict(preset.settings), preset.method
    elif method in _SETTINGS:
        base, name = {}, method
    else:
        known = ", ".join(sorted({*PRESETS, *METHODS}))
        raise SmoothingError(f"unknown smoothing method or preset {method!r}; known: {known}")
    cls = _SETTINGS[name]
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise SmoothingError(
            f"smoothing method {name!r} has no setting {', '.join(unknown)}; "
            f"its settings: {', '.join(names)}"
        )
    return name, cls(**{**base, **overrides})


def describe_presets() -> str:
    """The presets, one per line (``name: description [method, settings]``), for the user."""
    lines = []
    for name, preset in PRESETS.items():
        _, settings = resolve_settings(name)
        values = ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(settings).items())
        lines.append(f"{name}: {preset.description} [{preset.method}: {values}]")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Gaps


def find_segments(present: np.ndarray, max_gap: int) -> tuple[list[tuple[int, int]], np.ndarray]:
    """(T,) bool -> segments ``[(start, stop), ...]`` to filter apart, and (T,) bridged mask.

    A segment runs from a present frame to a present frame, across gaps of at most ``max_gap``
    absent frames (those are the bridged ones); a longer gap ends it.
    """
    present = np.asarray(present, dtype=bool)
    index = np.flatnonzero(present)
    bridged = np.zeros(len(present), dtype=bool)
    if len(index) == 0:
        return [], bridged
    breaks = np.flatnonzero(np.diff(index) - 1 > max_gap)
    starts = [int(index[0]), *(int(index[b + 1]) for b in breaks)]
    stops = [*(int(index[b]) + 1 for b in breaks), int(index[-1]) + 1]
    for start, stop in zip(starts, stops, strict=True):
        bridged[start:stop] = ~present[start:stop]
    return list(zip(starts, stops, strict=True)), bridged


def _neighbours(present: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(S,) bool, True at both ends -> previous and next present frame of each frame and the
    fraction of the way from one to the other (0 on present frames)."""
    frames = np.arange(len(present))
    prev = np.maximum.accumulate(np.where(present, frames, 0))
    nxt = np.minimum.accumulate(np.where(present, frames, len(present))[::-1])[::-1]
    span = np.maximum(nxt - prev, 1)
    return prev, nxt, (frames - prev) / span


def _slerp(q0: np.ndarray, q1: np.ndarray, f: np.ndarray) -> np.ndarray:
    """(N, ..., 4), (N, ..., 4) unit wxyz, (N,) fractions -> (N, ..., 4) on the shorter arc.

    Written out because each pair has its own fraction (roma's slerp takes one set of steps).
    """
    f = f.reshape(-1, *([1] * (q0.ndim - 1)))
    dot = (q0 * q1).sum(-1, keepdims=True)
    q1 = np.where(dot < 0, -q1, q1)
    angle = np.arccos(np.clip(np.abs(dot), 0.0, 1.0))
    small = angle < 1e-6
    sin = np.where(small, 1.0, np.sin(angle))
    w0 = np.where(small, 1.0 - f, np.sin((1.0 - f) * angle) / sin)
    w1 = np.where(small, f, np.sin(f * angle) / sin)
    q = w0 * q0 + w1 * q1
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def _bridge(
    quats: np.ndarray, vectors: np.ndarray, weights: np.ndarray, present: np.ndarray
) -> None:
    """Fill the absent frames of one segment in place: slerp, linear, the weaker weight.

    ``quats`` (S, J, 4), ``vectors`` (S, D), ``weights`` (S,), ``present`` (S,) True at both ends.
    """
    if present.all():
        return
    prev, nxt, f = _neighbours(present)
    gap = ~present
    p, n, fg = prev[gap], nxt[gap], f[gap]
    quats[gap] = _slerp(quats[p], quats[n], fg)
    vectors[gap] = (1.0 - fg)[:, None] * vectors[p] + fg[:, None] * vectors[n]
    weights[gap] = np.minimum(weights[p], weights[n])


# --------------------------------------------------------------------------------------------
# Quaternion helpers for the causal loop (numpy on small arrays: torch's per-call overhead
# would dominate a loop over frames)


def _qmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(..., 4) wxyz Hamilton product a * b."""
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


def _qlog(q: np.ndarray) -> np.ndarray:
    """(..., 4) unit wxyz with w >= 0 -> (..., 3) rotation vector (angle in [0, pi])."""
    v = q[..., 1:]
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(norm, q[..., :1])
    # angle / norm -> 2 as the rotation vanishes
    return v * np.where(norm > 1e-12, angle / np.maximum(norm, 1e-12), 2.0)


def _qexp(r: np.ndarray) -> np.ndarray:
    """(..., 3) rotation vector -> (..., 4) unit wxyz."""
    angle = np.linalg.norm(r, axis=-1, keepdims=True)
    half = 0.5 * angle
    scale = np.where(angle > 1e-12, np.sin(half) / np.maximum(angle, 1e-12), 0.5)
    return np.concatenate([np.cos(half), r * scale], axis=-1)


# --------------------------------------------------------------------------------------------
# One Euro filter


def _alpha(cutoff: np.ndarray | float, fps: float) -> np.ndarray:
    """Smoothing factor of a first-order low-pass at ``cutoff`` Hz sampled at ``fps``."""
    return 1.0 / (1.0 + fps / (2.0 * math.pi * np.asarray(cutoff)))


def _check_series(x: np.ndarray, weights: np.ndarray | None, what: str) -> np.ndarray:
    if weights is None:
        return np.ones(len(x))
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (len(x),):
        raise SmoothingError(f"{what}: weights must be ({len(x)},), got {weights.shape}")
    return weights


def one_euro_quat(
    quats: np.ndarray,
    fps: float,
    mincutoff: np.ndarray | float,
    beta: np.ndarray | float,
    dcutoff: float = 1.0,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """(T, J, 4) unit quaternions wxyz -> (T, J, 4): the One Euro filter on the sphere.

    Per joint, each frame's step from the filtered rotation to the new one is a rotation vector
    (the sign of the new quaternion is matched to the filter's first, so q and -q agree); its
    rate is the angular velocity, low-passed at ``dcutoff``; the cutoff is ``mincutoff + beta *
    |angular speed|`` (Hz, per joint: ``mincutoff`` and ``beta`` are scalars or (J,)); the
    filtered rotation moves along the geodesic by ``alpha(cutoff) * weight`` of the step (a
    slerp). ``weights`` (T,) in [0, 1], default 1, scale each frame's pull.
    """
    quats = np.asarray(quats, dtype=np.float64)
    w = _check_series(quats, weights, "one_euro_quat")
    out = np.empty_like(quats)
    if len(quats) == 0:
        return out
    mincutoff, beta = np.asarray(mincutoff)[..., None], np.asarray(beta)[..., None]
    a_d = float(_alpha(dcutoff, fps))
    state = quats[0] / np.linalg.norm(quats[0], axis=-1, keepdims=True)
    speed = np.zeros((*quats.shape[1:-1], 3))  # filtered angular velocity, rad/s
    out[0] = state
    for t in range(1, len(quats)):
        q = quats[t]
        q = np.where((q * state).sum(-1, keepdims=True) < 0, -q, q)
        # the step in the filter's local frame; w >= 0 after the sign match
        step = _qlog(_qmul(state * [1.0, -1.0, -1.0, -1.0], q))
        speed += (a_d * w[t]) * (step * fps - speed)
        cutoff = mincutoff + beta * np.linalg.norm(speed, axis=-1, keepdims=True)
        state = _qmul(state, _qexp((_alpha(cutoff, fps) * w[t]) * step))
        state /= np.linalg.norm(state, axis=-1, keepdims=True)
        out[t] = state
    return out


def one_euro_vector(
    x: np.ndarray,
    fps: float,
    mincutoff: np.ndarray | float,
    beta: np.ndarray | float,
    dcutoff: float = 1.0,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """(T, D) -> (T, D): the One Euro filter on each component (``mincutoff``, ``beta``: scalar
    or (D,)). The speed is the change from the filtered value, low-passed at ``dcutoff``;
    ``weights`` (T,) in [0, 1], default 1, scale each frame's pull."""
    x = np.asarray(x, dtype=np.float64)
    w = _check_series(x, weights, "one_euro_vector")
    out = np.empty_like(x)
    if len(x) == 0:
        return out
    a_d = float(_alpha(dcutoff, fps))
    state, speed = x[0].copy(), np.zeros_like(x[0])
    out[0] = state
    for t in range(1, len(x)):
        step = x[t] - state
        speed += (a_d * w[t]) * (step * fps - speed)
        state = state + (_alpha(mincutoff + beta * np.abs(speed), fps) * w[t]) * step
        out[t] = state
    return out


# --------------------------------------------------------------------------------------------
# Offline smoother


def _cutoff_x(degree: int) -> float:
    """x = (omega sigma)^2 / 2 where the Gaussian local polynomial's gain is 1/sqrt(2).

    For degree 2m or 2m+1 with a Gaussian window of width sigma the interior gain at angular
    frequency omega is exp(-x) * sum_{k<=m} x^k / k!; solved by Newton's method.
    """
    m = degree // 2
    x = 0.5
    for _ in range(50):
        partial = sum(x**k / math.factorial(k) for k in range(m + 1))
        gain = math.exp(-x) * partial
        slope = -math.exp(-x) * x**m / math.factorial(m)  # d/dx of exp(-x) * partial
        x -= (gain - 1.0 / math.sqrt(2.0)) / slope
    return x


def offline_sigma_frames(smoothing_s: float, fps: float, degree: int = 2) -> float:
    """The Gaussian window's sigma in frames that puts the -3 dB cutoff at 1 / smoothing_s Hz."""
    if smoothing_s <= 0:
        return 0.0
    omega = 2.0 * math.pi / smoothing_s  # rad/s at the cutoff
    return math.sqrt(2.0 * _cutoff_x(degree)) / omega * fps


def local_poly_smooth(
    x: np.ndarray, sigma: float, weights: np.ndarray | None = None, degree: int = 2
) -> np.ndarray:
    """(T, ...) -> (T, ...): weighted local polynomial regression with a Gaussian window.

    At each frame t a polynomial of ``degree`` in time is fitted to the frames around it by
    least squares with weights ``weights[s] * exp(-(s - t)^2 / (2 sigma^2))`` (``sigma`` in
    frames, window cut at 4 sigma) and its value at t is the result. Symmetric in time (no lag);
    near the ends the window is one-sided and the fit stays unbiased. A tiny ridge on the
    non-constant coefficients keeps frames with too few neighbours well posed (one frame gives
    itself back); a frame with no weight in its window comes out NaN.
    """
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    w = _check_series(x, weights, "local_poly_smooth")
    if n == 0 or sigma <= 0:
        return x.copy()
    flat = x.reshape(n, -1)
    radius = min(int(math.ceil(4.0 * sigma)), n - 1)
    offsets = range(-radius, radius + 1)
    powers = np.arange(2 * degree + 1)
    moments = np.zeros((n, 2 * degree + 1))  # sum of k_s w_s u^p, u = (s - t) / sigma
    for d in offsets:
        dst, src = _shifted(n, d)
        u = d / sigma
        moments[dst] += (math.exp(-0.5 * u * u) * w[src])[:, None] * u**powers
    index = np.add.outer(np.arange(degree + 1), np.arange(degree + 1))
    normal = moments[:, index]  # (T, degree + 1, degree + 1)
    diagonal = np.arange(1, degree + 1)
    normal[:, diagonal, diagonal] += 1e-9 * moments[:, :1]
    empty = moments[:, 0] <= 0  # no weight in the window: no estimate
    normal[empty] = np.eye(degree + 1)
    e0 = np.zeros((n, degree + 1, 1))
    e0[:, 0] = 1.0
    lead = np.linalg.solve(normal, e0)[..., 0]  # (T, degree + 1): row 0 of the inverse
    out = np.zeros_like(flat)
    for d in offsets:
        dst, src = _shifted(n, d)
        u = d / sigma
        kernel = math.exp(-0.5 * u * u) * w[src] * (lead[dst] @ u ** np.arange(degree + 1))
        out[dst] += kernel[:, None] * flat[src]
    out[empty] = np.nan
    return out.reshape(x.shape)


def _shifted(n: int, d: int) -> tuple[slice, slice]:
    """Slices (dst, src) with src = dst + d, both inside [0, n)."""
    return slice(max(0, -d), n - max(0, d)), slice(max(0, d), n - max(0, -d))


# --------------------------------------------------------------------------------------------
# One hand


def _read_hand(hand: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Check one hand's arrays (take field names, no side prefix); float64 copies."""
    missing = [k for k in ("present", *OUTPUT_FIELDS) if k not in hand]
    if missing:
        raise SmoothingError(f"hand arrays: missing field {', '.join(missing)}")
    present = np.asarray(hand["present"])
    if present.ndim != 1 or present.dtype != np.bool_:
        raise SmoothingError(
            f"hand arrays: field 'present' must be (T,) bool, got {present.shape} {present.dtype}"
        )
    n = len(present)
    shapes = {"global_orient": (3,), "hand_pose": (15, 3), "betas": (10,), "transl": (3,)}
    out = {"present": present}
    for name, shape in shapes.items():
        value = np.asarray(hand[name], dtype=np.float64)
        if value.shape != (n, *shape):
            raise SmoothingError(
                f"hand arrays: field {name!r} must be {(n, *shape)}, got {value.shape}"
            )
        out[name] = value
    if hand.get("score") is not None:
        score = np.asarray(hand["score"], dtype=np.float64)
        if score.shape != (n,):
            raise SmoothingError(f"hand arrays: field 'score' must be ({n},), got {score.shape}")
        out["score"] = score
    return out


def smooth_hand(
    hand: Mapping[str, Any], fps: float, method: str = "offline", **settings: Any
) -> dict[str, np.ndarray]:
    """Smooth one hand's parameters over time.

    ``hand``: the take's per-hand arrays without side prefix (``take.hand("left")``):
    ``present`` (T,) bool, ``global_orient`` (T, 3) and ``hand_pose`` (T, 15, 3) axis-angle,
    ``betas`` (T, 10), ``transl`` (T, 3) and, optional, ``score`` (T,); other fields are
    ignored. ``fps``: frames per second of the take. ``method``: a preset (``PRESETS``) or a
    method (``METHODS``); ``settings`` override the preset's or the method's defaults.

    Returns ``global_orient`` (T, 3), ``hand_pose`` (T, 15, 3), ``betas`` (T, 10), ``transl``
    (T, 3) as float32, NaN where ``valid`` is False; ``valid`` (T,) bool: present or bridged;
    ``bridged`` (T,) bool: filled by interpolation across a short gap.
    """
    _check_number("fps", fps)
    name, config = resolve_settings(method, **settings)
    arrays = _read_hand(hand)
    n = len(arrays["present"])
    finite = np.ones(n, dtype=bool)
    for field in OUTPUT_FIELDS:
        value = arrays[field]
        finite &= np.isfinite(value).all(axis=tuple(range(1, value.ndim)))
    usable = arrays["present"] & finite
    use_score = getattr(config, "use_score", False) and "score" in arrays
    score = np.nan_to_num(arrays["score"]) if use_score else np.ones(n)
    weights = np.where(usable, np.clip(score, MIN_WEIGHT, 1.0), 0.0)

    segments, bridged = find_segments(usable, config.max_gap)
    out = {
        "global_orient": np.full((n, 3), np.nan),
        "hand_pose": np.full((n, 15, 3), np.nan),
        "betas": np.full((n, 10), np.nan),
        "transl": np.full((n, 3), np.nan),
    }
    for start, stop in segments:
        part = slice(start, stop)
        rotations = np.concatenate(
            [arrays["global_orient"][part, None], arrays["hand_pose"][part]], axis=1
        )  # (S, 16, 3)
        vectors = np.concatenate([arrays["betas"][part], arrays["transl"][part]], axis=1)
        seg_present = usable[part]
        quats = np.zeros((stop - start, 16, 4))
        quats[seg_present] = quat_make_continuous(axis_angle_to_quat(rotations[seg_present]))
        seg_weights = weights[part].copy()
        _bridge(quats, vectors, seg_weights, seg_present)
        quats, vectors = _filter(config, quats, vectors, seg_weights, fps)
        if name == "none":  # present frames keep their raw numbers exactly
            rotations[~seg_present] = quat_to_axis_angle(quats[~seg_present])
        else:
            rotations = quat_to_axis_angle(quats)
        out["global_orient"][part] = rotations[:, 0]
        out["hand_pose"][part] = rotations[:, 1:]
        out["betas"][part] = vectors[:, :10]
        out["transl"][part] = vectors[:, 10:]
    result = {k: v.astype(np.float32) for k, v in out.items()}
    result["valid"] = usable | bridged
    result["bridged"] = bridged
    return result


def _filter(
    config: Settings,
    quats: np.ndarray,
    vectors: np.ndarray,
    weights: np.ndarray,
    fps: float,
) -> tuple[np.ndarray, np.ndarray]:
    """One segment, gaps bridged: (S, 16, 4) wxyz (orient, fingers), (S, 13) (betas, transl)."""
    if isinstance(config, OneEuroSettings):
        c = config
        mincutoff = np.array([c.mincutoff_orient] + [c.mincutoff_pose] * 15)
        beta = np.array([c.beta_orient] + [c.beta_pose] * 15)
        quats = one_euro_quat(quats, fps, mincutoff, beta, c.dcutoff, weights)
        mincutoff = np.array([c.mincutoff_betas] * 10 + [c.mincutoff_transl] * 3)
        beta = np.array([c.beta_betas] * 10 + [c.beta_transl] * 3)
        vectors = one_euro_vector(vectors, fps, mincutoff, beta, c.dcutoff, weights)
    elif isinstance(config, OfflineSettings):
        sigma = offline_sigma_frames(config.smoothing_s, fps, config.degree)
        quats = local_poly_smooth(quat_make_continuous(quats), sigma, weights, config.degree)
        quats /= np.maximum(np.linalg.norm(quats, axis=-1, keepdims=True), 1e-12)
        vectors = local_poly_smooth(vectors, sigma, weights, config.degree)
    return quats, vectors
