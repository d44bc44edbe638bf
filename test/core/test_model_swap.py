"""A swapped-in model's probation, judged window by window, and the identity of a model file."""

from __future__ import annotations

import os

import pytest

from bharnet_ros.core.model_swap import (
    PROBATION_WINDOWS,
    SLOWEST_STRIDE,
    Probation,
    Verdict,
    file_stamp,
)

STRIDE = 0.15


def judged(probation: Probation, *seconds: float) -> tuple[Verdict, str]:
    for value in seconds:
        probation.timed(value)
    return probation.judge(STRIDE)


def test_a_model_within_the_stride_for_every_probation_window_is_done():
    probation = Probation("old")
    for _ in range(PROBATION_WINDOWS - 1):
        assert judged(probation, 0.01) == (Verdict.KEEP, "")
    assert judged(probation, 0.01) == (Verdict.DONE, "")
    assert probation.fallback == "old"


def test_a_failure_rolls_back_with_its_reason_whatever_the_times():
    probation = Probation("old")
    probation.timed(0.01)
    probation.failed("RuntimeError: a node the dry run never reached")
    probation.failed("a second failure")
    verdict, why = probation.judge(STRIDE)
    assert verdict is Verdict.ROLL_BACK
    assert why == "failed on a live window (RuntimeError: a node the dry run never reached)"


def test_from_three_windows_on_the_median_is_judged_against_the_stride():
    probation = Probation("old")
    assert judged(probation, 0.1, 1.0)[0] is Verdict.KEEP  # one slow window, under ten strides
    assert judged(probation, 0.1)[0] is Verdict.KEEP  # median 0.1 s: within 0.15 s
    verdict, why = judged(probation, 0.2, 0.2)  # median 0.2 s
    assert verdict is Verdict.ROLL_BACK
    assert why == "takes 200 ms per window, more than stride_seconds allows (150 ms)"


def test_before_three_windows_only_one_ten_times_over_the_budget_rolls_back():
    assert judged(Probation("old"), 1.4)[0] is Verdict.KEEP
    verdict, why = judged(Probation("old"), 1.6)
    assert verdict is Verdict.ROLL_BACK
    assert why.startswith("takes 1600 ms per window")


def test_the_budget_is_never_below_the_slowest_stride():
    probation = Probation("old")
    for _ in range(3):
        probation.timed(SLOWEST_STRIDE * 0.9)
    assert probation.judge(0.0)[0] is Verdict.KEEP  # stride 0 would refuse every model
    for _ in range(4):
        probation.timed(SLOWEST_STRIDE * 2)  # the median now twice the slowest stride
    verdict, why = probation.judge(0.0)
    assert verdict is Verdict.ROLL_BACK
    assert f"({1000 * SLOWEST_STRIDE:.0f} ms)" in why


def test_windows_are_judged_once_and_a_restart_forgets_them_but_keeps_the_fallback():
    probation = Probation("old")
    assert not probation.unjudged
    probation.timed(0.01)
    probation.failed("boom")
    assert probation.unjudged
    probation.restart()  # another model swapped in during the probation
    assert not probation.unjudged
    assert judged(probation, 0.01) == (Verdict.KEEP, "")
    assert probation.seconds == [0.01]
    assert not probation.unjudged
    assert probation.fallback == "old"


def test_a_file_stamp_changes_with_the_file_and_is_none_for_no_file(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"one")
    first = file_stamp(str(path))
    assert first == file_stamp(str(path))
    path.write_bytes(b"other")
    os.utime(path, ns=(first[2] + 10**9, first[2] + 10**9))
    assert file_stamp(str(path)) != first
    assert file_stamp(str(tmp_path / "missing.onnx")) is None
    assert file_stamp("bad\0name") is None


@pytest.mark.parametrize("stride", [0.15, 1.0])
def test_the_reason_names_the_budget_in_use(stride):
    probation = Probation("old")
    for _ in range(3):
        probation.timed(stride * 2)
    verdict, why = probation.judge(stride)
    assert verdict is Verdict.ROLL_BACK
    assert f"({1000 * stride:.0f} ms)" in why
