"""``bharnet run``: the launch file's graph in one process, for machines without ``ros2 launch``."""

from __future__ import annotations

import importlib
import threading
import time

import rclpy
from rclpy.context import Context
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

from bharnet_ros.nodes.environment import use_default_dds_profile
from bharnet_ros.nodes.graph import GraphOptions, NodeSpec, describe_graph, ros_arguments


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


class NodeThreads:
    """Each node spun by its own single-threaded executor in its own thread.

    Like separate processes, a node never waits for another node's callbacks. One shared
    MultiThreadedExecutor for the whole graph measured 6-27 FPS through the pose stage where this
    keeps the full 30 Hz (docs/benchmarks.md).
    """

    def __init__(self, context: Context | None = None) -> None:
        self.context = context
        self.nodes: list[Node] = []
        self._executors: list[SingleThreadedExecutor] = []
        self._threads: list[threading.Thread] = []

    def add(self, node: Node) -> Node:
        executor = SingleThreadedExecutor(context=self.context)
        executor.add_node(node)
        thread = threading.Thread(target=executor.spin, name=node.get_name(), daemon=True)
        self.nodes.append(node)
        self._executors.append(executor)
        self._threads.append(thread)
        thread.start()
        return node

    def shutdown(self) -> None:
        """Stop the executors, destroy the nodes and join the threads (the context stays)."""
        for executor in self._executors:
            executor.shutdown(timeout_sec=5)
        for node in self.nodes:
            node.destroy_node()
        for thread in self._threads:
            thread.join(timeout=5)


def run_graph(options: GraphOptions, duration: float = 0.0) -> int:
    """Start every node of the graph until Ctrl-C or ``duration`` seconds."""
    use_default_dds_profile()
    rclpy.init()
    graph = NodeThreads()
    try:
        for spec in describe_graph(options):
            graph.add(create_node(spec, options))
        deadline = time.monotonic() + duration if duration > 0 else None
        while rclpy.ok() and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        graph.shutdown()
        rclpy.try_shutdown()
    return 0
