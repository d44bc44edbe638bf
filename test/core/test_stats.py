"""Running statistics used by diagnostics."""

import pytest

from bharnet_ros.core.stats import GapDropCounter, Percentiles, PersonDropCounter, RateMeter


def test_rate_meter_counts_events_in_its_window():
    meter = RateMeter(window=1.0)
    for i in range(31):
        meter.tick(i / 30)
    assert meter.rate(1.0) == pytest.approx(30.0)
    assert meter.rate(10.0) == 0.0  # old events expire


def test_percentiles_are_bounded_and_summarised():
    stats = Percentiles(size=100)
    for value in range(1000):
        stats.add(float(value))
    summary = stats.summary()
    assert summary["max"] == 999.0
    assert 900 <= summary["p50"] <= 999
    assert Percentiles().summary() == {"p50": 0.0, "p95": 0.0, "max": 0.0}


def test_gaps_in_stamps_count_as_dropped_frames():
    counter = GapDropCounter()
    stamps = [i / 30 for i in range(10)] + [13 / 30, 14 / 30]  # frames 10, 11, 12 never arrived
    missing = [counter.observe(s) for s in stamps]
    assert missing[10] == 3
    assert counter.dropped == 3


def test_a_clock_jump_is_no_burst_of_lost_frames():
    """One frame stamped 0 in an epoch-stamped stream must not report billions of drops."""
    counter = GapDropCounter()
    epoch = 1.7e9
    for i in range(10):
        counter.observe(epoch + i / 30)
    counter.observe(0.0)  # a driver glitch
    for i in range(10, 20):
        counter.observe(epoch + i / 30)
    assert counter.dropped == 0
    counter.observe(epoch + 22 / 30)  # two frames really missing
    assert counter.dropped == 2


def test_a_frame_delivered_late_is_no_gap_before_the_next():
    """Frame 10 again after frame 14: the next frame's gap was measured from frame 10, four frames
    that had all arrived were counted as lost."""
    counter = GapDropCounter()
    for i in [*range(15), 10, *range(15, 20)]:
        counter.observe(i / 30)
    assert counter.dropped == 0


def test_a_short_bag_looping_restarts_the_count_and_keeps_counting():
    """A 3 s bag played again jumps back 3 s: taken as late frames, every drop after it was missed."""
    counter = GapDropCounter()
    for i in range(90):
        counter.observe(i / 30)
    for i in range(0, 90, 2):  # the second loop loses every other frame
        counter.observe(i / 30)
    assert counter.dropped == 44


def test_frames_stamped_microseconds_apart_do_not_set_the_frame_period():
    """A burst stamped 1 µs apart, a pause, then an ordinary 30 Hz stream: nothing was lost."""
    counter = GapDropCounter()
    for i in range(10):
        counter.observe(100.0 + i * 1e-6)
    for i in range(1, 100):
        counter.observe(101.0 + i / 30)
    assert counter.dropped == 0


def test_dropped_frames_are_counted_per_person_and_kept_when_counters_go():
    drops = PersonDropCounter()
    for i in range(10):
        drops.observe(1, i / 30)
        drops.observe(2, 100 + i / 30)  # another clock: no gap between the two persons
    assert drops.dropped == 0
    assert drops.observe(1, 13 / 30) == 3
    drops.forget_untracked([2], most=2)  # not more than 2 persons: nothing goes
    assert len(drops) == 2
    drops.observe(3, 0.0)
    drops.forget_untracked([2], most=2)
    assert len(drops) == 1  # persons 1 and 3 are no longer tracked
    assert drops.dropped == 3  # what person 1 counted stays
    drops.forget_all()
    assert len(drops) == 0
    assert drops.dropped == 3
    drops.observe(2, 500.0)  # heard again after a pause: a new stream, no gap
    assert drops.dropped == 3
