"""Classification metrics from scores and labels (numpy only).

Shared by ``bharnet eval`` and ``bharnet train --loso``, so every clip accuracy this project
reports is computed one way (streams on recorded bags are scored by ``streaming_metrics``).
Conventions:

* ``scores`` is ``(N, K)``: any monotone per-class score (logits or probabilities); only the
  ranking per row matters. ``labels`` is ``(N,)`` with values in ``0..K-1``.
* Accuracies are fractions in [0, 1]. A class without samples has no accuracy (NaN) and is
  left out of the mean-class accuracy, so a validation split that misses a class does not
  count it as zero.
* Ties in top-k are broken by class index (a stable sort), so results are reproducible.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def _check(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate shapes, finiteness and label range; returns float scores ``(N, K)`` and int labels
    ``(N,)``. NaN scores are refused: a sort puts them last and argmax first, so top-1 and the
    confusion matrix would disagree."""
    scores = np.asarray(scores, dtype=np.float64)
    if np.isnan(scores).any():
        raise ValueError("scores hold NaN; a model that outputs them cannot be scored")
    if scores.ndim != 2:
        raise ValueError(f"scores must be (N, K), got shape {scores.shape}")
    labels = class_indices(labels, scores.shape[1])
    if len(scores) != len(labels):
        raise ValueError(f"{len(scores)} score rows but {len(labels)} labels")
    return scores, labels


def class_indices(values: np.ndarray, num_classes: int, name: str = "labels") -> np.ndarray:
    """``values`` flat as int64; ValueError unless each is a whole number in 0..num_classes-1 (a cast
    would make 1.5 class 1, and NaN some class)."""
    given = np.asarray(values).reshape(-1)
    floats = given.dtype.kind == "f" and np.isfinite(given).all() and np.array_equal(given, np.round(given))
    if given.size and given.dtype.kind not in "iub" and not floats:
        raise ValueError(f"{name} must be whole class indices")
    indices = given.astype(np.int64)
    if len(indices) and (indices.min() < 0 or indices.max() >= num_classes):
        raise ValueError(f"{name} must lie in 0..{num_classes - 1}")
    return indices


def top_k_hits(scores: np.ndarray, labels: np.ndarray, k: int = 1) -> np.ndarray:
    """``(N,)`` bool: whether each sample's label is among its ``k`` highest scores."""
    scores, labels = _check(scores, labels)
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    k = min(k, scores.shape[1])
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.any(order == labels[:, None], axis=1)


def top_k_accuracy(scores: np.ndarray, labels: np.ndarray, k: int = 1) -> float:
    """Fraction of samples whose label is among the ``k`` best scores (NaN without samples)."""
    hits = top_k_hits(scores, labels, k)
    return float(hits.mean()) if len(hits) else float("nan")


def confusion_matrix(predictions: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """``(K, K)`` int64 counts; row = true class, column = predicted class."""
    predictions = class_indices(predictions, num_classes, "predictions")
    labels = class_indices(labels, num_classes)
    if len(predictions) != len(labels):
        raise ValueError(f"{len(predictions)} predictions but {len(labels)} labels")
    flat = labels * num_classes + predictions
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def per_class_accuracy(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-class recall (NaN where a class has no samples) and per-class sample counts."""
    confusion = np.asarray(confusion)
    counts = confusion.sum(axis=1)
    correct = np.diag(confusion)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.where(counts > 0, correct / np.maximum(counts, 1), np.nan)
    return accuracy.astype(np.float64), counts.astype(np.int64)


def mean_class_accuracy(confusion: np.ndarray) -> float:
    """Mean of the per-class accuracies over classes that have samples (NaN if none)."""
    accuracy, counts = per_class_accuracy(confusion)
    present = counts > 0
    return float(accuracy[present].mean()) if present.any() else float("nan")


def subset_accuracy(
    predictions: np.ndarray, labels: np.ndarray, classes: Sequence[int], num_classes: int
) -> tuple[float, int]:
    """Top-1 accuracy over the samples whose true class is in ``classes``, and their count.

    Used for the hand-intensive subset: predictions outside the subset count as wrong, as in
    the paper's subset numbers (the model still chooses among all classes).
    """
    predictions = class_indices(predictions, num_classes, "predictions")
    labels = class_indices(labels, num_classes)
    members = np.isin(labels, np.asarray(list(classes), dtype=np.int64))
    count = int(members.sum())
    if count == 0:
        return float("nan"), 0
    return float((predictions[members] == labels[members]).mean()), count


@dataclass(frozen=True)
class ClassificationReport:
    """All metrics of one evaluation; accuracies are fractions, NaN where undefined."""

    num_samples: int
    top1: float
    top5: float
    mean_class: float
    per_class: np.ndarray  # (K,) accuracy, NaN for classes without samples
    counts: np.ndarray  # (K,) samples per class
    confusion: np.ndarray  # (K, K) rows = true class
    subset: float | None = None  # accuracy on the chosen class subset (e.g. hand-intensive)
    subset_count: int = 0

    def summary(self) -> dict[str, float | int | None]:
        """Scalar metrics as plain Python numbers (JSON-ready; NaN becomes None)."""
        values = {
            "num_samples": self.num_samples,
            "top1": self.top1,
            "top5": self.top5,
            "mean_class": self.mean_class,
            "subset": self.subset,
            "subset_count": self.subset_count,
        }
        return {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in values.items()}


def classification_report(
    scores: np.ndarray, labels: np.ndarray, subset: Sequence[int] | None = None
) -> ClassificationReport:
    """Top-1, top-5, mean-class, per-class accuracy, confusion and optional subset accuracy."""
    scores, labels = _check(scores, labels)
    predictions = np.argmax(scores, axis=1) if len(scores) else np.zeros(0, np.int64)
    confusion = confusion_matrix(predictions, labels, scores.shape[1])
    per_class, counts = per_class_accuracy(confusion)
    subset_value, subset_count = (None, 0)
    if subset is not None:
        subset_value, subset_count = subset_accuracy(predictions, labels, subset, scores.shape[1])
    return ClassificationReport(
        num_samples=len(labels),
        top1=top_k_accuracy(scores, labels, 1),
        top5=top_k_accuracy(scores, labels, 5),
        mean_class=mean_class_accuracy(confusion),
        per_class=per_class,
        counts=counts,
        confusion=confusion,
        subset=subset_value,
        subset_count=subset_count,
    )
