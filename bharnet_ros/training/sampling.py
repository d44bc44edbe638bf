"""Class-balanced training epochs.

The default model's data is lopsided: 120 clips per sign from the four signers, 30 per synthetic
hand shape, and 15 per HRI gesture once a person is held out. A plain shuffle shows the signs eight
times as often as the robot commands the model is mostly for. ``data.class_balance`` evens this
out without making epochs longer:

* ``0``: every sample once per epoch, classes as often as the data has them (a plain shuffle);
* ``1``: every class equally often;
* between: classes drawn in proportion to ``count ** (1 - class_balance)`` (``0.5``: by the square
  root of their counts).

An epoch keeps the dataset's length. Within a class, samples are drawn without replacement, cycling
through fresh permutations, so a rare class repeats its samples and a common one shows a different
subset each epoch. Like ``DistributedSampler``, every process takes its own shard of the same order.

A sample's k-th draw in an epoch is yielded as ``index + k * N`` (N samples): the feeder reads
sample ``index % N`` and seeds its crop and augmentation from the whole number, so a repeat is
augmented afresh instead of being the same input again (first draws keep their seeds).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


def class_quotas(
    counts: np.ndarray, total: int, balance: float, rng: np.random.Generator | None = None
) -> np.ndarray:
    """How many draws each class gets in an epoch of ``total`` samples (sums to ``total``).

    The draws left over after rounding go to the largest remainders; ties are broken by ``rng``
    (each epoch its own), so that over epochs tied classes get them equally often."""
    weights = np.where(counts > 0, counts.astype(np.float64) ** (1.0 - balance), 0.0)
    share = weights / weights.sum() * total
    quotas = np.floor(share).astype(np.int64)
    remainder = total - int(quotas.sum())
    ties = rng.random(len(counts)) if rng is not None else np.zeros(len(counts))
    order = np.lexsort((ties, -np.round(share - quotas, 9)))  # largest remainders first
    quotas[order[:remainder]] += 1
    return quotas


def draw_from_class(members: np.ndarray, quota: int, rng: np.random.Generator) -> np.ndarray:
    """``quota`` of ``members``: whole permutations, then part of one more."""
    rounds = -(-quota // len(members))
    return np.concatenate([rng.permutation(members) for _ in range(rounds)])[:quota]


class ClassBalancedSampler(Sampler[int]):
    """Shuffled sample indices with classes evened out by ``balance`` (module docstring)."""

    def __init__(
        self,
        labels: Sequence[int] | np.ndarray,
        balance: float,
        num_replicas: int = 1,
        rank: int = 0,
        seed: int = 0,
    ) -> None:
        if not 0.0 <= balance <= 1.0:
            raise ValueError(f"class_balance must be in [0, 1], got {balance!r}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is outside 0..{num_replicas - 1}")
        self.labels = np.asarray(labels, np.int64)
        self.balance = float(balance)
        self.num_replicas = num_replicas
        self.rank = rank
        self.seed = seed
        self.epoch = 0
        self.num_samples = len(self.labels) // num_replicas  # like DistributedSampler(drop_last=True)

    def set_epoch(self, epoch: int) -> None:
        """Reseed for ``epoch``, so every process draws the same order."""
        self.epoch = epoch

    def rng(self) -> np.random.Generator:
        """The epoch's generator, a stream of its own: ``[seed, epoch]`` is the feeder's
        ``[seed, epoch, 0]`` (numpy pads with zeros), so draw 0 was augmented with the sampler's
        tie-break numbers."""
        return np.random.default_rng(np.random.SeedSequence([self.seed, self.epoch], spawn_key=(1,)))

    def epoch_order(self) -> np.ndarray:
        """The whole epoch's indices, before sharding."""
        if not len(self.labels):
            return self.labels
        rng = self.rng()
        classes, inverse = np.unique(self.labels, return_inverse=True)
        counts = np.bincount(inverse, minlength=len(classes))
        quotas = class_quotas(counts, len(self.labels), self.balance, rng)
        members = [np.flatnonzero(inverse == k) for k in range(len(classes))]
        parts = [draw_from_class(m, int(q), rng) for m, q in zip(members, quotas, strict=True) if q]
        return rng.permutation(np.concatenate(parts))

    def __iter__(self) -> Iterator[int]:
        order = with_repeats(self.epoch_order(), len(self.labels))[: self.num_samples * self.num_replicas]
        return iter(order[self.rank :: self.num_replicas].tolist())

    def __len__(self) -> int:
        return self.num_samples


def with_repeats(order: np.ndarray, samples: int) -> np.ndarray:
    """``order`` with each index's k-th occurrence as ``index + k * samples`` (module docstring)."""
    seen: dict[int, int] = {}
    draws = np.empty_like(order)
    for position, index in enumerate(order.tolist()):
        repeat = seen[index] = seen.get(index, -1) + 1
        draws[position] = index + repeat * samples
    return draws
