"""Temporal crop and resize: exact lengths, linear values, identity, masks, feeder crops."""

from __future__ import annotations

import numpy as np
import pytest

from bharnet_ros.core.resample import (
    TimeSampling,
    center_crop,
    crop_resize_indices,
    random_crop,
    resize_indices,
    time_window_sampling,
)


def resize_time(array: np.ndarray, length: int) -> np.ndarray:
    """The whole time axis resized: the sampling the feeder applies to a clip."""
    return resize_indices(0, len(array), length).apply(array)


def resize_mask(mask: np.ndarray, length: int) -> np.ndarray:
    return resize_indices(0, len(mask), length).apply_mask(mask)


@pytest.mark.parametrize("source", [1, 2, 17, 63, 64, 65, 150, 300])
@pytest.mark.parametrize("shape", [(25, 3), (2, 21, 4)])
def test_output_has_exact_length_and_trailing_shape(source: int, shape: tuple[int, ...]) -> None:
    array = np.random.default_rng(source).normal(size=(source, *shape)).astype(np.float32)
    out = resize_time(array, 64)
    assert out.shape == (64, *shape)
    assert out.dtype == np.float32


@pytest.mark.parametrize("shape", [(64, 25, 4), (64, 2, 21, 4), (64,)])
def test_same_length_is_identity(shape: tuple[int, ...]) -> None:
    array = np.random.default_rng(0).normal(size=shape)
    np.testing.assert_array_equal(resize_time(array, 64), array)


def test_downsampling_a_ramp_gives_half_pixel_positions() -> None:
    # 128 frames to 64: output i reads source position 2i + 0.5, the mean of frames 2i and 2i+1.
    ramp = np.arange(128, dtype=np.float64)
    np.testing.assert_allclose(resize_time(ramp, 64), 2 * np.arange(64) + 0.5)


def test_upsampling_a_ramp_is_linear_and_clamped_at_the_ends() -> None:
    ramp = 10.0 * np.arange(4)  # 0, 10, 20, 30 -> 8 frames, scale 0.5
    expected = [0.0, 2.5, 7.5, 12.5, 17.5, 22.5, 27.5, 30.0]
    np.testing.assert_allclose(resize_time(ramp, 8), expected)


def test_interpolation_applies_per_channel_on_a_multi_axis_ramp() -> None:
    base = np.arange(6, dtype=np.float32).reshape(1, 2, 3)
    array = np.arange(4, dtype=np.float32)[:, None, None] * 100 + base  # (4, 2, 3)
    out = resize_time(array, 8)
    steps = np.array([0, 25, 75, 125, 175, 225, 275, 300], np.float32)[:, None, None]
    np.testing.assert_allclose(out - base, np.broadcast_to(steps, (8, 2, 3)))


def test_single_source_frame_is_repeated() -> None:
    frame = np.array([[1.0, 2.0, 3.0]])
    np.testing.assert_array_equal(resize_time(frame, 5), np.repeat(frame, 5, axis=0))


def test_constant_signal_stays_exactly_constant() -> None:
    array = np.full((37, 3), 0.123456, dtype=np.float32)
    np.testing.assert_array_equal(resize_time(array, 64), np.full((64, 3), 0.123456, np.float32))


def test_mask_frame_is_valid_only_if_both_blended_frames_are() -> None:
    mask = np.array([True, True, False, True])
    # 4 -> 8: positions 0, .25, .75, 1.25, 1.75, 2.25, 2.75, 3
    expected = [True, True, True, False, False, False, False, True]
    np.testing.assert_array_equal(resize_mask(mask, 8), expected)


def test_mask_identity_and_trailing_axes() -> None:
    mask = np.random.default_rng(1).random((64, 2)) > 0.5
    np.testing.assert_array_equal(resize_mask(mask, 64), mask)
    assert resize_mask(mask, 30).shape == (30, 2)


def test_apply_masked_zeroes_invalid_frames() -> None:
    hands = np.ones((4, 2, 21, 4), np.float32)
    mask = np.array([[True, True], [True, False], [True, True], [True, True]])
    sampling = resize_indices(0, 4, 8)
    out, out_mask = sampling.apply_masked(hands, mask)
    assert out.shape == (8, 2, 21, 4)
    np.testing.assert_array_equal(out_mask[:, 0], True)
    assert not out_mask[2:5, 1].any()
    assert (out[~out_mask] == 0).all()
    assert (out[out_mask] == 1).all()


def test_bool_data_must_go_through_apply_mask() -> None:
    with pytest.raises(TypeError):
        resize_indices(0, 3, 5).apply(np.ones(3, bool))


def test_integer_data_is_resampled_as_float() -> None:
    out = resize_time(np.array([0, 10]), 4)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, [0.0, 2.5, 7.5, 10.0])


def test_resize_indices_offsets_into_the_source() -> None:
    sampling = resize_indices(10, 20, 10)
    np.testing.assert_array_equal(sampling.lo, np.arange(10, 20))
    np.testing.assert_array_equal(sampling.weight, 0.0)
    assert isinstance(sampling, TimeSampling)
    assert len(sampling) == 10


@pytest.mark.parametrize(("start", "stop", "length"), [(5, 5, 64), (3, 1, 64), (-1, 4, 64), (0, 4, 0)])
def test_resize_indices_rejects_bad_ranges(start: int, stop: int, length: int) -> None:
    with pytest.raises(ValueError):
        resize_indices(start, stop, length)


def test_center_crop_follows_the_feeder_rounding() -> None:
    assert center_crop(100, 0.95) == (2, 98)  # int(0.05 * 100 / 2) = 2
    assert center_crop(64, 0.95) == (1, 63)
    assert center_crop(10, 0.95) == (0, 10)
    assert center_crop(64, 1.0) == (0, 64)


def test_random_crop_respects_bounds_and_min_length() -> None:
    rng = np.random.default_rng(3)
    for valid in (10, 64, 65, 100, 300):
        for _ in range(50):
            start, stop = random_crop(valid, (0.5, 1.0), 64, rng)
            assert 0 <= start < stop <= valid
            assert stop - start == min(valid, 64) or 64 <= stop - start <= valid


def test_random_crop_is_reproducible_with_a_seed() -> None:
    first = [random_crop(300, rng=np.random.default_rng(7)) for _ in range(3)]
    assert first == [first[0]] * 3


@pytest.mark.parametrize("ratio", [0.0, -0.1, 1.5])
def test_crop_rejects_bad_ratios(ratio: float) -> None:
    with pytest.raises(ValueError):
        center_crop(100, ratio)


def test_crop_rejects_empty_clips() -> None:
    with pytest.raises(ValueError):
        center_crop(0)


def test_crop_resize_indices_centre_and_random() -> None:
    centre = crop_resize_indices(100, 64, (0.95,))
    assert len(centre) == 64
    assert centre.lo.min() == 2
    assert centre.hi.max() == 97
    random = crop_resize_indices(300, 64, (0.5, 1.0), np.random.default_rng(0))
    assert len(random) == 64
    assert random.lo.min() >= 0
    assert random.hi.max() < 300
    with pytest.raises(ValueError):
        crop_resize_indices(100, 64, (0.5, 0.7, 1.0))


def test_one_sampling_keeps_body_and_hands_in_step() -> None:
    ramp = np.arange(90, dtype=np.float32)
    body = np.broadcast_to(ramp[:, None, None], (90, 25, 4)).copy()
    hands = np.broadcast_to(ramp[:, None, None, None], (90, 2, 21, 4)).copy()
    sampling = crop_resize_indices(90, 64, (0.5, 1.0), np.random.default_rng(4))
    np.testing.assert_array_equal(sampling.apply(body)[:, 0, 0], sampling.apply(hands)[:, 1, 20, 3])


def test_time_window_reads_instants_by_timestamp_and_holds_the_ends() -> None:
    stamps = np.array([0.0, 0.1, 0.3, 0.35, 1.0])
    sampling = time_window_sampling(stamps, end=1.0, duration=1.5, length=6)
    values = sampling.apply(stamps)  # the interpolated time of each instant
    np.testing.assert_allclose(values, [0.0, 0.0, 0.25, 0.5, 0.75, 1.0], atol=1e-12)
    with pytest.raises(ValueError, match="timestamp"):
        time_window_sampling(np.zeros(0), 1.0, 1.0, 4)
    with pytest.raises(ValueError, match="duration"):
        time_window_sampling(stamps, 1.0, 0.0, 4)


def test_one_frame_clips_and_one_frame_outputs_are_allowed() -> None:
    assert center_crop(1) == (0, 1)
    assert random_crop(1, rng=np.random.default_rng(0)) == (0, 1)
    np.testing.assert_array_equal(crop_resize_indices(1, 4).lo, 0)
    np.testing.assert_allclose(resize_time(np.arange(4.0), 1), [1.5])  # position 0.5 * 4 - 0.5
    sampling = time_window_sampling(np.array([0.0, 0.25, 0.5]), end=0.5, duration=0.5, length=1)
    np.testing.assert_array_equal(sampling.lo, [2])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: center_crop(0), "no valid frames to crop"),
        (lambda: center_crop(10, 1.5), r"crop ratio must be in \(0, 1\], got 1.5"),
        (lambda: resize_indices(3, 1, 4), r"empty or negative source range \[3, 1\)"),
        (lambda: resize_indices(0, 4, 0), "target length must be positive, got 0"),
        (lambda: crop_resize_indices(100, 64, (0.5, 0.7, 1.0)), "p_interval needs one"),
        (lambda: time_window_sampling(np.zeros(3), 1.0, 1.0, 0), "need length > 0 and duration > 0, got 0"),
    ],
)
def test_errors_say_what_is_wrong(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_bool_data_error_points_to_apply_mask() -> None:
    with pytest.raises(TypeError, match="use apply_mask for boolean arrays"):
        resize_indices(0, 3, 5).apply(np.ones(3, bool))


def test_crop_resize_defaults_to_64_frames_and_uses_the_given_centre_ratio() -> None:
    assert len(crop_resize_indices(100)) == 64
    whole = crop_resize_indices(100, 64, (1.0,))
    assert (whole.lo.min(), whole.hi.max()) == (0, 99)


def test_random_crop_draws_its_ratio_from_the_whole_range() -> None:
    rng = np.random.default_rng(5)
    crops = [random_crop(1000, (0.5, 0.6), 64, rng) for _ in range(200)]
    lengths = [stop - start for start, stop in crops]
    assert 500 <= min(lengths) < 520
    assert 580 < max(lengths) < 600
    start, stop = random_crop(100, (0.1, 0.1))  # no rng given; min_length defaults to 64
    assert stop - start == 64


def test_crop_resize_passes_the_rng_and_the_ratio_range_to_the_random_crop() -> None:
    def crops() -> list[tuple[int, int]]:
        """(start, stop) of five seeded crops of 100 frames, read back from their samplings."""
        samplings = [crop_resize_indices(100, 40, (0.5, 0.6), np.random.default_rng(s)) for s in range(5)]
        return [(int(s.lo.min()), int(s.hi.max()) + 1) for s in samplings]  # under 120 frames: exact

    first = crops()
    assert crops() == first
    assert all(50 <= stop - start < 60 for start, stop in first)


@pytest.mark.filterwarnings("error")
def test_time_window_blends_the_two_frames_around_each_instant() -> None:
    stamps = np.array([0.0, 0.1, 0.3, 0.35, 1.0])
    sampling = time_window_sampling(stamps, end=1.0, duration=1.5, length=6)
    # instants -0.25, 0, 0.25, 0.5, 0.75, 1.0 as positions between frame indices
    expected = [0.0, 0.0, 1.75, 3 + 0.15 / 0.65, 3 + 0.4 / 0.65, 4.0]
    np.testing.assert_allclose(sampling.apply(np.arange(5.0)), expected)
    assert ((sampling.weight >= 0) & (sampling.weight < 1)).all()
    # an instant on a frame's timestamp, or after the last one, reads that frame alone
    mask = sampling.apply_mask(np.array([True, True, True, False, True]))
    np.testing.assert_array_equal(mask, [True, True, True, False, False, True])


def test_integer_masks_work_like_bool_masks() -> None:
    sampling = resize_indices(0, 4, 8)
    out = sampling.apply_mask(np.array([1, 1, 0, 1]))
    assert out.dtype == bool
    np.testing.assert_array_equal(out, sampling.apply_mask(np.array([True, True, False, True])))


def test_the_last_instant_is_the_newest_frame_exactly() -> None:
    """end - duration + length * (duration / length) rounded below end, so the newest frame came
    blended with the one before at weight 1 - 1e-12, and a hand seen only in it was dropped."""
    stamps = np.array([0.0, 0.1, 0.2, 0.3])
    sampling = time_window_sampling(stamps, end=0.3, duration=2.5, length=32)
    assert sampling.lo[-1] == 3
    assert sampling.weight[-1] == 0.0
    mask = np.array([False, False, False, True])
    assert sampling.apply_mask(mask)[-1]
