"""ROS 2 parameter files (``config/recognize.yaml``) read without ROS, for offline tools.

A parameter file maps node names (``/**/recognizer``, ``/robot/pose``, ``recognizer``) to a
``ros__parameters`` mapping. Offline evaluation reads the same file as the live graph, so a bag
scored with ``bharnet bag eval`` runs with the settings the robot runs with.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Mapping
from fractions import Fraction
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


# How rcl's parameter parser types an unquoted value (quoted ones, and ``!!str``, stay text): these
# words are booleans; then C's strtol (base 0: 010 is eight, 0x1F) within 64 bits; then strtod,
# where a result out of range (1e400, 1e-310) leaves the text; else text. PyYAML's YAML 1.1 kept
# ``n`` as text (true in Python), ``5e-1`` as text, and read ``08`` as the base-60-free 8.
RCL_TRUE = frozenset("Y y yes Yes YES true True TRUE on On ON".split())
RCL_FALSE = frozenset("N n no No NO false False FALSE off Off OFF".split())
_RCL_NAN = frozenset((".nan", ".NaN", ".NAN"))
_RCL_INF = {f"{sign}.{word}": sign != "-" for sign in ("", "+", "-") for word in ("inf", "Inf", "INF")}
_C_INTEGER = re.compile(r"[+-]?(?:0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")
_C_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_C_HEX_FLOAT = re.compile(r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?")
_C_SPECIAL = re.compile(r"([+-]?)(?:(inf(?:inity)?)|nan(?:\([0-9A-Za-z_]*\))?)", re.I)


def rcl_scalar(text: str) -> Any:
    """An unquoted parameter value as rcl types it (None for no value, which rcl refuses)."""
    if not text:
        return None
    if text in RCL_TRUE or text in RCL_FALSE:
        return text in RCL_TRUE
    if _C_INTEGER.fullmatch(text):
        digits = text.lstrip("+-")
        base = 16 if digits[:2] in ("0x", "0X") else 8 if digits.startswith("0") and len(digits) > 1 else 10
        value = int(text, base) if base == 10 else int(text[0] + digits if text[0] == "-" else digits, base)
        if -(1 << 63) <= value < 1 << 63:
            return value
    if text in _RCL_NAN:
        return math.nan
    if text in _RCL_INF:
        return math.inf if _RCL_INF[text] else -math.inf
    return _c_float(text)


def _c_float(text: str) -> Any:
    """``text`` as C's strtod reads the whole of it, or ``text`` where it is no number or out of
    range (strtod's ERANGE: beyond the largest float, or below the smallest normal one and inexact)."""
    if special := _C_SPECIAL.fullmatch(text):
        value = math.inf if special.group(2) else math.nan
        return -value if special.group(1) == "-" else value
    hexadecimal = bool(_C_HEX_FLOAT.fullmatch(text))
    if not hexadecimal and not _C_DECIMAL.fullmatch(text):
        return text
    try:
        value = float.fromhex(text) if hexadecimal else float(text)
    except OverflowError:  # a hexadecimal one past 2 ** 1024
        return text
    mantissa = re.split(r"[pP]" if hexadecimal else r"[eE]", text)[0].lstrip("+-")
    lost = value == 0 and (mantissa[2:] if hexadecimal else mantissa).strip("0.")
    if math.isinf(value) or lost:  # out of range either way
        return text
    if value and abs(value) < sys.float_info.min:  # subnormal: out of range where digits were lost
        exact = _hex_fraction(text) if hexadecimal else Fraction(text)
        return value if Fraction(value) == exact else text
    return value


def _hex_fraction(text: str) -> Fraction:
    """The exact value of a C hexadecimal float such as ``-0x1.8p-3``."""
    sign, digits, exponent = re.fullmatch(r"([+-]?)0[xX]([0-9a-fA-F.]+)(?:[pP]([+-]?[0-9]+))?", text).groups()
    whole, _, fraction = digits.partition(".")
    mantissa = int((whole or "0") + fraction, 16)
    value = Fraction(mantissa) * Fraction(2) ** (int(exponent or 0) - 4 * len(fraction))
    return -value if sign == "-" else value


class RclLoader(NoAliasLoader):
    """Parameter files as rcl reads them: values typed by :func:`rcl_scalar` (whatever their YAML
    tag but ``!!str``), keys kept as text, arrays of one type, and a name given twice merged (a
    node's two blocks both apply; of a parameter, :func:`_repeated`)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise yaml.constructor.ConstructorError(
                    None, None, "a parameters file's keys are names", key_node.start_mark
                )
            value = self.construct_object(value_node, deep=True)
            merged[key_node.value] = (
                _repeated(merged[key_node.value], value) if key_node.value in merged else value
            )
        return merged

    def construct_sequence(self, node: yaml.SequenceNode, deep: bool = False) -> list[Any]:
        values = super().construct_sequence(node, deep=True)
        if len({type(v) for v in values}) > 1:  # rcl refuses the whole file
            raise yaml.constructor.ConstructorError(
                None, None, "an array mixes types (rcl takes arrays of one type)", node.start_mark
            )
        return values

    def construct_untagged(self, node: yaml.Node) -> Any:
        """A scalar by rcl's rules, whatever tag it carries (rcl reads only ``!!str``); an empty
        one is refused, as rcl refuses the file ("no value")."""
        if isinstance(node, yaml.ScalarNode):
            value = rcl_scalar(self.construct_scalar(node))
            if value is None:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    "no value (rcl refuses the file; write the value, or quote '' for text)",
                    node.start_mark,
                )
            return value
        if isinstance(node, yaml.SequenceNode):
            return self.construct_sequence(node)
        return self.construct_mapping(node)


def _repeated(before: Any, after: Any) -> Any:
    """A name's value where the file gives it twice, as rcl merges them: rcl keeps one value per
    type, a later one of the same type replacing it, and the node takes the first type of
    :data:`_TYPE_ORDER` that has one (1 then 2.5 is 1; x then 3.0 is 3.0)."""
    if isinstance(before, dict) and isinstance(after, dict):
        return _merged(before, after)
    return before if _type_rank(before) < _type_rank(after) else after


_TYPE_ORDER = (bool, int, float, str)  # then arrays, by the type of their items in the same order


def _type_rank(value: Any) -> int:
    """Where ``value``'s type comes in :data:`_TYPE_ORDER` (arrays after every single value)."""
    if isinstance(value, list):
        return len(_TYPE_ORDER) + 1 + (_type_rank(value[0]) if value else len(_TYPE_ORDER))
    return next(
        (rank for rank, kind in enumerate(_TYPE_ORDER) if type(value) is kind), 2 * len(_TYPE_ORDER) + 2
    )


def _merged(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """``after`` over ``before`` by :func:`_repeated`, mappings within both merged too."""
    merged = dict(before)
    for key, value in after.items():
        merged[key] = _repeated(merged[key], value) if key in merged else value
    return merged


RclLoader.yaml_implicit_resolvers = {}
RclLoader.add_implicit_resolver("!rcl", re.compile(r".*", re.S), None)
RclLoader.add_constructor("!rcl", RclLoader.construct_untagged)
for _tag in ("bool", "int", "float", "null", "timestamp", "binary"):
    RclLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", RclLoader.construct_untagged)
RclLoader.add_constructor(None, RclLoader.construct_untagged)  # any other tag: rcl ignores it


class RclDumper(yaml.SafeDumper):
    """Writes a parameters file that rcl reads back as written: text it would take for another
    type (``n``, ``010``, ``1e5``) is quoted."""

    def represent_str(self, data: str) -> yaml.ScalarNode:
        style = '"' if rcl_scalar(data) != data else None
        return self.represent_scalar("tag:yaml.org,2002:str", data, style=style)


RclDumper.add_representer(str, RclDumper.represent_str)


def dump_params_file(data: Mapping[str, Any]) -> str:
    """``data`` as parameters-file text (:class:`RclDumper`), in its order."""
    return yaml.dump(dict(data), Dumper=RclDumper, sort_keys=False)


def read_params_file(path: str | Path | None = None) -> dict[str, Any]:
    """The whole file as a mapping of full node names to their entries (the shipped
    ``config/recognize.yaml`` when ``path`` is empty), read as rcl reads it (:class:`RclLoader`;
    namespaces nested as ``robot1: {recognizer: ...}`` give ``robot1/recognizer``)."""
    try:
        path = Path(path) if path else share_file(GRAPH_PARAMS)
        data = yaml.load(read_text_file(path), Loader=RclLoader) or {}
    except UnicodeDecodeError:
        raise ParamsFileError(f"{path} is not a UTF-8 text file; give a YAML parameters file") from None
    except (OSError, ValueError, yaml.YAMLError) as err:  # ValueError: an integer of thousands of digits
        raise ParamsFileError(f"cannot read the parameters file: {err}".replace("\n", " ")[:400]) from None
    if not isinstance(data, Mapping):
        raise ParamsFileError(f"{path}: a parameters file maps node names to ros__parameters")
    return _node_entries(data)


def _node_entries(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Entries keyed by full node name, in the order rcl ranks them (where each first appears):
    within a name's mapping, ``ros__parameters`` are that node's, and every other mapping a name
    nested below it (``robot1: {recognizer: ...}``). ParamsFileError for a nested name holding
    ``/``, which rcl reads otherwise than it looks (the names after it stay below its first part)."""
    entries: dict[str, Any] = {}

    def add(name: str, entry: Any) -> None:
        entries[name] = _repeated(entries[name], entry) if name in entries else entry

    for key, value in data.items():
        if prefix and "/" in str(key).strip("/"):
            raise ParamsFileError(
                f"the name {key!r} nested under {prefix!r} holds '/', which rcl reads otherwise than it "
                "looks; nest each part on its own, or give the node's full name at the top level"
            )
        name = f"{prefix.rstrip('/')}/{str(key).strip('/')}" if prefix else str(key)
        if not isinstance(value, Mapping) or not value:
            add(name, value)
            continue
        for inner, item in value.items():
            if inner == "ros__parameters" or not isinstance(item, Mapping):
                add(name, {inner: item})
            else:
                for full, entry in _node_entries({inner: item}, name).items():
                    add(full, entry)
    return entries


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
    """The recognizer's ``ros__parameters`` for an offline evaluation, checked as the recognizer
    reads them (offline tools have no rclpy to refuse a bad value); ParamsFileError naming the
    problem, also for a ``body_topic`` (a second topic, which an evaluation has no bodies from)."""
    from bharnet_ros.core.recognizer import RecognizerConfig

    values = root_parameters(data, "recognizer")
    if values.get("body_topic"):
        raise ParamsFileError(
            f"the recognizer's body_topic ({values['body_topic']!r}) pairs bodies from a second topic, "
            "which a bag evaluation does not replay; leave it empty in this file"
        )
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
