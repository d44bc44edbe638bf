"""``python -m bharnet_ros.tools.pose_compare --people``: the report it writes into the docs.

The measuring itself is tested in test/core/test_pose_eval.py; here the runs are made up, so the
test is about the command: its section, its command line and its target lines. It needs the real
clips only for the command's own check that they exist (skipped where ../shared is absent).
"""

from __future__ import annotations

from pathlib import Path

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
