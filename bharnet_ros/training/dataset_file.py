"""The dataset file: one compressed, pickle-free ``.npz`` per :class:`SkeletonDataset`.

The file holds a JSON ``header`` (format name and version, layout, space, class names, per-class
hand flags, splits, notes, which attribute columns exist and whether hands are stored), the frame
arrays, the per-sample columns and one ``attribute_<name>`` string array per attribute.
docs/datasets.md lists every key. A dataset without any hand leaves the hand arrays out; they load
as read-only zeros. Version 2 added the attributes; version-1 files load with none, and newer
versions are refused.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bharnet_ros.core.skeleton import CHANNELS, HAND_JOINTS, unpacking_problem
from bharnet_ros.training.dataset import ID_FIELDS, DatasetError, SkeletonDataset, read_only_zeros

FORMAT_NAME = "bharnet_ros.skeleton_dataset"
FORMAT_VERSION = 2  # 2: per-sample string attributes
SAMPLE_KEYS = ("offsets", "labels", "names", "persons", *ID_FIELDS, "image_sizes")
HAND_KEYS = ("hands", "hand_present")
ATTRIBUTE_PREFIX = "attribute_"  # file key of attribute column <name>
EXPANSION_FLOOR = 1 << 30  # bytes a dataset file may unpack to whatever it holds (core.skeleton)
REAL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))  # a narrower one would be widened on load


def save_dataset(data: SkeletonDataset, path: str | Path) -> Path:
    """Write a compressed ``.npz`` (the suffix is added if missing); returns the path written.

    The file is written next to the target and renamed into place, so a crash never leaves a
    half-written dataset under the final name. Without any hand, the hand arrays are left out.
    """
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        with open(partial, "wb") as handle:
            np.savez_compressed(handle, **_file_arrays(data))
        os.replace(partial, path)
    except BaseException:  # a full disk, an interrupt: no half-written file left beside the target
        partial.unlink(missing_ok=True)
        raise
    return path


def load_dataset(path: str | Path) -> SkeletonDataset:
    """Read a file written by :func:`save_dataset`; refuses pickled content and newer format versions."""
    path = Path(path)
    if path.is_dir():
        raise FileNotFoundError(f"{path} is a folder; give a dataset file (.npz, from `bharnet import`)")
    if not path.is_file():
        raise FileNotFoundError(f"dataset file {path} not found")
    arrays = _read_npz(path)
    header = _parse_header(arrays.pop("header", None), path)
    stored = ("body", "timestamps", *(HAND_KEYS if header.get("hands_stored", True) else ()), *SAMPLE_KEYS)
    missing = [key for key in stored if key not in arrays]
    if missing:
        raise DatasetError(f"{path}: missing arrays {missing}; the file is damaged or not a dataset")
    for key in ("body", "timestamps", "hands"):  # text or complex numbers would be cast, silently,
        if key in arrays and arrays[key].dtype not in REAL_DTYPES:  # and bytes widened eightfold
            raise DatasetError(
                f"{path}: {key} holds {arrays[key].dtype} values, not real numbers of 32 or 64 bits; "
                "the file is damaged"
            )
    if not header.get("hands_stored", True):
        frames = arrays["body"].shape[:2]
        arrays["hands"] = read_only_zeros((*frames, 2, HAND_JOINTS, CHANNELS), np.float32)
        arrays["hand_present"] = read_only_zeros((*frames, 2), bool)
    try:
        return SkeletonDataset(
            **{key: arrays[key] for key in ("body", "timestamps", *HAND_KEYS, *SAMPLE_KEYS)},
            class_names=header["class_names"],
            layout=header["layout"],
            space=header["space"],
            hand_intensive=header.get("hand_intensive"),
            splits={name: np.asarray(idx, np.int64) for name, idx in header.get("splits", {}).items()},
            notes=header.get("notes", []),
            attributes=_stored_attributes(arrays, header),
        )
    except DatasetError as err:
        raise DatasetError(f"{path}: {err}") from None
    except (TypeError, ValueError, OverflowError) as err:  # arrays the dataset cannot take
        raise DatasetError(f"{path}: the file is damaged ({type(err).__name__}: {err})"[:300]) from None


def _file_arrays(data: SkeletonDataset) -> dict[str, np.ndarray]:
    """Every array the file stores, the JSON header among them, by file key."""
    header = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "layout": data.layout,
        "space": data.space,
        "class_names": data.class_names,
        "hand_intensive": data.hand_intensive,
        "splits": {name: idx.tolist() for name, idx in data.splits.items()},
        "notes": data.notes,
        "hands_stored": data.has_hands,
        "attributes": list(data.attributes),
    }
    arrays = {"header": np.array(json.dumps(header)), "body": data.body, "timestamps": data.timestamps}
    if data.has_hands:
        arrays.update(hands=data.hands, hand_present=data.hand_present)
    arrays.update({key: getattr(data, key) for key in SAMPLE_KEYS})
    arrays.update({ATTRIBUTE_PREFIX + key: values for key, values in data.attributes.items()})
    return arrays


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of the file, loaded without pickle; damaged or pickled content is refused."""
    _check_expansion(path)
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as err:  # numpy and zipfile fail on other files in many ways (EOFError, ...)
        raise DatasetError(_unreadable(path, err)) from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise DatasetError(f"{path} is a single array, not a dataset (.npz with a header)")
    with data:
        try:
            arrays = {key: data[key] for key in data.files}
        except Exception as err:
            raise DatasetError(_unreadable(path, err, inside=True)) from None
    raw = next((key for key, value in arrays.items() if not isinstance(value, np.ndarray)), None)
    if raw is not None:  # numpy hands back the bytes of a member that is no .npy array
        raise DatasetError(f"{path}: its member {raw!r} is not a numpy array; the file is damaged")
    return arrays


def _check_expansion(path: Path) -> None:
    """DatasetError when the arrays would unpack to far more than the file holds."""
    problem = unpacking_problem(path, EXPANSION_FLOOR)
    if problem:
        raise DatasetError(f"{path} {problem}")


def _unreadable(path: Path, err: Exception, inside: bool = False) -> str:
    """Why a dataset file (or, ``inside``, an array in it) could not be read: pickles are refused,
    anything else is damage."""
    pickled = inside or _starts_like_a_pickle(path)
    if isinstance(err, ValueError) and "pickle" in str(err) and pickled:
        return f"{path} holds pickled objects, which are refused (they could run code); export it again"
    if isinstance(err, OSError):
        return f"{path} cannot be read ({err.strerror or err})"
    kind = type(err).__name__
    return f"{path} is no intact dataset file (empty, truncated or not an .npz: {kind}); use an intact copy"


def _starts_like_a_pickle(path: Path) -> bool:
    """Pickles of protocol 2 and later begin with 0x80 (numpy calls any unknown file a pickle)."""
    with open(path, "rb") as stream:
        return stream.read(1) == b"\x80"


def _stored_attributes(arrays: dict[str, np.ndarray], header: dict) -> dict[str, np.ndarray]:
    """The attribute columns the header lists (none in version-1 files)."""
    names = header.get("attributes", [])
    missing = [name for name in names if ATTRIBUTE_PREFIX + name not in arrays]
    if missing:
        raise DatasetError(f"attribute arrays {missing} are missing; the file is damaged")
    columns = {name: arrays[ATTRIBUTE_PREFIX + name] for name in names}
    for name, values in columns.items():
        if values.dtype.kind != "U":
            raise DatasetError(f"attribute {name!r} is not a string array")
    return columns


def _parse_header(raw: np.ndarray | None, path: Path) -> dict:
    if raw is None or raw.dtype.kind != "U" or raw.shape != ():
        raise DatasetError(f"{path} has no dataset header; it is not a bharnet_ros dataset file")
    try:
        header = json.loads(str(raw))
    except (ValueError, RecursionError) as err:  # bad JSON, a 5000-digit number, nesting 100 000 deep
        raise DatasetError(f"{path}: the header is not usable JSON ({str(err)[:120]})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise DatasetError(f"{path} is not a {FORMAT_NAME} file")
    version = header.get("version")
    if type(version) is not int or version < 1:
        raise DatasetError(f"{path}: the header's 'version' is not a format version; the file is damaged")
    if version > FORMAT_VERSION:
        raise DatasetError(
            f"{path}: dataset format version {version} is newer than this code reads "
            f"({FORMAT_VERSION}); update bharnet_ros"
        )
    for key in ("class_names", "layout", "space"):
        if key not in header:
            raise DatasetError(f"{path}: the header lacks {key!r}")
    for key, (check, kind) in HEADER_TYPES.items():
        if key in header and not check(header[key]):
            raise DatasetError(f"{path}: the header's {key!r} is not {kind}; the file is damaged")
    return header


def _list_of(kind: type) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, list) and all(type(item) is kind for item in value)


# Header fields and the JSON types they must have: a hand-edited or hostile header is refused by
# name instead of failing later as an error from deep inside.
HEADER_TYPES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "class_names": (_list_of(str), "a list of strings"),
    "layout": (lambda value: isinstance(value, str), "a string"),
    "space": (lambda value: isinstance(value, str), "a string"),
    "hand_intensive": (lambda value: value is None or _list_of(bool)(value), "a list of true/false"),
    "splits": (
        lambda value: isinstance(value, dict) and all(_list_of(int)(idx) for idx in value.values()),
        "a mapping of split names to lists of sample indices",
    ),
    "notes": (_list_of(str), "a list of strings"),
    "attributes": (_list_of(str), "a list of strings"),
    "hands_stored": (lambda value: isinstance(value, bool), "true or false"),
}
