"""Two topics paired by approximate stamp time: message_filters where installed, core.sync otherwise.

Both ways go through :func:`subscribe_pair`, which makes the rclpy subscriptions itself (serialized,
so that a node checks a message before decoding it) and returns them; the node keeps them in one
flat list and destroys each on deactivate. message_filters gives only the synchroniser.
"""

from __future__ import annotations

import copy
import functools
import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

from rclpy.node import Node
from rclpy.qos import QoSProfile
from rclpy.serialization import deserialize_message
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
    decode: Callable[[bytes], Any | None] | None = None,
    **options: Any,
) -> list[Subscription]:
    """Call ``callback(first, second)`` for messages of the two topics whose stamps are within ``slop``.

    Each message comes serialized and is decoded by ``decode`` (by default, as ``msg_type``), so that
    a node can refuse one before decoding it (returning None): decoding is where a hostile message
    costs memory. ``on_arrival(stream)`` is called for every decoded message of topic ``stream``
    (0 or 1) as it comes, paired or not, so that a node can say when one arrives and nothing pairs.
    ``options`` go to each ``create_subscription`` (e.g. ``qos_overriding_options``), each with its
    own copy of ``qos``, since qos_overrides edit the profile they are given.
    """
    decode = decode or (lambda raw: deserialize_message(raw, msg_type))
    message_filters = _message_filters()
    if message_filters is None:
        sync = ApproximateSync(slop=slop, queue_size=queue_size)

        def pair(stream: int, msg: Any) -> None:
            paired = sync.add(stream, stamp_to_seconds(msg.header.stamp), msg)
            if paired is not None:
                callback(*paired)

        sinks = [functools.partial(pair, stream) for stream in range(2)]
    else:
        sinks = _message_filters_sinks(message_filters, callback, slop, queue_size)

    def subscribe(stream: int, topic: str) -> Subscription:
        def on_raw(raw: bytes) -> None:
            msg = decode(raw)
            if msg is None:
                return
            on_arrival(stream)
            stamp_on_arrival(node, msg)
            sinks[stream](msg)

        return node.create_subscription(msg_type, topic, on_raw, copy.copy(qos), raw=True, **options)

    return [subscribe(stream, topic) for stream, topic in enumerate(topics)]


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


class _Input:
    """An input of message_filters' synchroniser, fed by our own subscription: message_filters'
    ``Subscriber`` decodes every message, and a message is checked before it is decoded."""

    def __init__(self) -> None:
        self.callbacks: list[tuple[Callable[..., None], tuple]] = []

    def registerCallback(self, callback: Callable[..., None], *args: Any) -> int:  # noqa: N802 (its API)
        self.callbacks.append((callback, args))
        return len(self.callbacks) - 1

    def signal(self, msg: Any) -> None:
        for callback, args in self.callbacks:
            callback(msg, *args)


def _message_filters_sinks(
    message_filters: ModuleType, callback: PairCallback, slop: float, queue_size: int
) -> list[Callable[[Any], None]]:
    """Where each topic's decoded messages go to be paired by message_filters' synchroniser, which
    stays alive through the inputs' callbacks that refer to it."""
    inputs = [_Input(), _Input()]
    # it pairs stamps closer than the slop, strictly: at 0, nothing would ever pair
    synchroniser = message_filters.ApproximateTimeSynchronizer(inputs, queue_size, max(slop, 1e-9))
    synchroniser.registerCallback(callback)
    return [source.signal for source in inputs]
