"""Importers: public skeleton datasets in their own formats -> one :class:`SkeletonDataset`.

Each importer returns the dataset and an :class:`ImportReport` (what was skipped and why, and
the assumptions made), so that ``bharnet import`` can print an honest summary. None of them
needs the network; all read local copies of the datasets.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bharnet_ros.core.skeleton import TIME_LIMIT, SkeletonError, check_plausible
from bharnet_ros.core.text_files import read_regular_file
from bharnet_ros.training.dataset import DatasetError, Sample

# Wraps the list of files an importer walks through, e.g. with a tqdm progress bar.
Progress = Callable[[list[Any]], Iterable[Any]]
MAX_FPS = 1000.0  # no skeleton source records faster; a larger --fps is a typo
MIN_FPS = 0.1  # one frame per 10 s: no skeleton source records slower; a smaller --fps is a typo
# The largest text file (.skeleton, .json) read whole; real ones are at most a few MB. Bounds the
# memory a wrong or hostile file can take before its content is checked: parsing takes about 26
# times the text (one Python object per number), so 64 MiB of "10 " took 1.6 GB.
MAX_TEXT_FILE_BYTES = 16 << 20
LONG_TEXT_FILE_BYTES = 32 << 20  # a PKU-MMD skeleton file: a whole video of up to ~10 000 frames


def files_below(root: Path, suffixes: Iterable[str], report: ImportReport | None = None) -> list[Path]:
    """The files of those suffixes (any case) anywhere below ``root``, sorted, through linked
    folders (each read once: a link loop ends; ``Path.rglob`` passed linked folders over without a
    word). Hidden files and folders (``.x``, macOS's ``__MACOSX`` and ``._x`` copies) are passed
    over, and files of those suffixes that are no regular file (a FIFO, a link to a device) are
    listed in ``report``, not dropped unseen."""
    wanted = {suffix.lower() for suffix in suffixes}
    found, seen = [], set()
    for folder, subfolders, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            subfolders[:] = []
            continue
        seen.add(real)
        subfolders[:] = sorted(d for d in subfolders if not hidden(d))
        for name in files:
            path = Path(folder) / name
            if hidden(name) or path.suffix.lower() not in wanted:
                continue
            if path.is_file():
                found.append(path)
            elif report is not None:
                report.skip(str(path), "not a regular file", "a pipe, a device or a broken link")
    return sorted(found)


def hidden(name: str) -> bool:
    """A hidden file or folder, or macOS's archive leftovers."""
    return name.startswith(".") or name == "__MACOSX"


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


def check_fps(fps: float) -> float:
    """``fps`` if it is a usable frame rate (from :data:`MIN_FPS` to :data:`MAX_FPS`), else
    DatasetError; a zero, negative or NaN rate would make every timestamp wrong."""
    if not (math.isfinite(fps) and MIN_FPS <= fps <= MAX_FPS):
        raise DatasetError(f"--fps {fps} is not a frame rate; give a number from {MIN_FPS:g} to {MAX_FPS:g}")
    return float(fps)


def read_input_text(
    path: Path, what: str, encoding: str = "utf-8", errors: str = "replace", most_bytes: int | None = None
) -> str:
    """The text of one input file; DatasetError, unread, when it is larger than ``most_bytes``
    (:data:`MAX_TEXT_FILE_BYTES` by default), and OSError when it is no regular file (a FIFO found
    among the samples would wait for a writer forever, a link to /dev/zero fill the memory)."""
    most = most_bytes or MAX_TEXT_FILE_BYTES
    size = path.stat().st_size
    if size > most:
        raise DatasetError(
            f"{path.name}: {size} bytes, more than the {most >> 20} MiB a {what} holds; is it the right file?"
        )
    return read_regular_file(path, most).decode(encoding, errors)


def check_sample(sample: Sample, space: str) -> Sample:
    """``sample`` unchanged, or DatasetError if it has no frame, nobody in any frame (as the other
    importers skip a clip without a person), a NaN or infinite value, or a value
    training would refuse: coordinates beyond the skeleton contract's limits in ``space``, scores
    outside [0, 1], timestamps beyond :data:`~bharnet_ros.core.skeleton.TIME_LIMIT`.

    The file importers pass each sample through here (videos go through the pose stage, which
    keeps the contract), so an empty or damaged file is skipped and reported by name instead of
    being written into the dataset, failing the whole import, or failing every training later.
    """
    if sample.num_frames == 0:
        raise DatasetError(f"{sample.name}: no frames; a sample needs at least one")
    require_finite(sample)
    if not sample.body.any() and not sample.hand_present.any():  # a label on nobody teaches nothing
        raise DatasetError(f"{sample.name}: nobody in any frame (no body joint, no hand); no person found")
    try:
        check_plausible(sample.body, sample.hands, space)
    except SkeletonError as err:
        raise DatasetError(f"{sample.name}: {err}; fix or remove the file") from None
    if np.abs(sample.timestamps).max(initial=0.0) > TIME_LIMIT:
        raise DatasetError(f"{sample.name}: timestamps beyond ±{TIME_LIMIT:g} s; fix or remove the file")
    return sample


def require_finite(sample: Sample) -> None:
    """DatasetError naming ``sample`` and its first frame with a NaN or infinite coordinate or time
    (:func:`check_sample`'s first test)."""
    bad = ~np.isfinite(sample.timestamps)
    for values in (sample.body, sample.hands):
        bad |= ~np.isfinite(values).all(axis=tuple(i for i in range(values.ndim) if i != 1))
    if bad.any():
        frame = int(np.flatnonzero(bad)[0])
        raise DatasetError(
            f"{sample.name}: NaN or infinite values in {int(bad.sum())} frame(s), the first at frame "
            f"{frame}; fix or remove the file"
        )
