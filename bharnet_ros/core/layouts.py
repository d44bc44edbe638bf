"""Skeleton layouts: joint names, kinematic trees and bone pairs.

Every array that carries joints (pose stage output, dataset samples, model input) is indexed by
one of these layouts, so the joint order is written down exactly once. The trees are also the
graphs the GCN uses and the (child, parent) pairs that define the bone modality.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SkeletonLayout:
    """A named joint order with a kinematic tree (each joint's parent; the root is its own)."""

    name: str
    joint_names: tuple[str, ...]
    parents: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.joint_names) != len(self.parents):
            raise ValueError(
                f"layout {self.name}: {len(self.joint_names)} names, {len(self.parents)} parents"
            )
        roots = [j for j, p in enumerate(self.parents) if j == p]
        if len(roots) != 1:
            raise ValueError(f"layout {self.name}: expected one root, found {roots}")

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def root(self) -> int:
        return next(j for j, p in enumerate(self.parents) if j == p)

    @property
    def edges(self) -> tuple[tuple[int, int], ...]:
        """(child, parent) pairs of the tree, root excluded: the graph's inward edges."""
        return tuple((j, p) for j, p in enumerate(self.parents) if j != p)

    def index(self, joint_name: str) -> int:
        return self.joint_names.index(joint_name)


def _tree(names: tuple[str, ...], parent_of: dict[str, str], root: str) -> tuple[int, ...]:
    """Parent indices from a child->parent name map, so the tables below stay readable."""
    index = {n: i for i, n in enumerate(names)}
    return tuple(index[root] if n == root else index[parent_of[n]] for n in names)


# --- NTU RGB+D / Kinect v2, 25 joints (0-based Kinect order) -----------------------------------
NTU25_NAMES = (
    "spine_base", "spine_mid", "neck", "head",
    "left_shoulder", "left_elbow", "left_wrist", "left_hand",
    "right_shoulder", "right_elbow", "right_wrist", "right_hand",
    "left_hip", "left_knee", "left_ankle", "left_foot",
    "right_hip", "right_knee", "right_ankle", "right_foot",
    "spine_shoulder", "left_hand_tip", "left_thumb", "right_hand_tip", "right_thumb",
)  # fmt: skip
# NTU's inward edges (1-based child, parent) from the dataset's own graph definition.
_NTU25_INWARD_1BASED = (
    (1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9), (11, 10),
    (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19),
    (22, 23), (23, 8), (24, 25), (25, 12),
)  # fmt: skip
NTU25 = SkeletonLayout(
    "ntu25",
    NTU25_NAMES,
    tuple({c - 1: p - 1 for c, p in _NTU25_INWARD_1BASED}.get(j, j) for j in range(len(NTU25_NAMES))),
)

# --- MediaPipe Pose, 33 landmarks ---------------------------------------------------------------
MP33_NAMES = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_pinky", "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)  # fmt: skip
# A spanning tree rooted at the nose; shoulders hang off the head the way NTU's hang off the neck.
_MP33_PARENT_OF = {
    "left_eye_inner": "nose", "left_eye": "left_eye_inner", "left_eye_outer": "left_eye",
    "left_ear": "left_eye_outer", "right_eye_inner": "nose", "right_eye": "right_eye_inner",
    "right_eye_outer": "right_eye", "right_ear": "right_eye_outer",
    "mouth_left": "nose", "mouth_right": "nose",
    "left_shoulder": "nose", "right_shoulder": "nose",
    "left_elbow": "left_shoulder", "left_wrist": "left_elbow", "left_pinky": "left_wrist",
    "left_index": "left_wrist", "left_thumb": "left_wrist",
    "right_elbow": "right_shoulder", "right_wrist": "right_elbow", "right_pinky": "right_wrist",
    "right_index": "right_wrist", "right_thumb": "right_wrist",
    "left_hip": "left_shoulder", "left_knee": "left_hip", "left_ankle": "left_knee",
    "left_heel": "left_ankle", "left_foot_index": "left_ankle",
    "right_hip": "right_shoulder", "right_knee": "right_hip", "right_ankle": "right_knee",
    "right_heel": "right_ankle", "right_foot_index": "right_ankle",
}  # fmt: skip
MP33 = SkeletonLayout("mediapipe33", MP33_NAMES, _tree(MP33_NAMES, _MP33_PARENT_OF, "nose"))

# --- Hand, 21 landmarks (MediaPipe order = COCO-WholeBody = OpenPose) ---------------------------
_FINGER_PARTS = {
    "thumb": ("cmc", "mcp", "ip", "tip"),
    "index": ("mcp", "pip", "dip", "tip"),
    "middle": ("mcp", "pip", "dip", "tip"),
    "ring": ("mcp", "pip", "dip", "tip"),
    "pinky": ("mcp", "pip", "dip", "tip"),
}
HAND21_NAMES = ("wrist", *(f"{finger}_{part}" for finger, parts in _FINGER_PARTS.items() for part in parts))
# Wrist-rooted tree with 20 edges; each finger is a chain from the wrist. MediaPipe's drawing set
# adds a palm loop, which is not a tree and would give bones that double count.
HAND21 = SkeletonLayout(
    "hand21", HAND21_NAMES, tuple(0 if j % 4 == 1 or j == 0 else j - 1 for j in range(21))
)

LAYOUTS: dict[str, SkeletonLayout] = {layout.name: layout for layout in (NTU25, MP33, HAND21)}


def get_layout(name: str) -> SkeletonLayout:
    """Look a layout up by name, with an error that lists the known ones."""
    try:
        return LAYOUTS[name]
    except KeyError:
        raise ValueError(f"unknown skeleton layout {name!r}; known: {sorted(LAYOUTS)}") from None


def mirror_permutation(layout: str) -> np.ndarray:
    """Joint permutation that swaps every ``left`` joint with its ``right`` twin (by name).

    The mirror image of a skeleton is its joints in this order with x negated (about a centred
    origin); both the training augmentation and the model's test-time mirroring use it.
    """
    names = get_layout(layout).joint_names
    index = {name: i for i, name in enumerate(names)}
    swap = {"left": "right", "right": "left"}
    permutation = []
    for name in names:
        twin = "_".join(swap.get(part, part) for part in name.split("_"))
        if twin not in index:
            raise ValueError(f"layout {layout}: joint {name!r} has no mirror twin {twin!r}")
        permutation.append(index[twin])
    return np.asarray(permutation, np.int64)


# --- MediaPipe 33 -> NTU 25 ---------------------------------------------------------------------
# Each NTU joint is the mean of these MediaPipe joints; spine and neck are derived below.
_MP33_TO_NTU25_DIRECT = {
    "spine_base": ("left_hip", "right_hip"),
    "head": ("left_ear", "right_ear"),
    "left_shoulder": ("left_shoulder",), "left_elbow": ("left_elbow",), "left_wrist": ("left_wrist",),
    "left_hand": ("left_wrist", "left_pinky", "left_index"),
    "right_shoulder": ("right_shoulder",), "right_elbow": ("right_elbow",),
    "right_wrist": ("right_wrist",), "right_hand": ("right_wrist", "right_pinky", "right_index"),
    "left_hip": ("left_hip",), "left_knee": ("left_knee",), "left_ankle": ("left_ankle",),
    "left_foot": ("left_foot_index",),
    "right_hip": ("right_hip",), "right_knee": ("right_knee",), "right_ankle": ("right_ankle",),
    "right_foot": ("right_foot_index",),
    "spine_shoulder": ("left_shoulder", "right_shoulder"),
    "left_hand_tip": ("left_index",), "left_thumb": ("left_thumb",),
    "right_hand_tip": ("right_index",), "right_thumb": ("right_thumb",),
}  # fmt: skip
# Where a hand was detected, its landmarks are more exact than the pose's three hand points.
_HAND_TO_NTU25 = {
    "hand": ("wrist", "index_mcp", "middle_mcp", "ring_mcp", "pinky_mcp"),
    "hand_tip": ("middle_tip",),
    "thumb": ("thumb_tip",),
}
NECK_TOWARD_HEAD = 0.35  # MediaPipe has no neck: it sits this far from mid-shoulder to mid-ear.


def _mean_joints(points: np.ndarray, layout: SkeletonLayout, names: tuple[str, ...]) -> np.ndarray:
    """Mean of coordinates, minimum of scores (a derived joint is as reliable as its worst source);
    all zeros, i.e. absent, where any source is absent (all zeros), not a mean pulled to the origin."""
    rows = points[..., [layout.index(n) for n in names], :]
    out = rows.mean(axis=-2)
    out[..., 3] = rows[..., 3].min(axis=-1)
    out[(~rows.any(axis=-1)).any(axis=-1)] = 0.0
    return out


def mp33_to_ntu25(
    body: np.ndarray, hands: np.ndarray | None = None, hand_present: np.ndarray | None = None
) -> np.ndarray:
    """Map MediaPipe Pose joints (..., 33, 4) to NTU/Kinect v2 order (..., 25, 4).

    Channels are (x, y, z, score) in whatever space the input is in. Spine base/mid/shoulder,
    neck and head are derived from hips, shoulders and ears. With ``hands`` (..., 2, 21, 4) and
    ``hand_present`` (..., 2) the hand, hand-tip and thumb joints come from the detected hand
    instead of the pose's coarse hand points; hands must be in the body's space (image space, as
    the pose stage emits both). L/R are kept: MediaPipe's left is the subject's
    left, as is Kinect's on a non-mirrored camera.
    """
    body = np.asarray(body, dtype=np.float32)
    if body.shape[-2:] != (33, 4):
        raise ValueError(f"expected MediaPipe pose joints (..., 33, 4), got {body.shape}")
    out = np.zeros(body.shape[:-2] + (25, 4), dtype=np.float32)
    for ntu_name, mp_names in _MP33_TO_NTU25_DIRECT.items():
        out[..., NTU25.index(ntu_name), :] = _mean_joints(body, MP33, mp_names)
    base, top = out[..., 0, :], out[..., NTU25.index("spine_shoulder"), :]
    out[..., NTU25.index("spine_mid"), :] = _blend(base, top, 0.5)
    out[..., NTU25.index("neck"), :] = _blend(top, out[..., NTU25.index("head"), :], NECK_TOWARD_HEAD)
    if hands is not None:
        if hand_present is None:  # indexing a 0-d array of None failed deep inside
            raise ValueError("hands need their hand_present flags (..., 2): which slots hold a hand")
        _overwrite_hand_joints(out, np.asarray(hands, np.float32), np.asarray(hand_present, bool))
    return out


def _blend(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """The point ``t`` of the way from ``a`` to ``b``; absent (all zeros) where either is absent,
    as in :func:`_mean_joints`, not a point pulled toward the origin."""
    out = a + t * (b - a)
    out[..., 3] = np.minimum(a[..., 3], b[..., 3])
    out[~a.any(axis=-1) | ~b.any(axis=-1)] = 0.0
    return out


def _overwrite_hand_joints(out: np.ndarray, hands: np.ndarray, present: np.ndarray) -> None:
    """Hand z is relative to its wrist (MediaPipe), so it is re-anchored on the body's wrist depth."""
    for side_index, side in enumerate(("left", "right")):
        hand = hands[..., side_index, :, :]
        mask = present[..., side_index]
        wrist_z = out[..., NTU25.index(f"{side}_wrist"), 2]
        for suffix, hand_names in _HAND_TO_NTU25.items():
            j = NTU25.index(f"{side}_{suffix}")
            value = _mean_joints(hand, HAND21, hand_names)
            value[..., 2] += wrist_z
            out[..., j, :] = np.where(mask[..., None], value, out[..., j, :])
