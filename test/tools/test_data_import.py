"""``bharnet import`` end to end through the CLI entry point."""

from __future__ import annotations

import json

import numpy as np

from bharnet_ros.cli import main
from bharnet_ros.training.dataset import SkeletonDataset


def test_import_ntu_with_metadata(shared_data, tmp_path, capsys):
    out = tmp_path / "ntu.npz"
    argv = [
        "import",
        "ntu",
        str(shared_data / "ntu_samples"),
        "-o",
        str(out),
        "--meta",
        str(shared_data / "ntu_meta"),
    ]
    assert main(argv) == 0
    dataset = SkeletonDataset.load(out)
    assert len(dataset) == 6
    assert dataset.class_names[54] == "hugging other person"
    assert sorted(dataset.splits) == ["xsub_train", "xsub_val", "xview_train", "xview_val"]
    printed = capsys.readouterr().out
    assert "6 samples, 403 frames, 60 classes (6 with samples)" in printed
    assert "skipped: 0" in printed


def test_import_ntu_one_benchmark(shared_file, tmp_path):
    out = tmp_path / "ntu"
    source = shared_file("ntu_samples/S017C003P020R002A057.skeleton")
    assert main(["import", "ntu", str(source), "-o", str(out), "--benchmark", "xset"]) == 0
    dataset = SkeletonDataset.load(tmp_path / "ntu.npz")
    assert dataset.splits["xset_val"].tolist() == [0]  # setup 17 is odd
    assert sorted(dataset.splits) == ["xset_train", "xset_val"]


def test_import_mpdata_raw_folder_lists_skipped_classes(shared_data, tmp_path, capsys):
    out = tmp_path / "mp.npz"
    source = shared_data / "mp_holistic_signs" / "raw_example_25kamalesh"
    assert main(["import", "mpdata", str(source), "-o", str(out), "--classes", "hello,thanks,iloveyou"]) == 0
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


def test_signer_files_drop_the_empty_class_and_honour_classes(shared_data, tmp_path, capsys):
    source = shared_data / "mp_holistic_signs"
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
