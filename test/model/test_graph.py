"""Adjacency subsets built from the joint layouts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bharnet_ros.core.layouts import HAND21, MP33, NTU25
from bharnet_ros.model.backbone import aggregate
from bharnet_ros.model.graph import (
    adjacency_from_parents,
    hand_adjacency,
    layout_adjacency,
    stream_adjacencies,
)


@pytest.mark.parametrize("layout", [NTU25, MP33, HAND21], ids=lambda layout: layout.name)
def test_subsets_are_self_inward_outward(layout):
    a = layout_adjacency(layout)
    v = layout.num_joints
    assert a.shape == (3, v, v)
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a[0], np.eye(v))
    # one inward and one outward entry per tree edge, mirrored
    assert np.count_nonzero(a[1]) == len(layout.edges) == v - 1
    np.testing.assert_array_equal(a[1] > 0, (a[2] > 0).T)
    for child, parent in layout.edges:
        assert a[1, parent, child] > 0  # child sends to parent
        assert a[2, child, parent] > 0  # parent sends to child


@pytest.mark.parametrize("layout", [NTU25, MP33, HAND21], ids=lambda layout: layout.name)
def test_columns_are_degree_normalised(layout):
    a = layout_adjacency(layout)
    for subset in (1, 2):
        sums = a[subset].sum(axis=0)
        senders = a[subset].any(axis=0)
        np.testing.assert_allclose(sums[senders], 1.0, rtol=1e-6)
        assert np.all(sums[~senders] == 0)


def test_outward_weight_is_split_among_children():
    a = layout_adjacency("ntu25")
    root = NTU25.root
    children = [c for c, p in NTU25.edges if p == root]
    assert len(children) == 4  # spine shoulder: neck, both shoulders, spine mid
    np.testing.assert_allclose(a[2, children, root], 0.25)
    assert np.all(a[1, root, children] == 1.0)  # each child has exactly one parent


@pytest.mark.parametrize("vertices", [25, 33])
def test_padded_hand_graph_has_self_loops_only_on_dummies(vertices):
    a = hand_adjacency(vertices)
    assert a.shape == (3, vertices, vertices)
    np.testing.assert_array_equal(a[:, :21, :21], layout_adjacency(HAND21))
    np.testing.assert_array_equal(a[0], np.eye(vertices))
    assert np.all(a[1:, 21:, :] == 0)
    assert np.all(a[1:, :, 21:] == 0)


def test_stream_adjacencies_pad_hands_to_body_vertex_count():
    graphs = stream_adjacencies("mediapipe33")
    assert graphs["body"].shape == graphs["hand"].shape == (3, 33, 33)
    with pytest.raises(ValueError, match="unknown skeleton layout"):
        stream_adjacencies("coco17")


def test_inward_aggregation_moves_child_features_to_parent():
    a = torch.as_tensor(adjacency_from_parents((0, 0, 1)))  # chain 0 <- 1 <- 2
    x = torch.tensor([1.0, 10.0, 100.0]).reshape(1, 1, 1, 1, 3).expand(1, 3, 1, 1, 3)
    out = aggregate(x, a.transpose(-1, -2).unsqueeze(1), subset_dim=1)  # sum over subsets of A_s x
    # self + inward (from the child) + outward (from the parent)
    np.testing.assert_allclose(out[0, 0, 0].numpy(), [1 + 10, 10 + 100 + 1, 100 + 10])
