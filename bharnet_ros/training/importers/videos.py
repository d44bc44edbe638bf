"""Videos sorted into one sub-folder per class -> a dataset, through the live pose stage.

This is how a user trains on their own recordings: ``DIR/<class>/<video>``. Every video goes
through the same MediaPipe pose stage (``core.pose``) as the ROS node, so training and deployment
see the same skeletons.
"""

from __future__ import annotations

from pathlib import Path

from bharnet_ros.core.pose import PoseEstimator
from bharnet_ros.core.skeleton import SkeletonFrame, SkeletonSequence
from bharnet_ros.core.video import VideoError, VideoReader, list_videos
from bharnet_ros.training.dataset import DatasetError, SkeletonDataset
from bharnet_ros.training.importers import ImportReport, Progress, no_progress


def import_videos(
    root: str | Path, backend: str = "holistic", progress: Progress = no_progress
) -> tuple[SkeletonDataset, ImportReport]:
    """One sample per video; classes are the sub-folder names, in sorted order."""
    root = Path(root)
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and list_videos(d))
    report = ImportReport(notes=[f"videos: pose stage MediaPipe {backend}, model_complexity 1"])
    sequences, labels, names = [], [], []
    jobs = [(label, video) for label, d in enumerate(class_dirs) for video in list_videos(d)]
    for label, video in progress(jobs):
        sequence = _extract(video, backend, report)
        if sequence is not None:
            sequences.append(sequence)
            labels.append(label)
            names.append(f"{class_dirs[label].name}/{video.name}")
    if not sequences:
        reasons = ", ".join(f"{n} {reason}" for reason, n in report.reasons().items()) or "no videos"
        raise DatasetError(f"no usable video under {root}/<class>/ ({reasons})")
    dataset = SkeletonDataset.from_sequences(
        sequences, labels, [d.name for d in class_dirs], names=names, notes=report.notes
    )
    return dataset, report


def _extract(video: Path, backend: str, report: ImportReport) -> SkeletonSequence | None:
    """The video's skeleton sequence, or None (with the reason in the report)."""
    frames: list[SkeletonFrame] = []
    try:
        with VideoReader(video) as reader, PoseEstimator(backend=backend) as estimator:
            frames = [estimator.estimate(image, t) for t, image in reader]
    except VideoError as err:
        report.skip(str(video), "unreadable video", str(err))
        return None
    if not any(f.body_present for f in frames):
        report.skip(str(video), "no person found")
        return None
    return SkeletonSequence.from_frames(frames)
