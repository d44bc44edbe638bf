"""Approximate-time pairing of two streams and attaching pose-stage hands to external bodies."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bharnet_ros.core.layouts import MP33, NTU25
from bharnet_ros.core.skeleton import SkeletonError, SkeletonFrame
from bharnet_ros.core.sync import MOST_MATCHED, RESTART_GAP, ApproximateSync, attach_hands


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


def test_bad_settings_and_items_are_refused():
    for slop in (-1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="slop"):
            ApproximateSync(slop=slop)
    sync = ApproximateSync(slop=0.01)
    with pytest.raises(ValueError, match="stream must be 0 or 1"):
        sync.add(2, 1.0, "a")
    for stamp in (float("nan"), float("inf"), "soon"):
        with pytest.raises(SkeletonError, match="timestamp"):
            sync.add(0, stamp, "a")  # a NaN stamp would otherwise pair with anything
    assert sync.add(0, 1.0, "a") is None
    assert sync.add(1, 1.0, "b") == ("a", "b"), "refused items left nothing behind"


def test_pairs_come_out_in_time_order_whatever_the_arrival_order():
    sync = ApproximateSync(slop=0.01)
    assert sync.add(0, 2.0, "a2") is None
    assert sync.add(0, 1.0, "a1") is None  # out of order
    assert sync.add(1, 1.0, "b1") == ("a1", "b1")
    assert sync.add(1, 2.0, "b2") == ("a2", "b2"), "the newer item was not dropped with the older"
    assert sync.add(0, 2.5, "a3") is None
    assert sync.add(1, 1.999, "late") is None  # pairing it with a3 would send bodies back in time
    assert sync.add(1, 2.0, "duplicate") is None
    assert sync.late == 2


def test_stale_items_are_dropped_on_both_sides():
    sync = ApproximateSync(slop=0.01)
    assert sync.add(0, 1.0, "a1") is None
    assert sync.add(1, 2.0, "b2") is None
    assert sync.add(0, 2.0, "a2") == ("a2", "b2")
    assert sync.add(1, 1.0, "b1") is None, "a1 went with the pair at 2.0; b1 is late"


def test_duplicate_stamps_pair_once_and_several_candidates_give_the_nearest():
    sync = ApproximateSync(slop=0.01)
    assert sync.add(0, 1.0, "a") is None
    assert sync.add(0, 1.0, "a again") is None
    assert sync.add(1, 1.0, "b") == ("a", "b")
    assert sync.add(1, 1.0, "b again") is None
    assert sync.add(0, 1.994, "early") is None
    assert sync.add(0, 2.003, "close") is None
    assert sync.add(1, 2.0, "b2") == ("close", "b2")


def test_a_bag_loop_restarts_the_pairing():
    sync = ApproximateSync(slop=0.01)
    for t in (5.0, 6.0):
        sync.add(0, t, f"a{t}")
        sync.add(1, t, f"b{t}")
    assert sync.add(0, 0.0, "a0") is None
    assert sync.add(1, 0.0, "b0") == ("a0", "b0"), "stamps far back are a restart, not late items"


def test_an_item_of_the_old_timeline_after_a_restart_pairs_with_nothing_new():
    """Hands trail bodies: the last old hand came after the first new body, waited in the queue
    and paired with the new body of its stamp ten seconds later (a previous run's hands)."""
    sync = ApproximateSync(slop=0.02, queue_size=30)
    pairs = []
    for i in range(300):
        pairs += [sync.add(1, 1000 + i / 30, ("body", 1)), sync.add(0, 1000 + i / 30, ("hand", 1))]
    pairs.append(sync.add(1, 1000.0, ("body", 2)))  # the clock restarts
    pairs.append(sync.add(0, 1010.0, ("hand", 1)))
    pairs.append(sync.add(0, 1000.0, ("hand", 2)))
    for i in range(1, 301):
        pairs += [sync.add(0, 1000 + i / 30, ("hand", 2)), sync.add(1, 1000 + i / 30, ("body", 2))]
    runs = [(hand[1], body[1]) for hand, body in filter(None, pairs)]
    assert set(runs) == {(1, 1), (2, 2)}
    assert runs.count((2, 2)) == 301
    assert sync.late == 1


def test_a_flood_of_one_side_stays_bounded_and_pairing_goes_on():
    sync = ApproximateSync(slop=0.01, queue_size=5)
    for i in range(10_000):
        assert sync.add(0, i * 0.001, i) is None
    assert len(sync._queues[0]) == 5
    assert sync.add(1, 9.999, "b") == (9999, "b")


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.floats(0, 3).map(lambda t: round(t, 2))), max_size=60))
def test_any_arrival_order_gives_bounded_queues_and_ordered_pairs(items):
    sync = ApproximateSync(slop=0.02, queue_size=4)
    used, last = set(), [-1.0, -1.0]
    for index, (stream, stamp) in enumerate(items):
        if stamp < last[stream] - RESTART_GAP:
            last = [-1.0, -1.0]  # a restart (a bag loop) may go back in time once
        pair = sync.add(stream, stamp, (index, stamp))
        assert all(len(queue) <= 4 for queue in sync._queues)
        if pair is None:
            continue
        (a, a_stamp), (b, b_stamp) = pair
        assert abs(a_stamp - b_stamp) <= 0.02
        assert not {a, b} & used, "each item is used once"
        used |= {a, b}
        assert a_stamp > last[0], "pairs go forward in time"
        assert b_stamp > last[1], "pairs go forward in time"
        last = [a_stamp, b_stamp]


def frame(layout, wrists, person_id=0, hands_value=0.0, space="image"):
    body = np.zeros((len(layout.joint_names), 4), np.float32)
    body[:, 3] = 1
    for name, xy in zip(("left_wrist", "right_wrist"), wrists, strict=True):
        body[layout.index(name), :2] = xy
    hands = np.full((2, 21, 4), hands_value, np.float32)
    return SkeletonFrame(1.0, body, hands, np.array([True, True]), person_id, layout.name, space)


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


def test_one_pose_person_gives_their_hands_to_one_body_only():
    tracked = [
        frame(NTU25, [(0.2, 0.5), (0.3, 0.5)], 1),
        frame(NTU25, [(0.7, 0.5), (0.8, 0.5)], 2),
        frame(NTU25, [(0.9, 0.5), (0.95, 0.5)], 3),
    ]
    merged = attach_hands(tracked, [frame(MP33, [(0.71, 0.5), (0.79, 0.5)], hands_value=0.9)])
    assert [m.hand_present.any() for m in merged] == [False, True, False]
    assert merged[1].hands[0, 0, 0] == pytest.approx(0.9)


def test_a_body_gets_no_hands_of_a_person_across_the_room():
    """The tracker saw A, the pose stage only B, 0.8 image widths away: A got B's hands."""
    merged = attach_hands(
        [frame(NTU25, [(0.1, 0.5), (0.15, 0.5)], 1)],
        [frame(MP33, [(0.9, 0.5), (0.95, 0.5)], hands_value=0.5)],
    )
    assert not merged[0].hand_present.any()


def test_bodies_not_found_and_other_spaces_get_no_hands():
    empty = SkeletonFrame.empty(1.0, "ntu25", person_id=4)
    world = frame(NTU25, [(0.2, 0.5), (0.3, 0.5)], 5, space="world")
    merged = attach_hands([empty, world], [frame(MP33, [(0.2, 0.5), (0.3, 0.5)], hands_value=0.5)])
    assert [m.hand_present.any() for m in merged] == [False, False]
    assert [m.person_id for m in merged] == [4, 5]


def test_a_message_of_a_thousand_persons_matches_a_bounded_number_of_them():
    """The assignment grows with the cube of the persons: a flood is matched up to MOST_MATCHED."""
    bodies = [frame(NTU25, [(i / 200, 0.5), (i / 200 + 0.001, 0.5)], i) for i in range(1000)]
    pose = [
        frame(MP33, [(i / 200, 0.5), (i / 200 + 0.001, 0.5)], hands_value=(i + 1) / 1000) for i in range(1000)
    ]
    merged = attach_hands(bodies, pose)
    assert len(merged) == 1000
    assert sum(m.hand_present.any() for m in merged) == MOST_MATCHED
    for i, body in enumerate(merged[:MOST_MATCHED]):  # each with its own person's hands
        assert body.hands[0, 0, 0] == pytest.approx((i + 1) / 1000)
