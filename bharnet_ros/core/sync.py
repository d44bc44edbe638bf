"""Pairing two time-stamped streams by approximate time, and merging an external body with our hands.

A robot may already run a body tracker (e.g. on a depth camera) and want only the hands from the
pose stage. :class:`ApproximateSync` pairs the two streams like message_filters'
ApproximateTimeSynchronizer does for two inputs; the recognizer node uses message_filters where it
is installed and this class otherwise. :func:`attach_hands` then gives each tracked body the hands
of the pose-stage person whose wrists are nearest.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from bharnet_ros.core.layouts import get_layout
from bharnet_ros.core.skeleton import SkeletonFrame

WRIST_NAMES = ("left_wrist", "right_wrist")


class ApproximateSync:
    """Emits (a, b) pairs whose stamps differ by at most ``slop`` seconds; each item is used once.

    Items older than a matched pair are dropped, and each queue keeps at most ``queue_size`` items,
    so memory is bounded whatever the input rates.
    """

    def __init__(self, slop: float = 0.05, queue_size: int = 10) -> None:
        if slop < 0 or queue_size < 1:
            raise ValueError(f"need slop >= 0 and queue_size >= 1, got {slop}, {queue_size}")
        self.slop = slop
        self._queues: tuple[deque, deque] = (deque(maxlen=queue_size), deque(maxlen=queue_size))

    def add(self, stream: int, stamp: float, item: Any) -> tuple[Any, Any] | None:
        """Add an item to stream 0 or 1; returns a matched (stream 0 item, stream 1 item) or None."""
        other = self._queues[1 - stream]
        best = min(range(len(other)), key=lambda i: abs(other[i][0] - stamp), default=None)
        if best is None or abs(other[best][0] - stamp) > self.slop:
            self._queues[stream].append((stamp, item))
            return None
        partner = other[best][1]
        for _ in range(best + 1):  # the partner and everything older in its queue
            other.popleft()
        return (item, partner) if stream == 0 else (partner, item)


def attach_hands(bodies: list[SkeletonFrame], hand_sources: list[SkeletonFrame]) -> list[SkeletonFrame]:
    """Each external body with the hands of the pose-stage person whose wrists are nearest.

    Both must be in the same coordinate space. A body with no pose-stage person keeps no hands.
    """
    merged = []
    for body in bodies:
        source = _nearest_by_wrists(body, hand_sources)
        hands = source.hands if source is not None else np.zeros_like(body.hands)
        present = source.hand_present if source is not None else np.zeros(2, bool)
        merged.append(
            SkeletonFrame(
                body.timestamp, body.body, hands, present, body.person_id, body.layout, body.space,
                body.image_size,
            )
        )  # fmt: skip
    return merged


def _wrists(frame: SkeletonFrame) -> np.ndarray:
    layout = get_layout(frame.layout)
    return frame.body[[layout.index(name) for name in WRIST_NAMES], :2]


def _nearest_by_wrists(body: SkeletonFrame, candidates: list[SkeletonFrame]) -> SkeletonFrame | None:
    usable = [c for c in candidates if c.space == body.space and c.body_present]
    if not usable:
        return None
    distances = [float(np.linalg.norm(_wrists(body) - _wrists(c), axis=1).sum()) for c in usable]
    return usable[int(np.argmin(distances))]
