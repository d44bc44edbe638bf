"""Declarative ROS parameters: one table per node gives name, default, description, range and when a
change applies.

A parameter is either ``live`` (a set applies at once), ``read_only`` (fixed once the node is up),
or, by default, read again by the next configure transition.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node
from rclpy.parameter import Parameter

from bharnet_ros.core.labels import error_line


@dataclass(frozen=True)
class Param:
    """One parameter; ``limits`` (min, max) become a descriptor range that ROS enforces on set.

    ``live`` parameters apply as soon as they are set; the others wait for the next configure
    (``read_only`` ones cannot be set at all after start-up). ``choices`` (text parameters) and
    ``check`` (a value's problem in words, or "") refuse a bad value at the set, not at configure.
    """

    name: str
    default: Any
    description: str
    limits: tuple[float, float] | None = None
    read_only: bool = False
    live: bool = False
    choices: tuple[str, ...] = ()
    check: Callable[[Any, str, str], str] | None = None

    def problem(self, value: Any, node_name: str = "node", namespace: str = "/") -> str:
        """Why ``value`` cannot be set (ROS checks types itself), or "", for the node of that name
        and namespace (a topic name is expanded within them).

        The range is checked again: ROS lets a float within a relative 1e-6 past a bound through
        (``Node.PARAM_REL_TOL``), which the core would then refuse when the value is applied.
        """
        if self.choices and value not in self.choices:
            return f"{self.name} must be one of {', '.join(self.choices)}, not {value!r}"
        if self.limits is not None and isinstance(value, int | float) and not isinstance(value, bool):
            low, high = self.limits
            if not low <= value <= high:
                return f"{self.name} must be from {_number(low)} to {_number(high)}, not {value!r}"
        return self.check(value, node_name, namespace) if self.check is not None else ""

    def descriptor(self) -> ParameterDescriptor:
        descriptor = ParameterDescriptor(
            description=self.description,
            read_only=self.read_only,
            additional_constraints=self.when_applied(),
        )
        if self.limits is not None and isinstance(self.default, bool):
            raise ValueError(f"parameter {self.name}: a bool has no range")
        if self.limits is not None and isinstance(self.default, int):
            low, high = (int(v) for v in self.limits)
            descriptor.integer_range = [IntegerRange(from_value=low, to_value=high, step=1)]
        elif self.limits is not None:
            low, high = (float(v) for v in self.limits)
            descriptor.floating_point_range = [FloatingPointRange(from_value=low, to_value=high, step=0.0)]
        return descriptor

    def when_applied(self) -> str:
        """When a set takes effect, in words (shown by ``ros2 param describe``)."""
        if self.read_only:
            return "read-only: set it at start-up (YAML, launch or --ros-args)"
        return "applies at once" if self.live else ON_CONFIGURE


_TYPE_WORDS = {
    "BOOL": "true or false",
    "INTEGER": "a whole number",
    "DOUBLE": "a number with a decimal point (1.0, not 1)",
    "STRING": "text",
}


def file_value_problem(param: Param, value: Any, node_name: str = "node", namespace: str = "/") -> str:
    """Why a parameters file's ``value`` cannot start the node (rclpy refuses a type other than the
    default's, such as 1 for a float, when it declares the parameter), or :meth:`Param.problem`.
    Checked before a graph starts or a bag is scored offline, where nothing else would refuse it."""
    expected = Parameter.Type.from_parameter_value(param.default)
    try:
        given = Parameter.Type.from_parameter_value(value)
    except TypeError:
        given = None
    if given != expected:
        wanted = _TYPE_WORDS.get(expected.name, expected.name.lower().replace("_", " "))
        return f"{param.name} must be {wanted}, not {value!r}"
    return param.problem(value, node_name, namespace)


def file_parameters_problem(
    params: tuple[Param, ...], values: dict[str, Any], node_name: str, namespace: str = "/", skip: Any = ()
) -> str:
    """The first of ``values`` (a node's entries in a parameters file) that the node would refuse,
    as "<name> <problem>", or ""; the names in ``skip`` (set otherwise) are not checked."""
    for param in params:
        if param.name in skip or param.name not in values:
            continue
        if problem := file_value_problem(param, values[param.name], node_name, namespace):
            return problem if problem.startswith(param.name) else f"{param.name} {problem}"
    return ""


def _number(value: float) -> str:
    """A bound as a user types it: 1 for 1.0, 1073741824 for 1 << 30."""
    return str(value) if isinstance(value, int) else f"{value:g}"


ON_CONFIGURE = "takes effect on the next configure (lifecycle cleanup, then configure)"


def declare_parameters(node: Node, params: tuple[Param, ...]) -> dict[str, Any]:
    """Declare every parameter (YAML and launch overrides apply) and return the current values."""
    for param in params:
        node.declare_parameter(param.name, param.default, param.descriptor())
    return read_parameters(node, params)


def read_parameters(node: Node, params: tuple[Param, ...]) -> dict[str, Any]:
    """The node's current value of every parameter in the table."""
    return {param.name: node.get_parameter(param.name).value for param in params}


def topic_name_problem(name: str, node_name: str = "node", namespace: str = "/") -> str:
    """Why ``name`` is no valid topic name as that node would expand it, or "" (also for empty):
    the namespace counts towards the length and fills in ``{ns}``."""
    from rclpy.expand_topic_name import expand_topic_name
    from rclpy.validate_full_topic_name import validate_full_topic_name

    if not name:
        return ""
    try:
        validate_full_topic_name(expand_topic_name(name, node_name, namespace))
    except Exception as err:  # rclpy raises ValueError or InvalidTopicNameException
        return f"{name!r} is no valid topic name ({error_line(err, 160)})"
    return ""
