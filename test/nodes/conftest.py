"""Real rclpy over Fast DDS for node tests: a private context and a spinning executor per test."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import SimpleNamespace

import numpy as np
import pytest
import rclpy
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import Image


@pytest.fixture
def ros():
    """``ros.add(node_class, **kwargs)`` starts a node on a spinning executor; all is torn down after."""
    context = rclpy.Context()
    rclpy.init(context=context)
    executor = MultiThreadedExecutor(context=context)
    nodes: list[Node] = []

    def add(node_class: Callable[..., Node], *args, **kwargs) -> Node:
        node = node_class(*args, context=context, **kwargs)
        nodes.append(node)
        executor.add_node(node)
        return node

    def adopt(node: Node) -> Node:
        nodes.append(node)
        executor.add_node(node)
        return node

    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    yield SimpleNamespace(context=context, add=add, adopt=adopt, executor=executor)
    executor.shutdown(timeout_sec=5)
    for node in nodes:
        node.destroy_node()
    rclpy.try_shutdown(context=context)
    thread.join(timeout=5)


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
