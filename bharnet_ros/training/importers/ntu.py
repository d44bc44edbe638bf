"""NTU RGB+D 60/120 ``.skeleton`` files -> :class:`SkeletonDataset` (layout ntu25, space world).

The steps follow the preprocessing that DeGCN, CTR-GCN and SGN share (model_spec.md section 9):

1. **Parse.** Line 1 is the frame count. Each frame gives its body count. Each body has a 10-field
   body line (bodyID first), the joint count (25) and 25 lines of 12 fields
   ``x y z depthX depthY colorX colorY orientW orientX orientY orientZ trackingState``. The file is
   read as whitespace-separated tokens, so CRLF (the official files) and LF copies parse the same.
   Counts are checked against what the file can hold (and at most 6 bodies per frame, Kinect's
   limit) before anything is sized by them; a file that breaks the layout is skipped, reported.
2. **Denoise.** With more than one bodyID in a file: drop bodies seen in <= 11 frames; drop bodies
   whose share of implausible frames (x-extent > 0.8 * y-extent, i.e. wider than tall) is at least
   0.69754, but never the last body; rank the rest by motion (sum of the per-axis variance of all
   their joints; over their plausible frames where that is smaller).
3. **Actors.** The body with the most motion starts actor slot 0. Each next body joins slot 0 if
   it shares no frame with what is there, else slot 1 under the same rule, else it is dropped.
   (The reference scripts compare a slot's first-to-last interval instead, so they differ in two
   rare cases: a body inside a gap between a slot's bodies joins that slot here, not there; and
   two bodies that share exactly one boundary frame are kept apart here, where the reference puts
   them in one slot and one overwrites the other's frame.)
4. **Frames.** Frames where no actor was kept (including frames with zero bodies) are dropped;
   timestamps keep the original frame index / 30 fps, so dropped frames show as gaps in time.

Coordinates stay in Kinect camera space (metres); centring and scaling belong to the feeder.
Kinect's trackingState (0 not tracked, 1 inferred, 2 tracked) becomes the score 0, 0.5 or 1.
Kinect has no finger joints, so hands are zeros with ``hand_present`` False. A single-person clip
keeps a zero second slot (the NTU120 reference script copies actor 1 there instead).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bharnet_ros.training.dataset import DatasetError, Sample, SkeletonDataset, parse_digits
from bharnet_ros.training.importers import (
    ImportReport,
    Progress,
    check_sample,
    files_below,
    no_progress,
    read_input_text,
)

# not inside a longer number: A0501 is no A050
NAME_PATTERN = re.compile(r"(?<!\d)S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})(?!\d)", re.ASCII)
FPS = 30.0  # Kinect v2 skeleton rate
BODY_FIELDS = 10
JOINT_FIELDS = 12
NTU_JOINTS = 25
TRACKING_SCORE = np.array([0.0, 0.5, 1.0], np.float32)  # indexed by trackingState
MAX_BODIES = 6  # Kinect v2 tracks at most six bodies per frame
# The longest field: body ids have 17 digits, coordinates about 10 characters. A longer one is
# damage, refused before it is parsed as a count or a number.
MAX_FIELD_CHARS = 32
MIN_TRACKED_FRAMES = 11  # bodies seen in this many frames or fewer are noise
SPREAD_RATIO = 0.8  # a frame is plausible when its x-extent <= 0.8 * its y-extent
SPREAD_NOISE_FRACTION = 0.69754  # bodies with at least this share of implausible frames are noise
MAX_ACTORS = 2
NTU60_ACTIONS = 60
NTU120_ACTIONS = 120
ID_RANGES = (32, 3, 106, 2, NTU120_ACTIONS)  # setups, cameras, performers, replications, actions
# Official X-Sub training subjects. The NTU120 list starts with the 20 NTU60 ones and NTU60 has
# subjects 1-40 only, so this one set gives both benchmarks.
XSUB_TRAIN_SUBJECTS = frozenset(
    (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38, 45, 46, 47, 49, 50, 52,
     53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86, 89, 91, 92, 93, 94, 95, 97, 98,
     100, 103)
)  # fmt: skip
XVIEW_TRAIN_CAMERAS = frozenset((2, 3))  # NTU60 X-View: cameras 2 and 3 train, camera 1 tests
BENCHMARKS = ("xsub", "xview", "xset")
# model_spec.md section 7.4: the NTU120 hand-centric candidate pool (A numbers). An inference, not
# an official list; it fills the dataset's optional per-class hand_intensive flags.
HAND_INTENSIVE_ACTIONS = frozenset(
    (11, 12, 13, 29, 30, 31, 32, 33, 34, 39, 54, 58, 66, 67, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 81,
     82, 83, 84, 86, 93, 112, 120)
)  # fmt: skip
CLASS_NAME_FILES = (
    "ntu120_class_names.tsv",
    "mmaction2_label_map_ntu120.txt",
    "mmaction2_label_map_ntu60.txt",
)
MISSING_LIST_GLOB = "*samples_with_missing_skeletons*.txt"


class NtuFormatError(ValueError):
    """A ``.skeleton`` file that does not follow the documented layout."""


@dataclass(frozen=True)
class NtuIds:
    """The ids in an NTU sample name ``SsssCcccPpppRrrrAaaa`` (setup, camera, performer, ...)."""

    setup: int
    camera: int
    subject: int
    replication: int
    action: int

    @classmethod
    def parse(cls, name: str) -> NtuIds:
        """The ids of the one NTU sample name inside ``name`` (``S001C001P001R001A001_copy`` works)."""
        matches = NAME_PATTERN.findall(name)
        if len(matches) != 1:
            raise ValueError(
                f"{name!r} does not contain exactly one NTU sample name (SsssCcccPpppRrrrAaaa); "
                "rename the file so that it does, e.g. S001C001P001R001A001.skeleton"
            )
        ids = cls(*(int(group) for group in matches[0]))
        for letter, value, most in zip(
            "SCPRA", (ids.setup, ids.camera, ids.subject, ids.replication, ids.action), ID_RANGES, strict=True
        ):
            if not 1 <= value <= most:
                raise NtuFormatError(
                    f"{letter}{value:03d} in {name!r} is no NTU id ({letter}001..{letter}{most:03d}); "
                    "it would land in the wrong split"
                )
        return ids

    @property
    def name(self) -> str:
        """The sample's own name: a file named ``..._copy`` is the same sample."""
        return (
            f"S{self.setup:03d}C{self.camera:03d}P{self.subject:03d}R{self.replication:03d}A{self.action:03d}"
        )


@dataclass
class KinectBody:
    """One tracked bodyID of a file: the frames it appears in and its joints there."""

    body_id: str
    frames: np.ndarray  # (n,) int64 frame indices in the file
    xyz: np.ndarray  # (n, 25, 3) float32 metres, Kinect camera space
    state: np.ndarray  # (n, 25) int64 trackingState

    def __len__(self) -> int:
        return len(self.frames)

    def motion(self, mask: np.ndarray | None = None) -> float:
        """Sum over x, y, z of the variance of all joint positions (optionally of some frames)."""
        points = self.xyz if mask is None else self.xyz[mask]
        return float(points.reshape(-1, 3).var(axis=0).sum()) if len(points) else 0.0

    def plausible_frames(self) -> np.ndarray:
        """(n,) bool: frames where the body is not wider than 0.8 times its height."""
        extent = self.xyz.max(axis=1) - self.xyz.min(axis=1)
        return extent[:, 0] <= SPREAD_RATIO * extent[:, 1]


@dataclass
class SkeletonFile:
    """A parsed ``.skeleton`` file."""

    num_frames: int
    body_counts: np.ndarray  # (num_frames,) bodies listed in each frame
    bodies: list[KinectBody]  # in order of first appearance


# --- parsing -----------------------------------------------------------------------------------


def read_skeleton_file(path: str | Path) -> SkeletonFile:
    """Parse one ``.skeleton`` file (CRLF or LF); one larger than any real one is refused unread."""
    path = Path(path)
    return parse_skeleton_text(read_input_text(path, ".skeleton file", encoding="ascii"))


def parse_skeleton_text(text: str) -> SkeletonFile:
    """Parse the text of a ``.skeleton`` file; raises :class:`NtuFormatError` on a broken layout.

    The counts in the file are checked against what its text can hold before anything is sized by
    them, so a damaged header fails with a reason instead of allocating gigabytes.
    """
    tokens = text.split()
    if not tokens:
        raise NtuFormatError("the file is empty")
    longest = max(len(token) for token in tokens)
    if longest > MAX_FIELD_CHARS:
        raise NtuFormatError(f"a field of {longest} characters; .skeleton fields are short numbers")
    num_frames = _count(tokens, 0)
    if num_frames >= len(tokens):  # every frame has at least its body count
        raise NtuFormatError(
            f"the header says {num_frames} frames but the file has only {len(tokens)} fields (truncated?)"
        )
    counts, blocks, end = _walk_frames(tokens, num_frames)
    if end != len(tokens):
        raise NtuFormatError(f"{len(tokens) - end} values left after the {num_frames} frames")
    return SkeletonFile(
        num_frames, counts, [_body(body_id, rows, tokens) for body_id, rows in blocks.items()]
    )


def _walk_frames(
    tokens: list[str], num_frames: int
) -> tuple[np.ndarray, dict[str, list[tuple[int, int]]], int]:
    """Body counts per frame, each bodyID's (frame, joint block start) and the end position."""
    counts = np.zeros(num_frames, np.int64)
    blocks: dict[str, list[tuple[int, int]]] = {}
    pos = 1
    for frame in range(num_frames):
        counts[frame] = _count(tokens, pos)
        if counts[frame] > MAX_BODIES:
            raise NtuFormatError(f"frame {frame}: {counts[frame]} bodies; Kinect tracks at most {MAX_BODIES}")
        pos += 1
        for _ in range(counts[frame]):
            body_id = tokens[pos] if pos < len(tokens) else ""
            pos += BODY_FIELDS
            joints = _count(tokens, pos)
            if joints != NTU_JOINTS:
                raise NtuFormatError(f"frame {frame}: body {body_id} has {joints} joints, expected 25")
            blocks.setdefault(body_id, []).append((frame, pos + 1))
            pos += 1 + JOINT_FIELDS * NTU_JOINTS
    if pos > len(tokens):
        raise NtuFormatError("the file ends inside a frame (truncated?)")
    return counts, blocks, pos


def _count(tokens: list[str], pos: int) -> int:
    if pos >= len(tokens):
        raise NtuFormatError("the file ends where a count was expected (truncated?)")
    count = parse_digits(tokens[pos], digits=18)  # the callers name a count too large for its field
    if count is None:
        raise NtuFormatError(f"expected a count at field {pos}, found {tokens[pos][:40]!r}")
    return count


def _body(body_id: str, rows: list[tuple[int, int]], tokens: list[str]) -> KinectBody:
    """One bodyID's joints: its joint blocks' fields parsed straight to numbers (8 bytes each)."""
    frames = np.array([frame for frame, _ in rows], np.int64)
    fields = NTU_JOINTS * JOINT_FIELDS
    try:
        block = np.array([tokens[start : start + fields] for _, start in rows], np.float64)
    except ValueError:
        raise NtuFormatError(f"body {body_id}: a joint field is not a number") from None
    block = block.reshape(len(rows), NTU_JOINTS, JOINT_FIELDS)
    state = block[..., 11]
    if not np.isin(state, (0, 1, 2)).all():
        raise NtuFormatError(f"body {body_id}: a trackingState other than 0, 1 or 2")
    return KinectBody(body_id, frames, block[..., :3].astype(np.float32), state.astype(np.int64))


# --- denoising and actors ----------------------------------------------------------------------


def rank_bodies(bodies: list[KinectBody]) -> list[KinectBody]:
    """Drop noise bodies (length, then spread) and order the rest by motion, most first."""
    if len(bodies) <= 1:
        return list(bodies)
    kept = [body for body in bodies if len(body) > MIN_TRACKED_FRAMES] or [max(bodies, key=len)]
    motion = {body.body_id: body.motion() for body in kept}
    if len(kept) > 1:
        kept = _drop_spread_noise(kept, motion)
    return sorted(kept, key=lambda body: motion[body.body_id], reverse=True)


def _drop_spread_noise(bodies: list[KinectBody], motion: dict[str, float]) -> list[KinectBody]:
    """Remove mostly-implausible bodies (never the last one); others' motion uses plausible frames."""
    kept = list(bodies)
    for body in bodies:
        if len(kept) == 1:
            break
        plausible = body.plausible_frames()
        noisy_share = 1.0 - plausible.mean()
        if noisy_share >= SPREAD_NOISE_FRACTION:
            kept.remove(body)
        elif noisy_share > 0:
            motion[body.body_id] = min(motion[body.body_id], body.motion(plausible))
    return kept


def assign_actors(ranked: list[KinectBody], slots: int = MAX_ACTORS) -> list[list[KinectBody]]:
    """Place ranked bodies into actor slots; a body joins the first slot it shares no frame with."""
    actors: list[list[KinectBody]] = []
    used: list[set[int]] = []
    for body in ranked:
        frames = set(body.frames.tolist())
        free = next((k for k in range(len(actors)) if not used[k] & frames), None)
        if free is None and len(actors) < slots:
            actors.append([])
            used.append(set())
            free = len(actors) - 1
        if free is not None:
            actors[free].append(body)
            used[free] |= frames
    return actors


def actor_arrays(actors: list[list[KinectBody]], num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Body (MAX_ACTORS, num_frames, 25, 4) with scores from trackingState, and presence (M, frames)."""
    body = np.zeros((MAX_ACTORS, num_frames, NTU_JOINTS, 4), np.float32)
    present = np.zeros((MAX_ACTORS, num_frames), bool)
    for slot, bodies in enumerate(actors):
        for kinect in bodies:
            body[slot, kinect.frames, :, :3] = kinect.xyz
            body[slot, kinect.frames, :, 3] = TRACKING_SCORE[np.clip(kinect.state, 0, 2)]
            present[slot, kinect.frames] = True
    return body, present


def read_ntu_sample(path: str | Path) -> Sample:
    """One ``.skeleton`` file as a denoised two-slot sample; raises ValueError if unusable."""
    path = Path(path)
    ids = NtuIds.parse(path.stem)
    parsed = read_skeleton_file(path)
    actors = assign_actors(rank_bodies(parsed.bodies))
    body, present = actor_arrays(actors, parsed.num_frames)
    keep = present.any(axis=0)
    if not keep.any():
        raise NtuFormatError("no body in any frame")
    frames = int(keep.sum())
    sample = Sample(
        name=path.stem,
        label=ids.action - 1,
        body=body[:, keep],
        hands=np.broadcast_to(np.zeros((), np.float32), (MAX_ACTORS, frames, 2, 21, 4)),
        hand_present=np.broadcast_to(np.zeros((), bool), (MAX_ACTORS, frames, 2)),
        timestamps=np.flatnonzero(keep) / FPS,
        persons=len(actors),
        subject=ids.subject,
        camera=ids.camera,
        setup=ids.setup,
        replication=ids.replication,
        attributes={"subject": f"P{ids.subject:03d}"},  # as NTU names them: no other data's "1"
    )
    return check_sample(sample, "world")


# --- the whole import --------------------------------------------------------------------------


def import_ntu(
    source: str | Path,
    meta: str | Path | None = None,
    benchmarks: tuple[str, ...] | None = None,
    progress: Progress = no_progress,
) -> tuple[SkeletonDataset, ImportReport]:
    """Import a ``.skeleton`` file or every one under a folder.

    ``meta`` is a folder with the class names (``ntu120_class_names.tsv`` or the mmaction2 label
    maps) and the official missing-skeleton lists; listed samples are skipped. Without it the
    classes are named A001... and nothing is skipped. ``benchmarks`` picks split pairs among
    xsub, xview and xset (default: all three; each is defined for every setup and camera).
    """
    report = ImportReport()
    files = find_skeleton_files(Path(source), report)
    missing = read_missing_lists(Path(meta)) if meta is not None else {}
    names = read_class_names(Path(meta)) if meta is not None else None  # before hours of parsing
    samples = _read_samples(files, missing, report, progress)
    num_classes = NTU120_ACTIONS if any(s.label >= NTU60_ACTIONS for s in samples) else NTU60_ACTIONS
    class_names = _class_names(meta, names, num_classes, report)
    setups = np.array([s.setup for s in samples], np.int64)
    chosen = benchmarks or BENCHMARKS  # all three, so that separately imported halves merge whole
    splits = ntu_splits(
        np.array([s.subject for s in samples], np.int64),
        np.array([s.camera for s in samples], np.int64),
        setups,
        chosen,
    )
    report.notes.extend(_NOTES)
    dataset = SkeletonDataset.from_samples(
        samples,
        class_names,
        layout="ntu25",
        space="world",
        hand_intensive=[a + 1 in HAND_INTENSIVE_ACTIONS for a in range(num_classes)],
        splits=splits,
        notes=_NOTES,
    )
    return dataset, report


_NOTES = (
    "ntu: NTU RGB+D .skeleton files (Kinect v2), world metres in Kinect camera space",
    "ntu: score = trackingState 0/1/2 -> 0/0.5/1; hands are zeros (Kinect has no finger joints)",
    "ntu: denoised and up to 2 actors chosen by motion (model_spec.md section 9)",
    "ntu: frames without a kept actor dropped; timestamps = original frame index / 30 fps",
    "ntu: hand_intensive = model_spec.md 7.4 candidate pool (inferred, not official)",
)


def _sample_name(path: Path) -> str:
    """The sample name in a file's name (the duplicate and missing-list checks use it: a copy
    named ..._copy passed both), or the file's stem where it holds none (reading it says why)."""
    try:
        return NtuIds.parse(path.stem).name
    except ValueError:
        return path.stem


def _read_samples(
    files: list[Path], missing: dict[str, str], report: ImportReport, progress: Progress
) -> list[Sample]:
    samples: list[Sample] = []
    seen: set[str] = set()
    for path in progress(files):
        name = _sample_name(path)
        if name in missing:
            report.skip(name, "in the official missing-skeleton list", missing[name])
        elif name in seen:
            report.skip(name, "duplicate sample name", str(path))
        else:
            try:
                samples.append(read_ntu_sample(path))
            except (ValueError, OSError) as err:  # DatasetError and NtuFormatError are ValueErrors
                report.skip(name, "unreadable .skeleton file", str(err))
        seen.add(name)
    return samples


def find_skeleton_files(source: Path, report: ImportReport | None = None) -> list[Path]:
    """``source`` itself if it is a ``.skeleton`` file, else every one below it, sorted by name
    (those that are no regular file listed in ``report``)."""
    if not source.exists():
        raise FileNotFoundError(f"{source} does not exist; give an NTU .skeleton file or a folder of them")
    if source.is_file():
        if source.suffix != ".skeleton":
            raise DatasetError(f"{source} is not a .skeleton file")
        return [source]
    files = sorted(files_below(source, [".skeleton"], report), key=lambda path: (path.name, str(path)))
    if not files and not (report and report.skipped):
        raise DatasetError(f"no .skeleton files under {source}; unpack the NTU skeleton zip there")
    return files


def read_missing_lists(meta: Path) -> dict[str, str]:
    """Sample name -> the missing-skeleton list that names it, from every such list in ``meta``."""
    if not meta.is_dir():
        raise DatasetError(f"metadata folder {meta} not found; point --meta at the ntu_meta folder")
    missing: dict[str, str] = {}
    for path in sorted(meta.glob(MISSING_LIST_GLOB)):
        for match in NAME_PATTERN.finditer(read_input_text(path, "missing-skeleton list")):
            missing.setdefault(match.group(0), path.name)
    return missing


def read_class_names(meta: Path) -> list[str]:
    """Class names in label order from the first class-name file found in ``meta``."""
    for file_name in CLASS_NAME_FILES:
        path = meta / file_name
        if path.is_file():
            try:
                text = read_input_text(path, "class-name file", errors="strict")
            except UnicodeDecodeError:
                raise DatasetError(
                    f"{path} is not UTF-8 text; it should list one class name per line"
                ) from None
            except OSError as err:
                raise DatasetError(f"{path} cannot be read ({err.strerror or err})") from None
            return _names_in_label_order(path, [line.strip() for line in text.splitlines() if line.strip()])
    raise DatasetError(f"no class-name file in {meta}; expected one of {', '.join(CLASS_NAME_FILES)}")


def _names_in_label_order(path: Path, lines: list[str]) -> list[str]:
    """Names from ``index<TAB>name`` lines (placed by their 1-based index; a header line first is
    skipped) or from plain lines in label order; DatasetError when the indices are not 1, 2, 3, ...
    (a header read as class 0 shifted every label by one)."""
    if not any("\t" in line for line in lines):
        return lines
    rows = [line.split("\t", 1) for line in lines]
    if rows and not rows[0][0].strip().isdigit():
        rows = rows[1:]  # a header such as "index<TAB>name"
    indices = [row[0].strip() for row in rows]
    if len(rows) != sum(len(row) == 2 for row in rows) or indices != [
        str(i) for i in range(1, len(rows) + 1)
    ]:
        raise DatasetError(
            f"{path}: the lines must be <index><TAB><name> with the indices 1, 2, 3, ... in order"
        )
    return [row[1].strip() for row in rows]


def _class_names(
    meta: str | Path | None, names: list[str] | None, num_classes: int, report: ImportReport
) -> list[str]:
    if meta is None or names is None:
        report.notes.append("ntu: no metadata folder, so classes are named A001... and no list is applied")
        return [f"A{a:03d}" for a in range(1, num_classes + 1)]
    if len(names) < num_classes:
        raise DatasetError(
            f"the class-name file in {meta} has {len(names)} names, the data needs {num_classes}"
        )
    return names[:num_classes]


def ntu_splits(
    subjects: np.ndarray, cameras: np.ndarray, setups: np.ndarray, benchmarks: tuple[str, ...]
) -> dict[str, np.ndarray]:
    """``<benchmark>_train`` / ``<benchmark>_val`` sample indices for the official protocols."""
    train_masks = {
        "xsub": np.isin(subjects, sorted(XSUB_TRAIN_SUBJECTS)),
        "xview": np.isin(cameras, sorted(XVIEW_TRAIN_CAMERAS)),
        "xset": setups % 2 == 0,
    }
    splits = {}
    for benchmark in benchmarks:
        if benchmark not in train_masks:
            raise DatasetError(f"unknown NTU benchmark {benchmark!r}; use one of {', '.join(BENCHMARKS)}")
        train = train_masks[benchmark]
        splits[f"{benchmark}_train"] = np.flatnonzero(train)
        splits[f"{benchmark}_val"] = np.flatnonzero(~train)
    return splits
