"""The PersonSkeleton message layout as plain fields, shared by rclpy messages and rosbags messages.

Both the nodes (rclpy classes) and the bag tools (rosbags classes, no ROS install needed) build and
read ``bharnet_ros/msg/PersonSkeleton`` through these two functions, so the wire format and its
checks exist once.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from bharnet_ros.core.skeleton import CHANNELS, HAND_JOINTS, LEFT, RIGHT, SkeletonError, SkeletonFrame


def person_fields(frame: SkeletonFrame) -> dict[str, Any]:
    """Keyword arguments for a PersonSkeleton message (all but ``header``)."""
    return {
        "person_id": int(frame.person_id),
        "body_layout": frame.layout,
        "space": frame.space,
        "image_width": frame.image_size[0],
        "image_height": frame.image_size[1],
        "body": frame.body.ravel(),
        "left_hand": frame.hands[LEFT].ravel(),
        "right_hand": frame.hands[RIGHT].ravel(),
        "left_hand_present": bool(frame.hand_present[LEFT]),
        "right_hand_present": bool(frame.hand_present[RIGHT]),
    }


def frame_from_person(person: Any, timestamp: float) -> SkeletonFrame:
    """Contract frame from any PersonSkeleton-shaped object; SkeletonError for sizes, layouts or NaN."""
    hands = np.stack([_hand(person.left_hand, "left_hand"), _hand(person.right_hand, "right_hand")])
    return SkeletonFrame(
        timestamp=timestamp,
        body=_joints(person.body, "body"),
        hands=hands,
        hand_present=np.array([person.left_hand_present, person.right_hand_present]),
        person_id=int(person.person_id),
        layout=person.body_layout,
        space=person.space,
        image_size=(person.image_width, person.image_height),
    )


def _joints(values: Any, field: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float32)
    if array.size % CHANNELS:
        raise SkeletonError(f"{field} has {array.size} values, not a multiple of {CHANNELS} (x, y, z, score)")
    return array.reshape(-1, CHANNELS)


def _hand(values: Any, field: str) -> np.ndarray:
    """An absent hand may be sent as an empty array; anything else must be 21 joints."""
    if len(values) == 0:
        return np.zeros((HAND_JOINTS, CHANNELS), np.float32)
    joints = _joints(values, field)
    if len(joints) != HAND_JOINTS:
        raise SkeletonError(
            f"{field} needs {HAND_JOINTS} joints x {CHANNELS} values, got {len(joints)} joints"
        )
    return joints


MOST_DECODED_SKELETONS = 1024  # 4x the skeletons a message is read for (frame_rules.MOST_PER_MESSAGE)


def skeleton_count(data: bytes) -> int | None:
    """How many skeletons a serialized PersonSkeletonArray says it holds, read from its CDR without
    decoding it (None where the bytes end first): the header's stamp and frame_id, then the
    sequence's length, aligned to 4 bytes from the end of the 4-byte encapsulation. Decoding makes
    Python objects of each: 120 MB of empty skeletons, 10 KB compressed in a bag, took 4 GB."""
    if len(data) < 16:
        return None
    order = "<" if data[1] == 1 else ">"  # representation CDR_LE (0x0001) or CDR_BE (0x0000)
    (frame_id_bytes,) = struct.unpack_from(order + "I", data, 12)
    at = 16 + frame_id_bytes
    at += -(at - 4) % 4
    if at + 4 > len(data):
        return None
    return struct.unpack_from(order + "I", data, at)[0]


def too_many_skeletons(data: bytes) -> int | None:
    """The count a serialized PersonSkeletonArray claims where it is over :data:`MOST_DECODED_SKELETONS`
    (refused before decoding, by the bag reader and the recognizer alike); None where it is not."""
    count = skeleton_count(data)
    return count if count is not None and count > MOST_DECODED_SKELETONS else None
