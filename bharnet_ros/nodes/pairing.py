"""Two topics paired by approximate stamp time: message_filters where installed, core.sync otherwise.

Both ways go through :func:`subscribe_pair`, which returns the plain rclpy subscriptions it made.
The node keeps them in one flat list and destroys each on deactivate, whichever way made them:
message_filters' ``Subscriber`` objects are only wrappers around such a subscription (its ``sub``),
so dropping the wrapper alone would leave the subscription live.
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

from rclpy.node import Node
from rclpy.qos import QoSProfile
from rclpy.subscription import Subscription

from bharnet_ros.core.frame_rules import stamp_problem
from bharnet_ros.core.sync import ApproximateSync
from bharnet_ros.nodes.conversions import stamp_to_seconds

PairCallback = Callable[[Any, Any], None]  # (message of the first topic, message of the second)


def subscribe_pair(
    node: Node,
    msg_type: type,
    topics: tuple[str, str],
    callback: PairCallback,
    slop: float,
    qos: QoSProfile,
    queue_size: int = 30,
    on_arrival: Callable[[int], None] = lambda stream: None,
    **options: Any,
) -> list[Subscription]:
    """Call ``callback(first, second)`` for messages of the two topics whose stamps are within ``slop``.

    ``on_arrival(stream)`` is called for every message of topic ``stream`` (0 or 1) as it comes,
    paired or not, so that a node can say when one arrives and nothing pairs. ``options`` go to each
    ``create_subscription`` (e.g. ``qos_overriding_options``), each with its own copy of ``qos``,
    since qos_overrides edit the profile they are given.
    """
    args = (node, msg_type, topics, callback, slop, qos, queue_size, on_arrival)
    message_filters = _message_filters()
    if message_filters is None:
        return _pair_with_core_sync(*args, **options)
    return _pair_with_message_filters(message_filters, *args, **options)


def stamp_on_arrival(node: Any, msg: Any) -> None:
    """Give an unstamped message (stamp 0: a driver that never stamps) its arrival time on ``node``'s
    clock, in place, so that it pairs by when it came: at 0, every message after the first would
    be older than the last pair and dropped as late. The persons keep their own stamps (0), which
    the recognizer times by its clock as it times all unstamped frames. An array stamp no clock
    gives (negative, nanosec of 1e9 and more) is treated so too: message_filters' synchroniser would
    raise on it in the subscription's callback (its persons are judged by their own stamps)."""
    stamp = msg.header.stamp
    if (stamp.sec == 0 and stamp.nanosec == 0) or stamp_problem(stamp):  # rclpy's Time raises on those
        msg.header.stamp = node.get_clock().now().to_msg()


def _message_filters() -> ModuleType | None:
    try:
        return importlib.import_module("message_filters")
    except ImportError:  # the PyPI wheels do not have it; a ROS install does
        return None


def _pair_with_core_sync(
    node, msg_type, topics, callback, slop, qos, queue_size, on_arrival, **options: Any
) -> list[Subscription]:
    sync = ApproximateSync(slop=slop, queue_size=queue_size)

    def feed(stream: int) -> Callable[[Any], None]:
        def on_message(msg: Any) -> None:
            on_arrival(stream)
            stamp_on_arrival(node, msg)
            pair = sync.add(stream, stamp_to_seconds(msg.header.stamp), msg)
            if pair is not None:
                callback(*pair)

        return on_message

    return [
        node.create_subscription(msg_type, topic, feed(i), copy.copy(qos), **options)
        for i, topic in enumerate(topics)
    ]


def _pair_with_message_filters(
    message_filters: ModuleType,
    node,
    msg_type,
    topics,
    callback,
    slop,
    qos,
    queue_size,
    on_arrival,
    **options: Any,
) -> list[Subscription]:
    """The synchroniser stays alive through the subscriptions' callbacks, which refer to it."""
    inputs = [
        message_filters.Subscriber(node, msg_type, topic, qos_profile=copy.copy(qos), **options)
        for topic in topics
    ]
    for stream, source in enumerate(inputs):  # registered before the synchroniser's: called first

        def arrived(msg: Any, stream: int = stream) -> None:
            on_arrival(stream)
            stamp_on_arrival(node, msg)

        source.registerCallback(arrived)
    # it pairs stamps closer than the slop, strictly: at 0, nothing would ever pair
    synchroniser = message_filters.ApproximateTimeSynchronizer(inputs, queue_size, max(slop, 1e-9))
    synchroniser.registerCallback(callback)
    return [wrapper.sub for wrapper in inputs]
