"""The demo's command paths: real people's clips (or synthetic gestures) -> the real graph -> timeline."""

import json
from pathlib import Path

import pytest

from bharnet_ros.cli import main
from bharnet_ros.core import paths
from bharnet_ros.core.annotations import load_annotations
from bharnet_ros.core.bag import SKELETON_TYPE, bag_message_counts, bag_topics
from bharnet_ros.tools import demo

SYNTHETIC_TRUTH = ["thumbs_up", "none", "victory_sign", "ok_sign", "thumbs_down", "pointing"]


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
    (out / "stream.mp4").write_bytes(b"the user's own stream")
    argv = ["demo", "--synthetic", "--short", "--rate", "2", "--model", str(tiny_model), "--out", str(out)]
    assert main(argv) == 2
    assert "is not empty; pass --force" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["report", "stream.mp4", "thesis.tex"]
    assert main([*argv, "--force"]) == 0
    assert (out / "thesis.tex").read_text() == "my thesis"
    assert (out / "report" / "notes.txt").read_text() == "my notes"
    assert (out / "report" / "summary.json").is_file()
    # a stream this input does not write was deleted as an earlier demo's: nothing showed it was
    assert (out / "stream.mp4").read_bytes() == b"the user's own stream"
    assert "stream.mp4 is not this recording's" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == [
        "bag",
        "labels.csv",
        "report",
        "stream.mp4",
        "thesis.tex",
    ]


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
        ["--people", str(tmp_path), "--distance", "**"],  # a glob pattern: a ValueError traceback
        ["--people", str(tmp_path), "--person", ".."],
        ["--video", str(text), "--synthetic"],  # options the input ignores were dropped silently
        ["--video", str(text), "--person", "S3"],
        ["--synthetic", "--distance", "1m"],
        ["--synthetic", "--people", str(tmp_path)],
        ["--video", str(text), "--seed", "5"],
        ["--people", str(tmp_path), "--seed", "5"],
        ["--video", str(text), "--short"],
        ["--people", str(tmp_path), "--person", ""],  # read as S2
    ):
        assert main(["demo", *argv, "--out", str(tmp_path / "out" / "demo")]) == 2
        error = capsys.readouterr().err.strip()
        assert len(error.splitlines()) == 1
        assert "cannot write" not in error
        assert sorted(p.name for p in tmp_path.iterdir()) == ["text.mp4"]


# --------------------------------------------------------------------------------------------------
# The default input (`make demo`, `bharnet demo` with no options): the real recordings beside the
# checkout where they are, else the synthetic script. The checkout's location and the working
# folder are the edge moved to tmp_path, so the real ../shared/data neither helps nor hides a case.
# --------------------------------------------------------------------------------------------------


def layout(tmp_path: Path, monkeypatch, recordings: bool) -> Path:
    """A checkout folder ``main`` with ``../shared/data`` beside it, which holds the recordings'
    folder hri_gestures (with an empty S2) only when ``recordings``; the demo runs from a folder
    with no ../shared. All of it under ``tmp_path``. Returns the recordings' folder, whether it
    exists or not."""
    checkout, shared = tmp_path / "work" / "main", tmp_path / "work" / "shared" / "data"
    (shared / "videos").mkdir(parents=True)  # other shared data is no reason to play people
    if recordings:
        (shared / "hri_gestures" / "S2").mkdir(parents=True)
    checkout.mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.setattr(paths, "CHECKOUT", checkout)
    monkeypatch.chdir(tmp_path / "elsewhere")
    return shared / "hri_gestures"


def test_the_default_people_are_the_recordings_beside_the_checkout(tmp_path, monkeypatch):
    people = layout(tmp_path, monkeypatch, recordings=True)
    assert demo._people_folder(None) == people.resolve()


def test_without_recordings_beside_the_checkout_there_are_no_default_people(tmp_path, monkeypatch):
    layout(tmp_path, monkeypatch, recordings=False)
    assert demo._people_folder(None) is None


def test_recordings_beside_the_working_folder_are_found_when_the_checkout_has_none(tmp_path, monkeypatch):
    """An installed copy runs from a site-packages checkout; the user's working folder may be the
    project, with the recordings beside it."""
    layout(tmp_path, monkeypatch, recordings=False)
    people = tmp_path / "shared" / "data" / "hri_gestures"
    people.mkdir(parents=True)  # ../shared/data/hri_gestures of the working folder
    assert demo._people_folder(None) == people.resolve()


class StoppedBeforeGraphError(Exception):
    """Raised instead of replaying the bag through the graph: the input is chosen and written by then."""


def stop_before_the_graph(monkeypatch) -> list[dict]:
    """Fake the demo's graph run (the replay through the ROS nodes, tested above with --synthetic
    and --people), recording what it was asked to play: these tests are about the input choice."""
    calls: list[dict] = []

    def evaluate(bag: Path, labels: Path | None, report: Path, model: Path | None, rate: float) -> dict:
        calls.append({"bag": bag, "labels": labels, "model": model, "rate": rate})
        raise StoppedBeforeGraphError

    monkeypatch.setattr(demo, "_evaluate", evaluate)
    return calls


def test_demo_without_options_or_recordings_plays_the_synthetic_script(tmp_path, monkeypatch, capsys):
    layout(tmp_path, monkeypatch, recordings=False)
    calls = stop_before_the_graph(monkeypatch)
    with pytest.raises(StoppedBeforeGraphError):
        main(["demo"])
    out = Path("out/demo")  # --out's default, in the working folder (tmp_path/elsewhere)
    printed = capsys.readouterr()
    assert "(scripted synthetic gestures)" in printed.out
    assert "note: no real recordings at" in printed.err  # an installed copy run elsewhere said nothing
    assert calls == [{"bag": out / "bag", "labels": out / "labels.csv", "model": None, "rate": 1.0}]
    assert bag_topics(out / "bag") == {"/bharnet/skeletons": SKELETON_TYPE}  # skeletons, no camera
    assert bag_message_counts(out / "bag")["/bharnet/skeletons"] == 22 * 30  # the 22 s script at 30 fps
    assert [s.label for s in load_annotations(out / "labels.csv").segments] == SYNTHETIC_TRUTH
    assert not (out / "stream.mp4").exists()


def test_demo_without_options_plays_the_people_beside_the_checkout(tmp_path, monkeypatch, capsys):
    """S2 at 4m is the default; an empty S2 stops the demo at its first clip, naming the folder used."""
    people = layout(tmp_path, monkeypatch, recordings=True)
    calls = stop_before_the_graph(monkeypatch)
    assert main(["demo"]) == 2
    assert f"no greeting clip at 4m in {people.resolve() / 'S2'}" in capsys.readouterr().err
    assert calls == []
    assert not (tmp_path / "elsewhere" / "out").exists()


def test_demo_output_inside_the_people_it_plays_or_with_a_file_for_a_folder_is_refused_first(
    tmp_path, shared_file, tiny_model, capsys
):
    """OUT inside the people folder was written (the next run would read its stream back as a
    clip), and a file named report failed only after the whole replay."""
    people = tmp_path / "people" / "S6"
    people.mkdir(parents=True)
    for name in ("greeting_3_6m_full.avi", "stop_3_6m_full.avi", "come_3_6m_full.avi"):
        (people / name).symlink_to(shared_file(f"hri_gestures/S6/{name}"))
    argv = ["demo", "--short", "--people", str(tmp_path / "people"), "--person", "S6", "--distance", "6m"]
    assert main([*argv, "--model", str(tiny_model), "--out", str(people / "demo")]) == 2
    assert "is inside the input folder" in capsys.readouterr().err
    out = tmp_path / "demo"
    out.mkdir()
    (out / "report").write_text("notes\n")
    assert (
        main(["demo", "--synthetic", "--short", "--model", str(tiny_model), "--out", str(out), "--force"])
        == 2
    )
    assert "which is no folder; move it away" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["report"]


def test_a_video_named_from_home_is_found_and_a_tilde_name_stays_a_name(tmp_path, capsys, monkeypatch):
    """make demo VIDEO=~/clip.mp4 hands the tilde on; ~user/ expanded to a traceback when no such user."""
    monkeypatch.setenv("HOME", str(tmp_path))
    assert main(["demo", "--video", "~/absent.mp4", "--out", str(tmp_path / "out")]) == 2
    assert f"video not found: {tmp_path / 'absent.mp4'}" in capsys.readouterr().err
    assert main(["demo", "--video", "~nosuchuser/clip.mp4", "--out", str(tmp_path / "out")]) == 2
    assert "video not found: ~nosuchuser/clip.mp4" in capsys.readouterr().err


def test_a_video_demo_says_what_was_recognized_and_when(tmp_path, capsys):
    """With no truth to score, a video's demo printed `segment accuracy 0/0` and no label at all."""
    rows = [(0.5, 0, "none"), (1.0, 0, "wave"), (1.2, 1, "stop"), (1.5, 0, "wave"), (2.0, 0, "none")]
    path = tmp_path / "predictions.csv"
    path.write_text("stamp,person_id,label,confidence,truth,latency_ms\n")
    with path.open("a") as file:
        file.writelines(f"{t},{p},{label},0.9,,\n" for t, p, label in rows)
    demo.print_recognized(path)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split() for line in lines[2:]] == [
        ["1.0-", "1.5", "0", "wave"],
        ["1.2-", "1.2", "1", "stop"],
    ]
