"""The checks every importer applies: frame rate, sample length and finiteness, file size."""

from __future__ import annotations

import re

import numpy as np
import pytest

from bharnet_ros.training import importers
from bharnet_ros.training.dataset import DatasetError, Sample
from bharnet_ros.training.importers import check_fps, check_sample, check_text_file_size


def sample(frames: int) -> Sample:
    return Sample(
        name="clip",
        label=0,
        body=np.zeros((1, frames, 25, 4), np.float32),
        hands=np.zeros((1, frames, 2, 21, 4), np.float32),
        hand_present=np.zeros((1, frames, 2), bool),
        timestamps=np.arange(frames) / 30.0,
    )


@pytest.mark.parametrize(
    "fps", [float("nan"), float("inf"), -float("inf"), 0.0, 1e-300, 0.09, -30.0, 1000.5, 1e308]
)
def test_frame_rates_that_are_not_finite_positive_and_sane_are_refused(fps):
    with pytest.raises(DatasetError, match="--fps"):
        check_fps(fps)


@pytest.mark.parametrize("fps", [0.1, 0.5, 10, 30.0, 1000.0])
def test_usable_frame_rates_pass(fps):
    assert check_fps(fps) == fps


def test_a_sample_without_frames_is_refused_by_name():
    assert check_sample(sample(3), "world").num_frames == 3
    with pytest.raises(DatasetError, match="clip: no frames"):
        check_sample(sample(0), "world")
    broken = sample(2)
    broken.body[0, 1, 3, 0] = np.inf
    with pytest.raises(DatasetError, match="NaN or infinite"):
        check_sample(broken, "world")


@pytest.mark.parametrize(
    ("space", "damage", "message"),
    [
        (
            "world",
            lambda s: s.body.__setitem__((0, 1, 3, 0), 1e30),
            "coordinates beyond ±100 are not plausible",
        ),
        ("image", lambda s: s.hands.__setitem__((0, 1, 0, 3, 1), 11.0), "coordinates beyond ±10 are not"),
        ("world", lambda s: s.body.__setitem__((0, 0, 0, 3), 1.5), "body scores must lie in [0, 1]"),
        ("world", lambda s: s.timestamps.__setitem__(1, 1e300), "timestamps beyond ±1e+10 s"),
    ],
)
def test_a_sample_training_would_refuse_is_skipped_at_import_by_name(space, damage, message):
    """Finite, so the file format takes it, but every training on the dataset would fail on it."""
    broken = sample(2)
    damage(broken)
    with pytest.raises(DatasetError, match=re.escape(f"clip: {message}")):
        check_sample(broken, space)


def test_text_files_over_the_bound_are_refused_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "big.json"
    path.write_text("x" * 100)
    check_text_file_size(path, "test file")
    monkeypatch.setattr(importers, "MAX_TEXT_FILE_BYTES", 99)
    with pytest.raises(DatasetError, match="big.json: 100 bytes"):
        check_text_file_size(path, "test file")
