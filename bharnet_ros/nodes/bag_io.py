"""Bags and the live ROS graph: recording topics, and replaying a bag into the running graph.

Both move serialized CDR bytes only: the recorder subscribes with ``raw=True`` and stores what it
receives; the replay publishes the stored bytes (rclpy's ``Publisher.publish`` accepts ``bytes``).
rclpy deserializes nothing, so any type that rclpy can import is recorded and replayed unchanged;
the replay only checks with rosbags that each message is one of its type, and skips one that is
not. Bag files themselves are read and written by ``bharnet_ros.core.bag`` (rosbags).
"""

from __future__ import annotations

import importlib
import itertools
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient
from rclpy.publisher import Publisher
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from bharnet_ros.core.bag import (
    COMPRESSED_TYPE,
    SKELETON_TYPE,
    BagError,
    BagWriter,
    MessageError,
    cdr_header_stamp,
    describe_topics,
    message_class,
    read_messages,
)
from bharnet_ros.core.bag_eval import frame_stamp
from bharnet_ros.core.frame_rules import stamp_problem
from bharnet_ros.core.machine_hold import hold
from bharnet_ros.nodes.environment import private_node
from bharnet_ros.nodes.graph import ACTION_TOPIC, SKELETON_TOPIC, GraphOptions
from bharnet_ros.nodes.runner import running_graph

RECORD_DEPTH = 100
FLUSH_SECONDS = 1.0  # a killed recorder loses at most this much (the rest is on disk, see reindex_bag)
# A replay waits at most this long (wall time) between two messages: a recording that paused for
# an hour, or a log time that jumps a year, replays as a pause of this length (the stamps stay as
# recorded). It is well above the recognizer's person_timeout (1 s), so persons still time out.
MAX_REPLAY_GAP_SECONDS = 5.0
DRAIN_SECONDS = 0.2  # at the end, messages already received are taken from the queue and stored
PRIVATE_DOMAIN_IDS = range(150, 230)  # ROS domains of replays (Fast DDS maps ids up to 232 to ports)
DOMAIN_HOLD_NAME = "bharnet-replay-domain-"  # + the id: a replay's hold on its domain (core.machine_hold)


def message_type(msgtype: str) -> Any:
    """The rclpy message class of ``pkg/msg/Name``; BagError when that package is not installed."""
    package, kind, name = msgtype.split("/")
    try:
        return getattr(importlib.import_module(f"{package}.{kind}"), name)
    except (ImportError, AttributeError):
        raise BagError(
            f"message type {msgtype} cannot be imported in Python; is {package} installed?"
        ) from None


def matching_qos(node: Node, topic: str) -> QoSProfile:
    """A subscription QoS every current publisher of ``topic`` can serve.

    Best effort if any publisher is best effort (a reliable reader would get nothing from it);
    transient local if all publishers are, so latched topics such as /bharnet/labels are recorded.
    """
    offered = [info.qos_profile for info in node.get_publishers_info_by_topic(topic)]
    best_effort = any(q.reliability == ReliabilityPolicy.BEST_EFFORT for q in offered)
    latched = bool(offered) and all(q.durability == DurabilityPolicy.TRANSIENT_LOCAL for q in offered)
    return QoSProfile(
        depth=RECORD_DEPTH,
        reliability=ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
    )


def offered_qos(node: Node, topic: str) -> list[Any]:
    """The QoS profiles the publishers of ``topic`` offer, as rosbag2 stores them in metadata.yaml:
    ``ros2 bag play`` replays a topic with them (a latched /bharnet/labels stays latched)."""
    from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

    def span(duration: Any) -> QosTime:
        return QosTime(*divmod(int(duration.nanoseconds), 1_000_000_000))

    return [
        Qos(
            QosHistory(int(q.history)),
            int(q.depth),
            QosReliability(int(q.reliability)),
            QosDurability(int(q.durability)),
            span(q.deadline),
            span(q.lifespan),
            QosLiveliness(int(q.liveliness)),
            span(q.liveliness_lease_duration),
            bool(q.avoid_ros_namespace_conventions),
        )  # fmt: skip
        for q in (info.qos_profile for info in node.get_publishers_info_by_topic(topic))
    ]


def discover_types(node: Node, topics: list[str], wait: float) -> dict[str, str]:
    """Types of ``topics`` from their publishers, waiting up to ``wait`` s for one on each.

    A topic only subscribed to (a pose node already listening to a camera not yet started) has no
    publisher yet: recording it at once would subscribe without knowing the QoS to match, and a
    best-effort camera starting later would never connect. Raises BagError naming the topics
    without a publisher and the ones the graph does have.
    """
    deadline = time.monotonic() + wait
    while True:
        publishers = {t: node.get_publishers_info_by_topic(t) for t in topics}
        missing = [t for t in topics if not publishers[t]]
        if not missing or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    if missing:
        known = {name: types[0] for name, types in node.get_topic_names_and_types()}
        raise BagError(
            f"no publisher of {', '.join(missing)} appeared within {wait:g} s; the graph has "
            f"{describe_topics(known)}; start the publisher first or raise --wait"
        )
    return {t: publishers[t][0].topic_type for t in topics}


def _full_name(topic: str) -> str:
    return topic if topic.startswith("/") else "/" + topic


def record_topics(
    bag: str | Path,
    topics: list[str],
    *,
    duration: float = 0.0,
    storage: str = "mcap",
    wait: float = 5.0,
    stop: threading.Event | None = None,
    progress: dict[str, int] | None = None,
) -> dict[str, int]:
    """Record ``topics`` of the live graph into a new bag until ``duration`` s, ``stop`` or Ctrl-C.

    Types come from the graph; messages are stored as received (log time = receive wall time, ns).
    SIGTERM ends the recording like Ctrl-C, so the bag is closed with its metadata.yaml, as
    ``ros2 bag record`` does. What was received is flushed to disk every ``FLUSH_SECONDS``, so even
    a SIGKILL leaves a bag that ``bharnet bag info`` can reindex. Returns the messages per topic;
    ``progress``, when given, holds them while recording (for a caller that watches).
    """
    topics = [_full_name(t) for t in topics]
    stop = stop if stop is not None else threading.Event()
    with private_node("bag_recorder") as (node, executor):
        types = discover_types(node, topics, wait)
        classes = {topic: message_type(msgtype) for topic, msgtype in types.items()}
        for msgtype in types.values():  # both checked before the bag exists: a refusal leaves none
            message_class(msgtype)
        with _stop_on_sigterm(stop), BagWriter(bag, storage) as writer:
            for topic, msgtype in types.items():
                writer.add_topic(topic, msgtype, offered_qos(node, topic))
                node.create_subscription(
                    classes[topic], topic, _writer_callback(writer, topic, progress),
                    matching_qos(node, topic),
                    raw=True,
                )  # fmt: skip
            _spin_until(executor, duration, stop, writer)
            return dict(writer.counts)


def _writer_callback(
    writer: BagWriter, topic: str, progress: dict[str, int] | None
) -> Callable[[bytes], None]:
    def store(data: bytes) -> None:
        writer.write_raw(topic, time.time_ns(), data)
        if progress is not None:
            progress[topic] = writer.counts[topic]

    return store


@contextmanager
def _stop_on_sigterm(stop: threading.Event) -> Iterator[None]:
    """While recording, SIGTERM sets ``stop`` (a clean end) instead of killing the process.

    Signal handlers can only be set from the main thread; elsewhere (tests) nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _spin_until(
    executor: SingleThreadedExecutor, duration: float, stop: threading.Event, writer: BagWriter
) -> None:
    """Spin until the duration, ``stop`` or Ctrl-C, flushing the bag every FLUSH_SECONDS.

    Messages that had already arrived when it ends (SIGTERM, the duration) are still stored.
    """
    deadline = time.monotonic() + duration if duration > 0 else None
    next_flush = time.monotonic() + FLUSH_SECONDS
    try:
        while (deadline is None or time.monotonic() < deadline) and not stop.is_set():
            executor.spin_once(timeout_sec=0.05)
            if time.monotonic() >= next_flush:
                writer.flush()
                next_flush = time.monotonic() + FLUSH_SECONDS
        drain_until = time.monotonic() + DRAIN_SECONDS
        while time.monotonic() < drain_until:
            executor.spin_once(timeout_sec=0.01)
    except (KeyboardInterrupt, ExternalShutdownException):
        return


# --------------------------------------------------------------------------------------------------
# Replay into the real graph
# --------------------------------------------------------------------------------------------------


@dataclass
class LiveRun:
    """What happened while a bag was replayed into the graph (all times from ``time.monotonic``)."""

    sent: int = 0  # messages published
    undecodable: int = 0  # messages not published: their bytes are no message of the topic's type
    refused: int = 0  # images published whose stamp no clock gives: the pose node refuses them
    unusable: int = 0  # images published that the pose node could not use (pixels that do not decode)
    published: dict[int, float] = field(default_factory=dict)  # frame stamp (ns) -> publish time
    stamps_sent: list[int] = field(default_factory=list)  # frame stamps (ns), repeated ones each time
    processed: list[int] = field(default_factory=list)  # stamps of skeleton messages from the pose stage
    actions: list[tuple[float, bytes]] = field(default_factory=list)  # (receive time, Action CDR)
    replay_seconds: float = 0.0  # first to last publish
    busy_cpu_seconds: float = 0.0  # this process's CPU from the first publish to the end of the drain
    busy_seconds: float = 0.0  # wall time of the same span (the nodes' start-up is in neither)
    schedule_lag_max: float = 0.0  # worst delay of a publish behind the bag's timing
    pose_stage: bool = True  # False: skeletons were replayed straight into the recognizer


def replay_topic(options: GraphOptions, msgtype: str) -> str:
    """Where the graph listens for ``msgtype``: the camera topic, its /compressed, or the skeletons."""
    if msgtype == SKELETON_TYPE:
        return _full_name(SKELETON_TOPIC)
    if msgtype == COMPRESSED_TYPE:
        return options.camera_topic + "/compressed"
    return options.camera_topic


@contextmanager
def private_domain() -> Iterator[int]:
    """A ROS domain (150-229) that no other replay on the machine holds while the block runs, so a
    replay hears neither a robot's live graph nor another replay (``150 + pid % 80`` let two runs
    share one). The user's own ``ROS_DOMAIN_ID`` is never taken. BagError when all are held.
    """
    live = os.environ.get("ROS_DOMAIN_ID", "").strip()
    start = os.getpid() % len(PRIVATE_DOMAIN_IDS)  # runs started together try different ones first
    ids = [*PRIVATE_DOMAIN_IDS[start:], *PRIVATE_DOMAIN_IDS[:start]]
    for domain in ids:
        if str(domain) != live and (holder := hold(f"{DOMAIN_HOLD_NAME}{domain}")) is not None:
            with holder:
                yield domain
            return
    raise BagError(
        f"ROS domains {PRIVATE_DOMAIN_IDS[0]}-{PRIVATE_DOMAIN_IDS[-1]} are all held by other replays on "
        "this machine; wait for one to end"
    )


def run_graph_on_bag(
    bag: str | Path,
    topic: str,
    msgtype: str,
    options: GraphOptions,
    *,
    rate: float = 1.0,
    ready_timeout: float = 90.0,
    drain: float = 1.5,
    during: Callable[[Any, threading.Event], None] | None = None,
) -> LiveRun:
    """Start the pose and recognizer nodes in-process, replay ``topic`` with its timing, record actions.

    The nodes are started by :func:`running_graph` exactly as ``bharnet run`` starts them (for a
    skeleton topic only the recognizer). Replay starts once every node is subscribed, and ends
    ``drain`` seconds after the last output arrived, so the final windows are not cut off. It all
    runs in a private ROS domain, so other graphs on the machine neither disturb nor see it.
    ``during(graph, stop)`` runs in a thread of its own while the bag plays, until ``stop`` is set
    (a benchmark's parameter sets, say).
    """
    run = LiveRun(pose_stage=msgtype != SKELETON_TYPE)
    only = None if run.pose_stage else ("recognizer",)
    with private_domain() as domain, running_graph(options, only=only, domain_id=domain) as graph:
        probe = Node("bag_replay", context=graph.context, use_global_arguments=False)
        publisher = probe.create_publisher(message_type(msgtype), replay_topic(options, msgtype), 10)
        _listen(probe, run)
        graph.add(probe)
        _wait_ready(probe, publisher, run.pose_stage, ready_timeout)
        stop = threading.Event()
        beside = threading.Thread(target=during, args=(graph, stop), daemon=True) if during else None
        if beside is not None:
            beside.start()
        try:
            cpu_started, started = time.process_time(), time.monotonic()
            _replay(bag, topic, publisher, rate, run)
            _drain(run, drain)
            run.busy_cpu_seconds = time.process_time() - cpu_started
            run.busy_seconds = time.monotonic() - started
            if run.pose_stage:  # its refusals for other reasons than the stamp: bad frames, not dropped
                pose = graph.node("pose")
                run.unusable = pose.bad_frames - pose.stamps_refused
        finally:
            stop.set()
            if beside is not None:
                beside.join()
    return run


@dataclass
class SwapCount:
    """The ``model`` sets :func:`swapping_models` made, as the recognizer answered them."""

    done: int = 0
    refused: int = 0


def swapping_models(
    models: list[str], count: SwapCount, period: float
) -> Callable[[Any, threading.Event], None]:
    """A ``during`` for :func:`run_graph_on_bag`: sets the recognizer's ``model`` to each of
    ``models`` in turn every ``period`` s, through its parameter service as ``ros2 param set``
    does, and counts the answers in ``count``."""

    def swap(graph: Any, stop: threading.Event) -> None:
        node = graph.add(Node("model_swapper", context=graph.context, use_global_arguments=False))
        client = AsyncParameterClient(node, "recognizer")
        client.wait_for_services(timeout_sec=period)
        for model in itertools.cycle(models[1:] + models[:1]):
            if stop.wait(period):
                return
            future = client.set_parameters([Parameter("model", value=model)])
            while not future.done() and not stop.wait(0.01):
                pass
            if future.done() and future.result().results[0].successful:
                count.done += 1
            elif future.done():
                count.refused += 1

    return swap


def _listen(probe: Node, run: LiveRun) -> None:
    """Raw subscriptions to the actions and (with a pose stage) the skeletons, stamped on arrival."""
    action_class = message_type("bharnet_ros/msg/Action")
    probe.create_subscription(
        action_class, _full_name(ACTION_TOPIC), lambda data: run.actions.append((time.monotonic(), data)),
        QoSProfile(depth=100), raw=True,
    )  # fmt: skip
    if run.pose_stage:
        probe.create_subscription(
            message_type(SKELETON_TYPE), _full_name(SKELETON_TOPIC),
            lambda data: run.processed.append(cdr_header_stamp(data)), QoSProfile(depth=100), raw=True,
        )  # fmt: skip


def _wait_ready(probe: Node, publisher: Publisher, pose_stage: bool, timeout: float) -> None:
    """Until the first node listens to the replay, the recognizer listens to skeletons and publishes."""

    def ready() -> bool:
        skeleton_readers = probe.count_subscribers(_full_name(SKELETON_TOPIC))
        return (
            publisher.get_subscription_count() > 0
            and probe.count_publishers(_full_name(ACTION_TOPIC)) > 0
            and (not pose_stage or skeleton_readers >= 2)  # the recognizer and this probe
        )

    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise BagError(
                f"the graph did not come up within {timeout:g} s (no subscriber on {publisher.topic_name} "
                "or no recognizer publishing); check the model and the node logs"
            )
        time.sleep(0.05)
    time.sleep(0.5)  # lifecycle publishers are activated just after the subscriptions are created


def _replay(bag: str | Path, topic: str, publisher: Publisher, rate: float, run: LiveRun) -> None:
    """Publish the stored bytes at their log times' spacing divided by ``rate``.

    A message that does not deserialize is counted, not published (the nodes would get it as
    garbage). An image whose stamp no clock gives is published and counted as ``refused``: the
    pose node refuses it, as the deterministic run does. A gap between log times is replayed as
    at most :data:`MAX_REPLAY_GAP_SECONDS`, and log time running backwards as no wait, so the
    replay's length is bounded by its messages.
    """
    due = previous_log = None
    for message in read_messages(bag, [topic]):
        try:
            msg = message.decode()
        except MessageError:
            run.undecodable += 1
            continue
        if due is None or previous_log is None:
            due = time.monotonic()
        else:
            gap = (message.log_time - previous_log) * 1e-9 / rate
            due += min(max(gap, 0.0), MAX_REPLAY_GAP_SECONDS)
        previous_log = message.log_time
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        published = time.monotonic()
        publisher.publish(message.data)
        run.schedule_lag_max = max(run.schedule_lag_max, published - due)
        _count_sent(run, msg, message.data, published)
    if run.published:
        times = run.published.values()
        run.replay_seconds = max(times) - min(times)


def _count_sent(run: LiveRun, msg: Any, data: bytes, published: float) -> None:
    """Count one published message; an image the pose node refuses for its stamp is no frame it
    could process (nor drop), so only its count is kept."""
    run.sent += 1
    if run.pose_stage and stamp_problem(msg.header.stamp):
        run.refused += 1
        return
    # skeletons go straight to the recognizer, whose actions carry each person's stamp (an array
    # header may be left at 0); images come back as arrays with the image's header
    stamp = cdr_header_stamp(data) if run.pose_stage else frame_stamp(msg, SKELETON_TYPE)
    run.published[stamp] = published
    run.stamps_sent.append(stamp)


def _drain(run: LiveRun, quiet: float, limit: float = 15.0) -> None:
    """Wait until nothing new arrived for ``quiet`` seconds (at most ``limit`` s)."""
    deadline = time.monotonic() + limit
    seen = -1
    last_change = time.monotonic()
    while time.monotonic() < deadline:
        count = len(run.actions) + len(run.processed)
        if count != seen:
            seen, last_change = count, time.monotonic()
        elif time.monotonic() - last_change >= quiet:
            return
        time.sleep(0.05)
