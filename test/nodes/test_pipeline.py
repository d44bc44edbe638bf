"""The whole graph as `bharnet run` starts it: real video -> pose (MediaPipe) -> recognizer -> action."""

from __future__ import annotations

import threading

import pytest
import yaml
from rclpy.node import Node

from bharnet_ros.core.paths import share_file
from bharnet_ros.msg import Action, PersonSkeletonArray
from bharnet_ros.nodes.graph import ACTION_TOPIC, SKELETON_TOPIC, GraphOptions
from bharnet_ros.nodes.runner import running_graph


@pytest.fixture
def fast_params(tmp_path) -> str:
    """The shipped YAML with shorter windows, so a 4 s clip yields several decisions."""
    params = yaml.safe_load(share_file("config/recognize.yaml").read_text())
    params["/**/video_source"]["ros__parameters"].update(loop=True, max_frames=200)
    params["/**/recognizer"]["ros__parameters"].update(
        min_seconds=0.4, stride_seconds=0.13, window_seconds=0.8
    )
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return str(path)


def test_video_to_actions_through_the_running_graph(ros, wait, shared_file, fast_params, request):
    tiny_model = request.getfixturevalue("tiny_model")
    options = GraphOptions(
        camera_topic="/test_camera/image_raw",
        video=str(shared_file("videos/sign_dobrii_den.mp4")),
        model=str(tiny_model),
        params_file=fast_params,
    )
    probe = ros.add(Node, "probe")
    skeleton_stamps: set[tuple[int, int]] = set()
    probe.create_subscription(
        PersonSkeletonArray, "/" + SKELETON_TOPIC, lambda m: skeleton_stamps.add(stamp(m)), 300
    )  # reliable, as the recognizer takes them: the probe hears every frame the pose node answered
    actions: list[Action] = []
    probe.create_subscription(Action, "/" + ACTION_TOPIC, actions.append, 300)
    with running_graph(options) as graph:
        assert [node.get_name() for node in graph.nodes] == ["video_source", "pose", "recognizer"]
        assert wait(lambda: len(actions) >= 3, timeout=60)
    assert not graph.ok()  # the graph's own context is shut down, after its threads were joined
    assert not [t.name for t in threading.enumerate() if t.name in ("video_source", "pose", "recognizer")]
    stamps = [stamp(a) for a in actions]
    judged = "actions are stamped with the camera frames they judged"
    assert wait(lambda: set(stamps) <= skeleton_stamps), judged
    assert stamps == sorted(stamps)
    assert {a.header.frame_id for a in actions} == {"camera"}
    assert all(a.person_id == 0 and a.label for a in actions)


def stamp(msg) -> tuple[int, int]:
    """A message's header stamp as (sec, nanosec)."""
    return msg.header.stamp.sec, msg.header.stamp.nanosec
