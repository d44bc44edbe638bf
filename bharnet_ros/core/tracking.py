"""Stable person ids across frames: body boxes and keypoints matched by an optimal assignment.

The multi-person pose stage finds bodies frame by frame, in no particular order. The recognizer
keeps one window per person id, so an id must follow its person, as yolo_ros's tracking option
does for detections:

* each track's last box and keypoints are moved ahead by its velocity (people crossing in front
  of each other keep going the way they went), then tracks and detections are matched by
  ``scipy.optimize.linear_sum_assignment`` on a cost mixing box overlap (1 - IoU) and the mean
  keypoint distance relative to the body's size; a pair costing more than ``max_cost``, or whose
  keypoints lie more than :data:`KEYPOINT_GATE` body sizes apart, is never matched;
* a track survives misses for ``max_age`` seconds (a person hidden for a moment keeps their id),
  then it is retired: a frame more than ``max_age`` after the track was last seen retires it when
  it does not find it. A person seen in every frame of a slow camera (or after a stall) keeps
  their id however far apart the frames are;
* a detection no track claims starts a new track with a new id; ids are not reused, so a retired
  person's window cannot be continued by someone else. Ids count up to :data:`MAX_TRACK_ID` (the
  message's int32 field) and only then start again at ``first_id``, skipping live ones. A tracker
  rebuilt for the same stream (the pose node's reconfigure) takes the old one's ``next_id``, so its
  ids do not start again at 0 while the recognizer may still hold a window for an old one;
* at most ``max_tracks`` tracks are kept: a flaky detector whose bodies jump about starts a track
  per body per frame, and without the bound memory and matching time would grow with the frame
  rate times ``max_age``. The longest-unseen tracks make room first.

ROS-free and MediaPipe-free: plain arrays in pixels, timestamps in seconds.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from bharnet_ros.core.skeleton import PERSON_ID_RANGE, timestamp_seconds

MAX_AGE = 0.5  # seconds a track survives without a detection
MAX_COST = 0.75  # matches costing more are refused (cost is in [0, 1])
BOX_WEIGHT = 0.5  # share of 1 - IoU in the cost; the rest is the keypoint distance
# a detection whose keypoints lie further from a followed track's (predicted) ones, in body sizes,
# is someone else: with the cost alone, a person standing beside one the detector missed for a
# frame took their id (0.6 body sizes away, the boxes overlapping by an outstretched arm)
KEYPOINT_GATE = 0.5
MOVING = 0.5  # body sizes a second: slower tracks are extrapolated for at most max_age
TOP_SPEED = 2.0  # body sizes a second a person seen once may have moved (the gate widens by it)
VELOCITY_SMOOTHING = 0.5  # weight of the newest displacement in the velocity estimate
# frames closer than this keep the track's velocity: a pixel of detector jitter over a microsecond is
# a speed of a million pixels a second (a driver stamping a burst on receipt), and the prediction
# would fly off and give a person standing still a new id (no camera runs pose at 200 fps)
SHORTEST_VELOCITY_STEP = 0.005
MAX_TRACKS = 128  # tracks kept at once, and so bodies accepted per frame
MAX_TRACK_ID = PERSON_ID_RANGE[1]  # PersonSkeleton.person_id is an int32
UNMATCHABLE = 1e6


@dataclass(eq=False)
class Track:
    """One tracked person: where they were last seen and how fast they moved (pixels per second)."""

    track_id: int
    box: np.ndarray  # (4,) x0, y0, x1, y1
    keypoints: np.ndarray  # (K, 2)
    visible: np.ndarray  # (K,) bool
    last_seen: float
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))
    hits: int = 1

    def predicted(self, timestamp: float, max_age: float = MAX_AGE) -> tuple[np.ndarray, np.ndarray]:
        """Box and keypoints moved ahead to ``timestamp`` at the track's velocity. A track slower
        than :data:`MOVING` body sizes a second is moved for at most ``max_age`` seconds: its speed
        is a still person's jitter, which carried the guess off them after a stall."""
        elapsed = max(0.0, timestamp - self.last_seen)
        size = float(np.sqrt(max(_areas(self.box[None])[0], 1.0)))
        if float(np.linalg.norm(self.velocity)) < MOVING * size:
            elapsed = min(elapsed, max_age)
        shift = self.velocity * elapsed
        return self.box + np.tile(shift, 2), self.keypoints + shift


def body_box(keypoints: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """(x0, y0, x1, y1) around the visible keypoints (all of them when none is visible)."""
    points = keypoints[visible] if visible.any() else keypoints
    return np.concatenate([points.min(axis=0), points.max(axis=0)]).astype(np.float64)


def box_ious(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) intersection over union of N and M boxes.

    Boxes of zero area (a body whose joints lie on a line or on one point) overlap nothing, except
    an equal box: they score 1 there, so a still, degenerate body keeps its track.
    """
    low = np.maximum(a[:, None, :2], b[None, :, :2])
    high = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(high - low, 0.0, None), axis=-1)
    union = _areas(a)[:, None] + _areas(b)[None, :] - inter
    same = np.all(a[:, None, :] == b[None, :, :], axis=-1)
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), same.astype(np.float64))


def keypoint_distances(a: np.ndarray, b: np.ndarray, shared: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """(N, M) mean distance of the keypoints ``shared`` (N, M, K) by ``a`` (N, K, 2) and ``b`` (M, K, 2),
    in units of ``scale`` (N, M), capped at 1; 1 without shared keypoints.

    A zero scale (both bodies a single point) gives 0 for the same point and 1 otherwise.
    """
    gaps = np.linalg.norm(a[:, None] - b[None, :], axis=-1)
    count = shared.sum(axis=-1)
    mean = np.where(shared, gaps, 0.0).sum(axis=-1) / np.maximum(count, 1)
    relative = np.where(scale > 0, mean / np.where(scale > 0, scale, 1.0), (mean > 0).astype(np.float64))
    return np.where(count > 0, np.minimum(relative, 1.0), 1.0)


def match_costs(
    tracks: list[Track],
    boxes: np.ndarray,
    keypoints: np.ndarray,
    visible: np.ndarray,
    when: float,
    max_age: float = MAX_AGE,
) -> np.ndarray:
    """(detections, tracks) costs in [0, 1] of giving each detection to each track (0: the same
    place and pose); inf where the keypoints lie more than :data:`KEYPOINT_GATE` body sizes from
    the track's (a neighbour, whatever the boxes' overlap); NaN where coordinates too large for
    float64 overflowed."""
    predicted = [track.predicted(when, max_age) for track in tracks]
    predicted_boxes = np.array([box for box, _ in predicted]).reshape(-1, 4)
    predicted_points = np.array([points for _, points in predicted])
    track_boxes = np.array([track.box for track in tracks]).reshape(-1, 4)
    shared = visible[:, None, :] & np.array([track.visible for track in tracks])[None, :, :]
    scale = _body_scales(boxes, track_boxes)
    overlap = 1.0 - box_ious(boxes, predicted_boxes)
    distance = keypoint_distances(keypoints, predicted_points, shared, scale)
    # no shared keypoint: the boxes decide; a track seen once has no velocity yet, so its gate
    # widens with the time since (a runner at 5 fps moves more than the gate between its first two
    # frames; a neighbour 33 ms later is still someone else)
    gates = np.array(
        [
            KEYPOINT_GATE + (TOP_SPEED * max(0.0, when - track.last_seen) if track.hits == 1 else 0.0)
            for track in tracks
        ]
    )
    gated = (distance > gates[None, :]) & shared.any(axis=-1)
    return np.where(gated, np.inf, BOX_WEIGHT * overlap + (1.0 - BOX_WEIGHT) * distance)


class PersonTracker:
    """Gives each detected body the id of the person it continues, or a new one.

    Call :meth:`update` once per frame with every body found in it (possibly none). A frame
    whose timestamp goes backwards (a bag loop, a restarted camera), or whose bodies have another
    number of keypoints than the tracked ones, retires every track: the people may be the same,
    but nothing says where they are now.

    ``next_id`` is the id the first new track gets (default ``first_id``): give a rebuilt tracker
    the old one's :attr:`next_id` and it goes on counting where that one stopped.
    """

    def __init__(
        self,
        max_age: float = MAX_AGE,
        max_cost: float = MAX_COST,
        first_id: int = 0,
        max_tracks: int = MAX_TRACKS,
        next_id: int | None = None,
    ) -> None:
        if not max_age >= 0 or not 0 < max_cost <= 1:
            raise ValueError(f"need max_age >= 0 and max_cost in (0, 1], got {max_age}, {max_cost}")
        self.max_tracks, self.first_id = operator.index(max_tracks), operator.index(first_id)
        if self.max_tracks < 1 or not 0 <= self.first_id <= MAX_TRACK_ID + 1 - self.max_tracks:
            raise ValueError(
                f"need max_tracks >= 1 and first_id in [0, {MAX_TRACK_ID + 1} - max_tracks], "
                f"got {max_tracks}, {first_id}"
            )
        self.max_age = max_age
        self.max_cost = max_cost
        self.tracks: list[Track] = []
        self.retired: list[int] = []  # ids retired by the latest update
        self._next_id = self._checked_next_id(self.first_id if next_id is None else next_id)
        self._wrapped = False  # ids went past MAX_TRACK_ID once: new ones must skip live ones
        self._last_time: float | None = None

    @property
    def active_ids(self) -> list[int]:
        return [track.track_id for track in self.tracks]

    @property
    def next_id(self) -> int:
        """The id the next new track gets (live ids are still skipped after a wrap)."""
        return self._next_id

    def update(self, keypoints: np.ndarray, visible: np.ndarray, timestamp: float) -> list[int]:
        """Ids for the N bodies of one frame, in their order.

        ``keypoints`` (N, K, 2) are finite pixels (any isotropic unit works), ``visible`` (N, K)
        says which keypoints to trust; N is at most ``max_tracks``. Bad input raises ValueError
        (SkeletonError for the timestamp) and leaves the tracker as it was.
        """
        keypoints, visible = self._checked(keypoints, visible)
        timestamp = timestamp_seconds(timestamp)
        self.retired = self._reset_if_discontinuous(timestamp, keypoints.shape[1])
        boxes = np.array([body_box(k, v) for k, v in zip(keypoints, visible, strict=True)]).reshape(-1, 4)
        matches = self._match(boxes, keypoints, visible, timestamp)
        self.retired += self._retire_missed(timestamp, matches.values())
        self.retired += self._make_room(len(boxes) - len(matches), matches.values())
        ids = []
        for index, (box, points, seen) in enumerate(zip(boxes, keypoints, visible, strict=True)):
            track = matches.get(index)
            if track is None:
                track = Track(self._new_id(), box, points, seen, timestamp)
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

    def _checked(self, keypoints: np.ndarray, visible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints as float64 (N, K, 2) and visible as bool (N, K); ValueError for anything else."""
        keypoints, visible = np.asarray(keypoints, np.float64), np.asarray(visible, bool)
        if keypoints.ndim != 3 or keypoints.shape[2:] != (2,) or visible.shape != keypoints.shape[:2]:
            shapes = f"{keypoints.shape} and {visible.shape}"
            raise ValueError(f"need keypoints (N, K, 2) and visible (N, K), got {shapes}")
        if keypoints.shape[1] == 0 or not np.isfinite(keypoints).all():
            raise ValueError("need at least one keypoint per body, and finite ones (no NaN or inf)")
        if len(keypoints) > self.max_tracks:
            raise ValueError(
                f"{len(keypoints)} bodies in one frame; the tracker takes at most {self.max_tracks}"
            )
        return keypoints, visible

    def _checked_next_id(self, next_id: int) -> int:
        """``next_id`` as an int in [first_id, MAX_TRACK_ID]; ValueError otherwise."""
        value = operator.index(next_id)
        if not self.first_id <= value <= MAX_TRACK_ID:
            raise ValueError(f"need next_id in [{self.first_id}, {MAX_TRACK_ID}], got {next_id}")
        return value

    def _reset_if_discontinuous(self, timestamp: float, num_keypoints: int) -> list[int]:
        """Retire every track when time went backwards or the bodies have another number of keypoints."""
        went_back = self._last_time is not None and timestamp < self._last_time
        retired = (
            self.reset() if went_back or any(len(t.keypoints) != num_keypoints for t in self.tracks) else []
        )
        self._last_time = timestamp
        return retired

    def _retire_missed(self, timestamp: float, claimed: Iterable[Track]) -> list[int]:
        """Drop the tracks this frame did not find that were last seen more than ``max_age`` ago."""
        kept = {id(track) for track in claimed}
        old = {
            t.track_id for t in self.tracks if id(t) not in kept and timestamp - t.last_seen > self.max_age
        }
        self.tracks = [t for t in self.tracks if t.track_id not in old]
        return sorted(old)

    def _match(
        self, boxes: np.ndarray, keypoints: np.ndarray, visible: np.ndarray, timestamp: float
    ) -> dict[int, Track]:
        """Detection index -> track, globally cheapest, pairs above ``max_cost`` left unmatched."""
        if not self.tracks or not len(boxes):
            return {}
        with np.errstate(over="ignore", invalid="ignore"):
            costs = match_costs(self.tracks, boxes, keypoints, visible, timestamp, self.max_age)
        costs[~(costs <= self.max_cost)] = UNMATCHABLE  # NaN from overflowing coordinates too
        rows, columns = linear_sum_assignment(costs)
        return {
            int(row): self.tracks[column]
            for row, column in zip(rows, columns, strict=True)
            if costs[row, column] < UNMATCHABLE
        }

    def _make_room(self, new: int, claimed: Iterable[Track]) -> list[int]:
        """Retire the longest-unseen unclaimed tracks until ``new`` more fit in ``max_tracks``."""
        excess = len(self.tracks) + new - self.max_tracks
        if excess <= 0:
            return []
        kept = {id(track) for track in claimed}
        spare = sorted((t for t in self.tracks if id(t) not in kept), key=lambda t: t.last_seen)
        gone = {t.track_id for t in spare[:excess]}
        self.tracks = [t for t in self.tracks if t.track_id not in gone]
        return sorted(gone)

    def _new_id(self) -> int:
        """The next id; past MAX_TRACK_ID counting starts again at ``first_id``, skipping live ids."""
        live = set(self.active_ids) if self._wrapped else set()
        while True:
            candidate = self._next_id
            self._wrapped |= candidate == MAX_TRACK_ID
            self._next_id = self.first_id if candidate == MAX_TRACK_ID else candidate + 1
            if candidate not in live:
                return candidate


def _follow(track: Track, box: np.ndarray, keypoints: np.ndarray, visible: np.ndarray, when: float) -> None:
    """Move a track to its new detection and update its velocity (pixels per second), from the
    keypoints seen in both frames: the box's edge jumps when a joint turns visible or not (an ankle
    gave a man standing still 543 px/s, and his neighbour his id once he was missed)."""
    elapsed = when - track.last_seen
    shared = visible & track.visible
    if elapsed >= SHORTEST_VELOCITY_STEP and shared.any():
        with np.errstate(over="ignore", invalid="ignore"):  # stamps a hair apart: no speed to trust
            step = (keypoints[shared] - track.keypoints[shared]).mean(axis=0) / elapsed
            velocity = VELOCITY_SMOOTHING * step + (1.0 - VELOCITY_SMOOTHING) * track.velocity
        track.velocity = velocity if np.isfinite(velocity).all() else np.zeros(2)
    track.box, track.keypoints, track.visible = box, keypoints, visible
    track.last_seen = when
    track.hits += 1


def _areas(boxes: np.ndarray) -> np.ndarray:
    """(N,) areas of (N, 4) boxes; 0 for flat ones."""
    return np.prod(np.clip(boxes[:, 2:] - boxes[:, :2], 0.0, None), axis=-1)


def _body_scales(boxes: np.ndarray, track_boxes: np.ndarray) -> np.ndarray:
    """(N, T) body size for the keypoint distance: the square root of the larger box's area, or, for
    flat boxes (every joint on a line), the longest side; 0 only when both are single points."""
    area = np.maximum(_areas(boxes)[:, None], _areas(track_boxes)[None, :])
    sides = np.max(boxes[:, 2:] - boxes[:, :2], axis=-1)
    track_sides = np.max(track_boxes[:, 2:] - track_boxes[:, :2], axis=-1)
    side = np.maximum(sides[:, None], track_sides[None, :])
    return np.where(area > 0, np.sqrt(area), side)
