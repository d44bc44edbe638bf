"""Hand sort and gap interpolation: swaps fixed, short gaps filled, long and edge gaps left."""

from __future__ import annotations

import numpy as np
import pytest

from bharnet_ros.core.hand_fill import fill_hands, interpolate_gaps, sort_hands

HAND_LENGTH = 0.05  # wrist to middle knuckle in image units


def make_hand(x: float, y: float, score: float = 0.9) -> np.ndarray:
    """A (21, 4) hand with its wrist at (x, y): joints spread along a line, middle knuckle 0.05 up."""
    hand = np.zeros((21, 4), np.float32)
    offsets = np.linspace(0.0, 0.1, 21)
    hand[:, 0] = x + offsets * 0.2
    hand[:, 1] = y - offsets
    hand[9, :2] = x, y - HAND_LENGTH
    hand[0, :2] = x, y
    hand[:, 2] = offsets * 0.01
    hand[:, 3] = score
    return hand


def two_hand_track(frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Left hand drifting right from x=0.3, right hand drifting left from x=0.7, both always seen."""
    hands = np.zeros((frames, 2, 21, 4), np.float32)
    for t in range(frames):
        hands[t, 0] = make_hand(0.3 + 0.002 * t, 0.5)
        hands[t, 1] = make_hand(0.7 - 0.002 * t, 0.5)
    return hands, np.ones((frames, 2), bool)


def test_swapped_frame_is_swapped_back() -> None:
    hands, present = two_hand_track(20)
    truth = hands.copy()
    hands[7] = hands[7, ::-1].copy()
    hands[12] = hands[12, ::-1].copy()
    out, mask = sort_hands(hands, present)
    np.testing.assert_array_equal(out, truth)
    np.testing.assert_array_equal(mask, present)


def test_lone_hand_with_flipped_label_moves_to_its_track() -> None:
    hands, present = two_hand_track(10)
    present[:, 0] = False  # only the right hand is ever seen
    hands[:, 0] = 0
    truth = hands.copy()
    hands[5, 0], hands[5, 1] = hands[5, 1], 0  # detector labels it "left" for one frame
    flipped = present.copy()
    flipped[5] = [True, False]
    out, mask = sort_hands(hands, flipped)
    np.testing.assert_array_equal(out, truth)
    np.testing.assert_array_equal(mask, present)


def test_lone_hand_far_from_the_other_track_keeps_its_label() -> None:
    hands, present = two_hand_track(10)
    present[:6, 0] = False
    hands[:6, 0] = 0
    present[6:, 1] = False  # the right hand leaves, the left one appears far away
    hands[6:, 1] = 0
    out, mask = sort_hands(hands, present)
    np.testing.assert_array_equal(out, hands)
    np.testing.assert_array_equal(mask, present)


def test_lone_hand_nearer_the_other_known_track_is_moved() -> None:
    hands, present = two_hand_track(10)
    lone = hands[6, 1].copy()
    hands[6] = 0
    hands[6, 0] = lone  # right hand labelled left, left hand missing in this frame
    present[6] = [True, False]
    out, mask = sort_hands(hands, present)
    np.testing.assert_array_equal(mask[6], [False, True])
    np.testing.assert_array_equal(out[6, 1], lone)


def test_tracks_are_forgotten_after_memory_frames() -> None:
    hands, present = two_hand_track(30)
    present[:, 0] = False
    hands[:, 0] = 0
    present[5:20, 1] = False  # the right hand is gone for 15 frames
    hands[5:20, 1] = 0
    moved = hands.copy()
    moved[20:, 0], moved[20:, 1] = hands[20:, 1], 0  # it comes back labelled left
    flipped = present.copy()
    flipped[20:] = [True, False]
    out, mask = sort_hands(moved, flipped, memory=8)
    np.testing.assert_array_equal(mask, flipped)  # no recent track: the detector's label stands
    out, mask = sort_hands(moved, flipped, memory=20)
    np.testing.assert_array_equal(mask, present)


def test_short_gap_is_linearly_interpolated_with_mask_set() -> None:
    hands, present = two_hand_track(20)
    truth = hands.copy()
    present[5:10, 0] = False  # 5 missing frames
    hands[5:10, 0] = 0
    out, mask = interpolate_gaps(hands, present, max_gap=8)
    assert mask.all()
    np.testing.assert_allclose(out, truth, atol=1e-6)  # the track is linear in time


def test_gap_values_follow_timestamps_not_indices() -> None:
    hands = np.zeros((4, 2, 21, 4), np.float32)
    hands[0, 0] = make_hand(0.0, 0.0, score=0.2)
    hands[3, 0] = make_hand(0.3, 0.0, score=0.8)
    present = np.array([[True, False], [False, False], [False, False], [True, False]])
    stamps = np.array([0.0, 0.1, 0.2, 1.0])  # a long pause before the last frame
    out, mask = interpolate_gaps(hands, present, stamps)
    np.testing.assert_array_equal(mask[:, 0], True)
    np.testing.assert_allclose(out[1:3, 0, 0, 0], [0.03, 0.06], atol=1e-6)
    np.testing.assert_allclose(out[1:3, 0, 0, 3], [0.26, 0.32], atol=1e-6)  # scores interpolated
    by_index, _ = interpolate_gaps(hands, present)
    np.testing.assert_allclose(by_index[1:3, 0, 0, 0], [0.1, 0.2], atol=1e-6)


def test_equal_stamps_fall_back_to_indices() -> None:
    hands = np.zeros((3, 2, 21, 4), np.float32)
    hands[0, 1, :, 0] = 1.0
    hands[2, 1, :, 0] = 3.0
    present = np.array([[False, True], [False, False], [False, True]])
    out, mask = interpolate_gaps(hands, present, np.zeros(3))
    assert mask[1, 1]
    np.testing.assert_allclose(out[1, 1, :, 0], 2.0)


@pytest.mark.parametrize(("gap", "filled"), [(8, True), (9, False)])
def test_gap_longer_than_max_gap_stays_empty(gap: int, filled: bool) -> None:
    hands, present = two_hand_track(30)
    present[10 : 10 + gap, 1] = False
    hands[10 : 10 + gap, 1] = 0
    out, mask = fill_hands(hands, present, max_gap=8)
    assert mask[10 : 10 + gap, 1].all() == filled
    if not filled:
        assert not mask[10 : 10 + gap, 1].any()
        assert (out[10 : 10 + gap, 1] == 0).all()
    assert mask[:, 0].all()


def test_leading_and_trailing_gaps_stay_empty() -> None:
    hands, present = two_hand_track(20)
    present[:3, 0] = False
    present[17:, 0] = False
    hands[:3, 0] = 7.0  # garbage in absent slots must not leak out
    out, mask = fill_hands(hands, present)
    np.testing.assert_array_equal(mask, present)
    assert (out[:3, 0] == 0).all()
    assert (out[17:, 0] == 0).all()


def test_fill_hands_sorts_before_interpolating() -> None:
    hands, present = two_hand_track(20)
    truth = hands.copy()
    hands[6] = hands[6, ::-1].copy()
    present[8, :] = False
    hands[8] = 0
    out, mask = fill_hands(hands, present)
    assert mask.all()
    np.testing.assert_allclose(out, truth, atol=1e-6)


def test_inputs_are_not_modified_and_shapes_are_checked() -> None:
    hands, present = two_hand_track(12)
    hands[4] = hands[4, ::-1].copy()
    present[6, 0] = False
    before = hands.copy(), present.copy()
    fill_hands(hands, present)
    np.testing.assert_array_equal(hands, before[0])
    np.testing.assert_array_equal(present, before[1])
    with pytest.raises(ValueError):
        fill_hands(hands[:, :1], present[:, :1])
    with pytest.raises(ValueError):
        fill_hands(hands, present[:5])
    with pytest.raises(ValueError):
        fill_hands(hands, present, timestamps=np.arange(12)[::-1])


def test_empty_and_handless_sequences() -> None:
    out, mask = fill_hands(np.zeros((0, 2, 21, 4)), np.zeros((0, 2), bool))
    assert out.shape == (0, 2, 21, 4)
    assert mask.shape == (0, 2)
    out, mask = fill_hands(np.zeros((5, 2, 21, 4)), np.zeros((5, 2), bool))
    assert not mask.any()
    assert out.dtype == np.float32


@pytest.mark.parametrize("flipped", [False, True])
def test_two_hands_are_matched_against_the_one_known_track(flipped: bool) -> None:
    hands, present = two_hand_track(8)
    present[:5, 1] = False  # only the left hand until frame 5
    hands[:5, 1] = 0
    truth = hands.copy()
    if flipped:
        hands[5] = hands[5, ::-1].copy()
    out, mask = sort_hands(hands, present)
    np.testing.assert_array_equal(out, truth)
    np.testing.assert_array_equal(mask, present)
    assert out.dtype == np.float32


def test_lone_hand_midway_between_the_tracks_keeps_its_label() -> None:
    hands = np.zeros((2, 2, 21, 4), np.float32)
    hands[0, 0], hands[0, 1] = make_hand(0.25, 0.5), make_hand(0.75, 0.5)
    hands[1, 0] = make_hand(0.5, 0.5)  # exactly as far from both tracks: not nearer the other one
    present = np.array([[True, True], [True, False]])
    _, mask = sort_hands(hands, present)
    np.testing.assert_array_equal(mask, present)


def test_a_slot_never_seen_has_no_track_even_at_the_origin() -> None:
    hands = np.zeros((2, 2, 21, 4), np.float32)
    hands[0, 0] = make_hand(0.9, 0.9)
    hands[1, 0] = make_hand(0.1, 0.1)  # a left hand far from the left track, near (0, 0)
    present = np.array([[True, False], [True, False]])
    _, mask = sort_hands(hands, present)
    np.testing.assert_array_equal(mask, present)


@pytest.mark.parametrize(("gap", "moved"), [(8, True), (9, False)])
def test_a_track_is_remembered_across_exactly_memory_missing_frames(gap: int, moved: bool) -> None:
    hands, present = two_hand_track(20)
    present[:, 0] = False
    hands[:, 0] = 0
    present[5 : 5 + gap, 1] = False
    hands[5 : 5 + gap, 1] = 0
    back = 5 + gap  # the right hand comes back labelled left
    hands[back, 0], hands[back, 1] = hands[back, 1].copy(), 0
    flipped = present.copy()
    flipped[back] = [True, False]
    _, mask = sort_hands(hands, flipped, memory=8)
    assert mask[back].tolist() == ([False, True] if moved else [True, False])


def test_fill_hands_uses_max_gap_as_memory_and_as_gap_limit() -> None:
    hands, present = two_hand_track(30)
    present[:, 0] = False
    hands[:, 0] = 0
    present[5:15, 1] = False  # 10 missing frames, then back labelled left
    hands[5:15, 1] = 0
    hands[15:, 0], hands[15:, 1] = hands[15:, 1].copy(), 0
    flipped = present.copy()
    flipped[15:] = [True, False]
    _, mask = fill_hands(hands, flipped, max_gap=10)
    assert mask[:, 1].all()
    assert not mask[:, 0].any()


@pytest.mark.filterwarnings("error")
def test_equal_stamps_inside_the_clip_fall_back_to_indices_without_warnings() -> None:
    hands = np.zeros((5, 2, 21, 4), np.float32)
    hands[1, 0, :, 0] = 1.0
    hands[4, 0, :, 0] = 4.0
    present = np.zeros((5, 2), bool)
    present[[1, 4], 0] = True
    out, mask = interpolate_gaps(hands, present, np.array([0.0, 0.5, 0.5, 0.5, 0.5]))
    assert mask[1:, 0].all()
    np.testing.assert_allclose(out[2:4, 0, :, 0], [[2.0] * 21, [3.0] * 21], atol=1e-6)


def test_gap_weights_divide_by_the_time_span_whatever_its_length() -> None:
    hands = np.zeros((4, 2, 21, 4), np.float32)
    hands[0, 0, :, 0] = 0.0
    hands[3, 0, :, 0] = 0.3
    present = np.array([[True, False], [False, False], [False, False], [True, False]])
    out, _ = interpolate_gaps(hands, present, np.array([0.0, 0.1, 0.2, 0.5]))  # a 0.5 s span
    np.testing.assert_allclose(out[1:3, 0, 0, 0], [0.06, 0.12], atol=1e-6)


def test_integer_mask_works_like_a_bool_mask() -> None:
    hands, present = two_hand_track(12)
    present[4:6, 0] = False
    out, mask = fill_hands(hands, present.astype(int))
    expected, expected_mask = fill_hands(hands, present)
    assert mask.dtype == bool
    np.testing.assert_array_equal(mask, expected_mask)
    np.testing.assert_array_equal(out, expected)


def test_errors_say_what_is_wrong() -> None:
    hands, present = two_hand_track(12)
    with pytest.raises(ValueError, match=r"hands must be \(T, 2, 21, 4\), got \(12, 1, 21, 4\)"):
        fill_hands(hands[:, :1], present[:, :1])
    with pytest.raises(ValueError, match=r"hand mask \(5, 2\) does not match hands \(12, 2\)"):
        fill_hands(hands, present[:5])
    with pytest.raises(ValueError, match=r"timestamps \(11,\) do not match 12 frames"):
        fill_hands(hands, present, timestamps=np.arange(11.0))
    for stamps in (np.arange(12.0)[::-1], np.r_[np.arange(11.0), np.nan]):
        with pytest.raises(ValueError, match="timestamps must be finite and non-decreasing"):
            fill_hands(hands, present, timestamps=stamps)
