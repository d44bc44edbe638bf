"""The classes' motions: hand orientations, gesture timing and one motion builder per class.

Each builder returns (dominant arm, other arm) tracks (T, 24) of arm poses
(``kinematics.WRIST..SHAPE``), both authored as right arms; ``None`` for the other arm means it
stays at rest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from bharnet_ros.training.synth.geometry import interpolate_keys, smoothstep, unit
from bharnet_ros.training.synth.hands import SHAPES, hand_frame, hand_local, jitter_shape
from bharnet_ros.training.synth.kinematics import AXIS, NORMAL, SHAPE, WRIST, Subject, arm_pose
from bharnet_ros.training.synth.vocabulary import SHARED_ARM_CLASSES


def _v(out: float, up: float, fwd: float) -> np.ndarray:
    """An offset or direction authored for a RIGHT arm (outwards, up, forwards) in body coordinates."""
    return np.array([-out, -up, -fwd], dtype=float)


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
        return through ``via`` to rest. Returns (T, 24) arm poses."""
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
        fade = smoothstep((self.t - t1) / ramp) * smoothstep((t2 - self.t) / ramp)
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
    start[AXIS] = unit(_v(-0.75, 0.65, 0.0) + m.rng.normal(0.0, 0.08, 3))
    start = _touching(start, _face_point(m.subject, up=0.28, fwd=0.1, left=-0.035), m.subject, landmark=8)
    end = start.copy()
    end[WRIST] += _v(m.rng.uniform(0.1, 0.18) * a, 0.03, m.rng.uniform(0.1, 0.2) * a) * k
    end[AXIS] = _v(-0.3, 0.8, 0.35)
    return m.stroke([start, start, end]), None


def _thanks(m: Motion) -> ArmTracks:
    """Middle fingertip at the chin, palm towards the face, then forwards and down ending palm up."""
    k, a = m.scale, m.amplitude
    axis = unit(_v(-0.25, 1.0, 0.1) + m.rng.normal(0.0, 0.08, 3))
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
    pose[AXIS] = unit(_v(-0.1, 0.6, 1.0))
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
