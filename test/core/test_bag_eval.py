"""The bag evaluation as a library: options from a bag, the deterministic run, another mode plugged
in as ``replay``, and the report (the CLI around it is test/tools/test_bag.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from bharnet_ros.core import bag
from bharnet_ros.core.annotations import Segment, save_csv
from bharnet_ros.core.bag_eval import EvalError, EvalOptions, EvalRun, eval_options, evaluate_bag
from bharnet_ros.core.streaming_metrics import Decision
from bharnet_ros.training.synth import generate_scripted

ORIGIN = 1_700_000_000_000_000_000  # ns
TOPIC = "/bharnet/skeletons"


@pytest.fixture
def skeleton_bag(tmp_path) -> Path:
    """Two seconds each of idle and wave as skeleton messages stamped from ORIGIN."""
    sequence, _ = generate_scripted([("idle", 2.0), ("wave", 2.0)], np.random.default_rng(3))
    path = tmp_path / "skeletons"
    with bag.BagWriter(path) as writer:
        writer.add_topic(TOPIC, bag.SKELETON_TYPE)
        for t in range(len(sequence)):
            stamp = ORIGIN + round(sequence.timestamps[t] * 1e9)
            writer.write(TOPIC, stamp, bag.skeleton_array_message([sequence.frame(t)], stamp))
    return path


@pytest.fixture
def params_file(tmp_path) -> str:
    """Short windows, so four seconds give many decisions; no pose section (a skeleton bag needs none)."""
    windows = {"min_seconds": 0.4, "stride_seconds": 0.13, "window_seconds": 0.8}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"/**/recognizer": {"ros__parameters": windows}}))
    return str(path)


@pytest.fixture
def labels(tmp_path) -> Path:
    return save_csv(tmp_path / "labels.csv", [Segment(0.0, 2.0, "idle"), Segment(2.0, 4.0, "wave")])


def test_options_come_from_the_bag_and_the_parameters_file(skeleton_bag, tiny_model, params_file, tmp_path):
    options = eval_options(skeleton_bag, model=tiny_model, params_file=params_file)
    assert (options.topic, options.msgtype, options.origin) == (TOPIC, bag.SKELETON_TYPE, ORIGIN)
    assert options.recognizer == {"min_seconds": 0.4, "stride_seconds": 0.13, "window_seconds": 0.8}
    assert options.pose == {}
    assert eval_options(skeleton_bag, model=tiny_model).pose == {}  # skeletons: no pose node runs
    camera_bag(tmp_path / "cam", [(1000, 0), (1000, 33_000_000)])
    assert eval_options(tmp_path / "cam", model=tiny_model).pose["backend"] == "holistic"  # the shipped file
    assert options.params_file == params_file


def test_a_robots_file_keyed_by_its_namespace_is_refused_not_passed_over(skeleton_bag, tiny_model, tmp_path):
    """/robot1/recognizer is not the root's recognizer, which bag eval runs: its model and
    thresholds were passed over without a word (the shipped model ran)."""
    from bharnet_ros.core.params_file import ParamsFileError, read_params_file, root_parameters

    path = tmp_path / "robot1.yaml"
    path.write_text(yaml.safe_dump({"/robot1/recognizer": {"ros__parameters": {"model": str(tiny_model)}}}))
    with pytest.raises(ParamsFileError, match=r"/robot1/recognizer\) are for other namespaces"):
        root_parameters(read_params_file(path), "recognizer")
    with pytest.raises(EvalError, match=r"key them /\*\*/recognizer"):
        evaluate_bag(skeleton_bag, None, tmp_path / "out", model=tiny_model, params_file=str(path))
    both = {"/robot1/recognizer": {"ros__parameters": {}}, "recognizer": {"ros__parameters": {"top_k": 2}}}
    path.write_text(yaml.safe_dump(both))  # the root's own entry is there: the others are another robot's
    assert root_parameters(read_params_file(path), "recognizer") == {"top_k": 2}


def test_the_parameters_file_s_model_is_used_unless_model_is_given(skeleton_bag, tiny_model, tmp_path):
    """The file's recognizer ``model`` is what the node would load: `bag eval --params-file` ran the
    shipped model while its report's params.yaml named the file's."""
    path = tmp_path / "with_model.yaml"
    path.write_text(yaml.safe_dump({"/**/recognizer": {"ros__parameters": {"model": str(tiny_model)}}}))
    assert eval_options(skeleton_bag, params_file=str(path)).model == tiny_model
    other = tmp_path / "other.onnx"
    other.write_bytes(tiny_model.read_bytes())
    assert eval_options(skeleton_bag, model=other, params_file=str(path)).model == other  # --model wins
    path.write_text(yaml.safe_dump({"/**/recognizer": {"ros__parameters": {"model": 5}}}))
    with pytest.raises(EvalError, match="must be a file name"):
        eval_options(skeleton_bag, params_file=str(path))


def test_the_parameters_file_s_device_is_used_unless_device_is_given(skeleton_bag, tiny_model, tmp_path):
    """`device: cuda` in the file the node runs with was replaced by cpu without a word."""
    path = tmp_path / "with_device.yaml"
    path.write_text(yaml.safe_dump({"/**/recognizer": {"ros__parameters": {"device": "auto"}}}))
    assert eval_options(skeleton_bag, model=tiny_model, params_file=str(path)).device == "auto"
    assert eval_options(skeleton_bag, model=tiny_model, params_file=str(path), device="cpu").device == "cpu"
    assert eval_options(skeleton_bag, model=tiny_model).device == "cpu"  # the shipped file's
    path.write_text(yaml.safe_dump({"/**/recognizer": {"ros__parameters": {"device": "gpu"}}}))
    with pytest.raises(EvalError, match="the recognizer's device must be one of cpu, cuda, auto, not 'gpu'"):
        eval_options(skeleton_bag, model=tiny_model, params_file=str(path))


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"ros__parameters": [1, 2]}, "ros__parameters must map parameter names to values"),
        ({"ros__parameters": {"stride_seconds": "abc"}}, "the recognizer's parameters: .*stride"),
        ({"ros__parameters": {"stride_seconds": float("nan")}}, "the recognizer's parameters: .*stride"),
    ],
)
def test_a_parameters_file_the_recognizer_could_not_use_is_one_error(
    tmp_path, skeleton_bag, tiny_model, labels, section, message
):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"/**/recognizer": section}))
    with pytest.raises(EvalError, match=message) as refused:
        evaluate_bag(skeleton_bag, labels, tmp_path / "report", model=tiny_model, params_file=str(path))
    assert "\n" not in str(refused.value)


def test_the_deterministic_run_scores_and_writes_the_report(
    tmp_path, skeleton_bag, tiny_model, params_file, labels
):
    summary = evaluate_bag(
        skeleton_bag, labels, tmp_path / "report", model=tiny_model, params_file=params_file
    )
    assert summary["mode"] == "deterministic"
    assert summary["counts"]["frames"] == summary["counts"]["processed"] == 120
    assert summary["counts"]["actions"] == summary["metrics"]["predictions_scored"] > 10
    assert json.loads((tmp_path / "report" / "summary.json").read_text()) == summary
    written = {p.name for p in (tmp_path / "report").iterdir()}
    assert written == {"summary.json", "predictions.csv", "timeline.png", "params.yaml"}
    used = yaml.safe_load((tmp_path / "report" / "params.yaml").read_text())  # a real-time report's
    assert used["/**/recognizer"]["ros__parameters"]["model"] == str(tiny_model)  # was left beside it
    assert used["/**/recognizer"]["ros__parameters"]["min_seconds"] == 0.4
    assert "/**/pose" not in used  # the live graph's settings for the replay are not the run's


def test_a_model_that_fails_on_the_bags_windows_is_one_eval_error(
    tmp_path, skeleton_bag, tiny_model, params_file, labels, monkeypatch
):
    """It passed the load check (a still window) and failed on real ones: ORT's traceback had ended
    the run (core/inference.py's tests build such graphs; here the failure is given)."""
    from bharnet_ros.core.inference import InferenceError, OnnxClassifier

    def fails(self, *args):
        raise InferenceError(f"{self.path}: the model failed on a window (indices out of bounds)")

    monkeypatch.setattr(OnnxClassifier, "logits", fails)
    with pytest.raises(EvalError, match="failed on a window .*; this model cannot be evaluated"):
        evaluate_bag(skeleton_bag, labels, tmp_path / "report", model=tiny_model, params_file=params_file)
    assert not (tmp_path / "report").exists()


def test_another_mode_plugs_in_as_replay(tmp_path, skeleton_bag, tiny_model, labels):
    seen: list[tuple[EvalOptions, Path]] = []

    def replay(options: EvalOptions, out: Path) -> EvalRun:
        seen.append((options, out))
        predictions = [Decision(1.0, "idle"), Decision(2.5, "wave"), Decision(3.0, "stop")]
        return EvalRun("realtime", 120, 118, 2, 0, predictions, [0.02, None, 0.03], {"replay_seconds": 4.0})

    summary = evaluate_bag(skeleton_bag, labels, tmp_path / "report", model=tiny_model, replay=replay)
    assert [(o.topic, out) for o, out in seen] == [(TOPIC, tmp_path / "report")]
    assert summary["counts"] == {"frames": 120, "processed": 118, "dropped": 2, "bad_frames": 0, "actions": 3}
    assert summary["metrics"]["segments_correct"] == 2  # wave: a tie with stop, and seen first
    assert summary["timing"] == {"replay_seconds": 4.0}
    rows = (tmp_path / "report" / "predictions.csv").read_text().splitlines()
    assert rows[1:] == [
        "1.000000,0,idle,0.000000,idle,20.0",
        "2.500000,0,wave,0.000000,wave,",
        "3.000000,0,stop,0.000000,wave,30.0",
    ]


def test_a_replay_without_any_decision_still_writes_its_report(tmp_path, skeleton_bag, tiny_model, labels):
    """A clip in which nobody was ever recognised (no person, too short) is a result, not a crash."""

    def replay(options: EvalOptions, out: Path) -> EvalRun:
        return EvalRun("realtime", 120, 120, 0, 0, [], [], {})

    summary = evaluate_bag(skeleton_bag, labels, tmp_path / "report", model=tiny_model, replay=replay)
    assert summary["counts"]["actions"] == 0
    assert summary["metrics"]["segments_correct"] == 0
    assert (tmp_path / "report" / "timeline.png").is_file()


def test_input_problems_are_one_line_eval_errors(tmp_path, skeleton_bag, labels):
    with pytest.raises(EvalError, match="model .*missing.onnx not found"):
        evaluate_bag(skeleton_bag, labels, tmp_path / "out", model=tmp_path / "missing.onnx")
    with pytest.raises(EvalError, match="has no topic /camera"):
        evaluate_bag(skeleton_bag, labels, tmp_path / "out", topic="/camera")
    labels.write_text("start,end,label\n2,1,idle\n")
    with pytest.raises(EvalError, match="not after"):
        evaluate_bag(skeleton_bag, labels, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_labels_file_of_thousands_of_segments_draws_one_collection_per_lane(
    tmp_path, skeleton_bag, tiny_model, monkeypatch
):
    """timeline.png drew one bar collection per segment (20 000 segments: eight minutes), and every
    distinct label went into the legend; now each lane is one collection and the legend is capped."""
    from bharnet_ros.core.bag_eval import LEGEND_LABELS

    segments = [Segment(i * 0.002, i * 0.002 + 0.001, f"class{i % 1000}") for i in range(20_000)]
    labels = save_csv(tmp_path / "labels.csv", segments)

    def replay(options: EvalOptions, out: Path) -> EvalRun:
        predictions = [Decision(i * 0.013, "idle") for i in range(3000)]
        return EvalRun("realtime", 120, 120, 0, 0, predictions, [None] * len(predictions), {})

    saved = saved_figures(monkeypatch)
    summary = evaluate_bag(skeleton_bag, labels, tmp_path / "report", model=tiny_model, replay=replay)
    assert summary["metrics"]["segments"] == 20_000
    assert summary["metrics"]["predictions_scored"] + summary["metrics"]["predictions_unscored"] == 3000
    assert (tmp_path / "report" / "timeline.png").stat().st_size > 0
    [axis] = saved[0].axes
    assert [len(bars.get_paths()) for bars in axis.collections] == [20_000, 3000]  # truth, predicted
    assert not axis.patches  # no bar drawn as a shape of its own
    legend = [text.get_text() for text in axis.get_legend().get_texts()]
    assert len(legend) == LEGEND_LABELS + 1
    assert legend[-1] == f"... {1001 - LEGEND_LABELS} more"  # class0..class999 and idle


def saved_figures(monkeypatch) -> list:
    """The matplotlib figures saved from now on (still saved to their files): what the report drew."""
    from matplotlib.figure import Figure

    saved, save = [], Figure.savefig

    def keep(figure, *args, **kwargs):
        saved.append(figure)
        return save(figure, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    return saved


def test_the_offline_pose_stage_is_built_from_the_whole_pose_section(tiny_model):
    from bharnet_ros.core.bag import IMAGE_TYPE
    from bharnet_ros.core.bag_eval import _pose_stage

    pose = {"backend": "multi", "num_poses": 2, "mirrored_input": True, "compressed": False}
    options = EvalOptions(Path("b"), "/camera/image_raw", IMAGE_TYPE, tiny_model, pose=pose)
    with _pose_stage(options) as stage:
        assert (stage.backend, stage.mirrored_input) == ("multi", True)  # as the pose node builds it
    bad = EvalOptions(Path("b"), "/camera/image_raw", IMAGE_TYPE, tiny_model, pose={"backend": "foo"})
    with pytest.raises(EvalError, match="the parameters file's pose section: unknown pose backend 'foo'"):
        _pose_stage(bad)


@pytest.mark.parametrize("value", [0, 100, 1 << 31, 2.5, True, "4k"])
def test_a_max_image_pixels_the_pose_node_refuses_is_one_eval_error(value):
    from bharnet_ros.core.bag_eval import max_image_pixels

    with pytest.raises(EvalError, match="pose max_image_pixels must be an integer from 4096 to"):
        max_image_pixels({"max_image_pixels": value})
    assert max_image_pixels({}) == 3840 * 2160  # the node's default
    assert max_image_pixels({"max_image_pixels": 4096}) == 4096


@pytest.mark.parametrize("array_header", ["stamped", "zero"])
@pytest.mark.parametrize(("labelled", "accepted"), [((5.0, 8.0), True), ((12.0, 14.0), False)])
def test_labels_are_checked_against_the_span_of_the_header_stamps(
    tmp_path, tiny_model, labelled, accepted, array_header
):
    """A bag recorded from a tenfold replay: its stamps span 9 s, its log times 0.9 s. Labels 5 s in
    were refused as lying past the bag; labels past its stamps still are. An array whose own header
    is 0 is timed by its persons' stamps, as the recognizer times them (it was read as 0)."""
    from bharnet_ros.core.annotations import Annotations
    from bharnet_ros.core.bag_eval import check_labels_in_bag

    sequence, _ = generate_scripted([("wave", 1.0)], np.random.default_rng(3))
    path = tmp_path / "fast"
    with bag.BagWriter(path) as writer:
        writer.add_topic(TOPIC, bag.SKELETON_TYPE)
        for i in range(10):
            stamp = ORIGIN + i * 1_000_000_000
            msg = bag.skeleton_array_message([sequence.frame(i)], stamp)
            if array_header == "zero":
                msg.header = bag.make_header(0, "camera")
            writer.write(TOPIC, ORIGIN + i * 100_000_000, msg)
    options = eval_options(path, model=tiny_model)
    annotations = Annotations((Segment(*labelled, "wave"),), absolute=False)
    if accepted:
        check_labels_in_bag(annotations, tmp_path / "labels.csv", options)
        return
    with pytest.raises(EvalError, match="no segment lies within the bag's 9.00 s"):
        check_labels_in_bag(annotations, tmp_path / "labels.csv", options)


# --------------------------------------------------------------------------------------------------
# The deterministic run takes and refuses what the recognizer node does
# --------------------------------------------------------------------------------------------------

WINDOWS = {"min_seconds": 0.4, "stride_seconds": 0.13, "window_seconds": 0.8}  # person_timeout: 1 s


def person(frame, sec: int, nanosec: int, person_id: int = 0):
    """A rosbags PersonSkeleton of ``frame`` with a header stamp of its own (any value, valid or not)."""
    from bharnet_ros.core.skeleton_fields import person_fields

    stamp = bag.message_class("builtin_interfaces/msg/Time")(sec=sec, nanosec=nanosec)
    header = bag.message_class("std_msgs/msg/Header")(stamp=stamp, frame_id="camera")
    fields = {**person_fields(frame), "person_id": person_id}
    return bag.message_class("bharnet_ros/msg/PersonSkeleton")(header=header, **fields)


def odd_bag(path: Path, odd=None, header_stamp=None) -> Path:
    """The skeleton_bag's four seconds of person 0 (logged at their stamps), with ``odd(i, frame,
    sec, nanosec)``'s extra persons after person 0 in message i, and the array header stamped
    ``header_stamp`` (default: the frame's stamp)."""
    sequence, _ = generate_scripted([("idle", 2.0), ("wave", 2.0)], np.random.default_rng(3))
    with bag.BagWriter(path) as writer:
        writer.add_topic(TOPIC, bag.SKELETON_TYPE)
        for t in range(len(sequence)):
            stamp = ORIGIN + round(sequence.timestamps[t] * 1e9)
            sec, nanosec = divmod(stamp, 1_000_000_000)
            persons = [person(sequence.frame(t), sec, nanosec)]
            persons += odd(t, sequence.frame(t), sec, nanosec) if odd else []
            header = bag.make_header(stamp if header_stamp is None else header_stamp, "camera")
            writer.write(TOPIC, stamp, bag.message_class(bag.SKELETON_TYPE)(header=header, persons=persons))
    return path


def offline(path: Path, model: Path):
    from bharnet_ros.core.bag_eval import evaluate_offline

    options = EvalOptions(path, TOPIC, bag.SKELETON_TYPE, model, recognizer=WINDOWS, origin=ORIGIN)
    return evaluate_offline(options)


ODD_PERSONS = {  # what the recognizer node refuses (its bad_messages), and how often here
    "nanosec of a second or more": (
        lambda t, f, s, n: [person(f, s, 4_000_000_000)] if t % 10 == 5 else [],
        12,
    ),
    "a time before 1970": (lambda t, f, s, n: [person(f, -5, 0)] if t % 10 == 5 else [], 12),
    "stamp 0 among stamped frames": (lambda t, f, s, n: [person(f, 0, 0)] if t % 10 == 5 else [], 12),
    "an older second skeleton of the id": (lambda t, f, s, n: [person(f, s - 1, n)], 120),
}


@pytest.mark.parametrize("case", ODD_PERSONS)
def test_skeletons_the_node_refuses_are_refused_and_counted_offline(tmp_path, tiny_model, case):
    """Each odd skeleton went into the recognizer: stamp 0 or one 4 s out timed everyone out on the
    stamp clock, and an older second skeleton of the id reset the window every message, so the
    bag gave no decision where the live node gives them all."""
    odd, refused = ODD_PERSONS[case]
    clean = offline(odd_bag(tmp_path / "clean"), tiny_model)
    run = offline(odd_bag(tmp_path / "odd", odd), tiny_model)
    assert len(clean.predictions) > 10
    assert run.predictions == clean.predictions
    assert (run.bad_skeletons, run.processed, run.bad_frames) == (refused, 120, 0)


def test_one_persons_odd_clock_or_an_unstamped_array_header_times_nobody_out(tmp_path, tiny_model):
    """Persons age on the log times, as on the node's arrival clock: a second person stamped 5 s
    ahead (a skewed camera), or an array header left at 0, no longer timed person 0 out."""
    clean = offline(odd_bag(tmp_path / "clean"), tiny_model)
    ahead = offline(odd_bag(tmp_path / "ahead", lambda t, f, s, n: [person(f, s + 5, n, 1)]), tiny_model)
    assert [p for p in ahead.predictions if p.person_id == 0] == clean.predictions
    assert {p.person_id for p in ahead.predictions} == {0, 1}
    assert offline(odd_bag(tmp_path / "header", header_stamp=0), tiny_model).predictions == clean.predictions


def test_a_body_the_model_cannot_take_is_counted_and_the_run_goes_on(tmp_path, tiny_model, params_file):
    """An ntu25 body (a depth tracker's) to a mediapipe33 model: Recognizer.push raised outside the
    run's try, and the whole evaluation ended without a report."""
    from bharnet_ros.core.skeleton import SkeletonFrame

    def ntu(t, frame, sec, nanosec):
        return (
            [person(SkeletonFrame.empty(frame.timestamp, layout="ntu25"), sec, nanosec, 2)] if t == 20 else []
        )

    clean = offline(odd_bag(tmp_path / "clean"), tiny_model)
    run = offline(odd_bag(tmp_path / "ntu", ntu), tiny_model)
    assert (run.predictions, run.bad_skeletons) == (clean.predictions, 1)
    summary = evaluate_bag(
        tmp_path / "ntu", None, tmp_path / "report", model=tiny_model, params_file=params_file
    )
    assert summary["counts"]["bad_skeletons"] == 1


def test_the_truth_column_finds_each_decisions_segment_by_bisection(tmp_path, monkeypatch):
    """predictions.csv looked each decision's truth up with a scan of every segment: 24 000
    decisions against 20 000 segments took 20 s; now each decision checks one segment."""
    from bharnet_ros.core.annotations import label_at
    from bharnet_ros.core.bag_eval import write_predictions

    segments = [Segment(i * 0.18, i * 0.18 + 0.09, "a" if i % 2 else "b") for i in range(2000)]
    predictions = [Decision(round(k * 0.15, 6), "a") for k in range(2400)]
    expected = [label_at(segments, p.stamp) or "" for p in predictions]
    checks, contains = [], Segment.contains
    monkeypatch.setattr(Segment, "contains", lambda s, t: checks.append(t) or contains(s, t))
    run = EvalRun("deterministic", 0, 0, 0, 0, predictions, [None] * len(predictions))
    write_predictions(tmp_path / "p.csv", run, segments)
    assert len(checks) <= len(predictions)  # a scan made some 2.4 million
    rows = (tmp_path / "p.csv").read_text().splitlines()[1:]
    assert [row.split(",")[4] for row in rows] == expected
    assert {"a", "b", ""} <= set(expected)


# --------------------------------------------------------------------------------------------------
# Stamps no clock gives, and stamps of 0: as the nodes take them, and time 0 where there is one
# --------------------------------------------------------------------------------------------------


class FakePoseStage:
    """Stands in for the pose stage: records the time each image is tracked at and finds nobody."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def process(self, image, timestamp: float, camera_size=None):
        self.times.append(timestamp)
        return image, []

    def close(self) -> None:
        pass


def camera_bag(path: Path, stamps: list[tuple[int, int]], topic: str = "/cam") -> list[int]:
    """Small images on ``topic`` stamped ``(sec, nanosec)`` each (any values), logged 33 ms apart
    from ORIGIN."""
    time_class = bag.message_class("builtin_interfaces/msg/Time")
    header_class = bag.message_class("std_msgs/msg/Header")
    log_times = [ORIGIN + i * 33_000_000 for i in range(len(stamps))]
    with bag.BagWriter(path) as writer:
        writer.add_topic(topic, bag.IMAGE_TYPE)
        for (sec, nanosec), log_time in zip(stamps, log_times, strict=True):
            message = bag.image_message(np.zeros((16, 16, 3), np.uint8), 0, "cam")
            message.header = header_class(stamp=time_class(sec=sec, nanosec=nanosec), frame_id="cam")
            writer.write(topic, log_time, message)
    return log_times


def test_a_camera_topic_the_live_graph_cannot_take_is_refused_in_realtime_with_one_line(tmp_path, tiny_model):
    """A bag from another tool on /cam{x}/image (record-video refuses the name) ended the real-time
    mode in a traceback from the graph's description."""
    from bharnet_ros.nodes.bag_eval import realtime_replay

    camera_bag(tmp_path / "b", [(1000, 0), (1001, 0)], topic="/cam{x}/image")
    with pytest.raises(EvalError, match=r"/cam\{x\}/image: the live graph cannot subscribe to it"):
        evaluate_bag(tmp_path / "b", None, tmp_path / "out", model=tiny_model, replay=realtime_replay())


def test_images_the_pose_node_refuses_for_their_stamp_are_bad_frames_offline(
    tmp_path, tiny_model, monkeypatch
):
    """The pose node refuses an image stamped with nanoseconds of a second or more, or before 1970
    (a bad frame); the deterministic run posed them. A stamp of 0 is tracked on the log time, as the
    node tracks it on its clock."""
    from bharnet_ros.core import bag_eval

    stage = FakePoseStage()
    monkeypatch.setattr(bag_eval, "_pose_stage", lambda options: stage)
    stamps = [(1000, 0), (1000, 1_500_000_000), (-1, 0), (0, 0), (1001, 0)]
    log_times = camera_bag(tmp_path / "b", stamps)
    options = EvalOptions(tmp_path / "b", "/cam", bag.IMAGE_TYPE, tiny_model, origin=1000 * 10**9)
    run = bag_eval.evaluate_offline(options)
    assert (run.frames, run.processed, run.bad_frames) == (5, 3, 2)
    assert stage.times == [1000.0, log_times[3] * 1e-9, 1001.0]


def unstamped_bag(path: Path) -> Path:
    """The skeleton_bag's sequence with every stamp 0 (array and persons), logged from ORIGIN: a
    driver that never sets the stamp."""
    sequence, _ = generate_scripted([("idle", 2.0), ("wave", 2.0)], np.random.default_rng(3))
    with bag.BagWriter(path) as writer:
        writer.add_topic(TOPIC, bag.SKELETON_TYPE)
        for t in range(len(sequence)):
            log_time = ORIGIN + round(sequence.timestamps[t] * 1e9)
            writer.write(TOPIC, log_time, bag.skeleton_array_message([sequence.frame(t)], 0))
    return path


def test_time_zero_is_the_first_stamp_that_times_a_frame(
    tmp_path, skeleton_bag, tiny_model, labels, params_file
):
    """An array header left at 0 made time 0 the Unix epoch, and every decision went unscored."""
    header_zero = odd_bag(tmp_path / "header_zero", header_stamp=0)
    options = eval_options(header_zero, model=tiny_model)
    assert options.origin == ORIGIN  # the first person's stamp
    assert not options.unstamped
    scored = evaluate_bag(header_zero, labels, tmp_path / "r1", model=tiny_model, params_file=params_file)
    stamped = evaluate_bag(skeleton_bag, labels, tmp_path / "r2", model=tiny_model, params_file=params_file)
    assert scored["metrics"] == stamped["metrics"]
    assert scored["metrics"]["predictions_scored"] > 10


def test_an_unstamped_topic_is_timed_from_its_first_log_time(tmp_path, tiny_model, labels, params_file):
    """Frames stamped 0 are timed by their log times; time 0 was the epoch, decades before them."""
    path = unstamped_bag(tmp_path / "unstamped")
    options = eval_options(path, model=tiny_model)
    assert options.origin == ORIGIN
    assert options.unstamped
    summary = evaluate_bag(path, labels, tmp_path / "report", model=tiny_model, params_file=params_file)
    assert summary["first_stamp"] == pytest.approx(ORIGIN * 1e-9)
    assert summary["metrics"]["predictions_unscored"] == 0
    assert summary["metrics"]["predictions_scored"] > 10

    def replay(options: EvalOptions, out: Path) -> EvalRun:
        pytest.fail("the live graph would time the frames by its own clock")

    with pytest.raises(EvalError, match=f"no frame on {TOPIC} is stamped .* evaluate it without --realtime"):
        evaluate_bag(path, labels, tmp_path / "live", model=tiny_model, replay=replay)


def test_labels_the_model_cannot_say_and_decisions_outside_them_are_warned_of(
    tmp_path, skeleton_bag, tiny_model, params_file
):
    """A capitalised label, or labels of another recording, scored 0 % with nothing said."""
    typo = save_csv(tmp_path / "typo.csv", [Segment(0.0, 2.0, "Idle"), Segment(2.0, 4.0, "wave")])
    summary = evaluate_bag(skeleton_bag, typo, tmp_path / "a", model=tiny_model, params_file=params_file)
    assert summary["warnings"] == [
        "labels the model has no class for, so never scored right: Idle; check their spelling against "
        "the model's classes"
    ]
    late = save_csv(tmp_path / "late.csv", [Segment(3.9, 30.0, "wave")])
    summary = evaluate_bag(skeleton_bag, late, tmp_path / "b", model=tiny_model, params_file=params_file)
    assert "decisions lie in no labelled segment" in summary["warnings"][0]


def test_absolute_labels_place_a_decision_on_a_boundary_as_relative_ones_do(
    tmp_path, skeleton_bag, tiny_model, params_file
):
    """start_stamp - origin carried 2e-7 s of float error: a decision stamped exactly on a
    segment's start was scored in the segment before."""
    origin = ORIGIN * 1e-9
    relative = save_csv(tmp_path / "rel.csv", [Segment(0.0, 0.8, "idle"), Segment(0.8, 4.0, "wave")])
    stamped = [Segment(origin, origin + 0.8, "idle"), Segment(origin + 0.8, origin + 4.0, "wave")]
    absolute = save_csv(tmp_path / "abs.csv", stamped, absolute=True)
    runs = [
        evaluate_bag(skeleton_bag, labels, tmp_path / name, model=tiny_model, params_file=params_file)
        for name, labels in (("rel", relative), ("abs", absolute))
    ]
    assert runs[0]["metrics"] == runs[1]["metrics"]
    rows = [(tmp_path / name / "predictions.csv").read_text() for name in ("rel", "abs")]
    assert rows[0] == rows[1]


def test_a_run_whose_skeletons_were_all_refused_says_so(tmp_path, tiny_model):
    from bharnet_ros.core.bag_eval import silence_reason

    run = EvalRun("deterministic", 120, 120, 0, 0, [], [], bad_skeletons=120)
    run.first_refusal = "ignored a skeleton: nanosec 4000000000 is a second or more"
    options = EvalOptions(tmp_path / "none", TOPIC, bag.SKELETON_TYPE, tiny_model)
    assert silence_reason(options, run) == (
        "no action: 120 skeletons were refused as the recognizer node refuses them (the first: ignored a "
        "skeleton: nanosec 4000000000 is a second or more); fix what publishes them"
    )


def test_an_empty_skeleton_topic_beside_a_camera_with_frames_is_not_the_default(tmp_path):
    """It was chosen, then refused as holding no messages: 'record some frames first'."""
    from bharnet_ros.core.bag_eval import choose_topic

    path = tmp_path / "camera_and_nothing"
    with bag.BagWriter(path) as writer:
        writer.add_topic(TOPIC, bag.SKELETON_TYPE)  # a pose node that never published
        writer.add_topic("/camera/image_raw", bag.IMAGE_TYPE)
        for t in range(3):
            stamp = ORIGIN + t * 10**8
            writer.write("/camera/image_raw", stamp, bag.image_message(np.zeros((4, 6, 3), np.uint8), stamp))
    assert choose_topic(path, None) == ("/camera/image_raw", bag.IMAGE_TYPE)
