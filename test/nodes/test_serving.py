"""Slow work in a callback: the node's subscriptions are served meanwhile, over real Fast DDS."""

from __future__ import annotations

import threading
import time

import pytest
from rclpy.node import Node
from std_msgs.msg import String

from bharnet_ros.nodes.serving import serve_while


@pytest.fixture
def topic(ros, wait):
    """A subscriber node that no executor spins (the test serves it) and a publisher node that one does."""
    subscriber = Node("served", context=ros.context)
    publisher = ros.add(Node, "talker").create_publisher(String, "chatter", 10)
    yield subscriber, publisher
    subscriber.destroy_node()


def test_messages_reach_their_callbacks_while_the_work_runs(topic, wait):
    subscriber, publisher = topic
    heard, done = [], threading.Event()
    subscription = subscriber.create_subscription(String, "chatter", lambda msg: heard.append(msg.data), 10)
    assert wait(lambda: publisher.get_subscription_count() > 0)

    def work():
        for i in range(3):
            publisher.publish(String(data=str(i)))
        assert wait(lambda: len(heard) == 3)  # only the waiting thread can have served them
        done.set()
        return "loaded"

    assert serve_while(work, [subscription], on_error=pytest.fail, context=subscriber.context) == "loaded"
    assert done.is_set()
    assert heard == ["0", "1", "2"]


def test_a_callback_with_message_info_gets_it(topic, wait):
    subscriber, publisher = topic
    infos = []
    subscription = subscriber.create_subscription(String, "chatter", lambda msg, info: infos.append(info), 10)
    assert wait(lambda: publisher.get_subscription_count() > 0)

    def work():
        publisher.publish(String(data="x"))
        assert wait(lambda: infos)

    serve_while(work, [subscription], on_error=pytest.fail, context=subscriber.context)
    assert infos[0]["received_timestamp"] > 0


def test_the_works_error_is_raised_and_a_callbacks_goes_to_on_error(topic, wait):
    subscriber, publisher = topic
    errors = []

    def broken(msg):
        raise ValueError("a bad message")

    subscription = subscriber.create_subscription(String, "chatter", broken, 10)
    assert wait(lambda: publisher.get_subscription_count() > 0)

    def work():
        publisher.publish(String(data="x"))
        assert wait(lambda: errors)
        raise OSError("the model file went away")

    with pytest.raises(OSError, match="went away"):
        serve_while(work, [subscription], on_error=errors.append, context=subscriber.context)
    assert isinstance(errors[0], ValueError)


def test_an_rclpy_that_cannot_serve_this_way_leaves_a_plain_wait(topic, wait, monkeypatch):
    """A message is never taken and then dropped: the private API is looked up before a take."""
    subscriber, publisher = topic
    heard, errors = [], []
    subscription = subscriber.create_subscription(String, "chatter", heard.append, 10)
    monkeypatch.delattr(subscription, "_callback_type")  # as an rclpy before Iron lacks it
    assert wait(lambda: publisher.get_subscription_count() > 0)

    def work():
        publisher.publish(String(data="x"))
        time.sleep(0.2)
        return "loaded"

    assert serve_while(work, [subscription], on_error=errors.append, context=subscriber.context) == "loaded"
    assert heard == []
    assert len(errors) == 1
    assert subscription.handle.take_message(String, False) is not None  # still there for the executor
