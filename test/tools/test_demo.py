"""The demo's command paths: real people's clips (or synthetic gestures) -> the real graph -> timeline."""

import json

from bharnet_ros.cli import main


def test_short_synthetic_demo_prints_truth_and_recognition(tmp_path, tiny_model, capsys):
    out = tmp_path / "demo"
    argv = ["demo", "--synthetic", "--short", "--rate", "2", "--model", str(tiny_model)]
    assert main([*argv, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "truth" in printed
    assert "end-to-end latency" in printed
    summary = json.loads((out / "report" / "summary.json").read_text())
    assert [s["truth"] for s in summary["metrics"]["per_segment"]] == ["thumbs_up", "victory_sign"]
    assert summary["counts"]["actions"] > 0
    assert (out / "report" / "timeline.png").is_file()
    assert (out / "labels.csv").is_file()


def test_demo_on_a_missing_video_is_a_one_line_error(tmp_path, capsys):
    assert main(["demo", "--video", str(tmp_path / "missing.mp4"), "--out", str(tmp_path / "d")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_demo_never_deletes_a_users_files(tmp_path, tiny_model, capsys):
    out = tmp_path / "mine"
    (out / "report").mkdir(parents=True)
    (out / "report" / "notes.txt").write_text("my notes")
    (out / "thesis.tex").write_text("my thesis")
    argv = ["demo", "--synthetic", "--short", "--rate", "2", "--model", str(tiny_model), "--out", str(out)]
    assert main(argv) == 2
    assert "is not empty; pass --force" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["report", "thesis.tex"]
    assert main([*argv, "--force"]) == 0
    assert (out / "thesis.tex").read_text() == "my thesis"
    assert (out / "report" / "notes.txt").read_text() == "my notes"
    assert (out / "report" / "summary.json").is_file()
    assert sorted(p.name for p in out.iterdir()) == ["bag", "labels.csv", "report", "thesis.tex"]


def test_demo_plays_real_people_through_the_whole_graph(tmp_path, shared_file, tiny_model, capsys):
    people = tmp_path / "people" / "S6"
    people.mkdir(parents=True)
    for name in ("greeting_3_6m_full.avi", "stop_3_6m_full.avi", "come_3_6m_full.avi"):
        (people / name).symlink_to(shared_file(f"hri_gestures/S6/{name}"))
    out = tmp_path / "demo"
    argv = ["demo", "--short", "--people", str(tmp_path / "people"), "--person", "S6", "--distance", "6m"]
    assert main([*argv, "--model", str(tiny_model), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "real person S6 at 6m" in printed
    summary = json.loads((out / "report" / "summary.json").read_text())
    assert [s["truth"] for s in summary["metrics"]["per_segment"]] == ["greeting", "stop", "come"]
    assert summary["counts"]["processed"] > 0  # MediaPipe ran on the frames
    assert (out / "stream.mp4").is_file()


def test_a_refused_demo_leaves_no_out_folder(tmp_path, capsys):
    text = tmp_path / "text.mp4"
    text.write_text("not a video")
    for argv in (
        ["--video", str(tmp_path / "missing.mp4")],
        ["--video", str(text)],
        ["--synthetic", "--model", str(tmp_path / "missing.onnx")],
        ["--synthetic", "--model", str(text)],  # not a model: refused before the graph's start-up wait
        ["--synthetic", "--rate", "nan"],
        ["--synthetic", "--seed=-1"],
    ):
        assert main(["demo", *argv, "--out", str(tmp_path / "out" / "demo")]) == 2
        error = capsys.readouterr().err.strip()
        assert len(error.splitlines()) == 1
        assert "cannot write" not in error
        assert sorted(p.name for p in tmp_path.iterdir()) == ["text.mp4"]
