"""``bharnet run``: the launch file's graph in one process, for machines without ``ros2 launch``."""

from __future__ import annotations

import importlib
import time

import rclpy
from rclpy.context import Context
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
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


def run_graph(options: GraphOptions, duration: float = 0.0) -> int:
    """Start every node of the graph on a multi-threaded executor until Ctrl-C or ``duration`` s."""
    use_default_dds_profile()
    rclpy.init()
    nodes: list[Node] = []
    executor = MultiThreadedExecutor()
    try:
        for spec in describe_graph(options):
            nodes.append(create_node(spec, options))
            executor.add_node(nodes[-1])
        deadline = time.monotonic() + duration if duration > 0 else None
        while rclpy.ok() and (deadline is None or time.monotonic() < deadline):
            executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        executor.shutdown()
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0
