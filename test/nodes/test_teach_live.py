"""Teaching live through the graph: a scripted pose publisher, the interactive recording on
``bharnet/skeletons``, a taught model and its hot swap into the running recognizer."""

from __future__ import annotations

import io
import time
from collections.abc import Callable

import numpy as np
import pytest
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile
from std_msgs.msg import Header

from bharnet_ros.msg import ActionLabels, PersonSkeletonArray
from bharnet_ros.nodes.conversions import frame_to_msg, seconds_to_stamp
from bharnet_ros.nodes.graph import GraphOptions, describe_graph
from bharnet_ros.nodes.runner import create_node
from bharnet_ros.nodes.teach_live import LiveSkeletons
from bharnet_ros.training.dataset import SkeletonDataset
from bharnet_ros.training.synth import generate_sequence
from bharnet_ros.training.teach import TeachSettings, export_taught, teach
from bharnet_ros.training.teach_record import Prompt, RecordingEndedError, TakePlan, record_interactively
from bharnet_ros.training.teach_takes import TrimSettings, takes_dataset

BASE_CLASSES = ["idle", "wave"]
FPS = 30.0
CHUNK = 10  # frames published before waiting for them: well under the subscription's depth of 30


class ScriptedPose:
    """A synthetic performer on ``bharnet/skeletons`` over DDS, one take's frames at a time.

    Each take is published as fast as it is taken in, stamped 1/30 s apart from the last: a take's
    length and gaps come from the stamps, as they do from a camera's, never from how fast this
    (possibly loaded) machine publishes. A stall of wall-clock pacing would read as "nobody in view".
    """

    def __init__(self, node: Node, motion: str) -> None:
        self.publisher = node.create_publisher(PersonSkeletonArray, "bharnet/skeletons", 30)
        self.sequence = generate_sequence(motion, np.random.default_rng(3))
        self.stamp = time.time()  # any camera clock would do; the recognizer times by the stamps
        self.sent = 0
        self.takes: list[list[float]] = []  # the stamps published for each take

    def publish(self, count: int) -> None:
        """The next ``count`` frames, stamped 1/30 s apart."""
        for _ in range(count):
            frame = self.sequence.frame(self.sent % len(self.sequence))
            frame.timestamp = self.stamp + self.sent / FPS
            header = Header(stamp=seconds_to_stamp(frame.timestamp), frame_id="camera")
            self.publisher.publish(PersonSkeletonArray(header=header, persons=[frame_to_msg(frame, header)]))
            self.takes[-1].append(frame.timestamp)
            self.sent += 1


def nobody(pose: ScriptedPose, source: LiveSkeletons, wait: Callable[..., bool]) -> None:
    """An empty array, as the pose node publishes for an image in which it sees nobody."""
    header = Header(stamp=seconds_to_stamp(pose.stamp), frame_id="camera")
    pose.publisher.publish(PersonSkeletonArray(header=header))
    assert wait(lambda: source.messages > 0)


def collected(source: LiveSkeletons) -> int:
    """How many frames the take now recording has received (the source keeps no public count)."""
    with source._lock:
        return len(source._frames or [])


def perform(pose: ScriptedPose, source: LiveSkeletons, seconds: float, wait: Callable[..., bool]) -> None:
    """Publish a take of ``seconds`` at 30 fps in chunks, each awaited until the source has it all,
    so that no frame is lost to a full subscription queue on a slow machine."""
    pose.takes.append([])
    total = round(seconds * FPS)
    while (done := len(pose.takes[-1])) < total:
        pose.publish(min(CHUNK, total - done))
        arrived = wait(lambda: collected(source) == len(pose.takes[-1]), timeout=60)
        assert arrived, "the take's frames did not arrive"


class NoWait:
    def sleep(self, seconds: float) -> None:
        pass


def rehearsal() -> SkeletonDataset:
    sequences = [generate_sequence(c, np.random.default_rng(i)) for i, c in enumerate(BASE_CLASSES)]
    return SkeletonDataset.from_sequences(sequences, [0, 1], BASE_CLASSES)


def test_record_live_teach_and_swap_into_the_running_recognizer(
    ros, wait, parameter_client, tmp_path, teach_base
):
    base = teach_base()
    export_taught(base, tmp_path / "base.onnx")
    options = GraphOptions(model=str(tmp_path / "base.onnx"))  # the recognizer as bharnet run makes it
    spec = next(spec for spec in describe_graph(options) if spec.node_class == "RecognizerNode")
    recognizer = ros.adopt(create_node(spec, options, ros.context))
    probe = ros.add(Node, "teach_probe")
    labels: list[ActionLabels] = []
    latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    probe.create_subscription(ActionLabels, "bharnet/labels", labels.append, latched)
    pose = ScriptedPose(probe, "clap")
    calls = []

    def sleep(seconds: float) -> None:  # nobody in view for the first take, then the performer
        calls.append(seconds)
        if len(calls) > 1:
            perform(pose, source, seconds, wait)
        else:
            nobody(pose, source, wait)

    source = LiveSkeletons(probe, sleep=sleep)
    assert wait(lambda: source.publishers()[0] > 0 and recognizer.inputs and labels)
    assert wait(lambda: pose.publisher.get_subscription_count() >= 2)  # ours and the recognizer's
    out = io.StringIO()
    prompt = Prompt(io.StringIO("\n\n\n"), out, NoWait())  # redo the flagged take, keep two good ones
    plan = TakePlan(["clap"], takes=2, seconds=1.2, countdown=1, hand_gestures={"clap"})
    takes = record_interactively(source, plan, TrimSettings(min_seconds=0.5), prompt)
    text = out.getvalue()
    assert "perform `clap` now (take 1 of 2)" in text
    assert "FLAGGED: no person: no skeleton arrived" in text  # the first take: nobody in view
    assert [(t.gesture, t.number, t.ok) for t in takes] == [("clap", 1, True), ("clap", 2, True)]
    assert all(t.seconds > 0.5 for t in takes)
    for take, stamps in zip(takes, pose.takes, strict=True):  # trimmed on the publisher's stamps
        first, last = take.sequence.timestamps[[0, -1]]
        assert stamps[0] - 1e-6 <= first < last <= stamps[-1] + 1e-6
        assert np.allclose(np.diff(take.sequence.timestamps), 1 / FPS, atol=1e-5)
    data = takes_dataset(takes, "ana", ["clap"], ["clap"])

    result = teach(base, data, rehearsal(), TeachSettings(views=2, steps=20, batch_size=8))
    export_taught(result.checkpoint, tmp_path / "taught.onnx")
    assert recognizer.recognizer.windows.stats.frames_pushed > 0  # it saw the performer too
    result = parameter_client("recognizer").set(model=str(tmp_path / "taught.onnx"))["model"]
    assert result.successful, result.reason
    assert wait(lambda: [c.class_name for c in labels[-1].class_map] == ["idle", "wave", "clap"])
    assert recognizer.status()[2]["model_swaps"] == 1


def bad_messages(source: LiveSkeletons) -> int:
    with source._lock:
        return source.bad_messages


def test_skeletons_that_cannot_be_read_during_a_take_are_counted_and_logged(ros, wait, capfd):
    probe = ros.add(Node, "teach_bad_skeletons_probe")
    publisher = probe.create_publisher(PersonSkeletonArray, "/teach_bad_skeletons", 10)
    source = LiveSkeletons(ros.add(Node, "teach_bad_skeletons"), "/teach_bad_skeletons")
    assert wait(lambda: publisher.get_subscription_count() > 0)
    frame = generate_sequence("wave", np.random.default_rng(0)).frame(0)
    good = PersonSkeletonArray(persons=[frame_to_msg(frame, Header())])
    bad = PersonSkeletonArray(persons=[frame_to_msg(frame, Header())])
    bad.persons[0].body = np.full(10, 0.5, np.float32)  # not four values per joint

    def sleep(seconds: float) -> None:  # the messages arrive over DDS while the take records
        for msg in (good, bad, bad):
            publisher.publish(msg)
        assert wait(lambda: collected(source) == 1 and bad_messages(source) == 2)

    source.sleep = sleep
    assert len(source.record(1.0)) == 1
    assert source.bad_messages == 2
    assert "2 skeletons of this take were refused" in capfd.readouterr().err

    def sleep_good(seconds: float) -> None:
        publisher.publish(good)
        assert wait(lambda: collected(source) == 1)

    source.sleep = sleep_good
    assert len(source.record(1.0)) == 1
    assert source.bad_messages == 0  # counted per take


def test_a_take_keeps_a_bounded_number_of_skeletons(ros, wait, capfd, monkeypatch):
    """A publisher far faster than a camera filled the memory while a take recorded."""
    from bharnet_ros.nodes import teach_live

    monkeypatch.setattr(teach_live, "MOST_TAKE_FRAMES", 2)
    probe = ros.add(Node, "teach_flood_probe")
    publisher = probe.create_publisher(PersonSkeletonArray, "/teach_flood", 10)
    source = LiveSkeletons(ros.add(Node, "teach_flood"), "/teach_flood")
    assert wait(lambda: publisher.get_subscription_count() > 0)
    frame = generate_sequence("wave", np.random.default_rng(0)).frame(0)

    def sleep(seconds: float) -> None:
        for k in range(3):
            publisher.publish(
                PersonSkeletonArray(persons=[frame_to_msg(frame, Header(stamp=seconds_to_stamp(k + 1.0)))])
            )
        assert wait(lambda: source.messages == 3)

    source.sleep = sleep
    assert len(source.record(1.0)) == 2
    assert "1 skeletons past the first 2 of this take were not kept" in capfd.readouterr().err


def test_a_take_without_any_message_stops_the_session_saying_the_graph_stopped(ros, wait):
    """The pose node publishes an array for every image: silence is a stopped graph, which every
    take blamed on the person ("no person", again at each redo)."""
    probe = ros.add(Node, "teach_silent_probe")
    probe.create_publisher(PersonSkeletonArray, "/teach_silent", 10)
    source = LiveSkeletons(ros.add(Node, "teach_silent"), "/teach_silent", sleep=lambda seconds: None)
    with pytest.raises(
        RecordingEndedError, match="no skeleton message arrived on /teach_silent for 1.2 s: is the"
    ):
        source.record(1.2)
    out = io.StringIO()
    plan = TakePlan(["clap"], takes=2, seconds=1.2, countdown=0)
    assert record_interactively(source, plan, TrimSettings(), Prompt(io.StringIO(""), out, NoWait())) == []
    assert "stopping: no skeleton message arrived" in out.getvalue()


def test_unstamped_skeletons_are_timed_on_arrival_not_collapsed_into_one_frame(ros, wait, capfd):
    """A camera driver that never stamps: the pose node passes stamp 0 on, as the recognizer copes."""
    probe = ros.add(Node, "teach_unstamped_probe")
    publisher = probe.create_publisher(PersonSkeletonArray, "/teach_unstamped", 10)
    source = LiveSkeletons(ros.add(Node, "teach_unstamped"), "/teach_unstamped")
    assert wait(lambda: publisher.get_subscription_count() > 0)
    sequence = generate_sequence("wave", np.random.default_rng(0))

    def sleep(seconds: float) -> None:  # one at a time, each awaited: arrivals apart, as a camera's are
        for t in range(5):
            publisher.publish(PersonSkeletonArray(persons=[frame_to_msg(sequence.frame(t), Header())]))
            assert wait(lambda t=t: collected(source) == t + 1)

    source.sleep = sleep
    frames = source.record(1.0)
    stamps = [frame.timestamp for frame in frames]
    assert len(stamps) == 5
    assert all(stamp > 0 for stamp in stamps)
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == 5
    assert "skeletons arrive with stamp 0" in capfd.readouterr().err


def test_a_topic_of_another_type_is_named_not_blamed_on_the_person(ros, wait):
    """--topic /camera/image_raw passed the wait (a publisher was there) and every take was then
    flagged "no person"."""
    import pytest
    from sensor_msgs.msg import Image

    from bharnet_ros.nodes.teach_live import live_skeletons

    probe = ros.add(Node, "teach_wrong_topic_probe")
    probe.create_publisher(Image, "/teach_camera", 10)
    with (  # the recorder on a participant of its own, as in its own process
        pytest.raises(ValueError, match=r"1 publisher\(s\) on /teach_camera send sensor_msgs/msg/Image"),
        live_skeletons("/teach_camera", wait=2.0),
    ):
        pass


def test_a_graph_found_a_moment_after_the_recorder_starts_is_not_called_missing(ros):
    """`--wait 0` looked once, before discovery could find a graph that was running: 'start the
    graph first', whatever the user did."""
    import threading

    source = LiveSkeletons(ros.add(Node, "teach_discovery"), "/teach_discovery")
    probe = ros.add(Node, "teach_discovery_probe")
    late = threading.Timer(0.5, lambda: probe.create_publisher(PersonSkeletonArray, "/teach_discovery", 10))
    late.start()
    try:
        source.wait_for_publisher(0.0)
    finally:
        late.join()
    assert source.publishers()[0] == 1


def test_a_best_effort_skeleton_publisher_is_recorded(ros, wait):
    """A best-effort publisher never reached the recorder's reliable subscription: no person, every take."""
    from rclpy.qos import ReliabilityPolicy

    probe = ros.add(Node, "teach_best_effort_probe")
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)
    publisher = probe.create_publisher(PersonSkeletonArray, "/teach_best_effort", qos)
    frame = generate_sequence("wave", np.random.default_rng(0)).frame(0)
    source = LiveSkeletons(ros.add(Node, "teach_best_effort"), "/teach_best_effort")
    source.wait_for_publisher(5.0)
    assert wait(lambda: publisher.get_subscription_count() > 0)

    def sleep(seconds: float) -> None:
        for t in range(5):
            frame.timestamp = 1000.0 + t / 30
            publisher.publish(PersonSkeletonArray(persons=[frame_to_msg(frame, Header())]))
        assert wait(lambda: collected(source) == 5)

    source.sleep = sleep
    assert len(source.record(1.0)) == 5


def test_takes_follow_the_recognizers_frame_rules(ros, wait):
    """One skeleton per person and message, and no stamp-0 skeleton among stamped ones (a second
    publisher), as the recognizer reads the same topic."""
    probe = ros.add(Node, "teach_rules_probe")
    publisher = probe.create_publisher(PersonSkeletonArray, "/teach_rules", 10)
    source = LiveSkeletons(ros.add(Node, "teach_rules"), "/teach_rules")
    assert wait(lambda: publisher.get_subscription_count() > 0)
    frame = generate_sequence("wave", np.random.default_rng(0)).frame(0)
    stamped = Header(stamp=seconds_to_stamp(1000.0))
    twice = PersonSkeletonArray(persons=[frame_to_msg(frame, stamped), frame_to_msg(frame, stamped)])
    unstamped = PersonSkeletonArray(persons=[frame_to_msg(frame, Header())])

    def sleep(seconds: float) -> None:
        for msg in (twice, unstamped):
            publisher.publish(msg)
        assert wait(lambda: collected(source) == 1 and bad_messages(source) == 2)

    source.sleep = sleep
    [kept] = source.record(1.0)
    assert kept.timestamp == 1000.0
    assert source.bad_messages == 2


def test_teach_swap_sets_the_running_recognizers_model_as_ros2_param_set_does(
    ros, wait, tiny_model, tmp_path, capsys
):
    """The venv has no `ros2` command line: the README's hot swap step needs one of ours."""
    import shutil

    from rclpy.parameter import Parameter

    from bharnet_ros.cli import main
    from bharnet_ros.nodes.recognizer_node import RecognizerNode

    recognizer = ros.add(RecognizerNode, parameter_overrides=[Parameter("model", value=str(tiny_model))])
    assert wait(lambda: recognizer.recognizer is not None)
    copy = shutil.copy(tiny_model, tmp_path / "copy.onnx")
    assert main(["teach", "swap", str(copy), "--wait", "20"]) == 0
    assert capsys.readouterr().out.strip() == f"/recognizer now runs {copy}"
    assert recognizer.get_parameter("model").value == str(copy)
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    assert main(["teach", "swap", str(broken), "--wait", "20"]) == 2
    assert f"/recognizer refused {broken}: " in capsys.readouterr().err
    assert recognizer.get_parameter("model").value == str(copy)  # the old one keeps running
    assert main(["teach", "swap", str(copy), "--node", "/nobody", "--wait", "1"]) == 2
    assert "no node /nobody answered within 1 s" in capsys.readouterr().err
    for odd in ("/recognizer//x", "a b", "1abc", "~"):  # rclpy raised on these: a traceback
        assert main(["teach", "swap", str(copy), "--node", odd]) == 2
        assert f"--node {odd!r} names no node" in capsys.readouterr().err
