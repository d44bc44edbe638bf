"""Skeleton graphs for the GCN: three adjacency subsets built from a joint layout's tree.

Convention: ``A[s, i, j]`` is the weight with which vertex ``j`` sends its feature to vertex
``i`` in subset ``s``, so a graph convolution computes ``out[..., i] = sum_j A[s, i, j] x[..., j]``.
The three subsets are the usual spatial partition of ST-GCN / CTR-GCN:

0. self: the identity (every vertex keeps its own feature);
1. inward: children send to their parent (towards the root);
2. outward: parents send to their children (away from the root).

Subsets 1 and 2 are column-degree normalised (``A D^-1`` with ``D`` the column sums), so every
sending vertex spreads a total weight of 1 over its receivers. Dummy vertices (the hand padded to
the body's vertex count) are their own parents: they only have the self loop.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bharnet_ros.core.layouts import SkeletonLayout, get_layout
from bharnet_ros.core.modalities import hand_parents

NUM_SUBSETS = 3


def edge_matrix(edges: Sequence[tuple[int, int]], num_vertices: int) -> np.ndarray:
    """``M[receiver, sender] = 1`` for each ``(sender, receiver)`` edge."""
    out = np.zeros((num_vertices, num_vertices), np.float32)
    for sender, receiver in edges:
        out[receiver, sender] = 1.0
    return out


def normalise_columns(matrix: np.ndarray) -> np.ndarray:
    """Divide each column by its sum (``A D^-1``); empty columns stay zero."""
    degree = matrix.sum(axis=0)
    scale = np.divide(1.0, degree, out=np.zeros_like(degree), where=degree > 0)
    return (matrix * scale[None, :]).astype(np.float32)


def adjacency_from_parents(parents: Sequence[int]) -> np.ndarray:
    """The ``(3, V, V)`` adjacency [self, inward, outward] of a forest given by parent indices.

    Self-parented vertices are roots (or dummies) and add no edge.
    """
    num_vertices = len(parents)
    inward = [(child, parent) for child, parent in enumerate(parents) if child != parent]
    outward = [(parent, child) for child, parent in inward]
    return np.stack(
        [
            np.eye(num_vertices, dtype=np.float32),
            normalise_columns(edge_matrix(inward, num_vertices)),
            normalise_columns(edge_matrix(outward, num_vertices)),
        ]
    )


def layout_adjacency(layout: SkeletonLayout | str) -> np.ndarray:
    """Adjacency of a body (or hand) layout from ``bharnet_ros.core.layouts``."""
    if isinstance(layout, str):
        layout = get_layout(layout)
    return adjacency_from_parents(layout.parents)


def hand_adjacency(num_vertices: int) -> np.ndarray:
    """Adjacency of the 21-landmark hand padded with dummy vertices to ``num_vertices``."""
    return adjacency_from_parents(hand_parents(num_vertices))


def stream_adjacencies(body_layout: str) -> dict[str, np.ndarray]:
    """Body and padded-hand adjacency for a body layout, keyed by stream name."""
    body = layout_adjacency(body_layout)
    return {"body": body, "hand": hand_adjacency(body.shape[-1])}
