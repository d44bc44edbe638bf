"""Real rclpy over Fast DDS for node tests: a private context and a spinning executor per test."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import SimpleNamespace

import numpy as np
import pytest
import rclpy
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from rcl_interfaces.msg import SetParametersResult
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter, parameter_value_to_python
from rclpy.parameter_client import AsyncParameterClient
from sensor_msgs.msg import Image

from bharnet_ros.nodes.lifecycle import CallbackErrorCount, spin_through_errors


@pytest.fixture
def ros():
    """``ros.add(node_class, **kwargs)`` starts a node spinning; all is torn down after.

    Each node gets its own single-threaded executor and thread, spun as ``bharnet run`` spins it
    (``spin_through_errors``): a node's callbacks never run concurrently with each other, only with
    other nodes'.
    """
    context = rclpy.Context()
    rclpy.init(context=context)
    spinning: list[tuple[Node, SingleThreadedExecutor, threading.Thread]] = []

    def adopt(node: Node) -> Node:
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        target, args = executor.spin, ()
        if isinstance(node, CallbackErrorCount):  # ours
            target, args = spin_through_errors, (executor, node, lambda: not context.ok())
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        spinning.append((node, executor, thread))
        return node

    def add(node_class: Callable[..., Node], *args, **kwargs) -> Node:
        return adopt(node_class(*args, context=context, **kwargs))

    yield SimpleNamespace(context=context, add=add, adopt=adopt)
    for _, executor, _ in spinning:
        executor.shutdown(timeout_sec=5)
    for _, _, thread in spinning:
        thread.join(timeout=10)  # the callback in hand finishes before its node is destroyed
    for node, _, _ in spinning:
        node.destroy_node()
    rclpy.try_shutdown(context=context)


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Poll until ``predicate()`` holds; False after ``timeout`` seconds (a behaviour bound, not a timing)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def image_message(
    image: np.ndarray, stamp_ns: int, frame_id: str = "camera", encoding: str = "bgr8"
) -> Image:
    msg = Image(height=image.shape[0], width=image.shape[1], encoding=encoding, is_bigendian=0)
    msg.step = image.shape[1] * (image.shape[2] if image.ndim == 3 else 1)
    msg.data = image.tobytes()
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    msg.header.frame_id = frame_id
    return msg


@pytest.fixture
def wait():
    return wait_for


@pytest.fixture
def make_image():
    return image_message


class ParameterClient:
    """What ``ros2 param get/set`` does: calls the node's parameter services (not ``set_parameters``)."""

    def __init__(self, probe: Node, node_name: str) -> None:
        self.client = AsyncParameterClient(probe, node_name)
        assert self.client.wait_for_services(timeout_sec=20), f"no parameter services on {node_name}"

    def set(self, **values) -> dict[str, SetParametersResult]:
        """Set each parameter on its own (like ``ros2 param set``); name -> the node's result."""
        future = self.client.set_parameters([Parameter(name, value=v) for name, v in values.items()])
        assert wait_for(future.done), "no answer from set_parameters"
        return dict(zip(values, future.result().results, strict=True))

    def get(self, *names: str) -> dict:
        future = self.client.get_parameters(list(names))
        assert wait_for(future.done), "no answer from get_parameters"
        return {n: parameter_value_to_python(v) for n, v in zip(names, future.result().values, strict=True)}


@pytest.fixture
def parameter_client(ros):
    """``parameter_client("recognizer")``: a parameter client for that node, on its own probe node."""
    probe = ros.add(Node, "parameter_probe")
    return lambda node_name: ParameterClient(probe, node_name)


@pytest.fixture
def held_swap(parameter_client, monkeypatch):
    """``with held_swap(path) as results:`` sets the recognizer's ``model`` to ``path``, as ``ros2
    param set`` would, with the new model's load held until the block ends; then ``results`` holds
    the set's answer."""
    from bharnet_ros.nodes.recognizer_node import RecognizerNode

    @contextmanager
    def hold(model: str) -> Iterator[list]:
        loading, release = threading.Event(), threading.Event()
        load = RecognizerNode._load

        def held_load(self, *args, **kwargs):
            loading.set()
            assert release.wait(timeout=120)
            return load(self, *args, **kwargs)

        monkeypatch.setattr(RecognizerNode, "_load", held_load)
        results: list = []
        swap = threading.Thread(
            target=lambda: results.append(parameter_client("recognizer").set(model=model))
        )
        swap.start()
        try:
            assert loading.wait(timeout=60)
            yield results
        finally:
            release.set()
            swap.join(timeout=120)

    return hold


TRANSITIONS = {
    "configure": Transition.TRANSITION_CONFIGURE,
    "cleanup": Transition.TRANSITION_CLEANUP,
    "activate": Transition.TRANSITION_ACTIVATE,
    "deactivate": Transition.TRANSITION_DEACTIVATE,
    "shutdown": Transition.TRANSITION_UNCONFIGURED_SHUTDOWN,  # from unconfigured
}


class LifecycleClient:
    """What ``ros2 lifecycle set`` does: calls the node's ``change_state`` service."""

    def __init__(self, probe: Node, node_name: str) -> None:
        self.client = probe.create_client(ChangeState, f"/{node_name}/change_state")
        assert self.client.wait_for_service(timeout_sec=20), f"no lifecycle services on {node_name}"

    def set(self, *transitions: str) -> bool:
        """Run the transitions in order; True when every one succeeded."""
        for transition in transitions:
            request = ChangeState.Request(transition=Transition(id=TRANSITIONS[transition]))
            future = self.client.call_async(request)
            assert wait_for(future.done, timeout=60), f"no answer to {transition}"
            if not future.result().success:
                return False
        return True


@pytest.fixture
def lifecycle(ros):
    """``lifecycle("recognizer").set("deactivate", "cleanup")``: lifecycle transitions over the service."""
    probe = ros.add(Node, "lifecycle_probe")
    return lambda node_name: LifecycleClient(probe, node_name)
