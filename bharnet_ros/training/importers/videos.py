"""Your own videos -> a dataset, through the live pose stage.

Two layouts are read:

* ``DIR/<class>/<video>``: one sub-folder per class (no ``pattern``);
* with a file-name ``pattern`` such as ``"{label}_{take}_{distance}_{framing}"``: videos anywhere
  under ``DIR`` (typically ``DIR/<person>/<video>``), the class taken from the ``{label}`` field of
  the file name. The person is the ``{subject}`` field when the pattern has one, else the
  ``subject`` argument, else the first folder below ``DIR``.

Every other field of the pattern is kept as a sample attribute (e.g. ``distance``), together with
``subject``, ``fps`` (the video's frame rate) and ``source`` (the folder name of ``DIR``), so
evaluations can report per person and per condition. Every video goes through the same MediaPipe
pose stage (``core.pose``) as the ROS node, so training and deployment see the same skeletons.
``jobs`` > 1 runs that many pose-stage processes side by side. Skeleton files that
``bharnet extract`` wrote (``.npz``) are read in place of videos, so one extraction can be
imported with different patterns without running MediaPipe again.
"""

from __future__ import annotations

import multiprocessing
import re
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bharnet_ros.core.pose import PoseEstimator
from bharnet_ros.core.skeleton import SkeletonError, SkeletonFrame, SkeletonSequence
from bharnet_ros.core.video import VideoError, VideoReader, is_video_file, list_videos
from bharnet_ros.training.dataset import DatasetError, SkeletonDataset
from bharnet_ros.training.importers import ImportReport, Progress, no_progress

FIELD = re.compile(r"\{([a-z][a-z0-9_]*)\}")


class PatternError(ValueError):
    """A file-name pattern that cannot be used; the message says why."""


@dataclass(frozen=True)
class VideoJob:
    """One video to import: its class name, sample name and attributes."""

    path: Path
    label: str
    name: str
    attributes: dict[str, str] = field(default_factory=dict)


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """A ``{field}`` pattern as a regex over file stems; ``{label}`` is required, fields unique."""
    names = FIELD.findall(pattern)
    if "label" not in names:
        raise PatternError(f"--pattern {pattern!r} needs a {{label}} field, e.g. '{{label}}_{{take}}'")
    if len(set(names)) != len(names):
        raise PatternError(f"--pattern {pattern!r} names a field twice")
    parts, last = [], 0
    for match in FIELD.finditer(pattern):
        parts.append(re.escape(pattern[last : match.start()]))
        parts.append(f"(?P<{match.group(1)}>.+?)")
        last = match.end()
    parts.append(re.escape(pattern[last:]))
    return re.compile("^" + "".join(parts) + "$")


def find_jobs(root: Path, pattern: str | None, subject: str | None, report: ImportReport) -> list[VideoJob]:
    """The videos to import, in a stable order, with labels and attributes."""
    if pattern is None:
        return _class_folder_jobs(root, subject)
    regex = compile_pattern(pattern)
    jobs = []
    for video in _videos_below(root):
        match = regex.match(video.stem)
        if match is None:
            report.skip(str(video), "name does not match --pattern", pattern)
            continue
        fields = match.groupdict()
        person = fields.pop("subject", None) or subject or _first_folder(root, video)
        label = fields.pop("label")
        attributes = {"subject": person, **fields} if person else dict(fields)
        name = f"{person}/{video.stem}" if person else video.stem
        jobs.append(VideoJob(video, label, name, attributes))
    return jobs


def _class_folder_jobs(root: Path, subject: str | None) -> list[VideoJob]:
    attributes = {"subject": subject} if subject else {}
    return [
        VideoJob(video, folder.name, f"{folder.name}/{video.name}", dict(attributes))
        for folder in sorted(d for d in root.iterdir() if d.is_dir())
        for video in list_videos(folder) + sorted(p for p in folder.iterdir() if _is_skeleton_file(p))
    ]


def _videos_below(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if is_video_file(p) or _is_skeleton_file(p))


def _is_skeleton_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() == ".npz"


def _first_folder(root: Path, video: Path) -> str:
    parts = video.relative_to(root).parts
    return parts[0] if len(parts) > 1 else ""


def import_videos(
    root: str | Path,
    backend: str = "holistic",
    progress: Progress = no_progress,
    pattern: str | None = None,
    subject: str | None = None,
    jobs: int = 1,
) -> tuple[SkeletonDataset, ImportReport]:
    """One sample per video (see the module docstring); classes in sorted order."""
    root = Path(root)
    report = ImportReport(notes=[f"videos: pose stage MediaPipe {backend}, model_complexity 1"])
    todo = find_jobs(root, pattern, subject, report)
    outcomes = _extract_all(todo, backend, jobs)
    kept = []
    for job in progress(todo):
        outcome = next(outcomes)
        if isinstance(outcome, str):
            report.skip(str(job.path), *outcome.split(": ", 1))
        else:
            kept.append((job, outcome))
    if not kept:
        reasons = ", ".join(f"{n} {reason}" for reason, n in report.reasons().items()) or "no videos"
        raise DatasetError(f"no usable video under {root} ({reasons})")
    class_names = sorted({job.label for job, _ in kept})
    source = root.resolve().name
    dataset = SkeletonDataset.from_sequences(
        [sequence for _, (sequence, _) in kept],
        [class_names.index(job.label) for job, _ in kept],
        class_names,
        names=[job.name for job, _ in kept],
        notes=report.notes,
        attributes=[{**job.attributes, "fps": f"{fps:g}", "source": source} for job, (_, fps) in kept],
    )
    return dataset, report


Outcome = tuple[SkeletonSequence, float] | str  # (sequence, fps) or "reason: detail"


def _extract_all(todo: list[VideoJob], backend: str, jobs: int) -> Iterator[Outcome]:
    """Outcomes in the order of ``todo``; with ``jobs`` > 1 from a pool of pose-stage processes."""
    paths = [job.path for job in todo]
    if jobs <= 1 or len(paths) <= 1:
        yield from (extract_video(path, backend) for path in paths)
        return
    context = multiprocessing.get_context("spawn")  # MediaPipe graphs must not cross a fork
    with ProcessPoolExecutor(min(jobs, len(paths)), mp_context=context) as pool:
        yield from pool.map(extract_video, paths, [backend] * len(paths))


def extract_video(video: Path, backend: str) -> Outcome:
    """The video's skeleton sequence and frame rate, or the reason it cannot be used."""
    if _is_skeleton_file(video):
        return read_skeleton_file(video)
    frames: list[SkeletonFrame] = []
    try:
        with VideoReader(video) as reader, PoseEstimator(backend=backend) as estimator:
            fps = reader.info.fps
            frames = [estimator.estimate(image, t) for t, image in reader]
    except VideoError as err:
        return f"unreadable video: {err}"
    if not any(f.body_present for f in frames):
        return "no person found: "
    return SkeletonSequence.from_frames(frames), fps


def read_skeleton_file(path: Path) -> Outcome:
    """A sequence written by ``bharnet extract``, with the frame rate its timestamps show."""
    try:
        sequence = SkeletonSequence.load(path)
    except (SkeletonError, ValueError, KeyError, OSError) as err:
        return f"unreadable skeleton file: {err}"
    if not sequence.body.any():
        return "no person found: "
    steps = np.diff(sequence.timestamps)
    steps = steps[steps > 0]
    return sequence, float(1.0 / np.median(steps)) if len(steps) else 0.0
