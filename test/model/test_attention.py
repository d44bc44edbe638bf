"""FAVOR+ and exact softmax cross-attention."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bharnet_ros.model.attention import (
    CrossAttention,
    default_num_features,
    favor_attention,
    freeze_projections,
    orthogonal_gaussian_matrix,
    positive_features,
    softmax_attention,
)


def test_random_features_are_orthogonal_within_each_block():
    w = orthogonal_gaussian_matrix(20, 8, torch.Generator().manual_seed(0))
    assert w.shape == (20, 8)
    directions = w / w.norm(dim=1, keepdim=True)
    for start in (0, 8):
        block = directions[start : start + 8]
        torch.testing.assert_close(block @ block.T, torch.eye(8), atol=1e-5, rtol=0)
    assert default_num_features(64) == 266


def test_favor_approximates_softmax_attention():
    generator = torch.Generator().manual_seed(1)
    q = 0.5 * torch.randn(2, 10, 8, generator=generator)
    k = 0.5 * torch.randn(2, 12, 8, generator=generator)
    v = torch.randn(2, 12, 8, generator=generator)
    projection = orthogonal_gaussian_matrix(4096, 8, generator)
    exact = softmax_attention(q, k, v)
    approx = favor_attention(q, k, v, projection)
    assert (approx - exact).norm() / exact.norm() < 0.1


def test_softmax_attention_matches_torch_reference():
    q, k, v = torch.randn(2, 3, 5, 8), torch.randn(2, 3, 7, 8), torch.randn(2, 3, 7, 8)
    torch.testing.assert_close(softmax_attention(q, k, v), F.scaled_dot_product_attention(q, k, v))


def test_features_stay_positive_and_finite_for_huge_inputs():
    projection = orthogonal_gaussian_matrix(16, 8)
    x = 1e3 * torch.randn(2, 5, 8)
    for is_query in (True, False):
        features = positive_features(x, projection, is_query)
        assert torch.all(features > 0)
        assert torch.isfinite(features).all()
    out = favor_attention(x, x, torch.randn(2, 5, 8), projection)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("kind", ["favor", "softmax"])
def test_cross_attention_maps_query_tokens_to_query_tokens(kind):
    layer = CrossAttention(12, heads=3, dim_head=4, kind=kind, num_features=8)
    out = layer(torch.randn(2, 5, 12), torch.randn(2, 9, 12))
    assert out.shape == (2, 5, 12)


def test_unknown_kind_is_rejected():
    with pytest.raises(ValueError, match="unknown attention kind"):
        CrossAttention(8, kind="linear")


def test_projection_is_a_saved_buffer_redrawn_on_schedule_until_frozen():
    layer = CrossAttention(8, heads=2, dim_head=4, num_features=6, redraw_interval=2).train()
    assert "projection" in layer.state_dict()
    assert not any(p is layer.projection for p in layer.parameters())
    query, context = torch.randn(1, 3, 8), torch.randn(1, 4, 8)
    first = layer.projection.clone()
    layer(query, context)
    torch.testing.assert_close(layer.projection, first)  # one call: not yet
    layer(query, context)
    assert not torch.equal(layer.projection, first)  # second call: redrawn
    freeze_projections(layer)
    frozen = layer.projection.clone()
    for _ in range(4):
        layer(query, context)
    torch.testing.assert_close(layer.projection, frozen)
    assert layer.frozen


def test_eval_mode_never_redraws_and_is_deterministic():
    layer = CrossAttention(8, heads=2, dim_head=4, num_features=6, redraw_interval=1).eval()
    query, context = torch.randn(1, 3, 8), torch.randn(1, 4, 8)
    torch.testing.assert_close(layer(query, context), layer(query, context))


def test_manual_redraw_keeps_shape_and_changes_values():
    layer = CrossAttention(8, heads=2, dim_head=4, num_features=6)
    before = layer.projection.clone()
    layer.redraw(torch.Generator().manual_seed(3))
    assert layer.projection.shape == before.shape
    assert not torch.equal(layer.projection, before)
