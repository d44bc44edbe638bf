"""Process settings around rclpy that every entry point shares: the DDS profile before start, and a
teardown that a second Ctrl-C cannot interrupt."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import uninstall_signal_handlers

from bharnet_ros.core.paths import share_file

FASTDDS_PROFILE_VAR = "FASTDDS_DEFAULT_PROFILES_FILE"  # Fast DDS 3 (Kilted and later)
FASTRTPS_PROFILE_VAR = "FASTRTPS_DEFAULT_PROFILES_FILE"  # Fast DDS 2 (Jazzy and earlier)
FAST_DDS_2_DISTROS = ("humble", "iron", "jazzy")


def use_default_dds_profile(environ: dict[str, str] | None = None) -> str | None:
    """Point Fast DDS at the shipped profile (large shared-memory segment) unless the user chose one.

    Fast DDS 2 (ROS 2 Jazzy) reads FASTRTPS_DEFAULT_PROFILES_FILE and Fast DDS 3 (Kilted) reads
    FASTDDS_DEFAULT_PROFILES_FILE (and warns that the old name is deprecated), so the variable is
    the one the sourced distribution's Fast DDS reads (Kilted's where ``ROS_DISTRO`` is not set, as
    with the PyPI wheels). Must run before ``rclpy.init``. Returns the profile in effect, or None.
    """
    environ = os.environ if environ is None else environ
    for chosen in (FASTDDS_PROFILE_VAR, FASTRTPS_PROFILE_VAR):
        if chosen in environ:
            return environ[chosen]
    fast_dds_2 = environ.get("ROS_DISTRO", "").lower() in FAST_DDS_2_DISTROS
    variable = FASTRTPS_PROFILE_VAR if fast_dds_2 else FASTDDS_PROFILE_VAR
    try:
        environ[variable] = str(share_file("config/fastdds.xml"))
    except FileNotFoundError:
        return None
    return environ[variable]


MOST_DOMAIN_ID = 232  # the largest ROS_DOMAIN_ID Fast DDS's port mapping takes


def domain_id_problem(environ: dict[str, str] | None = None) -> str:
    """What is wrong with ``ROS_DOMAIN_ID`` ("" when it is unset, empty or a usable id): rcl
    raises a traceback for text, and Fast DDS refuses ids past its port range."""
    value = (os.environ if environ is None else environ).get("ROS_DOMAIN_ID", "").strip()
    number = len(value) <= 3 and value.isascii() and value.isdigit()
    if not value or (number and int(value) <= MOST_DOMAIN_ID):
        return ""
    return (
        f"ROS_DOMAIN_ID={value[:40]!r} is not a ROS domain id; set a whole number from 0 to "
        f"{MOST_DOMAIN_ID}, or unset it"
    )


def ignore_further_interrupts() -> None:
    """Ignore SIGINT and SIGTERM from now until the process exits; entry points call this as
    teardown starts.

    ``timeout -s INT`` and a terminal's Ctrl-C signal the whole process group, so a second SIGINT
    often lands while the nodes are being destroyed or the interpreter exits, and would leave a
    KeyboardInterrupt traceback or a death by signal. rclpy's handler is uninstalled first, since
    ``rclpy.shutdown`` would otherwise put Python's handler back in the middle of the teardown.
    Only the main thread may change signal handlers; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})  # one arriving now waits, then is ignored
        uninstall_signal_handlers()
    except KeyboardInterrupt:  # one already on its way when the mask went up
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a supervisor's follow-up: not a death by signal
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


@contextmanager
def private_node(name: str) -> Iterator[tuple[Node, SingleThreadedExecutor]]:
    """One node on its own context and executor (a tool's node beside no graph of ours), torn down after."""
    use_default_dds_profile()
    context = Context()
    rclpy.init(context=context)
    node = Node(name, context=context, use_global_arguments=False)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        yield node, executor
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
