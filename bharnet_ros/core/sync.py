"""Pairing two time-stamped streams by approximate time, and merging an external body with our hands.

A robot may already run a body tracker (e.g. on a depth camera) and want only the hands from the
pose stage. :class:`ApproximateSync` pairs the two streams like message_filters'
ApproximateTimeSynchronizer does for two inputs; the recognizer node uses message_filters where it
is installed and this class otherwise. :func:`attach_hands` then gives each tracked body the hands
of the pose-stage person whose wrists are nearest.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from bharnet_ros.core.layouts import get_layout
from bharnet_ros.core.skeleton import SkeletonFrame, timestamp_seconds
from bharnet_ros.core.window import MOST_PERSONS

WRIST_NAMES = ("left_wrist", "right_wrist")
SHOULDER_NAMES = ("left_shoulder", "right_shoulder")
WRIST_GATE = 1.0  # mean wrist distance, in the body's shoulder widths, beyond which hands are not its
SMALLEST_WIDTH = {"image": 0.05, "world": 0.2}  # a shoulder width for a body whose shoulders coincide
RESTART_GAP = 1.0  # seconds a stamp may lie behind the last pair before it counts as a restart


class ApproximateSync:
    """Emits (a, b) pairs whose stamps differ by at most ``slop`` seconds; each item is used once.

    Pairs come out in time order on both streams, since the recognizer resets a person's window
    when time goes backwards: items at or before a matched pair are dropped, whatever order they
    came in, and an item arriving at or before its stream's last paired stamp is dropped as late
    (counted in ``late``). One stamp more than :data:`RESTART_GAP` before that is a restart (a bag
    loop, a camera restarted) and starts over, so no single message can stall the pairing. Until
    the other stream follows it back, that stream's items more than :data:`RESTART_GAP` ahead of
    the restarted one are from the old timeline and dropped as late (queued, they paired with the
    new timeline once it reached their stamps). Each queue keeps at most ``queue_size`` items, so
    memory is bounded whatever the input rates.
    """

    def __init__(self, slop: float = 0.05, queue_size: int = 10) -> None:
        if not 0 <= slop < math.inf or queue_size < 1:
            raise ValueError(f"need a finite slop >= 0 and queue_size >= 1, got {slop}, {queue_size}")
        self.slop = slop
        self._queues: tuple[deque, deque] = (deque(maxlen=queue_size), deque(maxlen=queue_size))
        self._last = [-math.inf, -math.inf]  # each stream's newest paired stamp
        self._newest = [-math.inf, -math.inf]  # each stream's newest stamp since the last restart
        self._restarted: int | None = None  # the stream that went back, until the other follows
        self.late = 0

    def add(self, stream: int, stamp: float, item: Any) -> tuple[Any, Any] | None:
        """Add an item to stream 0 or 1; returns a matched (stream 0 item, stream 1 item) or None.

        ValueError for another stream, SkeletonError for a stamp that is no finite number.
        """
        if stream not in (0, 1):
            raise ValueError(f"stream must be 0 or 1, got {stream!r}")
        stream, stamp = int(stream), timestamp_seconds(stamp)
        if stamp < self._last[stream] - RESTART_GAP:
            self._restart(stream)
        elif stamp <= self._last[stream] or self._old_timeline(stream, stamp):
            self.late += 1
            return None
        self._newest[stream] = max(self._newest[stream], stamp)
        other = self._queues[1 - stream]
        partner = min(other, key=lambda entry: abs(entry[0] - stamp), default=None)
        if partner is None or abs(partner[0] - stamp) > self.slop:
            self._queues[stream].append((stamp, item))
            return None
        self._paired(stream, stamp)
        self._paired(1 - stream, partner[0])
        return (item, partner[1]) if stream == 0 else (partner[1], item)

    def _paired(self, stream: int, stamp: float) -> None:
        """Forget the stream's items at or before a paired ``stamp``: they could only pair backwards."""
        self._last[stream] = stamp
        queue = self._queues[stream]
        kept = [entry for entry in queue if entry[0] > stamp]
        queue.clear()
        queue.extend(kept)

    def _old_timeline(self, stream: int, stamp: float) -> bool:
        """Whether the item is from before the other stream's restart (that stream now far behind)."""
        if self._restarted != 1 - stream:
            return False
        if stamp > self._newest[1 - stream] + RESTART_GAP:
            return True
        self._restarted = None  # this stream went back too
        return False

    def _restart(self, stream: int) -> None:
        for queue in self._queues:
            queue.clear()
        self._last = [-math.inf, -math.inf]
        self._newest = [-math.inf, -math.inf]
        self._restarted = stream


def attach_hands(bodies: list[SkeletonFrame], hand_sources: list[SkeletonFrame]) -> list[SkeletonFrame]:
    """Each external body with the hands of the pose-stage person whose wrists are nearest.

    Both must be in the same coordinate space. Each pose-stage person's hands go to one body at
    most (the assignment with the least total wrist distance), so a crowd of external bodies never
    shares one person's hands; a body left without a pose-stage person, or with no body found,
    keeps no hands.
    """
    sources = _hand_source_per_body(bodies, hand_sources)
    merged = []
    for body, source in zip(bodies, sources, strict=True):
        hands = source.hands if source is not None else np.zeros_like(body.hands)
        present = source.hand_present if source is not None else np.zeros(2, bool)
        merged.append(
            SkeletonFrame(
                body.timestamp, body.body, hands, present, body.person_id, body.layout, body.space,
                body.image_size,
            )
        )  # fmt: skip
    return merged


MOST_MATCHED = MOST_PERSONS  # persons of one message matched to hands: no more are ever followed


def _wrists(frame: SkeletonFrame) -> np.ndarray:
    layout = get_layout(frame.layout)
    return frame.body[[layout.index(name) for name in WRIST_NAMES], :2]


def _hand_source_per_body(
    bodies: list[SkeletonFrame], candidates: list[SkeletonFrame]
) -> list[SkeletonFrame | None]:
    """The pose-stage person per body, one-to-one by least total wrist distance (None: nobody);
    never one whose wrists lie more than :data:`WRIST_GATE` shoulder widths from the body's (the
    tracker saw A, the pose stage only B across the room, and A got B's hands).

    At most :data:`MOST_MATCHED` of each are matched (the rest get no hands): the assignment grows
    with the cube of their number, and a message of a thousand persons froze the node for seconds.
    """
    chosen: list[SkeletonFrame | None] = [None] * len(bodies)
    for space in {body.space for body in bodies}:
        rows = [i for i, body in enumerate(bodies) if body.space == space and body.body_present]
        usable = [c for c in candidates if c.space == space and c.body_present][:MOST_MATCHED]
        rows = rows[:MOST_MATCHED]
        if not rows or not usable:
            continue
        body_wrists = np.stack([_wrists(bodies[i]) for i in rows])  # (B, 2, 2)
        hand_wrists = np.stack([_wrists(c) for c in usable])  # (H, 2, 2)
        costs = np.linalg.norm(body_wrists[:, None] - hand_wrists[None], axis=-1).sum(-1)
        widths = np.array([_shoulder_width(bodies[i]) for i in rows])
        for row, column in zip(*linear_sum_assignment(costs), strict=True):
            if costs[row, column] / 2 <= WRIST_GATE * widths[row]:
                chosen[rows[row]] = usable[column]
    return chosen


def _shoulder_width(frame: SkeletonFrame) -> float:
    layout = get_layout(frame.layout)
    left, right = (frame.body[layout.index(name), :2] for name in SHOULDER_NAMES)
    return max(float(np.linalg.norm(left - right)), SMALLEST_WIDTH[frame.space])
