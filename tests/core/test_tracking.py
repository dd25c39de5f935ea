"""Hand identity tracking: label flips, swaps, crossings, gaps, extra hands, low scores, real clips.

Synthetic scenes give every candidate its true side in ``Candidate.source``, so that each test
checks the repaired identities against the truth; every test also checks that each input
detection comes out exactly once and that no frame gains a detection.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handmocap.core.observation import HandObservation
from handmocap.core.take import HandStatus
from handmocap.core.tracking import (
    Candidate,
    HandTracker,
    TrackedFrame,
    TrackerSettings,
    as_candidate,
    track_hands,
)

OK, NOT_DETECTED, LOW_SCORE, REJECTED = (
    HandStatus.OK,
    HandStatus.NOT_DETECTED,
    HandStatus.LOW_SCORE,
    HandStatus.REJECTED,
)
REALDATA = Path(__file__).resolve().parents[3] / "shared" / "realdata"
GESTURE_CLIP = REALDATA / "mediapipe_samples" / "gesture_recognizer" / "test_video.mp4"
LANDMARKER_CLIP = REALDATA / "mediapipe_samples" / "hand_landmarker" / "test_video.mp4"
SIZE = 100.0  # hand size of the synthetic hands, pixels


# --------------------------------------------------------------------------------------------
# Synthetic scenes


def hand_shape(side: str) -> np.ndarray:
    """21 keypoints (project order) of an open hand, wrist at the origin, fingers up."""
    angles = np.radians([-60, -22, -5, 10, 26])  # thumb .. pinky
    segments = [
        (0.22, 0.18, 0.14, 0.12),
        (0.45, 0.2, 0.13, 0.1),
        (0.47, 0.22, 0.14, 0.1),
        (0.45, 0.2, 0.13, 0.1),
        (0.42, 0.15, 0.1, 0.08),
    ]
    points = [np.zeros(2)]
    for angle, lengths in zip(angles, segments, strict=True):
        direction = np.array([np.sin(angle), -np.cos(angle)])
        for reach in np.cumsum(lengths):
            points.append(reach * direction * SIZE)
    shape = np.array(points)
    if side == "left":
        shape[:, 0] *= -1
    return shape


@dataclasses.dataclass
class Hand:
    """One detection to be: the true side, what the backend claims, and where."""

    truth: str  # "left", "right", or "spurious"
    claimed: str | None
    score: float
    center: np.ndarray
    shape_side: str = ""

    def candidate(self, rng: np.random.Generator) -> Candidate:
        shape = hand_shape(self.shape_side or (self.truth if self.truth != "spurious" else "right"))
        joints = shape + self.center + rng.normal(0.0, 1.5, shape.shape)
        return Candidate(self.claimed, self.score, joints, source=self.truth)


Path2D = Callable[[int], tuple[float, float]]


def scene(n: int, paths: dict[str, Path2D], score: float = 0.9) -> list[list[Hand]]:
    """n frames; each true hand on its path, claiming its true side."""
    return [
        [Hand(side, side, score, np.array(path(t), dtype=float)) for side, path in paths.items()]
        for t in range(n)
    ]


def two_hands(n: int = 60) -> list[list[Hand]]:
    """Two hands a few hand sizes apart, moving in slow loops."""
    return scene(
        n,
        {
            "left": lambda t: (500 + 60 * np.sin(t / 7), 300 + 40 * np.cos(t / 9)),
            "right": lambda t: (180 + 50 * np.cos(t / 8), 320 + 30 * np.sin(t / 6)),
        },
    )


def one_hand(n: int = 60) -> list[list[Hand]]:
    return scene(n, {"right": lambda t: (300 + 4 * t, 300 + 30 * np.sin(t / 6))})


def flip(frames: list[list[Hand]], truth: str, frames_range: range) -> None:
    for t in frames_range:
        for hand in frames[t]:
            if hand.truth == truth:
                hand.claimed = "left" if hand.claimed == "right" else "right"


def drop(frames: list[list[Hand]], truth: str, frames_range: range) -> None:
    for t in frames_range:
        frames[t] = [h for h in frames[t] if h.truth != truth]


def candidates(frames: list[list[Hand]], seed: int = 0) -> list[list[Candidate]]:
    rng = np.random.default_rng(seed)
    return [[hand.candidate(rng) for hand in hands] for hands in frames]


# --------------------------------------------------------------------------------------------
# Checks


def check_conservation(inputs: list[list[Candidate]], outputs: list[TrackedFrame]) -> None:
    """Every input detection comes out exactly once, unchanged; nothing else comes out."""
    assert len(inputs) == len(outputs)
    for t, (cands, out) in enumerate(zip(inputs, outputs, strict=True)):
        assert list(out) == ["left", "right"], t
        found = [a.candidate for a in out.assignments() if a.candidate is not None]
        assert sorted(map(id, found)) == sorted(map(id, cands)), f"frame {t}"
        for side, a in out.items():
            assert a.side == side
            assert (a.candidate is None) == (a.status == NOT_DETECTED), f"frame {t} {side}"
            if a.candidate is not None:
                assert cands[a.index] is a.candidate
        for a in out.extra:
            assert a.side is None and a.status in (REJECTED, LOW_SCORE), f"frame {t}"
            assert cands[a.index] is a.candidate


def expected(hands: list[Hand], side: str, min_score: float = 0.5) -> HandStatus:
    """The status a perfect tracker reports for a true hand in a frame."""
    mine = [h for h in hands if h.truth == side]
    if not mine:
        return NOT_DETECTED
    return OK if mine[0].score >= min_score else LOW_SCORE


def check_truth(
    frames: list[list[Hand]], outputs: list[TrackedFrame], skip: range | list[int] = ()
) -> None:
    """Each true hand is in its own slot with the expected status; nothing else is accepted."""
    for t, (hands, out) in enumerate(zip(frames, outputs, strict=True)):
        if t in skip:
            continue
        for side in ("left", "right"):
            a = out[side]
            assert a.status == expected(hands, side), f"frame {t} {side}: {a}"
            if a.candidate is not None:
                assert a.candidate.source == side, f"frame {t}: {side} got the {a.candidate.source}"


def run_both(frames: list[list[Hand]], settings: TrackerSettings | None = None):
    """Online and batch results for a scene, both checked for conservation."""
    inputs = candidates(frames)
    tracker = HandTracker(settings)
    online = [tracker.update(c) for c in inputs]
    batch = HandTracker(settings).track(inputs)
    check_conservation(inputs, online)
    check_conservation(inputs, batch)
    # batch accepts and flags exactly what the online pass did; only sides may differ
    for on, ba in zip(online, batch, strict=True):
        assert {id(a.candidate) for a in on.values() if a.present} == {
            id(a.candidate) for a in ba.values() if a.present
        }
    return online, batch


# --------------------------------------------------------------------------------------------
# Synthetic tests


def test_clean_two_hands_keep_their_sides():
    frames = two_hands()
    online, batch = run_both(frames)
    check_truth(frames, online)
    check_truth(frames, batch)
    assert all(not a.relabelled for out in online for a in out.values())


@pytest.mark.parametrize("length", [1, 2, 3, 5])
@pytest.mark.parametrize("who", ["left", "right"])
def test_label_flips_of_one_hand_are_repaired(length, who):
    frames = two_hands()
    flip(frames, who, range(20, 20 + length))
    flip(frames, who, range(40, 40 + length))
    online, batch = run_both(frames)
    check_truth(frames, online)
    check_truth(frames, batch)
    assert online[20][who].relabelled and online[20][who].candidate.side != who


def test_label_flip_of_a_single_hand_is_repaired():
    frames = one_hand()
    for start, length in [(15, 1), (25, 3), (40, 5)]:
        flip(frames, "right", range(start, start + length))
    online, batch = run_both(frames)
    check_truth(frames, online)
    check_truth(frames, batch)


@pytest.mark.parametrize("length", [1, 3, 5])
def test_two_hands_swapping_labels_are_repaired(length):
    frames = two_hands()
    for start in (18, 42):
        flip(frames, "left", range(start, start + length))
        flip(frames, "right", range(start, start + length))
    online, batch = run_both(frames)
    check_truth(frames, online)
    check_truth(frames, batch)


def crossing(n: int = 50) -> list[list[Hand]]:
    """The hands move through each other: both are at (400, 325) in frame 25."""
    return scene(
        n,
        {
            "left": lambda t: (150 + 10 * t, 300 + t),
            "right": lambda t: (650 - 10 * t, 350 - t),
        },
    )


def test_crossing_hands_keep_identities_through_swapped_labels_and_occlusion():
    frames = crossing()
    # while they overlap the backend swaps their labels, and then loses one of them
    flip(frames, "left", range(21, 30))
    flip(frames, "right", range(21, 30))
    drop(frames, "right", range(24, 27))
    online, batch = run_both(frames)
    check_truth(frames, online)
    check_truth(frames, batch)
    assert [online[t]["right"].status for t in range(23, 28)] == [OK, *[NOT_DETECTED] * 3, OK]


def test_crossing_hands_with_correct_labels():
    frames = crossing()
    online, batch = run_both(frames)
    check_truth(frames, online)
    check_truth(frames, batch)


def test_crossing_hands_that_look_alike_are_told_apart_by_their_motion():
    """Same keypoint shape, no labels at all: only constant-velocity prediction can tell."""
    frames = crossing()
    for hands in frames:
        for hand in hands:
            hand.shape_side, hand.claimed = "right", None
    # the truth is set by the first frames' labels; after that the labels say nothing
    for hand in frames[0] + frames[1]:
        hand.claimed = hand.truth
    online, batch = run_both(frames)
    # in frame 25 the two detections are the same up to noise: either way round is right
    check_truth(frames, online, skip=[25])
    check_truth(frames, batch, skip=[25])


def test_short_dropout_keeps_identity_even_with_a_wrong_label_on_return():
    frames = two_hands()
    drop(frames, "right", range(20, 24))
    drop(frames, "left", range(30, 31))
    flip(frames, "right", range(24, 26))
    online, batch = run_both(frames)
    check_truth(frames, online)
    check_truth(frames, batch)
    assert all(online[t]["right"].status == NOT_DETECTED for t in range(20, 24))
    assert online[24]["right"].relabelled


def test_long_dropout_near_where_it_left_keeps_identity():
    frames = two_hands(90)
    # the right hand stands still, vanishes for 40 frames (past `hold`), comes back in place
    for t in range(20, 90):
        for hand in frames[t]:
            if hand.truth == "right":
                hand.center = frames[19][1].center + (0.1 * (t - 60), 0.0)
    drop(frames, "right", range(20, 60))
    flip(frames, "right", range(60, 64))  # and is labelled left for its first frames back
    online, batch = run_both(frames)
    check_truth(frames, online)
    check_truth(frames, batch)
    assert online[60]["right"].track_id == online[19]["right"].track_id


def test_long_dropout_far_away_takes_identity_from_labels():
    frames = one_hand(90)
    drop(frames, "right", range(30, 60))
    for t in range(60, 90):  # it comes back 4 hand sizes away, labelled left from then on
        frames[t][0].center = frames[t][0].center + (0.0, 4 * SIZE)
        frames[t][0].claimed = "left"
    online, batch = run_both(frames)
    assert all(online[t]["right"].present for t in range(30)) and all(
        online[t]["left"].present for t in range(60, 90)
    )
    assert all(batch[t]["left"].present for t in range(60, 90))
    assert online[60]["left"].track_id != online[29]["right"].track_id


def test_hand_returning_far_away_with_the_other_hand_in_view():
    frames = two_hands(90)
    drop(frames, "right", range(30, 55))
    for t in range(55, 90):
        for hand in frames[t]:
            if hand.truth == "right":
                hand.center = hand.center + (0.0, 2.5 * SIZE)
    online, batch = run_both(frames)
    check_truth(frames, online)
    check_truth(frames, batch)


def test_third_spurious_hand_is_rejected():
    frames = two_hands()
    for t in range(15, 19):
        frames[t].append(Hand("spurious", "left", 0.95, np.array([900.0, 100.0])))
    online, batch = run_both(frames)
    check_truth(frames, online)
    check_truth(frames, batch)
    for t in range(15, 19):
        (extra,) = online[t].extra
        assert extra.status == REJECTED and extra.reason == "extra hand"
        assert extra.candidate.source == "spurious"


def test_duplicate_of_a_tracked_hand_is_rejected():
    frames = one_hand()
    for t in (10, 11, 30):
        twin = frames[t][0]
        frames[t].append(Hand("spurious", "left", 0.97, twin.center + (8.0, -25.0), "right"))
    online, batch = run_both(frames)
    check_truth(frames, online)
    check_truth(frames, batch)
    assert [a.reason for t in (10, 11, 30) for a in online[t].extra] == ["duplicate"] * 3


def test_implausible_jump_is_rejected_in_its_slot():
    frames = two_hands()
    frames[25] = [h for h in frames[25] if h.truth == "left"]
    frames[25].append(Hand("spurious", "right", 0.9, frames[24][1].center + (0.0, 4 * SIZE)))
    online, batch = run_both(frames)
    check_truth(frames, online, skip=[25])
    check_truth(frames, batch, skip=[25])
    for out in (online, batch):
        a = out[25]["right"]
        assert (a.status, a.reason, a.candidate.source) == (
            REJECTED,
            "implausible jump",
            "spurious",
        )
        assert out[25]["left"].present and out[26]["right"].present


def test_low_scores_are_flagged_kept_and_not_used():
    frames = two_hands()
    for t in range(10, 14):
        frames[t][1].score = 0.2  # the right hand
        frames[t][1].claimed = "left"  # and its label is wrong as well
    frames[30][0].score = 0.3  # one frame of the left hand
    online, batch = run_both(frames)
    check_truth(frames, online)
    check_truth(frames, batch)
    a = online[12]["right"]
    assert a.status == LOW_SCORE and a.candidate.score == pytest.approx(0.2)
    # the low-score detection did not move the track nor vote: it resumes at frame 14
    assert online[14]["right"].track_id == online[9]["right"].track_id


def test_low_score_without_a_track_goes_to_its_claimed_side():
    cand = Candidate("left", 0.1, hand_shape("left") + 300)
    out = HandTracker().update([cand])
    assert out["left"].status == LOW_SCORE and out["left"].candidate is cand
    assert out["right"].status == NOT_DETECTED


def test_invalid_detections_are_rejected_not_used():
    good = [Candidate("right", 0.9, hand_shape("right") + (300.0, 300.0))]
    broken = hand_shape("left") + 500.0
    broken[3] = np.nan
    tracker = HandTracker()
    tracker.update(good)
    out = tracker.update([*good, Candidate("left", 0.9, broken)])
    assert out["left"].status == REJECTED and out["left"].reason == "invalid"
    assert out["right"].present
    out = tracker.update([Candidate("right", float("nan"), hand_shape("right") + 300)])
    assert out["right"].status == REJECTED and not out.frame


def test_empty_frames_are_gaps():
    tracker = HandTracker()
    outputs = [tracker.update([]) for _ in range(3)]
    assert all(out.statuses == {"left": NOT_DETECTED, "right": NOT_DETECTED} for out in outputs)
    assert track_hands([]) == []


def test_flip_at_the_start_of_a_track_is_repaired_by_batch_only_later_online():
    """The online decision rule (look-back only) against the batch one (whole track)."""
    frames = one_hand(40)
    flip(frames, "right", range(4))
    online, batch = run_both(frames)
    check_truth(frames, batch)
    assert online[0]["left"].present  # online: the first frames can only follow their labels
    check_truth(frames, online, skip=range(12))  # ... until the look-back majority turns


def test_sustained_relabel_switches_a_single_hand_when_the_window_majority_turns():
    s = TrackerSettings(window=30, margin=1.5)
    frames = one_hand(80)
    flip(frames, "right", range(40, 80))
    online, _ = run_both(frames, s)
    sides = ["left" if out["left"].present else "right" for out in online]
    # votes of 0.9: after k flipped frames the window sums 0.9 * (30 - 2k) < -1.5 from k = 16
    assert sides[:55] == ["right"] * 55 and sides[55:] == ["left"] * 25


def test_observations_in_frame_out():
    def obs(side: str, x: float) -> HandObservation:
        joints2d = hand_shape(side) + (x, 300.0)
        return HandObservation(
            side=side,
            score=0.9,
            global_orient=np.zeros(3),
            hand_pose=np.zeros((15, 3)),
            betas=np.zeros(10),
            transl=np.array([0.0, 0.0, 0.5]),
            joints3d=np.zeros((21, 3)),
            joints2d=joints2d,
        )

    tracker = HandTracker()
    for t in range(10):
        out = tracker.update([obs("left", 500 + t), obs("right", 200 - t)])
    wrong = obs("left", 190)  # the right hand, labelled left
    out = tracker.update([obs("left", 510), wrong])
    frame = out.frame
    assert set(frame) == {"left", "right"}
    assert frame["right"].side == "right" and frame["right"].joints2d is wrong.joints2d
    assert wrong.side == "left"  # the input is never modified
    assert out["right"].relabelled and not out["left"].relabelled
    assert out.statuses == {"left": OK, "right": OK}
    records = out.records()
    assert records["right"][0].side == "right" and records["right"][1] == OK
    # a flagged detection stays in the record but not in the frame
    faint = dataclasses.replace(obs("left", 511), score=0.1)
    out = tracker.update([faint, obs("right", 190)])
    assert set(out.frame) == {"right"}
    assert out.records()["left"] == (faint, LOW_SCORE)
    assert as_candidate(wrong).source is wrong


def test_state_round_trip_continues_exactly():
    frames = crossing()
    flip(frames, "left", range(21, 30))
    inputs = candidates(frames)
    whole = HandTracker()
    expected_out = [whole.update(c) for c in inputs]
    first = HandTracker()
    for c in inputs[:23]:
        first.update(c)
    resumed = HandTracker.from_state(json.loads(json.dumps(first.state())))
    for c, want in zip(inputs[23:], expected_out[23:], strict=True):
        got = resumed.update(c)
        for side in ("left", "right"):
            assert got[side].status == want[side].status
            assert got[side].candidate is want[side].candidate
    with pytest.raises(ValueError, match="malformed"):
        HandTracker.from_state({"next_frame": 0})


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"joints2d has shape \(20, 2\)"):
        Candidate("left", 0.9, np.zeros((20, 2)))
    with pytest.raises(ValueError, match="side 'Left'"):
        Candidate("Left", 0.9, np.zeros((21, 2)))
    with pytest.raises(TypeError, match="cannot track a dict"):
        HandTracker().update([{"side": "left"}])
    with pytest.raises(ValueError, match="gate"):
        TrackerSettings(gate=0)
    with pytest.raises(ValueError, match="window"):
        TrackerSettings(window=2.5)
    with pytest.raises(TypeError, match="not a HandObservation"):
        _ = HandTracker().update([Candidate("left", 0.9, hand_shape("left"))]).frame


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.lists(
            st.tuples(
                st.sampled_from(["left", "right", None]),
                st.floats(0.0, 1.0),
                st.floats(0.0, 800.0),
                st.floats(0.0, 600.0),
            ),
            max_size=4,
        ),
        max_size=25,
    )
)
def test_any_input_is_conserved(spec):
    """Whatever comes in, every detection comes out once; batch accepts what online did."""
    inputs = [
        [Candidate(side, score, hand_shape("right") + (x, y)) for side, score, x, y in frame]
        for frame in spec
    ]
    tracker = HandTracker()
    online = [tracker.update(c) for c in inputs]
    batch = HandTracker().track(inputs)
    check_conservation(inputs, online)
    check_conservation(inputs, batch)
    for cands, on, ba in zip(inputs, online, batch, strict=True):
        accepted = {id(a.candidate) for a in on.values() if a.present}
        assert accepted == {id(a.candidate) for a in ba.values() if a.present}
        assert all(c.score >= 0.5 for c in cands if id(c) in accepted)


# --------------------------------------------------------------------------------------------
# Real clips (MediaPipe)


def mediapipe_landmarks(path: Path, first: int, last: int) -> list[list]:
    """MediaPipe's hands on frames first..last-1 of a clip (frames before first: no hands)."""
    if not path.is_file():
        pytest.skip(f"real data not present: {path}")
    cv2 = pytest.importorskip("cv2")
    pytest.importorskip("mediapipe", reason="mediapipe is not installed")
    from handmocap.core.backends.mediapipe import MediaPipeLandmarker

    capture = cv2.VideoCapture(str(path))
    found: list[list] = []
    with MediaPipeLandmarker(video=True) as landmarker:
        for t in range(last):
            ok, frame = capture.read()
            if not ok:
                break
            found.append(landmarker(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)) if t >= first else [])
    capture.release()
    return found


@pytest.fixture(scope="module")
def gesture_clip() -> list[list]:
    return mediapipe_landmarks(GESTURE_CLIP, 20, 72)  # no hand before frame 23


@pytest.fixture(scope="module")
def landmarker_clip() -> list[list]:
    return mediapipe_landmarks(LANDMARKER_CLIP, 0, 60)


def check_single_hand(found: list[list], outputs: list[TrackedFrame], side: str) -> None:
    """One identity for the one hand: every frame with a detection has it in ``side``."""
    for t, (hands, out) in enumerate(zip(found, outputs, strict=True)):
        assert not out[_other(side)].present, f"frame {t}"
        assert out[side].present == bool(hands), f"frame {t}"
        found_ids = sorted(id(h) for h in hands)
        assert sorted(id(a.candidate.source) for a in out.assignments() if a.candidate) == found_ids


def _other(side: str) -> str:
    return "left" if side == "right" else "right"


def test_real_clip_single_hand_keeps_one_identity(gesture_clip):
    """The woman's right hand: MediaPipe sees it twice in a few frames, once with swapped labels."""
    found = gesture_clip
    assert sum(bool(h) for h in found) > 40
    assert any(len(h) == 2 for h in found)  # MediaPipe's duplicates of the one hand
    labels = [h.side for hands in found for h in hands]
    assert labels.count("right") > labels.count("left") > 0  # its labels do flip
    tracker = HandTracker()
    online = [tracker.update(hands) for hands in found]
    batch = track_hands(found)
    for outputs in (online, batch):
        check_single_hand(found, outputs, "right")
        assert all(a.reason == "duplicate" for out in outputs for a in out.extra)


def test_real_clip_with_injected_flips_and_gap(landmarker_clip):
    found = [list(hands) for hands in landmarker_clip]
    assert all(len(h) == 1 and h[0].side == "right" for h in found)
    flipped = [*range(8, 9), *range(20, 23), *range(40, 45)]
    for t in flipped:
        found[t] = [dataclasses.replace(found[t][0], side="left")]
    for t in range(28, 33):  # and the hand vanishes for five frames
        found[t] = []
    tracker = HandTracker()
    online = [tracker.update(hands) for hands in found]
    batch = track_hands(found)
    for outputs in (online, batch):
        check_single_hand(found, outputs, "right")
        assert [t for t, out in enumerate(outputs) if out["right"].relabelled] == flipped
        assert all(outputs[t]["right"].status == NOT_DETECTED for t in range(28, 33))
        assert len({out["right"].track_id for out in outputs if out["right"].present}) == 1
