"""Hand-centric "sort and interpolation" (paper Sec. III-F), a documented reconstruction.

The paper only names the steps; this module fixes what they do, for training and runtime alike:

1. **Sort** (:func:`sort_hands`): keep each hand slot (0 = left, 1 = right) on one physical hand
   over time. MediaPipe's handedness label flips now and then; a detection that matches the other
   slot's recent track better than its own is moved back. Matching uses the wrist's (x, y) only,
   because MediaPipe hand z is relative to the wrist and says nothing about where the hand is.
2. **Interpolate** (:func:`interpolate_gaps`): per slot, a gap of at most ``max_gap`` missing frames
   with a detection on both sides is filled by linear interpolation in time (timestamps when
   given, else frame indices). All four channels are interpolated, so a filled frame's score lies
   between the scores of the two detections around it.
3. Longer gaps and gaps at the start or end stay zeros with a False mask: there is nothing on one
   side to interpolate toward, and inventing a long trajectory would feed the model fiction.

:func:`fill_hands` runs both steps. Inputs follow the skeleton contract: hands (T, 2, 21, 4) with
channels (x, y, z, score) and a presence mask (T, 2).
"""

from __future__ import annotations

import numpy as np

from bharnet_ros.core.layouts import HAND21

MAX_GAP = 8  # frames; about 0.27 s at 30 fps
JUMP = 2.0  # hand lengths a lone hand may be from the other slot's track to be moved there
WRIST = HAND21.index("wrist")
MIDDLE_MCP = HAND21.index("middle_mcp")


def fill_hands(
    hands: np.ndarray,
    present: np.ndarray,
    timestamps: np.ndarray | None = None,
    max_gap: int = MAX_GAP,
) -> tuple[np.ndarray, np.ndarray]:
    """Sort the slots, then fill short gaps; returns (hands (T, 2, 21, 4) float32, mask (T, 2)).

    Tracks are remembered across ``max_gap`` missing frames, the same horizon that interpolation
    bridges. Inputs are not modified.
    """
    hands, present = _check_hands(hands, present)
    hands, present = sort_hands(hands, present, memory=max_gap)
    return interpolate_gaps(hands, present, timestamps, max_gap)


def sort_hands(
    hands: np.ndarray, present: np.ndarray, memory: int = MAX_GAP, jump: float = JUMP
) -> tuple[np.ndarray, np.ndarray]:
    """Swap the two slots of a frame where the detections fit the other slots' tracks better.

    A slot's track is the wrist (x, y) of its last detection, forgotten after ``memory`` frames
    without one. Per frame, with the tracks of the frames before it:

    * two hands: swap if the summed wrist distance to the known tracks is smaller when swapped;
    * one hand, both tracks known: move it if it is nearer the other slot's track;
    * one hand, only the other slot's track known: move it if it is within ``jump`` hand lengths
      (wrist to middle knuckle) of that track, the typical single-hand handedness flip;
    * otherwise the detector's label stands.

    Returns new arrays (hands, present); absent slots are zeroed.
    """
    hands, present = _check_hands(hands, present)
    hands = np.where(present[..., None, None], hands, 0).astype(np.float32)
    present = present.copy()
    sorter = HandSorter(memory, jump)
    for t in range(len(hands)):
        if sorter.swaps(hands[t], present[t]):
            hands[t] = hands[t, ::-1].copy()
            present[t] = present[t, ::-1].copy()
    return hands, present


class HandSorter:
    """The slot tracks of :func:`sort_hands`, one frame at a time: the live window sorts each
    frame as it arrives, so its slots follow the person's whole history as training's do over a
    clip, not only the frames its buffer still holds."""

    def __init__(self, memory: int = MAX_GAP, jump: float = JUMP) -> None:
        self.memory, self.jump = memory, jump
        self.last = np.zeros((2, 2))
        self.last_seen = np.full(2, -(memory + 2))
        self.frames = 0

    def swaps(self, hand_pair: np.ndarray, present: np.ndarray) -> bool:
        """Whether the frame's (2, 21, 4) hands belong in each other's slot; the tracks then
        follow the frame as sorted."""
        known = self.frames - self.last_seen - 1 <= self.memory
        swap = _should_swap(hand_pair, present, self.last, known, self.jump)
        for slot in np.flatnonzero(present):
            kept = 1 - slot if swap else slot
            self.last[kept] = hand_pair[slot, WRIST, :2]
            self.last_seen[kept] = self.frames
        self.frames += 1
        return swap


def _should_swap(
    hand_pair: np.ndarray, present: np.ndarray, last: np.ndarray, known: np.ndarray, jump: float
) -> bool:
    """The per-frame decision of :func:`sort_hands` for one frame's (2, 21, 4) hands."""
    wrists = hand_pair[:, WRIST, :2]
    if present.all():
        keep = sum(_dist(wrists[k], last[k]) for k in (0, 1) if known[k])
        swap = sum(_dist(wrists[1 - k], last[k]) for k in (0, 1) if known[k])
        return swap < keep
    if not present.any():
        return False
    slot = int(np.flatnonzero(present)[0])
    other = 1 - slot
    if not known[other]:
        return False
    to_other = _dist(wrists[slot], last[other])
    if known[slot]:
        return to_other < _dist(wrists[slot], last[slot])
    return to_other < jump * _hand_length(hand_pair[slot])


def _dist(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.hypot(*(a - b)))


def _hand_length(hand: np.ndarray) -> float:
    """Wrist to middle-finger knuckle in (x, y), a scale that works in image or world units."""
    return _dist(hand[MIDDLE_MCP, :2], hand[WRIST, :2])


def interpolate_gaps(
    hands: np.ndarray,
    present: np.ndarray,
    timestamps: np.ndarray | None = None,
    max_gap: int = MAX_GAP,
) -> tuple[np.ndarray, np.ndarray]:
    """Fill gaps of at most ``max_gap`` missing frames between two detections of the same slot.

    Weights come from ``timestamps`` (T,) when given, so a dropped camera frame does not bend the
    trajectory; with equal stamps on both sides they fall back to frame indices. Returns
    (hands float32 with unfilled absent slots zeroed, mask (T, 2)).
    """
    hands, present = _check_hands(hands, present)
    count = len(hands)
    time = _time_axis(timestamps, count)
    out = np.where(present[..., None, None], hands, 0).astype(np.float32)
    frame = np.arange(count)[:, None]
    before = np.maximum.accumulate(np.where(present, frame, -1), axis=0)
    after = np.minimum.accumulate(np.where(present, frame, count)[::-1], axis=0)[::-1]
    fill = ~present & (before >= 0) & (after < count) & (after - before - 1 <= max_gap)
    t, slot = np.nonzero(fill)
    lo, hi = before[t, slot], after[t, slot]
    weight = _gap_weights(time, t, lo, hi)[:, None, None]
    start, end = hands[lo, slot].astype(np.float64), hands[hi, slot].astype(np.float64)
    out[t, slot] = start + weight * (end - start)
    return out, present | fill


def _gap_weights(time: np.ndarray, t: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Fraction of the way from frame lo to frame hi at frame t, by time, else by index."""
    span = time[hi] - time[lo]
    by_index = (t - lo) / (hi - lo)
    by_time = (time[t] - time[lo]) / np.where(span > 0, span, 1.0)
    return np.where(span > 0, by_time, by_index)


def _time_axis(timestamps: np.ndarray | None, count: int) -> np.ndarray:
    if timestamps is None:
        return np.arange(count, dtype=np.float64)
    time = np.asarray(timestamps, dtype=np.float64)
    if time.shape != (count,):
        raise ValueError(f"timestamps {time.shape} do not match {count} frames")
    if not np.isfinite(time).all() or np.any(np.diff(time) < 0):
        raise ValueError("timestamps must be finite and non-decreasing")
    return time


def _check_hands(hands: np.ndarray, present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    hands = np.asarray(hands)
    present = np.asarray(present, dtype=bool)
    if hands.ndim != 4 or hands.shape[1:] != (2, HAND21.num_joints, 4):
        raise ValueError(f"hands must be (T, 2, 21, 4), got {hands.shape}")
    if present.shape != hands.shape[:2]:
        raise ValueError(f"hand mask {present.shape} does not match hands {hands.shape[:2]}")
    return hands, present
