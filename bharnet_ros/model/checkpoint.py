"""Checkpoints as plain data: saved with ``torch.save``, loaded only with ``weights_only=True``.

A checkpoint is one dict of tensors, strings, numbers, lists and dicts::

    {"format_version": 2, "model_config": {...resolved YAML...}, "state_dict": {...},
     "class_names": [...], "hand_intensive": [...] or None, "preprocess": {...},
     "epoch": int, "metrics": {name: float}}

Loading never unpickles arbitrary objects (``torch.load(weights_only=True)``), so opening a file
from elsewhere cannot run code. The model is rebuilt from ``model_config`` and the weights loaded
strictly, so a checkpoint is self-contained: no YAML file is needed next to it.

Format 2 changed the layout of block 0's graph convolution (``backbone.SpatialGraphConv``):
format 1 stored per-subset projections ``graph_conv.project`` (weight ``(S*C_out, C_in, 1, 1)``,
bias ``(S*C_out,)``); format 2 stores the same numbers as ``graph_conv.mix`` (weight
``(C_out, S*C_in, 1, 1)``) and ``graph_conv.subset_bias`` ``(S, C_out)``. Loading a format-1 file
rearranges them (:func:`upgrade_state_dict`), which is exact: the outputs match the old layout's
to float rounding.
"""

from __future__ import annotations

import dataclasses
import pickle
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from bharnet_ros.core.preprocess import PreprocessConfig
from bharnet_ros.model.bharnet import BHaRNetModel, build_model
from bharnet_ros.model.config import ModelConfig, config_from_dict, config_to_dict
from bharnet_ros.model.graph import NUM_SUBSETS

FORMAT_VERSION = 2  # 2: block 0 aggregates before projecting (graph_conv.mix, graph_conv.subset_bias)
BLOCK0_PROJECTION = "graph_conv.project."
REQUIRED_KEYS = ("format_version", "model_config", "state_dict", "class_names", "preprocess")


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

        Raises CheckpointError when the config is invalid or the weights do not fit it (a file
        edited or assembled from two runs).
        """
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
    """Write ``checkpoint`` to ``path`` (parents created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint.to_dict(), path)
    return path


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint safely; raises :class:`CheckpointError` saying what is wrong and what to do."""
    data = read_plain_data(path)
    version = data.get("format_version")
    if not isinstance(version, int):
        raise CheckpointError(f"{path}: not a bharnet checkpoint (no integer format_version)")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {version} is newer than this code ({FORMAT_VERSION}); "
            "update bharnet_ros"
        )
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {missing}; re-save it with save_checkpoint")
    check_fields(data, path)
    state_dict = upgrade_state_dict(data["state_dict"], version)
    broken = non_finite_weights(state_dict)
    if broken:
        raise CheckpointError(
            f"{path}: {len(broken)} of its weight tensors (e.g. {broken[0]}) hold NaN or infinite values, so "
            "every prediction would be NaN: the training that wrote it diverged; use an earlier "
            "checkpoint or train again (lower optim.lr, set optim.grad_clip)"
        )
    return Checkpoint(
        model_config=data["model_config"],
        state_dict=state_dict,
        class_names=list(data["class_names"]),
        preprocess=data["preprocess"],
        hand_intensive=data.get("hand_intensive"),
        epoch=int(data.get("epoch", 0)),
        metrics=dict(data.get("metrics") or {}),
    )


def check_fields(data: Mapping[str, Any], path: str | Path) -> None:
    """CheckpointError naming the first field whose type is not what save_checkpoint writes, so a
    hand-made or damaged file is refused at load, not as a TypeError deep in eval or export."""
    names, hand, metrics = data["class_names"], data.get("hand_intensive"), data.get("metrics")
    epoch = data.get("epoch", 0)
    valid = {
        "model_config": isinstance(data["model_config"], dict),
        "state_dict": isinstance(data["state_dict"], dict)
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in data["state_dict"].items()),
        "class_names": _distinct_texts(names) and len(names) > 0,
        "preprocess": isinstance(data["preprocess"], dict) and _preprocess_ok(data["preprocess"]),
        "hand_intensive": hand is None or _distinct_texts(hand),
        "epoch": isinstance(epoch, int) and not isinstance(epoch, bool),
        "metrics": metrics is None
        or (isinstance(metrics, dict) and all(isinstance(v, int | float) for v in metrics.values())),
    }
    wrong = [field for field, ok in valid.items() if not ok]
    if wrong:
        raise CheckpointError(
            f"{path}: its {wrong[0]} is not what bharnet writes; the file is damaged or was not "
            "written by save_checkpoint"
        )


def _distinct_texts(values: Any) -> bool:
    return (
        isinstance(values, list | tuple)
        and all(isinstance(v, str) and v for v in values)
        and len(set(values)) == len(values)
    )


def _preprocess_ok(section: dict) -> bool:
    try:
        PreprocessConfig.from_dict(section)
    except (ValueError, TypeError):
        return False
    return True


def non_finite_weights(state: Mapping[str, Any]) -> list[str]:
    """Names of the floating-point tensors of ``state`` that hold NaN or infinite values.

    A training that diverged leaves such weights; a model built from them predicts NaN for every
    input, which argmax silently reads as class 0.
    """
    tensors = {name: value for name, value in state.items() if isinstance(value, torch.Tensor)}
    return [
        name for name, value in tensors.items() if value.is_floating_point() and not value.isfinite().all()
    ]


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
    if not path.is_file():
        raise CheckpointError(f"{what} {path} does not exist; check the path")
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
