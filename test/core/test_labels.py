"""Labels and values as they go into one-line messages."""

from __future__ import annotations

import pytest

from bharnet_ros.core.labels import MAX_LABEL_LENGTH, error_line, plain_label, shorten, shown


def test_plain_labels_are_printable_names_of_sane_length():
    assert plain_label("thumbs_up")
    assert not plain_label("")
    assert not plain_label("a\nb")
    assert not plain_label("x" * (MAX_LABEL_LENGTH + 1))
    assert not plain_label(5)


def test_values_are_cut_to_one_short_line():
    assert shorten("abcdef", 5) == "ab..."
    assert shown("x" * 100, 10) == "'xxxxxx..."
    assert shown(10**5000, 40) == "<int too large to show>"


@pytest.mark.parametrize(
    ("err", "expected"),
    [
        (ValueError("first\nsecond"), "first"),
        (ValueError("\n  \nlater line"), "later line"),
        (RuntimeError(), "RuntimeError"),  # a bare exception: an IndexError before
        (OSError("x" * 500), "x" * 197 + "..."),
    ],
)
def test_an_errors_first_line_or_its_class(err, expected):
    assert error_line(err) == expected
