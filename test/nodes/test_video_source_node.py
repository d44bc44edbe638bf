"""Video source node: real video frames, stamps from the node clock (sim time too), bad input."""

from __future__ import annotations

import time

import pytest
from builtin_interfaces.msg import Time
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image

from bharnet_ros.nodes.video_source_node import VideoSourceNode


def test_plays_a_real_video_and_stops_at_max_frames(ros, wait, shared_file):
    probe = ros.add(Node, "probe")
    images: list[Image] = []
    probe.create_subscription(Image, "image_raw", images.append, qos_profile_sensor_data)
    video = str(shared_file("videos/sign_dobrii_den.mp4"))
    node = ros.add(
        VideoSourceNode,
        parameter_overrides=[
            Parameter("video", value=video),
            Parameter("max_frames", value=10),
            Parameter("rate", value=50.0),
        ],
    )
    assert wait(lambda: node.finished)
    assert node.frames_published == 10
    assert wait(lambda: len(images) >= 8)  # best effort: all but a few arrive
    first = images[0]
    assert (first.width, first.height, first.encoding) == (320, 240, "bgr8")
    assert first.header.frame_id == "camera"


def test_sim_time_stamps_frames_with_the_clock(ros, wait, shared_file):
    probe = ros.add(Node, "probe")
    clock = probe.create_publisher(Clock, "/clock", 10)
    images: list[Image] = []
    probe.create_subscription(Image, "image_raw", images.append, qos_profile_sensor_data)
    node = ros.add(
        VideoSourceNode,
        parameter_overrides=[
            Parameter("video", value=str(shared_file("videos/sign_dobrii_den.mp4"))),
            Parameter("use_sim_time", value=True),
            Parameter("rate", value=50.0),
            Parameter("max_frames", value=200),
        ],
    )
    deadline = time.monotonic() + 20
    while not images and time.monotonic() < deadline:
        clock.publish(Clock(clock=Time(sec=4242)))
        time.sleep(0.02)
    assert wait(lambda: any(m.header.stamp.sec == 4242 for m in images))
    node.timer.cancel()


def test_missing_video_is_refused_with_a_clear_error(ros, tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        ros.add(
            VideoSourceNode, parameter_overrides=[Parameter("video", value=str(tmp_path / "missing.mp4"))]
        )
    with pytest.raises(ValueError, match="'video' is empty"):
        ros.add(VideoSourceNode)
