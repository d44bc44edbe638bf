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


def test_export_and_streams_fit_with_the_twins_of_the_config_the_folds_used(monkeypatch, tmp_path):
    """They took the checkpoint's test_mirror record, which is empty where test-time mirroring is
    off: the pairs by names, where the folds' distance used the recipe's mirror_never."""
    from types import SimpleNamespace

    config = tmp_path / "train.yaml"
    config.write_text("augment:\n  mirror_never: [swipe_in, swipe_out]\n")
    given = []

    def fit(model, data, classes, preprocess, progress=None, twins=None):
        given.append(twins)
        raise FittedError

    monkeypatch.setattr(
        feature_distance, "training_data_in", lambda _: SimpleNamespace(missing=[], files=[config])
    )
    monkeypatch.setattr(
        feature_distance,
        "load_rehearsal",
        lambda _: SimpleNamespace(
            class_names=["swipe_in", "swipe_out", "wave"], class_counts=lambda: [1, 1, 1]
        ),
    )
    monkeypatch.setattr(feature_distance, "fit_distance", fit)
    checkpoint = SimpleNamespace(class_names=["swipe_in", "swipe_out", "wave"], preprocess_config=None)
    with pytest.raises(FittedError):
        feature_distance.distance_from_config(None, checkpoint, config)
    assert given == [[-1, -1, 2]]


def test_a_config_too_large_or_naming_many_missing_files_is_one_short_line(tmp_path):
    """--distance-from parsed megabytes of YAML (35 s, 0.7 GB) where train refuses them, and listed
    every missing file in its one line."""
    big = tmp_path / "big.yaml"
    big.write_text("data:\n  train: [" + "a," * 150_000 + "a]\n")
    with pytest.raises(ValueError, match="cannot be read: .*larger than the 262144 bytes"):
        feature_distance.distance_from_config(None, None, big)
    many = tmp_path / "many.yaml"
    many.write_text("data:\n  train: [" + ", ".join(f"gone_{k}.npz" for k in range(50)) + "]\n")
    with pytest.raises(ValueError, match=r"its training data is not here \(.*gone_4.npz and 45 more\)$"):
        feature_distance.distance_from_config(None, None, many)
