"""Classification metrics: top-k, mean-class, per-class, confusion and subset accuracy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bharnet_ros.core.metrics import (
    classification_report,
    confusion_matrix,
    mean_class_accuracy,
    per_class_accuracy,
    subset_accuracy,
    top_k_accuracy,
    top_k_hits,
)

# Four samples, three classes; predictions 0, 1, 1, 2 for labels 0, 0, 1, 2.
SCORES = np.array(
    [
        [0.9, 0.05, 0.05],
        [0.2, 0.7, 0.1],
        [0.1, 0.8, 0.1],
        [0.3, 0.2, 0.5],
    ]
)
LABELS = np.array([0, 0, 1, 2])


def test_top1_and_top2():
    assert top_k_accuracy(SCORES, LABELS, 1) == pytest.approx(0.75)
    assert top_k_hits(SCORES, LABELS, 2).tolist() == [True, True, True, True]
    assert top_k_accuracy(SCORES, LABELS, 5) == 1.0  # k beyond K means every class


def test_top_k_ties_break_by_class_index():
    scores = np.zeros((1, 4))
    assert top_k_hits(scores, np.array([0]), 1).tolist() == [True]
    assert top_k_hits(scores, np.array([1]), 1).tolist() == [False]


def test_confusion_rows_are_true_classes():
    confusion = confusion_matrix(np.array([0, 1, 1, 2]), LABELS, 3)
    assert confusion.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]


def test_per_class_and_mean_class_skip_empty_classes():
    confusion = confusion_matrix(np.array([0, 1, 1]), np.array([0, 0, 1]), 4)
    accuracy, counts = per_class_accuracy(confusion)
    assert counts.tolist() == [2, 1, 0, 0]
    assert accuracy[:2].tolist() == [0.5, 1.0]
    assert np.isnan(accuracy[2:]).all()
    assert mean_class_accuracy(confusion) == pytest.approx(0.75)


def test_subset_accuracy_counts_predictions_outside_the_subset_as_wrong():
    value, count = subset_accuracy(np.array([0, 1, 1, 2]), LABELS, [0], 3)
    assert (value, count) == (0.5, 2)
    value, count = subset_accuracy(np.array([0]), np.array([0]), [5], 6)
    assert math.isnan(value)
    assert count == 0


@pytest.mark.parametrize(
    ("predictions", "labels", "message"),
    [
        ([0.9, 1.5, 1.2, 2.7], [0, 0, 1, 2], "predictions must be whole class indices"),
        ([0, 1, 1, 2], [0.5, 0, 1, 2], "labels must be whole class indices"),
        ([float("nan"), 1, 1, 2], [0, 0, 1, 2], "predictions must be whole class indices"),
        ([0, 1, 1, 2], [-1, 0, 1, 5], "labels must lie in 0..2"),
    ],
)
def test_confusion_and_subset_refuse_what_is_no_class_index(predictions, labels, message):
    """A cast made 1.5 class 1 and NaN some class, without a word."""
    with pytest.raises(ValueError, match=message):
        confusion_matrix(np.array(predictions), np.array(labels), 3)
    with pytest.raises(ValueError, match=message):
        subset_accuracy(np.array(predictions), np.array(labels), [0], 3)


def test_report_and_json_summary():
    report = classification_report(SCORES, LABELS, subset=[1, 2])
    assert report.top1 == pytest.approx(0.75)
    assert report.mean_class == pytest.approx((0.5 + 1 + 1) / 3)
    assert report.subset == 1.0
    assert report.subset_count == 2
    summary = report.summary()
    assert summary["num_samples"] == 4
    assert summary["top5"] == 1.0
    empty = classification_report(np.zeros((0, 3)), np.zeros(0, int)).summary()
    assert empty["top1"] is None
    assert empty["mean_class"] is None


def test_bad_inputs_are_errors():
    with pytest.raises(ValueError, match="labels must lie"):
        top_k_accuracy(SCORES, np.array([0, 0, 1, 3]))
    with pytest.raises(ValueError, match="score rows"):
        top_k_accuracy(SCORES, LABELS[:2])
    with pytest.raises(ValueError, match=r"\(N, K\)"):
        top_k_accuracy(SCORES[0], LABELS[:1])


def test_nan_scores_and_fractional_labels_are_refused():
    """A sort put NaN last and argmax first: top-1 said right where the confusion matrix said wrong;
    a label of 2.7 was read as class 2."""
    with pytest.raises(ValueError, match="scores hold NaN"):
        classification_report(np.array([[np.nan, 1.0, 0.0], [0.0, 2.0, 1.0]]), np.array([1, 1]))
    with pytest.raises(ValueError, match="labels must be whole class indices"):
        top_k_accuracy(np.eye(3), np.array([0.9, 1.2, 2.7]))
    assert top_k_accuracy(np.eye(3), np.array([0.0, 1.0, 2.0])) == 1.0  # whole numbers as floats are fine
