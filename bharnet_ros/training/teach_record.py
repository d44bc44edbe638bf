"""Recording takes for ``bharnet teach record``: where the skeletons come from and how takes are cut.

Skeleton sources, all giving contract frames stamped by the pose stage:

* a video file, through the pose stage (``core.pose_stage``, as ``bharnet extract`` runs it);
* a bag: its ``PersonSkeletonArray`` topic as recorded, or else its camera topic through the pose
  stage;
* the running graph: ``nodes/teach_live.py`` subscribes to the pose node's ``bharnet/skeletons``
  (rclpy lives there, not here).

Takes are cut in one of two ways:

* **headless** (:func:`cut_takes`): a labels file (``core.annotations``: ``start,end,label`` in
  seconds from the first frame, or absolute ``start_stamp,end_stamp``) names the gesture of each
  segment of a recorded video or bag. Flagged segments are skipped and listed.
* **interactive** (:func:`record_interactively`): for each gesture and take, a countdown in the
  terminal ("perform `follow_me` now (take 3 of 5)"), then ``seconds`` of frames from the source.
  The take's length and hand presence are shown; the user keeps it, records it again or stops. A
  flagged take is never kept: the user records it again or skips it. Answers are read from a text
  stream and the countdown waits on a :class:`Clock`, so a test feeds the answers and a fast clock.

A file source used interactively hands out consecutive stretches of its recording, one per take.
"""

from __future__ import annotations

import bisect
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

from bharnet_ros.core.annotations import BOUNDARY_SLACK, Annotations, Segment
from bharnet_ros.core.bag import (
    CAMERA_TYPES,
    SKELETON_TYPE,
    BagError,
    MessageError,
    bag_message_counts,
    bag_topics,
    candidate_topics,
    decode_camera_message,
    describe_topics,
    read_messages,
    require_topic,
)
from bharnet_ros.core.bag_eval import frame_stamp
from bharnet_ros.core.frame_rules import FrameRules, nanoseconds_to_seconds, stamp_problem
from bharnet_ros.core.image import ImageError, camera_message_size
from bharnet_ros.core.skeleton import SkeletonError, SkeletonFrame
from bharnet_ros.training.teach_takes import Take, TrimSettings, make_take


class TakeSource(Protocol):
    """Where the frames of each take come from."""

    description: str

    def record(self, seconds: float) -> list[SkeletonFrame]:
        """The frames of the next ``seconds`` (live: from now on; a file: its next stretch)."""


class Clock(Protocol):
    def sleep(self, seconds: float) -> None: ...


class WallClock:
    """The real clock for the countdown."""

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class RecordingEndedError(Exception):
    """The source can give no more takes: a file has no frames left, or the live graph stopped."""


@dataclass
class Recording:
    """A recording's skeleton frames, and the earliest and latest stamps of its images or messages
    (None if it has none): labels count from the earliest, whether or not anybody was in view."""

    frames: list[SkeletonFrame]
    span: tuple[float, float] | None
    skipped: int = 0  # messages of a bag that could not be read, or skeletons the nodes would refuse
    last_problem: str = ""  # why the last of them was skipped

    def refuse(self, problem: str) -> None:
        self.skipped, self.last_problem = self.skipped + 1, problem


def video_frames(path: str | Path, backend: str = "holistic", mirrored: bool = False) -> Recording:
    """Every person's frames of a video through the pose stage, stamped with the video's time."""
    from bharnet_ros.core.pose_stage import PoseStage
    from bharnet_ros.core.video import VideoReader

    frames: list[SkeletonFrame] = []
    stamps: list[float] = []
    with VideoReader(path) as reader, PoseStage(backend, mirrored_input=mirrored) as stage:
        for timestamp, image in reader:
            stamps.append(timestamp)
            frames.extend(stage.process(image, timestamp)[1])
    return Recording(frames, (stamps[0], stamps[-1]) if stamps else None)


def bag_frames(path: str | Path, topic: str | None = None, backend: str = "holistic") -> Recording:
    """A bag's skeletons: its PersonSkeletonArray topic, else its camera topic through the pose stage.

    ``topic`` picks one; by default the bag's only skeleton topic, else its only camera topic. Each
    message is timed by its stamp, or where it has none (a camera driver that never stamps) by its
    log time, as ``bharnet bag eval`` times it. A message that cannot be read (damaged, an image
    that does not decode, a stamp no clock gives) is skipped and counted, as the nodes skip it; of
    skeletons, each one the recognizer refuses (``core.frame_rules``), not its whole message.
    """
    available = bag_topics(path)
    topic = topic or default_topic(available, path)
    msgtype = require_topic(available, topic, path)
    if msgtype != SKELETON_TYPE and msgtype not in CAMERA_TYPES:
        raise BagError(f"{path}: topic {topic} holds {msgtype}, neither skeletons nor camera images")
    from bharnet_ros.core.pose_stage import PoseStage

    recording = Recording([], None)
    rules = FrameRules(recording.refuse)  # a bad skeleton costs itself, as in the nodes
    stamps: list[float] = []
    with PoseStage(backend) if msgtype != SKELETON_TYPE else nullcontext() as stage:
        for message in read_messages(path, [topic]):
            try:
                found, when = _message_frames(message, msgtype, stage, rules)
            except (MessageError, ImageError, SkeletonError) as err:
                recording.refuse(str(err))
                continue
            stamps.append(when)
            recording.frames.extend(found)
    recording.span = (min(stamps), max(stamps)) if stamps else None
    return recording


def _message_frames(
    message: Any, msgtype: str, stage: Any, rules: FrameRules
) -> tuple[list[SkeletonFrame], float]:
    """The frames of one bag message (``stage``: the pose stage for images; ``rules``: the nodes'
    rules for skeletons) and its time (s)."""
    msg = message.decode()
    when = nanoseconds_to_seconds(frame_stamp(msg, msgtype) or message.log_time)
    if stage is None:
        return rules.frames(msg.persons, message.log_time * 1e-9, lambda: when), when
    if problem := stamp_problem(msg.header.stamp):
        raise ImageError(problem)
    image = decode_camera_message(msg, msgtype)
    return stage.process(image, when, camera_message_size(msg))[1], when


def default_topic(available: dict[str, str], path: str | Path) -> str:
    """The bag's only skeleton topic, else its only camera topic; BagError naming them otherwise
    (a depth camera beside a colour one would be cut silently, or fail on its encoding)."""
    candidates = candidate_topics(available, bag_message_counts(path))
    if len(candidates) != 1:
        problem = "neither a skeleton nor a camera topic" if not candidates else "several candidate topics"
        raise BagError(f"{path} has {problem}: {describe_topics(available)}; pick one with --topic")
    return candidates[0]


class RecordedFrames:
    """A recording's frames handed out stretch by stretch, one stretch per take."""

    def __init__(self, frames: Sequence[SkeletonFrame], description: str) -> None:
        self.frames = sorted(frames, key=lambda f: f.timestamp)
        self.description = description
        self.cursor = self.frames[0].timestamp if self.frames else 0.0

    def record(self, seconds: float) -> list[SkeletonFrame]:
        if not self.frames or self.cursor > self.frames[-1].timestamp:
            raise RecordingEndedError(f"{self.description} has no frames left for another take")
        start, self.cursor = self.cursor, self.cursor + seconds
        return [f for f in self.frames if start <= f.timestamp < self.cursor]


def cut_takes(
    frames: Sequence[SkeletonFrame],
    annotations: Annotations,
    settings: TrimSettings,
    hand_gestures: Iterable[str] = (),
    source: str = "",
    span: tuple[float, float] | None = None,
) -> list[Take]:
    """One take per labelled segment (trimmed inside it and checked); takes numbered per gesture.

    Relative labels count from ``span``'s start (the recording's earliest image or message; by
    default the earliest frame with a person)."""
    if not frames:
        raise ValueError(f"{source or 'the recording'} holds no skeleton frames")
    origin, end = span or (min(f.timestamp for f in frames), max(f.timestamp for f in frames))
    length = end - origin
    marked = set(hand_gestures)
    counts: dict[str, int] = {}
    takes = []
    inside_of = _frames_inside(frames, origin)
    for segment, given in zip(annotations.relative_to(origin), annotations.segments, strict=True):
        number = counts[segment.label] = counts.get(segment.label, 0) + 1
        if segment.end <= 0 or segment.start > length:
            problem = outside_problem(given, annotations.absolute, origin, length)
            takes.append(Take(segment.label, number, None, problem, source))
            continue
        inside = inside_of(segment)
        takes.append(
            make_take(segment.label, number, inside, settings, segment.label in marked, source, takes)
        )
    return takes


def _frames_inside(
    frames: Sequence[SkeletonFrame], origin: float
) -> Callable[[Segment], list[SkeletonFrame]]:
    """A look-up of the frames a segment contains (seconds since ``origin``), in recording order.

    By bisection over the frames sorted once: a scan of every frame per segment took hours for a
    labels file of a hundred thousand segments over a long recording.
    """
    order = sorted(range(len(frames)), key=lambda i: frames[i].timestamp)
    seconds = [frames[i].timestamp - origin for i in order]

    def inside(segment: Segment) -> list[SkeletonFrame]:
        start, end = segment.start - BOUNDARY_SLACK, segment.end - BOUNDARY_SLACK  # as Segment.contains
        first, last = bisect.bisect_left(seconds, start), bisect.bisect_left(seconds, end)
        return [frames[i] for i in sorted(order[first:last])]

    return inside


def outside_problem(segment: Segment, absolute: bool, origin: float, length: float) -> str:
    """Why a labelled segment that lies wholly outside the recording gives no take, and the fix.

    Not "no person": nobody could have been seen there. A segment after the end is usually a typo
    or a labels file of another recording; absolute stamps far off are usually another clock.
    """
    if absolute:
        where = f"[{segment.start:.3f}, {segment.end:.3f})"
        return (
            f"outside the recording: stamps {where} lie outside its frames' stamps "
            f"[{origin:.3f}, {origin + length:.3f}]; give the stamps on the recording's clock, or "
            "start,end in seconds from its first frame"
        )
    return (
        f"outside the recording: [{segment.start:g}, {segment.end:g}) s lies outside its "
        f"[0, {length:.2f}] s; fix the segment's start,end (seconds from the first frame) or give "
        "the labels of this recording"
    )


@dataclass
class TakePlan:
    """What the interactive recording asks for."""

    gestures: list[str]
    takes: int = 5
    seconds: float = 3.0  # recorded per take
    countdown: int = 3  # seconds counted down before each take
    hand_gestures: set[str] = field(default_factory=set)


@dataclass
class Prompt:
    """The terminal side: messages out, answers in (one line each), a countdown on ``clock``."""

    answers: TextIO = sys.stdin
    out: TextIO = sys.stdout
    clock: Clock = field(default_factory=WallClock)

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def ask(self, question: str) -> str | None:
        """The answer, lower-cased and stripped; None when the input has ended."""
        print(question, end="", file=self.out, flush=True)
        line = self.answers.readline()
        return None if line == "" else line.strip().lower()

    def countdown(self, text: str, seconds: int) -> None:
        self.say(text)
        for left in range(seconds, 0, -1):
            print(f"  {left} ...", file=self.out, flush=True)
            self.clock.sleep(1.0)
        self.say("  go!")


KEEP_QUESTION = "  Enter keeps it, r records it again, q stops: "
REDO_QUESTION = "  not kept. Enter records it again, s skips it, q stops: "


def record_interactively(
    source: TakeSource, plan: TakePlan, settings: TrimSettings, prompt: Prompt
) -> list[Take]:
    """Every kept take and every take left flagged, in recording order (see the module docstring).
    Ctrl-C writes nothing, so it says what it throws away and how to keep it instead."""
    takes: list[Take] = []
    try:
        for gesture in plan.gestures:
            for number in range(1, plan.takes + 1):
                outcome = _one_take(source, plan, settings, prompt, gesture, number, takes)
                if outcome is None:
                    return takes
                takes.append(outcome)
    except KeyboardInterrupt:
        good = sum(take.ok for take in takes)
        if good:
            kept = f"not written: the {good} good takes so far"
            prompt.say(f"{kept} (answer q at a prompt to end and keep them)")
        raise
    return takes


def _one_take(
    source: TakeSource,
    plan: TakePlan,
    settings: TrimSettings,
    prompt: Prompt,
    gesture: str,
    number: int,
    kept: Sequence[Take] = (),
) -> Take | None:
    """Record until the user keeps a good take or skips a flagged one (``kept``: the takes so
    far); None to stop altogether."""
    while True:
        prompt.countdown(f"perform `{gesture}` now (take {number} of {plan.takes})", plan.countdown)
        try:
            frames = source.record(plan.seconds)
        except RecordingEndedError as err:
            prompt.say(f"stopping: {err}")
            return None
        hand = gesture in plan.hand_gestures
        take = make_take(gesture, number, frames, settings, hand, source.description, kept)
        prompt.say("  " + take.line())
        answer = _answer(prompt, take.ok)
        if answer is None or answer == "q":
            prompt.say("stopping" if answer else "input ended: stopping")
            return None
        if take.ok and answer == "":
            return take
        if not take.ok and answer == "s":
            return take


def _answer(prompt: Prompt, good: bool) -> str | None:
    """The user's choice for a take (None when the input has ended); asks again on anything else,
    since a stray key must not throw a good take away or record over the next stretch of a file."""
    question, choices = (KEEP_QUESTION, ("", "r", "q")) if good else (REDO_QUESTION, ("", "s", "q"))
    while True:
        answer = prompt.ask(question)
        if answer is None or answer in choices:
            return answer
        prompt.say(f"  {answer!r} is none of the choices")
