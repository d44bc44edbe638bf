"""Streams of real people's clips and the open-set check, end to end through the CLI (real MediaPipe)."""

from __future__ import annotations

import json
from collections import Counter

from bharnet_ros.cli import main
from bharnet_ros.tools.open_set import rejection_rates


def test_a_stream_of_one_persons_clips_is_composed_recorded_and_scored(
    tmp_path, shared_file, tiny_model, person_file, capsys
):
    source = tmp_path / "hri" / "S6"
    source.mkdir(parents=True)
    for name in ("come_3_6m_full.avi", "left_3_6m_full.avi", "static_3_6m_full.avi"):
        (source / name).symlink_to(shared_file(f"hri_gestures/S6/{name}"))
    dataset = person_file(tmp_path, "S7", takes=1)  # no clip of S6 in it: onsets default to 0
    out = tmp_path / "streams"
    argv = ["streams", str(tmp_path / "hri"), "--dataset", str(dataset), "--model", str(tiny_model)]
    assert main([*argv, "--out", str(out), "--gap", "1.0"]) == 0
    folder = out / "S6_6m"
    labels = (folder / "labels.csv").read_text().splitlines()
    assert labels[0] == "start,end,label"
    assert sorted(line.split(",")[2] for line in labels[1:]) == ["come", "left"]  # static only fills gaps
    report = json.loads((folder / "report" / "summary.json").read_text())
    assert report["metrics"]["segments"] == 2
    assert (folder / "stream.mp4").is_file()
    assert not (folder / "bag").exists()  # scored, then removed (--keep-bags keeps it)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["streams"] == 1
    assert summary["segments"] == 2
    assert "S6_6m: segments" in capsys.readouterr().out
    assert main([*argv, "--out", str(out)]) == 2  # an existing report is not overwritten


def test_open_set_counts_how_often_the_answer_is_none(tmp_path, shared_file, tiny_model, capsys):
    video = shared_file("videos/sign_dobrii_den.mp4")
    out = tmp_path / "open"
    assert main(["open-set", str(video), "--model", str(tiny_model), "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    row = summary["per_video"]["sign_dobrii_den"]
    assert (out / "sign_dobrii_den" / "report" / "summary.json").is_file()
    assert not (out / "sign_dobrii_den" / "bag").exists()
    assert row["decisions"] > 0
    assert 0.0 <= summary["none_rate"] <= summary["no_command_rate"] <= 1.0
    assert summary["no_command"] == ["none", "random", "static"]
    assert "pooled: none" in capsys.readouterr().out


def test_do_nothing_classes_count_as_no_command():
    rates = rejection_rates(Counter({"none": 1, "random": 2, "wave": 1}), {"none", "random"})
    assert rates == {"decisions": 4, "none_rate": 0.25, "no_command_rate": 0.75}
    assert rejection_rates(Counter(), {"none"})["no_command_rate"] is None


def test_folds_are_exported_with_the_test_mirror_their_run_was_scored_with(tmp_path):
    from bharnet_ros.tools.streams import run_test_mirror

    assert run_test_mirror(tmp_path) is None  # no summary: each checkpoint's own setting
    (tmp_path / "summary.json").write_text(json.dumps({"test_mirror": [1, 0, 2]}))
    assert run_test_mirror(tmp_path) == [1, 0, 2]
    (tmp_path / "summary.json").write_text("[1, 0]")
    assert run_test_mirror(tmp_path) is None
