"""End to end: a tiny run trains, checkpoints, resumes and evaluates; configs and overrides."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from bharnet_ros.model.bharnet import build_model
from bharnet_ros.model.checkpoint import CheckpointError, load_checkpoint, make_checkpoint, save_checkpoint
from bharnet_ros.training import synth
from bharnet_ros.training.dataset import Sample, SkeletonDataset
from bharnet_ros.training.evaluate import evaluate, open_model, write_outputs
from bharnet_ros.training.feeder import AugmentConfig
from bharnet_ros.training.train import (
    ConfigError,
    DivergedError,
    idle_augment_note,
    init_from_experts,
    learning_rate,
    load_train_config,
    model_config_dict,
    train,
)

REPO = Path(__file__).resolve().parents[2]
CLASSES = ("wave", "thumbs_up", "clap")


def tiny_dataset(path: Path) -> Path:
    """Six synthetic gestures of three classes, splits train (4) and val (2), saved as .npz."""
    samples = [synth.generate_sample(name, np.random.default_rng(i)) for i in range(2) for name in CLASSES]
    data = SkeletonDataset.from_sequences(
        [s.sequence for s in samples],
        [CLASSES.index(s.class_name) for s in samples],
        list(CLASSES),
        names=[f"{s.class_name}_{i // 3}" for i, s in enumerate(samples)],
        hand_intensive=[False, True, False],
        splits={"train": [0, 1, 2, 3], "val": [4, 5]},
    )
    return data.save(path)


@pytest.fixture(scope="module")
def dataset_file(tmp_path_factory) -> Path:
    return tiny_dataset(tmp_path_factory.mktemp("data") / "tiny.npz")


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, dataset_file, tiny_run) -> Path:
    """One epoch of tiny BHaRNet-E, then resumed for a second epoch."""
    out = tmp_path_factory.mktemp("run") / "run"
    extra = [f"data.train=['{dataset_file}']", "data.train_split=train", "data.val_split=val"]
    config = load_train_config(REPO / "config/train/synth_cpu.yaml", [*tiny_run, *extra])
    train(config, out=out)
    return out


def read_metrics(folder: Path) -> list[dict[str, str]]:
    with open(folder / "metrics.csv", newline="") as stream:
        return list(csv.DictReader(stream))


def test_run_folder_has_configs_metrics_and_safe_checkpoints(trained_run):
    for name in ("config.yaml", "model.yaml", "metrics.csv", "metrics.png", "best.pt", "last.pt"):
        assert (trained_run / name).is_file(), name
    raw = torch.load(trained_run / "last.pt", map_location="cpu", weights_only=True)
    assert raw["class_names"] == list(CLASSES)
    assert raw["hand_intensive"] == ["thumbs_up"]
    assert raw["preprocess"]["frames"] == 16
    assert raw["preprocess"]["body_layout"] == "ntu25"
    model_yaml = yaml.safe_load((trained_run / "model.yaml").read_text())
    assert model_yaml["num_classes"] == 3
    assert model_yaml["backbone"]["base_channels"] == 8
    config = yaml.safe_load((trained_run / "config.yaml").read_text())
    assert Path(config["data"]["train"][0]).is_absolute()
    row = read_metrics(trained_run)[0]
    assert {"train_loss", "val_top1", "val_top5", "val_mean_class", "val_hand_intensive"} <= set(row)


def test_resume_continues_the_epoch_count(trained_run):
    before = load_checkpoint(trained_run / "last.pt")
    assert before.epoch == 1
    train({}, resume=trained_run, overrides=["epochs=2"])
    rows = read_metrics(trained_run)
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    after = load_checkpoint(trained_run / "last.pt")
    assert after.epoch == 2
    changed = any(
        not torch.equal(before.state_dict[k], after.state_dict[k])
        for k in before.state_dict
        if before.state_dict[k].is_floating_point()
    )
    assert changed


def test_checkpoint_and_onnx_evaluations_agree(trained_run, dataset_file, tmp_path):
    from bharnet_ros.model.export import export_onnx, prepare_model

    checkpoint = load_checkpoint(trained_run / "last.pt")
    onnx_path = tmp_path / "model.onnx"
    export_onnx(
        prepare_model(checkpoint), onnx_path, checkpoint.class_names,
        checkpoint.preprocess_config, checkpoint.hand_intensive,
    )  # fmt: skip
    data = SkeletonDataset.load(dataset_file)
    torch_model, onnx_model = open_model(trained_run / "last.pt"), open_model(onnx_path)
    from_torch, from_onnx = evaluate(torch_model, data), evaluate(onnx_model, data)
    fused_t, fused_o = from_torch.scores["fused"], from_onnx.scores["fused"]
    scale = max(1.0, float(np.abs(fused_t).max()))
    assert np.allclose(fused_t, fused_o, atol=1e-4 * scale)
    assert np.array_equal(from_torch.predictions, from_onnx.predictions)
    assert from_torch.report.top1 == from_onnx.report.top1
    assert set(from_onnx.branches) == set(from_torch.branches) == {
        "body_expert", "hand_expert", "body_interactive", "hand_interactive", "expert_only",
    }  # fmt: skip
    assert from_onnx.branches["expert_only"] == from_torch.branches["expert_only"]
    values = write_outputs(tmp_path / "eval", from_onnx, onnx_model, data, "tiny", None)
    assert values["num_samples"] == 6
    assert values["hand_intensive_samples"] == 2
    saved = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert saved["top1"] == values["top1"]
    for name in ("per_class.csv", "predictions.csv", "confusion.png"):
        assert (tmp_path / "eval" / name).is_file()


def test_overrides_apply_with_dotted_keys_and_yaml_values():
    config = load_train_config(
        REPO / "config/train/synth_cpu.yaml",
        [
            "optim.lr=0.01",
            "augment.mirror=0",
            "data.train=[a.npz, b.npz]",
            "model.overrides.backbone.base_channels=8",
        ],
    )
    assert config["optim"]["lr"] == 0.01
    assert config["augment"]["mirror"] == 0
    assert config["data"]["train"] == ["a.npz", "b.npz"]
    assert config["model"]["overrides"]["backbone"]["base_channels"] == 8
    assert config["model"]["overrides"]["input"]["frames"] == 32  # untouched siblings stay


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.lrr=0.1", "unknown config key 'optim.lrr'"),
        ("epochs", "not key=value"),
        ("epochs=0", "epochs must be an integer from 1 to"),
        ("augment.mirror=2", "probability"),
        ("optim.lr=[1", "not valid YAML"),
        ("data.class_balance=1.5", "class_balance must be in"),
        ("data.class_balance=true", "class_balance must be a finite number, got True"),
        ("model.config=5", "model.config must name a file, got 5"),
        ("model.init.body=5", "model.init.body must name a file, got 5"),
        ("data.train=[5]", "data.train must name a file, got 5"),
        ("optim.lr=1e308", "optim.lr must be a number from 0 to 100"),
        ("optim.momentum=1e300", "optim.momentum must be a number from 0 to 1"),
        ("workers=100000", "workers must be an integer from 0 to 256"),
        ("data.relabel={wave: null}", "data.relabel must map names to names"),
        ("data.relabel={wave: [1, 2]}", "data.relabel must map names to names"),
        ("name=../elsewhere", "name must be a plain folder name"),
        ("name=/abs", "name must be a plain folder name"),
        ("optim={lrr: 0.1}", "unknown config key 'optim.lrr'"),
        ("model.overrides.loss.label_smoothing=0.5", "set by the training from optim.label_smoothing"),
        ("model.overrides.num_classes=7", "model.overrides.num_classes is set by the training from the data"),
        ("model.overrides.test_mirror=[0]", "set by the training from model.test_mirror"),
        ("data=null", "data must be a mapping"),  # read before the type checks: a traceback
        ("data=abc", "data must be a mapping"),
        ("optim.min_lr=1", "optim.min_lr 1 is above optim.lr"),  # the decay raised the rate 20-fold
        ("optim.label_smoothing=1", "optim.label_smoothing must be below 1"),  # found after the data
    ],
)
def test_bad_overrides_are_clear_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        load_train_config(REPO / "config/train/synth_cpu.yaml", [override])


def test_a_section_set_to_no_mapping_is_refused_when_a_nested_key_follows():
    """`data=5` then --train's data.train=...: the defaults had quietly taken the section's place."""
    with pytest.raises(ConfigError, match="data is 5, not a section"):
        load_train_config(REPO / "config/train/synth_cpu.yaml", ["data=5", "data.train=[x.npz]"])
    config = load_train_config(REPO / "config/train/synth_cpu.yaml", ["model.init=null", "model.init.body=b"])
    assert config["model"]["init"]["body"] == "b"  # a section cleared with null takes its defaults again


def test_augmentations_this_run_cannot_apply_are_named():
    """augment.speed on a frame-count model, rotate_3d on image data: trained without them, silently."""
    assert idle_augment_note(AugmentConfig(), "image", 0.0) == []
    (note,) = idle_augment_note(AugmentConfig(speed=0.5, rotate_3d=1.0, rotate_2d=0.2), "image", 0.0)
    assert note.startswith("augment.rotate_3d=1, augment.speed=0.5: no effect on image-space data")
    (note,) = idle_augment_note(AugmentConfig(rotate_2d=0.2, speed=0.5), "world", 2.0)
    assert note.startswith("augment.rotate_2d=0.2: no effect on world-space data with a time window")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "epochs: 1\nepochs: 2\n",
            r"YAML \(line 2: the key 'epochs' is given twice; keep one\)",
        ),
        ("a: &x 1\nb: *x\n", r"line 2: YAML aliases \(\*name\) are not supported"),
        ("x: [" + "a," * 150_000 + "a]\n", r"cannot be read \(larger than the 262144 bytes"),
    ],
    ids=["key twice", "alias", "300 kB"],
)
def test_an_unreadable_config_says_what_and_where(tmp_path, text, message):
    """The error had named only the exception's class (ConstructorError); an 8 MB list had taken
    2.7 GB and two minutes to parse before any refusal."""
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_train_config(tmp_path / "c.yaml")


def test_a_mapping_override_sets_its_keys_and_keeps_the_rest_of_the_section():
    config = load_train_config(
        REPO / "config/train/synth_cpu.yaml", ["optim={lr: 0.01}", "model.init={body: a.pt}"]
    )
    assert config["optim"]["lr"] == 0.01
    assert config["optim"]["momentum"] == 0.9  # kept, not dropped with the section
    assert config["model"]["init"] == {"body": "a.pt", "hand": None}


def test_a_section_cleared_then_set_by_key_starts_from_its_defaults():
    """optim=null optim.lr=0.1 left the section without its other keys: a KeyError traceback."""
    path = REPO / "config/train/synth_cpu.yaml"
    config = load_train_config(
        path, ["optim=null", "optim.lr=0.1", "model.init=null", "model.init.body=a.pt"]
    )
    assert (config["optim"]["lr"], config["optim"]["momentum"]) == (0.1, 0.9)
    assert config["model"]["init"] == {"body": "a.pt", "hand": None}


def test_test_mirror_needs_a_boolean_and_centred_skeletons():
    path = REPO / "config/train/synth_cpu.yaml"
    with pytest.raises(ConfigError, match="test_mirror must be true or false"):
        load_train_config(path, ["model.test_mirror=1"])
    with pytest.raises(ConfigError, match="preprocess.normalise"):
        load_train_config(path, ["model.test_mirror=true", "preprocess.normalise=false"])


def test_test_mirror_stores_the_training_mirrors_class_map(dataset_file, tiny_run, tmp_path):
    """The checkpoint keeps, per class, its mirror image's class as the training mirror pairs it."""
    extra = [f"data.train=['{dataset_file}']", "data.val_split=null", "model.test_mirror=true"]
    config = load_train_config(
        REPO / "config/train/synth_cpu.yaml", [*tiny_run, *extra, "augment.mirror_pairs=[[wave, clap]]"]
    )
    folder = train(config, out=tmp_path / "mirrored")
    checkpoint = load_checkpoint(folder / "last.pt")
    assert checkpoint.class_names == list(CLASSES)
    assert checkpoint.model_config["test_mirror"] == [2, 1, 0]
    assert open_model(folder / "last.pt").runner.config.test_mirror == (2, 1, 0)
    unmirrored = open_model(folder / "last.pt", lambda _: [])
    assert unmirrored.runner.config.test_mirror == ()


def test_every_shipped_training_config_loads():
    for path in sorted((REPO / "config/train").glob("*.yaml")):
        config = load_train_config(path)
        assert (REPO / config["model"]["config"]).is_file(), path


@pytest.mark.parametrize(
    ("warmup", "epochs", "steps", "noted"),
    [
        (5, 5, 20, "reaches 0.099 of"),
        (4.99, 5, 20, "reaches 0.0992 of"),
        (5, 1, 1, "reaches 2e-05 of"),
        (4, 5, 20, ""),
    ],
)
def test_a_warmup_lasting_the_whole_run_is_noted_at_the_rate_reached(warmup, epochs, steps, noted):
    """Only a warm-up longer than the epochs was noted, at a rate no step reaches (0.02 for 2e-05)."""
    from bharnet_ros.training.train import warmup_note

    config = {"optim": {"lr": 0.1, "min_lr": 0.0, "warmup_epochs": warmup}, "epochs": epochs}
    notes = warmup_note(config, steps)
    assert (noted in notes[0]) if noted else notes == []


def test_warmup_then_cosine_schedule():
    optim = {"lr": 0.1, "min_lr": 0.0, "warmup_epochs": 5}
    assert learning_rate(optim, 80, 0.0) < 0.001
    assert learning_rate(optim, 80, 5.0) == pytest.approx(0.1)
    assert learning_rate(optim, 80, 42.5) == pytest.approx(0.05)
    assert learning_rate(optim, 80, 80.0) == pytest.approx(0.0, abs=1e-12)
    # a warm-up shorter than its 1e-3 start: the first step was lr * 1e-3 / warmup, 1e6 times lr
    assert learning_rate({**optim, "warmup_epochs": 1e-9}, 80, 0.0) == pytest.approx(0.1)


def test_a_global_batch_that_does_not_split_over_the_processes_is_refused():
    """batch_size is the global batch: 64 over 3 processes trained 63, 2 over 4 trained 4."""
    from bharnet_ros.training.train import Dist, make_loaders

    feeder = type("Feeder", (), {"labels": np.zeros(12, np.int64), "__len__": lambda self: 12})()
    config = {"batch_size": 64, "workers": 0, "seed": 0, "data": {"class_balance": 1.0}}
    with pytest.raises(ConfigError, match="batch_size 64 does not split evenly over 3 processes"):
        make_loaders(config, Dist(world=3), feeder, None)


def test_experts_initialise_the_streams_of_bharnet_e(tmp_path):
    small = {
        "num_classes": 3,
        "input": {"frames": 16, "num_persons": 1},
        "backbone": {"base_channels": 8},
        "attention": {"heads": 1, "dim_head": 8},
    }
    paths = {}
    experts = {}
    for stream in ("body", "hand"):
        expert = build_model({**small, "variant": f"{stream}_expert"})
        experts[stream] = expert
        paths[stream] = _expert_run(expert, list(CLASSES), tmp_path / stream)
    model = build_model({**small, "variant": "bharnet_e"})
    notes = init_from_experts(model, {"body": tmp_path / "body", "hand": paths["hand"]})  # a run folder
    assert len(notes) == 2
    state = model.state_dict()
    split = model.config.expertized.split_block
    for stream, expert in experts.items():
        own = expert.state_dict()
        assert torch.equal(state[f"{stream}_trunk.stem.weight"], own["backbone.stem.weight"])
        key = next(k for k in own if k.startswith(f"backbone.blocks.{split}."))
        tail = key.replace(f"backbone.blocks.{split}.", "")
        for branch in ("expert", "interactive"):
            assert torch.equal(state[f"{stream}_{branch}_tail.0.{tail}"], own[key])
            assert torch.equal(state[f"{stream}_{branch}_head.fc.weight"], own["head.fc.weight"])
    with pytest.raises(ConfigError, match="not a hand_expert"):
        init_from_experts(model, {"hand": paths["body"]})
    moving = build_model({**small, "variant": "bharnet_e", "input": {**small["input"], "motion": True}})
    with pytest.raises(ConfigError, match="input.motion"):
        init_from_experts(moving, {"body": paths["body"]})
    shallow = build_model(
        {**small, "variant": "body_expert", "backbone": {"base_channels": 8, "stages": [[1, 1]]}}
    )
    _expert_run(shallow, list(CLASSES), tmp_path / "shallow")  # its blocks fit the trunk's first ones
    with pytest.raises(ConfigError, match="gives no weights for .* body backbone tensors"):
        init_from_experts(model, {"body": tmp_path / "shallow"})
    fusion = build_model({**small, "variant": "score_fusion"})
    assert len(init_from_experts(fusion, paths)) == 2
    with pytest.raises(ConfigError, match="gives no weights"):
        init_from_experts(fusion, {"body": tmp_path / "shallow"})


def test_an_experts_head_for_other_classes_is_not_copied_and_other_inputs_are_refused(tmp_path):
    import dataclasses

    small = {"num_classes": 3, "input": {"frames": 16, "num_persons": 1}, "backbone": {"base_channels": 8}}
    expert = build_model({**small, "variant": "body_expert"})
    _expert_run(expert, list(CLASSES), tmp_path / "body")
    model = build_model({**small, "attention": {"heads": 1, "dim_head": 8}, "variant": "bharnet_e"})
    fresh = model.state_dict()["body_expert_head.fc.weight"].clone()
    (note,) = init_from_experts(model, {"body": tmp_path / "body"}, ["x", "y", "z"], _preprocess())
    assert "heads not copied: other classes" in note  # as many classes, other meanings
    assert torch.equal(model.state_dict()["body_expert_head.fc.weight"], fresh)
    bones = dataclasses.replace(_preprocess(), modality="bone")
    with pytest.raises(ConfigError, match="read its inputs otherwise \\(modality joint vs bone\\)"):
        init_from_experts(model, {"body": tmp_path / "body"}, list(CLASSES), bones)
    scored = dataclasses.replace(_preprocess(), min_score=0.5)  # it saw the legs MediaPipe guessed
    with pytest.raises(ConfigError, match="read its inputs otherwise \\(min_score 0.0 vs 0.5\\)"):
        init_from_experts(model, {"body": tmp_path / "body"}, list(CLASSES), scored)
    imaged = _expert_run(expert, list(CLASSES), tmp_path / "imaged", space="image")
    metres = dataclasses.replace(_preprocess(), space="world")
    with pytest.raises(ConfigError, match="read its inputs otherwise \\(space image vs world\\)"):
        init_from_experts(model, {"body": imaged}, list(CLASSES), metres)
    assert init_from_experts(model, {"body": tmp_path / "body"}, list(CLASSES), metres)  # its space unknown


def test_the_default_models_experts_fit_its_streams(tmp_path):
    """`make model` starts real_cpu.yaml from real_cpu_{body,hand}_expert.yaml: every backbone
    weight must carry over, and only the heads (15 HRI classes against 24) stay fresh."""
    classes = [f"c{i}" for i in range(24)]
    model = build_model(model_config_dict(load_train_config(REPO / "config/train/real_cpu.yaml"), classes))
    for stream in ("body", "hand"):
        config = load_train_config(REPO / f"config/train/real_cpu_{stream}_expert.yaml")
        assert config["data"]["train"] == ["data/hri.npz"]
        expert = build_model(model_config_dict(config, classes[:15]))
        _expert_run(expert, classes[:15], tmp_path / stream)
        (note,) = init_from_experts(model, {stream: tmp_path / stream})
        assert "heads not copied" in note
        own = expert.state_dict()
        assert torch.equal(model.state_dict()[f"{stream}_trunk.stem.weight"], own["backbone.stem.weight"])


def _expert_run(expert, classes: list[str], folder: Path, space: str = "") -> Path:
    """A run folder holding ``expert`` as its ``last.pt``, as ``bharnet train`` leaves one."""
    from bharnet_ros.core.preprocess import PreprocessConfig

    folder.mkdir()
    shape = expert.config.input
    preprocess = PreprocessConfig(
        body_layout=shape.body_layout, frames=shape.frames, num_persons=shape.num_persons, space=space
    )
    return save_checkpoint(make_checkpoint(expert, classes, preprocess), folder / "last.pt")


def _preprocess():
    from bharnet_ros.core.preprocess import PreprocessConfig

    return PreprocessConfig(body_layout="ntu25", frames=16, num_persons=1)


def test_a_class_balanced_run_trains_on_balanced_epochs(dataset_file, tiny_run, tmp_path):
    extra = [f"data.train=['{dataset_file}']", "data.val_split=null", "data.class_balance=1"]
    config = load_train_config(REPO / "config/train/synth_cpu.yaml", [*tiny_run, *extra])
    folder = train(config, out=tmp_path / "balanced")
    assert yaml.safe_load((folder / "config.yaml").read_text())["data"]["class_balance"] == 1
    assert len(read_metrics(folder)) == 1


def test_a_finished_run_folder_is_not_overwritten(trained_run, tiny_run):
    config = load_train_config(REPO / "config/train/synth_cpu.yaml", tiny_run)
    with pytest.raises(ConfigError, match="already holds a run"):
        train(config, out=trained_run)


def tiny_config(tiny_run: list[str], data_file: Path, *extra: str) -> dict:
    """synth_cpu.yaml as a one-epoch tiny run on ``data_file``."""
    return load_train_config(
        REPO / "config/train/synth_cpu.yaml", [*tiny_run, f"data.train=['{data_file}']", *extra]
    )


def with_hands_in(first: int, path: Path) -> Path:
    """Six synthetic gestures of three classes where only the first ``first`` keep their hands."""
    samples = [synth.generate_sample(name, np.random.default_rng(i)) for i in range(2) for name in CLASSES]
    for sample in samples[first:]:
        sample.sequence.hands[:] = 0.0
        sample.sequence.hand_present[:] = False
    data = SkeletonDataset.from_sequences(
        [s.sequence for s in samples],
        [CLASSES.index(s.class_name) for s in samples],
        list(CLASSES),
        names=[f"{s.class_name}_{i}" for i, s in enumerate(samples)],
    )
    return data.save(path)


def test_a_run_that_diverges_in_its_first_epoch_stops_without_a_checkpoint(dataset_file, tiny_run, tmp_path):
    """optim.lr=100 is a finite number, so the config takes it; the weights then overflow."""
    config = tiny_config(
        tiny_run, dataset_file, "optim.lr=100", "optim.warmup_epochs=0", "data.val_split=val"
    )
    with pytest.raises(DivergedError, match="training diverged in epoch 1: .*no checkpoint was written"):
        train(config, out=tmp_path / "run")
    assert not (tmp_path / "run" / "last.pt").exists()
    assert not (tmp_path / "run" / "best.pt").exists()


def test_a_resumed_run_ends_where_the_uninterrupted_run_ends(dataset_file, tiny_run, tmp_path):
    """The seed restarted torch's random state and each attention's redraw count on resume, so a
    resumed run redrew its projections at other steps and with other numbers."""
    extra = [
        f"data.train=['{dataset_file}']", "data.train_split=train", "data.val_split=val",
        "model.overrides.attention.redraw_interval=2", "model.overrides.backbone.dropout=0.3",
    ]  # fmt: skip
    config = load_train_config(REPO / "config/train/synth_cpu.yaml", [*tiny_run, *extra, "epochs=2"])
    whole = train(config, out=tmp_path / "whole")
    halves = train({**config, "epochs": 1}, out=tmp_path / "halves")
    train({}, resume=halves, overrides=["epochs=2"])
    one, other = (load_checkpoint(folder / "last.pt").state_dict for folder in (whole, halves))
    assert all(torch.equal(one[key], other[key]) for key in one)


def test_a_resumed_run_that_diverges_keeps_its_finite_checkpoints(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    done = load_checkpoint(run / "last.pt").epoch
    best = (run / "best.pt").read_bytes()
    overrides = ["epochs=9", "optim.lr=100", "optim.warmup_epochs=0"]
    with pytest.raises(
        DivergedError, match=f"in epoch {done + 1}: .*; last.pt keeps epoch {done}; lower optim.lr"
    ):
        train({}, resume=run, overrides=overrides)
    assert load_checkpoint(run / "last.pt").epoch == done  # loading also checks that every weight is finite
    assert (run / "best.pt").read_bytes() == best
    assert len(read_metrics(run)) == done


def test_a_batch_without_any_hand_stops_the_run_naming_the_cause(tiny_run, tmp_path):
    """All-zero hand input makes each BatchNorm of the hand stream multiply the gradients by
    1/sqrt(eps): they overflow to NaN. Nothing NaN is saved and the message says why."""
    data_file = with_hands_in(1, tmp_path / "one_hand.npz")
    config = tiny_config(tiny_run, data_file, "batch_size=2", "augment.hand_dropout=0")
    with pytest.raises(DivergedError, match="no sample of batch 1 has a hand.*larger batch_size"):
        train(config, out=tmp_path / "run")
    assert not (tmp_path / "run" / "last.pt").exists()


def test_data_without_hands_is_refused_for_a_hand_model_before_any_work(tiny_run, tmp_path):
    data_file = with_hands_in(0, tmp_path / "no_hands.npz")
    with pytest.raises(ConfigError, match="no hand in any frame, but a bharnet_e model.*body_expert.yaml"):
        train(tiny_config(tiny_run, data_file), out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def ntu_like_file(path: Path) -> Path:
    """Six NTU-25 world-space clips of three classes (random poses, no hands)."""
    rng = np.random.default_rng(0)
    samples = []
    for i in range(6):
        body = np.zeros((1, 20, 25, 4), np.float32)
        body[..., :3] = rng.normal(0.0, 0.3, (1, 1, 25, 3)) + rng.normal(0.0, 0.01, (1, 20, 25, 3))
        body[..., 3] = 1.0
        samples.append(
            Sample(
                f"s{i}", i % 3, body, np.zeros((1, 20, 2, 21, 4)), np.zeros((1, 20, 2)), np.arange(20) / 30
            )
        )
    return SkeletonDataset.from_samples(samples, list(CLASSES), "ntu25", "world").save(path)


def test_a_run_records_the_coordinate_space_of_its_data(trained_run):
    """The synthetic gestures are image-space skeletons: the model refuses metres in use."""
    assert load_checkpoint(trained_run / "last.pt").preprocess_config.space == "image"


def test_validation_data_of_another_space_is_refused_before_any_work(tiny_run, dataset_file, tmp_path):
    config = tiny_config(tiny_run, dataset_file, f"data.val=['{ntu_like_file(tmp_path / 'ntu.npz')}']")
    with pytest.raises(ConfigError, match="data.val: cannot feed world-space skeletons to a model trained"):
        train(config, out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_run_trained_before_the_space_was_recorded_resumes_and_records_it(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    older = load_checkpoint(run / "last.pt")
    older.preprocess = {**older.preprocess, "version": 3}
    del older.preprocess["space"]
    save_checkpoint(older, run / "last.pt")
    train({}, resume=run, overrides=[f"epochs={older.epoch + 1}"])
    assert load_checkpoint(run / "last.pt").preprocess_config.space == "image"


def test_data_of_a_layout_the_model_cannot_take_is_refused_before_any_work(tiny_run, tmp_path):
    extra = ["model.config=config/model/body_expert.yaml", "model.overrides.input.body_layout=mediapipe33"]
    config = tiny_config(tiny_run, ntu_like_file(tmp_path / "ntu.npz"), *extra)
    with pytest.raises(ConfigError, match="cannot feed a ntu25 skeleton.*body_layout=ntu25"):
        train(config, out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_an_ensemble_scores_the_mean_of_its_models_logits(trained_run, dataset_file):
    """``members``: each model scores with its own preprocessing; logits are averaged per branch."""
    from bharnet_ros.training.feeder import mirror_label_map

    data = SkeletonDataset.load(dataset_file)
    first = open_model(trained_run / "last.pt")
    second = open_model(trained_run / "last.pt", lambda c: mirror_label_map(c.class_names).tolist())
    alone = [evaluate(model, data).scores for model in (first, second)]
    together = evaluate(first, data, members=[second])
    assert together.members == (str(trained_run / "last.pt"),)
    for name, value in together.scores.items():
        assert np.allclose(value, (alone[0][name] + alone[1][name]) / 2, atol=1e-5)
    assert np.array_equal(together.predictions, together.scores["fused"].argmax(axis=1))


def test_a_noisy_or_model_reports_no_summed_expert_only_score(trained_run, dataset_file):
    """Noisy-OR weighs the hand expert by hand presence, so the sum of the two experts' logits is
    not what its expert-only export decides; that is measured on the export itself."""
    data = SkeletonDataset.load(dataset_file)
    model = open_model(trained_run / "last.pt")
    assert "expert_only" in evaluate(model, data).branches
    model.runner.fusion = "noisy_or"  # the same weights, fused as a noisy_or config builds them
    result = evaluate(model, data)
    assert "expert_only" not in result.branches
    assert {"body_expert", "hand_expert"} <= set(result.branches)


def test_evaluating_a_model_that_scores_nan_is_refused(trained_run, dataset_file):
    """argmax reads NaN scores as class 0; a model that gives them must not report an accuracy."""
    model = open_model(trained_run / "last.pt")
    with torch.no_grad():
        next(model.runner.parameters()).fill_(float("nan"))
    with pytest.raises(CheckpointError, match="scores 6 of 6 samples .*as NaN or infinite"):
        evaluate(model, SkeletonDataset.load(dataset_file))


def test_bharnet_e_whose_expert_branches_could_never_learn_is_refused(dataset_file, tiny_run, tmp_path):
    silent = ["model.overrides.loss.complementary=false", "model.overrides.loss.expert_weight=0"]
    with pytest.raises(ConfigError, match=r"reaches \['body_expert', 'hand_expert'\]: they never learn"):
        train(tiny_config(tiny_run, dataset_file, *silent), out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("weights", "unreached"),
    [
        ({"complementary_weight": 0.0}, "['body_expert', 'hand_expert']"),  # the paper's loss, its sum at 0
        ({"complementary": False, "expert_weight": 0.5, "individual_weight": 0.0}, "interactive"),
    ],
)
def test_a_loss_term_of_weight_zero_counts_as_left_out(dataset_file, tiny_run, tmp_path, weights, unreached):
    """A weight of 0 passed the check on the switches, and its branches stayed random."""
    overrides = [f"model.overrides.loss.{key}={str(value).lower()}" for key, value in weights.items()]
    with pytest.raises(ConfigError, match=re.escape(unreached)):
        train(tiny_config(tiny_run, dataset_file, *overrides), out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_an_onnx_model_of_more_classes_than_an_evaluation_takes_is_refused(tiny_model, monkeypatch):
    """A confusion matrix of 65 536 classes squared is 34 GB: refused by name, not allocated."""
    from bharnet_ros.core.inference import InferenceError
    from bharnet_ros.model import config

    monkeypatch.setattr(config, "MOST_CLASSES", 2)  # the tiny model has 3
    with pytest.raises(InferenceError, match="has 3 classes; an evaluation .* takes at most 2"):
        open_model(tiny_model)


@pytest.mark.parametrize(
    "override",
    [
        "seed=",
        "epochs=null",
        "batch_size=",
        "eval_batch_size=",
        "eval_every=",
        "device=~",
        "name=",
        "progress=",
        "deterministic=",
        "data.fill_hand_gaps=",
        "optim.nesterov=",
        "optim.lr=",
        "augment.rotate_3d=",
    ],
)
def test_an_empty_value_is_refused_naming_the_key_and_its_default(override):
    """Not a TypeError from comparing None with a number, nor a switch silently read as false."""
    key = override.partition("=")[0]
    with pytest.raises(ConfigError, match=f"^{key} is empty; give it .* \\(the default is "):
        load_train_config(REPO / "config/train/synth_cpu.yaml", [override])


def test_an_empty_value_in_a_config_file_is_refused_and_empty_lists_and_splits_stay_allowed(tmp_path):
    text = (REPO / "config/train/synth_cpu.yaml").read_text()
    assert "\nepochs: " in text
    empty = tmp_path / "empty.yaml"
    empty.write_text(text.replace("\nepochs: ", "\nepochs: #"))
    with pytest.raises(ConfigError, match="^epochs is empty; give it an integer"):
        load_train_config(empty)
    config = load_train_config(
        REPO / "config/train/synth_cpu.yaml", ["data.classes=", "data.val_split=", "augment.mirror_never="]
    )
    assert config["data"]["classes"] == []
    assert config["augment"]["mirror_never"] == []
    assert config["data"]["val_split"] is None  # null: no validation split (documented)


def test_resume_applies_optimiser_loss_and_test_mirror_overrides(trained_run, tmp_path):
    """What ``--resume`` accepts and records in config.yaml is what the resumed epochs train with."""
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    done = load_checkpoint(run / "last.pt").epoch
    changes = ["optim.momentum=0.5", "optim.nesterov=false", "optim.weight_decay=0.25"]
    changes += ["optim.label_smoothing=0.5", "model.test_mirror=true", f"epochs={done + 1}"]
    train({}, resume=run, overrides=changes)
    group = torch.load(run / "resume.pt", weights_only=True)["optimizer"]["param_groups"][0]
    assert (group["momentum"], group["nesterov"], group["weight_decay"]) == (0.5, False, 0.25)
    checkpoint = load_checkpoint(run / "last.pt")
    assert checkpoint.model_config["loss"]["label_smoothing"] == 0.5
    assert checkpoint.model_config["test_mirror"] == [0, 1, 2]  # no class of these is lateral
    model_yaml = yaml.safe_load((run / "model.yaml").read_text())
    assert model_yaml["test_mirror"] == [0, 1, 2]
    assert model_yaml["loss"]["label_smoothing"] == 0.5


@pytest.mark.parametrize(
    ("edit", "older", "message"),
    [
        (lambda c: c["preprocess"].update(modality="bone"), False, "its preprocess settings cannot change"),
        (lambda c: c["data"].update(val_split="train"), False, "its data settings cannot change"),
        (
            lambda c: c["preprocess"].update(modality="bone"),
            True,
            "other inputs than its weights were trained",
        ),
    ],
)
def test_resume_refuses_a_config_yaml_edited_since_the_run(trained_run, tmp_path, edit, older, message):
    """config.yaml is compared with what the run trained with (resume.pt's copy of the config, and
    for an ``older`` run without one, last.pt's inputs), not only with itself: an edit would
    silently change the inputs or the data mid-run."""
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    if older:
        state = torch.load(run / "resume.pt", weights_only=True)
        del state["config"]
        torch.save(state, run / "resume.pt")
    config = yaml.safe_load((run / "config.yaml").read_text())
    edit(config)
    (run / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    before = (run / "last.pt").read_bytes()
    done = load_checkpoint(run / "last.pt").epoch
    with pytest.raises(ConfigError, match=message):
        train({}, resume=run, overrides=[f"epochs={done + 1}"])
    assert (run / "last.pt").read_bytes() == before


def test_resume_of_a_run_whose_config_is_no_text_is_refused_in_one_line(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    (run / "config.yaml").write_bytes(b"\xff\xfe garbage")
    with pytest.raises(ConfigError, match="config.yaml is not a UTF-8 text file"):
        train({}, resume=run, overrides=["epochs=9"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.update(history=[{"foo": 1.0}] * s["epoch"]), "is not epoch 1 with numbers"),
        (lambda s: s["history"][0].update(train_loss="x"), "is not epoch 1 with numbers"),
        (lambda s: s.update(history=s["history"] * 3), "history rows for"),
        (lambda s: s.update(best_top1=float("nan")), "wrong type or range"),
        (lambda s: s.update(format_version=None), "its format_version is no whole number"),  # TypeError
        (lambda s: s.update(format_version="2"), "its format_version is no whole number"),  # taken as 2
        (lambda s: s.update(format_version=99), "checkpoint format 99 is newer than this code"),
    ],
)
def test_resume_refuses_a_history_the_metrics_cannot_use_before_training(
    trained_run, tmp_path, change, message
):
    """Found when resume.pt is read, not after an epoch replaced last.pt (the plot reads every row)."""
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    state = torch.load(run / "resume.pt", weights_only=True)
    change(state)
    torch.save(state, run / "resume.pt")
    before = (run / "last.pt").read_bytes()
    with pytest.raises(CheckpointError, match=message):
        train({}, resume=run, overrides=[f"epochs={state['epoch'] + 1}"])
    assert (run / "last.pt").read_bytes() == before


def test_a_default_run_folder_is_always_a_new_one(tmp_path, monkeypatch):
    """Two runs in one second (or anything else under that name) get folders of their own."""
    from datetime import datetime, timedelta

    from bharnet_ros.training.train import make_run_folder, run_folder

    monkeypatch.chdir(tmp_path)
    now = datetime.now()
    for second in range(4):
        stamp = (now + timedelta(seconds=second)).strftime("%Y%m%d-%H%M%S")
        taken = tmp_path / "runs" / f"mine-{stamp}"
        taken.mkdir(parents=True)
        (taken / "config.yaml").write_text("someone's")
        (taken.parent / f"{taken.name}-2").mkdir()
    folder = run_folder({"name": "mine"}, None)
    assert not folder.exists()
    assert folder.parent == Path("runs")
    assert folder.name.startswith("mine-")
    assert make_run_folder(folder, default=True)
    assert folder.is_dir()
    with pytest.raises(ConfigError, match="another run took the folder"):
        make_run_folder(folder, default=True)  # taken since run_folder chose it
    assert make_run_folder(tmp_path / "given", default=False)
    assert not make_run_folder(tmp_path / "given", default=False)  # --out: there already


def test_a_run_stopped_in_its_first_epoch_takes_back_the_folder_it_made(
    dataset_file, tiny_run, tmp_path, monkeypatch
):
    """Ctrl-C (or a divergence) before any checkpoint: the folder it made is removed, so the same
    command can run again; a folder that was there before keeps what was written (--force reruns)."""
    from bharnet_ros.training import train as train_module

    def interrupted(run):
        assert (run.out / "config.yaml").is_file()
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "run_epochs", interrupted)
    config = tiny_config(tiny_run, dataset_file)
    with pytest.raises(KeyboardInterrupt):
        train(config, out=tmp_path / "new" / "run")
    assert not (tmp_path / "new" / "run").exists()
    assert (tmp_path / "new").is_dir()  # a parent it made on the way is left alone
    given = tmp_path / "given"
    given.mkdir()
    with pytest.raises(KeyboardInterrupt):
        train(config, out=given)
    assert sorted(p.name for p in given.iterdir()) == ["config.yaml", "model.yaml"]


def test_a_gpu_number_the_machine_lacks_is_one_line(monkeypatch):
    """It passed to ``.to(device)`` after the data loaded: a CUDA traceback (the edge faked: no GPU here)."""
    import torch

    from bharnet_ros.training.train import setup_distributed

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ConfigError, match="device=cuda:5, but this machine has 1 GPU"):
        setup_distributed("cuda:5")
    assert setup_distributed("cuda:0").device == torch.device("cuda:0")


def test_a_stop_while_best_pt_is_written_leaves_no_run_that_claims_a_best_it_lacks(
    dataset_file, tiny_run, tmp_path, monkeypatch
):
    """resume.pt recorded the new best score before best.pt was written: a stop between them left
    a run whose resumed epochs never beat it, and so never wrote best.pt."""
    import bharnet_ros.training.train as training

    real = training.save_checkpoint

    def stopped(checkpoint, path):
        if Path(path).name == "best.pt":
            raise KeyboardInterrupt
        return real(checkpoint, path)

    monkeypatch.setattr(training, "save_checkpoint", stopped)
    config = tiny_config(tiny_run, dataset_file, "data.train_split=train", "data.val_split=val")
    with pytest.raises(KeyboardInterrupt):
        train(config, out=tmp_path / "run")
    run = tmp_path / "run"
    assert not (run / "resume.pt").exists() or (run / "best.pt").exists()


def test_a_stop_in_the_first_epoch_takes_back_everything_the_run_wrote(
    dataset_file, tiny_run, tmp_path, monkeypatch
):
    import bharnet_ros.training.train as training

    def stopped(checkpoint, path):
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "save_checkpoint", stopped)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(tiny_run, dataset_file), out=tmp_path / "run")
    assert not (tmp_path / "run").exists()  # its config.yaml, model.yaml and resume.pt.partial too


def test_metrics_are_written_aside_and_renamed(dataset_file, tiny_run, tmp_path, monkeypatch):
    """A stop while metrics.csv was rewritten left it cut short, and the finished run kept it so."""
    import csv as csv_module

    def stopped(self, rows):
        raise KeyboardInterrupt

    run = train(tiny_config(tiny_run, dataset_file, "epochs=2"), out=tmp_path / "run")
    before = (run / "metrics.csv").read_text()
    monkeypatch.setattr(csv_module.DictWriter, "writerows", stopped)
    from bharnet_ros.training.train import TrainingRun, write_metrics

    fake = TrainingRun.__new__(TrainingRun)
    fake.out, fake.history = run, [{"epoch": 1}]
    with pytest.raises(KeyboardInterrupt):
        write_metrics(fake)
    assert (run / "metrics.csv").read_text() == before


def test_resume_refuses_another_seed_where_the_seed_drew_the_validation_samples(
    dataset_file, tiny_run, tmp_path
):
    config = tiny_config(tiny_run, dataset_file, "data.val_fraction=0.5", "data.val_split=null")
    run = train(config, out=tmp_path / "run")
    with pytest.raises(ConfigError, match="seed \\(it draws data.val_fraction"):
        train({}, resume=run, overrides=["seed=7", "epochs=2"])
