"""YAML read as YAML 1.2 reads it: ``yes``, ``no``, ``on`` and ``off`` stay text, ``1e30`` is a
number, and ``010`` is ten.

PyYAML follows YAML 1.1, where the HRI gesture names ``yes`` and ``no`` become booleans (so
``data.classes=[stop,yes]`` named a class ``True``), ``1e30`` stays text, ``010`` is the octal 8
and ``1:30`` is the base-60 90 (so ``epochs: 010`` trained 8 epochs). Training configs,
their ``key=value`` overrides and model configs are read with :func:`load_yaml` instead.
Neither loader takes aliases (:class:`NoAliasLoader`).
"""

from __future__ import annotations

import re
from typing import IO, Any

import yaml

from bharnet_ros.core.labels import shorten

BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
FLOAT = re.compile(
    r"""^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)


class NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases (``*name``), as ROS 2's parameter parser does: a few lines
    of nested aliases (a "billion laughs") expand to billions of values in whoever walks them."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(
                None,
                None,
                "YAML aliases (*name) are not supported; write the value out",
                self.peek_event().start_mark,
            )
        return super().compose_node(parent, index)


class Yaml12Loader(NoAliasLoader):
    """NoAliasLoader with the YAML 1.2 core schema's booleans, integers and floats, and without
    duplicate keys (YAML forbids them; PyYAML kept the last, so ``{label: a, label: b}`` was b)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = repr(self.construct_object(key_node, deep=True))  # a list key is no set member
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key[:40]} is given twice; keep one", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)

    def construct_yaml_int(self, node: yaml.Node) -> int:
        """Decimal, ``0o`` octal or ``0x`` hexadecimal, as the core schema writes them."""
        text = self.construct_scalar(node)
        base = {"0o": 8, "0x": 16}.get(text[:2], 10)
        return int(text[2:] if base != 10 else text, base)


Yaml12Loader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:bool", BOOL, list("tTfF"))
# before the floats, whose pattern also matches "12"
Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:int", INT, list("-+0123456789"))
Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:float", FLOAT, list("-+0123456789."))
Yaml12Loader.add_constructor("tag:yaml.org,2002:int", Yaml12Loader.construct_yaml_int)


def yaml_problem(err: yaml.YAMLError, limit: int = 200) -> str:
    """What is wrong in a YAML text and on which line, in one line: the loader's own reason (a key
    given twice, an alias), not only the error's class."""
    if isinstance(err, yaml.MarkedYAMLError) and err.problem:
        where = f"line {err.problem_mark.line + 1}: " if err.problem_mark else ""
        text = where + err.problem
    else:
        text = str(err)
    return shorten(" ".join(text.split()), limit)


def load_yaml(source: str | IO[str]) -> Any:
    """The YAML document in ``source`` (text or an open file), read with :class:`Yaml12Loader`."""
    try:
        return yaml.load(source, Loader=Yaml12Loader)  # a SafeLoader: no Python objects, nor aliases
    except ValueError as err:  # an integer of more digits than Python converts
        raise yaml.YAMLError(f"a value cannot be read: {err}") from None
