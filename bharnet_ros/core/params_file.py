"""ROS 2 parameter files (``config/recognize.yaml``) read without ROS, for offline tools.

A parameter file maps node names (``/**/recognizer``, ``/robot/pose``, ``recognizer``) to a
``ros__parameters`` mapping. Offline evaluation reads the same file as the live graph, so a bag
scored with ``bharnet bag eval`` runs with the settings the robot runs with.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from bharnet_ros.core.paths import share_file
from bharnet_ros.core.text_files import read_text_file
from bharnet_ros.core.yaml12 import NoAliasLoader

GRAPH_PARAMS = "config/recognize.yaml"
MOST_THREADS = 64  # the recognizer node's ``threads`` range


class ParamsFileError(ValueError):
    """A parameter file that cannot be read; the message names the file and the problem."""


def read_params_file(path: str | Path | None = None) -> dict[str, Any]:
    """The whole file as a mapping (the shipped ``config/recognize.yaml`` when ``path`` is empty)."""
    try:
        path = Path(path) if path else share_file(GRAPH_PARAMS)
        data = yaml.load(read_text_file(path), Loader=NoAliasLoader) or {}
    except UnicodeDecodeError:
        raise ParamsFileError(f"{path} is not a UTF-8 text file; give a YAML parameters file") from None
    except (OSError, ValueError, yaml.YAMLError) as err:  # ValueError: an integer of thousands of digits
        raise ParamsFileError(f"cannot read the parameters file: {err}".replace("\n", " ")[:400]) from None
    if not isinstance(data, Mapping):
        raise ParamsFileError(f"{path}: a parameters file maps node names to ros__parameters")
    return dict(data)


def node_parameters(data: Mapping[str, Any], node: str, namespace: str = "") -> dict[str, Any]:
    """The ``ros__parameters`` that ``node`` in ``namespace`` (default the root) gets from a
    parameters mapping, merged as rcl does: every entry whose name matches the node's full name
    (``/robot1/recognizer``; ``/**`` stands for any namespaces, ``*`` for one part, a name without
    a leading ``/`` is from the root), later entries winning; ParamsFileError when one is not a
    mapping of names. A shared file's ``/robot2/recognizer`` is not ``/robot1``'s."""
    full_name = f"/{namespace.strip('/')}/{node}".replace("//", "/")
    merged: dict[str, Any] = {}
    for key, value in data.items():
        if _names_node(str(key), full_name) and isinstance(value, Mapping):
            values = value.get("ros__parameters") or {}
            if not isinstance(values, Mapping) or not all(isinstance(name, str) for name in values):
                raise ParamsFileError(f"{key}: ros__parameters must map parameter names to values")
            merged.update(values)
    return merged


def _names_node(key: str, full_name: str) -> bool:
    """Whether a parameters-file entry ``key`` applies to the node ``full_name`` (rcl's wildcards)."""
    if key.strip() in ("/**", "**"):
        return True
    pattern = "".join(
        "(/[^/]+)*" if part == "**" else "/[^/]+" if part == "*" else "/" + re.escape(part)
        for part in key.strip().strip("/").split("/")
    )
    return re.fullmatch(pattern, full_name) is not None


def root_parameters(data: Mapping[str, Any], node: str) -> dict[str, Any]:
    """:func:`node_parameters` of ``node`` at the root namespace, where the offline tools run their
    graph; ParamsFileError where the file names the node only in other namespaces (a robot's file
    keyed ``/robot1/recognizer``), whose values, its model among them, would be passed over."""
    applies = [
        str(k) for k in data if str(k).strip() not in ("/**", "**") and _names_node(str(k), f"/{node}")
    ]
    elsewhere = [str(k) for k in data if str(k).strip("/ ").split("/")[-1] == node and str(k) not in applies]
    if elsewhere and not applies:
        raise ParamsFileError(
            f"its {node} entries ({', '.join(elsewhere)}) are for other namespaces, which this command "
            f"(running its nodes at the root) would pass over; key them /**/{node}"
        )
    return node_parameters(data, node)


def recognizer_parameters(data: Mapping[str, Any]) -> dict[str, Any]:
    """The recognizer's ``ros__parameters``, checked as the recognizer reads them (offline tools
    have no rclpy to refuse a bad value); ParamsFileError naming the problem."""
    from bharnet_ros.core.recognizer import RecognizerConfig

    values = root_parameters(data, "recognizer")
    try:
        RecognizerConfig.from_params(values)
    except (ValueError, TypeError) as err:
        raise ParamsFileError(f"the recognizer's parameters: {err}") from None
    threads = values.get("threads", 1)
    if isinstance(threads, bool) or not isinstance(threads, int) or not 0 <= threads <= MOST_THREADS:
        raise ParamsFileError(f"the recognizer's threads must be 0 to {MOST_THREADS}, not {threads!r}")
    return values


def set_node_parameters(data: dict[str, Any], node: str, **values: Any) -> None:
    """Set ``values`` for ``node`` (in place): in its ``/**/node`` entry (added if missing), taken
    out of every other entry that gives them to the node at the root, so that no entry overrides
    them whatever the order; the entries' other values stay where they were."""
    own = f"/**/{node}"
    for key, entry in data.items():
        others = isinstance(entry, dict) and isinstance(entry.get("ros__parameters"), dict) and key != own
        if others and _names_node(str(key), f"/{node}"):
            for name in values:
                entry["ros__parameters"].pop(name, None)
    entry = data.get(own)
    if not isinstance(entry, dict) or not isinstance(entry.get("ros__parameters", {}), dict):
        entry = data[own] = {}
    entry.setdefault("ros__parameters", {}).update(values)
