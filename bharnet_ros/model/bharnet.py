"""The BHaRNet model family and the factory that builds a variant from its config.

Every model takes ``forward(body, hand, hand_mask=None)`` with body ``(N, C, T, V, M_body)``, hand
``(N, C, T, V, 2)`` (21 landmarks padded to the body's V) and an optional per-frame hand mask
``(N, T)``, and returns a dict of branch logits ``(N, num_classes)`` plus ``"fused"`` (the
prediction). With a hand mask it also returns ``"hand_reliability"`` ``(N,)``. A config with
``test_mirror`` averages those logits over the input and its mirror image in evaluation mode
(``model/mirror.py``); ``forward_once`` is always the single pass. Class attributes tell the
loss which branches exist (``branches``), which get an individual cross-entropy
(``individual_branches``) and which are hand branches (down-weighted by reliability).

Variants (paper Sec. III and Table III):

* ``body_expert`` / ``hand_expert``: one single-stream backbone with a GAP + FC head.
* ``score_fusion``: both experts; fused = average of the two logits (complementary loss target).
* ``bharnet_p``: both backbones, then the Pooling Attention Module in each direction.
* ``bharnet_e``: per modality one backbone whose last blocks are duplicated into an expertized
  branch (GAP -> FC) and an interactive branch (cross-attention with the other modality's
  interactive features -> GAP -> FC); fused = sum of the four branch logits.
* ``bharnet_e_expert_only``: the same weights, only the two expertized branches (no attention).

``fusion: noisy_or`` replaces the average/sum by the reliability-aware Noisy-OR of ``fusion.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bharnet_ros.model.attention import CrossAttention
from bharnet_ros.model.backbone import (
    Backbone,
    BackboneConfig,
    ClassifierHead,
    build_blocks,
    global_pool,
    unfold_instances,
)
from bharnet_ros.model.config import (
    NUM_HANDS,
    AttentionConfig,
    ModelConfig,
    config_from_dict,
    load_model_config,
)
from bharnet_ros.model.feature_distance import FeatureDistance
from bharnet_ros.model.fusion import combine_logits, hand_reliability, noisy_or_logits
from bharnet_ros.model.graph import stream_adjacencies
from bharnet_ros.model.mirror import mirror_averaged

Outputs = dict[str, torch.Tensor]
STREAMS = ("body", "hand")


def backbone_config(config: ModelConfig, stream: str) -> BackboneConfig:
    """Backbone shape of one stream: bodies have ``num_persons`` instances, hands two."""
    instances = config.input.num_persons if stream == "body" else NUM_HANDS
    return BackboneConfig(
        in_channels=config.input.channels,
        motion=config.input.motion,
        base_channels=config.backbone.base_channels,
        stages=config.backbone.stages,
        num_instances=instances,
    )


def make_attention(channels: int, config: AttentionConfig) -> CrossAttention:
    """A cross-attention layer on ``channels``-wide tokens, as configured."""
    return CrossAttention(
        channels,
        heads=config.heads,
        dim_head=config.dim_head,
        kind=config.kind,
        num_features=config.num_features,
        redraw_interval=config.redraw_interval,
    )


def pool_tokens(features: torch.Tensor, keep: str) -> torch.Tensor:
    """Average a feature map ``(N, M, C, T, V)`` over two axes, keeping ``keep`` as tokens ``(N, L, C)``."""
    if keep == "instance":
        return features.mean(dim=(3, 4))
    if keep == "time":
        return features.mean(dim=(1, 4)).transpose(1, 2)
    if keep == "vertex":
        return features.mean(dim=(1, 3)).transpose(1, 2)
    raise ValueError(f"unknown PAM axis {keep!r}")


def all_tokens(features: torch.Tensor) -> torch.Tensor:
    """Every (instance, frame, joint) position of ``(N, M, C, T, V)`` as a token ``(N, M*T*V, C)``."""
    n, _, c, _, _ = features.shape
    return features.permute(0, 1, 3, 4, 2).reshape(n, -1, c)


class PoolingAttention(nn.Module):
    """Pooling Attention Module (paper Eq. 5-9) for one direction (queries from one stream).

    For each kept axis: pool both feature maps over the other two axes, let the query stream's
    tokens attend to the context stream's tokens, optionally add the query tokens back, and pool
    the kept axis. The per-axis vectors are averaged into one ``(N, C)`` feature.
    """

    def __init__(
        self, channels: int, keep_axes: tuple[str, ...], attention: AttentionConfig, residual: bool
    ) -> None:
        super().__init__()
        self.residual = residual
        self.attentions = nn.ModuleDict({axis: make_attention(channels, attention) for axis in keep_axes})

    def forward(self, query_features: torch.Tensor, context_features: torch.Tensor) -> torch.Tensor:
        pooled = []
        for axis, attention in self.attentions.items():
            query = pool_tokens(query_features, axis)
            out = attention(query, pool_tokens(context_features, axis))
            if self.residual:
                out = out + query
            pooled.append(out.mean(dim=1))
        return torch.stack(pooled).mean(dim=0)


class TokenAttention(nn.Module):
    """Interactive-branch exchange of BHaRNet-E: full-resolution cross-attention, then GAP.

    No residual: the paper separates expertized and interactive features instead.
    """

    def __init__(self, channels: int, attention: AttentionConfig) -> None:
        super().__init__()
        self.attention = make_attention(channels, attention)

    def forward(self, query_features: torch.Tensor, context_features: torch.Tensor) -> torch.Tensor:
        out = self.attention(all_tokens(query_features), all_tokens(context_features))
        return out.mean(dim=1)


class BHaRNetModel(nn.Module):
    """Shared fusion logic; subclasses build their branches and list them in the class attributes."""

    branches: tuple[str, ...] = ()
    individual_branches: tuple[str, ...] = ()
    # Branches whose evidence is the hand's: weighted by hand reliability in Noisy-OR fusion and,
    # with loss.weight_hand_by_reliability, in their own loss terms.
    hand_branches: frozenset[str] = frozenset({"hand", "hand_expert"})
    reduction: str = "mean"

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.fusion = config.fusion
        self.adjacency = stream_adjacencies(config.input.body_layout)
        # Fitted on training data after training, never saved with the weights (its buffers are not
        # persistent): with it, ``forward`` also returns each window's ``distance``.
        self.feature_distance: FeatureDistance | None = None

    def make_backbone(self, stream: str, stop: int | None = None) -> Backbone:
        return Backbone(backbone_config(self.config, stream), self.adjacency[stream], stop)

    def make_head(self, channels: int) -> ClassifierHead:
        return ClassifierHead(channels, self.config.num_classes, self.config.backbone.dropout)

    @property
    def feature_channels(self) -> int:
        """Channels of the last block's output."""
        return backbone_config(self.config, "body").out_channels()

    def forward(
        self,
        body: torch.Tensor | None = None,
        hand: torch.Tensor | None = None,
        hand_mask: torch.Tensor | None = None,
    ) -> Outputs:
        """Branch logits and ``fused``; in evaluation, averaged with the mirror image if configured.

        Each variant computes one input in its ``forward_once``.
        """
        distance = self.feature_distance
        if distance is None:
            return self.scored(body, hand, hand_mask)
        with head_inputs(self, distance.branches) as features:
            out = self.scored(body, hand, hand_mask)
        windows = (body if body is not None else hand).shape[0]  # traced: an export of any batch size
        return {**out, "distance": distance([features[name][:windows] for name in distance.branches])}

    def scored(
        self, body: torch.Tensor | None, hand: torch.Tensor | None, hand_mask: torch.Tensor | None
    ) -> Outputs:
        """The logits of ``forward``, without the distance."""
        if self.training or not self.config.test_mirror:
            return self.forward_once(body, hand, hand_mask)
        layout = self.config.input.body_layout
        return mirror_averaged(self.forward_once, body, hand, hand_mask, layout, self.config.test_mirror)

    def fuse(self, logits: Outputs, hand_mask: torch.Tensor | None) -> Outputs:
        """Add ``fused`` (and ``hand_reliability`` when a mask is given) to the branch logits."""
        names = self.branches
        reliability = None if hand_mask is None else hand_reliability(hand_mask)
        if self.fusion == "noisy_or":
            weights = [reliability if name in self.hand_branches else None for name in names]
            fused = noisy_or_logits([logits[name] for name in names], weights)
        else:
            fused = combine_logits([logits[name] for name in names], self.reduction)
        out = {**logits, "fused": fused}
        if reliability is not None:
            out["hand_reliability"] = reliability
        return out


def classifier_heads(model: BHaRNetModel) -> dict[str, tuple[str, nn.Module]]:
    """Each branch's classifier head and its name in the model's state_dict."""
    names = {id(module): name for name, module in model.named_modules()}
    heads = {}
    for branch in model.branches:
        head = model.head if isinstance(model, SingleStreamModel) else getattr(model, f"{branch}_head")
        heads[branch] = (names[id(head)], head)
    return heads


@contextmanager
def head_inputs(model: BHaRNetModel, branches: Sequence[str]) -> Iterator[dict[str, torch.Tensor]]:
    """While open, the dict holds the pooled features the named branches' heads last took."""
    caught: dict[str, torch.Tensor] = {}
    heads = classifier_heads(model)
    hooks = [
        heads[branch][1].register_forward_pre_hook(
            lambda _, args, branch=branch: caught.__setitem__(branch, args[0])
        )
        for branch in branches
    ]
    try:
        yield caught
    finally:
        for hook in hooks:
            hook.remove()


class SingleStreamModel(BHaRNetModel):
    """Body expert or hand expert alone (Table III rows "Body-expert" / "Hand-expert")."""

    def __init__(self, config: ModelConfig, stream: str) -> None:
        super().__init__(config)
        self.stream = stream
        self.branches = (stream,)
        self.individual_branches = (stream,)
        self.backbone = self.make_backbone(stream)
        self.head = self.make_head(self.backbone.out_channels)

    def forward_once(
        self,
        body: torch.Tensor | None = None,
        hand: torch.Tensor | None = None,
        hand_mask: torch.Tensor | None = None,
    ) -> Outputs:
        x = body if self.stream == "body" else hand
        if x is None:
            raise ValueError(f"the {self.stream} expert needs the {self.stream} input")
        return self.fuse({self.stream: self.head(global_pool(self.backbone(x)))}, hand_mask)


class ScoreFusionModel(BHaRNetModel):
    """Body and hand experts fused at score level; trained with the complementary loss."""

    branches = ("body", "hand")
    individual_branches = ("body", "hand")

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.body_backbone = self.make_backbone("body")
        self.hand_backbone = self.make_backbone("hand")
        self.body_head = self.make_head(self.feature_channels)
        self.hand_head = self.make_head(self.feature_channels)

    def forward_once(
        self, body: torch.Tensor, hand: torch.Tensor, hand_mask: torch.Tensor | None = None
    ) -> Outputs:
        logits = {
            "body": self.body_head(global_pool(self.body_backbone(body))),
            "hand": self.hand_head(global_pool(self.hand_backbone(hand))),
        }
        return self.fuse(logits, hand_mask)


class PoolingAttentionModel(BHaRNetModel):
    """BHaRNet-P: dual-stream backbones exchanging features through the Pooling Attention Module."""

    branches = ("body", "hand")
    individual_branches = ("body", "hand")

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        channels = self.feature_channels
        self.body_backbone = self.make_backbone("body")
        self.hand_backbone = self.make_backbone("hand")
        self.body_pam = PoolingAttention(
            channels, config.pam.keep_axes, config.attention, config.pam.residual
        )
        self.hand_pam = PoolingAttention(
            channels, config.pam.keep_axes, config.attention, config.pam.residual
        )
        self.body_head = self.make_head(channels)
        self.hand_head = self.make_head(channels)

    def forward_once(
        self, body: torch.Tensor, hand: torch.Tensor, hand_mask: torch.Tensor | None = None
    ) -> Outputs:
        body_features = self.body_backbone(body)
        hand_features = self.hand_backbone(hand)
        logits = {
            "body": self.body_head(self.body_pam(body_features, hand_features)),
            "hand": self.hand_head(self.hand_pam(hand_features, body_features)),
        }
        return self.fuse(logits, hand_mask)


class ExpertizedModel(BHaRNetModel):
    """BHaRNet-E: per modality a shared trunk (blocks before ``split_block``) and two tails.

    The expertized tail feeds GAP -> FC directly; the interactive tail's features cross-attend to
    the other modality's interactive features before GAP -> FC. Individual losses apply only to
    the interactive branches; the fused logits are the sum of all four.
    """

    branches = ("body_expert", "hand_expert", "body_interactive", "hand_interactive")
    individual_branches = ("body_interactive", "hand_interactive")
    # The body stream's interactive branch attends to the hand tokens and carries their values (its
    # own tokens only weigh them, and there is no residual): a missing hand empties it, not the hand
    # stream's interactive branch, which carries the body's values.
    hand_branches = frozenset({"hand_expert", "body_interactive"})
    reduction = "sum"

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        split, depth = config.expertized.split_block, len(config.backbone.stages)
        channels = self.feature_channels
        for stream in STREAMS:
            shape = backbone_config(config, stream)
            setattr(self, f"{stream}_trunk", self.make_backbone(stream, split))
            for branch in ("expert", "interactive"):
                setattr(
                    self, f"{stream}_{branch}_tail", build_blocks(shape, self.adjacency[stream], split, depth)
                )
                setattr(self, f"{stream}_{branch}_head", self.make_head(channels))
            setattr(self, f"{stream}_exchange", self.make_exchange(channels))

    def make_exchange(self, channels: int) -> nn.Module:
        if self.config.expertized.interaction == "pam":
            pam = self.config.pam
            return PoolingAttention(channels, pam.keep_axes, self.config.attention, pam.residual)
        return TokenAttention(channels, self.config.attention)

    def tail_features(self, stream: str, branch: str, trunk: torch.Tensor) -> torch.Tensor:
        """Run one tail on folded trunk features and unfold instances: ``(N, M, C, T', V)``."""
        tail = getattr(self, f"{stream}_{branch}_tail")
        return unfold_instances(tail(trunk), getattr(self, f"{stream}_trunk").config.num_instances)

    def forward_once(
        self, body: torch.Tensor, hand: torch.Tensor, hand_mask: torch.Tensor | None = None
    ) -> Outputs:
        trunks = {"body": self.body_trunk.forward_folded(body), "hand": self.hand_trunk.forward_folded(hand)}
        logits = {}
        interactive = {}
        for stream in STREAMS:
            expert = self.tail_features(stream, "expert", trunks[stream])
            logits[f"{stream}_expert"] = getattr(self, f"{stream}_expert_head")(global_pool(expert))
            interactive[stream] = self.tail_features(stream, "interactive", trunks[stream])
        for stream, other in zip(STREAMS, reversed(STREAMS), strict=True):
            exchanged = getattr(self, f"{stream}_exchange")(interactive[stream], interactive[other])
            logits[f"{stream}_interactive"] = getattr(self, f"{stream}_interactive_head")(exchanged)
        return self.fuse({name: logits[name] for name in self.branches}, hand_mask)

    def expert_only(self) -> ExpertOnlyModel:
        """The light-weight inference model sharing this model's parameters."""
        return ExpertOnlyModel(self)


class ExpertOnlyModel(BHaRNetModel):
    """Light-weighted inference (paper Sec. III-E): BHaRNet-E's two expertized branches only.

    It holds the same parameter objects as the full model it was made from, under the same
    state_dict names, so a BHaRNet-E checkpoint loads with :meth:`load_full_state_dict` and the
    module exports on its own (no attention, no interactive tails).
    """

    branches = ("body_expert", "hand_expert")
    individual_branches = ("body_expert", "hand_expert")
    reduction = "sum"

    def __init__(self, full: ExpertizedModel) -> None:
        super().__init__(full.config)
        for stream in STREAMS:
            for part in ("trunk", "expert_tail", "expert_head"):
                name = f"{stream}_{part}"
                setattr(self, name, getattr(full, name))
        if full.feature_distance is not None and set(full.feature_distance.branches) <= set(self.branches):
            self.feature_distance = full.feature_distance

    def load_full_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Load the matching subset of a full BHaRNet-E state_dict (strict on that subset)."""
        own = self.state_dict()
        missing = [key for key in own if key not in state]
        if missing:
            raise KeyError(f"BHaRNet-E state_dict lacks {len(missing)} expert keys, e.g. {missing[:3]}")
        self.load_state_dict({key: state[key] for key in own})

    def forward_once(
        self, body: torch.Tensor, hand: torch.Tensor, hand_mask: torch.Tensor | None = None
    ) -> Outputs:
        logits = {}
        for stream, x in zip(STREAMS, (body, hand), strict=True):
            trunk = getattr(self, f"{stream}_trunk")
            features = unfold_instances(
                getattr(self, f"{stream}_expert_tail")(trunk.forward_folded(x)), trunk.config.num_instances
            )
            logits[f"{stream}_expert"] = getattr(self, f"{stream}_expert_head")(global_pool(features))
        return self.fuse(logits, hand_mask)


MODEL_REGISTRY: dict[str, Callable[[ModelConfig], BHaRNetModel]] = {
    "body_expert": lambda config: SingleStreamModel(config, "body"),
    "hand_expert": lambda config: SingleStreamModel(config, "hand"),
    "score_fusion": ScoreFusionModel,
    "bharnet_p": PoolingAttentionModel,
    "bharnet_e": ExpertizedModel,
    "bharnet_e_expert_only": lambda config: ExpertizedModel(config).expert_only(),
}


def build_model(config: ModelConfig | Mapping[str, Any] | str | Path) -> BHaRNetModel:
    """Build the variant a config names; accepts a :class:`ModelConfig`, a mapping or a YAML path."""
    if isinstance(config, str | Path):
        config = load_model_config(config)
    elif not isinstance(config, ModelConfig):
        config = config_from_dict(config)
    config.validate()
    return MODEL_REGISTRY[config.variant](config)
