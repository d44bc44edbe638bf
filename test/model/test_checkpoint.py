"""Checkpoints: plain-data round trip, refusal of pickled code, version and file errors."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest
import torch

from bharnet_ros.core.preprocess import PreprocessConfig
from bharnet_ros.model import checkpoint as checkpoint_module
from bharnet_ros.model.bharnet import build_model
from bharnet_ros.model.checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    load_checkpoint,
    make_checkpoint,
    save_checkpoint,
    small_plain_data,
)
from bharnet_ros.model.config import config_from_dict

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
        PreprocessConfig(frames=64, num_persons=2),
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
    assert loaded.preprocess_config == PreprocessConfig(frames=64, num_persons=2)
    assert loaded.config == model.config
    rebuilt = loaded.build_model()
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(**inputs)["fused"], model(**inputs)["fused"])


def test_a_save_cut_off_keeps_the_last_good_file_and_no_partial_one(saved, monkeypatch):
    _, path = saved
    before = path.read_bytes()

    def cut_off(data, target) -> None:
        with open(target, "wb") as stream:
            stream.write(b"PK\x03\x04 half of a checkpoint")
        raise KeyboardInterrupt  # SIGTERM or Ctrl-C in the middle of the write

    monkeypatch.setattr(torch, "save", cut_off)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(load_checkpoint(path), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.pt"]


@pytest.mark.parametrize(
    ("key", "value"), [("frames", 32), ("num_persons", 1), ("body_layout", "mediapipe33")]
)
def test_preprocess_settings_that_do_not_fit_the_model_are_refused_at_load(saved, key, value):
    _, path = saved
    data = torch.load(path, weights_only=True)
    data["preprocess"][key] = value
    torch.save(data, path)
    with pytest.raises(
        CheckpointError, match=f"preprocess settings do not match its model \\({key}: preprocess"
    ):
        load_checkpoint(path)


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


def test_compressed_and_legacy_files_are_refused_before_torch_reads_them(saved, tmp_path):
    """torch allocates what such a file declares before any check: 3 GB of zeros fit in 4 MB."""
    _, path = saved
    deflated = tmp_path / "deflated.pt"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(deflated, "w", zipfile.ZIP_DEFLATED) as target:
        for member in source.infolist():
            target.writestr(member.filename, source.read(member))
    with pytest.raises(CheckpointError, match="refused to load: its entries are compressed"):
        load_checkpoint(deflated)
    overlapping = tmp_path / "overlapping.pt"
    data = bytearray(path.read_bytes())
    directory = data.rfind(b"PK\x01\x02")  # the last entry of the central directory: say it is huge
    data[directory + 24 : directory + 28] = (2**31).to_bytes(4, "little")
    overlapping.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="claim more bytes than the file holds"):
        load_checkpoint(overlapping)
    legacy = tmp_path / "legacy.pt"
    torch.save(torch.load(path, weights_only=True), legacy, _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError, match="not the zip archive torch.save writes"):
        load_checkpoint(legacy)


def test_a_config_that_expands_to_billions_of_values_is_refused(saved):
    """Pickle keeps shared references: one list ten times at each of nine levels is 11 kB on disk."""
    _, path = saved
    data = torch.load(path, weights_only=True)
    nested: list = [0]
    for _ in range(9):
        nested = [nested] * 10
    data["model_config"]["test_mirror"] = nested
    torch.save(data, path)
    with pytest.raises(CheckpointError, match="its model_config is not what bharnet writes"):
        load_checkpoint(path)
    assert small_plain_data({"a": [1, 2.0, "x", None, True]})
    assert not small_plain_data({"a": {1: 2}})


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


def test_a_negative_batchnorm_variance_is_refused_as_nan_weights_are(saved):
    _, path = saved
    raw = torch.load(path, weights_only=True)
    name = next(k for k in raw["state_dict"] if k.endswith("running_var"))
    raw["state_dict"][name].view(-1)[0] = -1.0  # finite, yet every output of the model is NaN
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match=f"e.g. {name}\\) hold NaN or infinite values \\(or a negative"):
        load_checkpoint(path)


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex64, torch.float16, torch.int64])
def test_weights_of_another_dtype_are_refused_not_cast(saved, dtype):
    """float64 1e300 would become infinite in float32, and an imaginary NaN would vanish."""
    _, path = saved
    raw = torch.load(path, weights_only=True)
    name = next(k for k, v in raw["state_dict"].items() if v.is_floating_point())
    raw["state_dict"][name] = raw["state_dict"][name].to(dtype)
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match=f"{name} holds {dtype} values, the model torch.float32"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("epoch", "abc"),
        ("class_names", 5),
        ("class_names", [1, 2, 3, 4, 5]),
        ("class_names", ["a"] * 5),
        ("metrics", 5),
        ("metrics", {"top1": 10**400}),  # float() of it failed only once a fine-tune had trained
        ("metrics", {"top1": True}),
        ("metrics", {3: 0.5}),
        ("preprocess", {"frames": "many"}),
        ("state_dict", "x"),
        ("hand_intensive", 3),
        ("hand_intensive", ["no_such_class"]),
        ("class_names", ["class0", "\x1b[31mred", "class2", "class3", "class4"]),  # reach a terminal
        ("class_names", ["class0", "x" * 201, "class2", "class3", "class4"]),
        ("hand_intensive", ["line\nbreak"]),
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


def test_a_device_or_a_pipe_is_named_as_no_regular_file(tmp_path):
    """They exist: "does not exist" would send the user looking for a typo (and a FIFO must not block)."""
    fifo = tmp_path / "pipe.pt"
    os.mkfifo(fifo)
    for path in ("/dev/zero", fifo):
        with pytest.raises(CheckpointError, match="is not a regular file"):
            load_checkpoint(path)


def resaved(path, **changes):
    """The checkpoint at ``path`` rewritten with ``changes`` to its raw dict (as a hostile file is)."""
    raw = torch.load(path, weights_only=True)
    raw.update(changes)
    torch.save(raw, path)
    return raw


def test_a_config_too_large_in_product_is_refused_on_the_meta_device(saved, monkeypatch):
    """Width and depth are each within their caps, their product is ~68 M parameters: the file is
    a few kB, the model it describes is refused from shapes alone, never built in memory."""
    _, path = saved
    huge = {
        "variant": "body_expert",
        "num_classes": 5,
        "backbone": {"base_channels": 4096, "stages": [[1, 1]] * 2},
    }
    config_from_dict(huge)  # each size alone passes validation
    resaved(path, model_config=huge, state_dict={})  # the size is refused before the weights are compared
    devices = []
    real_build = checkpoint_module.build_model

    def recording_build(config):
        devices.append(torch.empty(0).device.type)  # the device the model is built on
        return real_build(config)

    monkeypatch.setattr(checkpoint_module, "build_model", recording_build)
    with pytest.raises(
        CheckpointError, match=r"describes a model of [\d,]+ parameters, more than the 50,000,000"
    ):
        load_checkpoint(path)
    assert devices == ["meta"]
    assert path.stat().st_size < 10_000


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda state: {}, "it holds no weights"),
        (lambda state: dict(list(state.items())[1:]), "is missing"),
        (lambda state: {**state, "extra.weight": torch.zeros(2)}, "'extra.weight' is not in the model"),
        (
            lambda state: {**state, next(iter(state)): torch.zeros(3, 1)},
            r"has shape \(3, 1\), the config makes",
        ),
    ],
)
def test_weights_must_have_the_configs_names_and_shapes_exactly(saved, edit, message):
    _, path = saved
    raw = torch.load(path, weights_only=True)
    resaved(path, state_dict=edit(raw["state_dict"]))
    with pytest.raises(CheckpointError, match=f"do not fit its model config \\(.*{message}") as refused:
        load_checkpoint(path)
    assert "\n" not in str(refused.value)


def test_build_model_checks_the_weights_before_building(saved, monkeypatch):
    """A Checkpoint made in memory (not loaded) is checked the same way before it is allocated."""
    _, path = saved
    checkpoint = load_checkpoint(path)
    checkpoint.state_dict = {}
    devices = []
    real_build = checkpoint_module.build_model
    monkeypatch.setattr(
        checkpoint_module,
        "build_model",
        lambda c: devices.append(torch.empty(0).device.type) or real_build(c),
    )
    with pytest.raises(CheckpointError, match="it holds no weights"):
        checkpoint.build_model()
    assert devices == ["meta"]


@pytest.mark.parametrize("version", [True, False, 0, -1, 2.0, "2", None])
def test_format_version_must_be_a_whole_number_from_1(saved, version):
    _, path = saved
    resaved(path, format_version=version)
    with pytest.raises(CheckpointError, match="not a bharnet checkpoint"):
        load_checkpoint(path)


def test_a_huge_format_version_is_described_not_printed(saved):
    """A 301-digit version is a valid pickle; the message names it without printing it."""
    _, path = saved
    resaved(path, format_version=10**300)
    with pytest.raises(CheckpointError, match=r"format \(a number too long to show\) is newer") as refused:
        load_checkpoint(path)
    assert len(str(refused.value)) < 300


def test_a_malformed_format1_file_is_a_one_line_error(saved):
    _, path = saved
    raw = torch.load(path, weights_only=True)
    state = {
        key.replace("graph_conv.mix.weight", "graph_conv.project.weight"): value
        for key, value in raw["state_dict"].items()
    }
    name = next(key for key in state if key.endswith("graph_conv.project.weight"))
    state[name] = torch.zeros(5)  # one axis: the upgrade cannot rearrange it
    resaved(path, format_version=1, state_dict=state)
    with pytest.raises(CheckpointError, match="format-1 weights cannot be converted to format 2") as refused:
        load_checkpoint(path)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: torch.zeros(1).expand(10**6, 10**6), "repeats one stored value along an axis"),
        (lambda: torch.zeros(2000).as_strided((1000, 1000), (1, 1)), "more than its storage holds"),
        (lambda: torch.empty(10**6, 10**6, device="meta"), "not a plain CPU tensor"),
        (lambda: torch.eye(3).to_sparse(), "not a plain CPU tensor"),
    ],
)
def test_tensors_claiming_more_than_they_store_are_refused_before_their_values_are_read(saved, make, message):
    """An expanded tensor of 10^12 elements takes 4 bytes on disk; the NaN check would allocate 4 TB."""
    _, path = saved
    raw = torch.load(path, weights_only=True)
    name = next(iter(raw["state_dict"]))
    resaved(path, state_dict={**raw["state_dict"], name: make()})
    assert path.stat().st_size < 1_000_000
    with pytest.raises(CheckpointError, match=f"its weight '{name}' .*{message}"):
        load_checkpoint(path)


def test_hostile_checkpoints_are_one_line_cli_errors(saved, tmp_path, capsys):
    """``bharnet export`` of each hostile kind: exit 2, one line on stderr, no traceback."""
    from bharnet_ros.cli import main

    _, path = saved
    raw = torch.load(path, weights_only=True)
    name = next(iter(raw["state_dict"]))
    hostile = {
        "product": {
            "model_config": {
                **raw["model_config"],
                "backbone": {"base_channels": 4096, "stages": [[1, 1]] * 2},
            }
        },
        "empty": {"state_dict": {}},
        "expanded": {"state_dict": {**raw["state_dict"], name: torch.zeros(1).expand(10**6, 10**6)}},
        "bool_version": {"format_version": True},
    }
    for kind, changes in hostile.items():
        file = tmp_path / f"{kind}.pt"
        torch.save({**raw, **changes}, file)
        assert main(["export", str(file), "-o", str(tmp_path / f"{kind}.onnx")]) == 2, kind
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        assert str(file) in err
        assert "Traceback" not in err
        assert not (tmp_path / f"{kind}.onnx").exists()


def test_a_class_list_of_another_length_than_the_heads_is_refused(saved, tmp_path):
    data = torch.load(saved[1], weights_only=True)
    data["class_names"] = data["class_names"][:2]  # five heads, two names
    torch.save(data, tmp_path / "two.pt")
    with pytest.raises(CheckpointError, match="2 class names for a 5-class model"):
        load_checkpoint(tmp_path / "two.pt")


@pytest.mark.parametrize(
    "overrides",
    [
        {
            "input": {"frames": 10_000, "num_persons": 16},
            "backbone": {"base_channels": 2048, "stages": [[1, 1]]},
        },
        {"variant": "bharnet_e", "input": {"frames": 2000}, "attention": {"kind": "softmax"}},  # scores
    ],
)
def test_a_model_whose_activations_cannot_fit_is_refused_at_load(saved, overrides):
    """Few parameters (a 25 MB file passes MAX_PARAMETERS) over 10 000 frames of 16 persons: its
    first forward pass would ask for hundreds of GB. The bound counts the activations as well."""
    _, path = saved
    config = {"variant": "body_expert", "num_classes": 5, **overrides}
    config_from_dict(config)  # each size alone passes validation
    resaved(path, model_config=config, state_dict={})
    with pytest.raises(CheckpointError, match=r"largest activation has about [\d,]+ values per sample"):
        load_checkpoint(path)


def test_every_shipped_model_config_is_far_within_the_activation_bound():
    from bharnet_ros.model.checkpoint import MOST_ACTIVATION, largest_activation
    from bharnet_ros.model.config import load_model_config

    for path in sorted((Path(__file__).resolve().parents[2] / "config/model").glob("*.yaml")):
        assert largest_activation(load_model_config(path, {"num_classes": 3})) < MOST_ACTIVATION / 10, path
