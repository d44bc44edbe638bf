"""Annotation files: the CSV and YAML formats, both time bases, and one clear error per mistake."""

from __future__ import annotations

import numpy as np
import pytest

from bharnet_ros.core.annotations import (
    AnnotationError,
    Segment,
    label_at,
    labels_at,
    load_annotations,
    parse_csv,
    parse_yaml,
    save_csv,
)


def test_relative_csv_skips_comments_and_sorts_segments():
    text = "# made with a video player\nstart,end,label\n\n2.5,4.0,wave\n0,2.5, idle \n# gap\n5,6.5,stop\n"
    annotations = parse_csv(text)
    assert not annotations.absolute
    assert annotations.segments == (
        Segment(0, 2.5, "idle"),
        Segment(2.5, 4.0, "wave"),
        Segment(5, 6.5, "stop"),
    )
    assert annotations.relative_to(100.0) == list(annotations.segments)


def test_a_commented_row_stays_a_comment_whatever_unicode_calls_a_line_break():
    """str.splitlines also breaks at \\x1c-\\x1e, \\x85 and \\u2028: a row commented out
    behind one came back as a segment, and line numbers were off."""
    for separator in ("\u2028", "\x1c", "\x85"):
        text = f"start,end,label\n0,1,idle\n# old take{separator}5,6,stop\n2,3,wave\n"
        assert [seg.label for seg in parse_csv(text).segments] == ["idle", "wave"]
    with pytest.raises(AnnotationError, match="line 4: end 'x' is not a number"):
        parse_csv("# a note\u2028more of it\nstart,end,label\n0,1,idle\n2,x,wave\n")


def test_a_csv_saved_by_a_spreadsheet_with_a_byte_order_mark_reads_as_any_other(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_bytes("start,end,label\n0,2.5,idle\n".encode("utf-8-sig"))
    assert load_annotations(path).segments == (Segment(0, 2.5, "idle"),)


def test_absolute_csv_columns_in_any_order_become_relative_to_the_first_frame():
    annotations = parse_csv("label,end_stamp,start_stamp\nwave,1700000012.5,1700000010.0\n")
    assert annotations.absolute
    assert annotations.relative_to(1700000000.0) == [Segment(10.0, 12.5, "wave")]


def test_yaml_list_of_mappings():
    annotations = parse_yaml("- {start: 0, end: 1.5, label: idle}\n- start: 1.5\n  end: 3\n  label: wave\n")
    assert annotations.segments == (Segment(0, 1.5, "idle"), Segment(1.5, 3.0, "wave"))


def test_files_are_read_by_extension_and_csv_round_trips(tmp_path):
    segments = [Segment(0.0, 1.0 / 3.0, "idle"), Segment(1.0 / 3.0, 2.0, "wave")]
    path = save_csv(tmp_path / "labels.csv", segments)
    assert list(load_annotations(path).segments) == segments
    quoted = [Segment(0.0, 1.0, "wave,hand"), Segment(1.0, 2.0, '"yes" sign')]  # class names may hold both
    assert list(load_annotations(save_csv(tmp_path / "quoted.csv", quoted)).segments) == quoted
    (tmp_path / "labels.yml").write_text("- {start: 0, end: 1, label: stop}\n")
    assert load_annotations(tmp_path / "labels.yml").segments == (Segment(0, 1, "stop"),)


def test_segments_are_half_open():
    segments = [Segment(0, 1, "idle"), Segment(1, 2, "wave")]
    assert [label_at(segments, t) for t in (0.0, 0.999, 1.0, 2.0)] == ["idle", "idle", "wave", None]


def test_a_decision_on_a_segments_first_frame_is_in_that_segment_whatever_the_float_error():
    """A frame stamped 1700000046.821274426 s: its decision, from integer nanoseconds, lies at
    46.821274 s; the segment starting on it, read as a float and rounded to the µs, at 46.821275 s.
    The decision fell in the segment before (realtime bag eval: 3 % of random stamps)."""
    origin = 1700000000.0
    annotations = parse_csv(
        "start_stamp,end_stamp,label\n0,1700000046.821274426,idle\n" "1700000046.821274426,1700000050,wave\n"
    )
    segments = annotations.relative_to(origin)
    decision = round((1700000046821274426 - 1700000000 * 10**9) * 1e-9, 6)
    assert segments[1].start - decision == pytest.approx(1e-6)
    assert label_at(segments, decision) == labels_at(segments, [decision])[0] == "wave"
    assert label_at(segments, decision - 1e-3) == "idle"  # a frame a millisecond earlier stays before
    assert label_at([Segment(0, 1, "idle")], 1.0 - 2e-6) is None  # and the end moves as the start does


def test_labels_at_answers_as_label_at_for_every_time():
    """One look-up per decision of a long bag: a bisection over the sorted segments, with the same
    answers as the scan, in gaps, on edges and before and after every segment; overlapping ones
    (only from code) keep the scan's first-in-list-order answer."""
    rng = np.random.default_rng(0)
    edges = np.cumsum(rng.uniform(0.01, 1.0, 400))
    segments = [
        Segment(a, b, f"c{i % 7}") for i, (a, b) in enumerate(zip(edges[::2], edges[1::2], strict=True))
    ]
    rng.shuffle(segments)  # not sorted, as code may pass them
    times = [-1.0, *edges, *rng.uniform(-1, edges[-1] + 1, 2000), edges[-1] + 5, float("nan")]
    assert labels_at(segments, times) == [label_at(segments, t) for t in times]
    overlapping = [Segment(0, 2, "long"), Segment(1, 3, "late"), Segment(0.5, 1.5, "inner")]
    times = [0.25, 0.75, 1.25, 2.5, 3.0]
    assert labels_at(overlapping, times) == [label_at(overlapping, t) for t in times]
    assert labels_at([], [1.0]) == [None]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("start,end,label\n0,1,idle\n3,2,wave\n", "labels.csv: line 3: end 2.0 is not after start 3.0"),
        ("start,end,label\n1,1,idle\n", "is not after"),
        (
            "start,end,label\n0,2,idle\n1.5,3,wave\n",
            "line 3: segment wave [1.5, 3.0) overlaps idle [0.0, 2.0) (line 2)",
        ),
        ("start,end,label,person\n0,1,idle,0\n", "unknown columns person"),
        ("start,label\n0,idle\n", "use exactly start,end,label"),
        ("start,end_stamp,label\n0,1,idle\n", "use exactly start,end,label"),
        ("start,end,label\n0,soon,idle\n", "labels.csv: line 2: end 'soon' is not a number"),
        ("start,end,label\n0,nan,idle\n", "not a finite number"),
        ("start,end,label\n0,0.5,idle\n1e307,1.7e308,wave\n", "line 3: start '1e307' is beyond 1e+10 s"),
        ("start_stamp,end_stamp,label\n-1.7e308,1.7e308,idle\n", "is beyond 1e+10 s"),
        ("start,end,label\n0,1,\n", "empty label"),
        ("start,end,label\n0,1\n", "2 values for 3 columns"),
        ("start,end,label\n-1,1,idle\n", "negative"),
        ("start,end,label\n", "no segments"),
        ("# only a comment\n", "no header row"),
        ("start,end,label\n0,1," + "w" * 200_000 + "\n", "line 2: not a CSV row (field larger"),
        ("# made by hand\n\nstart,end," + "l" * 200_000 + "\n", "line 3: not a CSV row"),
        ("start,end,label\n0,1," + "w" * 201 + "\n", "is not printable text of at most 200"),
        ("start,end,label\n0,1,wa\tve\n", "is not printable text"),
        ('start,end,label\n0,2,"wave\n', "line 2: not a CSV row (unexpected end of data)"),
    ],
)
def test_bad_csv_files_say_what_and_where(tmp_path, text, message):
    path = tmp_path / "labels.csv"
    path.write_text(text)
    with pytest.raises(AnnotationError) as error:
        load_annotations(path)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("start: 0\nend: 1\nlabel: idle\n", "expected a list"),
        ("- [0, 1, idle]\n", "every item must be a mapping"),
        (
            "- {start: 0, end: 1, label: idle}\n- {start: 1, end: 2, label: wave, who: 3}\n",
            "item 2: unknown columns who",
        ),
        ("- {start: 0, end: 1, label: idle}\n- {start: 0.5, end: 2, label: wave}\n", "overlaps"),
        ("- {start: 0, end: [1, label: idle}\n", "not valid YAML"),
        ("- {start: 0, end: " + "9" * 400 + ", label: idle}\n", "end 99999"),
        ("- {start: 0, end: " + "9" * 5000 + ", label: idle}\n", "not valid YAML"),
        ("- {start: true, end: 2, label: idle}\n", "start True is not a finite number"),
        ("- &a {start: 0, end: 1, label: idle}\n- *a\n", "aliases (*name) are not supported"),
    ],
)
def test_bad_yaml_files_say_what_and_where(text, message):
    with pytest.raises(AnnotationError) as error:
        parse_yaml(text, "labels.yaml")
    assert message in str(error.value)


def test_unknown_extension_and_missing_file(tmp_path):
    (tmp_path / "labels.txt").write_text("start,end,label\n0,1,idle\n")
    with pytest.raises(AnnotationError, match=r"use a \.csv or \.yaml file"):
        load_annotations(tmp_path / "labels.txt")
    with pytest.raises(FileNotFoundError):
        load_annotations(tmp_path / "missing.csv")


def test_yaml_that_mixes_relative_and_absolute_times_is_an_error():
    text = "- {start: 0.0, end: 1.0, label: wave}\n- {start_stamp: 5.0, end_stamp: 6.0, label: stop}\n"
    with pytest.raises(AnnotationError, match="item 2: uses start_stamp,end_stamp,label but item 1 uses"):
        parse_yaml(text, "labels.yaml")


def test_a_file_that_is_not_utf8_text_is_named_in_one_line(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_bytes(b"RIFF\xfa\x00\x00AVI LIST")  # e.g. a video given as the labels
    with pytest.raises(AnnotationError, match="not a UTF-8 text file") as caught:
        load_annotations(path)
    assert str(caught.value).startswith(f"{path}: ")
    video = tmp_path / "take.avi"
    video.write_bytes(b"RIFF\xfa\x00\x00AVI LIST")
    with pytest.raises(AnnotationError, match=r"unknown annotation format '\.avi'"):
        load_annotations(video)  # the extension is checked before the bytes are decoded


def test_yaml_labels_yes_and_no_stay_class_names(tmp_path):
    path = tmp_path / "labels.yaml"
    path.write_text(
        "- {start: 0, end: 1, label: no}\n- {start: 1, end: 2, label: yes}\n"
        "- {start: 2, end: 3, label: on}\n- {start: 3, end: 4, label: off}\n"
    )
    assert [s.label for s in load_annotations(path).segments] == ["no", "yes", "on", "off"]


@pytest.mark.parametrize("label", ["true", "010", "3", "[wave]", "{a: 1}"])
def test_yaml_labels_that_are_not_text_are_refused(label):
    with pytest.raises(AnnotationError, match="item 1: label .* is not text") as error:
        parse_yaml(f"- {{start: 0, end: 1, label: {label}}}\n", "labels.yaml")
    assert "quotes" in str(error.value)
    assert parse_yaml(f"- {{start: 0, end: 1, label: '{label}'}}\n").segments[0].label == label
