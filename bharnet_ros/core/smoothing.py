"""Temporal smoothing with hysteresis, so the published label does not flicker between windows."""

from __future__ import annotations

import numpy as np


class LabelSmoother:
    """Exponential moving average of class probabilities plus a switching margin.

    The label changes only when another class's smoothed probability beats the current label's by
    ``switch_margin``. ``alpha`` is the weight of the newest window (1 = no smoothing).
    """

    def __init__(self, alpha: float = 0.5, switch_margin: float = 0.1) -> None:
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        if not 0 <= switch_margin < 1:  # 1 or NaN: no lead would ever beat it, the label would freeze
            raise ValueError(f"switch_margin must be in [0, 1), got {switch_margin}")
        self.alpha = alpha
        self.switch_margin = switch_margin
        self.probabilities: np.ndarray | None = None
        self.label: int | None = None

    def update(self, probabilities: np.ndarray) -> tuple[int, float]:
        """Fold in one window's probabilities; returns (class index, smoothed probability).

        ValueError for an empty or non-finite vector: one NaN would stay in the average for good.
        """
        probabilities = np.asarray(probabilities, dtype=np.float64)
        if probabilities.ndim != 1 or not probabilities.size or not np.isfinite(probabilities).all():
            raise ValueError(f"need one finite probability per class, got {probabilities}")
        if self.probabilities is None or self.probabilities.shape != probabilities.shape:
            self.probabilities = probabilities.copy()  # other classes: the held label meant another
            self.label = None
        else:
            self.probabilities = self.alpha * probabilities + (1 - self.alpha) * self.probabilities
        best = int(np.argmax(self.probabilities))
        current = self.label
        if current is None or self.probabilities[best] > self.probabilities[current] + self.switch_margin:
            self.label = best
        return self.label, float(self.probabilities[self.label])

    def confident(self, threshold: float) -> tuple[int, float]:
        """The held label and its smoothed probability, unless that is below ``threshold`` while
        the best class reaches it: then the best class becomes the label. Hysteresis keeps a label
        against small leads, not against a rival the ``none`` rule would have published. Call after
        :meth:`update`; with neither label confident, the best class and its probability."""
        if self.probabilities is None or self.label is None:
            raise RuntimeError("confident() needs an update() first")
        best = int(np.argmax(self.probabilities))
        if self.probabilities[self.label] < threshold <= self.probabilities[best]:
            self.label = best
        held = self.label if self.probabilities[self.label] >= threshold else best
        return held, float(self.probabilities[held])

    def reset(self) -> None:
        self.probabilities = None
        self.label = None
