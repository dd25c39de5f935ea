"""Track: stable left and right identities over time (DESIGN.md, data flow step 3).

A backend reports per frame a few hand candidates, each with a claimed side, a score and 21
keypoints in pixels. Its side labels are the weak part: MediaPipe flips a hand's label for a few
frames, swaps the labels of two hands (typically when they cross or overlap) and now and then
reports the same hand twice. :class:`HandTracker` gives every frame one slot per identity
(``"left"``, ``"right"``) holding either the detection assigned to that hand or a gap with its
reason (:class:`~handmocap.core.take.HandStatus`). It flags; it never invents data: every
detection in the output is one of the input candidates, unchanged, and every input candidate
comes out exactly once (in a slot, or in :attr:`TrackedFrame.extra`). Nothing is interpolated.

Decision rules (one frame, :meth:`HandTracker.update`):

1. *Screening.* A candidate with non-finite keypoints or score is ``REJECTED``
   (``"invalid"``); one with ``score < min_score`` is ``LOW_SCORE``: kept in the record, never
   used to move a track or to vote.
2. *Association by motion.* At most two tracks exist. Each predicts its keypoints with constant
   velocity (the keypoint centroid's velocity from its last two observations; extrapolated at most
   ``max_extrapolation`` frames). The cost of a track and a candidate is their mean keypoint
   distance divided by the track's hand size (its keypoints' bounding-box diagonal), plus
   ``label_weight * score`` when the candidate's claimed side differs from the track's identity,
   a tie-breaker only. Candidates go to tracks by the Hungarian method
   (:func:`scipy.optimize.linear_sum_assignment`); a pair further apart than the gate
   (``gate`` hand sizes for a track seen last frame, widening by ``gate_growth`` per missed frame
   up to ``max_gate``) is not a match. The current frame's label therefore never decides which
   track a hand continues.
3. *Low scores.* Tracks left without a detection take their nearest gated low-score candidate,
   so that the gap is ``LOW_SCORE`` in the right slot.
4. *Unmatched candidates* (surest first): a candidate whose bounding box lies mostly (``overlap``,
   intersection over the smaller box) inside an accepted hand's box is the same hand found twice:
   ``REJECTED`` (``"duplicate"``). Otherwise, with fewer than two tracks it starts a new track. With
   two, it replaces a track unseen for at least ``replace_after`` frames (the hand came back far
   from where it left); a track missing for fewer frames keeps its slot and the candidate is
   ``REJECTED`` there (``"implausible jump"``); when both tracks have their hand it is a third hand:
   ``REJECTED`` (``"extra hand"``, in :attr:`TrackedFrame.extra`).
5. *Identities from label votes.* Each observation votes ``+score`` for right or ``-score`` for
   left; a track's vote is the sum over its last ``window`` observations (the look-back), not the
   label of the current frame. Tracks seen within the last ``hold`` frames are *active* and decide
   together: two active tracks always hold different identities, chosen to agree best with their
   votes; a single active track takes the side of its own vote. A new track takes the identity
   that agrees best, given the other track's current one. An existing identity changes only
   when the alternative agrees better by more than ``margin`` (hysteresis): a label flip or a
   swap shorter than about half the window never changes an identity, a sustained relabel does
   after roughly ``margin / score`` frames more than half of the window. A track unseen for more
   than ``hold`` frames no longer reserves its identity: it stays only so that its hand, coming
   back within ``max_gate`` of where it left, continues it (same identity, same votes); it is
   dropped when an active track takes its identity.

Latency: online tracking decides each frame when it arrives (zero frames of delay) from the past
only: motion up to the frame before and the label votes of the look-back window. A flip at the
very start of a track (before the window holds a majority) can therefore show for a few frames
online. :meth:`HandTracker.track` (batch) first runs the online pass, then gives every track one
identity for its whole life from all of its votes (past and future), keeping tracks that were
seen in the same frame on different sides; it accepts and flags exactly the same detections as
the online pass, only slot sides can differ.

Each call to :meth:`HandTracker.update` is the next video frame (an empty list for a frame with
no hands). :class:`HandObservation` s go in directly (``joints2d``, ``score``, ``side``); so do
MediaPipe's ``Landmarks`` (``pixels``) and :class:`Candidate` s. A detection assigned to the
other side than it claimed comes back (:attr:`Assignment.observation`) as a copy with ``side``
set to the tracked identity; its hand-model parameters are those the backend estimated for the
side it claimed, so a backend that fits per side (mediapipe) should fit after tracking.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from handmocap.core.joints import NUM_KEYPOINTS
from handmocap.core.observation import SIDES, Frame, HandObservation
from handmocap.core.take import HandStatus

#: Reasons of a ``REJECTED`` or ``LOW_SCORE`` assignment.
REASONS = ("invalid", "low score", "duplicate", "implausible jump", "extra hand")

_FAR = 1e9  # cost of a pair outside the gate


@dataclass(frozen=True)
class TrackerSettings:
    """The tracker's thresholds (distances in hand sizes, times in frames)."""

    min_score: float = 0.5  # below: LOW_SCORE, kept but never used
    gate: float = 1.0  # a match's largest mean keypoint distance from the prediction, next frame
    gate_growth: float = 0.5  # the gate widens by this fraction per missed frame ...
    max_gate: float = 3.0  # ... up to this
    max_extrapolation: int = 5  # constant-velocity prediction over at most this many frames
    label_weight: float = 0.25  # cost of a claimed side that contradicts the track's identity
    window: int = 30  # label votes of a track's last observations (the look-back)
    margin: float = 1.5  # hysteresis: votes by which the alternative must win to relabel
    hold: int = 10  # a track unseen for more frames no longer reserves its identity
    replace_after: int = 3  # a track unseen this long can be replaced by a far new hand
    overlap: float = 0.6  # box overlap (of the smaller box) that makes a candidate a duplicate

    def __post_init__(self) -> None:
        for name in ("window", "max_extrapolation", "hold", "replace_after"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"tracker setting {name}={value!r}: must be a whole number")
        positive = ("gate", "max_gate", "window", "overlap")
        for name in positive:
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"tracker setting {name}={value!r}: must be a positive number")
        nonnegative = ("min_score", "gate_growth", "label_weight", "margin", "hold")
        for name in (*nonnegative, "max_extrapolation"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"tracker setting {name}={value!r}: must be a number >= 0")
        if self.replace_after < 1:
            raise ValueError(f"tracker setting replace_after={self.replace_after!r}: must be >= 1")


@dataclass(frozen=True, eq=False)
class Candidate:
    """One hand as the backend reported it; ``source`` is the original object, returned as is."""

    side: str | None  # the claimed side, "left" or "right" (None: no claim)
    score: float
    joints2d: np.ndarray  # (21, 2) pixels
    joints3d: np.ndarray | None = None  # (21, 3), carried along, unused
    source: Any = None

    def __post_init__(self) -> None:
        if self.side is not None and self.side not in SIDES:
            raise ValueError(f"hand candidate: side {self.side!r} is not 'left', 'right' or None")
        joints = np.asarray(self.joints2d, dtype=np.float64)
        if joints.shape != (NUM_KEYPOINTS, 2):
            raise ValueError(
                f"hand candidate: joints2d has shape {joints.shape}, expected ({NUM_KEYPOINTS}, 2)"
            )
        object.__setattr__(self, "joints2d", joints)
        object.__setattr__(self, "score", float(self.score))

    @property
    def valid(self) -> bool:
        return math.isfinite(self.score) and bool(np.isfinite(self.joints2d).all())

    @property
    def vote(self) -> float:
        """Signed label vote: +score for right, -score for left, 0 without a claim."""
        if self.side is None or not math.isfinite(self.score):
            return 0.0
        weight = min(max(self.score, 0.0), 1.0)
        return weight if self.side == "right" else -weight


def as_candidate(item: Any) -> Candidate:
    """A :class:`Candidate` from a Candidate, a HandObservation or MediaPipe ``Landmarks``."""
    if isinstance(item, Candidate):
        return item
    if isinstance(item, HandObservation):
        return Candidate(item.side, item.score, item.joints2d, item.joints3d, item)
    if hasattr(item, "pixels") and hasattr(item, "side") and hasattr(item, "score"):
        return Candidate(item.side, item.score, item.pixels, getattr(item, "world", None), item)
    raise TypeError(
        f"hand tracker: cannot track a {type(item).__name__}; "
        "give Candidate, HandObservation or Landmarks objects"
    )


@dataclass(frozen=True, eq=False)
class Assignment:
    """One identity's slot in one frame (or a detection with no slot, in ``extra``).

    ``candidate`` is the detection used (``OK``) or the one flagged (``LOW_SCORE``, ``REJECTED``);
    ``None`` for ``NOT_DETECTED``. ``index`` is its position in the frame's input list.
    """

    side: str | None
    status: HandStatus
    candidate: Candidate | None = None
    index: int | None = None
    track_id: int | None = None
    reason: str = ""

    @property
    def present(self) -> bool:
        return self.status == HandStatus.OK

    @property
    def relabelled(self) -> bool:
        """The detection claimed another side than the one it was given."""
        c = self.candidate
        if c is None or c.side is None or self.side is None:
            return False
        return c.side != self.side

    @property
    def observation(self) -> HandObservation | None:
        """The detection as a HandObservation with ``side`` set to this slot's identity."""
        if self.candidate is None:
            return None
        source = self.candidate.source
        if not isinstance(source, HandObservation):
            raise TypeError(
                f"hand tracker: the {self.side} detection came from a "
                f"{type(source).__name__}, not a HandObservation"
            )
        if self.side is None or source.side == self.side:
            return source
        return dataclasses.replace(source, side=self.side)


class TrackedFrame(dict[str, Assignment]):
    """One frame's result: side -> :class:`Assignment` for both sides, plus ``extra``.

    ``extra`` holds the flagged detections that have no slot (duplicates, third hands, low-score
    or invalid detections whose slot was taken), so that every input comes out exactly once.
    """

    def __init__(self, hands: dict[str, Assignment], extra: Iterable[Assignment] = ()):
        super().__init__(hands)
        self.extra: list[Assignment] = list(extra)

    @property
    def frame(self) -> Frame:
        """The accepted hands as a :data:`Frame` (observations relabelled to their identity)."""
        return {side: a.observation for side, a in self.items() if a.present}

    @property
    def statuses(self) -> dict[str, HandStatus]:
        return {side: a.status for side, a in self.items()}

    def records(self) -> dict[str, tuple[HandObservation | None, HandStatus]]:
        """side -> (observation or None, status): the take's per-hand record of this frame."""
        return {side: (a.observation, a.status) for side, a in self.items()}

    def assignments(self) -> list[Assignment]:
        """Every assignment of the frame: both slots, then the extras."""
        return [*self.values(), *self.extra]


@dataclass(eq=False)
class _Track:
    id: int
    joints: np.ndarray  # (21, 2) last observed keypoints
    velocity: np.ndarray  # (2,) keypoint centroid, pixels per frame
    scale: float  # hand size in pixels
    last_seen: int
    votes: deque[float]
    identity: str | None = None

    @property
    def vote(self) -> float:
        return float(sum(self.votes))

    def predict(self, t: int, settings: TrackerSettings) -> np.ndarray:
        steps = min(t - self.last_seen, settings.max_extrapolation)
        return self.joints + self.velocity * steps

    def gate(self, t: int, settings: TrackerSettings) -> float:
        missed = t - self.last_seen - 1
        return min(settings.gate * (1.0 + settings.gate_growth * missed), settings.max_gate)

    def observe(self, cand: Candidate, t: int, settings: TrackerSettings) -> None:
        dt = t - self.last_seen
        if dt <= settings.max_extrapolation:
            self.velocity = (cand.joints2d.mean(0) - self.joints.mean(0)) / dt
        else:
            self.velocity = np.zeros(2)
        self.joints = cand.joints2d
        self.scale = _hand_size(cand.joints2d)
        self.last_seen = t
        self.votes.append(cand.vote)


def _hand_size(joints: np.ndarray) -> float:
    return max(float(np.linalg.norm(np.ptp(joints, axis=0))), 1.0)


def _box(joints: np.ndarray) -> np.ndarray:
    return np.concatenate([joints.min(0), joints.max(0)])


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection of two keypoint bounding boxes over the smaller box's area."""
    box_a, box_b = _box(a), _box(b)
    inter = np.clip(np.minimum(box_a[2:], box_b[2:]) - np.maximum(box_a[:2], box_b[:2]), 0, None)
    area = [max(float(np.prod(box[2:] - box[:2])), 1.0) for box in (box_a, box_b)]
    return float(np.prod(inter)) / min(area)


def _sign(side: str) -> float:
    return 1.0 if side == "right" else -1.0


def _other(side: str) -> str:
    return "left" if side == "right" else "right"


@dataclass
class _Pending:
    """A track's outcome in the frame being processed."""

    status: HandStatus
    index: int
    reason: str = ""


@dataclass
class _FrameWork:
    cands: list[Candidate]
    per_track: dict[int, _Pending] = field(default_factory=dict)
    unplaced: list[tuple[int, HandStatus, str]] = field(default_factory=list)  # by claimed side
    extra: list[tuple[int, HandStatus, str, int | None]] = field(default_factory=list)
    accepted: list[int] = field(default_factory=list)


class HandTracker:
    """Online hand identity tracker: :meth:`update` once per frame, in order.

    See the module docstring for the decision rules and the latency.
    """

    def __init__(self, settings: TrackerSettings | None = None):
        self.settings = settings if settings is not None else TrackerSettings()
        self.reset()

    def reset(self) -> None:
        """Forget every track (a new video, or a cut)."""
        self._tracks: list[_Track] = []
        self._next_frame = 0
        self._next_id = 0
        self._totals: dict[int, float] = {}  # track id -> all of its votes, for batch relabelling

    @property
    def frames_seen(self) -> int:
        return self._next_frame

    # -- online

    def update(self, candidates: Sequence[Any]) -> TrackedFrame:
        """The next frame's detections in, both identities' slots out."""
        s = self.settings
        t = self._next_frame
        work = _FrameWork([as_candidate(c) for c in candidates])
        usable, low = [], []
        for i, cand in enumerate(work.cands):
            if not cand.valid:
                work.unplaced.append((i, HandStatus.REJECTED, "invalid"))
            elif cand.score < s.min_score:
                low.append(i)
            else:
                usable.append(i)

        # 2. usable candidates continue tracks by motion
        for track, i in self._associate(self._tracks, usable, work.cands, t):
            track.observe(work.cands[i], t, s)
            self._totals[track.id] = self._totals.get(track.id, 0.0) + work.cands[i].vote
            work.per_track[track.id] = _Pending(HandStatus.OK, i)
            work.accepted.append(i)
            usable.remove(i)

        # 3. tracks without their hand take a nearby low-score detection as the reason
        idle = [tr for tr in self._tracks if tr.id not in work.per_track]
        for track, i in self._associate(idle, low, work.cands, t):
            work.per_track[track.id] = _Pending(HandStatus.LOW_SCORE, i, "low score")
            low.remove(i)
        work.unplaced.extend((i, HandStatus.LOW_SCORE, "low score") for i in low)

        # 4. the rest: duplicates, new hands, jumps, third hands
        for i in sorted(usable, key=lambda k: -work.cands[k].score):
            self._place_unmatched(i, work, t)

        # 5. identities
        self._decide_identities(t)
        self._next_frame += 1
        return self._assemble(work)

    def _associate(
        self, tracks: list[_Track], indices: list[int], cands: list[Candidate], t: int
    ) -> list[tuple[_Track, int]]:
        """Gated minimum-cost matching of tracks to candidates (Hungarian method)."""
        if not tracks or not indices:
            return []
        s = self.settings
        cost = np.full((len(tracks), len(indices)), _FAR)
        for r, track in enumerate(tracks):
            pred, gate = track.predict(t, s), track.gate(t, s)
            for c, i in enumerate(indices):
                cand = cands[i]
                dist = float(np.linalg.norm(cand.joints2d - pred, axis=1).mean()) / track.scale
                if dist > gate:
                    continue
                contradicts = track.identity is not None and cand.side not in (None, track.identity)
                cost[r, c] = dist + (s.label_weight * abs(cand.vote) if contradicts else 0.0)
        rows, cols = linear_sum_assignment(cost)
        pairs = zip(rows, cols, strict=True)
        return [(tracks[r], indices[c]) for r, c in pairs if cost[r, c] < _FAR]

    def _place_unmatched(self, i: int, work: _FrameWork, t: int) -> None:
        s = self.settings
        cand = work.cands[i]
        if any(_overlap(cand.joints2d, work.cands[k].joints2d) >= s.overlap for k in work.accepted):
            work.extra.append((i, HandStatus.REJECTED, "duplicate", None))
            return
        if len(self._tracks) < 2:
            self._start_track(i, work, t)
            return
        idle = [tr for tr in self._tracks if tr.id not in work.per_track]
        gone = [tr for tr in idle if t - tr.last_seen - 1 >= s.replace_after]
        if gone:
            self._tracks.remove(max(gone, key=lambda tr: t - tr.last_seen))
            self._start_track(i, work, t)
        elif idle:
            track = min(idle, key=lambda tr: np.linalg.norm(tr.predict(t, s) - cand.joints2d))
            work.per_track[track.id] = _Pending(HandStatus.REJECTED, i, "implausible jump")
        else:
            work.extra.append((i, HandStatus.REJECTED, "extra hand", None))

    def _start_track(self, i: int, work: _FrameWork, t: int) -> None:
        cand = work.cands[i]
        track = _Track(
            id=self._next_id,
            joints=cand.joints2d,
            velocity=np.zeros(2),
            scale=_hand_size(cand.joints2d),
            last_seen=t,
            votes=deque([cand.vote], maxlen=self.settings.window),
        )
        self._next_id += 1
        self._tracks.append(track)
        self._totals[track.id] = cand.vote
        work.per_track[track.id] = _Pending(HandStatus.OK, i)
        work.accepted.append(i)

    def _decide_identities(self, t: int) -> None:
        """Rule 5 of the module docstring."""
        margin = self.settings.margin
        active = [tr for tr in self._tracks if t - tr.last_seen <= self.settings.hold]
        lost = [tr for tr in self._tracks if tr not in active]
        if len(active) == 2:
            a, b = active
            if a.identity is None and b.identity is None or a.identity == b.identity:
                agree = a.vote - b.vote  # a right, b left
                a.identity = "right" if agree > 0 or (agree == 0 and a.id < b.id) else "left"
                b.identity = _other(a.identity)
            elif a.identity is None:
                a.identity = _other(b.identity)
            elif b.identity is None:
                b.identity = _other(a.identity)
            current = _sign(a.identity) * a.vote + _sign(b.identity) * b.vote
            if current < -margin:
                a.identity, b.identity = b.identity, a.identity
        elif len(active) == 1:
            (track,) = active
            if track.identity is None:
                vote = track.vote
                if vote:
                    track.identity = "right" if vote > 0 else "left"
                else:
                    taken = {tr.identity for tr in lost}
                    track.identity = "left" if "right" in taken else "right"
            elif -_sign(track.identity) * track.vote > margin:
                track.identity = _other(track.identity)
        held = {tr.identity for tr in active}
        self._tracks = active + [tr for tr in lost if tr.identity not in held]

    def _assemble(self, work: _FrameWork) -> TrackedFrame:
        hands: dict[str, Assignment] = {}
        extra: list[Assignment] = []
        for track in self._tracks:
            pending = work.per_track.get(track.id)
            if pending is not None and track.identity is not None and track.identity not in hands:
                del work.per_track[track.id]
                cand = work.cands[pending.index]
                hands[track.identity] = Assignment(
                    track.identity, pending.status, cand, pending.index, track.id, pending.reason
                )
        # outcomes of tracks dropped this frame (replaced, or identity taken): no slot
        for track_id, pending in work.per_track.items():
            work.extra.append((pending.index, pending.status, pending.reason, track_id))
        for i, status, reason in work.unplaced:
            side = work.cands[i].side
            if side is not None and side not in hands:
                hands[side] = Assignment(side, status, work.cands[i], i, None, reason)
            else:
                work.extra.append((i, status, reason, None))
        for i, status, reason, track_id in work.extra:
            extra.append(Assignment(None, status, work.cands[i], i, track_id, reason))
        for side in SIDES:
            hands.setdefault(side, Assignment(side, HandStatus.NOT_DETECTED))
        return TrackedFrame({side: hands[side] for side in SIDES}, extra)

    # -- batch

    def track(self, sequence: Iterable[Sequence[Any]]) -> list[TrackedFrame]:
        """Track a whole sequence (independent of this tracker's online state).

        The online pass, then one identity per track for its whole life: the one that agrees
        best with all of its votes, tracks seen in the same frame kept on different sides.
        """
        online = HandTracker(self.settings)
        frames = [online.update(candidates) for candidates in sequence]
        final = _relabel(frames, online._totals)
        return [_remap(frame, final) for frame in frames]

    # -- state, for resuming a capture

    def state(self) -> dict:
        """The tracker's state as JSON-compatible data (see :meth:`from_state`)."""
        return {
            "next_frame": self._next_frame,
            "next_id": self._next_id,
            "totals": [[k, v] for k, v in self._totals.items()],
            "tracks": [
                {
                    "id": tr.id,
                    "joints": tr.joints.tolist(),
                    "velocity": tr.velocity.tolist(),
                    "scale": tr.scale,
                    "last_seen": tr.last_seen,
                    "votes": list(tr.votes),
                    "identity": tr.identity,
                }
                for tr in self._tracks
            ],
        }

    @classmethod
    def from_state(cls, state: dict, settings: TrackerSettings | None = None) -> HandTracker:
        """A tracker that goes on exactly where the one that gave ``state`` stopped."""
        tracker = cls(settings)
        try:
            tracker._next_frame = int(state["next_frame"])
            tracker._next_id = int(state["next_id"])
            tracker._totals = {int(k): float(v) for k, v in state["totals"]}
            tracker._tracks = [
                _Track(
                    id=int(d["id"]),
                    joints=np.asarray(d["joints"], dtype=np.float64).reshape(NUM_KEYPOINTS, 2),
                    velocity=np.asarray(d["velocity"], dtype=np.float64).reshape(2),
                    scale=float(d["scale"]),
                    last_seen=int(d["last_seen"]),
                    votes=deque(map(float, d["votes"]), maxlen=tracker.settings.window),
                    identity=None if d["identity"] is None else str(d["identity"]),
                )
                for d in state["tracks"]
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"hand tracker state is malformed: {exc!r}") from exc
        if len(tracker._tracks) > 2 or any(
            tr.identity not in (*SIDES, None) for tr in tracker._tracks
        ):
            raise ValueError("hand tracker state is malformed: bad tracks")
        return tracker


def track_hands(
    sequence: Iterable[Sequence[Any]], settings: TrackerSettings | None = None
) -> list[TrackedFrame]:
    """Batch tracking of a whole sequence (:meth:`HandTracker.track`)."""
    return HandTracker(settings).track(sequence)


def _relabel(frames: list[TrackedFrame], totals: dict[int, float]) -> dict[int, str]:
    """Track id -> side for the whole sequence (a 2-colouring of the co-occurrence graph)."""
    online: dict[int, dict[str, int]] = {}
    edges: dict[int, set[int]] = {}
    for frame in frames:
        seen = [a.track_id for a in frame.values() if a.present and a.track_id is not None]
        for a in frame.values():
            if a.track_id is not None:
                counts = online.setdefault(a.track_id, {})
                counts[a.side] = counts.get(a.side, 0) + 1
        for k in seen:
            edges.setdefault(k, set()).update(j for j in seen if j != k)
    final: dict[int, str] = {}
    for start in online:
        if start in final:
            continue
        # breadth-first 2-colouring: parity relative to the component's first track
        parity, order, queue = {start: 0}, [start], [start]
        consistent = True
        while queue:
            k = queue.pop()
            for j in edges.get(k, ()):
                if j not in parity:
                    parity[j] = 1 - parity[k]
                    order.append(j)
                    queue.append(j)
                elif parity[j] == parity[k]:
                    consistent = False
        if not consistent:  # never with at most two tracks at a time; keep the online sides
            for k in order:
                final[k] = max(online[k], key=online[k].get)
            continue
        # start is right (parity 0 right) or left: whichever agrees more with all the votes
        agree = sum(totals.get(k, 0.0) * (1 if parity[k] == 0 else -1) for k in order)
        if agree == 0:
            agree = sum(
                (online[k].get("right", 0) - online[k].get("left", 0))
                * (1 if parity[k] == 0 else -1)
                for k in order
            )
        start_side = "right" if agree >= 0 else "left"
        for k in order:
            final[k] = start_side if parity[k] == 0 else _other(start_side)
    return final


def _remap(frame: TrackedFrame, final: dict[int, str]) -> TrackedFrame:
    """Move a frame's assignments to their tracks' final sides; the accepted ones first."""
    hands: dict[str, Assignment] = {}
    extra = list(frame.extra)
    items = [a for a in frame.values() if a.status != HandStatus.NOT_DETECTED]
    items.sort(key=lambda a: (not a.present, a.track_id is None))
    for a in items:
        side = final.get(a.track_id, a.side) if a.track_id is not None else a.side
        if side not in hands:
            hands[side] = dataclasses.replace(a, side=side)
        else:
            extra.append(dataclasses.replace(a, side=None))
    for side in SIDES:
        hands.setdefault(side, Assignment(side, HandStatus.NOT_DETECTED))
    return TrackedFrame({side: hands[side] for side in SIDES}, extra)
