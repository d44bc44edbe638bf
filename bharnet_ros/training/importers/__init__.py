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
