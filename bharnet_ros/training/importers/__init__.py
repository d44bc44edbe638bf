"""Importers: public skeleton datasets in their own formats -> one :class:`SkeletonDataset`.

Each importer returns the dataset and an :class:`ImportReport` (what was skipped and why, and
the assumptions made), so that ``bharnet import`` can print an honest summary. None of them
needs the network; all read local copies of the datasets.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bharnet_ros.training.dataset import DatasetError, Sample

# Wraps the list of files an importer walks through, e.g. with a tqdm progress bar.
Progress = Callable[[list[Any]], Iterable[Any]]


def no_progress(items: list[Any]) -> Iterable[Any]:
    """The default :data:`Progress`: iterate silently."""
    return items


@dataclass
class ImportReport:
    """Items an importer left out (with a short reason and a detail) and notes on its assumptions."""

    skipped: list[tuple[str, str, str]] = field(default_factory=list)  # (item, reason, detail)
    notes: list[str] = field(default_factory=list)

    def skip(self, item: str, reason: str, detail: str = "") -> None:
        self.skipped.append((item, reason, detail))

    def reasons(self) -> Counter[str]:
        """How many items were skipped for each reason."""
        return Counter(reason for _, reason, _ in self.skipped)


def require_finite(sample: Sample) -> Sample:
    """``sample`` unchanged, or DatasetError naming it and its first bad frame.

    Importers call this per file, so one file with a NaN or infinite coordinate or time is
    skipped and reported by name instead of failing the whole import when the dataset is built.
    """
    bad = ~np.isfinite(sample.timestamps)
    for values in (sample.body, sample.hands):
        bad |= ~np.isfinite(values).all(axis=tuple(i for i in range(values.ndim) if i != 1))
    if bad.any():
        frame = int(np.flatnonzero(bad)[0])
        raise DatasetError(
            f"{sample.name}: NaN or infinite values in {int(bad.sum())} frame(s), the first at frame "
            f"{frame}; fix or remove the file"
        )
    return sample
