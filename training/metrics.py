"""Evaluation metrics of two-hand reconstruction, under the protocols of ACR and DIR.

Metrics (inputs in metres, 3D errors reported in mm, 2D errors in pixels):

- ``mpjpe`` / ``mpvpe``: mean keypoint / vertex distance after the protocol's alignment: move
  the prediction so that its root keypoint (wrist or middle knuckle) lies on the GT's, and
  optionally scale it about that root by the GT/predicted length of the wrist -> middle-knuckle
  bone (IntagHand's and DIR's evaluation; *not* Procrustes). Vertices move with their hand's
  keypoints.
- ``pa_mpjpe`` / ``pa_mpvpe``: the same after Procrustes alignment (rotation, uniform scale and
  translation fitted per hand; the vertices get their own fit, as FreiHAND's evaluation does).
- ``mrrpe``: InterHand2.6M's mean relative-root position error,
  ``|(pred_R - pred_L) - (gt_R - gt_L)|`` at the root keypoint, for samples with both hands.
- ``pck`` (fraction of keypoints with error <= ``Protocol.pck_mm`` after the protocol's
  alignment), ``auc`` (area under the PCK curve over ``Protocol.auc_range_mm``, normalised to
  [0, 1]; FreiHAND's convention) and ``pa_auc`` (the same after Procrustes).
- ``mpjpe_2d`` / ``pck_2d``: pixel distance of 2D keypoints, unaligned, when given.

Every mean is pooled over the labelled entries: each hand's errors weighted by its keypoint
weights (0/1 labels), summed, divided by the summed weight. With every keypoint labelled this is
"mean over joints, then over hands"; the pooled ``mpjpe`` equals the mean of ``mpjpe_left`` and
``mpjpe_right`` when both sides have as many hands (DIR's eval: "averaged left/right").
An empty set gives NaN, never a division by zero.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from handmocap.core.joints import KEYPOINT_NAMES
from handmocap.training.sample import SIDES

#: Root keypoints a protocol may align at (project keypoint order).
ROOTS = {"wrist": KEYPOINT_NAMES.index("wrist"), "middle": KEYPOINT_NAMES.index("middle1")}
#: The bone whose length scale alignment matches: wrist -> middle knuckle.
SCALE_BONE = (ROOTS["wrist"], ROOTS["middle"])
MM = 1000.0
SUBSETS = ("all", "interacting", "single")
#: Metric names in the order ``Evaluator.summary`` lists them.
METRICS = (
    "mpjpe", "pa_mpjpe", "mpvpe", "pa_mpvpe", "mrrpe", "pck", "auc", "pa_auc", "mpjpe_2d", "pck_2d",
)  # fmt: skip
#: The columns ``format_table`` prints unless told otherwise.
DEFAULT_COLUMNS = (
    "mpjpe", "mpvpe", "pa_mpjpe", "pa_mpvpe", "mrrpe", "pck", "auc", "mpjpe_2d", "pck_2d",
)  # fmt: skip


@dataclass(frozen=True)
class Protocol:
    """How predictions are aligned to the ground truth before they are measured.

    ``root``: keypoint the prediction is translated onto ("wrist", "middle" = middle knuckle,
    or None: measured in the camera frame as predicted). ``scale``: also scale the prediction
    about the root by |gt[9] - gt[0]| / |pred[9] - pred[0]| (needs a root). ``relative_root``:
    the keypoint MRRPE compares between the hands. ``pck_mm``: the threshold of ``pck``;
    ``auc_range_mm`` and ``auc_steps``: the PCK curve's evenly spaced thresholds (both ends
    included) that ``auc`` integrates. ``pck_px``: the threshold of ``pck_2d``. Neither paper
    prints a single PCK value, so ``pck_mm`` and ``pck_px`` are this project's choice; the AUC
    range is DIR's (0 to 50 mm); 100 thresholds follow FreiHAND's script (not checked here).
    """

    root: str | None = "wrist"
    scale: bool = False
    relative_root: str = "wrist"
    pck_mm: float = 20.0
    auc_range_mm: tuple[float, float] = (0.0, 50.0)
    auc_steps: int = 100
    pck_px: float = 10.0

    def __post_init__(self) -> None:
        if self.root is not None and self.root not in ROOTS:
            raise ValueError(f"root must be one of {sorted(ROOTS)} or None, not {self.root!r}")
        if self.relative_root not in ROOTS:
            raise ValueError(f"relative_root must be one of {sorted(ROOTS)}")
        if self.scale and self.root is None:
            raise ValueError("scale alignment scales about the root: it needs a root")
        lo, hi = self.auc_range_mm
        if not (hi > lo and self.auc_steps >= 2):
            raise ValueError("the AUC needs a range hi > lo and at least 2 steps")

    def thresholds_mm(self) -> np.ndarray:
        """(T,) the PCK curve's thresholds in mm."""
        return np.linspace(*self.auc_range_mm, self.auc_steps)


#: Named protocols, each as a paper evaluates. PA metrics, MRRPE (wrist) and AUC (0-50 mm,
#: 100 thresholds) are reported under all of them; they differ in root and scale alignment.
PROTOCOLS = {
    # DIR paper section 4.3 and Table 2, DIR's README numbers (apps/eval.py defaults): wrist
    # root, scaled by the GT bone length.
    "dir": Protocol(root="wrist", scale=True),
    # IntagHand's own evaluation: middle-knuckle root, scaled. DIR Table 3 "MS" columns; ACR
    # Table 1 "Box+scale" / "scale" rows; DIR's train-time validation.
    "intaghand": Protocol(root="middle", scale=True),
    # ACR supplement section 6 and ACR Table 1's unscaled rows (and Table 4): middle-knuckle
    # root, no scale. Also DIR Table 3 "M" columns.
    "acr": Protocol(root="middle", scale=False),
    # FreiHAND (ACR Table 2): headline numbers are pa_mpjpe / pa_mpvpe / pa_auc; the plain
    # errors are taken in the camera frame, unaligned.
    "freihand": Protocol(root=None, scale=False),
}


def get_protocol(protocol: Protocol | str) -> Protocol:
    """A protocol, or the preset of that name in ``PROTOCOLS``."""
    if isinstance(protocol, Protocol):
        return protocol
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; presets: {sorted(PROTOCOLS)}")
    return PROTOCOLS[protocol]


def point_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(..., P, D) prediction and GT -> (..., P) Euclidean distances (any D: 3D or 2D)."""
    return np.linalg.norm(np.asarray(pred, float) - np.asarray(gt, float), axis=-1)


def bone_scale(pred_keypoints: np.ndarray, gt_keypoints: np.ndarray) -> np.ndarray:
    """(..., 21, 3) keypoints -> (...,) GT / predicted length of the wrist -> middle-knuckle bone.

    1 where the predicted bone has no length (nothing to scale, and no division by zero).
    """
    a, b = SCALE_BONE
    gt_len = np.linalg.norm(gt_keypoints[..., b, :] - gt_keypoints[..., a, :], axis=-1)
    pred_len = np.linalg.norm(pred_keypoints[..., b, :] - pred_keypoints[..., a, :], axis=-1)
    return np.where(pred_len > 0, gt_len / np.where(pred_len > 0, pred_len, 1.0), 1.0)


def align(
    pred_points: np.ndarray,
    pred_keypoints: np.ndarray,
    gt_keypoints: np.ndarray,
    protocol: Protocol | str,
) -> np.ndarray:
    """(..., P, 3) predicted points -> (..., P, 3) the same points aligned to the GT's frame.

    The alignment comes from the hand's (..., 21, 3) keypoints, so that vertices move with
    their keypoints: translate the predicted root onto the GT root, then (``protocol.scale``)
    scale about it by ``bone_scale``. A protocol without a root returns the points unchanged.
    """
    protocol = get_protocol(protocol)
    pred_points = np.asarray(pred_points, float)
    if protocol.root is None:
        return pred_points
    r = ROOTS[protocol.root]
    pred_root = pred_keypoints[..., r : r + 1, :]
    gt_root = gt_keypoints[..., r : r + 1, :]
    scale = bone_scale(pred_keypoints, gt_keypoints) if protocol.scale else np.ones(())
    return (pred_points - pred_root) * scale[..., None, None] + gt_root


def procrustes(pred: np.ndarray, gt: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """(..., P, 3) prediction and GT -> (..., P, 3) prediction after the least-squares similarity
    transform onto GT: rotation (proper, no reflection), uniform scale and translation.

    Umeyama's closed form (1991), written out because it is a dozen lines and batched.
    ``weights`` (..., P) weigh each point's squared error (0 = ignored); a set without weight
    or a prediction collapsed to one point comes back as the GT's (weighted) centroid.
    """
    pred, gt = np.asarray(pred, float), np.asarray(gt, float)
    w = np.ones(pred.shape[:-1]) if weights is None else np.asarray(weights, float)
    w = np.broadcast_to(w, pred.shape[:-1])
    total = w.sum(-1, keepdims=True)
    w = w / np.where(total > 0, total, 1.0)
    pred_mean = np.einsum("...p,...pd->...d", w, pred)[..., None, :]
    gt_mean = np.einsum("...p,...pd->...d", w, gt)[..., None, :]
    p, g = pred - pred_mean, gt - gt_mean
    cov = np.einsum("...p,...pi,...pj->...ij", w, g, p)
    u, sigma, vt = np.linalg.svd(cov)
    d = np.ones_like(sigma)
    d[..., -1] = np.where(np.linalg.det(u @ vt) < 0, -1.0, 1.0)
    rotation = u @ (d[..., :, None] * vt)
    variance = np.einsum("...p,...pd->...", w, p * p)
    scale = (sigma * d).sum(-1) / np.where(variance > 0, variance, 1.0)
    return scale[..., None, None] * p @ np.swapaxes(rotation, -1, -2) + gt_mean


def relative_root_errors(
    pred_keypoints: np.ndarray, gt_keypoints: np.ndarray, root: str = "wrist"
) -> np.ndarray:
    """(..., 2, 21, 3) both hands (left, right) -> (...,) MRRPE terms, in the input's units.

    |(pred_right - pred_left) - (gt_right - gt_left)| at the ``root`` keypoint: how well the
    prediction places the right hand relative to the left.
    """
    r = ROOTS[root]
    pred_offset = pred_keypoints[..., 1, r, :] - pred_keypoints[..., 0, r, :]
    gt_offset = gt_keypoints[..., 1, r, :] - gt_keypoints[..., 0, r, :]
    return np.linalg.norm(pred_offset - gt_offset, axis=-1)


def weighted_mean(values: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Weighted mean of ``values`` (weights broadcast onto them); NaN when the weights sum to 0.

    Entries with weight 0 are ignored even when they are NaN or infinite.
    """
    values = np.asarray(values, float)
    w = np.ones_like(values) if weights is None else np.broadcast_to(weights, values.shape)
    total = float(w.sum())
    if total <= 0:
        return float("nan")
    return float(np.where(w > 0, values * w, 0.0).sum() / total)


def pck_counts(
    errors: np.ndarray, thresholds: np.ndarray | list[float], weights: np.ndarray
) -> np.ndarray:
    """(..., P) errors, (T,) thresholds, (..., P) weights -> (..., T) summed weight of the points
    whose error is at most each threshold (FreiHAND counts ``error <= threshold``)."""
    within = errors[..., None] <= np.asarray(thresholds, float)
    return np.einsum("...pt,...p->...t", within, np.asarray(weights, float))


def pck_curve(
    errors: np.ndarray, thresholds: Iterable[float], weights: np.ndarray | None = None
) -> np.ndarray:
    """(..., P) errors, (T,) thresholds -> (T,) fraction of (weighted) points within each one.

    NaN everywhere when no point has weight. Errors and thresholds share a unit (mm or px).
    """
    errors = np.asarray(errors, float)
    thresholds = np.asarray(list(thresholds), float)
    w = np.ones_like(errors) if weights is None else np.broadcast_to(weights, errors.shape)
    total = float(w.sum())
    if total <= 0:
        return np.full(thresholds.shape, np.nan)
    return pck_counts(errors.reshape(-1), thresholds, w.reshape(-1)) / total


def pck(errors: np.ndarray, threshold: float, weights: np.ndarray | None = None) -> float:
    """Fraction of (weighted) points with error <= ``threshold``; NaN when none has weight."""
    return float(pck_curve(errors, [threshold], weights)[0])


def auc(thresholds: np.ndarray, curve: np.ndarray) -> float:
    """(T,) thresholds and PCK values -> trapezoid area under the curve divided by the range.

    In [0, 1]: 1 means every point lies within the smallest threshold. NaN if the curve is.
    """
    t, c = np.asarray(thresholds, float), np.asarray(curve, float)
    return float(((c[1:] + c[:-1]) / 2 * np.diff(t)).sum() / (t[-1] - t[0]))


def subset_masks(valid: np.ndarray, interacting: np.ndarray) -> dict[str, np.ndarray]:
    """(B, 2) hand validity, (B,) interacting flags -> {subset: (B,) bool} for ``SUBSETS``.

    "interacting" follows the dataset's flag (InterHand2.6M's IH); "single" holds the samples
    with exactly one valid hand (its SH). A two-hand sample not flagged interacting is in "all"
    only.
    """
    count = (np.asarray(valid) > 0).sum(-1)
    return {
        "all": np.ones(count.shape, bool),
        "interacting": np.asarray(interacting) > 0,
        "single": count == 1,
    }


def _mean_term(errors: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(B, 2, P) errors and weights -> per hand (B, 2) weighted error sum and (B, 2) weight."""
    return np.where(weights > 0, errors * weights, 0.0).sum(-1), weights.sum(-1)


def _hand_terms(
    pred_kp: np.ndarray,
    gt_kp: np.ndarray,
    valid: np.ndarray,
    weights: np.ndarray,
    protocol: Protocol,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Keypoint sums of one batch: {name: ((B, 2, ...) weighted sums, (B, 2) weights)}.

    ``valid`` (B, 2) hands, ``weights`` (B, 2, 21) keypoint labels (0 on invalid hands). A hand
    whose root (or, when scaling, wrist and middle knuckle) is unlabelled cannot be root-aligned
    and drops out of the root-aligned metrics; Procrustes needs no root and keeps it.
    """
    root_w = weights * _alignable(valid, weights, protocol)[..., None]
    errors = point_errors(align(pred_kp, pred_kp, gt_kp, protocol), gt_kp) * MM
    pa_errors = point_errors(procrustes(pred_kp, gt_kp, weights), gt_kp) * MM
    thresholds = protocol.thresholds_mm()
    return {
        "mpjpe": _mean_term(errors, root_w),
        "pa_mpjpe": _mean_term(pa_errors, weights),
        "pck": (pck_counts(errors, [protocol.pck_mm], root_w)[..., 0], root_w.sum(-1)),
        "auc": (pck_counts(errors, thresholds, root_w), root_w.sum(-1)),
        "pa_auc": (pck_counts(pa_errors, thresholds, weights), weights.sum(-1)),
    }


def _vertex_terms(
    pred_kp: np.ndarray,
    gt_kp: np.ndarray,
    pred_v: np.ndarray,
    gt_v: np.ndarray,
    valid: np.ndarray,
    weights: np.ndarray,
    protocol: Protocol,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Vertex sums of one batch (vertices (B, 2, V, 3)), aligned as their keypoints are."""
    hand_w = np.broadcast_to(valid[..., None].astype(float), pred_v.shape[:-1])
    root_w = hand_w * _alignable(valid, weights, protocol)[..., None]
    errors = point_errors(align(pred_v, pred_kp, gt_kp, protocol), gt_v) * MM
    pa_errors = point_errors(procrustes(pred_v, gt_v), gt_v) * MM
    return {"mpvpe": _mean_term(errors, root_w), "pa_mpvpe": _mean_term(pa_errors, hand_w)}


def _blank(points: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(..., P, D) points with zeros where the (..., P) weights are 0."""
    return np.where(np.asarray(weights)[..., None] > 0, np.asarray(points, float), 0.0)


def _alignable(valid: np.ndarray, weights: np.ndarray, protocol: Protocol) -> np.ndarray:
    """(B, 2) valid hands whose keypoints that the protocol aligns with are labelled."""
    if protocol.root is None:
        return valid
    needed = list(SCALE_BONE) if protocol.scale else [ROOTS[protocol.root]]
    return valid & (weights[..., needed] > 0).all(-1)


class Evaluator:
    """Accumulates metrics batch by batch and reports them per subset, side and both sides.

    Memory does not grow with the data set: only per-side sums (and PCK counts per threshold)
    are kept for each subset.
    """

    def __init__(self, protocol: Protocol | str = "dir") -> None:
        self.protocol = get_protocol(protocol)
        self._samples = dict.fromkeys(SUBSETS, 0)
        # {subset: {metric: [(sides, ...) weighted sums, (sides,) weights]}}
        self._sums: dict[str, dict[str, list[np.ndarray]]] = {s: {} for s in SUBSETS}
        steps = (self.protocol.auc_steps,)
        shapes = {"mpjpe": (), "pa_mpjpe": (), "pck": (), "auc": steps, "pa_auc": steps}
        for sums in self._sums.values():
            for name, extra in shapes.items():
                sums[name] = [np.zeros((2, *extra)), np.zeros(2)]
            sums["mrrpe"] = [np.zeros(1), np.zeros(1)]

    def update(
        self,
        pred_keypoints: np.ndarray,
        gt_keypoints: np.ndarray,
        valid: np.ndarray,
        interacting: np.ndarray | None = None,
        keypoint_weights: np.ndarray | None = None,
        pred_vertices: np.ndarray | None = None,
        gt_vertices: np.ndarray | None = None,
        pred_2d: np.ndarray | None = None,
        gt_2d: np.ndarray | None = None,
        weights_2d: np.ndarray | None = None,
    ) -> None:
        """Add one batch of B samples, both sides (0 left, 1 right), metres.

        ``pred_keypoints``/``gt_keypoints`` (B, 2, 21, 3); ``valid`` (B, 2) 1 where the hand's
        3D label exists (the sample's ``joints3d_valid``); ``interacting`` (B,) the sample's
        flag (none: no sample is interacting); ``keypoint_weights`` (B, 2, 21) per-keypoint
        labels; vertices (B, 2, V, 3); ``pred_2d``/``gt_2d`` (B, 2, 21, 2) pixels with
        ``weights_2d`` (B, 2, 21) (e.g. ``joints2d[..., 2]``; default: ``valid``).
        Coordinates of unlabelled entries and invalid hands are ignored (they may be NaN).
        """
        pred_kp, gt_kp = np.asarray(pred_keypoints, float), np.asarray(gt_keypoints, float)
        valid = np.asarray(valid, float) > 0
        batch = valid.shape[0]
        weights = np.ones(pred_kp.shape[:-1])
        if keypoint_weights is not None:
            weights = np.asarray(keypoint_weights, float) * np.ones(pred_kp.shape[:-1])
        weights = weights * valid[..., None]
        # Unlabelled entries may hold anything (NaN included); zeros keep the fits finite.
        pred_kp, gt_kp = _blank(pred_kp, weights), _blank(gt_kp, weights)
        flags = np.zeros(batch) if interacting is None else np.asarray(interacting, float)
        masks = subset_masks(valid, flags)
        terms = _hand_terms(pred_kp, gt_kp, valid, weights, self.protocol)
        if pred_vertices is not None and gt_vertices is not None:
            pred_v = _blank(np.asarray(pred_vertices, float), valid[..., None])
            gt_v = _blank(np.asarray(gt_vertices, float), valid[..., None])
            terms |= _vertex_terms(pred_kp, gt_kp, pred_v, gt_v, valid, weights, self.protocol)
        terms["mrrpe"] = self._mrrpe_term(pred_kp, gt_kp, weights)
        if pred_2d is not None and gt_2d is not None:
            w2d = valid[..., None] * np.ones(pred_kp.shape[:-1])
            if weights_2d is not None:
                w2d = w2d * np.asarray(weights_2d, float)
            errors = point_errors(_blank(pred_2d, w2d), _blank(gt_2d, w2d))
            terms["mpjpe_2d"] = _mean_term(errors, w2d)
            counts = pck_counts(errors, [self.protocol.pck_px], w2d)[..., 0]
            terms["pck_2d"] = (counts, w2d.sum(-1))
        for name, (num, den) in terms.items():
            self._add(name, num, den, masks)
        for subset, mask in masks.items():
            self._samples[subset] += int(mask.sum())

    def _mrrpe_term(
        self, pred_kp: np.ndarray, gt_kp: np.ndarray, weights: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(B, 1) MRRPE in mm and (B, 1) weight: 1 where both hands' roots are labelled."""
        r = ROOTS[self.protocol.relative_root]
        both = (weights[..., r] > 0).all(-1).astype(float)
        errors = relative_root_errors(pred_kp, gt_kp, self.protocol.relative_root) * MM
        return np.where(both > 0, errors, 0.0)[:, None], both[:, None]

    def _add(
        self, name: str, num: np.ndarray, den: np.ndarray, masks: dict[str, np.ndarray]
    ) -> None:
        """Add a batch's per-sample sums (B, sides, ...) and weights (B, sides) to each subset."""
        for subset, mask in masks.items():
            sums = self._sums[subset].setdefault(
                name, [np.zeros(num.shape[1:]), np.zeros(den.shape[1:])]
            )
            sums[0] = sums[0] + num[mask].sum(0)
            sums[1] = sums[1] + den[mask].sum(0)

    def summary(self) -> dict[str, dict[str, float]]:
        """{subset: {metric: value}} for ``SUBSETS``: mm for errors, [0, 1] for PCK and AUC.

        Each metric comes pooled over both sides (``mpjpe``) and per side (``mpjpe_left``,
        ``mpjpe_right``); ``mrrpe`` only pooled; ``samples`` counts the subset's samples.
        Vertex and 2D metrics appear once a batch gave them. NaN where a set is empty.
        """
        return {subset: self._subset_summary(subset) for subset in SUBSETS}

    def _subset_summary(self, subset: str) -> dict[str, float]:
        out = {"samples": float(self._samples[subset])}
        for name in sorted(self._sums[subset], key=METRICS.index):
            num, den = self._sums[subset][name]
            parts = [("", num.sum(0), den.sum(0))]
            if den.shape[0] == 2:
                parts += [(f"_{side}", num[i], den[i]) for i, side in enumerate(SIDES)]
            for suffix, n, d in parts:
                out[name + suffix] = self._value(name, n, d)
        return out

    def _value(self, name: str, num: np.ndarray, den: float) -> float:
        if den <= 0:
            return float("nan")
        if name in ("auc", "pa_auc"):
            return auc(self.protocol.thresholds_mm(), num / den)
        return float(num / den)

    def pck_curve(
        self, subset: str = "all", procrustes: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """(T,) thresholds in mm and (T,) PCK of ``subset`` both sides (NaN if empty), to plot."""
        num, den = self._sums[subset]["pa_auc" if procrustes else "auc"]
        total = den.sum()
        curve = num.sum(0) / total if total > 0 else np.full(num.shape[1:], np.nan)
        return self.protocol.thresholds_mm(), curve


def format_table(
    summary: dict[str, dict[str, float]], columns: Iterable[str] = DEFAULT_COLUMNS
) -> str:
    """Plain-text table of ``Evaluator.summary()``: a row per subset, a column per metric.

    Columns absent from the summary are left out; errors print in mm with 2 decimals, PCK and
    AUC with 3, NaN as "-", as the papers' tables read.
    """
    present = set().union(*(row.keys() for row in summary.values())) if summary else set()
    names = ["samples", *(c for c in columns if c in present)]
    rows = [["subset", *names]]
    for subset, row in summary.items():
        rows.append([subset, *(_cell(name, row.get(name, float("nan"))) for name in names)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for r in rows:
        cells = [r[0].ljust(widths[0])] + [r[i].rjust(widths[i]) for i in range(1, len(r))]
        lines.append("  ".join(cells))
    return "\n".join(lines)


def _cell(name: str, value: float) -> str:
    if np.isnan(value):
        return "-"
    if name == "samples":
        return str(int(value))
    digits = 3 if name.startswith(("pck", "auc", "pa_auc")) else 2
    return f"{value:.{digits}f}"
