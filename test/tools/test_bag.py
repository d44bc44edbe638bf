"""``bharnet bag``: bag round trips, record-video, deterministic evaluation and its user errors."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from bharnet_ros.cli import main
from bharnet_ros.core import bag
from bharnet_ros.core.annotations import Segment, save_csv
from bharnet_ros.core.paths import share_file
from bharnet_ros.core.skeleton import SkeletonFrame
from bharnet_ros.core.video import VideoReader
from bharnet_ros.training.synth import generate_scripted

ORIGIN = 1_700_000_000_000_000_000  # ns: a wall-clock-like start, as in a live recording
PERIOD = 33_333_333


def smooth_images(count: int = 4, height: int = 48, width: int = 64) -> list[np.ndarray]:
    """Gradients with a moving square: distinct per frame and per channel, and JPEG-friendly."""
    y, x = np.mgrid[0:height, 0:width]
    images = []
    for i in range(count):
        image = np.stack([x * 255 // width, y * 255 // height, (x + y + 20 * i) % 256], axis=-1).astype(
            np.uint8
        )
        image[8:20, 10 + 5 * i : 22 + 5 * i] = (30, 200, 90)
        images.append(image)
    return images


def write_camera_bag(path: Path, images: list[np.ndarray], topic: str = "/cam", **options) -> list[int]:
    """A bag of ``images`` on ``topic``; returns their stamps (ns)."""
    encoding, storage = options.get("encoding", "bgr8"), options.get("storage", "mcap")
    stamps = [ORIGIN + i * PERIOD for i in range(len(images))]
    with bag.BagWriter(path, storage) as writer:
        writer.add_topic(topic, bag.COMPRESSED_TYPE if encoding == "jpeg" else bag.IMAGE_TYPE)
        for image, stamp in zip(images, stamps, strict=True):
            writer.write(topic, stamp, bag.image_message(image, stamp, "cam_optical", encoding))
    return stamps


@pytest.mark.parametrize("storage", sorted(bag.STORAGES))
@pytest.mark.parametrize("encoding", bag.ENCODINGS)
def test_camera_frames_round_trip(tmp_path, storage, encoding):
    images = smooth_images()
    stamps = write_camera_bag(tmp_path / "b", images, encoding=encoding, storage=storage)
    messages = list(bag.read_messages(tmp_path / "b", ["/cam"]))
    assert [m.log_time for m in messages] == stamps
    for message, image, stamp in zip(messages, images, stamps, strict=True):
        msg = message.decode()
        assert bag.stamp_ns(msg.header) == bag.cdr_header_stamp(message.data) == stamp
        assert msg.header.frame_id == "cam_optical"
        decoded = bag.decode_camera_message(msg, message.msgtype)
        if encoding == "jpeg":
            assert (message.msgtype, msg.format) == (bag.COMPRESSED_TYPE, "jpeg")
            assert np.abs(decoded.astype(int) - image).mean() < 3
        elif encoding == "mono8":
            gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
            assert np.array_equal(np.asarray(msg.data).reshape(gray.shape), gray)
            assert np.array_equal(decoded, cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
        else:
            stored = np.asarray(msg.data).reshape(image.shape)
            assert np.array_equal(stored, image if encoding == "bgr8" else image[..., ::-1])
            assert np.array_equal(decoded, image)


@pytest.mark.parametrize("storage", sorted(bag.STORAGES))
def test_bags_are_standard_rosbag2_version_9(tmp_path, storage):
    write_camera_bag(tmp_path / "b", smooth_images(2), storage=storage)
    metadata = yaml.safe_load((tmp_path / "b" / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert metadata["version"] == 9
    assert metadata["storage_identifier"] == storage
    assert metadata["message_count"] == 2
    (topic,) = metadata["topics_with_message_count"]
    assert topic["topic_metadata"]["type_description_hash"].startswith("RIHS01_d31d41a9a4c4bc8e")  # as ROS
    assert bag.bag_topics(tmp_path / "b") == {"/cam": bag.IMAGE_TYPE}
    assert bag.bag_message_counts(tmp_path / "b") == {"/cam": 2}


def test_our_message_hashes_match_the_generated_ones():
    for name in bag.PACKAGE_MESSAGES:
        generated = json.loads(share_file(f"msg/{name}.json").read_text())
        expected = generated["type_hashes"][0]["hash_string"]
        assert bag.typestore().hash_rihs01(f"bharnet_ros/msg/{name}") == expected


def scripted_skeleton_bag(path: Path, seed: int = 5) -> list[Segment]:
    """A bag of synthetic skeleton messages (idle then wave) stamped from ORIGIN; returns the truth."""
    sequence, truth = generate_scripted([("idle", 2.0), ("wave", 2.0)], np.random.default_rng(seed))
    with bag.BagWriter(path) as writer:
        writer.add_topic("/bharnet/skeletons", bag.SKELETON_TYPE)
        for t in range(len(sequence)):
            stamp = ORIGIN + round(sequence.timestamps[t] * 1e9)
            writer.write("/bharnet/skeletons", stamp, bag.skeleton_array_message([sequence.frame(t)], stamp))
    return [Segment(s.start, s.end, s.label) for s in truth]


def test_skeleton_messages_round_trip(tmp_path):
    sequence, _ = generate_scripted([("wave", 0.5)], np.random.default_rng(1))
    frame = sequence.frame(3)
    frame.hand_present[:] = (True, False)
    with bag.BagWriter(tmp_path / "b", "sqlite3") as writer:
        writer.add_topic("/s", bag.SKELETON_TYPE)
        writer.write("/s", ORIGIN, bag.skeleton_array_message([frame], ORIGIN))
        writer.write("/s", ORIGIN + PERIOD, bag.skeleton_array_message([], ORIGIN + PERIOD))
    first, empty = (m.decode() for m in bag.read_messages(tmp_path / "b", ["/s"]))
    (back,) = bag.skeleton_frames(first)
    assert isinstance(back, SkeletonFrame)
    assert back.timestamp == pytest.approx(ORIGIN * 1e-9)
    assert np.array_equal(back.body, frame.body)
    assert np.array_equal(back.hands, frame.hands)
    assert list(back.hand_present) == [True, False]
    assert (back.layout, back.space, back.image_size) == (frame.layout, frame.space, frame.image_size)
    assert bag.skeleton_frames(empty) == []


def test_record_video_stamps_frames_with_video_time(tmp_path, shared_file):
    video = shared_file("videos/sign_dobrii_den.mp4")  # 25 fps
    out = tmp_path / "video_bag"
    argv = ["bag", "record-video", str(video), "-o", str(out), "--max-frames", "6", "--start-time", "100"]
    assert main([*argv, "--storage", "sqlite3", "--frame-id", "cam", "--topic", "/front/image"]) == 0
    with VideoReader(video) as reader:
        expected = [image for _, image in zip(range(6), (image for _, image in reader), strict=False)]
    messages = list(bag.read_messages(out, ["/front/image"]))
    assert len(messages) == 6
    for i, (message, image) in enumerate(zip(messages, expected, strict=True)):
        msg = message.decode()
        assert bag.stamp_ns(msg.header) == message.log_time == round((100 + i / 25) * 1e9)
        assert msg.header.frame_id == "cam"
        assert np.array_equal(bag.decode_camera_message(msg, message.msgtype), image)
    restamped = tmp_path / "restamped"
    assert (
        main(["bag", "record-video", str(video), "-o", str(restamped), "--max-frames", "3", "--rate", "10"])
        == 0
    )
    start = round(bag.VIDEO_START_SECONDS * 1e9)  # by default no frame carries ROS's "not set" stamp 0
    assert [m.log_time for m in bag.read_messages(restamped)] == [
        start,
        start + 100_000_000,
        start + 200_000_000,
    ]


def test_record_video_refuses_to_overwrite(tmp_path, shared_file, capsys):
    video = shared_file("videos/sign_dobrii_den.mp4")
    (tmp_path / "exists").mkdir()
    assert main(["bag", "record-video", str(video), "-o", str(tmp_path / "exists")]) == 2
    assert "already exists" in capsys.readouterr().err


@pytest.fixture
def fast_params(tmp_path) -> str:
    """The shipped parameters with short windows, so a few seconds give many decisions."""
    params = yaml.safe_load(share_file("config/recognize.yaml").read_text())
    params["/**/recognizer"]["ros__parameters"].update(
        min_seconds=0.4, stride_seconds=0.13, window_seconds=0.8
    )
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return str(path)


def eval_twice(tmp_path: Path, bag_path: Path, labels: Path, model: Path, params: str) -> dict:
    """Run the deterministic eval twice; everything but wall-clock timing must be identical."""
    results = []
    for name in ("first", "second"):
        out = tmp_path / name
        argv = ["bag", "eval", str(bag_path), "--labels", str(labels), "--out", str(out)]
        assert main([*argv, "--model", str(model), "--params-file", params]) == 0
        summary = json.loads((out / "summary.json").read_text())
        assert set(summary.pop("timing")) >= {"processed_fps", "window_seconds"}
        assert (out / "timeline.png").stat().st_size > 0
        results.append((summary, (out / "predictions.csv").read_text()))
    assert results[0] == results[1]
    return results[0][0]


def test_deterministic_eval_of_a_real_video_bag_is_reproducible(
    tmp_path, shared_file, tiny_model, fast_params
):
    video_bag = tmp_path / "video_bag"
    video = str(shared_file("videos/sign_dobrii_den.mp4"))
    assert main(["bag", "record-video", video, "-o", str(video_bag), "--max-frames", "36"]) == 0
    labels = save_csv(tmp_path / "labels.csv", [Segment(0.0, 0.8, "idle"), Segment(0.8, 1.44, "wave")])
    summary = eval_twice(tmp_path, video_bag, labels, tiny_model, fast_params)
    assert (summary["mode"], summary["msgtype"], summary["topic"]) == (
        "deterministic",
        bag.IMAGE_TYPE,
        "/camera/image_raw",
    )
    assert summary["counts"]["frames"] == summary["counts"]["processed"] == 36
    assert summary["counts"]["dropped"] == 0
    assert summary["counts"]["actions"] > 0
    assert summary["metrics"]["segments"] == 2


def test_deterministic_eval_feeds_skeleton_topics_without_the_pose_stage(
    tmp_path, tiny_model, fast_params, capsys
):
    skeleton_bag = tmp_path / "skeleton_bag"
    truth = scripted_skeleton_bag(skeleton_bag)
    absolute = [Segment(s.start + ORIGIN * 1e-9, s.end + ORIGIN * 1e-9, s.label) for s in truth]
    labels = save_csv(tmp_path / "labels.csv", absolute, absolute=True)
    summary = eval_twice(tmp_path, skeleton_bag, labels, tiny_model, fast_params)
    assert (summary["msgtype"], summary["time_base"]) == (bag.SKELETON_TYPE, "absolute")
    metrics = summary["metrics"]
    assert [(s["start"], s["end"]) for s in metrics["per_segment"]] == pytest.approx(
        [(0, 2), (2, 4)], abs=1e-6
    )
    assert (
        metrics["predictions_scored"] + metrics["predictions_unscored"] == summary["counts"]["actions"] > 10
    )
    assert "segment accuracy" in capsys.readouterr().out
    rows = (tmp_path / "first" / "predictions.csv").read_text().splitlines()
    assert rows[0] == "stamp,person_id,label,confidence,truth,latency_ms"
    assert {row.split(",")[2] for row in rows[1:]} <= {"idle", "wave", "stop"}


def one_line_error(capsys) -> str:
    error = capsys.readouterr().err.strip()
    assert "\n" not in error
    return error


def test_a_bag_without_the_topic_names_the_topics_it_has(tmp_path, capsys):
    write_camera_bag(tmp_path / "b", smooth_images(2))
    labels = save_csv(tmp_path / "labels.csv", [Segment(0, 1, "idle")])
    argv = ["bag", "eval", str(tmp_path / "b"), "--labels", str(labels), "--out", str(tmp_path / "out")]
    assert main([*argv, "--topic", "/camera/image_raw"]) == 2
    error = one_line_error(capsys)
    assert "has no topic /camera/image_raw" in error
    assert "/cam (sensor_msgs/msg/Image)" in error
    assert "--topic" in error


def test_several_camera_topics_need_a_choice(tmp_path, capsys):
    path = tmp_path / "b"
    with bag.BagWriter(path) as writer:
        for topic in ("/left", "/right"):
            writer.add_topic(topic, bag.IMAGE_TYPE)
            writer.write(topic, ORIGIN, bag.image_message(smooth_images(1)[0], ORIGIN))
    labels = save_csv(tmp_path / "labels.csv", [Segment(0, 1, "idle")])
    assert main(["bag", "eval", str(path), "--labels", str(labels), "--out", str(tmp_path / "out")]) == 2
    error = one_line_error(capsys)
    assert "/left (sensor_msgs/msg/Image), /right (sensor_msgs/msg/Image)" in error


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("not_a_bag", "is not a rosbag2 folder"),
        ("bad_labels", "not after"),
        ("missing_model", "model"),
    ],
)
def test_eval_user_errors_exit_2(tmp_path, capsys, setup, message):
    path = tmp_path / "b"
    write_camera_bag(path, smooth_images(2))
    labels = save_csv(tmp_path / "labels.csv", [Segment(0, 1, "idle")])
    model = tmp_path / "missing.onnx"
    if setup == "not_a_bag":
        path = tmp_path / "plain"
        path.mkdir()
    if setup == "bad_labels":
        labels.write_text("start,end,label\n2,1,idle\n")
    argv = ["bag", "eval", str(path), "--labels", str(labels), "--out", str(tmp_path / "out")]
    assert main([*argv, "--model", str(model)]) == 2
    assert message in one_line_error(capsys)


def test_info_lists_topics(tmp_path, capsys):
    write_camera_bag(tmp_path / "b", smooth_images(3), encoding="jpeg")
    assert main(["bag", "info", str(tmp_path / "b")]) == 0
    assert capsys.readouterr().out.strip() == "/cam  sensor_msgs/msg/CompressedImage  3 messages"


@pytest.mark.parametrize("damage", ["truncated", "empty"])
@pytest.mark.parametrize("action", ["info", "eval"])
def test_a_truncated_or_empty_mcap_is_a_one_line_error(tmp_path, capsys, damage, action):
    path = tmp_path / "b"
    write_camera_bag(path, smooth_images(2))
    storage = path / "b.mcap"
    data = storage.read_bytes()
    storage.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"")
    extra = ["--out", str(tmp_path / "out")] if action == "eval" else []
    assert main(["bag", action, str(path), *extra]) == 2
    error = one_line_error(capsys)
    assert "cannot be read" in error
    assert "move metadata.yaml aside" in error


def test_labels_that_mix_time_bases_are_a_one_line_error(tmp_path, capsys):
    write_camera_bag(tmp_path / "b", smooth_images(2))
    labels = tmp_path / "labels.yaml"
    labels.write_text("- {start: 0, end: 1, label: idle}\n- {start_stamp: 5, end_stamp: 6, label: wave}\n")
    argv = ["bag", "eval", str(tmp_path / "b"), "--labels", str(labels), "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    assert "one time base" in one_line_error(capsys)


KILLED_RECORDER = """
import os, signal, sys
import numpy as np
from bharnet_ros.core import bag
from bharnet_ros.training.synth import generate_scripted

sequence, _ = generate_scripted([("idle", 2.0), ("wave", 2.0)], np.random.default_rng(5))
writer = bag.BagWriter(sys.argv[1], sys.argv[2])
writer.add_topic("/bharnet/skeletons", bag.SKELETON_TYPE)
for t in range(len(sequence)):
    stamp = {origin} + round(sequence.timestamps[t] * 1e9)
    writer.write("/bharnet/skeletons", stamp, bag.skeleton_array_message([sequence.frame(t)], stamp))
    if t + 1 == int(sys.argv[3]):
        writer.flush()
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("storage", sorted(bag.STORAGES))
def test_a_killed_recording_is_reindexed_then_read_and_evaluated(
    tmp_path, capsys, tiny_model, fast_params, storage
):
    import subprocess
    import sys

    path, flushed = tmp_path / "killed", 90
    script = KILLED_RECORDER.replace("{origin}", str(ORIGIN))
    done = subprocess.run([sys.executable, "-c", script, str(path), storage, str(flushed)], timeout=120)
    assert done.returncode == -9
    assert not (path / "metadata.yaml").exists()
    stored = path / f"killed.{'mcap' if storage == 'mcap' else 'db3'}"
    before = stored.read_bytes()
    assert main(["bag", "info", str(path)]) == 0
    printed = capsys.readouterr().out
    assert f"rebuilt it: {flushed} messages" in printed
    assert printed.endswith(f"/bharnet/skeletons  {bag.SKELETON_TYPE}  {flushed} messages\n")
    if storage == "mcap":  # the cut-off file stays as it was; SQLite only undoes the open transaction
        assert stored.read_bytes() == before
    out = tmp_path / "report"
    argv = [
        "bag",
        "eval",
        str(path),
        "--out",
        str(out),
        "--model",
        str(tiny_model),
        "--params-file",
        fast_params,
    ]
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["frames"] == flushed
    assert summary["counts"]["actions"] > 0


def test_a_bag_folder_without_anything_recorded_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "b.mcap").write_bytes(b"")
    assert main(["bag", "info", str(tmp_path / "b")]) == 2
    assert "nothing was stored" in one_line_error(capsys)
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["b.mcap"]


def test_sigterm_ends_a_recording_with_its_metadata(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    import rclpy
    from rclpy.duration import Duration
    from rclpy.node import Node
    from rclpy.qos import DurabilityPolicy, QoSProfile

    from bharnet_ros.msg import Action

    path = tmp_path / "recorded"
    command = [sys.executable, "-m", "bharnet_ros.cli", "bag", "record", "-o", str(path), "/sigterm/action"]
    recorder = subprocess.Popen([*command, "--wait", "60"], stdout=subprocess.PIPE, text=True)
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = Node("sigterm_talker", context=context)
        # Latched, so the recorder gets all five whenever it subscribes; acknowledged = recorded.
        latched = QoSProfile(depth=10, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        publisher = node.create_publisher(Action, "/sigterm/action", latched)
        for i in range(5):
            publisher.publish(Action(label=f"label{i}", person_id=i))
        deadline = time.monotonic() + 60
        while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert publisher.wait_for_all_acked(Duration(seconds=30))
        recorder.send_signal(signal.SIGTERM)
        output, _ = recorder.communicate(timeout=30)
    finally:
        if recorder.poll() is None:
            recorder.kill()
        rclpy.try_shutdown(context=context)
    assert recorder.returncode == 0
    assert output.strip() == f"{path}: /sigterm/action 5"
    assert (path / "metadata.yaml").is_file()
    assert bag.bag_message_counts(path) == {"/sigterm/action": 5}


def test_record_video_force_replaces_the_bag_files_only(tmp_path, shared_file, capsys):
    video = str(shared_file("videos/sign_dobrii_den.mp4"))
    out = tmp_path / "video_bag"
    assert main(["bag", "record-video", video, "-o", str(out), "--max-frames", "4"]) == 0
    (out / "notes.txt").write_text("mine")
    assert main(["bag", "record-video", video, "-o", str(out), "--max-frames", "2"]) == 2
    assert "already exists; pass --force" in one_line_error(capsys)
    assert bag.bag_message_counts(out) == {"/camera/image_raw": 4}
    assert main(["bag", "record-video", video, "-o", str(out), "--max-frames", "2", "--force"]) == 0
    assert bag.bag_message_counts(out) == {"/camera/image_raw": 2}
    assert sorted(p.name for p in out.iterdir()) == ["metadata.yaml", "notes.txt", "video_bag.mcap"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["video_bag"]  # no staging folder left


def test_eval_report_folder_needs_force_and_keeps_other_files(tmp_path, tiny_model, fast_params, capsys):
    skeleton_bag = tmp_path / "skeleton_bag"
    scripted_skeleton_bag(skeleton_bag)
    out = tmp_path / "report"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    argv = ["bag", "eval", str(skeleton_bag), "--out", str(out), "--model", str(tiny_model)]
    assert main([*argv, "--params-file", fast_params]) == 2
    assert "is not empty; pass --force" in one_line_error(capsys)
    assert main([*argv, "--params-file", fast_params, "--force"]) == 0
    assert {"notes.txt", "summary.json", "timeline.png", "predictions.csv"} == {p.name for p in out.iterdir()}
    assert main(["bag", "eval", str(skeleton_bag), "--out", str(skeleton_bag), "--force"]) == 2
    assert "also an input" in one_line_error(capsys)


def write_tiny_video(path: Path, frames: int = 3) -> Path:
    """A 10 fps MJPG clip of ``smooth_images`` (a few KB)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    for image in smooth_images(frames):
        writer.write(image)
    writer.release()
    return path


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--start-time", "nan", "--start-time nan is out of range"),
        ("--start-time", "inf", "--start-time inf is out of range"),
        ("--start-time", "-5", "give 0 to 2147483647 seconds"),
        ("--start-time", "0", "0 means 'not stamped'"),
        ("--start-time", "3e9", "--start-time 3000000000.0 is out of range"),
        ("--start-time", "2147483647", "frame 3 would be stamped past 2147483647 s"),
        ("--rate", "inf", "--rate inf is out of range"),
        ("--rate", "nan", "--rate nan is out of range"),
        ("--rate", "1e-12", "give 0.01 to 1000 frames/s"),
        ("--rate", "-1", "--rate -1.0 is out of range"),
        ("--topic", "/bad topic", "--topic '/bad topic' is no valid topic name"),
    ],
)
def test_record_video_refuses_unusable_stamps_and_names(tmp_path, capsys, option, value, message):
    video = write_tiny_video(tmp_path / "three.avi")
    assert main(["bag", "record-video", str(video), "-o", str(tmp_path / "b"), option, value]) == 2
    assert message in one_line_error(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["three.avi"]  # no bag, no staging folder


def test_record_video_stamps_reach_the_last_ros_time(tmp_path):
    video = write_tiny_video(tmp_path / "three.avi")
    out = tmp_path / "b"
    argv = ["bag", "record-video", str(video), "-o", str(out), "--rate", "1", "--start-time", "2147483645"]
    assert main(argv) == 0
    last = bag.MAX_STAMP_SECONDS * 1_000_000_000
    assert [m.log_time for m in bag.read_messages(out)] == [last - 2_000_000_000, last - 1_000_000_000, last]


@pytest.mark.parametrize("missing", ["nothing", "folder"])
def test_record_video_of_a_missing_video_blames_the_input(tmp_path, capsys, missing):
    video = tmp_path / "clip.mp4"
    if missing == "folder":
        video.mkdir()
    assert main(["bag", "record-video", str(video), "-o", str(tmp_path / "out" / "b")]) == 2
    error = one_line_error(capsys)
    assert ("video not found" if missing == "nothing" else "is not a file") in error
    assert "cannot write" not in error
    assert not (tmp_path / "out").exists()


def test_staged_folder_blames_the_output_only_for_its_own_files(tmp_path):
    from bharnet_ros.tools import UsageError
    from bharnet_ros.tools.outputs import staged_folder

    out = tmp_path / "out"
    problems = [
        FileNotFoundError("video not found: /clip.mp4"),  # raised by our own code about an input
        FileNotFoundError(2, "No such file or directory", str(tmp_path / "in.csv")),
        OSError(28, "No space left on device"),  # while writing: no file named
    ]
    messages = []
    for problem in problems:
        with pytest.raises(UsageError) as caught, staged_folder(out):
            raise problem
        messages.append(str(caught.value))
    assert messages == [
        "video not found: /clip.mp4",
        f"cannot use {tmp_path / 'in.csv'}: No such file or directory",
        f"cannot write {out}: No space left on device",
    ]


@pytest.mark.parametrize("content", ["other_sqlite", "empty"])
@pytest.mark.parametrize("action", ["info", "eval"])
def test_a_db3_that_is_not_a_bag_is_a_one_line_error(tmp_path, capsys, content, action):
    import sqlite3

    folder = tmp_path / "b"
    folder.mkdir()
    db3 = folder / "inventory.db3"
    if content == "empty":
        db3.write_bytes(b"")
    else:
        with sqlite3.connect(db3) as connection:
            connection.execute("CREATE TABLE parts (name TEXT)")
    before = db3.read_bytes()
    extra = ["--out", str(tmp_path / "out")] if action == "eval" else []
    assert main(["bag", action, str(folder), *extra]) == 2
    assert f"{db3} is not a rosbag2 SQLite file" in one_line_error(capsys)
    assert sorted(p.name for p in folder.iterdir()) == ["inventory.db3"]
    assert db3.read_bytes() == before


@pytest.mark.parametrize(
    "argv",
    [
        ["bag", "record", "-o", "{tmp}/rec", "/nope", "--wait", "nan"],
        ["bag", "record", "-o", "{tmp}/rec", "/nope", "--duration", "nan"],
        ["bag", "record", "-o", "{tmp}/rec", "/nope", "--duration", "inf"],
        ["bag", "eval", "{tmp}/b", "--out", "{tmp}/rep", "--realtime", "--rate", "nan"],
        ["bag", "eval", "{tmp}/b", "--out", "{tmp}/rep", "--realtime", "--rate", "inf"],
    ],
)
def test_non_finite_durations_waits_and_rates_are_refused(tmp_path, capsys, argv):
    assert main([arg.format(tmp=tmp_path) for arg in argv]) == 2
    assert "is out of range" in one_line_error(capsys)
    assert list(tmp_path.iterdir()) == []


def test_eval_with_a_missing_labels_file_names_it_before_making_the_report(tmp_path, capsys):
    write_camera_bag(tmp_path / "b", smooth_images(2))
    argv = [
        "bag",
        "eval",
        str(tmp_path / "b"),
        "--labels",
        str(tmp_path / "no.csv"),
        "--out",
        str(tmp_path / "r"),
    ]
    assert main(argv) == 2
    error = one_line_error(capsys)
    assert f"labels file not found: {tmp_path / 'no.csv'}" in error
    assert "cannot write" not in error
    assert not (tmp_path / "r").exists()
