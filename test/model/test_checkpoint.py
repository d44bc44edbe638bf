"""Checkpoints: plain-data round trip, refusal of pickled code, version and file errors."""

from __future__ import annotations

import os

import pytest
import torch

from bharnet_ros.core.preprocess import PreprocessConfig
from bharnet_ros.model.bharnet import build_model
from bharnet_ros.model.checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    load_checkpoint,
    make_checkpoint,
    save_checkpoint,
)

SMALL = {"backbone": {"stages": [[1, 1], [2, 2]]}, "expertized": {"split_block": 1}}


class NotPlainData:
    """Stands for any pickled object, which weights_only loading must refuse."""


class RunsCode:
    """Unpickling this calls os.system: what a malicious checkpoint does."""

    def __reduce__(self):
        return (os.system, ("echo this must never run",))


@pytest.fixture
def saved(tmp_path, tiny_config):
    model = build_model(tiny_config("bharnet_e", SMALL)).eval()
    checkpoint = make_checkpoint(
        model,
        [f"class{i}" for i in range(5)],
        PreprocessConfig(frames=16, num_persons=2),
        hand_intensive=["class1"],
        epoch=7,
        metrics={"top1": 0.5},
    )
    return model, save_checkpoint(checkpoint, tmp_path / "ckpt" / "model.pt")


def test_round_trip_rebuilds_the_same_model(saved, inputs):
    model, path = saved
    loaded = load_checkpoint(path)
    assert loaded.class_names == [f"class{i}" for i in range(5)]
    assert loaded.hand_intensive == ["class1"]
    assert (loaded.epoch, loaded.metrics) == (7, {"top1": 0.5})
    assert loaded.preprocess_config == PreprocessConfig(frames=16, num_persons=2)
    assert loaded.config == model.config
    rebuilt = loaded.build_model()
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(**inputs)["fused"], model(**inputs)["fused"])


def test_class_names_must_match_the_head(tiny_config):
    model = build_model(tiny_config("body_expert", SMALL))
    with pytest.raises(ValueError, match="class names"):
        make_checkpoint(model, ["a", "b"], PreprocessConfig())


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format_version": 1, "payload": NotPlainData()}, path)
    with pytest.raises(CheckpointError, match="refused to load"):
        load_checkpoint(path)


def test_newer_format_is_refused(saved):
    _, path = saved
    data = torch.load(path, weights_only=True)
    data["format_version"] = FORMAT_VERSION + 1
    torch.save(data, path)
    with pytest.raises(CheckpointError, match="newer than this code"):
        load_checkpoint(path)


def test_missing_corrupt_and_foreign_files(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nothing.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint" * 8)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(corrupt)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(CheckpointError, match="not a bharnet checkpoint"):
        load_checkpoint(foreign)
    partial = tmp_path / "partial.pt"
    torch.save({"format_version": 1, "state_dict": {}}, partial)
    with pytest.raises(CheckpointError, match="lacks"):
        load_checkpoint(partial)


def test_a_pickle_that_would_run_code_is_refused_without_torch_advice(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format_version": 1, "payload": RunsCode()}, path)
    with pytest.raises(CheckpointError, match="refused to load") as refused:
        load_checkpoint(path)
    assert "weights_only" not in str(refused.value)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="not a readable checkpoint") as unreadable:
        load_checkpoint(truncated)
    assert "\n" not in str(unreadable.value)


@pytest.mark.parametrize("text", ["a\nb\n", "root:x:0:0:root:/root:/bin/bash\n", "(]}", ""])
def test_any_other_file_is_a_one_line_checkpoint_error(tmp_path, text):
    """torch's unpickler fails on text in many ways (IndexError, EOFError, ...): all are one error."""
    path = tmp_path / "notes.pt"
    path.write_text(text)
    with pytest.raises(CheckpointError, match="not a readable checkpoint") as unreadable:
        load_checkpoint(path)
    assert "\n" not in str(unreadable.value)


def test_weights_that_do_not_fit_the_config_are_a_checkpoint_error(saved, tiny_config):
    _, path = saved
    checkpoint = load_checkpoint(path)
    other = build_model(tiny_config("bharnet_e", {**SMALL, "backbone": {"base_channels": 16}}))
    checkpoint.state_dict = other.state_dict()
    with pytest.raises(CheckpointError, match="do not fit its model config"):
        checkpoint.build_model()


def test_weights_with_nan_or_inf_are_refused_naming_a_tensor(saved):
    """What a diverged training leaves: a model of it predicts NaN, which argmax reads as class 0."""
    _, path = saved
    raw = torch.load(path, weights_only=True)
    name = next(k for k, v in raw["state_dict"].items() if v.is_floating_point())
    raw["state_dict"][name].view(-1)[0] = float("inf")
    torch.save(raw, path)
    with pytest.raises(
        CheckpointError, match=f"1 of its weight tensors \\(e.g. {name}\\) hold NaN or infinite"
    ):
        load_checkpoint(path)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("epoch", "abc"),
        ("class_names", 5),
        ("class_names", [1, 2, 3, 4, 5]),
        ("class_names", ["a"] * 5),
        ("metrics", 5),
        ("preprocess", {"frames": "many"}),
        ("state_dict", "x"),
        ("hand_intensive", 3),
    ],
)
def test_fields_of_the_wrong_type_are_refused_at_load_naming_the_field(saved, field, value):
    _, path = saved
    raw = torch.load(path, weights_only=True)
    raw[field] = value
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match=f"its {field} is not what bharnet writes"):
        load_checkpoint(path)


def test_a_folder_is_named_as_a_folder(tmp_path):
    with pytest.raises(CheckpointError, match="is a folder; give the file itself"):
        load_checkpoint(tmp_path)
