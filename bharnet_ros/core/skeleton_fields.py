"""The PersonSkeleton message layout as plain fields, shared by rclpy messages and rosbags messages.

Both the nodes (rclpy classes) and the bag tools (rosbags classes, no ROS install needed) build and
read ``bharnet_ros/msg/PersonSkeleton`` through these two functions, so the wire format and its
checks exist once.
"""

from __future__ import annotations

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
