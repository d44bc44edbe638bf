"""The one on-disk dataset format: many labelled skeleton clips in a single pickle-free ``.npz``.

It follows the spirit of the pyskl/MMAction2 annotation layout (per sample: keypoints (M, T, V, C),
label, frame count, split lists of samples) with two changes. Hands travel with the body, and the
file loads with ``np.load(allow_pickle=False)``, so opening a dataset never runs code. Samples
have different lengths, so the frames of all samples are stored back to back along one frame axis
F and ``offsets`` says where each sample starts: sample i owns frames
``offsets[i]:offsets[i + 1]``. That keeps every array a plain numeric block (no ragged object
arrays) and makes a sample a cheap slice. docs/datasets.md lists every key with its shape and dtype;
``training/dataset_file.py`` reads and writes the file.

Channels follow the skeleton contract (core/skeleton.py): x, y, z, score; hand slot 0 is the
subject's left hand; ``layout`` and ``space`` are stored once per dataset.

Besides the numeric ids, each sample may carry string **attributes** (``subject`` name,
``distance``, ``framing``, ``take``, ``fps``, ``source``, ...): the recording conditions that
evaluations group by. Version 2 of the format added them; version-1 files load with none.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bharnet_ros.core.labels import MAX_LABEL_LENGTH, plain_label, shown
from bharnet_ros.core.layouts import get_layout
from bharnet_ros.core.preprocess import MAX_PERSONS
from bharnet_ros.core.skeleton import (
    BODY_LAYOUTS,
    CHANNELS,
    HAND_JOINTS,
    MAX_ASPECT,
    MAX_IMAGE_SIDE,
    SPACES,
    SkeletonSequence,
    seen_hands,
)

UNKNOWN = -1  # subject, camera, setup or replication id that the source does not give
ID_FIELDS = ("subjects", "cameras", "setups", "replications")
ATTRIBUTE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class DatasetError(ValueError):
    """A dataset (arrays or file) that breaks the format; the message says what and where."""


def _attribute_column(values: Any) -> np.ndarray:
    """An attribute's values as text, one-dimensional where given as a list or a 0-d value."""
    column = np.asarray(values, dtype=str)
    return column.reshape(-1) if column.ndim == 0 else column


@dataclass
class Sample:
    """One labelled clip of up to M persons over T frames; absent persons and hands are zeros.

    Arrays taken from a dataset are views into it (read-only where the dataset has no hands), so
    copy them before editing.
    """

    name: str
    label: int
    body: np.ndarray  # (M, T, V, 4) float32
    hands: np.ndarray  # (M, T, 2, 21, 4) float32
    hand_present: np.ndarray  # (M, T, 2) bool
    timestamps: np.ndarray  # (T,) float64 seconds on the source's clock
    persons: int = 1  # persons really observed; slots beyond this are zeros
    subject: int = UNKNOWN
    camera: int = UNKNOWN
    setup: int = UNKNOWN
    replication: int = UNKNOWN
    image_size: tuple[int, int] = (0, 0)  # (width, height), (0, 0) if unknown
    attributes: dict[str, str] = field(default_factory=dict)  # e.g. subject, distance, fps

    def __post_init__(self) -> None:
        self.body = np.asarray(self.body, np.float32)
        self.hands = np.asarray(self.hands, np.float32)
        self.hand_present = np.asarray(self.hand_present, bool)
        self.timestamps = np.asarray(self.timestamps, np.float64)
        if self.body.ndim != 4:
            raise DatasetError(f"sample {self.name}: body must be (persons, frames, joints, 4)")
        m, t = self.body.shape[:2]
        if self.hands.shape[:2] != (m, t) or self.hand_present.shape[:2] != (m, t):
            raise DatasetError(
                f"sample {self.name}: body, hands and hand_present disagree on persons or frames"
            )
        if self.timestamps.shape != (t,):
            raise DatasetError(f"sample {self.name}: {len(self.timestamps)} timestamps for {t} frames")

    @property
    def num_frames(self) -> int:
        return len(self.timestamps)


@dataclass
class SkeletonDataset:
    """All samples of a dataset, frames concatenated along axis F (see the module docstring).

    Build one with :meth:`from_samples`, :meth:`from_sequences` or :meth:`load`; the constructor
    takes the raw arrays and checks them.
    """

    body: np.ndarray  # (M, F, V, 4) float32
    hands: np.ndarray  # (M, F, 2, 21, 4) float32
    hand_present: np.ndarray  # (M, F, 2) bool
    timestamps: np.ndarray  # (F,) float64
    offsets: np.ndarray  # (N + 1,) int64, offsets[0] = 0, offsets[-1] = F
    labels: np.ndarray  # (N,) int64 index into class_names
    names: np.ndarray  # (N,) str, unique
    persons: np.ndarray  # (N,) int64
    subjects: np.ndarray  # (N,) int64, UNKNOWN where not known
    cameras: np.ndarray  # (N,) int64
    setups: np.ndarray  # (N,) int64
    replications: np.ndarray  # (N,) int64
    image_sizes: np.ndarray  # (N, 2) int64 (width, height)
    class_names: list[str]
    layout: str
    space: str
    hand_intensive: list[bool] | None = None  # per class, None when not known
    splits: dict[str, np.ndarray] = field(default_factory=dict)  # name -> sample indices
    notes: list[str] = field(default_factory=list)  # provenance and assumptions, one line each
    attributes: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (N,) str per sample

    def __post_init__(self) -> None:
        _check_whole_numbers(self)
        self._coerce()
        _check_vocabulary(self)
        _check_frame_arrays(self)
        self.hand_present = seen_hands(self.hands, self.hand_present)  # as frames and sequences do
        _check_sample_arrays(self)
        _check_classes(self)
        self.splits = {name: _checked_split(name, idx, len(self)) for name, idx in self.splits.items()}

    def _coerce(self) -> None:
        self.body = np.asarray(self.body, np.float32)
        self.hands = np.asarray(self.hands, np.float32)  # keeps broadcast zeros broadcast
        self.hand_present = np.asarray(self.hand_present, bool)
        self.timestamps = np.asarray(self.timestamps, np.float64)
        self.offsets = np.asarray(self.offsets, np.int64)
        self.labels = np.asarray(self.labels, np.int64)
        self.names = np.asarray(self.names, dtype=str)
        for key in ("persons", *ID_FIELDS, "image_sizes"):
            setattr(self, key, np.asarray(getattr(self, key), np.int64))
        self.class_names = [str(name) for name in self.class_names]
        if self.hand_intensive is not None:
            self.hand_intensive = [bool(flag) for flag in self.hand_intensive]
        self.notes = [str(note) for note in self.notes]
        # one value per sample: a 2-D array is refused by the checks, not flattened into a column
        self.attributes = {str(k): _attribute_column(v) for k, v in self.attributes.items()}

    # --- reading -----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.labels)

    def __iter__(self) -> Iterator[Sample]:
        return (self.sample(i) for i in range(len(self)))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def max_persons(self) -> int:
        """M, the person slots every sample has (samples with fewer persons are zero-padded)."""
        return self.body.shape[0]

    @property
    def frame_counts(self) -> np.ndarray:
        """(N,) frames per sample."""
        return np.diff(self.offsets)

    @property
    def has_hands(self) -> bool:
        """Whether any sample has a hand; without, the hand arrays are read-only zeros."""
        return bool(self.hand_present.any())

    def class_counts(self) -> np.ndarray:
        """(num_classes,) samples per class."""
        return np.bincount(self.labels, minlength=self.num_classes)

    def sample(self, i: int) -> Sample:
        """Sample ``i`` (negative counts from the end); its arrays are views into the dataset."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"sample {i} out of range for a dataset of {len(self)}")
        i %= len(self)
        frames = slice(self.offsets[i], self.offsets[i + 1])
        return Sample(
            name=str(self.names[i]),
            label=int(self.labels[i]),
            body=self.body[:, frames],
            hands=self.hands[:, frames],
            hand_present=self.hand_present[:, frames],
            timestamps=self.timestamps[frames],
            persons=int(self.persons[i]),
            subject=int(self.subjects[i]),
            camera=int(self.cameras[i]),
            setup=int(self.setups[i]),
            replication=int(self.replications[i]),
            image_size=(int(self.image_sizes[i, 0]), int(self.image_sizes[i, 1])),
            attributes={key: str(values[i]) for key, values in self.attributes.items()},
        )

    def attribute(self, name: str) -> np.ndarray:
        """(N,) str: the attribute ``name`` of every sample ("" where a sample lacks it)."""
        return self.attributes.get(name, np.full(len(self), "", dtype=str))

    def subject_names(self) -> np.ndarray:
        """(N,) str: who performs each sample, the unit of cross-subject splits.

        The ``subject`` attribute where set, else the numeric subject id, else "" (unknown).
        """
        named = self.attribute("subject")
        numbered = np.array([f"{s}" if s != UNKNOWN else "" for s in self.subjects.tolist()], dtype=str)
        return np.where(named != "", named, numbered) if len(self) else named

    def with_name_prefix(self, prefix: str) -> SkeletonDataset:
        """A copy whose sample names are ``<prefix>/<name>`` (names from two files stay apart)."""
        copy = self.subset(np.arange(len(self)))
        copy.names = np.array([f"{prefix}/{name}" for name in self.names.tolist()], dtype=str)
        return copy

    def sequence(self, i: int, person: int = 0) -> SkeletonSequence:
        """One person of sample ``i`` as a contract :class:`SkeletonSequence` (copies)."""
        sample = self.sample(i)
        return SkeletonSequence(
            timestamps=sample.timestamps.copy(),
            body=sample.body[person].copy(),
            hands=sample.hands[person].copy(),
            hand_present=sample.hand_present[person].copy(),
            person_id=person,
            layout=self.layout,
            space=self.space,
            image_size=sample.image_size,
        )

    # --- building ----------------------------------------------------------------------------

    @classmethod
    def from_samples(
        cls,
        samples: Sequence[Sample],
        class_names: Sequence[str],
        layout: str,
        space: str,
        hand_intensive: Sequence[bool] | None = None,
        splits: dict[str, Iterable[int]] | None = None,
        notes: Sequence[str] = (),
    ) -> SkeletonDataset:
        """Concatenate samples; persons are zero-padded to the largest M among them."""
        joints = _num_joints(layout)
        m = max((s.body.shape[0] for s in samples), default=1)
        frames = int(sum(s.num_frames for s in samples))
        any_hands = any(s.hand_present.any() or s.hands.any() for s in samples)
        return cls(
            body=_concat_frames([s.body for s in samples], m, (m, 0, joints, CHANNELS)),
            hands=_concat_hands(samples, m, frames, any_hands),
            hand_present=_concat_presence(samples, m, frames, any_hands),
            timestamps=np.concatenate([s.timestamps for s in samples]) if samples else np.zeros(0),
            offsets=np.concatenate([[0], np.cumsum([s.num_frames for s in samples], dtype=np.int64)]),
            labels=[s.label for s in samples],
            names=np.array([s.name for s in samples], dtype=str),
            persons=[s.persons for s in samples],
            subjects=[s.subject for s in samples],
            cameras=[s.camera for s in samples],
            setups=[s.setup for s in samples],
            replications=[s.replication for s in samples],
            image_sizes=np.array([s.image_size for s in samples], np.int64).reshape(-1, 2),
            class_names=list(class_names),
            layout=layout,
            space=space,
            hand_intensive=None if hand_intensive is None else list(hand_intensive),
            splits={name: np.asarray(list(idx), np.int64) for name, idx in (splits or {}).items()},
            notes=list(notes),
            attributes=_attribute_columns([s.attributes for s in samples]),
        )

    @classmethod
    def from_sequences(
        cls,
        sequences: Sequence[SkeletonSequence],
        labels: Sequence[int],
        class_names: Sequence[str],
        names: Sequence[str] | None = None,
        subjects: Sequence[int] | None = None,
        hand_intensive: Sequence[bool] | None = None,
        splits: dict[str, Iterable[int]] | None = None,
        notes: Sequence[str] = (),
        attributes: Sequence[dict[str, str]] | None = None,
    ) -> SkeletonDataset:
        """One single-person (M = 1) sample per contract sequence; all must share layout and space."""
        if len(labels) != len(sequences):
            raise DatasetError(f"{len(sequences)} sequences but {len(labels)} labels")
        if not sequences:
            raise DatasetError("no sequences given; a dataset built this way needs at least one")
        kinds = {(s.layout, s.space) for s in sequences}
        if len(kinds) > 1:
            raise DatasetError(f"sequences mix layouts or spaces: {sorted(kinds)}")
        names = names if names is not None else [f"sequence_{i:06d}" for i in range(len(sequences))]
        subjects = subjects if subjects is not None else [UNKNOWN] * len(sequences)
        attributes = attributes if attributes is not None else [{}] * len(sequences)
        samples = [
            _sample_from_sequence(seq, name, label, subject, attrs)
            for seq, name, label, subject, attrs in zip(
                sequences, names, labels, subjects, attributes, strict=True
            )
        ]
        layout, space = kinds.pop()
        return cls.from_samples(samples, class_names, layout, space, hand_intensive, splits, notes)

    # --- selecting and combining -------------------------------------------------------------

    def subset(self, indices: Iterable[int]) -> SkeletonDataset:
        """The given samples, in the given order; splits keep only their members, renumbered."""
        idx = np.asarray(indices if isinstance(indices, np.ndarray) else list(indices), np.int64)
        idx = _checked_split("subset", idx, len(self))
        frames = _frame_index(self.offsets, idx)
        counts = self.frame_counts[idx]
        position = np.full(len(self), -1, np.int64)
        position[idx] = np.arange(len(idx))
        splits = {name: position[members][position[members] >= 0] for name, members in self.splits.items()}
        hands, hand_present = self._hand_frames(frames)
        return SkeletonDataset(
            body=self.body[:, frames],
            hands=hands,
            hand_present=hand_present,
            timestamps=self.timestamps[frames],
            offsets=np.concatenate([[0], np.cumsum(counts)]),
            labels=self.labels[idx],
            names=self.names[idx],
            persons=self.persons[idx],
            subjects=self.subjects[idx],
            cameras=self.cameras[idx],
            setups=self.setups[idx],
            replications=self.replications[idx],
            image_sizes=self.image_sizes[idx],
            class_names=list(self.class_names),
            layout=self.layout,
            space=self.space,
            hand_intensive=self.hand_intensive,
            splits=splits,
            notes=list(self.notes),
            attributes={key: values[idx] for key, values in self.attributes.items()},
        )

    def _hand_frames(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Hands and presence of the given frames; still memory-free zeros when there are no hands."""
        if self.has_hands:
            return self.hands[:, frames], self.hand_present[:, frames]
        return _zeros(self.hands, len(frames)), _zeros(self.hand_present, len(frames))

    def split(self, name: str) -> SkeletonDataset:
        """The samples of split ``name`` (e.g. ``"xsub_train"``)."""
        if name not in self.splits:
            known = ", ".join(sorted(self.splits)) or "none"
            raise DatasetError(f"no split named {name!r}; this dataset has: {known}")
        return self.subset(self.splits[name])

    def merge(self, other: SkeletonDataset, prefixes: tuple[str, str] | None = None) -> SkeletonDataset:
        """This dataset's samples followed by ``other``'s, as a new dataset.

        Layout and space must match. Class lists are unified by name: this dataset's classes keep
        their indices, ``other``'s new classes are appended and its labels renumbered. A class is
        hand-intensive if either side says so (unknown counts as no). Splits with the same name
        are unioned; with ``prefixes=("ntu_", "mp_")`` every split is renamed with its side's
        prefix instead, so the two stay apart. Attributes are unioned ("" where a side lacks one).
        Sample names must stay unique: qualify them first (:meth:`with_name_prefix`).
        """
        for attribute in ("layout", "space"):
            if getattr(self, attribute) != getattr(other, attribute):
                raise DatasetError(
                    f"cannot merge a {getattr(self, attribute)!r} dataset with a "
                    f"{getattr(other, attribute)!r} one; convert one first so the {attribute}s match"
                )
        class_names, remap = _unify_classes(self.class_names, other.class_names)
        m = max(self.max_persons, other.max_persons)
        any_hands = self.has_hands or other.has_hands
        frames = len(self.timestamps) + len(other.timestamps)
        return SkeletonDataset(
            body=np.concatenate([_pad_persons(self.body, m), _pad_persons(other.body, m)], axis=1),
            hands=_merged_hands(self.hands, other.hands, m, frames, any_hands),
            hand_present=_merged_hands(self.hand_present, other.hand_present, m, frames, any_hands),
            timestamps=np.concatenate([self.timestamps, other.timestamps]),
            offsets=np.concatenate([self.offsets, other.offsets[1:] + self.offsets[-1]]),
            labels=np.concatenate([self.labels, remap[other.labels]]),
            names=np.concatenate([self.names, other.names]),
            persons=np.concatenate([self.persons, other.persons]),
            subjects=np.concatenate([self.subjects, other.subjects]),
            cameras=np.concatenate([self.cameras, other.cameras]),
            setups=np.concatenate([self.setups, other.setups]),
            replications=np.concatenate([self.replications, other.replications]),
            image_sizes=np.concatenate([self.image_sizes, other.image_sizes]),
            class_names=class_names,
            layout=self.layout,
            space=self.space,
            hand_intensive=_merge_flags(self, other, class_names),
            splits=_merge_splits(self.splits, other.splits, len(self), prefixes),
            notes=self.notes + [note for note in other.notes if note not in self.notes],
            attributes={
                key: np.concatenate([self.attribute(key), other.attribute(key)])
                for key in dict.fromkeys([*self.attributes, *other.attributes])
            },
        )

    # --- files (the format lives in training/dataset_file.py) ------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the dataset file (``.npz``; the suffix is added if missing); returns the path written."""
        from bharnet_ros.training.dataset_file import save_dataset  # it imports this module

        return save_dataset(self, path)

    @classmethod
    def load(cls, path: str | Path) -> SkeletonDataset:
        """Read a dataset file; refuses pickled content and newer format versions."""
        from bharnet_ros.training.dataset_file import load_dataset  # it imports this module

        return load_dataset(path)


# --- checks ------------------------------------------------------------------------------------


def _num_joints(layout: str) -> int:
    try:
        return get_layout(layout).num_joints
    except ValueError as err:
        raise DatasetError(str(err)) from None


def _check_whole_numbers(data: SkeletonDataset) -> None:
    """Flags that are bools (or 0 and 1) and labels, offsets and counts that are whole numbers,
    before they are cast: a flag of 0.2 became True, an image width of 640.7 became 640, a label
    of 0.9 class 0 (the skeleton contract)."""
    present = np.asarray(data.hand_present)
    if present.dtype != bool and not np.isin(present, (0, 1)).all():
        raise DatasetError("hand_present must hold bools (or 0 and 1)")
    for key in ("labels", "offsets", "persons", *ID_FIELDS, "image_sizes"):
        values = np.asarray(getattr(data, key))
        if values.dtype.kind not in "biuf" or (
            values.dtype.kind == "f"
            and not (np.isfinite(values).all() and (values == np.round(values)).all())
        ):  # a label of 0.9 became class 0; text or complex numbers were cast as well
            raise DatasetError(f"{key} must hold whole numbers")


def _check_vocabulary(data: SkeletonDataset) -> None:
    if data.layout not in BODY_LAYOUTS:
        raise DatasetError(
            f"{data.layout!r} is not a body layout; a body is one of {', '.join(BODY_LAYOUTS)}"
        )
    if data.space not in SPACES:
        raise DatasetError(f"unknown coordinate space {data.space!r}; use one of {SPACES}")


def _check_frame_arrays(data: SkeletonDataset) -> None:
    """Shapes along the frame axis and finiteness of the coordinates."""
    m, f = data.body.shape[:2] if data.body.ndim == 4 else (0, 0)
    expected = {
        "body": (data.body, (m, f, _num_joints(data.layout), CHANNELS)),
        "hands": (data.hands, (m, f, 2, HAND_JOINTS, CHANNELS)),
        "hand_present": (data.hand_present, (m, f, 2)),
        "timestamps": (data.timestamps, (f,)),
    }
    for name, (array, shape) in expected.items():
        if array.shape != shape:
            raise DatasetError(f"{name} has shape {array.shape}, expected {shape} ({data.layout} layout)")
    if not 1 <= m <= MAX_PERSONS:  # an empty file of 10**12 slots made a merge pad every other to them
        raise DatasetError(f"body needs 1 to {MAX_PERSONS} person slots (a model's most), not {m}")
    if not (np.isfinite(data.body).all() and np.isfinite(data.timestamps).all()):
        raise DatasetError("body or timestamps contain NaN or infinite values; zero missing joints instead")
    if not np.isfinite(data.hands).all():  # flagged or not: a hand's values are read as they are
        raise DatasetError("hands contain NaN or infinite values; zero missing joints instead")


def _check_sample_arrays(data: SkeletonDataset) -> None:
    """Per-sample columns: lengths, offsets that tile the frame axis, unique names."""
    n = len(data.labels)
    for key in ("labels", "names", "persons", *ID_FIELDS):
        if getattr(data, key).shape != (n,):
            raise DatasetError(f"{key} has shape {getattr(data, key).shape}, expected ({n},)")
    if data.image_sizes.shape != (n, 2):
        raise DatasetError(f"image_sizes has shape {data.image_sizes.shape}, expected ({n}, 2)")
    if np.any(data.image_sizes < 0) or np.any(data.image_sizes > MAX_IMAGE_SIDE):
        raise DatasetError(
            f"image_sizes must be 0 (unknown) to {MAX_IMAGE_SIDE} pixels a side (the skeleton contract)"
        )
    sizes = data.image_sizes.astype(np.int64)
    narrow = (sizes.min(axis=1) > 0) & (sizes.max(axis=1) > MAX_ASPECT * sizes.min(axis=1))
    if narrow.any():  # training would squash y by the ratio, where the node refuses such frames
        first = int(np.argmax(narrow))
        raise DatasetError(
            f"sample {data.names[first]}: image size {tuple(sizes[first].tolist())} is no camera image "
            f"(one side over {MAX_ASPECT} times the other); give its real size, or 0 0 for unknown"
        )
    offsets = data.offsets
    if offsets.shape != (n + 1,) or offsets[0] != 0 or offsets[-1] != len(data.timestamps):
        raise DatasetError(f"offsets must run from 0 to {len(data.timestamps)} in {n + 1} steps")
    if np.any(np.diff(offsets) < 0):
        raise DatasetError("offsets decrease; each sample must own a forward range of frames")
    steps = np.diff(data.timestamps)
    starts = offsets[1:-1]
    steps[starts[(starts > 0) & (starts < len(data.timestamps))] - 1] = 0.0  # samples restart the clock
    if np.any(steps < 0):
        raise DatasetError("timestamps go backwards inside a sample; split it where time jumps back")
    if len(set(names := data.names.tolist())) != n:
        twice = next(name for name, count in Counter(names).items() if count > 1)
        raise DatasetError(
            f"sample names are not unique ({shown(twice)} more than once); rename duplicates before "
            "building the dataset"
        )
    if np.any((data.persons < 0) | (data.persons > data.body.shape[0])):
        raise DatasetError(f"persons must be within 0..{data.body.shape[0]}")
    for key, values in data.attributes.items():
        if not ATTRIBUTE_NAME.fullmatch(key):  # match's $ let "subject\n" through
            raise DatasetError(f"attribute name {key!r} must be lower-case letters, digits and _")
        if values.shape != (n,):
            raise DatasetError(f"attribute {key!r} has {len(values)} values for {n} samples")


def _check_classes(data: SkeletonDataset) -> None:
    odd = [name for name in data.class_names if not plain_label(name)]
    if odd:
        raise DatasetError(
            f"class name {shown(odd[0])} is not printable text of 1 to {MAX_LABEL_LENGTH} characters, which "
            "every Action label must be; rename the class (its folder, or the label in the file)"
        )
    if len(set(data.class_names)) != len(data.class_names):
        twice = next(name for i, name in enumerate(data.class_names) if name in data.class_names[:i])
        raise DatasetError(f"class names are not unique: {shown(twice)} is named twice; name each class once")
    if len(data.labels) and (data.labels.min() < 0 or data.labels.max() >= len(data.class_names)):
        raise DatasetError(f"labels must be within 0..{len(data.class_names) - 1} (one per class name)")
    if data.hand_intensive is not None and len(data.hand_intensive) != len(data.class_names):
        raise DatasetError(f"{len(data.hand_intensive)} hand_intensive flags for {data.num_classes} classes")


def _checked_split(name: str, indices: np.ndarray, size: int) -> np.ndarray:
    indices = np.asarray(indices, np.int64).reshape(-1)
    if len(indices) and (indices.min() < 0 or indices.max() >= size):
        raise DatasetError(f"split {name!r} has sample indices outside 0..{size - 1}")
    if len(np.unique(indices)) != len(indices):
        raise DatasetError(f"split {name!r} lists a sample twice")
    return indices


# --- array helpers -----------------------------------------------------------------------------


def read_only_zeros(shape: tuple[int, ...], dtype: type) -> np.ndarray:
    """Read-only zeros of any shape that take no memory (a broadcast view of one element)."""
    return np.broadcast_to(np.zeros((), dtype), shape)


def _zeros(like: np.ndarray, frames: int) -> np.ndarray:
    return read_only_zeros((like.shape[0], frames, *like.shape[2:]), like.dtype)


def _pad_persons(array: np.ndarray, m: int) -> np.ndarray:
    if array.shape[0] == m:
        return array
    return np.concatenate([array, np.zeros((m - array.shape[0], *array.shape[1:]), array.dtype)])


def _concat_frames(arrays: list[np.ndarray], m: int, empty_shape: tuple[int, ...]) -> np.ndarray:
    if not arrays:
        return np.zeros(empty_shape, np.float32)
    return np.concatenate([_pad_persons(a, m) for a in arrays], axis=1)


def _concat_hands(samples: Sequence[Sample], m: int, frames: int, any_hands: bool) -> np.ndarray:
    if not any_hands:
        return read_only_zeros((m, frames, 2, HAND_JOINTS, CHANNELS), np.float32)
    return _concat_frames([s.hands for s in samples], m, (m, 0, 2, HAND_JOINTS, CHANNELS))


def _concat_presence(samples: Sequence[Sample], m: int, frames: int, any_hands: bool) -> np.ndarray:
    if not any_hands:
        return read_only_zeros((m, frames, 2), bool)
    return np.concatenate([_pad_persons(s.hand_present, m) for s in samples], axis=1)


def _merged_hands(first: np.ndarray, second: np.ndarray, m: int, frames: int, any_hands: bool) -> np.ndarray:
    if not any_hands:
        return read_only_zeros((m, frames, *first.shape[2:]), first.dtype)
    return np.concatenate([_pad_persons(np.array(first), m), _pad_persons(np.array(second), m)], axis=1)


def _frame_index(offsets: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """Frame positions of the given samples, concatenated in sample order."""
    if not len(samples):
        return np.zeros(0, np.int64)
    return np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in samples])


def _sample_from_sequence(
    sequence: SkeletonSequence, name: str, label: int, subject: int, attributes: dict[str, str]
) -> Sample:
    return Sample(
        name=name,
        label=int(label),
        body=sequence.body[None],
        hands=sequence.hands[None],
        hand_present=sequence.hand_present[None],
        timestamps=sequence.timestamps,
        subject=int(subject),
        image_size=sequence.image_size,
        attributes=dict(attributes),
    )


def _unify_classes(first: list[str], second: list[str]) -> tuple[list[str], np.ndarray]:
    """Union of class lists by name (first keeps its order) and second's label -> union label map."""
    names = list(first) + [name for name in second if name not in first]
    return names, np.array([names.index(name) for name in second], np.int64).reshape(-1)


def _merge_flags(first: SkeletonDataset, second: SkeletonDataset, names: list[str]) -> list[bool] | None:
    if first.hand_intensive is None and second.hand_intensive is None:
        return None
    flagged = set()
    for data in (first, second):
        flags = data.hand_intensive or [False] * data.num_classes
        flagged |= {name for name, flag in zip(data.class_names, flags, strict=True) if flag}
    return [name in flagged for name in names]


def _merge_splits(
    first: dict[str, np.ndarray], second: dict[str, np.ndarray], shift: int, prefixes: tuple[str, str] | None
) -> dict[str, np.ndarray]:
    if prefixes is not None:
        merged = {prefixes[0] + name: idx for name, idx in first.items()}
        merged.update({prefixes[1] + name: idx + shift for name, idx in second.items()})
        if len(merged) != len(first) + len(second):
            raise DatasetError(f"split prefixes {prefixes} make two split names collide; choose others")
        return merged
    merged = dict(first)
    for name, idx in second.items():
        merged[name] = np.concatenate([merged.get(name, np.zeros(0, np.int64)), idx + shift])
    return merged


def _attribute_columns(rows: Sequence[dict[str, str]]) -> dict[str, np.ndarray]:
    """Per-sample attribute dicts as columns; a sample without a key gets ""."""
    keys = list(dict.fromkeys(key for row in rows for key in row))
    return {key: np.array([str(row.get(key, "")) for row in rows], dtype=str) for key in keys}


def parse_digits(text: str, digits: int = 9) -> int | None:
    """The number that ``text`` writes in at most ``digits`` ASCII digits, else None. File names
    and fields are read with it: ``str.isdigit`` also takes ``²`` and other scripts' digits, which
    ``int`` refuses, and numbers of thousands of digits."""
    return int(text) if 0 < len(text) <= digits and text.isascii() and text.isdigit() else None
