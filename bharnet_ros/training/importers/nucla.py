"""Northwestern-UCLA Multiview Action3D (as distributed with CTR-GCN) -> :class:`SkeletonDataset`.

Each sample is a JSON file with ``file_name`` (``a01_s01_e01_v01``: action, subject, episode,
view), ``skeletons`` (a list of frames, each 20 joints x (x, y, z), or 60 flat values) and
``label`` (1-based over the 10 actions). The 20 joints are the Kinect v1 skeleton; they are mapped
to the Kinect v2 order (layout ntu25) by joint name:

* Kinect v1 ``shoulder_center`` (between the shoulders) is v2 ``spine_shoulder``;
* v2's ``neck``, both ``hand_tip`` and both ``thumb`` joints do not exist in v1. These 5 joints
  are zero with score 0.

A joint's score is 1 in frames where the skeleton is present (the JSON has no tracking state);
hands are absent. Ids: subject = s, camera = view v, replication = episode e. The standard
protocol (``xview``) trains on views 1 and 2 and tests on view 3. The JSON stores no time;
timestamps assume 30 fps.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from bharnet_ros.core.labels import shorten
from bharnet_ros.core.layouts import NTU25
from bharnet_ros.training.dataset import DatasetError, Sample, SkeletonDataset
from bharnet_ros.training.importers import (
    ImportReport,
    Progress,
    check_fps,
    check_sample,
    files_below,
    no_progress,
    read_input_text,
)

FPS = 30.0  # assumed, see the module docstring
NAME_PATTERN = re.compile(r"a(\d+)_s(\d+)_e(\d+)_v(\d+)", re.ASCII)
KINECT_V1_JOINTS = (
    "hip_center", "spine", "shoulder_center", "head",
    "shoulder_left", "elbow_left", "wrist_left", "hand_left",
    "shoulder_right", "elbow_right", "wrist_right", "hand_right",
    "hip_left", "knee_left", "ankle_left", "foot_left",
    "hip_right", "knee_right", "ankle_right", "foot_right",
)  # fmt: skip
KINECT_V1_TO_NTU25 = {
    "hip_center": "spine_base", "spine": "spine_mid", "shoulder_center": "spine_shoulder", "head": "head",
    **{
        f"{part}_{side}": f"{side}_{part}"
        for side in ("left", "right")
        for part in ("shoulder", "elbow", "wrist", "hand", "hip", "knee", "ankle", "foot")
    },
}  # fmt: skip
NTU25_FROM_V1 = np.array([NTU25.index(KINECT_V1_TO_NTU25[name]) for name in KINECT_V1_JOINTS])
# The 10 actions by their a-number (a07 and a10 are not in the dataset); label = position here.
ACTIONS = {
    1: "pick up with one hand", 2: "pick up with two hands", 3: "drop trash", 4: "walk around",
    5: "sit down", 6: "stand up", 8: "donning", 9: "doffing", 11: "throw", 12: "carry",
}  # fmt: skip
XVIEW_TRAIN_VIEWS = frozenset((1, 2))
VIEWS = 3  # cameras v1..v3
MAX_ID = 9999  # action, subject, episode and view numbers in the file name have two digits
MAX_NAME_CHARS = 255  # the longest file_name kept as a sample name


def v1_to_ntu25(joints: np.ndarray) -> np.ndarray:
    """Kinect v1 joints (T, 20, 3) -> ntu25 (T, 25, 4); score 1 on present frames, missing joints 0."""
    t = len(joints)
    present = np.abs(joints).sum(axis=(1, 2)) > 0
    out = np.zeros((t, NTU25.num_joints, 4), np.float32)
    out[:, NTU25_FROM_V1, :3] = joints
    out[:, NTU25_FROM_V1, 3] = present[:, None]
    return out


def read_nucla_sample(path: Path, fps: float = FPS) -> Sample:
    """One CTR-GCN style JSON file as a single-person sample; DatasetError says what is wrong."""
    record = _read_record(path)
    name = record.get("file_name", path.stem)
    if not isinstance(name, str) or len(name) > MAX_NAME_CHARS:
        raise DatasetError(f"file_name is {_shown(name)}; expected a name like a01_s01_e01_v01")
    action, subject, episode, view = _name_ids(name)
    label = _label(record["label"]) if "label" in record else _action_label(action)
    if action in ACTIONS and label != _action_label(action):  # one of the two is wrong: trust neither
        named = list(ACTIONS.values())
        raise DatasetError(
            f"label {label + 1} ({named[label]}) disagrees with the file name's a{action:02d} "
            f"({ACTIONS[action]}); fix the file's label or its file_name"
        )
    if "skeletons" not in record:
        raise DatasetError("no 'skeletons' entry; expected a list of frames of 20 joints x (x, y, z)")
    body = v1_to_ntu25(_joints(record["skeletons"]))
    t = len(body)
    sample = Sample(
        name=name,
        label=label,
        body=body[None],
        hands=np.broadcast_to(np.zeros((), np.float32), (1, t, 2, 21, 4)),
        hand_present=np.broadcast_to(np.zeros((), bool), (1, t, 2)),
        timestamps=np.arange(t) / fps,
        subject=subject,
        camera=view,
        replication=episode,
        attributes={"subject": f"s{subject:02d}"},  # as N-UCLA names them: no other data's "1"
    )
    return check_sample(sample, "world")


def _read_record(path: Path) -> dict:
    """The JSON object of one file; size, syntax and top-level type checked."""
    try:
        record = json.loads(read_input_text(path, "N-UCLA .json file", errors="strict"))
    except RecursionError:
        raise DatasetError("JSON nested too deeply to be an N-UCLA sample") from None
    except ValueError as err:  # also UnicodeDecodeError and JSONDecodeError
        raise DatasetError(f"not valid UTF-8 JSON ({err})") from None
    if not isinstance(record, dict):
        raise DatasetError(
            f"the JSON holds {_kind(record)}, expected an object with file_name, skeletons, label"
        )
    return record


def _name_ids(name: str) -> tuple[int, int, int, int]:
    """(action, subject, episode, view) from a name like ``a01_s01_e01_v01``."""
    match = NAME_PATTERN.search(name)
    if match is None:
        raise DatasetError(f"file name {_shown(name)} is not like a01_s01_e01_v01")
    ids = tuple(int(group) for group in match.groups())
    if max(ids) > MAX_ID:
        raise DatasetError(
            f"file name {_shown(name)} has a number above {MAX_ID}; expected like a01_s01_e01_v01"
        )
    if not 1 <= ids[3] <= VIEWS or ids[1] < 1:  # view 9 or 0 went into xview_val (episodes count from 0)
        raise DatasetError(
            f"file name {_shown(name)} names no N-UCLA subject (from s01) and view (v01..v{VIEWS:02d}); "
            "expected like a01_s01_e00_v01"
        )
    return ids


def _label(value: object) -> int:
    """A 1-based ``label`` entry as a 0-based label; whole numbers 1..10 only."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not 1 <= value <= len(ACTIONS) or not float(value).is_integer():  # range first:
        # float() of a 400-digit JSON integer overflows
        raise DatasetError(f"label is {_shown(value)}; expected a whole number 1..{len(ACTIONS)}")
    return int(value) - 1


def _action_label(action: int) -> int:
    """The label of an a-number when the file has no ``label`` entry."""
    if action not in ACTIONS:
        raise DatasetError(f"no label and a{action:02d} is not an N-UCLA action ({sorted(ACTIONS)})")
    return list(ACTIONS).index(action)


def _joints(skeletons: object) -> np.ndarray:
    """``skeletons`` as (T, 20, 3) float32, T >= 1: frames of 20 x (x, y, z) or of 60 numbers."""
    if not isinstance(skeletons, list):
        raise DatasetError(f"skeletons is {_kind(skeletons)}; expected a list of frames")
    if not skeletons:
        raise DatasetError("skeletons is an empty list; a sample needs at least one frame")
    try:
        values = np.array(skeletons)
    except ValueError:
        raise DatasetError("skeletons are ragged: frames or joints differ in length") from None
    if values.dtype.kind not in "iuf":
        raise DatasetError("skeletons hold something other than numbers (null, text, true/false or lists)")
    joints = len(KINECT_V1_JOINTS)
    if values.shape[1:] not in ((joints, 3), (joints * 3,)):
        raise DatasetError(f"skeletons have shape {values.shape}; expected (frames, 20, 3) or (frames, 60)")
    return values.reshape(len(values), joints, 3).astype(np.float32)


def _shown(value: object) -> str:
    """A JSON value as the file spells it, cut short (a giant value must not flood the report)."""
    return shorten(json.dumps(value), 40)


def _kind(value: object) -> str:
    """A JSON value's type in the words of JSON, for error messages."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null"}
    return names.get(type(value), "a number")


def import_nucla(
    source: str | Path, benchmark: str | None = "xview", fps: float = FPS, progress: Progress = no_progress
) -> tuple[SkeletonDataset, ImportReport]:
    """Import every ``*.json`` under ``source``; ``benchmark`` xview adds xview_train/xview_val."""
    fps = check_fps(fps)
    if benchmark not in (None, "xview"):
        raise DatasetError(f"N-UCLA has one protocol, xview; {benchmark!r} is not available")
    source = Path(source)
    if not source.is_dir():
        raise FileNotFoundError(f"{source} is not a folder; give the folder of N-UCLA .json files")
    report = ImportReport()
    files = files_below(source, [".json"], report)
    if not files and not report.skipped:
        raise DatasetError(f"no .json files under {source}")
    samples, seen = [], {}  # (action, subject, episode, view) -> the file_name that named it first
    for path in progress(files):
        try:
            sample = read_nucla_sample(path, fps)
        except (ValueError, OSError) as err:  # DatasetError is a ValueError
            report.skip(path.stem, "unreadable sample", str(err))
            continue
        clip = _name_ids(sample.name)  # a01_s01_e01_v01 and a1_s1_e1_v1_copy are one recording
        if clip in seen:
            earlier = seen[clip]
            which = f"its file_name {earlier}" if earlier == sample.name else f"{sample.name}, as {earlier},"
            report.skip(path.stem, "duplicate sample", f"{which} came in an earlier file")
            continue
        seen[clip] = sample.name
        samples.append(sample)
    views = np.array([s.camera for s in samples], np.int64)
    train = np.isin(views, sorted(XVIEW_TRAIN_VIEWS))
    splits = {"xview_train": np.flatnonzero(train), "xview_val": np.flatnonzero(~train)} if benchmark else {}
    notes = _notes(fps)
    report.notes.extend(notes)
    dataset = SkeletonDataset.from_samples(
        samples, list(ACTIONS.values()), "ntu25", "world", splits=splits, notes=notes
    )
    return dataset, report


def _notes(fps: float) -> list[str]:
    return [
        "nucla: N-UCLA Kinect v1 skeletons mapped to ntu25 by joint name (shoulder_center -> spine_shoulder)",
        "nucla: neck, hand tips and thumbs do not exist in Kinect v1 and are zero with score 0",
        f"nucla: score = 1 where the skeleton is present; no hands; timestamps assume {fps:g} fps",
    ]
