"""``bharnet train`` and ``bharnet eval`` from the command line, including usage errors."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from bharnet_ros.cli import main
from bharnet_ros.tools import UsageError
from bharnet_ros.tools.synth import write_dataset

pytest.importorskip("torch", reason="needs torch: pip install -r requirements-training.txt")

REPO = Path(__file__).resolve().parents[2]
CONFIG = str(REPO / "config/train/synth_cpu.yaml")


@pytest.fixture(scope="module")
def synth_folder(tmp_path_factory) -> Path:
    """Five samples each of two classes (split: four train, one val per class)."""
    folder = tmp_path_factory.mktemp("synth")
    write_dataset(folder, ["wave", "thumbs_up"], per_class=5, seed=0, fps=30.0)
    return folder


@pytest.fixture(scope="module")
def trained(synth_folder, tmp_path_factory, tiny_run) -> Path:
    """A run folder made by ``bharnet train`` (one tiny epoch; overrides also work after --train)."""
    run = tmp_path_factory.mktemp("runs") / "run"
    argv = ["train", CONFIG, *tiny_run[:2], "--train", str(synth_folder), *tiny_run[2:], "--out", str(run)]
    assert main(argv) == 0
    assert yaml.safe_load((run / "model.yaml").read_text())["backbone"]["base_channels"] == 8
    return run


def test_train_then_eval_from_the_command_line(trained, synth_folder, tmp_path, capsys):
    assert (trained / "best.pt").is_file()
    assert (trained / "metrics.csv").is_file()
    out = tmp_path / "eval"
    argv = ["eval", str(trained / "best.pt"), str(synth_folder), "--split", "val", "--out", str(out)]
    assert main([*argv, "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_samples"] == 2
    assert summary["split"] == "val"
    assert "top-1" in capsys.readouterr().out
    argv[-1] = str(tmp_path / "causal")  # hands filled as the live node fills them
    assert main([*argv, "--no-progress", "--causal-hands", "--known-only"]) == 0
    causal = json.loads((tmp_path / "causal" / "summary.json").read_text())
    assert causal["num_samples"] == 2
    assert (causal["causal_hands"], causal["known_only"], causal["views"], causal["subjects"]) == (
        True, True, 1, None,
    )  # fmt: skip
    assert (summary["causal_hands"], summary["known_only"]) == (False, False)


def test_eval_known_only_counts_and_records_what_it_leaves_out(trained, tmp_path, capsys):
    """It named the classes only; summary.json did not say what was left out."""
    mixed = tmp_path / "mixed"
    write_dataset(mixed, ["wave", "thumbs_up", "clap"], per_class=2, seed=1, fps=30.0)
    out = tmp_path / "known"
    argv = ["eval", str(trained / "last.pt"), str(mixed), "--known-only", "--no-progress", "--out", str(out)]
    assert main(argv) == 0
    assert "left out 2 samples of clap (classes the model does not know)" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["num_samples"], summary["left_out"]) == (4, {"clap": 2})


def test_eval_views_of_a_frame_count_model_is_refused_not_ignored(trained, synth_folder, tmp_path, capsys):
    """--views averages windows of time-window models; a frame-count model is scored on one crop."""
    out = tmp_path / "views"
    assert main(["eval", str(trained / "last.pt"), str(synth_folder), "--views", "5", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "--views 5 needs a time-window model" in err
    assert not out.exists()


def test_eval_with_averages_models_and_refuses_other_classes(
    trained, synth_folder, tiny_model, tmp_path, capsys
):
    """``--with``: the logits of several models averaged (an ensemble), reported as such."""
    single, pair = tmp_path / "single", tmp_path / "pair"
    argv = ["eval", str(trained / "last.pt"), str(synth_folder), "--no-progress"]
    assert main([*argv, "--out", str(single)]) == 0
    assert main([*argv, "--with", str(trained / "best.pt"), "--out", str(pair)]) == 0
    assert "ensemble of 2 models" in capsys.readouterr().out
    alone, together = (json.loads((out / "summary.json").read_text()) for out in (single, pair))
    assert alone["ensemble_with"] == []
    assert together["ensemble_with"] == [str(trained / "best.pt")]
    assert together["num_samples"] == alone["num_samples"]
    assert set(together["branches_top1"]) == set(alone["branches_top1"])
    assert main([*argv, "--with", str(tiny_model), "--out", str(tmp_path / "mixed")]) == 2
    err = capsys.readouterr().err.strip()
    assert "has other classes than" in err
    assert len(err.splitlines()) == 1
    assert main([*argv, "--with", str(trained / "last.pt"), "--out", str(tmp_path / "twice")]) == 2
    assert "is given twice (MODEL and --with)" in capsys.readouterr().err
    os.link(trained / "last.pt", tmp_path / "same.pt")  # a hard link had passed as a second model
    assert main([*argv, "--with", str(tmp_path / "same.pt"), "--out", str(tmp_path / "twice")]) == 2
    assert "is given twice (MODEL and --with)" in capsys.readouterr().err
    assert not (tmp_path / "mixed").exists()
    assert main([*argv, "--with", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "gone")]) == 2
    assert "missing.pt not found" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train"], "name a training config first"),
        (["train", "optim.lr=1"], "name a training config first"),
        (["train", CONFIG, "optim.lrr=1"], "unknown config key 'optim.lrr'"),
        (["train", CONFIG, "notanoverride"], "is not a key=value override"),
        (["train", "missing.yaml"], "not found"),
        (["train", CONFIG, "--train", "/nonexistent/data.npz"], "not found"),
        (["train", "--resume", "/nonexistent/run"], "cannot resume"),
        (["train", CONFIG, "--out", CONFIG], "is a file; give a folder name"),
        (["eval", "/nonexistent/best.pt", "data.npz", "--out", "x"], "not found"),
        (["eval", "m.pt", "d.npz", "--out", "x", "--views", "1000000"], "--views must be a whole number"),
        (["eval", "m.pt", "d.npz", "--out", "x", "--views", "0"], "--views must be a whole number"),
        (["eval", "m.pt", "d.npz", "--out", "x", "--batch-size", "10000000"], "--batch-size must be a whole"),
        (["eval", "m.pt", "d.npz", "--out", "x", "--with", *["m.pt"] * 17], "--with models must be a whole"),
        (["train", CONFIG, "--train-people", "2"], "--train-people and --views work with --loso"),
        (["train", CONFIG, "--views", "0"], "--train-people and --views work with --loso"),
        (["train", CONFIG, "--loso", "--train-people", "0", "--out", "x"], "must be at least 1"),
        (["train", CONFIG, "--loso", "S1,S1", "--out", "x"], "name each person to hold out once"),
        (["train", CONFIG, "--loso", ",", "--out", "x"], "name each person to hold out once"),
        (["train", CONFIG, "optim.lr=.nan"], "optim.lr must be a finite number, got nan"),
        (["train", CONFIG, "optim.warmup_epochs=.inf"], "optim.warmup_epochs must be a finite number"),
        (["train", CONFIG, "augment.rotate_2d=.nan"], "augment.rotate_2d must be a finite number"),
        (["train", CONFIG, "epochs=true"], "epochs must be an integer, got True"),
        (["train", CONFIG, "batch_size=100000000000000000000"], "batch_size must be an integer from 1"),
        (["train", CONFIG, "seed=abc"], "seed must be an integer"),
        (["train", CONFIG, "seed=", "--out", "x"], "seed is empty; give it an integer (the default is 0)"),
        (["train", CONFIG, "device=~"], "device is empty; give it text (the default is auto)"),
        (["train", CONFIG, "device=abc"], "device must be auto, cpu, cuda or cuda:N"),
        (["train", CONFIG, "model=abc"], "model must be a mapping"),
        (["train", CONFIG, "model.overrides=abc"], "model.overrides must be a mapping"),
        (["train", CONFIG, "data.relabel=abc"], "data.relabel must be a mapping"),
        (["train", CONFIG, "preprocess.normalise=abc"], "preprocess.normalise must be true or false"),
        (["train", CONFIG, "model.overrides=" + "[" * 100_000], "nested too deeply to read"),
        (["synth", "-o", "a" * 300], "File name too long"),
        (["import", "ntu", "n" * 300, "-o", "x.npz"], "File name too long"),
        (["import", "ntu", "config", "-o", "x.npz", "--rename", "a=b\tc"], "--rename 'a=b\\tc': NEW must be"),
        (
            ["import", "ntu", "config", "-o", "x.npz", "--rename", "a=b", "--rename", "a=c"],
            "renames 'a' twice",
        ),
        (["train", CONFIG, "--loso", "S1", "--views", "1000000000", "--out", "x"], "--views must be a whole"),
        (["train", CONFIG, "--loso", "S1", "--views", "3", "--out", "x"], "--views 3 needs time windows"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(argv, message, capsys):
    """Each of these is refused before anything is written (no run folder is made)."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize("held", ["config", "model.config"])
def test_train_never_writes_over_its_own_configs_even_with_force(
    synth_folder, tiny_run, tmp_path, capsys, held
):
    out = tmp_path / "run"
    out.mkdir()
    config = out / "config.yaml"
    config.write_text(Path(CONFIG).read_text())
    model = out / "model.yaml"
    model.write_text((REPO / "config/model/bharnet_e.yaml").read_text())
    training = str(config) if held == "config" else CONFIG
    argv = ["train", training, *tiny_run, f"model.config={model}", "--train", str(synth_folder)]
    assert main([*argv, "--out", str(out), "--force"]) == 2
    assert "holds the input" in capsys.readouterr().err
    assert config.read_text() == Path(CONFIG).read_text()


@pytest.mark.parametrize(
    ("expert", "refused"), [("last.pt", True), ("fold_S1/last.pt", True), ("body/last.pt", False)]
)
def test_only_an_input_the_run_writes_over_is_refused(tmp_path, expert, refused):
    """An expert's run in a subfolder of --out was refused, though the run writes --out/last.pt."""
    from bharnet_ros.tools.train import check_out_beside_inputs
    from bharnet_ros.training.train import load_train_config

    out = tmp_path / "out"
    (out / expert).parent.mkdir(parents=True)
    (out / expert).write_bytes(b"")
    init = {"body": str(out / expert), "hand": None}
    config = load_train_config(None, base={"model": {"config": "m.yaml", "init": init}})
    if not refused:
        check_out_beside_inputs(config, out, None)
        return
    with pytest.raises(UsageError, match="which this run's own last.pt would replace"):
        check_out_beside_inputs(config, out, None)


def test_validating_on_the_training_files_is_refused(synth_folder, tiny_run, tmp_path, capsys):
    argv = ["train", CONFIG, *tiny_run, "--train", str(synth_folder), "--val", str(synth_folder)]
    assert main([*argv, "--out", str(tmp_path / "run")]) == 2
    assert "is given for training and for validation" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_train_into_a_folder_of_other_files_needs_force(synth_folder, tiny_run, tmp_path, capsys):
    """``--out`` holding someone's files is refused (nothing written), also for ``--loso``."""
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    argv = ["train", CONFIG, *tiny_run, "--train", str(synth_folder), "--out", str(out)]
    for extra in ([], ["--loso", "S1"]):
        assert main([*argv, *extra]) == 2
        assert "pass --force" in capsys.readouterr().err
        assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert main([*argv, "--force"]) == 0
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "last.pt").is_file()


def test_yes_and_no_are_class_names_not_booleans(tmp_path, capsys):
    """YAML 1.1 would read ``[stop, yes]`` as ``[stop, True]``; configs read them as ROS does."""
    from bharnet_ros.training.train import load_train_config

    config = load_train_config(CONFIG, ["data.classes=[stop, yes, no]", "augment.rotate_2d=1e-1"])
    assert config["data"]["classes"] == ["stop", "yes", "no"]
    assert config["augment"]["rotate_2d"] == 0.1


def test_eval_with_an_unknown_split_is_a_usage_error(trained, synth_folder, tmp_path, capsys):
    argv = ["eval", str(trained / "last.pt"), str(synth_folder), "--split", "nope", "--out", str(tmp_path)]
    assert main(argv) == 2
    assert "no split 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("subjects", ["", " , "])
def test_eval_subjects_naming_nobody_is_a_usage_error(trained, synth_folder, tmp_path, capsys, subjects):
    """--subjects "" (an unset shell variable) scored everyone, the training people included."""
    out = tmp_path / "out"
    argv = ["eval", str(trained / "last.pt"), str(synth_folder), "--subjects", subjects, "--out", str(out)]
    assert main(argv) == 2
    assert "names nobody; give people such as S1,S2" in capsys.readouterr().err
    assert not out.exists()


def test_eval_out_needs_force_and_keeps_other_files(trained, synth_folder, tmp_path, capsys):
    out = tmp_path / "eval"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    argv = ["eval", str(trained / "last.pt"), str(synth_folder), "--out", str(out), "--no-progress"]
    assert main(argv) == 2
    assert "is not empty; pass --force" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert main([*argv, "--force"]) == 0
    assert {"notes.txt", "summary.json", "confusion.png"} <= {p.name for p in out.iterdir()}
    assert [p.name for p in tmp_path.iterdir()] == ["eval"]  # no staging folder left


def test_eval_refuses_a_folder_in_the_place_of_an_output_file_before_evaluating(
    trained, synth_folder, tmp_path, capsys, monkeypatch
):
    import bharnet_ros.training.evaluate as evaluation

    out = tmp_path / "eval"
    (out / "predictions.csv").mkdir(parents=True)
    monkeypatch.setattr(evaluation, "open_model", lambda path: pytest.fail("evaluated before the check"))
    argv = ["eval", str(trained / "last.pt"), str(synth_folder), "--out", str(out), "--force"]
    assert main(argv) == 2
    assert "predictions.csv, which is no regular file" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("layout", "space", "message"),
    [
        ("ntu25", "image", "cannot feed a ntu25 skeleton to a model built for mediapipe33"),
        ("mediapipe33", "world", "cannot feed world-space skeletons to a model trained on image-space"),
    ],
)
def test_eval_of_a_model_built_for_another_layout_or_space_is_one_line(
    tiny_model, tmp_path, capsys, layout, space, message
):
    import numpy as np

    from bharnet_ros.core.layouts import LAYOUTS
    from bharnet_ros.training.dataset import Sample, SkeletonDataset

    body = np.zeros((1, 20, LAYOUTS[layout].num_joints, 4), np.float32)
    body[..., :3], body[..., 3] = 0.1, 1.0
    samples = [
        Sample(f"s{i}", i, body, np.zeros((1, 20, 2, 21, 4)), np.zeros((1, 20, 2), bool), np.arange(20) / 30)
        for i in range(3)
    ]
    data = SkeletonDataset.from_samples(samples, ["idle", "wave", "stop"], layout, space)
    path = data.save(tmp_path / "other.npz")
    assert main(["eval", str(tiny_model), str(path), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"does not fit {path}: {message}" in err
    assert err.endswith("evaluate it on data of its own layout and space")


class RunsCode:
    """Unpickling this calls os.system."""

    def __reduce__(self):
        return (os.system, ("echo this must never run",))


@pytest.mark.parametrize(("damage", "message"), [("evil", "refused to load"), ("cut", "not a readable")])
def test_resume_from_an_unsafe_or_truncated_state_is_one_line(trained, tmp_path, capsys, damage, message):
    import torch

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    state = run / "resume.pt"
    if damage == "evil":
        torch.save({"epoch": 1, "payload": RunsCode()}, state)
    else:
        state.write_bytes(state.read_bytes()[:100])
    assert main(["train", "--resume", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert message in err
    assert "weights_only" not in err


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("epoch", "last.pt holds epoch 1 and resume.pt epoch 'abc'; they are not one run's pair"),
        ("history", "resume.pt does not fit this run"),
        ("optimizer", "resume.pt does not fit this run"),
        ("small buffer", "does not fit this run (a momentum_buffer of shape (3,) and torch.float32 for a"),
        ("huge buffer", "does not fit this run (a non-dense momentum_buffer of shape (100000000000,)"),
        ("double buffer", "and torch.float64 for a parameter of"),
        ("spread buffer", "does not fit this run (a non-dense momentum_buffer of shape"),
        ("nan buffer", "does not fit this run (a momentum_buffer holds NaN"),
        ("text buffer", "does not fit this run (a momentum_buffer that is str, not a tensor"),
        ("scalar buffer", "does not fit this run (a momentum_buffer of shape () and torch.float32"),
    ],
)
def test_resume_from_a_state_of_wrong_fields_is_one_line(trained, tmp_path, capsys, change, message):
    import torch

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    state = torch.load(run / "resume.pt", weights_only=True)
    if change.endswith("buffer"):
        buffers = state["optimizer"]["state"][0]
        buffers["momentum_buffer"] = {
            "small buffer": torch.zeros(3),
            "huge buffer": torch.zeros(1).expand(10**11),  # a few bytes on disk
            "double buffer": buffers["momentum_buffer"].double(),
            "spread buffer": torch.zeros(1).expand(buffers["momentum_buffer"].shape),  # the right shape
            "nan buffer": torch.full_like(buffers["momentum_buffer"], float("nan")),
            "text buffer": "x",  # torch took both, and failed in the first step, after the data loaded
            "scalar buffer": torch.tensor(1.0),
        }[change]
    else:
        state[change] = {"epoch": "abc", "history": 5, "optimizer": {"state": {}, "param_groups": []}}[change]
    torch.save(state, run / "resume.pt")
    assert main(["train", "--resume", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert message in err


def test_resume_with_a_last_checkpoint_of_another_epoch_or_no_epochs_left_is_one_line(
    trained, tmp_path, capsys
):
    from bharnet_ros.model.checkpoint import load_checkpoint, save_checkpoint

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    assert main(["train", "--resume", str(run), "epochs=1"]) == 2
    assert (
        "has trained 1 epochs already; to train on, resume with epochs=N above 1" in capsys.readouterr().err
    )
    checkpoint = load_checkpoint(run / "last.pt")
    save_checkpoint(dataclasses.replace(checkpoint, epoch=3), run / "last.pt")  # another run's, say
    assert main(["train", "--resume", str(run), "epochs=4"]) == 2
    assert "last.pt holds epoch 3 and resume.pt epoch 1" in capsys.readouterr().err


def test_resume_keeps_the_runs_classes_data_and_folder(trained, synth_folder, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    assert main(["train", "--resume", str(run), "data.classes=[thumbs_up, wave]"]) == 2
    assert "its data settings cannot change" in capsys.readouterr().err
    stored = (run / "config.yaml").read_text()
    assert main(["train", "--resume", str(run), "model.overrides.backbone.base_channels=32"]) == 2
    assert "its model settings cannot change" in capsys.readouterr().err
    assert (run / "config.yaml").read_text() == stored
    assert main(["train", "--resume", str(run), "--out", str(tmp_path / "elsewhere")]) == 2
    assert "drop --out" in capsys.readouterr().err
    assert not (tmp_path / "elsewhere").exists()


def test_train_writes_neither_into_nor_onto_its_data(synth_folder, tiny_run, tmp_path, capsys):
    data = tmp_path / "synth"
    shutil.copytree(synth_folder, data)
    before = sorted(p.name for p in data.iterdir())
    for out, extra in ((data / "run", []), (data, ["--force"])):
        argv = ["train", CONFIG, *tiny_run, "--train", str(data), "--out", str(out), *extra]
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1
        assert "input" in err
    assert sorted(p.name for p in data.iterdir()) == before


def far_away_file(folder: Path) -> Path:
    """Three synthetic gestures per class (``write_dataset``), the second clip's body at 1e30."""
    from bharnet_ros.training.data import load_datasets

    write_dataset(folder / "synth", ["wave", "clap"], per_class=3, seed=0, fps=30.0)
    data = load_datasets([folder / "synth"])
    data.body[0, data.offsets[1] : data.offsets[2], :, :3] = 1e30
    return data.save(folder / "far.npz")


def test_a_clip_of_absurd_coordinates_is_one_line_for_train_and_eval(trained, tiny_run, tmp_path, capsys):
    """1e30 passes the file format (it is finite) but would train a model of NaN weights."""
    path = far_away_file(tmp_path)
    capsys.readouterr()  # the generator's progress bar
    out = tmp_path / "run"
    assert main(["train", CONFIG, *tiny_run, "--train", str(path), "--out", str(out)]) == 2
    assert main(["eval", str(trained / "last.pt"), str(path), "--out", str(tmp_path / "eval")]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2
    assert all("body coordinates (image space) reach 1e+30, outside [-10, 10]" in line for line in errors)
    assert not out.exists()
    assert not (tmp_path / "eval").exists()


def test_a_training_that_diverges_is_one_line_and_exit_2(synth_folder, tiny_run, tmp_path, capsys):
    out = tmp_path / "run"
    argv = [
        "train",
        CONFIG,
        *tiny_run,
        "optim.lr=100",
        "optim.warmup_epochs=0",
        "--train",
        str(synth_folder),
    ]
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "training diverged in epoch 1" in err
    assert not (out / "last.pt").exists()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("augment.rotate_2d=1e308", "augment.rotate_2d must be in [0, 3.14159]"),
        ("augment.hand_jitter=1e30", "augment.hand_jitter must be in [0, 1]"),
        ("augment.mirror_pairs=[[wave, nope]]", "augment.mirror_pairs names ['nope'], not among the classes"),
        ("augment.mirror_never=[nope]", "augment.mirror_never names 'nope', not among the classes"),
        ("model.overrides.backbone.base_channels=384", "more than the 50,000,000 a checkpoint may have"),
    ],
)
def test_settings_no_training_could_use_are_one_line_before_training(
    synth_folder, tiny_run, tmp_path, capsys, override, message
):
    """Refused before any epoch, and nothing is left behind: a model too large for any command to
    load again, an augmentation of absurd size, mirroring that names classes the data lacks."""
    out = tmp_path / "run"
    assert main(["train", CONFIG, *tiny_run, override, "--train", str(synth_folder), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert message in err
    assert not out.exists()


def test_a_config_of_another_name_may_live_in_the_run_folder(synth_folder, tiny_run, tmp_path):
    out = tmp_path / "exp1"
    out.mkdir()
    (out / "train.yaml").write_text(Path(CONFIG).read_text())  # a run writes config.yaml, not this
    argv = ["train", str(out / "train.yaml"), *tiny_run, "--train", str(synth_folder), "--out", str(out)]
    assert main([*argv, "--force"]) == 0
    assert (out / "train.yaml").read_text() == Path(CONFIG).read_text()


def test_running_out_of_memory_is_one_line_for_train_and_eval(
    trained, synth_folder, tiny_run, tmp_path, monkeypatch, capsys
):
    """torch's allocation error (a page of C++ context) becomes one line saying what to lower."""
    from bharnet_ros.training import evaluate as evaluate_module
    from bharnet_ros.training import train as train_module

    def out_of_memory(*args, **kwargs):
        raise RuntimeError(
            "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: "
            "you tried to allocate 131072000000 bytes. Error code 12 (Cannot allocate memory)"
        )

    monkeypatch.setattr(train_module, "train", out_of_memory)
    monkeypatch.setattr(evaluate_module, "evaluate", out_of_memory)
    argv = ["train", CONFIG, *tiny_run, "--train", str(synth_folder), "--out", str(tmp_path / "run")]
    eval_argv = ["eval", str(trained / "last.pt"), str(synth_folder), "--out", str(tmp_path / "eval")]
    for command, fix in ((argv, "lower batch_size"), (eval_argv, "lower --batch-size")):
        assert main(command) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1
        assert "ran out of memory (it asked for 122.1 GiB more)" in err
        assert fix in err


def test_a_folder_holding_a_run_is_never_advised_force(trained, synth_folder, tiny_run, tmp_path, capsys):
    """A run (its last.pt) is continued with --resume, never replaced: the advice says so, with
    --force as without (--force used to be advised, then refused)."""
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    argv = ["train", CONFIG, *tiny_run, "--train", str(synth_folder), "--out", str(run)]
    for extra in ([], ["--force"]):
        assert main([*argv, *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert f"continue it with --resume {run}" in err
        assert "--force to" not in err


def test_a_run_stopped_before_its_first_epoch_ended_is_rerun_with_force(
    synth_folder, tiny_run, tmp_path, capsys
):
    """What a run killed in its first epoch leaves (config.yaml, model.yaml, no checkpoint) cannot be
    resumed; the refusal says that --force starts it again, which check_run_folder then allows."""
    from bharnet_ros.tools.train import check_run_folder

    out = tmp_path / "run"
    out.mkdir()
    for name in ("config.yaml", "model.yaml"):
        (out / name).write_text("stopped\n")
    argv = ["train", CONFIG, *tiny_run, "--train", str(synth_folder), "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "stopped before its first epoch ended" in err
    assert "rerun with --force" in err
    check_run_folder(out, loso=False, force=True)  # allowed


def test_loso_continues_only_what_a_loso_run_wrote(tmp_path):
    """An `eval` report (the pooled files' names) or a user's fold_notes/ passed for an earlier
    --loso run, and its summary.json was overwritten without --force."""
    import json

    from bharnet_ros.tools.train import check_run_folder

    report = tmp_path / "report"
    report.mkdir()
    (report / "summary.json").write_text(json.dumps({"top1": 0.5}))
    (report / "predictions.csv").write_text("sample,true\n")
    with pytest.raises(UsageError, match="is not a run of `bharnet train --loso`"):
        check_run_folder(report, loso=True, force=False)
    notes = tmp_path / "notes"
    (notes / "fold_notes").mkdir(parents=True)
    (notes / "fold_notes" / "mine.txt").write_text("mine")
    with pytest.raises(UsageError, match="it holds fold_notes"):
        check_run_folder(notes, loso=True, force=False)
    earlier = tmp_path / "earlier"
    (earlier / "fold_S1").mkdir(parents=True)
    (earlier / "fold_S1" / "config.yaml").write_text("epochs: 1\n")
    (earlier / "fold_S2").mkdir()  # made, then stopped
    (earlier / "summary.json").write_text(json.dumps({"kind": "leave-one-subject-out"}))
    (earlier / "confusion.png").write_bytes(b"")
    check_run_folder(earlier, loso=True, force=False)


@pytest.mark.parametrize(
    ("loso", "name"), [(False, "resume.pt"), (False, "metrics.csv"), (True, "groups.csv")]
)
def test_a_folder_where_a_run_writes_a_file_is_refused_even_with_force(tmp_path, loso, name):
    """--force let a run start, and it failed after its first epoch; a folder named resume.pt left
    a run that could neither resume nor start again."""
    from bharnet_ros.tools.train import check_run_folder

    (tmp_path / "out" / name).mkdir(parents=True)
    with pytest.raises(UsageError, match=name):
        check_run_folder(tmp_path / "out", loso=loso, force=True)


def test_overrides_after_the_options_are_overrides(tmp_path):
    """``--out DIR epochs=1`` (or after --force, --loso) reads epochs=1 as an override; a stray word
    without ``=`` is still a usage error."""
    from bharnet_ros.cli import build_parser, parse_arguments

    def items(*argv: str) -> list[str]:
        return parse_arguments(build_parser(["train"]), ["train", *argv]).items

    assert items(CONFIG, "--out", "x", "epochs=1") == [CONFIG, "epochs=1"]
    assert items(CONFIG, "seed=2", "--force", "epochs=1", "--out", "x", "optim.lr=0.1") == [
        CONFIG, "seed=2", "epochs=1", "optim.lr=0.1",
    ]  # fmt: skip
    assert items("--resume", "run", "epochs=3") == ["epochs=3"]
    with pytest.raises(SystemExit):
        items(CONFIG, "--out", "x", "stray")
    with pytest.raises(SystemExit):  # only commands that take overrides read them late
        parse_arguments(build_parser(["export"]), ["export", "c.pt", "-o", "x.onnx", "epochs=1"])


def test_loso_under_torchrun_is_refused_before_any_work(tmp_path, monkeypatch, capsys):
    """Only rank 0 saves a fold: the other ranks opened its last.pt before it was written and
    failed with "check the path"."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["train", CONFIG, "--out", str(tmp_path / "cv"), "--loso"]) == 2
    assert "--loso runs in one process, not under torchrun" in capsys.readouterr().err
    assert not (tmp_path / "cv").exists()


def test_an_override_after_a_bare_loso_is_an_override():
    """`--loso epochs=1` held out a person named 'epochs=1'; a bare --loso means everyone."""
    from bharnet_ros.cli import build_parser, parse_arguments
    from bharnet_ros.tools.train import overrides_from

    argv = ["train", CONFIG, "--out", "x", "--loso", "epochs=1"]
    args = parse_arguments(build_parser(argv), argv)
    assert overrides_from(args, []) == ["epochs=1"]
    assert args.loso == "all"


def test_train_given_twice_trains_on_both_lists_and_not_beside_data_train(tmp_path):
    """The second --train had replaced the first without a word."""
    from bharnet_ros.cli import build_parser, parse_arguments
    from bharnet_ros.tools.train import overrides_from

    argv = ["train", CONFIG, "--train", "a.npz", "b.npz", "--train", "c.npz", "--out", "x"]
    args = parse_arguments(build_parser(argv), argv)
    assert args.train == ["a.npz", "b.npz", "c.npz"]
    with pytest.raises(UsageError, match="give the train data once: --train or data.train=, not both"):
        overrides_from(args, ["data.train=[d.npz]"])


def test_train_and_val_files_may_have_any_name(tmp_path):
    """--train and --val become YAML overrides: a quote in a path must stay part of it."""
    import argparse

    from bharnet_ros.tools.train import overrides_from
    from bharnet_ros.training.train import load_train_config

    names = [tmp_path / "it's.npz", tmp_path / "a, b [c].npz"]
    args = argparse.Namespace(train=[str(p) for p in names], val=[str(names[0])])
    config = load_train_config(CONFIG, overrides_from(args, []))
    assert config["data"]["train"] == [str(p) for p in names]
    assert config["data"]["val"] == [str(names[0])]
