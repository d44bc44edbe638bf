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
