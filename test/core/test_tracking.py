"""Person tracking on synthetic bodies: crossing people, short misses, retirement, ids never reused."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bharnet_ros.core.skeleton import SkeletonError
from bharnet_ros.core.tracking import MAX_AGE, MAX_TRACK_ID, PersonTracker, body_box, box_ious

FPS = 20.0
# A stick figure (head, shoulders, elbows, wrists, hips) around its centre, in units of its height.
FIGURE = np.array(
    [[0, -0.45], [-0.12, -0.3], [0.12, -0.3], [-0.2, -0.1], [0.2, -0.1], [-0.22, 0.1], [0.22, 0.1],
     [-0.1, 0.15], [0.1, 0.15]]
)  # fmt: skip


def person(x: float, y: float = 240.0, height: float = 200.0) -> np.ndarray:
    """(K, 2) keypoints of one standing person centred at (x, y) pixels."""
    return FIGURE * height + [x, y]


def detect(tracker: PersonTracker, people: list[np.ndarray], t: float) -> list[int]:
    keypoints = np.array(people, np.float64).reshape(len(people), len(FIGURE), 2)
    return tracker.update(keypoints, np.ones(keypoints.shape[:2], bool), t)


def test_people_walking_through_each_other_keep_their_ids():
    """Identical figures crossing: only their motion tells them apart, and it must."""
    tracker = PersonTracker()
    rng = np.random.default_rng(0)
    first = detect(tracker, [person(100), person(540)], 0.0)
    for step in range(1, 41):
        t = step / FPS
        positions = {"walks right": 100 + 11 * step, "walks left": 540 - 11 * step}
        order = list(positions)
        rng.shuffle(order)  # MediaPipe returns people in no particular order
        ids = dict(zip(order, detect(tracker, [person(positions[name]) for name in order], t), strict=True))
        assert ids == {"walks right": first[0], "walks left": first[1]}, f"at t={t:.2f}"


def test_a_person_hidden_while_crossing_comes_back_with_their_id():
    tracker = PersonTracker()
    walker, stander = detect(tracker, [person(100), person(320)], 0.0)
    for step in range(1, 31):
        x = 100 + 15 * step
        hidden = 18 <= step <= 22  # 0.25 s behind the person standing in the middle
        ids = detect(tracker, [person(320)] if hidden else [person(320), person(x)], step / FPS)
        assert ids == ([stander] if hidden else [stander, walker]), f"step {step}"


def test_a_short_miss_keeps_the_id_and_a_long_one_retires_it():
    tracker = PersonTracker(max_age=MAX_AGE)
    (first,) = detect(tracker, [person(200)], 0.0)
    assert detect(tracker, [], MAX_AGE / 2) == []
    assert detect(tracker, [person(205)], MAX_AGE * 0.9) == [first]
    assert detect(tracker, [], MAX_AGE * 0.9 + MAX_AGE + 0.01) == []
    assert tracker.retired == [first]
    assert tracker.active_ids == []
    (second,) = detect(tracker, [person(205)], 3 * MAX_AGE)
    assert second != first


@pytest.mark.parametrize("fps", [30.0, 1.9, 1.0, 0.1])
def test_a_person_in_every_frame_keeps_their_id_however_slow_the_camera(fps):
    tracker = PersonTracker()
    ids = {pid for frame in range(6) for pid in detect(tracker, [person(200)], frame / fps)}
    assert len(ids) == 1
    assert tracker.retired == []


def test_a_frame_after_a_long_gap_retires_only_the_tracks_it_does_not_find():
    tracker = PersonTracker()
    a, b = detect(tracker, [person(100), person(400)], 0.0)
    assert detect(tracker, [person(101)], 3 * MAX_AGE) == [a]  # a stall: one of them left meanwhile
    assert tracker.retired == [b]


def test_ids_are_never_reused():
    tracker = PersonTracker()
    seen = []
    for visit in range(6):
        t = visit * 2 * MAX_AGE  # each visit starts after the previous track retired
        (pid,) = detect(tracker, [person(300)], t)
        assert detect(tracker, [], t + 1.5 * MAX_AGE) == []  # frames without them in between
        seen.append(pid)
    assert seen == sorted(set(seen)), "a new id for every visit, counting up"


def test_a_newcomer_gets_a_new_id_and_the_others_keep_theirs():
    tracker = PersonTracker()
    a, b = detect(tracker, [person(100), person(300)], 0.0)
    ids = detect(tracker, [person(560), person(302), person(101)], 0.05)
    assert ids[1:] == [b, a]
    assert ids[0] not in (a, b)


def test_time_going_backwards_retires_everyone():
    tracker = PersonTracker()
    (first,) = detect(tracker, [person(100)], 10.0)
    (after_loop,) = detect(tracker, [person(100)], 1.0)  # a bag loop
    assert tracker.retired == [first]
    assert after_loop != first


def test_box_and_overlap_helpers():
    points = person(100, 100, 100)
    visible = np.ones(len(points), bool)
    visible[0] = False  # the head is not trusted
    box = body_box(points, visible)
    assert box[1] == pytest.approx(100 - 30)  # the shoulders are the top of what is visible
    assert box_ious(np.array([box]), np.array([box, box + 1000]))[0] == pytest.approx([1.0, 0.0])


def test_bad_shapes_and_settings_are_refused():
    with pytest.raises(ValueError, match="need keypoints"):
        PersonTracker().update(np.zeros((2, 5)), np.ones((2, 5), bool), 0.0)
    with pytest.raises(ValueError, match="max_cost"):
        PersonTracker(max_cost=0.0)
    with pytest.raises(ValueError, match="max_age"):
        PersonTracker(max_age=float("nan"))  # would never retire a track
    for first_id in (-1, MAX_TRACK_ID, 2**63):
        with pytest.raises(ValueError, match="first_id"):
            PersonTracker(first_id=first_id)


def test_bad_frames_are_refused_and_change_nothing():
    tracker = PersonTracker()
    (pid,) = detect(tracker, [person(200)], 0.0)
    nan_body = person(200)
    nan_body[0, 0] = np.nan
    shown = np.ones((1, len(FIGURE)), bool)
    bad_frames = [
        (nan_body[None], shown, 0.05, ValueError, "finite"),
        (np.full((1, len(FIGURE), 2), np.inf), shown, 0.05, ValueError, "finite"),
        (np.zeros((1, 0, 2)), np.ones((1, 0), bool), 0.05, ValueError, "at least one keypoint"),
        (np.zeros((200, len(FIGURE), 2)), np.ones((200, len(FIGURE)), bool), 0.05, ValueError, "at most"),
        (person(200)[None], shown, float("nan"), SkeletonError, "finite"),
        (person(200)[None], shown, "soon", SkeletonError, "number of seconds"),
    ]
    for keypoints, visible, stamp, error, message in bad_frames:
        with pytest.raises(error, match=message):
            tracker.update(keypoints, visible, stamp)
    assert detect(tracker, [person(201)], 0.1) == [pid], "the refused frames left the track as it was"


def test_degenerate_bodies_keep_their_ids():
    """Joints all on one point, or all on a line (zero-area boxes), and two identical skeletons."""
    tracker = PersonTracker()
    point = np.full((len(FIGURE), 2), 300.0)
    line = np.stack([np.linspace(0, 100, len(FIGURE)), np.full(len(FIGURE), 50.0)], axis=1)
    first = detect(tracker, [point, line, person(500), person(500)], 0.0)
    assert len(set(first)) == 4
    for step in range(1, 6):
        shifted = line + np.array([step, 0])
        assert detect(tracker, [point, shifted, person(500), person(500)], step / FPS) == first


def test_a_flaky_detector_keeps_the_tracks_bounded():
    """Sixteen bodies teleporting every frame start a track each; the oldest make room."""
    tracker = PersonTracker(max_tracks=32)
    seen: set[int] = set()
    for step in range(60):
        people = [person(100_000 * step + 1000 * i) for i in range(16)]
        ids = detect(tracker, people, step / 100)
        assert len(set(ids)) == 16
        assert not seen & set(ids), "a teleported body gets a new id, never an old one"
        seen |= set(ids)
        assert len(tracker.tracks) <= 32
    assert len(tracker.retired) >= 16, "evicted tracks are reported as retired"


def test_ids_wrap_below_the_int32_limit_and_skip_live_ones():
    tracker = PersonTracker(first_id=MAX_TRACK_ID - 3, max_tracks=4)
    rng = np.random.default_rng(2)
    (stander,) = detect(tracker, [person(300)], 0.0)
    for step in range(1, 30):
        others = [person(x, 800) for x in rng.uniform(0, 4000, 2)]
        ids = detect(tracker, [person(300), *others], step / 100)
        assert ids[0] == stander
        assert len(set(ids)) == 3
        assert all(MAX_TRACK_ID - 3 <= pid <= MAX_TRACK_ID for pid in ids)


def test_stamps_a_hair_apart_give_no_runaway_velocity():
    tracker = PersonTracker()
    (pid,) = detect(tracker, [person(200)], 0.0)
    assert detect(tracker, [person(202)], 5e-324) == [pid]  # 2 px in no time: an infinite speed
    assert detect(tracker, [person(203)], 0.05) == [pid]


def test_a_neighbour_never_takes_the_id_of_a_person_missed_for_a_frame():
    """The hug clip: a man standing still got 543 px/s from his box's edge (an ankle turning
    visible), and when the detector missed him his neighbour took his id."""
    tracker = PersonTracker()
    arm_out = person(200)
    arm_out[6] = [340.0, 260.0]  # an arm stretched out, not seen at first
    hidden = np.ones((1, len(FIGURE)), bool)
    hidden[0, 6] = False
    (first,) = tracker.update(arm_out[None], hidden, 0.0)
    tracker.update(arm_out[None], hidden, 0.05)
    assert tracker.update(arm_out[None], np.ones_like(hidden), 0.10) == [first]  # the box grows
    assert np.abs(tracker.tracks[0].velocity).max() < 1.0, "nobody moved"
    assert detect(tracker, [person(300)], 0.15) != [first]  # him missed, his neighbour found


@pytest.mark.parametrize("stall", [10.0, 60.0])
def test_a_still_person_keeps_their_id_after_a_stall(stall):
    """Jitter's small speed, carried over a long gap, moved the guess off them."""
    tracker = PersonTracker()
    (pid,) = detect(tracker, [person(200)], 0.0)
    for i in range(1, 10):
        detect(tracker, [person(200 + (i % 2) * 3.0)], i / FPS)  # 3 px of jitter
    assert detect(tracker, [person(201)], 9 / FPS + stall) == [pid]


def test_a_neighbour_never_takes_the_id_of_a_person_seen_once_and_missed_next():
    """Without a gate for tracks seen once, a neighbour 0.58 body sizes away took the id a frame
    later, and a detector alternating between two people gave each id both of them."""
    tracker = PersonTracker()
    (first,) = detect(tracker, [person(200)], 0.0)
    assert detect(tracker, [person(260)], 1 / 30) != [first]


def test_a_body_seen_with_no_sure_joint_keeps_its_id_by_its_box():
    """No shared keypoint read as far away: each such frame made a new id (a ghost)."""
    tracker = PersonTracker()
    (pid,) = detect(tracker, [person(200)], 0.0)
    unsure = np.zeros((1, len(FIGURE)), bool)
    assert [tracker.update(person(200)[None], unsure, i / FPS) for i in range(1, 5)] == [[pid]] * 4


@pytest.mark.parametrize(("fps", "speed", "stall"), [(10, 150, 1.2), (10, 250, 1.2), (5, 450, 0.0)])
def test_a_moving_person_keeps_their_id_across_a_stall_or_at_a_low_rate(fps, speed, stall):
    """A walker's guess was moved for at most half a second of a longer stall, and a runner at 5 fps
    moved more than the gate between the two frames that give a track its velocity."""
    tracker = PersonTracker()
    times = [i / fps for i in range(20)] + [19 / fps + stall + i / fps for i in range(1, 6)]
    ids = [detect(tracker, [person(100 + speed * t, height=300)], t) for t in times]
    assert ids == [ids[0]] * len(times)


def test_another_keypoint_count_retires_every_track():
    tracker = PersonTracker()
    (first,) = detect(tracker, [person(100)], 0.0)
    (other,) = tracker.update(np.full((1, 33, 2), 100.0), np.ones((1, 33), bool), 0.05)
    assert tracker.retired == [first]
    assert other != first


kinds = st.sampled_from(["person", "point", "line"])
body_strategy = st.tuples(st.floats(-1e4, 1e4), st.floats(-1e4, 1e4), st.floats(0, 500), kinds)


@settings(max_examples=40, deadline=None)
@given(frames=st.lists(st.tuples(st.floats(-0.1, 1.0), st.lists(body_strategy, max_size=12)), max_size=15))
def test_any_frames_give_unique_bounded_ids(frames):
    """Bodies appearing, vanishing, jumping, stacked on each other, flat, and stamps jumping back."""
    tracker = PersonTracker(max_tracks=16)
    t = 0.0
    for step, bodies in frames:
        t += step
        people = [
            person(x, y, h) if kind == "person" else np.full((len(FIGURE), 2), x) if kind == "point"
            else np.stack([np.linspace(x, x + h, len(FIGURE)), np.full(len(FIGURE), y)], axis=1)
            for x, y, h, kind in bodies
        ]  # fmt: skip
        ids = detect(tracker, people, t)
        assert len(set(ids)) == len(ids) == len(bodies)
        assert all(0 <= pid <= MAX_TRACK_ID for pid in ids)
        assert len(tracker.tracks) <= 16
        assert sorted(tracker.active_ids) == sorted(set(tracker.active_ids))


@pytest.mark.parametrize("step", [1e-9, 1e-6, 1e-3])
def test_a_burst_of_frames_stamped_microseconds_apart_keeps_a_still_person_s_id(step):
    """A pixel of jitter over a microsecond is a million pixels a second: the prediction flew off."""
    tracker = PersonTracker()
    t = 1.7e9 if step >= 1e-6 else 1000.0
    (pid,) = detect(tracker, [person(300)], t)
    assert detect(tracker, [person(301)], t + step) == [pid]
    for k in range(1, 6):  # then a steady 30 fps, standing still with a pixel of jitter
        assert detect(tracker, [person(300 + k % 2)], t + step + k / 30) == [pid]


def test_a_rebuilt_tracker_goes_on_counting_where_the_old_one_stopped():
    """The pose node rebuilds its tracker on every configure: ids starting again at 0 let a new
    person continue a window the recognizer still held for someone else."""
    old = PersonTracker()
    first = detect(old, [person(100), person(400)], 0.0)
    assert old.next_id == 2
    new = PersonTracker(next_id=old.next_id)
    assert not set(detect(new, [person(100), person(400)], 0.05)) & set(first)
    assert new.next_id == 4
    assert PersonTracker().next_id == 0
    wrapping = PersonTracker(next_id=MAX_TRACK_ID)
    assert detect(wrapping, [person(100), person(400)], 0.0) == [MAX_TRACK_ID, 0]


@pytest.mark.parametrize("next_id", [-1, MAX_TRACK_ID + 1, 1.5])
def test_a_next_id_outside_the_id_range_is_refused(next_id):
    with pytest.raises((ValueError, TypeError)):
        PersonTracker(next_id=next_id)
    with pytest.raises(ValueError, match="next_id"):
        PersonTracker(first_id=10, next_id=5)
