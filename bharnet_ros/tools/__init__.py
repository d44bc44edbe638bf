"""Implementations of the ``bharnet`` subcommands, imported lazily by ``bharnet_ros.cli``.

Each module exposes ``add_arguments(parser)`` and ``run(args) -> int``.
"""


class UsageError(Exception):
    """A problem with the user's input; the CLI prints it as one line and exits non-zero.

    The message says what is wrong and how to fix it.
    """
