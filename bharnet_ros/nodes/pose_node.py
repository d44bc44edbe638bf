"""Pose node: camera images in, body+hand skeletons (PersonSkeletonArray) out.

Only the latest image is ever processed: the subscription has depth 1, so frames that arrive while
MediaPipe works are replaced, never queued. Its reliability follows the camera's publishers, as
``ros2 bag record`` does (``image_reliability: auto``): reliable when every publisher is reliable,
since Fast DDS drops most large frames of a reliable camera to a best-effort reader in another
process, and best-effort otherwise, which takes any publisher. The skeleton header is the image's.
Configure reads the parameters and starts MediaPipe, so a new backend or threshold takes effect on
the next configure; ``publish_overlay`` applies at once. With ``backend: multi`` every person found
gets their own PersonSkeleton, with the id of their track. The overlay topic exists only while
``publish_overlay`` is on.

Lazy, as image_pipeline's nodes are (``lazy``, default on): while nobody subscribes to the
skeletons or the overlay, the node does not subscribe to the camera, so MediaPipe costs nothing
when the recognizer is deactivated. A publisher "matched" event subscribes again at once.
"""

from __future__ import annotations

import copy
import sys
import time
from typing import Any

import numpy as np
from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_policy_name_from_kind, qos_profile_sensor_data
from rclpy.qos_overriding_options import QoSOverridingOptions, QoSPolicyKind
from rclpy.subscription import Subscription
from sensor_msgs.msg import CompressedImage, Image

from bharnet_ros.core.image import (
    ENCODINGS,
    IMAGE_PIXELS_RANGE,
    MAX_IMAGE_PIXELS,
    ImageError,
    camera_message_size,
    decode_compressed_sized,
    decode_image,
    fit_pixels,
    to_bgr,
)
from bharnet_ros.core.labels import shown
from bharnet_ros.core.pose_multi import MAX_POSES, NUM_POSES
from bharnet_ros.core.pose_stage import ALL_BACKENDS, PoseStage, draw_persons
from bharnet_ros.core.skeleton import SkeletonError
from bharnet_ros.core.stats import GapDropCounter, Percentiles, RateMeter
from bharnet_ros.msg import PersonSkeletonArray
from bharnet_ros.nodes.conversions import frame_to_msg, image_msg, stamp_problem, stamp_to_seconds
from bharnet_ros.nodes.core_logging import speaking_for
from bharnet_ros.nodes.diagnostics import ERROR, OK, WARN
from bharnet_ros.nodes.lifecycle import (
    MANAGED_PARAMS,
    ManagedNode,
    Status,
    TransitionError,
    spin_node,
    split_publishers,
    unreachable,
)
from bharnet_ros.nodes.parameters import Param

try:  # a real ROS install has it; the PyPI wheels do not
    from cv_bridge import CvBridge

    _CV_BRIDGE = CvBridge()
except ImportError:
    _CV_BRIDGE = None


AUTO = "auto"
RELIABILITIES = {"best_effort": ReliabilityPolicy.BEST_EFFORT, "reliable": ReliabilityPolicy.RELIABLE}
FOLLOWING = ("system_default", "best_available")  # overrides that follow the publishers, as auto does

PARAMS = (
    Param(
        "backend",
        "holistic",
        f"MediaPipe graph: one of {ALL_BACKENDS}; holistic and hands_pose follow one person, multi everyone",
        choices=ALL_BACKENDS,
    ),
    Param("num_poses", NUM_POSES, "persons per image with backend multi", (1, MAX_POSES)),
    Param(
        "mirrored_input",
        False,
        "the camera gives mirror images (Kinect v2 colour, selfie webcams): flip them before the pose stage",
    ),
    Param("min_detection_confidence", 0.5, "MediaPipe detection threshold", (0.0, 1.0)),
    Param("min_tracking_confidence", 0.5, "MediaPipe tracking threshold", (0.0, 1.0)),
    Param("compressed", False, "subscribe to sensor_msgs/CompressedImage on image_raw/compressed"),
    Param(
        "publish_overlay", False, "publish the drawn skeleton on 'overlay' (only while subscribed)", live=True
    ),
    Param(
        "max_image_pixels",
        MAX_IMAGE_PIXELS,
        "larger images are shrunk to this many pixels before the pose stage (and counted)",
        IMAGE_PIXELS_RANGE,
        live=True,
    ),
    Param(
        "image_reliability",
        AUTO,
        "image subscription: auto (reliable when every publisher is, else best_effort), or either one",
        choices=(AUTO, *RELIABILITIES),
    ),
    Param(
        "lazy",
        True,
        "read the camera only while skeletons or overlay have a subscriber (no pose stage for nobody)",
        live=True,
    ),
    *MANAGED_PARAMS,
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
        self.estimator: PoseStage | None = None
        self.skeleton_pub = self.overlay_pub = None
        self.frames_in = 0
        self.bad_frames = 0
        # of the bad frames, those refused for their stamp (bag eval tells them apart)
        self.stamps_refused = 0
        self.frames_downscaled = 0
        self.persons_seen = 0  # in the newest processed image
        self.image_publishers: int | None = None  # on the image topic, any type; None: not looked yet
        self.unreachable_publishers = 0  # cameras of the image type whose QoS cannot reach us, now
        self.reliability = ReliabilityPolicy.BEST_EFFORT  # what the image subscription asked for
        self.processing = Percentiles()
        self.rate_in = RateMeter()
        self.drops = GapDropCounter()
        self.dropped_before = 0  # by earlier camera subscriptions (a lazy pause is no gap of lost frames)
        self.next_person_id: int | None = None  # the multi tracker's next id, kept across reconfigures
        super().__init__("pose", PARAMS, **kwargs)

    def acquire(self) -> None:
        try:
            with speaking_for(self):
                self.estimator = PoseStage(
                    backend=self.params["backend"],
                    num_poses=self.params["num_poses"],
                    mirrored_input=self.params["mirrored_input"],
                    min_detection_confidence=self.params["min_detection_confidence"],
                    min_tracking_confidence=self.params["min_tracking_confidence"],
                    # where the stage release() closed stopped counting (none before the first):
                    # a reused id would continue someone else's window in the recognizer
                    next_person_id=self.next_person_id,
                )
        except (ValueError, RuntimeError) as err:
            raise TransitionError(f"cannot start the pose stage: {err}") from None
        self.skeleton_pub = self.create_configured_publisher(
            PersonSkeletonArray, "skeletons", SKELETON_QOS, event_callbacks=self._reader_events()
        )
        self._advertise_overlay(self.params["publish_overlay"])
        self.get_logger().info(f"pose stage ready: MediaPipe {self.params['backend']}")

    def subscribe(self) -> list[Subscription]:
        """The camera subscription, unless ``lazy`` and nobody reads what the node publishes. A
        mistyped QoS override fails activate even then, not the first reader's callback."""
        topic = self._camera_topic()[1]
        self._reliability_setting(self.resolve_topic_name(topic))
        self.check_queue_overrides(topic)
        return self._camera_subscription() if self._readers_wanted() else []

    def _camera_topic(self) -> tuple[type, str]:
        """The image message type and relative topic that ``compressed`` calls for."""
        return (
            (CompressedImage, "image_raw/compressed") if self.params["compressed"] else (Image, "image_raw")
        )

    def _readers_wanted(self) -> bool:
        """Whether the camera is worth reading: not lazy, or a subscriber to skeletons or overlay."""
        publishers = [p for p in (self.skeleton_pub, self.overlay_pub) if p is not None]
        return not self.params["lazy"] or any(p.get_subscription_count() > 0 for p in publishers)

    def _reader_events(self) -> PublisherEventCallbacks:
        return PublisherEventCallbacks(matched=self.guarded(lambda info: self._follow_readers()))

    def _follow_readers(self) -> None:
        """While active, subscribe to the camera when readers came, and unsubscribe when the last
        one left (``lazy``)."""
        if self._state_machine.current_state[1] != "active":
            return
        wanted = self._readers_wanted()
        if wanted and not self.inputs:
            self.inputs = self._camera_subscription()
        elif not wanted and self.inputs:
            self.unsubscribe()

    def unsubscribe(self) -> None:
        """Also start the camera's stamp gaps afresh, and the persons seen: images heard again
        after a pause (lazy idle, deactivate, a new configure) are no frames dropped upstream."""
        super().unsubscribe()
        self.dropped_before += self.drops.dropped
        self.drops = GapDropCounter()
        self.persons_seen = 0

    def _camera_subscription(self) -> list[Subscription]:
        msg_type, topic = self._camera_topic()
        resolved = self.resolve_topic_name(topic)
        reliability = self._wanted_reliability(resolved, split_publishers(self, resolved, msg_type)[0])
        profile = copy.copy(IMAGE_QOS)  # qos_overrides edit the profile they are given
        profile.reliability = reliability
        subscription = self.create_subscription(
            msg_type,
            topic,
            self.guarded(self._on_image),
            profile,
            qos_overriding_options=QoSOverridingOptions([QoSPolicyKind.HISTORY, QoSPolicyKind.DEPTH]),
            event_callbacks=SubscriptionEventCallbacks(incompatible_qos=self._on_incompatible),
        )
        self.reliability = reliability
        return [subscription]

    def _on_incompatible(self, info: Any) -> None:
        """A publisher this subscription cannot hear. With ``auto``, a best-effort camera joining
        while the subscription is reliable: the next diagnostics tick follows it. Otherwise the
        node hears nothing from that camera, which the user must fix."""
        policy = qos_policy_name_from_kind(info.last_policy_kind)
        if policy == "RELIABILITY" and self._reliability_setting() == AUTO:
            self.get_logger().info(
                "a best-effort image publisher joined; subscribing best effort at the next check",
                throttle_duration_sec=5.0,
            )
            return
        fix = (
            "set image_reliability to auto (and drop its qos_overrides)"
            if policy == "RELIABILITY"
            else ("match the camera's QoS with qos_overrides (docs/nodes.md)")
        )
        self.get_logger().warning(
            f"an image publisher's QoS cannot reach this subscription ({policy}); {fix}",
            throttle_duration_sec=5.0,
        )

    def _reliability_setting(self, topic: str | None = None) -> str:
        """``image_reliability``, or the ``qos_overrides.<topic>.subscription.reliability`` given at
        start-up. rclpy declares an override parameter once, read-only, with the first
        subscription's value, so it could not follow the publishers: this node reads the given
        override itself (from rclpy's store of the start-up values) and declares none for it."""
        topic = topic or (self.inputs[0].topic_name if self.inputs else "")
        name = f"qos_overrides.{topic}.subscription.reliability"
        override = self._parameter_overrides.get(name)
        chosen = str(override.value).lower() if override is not None else self.params["image_reliability"]
        if override is not None and chosen not in (*RELIABILITIES, *FOLLOWING):  # a typo: not auto silently
            raise ValueError(
                f"{name} {shown(override.value)} is none of best_effort, reliable, best_available, "
                "system_default"
            )
        return chosen if chosen in RELIABILITIES else AUTO  # system_default: what the publishers offer

    def _wanted_reliability(self, topic: str, publishers: list[Any]) -> ReliabilityPolicy:
        """The image subscription's reliability for these publishers (see the module docstring)."""
        chosen = self._reliability_setting(topic)
        if chosen in RELIABILITIES:
            return RELIABILITIES[chosen]
        reliable = [info.qos_profile.reliability == ReliabilityPolicy.RELIABLE for info in publishers]
        return ReliabilityPolicy.RELIABLE if reliable and all(reliable) else ReliabilityPolicy.BEST_EFFORT

    def _follow_publishers(self, publishers: list[Any]) -> None:
        """Subscribe again when the camera's publishers call for the other reliability (auto). The
        new subscription is made before the old one goes, so a failure leaves the node listening."""
        wanted = self._wanted_reliability(self.inputs[0].topic_name, publishers)
        if wanted == self.reliability:
            return
        self.get_logger().info(
            f"the image publishers call for a {wanted.name.lower()} subscription: subscribing again"
        )
        old, self.inputs = self.inputs, self._camera_subscription()
        for subscription in old:
            self.destroy_subscription(subscription)

    def release(self) -> None:
        """Free the publishers and the pose stage, keeping its next person id for the next configure."""
        super().release()
        self.skeleton_pub = self.overlay_pub = None
        if self.estimator is not None:
            if self.estimator.next_person_id is not None:
                self.next_person_id = self.estimator.next_person_id
            else:  # it published id 0: a multi stage next must not give 0 to whoever it finds first
                self.next_person_id = max(self.next_person_id or 0, 1)
            self.estimator.close()
            self.estimator = None

    def apply_live(self, names: set[str]) -> None:
        """``publish_overlay`` advertises or withdraws the overlay topic at once (while configured)."""
        super().apply_live(names)
        if "publish_overlay" in names and self.skeleton_pub is not None:
            self._advertise_overlay(self.params["publish_overlay"])
        if names & {"publish_overlay", "lazy"}:
            self._follow_readers()

    def _advertise_overlay(self, wanted: bool) -> None:
        """Create the overlay publisher (enabled if the node is active) or destroy it."""
        if wanted and self.overlay_pub is None:
            publisher = self.create_configured_publisher(
                Image, "overlay", qos_profile_sensor_data, event_callbacks=self._reader_events()
            )
            if self._state_machine.current_state[1] == "active":  # it missed the activate transition
                publisher.on_activate(None)
            self.overlay_pub = publisher
        elif not wanted and self.overlay_pub is not None:
            publisher, self.overlay_pub = self.overlay_pub, None
            self._configured_publishers.remove(publisher)
            self.destroy_lifecycle_publisher(publisher)

    def periodic(self) -> None:
        """Once per diagnostics tick: subscribe to the camera or stop as readers came or went (a
        missed matched event), subscribe again where the camera's publishers call for the other
        reliability (``image_reliability: auto``), and count the image topic's publishers, and
        those of another message type.

        DDS never delivers another type's messages and says nothing, so a camera topic that carries
        CompressedImage (``compressed`` left false) would otherwise look like no camera at all; and
        no publisher at all is most often a wrong ``camera_topic``.
        """
        self._follow_readers()  # should a matched event have been missed
        matched = self.find_wrong_types(_hint)
        for matching in matched:
            self._follow_publishers(matching)
        anyone = sum(map(len, matched)) + self.wrong_type_publishers
        self.image_publishers = anyone if self.inputs else None
        self.unreachable_publishers = sum(
            unreachable(subscription, publishers)
            for subscription, publishers in zip(list(self.inputs), matched, strict=False)
        )  # after auto reliability followed them: those left are the user's to fix

    def exclusive_topics(self) -> list[str]:
        return [self.skeleton_pub.topic_name] if self.skeleton_pub is not None else []

    def _on_image(self, msg: Image | CompressedImage) -> None:
        estimator = self.estimator
        if estimator is None:  # an image taken just before cleanup
            return
        started = time.monotonic()
        self.frames_in += 1
        self.rate_in.tick(started)
        try:
            stamp = self._tracking_stamp(msg.header.stamp)
            self.drops.observe(stamp_to_seconds(msg.header.stamp))  # a refused stamp is no gap
            image, shrunk = self._decode(msg)
            fitted = fit_pixels(image, self.params["max_image_pixels"])
            downscaled = shrunk or fitted is not image
            self.frames_downscaled += int(downscaled)
            camera = camera_message_size(msg) if downscaled else None  # the frames report the camera's size
            image = fitted
            with speaking_for(self):
                image, frames = estimator.process(image, stamp, camera)
        except (ImageError, SkeletonError) as err:
            self.bad_frames += 1
            self.get_logger().warning(f"skipped an image: {err}", throttle_duration_sec=5.0)
            return
        found = [frame for frame in frames if frame.person_found]
        self.persons_seen = len(found)
        persons = [frame_to_msg(frame, msg.header) for frame in found]
        self.safe_publish(self.skeleton_pub, PersonSkeletonArray(header=msg.header, persons=persons))
        overlay = self.overlay_pub
        if overlay is not None and overlay.get_subscription_count() > 0:
            drawn = draw_persons(image, found, show_ids=estimator.multi)
            self.safe_publish(overlay, image_msg(drawn, msg.header))
        self.processing.add(time.monotonic() - started)

    def _tracking_stamp(self, stamp: Any) -> float:
        """The image's time in seconds for the pose stage (tracks age on it). ImageError for a stamp
        no clock gives (``stamp_problem``); an unstamped image (0) is timed by this node's clock,
        else persons would never age out of the tracker. The skeletons keep the image's header."""
        problem = stamp_problem(stamp)
        if problem:
            self.stamps_refused += 1
            raise ImageError(problem)
        if stamp.sec == 0 and stamp.nanosec == 0:
            self.get_logger().warning(
                "images arrive with stamp 0; tracking on this node's clock (fix the camera driver)",
                throttle_duration_sec=10.0,
            )
            return self.get_clock().now().nanoseconds * 1e-9
        return stamp_to_seconds(stamp)

    def _decode(self, msg: Image | CompressedImage) -> tuple[np.ndarray, bool]:
        """The BGR image, and whether decoding already shrank it. Our numpy decoding; encodings it
        lacks (e.g. YUV) go to cv_bridge where it is installed."""
        if isinstance(msg, CompressedImage):
            return decode_compressed_sized(msg.data, self.params["max_image_pixels"])
        limit = self.params["max_image_pixels"]
        if msg.encoding not in ENCODINGS and _CV_BRIDGE is not None:
            if limit > 0 and int(msg.height) * int(msg.width) > 4 * limit:  # cv_bridge copies it whole
                raise ImageError(
                    f"a {msg.width}x{msg.height} {msg.encoding} image is over 4 times max_image_pixels "
                    f"({limit}), which only {', '.join(ENCODINGS)} images may be (read in part)"
                )
            try:
                converted = _CV_BRIDGE.imgmsg_to_cv2(msg, desired_encoding="bgr8")
            except Exception as err:  # cv_bridge raises its own error types
                raise ImageError(f"cv_bridge could not convert {msg.encoding!r}: {err}") from None
            return to_bgr(converted), False  # checked as any image: an empty one is a bad frame
        image = decode_image(msg.height, msg.width, msg.encoding, msg.step, msg.data, msg.is_bigendian, limit)
        return image, image.shape[:2] != (msg.height, msg.width)

    def status(self) -> Status:
        timing = self.processing.summary()
        values = {
            "input_rate_hz": self.rate_in.rate(time.monotonic()),
            "processing_ms_p50": 1000 * timing["p50"],
            "processing_ms_p95": 1000 * timing["p95"],
            "frames_received": self.frames_in,
            "frames_dropped_upstream": self.dropped_before + self.drops.dropped,
            "bad_frames": self.bad_frames,
            "frames_downscaled": self.frames_downscaled,
            "publish_failures": self.publish_failures,
            "backend": self.params["backend"],
            "persons": self.persons_seen,
            "image_reliability": self.reliability.name.lower(),
        }
        if self.wrong_type_publishers:
            values["wrong_type_publishers"] = self.wrong_type_publishers
        if self.image_publishers is not None:
            values["image_publishers"] = self.image_publishers
            values["incompatible_qos"] = self.unreachable_publishers
        if self.estimator is None:
            return ERROR, "not configured", values
        if self.wrong_type:
            return WARN, "; ".join(self.wrong_type), values
        values["camera_subscribed"] = int(bool(self.inputs))
        if self._state_machine.current_state[1] == "active" and not self.inputs:
            return (
                OK,
                "idle: nobody subscribes to skeletons or overlay, so the camera is not read (lazy)",
                values,
            )
        troubles = ["bad input frames seen"] if self.bad_frames else []
        troubles += ["publishing failed"] if self.publish_failures else []
        if self.unreachable_publishers and self.inputs:
            troubles += [
                f"{self.unreachable_publishers} image publishers' QoS cannot reach the camera subscription "
                "(best effort for reliable): nothing of theirs arrives; set image_reliability to auto "
                "(and drop its qos_overrides)"
            ]
        if self.image_publishers == 0 and self.inputs:  # a wrong camera_topic looks just like this
            troubles += [f"nothing publishes on {self.inputs[0].topic_name}; check camera_topic"]
        return (WARN, "; ".join(troubles), values) if troubles else (OK, "running", values)


def _hint(wanted: str, found: list[str]) -> str:
    """What to change when a camera's type and the ``compressed`` parameter disagree."""
    if wanted.endswith("/Image") and "sensor_msgs/msg/CompressedImage" in found:
        return " (set compressed: true for compressed images and give the raw topic; /compressed is added)"
    if wanted.endswith("/CompressedImage") and "sensor_msgs/msg/Image" in found:
        return " (for raw images set compressed: false)"
    return ""


def main(args: list[str] | None = None) -> int:
    return spin_node(PoseNode, args)


if __name__ == "__main__":
    sys.exit(main())
