"""``bharnet run``: start the recognition graph in one process (same graph as the launch file).

Every option is checked before the graph starts (the nodes would otherwise fail seconds later with
a traceback, or run without a model): names, the video (it opens and has a frame) and the model
that the recognizer would load (it loads).
"""

from __future__ import annotations

import argparse
import re
from dataclasses import fields
from typing import Any

from bharnet_ros.tools import UsageError

MAX_DURATION = 7 * 24 * 3600.0  # --duration: a week
# A ROS namespace (rcl's rules): parts of letters, digits and '_' not starting with a digit, no
# empty part, no '/' at the end; relative ones get a leading '/' from rcl.
NAMESPACE = re.compile(r"/?[A-Za-z_][A-Za-z0-9_]*(?:/[A-Za-z_][A-Za-z0-9_]*)*")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from bharnet_ros.nodes.graph import GraphOptions

    defaults = GraphOptions()
    help_text = {
        "camera_topic": "sensor_msgs/Image topic of the camera",
        "video": "play this video file (or camera number) through the video source node instead",
        "model": "ONNX model; empty = the one in the parameters file (else the model shipped in models/)",
        "device": "ONNX Runtime device: cpu, cuda or auto; empty = the one in the parameters file",
        "backend": "pose backend: holistic, hands_pose or multi; empty = the one in the parameters file",
        "params_file": "parameters YAML (default: config/recognize.yaml)",
        "overlay": "publish the drawn skeleton image on bharnet/overlay (else as the parameters file says)",
        "namespace": "namespace for all nodes and topics",
        "use_sim_time": "use /clock (bag replay)",
        "autostart": "true: pose and recognizer configure and activate themselves; false: they wait for "
        "lifecycle transitions; empty = the one in the parameters file",
    }
    for option in fields(GraphOptions):
        flag = "--" + option.name.replace("_", "-")
        default = getattr(defaults, option.name)
        if isinstance(default, bool):
            parser.add_argument(flag, action="store_true", help=help_text[option.name])
        else:
            said = "default" in help_text[option.name] or "empty =" in help_text[option.name]
            suffix = "" if said else f" (default: {default!r})"
            parser.add_argument(flag, default=default, help=help_text[option.name] + suffix)
    parser.add_argument(
        "--duration", type=float, default=0.0, help="stop after this many seconds, at most a week (0: Ctrl-C)"
    )


def run(args: argparse.Namespace) -> int:
    from bharnet_ros.nodes.graph import GraphOptions
    from bharnet_ros.nodes.runner import run_graph
    from bharnet_ros.tools import check_number

    options = GraphOptions(**{f.name: getattr(args, f.name) for f in fields(GraphOptions)})
    check_number("--duration", args.duration, 0.0, MAX_DURATION, "seconds (0: until Ctrl-C)")
    check_options(options)
    return run_graph(options, args.duration)


def check_options(options: Any) -> None:
    """Raise UsageError for the first option the graph would fail on (or, for the model, run without).

    ``options`` is a ``nodes.graph.GraphOptions`` (not imported here: tools load without nodes/).
    """
    from bharnet_ros.core.inference import DEVICES
    from bharnet_ros.nodes.environment import domain_id_problem
    from bharnet_ros.nodes.graph import launch_flag

    if problem := domain_id_problem():
        raise UsageError(problem)
    if options.device and options.device not in DEVICES:
        raise UsageError(f"--device {options.device!r} is not one of {', '.join(DEVICES)}")
    try:  # read as the launch argument reads it: True, 1, FALSE, 0 as well
        options.autostart = launch_flag("autostart", options.autostart)
    except ValueError:
        raise UsageError(f"--autostart {options.autostart!r} is not true or false (nor 1 or 0)") from None
    if options.backend and options.backend not in pose_backends():
        raise UsageError(f"--backend {options.backend!r} is not one of {', '.join(pose_backends())}")
    for option, value in (
        ("--video", options.video),
        ("--model", options.model),
        ("--params-file", options.params_file),
    ):
        if value and not str(value).isprintable():  # rcl reads the value as YAML: a newline becomes a space
            shown = str(value).encode("unicode_escape").decode()
            raise UsageError(
                f"{option} {shown}: the name holds a line break or a control character; rename it"
            )
    try:
        options.resolved_params_file()
    except FileNotFoundError as err:
        raise UsageError(str(err)) from None
    check_names(options.camera_topic, options.namespace)
    if options.video:
        check_video(options.video)
    check_model(options)
    check_file_parameters(options)


# The longest name the graph uses (a parameter service of its longest node name).
LONGEST_NAME = "video_source/set_parameters_atomically"


def check_names(camera_topic: str, namespace: str) -> None:
    """The camera topic and the namespace must be valid ROS names (rcl raises deep inside otherwise)."""
    from bharnet_ros.nodes.graph import camera_topic_problem
    from bharnet_ros.nodes.parameters import topic_name_problem

    if not camera_topic:
        raise UsageError("--camera-topic is empty; give a topic such as camera/image_raw")
    if problem := topic_name_problem(camera_topic):
        raise UsageError(f"--camera-topic {problem}; give a topic such as camera/image_raw")
    if problem := camera_topic_problem(camera_topic):
        raise UsageError(
            f"--camera-topic {camera_topic!r}: {problem}; give the topic name itself, such as "
            "camera/image_raw"
        )
    if namespace and namespace != "/" and not NAMESPACE.fullmatch(namespace):
        raise UsageError(
            f"--namespace {namespace!r} is invalid: use letters, digits and '_' in '/'-separated parts "
            "that do not start with a digit, e.g. robot1 or /lab/robot1"
        )
    within = "/" + namespace.strip("/")
    # rcl limits a whole name to 247 characters: the graph's longest under the namespace, and the
    # camera topic's (with compressed: true the pose node reads its /compressed twin)
    if topic_name_problem(LONGEST_NAME, "node", within):
        raise UsageError(
            f"--namespace is too long: {LONGEST_NAME} under it is no valid name ({len(within)} characters "
            "leave too few for the graph's names); shorten it"
        )
    for name in (camera_topic, f"{camera_topic.rstrip('/')}/compressed"):
        if topic_name_problem(name, "node", within):
            under = f" under --namespace {within}" if within != "/" and not name.startswith("/") else ""
            raise UsageError(
                f"--camera-topic is too long: {name}{under}, which the pose node reads (with compressed: "
                f"true, the /compressed one), is no valid name (rcl takes 247 characters); shorten it"
            )


def check_video(video: str) -> None:
    """The video file must exist, open and have a first frame (the source node reads it seconds
    later); a camera given by its number must open."""
    from bharnet_ros.core.video import VideoError, VideoReader, camera_number, check_camera

    try:
        if (number := camera_number(video)) is not None:
            check_camera(number)
            return
        with VideoReader(video):
            pass
    except (FileNotFoundError, VideoError) as err:
        raise UsageError(f"--video: {err}") from None


def check_model(options: Any) -> None:
    """The model the recognizer will run (``--model``, else the parameters file's, else the shipped
    default) must load: a node without one would only log an error and publish nothing."""
    from bharnet_ros.core.inference import InferenceError
    from bharnet_ros.core.params_file import ParamsFileError, node_parameters, read_params_file
    from bharnet_ros.core.paths import default_model
    from bharnet_ros.core.recognizer import load_window_classifier

    try:
        configured = node_parameters(
            read_params_file(options.resolved_params_file()), "recognizer", options.namespace
        )
    except ParamsFileError as err:
        raise UsageError(f"--params-file: {err}") from None
    try:
        model = options.model or str(configured.get("model") or "") or str(default_model())
        load_window_classifier(model, "cpu")  # the file is checked; the device is the node's business
    except (InferenceError, FileNotFoundError, ValueError) as err:
        where = "--model" if options.model else f"the model of {options.resolved_params_file()}"
        raise UsageError(f"{where}: {err}") from None


def check_file_parameters(options: Any) -> None:
    """The parameters file's values must pass the nodes' own checks (the pose node's ``backend``,
    the recognizer's ``body_topic``, every type and range): the node's configure would refuse the
    value and the graph would run without that node, or rclpy would refuse the node. rclpy lets a
    number just past a bound through at start-up. Values the options override are checked as options."""
    import importlib

    from bharnet_ros.core.params_file import ParamsFileError, node_parameters, read_params_file
    from bharnet_ros.nodes.graph import describe_graph
    from bharnet_ros.nodes.parameters import file_parameters_problem

    path = options.resolved_params_file()
    try:
        data = read_params_file(path)
    except ParamsFileError as err:
        raise UsageError(f"--params-file: {err}") from None
    namespace = "/" + options.namespace.strip("/")
    for spec in describe_graph(options):
        configured = node_parameters(data, spec.name, options.namespace)
        params = importlib.import_module(spec.module).PARAMS
        if problem := file_parameters_problem(params, configured, spec.name, namespace, spec.parameters):
            raise UsageError(f"{path}: the {spec.name} node's {problem}")
        if spec.name == "pose" and (problem := _pose_settings_problem({**configured, **spec.parameters})):
            raise UsageError(f"{path}: the pose node's {problem}")


def _pose_settings_problem(values: dict) -> str:
    """What the pose node's configure would refuse in a combination of its values."""
    from bharnet_ros.core.pose_multi import tracking_confidence_problem

    tracking = values.get("min_tracking_confidence", 0.5)
    if (
        values.get("backend") != "multi"
        or isinstance(tracking, bool)
        or not isinstance(tracking, int | float)
    ):
        return ""  # another type is rclpy's to refuse
    return tracking_confidence_problem(tracking)


def pose_backends() -> tuple[str, ...]:
    """The pose node's ``backend`` values (single-person MediaPipe graphs and ``multi``)."""
    from bharnet_ros.core.pose_stage import ALL_BACKENDS

    return tuple(ALL_BACKENDS)
