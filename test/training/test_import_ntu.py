"""NTU RGB+D .skeleton import: real sample files, line endings, denoising, skip lists, splits."""

from __future__ import annotations

import re
import shutil
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from bharnet_ros.training import importers
from bharnet_ros.training.dataset import DatasetError
from bharnet_ros.training.importers.ntu import (
    KinectBody,
    NtuFormatError,
    NtuIds,
    assign_actors,
    import_ntu,
    ntu_splits,
    parse_skeleton_text,
    rank_bodies,
    read_ntu_sample,
    read_skeleton_file,
)

REAL_FRAMES = {
    "S001C001P001R001A050": 74,
    "S017C003P020R002A054": 42,
    "S017C003P020R002A055": 66,
    "S017C003P020R002A056": 80,
    "S017C003P020R002A057": 76,
    "S017C003P020R002A058": 65,
}


def skeleton_text(frames: list[list[tuple[str, np.ndarray]]], newline: str = "\n") -> str:
    """A .skeleton file: per frame a list of (bodyID, joints (25, 3)); trackingState 2 everywhere."""
    lines = [str(len(frames))]
    for bodies in frames:
        lines.append(str(len(bodies)))
        for body_id, xyz in bodies:
            lines.append(f"{body_id} 0 1 1 1 1 0 0.1 0.2 2")
            lines.append("25")
            lines.extend(" ".join(f"{v:.6f}" for v in joint) + " 100 200 300 400 1 0 0 0 2" for joint in xyz)
    return newline.join(lines) + newline


def standing(frame: int, centre: float, sway: float) -> np.ndarray:
    """A plausible (taller than wide) body: joints on a 0.4 m x 1.6 m column that sways in x."""
    rng = np.random.default_rng(frame)
    xyz = np.column_stack([rng.uniform(-0.2, 0.2, 25), np.linspace(-0.8, 0.8, 25), np.full(25, 3.0)])
    xyz[:, 0] += centre + sway * np.sin(frame / 3)
    return xyz


def lying(frame: int) -> np.ndarray:
    """An implausible body for Kinect noise: 2 m wide, 0.5 m tall, moving a lot."""
    xyz = np.column_stack([np.linspace(-1, 1, 25), np.linspace(0, 0.5, 25), np.full(25, 2.5)])
    xyz[:, 1] += np.sin(frame)
    return xyz


@pytest.fixture(scope="module")
def real(ntu_samples, ntu_meta):
    dataset, report = import_ntu(ntu_samples, ntu_meta)
    return dataset, report


def test_real_samples_frame_counts_bodies_and_ids(real):
    dataset, report = real
    assert report.skipped == []
    assert dict(zip(dataset.names.tolist(), dataset.frame_counts.tolist(), strict=True)) == REAL_FRAMES
    assert dataset.persons.tolist() == [2] * 6  # all six are two-person actions with two bodies
    assert (dataset.layout, dataset.space, dataset.max_persons) == ("ntu25", "world", 2)
    assert dataset.labels.tolist() == [49, 53, 54, 55, 56, 57]  # A050..A058 -> label A - 1
    assert dataset.class_names[49] == "punching/slapping other person"
    assert dataset.class_names[57] == "handshaking"
    assert dataset.num_classes == 60  # only NTU60 actions present
    assert dataset.subjects.tolist() == [1, 20, 20, 20, 20, 20]
    assert dataset.subject_names().tolist() == ["P001", *["P020"] * 5]  # not N-UCLA's s01 when merged
    assert dataset.cameras.tolist() == [1, 3, 3, 3, 3, 3]
    assert dataset.setups.tolist() == [1, 17, 17, 17, 17, 17]
    assert dataset.replications.tolist() == [1, 2, 2, 2, 2, 2]
    assert not dataset.has_hands
    assert set(np.unique(dataset.body[..., 3]).tolist()) <= {0.0, 0.5, 1.0}
    assert dataset.hand_intensive[57]  # handshaking is in the hand-contact pool
    assert not dataset.hand_intensive[49]


def test_real_sample_splits_follow_the_official_protocols(real):
    dataset, _ = real
    assert dataset.splits["xsub_train"].tolist() == [0]  # subject 1 trains, subject 20 tests
    assert dataset.splits["xsub_val"].tolist() == [1, 2, 3, 4, 5]
    assert dataset.splits["xview_train"].tolist() == [1, 2, 3, 4, 5]  # camera 3 trains
    assert dataset.splits["xview_val"].tolist() == [0]  # camera 1 tests


def test_parser_reads_the_documented_fields(shared_file):
    parsed = read_skeleton_file(shared_file("ntu_samples/S001C001P001R001A050.skeleton"))
    assert parsed.num_frames == 74
    assert parsed.body_counts.tolist() == [2] * 74
    assert [b.body_id for b in parsed.bodies] == ["72057594037932185", "72057594037932127"]
    first = parsed.bodies[0]
    assert len(first) == 74
    np.testing.assert_allclose(first.xyz[0, 0], [-0.8514767, 0.1916033, 3.384463], rtol=1e-6)
    assert first.state[0, :6].tolist() == [2, 2, 2, 2, 2, 1]


def test_crlf_copy_parses_identically(shared_file, tmp_path):
    source = shared_file("ntu_samples/S017C003P020R002A056.skeleton")
    crlf = tmp_path / source.name
    crlf.write_bytes(source.read_bytes().replace(b"\n", b"\r\n"))
    assert b"\r\n" in crlf.read_bytes()
    lf_sample, crlf_sample = read_ntu_sample(source), read_ntu_sample(crlf)
    np.testing.assert_array_equal(lf_sample.body, crlf_sample.body)
    np.testing.assert_array_equal(lf_sample.timestamps, crlf_sample.timestamps)


def test_noisy_and_short_bodies_are_removed_and_actors_ranked_by_motion(tmp_path):
    frames = []
    for f in range(40):
        bodies = [("still", standing(f, 0.8, 0.01)), ("noise", lying(f)), ("mover", standing(f, -0.8, 0.3))]
        if f < 5:
            bodies.append(("blip", standing(f, 0.0, 0.5)))  # tracked for 5 frames only
        frames.append(bodies)
    frames.append([])  # a frame with no body at all
    frames.append([("still", standing(41, 0.8, 0.01))])
    path = tmp_path / "S001C002P003R001A060.skeleton"
    path.write_text(skeleton_text(frames, newline="\r\n"))
    ranked = rank_bodies(read_skeleton_file(path).bodies)
    assert [b.body_id for b in ranked] == ["mover", "still"]
    sample = read_ntu_sample(path)
    assert sample.persons == 2
    assert sample.num_frames == 41  # the empty frame 40 is dropped
    np.testing.assert_allclose(sample.timestamps[-2:], [39 / 30, 41 / 30])
    np.testing.assert_allclose(sample.body[0, 0, :, :3], standing(0, -0.8, 0.3), atol=1e-6)
    np.testing.assert_allclose(sample.body[1, 0, :, :3], standing(0, 0.8, 0.01), atol=1e-6)
    assert not sample.body[0, -1].any()  # the mover is absent in the last frame
    assert (sample.body[1, :, :, 3] == 1.0).all()


def test_bodies_without_shared_frames_continue_one_actor():
    def body(body_id: str, frames: range, shift: float) -> KinectBody:
        xyz = np.stack([standing(f, shift, 0.2) for f in frames]).astype(np.float32)
        return KinectBody(body_id, np.array(frames), xyz, np.full((len(frames), 25), 2))

    first, second, third = (
        body("a", range(20), 0.0),
        body("b", range(20, 40), 0.0),
        body("c", range(40), 1),
    )
    actors = assign_actors([first, third, second])
    assert [[b.body_id for b in slot] for slot in actors] == [["a", "b"], ["c"]]
    extra = body("d", range(10, 30), 2.0)
    assert sum(len(slot) for slot in assign_actors([first, third, second, extra])) == 3  # d is dropped


def test_missing_skeleton_list_entries_are_skipped(shared_file, ntu_meta, tmp_path):
    source = shared_file("ntu_samples/S017C003P020R002A054.skeleton")
    shutil.copy(source, tmp_path / source.name)
    shutil.copy(source, tmp_path / "S017C003P020R001A059.skeleton")  # named in the official lists
    shutil.copy(source, tmp_path / "S017C003P020R001A059_copy.skeleton")  # so is its copy
    (tmp_path / "S001C001P001R001A001.skeleton").write_text("3\n1\n")  # truncated
    dataset, report = import_ntu(tmp_path, ntu_meta)
    assert dataset.names.tolist() == ["S017C003P020R002A054"]
    reasons = {item: reason for item, reason, _ in report.skipped}
    assert reasons == {
        "S017C003P020R001A059": "in the official missing-skeleton list",  # both files
        "S001C001P001R001A001": "unreadable .skeleton file",
    }
    details = {item: detail for item, _, detail in report.skipped}
    assert "missing_skeletons" in details["S017C003P020R001A059"]


def test_without_metadata_classes_get_placeholder_names(shared_file):
    dataset, report = import_ntu(shared_file("ntu_samples/S017C003P020R002A058.skeleton"))
    assert dataset.class_names[57] == "A058"
    assert any("no metadata" in note for note in report.notes)


def test_a_metadata_folder_without_class_names_is_refused_before_any_file_is_parsed(
    shared_file, tmp_path, monkeypatch
):
    """On the whole of NTU120 the bad --meta was named after 114 000 files had been read."""
    from bharnet_ros.training.importers import ntu

    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "NTU_RGBD_samples_with_missing_skeletons.txt").write_text("S001C001P001R001A001\n")
    monkeypatch.setattr(ntu, "_read_samples", lambda *args: pytest.fail("files parsed first"))
    with pytest.raises(DatasetError, match="class-name file"):
        import_ntu(shared_file("ntu_samples"), tmp_path / "meta")


def test_broken_files_and_names_are_refused():
    with pytest.raises(NtuFormatError, match="truncated"):
        parse_skeleton_text("2\n1\n")
    with pytest.raises(NtuFormatError, match="expected a count"):
        parse_skeleton_text("1\nx\n")
    text = skeleton_text([[("7", standing(0, 0.0, 0.0))]])
    with pytest.raises(NtuFormatError, match="not a number"):
        parse_skeleton_text(text.replace(" 100 200 ", " 100 abc ", 1))
    with pytest.raises(NtuFormatError, match="left after"):
        parse_skeleton_text("1\n0\n7\n")
    with pytest.raises(ValueError, match="SsssCcccPpppRrrrAaaa"):
        NtuIds.parse("clip_0001")
    with pytest.raises(ValueError, match="SsssCcccPpppRrrrAaaa"):  # Arabic-Indic digits read as 1
        NtuIds.parse("S018C002P045R001A\u0661\u0662\u0660")
    assert NtuIds.parse("S018C002P045R001A120") == NtuIds(18, 2, 45, 1, 120)
    assert NtuIds.parse("S018C002P045R001A120_copy").name == "S018C002P045R001A120"
    # ids outside NTU's ranges were read and put in splits (camera 0 in xview_val, setup 999 in
    # xset_val), and A0501 was read as A050
    for name, field in (("S001C000P001R001A050", "C000"), ("S999C001P001R001A050", "S999"),
                        ("S001C001P107R001A050", "P107"), ("S001C001P001R003A050", "R003")):  # fmt: skip
        with pytest.raises(NtuFormatError, match=f"{field} in .* is no NTU id"):
            NtuIds.parse(name)
    with pytest.raises(ValueError, match="SsssCcccPpppRrrrAaaa"):
        NtuIds.parse("S001C001P001R001A0501")


def test_benchmark_rules():
    subjects, cameras, setups = np.array([1, 3, 103]), np.array([1, 2, 3]), np.array([18, 19, 32])
    splits = ntu_splits(subjects, cameras, setups, ("xsub", "xview", "xset"))
    assert splits["xsub_train"].tolist() == [0, 2]
    assert splits["xview_train"].tolist() == [1, 2]
    assert splits["xset_train"].tolist() == [0, 2]
    assert splits["xset_val"].tolist() == [1]


ONE_BODY = skeleton_text([[("7", standing(0, 0.0, 0.0))]])


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("99999999999\n" + ONE_BODY.split("\n", 1)[1], "header says 99999999999 frames"),
        ("1\n7\n" + ONE_BODY.split("\n", 2)[2] * 7, "7 bodies; Kinect tracks at most 6"),
        ("1\n999999999999999\n" + ONE_BODY.split("\n", 2)[2], "Kinect tracks at most 6"),
        ("1\n1\n7 0 1 1 1 1 0 0.1 0.2 2\n99999999999999\n", "99999999999999 joints"),
        ("9" * 10_000 + "\n", "a field of 10000 characters"),
        (ONE_BODY.replace(" 100 200 ", " 100 " + "2" * 1_000_000 + " ", 1), "a field of 1000000 characters"),
        (ONE_BODY.replace(" 0 0 0 2", " 0 0 0 7", 1), "trackingState"),
        (ONE_BODY.replace(" 0 0 0 2", " 0 0 0 nan", 1), "trackingState"),
    ],
    ids=[
        "huge frame count",
        "7 bodies",
        "huge body count",
        "huge joint count",
        "giant count",
        "giant field",
        "state 7",
        "state nan",
    ],
)
def test_header_counts_and_giant_fields_are_refused_before_allocating(text, reason):
    tracemalloc.start()
    try:
        with pytest.raises(NtuFormatError, match=re.escape(reason)):
            parse_skeleton_text(text)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * len(text) + (1 << 20)  # sized by the text, not by a count or the longest field


@pytest.mark.parametrize(
    ("name", "text", "reason"),
    [
        ("S001C001P001R001A000", ONE_BODY, "A000"),
        ("S001C001P001R001A121", ONE_BODY, "A121"),
        ("S001C001P001R001A001", "0\n", "no body in any frame"),
        ("S001C001P001R001A001", "", "empty"),
    ],
    ids=["action 0", "action 121", "no frames", "empty file"],
)
def test_a_bad_file_in_a_folder_is_skipped_and_the_good_one_kept(tmp_path, name, text, reason):
    (tmp_path / "S001C001P001R001A002.skeleton").write_text(skeleton_text([[("7", standing(0, 0, 0))]]))
    (tmp_path / f"{name}.skeleton").write_text(text)
    dataset, report = import_ntu(tmp_path)
    assert dataset.names.tolist() == ["S001C001P001R001A002"]
    [(item, why, detail)] = report.skipped
    assert (item, why) == (name, "unreadable .skeleton file")
    assert reason in detail


def test_a_file_larger_than_any_real_one_is_refused_unread(tmp_path, monkeypatch):
    path = tmp_path / "S001C001P001R001A001.skeleton"
    path.write_text(ONE_BODY)
    monkeypatch.setattr(importers, "MAX_TEXT_FILE_BYTES", len(ONE_BODY) - 1)
    with pytest.raises(DatasetError, match="is it the right file"):
        read_ntu_sample(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1\tdrink water\n2\teat meal\n", ["drink water", "eat meal"]),
        ("index\tname\n1\tdrink water\n2\teat meal\n", ["drink water", "eat meal"]),  # read as class 0
        ("drink water\neat meal\n", ["drink water", "eat meal"]),
        ("2\teat meal\n1\tdrink water\n", None),
        ("1\tdrink water\n3\teat meal\n", None),
    ],
)
def test_class_names_are_placed_by_their_index(tmp_path, text, expected):
    from bharnet_ros.training.importers.ntu import read_class_names

    (tmp_path / "ntu120_class_names.tsv").write_text(text)
    if expected is None:
        with pytest.raises(DatasetError, match="indices 1, 2, 3, ... in order"):
            read_class_names(tmp_path)
    else:
        assert read_class_names(tmp_path) == expected


def test_a_linked_folder_of_samples_is_read(tmp_path):
    """rglob passed linked folders over: the import said `skipped: 0` with the linked samples missing."""
    elsewhere, source = tmp_path / "elsewhere", tmp_path / "ntu"
    elsewhere.mkdir()
    source.mkdir()
    (elsewhere / "S001C001P001R001A002.skeleton").write_text(skeleton_text([[("7", standing(0, 0, 0))]]))
    (source / "S001C001P001R001A003.skeleton").write_text(skeleton_text([[("7", standing(0, 0, 0))]]))
    (source / "linked").symlink_to(elsewhere)
    (source / "loop").symlink_to(source)  # read once, not forever
    (source / "S001C001P002R001A050.skeleton").symlink_to(tmp_path / "gone")  # listed, not dropped unseen
    dataset, report = import_ntu(source)
    assert dataset.names.tolist() == ["S001C001P001R001A002", "S001C001P001R001A003"]
    assert [(Path(item).name, why) for item, why, _ in report.skipped] == [
        ("S001C001P002R001A050.skeleton", "not a regular file")
    ]
