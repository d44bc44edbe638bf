"""PKU-MMD and Northwestern-UCLA importers, on small files written in their formats."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bharnet_ros.core.layouts import NTU25
from bharnet_ros.training.dataset import DatasetError
from bharnet_ros.training.importers.nucla import ACTIONS, KINECT_V1_JOINTS, import_nucla, v1_to_ntu25
from bharnet_ros.training.importers.pkummd import import_pkummd, read_split_file

# --- PKU-MMD -----------------------------------------------------------------------------------


def write_pku(root, frames: int = 60) -> np.ndarray:
    """skeleton/0002-L.txt (body 2 only in frames 30+), its labels, a video without labels, splits."""
    rng = np.random.default_rng(0)
    rows = rng.uniform(-1, 3, (frames, 150)).astype(np.float32)
    rows[:30, 75:] = 0.0
    (root / "skeleton").mkdir(parents=True)
    (root / "label").mkdir()
    np.savetxt(root / "skeleton" / "0002-L.txt", rows, fmt="%.6f")
    np.savetxt(root / "skeleton" / "0003-M.txt", rows[:10], fmt="%.6f")
    (root / "label" / "0002-L.txt").write_text("3,0,20,1\n5,25,60,2\n7,70,90,1\n")
    (root / "cross_subject.txt").write_text(
        "Training videos: \n0002-L, 0005-R\nValidataion videos: \n0003-M\n"
    )
    return rows


def test_pkummd_segments_become_samples(tmp_path):
    rows = write_pku(tmp_path)
    dataset, report = import_pkummd(tmp_path, benchmark="xsub")
    assert dataset.names.tolist() == ["0002-L_0", "0002-L_1"]  # segment 2 lies past the video's end
    assert dataset.labels.tolist() == [2, 4]
    assert dataset.class_names[-1] == "action 5"
    assert dataset.frame_counts.tolist() == [20, 35]
    assert dataset.persons.tolist() == [1, 2]
    assert dataset.cameras.tolist() == [1, 1]  # view L
    assert (dataset.layout, dataset.space) == ("ntu25", "world")
    second = dataset.sample(1)
    np.testing.assert_allclose(second.timestamps[0], 25 / 30)
    np.testing.assert_allclose(second.body[0, 0, :, :3], rows[25, :75].reshape(25, 3), atol=1e-6)
    np.testing.assert_array_equal(second.body[1, 0], np.zeros((25, 4)))  # body 2 absent before frame 30
    assert (second.body[1, 5:, :, 3] == 1).all()
    assert dataset.splits["xsub_train"].tolist() == [0, 1]
    assert dataset.splits["xsub_val"].tolist() == []
    assert [(item, reason) for item, reason, _ in report.skipped] == [
        ("0002-L_2", "empty segment"),  # reported, not dropped silently
        ("0003-M", "no label file"),
    ]
    assert "lie past the video's end" in report.skipped[0][2]


def test_a_pkummd_person_recorded_as_body_2_only_comes_first(tmp_path):
    """The first slot stayed empty, and a one-person model trained on zeros under the label."""
    rows = write_pku(tmp_path)
    rows[:, :75] = 0.0
    np.savetxt(tmp_path / "skeleton" / "0002-L.txt", rows, fmt="%.6f")
    dataset, _ = import_pkummd(tmp_path)
    assert dataset.names.tolist() == ["0002-L_1"]  # the first segment had nobody: left out
    sample = dataset.sample(0)
    np.testing.assert_allclose(sample.body[0, 5, :, :3], rows[30, 75:].reshape(25, 3), atol=1e-6)
    assert not sample.body[1].any()
    assert dataset.persons.tolist() == [1]


def test_pkummd_split_file_and_missing_pieces(tmp_path):
    write_pku(tmp_path)
    train, test = read_split_file(tmp_path / "cross_subject.txt")
    assert (train, test) == ({"0002-L", "0005-R"}, {"0003-M"})
    with pytest.raises(DatasetError, match="split-file"):
        import_pkummd(tmp_path / "skeleton", labels=tmp_path / "label", benchmark="xview")
    dataset, _ = import_pkummd(tmp_path / "skeleton", class_names=[f"c{i}" for i in range(6)])
    assert dataset.class_names[2] == "c2"
    assert dataset.splits == {}
    (tmp_path / "label").rename(tmp_path / "elsewhere")
    with pytest.raises(DatasetError, match="--labels"):
        import_pkummd(tmp_path)


# --- Northwestern-UCLA -------------------------------------------------------------------------


def write_nucla(folder, name: str, label: int, frames: int, flat: bool = False) -> np.ndarray:
    rng = np.random.default_rng(label)
    joints = rng.uniform(-1, 3, (frames, 20, 3)).round(4)
    skeletons = joints.reshape(frames, 60) if flat else joints
    record = {"file_name": name, "skeletons": skeletons.tolist(), "label": label}
    (folder / f"{name}.json").write_text(json.dumps(record))
    return joints


def test_a_nucla_file_repeating_a_file_name_is_skipped_by_name(tmp_path):
    write_nucla(tmp_path, "a02_s01_e01_v01", 2, 4)
    record = json.loads((tmp_path / "a02_s01_e01_v01.json").read_text())
    (tmp_path / "z_copy.json").write_text(json.dumps(record))
    dataset, report = import_nucla(tmp_path)
    assert dataset.names.tolist() == ["a02_s01_e01_v01"]
    assert [(item, why) for item, why, _ in report.skipped] == [("z_copy", "duplicate sample")]
    record["file_name"] = "a2_s1_e1_v1_copy"  # the same recording under another spelling
    (tmp_path / "z_copy.json").write_text(json.dumps(record))
    dataset, report = import_nucla(tmp_path)
    assert dataset.names.tolist() == ["a02_s01_e01_v01"]
    assert [(item, why, detail) for item, why, detail in report.skipped] == [
        ("z_copy", "duplicate sample", "a2_s1_e1_v1_copy, as a02_s01_e01_v01, came in an earlier file")
    ]


def test_a_linked_nucla_folder_is_read(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "nucla").mkdir()
    write_nucla(tmp_path / "elsewhere", "a02_s01_e01_v01", 2, 4)
    (tmp_path / "nucla" / "view1").symlink_to(tmp_path / "elsewhere")
    dataset, _ = import_nucla(tmp_path / "nucla")  # "no .json files under" it
    assert dataset.names.tolist() == ["a02_s01_e01_v01"]


@pytest.mark.parametrize("name", ["a02_s01_e01_v09", "a02_s00_e01_v01", "a02_s01_e00_v00"])  # e00 is fine
def test_a_nucla_name_of_no_view_or_subject_is_skipped_by_name(tmp_path, name):
    """View 9 and view 0 were imported into xview_val."""
    write_nucla(tmp_path, "a02_s01_e01_v01", 2, 4)
    write_nucla(tmp_path, name, 2, 4)
    dataset, report = import_nucla(tmp_path)
    assert dataset.names.tolist() == ["a02_s01_e01_v01"]
    assert "names no N-UCLA subject (from s01) and view (v01..v03)" in report.skipped[0][2]


def test_nucla_maps_kinect_v1_joints_to_ntu25_by_name(tmp_path):
    first = write_nucla(tmp_path, "a01_s01_e01_v01", 1, 12)
    write_nucla(tmp_path, "a12_s02_e03_v03", 10, 7, flat=True)
    write_nucla(tmp_path, "a08_s05_e00_v02", 7, 9)
    (tmp_path / "broken.json").write_text("{}")
    dataset, report = import_nucla(tmp_path)
    assert dataset.names.tolist() == ["a01_s01_e01_v01", "a08_s05_e00_v02", "a12_s02_e03_v03"]
    assert dataset.labels.tolist() == [0, 6, 9]
    assert dataset.class_names == list(ACTIONS.values())
    assert dataset.class_names[6] == "donning"
    assert dataset.subjects.tolist() == [1, 5, 2]
    assert dataset.subject_names().tolist() == ["s01", "s05", "s02"]  # not NTU's P001 when merged
    assert dataset.cameras.tolist() == [1, 2, 3]
    assert dataset.replications.tolist() == [1, 0, 3]
    assert dataset.splits["xview_train"].tolist() == [0, 1]
    assert dataset.splits["xview_val"].tolist() == [2]
    assert [item for item, _, _ in report.skipped] == ["broken"]
    body = dataset.sample(0).body[0]
    v1 = KINECT_V1_JOINTS.index
    np.testing.assert_allclose(body[:, NTU25.index("left_hand"), :3], first[:, v1("hand_left")], rtol=1e-6)
    np.testing.assert_allclose(body[:, NTU25.index("spine_shoulder"), :3], first[:, v1("shoulder_center")])
    np.testing.assert_allclose(body[:, NTU25.index("right_foot"), :3], first[:, v1("foot_right")])
    for missing in ("neck", "left_hand_tip", "left_thumb", "right_hand_tip", "right_thumb"):
        assert not body[:, NTU25.index(missing)].any(), missing
    assert (body[:, NTU25.index("head"), 3] == 1).all()


def test_v1_mapping_scores_only_present_frames():
    joints = np.ones((3, 20, 3), np.float32)
    joints[1] = 0.0
    out = v1_to_ntu25(joints)
    assert out.shape == (3, 25, 4)
    assert out[:, :, 3].sum(axis=1).tolist() == [20, 0, 20]


def test_nucla_refuses_other_benchmarks_and_empty_folders(tmp_path):
    with pytest.raises(DatasetError, match="xview"):
        import_nucla(tmp_path, benchmark="xsub")
    with pytest.raises(DatasetError, match=r"no \.json"):
        import_nucla(tmp_path)


@pytest.mark.parametrize(
    ("labels", "reason"),
    [
        ("100000000,0,20,1\n", "label 1e+08 outside 1..51"),
        ("1e30,0,20,1\n", "outside 1..51"),
        ("nan,0,20,1\n", "whole numbers"),
        ("3,inf,20,1\n", "whole numbers"),
        ("0,0,20,1\n", "label 0 outside"),
        ("3,1.5,20,1\n", "whole numbers"),
        ("3,30,10,1\n", "0 <= start < end"),
        ("3,20,20,1\n", "0 <= start < end"),
        ("3,-5,20,1\n", "0 <= start < end"),
        ("3,0,1e30,1\n", "0 <= start < end"),
        ("3,0,20,1\n9,0,nan,1\n", "action line 2"),
        ("\n", "the PKU-MMD label file is empty"),
        ("3,0\n", "expected lines"),
        ("a,b,c,d\n", "could not convert"),
        ("3,0,20,1\n3,0,20,1\n", "action line 1 is given twice"),  # each line copies its frames
        ("3,0,30,1\n3,0,29,1\n3,1,30,1\n", "cover 88 frames of a 30-frame video"),
    ],
)
def test_pkummd_bad_label_lines_refuse_that_video_only(tmp_path, labels, reason):
    write_pku(tmp_path)
    np.savetxt(tmp_path / "skeleton" / "0004-R.txt", np.ones((30, 150)), fmt="%.1f")
    (tmp_path / "label" / "0004-R.txt").write_text(labels)
    dataset, report = import_pkummd(tmp_path)
    assert dataset.names.tolist() == ["0002-L_0", "0002-L_1"]
    assert dataset.num_classes == 5  # a huge label did not stretch the class list
    skipped = {item: (why, detail) for item, why, detail in report.skipped}
    assert skipped["0004-R"][0] == "unreadable video"
    assert reason in skipped["0004-R"][1]


@pytest.mark.parametrize(
    ("rows", "reason"),
    [("", "the PKU-MMD skeleton file is empty"), ("1 2 3\n", "3 values per frame"), ("nan " * 150, "NaN")],
    ids=["empty", "short rows", "nan"],
)
def test_pkummd_bad_skeleton_files_refuse_that_video_only(tmp_path, rows, reason):
    write_pku(tmp_path)
    (tmp_path / "skeleton" / "0004-R.txt").write_text(rows)
    (tmp_path / "label" / "0004-R.txt").write_text("3,0,20,1\n")
    dataset, report = import_pkummd(tmp_path)
    assert len(dataset) == 2
    skipped = {item: detail for item, _, detail in report.skipped}
    assert reason in skipped["0004-R"]


def test_pkummd_labels_are_bounded_by_the_given_class_names(tmp_path):
    write_pku(tmp_path)  # 0002-L has labels 3, 5 and 7
    dataset, report = import_pkummd(tmp_path, class_names=["a", "b", "c", "d", "e", "f"])
    assert len(dataset) == 0
    details = {item: detail for item, _, detail in report.skipped}
    assert "label 7 outside 1..6" in details["0002-L"]
    with pytest.raises(DatasetError, match="class-name list is empty"):
        import_pkummd(tmp_path, class_names=[])


@pytest.mark.parametrize("fps", [float("nan"), float("inf"), 0.0, -30.0, 1e6])
def test_pkummd_and_nucla_refuse_a_bad_frame_rate(tmp_path, fps):
    write_pku(tmp_path)
    with pytest.raises(DatasetError, match="--fps"):
        import_pkummd(tmp_path, fps=fps)
    write_nucla(tmp_path, "a01_s01_e01_v01", 1, 3)
    with pytest.raises(DatasetError, match="--fps"):
        import_nucla(tmp_path, fps=fps)


def test_nucla_notes_state_the_frame_rate_used(tmp_path):
    write_nucla(tmp_path, "a01_s01_e01_v01", 1, 3)
    dataset, _ = import_nucla(tmp_path, fps=15.0)
    np.testing.assert_allclose(dataset.timestamps, np.arange(3) / 15.0)
    assert any("15 fps" in note for note in dataset.notes)


SKELETON = np.ones((3, 20, 3)).tolist()


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ([1, 2], "holds a list"),
        ("text", "holds a string"),
        ({"file_name": ["a01_s01_e01_v01"], "skeletons": SKELETON}, "file_name is"),
        ({"file_name": "a01_s01_e01_v9999999999999999999999", "skeletons": SKELETON}, "above 9999"),
        ({"file_name": "a01_s01_e01_v\u0661", "skeletons": SKELETON}, "is not like a01_s01_e01_v01"),
        ({"file_name": "a01_s01_e01_v01", "skeletons": SKELETON, "label": None}, "label is null"),
        ({"file_name": "a01_s01_e01_v01", "skeletons": SKELETON, "label": "3"}, 'label is "3"'),
        ({"file_name": "a01_s01_e01_v01", "skeletons": SKELETON, "label": 0}, "label is 0"),
        ({"file_name": "a01_s01_e01_v01", "skeletons": SKELETON, "label": 1.5}, "label is 1.5"),
        ({"file_name": "a01_s01_e01_v01", "skeletons": SKELETON, "label": 1e400}, "label is Infinity"),
        ({"file_name": "a01_s01_e01_v01", "skeletons": SKELETON, "label": True}, "label is true"),
        ({"file_name": "a01_s01_e01_v01", "skeletons": SKELETON, "label": 10**400}, "label is 1000"),
        ({"file_name": "a01_s01_e01_v01", "skeletons": SKELETON, "label": "x" * 10**5}, "..."),
        (
            {"file_name": "a01_s01_e01_v01", "skeletons": SKELETON, "label": 5},
            "disagrees with the file name's a01",
        ),
        ({"file_name": "a07_s01_e01_v01", "skeletons": SKELETON}, "not an N-UCLA action"),
        ({"file_name": "a01_s01_e01_v01"}, "no 'skeletons'"),
        ({"file_name": "a01_s01_e01_v01", "skeletons": None}, "skeletons is null"),
        ({"file_name": "a01_s01_e01_v01", "skeletons": {"0": 1}}, "skeletons is an object"),
        ({"file_name": "a01_s01_e01_v01", "skeletons": []}, "at least one frame"),
        ({"file_name": "a01_s01_e01_v01", "skeletons": [[[None, 1, 2]] * 20]}, "other than numbers"),
        ({"file_name": "a01_s01_e01_v01", "skeletons": [[["1", "2", "3"]] * 20]}, "other than numbers"),
        ({"file_name": "a01_s01_e01_v01", "skeletons": [[1.0] * 60, [1.0] * 59]}, "ragged"),
        ({"file_name": "a01_s01_e01_v01", "skeletons": [[1.0] * 59]}, "shape (1, 59)"),
        ({"file_name": "a01_s01_e01_v01", "skeletons": [[[float("nan")] * 3] * 20]}, "NaN"),
    ],
)
def test_nucla_wrong_json_types_skip_that_file_with_a_reason(tmp_path, record, reason):
    write_nucla(tmp_path, "a02_s01_e01_v01", 2, 4)
    (tmp_path / "bad.json").write_text(json.dumps(record))
    dataset, report = import_nucla(tmp_path)
    assert dataset.names.tolist() == ["a02_s01_e01_v01"]
    [(item, why, detail)] = report.skipped
    assert (item, why) == ("bad", "unreadable sample")
    assert reason in detail
    assert len(detail) < 200


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"label": 1', "not valid"),
        (b"\xff\xfe", "UTF-8"),
    ],
    ids=["deep nesting", "cut short", "not utf-8"],
)
def test_nucla_broken_json_is_skipped_with_a_reason(tmp_path, content, reason):
    write_nucla(tmp_path, "a02_s01_e01_v01", 2, 4)
    (tmp_path / "bad.json").write_bytes(content)
    dataset, report = import_nucla(tmp_path)
    assert len(dataset) == 1
    assert reason in report.skipped[0][2]
