"""``bharnet export``: the CLI round trip and one-line errors with exit code 2."""

from __future__ import annotations

import os
from pathlib import Path

import onnx
import pytest
import torch

from bharnet_ros.cli import main
from bharnet_ros.core.inference import OnnxClassifier
from bharnet_ros.core.preprocess import PreprocessConfig
from bharnet_ros.model.batchnorm import calibrate_batchnorm
from bharnet_ros.model.bharnet import build_model
from bharnet_ros.model.checkpoint import make_checkpoint, save_checkpoint
from bharnet_ros.model.config import load_model_config

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config" / "model"
FRAMES = 16
TINY = {
    "num_classes": 3,
    "backbone": {"base_channels": 8, "stages": [[1, 1], [2, 2]]},
    "attention": {"heads": 2, "dim_head": 8, "num_features": 16},
    "expertized": {"split_block": 1},
    "input": {"frames": FRAMES, "num_persons": 1},
}


@pytest.fixture
def checkpoint_path(tmp_path):
    torch.manual_seed(0)
    model = build_model(load_model_config(CONFIG_DIR / "bharnet_e.yaml", TINY))
    batch = {"body": torch.randn(4, 3, FRAMES, 25, 1), "hand": torch.randn(4, 3, FRAMES, 25, 2)}
    calibrate_batchnorm(model, [batch])
    preprocess = PreprocessConfig(frames=FRAMES, num_persons=1)
    checkpoint = make_checkpoint(
        model.eval(), ["wave", "point", "stop"], preprocess, hand_intensive=["point"]
    )
    return save_checkpoint(checkpoint, tmp_path / "bharnet_e.pt")


def test_export_round_trip(checkpoint_path, tmp_path, capsys):
    output = tmp_path / "out" / "model.onnx"
    assert main(["export", str(checkpoint_path), "-o", str(output), "--expert-only"]) == 0
    printed = capsys.readouterr().out
    assert "parity vs PyTorch" in printed
    classifier = OnnxClassifier(output, providers="cpu")
    assert classifier.labels == ["wave", "point", "stop"]
    assert classifier.metadata["hand_intensive"] == ["point"]
    assert classifier.variant == "bharnet_e_expert_only"
    assert classifier.output_names == ["logits", "body_expert_logits", "hand_expert_logits"]
    ops = {node.op_type for node in onnx.load(str(output)).graph.node}
    assert not ops & {"Einsum", "If"}


def test_missing_checkpoint_exits_2_with_one_line(tmp_path, capsys):
    code = main(["export", str(tmp_path / "missing.pt"), "-o", str(tmp_path / "m.onnx")])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "does not exist" in err
    assert not (tmp_path / "m.onnx").exists()


def test_an_export_named_other_than_onnx_is_refused(tmp_path, capsys):
    """-o x.pt wrote an ONNX file that eval then called a corrupt checkpoint."""
    code = main(["export", str(tmp_path / "missing.pt"), "-o", str(tmp_path / "x.pt")])
    assert code == 2
    assert "an export is an .onnx file; name it x.onnx" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()


def test_a_checkpoint_with_nan_weights_exits_2_before_writing(checkpoint_path, tmp_path, capsys):
    """A diverged training's checkpoint would export a model that says NaN for everything."""
    raw = torch.load(checkpoint_path, weights_only=True)
    next(iter(raw["state_dict"].values())).fill_(float("nan"))
    torch.save(raw, checkpoint_path)
    assert main(["export", str(checkpoint_path), "-o", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "hold NaN or infinite values" in err
    assert not (tmp_path / "m.onnx").exists()


def test_old_opset_exits_2(checkpoint_path, tmp_path, capsys):
    assert main(["export", str(checkpoint_path), "-o", str(tmp_path / "m.onnx"), "--opset", "13"]) == 2
    assert "opset" in capsys.readouterr().err


def test_an_opset_newer_than_the_exporter_writes_exits_2_with_the_range(checkpoint_path, tmp_path, capsys):
    from bharnet_ros.tools.export import highest_opset

    output = tmp_path / "m.onnx"
    assert main(["export", str(checkpoint_path), "-o", str(output), "--opset", "1000"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert f"use 17 to {highest_opset()}" in err
    assert not output.exists()
    assert highest_opset() >= 17


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (b"\x80\x02binary checkpoint", "is not a JSON text file"),
        (
            b'{"expert_only": {"temperature": "abc", "none_threshold": 0.5}}',
            'temperature "abc" is not a number',
        ),
        (
            b'{"expert_only": {"temperature": null, "none_threshold": 0.5}}',
            "temperature null is not a number",
        ),
    ],
)
def test_a_bad_calibration_exits_2_naming_the_file_and_entry(
    checkpoint_path, tmp_path, capsys, content, named
):
    calibration = tmp_path / "calibration.json"
    calibration.write_bytes(content)
    output = tmp_path / "m.onnx"
    argv = [
        "export",
        str(checkpoint_path),
        "-o",
        str(output),
        "--expert-only",
        "--calibration",
        str(calibration),
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert str(calibration) in err
    assert named in err
    assert not output.exists()


def test_fp16_exits_2_with_advice(checkpoint_path, tmp_path, capsys):
    assert main(["export", str(checkpoint_path), "-o", str(tmp_path / "m.onnx"), "--fp16"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "fp16" in err
    assert "trt_fp16_enable" in err  # what to do instead


def test_export_never_replaces_its_checkpoint_and_needs_force_for_an_existing_onnx(
    checkpoint_path, tmp_path, capsys
):
    original = checkpoint_path.read_bytes()
    for extra in ([], ["--force"]):
        assert main(["export", str(checkpoint_path), "-o", str(checkpoint_path), *extra]) == 2
        assert "an export is an .onnx file" in capsys.readouterr().err
    assert checkpoint_path.read_bytes() == original
    output = tmp_path / "model.onnx"
    output.write_text("an earlier export")
    assert main(["export", str(checkpoint_path), "-o", str(output), "--expert-only"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "already exists; pass --force" in err
    assert output.read_text() == "an earlier export"
    assert main(["export", str(checkpoint_path), "-o", str(output), "--expert-only", "--force"]) == 0
    assert OnnxClassifier(output, providers="cpu").labels == ["wave", "point", "stop"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bharnet_e.pt", "model.onnx"]  # no temporary


class RunsCode:
    """Unpickling this calls os.system."""

    def __reduce__(self):
        return (os.system, ("echo this must never run",))


def test_a_checkpoint_that_would_run_code_is_refused_in_one_line(tmp_path, capsys):
    evil = tmp_path / "evil.pt"
    torch.save({"format_version": 1, "payload": RunsCode()}, evil)
    assert main(["export", str(evil), "-o", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "refused to load" in err
    assert "weights_only" not in err


def checkpoint_of(variant: str, path: Path, **overrides) -> Path:
    """A tiny checkpoint of ``variant`` (a config in config/model) with ``overrides``."""
    torch.manual_seed(0)
    model = build_model(load_model_config(CONFIG_DIR / f"{variant}.yaml", {**TINY, **overrides}))
    batch = {"body": torch.randn(4, 3, FRAMES, 25, 1), "hand": torch.randn(4, 3, FRAMES, 25, 2)}
    calibrate_batchnorm(model, [batch])
    preprocess = PreprocessConfig(frames=FRAMES, num_persons=1)
    return save_checkpoint(make_checkpoint(model.eval(), ["wave", "point", "stop"], preprocess), path)


def test_a_failed_parity_check_leaves_the_earlier_file_as_it_was(checkpoint_path, tmp_path, capsys):
    output = tmp_path / "model.onnx"
    assert main(["export", str(checkpoint_path), "-o", str(output)]) == 0
    good = output.read_bytes()
    checkpoint = torch.load(checkpoint_path, weights_only=True)
    for name, weights in checkpoint["state_dict"].items():
        if name.endswith("fc.weight"):
            weights *= 1e38  # still finite, but the logits overflow: inf - inf, no parity
    torch.save(checkpoint, tmp_path / "huge.pt")
    capsys.readouterr()
    assert main(["export", str(tmp_path / "huge.pt"), "-o", str(output), "--force"]) == 1
    err = capsys.readouterr().err
    assert "PARITY CHECK FAILED, nothing written" in err
    assert len(err.strip().splitlines()) == 1
    assert output.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bharnet_e.pt", "huge.pt", "model.onnx"]


def test_a_body_expert_with_noisy_or_fusion_exports_without_a_hand_mask(tmp_path, capsys):
    source = checkpoint_of("body_expert", tmp_path / "body.pt", fusion="noisy_or")
    output = tmp_path / "body.onnx"
    assert main(["export", str(source), "-o", str(output)]) == 0
    assert "parity vs PyTorch" in capsys.readouterr().out
    assert OnnxClassifier(output, providers="cpu").input_names == ["body"]


def test_the_distance_is_fitted_on_the_training_data_a_config_names(checkpoint_path, tmp_path, capsys):
    data = tmp_path / "data"  # every class of the model, "point" by the recipe's relabel
    assert main(["synth", "-o", str(data), "--per-class", "2", "--classes", "wave,pointing,stop"]) == 0
    config = tmp_path / "config.yaml"
    config.write_text(f"data:\n  train: ['{data}']\n  relabel: {{pointing: point}}\n")
    output = tmp_path / "model.onnx"
    args = [
        "export",
        str(checkpoint_path),
        "-o",
        str(output),
        "--expert-only",
        "--distance-from",
        str(config),
    ]
    assert main(args) == 0
    classifier = OnnxClassifier(output, providers="cpu")
    assert classifier.output_names[-1] == "distance"
    assert "distance_threshold" not in classifier.metadata  # no calibration given: the node's parameter


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("data:\n  train: [missing.npz]\n", "its training data is not here"),
        ("data: {}\n", "names no training data"),
        ("not: [yaml", "is not a YAML training config"),
        ("- a list\n", "is not a YAML training config"),
        ("", "is not a YAML training config"),
        (None, "no such file"),
    ],
)
def test_a_distance_config_without_its_data_exits_2_in_one_line(
    checkpoint_path, tmp_path, content, message, capsys
):
    config = tmp_path / "config.yaml"
    if content is not None:
        config.write_text(content)
    output = tmp_path / "model.onnx"
    assert main(["export", str(checkpoint_path), "-o", str(output), "--distance-from", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1
    assert not output.exists()


@pytest.mark.parametrize(("kind", "message"), [("folder", "Is a directory"), ("fifo", "not a regular file")])
def test_a_distance_config_that_is_no_file_exits_2_without_waiting(
    checkpoint_path, tmp_path, kind, message, capsys
):
    config = tmp_path / "config.yaml"
    if kind == "folder":
        config.mkdir()
    else:
        os.mkfifo(config)
    output = tmp_path / "model.onnx"
    assert main(["export", str(checkpoint_path), "-o", str(output), "--distance-from", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot be read" in err
    assert message in err
    assert not output.exists()


def test_a_distance_config_of_other_classes_exits_2(checkpoint_path, tmp_path, capsys):
    data = tmp_path / "claps"
    synth_args = ["synth", "-o", str(data), "--per-class", "2", "--seed", "1", "--classes", "clap"]
    assert main(synth_args) == 0
    config = tmp_path / "config.yaml"
    config.write_text(f"data:\n  train: ['{data}']\n")
    args = ["export", str(checkpoint_path), "-o", str(tmp_path / "m.onnx"), "--distance-from", str(config)]
    assert main(args) == 2
    assert "holds no sample of the model's wave, point, stop" in capsys.readouterr().err
    more = tmp_path / "some"  # some of the classes: the others would always be unfamiliar
    assert main(["synth", "-o", str(more), "--per-class", "2", "--seed", "1", "--classes", "wave,stop"]) == 0
    config.write_text(f"data:\n  train: ['{more}']\n")
    assert main(args) == 2
    assert (
        "holds no sample of the model's point, whose windows would then all read" in capsys.readouterr().err
    )
