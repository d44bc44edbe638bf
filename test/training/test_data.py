"""Choosing training and validation data: merged files, people, splits and the vocabulary."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from bharnet_ros.cli import main
from bharnet_ros.training.data import (
    known_classes_only,
    labels_for,
    load_data_file,
    load_datasets,
    select_data,
    stratified_fraction,
)
from bharnet_ros.training.dataset import DatasetError, SkeletonDataset
from bharnet_ros.training.train import DEFAULTS

CLASSES = ["wave", "clap", "left", "right"]


@pytest.fixture(scope="module")
def people(tmp_path_factory, person_file) -> list[Path]:
    folder = tmp_path_factory.mktemp("people")
    return [person_file(folder, s) for s in ("S1", "S2", "S3")]


def section(**values) -> dict:
    data = dict(DEFAULTS["data"])
    data.update(values)
    return data


def test_files_with_the_same_sample_names_merge_with_qualified_names(people):
    data = load_datasets(people)
    assert len(data) == 24
    assert data.names[0] == "S1/wave_0"
    assert len(set(data.names.tolist())) == 24
    assert sorted(set(data.subject_names().tolist())) == ["S1", "S2", "S3"]
    assert set(data.attribute("distance").tolist()) == {"1m", "2m"}


def test_file_tags_add_the_parent_folder_when_stems_collide(tmp_path, person_file):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = person_file(tmp_path / "a", "S1", takes=1)
    second = person_file(tmp_path / "b", "S1", takes=1)
    data = load_datasets([first, second])
    assert data.names[0] == "a/S1/wave_0"
    assert data.names[4] == "b/S1/wave_0"


def test_excluded_and_validation_subjects_never_train(people):
    chosen = select_data(
        section(train=[str(p) for p in people], exclude_subjects=["S3"], val_subjects=["S2"])
    )
    assert set(chosen.train.subject_names().tolist()) == {"S1"}
    assert set(chosen.val.subject_names().tolist()) == {"S2"}
    assert any("left out subjects S3" in note for note in chosen.notes)


def test_unknown_subjects_are_named_with_the_known_ones(people):
    with pytest.raises(DatasetError, match="S9.*S1, S2, S3"):
        select_data(section(train=[str(p) for p in people], val_subjects=["S9"]))


def test_a_device_or_a_pipe_is_named_as_no_regular_file(tmp_path):
    """They exist: "not found" would send the user looking for a typo (and a FIFO must not block)."""
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    for path in ("/dev/zero", fifo):
        with pytest.raises(DatasetError, match="is not a regular file"):
            load_data_file(path)
    with pytest.raises(DatasetError, match="not found"):
        load_data_file(tmp_path / "gone.npz")


def test_auto_splits_train_on_everything_without_a_val_split(people):
    chosen = select_data(section(train=[str(p) for p in people]))
    assert len(chosen.train) == 24
    assert chosen.val is None
    assert any("no validation data" in note and "best.pt is not written" in note for note in chosen.notes)


def test_val_fraction_is_stratified_and_disjoint(people):
    chosen = select_data(section(train=[str(p) for p in people], val_fraction=0.25), seed=3)
    assert len(chosen.val) == 8  # 2 of each class's 6
    assert np.bincount(chosen.val.labels).tolist() == [2, 2, 2, 2]
    assert not set(chosen.val.names.tolist()) & set(chosen.train.names.tolist())


@pytest.mark.parametrize("choice", [{"val_fraction": 0.25}, {"val_subjects": ["S1", "S3"]}])
def test_validation_is_drawn_from_the_named_training_split_only(people, tmp_path, choice):
    """With train_split: train, val_fraction drew from every sample: the test split's too."""
    data = load_datasets([str(p) for p in people])
    test = np.flatnonzero(data.subject_names() == "S3")
    data.splits = {"train": np.flatnonzero(data.subject_names() != "S3"), "test": test}
    data.save(tmp_path / "split.npz")
    chosen = select_data(section(train=[str(tmp_path / "split.npz")], train_split="train", **choice), seed=3)
    assert len(chosen.val)
    assert "S3" not in set(chosen.val.subject_names().tolist())
    assert "S3" not in set(chosen.train.subject_names().tolist())


@pytest.mark.parametrize(
    ("choice", "message"),
    [
        (
            {"val_fraction": 0.25},
            "val_fraction 0.25 would not be used: the data's split 'val' validates",
        ),
        ({"val_subjects": ["S1"], "val_fraction": 0.25}, "data.val_subjects choose the validation samples"),
        ({"val_subjects": ["S1"], "val_split": "val"}, "data.val_subjects choose the validation samples"),
    ],
)
def test_a_validation_setting_another_overrules_is_refused(people, tmp_path, choice, message):
    """A val_fraction on data with a val split, or beside val_subjects, was dropped without a word."""
    data = load_datasets([str(p) for p in people])
    data.splits = {"val": np.flatnonzero(data.subject_names() == "S2")}
    data.save(tmp_path / "split.npz")
    with pytest.raises(DatasetError, match=message):
        select_data(section(train=[str(tmp_path / "split.npz")], **choice))


def test_a_resumed_run_keeps_the_validation_it_began_with_and_says_what_was_unused(people, tmp_path):
    """A run begun before the refusal could not be resumed: its data settings cannot change."""
    data = load_datasets([str(p) for p in people])
    data.splits = {"val": np.flatnonzero(data.subject_names() == "S2")}
    data.save(tmp_path / "split.npz")
    chosen = select_data(section(train=[str(tmp_path / "split.npz")], val_fraction=0.25), resumed=True)
    assert set(chosen.val.subject_names().tolist()) == {"S2"}
    assert (
        "validation: split 'val' (data.val_fraction 0.25 would not be used, as when the run began)"
        in chosen.notes
    )


def test_stratified_fraction_keeps_one_sample_of_each_class_for_training():
    picked = stratified_fraction(np.array([0, 0, 1, 2, 2, 2]), 0.9, seed=0)
    assert np.bincount(np.array([0, 0, 1, 2, 2, 2])[picked], minlength=3).tolist() == [1, 0, 2]


def test_a_named_split_that_does_not_exist_says_what_exists(people):
    with pytest.raises(DatasetError, match="no split 'train'.*train_split=auto"):
        select_data(section(train=[str(p) for p in people], train_split="train"))


def test_relabel_and_classes_define_the_vocabulary(people):
    chosen = select_data(
        section(train=[str(p) for p in people], relabel={"clap": "none"}, classes=["left", "right", "none"])
    )
    assert chosen.train.class_names == ["left", "right", "none"]
    assert np.bincount(chosen.train.labels).tolist() == [6, 6, 6]  # wave is left out


def test_relabel_of_an_unknown_class_is_an_error(people):
    with pytest.raises(DatasetError, match="data.relabel names"):
        select_data(section(train=[str(people[0])], relabel={"jump": "none"}))


@pytest.mark.parametrize("relabel", [{"left": "right", "right": "left"}, {"left": "right", "right": "wave"}])
def test_a_relabel_that_maps_a_class_on_twice_is_refused(people, relabel):
    """Applied once, a swap renamed every sample to the other class, and a chain split the classes."""
    with pytest.raises(DatasetError, match="data.relabel maps classes to .*, which it maps on again"):
        select_data(section(train=[str(people[0])], relabel=relabel))


def test_one_gesture_spelt_two_ways_by_merged_files_is_refused_until_relabelled(tmp_path, people):
    """S1's Clap and S2's clap trained as two classes, with no note."""
    data = SkeletonDataset.load(people[0])
    data.class_names = [name.capitalize() if name == "clap" else name for name in data.class_names]
    fields = {f: getattr(data, f) for f in data.__dataclass_fields__}
    capital = SkeletonDataset(**fields).save(tmp_path / "capital.npz")
    files = [str(capital), str(people[1])]
    with pytest.raises(DatasetError, match="the classes 'Clap' and 'clap' are one gesture by their words"):
        select_data(section(train=files))
    assert "clap" in select_data(section(train=files, relabel={"Clap": "clap"})).train.class_names


def test_a_file_listed_twice_or_that_does_not_fit_is_named(tmp_path, people):
    with pytest.raises(DatasetError, match="is listed twice"):
        load_datasets([people[0], people[0].parent / ".." / people[0].parent.name / people[0].name])
    data = SkeletonDataset.load(people[1])
    fields = {f: getattr(data, f) for f in data.__dataclass_fields__}
    world = SkeletonDataset(**{**fields, "space": "world"}).save(tmp_path / "world.npz")
    with pytest.raises(DatasetError, match=f"^{world}: cannot merge"):
        load_datasets([people[0], world])


def test_classes_without_training_samples_are_left_out_with_a_note(tmp_path, people):
    data = SkeletonDataset.load(people[0])
    data.class_names = [*data.class_names, "blank"]
    path = SkeletonDataset(**{f: getattr(data, f) for f in data.__dataclass_fields__}).save(
        tmp_path / "x.npz"
    )
    chosen = select_data(section(train=[str(path)]))
    assert chosen.train.class_names == CLASSES
    assert any("without training samples left out: blank" in note for note in chosen.notes)


def test_labels_for_unknown_classes_suggests_a_fix(people):
    data = load_datasets(people[:1])
    with pytest.raises(DatasetError, match="--rename OLD=NEW"):
        labels_for(data, ["wave", "clap"], "model's")
    kept, left_out = known_classes_only(data, ["wave", "clap"])
    assert left_out == {"left": 2, "right": 2}
    assert len(kept) == 4


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("../outside.npz,0,wave,0,1", "is not a file name inside the folder"),
        ("/etc/passwd,0,wave,0,1", "is not a file name inside the folder"),
        ("wave_0000.npz,99,wave,0,1", "label '99' is not 0.."),
        ("wave_0000.npz,-1,wave,0,1", "label '-1' is not 0.."),
        ("wave_0000.npz,²,wave,0,1", "label '²' is not 0.."),
        ("wave_0000.npz," + "0" * 5000 + ",wave,0,1", "is not 0.."),
        ("wave_0000.npz,0,wave,yes,1", "hand_intensive 'yes' is neither 0 nor 1"),
        ("missing.npz,0,wave,0,1", "missing.npz is no regular file"),
        ("./wave_0000.npz,0,wave,0,1", "lists wave_0000.npz more than once"),  # 12,000 rows took 3 GB
        ("classes.txt,0,wave,0,1", "classes.txt cannot be read"),
    ],
)
def test_a_synth_folder_row_that_cannot_be_true_is_named(tmp_path, row, message):
    folder = tmp_path / "set"
    assert main(["synth", "-o", str(folder), "--per-class", "1", "--seed", "0", "--classes", "wave"]) == 0
    with open(folder / "index.csv", "a") as index:
        index.write(row + "\n")
    with pytest.raises(DatasetError) as err:
        load_datasets([folder])
    assert message in str(err.value)


def test_a_synth_folder_row_naming_a_pipe_is_refused_not_waited_on(tmp_path):
    """The zip reader opened it and waited for a writer, for ever."""
    folder = tmp_path / "set"
    assert main(["synth", "-o", str(folder), "--per-class", "1", "--seed", "0", "--classes", "wave"]) == 0
    os.mkfifo(folder / "pipe.npz")
    with open(folder / "index.csv", "a") as index:
        index.write("pipe.npz,0,wave,0,1\n")
    with pytest.raises(DatasetError, match="pipe.npz is no regular file"):
        load_datasets([folder])


def test_one_class_with_training_samples_is_refused(people):
    """A one-class model only ever says that class: training it would be work for nothing."""
    with pytest.raises(DatasetError, match="only the class wave has training samples.*two or more"):
        select_data(section(train=[str(people[0])], classes=["wave"]))
    with pytest.raises(DatasetError, match="only the class all has training samples"):
        select_data(section(train=[str(people[0])], relabel={c: "all" for c in CLASSES}))


def test_a_class_that_only_validates_is_refused(tmp_path, people, person_file):
    """The model could never predict it: its validation samples could only count as errors."""
    data = SkeletonDataset.load(person_file(tmp_path, "S4"))
    data.class_names = ["jump", *data.class_names[1:]]  # S4's waves are the only jumps
    fields = {f: getattr(data, f) for f in data.__dataclass_fields__}
    jumper = SkeletonDataset(**fields).save(tmp_path / "S4.npz")
    files = [*map(str, people), str(jumper)]
    with pytest.raises(DatasetError, match="classes jump have validation samples but no training samples"):
        select_data(section(train=files, val_subjects=["S4"]))
    with pytest.raises(DatasetError, match="classes jump have validation samples"):
        select_data(section(train=[str(p) for p in people], val=[str(jumper)]))


def test_a_validation_file_may_hold_only_some_of_the_classes(tmp_path, people):
    """One held-out person's gestures: relabel and classes name classes the file lacks."""
    lateral = select_data(section(train=[str(people[2])], classes=["left", "right"])).train
    val = lateral.save(tmp_path / "S3_lateral.npz")
    chosen = select_data(
        section(
            train=[str(p) for p in people[:2]],
            val=[str(val)],
            relabel={"clap": "wave"},
            classes=["wave", "left", "right"],
        )
    )
    assert set(np.array(chosen.val.class_names)[chosen.val.labels].tolist()) == {"left", "right"}
    with pytest.raises(DatasetError, match="data.relabel names \\['jump'\\]"):  # training files stay strict
        select_data(section(train=[str(p) for p in people[:2]], relabel={"jump": "wave"}))


def test_a_long_list_of_classes_without_samples_is_shortened_in_the_note(tmp_path, people):
    data = SkeletonDataset.load(people[0])
    data.class_names = [*data.class_names, *(f"unused{i:05d}" for i in range(10000))]
    path = SkeletonDataset(**{f: getattr(data, f) for f in data.__dataclass_fields__}).save(
        tmp_path / "x.npz"
    )
    (note,) = [n for n in select_data(section(train=[str(path)])).notes if "without training samples" in n]
    assert note.endswith("unused00009 and 9990 more")


def test_validation_files_count_with_a_named_training_split(tmp_path, people):
    """data.train_split=tr with --val files dropped the files: no validation at all, silently."""
    merged = load_datasets([str(p) for p in people])
    subjects = merged.subject_names()
    merged.splits = {"tr": np.flatnonzero(subjects != "S1")}
    merged.save(tmp_path / "split.npz")
    chosen = select_data(section(train=[str(tmp_path / "split.npz")], val=[str(people[0])], train_split="tr"))
    assert chosen.val is not None
    assert set(chosen.val.subject_names().tolist()) == {"S1"}
    assert set(chosen.train.subject_names().tolist()) == {"S2", "S3"}


def test_a_data_file_listed_twice_is_refused(people):
    """Each sample loaded twice: 17 of 21 validation samples had a twin in training."""
    with pytest.raises(DatasetError, match="is listed twice in the training data"):
        select_data(section(train=[str(people[0]), str(people[0])], val_fraction=0.3))


def test_a_person_left_out_need_not_be_in_the_validation_files(people):
    """--loso S3 with validation files of S1 only was refused as 'S3 not in the data'."""
    chosen = select_data(
        section(train=[str(p) for p in people[1:]], val=[str(people[0])], exclude_subjects=["S3"])
    )
    assert set(chosen.train.subject_names().tolist()) == {"S2"}
    assert set(chosen.val.subject_names().tolist()) == {"S1"}


@pytest.mark.parametrize("other", [{"val_subjects": ["S2"]}, {"val_fraction": 0.3}])
def test_validation_files_and_validating_people_or_shares_are_refused_together(people, other):
    """With data.val the people of val_subjects trained, and nothing said so."""
    with pytest.raises(DatasetError, match=f"data.val and data.{next(iter(other))} both choose"):
        select_data(section(train=[str(p) for p in people[1:]], val=[str(people[0])], **other))


def test_a_person_both_left_out_and_validating_is_named(people):
    with pytest.raises(DatasetError, match="both name S1; a person is either left out or validates"):
        select_data(section(train=[str(p) for p in people], exclude_subjects=["S1"], val_subjects=["S1"]))


def test_a_class_listed_twice_is_named(people):
    with pytest.raises(DatasetError, match="'wave' is named twice"):
        select_data(section(train=[str(p) for p in people], classes=["wave", "clap", "wave"]))


def test_an_empty_validation_split_says_there_is_no_validation_data(tmp_path):
    """A synth folder of fewer than 5 per class has a split 'val' without samples: the run must say
    it has no validation data (no best.pt), not that it validates on that split."""
    from bharnet_ros.tools.synth import write_dataset

    folder = tmp_path / "synth"
    write_dataset(folder, ["wave", "clap"], per_class=3, seed=0, fps=30.0)
    chosen = select_data(section(train=[str(folder)]))
    assert chosen.val is None
    assert "validation: split 'val' holds no samples, so no validation data" in chosen.notes[-1]


def test_a_training_config_naming_one_file_or_person_bare_reads_it_whole(tmp_path):
    """train accepts `train: a.npz`; the record read it letter by letter (export --distance-from
    refused it, naming the letters as missing files)."""
    from bharnet_ros.training.data import training_data_in

    data_file = tmp_path / "hri.npz"
    data_file.write_bytes(b"")
    record = training_data_in({"data": {"train": str(data_file), "exclude_subjects": "S1", "val": ""}})
    assert (record.files, record.missing, record.left_out, record.validation) == ([data_file], [], ["S1"], [])


def test_samples_whose_clock_never_advances_are_noted():
    """All-zero stamps are valid, and the feeder read each such clip as its first frame: a
    'temporal' model trained on still poses, with no word."""
    from bharnet_ros.core.skeleton import SkeletonSequence
    from bharnet_ros.training.data import still_clock_note

    def clip(stamps: list[float]) -> SkeletonSequence:
        frames = len(stamps)
        body = np.full((frames, 33, 4), 0.5, np.float32)
        return SkeletonSequence(
            np.array(stamps), body, np.zeros((frames, 2, 21, 4)), np.zeros((frames, 2), bool)
        )

    data = SkeletonDataset.from_sequences(
        [clip([0.0] * 5), clip([0.0, 0.1]), clip([7.0])], [0, 1, 1], ["a", "b"]
    )
    assert still_clock_note(data) == [
        "1 of 3 training samples have timestamps that never advance: each trains as its first frame "
        "alone (give each frame its time, e.g. frame / fps)"
    ]
