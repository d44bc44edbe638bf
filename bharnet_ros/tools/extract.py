"""``bharnet extract``: run the pose stage over videos and save skeleton sequences (.npz).

A video gives one :class:`SkeletonSequence` file; a directory gives ``OUT/<stem>.npz`` per video.
With ``--backend multi`` a video gives one file per tracked person instead, ``<stem>_p<id>.npz``
beside where the single file would go. Every decoded frame becomes one sequence frame (zeros where
nothing was found, or where that person was not seen), so frame ``t`` of every file matches frame
``t`` of the video and of the optional overlay mp4. Every output is checked before the first video
is processed (existing files need ``--force``) and written atomically. With ``--force`` a multi run
removes the ``<stem>_p<id>.npz`` files of an earlier run that it did not write again (ids it no
longer finds), so the files beside the output are this run's result; a file of such a name that
is no sequence of that person is not an earlier run's, and stays.
"""

from __future__ import annotations

import argparse
import glob
import re
import sys
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from bharnet_ros.core.pose_multi import MAX_POSES, NUM_POSES
from bharnet_ros.core.pose_stage import ALL_BACKENDS, PoseStage, draw_persons
from bharnet_ros.core.skeleton import SkeletonFrame, SkeletonSequence
from bharnet_ros.core.video import (
    VIDEO_EXTENSIONS,
    VideoError,
    VideoInfo,
    VideoReader,
    is_video_file,
    list_videos,
)
from bharnet_ros.tools import UsageError
from bharnet_ros.tools.outputs import atomic_file, check_output_file, output_option

OVERLAY_FALLBACK_FPS = 25.0  # for the overlay writer when the source states no usable frame rate
OVERLAY_FPS_RANGE = (1.0, 240.0)  # what the overlay keeps of a source's rate (mp4v takes < 65536)
OVERLAY_SIDES = (2, 4096)  # the mp4v writer refuses a side of 1 px or of 8192 and more (DCI 8K)


@dataclass(frozen=True)
class StageOptions:
    """How to run the pose stage on every video."""

    backend: str = "holistic"
    num_poses: int = NUM_POSES
    mirrored_input: bool = False

    @property
    def multi(self) -> bool:
        return self.backend == "multi"

    def open(self) -> PoseStage:
        return PoseStage(self.backend, num_poses=self.num_poses, mirrored_input=self.mirrored_input)


@dataclass(frozen=True)
class Job:
    """One video to process and where its outputs go."""

    video: Path
    output: Path
    overlay: Path | None
    stale: tuple[Path, ...] = ()  # per-person files of an earlier run, replaced or removed (--force)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``bharnet extract`` (called by ``bharnet_ros.cli`` when the subcommand is chosen)."""
    parser.add_argument("input", metavar="VIDEO_OR_DIR", type=Path, help="a video file or a folder of videos")
    parser.add_argument(
        "-o", "--output", required=True, type=output_option,
        help="output .npz for a video; output folder (one <stem>.npz per video) for a folder",
    )  # fmt: skip
    parser.add_argument(
        "--overlay", type=output_option, default=None,
        help="also write an mp4 with the skeleton drawn (a folder when the input is a folder)",
    )  # fmt: skip
    parser.add_argument(
        "--backend", choices=ALL_BACKENDS, default="holistic",
        help="MediaPipe graph(s): holistic or hands_pose (one person), multi (everyone, one file per person)",
    )  # fmt: skip
    parser.add_argument(
        "--num-poses", type=int, default=NUM_POSES, metavar="N", help="persons per frame with --backend multi"
    )
    parser.add_argument(
        "--mirrored-input", action="store_true",
        help="the videos are mirror images (NTU RGB+D, Kinect v2 colour, selfie webcams): flip them first",
    )  # fmt: skip
    parser.add_argument(
        "--max-frames", type=int, default=None, metavar="N", help="stop after N frames per video"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace existing output files (with --backend multi, also remove the earlier run's "
        "<stem>_p<id>.npz that this run does not write again)",
    )


def run(args: argparse.Namespace) -> int:
    """Extract every job; in a folder a video that cannot be decoded, or whose name is not valid
    UTF-8, is skipped with a message (exit code 1)."""
    if args.max_frames is not None and args.max_frames < 1:
        raise UsageError(f"--max-frames must be at least 1, got {args.max_frames}")
    if not 1 <= args.num_poses <= MAX_POSES:
        raise UsageError(f"--num-poses must be in [1, {MAX_POSES}], got {args.num_poses}")
    if args.num_poses != NUM_POSES and args.backend != "multi":
        raise UsageError(f"--num-poses counts persons for --backend multi; {args.backend} follows one person")
    stage = StageOptions(args.backend, args.num_poses, args.mirrored_input)
    folder = args.input if args.input.is_dir() else None
    jobs, problems = usable_names(plan_jobs(args.input, args.output, args.overlay), folder is not None)
    jobs = check_outputs(jobs, args.force, stage.multi, folder)
    for problem in problems:  # after the checks: a refused run prints its one line only
        print(f"bharnet extract: skipped: {problem}", file=sys.stderr)
    for job in jobs if stage.multi else []:
        if job.output.exists():  # a multi run never writes the single file
            print(
                f"note: {job.output} (one person's, from an earlier run) stays; move it away before "
                "importing the folder, or its person is imported twice", file=sys.stderr,
            )  # fmt: skip
    skipped = len(problems)
    for job in jobs:
        try:
            print(extract_video(job, stage, args.max_frames))
        except VideoError as err:
            if not args.input.is_dir():
                raise UsageError(str(err)) from None
            print(f"bharnet extract: skipped: {err}", file=sys.stderr)
            skipped += 1
    return 1 if skipped else 0


def usable_names(jobs: list[Job], in_folder: bool) -> tuple[list[Job], list[str]]:
    """The jobs whose video name OpenCV can open (valid UTF-8), and why each other one is skipped.

    In a folder such a video is skipped, as an undecodable one is, instead of failing the whole run
    on its output name; a single video so named is a UsageError.
    """
    usable, problems = [], []
    for job in jobs:
        try:
            str(job.video).encode("utf-8")
        except UnicodeEncodeError:
            shown = str(job.video).encode("utf-8", "backslashreplace").decode()
            problems.append(
                f"{shown}: the name is not valid UTF-8, which OpenCV cannot open; rename the file"
            )
            if not in_folder:
                raise UsageError(problems[0]) from None
            continue
        usable.append(job)
    return usable, problems


def plan_jobs(source: Path, output: Path, overlay: Path | None) -> list[Job]:
    """Map the input (file or folder) to per-video jobs; user mistakes raise UsageError."""
    if source.is_dir():
        videos = list_videos(source)
        if not videos:
            raise UsageError(f"no video files in {source} (looked for {', '.join(VIDEO_EXTENSIONS)})")
        for name, path, suffix in (("-o", output, ".npz"), ("--overlay", overlay, ".mp4")):
            if path is not None and path.suffix.lower() == suffix and not path.is_dir():
                raise UsageError(f"input {source} is a folder, so {name} must be a folder, not {path}")
        return [
            Job(v, output / f"{v.stem}.npz", None if overlay is None else overlay / f"{v.stem}.mp4")
            for v in videos
        ]
    if not source.exists():
        raise UsageError(f"input not found: {source}")
    if not is_video_file(source):
        raise UsageError(f"{source} is not a video ({', '.join(VIDEO_EXTENSIONS)}) or a folder of videos")
    if output.is_dir():
        output = output / f"{source.stem}.npz"
    if overlay is not None and overlay.is_dir():
        overlay = overlay / f"{source.stem}.mp4"
    return [Job(source, output, overlay)]


def check_outputs(
    jobs: list[Job], force: bool, per_person: bool = False, folder: Path | None = None
) -> list[Job]:
    """The jobs with their outputs checked before any work: not an input, not inside the input
    ``folder`` (the next run would read an overlay back as a video), not existing without ``force``,
    and no two jobs writing the same file (``clip.avi`` and ``clip.mp4`` both make ``clip.npz``).

    With ``per_person`` (``--backend multi``) the files are ``<stem>_p<id>.npz``, so any of those
    already there counts as existing; with ``force`` they are kept in the job as ``stale``.
    """
    _check_no_clashes(jobs)
    checked = []
    for job in jobs:
        # a multi run never writes the single file: one of an earlier run is neither refused nor replaced
        output = check_output_file(job.output, [job.video, folder], force or per_person, suffix=".npz")
        earlier = person_files(output) if per_person else []
        if earlier and not force:
            raise UsageError(f"-o {earlier[0]} already exists; pass --force to replace it")
        for path in earlier:  # replaced or removed: each as -o is checked (a pipe, a link to the video)
            check_output_file(path, [job.video, folder], force, suffix=".npz")
        overlay = job.overlay and check_output_file(
            job.overlay, [job.video, folder], force, "--overlay", suffix=".mp4"
        )  # an MP4 writer: another suffix failed after the pose stage had run
        checked.append(Job(job.video, output, overlay, tuple(earlier)))
    return checked


def person_files(output: Path) -> list[Path]:
    """The ``<stem>_p<id>.npz`` files beside ``output`` (sorted). The stem is escaped, since a name
    such as ``clip[1]`` is a glob pattern, and only a number counts as an id (not ``clip_pan.npz``)."""
    pattern = re.compile(re.escape(output.stem) + r"_p\d+\.npz")
    found = output.parent.glob(glob.escape(output.stem) + "_p*.npz")
    return sorted(path for path in found if pattern.fullmatch(path.name))


def _check_no_clashes(jobs: list[Job]) -> None:
    """UsageError when two videos would write the same output file (the second would replace the first)."""
    writers: dict[Path, Path] = {}
    for job in jobs:
        for path in filter(None, (job.output, job.overlay)):
            first = writers.setdefault(path.absolute(), job.video)
            if first != job.video:
                raise UsageError(
                    f"{first.name} and {job.video.name} both write {path}; rename one of them "
                    "or extract them one at a time"
                )


def extract_video(job: Job, stage: StageOptions, max_frames: int | None = None) -> str:
    """Run the pose stage over one video, write its sequence(s) (and overlay), return a summary line."""
    persons: dict[int, dict[int, SkeletonFrame]] = {}  # person id -> frame index -> frame
    stamps: list[float] = []
    with ExitStack() as stack:
        reader = stack.enter_context(VideoReader(job.video))
        pose = stack.enter_context(stage.open())
        overlay_path = stack.enter_context(atomic_file(job.overlay)) if job.overlay else None
        overlay = Overlay(overlay_path, reader.info.fps, job.overlay) if overlay_path else None
        progress = tqdm(reader, total=_expected_frames(reader.info, max_frames), desc=job.video.name,
                        unit="frame", leave=False)  # fmt: skip
        try:
            for timestamp, image in progress:
                image, frames = pose.process(image, timestamp)
                for frame in frames:
                    persons.setdefault(frame.person_id, {})[len(stamps)] = frame
                stamps.append(timestamp)
                image_size = (image.shape[1], image.shape[0])
                if overlay is not None:
                    overlay.write(image, frames, timestamp, stage.multi)
                if len(stamps) == max_frames:
                    break
        finally:
            progress.close()
            if overlay is not None:
                overlay.close()
    if not stage.multi:
        sequence = _timeline(persons.get(0, {}), stamps, 0, image_size)
        _save(sequence, job.output)
        return _summary(job, sequence, job.output)
    written = []
    for person_id, seen in sorted(persons.items()):
        path = job.output.with_name(f"{job.output.stem}_p{person_id}.npz")
        _save(_timeline(seen, stamps, person_id, image_size), path)
        written.append((person_id, path, seen))
    removed = _remove_stale(job, {path.name for _, path, _ in written})
    return _multi_summary(job, len(stamps), written) + removed


def _remove_stale(job: Job, written: set[str]) -> str:
    """Remove the earlier run's per-person files (found before the run, replaced by ``--force``) that
    this run did not write again: left there they would read as this run's persons. A file counts
    as an earlier run's only where it is a sequence of the person its name gives; any other is
    kept, and named. Returns the note for the summary line."""
    left = [path for path in job.stale if path.name not in written and path.is_file()]
    gone = [path for path in left if _person_file(path)]
    for path in gone:
        path.unlink()
    kept = [path for path in left if path not in gone]
    notes = [f"removed the earlier run's {', '.join(p.name for p in gone)}"] if gone else []
    notes += [f"kept {', '.join(p.name for p in kept)}, which no run wrote"] if kept else []
    return "".join(f"; {note}" for note in notes)


def _person_file(path: Path) -> bool:
    """Whether ``path`` is a skeleton sequence of the person its ``_p<id>`` name gives (as written here)."""
    try:
        sequence = SkeletonSequence.load(path)
    except Exception:  # anything not a sequence file is not this command's to delete
        return False
    return path.stem.endswith(f"_p{sequence.person_id}")


def _timeline(
    seen: dict[int, SkeletonFrame], stamps: list[float], person_id: int, image_size: tuple[int, int]
) -> SkeletonSequence:
    """One person's frames on the video's timeline: an empty frame wherever they were not seen."""
    frames = [
        seen.get(t) or SkeletonFrame.empty(stamp, person_id=person_id) for t, stamp in enumerate(stamps)
    ]
    return SkeletonSequence.from_frames(frames, image_size=image_size)


def _save(sequence: SkeletonSequence, path: Path) -> None:
    with atomic_file(path) as temporary:
        sequence.save(temporary)


def _expected_frames(info: VideoInfo, max_frames: int | None) -> int | None:
    """Progress-bar total: the header's frame count capped by --max-frames; None when unknown."""
    counts = [n for n in (info.frame_count, max_frames) if n]
    return min(counts) if counts else None


class Overlay:
    """An mp4 ('mp4v') of drawn frames, opened on the first frame so it takes the decoded size.

    ``path`` is where it is written (a temporary name), ``destination`` the name the user gave.
    A frame rate the mp4v writer cannot take (none stated, a time base of 90000, a thousandth of a
    frame per second) becomes :data:`OVERLAY_FALLBACK_FPS`: the overlay is for looking at.
    """

    def __init__(self, path: Path, fps: float, destination: Path | None = None) -> None:
        self.path = path
        self.destination = destination or path
        self.fps = fps if OVERLAY_FPS_RANGE[0] <= fps <= OVERLAY_FPS_RANGE[1] else OVERLAY_FALLBACK_FPS
        self._writer: cv2.VideoWriter | None = None
        self._size = (0, 0)

    def write(self, image: np.ndarray, frames: list[SkeletonFrame], timestamp: float, show_ids: bool) -> None:
        drawn = draw_persons(image, frames, label=f"t={timestamp:.2f}s", show_ids=show_ids)
        if self._writer is None:
            self._writer = self._open((drawn.shape[1], drawn.shape[0]))
        if (drawn.shape[1], drawn.shape[0]) != self._size:
            drawn = cv2.resize(drawn, self._size)  # OpenCV silently drops frames of another size
        self._writer.write(drawn)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()

    def _open(self, size: tuple[int, int]) -> cv2.VideoWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._size = overlay_size(size)
        writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, self._size)
        if not writer.isOpened():  # a VideoError: a folder run skips this video, not the rest
            raise VideoError(
                f"cannot write overlay video {self.destination} ({self._size[0]}x{self._size[1]}); "
                "is its folder writable?"
            )
        return writer


def overlay_size(size: tuple[int, int]) -> tuple[int, int]:
    """(width, height) the overlay is written at: the frames' own, shrunk (aspect kept) so that the
    longer side is at most :data:`OVERLAY_SIDES`' upper end, and each side at least its lower end."""
    low, high = OVERLAY_SIDES
    scale = min(1.0, high / max(size))
    return tuple(max(low, round(side * scale)) for side in size)  # type: ignore[return-value]


def _summary(job: Job, sequence: SkeletonSequence, path: Path) -> str:
    body = int(np.any(sequence.body[..., 3] > 0, axis=1).sum())
    left, right = sequence.hand_present.sum(axis=0)
    overlay = f", overlay {job.overlay}" if job.overlay else ""
    return (
        f"{job.video.name}: {len(sequence)} frames, body in {body}, left hand in {left}, "
        f"right hand in {right} -> {path}{overlay}"
    )


def _multi_summary(job: Job, frames: int, written: list[tuple[int, Path, dict[int, SkeletonFrame]]]) -> str:
    """One line: per person id, the frames they were seen in, with each hand, and their file."""
    overlay = f", overlay {job.overlay}" if job.overlay else ""
    if not written:
        return f"{job.video.name}: {frames} frames, nobody found, no file written{overlay}"
    parts = []
    for person_id, path, seen in written:
        left = sum(bool(f.hand_present[0]) for f in seen.values())
        right = sum(bool(f.hand_present[1]) for f in seen.values())
        parts.append(f"person {person_id} in {len(seen)} (left hand {left}, right hand {right}) -> {path}")
    return f"{job.video.name}: {frames} frames, {len(written)} persons: " + "; ".join(parts) + overlay
