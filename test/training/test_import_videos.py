"""``importers/videos.py`` without MediaPipe: file-name patterns, people, name clashes, bad files.

Listing the jobs reads no file, so empty files stand in for videos here; skeleton files are
written by the project's own synthetic generator.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bharnet_ros.training.dataset import DatasetError
from bharnet_ros.training.importers import ImportReport
from bharnet_ros.training.importers.videos import PatternError, compile_pattern, find_jobs, read_skeleton_file

HRI = "{label}_{take}_{distance}_{framing}"


def touch(root: Path, *relative: str) -> Path:
    """Empty files at ``root/relative`` (the job list looks only at names)."""
    for name in relative:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")
    return root


def jobs_of(root: Path, pattern: str | None = HRI, subject: str | None = None):
    report = ImportReport()
    return find_jobs(root, pattern, subject, report), report


@pytest.mark.parametrize(
    ("pattern", "stem", "fields"),
    [
        (
            HRI,
            "turn_back_1_1m_upper",
            {"label": "turn_back", "take": "1", "distance": "1m", "framing": "upper"},
        ),
        (HRI, "come_2_4m_full", {"label": "come", "take": "2", "distance": "4m", "framing": "full"}),
        ("{subject}-{label}_{take}", "S7-slow_down_3", {"subject": "S7", "label": "slow_down", "take": "3"}),
        ("{take}_{label}", "1_turn_back", {"take": "1", "label": "turn_back"}),
        ("{label}-{take}", "wave-1", {"label": "wave", "take": "1"}),
        ("{label}take{take}x{size}", "wavetake12x3", {"label": "wave", "take": "12", "size": "3"}),
        (
            "person{subject}take{take}_{label}",
            "personAlberttake3_wave",
            {"subject": "Albert", "take": "3", "label": "wave"},
        ),
    ],
)
def test_a_label_with_separators_takes_what_the_other_fields_leave(pattern, stem, fields):
    assert compile_pattern(pattern).match(stem).groupdict() == fields


def test_fields_between_letters_or_digits_stop_at_the_next_one_so_long_names_cannot_stall():
    """With a lazy match per field, this stem took about half an hour against this pattern."""
    regex = compile_pattern("{label}0{a}0{b}0{c}0{d}0{e}x")
    assert regex.match("0" * 250) is None
    assert regex.match("wave0a0b0c0d0ex").groupdict() == {
        "label": "wave",
        "a": "a",
        "b": "b",
        "c": "c",
        "d": "d",
        "e": "e",
    }


def test_the_person_is_the_first_folder_below_src_that_is_not_a_videos_folder(tmp_path):
    root = touch(
        tmp_path / "people",
        "S7/videos/come_1_1m_upper.avi",
        "S7/dynamic_videos/turn_back_1_1m_upper.avi",
        "S8/left_2_4m_full.npz",
    )
    jobs, report = jobs_of(root)
    assert [job.attributes["subject"] for job in jobs] == ["S7", "S7", "S8"]
    assert [job.name for job in jobs] == [
        "S7/turn_back_1_1m_upper",
        "S7/come_1_1m_upper",
        "S8/left_2_4m_full",
    ]
    assert [job.label for job in jobs] == ["turn_back", "come", "left"]
    assert report.notes == []


def test_a_persons_own_folder_gives_its_name_with_a_note(tmp_path):
    root = touch(tmp_path / "S9", "come_1_1m_upper.npz", "videos/left_2_4m_full.avi")
    jobs, report = jobs_of(root)
    assert [job.attributes["subject"] for job in jobs] == ["S9", "S9"]
    assert [job.name for job in jobs] == ["S9/come_1_1m_upper", "S9/left_2_4m_full"]
    assert len(report.notes) == 1
    assert "'S9'" in report.notes[0]
    assert "--subject" in report.notes[0]

    jobs, report = jobs_of(root, subject="ann")
    assert [job.attributes["subject"] for job in jobs] == ["ann", "ann"]
    assert report.notes == []


def test_a_videos_folder_given_as_src_belongs_to_the_person_above_it(tmp_path):
    root = touch(tmp_path / "S7" / "videos", "come_1_1m_upper.npz")
    jobs, _ = jobs_of(root)
    assert [job.attributes["subject"] for job in jobs] == ["S7"]  # was "videos", for everyone


def test_per_person_files_of_a_multi_extract_keep_their_fields_and_say_their_track(tmp_path):
    """``bharnet extract --backend multi`` writes <stem>_p<id>.npz: the pattern read one field
    too many there, and each take became a class of its own."""
    root = touch(
        tmp_path / "S7", "turn_back_1_1m_upper_p0.npz", "turn_back_1_1m_upper_p12.npz", "x_2_4m_full.npz"
    )
    jobs, _ = jobs_of(root)
    assert [(job.label, job.name, job.attributes) for job in jobs] == [
        ("turn_back", "S7/turn_back_1_1m_upper_p0", {**FIELDS_1M, "track": "0"}),
        ("turn_back", "S7/turn_back_1_1m_upper_p12", {**FIELDS_1M, "track": "12"}),
        ("x", "S7/x_2_4m_full", {"subject": "S7", "take": "2", "distance": "4m", "framing": "full"}),
    ]
    own = touch(tmp_path / "S8", "wave_p1.npz", "hello_p2.avi")  # _p1 is the take here
    assert [job.attributes["take"] for job in jobs_of(own, "{label}_{take}")[0]] == ["p2", "p1"]


FIELDS_1M = {"subject": "S7", "take": "1", "distance": "1m", "framing": "upper"}


@pytest.mark.parametrize("field", ["fps", "source", "track"])
def test_a_pattern_field_the_import_sets_itself_is_refused(field):
    with pytest.raises(PatternError, match=f"{{{field}}} is an attribute the import sets itself"):
        compile_pattern(f"{{label}}_{{{field}}}")


def test_fields_with_nothing_between_them_are_refused_not_guessed():
    """Under {label}{take} the name wave11 would split anywhere; a separator decides it."""
    with pytest.raises(PatternError, match="two fields with nothing between them"):
        compile_pattern("{label}{take}_{distance}")
    with pytest.raises(PatternError, match="braces around no field name"):
        compile_pattern("{label}_{Take}")
    assert compile_pattern("x{label}_{take}y").match("xwave_1y")["take"] == "1"


def test_class_folders_keep_their_layout_and_note_a_missing_person(tmp_path):
    root = touch(tmp_path / "own", "wave/a.avi", "wave/c.npz", "stop/b.mp4")
    jobs, report = jobs_of(root, pattern=None)
    assert [(job.label, job.name, job.attributes) for job in jobs] == [
        ("stop", "stop/b.mp4", {}),
        ("wave", "wave/a.avi", {}),
        ("wave", "wave/c.npz", {}),
    ]
    assert any("--subject" in note for note in report.notes)
    jobs, report = jobs_of(root, pattern=None, subject="ann")
    assert {job.attributes["subject"] for job in jobs} == {"ann"}
    touch(root, "stop/S1/stop_3.avi")  # one level deeper: not read, but said so
    jobs, report = jobs_of(root, pattern=None)
    assert len(jobs) == 3
    assert [(Path(item).name, reason) for item, reason, _ in report.skipped] == [("stop_3.avi", "not read")]


@pytest.mark.parametrize(
    "clash",
    [
        ("S7/x_1_1m_upper.avi", "S7/x_1_1m_upper.npz"),  # bharnet extract -o the video folder
        ("S7/x_1_1m_upper.avi", "S7/x_1_1m_upper.mp4"),
        ("S7/sub/x_1_1m_upper.avi", "S7/x_1_1m_upper.avi"),
        ("S7/x_1_1m_upper.avi", "S7/x_1_1m_upper_p1.npz"),  # a person's file of --backend multi: twice
    ],
)
def test_two_files_with_one_sample_name_are_refused_when_listed(tmp_path, clash):
    root = touch(tmp_path / "people", *clash, "S7/come_1_1m_upper.avi")
    with pytest.raises(DatasetError) as refused:
        jobs_of(root)
    message = str(refused.value)
    assert "\n" not in message
    assert all(name in message for name in clash)
    assert "come_1_1m_upper" not in message


@pytest.mark.parametrize(
    "clash",
    [
        ("wave/x.avi", "wave/x.npz"),
        ("wave/x.avi", "wave/x.mp4"),
        ("wave/caf\u00e9.avi", "wave/cafe\u0301.avi"),  # one NFC name: found after the pose stage
    ],
)
def test_one_clip_twice_in_a_class_folder_is_refused(tmp_path, clash):
    """Class-folder names keep the extension, so a video and the skeleton file beside it (or
    two encodings of one clip) became two samples, one perhaps in training, one in validation."""
    root = touch(tmp_path / "classes", *clash, "wave/y.avi")
    with pytest.raises(DatasetError, match="give the same sample name") as refused:
        jobs_of(root, pattern=None)
    assert all(name in str(refused.value) for name in clash)
    fine = touch(tmp_path / "fine", "wave/x.avi", "wave/y.npz", "wave/z_p0.npz", "wave/z_p1.npz")
    assert [job.name for job in jobs_of(fine, None)[0]] == [
        "wave/x.avi",
        "wave/y.npz",
        "wave/z_p0.npz",
        "wave/z_p1.npz",
    ]  # two persons of one video are two samples


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: b"",  # 0 bytes
        lambda data: data[: len(data) // 2],  # truncated
        lambda data: data[:100] + bytes(200) + data[300:],  # corrupt in the middle
        lambda data: b"x_1_1m_upper\n",  # a text file
    ],
)
def test_a_damaged_skeleton_file_gives_a_reason_not_an_exception(tmp_path, damage):
    from bharnet_ros.training import synth

    good = synth.generate_sequence("wave", np.random.default_rng(0), fps=15.0).save(tmp_path / "good.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(damage(Path(good).read_bytes()))
    outcome = read_skeleton_file(bad)
    assert isinstance(outcome, str)
    assert outcome.startswith("unreadable skeleton file: ")
    assert outcome.split(": ", 1)[1]


def test_a_skeleton_file_no_pose_stage_writes_is_skipped_not_fatal(tmp_path):
    """An ntu25 world-space file loaded, then made the whole import fail after the pose stage."""
    from bharnet_ros.core.skeleton import SkeletonSequence

    body, hands = np.full((3, 25, 4), 0.5), np.zeros((3, 2, 21, 4))
    kinect = SkeletonSequence(
        np.arange(3.0), body, hands, np.zeros((3, 2), bool), layout="ntu25", space="world"
    )
    outcome = read_skeleton_file(kinect.save(tmp_path / "kinect.npz"))
    assert outcome == (
        "unreadable skeleton file: a ntu25 skeleton in world space, where bharnet extract writes "
        "mediapipe33 in image space"
    )


def test_labels_that_differ_only_in_case_are_refused_before_the_pose_stage(tmp_path):
    """Yes_5 and yes_4 became two classes, "Yes" and "yes"."""
    from bharnet_ros.training.importers.videos import import_videos

    root = touch(tmp_path / "S7", "Yes_1_1m_upper.avi", "yes_2_1m_upper.avi")  # empty: never opened
    with pytest.raises(DatasetError, match="name one gesture two ways, 'Yes' and 'yes'"):
        import_videos(root, pattern=HRI)


def test_the_class_names_are_checked_before_the_pose_stage(tmp_path):
    """An unknown --rename OLD was found only after every video had gone through MediaPipe."""
    from bharnet_ros.training.importers.videos import import_videos

    root = touch(tmp_path / "S7", "stop_1_1m_upper.avi", "come_1_1m_upper.avi")
    seen = []

    def check(labels: list[str]) -> None:
        seen.append(labels)
        raise DatasetError("no class 'stpo'")

    with pytest.raises(DatasetError, match="no class 'stpo'"):
        import_videos(root, pattern=HRI, check_labels=check)
    assert seen == [["come", "stop"]]


def test_an_interruption_while_the_pose_pool_starts_is_not_hidden_by_its_shutdown(monkeypatch):
    """SIGTERM (raised as KeyboardInterrupt) during the pool's start left its manager thread
    unjoinable, and the pool's own shutdown raised a RuntimeError over it: exit 1, not 130."""
    from bharnet_ros.training.importers import videos

    class StartInterrupted:
        """ProcessPoolExecutor at the edge: interrupted as it starts, then unjoinable, as the real one."""

        def __init__(self, *args, **kwargs) -> None:
            pass

        def map(self, *args, **kwargs):
            raise KeyboardInterrupt

        def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
            raise RuntimeError("cannot join thread before it is started")

    monkeypatch.setattr(videos, "ProcessPoolExecutor", StartInterrupted)
    jobs = [videos.VideoJob(Path(f"{name}.avi"), "wave", f"S1/{name}") for name in ("a", "b")]
    with pytest.raises(KeyboardInterrupt):
        list(videos._extract_all(jobs, "holistic", 2))


def test_a_linked_person_folder_is_read_and_a_link_loop_ends(tmp_path):
    """rglob did not enter linked folders: S2's clips were left out, 'skipped: 0'."""
    elsewhere = touch(tmp_path / "disk2" / "S2", "come_1_1m_upper.npz")
    root = touch(tmp_path / "people" / "S1", "wave_1_1m_upper.npz")
    (root.parent / "S2").symlink_to(elsewhere)
    (root / "loop").symlink_to(root)
    jobs, _ = jobs_of(root.parent)
    assert [job.name for job in jobs] == ["S1/wave_1_1m_upper", "S2/come_1_1m_upper"]


def test_hidden_files_and_macos_copies_are_passed_over(tmp_path):
    """A folder copied from a Mac was refused outright: '._wave' and 'wave', one gesture two ways."""
    root = touch(tmp_path / "people", "S1/wave_1_1m_upper.npz", "__MACOSX/S1/._wave_1_1m_upper.npz")
    touch(root, "S1/._wave_1_1m_upper.npz", "S1/.hidden_1_1m_upper.avi", ".cache/S9/come_1_1m_upper.npz")
    jobs, _ = jobs_of(root)
    assert [job.name for job in jobs] == ["S1/wave_1_1m_upper"]


def test_files_no_folder_reads_are_listed_not_dropped(tmp_path):
    """A pipe among the clips, and videos lying beside the class folders, left 'skipped: 0'."""
    import os

    root = touch(tmp_path / "people", "S1/wave_1_1m_upper.npz")
    os.mkfifo(root / "S1" / "come_1_1m_upper.npz")
    _, report = jobs_of(root)
    assert [(Path(path).name, reason) for path, reason, _ in report.skipped] == [
        ("come_1_1m_upper.npz", "not a regular file")
    ]
    classes = touch(tmp_path / "clips", "wave/a.npz", "come.npz")
    jobs, report = jobs_of(classes, pattern=None, subject="S1")
    assert [job.name for job in jobs] == ["wave/a.npz"]
    assert [(Path(path).name, reason) for path, reason, _ in report.skipped] == [("come.npz", "not read")]
    os.mkfifo(classes / "wave" / "b.avi")  # in class folders too
    (classes / "wave" / "c.mp4").symlink_to(tmp_path / "gone.mp4")
    (classes / "wave" / "d.avi").mkdir()  # a folder is not a clip, nor a refusal
    os.mkfifo(classes / "wave" / "d.avi" / "e.avi")  # one level deeper: named too
    jobs, report = jobs_of(classes, pattern=None, subject="S1")
    assert [job.name for job in jobs] == ["wave/a.npz"]
    assert sorted((Path(path).name, reason) for path, reason, _ in report.skipped) == [
        ("b.avi", "not a regular file"),
        ("c.mp4", "not a regular file"),
        ("come.npz", "not read"),
        ("e.avi", "not a regular file"),
    ]


def test_one_label_in_composed_and_decomposed_unicode_is_one_class(tmp_path):
    """macOS writes names decomposed: 'café' from a Mac and from Linux were two classes printed alike."""
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    root = touch(tmp_path / "people", f"S1/{composed}_1_1m_upper.npz", f"S2/{decomposed}_1_1m_upper.npz")
    jobs, _ = jobs_of(root)
    assert {job.label for job in jobs} == {composed}


def test_a_class_name_that_cannot_be_saved_is_refused_before_the_pose_stage(tmp_path, monkeypatch):
    from bharnet_ros.training.importers import videos

    root = touch(tmp_path / "S7", "w" * 201 + "_1_1m_upper.avi", "stop_1_1m_upper.avi")
    monkeypatch.setattr(videos, "_extract_all", lambda *args: pytest.fail("the pose stage ran"))
    with pytest.raises(DatasetError, match="is not printable text of at most 200 characters"):
        videos.import_videos(root, pattern=HRI)
