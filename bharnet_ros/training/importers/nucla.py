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

from bharnet_ros.core.layouts import NTU25
from bharnet_ros.training.dataset import DatasetError, Sample, SkeletonDataset
from bharnet_ros.training.importers import ImportReport, Progress, no_progress, require_finite

FPS = 30.0  # assumed, see the module docstring
NAME_PATTERN = re.compile(r"a(\d+)_s(\d+)_e(\d+)_v(\d+)")
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


def v1_to_ntu25(joints: np.ndarray) -> np.ndarray:
    """Kinect v1 joints (T, 20, 3) -> ntu25 (T, 25, 4); score 1 on present frames, missing joints 0."""
    t = len(joints)
    present = np.abs(joints).sum(axis=(1, 2)) > 0
    out = np.zeros((t, NTU25.num_joints, 4), np.float32)
    out[:, NTU25_FROM_V1, :3] = joints
    out[:, NTU25_FROM_V1, 3] = present[:, None]
    return out


def read_nucla_sample(path: Path, fps: float = FPS) -> Sample:
    """One CTR-GCN style JSON file as a single-person sample."""
    record = json.loads(path.read_text(encoding="utf-8"))
    name = str(record.get("file_name", path.stem))
    match = NAME_PATTERN.search(name)
    if match is None:
        raise DatasetError(f"file name {name!r} is not like a01_s01_e01_v01")
    action, subject, episode, view = (int(group) for group in match.groups())
    label = int(record["label"]) - 1 if "label" in record else list(ACTIONS).index(action)
    joints = np.asarray(record["skeletons"], np.float32)
    joints = joints.reshape(len(joints), len(KINECT_V1_JOINTS), 3)
    body = v1_to_ntu25(joints)
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
    )
    return require_finite(sample)


def import_nucla(
    source: str | Path, benchmark: str | None = "xview", fps: float = FPS, progress: Progress = no_progress
) -> tuple[SkeletonDataset, ImportReport]:
    """Import every ``*.json`` under ``source``; ``benchmark`` xview adds xview_train/xview_val."""
    if benchmark not in (None, "xview"):
        raise DatasetError(f"N-UCLA has one protocol, xview; {benchmark!r} is not available")
    source = Path(source)
    if not source.is_dir():
        raise FileNotFoundError(f"{source} is not a folder; give the folder of N-UCLA .json files")
    files = sorted(source.rglob("*.json"))
    if not files:
        raise DatasetError(f"no .json files under {source}")
    report = ImportReport()
    samples = []
    for path in progress(files):
        try:
            samples.append(read_nucla_sample(path, fps))
        except (DatasetError, ValueError, KeyError, OSError) as err:
            report.skip(path.stem, "unreadable sample", f"{type(err).__name__}: {err}")
    views = np.array([s.camera for s in samples], np.int64)
    train = np.isin(views, sorted(XVIEW_TRAIN_VIEWS))
    splits = {"xview_train": np.flatnonzero(train), "xview_val": np.flatnonzero(~train)} if benchmark else {}
    report.notes.extend(_NOTES)
    dataset = SkeletonDataset.from_samples(
        samples, list(ACTIONS.values()), "ntu25", "world", splits=splits, notes=_NOTES
    )
    return dataset, report


_NOTES = (
    "nucla: N-UCLA Kinect v1 skeletons mapped to ntu25 by joint name (shoulder_center -> spine_shoulder)",
    "nucla: neck, hand tips and thumbs do not exist in Kinect v1 and are zero with score 0",
    "nucla: score = 1 where the skeleton is present; no hands; timestamps assume 30 fps",
)
