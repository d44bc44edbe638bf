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
