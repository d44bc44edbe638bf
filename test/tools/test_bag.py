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
    assert [m.log_time for m in bag.read_messages(restamped)] == [0, 100_000_000, 200_000_000]


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
