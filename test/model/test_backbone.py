"""Single-stream DeGCN backbone: shapes, configurable stack, deformable temporal sampling."""

from __future__ import annotations

import pytest
import torch

from bharnet_ros.model.backbone import (
    Backbone,
    BackboneConfig,
    DeformableTemporalConv,
    GCNBlock,
    SpatialGraphConv,
    TopologyRefinedGraphConv,
    build_blocks,
    relation_channels,
    with_motion,
)
from bharnet_ros.model.graph import layout_adjacency

NTU = layout_adjacency("ntu25")


def test_feature_map_shape_after_default_stack():
    config = BackboneConfig(base_channels=8, num_instances=2)
    backbone = Backbone(config, NTU)
    features = backbone(torch.randn(2, 3, 16, 25, 2))
    assert features.shape == (2, 2, 32, 4, 25)  # (N, M, C', T', V): 4x width, two stride-2 stages
    assert backbone.out_channels == 32


def test_block_kinds_follow_the_paper():
    blocks = Backbone(BackboneConfig(base_channels=8), NTU).blocks
    assert len(blocks) == 10
    assert isinstance(blocks[0].graph_conv, SpatialGraphConv)
    assert all(isinstance(b.graph_conv, TopologyRefinedGraphConv) for b in blocks[1:])
    assert blocks[0].residual is None
    strides = [b.temporal.point[0].stride[0] for b in blocks]
    assert strides == [1, 1, 1, 1, 2, 1, 1, 2, 1, 1]


def test_width_depth_and_strides_are_configurable():
    config = BackboneConfig(base_channels=12, stages=((1, 1), (2, 2), (2, 1)), num_instances=1)
    features = Backbone(config, NTU)(torch.randn(2, 3, 15, 25, 1))
    assert features.shape == (2, 1, 24, 8, 25)  # odd T: every temporal branch gives ceil(15 / 2)


def test_partial_stack_and_remaining_blocks_compose():
    config = BackboneConfig(base_channels=8)
    trunk = Backbone(config, NTU, stop=4)
    tail = build_blocks(config, NTU, 4, config.depth)
    folded = trunk.forward_folded(torch.randn(2, 3, 16, 25, 2))
    assert folded.shape == (4, 8, 16, 25)
    assert trunk.out_channels == 8
    assert tail(folded).shape == (4, 32, 4, 25)


def test_widths_that_cannot_be_grouped_are_rejected():
    with pytest.raises(ValueError, match="divisible"):
        Backbone(BackboneConfig(base_channels=6), NTU)


def test_relation_channels_are_a_multiple_of_the_groups():
    assert relation_channels(64, 8, 4) == 8
    assert relation_channels(256, 8, 4) == 32
    assert relation_channels(8, 8, 4) == 4


def test_default_body_expert_size_matches_single_stream_degcn():
    backbone = Backbone(BackboneConfig(), NTU)
    params = sum(p.numel() for p in backbone.parameters())
    assert 0.66e6 < params < 0.70e6  # + 120-class head = 0.706 M, model_spec 4.5


def sampler(offsets: list[float], stride: int = 1) -> DeformableTemporalConv:
    """A DeTGC on one channel whose 1x1 mix passes sample 1 through unchanged."""
    layer = DeformableTemporalConv(1, kernel=5, dilation=1, stride=stride, num_samples=len(offsets))
    with torch.no_grad():
        layer.offsets.copy_(torch.tensor(offsets))
        layer.mix.weight.zero_()
        layer.mix.weight[0, 1] = 1.0
        layer.mix.bias.zero_()
    return layer.eval()  # BatchNorm with running stats (0, 1) is the identity up to eps


def test_detgc_integer_offsets_shift_frames_and_clamp():
    x = torch.arange(6.0).reshape(1, 1, 6, 1)
    out = sampler([0.0, 2.0, 0.0, 0.0])(x)
    expected = torch.tensor([2.0, 3, 4, 5, 5, 5])  # t + 2, clamped to the last frame
    torch.testing.assert_close(out.flatten(), expected / (1 + 1e-5) ** 0.5)


def test_detgc_fractional_offsets_interpolate_linearly():
    x = torch.tensor([0.0, 10, 20, 30]).reshape(1, 1, 4, 1)
    out = sampler([0.0, -0.25, 0.0, 0.0], stride=2)(x)
    # output frames 0 and 2 read positions -0.25 (clamped to 0) and 1.75
    torch.testing.assert_close(out.flatten(), torch.tensor([0.0, 17.5]) / (1 + 1e-5) ** 0.5)


def test_detgc_offsets_receive_gradients():
    layer = DeformableTemporalConv(4, kernel=5, dilation=2, stride=1, num_samples=4)
    torch.testing.assert_close(layer.offsets.detach(), torch.tensor([-4.0, -4 / 3, 4 / 3, 4.0]))
    layer(torch.randn(2, 4, 12, 5)).square().sum().backward()
    assert layer.offsets.grad is not None
    assert torch.all(layer.offsets.grad != 0)


def test_topology_refinement_starts_at_the_skeleton_graph():
    block = GCNBlock(8, 8, 1, NTU, first=False, config=BackboneConfig(base_channels=8))
    assert block.graph_conv.alpha.item() == 0.0
    torch.testing.assert_close(block.graph_conv.adjacency.detach(), torch.as_tensor(NTU))


def test_velocities_are_appended_and_zero_where_a_joint_is_absent():
    x = torch.zeros(1, 3, 4, 2, 1)
    x[0, :, :, 0, 0] = torch.tensor([[0.5, 1.5, 3.5, 6.5]] * 3)  # a joint moving by 1, 2, 3
    x[0, :, 2:, 1, 0] = 5.0  # a joint that appears at frame 2 and then stays
    out = with_motion(x)
    assert out.shape == (1, 6, 4, 2, 1)
    assert torch.equal(out[:, :3], x)
    assert out[0, 3:, :, 0, 0].tolist() == [[1.0, 2.0, 3.0, 0.0]] * 3
    assert not out[0, 3:, :, 1, 0].any()  # no jump from the origin when it appears


def test_a_motion_backbone_takes_positions_and_doubles_its_stem():
    config = BackboneConfig(base_channels=8, stages=((1, 1), (2, 2)), num_instances=1, motion=True)
    backbone = Backbone(config, NTU)
    assert backbone.stem.num_features == 25 * 6
    assert config.block_plan()[0][0] == 6
    assert backbone(torch.randn(2, 3, 16, 25, 1)).shape == (2, 1, 16, 8, 25)
