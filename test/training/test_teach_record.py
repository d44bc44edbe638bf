"""Headless takes from a bag (``training/teach_record.py``): which topic, how its messages are
timed, and what an unreadable message costs. Skeleton bags only: the pose stage on camera bags is
tested through the command line (test/tools/test_teach_cli.py)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from bharnet_ros.core import bag
from bharnet_ros.core.annotations import Annotations, Segment
from bharnet_ros.training.synth import generate_scripted
from bharnet_ros.training.teach_record import bag_frames, cut_takes
from bharnet_ros.training.teach_takes import TrimSettings

ORIGIN = 1_700_000_000_000_000_000  # ns
TOPIC = "/bharnet/skeletons"
LABELS = Annotations((Segment(0.0, 2.0, "idle"), Segment(2.0, 4.0, "wave")), absolute=False)


def skeleton_bag(
    path: Path, stamped: bool = True, topics: tuple[str, ...] = (TOPIC,), junk_at: int = -1
) -> Path:
    """Two seconds each of idle and wave, logged from ORIGIN; ``stamped=False`` leaves every stamp
    at 0 (a camera driver that never sets it); ``junk_at`` puts bytes that are no message there."""
    sequence, _ = generate_scripted([("idle", 2.0), ("wave", 2.0)], np.random.default_rng(3))
    with bag.BagWriter(path) as writer:
        for topic in topics:
            writer.add_topic(topic, bag.SKELETON_TYPE)
        for t in range(len(sequence)):
            log_time = ORIGIN + round(sequence.timestamps[t] * 1e9)
            if t == junk_at:
                writer.write_raw(topics[0], log_time, b"\x00\x01\x00\x00" + b"\xff" * 7)
                continue
            message = bag.skeleton_array_message([sequence.frame(t)], log_time if stamped else 0)
            for topic in topics:
                writer.write(topic, log_time, message)
    return path


def takes_of(recording) -> list:
    return cut_takes(recording.frames, LABELS, TrimSettings(), span=recording.span)


def test_an_unstamped_bag_is_timed_by_its_log_times_as_a_stamped_one_by_its_stamps(tmp_path):
    """Stamp 0 everywhere made every frame time 0: each take lay "outside the recording"."""
    stamped = bag_frames(skeleton_bag(tmp_path / "stamped"))
    unstamped = bag_frames(skeleton_bag(tmp_path / "unstamped", stamped=False))
    assert unstamped.span == stamped.span == pytest.approx((ORIGIN * 1e-9, ORIGIN * 1e-9 + 4.0), abs=0.1)
    assert [f.timestamp for f in unstamped.frames] == [f.timestamp for f in stamped.frames]
    assert [take.line() for take in takes_of(unstamped)] == [take.line() for take in takes_of(stamped)]
    assert all(take.ok for take in takes_of(unstamped))


def test_a_bag_of_several_candidate_topics_needs_one_named(tmp_path):
    """A depth camera beside the colour one was cut silently (the first by name), or failed on its
    encoding without naming the topic."""
    path = skeleton_bag(tmp_path / "two", topics=(TOPIC, "/back/skeletons"))
    with pytest.raises(bag.BagError, match="several candidate topics: .*; pick one with --topic"):
        bag_frames(path)
    assert len(bag_frames(path, "/back/skeletons").frames) == len(bag_frames(path, TOPIC).frames)


def test_an_unreadable_message_is_skipped_and_counted_not_fatal(tmp_path):
    """One damaged message threw away every take of the bag."""
    recording = bag_frames(skeleton_bag(tmp_path / "junk", junk_at=30))
    assert recording.skipped == 1
    assert "is no bharnet_ros/msg/PersonSkeletonArray" in recording.last_problem
    assert all(take.ok for take in takes_of(recording))


def test_a_person_stamp_no_clock_gives_is_refused_as_the_recognizer_refuses_it(tmp_path):
    """nanosec 3e9 wrapped into 3 more seconds, and a negative second was taken, on this path only."""
    sequence, _ = generate_scripted([("wave", 1.0)], np.random.default_rng(0))
    with bag.BagWriter(tmp_path / "b") as writer:
        writer.add_topic(TOPIC, bag.SKELETON_TYPE)
        for i, (sec, nanosec) in enumerate(((5, 3_000_000_000), (-5, 0))):
            message = bag.skeleton_array_message([sequence.frame(0)], ORIGIN)
            stamp = message.persons[0].header.stamp
            message.persons[0].header = type(message.persons[0].header)(
                stamp=type(stamp)(sec=sec, nanosec=nanosec), frame_id="camera"
            )
            writer.write(TOPIC, ORIGIN + i, message)
    recording = bag_frames(tmp_path / "b")
    assert (recording.frames, recording.skipped) == ([], 2)
    assert "stamp" in recording.last_problem


def test_a_bad_skeleton_costs_itself_not_its_message(tmp_path):
    """One bad person of a message dropped the performer too (the nodes drop the bad one only),
    and a second skeleton of one id replaced the first."""
    sequence, _ = generate_scripted([("wave", 1.0)], np.random.default_rng(0))
    with bag.BagWriter(tmp_path / "b") as writer:
        writer.add_topic(TOPIC, bag.SKELETON_TYPE)
        for t in range(10):
            performer, other, twin = sequence.frame(t), copy.deepcopy(sequence.frame(t)), sequence.frame(t)
            other.person_id, twin.body = 7, twin.body * 0.5
            message = bag.skeleton_array_message([performer, other, twin], ORIGIN + t * 10**8)
            message.persons[1].body[0] = np.nan
            writer.write(TOPIC, ORIGIN + t * 10**8, message)
    recording = bag_frames(tmp_path / "b")
    assert len(recording.frames) == 10
    assert all(np.array_equal(f.body, sequence.frame(t).body) for t, f in enumerate(recording.frames))
    assert recording.skipped == 20  # the NaN person and the second skeleton of id 0, each time
