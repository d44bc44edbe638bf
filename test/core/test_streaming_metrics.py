"""Streaming metrics on hand-made timelines whose answers can be counted by hand."""

from __future__ import annotations

import pytest

from bharnet_ros.core.annotations import Segment
from bharnet_ros.core.streaming_metrics import (
    Decision,
    evaluate_stream,
    label_changes,
    majority_label,
    summarize,
)

SEGMENTS = [Segment(0.0, 2.0, "idle"), Segment(2.0, 5.0, "wave"), Segment(6.0, 7.0, "stop")]


def predictions(*pairs: tuple[float, str]) -> list[Decision]:
    return [Decision(stamp, label) for stamp, label in pairs]


def test_a_hand_made_timeline():
    stream = predictions(
        (1.0, "idle"), (1.5, "idle"),  # idle: 2/2 correct, detected 1.0 s after its start
        (2.5, "idle"), (3.0, "wave"), (3.5, "stop"), (4.0, "wave"), (4.5, "wave"),  # wave: 3/5, 3 changes
        (5.5, "wave"),  # in the gap 5..6: not scored
        # stop: no decision at all
    )  # fmt: skip
    m = evaluate_stream(SEGMENTS, stream)
    assert (m.segments, m.segments_correct, m.segment_accuracy) == (3, 2, pytest.approx(2 / 3))
    assert (m.predictions_scored, m.predictions_correct, m.predictions_unscored) == (7, 5, 1)
    assert m.frame_accuracy == pytest.approx(5 / 7)
    assert m.segments_detected == 2
    assert [r.delay for r in m.per_segment] == [pytest.approx(1.0), pytest.approx(1.0), None]
    assert m.delay_mean == pytest.approx(1.0)
    assert m.delay_max == pytest.approx(1.0)
    assert [r.label_changes for r in m.per_segment] == [0, 3, 0]
    assert m.annotated_seconds == pytest.approx(6.0)
    assert m.flicker_per_minute == pytest.approx(3 / (6.0 / 60.0))  # 30 changes per minute
    assert [(r.majority, r.correct) for r in m.per_segment] == [("idle", True), ("wave", True), (None, False)]


def test_nothing_to_score_gives_none_not_zero_division():
    m = evaluate_stream(SEGMENTS, [])
    assert m.segment_accuracy == 0.0
    assert m.frame_accuracy is None
    assert m.delay_mean is None
    assert m.flicker_per_minute == 0.0
    empty = evaluate_stream([], predictions((1.0, "idle")))
    assert (empty.segment_accuracy, empty.flicker_per_minute, empty.predictions_unscored) == (None, None, 1)


def test_a_decision_in_two_overlapping_segments_is_not_taken_off_the_unscored_twice():
    m = evaluate_stream([Segment(0.0, 4.0, "a"), Segment(2.0, 6.0, "b")], predictions((3.0, "a"), (7.0, "a")))
    assert (m.predictions_scored, m.predictions_unscored) == (2, 1)


def test_segment_end_is_exclusive_and_start_inclusive():
    metrics = evaluate_stream([Segment(2.0, 5.0, "wave")], predictions((2.0, "wave"), (5.0, "idle")))
    [result] = metrics.per_segment
    assert (result.predictions, result.delay, result.correct) == (1, 0.0, True)
    assert metrics.predictions_unscored == 1


def test_majority_ties_go_to_the_label_seen_first():
    assert majority_label(["wave", "idle", "idle", "wave"]) == "wave"
    assert majority_label(["idle", "wave", "wave"]) == "wave"
    assert majority_label([]) is None


def test_label_changes_are_counted_per_person():
    stream = [Decision(1.0, "idle", 0), Decision(1.0, "wave", 1), Decision(2.0, "idle", 0)]
    stream.append(Decision(2.0, "wave", 1))
    assert label_changes(stream) == 0  # interleaved persons are not flicker
    assert label_changes([*stream, Decision(3.0, "stop", 1)]) == 1


def test_summarize():
    assert summarize([]) == {"count": 0, "p50": None, "p95": None, "max": None}
    stats = summarize([0.1, 0.2, 0.3, 0.4])
    assert stats["count"] == 4
    assert stats["p50"] == pytest.approx(0.25)
    assert stats["max"] == pytest.approx(0.4)


class CountedStamp(float):
    """A decision stamp that counts every ordering comparison made with it, in ``budget``.

    Matching decisions to segments is all comparisons of stamps with segment bounds, so their
    number measures the work without a clock: a bisection makes about log2(segments) per decision,
    comparing every decision with every segment makes ``segments`` each.
    """

    budget: ComparisonBudget

    def _counted(compare):  # noqa: N805  (a decorator used in the class body, not a method)
        def counted(self, other):
            self.budget.spend()
            return compare(self, other)

        return counted

    __lt__, __le__ = _counted(float.__lt__), _counted(float.__le__)
    __gt__, __ge__ = _counted(float.__gt__), _counted(float.__ge__)

    def __add__(self, other):  # a bound's slack added to the stamp keeps it counted
        return CountedStamp(float(self) + other)


class ComparisonBudget:
    """At most ``limit`` comparisons; one more fails at once, so a quadratic match fails in
    seconds instead of running for minutes before its count could be checked."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used = limit, 0

    def spend(self) -> None:
        self.used += 1
        if self.used > self.limit:
            raise AssertionError(f"more than {self.limit} stamp comparisons: decisions are not bisected")


def test_decisions_are_found_by_bisection_with_the_same_answer():
    import random

    from bharnet_ros.core.streaming_metrics import decisions_inside

    rng = random.Random(4)
    segments = [Segment(i * 1.0, i * 1.0 + rng.uniform(0.1, 1.0), rng.choice("abc")) for i in range(300)]
    rng.shuffle(segments)  # any order: results come back in the segments' own order
    stream = [Decision(rng.uniform(-5, 305), rng.choice("abc"), rng.randrange(3)) for _ in range(2000)]
    naive = [[p for p in stream if s.contains(p.stamp)] for s in segments]
    assert decisions_inside(segments, stream) == naive
    overlapping = [Segment(0.0, 2.0, "a"), Segment(1.0, 3.0, "b")]  # only from code, matched one by one
    assert decisions_inside(overlapping, predictions((1.5, "a"), (2.5, "b"))) == [
        predictions((1.5, "a")),
        predictions((1.5, "a"), (2.5, "b")),
    ]


def test_many_segments_cost_about_log_segments_comparisons_per_decision(monkeypatch):
    """A labels file of 100k segments against an hour of decisions was segments x decisions
    comparisons (minutes); by bisection it is about decisions x log2(segments)."""
    import math

    many = [Segment(i * 0.01, i * 0.01 + 0.005, "a") for i in range(100_000)]
    budget = ComparisonBudget(27_000 * 4 * math.ceil(math.log2(len(many))))  # vs 2.7e9 one by one
    monkeypatch.setattr(CountedStamp, "budget", budget, raising=False)
    hour = [Decision(CountedStamp(i * 0.13), "a") for i in range(27_000)]
    metrics = evaluate_stream(many, hour)
    assert budget.used >= len(hour)  # every decision was compared: the count is of the real work
    assert metrics.predictions_scored + metrics.predictions_unscored == len(hour)
