"""Video source node: publishes a video file or a V4L2 camera as sensor_msgs/Image (bgr8).

For demos, tests and bag making; robots use their own camera driver. Frames are stamped with the
node clock (sim time works) at the file's native rate or the ``rate`` parameter; a file's frames
keep their spacing in their stamps when the timer ticks slower (``core.video.FramePacer``). It is not a
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
import time
from typing import Any

from rclpy.clock import Clock, ClockType
from rclpy.exceptions import InvalidHandle
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from rclpy.time import Time
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from bharnet_ros.core.video import (
    DEFAULT_PLAY_RATE,
    MAX_PLAY_RATE,
    MIN_PLAY_RATE,
    FramePacer,
    camera_number,
    check_source,
    play_frames,
    play_rate,
)
from bharnet_ros.nodes.conversions import image_msg
from bharnet_ros.nodes.diagnostics import ERROR, OK, WARN, DiagnosticsPublisher
from bharnet_ros.nodes.lifecycle import CallbackErrorCount, SafePublishing, spin_node
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
        f"frames per second to publish; 0 = the file's own rate ({DEFAULT_PLAY_RATE:g} for cameras), "
        f"at most {MAX_PLAY_RATE:g}",
        (0.0, MAX_PLAY_RATE),
        read_only=True,
    ),
    Param("loop", False, "start the file again at its end", read_only=True),
    Param("frame_id", "camera", "frame_id of the published images", read_only=True),
    Param("max_frames", 0, "stop after this many frames (0 = no limit)", (0, 10_000_000), read_only=True),
    Param("diagnostics_period", 1.0, "seconds between /diagnostics updates", (0.1, 60.0), read_only=True),
)


class VideoSourceNode(CallbackErrorCount, SafePublishing, Node):
    """Reads frames on a timer and publishes them on ``image_raw``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("video_source", **kwargs)
        self.params = declare_parameters(self, PARAMS)
        self.frames_published = 0
        self.finished = False
        self.error = ""  # why playing stopped before the end, if it did
        if not self.params["video"]:
            raise ValueError("parameter 'video' is empty: set a video file or a camera number")
        if 0 < self.params["rate"] < MIN_PLAY_RATE:
            raise ValueError(
                f"parameter 'rate' {self.params['rate']:g} is below {MIN_PLAY_RATE:g} frames per second; "
                f"give 0 for the file's own rate, or a rate from {MIN_PLAY_RATE:g} to {MAX_PLAY_RATE:g}"
            )
        check_source(self.params["video"])  # whatever the rate: a typo must not wait for a reader
        self.rate = self.params["rate"] or self._native_rate()
        self.waiting = camera_number(self.params["video"]) is None  # a file waits for its first reader
        self.pacer = FramePacer(self.rate) if self.waiting else None  # a camera is stamped as read
        self.publisher = self.create_publisher(Image, "image_raw", qos_profile_sensor_data)
        self._frames = play_frames(self.params["video"], self.params["loop"])
        self.diagnostics = DiagnosticsPublisher(self)
        self.diagnostics_timer = self.create_timer(
            self.params["diagnostics_period"], self._report, clock=Clock(clock_type=ClockType.STEADY_TIME)
        )
        self.timer = self.create_timer(1.0 / self.rate, self._publish_next)
        self.get_logger().info(
            f"publishing {self.params['video']!r} at {self.rate:.1f} Hz on {self.publisher.topic_name}"
        )

    def _native_rate(self) -> float:
        """The video's own rate (``core.video.play_rate``), saying so where it is not the file's."""
        rate, note = play_rate(self.params["video"])
        if note:
            self.get_logger().warning(note)
        return rate

    def _publish_next(self) -> None:
        """Publish the frames due now; at the end, or on any failure of the source, stop and say why."""
        if self.waiting and not self._reader_found():
            return
        now, started = self.get_clock().now(), time.monotonic()
        stamps = [now] if self.pacer is None else self._file_stamps(now)
        for stamp in stamps:
            if not self._publish_one(stamp):
                return
        if self.pacer is not None:
            self.pacer.published(len(stamps), time.monotonic() - started)

    def _file_stamps(self, now: Time) -> list[Time]:
        return [Time(nanoseconds=ns, clock_type=now.clock_type) for ns in self.pacer.due(now.nanoseconds)]

    def _publish_one(self, stamp: Time) -> bool:
        """Publish the next frame; False once playing has stopped (the end, the limit, a failure)."""
        limit = self.params["max_frames"]
        if limit and self.frames_published >= limit:
            self._finish()
            return False
        try:
            frame = next(self._frames, None)
        except Exception as err:  # a deleted, damaged or unplugged source must not stop the node
            self._finish(str(err) or type(err).__name__)
            return False
        if frame is None:
            self._finish()
            return False
        header = Header(stamp=stamp.to_msg(), frame_id=self.params["frame_id"])
        if self.safe_publish(self.publisher, image_msg(frame, header)):
            self.frames_published += 1
        return True

    def _reader_found(self) -> bool:
        """Whether the image topic has a subscriber yet (then the file plays); logs the wait once."""
        if self.publisher.get_subscription_count() > 0:
            self.waiting = False
            return True
        self.get_logger().info(
            f"waiting for a subscriber on {self.publisher.topic_name} before the first frame", once=True
        )
        return False

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
        """The diagnostics level, message and values; callback failures are added to the state,
        not put in its place (one bad /clock message long ago must not hide that the video ended)."""
        values = {
            "video": self.params["video"],
            "state": self._state(),
            "rate_hz": float(self.rate),
            "frames_published": self.frames_published,
            "publish_failures": self.publish_failures,
            "callback_errors": self.callback_errors,  # 0 included, as on the lifecycle nodes
        }
        return self.with_callback_errors(self._state_status(values))

    def _state_status(self, values: dict[str, Any]) -> tuple[bytes, str, dict[str, Any]]:
        """Level and message of the playing state."""
        if self.error:
            return ERROR, f"stopped after {self.frames_published} frames: {self.error}", values
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


def main(args: list[str] | None = None) -> int:
    return spin_node(VideoSourceNode, args)


if __name__ == "__main__":
    sys.exit(main())
