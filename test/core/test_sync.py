"""Approximate-time pairing of two streams and attaching pose-stage hands to external bodies."""

import numpy as np
import pytest

from bharnet_ros.core.layouts import MP33, NTU25
from bharnet_ros.core.skeleton import SkeletonFrame
from bharnet_ros.core.sync import ApproximateSync, attach_hands


def test_pairs_within_slop_in_either_arrival_order():
    sync = ApproximateSync(slop=0.01)
    assert sync.add(0, 1.000, "a1") is None
    assert sync.add(1, 1.004, "b1") == ("a1", "b1")
    assert sync.add(1, 2.000, "b2") is None
    assert sync.add(0, 2.009, "a2") == ("a2", "b2")


def test_far_stamps_do_not_pair_and_old_items_are_dropped():
    sync = ApproximateSync(slop=0.01, queue_size=3)
    for i in range(10):
        assert sync.add(0, i * 1.0, i) is None
    assert sync.add(1, 9.001, "b") == (9, "b")
    assert sync.add(1, 5.0, "late") is None  # its partner was dropped with the older items


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="slop"):
        ApproximateSync(slop=-1)


def frame(layout, wrists, person_id=0, hands_value=0.0):
    body = np.zeros((len(layout.joint_names), 4), np.float32)
    body[:, 3] = 1
    for name, xy in zip(("left_wrist", "right_wrist"), wrists, strict=True):
        body[layout.index(name), :2] = xy
    hands = np.full((2, 21, 4), hands_value, np.float32)
    return SkeletonFrame(1.0, body, hands, np.array([True, True]), person_id, layout.name)


def test_each_body_gets_the_hands_of_the_nearest_pose_person():
    tracked = [frame(NTU25, [(0.2, 0.5), (0.3, 0.5)], 7), frame(NTU25, [(0.7, 0.5), (0.8, 0.5)], 8)]
    pose = [
        frame(MP33, [(0.71, 0.5), (0.79, 0.5)], hands_value=0.9),
        frame(MP33, [(0.2, 0.5), (0.3, 0.5)], hands_value=0.1),
    ]
    merged = attach_hands(tracked, pose)
    assert [m.person_id for m in merged] == [7, 8]
    assert merged[0].layout == "ntu25"
    assert merged[0].hands[0, 0, 0] == pytest.approx(0.1)
    assert merged[1].hands[0, 0, 0] == pytest.approx(0.9)
    assert not attach_hands(tracked, [])[0].hand_present.any()
