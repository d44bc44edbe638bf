"""Which samples train and which validate: loading data files and selecting splits and people.

Training data comes from dataset ``.npz`` files and ``bharnet synth`` folders, merged by class
name. Sample names are qualified with their file's name when two files share one (two people
imported separately both have ``attention_1_1m_upper``). :func:`select_data` then applies the
``data`` section of a training config:

* ``relabel`` and ``classes``: the vocabulary. ``relabel`` merges classes (``{clap: none}``);
  ``classes`` lists the classes to train, in label order, and leaves out the samples of others
  (empty: every class of the data);
* ``exclude_subjects``: people left out of training *and* validation (the held-out person of a
  cross-validation fold);
* validation: ``data.val`` files if given, else ``val_subjects`` (people), else the named
  ``val_split`` (``auto``: the ``val`` split where the data has one, as ``bharnet synth`` folders
  do), else a class-stratified ``val_fraction``; none at all is allowed but reported;
* training: the named ``train_split`` (``auto``: every sample) minus the validation samples.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from bharnet_ros.core.paths import share_file
from bharnet_ros.core.skeleton import SkeletonSequence
from bharnet_ros.core.stats import first_repeat
from bharnet_ros.core.text_files import read_text_file
from bharnet_ros.core.yaml12 import load_yaml
from bharnet_ros.training.classes import drop_empty_classes, relabel, same_words
from bharnet_ros.training.dataset import DatasetError, SkeletonDataset, parse_digits

SYNTH_VAL_EVERY = 5  # synth folders: sample i of a class goes to "val" when i % 5 == 4
AUTO = "auto"


def resolve_path(value: str | Path) -> Path:
    """A path as given if it exists (relative to the working folder), else a shipped file (config/...)."""
    path = Path(value).expanduser()
    if path.is_absolute() or path.exists():
        return path.resolve()
    try:
        return share_file(str(path)).resolve()
    except FileNotFoundError:
        return path


def load_data_file(path: str | Path) -> SkeletonDataset:
    """A dataset ``.npz`` file or a ``bharnet synth`` folder (classes.txt + index.csv)."""
    path = resolve_path(path)
    if path.is_dir():
        return load_synth_folder(path)
    if path.exists() and not path.is_file():  # /dev/zero would be read for ever, a FIFO wait for a writer
        raise DatasetError(
            f"data file {path} is not a regular file (a pipe, socket or device); give a dataset .npz "
            "or a `bharnet synth` folder"
        )
    if not path.is_file():
        raise DatasetError(f"data file {path} not found; give a dataset .npz or a `bharnet synth` folder")
    return SkeletonDataset.load(path)


def load_synth_folder(folder: Path) -> SkeletonDataset:
    """A ``bharnet synth`` output folder as a dataset with splits ``train`` and ``val`` (1 in 5).

    The class list is classes.txt; hand-intensive flags come from the index's column. A row that
    names a file outside the folder, a label outside classes.txt or an unreadable file is a
    DatasetError naming the row: the folder may come from elsewhere.
    """
    if not (folder / "index.csv").is_file() or not (folder / "classes.txt").is_file():
        raise DatasetError(
            f"{folder} is a folder without classes.txt and index.csv; is it `bharnet synth` output?"
        )
    try:
        class_names = [
            line.strip() for line in read_text_file(folder / "classes.txt").splitlines() if line.strip()
        ]
        rows = list(csv.DictReader(io.StringIO(read_text_file(folder / "index.csv"), newline="")))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DatasetError(f"{folder}: classes.txt or index.csv cannot be read ({err})") from None
    if not rows:
        raise DatasetError(f"{folder}/index.csv lists no samples")
    entries = [_synth_row(folder, row, k + 2, len(class_names)) for k, row in enumerate(rows)]
    if twice := first_repeat(Path(file) for file, _, _ in entries):  # before any file loads (memory)
        raise DatasetError(f"{folder}/index.csv lists {twice} more than once; list each sample once")
    flags = [False] * len(class_names)
    for _, label, hand_intensive in entries:
        flags[label] = flags[label] or hand_intensive
    labels = [label for _, label, _ in entries]
    val = every_nth_per_class(labels, SYNTH_VAL_EVERY)
    return SkeletonDataset.from_sequences(
        [_synth_sequence(folder, file) for file, _, _ in entries],
        labels,
        class_names,
        names=[Path(file).stem for file, _, _ in entries],
        hand_intensive=flags,
        splits={"train": sorted(set(range(len(rows))) - set(val)), "val": val},
        notes=[f"synth folder {folder}: split val = every {SYNTH_VAL_EVERY}th sample per class"],
        attributes=[{"source": folder.name}] * len(rows),
    )


def _synth_row(folder: Path, row: dict, line: int, num_classes: int) -> tuple[str, int, bool]:
    """(file, label, hand-intensive) of one index.csv row, each checked."""
    file, label, flag = (row.get(key) or "" for key in ("file", "label", "hand_intensive"))
    where = f"{folder}/index.csv line {line}"
    if not file or Path(file).is_absolute() or ".." in Path(file).parts:
        raise DatasetError(f"{where}: file {file!r} is not a file name inside the folder")
    number = parse_digits(label)
    if number is None or number >= num_classes:
        raise DatasetError(f"{where}: label {label!r} is not 0..{num_classes - 1} (a line of classes.txt)")
    if flag not in ("0", "1"):
        raise DatasetError(f"{where}: hand_intensive {flag!r} is neither 0 nor 1")
    return file, number, flag == "1"


def _synth_sequence(folder: Path, file: str) -> SkeletonSequence:
    """One sample file of a synth folder; any damage is a DatasetError naming it."""
    if not (folder / file).is_file():  # a FIFO or a link to /dev/zero would hang the zip reader
        raise DatasetError(f"{folder / file} is no regular file; run bharnet synth again")
    try:
        return SkeletonSequence.load(folder / file)
    except Exception as err:  # numpy and zipfile fail on damaged files in many ways
        raise DatasetError(
            f"{folder / file} cannot be read ({err or type(err).__name__}); run bharnet synth again"
        ) from None


def every_nth_per_class(labels: Sequence[int], n: int) -> list[int]:
    """Indices of the n-th, 2n-th, ... sample of each class (a deterministic stratified pick)."""
    seen: dict[int, int] = {}
    picked = []
    for i, label in enumerate(labels):
        if seen.get(label, 0) % n == n - 1:
            picked.append(i)
        seen[label] = seen.get(label, 0) + 1
    return picked


def load_datasets(paths: Sequence[str | Path], split: str | None = None) -> SkeletonDataset:
    """Load and merge files (classes unified by name), then select ``split`` if given.

    When two files hold samples of the same name, every file's names are qualified with the
    file's name (``S1/attention_1_1m_upper``), so separately imported people merge.
    """
    if not paths:
        raise DatasetError("no data files; set data.train in the config or pass --train FILES")
    check_listed_once(paths, "the data files")  # its samples would count twice
    parts = [load_data_file(path) for path in paths]
    names = [name for part in parts for name in part.names.tolist()]
    if len(set(names)) != len(names):
        parts = [part.with_name_prefix(tag) for part, tag in zip(parts, _file_tags(paths), strict=True)]
    data = parts[0]
    for path, part in zip(paths[1:], parts[1:], strict=True):
        try:
            data = data.merge(part)
        except DatasetError as err:  # which of several files does not fit
            raise DatasetError(f"{path}: {err}") from None
    if split is None:
        return data
    if split not in data.splits:
        known = ", ".join(sorted(data.splits)) or "none"
        raise DatasetError(f"no split {split!r} in {list(map(str, paths))}; available: {known}")
    return data.split(split)


def _file_tags(paths: Sequence[str | Path]) -> list[str]:
    """Short distinct names of data files: the stem, with parent folders added until unique."""
    full = [resolve_path(p) for p in paths]
    for depth in range(1, max(len(p.parts) for p in full) + 1):
        tags = ["/".join((*p.parent.parts[len(p.parent.parts) - depth + 1 :], p.stem)) for p in full]
        if len(set(tags)) == len(tags):
            return tags
    return [f"{i}:{p.stem}" for i, p in enumerate(full)]


def labels_for(data: SkeletonDataset, class_names: Sequence[str], known_as: str = "training") -> np.ndarray:
    """``data``'s labels renumbered to ``class_names`` (by name); unknown classes are errors."""
    index = {name: i for i, name in enumerate(class_names)}
    unknown = sorted({data.class_names[label] for label in data.labels} - set(index))
    if unknown:
        raise DatasetError(
            f"classes {name_list(unknown)} of the data are not among the {known_as} classes "
            f"({name_list(list(class_names))}); rename them at import (--rename OLD=NEW) or leave them out"
        )
    mapping = np.array([index.get(name, -1) for name in data.class_names], np.int64)
    return mapping[data.labels]


def known_classes_only(
    data: SkeletonDataset, class_names: Sequence[str]
) -> tuple[SkeletonDataset, dict[str, int]]:
    """The samples whose class is in ``class_names``, and the classes left out with their counts."""
    known = set(class_names)
    names = [data.class_names[label] for label in data.labels.tolist()]
    keep = [i for i, name in enumerate(names) if name in known]
    return data.subset(keep), dict(sorted(Counter(name for name in names if name not in known).items()))


def hand_intensive_names(data: SkeletonDataset) -> list[str] | None:
    """Names of the classes the dataset marks hand-intensive (None when it does not say)."""
    if data.hand_intensive is None:
        return None
    return [name for name, flag in zip(data.class_names, data.hand_intensive, strict=True) if flag]


def subject_mask(data: SkeletonDataset, subjects: Sequence[str]) -> np.ndarray:
    """(N,) bool: samples performed by one of ``subjects`` (names as :meth:`subject_names` gives)."""
    wanted = {str(s) for s in subjects}
    names = data.subject_names()
    unknown = sorted(wanted - set(names.tolist()))
    if unknown:
        known = ", ".join(sorted(set(names.tolist()) - {""})) or "none"
        raise DatasetError(f"subjects {unknown} are not in the data; its subjects are: {known}")
    return np.isin(names, sorted(wanted))


@dataclass
class DataSelection:
    """Training and validation samples chosen by a config's ``data`` section, and how."""

    train: SkeletonDataset
    val: SkeletonDataset | None
    notes: list[str] = field(default_factory=list)


def select_data(section: Mapping[str, Any], seed: int = 0, resumed: bool = False) -> DataSelection:
    """Apply a training config's ``data`` section (see the module docstring); ``resumed``: a run that
    continues, whose data settings were accepted when it began."""
    check_listed_once(section["train"], "the training data")
    check_listed_once(section["val"] or [], "the validation data")
    data = vocabulary(load_datasets(section["train"]), section)
    notes: list[str] = []
    excluded = list(section.get("exclude_subjects") or [])
    if both := sorted(set(map(str, excluded)) & set(map(str, section.get("val_subjects") or []))):
        raise DatasetError(
            f"data.exclude_subjects and data.val_subjects both name {', '.join(both)}; a person is "
            "either left out or validates"
        )
    chosen = [key for key in ("val_subjects", "val_fraction") if section.get(key)]
    if section["val"] and chosen:  # the files would validate, and these people would train unsaid
        raise DatasetError(f"data.val and data.{chosen[0]} both choose the validation data; give one of them")
    if excluded:
        data = data.subset(np.flatnonzero(~subject_mask(data, excluded)))
        notes.append(f"left out subjects {', '.join(map(str, excluded))} (training and validation)")
    val_idx, how = _validation_indices(data, section, seed, resumed)
    if section["val"]:
        if not _other_splits(section):
            check_apart(section["train"], section["val"])
        val = vocabulary(load_datasets(section["val"], _named(section["val_split"])), section, strict=False)
        if excluded:  # where they are in the validation files at all
            val = val.subset(np.flatnonzero(~np.isin(val.subject_names(), excluded)))
        how = f"validation: the files {', '.join(map(str, section['val']))}"
    else:
        val = data.subset(val_idx) if len(val_idx) else None
    train_idx = _training_indices(data, section["train_split"], set(val_idx.tolist()))
    train = drop_empty_classes(data.subset(train_idx))
    check_trainable(train, val)
    empty = sorted(set(data.class_names) - set(train.class_names))
    if empty:
        notes.append(f"classes without training samples left out: {name_list(empty)}")
    if how != NO_VALIDATION and (val is None or not len(val)):  # e.g. a synth folder of < 5 per class
        how = f"{how} holds no samples, so {NO_VALIDATION}"
    notes.append(how)
    return DataSelection(train, val, notes)


def _other_splits(section: Mapping[str, Any]) -> bool:
    """Whether training and validation take two different named splits (one file may hold both)."""
    train, val = section.get("train_split"), section.get("val_split")
    return train not in (None, AUTO) and val not in (None, AUTO) and train != val


def check_listed_once(paths: Sequence[str | Path], what: str) -> None:
    """DatasetError for a data file listed twice: its samples would count twice, and those that
    validate would have a twin in training."""
    seen: set[Path] = set()
    for path in paths:
        resolved = resolve_path(path).resolve()
        if resolved in seen:
            raise DatasetError(f"{path} is listed twice in {what}; give each data file once")
        seen.add(resolved)


def check_apart(train: Sequence[str | Path], val: Sequence[str | Path]) -> None:
    """DatasetError for a file given both to train and to validate: best.pt would be chosen on
    samples the model learned, which the run would not say."""
    trained = {resolve_path(path).resolve() for path in train}
    both = [str(path) for path in val if resolve_path(path).resolve() in trained]
    if both:
        raise DatasetError(
            f"{both[0]} is given for training and for validation; validate on other files, or give "
            "none (data.val_fraction holds out a share of the training samples)"
        )


def check_trainable(train: SkeletonDataset, val: SkeletonDataset | None) -> None:
    """Refuse a selection no classifier can be trained or validated on, before any work.

    Without training samples there is nothing to learn; with one class a model only ever says that
    class; a class that only validates can never be predicted, so it could only count as errors.
    """
    if len(train) == 0:
        raise DatasetError(
            "no training samples left after data.exclude_subjects, val_subjects and the splits; "
            "leave some people or samples to train on"
        )
    if train.num_classes < 2:
        raise DatasetError(
            f"only the class {train.class_names[0]} has training samples, and a classifier needs two "
            "or more; add samples of other classes or check data.classes and data.relabel"
        )
    validating = {val.class_names[label] for label in val.labels} if val is not None else set()
    unlearnt = sorted(validating - set(train.class_names))
    if unlearnt:
        raise DatasetError(
            f"classes {name_list(unlearnt)} have validation samples but no training samples, so the "
            "model cannot learn them; train on some of their samples or leave them out (data.classes)"
        )


def name_list(names: Sequence[str], limit: int = 10) -> str:
    """``names`` joined by commas, the first ``limit`` of them and a count of the rest."""
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"


def vocabulary(data: SkeletonDataset, section: Mapping[str, Any], strict: bool = True) -> SkeletonDataset:
    """``data`` with the config's ``relabel`` merges applied and only its ``classes`` kept.

    ``strict`` (the training files): a ``relabel`` or ``classes`` name the data lacks is an error,
    since it is a typo there. Validation files need only some of the classes (one held-out person's
    gestures), so with ``strict`` off the names they lack are passed over."""
    merges = {str(k): str(v) for k, v in (section.get("relabel") or {}).items()}
    chained = sorted({v for k, v in merges.items() if v != k and merges.get(v, v) != v})
    if chained:  # applied once, {a: b, b: a} swapped the names and {a: b, b: c} split a from c
        raise DatasetError(
            f"data.relabel maps classes to {name_list(chained)}, which it maps on again; "
            "give each class its final name"
        )
    unknown = sorted(set(merges) - set(data.class_names))
    if unknown and strict:
        raise DatasetError(f"data.relabel names {unknown}, not among the classes {data.class_names}")
    merged = [merges.get(name, name) for name in data.class_names]
    if twins := same_words(list(dict.fromkeys(merged))):  # merged files spell one gesture two ways
        raise DatasetError(
            f"the classes {twins[0]!r} and {twins[1]!r} are one gesture by their words; "
            f"merge them with data.relabel ({{{twins[1]}: {twins[0]}}})"
        )
    wanted = [str(name) for name in section.get("classes") or dict.fromkeys(merged)]
    missing = sorted(set(wanted) - set(merged))
    if missing and strict:
        raise DatasetError(f"data.classes names {missing}, not among the classes {sorted(set(merged))}")
    mapping = {name: merges.get(name, name) for name in data.class_names if merges.get(name, name) in wanted}
    return relabel(data, mapping, wanted)


def _named(split: str | None) -> str | None:
    return None if split in (None, AUTO) else split


def _validation_indices(
    data: SkeletonDataset, section: Mapping[str, Any], seed: int, resumed: bool = False
) -> tuple[np.ndarray, str]:
    """Validation sample indices inside ``data`` and a sentence saying how they were chosen. Subjects
    and a fraction are taken from the named ``train_split`` only (not from its test split). A
    setting another one overrules is refused, except in a ``resumed`` run begun before that was
    (its data settings cannot change): the sentence then names it."""
    if section["val"]:
        return np.zeros(0, np.int64), ""
    members = _split_members(data, section.get("train_split"))
    fraction = float(section.get("val_fraction") or 0.0)
    if section.get("val_subjects"):
        unused = ""
        if fraction > 0 or section["val_split"] not in (None, AUTO):
            unused = _overruled(
                "data.val_fraction or data.val_split would not be used",
                "data.val_subjects choose the validation samples, so data.val_fraction or data.val_split "
                "would not be used; keep one of them",
                resumed,
            )
        subjects = list(section["val_subjects"])
        chosen = members[subject_mask(data, subjects)[members]]
        return chosen, f"validation: subjects {', '.join(subjects)}{unused}"
    split = section["val_split"]
    if split == AUTO and "val" in data.splits:
        split = "val"
    if split not in (None, AUTO):
        if split not in data.splits:
            known = ", ".join(sorted(data.splits)) or "none"
            raise DatasetError(f"no split {split!r} in the training data; available: {known}")
        unused = ""
        if fraction > 0:
            unused = _overruled(
                f"data.val_fraction {fraction:g} would not be used",
                f"data.val_fraction {fraction:g} would not be used: the data's split {split!r} validates; "
                "set data.val_split=null to validate on a fraction instead, or drop data.val_fraction",
                resumed,
            )
        return np.sort(data.splits[split]), f"validation: split {split!r}{unused}"
    if fraction > 0:
        picked = members[stratified_fraction(data.labels[members], fraction, seed)]
        return np.sort(picked), f"validation: {100 * fraction:g} % of each class, drawn with seed {seed}"
    return np.zeros(0, np.int64), NO_VALIDATION


def _overruled(unused: str, problem: str, resumed: bool) -> str:
    """DatasetError for a validation setting another overrules; in a resumed run, the note naming
    the ``unused`` setting."""
    if not resumed:
        raise DatasetError(problem)
    return f" ({unused}, as when the run began)"


NO_VALIDATION = (
    "no validation data: every epoch is kept as last.pt and best.pt is not written "
    "(set data.val_subjects, data.val_fraction, data.val_split or data.val)"
)


def _training_indices(data: SkeletonDataset, split: str | None, validation: set[int]) -> np.ndarray:
    members = _split_members(data, split)
    return np.array([i for i in members.tolist() if i not in validation], np.int64)


def _split_members(data: SkeletonDataset, split: str | None) -> np.ndarray:
    """The sorted indices of a named split; every sample for none (or ``auto``)."""
    if split in (None, AUTO):
        return np.arange(len(data))
    if split in data.splits:
        return np.sort(data.splits[split])
    known = ", ".join(sorted(data.splits)) or "none"
    raise DatasetError(
        f"no split {split!r} in the training data; available: {known} "
        f"(data.train_split=auto trains on every sample that does not validate)"
    )


def stratified_fraction(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """About ``fraction`` of each class's indices (at least one where a class has two or more)."""
    rng = np.random.default_rng(seed)
    picked = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        count = min(len(members) - 1, max(1, round(fraction * len(members))))
        if count > 0:
            picked.extend(rng.choice(members, count, replace=False).tolist())
    return np.sort(np.asarray(picked, np.int64))


@dataclass(frozen=True)
class TrainingData:
    """What a training config trained on: its data files that exist here, relabels, people left out."""

    files: list[Path] = field(default_factory=list)
    relabel: dict[str, str] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)
    missing: list[Path] = field(default_factory=list)  # data files it names that are not here
    validation: list[Path] = field(default_factory=list)  # its data.val files, here or not
    validated: list[str] = field(default_factory=list)  # its data.val_subjects: not trained on either

    @property
    def unseen(self) -> list[str]:
        """The people of its data it never trained on: left out, or kept for validation."""
        return [*self.left_out, *(p for p in self.validated if p not in self.left_out)]


def training_data_of(config_path: str | Path) -> TrainingData:
    """A training config's ``data``: the ``train`` files still there (and those that are not),
    ``relabel``, left-out people.

    A missing or unreadable config gives an empty record: callers then say the data is unknown.
    """
    try:
        return training_data_in(load_yaml(read_text_file(Path(config_path))))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return TrainingData()


def training_data_in(config: Any) -> TrainingData:
    """:func:`training_data_of` for a config already parsed; an empty record where its ``data``
    section is not shaped as a training config's."""
    try:
        section = config.get("data") or {}
        named = [resolve_path(p) for p in _one_or_many(section.get("train"))]
        return TrainingData(
            [f for f in named if f.exists()],
            {str(k): str(v) for k, v in (section.get("relabel") or {}).items()},
            [str(p) for p in _one_or_many(section.get("exclude_subjects"))],
            [f for f in named if not f.exists()],
            [resolve_path(p) for p in _one_or_many(section.get("val"))],
            [str(p) for p in _one_or_many(section.get("val_subjects"))],
        )
    except (AttributeError, TypeError):
        return TrainingData()


def _one_or_many(value: Any) -> list:
    """A data key as a list: train accepts one file or person bare (``train: a.npz``), which
    iterated letter by letter."""
    if value is None or value == "":
        return []
    return [value] if isinstance(value, str | int) else list(value)


def still_clock_note(data: SkeletonDataset) -> list[str]:
    """A note where samples of several frames have timestamps that never advance (all 0, say): the
    feeder reads a clip by its stamps, so such a clip trains as its first frame alone."""
    starts, ends = data.offsets[:-1], data.offsets[1:]
    several = ends - starts > 1
    still = int((data.timestamps[ends[several] - 1] == data.timestamps[starts[several]]).sum())
    if not still:
        return []
    return [
        f"{still} of {len(data)} training samples have timestamps that never advance: each "
        "trains as its first frame alone (give each frame its time, e.g. frame / fps)"
    ]


def uncorrected_aspect_note(data: SkeletonDataset, aspect_correction: bool) -> list[str]:
    """A note where image-space samples of unknown image size will train without the aspect
    correction the live node applies to every camera frame (their y is then about 4/3 of it at 4:3)."""
    if not aspect_correction or data.space != "image" or not len(data):
        return []
    unknown = int((np.asarray(data.image_sizes).min(axis=1) == 0).sum())
    if not unknown:
        return []
    return [
        f"{unknown} of {len(data)} training samples have no image size: their aspect stays uncorrected, "
        "while the live node corrects its camera's (import them with the camera's size)"
    ]
