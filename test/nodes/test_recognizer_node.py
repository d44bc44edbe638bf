"""Recognizer node over real Fast DDS with a real (tiny, exported) ONNX model.

Skeleton streams come from the project's synthetic generator, so no video is needed.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile
from std_msgs.msg import Header

from bharnet_ros.msg import Action, ActionLabels, PersonSkeletonArray
from bharnet_ros.nodes.conversions import frame_to_msg, seconds_to_stamp
from bharnet_ros.nodes.recognizer_node import RecognizerNode
from bharnet_ros.training.synth import generate_sequence

CLASSES = ["idle", "wave", "stop"]  # the tiny model of conftest.py


def stream(person_id: int = 0, frames: int = 48, start: float = 100.0):
    """PersonSkeletonArray messages of a synthetic 'wave', stamped at 30 Hz from ``start``."""
    sequence = generate_sequence("wave", np.random.default_rng(person_id))
    for t in range(frames):
        frame = sequence.frame(t % len(sequence))
        frame.timestamp = start + t / 30
        frame.person_id = person_id
        header = Header(stamp=seconds_to_stamp(frame.timestamp), frame_id="head_camera")
        yield PersonSkeletonArray(header=header, persons=[frame_to_msg(frame, header)])


@pytest.fixture
def graph(ros, wait, tiny_model):
    recognizer = ros.add(
        RecognizerNode,
        parameter_overrides=[
            Parameter("model", value=str(tiny_model)),
            Parameter("stride_seconds", value=4 / 30),
            Parameter("min_seconds", value=0.5),
            Parameter("window_seconds", value=32 / 30),
        ],
    )
    probe = ros.add(Node, "probe")
    actions: list[Action] = []
    probe.create_subscription(Action, "action", actions.append, 100)
    publisher = probe.create_publisher(PersonSkeletonArray, "skeletons", 100)
    assert wait(lambda: recognizer.subscription is not None and publisher.get_subscription_count() > 0)
    return recognizer, probe, publisher, actions


def publish_all(publisher, messages, wait, recognizer, count, rate: float = 60.0):
    """Publish like a camera-rate pose node would (paced, not one burst), then wait for all."""
    for msg in messages:
        publisher.publish(msg)
        time.sleep(1 / rate)
    assert wait(lambda: _received(recognizer) >= count)


def _received(recognizer) -> int:
    return recognizer.recognizer.windows.stats.frames_pushed


def test_actions_carry_source_stamps_and_frame_id(graph, wait):
    recognizer, _, publisher, actions = graph
    messages = list(stream())
    publish_all(publisher, messages, wait, recognizer, len(messages))
    assert wait(lambda: len(actions) >= 5)
    source = {(m.header.stamp.sec, m.header.stamp.nanosec) for m in messages}
    stamps = [(a.header.stamp.sec, a.header.stamp.nanosec) for a in actions]
    assert set(stamps) <= source  # each action is stamped with a real frame's stamp
    assert stamps == sorted(stamps)
    assert all(a.header.frame_id == "head_camera" for a in actions)
    first = actions[0]
    assert first.label in CLASSES
    assert first.top_labels[0] in CLASSES
    assert {first.body_label, first.hand_label} <= set(CLASSES)
    assert 0.0 <= first.confidence <= 1.0
    assert (first.window_start.sec, first.window_start.nanosec) < stamps[0]


def test_labels_are_latched_for_late_subscribers(graph, ros, wait):
    late = ros.add(Node, "late")
    labels: list[ActionLabels] = []
    late.create_subscription(
        ActionLabels,
        "labels",
        labels.append,
        QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL),
    )
    assert wait(lambda: labels)
    assert list(labels[0].class_names) == CLASSES
    assert list(labels[0].hand_intensive) == [False, False, True]


def test_persons_get_their_own_windows(graph, wait):
    recognizer, _, publisher, actions = graph
    messages = [m for pair in zip(stream(1), stream(2), strict=True) for m in pair]
    publish_all(publisher, messages, wait, recognizer, len(messages))
    assert wait(lambda: {1, 2} <= {a.person_id for a in actions})


def test_nan_landmarks_are_ignored_and_counted(graph, wait):
    recognizer, _, publisher, actions = graph
    messages = list(stream(frames=20))
    poisoned = messages[10].persons[0]
    poisoned.body = np.full(len(poisoned.body), np.nan, np.float32)
    for msg in messages:
        publisher.publish(msg)
        time.sleep(1 / 60)
    assert wait(lambda: recognizer.bad_messages == 1)
    assert wait(lambda: _received(recognizer) == 19)


def test_time_going_backwards_restarts_the_window(graph, wait):
    recognizer, _, publisher, _ = graph
    publish_all(publisher, stream(frames=20, start=50.0), wait, recognizer, 20)
    publish_all(publisher, stream(frames=5, start=10.0), wait, recognizer, 25)
    assert recognizer.recognizer.windows.stats.resets == 1
    assert len(recognizer.recognizer.windows.get(0)) == 5


def test_missing_model_fails_configure_but_the_node_stays_up(ros, wait, tmp_path):
    node = ros.add(
        RecognizerNode, parameter_overrides=[Parameter("model", value=str(tmp_path / "nope.onnx"))]
    )
    probe = ros.add(Node, "probe")
    statuses: list[DiagnosticArray] = []
    probe.create_subscription(DiagnosticArray, "/diagnostics", statuses.append, 10)
    assert wait(lambda: "does not exist" in node.model_error)
    assert node.recognizer is None
    assert wait(lambda: any(s.level == DiagnosticStatus.ERROR for a in statuses for s in a.status))
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    node.set_parameters([Parameter("model", value=str(tmp_path / "broken.onnx"))])
    node.params["model"] = str(tmp_path / "broken.onnx")
    node.trigger_configure()
    assert "not a loadable ONNX model" in node.model_error


def test_cuda_request_falls_back_to_cpu_and_says_so(ros, wait, tiny_model):
    node = ros.add(
        RecognizerNode,
        parameter_overrides=[Parameter("model", value=str(tiny_model)), Parameter("device", value="cuda")],
    )
    assert wait(lambda: node.recognizer is not None)
    assert node.recognizer.classifier.providers == ["CPUExecutionProvider"]
    strict = ros.add(
        RecognizerNode,
        parameter_overrides=[
            Parameter("model", value=str(tiny_model)),
            Parameter("device", value="cuda"),
            Parameter("require_device", value=True),
        ],
    )
    assert wait(lambda: "could not use" in strict.model_error)


def test_external_bodies_are_synchronised_with_our_hands(ros, wait, tiny_model):
    node = ros.add(
        RecognizerNode,
        parameter_overrides=[
            Parameter("model", value=str(tiny_model)),
            Parameter("body_topic", value="/tracker/bodies"),
            Parameter("min_seconds", value=0.5),
            Parameter("stride_seconds", value=4 / 30),
        ],
    )
    probe = ros.add(Node, "probe")
    actions: list[Action] = []
    probe.create_subscription(Action, "action", actions.append, 100)
    hands = probe.create_publisher(PersonSkeletonArray, "skeletons", 100)
    bodies = probe.create_publisher(PersonSkeletonArray, "/tracker/bodies", 100)
    assert wait(lambda: node.subscription is not None and bodies.get_subscription_count() > 0)
    for ours, tracked in zip(stream(0, frames=24), stream(0, frames=24, start=100.01), strict=True):
        for person in tracked.persons:
            person.person_id = 42  # the tracker's own ids
        hands.publish(ours)
        bodies.publish(tracked)
        time.sleep(1 / 60)
    assert wait(lambda: actions)
    assert {a.person_id for a in actions} == {42}
    assert actions[0].hand_fraction > 0


def test_lifecycle_transitions_follow_the_documented_table(ros, wait, tiny_model):
    from rclpy.lifecycle import TransitionCallbackReturn

    node = ros.add(
        RecognizerNode,
        parameter_overrides=[Parameter("model", value=str(tiny_model)), Parameter("autostart", value=False)],
    )
    time.sleep(0.2)
    assert node.recognizer is None  # unconfigured: nothing loaded
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.recognizer is not None
    assert node.subscription is None  # inactive: not listening yet
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    assert node.subscription is not None
    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    assert node.subscription is None
    assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
    assert node.recognizer is None


def test_parameter_ranges_are_enforced(ros, tiny_model):
    node = ros.add(RecognizerNode, parameter_overrides=[Parameter("model", value=str(tiny_model))])
    results = node.set_parameters(
        [Parameter("stride_seconds", value=-1.0), Parameter("smoothing", value=0.5)]
    )
    assert not results[0].successful
    assert results[1].successful
    descriptor = node.describe_parameter("stride_seconds")
    assert descriptor.floating_point_range[0].from_value == 0.0
    assert "classify" in descriptor.description


def test_publish_failures_are_counted_not_raised(ros):
    node = ros.add(RecognizerNode, parameter_overrides=[Parameter("autostart", value=False)])

    class RefusingPublisher:  # the middleware edge: publish raises as rclpy does under overload
        topic_name = "/bharnet/action"

        def publish(self, msg):
            raise RuntimeError("Failed to publish: cannot publish data")

    assert node.safe_publish(RefusingPublisher(), Action()) is False
    assert node.publish_failures == 1
