"""``bharnet bag``: bag round trips, record-video, deterministic evaluation and its user errors."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from bharnet_ros.cli import main
from bharnet_ros.core import bag
from bharnet_ros.core.annotations import Segment, save_csv
from bharnet_ros.core.bag_eval import REPORT_FILES
from bharnet_ros.core.frame_rules import person_frame
from bharnet_ros.core.paths import share_file
from bharnet_ros.core.skeleton import SkeletonFrame
from bharnet_ros.core.video import VideoReader
from bharnet_ros.training.synth import generate_scripted

ORIGIN = 1_700_000_000_000_000_000  # ns: a wall-clock-like start, as in a live recording
PERIOD = 33_333_333


@pytest.fixture(autouse=True)
def recordings_are_over(monkeypatch):
    """The bags of these tests are reindexed the moment they are written; a real one only once its
    recorder has stopped (test_a_bag_still_being_written_is_not_reindexed)."""
    monkeypatch.setattr(bag, "QUIET_SECONDS", 0.0)


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


@pytest.mark.parametrize("encoding", bag.ENCODINGS)
def test_offline_decoding_shrinks_images_as_the_pose_node_does(encoding):
    image = smooth_images(1, height=96, width=128)[0]
    msg = bag.image_message(image, ORIGIN, "cam", encoding)
    msgtype = bag.COMPRESSED_TYPE if encoding == "jpeg" else bag.IMAGE_TYPE
    assert bag.decode_camera_message(msg, msgtype).shape == (96, 128, 3)  # under the default limit
    assert bag.decode_camera_message(msg, msgtype, max_pixels=48 * 64).shape == (48, 64, 3)  # aspect kept


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
    (person,) = first.persons
    back = person_frame(person)
    assert isinstance(back, SkeletonFrame)
    assert back.timestamp == pytest.approx(ORIGIN * 1e-9)
    assert np.array_equal(back.body, frame.body)
    assert np.array_equal(back.hands, frame.hands)
    assert list(back.hand_present) == [True, False]
    assert (back.layout, back.space, back.image_size) == (frame.layout, frame.space, frame.image_size)
    assert list(empty.persons) == []


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


def eval_summary(bag_path: Path, out: Path, model: Path, params: str) -> dict:
    """Run the deterministic eval of ``bag_path`` without labels; its summary.json."""
    argv = ["bag", "eval", str(bag_path), "--out", str(out), "--model", str(model), "--params-file", params]
    assert main(argv) == 0
    return json.loads((out / "summary.json").read_text())


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


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("missing", "not found; give the bag's folder"),
        ("folder", "metadata.yaml is not a regular file"),
        ("device", "metadata.yaml is not a regular file"),
        ("dangling", "metadata.yaml is not a regular file"),
    ],
)
def test_info_names_a_missing_bag_or_a_metadata_file_that_is_none(tmp_path, capsys, damage, message):
    path = tmp_path / "b"
    write_camera_bag(path, smooth_images(2))
    metadata = path / "metadata.yaml"
    if damage == "missing":
        path = tmp_path / "nowhere"
    else:
        metadata.unlink()
        if damage == "folder":
            metadata.mkdir()
        else:
            metadata.symlink_to("/dev/null" if damage == "device" else tmp_path / "gone.yaml")
    assert main(["bag", "info", str(path)]) == 2
    assert message in one_line_error(capsys)
    assert not (tmp_path / "gone.yaml").exists()  # no reindex writes through the link


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
    summary = eval_summary(path, tmp_path / "report", tiny_model, fast_params)
    assert summary["counts"]["frames"] == flushed
    assert summary["counts"]["actions"] > 0


def killed_bag(folder: Path, frames: int = 30, name: str = "live") -> Path:
    """An MCAP bag of ``frames`` skeleton messages whose writer never closed it (no metadata.yaml)."""
    sequence, _ = generate_scripted([("wave", 2.0)], np.random.default_rng(0))
    writer = bag.BagWriter(folder)
    writer.add_topic("/s", bag.SKELETON_TYPE)
    for t in range(frames):
        stamp = ORIGIN + t * 10**8
        writer.write("/s", stamp, bag.skeleton_array_message([sequence.frame(t)], stamp))
    writer.flush()
    return folder


def test_a_bag_still_being_written_is_not_reindexed(tmp_path, capsys, monkeypatch):
    """`bag info` on a bag being recorded froze a partial copy that later read as the whole bag."""
    monkeypatch.setattr(bag, "QUIET_SECONDS", 5.0)
    path = killed_bag(tmp_path / "live")
    assert main(["bag", "info", str(path)]) == 2
    assert re.search(r"was written \d+\.\d s ago: is it still being recorded\?", one_line_error(capsys))
    assert not (path / "metadata.yaml").exists()
    assert not any(p.name.endswith(bag.RECOVERED_SUFFIX) for p in path.iterdir())
    (storage,) = bag.storage_files(path)
    os.utime(storage, (time.time() + 86400,) * 2)  # copied from a machine whose clock is a day ahead
    assert main(["bag", "info", str(path)]) == 0


def test_a_recording_of_a_quiet_topic_still_looks_recent(tmp_path):
    """A flush with nothing new wrote nothing, so a recording of a rarely published topic looked
    finished after 5 s, and `bag info` froze a partial copy of it."""
    writer = bag.BagWriter(tmp_path / "quiet")
    writer.add_topic("/s", bag.SKELETON_TYPE)
    writer.flush()
    (storage,) = [p for p in (tmp_path / "quiet").iterdir() if p.suffix == ".mcap"]
    os.utime(storage, (time.time() - 60,) * 2)  # a minute without a message
    writer.flush()  # nothing written since
    assert time.time() - storage.stat().st_mtime < 5  # QUIET_SECONDS, which the tests here set to 0
    writer.close()


def test_a_recovered_copy_older_than_its_recording_is_not_taken_for_it(tmp_path, capsys):
    path = killed_bag(tmp_path / "b")
    (storage,) = bag.storage_files(path)
    copy = storage.with_name(storage.stem + bag.RECOVERED_SUFFIX)
    copy.write_bytes(b"an earlier reindex")
    os.utime(copy, (1, 1))  # older than the recording, which went on after it
    assert bag.storage_files(path) == [storage]
    assert main(["bag", "info", str(path)]) == 2
    assert f"{copy} already exists; move it aside" in one_line_error(capsys)


def test_split_files_are_read_in_recording_order_not_by_name():
    names = ["x_0.mcap", "x_1.mcap", "x_10.mcap", "x_11.mcap", "x_2.mcap", "x_9.recovered.mcap"]
    ordered = sorted((Path(n) for n in names), key=bag._recording_order)
    assert [p.name for p in ordered] == [
        "x_0.mcap",
        "x_1.mcap",
        "x_2.mcap",
        "x_9.recovered.mcap",
        "x_10.mcap",
        "x_11.mcap",
    ]


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
    argv = [
        "bag",
        "record-video",
        video,
        "-o",
        str(out),
        "--max-frames",
        "2",
        "--force",
        "--storage",
        "sqlite3",
    ]
    assert main(argv) == 2  # the .mcap would stay beside a new .db3, which no reader takes
    assert "holds a bag stored as mcap (video_bag.mcap); --force replaces a bag of the same storage" in (
        one_line_error(capsys)
    )


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
    assert {"notes.txt", *REPORT_FILES} == {p.name for p in out.iterdir()}  # params.yaml too: the run used it
    assert main(["bag", "eval", str(skeleton_bag), "--out", str(skeleton_bag), "--force"]) == 2
    assert "also an input" in one_line_error(capsys)
    labels = out / "predictions.csv"  # a report's own file name, given as the input
    assert main([*argv, "--labels", str(labels), "--params-file", fast_params, "--force"]) == 2
    assert "holds the input" in one_line_error(capsys)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xf2\x00\xff binary", "is not a UTF-8 text file"),
        (
            b"a: &a [1, 2]\nrecognizer:\n  ros__parameters:\n    max_gap: *a\n",
            "aliases (*name) are not supported",
        ),
        (  # the deterministic mode took what the real-time mode's nodes refuse
            b"/**/recognizer:\n  ros__parameters:\n    window_seconds: 1\n",
            "the recognizer node's window_seconds must be a number with a decimal point (1.0, not 1), not 1",
        ),
        (
            b"/**/recognizer:\n  ros__parameters:\n    person_timeout: 120.0\n",
            "the recognizer node's person_timeout must be from 0.05 to 60, not 120.0",
        ),
        (
            b"/**/recognizer:\n  ros__parameters:\n    autostart: 'no'\n",
            "the recognizer node's autostart must be true or false, not 'no'",
        ),
        (  # the deterministic mode dropped it; the real-time one waited for bodies and said nothing
            b"/**/recognizer:\n  ros__parameters:\n    body_topic: /tracker/bodies\n",
            "body_topic ('/tracker/bodies') pairs bodies from a second topic",
        ),
    ],
    ids=["binary", "alias", "int_for_float", "range", "text_for_bool", "body_topic"],
)
def test_eval_with_a_parameters_file_it_cannot_read_is_one_line(
    tmp_path, tiny_model, capsys, content, message
):
    skeleton_bag = tmp_path / "skeleton_bag"
    scripted_skeleton_bag(skeleton_bag)
    params = tmp_path / "params.yaml"
    params.write_bytes(content)
    argv = ["bag", "eval", str(skeleton_bag), "--out", str(tmp_path / "report"), "--model", str(tiny_model)]
    assert main([*argv, "--params-file", str(params)]) == 2
    assert message in one_line_error(capsys)
    assert not (tmp_path / "report").exists()


def test_eval_of_a_skeleton_bag_leaves_the_pose_section_alone(tmp_path, tiny_model):
    """A skeleton bag runs no pose node: a robot's file with its pose section under a namespace,
    or with a value the pose node would refuse, was refused for it."""
    skeleton_bag = tmp_path / "skeleton_bag"
    scripted_skeleton_bag(skeleton_bag)
    params = tmp_path / "params.yaml"
    params.write_text(
        "/**/recognizer:\n  ros__parameters: {window_seconds: 2.0}\n"
        "/robot1/pose:\n  ros__parameters: {backend: multi}\n/**/pose:\n  ros__parameters: {num_poses: two}\n"
    )
    argv = ["bag", "eval", str(skeleton_bag), "--out", str(tmp_path / "report"), "--model", str(tiny_model)]
    assert main([*argv, "--params-file", str(params)]) == 0


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
        ("--start-time", "-5", "seconds since the epoch (a ROS time, above 0)"),
        ("--start-time", "0", "--start-time 0 is stamp 0 to ROS, which means 'not stamped'"),
        ("--start-time", "1e-10", "--start-time 1e-10 is stamp 0 to ROS"),
        ("--start-time", "5e-10", "--start-time 5e-10 is stamp 0 to ROS"),
        ("--start-time", "3e9", "--start-time 3000000000.0 is out of range"),
        ("--start-time", "1e300", "--start-time 1e+300 is out of range"),  # overflowed to a traceback
        ("--start-time", "2147483647", "frame 3 would be stamped past 2147483647 s"),
        ("--rate", "inf", "--rate inf is out of range"),
        ("--rate", "nan", "--rate nan is out of range"),
        ("--rate", "1e-12", "give 0.01 to 1000 frames/s"),
        ("--rate", "-1", "--rate -1.0 is out of range"),
        ("--topic", "/bad topic", "--topic '/bad topic' is no valid topic name"),
        ("--frame-id", "\udcff\udcfe", "is not printable UTF-8 text"),  # bytes 0xff 0xfe on a command line
        ("--frame-id", "cam\nera", "is not printable UTF-8 text"),
    ],
)
def test_record_video_refuses_unusable_stamps_and_names(tmp_path, capsys, option, value, message):
    video = write_tiny_video(tmp_path / "three.avi")
    assert main(["bag", "record-video", str(video), "-o", str(tmp_path / "sub" / "b"), option, value]) == 2
    assert message in one_line_error(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["three.avi"]  # no bag, staging or parent folder


def test_record_video_puts_jpeg_images_on_the_compressed_topic(tmp_path):
    """image_transport's convention, which the pose node subscribes by: <base>/compressed."""
    video = write_tiny_video(tmp_path / "three.avi")
    assert main(["bag", "record-video", str(video), "-o", str(tmp_path / "b"), "--encoding", "jpeg"]) == 0
    assert bag.bag_topics(tmp_path / "b") == {"/camera/image_raw/compressed": bag.COMPRESSED_TYPE}


@pytest.mark.parametrize("rate", [float("nan"), float("inf"), 0.0, -1.0])
def test_a_replay_rate_that_is_no_positive_finite_number_is_refused(rate):
    from bharnet_ros.nodes.bag_eval import realtime_replay

    with pytest.raises(ValueError, match="the replay rate must be a positive finite number"):
        realtime_replay(rate)


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


def test_record_refuses_a_topic_name_at_once_not_after_waiting(tmp_path, capsys):
    assert main(["bag", "record", "-o", str(tmp_path / "rec"), "/chat ter", "--wait", "3600"]) == 2
    assert "'/chat ter' is no valid topic name" in one_line_error(capsys)
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


# --------------------------------------------------------------------------------------------------
# Bags from somewhere else: wrong metadata, length fields beyond the file, compression bombs and
# messages that are not what their topic says. Each is one line and exit code 2, or counted.
# --------------------------------------------------------------------------------------------------


def edit_metadata(path: Path, change) -> None:
    """Apply ``change`` to the bag's metadata (the rosbag2_bagfile_information mapping) in place."""
    data = yaml.safe_load((path / "metadata.yaml").read_text())
    change(data["rosbag2_bagfile_information"])
    (path / "metadata.yaml").write_text(yaml.safe_dump(data))


def first_topic(info: dict) -> dict:
    return info["topics_with_message_count"][0]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("not_yaml", "Could not load YAML"),  # ruamel's message spans lines; ours is one
        ("topic_number", "topic 5 of type 'sensor_msgs/msg/Image' in metadata.yaml is not a name"),
        ("topic_forged", "topic '/x\\n/fake  42 messages\\x1b[31m' of type"),
        ("file_compressed", "is compressed file by file, which is not read"),
        ("duration_nan", "duration in metadata.yaml holds nan, not nanoseconds"),
        ("count_text", "message count 'many' of /cam is not a count"),
        ("count_negative", "message count -5 of /cam is not a count"),
        ("topic_twice", "lists topic /cam as sensor_msgs/msg/Image and bharnet_ros/msg/Action"),
        ("topic_alike", "lists topic /cam twice alike"),
        ("file_twice", "names b.mcap more than once"),
        ("oversized", "bytes, more than rosbag2 metadata ever does (at most 100 are read)"),
    ],
)
@pytest.mark.parametrize("action", ["info", "eval"])
def test_metadata_that_is_no_rosbag2_metadata_is_a_one_line_error(
    tmp_path, capsys, monkeypatch, damage, message, action
):
    path = tmp_path / "b"
    write_camera_bag(path, smooth_images(2))
    changes = {
        "topic_number": lambda m: first_topic(m)["topic_metadata"].update(name=5),
        "topic_forged": lambda m: first_topic(m)["topic_metadata"].update(
            name="/x\n/fake  42 messages\x1b[31m"
        ),
        "file_compressed": lambda m: m.update(compression_mode="FILE", compression_format="zstd"),
        "duration_nan": lambda m: m["duration"].update(nanoseconds=float("nan")),  # a bag 'nan s' long
        "count_text": lambda m: first_topic(m).update(message_count="many"),
        "count_negative": lambda m: first_topic(m).update(message_count=-5),
        "topic_twice": lambda m: m["topics_with_message_count"].append(
            {
                **first_topic(m),
                "topic_metadata": {**first_topic(m)["topic_metadata"], "type": bag.ACTION_TYPE},
            }
        ),
        "topic_alike": lambda m: m["topics_with_message_count"].append(first_topic(m)),
        "file_twice": lambda m: m["relative_file_paths"].append("b.mcap"),
        "zstd_garbage": lambda m: m.update(compression_mode="message", compression_format="zstd"),
    }
    if damage == "not_yaml":
        (path / "metadata.yaml").write_text("rosbag2_bagfile_information: {version: [\n  9\n")
    elif damage == "oversized":
        monkeypatch.setattr(bag, "MAX_METADATA_BYTES", 100)
    else:
        edit_metadata(path, changes[damage])
    extra = ["--out", str(tmp_path / "out")] if action == "eval" else []
    assert main(["bag", action, str(path), *extra]) == 2
    error = one_line_error(capsys)
    assert message in error
    assert "ros2 bag convert" in error if damage == "file_compressed" else "move metadata.yaml aside" in error
    assert not (tmp_path / "out").exists()


def chunk_index_fields(data: bytes) -> tuple[int, int]:
    """Offsets of compressed_size and uncompressed_size in the first chunk index of an MCAP file."""
    at = int.from_bytes(data[-37 + 9 : -37 + 17], "little")  # the footer's summary_start
    while data[at] != 0x08:  # chunk index
        at += 9 + int.from_bytes(data[at + 1 : at + 9], "little")
    at += 9 + 32  # opcode, length, message start/end, chunk start offset, chunk length
    at += 4 + int.from_bytes(data[at : at + 4], "little") + 8  # message index offsets, index length
    at += 4 + int.from_bytes(data[at : at + 4], "little")  # compression name
    return at, at + 8


def first_chunk(data: bytes) -> int:
    """Offset of the first chunk record of an MCAP file."""
    at = len(bag.MCAP_MAGIC)
    while data[at] != 0x06:
        at += 9 + int.from_bytes(data[at + 1 : at + 9], "little")
    return at


@pytest.mark.parametrize("index", ["indexed", "unindexed"])
def test_length_fields_beyond_the_file_are_refused_before_reading(tmp_path, capsys, index):
    path = tmp_path / "b"
    write_camera_bag(path, smooth_images(3))
    storage = path / "b.mcap"
    if index == "unindexed":  # as a recovered cut-off file: records only, read by scanning
        bag.recover_mcap(storage, tmp_path / "plain.mcap")
        storage.write_bytes((tmp_path / "plain.mcap").read_bytes())
    data = bytearray(storage.read_bytes())
    if index == "indexed":  # rosbags read 2**40 bytes of chunk at once: MemoryError, a traceback
        field = chunk_index_fields(bytes(data))[0]
        data[field : field + 8] = (1 << 40).to_bytes(8, "little")
    else:
        chunk = first_chunk(bytes(data))
        data[chunk + 1 : chunk + 9] = (1 << 40).to_bytes(8, "little")
    storage.write_bytes(bytes(data))
    argv = ["bag", "eval", str(path), "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    error = one_line_error(capsys)
    assert f"expected {1 << 40} bytes, the file holds" in error
    assert "cannot be read" in error


def first_message_in_chunk(data: bytes) -> int:
    """Offset of the first message record inside the first (uncompressed) chunk of an MCAP file."""
    at = first_chunk(data) + 9 + 8 + 8 + 8 + 4  # opcode, length, start and end times, size, crc
    compression = int.from_bytes(data[at : at + 4], "little")
    assert compression == 0, "an uncompressed chunk"
    at += 4 + 8  # no compression name, the records' length
    while data[at] != 0x05:
        at += 9 + int.from_bytes(data[at + 1 : at + 9], "little")
    return at


@pytest.mark.parametrize("action", ["eval", "reindex"])
def test_a_record_length_beyond_any_index_inside_a_chunk_is_a_one_line_error(tmp_path, capsys, action):
    """2**64 - 1 overflowed seek and read in the chunk (OverflowError: a traceback), and a reindex
    of such a file read its first message unguarded."""
    path = tmp_path / "b"
    write_camera_bag(path, smooth_images(3))
    storage = path / "b.mcap"
    data = bytearray(storage.read_bytes())
    at = first_message_in_chunk(bytes(data))
    data[at + 1 : at + 9] = b"\xff" * 8 if action == "eval" else (10_000_000).to_bytes(8, "little")
    storage.write_bytes(bytes(data))
    if action == "reindex":
        (path / "metadata.yaml").unlink()
        os.utime(storage, (1e9, 1e9))  # long finished: reindexed, not taken for a live recording
    argv = (
        ["bag", "eval", str(path), "--out", str(tmp_path / "out")]
        if action == "eval"
        else ["bag", "info", str(path)]
    )
    assert main(argv) == 2
    assert "cannot be read" in one_line_error(capsys)


def test_a_sqlite_bag_path_holding_a_uri_character_is_refused(tmp_path, capsys, monkeypatch):
    """rosbags cut the path at '#': the database went to ./.take, outside the bag, and the run
    reported success; reading such a bag sent the user to move valid data away."""
    monkeypatch.chdir(tmp_path)
    video = write_tiny_video(tmp_path / "v.avi")
    assert main(["bag", "record-video", str(video), "-o", "take#2", "--storage", "sqlite3"]) == 2
    assert "a SQLite bag's path may not hold '#'" in one_line_error(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.avi"]
    assert main(["bag", "record-video", str(video), "-o", "take2", "--storage", "sqlite3"]) == 0
    capsys.readouterr()
    (tmp_path / "take2").rename(tmp_path / "r%41")  # read as rA
    assert main(["bag", "info", "r%41"]) == 2
    assert "a SQLite bag's path may not hold '%41'" in one_line_error(capsys)
    (tmp_path / "r%41").rename(tmp_path / "run_100%")  # a % SQLite reads as itself
    assert main(["bag", "info", "run_100%"]) == 0


def test_a_sqlite_bag_whose_schema_is_not_utf8_is_a_one_line_error(tmp_path, capsys):
    """SQLite's text came back as a UnicodeDecodeError during the reindex: a traceback."""
    path = tmp_path / "b"
    write_camera_bag(path, smooth_images(2), storage="sqlite3")
    (path / "metadata.yaml").unlink()
    storage = path / "b.db3"
    data = storage.read_bytes()
    at = data.index(b"message_definitions")  # the table's name in sqlite_master
    storage.write_bytes(data[:at] + b"\x80" + data[at + 1 :])
    os.utime(storage, (1e9, 1e9))
    assert main(["bag", "info", str(path)]) == 2
    assert "is not a readable SQLite bag" in one_line_error(capsys)


def compressed_bag(path: Path, mode, images: list[np.ndarray]) -> None:
    """A bag written by rosbags itself with zstd compression (MCAP chunks, or each message)."""
    from rosbags.rosbag2 import Writer
    from rosbags.rosbag2.enums import CompressionFormat, StoragePlugin

    writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
    writer.set_compression(mode, CompressionFormat.ZSTD)
    with writer:
        connection = writer.add_connection("/cam", bag.IMAGE_TYPE, typestore=bag.typestore())
        for i, image in enumerate(images):
            stamp = ORIGIN + i * PERIOD
            data = bag.typestore().serialize_cdr(bag.image_message(image, stamp), bag.IMAGE_TYPE)
            writer.write(connection, stamp, data)


@pytest.mark.parametrize("damage", ["none", "declared_smaller", "over_the_bound"])
def test_compressed_chunks_decompress_within_their_declared_size(tmp_path, capsys, monkeypatch, damage):
    from rosbags.rosbag2.enums import CompressionMode

    path = tmp_path / "b"
    black = np.zeros((512, 512, 3), np.uint8)  # 768 kB of zeros: a few hundred bytes of zstd
    compressed_bag(path, CompressionMode.STORAGE, [black, black])
    if damage == "declared_smaller":  # a bomb: the chunk expands far past what it declares
        data = bytearray((path / "b.mcap").read_bytes())
        chunk, (_, uncompressed) = first_chunk(bytes(data)), chunk_index_fields(bytes(data))
        for field in (chunk + 9 + 16, uncompressed):  # in the chunk record and in its index
            data[field : field + 8] = (1000).to_bytes(8, "little")
        (path / "b.mcap").write_bytes(bytes(data))
    if damage == "over_the_bound":
        monkeypatch.setattr(bag, "MAX_RECORD_BYTES", 1 << 20)
    if damage == "none":
        assert [m.decode().width for m in bag.read_messages(path, ["/cam"])] == [512, 512]
        return
    assert main(["bag", "eval", str(path), "--out", str(tmp_path / "out")]) == 2
    error = one_line_error(capsys)
    expected = {
        "declared_smaller": "zstd data declared as 1000 bytes decompresses to more",
        "over_the_bound": f"is more than the {1 << 20} bytes read at once",
    }
    assert expected[damage] in error


@pytest.mark.parametrize("order", ["in_time", "overlapping"])
def test_chunks_that_would_be_held_unpacked_together_are_refused(tmp_path, capsys, monkeypatch, order):
    path, image = tmp_path / "b", smooth_images(1)[0]
    # three chunks of two frames each: one after another, or nested in time (0-5, 1-4, 2-3 s)
    times = [(0, 1), (2, 3), (4, 5)] if order == "in_time" else [(0, 5), (1, 4), (2, 3)]
    with bag.BagWriter(path) as writer:
        writer.add_topic("/cam", bag.IMAGE_TYPE)
        for pair in times:
            for second in pair:
                stamp = ORIGIN + second * 10**9
                writer.write("/cam", stamp, bag.image_message(image, stamp))
            writer.flush()  # closes the chunk
    monkeypatch.setattr(bag, "MAX_HELD_BYTES", int(2.5 * 2 * image.nbytes))  # two chunks, not three
    if order == "in_time":
        assert len(list(bag.read_messages(path, ["/cam"]))) == 6
        return
    assert main(["bag", "info", str(path)]) == 2
    error = one_line_error(capsys)
    assert "b.mcap has chunks overlapping in time: reading it would hold" in error
    assert "ros2 bag convert" in error


def test_messages_compressed_one_by_one_decompress_within_the_bound(tmp_path, capsys, monkeypatch):
    from rosbags.rosbag2.enums import CompressionMode

    path = tmp_path / "b"
    images = smooth_images(2)
    compressed_bag(path, CompressionMode.MESSAGE, images)
    decoded = [bag.decode_camera_message(m.decode(), m.msgtype) for m in bag.read_messages(path, ["/cam"])]
    assert all(np.array_equal(a, b) for a, b in zip(decoded, images, strict=True))
    plain = tmp_path / "plain"  # metadata says compressed per message, but nothing is
    write_camera_bag(plain, images)
    edit_metadata(plain, lambda m: m.update(compression_mode="message", compression_format="zstd"))
    assert main(["bag", "eval", str(plain), "--out", str(tmp_path / "out")]) == 2
    assert "a zstd message cannot be decompressed" in one_line_error(capsys)
    monkeypatch.setattr(bag, "MAX_RECORD_BYTES", 1000)  # each message is about 9 kB
    assert main(["bag", "eval", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "a zstd message decompresses to more (at most 1000 bytes are read at once)" in one_line_error(
        capsys
    )


def skeleton_payloads(count: int) -> list[bytes]:
    """Serialized skeleton messages of the scripted idle-then-wave sequence, stamped from ORIGIN."""
    sequence, _ = generate_scripted([("idle", 2.0), ("wave", 2.0)], np.random.default_rng(5))
    payloads = []
    for t in range(count):
        stamp = ORIGIN + round(sequence.timestamps[t] * 1e9)
        message = bag.skeleton_array_message([sequence.frame(t)], stamp)
        payloads.append(bytes(bag.typestore().serialize_cdr(message, bag.SKELETON_TYPE)))
    return payloads


def raw_bag(path: Path, payloads: list[bytes], msgtype: str = bag.SKELETON_TYPE) -> None:
    with bag.BagWriter(path) as writer:
        writer.add_topic("/bharnet/skeletons", msgtype)
        for i, data in enumerate(payloads):
            writer.write_raw("/bharnet/skeletons", ORIGIN + i * PERIOD, data)


def test_messages_that_do_not_deserialize_are_counted_as_undecodable(tmp_path, tiny_model, fast_params):
    payloads = skeleton_payloads(60)
    text = bytes(
        bag.typestore().serialize_cdr(
            bag.message_class("std_msgs/msg/String")(data="hi"), "std_msgs/msg/String"
        )
    )
    damaged = [payloads[0][:30], *payloads[1:20], text, payloads[21][:-9], *payloads[22:]]
    path = tmp_path / "b"
    raw_bag(path, damaged)
    summary = eval_summary(path, tmp_path / "out", tiny_model, fast_params)
    assert summary["counts"]["frames"] == 60
    assert (
        summary["counts"]["bad_frames"] == summary["counts"]["frames"] - summary["counts"]["processed"] == 3
    )
    assert summary["first_stamp"] == pytest.approx(
        bag.cdr_header_stamp(payloads[1]) * 1e-9
    )  # the first whole one


def test_a_message_of_too_many_skeletons_is_refused_before_decoding(tmp_path, tiny_model, fast_params):
    """2 million empty skeletons are 120 MB, 10 KB in a compressed bag; decoding them took 4 GB."""
    from bharnet_ros.core.skeleton_fields import skeleton_count

    frame = SkeletonFrame.empty(0.0)
    for frame_id in ("", "camera_optical"):  # the count follows a frame_id of any length
        message = bag.skeleton_array_message([frame] * (bag.MOST_DECODED_SKELETONS + 1), ORIGIN, frame_id)
        data = bytes(bag.typestore().serialize_cdr(message, bag.SKELETON_TYPE))
        assert skeleton_count(data) == bag.MOST_DECODED_SKELETONS + 1
    payloads = skeleton_payloads(60)
    assert skeleton_count(payloads[0]) == 1
    raw_bag(tmp_path / "b", [*payloads[:30], data, *payloads[31:]])
    summary = eval_summary(tmp_path / "b", tmp_path / "out", tiny_model, fast_params)
    assert summary["counts"]["bad_frames"] == 1


def skeleton_bag_stamped(path: Path, stamps: list[int]) -> None:
    """A skeleton bag of the scripted sequence whose header stamps are ``stamps`` (ns), and one
    message too short to hold a header (undecodable, and no stamp to read)."""
    sequence, _ = generate_scripted([("idle", 2.0), ("wave", 2.0)], np.random.default_rng(5))
    payloads = [
        bytes(
            bag.typestore().serialize_cdr(
                bag.skeleton_array_message([sequence.frame(t)], stamp), bag.SKELETON_TYPE
            )
        )
        for t, stamp in enumerate(stamps)
    ]
    raw_bag(path, [*payloads, b"\0" * 5])


@pytest.mark.parametrize(
    ("stamps", "reason"),
    [
        ([ORIGIN] * 60, "all 60 frames carry the same header stamp"),
        (
            [ORIGIN + i * 1_000_000 for i in range(60)],
            "the frames span 0.059 s, less than the 0.4 s of history",
        ),
        (
            [ORIGIN + (60 - i) * 33_000_000 for i in range(60)],
            "the header stamps go backwards 59 times in 60 frames",
        ),
    ],
)
def test_a_bag_that_gives_no_action_says_why(tmp_path, capsys, tiny_model, fast_params, stamps, reason):
    path = tmp_path / "b"
    skeleton_bag_stamped(path, stamps)
    summary = eval_summary(path, tmp_path / "out", tiny_model, fast_params)
    assert (summary["counts"]["processed"], summary["counts"]["actions"]) == (60, 0)
    assert reason in summary["silence"]
    assert f"why no action       no action: {reason}" in capsys.readouterr().out


def test_a_bag_with_actions_has_no_silence_reason(tmp_path, tiny_model, fast_params):
    path = tmp_path / "b"
    raw_bag(path, skeleton_payloads(60))
    assert eval_summary(path, tmp_path / "out", tiny_model, fast_params)["silence"] is None


@pytest.mark.parametrize("content", ["truncated", "other_type", "empty"])
def test_a_topic_of_nothing_but_damaged_messages_is_a_one_line_error(tmp_path, capsys, content):
    payloads = skeleton_payloads(3)
    image = bag.typestore().serialize_cdr(bag.image_message(smooth_images(1)[0], ORIGIN), bag.IMAGE_TYPE)
    damaged = {
        "truncated": [p[: len(p) // 2] for p in payloads],
        "other_type": [bytes(image)] * 3,  # a camera frame where skeletons belong
        "empty": [b""] * 3,
    }[content]
    raw_bag(tmp_path / "b", damaged)
    assert main(["bag", "eval", str(tmp_path / "b"), "--out", str(tmp_path / "out")]) == 2
    error = one_line_error(capsys)
    assert f"none of the 3 messages on /bharnet/skeletons deserializes as {bag.SKELETON_TYPE}" in error
    assert not (tmp_path / "out").exists()


def test_metadata_that_counts_messages_the_storage_lacks_says_so(tmp_path, capsys):
    path = tmp_path / "b"
    write_camera_bag(path, smooth_images(2))
    edit_metadata(path, lambda m: first_topic(m)["topic_metadata"].update(type=bag.COMPRESSED_TYPE))
    assert main(["bag", "eval", str(path), "--out", str(tmp_path / "out")]) == 2
    error = one_line_error(capsys)
    assert "metadata.yaml counts 2 messages on /cam, but its storage files hold none" in error
    assert "move metadata.yaml aside" in error


@pytest.mark.parametrize(
    ("segments", "absolute", "message"),
    [
        ([Segment(1000.0, 2000.0, "idle")], False, "start/end are seconds from the first frame"),
        ([Segment(ORIGIN * 1e-9, ORIGIN * 1e-9 + 2, "idle")], False, "run from 1700000000.00 to"),
        ([Segment(1e9, 1e9 + 2, "idle")], True, "start_stamp/end_stamp are absolute header stamps"),
    ],
)
def test_labels_that_miss_the_bag_entirely_are_a_one_line_error(
    tmp_path, capsys, segments, absolute, message
):
    """Another recording's labels, or stamps under start/end, scored nothing and reported 0 %."""
    path = tmp_path / "b"
    write_camera_bag(path, smooth_images(3))
    labels = save_csv(tmp_path / "labels.csv", segments, absolute=absolute)
    argv = ["bag", "eval", str(path), "--labels", str(labels), "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    error = one_line_error(capsys)
    assert f"{labels}: no segment lies within the bag's 0.07 s" in error
    assert message in error
    assert not (tmp_path / "out").exists()


def test_a_killed_recording_whose_clock_stepped_back_is_still_read(tmp_path, capsys):
    """The recorder's log times are its wall clock; after an NTP step back, the recovered (unindexed)
    copy was refused by rosbags ("not in timestamp order"), and reindexing again could not help."""
    import shutil

    payloads = skeleton_payloads(40)
    writer = bag.BagWriter(tmp_path / "recording")
    writer.add_topic("/bharnet/skeletons", bag.SKELETON_TYPE)
    for i, data in enumerate(payloads):
        step_back = 5_000_000_000 if i >= 20 else 0
        writer.write_raw("/bharnet/skeletons", ORIGIN + i * PERIOD - step_back, data)
    writer.flush()
    killed = tmp_path / "killed"  # the storage file as a SIGKILL leaves it: no footer, no metadata
    killed.mkdir()
    shutil.copyfile(tmp_path / "recording" / "recording.mcap", killed / "killed.mcap")
    writer.close()
    assert main(["bag", "info", str(killed)]) == 0
    assert "rebuilt it: 40 messages" in capsys.readouterr().out
    stored = sorted(bag.cdr_header_stamp(m.data) for m in bag.read_messages(killed, ["/bharnet/skeletons"]))
    assert stored == [bag.cdr_header_stamp(p) for p in payloads]
    log_times = [m.log_time for m in bag.read_messages(killed)]
    assert log_times == sorted(log_times)
    assert sorted(p.name for p in killed.iterdir()) == [
        "killed.mcap",
        "killed.recovered.mcap",
        "metadata.yaml",
    ]


def test_a_complete_recording_without_an_index_whose_clock_stepped_back_is_read(tmp_path, capsys):
    """A recorder's noSummary file is complete but has no index: it was kept as it was, and rosbags
    refused it ("not in timestamp order"), however often the advice to reindex was followed."""
    payloads = skeleton_payloads(40)
    with bag.BagWriter(tmp_path / "recording") as writer:
        writer.add_topic("/bharnet/skeletons", bag.SKELETON_TYPE)
        for i, data in enumerate(payloads):
            writer.write_raw("/bharnet/skeletons", ORIGIN + i * PERIOD - 5_000_000_000 * (i >= 20), data)
    path = tmp_path / "plain"
    path.mkdir()
    bag.recover_mcap(tmp_path / "recording" / "recording.mcap", path / "plain.mcap")  # records, footer
    assert bag.mcap_summary_start(path / "plain.mcap") == 0
    assert main(["bag", "info", str(path)]) == 0
    assert (
        "plain.mcap has no index; its messages were copied to plain.recovered.mcap" in capsys.readouterr().out
    )
    log_times = [m.log_time for m in bag.read_messages(path, ["/bharnet/skeletons"])]
    assert len(log_times) == 40
    assert log_times == sorted(log_times)
    assert bag.mcap_summary_start(path / "plain.recovered.mcap") > 0


def test_a_pipe_in_the_bag_folder_is_refused_not_waited_on(tmp_path, capsys):
    """A tarball can hold a named pipe; opening it as the storage file waited for a writer forever."""
    import os

    path = tmp_path / "b"
    write_camera_bag(path, smooth_images(2))
    (path / "b.mcap").unlink()
    os.mkfifo(path / "b.mcap")
    assert main(["bag", "info", str(path)]) == 2
    assert f"{path / 'b.mcap'} in the bag folder is not a regular file" in one_line_error(capsys)


@pytest.mark.parametrize("metadata", [True, False], ids=["as_written", "reindexed"])
def test_a_topic_recorded_under_two_qos_profiles_is_read_whole(tmp_path, metadata):
    """rosbag2 lists such a topic once per profile: that metadata was refused, and a reindex listed
    it once, so rosbags, which matches storage and metadata by profile, read half the messages."""
    from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
    from rosbags.rosbag2 import Writer
    from rosbags.rosbag2.enums import StoragePlugin

    def profile(reliability: int) -> Qos:
        never = QosTime(0, 0)
        return Qos(
            QosHistory(1), 10, QosReliability(reliability), QosDurability(2), never, never,
            QosLiveliness(1), never, False,
        )  # fmt: skip

    path = tmp_path / "b"
    payloads = skeleton_payloads(60)
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        connections = [
            writer.add_connection(
                "/bharnet/skeletons",
                bag.SKELETON_TYPE,
                typestore=bag.typestore(),
                offered_qos_profiles=[profile(r)],
            )
            for r in (1, 2)
        ]
        for i, data in enumerate(payloads):
            writer.write(connections[i >= 30], ORIGIN + i * PERIOD, data)
    if not metadata:
        (path / "metadata.yaml").unlink()
        bag.reindex_bag(path)
    assert bag.bag_message_counts(path) == {"/bharnet/skeletons": 60}
    assert len(list(bag.read_messages(path, ["/bharnet/skeletons"]))) == 60


def test_storage_holding_a_topic_with_two_types_is_not_reindexed(tmp_path, capsys):
    """Reindexed, such files gave a metadata.yaml that listed the topic twice, which reading refuses."""
    from rosbags.rosbag2 import Writer
    from rosbags.rosbag2.enums import StoragePlugin

    path = tmp_path / "b"
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        for msgtype in (bag.SKELETON_TYPE, bag.ACTION_TYPE):
            writer.add_connection("/x", msgtype, typestore=bag.typestore())
    (path / "metadata.yaml").unlink()
    assert main(["bag", "info", str(path)]) == 2
    error = one_line_error(capsys)
    assert (
        f"hold topic /x as {bag.SKELETON_TYPE} and {bag.ACTION_TYPE}, where rosbag2 keeps one type" in error
    )
    assert sorted(p.name for p in path.iterdir()) == ["b.mcap"]


def test_a_db3_message_whose_data_is_a_number_is_a_one_line_error(tmp_path):
    path = tmp_path / "b"
    write_camera_bag(path, smooth_images(2), storage="sqlite3")
    (database,) = path.glob("*.db3")
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE messages SET data = 1125899906842624")  # 2**50: bytes() of it is 1 PB
    with pytest.raises(bag.BagError, match="holds int, not bytes"):
        list(bag.read_messages(path, ["/cam"]))


ENDLESS = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c"
HOSTILE_SCHEMAS = {
    "view": (
        "DROP TABLE message_definitions",
        "CREATE VIEW message_definitions AS SELECT x AS id, 'a' AS topic_type, 'ros2msg' AS encoding, "
        f"'' AS encoded_message_definition, '' AS type_description_hash FROM ({ENDLESS})",
    ),
    "trigger": ("CREATE TRIGGER t AFTER INSERT ON topics BEGIN SELECT 1; END",),
    "generated": (
        "ALTER TABLE messages RENAME TO old",
        "CREATE TABLE messages(id INTEGER PRIMARY KEY, topic_id INTEGER, timestamp INTEGER, "
        "data BLOB GENERATED ALWAYS AS (zeroblob(300000000)) VIRTUAL)",
    ),
}


@pytest.mark.parametrize("metadata", [True, False], ids=["read", "reindexed"])
@pytest.mark.parametrize("hostile", list(HOSTILE_SCHEMAS))
def test_a_db3_whose_schema_runs_code_is_refused_before_it_is_read(tmp_path, capsys, hostile, metadata):
    """SQLite runs views and generated columns inside the reader, where Ctrl-C and SIGTERM cannot
    stop it: an endless view filled 45 GB of disk, a generated column took 23 GB of memory."""
    path = tmp_path / "b"
    write_camera_bag(path, smooth_images(2), storage="sqlite3")
    (database,) = path.glob("*.db3")
    with sqlite3.connect(database) as connection:
        for statement in HOSTILE_SCHEMAS[hostile]:
            connection.execute(statement)
    connection.close()
    if not metadata:
        (path / "metadata.yaml").unlink()
    assert main(["bag", "info", str(path)]) == 2
    error = one_line_error(capsys)
    assert "which SQLite would run while reading it" in error
    assert {"view": "the view 'message_definitions'", "trigger": "the trigger 't'"}.get(
        hostile, "the generated column 'data'"
    ) in error


# --------------------------------------------------------------------------------------------------
# Crafted bags and killed runs: refused in one line before any work, and nothing left behind.
# --------------------------------------------------------------------------------------------------


def file_compressed_bag(path: Path, spelling: str) -> None:
    """A bag compressed file by file (a zstd file of 1 MiB of zeros) whose metadata.yaml spells the
    mode in a way a search of its lines missed; rosbags reads it as ``compression_mode: file``."""
    from backports import zstd

    path.mkdir()
    (path / "b.mcap.zstd").write_bytes(zstd.compress(bytes(1 << 20)))
    fields = [
        "version: 9",
        "storage_identifier: mcap",
        "relative_file_paths: [b.mcap.zstd]",
        "duration: {nanoseconds: 0}",
        "starting_time: {nanoseconds_since_epoch: 0}",
        "message_count: 0",
        "topics_with_message_count: []",
        "files: []",
        "compression_format: zstd",
    ]
    if spelling == "flow":  # one line: no line starts with the key
        text = "rosbag2_bagfile_information: {" + ", ".join([*fields, "compression_mode: file"]) + "}"
    else:
        mode = {
            "quoted": ['"compression_mode": file'],
            "tagged": ["compression_mode: !!str file"],
            "decoy": ["custom_data:", "  compression_mode: none", "compression_mode: file"],  # nested first
        }[spelling]
        text = "\n".join(["rosbag2_bagfile_information:", *(f"  {line}" for line in [*mode, *fields])])
    (path / "metadata.yaml").write_text(text + "\n")


@pytest.mark.parametrize("spelling", ["flow", "quoted", "tagged", "decoy"])
def test_a_file_compressed_bag_is_refused_however_its_yaml_spells_the_mode(
    tmp_path, capsys, monkeypatch, spelling
):
    """A line search missed these, and rosbags unpacked the whole storage file into TMPDIR first
    (17 kB became 480 MB)."""
    import tempfile

    file_compressed_bag(tmp_path / "b", spelling)
    unpacked = tmp_path / "tmp"
    unpacked.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(unpacked))
    opened = []
    monkeypatch.setattr(bag.Reader, "open", lambda reader: opened.append(reader))
    assert main(["bag", "info", str(tmp_path / "b")]) == 2
    assert "is compressed file by file, which is not read" in one_line_error(capsys)
    assert opened == []  # refused before rosbags opened (and unpacked) anything
    assert list(unpacked.iterdir()) == []


def killed_recording(folder: Path, count: int = 40) -> Path:
    """A bag folder holding what a SIGKILL leaves of a recording: an MCAP file of ``count`` skeleton
    messages without footer, and no metadata.yaml."""
    import shutil

    writer = bag.BagWriter(folder.parent / f"{folder.name}_whole")
    writer.add_topic("/bharnet/skeletons", bag.SKELETON_TYPE)
    for i, data in enumerate(skeleton_payloads(count)):
        writer.write_raw("/bharnet/skeletons", ORIGIN + i * PERIOD, data)
    writer.flush()
    folder.mkdir()
    shutil.copyfile(
        folder.parent / f"{folder.name}_whole" / f"{folder.name}_whole.mcap", folder / "killed.mcap"
    )
    writer.close()
    return folder


def test_reindex_takes_hidden_files_for_no_storage_files(tmp_path, capsys):
    """A killed reindex's temporary copy was listed as a second storage file (every message read
    twice), and macOS's AppleDouble file made the reindex fail."""
    import shutil

    killed = killed_recording(tmp_path / "killed")
    shutil.copyfile(
        tmp_path / "killed_whole" / "killed_whole.mcap", killed / ".killed.recovered.raw-774.mcap"
    )
    (killed / "._killed.mcap").write_bytes(b"\x00\x05\x16\x07" + bytes(4092))  # AppleDouble header
    hidden = {p.name: p.read_bytes() for p in killed.iterdir() if p.name.startswith(".")}
    assert main(["bag", "info", str(killed)]) == 0
    assert capsys.readouterr().out.endswith(
        "/bharnet/skeletons  bharnet_ros/msg/PersonSkeletonArray  40 messages\n"
    )
    metadata = yaml.safe_load((killed / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert metadata["relative_file_paths"] == ["killed.recovered.mcap"]
    assert {name: (killed / name).read_bytes() for name in hidden} == hidden  # not ours: untouched


def test_a_storage_file_whose_name_starts_with_a_dot_is_still_read(tmp_path, capsys):
    """``ros2 bag record -o .x`` names its files ``.x_0.mcap``: only AppleDouble files and our own
    temporary copies are no storage."""
    killed = killed_recording(tmp_path / ".x")
    (killed / "killed.mcap").rename(killed / ".x_0.mcap")
    assert main(["bag", "info", str(killed)]) == 0
    assert capsys.readouterr().out.endswith(
        "/bharnet/skeletons  bharnet_ros/msg/PersonSkeletonArray  40 messages\n"
    )


SIGTERM_WHILE_INDEXING = """
import os, signal, sys
from bharnet_ros.cli import main
from bharnet_ros.core import bag

bag.QUIET_SECONDS = 0.0  # reindexed the moment it is written, as in the tests in this process

copy = bag._copy_connection

def terminated(*args):
    os.kill(os.getpid(), signal.SIGTERM)  # as `kill PID` while the recovered copy is indexed
    return copy(*args)

bag._copy_connection = terminated
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("action", ["info", "eval"])
def test_sigterm_during_a_reindex_removes_its_temporary_files(tmp_path, action):
    """SIGTERM killed the process without clean-up: a 368 MB temporary copy stayed in the bag, and
    the next reindex listed it as a storage file."""
    import subprocess
    import sys

    killed = killed_recording(tmp_path / "killed")
    extra = ["--out", str(tmp_path / "report")] if action == "eval" else []
    argv = [sys.executable, "-c", SIGTERM_WHILE_INDEXING, "bag", action, str(killed), *extra]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 130, done.stderr
    assert done.stderr.strip().endswith("interrupted")
    assert sorted(p.name for p in killed.iterdir()) == ["killed.mcap"]
    assert not (tmp_path / "report").exists()


def test_reindex_never_removes_a_file_it_did_not_create(tmp_path, capsys, monkeypatch):
    """A file already named like the reindex's temporary copy was reported as existing, then
    deleted by the clean-up."""
    killed = killed_recording(tmp_path / "killed")
    recover, taken = bag.recover_mcap, []

    def name_taken_first(source: Path, target: Path) -> int:
        target.write_bytes(b"mine")  # another program's file under the temporary copy's name
        taken.append(target)
        return recover(source, target)

    monkeypatch.setattr(bag, "recover_mcap", name_taken_first)
    assert main(["bag", "info", str(killed)]) == 2
    assert f"{taken[0]} already exists" in one_line_error(capsys)
    assert taken[0].read_bytes() == b"mine"


def test_a_temporary_name_that_is_taken_is_neither_overwritten_nor_removed(tmp_path, capsys, monkeypatch):
    killed = killed_recording(tmp_path / "killed")
    monkeypatch.setattr(bag.secrets, "token_hex", lambda size: "feed")
    (killed / ".metadata.yaml.tmp-feed").write_bytes(b"mine")
    assert main(["bag", "info", str(killed)]) == 2
    assert f"cannot write {killed / 'metadata.yaml'} (File exists)" in one_line_error(capsys)
    assert (killed / ".metadata.yaml.tmp-feed").read_bytes() == b"mine"


def patched_storage(path: Path, old: bytes, new: bytes) -> None:
    """Replace ``old`` with ``new`` (of the same length) everywhere in the bag's storage file."""
    (storage,) = [p for p in path.iterdir() if p.suffix in bag.STORAGE_SUFFIXES]
    data = storage.read_bytes()
    assert old in data
    assert len(old) == len(new)
    storage.write_bytes(data.replace(old, new))


def sqlite_update(path: Path, statement: str) -> None:
    (database,) = path.glob("*.db3")
    with sqlite3.connect(database) as connection:
        connection.execute(statement)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("mcap_schema_encoding", "KeyError 'protobu'"),  # rosbags' table of schema encodings lacks it
        ("mcap_schema_encoding_unindexed", "KeyError 'protobu'"),
        ("sqlite_definition_encoding", "KeyError 'idl2'"),
        ("sqlite_qos_without_depth", "KeyError 'depth'"),
        ("sqlite_qos_list_for_a_name", "'list' object has no attribute 'upper'"),
    ],
)
def test_storage_fields_rosbags_fails_on_are_one_line_errors(tmp_path, capsys, damage, message):
    """rosbags raised KeyError and AttributeError for them: a traceback and exit code 1."""
    path = tmp_path / "b"
    write_camera_bag(path, smooth_images(2), storage="sqlite3" if damage.startswith("sqlite") else "mcap")
    if damage.startswith("mcap"):
        patched_storage(path, b"ros2msg", b"protobu")
    if damage == "mcap_schema_encoding_unindexed":
        (path / "metadata.yaml").unlink()  # reindexed: the file is complete, so nothing to recover
    updates = {
        "sqlite_definition_encoding": "UPDATE message_definitions SET encoding = 'idl2'",
        "sqlite_qos_without_depth": "UPDATE topics SET offered_qos_profiles = '- {history: keep_last}'",
        "sqlite_qos_list_for_a_name": "UPDATE topics SET offered_qos_profiles = '- {history: [1], depth: 1}'",
    }
    if damage in updates:
        sqlite_update(path, updates[damage])
    assert main(["bag", "info", str(path)]) == 2
    error = one_line_error(capsys)
    assert message in error
    if damage == "mcap_schema_encoding_unindexed":
        assert f"{path / 'b.mcap'} cannot be read as a rosbag2 recording" in error
        assert sorted(p.name for p in path.iterdir()) == ["b.mcap"]


@pytest.mark.parametrize("value", ["'late'", "x'00'"])
def test_a_db3_log_time_that_is_no_number_is_a_one_line_error(tmp_path, capsys, value):
    """The deterministic run failed on `log_time * 1e-9` with a TypeError traceback."""
    path = tmp_path / "b"
    raw_bag(path, skeleton_payloads(3))  # mcap; the same messages as SQLite below
    sqlite_path = tmp_path / "s"
    with bag.BagWriter(sqlite_path, "sqlite3") as writer:
        writer.add_topic("/bharnet/skeletons", bag.SKELETON_TYPE)
        for message in bag.read_messages(path):
            writer.write_raw("/bharnet/skeletons", message.log_time, message.data)
    sqlite_update(sqlite_path, f"UPDATE messages SET timestamp = {value} WHERE id = 2")
    assert main(["bag", "eval", str(sqlite_path), "--out", str(tmp_path / "out")]) == 2
    assert "has the log time" in one_line_error(capsys)
    assert not (tmp_path / "out").exists()


def duplicate_first_chunk_index(storage: Path) -> None:
    """Insert a copy of the first chunk index record at the start of the MCAP file's summary."""
    data = storage.read_bytes()
    summary = int.from_bytes(data[-37 + 9 : -37 + 17], "little")  # the footer's summary_start
    at = summary
    while data[at] != 0x08:  # chunk index
        at += 9 + int.from_bytes(data[at + 1 : at + 9], "little")
    record = data[at : at + 9 + int.from_bytes(data[at + 1 : at + 9], "little")]
    storage.write_bytes(data[:summary] + record + data[summary:])


def test_a_chunk_listed_twice_in_the_index_is_refused(tmp_path, capsys):
    """rosbags read that chunk's messages twice: every count doubled, silently."""
    path = tmp_path / "b"
    raw_bag(path, skeleton_payloads(30))
    duplicate_first_chunk_index(path / "b.mcap")
    assert main(["bag", "info", str(path)]) == 2
    assert "b.mcap lists a chunk twice in its index" in one_line_error(capsys)


def test_reindex_refuses_a_storage_topic_that_is_no_name_without_writing_metadata(tmp_path, capsys):
    """It wrote metadata.yaml, then refused it with the advice to reindex, which wrote it again."""
    from rosbags.rosbag2 import Writer
    from rosbags.rosbag2.enums import StoragePlugin

    path = tmp_path / "b"
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        connection = writer.add_connection("/x\n/fake", bag.SKELETON_TYPE, typestore=bag.typestore())
        writer.write(connection, ORIGIN, skeleton_payloads(1)[0])
    (path / "metadata.yaml").unlink()
    assert main(["bag", "info", str(path)]) == 2
    error = one_line_error(capsys)
    assert "topic '/x\\n/fake' of type" in error
    assert "move it out of the bag folder" in error
    assert sorted(p.name for p in path.iterdir()) == ["b.mcap"]


def test_a_complete_mcap_of_another_profile_is_named_itself(tmp_path, capsys):
    """A Foxglove recording (profile not ros2) was 'recovered' as if cut off, and the error named a
    temporary file that was gone, saying its records were damaged."""
    path = tmp_path / "b"
    raw_bag(path, skeleton_payloads(3))
    (path / "metadata.yaml").unlink()
    storage = path / "b.mcap"
    storage.write_bytes(storage.read_bytes().replace(b"\x04\x00\x00\x00ros2", b"\x04\x00\x00\x00json", 1))
    assert main(["bag", "info", str(path)]) == 2
    error = one_line_error(capsys)
    assert f"{storage} cannot be read as a rosbag2 recording (Profile is not ros2)" in error
    assert sorted(p.name for p in path.iterdir()) == ["b.mcap"]


def test_a_finished_mcap_whose_summary_is_damaged_is_recovered_from_its_records(tmp_path, capsys):
    """Its data section is whole, so its messages can be read again (a footer does not mean that
    there is nothing to recover)."""
    path = tmp_path / "s1"
    raw_bag(path, skeleton_payloads(3))
    (path / "metadata.yaml").unlink()
    storage = path / "s1.mcap"
    data = bytearray(storage.read_bytes())
    footer_fields = len(data) - 8 - 20  # before the closing magic: summary start, offsets, crc
    summary = int.from_bytes(data[footer_fields : footer_fields + 8], "little")
    data[summary + 1 : summary + 9] = (2**40).to_bytes(8, "little")  # its first record's length
    storage.write_bytes(bytes(data))
    assert main(["bag", "info", str(path)]) == 0
    assert capsys.readouterr().out.endswith(
        "/bharnet/skeletons  bharnet_ros/msg/PersonSkeletonArray  3 messages\n"
    )


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_a_bag_compressed_message_by_message_is_reindexed_so_its_messages_decode(tmp_path, storage):
    """A rebuilt metadata.yaml said no compression, and every message then failed to decode."""
    from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer

    path = tmp_path / "z"
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    writer = Writer(path, version=9, storage_plugin=plugin)
    writer.set_compression(CompressionMode.MESSAGE, CompressionFormat.ZSTD)
    with writer:
        connection = writer.add_connection("/bharnet/skeletons", bag.SKELETON_TYPE, typestore=bag.typestore())
        for i, data in enumerate(skeleton_payloads(3)):
            writer.write(connection, ORIGIN + i * PERIOD, data)
    (path / "metadata.yaml").unlink()
    bag.reindex_bag(path)  # as bag info and bag eval do
    messages = list(bag.read_messages(path))
    assert len(messages) == 3
    assert all(message.decode().persons for message in messages)


@pytest.mark.parametrize("action", ["eval", "record-video"])
def test_a_dangling_link_as_the_output_is_refused_before_the_work(tmp_path, capsys, monkeypatch, action):
    """The command ran to the end, then failed with 'Not a directory'."""
    from bharnet_ros.core import bag_eval
    from bharnet_ros.tools import bag as tools_bag

    started = lambda *args, **kwargs: pytest.fail("the run started")  # noqa: E731
    monkeypatch.setattr(bag_eval, "evaluate_bag", started)
    monkeypatch.setattr(tools_bag, "write_video_bag", started)  # the name the command calls
    out = tmp_path / "out"
    out.symlink_to(tmp_path / "nowhere")
    raw_bag(tmp_path / "b", skeleton_payloads(3))
    video = write_tiny_video(tmp_path / "three.avi")
    argv = {
        "eval": ["bag", "eval", str(tmp_path / "b"), "--out", str(out)],
        "record-video": ["bag", "record-video", str(video), "-o", str(out)],
    }[action]
    assert main(argv) == 2
    assert f"{out} is a symbolic link to {tmp_path / 'nowhere'}, which does not exist" in one_line_error(
        capsys
    )
    assert not (tmp_path / "nowhere").exists()


def test_a_folder_where_a_report_file_goes_is_refused_before_the_run(tmp_path, capsys, monkeypatch):
    from bharnet_ros.core import bag_eval

    monkeypatch.setattr(bag_eval, "evaluate_bag", lambda *args, **kwargs: pytest.fail("the run started"))
    raw_bag(tmp_path / "b", skeleton_payloads(3))
    (tmp_path / "out" / "summary.json").mkdir(parents=True)
    assert main(["bag", "eval", str(tmp_path / "b"), "--out", str(tmp_path / "out"), "--force"]) == 2
    assert "holds " + str(tmp_path / "out" / "summary.json") + ", which is no regular file" in one_line_error(
        capsys
    )


def test_record_video_into_the_current_folder_names_the_bag_after_it(tmp_path, monkeypatch):
    """`-o .` staged the bag in a folder named `..tmp-…` and then refused it as existing."""
    video = write_tiny_video(tmp_path / "three.avi")
    (tmp_path / "clip").mkdir()
    monkeypatch.chdir(tmp_path / "clip")
    assert main(["bag", "record-video", str(video), "-o", ".", "--force"]) == 0
    assert sorted(p.name for p in (tmp_path / "clip").iterdir()) == ["clip.mcap", "metadata.yaml"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip", "three.avi"]
    assert bag.bag_message_counts(tmp_path / "clip") == {"/camera/image_raw": 3}
