"""Which skeletons of one message reach the recognizer, and at what time.

The recognizer node and the deterministic bag evaluation both call these rules, so the two refuse
the same skeletons and time the same frames: a rule added to one path cannot be missed by the other.
Per message (one camera frame):

* a skeleton whose stamp no clock gives (nanoseconds of a second or more, a time before 1970), or
  that breaks the skeleton contract, is refused;
* a skeleton stamped 0 (a driver that never sets the stamp) is timed by the caller's clock, unless
  a stamped skeleton came less than :data:`STAMPED_MEMORY` seconds before (a second publisher on the
  topic): then it is refused, since a clock mixed into a stamped stream would reset every window;
* only the first skeleton of each person id is kept (:func:`one_per_person`).

Each refusal is reported through the caller's ``refuse(why)``, which counts it (the node's
``bad_messages``, the report's ``bad_skeletons``). No rclpy here: stamps are any object with
``sec`` and ``nanosec``, persons any PersonSkeleton-shaped object (rclpy or rosbags messages).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from bharnet_ros.core.skeleton import SkeletonError, SkeletonFrame
from bharnet_ros.core.skeleton_fields import frame_from_person

# Seconds after a stamped skeleton during which a stamp-0 one is refused rather than timed by the
# caller's clock: mixed into a stamped stream, that clock's time would reset every window it reaches.
STAMPED_MEMORY = 5.0
NANOSECONDS = 1_000_000_000

Refuse = Callable[[str], None]


def stamp_problem(stamp: Any) -> str:
    """Why a ``builtin_interfaces/Time`` is no time a clock gives ("" if it is one): nanoseconds that
    make a second or more (they would wrap the stamps derived from it), or a time before 1970, which
    rclpy's ``Time.from_msg`` refuses, so a subscriber of ours would fail on a stamp passed on."""
    if stamp.nanosec >= NANOSECONDS:
        return f"stamp nanosec {stamp.nanosec} is not below 1e9"
    if stamp.sec < 0:
        return f"stamp sec {stamp.sec} is negative (before 1970)"
    return ""


def stamp_seconds(stamp: Any) -> float:
    """A ``builtin_interfaces/Time`` in seconds, computed the same way on both paths (to the bit)."""
    return stamp.sec + stamp.nanosec * 1e-9


def nanoseconds_to_seconds(nanoseconds: int) -> float:
    """A time in integer nanoseconds (a bag's log time) in seconds, to the bit as a stamp of that
    time reads (``ns * 1e-9`` differs in the last bit for about four stamps in ten)."""
    sec, nanosec = divmod(int(nanoseconds), 10**9)
    return sec + nanosec * 1e-9


def person_frame(person: Any) -> SkeletonFrame:
    """Contract frame of one PersonSkeleton, stamped with its header; SkeletonError for a stamp no
    clock gives (:func:`stamp_problem`), wrong sizes, layouts or NaN values."""
    problem = stamp_problem(person.header.stamp)
    if problem:
        raise SkeletonError(problem)
    return frame_from_person(person, stamp_seconds(person.header.stamp))


MOST_PER_MESSAGE = 256  # skeletons read of one message (a window set serves at most 64 persons)


class FrameRules:
    """The per-message rules, with the one thing they remember: when a stamped skeleton last came.

    ``now`` is the caller's arrival clock in seconds (the node's monotonic clock, a bag's log time);
    ``unstamped()`` gives the time for a stamp-0 frame (the node's ROS clock, a bag's log time).
    """

    def __init__(self, refuse: Refuse, memory: float = STAMPED_MEMORY) -> None:
        self.refuse = refuse
        self.memory = memory
        self.last_stamped = -math.inf  # ``now`` of the last frame with a real stamp

    def frames(
        self, persons: Iterable[Any], now: float, unstamped: Callable[[], float]
    ) -> list[SkeletonFrame]:
        """Contract frames of one message's persons; each refused one is reported and left out.
        Only the first :data:`MOST_PER_MESSAGE` are read: parsing thousands of skeletons of one
        message took longer than a camera frame, and a window set serves 64 persons at most."""
        persons = list(persons)
        if len(persons) > MOST_PER_MESSAGE:
            extra = len(persons) - MOST_PER_MESSAGE
            self.refuse(f"ignored {extra} skeletons past the first {MOST_PER_MESSAGE} of one message")
            persons = persons[:MOST_PER_MESSAGE]
        frames = []
        for person in persons:
            try:
                frame = person_frame(person)
            except SkeletonError as err:
                self.refuse(f"ignored a skeleton: {err}")
                continue
            frames.append(frame)
        return self.timed(one_per_person(frames, self.refuse), now, unstamped)  # a duplicate is not timed

    def timed(
        self, frames: Iterable[SkeletonFrame], now: float, unstamped: Callable[[], float]
    ) -> list[SkeletonFrame]:
        """``frames`` with the stamp-0 rule applied: timed by ``unstamped()``, or refused when a
        stamped frame came within :attr:`memory` seconds of ``now``."""
        kept = []
        for frame in frames:
            if frame.timestamp != 0.0:
                self.last_stamped = now
            elif now - self.last_stamped < self.memory:
                self.refuse("ignored a skeleton with stamp 0 among stamped ones (a second publisher?)")
                continue
            else:
                frame.timestamp = unstamped()
            kept.append(frame)
        return kept

    def forget(self) -> None:
        """Start afresh: an old stamp says nothing about whether a new stream is stamped."""
        self.last_stamped = -math.inf


def one_per_person(frames: Iterable[SkeletonFrame], refuse: Refuse) -> list[SkeletonFrame]:
    """The first skeleton of each person id in one message (one camera frame); each further one is
    refused: a message of 1000 skeletons of one id with stamps apart bought 1000 inferences, and
    an older second one reset that person's window every message."""
    seen: set[int] = set()
    kept = []
    for frame in frames:
        if frame.person_id in seen:
            refuse(f"ignored a second skeleton of person {frame.person_id} in one message")
            continue
        seen.add(frame.person_id)
        kept.append(frame)
    return kept
