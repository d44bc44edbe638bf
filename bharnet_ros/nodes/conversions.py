"""Translation between the skeleton contract (core) and the bharnet_ros ROS messages."""

from __future__ import annotations

from builtin_interfaces.msg import Time
from std_msgs.msg import Header

from bharnet_ros.core.skeleton import SkeletonError, SkeletonFrame
from bharnet_ros.core.skeleton_fields import frame_from_person, person_fields
from bharnet_ros.msg import PersonSkeleton


def stamp_to_seconds(stamp: Time) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def seconds_to_stamp(seconds: float) -> Time:
    nanoseconds = round(seconds * 1e9)
    return Time(sec=nanoseconds // 1_000_000_000, nanosec=nanoseconds % 1_000_000_000)


def frame_to_msg(frame: SkeletonFrame, header: Header) -> PersonSkeleton:
    """Message for one person; ``header`` is the source image's, so stamp and frame_id carry over."""
    return PersonSkeleton(header=header, **person_fields(frame))


def stamp_problem(stamp: Time) -> str:
    """Why a stamp is no time a clock gives ("" if it is one): nanoseconds that make a second or
    more (they would wrap the stamps derived from it), or a time before 1970, which rclpy's
    ``Time.from_msg`` refuses, so a subscriber of ours would fail on the stamp we passed on."""
    if stamp.nanosec >= 1_000_000_000:
        return f"stamp nanosec {stamp.nanosec} is not below 1e9"
    if stamp.sec < 0:
        return f"stamp sec {stamp.sec} is negative (before 1970)"
    return ""


def msg_to_frame(msg: PersonSkeleton) -> SkeletonFrame:
    """Contract frame from a message; raises SkeletonError for wrong sizes, layouts, NaN values or
    a stamp no clock gives (:func:`stamp_problem`)."""
    problem = stamp_problem(msg.header.stamp)
    if problem:
        raise SkeletonError(problem)
    return frame_from_person(msg, stamp_to_seconds(msg.header.stamp))
