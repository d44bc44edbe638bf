"""Input modalities and packing of skeleton arrays into model tensors (numpy only).

Used by training and by the ROS runtime, so both compute exactly the same model inputs.

Model tensors follow the axis order of the DeGCN / CTR-GCN family:

* one sample: ``(C, T, V, M)``; a batch: ``(N, C, T, V, M)``
* ``N`` batch, ``C`` coordinate channels (x, y, z), ``T`` frames, ``V`` vertices (joints),
  ``M`` instances: persons for the body stream (1 or 2), hands for the hand stream
  (always 2: slot 0 = the subject's left hand, slot 1 = the right).

The hand stream is padded from 21 landmarks to the body's vertex count with zero "dummy" nodes
(the paper's "dummy keypoints"), so body and hand tensors have the same shape and the two
backbones are built from the same block recipe. The modality functions below take packed
arrays (one sample or a batch) and index time and vertices from the end, as ``-3`` and ``-2``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bharnet_ros.core.layouts import HAND21

MODALITIES = ("joint", "bone", "joint_motion", "bone_motion")
TIME_AXIS = -3  # in (..., C, T, V, M)
VERTEX_AXIS = -2
HAND_SLOTS = 2  # left, right


def padded_parents(parents: Sequence[int], num_vertices: int) -> tuple[int, ...]:
    """Parent indices extended with dummy vertices that are their own parents.

    A self-parented dummy gets a zero bone and, in the graph, only a self loop.
    """
    if num_vertices < len(parents):
        raise ValueError(f"cannot pad {len(parents)} vertices down to {num_vertices}")
    return tuple(parents) + tuple(range(len(parents), num_vertices))


def hand_parents(num_vertices: int) -> tuple[int, ...]:
    """Parents of the 21-landmark hand tree padded with dummies to ``num_vertices``."""
    return padded_parents(HAND21.parents, num_vertices)


def bone(x: np.ndarray, parents: Sequence[int], vertex_axis: int = VERTEX_AXIS) -> np.ndarray:
    """Bone vectors ``x[v] - x[parent(v)]`` along ``vertex_axis``; roots and dummies give 0."""
    x = np.asarray(x, dtype=np.float32)
    if x.shape[vertex_axis] != len(parents):
        raise ValueError(f"array has {x.shape[vertex_axis]} vertices, parent list has {len(parents)}")
    return x - np.take(x, np.asarray(parents, dtype=np.int64), axis=vertex_axis)


def motion(x: np.ndarray, time_axis: int = TIME_AXIS) -> np.ndarray:
    """Frame differences ``x[t+1] - x[t]`` along ``time_axis``; the last frame is 0."""
    x = np.asarray(x, dtype=np.float32)
    out = np.zeros_like(x)
    diff = np.diff(x, axis=time_axis)
    index = [slice(None)] * x.ndim
    index[time_axis] = slice(0, x.shape[time_axis] - 1)
    out[tuple(index)] = diff
    return out


def to_modality(x: np.ndarray, modality: str, parents: Sequence[int]) -> np.ndarray:
    """One of ``MODALITIES`` from packed joint coordinates ``(..., C, T, V, M)``.

    ``parents`` must cover all ``V`` vertices (use :func:`padded_parents` for padded hands).
    """
    if modality == "joint":
        return np.asarray(x, dtype=np.float32)
    if modality == "bone":
        return bone(x, parents)
    if modality == "joint_motion":
        return motion(x)
    if modality == "bone_motion":
        return motion(bone(x, parents))
    raise ValueError(f"unknown modality {modality!r}; use one of {MODALITIES}")


def pad_vertices(x: np.ndarray, num_vertices: int, vertex_axis: int = -2) -> np.ndarray:
    """Append zero vertices along ``vertex_axis`` up to ``num_vertices``."""
    x = np.asarray(x, dtype=np.float32)
    missing = num_vertices - x.shape[vertex_axis]
    if missing < 0:
        raise ValueError(f"cannot pad {x.shape[vertex_axis]} vertices down to {num_vertices}")
    widths = [(0, 0)] * x.ndim
    widths[vertex_axis] = (0, missing)
    return np.pad(x, widths)


def pack_body(body: np.ndarray, num_persons: int = 2, channels: int = 3) -> np.ndarray:
    """Body joints ``(T, V, C)`` or ``(P, T, V, C)`` to a model tensor ``(C', T, V, num_persons)``.

    Keeps the first ``channels`` channels (x, y, z of the contract's x, y, z, score). Missing
    persons are zero, the convention NTU uses for a single-actor clip.
    """
    body = np.asarray(body, dtype=np.float32)
    if body.ndim == 3:
        body = body[None]
    if body.ndim != 4:
        raise ValueError(f"expected body (T, V, C) or (P, T, V, C), got {body.shape}")
    if body.shape[0] > num_persons:
        raise ValueError(f"{body.shape[0]} persons given, the model takes {num_persons}")
    _check_channels(body, channels)
    out = np.zeros((channels, body.shape[1], body.shape[2], num_persons), np.float32)
    out[..., : body.shape[0]] = body[..., :channels].transpose(3, 1, 2, 0)
    return out


def pack_hands(hands: np.ndarray, num_vertices: int, channels: int = 3) -> np.ndarray:
    """Hands ``(T, 2, 21, C)`` to a model tensor ``(C', T, num_vertices, 2)``.

    The 21 landmarks are padded with zero dummy vertices to the body's vertex count; a hand that
    is missing in a frame is already zeros in the skeleton contract.
    """
    hands = np.asarray(hands, dtype=np.float32)
    if hands.ndim != 4 or hands.shape[1:3] != (HAND_SLOTS, HAND21.num_joints):
        raise ValueError(f"expected hands (T, 2, {HAND21.num_joints}, C), got {hands.shape}")
    _check_channels(hands, channels)
    padded = pad_vertices(hands[..., :channels], num_vertices)
    return np.ascontiguousarray(padded.transpose(3, 0, 2, 1))


def hand_frame_mask(hand_present: np.ndarray) -> np.ndarray:
    """Per-frame hand validity ``(T,)`` in {0, 1}: 1 where at least one hand was detected.

    The reliability-aware fusion averages it over the window to weight the hand stream.
    """
    present = np.asarray(hand_present, dtype=bool)
    if present.ndim != 2 or present.shape[1] != HAND_SLOTS:
        raise ValueError(f"expected hand_present (T, 2), got {present.shape}")
    return present.any(axis=1).astype(np.float32)


def _check_channels(x: np.ndarray, channels: int) -> None:
    if not 1 <= channels <= x.shape[-1]:
        raise ValueError(f"cannot keep {channels} channels of an array with {x.shape[-1]}")
