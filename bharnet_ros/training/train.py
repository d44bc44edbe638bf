"""Training of the BHaRNet family: YAML configs with overrides, run folders, checkpoints, DDP.

A training config (``config/train/*.yaml``) names a model YAML and says how to feed and optimise
it; ``docs/training.md`` lists every key. :func:`load_train_config` reads one and applies
``dotted.key=value`` overrides; :func:`train` runs it and writes a run folder::

    runs/<name>-<YYYYmmdd-HHMMSS>/   (-2, -3, ... added when taken; or --out DIR)
        config.yaml     the resolved training config (absolute data paths, overrides applied)
        model.yaml      the resolved model config (num_classes from the data)
        metrics.csv     one row per epoch: lr, train loss / top-1, validation metrics, seconds
        metrics.png     loss and accuracy curves
        best.pt         checkpoint with the best validation top-1 (model/checkpoint.py format);
                        not written without validation data (augmented training accuracy
                        would choose it)
        last.pt         checkpoint after the latest epoch
        resume.pt       optimiser state, history and the config for --resume (plain data)

The recipe is DeGCN's (model_spec section 10): SGD with Nesterov momentum 0.9, weight decay 4e-4,
linear warm-up then cosine decay (per iteration), label smoothing 0.1. Under ``torchrun``
(``WORLD_SIZE`` > 1) every process trains on its shard of a ``DistributedSampler`` inside
``DistributedDataParallel``; ``batch_size`` is the global batch, split evenly over processes.
Validation is sharded too and the logits are gathered, so every process computes the same
metrics; only rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import math
import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import yaml
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from bharnet_ros.core.labels import shown
from bharnet_ros.core.metrics import classification_report
from bharnet_ros.core.preprocess import PreprocessConfig, preprocess_arrays, space_problem
from bharnet_ros.core.text_files import MOST_CONFIG_BYTES, read_text_file
from bharnet_ros.core.yaml12 import load_yaml, yaml_problem
from bharnet_ros.model.bharnet import BHaRNetModel, build_model
from bharnet_ros.model.checkpoint import FORMAT_VERSION as CHECKPOINT_FORMAT
from bharnet_ros.model.checkpoint import (
    Checkpoint,
    CheckpointError,
    checked_version,
    load_checkpoint,
    make_checkpoint,
    meta_model,
    non_finite_weights,
    plain,
    read_plain_data,
    save_checkpoint,
    small_plain_data,
    upgrade_optimizer_state,
)
from bharnet_ros.model.config import config_from_dict, config_to_dict, deep_merge
from bharnet_ros.model.losses import build_loss, seed_everything
from bharnet_ros.training.data import (
    AUTO,
    hand_intensive_names,
    labels_for,
    resolve_path,
    select_data,
    still_clock_note,
    uncorrected_aspect_note,
)
from bharnet_ros.training.dataset import SkeletonDataset
from bharnet_ros.training.feeder import AugmentConfig, SkeletonFeeder, mirror_label_map
from bharnet_ros.training.sampling import ClassBalancedSampler

PREPROCESS_KEYS = (
    "modality",
    "normalise",
    "scale",
    "hand_frame",
    "aspect_correction",
    "window_seconds",
    "min_score",
)
FREE_FORM = ("model.overrides", "data.relabel")  # free-form mappings, checked where they are used
NULLABLE = ("data.train_split", "data.val_split")  # null means something there (see DEFAULTS)
CHECKED_WHERE_USED = ("augment.mirror_pairs",)  # "auto" or a list of pairs: AugmentConfig checks it

DEFAULTS: dict[str, Any] = {
    "name": "run",
    "seed": 0,
    "device": "auto",  # auto | cpu | cuda | cuda:N
    "epochs": 80,
    "batch_size": 64,  # global batch (split over DDP processes)
    "eval_batch_size": 64,
    "workers": 2,
    "progress": True,
    "deterministic": False,
    "eval_every": 1,
    "model": {
        "config": None,  # path of a config/model/*.yaml
        "overrides": {},  # deep-merged into the model YAML
        "init": {"body": None, "hand": None},  # expert checkpoints (paper IV-A)
        "test_mirror": False,  # evaluate on each window and its mirror image (model/mirror.py)
    },
    "preprocess": {
        "modality": "joint",
        "normalise": True,
        "scale": "shoulder",
        "hand_frame": "body",
        "aspect_correction": True,
        "window_seconds": 0.0,  # > 0: windows of this duration sampled by time (any frame rate)
        "min_score": 0.0,  # body joints scored below it count as not observed
    },
    "data": {
        "train": [],  # dataset .npz files or `bharnet synth` folders (merged)
        "val": [],  # validation files; empty: validate on part of the training files (below)
        "train_split": AUTO,  # auto/null: every sample that does not validate; or a split name
        "val_split": AUTO,  # auto: the split "val" where the data has one; null: none; or a name
        "val_subjects": [],  # people who validate (and do not train)
        "val_fraction": 0.0,  # without a val split: this fraction of each class validates
        "exclude_subjects": [],  # people left out of training and validation (held-out tests)
        "classes": [],  # the classes to train, in label order (empty: every class of the data)
        "relabel": {},  # class merges applied first, e.g. {clap: none, fidget: none}
        "fill_hand_gaps": True,
        "class_balance": 0.0,  # 0: classes as often as the data has them; 1: all equally often
    },
    "augment": AugmentConfig().to_dict(),
    "optim": {
        "lr": 0.1,
        "momentum": 0.9,
        "nesterov": True,
        "weight_decay": 4e-4,
        "warmup_epochs": 5.0,
        "min_lr": 0.0,
        "label_smoothing": 0.1,
        "grad_clip": 0.0,  # max gradient norm; 0 = off
    },
}


LARGEST_COUNT = 10**6  # epochs, batch sizes: far above any real run, far below what overflows
MOST_WORKERS = 256  # data loader processes
OPTIM_LIMITS = {  # the largest value of each optim setting; all are >= 0 (1e308 overflowed in torch)
    "lr": 100.0,
    "momentum": 1.0,
    "weight_decay": 1.0,
    "min_lr": 100.0,
    "warmup_epochs": float(LARGEST_COUNT),
    "label_smoothing": 1.0,
    "grad_clip": 1e6,
}


class ConfigError(ValueError):
    """A training config or override that names nothing or has a wrong value."""


class DivergedError(RuntimeError):
    """The loss or the weights became NaN or infinite; the run stops before saving them."""


def memory_problem(err: BaseException) -> str | None:
    """How much memory a failed allocation asked for, in words, where ``err`` is running out of
    memory (torch on CPU or CUDA, numpy); None for any other error. Commands turn it into one line."""
    text = str(err)
    full = isinstance(err, MemoryError) or (
        isinstance(err, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)
    )
    if not full:
        return None
    if found := re.search(r"allocate (\d+) bytes", text):
        return f"it asked for {int(found[1]) / 2**30:.1f} GiB more"
    if found := re.search(r"allocate ([\d.]+ ?[KMGT]i?B)", text, re.IGNORECASE):
        return f"it asked for {found[1]} more"
    return "an allocation failed"


# --- configs -----------------------------------------------------------------------------------


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"optim.lr=0.05"`` to ``(["optim", "lr"], 0.05)``; the value is read as YAML."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r} is not key=value; write e.g. optim.lr=0.05")
    try:
        value = load_yaml(raw) if raw.strip() else None
    except yaml.YAMLError:
        raise ConfigError(f"override {text!r}: the value is not valid YAML; quote it") from None
    return key.strip().split("."), value


def apply_override(config: dict[str, Any], keys: Sequence[str], value: Any) -> None:
    """Set a dotted key in place; keys outside :data:`DEFAULTS` are errors (typos must not pass)."""
    node, defaults = config, DEFAULTS
    for depth, key in enumerate(keys):
        path = ".".join(keys[: depth + 1])
        free = any(path.startswith(prefix + ".") for prefix in FREE_FORM)
        if not free and (not isinstance(defaults, Mapping) or key not in defaults):
            known = sorted(defaults) if isinstance(defaults, Mapping) else []
            raise ConfigError(f"unknown config key {path!r}; known keys here: {', '.join(known)}")
        if depth == len(keys) - 1:
            section = defaults.get(key) if isinstance(defaults, Mapping) else None
            mapping = isinstance(section, Mapping) and isinstance(value, Mapping)
            if mapping and not free and path not in FREE_FORM:
                check_keys(value, section, path + ".")  # optim={lr: 0.1} sets lr, keeps the rest
                value = deep_merge(node.get(key) or {}, value)
            node[key] = value
            return
        if node.get(key) is not None and not isinstance(node.get(key), dict):
            raise ConfigError(  # a later nested override had quietly put the defaults in its place
                f"{path} is {shown(node.get(key), 40)}, not a section; give {path}.<key>=... or a mapping"
            )
        if node.get(key) is None:  # e.g. cleared by model.init=null: its defaults again
            section = defaults.get(key) if isinstance(defaults, Mapping) else None
            node[key] = copy.deepcopy(dict(section)) if isinstance(section, Mapping) else {}
        node = node[key]
        defaults = defaults.get(key, {}) if isinstance(defaults, Mapping) else {}


def check_keys(config: Mapping[str, Any], defaults: Mapping[str, Any], where: str = "") -> None:
    """Every key of ``config`` must exist in ``defaults`` (recursively, except free-form sections)."""
    for key, value in config.items():
        path = f"{where}{key}"
        if path in FREE_FORM:
            continue
        if key not in defaults:
            raise ConfigError(f"unknown config key {path!r}; known: {', '.join(sorted(defaults))}")
        if isinstance(defaults[key], Mapping):
            if not isinstance(value, Mapping):
                raise ConfigError(f"config key {path!r} must be a mapping, got {value!r}")
            check_keys(value, defaults[key], path + ".")


def load_train_config(
    path: str | Path | None, overrides: Iterable[str] = (), base: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Defaults, then the YAML file (or ``base``), then ``key=value`` overrides; validated."""
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"training config {path} not found; see config/train/ for examples")
        data = read_mapping(path, "training config", "see config/train/ for examples")
    else:
        data = dict(base or {})
    check_keys(data, DEFAULTS)
    config = deep_merge(DEFAULTS, data)
    for text in overrides:
        keys, value = parse_override(text)
        apply_override(config, keys, value)
    validate_config(config)
    return config


def check_types(config: dict[str, Any], defaults: Mapping[str, Any], where: str = "") -> None:
    """Each value has its default's type (a bool is no number, an int is a float), numbers are
    finite, and the free-form sections are mappings: what a typo'd override gives must not reach
    training as text or NaN. An empty value is checked by :func:`check_empty`."""
    for key, default in defaults.items():
        path, value = f"{where}{key}", config[key]
        if path in CHECKED_WHERE_USED:
            continue
        if path in FREE_FORM:
            if value is not None and not isinstance(value, Mapping):
                raise ConfigError(f"{path} must be a mapping, e.g. {path}={{a: b}}, got {value!r}")
        elif isinstance(default, Mapping):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{path} must be a mapping (set its keys: {path}.KEY=VALUE), got {value!r}")
            check_types(value, default, path + ".")
        elif value is None:
            check_empty(config, key, path, default)
        elif default is not None and not _same_type(value, default):
            raise ConfigError(f"{path} must be {_type_name(default)}, got {value!r}")


def check_empty(config: dict[str, Any], key: str, path: str, default: Any) -> None:
    """An empty value (``seed=``, ``epochs: ~``, a key with nothing after it in a YAML file) is
    refused where the default is a value: later checks would compare it with numbers, and a
    switch would silently read it as false. An empty list setting is the empty list."""
    if default is None or path in NULLABLE:
        return
    if isinstance(default, list):
        config[key] = []
        return
    shown = str(default).lower() if isinstance(default, bool) else str(default)
    raise ConfigError(
        f"{path} is empty; give it {_type_name(default)} (the default is {shown}), or leave the key out"
    )


def _same_type(value: Any, default: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, int | float) and math.isfinite(value)
    return isinstance(value, type(default))


def _type_name(default: Any) -> str:
    names = {bool: "true or false", int: "an integer", float: "a finite number", str: "text", list: "a list"}
    return names.get(type(default), type(default).__name__)


def read_mapping(path: Path, what: str, hint: str) -> dict[str, Any]:
    """A YAML file holding one mapping (empty: {}); anything else is a ConfigError with ``hint``."""
    try:
        data = load_yaml(read_text_file(path, MOST_CONFIG_BYTES)) or {}
    except OSError as err:
        raise ConfigError(f"{what} {path} cannot be read ({err.strerror or err}); {hint}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path} is not UTF-8 text; {hint}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{what} {path} is not readable YAML ({yaml_problem(err)}); {hint}") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"{what} {path} is not a YAML mapping; {hint}")
    return dict(data)


def validate_config(config: dict[str, Any]) -> None:
    """Value checks that need no files; raises :class:`ConfigError`."""
    if not isinstance(config["data"], Mapping):  # read below before the type checks
        raise ConfigError(f"data must be a mapping (set its keys: data.KEY=VALUE), got {config['data']!r}")
    for key in ("train", "val", "val_subjects", "exclude_subjects"):
        if isinstance(config["data"][key], str | int):
            config["data"][key] = [config["data"][key]]
    check_types(config, DEFAULTS)
    positive = ("epochs", "batch_size", "eval_batch_size", "eval_every")
    for key in positive:
        if not 1 <= config[key] <= LARGEST_COUNT:
            raise ConfigError(f"{key} must be an integer from 1 to {LARGEST_COUNT}, got {config[key]!r}")
    if not 0 <= config["seed"] < 2**32:
        raise ConfigError(f"seed must be an integer from 0 to 2**32 - 1, got {config['seed']!r}")
    if not re.fullmatch(r"auto|cpu|cuda(:[0-9]+)?", config["device"]):
        raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, got {config['device']!r}")
    if not isinstance(config["workers"], int) or not 0 <= config["workers"] <= MOST_WORKERS:
        raise ConfigError(f"workers must be an integer from 0 to {MOST_WORKERS}, got {config['workers']!r}")
    if not re.fullmatch(r"[A-Za-z0-9_.+-]+", config["name"]) or set(config["name"]) == {"."}:
        raise ConfigError(f"name must be a plain folder name (letters, digits, _.+-), got {config['name']!r}")
    optim = config["optim"]
    for key, most in OPTIM_LIMITS.items():
        if not isinstance(optim[key], int | float) or not 0 <= optim[key] <= most:
            raise ConfigError(f"optim.{key} must be a number from 0 to {most:g}, got {optim[key]!r}")
    if optim["label_smoothing"] >= 1:  # all the target on the other classes: nothing is learned
        raise ConfigError(f"optim.label_smoothing must be below 1, got {optim['label_smoothing']!r}")
    if optim["min_lr"] > optim["lr"]:  # the cosine "decay" would raise the rate
        raise ConfigError(f"optim.min_lr {optim['min_lr']!r} is above optim.lr {optim['lr']!r}; lower it")
    check_paths(config)
    if not isinstance(config["model"]["test_mirror"], bool):
        raise ConfigError(f"model.test_mirror must be true or false, got {config['model']['test_mirror']!r}")
    if config["model"]["test_mirror"] and not config["preprocess"]["normalise"]:
        raise ConfigError("model.test_mirror needs preprocess.normalise: true (it mirrors centred skeletons)")
    check_overrides_keep_out(config["model"]["overrides"] or {})
    try:
        AugmentConfig.from_dict(config["augment"])
    except (ValueError, TypeError) as err:
        raise ConfigError(str(err)) from None
    for key in ("train", "val", "val_subjects", "exclude_subjects"):
        config["data"][key] = list(config["data"][key] or [])
    for key in ("val_subjects", "exclude_subjects"):
        config["data"][key] = [str(subject) for subject in config["data"][key]]
    balance = config["data"]["class_balance"]
    if isinstance(balance, bool) or not isinstance(balance, int | float) or not 0 <= balance <= 1:
        raise ConfigError(f"data.class_balance must be in [0, 1], got {balance!r}")
    fraction = config["data"]["val_fraction"]
    if not isinstance(fraction, int | float) or not 0 <= fraction < 1:
        raise ConfigError(f"data.val_fraction must be in [0, 1), got {fraction!r}")


def check_paths(config: Mapping[str, Any]) -> None:
    """The file settings hold file names (text): model.config, model.init.*, data.train and data.val;
    data.relabel maps class names to class names."""
    model = config["model"]
    if model["config"] is None:
        raise ConfigError("model.config is not set; name a config/model/*.yaml file")
    init = model["init"] or {}
    named = [("model.config", model["config"])]
    named += [(f"model.init.{stream}", path) for stream, path in init.items() if path is not None]
    named += [(f"data.{key}", path) for key in ("train", "val") for path in config["data"][key] or []]
    for key, value in named:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{key} must name a file, got {value!r}")
    relabel = config["data"]["relabel"] or {}
    if not all(isinstance(k, str) and isinstance(v, str) and v for k, v in relabel.items()):
        raise ConfigError(f"data.relabel must map names to names (e.g. {{clap: none}}), not {relabel!r}")


def preprocess_from(
    config: Mapping[str, Any], model_input: Mapping[str, Any], space: str
) -> PreprocessConfig:
    """The model's PreprocessConfig: shape keys from the model's ``input``, the coordinate space
    from the training data, the rest from the config."""
    section = config["preprocess"]
    try:
        return PreprocessConfig(
            body_layout=model_input["body_layout"],
            frames=model_input["frames"],
            num_persons=model_input["num_persons"],
            channels=model_input["channels"],
            space=space,
            **{key: section[key] for key in PREPROCESS_KEYS},
        )
    except ValueError as err:
        raise ConfigError(str(err)) from None


def model_config_dict(config: Mapping[str, Any], class_names: Sequence[str]) -> dict[str, Any]:
    """The resolved model config (YAML + overrides + classes from the data + label smoothing)."""
    path = resolve_path(config["model"]["config"])
    if not path.is_file():
        raise ConfigError(f"model config {config['model']['config']} not found; see config/model/")
    data = read_mapping(path, "model config", "name a config/model/*.yaml file")
    extra = {
        "num_classes": len(class_names),
        "loss": {"label_smoothing": config["optim"]["label_smoothing"]},
        "test_mirror": test_mirror_classes(config, class_names),
    }
    merged = deep_merge(deep_merge(data, config["model"]["overrides"] or {}), extra)
    try:
        return plain(config_to_dict(config_from_dict(merged)))
    except (ValueError, TypeError) as err:
        raise ConfigError(f"model config {path}: {err}") from None


# model config entries the training sets itself, each from the key that controls it
SET_BY_TRAINING = {
    ("num_classes",): "the data's classes (data.relabel to merge or rename them)",
    ("loss", "label_smoothing"): "optim.label_smoothing",
    ("test_mirror",): "model.test_mirror",
}


def check_overrides_keep_out(overrides: Mapping[str, Any]) -> None:
    """ConfigError for a ``model.overrides`` entry the training would replace without a word."""
    for path, owner in SET_BY_TRAINING.items():
        section: Any = overrides
        for part in path[:-1]:
            section = section.get(part) if isinstance(section, Mapping) else None
        if isinstance(section, Mapping) and path[-1] in section:
            raise ConfigError(
                f"model.overrides.{'.'.join(path)} is set by the training from {owner}; set that"
            )


def test_mirror_classes(config: Mapping[str, Any], class_names: Sequence[str]) -> list[int]:
    """The model config's ``test_mirror`` for ``class_names``: the training mirror's class map, or []."""
    if not config["model"]["test_mirror"]:
        return []
    return mirror_map(config, class_names).tolist()


# --- distributed -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dist:
    """Process-group facts: world size, rank and the device this process uses."""

    world: int = 1
    rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str) -> Dist:
    """Join the torchrun process group when ``WORLD_SIZE`` > 1; else a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"device={device}, but this PyTorch sees no CUDA GPU; train with device=cpu (or auto), "
            "or install a CUDA build of PyTorch on a machine with a GPU"
        )
    index = int(device.partition(":")[2] or 0) if device.startswith("cuda") else 0
    if index >= max(torch.cuda.device_count(), 1):
        raise ConfigError(
            f"device={device}, but this machine has {torch.cuda.device_count()} GPU(s), cuda:0 to "
            f"cuda:{torch.cuda.device_count() - 1}; choose one of them"
        )
    if world <= 1:
        return Dist(1, 0, torch.device(device))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(
                f"torchrun started process {local_rank} on a machine of {torch.cuda.device_count()} "
                "GPU(s); give --nproc_per_node at most that"
            )
        torch.cuda.set_device(local_rank)
        chosen = torch.device("cuda", local_rank)
    else:
        chosen = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if chosen.type == "cuda" else "gloo")
    return Dist(world, dist.get_rank(), chosen)


# --- model initialisation from experts ---------------------------------------------------------


def expert_key_map(model: BHaRNetModel, stream: str, key: str) -> list[str]:
    """Where a single-stream expert's parameter ``key`` goes in ``model`` (paper IV-A)."""
    variant = model.config.variant
    part, _, rest = key.partition(".")
    if variant in ("body_expert", "hand_expert"):
        return [key]
    if variant in ("score_fusion", "bharnet_p"):
        return [f"{stream}_{part}.{rest}"]
    if variant != "bharnet_e":
        raise ConfigError(f"model.init is for score_fusion, bharnet_p and bharnet_e, not {variant}")
    if part == "head":
        return [f"{stream}_expert_head.{rest}", f"{stream}_interactive_head.{rest}"]
    if rest.startswith("blocks."):
        _, index, tail = rest.split(".", 2)
        split = model.config.expertized.split_block
        if int(index) >= split:
            local = int(index) - split
            return [f"{stream}_{branch}_tail.{local}.{tail}" for branch in ("expert", "interactive")]
    return [f"{stream}_trunk.{rest}"]


def expert_file(path: str | Path) -> Path:
    """The checkpoint ``model.init`` names: a file, or a training run folder's ``last.pt``."""
    path = resolve_path(path)
    if path.is_dir():
        path = path / "last.pt"
    if not path.is_file():
        raise ConfigError(f"model.init: {path} does not exist; give an expert's checkpoint or its run folder")
    return path


def init_from_experts(
    model: BHaRNetModel,
    experts: Mapping[str, str | Path | None],
    class_names: Sequence[str] | None = None,
    preprocess: PreprocessConfig | None = None,
) -> list[str]:
    """Load pre-trained body/hand expert checkpoints into the matching backbones; returns notes.

    Every backbone weight must match in shape (same width, layout, persons, input.motion), and the
    expert must read its inputs as the model will (``preprocess``: modality, hand frame, scale);
    heads are copied only when the expert's classes are ``class_names`` (else they stay freshly
    initialised: a head of the same size for other classes would start with the wrong meanings).
    """
    notes = []
    own = model.state_dict()
    for stream, path in experts.items():
        if not path:
            continue
        checkpoint = load_checkpoint(expert_file(path))
        expected = f"{stream}_expert"
        if checkpoint.model_config.get("variant") != expected:
            raise ConfigError(
                f"model.init.{stream}: {path} is a {checkpoint.model_config.get('variant')}, not a {expected}"
            )
        check_expert_inputs(stream, checkpoint, preprocess)
        same_classes = class_names is None or list(checkpoint.class_names) == list(class_names)
        update, skipped_head = {}, False
        for key, value in checkpoint.state_dict.items():
            for target in expert_key_map(model, stream, key):
                if target not in own:
                    raise ConfigError(f"model.init.{stream}: {target} (from {key}) is not in the model")
                if key.startswith("head.") and (own[target].shape != value.shape or not same_classes):
                    skipped_head = True
                    continue
                if own[target].shape != value.shape:
                    raise ConfigError(
                        f"model.init.{stream}: {key} has shape {tuple(value.shape)}, the model needs "
                        f"{tuple(own[target].shape)}; train the expert with the same width, layout, "
                        "persons and input.motion"
                    )
                update[target] = value
        check_stream_covered(model, stream, checkpoint.state_dict, update, path)
        own.update(update)
        head_note = " (heads not copied: other classes)" if skipped_head else ""
        notes.append(f"initialised the {stream} stream from {path}: {len(update)} tensors{head_note}")
    model.load_state_dict(own)
    return notes


def check_stream_covered(
    model: BHaRNetModel, stream: str, expert: Mapping[str, Any], update: Mapping[str, Any], path: str | Path
) -> None:
    """ConfigError where the expert leaves part of its stream's backbone untouched (an expert of
    fewer blocks): the rest would start random while the run said the stream was initialised."""
    if model.config.variant == "bharnet_e":
        parts = {f"{stream}_trunk", f"{stream}_expert_tail", f"{stream}_interactive_tail"}
    else:
        parts = {
            expert_key_map(model, stream, key)[0].split(".")[0]
            for key in expert
            if not key.startswith("head.")
        }
    missing = [key for key in model.state_dict() if key.split(".")[0] in parts and key not in update]
    if missing:
        raise ConfigError(
            f"model.init.{stream}: {path} gives no weights for {len(missing)} of the model's {stream} "
            f"backbone tensors (e.g. {missing[0]}); train the expert with the model's backbone stages"
        )


def check_expert_inputs(stream: str, expert: Checkpoint, preprocess: PreprocessConfig | None) -> None:
    """ConfigError where an expert read its inputs otherwise than the model's ``stream`` will (bone
    vectors against joints, a hand expert's hands in the body's frame against the wrist's, metres
    against fractions of the image): its weights would mean something else there."""
    if preprocess is None:
        return
    theirs = expert.preprocess_config
    keys = (
        "modality",
        "scale",
        "normalise",
        "aspect_correction",
        *(("hand_frame",) if stream == "hand" else ("min_score",)),
        *(("space",) if theirs.space and preprocess.space else ()),  # "": not recorded (older files)
    )
    differ = [
        f"{key} {getattr(theirs, key)} vs {getattr(preprocess, key)}"
        for key in keys
        if getattr(theirs, key) != getattr(preprocess, key)
    ]
    if differ:
        raise ConfigError(
            f"model.init.{stream}: the expert read its inputs otherwise ({', '.join(differ)}); "
            "train it with the same preprocess settings"
        )


# --- optimisation ------------------------------------------------------------------------------


def learning_rate(optim: Mapping[str, Any], epochs: int, progress: float) -> float:
    """LR at ``progress`` epochs: linear warm-up to ``lr``, then cosine down to ``min_lr``."""
    base, low, warmup = float(optim["lr"]), float(optim["min_lr"]), float(optim["warmup_epochs"])
    if progress < warmup:  # at most lr: a warm-up of 1e-9 epochs made the first step 1e6 times it
        return base * min(1.0, (progress + 1e-3) / warmup)
    span = max(epochs - warmup, 1e-9)
    fraction = min(max((progress - warmup) / span, 0.0), 1.0)
    return low + 0.5 * (base - low) * (1.0 + math.cos(math.pi * fraction))


def make_optimizer(model: nn.Module, optim: Mapping[str, Any]) -> torch.optim.Optimizer:
    """SGD with (Nesterov) momentum and weight decay on every parameter, as in DeGCN."""
    return torch.optim.SGD(model.parameters(), lr=float(optim["lr"]), **sgd_settings(optim))


def sgd_settings(optim: Mapping[str, Any]) -> dict[str, Any]:
    """SGD's momentum, Nesterov switch (only with momentum) and weight decay from ``optim``."""
    momentum = float(optim["momentum"])
    return {
        "momentum": momentum,
        "nesterov": bool(optim["nesterov"]) and momentum > 0,
        "weight_decay": float(optim["weight_decay"]),
    }


# --- loops -------------------------------------------------------------------------------------


def to_device(batch: Sequence[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    return [tensor.to(device, non_blocking=True) for tensor in batch]


def progress_bar(iterable: Iterable, enabled: bool, **options: Any) -> Iterable:
    """A tqdm bar on stderr when ``enabled``, else the iterable itself."""
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, leave=False, dynamic_ncols=True, **options)


@dataclass
class EpochStats:
    """Running sums of one training epoch."""

    loss: float = 0.0
    correct: int = 0
    count: int = 0

    def add(self, loss: float, correct: int, count: int) -> None:
        self.loss += loss * count
        self.correct += correct
        self.count += count

    def reduced(self, env: Dist) -> tuple[float, float]:
        """Mean loss and top-1 over all processes."""
        values = torch.tensor([self.loss, self.correct, self.count], dtype=torch.float64)
        if env.world > 1:
            values = values.to(env.device)
            dist.all_reduce(values)
        loss, correct, count = values.tolist()
        return loss / max(count, 1), correct / max(count, 1)


def train_epoch(run: TrainingRun, epoch: int) -> tuple[float, float]:
    """One pass over the training shard; returns (mean loss, top-1)."""
    run.model.train()
    run.train_feeder.set_epoch(epoch)
    run.sampler.set_epoch(epoch)
    stats = EpochStats()
    steps = len(run.train_loader)
    bar = progress_bar(run.train_loader, run.show_progress, desc=f"epoch {epoch + 1}", unit="batch")
    for step, batch in enumerate(bar):
        lr = learning_rate(run.config["optim"], run.config["epochs"], epoch + step / steps)
        for group in run.optimizer.param_groups:
            group["lr"] = lr
        body, hand, mask, labels = to_device(batch, run.env.device)
        outputs = run.model(body, hand, mask)
        loss = run.loss_fn(outputs, labels)["total"]
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = gradient_norm(run.model, run.config["optim"]["grad_clip"])
        if not math.isfinite(norm):  # a NaN loss gives NaN gradients too
            raise DivergedError(diverged_message(run, epoch, step, float(loss.detach()), hand))
        run.optimizer.step()
        correct = int((outputs["fused"].argmax(1) == labels).sum())
        stats.add(float(loss.detach()), correct, len(labels))
        if run.show_progress:
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}", lr=f"{lr:.3g}")
    return stats.reduced(run.env)


def gradient_norm(model: nn.Module, clip: float) -> float:
    """The total gradient norm of this step, clipped to ``clip`` afterwards when ``clip`` > 0.

    Training stops when it is not finite, before the step writes NaN into the weights. Under DDP
    the gradients are already averaged over the processes, so every process gets the same norm
    and stops at the same step (a per-process loss check could stop one process alone and hang
    the others).
    """
    if clip > 0:
        return float(nn.utils.clip_grad_norm_(model.parameters(), clip))
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    return float(nn.utils.get_total_norm(grads)) if grads else 0.0


def diverged_message(run: TrainingRun, epoch: int, step: int, loss: float, hand: torch.Tensor) -> str:
    """One line for a batch whose gradients are NaN or infinite, with the likely cause."""
    if not bool(hand.any()) and uses_hands(run.base_model):
        what = (
            f"no sample of batch {step + 1} has a hand, and the hand stream's gradients overflow on "
            "all-zero input"
        )
        return diverged_after(
            run, epoch, what, "train on data with more hands, a larger batch_size or a body expert"
        )
    return diverged_after(run, epoch, f"batch {step + 1} has loss {loss:.4g} and NaN or infinite gradients")


def diverged_after(
    run: TrainingRun, epoch: int, what: str, fix: str = "lower optim.lr or set optim.grad_clip"
) -> str:
    """One line: the divergence in ``epoch``, what the run folder keeps, and what to change."""
    return f"training diverged in epoch {epoch + 1}: {what}; {kept_checkpoints(run)}; {fix}"


def check_every_branch_learns(model: BHaRNetModel, initialised: bool) -> None:
    """Refuse a model with branches no loss term of positive weight reaches, unless trained experts
    initialise them (and always when no branch is reached: the loss would be 0): they would get no
    gradient, stay random, and still count in every prediction (and the expert-only export would
    be random). A weight of 0 leaves a term out as ``complementary: false`` does."""
    unreached = unreached_branches(model)
    if unreached and (not initialised or len(unreached) == len(model.branches)):
        raise ConfigError(
            f"no loss term of positive weight reaches {unreached}: they never learn but count in every "
            "prediction; set loss.complementary: true with complementary_weight > 0, or a positive "
            "individual_weight or expert_weight, or start them from trained experts (model.init)"
        )


def unreached_branches(model: BHaRNetModel) -> list[str]:
    """The branches of ``model`` whose loss terms all have weight 0 (or are switched off)."""
    loss, weights = build_loss(model), model.config.loss
    if loss.uses_complementary and weights.complementary_weight > 0:
        return []  # the complementary term reaches every branch
    reached = set(loss.individual_branches) if weights.individual_weight > 0 else set()
    reached |= set(loss.expert_branches)  # none unless expert_weight > 0
    return [b for b in model.branches if b not in reached]


def uses_hands(model: BHaRNetModel) -> bool:
    """Whether ``model`` has a hand stream (every variant but the body expert)."""
    return getattr(model, "stream", "hand") == "hand"


def kept_checkpoints(run: TrainingRun) -> str:
    """What the run folder still holds after a divergence (its files are never overwritten)."""
    if run.start_epoch == 0 and not run.history:
        return "no checkpoint was written"
    epoch = run.history[-1]["epoch"] if run.history else run.start_epoch
    return f"last.pt keeps epoch {int(epoch)}"


def weights_finite(run: TrainingRun) -> bool:
    """Whether every weight and buffer is finite, on every process (one all-reduce per call)."""
    finite = not non_finite_weights(run.base_model.state_dict())
    if run.env.world > 1:
        flag = torch.tensor([float(finite)], device=run.env.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        finite = bool(flag.item())
    return finite


@torch.no_grad()
def predict(
    model: nn.Module, loader: DataLoader, env: Dist, show_progress: bool = False
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Indices and logits (fused and per branch) of every sample the loader yields, in its order."""
    model.eval()
    logits: dict[str, list[torch.Tensor]] = {}
    for batch in progress_bar(loader, show_progress, desc="eval", unit="batch"):
        body, hand, mask, _ = to_device(batch, env.device)
        outputs = model(body, hand, mask)
        for name, value in outputs.items():
            if value.ndim == 2:
                logits.setdefault(name, []).append(value.float().cpu())
    indices = np.asarray(list(loader.sampler), np.int64)
    return indices, {name: torch.cat(parts).numpy() for name, parts in logits.items()}


def gather_predictions(
    indices: np.ndarray, logits: dict[str, np.ndarray], env: Dist, size: int
) -> dict[str, np.ndarray]:
    """All processes' logits, ordered by sample index (DistributedSampler padding removed)."""
    if env.world > 1:
        parts: list[Any] = [None] * env.world
        dist.all_gather_object(parts, (indices, logits))
        indices = np.concatenate([p[0] for p in parts])
        logits = {name: np.concatenate([p[1][name] for p in parts]) for name in logits}
    order = np.full(size, -1, np.int64)
    order[indices] = np.arange(len(indices))
    return {name: values[order] for name, values in logits.items()}


# --- the run -----------------------------------------------------------------------------------


@dataclass
class TrainingRun:
    """Everything one training run holds: config, data, model, optimiser and where it writes."""

    config: dict[str, Any]
    out: Path
    env: Dist
    model_config: dict[str, Any]
    preprocess: PreprocessConfig
    class_names: list[str]
    hand_intensive: list[str] | None
    model: nn.Module
    base_model: BHaRNetModel
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    train_feeder: SkeletonFeeder
    sampler: DistributedSampler | ClassBalancedSampler
    train_loader: DataLoader
    val_loader: DataLoader | None
    val_labels: np.ndarray
    start_epoch: int = 0
    best_top1: float = -1.0
    history: list[dict[str, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def show_progress(self) -> bool:
        return bool(self.config["progress"]) and self.env.main


def training_sampler(
    config: Mapping[str, Any], env: Dist, train_feeder: SkeletonFeeder
) -> DistributedSampler | ClassBalancedSampler:
    """A shuffling sampler of this process's shard (also with one process), class-balanced if asked."""
    balance = config["data"]["class_balance"]
    if balance > 0:
        return ClassBalancedSampler(train_feeder.labels, balance, env.world, env.rank, config["seed"])
    return DistributedSampler(
        train_feeder, num_replicas=env.world, rank=env.rank, shuffle=True, seed=config["seed"], drop_last=True
    )


def make_loaders(
    config: Mapping[str, Any], env: Dist, train_feeder: SkeletonFeeder, val_feeder: SkeletonFeeder | None
) -> tuple[DistributedSampler | ClassBalancedSampler, DataLoader, DataLoader | None]:
    """Training loader over :func:`training_sampler` and a val loader."""
    sampler = training_sampler(config, env, train_feeder)
    if config["batch_size"] % env.world:  # the global batch, split evenly: 64 over 3 trained 63
        raise ConfigError(
            f"batch_size {config['batch_size']} does not split evenly over {env.world} processes; "
            f"give a multiple of {env.world}"
        )
    per_process = config["batch_size"] // env.world
    drop = len(train_feeder) // env.world >= per_process  # keep one short batch for tiny sets
    options = {"num_workers": config["workers"], "pin_memory": env.device.type == "cuda"}
    train_loader = DataLoader(train_feeder, per_process, sampler=sampler, drop_last=drop, **options)
    if val_feeder is None:
        return sampler, train_loader, None
    val_sampler = DistributedSampler(val_feeder, num_replicas=env.world, rank=env.rank, shuffle=False)
    val_loader = DataLoader(val_feeder, config["eval_batch_size"], sampler=val_sampler, **options)
    return sampler, train_loader, val_loader


def build_run(
    config: dict[str, Any], out: Path, env: Dist, resume_state: dict[str, Any] | None
) -> TrainingRun:
    """Load data, build model, loss, optimiser and loaders; restore state when resuming."""
    data_cfg = config["data"]
    selection = select_data(data_cfg, config["seed"], resumed=resume_state is not None)
    train_data, val_data = selection.train, selection.val
    class_names = list(train_data.class_names)
    mirror_map(config, class_names)
    if resume_state is None:
        model_config = model_config_dict(config, class_names)
    else:
        model_config = resumed_model_config(config, resume_state, class_names)
    preprocess = preprocess_from(config, model_config["input"], train_data.space)
    if resume_state is not None:
        check_same_inputs(preprocess, resume_state["preprocess"])
    check_loadable_size(model_config)
    base_model = build_model(model_config).to(env.device)
    notes = [
        *selection.notes,
        *uncorrected_aspect_note(train_data, preprocess.aspect_correction),
        *still_clock_note(train_data),
    ]
    if resume_state is None:
        check_every_branch_learns(base_model, any((config["model"]["init"] or {}).values()))
        notes += init_from_experts(base_model, config["model"]["init"] or {}, class_names, preprocess)
    else:
        base_model.load_state_dict(resume_state["state_dict"])
    model: nn.Module = base_model
    if env.world > 1:
        device_ids = [env.device.index] if env.device.type == "cuda" else None
        model = nn.parallel.DistributedDataParallel(base_model, device_ids=device_ids)
    augment = AugmentConfig.from_dict(config["augment"])
    fill = data_cfg["fill_hand_gaps"]
    train_feeder = SkeletonFeeder(train_data, preprocess, True, augment, config["seed"], fill)
    notes.append(mirror_note(class_names, train_feeder.mirror_to, augment.mirror))
    notes += idle_augment_note(augment, train_data.space, preprocess.window_seconds)
    val_feeder, val_labels = None, np.zeros(0, np.int64)
    if val_data is not None and len(val_data):
        val_labels = labels_for(val_data, class_names)
        val_feeder = SkeletonFeeder(val_data, preprocess, False, fill_gaps=fill, labels=val_labels)
    check_data_fits(base_model, preprocess, train_data, val_data)  # after the feeders' sample checks
    sampler, train_loader, val_loader = make_loaders(config, env, train_feeder, val_feeder)
    notes += warmup_note(config, len(train_loader))
    optimizer = make_optimizer(model, config["optim"])
    run = TrainingRun(
        config, out, env, model_config, preprocess, class_names, hand_intensive_names(train_data), model,
        base_model, build_loss(base_model), optimizer, train_feeder, sampler, train_loader, val_loader,
        val_labels, notes=notes,
    )  # fmt: skip
    if resume_state is not None:
        continue_from(run, resume_state)
    return run


def idle_augment_note(augment: AugmentConfig, space: str, window_seconds: float) -> list[str]:
    """A note naming augmentations set away from their defaults that this run cannot apply: the
    rotation of the other coordinate space, and the time-window ones on a frame-count model."""
    default = AugmentConfig()
    idle = ["rotate_2d" if space == "world" else "rotate_3d"]
    if window_seconds <= 0:
        idle += ["speed", "min_cover"]
    changed = [
        f"augment.{key}={getattr(augment, key):g}"
        for key in idle
        if getattr(augment, key) != getattr(default, key)
    ]
    if not changed:
        return []
    windows = "a time window" if window_seconds > 0 else "frame-count windows"
    return [f"{', '.join(changed)}: no effect on {space}-space data with {windows}; see docs/training.md"]


def warmup_note(config: Mapping[str, Any], steps: int) -> list[str]:
    """A note where the warm-up lasts the whole run (its last step still warming up): the learning
    rate then never decays. At the LR of that last step; the note had come only for a warm-up
    longer than the epochs, at an LR no step reached."""
    optim, epochs = config["optim"], config["epochs"]
    last = epochs - 1 / max(steps, 1)
    if optim["warmup_epochs"] <= last:
        return []
    return [
        f"optim.warmup_epochs {optim['warmup_epochs']:g} lasts the whole {epochs} epochs: the learning rate "
        f"reaches {learning_rate(optim, epochs, last):.3g} of optim.lr {optim['lr']:g} and never decays"
    ]


def resumed_model_config(
    config: Mapping[str, Any], state: Mapping[str, Any], class_names: Sequence[str]
) -> dict[str, Any]:
    """The model config of last.pt with what ``--resume`` may change: test-time mirroring
    (``model.test_mirror``) and the label smoothing (``optim.label_smoothing``), which the
    weights do not depend on; the layers stay those the weights were trained in."""
    if list(class_names) != list(state["class_names"]):
        raise ConfigError(
            f"the run's data now has the classes {list(class_names)}, its weights {state['class_names']}: "
            "the data files changed since; start a new run"
        )
    stored = state["model_config"]
    loss = {**stored.get("loss", {}), "label_smoothing": config["optim"]["label_smoothing"]}
    merged = {**stored, "loss": loss, "test_mirror": test_mirror_classes(config, class_names)}
    try:
        return plain(config_to_dict(config_from_dict(merged)))
    except (ValueError, TypeError) as err:
        raise ConfigError(f"the resumed run's model config: {err}") from None


def check_same_inputs(preprocess: PreprocessConfig, trained: Mapping[str, Any]) -> None:
    """ConfigError when the run's config (its config.yaml, perhaps edited) would preprocess other
    inputs than last.pt's weights were trained on: they would silently mean something else."""
    before = PreprocessConfig.from_dict(dict(trained)).to_dict()
    now = preprocess.to_dict()
    if not before["space"]:  # weights from before the space was recorded: the data tells it now
        before["space"] = now["space"]
    differ = [f"{key} {before[key]} in last.pt, {now[key]} now" for key in now if now[key] != before.get(key)]
    if differ:
        raise ConfigError(
            f"--resume: the run's config.yaml asks for other inputs than its weights were trained on "
            f"({', '.join(differ)}); restore its preprocess section, or start a new run"
        )


def continue_from(run: TrainingRun, state: Mapping[str, Any]) -> None:
    """The optimiser, epoch, best score and history of a resumed run; CheckpointError when
    resume.pt cannot be what it claims. The optimiser keeps its momentum buffers but takes the
    config's settings (``optim.*`` overrides of ``--resume``)."""
    epoch, best, history = state["epoch"], state["best_top1"], state["history"]
    fields_ok = (
        isinstance(epoch, int) and not isinstance(epoch, bool) and 0 <= epoch <= LARGEST_COUNT
        and isinstance(best, int | float) and not isinstance(best, bool) and -1 <= best <= 1
        and isinstance(state["optimizer"], dict)
    )  # fmt: skip
    names = [name for name, _ in run.base_model.named_parameters()]
    # resume.pt of format 1 has no version
    version = checked_version(state.get("format_version", 1), run.out / "resume.pt")
    try:
        if not fields_ok:
            raise ValueError("a field has the wrong type or range")
        check_history(history, epoch)
        optimizer_state = upgrade_optimizer_state(state["optimizer"], names, version)
        check_optimizer_buffers(
            optimizer_state, [p for group in run.optimizer.param_groups for p in group["params"]]
        )
        run.optimizer.load_state_dict(optimizer_state)
        for group in run.optimizer.param_groups:
            group.update(sgd_settings(run.config["optim"]))
    except (ValueError, KeyError, TypeError, IndexError, RuntimeError) as err:
        raise CheckpointError(
            f"{run.out / 'resume.pt'} does not fit this run ({str(err)[:120]}); it is damaged or from "
            "another run: start a new one"
        ) from None
    run.start_epoch, run.best_top1, run.history = epoch, float(best), [dict(row) for row in history]
    restore_random_state(run.base_model, state, run.out / "resume.pt")
    if epoch >= run.config["epochs"]:
        raise ConfigError(
            f"{run.out} has trained {epoch} epochs already; to train on, resume with epochs=N above {epoch}"
        )


def check_history(history: Any, epochs: int) -> None:
    """ValueError unless ``history`` is what save_state writes: one row per finished epoch, in
    order, each ``epoch`` (its number) and numbers by name. The metrics plot and the console line
    read every row, after an epoch of training has replaced last.pt."""
    if not isinstance(history, list) or len(history) != epochs:
        count = len(history) if isinstance(history, list) else "no list of"
        raise ValueError(f"{count} history rows for {epochs} epochs")
    for number, row in enumerate(history, 1):
        values_ok = isinstance(row, dict) and all(
            isinstance(key, str) and isinstance(value, int | float) and not isinstance(value, bool)
            for key, value in row.items()
        )
        if not values_ok or row.get("epoch") != number:
            raise ValueError(f"history row {number} is not epoch {number} with numbers")


def check_optimizer_buffers(state: Mapping[str, Any], params: Sequence[torch.Tensor]) -> None:
    """ValueError unless every per-parameter buffer of a stored optimiser ``state`` (SGD's momentum)
    is None or a dense tensor of its parameter's shape and dtype with finite values, checked before the
    optimiser takes them: it checks none of it, and casts first, so a few stored bytes that claim
    10^11 elements would be allocated."""
    for index, buffers in dict(state.get("state") or {}).items():
        param = params[index]
        for name, value in dict(buffers).items():
            if value is None:  # SGD's momentum before the first step
                continue
            if not torch.is_tensor(value):
                raise ValueError(f"a {name} that is {type(value).__name__}, not a tensor")
            if value.shape != param.shape or value.dtype != param.dtype or not value.is_contiguous():
                kind = "" if value.is_contiguous() else "non-dense "
                raise ValueError(
                    f"a {kind}{name} of shape {tuple(value.shape)[:8]} and {value.dtype} for a parameter of "
                    f"{tuple(param.shape)} and {param.dtype}"
                )
            if not bool(torch.isfinite(value).all()):
                raise ValueError(f"a {name} holds NaN or infinite values")


def check_data_fits(
    model: BHaRNetModel,
    preprocess: PreprocessConfig,
    train_data: SkeletonDataset,
    val_data: SkeletonDataset | None,
) -> None:
    """Refuse, before any work, data this model cannot learn from or take.

    A hand-stream model on data without a single hand would only see zeros there, and their
    gradients overflow to NaN in the first step. A skeleton layout the preprocessing cannot map to
    the model's (e.g. NTU-25 data for a MediaPipe-33 model) would fail in the first batch.
    """
    if uses_hands(model) and not train_data.has_hands:
        raise ConfigError(
            f"the training data has no hand in any frame, but a {model.config.variant} model learns "
            "from hands; add hands to the data (bharnet extract) or train a body expert "
            "(model.config=config/model/body_expert.yaml)"
        )
    for data in (train_data, val_data):
        if data is None or not len(data):
            continue
        problem = space_problem(data.space, preprocess)
        if problem:
            raise ConfigError(
                f"data.val: {problem}; validate on data in the training data's space "
                f"(import both the same way)"
            )
        sample = data.sample(0)
        persons = min(len(sample.body), preprocess.num_persons)
        try:
            preprocess_arrays(
                sample.body[:persons], sample.hands[0], sample.hand_present[0], data.layout, data.space,
                preprocess, sample.image_size,
            )  # fmt: skip
        except ValueError as err:
            raise ConfigError(
                f"the data does not fit the model: {err}; train a model of the data's layout "
                f"(model.overrides.input.body_layout={data.layout})"
            ) from None


def mirror_note(class_names: Sequence[str], mirror_to: np.ndarray, probability: float) -> str:
    """One line saying which classes mirroring swaps and which it leaves alone."""
    if probability <= 0:
        return "mirroring: off"
    pairs = enumerate(zip(class_names, mirror_to.tolist(), strict=True))
    swapped = [f"{name}<->{class_names[t]}" for i, (name, t) in pairs if t > i]
    never = [name for name, t in zip(class_names, mirror_to, strict=True) if t < 0]
    parts = [f"mirroring: p={probability:g}"]
    parts.append(f"swaps {', '.join(swapped)}" if swapped else "no class swapped")
    if never:
        parts.append(f"never mirrored: {', '.join(never)}")
    return "; ".join(parts)


def validate(run: TrainingRun) -> dict[str, float]:
    """Validation metrics of the current model (empty without a validation set)."""
    if run.val_loader is None:
        return {}
    indices, logits = predict(run.model, run.val_loader, run.env, run.show_progress)
    logits = gather_predictions(indices, logits, run.env, len(run.val_labels))
    if np.isnan(logits["fused"]).any():  # finite weights, overflowing logits: the loop says it diverged
        return {"val_loss": math.nan}
    subset = None
    if run.hand_intensive:
        subset = [run.class_names.index(name) for name in run.hand_intensive]
    report = classification_report(logits["fused"], run.val_labels, subset)
    loss = nn.functional.cross_entropy(torch.from_numpy(logits["fused"]), torch.from_numpy(run.val_labels))
    metrics = {
        "val_loss": float(loss),
        "val_top1": report.top1,
        "val_top5": report.top5,
        "val_mean_class": report.mean_class,
    }
    if report.subset is not None:
        metrics["val_hand_intensive"] = report.subset
    return metrics


def random_state(model: nn.Module) -> dict[str, Any]:
    """What a resumed run needs to draw as the run would have gone on: torch's random state
    (dropout, the attention's redraws) and how far each attention is from its next redraw. The
    seed alone restarted both, so a resumed run redrew its projections at other steps."""
    redraws = [m.calls_since_redraw for m in _redrawing(model)]
    # dropout on a GPU: this rank's device (every rank seeds alike and draws alike)
    cuda = [torch.cuda.get_rng_state()] if torch.cuda.is_initialized() else []
    return {"torch_rng": torch.get_rng_state(), "cuda_rng": cuda, "redraws": redraws}


def _redrawing(model: nn.Module) -> list[nn.Module]:
    """The model's attentions that redraw their projections, in module order."""
    return [m for m in model.modules() if hasattr(m, "calls_since_redraw")]


def restore_random_state(model: nn.Module, state: Mapping[str, Any], path: Path) -> None:
    """:func:`random_state` back in place (a resume.pt written before it kept one: the seed's)."""
    if "torch_rng" not in state:
        return
    counters = _redrawing(model)
    redraws = state.get("redraws")
    try:
        if not isinstance(redraws, list) or len(redraws) != len(counters):
            raise ValueError("its redraw counters do not match the model's attentions")
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in redraws):
            raise ValueError("a redraw counter is no count")
        torch.set_rng_state(state["torch_rng"])
        cuda = state.get("cuda_rng") or []
        if cuda and torch.cuda.is_available():
            torch.cuda.set_rng_state(cuda[0])
    except (ValueError, TypeError, RuntimeError) as err:
        raise CheckpointError(f"{path} does not fit this run ({str(err)[:120]}); start a new one") from None
    for module, count in zip(counters, redraws, strict=True):
        module.calls_since_redraw = count


def save_state(run: TrainingRun, epoch: int, metrics: dict[str, float], best: bool) -> None:
    """last.pt, best.pt (when improved) and resume.pt; rank 0 only.

    ``--resume`` needs last.pt and resume.pt of one epoch: resume.pt is written aside first and put
    in place right after last.pt, so a kill leaves both of the old epoch or (but for the instant
    between two renames) both of the new one. best.pt is written before either: resume.pt records
    the best score, and a kill between them left a run whose best.pt never came (a resumed run
    rewrites it only for a better score).
    """
    checkpoint = make_checkpoint(
        run.base_model, run.class_names, run.preprocess, run.hand_intensive, epoch, metrics
    )
    state = {
        "epoch": epoch,
        "best_top1": run.best_top1,
        "history": run.history,
        "optimizer": run.optimizer.state_dict(),
        "format_version": CHECKPOINT_FORMAT,
        "config": plain(run.config),  # what --resume compares config.yaml with (it may be edited)
        **random_state(run.base_model),
    }
    partial = run.out / "resume.pt.partial"
    torch.save(state, partial)
    if best:
        save_checkpoint(checkpoint, run.out / "best.pt")
    save_checkpoint(checkpoint, run.out / "last.pt")
    os.replace(partial, run.out / "resume.pt")


def write_metrics(run: TrainingRun) -> None:
    """metrics.csv (every epoch so far) and metrics.png, each written aside and renamed into place:
    a stop while they are written must not leave a finished run's files cut short for good."""
    keys: list[str] = []
    for row in run.history:
        keys += [key for key in row if key not in keys]
    partial = run.out / "metrics.csv.partial"
    with open(partial, "w", newline="") as stream:
        writer = csv.DictWriter(stream, keys)
        writer.writeheader()
        writer.writerows(run.history)
    os.replace(partial, run.out / "metrics.csv")
    plot = run.out / "metrics.partial.png"  # the suffix tells matplotlib the format
    plot_metrics(run.history, plot)
    os.replace(plot, run.out / "metrics.png")


def plot_metrics(history: Sequence[Mapping[str, float]], path: Path) -> None:
    """Loss (left) and accuracy (right) per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for key in ("train_loss", "val_loss"):
        if any(key in row for row in history):
            left.plot(epochs, [row.get(key, np.nan) for row in history], marker=".", label=key)
    for key in ("train_top1", "val_top1", "val_mean_class", "val_hand_intensive"):
        if any(key in row for row in history):
            right.plot(epochs, [row.get(key, np.nan) for row in history], marker=".", label=key)
    left.set_xlabel("epoch")
    left.set_ylabel("loss")
    right.set_xlabel("epoch")
    right.set_ylabel("accuracy")
    right.set_ylim(0, 1)
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def run_epochs(run: TrainingRun) -> None:
    """The epoch loop: train, validate, log and checkpoint."""
    epochs = run.config["epochs"]
    for epoch in range(run.start_epoch, epochs):
        started = time.monotonic()
        train_loss, train_top1 = train_epoch(run, epoch)
        if not weights_finite(run):
            raise DivergedError(diverged_after(run, epoch, "the weights became NaN or infinite"))
        metrics: dict[str, float] = {}
        if (epoch + 1) % run.config["eval_every"] == 0 or epoch + 1 == epochs:
            metrics = validate(run)
        if not math.isfinite(metrics.get("val_loss", 0.0)):
            raise DivergedError(diverged_after(run, epoch, f"the validation loss is {metrics['val_loss']}"))
        row = {
            "epoch": epoch + 1,
            "lr": run.optimizer.param_groups[0]["lr"],
            "train_loss": train_loss,
            "train_top1": train_top1,
            **metrics,
            "seconds": time.monotonic() - started,
        }
        run.history.append(row)
        top1 = metrics.get("val_top1", -1.0)  # without validation there is no best, only last
        best = run.val_loader is not None and top1 > run.best_top1
        run.best_top1 = max(run.best_top1, top1)
        if run.env.main:
            save_state(run, epoch + 1, {k: v for k, v in row.items() if k != "epoch"}, best)
            write_metrics(run)
            print(format_row(row), flush=True)


def format_row(row: Mapping[str, float]) -> str:
    """One line per epoch for the console."""
    parts = [f"epoch {int(row['epoch'])}"]
    for key, value in row.items():
        if key != "epoch":
            parts.append(f"{key} {value:.4g}")
    return "  ".join(parts)


def run_folder(config: Mapping[str, Any], out: str | Path | None) -> Path:
    """``out`` if given, else ``runs/<name>-<timestamp>`` under the working folder, with ``-2``,
    ``-3``, ... added while that name is taken (two runs started in one second, or anything else
    there): a default folder is always a new one."""
    if out is not None:
        return Path(out)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{config['name']}-{stamp}"
    folder, number = base, 1
    while folder.exists() or folder.is_symlink():
        number += 1
        folder = base.with_name(f"{base.name}-{number}")
    return folder


def make_run_folder(folder: Path, default: bool) -> bool:
    """Create the run folder; True if it was made here (nothing in it is anyone else's). A default
    folder taken since :func:`run_folder` chose it (another run, this second) is a ConfigError."""
    if default:
        try:
            folder.mkdir(parents=True)
        except FileExistsError:
            raise ConfigError(f"another run took the folder {folder} meanwhile; start again") from None
        return True
    if folder.is_dir():
        return False
    folder.mkdir(parents=True, exist_ok=True)
    return True


def take_back_unfinished(run: TrainingRun, made: bool) -> None:
    """Remove what a run stopped before it saved its first epoch (Ctrl-C, divergence, out of memory:
    no last.pt) wrote in a folder it made, so the same command can simply run again: config.yaml,
    model.yaml, a best.pt or resume.pt.partial written before the stop, and the folder. In a folder
    that was there before they stay (``--force`` replaces them)."""
    if not made or (run.out / "last.pt").exists() or run.start_epoch:  # an epoch was saved
        return
    for name in ("config.yaml", "model.yaml", "best.pt", "resume.pt.partial"):
        (run.out / name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # something else appeared in it meanwhile: not ours to remove
        run.out.rmdir()


def write_config(run: TrainingRun) -> None:
    """config.yaml (resolved training config) and model.yaml (resolved model config)."""
    with open(run.out / "config.yaml", "w", encoding="utf-8") as stream:
        yaml.safe_dump(plain(run.config), stream, sort_keys=False)
    with open(run.out / "model.yaml", "w", encoding="utf-8") as stream:
        yaml.safe_dump(run.model_config, stream, sort_keys=False)


def absolute_paths(config: dict[str, Any]) -> dict[str, Any]:
    """A copy with data files, model config and init checkpoints resolved to absolute paths."""
    config = copy.deepcopy(config)
    data = config["data"]
    for key in ("train", "val"):
        data[key] = [str(resolve_path(p)) for p in data[key]]
    config["model"]["config"] = str(resolve_path(config["model"]["config"]))
    init = config["model"]["init"] or {}
    config["model"]["init"] = {k: (str(resolve_path(v)) if v else None) for k, v in init.items()}
    return config


RESUME_KEYS = ("epoch", "best_top1", "history", "optimizer")  # what save_state writes to resume.pt


def load_resume(folder: str | Path) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """A run folder's config, and its state (model weights from last.pt plus resume.pt)."""
    folder = Path(folder)
    if folder.is_file():
        folder = folder.parent
    for name in ("config.yaml", "last.pt", "resume.pt"):
        if not (folder / name).is_file():
            raise ConfigError(
                f"cannot resume {folder}: {name} is missing; give a run folder of `bharnet train`"
            )
    try:
        config = load_yaml(read_text_file(folder / "config.yaml"))
    except yaml.YAMLError as err:
        raise ConfigError(
            f"cannot resume {folder}: config.yaml is not valid YAML ({yaml_problem(err)})"
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(f"cannot resume {folder}: config.yaml is not a UTF-8 text file") from None
    if not isinstance(config, dict):
        raise ConfigError(f"cannot resume {folder}: config.yaml is not a training config")
    checkpoint = load_checkpoint(folder / "last.pt")
    state = read_plain_data(folder / "resume.pt", "resume state")
    missing = [key for key in RESUME_KEYS if key not in state]
    if missing:
        raise CheckpointError(f"{folder / 'resume.pt'} lacks {missing}; it was not written by bharnet train")
    if state["epoch"] != checkpoint.epoch:
        raise CheckpointError(
            f"{folder}: last.pt holds epoch {checkpoint.epoch} and resume.pt epoch {shown(state['epoch'])}; "
            "they are not one run's pair (copied from another run, or a save was cut off): start a new run"
        )
    weights = {"model_config": checkpoint.model_config, "state_dict": checkpoint.state_dict}
    state.update(weights, class_names=checkpoint.class_names, preprocess=checkpoint.preprocess)
    return folder, config, state


def trained_config(folder: Path, state: Mapping[str, Any], stored: Mapping[str, Any]) -> dict[str, Any]:
    """The config the run trained with, which ``--resume`` compares config.yaml and the overrides
    with: the copy in resume.pt, or for a run written before resume.pt kept one, config.yaml."""
    kept = state.get("config")
    if kept is None:
        return load_train_config(None, base=stored)
    problem = "it is no small mapping" if not isinstance(kept, dict) or not small_plain_data(kept) else ""
    if not problem:
        try:
            return load_train_config(None, base=kept)
        except ConfigError as err:
            problem = str(err)[:160]
    raise CheckpointError(
        f"{folder / 'resume.pt'}: its copy of the run's config is not valid ({problem}); the file is "
        "damaged or was not written by bharnet train: start a new run"
    )


FIXED_ON_RESUME = ("model", "preprocess", "data")  # the weights' meaning: classes, inputs, layers


def mirror_map(config: Mapping[str, Any], class_names: Sequence[str]) -> np.ndarray:
    """The training mirror's class map (``mirror_label_map``); ConfigError for ``augment.mirror_pairs``
    or ``mirror_never`` naming classes the data lacks."""
    augment = AugmentConfig.from_dict(config["augment"])
    try:
        return mirror_label_map(list(class_names), augment.mirror_pairs, augment.mirror_never)
    except ValueError as err:
        raise ConfigError(f"{err} ({', '.join(class_names)})"[:400]) from None


def check_loadable_size(model_config: Mapping[str, Any]) -> None:
    """ConfigError for a model no checkpoint may hold (``checkpoint.meta_model``): no command could
    load what training wrote, after hours of it or memory the machine may not have."""
    try:
        meta_model(model_config)
    except CheckpointError as err:
        raise ConfigError(
            f"the model config: {err}; make it smaller (model.overrides.backbone.base_channels or "
            "backbone.stages, input.frames, input.num_persons)"
        ) from None


def check_resumable(stored: Mapping[str, Any], config: Mapping[str, Any]) -> None:
    """ConfigError for an override of ``--resume`` that would change what the trained weights mean
    (the classes, the inputs or the network): resumed weights would silently mean something else."""

    def meaning(section: Mapping[str, Any]) -> Any:  # test-time mirroring only changes the scoring
        return plain({k: v for k, v in section.items() if k != "test_mirror"})

    changed = [key for key in FIXED_ON_RESUME if meaning(stored[key]) != meaning(config[key])]
    if stored.get("seed") != config["seed"] and config["data"].get("val_fraction"):
        changed.append("seed (it draws data.val_fraction's validation samples, some trained on)")
    if changed:
        raise ConfigError(
            f"--resume continues the run as it was: its {', '.join(changed)} settings cannot change, "
            "by an override or by an edit of its config.yaml (the weights were trained for them); "
            "undo the change, or start a new run, e.g. with model.init from it"
        )


def train(
    config: dict[str, Any],
    out: str | Path | None = None,
    resume: str | Path | None = None,
    overrides: Iterable[str] = (),
) -> Path:
    """Run (or continue) training; returns the run folder.

    With ``resume`` the run folder's stored config is used (``overrides`` still apply, e.g.
    ``epochs=120`` to train longer) and training continues after the last finished epoch.
    """
    state = None
    if resume is not None:
        folder, stored, state = load_resume(resume)
        config = load_train_config(None, overrides, base=stored)
        check_resumable(trained_config(folder, state, stored), config)
        out = folder
    config = absolute_paths(config)
    env = setup_distributed(config["device"])
    seed_everything(config["seed"], config["deterministic"])  # same on every rank: identical init
    folder = run_folder(config, out)
    if state is None and (folder / "last.pt").exists():
        raise ConfigError(
            f"{folder} already holds a run; continue it with --resume {folder} or pick another --out"
        )
    run = build_run(config, folder, env, state)
    made = False
    try:
        if env.main:
            made = make_run_folder(folder, default=out is None)
            write_config(run)
            for note in run.notes:
                print(note, flush=True)
        run_epochs(run)
    except BaseException:
        take_back_unfinished(run, made)
        raise
    if env.world > 1:
        dist.destroy_process_group()
    return folder
