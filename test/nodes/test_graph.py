"""One graph description: the YAML, the launch file and `bharnet run` must agree with it."""

from __future__ import annotations

import importlib

import pytest
import yaml

from bharnet_ros.core.paths import CHECKOUT
from bharnet_ros.nodes import pose_node, recognizer_node, video_source_node
from bharnet_ros.nodes.graph import GraphOptions, describe_graph, ros_arguments
from bharnet_ros.nodes.parameters import defaults

NODE_PARAMS = {
    "video_source": video_source_node.PARAMS,
    "pose": pose_node.PARAMS,
    "recognizer": recognizer_node.PARAMS,
}


def test_yaml_names_exactly_the_declared_parameters():
    config = yaml.safe_load((CHECKOUT / "config" / "recognize.yaml").read_text())
    for node, params in NODE_PARAMS.items():
        in_yaml = set(config[f"/**/{node}"]["ros__parameters"])
        declared = set(defaults(params)) - {"video"}  # the video comes from the launch argument
        assert in_yaml <= declared, f"{node}: unknown keys {in_yaml - declared}"
        assert declared - in_yaml <= {"video"}, f"{node}: undocumented {declared - in_yaml}"


def test_camera_graph_and_video_graph():
    camera = describe_graph(GraphOptions(camera_topic="/cam/image"))
    assert [n.name for n in camera] == ["pose", "recognizer"]
    assert ("image_raw", "/cam/image") in camera[0].remappings
    video = describe_graph(GraphOptions(video="clip.mp4", model="m.onnx", device="cuda"))
    assert [n.name for n in video] == ["video_source", "pose", "recognizer"]
    assert video[0].parameters["video"] == "clip.mp4"
    assert video[2].parameters["model"] == "m.onnx"
    assert video[2].parameters["device"] == "cuda"


def test_every_node_spec_points_at_a_real_class():
    for spec in describe_graph(GraphOptions(video="x.mp4")):
        module = importlib.import_module(spec.module)
        assert hasattr(module, spec.node_class)
        assert (CHECKOUT / "scripts" / spec.executable).is_file()


def test_ros_arguments_carry_yaml_overrides_and_remappings():
    options = GraphOptions(overlay=True, use_sim_time=True)
    pose = describe_graph(options)[0]
    args = ros_arguments(pose, options)
    assert args[:3] == ["--ros-args", "--params-file", options.resolved_params_file()]
    assert "publish_overlay:=true" in args
    assert "use_sim_time:=true" in args
    assert "skeletons:=bharnet/skeletons" in args


def test_launch_file_starts_the_same_nodes_as_bharnet_run():
    pytest.importorskip("launch_ros.actions")  # only with a real ROS 2 install
    from launch import LaunchContext
    from launch.actions import DeclareLaunchArgument

    spec = importlib.util.spec_from_file_location(
        "recognize_launch", CHECKOUT / "launch" / "recognize.launch.py"
    )
    launch_file = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(launch_file)
    description = launch_file.generate_launch_description()
    context = LaunchContext()
    for entity in description.entities:
        if isinstance(entity, DeclareLaunchArgument):
            context.launch_configurations[entity.name] = (
                "/v.mp4" if entity.name == "video" else entity.default_value[0].text
            )
    nodes = launch_file.launch_nodes(context)
    expected = describe_graph(launch_file.options_from_context(context))
    assert [n.node_executable for n in nodes] == [s.executable for s in expected]
