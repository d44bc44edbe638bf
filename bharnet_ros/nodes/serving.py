"""Messages that keep flowing while a callback waits for slow work.

A node spun by a single-threaded executor runs one callback at a time, so a parameter set that
loads a model for seconds would hold every message back meanwhile. rclpy's MultiThreadedExecutor,
the usual remedy, resubmits callbacks that wait for a free thread in a busy loop in the rclpy we
install (Kilted's 9.1.2; ros2/rclpy#1452, fixed in Rolling's 10.0.4), which held skeleton callbacks
back in our tests.
Instead, the slow work runs in a thread of its own, and the callback that waits for it hands the
messages of the node's input subscriptions to their callbacks, as the executor would have.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from rclpy.context import Context
from rclpy.exceptions import InvalidHandle
from rclpy.subscription import Subscription

POLL_SECONDS = 0.005  # the longest a message waits while no subscription has one
T = TypeVar("T")


def serve_while(
    work: Callable[[], T],
    subscriptions: Sequence[Subscription],
    on_error: Callable[[Exception], None],
    context: Context,
) -> T:
    """``work()``'s result (or its exception), computed in another thread while this one gives each
    message of ``subscriptions`` to its callback. Call it only on the thread that spins their node,
    which then takes no message itself.

    A callback's exception goes to ``on_error``. So does a failure to take a message, or an rclpy
    that cannot be asked for one this way: serving then stops, and the wait goes on plainly. A
    destroyed subscription has nothing to serve, nor has any once ``context`` shuts down.
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as err:  # raised again in the waiting thread
            outcome["error"] = err

    thread = threading.Thread(target=run, name="slow work", daemon=True)
    thread.start()
    serving = list(subscriptions)
    while thread.is_alive():
        try:
            served = [_serve_one(subscription, on_error) for subscription in serving]
        except Exception as err:
            if context.ok():
                on_error(err)
            serving, served = [], []
        if not any(served):
            thread.join(POLL_SECONDS)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _serve_one(subscription: Subscription, on_error: Callable[[Exception], None]) -> bool:
    """Whether a message was waiting on ``subscription`` and went to its callback."""
    message_only = subscription._callback_type is Subscription.CallbackType.MessageOnly  # before a take
    try:
        with subscription.handle:
            taken = subscription.handle.take_message(subscription.msg_type, subscription.raw)
    except InvalidHandle:  # destroyed: nothing to serve
        return False
    if taken is None:
        return False
    try:
        subscription.callback(*(taken[:1] if message_only else taken))
    except Exception as err:
        on_error(err)
    return True
