"""Video source node: publishes a video file or a V4L2 camera as sensor_msgs/Image (bgr8).

For demos, tests and bag making; robots use their own camera driver. Frames are stamped with the
node clock (sim time works) at the file's native rate or the ``rate`` parameter. It is not a
lifecycle node and reads its parameters once, so they are read-only after start-up.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import cv2
import numpy as np
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from bharnet_ros.core.video import VideoError, VideoReader
from bharnet_ros.nodes.lifecycle import spin_node
from bharnet_ros.nodes.parameters import Param, declare_parameters

PARAMS = (
    Param(
        "video",
        "",
        "video file, or a camera device number as text (V4L2): -p video:=\"'0'\" (a bare 0 is an int)",
        read_only=True,
    ),
    Param(
        "rate",
        0.0,
        "frames per second to publish; 0 = the file's own rate (30 for cameras)",
        (0.0, 240.0),
        read_only=True,
    ),
    Param("loop", False, "start the file again at its end", read_only=True),
    Param("frame_id", "camera", "frame_id of the published images", read_only=True),
    Param("max_frames", 0, "stop after this many frames (0 = no limit)", (0, 10_000_000), read_only=True),
)


class VideoSourceNode(Node):
    """Reads frames on a timer and publishes them on ``image_raw``."""

    def __init__(self, **kwargs) -> None:
        super().__init__("video_source", **kwargs)
        self.params = declare_parameters(self, PARAMS)
        self.publisher = self.create_publisher(Image, "image_raw", qos_profile_sensor_data)
        self.frames_published = 0
        self.finished = False
        if not self.params["video"]:
            raise ValueError("parameter 'video' is empty: set a video file or a camera number")
        rate = self.params["rate"] or self._native_rate()
        self._frames = frames(self.params["video"], self.params["loop"])
        self.timer = self.create_timer(1.0 / rate, self._publish_next)
        self.get_logger().info(
            f"publishing {self.params['video']!r} at {rate:.1f} Hz on {self.publisher.topic_name}"
        )

    def _native_rate(self) -> float:
        video = self.params["video"]
        if video.isdigit():
            return 30.0
        with VideoReader(video) as reader:
            return reader.info.fps if reader.info.fps > 0 else 30.0

    def _publish_next(self) -> None:
        limit = self.params["max_frames"]
        try:
            frame = None if limit and self.frames_published >= limit else next(self._frames, None)
        except VideoError as err:
            self.get_logger().error(str(err))
            frame = None
        if frame is None:
            self._finish()
            return
        self.publisher.publish(self._message(frame))
        self.frames_published += 1

    def _message(self, frame: np.ndarray) -> Image:
        msg = Image(height=frame.shape[0], width=frame.shape[1], encoding="bgr8", is_bigendian=0)
        msg.step = frame.shape[1] * 3
        msg.data = frame.tobytes()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.params["frame_id"]
        return msg

    def _finish(self) -> None:
        if not self.finished:
            self.get_logger().info(f"end of video after {self.frames_published} frames")
        self.finished = True
        self.timer.cancel()


def frames(video: str, loop: bool) -> Iterator[np.ndarray]:
    """BGR frames of a file (again and again with ``loop``) or of a camera given by its number."""
    if video.isdigit():
        capture = cv2.VideoCapture(int(video))
        if not capture.isOpened():
            raise VideoError(f"camera {video} could not be opened (is it /dev/video{video}?)")
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield frame
    while True:
        with VideoReader(video) as reader:
            for _, frame in reader:
                yield frame
        if not loop:
            return


def main(args: list[str] | None = None) -> int:
    return spin_node(VideoSourceNode, args)


if __name__ == "__main__":
    sys.exit(main())
