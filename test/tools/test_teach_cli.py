"""``bharnet teach record`` headless on a real video and on a bag made from it, and ``teach train``
from a tiny base to an ONNX model the node loads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bharnet_ros.cli import main
from bharnet_ros.core.bag import write_video_bag
from bharnet_ros.core.inference import OnnxClassifier
from bharnet_ros.core.paths import DEFAULT_MODEL, share_file
from bharnet_ros.model.checkpoint import load_checkpoint, save_checkpoint
from bharnet_ros.tools.teach import DEFAULT_BASE, REHEARSAL_VIEWS
from bharnet_ros.training.dataset import SkeletonDataset
from bharnet_ros.training.synth import generate_sequence
from bharnet_ros.training.teach import TeachSettings

CLIP = "hri_gestures/S2/greeting_1_1m_upper.avi"  # 92 frames at 20 fps: a person waving at 1 m
LABELS = "start,end,label\n0.0,4.0,greeting\n4.2,4.4,greeting\n"  # the second take is too short


@pytest.fixture
def labels(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text(LABELS)
    return path


def check_takes_file(path: Path, capsys) -> None:
    out, err = capsys.readouterr()
    assert "greeting take 1:" in out
    assert "skipped greeting take 2: too short" in err
    data = SkeletonDataset.load(path)
    assert data.class_names == ["greeting"]
    assert data.names.tolist() == ["S2/greeting_1"]
    assert data.attribute("subject").tolist() == ["S2"]
    assert data.hand_intensive == [False]
    duration = data.sample(0).timestamps[-1] - data.sample(0).timestamps[0]
    assert 1.0 < duration <= 4.0  # trimmed to the motion on the pose stage's stamps


def test_record_a_video_headless_with_a_labels_file(shared_file, tmp_path, labels, capsys):
    out = tmp_path / "takes.npz"
    args = ["teach", "record", "--video", str(shared_file(CLIP)), "--labels", str(labels)]
    code = main([*args, "--subject", "S2", "-o", str(out)])
    assert code == 1  # written, but a take was skipped
    check_takes_file(out, capsys)
    assert main([*args, "--subject", "S2", "-o", str(out)]) == 2  # exists: never overwritten silently
    assert "--force" in capsys.readouterr().err


def test_record_a_camera_bag_headless(shared_file, tmp_path, labels, capsys):
    bag = tmp_path / "bag"
    write_video_bag(shared_file(CLIP), bag)
    out = tmp_path / "takes.npz"
    code = main(
        ["teach", "record", "--bag", str(bag), "--labels", str(labels), "--subject", "S2", "-o", str(out)]
    )
    assert code == 1
    check_takes_file(out, capsys)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--labels", "x.csv"], "--labels cuts a recording"),
        ([], "name the gestures"),
        (
            ["--gestures", "wave", "--trim", "fixed", "--trim-seconds", "nan"],
            "--trim-seconds must be a finite",
        ),
        (["--gestures", "wave", "--min-seconds", "nan"], "--min-seconds must be a finite number of seconds"),
        (["--gestures", "wave", "--seconds", "inf"], "--seconds must be a finite number of seconds"),
        (["--gestures", "wave", "--subject", " "], "--subject is empty; name who performs the takes"),
        (["--gestures", "wave,stop,wave"], "--gestures names wave more than once; give each gesture once"),
        (["--gestures", "wave,Wave"], "--gestures names wave and Wave, one gesture by their words"),
        (["--gestures", "wave", "--subject", "ana\x1b[31m"], "--subject 'ana\\x1b[31m' is not printable"),
        (
            ["--gestures", "wave", "--seconds", "601"],
            "--seconds must be a finite number of seconds, above 0 and at",
        ),
        (["--gestures", "wave", "--wait", "nan"], "--wait must be a finite number of seconds"),
        (["--gestures", "wave", "--wait", "-1"], "--wait must be a finite number of seconds, 0 or more"),
        (["--gestures", "wave", "--wait", "1e9"], "at most 600 (not 1e+09)"),
        (["--gestures", "wave", "--takes", "1000000"], "--takes must be a whole number from 1 to 100"),
        (["--gestures", "wave", "--countdown", "-1"], "--countdown must be a whole number from 0 to 60"),
        (["--gestures", "wave", "--countdown", "100000"], "--countdown must be a whole number from 0 to 60"),
        (["--gestures", "wave", "--hand-gestures", "wav"], "--hand-gestures wav not among the gestures"),
        (["--gestures", "wave", "--topic", "bad topic!"], "--topic 'bad topic!' is no valid topic name"),
        (["--gestures", "wave", "--video", "/nonexistent/v.mp4"], "--video /nonexistent/v.mp4 not found"),
        (["--gestures", "wave", "--bag", "/nonexistent/bag"], "--bag /nonexistent/bag not found"),
        (["--gestures", "wave", "--video", "v.mp4", "--labels", "x.csv"], "drop --gestures"),
        (["--gestures", "wave", "--video", "v.mp4", "--topic", "t"], "drop it with --video"),
        (["--gestures", "wave", "--seconds", "1", "--min-seconds", "2"], "not shorter than --seconds 1"),
        (
            ["--gestures", "wave", "--trim", "fixed", "--trim-seconds", "0.4"],
            "--min-seconds 0.5 is not shorter than --trim-seconds 0.4",
        ),
    ],
)
def test_record_option_mistakes_are_one_line_errors(tmp_path, capsys, extra, message):
    assert main(["teach", "record", "--subject", "a", "-o", str(tmp_path / "t.npz"), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "t.npz").exists()


def test_a_bad_domain_id_is_one_line_for_the_default_live_topic_too(tmp_path, capsys, monkeypatch):
    """Checked only with --topic: the default live recording gave rclpy's traceback."""
    monkeypatch.setenv("ROS_DOMAIN_ID", "abc")
    argv = ["teach", "record", "--gestures", "wave", "--subject", "a", "-o", str(tmp_path / "t.npz")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "ROS_DOMAIN_ID='abc' is not a ROS domain id" in err
    assert len(err.strip().splitlines()) == 1


def test_record_refuses_hand_gestures_missing_from_the_labels(tmp_path, labels, capsys):
    """Checked once the labels are read, before the pose stage runs on the video."""
    video = tmp_path / "v.avi"
    video.write_bytes(b"not read: the check comes first")
    out = tmp_path / "t.npz"
    argv = ["teach", "record", "--video", str(video), "--labels", str(labels), "--hand-gestures", "greting"]
    assert main([*argv, "--subject", "a", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"--hand-gestures greting not among the gestures of {labels} (greeting)" in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_record_refuses_a_labels_file_naming_one_gesture_two_ways(tmp_path, capsys):
    labels = tmp_path / "labels.csv"
    labels.write_text("start,end,label\n0.5,1.5,Wave\n2.0,3.0,wave\n")
    video = tmp_path / "v.avi"
    video.write_bytes(b"not read: the check comes first")
    argv = ["teach", "record", "--video", str(video), "--labels", str(labels), "--subject", "a"]
    assert main([*argv, "-o", str(tmp_path / "t.npz")]) == 2
    assert "names Wave and wave, one gesture by their words" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["train", "t.npz", "--views", "100000"], "--views must be a whole number from 1 to 100"),
        (["train", "t.npz", "--views", "0"], "--views must be a whole number from 1 to 100"),
        (["train", "t.npz", "--steps", "0"], "--steps must be a whole number from 1 to 100000"),
        (["train", "t.npz", "--steps", "10000000"], "--steps must be a whole number from 1 to 100000"),
        (["train", "t.npz", "--seed", "-1"], "--seed must be a whole number from 0 to 4294967295"),
        (["train", "t.npz", "--seed", str(2**70)], "--seed must be a whole number from 0 to 4294967295"),
        (
            ["train", "t.npz", "--finetune-epochs", "1000000"],
            "--finetune-epochs must be a whole number from 0",
        ),
        (
            ["curve", "--base", "b.pt", "--data", "d.npz", "--new", "x", "--draws", "1000000"],
            "--draws must be",
        ),
        (
            ["curve", "--base", "b.pt", "--data", "d.npz", "--new", "x", "--views", "1000000"],
            "--views must be",
        ),
        (
            ["curve", "--base", "b.pt", "--data", "d.npz", "--new", "x", "--groups", "0"],
            "--groups must be a whole number from 1 to 1000",
        ),
        *[
            (
                ["curve", "--base", "b.pt", "--data", "d.npz", "--new", "x", "--distance-threshold", bad],
                "--distance-threshold must be 0 (not measured) or a number above 0 and below 1000",
            )
            for bad in ("-1", "nan", "inf", "1000")
        ],
    ],
)
def test_train_and_curve_counts_are_bounded(tmp_path, capsys, extra, message):
    assert main(["teach", *extra, "-o" if extra[0] == "train" else "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def base_checkpoint(tmp_path, teach_base) -> Path:
    """The tiny teaching base (idle, wave; window 1 s), saved like a training run's last.pt."""
    return save_checkpoint(teach_base(), tmp_path / "base" / "last.pt")


def synth_takes(path: Path, classes: list[str], subject: str) -> Path:
    sequences = [
        generate_sequence(c, np.random.default_rng([i, k])) for i, c in enumerate(classes) for k in range(2)
    ]
    return SkeletonDataset.from_sequences(
        sequences, [i for i in range(len(classes)) for _ in range(2)], classes,
        names=[f"{subject}/{c}_{k}" for c in classes for k in range(2)],
        attributes=[{"subject": subject}] * len(sequences),
    ).save(path)  # fmt: skip


def test_train_adds_gestures_and_exports_a_model_the_node_loads(base_checkpoint, tmp_path, capsys):
    takes = synth_takes(tmp_path / "ana.npz", ["stop", "clap"], "ana")
    rehearsal = synth_takes(tmp_path / "old.npz", ["idle", "wave"], "old")
    out = tmp_path / "taught.onnx"
    args = ["teach", "train", str(takes), "--base", str(base_checkpoint), "-o", str(out), "--views", "2"]
    assert main([*args, "--steps", "20", "--rehearse", str(rehearsal)]) == 0
    text, bars = capsys.readouterr()
    assert "features of the takes" in bars
    assert "features of the rehearsal" in bars
    assert "taught stop, clap (4 classes in all" in text
    assert "parity vs PyTorch" in text
    assert "feature distance: the model outputs it, but the calibration has no distance threshold" in text
    classifier = OnnxClassifier(out, providers="cpu")
    assert classifier.labels == ["idle", "wave", "stop", "clap"]
    assert classifier.variant == "bharnet_e_expert_only"
    assert "distance" in classifier.output_names
    assert load_checkpoint(tmp_path / "taught.pt").class_names == classifier.labels
    assert main([*args, "--no-rehearse"]) == 2  # the outputs exist: --force replaces them
    assert "already exists" in capsys.readouterr().err
    assert main([*args, "--no-rehearse", "--force", "--steps", "5"]) == 0
    assert "no feature distance: no window of idle, wave" in capsys.readouterr().out
    assert "distance" not in OnnxClassifier(out, providers="cpu").output_names
    assert main([*args, "--rehearse", str(rehearsal), "--force", "--steps", "5", "--no-distance"]) == 0
    assert "feature distance" not in capsys.readouterr().out
    assert "distance" not in OnnxClassifier(out, providers="cpu").output_names
    tuned = [*args, "--rehearse", str(rehearsal), "--force", "--steps", "5", "--finetune-epochs", "1"]
    assert main(tuned) == 0
    text, bars = capsys.readouterr()
    assert "fine-tune epoch 1/1" in bars
    assert "rehearsal, fine-tuned" in bars  # the distance's second feature pass
    assert "fine-tuned the whole network for 1 epoch(s)" in text
    assert "finetune" in text  # its time, beside the features' and the fit's
    assert "% before the fine-tune)" in text  # the top-1 of the heads' windows, not of the export
    assert "feature distance: " in text
    tuned_model = OnnxClassifier(out, providers="cpu")
    assert tuned_model.labels == ["idle", "wave", "stop", "clap"]
    assert "distance" in tuned_model.output_names
    assert main([*args, "--force", "--finetune-epochs", "-1"]) == 2
    assert "--finetune-epochs must be a whole number from 0 to 1000" in capsys.readouterr().err
    for bad in ("nan", "1", "-0.1"):
        assert main([*args, "--force", "--label-smoothing", bad]) == 2
        assert "--label-smoothing must be in [0, 1)" in capsys.readouterr().err
    for bad in ("nan", "1", "-0.5"):
        assert main([*args, "--force", "--feature-dropout", bad]) == 2
        assert "--feature-dropout must be in [0, 1)" in capsys.readouterr().err
    for bad in ("3", "101"):
        assert main([*args, "--force", "--rehearsal-candidates", bad]) == 2
        assert "--rehearsal-candidates" in capsys.readouterr().err
    for bad in ("nan", "-1", "101", "inf"):
        assert main([*args, "--force", "--finetune-distill", bad]) == 2
        assert "--finetune-distill must be in [0, 100]" in capsys.readouterr().err
    for bad in ("nan", "-0.1", "1.5"):
        assert main([*args, "--force", "--finetune-balance", bad]) == 2
        assert "--finetune-balance must be in [0, 1]" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*args, "--force", "--finetune-part", "trunk"])
    assert "invalid choice: 'trunk'" in capsys.readouterr().err
    for shaping in (["--finetune-part", "tails"], ["--finetune-distill", "2"], ["--finetune-balance", "0"]):
        assert main([*args, "--force", *shaping]) == 2  # ignored without a fine-tune, silently
        assert (
            f"{shaping[0]} shapes a fine-tune, which runs only with --finetune-epochs N"
            in capsys.readouterr().err
        )
    tails = ["--finetune-epochs", "1", "--finetune-part", "tails", "--finetune-distill", "2"]
    assert main([*args, "--rehearse", str(rehearsal), "--force", "--steps", "5", *tails]) == 0
    assert "fine-tuned the tails and heads for 1 epoch(s), keeping the old classes' logits (weight 2)" in (
        capsys.readouterr().out
    )
    fit_options = ["--label-smoothing", "0", "--feature-dropout", "0", "--rehearsal-candidates", "4"]
    assert main([*args, "--rehearse", str(rehearsal), "--force", "--steps", "5", *fit_options]) == 0
    capsys.readouterr()
    assert main([*tuned, "--no-progress", "--finetune-balance", "0"]) == 0
    text, bars = capsys.readouterr()
    assert bars == ""
    assert "fine-tuned the whole network for 1 epoch(s), class balance 0" in text


def test_train_without_a_base_or_rehearsal_says_how_to_give_them(
    base_checkpoint, tmp_path, capsys, monkeypatch
):
    takes = synth_takes(tmp_path / "ana.npz", ["stop"], "ana")
    # An install without the default checkpoint (the edge: where share/ files are looked up).
    monkeypatch.setattr("bharnet_ros.tools.teach._shipped", lambda relative: tmp_path / "absent" / relative)
    assert main(["teach", "train", str(takes), "-o", str(tmp_path / "m.onnx")]) == 2
    assert f"no {DEFAULT_BASE} ships here; pass --base CHECKPOINT" in capsys.readouterr().err
    monkeypatch.undo()
    args = ["teach", "train", str(takes), "--base", str(base_checkpoint), "-o", str(tmp_path / "m.onnx")]
    assert main(args) == 2  # no config.yaml beside the base: nothing to rehearse the old gestures with
    assert "--no-rehearse" in capsys.readouterr().err


def test_train_refuses_a_bad_calibration_before_teaching_and_writes_nothing(
    base_checkpoint, tmp_path, capsys
):
    takes = synth_takes(tmp_path / "ana.npz", ["stop"], "ana")
    calibration = tmp_path / "calibration.json"
    calibration.write_text('{"expert_only": {"temperature": "abc", "none_threshold": 0.5}}')
    out = tmp_path / "m.onnx"
    args = ["teach", "train", str(takes), "--base", str(base_checkpoint), "-o", str(out), "--no-rehearse"]
    assert main([*args, "--calibration", str(calibration)]) == 2
    err = capsys.readouterr().err
    assert f"{calibration}: the 'expert_only' calibration's temperature \"abc\" is not a number" in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()
    assert not out.with_suffix(".pt").exists()  # so the corrected rerun needs no --force
    calibration.write_bytes(b"\x80\x02\x8a binary")
    assert main([*args, "--calibration", str(calibration)]) == 2
    assert "is not a JSON text file" in capsys.readouterr().err


def test_train_refuses_a_calibration_for_a_replaced_vocabulary(base_checkpoint, tmp_path, capsys):
    """The base's calibration was accepted: its distance threshold, of another model's unit, made
    the taught model answer none even to its own takes."""
    takes = synth_takes(tmp_path / "ana.npz", ["stop", "come_here"], "ana")
    calibration = tmp_path / "calibration.json"
    calibration.write_text('{"expert_only": {"temperature": 1.2, "none_threshold": 0.5}}')
    out = tmp_path / "m.onnx"
    args = ["teach", "train", str(takes), "--base", str(base_checkpoint), "-o", str(out), "--no-rehearse"]
    assert main([*args, "--replace", "--calibration", str(calibration)]) == 2
    err = capsys.readouterr().err
    assert "was fitted for the base model's classes, and --replace teaches another vocabulary" in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_train_refuses_takes_that_could_not_change_the_model(base_checkpoint, tmp_path, capsys):
    takes = synth_takes(tmp_path / "ana.npz", ["wave"], "ana")  # the base knows wave already
    out = tmp_path / "m.onnx"
    args = ["teach", "train", str(takes), "--base", str(base_checkpoint), "-o", str(out), "--no-rehearse"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "only of classes the base model already knows (wave)" in err
    assert "--rehearse" in err
    assert not out.exists()
    assert not out.with_suffix(".pt").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--keep", "idle"], "--keep names the base classes --replace keeps; add --replace or drop --keep"),
        (["--replace", "--rehearse", "r.npz"], "--replace without --keep keeps no base class"),
        (["--base", "models/bharnet_e.onnx"], "is an ONNX file, which cannot be taught; give its .pt file"),
    ],
)
def test_train_refuses_vocabulary_options_it_would_ignore(base_checkpoint, tmp_path, capsys, extra, message):
    takes = synth_takes(tmp_path / "ana.npz", ["stop"], "ana")
    out = tmp_path / "m.onnx"
    assert main(["teach", "train", str(takes), "--base", str(base_checkpoint), "-o", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_train_refuses_takes_that_name_a_gesture_without_a_take_of_it(base_checkpoint, tmp_path, capsys):
    """Its row would start from the mean of no features: NaN weights, and a failed export."""
    takes = SkeletonDataset.load(synth_takes(tmp_path / "ana.npz", ["stop", "clap"], "ana"))
    takes.class_names = [*takes.class_names, "ghost"]
    takes.save(tmp_path / "ghost.npz")
    out = tmp_path / "m.onnx"
    argv = ["teach", "train", str(tmp_path / "ghost.npz"), "--base", str(base_checkpoint), "--no-rehearse"]
    assert main([*argv, "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "the takes name ghost but hold no take of it" in err
    assert len(err.splitlines()) == 1
    assert not out.exists()
    assert not out.with_suffix(".pt").exists()


def test_train_refuses_a_take_without_anybody_in_it(base_checkpoint, tmp_path, capsys):
    takes = SkeletonDataset.load(synth_takes(tmp_path / "ana.npz", ["stop", "clap"], "ana"))
    takes.body[:, takes.offsets[1] : takes.offsets[2]] = 0.0  # nobody in the second take
    takes.save(tmp_path / "nobody.npz")
    out = tmp_path / "m.onnx"
    argv = ["teach", "train", str(tmp_path / "nobody.npz"), "--base", str(base_checkpoint), "--no-rehearse"]
    assert main([*argv, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "take ana/stop_1 cannot be taught from (no person: no body in any frame); record it again" in err
    assert not out.exists()


def test_train_output_may_not_go_into_the_rehearsal_data_of_the_base(teach_base, tmp_path, capsys):
    rehearsal = tmp_path / "rehearsal"
    synth_takes(rehearsal / "old.npz", ["idle", "wave"], "bo")
    base = save_checkpoint(teach_base(), tmp_path / "run" / "last.pt")
    (tmp_path / "run" / "config.yaml").write_text(f"data:\n  train: [{rehearsal}]\n")
    takes = synth_takes(tmp_path / "ana.npz", ["stop"], "ana")
    out = rehearsal / "m.onnx"
    assert main(["teach", "train", str(takes), "--base", str(base), "-o", str(out)]) == 2
    assert f"is inside the input folder {rehearsal}" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--new", "stop,nosuch"], "the data has no takes of nosuch (--new)"),
        (["--new", "stop", "--pool", "S9"], "--pool names S9, who have no takes of stop in the data"),
        (["--new", "stop", "--pool", "ana,ana"], "--pool names ana more than once"),
        (["--new", ","], "--new names no gesture"),
        (["--new", "stop", "--teachers", "1,99"], "--teachers 99 needs that many people in the pool"),
        (["--new", "stop", "--teachers", "1", "--takes", "1,1"], "--takes names 1 more than once"),
        (["--new", "stop", "--teachers", "1,1"], "--teachers names 1 more than once"),
        (["--new", "stop", "--teachers", "1", "--takes", "1,99"], "--takes 99 (per gesture, split over"),
    ],
)
def test_curve_names_an_unknown_gesture_or_person(teach_base, tmp_path, capsys, extra, message):
    data = synth_takes(tmp_path / "ana.npz", ["idle", "stop"], "ana")
    base = fold_leaving_out(teach_base(), tmp_path / "old_bo", "bo")
    args = ["teach", "curve", "--base", str(base), "--data", str(data), "--out", str(tmp_path / "c")]
    assert main([*args, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "no point of the curve" not in err
    assert not (tmp_path / "c").exists()


def test_curve_refuses_a_gesture_the_base_learnt_under_another_name(teach_base, tmp_path, capsys):
    """The base merged Stop into idle: it saw every seen person's stops, yet they counted as new."""
    data = synth_takes(tmp_path / "ana.npz", ["idle", "stop"], "ana")
    base = fold_leaving_out(teach_base(), tmp_path / "old_bo", "bo")
    (base.parent / "config.yaml").write_text("data:\n  exclude_subjects: [bo]\n  relabel: {Stop: idle}\n")
    args = ["teach", "curve", "--base", str(base), "--data", str(data), "--out", str(tmp_path / "c")]
    assert main([*args, "--new", "stop", "--teachers", "1", "--takes", "1"]) == 2
    assert "learnt Stop as idle (its data.relabel)" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_curve_does_not_write_into_the_run_folder_of_a_base(teach_base, tmp_path, capsys):
    data = synth_takes(tmp_path / "ana.npz", ["idle", "stop"], "ana")
    base = fold_leaving_out(teach_base(), tmp_path / "old_bo", "bo")
    args = ["teach", "curve", "--base", str(base), "--data", str(data), "--new", "stop"]
    assert main([*args, "--out", str(tmp_path / "old_bo"), "--force"]) == 2
    assert "is also an input of this command" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "old_bo").iterdir()) == ["config.yaml", "last.pt"]


def fold_leaving_out(checkpoint, folder: Path, person: str) -> Path:
    """``checkpoint`` saved as a fold of a run that left ``person`` out (its config.yaml says so)."""
    path = save_checkpoint(checkpoint, folder / "last.pt")
    (folder / "config.yaml").write_text(f"data:\n  exclude_subjects: [{person}]\n")
    return path


def test_curve_with_a_reference_writes_both_tables(teach_base, tmp_path, capsys):
    from bharnet_ros.training.teach import TeachSettings, teach

    people = [synth_takes(tmp_path / f"{p}.npz", ["idle", "wave", "stop"], p) for p in ("ana", "bo")]
    base = teach_base()
    every = teach(base, SkeletonDataset.load(people[0]), None, TeachSettings(views=1, steps=5)).checkpoint
    folds = [
        fold_leaving_out(base, tmp_path / "old_bo", "bo"),
        fold_leaving_out(every, tmp_path / "all_bo", "bo"),
    ]
    args = ["teach", "curve", "--base", str(folds[0]), "--data", *map(str, people), "--new", "stop"]
    args += ["--takes", "1", "--teachers", "1", "--draws", "1", "--views", "1", "--out", str(tmp_path / "c")]
    assert main([*args, "--reference", str(folds[1])]) == 0
    bars = capsys.readouterr().err
    assert "features for old_bo" in bars
    assert "fits on old_bo" in bars
    table = (tmp_path / "c" / "curve.md").read_text()
    assert "| 1 | 1 | 1 |" in table  # one teacher, one take, one fit
    assert "| all_bo | bo |" in table
    assert main([*args, "--reference", str(folds[0]), "--force"]) == 2
    assert (
        "is no reference: it must be trained with every gesture (it lacks ['stop'])"
        in capsys.readouterr().err
    )
    assert main([*args, "--force", "--label-smoothing", "1.5"]) == 2
    assert "--label-smoothing must be in [0, 1)" in capsys.readouterr().err
    assert main([*args, "--force", "--feature-dropout", "1"]) == 2
    assert "--feature-dropout must be in [0, 1)" in capsys.readouterr().err
    assert main([*args, "--force", "--rehearsal-candidates", "0"]) == 2
    assert "--rehearsal-candidates must be a whole number from 4 to 100" in capsys.readouterr().err
    assert main([*args, "--force", "--test-mirror", "--no-progress"]) == 0
    assert capsys.readouterr().err == ""
    plan = json.loads((tmp_path / "c" / "curve.json").read_text())["plan"]
    assert plan["test_mirror"] is True
    shipped = OnnxClassifier(share_file(DEFAULT_MODEL), providers="cpu").metadata["distance_threshold"]
    assert plan["distance_threshold"] == pytest.approx(shipped)  # the shipped model's, by default
    assert main([*args, "--force", "--no-progress", "--distance-threshold", "0"]) == 0
    assert "| not measured |" in capsys.readouterr().out


def test_curve_says_which_points_of_its_grid_no_group_can_give(teach_base, tmp_path, capsys, monkeypatch):
    from bharnet_ros.training import teach_curve

    people = [synth_takes(tmp_path / f"{p}.npz", ["idle", "stop"], p) for p in ("ana", "bo", "cy")]
    base = fold_leaving_out(teach_base(), tmp_path / "old_bo", "bo")
    monkeypatch.setattr(teach_curve, "runs_for_group", lambda *args: [])  # the fits are not the point
    args = ["teach", "curve", "--base", str(base), "--data", *map(str, people), "--new", "stop"]
    args += [
        "--takes",
        "1,3",
        "--teachers",
        "1,2",
        "--views",
        "1",
        "--no-progress",
        "--out",
        str(tmp_path / "c"),
    ]
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert out.startswith("skipped, as no group of teachers has takes for them (each gives one at least): ")
    assert "1 teacher(s) x 3 take(s), 2 teacher(s) x 1 take(s)" in out  # one teacher has 2 takes
    assert "no point of the curve is possible: no group of teachers leaves anyone" in err
    assert len(err.strip().splitlines()) == 1


def test_the_cli_curve_groups_default_is_the_plan_s():
    from bharnet_ros.tools.teach import CURVE_GROUPS
    from bharnet_ros.training.teach_curve import CurvePlan

    assert CurvePlan([], []).groups == CURVE_GROUPS


def test_the_cli_names_as_many_rehearsed_views_as_the_fit_keeps():
    assert TeachSettings().rehearsal_views == REHEARSAL_VIEWS


def test_a_model_taught_from_the_shipped_one_keeps_its_calibration_unless_the_vocabulary_is_replaced(capsys):
    """Without a none threshold the node would never say `none` for a low confidence; the shipped
    model's applies to a vocabulary it only adds to, not to one that replaces it."""
    import argparse

    from bharnet_ros.tools.teach import DEFAULT_BASE, _shipped, _shipped_calibration

    def calibration(base=None, **options):
        args = argparse.Namespace(**{"base": base, "replace": False, "full": False, **options})
        return _shipped_calibration(args, base or _shipped(DEFAULT_BASE))

    assert calibration().name == "bharnet_e_expert_only.onnx"  # the node's default model
    assert calibration(full=True).name == "bharnet_e.onnx"
    assert calibration(base=Path(DEFAULT_BASE)).name == "bharnet_e_expert_only.onnx"  # named: the same
    assert "calibration (temperature, none and distance thresholds) from" in capsys.readouterr().out
    assert calibration(replace=True) is None
    assert calibration(base=Path("run/last.pt")) is None
    assert "no --calibration: the taught model carries no none threshold" in capsys.readouterr().out


def test_train_refuses_the_same_takes_file_given_twice(base_checkpoint, tmp_path, capsys):
    takes = synth_takes(tmp_path / "ana.npz", ["stop"], "ana")
    out = tmp_path / "m.onnx"
    again = tmp_path / "." / "ana.npz"  # the same file by another spelling
    args = ["teach", "train", str(takes), str(again), "--base", str(base_checkpoint), "-o", str(out)]
    assert main([*args, "--no-rehearse"]) == 2
    err = capsys.readouterr().err
    assert "given more than once; give each takes file once" in err
    assert not out.exists()
    copy = tmp_path / "copy.npz"  # a copy's takes were taught twice, weighing double, without a word
    copy.write_bytes(takes.read_bytes())
    args = ["teach", "train", str(takes), str(copy), "--base", str(base_checkpoint), "-o", str(out)]
    assert main([*args, "--no-rehearse"]) == 2
    assert "hold the same takes (a copy); give each takes file once" in capsys.readouterr().err
    assert not out.exists()


def test_curve_names_a_shipped_model_whose_distance_threshold_cannot_be_read(tmp_path, monkeypatch):
    from bharnet_ros.tools import UsageError
    from bharnet_ros.tools import teach as teach_tool

    bad = tmp_path / "m.onnx"
    monkeypatch.setattr(teach_tool, "_shipped", lambda relative: bad)
    assert teach_tool._curve_distance_threshold(None) == 0.0  # no shipped model: not measured
    bad.write_bytes(b"\xff\xff\xff\xff")
    with pytest.raises(
        UsageError, match=r"cannot read the distance threshold of .*; give --distance-threshold"
    ):
        teach_tool._curve_distance_threshold(None)
    assert teach_tool._curve_distance_threshold(1.5) == 1.5  # a given one is not read from the model


def test_rehearse_replaces_only_the_files_and_keeps_the_base_runs_relabelling_and_people_left_out(
    teach_base, tmp_path
):
    """--rehearse with the recipe's own files: none took its samples from relabels, and a fold's
    held-out person was rehearsed."""
    import argparse

    from bharnet_ros.tools.teach import _rehearsal_source

    base = save_checkpoint(teach_base(), tmp_path / "run" / "last.pt")
    config = "data:\n  train: [elsewhere/old.npz]\n  relabel: {clap: idle}\n  exclude_subjects: [S4]\n"
    (tmp_path / "run" / "config.yaml").write_text(config)
    given = synth_takes(tmp_path / "old.npz", ["idle", "wave"], "bo")
    args = argparse.Namespace(no_rehearse=False, replace=False, keep=[], rehearse=[given])
    source = _rehearsal_source(args, base)
    assert source.files == [given]
    assert source.missing == []
    assert source.relabel == {"clap": "idle"}
    assert source.left_out == ["S4"]


def test_train_names_a_missing_base_and_an_empty_takes_file_in_one_line(base_checkpoint, tmp_path, capsys):
    takes = synth_takes(tmp_path / "ana.npz", ["stop"], "ana")
    out = ["-o", str(tmp_path / "m.onnx")]
    assert main(["teach", "train", str(takes), "--base", str(tmp_path / "nope.pt"), *out]) == 2
    assert "--base " + str(tmp_path / "nope.pt") + " is no checkpoint file" in capsys.readouterr().err
    empty = SkeletonDataset.load(takes).subset([])
    empty.save(tmp_path / "empty.npz")
    argv = ["teach", "train", str(tmp_path / "empty.npz"), "--base", str(base_checkpoint), "--no-rehearse"]
    assert main([*argv, *out]) == 2
    assert "hold no take" in capsys.readouterr().err


def test_a_failed_export_leaves_both_earlier_files_as_they_were(
    base_checkpoint, tmp_path, capsys, monkeypatch
):
    from bharnet_ros.model.export import ExportError

    takes = synth_takes(tmp_path / "ana.npz", ["stop"], "ana")
    out = tmp_path / "taught.onnx"
    out.write_bytes(b"old onnx")
    out.with_suffix(".pt").write_bytes(b"old checkpoint")

    def fail(*args, **kwargs):
        raise ExportError("parity: made to fail")

    monkeypatch.setattr("bharnet_ros.training.teach.export_taught", fail)
    argv = ["teach", "train", str(takes), "--base", str(base_checkpoint), "--no-rehearse", "--steps", "2"]
    assert main([*argv, "-o", str(out), "--force", "--views", "1"]) == 1
    assert "EXPORT FAILED" in capsys.readouterr().err
    assert out.read_bytes() == b"old onnx"
    assert out.with_suffix(".pt").read_bytes() == b"old checkpoint"  # not a checkpoint of another model


def test_curve_refuses_a_folder_in_the_place_of_its_table_before_any_fit(teach_base, tmp_path, capsys):
    data = synth_takes(tmp_path / "ana.npz", ["idle", "stop"], "ana")
    base = fold_leaving_out(teach_base(), tmp_path / "old_bo", "bo")
    (tmp_path / "c" / "runs.csv").mkdir(parents=True)
    args = ["teach", "curve", "--base", str(base), "--data", str(data), "--new", "stop"]
    assert main([*args, "--out", str(tmp_path / "c"), "--force"]) == 2
    assert "runs.csv, which is no regular file" in capsys.readouterr().err
