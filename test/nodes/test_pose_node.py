"""Pose node with real MediaPipe on real photos: QoS, latest-frame-only, bad input, overlay."""

from __future__ import annotations

import re
import threading
import time

import cv2
import numpy as np
import pytest
import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.event_handler import PublisherEventCallbacks
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from bharnet_ros.msg import PersonSkeletonArray
from bharnet_ros.nodes.pose_node import PoseNode

PHOTO = "images/gesture_photos/four_15a73593-b13e-4a1b-99bb-51775cfdfc42.jpg"
# Best effort, as cameras publish, but deep: a probe slowed by a loaded machine drops nothing.
PROBE_QOS = QoSProfile(depth=300, reliability=ReliabilityPolicy.BEST_EFFORT)

EAGER = Parameter("lazy", value=False)  # reads the camera with no subscriber (tests of the camera side)


@pytest.fixture
def photo(shared_file) -> np.ndarray:
    return cv2.imread(str(shared_file(PHOTO)))


@pytest.fixture
def pose_graph(ros, wait):
    """A configured and active pose node, a camera publisher and a skeleton recorder."""
    pose = ros.add(PoseNode)
    probe = ros.add(Node, "probe")
    received: list[PersonSkeletonArray] = []
    probe.create_subscription(PersonSkeletonArray, "skeletons", received.append, 50)
    camera = probe.create_publisher(Image, "image_raw", qos_profile_sensor_data)
    assert wait(lambda: pose.inputs and camera.get_subscription_count() > 0)
    return pose, probe, camera, received


def test_skeleton_carries_the_image_header(pose_graph, photo, make_image, wait):
    pose, _, camera, received = pose_graph
    camera.publish(make_image(photo, 1_234_567_890_123, frame_id="head_camera"))
    assert wait(lambda: received)
    msg = received[0]
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (1234, 567_890_123)
    assert msg.header.frame_id == "head_camera"
    assert len(msg.persons) == 1
    person = msg.persons[0]
    assert person.header == msg.header
    assert (person.image_width, person.image_height) == (photo.shape[1], photo.shape[0])
    assert person.left_hand_present or person.right_hand_present


def test_reliable_camera_publishers_are_compatible(pose_graph, photo, make_image, wait):
    _, probe, _, received = pose_graph
    reliable = probe.create_publisher(
        Image, "image_raw", QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    )
    assert wait(lambda: reliable.get_subscription_count() > 0)
    reliable.publish(make_image(photo, 5_000_000_000))
    assert wait(lambda: any(m.header.stamp.sec == 5 for m in received))


def test_the_image_subscription_follows_the_reliability_of_the_camera(ros, wait, photo, make_image):
    """Reliable while every publisher is (Fast DDS drops most large frames of a reliable camera in
    another process to a best-effort reader), best effort as soon as one is not, which takes both."""
    fast = Parameter("diagnostics_period", value=0.1)  # the publishers are looked at on each tick
    pose = ros.add(PoseNode, parameter_overrides=[fast])
    fixed = ros.add(
        PoseNode,
        namespace="fixed",
        parameter_overrides=[
            fast,
            Parameter("image_reliability", value="best_effort"),
            Parameter("lazy", value=False),
        ],
        cli_args=["--ros-args", "-r", "image_raw:=/image_raw"],  # the same camera
    )
    probe = ros.add(Node, "probe")
    received: list[PersonSkeletonArray] = []
    probe.create_subscription(PersonSkeletonArray, "skeletons", received.append, 50)

    def reliability(node) -> ReliabilityPolicy | None:
        return node.inputs[0].qos_profile.reliability if node.inputs else None

    assert wait(lambda: reliability(pose) == ReliabilityPolicy.BEST_EFFORT)  # no camera yet
    camera = probe.create_publisher(Image, "image_raw", QoSProfile(depth=10))  # reliable, as most drivers
    assert wait(lambda: reliability(pose) == ReliabilityPolicy.RELIABLE)
    assert wait(lambda: camera.get_subscription_count() == 2)
    camera.publish(make_image(photo, 7_000_000_000))
    assert wait(lambda: any(m.header.stamp.sec == 7 for m in received))
    assert reliability(fixed) == ReliabilityPolicy.BEST_EFFORT
    assert pose.status()[2]["image_reliability"] == "reliable"
    quiet = PublisherEventCallbacks(incompatible_qos=lambda info: None)  # its own side is not tested
    probe.create_publisher(Image, "image_raw", qos_profile_sensor_data, event_callbacks=quiet)  # best effort
    assert wait(lambda: reliability(pose) == ReliabilityPolicy.BEST_EFFORT)


def test_qos_overrides_of_one_node_leave_the_next_one_best_effort(ros, wait):
    from bharnet_ros.nodes.pose_node import IMAGE_QOS

    reliable = Parameter("qos_overrides./image_raw.subscription.reliability", value="reliable")
    first = ros.add(PoseNode, parameter_overrides=[reliable, EAGER])
    assert wait(lambda: first.inputs)
    assert first.inputs[0].qos_profile.reliability == ReliabilityPolicy.RELIABLE
    assert IMAGE_QOS.reliability == ReliabilityPolicy.BEST_EFFORT  # the shared default is untouched
    second = ros.add(PoseNode, namespace="second", parameter_overrides=[EAGER])
    assert wait(lambda: second.inputs)
    assert second.inputs[0].qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT


@pytest.mark.parametrize("lazy", [False, True], ids=["eager", "lazy"])
def test_a_misspelt_reliability_override_fails_activate_with_the_reason(ros, wait, lazy):
    """It became auto without a word: a reliable subscription where best effort was asked for. The
    recognizer's override, which rclpy reads, is refused the same way. A lazy node with no reader
    yet had become active and failed in every later callback instead."""
    typo = Parameter("qos_overrides./image_raw.subscription.reliability", value="besteffort")
    pose = ros.add(PoseNode, parameter_overrides=[typo, Parameter("lazy", value=lazy)])
    assert wait(lambda: "activate failed" in pose.transition_error)
    assert "'besteffort' is none of best_effort, reliable, best_available, system_default" in (
        pose.transition_error
    )
    assert not pose.inputs


@pytest.mark.parametrize("lazy", [False, True], ids=["eager", "lazy"])
@pytest.mark.parametrize(
    ("policy", "value", "message"),
    [
        ("depth", 0, "depth 0 is no depth from 1 to 2147483647"),
        ("history", "bogus", "history 'bogus' is none of keep_all, keep_last, system_default"),
    ],
)
def test_a_queue_override_no_subscription_takes_fails_activate_lazy_or_not(
    ros, wait, lazy, policy, value, message
):
    """Lazy and with no reader yet, the node had become active and OK, then failed in every
    diagnostics tick once a reader came, its status still saying that nobody subscribes."""
    override = Parameter(f"qos_overrides./image_raw.subscription.{policy}", value=value)
    pose = ros.add(PoseNode, parameter_overrides=[override, Parameter("lazy", value=lazy)])
    assert wait(lambda: "activate failed" in pose.transition_error)
    assert f"qos_overrides./image_raw.subscription.{message}" in pose.transition_error
    assert not pose.inputs


def test_a_camera_whose_qos_cannot_reach_the_subscription_is_reported(ros, wait):
    """A best-effort camera to a subscription made reliable by the user: nothing of it ever
    arrives. Only the log had said so; /diagnostics stayed OK, 'running'."""
    reliable = Parameter("image_reliability", value="reliable")
    pose = ros.add(PoseNode, parameter_overrides=[reliable, EAGER])
    probe = ros.add(Node, "probe")
    quiet = PublisherEventCallbacks(incompatible_qos=lambda info: None)
    probe.create_publisher(Image, "image_raw", qos_profile_sensor_data, event_callbacks=quiet)
    assert wait(lambda: pose.inputs)

    def reported() -> bool:
        pose.periodic()
        return pose.status()[2].get("incompatible_qos") == 1

    assert wait(reported)
    level, message, _ = pose.status()
    assert level == DiagnosticStatus.WARN
    assert "1 image publishers' QoS cannot reach the camera subscription" in message


def test_a_reliability_override_rclpy_takes_follows_the_publishers(ros, wait):
    """best_available is rclpy's own word for what auto does: it was refused with the typos."""
    override = Parameter("qos_overrides./image_raw.subscription.reliability", value="best_available")
    pose = ros.add(PoseNode, parameter_overrides=[override, EAGER])
    assert wait(lambda: pose.inputs)
    assert pose.transition_error == ""


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda m: setattr(m, "encoding", "yuv422_yuy2"),  # unsupported encoding
        lambda m: setattr(m, "data", bytes(m.data[:100])),  # truncated
        lambda m: (setattr(m, "height", 0), setattr(m, "data", b"")),  # zero-size
        lambda m: setattr(m, "step", 3),  # step shorter than a row
        lambda m: setattr(m.header.stamp, "nanosec", 4_000_000_000),  # a uint32, but no time
        lambda m: setattr(m.header.stamp, "sec", -5),  # before 1970: subscribers' Time.from_msg raises
    ],
    ids=["encoding", "truncated", "zero-size", "step", "stamp", "negative-stamp"],
)
def test_bad_images_are_counted_and_the_node_keeps_working(pose_graph, photo, make_image, wait, corrupt):
    pose, _, camera, received = pose_graph
    bad = make_image(photo, 1_000_000_000)
    corrupt(bad)
    camera.publish(bad)
    assert wait(lambda: pose.bad_frames == 1)
    camera.publish(make_image(photo, 2_000_000_000))
    assert wait(lambda: received)
    assert [m.header.stamp.sec for m in received] == [2]


def test_an_image_refused_for_its_stamp_is_not_counted_as_frames_dropped_upstream(
    pose_graph, photo, make_image, wait
):
    """Its stamp is no time: read as up to 4 s ahead, it made a gap of about 90 frames at 30 fps."""
    pose, _, camera, received = pose_graph
    period = 1_000_000_000 // 30
    for i in range(8):
        camera.publish(make_image(photo, 1_000_000_000 + i * period))
        assert wait(lambda i=i: len(received) == i + 1)
    bad = make_image(photo, 1_000_000_000 + 8 * period)
    bad.header.stamp.nanosec = 4_000_000_000
    camera.publish(bad)
    assert wait(lambda: pose.bad_frames == 1)
    camera.publish(make_image(photo, 1_000_000_000 + 8 * period))  # the frame, stamped right
    assert wait(lambda: len(received) == 9)
    assert pose.status()[2]["frames_dropped_upstream"] == 0


def test_a_side_mediapipe_would_abort_on_is_shrunk_and_the_node_keeps_working(
    pose_graph, photo, make_image, wait
):
    """A 100 x 9000 image fits max_image_pixels but would abort MediaPipe (and the process); a
    1 x 32767 one is no camera image (one side over 100 times the other) and is counted."""
    pose, _, camera, received = pose_graph
    camera.publish(make_image(np.zeros((100, 9000, 3), np.uint8), 1_000_000_000))
    assert wait(lambda: len(received) == 1)
    assert pose.frames_downscaled == 1
    camera.publish(make_image(np.zeros((1, 32767, 3), np.uint8), 1_500_000_000))
    assert wait(lambda: pose.bad_frames == 1)
    camera.publish(make_image(photo, 2_000_000_000))
    assert wait(lambda: len(received) == 2)
    assert len(received[1].persons) == 1


def test_an_empty_image_from_cv_bridge_is_a_bad_frame_not_a_callback_error(pose_graph, wait, monkeypatch):
    """cv_bridge (where installed) converts encodings our decoding lacks; what it returns is
    checked like any image, so a 0 x 0 result is counted, not a division by zero in the callback."""

    class EmptyBridge:
        def imgmsg_to_cv2(self, msg, desired_encoding):
            return np.zeros((0, 0, 3), np.uint8)

    monkeypatch.setattr("bharnet_ros.nodes.pose_node._CV_BRIDGE", EmptyBridge())
    pose, _, camera, _ = pose_graph
    camera.publish(
        Image(header=Header(stamp=Time(sec=1)), height=2, width=2, encoding="yuv422", step=4, data=bytes(8))
    )
    assert wait(lambda: pose.bad_frames == 1)
    assert pose.callback_errors == 0


def test_a_huge_image_for_cv_bridge_is_a_bad_frame_before_it_is_copied(pose_graph, wait, monkeypatch):
    """Our decoding reads a huge raw image in part; cv_bridge copies and converts it whole first."""
    converted = []

    class Bridge:
        def imgmsg_to_cv2(self, msg, desired_encoding):
            converted.append(msg.width)
            return np.zeros((msg.height, msg.width, 3), np.uint8)

    monkeypatch.setattr("bharnet_ros.nodes.pose_node._CV_BRIDGE", Bridge())
    pose, _, camera, received = pose_graph
    side = 2 * int(np.sqrt(pose.params["max_image_pixels"])) + 2  # over 4 times the pixels
    huge = Image(header=Header(stamp=Time(sec=1)), height=side, width=side, encoding="yuv422", step=2 * side)
    huge.data = bytes(2 * side * side)
    camera.publish(huge)
    assert wait(lambda: pose.bad_frames == 1)
    camera.publish(
        Image(header=Header(stamp=Time(sec=2)), height=4, width=4, encoding="yuv422", step=8, data=bytes(32))
    )
    assert wait(lambda: received)
    assert converted == [4]


def test_compressed_images_that_cannot_be_decoded_are_counted(ros, photo, wait, parameter_client):
    """A 4 x 4 PNG, a PNG bomb's header and a BMP: counted as bad frames, and the next JPEG works."""
    pose = ros.add(PoseNode, parameter_overrides=[Parameter("compressed", value=True)])
    probe = ros.add(Node, "probe")
    received: list[PersonSkeletonArray] = []
    probe.create_subscription(PersonSkeletonArray, "skeletons", received.append, 50)
    camera = probe.create_publisher(CompressedImage, "image_raw/compressed", qos_profile_sensor_data)
    assert wait(lambda: pose.inputs and camera.get_subscription_count() > 0)
    bomb = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + (40000).to_bytes(4, "big") * 2 + b"\x08\x02" + bytes(70)
    tiny_png = cv2.imencode(".png", photo[:4, :4])[1].tobytes()
    bmp = cv2.imencode(".bmp", photo[:64, :64])[1].tobytes()
    for second, data in enumerate([tiny_png, bomb, bmp], start=1):
        seen = pose.bad_frames + len(received)
        camera.publish(CompressedImage(header=Header(stamp=Time(sec=second)), format="png", data=data))
        assert wait(lambda seen=seen: pose.bad_frames + len(received) > seen)
    assert pose.callback_errors == 0
    jpeg = cv2.imencode(".jpg", photo)[1].tobytes()
    camera.publish(CompressedImage(header=Header(stamp=Time(sec=9)), format="jpeg", data=jpeg))
    assert wait(lambda: any(m.header.stamp.sec == 9 and m.persons for m in received))


def test_mono_and_rgb_cameras_work(pose_graph, photo, make_image, wait):
    _, _, camera, received = pose_graph
    camera.publish(make_image(cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY), 3_000_000_000, encoding="mono8"))
    assert wait(lambda: len(received) == 1)
    camera.publish(make_image(cv2.cvtColor(photo, cv2.COLOR_BGR2RGB), 4_000_000_000, encoding="rgb8"))
    assert wait(lambda: len(received) == 2)
    assert received[1].persons


def test_images_that_come_while_one_is_processed_leave_only_the_newest(
    pose_graph, photo, make_image, wait, monkeypatch
):
    """The image subscription holds the newest image only (depth 1): nine images that come while
    MediaPipe works on one are replaced, not queued, and the newest is processed next.

    The pose stage is held on its first image until the probe has heard all ten (it hears what the
    node hears); only then does the held image go through.
    """
    pose, probe, camera, received = pose_graph
    heard: list[int] = []
    probe.create_subscription(Image, "image_raw", lambda m: heard.append(_ns(m)), PROBE_QOS)
    assert wait(lambda: camera.get_subscription_count() == 2)
    entered, release = threading.Event(), threading.Event()
    monkeypatch.setattr(pose.estimator, "process", held_once(pose.estimator.process, entered, release))
    stamps = [(10 + i) * 16_666_667 for i in range(10)]
    try:
        camera.publish(make_image(photo, stamps[0]))
        assert wait(entered.is_set), "the first image reached the pose stage"
        for stamp in stamps[1:]:
            camera.publish(make_image(photo, stamp))
        assert wait(lambda: stamps[-1] in heard)
    finally:
        release.set()
    assert wait(lambda: received and _ns(received[-1]) == stamps[-1]), "the newest image is processed"
    assert [_ns(m) for m in received] == [stamps[0], stamps[-1]], "the eight between were never queued"
    assert pose.frames_in == 2


def held_once(process, entered: threading.Event, release: threading.Event):
    """``process`` that, on its first call, says so and waits for ``release`` (bounded) first."""

    def run(image, stamp, camera_size=None):
        if not entered.is_set():
            entered.set()
            release.wait(timeout=120)
        return process(image, stamp, camera_size)

    return run


def test_overlay_only_when_someone_listens(pose_graph, photo, make_image, wait, parameter_client):
    pose, probe, camera, received = pose_graph
    assert parameter_client("pose").set(publish_overlay=True)["publish_overlay"].successful
    camera.publish(make_image(photo, 1_000_000_000))
    assert wait(lambda: received)
    overlays: list[Image] = []
    probe.create_subscription(Image, "overlay", overlays.append, qos_profile_sensor_data)
    assert wait(lambda: pose.overlay_pub.get_subscription_count() > 0)
    camera.publish(make_image(photo, 2_000_000_000))
    assert wait(lambda: overlays)
    assert overlays[0].header.stamp.sec == 2
    assert (overlays[0].width, overlays[0].height) == (photo.shape[1], photo.shape[0])


def _ns(msg: PersonSkeletonArray) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def test_parameters_through_a_parameter_client(pose_graph, parameter_client, lifecycle):
    pose = pose_graph[0]
    client = parameter_client("pose")
    results = client.set(publish_overlay=True, backend="hands_pose", min_detection_confidence=0.7)
    assert results["publish_overlay"].successful
    assert not results["publish_overlay"].reason  # live: no note
    assert pose.params["publish_overlay"] is True
    for name in ("backend", "min_detection_confidence"):
        assert results[name].successful
        assert "next configure" in results[name].reason
    assert pose.estimator.backend == "holistic"  # MediaPipe keeps running as configured
    assert pose.pending == {"backend", "min_detection_confidence"}
    assert lifecycle("pose").set("deactivate", "cleanup", "configure", "activate")
    assert pose.estimator.backend == "hands_pose"
    assert pose.params["min_detection_confidence"] == 0.7
    assert not pose.pending
    refused = client.set(autostart=False)["autostart"]
    assert not refused.successful
    assert "read-only" in refused.reason


def test_an_image_above_max_image_pixels_is_shrunk_counted_and_still_seen(
    pose_graph, photo, make_image, wait, parameter_client
):
    pose, _, camera, received = pose_graph
    result = parameter_client("pose").set(max_image_pixels=200 * 150)["max_image_pixels"]
    assert result.successful
    assert not result.reason  # live
    camera.publish(make_image(photo, 2_000_000_000))
    assert wait(lambda: received)
    assert pose.frames_downscaled == 1
    assert len(received[0].persons) == 1  # the person is still found at 200x150
    person = received[0].persons[0]  # the camera's size, as the contract says: not the shrunk one
    assert (person.image_width, person.image_height) == (photo.shape[1], photo.shape[0])


def test_the_overlay_topic_exists_only_while_the_overlay_is_on(
    ros, wait, photo, make_image, parameter_client, lifecycle
):
    pose = ros.add(PoseNode, parameter_overrides=[EAGER])  # the overlay is off by default
    probe = ros.add(Node, "probe")
    overlays: list[Image] = []
    probe.create_subscription(Image, "overlay", overlays.append, qos_profile_sensor_data)
    camera = probe.create_publisher(Image, "image_raw", qos_profile_sensor_data)
    assert wait(lambda: pose.inputs and camera.get_subscription_count() > 0)
    assert probe.count_publishers("/overlay") == 0, "not advertised while off"
    client = parameter_client("pose")
    assert client.set(publish_overlay=True)["publish_overlay"].successful
    assert wait(lambda: pose.overlay_pub is not None and pose.overlay_pub.get_subscription_count() > 0)
    camera.publish(make_image(photo, 1_000_000_000))
    assert wait(lambda: overlays), "turned on live, it publishes at once"
    assert client.set(publish_overlay=False)["publish_overlay"].successful
    assert wait(lambda: probe.count_publishers("/overlay") == 0)
    assert lifecycle("pose").set("deactivate", "cleanup", "configure", "activate")
    assert probe.count_publishers("/overlay") == 0


def two_people(shared_file) -> np.ndarray:
    """One frame of two different people side by side (the middle 400 pixels of each clip)."""
    tiles = []
    for clip in ("hri_gestures/S2/greeting_1_1m_upper.avi", "hri_gestures/S1/stop_1_1m_upper.avi"):
        capture = cv2.VideoCapture(str(shared_file(clip)))
        capture.set(cv2.CAP_PROP_POS_FRAMES, 40)
        tiles.append(capture.read()[1][:, 120:520])
        capture.release()
    return np.concatenate(tiles, axis=1)


@pytest.fixture
def multi_graph(ros, wait, tmp_path, monkeypatch):
    """A pose node on the multi backend, a camera publisher and the skeletons it sends."""
    monkeypatch.setenv("BHARNET_CACHE_DIR", str(tmp_path / "cache"))
    overrides = [Parameter("backend", value="multi"), Parameter("num_poses", value=3)]
    pose = ros.add(PoseNode, parameter_overrides=overrides)
    probe = ros.add(Node, "probe")
    received: list[PersonSkeletonArray] = []
    probe.create_subscription(PersonSkeletonArray, "skeletons", received.append, 50)
    camera = probe.create_publisher(Image, "image_raw", qos_profile_sensor_data)
    assert wait(lambda: pose.inputs and camera.get_subscription_count() > 0, timeout=60)
    return pose, camera, received


def test_multi_backend_publishes_every_person_with_their_own_id(multi_graph, wait, make_image, shared_file):
    pose, camera, received = multi_graph
    image = two_people(shared_file)
    for frame in range(3):  # 20 fps: within the tracker's patience
        count = len(received)
        camera.publish(make_image(image, 1_000_000_000 + frame * 50_000_000))
        assert wait(lambda n=count: len(received) > n)
    persons = received[-1].persons
    assert len(persons) == 2
    assert sorted(p.person_id for p in persons) == [0, 1], "the same two ids on every frame"
    assert all(p.header == received[-1].header for p in persons)
    assert pose.status()[2]["persons"] == 2


def test_a_camera_publishing_another_type_on_the_image_topic_is_reported(ros, wait):
    """DDS drops messages of another type silently: a CompressedImage camera on the raw topic
    (``compressed`` left false) looked like no camera at all, with OK diagnostics."""
    pose = ros.add(PoseNode, parameter_overrides=[Parameter("diagnostics_period", value=0.1), EAGER])
    assert wait(lambda: pose.inputs)
    context = rclpy.Context()  # a participant of its own: one participant refuses two types on a topic
    rclpy.init(context=context)
    camera = Node("compressed_camera", context=context)
    try:
        camera.create_publisher(CompressedImage, "image_raw", qos_profile_sensor_data)
        assert wait(lambda: pose.wrong_type_publishers == 1)
        level, message, values = pose.status()
        assert level == DiagnosticStatus.WARN
        assert "sensor_msgs/msg/CompressedImage" in message
        assert "set compressed: true" in message
        assert values["wrong_type_publishers"] == 1
    finally:
        camera.destroy_node()
        rclpy.try_shutdown(context=context)
    assert wait(lambda: pose.wrong_type_publishers == 0), "gone with the publisher"
    assert wait(lambda: pose.image_publishers == 0)
    assert pose.status()[:2] == (DiagnosticStatus.WARN, "nothing publishes on /image_raw; check camera_topic")


def test_a_camera_topic_nobody_publishes_on_warns_and_a_camera_clears_it(ros, wait):
    pose = ros.add(PoseNode, parameter_overrides=[Parameter("diagnostics_period", value=0.1), EAGER])
    assert wait(lambda: pose.image_publishers == 0)
    level, message, values = pose.status()
    assert (level, values["image_publishers"]) == (DiagnosticStatus.WARN, 0)
    assert "nothing publishes on /image_raw" in message
    camera = ros.add(Node, "camera").create_publisher(Image, "image_raw", qos_profile_sensor_data)
    assert wait(lambda: pose.image_publishers == 1)
    assert pose.status()[:2] == (DiagnosticStatus.OK, "running")
    assert camera.get_subscription_count() == 1


def test_publish_failures_warn_on_diagnostics(ros, wait):
    pose = ros.add(PoseNode, parameter_overrides=[EAGER])
    assert wait(lambda: pose.inputs)

    class RefusingPublisher:  # the middleware edge: publish raises as rclpy does under overload
        topic_name = "/skeletons"

        def publish(self, msg):
            raise RuntimeError("Failed to publish: cannot publish data")

    assert "publishing failed" not in pose.status()[1]
    assert pose.safe_publish(RefusingPublisher(), PersonSkeletonArray()) is False
    level, message, values = pose.status()
    assert (level, values["publish_failures"]) == (DiagnosticStatus.WARN, 1)
    assert message.startswith("publishing failed")


def test_unstamped_images_are_tracked_on_the_node_clock_so_persons_who_left_age_out(
    multi_graph, wait, make_image, shared_file
):
    _, camera, received = multi_graph
    image = two_people(shared_file)
    # they leave: an empty frame longer after them than the tracker's patience (0.5 s), then back
    for pause, frame in ((0.0, image), (1.0, np.zeros_like(image)), (0.1, image)):
        time.sleep(pause)
        count = len(received)
        camera.publish(make_image(frame, 0))  # a driver that never stamps
        assert wait(lambda n=count: len(received) > n)
    first, again = (
        sorted(p.person_id for p in received[0].persons),
        sorted(p.person_id for p in received[-1].persons),
    )
    assert len(first) == 2
    assert not set(first) & set(again)  # new ids: the two who came back are new tracks
    assert received[-1].header.stamp.sec == 0  # the skeletons keep the image's header


def tracking_threshold(pose: PoseNode) -> float:
    """The pose-presence threshold in the holistic MediaPipe graph the node runs now: the
    ``min_tracking_confidence`` MediaPipe was really built with, read from the graph's own config."""
    config = pose.estimator._estimator._graphs["holistic"]._graph.text_config
    found = re.search(r"ThresholdingCalculatorOptions\.ext\] \{\s*threshold: ([0-9.e-]+)", config)
    assert found, "no presence threshold in the holistic graph"
    return float(found.group(1))


def test_min_tracking_confidence_reaches_mediapipe_on_the_next_configure(
    pose_graph, photo, make_image, wait, parameter_client, lifecycle
):
    """Set through the client, accepted for the next configure (as its descriptor says); after a
    cleanup and configure MediaPipe runs with it, and still finds the person."""
    pose, _, camera, received = pose_graph
    assert tracking_threshold(pose) == pytest.approx(0.5)
    result = parameter_client("pose").set(min_tracking_confidence=0.8)["min_tracking_confidence"]
    assert result.successful
    assert "next configure" in result.reason
    assert tracking_threshold(pose) == pytest.approx(0.5)  # the running graph is kept until then
    assert pose.pending == {"min_tracking_confidence"}
    assert lifecycle("pose").set("deactivate", "cleanup", "configure", "activate")
    assert tracking_threshold(pose) == pytest.approx(0.8)
    assert wait(lambda: pose.inputs and camera.get_subscription_count() > 0)
    camera.publish(make_image(photo, 1_000_000_000))
    assert wait(lambda: received), "the new graph runs"
    assert len(received[0].persons) == 1


def person_in(ros, wait, make_image, image: np.ndarray, namespace: str, **params) -> np.ndarray:
    """The landmarks (body, left hand, right hand: x and y) of the one person that a new pose node,
    started with ``params``, finds in ``image``."""
    overrides = [Parameter(name, value=value) for name, value in params.items()]
    pose = ros.add(PoseNode, namespace=namespace, parameter_overrides=overrides)
    probe = ros.add(Node, "probe", namespace=namespace)
    received: list[PersonSkeletonArray] = []
    listener = probe.create_subscription(PersonSkeletonArray, "skeletons", received.append, 10)
    camera = probe.create_publisher(Image, "image_raw", qos_profile_sensor_data)
    assert wait(lambda: pose.inputs and camera.get_subscription_count() and listener.get_publisher_count())
    camera.publish(make_image(image, 1_000_000_000))
    assert wait(lambda: received)
    (person,) = received[0].persons
    parts = (person.body, person.left_hand, person.right_hand)
    return np.concatenate([np.asarray(part).reshape(-1, 4)[:, :2] for part in parts])


def test_mirrored_input_gives_a_mirror_camera_the_skeleton_a_normal_camera_gives(
    ros, wait, photo, make_image
):
    """A selfie webcam or Kinect v2 sends the photo mirrored; with ``mirrored_input`` its skeleton
    is the normal camera's: every landmark in place, each hand on its own side."""
    normal = person_in(ros, wait, make_image, photo, "normal")
    mirrored = person_in(ros, wait, make_image, cv2.flip(photo, 1), "mirror", mirrored_input=True)
    assert np.abs(normal[33:]).sum() > 0, "the photo shows a hand"
    np.testing.assert_allclose(mirrored, normal, atol=0.01)


def test_the_camera_is_read_only_while_someone_reads_the_skeletons(
    ros, wait, photo, make_image, parameter_client, lifecycle
):
    """Lazy, as image_pipeline's nodes: no reader, no camera subscription, no pose stage. The
    publisher's matched event subscribes at once; the last reader leaving unsubscribes."""
    pose = ros.add(PoseNode)
    assert wait(lambda: pose._state_machine.current_state[1] == "active")
    assert not pose.inputs
    assert "idle" in pose.status()[1]
    probe = ros.add(Node, "probe")
    camera = probe.create_publisher(Image, "image_raw", qos_profile_sensor_data)
    received: list[PersonSkeletonArray] = []
    reader = probe.create_subscription(PersonSkeletonArray, "skeletons", received.append, 50)
    assert wait(lambda: pose.inputs and camera.get_subscription_count() == 1)
    camera.publish(make_image(photo, 3_000_000_000))
    assert wait(lambda: received)
    probe.destroy_subscription(reader)
    assert wait(lambda: not pose.inputs and camera.get_subscription_count() == 0)
    assert pose.status()[2]["persons"] == 0  # nobody is seen while nothing is looked at
    assert parameter_client("pose").set(lazy=False)["lazy"].successful
    assert wait(lambda: pose.inputs)  # reads again with nobody listening
    assert lifecycle("pose").set("deactivate")
    assert not pose.inputs


def test_track_ids_go_on_counting_across_a_reconfigure(multi_graph, wait, make_image, shared_file, lifecycle):
    """Cleanup and configure rebuild the tracker: its ids started again at 0, so a new person could
    continue a window the recognizer still held (``person_timeout``) for someone else."""
    pose, camera, received = multi_graph
    image = two_people(shared_file)
    before = ids_heard(camera, received, wait, make_image(image, 1_000_000_000))
    assert sorted(before) == [0, 1]
    assert lifecycle("pose").set("deactivate", "cleanup", "configure", "activate")
    after = ids_heard(camera, received, wait, make_image(image, 1_050_000_000))
    assert len(after) == 2
    assert not set(after) & set(before), "the new tracker gives no id the old one gave"


def test_a_multi_stage_after_a_single_person_one_gives_nobody_its_id_0(
    multi_graph, wait, make_image, shared_file, lifecycle, parameter_client
):
    """The single-person back ends publish id 0; a multi stage built next started counting at 0,
    so whoever it found first continued that person's window."""
    pose, camera, received = multi_graph
    image = two_people(shared_file)
    assert parameter_client("pose").set(backend="holistic")["backend"].successful
    assert lifecycle("pose").set("deactivate", "cleanup", "configure", "activate")
    assert ids_heard(camera, received, wait, make_image(image, 1_000_000_000)) == [0]
    assert parameter_client("pose").set(backend="multi")["backend"].successful
    assert lifecycle("pose").set("deactivate", "cleanup", "configure", "activate")
    after = ids_heard(camera, received, wait, make_image(image, 1_050_000_000))
    assert len(after) == 2
    assert 0 not in after


def ids_heard(camera, received: list[PersonSkeletonArray], wait, image: Image) -> list[int]:
    """Publish ``image`` until the pose node answers it (it may still be subscribing); the person ids."""
    count = len(received)

    def answered() -> bool:
        camera.publish(image)
        return wait(lambda: len(received) > count, timeout=1.0)

    assert wait(answered, timeout=60)
    return [p.person_id for p in received[-1].persons]
