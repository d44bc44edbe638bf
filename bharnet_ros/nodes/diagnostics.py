"""Publishing node health on /diagnostics (diagnostic_msgs), without diagnostic_updater."""

from __future__ import annotations

from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node
from rclpy.qos import QoSProfile

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR


class DiagnosticsPublisher:
    """One status per node, published by the node's timer: a level, a message and key values.

    The status is named after the node with its namespace (``pose: status``, or ``robot2/pose:
    status`` in namespace robot2), and its hardware id is the namespace's (``bharnet_ros``, or
    ``bharnet_ros/robot2``), so graphs in two namespaces stay apart on /diagnostics, also where an
    aggregator groups by hardware. Message and values are one line each (a file name or an
    error's text may hold line breaks)."""

    def __init__(self, node: Node, hardware_id: str = "bharnet_ros") -> None:
        self._node = node
        namespace = node.get_namespace().strip("/")
        self._hardware_id = f"{hardware_id}/{namespace}" if namespace else hardware_id
        self._publisher = node.create_publisher(DiagnosticArray, "/diagnostics", QoSProfile(depth=10))

    def publish(self, level: bytes, message: str, values: dict[str, Any]) -> DiagnosticStatus:
        status = DiagnosticStatus(
            level=level,
            name=f"{self._node.get_fully_qualified_name().lstrip('/')}: status",
            message=_one_line(message),
            hardware_id=self._hardware_id,
            values=[KeyValue(key=k, value=_one_line(_text(v))) for k, v in values.items()],
        )
        array = DiagnosticArray(status=[status])
        array.header.stamp = self._node.get_clock().now().to_msg()
        self._publisher.publish(array)
        return status


def _text(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _one_line(text: str) -> str:
    """``text`` with its line breaks shown as ``\\n``, so that a monitor shows one line."""
    return text.replace("\r", "\\r").replace("\n", "\\n")
