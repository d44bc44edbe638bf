"""Implementations of the ``bharnet`` subcommands, imported lazily by ``bharnet_ros.cli``.

Each module that ``cli.SUBCOMMANDS`` names exposes ``add_arguments(parser)`` and
``run(args) -> int``; the others serve them (``outputs``, ``report_doc``, ``bench_pipeline``) or
run on their own (``python -m bharnet_ros.tools.pose_compare``).
"""

from __future__ import annotations

import math

LARGEST_SEED = 2**32 - 1  # numpy refuses negative seeds, torch overflows above 64 bits


class UsageError(Exception):
    """A problem with the user's input; the CLI prints it as one line and exits non-zero.

    The message says what is wrong and how to fix it.
    """


def check_number(option: str, value: float, low: float, high: float, unit: str) -> float:
    """``value`` when it is finite and within [low, high]; else a UsageError naming the option.

    A plain ``value < 0`` check lets NaN through (every comparison with NaN is false), which made
    a wait never end and a replay run unpaced.
    """
    if not (math.isfinite(value) and low <= value <= high):
        raise UsageError(f"{option} {value} is out of range; give {low:.10g} to {high:.10g} {unit}")
    return value


def check_count(option: str, value: int, least: int, most: int) -> int:
    """``value`` when it is a whole number in [least, most]; else a UsageError naming the option.

    Every count has a top: a huge one would run, prompt or allocate for days.
    """
    if not least <= value <= most:
        raise UsageError(f"{option} must be a whole number from {least} to {most}, got {value}")
    return value


def check_seed(value: int) -> int:
    """``--seed``: a whole number from 0 to :data:`LARGEST_SEED`."""
    return check_count("--seed", value, 0, LARGEST_SEED)
