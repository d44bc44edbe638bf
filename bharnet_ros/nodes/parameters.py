"""Declarative ROS parameters: one table per node gives name, default, description and range."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node


@dataclass(frozen=True)
class Param:
    """One parameter; ``limits`` (min, max) become a descriptor range that ROS enforces on set."""

    name: str
    default: Any
    description: str
    limits: tuple[float, float] | None = None
    read_only: bool = False

    def descriptor(self) -> ParameterDescriptor:
        descriptor = ParameterDescriptor(description=self.description, read_only=self.read_only)
        if self.limits is not None and isinstance(self.default, bool):
            raise ValueError(f"parameter {self.name}: a bool has no range")
        if self.limits is not None and isinstance(self.default, int):
            low, high = (int(v) for v in self.limits)
            descriptor.integer_range = [IntegerRange(from_value=low, to_value=high, step=1)]
        elif self.limits is not None:
            low, high = (float(v) for v in self.limits)
            descriptor.floating_point_range = [FloatingPointRange(from_value=low, to_value=high, step=0.0)]
        return descriptor


def declare_parameters(node: Node, params: tuple[Param, ...]) -> dict[str, Any]:
    """Declare every parameter (YAML and launch overrides apply) and return the current values."""
    for param in params:
        node.declare_parameter(param.name, param.default, param.descriptor())
    return {param.name: node.get_parameter(param.name).value for param in params}


def defaults(params: tuple[Param, ...]) -> dict[str, Any]:
    """Name -> default, e.g. to write config/recognize.yaml or to describe the graph."""
    return {param.name: param.default for param in params}
