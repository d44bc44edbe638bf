"""Holding a name on this machine for as long as a process runs, with no file behind it.

Replays and test runs each claim a ROS domain of their own this way, so that two of them never
hear each other. A socket bound to a name in Linux's abstract namespace keeps the name while it is
open: a killed process frees it, nothing is left on disk, and no user or permission is involved.
The namespace is per network namespace, as the DDS traffic it keeps apart is.
"""

from __future__ import annotations

import errno
import socket


def hold(name: str) -> socket.socket | None:
    """A socket holding ``name`` (close it to let go), or None where another process holds it."""
    holder = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        holder.bind(f"\0{name}")
    except OSError as err:
        holder.close()
        if err.errno == errno.EADDRINUSE:
            return None
        raise
    return holder
