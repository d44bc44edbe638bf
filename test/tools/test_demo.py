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
