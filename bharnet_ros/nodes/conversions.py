"""Translation between the core's data (skeleton frames, stamps, images) and ROS messages.

Reading a skeleton message goes through ``core.frame_rules``, which the deterministic bag
evaluation uses too, so both turn the same message into the same frames.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from bharnet_ros.core.frame_rules import person_frame as msg_to_frame
from bharnet_ros.core.frame_rules import stamp_problem
from bharnet_ros.core.frame_rules import stamp_seconds as stamp_to_seconds
from bharnet_ros.core.skeleton import SkeletonFrame
from bharnet_ros.core.skeleton_fields import person_fields
from bharnet_ros.msg import PersonSkeleton


def seconds_to_stamp(seconds: float) -> Time:
    nanoseconds = round(seconds * 1e9)
    return Time(sec=nanoseconds // 1_000_000_000, nanosec=nanoseconds % 1_000_000_000)


MOST_QUEUED_SECONDS = 60.0  # beyond this, a receive time says more about the wall clock than a queue


def queued_seconds(info: Mapping[str, int] | None) -> float:
    """How long a message waited between the middleware receiving it and its callback, from
    rclpy's message info (``received_timestamp``, wall clock ns); 0 where the middleware gives none.
    Bounded to [0, MOST_QUEUED_SECONDS], so a wall-clock jump cannot make up a wait."""
    received = int((info or {}).get("received_timestamp", 0))
    if received <= 0:
        return 0.0
    return min(max((time.time_ns() - received) * 1e-9, 0.0), MOST_QUEUED_SECONDS)


def frame_to_msg(frame: SkeletonFrame, header: Header) -> PersonSkeleton:
    """Message for one person; ``header`` is the source image's, so stamp and frame_id carry over."""
    return PersonSkeleton(header=header, **person_fields(frame))


def image_msg(image: np.ndarray, header: Header) -> Image:
    """A BGR image (H, W, 3 uint8) as a ``bgr8`` sensor_msgs/Image with ``header``."""
    height, width = image.shape[:2]
    return Image(
        header=header, height=height, width=width, encoding="bgr8", step=width * 3, data=image.tobytes()
    )


__all__ = [
    "frame_to_msg",
    "image_msg",
    "msg_to_frame",
    "queued_seconds",
    "seconds_to_stamp",
    "stamp_problem",
    "stamp_to_seconds",
]
