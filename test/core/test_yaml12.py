"""Configs read YAML as ROS 2 does (YAML 1.2 core): gesture names stay names, exponents are numbers."""

from __future__ import annotations

import math

import pytest
import yaml

from bharnet_ros.core.yaml12 import NoAliasLoader, load_yaml


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("[stop, yes, no, on, off, y, n]", ["stop", "yes", "no", "on", "off", "y", "n"]),
        ("{yes: none, no: none}", {"yes": "none", "no": "none"}),
        ("[true, false, True, FALSE]", [True, False, True, False]),
        ("[1e30, 1.0e30, -2E-3, 2.5, .5, 12, -7]", [1e30, 1e30, -2e-3, 2.5, 0.5, 12, -7]),
        ("[.inf, -.inf, ~, null]", [math.inf, -math.inf, None, None]),
        ("'yes'", "yes"),
        ("[010, 0o10, 0x1F, 1:30, 1_000]", [10, 8, 31, "1:30", "1_000"]),  # YAML 1.1: 8, 8, 31, 90, 1000
    ],
)
def test_values_read_as_yaml_1_2(text, value):
    assert load_yaml(text) == value


def test_integers_stay_integers():
    """``epochs: 50`` must not become 50.0: the float pattern matches it too."""
    assert [type(v) for v in load_yaml("[50, -7, 010, 2.0]")] == [int, int, int, float]


def test_an_integer_tag_that_is_no_integer_is_a_yaml_error():
    with pytest.raises(yaml.YAMLError, match="cannot be read"):
        load_yaml("!!int 0b101")


def test_nan_is_a_number():
    assert math.isnan(load_yaml(".nan"))


def test_aliases_are_refused_as_ros_2_refuses_them():
    """Nine lines of nested aliases would expand to a billion values in whoever walks them."""
    laughs = "a0: &a0 [lol, lol, lol]\n" + "".join(
        f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}]\n" for i in range(1, 9)
    )
    with pytest.raises(yaml.YAMLError, match="aliases"):
        load_yaml(laughs)
    with pytest.raises(yaml.YAMLError, match="aliases"):
        yaml.load(laughs, Loader=NoAliasLoader)
