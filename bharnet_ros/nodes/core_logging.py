"""The ROS-free core logs through Python ``logging``; while a node runs, those records go to its logger.

Routed records reach the console in the ROS format and reach ``/rosout``, named after the node and
the core module (``recognizer.window``). Which node a record belongs to: the node that wrapped the
call in :func:`speaking_for`, else the node registered last. Without a registered node the core
logs as plain Python logging again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from rclpy.impl.rcutils_logger import RcutilsLogger
from rclpy.logging import LoggingSeverity
from rclpy.node import Node

CORE_LOGGER = "bharnet_ros"
_LEVELS = (  # Python level, ROS severity; highest first
    (logging.CRITICAL, LoggingSeverity.FATAL),
    (logging.ERROR, LoggingSeverity.ERROR),
    (logging.WARNING, LoggingSeverity.WARN),
    (logging.INFO, LoggingSeverity.INFO),
    (logging.DEBUG, LoggingSeverity.DEBUG),
)


def ros_severity(level: int) -> LoggingSeverity:
    """The ROS severity of a Python logging level."""
    return next((severity for floor, severity in _LEVELS if level >= floor), LoggingSeverity.DEBUG)


def python_level(severity: LoggingSeverity) -> int:
    """The Python logging level of a ROS severity (UNSET counts as INFO, the ROS default)."""
    return next((level for level, known in _LEVELS if known == severity), logging.INFO)


class _CoreLogRouter(logging.Handler):
    """Forwards ``bharnet_ros.*`` records to the rclpy logger of the node they belong to."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self._nodes: dict[int, Node] = {}  # registration order; id(node) -> node
        self._children: dict[tuple[int, str], RcutilsLogger] = {}
        self._current = threading.local()

    @property
    def nodes(self) -> list[Node]:
        return list(self._nodes.values())

    def add(self, node: Node) -> None:
        with self.lock:  # the lock ``handle`` holds around ``emit``
            self._nodes[id(node)] = node

    def remove(self, node: Node) -> None:
        with self.lock:
            self._nodes.pop(id(node), None)
            for key in [key for key in self._children if key[0] == id(node)]:
                del self._children[key]

    def emit(self, record: logging.LogRecord) -> None:
        node = getattr(self._current, "node", None) or next(reversed(self._nodes.values()), None)
        if node is None:
            return
        try:
            _log_at(self._logger(node, record.name), record.getMessage(), ros_severity(record.levelno))
        except Exception:  # a node being destroyed: drop the line, never raise into the core
            return

    def _logger(self, node: Node, record_name: str) -> RcutilsLogger:
        """The node's child logger for a core module, made once (rclpy registers it with /rosout)."""
        key = (id(node), record_name.rsplit(".", 1)[-1])
        if key not in self._children:
            self._children[key] = node.get_logger().get_child(key[1])
        return self._children[key]

    @contextmanager
    def speaking_for(self, node: Node) -> Iterator[None]:
        previous = getattr(self._current, "node", None)
        self._current.node = node
        try:
            yield
        finally:
            self._current.node = previous


def _log_at(logger: RcutilsLogger, message: str, severity: LoggingSeverity) -> None:
    """``logger`` at ``severity``, one call site per severity: rclpy keys a logging call's state by
    the line that makes it and refuses another severity from the same line (a ValueError), which
    would drop every line but those of the first severity a module used."""
    if severity == LoggingSeverity.FATAL:
        logger.fatal(message)
    elif severity == LoggingSeverity.ERROR:
        logger.error(message)
    elif severity == LoggingSeverity.WARN:
        logger.warning(message)
    elif severity == LoggingSeverity.INFO:
        logger.info(message)
    else:
        logger.debug(message)


_ROUTER = _CoreLogRouter()
_lock = threading.Lock()
_saved: list[tuple[int, bool]] = []  # the core logger's (level, propagate) before routing began


def route_core_logging(node: Node) -> None:
    """Send the core's log records to ``node`` (by default to the node registered last).

    While routed, the core logger does not propagate to the root logger, so a line is printed
    once, by ROS; its level follows the most verbose registered node.
    """
    core = logging.getLogger(CORE_LOGGER)
    with _lock:
        if not _ROUTER.nodes:
            _saved[:] = [(core.level, core.propagate)]
            core.addHandler(_ROUTER)
            core.propagate = False
        _ROUTER.add(node)
        core.setLevel(min(python_level(n.get_logger().get_effective_level()) for n in _ROUTER.nodes))


def stop_routing_core_logging(node: Node) -> None:
    """Stop sending records to ``node``; with no node left, the core logs as plain Python again."""
    core = logging.getLogger(CORE_LOGGER)
    with _lock:
        _ROUTER.remove(node)
        if not _ROUTER.nodes and _saved:
            core.removeHandler(_ROUTER)
            level, core.propagate = _saved.pop()
            core.setLevel(level)


def speaking_for(node: Node) -> AbstractContextManager[None]:
    """Context manager: core records logged in this thread inside it belong to ``node``."""
    return _ROUTER.speaking_for(node)
