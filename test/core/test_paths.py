"""Shipped files are found from a checkout and from an install prefix."""

import sys
from pathlib import Path

import pytest

from bharnet_ros.core import paths
from bharnet_ros.core.paths import share_file


def test_shipped_dds_profile_is_found():
    assert "<segment_size>16777216</segment_size>" in share_file("config/fastdds.xml").read_text()


def test_missing_file_says_where_it_looked():
    with pytest.raises(FileNotFoundError, match="looked in"):
        share_file("config/no_such_file.yaml")


def test_the_nodes_profile_reaches_other_computers_and_the_tests_profile_stays_local():
    assert "interfaceWhiteList" not in share_file("config/fastdds.xml").read_text()
    assert "<address>127.0.0.1</address>" in share_file("config/fastdds_localhost.xml").read_text()


def test_an_installed_copy_reads_its_own_prefix_before_the_python_prefix(tmp_path, monkeypatch):
    """A colcon overlay's copy must not read an older pip-installed copy's files in the venv."""
    overlay = tmp_path / "install" / "bharnet_ros"
    module = overlay / "lib" / "python3.12" / "site-packages" / "bharnet_ros" / "core" / "paths.py"
    monkeypatch.setattr(paths, "CHECKOUT", tmp_path / "not_a_checkout")
    monkeypatch.setattr(paths, "INSTALL_PREFIX", Path(module).parents[5])
    roots = paths.share_dirs()
    assert roots[:2] == [overlay / "share" / "bharnet_ros", Path(sys.prefix) / "share" / "bharnet_ros"]
