"""Temporal crop and resize shared by the training feeder and the live window.

The model is trained on clips whose valid frames are cropped and then stretched or squeezed to a
fixed length T (64) along time, as in the DeGCN / CTR-GCN feeder (model_spec.md section 9.5). The
runtime window must present the same kind of input, so both go through this module.

Resizing is linear interpolation along axis 0 with the sample positions of PyTorch's
``F.interpolate(mode="bilinear", align_corners=False)`` used by that feeder: output frame ``i`` of
``T`` reads source position ``(i + 0.5) * L / T - 0.5`` (clamped at 0) of the ``L`` source frames.
When ``L == T`` this is the identity. A :class:`TimeSampling` holds the two source frames and the
blend weight per output frame, so one sampling can be applied to body, hands, masks and timestamps
and they stay in step.

Models trained with a window *duration* (``PreprocessConfig.window_seconds``) are sampled by
time instead (:func:`time_window_sampling`): T instants evenly spread over the last W seconds,
each read from the source frames around it by their timestamps. The same motion recorded at
10, 20 or 30 fps then gives the same T frames, and the live window and the training feeder agree
whatever the camera's (or a loaded machine's) frame rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TRAIN_P_INTERVAL = (0.5, 1.0)  # DeGCN train crop ratio range
TEST_P_INTERVAL = (0.95,)  # DeGCN test-time centre crop


@dataclass(frozen=True)
class TimeSampling:
    """Output frame i = source[lo[i]] blended toward source[hi[i]] by weight[i] in [0, 1).

    Indices are absolute (a crop offset is already added), so the sampling applies directly to the
    uncropped array.
    """

    lo: np.ndarray  # (T,) int64
    hi: np.ndarray  # (T,) int64
    weight: np.ndarray  # (T,) float64

    def __len__(self) -> int:
        return len(self.lo)

    def apply(self, array: np.ndarray) -> np.ndarray:
        """Linearly resample ``array`` (T_src, ...) along time; floats keep their dtype.

        Non-float input (e.g. int) comes back as float64. Use :meth:`apply_mask` for booleans.
        """
        array = np.asarray(array)
        if array.dtype == bool:
            raise TypeError("use apply_mask for boolean arrays")
        w = self.weight.reshape((-1,) + (1,) * (array.ndim - 1))
        a = array[self.lo].astype(np.float64)
        b = array[self.hi].astype(np.float64)
        out = a + w * (b - a)  # exact where w == 0 or a == b
        return out.astype(array.dtype) if np.issubdtype(array.dtype, np.floating) else out

    def apply_mask(self, mask: np.ndarray) -> np.ndarray:
        """Resample a validity mask (T_src, ...): an output frame is valid only if every source
        frame it blends with a non-zero weight is valid.

        So a frame interpolated between a detection and a missing (zero) frame is invalid, and
        frames read exactly from a source frame (weight 0) keep that frame's flag.
        """
        mask = np.asarray(mask, dtype=bool)
        w = self.weight.reshape((-1,) + (1,) * (mask.ndim - 1))
        return mask[self.lo] & (mask[self.hi] | (w == 0))

    def apply_masked(self, array: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Resample data and its mask together; data of invalid output frames is set to zero.

        ``mask`` has the leading axes of ``array`` (e.g. hands (T, 2, 21, 4) with mask (T, 2)).
        Zeroing keeps the contract that an absent hand is all zeros rather than a faded blend.
        """
        out = self.apply(array)
        out_mask = self.apply_mask(mask)
        out[~out_mask] = 0
        return out, out_mask


def resize_indices(start: int, stop: int, length: int) -> TimeSampling:
    """Sampling that maps source frames ``[start, stop)`` linearly onto ``length`` frames."""
    count = stop - start
    if count <= 0 or start < 0:
        raise ValueError(f"empty or negative source range [{start}, {stop})")
    if length <= 0:
        raise ValueError(f"target length must be positive, got {length}")
    position = (np.arange(length, dtype=np.float64) + 0.5) * (count / length) - 0.5
    position = np.maximum(position, 0.0)
    lo = np.floor(position).astype(np.int64)
    weight = position - lo
    hi = np.minimum(lo + 1, count - 1)
    return TimeSampling(lo + start, hi + start, weight)


def window_instants(end: float, duration: float, length: int) -> np.ndarray:
    """The ``length`` instants of :func:`time_window_sampling`, the last one ``end`` exactly."""
    steps_back = (length - 1 - np.arange(length, dtype=np.float64)) / length
    return end - duration * steps_back


def time_window_sampling(timestamps: np.ndarray, end: float, duration: float, length: int) -> TimeSampling:
    """Sampling of ``length`` instants evenly spread over ``(end - duration, end]`` by timestamp.

    Instant ``i`` is ``end - duration + (i + 1) * duration / length`` (the last one is ``end``);
    it blends the source frames just before and after it in time. Instants before the first
    frame or after the last read that frame (the person held still), so a window longer than
    the recording repeats its first pose. ``timestamps`` must be non-decreasing.
    """
    stamps = np.asarray(timestamps, np.float64)
    if stamps.ndim != 1 or not len(stamps):
        raise ValueError("need at least one timestamp")
    if length <= 0 or not duration > 0:
        raise ValueError(f"need length > 0 and duration > 0, got {length}, {duration}")
    instants = window_instants(end, duration, length)
    lo = np.clip(np.searchsorted(stamps, instants, side="right") - 1, 0, len(stamps) - 1)
    hi = np.minimum(lo + 1, len(stamps) - 1)
    span = stamps[hi] - stamps[lo]
    weight = np.clip((instants - stamps[lo]) / np.where(span > 0, span, 1.0), 0.0, 1.0 - 1e-12)
    weight = np.where(span > 0, weight, 0.0)
    return TimeSampling(lo.astype(np.int64), np.where(weight > 0, hi, lo).astype(np.int64), weight)


def center_crop(valid_frames: int, ratio: float = TEST_P_INTERVAL[0]) -> tuple[int, int]:
    """Test-time crop: keep the middle ``ratio`` of the frames, as ``(start, stop)``.

    Trims ``int((1 - ratio) * valid_frames / 2)`` frames from each end (DeGCN's rounding).
    """
    _check_crop_args(valid_frames, ratio)
    trim = int((1.0 - ratio) * valid_frames / 2)
    return trim, valid_frames - trim


def random_crop(
    valid_frames: int,
    ratio_range: tuple[float, float] = TRAIN_P_INTERVAL,
    min_length: int = 64,
    rng: np.random.Generator | None = None,
) -> tuple[int, int]:
    """Training crop: a ratio p ~ U(ratio_range), length ``min(max(floor(p*L), min_length), L)``,
    at a uniformly random offset; returns ``(start, stop)``.

    ``min_length`` is the target length T, so short crops are never stretched from too few frames.
    Pass a seeded ``rng`` for reproducible crops.
    """
    low, high = ratio_range
    _check_crop_args(valid_frames, low)
    _check_crop_args(valid_frames, high)
    rng = np.random.default_rng() if rng is None else rng
    ratio = rng.uniform(low, high)
    length = min(max(int(np.floor(valid_frames * ratio)), min_length), valid_frames)
    start = int(rng.integers(0, valid_frames - length + 1))
    return start, start + length


def crop_resize_indices(
    valid_frames: int,
    length: int = 64,
    p_interval: tuple[float, ...] = TEST_P_INTERVAL,
    rng: np.random.Generator | None = None,
) -> TimeSampling:
    """The feeder's crop + resize as one sampling over the first ``valid_frames`` frames.

    ``p_interval`` with one value is the deterministic centre crop (test, runtime); with two values
    it is the random training crop drawn from ``rng``. Apply the returned sampling to the body and
    the hands alike so the two streams stay synchronous.
    """
    if len(p_interval) == 1:
        start, stop = center_crop(valid_frames, p_interval[0])
    elif len(p_interval) == 2:
        start, stop = random_crop(valid_frames, (p_interval[0], p_interval[1]), length, rng)
    else:
        raise ValueError(f"p_interval needs one (centre) or two (random) values, got {p_interval}")
    return resize_indices(start, stop, length)


def _check_crop_args(valid_frames: int, ratio: float) -> None:
    if valid_frames <= 0:
        raise ValueError("no valid frames to crop")
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"crop ratio must be in (0, 1], got {ratio}")
