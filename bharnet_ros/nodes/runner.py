"""The recognition graph in this process: ``bharnet run`` (the launch file's graph, for machines
without ``ros2 launch``), the real-time bag replay and the soak all start it with
:func:`running_graph`."""

from __future__ import annotations

import importlib
import os
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager

import rclpy
from rclpy._rclpy_pybind11 import RCLError
from rclpy.context import Context
from rclpy.exceptions import InvalidHandle, NameValidationException, ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

from bharnet_ros.nodes.environment import ignore_further_interrupts, use_default_dds_profile
from bharnet_ros.nodes.graph import ACTION_TOPIC, GraphOptions, NodeSpec, describe_graph, ros_arguments
from bharnet_ros.nodes.lifecycle import one_line, spin_through_errors

DISCOVERY_SECONDS = 3.0  # how long start-up looks for another graph (the node imports overlap it)
WATCH_SECONDS = 15.0  # after start, a conflict the nodes find (slow discovery) still stops the graph


def create_node(spec: NodeSpec, options: GraphOptions, context: Context | None = None) -> Node:
    """Instantiate one node of the description with the same YAML, overrides and remappings."""
    module = importlib.import_module(spec.module)
    node_class = getattr(module, spec.node_class)
    return node_class(
        namespace=options.namespace or None,
        cli_args=ros_arguments(spec, options),
        use_global_arguments=False,
        context=context,
    )


class RunningGraph:
    """The nodes of an in-process graph, each spun by its own single-threaded executor in its own thread.

    Like separate processes, a node never waits for another node's callbacks. One shared
    MultiThreadedExecutor for the whole graph measured 6-27 FPS through the pose stage where this
    keeps the full 30 Hz (docs/benchmarks.md). Made and torn down by :func:`running_graph`.
    """

    def __init__(self, context: Context | None = None) -> None:
        self.context = context  # None: rclpy's default context
        self.nodes: list[Node] = []
        self._executors: list[SingleThreadedExecutor] = []
        self._threads: list[threading.Thread] = []
        self._stopping = False

    def add(self, node: Node) -> Node:
        """Spin ``node`` in a thread of its own; it is destroyed with the graph."""
        executor = SingleThreadedExecutor(context=self.context)
        executor.add_node(node)
        spin = (executor, node, lambda: self._stopping or not self.ok())
        thread = threading.Thread(target=spin_through_errors, args=spin, name=node.get_name(), daemon=True)
        self.nodes.append(node)
        self._executors.append(executor)
        self._threads.append(thread)
        thread.start()
        return node

    def node(self, name: str) -> Node:
        """The node called ``name`` (KeyError if the graph has none)."""
        for node in self.nodes:
            if node.get_name() == name:
                return node
        raise KeyError(f"the graph has no node {name}; it has {[n.get_name() for n in self.nodes]}")

    def ok(self) -> bool:
        """False once the context was shut down (Ctrl-C in a standalone graph)."""
        return rclpy.ok(context=self.context)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop the executors, let each thread finish the callback in hand, then destroy the nodes.

        rclpy's ``Executor.shutdown`` returns without waiting for a running callback, so the threads
        are joined first; destroying a node under a running callback breaks its publishers
        (InvalidHandle). The context stays.
        """
        self._stopping = True
        for executor in self._executors:
            executor.shutdown(timeout_sec=0)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        for node in self.nodes:
            release = getattr(node, "release", None)  # a managed node's MediaPipe graphs, ONNX session
            if callable(release):
                release()
            node.destroy_node()


class NodeStartError(RuntimeError):
    """A node of the graph could not be created: a parameter of the wrong type or out of its range
    (in the parameters file), a remapping rcl cannot parse, a video that went away."""

    def __init__(self, node: str, err: Exception) -> None:
        text = one_line(err, limit=400)
        super().__init__(f"the {node} node cannot start: {text or type(err).__name__}"[:400])
        self.node = node


# What a node's constructor raises for bad parameters, names or input (rclpy and our nodes).
START_ERRORS = (ParameterException, NameValidationException, RCLError, ValueError, OSError)


class GraphConflictError(RuntimeError):
    """The same graph already runs in this ROS domain; ``conflicts`` says what was found."""

    def __init__(self, conflicts: list[str]) -> None:
        super().__init__("; ".join(conflicts))
        self.conflicts = conflicts


@contextmanager
def running_graph(
    options: GraphOptions,
    *,
    only: Collection[str] | None = None,
    domain_id: int | None = None,
    discovery: float | None = None,
    standalone: bool = False,
) -> Iterator[RunningGraph]:
    """The nodes of :func:`describe_graph` started in this process, torn down when the block ends.

    ``only`` names the nodes to start (None: all). ``domain_id`` gives the graph a ROS domain of
    its own (None: ``ROS_DOMAIN_ID``). With ``discovery`` set, it first looks that many seconds
    for the same graph in the domain and raises GraphConflictError if one runs. A ``standalone``
    graph is what the process runs (``bharnet run``): it uses rclpy's default context, so Ctrl-C
    shuts it down as it does a launched node, and its teardown ignores a further Ctrl-C. Otherwise
    the graph has a context of its own. Teardown joins the executor threads before destroying the
    nodes, then shuts the context down.
    """
    use_default_dds_profile()
    context = None if standalone else Context()
    rclpy.init(context=context, domain_id=domain_id)
    graph = RunningGraph(context)
    try:
        if discovery is not None:
            _refuse_a_second_graph(options, context, discovery)
        for spec in describe_graph(options):
            if only is None or spec.name in only:
                try:
                    node = create_node(spec, options, context=context)
                except START_ERRORS as err:
                    if not rclpy.ok(context=context):  # SIGTERM or Ctrl-C during start-up
                        raise ExternalShutdownException() from None
                    raise NodeStartError(spec.name, err) from err
                graph.add(node)
        yield graph
    finally:
        if standalone:
            ignore_further_interrupts()
        graph.shutdown()
        rclpy.try_shutdown(context=context)


def _refuse_a_second_graph(options: GraphOptions, context: Context | None, wait: float) -> None:
    conflicts = find_conflicts(options, context, wait=wait, meanwhile=lambda: _import_nodes(options))
    if conflicts:
        raise GraphConflictError(conflicts)


def find_conflicts(
    options: GraphOptions,
    context: Context | None = None,
    wait: float = DISCOVERY_SECONDS,
    meanwhile: Callable[[], object] = lambda: None,
) -> list[str]:
    """What of this graph already runs in the ROS domain: nodes of its names, its action topic.

    Discovery takes a few seconds, so this looks for up to ``wait`` seconds (less once it finds
    one), running ``meanwhile`` (slow work such as imports) while discovery goes on.
    """
    name = f"bharnet_run_check_{os.getpid()}"
    probe = Node(name, context=context, start_parameter_services=False, enable_rosout=False)
    try:
        deadline = time.monotonic() + wait
        meanwhile()
        while not (found := _conflicts(probe, options, context)) and time.monotonic() < deadline:
            time.sleep(0.1)
        return found
    finally:
        probe.destroy_node()


def _conflicts(probe: Node, options: GraphOptions, context: Context | None) -> list[str]:
    """What :func:`find_conflicts` looks for; ExternalShutdownException once a signal (SIGTERM,
    Ctrl-C) shut the context down, which rclpy's handlers do without raising anything."""
    namespace = "/" + options.namespace.strip("/")
    action = _join(namespace, ACTION_TOPIC)
    try:
        running = set(probe.get_node_names_and_namespaces())
        published = probe.count_publishers(action)
    except (RCLError, InvalidHandle):
        if not rclpy.ok(context=context):
            raise ExternalShutdownException() from None
        raise
    found = [
        f"a node {_join(namespace, spec.name)} is already running"
        for spec in describe_graph(options)
        if (spec.name, namespace) in running
    ]
    if published:
        found.append(f"{action} already has a publisher")
    return found


def _import_nodes(options: GraphOptions) -> None:
    """Import the node modules (MediaPipe, ONNX Runtime: seconds) while discovery runs."""
    for spec in describe_graph(options):
        importlib.import_module(spec.module)


def _join(namespace: str, name: str) -> str:
    return namespace.rstrip("/") + "/" + name


def refusal(conflicts: list[str]) -> str:
    """The start-up error when another graph runs in this ROS domain, with what to do about it."""
    domain = os.environ.get("ROS_DOMAIN_ID", "0")
    return (
        f"error: another recognition graph is running in ROS domain {domain}: {'; '.join(conflicts)}.\n"
        "Two graphs under the same names share nodes and topics (each pose node takes both cameras).\n"
        "Start this one with --namespace NAME (its topics move under /NAME), or with another domain,\n"
        "e.g. ROS_DOMAIN_ID=42 bharnet run ..."
    )


def run_graph(options: GraphOptions, duration: float = 0.0, discovery: float = DISCOVERY_SECONDS) -> int:
    """Start every node of the graph until Ctrl-C or ``duration`` seconds; exits quietly.

    Refuses (exit code 2) when the same graph already runs in the ROS domain: before starting
    (:func:`find_conflicts`), or when the nodes find it within ``WATCH_SECONDS`` of the start, since
    discovery can take longer than the check before. A node that cannot be created (a parameter of
    the wrong type or range in the parameters file) is one line and exit code 2 too. Teardown
    ignores further Ctrl-C (the process is exiting).
    """
    up = False
    try:
        with running_graph(options, discovery=discovery, standalone=True) as graph:
            up = True
            conflicts = _wait(graph, duration)
            if conflicts:
                raise GraphConflictError(conflicts)
    except GraphConflictError as conflict:
        print(refusal(conflict.conflicts), file=sys.stderr)
        return 2
    except NodeStartError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        if not up:  # still starting (the look for another graph, the nodes' creation)
            print("bharnet run: interrupted", file=sys.stderr)
            return 130
    return 0


def _wait(graph: RunningGraph, duration: float) -> list[str]:
    """Run until shutdown or ``duration``; returns early with what the nodes found of another graph."""
    started = time.monotonic()
    while graph.ok() and (duration <= 0 or time.monotonic() < started + duration):
        if time.monotonic() < started + WATCH_SECONDS:
            conflicts = [c for node in graph.nodes for c in getattr(node, "conflicts", [])]
            if conflicts:
                return conflicts
        time.sleep(0.1)
    return []
