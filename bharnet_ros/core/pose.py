"""The pose stage: one BGR image in, one :class:`SkeletonFrame` (MediaPipe 33 body + two hands) out.

Two MediaPipe back ends (legacy ``mp.solutions`` API of mediapipe 0.10.21) are offered:

* ``"holistic"`` (default): one graph; its hand regions come from the pose wrists, so it finds
  hands on small people and returns them already split into the subject's left and right.
* ``"hands_pose"``: separate Hands and Pose graphs. Legacy Hands labels handedness as if the image
  were a mirrored selfie, so the label is not trusted: each hand goes to the side whose pose wrist
  is nearest (see :func:`assign_hand_slots`); the un-mirrored label is used only without a body.

Output is in the ``"image"`` space of the skeleton contract: x = u / width, y = v / height,
z = MediaPipe's relative depth (body: around the hip centre; hand: relative to its wrist), all in
units of the image width as MediaPipe defines them. Only ``model_complexity=1`` works offline: the
wheel ships ``pose_landmark_full.tflite`` only, and 0 or 2 make MediaPipe download a model.
"""

from __future__ import annotations

import importlib
import warnings
from types import ModuleType
from typing import Any

import numpy as np

from bharnet_ros.core.closeable import Closeable
from bharnet_ros.core.image import camera_size, to_rgb
from bharnet_ros.core.layouts import MP33
from bharnet_ros.core.skeleton import (
    CHANNELS,
    HAND_JOINTS,
    LEFT,
    RIGHT,
    SkeletonError,
    SkeletonFrame,
    check_plausible,
    checked_image_size,
)

BACKENDS = ("holistic", "hands_pose")
POSE_LEFT_WRIST, POSE_RIGHT_WRIST = 15, 16  # MediaPipe Pose: subject's left / right wrist
HAND_WRIST = 0


def assign_hand_slots(costs: np.ndarray) -> list[int | None]:
    """Slot (LEFT or RIGHT) per detected hand (row of ``costs``), or None for a hand that is dropped.

    Each hand goes to its cheapest slot. When two hands want the same slot the cheaper one keeps it
    and the other is dropped: on sign_dobrii_den.mp4 legacy Hands once returned the same crossed
    hand twice (mean joint distance 7 px), and moving the copy to the other slot would invent a hand.
    """
    slots: list[int | None] = [None] * len(costs)
    preferred = np.argmin(costs, axis=1) if len(costs) else np.zeros(0, int)
    for slot in (LEFT, RIGHT):
        wanting = np.flatnonzero(preferred == slot)
        if len(wanting):
            slots[int(wanting[np.argmin(costs[wanting, slot])])] = slot
    return slots


def hand_slot_costs(
    hand_wrists_px: np.ndarray, pose_wrists_px: np.ndarray | None, label_slots: list[int], scores: np.ndarray
) -> np.ndarray:
    """Cost (hands, 2) of putting each hand in the LEFT and RIGHT slot.

    With a body: pixel distance from the hand's wrist (landmark 0) to the pose's left (15) and
    right (16) wrists. Without one: the un-mirrored handedness label decides, and on a clash the
    more confident hand wins (cost 1 - score for its label's slot, 2 for the other).
    """
    if pose_wrists_px is not None:
        return np.linalg.norm(hand_wrists_px[:, None, :] - pose_wrists_px[None, :, :], axis=-1)
    costs = np.full((len(label_slots), 2), 2.0)
    costs[range(len(label_slots)), label_slots] = 1.0 - np.asarray(scores, np.float64)
    return costs


def _landmarks(landmark_list: Any, with_visibility: bool) -> np.ndarray | None:
    """(N, 4) float32 from a MediaPipe NormalizedLandmarkList; None where the contract would refuse
    it (:func:`plausible_landmarks`): that part is left out, and the frame keeps the others."""
    rows = [(p.x, p.y, p.z, p.visibility if with_visibility else 1.0) for p in landmark_list.landmark]
    array = np.asarray(rows, dtype=np.float32)
    return array if plausible_landmarks(array) else None


def plausible_landmarks(points: np.ndarray) -> bool:
    """Whether the skeleton contract takes these image-space landmarks: finite, within
    :data:`~bharnet_ros.core.skeleton.COORDINATE_LIMITS`, scores in [0, 1].

    MediaPipe can place one joint of a strange frame far outside the image; checked per body or
    hand, that costs the part, where the contract's check of the whole frame cost its other parts.
    """
    if not np.isfinite(points).all():
        return False
    try:
        check_plausible(points, np.zeros((0, CHANNELS), np.float32), "image")
    except SkeletonError:
        return False
    return True


class PoseEstimator(Closeable):
    """MediaPipe body + hands for one person per image, as contract frames.

    Use ``static_image_mode=False`` for video (tracking between frames, faster and steadier) and
    ``True`` for unrelated stills. Create one estimator per video stream: tracking state carries
    over between calls. Call :meth:`close` (or use ``with``) to free the MediaPipe graphs.
    """

    def __init__(
        self,
        backend: str = "holistic",
        static_image_mode: bool = False,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
    ) -> None:
        _check_options(backend, min_detection_confidence, min_tracking_confidence)
        self.backend = backend
        options = {
            "static_image_mode": static_image_mode,
            "model_complexity": 1,  # the only complexity the wheel ships (see the module docstring)
            "min_detection_confidence": min_detection_confidence,
            "min_tracking_confidence": min_tracking_confidence,
        }
        self._graphs = _open_graphs(backend, options)

    def close(self) -> None:
        """Free the MediaPipe graphs; safe to call twice."""
        for graph in self._graphs.values():
            graph.close()
        self._graphs = {}

    def estimate(self, image_bgr: np.ndarray, timestamp: float, person_id: int = 0) -> SkeletonFrame:
        """Find the body and hands in one image; absent parts are zeros (hands: ``hand_present`` False)."""
        if not self._graphs:
            raise RuntimeError("PoseEstimator is closed; create a new one")
        size = checked_image_size(camera_size(image_bgr))  # before MediaPipe's tracking sees it
        rgb = to_rgb(image_bgr)
        rgb.flags.writeable = False  # lets MediaPipe wrap the buffer without a copy
        height, width = rgb.shape[:2]
        if self.backend == "holistic":
            body, hands = self._run_holistic(rgb)
        else:
            body, hands = self._run_hands_pose(rgb, width, height)
        return _frame(timestamp, person_id, body, hands, size)

    def _run_holistic(self, rgb: np.ndarray) -> tuple[np.ndarray | None, list[np.ndarray | None]]:
        # Holistic's left_hand_landmarks is the subject's left hand (not mirrored like legacy Hands).
        # Measured with mediapipe 0.10.21, complexity 1: its wrist was nearer pose wrist 15 than 16
        # for 18/18 left and 24/24 right hands on the 40 gesture photos (static mode) and for 32/32
        # left and 28/28 right hands on sign_dobrii_den.mp4 (tracking). So the fields are used as-is.
        result = self._graphs["holistic"].process(rgb)
        body = _optional(result.pose_landmarks, with_visibility=True)
        left = _optional(result.left_hand_landmarks, with_visibility=False)
        right = _optional(result.right_hand_landmarks, with_visibility=False)
        return body, [left, right]

    def _run_hands_pose(
        self, rgb: np.ndarray, width: int, height: int
    ) -> tuple[np.ndarray | None, list[np.ndarray | None]]:
        body = _optional(self._graphs["pose"].process(rgb).pose_landmarks, with_visibility=True)
        result = self._graphs["hands"].process(rgb)
        found = _hands_with_labels(result)
        slots: list[np.ndarray | None] = [None, None]
        if not found:
            return body, slots
        hands = np.stack([hand for hand, _, _ in found])
        scale = np.array([width, height], np.float32)
        pose_wrists = None if body is None else body[[POSE_LEFT_WRIST, POSE_RIGHT_WRIST], :2] * scale
        costs = hand_slot_costs(
            hands[:, HAND_WRIST, :2] * scale, pose_wrists, [s for _, s, _ in found], hands[:, 0, 3]
        )
        for hand, slot in zip(hands, assign_hand_slots(costs), strict=True):
            if slot is not None:
                slots[slot] = hand
        return body, slots


def _check_options(backend: str, detection: float, tracking: float) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"unknown pose backend {backend!r}; use one of {BACKENDS}")
    check_confidences(detection, tracking)


def check_confidences(detection: float, tracking: float) -> None:
    """ValueError unless both MediaPipe thresholds are in [0, 1]."""
    for name, value in (("min_detection_confidence", detection), ("min_tracking_confidence", tracking)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value}")


def _open_graphs(backend: str, options: dict[str, Any]) -> dict[str, Any]:
    """Create the MediaPipe solution objects (imported here: mediapipe takes seconds to import)."""
    mp_hands = import_mediapipe("mediapipe.python.solutions.hands")
    mp_holistic = import_mediapipe("mediapipe.python.solutions.holistic")
    mp_pose = import_mediapipe("mediapipe.python.solutions.pose")
    if backend == "holistic":
        return {"holistic": mp_holistic.Holistic(**options)}
    return {"pose": mp_pose.Pose(**options), "hands": mp_hands.Hands(max_num_hands=2, **options)}


def import_mediapipe(module: str = "mediapipe") -> ModuleType:
    """Import a mediapipe module on first use (it takes seconds), without others' warnings.

    Importing mediapipe imports matplotlib, which raises pyparsing DeprecationWarnings that are
    neither ours nor actionable, so they are silenced for the import only. RuntimeError naming the
    fix where a mediapipe without the legacy ``solutions`` API (0.10.30 and later) is installed, as
    rosdep's pip key installs the newest release.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return importlib.import_module(module)
        except ImportError as err:
            raise RuntimeError(
                f"cannot import {module} ({err}); the pose stage runs on mediapipe==0.10.21 (0.10.30 and "
                "later lack the legacy solutions API): pip install -r requirements-runtime.txt"
            ) from None


def _optional(landmark_list: Any, with_visibility: bool) -> np.ndarray | None:
    return None if landmark_list is None else _landmarks(landmark_list, with_visibility)


def _hands_with_labels(result: Any) -> list[tuple[np.ndarray, int, float]]:
    """(landmarks with score channel = handedness score, label slot, score) per hand from legacy Hands.

    Legacy Hands assumes a mirrored selfie, so on a normal camera its "Left" is the subject's right
    (perception.md: opposite of the truth for 38/38 hands); the label is un-mirrored here and used
    only when no body is found.
    """
    found = []
    for landmarks, handedness in zip(
        result.multi_hand_landmarks or [], result.multi_handedness or [], strict=False
    ):
        label = handedness.classification[0]
        hand = _landmarks(landmarks, with_visibility=False)
        if hand is not None:
            hand[:, 3] = label.score
            found.append((hand, RIGHT if label.label == "Left" else LEFT, float(label.score)))
    return found


def _frame(
    timestamp: float,
    person_id: int,
    body: np.ndarray | None,
    hands: list[np.ndarray | None],
    image_size: tuple[int, int],
) -> SkeletonFrame:
    """Assemble a contract frame; a missing body is all zeros, missing hands are zeros and not present."""
    hand_array = np.zeros((2, HAND_JOINTS, CHANNELS), np.float32)
    for slot, hand in enumerate(hands):
        if hand is not None:
            hand_array[slot] = hand
    return SkeletonFrame(
        timestamp=timestamp,
        body=body if body is not None else np.zeros((MP33.num_joints, CHANNELS), np.float32),
        hands=hand_array,
        hand_present=np.array([hand is not None for hand in hands]),
        person_id=person_id,
        layout=MP33.name,
        space="image",
        image_size=image_size,
    )
