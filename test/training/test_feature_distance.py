"""The feature distance's fit (``training/feature_distance.py``): mirrored as training mirrored."""

from __future__ import annotations

import pytest

from bharnet_ros.training import feature_distance
from bharnet_ros.training.teach import TEACH_AUGMENT


class FittedError(Exception):
    """Raised by the stand-in feature extraction once the augmentation it was given is known."""


def augment_of_fit(monkeypatch, **kwargs):
    """The augmentation fit_distance extracts its features with (the extraction itself stands in)."""
    given = []

    def extract(model, data, classes, preprocess, views, augment, progress=None):
        given.append(augment)
        raise FittedError

    monkeypatch.setattr(feature_distance, "extract_features", extract)
    with pytest.raises(FittedError):
        feature_distance.fit_distance(None, None, ["swipe_in", "swipe_out", "wave"], None, **kwargs)
    return given[0]


def test_the_fit_mirrors_each_class_into_its_twin_as_training_did(monkeypatch):
    """Always paired by names, swipe_in's mirrored windows (swipe_out's look) kept its label, and a
    class the recipe never mirrored was mirrored."""
    augment = augment_of_fit(monkeypatch, twins=[1, 0, -1])
    assert [list(pair) for pair in augment.mirror_pairs] == [["swipe_in", "swipe_out"]]
    assert augment.mirror_never == ("wave",)
    assert augment_of_fit(monkeypatch) is TEACH_AUGMENT  # by names where nothing is recorded
