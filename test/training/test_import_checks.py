"""The checks every importer applies: frame rate, sample length and finiteness, file size."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

from bharnet_ros.training import importers
from bharnet_ros.training.dataset import DatasetError, Sample
from bharnet_ros.training.importers import check_fps, check_sample, read_input_text


def sample(frames: int) -> Sample:
    """A clip of a body seen at the middle of the image, every joint (score 1), no hands."""
    return Sample(
        name="clip",
        label=0,
        body=np.full((1, frames, 25, 4), (0.5, 0.5, 0.0, 1.0), np.float32),
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
            "body coordinates beyond ±100 are not plausible",
        ),
        (
            "image",
            lambda s: s.hands.__setitem__((0, 1, 0, 3, 1), 11.0),
            "hand coordinates beyond ±10 are not",
        ),
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
    assert read_input_text(path, "test file") == "x" * 100
    monkeypatch.setattr(importers, "MAX_TEXT_FILE_BYTES", 99)
    with pytest.raises(DatasetError, match="big.json: 100 bytes"):
        read_input_text(path, "test file")


def test_a_sample_text_file_is_bounded_by_what_parsing_it_takes(tmp_path):
    """64 MiB of "10 " took 1.6 GB to parse before its counts were refused."""
    from bharnet_ros.training.importers import LONG_TEXT_FILE_BYTES

    path = tmp_path / "big.skeleton"
    path.write_bytes(b"10 " * (6 << 20))  # 18 MiB
    with pytest.raises(DatasetError, match="more than the 16 MiB a .skeleton file holds"):
        read_input_text(path, ".skeleton file")
    assert len(read_input_text(path, "PKU-MMD skeleton file", most_bytes=LONG_TEXT_FILE_BYTES)) == 18 << 20


def test_every_importer_refuses_a_pipe_or_a_device_among_its_files(tmp_path):
    """A FIFO waited for a writer forever (the import hung); a link to /dev/zero filled the memory."""
    from bharnet_ros.training.importers import mpdata, ntu, nucla, pkummd

    fifo = tmp_path / "S001C001P001R001A001.skeleton"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.npy"
    zero.symlink_to("/dev/zero")
    readers = [
        lambda path: ntu.read_skeleton_file(path),
        lambda path: nucla._read_record(path),
        lambda path: pkummd._data_lines(path, "PKU-MMD skeleton file"),
        lambda path: pkummd.read_split_file(path),
        lambda path: mpdata._read_frame(path),
        lambda path: mpdata.read_npz(path, ("pose",), 1 << 20),
    ]
    for read in readers:
        for path in (fifo, zero):
            with pytest.raises(OSError, match="not a regular file"):
                read(path)


def test_an_npy_header_of_a_negative_item_size_is_refused_unread():
    """'<V99999999999999999999' parses with itemsize -1: the size check passed and read(-1) read all."""
    import io

    from bharnet_ros.training.importers.mpdata import read_npy

    header = {"descr": "<V99999999999999999999", "fortran_order": False, "shape": (2,)}
    stream = io.BytesIO()
    np.lib.format.write_array_header_1_0(stream, header)
    stream.write(b"\0" * 1000)
    stream.seek(0)
    with pytest.raises(DatasetError, match="declares shape"):
        read_npy(stream, "pose.npy", 100)


def test_a_sample_in_which_nobody_was_found_is_skipped():
    """MP_Data and N-UCLA took all-zero recordings as samples of their class, score 0 throughout."""
    empty = sample(3)
    empty.body[:] = 0.0
    empty.hands[:] = 0.0
    empty.hand_present[:] = False
    with pytest.raises(DatasetError, match="clip: nobody in any frame"):
        check_sample(empty, "image")
    empty.hand_present[0, 1, 0] = True  # a hand alone is somebody
    empty.hands[0, 1, 0] = 0.5
    assert check_sample(empty, "image") is empty
