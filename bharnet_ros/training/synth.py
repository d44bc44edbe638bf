"""Procedurally generated body+hand gesture sequences for human-robot interaction.

The generator builds a standing person from a few kinematic pieces and films them with a pinhole
camera, so that its output is exactly what the live pose stage emits: a
:class:`~bharnet_ros.core.skeleton.SkeletonSequence` in layout ``mediapipe33`` and space ``image``
(x = u/width, y = v/height, y down; body z is depth relative to the hip centre in x's scale, hand z is
depth relative to the hand's wrist, negative = towards the camera; hand slot 0 = the subject's left).

Pipeline of one sequence:

1. a :class:`Subject` (body proportions, handedness, rest posture) and a :class:`Camera` (image size,
   focal length, distance, yaw, framing) are drawn;
2. the class's motion is keyframed as *arm poses* (wrist position relative to the shoulder, elbow
   direction, hand orientation, hand shape) and interpolated smoothly; repetitive parts (waving,
   clapping, beckoning) are added as oscillations;
3. arms are solved with two-link inverse kinematics, hands are built from per-finger flexion, the body
   gets posture sway, and a left-handed performer is mirrored in 3D (so the active hand lands in slot 0);
4. the 3D skeleton is projected, and pose-estimator effects are added: visibility scores (frame edges,
   occlusion), temporally correlated jitter with spikes, and hand dropouts.

The classes in :data:`SHARED_ARM_CLASSES` draw their arm motion from one distribution with one random
stream, so for the same seed their shoulder, elbow and wrist trajectories are identical: only the hand
(shape and orientation) tells them apart. That is the situation BHaRNet's hand stream exists for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np

from bharnet_ros.core.annotations import Segment
from bharnet_ros.core.layouts import MP33
from bharnet_ros.core.skeleton import SkeletonSequence

# --------------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GestureClass:
    """One class of the synthetic vocabulary."""

    name: str
    hand_intensive: bool  # True where the hand's shape, not the arm's motion, identifies the class
    description: str


# The order is fixed: a class's label is its index here. Append new classes at the end only.
CLASSES: tuple[GestureClass, ...] = (
    GestureClass("idle", False, "standing at rest: posture sway, now and then a small hand drift"),
    GestureClass("wave", False, "open hand raised beside the head, swung from side to side"),
    GestureClass("hello", False, "flat hand from the forehead outwards, like a salute (sign HELLO)"),
    GestureClass("thanks", False, "flat hand from the chin forwards and down (sign THANK YOU)"),
    GestureClass("i_love_you", True, "ILY hand (thumb, index and pinky out) held up"),
    GestureClass("thumbs_up", True, "fist with the thumb up, held up"),
    GestureClass("thumbs_down", True, "fist with the thumb down, held up"),
    GestureClass("ok_sign", True, "thumb and index tips touching in a ring, other fingers out"),
    GestureClass("victory_sign", True, "index and middle finger spread in a V"),
    GestureClass("pointing", True, "index finger pointing to the front, towards the performer's side"),
    GestureClass("stop", False, "arm pushed forwards, open palm towards the camera"),
    GestureClass("come_here", True, "palm up, fingers curling repeatedly (beckoning)"),
    GestureClass("clap", False, "both hands clapping in front of the chest"),
    GestureClass("fidget", False, "no gesture: both arms wander through random poses without a hold"),
)
CLASS_NAMES: tuple[str, ...] = tuple(c.name for c in CLASSES)
HAND_INTENSIVE: tuple[bool, ...] = tuple(c.hand_intensive for c in CLASSES)
# Same arm trajectory distribution and random stream; they differ only in the hand.
SHARED_ARM_CLASSES: tuple[str, ...] = (
    "i_love_you", "thumbs_up", "thumbs_down", "ok_sign", "victory_sign", "pointing",
)  # fmt: skip


def class_index(name: str) -> int:
    """Label of a class name, with an error that lists the vocabulary."""
    try:
        return CLASS_NAMES.index(name)
    except ValueError:
        raise ValueError(f"unknown gesture class {name!r}; known: {', '.join(CLASS_NAMES)}") from None


# --------------------------------------------------------------------------------------------------
# Small geometry helpers. The body frame is metres with the origin at the hip centre, x towards the
# subject's left, y down and z backwards (away from a camera the subject faces), the same handedness
# as the camera frame (x right, y down, z into the scene).
# --------------------------------------------------------------------------------------------------


def _v(out: float, up: float, fwd: float) -> np.ndarray:
    """An offset or direction authored for a RIGHT arm (outwards, up, forwards) in body coordinates."""
    return np.array([-out, -up, -fwd], dtype=float)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def _rotation(axis: int, angle: np.ndarray | float) -> np.ndarray:
    """Rotation matrices (..., 3, 3) by ``angle`` radians about coordinate axis 0, 1 or 2."""
    angle = np.asarray(angle, dtype=float)
    c, s = np.cos(angle), np.sin(angle)
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    out = np.zeros((*angle.shape, 3, 3))
    out[..., axis, axis] = 1.0
    out[..., i, i], out[..., i, j], out[..., j, i], out[..., j, j] = c, -s, s, c
    return out


def _smoothstep(s: np.ndarray) -> np.ndarray:
    s = np.clip(s, 0.0, 1.0)
    return s * s * (3.0 - 2.0 * s)


def smooth_wiggle(rng: np.random.Generator, t: np.ndarray, amplitude: float, max_hz: float) -> np.ndarray:
    """Slow random drift: three low-frequency sinusoids scaled to a standard deviation of ``amplitude``."""
    freqs = rng.uniform(0.05, max_hz, 3)
    phases = rng.uniform(0.0, 2.0 * np.pi, 3)
    weights = rng.normal(size=3)
    wave = (weights[:, None] * np.sin(2.0 * np.pi * freqs[:, None] * t + phases[:, None])).sum(0)
    return amplitude * wave / np.sqrt(max((weights**2).sum() / 2.0, 1e-9))


# --------------------------------------------------------------------------------------------------
# Keyframe interpolation (monotone cubic, so a repeated keyframe is a smooth stop without overshoot)
# --------------------------------------------------------------------------------------------------


def _pchip_slopes(times: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Fritsch-Carlson slopes per dimension: zero at the ends and wherever the motion turns or stops."""
    h = np.maximum(np.diff(times), 1e-9)[:, None]
    delta = np.diff(values, axis=0) / h
    slopes = np.zeros_like(values)
    left, right = delta[:-1], delta[1:]
    w1, w2 = 2.0 * h[1:] + h[:-1], h[1:] + 2.0 * h[:-1]
    same_sign = left * right > 0
    safe_l = np.where(same_sign, left, 1.0)
    safe_r = np.where(same_sign, right, 1.0)
    slopes[1:-1] = np.where(same_sign, (w1 + w2) / (w1 / safe_l + w2 / safe_r), 0.0)
    return slopes


def interpolate_keys(keys: Sequence[tuple[float, np.ndarray]], t: np.ndarray) -> np.ndarray:
    """Evaluate keyframes ``(time, vector)`` (times non-decreasing) at times ``t``; ends are held."""
    times = np.array([k[0] for k in keys], dtype=float)
    values = np.stack([np.asarray(k[1], dtype=float) for k in keys])
    slopes = _pchip_slopes(times, values)
    idx = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(times) - 2)
    h = np.maximum(times[idx + 1] - times[idx], 1e-9)
    s = np.clip((t - times[idx]) / h, 0.0, 1.0)[:, None]
    h = h[:, None]
    h00, h10 = 2 * s**3 - 3 * s**2 + 1, s**3 - 2 * s**2 + s
    h01, h11 = -2 * s**3 + 3 * s**2, s**3 - s**2
    return h00 * values[idx] + h10 * h * slopes[idx] + h01 * values[idx + 1] + h11 * h * slopes[idx + 1]


# --------------------------------------------------------------------------------------------------
# Hands: 21 MediaPipe landmarks from per-finger flexion, in a right hand's local frame whose axes are
# (distal, radial, palmar) and whose unit is the hand length (wrist to middle fingertip).
# --------------------------------------------------------------------------------------------------

# Hand shape vector: MCP flexion of index..pinky (1 = 90 degrees), PIP/DIP curl of index..pinky
# (1 = fully curled), finger spread, and the thumb tip's target position in the local frame.
MCP, CURL, SPREAD, THUMB = slice(0, 4), slice(4, 8), 8, slice(9, 12)
SHAPE_SIZE = 12

_FINGER_MCP = np.array([[0.50, 0.16, 0.01], [0.53, 0.04, -0.01], [0.50, -0.085, 0.0], [0.45, -0.205, 0.02]])
_FINGER_BONES = np.array([[0.24, 0.14, 0.12], [0.24, 0.16, 0.13], [0.22, 0.16, 0.12], [0.21, 0.12, 0.11]])
_FINGER_SPLAY = np.radians([4.0, 0.0, -4.0, -9.0])  # resting direction of each finger in the palm plane
_FINGER_SPREAD = np.radians([10.0, -4.0, -9.0, -16.0])  # extra splay at spread = 1
_THUMB_CMC = np.array([0.14, 0.18, 0.05])
_THUMB_BONES = np.array([0.22, 0.18, 0.145])  # CMC-MCP, MCP-IP, IP-tip
_THUMB_BEND = np.array([0.0, 1.0, 0.35])  # the thumb's knuckles bulge radially and a little palmar
# MediaPipe Pose's own coarse hand points (pinky, index, thumb), in the hand frame. Pose gets the hand's
# direction about right but not its roll (on the real sign recordings its thumb point is on the hand's
# thumb side only about half the time), so they are placed in a frame with the true finger direction
# and a roll fixed to the body.
_COARSE_HAND = np.array([[0.56, -0.17, 0.03], [0.63, 0.15, 0.02], [0.30, 0.28, 0.07]])


def _thumb_target(direction: Sequence[float], reach: float) -> np.ndarray:
    return _THUMB_CMC + reach * _THUMB_BONES.sum() * _unit(np.asarray(direction, dtype=float))


def _finger_chains(shape: np.ndarray) -> np.ndarray:
    """MCP, PIP, DIP and tip of the four fingers, (T, 4, 4, 3), from MCP flexion, curl and spread."""
    splay = _FINGER_SPLAY + shape[:, SPREAD, None] * _FINGER_SPREAD  # (T, 4)
    base = np.stack([np.cos(splay), np.sin(splay), np.zeros_like(splay)], axis=-1)
    palmar = np.array([0.0, 0.0, 1.0])
    mcp, curl = shape[:, MCP], shape[:, CURL]
    bend = np.stack([mcp * np.radians(90), curl * np.radians(100), curl * np.radians(65)], axis=-1)
    total = np.cumsum(bend, axis=-1)[..., None]  # (T, 4, 3, 1)
    directions = np.cos(total) * base[:, :, None, :] + np.sin(total) * palmar
    steps = _FINGER_BONES[None, :, :, None] * directions
    joints = _FINGER_MCP[None, :, None, :] + np.cumsum(steps, axis=2)
    start = np.broadcast_to(_FINGER_MCP, (len(shape), 4, 3))[:, :, None, :]
    return np.concatenate([start, joints], axis=2)


_ARC_ANGLES = np.linspace(1e-4, 2.0 * np.pi - 1e-3, 2048)
_ARC_RATIOS = np.sin(_ARC_ANGLES / 2) / (_ARC_ANGLES / 2)  # chord / arc length, decreasing


def bend_chain(start: np.ndarray, end: np.ndarray, bones: np.ndarray, hint: np.ndarray) -> np.ndarray:
    """Joints of a chain of ``bones`` from ``start`` whose tip lands on ``end``, laid on a circular arc.

    The arc bulges towards ``hint``; a target beyond reach is pulled in. Returns (T, len(bones), 3).
    """
    chord = end - start
    length = bones.sum()
    c = np.clip(np.linalg.norm(chord, axis=-1), 1e-6, 0.999 * length)
    e = chord / np.maximum(np.linalg.norm(chord, axis=-1, keepdims=True), 1e-9)
    b = _unit(hint - (e @ hint)[:, None] * e)
    theta = np.interp(c / length, _ARC_RATIOS[::-1], _ARC_ANGLES[::-1])
    radius = length / theta
    phi = np.cumsum(bones)[None, :] / radius[:, None]  # (T, n)
    half = (theta / 2)[:, None]
    along = c[:, None] / 2 - radius[:, None] * np.sin(half - phi)
    across = -radius[:, None] * np.cos(half) + radius[:, None] * np.cos(half - phi)
    return start[:, None, :] + along[..., None] * e[:, None, :] + across[..., None] * b[:, None, :]


def hand_local(shape: np.ndarray) -> np.ndarray:
    """21 hand landmarks (T, 21, 3) of a right hand in its local frame, from shape vectors (T, 12)."""
    n = len(shape)
    fingers = _finger_chains(shape).reshape(n, 16, 3)
    cmc = np.broadcast_to(_THUMB_CMC, (n, 3))
    thumb = bend_chain(cmc, shape[:, THUMB], _THUMB_BONES, _THUMB_BEND)
    return np.concatenate([np.zeros((n, 1, 3)), cmc[:, None], thumb, fingers], axis=1)


def _shape(mcp: Sequence[float], curl: Sequence[float], spread: float, thumb: np.ndarray) -> np.ndarray:
    return np.concatenate([mcp, curl, [spread], thumb]).astype(float)


def _ok_shape() -> np.ndarray:
    """Index bent to meet the thumb tip; the thumb target is the index tip itself, so they touch."""
    shape = _shape([0.5, 0.05, 0.1, 0.15], [0.55, 0.05, 0.1, 0.1], 0.7, np.zeros(3))
    index_tip = _finger_chains(shape[None])[0, 0, 3]
    shape[THUMB] = index_tip + np.array([0.0, 0.0, 0.01])
    return shape


_TUCKED = np.array([0.42, -0.02, 0.27])  # thumb over the curled middle finger
_FIST_MCP, _FIST_CURL = 0.9, 0.9
SHAPES: dict[str, np.ndarray] = {
    "relaxed": _shape([0.25] * 4, [0.3, 0.32, 0.35, 0.4], 0.2, _thumb_target([0.65, 0.55, 0.5], 0.9)),
    "flat": _shape([0.0] * 4, [0.03] * 4, 0.0, _thumb_target([0.75, 0.6, 0.2], 0.98)),
    "open": _shape([-0.05] * 4, [0.0] * 4, 1.0, _thumb_target([0.45, 0.85, 0.25], 0.98)),
    "fist": _shape([_FIST_MCP] * 4, [_FIST_CURL] * 4, 0.0, _TUCKED),
    "thumb": _shape([_FIST_MCP] * 4, [_FIST_CURL] * 4, 0.0, _thumb_target([0.25, 0.95, 0.1], 0.98)),
    "ok": _ok_shape(),
    "victory": _shape(
        [0.0, 0.0, _FIST_MCP, _FIST_MCP], [0.0, 0.0, _FIST_CURL, _FIST_CURL], 1.8, _TUCKED - [0.0, 0.1, 0.0]
    ),
    "ily": _shape(
        [0.0, _FIST_MCP, _FIST_MCP, 0.0],
        [0.0, _FIST_CURL, _FIST_CURL, 0.0],
        0.8,
        _thumb_target([0.35, 0.85, 0.35], 0.9),
    ),
    "point": _shape(
        [0.05, _FIST_MCP, _FIST_MCP, _FIST_MCP], [0.0, _FIST_CURL, _FIST_CURL, _FIST_CURL], 0.2, _TUCKED
    ),
    "beckon": _shape([0.1] * 4, [0.1] * 4, 0.3, _thumb_target([0.5, 0.8, 0.2], 0.95)),
}


def jitter_shape(shape: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A person's version of a hand shape: flexions and spread a little off, ring closure kept for OK."""
    out = shape.copy()
    out[MCP] += rng.normal(0.0, 0.05, 4)
    out[CURL] += rng.normal(0.0, 0.05, 4)
    out[SPREAD] = max(0.0, out[SPREAD] + rng.normal(0.0, 0.15))
    out[THUMB] += rng.normal(0.0, 0.015, 3)
    if np.allclose(shape, SHAPES["ok"]):
        out[THUMB] = _finger_chains(out[None])[0, 0, 3] + np.array([0.0, 0.0, 0.01])
    return out


def hand_frame(axis: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """Right-hand frame (T, 3, 3), columns (distal, radial, palmar) in body coordinates.

    ``axis`` is where the fingers point (wrist to middle knuckle), ``normal`` where the palm faces; the
    normal is made orthogonal to the axis. For a right hand the thumb side is axis x normal.
    """
    distal = _unit(axis)
    palmar = _unit(normal - (normal * distal).sum(-1, keepdims=True) * distal)
    radial = np.cross(distal, palmar)
    return np.stack([distal, radial, palmar], axis=-1)


# --------------------------------------------------------------------------------------------------
# Subject, camera and estimator style: everything fixed for one sequence
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    """Body proportions in metres and the performer's habits."""

    shoulder_half: float
    hip_half: float
    torso: float  # hip centre to the shoulder line
    upper_arm: float
    forearm: float
    hand: float  # wrist to middle fingertip
    thigh: float
    shin: float
    head: float  # scale of the face points (1 = average adult)
    lean: float  # forward lean of the torso, radians
    left_handed: bool
    rest_style: str  # "sides": arms hanging; "front": hands held together in front of the belly

    @property
    def reach(self) -> float:
        return self.upper_arm + self.forearm

    def shoulder(self, side: str = "right") -> np.ndarray:
        return np.array([self.shoulder_half if side == "left" else -self.shoulder_half, -self.torso, 0.0])


def sample_subject(rng: np.random.Generator, left_handed: bool | None = None) -> Subject:
    """A random adult: overall size +-15%, each segment +-3% more, handedness about one in four left."""
    size = float(np.clip(rng.normal(1.0, 0.06), 0.85, 1.15))
    part = lambda metres: float(metres * size * rng.normal(1.0, 0.03))  # noqa: E731
    drawn = bool(rng.random() < 0.25)  # always drawn, so forcing handedness leaves the rest unchanged
    lefty = drawn if left_handed is None else bool(left_handed)
    return Subject(
        shoulder_half=part(0.18), hip_half=part(0.095), torso=part(0.50), upper_arm=part(0.29),
        forearm=part(0.25), hand=part(0.175), thigh=part(0.43), shin=part(0.42), head=part(1.0),
        lean=float(rng.uniform(-0.03, 0.15)), left_handed=lefty,
        rest_style="sides" if rng.random() < 0.7 else "front",
    )  # fmt: skip


@dataclass(frozen=True)
class Camera:
    """A pinhole camera looking at the subject; the body is rotated by yaw and pitch, then shifted."""

    width: int
    height: int
    focal: float  # pixels
    rotation: np.ndarray  # (3, 3) body frame -> camera orientation (yaw, then pitch)
    distance: float  # metres from the camera to ``anchor``
    centre: tuple[float, float]  # pixel where ``anchor`` appears
    anchor: np.ndarray  # (3,) body-frame point that is framed: the middle of the shoulders
    z_gain: float  # how much MediaPipe-style body depth exaggerates metric depth
    hand_z_gain: float

    @property
    def offset(self) -> np.ndarray:
        """Camera-frame position of the body origin that puts ``anchor`` at ``centre``."""
        u0, v0 = self.centre
        scale = self.distance / self.focal
        target = np.array([(u0 - self.width / 2) * scale, (v0 - self.height / 2) * scale, self.distance])
        return target - self.rotation @ self.anchor

    def moved_back(self, factor: float) -> Camera:
        """The same view from ``factor`` times farther, drifting to the middle (an operator reframing)."""
        u0, v0 = self.centre
        return replace(
            self,
            distance=self.distance * factor,
            centre=(self.width / 2 + (u0 - self.width / 2) / factor, v0),
        )

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        return points @ self.rotation.T + self.offset

    def to_image(self, cam: np.ndarray) -> np.ndarray:
        """Normalised image coordinates (..., 2): x = u/width, y = v/height."""
        depth = np.maximum(cam[..., 2], 0.05)
        u = self.focal * cam[..., 0] / depth + self.width / 2
        v = self.focal * cam[..., 1] / depth + self.height / 2
        return np.stack([u / self.width, v / self.height], axis=-1)

    def body_z(self, cam: np.ndarray, hip_depth: np.ndarray) -> np.ndarray:
        """Depth relative to the hip centre, in x's scale at the hips (MediaPipe Pose's z)."""
        scale = self.focal / (self.width * hip_depth)
        return self.z_gain * (cam[..., 2] - hip_depth[:, None]) * scale[:, None]

    def hand_z(self, cam: np.ndarray) -> np.ndarray:
        """Depth relative to the wrist, in x's scale at the wrist (MediaPipe Hands' z): (T, 2, 21)."""
        wrist = cam[..., :1, 2]
        return self.hand_z_gain * (cam[..., 2] - wrist) * self.focal / (self.width * wrist)


def sample_camera(rng: np.random.Generator, subject: Subject) -> Camera:
    """A webcam or robot camera 0.6-3.5 m away with the subject's shoulders and head inside the frame."""
    width, height = (640, 480) if rng.random() < 0.65 else (1280, 720)
    focal = width / 2 / np.tan(np.radians(rng.uniform(55.0, 75.0)) / 2)
    distance = float(np.exp(rng.uniform(np.log(0.6), np.log(3.5))))
    yaw, pitch = np.radians(rng.uniform(-25.0, 25.0)), np.radians(rng.uniform(-8.0, 8.0))
    rotation = _rotation(0, pitch) @ _rotation(1, yaw)
    px_per_m = focal / distance
    v_low = max(0.22 * height, 0.34 * subject.head * px_per_m + 0.03 * height)
    v0 = rng.uniform(v_low, max(v_low, 0.6 * height))
    u_span = max(0.0, width / 2 - 0.55 * px_per_m)
    u0 = width / 2 + rng.uniform(-u_span, u_span)
    return Camera(
        width, height, float(focal), rotation, distance, (u0, v0), np.array([0.0, -subject.torso, 0.0]),
        z_gain=float(rng.uniform(3.0, 5.0)), hand_z_gain=float(rng.uniform(0.6, 1.0)),
    )  # fmt: skip


@dataclass(frozen=True)
class EstimatorStyle:
    """How strongly the simulated pose estimator perturbs one sequence (lighting, blur, clutter)."""

    body_jitter: float  # std of body jitter, fraction of the shoulder width
    hand_jitter: float  # std of hand jitter, fraction of the hand size (wrist to middle knuckle)
    spike_rate: float  # chance per joint and frame of a jitter spike
    drop_rate: float  # base chance per frame that a tracked hand is lost
    recover_rate: float  # chance per frame that a lost hand is found again
    hand_confidence: float  # typical hand score


def sample_style(rng: np.random.Generator) -> EstimatorStyle:
    """A random estimator quality, tuned on MediaPipe Holistic's sign recordings (docs/synthetic_data.md)."""
    return EstimatorStyle(
        body_jitter=float(rng.uniform(0.001, 0.004)), hand_jitter=float(rng.uniform(0.006, 0.018)),
        spike_rate=float(rng.uniform(0.001, 0.006)), drop_rate=float(rng.uniform(0.005, 0.03)),
        recover_rate=float(rng.uniform(0.2, 0.5)), hand_confidence=float(rng.uniform(0.75, 0.97)),
    )  # fmt: skip


# --------------------------------------------------------------------------------------------------
# Arm poses and gesture timing
# --------------------------------------------------------------------------------------------------

# Arm pose vector, authored for a right arm: wrist relative to the shoulder (m), finger direction,
# palm direction, elbow direction hint, hand shape. The left arm is the mirror image of a right arm.
WRIST, AXIS, NORMAL, ELBOW, SHAPE = slice(0, 3), slice(3, 6), slice(6, 9), slice(9, 12), slice(12, 24)
POSE_SIZE = 24


def arm_pose(
    wrist: np.ndarray, axis: np.ndarray, normal: np.ndarray, elbow: np.ndarray, shape: np.ndarray
) -> np.ndarray:
    """Pack one arm pose (see WRIST..SHAPE) into the vector that keyframes interpolate."""
    return np.concatenate([wrist, axis, normal, elbow, shape]).astype(float)


# Hand orientations as (finger direction, palm direction) for a right arm.
ORIENTATIONS: dict[str, tuple[np.ndarray, np.ndarray]] = {
    "neutral": (_v(-0.2, 0.0, 1.0), _v(-1.0, 0.0, 0.0)),  # handshake: fingers forward, thumb up
    "palm_forward": (_v(0.0, 1.0, 0.15), _v(0.0, 0.0, 1.0)),
    "thumb_up": (_v(-0.3, 0.3, 1.0), _v(-1.0, 0.0, 0.0)),
    "thumb_down": (_v(-0.3, 0.3, 1.0), _v(1.0, 0.0, 0.0)),
    "palm_down": (_v(-0.2, 0.25, 1.0), _v(0.0, -1.0, 0.0)),
    "pointing": (_v(0.6, 0.15, 1.0), _v(0.0, -1.0, 0.0)),  # palm down, towards the front and outwards
    "palm_up": (_v(-0.2, 0.2, 1.0), _v(0.0, 1.0, 0.0)),
}


@dataclass(frozen=True)
class Timing:
    """Phases of one gesture in seconds: idle lead-in, rise, hold (the stroke), return, idle lead-out."""

    lead_in: float
    rise: float
    hold: float
    retract: float
    lead_out: float

    @property
    def marks(self) -> tuple[float, float, float, float]:
        """Start of the rise, start and end of the hold, end of the return."""
        t0 = self.lead_in
        return t0, t0 + self.rise, t0 + self.rise + self.hold, t0 + self.rise + self.hold + self.retract

    @property
    def total(self) -> float:
        return self.marks[3] + self.lead_out

    def fitted(self, duration: float, rng: np.random.Generator) -> Timing:
        """The same gesture squeezed into, or padded with idle time to, exactly ``duration`` seconds."""
        if duration <= self.total:
            k = duration / self.total
            return Timing(*(k * p for p in (self.lead_in, self.rise, self.hold, self.retract, self.lead_out)))
        extra = duration - self.total
        share = rng.uniform(0.2, 0.8)
        return replace(
            self, lead_in=self.lead_in + share * extra, lead_out=self.lead_out + (1 - share) * extra
        )


_HOLD_SECONDS: dict[str, tuple[float, float]] = {
    "idle": (1.0, 2.5), "wave": (1.0, 2.2), "hello": (0.7, 1.2), "thanks": (0.7, 1.2),
    "stop": (0.6, 1.5), "come_here": (1.2, 2.2), "clap": (1.0, 2.2), "fidget": (1.5, 3.0),
    **dict.fromkeys(SHARED_ARM_CLASSES, (0.6, 1.6)),
}  # fmt: skip


def sample_timing(name: str, rng: np.random.Generator) -> Timing:
    """Onset, speed and duration of one performance; a faster performer shortens every moving phase."""
    speed = rng.uniform(0.75, 1.35)
    low, high = _HOLD_SECONDS[name]
    return Timing(
        lead_in=float(rng.uniform(0.1, 0.8)), rise=float(rng.uniform(0.35, 0.7) / speed),
        hold=float(rng.uniform(low, high) / speed), retract=float(rng.uniform(0.35, 0.8) / speed),
        lead_out=float(rng.uniform(0.1, 0.8)),
    )  # fmt: skip


@dataclass
class Motion:
    """What a class's motion builder gets: the time grid, timing, subject and random streams."""

    t: np.ndarray  # (T,) seconds from the start of this gesture
    timing: Timing
    subject: Subject
    rest: np.ndarray  # the subject's rest pose (right arm)
    amplitude: float  # how big the performer makes the movement, about 0.75-1.25
    rng: np.random.Generator  # arm motion
    shape_rng: np.random.Generator  # hand shape and orientation only

    @property
    def scale(self) -> float:
        """Offsets are authored for a 0.54 m arm and scale with the subject's reach."""
        return self.subject.reach / 0.54

    def via(self, pose: np.ndarray, orientation: str = "neutral") -> np.ndarray:
        """Halfway between rest and ``pose``, a little forward of the body, with a neutral hand.

        Passing through a neutral orientation keeps finger and palm directions from being interpolated
        through their opposites (which would flip the hand).
        """
        out = 0.5 * (self.rest + pose)
        out[WRIST] += _v(0.0, 0.0, 0.08 * self.scale)
        out[AXIS], out[NORMAL] = ORIENTATIONS[orientation]
        return out

    def stroke(self, poses: Sequence[np.ndarray], via: str = "neutral") -> np.ndarray:
        """Arm track: rest, rise through ``via`` to poses[0], move through the poses during the hold,
        return through ``via`` to rest. Returns (T, POSE_SIZE)."""
        t0, t1, t2, t3 = self.timing.marks
        keys = [(0.0, self.rest), (t0, self.rest), ((t0 + t1) / 2, self.via(poses[0], via))]
        keys += [(t1 + (t2 - t1) * i / max(len(poses) - 1, 1), p) for i, p in enumerate(poses)]
        if len(poses) == 1:
            keys.append((t2, poses[0]))
        keys += [((t2 + t3) / 2, self.via(poses[-1], via)), (t3, self.rest), (max(self.t[-1], t3), self.rest)]
        return interpolate_keys(keys, self.t)

    def hold_wave(self, cycles: float, ramp: float = 0.15) -> np.ndarray:
        """sin() running ``cycles`` times over the hold, faded in and out over ``ramp`` seconds."""
        _, t1, t2, _ = self.timing.marks
        s = (self.t - t1) / max(t2 - t1, 1e-6)
        fade = _smoothstep((self.t - t1) / ramp) * _smoothstep((t2 - self.t) / ramp)
        return fade * np.sin(2.0 * np.pi * cycles * s)

    def hold_pulses(self, count: int) -> np.ndarray:
        """|sin| with ``count`` humps over the hold and zeros at its ends (claps, finger curls)."""
        _, t1, t2, _ = self.timing.marks
        s = np.clip((self.t - t1) / max(t2 - t1, 1e-6), 0.0, 1.0)
        return np.abs(np.sin(np.pi * count * s))

    def cycles(self, low_hz: float, high_hz: float, minimum: int = 2) -> int:
        """A whole number of repetitions that fits the hold at a natural rate."""
        return max(minimum, round(self.timing.hold * self.rng.uniform(low_hz, high_hz)))


def rest_pose(subject: Subject, rng: np.random.Generator) -> np.ndarray:
    """Arms hanging at the sides, or hands held together in front of the belly; hand relaxed."""
    k, relaxed = subject.reach / 0.54, SHAPES["relaxed"]
    if subject.rest_style == "sides":
        wrist = _v(rng.uniform(0.04, 0.09), -0.96 * subject.reach, rng.uniform(0.0, 0.06))
        return arm_pose(wrist, _v(0.05, -1.0, 0.05), _v(-1.0, 0.0, 0.0), _v(0.15, 0.0, -1.0), relaxed)
    wrist = _v(-(subject.shoulder_half - 0.06), -0.36 * k, rng.uniform(0.14, 0.2) * k)
    return arm_pose(wrist, _v(-1.0, -0.4, 0.3), _v(0.0, 0.3, -1.0), _v(0.4, -1.0, -0.2), relaxed)


# --------------------------------------------------------------------------------------------------
# The classes' motions. Each builder returns (dominant arm, other arm) tracks (T, POSE_SIZE), both
# authored as right arms. ``None`` for the other arm means it stays at rest.
# --------------------------------------------------------------------------------------------------

ArmTracks = tuple[np.ndarray, np.ndarray | None]


def _oriented(
    wrist: np.ndarray, orientation: str, elbow: np.ndarray, shape: str, rng: np.random.Generator
) -> np.ndarray:
    """A pose with a named hand orientation and shape, both slightly varied by ``rng``."""
    axis, normal = ORIENTATIONS[orientation]
    axis = axis + rng.normal(0.0, 0.12, 3)
    normal = normal + rng.normal(0.0, 0.12, 3)
    return arm_pose(wrist, axis, normal, elbow, jitter_shape(SHAPES[shape], rng))


def _idle(m: Motion) -> ArmTracks:
    """Mostly still; half the time one hand drifts a little (adjusting clothes, shifting weight)."""
    still = np.tile(m.rest, (len(m.t), 1))
    if m.rng.random() < 0.5:
        return still, None
    drift = m.rest.copy()
    drift[WRIST] += _v(m.rng.uniform(-0.05, 0.05), m.rng.uniform(0.04, 0.12), m.rng.uniform(0.02, 0.1))
    drift[SHAPE] = jitter_shape(SHAPES["relaxed"], m.shape_rng)
    track = interpolate_keys([(0.0, m.rest), (m.timing.marks[0], m.rest), (m.timing.marks[1], drift),
                              (m.timing.marks[2], drift), (m.timing.marks[3], m.rest)], m.t)  # fmt: skip
    return (track, None) if m.rng.random() < 0.5 else (still, track)


def _wave(m: Motion) -> ArmTracks:
    """Open hand beside the head, swung from side to side at least twice."""
    k, r = m.scale, m.rng
    wrist = _v(r.uniform(0.08, 0.2), r.uniform(0.12, 0.3), r.uniform(0.05, 0.18)) * k
    pose = _oriented(wrist, "palm_forward", _v(0.7, -1.0, -0.1), "open", m.shape_rng)
    track = m.stroke([pose])
    swing = m.hold_wave(m.cycles(1.5, 2.8)) * m.amplitude
    track[:, WRIST] += swing[:, None] * _v(r.uniform(0.05, 0.1) * k, 0.0, 0.0)
    track[:, AXIS] += swing[:, None] * _v(0.5, 0.0, 0.0)
    return track, None


def _face_point(subject: Subject, up: float, fwd: float, left: float = 0.0) -> np.ndarray:
    """A point on the face (up/forward of the shoulder line), relative to the right shoulder."""
    point = np.array([left, -subject.torso - up * subject.head, -fwd * subject.head])
    return point - subject.shoulder("right")


def _touching(pose: np.ndarray, target: np.ndarray, subject: Subject, landmark: int) -> np.ndarray:
    """``pose`` with the wrist moved so that hand landmark ``landmark`` lands on ``target``."""
    frame = hand_frame(pose[None, AXIS], pose[None, NORMAL])[0]
    out = pose.copy()
    out[WRIST] = target - subject.hand * frame @ hand_local(pose[None, SHAPE])[0, landmark]
    return out


def _hello(m: Motion) -> ArmTracks:
    """Index fingertip to the right side of the forehead, palm out, then away from the head."""
    k, a = m.scale, m.amplitude
    start = _oriented(np.zeros(3), "palm_forward", _v(1.0, -0.3, 0.2), "flat", m.shape_rng)
    start[AXIS] = _unit(_v(-0.75, 0.65, 0.0) + m.rng.normal(0.0, 0.08, 3))
    start = _touching(start, _face_point(m.subject, up=0.28, fwd=0.1, left=-0.035), m.subject, landmark=8)
    end = start.copy()
    end[WRIST] += _v(m.rng.uniform(0.1, 0.18) * a, 0.03, m.rng.uniform(0.1, 0.2) * a) * k
    end[AXIS] = _v(-0.3, 0.8, 0.35)
    return m.stroke([start, start, end]), None


def _thanks(m: Motion) -> ArmTracks:
    """Middle fingertip at the chin, palm towards the face, then forwards and down ending palm up."""
    k, a = m.scale, m.amplitude
    axis = _unit(_v(-0.25, 1.0, 0.1) + m.rng.normal(0.0, 0.08, 3))
    start = arm_pose(np.zeros(3), axis, _v(0.0, 0.0, -1.0), _v(0.5, -1.0, 0.0),
                     jitter_shape(SHAPES["flat"], m.shape_rng))  # fmt: skip
    start = _touching(start, _face_point(m.subject, up=0.105, fwd=0.11), m.subject, landmark=12)
    end_wrist = _v(m.rng.uniform(-0.08, 0.02), m.rng.uniform(-0.2, -0.08), m.rng.uniform(0.3, 0.42) * a) * k
    end = arm_pose(end_wrist, _v(-0.1, 0.3, 1.0), _v(0.0, 1.0, 0.0), _v(0.5, -1.0, 0.0), start[SHAPE])
    return m.stroke([start, start, end]), None


# (orientation, hand shape, orientation passed on the way up and down) of the shared-arm classes
_SHARED_HANDS: dict[str, tuple[str, str, str]] = {
    "i_love_you": ("palm_forward", "ily", "neutral"),
    "thumbs_up": ("thumb_up", "thumb", "neutral"),
    "thumbs_down": ("thumb_down", "thumb", "palm_down"),
    "ok_sign": ("palm_forward", "ok", "neutral"),
    "victory_sign": ("palm_forward", "victory", "neutral"),
    "pointing": ("pointing", "point", "neutral"),
}


def _shared_arm(name: str) -> Callable[[Motion], ArmTracks]:
    """Builder for one hand-shape class: the arm part uses only ``m.rng`` and never looks at ``name``."""
    orientation, shape, via = _SHARED_HANDS[name]

    def build(m: Motion) -> ArmTracks:
        k, r = m.scale, m.rng
        wrist = _v(r.uniform(0.0, 0.1), r.uniform(-0.04, 0.12), r.uniform(0.22, 0.34)) * k
        pose = _oriented(wrist, orientation, _v(0.5, -1.0, -0.2), shape, m.shape_rng)
        track = m.stroke([pose], via=via)
        bob = m.hold_wave(r.uniform(0.5, 1.5) * m.timing.hold) * m.amplitude
        track[:, WRIST] += bob[:, None] * _v(0.0, r.uniform(0.005, 0.02), r.uniform(0.005, 0.02)) * k
        return track, None

    return build


def _stop(m: Motion) -> ArmTracks:
    """Arm pushed forwards to most of its reach, fingers up, palm towards the camera."""
    k, r = m.scale, m.rng
    wrist = _v(r.uniform(-0.04, 0.06), r.uniform(-0.08, 0.06), r.uniform(0.4, 0.46)) * k
    pose = _oriented(wrist, "palm_forward", _v(0.6, -1.0, 0.0), "flat" if r.random() < 0.5 else "open",
                     m.shape_rng)  # fmt: skip
    pushed = pose.copy()
    pushed[WRIST] += _v(0.0, 0.0, r.uniform(0.0, 0.04) * m.amplitude * k)
    return m.stroke([pose, pushed]), None


def _come_here(m: Motion) -> ArmTracks:
    """Palm up in front of the body; the fingers (all, or the index alone) curl in at least twice."""
    k, r = m.scale, m.rng
    wrist = _v(r.uniform(-0.04, 0.06), r.uniform(-0.25, -0.1), r.uniform(0.26, 0.36)) * k
    track = m.stroke([_oriented(wrist, "palm_up", _v(0.3, -1.0, -0.4), "beckon", m.shape_rng)])
    curl = m.hold_pulses(m.cycles(1.3, 2.4)) * np.clip(m.amplitude, 0.8, 1.2)
    fingers = np.arange(4) if m.shape_rng.random() < 0.5 else np.array([0])
    track[:, SHAPE][:, fingers] += 0.7 * curl[:, None]  # MCP flexion
    track[:, SHAPE][:, 4 + fingers] += 0.8 * curl[:, None]  # PIP/DIP curl
    track[:, AXIS] += curl[:, None] * _v(0.0, 0.25, 0.0)  # a little wrist flick along
    return track, None


def _clap(m: Motion) -> ArmTracks:
    """Both hands meet in front of the chest, then open and meet again, three times or more."""
    k, r = m.scale, m.rng
    wrist = _v(-(m.subject.shoulder_half - 0.02), r.uniform(-0.22, -0.05), r.uniform(0.25, 0.35) * k)
    pose = _oriented(wrist, "neutral", _v(0.8, -1.0, -0.2), "flat", m.shape_rng)
    pose[AXIS] = _unit(_v(-0.1, 0.6, 1.0))
    track = m.stroke([pose])
    gap = r.uniform(0.05, 0.1) * m.amplitude  # how far each hand opens, metres
    opening = m.hold_pulses(m.cycles(2.0, 3.5, minimum=3))[:, None] * _v(gap, 0.0, 0.0)
    other = track.copy()
    track[:, WRIST] += opening
    other[:, WRIST] += opening * r.uniform(0.8, 1.2)
    return track, other


def _wander(m: Motion, rng: np.random.Generator) -> np.ndarray:
    """One arm through 2-5 random poses during the hold, moving all the time (no pose is held)."""
    k = m.scale
    poses = []
    for _ in range(int(rng.integers(2, 6))):
        wrist = _v(rng.uniform(-0.35, 0.45), rng.uniform(-0.55, 0.35), rng.uniform(0.0, 0.45)) * k
        orientation = str(rng.choice(list(ORIENTATIONS)))
        shape = str(rng.choice(["relaxed", "flat", "open", "fist"]))
        poses.append(_oriented(wrist, orientation, _v(rng.uniform(0.2, 1.0), -1.0, -0.1), shape, m.shape_rng))
    return m.stroke(poses)


def _fidget(m: Motion) -> ArmTracks:
    """No gesture at all: stretching, gesticulating while talking, scratching, reaching."""
    dominant = _wander(m, m.rng)
    return dominant, _wander(m, m.rng) if m.rng.random() < 0.6 else None


MOTIONS: dict[str, Callable[[Motion], ArmTracks]] = {
    "idle": _idle, "wave": _wave, "hello": _hello, "thanks": _thanks, "stop": _stop,
    "come_here": _come_here, "clap": _clap, "fidget": _fidget,
    **{name: _shared_arm(name) for name in SHARED_ARM_CLASSES},
}  # fmt: skip


# --------------------------------------------------------------------------------------------------
# The 3D skeleton: static body points, posture sway, arms by inverse kinematics, hands
# --------------------------------------------------------------------------------------------------

_FACE = ("nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
         "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right")  # fmt: skip
_LEGS = tuple(
    n for n in MP33.joint_names if n.split("_", 1)[-1] in ("hip", "knee", "ankle", "heel", "foot_index")
)
_SIDE_SWAP = np.array(
    [
        MP33.index(n.replace("left", "@").replace("right", "left").replace("@", "right"))
        for n in MP33.joint_names
    ]
)


def _static_points(s: Subject) -> dict[str, np.ndarray]:
    """Face, shoulders, hips and legs in the body frame, before posture (subject's left = +x)."""
    top, h = -s.torso, s.head

    def face(left: float, up: float, fwd: float) -> np.ndarray:
        return np.array([left * h, top - up * h, -fwd * h])

    points = {"nose": face(0.0, 0.20, 0.10)}
    for side, sign in (("left", 1.0), ("right", -1.0)):
        ankle = np.array([sign * (s.hip_half - 0.01), s.thigh + s.shin, 0.02])
        points |= {
            f"{side}_eye_inner": face(sign * 0.016, 0.235, 0.075),
            f"{side}_eye": face(sign * 0.032, 0.238, 0.07),
            f"{side}_eye_outer": face(sign * 0.048, 0.235, 0.062),
            f"{side}_ear": face(sign * 0.075, 0.215, 0.0),
            f"mouth_{side}": face(sign * 0.026, 0.16, 0.085),
            f"{side}_shoulder": s.shoulder(side),
            f"{side}_hip": np.array([sign * s.hip_half, 0.0, 0.0]),
            f"{side}_knee": np.array([sign * (s.hip_half - 0.005), s.thigh, -0.01]),
            f"{side}_ankle": ankle,
            f"{side}_heel": ankle + np.array([0.0, 0.05, 0.05]),
            f"{side}_foot_index": ankle + np.array([sign * 0.02, 0.07, -0.14]),
        }
    return points


@dataclass(frozen=True)
class Posture:
    """Slow whole-body motion while standing: torso lean and twist, head turn, weight shift."""

    torso: np.ndarray  # (T, 3, 3) rotation of the upper body about the hip centre
    head: np.ndarray  # (T, 3, 3) rotation of the face about the neck
    shift: np.ndarray  # (T, 3) metres


def sample_posture(rng: np.random.Generator, subject: Subject, t: np.ndarray) -> Posture:
    """Slow random sway over the times ``t``: a few degrees of torso lean and twist, head turns, and a
    centimetre or two of weight shift."""
    pitch = subject.lean + smooth_wiggle(rng, t, 0.015, 0.4)
    torso = _rotation(1, smooth_wiggle(rng, t, 0.03, 0.4)) @ _rotation(2, smooth_wiggle(rng, t, 0.015, 0.4))
    head_yaw = rng.uniform(-0.15, 0.15) + smooth_wiggle(rng, t, 0.06, 0.5)
    head_pitch = rng.uniform(-0.1, 0.1) + smooth_wiggle(rng, t, 0.04, 0.5)
    shift = np.stack(
        [smooth_wiggle(rng, t, 0.012, 0.3), np.zeros_like(t), smooth_wiggle(rng, t, 0.008, 0.3)], -1
    )
    return Posture(torso @ _rotation(0, pitch), _rotation(1, head_yaw) @ _rotation(0, head_pitch), shift)


def solve_elbow(
    shoulder: np.ndarray, wrist: np.ndarray, upper: float, fore: float, hint: np.ndarray
) -> np.ndarray:
    """Two-link inverse kinematics: the elbow (T, 3) on the circle of solutions, towards ``hint``."""
    d = wrist - shoulder
    dist = np.linalg.norm(d, axis=-1, keepdims=True)
    n = d / dist
    a = (upper**2 - fore**2 + dist**2) / (2 * dist)
    r = np.sqrt(np.maximum(upper**2 - a**2, 0.0))
    side = hint - (hint * n).sum(-1, keepdims=True) * n
    fallback = np.cross(n, [0.0, 0.0, 1.0])
    side = np.where(np.linalg.norm(side, axis=-1, keepdims=True) < 1e-6, fallback, side)
    return shoulder + a * n + r * _unit(side)


def _reachable(rel: np.ndarray, subject: Subject) -> np.ndarray:
    """Wrist offsets pulled into the ring the arm can reach (never fully straight, never folded)."""
    dist = np.linalg.norm(rel, axis=-1, keepdims=True)
    low, high = abs(subject.upper_arm - subject.forearm) + 0.03, 0.995 * subject.reach
    return rel / np.maximum(dist, 1e-9) * np.clip(dist, low, high)


def _solve_arm(track: np.ndarray, subject: Subject) -> dict[str, np.ndarray]:
    """Elbow, wrist, the 21 hand landmarks and Pose's 3 coarse hand points of a right arm."""
    shoulder = subject.shoulder("right")
    wrist = shoulder + _reachable(track[:, WRIST], subject)
    elbow = solve_elbow(shoulder, wrist, subject.upper_arm, subject.forearm, track[:, ELBOW])
    frame = hand_frame(track[:, AXIS], track[:, NORMAL])
    hand = wrist[:, None] + subject.hand * np.einsum("tij,tnj->tni", frame, hand_local(track[:, SHAPE]))
    coarse = wrist[:, None] + subject.hand * _coarse_hand(frame)
    return {"elbow": elbow, "wrist": wrist, "hand": hand, "pinky": coarse[:, 0], "index": coarse[:, 1],
            "thumb": coarse[:, 2]}  # fmt: skip


def _coarse_hand(frame: np.ndarray) -> np.ndarray:
    """Pose's pinky, index and thumb points (T, 3, 3) relative to the wrist, in hand lengths: the hand's
    finger direction, but the palm turned to face inwards whatever the hand's real roll."""
    distal = frame[..., 0]
    inwards = _v(-1.0, 0.0, 0.0)
    along = (distal @ inwards)[:, None] ** 2  # fingers pointing inwards: face the palm backwards instead
    rolled = hand_frame(distal, inwards + 2.0 * along * _v(0.0, 0.0, -1.0))
    return np.einsum("tij,nj->tni", rolled, _COARSE_HAND)


def _mirrored(points: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    flip = np.array([-1.0, 1.0, 1.0])
    return {name: value * flip for name, value in points.items()}


def skeleton_3d(
    subject: Subject, dominant: np.ndarray, other: np.ndarray, posture: Posture
) -> tuple[np.ndarray, np.ndarray]:
    """Body (T, 33, 3) and hands (T, 2, 21, 3) in metres in the body frame, slot 0 = left hand.

    Both arm tracks are right-arm tracks; ``other`` is mirrored onto the left side. A left-handed
    subject is then mirrored as a whole, so their dominant hand is the left one, in slot 0.
    """
    n = len(dominant)
    points = {name: np.broadcast_to(p, (n, 3)) for name, p in _static_points(subject).items()}
    neck = np.array([0.0, -subject.torso - 0.08 * subject.head, 0.0])
    for name in _FACE:
        points[name] = neck + np.einsum("tij,tj->ti", posture.head, points[name] - neck)
    arms = {"right": _solve_arm(dominant, subject), "left": _mirrored(_solve_arm(other, subject))}
    for side, arm in arms.items():
        points |= {f"{side}_{part}": arm[part] for part in ("elbow", "wrist", "pinky", "index", "thumb")}
    body = np.stack([points[name] for name in MP33.joint_names], axis=1)
    hands = np.stack([arms["left"]["hand"], arms["right"]["hand"]], axis=1)
    upper = np.array([name not in _LEGS for name in MP33.joint_names])
    body[:, upper] = np.einsum("tij,tnj->tni", posture.torso, body[:, upper])
    hands = np.einsum("tij,tsnj->tsni", posture.torso, hands)
    body, hands = body + posture.shift[:, None], hands + posture.shift[:, None, None]
    if subject.left_handed:
        body, hands = body[:, _SIDE_SWAP] * [-1.0, 1.0, 1.0], hands[:, ::-1] * [-1.0, 1.0, 1.0]
    return body, hands


# --------------------------------------------------------------------------------------------------
# What a pose estimator makes of it: scores, occlusion, jitter, spikes, hand dropouts
# --------------------------------------------------------------------------------------------------

_BASE_VISIBILITY = np.array(
    [0.995] * 11 + [0.99, 0.99, 0.96, 0.96, 0.92, 0.92] + [0.85] * 6 + [0.97, 0.97] + [0.94] * 8
)
_PALM = [0, 5, 9, 13, 17]
_HAND_POINTS_OF_SLOT = [
    [MP33.index(f"{side}_{part}") for part in ("wrist", "pinky", "index", "thumb")]
    for side in ("left", "right")
]
_ARM_JOINTS = [
    MP33.index(f"{s}_{p}") for s in ("left", "right") for p in ("elbow", "wrist", "pinky", "index", "thumb")
]


def _inside_frame(xy: np.ndarray) -> np.ndarray:
    """About 1 well inside the image, 0.7 on its border, near 0 a few percent outside."""
    margin = np.minimum(np.minimum(xy[..., 0], 1 - xy[..., 0]), np.minimum(xy[..., 1], 1 - xy[..., 1]))
    return 1.0 / (1.0 + np.exp(-(margin + 0.01) / 0.012))


@dataclass(frozen=True)
class _View:
    """Clean (noise-free) projection of one sequence, in pixels and camera-frame metres."""

    body_px: np.ndarray  # (T, 33, 2)
    body_depth: np.ndarray  # (T, 33)
    hands_px: np.ndarray  # (T, 2, 21, 2)
    hands_depth: np.ndarray  # (T, 2, 21)
    palm_px: np.ndarray  # (T, 2, 2)
    palm_depth: np.ndarray  # (T, 2)
    hand_px: np.ndarray  # (T, 2) hand size: wrist to middle knuckle in pixels, seen face-on
    shoulder_px: float  # median shoulder width in pixels


def _view(body_cam: np.ndarray, hands_cam: np.ndarray, camera: Camera) -> _View:
    px = np.array([camera.width, camera.height], dtype=float)
    body_px, hands_px = camera.to_image(body_cam) * px, camera.to_image(hands_cam) * px
    shoulders = np.linalg.norm(body_px[:, 11] - body_px[:, 12], axis=-1)
    # apparent hand size from the 3D palm length, so a foreshortened hand does not count as a far one
    palm_m = np.linalg.norm(hands_cam[:, :, 9] - hands_cam[:, :, 0], axis=-1)
    hand_px = palm_m * camera.focal / np.maximum(hands_cam[:, :, 0, 2], 0.05)
    return _View(
        body_px, body_cam[..., 2], hands_px, hands_cam[..., 2], hands_px[:, :, _PALM].mean(2),
        hands_cam[:, :, _PALM, 2].mean(2), hand_px, float(np.median(shoulders)),
    )  # fmt: skip


def _behind_hand(view: _View, points_px: np.ndarray, depth: np.ndarray, slot: int) -> np.ndarray:
    """Points (T, N) hidden behind hand ``slot``'s palm: close to it in the image and farther away."""
    near = (
        np.linalg.norm(points_px - view.palm_px[:, slot, None], axis=-1) < 0.8 * view.hand_px[:, slot, None]
    )
    return near & (depth > view.palm_depth[:, slot, None] + 0.03)


def _behind_torso(view: _View) -> np.ndarray:
    """Arm joints (T, 33) inside the torso's image box and behind the torso (a yawed far arm)."""
    corners = view.body_px[:, [11, 12, 23, 24]]
    low, high = corners.min(1)[:, None], corners.max(1)[:, None]
    inside = np.all((view.body_px > low) & (view.body_px < high), axis=-1)
    behind = view.body_depth > view.body_depth[:, [11, 12, 23, 24]].mean(1, keepdims=True) + 0.06
    mask = np.zeros(inside.shape, bool)
    mask[:, _ARM_JOINTS] = True
    return inside & behind & mask


def _body_visibility(view: _View, xy: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """MediaPipe-like visibility (T, 33): high in view, low outside the frame and when occluded."""
    occluded = _behind_torso(view)
    for slot in (0, 1):
        hidden = _behind_hand(view, view.body_px, view.body_depth, slot)
        hidden[:, _HAND_POINTS_OF_SLOT[slot]] = False
        occluded |= hidden
    vis = (
        _BASE_VISIBILITY * _inside_frame(xy) * np.where(occluded, rng.uniform(0.15, 0.5, occluded.shape), 1.0)
    )
    return np.clip(vis + rng.normal(0.0, 0.015, vis.shape), 0.0, 1.0)


def _hand_scores(view: _View, style: EstimatorStyle, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per-landmark hand scores (T, 2, 21): the hand's confidence, lower for hidden landmarks."""
    confidence = np.stack([style.hand_confidence + smooth_wiggle(rng, t, 0.04, 1.0) for _ in range(2)], -1)
    scores = np.clip(confidence, 0.3, 1.0)[..., None] * np.ones(view.hands_depth.shape)
    for slot in (0, 1):
        own = _behind_hand(view, view.hands_px[:, slot], view.hands_depth[:, slot] - 0.02, slot)
        other = _behind_hand(view, view.hands_px[:, slot], view.hands_depth[:, slot], 1 - slot)
        scores[:, slot] *= np.where(own, 0.6, 1.0) * np.where(other, 0.6, 1.0)
    return scores


def _per_frame(p: np.ndarray, fps: float) -> np.ndarray:
    """A per-frame probability defined at 30 fps, converted to ``fps``."""
    return 1.0 - (1.0 - np.clip(p, 0.0, 1.0)) ** (30.0 / fps)


def hand_loss_rates(
    hand_px: np.ndarray, speed: np.ndarray, low: np.ndarray, style: EstimatorStyle, fps: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame chances that a tracked hand is lost and that a lost one is found again.

    ``hand_px`` is the hand size (wrist to middle knuckle) in pixels, ``speed`` the wrist speed in
    hand sizes per second, ``low`` whether the hand hangs below the hips. Losing gets likelier for
    small (far) hands, fast hands (blur) and hanging hands; small hands are also found again later.
    """
    small = np.clip((30.0 - hand_px) / 18.0, 0.0, 1.0)
    fast = np.clip((speed - 3.0) / 9.0, 0.0, 1.0)
    lose = _per_frame(style.drop_rate + 0.1 * fast + 0.1 * small + 0.02 * low, fps)
    find = _per_frame(style.recover_rate * (1.0 - 0.6 * small), fps)
    return lose, find


def _hand_tracking(
    view: _View, hand_xy: np.ndarray, style: EstimatorStyle, fps: float, rng: np.random.Generator
) -> np.ndarray:
    """Which hands the estimator reports (T, 2): losses come in runs (see :func:`hand_loss_rates`),
    and a hand with less than 60% of its landmarks inside the image is never reported."""
    wrist = view.hands_px[:, :, 0]
    speed = (
        np.linalg.norm(np.diff(wrist, axis=0, prepend=wrist[:1]), axis=-1)
        * fps
        / np.maximum(view.hand_px, 1.0)
    )
    low = view.hands_px[:, :, 0, 1] > view.body_px[:, [23, 24], 1].mean(1)[:, None]
    lose, find = hand_loss_rates(view.hand_px, speed, low, style, fps)
    inside = np.all((hand_xy > 0.0) & (hand_xy < 1.0), axis=-1).mean(-1)
    visible = inside >= 0.6  # MediaPipe still reports a hand with a few landmarks past the border
    draws = rng.random(lose.shape)
    tracked = np.zeros(lose.shape, bool)
    state = np.ones(2, bool)
    for i in range(len(lose)):
        state = np.where(state, draws[i] >= lose[i], draws[i] < find[i])
        tracked[i] = state & visible[i]
    return tracked


def _ar1(rng: np.random.Generator, shape: tuple[int, ...], rho: float) -> np.ndarray:
    """Unit-variance noise correlated along axis 0 (estimators jitter smoothly, not white)."""
    white = rng.normal(size=shape)
    out = np.empty(shape)
    out[0] = white[0]
    for i in range(1, shape[0]):
        out[i] = rho * out[i - 1] + np.sqrt(1 - rho**2) * white[i]
    return out


def _spikes(rng: np.random.Generator, shape: tuple[int, ...], rate: float) -> np.ndarray:
    """Rare large offsets (units of 1), lasting one or two frames: (shape..., 3)."""
    hit = rng.random(shape) < rate
    hit |= np.roll(hit, 1, axis=0) & (rng.random(shape) < 0.5)
    return hit[..., None] * rng.normal(0.0, 1.0, (*shape, 3))


def _pixel_noise(noise_px: np.ndarray, camera: Camera, z_factor: float) -> np.ndarray:
    """Pixel-unit noise (..., 3) to normalised x, y and to z in x's scale."""
    return noise_px * np.array([1.0 / camera.width, 1.0 / camera.height, z_factor / camera.width])


def _body_noise(view: _View, style: EstimatorStyle, camera: Camera, rng: np.random.Generator) -> np.ndarray:
    """Jitter (T, 33, 3) in output units: correlated noise plus spikes of 5 to 12 sigma."""
    sigma = style.body_jitter * view.shoulder_px
    shape = view.body_depth.shape
    px = sigma * (
        _ar1(rng, (*shape, 3), 0.8) + rng.uniform(5.0, 12.0) * _spikes(rng, shape, style.spike_rate)
    )
    return _pixel_noise(px, camera, 3.0 * camera.z_gain)


def _hand_noise(view: _View, style: EstimatorStyle, camera: Camera, rng: np.random.Generator) -> np.ndarray:
    """Jitter (T, 2, 21, 3): per landmark, of the whole hand, a fixed offset from the Pose wrist, spikes."""
    sigma = (style.hand_jitter * np.maximum(view.hand_px, 4.0))[..., None, None]
    n, shape = len(view.hand_px), view.hands_depth.shape
    joint = _ar1(rng, (*shape, 3), 0.5) + rng.uniform(4.0, 8.0) * _spikes(rng, shape, 1.5 * style.spike_rate)
    whole = 0.7 * _ar1(rng, (n, 2, 1, 3), 0.8) + 8.0 * _spikes(rng, (n, 2, 1), 2 * style.spike_rate)
    bias = rng.normal(0.0, 0.15, (1, 2, 1, 3)) * view.hand_px[..., None, None] / sigma.clip(1e-6)
    return _pixel_noise(sigma * (joint + whole + bias), camera, 1.5 * camera.hand_z_gain)


def observe(
    body: np.ndarray, hands: np.ndarray, camera: Camera, style: EstimatorStyle, fps: float,
    rng: np.random.Generator,
) -> SkeletonSequence:  # fmt: skip
    """Film the 3D skeleton and degrade it the way a pose estimator does; returns the contract sequence."""
    n = len(body)
    t = np.arange(n) / fps
    body_cam, hands_cam = camera.to_camera(body), camera.to_camera(hands)
    view = _view(body_cam, hands_cam, camera)
    body_xy, hands_xy = camera.to_image(body_cam), camera.to_image(hands_cam)
    hip_depth = body_cam[:, [23, 24], 2].mean(1)
    body_out = np.concatenate([body_xy, camera.body_z(body_cam, hip_depth)[..., None]], -1)
    hands_out = np.concatenate([hands_xy, camera.hand_z(hands_cam)[..., None]], -1)
    vis, scores = _body_visibility(view, body_xy, rng), _hand_scores(view, style, t, rng)
    present = _hand_tracking(view, hands_xy, style, fps, rng)
    body_out += _body_noise(view, style, camera, rng)
    hands_out += _hand_noise(view, style, camera, rng)
    hands_out[..., 2] -= hands_out[..., :1, 2]  # hand depth stays relative to its (noisy) wrist
    body_arr = np.concatenate([body_out, vis[..., None]], -1)
    hands_arr = np.concatenate([hands_out, scores[..., None]], -1) * present[..., None, None]
    return SkeletonSequence(t, body_arr, hands_arr, present, image_size=(camera.width, camera.height))


# --------------------------------------------------------------------------------------------------
# Public API: one sample, a labelled set, a scripted continuous sequence
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SynthSample:
    """One generated sequence with its label and what was drawn for it."""

    sequence: SkeletonSequence
    class_name: str
    left_handed: bool
    hold: tuple[float, float]  # seconds: when the gesture's pose is held / its stroke happens
    seed: int | None = None  # per-sample seed when made by generate_dataset

    @property
    def label(self) -> int:
        return class_index(self.class_name)

    @property
    def hand_intensive(self) -> bool:
        return HAND_INTENSIVE[self.label]


@dataclass
class _Performer:
    """One person in front of one camera, and the independent random streams used to film them."""

    subject: Subject
    camera: Camera
    style: EstimatorStyle
    rest: np.ndarray
    other_rest: np.ndarray
    motion: np.random.Generator
    shape: np.random.Generator
    noise: np.random.Generator


def _performer(rng: np.random.Generator, left_handed: bool | None) -> _Performer:
    """Draws the person, camera and noise style; motion, hand shape and noise get separate streams so
    that classes differing only in the hand draw identical arm motion for the same seed."""
    motion, shape, noise = (np.random.default_rng(s) for s in rng.integers(0, 2**63, size=3))
    subject = sample_subject(motion, left_handed)
    camera = sample_camera(motion, subject)
    rest = rest_pose(subject, motion)
    other_rest = rest.copy()
    other_rest[WRIST] += motion.normal(0.0, 0.01, 3)
    return _Performer(subject, camera, sample_style(noise), rest, other_rest, motion, shape, noise)


def _gesture_tracks(
    name: str, who: _Performer, timing: Timing, t: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Dominant and other arm tracks (T, POSE_SIZE) of one class over the local time grid ``t``."""
    amplitude = who.motion.uniform(0.75, 1.25)
    motion = Motion(t, timing, who.subject, who.rest, amplitude, who.motion, who.shape)
    dominant, other = MOTIONS[name](motion)
    if other is None:
        other = np.tile(who.other_rest, (len(t), 1))
    return dominant, other


def keep_in_view(camera: Camera, points: np.ndarray, margin: float = 0.02) -> Camera:
    """Move the camera back (at most about 3x) until body-frame ``points`` (N, 3) are inside the image.

    A person filming a gesture frames it: very close cameras would otherwise often cut off the hand.
    """
    for _ in range(8):
        xy = camera.to_image(camera.to_camera(points))
        if np.all((xy > margin) & (xy < 1 - margin)):
            break
        camera = camera.moved_back(1.15)
    return camera


def _film(
    who: _Performer, dominant: np.ndarray, other: np.ndarray, fps: float, holding: np.ndarray
) -> SkeletonSequence:
    """Pose the body, frame the held gestures (frames ``holding``) and film; returns the sequence."""
    t = np.arange(len(dominant)) / fps
    posture = sample_posture(who.motion, who.subject, t)
    body, hands = skeleton_3d(who.subject, dominant, other, posture)
    waist = body[:, [11, 12, 23, 24], 1].mean(1)
    palms = hands[:, :, _PALM].mean(2)
    raised = holding[:, None] & (palms[..., 1] < waist[:, None])
    camera = keep_in_view(who.camera, hands[raised].reshape(-1, 3))
    return observe(body, hands, camera, who.style, fps, who.noise)


def generate_sample(
    class_name: str, rng: np.random.Generator, *, fps: float = 30.0, left_handed: bool | None = None
) -> SynthSample:
    """One performance of ``class_name``; deterministic for the state of ``rng``.

    ``left_handed`` forces the performer's handedness (None: drawn, about one in four is left-handed)
    without changing anything else that is drawn.
    """
    class_index(class_name)
    who = _performer(rng, left_handed)
    timing = sample_timing(class_name, who.motion)
    t = np.arange(max(8, round(timing.total * fps))) / fps
    dominant, other = _gesture_tracks(class_name, who, timing, t)
    _, t1, t2, _ = timing.marks
    holding = (t >= t1) & (t <= t2) & (class_name != "idle")
    sequence = _film(who, dominant, other, fps, holding)
    return SynthSample(sequence, class_name, who.subject.left_handed, (t1, t2))


def generate_sequence(class_name: str, rng: np.random.Generator, **options) -> SkeletonSequence:
    """Just the sequence of :func:`generate_sample`."""
    return generate_sample(class_name, rng, **options).sequence


def sample_seed(seed: int, label: int, index: int) -> int:
    """The seed of sample ``index`` of class ``label`` in a set made with ``seed``.

    Every sample has its own seed, so the first N samples of a class do not depend on how many are
    made, and a sample can be remade alone: ``generate_sample(name, np.random.default_rng(seed))``.
    """
    if min(seed, label, index) < 0:
        raise ValueError(f"seed, label and index must be >= 0, got {seed}, {label}, {index}")
    return int(np.random.SeedSequence([seed, label, index]).generate_state(1, np.uint64)[0])


def generate_dataset(
    per_class: int, seed: int, *, fps: float = 30.0, classes: Sequence[str] | None = None
) -> Iterator[SynthSample]:
    """``per_class`` samples of every class (class by class, in vocabulary order)."""
    for name in classes or CLASS_NAMES:
        label = class_index(name)
        for index in range(per_class):
            s = sample_seed(seed, label, index)
            yield replace(generate_sample(name, np.random.default_rng(s), fps=fps), seed=s)


def generate_scripted(
    script: Sequence[tuple[str, float]], rng: np.random.Generator, *, fps: float = 30.0,
    left_handed: bool | None = None,
) -> tuple[SkeletonSequence, list[Segment]]:  # fmt: skip
    """One person performing ``script``, a list of (class name, seconds), as one continuous sequence.

    Every gesture starts and ends at the same rest pose and posture sway runs across the joins, so the
    pieces stitch smoothly. A gesture longer than its segment is performed faster; a shorter one gets
    more idle time around it. Segments are contiguous and cover the sequence from 0 to its end.
    """
    if not script:
        raise ValueError("the script is empty; give at least one (class, seconds) segment")
    who = _performer(rng, left_handed)
    bounds = np.round(np.cumsum([0.0, *(float(d) for _, d in script)]) * fps).astype(int)
    tracks, segments, holding = [], [], []
    for (name, _), first, last in zip(script, bounds[:-1], bounds[1:], strict=True):
        class_index(name)
        if last <= first:
            raise ValueError(f"segment {name!r} is shorter than one frame at {fps} fps")
        t = np.arange(last - first) / fps
        timing = sample_timing(name, who.motion).fitted((last - first) / fps, who.motion)
        tracks.append(_gesture_tracks(name, who, timing, t))
        segments.append(Segment(first / fps, last / fps, name))
        _, t1, t2, _ = timing.marks
        holding.append((t >= t1) & (t <= t2) & (name != "idle"))
    dominant = np.concatenate([d for d, _ in tracks])
    other = np.concatenate([o for _, o in tracks])
    return _film(who, dominant, other, fps, np.concatenate(holding)), segments
