"""Translation between the skeleton contract (core) and the bharnet_ros ROS messages."""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Time
from std_msgs.msg import Header

from bharnet_ros.core.skeleton import CHANNELS, HAND_JOINTS, LEFT, RIGHT, SkeletonError, SkeletonFrame
from bharnet_ros.msg import PersonSkeleton


def stamp_to_seconds(stamp: Time) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def seconds_to_stamp(seconds: float) -> Time:
    nanoseconds = round(seconds * 1e9)
    return Time(sec=nanoseconds // 1_000_000_000, nanosec=nanoseconds % 1_000_000_000)


def frame_to_msg(
    frame: SkeletonFrame, header: Header, image_size: tuple[int, int] = (0, 0)
) -> PersonSkeleton:
    """Message for one person; ``header`` is the source image's, so stamp and frame_id carry over."""
    return PersonSkeleton(
        header=header,
        person_id=int(frame.person_id),
        body_layout=frame.layout,
        space=frame.space,
        image_width=frame.image_size[0],
        image_height=frame.image_size[1],
        body=frame.body.ravel(),
        left_hand=frame.hands[LEFT].ravel(),
        right_hand=frame.hands[RIGHT].ravel(),
        left_hand_present=bool(frame.hand_present[LEFT]),
        right_hand_present=bool(frame.hand_present[RIGHT]),
    )


def msg_to_frame(msg: PersonSkeleton) -> SkeletonFrame:
    """Contract frame from a message; raises SkeletonError for wrong sizes, layouts or NaN values."""
    body = _joints(msg.body, "body")
    hands = np.stack([_hand(msg.left_hand, "left_hand"), _hand(msg.right_hand, "right_hand")])
    return SkeletonFrame(
        timestamp=stamp_to_seconds(msg.header.stamp),
        body=body,
        hands=hands,
        hand_present=np.array([msg.left_hand_present, msg.right_hand_present]),
        person_id=msg.person_id,
        layout=msg.body_layout,
        space=msg.space,
        image_size=(msg.image_width, msg.image_height),
    )


def _joints(values, field: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float32)
    if array.size % CHANNELS:
        raise SkeletonError(f"{field} has {array.size} values, not a multiple of {CHANNELS} (x, y, z, score)")
    return array.reshape(-1, CHANNELS)


def _hand(values, field: str) -> np.ndarray:
    """An absent hand may be sent as an empty array; anything else must be 21 joints."""
    if len(values) == 0:
        return np.zeros((HAND_JOINTS, CHANNELS), np.float32)
    joints = _joints(values, field)
    if len(joints) != HAND_JOINTS:
        raise SkeletonError(
            f"{field} needs {HAND_JOINTS} joints x {CHANNELS} values, got {len(joints)} joints"
        )
    return joints
