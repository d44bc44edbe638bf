"""Translation between the skeleton contract (core) and the bharnet_ros ROS messages.

Reading a skeleton message goes through ``core.frame_rules``, which the deterministic bag
evaluation uses too, so both turn the same message into the same frames.
"""

from __future__ import annotations

from builtin_interfaces.msg import Time
from std_msgs.msg import Header

from bharnet_ros.core import frame_rules
from bharnet_ros.core.skeleton import SkeletonFrame
from bharnet_ros.core.skeleton_fields import person_fields
from bharnet_ros.msg import PersonSkeleton


def stamp_to_seconds(stamp: Time) -> float:
    return frame_rules.stamp_seconds(stamp)


def seconds_to_stamp(seconds: float) -> Time:
    nanoseconds = round(seconds * 1e9)
    return Time(sec=nanoseconds // 1_000_000_000, nanosec=nanoseconds % 1_000_000_000)


def frame_to_msg(frame: SkeletonFrame, header: Header) -> PersonSkeleton:
    """Message for one person; ``header`` is the source image's, so stamp and frame_id carry over."""
    return PersonSkeleton(header=header, **person_fields(frame))


def stamp_problem(stamp: Time) -> str:
    """Why a stamp is no time a clock gives ("" if it is one); see ``core.frame_rules.stamp_problem``."""
    return frame_rules.stamp_problem(stamp)


def msg_to_frame(msg: PersonSkeleton) -> SkeletonFrame:
    """Contract frame from a message; raises SkeletonError for wrong sizes, layouts, NaN values or
    a stamp no clock gives (:func:`stamp_problem`)."""
    return frame_rules.person_frame(msg)
