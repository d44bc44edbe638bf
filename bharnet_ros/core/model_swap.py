"""What a live model swap needs besides ROS: which version of a model file was loaded, and the
probation of a swapped-in model.

A model is checked on one still window when it loads, which cannot show what real windows do: they
can fail, or take seconds (a hostile graph can tell them apart). So the model a swap replaced is
kept while the new one classifies its first :data:`PROBATION_WINDOWS` live windows, and
:meth:`Probation.judge` says whether to keep watching, to roll back (and why), or that the new
model has proved itself. The recognizer node swaps the models and sets its parameter.
"""

from __future__ import annotations

import enum
import os
import statistics
from typing import Generic, TypeVar

PROBATION_WINDOWS = 20  # a swapped-in model's first live windows, watched with the old model kept
SLOWEST_STRIDE = 0.05  # seconds per window a swapped-in model may take when stride_seconds is below it
MEDIAN_WINDOWS = 3  # from this many windows on, their median time is judged; before, each window alone
SLOW_FACTOR = 10  # before that, one window this many times over the budget is too slow

FileStamp = tuple[int, int, int] | None
FallbackT = TypeVar("FallbackT")


def file_stamp(path: str) -> FileStamp:
    """A file's identity and version (inode, size, modification time), None if it cannot be read:
    a model taught again under the same name is a new file to load."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):  # missing, a name too long, a NUL in the name
        return None
    return info.st_ino, info.st_size, info.st_mtime_ns


class Verdict(enum.Enum):
    """What to do with a model on probation."""

    KEEP = "keep"  # keep watching its windows
    ROLL_BACK = "roll back"  # put the fallback back
    DONE = "done"  # it proved itself: the fallback can go


class Probation(Generic[FallbackT]):
    """A swapped-in model's first live windows, judged against the stride, with ``fallback`` (the
    caller's: what to put back) kept meanwhile."""

    def __init__(self, fallback: FallbackT) -> None:
        self.fallback = fallback
        self.seconds: list[float] = []  # the new model's time per window, judged so far
        self._unjudged: list[float] = []
        self._failures: list[str] = []  # why windows failed, not judged yet

    def restart(self) -> None:
        """Another model was swapped in during the probation: judge its windows afresh. The
        fallback stays, the last model that proved itself."""
        self.seconds, self._unjudged, self._failures = [], [], []

    def timed(self, seconds: float) -> None:
        """The new model classified a window in ``seconds``."""
        self._unjudged.append(seconds)

    def failed(self, why: str) -> None:
        """The new model failed on a window, for the reason given."""
        self._failures.append(why)

    @property
    def unjudged(self) -> bool:
        """Whether windows came since the last :meth:`judge`."""
        return bool(self._unjudged or self._failures)

    def judge(self, stride_seconds: float) -> tuple[Verdict, str]:
        """The verdict on the windows so far, and the reason for a roll back ("" otherwise).

        A failure rolls back, and so does a model slower than the stride (at least
        :data:`SLOWEST_STRIDE`): by the median from :data:`MEDIAN_WINDOWS` windows on, before that
        by one window :data:`SLOW_FACTOR` times over. After :data:`PROBATION_WINDOWS` it is done.
        """
        failures, self._failures = self._failures, []
        self.seconds, self._unjudged = self.seconds + self._unjudged, []
        times = self.seconds
        budget = max(stride_seconds, SLOWEST_STRIDE)
        median = statistics.median(times) if len(times) >= MEDIAN_WINDOWS else 0.0
        worst = max(times, default=0.0) if len(times) < MEDIAN_WINDOWS else 0.0
        if failures:
            return Verdict.ROLL_BACK, f"failed on a live window ({failures[0]})"
        if median > budget or worst > SLOW_FACTOR * budget:
            allowed = f"more than stride_seconds allows ({1000 * budget:.0f} ms)"
            return Verdict.ROLL_BACK, f"takes {1000 * max(median, worst):.0f} ms per window, {allowed}"
        if len(times) >= PROBATION_WINDOWS:
            return Verdict.DONE, ""
        return Verdict.KEEP, ""
