"""PersonSkeleton over real Fast DDS between two processes: proves the message build and the middleware."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
import rclpy
from rclpy.node import Node
from std_msgs.msg import Header

from bharnet_ros.core.skeleton import SkeletonError, SkeletonFrame
from bharnet_ros.msg import PersonSkeleton
from bharnet_ros.nodes.conversions import frame_to_msg, msg_to_frame, seconds_to_stamp, stamp_to_seconds

PUBLISHER = """
import sys, time
import numpy as np
import rclpy
import rclpy.duration
from std_msgs.msg import Header
from bharnet_ros.core.skeleton import SkeletonFrame
from bharnet_ros.nodes.conversions import frame_to_msg, seconds_to_stamp
from bharnet_ros.msg import PersonSkeleton

rclpy.init()
node = rclpy.create_node("skeleton_test_publisher")
pub = node.create_publisher(PersonSkeleton, sys.argv[1], 10)
deadline = time.monotonic() + 20
while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
    time.sleep(0.05)
for i in range(10):
    body = np.full((33, 4), i / 10, np.float32)
    body[:, 3] = 1.0
    hands = np.zeros((2, 21, 4), np.float32)
    hands[1] = 0.5
    frame = SkeletonFrame(100.0 + i / 30, body, hands, np.array([False, True]), 7, image_size=(640, 480))
    header = Header(stamp=seconds_to_stamp(frame.timestamp), frame_id="camera_optical")
    pub.publish(frame_to_msg(frame, header))
    time.sleep(0.02)
# Reliable QoS: exit only once the subscriber has acknowledged every message.
assert pub.wait_for_all_acked(rclpy.duration.Duration(seconds=20))
node.destroy_node()
rclpy.shutdown()
"""


def make_frame() -> SkeletonFrame:
    rng = np.random.default_rng(0)
    hands = rng.random((2, 21, 4), dtype=np.float32)
    return SkeletonFrame(
        12.5, rng.random((33, 4), dtype=np.float32), hands, np.array([True, False]), 3, image_size=(640, 480)
    )


def test_conversion_round_trip_keeps_every_value():
    frame = make_frame()
    header = Header(stamp=seconds_to_stamp(frame.timestamp), frame_id="cam")
    back = msg_to_frame(frame_to_msg(frame, header))
    np.testing.assert_array_equal(back.body, frame.body)
    np.testing.assert_array_equal(back.hands, frame.hands)
    np.testing.assert_array_equal(back.hand_present, frame.hand_present)
    assert (back.person_id, back.layout, back.timestamp, back.image_size) == (
        3,
        "mediapipe33",
        12.5,
        (640, 480),
    )


def test_stamp_conversion_is_exact_to_the_nanosecond():
    stamp = seconds_to_stamp(1_700_000_000.123456789)
    assert stamp.sec == 1_700_000_000
    assert abs(stamp.nanosec - 123_456_789) < 300  # float64 resolution at this epoch
    assert stamp_to_seconds(seconds_to_stamp(2.5)) == 2.5


@pytest.mark.parametrize(
    ("field", "values", "message"),
    [
        ("body", np.zeros(10, np.float32), "multiple of 4"),
        ("left_hand", np.zeros(8, np.float32), "21 joints"),
        ("body", np.full(132, np.nan, np.float32), "NaN"),
    ],
)
def test_bad_messages_raise_a_clear_error(field, values, message):
    msg = frame_to_msg(make_frame(), Header())
    setattr(msg, field, values)
    with pytest.raises(SkeletonError, match=message):
        msg_to_frame(msg)


def test_absent_hands_may_be_sent_empty():
    msg = frame_to_msg(make_frame(), Header())
    msg.right_hand = []
    assert msg_to_frame(msg).hands[1].sum() == 0


@pytest.fixture
def ros_node():
    context = rclpy.Context()
    rclpy.init(context=context)
    node = Node("skeleton_test_subscriber", context=context)
    yield node, context
    node.destroy_node()
    rclpy.shutdown(context=context)


def test_skeletons_cross_process_boundary_over_fast_dds(ros_node):
    node, context = ros_node
    topic = "/bharnet_test/skeleton"
    received: list[PersonSkeleton] = []
    node.create_subscription(PersonSkeleton, topic, received.append, 10)
    publisher = subprocess.Popen([sys.executable, "-c", PUBLISHER, topic])
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    # The publisher may exit (all acknowledged) before every message is taken here: spin on until
    # the ten are in, and stop early only when it failed.
    deadline = time.monotonic() + 60
    while len(received) < 10 and time.monotonic() < deadline and publisher.poll() in (None, 0):
        executor.spin_once(timeout_sec=0.1)
    publisher.wait(timeout=30)
    assert publisher.returncode == 0
    assert len(received) == 10
    frames = [msg_to_frame(m) for m in received]
    assert [f.body[0, 0] for f in frames] == [np.float32(i / 10) for i in range(10)]
    assert all(m.header.frame_id == "camera_optical" for m in received)
    assert all(f.person_id == 7 and f.hand_present.tolist() == [False, True] for f in frames)
    assert np.all(np.diff([f.timestamp for f in frames]) > 0)
