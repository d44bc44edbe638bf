"""Temperature scaling, calibration error and the none threshold on held-out scores."""

from __future__ import annotations

import numpy as np
import pytest

from bharnet_ros.core.calibration import (
    calibrate,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    none_threshold,
    softmax,
)


def overconfident(samples: int = 4000, classes: int = 5, true_temperature: float = 3.0, seed: int = 0):
    """Logits whose labels are drawn from softmax(logits / 3): the raw softmax is over-confident."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 4.0, (samples, classes))
    probabilities = softmax(logits, true_temperature)
    labels = np.array([rng.choice(classes, p=p) for p in probabilities])
    return logits, labels


def test_fit_temperature_recovers_the_true_temperature():
    logits, labels = overconfident()
    temperature = fit_temperature(logits, labels)
    assert temperature == pytest.approx(3.0, rel=0.1)
    assert negative_log_likelihood(logits, labels, temperature) < negative_log_likelihood(logits, labels)


def test_calibration_lowers_the_ece_and_keeps_every_decision():
    logits, labels = overconfident()
    result = calibrate(logits, labels)
    assert result.ece_after < 0.5 * result.ece_before
    assert np.array_equal(softmax(logits).argmax(1), softmax(logits, result.temperature).argmax(1))
    assert result.samples == len(labels)


def test_ece_is_zero_when_confidence_equals_accuracy():
    probabilities = np.tile([0.75, 0.25], (8, 1))
    labels = np.array([0, 0, 0, 1, 0, 0, 0, 1])
    assert expected_calibration_error(probabilities, labels) == pytest.approx(0.0)
    assert expected_calibration_error(probabilities, 1 - labels) == pytest.approx(0.5)


def test_none_threshold_rejects_at_most_the_budget_of_correct_samples():
    logits, labels = overconfident(seed=1)
    probabilities = softmax(logits, 3.0)
    for budget in (0.0, 0.02, 0.1):
        threshold = none_threshold(probabilities, labels, budget)
        correct = probabilities.argmax(1) == labels
        lost = (correct & (probabilities.max(1) < threshold)).mean()
        assert lost <= budget + 1e-12
    assert none_threshold(probabilities, labels, 0.1) > none_threshold(probabilities, labels, 0.02)
    result = calibrate(logits, labels, budget=0.02)
    assert result.accuracy - result.accuracy_with_none <= 0.02 + 1e-12
