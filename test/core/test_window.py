"""Window buffer and per-person set: ordering, resets, resampling, bounds and timeouts."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bharnet_ros.core.skeleton import SkeletonError, SkeletonFrame
from bharnet_ros.core.window import PushResult, Window, WindowBuffer, WindowSet

FPS = 30.0
RAMP = 0.01  # coordinate per frame index: frame t has every coordinate equal to t * RAMP


def make_frame(t: int, person_id: int = 0, hands: bool = True, stamp: float | None = None) -> SkeletonFrame:
    """Frame ``t`` of a person whose every coordinate equals ``t * RAMP`` (a ramp in time), score 1."""
    body = np.full((33, 4), t * RAMP, np.float32)
    body[:, 3] = 1.0
    hand_array = np.full((2, 21, 4), t * RAMP, np.float32)
    hand_array[..., 3] = 1.0
    present = np.array([hands, hands])
    if not hands:
        hand_array[:] = 0
    return SkeletonFrame(t / FPS if stamp is None else stamp, body, hand_array, present, person_id=person_id)


def test_window_covers_its_duration_by_time() -> None:
    buffer = WindowBuffer(seconds=2.0)
    for t in range(100):
        buffer.push(make_frame(t))
    window = buffer.window(length=60)
    assert isinstance(window, Window)
    assert len(window.sequence) == 60
    assert window.source_frames == 60  # frames 40..99 lie inside (99 - 60, 99] / 30 s
    # Instant i is 99/30 - 2 + (i + 1) * 2/60: at 30 fps exactly frame 40 + i.
    np.testing.assert_allclose(window.sequence.body[:, 0, 0], np.arange(40, 100) * RAMP, atol=1e-6)
    np.testing.assert_allclose(window.sequence.timestamps, np.arange(40, 100) / FPS, atol=1e-9)
    assert window.stamp == pytest.approx(99 / FPS)
    assert window.first_stamp == pytest.approx(99 / FPS - 2.0)
    assert window.duration == pytest.approx(2.0)
    assert window.hand_mask.shape == (60, 2)
    assert window.hand_mask.all()


def test_a_short_history_holds_its_first_pose() -> None:
    buffer = WindowBuffer(seconds=2.0)
    for t in range(30):  # one second of frames
        buffer.push(make_frame(t))
    window = buffer.window(length=20)
    assert window is not None
    assert buffer.fill == pytest.approx(29 / 30 / 2.0)
    instants = 29 / FPS - 2.0 + np.arange(1, 21) * 0.1
    expected = np.clip(instants * FPS, 0, 29)  # frame value = index; before frame 0 it holds frame 0
    np.testing.assert_allclose(window.sequence.body[:, 5, 1], expected * RAMP, atol=1e-6)
    np.testing.assert_allclose(window.sequence.hands[:, 1, 20, 2], expected * RAMP, atol=1e-6)
    assert window.first_stamp == pytest.approx(0.0)
    assert window.sequence.body.dtype == np.float32


@pytest.mark.parametrize("fps", [10.0, 15.0, 20.0, 30.0, 12.5])
def test_the_same_motion_at_any_frame_rate_gives_the_same_window(fps: float) -> None:
    """A smooth motion sampled at 10-30 fps: the T frames agree within the motion's curvature."""
    buffer = WindowBuffer(seconds=2.0)
    for k in range(int(3.0 * fps) + 1):
        t = k / fps
        body = np.zeros((33, 4), np.float32)
        body[:, 0] = 0.5 + 0.2 * np.sin(2 * np.pi * 0.5 * t)
        body[:, 1] = 0.3 + 0.1 * t
        body[:, 3] = 1.0
        buffer.push(SkeletonFrame(t, body))
    window = buffer.window(length=32)
    assert window is not None
    instants = window.stamp - 2.0 + np.arange(1, 33) * (2.0 / 32)
    np.testing.assert_allclose(window.sequence.body[:, 0, 0], 0.5 + 0.2 * np.sin(np.pi * instants), atol=6e-3)
    np.testing.assert_allclose(window.sequence.body[:, 0, 1], 0.3 + 0.1 * instants, atol=1e-5)


def test_uneven_timestamps_are_read_by_time_not_by_index() -> None:
    buffer = WindowBuffer(seconds=1.0)
    stamps = [0.0, 0.1, 0.15, 0.5, 0.55, 0.6, 1.0]  # a stall, then a burst
    for stamp in stamps:
        body = np.full((33, 4), stamp, np.float32)  # every value equals the stamp
        body[:, 3] = 1.0
        buffer.push(SkeletonFrame(stamp, body))
    window = buffer.window(length=10)
    assert window is not None
    np.testing.assert_allclose(window.sequence.body[:, 0, 0], np.arange(1, 11) / 10, atol=1e-6)


def test_window_fills_short_hand_gaps_and_leaves_long_ones() -> None:
    buffer = WindowBuffer(seconds=63 / FPS, max_gap=8)
    for t in range(64):
        short_gap = 10 <= t < 15
        long_gap = 30 <= t < 45
        buffer.push(make_frame(t, hands=not (short_gap or long_gap)))
    window = buffer.window(length=63)
    assert window is not None  # instant i reads frame i + 1
    assert window.hand_mask[9:14].all()
    np.testing.assert_allclose(window.sequence.hands[9:14, 0, 0, 0], np.arange(10, 15) * RAMP, atol=1e-6)
    assert not window.hand_mask[29:44].any()
    assert (window.sequence.hands[29:44] == 0).all()


def test_window_needs_min_seconds_of_history() -> None:
    buffer = WindowBuffer(seconds=2.0)
    assert buffer.window() is None
    buffer.push(make_frame(0))
    assert buffer.window(min_seconds=0.5) is None
    single = buffer.window()
    assert single is not None
    assert len(single.sequence) == 32
    for t in range(1, 16):
        buffer.push(make_frame(t))
    assert buffer.ready(min_seconds=0.5)
    assert not buffer.ready()
    assert buffer.window(min_seconds=0.6) is None


def test_backwards_timestamp_resets_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    buffer = WindowBuffer(seconds=0.5)
    for t in range(10):
        assert buffer.push(make_frame(t)) is PushResult.ADDED
    with caplog.at_level(logging.WARNING):
        result = buffer.push(make_frame(3))
    assert result is PushResult.RESET
    assert buffer.last_result is PushResult.RESET
    assert "backwards" in caplog.text
    assert len(buffer) == 1
    assert buffer.newest_stamp == pytest.approx(3 / FPS)
    assert buffer.stats.resets == 1


def test_a_jump_forward_past_the_window_resets_so_no_one_frame_window_is_decided(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """0.3 s of frames, then one 100 s later: its window held one frame, but the kept context made
    it count as covered, and a decision came at once."""
    buffer = WindowBuffer(seconds=2.0)
    for t in range(10):
        buffer.push(make_frame(t))  # 0.3 s at 30 fps
    with caplog.at_level(logging.WARNING):
        assert buffer.push(make_frame(10, stamp=100.3)) is PushResult.RESET
    assert "jumped forward" in caplog.text
    assert not buffer.ready(min_seconds=0.5)
    assert buffer.push(make_frame(11, stamp=101.3)) is PushResult.ADDED  # a second later: one stream again
    assert buffer.stats.resets == 1


def test_duplicate_stamps_are_ignored_and_logged_sparingly(caplog: pytest.LogCaptureFixture) -> None:
    buffer = WindowBuffer(seconds=0.5)
    buffer.push(make_frame(0))
    buffer.push(make_frame(1))
    with caplog.at_level(logging.WARNING):
        assert buffer.push(make_frame(1)) is PushResult.DUPLICATE
        assert "stamps do not advance" in caplog.text
        for _ in range(11):
            buffer.push(make_frame(1))  # a camera with a frozen stamp
    assert len(caplog.records) == 2  # the 1st and the 10th
    assert len(buffer) == 2
    assert buffer.stats.duplicates == 12
    assert buffer.stats.frames_pushed == 14
    assert buffer.stats.resets == 0


def test_layout_change_resets(caplog: pytest.LogCaptureFixture) -> None:
    buffer = WindowBuffer(seconds=0.5)
    buffer.push(make_frame(0))
    ntu = SkeletonFrame(1.0, np.ones((25, 4), np.float32), layout="ntu25")
    with caplog.at_level(logging.WARNING):
        assert buffer.push(ntu) is PushResult.RESET
    assert len(buffer) == 1


def test_memory_stays_bounded() -> None:
    buffer = WindowBuffer(seconds=0.64, max_gap=8)
    body = np.ones((33, 4), np.float32)
    for t in range(20_000):
        buffer.push(SkeletonFrame(t * 0.01, body))
        assert len(buffer) <= buffer.maxlen
    assert len(buffer) == 64 + 8 + 1  # the window, the hand-fill context and the frame at its start
    assert buffer.fill == 1.0
    assert buffer.ready()


def test_a_burst_cannot_grow_a_buffer_past_max_frames() -> None:
    buffer = WindowBuffer(seconds=2.0, max_frames=100)
    body = np.ones((33, 4), np.float32)
    for t in range(30_000):
        buffer.push(SkeletonFrame(t * 1e-4, body))  # 10 kHz
        assert len(buffer) <= 100
    assert buffer.fill == pytest.approx(1.0, abs=0.02)  # thinned frames, still the whole window


def test_nan_frames_never_reach_the_buffer() -> None:
    buffer = WindowBuffer()
    buffer.push(make_frame(0))
    body = np.ones((33, 4), np.float32)
    body[3, 1] = np.nan
    with pytest.raises(SkeletonError):
        buffer.push(SkeletonFrame(1.0, body))
    frame = make_frame(2)
    frame.hands[0, 0, 0] = np.inf  # mutated after the contract check
    with pytest.raises(SkeletonError):
        buffer.push(frame)
    with pytest.raises(SkeletonError):
        buffer.push(make_frame(3, stamp=float("nan")))
    assert len(buffer) == 1
    assert buffer.stats.frames_pushed == 1


def test_a_caller_reusing_its_arrays_cannot_change_frames_already_buffered() -> None:
    buffer = WindowBuffer(seconds=2.0)
    body, hands = np.zeros((33, 4), np.float32), np.zeros((2, 21, 4), np.float32)
    for t in range(1, 61):  # one preallocated array per field, written with each new pose
        body[:] = t * RAMP
        body[:, 3] = 1.0
        hands[:] = t * RAMP
        buffer.push(SkeletonFrame(t / FPS, body, hands, np.array([True, True])))
    body[0, 0] = np.nan  # nor break the windows after it was pushed
    window = buffer.window(length=60)
    np.testing.assert_allclose(
        window.sequence.body[:, 0, :2], np.repeat(np.arange(1, 61)[:, None], 2, 1) * RAMP, atol=1e-6
    )
    np.testing.assert_allclose(window.sequence.hands[:, 1, 0, 0], np.arange(1, 61) * RAMP, atol=1e-6)


def test_buffer_rejects_other_types() -> None:
    with pytest.raises(TypeError):
        WindowBuffer().push(np.zeros((33, 4)))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs", [{"seconds": 0.0}, {"seconds": float("nan")}, {"max_gap": -1}, {"max_frames": 1}]
)
def test_buffer_rejects_bad_settings(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        WindowBuffer(**kwargs)


def test_set_creates_one_buffer_per_person() -> None:
    persons = WindowSet(seconds=0.5)
    for t in range(30):
        for person_id in (3, 7):
            buffer = persons.push(make_frame(t, person_id))
            assert buffer is persons.get(person_id)
    assert persons.person_ids == [3, 7]
    assert 3 in persons
    assert len(persons.get(7)) == 15 + 8 + 1
    assert persons.stats.persons_created == 2
    assert persons.stats.frames_pushed == 60
    window = persons.get(3).window()
    assert window is not None
    assert window.sequence.person_id == 3


def test_set_drops_a_person_after_the_timeout() -> None:
    persons = WindowSet(timeout=1.0)
    persons.push(make_frame(0, person_id=1, stamp=0.0))
    persons.push(make_frame(0, person_id=2, stamp=0.0))
    persons.push(make_frame(1, person_id=2, stamp=1.0))
    assert 1 in persons  # exactly at the timeout: still kept
    persons.push(make_frame(2, person_id=2, stamp=1.5))
    assert persons.person_ids == [2]
    assert persons.stats.persons_timed_out == 1
    assert persons.prune(3.0) == [2]
    assert len(persons) == 0
    assert persons.stats.persons_timed_out == 2


def test_returning_person_after_timeout_starts_a_fresh_buffer() -> None:
    persons = WindowSet(timeout=0.5)
    for t in range(10):
        persons.push(make_frame(t, person_id=4))
    buffer = persons.push(make_frame(100, person_id=4))
    assert len(buffer) == 1
    assert persons.stats.persons_created == 2


def test_a_fifth_person_does_not_silence_the_four_being_served() -> None:
    persons = WindowSet(max_persons=4, timeout=1.0)
    for t in range(120):  # four seconds, five persons in every frame
        for person_id in range(5):
            persons.push(make_frame(t, person_id=person_id))
    assert persons.person_ids == [0, 1, 2, 3]
    assert len(persons.get(0)) >= 60  # a full two-second window, never evicted
    assert persons.stats.persons_refused == 120
    assert persons.stats.persons_evicted == 0


def test_sixty_persons_leave_the_tracked_ones_alone() -> None:
    persons = WindowSet(max_persons=4, timeout=1.0)
    for t in range(60):
        for person_id in range(60):
            persons.push(make_frame(t, person_id=person_id))
        assert len(persons) <= 4
    assert persons.person_ids == [0, 1, 2, 3]


def test_a_silent_person_makes_room_for_a_new_one() -> None:
    persons = WindowSet(max_persons=2, timeout=1000.0, evict_after=0.2)
    persons.push(make_frame(0, person_id=1))
    persons.push(make_frame(1, person_id=2))
    persons.push(make_frame(5, person_id=1))  # person 2 has been silent for 4 frames (0.13 s)
    assert persons.push(make_frame(6, person_id=3)) is None
    persons.push(make_frame(8, person_id=1))
    assert persons.push(make_frame(9, person_id=3)) is not None  # person 2: 8 frames, 0.27 s
    assert sorted(persons.person_ids) == [1, 3]
    assert (persons.stats.persons_evicted, persons.stats.persons_refused) == (1, 1)


def test_time_going_backwards_resets_only_that_person(caplog: pytest.LogCaptureFixture) -> None:
    persons = WindowSet()
    for t in range(10):
        persons.push(make_frame(t, person_id=1))
        persons.push(make_frame(t, person_id=2))
    persons.get(1).state["mine"] = 1
    with caplog.at_level(logging.WARNING):
        buffer = persons.push(make_frame(0, person_id=1))
    assert "backwards" in caplog.text
    assert persons.person_ids == [1, 2]
    assert len(buffer) == 1
    assert buffer.state == {}  # what the owner kept for the old timeline is gone too
    assert len(persons.get(2)) == 10
    assert persons.stats.resets == 1


def test_persons_on_skewed_clocks_both_keep_their_windows() -> None:
    """Stamps 5000 s apart (two unsynchronised cameras): ages come from the arrival clock."""
    persons = WindowSet(timeout=1.0)
    for t in range(60):
        arrival = t / FPS
        persons.push(make_frame(t, person_id=1, stamp=arrival), arrival=arrival)
        persons.push(make_frame(t, person_id=2, stamp=5000.0 + arrival), arrival=arrival)
    assert persons.stats.resets == 0
    assert len(persons.get(1)) == len(persons.get(2)) == 60
    assert persons.prune(2.0) == []
    assert sorted(persons.prune(3.5)) == [1, 2]


def test_set_counts_duplicates_and_explicit_reset() -> None:
    persons = WindowSet()
    persons.push(make_frame(0))
    persons.push(make_frame(0))
    assert persons.stats.duplicates == 1
    persons.reset()
    assert len(persons) == 0
    persons.push(make_frame(0))  # a fresh time base accepts any stamp
    assert len(persons.get(0)) == 1


@pytest.mark.parametrize("kwargs", [{"timeout": 0.0}, {"max_persons": 0}, {"seconds": -1.0}])
def test_set_rejects_bad_settings(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        WindowSet(**kwargs)


def test_hand_gaps_are_filled_along_time_not_frame_index() -> None:
    """A stall then a burst: a hand missing in between is interpolated by the timestamps."""
    buffer = WindowBuffer(seconds=1.0, max_gap=8)
    stamps = [0.0, 0.1, 0.2, 1.0]
    for k, stamp in enumerate(stamps):
        seen = k in (0, 3)
        hands = np.zeros((2, 21, 4), np.float32)
        hands[0, :, :3] = 0.5 + stamp  # the hand moves with time
        hands[0, :, 3] = 1.0
        body = np.full((33, 4), 0.5, np.float32)
        buffer.push(
            SkeletonFrame(stamp, body, hands if seen else np.zeros_like(hands), np.array([seen, False]))
        )
    window = buffer.window(length=10)
    assert window is not None
    np.testing.assert_allclose(window.sequence.hands[:, 0, 0, 0], 0.5 + np.arange(1, 11) / 10, atol=1e-6)
    assert window.hand_mask[:, 0].all()


def test_errors_name_what_is_wrong() -> None:
    buffer = WindowBuffer()
    with pytest.raises(TypeError, match="expected a SkeletonFrame, got ndarray"):
        buffer.push(np.zeros((33, 4)))  # type: ignore[arg-type]
    stale = make_frame(0)
    stale.timestamp = float("nan")  # changed after the contract check
    with pytest.raises(SkeletonError, match="timestamp nan is not a finite number of seconds"):
        buffer.push(stale)
    frame = make_frame(1)
    frame.body[0, 0] = np.inf
    with pytest.raises(SkeletonError, match="skeleton contains NaN or infinite values"):
        buffer.push(frame)
    with pytest.raises(
        ValueError, match=r"need seconds > 0, max_gap >= 0 and max_frames >= 3, got 1.0, -1, 5"
    ):
        WindowBuffer(1.0, -1, 5)
    with pytest.raises(ValueError, match=r"need timeout > 0 and max_persons >= 1, got 1.0, 0"):
        WindowSet(timeout=1.0, max_persons=0)


def test_settings_at_their_bounds_are_allowed() -> None:
    assert WindowBuffer(max_gap=0, max_frames=3).maxlen == 3
    persons = WindowSet(max_gap=0, max_frames=3, max_persons=1)
    persons.push(make_frame(0))
    assert persons.get(0).maxlen == 3
    assert persons.get(0).max_gap == 0


def test_the_smallest_buffer_still_spans_its_window() -> None:
    """Two frames were allowed: thinned to one per window, the buffer spanned W only now and then."""
    buffer = WindowBuffer(1.0, max_gap=0, max_frames=3)
    ready = 0
    for i in range(300):
        buffer.push(make_frame(i / 30))
        ready += buffer.window(4) is not None
    assert ready >= 250


@pytest.mark.parametrize("kwargs", [{"max_gap": -1}, {"max_frames": 2}])
def test_set_checks_the_buffer_settings_before_any_frame(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="max_gap >= 0 and max_frames >= 3"):
        WindowSet(**kwargs)


def test_reset_warnings_name_the_person_and_what_changed(caplog: pytest.LogCaptureFixture) -> None:
    buffer = WindowBuffer(seconds=0.5)
    buffer.push(make_frame(5, person_id=4))
    with caplog.at_level(logging.WARNING):
        buffer.push(make_frame(2, person_id=4))
        buffer.push(SkeletonFrame(1.0, np.ones((25, 4), np.float32), layout="ntu25", person_id=4))
    assert "person 4: timestamp went backwards (0.166667 -> 0.066667 s); window buffer reset" in caplog.text
    assert (
        "person 4: layout/space changed from mediapipe33/image to ntu25/image; window buffer reset"
        in caplog.text
    )


def test_counters_add_up_over_many_events() -> None:
    buffer = WindowBuffer(seconds=0.5)
    persons = WindowSet(seconds=0.5, timeout=10.0, max_persons=1, evict_after=0.0)
    for t in (0, 0, 1, 1, 0, 1, 0):  # duplicates at 2nd and 4th, resets at 5th and 7th
        buffer.push(make_frame(t))
        persons.push(make_frame(t))
    assert (buffer.stats.duplicates, buffer.stats.resets) == (2, 2)
    assert (persons.stats.duplicates, persons.stats.resets) == (2, 2)
    for person_id in (1, 2):
        persons.push(make_frame(1, person_id=person_id), arrival=5.0 * person_id)
    assert persons.stats.persons_evicted == 2


def test_a_window_keeps_its_person_layout_space_and_image_size() -> None:
    buffer = WindowBuffer(seconds=0.5)
    for t in range(10):
        body = np.full((25, 4), 0.5, np.float32)
        frame = SkeletonFrame(
            t / FPS, body, layout="ntu25", space="world", image_size=(640, 480), person_id=9
        )
        buffer.push(frame)
    sequence = buffer.window(length=8).sequence
    assert (sequence.person_id, sequence.layout, sequence.space, sequence.image_size) == (
        9,
        "ntu25",
        "world",
        (640, 480),
    )


def test_window_gap_filling_uses_the_buffers_max_gap() -> None:
    for max_gap, filled in ((2, True), (1, False)):
        buffer = WindowBuffer(seconds=9 / FPS, max_gap=max_gap)
        for t in range(10):
            buffer.push(make_frame(t, hands=t not in (4, 5)))
        window = buffer.window(length=9)  # instant i reads frame i + 1
        assert bool(window.hand_mask[3:5].all()) is filled, max_gap


def test_readiness_and_the_frames_inside_at_exact_bounds() -> None:
    buffer = WindowBuffer(seconds=0.5)
    for t in range(4):
        buffer.push(make_frame(t, stamp=t * 0.125))
    assert buffer.covered == 0.375
    assert buffer.ready(0.375)  # exactly the history asked for
    buffer.push(make_frame(4, stamp=0.5))
    window = buffer.window(length=4)
    assert window.source_frames == 4  # the frame at exactly end - seconds is the window's start, not inside


def test_old_frames_beyond_the_hand_fill_context_are_forgotten() -> None:
    buffer = WindowBuffer(seconds=0.25, max_gap=2)
    for t in range(10):
        buffer.push(make_frame(t, stamp=t * 0.125))
    # the window (0.875, 1.125]: 2 frames, the frame at its start, and 2 of context
    assert [round(f.timestamp, 3) for f in buffer._frames] == [0.625, 0.75, 0.875, 1.0, 1.125]


def test_eviction_needs_the_stalest_to_be_silent_longer_than_evict_after() -> None:
    persons = WindowSet(timeout=10.0, max_persons=1, evict_after=1.0)
    persons.push(make_frame(0, person_id=1), arrival=0.0)
    assert persons.push(make_frame(1, person_id=2), arrival=1.0) is None  # silent exactly 1 s: kept
    assert persons.push(make_frame(2, person_id=2), arrival=1.01) is not None
    assert persons.person_ids == [2]


def test_default_eviction_is_after_half_the_timeout() -> None:
    persons = WindowSet(timeout=2.0, max_persons=1)
    assert persons.evict_after == 1.0


def test_items_lists_every_person_with_their_buffer() -> None:
    persons = WindowSet()
    for person_id in (5, 2):
        persons.push(make_frame(0, person_id=person_id))
    assert [(pid, buffer is persons.get(pid)) for pid, buffer in persons.items()] == [(5, True), (2, True)]


def test_a_10_khz_stream_is_thinned_and_still_fills_the_window() -> None:
    """At 10 kHz the 512-frame buffer used to span 51 ms, so min_seconds=0.5 was never reached."""
    buffer = WindowBuffer(seconds=0.5)
    body = np.full((33, 4), 0.5, np.float32)
    for t in range(6000):
        buffer.push(SkeletonFrame(t * 1e-4, body))
        assert len(buffer) <= buffer.maxlen
    assert buffer.ready(0.5)
    window = buffer.window(length=16, min_seconds=0.5)
    assert window.stamp == pytest.approx(0.5999)  # the newest frame is always kept
    assert window.duration == pytest.approx(0.5)


def test_thinning_leaves_ordinary_frame_rates_alone() -> None:
    buffer = WindowBuffer(seconds=2.0)
    for t in range(120):  # 4 s at 30 fps, 6 ms and more apart would be kept too
        buffer.push(make_frame(t))
    assert buffer.min_step < 1 / 240
    assert [round(f.timestamp * FPS) for f in buffer._frames] == list(range(51, 120))


def test_a_burst_of_near_equal_stamps_cannot_flush_the_history() -> None:
    buffer = WindowBuffer(seconds=1.0)
    for t in range(40):
        buffer.push(make_frame(t))
    for k in range(2000):  # a broken driver: 2000 frames 1e-12 s apart
        buffer.push(make_frame(40, stamp=40 / FPS + k * 1e-12))
    assert buffer.ready(1.0)
    assert buffer.covered == pytest.approx(1.0)
    assert len(buffer) < 50


def test_a_frame_broken_after_it_was_built_is_refused_at_the_door() -> None:
    """It used to enter the buffer and make every window fail for the window and its context."""
    buffer = WindowBuffer(seconds=0.5)
    for t in range(5):
        buffer.push(make_frame(t))
    broken = make_frame(5)
    broken.body[0, 3] = 2.0  # a score beyond [0, 1]
    with pytest.raises(SkeletonError, match="scores"):
        buffer.push(broken)
    reshaped = make_frame(5)
    reshaped.body = np.zeros((25, 4), np.float32)
    with pytest.raises(SkeletonError, match="mediapipe33 contract"):
        buffer.push(reshaped)
    assert len(buffer) == 5
    buffer.push(make_frame(6))
    assert buffer.window(length=8) is not None


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), None])
def test_arrival_times_must_be_finite(bad: float | None) -> None:
    persons = WindowSet()
    persons.push(make_frame(0))
    if bad is not None:
        with pytest.raises(ValueError, match="arrival time"):
            persons.push(make_frame(1), arrival=bad)
    with pytest.raises(ValueError, match="arrival time"):
        persons.prune(bad)  # type: ignore[arg-type]
    assert persons.person_ids == [0]
    assert len(persons.get(0)) == 1


def test_one_frame_stamped_in_the_future_does_not_hold_a_slot() -> None:
    """Stamps as the clock (bag replay): a lone frame stamped years ahead evicts the stalest person,
    and used to keep its slot, refusing everyone, until the stamps caught up."""
    persons = WindowSet(timeout=1.0, max_persons=1)
    for t in range(30):
        persons.push(make_frame(t, person_id=1))
    assert persons.push(make_frame(30, person_id=7, stamp=1e9)) is not None
    assert persons.push(make_frame(31, person_id=1)) is not None  # the future frame is forgotten
    assert persons.person_ids == [1]
    assert persons.prune(31 / FPS) == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"timeout": float("nan")},
        {"timeout": float("inf")},
        {"evict_after": float("nan")},
        {"evict_after": -1.0},
        {"max_persons": 1.5},
        {"max_frames": 2.5},
        {"max_gap": 1.5},
        {"seconds": float("inf")},
    ],
)
def test_set_rejects_settings_that_are_not_finite_or_not_whole(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="need"):
        WindowSet(**kwargs)


@settings(max_examples=25, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from([0.0, 1e-12, 1e-4, 1 / 30, 0.5, 3.0, -0.2, 1e9, -1e9]),
            st.sampled_from([0, 1, 2, 3, 4, 5, -1, 2**31 - 1, -(2**31)]),
        ),
        min_size=1,
        max_size=200,
    )
)
def test_any_stream_of_stamps_and_ids_keeps_memory_bounded_and_windows_sound(steps: list) -> None:
    """Equal stamps, tiny steps, jumps of years either way and id churn: nothing grows without
    bound, and every ready window has T finite frames."""
    persons = WindowSet(seconds=0.5, max_persons=3, max_frames=64)
    stamp = 1.7e9
    for step, person in steps:
        stamp += step
        buffer = persons.push(make_frame(len(persons), person_id=person, stamp=stamp))
        assert len(persons) <= 3
        if buffer is not None:
            assert len(buffer) <= 64
            window = buffer.window(length=8)
            assert window.sequence.body.shape == (8, 33, 4)
            assert np.isfinite(window.sequence.body).all()
            assert window.first_stamp <= window.stamp


def test_a_stream_running_backwards_warns_at_1_10_and_100_resets(caplog: pytest.LogCaptureFixture) -> None:
    buffer = WindowBuffer(seconds=0.5)
    with caplog.at_level(logging.WARNING):
        for t in range(200, -1, -1):
            buffer.push(make_frame(t, person_id=3))
    assert buffer.stats.resets == 200
    warnings = [r.getMessage() for r in caplog.records if "went backwards" in r.getMessage()]
    assert len(warnings) == 3
    assert "the 100th time for this person" in warnings[-1]


def sized_frame(t: int, size: tuple[int, int], person_id: int = 0) -> SkeletonFrame:
    """Frame ``t`` of the ramp, from an image of ``size`` (width, height)."""
    frame = make_frame(t, person_id=person_id)
    frame.image_size = size
    return frame


SIZE_CHANGES = [((1280, 720), (480, 640)), ((0, 0), (1280, 720)), ((640, 480), (0, 0))]


@pytest.mark.parametrize(("old", "new"), SIZE_CHANGES)
def test_an_image_size_change_resets_so_a_window_has_one_size(
    old: tuple[int, int], new: tuple[int, int], caplog: pytest.LogCaptureFixture
) -> None:
    """The window is read with one image size (its oldest frame's): after a camera changed
    resolution the newest frames were aspect-corrected with the old one."""
    buffer = WindowBuffer(seconds=2.0)
    for t in range(30):
        assert buffer.push(sized_frame(t, old)) is PushResult.ADDED
    with caplog.at_level(logging.WARNING):
        assert buffer.push(sized_frame(30, new)) is PushResult.RESET
    assert f"person 0: image size changed from {old[0]}x{old[1]} to {new[0]}x{new[1]}" in caplog.text
    assert buffer.push(sized_frame(31, new)) is PushResult.ADDED
    assert len(buffer) == 2
    assert buffer.window(length=8).sequence.image_size == new
    assert buffer.stats.resets == 1


def test_an_image_size_change_restarts_only_that_person_and_clears_their_state() -> None:
    persons = WindowSet(seconds=2.0)
    for t in range(5):
        persons.push(sized_frame(t, (640, 480), person_id=1))
        persons.push(make_frame(t, person_id=2))
    persons.get(1).state["smoother"] = "kept until a reset"
    persons.push(sized_frame(5, (1280, 720), person_id=1))
    assert persons.get(1).state == {}
    assert len(persons.get(1)) == 1
    assert len(persons.get(2)) == 5
    assert persons.stats.resets == 1


@pytest.mark.parametrize("seconds", [0.05, 0.2, 0.5])
def test_a_camera_slower_than_a_short_window_is_no_clock_jump(seconds: float) -> None:
    """10 fps frames with a 0.05 s window: each frame came more than a window after the last, and
    every one reset the buffer (and the person's smoother), so smoothing never acted."""
    persons = WindowSet(seconds=seconds)
    persons.push(make_frame(0, stamp=1000.0))
    persons.get(0).state["smoother"] = "kept"
    for k in range(1, 40):
        persons.push(make_frame(k, stamp=1000.0 + k / 10))
        assert persons.get(0).last_result is PushResult.ADDED
    assert persons.stats.resets == persons.get(0).stats.resets == 0
    assert persons.get(0).state == {"smoother": "kept"}
    window = persons.get(0).window(length=4)
    assert window is not None
    assert window.stamp == pytest.approx(1003.9)


@pytest.mark.parametrize(
    ("seconds", "gap", "result"),
    [
        (0.05, 0.9, PushResult.ADDED),  # under the 1 s floor: a stalled camera
        (0.05, 1.2, PushResult.RESET),  # past the floor and the window
        (2.0, 1.5, PushResult.ADDED),  # inside the window
        (2.0, 2.5, PushResult.RESET),  # past the window, as before
        (5.0, 4.0, PushResult.ADDED),
    ],
)
def test_a_forward_gap_resets_beyond_both_the_window_and_the_floor(
    seconds: float, gap: float, result: PushResult
) -> None:
    buffer = WindowBuffer(seconds=seconds)
    assert buffer.jump == max(seconds, 1.0)
    buffer.push(make_frame(0, stamp=50.0))
    buffer.push(make_frame(1, stamp=50.1))
    assert buffer.push(make_frame(2, stamp=50.1 + gap)) is result


def test_hand_slots_follow_the_whole_history_not_only_what_the_buffer_still_holds() -> None:
    """Both hands still, the detector's labels swapped for good after 1 s: the window sorted its
    buffer afresh each time, so once the frames before the swap scrolled out the two hands traded
    slots between two decisions with no motion at all, where training sorts from the clip's start."""
    from bharnet_ros.core.hand_fill import fill_hands

    buffer = WindowBuffer(seconds=1.0)
    hands = np.zeros((2, 21, 4), np.float32)
    hands[0, :, 0], hands[1, :, 0], hands[..., 1], hands[..., 3] = 0.3, 0.7, 0.5, 1.0
    body = np.zeros((33, 4), np.float32)
    history = []
    for t in range(150):  # 5 s at 30 fps
        seen = hands if t < 30 else hands[::-1]
        frame = SkeletonFrame(t / 30, body, seen.copy(), np.array([True, True]))
        history.append(frame)
        buffer.push(frame)
        window = buffer.window(length=8)
        assert window.sequence.hands[-1, 0, 0, 0] == pytest.approx(0.3), t  # the left hand stays left
    stacked = np.stack([f.hands for f in history])
    trained, _ = fill_hands(stacked, np.ones((150, 2), bool), np.arange(150) / 30)
    assert np.allclose(trained[:, 0, 0, 0], 0.3)  # as the feeder sorts a clip
