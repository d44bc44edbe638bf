"""The recognizer node under hostile input (issue #10): nothing kills it or freezes its output.

Each case publishes what a careless or broken robot would send, over real Fast DDS, into the real
node with a real ONNX model, then checks that the node keeps publishing sound actions and that
/diagnostics names what was refused.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.parameter import Parameter
from rosgraph_msgs.msg import Clock
from std_msgs.msg import Header

from bharnet_ros.msg import Action, PersonSkeletonArray
from bharnet_ros.nodes.conversions import frame_to_msg, seconds_to_stamp, stamp_to_seconds
from bharnet_ros.nodes.recognizer_node import RecognizerNode
from bharnet_ros.training.synth import generate_sequence

WAVE = generate_sequence("wave", np.random.default_rng(0))


def message(
    t: int, persons: list[int], start: float = 100.0, stamp: float | None = None
) -> PersonSkeletonArray:
    """Frame ``t`` of a synthetic wave for each person id, stamped at 30 Hz from ``start``."""
    seconds = start + t / 30 if stamp is None else stamp
    header = Header(stamp=seconds_to_stamp(seconds), frame_id="camera")
    people = []
    for pid in persons:
        frame = WAVE.frame(t % len(WAVE))
        frame.timestamp, frame.person_id = seconds, pid
        people.append(frame_to_msg(frame, header))
    return PersonSkeletonArray(header=header, persons=people)


@pytest.fixture
def node(ros, wait, tiny_model):
    recognizer = ros.add(
        RecognizerNode,
        parameter_overrides=[
            Parameter("model", value=str(tiny_model)),
            Parameter("stride_seconds", value=0.1),
            Parameter("min_seconds", value=0.3),
            Parameter("window_seconds", value=0.8),
            Parameter("diagnostics_period", value=0.2),
            Parameter("person_timeout", value=30.0),  # windows outlive a slow CI machine
        ],
    )
    probe = ros.add(Node, "probe")
    actions: list[Action] = []
    statuses: list = []
    probe.create_subscription(Action, "action", actions.append, 500)
    probe.create_subscription(
        DiagnosticArray,
        "/diagnostics",
        lambda m: statuses.extend(s for s in m.status if "recognizer" in s.name),
        50,
    )
    publisher = probe.create_publisher(PersonSkeletonArray, "skeletons", 100)
    assert wait(lambda: recognizer.inputs and publisher.get_subscription_count() > 0)
    return recognizer, publisher, actions, statuses


def publish(publisher, messages, rate: float = 60.0) -> None:
    for msg in messages:
        publisher.publish(msg)
        time.sleep(1 / rate)


def level(status) -> int:
    return status.level[0] if isinstance(status.level, bytes) else int(status.level)


def latest(statuses: list) -> dict[str, str]:
    return {kv.key: kv.value for kv in statuses[-1].values} if statuses else {}


def test_a_hand_layout_as_a_body_is_refused_and_the_node_keeps_going(node, wait):
    recognizer, publisher, actions, statuses = node
    bad = message(0, [9])
    bad.persons[0].body_layout = "hand21"
    bad.persons[0].body = np.zeros(84, np.float32)
    publish(publisher, [bad] * 5)
    publish(publisher, [message(t, [1]) for t in range(40)])
    assert wait(lambda: any(a.person_id == 1 for a in actions))
    assert wait(lambda: int(latest(statuses).get("bad_messages", 0)) == 5)
    assert level(statuses[-1]) == 1  # WARN names the refusals


def test_a_skeleton_in_metres_for_an_image_space_model_is_refused_and_counted(node, wait):
    """A world-space tracker on the skeleton topic: its metres would read as fractions of the image."""
    recognizer, publisher, actions, statuses = node
    metres = message(0, [9])
    metres.persons[0].space = "world"
    publish(publisher, [metres] * 3)
    publish(publisher, [message(t, [1]) for t in range(40)])
    assert wait(lambda: any(a.person_id == 1 for a in actions))
    assert wait(lambda: int(latest(statuses).get("incompatible_space", 0)) == 3)
    assert int(latest(statuses)["bad_messages"]) == 3
    assert not any(a.person_id == 9 for a in actions)


def test_one_message_of_many_skeletons_of_one_person_buys_one_frame(node, wait):
    """1000 skeletons of one id, stamped 0.2 s apart, in one message gave 997 inferences and
    starved every other person for 18 s."""
    recognizer, publisher, actions, statuses = node
    flood = message(0, [7])
    for t in range(1, 100):
        person = message(t, [7], stamp=100.0 + 0.2 * t).persons[0]
        flood.persons.append(person)
    publish(publisher, [flood])
    assert wait(lambda: recognizer.bad_messages == 99)
    assert recognizer.recognizer.windows.stats.frames_pushed == 1
    assert not any(a.person_id == 7 for a in actions)


def test_window_resets_warn_while_they_come_then_clear(node, wait):
    """A second clock on the topic reset the windows 365 times, and /diagnostics stayed OK."""
    recognizer, publisher, actions, statuses = node
    skewed = [m for t in range(20) for m in (message(t, [1]), message(t, [1], start=95.0))]
    publish(publisher, skewed, rate=120.0)
    assert wait(lambda: recognizer.recognizer.windows.stats.resets >= 10)
    assert wait(
        lambda: level(statuses[-1]) == 1 and "window resets since the last report" in statuses[-1].message
    )
    publish(publisher, [message(t, [1], start=200.0) for t in range(40)])
    assert wait(lambda: level(statuses[-1]) == 0)  # a steady stream again: the warning clears


def test_window_resets_warn_again_after_a_reconfigure(node, wait, lifecycle, parameter_client):
    """The new model's window set counts from 0: resets before its first report went unreported."""
    recognizer, publisher, actions, statuses = node
    skewed = [m for t in range(20) for m in (message(t, [1]), message(t, [1], start=95.0))]
    publish(publisher, skewed, rate=120.0)
    assert wait(lambda: recognizer.resets_reported >= 10)
    client = parameter_client("recognizer")
    assert client.set(diagnostics_period=60.0)["diagnostics_period"].successful  # no report for now
    assert lifecycle("recognizer").set("deactivate", "cleanup", "configure", "activate")
    publish(publisher, [m for t in range(4) for m in (message(t, [1]), message(t, [1], start=95.0))])
    assert wait(lambda: recognizer.recognizer.windows.stats.resets >= 3)
    reported = len(statuses)
    assert client.set(diagnostics_period=0.2)["diagnostics_period"].successful
    assert wait(lambda: len(statuses) > reported)
    assert level(statuses[reported]) == 1
    assert "window resets since the last report" in statuses[reported].message


def test_one_huge_value_is_refused_and_confidences_stay_finite(node, wait):
    recognizer, publisher, actions, statuses = node
    messages = [message(t, [1]) for t in range(60)]
    poisoned = messages[20].persons[0]
    body = np.array(poisoned.body, np.float32)
    body[4] = np.finfo(np.float32).max
    poisoned.body = body
    absurd = messages[30].persons[0]
    absurd.body = np.full(len(absurd.body), 1e30, np.float32)
    publish(publisher, messages)
    assert wait(lambda: recognizer.bad_messages == 2)
    absurd_stamp = stamp_to_seconds(messages[30].header.stamp)
    # Decisions go on past both refusals (however many messages a loaded machine drops on the way).
    assert wait(lambda: any(stamp_to_seconds(a.header.stamp) > absurd_stamp for a in actions))
    assert all(np.isfinite(a.confidence) for a in actions)


def test_a_fifth_person_does_not_silence_the_others(node, wait, ros):
    recognizer, publisher, actions, statuses = node
    publish(publisher, [message(t, [0, 1, 2, 3, 4]) for t in range(60)])
    assert wait(lambda: {0, 1, 2, 3} <= {a.person_id for a in actions})
    assert 4 not in {a.person_id for a in actions}
    assert wait(lambda: int(latest(statuses).get("persons_refused", 0)) > 0)
    assert "max_persons" in statuses[-1].message


def test_unstamped_input_is_timed_by_the_node_and_reported(node, wait):
    recognizer, publisher, actions, statuses = node
    publish(publisher, [message(t, [1], stamp=0.0) for t in range(60)])
    assert wait(lambda: len(actions) > 0)
    assert wait(lambda: int(latest(statuses).get("unstamped_frames", 0)) == 60)


def test_stamp_0_among_stamped_messages_is_refused_and_no_window_resets(node, wait):
    recognizer, publisher, actions, statuses = node
    stream = [message(t, [1]) for t in range(60)]
    mixed = [m for t, m in enumerate(stream) for m in ([m, message(t, [1], stamp=0.0)] if t % 3 else [m])]
    publish(publisher, mixed, rate=120.0)
    assert wait(lambda: recognizer.bad_messages == 40)
    assert wait(lambda: len(actions) > 0)
    assert recognizer.recognizer.windows.stats.resets == 0
    assert recognizer.unstamped_frames == 0


def test_persons_on_clocks_5000_s_apart_both_get_actions(node, wait):
    recognizer, publisher, actions, statuses = node
    pairs = [(message(t, [1]), message(t, [2], start=5100.0)) for t in range(60)]
    publish(publisher, [m for pair in pairs for m in pair], rate=120.0)
    assert wait(lambda: {1, 2} <= {a.person_id for a in actions})
    assert recognizer.recognizer.windows.stats.resets == 0


def test_an_exception_in_a_callback_is_reported_and_the_node_recovers(node, wait, monkeypatch):
    recognizer, publisher, actions, statuses = node
    classifier = recognizer.recognizer.classifier
    original = classifier.classify

    def broken(window):  # the edge under test is the node's callback guard, not the model
        raise RuntimeError("model exploded")

    monkeypatch.setattr(classifier, "classify", broken)
    publish(publisher, [message(t, [1]) for t in range(20)])
    assert wait(lambda: recognizer.callback_errors > 0)
    assert wait(lambda: statuses and level(statuses[-1]) == 2 and "model exploded" in statuses[-1].message)
    monkeypatch.setattr(classifier, "classify", original)
    publish(publisher, [message(t, [1]) for t in range(20, 60)])
    assert wait(lambda: len(actions) > 0)  # the executor thread survived


def test_a_clock_message_rclpy_cannot_read_is_reported_and_the_node_keeps_running(ros, wait, tiny_model):
    """A /clock message with a negative time makes rclpy's own time source raise in the executor,
    outside any callback of ours: the node counts it and goes on with the next good clock."""
    recognizer = ros.add(
        RecognizerNode,
        parameter_overrides=[
            Parameter("model", value=str(tiny_model)),
            Parameter("use_sim_time", value=True),
            Parameter("diagnostics_period", value=0.2),
        ],
    )
    probe = ros.add(Node, "probe")
    clock = probe.create_publisher(Clock, "/clock", 10)
    assert wait(lambda: clock.get_subscription_count() > 0)
    clock.publish(Clock(clock=Time(sec=-1)))
    assert wait(lambda: recognizer.callback_errors == 1)
    assert "Seconds value must not be negative" in recognizer.last_callback_error
    clock.publish(Clock(clock=Time(sec=300)))
    assert wait(lambda: recognizer.get_clock().now().nanoseconds == 300 * 10**9)


def test_a_burst_is_counted_not_silently_lost(node, wait):
    """Every one of 300 frames is either received or counted as dropped upstream.

    A paced lead-in of 10 frames first gives the node the stream's frame rate, which its gap count
    needs; then the other 290 go out as fast as Python can, far above any camera rate and more than
    the subscription's queue holds, so the frames the queue drops leave a gap in the stamps.
    """
    recognizer, publisher, actions, statuses = node
    messages = [message(t, [1]) for t in range(300)]
    publish(publisher, messages[:10])
    assert wait(lambda: recognizer.recognizer.windows.stats.frames_pushed == 10)
    for msg in messages[10:]:
        publisher.publish(msg)
    newest = stamp_to_seconds(messages[-1].header.stamp)
    kept = recognizer.recognizer.windows.get(1)
    assert wait(lambda: kept.newest_stamp == newest), "the newest frame is never the one dropped"
    assert wait(lambda: counted(latest(statuses)) == 300), latest(statuses)
    values = {key: int(value) for key, value in latest(statuses).items() if value.isdigit()}
    assert values["frames_not_classified"] == values["frames_received"] - values["windows_classified"]
    assert wait(lambda: actions)


def counted(values: dict[str, str]) -> int:
    """Frames the recognizer accounts for on /diagnostics: received, or dropped before it."""
    return int(values.get("frames_received", 0)) + int(values.get("frames_dropped_upstream", 0))
