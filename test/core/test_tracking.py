"""Person tracking on synthetic bodies: crossing people, short misses, retirement, ids never reused."""

from __future__ import annotations

import numpy as np
import pytest

from bharnet_ros.core.tracking import MAX_AGE, PersonTracker, body_box, box_iou

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


def test_ids_are_never_reused():
    tracker = PersonTracker()
    seen = []
    for visit in range(6):
        t = visit * 2 * MAX_AGE  # each visit starts after the previous track retired
        (pid,) = detect(tracker, [person(300)], t)
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
    assert box_iou(box, box) == pytest.approx(1.0)
    assert box_iou(box, box + 1000) == 0.0


def test_bad_shapes_and_settings_are_refused():
    with pytest.raises(ValueError, match="need keypoints"):
        PersonTracker().update(np.zeros((2, 5)), np.ones((2, 5), bool), 0.0)
    with pytest.raises(ValueError, match="max_cost"):
        PersonTracker(max_cost=0.0)
