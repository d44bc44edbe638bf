"""Class-balanced epochs: quotas by class, every process its own shard of one order."""

from __future__ import annotations

import numpy as np
import pytest
from torch.utils.data import DistributedSampler

from bharnet_ros.training.sampling import ClassBalancedSampler, class_quotas
from bharnet_ros.training.train import Dist, training_sampler

# Lopsided like the default model's data: one class eight times as common as the others.
LABELS = np.array([0] * 120 + [1] * 15 + [2] * 15)


class LabelsOnly(list):
    """What a sampler reads of a feeder: its length and its labels."""

    labels = LABELS

    def __init__(self) -> None:
        super().__init__(LABELS.tolist())


def drawn_counts(sampler: ClassBalancedSampler) -> np.ndarray:
    return np.bincount(LABELS[np.array(list(sampler)) % len(LABELS)], minlength=3)


@pytest.mark.parametrize(
    ("balance", "expected"),
    [(0.0, [120, 15, 15]), (1.0, [50, 50, 50]), (0.5, [88, 31, 31])],
)
def test_quotas_move_from_the_data_counts_to_equal_shares(balance, expected):
    quotas = class_quotas(np.array([120, 15, 15]), 150, balance)
    assert quotas.tolist() == expected
    assert quotas.sum() == 150


def test_a_class_without_samples_gets_no_draws():
    assert class_quotas(np.array([10, 0, 5]), 15, 1.0).tolist() == [8, 0, 7]


def test_full_balance_draws_every_class_equally_and_keeps_the_epoch_length():
    sampler = ClassBalancedSampler(LABELS, 1.0, seed=3)
    assert len(sampler) == len(LABELS)
    assert drawn_counts(sampler).tolist() == [50, 50, 50]


def test_rare_classes_repeat_every_sample_about_equally():
    order = ClassBalancedSampler(LABELS, 1.0).epoch_order()
    repeats = np.bincount(order[LABELS[order] == 1] - 120, minlength=15)
    assert set(repeats.tolist()) == {3, 4}  # 50 draws of 15 samples: whole permutations, then part


def test_common_classes_show_a_different_subset_each_epoch():
    sampler = ClassBalancedSampler(LABELS, 1.0, seed=0)
    first = set(sampler.epoch_order()[LABELS[sampler.epoch_order()] == 0].tolist())
    sampler.set_epoch(1)
    second = set(sampler.epoch_order()[LABELS[sampler.epoch_order()] == 0].tolist())
    assert len(first) == len(second) == 50
    assert first != second


def test_the_order_is_shuffled_and_reproducible_per_seed_and_epoch():
    a, b = ClassBalancedSampler(LABELS, 0.5, seed=1), ClassBalancedSampler(LABELS, 0.5, seed=1)
    assert list(a) == list(b)
    assert list(a) != sorted(a)
    assert list(a) != list(ClassBalancedSampler(LABELS, 0.5, seed=2))


def test_processes_take_disjoint_shards_of_one_order():
    shards = [list(ClassBalancedSampler(LABELS, 1.0, num_replicas=4, rank=r, seed=5)) for r in range(4)]
    whole = list(ClassBalancedSampler(LABELS, 1.0, seed=5))
    assert all(len(shard) == len(LABELS) // 4 for shard in shards)
    assert sorted(np.concatenate(shards).tolist()) == sorted(whole[: 4 * (len(LABELS) // 4)])


def test_a_repeated_sample_is_drawn_as_its_own_item():
    """The feeder seeded an item from (seed, epoch, index): a sample the balanced sampler drew four
    times in an epoch came out as one input, four times."""
    labels = [0] * 8 + [1]  # the one sample of class 1 is drawn about four times an epoch
    draws = list(ClassBalancedSampler(labels, 1.0, seed=2))
    repeats = sorted(d for d in draws if d % len(labels) == 8)
    assert len(repeats) > 1
    assert repeats == [8 + k * len(labels) for k in range(len(repeats))]
    others = [d for d in draws if d % len(labels) != 8]
    assert len(set(others)) == len(others)


def test_the_order_draws_from_no_stream_an_item_s_augmentation_draws_from():
    """numpy pads a seed list with zeros: the sampler's [seed, epoch] was the feeder's
    [seed, epoch, 0], so draw 0 was augmented with the sampler's own tie-break numbers."""
    from bharnet_ros.training.feeder import SkeletonFeeder

    sampler = ClassBalancedSampler(LABELS.tolist(), 1.0, seed=0)
    sampler.set_epoch(3)
    feeder = SkeletonFeeder.__new__(SkeletonFeeder)  # only its seeding is used here
    feeder.seed, feeder.epoch = 0, 3
    ours = sampler.rng().random(8)
    assert all(not np.allclose(feeder.rng(draw).random(8), ours) for draw in range(len(LABELS)))


def test_an_empty_dataset_yields_nothing():
    assert list(ClassBalancedSampler([], 1.0)) == []


@pytest.mark.parametrize(("balance", "rank", "message"), [(1.5, 0, "class_balance"), (0.5, 2, "rank 2")])
def test_bad_settings_are_refused(balance, rank, message):
    with pytest.raises(ValueError, match=message):
        ClassBalancedSampler(LABELS, balance, num_replicas=2, rank=rank)


@pytest.mark.parametrize(("balance", "kind"), [(0.0, DistributedSampler), (0.5, ClassBalancedSampler)])
def test_training_picks_the_balanced_sampler_only_when_asked(balance, kind):
    config = {"seed": 0, "data": {"class_balance": balance}}
    sampler = training_sampler(config, Dist(), LabelsOnly())
    assert isinstance(sampler, kind)


def test_tied_classes_share_the_draws_left_over_across_epochs():
    """10 draws over 3 classes: the tenth went to the first class every epoch."""
    labels = [0] * 2 + [1] * 3 + [2] * 5
    sampler = ClassBalancedSampler(labels, 1.0)
    draws = np.zeros(3)
    for epoch in range(300):
        sampler.set_epoch(epoch)
        draws += np.bincount(np.asarray(labels)[np.array(list(sampler)) % len(labels)], minlength=3)
    assert np.allclose(draws / 300, 10 / 3, atol=0.15)
