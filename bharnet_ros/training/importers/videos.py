"""Your own videos -> a dataset, through the live pose stage.

Two layouts are read:

* ``DIR/<class>/<video>``: one sub-folder per class (no ``pattern``);
* with a file-name ``pattern`` such as ``"{label}_{take}_{distance}_{framing}"``: videos anywhere
  under ``DIR`` (typically ``DIR/<person>/<video>``), the class taken from the ``{label}`` field of
  the file name. The person is the ``{subject}`` field when the pattern has one, else the
  ``subject`` argument, else the first folder below ``DIR`` that is not a plain videos folder
  (``videos``, ``dynamic_videos``, as in the HRI dataset's ``S1/videos/``), else the name of
  ``DIR`` itself (a person's own folder); the report notes that last guess. Non-label fields
  match no separator character next to them in the pattern, so a label may contain ``_``.

Two files that would give one sample name (``x.avi`` and ``x.npz``, or ``S7/x.avi`` and
``S7/sub/x.avi``) are refused when the files are listed, before any pose stage runs.

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
import unicodedata
import zipfile
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bharnet_ros.core.labels import MAX_LABEL_LENGTH, plain_label, shown
from bharnet_ros.core.pose import PoseEstimator
from bharnet_ros.core.skeleton import SkeletonFrame, SkeletonSequence
from bharnet_ros.core.video import VIDEO_EXTENSIONS, VideoError, VideoReader
from bharnet_ros.training.classes import same_words
from bharnet_ros.training.dataset import DatasetError, SkeletonDataset
from bharnet_ros.training.importers import ImportReport, Progress, files_below, hidden, no_progress

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
    """A ``{field}`` pattern as a regex over file stems; ``{label}`` is required, fields unique.

    Every field but ``{label}`` matches no separator character (``_``, ``-``, space, ...) of the
    text around it in the pattern, and the label takes the rest: ``turn_back_1_1m_upper`` under
    ``{label}_{take}_{distance}_{framing}`` is label ``turn_back``, not ``turn``.
    """
    names = FIELD.findall(pattern)
    if "label" not in names:
        raise PatternError(f"--pattern {pattern!r} needs a {{label}} field, e.g. '{{label}}_{{take}}'")
    if len(set(names)) != len(names):
        raise PatternError(f"--pattern {pattern!r} names a field twice")
    taken = sorted(set(names) & RESERVED_FIELDS)
    if taken:
        raise PatternError(
            f"--pattern {pattern!r}: {{{taken[0]}}} is an attribute the import sets itself (the video's "
            "measured frame rate, the import folder, the person's track in a per-person skeleton file); "
            "name the field otherwise, e.g. {file_fps}"
        )
    texts = FIELD.split(pattern)[0::2]  # the literal text before, between and after the fields
    if any("{" in text or "}" in text for text in texts):  # {Take}, {0}: read as text, matching nothing
        raise PatternError(
            f"--pattern {pattern!r} has braces around no field name; a field is a lower-case name: {{take}}"
        )
    if any(not text for text in texts[1:-1]):  # "{label}{take}": where one ends is a guess
        raise PatternError(
            f"--pattern {pattern!r} has two fields with nothing between them; put the separator of "
            "the file names between them, e.g. '{label}_{take}'"
        )
    parts = [re.escape(texts[0])]
    for i, name in enumerate(names):
        parts.append(_field_regex(name, texts[i], texts[i + 1]))
    return re.compile("^" + "".join(parts) + "$")


def _field_regex(name: str, before: str, after: str) -> str:
    """One field and the text after it: the label anything, another field no separator character
    (``_``, ``-``, space, ...) found around it.

    Where the text around holds letters and digits only (``take{take}x``), the field ends where
    that text first follows it, for good (an atomic group): a lazy field that could grow later
    would let a long file name backtrack for hours against a pattern of several such fields.
    """
    field, text = f"(?P<{name}>", re.escape(after)
    if name == "label":
        return f"{field}.+){text}"
    separators = "".join(sorted({c for c in before + after if not c.isalnum()}))
    if separators:
        return f"{field}[^{re.escape(separators)}]+){text}"
    return f"(?>{field}.+?){text})" if after else f"{field}.+)"


def find_jobs(root: Path, pattern: str | None, subject: str | None, report: ImportReport) -> list[VideoJob]:
    """The videos to import, in a stable order, with labels and attributes.

    Raises DatasetError naming the files when two of them would give one sample name, so that the
    clash is found before the pose stage runs on every video, not after.
    """
    if pattern is None:
        jobs = _class_folder_jobs(root, subject, report)
    else:
        jobs = _pattern_jobs(root, pattern, subject, report)
    check_unique_names(jobs, root)
    return jobs


def _pattern_jobs(root: Path, pattern: str, subject: str | None, report: ImportReport) -> list[VideoJob]:
    regex = compile_pattern(pattern)
    jobs = []
    for video in files_below(root, CLIP_SUFFIXES, report):
        stem, track = _track_of(video)
        match = regex.match(_nfc(stem))
        if match is None and track:  # a name that ends in _p<digits> of its own
            track, match = "", regex.match(_nfc(video.stem))
        if match is None:
            report.skip(str(video), "name does not match --pattern", pattern)
            continue
        fields = {**match.groupdict(), **({"track": track} if track else {})}
        person = _nfc(fields.pop("subject", None) or subject or _person_folder(root, video, report))
        label = fields.pop("label")
        attributes = {"subject": person, **fields} if person else dict(fields)
        name = f"{person}/{video.stem}" if person else video.stem
        jobs.append(VideoJob(video, label, name, attributes))
    return jobs


def _track_of(path: Path) -> tuple[str, str]:
    """The stem the pattern reads and the person's track id of a per-person skeleton file of
    ``bharnet extract --backend multi`` (``<stem>_p<id>.npz``); ("" for other files)."""
    person_file = TRACK_SUFFIX.fullmatch(path.stem) if _is_skeleton_file(path) else None
    return (person_file["stem"], person_file["track"]) if person_file else (path.stem, "")


def _class_folder_jobs(root: Path, subject: str | None, report: ImportReport) -> list[VideoJob]:
    if not subject:
        report.notes.append("videos: no person recorded (one folder per class); --subject NAME sets one")
    attributes = {"subject": subject} if subject else {}
    folders = sorted(d for d in root.iterdir() if d.is_dir() and not hidden(d.name))
    for loose in _clips_in(root, report):
        report.skip(str(loose), "not read", "not in a class folder (the folder's name is the class)")
    for folder in folders:  # one level only: CLASS/<video>; deeper files are named, not lost unseen
        for deeper in (
            p for d in folder.iterdir() if d.is_dir() for p in files_below(d, CLIP_SUFFIXES, report)
        ):
            report.skip(str(deeper), "not read", f"below the class folder {folder.name}/ (one level is read)")
    return [
        VideoJob(clip, _nfc(folder.name), _nfc(f"{folder.name}/{clip.name}"), dict(attributes))
        for folder in folders
        for clip in _clips_in(folder, report)
    ]


def _clips_in(folder: Path, report: ImportReport) -> list[Path]:
    """The videos, then the skeleton files, directly in ``folder``; one of their names that is no
    regular file (a pipe, a device, a broken link) is listed in ``report``, not dropped unseen."""
    found = []
    for path in folder.iterdir():
        if hidden(path.name) or path.suffix.lower() not in CLIP_SUFFIXES:
            continue
        if path.is_file():
            found.append(path)
        elif not path.is_dir():
            report.skip(str(path), "not a regular file", "a pipe, a device or a broken link")
    return sorted(found, key=lambda path: (_is_skeleton_file(path), path.name))


def check_unique_names(jobs: list[VideoJob], root: Path) -> None:
    """DatasetError listing the files behind each sample name that more than one file gives. With
    class folders the name keeps the file's extension, so the clash is found on the stem: a video
    and its skeleton file beside it are one clip, imported twice."""
    paths: dict[str, list[Path]] = {}
    for job in jobs:  # by the stem the pattern reads (wave_1 of wave_1_p1.npz), in NFC as names are
        stem = _track_of(job.path)[0]
        paths.setdefault(str(Path(job.name).with_name(_nfc(stem))), []).append(job.path)
    clashes = [files for files in paths.values() if len(files) > 1 and _one_clip_twice(files)]
    if not clashes:
        return
    shown = "; ".join(" and ".join(str(p.relative_to(root)) for p in files) for files in clashes[:3])
    more = f" (and {len(clashes) - 3} more)" if len(clashes) > 3 else ""
    raise DatasetError(
        f"files under {root} give the same sample name: {shown}{more}; keep one file per name "
        "(move the .npz files of bharnet extract to a folder of their own, or rename)"
    )


def _one_clip_twice(files: list[Path]) -> bool:
    """Whether files of one stem hold a clip twice: a video beside a skeleton file of it, or two
    files of one person's track (the persons of one video, ``_p0`` and ``_p1``, are two samples)."""
    tracks = [_track_of(path)[1] for path in files]
    videos = [path for path in files if not _is_skeleton_file(path)]
    return bool(videos) or len(set(tracks)) < len(tracks)


def _nfc(text: str) -> str:
    """``text`` in Unicode's composed form: macOS names files decomposed (``cafe`` and an accent),
    Linux composed, and the two spellings of one gesture were two classes printed alike."""
    return unicodedata.normalize("NFC", text)


def _is_skeleton_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() == ".npz"


RESERVED_FIELDS = {"fps", "source", "track"}  # attributes the import sets itself
CLIP_SUFFIXES = (*VIDEO_EXTENSIONS, ".npz")  # videos, and skeleton files bharnet extract wrote
TRACK_SUFFIX = re.compile(r"(?P<stem>.+)_p(?P<track>\d+)")  # bharnet extract --backend multi
MEDIA_FOLDER = re.compile(r"(.*[_\-\s])?videos?", re.IGNORECASE)  # videos, dynamic_videos, ...


def _person_folder(root: Path, video: Path, report: ImportReport) -> str:
    """The person when neither pattern nor --subject says: the first folder below ``root`` that is
    not a plain videos folder (``S7/videos/x.avi`` is S7's), else the name of ``root`` or, where
    ``root`` is a videos folder itself (``import videos S7/videos``), of the folder above (noted)."""
    people = [part for part in video.relative_to(root).parts[:-1] if not MEDIA_FOLDER.fullmatch(part)]
    if people:
        return people[0]
    folders = [folder for folder in (root.resolve(), *root.resolve().parents) if folder.name]
    taken = next((f for f in folders if not MEDIA_FOLDER.fullmatch(f.name)), root.resolve())
    person = taken.name
    note = (
        f"videos: files not in a person's folder get the person {person!r} (the name of {taken}); "
        "--subject NAME overrides"
    )
    if note not in report.notes:
        report.notes.append(note)
    return person


def import_videos(
    root: str | Path,
    backend: str = "holistic",
    progress: Progress = no_progress,
    pattern: str | None = None,
    subject: str | None = None,
    jobs: int = 1,
    check_labels: Callable[[list[str]], object] | None = None,
) -> tuple[SkeletonDataset, ImportReport]:
    """One sample per video (see the module docstring); classes in sorted order.

    ``check_labels`` sees the class names before the pose stage runs (hours for many videos), as
    does the check that no two of them differ only in case or separators (``Yes`` and ``yes``).
    """
    root = Path(root)
    report = ImportReport(notes=[f"videos: pose stage MediaPipe {backend}, model_complexity 1"])
    todo = find_jobs(root, pattern, subject, report)
    labels = sorted({job.label for job in todo})
    if twins := same_words(labels):
        raise DatasetError(
            f"the videos name one gesture two ways, {twins[0]!r} and {twins[1]!r}; rename the files "
            "(or the class folders) to one spelling"
        )
    if bad := next((label for label in labels if not plain_label(label)), None):
        raise DatasetError(  # found now, not after the pose stage ran on every video
            f"the class name {shown(bad)} is not printable text of at most {MAX_LABEL_LENGTH} "
            "characters; rename the files (or the class folders)"
        )
    if check_labels is not None:
        check_labels(labels)
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
    pool = ProcessPoolExecutor(min(jobs, len(paths)), mp_context=context)
    stopped = False
    try:
        yield from pool.map(extract_video, paths, [backend] * len(paths))
    except BrokenProcessPool:
        raise DatasetError("a pose-stage process died (out of memory?); import with fewer --jobs") from None
    except BaseException:  # Ctrl-C, SIGTERM: the workers would go on, or block on a pipe nobody reads
        stopped = True
        for child in multiprocessing.active_children():
            child.terminate()
        raise
    finally:
        _shut_down(pool, stopped)


def _shut_down(pool: ProcessPoolExecutor, stopped: bool) -> None:
    """Shut the pool down and wait for it; its work is cancelled where the command was ``stopped``.
    A signal that came while the pool started its manager thread leaves a thread that cannot be
    joined, and the pool's shutdown would then raise over the interruption."""
    try:
        pool.shutdown(wait=True, cancel_futures=stopped)
    except RuntimeError:
        if not stopped:
            raise


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
    except Exception as err:  # any damage (empty, cut, not a zip) skips this one file, reported
        return f"unreadable skeleton file: {_damage(err)}"
    if (sequence.layout, sequence.space) != ("mediapipe33", "image"):  # one such failed the whole import
        return (
            f"unreadable skeleton file: a {sequence.layout} skeleton in {sequence.space} space, where "
            "bharnet extract writes mediapipe33 in image space"
        )
    if not sequence.body.any():
        return "no person found: "
    steps = np.diff(sequence.timestamps)
    steps = steps[steps > 0]
    return sequence, float(1.0 / np.median(steps)) if len(steps) else 0.0


def _damage(err: Exception) -> str:
    """What is wrong with a skeleton file, from the error that reading it raised."""
    if isinstance(err, EOFError | zipfile.BadZipFile | zlib.error):
        return f"empty, truncated or not an .npz file ({err})"
    if "allow_pickle" in str(err):  # what numpy says of a text file or a pickle
        return "not an .npz file (text or a pickle); bharnet extract writes .npz skeleton files"
    return str(err) or type(err).__name__
