"""The multi-person pose stage: MediaPipe Tasks PoseLandmarker + HandLandmarker, tracked persons.

One BGR image in, one :class:`SkeletonFrame` per person found out, each with the ``person_id``
of its track (:mod:`bharnet_ros.core.tracking`). Both landmarkers run in VIDEO mode (tracking
between frames) from ``.task`` bundles built offline from the wheel's models
(:mod:`bharnet_ros.core.task_bundles`); nothing is downloaded.

Hands are found on the whole image (``num_hands`` = 2 x ``num_poses``) and then given to bodies:
each hand goes to one pose wrist (15 = the subject's left, 16 = the right) by a globally optimal
assignment (``linear_sum_assignment``) on the wrist distance in shoulder widths, one hand per
wrist, none farther than ``HAND_GATE``. The Tasks handedness label agrees with the pose side on a
normal camera (perception.md: 36 of 38 hands, where legacy Hands is the reverse), so a hand whose
label disagrees with a wrist's side pays ``LABEL_PENALTY`` for it: the label settles crossed or
close hands, and a clear distance still wins over it. A hand that reaches no body is dropped.

The two landmarkers work on the same image at the same time, the hands in a worker thread:
MediaPipe releases the GIL while it runs, so on two cores a frame costs about the slower of the
two rather than their sum (docs/benchmarks.md, "Several people").
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from bharnet_ros.core.closeable import Closeable
from bharnet_ros.core.hand_fill import MIDDLE_MCP
from bharnet_ros.core.image import camera_size, to_rgb
from bharnet_ros.core.layouts import MP33
from bharnet_ros.core.pose import (
    HAND_WRIST,
    POSE_LEFT_WRIST,
    POSE_RIGHT_WRIST,
    check_confidences,
    import_mediapipe,
    plausible_landmarks,
)
from bharnet_ros.core.skeleton import (
    CHANNELS,
    HAND_JOINTS,
    LEFT,
    RIGHT,
    SkeletonError,
    SkeletonFrame,
    checked_image_size,
    timestamp_seconds,
)
from bharnet_ros.core.task_bundles import BundleError, ensure_bundles
from bharnet_ros.core.tracking import MAX_AGE, PersonTracker

NUM_POSES = 4  # persons per image by default
MAX_POSES = 16
POSE_LEFT_SHOULDER, POSE_RIGHT_SHOULDER = 11, 12
VISIBLE = 0.5  # body joints at least this visible feed the tracker
# A hand's wrist farther than this many shoulder widths from a pose wrist is not that wrist's hand.
# Measured on real clips: a hand's own pose wrist lies within 0.2 shoulder widths; hands of a person
# the pose detector missed lay 1 to 3 widths from the nearest other wrist.
HAND_GATE = 0.6
LABEL_PENALTY = 0.5  # shoulder widths added when the Tasks handedness label names the other side
DROP_COST = HAND_GATE + LABEL_PENALTY  # a hand given to nobody: the worst a match can cost
MIN_SHOULDER_FRACTION = 0.02  # shoulder-width floor, as a fraction of the image diagonal (side views)
# Two hands whose joints lie this close (mean distance, in hand sizes) are one hand found twice: hand
# detectors return a copy now and then (7 px apart on sign_dobrii_den.mp4, 2 px on kinetics_tai_chi.mp4)
DUPLICATE_HAND = 0.25
UNMATCHABLE = 1e6
# Seconds (about 30,000 years): MediaPipe counts microseconds in an int64, and a stamp beyond its
# range would stay the VIDEO-mode clock's floor, failing every later frame.
MAX_TIMESTAMP = 1e12
# The most MediaPipe's video clock moves per frame: a gap longer than this reads as this long to
# its landmark smoothing (the tracker has the real stamps), and the clock stays in int64.
MAX_CLOCK_STEP_MS = 1000


class MultiPoseEstimator(Closeable):
    """Every person's body and hands per image, with track ids stable across frames.

    Frames must come in time order from one stream (VIDEO mode); use one estimator per video or
    camera. ``close()`` (or ``with``) frees the MediaPipe graphs. ``next_id`` is the first new
    person's id (default 0): an estimator that replaces another on the same stream takes the old
    one's ``tracker.next_id``, so nobody gets an id the old one gave.
    """

    backend = "multi"

    def __init__(
        self,
        num_poses: int = NUM_POSES,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
        track_max_age: float = MAX_AGE,
        bundle_dir: str | None = None,
        next_id: int | None = None,
    ) -> None:
        check_confidences(min_detection_confidence, min_tracking_confidence)
        if problem := tracking_confidence_problem(min_tracking_confidence):
            raise ValueError(problem)
        if not 1 <= num_poses <= MAX_POSES:
            raise ValueError(f"num_poses must be in [1, {MAX_POSES}], got {num_poses}")
        self.num_poses = num_poses
        self.tracker = PersonTracker(max_age=track_max_age, next_id=next_id)
        self._last_ms = -1  # MediaPipe's video clock
        self._last_stamp: float | None = None  # the camera stamp it was last moved for
        self._hand_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hand_landmarker")
        self._pose, self._hands = _open_landmarkers(
            num_poses, min_detection_confidence, min_tracking_confidence, bundle_dir
        )

    def close(self) -> None:
        """Free the MediaPipe graphs and the hand worker; safe to call twice."""
        self._hand_worker.shutdown(wait=True)
        for landmarker in (self._pose, self._hands):
            if landmarker is not None:
                landmarker.close()
        self._pose = self._hands = None

    def estimate(
        self, image_bgr: np.ndarray, timestamp: float, source_size: tuple[int, int] | None = None
    ) -> list[SkeletonFrame]:
        """The persons in one image, ordered by id; an empty list when nobody is found.

        ``source_size`` (width, height) is the camera's, for an image shrunk before it came here:
        the tracker measures in its pixels, so a change of the shrinking moves nobody. ImageError
        for an image and SkeletonError for a stamp the stage cannot use, raised before anything
        changes, so one bad frame never stalls the ones after it.
        """
        if self._pose is None:
            raise RuntimeError("MultiPoseEstimator is closed; create a new one")
        timestamp = _checked_stamp(timestamp)
        size = checked_image_size(camera_size(image_bgr))  # before the clock, MediaPipe or the tracker
        tracked = size if source_size is None else checked_image_size(source_size)
        rgb = to_rgb(image_bgr)
        height, width = rgb.shape[:2]
        mp = import_mediapipe()
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb)
        when = self._video_ms(timestamp)
        hands_job = self._hand_worker.submit(self._hands.detect_for_video, image, when)
        try:
            found = self._pose.detect_for_video(image, when).pose_landmarks
        finally:
            found_hands = hands_job.result()  # even when the pose failed: one call at a time each
        bodies = [body for body in map(_body, found) if body is not None]
        hands, present = self._hands_per_body(found_hands, bodies, (width, height))
        ids = self.tracker.update(*_tracker_input(bodies, tracked), timestamp)
        frames = [
            _person(timestamp, pid, body, hands[i], present[i], size)
            for i, (pid, body) in enumerate(zip(ids, bodies, strict=True))
        ]
        return sorted(frames, key=lambda frame: frame.person_id)

    def _hands_per_body(
        self, result: Any, bodies: list[np.ndarray], size: tuple[int, int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(B, 2, 21, 4) hands and (B, 2) presence: the found hands assigned to the bodies' wrists."""
        hands, sides, scores = _hands(result)
        scale = np.array(size, np.float64)
        pixels = hands[..., :2] * scale
        kept = distinct_hands(pixels, scores)  # a copy would take the other wrist
        hands, sides, scores = hands[kept], [sides[i] for i in kept], [scores[i] for i in kept]
        slots = assign_hands_to_bodies(
            pixels[kept, HAND_WRIST],
            sides,
            np.array([_wrists_and_shoulders(body, scale) for body in bodies]).reshape(-1, 4, 2),
            float(np.hypot(*size)),
        )
        per_body = np.zeros((len(bodies), 2, HAND_JOINTS, CHANNELS), np.float32)
        present = np.zeros((len(bodies), 2), bool)
        for hand, score, slot in zip(hands, scores, slots, strict=True):
            if slot is not None:
                per_body[slot][:, :3] = hand[:, :3]
                per_body[slot][:, 3] = score
                present[slot] = True
        return per_body, present

    def _video_ms(self, timestamp: float) -> int:
        """VIDEO mode needs strictly increasing integer milliseconds, whatever the camera stamps.
        The clock moves by the stamps' step, at least 1 ms and at most :data:`MAX_CLOCK_STEP_MS`, so
        the frames after a jump keep their spacing (one far-future stamp once pinned it to 1 ms a
        frame, which MediaPipe's landmark smoothing reads as frames 1 ms apart) and stamps jumping
        back and forth cannot push it past the int64 microseconds MediaPipe counts in."""
        if self._last_stamp is None:
            ms = int(round(timestamp * 1000.0))
        else:
            step = int(round((timestamp - self._last_stamp) * 1000.0))
            ms = self._last_ms + min(max(step, 1), MAX_CLOCK_STEP_MS)
        self._last_ms, self._last_stamp = ms, timestamp
        return ms


def tracking_confidence_problem(tracking: float) -> str:
    """Why the multi backend cannot take this ``min_tracking_confidence``, or "": MediaPipe's hand
    tracker aborts the whole process on a threshold that is 0 as a float32."""
    if np.float32(tracking) > 0:
        return ""
    return (
        "min_tracking_confidence must be above 0 for the multi backend (its hand tracker needs a "
        f"positive threshold), got {tracking}"
    )


def distinct_hands(hands_px: np.ndarray, scores: Sequence[float]) -> list[int]:
    """Indices (in order) of the hands of (H, 21, 2) pixel landmarks to keep: a hand whose joints
    lie within :data:`DUPLICATE_HAND` hand sizes of a surer one's is its copy (placed in the other
    slot, it would invent a hand)."""
    kept: list[int] = []
    sizes = np.maximum(np.linalg.norm(hands_px[:, MIDDLE_MCP] - hands_px[:, HAND_WRIST], axis=-1), 1.0)
    for index in np.argsort(-np.asarray(scores, np.float64), kind="stable").tolist():
        apart = [float(np.linalg.norm(hands_px[index] - hands_px[k], axis=-1).mean()) for k in kept]
        if all(distance > DUPLICATE_HAND * sizes[index] for distance in apart):
            kept.append(index)
    return sorted(kept)


def assign_hands_to_bodies(
    hand_wrists: np.ndarray, hand_sides: list[int], body_points: np.ndarray, image_diagonal: float
) -> list[tuple[int, int] | None]:
    """(body index, LEFT or RIGHT) per hand, or None for a hand given to no body.

    ``hand_wrists`` (H, 2) and ``body_points`` (B, 4, 2) (left wrist, right wrist, left shoulder,
    right shoulder) are pixels; ``hand_sides`` holds each hand's Tasks label as a slot. Costs
    are wrist distances in the body's shoulder widths plus :data:`LABEL_PENALTY` where the label
    names the other side; one hand per wrist, the assignment with the least total cost. Leaving a
    hand out costs as much as the worst match it could have (:data:`DROP_COST`): with forced
    matches only, a stray hand near a body pushed that body's own hand onto the neighbour's wrist.
    """
    slots: list[tuple[int, int] | None] = [None] * len(hand_wrists)
    if not len(hand_wrists) or not len(body_points):
        return slots
    wrists = body_points[:, :2].reshape(-1, 2)  # column 2b + side
    shoulder = np.linalg.norm(body_points[:, 2] - body_points[:, 3], axis=1)
    widths = np.repeat(np.maximum(shoulder, MIN_SHOULDER_FRACTION * image_diagonal), 2)
    costs = np.linalg.norm(hand_wrists[:, None, :] - wrists[None, :, :], axis=-1) / widths[None, :]
    costs[costs > HAND_GATE] = UNMATCHABLE
    column_sides = np.tile([LEFT, RIGHT], len(body_points))
    costs += LABEL_PENALTY * (np.asarray(hand_sides)[:, None] != column_sides[None, :])
    drops = np.full((len(hand_wrists), len(hand_wrists)), UNMATCHABLE)
    np.fill_diagonal(drops, DROP_COST)  # column 2B + h: hand h goes to nobody
    for row, column in zip(*linear_sum_assignment(np.hstack([costs, drops])), strict=True):
        if column < len(wrists) and costs[row, column] < UNMATCHABLE:
            slots[int(row)] = (int(column) // 2, int(column_sides[column]))
    return slots


def _checked_stamp(timestamp: float) -> float:
    """The stamp as float; SkeletonError for one that is no finite number or beyond MAX_TIMESTAMP."""
    seconds = timestamp_seconds(timestamp)
    if abs(seconds) > MAX_TIMESTAMP:
        raise SkeletonError(f"timestamp {seconds} s is beyond the {MAX_TIMESTAMP:g} s MediaPipe can take")
    return seconds


def _open_landmarkers(
    num_poses: int, detection: float, tracking: float, bundle_dir: str | None
) -> tuple[Any, Any]:
    """The PoseLandmarker and HandLandmarker in VIDEO mode, from the offline-built bundles."""
    bundles = ensure_bundles(bundle_dir)
    vision = import_mediapipe("mediapipe.tasks.python.vision")
    base = import_mediapipe("mediapipe.tasks.python.core.base_options").BaseOptions
    pose_options = vision.PoseLandmarkerOptions(
        base_options=base(model_asset_path=str(bundles.pose)),
        running_mode=vision.RunningMode.VIDEO,
        num_poses=num_poses,
        min_pose_detection_confidence=detection,
        min_pose_presence_confidence=detection,
        min_tracking_confidence=tracking,
    )
    hand_options = vision.HandLandmarkerOptions(
        base_options=base(model_asset_path=str(bundles.hand)),
        running_mode=vision.RunningMode.VIDEO,
        num_hands=2 * num_poses,
        min_hand_detection_confidence=detection,
        min_hand_presence_confidence=detection,
        min_tracking_confidence=tracking,
    )
    pose = _landmarker(vision.PoseLandmarker, pose_options, bundles.pose)
    try:
        return pose, _landmarker(vision.HandLandmarker, hand_options, bundles.hand)
    except BaseException:
        pose.close()
        raise


def _landmarker(kind: Any, options: Any, bundle: Path) -> Any:
    """A landmarker of ``kind``; BundleError naming the bundle where MediaPipe cannot load it."""
    try:
        return kind.create_from_options(options)
    except (RuntimeError, ValueError) as err:
        raise BundleError(
            f"{bundle} cannot be loaded ({str(err).strip()[:160]}); delete it to rebuild"
        ) from None


def _body(landmarks: list[Any]) -> np.ndarray | None:
    """(33, 4) x, y, z, visibility of one pose; None where MediaPipe gave values the skeleton
    contract refuses (non-finite, or far outside the image after a strange frame): that body is
    left out, and the frame's other persons and the tracker go on."""
    array = np.array([(p.x, p.y, p.z, p.visibility or 0.0) for p in landmarks], np.float32)
    return array if array.shape == (MP33.num_joints, CHANNELS) and plausible_landmarks(array) else None


def _hands(result: Any) -> tuple[np.ndarray, list[int], list[float]]:
    """(H, 21, 4) landmarks, their Tasks label as a slot (Tasks "Left" = the subject's left), scores."""
    hands, sides, scores = [], [], []
    for landmarks, handedness in zip(result.hand_landmarks, result.handedness, strict=False):
        hand = np.array([(p.x, p.y, p.z, 1.0) for p in landmarks], np.float32)
        if hand.shape == (HAND_JOINTS, CHANNELS) and plausible_landmarks(hand) and handedness:
            hands.append(hand)
            sides.append(LEFT if handedness[0].category_name == "Left" else RIGHT)
            scores.append(float(handedness[0].score))
    return np.array(hands, np.float32).reshape(-1, HAND_JOINTS, CHANNELS), sides, scores


def _wrists_and_shoulders(body: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """(4, 2) pixels: left wrist, right wrist, left shoulder, right shoulder."""
    joints = [POSE_LEFT_WRIST, POSE_RIGHT_WRIST, POSE_LEFT_SHOULDER, POSE_RIGHT_SHOULDER]
    return body[joints, :2].astype(np.float64) * scale


def _tracker_input(bodies: list[np.ndarray], size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(N, 33, 2) body joints in pixels (isotropic) and (N, 33) which are visible enough to trust."""
    joints = np.array([body[:, :2] * np.array(size, np.float64) for body in bodies])
    visible = np.array([body[:, 3] >= VISIBLE for body in bodies])
    return joints.reshape(len(bodies), MP33.num_joints, 2), visible.reshape(len(bodies), MP33.num_joints)


def _person(
    timestamp: float,
    person_id: int,
    body: np.ndarray,
    hands: np.ndarray,
    hand_present: np.ndarray,
    image_size: tuple[int, int],
) -> SkeletonFrame:
    """One person's contract frame in image space."""
    return SkeletonFrame(
        timestamp=timestamp,
        body=body,
        hands=hands,
        hand_present=hand_present,
        person_id=person_id,
        layout=MP33.name,
        space="image",
        image_size=image_size,
    )
