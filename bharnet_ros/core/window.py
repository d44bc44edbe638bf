"""Sliding windows of skeleton frames for live recognition, one buffer per tracked person.

A :class:`WindowBuffer` keeps the newest frames of one person (bounded), and on request turns the
newest ``span`` of them into a fixed-length :class:`Window`: hands sorted and short gaps filled
(:mod:`hand_fill`), then resampled to T frames (:mod:`resample`) exactly as the test-time feeder
does. :class:`WindowSet` routes frames to per-person buffers and forgets people who left. Time is
always the frames' own timestamps (sensor time), so sim time and bag replay behave like live
cameras. When to run the recognizer (the stride) is the caller's choice. docs/windowing.md has
the semantics for robot developers.
"""

from __future__ import annotations

import enum
import logging
import math
from collections import OrderedDict, deque
from dataclasses import dataclass

import numpy as np

from bharnet_ros.core.hand_fill import MAX_GAP, fill_hands
from bharnet_ros.core.resample import center_crop, resize_indices
from bharnet_ros.core.skeleton import SkeletonError, SkeletonFrame, SkeletonSequence

logger = logging.getLogger(__name__)

SPAN = 64  # source frames per window (about 2.1 s at 30 fps)
LENGTH = 64  # frames the model sees (T)


class PushResult(enum.Enum):
    """What :meth:`WindowBuffer.push` did with a frame."""

    ADDED = "added"
    DUPLICATE = "duplicate"  # same timestamp as the newest frame: ignored
    RESET = "reset"  # time went backwards or the layout changed: buffer cleared, frame starts anew


@dataclass
class WindowStats:
    """Counters for diagnostics; a buffer fills the frame counters, a set all of them."""

    frames_pushed: int = 0  # every frame handed to push, duplicates included
    duplicates: int = 0
    resets: int = 0
    persons_created: int = 0
    persons_timed_out: int = 0
    persons_evicted: int = 0  # dropped because the person cap was reached

    @property
    def persons_dropped(self) -> int:
        return self.persons_timed_out + self.persons_evicted


@dataclass(frozen=True)
class Window:
    """One model input: ``sequence`` holds exactly T resampled frames of one person.

    ``stamp`` (the newest source frame's timestamp) is the window's time: report results with it.
    """

    sequence: SkeletonSequence  # T frames, timestamps interpolated, hands filled and resampled
    first_stamp: float  # oldest source frame used
    stamp: float  # newest source frame used
    source_frames: int  # source frames the T frames were resampled from

    @property
    def hand_mask(self) -> np.ndarray:
        """(T, 2) bool: which hand slots hold real or interpolated data (else zeros)."""
        return self.sequence.hand_present

    @property
    def duration(self) -> float:
        return self.stamp - self.first_stamp


class WindowBuffer:
    """Bounded, time-ordered frames of ONE person.

    Keeps ``span + max_gap`` frames: the newest ``span`` make a window and the ``max_gap`` older
    ones give the hand sort/interpolation context across the window's start. ``crop_ratio`` < 1
    applies the test feeder's centre crop (DeGCN uses 0.95) to the span before resizing.
    """

    def __init__(self, span: int = SPAN, max_gap: int = MAX_GAP, crop_ratio: float = 1.0) -> None:
        if span < 1 or max_gap < 0:
            raise ValueError(f"need span >= 1 and max_gap >= 0, got {span}, {max_gap}")
        center_crop(span, crop_ratio)  # validates the ratio
        self.span = span
        self.max_gap = max_gap
        self.crop_ratio = crop_ratio
        self.stats = WindowStats()
        self.last_result: PushResult | None = None
        self._frames: deque[SkeletonFrame] = deque(maxlen=span + max_gap)

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def maxlen(self) -> int:
        return self.span + self.max_gap

    @property
    def newest_stamp(self) -> float | None:
        return self._frames[-1].timestamp if self._frames else None

    @property
    def fill(self) -> float:
        """Fraction of the span holding frames, in [0, 1]."""
        return min(len(self._frames), self.span) / self.span

    def ready(self, min_frames: int | None = None) -> bool:
        """True once at least ``min_frames`` frames (default: a full span) are buffered."""
        return len(self._frames) >= (self.span if min_frames is None else min_frames)

    def clear(self) -> None:
        """Drop all frames (counters are kept)."""
        self._frames.clear()

    def push(self, frame: SkeletonFrame) -> PushResult:
        """Add a frame; a stamp equal to the newest is ignored, an older one clears the buffer first.

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
                self._frames.clear()
            self._frames.append(frame)
        self.last_result = result
        return result

    def _classify(self, frame: SkeletonFrame) -> PushResult:
        if not self._frames:
            return PushResult.ADDED
        newest = self._frames[-1]
        if frame.layout != newest.layout or frame.space != newest.space:
            logger.warning(
                "person %d: layout/space changed from %s/%s to %s/%s; window buffer reset",
                frame.person_id, newest.layout, newest.space, frame.layout, frame.space,
            )  # fmt: skip
            return PushResult.RESET
        if frame.timestamp == newest.timestamp:
            return PushResult.DUPLICATE
        if frame.timestamp < newest.timestamp:
            logger.warning(
                "person %d: timestamp went backwards (%.6f -> %.6f s); window buffer reset",
                frame.person_id, newest.timestamp, frame.timestamp,
            )  # fmt: skip
            return PushResult.RESET
        return PushResult.ADDED

    def window(self, length: int = LENGTH, min_frames: int = 1) -> Window | None:
        """The newest ``span`` frames as exactly ``length`` frames, or None below ``min_frames``.

        Hands are sorted and short gaps filled over all buffered frames (timestamps as the time
        axis), then body, hands, hand mask and timestamps share one linear resampling.
        """
        if len(self._frames) < max(min_frames, 1):
            return None
        source = SkeletonSequence.from_frames(list(self._frames))
        hands, mask = fill_hands(source.hands, source.hand_present, source.timestamps, self.max_gap)
        count = min(len(source), self.span)
        offset = len(source) - count
        start, stop = center_crop(count, self.crop_ratio)
        sampling = resize_indices(offset + start, offset + stop, length)
        hands, mask = sampling.apply_masked(hands, mask)
        # Per-joint masks, as in the training feeder: a blend with an unobserved joint stays zero.
        body, _ = sampling.apply_masked(source.body, np.any(source.body != 0.0, axis=-1))
        sequence = SkeletonSequence(
            timestamps=sampling.apply(source.timestamps),
            body=body,
            hands=hands,
            hand_present=mask,
            person_id=source.person_id,
            layout=source.layout,
            space=source.space,
            image_size=source.image_size,
        )
        stamps = source.timestamps
        return Window(sequence, float(stamps[offset + start]), float(stamps[offset + stop - 1]), stop - start)


class WindowSet:
    """One :class:`WindowBuffer` per person id, with bounded memory whatever the input.

    A buffer is created on a person's first frame and dropped once the newest frame of any person
    is more than ``timeout`` seconds newer than that person's last frame (track loss). At most
    ``max_persons`` buffers exist; a new person beyond that evicts the stalest. A timestamp older
    than the newest one seen (bag loop, sim reset) clears every buffer, since all belong to the old
    timeline.
    """

    def __init__(
        self,
        span: int = SPAN,
        max_gap: int = MAX_GAP,
        crop_ratio: float = 1.0,
        timeout: float = 1.0,
        max_persons: int = 8,
    ) -> None:
        if timeout <= 0 or max_persons < 1:
            raise ValueError(f"need timeout > 0 and max_persons >= 1, got {timeout}, {max_persons}")
        WindowBuffer(span, max_gap, crop_ratio)  # validates the buffer settings up front
        self.span, self.max_gap, self.crop_ratio = span, max_gap, crop_ratio
        self.timeout = timeout
        self.max_persons = max_persons
        self.stats = WindowStats()
        self.latest_stamp: float | None = None
        self._buffers: OrderedDict[int, WindowBuffer] = OrderedDict()  # stalest first

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
        self.latest_stamp = None

    def push(self, frame: SkeletonFrame) -> WindowBuffer:
        """Route a frame to its person's buffer (created if new) and return that buffer."""
        _check_frame(frame)
        if self.latest_stamp is not None and frame.timestamp < self.latest_stamp:
            logger.warning(
                "timestamp went backwards (%.6f -> %.6f s); all %d person buffers reset",
                self.latest_stamp, frame.timestamp, len(self._buffers),
            )  # fmt: skip
            self.stats.resets += 1
            self.reset()
        self.latest_stamp = frame.timestamp
        self.prune(frame.timestamp)
        buffer = self._buffer_for(frame.person_id)
        self._count(buffer.push(frame))
        return buffer

    def prune(self, now: float) -> list[int]:
        """Drop persons whose newest frame is more than ``timeout`` s older than ``now``.

        ``push`` calls this with each frame's stamp; a node may also call it from a timer (with the
        same clock as the frame stamps) so people vanish when no frames arrive at all.
        """
        dropped = []
        while self._buffers:
            person_id, buffer = next(iter(self._buffers.items()))
            newest = buffer.newest_stamp
            if newest is not None and now - newest <= self.timeout:
                break
            del self._buffers[person_id]
            dropped.append(person_id)
        self.stats.persons_timed_out += len(dropped)
        return dropped

    def _buffer_for(self, person_id: int) -> WindowBuffer:
        buffer = self._buffers.get(person_id)
        if buffer is None:
            while len(self._buffers) >= self.max_persons:
                self._buffers.popitem(last=False)
                self.stats.persons_evicted += 1
            buffer = WindowBuffer(self.span, self.max_gap, self.crop_ratio)
            self._buffers[person_id] = buffer
            self.stats.persons_created += 1
        self._buffers.move_to_end(person_id)
        return buffer

    def _count(self, result: PushResult) -> None:
        self.stats.frames_pushed += 1
        self.stats.duplicates += int(result is PushResult.DUPLICATE)
        self.stats.resets += int(result is PushResult.RESET)


def _check_frame(frame: SkeletonFrame) -> None:
    """Cheap re-check at the buffer's door: the contract is verified when a frame is built, but
    arrays can be mutated later and the contract does not cover the timestamp's finiteness."""
    if not isinstance(frame, SkeletonFrame):
        raise TypeError(f"expected a SkeletonFrame, got {type(frame).__name__}")
    if not math.isfinite(frame.timestamp):
        raise SkeletonError(f"frame timestamp {frame.timestamp} is not finite")
    if not (np.isfinite(frame.body).all() and np.isfinite(frame.hands).all()):
        raise SkeletonError("frame contains NaN or infinite values; the buffer does not take it")
