"""Small text inputs are read within bounds: a FIFO, a device or a huge file is one OSError."""

from __future__ import annotations

import os

import pytest

from bharnet_ros.core.params_file import ParamsFileError, read_params_file
from bharnet_ros.core.text_files import read_text_file


def test_a_regular_file_is_read_as_text(tmp_path):
    (tmp_path / "a.yaml").write_text("a: 1\n")
    assert read_text_file(tmp_path / "a.yaml") == "a: 1\n"


@pytest.mark.parametrize("kind", ["fifo", "device", "folder", "large"])
def test_what_is_no_small_regular_file_is_refused_at_once(tmp_path, kind):
    """A FIFO made open-set and streams wait forever; /dev/zero grew them to all memory."""
    path = {"fifo": tmp_path / "fifo", "device": "/dev/zero", "folder": tmp_path, "large": tmp_path / "big"}[
        kind
    ]
    if kind == "fifo":
        os.mkfifo(path)
    if kind == "large":
        path.write_bytes(b"a" * 101)
    with pytest.raises(OSError) as raised:
        read_text_file(path, most_bytes=100)
    expected = {
        "fifo": "not a regular file (a pipe, socket or device)",
        "device": "not a regular file (a pipe, socket or device)",
        "folder": "Is a directory",
        "large": "larger than the 100 bytes",
    }[kind]
    assert expected in raised.value.strerror
    assert raised.value.filename == str(path)


def test_a_parameters_file_that_is_a_fifo_is_one_error(tmp_path):
    os.mkfifo(tmp_path / "params.yaml")
    with pytest.raises(ParamsFileError, match="not a regular file"):
        read_params_file(tmp_path / "params.yaml")
