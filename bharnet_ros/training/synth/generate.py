"""The generator's entry points: one sample, a labelled set, a scripted continuous sequence."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from bharnet_ros.core.annotations import Segment
from bharnet_ros.core.skeleton import SkeletonSequence
from bharnet_ros.training.synth.gestures import MOTIONS, Motion, Timing, rest_pose, sample_timing
from bharnet_ros.training.synth.hands import PALM
from bharnet_ros.training.synth.kinematics import WRIST, Subject, sample_posture, sample_subject, skeleton_3d
from bharnet_ros.training.synth.observation import (
    Camera,
    EstimatorStyle,
    observe,
    sample_camera,
    sample_style,
)
from bharnet_ros.training.synth.vocabulary import CLASS_NAMES, HAND_INTENSIVE, class_index


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
    """Dominant and other arm tracks (T, 24) of one class over the local time grid ``t``."""
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
    palms = hands[:, :, PALM].mean(2)
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


def generate_sequence(class_name: str, rng: np.random.Generator, **options: Any) -> SkeletonSequence:
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


def demo_sequence(frames: int, seed: int = 0, fps: float = 30.0) -> SkeletonSequence:
    """A plausible live-camera input that needs no data files: one wave performed in ``frames`` frames.

    For parity checks, benchmarks and tests; deterministic for ``seed``. A short sequence holds a
    quick wave, a long one a wave with idle time around it, with the pose estimator's jitter, scores
    and hand dropouts as in every synthetic sample.
    """
    sequence, _ = generate_scripted([("wave", frames / fps)], np.random.default_rng(seed), fps=fps)
    return sequence
