"""The demo's command path (short script): synthetic bag -> real recognizer node -> timeline."""

import json

from bharnet_ros.cli import main


def test_short_demo_prints_truth_and_recognition(tmp_path, tiny_model, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--short", "--rate", "2", "--model", str(tiny_model), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "truth" in printed
    assert "end-to-end latency" in printed
    summary = json.loads((out / "report" / "summary.json").read_text())
    assert [s["truth"] for s in summary["metrics"]["per_segment"]] == ["idle", "wave", "stop"]
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
    argv = ["demo", "--short", "--rate", "2", "--model", str(tiny_model), "--out", str(out)]
    assert main(argv) == 2
    assert "is not empty; pass --force" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["report", "thesis.tex"]
    assert main([*argv, "--force"]) == 0
    assert (out / "thesis.tex").read_text() == "my thesis"
    assert (out / "report" / "notes.txt").read_text() == "my notes"
    assert (out / "report" / "summary.json").is_file()
    assert sorted(p.name for p in out.iterdir()) == ["bag", "labels.csv", "report", "thesis.tex"]
