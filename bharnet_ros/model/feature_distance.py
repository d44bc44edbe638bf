"""How unlike anything seen in training a window is: a distance in the model's own feature space.

A softmax is confident about motion it never learnt as readily as about its classes, so its
confidence tells a known gesture from an unknown motion little better than chance (docs/model.md,
"Unfamiliar motion"). The pooled features in front of the classifier heads do: each class of the
training data gathers around its mean there. With one covariance shared by the classes (shrunk
towards a scaled identity, as few samples estimate it poorly), a window's squared Mahalanobis
distance to its nearest class mean, summed over the branches, says how far it lies from every
class seen in training (Lee et al., NeurIPS 2018).

The distance is expressed in units of ``scale``: the share ``SCALE_QUANTILE`` of the training
windows' own distances, so that a value above 1 means "farther than nearly all of training" for
any model, and one threshold can be chosen on some models' held-out people and used with another.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

SHRINK = 0.1  # weight of the scaled identity in the shared covariance
SCALE_QUANTILE = 0.95  # the share of the training windows' distances that is one unit


def distance_branches(branches: Sequence[str]) -> list[str]:
    """Of a model's ``branches``, those the distance is measured on: BHaRNet-E's expertized ones
    (which its expert-only export keeps, so both exports of one checkpoint measure the same
    distance), or every branch of another variant."""
    return [name for name in branches if name.endswith("_expert")] or list(branches)


class FeatureDistance(nn.Module):
    """Squared Mahalanobis distance of pooled features to the nearest class mean, in training units.

    ``means`` ``(B, K, D)`` per branch and class (only classes with training windows), ``precision``
    ``(B, D, D)`` per branch; ``forward`` takes one ``(N, D)`` feature tensor per branch, in
    ``branches`` order, and returns ``(N,)``.
    """

    def __init__(
        self, branches: Sequence[str], means: torch.Tensor, precision: torch.Tensor, scale: float = 1.0
    ) -> None:
        super().__init__()
        if means.ndim != 3 or precision.shape != (means.shape[0], means.shape[2], means.shape[2]):
            raise ValueError(f"means (B, K, D), precision (B, D, D): got {means.shape}, {precision.shape}")
        if len(branches) != means.shape[0] or not means.shape[1]:
            raise ValueError(f"{len(branches)} branches for {means.shape[0]} sets of class means")
        if not (np.isfinite(scale) and scale > 0):
            raise ValueError(f"the distance scale must be a finite number > 0, got {scale}")
        self.branches = tuple(branches)
        # not persistent: a checkpoint holds the trained weights only; the distance is fitted anew
        self.register_buffer("means", means.float(), persistent=False)
        self.register_buffer("precision", precision.float(), persistent=False)
        self.scale = float(scale)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        total = None
        for branch, x in enumerate(features):
            diff = x.unsqueeze(1) - self.means[branch].unsqueeze(0)  # (N, K, D)
            squared = (torch.matmul(diff, self.precision[branch]) * diff).sum(-1)  # (N, K)
            total = squared if total is None else total + squared
        return total.min(dim=1).values / self.scale


def fit_feature_distance(
    features: Mapping[str, torch.Tensor], labels: torch.Tensor, shrink: float = SHRINK
) -> FeatureDistance:
    """The class means and shared covariance of training windows' features (``branch -> (N, D)``),
    with ``scale`` set from their own distances. ValueError when there are too few windows, or when
    they do not vary within any class (one window per class): with no spread to measure, every
    other window would lie some 1e24 units away, and a threshold would answer none to everything."""
    labels = np.asarray(labels, np.int64)
    if len(labels) < 2 or not features:
        raise ValueError(f"need at least two training windows and one branch, got {len(labels)}")
    classes = np.unique(labels)
    means, precisions = [], []
    for values in features.values():
        x = np.asarray(values, np.float64)
        if x.shape[0] != len(labels) or not np.isfinite(x).all():
            raise ValueError("features must be finite and have one row per label")
        mean = np.stack([x[labels == k].mean(axis=0) for k in classes])
        centred = x - mean[np.searchsorted(classes, labels)]
        covariance = centred.T @ centred / len(x)
        if not np.trace(covariance) > 0:
            raise ValueError("the windows do not vary within any class (one window of each, or copies)")
        spread = max(np.trace(covariance) / len(covariance), 1e-12)
        covariance = (1.0 - shrink) * covariance + shrink * spread * np.eye(len(covariance))
        means.append(mean)
        precisions.append(np.linalg.inv(covariance))
    unscaled = FeatureDistance(
        list(features), torch.as_tensor(np.stack(means)), torch.as_tensor(np.stack(precisions))
    )
    with torch.no_grad():
        distances = unscaled([torch.as_tensor(v, dtype=torch.float32) for v in features.values()])
    scale = float(np.quantile(distances.numpy(), SCALE_QUANTILE))
    return FeatureDistance(unscaled.branches, unscaled.means, unscaled.precision, max(scale, 1e-12))
