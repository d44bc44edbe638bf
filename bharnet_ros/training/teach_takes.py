"""Takes of a gesture being taught: the pose stage's skeletons trimmed to the motion, checked, stored.

A *take* is one performance of one gesture by one person. Its frames come from the pose stage (a
video, a bag or the running graph) with the pose stage's own timestamps, and the take is cut from
them on those timestamps, never on frame counts, so 10, 20 and 30 fps recordings trim alike.

Trimming (:class:`TrimSettings`):

* ``motion`` (default): the motion energy of the arms and hands (the speed of the elbows, the
  wrists and the hand landmarks in shoulder widths per second, smoothed over 0.2 s) says when the
  person moves. The take keeps the frames from the first to the last moving one (energy above
  ``threshold`` times its peak), with ``margin`` seconds either side, so a held pose between
  raising and lowering the arm stays in. A take without any clear motion is kept whole.
* ``fixed``: ``seconds`` around the motion's centre of energy.
* ``none``: the take as recorded.

Checks, each giving a one-line reason; a flagged take is never kept (interactive recording asks
for it again, headless recording skips and lists it):

* no person: a body in fewer than ``min_body`` of the frames, no body for more than ``max_gap``
  seconds between two frames with one (live, the pose stage sends nothing while it sees nobody;
  from a file, frames without a body), or no frames at all;
* too short: less than ``min_seconds`` left after trimming;
* no hands: a gesture the user marked as a hand gesture with a hand in fewer than ``min_hands``
  of the frames.

:func:`takes_dataset` stores the kept takes as a dataset file (``training/dataset.py``) with the
attributes ``subject``, ``take`` and ``source``; its sample names start with the subject, so the
files of several people merge without clashes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from bharnet_ros.core.layouts import get_layout
from bharnet_ros.core.skeleton import SkeletonFrame, SkeletonSequence
from bharnet_ros.training.dataset import SkeletonDataset

TRIM_MODES = ("motion", "fixed", "none")
SMOOTHING_SECONDS = 0.2  # motion energy is averaged over this long
MIN_MOTION = 0.3  # peak energy (shoulder widths per second) below which a take counts as still
PRESENT_SHARE = 0.5  # of the most-seen person's frames with a body: there for the take
MOVING_JOINTS = ("left_elbow", "right_elbow", "left_wrist", "right_wrist")


@dataclass(frozen=True)
class TrimSettings:
    """How takes are trimmed and which takes are flagged (see the module docstring)."""

    mode: str = "motion"
    seconds: float = 2.0  # fixed: the window's length
    threshold: float = 0.15  # motion: moving means energy above this fraction of the peak
    margin: float = 0.3  # motion: seconds kept before the first and after the last moving frame
    min_seconds: float = 0.5  # shorter takes are flagged
    min_body: float = 0.5  # fraction of frames with a body; fewer means nobody was there
    min_hands: float = 0.3  # hand gestures: fraction of frames with a hand
    max_gap: float = 0.5  # seconds between two frames with a body inside a take; longer: nobody was there

    def __post_init__(self) -> None:
        if self.mode not in TRIM_MODES:
            raise ValueError(f"unknown trim mode {self.mode!r}; use one of {', '.join(TRIM_MODES)}")
        lengths = (self.seconds, self.min_seconds, self.margin, self.max_gap)
        positive = min(self.seconds, self.max_gap) > 0
        if not all(math.isfinite(x) for x in lengths) or not positive or min(lengths) < 0:
            raise ValueError(
                "trim seconds and the longest gap must be positive numbers, margin and minimum length "
                "finite and not negative"
            )
        for name in ("threshold", "min_body", "min_hands"):
            if not 0.0 <= getattr(self, name) <= 1.0:  # also refuses nan
                raise ValueError(f"{name} is a fraction; use a value in [0, 1]")


@dataclass
class Take:
    """One recorded take: its trimmed skeletons (None when nothing was seen) and why it is flagged."""

    gesture: str
    number: int  # 1-based take number of this gesture
    sequence: SkeletonSequence | None
    problem: str = ""  # empty when the take is good
    source: str = ""

    @property
    def ok(self) -> bool:
        return not self.problem

    @property
    def seconds(self) -> float:
        return duration(self.sequence)

    @property
    def hand_fraction(self) -> float:
        return 0.0 if self.sequence is None else float(self.sequence.hand_present.any(axis=1).mean())

    def line(self) -> str:
        """One line for the terminal: gesture, take, length, hand presence and the verdict."""
        frames = 0 if self.sequence is None else len(self.sequence)
        verdict = "ok" if self.ok else f"FLAGGED: {self.problem}"
        return (
            f"{self.gesture} take {self.number}: {self.seconds:.1f} s, {frames} frames, "
            f"hands in {100 * self.hand_fraction:.0f} % -> {verdict}"
        )


def duration(sequence: SkeletonSequence | None) -> float:
    """Seconds from the first to the last frame (0 for none or one frame)."""
    if sequence is None or len(sequence) < 2:
        return 0.0
    return float(sequence.timestamps[-1] - sequence.timestamps[0])


def main_person(frames: Iterable[SkeletonFrame]) -> SkeletonSequence | None:
    """The frames of the person performing, in time order, one per stamp.

    The pose stage may report several people (``backend: multi``). Of those seen (with a body)
    in at least :data:`PRESENT_SHARE` of the most-seen one's frames, the performer is the one
    who moves most: a bystander standing still throughout is seen as often. Frames of other
    people are dropped. Skeletons of one id in another layout or space (a second pose stage on
    the topic) count as another person, as the recognizer starts such a window afresh.
    """
    by_person: dict[tuple[int, str, str], dict[float, SkeletonFrame]] = {}
    for frame in frames:
        by_person.setdefault((frame.person_id, frame.layout, frame.space), {})[frame.timestamp] = frame
    if not by_person:
        return None
    people = {
        pid: SkeletonSequence.from_frames([seen[t] for t in sorted(seen)]) for pid, seen in by_person.items()
    }
    bodies = {pid: sum(frame.body_present for frame in seen.values()) for pid, seen in by_person.items()}
    there = [pid for pid in people if bodies[pid] >= PRESENT_SHARE * max(bodies.values())]
    return people[max(there, key=lambda pid: (float(motion_energy(people[pid]).mean()), bodies[pid]))]


def motion_energy(sequence: SkeletonSequence) -> np.ndarray:
    """(T,) smoothed speed of elbows, wrists and hand landmarks, in shoulder widths per second.

    A frame without a body (or right after one) has energy 0; hands count only where present in
    both frames of a step.
    """
    layout = get_layout(sequence.layout)
    names = {name: i for i, name in enumerate(layout.joint_names)}
    body = sequence.body[..., :2].astype(np.float64)
    seen = sequence.body[..., 3] > 0
    size = body_size(sequence)
    dt = np.diff(sequence.timestamps)
    steps = np.zeros(len(sequence))
    if len(sequence) < 2 or size <= 0:
        return steps
    joints = [names[name] for name in MOVING_JOINTS if name in names]
    moved = np.linalg.norm(np.diff(body[:, joints], axis=0), axis=-1)  # (T-1, J)
    valid = seen[1:, joints] & seen[:-1, joints]
    hands = sequence.hands[..., :2].astype(np.float64)
    hand_moved = np.linalg.norm(np.diff(hands, axis=0), axis=-1).mean(axis=-1)  # (T-1, 2)
    hand_valid = sequence.hand_present[1:] & sequence.hand_present[:-1]
    total = (moved * valid).sum(axis=1) + (hand_moved * hand_valid).sum(axis=1)
    count = valid.sum(axis=1) + hand_valid.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        speed = np.where((count > 0) & (dt > 0), total / np.maximum(count, 1) / np.maximum(dt, 1e-9), 0.0)
    steps[1:] = speed / size
    return smooth(steps, sequence.timestamps)


def body_size(sequence: SkeletonSequence) -> float:
    """Median shoulder width over the frames where both shoulders are seen (0 when never)."""
    names = get_layout(sequence.layout).joint_names
    left, right = names.index("left_shoulder"), names.index("right_shoulder")
    both = (sequence.body[:, left, 3] > 0) & (sequence.body[:, right, 3] > 0)
    if not both.any():
        return 0.0
    widths = np.linalg.norm(sequence.body[both, left, :2] - sequence.body[both, right, :2], axis=-1)
    return float(np.median(widths))


def smooth(values: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
    """Moving average over about :data:`SMOOTHING_SECONDS` at the sequence's frame rate."""
    if len(values) < 3:
        return values
    step = float(np.median(np.diff(timestamps)))
    width = max(1, int(round(SMOOTHING_SECONDS / step))) if step > 0 else 1
    width = min(width, len(values))  # a wider kernel would lengthen the result
    return np.convolve(values, np.ones(width) / width, mode="same")


def trim(sequence: SkeletonSequence, settings: TrimSettings) -> SkeletonSequence:
    """The part of ``sequence`` the settings keep (see the module docstring)."""
    if settings.mode == "none" or len(sequence) < 3:
        return sequence
    energy = motion_energy(sequence)
    stamps = sequence.timestamps
    if energy.max() < MIN_MOTION:
        return sequence
    if settings.mode == "fixed":
        centre = float((energy * stamps).sum() / energy.sum())
        start, end = centre - settings.seconds / 2, centre + settings.seconds / 2
    else:
        moving = np.flatnonzero(energy >= settings.threshold * energy.max())
        start, end = stamps[moving[0]] - settings.margin, stamps[moving[-1]] + settings.margin
    keep = np.flatnonzero((stamps >= start) & (stamps <= end))
    if not len(keep):  # a fixed window shorter than a frame step: the frame nearest its centre
        keep = np.array([np.abs(stamps - (start + end) / 2).argmin()])
    return slice_sequence(sequence, keep[0], keep[-1] + 1)


def slice_sequence(sequence: SkeletonSequence, first: int, stop: int) -> SkeletonSequence:
    """Frames ``first:stop`` of a sequence."""
    return SkeletonSequence(
        sequence.timestamps[first:stop], sequence.body[first:stop], sequence.hands[first:stop],
        sequence.hand_present[first:stop], sequence.person_id, sequence.layout, sequence.space,
        sequence.image_size,
    )  # fmt: skip


def problem_of(sequence: SkeletonSequence | None, hand_gesture: bool, settings: TrimSettings) -> str:
    """Why a trimmed take cannot be kept, in one line; empty when it can."""
    if sequence is None or len(sequence) == 0:
        return "no person: no skeleton arrived during the take (step into the camera's view)"
    seen = (sequence.body[..., 3] > 0).any(axis=1)
    body = float(seen.mean())
    if body < settings.min_body:
        return f"no person: a body in only {100 * body:.0f} % of the frames (step into the camera's view)"
    # Live, the pose stage sends nothing while it sees nobody; from a video or a bag, frames
    # without a body: either way, the time between two frames with a body.
    gap = float(np.diff(sequence.timestamps[seen]).max(initial=0.0))
    if gap > settings.max_gap:
        return f"no person: nobody seen for {gap:.1f} s of the take (stay in the camera's view)"
    seconds = duration(sequence)
    if len(sequence) < 2:  # whatever --min-seconds says: training needs a motion, not a moment
        return "too short: a single frame of motion (a take needs two frames at least)"
    if seconds < settings.min_seconds:
        return f"too short: {seconds:.2f} s of motion, at least {settings.min_seconds:g} s needed"
    hands = float(sequence.hand_present.any(axis=1).mean())
    if hand_gesture and hands < settings.min_hands:
        return (
            f"no hands: a hand in only {100 * hands:.0f} % of the frames of a hand gesture "
            "(keep your hands in view, facing the camera)"
        )
    return ""


def make_take(
    gesture: str,
    number: int,
    frames: Iterable[SkeletonFrame],
    settings: TrimSettings,
    hand_gesture: bool = False,
    source: str = "",
    kept: Sequence[Take] = (),
) -> Take:
    """Trim and check one take's frames; ``kept``: the session's takes so far, whose skeleton
    layout and space it must share (one dataset holds one)."""
    sequence = main_person(frames)
    if sequence is not None:
        sequence = trim(sequence, settings)
    problem = problem_of(sequence, hand_gesture, settings) or format_problem(sequence, kept)
    return Take(gesture, number, sequence, problem, source)


def format_problem(sequence: SkeletonSequence | None, kept: Sequence[Take]) -> str:
    """Why a take cannot join the good takes in ``kept``: skeletons of another layout or space."""
    first = next((t.sequence for t in kept if t.ok and t.sequence is not None), None)
    if sequence is None or first is None or (sequence.layout, sequence.space) == (first.layout, first.space):
        return ""
    return (
        f"other skeletons: {sequence.layout} in {sequence.space} space, where the takes kept so far are "
        f"{first.layout} in {first.space} space (one dataset holds one; record from one pose stage)"
    )


def takes_dataset(
    takes: Sequence[Take], subject: str, gestures: Sequence[str], hand_gestures: Iterable[str] = ()
) -> SkeletonDataset:
    """The good takes as a dataset: classes in ``gestures`` order (those with a take), hand flags.

    Raises ValueError when no take is good.
    """
    kept = [take for take in takes if take.ok and take.sequence is not None]
    if not kept:
        raise ValueError("no good take was recorded, so there is nothing to store")
    classes = [g for g in gestures if any(take.gesture == g for take in kept)]
    classes += sorted({take.gesture for take in kept} - set(classes))
    marked = set(hand_gestures)
    return SkeletonDataset.from_sequences(
        [take.sequence for take in kept],
        [classes.index(take.gesture) for take in kept],
        classes,
        names=[f"{subject}/{take.gesture}_{take.number}" for take in kept],
        hand_intensive=[name in marked for name in classes],
        notes=[f"bharnet teach record: {len(kept)} takes of {subject}"],
        attributes=[{"subject": subject, "take": str(take.number), "source": take.source} for take in kept],
    )


def unusable_samples(data: SkeletonDataset) -> list[tuple[str, str]]:
    """(name, reason) of each sample no gesture can be learnt from: no body in any frame, or one frame.

    `teach record` never keeps such a take, but a takes file may come from elsewhere.
    """
    seen = (data.body[0, ..., 3] > 0).any(axis=-1)  # (F,) a body in the frame
    found = []
    for name, first, stop in zip(data.names.tolist(), data.offsets[:-1], data.offsets[1:], strict=True):
        if not seen[first:stop].any():
            found.append((name, "no person: no body in any frame"))
        elif data.timestamps[stop - 1] <= data.timestamps[first]:
            found.append((name, "too short: a single moment"))
    return found
