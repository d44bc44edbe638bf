"""Confidence calibration and the "none of these" threshold (numpy only).

A classifier trained with cross-entropy is over-confident on people it never saw. Temperature
scaling divides the logits by one number T, fitted to minimise the negative log-likelihood of
held-out predictions (here: the pooled out-of-fold logits of a leave-one-subject-out run); it
changes no decision, only how far a probability can be trusted. The expected calibration error
(ECE) measures the gap between confidence and accuracy over equal-width confidence bins.

The ``none`` threshold is then chosen on the same held-out predictions: the largest threshold
that turns at most ``budget`` of the in-vocabulary samples from correct into ``none``. Where the
model measures each window's feature distance from its training data
(``model/feature_distance.py``), half of that budget goes first to a distance threshold, the
smallest that turns at most that share into ``none``, and the confidence threshold gets what is
left. Motions outside the vocabulary are never used to choose either; they only measure them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from bharnet_ros.core import inference

ECE_BINS = 15
TEMPERATURE_RANGE = (0.05, 20.0)
MAX_SCORE = 1e150  # float32 logits end at 3.4e38; far beyond, 1 / T and differences overflow


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature`` (the node's own, :func:`inference.softmax`);
    ValueError for a temperature that is not > 0."""
    check_temperature(temperature)
    return inference.softmax(logits, temperature)


def check_temperature(temperature: float) -> None:
    """ValueError for a temperature that is not > 0: 0 divides by zero, and a negative one silently
    turns the ranking upside down."""
    if not (np.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature}")


def negative_log_likelihood(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean NLL of the true labels under ``softmax(logits / temperature)``, from log-probabilities:
    a probability that rounds to 0 still costs what it should, so a confidently wrong sample keeps
    pulling the temperature up."""
    logits, labels = check_predictions(logits, labels)
    check_temperature(temperature)
    scaled = (logits - logits.max(axis=1, keepdims=True)) / temperature  # 1e308 / 0.05 overflowed
    top = scaled.max(axis=1)
    log_total = top + np.log(np.exp(scaled - top[:, None]).sum(axis=1))
    return float((log_total - scaled[np.arange(len(labels)), labels]).mean())


def check_predictions(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``scores`` (N, K) as float64 and ``labels`` (N,) as int64, each label a class index in [0, K).

    ValueError otherwise: a label of -1 would silently pick the last class, one of K an IndexError,
    and a NaN score would make every fitted value NaN.
    """
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels)
    if scores.ndim != 2 or not scores.shape[0] or not scores.shape[1] or labels.shape != scores.shape[:1]:
        raise ValueError(
            f"need scores (N, K) with N, K >= 1 and labels (N,), got {scores.shape}, {labels.shape}"
        )
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= scores.shape[1]:
        raise ValueError(f"labels must be class indices in [0, {scores.shape[1]})")
    if not np.isfinite(scores).all():  # a NaN would make every fitted value NaN without a word
        bad = int((~np.isfinite(scores).all(axis=1)).sum())
        raise ValueError(f"{bad} of {len(scores)} score rows are not finite (NaN or inf): a diverged model?")
    if np.abs(scores).max() > MAX_SCORE:  # scaled by 1 / T, such a one overflows to inf, then NaN
        raise ValueError(f"scores reach {np.abs(scores).max():.3g}, beyond {MAX_SCORE:g}: a diverged model?")
    return scores, labels.astype(np.int64)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising the NLL (golden-section search on log T)."""
    logits, labels = check_predictions(logits, labels)
    low, high = np.log(TEMPERATURE_RANGE[0]), np.log(TEMPERATURE_RANGE[1])
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    fa, fb = (negative_log_likelihood(logits, labels, np.exp(x)) for x in (a, b))
    for _ in range(60):
        if fa < fb:
            high, b, fb = b, a, fa
            a = high - ratio * (high - low)
            fa = negative_log_likelihood(logits, labels, np.exp(a))
        else:
            low, a, fa = a, b, fb
            b = low + ratio * (high - low)
            fb = negative_log_likelihood(logits, labels, np.exp(b))
    return float(np.exp(0.5 * (low + high)))


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE: sample-weighted mean |accuracy - confidence| over ``bins`` equal-width confidence bins."""
    probabilities, labels = check_predictions(probabilities, labels)
    if bins < 1:
        raise ValueError(f"need at least one bin, got {bins}")
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(labels)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            error += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(error)


def none_threshold(probabilities: np.ndarray, labels: np.ndarray, budget: float = 0.02) -> float:
    """The largest confidence threshold that turns right samples numbering at most ``budget`` of all
    samples into ``none`` (a cost of at most ``budget`` in accuracy).

    Rejected means: the top probability is below the threshold, so the label becomes ``none``.
    ValueError for a budget outside [0, 1] (a negative one indexed from the end).
    """
    if not 0 <= budget <= 1:
        raise ValueError(f"budget must be a fraction in [0, 1], got {budget}")
    probabilities, labels = check_predictions(probabilities, labels)
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(labels)
    return confidence_threshold(confidence, correct, int(np.floor(budget * len(confidence))))


def confidence_threshold(confidence: np.ndarray, correct: np.ndarray, allowed: int) -> float:
    """The largest threshold below which at most ``allowed`` of the right samples' confidences lie."""
    right = np.sort(confidence[correct])
    if not len(right) or allowed >= len(right):
        return float(right[-1]) if len(right) else 0.0
    return float(right[allowed])


def distance_threshold(distances: np.ndarray, correct: np.ndarray, budget: float) -> float:
    """The smallest distance threshold that rejects at most ``budget`` of all samples among those
    that are right (rejected: the distance is above it); 0 (off) where none is right."""
    if not 0 <= budget <= 1:
        raise ValueError(f"budget must be a fraction in [0, 1], got {budget}")
    distances = np.asarray(distances, np.float64)
    if distances.shape != np.shape(correct) or not np.isfinite(distances).all():
        raise ValueError("need one finite distance per sample")
    far = np.sort(distances[np.asarray(correct, bool)])[::-1]
    if not len(far):
        return 0.0
    allowed = int(np.floor(budget * len(distances)))
    return float(far[min(allowed, len(far) - 1)])


def check_calibratable(logits: np.ndarray, labels: np.ndarray) -> None:
    """ValueError where held-out predictions cannot fit a temperature: of one class, or all right
    (the likelihood then grows without end as T falls, the fit lands on its lower bound, and the
    none threshold on 1.0, so the node would answer ``none`` to nearly every window)."""
    if len(np.unique(labels)) < 2:
        raise ValueError(f"the {len(labels)} held-out samples are all of one class: nothing to calibrate")
    if (logits.argmax(axis=1) == labels).all():
        raise ValueError(
            f"every one of the {len(labels)} held-out predictions is right, so no temperature fits "
            "(it would sharpen every probability to 1); calibrate on more held-out people, or export "
            "without a calibration"
        )


@dataclass(frozen=True)
class Calibration:
    """What a model's metadata carries to turn logits into trustworthy probabilities and ``none``."""

    temperature: float
    none_threshold: float
    ece_before: float
    ece_after: float
    budget: float  # accuracy the thresholds may cost: right samples turned into none, as a share of all
    accuracy: float  # top-1 of the held-out samples it was fitted on
    accuracy_with_none: float  # the same, counting a rejection as wrong
    samples: int
    distance_threshold: float = 0.0  # a feature distance above it says none; 0: no distance

    def to_dict(self) -> dict[str, float]:
        """The values, without a distance threshold where there is none (an export refuses 0)."""
        values = asdict(self)
        if not self.distance_threshold:
            del values["distance_threshold"]
        return values


def calibrate(
    logits: np.ndarray, labels: np.ndarray, budget: float = 0.02, distances: np.ndarray | None = None
) -> Calibration:
    """Fit the temperature and the none threshold on held-out logits ``(N, K)`` and labels, and a
    distance threshold on their feature ``distances`` ``(N,)`` where given (module docstring)."""
    logits, labels = check_predictions(logits, labels)
    check_calibratable(logits, labels)
    temperature = fit_temperature(logits, labels)
    before, after = softmax(logits), softmax(logits, temperature)
    correct = after.argmax(axis=1) == labels
    far, familiar = 0.0, np.ones(len(labels), bool)
    if distances is not None:
        far = distance_threshold(distances, correct, budget / 2)
        familiar = np.asarray(distances) <= far
    left = int(np.floor(budget * len(labels))) - int((correct & ~familiar).sum())
    threshold = confidence_threshold(after.max(axis=1)[familiar], correct[familiar], max(left, 0))
    accepted = familiar & (after.max(axis=1) >= threshold)
    return Calibration(
        temperature=temperature,
        none_threshold=threshold,
        ece_before=expected_calibration_error(before, labels),
        ece_after=expected_calibration_error(after, labels),
        budget=budget,
        accuracy=float(correct.mean()),
        accuracy_with_none=float((correct & accepted).mean()),
        samples=len(labels),
        distance_threshold=far,
    )
