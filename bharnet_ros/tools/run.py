"""``bharnet run``: start the recognition graph in one process (same graph as the launch file)."""

from __future__ import annotations

import argparse
from dataclasses import fields

from bharnet_ros.tools import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from bharnet_ros.nodes.graph import GraphOptions

    defaults = GraphOptions()
    help_text = {
        "camera_topic": "sensor_msgs/Image topic of the camera",
        "video": "play this video file (or camera number) through the video source node instead",
        "model": "ONNX model (default: the model shipped in models/)",
        "device": "ONNX Runtime device: cpu, cuda or auto",
        "backend": "pose backend: holistic, hands_pose or multi; empty = the one in the parameters file",
        "params_file": "parameters YAML (default: config/recognize.yaml)",
        "overlay": "publish the drawn skeleton image on bharnet/overlay",
        "namespace": "namespace for all nodes and topics",
        "use_sim_time": "use /clock (bag replay)",
    }
    for option in fields(GraphOptions):
        flag = "--" + option.name.replace("_", "-")
        default = getattr(defaults, option.name)
        if isinstance(default, bool):
            parser.add_argument(flag, action="store_true", help=help_text[option.name])
        else:
            parser.add_argument(
                flag, default=default, help=f"{help_text[option.name]} (default: {default!r})"
            )
    parser.add_argument(
        "--duration", type=float, default=0.0, help="stop after this many seconds (0: Ctrl-C)"
    )


def run(args: argparse.Namespace) -> int:
    from bharnet_ros.nodes.graph import GraphOptions
    from bharnet_ros.nodes.runner import run_graph

    options = GraphOptions(**{f.name: getattr(args, f.name) for f in fields(GraphOptions)})
    if options.device not in ("cpu", "cuda", "auto"):
        raise UsageError(f"--device {options.device!r} is not one of cpu, cuda, auto")
    if options.backend and options.backend not in pose_backends():
        raise UsageError(f"--backend {options.backend!r} is not one of {', '.join(pose_backends())}")
    try:
        options.resolved_params_file()
    except FileNotFoundError as err:
        raise UsageError(str(err)) from None
    return run_graph(options, args.duration)


def pose_backends() -> tuple[str, ...]:
    """The pose node's ``backend`` values (single-person MediaPipe graphs and ``multi``)."""
    from bharnet_ros.core.pose_stage import ALL_BACKENDS

    return tuple(ALL_BACKENDS)
