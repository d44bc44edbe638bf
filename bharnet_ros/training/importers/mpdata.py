"""MediaPipe Holistic recordings from the public action-detection tutorial -> :class:`SkeletonDataset`.

Two inputs are read (layout mediapipe33, space image):

* **Raw tutorial folders** ``MP_Data/<class>/<sequence>/<frame>.npy``: one flat vector per frame,
  pose 33 x (x, y, z, visibility), then face 468 x k, left hand 21 x k, right hand 21 x k, where
  k = 3 (1662 values, the tutorial) or k = 4 (2172 values, a common variant). A 258-value
  variant without the face is read too. An all-zero block means "not detected".
* **Repacked signer files** ``signer_*.npz`` (``pose`` (N, T, 33, 4), ``left_hand`` and
  ``right_hand`` (N, T, 21, 3), ``label``, ``class_names``, optional ``seq_id``).

Both are read without pickles, each array's declared size checked before it is allocated; a file
of the wrong type, shape or size is skipped with the reason.

Body scores are MediaPipe's visibility; a hand's score is 1 in frames where it was detected. The
face is dropped. The tutorial stores no time, so timestamps assume 30 fps (``fps`` changes it).

Left and right: the ``left_hand`` block goes to hand slot 0, the subject's left hand, with no
swap. Holistic attaches each hand to a pose wrist: on the four shared signers the left-hand
block's wrist is nearer pose wrist 15 (left_wrist) than 16 in 99.9-100% of its frames, and the
right-hand block's nearer 16 in 99.6-100% (:func:`nearer_pose_wrist`). The collection loop of
the notebook behind the raw example hands ``cap.read()`` frames to Holistic without ``cv2.flip``,
and MediaPipe names the subject's own sides on an unmirrored image, so pose 15 and the left-hand
block are the subject's left. docs/datasets.md has the numbers. For recordings known to come
from a mirrored (selfie) camera, ``mirrored=True`` flips x back and swaps the sides.
"""

from __future__ import annotations

import dataclasses
import math
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from bharnet_ros.core.layouts import MP33
from bharnet_ros.core.text_files import open_regular_file
from bharnet_ros.training.classes import drop_empty_classes, select_classes
from bharnet_ros.training.dataset import UNKNOWN, DatasetError, Sample, SkeletonDataset, parse_digits
from bharnet_ros.training.importers import ImportReport, Progress, check_fps, check_sample, no_progress

FPS = 30.0  # assumed; the tutorial records webcam frames without timestamps
POSE_VALUES = 33 * 4
FACE_POINTS = 468
HAND_JOINTS = 21
SIGNER_PREFIX = "signer_"
SIGNER_KEYS = ("pose", "left_hand", "right_hand", "label", "class_names", "seq_id")  # seq_id optional
# Array sizes the headers may declare, checked before numpy allocates anything: a real signer file
# holds 2.8 MB (int8 arrays grow twelvefold on import: 1 GiB in a 1 MB file took 12 GB), a raw
# frame vector 2172 numbers.
MAX_SIGNER_BYTES = 64 << 20
MAX_FRAME_BYTES = 1 << 16
# What a truncated or damaged .npy/.npz raises besides DatasetError: numpy's ValueError, the zip
# reader's BadZipFile, zlib's error inside a member, EOFError, KeyError for a lost member, OSError.
UNREADABLE = (DatasetError, ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error)


@dataclass(frozen=True)
class FrameLayout:
    """Values per face landmark and per hand landmark in one flat tutorial frame vector."""

    face_values: int  # 0: the vector has no face block
    hand_values: int

    @property
    def size(self) -> int:
        return POSE_VALUES + FACE_POINTS * self.face_values + 2 * HAND_JOINTS * self.hand_values


FRAME_LAYOUTS = {layout.size: layout for layout in (FrameLayout(3, 3), FrameLayout(4, 4), FrameLayout(0, 3))}
POSE_WRISTS = (MP33.index("left_wrist"), MP33.index("right_wrist"))  # 15, 16
# Swaps every left_* joint with its right_* twin (used for mirrored recordings).
MIRROR_JOINTS = np.array(
    [
        MP33.index(name.replace("left", "@").replace("right", "left").replace("@", "right"))
        for name in MP33.joint_names
    ]
)


def nearer_pose_wrist(pose: np.ndarray, hand: np.ndarray) -> np.ndarray:
    """For each frame with the hand block detected: 0 if its wrist is nearer pose wrist 15
    (left_wrist) than pose wrist 16 (right_wrist) in the image, else 1. Shapes (T, 33, 4), (T, 21, 3).
    """
    present = np.abs(hand).sum(axis=(-1, -2)) > 0
    wrist = hand[present][:, 0, :2]
    pose = pose[present]
    to_left = np.linalg.norm(wrist - pose[:, POSE_WRISTS[0], :2], axis=-1)
    to_right = np.linalg.norm(wrist - pose[:, POSE_WRISTS[1], :2], axis=-1)
    return (to_right < to_left).astype(np.int64)


def split_frames(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat frames (T, D) -> pose (T, 33, 4), left hand (T, 21, 3), right hand (T, 21, 3)."""
    layout = FRAME_LAYOUTS.get(frames.shape[-1])
    if frames.ndim != 2 or layout is None:
        sizes = ", ".join(str(size) for size in sorted(FRAME_LAYOUTS))
        raise DatasetError(f"frame vectors have shape {frames.shape[1:]}, expected one of {sizes} values")
    t, hand = len(frames), HAND_JOINTS * layout.hand_values
    start = POSE_VALUES + FACE_POINTS * layout.face_values
    pose = frames[:, :POSE_VALUES].reshape(t, 33, 4)
    left = frames[:, start : start + hand].reshape(t, HAND_JOINTS, layout.hand_values)[..., :3]
    right = frames[:, start + hand :].reshape(t, HAND_JOINTS, layout.hand_values)[..., :3]
    return pose, left, right


def holistic_sample(
    name: str,
    label: int,
    pose: np.ndarray,
    hands: tuple[np.ndarray, np.ndarray],
    timestamps: np.ndarray,
    subject: int = UNKNOWN,
    mirrored: bool = False,
) -> Sample:
    """One single-person sample from pose (T, 33, 4) and the (left, right) hand blocks (T, 21, 3)."""
    body = np.asarray(pose, np.float32)
    blocks = np.stack([np.asarray(hand, np.float32) for hand in hands], axis=1)  # (T, 2, 21, 3)
    present = np.abs(blocks).sum(axis=(2, 3)) > 0
    hand_array = np.concatenate(
        [blocks, np.broadcast_to(present[:, :, None, None], (*blocks.shape[:3], 1))], -1
    )
    hand_array = hand_array.astype(np.float32)
    if mirrored:
        body, hand_array, present = mirror(body, hand_array, present)
    return Sample(name, int(label), body[None], hand_array[None], present[None], timestamps, subject=subject)


def mirror(body: np.ndarray, hands: np.ndarray, present: np.ndarray) -> tuple[np.ndarray, ...]:
    """Undo a horizontal flip in image space: x -> 1 - x where observed, left and right swapped."""
    body, hands = body.copy(), hands.copy()
    seen_body = np.abs(body).sum(axis=-1) > 0
    body[..., 0] = np.where(seen_body, 1.0 - body[..., 0], 0.0)
    hands[..., 0] = np.where(present[..., None], 1.0 - hands[..., 0], 0.0)
    return body[:, MIRROR_JOINTS], hands[:, ::-1], present[:, ::-1]


# --- raw MP_Data folders -----------------------------------------------------------------------


def read_mp_data(
    root: Path,
    classes: list[str] | None = None,
    fps: float = FPS,
    mirrored: bool = False,
    report: ImportReport | None = None,
    progress: Progress = no_progress,
) -> SkeletonDataset:
    """Read ``root/<class>/<sequence>/<frame>.npy``; classes in the given order, else sorted."""
    report = report if report is not None else ImportReport()
    found = sorted(p.name for p in root.iterdir() if _has_sequences(p))
    if classes is not None and (left_out := [name for name in found if name not in classes]):
        report.notes.append(f"classes left out (not in --classes): {', '.join(left_out)}")
    classes = classes if classes is not None else found
    if not classes:
        raise DatasetError(f"no <class>/<sequence>/<frame>.npy folders under {root}")
    for name in classes:
        if not _has_sequences(root / name):
            report.skip(name, "class without sequences", f"no {root / name}/<sequence>/<frame>.npy")
    jobs = [(label, seq) for label, name in enumerate(classes) for seq in _sequence_dirs(root / name)]
    samples = []
    for label, seq_dir in progress(jobs):
        try:
            samples.append(_raw_sequence(seq_dir, label, fps, mirrored))
        except UNREADABLE as err:
            report.skip(f"{seq_dir.parent.name}/{seq_dir.name}", "unreadable sequence", str(err))
    return SkeletonDataset.from_samples(samples, classes, "mediapipe33", "image", notes=_notes(fps, mirrored))


def _has_sequences(path: Path) -> bool:
    return path.is_dir() and any(_sequence_dirs(path))


def _sequence_dirs(class_dir: Path) -> list[Path]:
    if not class_dir.is_dir():
        return []
    dirs = [p for p in class_dir.iterdir() if p.is_dir() and any(p.glob("*.npy"))]
    return sorted(dirs, key=_natural_key)


def _natural_key(path: Path) -> tuple[int, int | str]:
    number = parse_digits(path.stem)
    return (0, number) if number is not None else (1, path.stem)


def _raw_sequence(seq_dir: Path, label: int, fps: float, mirrored: bool) -> Sample:
    files = sorted((p for p in seq_dir.glob("*.npy") if parse_digits(p.stem) is not None), key=_natural_key)
    if not files:
        raise DatasetError("no numbered frame files (0.npy, 1.npy, ...)")
    if len({int(p.stem) for p in files}) < len(files):  # 05.npy and 5.npy: one frame twice
        raise DatasetError("two frame files have one number (such as 5.npy and 05.npy)")
    vectors = [_read_frame(path) for path in files]
    if len({v.shape for v in vectors}) != 1:
        raise DatasetError("frame vectors differ in length")
    pose, left, right = split_frames(np.stack(vectors))
    numbers = np.array([int(p.stem) for p in files], np.float64)
    name = f"{seq_dir.parent.name}/{seq_dir.name}"
    sample = holistic_sample(name, label, pose, (left, right), numbers / fps, mirrored=mirrored)
    return check_sample(sample, "image")


def _read_frame(path: Path) -> np.ndarray:
    """One raw frame vector, its size checked from the .npy header before it is read."""
    with open_regular_file(path) as stream:  # a FIFO among the frames is refused, not waited on
        vector = read_npy(stream, path.name, MAX_FRAME_BYTES)
    if vector.dtype.kind not in "iuf":  # a date or a record among float frames broke the stacking
        raise DatasetError(f"{path.name} holds {vector.dtype} values, not numbers")
    return vector


# --- bounded .npy / .npz reading ---------------------------------------------------------------


def read_npy(stream: IO[bytes], name: str, max_bytes: int) -> np.ndarray:
    """The array in an open .npy stream, refused before anything is allocated when its header
    declares Python objects (never unpickled), a negative dimension or more than ``max_bytes``,
    and after reading when the data is shorter than the header says.

    ``np.load`` sizes its buffer from the header alone, so a 100-byte file could ask for terabytes.
    The array returned is read-only.
    """
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
    else:
        raise DatasetError(f"{name}: .npy format version {version} is not supported (1.0 or 2.0)")
    if dtype.hasobject:
        raise DatasetError(f"{name} holds Python objects; save plain arrays (numbers or text)")
    size = math.prod(shape) * dtype.itemsize
    if min(shape, default=0) < 0 or dtype.itemsize <= 0 or size > max_bytes:  # '<V99…9': itemsize -1
        raise DatasetError(
            f"{name} declares shape {shape} of {dtype}, more than the {max_bytes} bytes allowed "
            "here; the file is damaged or not what it is named"
        )
    data = stream.read(size)
    if len(data) < size:
        raise DatasetError(f"{name} is truncated: {len(data)} of {size} bytes of array data")
    return np.frombuffer(data, dtype, count=math.prod(shape)).reshape(shape, order="F" if fortran else "C")


def read_npz(path: Path, keys: tuple[str, ...], max_bytes: int) -> dict[str, np.ndarray]:
    """The arrays ``keys`` of an .npz file that has them, together at most ``max_bytes``."""
    arrays: dict[str, np.ndarray] = {}
    with open_regular_file(path) as stream, zipfile.ZipFile(stream) as archive:
        members = set(archive.namelist())
        for key in (key for key in keys if f"{key}.npy" in members):
            with _open_member(archive, f"{key}.npy") as stream:
                arrays[key] = read_npy(stream, f"{path.name}:{key}", max_bytes)
            max_bytes -= arrays[key].nbytes
    return arrays


def _open_member(archive: zipfile.ZipFile, member: str) -> IO[bytes]:
    """A member of a zip file opened for reading; DatasetError if it is encrypted or compressed
    in a way the zip reader does not know (it raises RuntimeError or NotImplementedError)."""
    try:
        return archive.open(member)
    except (RuntimeError, NotImplementedError) as err:
        raise DatasetError(f"{member} cannot be unpacked: {err}") from None


# --- repacked signer files ---------------------------------------------------------------------


def read_signer_file(
    path: Path, subject: int = UNKNOWN, fps: float = FPS, mirrored: bool = False
) -> SkeletonDataset:
    """One ``signer_*.npz``; sample names are ``<signer>/<class>/<sequence>``."""
    fps = check_fps(fps)
    arrays = read_npz(path, SIGNER_KEYS, MAX_SIGNER_BYTES)
    check_signer_arrays(arrays, path.name)
    class_names = arrays["class_names"].tolist()
    signer = path.stem.removeprefix(SIGNER_PREFIX)
    seq_ids = arrays.get("seq_id", np.arange(len(arrays["label"]))).tolist()
    attributes = {"subject": signer, "fps": f"{fps:g}", "source": path.parent.name}
    steps = np.arange(arrays["pose"].shape[1]) / fps
    samples = []
    for i, label in enumerate(arrays["label"].tolist()):
        name = f"{signer}/{class_names[label]}/{seq_ids[i]}"
        hands = (arrays["left_hand"][i], arrays["right_hand"][i])
        sample = holistic_sample(name, label, arrays["pose"][i], hands, steps, subject, mirrored)
        sample.attributes = dict(attributes)
        samples.append(check_sample(sample, "image"))
    return SkeletonDataset.from_samples(
        samples, class_names, "mediapipe33", "image", notes=_notes(fps, mirrored)
    )


def check_signer_arrays(arrays: dict[str, np.ndarray], name: str) -> None:
    """DatasetError naming the first array of a signer file with the wrong type, shape or values.

    Expected: ``pose`` (N, T, 33, 4), ``left_hand`` and ``right_hand`` (N, T, 21, 3), all numbers;
    ``label`` (N,) integers indexing ``class_names`` (C,) text; optional ``seq_id`` (N,); N, T >= 1.
    """
    missing = [key for key in SIGNER_KEYS[:-1] if key not in arrays]
    if missing:
        raise DatasetError(f"{name} lacks {missing}; expected a repacked signer_*.npz")
    problem = _signer_problem(arrays)
    if problem:
        raise DatasetError(f"{name}: {problem}")


def _signer_problem(arrays: dict[str, np.ndarray]) -> str:
    """What is wrong with a signer file's arrays, or "" if nothing."""
    pose, labels, names = arrays["pose"], arrays["label"], arrays["class_names"]
    if pose.ndim != 4 or pose.shape[2:] != (33, 4):
        return f"pose has shape {pose.shape}, expected (samples, frames, 33, 4)"
    n, t = pose.shape[:2]
    if n == 0 or t == 0:
        return f"pose has shape {pose.shape}: no samples or no frames"
    for key in ("left_hand", "right_hand"):
        if arrays[key].shape != (n, t, HAND_JOINTS, 3):
            return f"{key} has shape {arrays[key].shape}, expected {(n, t, HAND_JOINTS, 3)} as pose"
    if any(arrays[key].dtype.kind not in "iuf" for key in ("pose", "left_hand", "right_hand")):
        return "pose and hands must hold numbers"
    if names.ndim != 1 or names.dtype.kind != "U" or not len(names):
        return f"class_names must be a non-empty list of text, got {names.dtype} of shape {names.shape}"
    if labels.shape != (n,) or labels.dtype.kind not in "iu":
        return f"label must be {n} integers (one per sample), got {labels.dtype} of shape {labels.shape}"
    if labels.min() < 0 or labels.max() >= len(names):
        return f"labels {labels.min()}..{labels.max()} do not index the {len(names)} class_names"
    if "seq_id" in arrays and arrays["seq_id"].shape != (n,):
        return f"seq_id has shape {arrays['seq_id'].shape}, expected ({n},)"
    return ""


# --- the whole import --------------------------------------------------------------------------


def import_mpdata(
    source: str | Path,
    classes: list[str] | None = None,
    fps: float = FPS,
    mirrored: bool = False,
    progress: Progress = no_progress,
    image_size: tuple[int, int] = (0, 0),
) -> tuple[SkeletonDataset, ImportReport]:
    """Import a signer ``.npz``, a folder of them, or a raw ``MP_Data`` folder (or its parent).

    Neither stores the camera's image size; ``image_size`` (width, height) gives it, so that
    training corrects the aspect as the live node does (0, 0: unknown, left uncorrected).

    Signer files get subject ids 1, 2, ... in file-name order (and the signer's name as the
    ``subject`` attribute) and are merged by class name; raw folders have no subject id.
    ``classes`` fixes the class order; for signer files it also selects the classes kept. Without
    ``classes``, classes that have no sample (the signer files list an empty ``blank``) are
    dropped, with a note.
    """
    source = Path(source)
    fps = check_fps(fps)
    if not source.exists():
        raise FileNotFoundError(f"{source} does not exist; give MP_Data, a signer_*.npz or a folder of them")
    report = ImportReport()
    # MP_Data wins over .npz files beside it (an earlier import's output, say), which are named
    beside = [] if source.is_file() else sorted(source.glob("*.npz"))
    raw = source.is_dir() and (source / "MP_Data").is_dir()
    if raw and beside:
        report.notes.append(
            f"read MP_Data/; left out the .npz files beside it: {', '.join(p.name for p in beside)}"
        )
    signer_files = [source] if source.is_file() else [] if raw else beside
    if signer_files:
        dataset = _read_signers(signer_files, fps, mirrored, report, progress)
        if classes is not None:
            dataset = select_classes(dataset, classes, report)
    else:
        root = source / "MP_Data" if (source / "MP_Data").is_dir() else source
        dataset = read_mp_data(root, classes, fps, mirrored, report, progress)
    if classes is None:  # a class the user asked for stays, even without samples
        dataset = drop_empty_classes(dataset, report)
    if min(image_size) > 0:
        sizes = np.tile(np.asarray(image_size, np.int64), (len(dataset), 1))
        dataset = dataclasses.replace(dataset, image_sizes=sizes)
        dataset.notes.append(f"mpdata: frames of {image_size[0]}x{image_size[1]} pixels (--image-size)")
    else:
        dataset.notes.append(
            "mpdata: image size unknown, so training leaves these samples' aspect uncorrected while "
            "the live node corrects its camera's (give the camera's with --image-size WxH)"
        )
    report.notes.extend(dataset.notes)
    return dataset, report


def _read_signers(
    files: list[Path], fps: float, mirrored: bool, report: ImportReport, progress: Progress
) -> SkeletonDataset:
    dataset = None
    for subject, path in enumerate(progress(files), start=1):
        try:
            part = read_signer_file(path, subject, fps, mirrored)
        except UNREADABLE as err:
            report.skip(path.name, "unreadable signer file", str(err) or type(err).__name__)
            continue
        part.notes.append(f"mpdata: subject {subject} = {path.stem.removeprefix(SIGNER_PREFIX)}")
        dataset = part if dataset is None else dataset.merge(part)
    if dataset is None:
        item, _, detail = report.skipped[-1]
        raise DatasetError(f"none of the signer files could be read ({item}: {detail})")
    return dataset


def _notes(fps: float, mirrored: bool) -> list[str]:
    side = (
        "mirrored input: x flipped back and sides swapped"
        if mirrored
        else "left_hand block -> slot 0 (the subject's left; unflipped webcam frames)"
    )
    return [
        "mpdata: MediaPipe Holistic tutorial recordings, image space (x, y in [0, 1]); face dropped",
        "mpdata: body score = visibility; hand score = 1 where the hand was detected",
        f"mpdata: timestamps assume {fps:g} fps (the tutorial stores no time)",
        f"mpdata: {side}",
    ]
