"""Training feeder: shapes, mirroring, synchronous crops, hand dropout and determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from bharnet_ros.core.layouts import MP33, NTU25
from bharnet_ros.core.preprocess import PreprocessConfig
from bharnet_ros.core.skeleton import SkeletonSequence
from bharnet_ros.training import synth
from bharnet_ros.training.dataset import SkeletonDataset
from bharnet_ros.training.feeder import (
    NO_AUGMENT,
    AugmentConfig,
    SkeletonFeeder,
    mirror_arrays,
    mirror_permutation,
)

T = 16


def synth_dataset(count: int = 4) -> SkeletonDataset:
    """A few synthetic gestures (mediapipe33, image space)."""
    names = ["wave", "thumbs_up", "clap", "pointing"]
    samples = [synth.generate_sample(names[i % 4], np.random.default_rng(i)) for i in range(count)]
    return SkeletonDataset.from_sequences(
        [s.sequence for s in samples], [s.label for s in samples], synth.CLASS_NAMES
    )


def only(**values: float) -> AugmentConfig:
    """An augmentation config with everything off except ``values``."""
    fields = {**NO_AUGMENT.to_dict(), **values}
    return AugmentConfig(**fields)


@pytest.fixture(scope="module")
def data() -> SkeletonDataset:
    return synth_dataset()


def test_item_shapes_and_types(data):
    config = PreprocessConfig(body_layout="ntu25", frames=T, num_persons=1)
    body, hand, mask, label = SkeletonFeeder(data, config, train=True)[0]
    assert body.shape == (3, T, 25, 1)
    assert hand.shape == (3, T, 25, 2)
    assert mask.shape == (T,)
    assert body.dtype == torch.float32
    assert label.dtype == torch.int64
    assert int(label) == data.labels[0]
    assert torch.all(hand[:, :, 21:] == 0)  # dummy vertices stay zero after augmentation


def test_mirror_permutation_swaps_sides_by_name():
    perm = mirror_permutation("mediapipe33")
    names = MP33.joint_names
    assert names[perm[MP33.index("left_wrist")]] == "right_wrist"
    assert names[perm[MP33.index("mouth_right")]] == "mouth_left"
    assert perm[MP33.index("nose")] == MP33.index("nose")
    assert np.array_equal(perm[perm], np.arange(len(names)))
    ntu = mirror_permutation("ntu25")
    assert NTU25.joint_names[ntu[NTU25.index("left_hand_tip")]] == "right_hand_tip"
    assert ntu[NTU25.index("spine_mid")] == NTU25.index("spine_mid")


def test_mirror_arrays_flips_observed_x_and_swaps_slots():
    body = np.zeros((1, 2, 33, 4), np.float32)
    body[0, :, MP33.index("left_wrist")] = (0.7, 0.5, 0.1, 1.0)
    hands = np.zeros((2, 2, 21, 4), np.float32)
    hands[:, 0] = (0.75, 0.4, 0.0, 1.0)
    present = np.array([[True, False], [True, False]])
    b, h, p = mirror_arrays(body, hands, present, "mediapipe33", "image")
    right = MP33.index("right_wrist")
    assert np.allclose(b[0, :, right], (0.3, 0.5, 0.1, 1.0))
    assert not b[0, :, MP33.index("left_wrist")].any()  # absent joints stay zero, not 1 - 0
    assert not b[0, :, MP33.index("nose")].any()
    assert np.allclose(h[:, 1], (0.25, 0.4, 0.0, 1.0))
    assert not h[:, 0].any()
    assert p.tolist() == [[False, True], [False, True]]
    world, _, _ = mirror_arrays(body, hands, present, "mediapipe33", "world")
    assert np.isclose(world[0, 0, right, 0], -0.7)


@pytest.mark.parametrize("layout", ["mediapipe33", "ntu25"])
def test_mirrored_item_swaps_hands_and_sides_and_negates_x(data, layout):
    """Same crop; mirroring negates normalised x, swaps the hand slots and the body sides."""
    config = PreprocessConfig(body_layout=layout, frames=T, num_persons=1)
    plain = SkeletonFeeder(data, config, train=True, augment=NO_AUGMENT, seed=3)
    mirrored = SkeletonFeeder(data, config, train=True, augment=only(mirror=1.0), seed=3)
    body, hand, mask, _ = (x.numpy() for x in plain[1])
    m_body, m_hand, m_mask, _ = (x.numpy() for x in mirrored[1])
    flip = np.array([-1.0, 1.0, 1.0])[:, None, None, None]
    perm = mirror_permutation(layout)
    assert np.allclose(m_body, flip * body[:, :, perm], atol=1e-5)
    assert np.allclose(m_hand, flip * hand[..., ::-1], atol=1e-5)
    assert np.array_equal(m_mask, mask)
    assert np.abs(body).sum() > 0
    assert np.abs(hand).sum() > 0


def ramp_dataset(frames: int = 60) -> SkeletonDataset:
    """One sequence whose body and hand x both encode the frame index."""
    t = np.arange(frames, dtype=np.float32)
    body = np.zeros((frames, 33, 4), np.float32)
    body[..., 0] = 0.3 + 0.004 * t[:, None]
    body[..., 1] = np.linspace(0.2, 0.8, 33)[None]
    body[..., 3] = 1.0
    hands = np.zeros((frames, 2, 21, 4), np.float32)
    hands[..., 0] = 0.5 + 0.004 * t[:, None, None]
    hands[..., 1] = 0.4
    hands[..., 3] = 1.0
    present = np.ones((frames, 2), bool)
    sequence = SkeletonSequence(t / 30.0, body, hands, present, layout="mediapipe33", space="image")
    return SkeletonDataset.from_sequences([sequence], [0], ["ramp"])


def test_crop_is_identical_for_body_and_hands():
    raw = PreprocessConfig(body_layout="mediapipe33", frames=T, num_persons=1, normalise=False)
    feeder = SkeletonFeeder(ramp_dataset(), raw, train=True, augment=NO_AUGMENT, seed=0)
    starts = set()
    for epoch in range(4):
        feeder.set_epoch(epoch)
        body, hand, mask, _ = feeder[0]
        body_x, hand_x = body[0, :, 0, 0].numpy(), hand[0, :, 0, 1].numpy()
        assert np.allclose(hand_x - body_x, 0.2, atol=1e-5)
        assert torch.all(mask == 1)
        starts.add(round(float(body_x[0]), 4))
    assert len(starts) > 1  # the random crop really moves
    centre = SkeletonFeeder(ramp_dataset(), raw, train=False)
    body, hand, _, _ = centre[0]
    assert np.allclose(hand[0, :, 0, 1] - body[0, :, 0, 0], 0.2, atol=1e-5)


def test_hand_dropout_zeroes_whole_hand_frames_and_clears_the_mask():
    config = PreprocessConfig(body_layout="mediapipe33", frames=T, num_persons=1)
    feeder = SkeletonFeeder(ramp_dataset(), config, train=True, augment=only(hand_dropout=1.0), seed=1)
    _, hand, mask, _ = feeder[0]
    observed = hand.abs().sum(dim=(0, 2)) > 0  # (T, 2) per slot
    assert not observed.all()
    assert torch.equal(mask.bool(), observed.any(dim=1))


def test_items_are_deterministic_per_seed_epoch_and_index(data):
    config = PreprocessConfig(body_layout="ntu25", frames=T, num_persons=1)
    first = SkeletonFeeder(data, config, train=True, seed=7)
    again = SkeletonFeeder(data, config, train=True, seed=7)
    for a, b in zip(first[2], again[2], strict=True):
        assert torch.equal(a, b)
    again.set_epoch(1)
    assert not torch.equal(first[2][1], again[2][1])
    eval_feeder = SkeletonFeeder(data, config, train=False, seed=7)
    eval_feeder.set_epoch(5)
    assert torch.equal(eval_feeder[0][0], SkeletonFeeder(data, config)[0][0])


def test_items_do_not_depend_on_the_number_of_workers(data):
    config = PreprocessConfig(body_layout="ntu25", frames=T, num_persons=1)
    feeder = SkeletonFeeder(data, config, train=True, seed=2)
    feeder.set_epoch(3)
    single = next(iter(DataLoader(feeder, batch_size=4, num_workers=0)))
    multi = next(iter(DataLoader(feeder, batch_size=4, num_workers=2)))
    for a, b in zip(single, multi, strict=True):
        assert torch.equal(a, b)


def test_bad_augment_config_is_an_error():
    with pytest.raises(ValueError, match="unknown keys"):
        AugmentConfig.from_dict({"mirorr": 0.5})
    with pytest.raises(ValueError, match="probability"):
        AugmentConfig(mirror=1.5)
