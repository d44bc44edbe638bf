"""Stable person ids across frames: body boxes and keypoints matched by an optimal assignment.

The multi-person pose stage finds bodies frame by frame, in no particular order. The recognizer
keeps one window per person id, so an id must follow its person, as yolo_ros's tracking option
does for detections:

* each track's last box and keypoints are moved ahead by its velocity (people crossing in front
  of each other keep going the way they went), then tracks and detections are matched by
  ``scipy.optimize.linear_sum_assignment`` on a cost mixing box overlap (1 - IoU) and the mean
  keypoint distance relative to the body's size; a pair costing more than ``max_cost`` is never
  matched;
* a track survives misses for ``max_age`` seconds (a person hidden for a moment keeps their id),
  then it is retired;
* a detection no track claims starts a new track with a new id; ids are never reused, so a
  retired person's window cannot be continued by someone else.

ROS-free and MediaPipe-free: plain arrays in pixels, timestamps in seconds.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

MAX_AGE = 0.5  # seconds a track survives without a detection
MAX_COST = 0.75  # matches costing more are refused (cost is in [0, 1])
BOX_WEIGHT = 0.5  # share of 1 - IoU in the cost; the rest is the keypoint distance
VELOCITY_SMOOTHING = 0.5  # weight of the newest displacement in the velocity estimate
UNMATCHABLE = 1e6


@dataclass
class Track:
    """One tracked person: where they were last seen and how fast they moved (pixels per second)."""

    track_id: int
    box: np.ndarray  # (4,) x0, y0, x1, y1
    keypoints: np.ndarray  # (K, 2)
    visible: np.ndarray  # (K,) bool
    last_seen: float
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))
    hits: int = 1

    def predicted(self, timestamp: float) -> tuple[np.ndarray, np.ndarray]:
        """Box and keypoints moved ahead to ``timestamp`` at the track's velocity."""
        shift = self.velocity * max(0.0, timestamp - self.last_seen)
        return self.box + np.tile(shift, 2), self.keypoints + shift


def body_box(keypoints: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """(x0, y0, x1, y1) around the visible keypoints (all of them when none is visible)."""
    points = keypoints[visible] if visible.any() else keypoints
    return np.concatenate([points.min(axis=0), points.max(axis=0)]).astype(np.float64)


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes; 0 for empty boxes."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(0.0, width) * max(0.0, height)
    union = _area(a) + _area(b) - inter
    return float(inter / union) if union > 0 else 0.0


def keypoint_distance(a: np.ndarray, b: np.ndarray, shared: np.ndarray, scale: float) -> float:
    """Mean distance of the keypoints visible in both, in units of ``scale``, capped at 1."""
    if not shared.any() or scale <= 0:
        return 1.0
    mean = float(np.linalg.norm(a[shared] - b[shared], axis=1).mean())
    return min(1.0, mean / scale)


def match_cost(
    track: Track, box: np.ndarray, keypoints: np.ndarray, visible: np.ndarray, when: float
) -> float:
    """Cost in [0, 1] of giving the detection to the track (0: the same place and pose)."""
    predicted_box, predicted_keypoints = track.predicted(when)
    scale = float(np.sqrt(max(_area(box), _area(track.box))))
    overlap = 1.0 - box_iou(predicted_box, box)
    distance = keypoint_distance(predicted_keypoints, keypoints, track.visible & visible, scale)
    return BOX_WEIGHT * overlap + (1.0 - BOX_WEIGHT) * distance


class PersonTracker:
    """Gives each detected body the id of the person it continues, or a new one.

    Call :meth:`update` once per frame with every body found in it (possibly none). A frame
    whose timestamp goes backwards (a bag loop, a restarted camera) retires every track: the
    people are the same, but nothing says where they are now.
    """

    def __init__(self, max_age: float = MAX_AGE, max_cost: float = MAX_COST, first_id: int = 0) -> None:
        if max_age < 0 or not 0 < max_cost <= 1:
            raise ValueError(f"need max_age >= 0 and max_cost in (0, 1], got {max_age}, {max_cost}")
        self.max_age = max_age
        self.max_cost = max_cost
        self.tracks: list[Track] = []
        self.retired: list[int] = []  # ids retired by the latest update
        self._ids = itertools.count(first_id)
        self._last_time: float | None = None

    @property
    def active_ids(self) -> list[int]:
        return [track.track_id for track in self.tracks]

    def update(self, keypoints: np.ndarray, visible: np.ndarray, timestamp: float) -> list[int]:
        """Ids for the N bodies of one frame, in their order.

        ``keypoints`` (N, K, 2) are pixels (any isotropic unit works), ``visible`` (N, K) says
        which keypoints to trust.
        """
        keypoints, visible = np.asarray(keypoints, np.float64), np.asarray(visible, bool)
        if keypoints.ndim != 3 or keypoints.shape[2:] != (2,) or visible.shape != keypoints.shape[:2]:
            shapes = f"{keypoints.shape} and {visible.shape}"
            raise ValueError(f"need keypoints (N, K, 2) and visible (N, K), got {shapes}")
        self.retired = self._retire(timestamp)
        boxes = [body_box(k, v) for k, v in zip(keypoints, visible, strict=True)]
        matches = self._match(boxes, keypoints, visible, timestamp)
        ids = []
        for index, (box, points, seen) in enumerate(zip(boxes, keypoints, visible, strict=True)):
            track = matches.get(index)
            if track is None:
                track = Track(next(self._ids), box, points, seen, timestamp)
                self.tracks.append(track)
            else:
                _follow(track, box, points, seen, timestamp)
            ids.append(track.track_id)
        return ids

    def reset(self) -> list[int]:
        """Retire every track (ids keep counting up); returns the retired ids."""
        retired = self.active_ids
        self.tracks = []
        self._last_time = None
        return retired

    def _retire(self, timestamp: float) -> list[int]:
        """Drop tracks unseen for longer than ``max_age``, or all of them when time went backwards."""
        if self._last_time is not None and timestamp < self._last_time:
            self._last_time = timestamp
            return self.reset()
        self._last_time = timestamp
        old = [t for t in self.tracks if timestamp - t.last_seen > self.max_age]
        self.tracks = [t for t in self.tracks if t not in old]
        return [t.track_id for t in old]

    def _match(
        self, boxes: list[np.ndarray], keypoints: np.ndarray, visible: np.ndarray, timestamp: float
    ) -> dict[int, Track]:
        """Detection index -> track, globally cheapest, pairs above ``max_cost`` left unmatched."""
        if not self.tracks or not boxes:
            return {}
        costs = np.array(
            [
                [match_cost(track, box, points, seen, timestamp) for track in self.tracks]
                for box, points, seen in zip(boxes, keypoints, visible, strict=True)
            ]
        )
        costs[costs > self.max_cost] = UNMATCHABLE
        rows, columns = linear_sum_assignment(costs)
        return {
            int(row): self.tracks[column]
            for row, column in zip(rows, columns, strict=True)
            if costs[row, column] < UNMATCHABLE
        }


def _follow(track: Track, box: np.ndarray, keypoints: np.ndarray, visible: np.ndarray, when: float) -> None:
    """Move a track to its new detection and update its velocity (box centre, pixels per second)."""
    elapsed = when - track.last_seen
    if elapsed > 0:
        step = (_centre(box) - _centre(track.box)) / elapsed
        track.velocity = VELOCITY_SMOOTHING * step + (1.0 - VELOCITY_SMOOTHING) * track.velocity
    track.box, track.keypoints, track.visible = box, keypoints, visible
    track.last_seen = when
    track.hits += 1


def _centre(box: np.ndarray) -> np.ndarray:
    return (box[:2] + box[2:]) / 2.0


def _area(box: np.ndarray) -> float:
    return float(max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1]))
