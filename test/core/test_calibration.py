"""Temperature scaling, calibration error and the none threshold on held-out scores."""

from __future__ import annotations

import numpy as np
import pytest

from bharnet_ros.core.calibration import (
    calibrate,
    distance_threshold,
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


def test_confidently_wrong_samples_cost_their_full_log_likelihood():
    """Their probabilities round to 0: a loss capped there let the fit stop at T 0.56, where the
    true minimum is near 1.6."""
    rng = np.random.default_rng(0)
    logits = rng.normal(0.0, 1.0, (270, 24))
    labels = rng.integers(0, 24, 270)
    logits[np.arange(270), labels] += 6.0
    for row, margin in zip((0, 1, 2), (90.0, 120.0, 150.0), strict=True):
        logits[row, (labels[row] + 1) % 24] += margin
    assert negative_log_likelihood(logits, labels) > 360.0 / 270  # each costs at least its margin
    temperature = fit_temperature(logits, labels)
    assert 1.2 < temperature < 2.5
    best = negative_log_likelihood(logits, labels, temperature)
    for nearby in (0.9 * temperature, 1.1 * temperature):
        assert best <= negative_log_likelihood(logits, labels, nearby)


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


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("nan"), float("inf")])
def test_softmax_refuses_a_temperature_that_is_not_positive(temperature):
    with pytest.raises(ValueError, match="temperature must be"):
        softmax(np.array([[1.0, 2.0]]), temperature)


@pytest.mark.parametrize("temperature", [1e-30, 0.05, 1.0, 20.0, 1e30])
def test_softmax_stays_finite_for_logits_of_1e30_and_float32_max(temperature):
    big = float(np.finfo(np.float32).max)
    logits = np.array([[1e30, -1e30, 0.0], [big, -big, 0.0], [big, big, big]])
    probabilities = softmax(logits, temperature)
    assert np.isfinite(probabilities).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert probabilities[0].argmax() == probabilities[1].argmax() == 0


def test_calibration_of_extreme_logits_is_finite():
    logits = np.array([[1e30, -1e30], [-1e30, 1e30], [0.0, 0.0], [1e30, 0.0]])
    result = calibrate(logits, np.array([0, 1, 0, 1]))
    assert all(np.isfinite(value) for value in result.to_dict().values())


def test_logits_near_the_float_limit_are_refused_and_float32_ones_fit_without_overflow():
    """Divided by T = 0.05, 1.7e308 overflowed: NaN likelihoods, and the search drifted to its
    upper bound without a word."""
    logits = np.array([[1.7e308, -1.7e308], [-1.7e308, 1.7e308], [0.0, 0.0], [1.7e308, 0.0]])
    labels = np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="scores reach 1.7e\\+308, beyond 1e\\+150"):
        calibrate(logits, labels)
    with np.errstate(over="raise", invalid="raise"):  # no overflow, no NaN
        limit = logits / 1.7e308 * np.finfo(np.float32).max
        assert np.isfinite(negative_log_likelihood(limit, labels, 0.05))
        assert fit_temperature(limit, labels) == pytest.approx(20.0, rel=1e-3)  # confidently wrong: the top


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([0, 1, 2, 3] * 15, "every one of the 60 held-out predictions is right"),
        ([2] * 60, "all of one class"),
    ],
)
def test_held_out_predictions_that_fit_no_temperature_are_refused(labels, message):
    """All right, the fit landed on T = 0.05 and the none threshold on 1.0: the node said none
    to nearly every window."""
    logits = np.eye(5)[labels] * 3.0
    with pytest.raises(ValueError, match=message):
        calibrate(logits, np.array(labels))


@pytest.mark.parametrize(
    ("scores", "labels"),
    [
        (np.zeros((2, 3)), np.array([0, 3])),  # a class that does not exist: was an IndexError
        (np.zeros((2, 3)), np.array([-1, 0])),  # was silently the last class
        (np.zeros((2, 3)), np.array([0.5, 1.0])),
        (np.zeros(3), np.array([0])),
        (np.zeros((2, 3)), np.array([0])),
        (np.zeros((0, 3)), np.zeros(0, int)),
    ],
)
def test_labels_must_be_class_indices_of_the_scores(scores, labels):
    for call in (
        calibrate,
        fit_temperature,
        negative_log_likelihood,
        expected_calibration_error,
        none_threshold,
    ):
        with pytest.raises(ValueError, match="need scores|class indices"):
            call(scores, labels)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_scores_are_refused_not_fitted_into_nan(value):
    scores = np.random.default_rng(0).normal(size=(6, 3))
    scores[2, 1] = value
    for call in (calibrate, fit_temperature, expected_calibration_error, none_threshold):
        with pytest.raises(ValueError, match="1 of 6 score rows are not finite"):
            call(scores, np.array([0, 1, 2, 0, 1, 2]))


@pytest.mark.parametrize("budget", [-0.5, 1.5, float("nan")])
def test_the_none_budget_is_a_fraction(budget):
    """A negative budget used to index the sorted confidences from the end."""
    probabilities = softmax(np.random.default_rng(0).normal(size=(20, 3)))
    with pytest.raises(ValueError, match="budget must be a fraction"):
        none_threshold(probabilities, np.zeros(20, int), budget)


def test_the_calibration_error_needs_a_bin():
    with pytest.raises(ValueError, match="at least one bin"):
        expected_calibration_error(np.full((2, 2), 0.5), np.array([0, 1]), bins=0)


def test_the_distance_takes_half_the_budget_and_the_confidence_the_rest():
    logits, labels = overconfident(samples=1000, seed=2)
    rng = np.random.default_rng(2)
    distances = rng.uniform(0.0, 2.0, len(labels))
    result = calibrate(logits, labels, budget=0.04, distances=distances)
    correct = softmax(logits, result.temperature).argmax(1) == labels
    far = distances > result.distance_threshold
    assert (correct & far).sum() <= 0.02 * len(labels)
    assert (correct & far).sum() >= 0.02 * len(labels) - 1  # the smallest such threshold
    assert result.accuracy - result.accuracy_with_none <= 0.04 + 1e-12
    assert calibrate(logits, labels, budget=0.04).none_threshold >= result.none_threshold
    assert result.to_dict()["distance_threshold"] == result.distance_threshold


def test_without_distances_the_calibration_carries_no_distance_threshold():
    logits, labels = overconfident(samples=200)
    assert "distance_threshold" not in calibrate(logits, labels).to_dict()


@pytest.mark.parametrize(
    ("distances", "message"),
    [(np.array([0.5, np.nan, 1.0]), "finite"), (np.array([0.5, 1.0]), "one finite distance per sample")],
)
def test_distances_must_be_finite_and_one_per_sample(distances, message):
    with pytest.raises(ValueError, match=message):
        distance_threshold(distances, np.array([True, True, False]), 0.02)


def test_no_correct_sample_switches_the_distance_off():
    assert distance_threshold(np.array([0.5, 1.0]), np.array([False, False]), 0.02) == 0.0
