"""Pose node: camera images in, body+hand skeletons (PersonSkeletonArray) out.

Only the latest image is ever processed: the subscription is best-effort with depth 1, so frames
that arrive while MediaPipe works are replaced, never queued. The skeleton header is the image's.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CompressedImage, Image

from bharnet_ros.core.draw import draw_skeleton
from bharnet_ros.core.image import ENCODINGS, ImageError, decode_compressed, decode_image
from bharnet_ros.core.pose import BACKENDS, PoseEstimator
from bharnet_ros.core.skeleton import SkeletonError, SkeletonFrame
from bharnet_ros.core.stats import GapDropCounter, Percentiles, RateMeter
from bharnet_ros.msg import PersonSkeletonArray
from bharnet_ros.nodes.conversions import frame_to_msg, stamp_to_seconds
from bharnet_ros.nodes.diagnostics import ERROR, OK, WARN, DiagnosticsPublisher
from bharnet_ros.nodes.lifecycle import ManagedNode, spin_node
from bharnet_ros.nodes.parameters import Param, declare_parameters

try:  # a real ROS install has it; the PyPI wheels do not
    from cv_bridge import CvBridge

    _CV_BRIDGE = CvBridge()
except ImportError:
    _CV_BRIDGE = None

PARAMS = (
    Param("backend", "holistic", f"MediaPipe graph: one of {BACKENDS}"),
    Param("min_detection_confidence", 0.5, "MediaPipe detection threshold", (0.0, 1.0)),
    Param("min_tracking_confidence", 0.5, "MediaPipe tracking threshold", (0.0, 1.0)),
    Param("compressed", False, "subscribe to sensor_msgs/CompressedImage on image_raw/compressed"),
    Param("publish_overlay", True, "publish the drawn skeleton on 'overlay' (only while subscribed)"),
    Param("diagnostics_period", 1.0, "seconds between /diagnostics updates", (0.1, 60.0)),
    Param("autostart", True, "configure and activate on start-up (no lifecycle manager needed)"),
)
SKELETON_QOS = QoSProfile(depth=10)  # reliable: skeletons are small and every gap hurts a window
IMAGE_QOS = QoSProfile(
    history=qos_profile_sensor_data.history,
    depth=1,  # latest frame only
    reliability=qos_profile_sensor_data.reliability,
    durability=qos_profile_sensor_data.durability,
)


class PoseNode(ManagedNode):
    """Runs the MediaPipe pose stage on the newest camera image."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("pose", **kwargs)
        self.params = declare_parameters(self, PARAMS)
        self.estimator: PoseEstimator | None = None
        self.frames_in = 0
        self.bad_frames = 0
        self.processing = Percentiles()
        self.rate_in = RateMeter()
        self.drops = GapDropCounter()
        self.error = ""
        self.diagnostics = DiagnosticsPublisher(self)
        self.diagnostics_timer = self.create_timer(
            self.params["diagnostics_period"], self._publish_diagnostics
        )
        if self.params["autostart"]:
            self.start_automatically()

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.estimator = PoseEstimator(
                backend=self.params["backend"],
                min_detection_confidence=self.params["min_detection_confidence"],
                min_tracking_confidence=self.params["min_tracking_confidence"],
            )
        except (ValueError, RuntimeError) as err:
            self.error = f"cannot start the pose stage: {err}"
            self.get_logger().error(self.error)
            return TransitionCallbackReturn.FAILURE
        self.error = ""
        self.skeleton_pub = self.create_lifecycle_publisher(PersonSkeletonArray, "skeletons", SKELETON_QOS)
        self.overlay_pub = self.create_lifecycle_publisher(Image, "overlay", qos_profile_sensor_data)
        self.diagnostics = DiagnosticsPublisher(self)
        self.diagnostics_timer = self.create_timer(
            self.params["diagnostics_period"], self._publish_diagnostics
        )
        self.get_logger().info(f"pose stage ready: MediaPipe {self.params['backend']}")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        compressed = self.params["compressed"]
        self.subscription = self.create_subscription(
            CompressedImage if compressed else Image,
            "image_raw/compressed" if compressed else "image_raw",
            self._on_image,
            IMAGE_QOS,
            qos_overriding_options=QoSOverridingOptions.with_default_policies(),
        )
        return super().on_activate(state)

    def release(self) -> None:
        super().release()
        if self.estimator is not None:
            self.estimator.close()
            self.estimator = None
            self.destroy_lifecycle_publisher(self.skeleton_pub)
            self.destroy_lifecycle_publisher(self.overlay_pub)

    def _on_image(self, msg: Image | CompressedImage) -> None:
        started = time.monotonic()
        self.frames_in += 1
        self.rate_in.tick(started)
        stamp = stamp_to_seconds(msg.header.stamp)
        self.drops.observe(stamp)
        try:
            image = self._decode(msg)
            frame = self.estimator.estimate(image, stamp)
        except (ImageError, SkeletonError) as err:
            self.bad_frames += 1
            self.get_logger().warning(f"skipped an image: {err}", throttle_duration_sec=5.0)
            return
        found = frame.body_present or bool(frame.hand_present.any())
        persons = [frame_to_msg(frame, msg.header)] if found else []
        self.safe_publish(self.skeleton_pub, PersonSkeletonArray(header=msg.header, persons=persons))
        if self.params["publish_overlay"] and self.overlay_pub.get_subscription_count() > 0:
            self._publish_overlay(image, frame, msg)
        self.processing.add(time.monotonic() - started)

    def _decode(self, msg: Image | CompressedImage):
        """Our numpy decoding; encodings it lacks (e.g. YUV) go to cv_bridge where it is installed."""
        if isinstance(msg, CompressedImage):
            return decode_compressed(msg.data)
        if msg.encoding not in ENCODINGS and _CV_BRIDGE is not None:
            try:
                return _CV_BRIDGE.imgmsg_to_cv2(msg, desired_encoding="bgr8")
            except Exception as err:  # cv_bridge raises its own error types
                raise ImageError(f"cv_bridge could not convert {msg.encoding!r}: {err}") from None
        return decode_image(msg.height, msg.width, msg.encoding, msg.step, msg.data, msg.is_bigendian)

    def _publish_overlay(self, image, frame: SkeletonFrame, msg: Image | CompressedImage) -> None:
        drawn = draw_skeleton(image, frame)
        overlay = Image(header=msg.header, height=drawn.shape[0], width=drawn.shape[1], encoding="bgr8")
        overlay.step = drawn.shape[1] * 3
        overlay.data = drawn.tobytes()
        self.safe_publish(self.overlay_pub, overlay)

    def _publish_diagnostics(self) -> None:
        timing = self.processing.summary()
        values = {
            "input_rate_hz": self.rate_in.rate(time.monotonic()),
            "processing_ms_p50": 1000 * timing["p50"],
            "processing_ms_p95": 1000 * timing["p95"],
            "frames_received": self.frames_in,
            "frames_dropped_upstream": self.drops.dropped,
            "bad_frames": self.bad_frames,
            "publish_failures": self.publish_failures,
            "backend": self.params["backend"],
        }
        level, message = (WARN, "bad input frames seen") if self.bad_frames else (OK, "running")
        if self.estimator is None:
            level, message = ERROR, self.error or "not configured"
        self.diagnostics.publish(level, message, values)


def main(args: list[str] | None = None) -> int:
    return spin_node(PoseNode, args)


if __name__ == "__main__":
    sys.exit(main())
