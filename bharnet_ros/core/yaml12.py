"""YAML read as ROS 2 and YAML 1.2 read it: ``yes``, ``no``, ``on`` and ``off`` stay text, and
``1e30`` is a number.

PyYAML follows YAML 1.1, where the HRI gesture names ``yes`` and ``no`` become booleans (so
``data.classes=[stop,yes]`` named a class ``True``) and ``1e30`` stays text. Training configs,
their ``key=value`` overrides and model configs are read with :func:`load_yaml` instead.
"""

from __future__ import annotations

import re
from typing import IO, Any

import yaml

BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
FLOAT = re.compile(
    r"""^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)


class Yaml12Loader(yaml.SafeLoader):
    """SafeLoader with the YAML 1.2 core schema's booleans and floats."""


Yaml12Loader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:float")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:bool", BOOL, list("tTfF"))
Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:float", FLOAT, list("-+0123456789."))


def load_yaml(source: str | IO[str]) -> Any:
    """The YAML document in ``source`` (text or an open file), read with :class:`Yaml12Loader`."""
    return yaml.load(source, Loader=Yaml12Loader)  # a SafeLoader: no Python objects
