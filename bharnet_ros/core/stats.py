"""Bounded running statistics for diagnostics and benchmarks: rates, latencies, dropped frames."""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Hashable, Iterable

import numpy as np


class RateMeter:
    """Events per second over the last ``window`` seconds of the caller's clock."""

    def __init__(self, window: float = 5.0) -> None:
        self.window = window
        self._times: deque[float] = deque(maxlen=10_000)

    def tick(self, now: float) -> None:
        self._times.append(now)

    def rate(self, now: float) -> float:
        while self._times and self._times[0] < now - self.window:
            self._times.popleft()
        if len(self._times) < 2:
            return 0.0
        span = max(now - self._times[0], 1e-9)
        return (len(self._times) - 1) / span


class Percentiles:
    """The last ``size`` samples of a quantity, summarised as p50/p95/max."""

    def __init__(self, size: int = 1000) -> None:
        self._values: deque[float] = deque(maxlen=size)

    def add(self, value: float) -> None:
        self._values.append(value)

    def summary(self) -> dict[str, float]:
        if not self._values:
            return {"p50": 0.0, "p95": 0.0, "max": 0.0}
        values = np.fromiter(self._values, float)
        return {
            "p50": float(np.percentile(values, 50)),
            "p95": float(np.percentile(values, 95)),
            "max": float(values.max()),
        }


MAX_COUNTED_GAP = 10.0  # seconds
MOST_LATE = 1.0  # seconds: a frame older than the newest by more is a restart (a bag loop), not late
MIN_FRAME_PERIOD = 1e-3  # seconds: no camera runs above 1000 Hz, so a shorter gap is not a period


class GapDropCounter:
    """Estimates frames skipped upstream from gaps in their stamps (e.g. by a latest-only queue).

    A gap of about k nominal frame periods means k - 1 frames never reached us. The nominal period
    is a low percentile of recent gaps (consecutive frames still arrive now and then), so any camera
    rate works without configuration, even when most frames are being skipped. A gap longer than
    :data:`MAX_COUNTED_GAP` is a pause or a clock jump (a bag looping, one frame stamped 0), not
    frames lost: it counts nothing and does not enter the period estimate. Nor does one shorter than
    :data:`MIN_FRAME_PERIOD` (frames stamped microseconds apart), which would make every ordinary
    gap look like thousands of lost frames. A frame older than the newest (delivered late) is not
    a gap either; a jump back by more than :data:`MOST_LATE` (a bag looping, a camera restarting)
    restarts the count from it.
    """

    def __init__(self, history: int = 100) -> None:
        self._gaps: deque[float] = deque(maxlen=history)
        self._last: float | None = None
        self.dropped = 0

    def observe(self, stamp: float) -> int:
        """Record a frame's stamp; returns how many frames seem to be missing before it."""
        missing = 0
        if self._last is not None and self._last < stamp <= self._last + MAX_COUNTED_GAP:
            gap = stamp - self._last
            if len(self._gaps) >= 5:
                missing = max(round(gap / float(np.percentile(self._gaps, 10))) - 1, 0)
            if gap >= MIN_FRAME_PERIOD:
                self._gaps.append(gap)
        if self._last is None or stamp > self._last or stamp < self._last - MOST_LATE:
            self._last = stamp  # a frame arriving late leaves it: the next gap is from the newest
        self.dropped += missing
        return missing


class PersonDropCounter:
    """Frames skipped upstream per person (a :class:`GapDropCounter` each), and their total.

    Each person's stream has its own stamps, so each has its own gaps. The counters of persons no
    longer tracked go once there are many (ids churn without end on a long run); what they counted
    stays in :attr:`dropped`.
    """

    def __init__(self) -> None:
        self._counters: dict[int, GapDropCounter] = {}
        self._forgotten = 0  # frames counted by the counters that went

    def __len__(self) -> int:
        return len(self._counters)

    def observe(self, person_id: int, stamp: float) -> int:
        """Record a frame of ``person_id``; returns how many of their frames seem to be missing before it."""
        return self._counters.setdefault(person_id, GapDropCounter()).observe(stamp)

    def forget_untracked(self, tracked: Collection[int], most: int) -> None:
        """Once more than ``most`` persons have counters, drop those of persons not in ``tracked``."""
        if len(self._counters) > most:
            for person_id in [p for p in self._counters if p not in tracked]:
                self._forgotten += self._counters.pop(person_id).dropped

    def forget_all(self) -> None:
        """Drop every counter: a stream heard again later is a new stream, not a gap of lost frames."""
        self._forgotten = self.dropped
        self._counters = {}

    @property
    def dropped(self) -> int:
        """Frames missing so far, of every person, tracked or not."""
        return self._forgotten + sum(counter.dropped for counter in self._counters.values())


def first_repeat(values: Iterable[Hashable]) -> Hashable | None:
    """The first value that appears a second time in ``values``; None when all differ."""
    seen = set()
    for value in values:
        if value in seen:
            return value
        seen.add(value)
    return None
