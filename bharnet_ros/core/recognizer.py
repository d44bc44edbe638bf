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

from bharnet_ros.core.inference import OnnxClassifier
from bharnet_ros.core.skeleton import SkeletonFrame
from bharnet_ros.core.smoothing import LabelSmoother
from bharnet_ros.core.window import SECONDS, PushResult, Window, WindowSet

NONE = "none"  # the label of "no known gesture"


class WindowClassifier(Protocol):
    """What the recognizer needs from a model (ONNX Runtime in production)."""

    class_names: list[str]
    window_length: int
    window_seconds: float  # 0 when the model was trained on frame counts

    def classify(self, window: Window) -> dict[str, np.ndarray]:
        """Class probabilities: key "fused" always; "body" and "hand" where the model has experts."""


@dataclass
class RecognizerConfig:
    """Window and decision settings; the node exposes each as a ROS parameter."""

    window_seconds: float = 0.0  # window duration; 0 = the model's own (its training window)
    stride_seconds: float = 0.15  # classify a person's window at most this often (sensor time)
    min_seconds: float = 0.5  # history needed before a person's first decision
    max_gap: int = 8  # hand gaps up to this many frames are interpolated
    person_timeout: float = 1.0  # seconds without frames before a person's window is dropped
    max_persons: int = 4
    smoothing: float = 0.5  # weight of the newest window in the moving average (1 = none)
    switch_margin: float = 0.1  # probability lead another label needs to replace the current one
    top_k: int = 5
    none_threshold: float = 0.0  # smoothed confidence below this publishes "none"; 0 = the model's own

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


class Recognizer:
    """Per-person windows + classifier + smoothing, with counters for diagnostics."""

    def __init__(self, classifier: WindowClassifier, config: RecognizerConfig | None = None) -> None:
        self.classifier = classifier
        self.config = config or RecognizerConfig()
        c = self.config
        self.window_seconds = c.window_for(classifier)
        self.none_threshold = c.threshold_for(classifier)
        self.windows = WindowSet(
            self.window_seconds, max_gap=c.max_gap, timeout=c.person_timeout, max_persons=c.max_persons
        )
        self._smoothers: dict[int, LabelSmoother] = {}
        self._last_decision: dict[int, float | None] = {}
        self.windows_classified = 0

    def push(self, frame: SkeletonFrame) -> ActionResult | None:
        """Add one frame; returns a decision when this person's stride is due and the window is ready."""
        buffer = self.windows.push(frame)
        pid = frame.person_id
        if buffer.last_result is PushResult.RESET or pid not in self._smoothers:
            self._start_person(pid)
        if buffer.last_result is PushResult.DUPLICATE:
            return None
        last = self._last_decision[pid]
        if last is not None and frame.timestamp - last < self.config.stride_seconds - 1e-9:
            return None
        window = buffer.window(self.classifier.window_length, min_seconds=self.config.min_seconds)
        if window is None:
            return None
        self._last_decision[pid] = frame.timestamp
        return self._decide(pid, window)

    def prune(self, now: float) -> list[int]:
        """Forget persons not seen since ``now - person_timeout``; returns their ids."""
        dropped = self.windows.prune(now)
        for pid in dropped:
            self._smoothers.pop(pid, None)
            self._last_decision.pop(pid, None)
        return dropped

    def reset(self) -> None:
        """Forget everyone (e.g. after the clock jumped)."""
        self.windows.reset()
        self._smoothers.clear()
        self._last_decision.clear()

    def _start_person(self, pid: int) -> None:
        c = self.config
        self._smoothers[pid] = LabelSmoother(c.smoothing, c.switch_margin)
        self._last_decision[pid] = None  # decide as soon as the window is ready

    def _decide(self, pid: int, window: Window) -> ActionResult:
        scores = self.classifier.classify(window)
        self.windows_classified += 1
        names = self.classifier.class_names
        fused = scores["fused"]
        class_id, confidence = self._smoothers[pid].update(fused)
        label = names[class_id]
        if confidence < self.none_threshold and label != NONE:
            label, class_id = NONE, names.index(NONE) if NONE in names else -1
        top = np.argsort(fused)[::-1][: self.config.top_k]
        experts = {
            name: (names[int(np.argmax(p))], float(np.max(p)))
            for name, p in scores.items()
            if name != "fused"
        }
        return ActionResult(
            person_id=pid,
            stamp=window.stamp,
            window_start=window.first_stamp,
            label=label,
            class_id=class_id,
            confidence=confidence,
            top_labels=[names[i] for i in top],
            top_scores=[float(fused[i]) for i in top],
            expert_labels=experts,
            hand_fraction=float(window.hand_mask.any(axis=1).mean()),
        )


class OnnxWindowClassifier:
    """An exported model as the recognizer's :class:`WindowClassifier` (ONNX Runtime)."""

    def __init__(self, classifier: OnnxClassifier) -> None:
        self.onnx = classifier
        self.class_names = classifier.labels
        self.window_length = classifier.frames
        self.window_seconds = classifier.preprocess.window_seconds
        self.none_threshold = float(classifier.metadata.get("none_threshold") or 0.0)
        self.providers = classifier.providers
        marked = set(classifier.metadata.get("hand_intensive") or [])  # class names
        self.hand_intensive = [name in marked for name in self.class_names]
        self.description = f"{classifier.path.name} ({classifier.variant})"

    def classify(self, window: Window) -> dict[str, np.ndarray]:
        prediction = self.onnx.predict_window(window)
        scores = {"fused": prediction.probabilities}
        for branch, probabilities in prediction.expert_scores.items():
            stream = "body" if branch.startswith("body") else "hand" if branch.startswith("hand") else branch
            scores.setdefault(stream, probabilities)  # the first branch of a stream: its expert
        return scores


def load_window_classifier(
    path: str, device: str = "cpu", require: bool = False, threads: int | None = 1
) -> OnnxWindowClassifier:
    """Open an exported model on ``device`` (cpu, cuda or auto); raises InferenceError with the reason."""
    providers = "auto" if device == "auto" else (device, "cpu") if device != "cpu" else "cpu"
    return OnnxWindowClassifier(
        OnnxClassifier(path, providers=providers, require=require, threads=threads or None)
    )
