"""Measuring the pose stage on real clips: back ends compared, and several people in one frame.

:func:`compare` runs pose back ends over the same videos and counts how often a body and each hand
were found, with the time per frame (decoding excluded). :func:`people_benchmark` composes
different people's clips side by side (:func:`~bharnet_ros.core.compose.compose_people`), runs the
multi back end on every frame, and gives each person (a strip of the frame) their own
:class:`~bharnet_ros.core.recognizer.Recognizer`, as the node would; :func:`figures` sums it up
per number of people: pose time, bodies found, id switches, and per-person accuracy against the
same clips alone. ``python -m bharnet_ros.tools.pose_compare`` prints and writes the reports.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bharnet_ros.core.compose import PAIR_CROP, compose_people
from bharnet_ros.core.inference import WindowScores
from bharnet_ros.core.pose_stage import MULTI, NOSE, PoseStage
from bharnet_ros.core.recognizer import NONE, Recognizer, WindowClassifier
from bharnet_ros.core.skeleton import SkeletonFrame
from bharnet_ros.core.video import VideoReader
from bharnet_ros.core.window import Window


@dataclass
class Counts:
    """Detections and per-frame times of one back end over some clips."""

    frames: int = 0
    body: int = 0
    left: int = 0
    right: int = 0
    any_hand: int = 0
    seconds: list[float] = field(default_factory=list)


def compare(
    clips: Sequence[Path], backends: Sequence[str], max_frames: int | None = None
) -> dict[str, Counts]:
    """Each back end over every clip (a fresh pose stage per clip); the first person counts for multi."""
    results = {}
    for backend in backends:
        counts = Counts()
        for clip in clips:
            with PoseStage(backend) as stage, VideoReader(clip) as reader:
                for index, (stamp, image) in enumerate(reader):
                    if index == max_frames:
                        break
                    started = time.perf_counter()
                    _, frames = stage.process(image, stamp)
                    counts.seconds.append(time.perf_counter() - started)
                    _count(counts, frames[0] if frames else None)
        results[backend] = counts
    return results


def _count(counts: Counts, frame: SkeletonFrame | None) -> None:
    """Count one frame's detections (the first person's; None: nobody found)."""
    counts.frames += 1
    if frame is None:
        return
    counts.body += frame.body_present
    counts.left += bool(frame.hand_present[0])
    counts.right += bool(frame.hand_present[1])
    counts.any_hand += bool(frame.hand_present.any())


@dataclass
class Person:
    """One strip of a composed clip: who was filmed there, and what the pipeline made of them."""

    clip: Path
    gesture: str
    ids: list[int] = field(default_factory=list)  # the track id at this strip, per frame found
    labels: list[str] = field(default_factory=list)  # the person's recognizer's decisions

    @property
    def switches(self) -> int:
        """How often the id at this strip changed after the first one."""
        return sum(a != b for a, b in zip(self.ids, self.ids[1:], strict=False))

    @property
    def said(self) -> list[str]:
        """The decisions that name a gesture (not ``none``)."""
        return [label for label in self.labels if label != NONE]

    @property
    def majority(self) -> str:
        """The person's answer: the most frequent non-``none`` decision (``none`` if there was none)."""
        return Counter(self.said).most_common(1)[0][0] if self.said else NONE


@dataclass
class ComposedRun:
    """One composed clip through the multi back end, with a recognizer per person."""

    people: list[Person]
    frames: int = 0
    pose_seconds: list[float] = field(default_factory=list)  # the pose stage, per frame
    classify_seconds: list[float] = field(default_factory=list)  # the classifier, per decision


class TimedClassifier:
    """A recognizer's classifier that records how long each classification takes."""

    def __init__(self, inner: WindowClassifier) -> None:
        self.inner = inner
        self.seconds: list[float] = []

    def __getattr__(self, name: str) -> Any:
        """Everything but ``classify`` is the wrapped classifier's (class names, window length...)."""
        return getattr(self.inner, name)

    def classify(self, window: Window) -> WindowScores:
        """The wrapped classifier's scores; the time taken goes to ``seconds``."""
        started = time.perf_counter()
        scores = self.inner.classify(window)
        self.seconds.append(time.perf_counter() - started)
        return scores


def clip_gesture(clip: Path) -> str:
    """The gesture a HRI clip shows: its name up to the first underscore."""
    return clip.name.split("_")[0]


def group_length(clips: Sequence[Path], max_frames: int | None = None) -> int:
    """Frames every composition of the group is cut to: its shortest clip (so 1, 2 and 3 people see
    the same frames of each clip), at most ``max_frames``."""
    counts = []
    for clip in clips:
        with VideoReader(clip) as reader:
            counts.append(reader.info.frame_count or sys.maxsize)  # 0 = unknown: the clip decides
    return min([*counts, max_frames or sys.maxsize])


def run_composed(
    clips: Sequence[Path],
    classifier: WindowClassifier,
    num_poses: int,
    max_frames: int | None = None,
    crop: int = PAIR_CROP,
) -> ComposedRun:
    """Compose ``clips`` side by side, run the multi back end on every frame (timed), and give each
    strip's person to their own :class:`Recognizer` (RecognizerConfig defaults), as the node would."""
    timed = TimedClassifier(classifier)
    run = ComposedRun([Person(clip, clip_gesture(clip)) for clip in clips])
    recognizers = [Recognizer(timed) for _ in clips]
    with tempfile.TemporaryDirectory() as folder:
        video = Path(folder) / "people.mp4"
        compose_people(clips, video, crop, max_frames=max_frames)
        with PoseStage(MULTI, num_poses=num_poses) as stage, VideoReader(video) as reader:
            for stamp, image in reader:
                started = time.perf_counter()
                _, frames = stage.process(image, stamp)
                run.pose_seconds.append(time.perf_counter() - started)
                run.frames += 1
                _follow(run.people, recognizers, frames)
    run.classify_seconds = timed.seconds
    return run


def _follow(people: list[Person], recognizers: list[Recognizer], frames: list[SkeletonFrame]) -> None:
    """Note each strip's id in this image and push its frame to that person's recognizer."""
    last_ids = [person.ids[-1] if person.ids else None for person in people]
    for strip, frame in by_strip(frames, last_ids).items():
        people[strip].ids.append(frame.person_id)
        result = recognizers[strip].push(frame)
        if result is not None:
            people[strip].labels.append(result.label)


def by_strip(frames: Sequence[SkeletonFrame], last_ids: Sequence[int | None]) -> dict[int, SkeletonFrame]:
    """Each strip's body in one image (a person = a strip position, found by the nose). Where two
    bodies share a strip, the one with the id last seen there wins, else the lower id."""
    strips = len(last_ids)
    chosen: dict[int, SkeletonFrame] = {}
    for frame in frames:  # ordered by id
        if not frame.body_present:
            continue
        strip = int(np.clip(frame.body[NOSE, 0] * strips, 0, strips - 1))
        if strip not in chosen or frame.person_id == last_ids[strip]:
            chosen[strip] = frame
    return chosen


def people_benchmark(
    groups: Sequence[Sequence[Path]],
    counts: Sequence[int],
    classifier: WindowClassifier,
    num_poses: int,
    max_frames: int | None = None,
    crop: int = PAIR_CROP,
    progress: Callable[[int, Sequence[Path]], None] | None = None,
) -> dict[int, list[ComposedRun]]:
    """Runs per number of people: 1 = each clip that any count uses, alone (the baseline), N > 1 =
    each group's first N clips side by side; all cut to the group's :func:`group_length`.
    ``progress(count, clips)`` is called after each run."""
    runs: dict[int, list[ComposedRun]] = {}
    used = max(counts)
    for count in sorted({1, *counts}):
        runs[count] = []
        for group in groups:
            length = group_length(group, max_frames)
            compositions = [[clip] for clip in group[:used]] if count == 1 else [group[:count]]
            for clips in compositions:
                runs[count].append(run_composed(clips, classifier, num_poses, length, crop))
                if progress is not None:
                    progress(count, clips)
    return runs


@dataclass
class PeopleFigures:
    """The figures of one number of people, over all its runs."""

    people: int
    clips: int
    frames: int
    pose_ms: tuple[float, float]  # median, p95
    fps: float  # frames / pose-stage seconds
    found: float  # fraction of person-frames with a body at the person's strip
    switches_per_100: float  # id switches per 100 frames of video
    accuracy: float  # per person, majority decision = the clip's gesture
    accuracy_alone: float  # the same clips, each alone
    decisions: float  # fraction of non-none decisions naming the clip's gesture
    decisions_alone: float
    classify_ms: tuple[float, float]  # per decision: median, p95


def figures(runs: dict[int, list[ComposedRun]], count: int) -> PeopleFigures:
    """Summarise the runs of ``count`` people, and the 1-person runs of the same clips."""
    composed = runs[count]
    people = [p for run in composed for p in run.people]
    clips = {p.clip for p in people}
    alone = [p for run in runs[1] for p in run.people if p.clip in clips]
    seconds = [s for run in composed for s in run.pose_seconds]
    frames = sum(run.frames for run in composed)
    classify = [s for run in composed for s in run.classify_seconds] or [float("nan")]
    return PeopleFigures(
        people=count,
        clips=len(composed),
        frames=frames,
        pose_ms=tuple(np.percentile(seconds, [50, 95]) * 1000),
        fps=frames / max(sum(seconds), 1e-9),
        found=sum(len(p.ids) for p in people) / max(frames * count, 1),
        switches_per_100=100 * sum(p.switches for p in people) / max(frames, 1),
        accuracy=_share(p.majority == p.gesture for p in people),
        accuracy_alone=_share(p.majority == p.gesture for p in alone),
        decisions=_share(label == p.gesture for p in people for label in p.said),
        decisions_alone=_share(label == p.gesture for p in alone for label in p.said),
        classify_ms=tuple(np.percentile(classify, [50, 95]) * 1000),
    )


def _share(hits: Iterable[bool]) -> float:
    """The fraction of true values (NaN for none)."""
    values = list(hits)
    return sum(values) / len(values) if values else float("nan")
