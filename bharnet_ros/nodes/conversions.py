"""Translation between the skeleton contract (core) and the bharnet_ros ROS messages.

Reading a skeleton message goes through ``core.frame_rules``, which the deterministic bag
evaluation uses too, so both turn the same message into the same frames.
"""

from __future__ import annotations

from builtin_interfaces.msg import Time
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


def frame_to_msg(frame: SkeletonFrame, header: Header) -> PersonSkeleton:
    """Message for one person; ``header`` is the source image's, so stamp and frame_id carry over."""
    return PersonSkeleton(header=header, **person_fields(frame))


__all__ = ["frame_to_msg", "msg_to_frame", "seconds_to_stamp", "stamp_problem", "stamp_to_seconds"]
