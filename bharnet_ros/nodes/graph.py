"""The one description of the recognition graph, used by the launch file and by ``bharnet run``.

Both start exactly these nodes with these parameters and remappings, so the two ways of running
cannot drift apart (a test compares them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bharnet_ros.core.paths import PACKAGE as PACKAGE  # re-exported for launch/recognize.launch.py
from bharnet_ros.core.paths import share_file

SKELETON_TOPIC = "bharnet/skeletons"  # relative names: a namespace moves the whole graph
ACTION_TOPIC = "bharnet/action"
LABELS_TOPIC = "bharnet/labels"
OVERLAY_TOPIC = "bharnet/overlay"
BACKENDS = ("holistic", "hands_pose", "multi")  # the pose node's backend (core.pose_stage.ALL_BACKENDS)
FLAG_WORDS = ("true", "false")  # the words of a true/false launch argument (autostart, overlay, ...)


def launch_flag(name: str, text: str) -> str:
    """A true/false launch argument as ``"true"``, ``"false"`` or ``""`` (not given), read as
    launch's own conditions read one: true or 1, false or 0, in any case (a parent launch file
    passes ``use_sim_time:=True``); ValueError naming the argument otherwise."""
    word = text.strip().lower()
    if word in ("", *FLAG_WORDS):
        return word
    if word in ("1", "0"):
        return {"1": "true", "0": "false"}[word]
    raise ValueError(f"launch argument {name}:={text!r} is not true or false (nor 1 or 0)")


@dataclass
class GraphOptions:
    """The launch arguments; the same names are ``bharnet run`` options."""

    camera_topic: str = "camera/image_raw"  # relative: a namespace moves it with the graph
    video: str = ""  # a file or camera number: also start the video source node
    model: str = ""  # ONNX file; empty = the default model shipped in models/
    device: str = ""  # ONNX Runtime provider: cpu, cuda or auto; empty = the parameters file's
    backend: str = ""  # the pose node's MediaPipe backend; empty = the one in the parameters file
    params_file: str = ""  # empty = config/recognize.yaml
    overlay: bool = False  # publish the drawn skeleton image; False = as the parameters file says
    namespace: str = ""
    use_sim_time: bool = False
    autostart: str = ""  # true: the lifecycle nodes activate themselves; empty = the parameters file's

    def resolved_params_file(self) -> str:
        return self.params_file or str(share_file("config/recognize.yaml"))


@dataclass(frozen=True)
class NodeSpec:
    """One node of the graph: where its code is, its name, parameter overrides and remappings."""

    executable: str  # in lib/bharnet_ros/, for ros2 run and launch_ros
    module: str  # Python module with ``node_class``, for in-process runs
    node_class: str
    name: str
    parameters: dict[str, Any] = field(default_factory=dict)
    remappings: tuple[tuple[str, str], ...] = ()
    lifecycle: bool = False  # a managed node, which the launch file starts as a LifecycleNode


def camera_topic_problem(topic: str) -> str:
    """Why the image topics of the nodes cannot be remapped to ``topic`` ("" when they can)."""
    if "{" in topic or "}" in topic:  # valid in a topic name, not as a remapping's target
        return "substitutions such as {node} cannot be remapped to"
    if topic.startswith("~"):
        return (
            "a private name (~) is another topic in each node, so the camera and the pose node would not meet"
        )
    return ""


def describe_graph(options: GraphOptions) -> list[NodeSpec]:
    """The nodes for these options, in start order (source, pose, recognizer); ValueError for a
    camera topic the nodes cannot share."""
    if problem := camera_topic_problem(options.camera_topic):
        raise ValueError(
            f"camera_topic {options.camera_topic!r}: {problem}; give a topic such as camera/image_raw"
        )
    common = {"use_sim_time": True} if options.use_sim_time else {}  # false: as the parameters file
    nodes = []
    if options.video:
        nodes.append(
            NodeSpec(
                "video_source_node", "bharnet_ros.nodes.video_source_node", "VideoSourceNode", "video_source",
                {**common, "video": options.video}, (("image_raw", options.camera_topic),),
            )
        )  # fmt: skip
    managed = dict(common)  # the lifecycle nodes: pose and recognizer
    if options.autostart:
        managed["autostart"] = options.autostart == "true"
    pose_parameters = {**managed, "publish_overlay": True} if options.overlay else dict(managed)
    if options.backend:
        pose_parameters["backend"] = options.backend
    nodes.append(
        NodeSpec(
            "pose_node", "bharnet_ros.nodes.pose_node", "PoseNode", "pose",
            pose_parameters,
            (
                ("image_raw", options.camera_topic),
                ("image_raw/compressed", options.camera_topic + "/compressed"),
                ("skeletons", SKELETON_TOPIC),
                ("overlay", OVERLAY_TOPIC),
            ),
            lifecycle=True,
        )
    )  # fmt: skip
    recognizer_parameters = {**managed, "device": options.device} if options.device else dict(managed)
    if options.model:
        recognizer_parameters["model"] = options.model
    nodes.append(
        NodeSpec(
            "recognizer_node", "bharnet_ros.nodes.recognizer_node", "RecognizerNode", "recognizer",
            recognizer_parameters,
            (("skeletons", SKELETON_TOPIC), ("action", ACTION_TOPIC), ("labels", LABELS_TOPIC)),
            lifecycle=True,
        )
    )  # fmt: skip
    return nodes


def ros_arguments(spec: NodeSpec, options: GraphOptions) -> list[str]:
    """rcl command-line arguments for an in-process node: the YAML file, overrides, remappings.

    rcl parses the parameters file itself, exactly as it does for a launched process.
    """
    args = ["--ros-args", "--params-file", options.resolved_params_file()]
    for name, value in spec.parameters.items():
        args += ["-p", f"{name}:={_yaml_value(value)}"]
    for source, target in spec.remappings:
        args += ["-r", f"{source}:={target}"]
    return args


def _yaml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):  # YAML single quotes: a quote inside is written twice
        return "'" + value.replace("'", "''") + "'"
    return str(value)
