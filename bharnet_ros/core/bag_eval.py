"""Scoring the recognizer on a bag against annotations: the deterministic run, scores and report.

The deterministic run reads the evaluated topic in bag order and drives the same core objects the
nodes use, under the same per-message rules (``core.frame_rules``). Header stamps time the windows
and decisions; the bag's log times (when the recorder received each message) stand for the node's
arrival clock, which times persons out. Both are stored in the bag, so every run gives the same
decisions. The real-time run (replay into the live ROS graph) is ``bharnet_ros.nodes.bag_eval``;
it plugs into :func:`evaluate_bag` as its ``replay``, so both modes share the options, scores and
report. No rclpy here. Formats and metrics: docs/bags.md.
"""

from __future__ import annotations

import csv
import itertools
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bharnet_ros.core.annotations import AnnotationError, Annotations, Segment, labels_at, load_annotations
from bharnet_ros.core.bag import (
    CAMERA_TYPES,
    CDR_STAMP_BYTES,
    COMPRESSED_TYPE,
    SKELETON_TYPE,
    BagError,
    MessageError,
    bag_duration,
    bag_message_counts,
    bag_topics,
    candidate_topics,
    cdr_header_stamp,
    decode_camera_message,
    describe_topics,
    read_messages,
    require_topic,
)
from bharnet_ros.core.frame_rules import NANOSECONDS, FrameRules, one_per_person, stamp_problem, stamp_seconds
from bharnet_ros.core.image import ImageError, camera_message_size
from bharnet_ros.core.inference import InferenceError
from bharnet_ros.core.labels import error_line, shown
from bharnet_ros.core.params_file import (
    ParamsFileError,
    dump_params_file,
    read_params_file,
    recognizer_parameters,
    root_parameters,
    set_node_parameters,
)
from bharnet_ros.core.paths import DEFAULT_MODEL, default_model
from bharnet_ros.core.plots import plain_text_figure
from bharnet_ros.core.skeleton import SkeletonError
from bharnet_ros.core.streaming_metrics import Decision, StreamMetrics, evaluate_stream, summarize

# The pose node's parameters that shape its pose stage (``core.pose_stage.PoseStage``).
POSE_PARAMETERS = (
    "backend",
    "num_poses",
    "mirrored_input",
    "min_detection_confidence",
    "min_tracking_confidence",
)
LEGEND_LABELS = 20  # labels named in timeline.png's legend (colours repeat after 20 anyway)
# How far outside the bag's time (seconds) annotations may lie before they are taken for another
# bag's, or for the wrong unit or time base (log times and header stamps differ by a little).
LABELS_SLACK_SECONDS = 1.0
# The files of a report folder, checked before the run.
REPORT_FILES = ("summary.json", "predictions.csv", "timeline.png", "params.yaml")


class EvalError(ValueError):
    """An evaluation that cannot run; the message is one line naming the problem and its fix."""


@dataclass(frozen=True)
class EvalOptions:
    """What one evaluation runs: which messages of which bag, and the recognizer they go through."""

    bag: Path
    topic: str
    msgtype: str  # sensor_msgs Image or CompressedImage (pose stage first), or SKELETON_TYPE
    model: Path  # exported ONNX model
    device: str = "cpu"  # ONNX Runtime device: cpu, cuda or auto
    recognizer: Mapping[str, Any] = field(default_factory=dict)  # the recognizer node's parameters
    pose: Mapping[str, Any] = field(default_factory=dict)  # the pose node's parameters
    origin: int = 0  # the first stamp (ns) on the topic: time 0 of the report
    params_file: str = ""  # the parameters file the two mappings come from ("" = the shipped one)
    # True: the topic's frames are all stamped 0 (none has a usable stamp), so they are timed by a
    # clock (the log times here), and ``origin`` is the first message's log time
    unstamped: bool = False


@dataclass
class EvalRun:
    """Decisions and counts of one evaluation, before scoring."""

    mode: str
    frames: int  # messages on the evaluated topic
    processed: int  # frames that reached the recognizer stage (pose run, or skeletons fed)
    dropped: int | None  # frames published but never processed (real time; None without a pose stage)
    bad_frames: int  # frames that could not be decoded
    predictions: list[Decision]
    latencies: list[float | None]  # per prediction: end-to-end (real time) or window processing seconds
    timing: dict[str, Any] = field(default_factory=dict)  # wall-clock measurements (vary between runs)
    # skeletons refused as the recognizer node refuses them (its bad_messages); None: not counted
    bad_skeletons: int | None = None
    first_refusal: str = ""  # why the first refused skeleton was refused
    classes: list[str] = field(default_factory=list)  # what the model can say ([]: not known here)

    def refuse(self, why: str) -> None:
        """Count one refused skeleton (``why`` is what the node would log)."""
        self.bad_skeletons = (self.bad_skeletons or 0) + 1
        self.first_refusal = self.first_refusal or why


Replay = Callable[[EvalOptions, Path], EvalRun]  # a mode other than the deterministic one; Path: report


def evaluate_bag(
    bag: Path,
    labels: Path | None,
    out: Path,
    *,
    model: Path | None = None,
    topic: str | None = None,
    params_file: str = "",
    device: str = "",
    replay: Replay | None = None,
) -> dict[str, Any]:
    """Run the recognizer over ``bag``, score it against ``labels`` and write the report into ``out``.

    Deterministic unless ``replay`` is given (``nodes.bag_eval.realtime_replay`` replays the bag
    into the live graph). Without ``labels`` only decisions and timing are reported. Returns the
    summary, also written as ``out/summary.json``. Problems with the inputs raise EvalError.
    """
    try:
        annotations = load_annotations(labels) if labels else Annotations((), absolute=False)
        options = eval_options(bag, topic=topic, model=model, params_file=params_file, device=device)
        check_labels_in_bag(annotations, labels, options)
        classes = check_replayable(options) if replay is not None else []
        run = replay(options, out) if replay is not None else evaluate_offline(options)
        if replay is None:  # the live graph wrote it to start with
            write_params_file(options, out, live=False)
        run.classes = run.classes or classes
    except (AnnotationError, BagError, ParamsFileError) as err:
        raise EvalError(str(err)) from None
    segments = annotations.relative_to(options.origin * 1e-9)
    metrics = evaluate_stream(segments, run.predictions)
    summary = run_summary(options, labels, annotations, run, metrics)
    summary["silence"] = silence_reason(options, run)
    summary["warnings"] = scoring_warnings(segments, run, metrics)
    write_report(out, summary, run, segments, metrics)
    return summary


def eval_options(
    bag: Path,
    *,
    topic: str | None = None,
    model: Path | None = None,
    params_file: str = "",
    device: str = "",
) -> EvalOptions:
    """The options for ``bag``: its topic (:func:`choose_topic`), the model (``model``, else the
    recognizer's ``model`` in ``params_file``, else the shipped one), the device (``device``, else
    the recognizer's, else cpu), the pose (for a camera topic) and recognizer parameters of
    ``params_file`` and time 0 (:func:`time_origin`)."""
    topic, msgtype = choose_topic(bag, topic)
    params = read_params_file(params_file)
    recognizer = recognizer_parameters(params)
    model = chosen_model(model, params_file)
    device = device or _file_device(recognizer, params_file)
    origin, unstamped = time_origin(bag, topic)
    return EvalOptions(
        bag=bag, topic=topic, msgtype=msgtype, model=model, device=device,
        recognizer=recognizer, pose=root_parameters(params, "pose") if msgtype in CAMERA_TYPES else {},
        origin=origin, params_file=params_file, unstamped=unstamped,
    )  # fmt: skip


def check_labels_in_bag(annotations: Annotations, labels: Path | None, options: EvalOptions) -> None:
    """EvalError when no segment lies within the bag's time: nothing could be scored.

    Such a file belongs to another recording, or gives milliseconds, or uses the other time base
    (absolute stamps under ``start``/``end``); checked before the pose stage runs. The bag's length
    is the longer of its log-time span and the span of the topic's header stamps: a bag recorded
    from a faster or slower replay has stamps spanning more or less than its log times.
    """
    segments = annotations.relative_to(options.origin * 1e-9)
    if not segments:
        return
    last = last_header_stamp(options.bag, options.topic)
    length = max(bag_duration(options.bag), (last or options.origin) - options.origin) * 1e-9
    if length <= 0:
        return
    slack = LABELS_SLACK_SECONDS
    if any(s.start <= length + slack and s.end >= -slack for s in segments):
        return
    base = (
        "start_stamp/end_stamp are absolute header stamps in seconds since the epoch"
        if annotations.absolute
        else "start/end are seconds from the first frame"
    )
    raise EvalError(
        f"{labels}: no segment lies within the bag's {length:.2f} s (the segments run from "
        f"{segments[0].start:.2f} to {max(s.end for s in segments):.2f} s after its first frame, stamped "
        f"{options.origin * 1e-9:.3f}); {base}: check the file is this bag's and its times' unit and base"
    )


def last_header_stamp(bag: Path, topic: str) -> int | None:
    """The latest stamp (ns) that times a frame on ``topic`` (:func:`message_stamps`); None when
    no message holds one."""
    return max(message_stamps(read_messages(bag, [topic])), default=None)


def message_stamps(messages: Iterable[Any]) -> list[int]:
    """The stamp of each message that has one: a camera image's header stamp, read from its first
    bytes (no image is decoded), a skeleton array's :func:`frame_stamp` (its persons' where its own
    header is 0, as the recognizer times them); damaged messages are passed over."""
    stamps = []
    for message in messages:
        if message.msgtype != SKELETON_TYPE:
            if len(message.data) >= CDR_STAMP_BYTES:
                stamps.append(cdr_header_stamp(message.data))
            continue
        try:
            stamps.append(frame_stamp(message.decode(), SKELETON_TYPE))
        except MessageError:
            continue
    return stamps


def choose_topic(bag: Path, requested: str | None) -> tuple[str, str]:
    """The topic to evaluate and its type: ``requested``, else skeletons, else the one camera topic."""
    topics = bag_topics(bag)
    if requested is not None:
        msgtype = require_topic(topics, requested, bag)
        if msgtype not in (*CAMERA_TYPES, SKELETON_TYPE):
            raise EvalError(
                f"{requested} holds {msgtype}; eval reads sensor_msgs Image/CompressedImage or "
                f"{SKELETON_TYPE}; the bag has {describe_topics(topics)}"
            )
        return requested, msgtype
    candidates = candidate_topics(topics, bag_message_counts(bag))
    if len(candidates) != 1:
        problem = "no camera or skeleton topic" if not candidates else "several candidate topics"
        raise EvalError(f"{bag} has {problem}: {describe_topics(topics)}; pick one with --topic")
    return candidates[0], topics[candidates[0]]


def chosen_model(model: Path | None, params_file: str) -> Path:
    """The model a bag evaluation runs: ``model``, else the recognizer's ``model`` in
    ``params_file``, else the shipped one; EvalError when that file is not there."""
    recognizer = recognizer_parameters(read_params_file(params_file))
    return model_path(model or _file_model(recognizer, params_file))


def _file_model(recognizer: dict[str, Any], params_file: str) -> Path | None:
    """The recognizer's ``model`` in the parameters file (None where it is absent or empty, which
    means the shipped model, as the node reads it)."""
    model = recognizer.get("model", "")
    if not isinstance(model, str):
        raise EvalError(f"{params_file}: the recognizer's model must be a file name, not {model!r}")
    return Path(model) if model else None


def _file_device(recognizer: dict[str, Any], params_file: str) -> str:
    """The recognizer's ``device`` in the parameters file, else cpu (as the node reads it)."""
    from bharnet_ros.core.inference import DEVICES

    device = recognizer.get("device") or "cpu"
    if not isinstance(device, str) or device not in DEVICES:
        raise EvalError(
            f"{params_file}: the recognizer's device must be one of {', '.join(DEVICES)}, not {device!r}"
        )
    return device


def model_path(model: Path | None) -> Path:
    """``model`` if it exists, else the shipped default model."""
    if model is not None:
        if not model.is_file():
            raise EvalError(f"model {model} not found; give an exported .onnx file with --model")
        return model
    try:
        return default_model()
    except FileNotFoundError:
        raise EvalError(f"no --model given and the default {DEFAULT_MODEL} is not installed") from None


def time_origin(bag: Path, topic: str) -> tuple[int, bool]:
    """Time 0 of the report (ns): the first stamp on ``topic`` that times a frame
    (:func:`frame_stamp`), else the log time of the first message that deserializes; and whether
    the topic is unstamped (no usable stamp, headers of 0), so that its frames are timed by the log
    times. A damaged message is skipped (the run counts it as undecodable). A header stamp of 0
    made time 0 the Unix epoch, and every decision then lay decades after the labels.

    EvalError when the topic holds no message that deserializes, saying what metadata.yaml claims.
    """
    seen, msgtype, first_log, zero = 0, "", None, False
    for message in read_messages(bag, [topic]):
        seen, msgtype = seen + 1, message.msgtype
        try:
            msg = message.decode()
        except MessageError:
            continue
        first_log = message.log_time if first_log is None else first_log
        if stamp := frame_stamp(msg, msgtype):
            return stamp, False
        zero = zero or msg.header.stamp.sec == msg.header.stamp.nanosec == 0
    if first_log is not None:
        return first_log, zero
    raise _no_message(bag, topic, seen, msgtype)


def frame_stamp(msg: Any, msgtype: str) -> int:
    """The stamp (ns) that times a message's frames, 0 where it has none a clock gives: its header
    stamp, or for a skeleton array whose header is left at 0, its first stamped person's (the
    recognizer times each person by their own header)."""
    stamps = [msg.header.stamp]
    if msgtype == SKELETON_TYPE:
        stamps += [person.header.stamp for person in msg.persons]
    for stamp in stamps:
        if not stamp_problem(stamp) and (stamp.sec or stamp.nanosec):
            return int(stamp.sec) * NANOSECONDS + int(stamp.nanosec)
    return 0


def _no_message(bag: Path, topic: str, seen: int, msgtype: str) -> EvalError:
    """The EvalError for a topic without a message that deserializes: what is wrong, and what to do."""
    if seen:
        return EvalError(
            f"{bag}: none of the {seen} messages on {topic} deserializes as {msgtype}; "
            "the topic's messages are damaged or of another type than its metadata says"
        )
    declared = bag_message_counts(bag).get(topic, 0)
    if declared:
        return EvalError(
            f"{bag}: metadata.yaml counts {declared} messages on {topic}, but its storage files hold "
            "none of that topic and type; move metadata.yaml aside and run `bharnet bag info` to rebuild it"
        )
    return EvalError(f"{bag}: topic {topic} holds no messages; record some frames first")


# --------------------------------------------------------------------------------------------------
# The deterministic run
# --------------------------------------------------------------------------------------------------


def evaluate_offline(options: EvalOptions) -> EvalRun:
    """Decode, pose and recognize every frame in bag order, as the recognizer node would (no ROS).

    Frames keep their header stamps; persons age on the log times, as the node's persons age on
    their arrival, so one odd stamp (or an array header left at 0) cannot time everyone out. The
    node's per-message rules refuse what it refuses, counted as ``bad_skeletons``.
    """
    from bharnet_ros.core.recognizer import Recognizer, RecognizerConfig

    classifier = _classifier(options)
    recognizer = Recognizer(classifier, RecognizerConfig.from_params(options.recognizer))
    max_pixels = max_image_pixels(options.pose)
    estimator = _pose_stage(options) if options.msgtype in CAMERA_TYPES else None
    run = EvalRun("deterministic", 0, 0, 0, 0, [], [], bad_skeletons=0, classes=list(classifier.class_names))
    rules = FrameRules(run.refuse)
    pose_seconds: list[float] = []
    started = time.perf_counter()
    try:
        for message in read_messages(options.bag, [options.topic]):
            run.frames += 1
            arrival = message.log_time * 1e-9
            try:
                msg = message.decode()
                persons = _frames_of(msg, options.msgtype, estimator, max_pixels, arrival, pose_seconds)
            except (MessageError, ImageError, SkeletonError):
                run.bad_frames += 1
                continue
            run.processed += 1
            frames = _admitted(rules, persons, options.msgtype, arrival)
            _recognize(recognizer, frames, arrival, options.origin, run)
    finally:
        if estimator is not None:
            estimator.close()
    run.timing = _offline_timing(run, time.perf_counter() - started, pose_seconds)
    return run


def check_replayable(options: EvalOptions) -> list[str]:
    """EvalError now rather than after the live graph's start-up wait: the model must load, the
    frames must be stamped and the pose section name a pose back end."""
    from bharnet_ros.core.pose_stage import ALL_BACKENDS

    classes = list(_classifier(options).class_names)
    if options.unstamped:
        raise EvalError(
            f"{options.bag}: no frame on {options.topic} is stamped (header stamps of 0), so the live "
            "nodes would time them by their own clock, which the report cannot place in the bag's time; "
            "evaluate it without --realtime (frames are then timed by their log times), or record with stamps"
        )
    backend = options.pose.get("backend", "holistic")
    if options.msgtype in CAMERA_TYPES and backend not in ALL_BACKENDS:
        raise EvalError(
            f"the parameters file's pose backend {backend!r} is none of {', '.join(ALL_BACKENDS)}"
        )
    return classes


def max_image_pixels(pose: Mapping[str, Any]) -> int:
    """The pose section's ``max_image_pixels`` (the node's default when absent), which offline
    decoding shrinks images to as the pose node does; EvalError for a value the node refuses."""
    from bharnet_ros.core.image import IMAGE_PIXELS_RANGE, MAX_IMAGE_PIXELS

    value = pose.get("max_image_pixels", MAX_IMAGE_PIXELS)
    low, high = IMAGE_PIXELS_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise EvalError(
            f"the parameters file's pose max_image_pixels must be an integer from {low} to {high}, "
            f"not {shown(value)}"
        )
    return value


def _pose_stage(options: EvalOptions) -> Any:
    """The pose stage the pose node would build from the parameters file's pose section."""
    from bharnet_ros.core.pose_stage import PoseStage

    settings = {k: v for k, v in options.pose.items() if k in POSE_PARAMETERS}
    try:
        return PoseStage(**settings)
    except (ValueError, TypeError, RuntimeError) as err:
        raise EvalError(f"the parameters file's pose section: {error_line(err)}") from None


def _classifier(options: EvalOptions) -> Any:
    from bharnet_ros.core.inference import InferenceError
    from bharnet_ros.core.recognizer import load_window_classifier

    threads = options.recognizer.get("threads", 1)
    try:
        return load_window_classifier(str(options.model), options.device, threads=threads)
    except (InferenceError, ValueError) as err:
        raise EvalError(f"cannot load the model: {err}") from None


def _frames_of(
    msg: Any, msgtype: str, estimator: Any, max_pixels: int, arrival: float, pose_seconds: list[float]
) -> list[Any]:
    """The persons of one message: the stored PersonSkeleton messages (made frames by
    :func:`_admitted`), or the frames the pose stage finds in an image (:func:`_camera_frames`)."""
    if msgtype == SKELETON_TYPE:
        return list(msg.persons)
    return _camera_frames(msg, msgtype, estimator, max_pixels, arrival, pose_seconds)


def _camera_frames(
    msg: Any, msgtype: str, estimator: Any, max_pixels: int, arrival: float, pose_seconds: list[float]
) -> list[Any]:
    """The persons the pose node would publish for one image (none if nothing was found), by its
    rules: an image whose stamp no clock gives is refused (ImageError: a bad frame) before it is
    decoded; an unstamped one (0) is tracked on its log time, as the node tracks it on its clock.
    The frames carry the image's stamp, as the node's skeletons carry its header."""
    problem = stamp_problem(msg.header.stamp)
    if problem:
        raise ImageError(problem)
    image = decode_camera_message(msg, msgtype, max_pixels)
    stamp = stamp_seconds(msg.header.stamp)
    started = time.perf_counter()
    _, frames = estimator.process(image, stamp or arrival, camera_message_size(msg))
    pose_seconds.append(time.perf_counter() - started)
    found = [frame for frame in frames if frame.person_found]
    for frame in found:
        frame.timestamp = stamp
    return found


def _admitted(rules: FrameRules, persons: list[Any], msgtype: str, arrival: float) -> list[Any]:
    """The frames of one message that the recognizer node would take, by the node's own rules; a
    frame stamped 0 is timed by the log time (``arrival``), as the node times it by its clock."""
    if msgtype == SKELETON_TYPE:
        return rules.frames(persons, arrival, lambda: arrival)  # one per person already
    return one_per_person(rules.timed(persons, arrival, lambda: arrival), rules.refuse)


def _recognize(recognizer: Any, frames: list[Any], arrival: float, origin: int, run: EvalRun) -> None:
    """Push one message's frames as the node does: persons age on ``arrival`` (seconds of log time),
    and a frame the model cannot take (its body layout) is counted and skipped, not fatal."""
    recognizer.prune(arrival)
    for frame in frames:
        started = time.perf_counter()
        try:
            result = recognizer.push(frame, arrival=arrival)
        except SkeletonError as err:
            run.refuse(f"ignored a skeleton: {err}")
            continue
        except InferenceError as err:  # it passed the load check, and fails on the bag's windows
            raise EvalError(
                f"{err}; this model cannot be evaluated (export it with bharnet export)"
            ) from None
        if result is not None:
            run.latencies.append(time.perf_counter() - started)
            relative = relative_seconds(result.stamp, origin)
            run.predictions.append(Decision(relative, result.label, result.person_id, result.confidence))


def relative_seconds(stamp: float, origin: int) -> float:
    """A decision's time in the report: seconds after ``origin`` (ns) to the microsecond, from the
    float stamp the recognizer decided on in both modes (the realtime mode's integer nanoseconds
    rounded otherwise in one decision of eight at epoch stamps)."""
    return round(stamp - origin * 1e-9, 6)


def _offline_timing(run: EvalRun, wall: float, pose_seconds: list[float]) -> dict[str, Any]:
    return {
        "wall_seconds": wall,
        "processed_fps": run.processed / wall if wall > 0 else None,
        "window_seconds": summarize([v for v in run.latencies if v is not None]),
        "pose_seconds": summarize(pose_seconds),
    }


# --------------------------------------------------------------------------------------------------
# Summary and report
# --------------------------------------------------------------------------------------------------


def run_summary(
    options: EvalOptions, labels: Path | None, annotations: Annotations, run: EvalRun, metrics: StreamMetrics
) -> dict[str, Any]:
    """The contents of summary.json: what was evaluated, the counts, the scores and the timing."""
    return {
        "mode": run.mode,
        "bag": str(options.bag),
        "topic": options.topic,
        "msgtype": options.msgtype,
        "model": str(options.model),
        "labels": str(labels) if labels else None,
        "time_base": "absolute" if annotations.absolute else "relative",
        "first_stamp": options.origin * 1e-9,
        "counts": run_counts(run),
        "metrics": metrics.as_dict(),
        "timing": run.timing,
    }


def run_counts(run: EvalRun) -> dict[str, int | None]:
    """The counts of summary.json; ``bad_skeletons`` only where the run counted them."""
    counts = {
        "frames": run.frames,
        "processed": run.processed,
        "dropped": run.dropped,
        "bad_frames": run.bad_frames,
        "actions": len(run.predictions),
    }
    if run.bad_skeletons is not None:
        counts["bad_skeletons"] = run.bad_skeletons
    return counts


def silence_reason(options: EvalOptions, run: EvalRun) -> str | None:
    """Why a run that processed frames decided nothing (None if it decided, or nothing reached the
    recognizer): the recognizer times frames by their header stamps, and a bag whose stamps never
    advance, or span less than the history a first decision needs, silently gives no action."""
    if run.predictions or not run.processed:
        return None
    if run.bad_skeletons:
        return (
            f"no action: {run.bad_skeletons} skeletons were refused as the recognizer node refuses them "
            f"(the first: {run.first_refusal}); fix what publishes them"
        )
    from bharnet_ros.core.recognizer import RecognizerConfig

    messages = read_messages(options.bag, [options.topic])
    # an unstamped topic's frames are timed by their log times
    stamps = [m.log_time for m in messages] if options.unstamped else message_stamps(messages)
    span = (max(stamps) - min(stamps)) * 1e-9 if stamps else 0.0
    need = RecognizerConfig.from_params(options.recognizer).min_seconds
    if span == 0:
        stamp = min(stamps, default=0) * 1e-9
        return (
            f"no action: all {len(stamps)} frames carry the same header stamp ({stamp:.3f} s), so the "
            "recognizer saw no time pass; record with real stamps (bharnet bag record-video has them)"
        )
    if span < need:
        return (
            f"no action: the frames span {span:.3f} s, less than the {need} s of history "
            "a first decision needs (min_seconds)"
        )
    backwards = sum(later < earlier for earlier, later in itertools.pairwise(stamps))
    if backwards * 4 > len(stamps):
        return (
            f"no action: the header stamps go backwards {backwards} times in {len(stamps)} frames (in the "
            "bag's order), and each time the recognizer restarts the window; record with increasing stamps"
        )
    return (
        "no action: no window was classified; check that the frames show a person (for a camera "
        "bag, run the pose stage on the video: bharnet extract)"
    )


def scoring_warnings(segments: list[Segment], run: EvalRun, metrics: StreamMetrics) -> list[str]:
    """What makes a score of a run against its labels misleading, said rather than left to a 0 %:
    labels the model cannot say (a typo, another model's classes), and decisions mostly outside
    every labelled segment (the labels' time base or another recording)."""
    warnings = []
    known = set(run.classes)
    unknown = sorted({s.label for s in segments} - known - {"none"}) if known else []
    if unknown:
        warnings.append(
            f"labels the model has no class for, so never scored right: {', '.join(unknown[:5])}"
            f"{' ...' if len(unknown) > 5 else ''}; check their spelling against the model's classes"
        )
    decided = len(run.predictions)
    if segments and decided and metrics.predictions_unscored * 2 > decided:
        warnings.append(
            f"{metrics.predictions_unscored} of {decided} decisions lie in no labelled segment; check that "
            "the labels are this bag's and their time base (start/end from the first frame, or stamps)"
        )
    return warnings


def write_params_file(options: EvalOptions, out: Path, live: bool = True) -> Path:
    """``out/params.yaml``, the parameters the run used: the options' parameters file with the
    model in use as the recognizer's ``model``. For the ``live`` graph, which starts with it, the
    pose node's ``compressed`` is also set to whether the bag holds CompressedImage (the pose node
    then reads the ``/compressed`` topic), and its image subscription is reliable like the replay's
    publisher from the start (``auto`` would switch to it on a diagnostics tick, perhaps in the
    middle of the replay)."""
    data = read_params_file(options.params_file)
    if live:
        compressed = options.msgtype == COMPRESSED_TYPE
        set_node_parameters(data, "pose", compressed=compressed, image_reliability="reliable")
    set_node_parameters(data, "recognizer", model=str(options.model))  # the model in use, as the file says
    out.mkdir(parents=True, exist_ok=True)
    path = out / "params.yaml"
    path.write_text(dump_params_file(data))
    return path


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
        truths = labels_at(segments, [p.stamp for p in run.predictions])  # by bisection: long bags stay fast
        for p, latency, truth in zip(run.predictions, run.latencies, truths, strict=True):
            shown = "" if latency is None or run.mode != "realtime" else f"{1000 * latency:.1f}"
            writer.writerow(
                [f"{p.stamp:.6f}", p.person_id, p.label, f"{p.confidence:.6f}", truth or "", shown]
            )


@plain_text_figure
def plot_timeline(
    path: Path, segments: list[Segment], predictions: list[Decision], metrics: StreamMetrics, mode: str
) -> None:
    """Two lanes over bag time: annotated segments and the predicted label between decisions."""
    from matplotlib import pyplot as plt

    labels = sorted({s.label for s in segments} | {p.label for p in predictions})
    colors = {label: plt.get_cmap("tab20")(i % 20) for i, label in enumerate(labels)}
    end = max([s.end for s in segments] + [p.stamp for p in predictions] + [0.0])
    stops = [p.stamp for p in predictions[1:]] + [end] if predictions else []  # a label lasts until the next
    lanes = (
        (1.1, [(s.start, s.duration) for s in segments], [colors[s.label] for s in segments]),
        (0.1, [(p.stamp, max(stop - p.stamp, 0.0)) for p, stop in zip(predictions, stops, strict=True)],
         [colors[p.label] for p in predictions]),
    )  # fmt: skip
    figure, axis = plt.subplots(figsize=(10, 2.6))
    for y, spans, facecolors in lanes:  # one collection per lane: thousands of segments draw at once
        if spans:
            axis.broken_barh(spans, (y, 0.8), facecolors=facecolors, edgecolors=facecolors)
    axis.set_yticks([0.5, 1.5], ["predicted", "truth"])
    axis.set_xlabel("seconds since the first frame")
    axis.set_xlim(0, max(end, 1e-3))
    axis.set_title(f"{mode}: segment accuracy {percent_text(metrics.segment_accuracy)}, "
                   f"frame accuracy {percent_text(metrics.frame_accuracy)}")  # fmt: skip
    shown = labels[:LEGEND_LABELS]  # a labels file may name thousands; the legend stays readable
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[label]) for label in shown]
    if len(labels) > len(shown):
        handles.append(plt.Rectangle((0, 0), 1, 1, color="white"))
        shown = [*shown, f"... {len(labels) - len(shown)} more"]
    axis.legend(handles, shown, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(figure)


def percent_text(value: float | None) -> str:
    """A share as "12.3 %", or "n/a" where there is none (no segment, no frame scored)."""
    return "n/a" if value is None else f"{100 * value:.1f} %"
