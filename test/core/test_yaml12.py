"""Configs read YAML as ROS 2 does (YAML 1.2 core): gesture names stay names, exponents are numbers."""

from __future__ import annotations

import math

import pytest

from bharnet_ros.core.yaml12 import load_yaml


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("[stop, yes, no, on, off, y, n]", ["stop", "yes", "no", "on", "off", "y", "n"]),
        ("{yes: none, no: none}", {"yes": "none", "no": "none"}),
        ("[true, false, True, FALSE]", [True, False, True, False]),
        ("[1e30, 1.0e30, -2E-3, 2.5, .5, 12, -7]", [1e30, 1e30, -2e-3, 2.5, 0.5, 12, -7]),
        ("[.inf, -.inf, ~, null]", [math.inf, -math.inf, None, None]),
        ("'yes'", "yes"),
    ],
)
def test_values_read_as_yaml_1_2(text, value):
    assert load_yaml(text) == value


def test_nan_is_a_number():
    assert math.isnan(load_yaml(".nan"))
