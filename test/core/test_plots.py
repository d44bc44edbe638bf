"""Report figures draw any class name as written."""

from __future__ import annotations

import numpy as np

from bharnet_ros.core.annotations import Segment
from bharnet_ros.core.bag_eval import plot_timeline
from bharnet_ros.core.streaming_metrics import Decision, evaluate_stream
from bharnet_ros.training.evaluate import plot_confusion

NAMES = ["$_$", "a_$^$", "costs $5 or $6"]  # mathtext that fails to parse, and some that parses


def test_a_confusion_matrix_of_dollar_names_is_drawn(tmp_path):
    """A name such as $_$ stopped `eval` and each `--loso` fold with a parse error after their work."""
    plot_confusion(tmp_path / "confusion.png", np.eye(3, dtype=int), NAMES)
    assert (tmp_path / "confusion.png").stat().st_size > 0


def test_a_timeline_of_dollar_labels_is_drawn(tmp_path):
    segments = [Segment(i, i + 1.0, name) for i, name in enumerate(NAMES)]
    predictions = [Decision(i + 0.5, name) for i, name in enumerate(NAMES)]
    plot_timeline(
        tmp_path / "t.png", segments, predictions, evaluate_stream(segments, predictions), "deterministic"
    )
    assert (tmp_path / "t.png").stat().st_size > 0
