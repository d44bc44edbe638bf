"""What every bharnet lifecycle node shares: autostart, guarded publishing and a spin entry point."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from bharnet_ros.nodes.environment import use_default_dds_profile


class ManagedNode(LifecycleNode):
    """A lifecycle node that can bring itself up (``autostart``) and never dies on a publish error.

    Configure loads what may fail (models) and reports failure by returning FAILURE, so the node
    stays up, inspectable and reconfigurable; activate creates the subscriptions.
    """

    def __init__(self, name: str, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.publish_failures = 0
        self.subscription: Any = None  # one subscription, or a list (synchronised inputs)
        self._autostart_timer = None

    def release(self) -> None:
        """Free what configure created; subclasses extend it. Called by cleanup and shutdown."""
        self.unsubscribe()

    def unsubscribe(self) -> None:
        """Drop the input subscription(s) (message_filters objects hold theirs and are just dropped)."""
        subscriptions = self.subscription if isinstance(self.subscription, list) else [self.subscription]
        for subscription in subscriptions:
            if hasattr(subscription, "handle"):
                self.destroy_subscription(subscription)
        self.subscription = None

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.unsubscribe()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.release()
        return TransitionCallbackReturn.SUCCESS

    def start_automatically(self) -> None:
        """Configure and activate once the executor spins (what a lifecycle manager would do)."""
        self._autostart_timer = self.create_timer(0.0, self._autostart)

    def _autostart(self) -> None:
        self.destroy_timer(self._autostart_timer)
        if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()

    def safe_publish(self, publisher: Any, msg: Any) -> bool:
        """Publish, counting and logging (throttled) instead of raising when the middleware refuses."""
        try:
            publisher.publish(msg)
        except Exception as err:  # rclpy raises RCLError subclasses, under overload too
            self.publish_failures += 1
            self.get_logger().warning(
                f"publish on {publisher.topic_name} failed: {err}", throttle_duration_sec=5.0
            )
            return False
        return True


def spin_node(make_node: Callable[[], Any], args: list[str] | None = None) -> int:
    """Entry point body for ``ros2 run``: DDS profile, init, spin until Ctrl-C, clean shutdown."""
    use_default_dds_profile()
    rclpy.init(args=args)
    node = None
    try:
        node = make_node()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (ValueError, FileNotFoundError) as err:  # bad parameters or input: one line, non-zero exit
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0
