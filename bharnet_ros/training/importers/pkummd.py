"""PKU-MMD (Kinect v2, untrimmed videos) -> :class:`SkeletonDataset` of labelled segments.

Input, as distributed:

* a skeleton file per video and view, e.g. ``0002-L.txt``: one line per frame with 150 values,
  two bodies x 25 joints x (x, y, z) in Kinect v2 order (= layout ntu25), world metres; a body
  that is absent in a frame is all zeros;
* a label file with the same name: one line per action instance, ``label,start,end,confidence``
  (label 1-based). Frames ``start`` to ``end - 1`` become one sample, named ``<video>_<k>``.
  A label file with a line that cannot be right (a NaN or fraction, a label outside 1..51 or the
  class names given, start >= end, a negative start) refuses its video, which is reported.

Kinect tracking states are not in these files, so a joint's score is 1 where its body is present
in the frame and 0 where not. The view letter becomes the camera id (L 1, M 2, R 3); subjects are
not encoded in the file names (-1). Timestamps are the frame index in the video / 30 fps. The
official split files (``cross_subject.txt``, ``cross_view.txt``) list the training videos after a
"training" heading and the test videos after a "validation"/"test" heading.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from bharnet_ros.core.stats import first_repeat
from bharnet_ros.training.dataset import UNKNOWN, DatasetError, Sample, SkeletonDataset
from bharnet_ros.training.importers import (
    LONG_TEXT_FILE_BYTES,
    ImportReport,
    Progress,
    check_fps,
    check_sample,
    no_progress,
    read_input_text,
)

FPS = 30.0  # PKU-MMD records at 30 fps (dataset page)
NUM_ACTIONS = 51  # PKU-MMD's action classes; the largest label accepted without class names
MAX_FRAME = 10_000_000  # a frame index past this (over 3 days at 30 fps) is a broken label file
VALUES_PER_FRAME = 150  # 2 bodies x 25 joints x 3
VIEW_CAMERAS = {"L": 1, "M": 2, "R": 3}
VIDEO_ID = re.compile(r"\d{4}-[LMR]", re.ASCII)
BENCHMARKS = ("xsub", "xview")
SPLIT_FILES = {
    "xsub": ("cross_subject.txt", "cross-subject.txt", "cross_subject_v2.txt"),
    "xview": ("cross_view.txt", "cross-view.txt", "cross_view_v2.txt"),
}


def read_video(
    skeleton_path: Path,
    label_path: Path,
    fps: float = FPS,
    num_classes: int = NUM_ACTIONS,
    report: ImportReport | None = None,
) -> list[Sample]:
    """The labelled segments of one video; empty or all-zero segments are left out (as skips in
    ``report``).

    A label file with a line that cannot be right (see :func:`read_labels`) refuses the whole
    video, so that it is reported rather than imported in part or with made-up labels.
    """
    frames = np.loadtxt(_data_lines(skeleton_path, "PKU-MMD skeleton file"), dtype=np.float32, ndmin=2)
    if frames.shape[1] != VALUES_PER_FRAME:
        raise DatasetError(f"{skeleton_path.name}: {frames.shape[1]} values per frame, expected 150")
    labels = read_labels(label_path, num_classes)
    _check_coverage(labels, len(frames), label_path)
    stem = skeleton_path.stem
    camera = VIEW_CAMERAS.get(stem[-1], UNKNOWN) if VIDEO_ID.fullmatch(stem) else UNKNOWN
    samples = []
    for k, (label, start, end) in enumerate(labels.tolist()):
        segment = frames[start : min(end, len(frames))]  # a segment past the video's end is cut there
        if len(segment) and np.any(segment):
            samples.append(
                check_sample(segment_sample(f"{stem}_{k}", label - 1, segment, start, camera, fps), "world")
            )
        elif report is not None:  # counted, so that a label file for another video does not pass
            where = "past the video's end" if not len(segment) else "where no body was recorded"
            report.skip(
                f"{stem}_{k}",
                "empty segment",
                f"label line {k + 1}: frames {start}..{end} lie {where} " f"({len(frames)} frames)",
            )
    return samples


def _check_coverage(labels: np.ndarray, frames: int, label_path: Path) -> None:
    """DatasetError for label lines that repeat, or that together cover more than twice the video:
    each line copies its frames, so a few KB of repeated lines took gigabytes."""
    rows = [tuple(row) for row in labels.tolist()]
    if (twice := first_repeat(rows)) is not None:
        raise DatasetError(f"{label_path.name}: action line {rows.index(twice) + 1} is given twice")
    covered = int(sum(max(0, min(end, frames) - start) for _, start, end in rows))
    if covered > 2 * frames:
        raise DatasetError(
            f"{label_path.name}: its action lines cover {covered} frames of a {frames}-frame video, "
            "more than twice over; they overlap where actions follow each other"
        )


def read_labels(path: Path, num_classes: int = NUM_ACTIONS) -> np.ndarray:
    """(K, 3) int64 ``label, start, end`` per action line, or DatasetError naming the bad line.

    Every value must be a whole number; the label within 1..``num_classes`` and the frames
    0 <= start < end <= :data:`MAX_FRAME`. Checked before any conversion to int, where a NaN or
    1e30 would silently become a garbage number.
    """
    values = np.loadtxt(_data_lines(path, "PKU-MMD label file"), delimiter=",", ndmin=2)
    if values.shape[1] < 3:
        raise DatasetError(f"{path.name}: expected lines 'label,start,end,confidence'")
    for k, row in enumerate(values[:, :3]):
        problem = _label_problem(row, num_classes)
        if problem:
            raise DatasetError(
                f"{path.name}: action line {k + 1} ({','.join(f'{v:g}' for v in row)}): {problem}"
            )
    return values[:, :3].astype(np.int64)


def _data_lines(path: Path, what: str) -> list[str]:
    """The non-blank lines of a text file of bounded size; DatasetError if there are none."""
    lines = [
        line
        for line in read_input_text(path, what, most_bytes=LONG_TEXT_FILE_BYTES).splitlines()
        if line.strip()
    ]
    if not lines:
        raise DatasetError(f"{path.name}: the {what} is empty")
    return lines


def _label_problem(row: np.ndarray, num_classes: int) -> str:
    """What is wrong with one ``label, start, end`` row, or "" if nothing."""
    label, start, end = row
    if not np.isfinite(row).all() or np.any(row != np.round(row)):
        return "label and frames must be whole numbers"
    if not 1 <= label <= num_classes:
        return f"label {label:g} outside 1..{num_classes} (pass --class-names for more classes)"
    if not 0 <= start < end <= MAX_FRAME:
        return f"frames must satisfy 0 <= start < end <= {MAX_FRAME}"
    return ""


def segment_sample(name: str, label: int, segment: np.ndarray, start: int, camera: int, fps: float) -> Sample:
    """(T, 150) rows -> a two-person sample; score 1 where the body is present in the frame. A
    body seen in the segment comes first: one stored in the second slot only left the first empty,
    and a one-person model (which reads the first slot) trained on zeros under the label."""
    t = len(segment)
    xyz = segment.reshape(t, 2, 25, 3).transpose(1, 0, 2, 3)  # (M, T, V, 3)
    if not np.any(xyz[0]) and np.any(xyz[1]):
        xyz = xyz[::-1]
    present = np.abs(xyz).sum(axis=(2, 3)) > 0  # (M, T)
    body = np.concatenate([xyz, np.broadcast_to(present[:, :, None, None], (2, t, 25, 1))], axis=-1)
    return Sample(
        name=name,
        label=label,
        body=body.astype(np.float32),
        hands=np.broadcast_to(np.zeros((), np.float32), (2, t, 2, 21, 4)),
        hand_present=np.broadcast_to(np.zeros((), bool), (2, t, 2)),
        timestamps=(start + np.arange(t)) / fps,
        persons=int(present.any(axis=1).sum()),
        camera=camera,
    )


def read_split_file(path: Path) -> tuple[set[str], set[str]]:
    """(training videos, test videos) from an official split file; test is empty if not listed."""
    train: set[str] = set()
    test: set[str] = set()
    current = train
    for line in read_input_text(path, "PKU-MMD split file").splitlines():
        lowered = line.lower()
        if "train" in lowered:
            current = train
        elif "valid" in lowered or "test" in lowered:
            current = test
        current.update(VIDEO_ID.findall(line))
    if not train:
        raise DatasetError(f"{path} lists no training videos (ids like 0002-L after a 'training' line)")
    return train, test


def import_pkummd(
    source: str | Path,
    labels: str | Path | None = None,
    benchmark: str | None = None,
    split_file: str | Path | None = None,
    class_names: list[str] | None = None,
    fps: float = FPS,
    progress: Progress = no_progress,
) -> tuple[SkeletonDataset, ImportReport]:
    """Import every video of a skeleton folder that has a label file.

    ``source`` is the skeleton folder (or a folder holding ``skeleton/``); ``labels`` defaults to
    a ``label`` folder beside or inside it. ``benchmark`` (xsub or xview) reads ``split_file``,
    by default the official file of that name found beside the folders. Without ``class_names``
    the classes are named ``action 1``... up to the largest label.
    """
    fps = check_fps(fps)
    if class_names is not None and not class_names:
        raise DatasetError("the class-name list is empty; give one name per line, in label order")
    report = ImportReport()
    skeleton_dir, label_dir = _folders(Path(source), labels)
    num_classes = len(class_names) if class_names else NUM_ACTIONS
    samples: list[Sample] = []
    for path in progress(_skeleton_files(skeleton_dir)):
        label_path = label_dir / path.name
        if not label_path.is_file():
            report.skip(path.stem, "no label file", str(label_path))
            continue
        try:
            samples.extend(read_video(path, label_path, fps, num_classes, report))
        except (DatasetError, ValueError, OSError) as err:
            report.skip(path.stem, "unreadable video", str(err))
    names = class_names or [f"action {k}" for k in range(1, max((s.label for s in samples), default=0) + 2)]
    splits = _splits(samples, benchmark, split_file, skeleton_dir) if benchmark else {}
    notes = _notes(fps)
    report.notes.extend(notes)
    dataset = SkeletonDataset.from_samples(samples, names, "ntu25", "world", splits=splits, notes=notes)
    return dataset, report


def _notes(fps: float) -> list[str]:
    return [
        "pkummd: PKU-MMD Kinect v2 skeletons, world metres; segments cut at label start..end-1",
        "pkummd: score = 1 where the body is present (the files carry no tracking state); no hands",
        f"pkummd: camera = view L/M/R -> 1/2/3; subject unknown; timestamps = video frame / {fps:g} fps",
    ]


def _folders(source: Path, labels: str | Path | None) -> tuple[Path, Path]:
    if not source.is_dir():
        raise FileNotFoundError(f"{source} is not a folder; give the PKU-MMD skeleton folder")
    skeleton_dir = _child(source, "skeleton") or source
    if not _skeleton_files(skeleton_dir):
        raise DatasetError(f"no skeleton .txt files in {skeleton_dir}")
    if labels is not None:
        label_dir = Path(labels)
        if not label_dir.is_dir():
            raise DatasetError(f"label folder {label_dir} not found; pass the folder of label .txt files")
    else:
        label_dir = _child(skeleton_dir.parent, "label") or _child(skeleton_dir, "label")
    if label_dir is None or not label_dir.is_dir():
        raise DatasetError(f"no label folder found next to {skeleton_dir}; pass it with --labels")
    return skeleton_dir, label_dir


def _skeleton_files(folder: Path) -> list[Path]:
    """The .txt files of a folder except the official split files."""
    split_names = {name for names in SPLIT_FILES.values() for name in names}
    return sorted(path for path in folder.glob("*.txt") if path.name not in split_names)


def _child(folder: Path, word: str) -> Path | None:
    """The first sub-folder whose name contains ``word`` (any case), e.g. Train_Label_PKU_final."""
    matches = sorted(p for p in folder.iterdir() if p.is_dir() and word in p.name.lower())
    return matches[0] if matches else None


def _splits(
    samples: list[Sample], benchmark: str, split_file: str | Path | None, skeleton_dir: Path
) -> dict[str, np.ndarray]:
    if benchmark not in BENCHMARKS:
        raise DatasetError(f"unknown PKU-MMD benchmark {benchmark!r}; use one of {', '.join(BENCHMARKS)}")
    path = Path(split_file) if split_file is not None else _find_split_file(benchmark, skeleton_dir)
    if not path.is_file():
        raise DatasetError(f"split file {path} not found; pass the official split file with --split-file")
    train, test = read_split_file(path)
    videos = np.array([s.name.rsplit("_", 1)[0] for s in samples])
    in_train = np.isin(videos, sorted(train))
    in_test = np.isin(videos, sorted(test)) if test else ~in_train
    return {
        f"{benchmark}_train": np.flatnonzero(in_train),
        f"{benchmark}_val": np.flatnonzero(in_test & ~in_train),
    }


def _find_split_file(benchmark: str, skeleton_dir: Path) -> Path:
    for folder in (skeleton_dir, skeleton_dir.parent):
        for name in SPLIT_FILES[benchmark]:
            if (folder / name).is_file():
                return folder / name
    names = " or ".join(SPLIT_FILES[benchmark])
    raise DatasetError(f"no {names} beside {skeleton_dir}; pass the official split file with --split-file")
