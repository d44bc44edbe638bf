"""Recognizer node over real Fast DDS with a real (tiny, exported) ONNX model.

Skeleton streams come from the project's synthetic generator, so no video is needed.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import time
import types
from typing import Any

import numpy as np
import pytest
import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rcl_interfaces.msg import Log
from rclpy.event_handler import PublisherEventCallbacks
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, qos_profile_sensor_data
from std_msgs.msg import Header, String

from bharnet_ros.core.skeleton import SkeletonFrame
from bharnet_ros.core.sync import ApproximateSync
from bharnet_ros.msg import Action, ActionLabels, PersonSkeleton, PersonSkeletonArray
from bharnet_ros.nodes.conversions import frame_to_msg, seconds_to_stamp, stamp_to_seconds
from bharnet_ros.nodes.diagnostics import OK, WARN
from bharnet_ros.nodes.recognizer_node import RecognizerNode
from bharnet_ros.training.synth import generate_sequence

CLASSES = ["idle", "wave", "stop"]  # the tiny model of conftest.py
WAVE = generate_sequence("wave", np.random.default_rng(0))


def stream(person_id: int = 0, frames: int = 48, start: float = 100.0):
    """PersonSkeletonArray messages of a synthetic 'wave', stamped at 30 Hz from ``start``."""
    sequence = generate_sequence("wave", np.random.default_rng(person_id))
    for t in range(frames):
        frame = sequence.frame(t % len(sequence))
        frame.timestamp = start + t / 30
        frame.person_id = person_id
        header = Header(stamp=seconds_to_stamp(frame.timestamp), frame_id="head_camera")
        yield PersonSkeletonArray(header=header, persons=[frame_to_msg(frame, header)])


SETTINGS = {
    "stride_seconds": 4 / 30,
    "min_seconds": 0.5,
    "window_seconds": 32 / 30,
    "person_timeout": 30.0,  # windows outlive a slow CI machine
}


def start(ros, wait, model, **params):
    """A recognizer on ``model`` with the test settings (``params`` override them), a probe that
    records its actions and a skeleton publisher it hears: (recognizer, probe, publisher, actions)."""
    values = {"model": str(model), **SETTINGS, **params}
    overrides = [Parameter(name, value=value) for name, value in values.items()]
    recognizer = ros.add(RecognizerNode, parameter_overrides=overrides)
    probe = ros.add(Node, "probe")
    actions: list[Action] = []
    probe.create_subscription(Action, "action", actions.append, 100)
    publisher = probe.create_publisher(PersonSkeletonArray, "skeletons", 100)
    assert wait(lambda: recognizer.inputs and publisher.get_subscription_count() > 0)
    return recognizer, probe, publisher, actions


@pytest.fixture
def graph(ros, wait, tiny_model):
    return start(ros, wait, tiny_model)


def publish_all(publisher, messages, wait, recognizer, count, rate: float = 60.0):
    """Publish like a camera-rate pose node would (paced, not one burst), then wait for all."""
    for msg in messages:
        publisher.publish(msg)
        time.sleep(1 / rate)
    assert wait(lambda: _received(recognizer) >= count)


def _received(recognizer) -> int:
    return recognizer.recognizer.windows.stats.frames_pushed


def test_actions_carry_source_stamps_and_frame_id(graph, wait):
    """Each person's own stamp, to the nanosecond at an epoch-scale time, not the array's."""
    recognizer, _, publisher, actions = graph
    messages = list(stream(start=1_764_000_000.123456789))
    for msg in messages:
        msg.header.stamp.sec += 500  # the array published later than its persons were seen
    publish_all(publisher, messages, wait, recognizer, len(messages))
    assert wait(lambda: len(actions) >= 5)
    source = {(m.persons[0].header.stamp.sec, m.persons[0].header.stamp.nanosec) for m in messages}
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
    assert [(c.class_id, c.class_name) for c in labels[0].class_map] == list(enumerate(CLASSES))
    assert list(labels[0].hand_intensive) == [False, False, True]
    recognizer = graph[0]
    assert labels[0].threshold == pytest.approx(recognizer.recognizer.none_threshold)


def test_labels_follow_a_live_none_threshold(graph, ros, wait, parameter_client):
    late = ros.add(Node, "late")
    labels: list[ActionLabels] = []
    latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    late.create_subscription(ActionLabels, "labels", labels.append, latched)
    assert wait(lambda: labels)
    assert parameter_client("recognizer").set(none_threshold=0.45)["none_threshold"].successful
    assert wait(lambda: labels[-1].threshold == pytest.approx(0.45))


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


def test_a_message_of_too_many_skeletons_is_refused_before_it_is_decoded(graph, wait):
    """Each skeleton became Python objects: 2 million empty ones (120 MB) took 4 GB."""
    from bharnet_ros.core.skeleton_fields import MOST_DECODED_SKELETONS

    recognizer, _, publisher, _ = graph
    messages = list(stream(frames=20))
    crowd = messages[10]
    crowd.persons = [PersonSkeleton(header=crowd.header)] * (MOST_DECODED_SKELETONS + 1)
    publish_all(publisher, messages, wait, recognizer, 19)
    assert recognizer.bad_messages == 1  # one message, not 256 empty skeletons and the rest ignored


@pytest.mark.parametrize(
    ("field", "value"),
    [("nanosec", 3_900_000_000), ("sec", -1)],  # a uint32 but no time; before 1970 (an int32)
)
def test_a_stamp_no_clock_gives_is_ignored_and_counted(graph, wait, field, value):
    recognizer, _, publisher, _ = graph
    messages = list(stream(frames=20, start=2.0**31 - 2))
    setattr(messages[10].persons[0].header.stamp, field, value)
    publish_all(publisher, messages, wait, recognizer, 19)
    assert wait(lambda: recognizer.bad_messages == 1)


def test_time_going_backwards_restarts_the_window(graph, wait):
    recognizer, _, publisher, _ = graph
    publish_all(publisher, stream(frames=20, start=50.0), wait, recognizer, 20)
    publish_all(publisher, stream(frames=5, start=10.0), wait, recognizer, 25)
    assert recognizer.recognizer.windows.stats.resets == 1
    assert len(recognizer.recognizer.windows.get(0)) == 5


def test_frames_whose_stamp_never_advances_are_reported_not_silently_dropped(graph, wait):
    recognizer, _, publisher, actions = graph
    frozen = list(stream(frames=20))
    for msg in frozen:  # a camera driver whose stamp is stuck
        msg.header.stamp = msg.persons[0].header.stamp = frozen[0].header.stamp
    publish_all(publisher, frozen, wait, recognizer, 20)
    level, message, values = recognizer.status()
    assert (level, values["frames_repeated"]) == (WARN, 19)
    assert "19 frames repeated their person's newest stamp" in message
    assert not actions


def test_a_publisher_of_another_type_on_the_skeleton_topic_is_reported(ros, wait, tiny_model):
    """DDS drops another type's messages silently: a tracker publishing its own message type on
    the skeleton topic looked like a quiet topic, with OK diagnostics."""
    recognizer = ros.add(
        RecognizerNode,
        parameter_overrides=[
            Parameter("model", value=str(tiny_model)),
            Parameter("diagnostics_period", value=0.1),
        ],
    )
    assert wait(lambda: recognizer.inputs)
    context = rclpy.Context()  # a participant of its own: one participant refuses two types on a topic
    rclpy.init(context=context)
    tracker = Node("tracker", context=context)
    try:
        tracker.create_publisher(String, "skeletons", 10)
        assert wait(lambda: recognizer.wrong_type_publishers == 1)
        level, message, values = recognizer.status()
        assert (level, values["wrong_type_publishers"]) == (WARN, 1)
        assert "on /skeletons send std_msgs/msg/String" in message
        assert "it takes bharnet_ros/msg/PersonSkeletonArray" in message
    finally:
        tracker.destroy_node()
        rclpy.try_shutdown(context=context)
    assert wait(lambda: recognizer.wrong_type_publishers == 0), "gone with the publisher"
    assert recognizer.status()[0] == OK


def test_missing_model_fails_configure_but_the_node_stays_up(
    ros, wait, tmp_path, parameter_client, lifecycle
):
    node = ros.add(
        RecognizerNode, parameter_overrides=[Parameter("model", value=str(tmp_path / "nope.onnx"))]
    )
    probe = ros.add(Node, "probe")
    statuses: list[DiagnosticArray] = []
    probe.create_subscription(DiagnosticArray, "/diagnostics", statuses.append, 10)
    assert wait(lambda: "cannot load the model" in node.transition_error)
    assert "does not exist" in node.transition_error
    assert node.recognizer is None

    def failed_configure_reported() -> bool:
        reports = [s for a in statuses for s in a.status if s.level == DiagnosticStatus.ERROR]
        return any(
            "does not exist" in {v.key: v.value for v in s.values}.get("transition_error", "")
            for s in reports
        )

    assert wait(failed_configure_reported)  # a monitor reads the same key for every failed transition
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    result = parameter_client("recognizer").set(model=str(tmp_path / "broken.onnx"))["model"]
    assert not result.successful  # checked at the set, though no model runs yet
    assert "not a loadable ONNX model" in result.reason
    assert not lifecycle("recognizer").set("configure")  # reads the parameters again, and fails
    assert "does not exist" in node.transition_error
    assert node.recognizer is None


@pytest.mark.parametrize("depth", [0, 2**31, "10"])
def test_a_queue_depth_override_out_of_range_fails_activate_naming_it(ros, wait, tiny_model, depth):
    """rclpy's reason was a pybind signature cut at 300 characters (2**31), or an rmw error, that
    named no parameter; 0 became the middleware's default depth without a word."""
    name = "qos_overrides./skeletons.subscription.depth"
    overrides = [Parameter("model", value=str(tiny_model)), Parameter(name, value=depth)]
    node = ros.add(RecognizerNode, parameter_overrides=overrides)
    assert wait(lambda: "activate failed" in node.transition_error)
    assert f"{name} {depth!r} is no depth from 1 to 2147483647" in node.transition_error
    assert not node.inputs


def test_cuda_request_runs_on_cuda_or_falls_back_to_cpu_and_says_so(ros, wait, tiny_model):
    node = ros.add(
        RecognizerNode,
        parameter_overrides=[Parameter("model", value=str(tiny_model)), Parameter("device", value="cuda")],
    )
    assert wait(lambda: node.recognizer is not None)
    providers = node.recognizer.classifier.providers
    if providers[0] == "CUDAExecutionProvider":  # onnxruntime-gpu on a machine with a GPU
        return
    assert providers == ["CPUExecutionProvider"]
    strict = ros.add(
        RecognizerNode,
        parameter_overrides=[
            Parameter("model", value=str(tiny_model)),
            Parameter("device", value="cuda"),
            Parameter("require_device", value=True),
        ],
    )
    assert wait(lambda: "could not use" in strict.transition_error)


class _StandInSynchronizer:
    """message_filters.ApproximateTimeSynchronizer's API for two inputs, pairing with core.sync."""

    def __init__(self, inputs, queue_size: int, slop: float) -> None:
        self.callbacks = []
        self.pairing = ApproximateSync(slop, queue_size)
        for stream, source in enumerate(inputs):
            source.registerCallback(self._add, stream)

    def registerCallback(self, callback, *args) -> None:  # noqa: N802 (message_filters' name)
        self.callbacks.append((callback, args))

    def _add(self, msg, stream: int) -> None:
        pair = self.pairing.add(stream, stamp_to_seconds(msg.header.stamp), msg)
        if pair is not None:
            for callback, args in self.callbacks:
                callback(*pair, *args)


def _stand_in_message_filters() -> types.ModuleType:
    module = types.ModuleType("message_filters")
    module.ApproximateTimeSynchronizer = _StandInSynchronizer
    return module


@pytest.fixture(params=["core_sync", "message_filters_api"])
def sync_path(request, monkeypatch) -> str:
    """Both ways of pairing bodies and hands: core.sync (no message_filters) and message_filters' API,
    the real package where it is installed (a ROS install), else a stand-in of its API."""
    if request.param == "core_sync":
        monkeypatch.setitem(sys.modules, "message_filters", None)  # None makes the import fail
    elif importlib.util.find_spec("message_filters") is None:
        monkeypatch.setitem(sys.modules, "message_filters", _stand_in_message_filters())
    return request.param


def test_external_bodies_are_synchronised_and_unsubscribed(ros, wait, tiny_model, lifecycle, sync_path):
    node = ros.add(
        RecognizerNode,
        parameter_overrides=[
            Parameter("model", value=str(tiny_model)),
            Parameter("body_topic", value="/tracker/bodies"),
            Parameter("min_seconds", value=0.5),
            Parameter("stride_seconds", value=4 / 30),
        ],
    )
    actions, hands, bodies = paired_inputs(ros, wait, node, "/tracker/bodies")
    _publish_pairs(hands, bodies, start=100.0)
    assert wait(lambda: actions)
    assert {a.person_id for a in actions} == {42}
    assert actions[0].hand_fraction > 0
    transitions = lifecycle("recognizer")
    assert transitions.set("deactivate")
    assert wait(lambda: hands.get_subscription_count() == 0 and bodies.get_subscription_count() == 0)
    assert transitions.set("cleanup")  # used to crash: a live subscription fed a freed recognizer
    _publish_pairs(hands, bodies, start=200.0, frames=4)
    assert transitions.set("configure", "activate")
    assert wait(lambda: hands.get_subscription_count() == 1 and bodies.get_subscription_count() == 1)
    count = len(actions)
    _publish_pairs(hands, bodies, start=300.0)
    assert wait(lambda: len(actions) > count)


def test_bodies_that_never_pair_are_reported_not_silently_dropped(ros, wait, tiny_model, sync_path):
    overrides = [Parameter("model", value=str(tiny_model)), Parameter("body_topic", value="/bodies")]
    overrides.append(Parameter("diagnostics_period", value=60.0))  # only this test's calls report
    node = ros.add(RecognizerNode, parameter_overrides=overrides)
    probe = ros.add(Node, "probe")
    hands = probe.create_publisher(PersonSkeletonArray, "skeletons", 100)
    bodies = probe.create_publisher(PersonSkeletonArray, "/bodies", 100)
    assert wait(lambda: len(node.inputs) == 2 and bodies.get_subscription_count() > 0)
    node.status()  # the report before: nothing came yet
    _publish_pairs(hands, bodies, start=100.0, frames=10, body_offset=1000.0)  # a tracker on another clock
    assert wait(lambda: node.pairing.arrived == [10, 10])
    level, message, values = node.status()
    assert (values["hand_messages"], values["body_messages"], values["pairs"]) == (10, 10, 0)
    assert level == WARN
    assert "bodies and hands do not pair: check sync_slop and both clocks" in message
    _publish_pairs(hands, bodies, start=200.0, frames=10)
    assert wait(lambda: node.pairing.pairs > 0)
    assert node.status()[0] == OK


@pytest.mark.parametrize("crowded", ["skeletons", "bodies"])
def test_paired_messages_of_too_many_skeletons_are_refused_before_decoding(
    ros, wait, tiny_model, sync_path, crowded
):
    """With body_topic too: each skeleton became Python objects before it was counted."""
    from bharnet_ros.core.skeleton_fields import MOST_DECODED_SKELETONS

    overrides = [Parameter("model", value=str(tiny_model)), Parameter("body_topic", value="/bodies")]
    node = ros.add(RecognizerNode, parameter_overrides=overrides)
    _, hands, bodies = paired_inputs(ros, wait, node, "/bodies")
    crowd = next(stream(0, 1, 100.0))
    crowd.persons = [PersonSkeleton(header=crowd.header)] * (MOST_DECODED_SKELETONS + 1)
    {"skeletons": hands, "bodies": bodies}[crowded].publish(crowd)
    assert wait(lambda: node.bad_messages == 1)
    _publish_pairs(hands, bodies, start=200.0, frames=4)
    assert wait(lambda: node.pairing.pairs > 0)
    assert node.pairing.arrived == [4, 4]  # the refused one never reached the pairing
    assert node.callback_errors == 0


@pytest.mark.parametrize("unstamped", ["both", "bodies", "hands"])
def test_streams_that_never_stamp_pair_by_arrival(ros, wait, tiny_model, sync_path, unstamped):
    """A camera and a tracker that never stamp: pairing by stamp 0 paired once, then dropped the
    rest as late; they pair by when they come, and the recognizer times them by its clock. With
    only one of them unstamped, each stream's stamp-0 rule is its own, so neither is taken for a
    second publisher among the other's stamped messages."""
    overrides = [Parameter("model", value=str(tiny_model)), Parameter("body_topic", value="/bodies")]
    node = ros.add(RecognizerNode, parameter_overrides=[*overrides, Parameter("min_seconds", value=0.3)])
    actions, hands, bodies = paired_inputs(ros, wait, node, "/bodies")
    now = time.time()  # a stamped stream's clock is the node's, so the two pair by time
    for ours, tracked in zip(stream(0, 40, now), stream(0, 40, now), strict=True):
        for person in tracked.persons:
            person.person_id = 42
        for msg in {"both": (ours, tracked), "bodies": (tracked,), "hands": (ours,)}[unstamped]:
            for person in msg.persons:
                person.header.stamp = msg.header.stamp = Time()
        hands.publish(ours)
        bodies.publish(tracked)
        time.sleep(1 / 30)
    assert wait(lambda: node.pairing.pairs >= 20)
    assert wait(lambda: actions)
    assert node.bad_messages == 0
    assert node.unstamped_frames > 0


def test_paired_skeletons_are_decided_on_while_a_new_model_loads(
    ros, wait, tiny_model, sync_path, held_swap, tmp_path
):
    """The load runs beside the skeletons (nodes/serving.py), the paired subscriptions too."""
    overrides = [Parameter("model", value=str(tiny_model)), Parameter("body_topic", value="/bodies")]
    node = ros.add(RecognizerNode, parameter_overrides=[*overrides, Parameter("min_seconds", value=0.5)])
    actions, hands, bodies = paired_inputs(ros, wait, node, "/bodies")
    new_model = shutil.copy(tiny_model, tmp_path / "new.onnx")
    with held_swap(str(new_model)) as results:
        _publish_pairs(hands, bodies, start=100.0)
        decided = wait(lambda: actions, timeout=60)
    assert decided, "no decision while the new model loaded"
    assert results[0]["model"].successful
    assert "new.onnx" in node.recognizer.classifier.description


def paired_inputs(ros, wait, node, body_topic: str) -> tuple[list[Action], Any, Any]:
    """The actions of ``node`` as they come, and publishers of hands and of bodies it listens to."""
    probe = ros.add(Node, "probe")
    actions: list[Action] = []
    probe.create_subscription(Action, "action", actions.append, 100)
    hands = probe.create_publisher(PersonSkeletonArray, "skeletons", 100)
    bodies = probe.create_publisher(PersonSkeletonArray, body_topic, 100)
    assert wait(lambda: len(node.inputs) == 2 and bodies.get_subscription_count() > 0)
    return actions, hands, bodies


def _publish_pairs(hands, bodies, start: float, frames: int = 24, body_offset: float = 0.01) -> None:
    """Our skeletons and a tracker's bodies (its own person ids), 10 ms apart, paced at 60 Hz."""
    tracked_stream = stream(0, frames, start + body_offset)
    for ours, tracked in zip(stream(0, frames, start), tracked_stream, strict=True):
        for person in tracked.persons:
            person.person_id = 42
        hands.publish(ours)
        bodies.publish(tracked)
        time.sleep(1 / 60)


def test_lifecycle_transitions_follow_the_documented_table(ros, wait, tiny_model, lifecycle):
    """Through the change_state service, as ``ros2 lifecycle set`` drives it."""
    node = ros.add(
        RecognizerNode,
        parameter_overrides=[Parameter("model", value=str(tiny_model)), Parameter("autostart", value=False)],
    )
    assert node._autostart_timer is None  # nothing will configure it behind our back
    assert node.recognizer is None  # unconfigured: nothing loaded
    client = lifecycle("recognizer")
    assert client.set("configure")
    assert node.recognizer is not None
    assert not node.inputs  # inactive: not listening yet
    assert client.set("activate")
    assert node.inputs
    assert client.set("deactivate")
    assert not node.inputs
    assert client.set("cleanup")
    assert node.recognizer is None


def test_publish_failures_are_counted_not_raised(ros):
    node = ros.add(RecognizerNode, parameter_overrides=[Parameter("autostart", value=False)])

    class RefusingPublisher:  # the middleware edge: publish raises as rclpy does under overload
        topic_name = "/bharnet/action"

        def publish(self, msg):
            raise RuntimeError("Failed to publish: cannot publish data")

    assert node.safe_publish(RefusingPublisher(), Action()) is False
    assert node.publish_failures == 1


def test_live_parameters_apply_at_once_and_keep_every_window(graph, wait, parameter_client):
    recognizer, _, publisher, actions = graph
    publish_all(publisher, stream(frames=30), wait, recognizer, 30)
    core = recognizer.recognizer
    buffered = len(core.windows.get(0))
    client = parameter_client("recognizer")
    results = client.set(
        top_k=2,
        smoothing=0.8,
        switch_margin=0.2,
        none_threshold=0.6,
        stride_seconds=0.1,
        distance_threshold=2.5,
    )
    assert all(r.successful and not r.reason for r in results.values())
    assert client.get("top_k", "none_threshold") == {"top_k": 2, "none_threshold": 0.6}
    assert recognizer.recognizer is core
    assert len(core.windows.get(0)) == buffered  # every window is kept
    config = core.config
    assert (config.top_k, config.smoothing, config.switch_margin, config.stride_seconds) == (2, 0.8, 0.2, 0.1)
    assert core.none_threshold == 0.6
    assert config.distance_threshold == 2.5
    assert core.distance_threshold == 0.0  # this model outputs no distance: the rule is off, and says so
    assert recognizer.status()[2]["distance_threshold"] == 0.0
    publish_all(publisher, stream(frames=10, start=101.0), wait, recognizer, 40)
    assert wait(lambda: any(a.header.stamp.sec >= 101 for a in actions))
    later = [a for a in actions if a.header.stamp.sec >= 101]  # decided after the set
    assert all(len(a.top_labels) == 2 for a in later)
    assert core.windows.stats.resets == 0


def test_configure_time_parameters_say_when_and_apply_on_reconfigure(graph, parameter_client, lifecycle):
    recognizer = graph[0]
    client = parameter_client("recognizer")
    result = client.set(window_seconds=0.5)["window_seconds"]
    assert result.successful
    assert "next configure" in result.reason
    assert client.get("window_seconds") == {"window_seconds": 0.5}
    assert recognizer.recognizer.window_seconds == pytest.approx(32 / 30)  # the running one is kept
    assert recognizer.pending == {"window_seconds"}
    assert lifecycle("recognizer").set("deactivate", "cleanup", "configure", "activate")
    assert recognizer.recognizer.window_seconds == 0.5
    assert not recognizer.pending


def test_read_only_and_out_of_range_sets_are_refused(ros, wait, tiny_model, parameter_client):
    node = ros.add(
        RecognizerNode,
        parameter_overrides=[Parameter("model", value=str(tiny_model)), Parameter("autostart", value=False)],
    )
    client = parameter_client("recognizer")
    results = client.set(autostart=True, stride_seconds=-1.0, smoothing=0.3, distance_threshold=-1.0)
    assert not results["distance_threshold"].successful
    assert not results["autostart"].successful
    assert "read-only" in results["autostart"].reason
    assert not results["stride_seconds"].successful
    assert results["smoothing"].successful
    assert node.params["smoothing"] == 0.3  # live values are taken even before configure
    assert client.get("stride_seconds") == {"stride_seconds": 0.15}
    descriptor = describe(client, "stride_seconds", wait)  # what `ros2 param describe` shows
    assert descriptor.floating_point_range[0].from_value == 0.0
    assert "classify" in descriptor.description


def test_a_float_just_past_its_range_is_refused_and_later_sets_still_apply(
    ros, wait, tiny_model, parameter_client
):
    node = ros.add(RecognizerNode, parameter_overrides=[Parameter("model", value=str(tiny_model))])
    client = parameter_client("recognizer")
    results = client.set(none_threshold=1.0000005, smoothing=1.0000005)  # within rclpy's 1e-6 tolerance
    for name in ("none_threshold", "smoothing"):
        assert not results[name].successful
        assert f"{name} must be from" in results[name].reason
        assert results[name].reason.endswith("to 1, not 1.0000005")
    assert client.set(top_k=2)["top_k"].successful
    assert node.params["top_k"] == 2
    assert node.callback_errors == 0


def describe(client, name: str, wait):
    """The descriptor of parameter ``name``, through the node's describe_parameters service."""
    future = client.client.describe_parameters([name])
    assert wait(future.done), "no answer from describe_parameters"
    return future.result().descriptors[0]


def test_text_parameters_outside_their_choices_are_refused_at_the_set(ros, tiny_model, parameter_client):
    node = ros.add(
        RecognizerNode,
        parameter_overrides=[Parameter("model", value=str(tiny_model)), Parameter("autostart", value=False)],
    )
    results = parameter_client("recognizer").set(device="banana", body_topic="bad topic!!", sync_slop=0.1)
    assert not results["device"].successful
    assert "cpu, cuda, auto" in results["device"].reason
    assert not results["body_topic"].successful
    assert "no valid topic name" in results["body_topic"].reason
    assert results["sync_slop"].successful
    assert (node.get_parameter("device").value, node.get_parameter("body_topic").value) == ("cpu", "")


def test_a_topic_name_is_checked_as_the_node_in_its_namespace_expands_it(ros, tiny_model, parameter_client):
    ros.add(
        RecognizerNode,
        namespace="/robot1",
        parameter_overrides=[Parameter("model", value=str(tiny_model)), Parameter("autostart", value=False)],
    )
    client = parameter_client("/robot1/recognizer")
    assert client.set(body_topic="{ns}/bodies")["body_topic"].successful, "it reads /robot1/bodies"
    too_long = client.set(body_topic="b" * 240)["body_topic"]  # with /robot1/ over rcl's limit
    assert not too_long.successful
    assert "no valid topic name" in too_long.reason


def test_a_bad_value_given_at_start_up_fails_configure_with_its_reason(ros, wait, tiny_model):
    node = ros.add(
        RecognizerNode,
        parameter_overrides=[Parameter("model", value=str(tiny_model)), Parameter("device", value="")],
    )
    probe = ros.add(Node, "probe")
    statuses: list[DiagnosticArray] = []
    probe.create_subscription(DiagnosticArray, "/diagnostics", statuses.append, 10)
    assert wait(lambda: any("device must be one of" in s.message for a in statuses for s in a.status))
    assert node.recognizer is None


def test_a_failed_activate_leaves_no_subscription_behind(ros, tiny_model, lifecycle):
    class FailingActivate(RecognizerNode):
        def subscribe(self):  # one subscription made, then a failure, as an invalid second topic does
            self.create_subscription(PersonSkeletonArray, "skeletons", lambda msg: None, 10)
            raise ValueError("second topic refused")

    node = ros.add(
        FailingActivate,
        parameter_overrides=[Parameter("model", value=str(tiny_model)), Parameter("autostart", value=False)],
    )
    before = len(list(node.subscriptions))
    client = lifecycle("recognizer")
    assert client.set("configure")
    assert not client.set("activate")
    assert len(list(node.subscriptions)) == before
    assert "activate failed: ValueError: second topic refused" in node.transition_error
    assert client.set("cleanup")  # back in inactive, cleanly
    assert client.set("configure")
    assert node.transition_error == ""


def test_diagnostics_keep_coming_under_sim_time_without_a_clock(ros, wait, tiny_model):
    ros.add(
        RecognizerNode,
        parameter_overrides=[
            Parameter("model", value=str(tiny_model)),
            Parameter("use_sim_time", value=True),
            Parameter("diagnostics_period", value=0.2),
        ],
    )  # nothing publishes /clock: the graph started before `ros2 bag play --clock`
    probe = ros.add(Node, "probe")
    statuses: list[DiagnosticArray] = []
    probe.create_subscription(DiagnosticArray, "/diagnostics", statuses.append, 10)
    assert wait(lambda: len(statuses) >= 3)


def test_core_log_lines_reach_rosout_under_the_node_name(graph, wait):
    recognizer, probe, publisher, _ = graph
    logs: list[Log] = []
    subscription = probe.create_subscription(Log, "/rosout", logs.append, 100)
    assert wait(lambda: subscription.get_publisher_count() > 0)
    publish_all(publisher, stream(frames=5, start=50.0), wait, recognizer, 5)
    publish_all(publisher, stream(frames=2, start=10.0), wait, recognizer, 7)  # core/window.py warns
    assert wait(lambda: any("timestamp went backwards" in log.msg for log in logs))
    line = next(log for log in logs if "timestamp went backwards" in log.msg)
    assert line.name == "recognizer.window"
    assert line.level == Log.WARN


def test_a_publisher_whose_qos_cannot_reach_the_recognizer_is_reported(graph, ros, wait):
    recognizer = graph[0]
    tracker = ros.add(Node, "best_effort_tracker")
    quiet = PublisherEventCallbacks(incompatible_qos=lambda info: None)  # its own side is not tested
    publisher = tracker.create_publisher(
        PersonSkeletonArray, "skeletons", qos_profile_sensor_data, event_callbacks=quiet
    )
    assert wait(lambda: recognizer.incompatible_qos > 0)
    assert wait(lambda: recognizer.status()[0] == WARN)
    assert "a publisher's QoS cannot reach the skeleton subscription" in recognizer.status()[1]
    tracker.destroy_publisher(publisher)  # the warning stayed for good after it left
    assert wait(lambda: recognizer.status()[2]["incompatible_qos"] == 0)
    assert recognizer.status()[2]["incompatible_qos_seen"] == 1
    assert "QoS cannot reach" not in recognizer.status()[1]


def reconfigure(lifecycle, recognizer, publisher, wait) -> None:
    """Cleanup and configure again (configure-time parameters apply), and wait until it listens."""
    assert lifecycle("recognizer").set("deactivate", "cleanup", "configure", "activate")
    assert wait(lambda: recognizer.inputs and publisher.get_subscription_count() > 0)


def ort_threads(recognizer) -> int:
    """The intra-op threads of the ONNX Runtime session the recognizer runs."""
    return recognizer.recognizer.classifier.onnx.session.get_session_options().intra_op_num_threads


def test_threads_reach_onnx_runtime_on_the_next_configure(graph, wait, parameter_client, lifecycle):
    recognizer, _, publisher, actions = graph
    assert ort_threads(recognizer) == 1
    result = parameter_client("recognizer").set(threads=2)["threads"]
    assert result.successful
    assert "next configure" in result.reason
    assert ort_threads(recognizer) == 1  # the running session is kept until then
    reconfigure(lifecycle, recognizer, publisher, wait)
    assert ort_threads(recognizer) == 2
    publish_all(publisher, stream(), wait, recognizer, 48)
    assert wait(lambda: actions), "the new session decides"


HANDS = next(WAVE.frame(t).hands for t in range(len(WAVE)) if WAVE.frame(t).hand_present.all())
HAND_GAP = range(20, 26)  # frames without hands: 6, a gap the default max_gap (8) fills


def hands_gone_for_a_while(start: float):
    """The 'wave' stream with the same two hands seen in every frame but those of HAND_GAP."""
    for t, msg in enumerate(stream(start=start)):
        person, seen = msg.persons[0], t not in HAND_GAP
        person.left_hand_present = person.right_hand_present = seen
        person.left_hand, person.right_hand = (hand.ravel() * seen for hand in HANDS)
        yield msg


def hand_fractions_across_the_gap(actions, start: float) -> list[float]:
    """``hand_fraction`` of the decisions whose window holds the whole of HAND_GAP."""
    first, last = start + HAND_GAP.start / 30, start + HAND_GAP[-1] / 30
    return [
        a.hand_fraction
        for a in actions
        if stamp_to_seconds(a.window_start) < first < last < stamp_to_seconds(a.header.stamp)
    ]


def test_max_gap_decides_which_hand_gaps_are_filled(graph, wait, parameter_client, lifecycle):
    """A 6-frame hand gap is filled under the default max_gap (8), and no longer under max_gap 2."""
    recognizer, _, publisher, actions = graph
    publish_all(publisher, hands_gone_for_a_while(100.0), wait, recognizer, 48)
    assert wait(lambda: len(actions) >= recognizer.actions_published)
    filled = hand_fractions_across_the_gap(actions, 100.0)
    assert filled
    assert all(fraction == 1.0 for fraction in filled)
    assert parameter_client("recognizer").set(max_gap=2)["max_gap"].successful
    reconfigure(lifecycle, recognizer, publisher, wait)
    publish_all(publisher, hands_gone_for_a_while(200.0), wait, recognizer, 48)
    assert wait(lambda: len(actions) >= recognizer.actions_published)
    unfilled = hand_fractions_across_the_gap(actions, 200.0)
    assert unfilled
    assert all(fraction < 1.0 for fraction in unfilled)


def test_a_person_beyond_max_persons_is_refused_and_counted(ros, wait, tiny_model):
    recognizer, _, publisher, actions = start(ros, wait, tiny_model, max_persons=2)
    three = [
        PersonSkeletonArray(header=a.header, persons=[*a.persons, *b.persons, *c.persons])
        for a, b, c in zip(stream(0), stream(1), stream(2), strict=True)
    ]
    publish_all(publisher, three, wait, recognizer, 2 * len(three))
    assert wait(lambda: recognizer.recognizer.stats.persons_refused == len(three)), "every frame of the third"
    assert sorted(recognizer.recognizer.windows.person_ids) == [0, 1]
    assert wait(lambda: {0, 1} <= {a.person_id for a in actions})
    assert 2 not in {a.person_id for a in actions}
    level, message, values = recognizer.status()
    assert (level, values["persons_refused"]) == (WARN, len(three))
    assert f"more persons than max_persons: {len(three)} frames refused" in message


def test_a_person_who_stops_sending_is_forgotten_after_person_timeout(
    ros, wait, tiny_model, parameter_client, lifecycle
):
    """Set from 60 s to 0.5 s: the person goes (however long that takes on a loaded machine, the
    wait ends long before 60 s would have passed)."""
    recognizer, _, publisher, _ = start(ros, wait, tiny_model, person_timeout=60.0)
    assert parameter_client("recognizer").set(person_timeout=0.5)["person_timeout"].successful
    reconfigure(lifecycle, recognizer, publisher, wait)
    publish_all(publisher, stream(person_id=7, frames=10), wait, recognizer, 10)
    windows = recognizer.recognizer.windows
    assert wait(lambda: 7 not in windows and windows.stats.persons_timed_out >= 1, timeout=30)


def test_min_seconds_set_live_delays_a_new_persons_first_decision(graph, wait, parameter_client):
    """Set through the client while running (0.5 s -> 1 s): a person who appears next gets their
    first decision once their frames span 1 s (sensor time), no sooner."""
    recognizer, _, publisher, actions = graph
    result = parameter_client("recognizer").set(min_seconds=1.0)["min_seconds"]
    assert result.successful
    assert not result.reason  # live: no note
    publish_all(publisher, stream(person_id=3, start=100.0), wait, recognizer, 48)
    assert wait(lambda: any(a.person_id == 3 for a in actions))
    first = min(stamp_to_seconds(a.header.stamp) for a in actions if a.person_id == 3)
    assert first - 100.0 == pytest.approx(1.0, abs=0.01)


def odd_messages() -> list[PersonSkeletonArray]:
    """Four seconds of person 0 at 30 Hz from 100 s, under array headers left at 0, with what the
    node refuses mixed in (an older second skeleton of the id in every message, a stamp no clock
    gives, stamp 0 among stamped frames, an ntu25 body) and a person 1 on a clock 5 s ahead."""
    sequence = generate_sequence("wave", np.random.default_rng(0))
    messages = []
    for t in range(120):
        seconds = 100.0 + t / 30

        def person(stamp: Time, person_id: int = 0, frame: Any = None, t: int = t) -> Any:
            frame = sequence.frame(t % len(sequence)) if frame is None else frame
            frame.person_id = person_id
            return frame_to_msg(frame, Header(stamp=stamp, frame_id="head_camera"))

        persons = [person(seconds_to_stamp(seconds)), person(seconds_to_stamp(seconds - 0.001))]
        if t % 10 == 8:
            persons.append(person(seconds_to_stamp(seconds + 5.0), 1))
        odd = {2: Time(sec=100, nanosec=3_900_000_000), 4: Time(sec=-1), 6: Time()}.get(t % 10)
        if odd is not None:
            persons.append(person(odd))
        if t == 20:
            ntu = SkeletonFrame.empty(seconds, layout="ntu25")
            persons.append(person(seconds_to_stamp(seconds), 2, ntu))
        messages.append(PersonSkeletonArray(header=Header(frame_id="head_camera"), persons=persons))
    return messages


def test_the_node_decides_as_the_deterministic_bag_eval_on_the_same_messages(ros, wait, tiny_model, tmp_path):
    """`bharnet bag eval` promises the live node's decisions: both now go through the same
    per-message rules (core.frame_rules) into the same Recognizer, and persons age on arrival (the
    bag's log times). Odd frames had left the offline run with no decision, or ended it."""
    from rclpy.serialization import serialize_message

    from bharnet_ros.core import bag
    from bharnet_ros.core.bag_eval import EvalOptions, evaluate_offline

    messages = odd_messages()
    with bag.BagWriter(tmp_path / "b") as writer:
        writer.add_topic("/skeletons", bag.SKELETON_TYPE)
        for t, msg in enumerate(messages):
            writer.write_raw("/skeletons", round((100.0 + t / 30) * 1e9), serialize_message(msg))
    options = EvalOptions(tmp_path / "b", "/skeletons", bag.SKELETON_TYPE, tiny_model, recognizer=SETTINGS)
    offline = evaluate_offline(options)

    recognizer, _, publisher, live = start(ros, wait, tiny_model)  # over Fast DDS, as a pose node sends
    publish_all(publisher, messages, wait, recognizer, 120 + 12)  # person 0, and person 1 every 10th
    assert wait(lambda: len(live) >= len(offline.predictions))
    assert [(p.stamp, p.label, p.person_id) for p in offline.predictions] == [
        (round(stamp_to_seconds(a.header.stamp), 6), a.label, a.person_id) for a in live
    ]
    assert [p.confidence for p in offline.predictions] == pytest.approx([a.confidence for a in live])
    assert {p.person_id for p in offline.predictions} == {0, 1}
    assert offline.bad_skeletons == recognizer.bad_messages == 120 + 36 + 1


@pytest.fixture(scope="module")
def distance_model(tmp_path_factory):
    """The tiny model of conftest.py with a feature distance, and a threshold every window exceeds."""
    torch = pytest.importorskip("torch", reason="needs torch: pip install -r requirements-training.txt")

    from bharnet_ros.core.preprocess import PreprocessConfig
    from bharnet_ros.model.bharnet import build_model, head_inputs
    from bharnet_ros.model.export import export_onnx
    from bharnet_ros.model.feature_distance import fit_feature_distance

    config = {
        "variant": "bharnet_e_expert_only",
        "num_classes": len(CLASSES),
        "input": {"frames": 16, "body_layout": "mediapipe33", "num_persons": 1},
        "backbone": {"base_channels": 8},
    }
    torch.manual_seed(0)
    model = build_model(config).eval()
    with torch.no_grad(), head_inputs(model, model.branches) as features:
        model.forward_once(torch.randn(8, 3, 16, 33, 1), torch.randn(8, 3, 16, 33, 2))
        model.feature_distance = fit_feature_distance(dict(features), torch.arange(8) % 3)
    path = tmp_path_factory.mktemp("model") / "distance.onnx"
    preprocess = PreprocessConfig(body_layout="mediapipe33", frames=16, num_persons=1)
    calibration = {"temperature": 1.0, "none_threshold": 0.0, "distance_threshold": 1e-6}
    export_onnx(model, path, CLASSES, preprocess, calibration=calibration)
    return path


def test_windows_far_from_the_training_data_say_none_until_the_threshold_is_raised(
    ros, wait, distance_model, parameter_client
):
    recognizer, _, publisher, actions = start(ros, wait, distance_model)
    assert recognizer.recognizer.distance_threshold == 1e-6  # the model's own
    publish_all(publisher, stream(frames=30), wait, recognizer, 30)
    assert wait(lambda: len(actions) >= 3)
    assert {a.label for a in actions} == {"none"}
    assert all(a.top_labels[0] in CLASSES for a in actions)  # the raw scores still go out
    assert recognizer.status()[2]["windows_unfamiliar"] == recognizer.recognizer.windows_classified
    assert parameter_client("recognizer").set(distance_threshold=1000.0)["distance_threshold"].successful
    publish_all(publisher, stream(frames=30, start=101.0), wait, recognizer, 60)

    def later() -> list[Action]:  # decided after the set
        return [a for a in actions if a.header.stamp.sec >= 101]

    assert wait(lambda: len(later()) >= 3)
    assert all(a.label in CLASSES for a in later())


def test_an_actions_stamp_is_its_own_persons_not_another_skeletons_of_the_message():
    """Looked up by float seconds alone, it took a refused skeleton's stamp (nanosec 1e9 and more,
    a time no clock gives), or another person's 100 ns apart at epoch times."""
    from bharnet_ros.nodes.recognizer_node import action_header

    def skeleton(person_id: int, sec: int, nanosec: int) -> types.SimpleNamespace:
        return types.SimpleNamespace(person_id=person_id, header=Header(stamp=Time(sec=sec, nanosec=nanosec)))

    msg = types.SimpleNamespace(
        header=Header(frame_id="camera"),
        persons=[skeleton(1, 99, 1_300_000_000), skeleton(2, 1_764_000_000, 400_000_100),
                 skeleton(0, 100, 300_000_000), skeleton(3, 1_764_000_000, 400_000_000)],
    )  # fmt: skip
    assert action_header(0, 100.3, msg).stamp == Time(sec=100, nanosec=300_000_000)
    assert action_header(3, 1_764_000_000.4, msg).stamp == Time(sec=1_764_000_000, nanosec=400_000_000)
    assert action_header(0, 100.3, msg).frame_id == "camera"
