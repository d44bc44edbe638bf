"""Core (Python logging) records on a node's ROS logger, at every severity."""

from __future__ import annotations

import logging

from rcl_interfaces.msg import Log
from rclpy.node import Node

from bharnet_ros.nodes.core_logging import route_core_logging, stop_routing_core_logging


def test_one_core_module_reaches_rosout_at_each_of_its_severities(ros, wait):
    """rclpy refuses a second severity from one call site; the router must not drop those lines."""
    node = ros.add(Node, "core_logging_probe")
    logs: list[Log] = []
    subscription = node.create_subscription(Log, "/rosout", logs.append, 100)
    assert wait(lambda: subscription.get_publisher_count() > 0)
    route_core_logging(node)
    try:
        core = logging.getLogger("bharnet_ros.inference")
        core.info("first info")
        core.warning("a warning")
        core.error("an error")
        core.info("second info")
        wanted = {
            "first info": Log.INFO,
            "a warning": Log.WARN,
            "an error": Log.ERROR,
            "second info": Log.INFO,
        }
        assert wait(lambda: wanted.items() <= {(log.msg, log.level) for log in logs})
        assert {log.name for log in logs if log.msg in wanted} == {"core_logging_probe.inference"}
    finally:
        stop_routing_core_logging(node)
