"""ManagedNode's own lifecycle rules, through the real change_state service."""

from __future__ import annotations

import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy._rclpy_pybind11 import RCLError
from rclpy.lifecycle import LifecycleNode
from rclpy.node import Node
from rclpy.parameter import Parameter
from std_msgs.msg import Header

from bharnet_ros.msg import PersonSkeletonArray
from bharnet_ros.nodes.conversions import frame_to_msg, seconds_to_stamp
from bharnet_ros.nodes.recognizer_node import RecognizerNode
from bharnet_ros.training.synth import demo_sequence


def jazzy_change_state(node: LifecycleNode, transition_id: int):
    """Jazzy's rclpy starts every transition it is asked for and raises on one the state lacks."""
    offered = {description[0] for description in node._state_machine.available_transitions}
    if transition_id not in offered:
        raise RCLError("Transition is not registered")
    raise AssertionError("only refused transitions reach this stand-in")


def test_a_transition_the_state_lacks_is_refused_and_the_node_lives_on(
    ros, wait, lifecycle, monkeypatch, tiny_model
):
    """A lifecycle manager sends configure by id to a node autostart already activated."""
    node = ros.add(RecognizerNode, parameter_overrides=[Parameter("model", value=str(tiny_model))])
    assert wait(lambda: node._state_machine.current_state[1] == "active")
    monkeypatch.setattr(
        LifecycleNode, "_LifecycleNodeMixin__change_state", jazzy_change_state
    )  # the rclpy edge
    client = lifecycle("recognizer")
    assert not client.set("configure")
    assert not client.set("cleanup")
    assert node._state_machine.current_state[1] == "active"
    assert node.transitions_refused == 2  # counted for /diagnostics
    monkeypatch.undo()
    assert client.set("deactivate", "cleanup"), "the node still answers and follows valid transitions"


def test_diagnostics_name_the_lifecycle_state_and_a_shut_down_node_falls_silent(
    ros, wait, lifecycle, tiny_model, parameter_client
):
    overrides = [Parameter("model", value=str(tiny_model)), Parameter("diagnostics_period", value=0.1)]
    node = ros.add(RecognizerNode, parameter_overrides=overrides)
    statuses: list[DiagnosticStatus] = []
    probe = ros.add(Node, "diagnostics_probe")
    probe.create_subscription(DiagnosticArray, "/diagnostics", lambda m: statuses.extend(m.status), 100)

    def latest(state: str) -> DiagnosticStatus | None:
        found = [s for s in statuses if {v.key: v.value for v in s.values}.get("lifecycle_state") == state]
        return found[-1] if found else None

    assert wait(lambda: latest("active") is not None)
    assert latest("active").level == DiagnosticStatus.OK
    client = lifecycle("recognizer")
    assert client.set("deactivate")
    assert wait(lambda: latest("inactive") is not None)
    assert latest("inactive").level == DiagnosticStatus.WARN
    assert "inactive: configured but not processing; activate it" in latest("inactive").message
    assert client.set("cleanup")
    assert wait(lambda: latest("unconfigured") is not None)
    assert latest("unconfigured").level == DiagnosticStatus.ERROR
    assert client.set("shutdown")
    assert wait(lambda: latest("finalized") is not None)
    assert "shut down (finalized)" in latest("finalized").message
    assert wait(lambda: node.diagnostics_timer.is_canceled()), "the finalized status is the last"
    # a later set of its period restarted the cancelled timer: "finalized" again, every period
    assert parameter_client("recognizer").set(diagnostics_period=0.2)["diagnostics_period"].successful
    assert node.diagnostics_timer.is_canceled()


def test_a_node_shut_down_after_a_failed_configure_reports_no_failure(ros, wait, lifecycle, tiny_model):
    """The configure failure stayed in its diagnostics for good, an ERROR after a clean shutdown."""
    overrides = [Parameter("model", value=str(tiny_model)), Parameter("device", value="")]
    node = ros.add(RecognizerNode, parameter_overrides=overrides)
    assert wait(lambda: "configure failed" in node.transition_error)
    assert lifecycle("recognizer").set("shutdown")
    assert node.transition_error == ""


def skeletons(start: float, frames: int) -> list[PersonSkeletonArray]:
    """One person's skeletons at 30 Hz from ``start`` (seconds)."""
    sequence, messages = demo_sequence(frames), []
    for t in range(frames):
        frame = sequence.frame(t)
        frame.timestamp = start + t / 30
        header = Header(stamp=seconds_to_stamp(frame.timestamp))
        messages.append(PersonSkeletonArray(header=header, persons=[frame_to_msg(frame, header)]))
    return messages


@pytest.mark.parametrize(
    "transitions", [("deactivate", "cleanup", "configure", "activate"), ("deactivate", "activate")]
)
def test_a_stream_seen_again_after_a_pause_is_no_gap_of_dropped_frames(
    ros, wait, lifecycle, tiny_model, transitions
):
    overrides = [Parameter("model", value=str(tiny_model)), Parameter("person_timeout", value=60.0)]
    node = ros.add(RecognizerNode, parameter_overrides=overrides)
    publisher = ros.add(Node, "camera_skeletons").create_publisher(PersonSkeletonArray, "skeletons", 100)

    def send(start: float, expected: int) -> None:
        assert wait(lambda: node.inputs and publisher.get_subscription_count() > 0)
        for msg in skeletons(start, 10):
            publisher.publish(msg)
        assert wait(lambda: node.status()[2]["frames_received"] >= expected)

    send(100.0, 10)
    assert lifecycle("recognizer").set(*transitions)
    send(104.0, 10 if "cleanup" in transitions else 20)  # the same person 3.7 s on
    assert node.status()[2]["frames_dropped_upstream"] == 0


def test_a_transition_by_an_unknown_label_is_refused_and_counted(ros, wait, tiny_model):
    """``ros2 lifecycle set /recognizer bogus``: a label, not an id; refused like an id the state lacks."""
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState

    node = ros.add(RecognizerNode, parameter_overrides=[Parameter("model", value=str(tiny_model))])
    assert wait(lambda: node._state_machine.current_state[1] == "active")
    probe = ros.add(Node, "label_probe")
    client = probe.create_client(ChangeState, "/recognizer/change_state")
    assert client.wait_for_service(timeout_sec=20)
    for label in ("bogus", "configure"):  # unknown, and known but not offered when active
        future = client.call_async(ChangeState.Request(transition=Transition(label=label)))
        assert wait(future.done)
        assert not future.result().success
    assert node.transitions_refused == 2
    assert node._state_machine.current_state[1] == "active"


def test_refused_parameter_sets_are_counted_and_reported(ros, wait, tiny_model, parameter_client):
    """Refusals by our checks and by rclpy's (read-only, type, range) all reach /diagnostics."""
    ros.add(RecognizerNode, parameter_overrides=[Parameter("model", value=str(tiny_model))])
    probe = ros.add(Node, "diagnostics_probe")
    statuses: list[DiagnosticStatus] = []
    probe.create_subscription(DiagnosticArray, "/diagnostics", lambda a: statuses.extend(a.status), 10)
    results = parameter_client("recognizer").set(
        autostart=False, stride_seconds=-1.0, top_k="three", device="CUDA", smoothing=0.3
    )
    assert [r.successful for r in results.values()] == [False, False, False, False, True]

    def reported() -> dict[str, str]:
        values = {v.key: v.value for v in statuses[-1].values} if statuses else {}
        return values if values.get("parameter_sets_refused") == "4" else {}

    assert wait(reported)
    assert reported()["last_parameter_refusal"].startswith("device: ")


def statuses_of(node) -> list[DiagnosticStatus]:
    """What the node's diagnostics timer publishes, as it publishes it."""
    published: list[DiagnosticStatus] = []
    publish = node.diagnostics.publish
    node.diagnostics.publish = lambda *args: published.append(publish(*args)) or published[-1]
    return published


def test_diagnostics_say_inactive_whatever_else_they_say_and_stay_one_line(ros, tmp_path, tiny_model):
    """An old WARN (one bad message) hid for good that the node was inactive; a callback error
    replaced the node's own message for a minute; line breaks of a file name went into it."""
    overrides = [Parameter("model", value=str(tiny_model)), Parameter("autostart", value=False)]
    node = ros.add(RecognizerNode, namespace="/robot7", parameter_overrides=overrides)
    published = statuses_of(node)
    node.trigger_configure()
    node.trigger_activate()
    bad = skeletons(100.0, 1)[0]
    bad.persons[0].body[0] = float("nan")
    node._on_skeletons(bad)
    node.trigger_deactivate()
    node._on_timer()
    assert published[-1].level == DiagnosticStatus.WARN
    assert "inactive: configured but not processing" in published[-1].message
    assert "bad input" in published[-1].message
    node.note_callback_error(RuntimeError("boom\nsecond line"))
    node._on_timer()
    assert published[-1].level == DiagnosticStatus.ERROR
    assert published[-1].message.startswith("inactive: configured but not processing")
    assert "boom\\nsecond line" in published[-1].message
    assert "\n" not in published[-1].message
    assert published[-1].hardware_id == "bharnet_ros/robot7"  # two robots apart on an aggregator
