"""Streams of real people's clips and the open-set check, end to end through the CLI (real MediaPipe)."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from bharnet_ros.cli import build_parser, main
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
    assert summary["streams_without_gap"] == []
    printed = capsys.readouterr().out
    assert "S6_6m: segments" in printed
    assert "note: 2 of 2 clips are not in --dataset; their delays are measured from the clip" in printed
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
    assert summary["no_command"] == ["none"]  # the tiny model has no random or static class
    assert "pooled: none" in capsys.readouterr().out


def test_no_command_classes_must_be_classes_of_the_model():
    from bharnet_ros.tools import UsageError
    from bharnet_ros.tools.open_set import no_command_classes

    hri = ["stop", "random", "static"]
    assert no_command_classes(None, hri) == ["random", "static"]
    assert no_command_classes(None, ["wave"]) == []
    assert no_command_classes("random", hri) == ["random"]
    with pytest.raises(UsageError, match="--no-command names statc, not classes of the model"):
        no_command_classes("random,statc", hri)


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


def test_a_test_mirror_that_does_not_fit_the_fold_names_the_summary(tmp_path):
    pytest.importorskip("torch")
    from bharnet_ros.core.paths import CHECKOUT
    from bharnet_ros.model.checkpoint import load_checkpoint
    from bharnet_ros.tools import UsageError
    from bharnet_ros.tools.streams import _mirrored

    checkpoint = load_checkpoint(CHECKOUT / "models" / "bharnet_e.pt")
    summary = tmp_path / "summary.json"
    with pytest.raises(
        UsageError, match=r"summary.json: test_mirror \[999\] does not fit the fold's 24 classes"
    ):
        _mirrored(checkpoint, [999], summary)
    keep = list(range(len(checkpoint.class_names)))
    assert _mirrored(checkpoint, keep, summary).model_config["test_mirror"] == keep


def write_clip(path: Path, frames: int = 12, cut: bool = False) -> Path:
    """A tiny grey MJPG clip (``cut``: its second half cut off, so it opens but ends early)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    for i in range(frames):
        writer.write(np.full((48, 64, 3), 5 * i, np.uint8))
    writer.release()
    if cut:
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


@pytest.fixture
def clip_folder(tmp_path, person_file):
    """SRC/P/ with a gesture clip and a static clip, and a dataset file: inputs of one stream."""
    person = tmp_path / "src" / "P"
    person.mkdir(parents=True)
    for name in ("come_1_1m_upper.avi", "static_1_1m_upper.avi"):
        write_clip(person / name)
    return tmp_path / "src", person_file(tmp_path, "S7", takes=1)


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    return err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--model", "nosuch.onnx"], "cannot load the model: model nosuch.onnx not found"),
        (["--model", "{text}"], "is not a loadable ONNX model"),
        (["--cv", "nosuch_run"], "--cv nosuch_run is not a folder"),
        (["--cv", "{empty}"], "has no fold for P (fold_<person>/last.pt)"),
        (["--model", "{model}", "--params-file", "nosuch.yaml"], "--params-file: cannot read"),
        (["--model", "{model}", "--params-file", "{text}"], "a parameters file maps node names"),
        (["--model", "{model}", "--gap=-1"], "--gap must be a number of seconds from 0 to 60"),
        (["--model", "{model}", "--gap", "nan"], "--gap must be a number of seconds from 0 to 60"),
        (["--model", "{model}", "--gap", "1e30"], "--gap must be a number of seconds from 0 to 60"),
        (["--model", "{model}", "--seed=-1"], "--seed must be a whole number from 0 to 4294967295"),
        (["--model", "{model}", "--params-file", "{stride_abc}"], "the recognizer's parameters"),
        (["--model", "{model}", "--distances", "1m,4n"], "--distances names 4n, which no clip of P has; "),
        (["--model", "{model}", "--skip", "randm"], "--skip names randm, which no clip of P has; the clips"),
    ],
)
def test_streams_check_models_and_options_before_composing_anything(
    clip_folder, tiny_model, tmp_path, capsys, extra, message
):
    source, dataset = clip_folder
    (tmp_path / "text.onnx").write_text("not a model\n")
    (tmp_path / "empty_run").mkdir()
    (tmp_path / "stride.yaml").write_text("/**/recognizer:\n  ros__parameters:\n    stride_seconds: abc\n")
    names = {"{text}": tmp_path / "text.onnx", "{empty}": tmp_path / "empty_run", "{model}": tiny_model}
    names["{stride_abc}"] = tmp_path / "stride.yaml"
    extra = [str(names.get(arg, arg)) for arg in extra]
    out = tmp_path / "streams"
    assert main(["streams", str(source), "--dataset", str(dataset), *extra, "--out", str(out)]) == 2
    assert message in one_line_error(capsys)
    assert not out.exists()  # nothing composed: a corrected rerun needs no --force


@pytest.mark.parametrize("bad", ["cut_clip", "notes_beside", "fifo_params"])
def test_streams_check_every_clip_and_the_params_file_before_the_first_stream(
    clip_folder, tiny_model, tmp_path, capsys, bad
):
    """A clip that does not open failed only after earlier streams were scored (leaving their
    folders, so a rerun needed --force); a notes file named like a clip was taken for one; a FIFO
    as --params-file waited forever."""
    source, dataset = clip_folder
    second = source / "Q"
    second.mkdir()
    write_clip(second / "come_1_1m_upper.avi")
    extra = []
    if bad == "cut_clip":
        (second / "back_1_1m_upper.avi").write_bytes(b"RIFF\0\0\0\0AVI not really")
    if bad == "notes_beside":  # not a video: left out, the stream runs
        (second / "stop_2_1m_notes.txt").write_text("take 2 was blurry\n")
    if bad == "fifo_params":
        os.mkfifo(tmp_path / "params.yaml")
        extra = ["--params-file", str(tmp_path / "params.yaml")]
    out = tmp_path / "streams"
    argv = ["streams", str(source), "--dataset", str(dataset), "--model", str(tiny_model), "--out", str(out)]
    if bad == "notes_beside":
        from bharnet_ros.tools.streams import person_streams
        from bharnet_ros.training.dataset import SkeletonDataset

        args = build_parser(argv).parse_args(argv)
        [(_, pieces)] = person_streams(args, "Q", SkeletonDataset.load(dataset)).items()
        assert [piece.video.name for piece in pieces] == ["come_1_1m_upper.avi"]
        return
    assert main([*argv, *extra]) == 2
    error = one_line_error(capsys)
    assert ("back_1_1m_upper.avi" if bad == "cut_clip" else "not a regular file") in error
    assert not out.exists()


def test_streams_check_every_fold_of_a_cv_run_before_composing_anything(
    clip_folder, teach_base, tmp_path, capsys
):
    from bharnet_ros.model.checkpoint import save_checkpoint

    source, dataset = clip_folder
    run = tmp_path / "cv"
    (run / "fold_P").mkdir(parents=True)
    (run / "fold_P" / "last.pt").write_bytes(b"")
    out = tmp_path / "streams"
    argv = ["streams", str(source), "--dataset", str(dataset), "--cv", str(run), "--out", str(out)]
    assert main(argv) == 2
    assert "last.pt" in one_line_error(capsys)  # an empty checkpoint
    save_checkpoint(teach_base(), run / "fold_P" / "last.pt")
    (run / "calibration.json").write_text('{"fused": {"temperature": null, "none_threshold": 0.5}}')
    assert main(argv) == 2
    assert "calibration's temperature null is not a number" in one_line_error(capsys)
    assert not out.exists()


def test_a_person_whose_name_is_not_a_safe_folder_name_finds_their_fold(tmp_path):
    import argparse

    from bharnet_ros.tools import UsageError
    from bharnet_ros.tools.streams import check_models

    run = tmp_path / "cv"
    (run / "fold_S_1").mkdir(parents=True)
    (run / "fold_S_1" / "last.pt").write_bytes(b"")  # `train --loso` names the fold of 'S 1' so
    args = argparse.Namespace(cv=run, model=None, expert_only=True)
    with pytest.raises(UsageError, match="fold_S_1/last.pt") as err:
        check_models(args, ["S 1"])
    assert "has no fold" not in str(err.value)  # found, and refused only as an empty checkpoint


def test_open_set_checks_its_videos_and_model_before_recording_any(tmp_path, tiny_model, capsys):
    good = write_clip(tmp_path / "good.avi")
    (tmp_path / "broken.mp4").write_text("not a video\n")
    out = tmp_path / "open"
    argv = ["open-set", "--model", str(tiny_model), "--out", str(out)]
    assert main([*argv, str(tmp_path)]) == 2
    assert f"{tmp_path} is a folder; list the video files themselves" in one_line_error(capsys)
    assert main([*argv, str(good), str(tmp_path / "broken.mp4")]) == 2
    assert f"cannot open {tmp_path / 'broken.mp4'} as a video" in one_line_error(capsys)
    assert main(["open-set", str(good), "--model", str(tmp_path / "none.onnx"), "--out", str(out)]) == 2
    assert "cannot load the model" in one_line_error(capsys)
    assert main([*argv, str(good), "--params-file", str(good)]) == 2
    assert "--params-file" in one_line_error(capsys)
    clash = write_clip(tmp_path / "summary.json.avi")
    assert main([*argv, str(clash)]) == 2
    assert "would take the summary's place" in one_line_error(capsys)
    dots = write_clip(tmp_path / "...avi")  # its stem '..' would make the parent of --out its folder
    assert main([*argv, str(dots)]) == 2
    assert "a video named only by dots has no folder of its own" in one_line_error(capsys)
    assert not out.exists()
    (out / "good" / "labels.csv").mkdir(parents=True)  # found after its video was recorded
    assert main([*argv, str(good), "--force"]) == 2
    assert "labels.csv, which is no regular file" in one_line_error(capsys)


def test_open_set_skips_a_video_that_fails_while_recorded_and_keeps_the_others(
    tmp_path, shared_file, tiny_model, capsys
):
    good = tmp_path / "good.avi"
    good.symlink_to(shared_file("hri_gestures/S2/greeting_1_1m_upper.avi"))  # 4.6 s of a person waving
    cut = write_clip(tmp_path / "cut.avi", frames=40, cut=True)  # opens, then ends early
    out = tmp_path / "open"
    assert main(["open-set", str(cut), str(good), "--model", str(tiny_model), "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert f"skipped {cut}: " in captured.err
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["per_video"]) == ["good"]
    assert "ends after" in summary["skipped"]["cut"]
    assert not (out / "cut").exists()  # its half-made folder is gone
    assert "pooled: none" in captured.out


def test_a_run_calibrated_with_distances_exports_its_folds_with_their_own_distance(teach_base, tmp_path):
    from bharnet_ros.model.checkpoint import save_checkpoint
    from bharnet_ros.tools import UsageError
    from bharnet_ros.tools.streams import fold_inputs
    from bharnet_ros.training.dataset import SkeletonDataset
    from bharnet_ros.training.synth import generate_sequence

    run = tmp_path / "cv"
    (run / "fold_P").mkdir(parents=True)
    save_checkpoint(teach_base(), run / "fold_P" / "last.pt")  # idle and wave
    sequences = [generate_sequence(c, np.random.default_rng(k)) for k, c in enumerate(["idle", "wave"] * 2)]
    data = SkeletonDataset.from_sequences(sequences, [0, 1, 0, 1], ["idle", "wave"]).save(tmp_path / "S1.npz")
    (run / "fold_P" / "config.yaml").write_text(f"data:\n  train: ['{data}']\n")
    entry = {"temperature": 1.5, "none_threshold": 0.3}
    (run / "calibration.json").write_text(json.dumps({"expert_only": entry}))
    assert fold_inputs(run, "P", expert_only=True)[1].feature_distance is None
    (run / "calibration.json").write_text(json.dumps({"expert_only": {**entry, "distance_threshold": 2.0}}))
    _, model, calibration = fold_inputs(run, "P", expert_only=True)
    assert model.feature_distance is not None
    assert calibration["distance_threshold"] == 2.0
    other_people = {"expert_only": {**entry, "temperature": 2.5, "distance_threshold": 3.0}}
    (run / "fold_P" / "calibration.json").write_text(json.dumps(other_people))
    assert fold_inputs(run, "P", expert_only=True)[2]["temperature"] == 2.5  # not fitted on P
    data.unlink()
    with pytest.raises(UsageError, match="its training data is not here"):
        fold_inputs(run, "P", expert_only=True)


def test_a_fold_export_that_disagrees_with_its_checkpoint_is_not_used(teach_base, tmp_path, monkeypatch):
    """Fold models were exported unchecked, so a graph computing something else would have scored
    the published streams; now they pass the parity check every export passes."""
    from bharnet_ros.model import export
    from bharnet_ros.model.checkpoint import save_checkpoint
    from bharnet_ros.tools import UsageError
    from bharnet_ros.tools.streams import fold_model

    run = tmp_path / "cv"
    (run / "fold_P").mkdir(parents=True)
    save_checkpoint(teach_base(), run / "fold_P" / "last.pt")
    (tmp_path / "out").mkdir()
    assert fold_model(run, "P", tmp_path / "out", expert_only=True).is_file()

    def differs(*args, **kwargs):
        raise export.ParityError("ONNX Runtime and PyTorch differ by 0.5")

    monkeypatch.setattr(export, "check_parity", differs)
    (tmp_path / "out" / "model.onnx").unlink()
    with pytest.raises(UsageError, match="differ by 0.5"):
        fold_model(run, "P", tmp_path / "out", expert_only=True)
    assert not (tmp_path / "out" / "model.onnx").exists()


def test_a_pose_section_only_under_another_namespace_is_refused_before_any_work(tmp_path):
    """It was refused only once the first video's bag and labels were written."""
    from bharnet_ros.tools import UsageError
    from bharnet_ros.tools.bag import check_params_file

    path = tmp_path / "robot.yaml"
    path.write_text("/**/recognizer:\n  ros__parameters: {top_k: 3}\n/robot1/pose:\n  ros__parameters: {}\n")
    with pytest.raises(UsageError, match=r"--params-file: its pose entries \(/robot1/pose\)"):
        check_params_file(str(path))


def test_open_set_summary_lists_every_label_given(monkeypatch):
    """Only the four commonest were kept: a video's labels no longer added up to its decisions."""
    from bharnet_ros.tools import open_set

    counts = Counter({"slowdown": 10, "static": 4, "random": 4, "back": 3, "none": 1})
    monkeypatch.setattr(open_set, "_label_counts", lambda result: counts)
    row = open_set.pooled({"sign": {}}, {"none", "random", "static"})["per_video"]["sign"]
    assert row["labels"] == dict(counts)
    assert sum(row["labels"].values()) == row["decisions"]


def test_open_set_checks_the_classes_of_the_model_its_params_file_names(tmp_path, tiny_model, capsys):
    good = write_clip(tmp_path / "good.avi")
    params = tmp_path / "params.yaml"
    params.write_text(f"recognizer:\n  ros__parameters:\n    model: {tiny_model}\n")
    out = tmp_path / "open"
    argv = ["open-set", str(good), "--params-file", str(params), "--out", str(out)]
    assert main([*argv, "--no-command", "random"]) == 2  # a class of the shipped model, not of this one
    error = one_line_error(capsys)
    assert "--no-command names random, not classes of the model" in error
    assert "idle, wave, stop" in error
    params.write_text(f"recognizer:\n  ros__parameters:\n    model: {tmp_path / 'gone.onnx'}\n")
    assert main(argv) == 2
    assert "gone.onnx" in one_line_error(capsys)
    assert not out.exists()


def test_streams_refuse_a_dataset_of_another_body_layout(clip_folder, tiny_model, tmp_path, capsys):
    """Onsets were read from MediaPipe's joint numbers in NTU skeletons, without a word."""
    from bharnet_ros.training.dataset import SkeletonDataset

    source, dataset = clip_folder
    data = SkeletonDataset.load(dataset)
    fields = {f: getattr(data, f) for f in data.__dataclass_fields__}
    ntu = SkeletonDataset(**{**fields, "body": data.body[:, :, :25], "layout": "ntu25"})
    path = ntu.save(tmp_path / "ntu.npz")
    argv = ["streams", str(source), "--dataset", str(path), "--model", str(tiny_model)]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    assert "holds ntu25 skeletons; give the clips' own" in one_line_error(capsys)


def test_a_persons_stream_at_one_distance_is_the_same_whichever_others_are_composed(tmp_path):
    """One generator for all of a person's distances gave S3's 4 m stream another gesture order
    when it was composed alone (the docs' --distances 4m example) than in the full run."""
    from bharnet_ros.tools.streams import person_streams

    person = tmp_path / "src" / "P"
    person.mkdir(parents=True)
    for distance in ("1m", "4m", "6m"):
        for label in ("come", "back", "stop", "left", "right", "yes"):
            (person / f"{label}_1_{distance}_upper.avi").write_bytes(b"")
    orders = {}
    for distances in ("", "4m", "6m,4m"):
        argv = ["streams", str(tmp_path / "src"), "--dataset", "x.npz", "--model", "m.onnx", "--out", "o"]
        argv += ["--distances", distances]
        args = build_parser(argv).parse_args(argv)
        streams = person_streams(args, "P", SimpleNamespace(names=np.array([])))  # no onsets known
        orders[distances] = [piece.label for piece in streams["4m"]]
    assert orders["4m"] == orders[""] == orders["6m,4m"]


def test_a_stream_without_a_still_clip_at_its_distance_is_named(tmp_path):
    """The HRI recordings have S1's static clip at 4 m only: S1's 1 m and 6 m streams played their
    gestures back to back, without --gap, and were pooled with the others without a word."""
    from bharnet_ros.tools.streams import person_streams, streams_without_gap

    person = tmp_path / "src" / "S1"
    person.mkdir(parents=True)
    for distance in ("1m", "4m"):
        for label in ("come", "stop"):
            (person / f"{label}_1_{distance}_upper.avi").write_bytes(b"")
    (person / "static_1_4m_upper.avi").write_bytes(b"")
    argv = ["streams", str(tmp_path / "src"), "--dataset", "x.npz", "--model", "m.onnx", "--out", "o"]
    args = build_parser(argv).parse_args(argv)
    streams = person_streams(args, "S1", SimpleNamespace(names=np.array([])))
    named = {f"S1_{distance}": ("S1", pieces) for distance, pieces in streams.items()}
    assert streams_without_gap(named) == ["S1_1m"]
    assert [piece.label for piece in streams["4m"]].count(None) == 2  # a still stretch before each
