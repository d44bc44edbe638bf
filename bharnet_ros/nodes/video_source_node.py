"""Video source node: publishes a video file or a V4L2 camera as sensor_msgs/Image (bgr8).

For demos, tests and bag making; robots use their own camera driver. Frames are stamped with the
node clock (sim time works) at the file's native rate or the ``rate`` parameter. It is not a
lifecycle node and reads its parameters once, so they are read-only after start-up.

A file waits for a subscriber to its image topic before its first frame, then plays from the
start: the pose node subscribes only once its own skeletons are read, and the frames published
before that were lost on the best-effort topic (the start of a gesture). A camera is live
and publishes from the start.

Whatever happens to the file or camera while it plays (deleted, cut short, unplugged), the node
stops publishing frames, says why in the log, and keeps reporting on ``/diagnostics`` (on the
steady clock, so a paused ``/clock`` does not silence it): waiting for a subscriber, playing,
ended, failed, or waiting for a ``/clock`` under ``use_sim_time``.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
from rclpy.clock import Clock, ClockType
from rclpy.exceptions import InvalidHandle
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from bharnet_ros.core.video import VideoError, VideoReader, camera_number, open_camera
from bharnet_ros.nodes.diagnostics import ERROR, OK, WARN, DiagnosticsPublisher
from bharnet_ros.nodes.lifecycle import CallbackErrorCount, spin_node
from bharnet_ros.nodes.parameters import Param, declare_parameters

MAX_RATE = 240.0  # frames per second: the top of ``rate``, and of a file's own rate
DEFAULT_RATE = 30.0  # frames per second of a camera, or of a file that states no usable rate
MIN_RATE = 0.01  # frames per second: a slower ``rate`` (other than 0) is refused, not a timer of years
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
        f"frames per second to publish; 0 = the file's own rate (30 for cameras), at most {MAX_RATE:g}",
        (0.0, MAX_RATE),
        read_only=True,
    ),
    Param("loop", False, "start the file again at its end", read_only=True),
    Param("frame_id", "camera", "frame_id of the published images", read_only=True),
    Param("max_frames", 0, "stop after this many frames (0 = no limit)", (0, 10_000_000), read_only=True),
    Param("diagnostics_period", 1.0, "seconds between /diagnostics updates", (0.1, 60.0), read_only=True),
)


class VideoSourceNode(CallbackErrorCount, Node):
    """Reads frames on a timer and publishes them on ``image_raw``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("video_source", **kwargs)
        self.params = declare_parameters(self, PARAMS)
        self.frames_published = 0
        self.publish_failures = 0
        self.finished = False
        self.error = ""  # why playing stopped before the end, if it did
        if not self.params["video"]:
            raise ValueError("parameter 'video' is empty: set a video file or a camera number")
        if 0 < self.params["rate"] < MIN_RATE:
            raise ValueError(
                f"parameter 'rate' {self.params['rate']:g} is below {MIN_RATE:g} frames per second; "
                "give 0 for the file's own rate, or a rate from 0.01 to 240"
            )
        self.rate = self.params["rate"] or self._native_rate()
        self.waiting = camera_number(self.params["video"]) is None  # a file waits for its first reader
        self.publisher = self.create_publisher(Image, "image_raw", qos_profile_sensor_data)
        self._frames = frames(self.params["video"], self.params["loop"])
        self.diagnostics = DiagnosticsPublisher(self)
        self.diagnostics_timer = self.create_timer(
            self.params["diagnostics_period"], self._report, clock=Clock(clock_type=ClockType.STEADY_TIME)
        )
        self.timer = self.create_timer(1.0 / self.rate, self._publish_next)
        self.get_logger().info(
            f"publishing {self.params['video']!r} at {self.rate:.1f} Hz on {self.publisher.topic_name}"
        )

    def _native_rate(self) -> float:
        """The file's own frame rate, at most :data:`MAX_RATE`; :data:`DEFAULT_RATE` for a camera, a
        file that states none, or one that states less than :data:`MIN_RATE` (a damaged header)."""
        video = self.params["video"]
        if camera_number(video) is not None:
            return DEFAULT_RATE
        with VideoReader(video) as reader:
            fps = reader.info.fps if reader.info.fps > 0 else DEFAULT_RATE
        if fps > MAX_RATE:  # some containers state 1000 fps (a time base, not a frame rate)
            self.get_logger().warning(
                f"{video} states {fps:g} frames per second; publishing at {MAX_RATE:g} (set 'rate' to choose)"
            )
            return MAX_RATE
        if fps < MIN_RATE:  # a damaged header: at its word the first frame would come in hours
            self.get_logger().warning(
                f"{video} states {fps:g} frames per second; publishing at {DEFAULT_RATE:g} (set 'rate')"
            )
            return DEFAULT_RATE
        return fps

    def _publish_next(self) -> None:
        """Publish the next frame; at the end, or on any failure of the source, stop and say why."""
        if self.waiting and not self._reader_found():
            return
        limit = self.params["max_frames"]
        if limit and self.frames_published >= limit:
            self._finish()
            return
        try:
            frame = next(self._frames, None)
        except Exception as err:  # a deleted, damaged or unplugged source must not stop the node
            self._finish(str(err) or type(err).__name__)
            return
        if frame is None:
            self._finish()
            return
        if self._publish(self._message(frame)):
            self.frames_published += 1

    def _reader_found(self) -> bool:
        """Whether the image topic has a subscriber yet (then the file plays); logs the wait once."""
        if self.publisher.get_subscription_count() > 0:
            self.waiting = False
            return True
        self.get_logger().info(
            f"waiting for a subscriber on {self.publisher.topic_name} before the first frame", once=True
        )
        return False

    def _publish(self, msg: Image) -> bool:
        """Publish, counting and logging (throttled) what the middleware refuses instead of raising."""
        try:
            self.publisher.publish(msg)
        except InvalidHandle:  # destroyed under a running callback: the node is being torn down
            return False
        except Exception as err:  # rclpy raises RCLError subclasses
            if not self.context.ok():
                return False
            self.publish_failures += 1
            self.get_logger().warning(f"publishing a frame failed: {err}", throttle_duration_sec=5.0)
            return False
        return True

    def _message(self, frame: np.ndarray) -> Image:
        msg = Image(height=frame.shape[0], width=frame.shape[1], encoding="bgr8", is_bigendian=0)
        msg.step = frame.shape[1] * 3
        msg.data = frame.tobytes()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.params["frame_id"]
        return msg

    def _finish(self, error: str = "") -> None:
        """Stop publishing and free the file or camera; ``error`` says why, when it is no normal end."""
        if self.finished:
            return
        self.finished = True
        self.error = error[:300]
        self.timer.cancel()
        self._frames.close()
        if error:
            self.get_logger().error(
                f"stopped after {self.frames_published} frames: {self.error}; the node keeps running"
            )
        else:
            self.get_logger().info(f"end of video after {self.frames_published} frames")

    def status(self) -> tuple[bytes, str, dict[str, Any]]:
        """The diagnostics level, message and values."""
        values = {
            "video": self.params["video"],
            "state": self._state(),
            "rate_hz": float(self.rate),
            "frames_published": self.frames_published,
            "publish_failures": self.publish_failures,
            "callback_errors": self.callback_errors,  # 0 included, as on the lifecycle nodes
        }
        if self.error:
            return ERROR, f"stopped after {self.frames_published} frames: {self.error}", values
        if self.callback_errors:
            return self.with_callback_errors((OK, "", values))
        if self.finished:
            return OK, f"end of video after {self.frames_published} frames", values
        clock = self.get_clock()
        if clock.ros_time_is_active and clock.now().nanoseconds == 0:
            message = "use_sim_time is on and no /clock has arrived: no frame is published until one does"
            return WARN, message, values
        if self.waiting:
            return OK, f"waiting for a subscriber on {self.publisher.topic_name}", values
        if self.publish_failures:
            return WARN, f"{self.publish_failures} frames could not be published", values
        return OK, "playing", values

    def _state(self) -> str:
        """failed, ended, waiting (a file with no subscriber yet) or playing."""
        if self.error or self.finished:
            return "failed" if self.error else "ended"
        return "waiting" if self.waiting else "playing"

    def _report(self) -> None:
        level, message, values = self.status()
        with contextlib.suppress(InvalidHandle):  # torn down under the timer
            self.diagnostics.publish(level, message, values)


def frames(video: str, loop: bool) -> Iterator[np.ndarray]:
    """BGR frames of a file (again and again with ``loop``) or of a camera given by its number.

    A camera that stops delivering frames raises VideoError; closing the iterator releases the
    file or the camera.
    """
    number = camera_number(video)
    if number is not None:
        capture = open_camera(number)
        try:
            while True:
                ok, frame = capture.read()
                if not ok:
                    raise VideoError(f"camera {video} stopped delivering frames")
                yield frame
        finally:
            capture.release()
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
