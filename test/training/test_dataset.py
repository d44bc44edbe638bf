"""The dataset file format: exact round trips, merging, selection, versions and pickle safety."""

from __future__ import annotations

import json
import pickle
import zipfile

import numpy as np
import pytest

from bharnet_ros.core.skeleton import SkeletonSequence
from bharnet_ros.training.dataset import DatasetError, Sample, SkeletonDataset
from bharnet_ros.training.dataset_file import FORMAT_VERSION


def sequence(frames: int, seed: int, layout: str = "mediapipe33") -> SkeletonSequence:
    rng = np.random.default_rng(seed)
    joints = 33 if layout == "mediapipe33" else 25
    present = rng.random((frames, 2)) > 0.4
    hands = rng.random((frames, 2, 21, 4), dtype=np.float32) * present[:, :, None, None]
    return SkeletonSequence(
        timestamps=np.arange(frames) / 30.0 + seed,
        body=rng.random((frames, joints, 4), dtype=np.float32),
        hands=hands,
        hand_present=present,
        layout=layout,
        image_size=(640, 480),
    )


def small_dataset(class_names=("wave", "point", "stop"), prefix: str = "clip") -> SkeletonDataset:
    sequences = [sequence(frames, seed) for seed, frames in enumerate((5, 9, 1, 7))]
    return SkeletonDataset.from_sequences(
        sequences,
        labels=[0, 2, 1, 2],
        class_names=list(class_names),
        names=[f"{prefix}{i}" for i in range(4)],
        subjects=[1, 2, 1, 3],
        hand_intensive=[True, False, True][: len(class_names)],
        splits={"train": [0, 1, 3], "val": [2]},
        notes=["made by a test"],
    )


def test_a_save_that_fails_leaves_no_partial_file(tmp_path, monkeypatch):
    """A full disk or an interrupt while compressing left ``set.npz.partial`` beside the target."""
    from bharnet_ros.training import dataset_file

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(dataset_file.np, "savez_compressed", full_disk)
    with pytest.raises(OSError, match="No space left"):
        small_dataset().save(tmp_path / "set.npz")
    assert list(tmp_path.iterdir()) == []


def kinect_sample(name: str, persons: int, frames: int, label: int = 0) -> Sample:
    body = np.zeros((persons, frames, 25, 4), np.float32)
    body[..., 3] = 1.0
    return Sample(
        name, label, body, np.zeros((persons, frames, 2, 21, 4)), np.zeros((persons, frames, 2), bool),
        np.arange(frames) / 30.0, persons=persons, subject=7, camera=2, setup=3, replication=1,
    )  # fmt: skip


def assert_same(a: SkeletonDataset, b: SkeletonDataset) -> None:
    for key in ("body", "hands", "hand_present", "timestamps", "offsets", "labels", "names", "persons",
                "subjects", "cameras", "setups", "replications", "image_sizes"):  # fmt: skip
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key), err_msg=key)
        assert getattr(a, key).dtype == getattr(b, key).dtype, key
    assert (a.class_names, a.layout, a.space, a.hand_intensive, a.notes) == (
        b.class_names, b.layout, b.space, b.hand_intensive, b.notes,
    )  # fmt: skip
    assert {k: v.tolist() for k, v in a.attributes.items()} == {
        k: v.tolist() for k, v in b.attributes.items()
    }
    assert a.splits.keys() == b.splits.keys()
    for name in a.splits:
        np.testing.assert_array_equal(a.splits[name], b.splits[name])


def test_round_trip_is_exact(tmp_path):
    data = small_dataset()
    path = data.save(tmp_path / "set")
    assert path.name == "set.npz"
    loaded = SkeletonDataset.load(path)
    assert_same(data, loaded)
    assert loaded.frame_counts.tolist() == [5, 9, 1, 7]
    back = loaded.sequence(1)
    original = sequence(9, 1)
    np.testing.assert_array_equal(back.body, original.body)
    np.testing.assert_array_equal(back.hands, original.hands)
    np.testing.assert_array_equal(back.timestamps, original.timestamps)
    assert back.image_size == (640, 480)


def test_sample_gives_the_per_sample_fields():
    data = SkeletonDataset.from_samples([kinect_sample("a", 2, 4), kinect_sample("b", 1, 3, label=1)],
                                        ["x", "y"], "ntu25", "world")  # fmt: skip
    sample = data.sample(-1)
    assert (sample.name, sample.label, sample.persons, sample.num_frames) == ("b", 1, 1, 3)
    assert (sample.subject, sample.camera, sample.setup, sample.replication) == (7, 2, 3, 1)
    assert sample.body.shape == (2, 3, 25, 4)  # padded to the dataset's M = 2
    assert not sample.body[1].any()
    with pytest.raises(IndexError):
        data.sample(2)


def test_handless_data_is_stored_without_hand_arrays(tmp_path):
    data = SkeletonDataset.from_samples([kinect_sample("a", 2, 4)], ["x"], "ntu25", "world")
    assert not data.has_hands
    path = data.save(tmp_path / "kinect.npz")
    with np.load(path, allow_pickle=False) as raw:
        assert "hands" not in raw.files
    loaded = SkeletonDataset.load(path)
    assert loaded.hands.shape == (2, 4, 2, 21, 4)
    assert not loaded.hands.any()
    assert_same(data, loaded)


def test_merge_unifies_classes_by_name_and_pads_persons():
    first = small_dataset(("wave", "point", "stop"))
    kinect = SkeletonDataset.from_samples([kinect_sample("k", 2, 2)], ["x"], "ntu25", "world")
    with pytest.raises(DatasetError, match="merge"):
        first.merge(kinect)
    second = SkeletonDataset.from_sequences(
        [sequence(3, 10), sequence(4, 11)], [0, 1], ["stop", "clap"], names=["o0", "o1"],
        hand_intensive=[False, True], splits={"train": [1], "test": [0]},
    )  # fmt: skip
    merged = first.merge(second)
    assert merged.class_names == ["wave", "point", "stop", "clap"]
    assert merged.labels.tolist() == [0, 2, 1, 2, 2, 3]
    assert merged.hand_intensive == [True, False, True, True]
    assert merged.splits["train"].tolist() == [0, 1, 3, 5]
    assert merged.splits["test"].tolist() == [4]
    np.testing.assert_array_equal(merged.sample(5).body, second.sample(1).body)
    apart = first.merge(second, prefixes=("a_", "b_"))
    assert sorted(apart.splits) == ["a_train", "a_val", "b_test", "b_train"]
    assert apart.splits["b_train"].tolist() == [5]
    with pytest.raises(DatasetError, match="unique"):
        first.merge(first)


def test_merge_pads_the_person_axis():
    one = SkeletonDataset.from_samples([kinect_sample("a", 1, 3)], ["x"], "ntu25", "world")
    two = SkeletonDataset.from_samples([kinect_sample("b", 2, 2)], ["x"], "ntu25", "world")
    merged = one.merge(two)
    assert merged.body.shape == (2, 5, 25, 4)
    assert merged.persons.tolist() == [1, 2]
    assert not merged.sample(0).body[1].any()


def test_subset_and_split_keep_order_and_renumber_splits():
    data = small_dataset()
    part = data.subset([3, 0])
    assert part.names.tolist() == ["clip3", "clip0"]
    assert part.frame_counts.tolist() == [7, 5]
    assert part.splits["train"].tolist() == [1, 0]  # original train order 0, 3 -> positions 1, 0
    assert part.splits["val"].tolist() == []
    np.testing.assert_array_equal(part.sample(0).hands, data.sample(3).hands)
    val = data.split("val")
    assert val.names.tolist() == ["clip2"]
    assert val.splits["val"].tolist() == [0]
    with pytest.raises(DatasetError, match="train, val"):
        data.split("xsub_train")
    with pytest.raises(DatasetError, match="twice"):
        data.subset([1, 1])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(labels=np.array([0, 5, 1, 2])), "labels must be within"),
        (lambda d: d.update(offsets=np.array([0, 5, 14, 15, 21])), "offsets"),
        (lambda d: d.update(names=np.array(["a", "a", "b", "c"])), "unique"),
        (lambda d: d.update(body=np.full_like(d["body"], np.nan)), "NaN"),
        (lambda d: d.update(space="pixels"), "coordinate space"),
        (lambda d: d.update(splits={"train": np.array([4])}), "outside"),
        (lambda d: d.update(timestamps=d["timestamps"][::-1].copy()), "backwards"),
        (lambda d: d.update(image_sizes=np.full((4, 2), -1)), "image_sizes must be 0"),
        (lambda d: d.update(image_sizes=np.full((4, 2), 2**62)), "image_sizes must be 0"),
        (  # training squashed y to 1e-9 where the node refuses such a frame
            lambda d: d.update(image_sizes=np.tile([2**31 - 1, 1], (4, 1))),
            "image size \\(2147483647, 1\\) is no camera image",
        ),
        (
            lambda d: d.update(labels=np.zeros((4, 2), np.int64)),
            "labels has shape \\(4, 2\\), expected \\(4,\\)",
        ),
        # the skeleton contract, as frames, sequences and sequence files hold it (its bounds on
        # values are the feeder's check_samples, which names the sample: test_feeder.py)
        (lambda d: d.update(hand_present=np.zeros_like(d["hand_present"]), hands=unflagged_nan(d)), "NaN"),
        (lambda d: d.update(layout="hand21", body=d["body"][:, :, :21]), "'hand21' is not a body layout"),
        (lambda d: d.update(hand_present=d["hand_present"] * 0.2), "hand_present must hold bools"),
        (lambda d: d.update(image_sizes=np.full((4, 2), 640.7)), "image_sizes must hold whole numbers"),
        (lambda d: d.update(labels=d["labels"] + 0.9), "labels must hold whole numbers"),  # was class 0
        (lambda d: d.update(labels=d["labels"].astype(str)), "labels must hold whole numbers"),
        (lambda d: d.update(offsets=d["offsets"] + 0.5), "offsets must hold whole numbers"),
    ],
)
def test_broken_arrays_are_refused(change, message):
    fields = dict(vars(small_dataset()))
    change(fields)
    with pytest.raises(DatasetError, match=message):
        SkeletonDataset(**fields)


def test_more_person_slots_than_a_model_takes_are_refused():
    """An empty 2.5 kB file of 10**12 slots loaded; merging it padded every other file to them."""
    fields = dict(vars(small_dataset()))
    slots = 17
    for key in ("body", "hands", "hand_present"):
        fields[key] = np.zeros((slots, *fields[key].shape[1:]), fields[key].dtype)
    with pytest.raises(DatasetError, match="body needs 1 to 16 person slots \\(a model's most\\), not 17"):
        SkeletonDataset(**fields)


def unflagged_nan(fields: dict) -> np.ndarray:
    hands = np.array(fields["hands"])
    hands[0, 0, 0, 0, 0] = np.nan
    return hands


def test_a_hand_flagged_present_but_holding_nothing_is_absent_as_in_a_sequence():
    """The model was fed an empty hand as a detection (the wrist's depth added to zeros)."""
    fields = dict(vars(small_dataset()))
    fields["hands"] = np.array(fields["hands"])
    fields["hands"][0, :3] = 0.0
    fields["hand_present"] = np.ones_like(fields["hand_present"])
    data = SkeletonDataset(**fields)
    assert not data.hand_present[0, :3].any()
    assert np.array_equal(data.sample(0).hand_present[0], data.sequence(0).hand_present)


def rewrite(path, **header_changes) -> None:
    with np.load(path, allow_pickle=False) as raw:
        arrays = {key: raw[key] for key in raw.files}
    header = json.loads(str(arrays["header"]))
    header.update(header_changes)
    arrays["header"] = np.array(json.dumps(header))
    np.savez(path, **arrays)


@pytest.mark.parametrize(
    ("key", "kind"),
    [("body", complex), ("timestamps", str), ("hands", complex), ("body", np.uint8), ("hands", np.float16)],
)
def test_arrays_other_than_32_or_64_bit_floats_are_refused_not_cast(tmp_path, key, kind):
    path = small_dataset().save(tmp_path / "set.npz")
    with np.load(path, allow_pickle=False) as raw:
        arrays = {name: raw[name] for name in raw.files}
    arrays[key] = arrays[key].astype(kind)
    np.savez(path, **arrays)
    with pytest.raises(DatasetError, match=f"{key} holds .* values, not real numbers"):
        SkeletonDataset.load(path)


def test_newer_versions_and_foreign_files_are_refused(tmp_path):
    path = small_dataset().save(tmp_path / "set.npz")
    rewrite(path, version=FORMAT_VERSION + 1)
    with pytest.raises(DatasetError, match="newer"):
        SkeletonDataset.load(path)
    rewrite(path, version=FORMAT_VERSION, format="something else")
    with pytest.raises(DatasetError, match="not a"):
        SkeletonDataset.load(path)
    np.savez(tmp_path / "plain.npz", body=np.zeros(3))
    with pytest.raises(DatasetError, match="no dataset header"):
        SkeletonDataset.load(tmp_path / "plain.npz")
    with pytest.raises(FileNotFoundError):
        SkeletonDataset.load(tmp_path / "absent.npz")
    with pytest.raises(FileNotFoundError, match="is a folder; give a dataset file"):
        SkeletonDataset.load(tmp_path)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ({"splits": {"train": [10**20]}}, "the file is damaged \\(OverflowError"),
        ({"version": True}, "'version' is not a format version"),
        ({"version": 0}, "'version' is not a format version"),
    ],
)
def test_a_header_value_out_of_any_range_is_one_dataset_error(tmp_path, header, message):
    path = small_dataset().save(tmp_path / "set.npz")
    rewrite(path, **header)
    with pytest.raises(DatasetError, match=message):
        SkeletonDataset.load(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"format": 1%s}' % ("0" * 5000), "the header is not usable JSON"),  # Python's digit limit
        ("[" * 100_000 + "]" * 100_000, "the header is not usable JSON"),
    ],
)
def test_a_header_that_is_no_usable_json_names_the_file(tmp_path, text, message):
    """A 5000-digit number raised a plain ValueError: a traceback from eval and streams."""
    path = small_dataset().save(tmp_path / "set.npz")
    with np.load(path, allow_pickle=False) as raw:
        arrays = {key: raw[key] for key in raw.files}
    arrays["header"] = np.array(text)
    np.savez(path, **arrays)
    with pytest.raises(DatasetError, match=f"{path}: {message}"):
        SkeletonDataset.load(path)


def test_a_broken_attribute_names_its_file_once(tmp_path):
    data = small_dataset()
    data.attributes["subject"] = np.array(["a"] * len(data))
    path = data.save(tmp_path / "set.npz")
    with np.load(path, allow_pickle=False) as raw:
        arrays = {key: raw[key] for key in raw.files}
    arrays["attribute_subject"] = np.zeros(len(data))
    np.savez(path, **arrays)
    with pytest.raises(DatasetError) as refused:
        SkeletonDataset.load(path)
    assert str(refused.value) == f"{path}: attribute 'subject' is not a string array"


@pytest.mark.parametrize("member", ["header", "body", "attribute_subject"])
def test_a_member_that_is_no_numpy_array_is_one_dataset_error(tmp_path, member):
    """numpy hands back such a member's bytes: `'bytes' object has no attribute 'dtype'`."""
    path = with_attributes(small_dataset(), subject=["a"] * 4).save(tmp_path / "set.npz")
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members[f"{member}.npy"] = b"{}"
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    with pytest.raises(
        DatasetError, match=f"its member '{member}' is not a numpy array; the file is damaged"
    ):
        SkeletonDataset.load(path)


@pytest.mark.parametrize("damage", ["empty", "truncated", "text"])
def test_a_damaged_file_is_one_dataset_error(tmp_path, damage):
    path = small_dataset().save(tmp_path / "set.npz")
    content = {"empty": b"", "truncated": path.read_bytes()[:300], "text": b"name,label\n"}[damage]
    path.write_bytes(content)
    with pytest.raises(DatasetError, match="no intact dataset file") as refused:
        SkeletonDataset.load(path)
    assert "\n" not in str(refused.value)


def test_a_file_that_would_unpack_to_far_more_than_it_holds_is_refused_unread(tmp_path, monkeypatch):
    from bharnet_ros.training import dataset_file

    monkeypatch.setattr(dataset_file, "EXPANSION_FLOOR", 1 << 20)  # 1 MiB here, 1 GiB in use
    path = small_dataset().save(tmp_path / "set.npz")
    with np.load(path, allow_pickle=False) as raw:
        arrays = {key: raw[key] for key in raw.files}
    arrays["body"] = np.zeros((1, 40_000, 33, 4), np.float32)  # 21 MB of zeros in a few kB
    np.savez_compressed(path, **arrays)
    with pytest.raises(DatasetError, match="would unpack .* MiB into .* GiB of arrays, far more"):
        SkeletonDataset.load(path)
    assert SkeletonDataset.load(small_dataset().save(tmp_path / "fine.npz"))


def test_files_hold_no_pickles_and_pickled_content_is_refused(tmp_path):
    path = small_dataset().save(tmp_path / "set.npz")
    with np.load(path, allow_pickle=False) as raw:
        dtypes = {key: raw[key].dtype for key in raw.files}  # would raise on an object array
    assert all(dtype.kind in "biufU" for dtype in dtypes.values()), dtypes
    with np.load(path, allow_pickle=False) as raw:
        arrays = {key: raw[key] for key in raw.files}
    arrays["names"] = np.array([object(), "b", "c", "d"], dtype=object)
    np.savez(path, **arrays)
    with pytest.raises(DatasetError, match="pickled"):
        SkeletonDataset.load(path)
    (tmp_path / "evil.npz").write_bytes(pickle.dumps({"header": "x"}))
    with pytest.raises(DatasetError, match="pickled"):
        SkeletonDataset.load(tmp_path / "evil.npz")


def test_from_sequences_refuses_mixed_inputs():
    with pytest.raises(DatasetError, match="mix"):
        SkeletonDataset.from_sequences([sequence(3, 0), sequence(3, 1, "ntu25")], [0, 0], ["a"])
    with pytest.raises(DatasetError, match="labels"):
        SkeletonDataset.from_sequences([sequence(3, 0)], [0, 1], ["a"])


def with_attributes(data: SkeletonDataset, **columns: list[str]) -> SkeletonDataset:
    return SkeletonDataset(
        **{**{f: getattr(data, f) for f in data.__dataclass_fields__}, "attributes": columns}
    )


def test_attributes_round_trip_and_reach_the_samples(tmp_path):
    data = with_attributes(
        small_dataset(), subject=["ann", "bo", "ann", ""], distance=["1m", "4m", "6m", "1m"]
    )
    loaded = SkeletonDataset.load(data.save(tmp_path / "set.npz"))
    assert_same(data, loaded)
    assert loaded.attribute("distance").tolist() == ["1m", "4m", "6m", "1m"]
    assert loaded.sample(1).attributes == {"subject": "bo", "distance": "4m"}
    assert loaded.attribute("framing").tolist() == ["", "", "", ""]
    # The subject attribute names people; the numeric id stands in where it is empty.
    assert loaded.subject_names().tolist() == ["ann", "bo", "ann", "3"]
    assert loaded.subset([2, 0]).attribute("distance").tolist() == ["6m", "1m"]


def test_version_1_files_load_without_attributes(tmp_path):
    path = small_dataset().save(tmp_path / "set.npz")
    rewrite(path, version=1)
    loaded = SkeletonDataset.load(path)
    assert loaded.attributes == {}
    assert loaded.subject_names().tolist() == ["1", "2", "1", "3"]


def test_merge_unions_attributes_and_prefixes_keep_names_apart():
    first = with_attributes(small_dataset(), distance=["1m"] * 4)
    second = with_attributes(small_dataset(), take=["1", "2", "3", "4"])
    with pytest.raises(DatasetError, match=r"not unique \('clip0' more than once\)"):
        first.merge(second)
    merged = first.with_name_prefix("a").merge(second.with_name_prefix("b"))
    assert merged.names.tolist()[3:5] == ["a/clip3", "b/clip0"]
    assert merged.attribute("distance").tolist() == ["1m"] * 4 + [""] * 4
    assert merged.attribute("take").tolist() == [""] * 4 + ["1", "2", "3", "4"]


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"Distance": ["1m"] * 4}, "lower-case"),
        ({"distance": ["1m"] * 3}, "3 values for 4 samples"),
        ({"subject\n": ["a"] * 4}, "lower-case"),  # re.match's $ let it through
        ({"distance": [["1m", "4m"], ["6m", "1m"]]}, "for 4 samples"),  # was flattened into a column
    ],
)
def test_bad_attributes_are_refused(columns, message):
    with pytest.raises(DatasetError, match=message):
        with_attributes(small_dataset(), **columns)
