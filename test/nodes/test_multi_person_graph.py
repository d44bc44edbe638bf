"""Two real people side by side through the whole graph (video source, multi-person pose node,
recognizer with the shipped model): stable ids, each person's own gesture, and swapped sides swap
the answers.

The graph runs on sim time, and the test advances ``/clock`` one video frame (50 ms) at a time,
each step once the pose node has answered the previous frame. The nodes and topics are the real
ones, but no frame is dropped however loaded the machine is, and the stamps keep the clip's own
pace, so the recognizer sees the gestures at their real speed.
"""

from __future__ import annotations

from collections import Counter

import pytest
import yaml
from builtin_interfaces.msg import Time
from rclpy.node import Node
from rosgraph_msgs.msg import Clock

from bharnet_ros.core.compose import compose_pair
from bharnet_ros.core.paths import share_file
from bharnet_ros.msg import Action, PersonSkeletonArray
from bharnet_ros.nodes.graph import ACTION_TOPIC, SKELETON_TOPIC, GraphOptions
from bharnet_ros.nodes.runner import running_graph

# Two HRI clips of gestures the shipped model knows by these names.
GESTURES = {
    "greeting": "hri_gestures/S1/greeting_1_1m_upper.avi",
    "stop": "hri_gestures/S2/stop_1_1m_upper.avi",
}
FRAME_NS = 50_000_000  # the clips' 20 fps
START_S = 1000


@pytest.fixture
def multi_params(tmp_path) -> str:
    params = yaml.safe_load(share_file("config/recognize.yaml").read_text())
    params["/**/video_source"]["ros__parameters"].update(rate=20.0)
    params["/**/pose"]["ros__parameters"].update(backend="multi", num_poses=2)
    # Persons age on the arrival clock: a loaded machine's slow frames must not time them out.
    params["/**/recognizer"]["ros__parameters"].update(person_timeout=30.0)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return str(path)


def play_in_lock_step(graph, clock, skeletons: list, actions: list, wait) -> set[int]:
    """Advance sim time frame by frame, each step once the pose node has published for the last one;
    returns every person id the recognizer held a window for along the way.

    It returns once the recognizer took every person of every skeleton message and the probe got
    every action it published. The ids are read while frames flow, as a robot would see them.
    """
    source, recognizer = graph.node("video_source"), graph.node("recognizer")
    assert wait(lambda: graph.node("pose").inputs and recognizer.inputs, timeout=120)
    assert wait(lambda: clock.get_subscription_count() >= len(graph.nodes)), "every node hears /clock"
    stamp_ns = START_S * 1_000_000_000
    windows: set[int] = set()
    while not source.finished:
        answered = len(skeletons)
        clock.publish(Clock(clock=Time(sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000)))
        assert wait(lambda n=answered: len(skeletons) > n or source.finished, timeout=120), stamp_ns
        with recognizer.swap_lock:
            windows.update(recognizer.recognizer.windows.person_ids)
        stamp_ns += FRAME_NS
    persons = sum(len(msg.persons) for msg in skeletons)
    assert wait(lambda: recognizer.recognizer.windows.stats.frames_pushed >= persons, timeout=120)
    assert wait(lambda: len(actions) >= recognizer.actions_published, timeout=60), "the last actions arrive"
    return windows


@pytest.mark.parametrize(("left", "right"), [("greeting", "stop"), ("stop", "greeting")])
def test_two_people_keep_their_ids_and_get_their_own_gesture(
    left, right, ros, wait, shared_file, multi_params, tmp_path, monkeypatch
):
    monkeypatch.setenv("BHARNET_CACHE_DIR", str(tmp_path / "cache"))
    clip = tmp_path / "pair.mp4"
    frames = compose_pair(shared_file(GESTURES[left]), shared_file(GESTURES[right]), clip)
    options = GraphOptions(
        camera_topic="/pair_camera/image_raw", video=str(clip), params_file=multi_params, use_sim_time=True
    )
    probe = ros.add(Node, "probe")
    clock = probe.create_publisher(Clock, "/clock", 10)
    skeletons: list[PersonSkeletonArray] = []
    actions: list[Action] = []
    probe.create_subscription(PersonSkeletonArray, "/" + SKELETON_TOPIC, skeletons.append, 100)
    probe.create_subscription(Action, "/" + ACTION_TOPIC, actions.append, 100)
    with running_graph(options) as graph:
        windows = play_in_lock_step(graph, clock, skeletons, actions, wait)
    assert len(skeletons) >= frames - 3, "the pose node answered (nearly) every frame"

    sides: dict[str, set[int]] = {"left": set(), "right": set()}
    for msg in skeletons:
        for person in msg.persons:
            nose_x = person.body[0]  # body is row-major (33, 4): x of the nose
            sides["left" if nose_x < 0.5 else "right"].add(person.person_id)
    assert all(len(ids) == 1 for ids in sides.values()), f"one id per person for the whole clip: {sides}"
    (left_id,), (right_id,) = sides["left"], sides["right"]
    assert left_id != right_id
    assert windows == {left_id, right_id}, "the recognizer keeps one window per tracked person"

    for pid, gesture in ((left_id, left), (right_id, right)):
        said = Counter(a.label for a in actions if a.person_id == pid and a.label != "none")
        assert said[gesture] > max((n for label, n in said.items() if label != gesture), default=0), said
