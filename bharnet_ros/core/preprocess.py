"""The one preprocessing from skeleton sequences to model inputs (numpy only).

Training, export checks and the ROS node all call :func:`preprocess_sequence` (or
:func:`preprocess_arrays`) with the :class:`PreprocessConfig` stored in the checkpoint and the ONNX
file, so the model never sees inputs prepared two different ways. The config records the
coordinate space of the training data, and skeletons in another space are refused. Steps, in order:

1. **Layout**: a ``mediapipe33`` body is mapped to ``ntu25`` (``layouts.mp33_to_ntu25``) when the
   model's body layout is ``ntu25``; detected hands refine the NTU hand joints.
2. **Hand depth**: in image space MediaPipe gives hand z relative to the hand's own wrist; it is
   re-anchored on the body's wrist depth so hands and body share one 3-D frame.
3. **Aspect**: in image space with a known image size, x and z (z has x's scale) are multiplied
   by width / height, so one unit is one image height on every axis.
4. **Normalisation** (per sequence, one translation and one scale for all frames, so motion of
   the whole body inside the window is kept): the centre is the mid-shoulder point averaged over
   frames where both shoulders were observed, and the body size is the mean 3-D shoulder width
   over the same frames (``scale="torso"`` uses mid-shoulder to mid-hip instead), at least
   :data:`LEAST_SIZE_SHARE` of the body's extent (the longest side of its box). Shoulders are
   chosen because an upper-body camera framing (the usual HRI view) often loses the hips. Other
   persons and the hands use the first person's centre and size, so their relative positions are
   kept. ``hand_frame="wrist"`` instead expresses each hand relative to its own wrist landmark
   (still divided by the body size), which drops where the hand is but keeps its shape and size.
5. **Absent data stays zero**: a joint with all four channels zero (the contract's "not
   observed") or, with ``min_score`` > 0, a body joint scored below it (MediaPipe also places the
   joints it cannot see: the legs of an upper-body view at 1 m have a mean visibility of 0.27), a
   hand slot not present in a frame, missing persons and the dummy hand vertices are exactly zero
   after every step, and bones or motion that involve an absent joint are zero too.
6. **Modality** (joint, bone, joint_motion, bone_motion) and packing into body ``(C, T, V, M)``,
   hand ``(C, T, V, 2)`` float32 and the per-frame hand mask ``(T,)``. Scores are dropped
   (``channels=3``) unless ``channels=4``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from bharnet_ros.core.layouts import MP33, NTU25, get_layout, mp33_to_ntu25
from bharnet_ros.core.modalities import (
    MODALITIES,
    hand_frame_mask,
    hand_parents,
    pack_body,
    pack_hands,
    to_modality,
)
from bharnet_ros.core.skeleton import CHANNELS, HAND_JOINTS, SPACES, SkeletonSequence
from bharnet_ros.core.window import whole_number

CONFIG_VERSION = 4  # 2 added window_seconds, 3 min_score, 4 space
ADDED_IN_VERSION = {"window_seconds": 2, "min_score": 3, "space": 4}  # later keys: every other is 1
MAX_FRAMES = 10_000  # the model config's bounds: a file may not declare inputs beyond them
MAX_PERSONS = 16
SCALES = ("shoulder", "torso", "none")
HAND_FRAMES = ("body", "wrist")
LEAST_WINDOW_SECONDS = 0.05  # a window of a frame at 20 fps; 5e-324 s made the feeder divide by zero
MIN_SIZE = 1e-6  # body sizes below this (degenerate or unobserved) leave the scale at 1
# The body size is at least this share of the body's extent (the longer side of the box around its
# observed joints): shoulders collapsed onto one point by a bad detection made inputs of 1e5 that
# the model answered with confidence 1. A person's shoulders span far more of their extent, so
# the floor is meant for broken detections only.
LEAST_SIZE_SHARE = 0.05
# Joints that define centre and size, per layout: (left shoulder, right shoulder, left hip, right hip).
ANCHORS = {
    "ntu25": tuple(NTU25.index(n) for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip")),
    "mediapipe33": tuple(MP33.index(n) for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip")),
}
WRISTS = {
    "ntu25": (NTU25.index("left_wrist"), NTU25.index("right_wrist")),
    "mediapipe33": (MP33.index("left_wrist"), MP33.index("right_wrist")),
}


@dataclass(frozen=True)
class PreprocessConfig:
    """How skeletons become model inputs; stored as a plain dict in checkpoints and ONNX metadata."""

    body_layout: str = "ntu25"  # the model's body layout; mediapipe33 input is mapped to it
    frames: int = 64  # T the model was trained and exported with
    num_persons: int = 1  # body instances M
    channels: int = 3  # 3 = x, y, z (scores dropped); 4 keeps the score channel
    modality: str = "joint"
    normalise: bool = True
    scale: str = "shoulder"  # shoulder | torso | none
    hand_frame: str = "body"  # body: the body's normalised frame | wrist: relative to each wrist
    aspect_correction: bool = True  # image space: x, z *= width / height when the size is known
    window_seconds: float = 0.0  # > 0: T frames sampled by time over this many seconds (any fps)
    min_score: float = 0.0  # body joints scored below it count as not observed (0: all kept)
    # The coordinate space of the skeletons the model was trained on; other input is refused (an
    # image-space model reads metres as fractions of the image). "" = not recorded (before version 4).
    space: str = ""

    def __post_init__(self) -> None:
        """Every field of its own type and range: these settings come from files (checkpoints, ONNX
        metadata), and a string ``"false"`` or a float frame count would change or break every input."""
        checks = [
            (_one_of(self.body_layout, ANCHORS), f"body_layout must be one of {sorted(ANCHORS)}"),
            (_one_of(self.modality, MODALITIES), f"modality must be one of {MODALITIES}"),
            (_one_of(self.scale, SCALES), f"scale must be one of {SCALES}"),
            (_one_of(self.hand_frame, HAND_FRAMES), f"hand_frame must be one of {HAND_FRAMES}"),
            (_whole(self.channels, 3, 4), "channels must be 3 (x, y, z) or 4 (with score)"),
            (_whole(self.frames, 1, MAX_FRAMES), f"frames must be a whole number from 1 to {MAX_FRAMES}"),
            (
                _whole(self.num_persons, 1, MAX_PERSONS),
                f"num_persons must be a whole number from 1 to {MAX_PERSONS}",
            ),
            (type(self.normalise) is bool, "normalise must be true or false"),
            (type(self.aspect_correction) is bool, "aspect_correction must be true or false"),
            (
                _seconds(self.window_seconds),
                f"window_seconds must be 0 (frame-count windows) or a duration from {LEAST_WINDOW_SECONDS:g} "
                "to 60 s",
            ),
            (_share(self.min_score), "min_score must be a number from 0 (keep every joint) to 1"),
            (_one_of(self.space, ("", *SPACES)), f"space must be one of {SPACES} (or empty: not recorded)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"preprocess config: {message}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible dict, with a version for future changes."""
        return {"version": CONFIG_VERSION, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreprocessConfig:
        """Inverse of :meth:`to_dict`; unknown keys, a newer version or keys missing that the
        stated version has are errors, not ignored (only keys added later take their defaults)."""
        if not isinstance(data, dict):
            raise ValueError(f"preprocess config must be a mapping, not {type(data).__name__}")
        data = dict(data)
        version = data.pop("version", CONFIG_VERSION)
        if not whole_number(version, 1):
            raise ValueError(f"preprocess config version {version!r} is not a whole number from 1")
        if version > CONFIG_VERSION:
            raise ValueError(
                f"preprocess config version {version} is newer than this code ({CONFIG_VERSION})"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"preprocess config: unknown keys {sorted(unknown)}; known: {sorted(known)}")
        missing = sorted(k for k in known - set(data) if ADDED_IN_VERSION.get(k, 1) <= version)
        if missing:  # filled with defaults, the model would silently get other inputs
            raise ValueError(
                f"preprocess config of version {version} lacks {missing}, which that version has; "
                "export the model again"
            )
        return cls(**data)


def _one_of(value: Any, allowed: Any) -> bool:
    return isinstance(value, str) and value in allowed


def _whole(value: Any, low: int, high: int) -> bool:
    """A whole number (``core.window.whole_number``) in [low, high]."""
    return whole_number(value, low) and value <= high


def _seconds(value: Any) -> bool:
    return _number(value) and (value == 0.0 or LEAST_WINDOW_SECONDS <= value <= 60.0)


def _share(value: Any) -> bool:
    return _number(value) and 0.0 <= value <= 1.0


def _number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


@dataclass(frozen=True)
class ModelInputs:
    """One sample: body ``(C, T, V, M)``, hand ``(C, T, V, 2)``, hand mask ``(T,)``, all float32."""

    body: np.ndarray
    hand: np.ndarray
    hand_mask: np.ndarray

    def batched(self) -> dict[str, np.ndarray]:
        """The arrays with a leading batch axis of 1, keyed by the ONNX input names."""
        return {"body": self.body[None], "hand": self.hand[None], "hand_mask": self.hand_mask[None]}


def preprocess_sequence(
    sequence: SkeletonSequence, config: PreprocessConfig, image_size: tuple[int, int] | None = None
) -> ModelInputs:
    """Model inputs of one person's sequence; ``image_size`` overrides ``sequence.image_size``."""
    size = sequence.image_size if image_size is None else image_size
    return preprocess_arrays(
        sequence.body, sequence.hands, sequence.hand_present, sequence.layout, sequence.space, config, size
    )


def preprocess_arrays(
    body: np.ndarray,
    hands: np.ndarray,
    hand_present: np.ndarray,
    layout: str,
    space: str,
    config: PreprocessConfig,
    image_size: tuple[int, int] = (0, 0),
) -> ModelInputs:
    """Model inputs from contract arrays.

    ``body`` is ``(T, V, 4)`` or ``(P, T, V, 4)`` (person 0 is the subject that defines the
    normalisation); ``hands`` ``(T, 2, 21, 4)`` and ``hand_present`` ``(T, 2)`` are the subject's.
    """
    problem = space_problem(space, config)
    if problem:
        raise ValueError(problem)
    body = _as_persons(np.array(body, dtype=np.float32))
    hands = np.array(hands, dtype=np.float32)
    present = np.asarray(hand_present, dtype=bool)
    body, layout = _map_layout(body, hands, present, layout, config.body_layout)
    if space == "image":
        _anchor_hand_depth(hands, present, body[0], layout)
        if config.aspect_correction:
            _correct_aspect(body, hands, image_size)
    body_valid = _observed(body)
    if config.min_score > 0:
        body_valid &= body[..., 3] >= config.min_score
    if config.normalise:
        _normalise(body, hands, present, body_valid, layout, config)
    body[~body_valid] = 0.0  # absent hands are zeroed by the packing's mask
    return _pack(body, hands, present, layout, config)


def space_problem(space: str, config: PreprocessConfig) -> str | None:
    """Why skeletons in ``space`` cannot feed a model of ``config`` (None when they can)."""
    if not config.space or space == config.space:
        return None
    return f"cannot feed {space}-space skeletons to a model trained on {config.space}-space skeletons"


def _as_persons(body: np.ndarray) -> np.ndarray:
    """``(T, V, 4)`` to ``(1, T, V, 4)``; checks the channel count."""
    if body.ndim == 3:
        body = body[None]
    if body.ndim != 4 or body.shape[-1] != CHANNELS:
        raise ValueError(f"expected body (T, V, {CHANNELS}) or (P, T, V, {CHANNELS}), got {body.shape}")
    return body


def _map_layout(
    body: np.ndarray, hands: np.ndarray, present: np.ndarray, layout: str, target: str
) -> tuple[np.ndarray, str]:
    """Map MediaPipe 33 to NTU 25 where the model needs it; other mismatches are errors."""
    if layout == target:
        return body, layout
    if (layout, target) == ("mediapipe33", "ntu25"):
        # the hands are the subject's (person 0): another person's, or an empty slot's, stay the pose's
        mapped = [mp33_to_ntu25(body[0], hands, present), *(mp33_to_ntu25(person) for person in body[1:])]
        return np.stack(mapped), target
    raise ValueError(f"cannot feed a {layout} skeleton to a model built for {target}")


def _observed(points: np.ndarray) -> np.ndarray:
    """Boolean mask over all axes but the last: False where every channel is zero (not observed)."""
    return np.any(points != 0.0, axis=-1)


def _anchor_hand_depth(hands: np.ndarray, present: np.ndarray, subject: np.ndarray, layout: str) -> None:
    """Add the body wrist's depth to each present hand's wrist-relative z (in place)."""
    for slot, wrist in enumerate(WRISTS[layout]):
        depth = subject[:, wrist, 2]
        hands[:, slot, :, 2] += np.where(present[:, slot], depth, 0.0)[:, None]


def _correct_aspect(body: np.ndarray, hands: np.ndarray, image_size: tuple[int, int]) -> None:
    """Image space: scale x and z by width / height so all axes are in image heights (in place)."""
    width, height = image_size
    if width <= 0 or height <= 0:
        return
    factor = np.float32(width / height)
    body[..., [0, 2]] *= factor
    hands[..., [0, 2]] *= factor


def _normalise(
    body: np.ndarray,
    hands: np.ndarray,
    present: np.ndarray,
    body_valid: np.ndarray,
    layout: str,
    config: PreprocessConfig,
) -> None:
    """Centre on the subject's mean mid-shoulder and divide by its body size (in place)."""
    seen_hands = hands[present][..., :3].reshape(-1, 3)
    centre, size = body_centre_and_size(body[0], body_valid[0], layout, config.scale, seen_hands)
    body[..., :3] = (body[..., :3] - centre) / size
    if config.hand_frame == "wrist":
        wrists = hands[:, :, :1, :3].copy()
        hands[..., :3] = (hands[..., :3] - wrists) / size
    else:
        hands[..., :3] = (hands[..., :3] - centre) / size


def body_centre_and_size(
    subject: np.ndarray,
    valid: np.ndarray,
    layout: str,
    scale: str = "shoulder",
    hand_points: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """Mean mid-shoulder ``(3,)`` and body size of one person ``(T, V, C)`` with validity ``(T, V)``.

    Only frames where both shoulders (and for ``torso`` both hips) were observed count. Without
    such frames the centre is the mean of all observed joints and the size is 1. The size is at
    least :data:`LEAST_SIZE_SHARE` of the extent of the body's observed joints and of
    ``hand_points`` ``(N, 3)`` (the present hands' joints, divided by the same size: shoulders
    detected on one point must not blow the hands up).
    """
    left_s, right_s, left_h, right_h = ANCHORS[layout]
    xyz = subject[..., :3]
    shoulders = valid[:, left_s] & valid[:, right_s]
    if not shoulders.any():
        centre = xyz[valid].mean(axis=0) if valid.any() else np.zeros(3, np.float32)
        return centre.astype(np.float32), 1.0
    mid_shoulder = 0.5 * (xyz[:, left_s] + xyz[:, right_s])
    centre = mid_shoulder[shoulders].mean(axis=0)
    if scale == "shoulder":
        size = np.linalg.norm(xyz[shoulders, left_s] - xyz[shoulders, right_s], axis=-1).mean()
    elif scale == "torso":
        torso = shoulders & valid[:, left_h] & valid[:, right_h]
        mid_hip = 0.5 * (xyz[:, left_h] + xyz[:, right_h])
        size = np.linalg.norm(mid_shoulder[torso] - mid_hip[torso], axis=-1).mean() if torso.any() else 1.0
    else:
        size = 1.0
    points = xyz[valid] if hand_points is None else np.concatenate([xyz[valid], hand_points])
    size = max(float(size), LEAST_SIZE_SHARE * _extent(points))
    return centre.astype(np.float32), size if size > MIN_SIZE else 1.0


def _extent(points: np.ndarray) -> float:
    """The longest side of the box around ``points`` (N, 3); 0 for none. Depth counts too: over x
    and y alone, shoulders on one point and a legal z of 9 made inputs of 4e6."""
    if not len(points):
        return 0.0
    return float(np.max(points[:, :3].max(axis=0) - points[:, :3].min(axis=0)))


def _pack(
    body: np.ndarray, hands: np.ndarray, present: np.ndarray, layout: str, config: PreprocessConfig
) -> ModelInputs:
    """Pack into model tensors and apply the modality; bones/motion touching absent joints are 0."""
    body_packed = pack_body(body, config.num_persons, config.channels)
    num_vertices = body_packed.shape[2]
    hand_packed = pack_hands(hands, num_vertices, config.channels)
    body_parents = get_layout(layout).parents
    hand_tree = hand_parents(num_vertices)
    body_valid = pack_body(_observed(body)[..., None].astype(np.float32), config.num_persons, 1)
    hand_flags = np.broadcast_to(present[:, :, None, None], (*present.shape, HAND_JOINTS, 1))
    hand_valid = pack_hands(hand_flags.astype(np.float32), num_vertices, 1)
    return ModelInputs(
        body=_modality(body_packed, body_valid, config.modality, body_parents),
        hand=_modality(hand_packed, hand_valid, config.modality, hand_tree),
        hand_mask=hand_frame_mask(present),
    )


def _modality(packed: np.ndarray, valid: np.ndarray, modality: str, parents: tuple[int, ...]) -> np.ndarray:
    """``to_modality`` masked so that anything computed from an absent joint is exactly zero."""
    values = to_modality(packed, modality, parents)
    mask = valid > 0
    if modality in ("bone", "bone_motion"):
        mask = mask & np.take(mask, np.asarray(parents), axis=-2)
    if modality in ("joint_motion", "bone_motion"):
        both = np.zeros_like(mask)
        both[:, :-1] = mask[:, :-1] & mask[:, 1:]
        mask = both
    return np.ascontiguousarray(np.where(mask, values, 0.0).astype(np.float32))
