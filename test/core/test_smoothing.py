"""Label smoothing and hysteresis."""

import numpy as np
import pytest

from bharnet_ros.core.smoothing import LabelSmoother


def test_first_window_decides_and_single_blips_do_not_flip_the_label():
    smoother = LabelSmoother(alpha=0.5, switch_margin=0.1)
    assert smoother.update([0.8, 0.2])[0] == 0
    assert smoother.update([0.3, 0.7])[0] == 0  # smoothed 0.55 vs 0.45: within the margin
    label, confidence = smoother.update([0.1, 0.9])  # smoothed 0.325 vs 0.675
    assert label == 1
    assert confidence == pytest.approx(0.675)


def test_flicker_between_two_classes_gives_a_steady_label():
    smoother = LabelSmoother(alpha=0.5, switch_margin=0.1)
    labels = [smoother.update(p)[0] for p in [[0.6, 0.4], [0.4, 0.6]] * 10]
    assert len(set(labels)) == 1


def test_no_smoothing_follows_the_raw_argmax_and_reset_forgets():
    smoother = LabelSmoother(alpha=1.0, switch_margin=0.0)
    assert [smoother.update(p)[0] for p in np.eye(3)] == [0, 1, 2]
    smoother.reset()
    assert smoother.label is None


@pytest.mark.parametrize(("alpha", "margin"), [(0.0, 0.1), (1.5, 0.1), (0.5, -1.0)])
def test_bad_settings_are_refused(alpha, margin):
    with pytest.raises(ValueError, match="must be"):
        LabelSmoother(alpha, margin)


def test_defaults_are_half_weight_and_a_tenth_margin():
    smoother = LabelSmoother()
    assert (smoother.alpha, smoother.switch_margin) == (0.5, 0.1)


def test_a_lead_of_exactly_the_margin_does_not_switch():
    smoother = LabelSmoother(alpha=1.0, switch_margin=0.25)
    smoother.update([1.0, 0.0])
    assert smoother.update([0.375, 0.625]) == (0, 0.375)  # 0.625 == 0.375 + 0.25: not beaten
    assert smoother.update([0.25, 0.75])[0] == 1


def test_after_reset_the_next_window_decides_alone():
    smoother = LabelSmoother(alpha=0.5, switch_margin=0.1)
    smoother.update([0.9, 0.1])
    smoother.reset()
    assert smoother.update([0.2, 0.8]) == (1, 0.8)


@pytest.mark.parametrize("margin", [float("nan"), float("inf"), 1.5, 1.0])
def test_a_margin_no_lead_can_beat_is_refused(margin):
    """With a NaN margin the comparison is always false: the first label would stay for good."""
    with pytest.raises(ValueError, match="switch_margin must be in"):
        LabelSmoother(0.5, margin)
    LabelSmoother(0.5, 0.99)  # the node's largest margin


@pytest.mark.parametrize("probabilities", [[np.nan, 0.5], [np.inf, 0.0], [], [[0.5, 0.5]]])
def test_scores_that_would_poison_the_average_are_refused(probabilities):
    smoother = LabelSmoother()
    smoother.update([0.6, 0.4])
    with pytest.raises(ValueError, match="one finite probability per class"):
        smoother.update(probabilities)
    assert smoother.update([0.6, 0.4]) == (0, pytest.approx(0.6))  # the average is untouched


def test_the_largest_margin_still_lets_a_steady_new_label_through():
    """0.99, the node's upper bound, asks a lot but is reachable; 1 would freeze the label."""
    smoother = LabelSmoother(alpha=0.5, switch_margin=0.99)
    smoother.update(np.array([1.0, 0.0]))
    labels = [smoother.update(np.array([0.0, 1.0]))[0] for _ in range(20)]
    assert labels[-1] == 1


def test_fewer_classes_than_before_start_the_label_afresh():
    """The held label was class 5 of six; with three classes it raised an IndexError."""
    smoother = LabelSmoother()
    smoother.update(np.array([0, 0, 0, 0, 0, 1.0]))
    assert smoother.update(np.array([1.0, 0, 0])) == (0, 1.0)
