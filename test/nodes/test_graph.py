"""One graph description: the YAML, the launch file and `bharnet run` must agree with it."""

from __future__ import annotations

import argparse
import importlib
import re
import sys
import types

import pytest
import yaml

from bharnet_ros.core.paths import CHECKOUT
from bharnet_ros.nodes import pose_node, recognizer_node, video_source_node
from bharnet_ros.nodes.graph import GraphOptions, describe_graph, launch_flag, ros_arguments
from bharnet_ros.nodes.runner import create_node
from bharnet_ros.tools import UsageError, run

NODE_PARAMS = {
    "video_source": video_source_node.PARAMS,
    "pose": pose_node.PARAMS,
    "recognizer": recognizer_node.PARAMS,
}


def test_yaml_lists_exactly_the_declared_parameters_and_defaults():
    """A node run without the parameters file behaves as the file says."""
    config = yaml.safe_load((CHECKOUT / "config" / "recognize.yaml").read_text())
    for node, params in NODE_PARAMS.items():
        in_yaml = config[f"/**/{node}"]["ros__parameters"]
        declared = {p.name: p.default for p in params if p.name != "video"}  # from the launch argument
        assert set(in_yaml) <= set(declared), f"{node}: unknown keys {set(in_yaml) - set(declared)}"
        assert set(declared) <= set(in_yaml), f"{node}: undocumented {set(declared) - set(in_yaml)}"
        differing = {k: (in_yaml[k], v) for k, v in declared.items() if in_yaml[k] != v}
        assert not differing, f"{node}: the file and the declarations differ (file, code): {differing}"


def test_camera_graph_and_video_graph():
    camera = describe_graph(GraphOptions(camera_topic="/cam/image"))
    assert [n.name for n in camera] == ["pose", "recognizer"]
    assert ("image_raw", "/cam/image") in camera[0].remappings
    video = describe_graph(GraphOptions(video="clip.mp4", model="m.onnx", device="cuda"))
    assert [n.name for n in video] == ["video_source", "pose", "recognizer"]
    assert video[0].parameters["video"] == "clip.mp4"
    assert video[2].parameters["model"] == "m.onnx"
    assert video[2].parameters["device"] == "cuda"


def test_default_camera_topic_is_relative_so_a_namespace_moves_it():
    pose = describe_graph(GraphOptions(namespace="robot1"))[0]
    assert ("image_raw", "camera/image_raw") in pose.remappings
    assert ("image_raw/compressed", "camera/image_raw/compressed") in pose.remappings


@pytest.mark.parametrize(
    ("topic", "message"), [("~/image", "a private name"), ("{node}/image", "substitutions")]
)
def test_a_camera_topic_the_nodes_cannot_share_is_refused_for_the_launch_file_too(topic, message):
    """The launch file checks nothing itself: each node would resolve ~/image to a topic of its own."""
    with pytest.raises(ValueError, match=f"camera_topic '{re.escape(topic)}': {message}"):
        describe_graph(GraphOptions(camera_topic=topic, video="clip.mp4"))


def test_backend_overrides_the_pose_parameter_only_when_given():
    assert "backend" not in describe_graph(GraphOptions())[0].parameters  # the YAML's value stays
    pose, recognizer = describe_graph(GraphOptions(backend="multi"))
    assert pose.parameters["backend"] == "multi"
    assert "backend" not in recognizer.parameters
    assert "backend:='multi'" in ros_arguments(pose, GraphOptions(backend="multi"))


def test_device_and_overlay_are_the_parameters_files_unless_given():
    pose, recognizer = describe_graph(GraphOptions())
    assert "publish_overlay" not in pose.parameters
    assert "device" not in recognizer.parameters
    pose, recognizer = describe_graph(GraphOptions(overlay=True, device="auto"))
    assert pose.parameters["publish_overlay"] is True
    assert recognizer.parameters["device"] == "auto"


def test_autostart_is_the_parameters_files_unless_given_and_only_for_lifecycle_nodes():
    assert all("autostart" not in spec.parameters for spec in describe_graph(GraphOptions(video="x.mp4")))
    source, pose, recognizer = describe_graph(GraphOptions(video="x.mp4", autostart="false"))
    assert "autostart" not in source.parameters  # the video source is a plain node
    assert pose.parameters["autostart"] is recognizer.parameters["autostart"] is False
    assert "autostart:=false" in ros_arguments(recognizer, GraphOptions(autostart="false"))
    assert describe_graph(GraphOptions(autostart="true"))[1].parameters["autostart"] is True


def test_a_node_started_with_autostart_false_waits_for_its_configure_call(ros, lifecycle):
    """What a lifecycle manager needs: the node comes up unconfigured, and configure is its call."""
    options = GraphOptions(autostart="false")
    spec = next(spec for spec in describe_graph(options) if spec.name == "recognizer")
    node = ros.adopt(create_node(spec, options, ros.context))
    assert node.get_parameter("autostart").value is False
    assert node._state_machine.current_state[1] == "unconfigured"
    assert lifecycle("recognizer").set("configure")  # refused had the node configured itself
    assert node._state_machine.current_state[1] == "inactive"


def test_bharnet_run_refuses_an_autostart_other_than_true_or_false():
    parser = argparse.ArgumentParser()
    run.add_arguments(parser)
    assert parser.parse_args(["--autostart", "false"]).autostart == "false"
    with pytest.raises(UsageError, match="--autostart 'no' is not true or false"):
        run.run(parser.parse_args(["--autostart", "no"]))
    for word, read in (("True", "true"), ("1", "true"), ("FALSE", "false"), ("0", "false")):
        options = GraphOptions(autostart=word)  # as the launch argument takes them; `run` refused them
        run.check_options(options)
        assert options.autostart == read


def test_a_path_with_a_quote_reaches_the_node_as_it_is(ros, tmp_path):
    model = str(tmp_path / "O'Neil's model.onnx")  # rcl parsed the quote as the value's end
    options = GraphOptions(model=model)
    spec = next(spec for spec in describe_graph(options) if spec.name == "recognizer")
    node = ros.adopt(create_node(spec, options, ros.context))
    assert node.get_parameter("model").value == model


def test_bharnet_run_refuses_an_unknown_backend():
    parser = argparse.ArgumentParser()
    run.add_arguments(parser)
    assert parser.parse_args(["--backend", "multi"]).backend == "multi"
    assert {"holistic", "hands_pose", "multi"} <= set(run.pose_backends())
    with pytest.raises(UsageError, match="--backend 'mediapipe'"):
        run.run(parser.parse_args(["--backend", "mediapipe"]))


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


def stand_in_launch_modules() -> dict[str, types.ModuleType]:
    """The part of ``launch`` and ``launch_ros`` our launch file uses, for machines without ROS.

    It records what the launch file asks for, under the real API's names (``entities``,
    ``launch_configurations``, ``default_value[0].text``, ``node_executable``, ...). Where the real
    packages are installed the test uses them instead.
    """
    launch, actions = types.ModuleType("launch"), types.ModuleType("launch.actions")
    launch_ros, ros_actions = types.ModuleType("launch_ros"), types.ModuleType("launch_ros.actions")

    class LaunchDescription:
        def __init__(self, entities):
            self.entities = list(entities)

    class LaunchContext:
        def __init__(self):
            self.launch_configurations = {}

    class DeclareLaunchArgument:  # launch.actions.DeclareLaunchArgument(name, *, default_value, ...)
        def __init__(self, name, *, default_value=None, description=None, choices=None):
            assert all(isinstance(text, str) for text in (name, default_value, description))
            assert choices is None or default_value in choices  # launch refuses it otherwise
            self.choices = choices
            self.name, self.description = name, description
            self.default_value = [types.SimpleNamespace(text=default_value)]

    class OpaqueFunction:  # launch.actions.OpaqueFunction(*, function, args=None, kwargs=None)
        def __init__(self, *, function, args=None, kwargs=None):
            assert callable(function)
            self.function = function

    class Node:  # launch_ros.actions.Node, with the ExecuteProcess options our file passes
        def __init__(
            self, *, executable, package=None, name=None, namespace=None, exec_name=None,
            parameters=None, remappings=None, ros_arguments=None, arguments=None,
            output="log", emulate_tty=False,
        ):  # fmt: skip
            assert output in ("log", "screen", "both", "own_log")
            assert isinstance(emulate_tty, bool)
            assert all(isinstance(p, str | dict) for p in parameters or [])
            assert all(isinstance(a, str) and isinstance(b, str) for a, b in remappings or [])
            self.node_package, self.node_executable, self.node_name = package, executable, name
            self.namespace, self.parameters, self.remappings = namespace, parameters, remappings

    class LifecycleNode(Node):  # launch_ros.actions.LifecycleNode(*, name, namespace, **node_kwargs)
        def __init__(self, *, name, namespace, **kwargs):
            assert isinstance(name, str)
            assert isinstance(namespace, str)
            super().__init__(name=name, namespace=namespace, **kwargs)

    launch.LaunchDescription, launch.LaunchContext, launch.actions = LaunchDescription, LaunchContext, actions
    actions.DeclareLaunchArgument, actions.OpaqueFunction = DeclareLaunchArgument, OpaqueFunction
    ros_actions.Node, ros_actions.LifecycleNode, launch_ros.actions = Node, LifecycleNode, ros_actions
    return {
        "launch": launch,
        "launch.actions": actions,
        "launch_ros": launch_ros,
        "launch_ros.actions": ros_actions,
    }


@pytest.fixture
def launch_api(monkeypatch):
    """The real launch packages where ROS 2 is installed, else the stand-in (the edge, not the test)."""
    try:
        importlib.import_module("launch_ros.actions")
    except ImportError:
        for name, module in stand_in_launch_modules().items():
            monkeypatch.setitem(sys.modules, name, module)
    return importlib.import_module("launch")


def test_launch_file_starts_the_same_nodes_as_bharnet_run(launch_api):
    from launch.actions import DeclareLaunchArgument

    spec = importlib.util.spec_from_file_location(
        "recognize_launch", CHECKOUT / "launch" / "recognize.launch.py"
    )
    launch_file = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(launch_file)
    description = launch_file.generate_launch_description()
    declared = [e for e in description.entities if isinstance(e, DeclareLaunchArgument)]
    assert [e.name for e in declared] == [name for name, _, _ in launch_file.ARGUMENTS]
    context = launch_api.LaunchContext()
    for entity in declared:
        context.launch_configurations[entity.name] = (
            "/v.mp4" if entity.name == "video" else entity.default_value[0].text
        )
    context.launch_configurations["overlay"] = "True"  # as a parent launch file may pass it
    context.launch_configurations["backend"] = "multi"
    context.launch_configurations["autostart"] = "0"
    nodes = launch_file.launch_nodes(context)
    options = launch_file.options_from_context(context)
    assert options.overlay
    assert options.autostart == "false"
    lifecycle = [type(n).__name__ == "LifecycleNode" for n in nodes]
    assert lifecycle == [False, True, True]  # the video source is a plain node
    assert (options.video, options.camera_topic, options.backend) == ("/v.mp4", "camera/image_raw", "multi")
    expected = describe_graph(options)
    assert [n.node_executable for n in nodes] == [s.executable for s in expected]
    assert expected[1].parameters["backend"] == "multi"  # the pose node, after the video source


def test_launch_choices_are_the_nodes_own(launch_api):
    from bharnet_ros.core.pose_stage import ALL_BACKENDS
    from bharnet_ros.nodes.graph import BACKENDS

    assert BACKENDS == ALL_BACKENDS  # graph.py stays free of MediaPipe and OpenCV imports
    spec = importlib.util.spec_from_file_location(
        "recognize_launch", CHECKOUT / "launch" / "recognize.launch.py"
    )
    launch_file = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(launch_file)
    declared = {
        e.name: e.choices for e in launch_file.generate_launch_description().entities if hasattr(e, "choices")
    }
    device = next(p for p in recognizer_node.PARAMS if p.name == "device")
    assert declared["device"] == ["", *device.choices]
    assert declared["backend"] == ["", *ALL_BACKENDS]
    assert declared["overlay"] is declared["use_sim_time"] is declared["autostart"] is None  # launch_flag


@pytest.mark.parametrize(
    ("text", "flag"),
    [("true", "true"), ("True", "true"), ("1", "true"), ("FALSE", "false"), ("0", "false"), ("", "")],
)
def test_true_false_launch_arguments_read_as_launch_conditions_read_them(text, flag):
    assert launch_flag("use_sim_time", text) == flag


def test_a_launch_flag_that_is_neither_true_nor_false_names_the_argument():
    with pytest.raises(ValueError, match="launch argument overlay:='yes' is not true or false"):
        launch_flag("overlay", "yes")


def test_use_sim_time_false_leaves_the_parameters_file_its_say():
    specs = describe_graph(GraphOptions(video="/v.mp4"))
    assert all("use_sim_time" not in spec.parameters for spec in specs)
    specs = describe_graph(GraphOptions(video="/v.mp4", use_sim_time=True))
    assert all(spec.parameters["use_sim_time"] is True for spec in specs)
