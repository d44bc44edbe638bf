"""The per-message skeleton rules that the recognizer node and the deterministic bag eval share."""

from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np
import pytest

from bharnet_ros.core.frame_rules import STAMPED_MEMORY, FrameRules, one_per_person, person_frame
from bharnet_ros.core.skeleton import SkeletonError, SkeletonFrame
from bharnet_ros.core.skeleton_fields import person_fields


def person(sec: int, nanosec: int = 0, person_id: int = 0, **fields) -> SimpleNamespace:
    """A PersonSkeleton-shaped object (as rclpy and rosbags messages are) of an all-zero body."""
    frame = SkeletonFrame.empty(0.0, person_id=person_id)
    values = {**person_fields(frame), **fields}
    return SimpleNamespace(header=SimpleNamespace(stamp=SimpleNamespace(sec=sec, nanosec=nanosec)), **values)


@pytest.fixture
def refused() -> list[str]:
    return []


def test_a_stamp_is_read_to_the_bit_as_the_node_reads_it():
    assert person_frame(person(1000, 33_333_333)).timestamp == 1000 + 33_333_333 * 1e-9


@pytest.mark.parametrize(
    ("stamp", "why"),
    [((100, 1_000_000_000), "nanosec 1000000000 is not below 1e9"), ((-5, 0), "negative (before 1970)")],
)
def test_stamps_no_clock_gives_and_broken_skeletons_are_refused(refused, stamp, why):
    rules = FrameRules(refused.append)
    persons = [person(*stamp), person(100, 0, 1), person(100, 0, 2, body=[0.5] * 5)]
    frames = rules.frames(persons, now=0.0, unstamped=lambda: 7.0)
    assert [f.person_id for f in frames] == [1]
    assert len(refused) == 2
    assert why in refused[0]
    with pytest.raises(SkeletonError, match=re.escape(why)):
        person_frame(person(*stamp))


def test_stamp_0_is_timed_by_the_clock_unless_a_stamped_frame_came_lately(refused):
    rules = FrameRules(refused.append)
    assert [f.timestamp for f in rules.frames([person(0)], 10.0, lambda: 7.0)] == [7.0]  # never stamped
    assert len(rules.frames([person(100), person(0, 0, 1)], 20.0, lambda: 7.0)) == 1
    assert refused == ["ignored a skeleton with stamp 0 among stamped ones (a second publisher?)"]
    assert rules.frames([person(0)], 20.0 + STAMPED_MEMORY - 0.01, lambda: 8.0) == []
    assert [f.timestamp for f in rules.frames([person(0)], 20.0 + STAMPED_MEMORY, lambda: 9.0)] == [9.0]
    rules.frames([person(100)], 30.0, lambda: 0.0)
    rules.forget()  # a new configure: an old stamp says nothing of the new stream
    assert len(rules.frames([person(0)], 30.0, lambda: 9.0)) == 1


def test_only_the_first_skeleton_of_each_person_in_a_message_is_kept(refused):
    frames = [SkeletonFrame.empty(t, person_id=pid) for t, pid in ((1.0, 0), (0.9, 0), (1.0, 1), (0.5, 1))]
    kept = one_per_person(frames, refused.append)
    assert [(f.person_id, f.timestamp) for f in kept] == [(0, 1.0), (1, 1.0)]
    assert refused == [f"ignored a second skeleton of person {i} in one message" for i in (0, 1)]
    assert np.array_equal(kept[0].body, frames[0].body)


def test_a_second_skeleton_of_a_person_is_refused_before_it_is_timed(refused):
    """50 unstamped skeletons of one id counted 50 unstamped frames, and read the clock 50 times."""
    rules = FrameRules(refused.append)
    clock_reads = []
    kept = rules.frames([person(0, 0, 3)] * 50, 10.0, lambda: clock_reads.append(1) or 7.0)
    assert len(kept) == 1
    assert len(clock_reads) == 1
    assert len(refused) == 49


def test_a_message_of_thousands_of_skeletons_is_read_only_so_far(refused):
    """Every skeleton was parsed and checked: 5000 of them took longer than a camera frame."""
    from bharnet_ros.core.frame_rules import MOST_PER_MESSAGE

    rules = FrameRules(refused.append)
    kept = rules.frames([person(1, 0, i) for i in range(MOST_PER_MESSAGE + 100)], 10.0, lambda: 7.0)
    assert len(kept) == MOST_PER_MESSAGE
    assert refused == [f"ignored 100 skeletons past the first {MOST_PER_MESSAGE} of one message"]
