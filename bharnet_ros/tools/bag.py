"""``bharnet bag``: make rosbag2 recordings and evaluate the recognizer on them against annotations.

* ``record-video VIDEO -o BAG``: a video file as a camera bag (Image or, for jpeg, CompressedImage).
* ``record -o BAG TOPICS...``: record live topics of the running graph (a small ``ros2 bag record``).
* ``info BAG``: topics, types and message counts. A bag without ``metadata.yaml`` (a recording
  that was killed) is reindexed first, as ``ros2 bag reindex`` does (also by ``eval``).
* ``eval BAG --labels FILE --out DIR``: run the recognizer over the bag and score its decisions
  against labelled segments. Deterministic by default (the core pipeline driven by the bag's
  stamps, no ROS); ``--realtime`` replays the bag into the real graph and also measures latency.
  The evaluation itself is ``core/bag_eval.py`` (and ``nodes/bag_eval.py`` for real time); this
  module parses the options, checks the report folder and prints the table.

Formats, metrics and an example report: docs/bags.md.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path
from typing import Any

from bharnet_ros.core.bag import (
    ENCODINGS,
    MAX_RATE,
    MAX_STAMP_SECONDS,
    MIN_RATE,
    STORAGE_SUFFIXES,
    STORAGES,
    VIDEO_START_SECONDS,
    BagError,
    bag_message_counts,
    bag_topics,
    reindex_bag,
    write_video_bag,
)
from bharnet_ros.core.inference import DEVICES
from bharnet_ros.core.labels import shown
from bharnet_ros.core.paths import DEFAULT_MODEL
from bharnet_ros.tools import UsageError, check_number
from bharnet_ros.tools.outputs import (
    check_output_folder,
    named_folder,
    output_option,
    staged_folder,
    terminated_as_interrupt,
)

MAX_RECORD_SECONDS = 7 * 24 * 3600.0  # --duration of `bag record`: a week
MAX_WAIT_SECONDS = 3600.0  # --wait of `bag record`
MOST_FRAME_ID = 1000  # characters of --frame-id, a name that goes into every message
MIN_REPLAY_RATE, MAX_REPLAY_RATE = 0.01, 100.0  # --rate of `bag eval --realtime` and `demo`


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``bag`` actions, each with its own options."""
    actions = parser.add_subparsers(dest="bag_command", metavar="ACTION", required=True)
    _add_record_video(actions.add_parser("record-video", help="store a video file as a camera bag"))
    _add_record(actions.add_parser("record", help="record live topics into a bag (like ros2 bag record)"))
    info = actions.add_parser("info", help="list a bag's topics, types and message counts")
    info.add_argument("bag", type=Path, help="bag folder")
    info.set_defaults(bag_run=run_info)
    _add_eval(actions.add_parser("eval", help="score the recognizer on a bag against labelled segments"))


def run(args: argparse.Namespace) -> int:
    return args.bag_run(args)


# --------------------------------------------------------------------------------------------------
# record-video, record, info
# --------------------------------------------------------------------------------------------------


def _add_record_video(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", type=Path, help="video file")
    parser.add_argument("-o", "--output", type=output_option, required=True, help="new bag folder")
    parser.add_argument(
        "--topic", default=None,
        help="camera topic (default /camera/image_raw; with --encoding jpeg, /camera/image_raw/compressed)",
    )  # fmt: skip
    parser.add_argument(
        "--rate", type=float, default=0.0,
        help=f"restamp at HZ frames/s, {MIN_RATE} to {MAX_RATE:g} (default 0: video time)",
    )  # fmt: skip
    parser.add_argument(
        "--storage", choices=sorted(STORAGES), default="mcap", help="bag storage (default mcap)"
    )
    parser.add_argument("--frame-id", default="camera", help="header frame_id (default camera)")
    parser.add_argument(
        "--encoding", choices=ENCODINGS, default="bgr8",
        help="Image pixel encoding, or jpeg for sensor_msgs/CompressedImage (default bgr8)",
    )  # fmt: skip
    parser.add_argument(
        "--start-time", default=f"{VIDEO_START_SECONDS:g}",
        help=f"stamp of the first frame: seconds since the epoch, or 'now' (default {VIDEO_START_SECONDS:g}: "
        "stamps = that + video time; 0 would read as 'not stamped')",
    )  # fmt: skip
    parser.add_argument("--max-frames", type=int, default=0, help="stop after N frames (default: all)")
    parser.add_argument(
        "--force", action="store_true", help="replace the bag files of an existing BAG (nothing else)"
    )
    parser.set_defaults(bag_run=run_record_video)


def run_record_video(args: argparse.Namespace) -> int:
    """Write the bag and print what it holds."""
    from bharnet_ros.core.video import VideoError
    from bharnet_ros.nodes.parameters import topic_name_problem

    if args.max_frames < 0:
        raise UsageError(f"--max-frames must not be negative, got {args.max_frames}")
    if args.rate != 0:
        check_number("--rate", args.rate, MIN_RATE, MAX_RATE, "frames/s, or 0 for the video's own times")
    if args.topic is None:  # image_transport's names: compressed images live on <base>/compressed
        args.topic = "/camera/image_raw" + ("/compressed" if args.encoding == "jpeg" else "")
    if not args.topic.startswith("/"):
        raise UsageError(f"--topic {args.topic!r} must be an absolute name such as /camera/image_raw")
    if problem := topic_name_problem(args.topic):
        raise UsageError(f"--topic {problem}; use a name such as /camera/image_raw")
    if not (args.frame_id.isprintable() and _utf8(args.frame_id) and len(args.frame_id) <= MOST_FRAME_ID):
        raise UsageError(
            f"--frame-id {shown(args.frame_id)} is not printable UTF-8 text of at most {MOST_FRAME_ID} "
            "characters; give a frame name such as camera_optical"
        )
    start_time = _start_time(args.start_time)
    check_input_file(args.video, "video")
    output = named_folder(args.output)
    suffix = next(s for s, storage in STORAGE_SUFFIXES.items() if storage == args.storage)
    writes = ["metadata.yaml", output.name + suffix]
    check_output_folder(output, [args.video], args.force, "-o", empty_ok=False, writes=writes)
    check_same_storage(output, args.storage)
    check_storage_path(output, args.storage)
    try:
        with staged_folder(output) as staged:
            summary = write_video_bag(
                args.video, staged, args.topic, rate=args.rate, storage=args.storage,
                frame_id=args.frame_id, encoding=args.encoding, start_time=start_time,
                max_frames=args.max_frames,
            )  # fmt: skip
    except (BagError, VideoError) as err:
        raise UsageError(str(err)) from None
    span = (summary.last_stamp - summary.first_stamp) * 1e-9
    print(f"{args.output}: {summary.frames} frames of {summary.msgtype} on {summary.topic}, {span:.2f} s")
    return 0


def check_same_storage(output: Path, storage: str) -> None:
    """--force replaces a bag's files of the same names; a bag of the other storage would stay
    beside the new one (both a .mcap and a .db3), which no reader takes."""
    suffixes = {".mcap": "mcap", ".db3": "sqlite3"}
    others = [p for p in output.glob("*") if suffixes.get(p.suffix, storage) != storage]
    if others:
        found = suffixes[others[0].suffix]
        raise UsageError(
            f"-o {output} holds a bag stored as {found} ({others[0].name}); --force replaces a bag of "
            f"the same storage only: choose another -o, or --storage {found}"
        )


def _utf8(text: str) -> bool:
    """Whether ``text`` encodes as UTF-8 (bytes of a command line that are not become surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _start_time(text: str) -> float:
    """Seconds since the epoch of the first frame: 'now' or a number a ROS time can hold."""
    if text == "now":
        return time.time()
    try:
        seconds = float(text)
    except ValueError:
        raise UsageError(f"--start-time {text!r} is neither seconds since the epoch nor 'now'") from None
    if math.isfinite(seconds) and abs(seconds) <= 5e-10:  # whole nanoseconds: 5e-10 s is 0 too
        raise UsageError(
            f"--start-time {text} is stamp 0 to ROS, which means 'not stamped'; give seconds since "
            "the epoch, or now"
        )
    return check_number(
        "--start-time", seconds, 0.0, MAX_STAMP_SECONDS, "seconds since the epoch (a ROS time, above 0)"
    )


def check_params_file(params_file: str, pose: bool = True) -> None:
    """The graph parameters file (empty: the shipped one) parses and its recognizer values, and
    with ``pose`` (camera bags) its pose values, are ones the nodes take (the deterministic mode has
    no rclpy to refuse a type or range that the real-time mode's nodes would), checked before any work."""
    from bharnet_ros.core.params_file import (
        ParamsFileError,
        read_params_file,
        recognizer_parameters,
        root_parameters,
    )
    from bharnet_ros.nodes import pose_node, recognizer_node
    from bharnet_ros.nodes.parameters import file_parameters_problem

    try:
        data = read_params_file(params_file)
        recognizer_parameters(data)
        for node, module in (("recognizer", recognizer_node), ("pose", pose_node))[: 1 + pose]:
            if problem := file_parameters_problem(module.PARAMS, root_parameters(data, node), node):
                raise ParamsFileError(f"the {node} node's {problem}")
    except ParamsFileError as err:
        raise UsageError(f"--params-file: {err}") from None
    except UnicodeDecodeError:
        raise UsageError(
            f"--params-file {params_file} is not a YAML text file; give a ROS 2 parameters file "
            "such as config/recognize.yaml"
        ) from None


def check_input_file(path: Path, what: str) -> None:
    """The input ``path`` must be an existing file (checked before any output is made)."""
    if not path.exists():
        raise UsageError(f"{what} not found: {path}; check the path")
    if not path.is_file():
        raise UsageError(f"{what} {path} is not a file; give the {what} itself")


def _add_record(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("topics", nargs="+", metavar="TOPIC", help="topics to record, e.g. /bharnet/action")
    parser.add_argument("-o", "--output", type=output_option, required=True, help="new bag folder")
    parser.add_argument(
        "--duration", type=float, default=0.0, help="stop after S seconds, at most a week (default: Ctrl-C)"
    )
    parser.add_argument(
        "--storage", choices=sorted(STORAGES), default="mcap", help="bag storage (default mcap)"
    )
    parser.add_argument(
        "--wait", type=float, default=5.0, help="seconds (at most 3600) to wait for the topics to appear"
    )
    parser.set_defaults(bag_run=run_record)


def run_record(args: argparse.Namespace) -> int:
    """Record until the duration or Ctrl-C, then print the message counts."""
    from bharnet_ros.nodes.bag_io import record_topics
    from bharnet_ros.nodes.parameters import topic_name_problem

    check_number("--duration", args.duration, 0.0, MAX_RECORD_SECONDS, "seconds (0: until Ctrl-C)")
    check_number("--wait", args.wait, 0.0, MAX_WAIT_SECONDS, "seconds")
    for topic in args.topics:  # before waiting --wait seconds for a name no topic can have
        if problem := topic_name_problem(topic):
            raise UsageError(f"{problem}; give topics such as /bharnet/action")
    if os.path.lexists(args.output):  # a dangling link too: the recording would stop at once
        raise UsageError(f"-o {args.output} already exists; a recording always goes into a new bag folder")
    check_output_folder(args.output, option="-o")
    check_storage_path(args.output, args.storage)
    try:
        counts = record_topics(
            args.output, args.topics, duration=args.duration, storage=args.storage, wait=args.wait
        )
    except BagError as err:
        raise UsageError(str(err)) from None
    print(f"{args.output}: " + ", ".join(f"{topic} {count}" for topic, count in counts.items()))
    return 0


def check_storage_path(output: Path, storage: str) -> None:
    """UsageError, before any work, for an output path the storage cannot be written under."""
    from bharnet_ros.core.bag import check_sqlite_path

    if storage == "sqlite3":
        try:
            check_sqlite_path(output)
        except BagError as err:
            raise UsageError(str(err)) from None


def run_info(args: argparse.Namespace) -> int:
    """Print one line per topic (after reindexing a bag that has no metadata.yaml)."""
    try:
        repair_if_unindexed(args.bag)
        topics, counts = bag_topics(args.bag), bag_message_counts(args.bag)
    except BagError as err:
        raise UsageError(str(err)) from None
    for topic, msgtype in sorted(topics.items()):
        print(f"{topic}  {msgtype}  {counts.get(topic, 0)} messages")
    return 0


def repair_if_unindexed(bag: Path) -> None:
    """Rebuild a missing metadata.yaml from the storage files (like ``ros2 bag reindex``) and say so.

    A recording killed with SIGKILL, or a power cut, leaves the storage file without metadata;
    what it stored up to then becomes readable again. The note goes to stdout.
    """
    if bag.is_dir() and not os.path.lexists(bag / "metadata.yaml"):  # a dangling link: not ours to write
        with terminated_as_interrupt():  # a kill removes the temporary copies in the bag, as Ctrl-C does
            note = reindex_bag(bag)
        print(f"{bag}: {note}")


# --------------------------------------------------------------------------------------------------
# eval
# --------------------------------------------------------------------------------------------------


def _add_eval(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", type=Path, help="bag folder")
    parser.add_argument(
        "--labels", type=Path, default=None,
        help="annotation .csv or .yaml (docs/bags.md); without it only decisions and timing are reported",
    )  # fmt: skip
    parser.add_argument("--out", type=output_option, required=True, help="report folder")
    parser.add_argument(
        "--force", action="store_true", help="replace the report files in a non-empty --out (nothing else)"
    )
    parser.add_argument(
        "--model", type=Path, default=None,
        help=f"ONNX model (default: the recognizer's model in --params-file, else {DEFAULT_MODEL})",
    )  # fmt: skip
    parser.add_argument(
        "--topic", default=None,
        help="topic to evaluate (default: the bharnet skeleton topic if present, else the camera topic)",
    )  # fmt: skip
    parser.add_argument("--realtime", action="store_true", help="replay into the live graph and time it")
    parser.add_argument(
        "--rate", type=float, default=1.0,
        help=f"replay speed factor for --realtime, {MIN_REPLAY_RATE} to {MAX_REPLAY_RATE:g} (default 1)",
    )  # fmt: skip
    parser.add_argument(
        "--params-file", default="", help="graph parameters YAML (default config/recognize.yaml)"
    )
    parser.add_argument(
        "--device", choices=DEVICES, default="",
        help="ONNX Runtime device (default: the recognizer's device in --params-file, else cpu)",
    )  # fmt: skip
    parser.set_defaults(bag_run=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    """Check the inputs and the report folder, evaluate (``core.bag_eval``) and print the table.

    The report is written into a staged folder that is moved into place at the end.
    """
    from bharnet_ros.core.bag_eval import CAMERA_TYPES, REPORT_FILES, EvalError, choose_topic, evaluate_bag
    from bharnet_ros.nodes.bag_eval import realtime_replay

    check_number("--rate", args.rate, MIN_REPLAY_RATE, MAX_REPLAY_RATE, "times the recorded speed")
    if args.labels is not None:
        check_input_file(args.labels, "labels file")
    params = Path(args.params_file) if args.params_file else None
    out = named_folder(args.out)
    check_output_folder(out, [args.bag, args.labels, args.model, params], args.force, writes=REPORT_FILES)
    replay = realtime_replay(args.rate) if args.realtime else None
    try:
        repair_if_unindexed(args.bag)
        _, msgtype = choose_topic(args.bag, args.topic)
        check_params_file(args.params_file, pose=msgtype in CAMERA_TYPES)  # a skeleton bag runs no pose node
        with staged_folder(out) as staged:
            summary = evaluate_bag(
                args.bag, args.labels, staged, model=args.model, topic=args.topic,
                params_file=args.params_file, device=args.device, replay=replay,
            )  # fmt: skip
    except (BagError, EvalError) as err:
        raise UsageError(str(err)) from None
    print(format_table(summary, args.out))
    return 0


# --------------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------------


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} s"


def _milliseconds(stats: dict[str, Any]) -> str:
    if not stats.get("count"):
        return "n/a"
    p50, p95, worst = (1000 * stats[k] for k in ("p50", "p95", "max"))
    return f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {worst:.1f} ms"


def format_table(summary: dict[str, Any], out: Path) -> str:
    """A few aligned lines for the terminal."""
    from bharnet_ros.core.bag_eval import percent_text as percent

    m, c, t = summary["metrics"], summary["counts"], summary["timing"]
    realtime = summary["mode"] == "realtime"
    timing_name, timing = (
        ("end-to-end latency", t["latency_seconds"])
        if realtime
        else ("processing/window", t["window_seconds"])
    )
    fps, flicker = t.get("processed_fps"), m["flicker_per_minute"]
    scored = f"{m['predictions_correct']}/{m['predictions_scored']}"
    rows = [
        ("frames", f"{c['frames']} in bag, {c['processed']} processed, dropped {_count(c['dropped'])}, "
                   f"{c['bad_frames']} undecodable, {c['actions']} actions"),
        ("segment accuracy", f"{m['segments_correct']}/{m['segments']} ({percent(m['segment_accuracy'])})"),
        ("frame accuracy", f"{scored} ({percent(m['frame_accuracy'])})"),
        ("detection delay", f"mean {_seconds(m['delay_mean'])}, max {_seconds(m['delay_max'])} "
                            f"({m['segments_detected']}/{m['segments']} segments detected)"),
        ("label flicker", "n/a" if flicker is None else f"{flicker:.1f} changes/min"),
        (timing_name, _milliseconds(timing)),
        ("processed FPS", "n/a" if fps is None else f"{fps:.1f}"),
        ("report", f"{out}/summary.json, timeline.png, predictions.csv"),
    ]  # fmt: skip
    if c.get("bad_skeletons"):
        rows.insert(1, ("refused skeletons", str(c["bad_skeletons"])))
    if summary.get("silence"):
        rows.insert(1, ("why no action", summary["silence"]))
    rows[1:1] = [("warning", warning) for warning in summary.get("warnings", [])]
    title = f"bag eval ({summary['mode']}) of {summary['topic']} in {summary['bag']}"
    return "\n".join([title, *(f"  {name:<20}{value}" for name, value in rows)])


def _count(value: int | None) -> str:
    return "n/a" if value is None else str(value)
