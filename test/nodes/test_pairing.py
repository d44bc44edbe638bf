"""Two topics paired by stamp over real Fast DDS: ``subscribe_pair`` on a plain node, fed by a probe.

message_filters is not in the PyPI wheels, so ``subscribe_pair`` falls back to core.sync; every test
here makes that explicit by hiding message_filters, whatever is installed.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.qos_overriding_options import QoSOverridingOptions
from rclpy.subscription import Subscription
from std_msgs.msg import Header

from bharnet_ros.msg import PersonSkeletonArray
from bharnet_ros.nodes import pairing
from bharnet_ros.nodes.conversions import seconds_to_stamp, stamp_to_seconds
from bharnet_ros.nodes.pairing import subscribe_pair

TOPICS = ("/pair_hands", "/pair_bodies")
QOS = QoSProfile(depth=50)


@pytest.fixture(autouse=True)
def no_message_filters(monkeypatch):
    monkeypatch.setitem(sys.modules, "message_filters", None)  # None makes the import fail


class Paired:
    """What a node's pair callback and ``on_arrival`` receive, called on the node's executor thread."""

    def __init__(self) -> None:
        self.pairs: list[tuple[PersonSkeletonArray, PersonSkeletonArray]] = []
        self.arrived = [0, 0]

    def callback(self, first: PersonSkeletonArray, second: PersonSkeletonArray) -> None:
        self.pairs.append((first, second))

    def on_arrival(self, stream: int) -> None:
        self.arrived[stream] += 1

    def stamps(self) -> list[tuple[float, float]]:
        return [(stamp_to_seconds(a.header.stamp), stamp_to_seconds(b.header.stamp)) for a, b in self.pairs]


def message(stamp: float | None, frame_id: str) -> PersonSkeletonArray:
    """``stamp`` None: unstamped (stamp 0), as from a driver that never stamps."""
    header = Header(frame_id=frame_id)
    if stamp is not None:
        header.stamp = seconds_to_stamp(stamp)
    return PersonSkeletonArray(header=header)


def start(ros, wait, slop: float, node_name: str = "pairing", **options):
    """A node pairing TOPICS with ``slop``, and a probe's publishers on them, matched over DDS."""
    node = ros.add(Node, node_name, **options.pop("node_options", {}))
    paired = Paired()
    subscriptions = subscribe_pair(
        node, PersonSkeletonArray, TOPICS, paired.callback, slop, QOS, on_arrival=paired.on_arrival, **options
    )
    probe = ros.add(Node, f"{node_name}_probe")
    publishers = [probe.create_publisher(PersonSkeletonArray, topic, 50) for topic in TOPICS]
    assert wait(lambda: all(p.get_subscription_count() == 1 for p in publishers))
    return node, paired, subscriptions, publishers


def publish(publishers, start: float, frames: int, offset: float) -> list[tuple[float, float]]:
    """``frames`` messages on each topic, 0.1 s apart, the second topic's ``offset`` s after the first's."""
    sent = []
    for k in range(frames):
        first, second = start + k * 0.1, start + k * 0.1 + offset
        publishers[0].publish(message(first, "hands"))
        publishers[1].publish(message(second, "bodies"))
        sent.append((first, second))
    return sent


def close(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> bool:
    return len(a) == len(b) and np.allclose(a, b, rtol=0, atol=1e-6)


def test_without_message_filters_the_pairs_come_from_plain_subscriptions_of_the_node(ros, wait):
    assert pairing._message_filters() is None
    node, paired, subscriptions, publishers = start(ros, wait, slop=0.03)
    assert len(subscriptions) == 2
    assert all(isinstance(s, Subscription) for s in subscriptions)
    assert [s.topic_name for s in subscriptions] == list(TOPICS)
    assert all(s in node.subscriptions for s in subscriptions)  # the node's own, to destroy
    sent = publish(publishers, start=100.0, frames=3, offset=0.01)
    assert wait(lambda: len(paired.pairs) == 3)
    assert close(paired.stamps(), sent)


def test_messages_within_the_slop_pair_by_stamp_and_reach_the_callback(ros, wait):
    _, paired, _, publishers = start(ros, wait, slop=0.03)
    sent = publish(publishers, start=100.0, frames=10, offset=0.01)
    assert wait(lambda: len(paired.pairs) == 10)
    assert close(paired.stamps(), sent)  # each with its own partner, in time order
    assert all((a.header.frame_id, b.header.frame_id) == ("hands", "bodies") for a, b in paired.pairs)
    assert paired.arrived == [10, 10]


def test_messages_beyond_the_slop_arrive_but_never_pair(ros, wait):
    _, paired, _, publishers = start(ros, wait, slop=0.03)
    publish(publishers, start=100.0, frames=10, offset=0.05)  # every stamp at least 0.05 s from the other's
    assert wait(lambda: paired.arrived == [10, 10])
    sent = publish(publishers, start=200.0, frames=5, offset=0.01)  # then a stream that does pair
    assert wait(lambda: len(paired.pairs) == 5)
    assert close(paired.stamps(), sent)  # the first ten of each topic paired with nothing
    assert paired.arrived == [15, 15]


def test_unstamped_messages_pair_by_when_they_arrive(ros, wait):
    """Stamp 0 on both topics: timed on arrival by the node's clock, or only the first would pair."""
    _, paired, _, publishers = start(ros, wait, slop=30.0)
    for k in range(5):  # each pair awaited before the next is sent
        publishers[0].publish(message(None, "hands"))
        publishers[1].publish(message(None, "bodies"))
        assert wait(lambda k=k: len(paired.pairs) == k + 1)
    stamps = paired.stamps()
    assert all(a > 0 and b > 0 for a, b in stamps)
    firsts = [a for a, _ in stamps]
    assert firsts == sorted(firsts)
    assert len(set(firsts)) == 5


def test_the_subscriptions_made_are_all_there_is_to_destroy(ros, wait):
    node, paired, subscriptions, publishers = start(ros, wait, slop=0.03)
    publish(publishers, start=100.0, frames=2, offset=0.01)
    assert wait(lambda: len(paired.pairs) == 2)
    for subscription in subscriptions:  # what a node's deactivate does with them
        assert node.destroy_subscription(subscription)
    assert wait(lambda: all(p.get_subscription_count() == 0 for p in publishers))
    assert not any(s in node.subscriptions for s in subscriptions)


def test_each_subscription_gets_its_own_copy_of_the_qos_to_override(ros, wait):
    """qos_overrides edit the profile they are given: one topic's override stays off the other and
    off the caller's profile."""
    override = Parameter(f"qos_overrides.{TOPICS[0]}.subscription.reliability", value="best_effort")
    node, _, _, _ = start(
        ros,
        wait,
        slop=0.03,
        node_options={"parameter_overrides": [override]},
        qos_overriding_options=QoSOverridingOptions.with_default_policies(),
    )
    reliability = {
        topic: [info.qos_profile.reliability for info in node.get_subscriptions_info_by_topic(topic)]
        for topic in TOPICS
    }
    assert reliability == {
        TOPICS[0]: [ReliabilityPolicy.BEST_EFFORT],
        TOPICS[1]: [ReliabilityPolicy.RELIABLE],
    }
    assert QOS.reliability == ReliabilityPolicy.RELIABLE


def test_an_array_stamp_no_clock_gives_pairs_by_arrival_instead_of_raising(ros):
    """message_filters' synchroniser makes an rclpy Time of it, which raises on negative seconds."""
    from builtin_interfaces.msg import Time
    from rclpy.time import Time as RclpyTime

    node = ros.add(Node, "stamper")
    for bad in (Time(sec=-5), Time(sec=1, nanosec=1_500_000_000)):
        msg = PersonSkeletonArray(header=Header(stamp=bad))
        pairing.stamp_on_arrival(node, msg)
        RclpyTime.from_msg(msg.header.stamp)  # what message_filters does with it
        assert msg.header.stamp.sec > 1_000_000  # the node's clock
