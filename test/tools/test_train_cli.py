"""``bharnet train`` and ``bharnet eval`` from the command line, including usage errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from bharnet_ros.cli import main
from bharnet_ros.tools.synth import write_dataset

REPO = Path(__file__).resolve().parents[2]
CONFIG = str(REPO / "config/train/synth_cpu.yaml")
TINY = [
    "epochs=1",
    "batch_size=4",
    "workers=0",
    "progress=false",
    "model.overrides.input.frames=16",
    "model.overrides.backbone.base_channels=8",
    "model.overrides.attention.heads=1",
    "model.overrides.attention.dim_head=8",
]


@pytest.fixture(scope="module")
def synth_folder(tmp_path_factory) -> Path:
    """Five samples each of two classes (split: four train, one val per class)."""
    folder = tmp_path_factory.mktemp("synth")
    write_dataset(folder, ["wave", "thumbs_up"], per_class=5, seed=0, fps=30.0)
    return folder


@pytest.fixture(scope="module")
def trained(synth_folder, tmp_path_factory) -> Path:
    """A run folder made by ``bharnet train`` (one tiny epoch; overrides also work after --train)."""
    run = tmp_path_factory.mktemp("runs") / "run"
    assert main(["train", CONFIG, *TINY[:2], "--train", str(synth_folder), *TINY[2:], "--out", str(run)]) == 0
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
        (["eval", "/nonexistent/best.pt", "data.npz", "--out", "x"], "not found"),
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
