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

    def block_plan(self) -> list[tuple[int, int, int]]:
        """``(in_channels, out_channels, temporal_stride)`` of every block."""
        plan, c_in = [], self.in_channels
        for multiplier, stride in self.stages:
            c_out = self.base_channels * multiplier
            plan.append((c_in, c_out, stride))
            c_in = c_out
        return plan

    def out_channels(self, stop: int | None = None) -> int:
        """Channels after the blocks ``[0, stop)``."""
        plan = self.block_plan()[:stop]
        return plan[-1][1] if plan else self.in_channels

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


def split_subsets(x: torch.Tensor, groups: int) -> torch.Tensor:
    """``(n, groups*S*c, a, b)`` with channels ordered (group, subset, c) to ``(n, S, groups*c, a, b)``."""
    n, _, a, b = x.shape
    x = x.reshape(n, groups, NUM_SUBSETS, -1, a, b).transpose(1, 2)
    return x.reshape(n, NUM_SUBSETS, -1, a, b)


def aggregate(values: torch.Tensor, topology: torch.Tensor) -> torch.Tensor:
    """Graph aggregation ``out[..., t, i] = sum_s sum_j A[s, ..., i, j] x[s, ..., t, j]`` via matmul.

    ``values`` is ``(n, S, C, T, V)``; ``topology`` broadcasts to ``(n, S, C, V, V)``.
    """
    return torch.matmul(values, topology.transpose(-1, -2)).sum(dim=1)


class SpatialGraphConv(nn.Module):
    """Plain graph convolution (block 0): one 1x1 projection per subset and a learnable adjacency.

    The adjacency starts from the normalised skeleton graph and is trained freely.
    """

    def __init__(self, c_in: int, c_out: int, adjacency: np.ndarray) -> None:
        super().__init__()
        self.project = nn.Conv2d(c_in, NUM_SUBSETS * c_out, 1)
        self.adjacency = nn.Parameter(torch.as_tensor(adjacency, dtype=torch.float32).clone())
        self.norm = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, t, v = x.shape
        values = self.project(x).reshape(n, NUM_SUBSETS, -1, t, v)
        return self.norm(aggregate(values, self.adjacency.unsqueeze(1)))


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
    """

    def __init__(self, c_in: int, c_out: int, adjacency: np.ndarray, groups: int, reduction: int) -> None:
        super().__init__()
        rel = relation_channels(c_in, reduction, groups)
        self.groups = groups
        # Output channels are ordered (group, subset, channel) so grouping stays within a group.
        self.query = nn.Conv2d(c_in, NUM_SUBSETS * rel, 1, groups=groups)
        self.key = nn.Conv2d(c_in, NUM_SUBSETS * rel, 1, groups=groups)
        self.value = nn.Conv2d(c_in, NUM_SUBSETS * c_out, 1, groups=groups)
        self.expand = nn.Conv2d(NUM_SUBSETS * rel, NUM_SUBSETS * c_out, 1, groups=NUM_SUBSETS * groups)
        self.alpha = nn.Parameter(torch.zeros(1))
        self.adjacency = nn.Parameter(torch.as_tensor(adjacency, dtype=torch.float32).clone())
        self.norm = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = self.query(x).mean(dim=2)  # (n, G*S*r, V)
        k = self.key(x).mean(dim=2)
        relation = torch.tanh(q.unsqueeze(-1) - k.unsqueeze(-2))  # (n, G*S*r, V_recv, V_send)
        refined = split_subsets(self.expand(relation), self.groups)  # (n, S, C, V, V)
        topology = self.alpha * refined + self.adjacency.unsqueeze(1)
        values = split_subsets(self.value(x), self.groups)  # (n, S, C, T, V)
        return self.norm(aggregate(values, topology))


class DeformableTemporalConv(nn.Module):
    """DeTGC: temporal convolution over frames sampled at learnable fractional offsets.

    Output frame ``t0`` (every ``stride``-th input frame) gathers ``num_samples`` frames at
    ``t0 + offset_j`` by linear interpolation (clamped to the sequence), and a 1x1 convolution mixes
    channels and samples (the same as a ``(num_samples, 1, 1)`` 3-D convolution). Offsets start
    evenly spread over the receptive field of a ``kernel``-tap convolution with ``dilation`` and are
    shared by all channels and joints. They depend only on parameters, so an exported model sees
    constant gather indices.
    """

    def __init__(self, channels: int, kernel: int, dilation: int, stride: int, num_samples: int) -> None:
        super().__init__()
        reach = (kernel + (kernel - 1) * (dilation - 1) - 1) // 2
        self.stride = stride
        self.num_samples = num_samples
        self.offsets = nn.Parameter(torch.linspace(-reach, reach, num_samples))
        self.mix = nn.Conv2d(channels * num_samples, channels, 1)
        self.norm = nn.BatchNorm2d(channels)

    def sample_positions(self, num_frames: int) -> torch.Tensor:
        """Fractional input positions ``(T_out, num_samples)`` read by each output frame."""
        starts = torch.arange(
            0, num_frames, self.stride, dtype=self.offsets.dtype, device=self.offsets.device
        )
        return (starts.unsqueeze(1) + self.offsets.unsqueeze(0)).clamp(0, num_frames - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, v = x.shape
        positions = self.sample_positions(t)
        low = positions.detach().floor()
        weight = (positions - low).reshape(1, 1, -1, 1)
        low_index = low.long().reshape(-1)
        high_index = (low_index + 1).clamp(max=t - 1)
        x_low = x.index_select(2, low_index)
        x_high = x.index_select(2, high_index)
        sampled = x_low + (x_high - x_low) * weight  # (n, c, T_out*K, v)
        sampled = sampled.reshape(n, c, -1, self.num_samples, v).transpose(2, 3)
        return self.norm(self.mix(sampled.reshape(n, c * self.num_samples, -1, v)))


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


def fold_instances(x: torch.Tensor) -> torch.Tensor:
    """``(N, C, T, V, M)`` to ``(N*M, C, T, V)``: each instance becomes its own sample."""
    n, c, t, v, m = x.shape
    return x.permute(0, 4, 1, 2, 3).reshape(n * m, c, t, v)


def unfold_instances(x: torch.Tensor, num_instances: int) -> torch.Tensor:
    """``(N*M, C, T, V)`` to ``(N, M, C, T, V)``."""
    return x.reshape(-1, num_instances, *x.shape[1:])


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
        self.stem = nn.BatchNorm1d(config.num_instances * self.num_vertices * config.in_channels)
        self.blocks = build_blocks(config, adjacency, 0, self.stop)
        init_weights(self.stem)

    @property
    def out_channels(self) -> int:
        return self.config.out_channels(self.stop)

    def normalise_input(self, x: torch.Tensor) -> torch.Tensor:
        """BatchNorm over every (instance, joint, channel) series, then fold instances."""
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
