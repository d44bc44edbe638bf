"""What every report figure shares: matplotlib without a display, and text drawn as written."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def plain_text_figure(plot: Callable[P, R]) -> Callable[P, R]:
    """Run ``plot`` on the Agg back end with mathtext off: a class name holding ``$`` was read as
    mathematics, and one such as ``$_$`` stopped the command with a parse error after its work."""

    @functools.wraps(plot)
    def plain(*args: P.args, **kwargs: P.kwargs) -> R:
        import matplotlib

        matplotlib.use("Agg")
        with matplotlib.rc_context({"text.parse_math": False}):
            return plot(*args, **kwargs)

    return plain
