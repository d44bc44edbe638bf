"""Sliding windows of skeleton frames for live recognition, one buffer per tracked person.

A :class:`WindowBuffer` keeps the newest ``seconds`` of one person's frames (bounded), and on
request turns them into a fixed-length :class:`Window`: hands sorted and short gaps filled
(:mod:`hand_fill`), then T instants evenly spread over the window read by timestamp
(:func:`resample.time_window_sampling`), exactly as the training feeder samples a clip. A window
therefore covers the same stretch of time at 10, 20 or 30 fps, and on a loaded machine that
drops frames. :class:`WindowSet` routes frames to per-person buffers and forgets people who left.
Time is always the frames' own timestamps (sensor time), so sim time and bag replay behave like
live cameras. When to run the recognizer (the stride) is the caller's choice. docs/windowing.md
has the semantics for robot developers.
"""

from __future__ import annotations

import copy
import enum
import logging
import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from bharnet_ros.core.hand_fill import MAX_GAP, HandSorter, interpolate_gaps
from bharnet_ros.core.resample import time_window_sampling, window_instants
from bharnet_ros.core.skeleton import SkeletonFrame, SkeletonSequence

logger = logging.getLogger(__name__)

SECONDS = 2.0  # window duration when the model does not state one
LENGTH = 32  # frames the model sees (T)
MAX_FRAMES = 512  # frames one buffer holds at most, whatever the frame rate (memory bound)
PERSON_TIMEOUT = 1.0  # seconds without frames before a person is forgotten
MAX_PERSONS = 4  # persons tracked at once
MOST_PERSONS = 64  # the largest max_persons a recognizer takes
# A forward gap in stamps resets a buffer only beyond the window AND this many seconds: a camera
# slower than a short window (10 fps with a 0.05 s window) is not a clock jump.
JUMP_FLOOR = 1.0


class PushResult(enum.Enum):
    """What :meth:`WindowBuffer.push` did with a frame."""

    ADDED = "added"
    DUPLICATE = "duplicate"  # same timestamp as the newest frame: ignored
    RESET = "reset"  # time jumped, or layout, space or image size changed: buffer cleared, frame starts anew


@dataclass
class WindowStats:
    """Counters for diagnostics; a buffer fills the frame counters, a set all of them."""

    frames_pushed: int = 0  # every frame handed to push, duplicates included
    duplicates: int = 0
    resets: int = 0
    persons_created: int = 0
    persons_timed_out: int = 0
    persons_evicted: int = 0  # silent persons dropped to make room for a new one
    persons_refused: int = 0  # frames of new persons refused while every slot was busy


@dataclass(frozen=True)
class Window:
    """One model input: ``sequence`` holds exactly T resampled frames of one person.

    ``stamp`` (the newest source frame's timestamp) is the window's time: report results with it.
    """

    sequence: SkeletonSequence  # T frames, timestamps interpolated, hands filled and resampled
    first_stamp: float  # where the window starts (its oldest frame, if it holds less than W)
    stamp: float  # newest source frame used
    source_frames: int  # source frames inside the window
    padding: int = 0  # leading instants before the oldest frame, which repeat it (always < T)

    @property
    def hand_mask(self) -> np.ndarray:
        """(T, 2) bool: which hand slots hold real or interpolated data (else zeros)."""
        return self.sequence.hand_present

    @property
    def duration(self) -> float:
        return self.stamp - self.first_stamp

    @property
    def hand_fraction(self) -> float:
        """Share of the instants from the oldest frame on with a hand (seen or filled in); the
        ``padding`` before it repeats that frame, hand and all, and says nothing of the person."""
        return float(self.hand_mask[self.padding :].any(axis=1).mean())


class WindowBuffer:
    """Bounded, time-ordered frames of ONE person: the newest ``seconds`` plus hand-fill context.

    Besides the frames inside the window, up to ``max_gap`` older frames are kept so that hand
    sorting and interpolation see across the window's start. At most ``max_frames`` frames are
    held, so memory stays bounded at any frame rate. Frames closer than ``min_step`` seconds
    (about 250 Hz with the defaults) are thinned: while the newest frame is that close to the one
    before it, a new frame replaces it instead of being appended, so that a full buffer still spans
    the whole window (a 10 kHz sensor, or a burst of frames stamped 1e-12 s apart, can neither
    shorten the window nor flush its history) and the newest frame is always kept.
    """

    def __init__(
        self, seconds: float = SECONDS, max_gap: int = MAX_GAP, max_frames: int = MAX_FRAMES
    ) -> None:
        if not (
            finite_number(seconds)
            and seconds > 0
            and whole_number(max_gap, 0)
            and whole_number(max_frames, 3)
        ):
            raise ValueError(
                f"need seconds > 0, max_gap >= 0 and max_frames >= 3, got {seconds}, {max_gap}, {max_frames}"
            )
        self.seconds = float(seconds)
        self.max_gap = int(max_gap)
        self.jump = max(self.seconds, JUMP_FLOOR)  # a longer forward gap in stamps is a clock jump
        self.min_step = min_step(self.seconds, self.max_gap, int(max_frames))
        self.stats = WindowStats()
        self.last_result: PushResult | None = None
        self.last_arrival = 0.0  # when the newest frame arrived (the owner's clock; see WindowSet)
        self.state: dict[str, Any] = {}  # per-person state of the buffer's owner, dropped with it
        self._frames: deque[SkeletonFrame] = deque(maxlen=max_frames)
        self._sorter = HandSorter(self.max_gap)  # hand slots, sorted as each frame arrives
        self._resets_logged: dict[str, int] = {}  # reset warnings by message, for throttling

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def maxlen(self) -> int:
        return self._frames.maxlen or 0

    @property
    def newest_stamp(self) -> float | None:
        return self._frames[-1].timestamp if self._frames else None

    @property
    def covered(self) -> float:
        """Seconds of history inside the window (0 with fewer than two frames)."""
        if len(self._frames) < 2:
            return 0.0
        return min(self._frames[-1].timestamp - self._frames[0].timestamp, self.seconds)

    @property
    def fill(self) -> float:
        """Fraction of the window's duration holding frames, in [0, 1]."""
        return self.covered / self.seconds

    def ready(self, min_seconds: float | None = None) -> bool:
        """True once ``min_seconds`` of history (default: the whole window) are buffered."""
        need = self.seconds if min_seconds is None else min_seconds
        return bool(self._frames) and self.covered >= min(need, self.seconds) - stamp_slack(self.newest_stamp)

    def clear(self) -> None:
        """Drop all frames and the hands' tracks (counters are kept)."""
        self._frames.clear()
        self._sorter = HandSorter(self.max_gap)

    def push(self, frame: SkeletonFrame) -> PushResult:
        """Add a frame; a stamp equal to the newest is ignored. An older stamp, one more than ``jump``
        seconds after the newest (the kept context frames would otherwise count as history, and a
        one-frame window would be decided at once), or another layout, space or image size clears
        the buffer first.

        The result is also kept in ``last_result``. Raises SkeletonError for a frame whose values or
        timestamp are not finite (e.g. arrays mutated after the frame was checked).
        """
        _check_frame(frame)
        self.stats.frames_pushed += 1
        result = self._classify(frame)
        if result is PushResult.DUPLICATE:
            self.stats.duplicates += 1
        else:
            if result is PushResult.RESET:
                self.stats.resets += 1
                self.clear()
            if self._newest_is_provisional():
                self._frames.pop()  # thinning: the new frame takes the place of the newest
            self._frames.append(self._owned(frame))
            self._forget_old(frame.timestamp)
        self.last_result = result
        return result

    def _owned(self, frame: SkeletonFrame) -> SkeletonFrame:
        """A copy of the frame for the buffer alone (a caller that writes each pose into the same
        arrays cannot change the frames already kept), with its hands in the slots their tracks
        give (``core.hand_fill.sort_hands``)."""
        order = slice(None, None, -1) if self._sorter.swaps(frame.hands, frame.hand_present) else slice(None)
        owned = copy.copy(frame)  # not dataclasses.replace: the frame was checked at the door already
        owned.body = frame.body.copy()
        owned.hands = frame.hands[order].copy()
        owned.hand_present = frame.hand_present[order].copy()
        return owned

    def _newest_is_provisional(self) -> bool:
        """Whether the newest frame lies within ``min_step`` of the one before it; the next frame
        then replaces it, so every kept frame but the newest is at least ``min_step`` from the next."""
        frames = self._frames
        return len(frames) >= 2 and frames[-1].timestamp - frames[-2].timestamp < self.min_step

    def _forget_old(self, newest: float) -> None:
        """Drop frames older than the window, keeping ``max_gap`` of them as hand-fill context."""
        start = newest - self.seconds
        while len(self._frames) > self.max_gap + 1 and self._frames[self.max_gap + 1].timestamp <= start:
            self._frames.popleft()

    def _classify(self, frame: SkeletonFrame) -> PushResult:
        if not self._frames:
            return PushResult.ADDED
        newest = self._frames[-1]
        if self._source_changed(frame, newest):
            return PushResult.RESET
        if frame.timestamp == newest.timestamp:
            self._warn_rarely(
                "person %d: a frame with the newest frame's stamp (%.6f s) was ignored; a camera whose "
                "stamps do not advance gives no decisions",
                frame.person_id, frame.timestamp,
            )  # fmt: skip
            return PushResult.DUPLICATE
        if frame.timestamp < newest.timestamp:
            self._warn_rarely(
                "person %d: timestamp went backwards (%.6f -> %.6f s); window buffer reset",
                frame.person_id, newest.timestamp, frame.timestamp,
            )  # fmt: skip
            return PushResult.RESET
        if frame.timestamp - newest.timestamp > self.jump:  # a clock jump, not a slow camera
            self._warn_rarely(
                "person %d: timestamp jumped forward by more than %g s (%.6f -> %.6f s); window buffer reset",
                frame.person_id, self.jump, newest.timestamp, frame.timestamp,
            )  # fmt: skip
            return PushResult.RESET
        return PushResult.ADDED

    def _source_changed(self, frame: SkeletonFrame, newest: SkeletonFrame) -> bool:
        """Whether ``frame`` comes from another kind of source than the buffered frames (logged): a
        window mixes neither layouts nor spaces, and it is read with one image size, so the aspect
        correction of frames from a camera that changed resolution would be wrong."""
        if frame.layout != newest.layout or frame.space != newest.space:
            self._warn_rarely(
                "person %d: layout/space changed from %s/%s to %s/%s; window buffer reset",
                frame.person_id, newest.layout, newest.space, frame.layout, frame.space,
            )  # fmt: skip
            return True
        if frame.image_size != newest.image_size:
            self._warn_rarely(
                "person %d: image size changed from %dx%d to %dx%d; window buffer reset",
                frame.person_id, *newest.image_size, *frame.image_size,
            )  # fmt: skip
            return True
        return False

    def _warn_rarely(self, message: str, *args: object) -> None:
        """Log the 1st, 10th, 100th, ... reset or ignored frame of each kind in this buffer: a
        stream running backwards resets on every frame, and a warning per frame would bury the log
        (``stats.resets`` and ``stats.duplicates`` count them all)."""
        count = self._resets_logged[message] = self._resets_logged.get(message, 0) + 1
        if count == 10 ** (len(str(count)) - 1):
            suffix = "" if count == 1 else f" (the {count}th time for this person; logged at 1, 10, 100, ...)"
            logger.warning(message + suffix, *args)

    def window(self, length: int = LENGTH, min_seconds: float = 0.0) -> Window | None:
        """The newest ``seconds`` as exactly ``length`` frames, or None below ``min_seconds`` of history.

        Hands, sorted into their slots as each frame arrived, have short gaps filled over all
        buffered frames (timestamps as the time axis), then body, hands, hand mask and timestamps
        share one sampling by time. Before the
        oldest frame the window holds that frame's pose.
        """
        if not self._frames or not self.ready(min_seconds):
            return None
        source = SkeletonSequence.from_frames(list(self._frames))
        hands, mask = interpolate_gaps(source.hands, source.hand_present, source.timestamps, self.max_gap)
        stamps = source.timestamps
        end = float(stamps[-1])
        sampling = time_window_sampling(stamps, end, self.seconds, length)
        hands, mask = sampling.apply_masked(hands, mask)
        # Per-joint masks, as in the training feeder: a blend with an unobserved joint stays zero.
        body, _ = sampling.apply_masked(source.body, np.any(source.body != 0.0, axis=-1))
        sequence = SkeletonSequence(
            timestamps=sampling.apply(stamps),
            body=body,
            hands=hands,
            hand_present=mask,
            person_id=source.person_id,
            layout=source.layout,
            space=source.space,
            image_size=source.image_size,
        )
        inside = stamps > end - self.seconds + stamp_slack(end)
        padding = int(np.count_nonzero(window_instants(end, self.seconds, length) < stamps[0]))
        return Window(sequence, max(float(stamps[0]), end - self.seconds), end, int(inside.sum()), padding)


class WindowSet:
    """One :class:`WindowBuffer` per person id, with bounded memory whatever the input.

    Each person has their own timeline: a stamp going backwards resets only that person, so two
    cameras (or a tracker) with skewed clocks do not wipe each other out, given an arrival clock.
    Age is measured on the *arrival* clock passed to :meth:`push` (the node's receive time, or the
    log time in bag replay; by default the frame's own stamp): a person whose last frame arrived
    more than ``timeout`` seconds ago is dropped. Without an arrival clock, persons on clocks
    further apart than ``timeout`` time each other out at every frame: pass one. At most
    ``max_persons`` buffers exist. A new person is admitted only by evicting the stalest one, and
    only if that one has been silent for ``evict_after`` seconds: persons who are being served keep
    their windows, and the newcomer is refused and counted (``stats.persons_refused``). Everything
    a caller keeps per person lives in the buffer's ``state``, so it is dropped with the buffer.
    """

    def __init__(
        self,
        seconds: float = SECONDS,
        max_gap: int = MAX_GAP,
        timeout: float = PERSON_TIMEOUT,
        max_persons: int = MAX_PERSONS,
        max_frames: int = MAX_FRAMES,
        evict_after: float | None = None,
    ) -> None:
        if not (finite_number(timeout) and timeout > 0 and whole_number(max_persons, 1)):
            raise ValueError(f"need timeout > 0 and max_persons >= 1, got {timeout}, {max_persons}")
        evict_after = 0.5 * timeout if evict_after is None else evict_after
        if not (finite_number(evict_after) and evict_after >= 0):
            raise ValueError(f"need a finite evict_after >= 0, got {evict_after}")
        WindowBuffer(seconds, max_gap, max_frames)  # validates the buffer settings up front
        self.seconds, self.max_gap, self.max_frames = seconds, max_gap, max_frames
        self.timeout = timeout
        self.max_persons = int(max_persons)
        self.evict_after = evict_after
        self.stats = WindowStats()
        self._buffers: dict[int, WindowBuffer] = {}

    def __len__(self) -> int:
        return len(self._buffers)

    def __contains__(self, person_id: int) -> bool:
        return person_id in self._buffers

    @property
    def person_ids(self) -> list[int]:
        return list(self._buffers)

    def get(self, person_id: int) -> WindowBuffer | None:
        return self._buffers.get(person_id)

    def items(self) -> list[tuple[int, WindowBuffer]]:
        return list(self._buffers.items())

    def reset(self) -> None:
        """Forget every person and the time base (counters are kept)."""
        self._buffers.clear()

    def push(self, frame: SkeletonFrame, arrival: float | None = None) -> WindowBuffer | None:
        """Route a frame to its person's buffer (created if there is room) and return that buffer.

        Returns None when the person is new and every slot serves someone fresh (counted).
        Raises SkeletonError for a frame that breaks the contract, ValueError for an arrival that
        is not a finite time.
        """
        _check_frame(frame)
        arrival = frame.timestamp if arrival is None else _arrival(arrival)
        self.prune(arrival)
        buffer = self._buffer_for(frame.person_id, arrival)
        if buffer is None:
            return None
        result = buffer.push(frame)
        if result is PushResult.RESET:
            buffer.state.clear()
        buffer.last_arrival = arrival
        self._count(result)
        return buffer

    def prune(self, now: float) -> list[int]:
        """Drop persons whose last frame arrived more than ``timeout`` s before ``now``, or more
        than ``timeout`` s after it (the clock went back, or a frame came stamped in the future).

        ``push`` calls this with each frame's arrival; a node also calls it from a timer (with the
        same clock) so that people vanish when no frames arrive at all. Dropping persons from the
        future matters where stamps are the clock (bag replay): one frame stamped years ahead
        would otherwise hold its slot, and refuse newcomers, until the stamps caught up.
        """
        now = _arrival(now)
        dropped = [pid for pid, b in self._buffers.items() if abs(now - b.last_arrival) > self.timeout]
        for person_id in dropped:
            del self._buffers[person_id]
        self.stats.persons_timed_out += len(dropped)
        return dropped

    def _buffer_for(self, person_id: int, arrival: float) -> WindowBuffer | None:
        buffer = self._buffers.get(person_id)
        if buffer is not None:
            return buffer
        if len(self._buffers) >= self.max_persons:
            stalest = min(self._buffers, key=lambda pid: self._buffers[pid].last_arrival)
            if arrival - self._buffers[stalest].last_arrival <= self.evict_after:
                self.stats.persons_refused += 1
                return None
            del self._buffers[stalest]
            self.stats.persons_evicted += 1
        buffer = WindowBuffer(self.seconds, self.max_gap, self.max_frames)
        self._buffers[person_id] = buffer
        self.stats.persons_created += 1
        return buffer

    def _count(self, result: PushResult) -> None:
        self.stats.frames_pushed += 1
        self.stats.duplicates += int(result is PushResult.DUPLICATE)
        self.stats.resets += int(result is PushResult.RESET)


def min_step(seconds: float, max_gap: int, max_frames: int) -> float:
    """The closest spacing of kept frames at which ``max_frames`` still hold the window.

    A full buffer holds the frames inside the window, up to ``max_gap`` + 1 frames at or before
    its start (hand-fill context, capped at half the buffer) and the newest frame, which may be
    closer than the step; the rest of the buffer divides the window.
    """
    room = max_frames - min(max_gap, max_frames // 2) - 3
    return seconds / max(room, 1)


def stamp_slack(stamp: float | None) -> float:
    """Rounding slack for durations between stamps near ``stamp``: a few float64 steps of it.

    ROS epoch stamps (about 1.7e9 s) resolve only 0.24 microseconds, so a fixed nanosecond of slack
    let a stride of exactly four frames come out as five every other time.
    """
    return max(1e-9, 4 * math.ulp(stamp or 0.0))


def finite_number(value: Any) -> bool:
    """A finite int or float (numpy included), not a bool."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int | np.integer):  # every int is finite; math.isfinite overflows on huge ones
        return True
    return isinstance(value, float | np.floating) and math.isfinite(value)


def whole_number(value: Any, low: int = 0) -> bool:
    """An int (numpy included, not a bool) of at least ``low``."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool) and value >= low


def _arrival(value: Any) -> float:
    """An arrival time as a finite float; ValueError otherwise (a NaN would keep a person forever)."""
    if not finite_number(value):
        raise ValueError(f"arrival time {value!r} is not a finite number of seconds")
    return float(value)


def _check_frame(frame: SkeletonFrame) -> None:
    """The whole contract again at the buffer's door: it is verified when a frame is built, but
    fields can be reassigned and arrays mutated later, and a broken frame inside the buffer would
    make every window fail until it left the buffer."""
    if not isinstance(frame, SkeletonFrame):
        raise TypeError(f"expected a SkeletonFrame, got {type(frame).__name__}")
    frame.validate()
