"""``python -m bharnet_ros.tools.pose_compare --people``: the report it writes into the docs.

The measuring itself is tested in test/core/test_pose_eval.py; here the runs are made up, so the
test is about the command: its section, its command line and its target lines. It needs the real
clips only for the command's own check that they exist (skipped where ../shared is absent).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bharnet_ros.core.pose_eval import ComposedRun, Person
from bharnet_ros.tools import pose_compare
from bharnet_ros.tools.pose_compare import PEOPLE_GROUPS

FRAMES = 15


def made_up_runs(clips: list[Path]) -> dict[int, list[ComposedRun]]:
    """Each clip alone and the three together, every person found in every frame under one id."""

    def run(people: list[Path]) -> ComposedRun:
        persons = [
            Person(clip, clip.name.split("_")[0], ids=[k] * FRAMES, labels=[clip.name.split("_")[0]])
            for k, clip in enumerate(people)
        ]
        return ComposedRun(persons, FRAMES, [0.05] * FRAMES, [0.01] * len(people))

    return {1: [run([clip]) for clip in clips], 3: [run(clips)]}


def test_the_cli_writes_its_own_section(shared_file, monkeypatch, tmp_path):
    clips = [shared_file(f"hri_gestures/{name}_1_1m_upper.avi") for name in PEOPLE_GROUPS[0]]
    runs = made_up_runs(clips)
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n<!-- other:begin -->\nkept\n<!-- other:end -->\n")
    monkeypatch.setattr(pose_compare, "people_benchmark", lambda *args, **kwargs: runs)
    argv = ["--people", "3", "--groups", "1", "--data", str(clips[0].parents[1]), "--live-seconds", "0"]
    assert pose_compare.main([*argv, "--out", str(doc)]) == 0
    text = doc.read_text()
    assert "<!-- other:begin -->\nkept\n<!-- other:end -->" in text
    assert text.index("<!-- bench-people:begin") < text.index("<!-- bench-people:end -->")
    assert "python -m bharnet_ros.tools.pose_compare --people 3 --groups 1" in text
    assert f"| 3 | 1 | {FRAMES} |" in text
    assert "3 people: id switches ≤ 1 per 100 frames: 0.00, **met**" in text
    assert "3 people: per-person accuracy within 5 points of alone: 100 % vs 100 %, **met**" in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["{tmp}/missing.mp4"], "clip {tmp}/missing.mp4 not found; check the path"),
        (["{tmp}"], "is not a regular file (a folder or a device); give a video file"),
        (["{tmp}/text.mp4"], "cannot open {tmp}/text.mp4 as a video"),
        (["--pair", "{tmp}/text.mp4", "{tmp}/text.mp4"], "--pair clip: cannot open {tmp}/text.mp4"),
        (["--max-frames", "0", "{tmp}/text.mp4"], "--max-frames must be a whole number from 1 to 100000"),
        (["--people", "1", "--groups", "0"], "--groups must be a whole number from 1 to 10, got 0"),
        (["--people", "1", "--groups", "-9"], "--groups must be a whole number from 1 to 10, got -9"),
        (["--people", "1", "--live-seconds", "inf"], "--live-seconds inf is out of range; give 0 to 600"),
        (["--people", "1", "--live-seconds", "nan"], "--live-seconds nan is out of range"),
        (["--people", "1", "--crop", "0"], "--crop must be a whole number from 2 to 8192, got 0"),
        (["--people", "1", "--num-poses", "0"], "--num-poses must be a whole number from 1 to 16, got 0"),
        (["--people", "1", "--data", "{tmp}/text.mp4"], "--data {tmp}/text.mp4 is not a folder"),
        (
            ["--people", "1", "--live-seconds", "0.01"],
            "--live-seconds 0.01 is too short",
        ),
        (["{tmp}/text.mp4", "--out", "{tmp}/doc.md"], "--out does not apply to clips; leave it out"),
        (["{tmp}/text.mp4", "--model", "m.onnx"], "--model does not apply to clips"),
        (
            ["--pair", "{tmp}/a.mp4", "{tmp}/b.mp4", "--max-frames", "3"],
            "--max-frames does not apply to --pair",
        ),
        (["--people", "1", "--backends", "holistic"], "--backends does not apply to --people"),
        (
            ["{tmp}/text.mp4", "--people", "1"],
            "not clips and --people",
        ),
        (["{tmp}/" + "a" * 300 + ".mp4"], "File name too long"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2_before_any_work(tmp_path, monkeypatch, capsys, argv, message):
    (tmp_path / "text.mp4").write_text("not a video\n")

    def no_work(*args, **kwargs):
        raise AssertionError("the work started")

    for name in ("people_benchmark", "compare", "pair_report", "load_window_classifier"):
        monkeypatch.setattr(pose_compare, name, no_work)
    argv = [arg.format(tmp=tmp_path) for arg in argv]
    if "--people" in argv and "--data" not in argv:
        argv += ["--data", str(tmp_path)]
    assert pose_compare.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m bharnet_ros.tools.pose_compare: error: ")
    assert message.format(tmp=tmp_path) in err
    assert len(err.strip().splitlines()) == 1


def test_a_missing_clip_of_the_groups_is_one_line(tmp_path, monkeypatch, capsys):
    class Model:
        class_names = sorted({name.split("/")[1] for group in PEOPLE_GROUPS for name in group})

    monkeypatch.setattr(pose_compare, "load_window_classifier", lambda path: Model())
    argv = ["--people", "2", "--groups", "1", "--data", str(tmp_path), "--model", "m.onnx"]
    assert pose_compare.main(argv) == 2
    err = capsys.readouterr().err
    assert f"--data clip {tmp_path}/S1/attention_1_1m_upper.avi not found" in err
    assert len(err.strip().splitlines()) == 1
