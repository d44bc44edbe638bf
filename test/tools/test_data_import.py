"""``bharnet import`` end to end through the CLI entry point."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bharnet_ros.cli import main
from bharnet_ros.training.dataset import SkeletonDataset


def test_import_ntu_with_metadata(ntu_samples, ntu_meta, tmp_path, capsys):
    out = tmp_path / "ntu.npz"
    argv = ["import", "ntu", str(ntu_samples), "-o", str(out), "--meta", str(ntu_meta)]
    assert main(argv) == 0
    dataset = SkeletonDataset.load(out)
    assert len(dataset) == 6
    assert dataset.class_names[54] == "hugging other person"
    assert sorted(dataset.splits) == [f"{b}_{p}" for b in ("xset", "xsub", "xview") for p in ("train", "val")]
    printed = capsys.readouterr().out
    assert "6 samples, 403 frames, 60 classes (6 with samples)" in printed
    assert "skipped: 0" in printed


def test_import_writes_nothing_into_its_metadata_folder(shared_file, tmp_path, capsys):
    meta = tmp_path / "meta"
    meta.mkdir()
    source = shared_file("ntu_samples/S017C003P020R002A057.skeleton")
    assert main(["import", "ntu", str(source), "--meta", str(meta), "-o", str(meta / "out.npz")]) == 2
    assert f"is inside the input folder {meta}" in capsys.readouterr().err
    assert list(meta.iterdir()) == []


def test_import_ntu_one_benchmark(shared_file, tmp_path):
    out = tmp_path / "ntu"
    source = shared_file("ntu_samples/S017C003P020R002A057.skeleton")
    assert main(["import", "ntu", str(source), "-o", str(out), "--benchmark", "xset"]) == 0
    dataset = SkeletonDataset.load(tmp_path / "ntu.npz")
    assert dataset.splits["xset_val"].tolist() == [0]  # setup 17 is odd
    assert sorted(dataset.splits) == ["xset_train", "xset_val"]


def test_import_mpdata_raw_folder_lists_skipped_classes(mp_raw_example, tmp_path, capsys):
    out = tmp_path / "mp.npz"
    argv = ["import", "mpdata", str(mp_raw_example), "-o", str(out), "--classes", "hello,thanks,iloveyou"]
    assert main(argv) == 0
    assert SkeletonDataset.load(out).names.tolist() == ["hello/0"]
    printed = capsys.readouterr().out
    assert "skipped: 2" in printed
    assert "2 class without sequences" in printed


def test_import_nucla_default_benchmark(tmp_path, capsys):
    source = tmp_path / "nucla"
    source.mkdir()
    for name, label in (("a01_s01_e01_v01", 1), ("a02_s01_e01_v03", 2)):
        record = {"file_name": name, "skeletons": np.ones((4, 20, 3)).tolist(), "label": label}
        (source / f"{name}.json").write_text(json.dumps(record))
    assert main(["import", "nucla", str(source), "-o", str(tmp_path / "ucla.npz")]) == 0
    assert "splits: xview_train 1, xview_val 1" in capsys.readouterr().out


def test_missing_source_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["import", "ntu", str(tmp_path / "nowhere"), "-o", str(tmp_path / "x.npz")]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1
    assert "does not exist" in captured.err
    assert not (tmp_path / "x.npz").exists()


def test_source_without_samples_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["import", "ntu", str(tmp_path / "empty"), "-o", str(tmp_path / "x.npz")]) == 2
    assert "no .skeleton files" in capsys.readouterr().err


def test_import_videos_runs_the_pose_stage_per_class_folder(tmp_path, shared_file, capsys):
    import shutil

    clip = shared_file("videos/sign_dobrii_den.mp4")
    for name in ("greet", "sign"):
        (tmp_path / "videos" / name).mkdir(parents=True)
        shutil.copy(clip, tmp_path / "videos" / name / "a.mp4")  # a scratch copy inside tmp_path only
    (tmp_path / "videos" / "sign" / "broken.mp4").write_bytes(b"not a video")
    out = tmp_path / "own.npz"
    assert (
        main(["import", "videos", str(tmp_path / "videos"), "-o", str(out), "--rename", "greet=hello"]) == 0
    )
    dataset = SkeletonDataset.load(out)
    assert dataset.class_names == ["hello", "sign"]
    assert len(dataset) == 2
    assert dataset.layout == "mediapipe33"
    assert "unreadable video" in capsys.readouterr().out + str(dataset.notes)


def test_rename_of_an_unknown_class_is_a_one_line_error(tmp_path, shared_file, capsys):
    source = shared_file("mp_holistic_signs/signer_25kamalesh.npz")
    code = main(["import", "mpdata", str(source), "-o", str(tmp_path / "x.npz"), "--rename", "nope=x"])
    assert code == 2
    assert "no class 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("pairs", [["hello=thanks", "thanks=bye"], ["hello=thanks", "thanks=hello"]])
def test_chained_renames_are_refused_as_data_relabel_refuses_them(tmp_path, shared_file, capsys, pairs):
    """Each pair applied once: hello=thanks thanks=bye merged nothing, and said nothing."""
    source = shared_file("mp_holistic_signs/signer_25kamalesh.npz")
    argv = ["import", "mpdata", str(source), "-o", str(tmp_path / "x.npz")]
    assert main([*argv, *(f"--rename={pair}" for pair in pairs)]) == 2
    assert "thanks is both renamed and a new name" in capsys.readouterr().err
    assert not (tmp_path / "x.npz").exists()


def hri_clips(shared_file, root, layout: dict[str, list[str]]):
    """Link real HRI clips into ``root/<person>/<clip>`` (links only; nothing is copied)."""
    for person, clips in layout.items():
        (root / person).mkdir(parents=True)
        for clip in clips:
            (root / person / clip).symlink_to(shared_file(f"hri_gestures/{person}/{clip}"))
    return root


def test_import_videos_with_a_pattern_keeps_people_and_conditions(tmp_path, shared_file, capsys):
    layout = {"S6": ["left_3_6m_full.avi", "come_1_1m_upper.avi"], "S2": ["left_2_4m_full.avi"]}
    source = hri_clips(shared_file, tmp_path / "hri", layout)
    (source / "S2" / "notes.avi").symlink_to(shared_file("hri_gestures/S2/yes_1_1m_upper.avi"))
    out = tmp_path / "hri.npz"
    pattern = "{label}_{take}_{distance}_{framing}"
    argv = [
        "import",
        "videos",
        str(source),
        "--pattern",
        pattern,
        "-o",
        str(out),
        "--jobs",
        "2",
        "--no-progress",
    ]
    assert main(argv) == 0
    data = SkeletonDataset.load(out)
    assert data.class_names == ["come", "left"]
    assert data.names.tolist() == ["S2/left_2_4m_full", "S6/come_1_1m_upper", "S6/left_3_6m_full"]
    assert data.subject_names().tolist() == ["S2", "S6", "S6"]
    assert data.attribute("distance").tolist() == ["4m", "1m", "6m"]
    assert data.attribute("framing").tolist() == ["full", "upper", "full"]
    assert data.attribute("fps").tolist() == ["20", "10", "10"]  # S6 was filmed at 10 fps
    assert data.attribute("source").tolist() == ["hri"] * 3
    printed = capsys.readouterr().out
    assert "name does not match --pattern" in printed
    assert "notes.avi" in printed


def test_import_videos_reads_extracted_skeletons_and_a_given_subject(tmp_path, capsys):
    from bharnet_ros.training import synth

    folder = tmp_path / "skeletons"
    for take in (1, 2):
        sequence = synth.generate_sequence("wave", np.random.default_rng(take), fps=15.0)
        sequence.save(folder / f"wave-{take}.npz")
    out = tmp_path / "own.npz"
    argv = [
        "import",
        "videos",
        str(folder),
        "--pattern",
        "{label}-{take}",
        "--subject",
        "ann",
        "-o",
        str(out),
    ]
    assert main([*argv, "--no-progress"]) == 0
    data = SkeletonDataset.load(out)
    assert data.names.tolist() == ["ann/wave-1", "ann/wave-2"]
    assert data.attribute("fps").tolist() == ["15", "15"]
    assert data.attribute("take").tolist() == ["1", "2"]


def test_a_pattern_without_a_label_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "v").mkdir()
    assert (
        main(["import", "videos", str(tmp_path / "v"), "--pattern", "{take}", "-o", str(tmp_path / "x")]) == 2
    )
    assert "needs a {label} field" in capsys.readouterr().err


def test_people_imported_separately_train_together(tmp_path, person_file):
    """`bharnet train --train S1.npz S2.npz`: equal sample names are qualified, not refused."""
    files = [person_file(tmp_path, subject) for subject in ("S1", "S2")]
    data = SkeletonDataset.load(files[0])
    assert data.names[0] == "wave_0"
    from bharnet_ros.training.data import load_datasets

    merged = load_datasets(files)
    assert merged.names.tolist()[:1] + merged.names.tolist()[-1:] == ["S1/wave_0", "S2/right_1"]


def test_crlf_ntu_file_with_a_suffixed_name_imports_and_a_bad_name_says_why(shared_file, tmp_path, capsys):
    original = shared_file("ntu_samples/S017C003P020R002A057.skeleton").read_bytes()
    crlf = original.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    (tmp_path / "S017C003P020R002A057_copy.skeleton").write_bytes(crlf)
    assert (
        main(
            ["import", "ntu", str(tmp_path / "S017C003P020R002A057_copy.skeleton"), "-o", str(tmp_path / "a")]
        )
        == 0
    )
    assert SkeletonDataset.load(tmp_path / "a.npz").subjects.tolist() == [20]
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "my_recording.skeleton").write_bytes(crlf)
    capsys.readouterr()
    assert (
        main(
            [
                "import",
                "ntu",
                str(tmp_path / "bad" / "my_recording.skeleton"),
                "-o",
                str(tmp_path / "b"),
                "--no-progress",
            ]
        )
        == 2
    )
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert "my_recording" in error
    assert "does not contain exactly one NTU sample name" in error


def test_signer_files_drop_the_empty_class_and_honour_classes(mp_signers, tmp_path, capsys):
    source = mp_signers  # the four signer files (the raw example beside them has no .npz)
    assert main(["import", "mpdata", str(source), "-o", str(tmp_path / "all"), "--no-progress"]) == 0
    data = SkeletonDataset.load(tmp_path / "all.npz")
    assert data.class_names == ["hello", "thanks", "iloveyou"]
    assert "classes without samples dropped: blank" in capsys.readouterr().out
    assert sorted(set(data.subject_names().tolist())) == [
        "25kamalesh", "AkashSharma095", "Atulkoirala", "Bhavyagokhroo",
    ]  # fmt: skip
    argv = ["import", "mpdata", str(source), "-o", str(tmp_path / "two"), "--classes", "thanks,hello"]
    assert main([*argv, "--no-progress"]) == 0
    two = SkeletonDataset.load(tmp_path / "two.npz")
    assert two.class_names == ["thanks", "hello"]
    assert len(two) == 240


def test_import_never_writes_onto_its_source_and_replaces_an_output_only_with_force(
    shared_file, tmp_path, capsys
):
    source = tmp_path / "signer_x.npz"
    source.write_bytes(shared_file("mp_holistic_signs/signer_25kamalesh.npz").read_bytes())  # scratch copy
    original = source.read_bytes()
    for extra in ([], ["--force"]):
        assert main(["import", "mpdata", str(source), "-o", str(source), "--no-progress", *extra]) == 2
        assert "also an input" in capsys.readouterr().err
    assert source.read_bytes() == original
    out = tmp_path / "out.npz"
    out.write_text("an older dataset")
    assert main(["import", "mpdata", str(source), "-o", str(out), "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1
    assert "already exists; pass --force" in error
    assert out.read_text() == "an older dataset"
    assert main(["import", "mpdata", str(source), "-o", str(out), "--no-progress", "--force"]) == 0
    assert len(SkeletonDataset.load(out)) == 90
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npz", "signer_x.npz"]  # no temporary files


@pytest.mark.parametrize(
    ("output", "message"), [("folder", "is a folder"), ("file.npz/x.npz", "not a folder")]
)
def test_an_output_that_is_a_folder_or_cannot_be_created_is_one_line(tmp_path, capsys, output, message):
    (tmp_path / "folder").mkdir()
    (tmp_path / "file.npz").write_text("")
    argv = ["import", "ntu", str(tmp_path / "folder"), "-o", str(tmp_path / output)]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1
    assert message in error


def test_a_truncated_signer_file_is_skipped_and_reported(shared_file, tmp_path, capsys):
    data = shared_file("mp_holistic_signs/signer_25kamalesh.npz").read_bytes()
    (tmp_path / "signers").mkdir()
    (tmp_path / "signers" / "signer_a.npz").write_bytes(data)
    (tmp_path / "signers" / "signer_b.npz").write_bytes(data[: len(data) // 2])
    out = tmp_path / "signs.npz"
    assert main(["import", "mpdata", str(tmp_path / "signers"), "-o", str(out), "--no-progress"]) == 0
    assert len(SkeletonDataset.load(out)) == 90
    printed = capsys.readouterr().out
    assert "skipped: 1" in printed
    assert "signer_b.npz: File is not a zip file" in printed


def test_a_nan_in_one_ntu_file_skips_that_file_by_name(ntu_samples, tmp_path, capsys):
    folder = tmp_path / "ntu"
    folder.mkdir()
    for path in sorted(ntu_samples.glob("*.skeleton")):
        (folder / path.name).write_bytes(path.read_bytes())  # scratch copies
    broken = folder / "S017C003P020R002A055.skeleton"
    lines = broken.read_text().splitlines()
    joint = next(i for i, line in enumerate(lines) if len(line.split()) == 12)
    lines[joint] = " ".join(["nan", *lines[joint].split()[1:]])
    broken.write_text("\n".join(lines) + "\n")
    out = tmp_path / "ntu.npz"
    assert main(["import", "ntu", str(folder), "-o", str(out), "--no-progress"]) == 0
    assert len(SkeletonDataset.load(out)) == 5
    printed = capsys.readouterr().out
    assert "skipped: 1" in printed
    assert "S017C003P020R002A055" in printed
    assert "NaN or infinite" in printed


def test_a_truncated_video_is_skipped_not_imported_as_a_short_sample(tmp_path, capsys):
    import cv2

    folder = tmp_path / "videos" / "wave"
    folder.mkdir(parents=True)
    clip = folder / "cut.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    for i in range(40):
        writer.write(np.full((48, 64, 3), 5 * i, np.uint8))
    writer.release()
    clip.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])  # the header still says 40 frames
    from bharnet_ros.training import synth

    synth.generate_sequence("wave", np.random.default_rng(0)).save(folder / "whole.npz")
    out = tmp_path / "own.npz"
    assert main(["import", "videos", str(tmp_path / "videos"), "-o", str(out), "--no-progress"]) == 0
    assert SkeletonDataset.load(out).names.tolist() == ["wave/whole.npz"]
    printed = capsys.readouterr().out
    assert "skipped: 1" in printed
    assert "truncated or damaged" in printed


def skeleton_files(folder, *stems: str) -> None:
    """Small skeleton files as `bharnet extract` writes them, made by the synthetic generator."""
    from bharnet_ros.training import synth

    for i, stem in enumerate(stems):
        synth.generate_sequence("wave", np.random.default_rng(i), fps=15.0).save(folder / f"{stem}.npz")


def test_sigterm_during_a_pooled_import_leaves_no_pose_stage_process_behind(tmp_path, shared_file, children):
    layout = {"S2": ["left_2_4m_full.avi", "come_1_1m_upper.avi", "yes_1_1m_upper.avi"]}
    source = hri_clips(shared_file, tmp_path / "hri", layout)
    argv = ["import", "videos", str(source), "--pattern", HRI_PATTERN, "-o", str(tmp_path / "o.npz")]
    command = [sys.executable, "-m", "bharnet_ros.cli", *argv, "--jobs", "2", "--no-progress"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while len(workers := children(process.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(workers) >= 2, "the pool never started"
    process.send_signal(signal.SIGTERM)
    returncode, stderr = process.wait(timeout=60), process.stderr.read()
    assert returncode == 130, stderr[-3000:]  # what went wrong, should it ever
    assert "interrupted" in stderr
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers), "a worker outlived the command"
    assert not (tmp_path / "o.npz").exists()


HRI_PATTERN = "{label}_{take}_{distance}_{framing}"


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_empty_and_truncated_skeleton_files_are_skipped_by_path(tmp_path, capsys, jobs):
    person = tmp_path / "people" / "S7"
    skeleton_files(person, "come_1_1m_upper", "left_2_4m_full")
    (person / "empty_1_1m_upper.npz").write_bytes(b"")
    whole = (person / "left_2_4m_full.npz").read_bytes()
    (person / "cut_1_1m_upper.npz").write_bytes(whole[: len(whole) // 2])
    out = tmp_path / "own.npz"
    argv = ["import", "videos", str(tmp_path / "people"), "--pattern", HRI_PATTERN, "-o", str(out)]
    assert main([*argv, "--jobs", jobs, "--no-progress"]) == 0
    assert SkeletonDataset.load(out).names.tolist() == ["S7/come_1_1m_upper", "S7/left_2_4m_full"]
    printed = capsys.readouterr().out
    assert "skipped: 2" in printed
    assert str(person / "empty_1_1m_upper.npz") in printed
    assert str(person / "cut_1_1m_upper.npz") in printed


def test_a_video_beside_its_skeleton_file_is_refused_in_one_line_before_the_pose_stage(tmp_path, capsys):
    person = tmp_path / "people" / "S7"
    skeleton_files(person, "come_1_1m_upper")
    (person / "come_1_1m_upper.avi").write_bytes(b"not a video: the pose stage would skip it, not refuse")
    out = tmp_path / "own.npz"
    argv = ["import", "videos", str(tmp_path / "people"), "--pattern", HRI_PATTERN, "-o", str(out)]
    assert main([*argv, "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "S7/come_1_1m_upper.avi" in err
    assert "S7/come_1_1m_upper.npz" in err
    assert not out.exists()


def test_a_persons_own_folder_keeps_the_person_and_labels_with_underscores(tmp_path, capsys):
    person = tmp_path / "S7"
    (person / "videos").mkdir(parents=True)
    skeleton_files(person / "videos", "turn_back_1_1m_upper", "come_2_4m_full")
    out = tmp_path / "s7.npz"
    assert (
        main(["import", "videos", str(person), "--pattern", HRI_PATTERN, "-o", str(out), "--no-progress"])
        == 0
    )
    data = SkeletonDataset.load(out)
    assert data.class_names == ["come", "turn_back"]
    assert data.subject_names().tolist() == ["S7", "S7"]
    assert data.attribute("take").tolist() == ["2", "1"]
    assert data.attribute("distance").tolist() == ["4m", "1m"]
    assert data.attribute("framing").tolist() == ["full", "upper"]
    note = [line for line in capsys.readouterr().out.splitlines() if "'S7'" in line]
    assert len(note) == 1
    assert note[0].startswith("note: ")
    assert "--subject" in note[0]


def test_rename_onto_an_existing_class_merges_the_two(tmp_path, capsys):
    person = tmp_path / "people" / "S7"
    skeleton_files(person, "come_1_1m_upper", "left_2_4m_full", "stop_1_1m_upper")
    out = tmp_path / "own.npz"
    argv = ["import", "videos", str(tmp_path / "people"), "--pattern", HRI_PATTERN, "-o", str(out)]
    assert main([*argv, "--rename", "come=left", "--no-progress"]) == 0
    data = SkeletonDataset.load(out)
    assert data.class_names == ["left", "stop"]
    assert [data.class_names[label] for label in data.labels] == ["left", "left", "stop"]
    assert any("merged" in note for note in data.notes)
    assert "classes come, left merged into 'left'" in capsys.readouterr().out


def test_a_rename_of_a_class_whose_videos_show_nobody_is_noted_not_refused_after_the_pose_stage(
    tmp_path, capsys
):
    """It passed the check before the pose stage and failed after it, throwing the import away."""
    from bharnet_ros.core.skeleton import SkeletonSequence

    person = tmp_path / "people" / "S7"
    skeleton_files(person, "come_1_1m_upper")
    SkeletonSequence(
        np.arange(3) / 15.0, np.zeros((3, 33, 4)), np.zeros((3, 2, 21, 4)), np.zeros((3, 2))
    ).save(person / "stop_1_1m_upper.npz")  # nobody in it
    out = tmp_path / "own.npz"
    argv = ["import", "videos", str(tmp_path / "people"), "--pattern", HRI_PATTERN, "-o", str(out)]
    assert main([*argv, "--rename", "stop=halt", "--no-progress"]) == 0
    assert SkeletonDataset.load(out).class_names == ["come"]
    assert "--rename stop=halt: no sample of that class was kept" in capsys.readouterr().out
    assert main([*argv, "--rename", "stp=halt", "--no-progress", "--force"]) == 2  # a typo still is one


def test_a_merge_keeps_class_order_and_hand_flags(tmp_path):
    from bharnet_ros.tools.data_import import renamed
    from bharnet_ros.training import synth
    from bharnet_ros.training.importers import ImportReport

    sequences = [synth.generate_sequence("wave", np.random.default_rng(i)) for i in range(4)]
    data = SkeletonDataset.from_sequences(
        sequences,
        [0, 1, 2, 3],
        ["a", "b", "c", "d"],
        names=list("wxyz"),
        hand_intensive=[False, False, True, False],
    )
    report = ImportReport()
    data = renamed(data, ["c=a", "d=e", "b=e"], report)
    assert data.class_names == ["a", "e"]
    assert data.labels.tolist() == [0, 1, 0, 1]
    assert data.hand_intensive == [True, False]
    assert len(report.notes) == 2
    assert SkeletonDataset.load(data.save(tmp_path / "merged.npz")).class_names == ["a", "e"]


def one_line_error(capsys) -> str:
    """The error the last failed command printed, checked to be a single line."""
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    return error


def test_a_pkummd_video_with_bad_labels_is_skipped_and_named(tmp_path, capsys):
    for folder in ("skeleton", "label"):
        (tmp_path / "pku" / folder).mkdir(parents=True)
    for video, labels in (("0002-L", "3,0,20,1\n"), ("0003-M", "3,0,20,1\nnan,20,30,1\n")):
        np.savetxt(tmp_path / "pku" / "skeleton" / f"{video}.txt", np.ones((30, 150)), fmt="%.1f")
        (tmp_path / "pku" / "label" / f"{video}.txt").write_text(labels)
    out = tmp_path / "pku.npz"
    assert main(["import", "pkummd", str(tmp_path / "pku"), "-o", str(out), "--no-progress"]) == 0
    assert SkeletonDataset.load(out).names.tolist() == ["0002-L_0"]
    printed = capsys.readouterr().out
    assert "skipped: 1" in printed
    assert "0003-M: 0003-M.txt: action line 2 (nan,20,30): label and frames must be whole numbers" in printed


def test_a_single_ntu_file_with_a_huge_frame_count_is_one_line(tmp_path, capsys):
    path = tmp_path / "S001C001P001R001A001.skeleton"
    path.write_text("99999999999\n0\n")
    assert main(["import", "ntu", str(path), "-o", str(tmp_path / "x.npz"), "--no-progress"]) == 2
    error = one_line_error(capsys)
    assert "S001C001P001R001A001" in error
    assert "header says 99999999999 frames" in error


def test_a_nucla_file_of_the_wrong_json_type_is_skipped_and_reported(tmp_path, capsys):
    source = tmp_path / "nucla"
    source.mkdir()
    record = {"file_name": "a01_s01_e01_v01", "skeletons": np.ones((4, 20, 3)).tolist(), "label": 1}
    (source / "a01_s01_e01_v01.json").write_text(json.dumps(record))
    (source / "a02_s01_e01_v01.json").write_text(json.dumps([record]))
    (source / "a03_s01_e01_v01.json").write_text(json.dumps({**record, "skeletons": []}))
    out = tmp_path / "ucla.npz"
    assert main(["import", "nucla", str(source), "-o", str(out), "--no-progress"]) == 0
    assert SkeletonDataset.load(out).names.tolist() == ["a01_s01_e01_v01"]
    printed = capsys.readouterr().out
    assert "skipped: 2" in printed
    assert "a02_s01_e01_v01: the JSON holds a list" in printed
    assert "a03_s01_e01_v01: skeletons is an empty list" in printed


@pytest.mark.parametrize("fps", ["nan", "inf", "0", "-30", "1e9"])
def test_a_bad_fps_is_one_line_for_every_importer_that_takes_it(tmp_path, shared_file, capsys, fps):
    source = tmp_path / "nucla"
    source.mkdir()
    for kind, path in (("nucla", source), ("mpdata", shared_file("mp_holistic_signs/signer_25kamalesh.npz"))):
        argv = ["import", kind, str(path), "-o", str(tmp_path / "x.npz"), "--fps", fps, "--no-progress"]
        assert main(argv) == 2
        assert "--fps" in one_line_error(capsys)
    assert not (tmp_path / "x.npz").exists()


@pytest.mark.parametrize(("classes", "message"), [(",", "names no class"), ("hello,hello", "more than once")])
def test_an_empty_or_repeating_class_list_is_one_line(tmp_path, shared_file, capsys, classes, message):
    source = shared_file("mp_holistic_signs/signer_25kamalesh.npz")
    argv = ["import", "mpdata", str(source), "-o", str(tmp_path / "x.npz"), "--classes", classes]
    assert main(argv) == 2
    assert message in one_line_error(capsys)


@pytest.mark.parametrize(("content", "message"), [(b"\xff\xfe\x00", "not UTF-8"), (b"\n\n", "empty")])
def test_a_bad_pkummd_class_name_file_is_one_line(tmp_path, capsys, content, message):
    (tmp_path / "pku" / "skeleton").mkdir(parents=True)
    (tmp_path / "pku" / "label").mkdir()
    np.savetxt(tmp_path / "pku" / "skeleton" / "0002-L.txt", np.ones((5, 150)), fmt="%.1f")
    (tmp_path / "names.txt").write_bytes(content)
    argv = ["import", "pkummd", str(tmp_path / "pku"), "-o", str(tmp_path / "x.npz")]
    assert main([*argv, "--class-names", str(tmp_path / "names.txt")]) == 2
    assert message in one_line_error(capsys)
