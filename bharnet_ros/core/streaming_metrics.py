"""How well a stream of action decisions follows labelled ground-truth segments.

The inputs are the recognizer's decisions (:class:`Decision`, stamped with the frame each one is
for) and the annotated :class:`~bharnet_ros.core.annotations.Segment` list, both in seconds since
the first frame. A decision belongs to the segment whose ``[start, end)`` holds its stamp; decisions
in gaps between segments are not scored. docs/bags.md explains each number.
"""

from __future__ import annotations

import bisect
import itertools
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from bharnet_ros.core.annotations import BOUNDARY_SLACK, Segment


@dataclass(frozen=True)
class Decision:
    """One decision: the stamp of the frame it is for (seconds since the first frame) and its label.

    (A window's scores are :class:`bharnet_ros.core.inference.WindowScores`; this is what was decided.)
    """

    stamp: float
    label: str
    person_id: int = 0
    confidence: float = 0.0


@dataclass(frozen=True)
class SegmentResult:
    """The decisions inside one segment."""

    start: float
    end: float
    truth: str
    predictions: int
    majority: str | None  # most frequent predicted label (ties: the one seen first); None if no decision
    correct: bool
    delay: float | None  # seconds from the segment start to its first correct decision; None if none
    label_changes: int


@dataclass
class StreamMetrics:
    """Summary over all segments; ``None`` where there was nothing to measure."""

    segments: int
    segments_correct: int
    segment_accuracy: float | None
    predictions_scored: int  # decisions inside a segment
    predictions_correct: int
    predictions_unscored: int  # decisions in gaps or outside the annotated time
    frame_accuracy: float | None
    segments_detected: int  # segments with at least one correct decision
    delay_mean: float | None
    delay_median: float | None
    delay_max: float | None
    label_changes: int
    annotated_seconds: float
    flicker_per_minute: float | None
    per_segment: list[SegmentResult] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _result_of(segment: Segment, inside: list[Decision]) -> SegmentResult:
    """Majority label, detection delay and label changes of ``inside``, the decisions in ``segment``."""
    inside = sorted(inside, key=lambda p: (p.stamp, p.person_id))
    majority = majority_label([p.label for p in inside])
    first_correct = next((p.stamp for p in inside if p.label == segment.label), None)
    return SegmentResult(
        start=segment.start,
        end=segment.end,
        truth=segment.label,
        predictions=len(inside),
        majority=majority,
        correct=majority == segment.label,
        delay=None if first_correct is None else first_correct - segment.start,
        label_changes=label_changes(inside),
    )


def majority_label(labels: list[str]) -> str | None:
    """The most frequent label; among equally frequent ones the one that appears first."""
    if not labels:
        return None
    counts = Counter(labels)
    best = max(counts.values())
    return next(label for label in labels if counts[label] == best)


def label_changes(predictions: list[Decision]) -> int:
    """How often the label switches between consecutive decisions of the same person (in time order)."""
    changes, last = 0, {}
    for p in sorted(predictions, key=lambda p: (p.stamp, p.person_id)):
        if p.person_id in last and last[p.person_id] != p.label:
            changes += 1
        last[p.person_id] = p.label
    return changes


def evaluate_stream(segments: list[Segment], predictions: list[Decision]) -> StreamMetrics:
    """Segment and frame accuracy, detection delay and flicker of ``predictions`` against ``segments``."""
    inside = decisions_inside(segments, predictions)
    results = [_result_of(s, found) for s, found in zip(segments, inside, strict=True)]
    scored = [(p, s) for s, found in zip(segments, inside, strict=True) for p in found]
    correct = sum(p.label == s.label for p, s in scored)
    delays = [r.delay for r in results if r.delay is not None]
    changes = sum(r.label_changes for r in results)
    annotated = float(sum(s.duration for s in segments))
    return StreamMetrics(
        segments=len(results),
        segments_correct=sum(r.correct for r in results),
        segment_accuracy=_ratio(sum(r.correct for r in results), len(results)),
        predictions_scored=len(scored),
        predictions_correct=correct,
        predictions_unscored=len(predictions) - len({id(p) for p, _ in scored}),  # in no segment
        frame_accuracy=_ratio(correct, len(scored)),
        segments_detected=len(delays),
        delay_mean=float(np.mean(delays)) if delays else None,
        delay_median=float(np.median(delays)) if delays else None,
        delay_max=float(np.max(delays)) if delays else None,
        label_changes=changes,
        annotated_seconds=annotated,
        flicker_per_minute=changes / (annotated / 60.0) if annotated > 0 else None,
        per_segment=results,
    )


def decisions_inside(segments: list[Segment], predictions: list[Decision]) -> list[list[Decision]]:
    """For each segment (in the given order) the decisions whose stamp it holds.

    Annotated segments do not overlap, so each decision is looked up by bisection: a long bag
    against a labels file of many thousand segments stays fast. Overlapping segments (only from
    code) are matched one by one.
    """
    order = sorted(range(len(segments)), key=lambda i: segments[i].start)
    if any(segments[a].end > segments[b].start for a, b in itertools.pairwise(order)):
        return [[p for p in predictions if s.contains(p.stamp)] for s in segments]
    starts = [segments[i].start for i in order]
    found: list[list[Decision]] = [[] for _ in segments]
    for p in predictions:
        k = bisect.bisect_right(starts, p.stamp + BOUNDARY_SLACK) - 1
        if k >= 0 and segments[order[k]].contains(p.stamp):
            found[order[k]].append(p)
    return found


def summarize(values: list[float]) -> dict[str, float | int | None]:
    """``count``, ``p50``, ``p95`` and ``max`` of a list of durations (None when it is empty)."""
    if not values:
        return {"count": 0, "p50": None, "p95": None, "max": None}
    array = np.asarray(values, float)
    return {
        "count": len(values),
        "p50": float(np.percentile(array, 50)),
        "p95": float(np.percentile(array, 95)),
        "max": float(array.max()),
    }


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None
