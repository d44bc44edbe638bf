"""``bharnet bag``: make rosbag2 recordings and evaluate the recognizer on them against annotations.

* ``record-video VIDEO -o BAG``: a video file as a camera bag (Image or, for jpeg, CompressedImage).
* ``record -o BAG TOPICS...``: record live topics of the running graph (a small ``ros2 bag record``).
* ``info BAG``: topics, types and message counts. A bag without ``metadata.yaml`` (a recording
  that was killed) is reindexed first, as ``ros2 bag reindex`` does (also by ``eval``).
* ``eval BAG --labels FILE --out DIR``: run the recognizer over the bag and score its decisions
  against labelled segments. Deterministic by default (the core pipeline driven by the bag's
  stamps, no ROS); ``--realtime`` replays the bag into the real graph and also measures latency.

Formats, metrics and an example report: docs/bags.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bharnet_ros.core.annotations import AnnotationError, Annotations, Segment, label_at, load_annotations
from bharnet_ros.core.bag import (
    ACTION_TYPE,
    CAMERA_TYPES,
    COMPRESSED_TYPE,
    ENCODINGS,
    SKELETON_TYPE,
    STORAGES,
    BagError,
    bag_message_counts,
    bag_topics,
    cdr_header_stamp,
    decode_camera_message,
    describe_topics,
    read_messages,
    reindex_bag,
    require_topic,
    skeleton_frames,
    stamp_ns,
    typestore,
    write_video_bag,
)
from bharnet_ros.core.params_file import (
    GRAPH_PARAMS,
    ParamsFileError,
    node_parameters,
    read_params_file,
    set_node_parameters,
)
from bharnet_ros.core.paths import DEFAULT_MODEL, default_model, share_file
from bharnet_ros.core.recognizer import RecognizerConfig
from bharnet_ros.core.streaming_metrics import Prediction, StreamMetrics, evaluate_stream, summarize
from bharnet_ros.tools import UsageError
from bharnet_ros.tools.outputs import check_output_folder, staged_folder

POSE_PARAMETERS = ("backend", "min_detection_confidence", "min_tracking_confidence")


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
    parser.add_argument("-o", "--output", type=Path, required=True, help="new bag folder")
    parser.add_argument(
        "--topic", default="/camera/image_raw", help="camera topic (default /camera/image_raw)"
    )
    parser.add_argument(
        "--rate", type=float, default=0.0, help="restamp at HZ frames/s (default: video time)"
    )
    parser.add_argument(
        "--storage", choices=sorted(STORAGES), default="mcap", help="bag storage (default mcap)"
    )
    parser.add_argument("--frame-id", default="camera", help="header frame_id (default camera)")
    parser.add_argument(
        "--encoding", choices=ENCODINGS, default="bgr8",
        help="Image pixel encoding, or jpeg for sensor_msgs/CompressedImage (default bgr8)",
    )  # fmt: skip
    parser.add_argument(
        "--start-time", default="0",
        help="stamp of the first frame: seconds since the epoch, or 'now' (default 0: stamps = video time)",
    )  # fmt: skip
    parser.add_argument("--max-frames", type=int, default=0, help="stop after N frames (default: all)")
    parser.add_argument(
        "--force", action="store_true", help="replace the bag files of an existing BAG (nothing else)"
    )
    parser.set_defaults(bag_run=run_record_video)


def run_record_video(args: argparse.Namespace) -> int:
    """Write the bag and print what it holds."""
    from bharnet_ros.core.video import VideoError

    if args.rate < 0 or args.max_frames < 0:
        raise UsageError("--rate and --max-frames must not be negative")
    if not args.topic.startswith("/"):
        raise UsageError(f"--topic {args.topic!r} must be an absolute name such as /camera/image_raw")
    start_time = _start_time(args.start_time)
    check_output_folder(args.output, [args.video], args.force, "-o", empty_ok=False)
    try:
        with staged_folder(args.output) as staged:
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


def _start_time(text: str) -> float:
    if text == "now":
        return time.time()
    try:
        return float(text)
    except ValueError:
        raise UsageError(f"--start-time {text!r} is neither seconds since the epoch nor 'now'") from None


def _add_record(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("topics", nargs="+", metavar="TOPIC", help="topics to record, e.g. /bharnet/action")
    parser.add_argument("-o", "--output", type=Path, required=True, help="new bag folder")
    parser.add_argument("--duration", type=float, default=0.0, help="stop after S seconds (default: Ctrl-C)")
    parser.add_argument(
        "--storage", choices=sorted(STORAGES), default="mcap", help="bag storage (default mcap)"
    )
    parser.add_argument("--wait", type=float, default=5.0, help="seconds to wait for the topics to appear")
    parser.set_defaults(bag_run=run_record)


def run_record(args: argparse.Namespace) -> int:
    """Record until the duration or Ctrl-C, then print the message counts."""
    from bharnet_ros.nodes.bag_io import record_topics

    if args.duration < 0 or args.wait < 0:
        raise UsageError("--duration and --wait must not be negative")
    if args.output.exists():
        raise UsageError(f"-o {args.output} already exists; a recording always goes into a new bag folder")
    check_output_folder(args.output, option="-o")
    try:
        counts = record_topics(
            args.output, args.topics, duration=args.duration, storage=args.storage, wait=args.wait
        )
    except BagError as err:
        raise UsageError(str(err)) from None
    print(f"{args.output}: " + ", ".join(f"{topic} {count}" for topic, count in counts.items()))
    return 0


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
    if bag.is_dir() and not (bag / "metadata.yaml").exists():
        print(f"{bag}: {reindex_bag(bag)}")


# --------------------------------------------------------------------------------------------------
# eval
# --------------------------------------------------------------------------------------------------


def _add_eval(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", type=Path, help="bag folder")
    parser.add_argument(
        "--labels", type=Path, default=None,
        help="annotation .csv or .yaml (docs/bags.md); without it only decisions and timing are reported",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, required=True, help="report folder")
    parser.add_argument(
        "--force", action="store_true", help="replace the report files in a non-empty --out (nothing else)"
    )
    parser.add_argument("--model", type=Path, default=None, help=f"ONNX model (default {DEFAULT_MODEL})")
    parser.add_argument(
        "--topic", default=None,
        help="topic to evaluate (default: the bharnet skeleton topic if present, else the camera topic)",
    )  # fmt: skip
    parser.add_argument("--realtime", action="store_true", help="replay into the live graph and time it")
    parser.add_argument("--rate", type=float, default=1.0, help="replay speed factor for --realtime")
    parser.add_argument(
        "--params-file", default="", help="graph parameters YAML (default config/recognize.yaml)"
    )
    parser.add_argument(
        "--device", choices=("cpu", "cuda", "auto"), default="cpu", help="ONNX Runtime device"
    )
    parser.set_defaults(bag_run=run_eval)


@dataclass
class EvalRun:
    """Decisions and counts of one evaluation, before scoring."""

    mode: str
    frames: int  # messages on the evaluated topic
    processed: int  # frames that reached the recognizer stage (pose run, or skeletons fed)
    dropped: int | None  # frames published but never processed (real time; None without a pose stage)
    bad_frames: int  # frames that could not be decoded
    predictions: list[Prediction]
    latencies: list[float | None]  # per prediction: end-to-end (real time) or window processing seconds
    timing: dict[str, Any] = field(default_factory=dict)  # wall-clock measurements (vary between runs)


def run_eval(args: argparse.Namespace) -> int:
    """Check the inputs, run one mode, score and write the report."""
    summary = evaluate_bag(
        args.bag, args.labels, args.out, model=args.model, topic=args.topic, realtime=args.realtime,
        rate=args.rate, params_file=args.params_file, device=args.device, force=args.force,
    )  # fmt: skip
    print(format_table(summary, args.out))
    return 0


def evaluate_bag(
    bag: Path,
    labels: Path | None,
    out: Path,
    model: Path | None = None,
    topic: str | None = None,
    realtime: bool = False,
    rate: float = 1.0,
    params_file: str = "",
    device: str = "cpu",
    force: bool = False,
) -> dict[str, Any]:
    """Run the recognizer over ``bag`` (deterministic, or ``realtime`` through the graph), score it
    against ``labels`` and write the report to ``out``; returns the summary (also summary.json).

    ``out`` is checked first (a non-empty folder needs ``force``) and the report is written into a
    staged folder that is moved into place at the end. Bag problems are one-line UsageErrors.
    """
    if rate <= 0:
        raise UsageError(f"--rate must be positive, got {rate}")
    check_output_folder(out, [bag, labels, model], force)
    try:
        repair_if_unindexed(bag)
        with staged_folder(out) as staged:
            return _evaluate_into(bag, labels, staged, model, topic, realtime, rate, params_file, device)
    except BagError as err:
        raise UsageError(str(err)) from None


def _evaluate_into(
    bag: Path, labels: Path | None, out: Path, model: Path | None, topic: str | None, realtime: bool,
    rate: float, params_file: str, device: str,
) -> dict[str, Any]:  # fmt: skip
    topic, msgtype = choose_topic(bag, topic)
    try:
        annotations = load_annotations(labels) if labels else Annotations((), absolute=False)
    except AnnotationError as err:
        raise UsageError(str(err)) from None
    model = _model_path(model)
    params = load_graph_params(params_file)
    origin = first_stamp(bag, topic)
    if realtime:
        run_result = evaluate_realtime(bag, out, rate, device, topic, msgtype, model, params, origin)
    else:
        run_result = evaluate_offline(bag, topic, msgtype, model, device, params, origin)
    segments = annotations.relative_to(origin * 1e-9)
    metrics = evaluate_stream(segments, run_result.predictions)
    summary = {
        "mode": run_result.mode,
        "bag": str(bag),
        "topic": topic,
        "msgtype": msgtype,
        "model": str(model),
        "labels": str(labels) if labels else None,
        "time_base": "absolute" if annotations.absolute else "relative",
        "first_stamp": origin * 1e-9,
        "counts": _counts(run_result),
        "metrics": metrics.as_dict(),
        "timing": run_result.timing,
    }
    write_report(out, summary, run_result, segments, metrics)
    return summary


def choose_topic(bag: Path, requested: str | None) -> tuple[str, str]:
    """The topic to evaluate and its type: ``requested``, else skeletons, else the one camera topic."""
    try:
        topics = bag_topics(bag)
        if requested is not None:
            msgtype = require_topic(topics, requested, bag)
            if msgtype not in (*CAMERA_TYPES, SKELETON_TYPE):
                raise BagError(
                    f"{requested} holds {msgtype}; eval reads sensor_msgs Image/CompressedImage or "
                    f"{SKELETON_TYPE}; the bag has {describe_topics(topics)}"
                )
            return requested, msgtype
    except BagError as err:
        raise UsageError(str(err)) from None
    skeletons = [t for t, m in sorted(topics.items()) if m == SKELETON_TYPE]
    cameras = [t for t, m in sorted(topics.items()) if m in CAMERA_TYPES]
    candidates = skeletons or cameras
    if len(candidates) != 1:
        problem = "no camera or skeleton topic" if not candidates else "several candidate topics"
        raise UsageError(f"{bag} has {problem}: {describe_topics(topics)}; pick one with --topic")
    return candidates[0], topics[candidates[0]]


def first_stamp(bag: Path, topic: str) -> int:
    """Header stamp (ns) of the first message on ``topic``: time 0 of relative annotations."""
    for message in read_messages(bag, [topic]):
        return cdr_header_stamp(message.data)
    raise UsageError(f"{bag}: topic {topic} holds no messages; record some frames first")


def load_graph_params(params_file: str) -> dict[str, dict[str, Any]]:
    """``{"pose": {...}, "recognizer": {...}}`` from the graph's parameters YAML (``/**/<node>`` keys)."""
    try:
        data = read_params_file(params_file)
    except ParamsFileError as err:
        raise UsageError(str(err)) from None
    path = params_file or str(share_file(GRAPH_PARAMS))
    return {"path": path, **{node: node_parameters(data, node) for node in ("pose", "recognizer")}}


def recognizer_config(params: dict[str, Any]) -> RecognizerConfig:
    """The RecognizerConfig the node would build from the same parameters."""
    return RecognizerConfig.from_params(params["recognizer"])


def _model_path(model: Path | None) -> Path:
    if model is not None:
        if not model.is_file():
            raise UsageError(f"model {model} not found; give an exported .onnx file with --model")
        return model
    try:
        return default_model()
    except FileNotFoundError:
        raise UsageError(f"no --model given and the default {DEFAULT_MODEL} is not installed") from None


def evaluate_offline(
    bag: Path, topic: str, msgtype: str, model: Path, device: str, params: dict[str, Any], origin: int
) -> EvalRun:
    """Decode, pose and recognize every frame in bag order, timed by the header stamps (no ROS)."""
    from bharnet_ros.core.image import ImageError
    from bharnet_ros.core.inference import InferenceError
    from bharnet_ros.core.pose import PoseEstimator
    from bharnet_ros.core.recognizer import Recognizer, load_window_classifier
    from bharnet_ros.core.skeleton import SkeletonError

    try:
        classifier = load_window_classifier(
            str(model), device, threads=params["recognizer"].get("threads", 1)
        )
    except (InferenceError, ValueError) as err:
        raise UsageError(f"cannot load the model: {err}") from None
    recognizer = Recognizer(classifier, recognizer_config(params))
    pose = {k: v for k, v in params["pose"].items() if k in POSE_PARAMETERS}
    estimator = PoseEstimator(**pose) if msgtype in CAMERA_TYPES else None
    run = EvalRun("deterministic", 0, 0, 0, 0, [], [])
    pose_seconds: list[float] = []
    started = time.perf_counter()
    try:
        for message in read_messages(bag, [topic]):
            run.frames += 1
            try:
                persons = _frames_of(message.decode(), msgtype, estimator, pose_seconds)
            except (ImageError, SkeletonError):
                run.bad_frames += 1
                continue
            run.processed += 1
            _recognize(recognizer, persons, cdr_header_stamp(message.data), origin, run)
    finally:
        if estimator is not None:
            estimator.close()
    wall = time.perf_counter() - started
    run.timing = {
        "wall_seconds": wall,
        "processed_fps": run.processed / wall if wall > 0 else None,
        "window_seconds": summarize([v for v in run.latencies if v is not None]),
        "pose_seconds": summarize(pose_seconds),
    }
    return run


def _frames_of(msg: Any, msgtype: str, estimator: Any, pose_seconds: list[float]) -> list[Any]:
    """The persons of one message: pose-estimated from an image (none if nothing was found) or as stored."""
    if msgtype == SKELETON_TYPE:
        return skeleton_frames(msg)
    image = decode_camera_message(msg, msgtype)
    started = time.perf_counter()
    frame = estimator.estimate(image, stamp_ns(msg.header) * 1e-9)
    pose_seconds.append(time.perf_counter() - started)
    return [frame] if frame.person_found else []  # as the pose node


def _recognize(recognizer: Any, persons: list[Any], stamp: int, origin: int, run: EvalRun) -> None:
    recognizer.prune(stamp * 1e-9)
    for frame in persons:
        started = time.perf_counter()
        result = recognizer.push(frame)
        if result is not None:
            run.latencies.append(time.perf_counter() - started)
            relative = round(result.stamp - origin * 1e-9, 6)
            run.predictions.append(Prediction(relative, result.label, result.person_id, result.confidence))


def evaluate_realtime(
    bag: Path, out: Path, rate: float, device: str, topic: str, msgtype: str, model: Path,
    params: dict[str, Any], origin: int,
) -> EvalRun:  # fmt: skip
    """Replay the bag into the in-process graph and turn what came back into an EvalRun."""
    from bharnet_ros.nodes.bag_io import run_graph_on_bag
    from bharnet_ros.nodes.graph import GraphOptions

    camera = topic.removesuffix("/compressed") if msgtype == COMPRESSED_TYPE else topic
    options = GraphOptions(
        camera_topic=camera, model=str(model), device=device,
        params_file=str(_effective_params(out, params, msgtype)),
    )  # fmt: skip
    try:
        live = run_graph_on_bag(bag, topic, msgtype, options, rate=rate)
    except BagError as err:
        raise UsageError(str(err)) from None
    return live_run(live, origin)


def _effective_params(out: Path, params: dict[str, Any], msgtype: str) -> Path:
    """The parameters file the live graph gets (the pose node reads /compressed for jpeg bags)."""
    data = read_params_file(params["path"])
    set_node_parameters(data, "pose", compressed=msgtype == COMPRESSED_TYPE)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "params.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def live_run(live: Any, origin: int) -> EvalRun:
    """Predictions with end-to-end latency (receive time - publish time of the frame they are for)."""
    run = EvalRun("realtime", live.sent, 0, None, 0, [], [])
    for received, data in live.actions:
        msg = typestore().deserialize_cdr(data, ACTION_TYPE)
        stamp = stamp_ns(msg.header)
        relative = round((stamp - origin) * 1e-9, 6)
        run.predictions.append(Prediction(relative, msg.label, int(msg.person_id), float(msg.confidence)))
        published = live.published.get(stamp)
        run.latencies.append(None if published is None else received - published)
    if live.pose_stage:
        run.processed = len(set(live.processed) & set(live.published))
        run.dropped = run.frames - run.processed
    else:
        run.processed = run.frames
    seconds = live.replay_seconds
    run.timing = {
        "replay_seconds": seconds,
        "processed_fps": run.processed / seconds if seconds > 0 else None,
        "latency_seconds": summarize([v for v in run.latencies if v is not None]),
        "schedule_lag_max_seconds": live.schedule_lag_max,
    }
    return run


def _counts(run: EvalRun) -> dict[str, Any]:
    return {
        "frames": run.frames,
        "processed": run.processed,
        "dropped": run.dropped,
        "bad_frames": run.bad_frames,
        "actions": len(run.predictions),
    }


# --------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------


def write_report(
    out: Path, summary: dict[str, Any], run: EvalRun, segments: list[Segment], metrics: StreamMetrics
) -> None:
    """summary.json, predictions.csv and timeline.png in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    write_predictions(out / "predictions.csv", run, segments)
    plot_timeline(out / "timeline.png", segments, run.predictions, metrics, summary["mode"])


def write_predictions(path: Path, run: EvalRun, segments: list[Segment]) -> None:
    """One row per decision: stamp (s since the first frame), person, label, confidence, truth, latency.

    Latency (end to end) is filled in real-time mode only, so deterministic files are identical.
    """
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["stamp", "person_id", "label", "confidence", "truth", "latency_ms"])
        for p, latency in zip(run.predictions, run.latencies, strict=True):
            shown = "" if latency is None or run.mode != "realtime" else f"{1000 * latency:.1f}"
            truth = label_at(segments, p.stamp) or ""
            writer.writerow([f"{p.stamp:.6f}", p.person_id, p.label, f"{p.confidence:.6f}", truth, shown])


def plot_timeline(
    path: Path, segments: list[Segment], predictions: list[Prediction], metrics: StreamMetrics, mode: str
) -> None:
    """Two lanes over bag time: annotated segments and the predicted label between decisions."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    labels = sorted({s.label for s in segments} | {p.label for p in predictions})
    colors = {label: plt.get_cmap("tab20")(i % 20) for i, label in enumerate(labels)}
    end = max([s.end for s in segments] + [p.stamp for p in predictions] + [0.0])
    figure, axis = plt.subplots(figsize=(10, 2.6))
    for s in segments:
        axis.broken_barh([(s.start, s.duration)], (1.1, 0.8), color=colors[s.label])
    for p, following in zip(predictions, [*predictions[1:], None], strict=True):
        stop = following.stamp if following is not None else end
        axis.broken_barh([(p.stamp, max(stop - p.stamp, 0.0))], (0.1, 0.8), color=colors[p.label])
    axis.set_yticks([0.5, 1.5], ["predicted", "truth"])
    axis.set_xlabel("seconds since the first frame")
    axis.set_xlim(0, max(end, 1e-3))
    axis.set_title(f"{mode}: segment accuracy {_percent(metrics.segment_accuracy)}, "
                   f"frame accuracy {_percent(metrics.frame_accuracy)}")  # fmt: skip
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[label]) for label in labels]
    axis.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(figure)


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} s"


def _milliseconds(stats: dict[str, Any]) -> str:
    if not stats.get("count"):
        return "n/a"
    p50, p95, worst = (1000 * stats[k] for k in ("p50", "p95", "max"))
    return f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {worst:.1f} ms"


def format_table(summary: dict[str, Any], out: Path) -> str:
    """A few aligned lines for the terminal."""
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
        ("segment accuracy", f"{m['segments_correct']}/{m['segments']} ({_percent(m['segment_accuracy'])})"),
        ("frame accuracy", f"{scored} ({_percent(m['frame_accuracy'])})"),
        ("detection delay", f"mean {_seconds(m['delay_mean'])}, max {_seconds(m['delay_max'])} "
                            f"({m['segments_detected']}/{m['segments']} segments detected)"),
        ("label flicker", "n/a" if flicker is None else f"{flicker:.1f} changes/min"),
        (timing_name, _milliseconds(timing)),
        ("processed FPS", "n/a" if fps is None else f"{fps:.1f}"),
        ("report", f"{out}/summary.json, timeline.png, predictions.csv"),
    ]  # fmt: skip
    title = f"bag eval ({summary['mode']}) of {summary['topic']} in {summary['bag']}"
    return "\n".join([title, *(f"  {name:<20}{value}" for name, value in rows)])


def _count(value: int | None) -> str:
    return "n/a" if value is None else str(value)
