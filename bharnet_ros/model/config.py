"""Model configuration: typed dataclasses read from the YAML files in ``config/model/``.

One YAML file describes one variant. Unknown keys are errors (a typo must not silently fall back
to a default). ``load_model_config(path, overrides)`` deep-merges overrides first, which is how
tests and experiments shrink widths or switch options without new files.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bharnet_ros.core.text_files import MOST_CONFIG_BYTES, read_text_file
from bharnet_ros.core.yaml12 import load_yaml
from bharnet_ros.model.backbone import DEFAULT_STAGES

VARIANTS = (
    "body_expert",
    "hand_expert",
    "score_fusion",
    "bharnet_p",
    "bharnet_e",
    "bharnet_e_expert_only",
)
PAM_AXES = ("instance", "time", "vertex")
INTERACTIONS = ("full", "pam")
NUM_HANDS = 2
MAX_WIDTH = 4096  # channels of the widest layer; the paper's full model has 512
# Parameters and buffers of a model a checkpoint may describe. The widths and the depth are capped
# one by one below, but their product is not (4096 channels x 64 blocks is ~11 G parameters, ~47 GiB),
# so checkpoint loading counts a meta-device model's parameters against this (model/checkpoint.py).
# The largest shipped config (bharnet_p) has ~4.7 M, the paper's BHaRNet-E ~2.9 M.
MAX_PARAMETERS = 50_000_000
# Classes of one model: Kinetics has 700; an evaluation keeps a K x K confusion matrix and plots it.
MOST_CLASSES = 4096


@dataclasses.dataclass(frozen=True)
class InputConfig:
    """Model input: channels, nominal window length and the body layout (hands pad to its V)."""

    channels: int = 3
    frames: int = 64
    body_layout: str = "ntu25"
    num_persons: int = 2
    # Each joint's frame-to-frame velocity as extra channels, computed inside the model (so the
    # preprocessing, the augmentation and the ONNX inputs stay those of joint positions): motions
    # that differ mainly in direction are then visible to the first layer.
    motion: bool = False


@dataclasses.dataclass(frozen=True)
class BackboneSection:
    """Per-stream backbone shape: base width and ``(multiplier, temporal stride)`` per block."""

    base_channels: int = 64
    stages: tuple[tuple[int, int], ...] = DEFAULT_STAGES
    dropout: float = 0.0


@dataclasses.dataclass(frozen=True)
class AttentionConfig:
    """Cross-attention: ``favor`` (Performer FAVOR+) or exact ``softmax``; widths per head."""

    kind: str = "favor"
    heads: int = 8
    dim_head: int = 64
    num_features: int | None = None  # None: floor(dim_head * ln(dim_head))
    redraw_interval: int = 1000  # training forward calls between redraws; 0 = fixed


@dataclasses.dataclass(frozen=True)
class PamConfig:
    """Pooling Attention Module: the axes kept as tokens (one attention per axis and direction)."""

    keep_axes: tuple[str, ...] = PAM_AXES
    residual: bool = True


@dataclasses.dataclass(frozen=True)
class ExpertizedConfig:
    """BHaRNet-E: the blocks from ``split_block`` on are duplicated per branch (the last one by
    default), and how the interactive branches exchange."""

    split_block: int = 9
    interaction: str = "full"  # full: all (M, T', V) tokens; pam: pooled tokens


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """Weights of the individual and complementary terms and label smoothing."""

    complementary: bool = True
    individual_weight: float = 1.0
    complementary_weight: float = 1.0
    label_smoothing: float = 0.0
    weight_hand_by_reliability: bool = True
    # BHaRNet-E: a cross-entropy on each expertized branch as well (the paper has 0). The light
    # expert-only export uses those branches alone; trained only through the complementary sum
    # they learn to complement the interactive ones and are weak alone.
    expert_weight: float = 0.0


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Everything needed to build one model variant and its loss."""

    variant: str
    num_classes: int = 120
    fusion: str = "mean"  # mean | noisy_or
    input: InputConfig = dataclasses.field(default_factory=InputConfig)
    backbone: BackboneSection = dataclasses.field(default_factory=BackboneSection)
    attention: AttentionConfig = dataclasses.field(default_factory=AttentionConfig)
    pam: PamConfig = dataclasses.field(default_factory=PamConfig)
    expertized: ExpertizedConfig = dataclasses.field(default_factory=ExpertizedConfig)
    loss: LossConfig = dataclasses.field(default_factory=LossConfig)
    # Test-time mirroring: per class, the class its mirror image is (-1: none in the vocabulary).
    # Non-empty: in evaluation mode the logits are averaged over the input and its mirror image
    # (``model/mirror.py``); training is unchanged. Empty: off.
    test_mirror: tuple[int, ...] = ()

    def validate(self) -> None:
        """Raise ``ValueError`` for options that name nothing or cannot work together."""
        checks = [
            (self.variant in VARIANTS, f"variant {self.variant!r} not in {VARIANTS}"),
            (self.fusion in ("mean", "noisy_or"), f"fusion {self.fusion!r} not in ('mean', 'noisy_or')"),
            (set(self.pam.keep_axes) <= set(PAM_AXES), f"pam.keep_axes must come from {PAM_AXES}"),
            (len(self.pam.keep_axes) > 0, "pam.keep_axes is empty"),
            (
                len(set(self.pam.keep_axes)) == len(self.pam.keep_axes),
                "pam.keep_axes names an axis twice (each kept axis has one attention)",
            ),
            (self.expertized.interaction in INTERACTIONS, f"interaction not in {INTERACTIONS}"),
            (self.attention.kind in ("favor", "softmax"), "attention.kind must be favor or softmax"),
            *self._size_checks(),
            (
                not self.variant.startswith("bharnet_e")
                or 0 < self.expertized.split_block <= len(self.backbone.stages),
                f"expertized.split_block must be in 1..{len(self.backbone.stages)}",
            ),
            (isinstance(self.input.motion, bool), "input.motion must be true or false"),
            (
                not self.test_mirror or _is_class_map(self.test_mirror, self.num_classes),
                f"test_mirror must give one class in -1..{self.num_classes - 1} per class, or be empty",
            ),
            (
                min(self.loss.individual_weight, self.loss.complementary_weight, self.loss.expert_weight)
                >= 0,
                "loss weights must not be negative",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"model config: {message}")

    def _size_checks(self) -> list[tuple[bool, str]]:
        """Every size within what a model can be built with: 0 or -1 fails deep inside torch, and
        a huge width asks for more memory than any machine has, after the data is loaded. Each
        size is bounded on its own; their product (the model's size) is bounded by
        :data:`MAX_PARAMETERS` where a checkpoint is loaded."""
        sizes = [
            ("num_classes", self.num_classes, MOST_CLASSES),
            ("input.channels", self.input.channels, 64),
            ("input.frames", self.input.frames, 10_000),
            ("input.num_persons", self.input.num_persons, 16),
            ("backbone.base_channels", self.backbone.base_channels, 4096),
            ("attention.heads", self.attention.heads, 64),
            ("attention.dim_head", self.attention.dim_head, 1024),
        ]
        if self.attention.num_features is not None:  # None: the default, d ln d
            sizes.append(("attention.num_features", self.attention.num_features, 65_536))
        checks = [  # a whole number: True passed as 1, and 2.0 failed deep inside torch
            (type(value) is int and 1 <= value <= most, f"{name} must be 1..{most}, not {value!r}")
            for name, value, most in sizes
        ]
        stages_ok = _are_stages(self.backbone.stages)
        widest = self._widest() if stages_ok else 0
        return [
            *checks,
            (stages_ok, "backbone.stages must be 1..64 blocks of [multiplier 1..64, temporal stride 1..4]"),
            (
                widest <= MAX_WIDTH,
                f"the widest layer must be at most {MAX_WIDTH} channels (base_channels x the largest "
                f"stage multiplier, and heads x dim_head), not {widest}",
            ),
            (0 <= self.backbone.dropout < 1, "backbone.dropout must be in [0, 1)"),
            (0 <= self.loss.label_smoothing < 1, "loss.label_smoothing must be in [0, 1)"),
            (self.attention.redraw_interval >= 0, "attention.redraw_interval must not be negative"),
        ]

    def _widest(self) -> int:
        """Channels of the widest block or attention projection (weights grow with its square)."""
        blocks = self.backbone.base_channels * max(m for m, _ in self.backbone.stages)
        return max(blocks, self.attention.heads * self.attention.dim_head)


def _are_stages(stages: Any) -> bool:
    """1 to 64 blocks, each a (channel multiplier 1..64, temporal stride 1..4) pair."""
    pairs = all(isinstance(s, tuple | list) and len(s) == 2 for s in stages)
    whole = pairs and all(type(m) is int and type(t) is int for m, t in stages)  # not True, not 2.0
    return 1 <= len(stages) <= 64 and whole and all(1 <= m <= 64 and 1 <= t <= 4 for m, t in stages)


def _is_class_map(values: Any, num_classes: int) -> bool:
    """One integer class in -1..num_classes-1 per class (bools, floats and text are not classes)."""
    if not isinstance(values, tuple | list) or len(values) != num_classes:
        return False
    return all(type(c) is int and -1 <= c < num_classes for c in values)


def _from_dict(cls: type, data: Mapping[str, Any], where: str) -> Any:
    """Build dataclass ``cls`` from a mapping, recursing into nested dataclasses."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"model config {where}: unknown keys {sorted(unknown)}; known: {sorted(names)}")
    values = {}
    for name, value in data.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            if value is None:  # its keys commented out: read as defaults, it replaced a set section
                raise ValueError(f"model config {where}.{name} is empty; give its keys or leave it out")
            if not isinstance(value, Mapping):
                raise ValueError(f"model config {where}.{name} must be a mapping, got {value!r}")
            values[name] = _from_dict(hint, value, f"{where}.{name}")
        else:
            _check_scalar(hint, value, f"{where}.{name}")
            values[name] = _as_tuples(value)
    return cls(**values)


def _check_scalar(hint: Any, value: Any, where: str) -> None:
    """A field typed bool, int, float or str must hold one (a bool is no number; NaN is refused)."""
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    elif hint is str:
        ok = isinstance(value, str)
    else:
        return
    if not ok:
        expected = {bool: "true or false", int: "an integer", float: "a finite number", str: "text"}[hint]
        raise ValueError(f"model config {where} must be {expected}, got {value!r}")


def _as_tuples(value: Any) -> Any:
    """YAML lists become (nested) tuples so configs stay hashable and immutable."""
    if isinstance(value, list):
        return tuple(_as_tuples(v) for v in value)
    return value


def deep_merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Deep copy of ``base`` with ``overrides`` applied; nested mappings merge key by key. Nothing
    of either argument is shared with the result, so editing it leaves both as they were."""
    out = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def config_from_dict(data: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> ModelConfig:
    """Validated :class:`ModelConfig` from a mapping (as read from YAML) plus overrides."""
    config = _from_dict(ModelConfig, deep_merge(data, overrides or {}), "root")
    config.validate()
    return config


def load_model_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> ModelConfig:
    """Read a ``config/model/*.yaml`` file."""
    return config_from_dict(load_yaml(read_text_file(path, MOST_CONFIG_BYTES)) or {}, overrides)


def config_to_dict(config: ModelConfig) -> dict[str, Any]:
    """Plain-data form (e.g. to store next to a checkpoint)."""
    return dataclasses.asdict(config)
