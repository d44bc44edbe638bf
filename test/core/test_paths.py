"""Shipped files are found from a checkout and from an install prefix."""

import pytest

from bharnet_ros.core.paths import share_file


def test_shipped_dds_profile_is_found():
    assert "<segment_size>16777216</segment_size>" in share_file("config/fastdds.xml").read_text()


def test_missing_file_says_where_it_looked():
    with pytest.raises(FileNotFoundError, match="looked in"):
        share_file("config/no_such_file.yaml")
