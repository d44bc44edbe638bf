"""Checkpoints as plain data: saved with ``torch.save``, loaded only with ``weights_only=True``.

A checkpoint is one dict of tensors, strings, numbers, lists and dicts::

    {"format_version": 2, "model_config": {...resolved YAML...}, "state_dict": {...},
     "class_names": [...], "hand_intensive": [...] or None, "preprocess": {...},
     "epoch": int, "metrics": {name: float}}

Loading never unpickles arbitrary objects (``torch.load(weights_only=True)``), so opening a file
from elsewhere cannot run code. The model is rebuilt from ``model_config`` and the weights loaded
strictly, so a checkpoint is self-contained: no YAML file is needed next to it.

A file is hostile until checked: before any of its weights are read or a model is allocated, every
tensor must be a plain one whose elements its storage holds (an expanded view of a few bytes can
claim terabytes), and the model its config describes is first built on the ``meta`` device (shapes
only, no memory) to bound its size (:data:`MAX_PARAMETERS`) and to require the weights' names and
shapes to be exactly that model's (:func:`check_weights_fit`). A 2 kB file can otherwise describe a
model of tens of GiB, which every consumer would allocate before ``load_state_dict`` looked.

Format 2 changed the layout of block 0's graph convolution (``backbone.SpatialGraphConv``):
format 1 stored per-subset projections ``graph_conv.project`` (weight ``(S*C_out, C_in, 1, 1)``,
bias ``(S*C_out,)``); format 2 stores the same numbers as ``graph_conv.mix`` (weight
``(C_out, S*C_in, 1, 1)``) and ``graph_conv.subset_bias`` ``(S, C_out)``. Loading a format-1 file
rearranges them (:func:`upgrade_state_dict`), which is exact: the outputs match the old layout's
to float rounding.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import pickle
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bharnet_ros.core.labels import plain_label
from bharnet_ros.core.layouts import get_layout
from bharnet_ros.core.preprocess import PreprocessConfig
from bharnet_ros.model.attention import CrossAttention, default_num_features
from bharnet_ros.model.bharnet import BHaRNetModel, build_model
from bharnet_ros.model.config import (
    MAX_PARAMETERS,
    NUM_HANDS,
    ModelConfig,
    config_from_dict,
    config_to_dict,
)
from bharnet_ros.model.graph import NUM_SUBSETS

FORMAT_VERSION = 2  # 2: block 0 aggregates before projecting (graph_conv.mix, graph_conv.subset_bias)
BLOCK0_PROJECTION = "graph_conv.project."
REQUIRED_KEYS = ("format_version", "model_config", "state_dict", "class_names", "preprocess")
# Values of one sample's largest activation (largest_activation): the paper's BHaRNet-E has about
# 1.7 million; 100 million floats are 400 MB per sample, already more than a batch of them fits.
MOST_ACTIVATION = 100_000_000


class CheckpointError(ValueError):
    """A checkpoint file that is missing, unreadable, unsafe, malformed or too new."""


@dataclass
class Checkpoint:
    """The contents of one checkpoint file, as plain data plus a state_dict."""

    model_config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    class_names: list[str]
    preprocess: dict[str, Any]
    hand_intensive: list[str] | None = None
    epoch: int = 0
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def config(self) -> ModelConfig:
        """The validated model config."""
        return config_from_dict(self.model_config)

    @property
    def preprocess_config(self) -> PreprocessConfig:
        return PreprocessConfig.from_dict(self.preprocess)

    def build_model(self) -> BHaRNetModel:
        """The model of ``model_config`` with these weights, in eval mode.

        Raises CheckpointError when the config is invalid, too large, or the weights do not fit it
        (a file edited or assembled from two runs), found on a meta-device model before any memory
        is allocated.
        """
        check_weights_fit(self.model_config, self.state_dict)
        try:
            model = build_model(self.config)
            model.load_state_dict(self.state_dict)
        except (RuntimeError, ValueError, KeyError, TypeError) as err:
            raise CheckpointError(
                f"the checkpoint's weights do not fit its model config ({_first_detail(err)}); "
                "use a checkpoint written by bharnet train"
            ) from None
        return model.eval()

    def with_test_mirror(self, class_map: Sequence[int]) -> Checkpoint:
        """This checkpoint scored with test-time mirroring (``class_map``, see ``ModelConfig``) or
        without it (empty), whatever it was trained with: the weights are the same either way."""
        return dataclasses.replace(self, model_config={**self.model_config, "test_mirror": list(class_map)})

    def to_dict(self) -> dict[str, Any]:
        """The on-disk dict (see the module docstring)."""
        return {"format_version": FORMAT_VERSION, **dataclasses.asdict(self)}


def plain(value: Any) -> Any:
    """Tuples to lists, recursively, so configs are JSON-like plain data."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def make_checkpoint(
    model: BHaRNetModel,
    class_names: list[str],
    preprocess: PreprocessConfig,
    hand_intensive: list[str] | None = None,
    epoch: int = 0,
    metrics: Mapping[str, float] | None = None,
) -> Checkpoint:
    """A checkpoint of ``model`` (its config, a CPU copy of its weights) and its metadata."""
    if len(class_names) != model.config.num_classes:
        raise ValueError(f"{len(class_names)} class names for a {model.config.num_classes}-class model")
    return Checkpoint(
        model_config=plain(config_to_dict(model.config)),
        state_dict={k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        class_names=list(class_names),
        preprocess=preprocess.to_dict(),
        hand_intensive=None if hand_intensive is None else list(hand_intensive),
        epoch=int(epoch),
        metrics={k: float(v) for k, v in (metrics or {}).items()},
    )


def save_checkpoint(checkpoint: Checkpoint, path: str | Path) -> Path:
    """Write ``checkpoint`` to ``path`` (parents created), whole or not at all: it is written
    beside as ``<name>.partial`` and renamed, so a run killed while saving keeps its last good file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        torch.save(checkpoint.to_dict(), partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint safely; raises :class:`CheckpointError` saying what is wrong and what to do.

    The checks run cheapest and safest first: types, then the tensors' storage (before any value is
    read), the format upgrade, the weights against a meta-device model of the config (before
    anything of the model's size is allocated), and last the weights' values.
    """
    data = read_plain_data(path)
    version = checked_version(data.get("format_version"), path)
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {missing}; re-save it with save_checkpoint")
    check_fields(data, path)
    check_storage(data["state_dict"], path)
    state_dict = upgraded_weights(data["state_dict"], version, path)
    try:
        check_weights_fit(data["model_config"], state_dict)
    except CheckpointError as err:
        raise CheckpointError(f"{path}: {err}") from None
    config = config_from_dict(data["model_config"])  # valid: check_weights_fit built it
    mismatch = preprocess_mismatch(config, PreprocessConfig.from_dict(data["preprocess"]))
    if mismatch:
        raise CheckpointError(
            f"{path}: its preprocess settings do not match its model ({mismatch}); the file was edited"
        )
    classes = config.num_classes
    if len(data["class_names"]) != classes:
        raise CheckpointError(
            f"{path}: {len(data['class_names'])} class names for a {classes}-class model; the file is "
            "damaged or was edited, use one written by bharnet train"
        )
    check_finite(state_dict, path)
    return Checkpoint(
        model_config=data["model_config"],
        state_dict=state_dict,
        class_names=list(data["class_names"]),
        preprocess=data["preprocess"],
        hand_intensive=data.get("hand_intensive"),
        epoch=int(data.get("epoch", 0)),
        metrics=dict(data.get("metrics") or {}),
    )


def preprocess_mismatch(config: ModelConfig, preprocess: PreprocessConfig) -> str:
    """How ``preprocess`` would make other tensors than the model takes, in words ("" if it fits)."""
    model = config.input
    pairs = {
        "body_layout": (preprocess.body_layout, model.body_layout),
        "frames": (preprocess.frames, model.frames),
        "num_persons": (preprocess.num_persons, model.num_persons),
        "channels": (preprocess.channels, model.channels),
    }
    return ", ".join(f"{k}: preprocess {a} vs model {b}" for k, (a, b) in pairs.items() if a != b)


def checked_version(version: Any, path: str | Path) -> int:
    """The file's ``format_version``: a whole number from 1 to :data:`FORMAT_VERSION`.

    ``True`` is an ``int`` to Python but no format; 0 or below names none either, and a number of
    hundreds of digits is described rather than printed, so the message stays one short line.
    """
    if type(version) is not int or version < 1:
        raise CheckpointError(
            f"{path}: not a bharnet checkpoint (its format_version is no whole number from 1 to "
            f"{FORMAT_VERSION})"
        )
    if version > FORMAT_VERSION:
        shown = version if version < 10**9 else "(a number too long to show)"
        raise CheckpointError(
            f"{path}: checkpoint format {shown} is newer than this code ({FORMAT_VERSION}); "
            "update bharnet_ros"
        )
    return version


def check_storage(state: Mapping[str, torch.Tensor], path: str | Path) -> None:
    """CheckpointError naming the first tensor that is not a plain CPU tensor backed by its own
    elements, checked from its metadata alone: an expanded (stride-0) or overlapping view stores a
    few bytes yet claims up to terabytes, which any look at its values (the NaN check, the format
    upgrade, ``load_state_dict``) would allocate."""
    for name, tensor in state.items():
        problem = storage_problem(tensor)
        if problem:
            raise CheckpointError(
                f"{path}: its weight {_shown_name(name)} {problem}; bharnet never writes such a tensor, "
                "so the file is damaged or hostile"
            )


def storage_problem(tensor: torch.Tensor) -> str | None:
    """Why ``tensor`` is not one bharnet writes (dense, CPU, unquantised, each element stored once)."""
    if tensor.layout is not torch.strided or tensor.is_quantized or tensor.device.type != "cpu":
        return f"is a {tensor.layout} {tensor.dtype} tensor on {tensor.device.type}, not a plain CPU tensor"
    if any(stride == 0 and size > 1 for size, stride in zip(tensor.shape, tensor.stride(), strict=True)):
        return (
            f"repeats one stored value along an axis (shape {tuple(tensor.shape)}, stride {tensor.stride()})"
        )
    if tensor.numel() * tensor.element_size() > tensor.untyped_storage().nbytes():
        return f"claims {tensor.numel()} elements, more than its storage holds"
    return None


def upgraded_weights(
    state: Mapping[str, torch.Tensor], version: int, path: str | Path
) -> dict[str, torch.Tensor]:
    """:func:`upgrade_state_dict`, with a malformed old tensor (a wrong shape) a CheckpointError."""
    try:
        return upgrade_state_dict(state, version)
    except Exception as err:  # reshape and indexing fail in several ways on a wrong shape
        raise CheckpointError(
            f"{path}: its format-{version} weights cannot be converted to format {FORMAT_VERSION} "
            f"({_first_detail(err)}); the file is damaged, use an intact copy"
        ) from None


def check_finite(state: Mapping[str, torch.Tensor], path: str | Path) -> None:
    """CheckpointError when weights hold NaN or infinities (or cannot even be checked for them)."""
    try:
        broken = non_finite_weights(state)
    except Exception as err:  # a dtype isfinite does not support
        raise CheckpointError(
            f"{path}: its weights cannot be checked for NaN ({_first_detail(err)}); the file is damaged"
        ) from None
    if broken:
        raise CheckpointError(
            f"{path}: {len(broken)} of its weight tensors (e.g. {broken[0]}) hold NaN or "
            "infinite values (or a negative variance), so every prediction would be NaN: the training "
            "that wrote it diverged; use an earlier checkpoint or train again (lower optim.lr, set "
            "optim.grad_clip)"
        )


def meta_model(model_config: Mapping[str, Any]) -> nn.Module:
    """The model ``model_config`` describes, built on the ``meta`` device, which records shapes and
    allocates nothing, so a config whose width times depth is enormous costs only the construction.
    CheckpointError (no path) if it describes no model, one of more parameters and buffers than
    any checkpoint may have (:data:`MAX_PARAMETERS`), or one whose activations would not fit in
    memory (:data:`MOST_ACTIVATION`)."""
    try:
        config = config_from_dict(model_config)
        with torch.device("meta"):
            model = build_model(config)
    except Exception as err:  # config validation and module construction fail in many ways
        raise CheckpointError(f"it describes no model ({_first_detail(err)})") from None
    size = sum(t.numel() for t in itertools.chain(model.parameters(), model.buffers()))
    if size > MAX_PARAMETERS:
        raise CheckpointError(
            f"it describes a model of {size:,} parameters, more than the {MAX_PARAMETERS:,} a checkpoint "
            "may have (BHaRNet-E has about 3 million)"
        )
    attends = any(isinstance(layer, CrossAttention) for layer in model.modules())
    activation = largest_activation(config, attends)
    if activation > MOST_ACTIVATION:
        raise CheckpointError(
            f"its largest activation has about {activation:,} values per sample (channels x frames x "
            f"joints x persons), more than the {MOST_ACTIVATION:,} a model may have (the paper's "
            "BHaRNet-E about 2 million): its first batch would ask for more memory than a machine has"
        )
    return model


def largest_activation(config: ModelConfig, attends: bool = True) -> int:
    """About how many values one sample's largest activation holds: the widest block over every
    frame, vertex and person (or hand), and, where the model ``attends``, the attention's random
    features (or, exact, its token-by-token scores) over the tokens left after the temporal strides.

    The parameter count does not bound it: a model of few, wide parameters over 10 000 frames of
    16 persons is a small file whose first forward pass asks for hundreds of GB.
    """
    shape, backbone, attention = config.input, config.backbone, config.attention
    places = get_layout(shape.body_layout).num_joints * max(shape.num_persons, NUM_HANDS)
    widest = backbone.base_channels * max(multiplier for multiplier, _ in backbone.stages)
    blocks = widest * shape.frames * places
    if not attends:
        return blocks
    tokens = max(1, shape.frames // math.prod(stride for _, stride in backbone.stages)) * places
    features = attention.num_features or default_num_features(attention.dim_head)
    per_token = tokens if attention.kind == "softmax" else features
    return max(blocks, attention.heads * tokens * per_token)


def expected_tensors(model_config: Mapping[str, Any]) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """The state_dict names, shapes and dtypes of the model ``model_config`` describes
    (:func:`meta_model`); CheckpointError (no path) for a config no checkpoint of bharnet train has."""
    try:
        model = meta_model(model_config)
    except CheckpointError as err:
        raise CheckpointError(f"its model_config: {err}; it was not written by bharnet train") from None
    return {name: (tuple(value.shape), value.dtype) for name, value in model.state_dict().items()}


def check_weights_fit(model_config: Mapping[str, Any], state: Mapping[str, torch.Tensor]) -> None:
    """CheckpointError (no path) unless ``state`` has exactly the names, shapes and dtypes of the
    model of ``model_config``; found on a meta-device model (:func:`expected_tensors`), before
    anything of the model's size is allocated. A float64 or complex tensor would be cast on load,
    silently: 1e300 becomes infinite, an imaginary NaN vanishes."""
    mismatch = first_mismatch(expected_tensors(model_config), state)
    if mismatch:
        raise CheckpointError(
            f"the checkpoint's weights do not fit its model config ({mismatch}); "
            "use a checkpoint written by bharnet train"
        )


def first_mismatch(
    expected: Mapping[str, tuple[tuple[int, ...], torch.dtype]], state: Mapping[str, torch.Tensor]
) -> str | None:
    """The first difference between the model's names, shapes and dtypes and ``state``'s, in
    words; None if none."""
    if not state:
        return "it holds no weights"
    for name, (shape, dtype) in expected.items():
        if name not in state:
            return f"{name} is missing"
        if tuple(state[name].shape) != shape:
            return f"{name} has shape {tuple(state[name].shape)}, the config makes {shape}"
        if state[name].dtype != dtype:
            return f"{name} holds {state[name].dtype} values, the model {dtype}"
    extra = next((name for name in state if name not in expected), None)
    return None if extra is None else f"{_shown_name(extra)} is not in the model"


def _shown_name(name: str, limit: int = 80) -> str:
    """A weight name from the file as one short line (it may hold newlines or be megabytes long)."""
    shown = repr(name[: limit + 1])
    return shown if len(name) <= limit else shown[:-1] + "...'"


def check_fields(data: Mapping[str, Any], path: str | Path) -> None:
    """CheckpointError naming the first field whose type is not what save_checkpoint writes, so a
    hand-made or damaged file is refused at load, not as a TypeError deep in eval or export."""
    names, hand, metrics = data["class_names"], data.get("hand_intensive"), data.get("metrics")
    epoch = data.get("epoch", 0)
    valid = {
        "model_config": isinstance(data["model_config"], dict) and small_plain_data(data["model_config"]),
        "state_dict": isinstance(data["state_dict"], dict)
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in data["state_dict"].items()),
        "class_names": _distinct_texts(names) and len(names) > 0,
        "preprocess": isinstance(data["preprocess"], dict)
        and small_plain_data(data["preprocess"])
        and _preprocess_ok(data["preprocess"]),
        "hand_intensive": hand is None
        or (_distinct_texts(hand) and _distinct_texts(names) and set(hand) <= set(names)),  # names of classes
        "epoch": isinstance(epoch, int) and not isinstance(epoch, bool),
        "metrics": metrics is None
        or (isinstance(metrics, dict) and all(isinstance(k, str) and _float(v) for k, v in metrics.items())),
    }
    wrong = [field for field, ok in valid.items() if not ok]
    if wrong:
        raise CheckpointError(
            f"{path}: its {wrong[0]} is not what bharnet writes; the file is damaged or was not "
            "written by save_checkpoint"
        )


def _float(value: Any) -> bool:
    """A number that float() takes (not a bool, nor an int of hundreds of digits: a fine-tune's
    checkpoint converts its metrics, and would fail only once trained)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return isinstance(value, float) or abs(value) < 2**1023


def _distinct_texts(values: Any) -> bool:
    """Distinct names an Action and a terminal can carry (``core.labels.plain_label``)."""
    return (
        isinstance(values, list | tuple)
        and all(plain_label(v) for v in values)
        and len(set(values)) == len(values)
    )


MOST_CONFIG_VALUES = 100_000  # a model config has a few hundred; lists of class indices a few more
MOST_TEXT = 10_000  # characters of one text value (names of kinds, layouts, paths)


def small_plain_data(value: Any) -> bool:
    """Whether ``value`` is YAML-like data (dicts, lists, short text, numbers) of at most
    :data:`MOST_CONFIG_VALUES` values, counted as a reader would walk it. A pickle can make one list
    appear ten times in each of nine nested levels: 11 kB that expand to a billion values."""
    pending, seen = [value], 0
    while pending:
        item = pending.pop()
        seen += 1
        if seen > MOST_CONFIG_VALUES:
            return False
        if isinstance(item, dict):
            if not all(isinstance(key, str) for key in item):
                return False
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
        elif isinstance(item, str):
            if len(item) > MOST_TEXT:
                return False
        elif not (item is None or isinstance(item, bool | int | float)):
            return False
    return True


def _preprocess_ok(section: dict) -> bool:
    try:
        PreprocessConfig.from_dict(section)
    except (ValueError, TypeError):
        return False
    return True


def non_finite_weights(state: Mapping[str, Any]) -> list[str]:
    """Names of the tensors of ``state`` that make every prediction NaN: floating-point ones holding
    NaN or infinite values, and BatchNorm variances below 0 (their square root is NaN).

    A training that diverged leaves such weights; a model built from them predicts NaN for every
    input, which argmax silently reads as class 0.
    """
    return [
        name for name, value in state.items() if isinstance(value, torch.Tensor) and _makes_nan(name, value)
    ]


def _makes_nan(name: str, value: torch.Tensor) -> bool:
    """Whether weight ``name`` turns every output NaN: a non-finite value, or a negative variance."""
    if not value.is_floating_point():
        return False
    return not bool(value.isfinite().all()) or (name.endswith("running_var") and bool((value < 0).any()))


def upgrade_state_dict(state: Mapping[str, torch.Tensor], version: int) -> dict[str, torch.Tensor]:
    """The weights of a format-``version`` checkpoint in this code's layout (a rearrangement, no change)."""
    if version >= 2:
        return dict(state)
    upgraded = {}
    for key, value in state.items():
        name = upgraded_name(key)
        upgraded[name] = upgrade_tensor(name, value)
    return upgraded


def upgraded_name(key: str) -> str:
    """The format-2 name of a format-1 parameter."""
    prefix, found, name = key.rpartition(BLOCK0_PROJECTION)
    if not found:
        return key
    return f"{prefix}graph_conv.mix.weight" if name == "weight" else f"{prefix}graph_conv.subset_bias"


def block0_mix_weight(projection: torch.Tensor) -> torch.Tensor:
    """Per-subset projections ``(S*C_out, C_in, 1, 1)`` as one mixing weight ``(C_out, S*C_in, 1, 1)``."""
    c_in = projection.shape[1]
    weights = projection.reshape(NUM_SUBSETS, -1, c_in).transpose(0, 1)
    return weights.reshape(-1, NUM_SUBSETS * c_in, 1, 1).contiguous()


def upgrade_optimizer_state(
    state: dict[str, Any], parameter_names: list[str], version: int
) -> dict[str, Any]:
    """An SGD state_dict of a format-``version`` run with its momentum in this code's layout.

    ``parameter_names`` are the model's parameters in optimiser order; format 2 kept that order.
    """
    if version >= 2:
        return state
    per_parameter = {}
    for index, buffers in state["state"].items():
        name = parameter_names[int(index)]
        per_parameter[index] = {
            key: upgrade_tensor(name, value) if isinstance(value, torch.Tensor) else value
            for key, value in buffers.items()
        }
    return {**state, "state": per_parameter}


def upgrade_tensor(name: str, value: torch.Tensor) -> torch.Tensor:
    """A format-1 tensor (weight or its momentum) shaped for the format-2 parameter ``name``."""
    if name.endswith("graph_conv.mix.weight"):
        return block0_mix_weight(value)
    if name.endswith("graph_conv.subset_bias"):
        return value.reshape(NUM_SUBSETS, -1)
    return value


def read_plain_data(path: str | Path, what: str = "checkpoint") -> dict[str, Any]:
    """A dict saved with ``torch.save``, read with ``weights_only=True``; CheckpointError otherwise.

    Used for checkpoints and for training's ``resume.pt``. The messages are one line each and never
    pass on torch's advice to retry with ``weights_only=False``, which would run the file's code.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{what} {path} is a folder; give the file itself (e.g. {path / 'last.pt'})")
    if path.exists() and not path.is_file():  # /dev/zero would be read for ever, a FIFO wait for a writer
        raise CheckpointError(
            f"{what} {path} is not a regular file (a pipe, socket or device); give the file"
        )
    if not path.is_file():
        raise CheckpointError(f"{what} {path} does not exist; check the path")
    _check_archive(path, what)
    try:
        with warnings.catch_warnings():  # torch's advice to load unsafely is not passed on
            warnings.simplefilter("ignore")
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(_unpickling_problem(path, what, str(err))) from None
    except Exception as err:  # torch's unpickler fails on other files in many ways (IndexError, ...)
        raise CheckpointError(
            f"{path}: not a readable {what} (corrupt or truncated: {type(err).__name__}); use an intact copy"
        ) from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: not a bharnet {what} (top level is {type(data).__name__})")
    return data


def _check_archive(path: Path, what: str) -> None:
    """CheckpointError unless ``path`` is what ``torch.save`` writes: a zip archive of uncompressed
    entries. torch would allocate before any check of ours for the others: a compressed entry
    (3 GB of zeros in 4 MB), or a storage size declared in the legacy format."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise CheckpointError(
            f"{path}: not a readable {what} (corrupt, truncated or not the zip archive torch.save writes); "
            "use an intact copy"
        ) from None
    if not all(member.compress_type == zipfile.ZIP_STORED for member in members):
        raise CheckpointError(
            f"{path}: refused to load: its entries are compressed, which torch.save never does (a few MB "
            f"can unpack to gigabytes); only load {what} files written by bharnet"
        )
    if sum(member.file_size for member in members) > path.stat().st_size:
        raise CheckpointError(
            f"{path}: refused to load: its entries claim more bytes than the file holds (they overlap); "
            f"only load {what} files written by bharnet"
        )


def _unpickling_problem(path: Path, what: str, text: str) -> str:
    """Why torch's safe unpickler stopped: a forbidden object (torch names its GLOBAL) or damage."""
    if "global" in text.lower():
        return (
            f"{path}: refused to load: it holds pickled objects other than plain data and tensors, "
            f"which could run code; only load {what} files written by bharnet"
        )
    return f"{path}: not a readable {what} (corrupt, truncated or not from torch.save); use an intact copy"


def _first_detail(err: Exception, limit: int = 160) -> str:
    """The first specific line of a (multi-line) torch error, shortened for a one-line message."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    detail = (lines[1] if len(lines) > 1 else lines[0]) if lines else type(err).__name__
    return detail if len(detail) <= limit else detail[: limit - 3] + "..."
