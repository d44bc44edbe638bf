"""Class-list edits of a dataset: keep some classes, drop empty ones, merge classes into one.

Each returns a new :class:`SkeletonDataset` whose labels index the new class list; samples of
classes that are not kept are left out. Importers and training use them so that a class without
samples never becomes a trained output unnoticed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

from bharnet_ros.training.dataset import DatasetError, SkeletonDataset
from bharnet_ros.training.importers import ImportReport


def name_words(name: str) -> tuple[str, ...]:
    """A class name's words, lower case: ``Turn_Left``, ``turn-left``, ``turn left``, ``TurnLeft``,
    ``turn.left`` and ``turn(left)`` alike (spaces, ``_-./()[]`` and a capital after a small letter
    part words: a ``left`` word found in each is what pairs lateral classes). Other symbols stay
    in their word: ``volume+`` and ``volume-`` are two gestures."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name.strip())
    return tuple(re.split(r"[\s_\-./()\[\]]+", spaced.lower()))


def same_words(names: Sequence[str]) -> tuple[str, str] | None:
    """The first two different names of ``names`` made of the same words (``Clap`` and ``clap``),
    which a person means as one gesture; None if there are none."""
    seen: dict[tuple[str, ...], str] = {}
    for name in names:
        other = seen.setdefault(name_words(name), name)
        if other != name:
            return other, name
    return None


def relabel(data: SkeletonDataset, mapping: Mapping[str, str], class_names: Sequence[str]) -> SkeletonDataset:
    """Samples whose class is a key of ``mapping``, relabelled to ``mapping[class]`` in ``class_names``."""
    unknown = sorted(set(mapping.values()) - set(class_names))
    if unknown:
        raise DatasetError(f"target classes {unknown} are not in the new class list {list(class_names)}")
    index = {name: i for i, name in enumerate(class_names)}
    old_to_new = np.array([index.get(mapping.get(name, ""), -1) for name in data.class_names], np.int64)
    new_labels = old_to_new[data.labels] if len(data) else np.zeros(0, np.int64)
    keep = np.flatnonzero(new_labels >= 0)
    kept = data.subset(keep)
    flags = _flags(data, mapping, class_names)
    kept.labels = new_labels[keep]
    kept.class_names = list(class_names)
    kept.hand_intensive = flags
    return SkeletonDataset(**{f: getattr(kept, f) for f in kept.__dataclass_fields__})


def _flags(
    data: SkeletonDataset, mapping: Mapping[str, str], class_names: Sequence[str]
) -> list[bool] | None:
    if data.hand_intensive is None:
        return None
    flagged = {
        mapping[n] for n, f in zip(data.class_names, data.hand_intensive, strict=True) if f and n in mapping
    }
    return [name in flagged for name in class_names]


def select_classes(data: SkeletonDataset, classes: Sequence[str], report: ImportReport) -> SkeletonDataset:
    """Only ``classes``, in that order; unknown names are an error, other classes are dropped."""
    unknown = [name for name in classes if name not in data.class_names]
    if unknown:
        raise DatasetError(f"--classes names {unknown}, not among {data.class_names}")
    dropped = [name for name in data.class_names if name not in classes]
    if dropped:
        report.notes.append(f"classes left out (not in --classes): {', '.join(dropped)}")
    return labelled_by(data, classes)


def labelled_by(data: SkeletonDataset, classes: Sequence[str]) -> SkeletonDataset:
    """``data`` with its labels indexing ``classes``, in that order (samples of other classes dropped)."""
    return relabel(data, {name: name for name in classes}, classes)


def drop_empty_classes(data: SkeletonDataset, report: ImportReport | None = None) -> SkeletonDataset:
    """The dataset without classes that have no sample (noted in ``report`` when given)."""
    counts = data.class_counts()
    empty = [name for name, count in zip(data.class_names, counts, strict=True) if count == 0]
    if not empty:
        return data
    if report is not None:
        report.notes.append(f"classes without samples dropped: {', '.join(empty)}")
    return labelled_by(data, [name for name in data.class_names if name not in empty])
