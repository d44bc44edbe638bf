"""Camera -> pose -> recognizer -> /bharnet/action.

    ros2 launch bharnet_ros recognize.launch.py camera_topic:=/camera/color/image_raw
    ros2 launch bharnet_ros recognize.launch.py video:=/path/to/clip.mp4 overlay:=true
    ros2 launch bharnet_ros recognize.launch.py backend:=multi namespace:=robot1

The nodes, parameters and remappings come from bharnet_ros.nodes.graph, which `bharnet run`
(the same graph in one process, for machines without ros2 launch) uses too.
"""

from launch_ros.actions import LifecycleNode, Node

from bharnet_ros.core.inference import DEVICES
from bharnet_ros.nodes.graph import BACKENDS, PACKAGE, GraphOptions, describe_graph, launch_flag
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction

ARGUMENTS = (
    ("camera_topic", "camera/image_raw", "sensor_msgs/Image topic of the camera (relative: under namespace)"),
    ("video", "", "play this video file (or camera number) through the video source node instead"),
    (
        "model",
        "",
        "ONNX model; empty = the one in params_file (the default model in share/bharnet_ros/models)",
    ),
    ("device", "", "ONNX Runtime device: cpu, cuda or auto; empty = the one in params_file"),
    ("backend", "", "pose backend: holistic, hands_pose or multi; empty = the one in params_file"),
    ("params_file", "", "parameters YAML; empty = share/bharnet_ros/config/recognize.yaml"),
    ("overlay", "false", "true: publish the drawn skeleton image on bharnet/overlay; false: as params_file"),
    ("namespace", "", "namespace for all nodes and topics"),
    ("use_sim_time", "false", "true: use /clock (bag replay); false: as params_file"),
    ("autostart", "", "true or false: pose and recognizer activate themselves; empty = as params_file"),
)
# Values ros2 launch refuses before any node starts (instead of a configure error in a node's log).
# The true/false arguments are read as launch's conditions read them (True, 1, ...): launch_flag.
CHOICES = {"device": ["", *DEVICES], "backend": ["", *BACKENDS]}


def options_from_context(context) -> GraphOptions:
    """Launch arguments (strings) -> the typed options the graph description takes."""
    value = {name: context.launch_configurations[name] for name, _, _ in ARGUMENTS}
    return GraphOptions(
        camera_topic=value["camera_topic"],
        video=value["video"],
        model=value["model"],
        device=value["device"],
        backend=value["backend"],
        params_file=value["params_file"],
        overlay=launch_flag("overlay", value["overlay"]) == "true",
        namespace=value["namespace"],
        use_sim_time=launch_flag("use_sim_time", value["use_sim_time"]) == "true",
        autostart=launch_flag("autostart", value["autostart"]),
    )


def launch_nodes(context, *args, **kwargs):
    options = options_from_context(context)
    return [
        (LifecycleNode if spec.lifecycle else Node)(
            package=PACKAGE,
            executable=spec.executable,
            name=spec.name,
            namespace=options.namespace,
            parameters=[options.resolved_params_file(), spec.parameters],
            remappings=list(spec.remappings),
            output="screen",
            emulate_tty=True,
        )
        for spec in describe_graph(options)
    ]


def generate_launch_description() -> LaunchDescription:
    declared = [
        DeclareLaunchArgument(name, default_value=default, description=text, choices=CHOICES.get(name))
        for name, default, text in ARGUMENTS
    ]
    return LaunchDescription([*declared, OpaqueFunction(function=launch_nodes)])
