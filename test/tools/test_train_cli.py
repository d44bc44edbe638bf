"""``bharnet train`` and ``bharnet eval`` from the command line, including usage errors."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from bharnet_ros.cli import main
from bharnet_ros.tools.synth import write_dataset

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
        (["train", CONFIG, "--train-people", "2"], "--train-people works with --loso"),
        (["train", CONFIG, "--loso", "--train-people", "0", "--out", "x"], "must be at least 1"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1


def test_eval_with_an_unknown_split_is_a_usage_error(trained, synth_folder, tmp_path, capsys):
    argv = ["eval", str(trained / "last.pt"), str(synth_folder), "--split", "nope", "--out", str(tmp_path)]
    assert main(argv) == 2
    assert "no split 'nope'" in capsys.readouterr().err


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


def test_eval_of_a_model_built_for_another_layout_is_one_line(tiny_model, tmp_path, capsys):
    import numpy as np

    from bharnet_ros.training.dataset import Sample, SkeletonDataset

    body = np.zeros((1, 20, 25, 4), np.float32)
    body[..., :3], body[..., 3] = 0.1, 1.0
    samples = [
        Sample(f"s{i}", i, body, np.zeros((1, 20, 2, 21, 4)), np.zeros((1, 20, 2), bool), np.arange(20) / 30)
        for i in range(3)
    ]
    data = SkeletonDataset.from_samples(samples, ["idle", "wave", "stop"], "ntu25", "world")
    path = data.save(tmp_path / "ntu_like.npz")
    assert main(["eval", str(tiny_model), str(path), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "does not fit" in err
    assert "ntu25" in err


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
