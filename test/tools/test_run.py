"""``bharnet run`` refuses unusable options in one line before the graph starts (no ROS needed), and
values only rclpy can judge in one line when it starts the nodes (a subprocess)."""

from __future__ import annotations

import argparse
import subprocess
import sys

import cv2
import numpy as np
import pytest
import yaml

from bharnet_ros.cli import main
from bharnet_ros.core.paths import CHECKOUT, share_file
from bharnet_ros.nodes.graph import GraphOptions
from bharnet_ros.tools import UsageError, run


def write_clip(path, frames: int) -> str:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    for _ in range(frames):
        writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.release()
    return str(path)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("text_video", "--video: cannot open"),
        ("empty_video", "--video:"),
        ("missing_video", "--video: video not found"),
        ("folder_video", "is not a regular file (a folder or a device)"),
        ("missing_camera", "--video: camera 9999 could not be opened (is it /dev/video9999?)"),
        ("long_number", "--video: video not found: 99999999999999999999999"),
        ("camera_topic", "--camera-topic 'bad topic' is no valid topic name"),
        ("camera_topic_substitution", "--camera-topic '{node}/x': substitutions such as {node} cannot"),
        (
            "camera_topic_private",
            "--camera-topic '~/image': a private name (~) is another topic in each node",
        ),
        ("params_backend", "the pose node's backend must be one of holistic, hands_pose, multi, not 'nope'"),
        ("params_body_topic", "the recognizer node's body_topic 'a b' is no valid topic name"),
        # rclpy lets a float within 1e-6 of a bound through; the recognizer's configure refuses it
        ("params_past_bound", "the recognizer node's smoothing must be from 0.01 to 1, not 1.0000005"),
        ("params_multi_tracking", "the pose node's min_tracking_confidence must be above 0 for the multi"),
        ("namespace", "--namespace 'a b' is invalid"),
        ("namespace_digit", "--namespace 'robot/1a' is invalid"),
        ("namespace_long", "--namespace is too long: video_source/set_parameters_atomically under it"),
        ("namespace_long_service", "--namespace is too long: video_source/set_parameters_atomically"),
        ("namespace_long_topic", "--camera-topic is too long: camera/ccc"),
        (
            "camera_topic_compressed_long",
            "--camera-topic is too long: /aaaa",
        ),  # the pose node failed for good
        ("model", "--model: "),
        ("duration", "--duration nan is out of range"),
        ("newline_video", "--video {tmp}/nl\\nname.avi: the name holds a line break"),
        ("params_wildcard", "the pose node's backend must be one of holistic, hands_pose, multi, not 'nope'"),
    ],
)
def test_unusable_options_are_one_line_before_the_graph_starts(tmp_path, capsys, case, message):
    text = tmp_path / "text.mp4"
    text.write_text("not a video")
    csv = tmp_path / "model.csv"
    csv.write_text("a,b\n")
    backend = params_file(tmp_path / "backend.yaml", "pose", backend="nope")
    body_topic = params_file(tmp_path / "body_topic.yaml", "recognizer", body_topic="a b")
    past_bound = params_file(tmp_path / "past_bound.yaml", "recognizer", smoothing=1.0000005)
    multi = params_file(tmp_path / "multi.yaml", "pose", backend="multi", min_tracking_confidence=0.0)
    wildcard = tmp_path / "wildcard.yaml"
    wildcard.write_text(
        share_file("config/recognize.yaml").read_text() + "/**:\n  ros__parameters:\n    backend: nope\n"
    )
    argv = {
        "text_video": ["--video", str(text)],
        "empty_video": ["--video", write_clip(tmp_path / "zero.avi", 0)],
        "missing_video": ["--video", str(tmp_path / "nope.mp4")],
        "folder_video": ["--video", str(tmp_path)],
        "missing_camera": ["--video", "9999"],
        "long_number": ["--video", "99999999999999999999999"],  # no camera number, a file name
        "camera_topic": ["--camera-topic", "bad topic"],
        "camera_topic_substitution": ["--camera-topic", "{node}/x"],
        "camera_topic_private": ["--camera-topic", "~/image"],
        "params_backend": ["--params-file", backend],
        "params_body_topic": ["--params-file", body_topic],
        "params_past_bound": ["--params-file", past_bound],
        "params_multi_tracking": ["--params-file", multi],
        "namespace": ["--namespace", "a b"],
        "namespace_digit": ["--namespace", "robot/1a"],
        "namespace_long": ["--namespace", "a" * 232],  # rclpy's exception came out as a traceback
        "namespace_long_service": ["--namespace", "a" * 220],
        "namespace_long_topic": ["--namespace", "a" * 180, "--camera-topic", "camera/" + "c" * 80],
        "camera_topic_compressed_long": ["--camera-topic", "/" + "a" * 240],
        "model": ["--model", str(csv)],
        "duration": ["--duration", "nan"],
        "newline_video": ["--video", write_clip(tmp_path / "nl\nname.avi", 3)],  # rcl's YAML read a space
        "params_wildcard": ["--params-file", str(wildcard)],  # rcl applies /** to every node
    }[case]
    assert main(["run", "--duration", "1", *argv]) == 2  # the last --duration counts
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert message.replace("{tmp}", str(tmp_path)) in error


def params_file(path, node: str, **values) -> str:
    """The shipped parameters file with ``values`` set for ``node``."""
    data = yaml.safe_load(share_file("config/recognize.yaml").read_text())
    data[f"/**/{node}"]["ros__parameters"].update(values)
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.mark.parametrize(
    ("node", "values", "message"),
    [
        ("pose", {"num_poses": "two"}, "the pose node's num_poses must be a whole number, not 'two'"),
        ("video_source", {"rate": -5.0}, "the video_source node's rate must be from 0 to 240, not -5.0"),
    ],
    ids=["type", "range"],
)
def test_a_parameters_file_value_rclpy_refuses_is_one_line_and_exit_2(tmp_path, node, values, message):
    """A wrong type and a range are refused by the checks before the nodes start (rclpy's refusal
    of a type while the node was created was a traceback, exit 1)."""
    params = params_file(tmp_path / "params.yaml", node, **values)
    video = write_clip(tmp_path / "clip.avi", 3)
    argv = [sys.executable, "-m", "bharnet_ros.cli", "run", "--duration", "5", "--params-file", params]
    done = subprocess.run([*argv, "--video", video], cwd=CHECKOUT, capture_output=True, text=True, timeout=99)
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, done.stderr
    assert message in errors[0]
    assert "Traceback" not in done.stderr


def test_a_shared_parameters_file_is_read_for_the_graphs_own_namespace(tmp_path, tiny_model):
    """rcl gives /robot2/recognizer's values to that node only: robot1's graph is not judged by them."""
    data = yaml.safe_load(share_file("config/recognize.yaml").read_text())
    data["/robot1/recognizer"] = {"ros__parameters": {"model": str(tiny_model)}}
    data["/robot2/recognizer"] = {"ros__parameters": {"model": str(tmp_path / "missing.onnx")}}
    data["/robot2/pose"] = {"ros__parameters": {"backend": "nope"}}
    path = tmp_path / "robots.yaml"
    path.write_text(yaml.safe_dump(data))
    video = write_clip(tmp_path / "three.avi", 3)
    run.check_options(GraphOptions(video=video, params_file=str(path), namespace="robot1"))
    with pytest.raises(UsageError, match="missing.onnx"):
        run.check_options(GraphOptions(video=video, params_file=str(path), namespace="robot2"))


def test_parameters_file_entries_match_node_names_as_rcl_does():
    from bharnet_ros.core.params_file import node_parameters, set_node_parameters

    data = {
        "/**": {"ros__parameters": {"a": 1}},
        "/**/recognizer": {"ros__parameters": {"b": 1}},
        "recognizer": {"ros__parameters": {"c": 1}},  # the root's
        "/*/recognizer": {"ros__parameters": {"d": 1}},
        "/robot2/recognizer": {"ros__parameters": {"b": 2}},
    }
    assert node_parameters(data, "recognizer") == {"a": 1, "b": 1, "c": 1}
    assert node_parameters(data, "recognizer", "robot1") == {"a": 1, "b": 1, "d": 1}
    assert node_parameters(data, "recognizer", "/robot2") == {"a": 1, "b": 2, "d": 1}
    assert node_parameters(data, "recognizer", "lab/robot2") == {"a": 1, "b": 1}
    set_node_parameters(data, "recognizer", c=3)  # no other entry overrides it, whatever the order
    assert node_parameters(data, "recognizer") == {"a": 1, "b": 1, "c": 3}
    data["/recognizer"] = {"ros__parameters": {"b": 5}}  # a more specific entry after /**/recognizer
    set_node_parameters(data, "recognizer", model="m.onnx")
    assert node_parameters(data, "recognizer") == {"a": 1, "b": 5, "c": 3, "model": "m.onnx"}
    assert list(data)[:2] == ["/**", "/**/recognizer"]  # the entries stay where they were


def test_usable_options_pass_the_checks(tmp_path, tiny_model, monkeypatch):
    options = GraphOptions(
        video=write_clip(tmp_path / "three.avi", 3), model=str(tiny_model), namespace="/lab/robot1"
    )
    run.check_options(options)
    opened = []
    monkeypatch.setattr("bharnet_ros.core.video.check_camera", opened.append)  # the edge: a camera
    run.check_options(GraphOptions(video="0", namespace="robot1"))  # a camera number; the default model
    assert opened == [0]
    parser = argparse.ArgumentParser()
    run.add_arguments(parser)
    assert parser.parse_args(["--duration", "2"]).duration == 2.0


@pytest.mark.parametrize("tracking", ["x", [0.0], True])
def test_a_wrongly_typed_tracking_threshold_is_left_to_rclpy(tracking):
    """The multi check converted the raw YAML value first: a traceback for a string."""
    assert run._pose_settings_problem({"backend": "multi", "min_tracking_confidence": tracking}) == ""
