"""Single-stream DeGCN-style graph convolutional backbone (model_spec section 4).

Input ``(N, C, T, V, M)`` (see ``bharnet_ros.core.modalities``). A BatchNorm over ``M*V*C`` (the
"stem") normalises every coordinate of every joint of every instance, then the instance axis is
folded into the batch and a stack of blocks runs on ``(N*M, C, T, V)``. Each block is

    y   = LeakyReLU(GC(x) + R1(x))
    out = LeakyReLU(MSTM(y) + R2(x))

with GC a plain spatial graph convolution in block 0 and a channel-wise topology refinement
graph convolution (CTR-GC) afterwards, and MSTM a multi-branch temporal module whose two main
branches sample frames at learnable fractional offsets (DeTGC). All contractions are written as
``matmul`` so the exported graph avoids ONNX Einsum.

The stack is described by ``stages``: one ``(channel multiplier, temporal stride)`` pair per
block, so width, depth and the temporal strides are configuration. Blocks can be built for any
index range, which lets BHaRNet-E share the first blocks and duplicate the rest per branch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from bharnet_ros.model.graph import NUM_SUBSETS

LEAK = 0.1  # negative slope of every LeakyReLU, as in DeGCN
# 10 blocks: 64/64/64/64/128/128/128/256/256/256 channels, stride 2 entering 128 and 256.
DEFAULT_STAGES: tuple[tuple[int, int], ...] = (
    (1, 1), (1, 1), (1, 1), (1, 1), (2, 2), (2, 1), (2, 1), (4, 2), (4, 1), (4, 1),
)  # fmt: skip


@dataclass(frozen=True)
class BackboneConfig:
    """Shape of one backbone; the defaults are the single-stream DeGCN of the paper."""

    in_channels: int = 3
    motion: bool = False  # append each joint's velocity to its in_channels (see with_motion)
    base_channels: int = 64
    stages: tuple[tuple[int, int], ...] = DEFAULT_STAGES
    num_instances: int = 2
    num_scales: int = 4  # channel groups of CTR-GC and of the grouped residual convolutions
    reduction: int = 8  # CTR-GC relation channels = in_channels / reduction
    temporal_kernel: int = 5
    temporal_dilations: tuple[int, ...] = (1, 2)
    temporal_samples: int = 4  # learnable sampling offsets per DeTGC

    @property
    def depth(self) -> int:
        return len(self.stages)

    @property
    def stem_channels(self) -> int:
        """Channels the first block sees: the input's, doubled when velocities are appended."""
        return self.in_channels * (2 if self.motion else 1)

    def block_plan(self) -> list[tuple[int, int, int]]:
        """``(in_channels, out_channels, temporal_stride)`` of every block."""
        plan, c_in = [], self.stem_channels
        for multiplier, stride in self.stages:
            c_out = self.base_channels * multiplier
            plan.append((c_in, c_out, stride))
            c_in = c_out
        return plan

    def out_channels(self, stop: int | None = None) -> int:
        """Channels after the blocks ``[0, stop)``."""
        plan = self.block_plan()[:stop]
        return plan[-1][1] if plan else self.stem_channels

    def validate(self) -> None:
        """Fail early on widths the grouped convolutions cannot split."""
        if not self.stages:
            raise ValueError("backbone needs at least one stage")
        branches = len(self.temporal_dilations) + 2
        for _, c_out, _ in self.block_plan():
            if c_out % self.num_scales or c_out % branches:
                raise ValueError(
                    f"block width {c_out} must be divisible by num_scales={self.num_scales} "
                    f"and by the {branches} temporal branches"
                )


def conv_bn(c_in: int, c_out: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    """1x1 convolution (optionally strided in time, grouped) followed by BatchNorm."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=(stride, 1), groups=groups), nn.BatchNorm2d(c_out))


def aggregate(values: torch.Tensor, topology_t: torch.Tensor, subset_dim: int) -> torch.Tensor:
    """Graph aggregation ``out[..., t, i] = sum_s sum_j A[s, ..., i, j] x[s, ..., t, j]`` via matmul.

    ``topology_t`` holds the adjacencies transposed (``[..., j, i]``), so the matmul reads both
    operands as they are laid out; the subsets are summed over ``subset_dim`` of the product.
    """
    return torch.matmul(values, topology_t).sum(dim=subset_dim)


class SpatialGraphConv(nn.Module):
    """Plain graph convolution (block 0): one 1x1 projection per subset and a learnable adjacency.

    Projection and aggregation commute, so the few input channels are aggregated first, over all
    subsets in one matmul against the stacked adjacencies, and one 1x1 convolution then mixes the
    ``(subset, channel)`` inputs; the projections' biases become a per-joint bias. This costs
    ``c_in / c_out`` of projecting first. The adjacency starts from the normalised skeleton graph
    and is trained freely.
    """

    def __init__(self, c_in: int, c_out: int, adjacency: np.ndarray) -> None:
        super().__init__()
        self.mix = nn.Conv2d(NUM_SUBSETS * c_in, c_out, 1, bias=False)
        self.subset_bias = nn.Parameter(torch.zeros(NUM_SUBSETS, c_out))
        self.adjacency = nn.Parameter(torch.as_tensor(adjacency, dtype=torch.float32).clone())
        self.norm = nn.BatchNorm2d(c_out)

    def reset_mix(self) -> None:
        """Kaiming-normal with each subset projection's own fan-out (``c_out``), as when projecting first."""
        gain = nn.init.calculate_gain("leaky_relu", LEAK)
        nn.init.normal_(self.mix.weight, 0.0, gain / self.mix.out_channels**0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, t, v = x.shape
        adjacency_t = self.adjacency.transpose(-1, -2).unsqueeze(1)  # (S, 1, V, V)
        spread = torch.matmul(x.unsqueeze(1), adjacency_t)  # (n, S, c_in, T, V)
        bias = torch.matmul(self.subset_bias.t(), self.adjacency.sum(dim=-1))  # (c_out, V)
        return self.norm(self.mix(spread.reshape(n, -1, t, v)) + bias.unsqueeze(1))


def relation_channels(c_in: int, reduction: int, groups: int) -> int:
    """CTR-GC relation width: ``c_in / reduction`` rounded down to a multiple of ``groups`` (>= groups)."""
    return max(groups, (c_in // reduction) // groups * groups)


class TopologyRefinedGraphConv(nn.Module):
    """Channel-wise topology refinement graph convolution (CTR-GC) with channel groups.

    Per subset ``s`` the topology is ``alpha * expand(tanh(q_i - k_j)) + A_s``: a sample-dependent
    refinement (from time-averaged joint embeddings ``q``, ``k``) added to a learnable shared
    adjacency. Channels are split into ``groups``; each group derives its own relations and
    topologies from its own input channels (grouped 1x1 convolutions). ``alpha`` starts at 0, so
    training starts from the skeleton graph.

    Every tensor keeps the channel order (group, subset, channel) of the grouped convolutions, so
    splitting off the subsets is a reshape; the relations are built transposed (``[j, i]``), as the
    aggregation's matmul reads them; and ``q``, ``k`` project the time-averaged input, which equals
    averaging their projections.
    """

    def __init__(self, c_in: int, c_out: int, adjacency: np.ndarray, groups: int, reduction: int) -> None:
        super().__init__()
        rel = relation_channels(c_in, reduction, groups)
        self.groups = groups
        self.query = nn.Conv2d(c_in, NUM_SUBSETS * rel, 1, groups=groups)
        self.key = nn.Conv2d(c_in, NUM_SUBSETS * rel, 1, groups=groups)
        self.value = nn.Conv2d(c_in, NUM_SUBSETS * c_out, 1, groups=groups)
        self.expand = nn.Conv2d(NUM_SUBSETS * rel, NUM_SUBSETS * c_out, 1, groups=NUM_SUBSETS * groups)
        self.alpha = nn.Parameter(torch.zeros(1))
        self.adjacency = nn.Parameter(torch.as_tensor(adjacency, dtype=torch.float32).clone())
        self.norm = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, t, v = x.shape
        split = (n, self.groups, NUM_SUBSETS, -1)
        mean = x.mean(dim=2, keepdim=True)
        q, k = self.query(mean), self.key(mean)  # (n, G*S*r, 1, V)
        relation_t = torch.tanh(q - k.transpose(-1, -2))  # (n, G*S*r, V_send j, V_recv i)
        expand = self.expand  # alpha scales its weights, not its (larger) output
        refined_t = nn.functional.conv2d(
            relation_t, self.alpha * expand.weight, self.alpha * expand.bias, groups=expand.groups
        ).reshape(*split, v, v)  # alpha * refinement, (n, G, S, C/G, V, V)
        topology_t = refined_t + self.adjacency.transpose(-1, -2).unsqueeze(1)
        values = self.value(x).reshape(*split, t, v)  # (n, G, S, C/G, T, V)
        return self.norm(aggregate(values, topology_t, subset_dim=2).reshape(n, -1, t, v))


class DeformableTemporalConv(nn.Module):
    """DeTGC: temporal convolution over frames sampled at learnable fractional offsets.

    Output frame ``t0`` (every ``stride``-th input frame) reads ``num_samples`` frames at
    ``t0 + offset_j`` by linear interpolation (clamped to the sequence), and a 1x1 convolution mixes
    channels and samples (the same as a ``(num_samples, 1, 1)`` 3-D convolution). Offsets start
    evenly spread over the receptive field of a ``kernel``-tap convolution with ``dilation`` and are
    shared by all channels and joints.

    The two frames around each sample are gathered as channels of their own and the interpolation
    weights are folded into the mixing convolution's weights: the fractional part of an offset is
    the same for every output frame, and clamping the two frame indices equals clamping the
    position. Indices and weights depend only on parameters, so an exported model sees constants.
    """

    def __init__(self, channels: int, kernel: int, dilation: int, stride: int, num_samples: int) -> None:
        super().__init__()
        reach = (kernel + (kernel - 1) * (dilation - 1) - 1) // 2
        self.stride = stride
        self.num_samples = num_samples
        self.offsets = nn.Parameter(torch.linspace(-reach, reach, num_samples))
        self.mix = nn.Conv2d(channels * num_samples, channels, 1)
        self.norm = nn.BatchNorm2d(channels)

    def taps(self, num_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames read, ordered (sample, below/above, output frame), and each pair's weights ``(K, 2)``."""
        starts = torch.arange(0, num_frames, self.stride, device=self.offsets.device)
        whole = self.offsets.detach().floor()
        low = starts.unsqueeze(0) + whole.long().unsqueeze(1)  # (K, T_out)
        frames = torch.stack([low, low + 1], dim=1).clamp(0, num_frames - 1)
        fraction = self.offsets - whole
        return frames.reshape(-1), torch.stack([1 - fraction, fraction], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, t, v = x.shape
        frames, pair_weights = self.taps(t)
        c, inputs = self.mix.out_channels, self.mix.in_channels * 2  # static, also in a traced graph
        pairs = x.index_select(2, frames).reshape(n, inputs, -1, v)
        weight = self.mix.weight.reshape(c, c, self.num_samples, 1) * pair_weights.reshape(1, 1, -1, 2)
        return self.norm(nn.functional.conv2d(pairs, weight.reshape(c, inputs, 1, 1), self.mix.bias))


class MultiScaleTemporal(nn.Module):
    """Multi-branch temporal module: DeTGC per dilation, a max-pool branch and a strided 1x1 branch.

    Each branch has ``channels / branches`` channels; their outputs are concatenated.
    """

    def __init__(
        self, channels: int, stride: int, kernel: int, dilations: Sequence[int], samples: int
    ) -> None:
        super().__init__()
        width = channels // (len(dilations) + 2)
        self.deformable = nn.ModuleList(
            nn.Sequential(
                conv_bn(channels, width),
                nn.LeakyReLU(LEAK),
                DeformableTemporalConv(width, kernel, dilation, stride, samples),
            )
            for dilation in dilations
        )
        self.pool = nn.Sequential(
            conv_bn(channels, width),
            nn.LeakyReLU(LEAK),
            nn.MaxPool2d((3, 1), stride=(stride, 1), padding=(1, 0)),
            nn.BatchNorm2d(width),
        )
        self.point = conv_bn(channels, width, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = [branch(x) for branch in self.deformable]
        return torch.cat([*outputs, self.pool(x), self.point(x)], dim=1)


class GCNBlock(nn.Module):
    """One spatial-temporal block with the two residual paths of DeGCN."""

    def __init__(
        self, c_in: int, c_out: int, stride: int, adjacency: np.ndarray, first: bool, config: BackboneConfig
    ) -> None:
        super().__init__()
        if first:
            self.graph_conv: nn.Module = SpatialGraphConv(c_in, c_out, adjacency)
        else:
            self.graph_conv = TopologyRefinedGraphConv(
                c_in, c_out, adjacency, config.num_scales, config.reduction
            )
        self.graph_residual = projection_shortcut(c_in, c_out, 1, config.num_scales)
        self.temporal = MultiScaleTemporal(
            c_out, stride, config.temporal_kernel, config.temporal_dilations, config.temporal_samples
        )
        self.residual = block_residual(c_in, c_out, stride, first, config.num_scales)
        self.activation = nn.LeakyReLU(LEAK)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.activation(self.graph_conv(x) + self.graph_residual(x))
        out = self.temporal(y)
        if self.residual is not None:
            out = out + self.residual(x)
        return self.activation(out)


def projection_shortcut(c_in: int, c_out: int, stride: int, groups: int) -> nn.Module:
    """Identity if shapes match, else a grouped (where widths allow) strided 1x1 convolution + BN."""
    if c_in == c_out and stride == 1:
        return nn.Identity()
    return conv_bn(c_in, c_out, stride, groups=groups if c_in % groups == 0 else 1)


def block_residual(c_in: int, c_out: int, stride: int, first: bool, groups: int) -> nn.Module | None:
    """Block-level shortcut: none for block 0 (its input is raw coordinates), else a projection."""
    return None if first else projection_shortcut(c_in, c_out, stride, groups)


def build_blocks(config: BackboneConfig, adjacency: np.ndarray, start: int, stop: int) -> nn.Sequential:
    """Freshly initialised blocks ``[start, stop)`` of the stack described by ``config``."""
    plan = config.block_plan()
    blocks = nn.Sequential(
        *(GCNBlock(*plan[i], adjacency, first=i == 0, config=config) for i in range(start, stop))
    )
    init_weights(blocks)
    return blocks


def init_weights(module: nn.Module) -> None:
    """Kaiming-normal convolutions (LeakyReLU 0.1, fan-out), zero biases, unit BatchNorm."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            nn.init.kaiming_normal_(layer.weight, a=LEAK, mode="fan_out", nonlinearity="leaky_relu")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm1d | nn.BatchNorm2d):
            nn.init.ones_(layer.weight)
            nn.init.zeros_(layer.bias)
    for layer in module.modules():
        if isinstance(layer, SpatialGraphConv):
            layer.reset_mix()


def unfold_instances(x: torch.Tensor, num_instances: int) -> torch.Tensor:
    """``(N*M, C, T, V)`` to ``(N, M, C, T, V)``."""
    return x.reshape(-1, num_instances, *x.shape[1:])


def with_motion(x: torch.Tensor) -> torch.Tensor:
    """Joints ``(N, C, T, V, M)`` with their velocities ``x[t+1] - x[t]`` appended as channels.

    A velocity is zero where the joint is absent (all channels zero) in either frame, and in the
    last frame, as the preprocessing masks its motion modalities (``core.preprocess``): a hand that
    appears is not a jump from the origin.
    """
    observed = (x != 0).any(dim=1, keepdim=True)
    both = observed[:, :, 1:] & observed[:, :, :-1]
    velocity = (x[:, :, 1:] - x[:, :, :-1]) * both.to(x.dtype)
    velocity = torch.cat([velocity, torch.zeros_like(x[:, :, :1])], dim=2)
    return torch.cat([x, velocity], dim=1)


class Backbone(nn.Module):
    """Stem normalisation and blocks ``[0, stop)``; ``stop`` defaults to the whole stack.

    ``forward`` returns the feature map ``(N, M, C', T', V)`` so heads or cross-attention can be
    attached there; ``forward_folded`` keeps instances folded for further blocks.
    """

    def __init__(self, config: BackboneConfig, adjacency: np.ndarray, stop: int | None = None) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self.num_vertices = adjacency.shape[-1]
        self.stop = config.depth if stop is None else stop
        self.stem = nn.BatchNorm1d(config.num_instances * self.num_vertices * config.stem_channels)
        self.blocks = build_blocks(config, adjacency, 0, self.stop)
        init_weights(self.stem)

    @property
    def out_channels(self) -> int:
        return self.config.out_channels(self.stop)

    def normalise_input(self, x: torch.Tensor) -> torch.Tensor:
        """BatchNorm over every (instance, joint, channel) series, then fold instances."""
        if self.config.motion:
            x = with_motion(x)
        n, c, t, v, m = x.shape
        series = x.permute(0, 4, 3, 1, 2).reshape(n, m * v * c, t)
        series = self.stem(series).reshape(n, m, v, c, t)
        return series.permute(0, 1, 3, 4, 2).reshape(n * m, c, t, v)

    def forward_folded(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, T, V, M)`` to folded features ``(N*M, C', T', V)``."""
        return self.blocks(self.normalise_input(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return unfold_instances(self.forward_folded(x), self.config.num_instances)


class ClassifierHead(nn.Module):
    """Linear classifier on pooled features; weights ~ N(0, sqrt(2 / num_classes)) as in DeGCN."""

    def __init__(self, channels: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(channels, num_classes)
        nn.init.normal_(self.fc.weight, 0.0, (2.0 / num_classes) ** 0.5)
        nn.init.zeros_(self.fc.bias)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(pooled))


def global_pool(features: torch.Tensor) -> torch.Tensor:
    """GAP of a feature map ``(N, M, C, T, V)`` over time, joints and instances to ``(N, C)``."""
    return features.mean(dim=(3, 4)).mean(dim=1)
