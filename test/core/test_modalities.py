"""Modalities and packing on small hand-made arrays."""

from __future__ import annotations

import numpy as np
import pytest

from bharnet_ros.core.layouts import HAND21, NTU25
from bharnet_ros.core.modalities import (
    bone,
    hand_frame_mask,
    hand_parents,
    motion,
    pack_body,
    pack_hands,
    pad_vertices,
    padded_parents,
    to_modality,
)


def packed(values: np.ndarray) -> np.ndarray:
    """(T, V) scalar values to a packed (C=1, T, V, M=1) array."""
    return values[None, :, :, None].astype(np.float32)


def test_bone_subtracts_parent_and_root_is_zero():
    # chain 0 <- 1 <- 2, one frame, one channel
    x = packed(np.array([[1.0, 4.0, 9.0]]))
    out = bone(x, parents=(0, 0, 1))
    np.testing.assert_array_equal(out[0, 0, :, 0], [0.0, 3.0, 5.0])


def test_bone_on_ntu_layout_matches_parent_table():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4, 25, 2)).astype(np.float32)
    out = bone(x, NTU25.parents)
    assert np.all(out[:, :, NTU25.root] == 0)
    for child, parent in NTU25.edges:
        np.testing.assert_allclose(out[:, :, child], x[:, :, child] - x[:, :, parent])


def test_motion_is_next_minus_current_with_zero_last_frame():
    x = packed(np.array([[0.0, 1.0], [2.0, 1.0], [7.0, -1.0]]))
    out = motion(x)
    np.testing.assert_array_equal(out[0, :, :, 0], [[2.0, 0.0], [5.0, -2.0], [0.0, 0.0]])


def test_modalities_work_on_batches_and_compose():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 3, 5, 25, 2)).astype(np.float32)
    np.testing.assert_array_equal(to_modality(x, "joint", NTU25.parents), x)
    np.testing.assert_allclose(to_modality(x, "joint_motion", NTU25.parents), motion(x))
    np.testing.assert_allclose(to_modality(x, "bone_motion", NTU25.parents), motion(bone(x, NTU25.parents)))
    assert to_modality(x, "bone", NTU25.parents).shape == x.shape


def test_unknown_modality_and_wrong_parent_count_raise():
    x = np.zeros((3, 2, 25, 1), np.float32)
    with pytest.raises(ValueError, match="unknown modality"):
        to_modality(x, "velocity", NTU25.parents)
    with pytest.raises(ValueError, match="vertices"):
        bone(x, HAND21.parents)


def test_padded_hand_parents_make_dummies_their_own_parents():
    parents = hand_parents(25)
    assert parents[:21] == HAND21.parents
    assert parents[21:] == (21, 22, 23, 24)
    with pytest.raises(ValueError):
        padded_parents(NTU25.parents, 10)


def test_dummy_vertices_have_zero_bones():
    hands = np.random.default_rng(2).normal(size=(6, 2, 21, 4)).astype(np.float32)
    x = pack_hands(hands, 25)
    x[:, :, 21:] = 5.0  # even non-zero dummies give zero bones: they are their own parents
    assert np.all(bone(x, hand_parents(25))[:, :, 21:] == 0)


def test_pad_vertices_appends_zeros():
    x = np.ones((2, 21, 3), np.float32)
    out = pad_vertices(x, 25)
    assert out.shape == (2, 25, 3)
    assert np.all(out[:, 21:] == 0)
    assert np.all(out[:, :21] == 1)


def test_pack_single_person_body_zero_fills_second_person():
    t, v = 5, 25
    body = np.arange(t * v * 4, dtype=np.float32).reshape(t, v, 4)
    out = pack_body(body, num_persons=2)
    assert out.shape == (3, t, v, 2)
    np.testing.assert_array_equal(out[..., 0], body[..., :3].transpose(2, 0, 1))
    assert np.all(out[..., 1] == 0)


def test_pack_two_persons_keeps_order_and_rejects_too_many():
    body = np.stack([np.full((4, 25, 4), 1.0), np.full((4, 25, 4), 2.0)])
    out = pack_body(body, num_persons=2)
    assert np.all(out[..., 0] == 1)
    assert np.all(out[..., 1] == 2)
    assert pack_body(body[0], num_persons=1).shape == (3, 4, 25, 1)
    with pytest.raises(ValueError, match="persons"):
        pack_body(body, num_persons=1)


def test_pack_hands_puts_left_in_slot_zero_and_pads_to_body_vertices():
    hands = np.zeros((3, 2, 21, 4), np.float32)
    hands[:, 0, :, 0] = 1.0  # left hand x
    hands[:, 1, :, 0] = 2.0  # right hand x
    hands[..., 3] = 0.9  # scores are dropped
    out = pack_hands(hands, num_vertices=33)
    assert out.shape == (3, 3, 33, 2)
    assert np.all(out[0, :, :21, 0] == 1)
    assert np.all(out[0, :, :21, 1] == 2)
    assert np.all(out[:, :, 21:] == 0)
    assert np.all(out[1:] == 0)
    with pytest.raises(ValueError):
        pack_hands(np.zeros((3, 2, 20, 4)), 25)


def test_hand_frame_mask_is_any_hand_per_frame():
    present = np.array([[False, False], [True, False], [False, True], [True, True]])
    np.testing.assert_array_equal(hand_frame_mask(present), [0, 1, 1, 1])
