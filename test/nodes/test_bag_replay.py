"""Bags and the live graph: recording topics with raw subscriptions, and a short real-time eval."""

from __future__ import annotations

import json
import os
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from bharnet_ros.cli import main
from bharnet_ros.core import bag
from bharnet_ros.core.annotations import Segment, save_csv
from bharnet_ros.core.paths import share_file
from bharnet_ros.core.skeleton import SkeletonFrame
from bharnet_ros.msg import Action
from bharnet_ros.nodes.bag_io import record_topics


def test_record_live_topics_with_their_types(ros, wait, tmp_path, make_image):
    talker = ros.add(Node, "talker")
    images = talker.create_publisher(Image, "/rec/image_raw", qos_profile_sensor_data)  # best effort
    actions = talker.create_publisher(Action, "/rec/action", 10)
    stop, counts, progress = threading.Event(), {}, {}

    def record() -> None:
        topics = ["/rec/image_raw", "rec/action"]
        counts.update(record_topics(tmp_path / "b", topics, wait=10, stop=stop, progress=progress))

    recorder = threading.Thread(target=record)
    recorder.start()
    pixels = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)

    def send(i: int) -> None:
        images.publish(make_image(pixels, stamp_ns=1_000_000_000 + i))
        actions.publish(Action(label=f"label{i}", person_id=i))

    # Warm-up messages until both topics are being recorded (discovery done on both sides).
    assert wait(lambda: send(-1) or (progress.get("/rec/image_raw") and progress.get("/rec/action")))
    before = dict(progress)
    for i in range(5):
        send(i)
        time.sleep(0.02)  # pacing only: a best-effort burst could outrun the recorder
    assert wait(lambda: all(progress[t] >= before[t] + 5 for t in before))
    stop.set()
    recorder.join(timeout=10)
    assert set(counts) == set(before)
    assert all(counts[t] >= before[t] + 5 for t in before)
    assert bag.bag_topics(tmp_path / "b") == {
        "/rec/image_raw": bag.IMAGE_TYPE,
        "/rec/action": bag.ACTION_TYPE,
    }
    recorded = list(bag.read_messages(tmp_path / "b", ["/rec/image_raw"]))
    first = recorded[0].decode()
    assert np.array_equal(bag.decode_camera_message(first, bag.IMAGE_TYPE), pixels)
    labels = [m.decode().label for m in bag.read_messages(tmp_path / "b", ["/rec/action"])]
    assert [label for label in labels if label != "label-1"] == [f"label{i}" for i in range(5)]
    offered = recorded_qos(tmp_path / "b")  # what `ros2 bag play` publishes them with
    assert [q["reliability"] for q in offered["/rec/image_raw"]] == ["best_effort"]
    assert [q["reliability"] for q in offered["/rec/action"]] == ["reliable"]


def test_a_topic_only_subscribed_to_waits_for_its_publisher(ros, wait, tmp_path, make_image):
    """A pose node already listening to a camera that starts later: the recorder waits for the
    camera, and matches its best-effort QoS (a reliable subscription would never connect)."""
    listener = ros.add(Node, "listener")
    listener.create_subscription(Image, "/late/image_raw", lambda msg: None, qos_profile_sensor_data)
    stop, counts, progress = threading.Event(), {}, {}

    def record() -> None:
        counts.update(
            record_topics(tmp_path / "b", ["/late/image_raw"], wait=20, stop=stop, progress=progress)
        )

    recorder = threading.Thread(target=record)
    recorder.start()
    assert wait(lambda: "bag_recorder" in listener.get_node_names())  # it sees the topic, subscribed only
    images = ros.add(Node, "camera").create_publisher(Image, "/late/image_raw", qos_profile_sensor_data)
    image = make_image(np.zeros((4, 6, 3), np.uint8), stamp_ns=1_000_000_000)
    received = wait(lambda: images.publish(image) or progress.get("/late/image_raw"))
    stop.set()
    recorder.join(timeout=10)
    assert received
    assert counts["/late/image_raw"] > 0


def recorded_qos(folder) -> dict[str, list[dict]]:
    """Each topic's offered_qos_profiles in the bag's metadata.yaml."""
    info = yaml.safe_load((folder / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    topics = {}
    for entry in info["topics_with_message_count"]:
        profiles = entry["topic_metadata"]["offered_qos_profiles"]
        topics[entry["topic_metadata"]["name"]] = (
            yaml.safe_load(profiles) if isinstance(profiles, str) else profiles
        )
    return topics


def test_recording_a_type_the_typestore_lacks_leaves_no_bag(ros, wait, tmp_path, capsys):
    """rosbags stores only the types it knows: the refusal comes before the bag is made."""
    from rcl_interfaces.srv import ListParameters  # its service event type is not in rosbags' store

    talker = ros.add(Node, "talker")
    talker.create_publisher(ListParameters.Event, "/odd/events", 10)
    argv = ["bag", "record", "-o", str(tmp_path / "b"), "/odd/events", "--wait", "10", "--duration", "1"]
    assert main(argv) == 2
    assert "is not known to the rosbags typestore" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_recording_a_missing_topic_names_the_graph_topics(ros, tmp_path, capsys):
    talker = ros.add(Node, "talker")
    talker.create_publisher(Action, "/present/action", 10)
    for wait in (1, 2, 4, 8, 16):  # each try a new participant, given longer to discover the talker
        argv = ["bag", "record", "-o", str(tmp_path / "b"), "/absent", "--wait", str(wait)]
        assert main([*argv, "--duration", "1"]) == 2
        error = capsys.readouterr().err.strip()
        assert "\n" not in error
        assert "/absent" in error
        assert not (tmp_path / "b").exists()
        if "/present/action" in error:
            break
    assert "/present/action (bharnet_ros/msg/Action)" in error


def test_realtime_eval_replays_a_short_bag_through_the_graph(tmp_path, shared_file, tiny_model):
    params = yaml.safe_load(share_file("config/recognize.yaml").read_text())
    # A slow pose node drops frames by design and its skeletons then come seconds apart: a long
    # person_timeout keeps the person's window across such gaps, and a half-speed replay (6 s)
    # leaves time for two frames 0.4 s apart, so a decision comes even from a pose node a hundred
    # times slower than one at 25 fps (which gives some 17 decisions).
    params["/**/recognizer"]["ros__parameters"].update(
        min_seconds=0.4, stride_seconds=0.13, window_seconds=0.8, person_timeout=30.0
    )
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))
    video_bag = tmp_path / "video_bag"
    video = str(shared_file("videos/sign_dobrii_den.mp4"))
    assert (
        main(
            ["bag", "record-video", video, "-o", str(video_bag), "--max-frames", "75", "--start-time", "now"]
        )
        == 0
    )
    labels = save_csv(tmp_path / "labels.csv", [Segment(0.0, 1.5, "idle"), Segment(1.5, 3.0, "wave")])
    out = tmp_path / "report"
    argv = ["bag", "eval", str(video_bag), "--labels", str(labels), "--out", str(out), "--realtime"]
    argv += ["--rate", "0.5"]
    assert main([*argv, "--model", str(tiny_model), "--params-file", str(params_file)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    counts, timing = summary["counts"], summary["timing"]
    assert summary["mode"] == "realtime"
    assert counts["frames"] == 75
    assert counts["processed"] + counts["dropped"] == 75
    assert counts["processed"] > 0
    assert counts["actions"] >= 1
    assert timing["latency_seconds"]["count"] == counts["actions"]
    assert timing["latency_seconds"]["p50"] > 0
    rows = (out / "predictions.csv").read_text().splitlines()[1:]
    assert all(float(row.split(",")[-1]) > 0 for row in rows)
    assert (out / "timeline.png").stat().st_size > 0


def test_the_replay_skips_damaged_messages_and_shortens_long_pauses(tmp_path, monkeypatch):
    """A log time that jumps a day (a paused recording, or a damaged bag) made the replay sleep a
    day, and a message that was not what its topic says went to the nodes as garbage."""
    from types import SimpleNamespace

    from bharnet_ros.nodes import bag_io
    from bharnet_ros.nodes.bag_eval import live_run

    origin, day = 1_700_000_000_000_000_000, 86_400 * 10**9
    log_times = [origin, origin + 10**7, origin + 2 * 10**7, origin + day - 10**9, origin + day]
    with bag.BagWriter(tmp_path / "b") as writer:
        writer.add_topic("/s", bag.SKELETON_TYPE)
        for i, log_time in enumerate(log_times):
            message = bag.skeleton_array_message([], log_time)
            data = bag.typestore().serialize_cdr(message, bag.SKELETON_TYPE)
            writer.write_raw("/s", log_time, data[:20] if i == 1 else data)
    published: list[bytes] = []
    publisher = SimpleNamespace(publish=published.append)
    run = bag_io.LiveRun(pose_stage=False)
    clock = FakeClock()
    monkeypatch.setattr(bag_io, "time", clock)
    bag_io._replay(tmp_path / "b", "/s", publisher, 1.0, run)
    # 20 ms (the damaged message's 10 ms are no wait of their own), 5 s for a day, then 1 s.
    assert clock.sleeps == pytest.approx([0.02, bag_io.MAX_REPLAY_GAP_SECONDS, 1.0])
    assert run.replay_seconds == pytest.approx(0.02 + bag_io.MAX_REPLAY_GAP_SECONDS + 1.0)
    assert (run.sent, run.undecodable, len(published)) == (4, 1, 4)
    assert [bag.cdr_header_stamp(p) for p in published] == [log_times[i] for i in (0, 2, 3, 4)]
    counts = live_run(run, origin)
    assert (counts.frames, counts.processed, counts.bad_frames, counts.dropped) == (5, 4, 1, None)


def test_frames_that_repeat_a_stamp_count_each_time_they_are_processed():
    from bharnet_ros.nodes import bag_io
    from bharnet_ros.nodes.bag_eval import live_run

    stamp = 1_700_000_000_000_000_000
    run = bag_io.LiveRun(sent=3, stamps_sent=[stamp] * 3, published={stamp: 1.0}, processed=[stamp] * 2)
    counts = live_run(run, stamp)
    assert (counts.processed, counts.dropped) == (2, 1)  # a set of stamps had counted 1 and 2


def test_a_realtime_decision_is_timed_as_the_deterministic_run_times_its_frame():
    """From integer nanoseconds, one decision of eight at epoch stamps came 1 us off."""
    from rclpy.serialization import serialize_message

    from bharnet_ros.core.bag_eval import relative_seconds
    from bharnet_ros.core.frame_rules import person_frame
    from bharnet_ros.nodes import bag_io
    from bharnet_ros.nodes.bag_eval import live_run

    origin = 1_764_000_000_123_456_789
    stamps = [origin + i * 33_333_333 for i in range(400)]
    actions = []
    for stamp in stamps:
        action = Action(label="a")
        action.header.stamp.sec, action.header.stamp.nanosec = divmod(stamp, 10**9)
        actions.append((1.0, serialize_message(action)))
    times = [d.stamp for d in live_run(bag_io.LiveRun(actions=actions), origin).predictions]
    person = SkeletonFrame(
        0.0,
        np.zeros((33, 4), np.float32),
        np.zeros((2, 21, 4), np.float32),
        np.zeros(2, bool),
        1,
        "mediapipe33",
        "image",
        (64, 48),
    )
    frames = [person_frame(bag.skeleton_array_message([person], s).persons[0]) for s in stamps]
    assert times == [relative_seconds(frame.timestamp, origin) for frame in frames]


class FakeClock:
    """Stands in for the ``time`` module of ``bag_io``: ``sleep`` is recorded and moves ``monotonic``
    on at once, so a replay's waits are checked exactly and without waiting them."""

    def __init__(self) -> None:
        self.now, self.sleeps = 1000.0, []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_images_the_pose_node_refuses_for_their_stamp_are_bad_frames_not_dropped(tmp_path, monkeypatch):
    """They were counted as dropped, where the deterministic run counts them as bad frames."""
    from bharnet_ros.nodes import bag_io
    from bharnet_ros.nodes.bag_eval import live_run

    time_class = bag.message_class("builtin_interfaces/msg/Time")
    header_class = bag.message_class("std_msgs/msg/Header")
    stamps = [(1000, 0), (1000, 1_500_000_000), (1001, 0)]
    with bag.BagWriter(tmp_path / "b") as writer:
        writer.add_topic("/cam", bag.IMAGE_TYPE)
        for i, (sec, nanosec) in enumerate(stamps):
            message = bag.image_message(np.zeros((4, 4, 3), np.uint8), 0)
            message.header = header_class(stamp=time_class(sec=sec, nanosec=nanosec), frame_id="cam")
            writer.write("/cam", 10**18 + i * 10**7, message)
    published: list[bytes] = []
    run = bag_io.LiveRun(pose_stage=True)
    monkeypatch.setattr(bag_io, "time", FakeClock())
    bag_io._replay(tmp_path / "b", "/cam", SimpleNamespace(publish=published.append), 1.0, run)
    assert (run.sent, run.refused, len(published)) == (3, 1, 3)  # the node gets it, and refuses it
    run.processed = [1000 * 10**9, 1001 * 10**9]  # the skeletons the pose node sent back
    counts = live_run(run, 1000 * 10**9)
    assert (counts.frames, counts.processed, counts.dropped, counts.bad_frames) == (3, 2, 0, 1)


def test_images_the_pose_node_cannot_decode_are_bad_frames_not_dropped():
    """A cut-off JPEG (or a depth topic's encoding) counted as dropped: the pose node too slow."""
    from bharnet_ros.nodes import bag_io
    from bharnet_ros.nodes.bag_eval import live_run

    stamps = [1000 * 10**9 + i for i in range(3)]
    run = bag_io.LiveRun(sent=3, unusable=1, stamps_sent=stamps, processed=stamps[:2])
    counts = live_run(run, stamps[0])
    assert (counts.frames, counts.processed, counts.dropped, counts.bad_frames) == (3, 2, 0, 1)


def test_skeletons_whose_array_header_is_left_at_0_are_timed_by_their_persons(tmp_path, monkeypatch):
    """The actions carry each person's stamp: keyed by the array's 0, no latency was found."""
    from bharnet_ros.nodes import bag_io
    from bharnet_ros.training.synth import generate_scripted

    sequence, _ = generate_scripted([("wave", 0.2)], np.random.default_rng(0))
    header_class = bag.message_class("std_msgs/msg/Header")
    time_class = bag.message_class("builtin_interfaces/msg/Time")
    stamps = [10**18 + round(t * 1e9) for t in sequence.timestamps[:3]]
    with bag.BagWriter(tmp_path / "b") as writer:
        writer.add_topic("/s", bag.SKELETON_TYPE)
        for t, stamp in enumerate(stamps):
            message = bag.skeleton_array_message([sequence.frame(t)], stamp)
            message.header = header_class(stamp=time_class(sec=0, nanosec=0), frame_id="camera")
            writer.write("/s", stamp, message)
    run = bag_io.LiveRun(pose_stage=False)
    monkeypatch.setattr(bag_io, "time", FakeClock())
    bag_io._replay(tmp_path / "b", "/s", SimpleNamespace(publish=lambda data: None), 1.0, run)
    assert sorted(run.published) == stamps


def test_a_log_time_that_is_no_number_ends_the_replay_with_one_line(tmp_path, monkeypatch):
    """A text in a .db3's timestamp column failed the replay's arithmetic with a TypeError."""
    import sqlite3

    from bharnet_ros.nodes import bag_io

    with bag.BagWriter(tmp_path / "b", "sqlite3") as writer:
        writer.add_topic("/s", bag.SKELETON_TYPE)
        for i in range(3):
            message = bag.skeleton_array_message([], 10**18 + i)
            writer.write("/s", 10**18 + i, message)
    (database,) = (tmp_path / "b").glob("*.db3")
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE messages SET timestamp = 'late' WHERE id = 2")
    monkeypatch.setattr(bag_io, "time", FakeClock())
    run = bag_io.LiveRun(pose_stage=False)
    with pytest.raises(bag.BagError, match="has the log time 'late', not nanoseconds"):
        bag_io._replay(tmp_path / "b", "/s", SimpleNamespace(publish=lambda data: None), 1.0, run)


def test_concurrent_replays_hold_different_private_domains(tmp_path, monkeypatch):
    """Each replay took 150 + pid % 80, so two runs could share a domain and hear each other."""
    from bharnet_ros.nodes import bag_io

    monkeypatch.setattr(bag_io, "DOMAIN_HOLD_NAME", f"bharnet-test-{os.getpid()}-")  # not a real run's
    monkeypatch.setattr(bag_io, "PRIVATE_DOMAIN_IDS", range(150, 153))
    monkeypatch.setenv("ROS_DOMAIN_ID", "151")  # the user's own domain is never taken
    with bag_io.private_domain() as first, bag_io.private_domain() as second:
        assert first != second
        assert {first, second} == {150, 152}
        with (
            pytest.raises(bag.BagError, match="ROS domains 150-152 are all held by other replays"),
            bag_io.private_domain(),
        ):
            pass
    with bag_io.private_domain() as again:  # released at the end of the block
        assert again in (150, 152)
