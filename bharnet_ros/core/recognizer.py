"""The recognition pipeline without ROS: skeleton frames in, smoothed action decisions out.

Frames are routed to one window per person; every ``stride_seconds`` of sensor time a person's
window is classified and the result smoothed. The window covers the duration the model was
trained with (its ``window_seconds``), whatever the frame rate. When the smoothed confidence is
below ``none_threshold``, or the model's own ``none`` class wins, the decision is ``none``: no
known gesture is happening. The recognizer node only converts messages and calls this, and
deterministic bag evaluation drives the same object, so both produce identical decisions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

import numpy as np

from bharnet_ros.core.hand_fill import MAX_GAP
from bharnet_ros.core.inference import DISTANCE, MAX_DISTANCE_THRESHOLD, OnnxClassifier, WindowScores
from bharnet_ros.core.labels import shown
from bharnet_ros.core.skeleton import SkeletonError, SkeletonFrame
from bharnet_ros.core.smoothing import LabelSmoother
from bharnet_ros.core.window import (
    MAX_PERSONS,
    PERSON_TIMEOUT,
    SECONDS,
    PushResult,
    Window,
    WindowBuffer,
    WindowSet,
    finite_number,
    stamp_slack,
    whole_number,
)

NONE = "none"  # the label of "no known gesture"


class IncompatibleFrameError(SkeletonError):
    """A well-formed frame of a body layout or a coordinate space the model cannot take: a fault
    of the model for these skeletons as much as of the frame (a swapped-in model is rolled back)."""


class WindowClassifier(Protocol):
    """What the recognizer and the node need from a model (ONNX Runtime in production)."""

    class_names: list[str]
    window_length: int
    window_seconds: float  # 0 when the model was trained on frame counts
    body_layout: str  # the model's body layout; frames must have it or map to it
    space: str  # the coordinate space the model was trained in; frames must have it ("" = any)
    providers: list[str]  # the execution providers really running the model (diagnostics)
    description: str  # the model in a few words (logs, /bharnet/labels)
    hand_intensive: list[bool]  # per class: whether the hands carry it (/bharnet/labels); [] if unknown

    def classify(self, window: Window) -> WindowScores:
        """The window's scores: fused probabilities, and the experts' where the model has them."""


@dataclass
class RecognizerConfig:
    """Window and decision settings; the node exposes each as a ROS parameter."""

    window_seconds: float = 0.0  # window duration; 0 = the model's own (its training window)
    stride_seconds: float = 0.15  # classify a person's window this often on average (sensor time)
    min_seconds: float = 0.5  # history needed before a person's first decision
    max_gap: int = MAX_GAP  # hand gaps up to this many frames are interpolated
    person_timeout: float = PERSON_TIMEOUT  # seconds without frames before a person's window is dropped
    max_persons: int = MAX_PERSONS
    smoothing: float = 0.5  # weight of the newest window in the moving average (1 = none)
    switch_margin: float = 0.1  # probability lead another label needs to replace the current one
    top_k: int = 5
    none_threshold: float = 0.0  # smoothed confidence below this publishes "none"; 0 = the model's own
    distance_threshold: float = 0.0  # feature distance above this publishes "none"; 0 = the model's own

    def __post_init__(self) -> None:
        """Refuse values that would silently stop decisions (a NaN switch margin or a smoothing of 0
        freeze the label for good, a NaN minimum history never fills); ValueError names the field.
        The recognizer node's parameter ranges lie inside these bounds."""
        number, whole = finite_number, whole_number
        checks = [
            (number(self.window_seconds) and 0 <= self.window_seconds <= 60, "window_seconds", "[0, 60]"),
            (number(self.stride_seconds) and self.stride_seconds >= 0, "stride_seconds", ">= 0"),
            (number(self.min_seconds) and self.min_seconds >= 0, "min_seconds", ">= 0"),
            (whole(self.max_gap, 0), "max_gap", "a whole number >= 0"),
            (number(self.person_timeout) and self.person_timeout > 0, "person_timeout", "> 0"),
            (whole(self.max_persons, 1), "max_persons", "a whole number >= 1"),
            (number(self.smoothing) and 0 < self.smoothing <= 1, "smoothing", "in (0, 1]"),
            (number(self.switch_margin) and 0 <= self.switch_margin < 1, "switch_margin", "in [0, 1)"),
            (whole(self.top_k, 1), "top_k", "a whole number >= 1"),
            (number(self.none_threshold) and 0 <= self.none_threshold <= 1, "none_threshold", "in [0, 1]"),
            (
                number(self.distance_threshold) and 0 <= self.distance_threshold <= MAX_DISTANCE_THRESHOLD,
                "distance_threshold",
                f"in [0, {MAX_DISTANCE_THRESHOLD:g}]",
            ),
        ]
        for ok, name, bound in checks:
            if not ok:
                value = shown(getattr(self, name))
                raise ValueError(f"recognizer config: {name} must be {bound}, got {value}")

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> RecognizerConfig:
        """The config from a parameter mapping (ROS parameters, a params YAML); other keys are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in params.items() if key in names})

    def window_for(self, classifier: WindowClassifier) -> float:
        """The window duration in use: this config's, else the model's, else the default."""
        return self.window_seconds or classifier.window_seconds or SECONDS

    def threshold_for(self, classifier: WindowClassifier) -> float:
        """The none threshold in use: this config's, else the model's calibrated one, else 0."""
        return self.none_threshold or float(getattr(classifier, "none_threshold", 0.0) or 0.0)

    def distance_threshold_for(self, classifier: WindowClassifier) -> float:
        """The distance threshold in use: this config's, else the model's calibrated one, else 0
        (off); 0 for a model without a distance output, which the threshold cannot apply to."""
        if not getattr(classifier, "outputs_distance", True):
            return 0.0
        return self.distance_threshold or float(getattr(classifier, "distance_threshold", 0.0) or 0.0)


@dataclass
class ActionResult:
    """One decision for one person, stamped with the newest frame of its window."""

    person_id: int
    stamp: float
    window_start: float
    label: str
    class_id: int
    confidence: float
    top_labels: list[str]
    top_scores: list[float]
    expert_labels: dict[str, tuple[str, float]] = field(default_factory=dict)  # "body"/"hand"
    hand_fraction: float = 0.0


@dataclass
class DecisionClock:
    """When a person's next decision is due, in sensor time: one stride after the previous one was
    due, not after the frame that made it, so decisions come every stride on average whatever the
    frame rate (from the frame, each interval ran to the next frame). Strides are counted from an
    anchor, as adding one each time drifts at epoch stamps; falling behind (a gap) or another
    stride starts a new anchor, so decisions never catch up in a burst."""

    anchor: float | None = None
    stride: float = 0.0
    count: int = 0

    def due(self, stride: float) -> float | None:
        """When the next decision is due at ``stride`` (one just changed counts from the last
        decision's due time: lowered from 10 s, the old stride had to run out first)."""
        if self.anchor is None:
            return None
        if stride == self.stride:
            return self.anchor + self.count * stride
        return self.anchor + (self.count - 1) * self.stride + stride

    def decided(self, stamp: float, stride: float) -> None:
        ahead = self.anchor is not None and self.anchor + (self.count + 1) * stride > stamp
        if ahead and stride == self.stride:
            self.count += 1
        else:
            self.anchor, self.stride, self.count = stamp, stride, 1


@dataclass
class PersonState:
    """What the recognizer keeps per person, stored in the person's window buffer (one owner).

    It goes when the window set drops the person (timeout, eviction) or resets their buffer.
    """

    smoother: LabelSmoother
    decisions: DecisionClock = field(default_factory=DecisionClock)


@dataclass
class RecognizerStats:
    """Frames the recognizer turned away, by reason (for diagnostics)."""

    incompatible_layout: int = 0  # a body layout the model cannot use
    incompatible_space: int = 0  # a coordinate space the model was not trained in
    persons_refused: int = 0  # new persons while every slot was busy
    nonfinite_scores: int = 0  # a window whose scores or distance were not finite (the person was reset)


class Recognizer:
    """Per-person windows + classifier + smoothing, with counters for diagnostics."""

    def __init__(self, classifier: WindowClassifier, config: RecognizerConfig | None = None) -> None:
        self.classifier = classifier
        self.config = config or RecognizerConfig()
        c = self.config
        self.window_seconds = c.window_for(classifier)
        self.none_threshold = c.threshold_for(classifier)
        self.distance_threshold = c.distance_threshold_for(classifier)
        self.windows = WindowSet(
            self.window_seconds, max_gap=c.max_gap, timeout=c.person_timeout, max_persons=c.max_persons
        )
        self.accepted_layouts = accepted_layouts(classifier.body_layout)
        self.stats = RecognizerStats()
        self.windows_classified = 0
        self.windows_unfamiliar = 0  # windows farther than the distance threshold from the training data

    def push(self, frame: SkeletonFrame, arrival: float | None = None) -> ActionResult | None:
        """Add one frame; returns a decision when this person's stride is due and the window is ready.

        ``arrival`` is when the frame arrived (the node's clock; default: its stamp), which times
        persons out. Raises SkeletonError, before touching any state, for a frame the model cannot
        use (its body layout or coordinate space), so a caller can count and drop it. A frame in
        which nobody was seen is left out, as the pose stage and the training feeder leave it: the
        window blends the frames either side, and a person nobody sees times out.
        """
        self._check_input(frame)
        if not frame.person_found:
            return None
        buffer = self.windows.push(frame, arrival)
        if buffer is None:
            self.stats.persons_refused += 1
            return None
        state = self._state(buffer)
        if buffer.last_result is PushResult.DUPLICATE:
            return None
        due = state.decisions.due(self.config.stride_seconds)
        if due is not None and frame.timestamp < due - stamp_slack(due):
            return None
        window = buffer.window(self.classifier.window_length, min_seconds=self.config.min_seconds)
        if window is None:
            return None
        state.decisions.decided(frame.timestamp, self.config.stride_seconds)
        return self._decide(frame.person_id, window, state)

    @property
    def space(self) -> str:
        """The coordinate space frames must have ("" = any): the model's."""
        return self.classifier.space

    def _check_input(self, frame: SkeletonFrame) -> None:
        """IncompatibleFrameError (counted) for a frame of a body layout or a space the model cannot take."""
        if self.accepted_layouts and frame.layout not in self.accepted_layouts:
            self.stats.incompatible_layout += 1
            raise IncompatibleFrameError(
                f"a {frame.layout} body cannot feed this model (it takes {', '.join(self.accepted_layouts)})"
            )
        if self.space and frame.space != self.space:
            self.stats.incompatible_space += 1
            raise IncompatibleFrameError(
                f"a {frame.space}-space skeleton cannot feed this model (it was trained on "
                f"{self.space}-space skeletons)"
            )

    def prune(self, now: float) -> list[int]:
        """Forget persons whose last frame arrived more than ``person_timeout`` before (or after) ``now``;
        returns their ids."""
        return self.windows.prune(now)

    def person_states(self) -> dict[int, PersonState]:
        """The per-person state of everyone tracked now."""
        return {pid: b.state["recognizer"] for pid, b in self.windows.items() if "recognizer" in b.state}

    def apply_live(self, config: RecognizerConfig) -> None:
        """Use ``config``'s decision settings from the next frame on, keeping every person's window.

        Stride, minimum history, smoothing, switch margin, top-k and the none threshold change, and
        each person's smoother keeps its average. The window settings (duration, gap filling,
        timeout, person limit) belong to the window set and keep their values; they need a new
        Recognizer.
        """
        window_settings = ("window_seconds", "max_gap", "person_timeout", "max_persons")
        kept = {name: getattr(self.config, name) for name in window_settings}
        self.config = RecognizerConfig(**{**vars(config), **kept})
        self.none_threshold = self.config.threshold_for(self.classifier)
        self.distance_threshold = self.config.distance_threshold_for(self.classifier)
        for state in self.person_states().values():
            state.smoother.alpha, state.smoother.switch_margin = (
                self.config.smoothing,
                self.config.switch_margin,
            )

    def replace_classifier(self, classifier: WindowClassifier) -> bool:
        """Classify with ``classifier`` from the next frame on; True when every window was kept.

        The windows stay when the new model reads them as the old one did: the same window
        duration in use, the same number of frames, body layouts and space. Otherwise everyone
        starts afresh (the window counters are kept). A person's smoothed average is over the old
        class list, so it restarts unless the class lists are identical.
        """
        seconds = self.config.window_for(classifier)
        layouts = accepted_layouts(classifier.body_layout)
        same_input = (seconds, classifier.window_length, layouts, classifier.space) == (
            self.window_seconds,
            self.classifier.window_length,
            self.accepted_layouts,
            self.space,
        )
        same_labels = list(classifier.class_names) == list(self.classifier.class_names)
        self.classifier = classifier
        self.none_threshold = self.config.threshold_for(classifier)
        self.distance_threshold = self.config.distance_threshold_for(classifier)
        if not same_input:
            self.windows.reset()
            self.windows.seconds, self.window_seconds, self.accepted_layouts = seconds, seconds, layouts
            return False
        if not same_labels:
            for _, buffer in self.windows.items():
                buffer.state.pop("recognizer", None)
        return True

    def _state(self, buffer: WindowBuffer) -> PersonState:
        """The buffer's recognizer state, created on a person's first frame or after a reset."""
        if "recognizer" not in buffer.state:
            smoother = LabelSmoother(self.config.smoothing, self.config.switch_margin)
            buffer.state["recognizer"] = PersonState(smoother)
        return buffer.state["recognizer"]

    def _decide(self, pid: int, window: Window, state: PersonState) -> ActionResult | None:
        scores = self.classifier.classify(window)
        self.windows_classified += 1
        if not scores.finite():
            self.stats.nonfinite_scores += 1
            state.smoother.reset()
            return None
        names = self.classifier.class_names
        state.smoother.update(np.asarray(scores.probabilities, np.float64))
        class_id, confidence = state.smoother.confident(self.none_threshold)
        label = names[class_id]
        unfamiliar = self._unfamiliar(scores)
        self.windows_unfamiliar += unfamiliar
        # a none the rules make (the none class too, below the threshold) reports 1 - the best's
        # probability; the none class held at or above it, its own, whatever the distance says
        if confidence < self.none_threshold or (unfamiliar and label != NONE):
            best = float(np.max(state.smoother.probabilities))  # not the held label's: 1 - the best's
            label, class_id, confidence = NONE, names.index(NONE) if NONE in names else -1, 1.0 - best
        top = scores.top(self.config.top_k)
        return ActionResult(
            person_id=pid,
            stamp=window.stamp,
            window_start=window.first_stamp,
            label=label,
            class_id=class_id,
            confidence=confidence,
            top_labels=[name for name, _ in top],
            top_scores=[score for _, score in top],
            expert_labels=scores.expert_votes(),
            hand_fraction=window.hand_fraction,
        )

    def _unfamiliar(self, scores: WindowScores) -> bool:
        """Whether the window lies farther from the training data than the distance threshold."""
        distance = scores.distance
        threshold = self.distance_threshold
        return bool(threshold) and distance is not None and distance > threshold


def takes_frame(classifier: WindowClassifier, frame: SkeletonFrame) -> bool:
    """Whether ``classifier`` reads a frame of this body layout and coordinate space."""
    layouts = accepted_layouts(classifier.body_layout)
    return (not layouts or frame.layout in layouts) and (
        not classifier.space or frame.space == classifier.space
    )


def accepted_layouts(model_layout: str) -> tuple[str, ...]:
    """Body layouts a model built for ``model_layout`` can take (preprocessing maps MP33 to NTU25)."""
    if model_layout == "ntu25":
        return ("ntu25", "mediapipe33")
    return (model_layout,) if model_layout else ()


class OnnxWindowClassifier:
    """An exported model as the recognizer's :class:`WindowClassifier` (ONNX Runtime)."""

    def __init__(self, classifier: OnnxClassifier) -> None:
        self.onnx = classifier
        self.class_names = classifier.labels
        self.window_length = classifier.frames
        self.window_seconds = classifier.preprocess.window_seconds
        self.body_layout = classifier.preprocess.body_layout
        self.space = classifier.preprocess.space
        self.none_threshold = float(classifier.metadata.get("none_threshold") or 0.0)
        self.distance_threshold = float(classifier.metadata.get("distance_threshold") or 0.0)
        self.outputs_distance = DISTANCE in classifier.output_names
        self.providers = classifier.providers
        marked = classifier.metadata.get("hand_intensive")  # class names; None: not known
        self.hand_intensive = [] if marked is None else [name in set(marked) for name in self.class_names]
        mirrored = ", test-time mirroring" if classifier.metadata.get("test_mirror") is True else ""
        self.description = f"{classifier.path.name} ({classifier.variant}{mirrored})"

    def classify(self, window: Window) -> WindowScores:
        """The window through the model's stored preprocessing and ONNX Runtime."""
        return self.onnx.predict_window(window)


def load_window_classifier(
    path: str, device: str = "cpu", require: bool = False, threads: int | None = 1, isolated: bool = False
) -> OnnxWindowClassifier:
    """Open an exported model on ``device`` (cpu, cuda or auto); raises InferenceError with the reason.
    ``isolated``: check it in a child process first (``OnnxClassifier``), as a running node does."""
    providers = "auto" if device == "auto" else (device, "cpu") if device != "cpu" else "cpu"
    return OnnxWindowClassifier(
        OnnxClassifier(path, providers=providers, require=require, threads=threads or None, isolated=isolated)
    )
