"""MediaPipe Tasks ``.task`` bundles built offline from the models the mediapipe wheel ships.

The Tasks PoseLandmarker and HandLandmarker load a ``.task`` bundle: an uncompressed, 4-byte
aligned zip of two TFLite models. No mediapipe wheel ships a bundle, and nothing may be
downloaded, but mediapipe 0.10.21 ships every model a bundle needs (see
``../shared/design/perception.md``):

* hand: ``palm_detection_full.tflite`` as ``hand_detector.tflite`` and ``hand_landmark_full.tflite``
  as ``hand_landmarks_detector.tflite``, both as they are;
* pose: ``pose_detection.tflite`` as ``pose_detector.tflite`` and ``pose_landmark_full.tflite`` as
  ``pose_landmarks_detector.tflite``. The latter has no metadata, and the Tasks graph refuses a
  float input without normalisation metadata, so image-input metadata with mean 0 and std 255
  (the [0, 1] input range the legacy graph uses) is added first.

Bundles are built on first use into a cache folder (:func:`cache_dir`), named after the
mediapipe version so that an upgrade rebuilds them, and written atomically so that two
processes starting at once (a pose node and ``bharnet extract``) cannot read a half-written one.
``python -m bharnet_ros.core.task_bundles`` builds them ahead of time (an image build, a shared cache).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bharnet_ros.core.pose import import_mediapipe

STALE_SECONDS = 3600  # a temporary bundle this old is a killed build's, not one still being written
CACHE_ENV = "BHARNET_CACHE_DIR"  # overrides the cache folder (tests point it at tmp_path)
WRITERS = "mediapipe.tasks.python.metadata.metadata_writers"
POSE_INPUT_MEAN, POSE_INPUT_STD = 0.0, 255.0  # pixel / 255: the pose landmark model's [0, 1] input


@dataclass(frozen=True)
class BundleSpec:
    """One bundle: member name in the zip -> model file under mediapipe/modules, and which to annotate."""

    name: str
    members: dict[str, str]
    needs_image_metadata: tuple[str, ...] = ()


POSE_BUNDLE = BundleSpec(
    "pose_landmarker",
    {
        "pose_detector.tflite": "pose_detection/pose_detection.tflite",
        "pose_landmarks_detector.tflite": "pose_landmark/pose_landmark_full.tflite",
    },
    needs_image_metadata=("pose_landmarks_detector.tflite",),
)
HAND_BUNDLE = BundleSpec(
    "hand_landmarker",
    {
        "hand_detector.tflite": "palm_detection/palm_detection_full.tflite",
        "hand_landmarks_detector.tflite": "hand_landmark/hand_landmark_full.tflite",
    },
)


@dataclass(frozen=True)
class TaskBundles:
    """Paths of the built bundles."""

    pose: Path
    hand: Path


def cache_dir() -> Path:
    """``$BHARNET_CACHE_DIR``, else ``$XDG_CACHE_HOME/bharnet_ros``, else ``~/.cache/bharnet_ros``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "bharnet_ros"


def ensure_bundles(folder: Path | None = None) -> TaskBundles:
    """The pose and hand bundles in ``folder`` (default :func:`cache_dir`), built where missing."""
    folder = cache_dir() if folder is None else Path(folder)
    return TaskBundles(pose=ensure_bundle(POSE_BUNDLE, folder), hand=ensure_bundle(HAND_BUNDLE, folder))


class BundleError(OSError):
    """A bundle that cannot be built or loaded; one line naming the file and the fix."""


def ensure_bundle(spec: BundleSpec, folder: Path) -> Path:
    """Path of one bundle, built from the wheel's models where it is missing or does not hold them
    (a file cut off by a power cut, or damaged: MediaPipe failed on it at every start)."""
    mediapipe = import_mediapipe()
    path = folder / f"{spec.name}-mediapipe{mediapipe.__version__}.task"
    members = _members(spec, mediapipe)
    if path.is_file() and _holds(path, members):
        return path
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _write_atomically(path, members)
    except OSError as err:
        hint = f"set {CACHE_ENV} to a writable folder"
        raise BundleError(f"cannot build {path.name} in {folder} ({err}); {hint}") from None
    return path


def _members(spec: BundleSpec, mediapipe: Any) -> dict[str, bytes]:
    """The bundle's members, from the model files the mediapipe wheel ships."""
    modules = Path(mediapipe.__file__).parent / "modules"
    members = {}
    for member, source in spec.members.items():
        model = modules / source
        if not model.is_file():
            raise BundleError(f"mediapipe {mediapipe.__version__} lacks {source}; use mediapipe 0.10.21")
        data = model.read_bytes()
        members[member] = _with_image_metadata(data) if member in spec.needs_image_metadata else data
    return members


def _holds(path: Path, members: dict[str, bytes]) -> bool:
    """Whether the zip at ``path`` holds exactly ``members`` (names, sizes and CRCs)."""
    try:
        with zipfile.ZipFile(path) as bundle:
            found = {info.filename: (info.file_size, info.CRC) for info in bundle.infolist()}
    except (OSError, zipfile.BadZipFile, ValueError):
        return False
    return found == {name: (len(data), zlib.crc32(data)) for name, data in members.items()}


def _with_image_metadata(model: bytes) -> bytes:
    """The model with RGB image-input metadata (mean 0, std 255), which the Tasks graph requires."""
    metadata_writer = import_mediapipe(f"{WRITERS}.metadata_writer")
    writer = metadata_writer.MetadataWriter.create(bytearray(model))
    writer.add_image_input(norm_mean=[POSE_INPUT_MEAN], norm_std=[POSE_INPUT_STD])
    annotated, _ = writer.populate()
    return bytes(annotated)


def _write_atomically(path: Path, members: dict[str, bytes]) -> None:
    """Write the aligned zip next to ``path``, on disk and readable by every user the umask allows
    (a cache built at set-up by another user serves the node's), and move it into place in one
    step; temporaries a killed build left an hour ago or more go."""
    bundle_utils = import_mediapipe(f"{WRITERS}.model_asset_bundle_utils")
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".task")
    os.close(handle)
    try:
        bundle_utils.create_model_asset_bundle(members, temporary)
        with open(temporary, "rb+") as written:
            os.fsync(written.fileno())
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(temporary, 0o666 & ~mask)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    for stale in path.parent.glob(f".{path.stem}-*.task"):
        with contextlib.suppress(OSError):
            if time.time() - stale.stat().st_mtime > STALE_SECONDS:
                stale.unlink()


if __name__ == "__main__":
    built = ensure_bundles()
    print(f"MediaPipe Tasks bundles: {built.pose} and {built.hand}")
