"""Takes from the running graph for ``bharnet teach record``: the pose node's skeletons, live.

:class:`LiveSkeletons` subscribes to ``bharnet/skeletons`` (``PersonSkeletonArray``, as the pose
node publishes it) and keeps the frames that arrive while a take records. Frames carry the pose
stage's own stamps (the camera image's), which the takes are trimmed on. Skeletons are read by the
rules the recognizer reads them by (``core.frame_rules``). It is a
``training.teach_record.TakeSource``; :func:`live_skeletons` gives one on a node of its own, with
an executor thread, for the command line. Tests pass their own node.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy

from bharnet_ros.core.frame_rules import FrameRules
from bharnet_ros.core.skeleton import SkeletonFrame
from bharnet_ros.msg import PersonSkeletonArray
from bharnet_ros.nodes.environment import private_node
from bharnet_ros.nodes.graph import SKELETON_TOPIC
from bharnet_ros.nodes.lifecycle import message_type_name, split_publishers, wrong_type_problem
from bharnet_ros.training.teach_record import RecordingEndedError

NO_PUBLISHER = (
    "nobody publishes {topic}: start the graph first (bharnet run, or ros2 launch bharnet_ros ...), "
    "or give it longer to be found with --wait"
)
DISCOVERY_SECONDS = 2.0  # a publisher already running is found within this (DDS discovery)
# Skeletons one take keeps: 11 minutes of one person at 30 fps. A publisher far faster than any
# camera (or many people per message) would otherwise fill the memory while the take records.
MOST_TAKE_FRAMES = 20_000


class LiveSkeletons:
    """Frames of a skeleton topic, collected while :meth:`record` runs (a take source)."""

    def __init__(
        self, node: Node, topic: str = SKELETON_TOPIC, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.node = node
        self.sleep = sleep
        self._lock = threading.Lock()
        self._frames: list[SkeletonFrame] | None = None  # None while no take records
        self.bad_messages = 0  # skeletons refused during the current take
        self.messages = 0  # skeleton arrays received during the current take
        self.overflow = 0  # skeletons past MOST_TAKE_FRAMES in the current take, not kept
        self._last_problem = ""
        self.rules = FrameRules(self._refuse)
        self.subscription = node.create_subscription(  # best effort: takes reliable publishers too
            PersonSkeletonArray,
            topic,
            self._on_message,
            QoSProfile(depth=30, reliability=ReliabilityPolicy.BEST_EFFORT),
        )
        self.description = f"live {self.subscription.topic_name}"

    def record(self, seconds: float) -> list[SkeletonFrame]:
        """The frames that arrive during the next ``seconds`` (wall time); skeletons refused (they
        could not be read, or broke a frame rule) are logged, so that a take flagged "no person" is
        not blamed on the person. The pose node publishes an array for every image, an empty one
        when it sees nobody, so a take without any message means the graph stopped:
        RecordingEndedError says so (the good takes so far are kept)."""
        with self._lock:
            self._frames, self.bad_messages, self.messages, self.overflow = [], 0, 0, 0
        self.sleep(seconds)
        with self._lock:
            frames, self._frames = self._frames, None
        if not self.messages:
            raise RecordingEndedError(
                f"no skeleton message arrived on {self.subscription.topic_name} for {seconds:g} s: is the "
                "graph (camera and pose node) still running?"
            )
        if self.bad_messages:
            self.node.get_logger().warning(
                f"{self.bad_messages} skeletons of this take were refused ({self._last_problem}); "
                "check the publisher of the skeleton topic"
            )
        if self.overflow:
            self.node.get_logger().warning(
                f"{self.overflow} skeletons past the first {MOST_TAKE_FRAMES} of this take were not kept "
                "(a publisher far faster than a camera?); check the publisher of the skeleton topic"
            )
        return frames

    def publishers(self) -> tuple[int, list[str]]:
        """How many publishers on the topic send skeletons, and the types the others send."""
        matching, others = split_publishers(self.node, self.subscription.topic_name, PersonSkeletonArray)
        return len(matching), others

    def wait_for_publisher(self, timeout: float) -> None:
        """Return once the topic has a publisher of skeletons; ValueError naming the fix after
        ``timeout`` s, or :data:`DISCOVERY_SECONDS` where that is longer: a graph already running
        is not found the instant the node starts (a topic of another type, a camera topic say,
        would deliver nothing)."""
        deadline = time.monotonic() + max(timeout, DISCOVERY_SECONDS)
        while not (found := self.publishers())[0]:
            if time.monotonic() > deadline:
                topic = self.subscription.topic_name
                wanted = message_type_name(PersonSkeletonArray)
                problem = wrong_type_problem(topic, wanted, found[1], "; give a skeleton topic with --topic")
                raise ValueError(problem or NO_PUBLISHER.format(topic=topic))
            time.sleep(0.1)

    def _on_message(self, msg: PersonSkeletonArray) -> None:
        with self._lock:
            if self._frames is None:
                return
        frames = self.rules.frames(msg.persons, time.monotonic(), self._unstamped)  # one per person
        with self._lock:
            if self._frames is not None:
                room = max(MOST_TAKE_FRAMES - len(self._frames), 0)
                self._frames.extend(frames[:room])
                self.overflow += max(len(frames) - room, 0)
                self.messages += 1

    def _unstamped(self) -> float:
        """The time of a skeleton stamped 0 (a camera driver that never stamps): its arrival on
        this node's clock, as the recognizer times it, or the take would be one frame."""
        self.node.get_logger().warning(
            "skeletons arrive with stamp 0; timing them on arrival (fix the camera driver)",
            throttle_duration_sec=10.0,
        )
        return self.node.get_clock().now().nanoseconds * 1e-9

    def _refuse(self, why: str) -> None:
        with self._lock:
            if self._frames is not None:
                self.bad_messages += 1
                self._last_problem = why


@contextmanager
def live_skeletons(topic: str = SKELETON_TOPIC, wait: float = 10.0) -> Iterator[LiveSkeletons]:
    """A :class:`LiveSkeletons` on its own node and executor thread, once the topic has a publisher."""
    with private_node("bharnet_teach_record") as (node, executor):
        thread = threading.Thread(target=executor.spin, daemon=True)
        thread.start()
        try:
            source = LiveSkeletons(node, topic)
            source.wait_for_publisher(wait)
            yield source
        finally:
            executor.shutdown(timeout_sec=5)
            thread.join(timeout=5)


SWAP_ANSWER_SECONDS = 120.0  # the recognizer checks a model in a child process before it answers


def set_model(model: str, node_name: str = "/recognizer", wait: float = 10.0) -> tuple[bool, str]:
    """Set ``model`` on the running recognizer as ``ros2 param set`` does (the hot swap, for a venv
    without the ROS 2 command line): whether it took the model, and its reason where it did not.
    RuntimeError when no node of that name answers within ``wait`` seconds."""
    from rclpy.parameter import Parameter
    from rclpy.parameter_client import AsyncParameterClient

    with private_node("bharnet_teach_swap") as (node, executor):
        client = AsyncParameterClient(node, node_name)
        if not client.wait_for_services(timeout_sec=wait):
            raise RuntimeError(
                f"no node {node_name} answered within {wait:g} s: start the graph first (bharnet run, or "
                "ros2 launch bharnet_ros ...), or name the recognizer with --node"
            )
        future = client.set_parameters([Parameter("model", value=model)])
        executor.spin_until_future_complete(future, timeout_sec=SWAP_ANSWER_SECONDS)
        if not future.done():
            raise RuntimeError(f"{node_name} did not answer within {SWAP_ANSWER_SECONDS:g} s")
        result = future.result().results[0]
        return result.successful, result.reason


def full_node_name(text: str) -> str:
    """``text`` as a full node name (``recognizer`` is ``/recognizer``); ValueError, with rclpy's
    reason, for a name no node can have (rclpy raised on it deep in the parameter client)."""
    from rclpy.validate_namespace import validate_namespace
    from rclpy.validate_node_name import validate_node_name

    namespace, _, base = text.strip().rstrip("/").rpartition("/")
    try:
        validate_namespace(namespace or "/")
        validate_node_name(base)
    except Exception as err:  # rclpy's InvalidNodeNameException, InvalidNamespaceException
        raise ValueError(str(err).splitlines()[0].rstrip(": ")) from None
    return f"{namespace.rstrip('/')}/{base}"
