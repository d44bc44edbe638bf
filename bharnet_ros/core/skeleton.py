"""The skeleton data contract shared by the pose stage, datasets, recorder and model.

A *frame* is one person at one instant: body joints (V_b, 4), both hands (2, 21, 4) and a
presence flag per hand. A *sequence* is the same stacked over T frames. Channels are always
(x, y, z, score). Hand slot 0 is the subject's left hand, slot 1 the right. docs/skeleton_contract.md
explains coordinate spaces and units; this module is the single definition in code.
"""

from __future__ import annotations

import operator
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bharnet_ros.core.layouts import HAND21, get_layout

CHANNELS = 4  # x, y, z, score
LEFT, RIGHT = 0, 1  # hand slots: the subject's left and right hand
HAND_JOINTS = HAND21.num_joints
# Coordinate spaces: "image" = x/width, y/height in [0, 1], z MediaPipe relative depth (x's scale);
# "world" = metres in a camera- or body-centred frame (Kinect camera space, MediaPipe world).
SPACES = ("image", "world")
BODY_LAYOUTS = ("mediapipe33", "ntu25")  # layouts a frame's body may have (hand21 is for hands only)
# Largest plausible |x|, |y|, |z| per space: image space allows landmarks several frames outside
# the image (MediaPipe extrapolates); world space allows a large room. Beyond these a value is
# garbage (FLT_MAX, 1e30) that would overflow the model's arithmetic.
COORDINATE_LIMITS = {"image": 10.0, "world": 100.0}
# A zip (.npz) whose arrays would unpack to more than this many times its size, and more than a
# floor, is refused before loading: skeleton arrays compress about 1.5 times, zeros a thousand.
MOST_EXPANSION = 50
SEQUENCE_FILE_FLOOR = 64 << 20  # bytes: a sequence file of 10 minutes at 30 fps holds about 22 MB
TIME_LIMIT = 1e10  # seconds (year 2286 in Unix time): below it, float64 stamps keep < 2 us precision
MAX_IMAGE_SIDE = 2**31 - 1  # image sides are stored as int32 in sequence files
# Width over height (or height over width) of a known image at most: the aspect correction
# multiplies x by it, and a 2^31 x 1 "image" made coordinates of 1e9 (a 360-degree camera is 2:1)
MAX_ASPECT = 100
PERSON_ID_RANGE = (-(2**31), 2**31 - 1)  # the int32 of PersonSkeleton.person_id (files store int64)
FORMAT_VERSION = 1
FILE_KEYS = (  # the arrays of a sequence file, all required
    "format_version", "timestamps", "body", "hands", "hand_present",
    "person_id", "layout", "space", "image_size",
)  # fmt: skip


class SkeletonError(ValueError):
    """Skeleton data that breaks the contract (shape, dtype, NaN, time order)."""


@dataclass
class SkeletonFrame:
    """One person in one camera frame."""

    timestamp: float  # seconds, from the image header (sensor time), not arrival time
    body: np.ndarray  # (V_b, 4)
    hands: np.ndarray = field(default_factory=lambda: np.zeros((2, HAND_JOINTS, CHANNELS), np.float32))
    hand_present: np.ndarray = field(default_factory=lambda: np.zeros(2, bool))
    person_id: int = 0
    layout: str = "mediapipe33"
    space: str = "image"
    image_size: tuple[int, int] = (0, 0)  # (width, height) of the source image, (0, 0) if unknown

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Convert the fields to their contract types and check them; raises SkeletonError.

        Runs when a frame is built, and again where frames enter a buffer, because a frame's fields
        can be reassigned or its arrays mutated after it was built.
        """
        self.body = _float_array(self.body, "body")
        self.hands = _float_array(self.hands, "hands")
        self.hand_present = np.asarray(self.hand_present, dtype=bool)
        self.image_size = checked_image_size(self.image_size)
        self.person_id = _person_id(self.person_id)
        self.timestamp = timestamp_seconds(self.timestamp)
        _check_arrays(self.body[None], self.hands[None], self.hand_present[None], self.layout, self.space)
        self.hand_present = seen_hands(self.hands, self.hand_present)

    @property
    def body_present(self) -> bool:
        return bool(np.any(self.body[:, 3] > 0))

    @property
    def person_found(self) -> bool:
        """Whether the pose stage saw anyone: a body or a hand (a frame to publish)."""
        return self.body_present or bool(self.hand_present.any())

    @classmethod
    def empty(cls, timestamp: float, layout: str = "mediapipe33", person_id: int = 0) -> SkeletonFrame:
        """A frame in which nothing was found: zeros and no hands, so the timeline has no hole."""
        v = get_layout(layout).num_joints
        return cls(timestamp, np.zeros((v, CHANNELS), np.float32), person_id=person_id, layout=layout)


@dataclass
class SkeletonSequence:
    """T frames of one person, as arrays; the unit the recorder, datasets and model exchange."""

    timestamps: np.ndarray  # (T,) seconds, non-decreasing
    body: np.ndarray  # (T, V_b, 4)
    hands: np.ndarray  # (T, 2, 21, 4)
    hand_present: np.ndarray  # (T, 2) bool
    person_id: int = 0
    layout: str = "mediapipe33"
    space: str = "image"
    image_size: tuple[int, int] = (0, 0)  # (width, height) of the source frames, (0, 0) if unknown

    def __post_init__(self) -> None:
        self.timestamps = np.asarray(self.timestamps, dtype=np.float64)
        self.body = _float_array(self.body, "body")
        self.hands = _float_array(self.hands, "hands")
        self.hand_present = np.asarray(self.hand_present, dtype=bool)
        self.image_size = checked_image_size(self.image_size)
        self.person_id = _person_id(self.person_id)
        _check_arrays(self.body, self.hands, self.hand_present, self.layout, self.space)
        self.hand_present = seen_hands(self.hands, self.hand_present)
        if not np.isfinite(self.timestamps).all():
            raise SkeletonError("timestamps contain NaN or infinite values")
        if np.abs(self.timestamps).max(initial=0.0) > TIME_LIMIT:
            raise SkeletonError(f"timestamps beyond ±{TIME_LIMIT:g} s (year 2286 as a Unix time)")
        if self.timestamps.shape != (len(self.body),):
            raise SkeletonError(f"timestamps {self.timestamps.shape} do not match {len(self.body)} frames")
        if np.any(np.diff(self.timestamps) < 0):
            raise SkeletonError("timestamps go backwards; split the sequence where time jumps back")

    def __len__(self) -> int:
        return len(self.body)

    @classmethod
    def from_frames(
        cls, frames: list[SkeletonFrame], image_size: tuple[int, int] | None = None
    ) -> SkeletonSequence:
        """Stack frames of one person (same layout and space); image size defaults to the first frame's."""
        if not frames:
            raise SkeletonError("cannot build a sequence from zero frames")
        first = frames[0]
        if any(f.layout != first.layout or f.space != first.space for f in frames):
            raise SkeletonError("frames mix layouts or coordinate spaces")
        return cls(
            timestamps=np.array([f.timestamp for f in frames]),
            body=np.stack([f.body for f in frames]),
            hands=np.stack([f.hands for f in frames]),
            hand_present=np.stack([f.hand_present for f in frames]),
            person_id=first.person_id,
            layout=first.layout,
            space=first.space,
            image_size=first.image_size if image_size is None else image_size,
        )

    def frame(self, t: int) -> SkeletonFrame:
        return SkeletonFrame(
            self.timestamps[t], self.body[t], self.hands[t], self.hand_present[t],
            self.person_id, self.layout, self.space, self.image_size,
        )  # fmt: skip

    def save(self, path: str | Path) -> Path:
        """Write a compressed .npz (no pickled objects, so loading runs no code)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            path,
            format_version=np.int32(FORMAT_VERSION),
            timestamps=self.timestamps,
            body=self.body,
            hands=self.hands,
            hand_present=self.hand_present,
            person_id=np.int64(self.person_id),
            layout=np.str_(self.layout),
            space=np.str_(self.space),
            image_size=np.array(self.image_size, np.int32),
        )
        return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")

    @classmethod
    def load(cls, path: str | Path) -> SkeletonSequence:
        """Read a file written by :meth:`save`, as strictly as a live frame is checked.

        Content that breaks the contract (a missing key, a float or array where a whole number is
        stored, an unknown format version) raises SkeletonError naming the file; numpy's own errors
        for a file that is no readable .npz at all (cut, empty, not a zip) pass through.
        """
        problem = unpacking_problem(Path(path), SEQUENCE_FILE_FLOOR)
        if problem:
            raise SkeletonError(f"{path}: {problem}")
        data = np.load(path, allow_pickle=False)
        try:
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise SkeletonError("holds a single array (.npy), not the arrays of a sequence file")
            with data:
                arrays = _file_arrays(data)
            return cls._from_arrays(arrays)
        except SkeletonError as err:
            raise SkeletonError(f"{path}: {err}") from None

    @classmethod
    def _from_arrays(cls, data: dict[str, np.ndarray]) -> SkeletonSequence:
        """A sequence from the arrays of a sequence file; SkeletonError for any that is odd."""
        version = _whole(_scalar(data["format_version"], "format_version"), "format_version")
        if version > FORMAT_VERSION:
            raise SkeletonError(f"format version {version} is newer than this code ({FORMAT_VERSION})")
        if version < 1:
            raise SkeletonError(f"format version {version} is no version (they start at 1)")
        return cls(
            timestamps=_number_array(data["timestamps"], "timestamps"),
            body=_number_array(data["body"], "body"),
            hands=_number_array(data["hands"], "hands"),
            hand_present=_flags(data["hand_present"], "hand_present"),
            person_id=_scalar(data["person_id"], "person_id"),
            layout=_text(data["layout"], "layout"),
            space=_text(data["space"], "space"),
            image_size=_number_array(data["image_size"], "image_size"),
        )


def seen_hands(hands: np.ndarray, present: np.ndarray) -> np.ndarray:
    """The presence flags with every hand whose x, y, z are all zero marked absent, and every hand
    with a joint not observed (all four channels zero): a publisher (or a file) that sets the flag
    but holds no hand must not pass an empty hand off as a detection, and a hand is all 21 joints
    or none, as MediaPipe gives it (a missing fingertip would be normalised as a point at the
    image's corner, several shoulder widths away)."""
    some_point = np.any(hands[..., :3] != 0.0, axis=(-2, -1))
    every_joint = np.all(np.any(hands != 0.0, axis=-1), axis=-1)
    return present & some_point & every_joint


def _file_arrays(data: Any) -> dict[str, np.ndarray]:
    """The arrays of an open sequence file; SkeletonError for a missing one, or one that would need
    unpickling (numpy refuses it with a plain ValueError)."""
    missing = [key for key in FILE_KEYS if key not in data]
    if missing:
        raise SkeletonError(f"missing arrays {missing}; the file is damaged or not a skeleton sequence")
    try:
        return {key: data[key] for key in FILE_KEYS}
    except ValueError as err:
        raise SkeletonError(f"holds an array that is no plain numbers or text ({err})") from None


def _scalar(value: np.ndarray, name: str) -> Any:
    """The one value of a 0-d file array; SkeletonError for arrays of any other shape."""
    if value.ndim != 0:
        raise SkeletonError(f"{name} must be a single value, got an array of shape {value.shape}")
    return value[()]


def _text(value: np.ndarray, name: str) -> str:
    """A 0-d text array as str; SkeletonError for numbers or arrays of text."""
    if value.dtype.kind != "U":
        raise SkeletonError(f"{name} must be text, got {value.dtype} values")
    return str(_scalar(value, name))


def _number_array(value: np.ndarray, name: str) -> np.ndarray:
    """A file array of real numbers, unchanged; SkeletonError for text, bools or complex numbers,
    which a cast would turn into numbers silently (or fail on with a plain ValueError)."""
    if value.dtype.kind not in "fiu":
        raise SkeletonError(f"{name} holds {value.dtype} values, not real numbers")
    return value


def _flags(value: np.ndarray, name: str) -> np.ndarray:
    """A file array of flags: bools, or whole numbers 0 and 1; SkeletonError for anything else (0.2
    or 7 is no flag, though a cast to bool would read it as True)."""
    if value.dtype.kind == "b":
        return value
    if value.dtype.kind not in "iu" or not np.isin(value, (0, 1)).all():
        raise SkeletonError(f"{name} must hold bools (or 0 and 1), got {value.dtype} values")
    return value.astype(bool)


def _float_array(value: Any, name: str) -> np.ndarray:
    """``value`` as a float32 array; SkeletonError for what is not numbers (text, ragged lists)."""
    try:
        return np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise SkeletonError(f"{name} is not an array of numbers ({err})") from None


def timestamp_seconds(value: Any) -> float:
    """A timestamp as a float within ±:data:`TIME_LIMIT`; SkeletonError for None, text that is no
    number, NaN, inf, or a stamp so large that frames 1/30 s apart round to one instant."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise SkeletonError(f"timestamp {value!r} is not a number of seconds") from None
    if not np.isfinite(seconds):
        raise SkeletonError(f"timestamp {seconds} is not a finite number of seconds")
    if abs(seconds) > TIME_LIMIT:
        raise SkeletonError(f"timestamp {seconds:g} is beyond ±{TIME_LIMIT:g} s (year 2286 as a Unix time)")
    return seconds


def _whole(value: Any, what: str) -> int:
    """An integer (Python or numpy) as int; SkeletonError for floats, text or None."""
    try:
        return operator.index(value)
    except TypeError:
        raise SkeletonError(f"{what} must be a whole number, got {value!r}") from None


def checked_image_size(value: Any) -> tuple[int, int]:
    """(width, height) in pixels, each 0 (unknown) to MAX_IMAGE_SIDE, one side at most MAX_ASPECT
    times the other when both are known; SkeletonError otherwise."""
    try:
        width, height = value
    except (TypeError, ValueError):
        raise SkeletonError(f"image_size must be (width, height), got {value!r}") from None
    size = (_whole(width, "image width"), _whole(height, "image height"))
    if not all(0 <= side <= MAX_IMAGE_SIDE for side in size):
        raise SkeletonError(f"image_size {size} must hold sides from 0 (unknown) to {MAX_IMAGE_SIDE} pixels")
    if min(size) > 0 and max(size) > MAX_ASPECT * min(size):
        raise SkeletonError(
            f"image_size {size} is no camera image: one side is over {MAX_ASPECT} times the other"
        )
    return size


def _person_id(value: Any) -> int:
    """A person id as int within the int32 range of the skeleton message; SkeletonError otherwise."""
    person = _whole(value, "person_id")
    low, high = PERSON_ID_RANGE
    if not low <= person <= high:
        raise SkeletonError(f"person_id {person} is outside the int32 range of PersonSkeleton.person_id")
    return person


def check_plausible(body: np.ndarray, hands: np.ndarray, space: str) -> None:
    """SkeletonError for coordinates beyond :data:`COORDINATE_LIMITS` in ``space`` or scores outside
    [0, 1], in arrays of any leading shape whose last axis is the four channels."""
    limit = COORDINATE_LIMITS[space]
    for name, array in (("body", body), ("hand", hands)):
        if np.abs(array[..., :3]).max(initial=0.0) > limit:
            raise SkeletonError(f"{name} coordinates beyond ±{limit:g} are not plausible in {space} space")
    for name, scores in (("body", body[..., 3]), ("hand", hands[..., 3])):
        if scores.size and (scores.min() < 0.0 or scores.max() > 1.0):
            raise SkeletonError(f"{name} scores must lie in [0, 1]")


def _check_arrays(body: np.ndarray, hands: np.ndarray, present: np.ndarray, layout: str, space: str) -> None:
    """Shapes, finiteness, bounds and vocabulary of frame-stacked arrays; raises SkeletonError."""
    if layout not in BODY_LAYOUTS:
        raise SkeletonError(f"{layout!r} is not a body layout; a body is one of {', '.join(BODY_LAYOUTS)}")
    v = get_layout(layout).num_joints
    if np.ndim(body) == 0:  # len() of it was a TypeError, outside every caller's SkeletonError
        raise SkeletonError(f"body has shape (), the {layout} contract needs (frames, {v}, {CHANNELS})")
    t = len(body)
    expected = {
        "body": (body, (t, v, CHANNELS)),
        "hands": (hands, (t, 2, HAND_JOINTS, CHANNELS)),
        "hand_present": (present, (t, 2)),
    }
    for name, (array, shape) in expected.items():
        if array.shape[1:] != shape[1:]:
            raise SkeletonError(
                f"{name} has shape {array.shape[1:]}, the {layout} contract needs {shape[1:]}"
            )
        if array.shape != shape:  # one frame per body frame
            raise SkeletonError(f"{name} holds {len(array)} frames and body {t}; give both the same frames")
    for name, array in (("body", body), ("hands", hands)):
        if not np.isfinite(array).all():
            raise SkeletonError(
                f"skeleton contains NaN or infinite values in its {name}; drop the frame or zero the joints"
            )
    if space not in SPACES:
        raise SkeletonError(f"unknown coordinate space {space!r}; use one of {SPACES}")
    check_plausible(body, hands, space)


def unpacking_problem(path: Path, floor: int) -> str | None:
    """Why the arrays of the .npz ``path`` are not unpacked: they would take more than
    :data:`MOST_EXPANSION` times its size and more than ``floor`` bytes (a small file of zeros
    claims gigabytes). None for a file that is fine, or no zip archive (left to its loader to name)."""
    try:
        with zipfile.ZipFile(path) as archive:
            declared = sum(member.file_size for member in archive.infolist())
        size = path.stat().st_size
    except (zipfile.BadZipFile, OSError, ValueError):
        return None
    if declared <= max(floor, MOST_EXPANSION * size):
        return None
    return (
        f"would unpack {size / 2**20:.1f} MiB into {declared / 2**30:.1f} GiB of arrays, far more than "
        "skeleton data compresses; it is refused (a damaged or hostile file)"
    )
