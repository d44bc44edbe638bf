"""The performer's body in 3D: proportions, posture sway, arms by inverse kinematics, hands.

Arms are driven by *arm pose* vectors (:data:`WRIST` .. :data:`SHAPE`), authored for a right arm; the
left arm is the mirror image of a right arm, and a left-handed performer is mirrored as a whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bharnet_ros.core.layouts import MP33
from bharnet_ros.training.synth.geometry import axis_rotation, smooth_wiggle, unit
from bharnet_ros.training.synth.hands import coarse_hand_points, hand_frame, hand_local


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


# Arm pose vector, authored for a right arm: wrist relative to the shoulder (m), finger direction,
# palm direction, elbow direction hint, hand shape. The left arm is the mirror image of a right arm.
# 24 values in all: the hand shape is the 12 of ``hands.MCP..THUMB``.
WRIST, AXIS, NORMAL, ELBOW, SHAPE = slice(0, 3), slice(3, 6), slice(6, 9), slice(9, 12), slice(12, 24)


def arm_pose(
    wrist: np.ndarray, axis: np.ndarray, normal: np.ndarray, elbow: np.ndarray, shape: np.ndarray
) -> np.ndarray:
    """Pack one arm pose (see WRIST..SHAPE) into the vector that keyframes interpolate."""
    return np.concatenate([wrist, axis, normal, elbow, shape]).astype(float)


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
    torso = axis_rotation(1, smooth_wiggle(rng, t, 0.03, 0.4)) @ axis_rotation(
        2, smooth_wiggle(rng, t, 0.015, 0.4)
    )
    head_yaw = rng.uniform(-0.15, 0.15) + smooth_wiggle(rng, t, 0.06, 0.5)
    head_pitch = rng.uniform(-0.1, 0.1) + smooth_wiggle(rng, t, 0.04, 0.5)
    shift = np.stack(
        [smooth_wiggle(rng, t, 0.012, 0.3), np.zeros_like(t), smooth_wiggle(rng, t, 0.008, 0.3)], -1
    )
    return Posture(
        torso @ axis_rotation(0, pitch), axis_rotation(1, head_yaw) @ axis_rotation(0, head_pitch), shift
    )


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
    return shoulder + a * n + r * unit(side)


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
    coarse = wrist[:, None] + subject.hand * coarse_hand_points(frame)
    return {"elbow": elbow, "wrist": wrist, "hand": hand, "pinky": coarse[:, 0], "index": coarse[:, 1],
            "thumb": coarse[:, 2]}  # fmt: skip


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
