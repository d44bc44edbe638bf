"""The requirement files a robot installs from pin what the project is tested with (requirements.lock)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s#;+]+)")  # name==version, a local label (+cpu) left out


def pins(name: str) -> dict[str, str]:
    lines = (REPO / name).read_text(encoding="utf-8").splitlines()
    return {re.sub(r"[-_.]+", "-", m[1]).lower(): m[2] for line in lines if (m := PIN.match(line.strip()))}


@pytest.mark.parametrize(
    "name", ["requirements-runtime.txt", "requirements-training.txt", "requirements.txt"]
)
def test_every_pin_is_the_locked_version(name):
    locked, pinned = pins("requirements.lock"), pins(name)
    assert pinned, f"{name} pins nothing"
    assert {k: v for k, v in pinned.items() if locked.get(k) != v} == {}


def test_the_robot_files_pull_in_no_ros_wheels():
    """A robot has ROS from its distribution: PyPI's Kilted wheels would install a second rclpy."""
    for name in ("requirements-runtime.txt", "requirements-training.txt"):
        assert not [p for p in pins(name) if p.startswith("ros-")], name
