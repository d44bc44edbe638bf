"""Training and evaluation feeder: dataset samples to model tensors, with augmentation.

:class:`SkeletonFeeder` is a ``torch.utils.data.Dataset`` over a
:class:`~bharnet_ros.training.dataset.SkeletonDataset`. Item ``i`` is
``(body (C, T, V, M), hand (C, T, V, 2), hand_mask (T,), label)`` made in this order:

1. **Hands sorted and gaps filled** (``core.hand_fill.fill_hands``), as the live window does
   before resampling (cached per sample). Filled over the whole clip, so a gap at a window's end
   is filled from later frames, which the live node cannot see yet (docs/training.md).
2. **Temporal sampling**: one sampling for body and hands alike, so the streams stay in step.
   Data and masks are resampled together, so a frame blended from a detection and a gap is
   absent (zeros), never a faded pose.

   * Models with a window duration (``window_seconds`` > 0) see what the live window sees: T
     instants over W seconds, read by timestamp (``core.resample.time_window_sampling``).
     Training draws the window's end so that it overlaps at least ``min_cover`` of the clip (or
     of the window, if that is shorter) and stretches W by a random speed factor; evaluation
     centres the window on the clip, or places it at ``view`` (0 to 1) between the first and the
     last window that overlap the clip by ``EVAL_COVER``. A window reaching past the clip holds
     its first or last pose.
   * Frame-count models (``window_seconds`` 0): a crop ratio p in [0.5, 1] at a random offset for
     training, the centre 95 % for evaluation, resized to T (``core.resample.crop_resize_indices``).
3. **Raw-coordinate augmentation** (training only): mirroring (x flipped, the left/right body
   joints swapped, the two hand slots swapped) and hand dropout (runs of whole-hand frames zeroed
   with the presence flag off). Both act before preprocessing so the hand mask, bones and motion
   that involve a dropped hand come out exactly as for a real missing detection. A mirrored
   lateral gesture changes class (``left`` becomes ``right``) and one without a mirrored twin in
   the vocabulary is never mirrored (:func:`mirror_label_map`).
4. **Preprocessing** (``core.preprocess.preprocess_arrays``) with the model's
   :class:`~bharnet_ros.core.preprocess.PreprocessConfig`: the one code path of export and runtime.
5. **Model-space augmentation** (training only): a rotation (3-D Euler angles for ``world`` data
   as in DeGCN; a small in-plane rotation for ``image`` data, whose depth is unreliable), a
   uniform scale, optionally a shear (``augment.shear``) and Gaussian jitter on observed hand (and,
   optionally, body) joints. Rotation, scale and shear are linear, so applying them after
   preprocessing is the same for every modality (bones and motion are differences of joints);
   they act on x, y, z only, never on a score channel.

Randomness is reproducible: the generator of item ``i`` in epoch ``e`` is seeded from
``(seed, e, i)``, so results do not depend on the number of DataLoader workers or on which
worker loads an item. Call :meth:`SkeletonFeeder.set_epoch` before each epoch.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from bharnet_ros.core.hand_fill import fill_hands
from bharnet_ros.core.layouts import mirror_permutation
from bharnet_ros.core.preprocess import PreprocessConfig, preprocess_arrays
from bharnet_ros.core.resample import (
    TEST_P_INTERVAL,
    TRAIN_P_INTERVAL,
    TimeSampling,
    crop_resize_indices,
    time_window_sampling,
)
from bharnet_ros.core.skeleton import COORDINATE_LIMITS, TIME_LIMIT, SkeletonSequence
from bharnet_ros.training.classes import name_words
from bharnet_ros.training.dataset import DatasetError, SkeletonDataset

Item = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


# Largest rotation (rad) and jitter (body sizes): beyond them a sample is no longer a person.
MOST_MAGNITUDE = {"rotate_3d": math.pi, "rotate_2d": math.pi, "hand_jitter": 1.0, "body_jitter": 1.0}


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentations; a probability or magnitude of 0 switches one off."""

    mirror: float = 0.5  # probability of a left/right mirrored sample
    rotate_3d: float = 0.3  # world space: Euler angles ~ U(-a, a) rad about x, y, z (DeGCN)
    rotate_2d: float = 0.15  # image space: in-plane angle ~ U(-a, a) rad
    scale: float = 0.1  # uniform scale ~ U(1 - s, 1 + s)
    shear: float = 0.0  # off-diagonal terms ~ U(-s, s) of a linear map: other proportions and views
    hand_jitter: float = 0.01  # std of Gaussian noise on observed hand joints, in body sizes
    body_jitter: float = 0.0  # std of Gaussian noise on observed body joints (far, noisy people)
    hand_dropout: float = 0.2  # probability per hand slot of dropping a run of its frames
    hand_dropout_max: float = 1.0  # longest dropped run as a fraction of T (1 = whole clip)
    speed: float = 0.0  # time windows: W stretched by a factor ~ U(1 - s, 1 + s)
    min_cover: float = 0.5  # time windows: least overlap with the clip, as a fraction
    mirror_pairs: Any = "auto"  # auto (left/right in class names) or [[a, b], ...] swapped when mirrored
    mirror_never: tuple[str, ...] = ()  # classes never mirrored (lateral, without a twin)

    def __post_init__(self) -> None:
        for name in ("mirror", "hand_dropout"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"augment.{name} is a probability; use a value in [0, 1]")
        if not 0.0 <= self.scale < 1.0:
            raise ValueError("augment.scale must be in [0, 1)")
        if not 0.0 < self.hand_dropout_max <= 1.0:
            raise ValueError("augment.hand_dropout_max must be in (0, 1]")
        for name, most in MOST_MAGNITUDE.items():
            if not 0.0 <= getattr(self, name) <= most:  # NaN fails too
                raise ValueError(f"augment.{name} must be in [0, {most:g}]")
        if not 0.0 <= self.shear < 1.0:
            raise ValueError("augment.shear must be in [0, 1)")
        if not 0.0 <= self.speed < 1.0 or not 0.0 < self.min_cover <= 1.0:
            raise ValueError("augment.speed must be in [0, 1) and augment.min_cover in (0, 1]")
        if self.mirror_pairs != "auto":
            pairs = self.mirror_pairs
            if not isinstance(pairs, list | tuple) or any(
                not isinstance(pair, list | tuple) or len(pair) != 2 for pair in pairs
            ):
                raise ValueError("augment.mirror_pairs must be auto or a list of [class, class] pairs")
            object.__setattr__(self, "mirror_pairs", tuple(tuple(map(str, pair)) for pair in pairs))
        object.__setattr__(self, "mirror_never", tuple(map(str, self.mirror_never or ())))

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> AugmentConfig:
        """From a config mapping; unknown keys are errors, not silently ignored."""
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"augment: unknown keys {sorted(unknown)}; known: {sorted(known)}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if data["mirror_pairs"] != "auto":
            data["mirror_pairs"] = [list(pair) for pair in data["mirror_pairs"]]
        data["mirror_never"] = list(data["mirror_never"])
        return data


NO_AUGMENT = AugmentConfig(
    mirror=0.0, rotate_3d=0.0, rotate_2d=0.0, scale=0.0, hand_jitter=0.0, hand_dropout=0.0
)
EVAL_COVER = 0.8  # evaluation windows overlap the clip (or the window) by at least this fraction
LATERAL = {"left": "right", "right": "left"}


def lateral_key(name: str) -> str:
    """A class name lower-cased without separators: ``TurnLeft``, ``TURNLEFT``, ``turn_left`` and
    ``turn.left`` are all ``turnleft``, so a ``left`` inside it is found however it is written."""
    return "".join(name_words(name))


def is_lateral(name: str) -> bool:
    """Whether a class name holds ``left`` or ``right`` (``swipe_left2``, ``lefthand_raise`` too):
    such a class mirrored is another gesture. A name such as ``upright`` counts as well, and is
    then never mirrored, which costs augmentation, not labels."""
    key = lateral_key(name)
    return "left" in key or "right" in key


def _swapped(key: str) -> str:
    return re.sub("left|right", lambda found: LATERAL[found.group()], key)


def mirror_label_map(class_names: list[str], pairs: Any = "auto", never: tuple[str, ...] = ()) -> np.ndarray:
    """(K,) the class each class becomes when mirrored, -1 where a class is never mirrored.

    ``auto`` pairs classes whose names differ only by ``left``/``right`` (``left`` and ``right``;
    ``point_left`` and ``point_right``; ``TURNLEFT`` and ``TURNRIGHT``); a lateral class
    (:func:`is_lateral`) with no twin in the
    vocabulary is never mirrored, since its mirror image is a gesture the model does not know.
    Explicit ``pairs`` replace the automatic ones (a class named by a ``left``/``right`` word that
    they do not pair is never mirrored: it would be trained as its own mirror image); ``never``
    adds classes that are not mirrored.
    """
    index = {name: i for i, name in enumerate(class_names)}
    target = np.arange(len(class_names), dtype=np.int64)
    if pairs == "auto":
        by_key: dict[str, int] = {}
        for name, i in index.items():
            by_key.setdefault(lateral_key(name), i)
        for name, i in index.items():
            if is_lateral(name):
                target[i] = by_key.get(_swapped(lateral_key(name)), -1)
    else:
        paired: set[str] = set()
        for first, second in pairs:
            unknown = [name for name in (first, second) if name not in index]
            if unknown:
                raise ValueError(f"augment.mirror_pairs names {unknown}, not among the classes")
            if first == second or {first, second} & paired:
                raise ValueError(
                    f"augment.mirror_pairs pairs {first!r} or {second!r} twice; give each class one twin"
                )
            paired |= {first, second}
            target[index[first]], target[index[second]] = index[second], index[first]
        for name, i in index.items():
            if name not in paired and is_lateral(name):
                target[i] = -1
    for name in never:
        if name not in index:
            raise ValueError(f"augment.mirror_never names {name!r}, not among the classes")
        twin = target[index[name]]
        if twin >= 0 and twin != index[name]:  # its twin, mirrored, would become it after all
            target[twin] = -1
        target[index[name]] = -1
    return target


def mirror_arrays(
    body: np.ndarray, hands: np.ndarray, present: np.ndarray, layout: str, space: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Left/right mirror image of body ``(..., T, V, 4)``, hands ``(T, 2, 21, 4)``, presence ``(T, 2)``.

    x becomes ``1 - x`` in image space (fractions of the width) and ``-x`` in world space, only
    where a joint is observed so absent joints stay zero; left and right joints and hand slots
    trade places, so a mirrored left-hand gesture looks like the same gesture made with the right.
    """
    body = body[..., mirror_permutation(layout), :].copy()
    hands = hands[:, ::-1].copy()
    present = present[:, ::-1].copy()
    for points in (body, hands):
        observed = np.any(points != 0.0, axis=-1)
        flipped = 1.0 - points[..., 0] if space == "image" else -points[..., 0]
        points[..., 0] = np.where(observed, flipped, 0.0)
    return body, hands, present


def drop_hand_frames(
    hands: np.ndarray, present: np.ndarray, probability: float, max_fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Per hand slot, with ``probability``, zero a random run of frames and clear its presence."""
    hands, present = hands.copy(), present.copy()
    frames = len(present)
    for slot in range(present.shape[1]):
        if rng.random() >= probability:
            continue
        length = max(1, int(round(rng.uniform(min(0.1, max_fraction), max_fraction) * frames)))
        start = int(rng.integers(0, frames - length + 1))
        hands[start : start + length, slot] = 0.0
        present[start : start + length, slot] = False
    return hands, present


def rotation_matrix(angles: np.ndarray) -> np.ndarray:
    """``Rz @ Ry @ Rx`` for Euler angles ``(ax, ay, az)`` in radians."""
    (cx, cy, cz), (sx, sy, sz) = np.cos(angles), np.sin(angles)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def random_rotation(space: str, augment: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """3-D rotation for world data, in-plane (about the camera axis) for image data."""
    if space == "world":
        angles = rng.uniform(-augment.rotate_3d, augment.rotate_3d, 3)
    else:
        angles = np.array([0.0, 0.0, rng.uniform(-augment.rotate_2d, augment.rotate_2d)])
    return rotation_matrix(angles)


def random_shear(space: str, shear: float, rng: np.random.Generator) -> np.ndarray:
    """The identity with off-diagonal terms ~ U(-shear, shear): between x, y and z for world data,
    between x and y only for image data (whose depth is unreliable).

    A person's proportions and the camera's view of them differ from one person and room to the
    next in ways a rotation and a uniform scale do not reach; a shear stretches the skeleton along
    a diagonal, as a leaning or differently built person does.
    """
    axes = 3 if space == "world" else 2
    matrix = np.eye(3)
    for i, j in itertools.permutations(range(axes), 2):
        matrix[i, j] = rng.uniform(-shear, shear)
    return matrix


def transform_xyz(tensor: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 3x3 linear map to channels 0-2 of a ``(C, T, V, M)`` tensor (a score channel stays)."""
    out = tensor.copy()
    out[:3] = np.einsum("ij,jtvm->itvm", matrix, tensor[:3]).astype(tensor.dtype)
    return out


def jitter_observed(tensor: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise on x, y, z of every non-zero vertex; absent and dummy vertices stay zero."""
    out = tensor.copy()
    observed = np.any(tensor[:3] != 0.0, axis=0)
    noise = rng.normal(0.0, sigma, tensor[:3].shape).astype(tensor.dtype)
    out[:3] = np.where(observed, tensor[:3] + noise, tensor[:3])
    return out


def check_samples(data: SkeletonDataset) -> None:
    """Refuse samples the feeder cannot turn into finite model inputs, naming the first one.

    The dataset format only asks for finite numbers. A sample without frames cannot be sampled;
    coordinates beyond the skeleton contract's limits (``core.skeleton.COORDINATE_LIMITS``, e.g.
    1e30 or FLT_MAX) overflow the preprocessing's squares into inf and NaN; scores outside [0, 1]
    break the contract; and timestamps beyond ``core.skeleton.TIME_LIMIT`` overflow or blur the time windows.
    """
    empty = np.flatnonzero(data.frame_counts == 0)
    if len(empty):
        raise DatasetError(f"sample {data.names[empty[0]]} has no frames; leave it out of the dataset")
    limit = COORDINATE_LIMITS[data.space]
    parts = [("body", data.body), ("hand", data.hands)] if data.has_hands else [("body", data.body)]
    for part, array in parts:
        check_range(data, array[..., :3], (-limit, limit), f"{part} coordinates ({data.space} space)")
        check_range(data, array[..., 3], (0.0, 1.0), f"{part} scores")
    check_range(data, data.timestamps, (-TIME_LIMIT, TIME_LIMIT), "timestamps (seconds)")


def check_range(data: SkeletonDataset, values: np.ndarray, bounds: tuple[float, float], what: str) -> None:
    """A DatasetError naming the first sample with a value outside ``bounds``; ``values`` has the
    frame axis first (timestamps) or second (person, frame, ...)."""
    low, high = bounds
    if not values.size or (values.min() >= low and values.max() <= high):
        return
    frames = len(data.timestamps)
    by_frame = np.moveaxis(values, 1, 0).reshape(frames, -1) if values.ndim > 1 else values[:, None]
    outside = (by_frame < low) | (by_frame > high)
    frame = int(np.argmax(outside.any(axis=1)))
    sample = int(np.searchsorted(data.offsets, frame, side="right")) - 1
    wrong = by_frame[frame][outside[frame]]
    worst = float(wrong[np.argmax(np.abs(wrong))])
    raise DatasetError(
        f"sample {data.names[sample]}: {what} reach {worst:.3g}, outside [{low:g}, {high:g}]; "
        "fix or leave out that sample"
    )


def fill_up_to(
    hands: np.ndarray, present: np.ndarray, timestamps: np.ndarray, stop: int
) -> tuple[np.ndarray, np.ndarray]:
    """Hands sorted and gaps filled from the frames before ``stop`` only: a window as the live
    node builds it, which has no later frame to fill a gap at its end from."""
    filled, mask = fill_hands(hands[:stop], present[:stop], timestamps[:stop])
    return np.concatenate([filled, hands[stop:]]), np.concatenate([mask, present[stop:]])


def observed_frames(body: np.ndarray, present: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
    """The indices of the frames a live window would hold: those with any body joint or hand (all
    of them where none has one), the first of frames sharing a stamp.

    Empty frames are dropped wherever they lie: the live node gets no frame while nobody is seen,
    so a window reaching past a person's first or last frame holds that pose, and one across a
    moment the person was lost blends the frames either side, as the window buffer does. The
    buffer also ignores a frame stamped like its newest, where resampling would read the last.
    """
    frames = np.any(body != 0.0, axis=(0, 2, 3)) | np.any(present, axis=1)
    observed = np.flatnonzero(frames)
    observed = observed if len(observed) else np.arange(body.shape[1])
    stamps, advancing = timestamps[observed], np.ones(len(observed), bool)
    advancing[1:] = stamps[1:] > stamps[:-1]
    return observed[advancing]


class SkeletonFeeder(Dataset):
    """Model inputs and labels of a dataset's samples (see the module docstring).

    ``labels`` replaces the dataset's labels (e.g. a validation set renumbered to the training
    class list); ``train`` switches on the random crop and augmentations.
    """

    def __init__(
        self,
        data: SkeletonDataset,
        preprocess: PreprocessConfig,
        train: bool = False,
        augment: AugmentConfig | None = None,
        seed: int = 0,
        fill_gaps: bool = True,
        labels: np.ndarray | None = None,
        causal_fill: bool = False,
    ) -> None:
        check_samples(data)
        self.data = data
        self.preprocess = preprocess
        self.train = train
        self.augment = (augment or AugmentConfig()) if train else NO_AUGMENT
        self.seed = seed
        self.fill_gaps = fill_gaps and data.has_hands
        self.causal_fill = causal_fill  # fill each window's gaps only from frames up to its end
        self.labels = np.asarray(data.labels if labels is None else labels, np.int64)
        self.mirror_to = mirror_label_map(
            data.class_names, self.augment.mirror_pairs, self.augment.mirror_never
        )
        self.epoch = 0
        self.view = 0.5  # evaluation: where the window sits in the clip (0 first, 0.5 centre, 1 last)
        self._filled: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.data)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose random crops and augmentations items draw."""
        self.epoch = int(epoch)

    def rng(self, draw: int) -> np.random.Generator:
        """The generator of ``draw`` (an item's index, or a repeat's: ``training.sampling``) in the
        current epoch."""
        return np.random.default_rng([self.seed, self.epoch, draw])

    def hands_of(
        self, index: int, sample: SkeletonSequence, seen: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The subject's hands ``(T, 2, 21, 4)`` and presence ``(T, 2)`` in the ``seen`` frames of
        sample ``index``, gap-filled when enabled."""
        if index in self._filled:
            return self._filled[index]
        hands, present = sample.hands[0][seen], sample.hand_present[0][seen]
        if self.fill_gaps and present.any() and not self.causal_fill:  # causal: in crop()
            hands, present = fill_hands(hands, present, sample.timestamps[seen])
            self._filled[index] = (hands, present)
        return hands, present

    def seen(self, sample: SkeletonSequence) -> np.ndarray:
        """The frames of ``sample`` the model learns from (:func:`observed_frames`)."""
        persons = min(sample.body.shape[0], self.preprocess.num_persons)
        return observed_frames(sample.body[:persons], sample.hand_present[0], sample.timestamps)

    def __getitem__(self, draw: int) -> Item:
        """Item ``draw % len(self)``, cropped and augmented by the draw's own generator."""
        rng, index = self.rng(draw), draw % len(self.data)
        sample = self.data.sample(index)
        persons, seen = min(sample.body.shape[0], self.preprocess.num_persons), self.seen(sample)
        hands, present = self.hands_of(index, sample, seen)
        body, hands, present = self.crop(
            sample.body[:persons, seen], hands, present, sample.timestamps[seen], rng
        )
        label = int(self.labels[index])
        body, hands, present, label = self.augment_raw(body, hands, present, label, rng)
        inputs = preprocess_arrays(
            body, hands, present, self.data.layout, self.data.space, self.preprocess, sample.image_size
        )
        body_tensor, hand_tensor = self.augment_model_space(inputs.body, inputs.hand, rng)
        return (
            torch.from_numpy(body_tensor),
            torch.from_numpy(hand_tensor),
            torch.from_numpy(inputs.hand_mask),
            torch.tensor(label, dtype=torch.int64),
        )

    def sampling(self, length: int, timestamps: np.ndarray, rng: np.random.Generator) -> TimeSampling:
        """The temporal sampling of a clip's first ``length`` frames (see the module docstring)."""
        seconds = self.preprocess.window_seconds
        if seconds <= 0:
            p_interval = TRAIN_P_INTERVAL if self.train else TEST_P_INTERVAL
            return crop_resize_indices(length, self.preprocess.frames, p_interval, rng)
        stamps = timestamps[:length]
        first, last = float(stamps[0]), float(stamps[-1])
        if not self.train:
            cover = EVAL_COVER * min(seconds, last - first)
            end = first + cover + self.view * (last + seconds - 2 * cover - first)
            return time_window_sampling(stamps, end, seconds, self.preprocess.frames)
        speed = self.augment.speed
        seconds *= rng.uniform(1.0 - speed, 1.0 + speed) if speed > 0 else 1.0
        cover = self.augment.min_cover * min(seconds, last - first)
        end = rng.uniform(first + cover, last + seconds - cover)
        return time_window_sampling(stamps, end, seconds, self.preprocess.frames)

    def crop(
        self,
        body: np.ndarray,
        hands: np.ndarray,
        present: np.ndarray,
        timestamps: np.ndarray,
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One temporal sampling to T frames for body ``(P, T, V, 4)`` and the hands."""
        sampling = self.sampling(len(timestamps), timestamps, rng)
        if self.causal_fill and self.fill_gaps and present.any():
            hands, present = fill_up_to(hands, present, timestamps, int(sampling.hi.max()) + 1)
        by_time = body.transpose(1, 0, 2, 3)  # (T, P, V, 4): time first for the sampling
        body_out, _ = sampling.apply_masked(by_time, np.any(by_time != 0.0, axis=-1))
        hands_out, present_out = sampling.apply_masked(hands, present)
        return body_out.transpose(1, 0, 2, 3), hands_out, present_out

    def augment_raw(
        self, body: np.ndarray, hands: np.ndarray, present: np.ndarray, label: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """Mirroring (with the mirrored class) and hand dropout; a no-op when not training."""
        augment = self.augment
        if augment.mirror > 0 and rng.random() < augment.mirror and self.mirror_to[label] >= 0:
            body, hands, present = mirror_arrays(body, hands, present, self.data.layout, self.data.space)
            label = int(self.mirror_to[label])
        if augment.hand_dropout > 0:
            hands, present = drop_hand_frames(
                hands, present, augment.hand_dropout, augment.hand_dropout_max, rng
            )
        return body, hands, present, label

    def augment_model_space(
        self, body: np.ndarray, hand: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rotation, scale and hand jitter on preprocessed tensors (a no-op when not training)."""
        augment = self.augment
        if augment == NO_AUGMENT:
            return body, hand
        matrix = random_rotation(self.data.space, augment, rng)
        matrix = matrix * rng.uniform(1.0 - augment.scale, 1.0 + augment.scale)
        if augment.shear > 0:  # drawn only when on: the other draws stay those of earlier recipes
            matrix = matrix @ random_shear(self.data.space, augment.shear, rng)
        body, hand = transform_xyz(body, matrix), transform_xyz(hand, matrix)
        if augment.hand_jitter > 0:
            hand = jitter_observed(hand, augment.hand_jitter, rng)
        if augment.body_jitter > 0:
            body = jitter_observed(body, augment.body_jitter, rng)
        return body, hand
