"""Video source node: real video frames, stamps from the node clock (sim time too), bad input,
and diagnostics that say when the video ended or failed."""

from __future__ import annotations

import dataclasses
import os
import struct
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image

from bharnet_ros.core import video as core_video
from bharnet_ros.core.video import MAX_PLAY_RATE
from bharnet_ros.nodes.video_source_node import VideoSourceNode

# Best effort, as the camera topic is, but deep: a probe slowed by a loaded machine drops nothing.
PROBE_QOS = QoSProfile(depth=300, reliability=ReliabilityPolicy.BEST_EFFORT)


def heard_source(ros, wait, probe: Node, images: list, **params) -> VideoSourceNode:
    """A video source that starts playing only once ``probe`` hears its topic: on a best-effort
    topic, frames published before discovery matched the two are lost to the probe."""
    probe.create_subscription(Image, "image_raw", images.append, PROBE_QOS)
    overrides = [Parameter(name, value=value) for name, value in params.items()]
    node = VideoSourceNode(context=ros.context, parameter_overrides=overrides)  # not spinning yet
    assert wait(lambda: node.publisher.get_subscription_count() > 0)
    return ros.adopt(node)  # its timer runs from here on


def test_plays_a_real_video_and_stops_at_max_frames(ros, wait, shared_file):
    images: list[Image] = []
    video = str(shared_file("videos/sign_dobrii_den.mp4"))
    node = heard_source(ros, wait, ros.add(Node, "probe"), images, video=video, max_frames=10, rate=50.0)
    assert wait(lambda: node.finished)
    assert node.frames_published == 10
    assert wait(lambda: len(images) == 10)
    first = images[0]
    assert (first.width, first.height, first.encoding) == (320, 240, "bgr8")
    assert first.header.frame_id == "camera"


def test_images_carry_the_configured_frame_id(ros, wait, tmp_path, parameter_client):
    """``frame_id`` given at start-up is in every image's header; it is read-only afterwards."""
    images: list[Image] = []
    video = write_clip(tmp_path / "clip.avi", 3)
    probe = ros.add(Node, "probe")
    node = heard_source(ros, wait, probe, images, video=video, frame_id="head_camera_optical")
    assert wait(lambda: node.finished and len(images) == 3)
    assert {m.header.frame_id for m in images} == {"head_camera_optical"}
    assert not parameter_client("video_source").set(frame_id="camera")["frame_id"].successful


def test_sim_time_stamps_frames_with_the_clock(ros, wait, shared_file):
    probe = ros.add(Node, "probe")
    clock = probe.create_publisher(Clock, "/clock", 10)
    images: list[Image] = []
    probe.create_subscription(Image, "image_raw", images.append, PROBE_QOS)
    node = ros.add(
        VideoSourceNode,
        parameter_overrides=[
            Parameter("video", value=str(shared_file("videos/sign_dobrii_den.mp4"))),
            Parameter("use_sim_time", value=True),
            Parameter("rate", value=50.0),
            Parameter("max_frames", value=200),
        ],
    )
    deadline = time.monotonic() + 20
    while not images and time.monotonic() < deadline:
        clock.publish(Clock(clock=Time(sec=4242)))
        time.sleep(0.02)
    assert wait(lambda: any(m.header.stamp.sec == 4242 for m in images))
    node.timer.cancel()


def test_a_clock_slower_than_the_file_keeps_its_frames_spacing(ros, wait, tmp_path):
    """Under a 10 Hz /clock a 30 fps file went out one frame per tick, stamped with the tick: its
    gestures reached the recognizer three times slower than they were filmed."""
    clip = write_clip(tmp_path / "counting.avi", 40, fps=30.0, step=6)
    probe = ros.add(Node, "probe")
    clock = probe.create_publisher(Clock, "/clock", 10)
    images: list[Image] = []
    node = heard_source(ros, wait, probe, images, video=clip, use_sim_time=True)
    for step in range(16):  # 1.5 s of sim time in 0.1 s steps
        clock.publish(Clock(clock=Time(sec=100 + step // 10, nanosec=step % 10 * 100_000_000)))
        time.sleep(0.05)
    assert wait(lambda: node.finished)
    assert wait(lambda: len(images) == 40)
    numbers = np.array([round(int(m.data[0]) / 6) for m in images])
    stamps = np.array([m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in images])
    assert np.array_equal(numbers, np.arange(40))
    assert np.allclose(stamps - stamps[0], numbers / 30, atol=1e-6)


@pytest.mark.parametrize("rate", [0.0, 15.0])
def test_missing_video_is_refused_with_a_clear_error(ros, tmp_path, rate):
    """With a rate given, the file was opened only once a reader came: a typo sat waiting, OK."""
    missing = [Parameter("video", value=str(tmp_path / "missing.mp4")), Parameter("rate", value=rate)]
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        ros.add(VideoSourceNode, parameter_overrides=missing)
    with pytest.raises(ValueError, match="'video' is empty"):
        ros.add(VideoSourceNode)


def test_a_camera_that_is_not_there_is_refused_at_start(ros):
    with pytest.raises(core_video.VideoError, match="camera 9999 could not be opened"):
        ros.add(VideoSourceNode, parameter_overrides=[Parameter("video", value="9999")])


@pytest.mark.parametrize("rate", [1e-300, 1e-10, 0.001])
def test_a_rate_too_slow_for_a_timer_is_refused_in_one_line(ros, tmp_path, rate):
    video = write_clip(tmp_path / "clip.avi", 3)
    overrides = [Parameter("video", value=video), Parameter("rate", value=rate)]
    with pytest.raises(ValueError, match="is below 0.01 frames per second; give 0 for the file's own rate"):
        ros.add(VideoSourceNode, parameter_overrides=overrides)


def write_clip(path, frames: int, fps: float = 25.0, step: int = 1) -> str:
    """A small MJPG clip whose frame i is grey level ``i * step`` all over."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (64, 48))
    for i in range(frames):
        writer.write(np.full((48, 64, 3), i * step, np.uint8))
    writer.release()
    return str(path)


@pytest.fixture
def source_diagnostics(ros):
    """The video source's /diagnostics statuses, as they arrive."""
    probe = ros.add(Node, "diagnostics_probe")
    statuses: list[DiagnosticStatus] = []

    def record(msg: DiagnosticArray) -> None:
        statuses.extend(s for s in msg.status if s.name.startswith("video_source"))

    probe.create_subscription(DiagnosticArray, "/diagnostics", record, 100)
    return statuses


def _values(status: DiagnosticStatus) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}


def listen(ros) -> list[Image]:
    """The images, heard by a subscriber of their own: a file waits for one before its first frame."""
    images: list[Image] = []
    ros.add(Node, "listener").create_subscription(Image, "image_raw", images.append, PROBE_QOS)
    return images


def test_a_looping_file_deleted_while_playing_stops_it_and_the_node_keeps_reporting(
    ros, wait, tmp_path, source_diagnostics
):
    """Reading the file again for the next loop found it gone: that used to kill the executor thread."""
    video = write_clip(tmp_path / "clip.avi", 5)
    listen(ros)
    node = ros.add(
        VideoSourceNode,
        parameter_overrides=[
            Parameter("video", value=video),
            Parameter("loop", value=True),
            Parameter("rate", value=100.0),
            Parameter("diagnostics_period", value=0.1),
        ],
    )
    assert wait(lambda: node.frames_published >= 2)
    os.remove(video)
    assert wait(lambda: node.finished)
    assert "video not found" in node.error
    published = node.frames_published
    assert published >= 5
    count = len(source_diagnostics)
    assert wait(lambda: len(source_diagnostics) >= count + 3), "its diagnostics keep coming"
    last = source_diagnostics[-1]
    assert last.level == DiagnosticStatus.ERROR
    assert "video not found" in last.message
    assert _values(last)["state"] == "failed"
    assert node.frames_published == published


def test_the_end_of_a_video_is_said_on_diagnostics_which_stay_alive(ros, wait, tmp_path, source_diagnostics):
    video = write_clip(tmp_path / "clip.avi", 4)
    listen(ros)
    overrides = [Parameter("video", value=video), Parameter("diagnostics_period", value=0.1)]
    node = ros.add(VideoSourceNode, parameter_overrides=overrides)
    assert wait(lambda: any(_values(s)["state"] == "playing" for s in source_diagnostics))
    assert wait(lambda: node.finished)
    count = len(source_diagnostics)
    assert wait(lambda: len(source_diagnostics) >= count + 3)
    last = source_diagnostics[-1]
    assert last.level == DiagnosticStatus.OK
    assert last.message == "end of video after 4 frames"
    assert _values(last)["frames_published"] == "4"
    assert _values(last)["callback_errors"] == "0"  # always there, as docs/nodes.md lists it
    assert not node.error
    node.note_callback_error(RuntimeError("a bad /clock message"))
    node.last_callback_error_at -= 3600  # long ago: the end of the video shows again, with it
    level, message, _ = node.status()
    assert (level, message.split(";")[0]) == (DiagnosticStatus.WARN, "end of video after 4 frames")


def test_a_file_rate_above_the_parameter_range_is_capped(ros, tmp_path):
    """A container stating 1000 fps published 1000 frames a second; ``rate`` allows at most 240."""
    video = write_clip(tmp_path / "fast.avi", 3, fps=1000.0)
    node = ros.add(VideoSourceNode, parameter_overrides=[Parameter("video", value=video)])
    assert node.rate == MAX_PLAY_RATE
    assert abs(node.timer.timer_period_ns - 1e9 / MAX_PLAY_RATE) < 2


def test_a_file_rate_below_the_parameter_range_plays_at_30(ros, tmp_path):
    """A header stating 0.001 fps would hold the first frame back for 1000 s, without a word."""
    video = tmp_path / "slow.avi"
    data = bytearray(Path(write_clip(video, 3)).read_bytes())
    main_header, stream_header = data.find(b"avih"), data.find(b"strh")
    struct.pack_into("<I", data, main_header + 8, 10**9)  # microseconds per frame
    struct.pack_into("<II", data, stream_header + 28, 1000, 1)  # scale, rate: 1/1000 fps
    video.write_bytes(bytes(data))
    node = ros.add(VideoSourceNode, parameter_overrides=[Parameter("video", value=str(video))])
    assert node.rate == 30.0


def test_a_file_without_a_frame_rate_plays_at_30_and_says_so(monkeypatch, tmp_path):
    video = write_clip(tmp_path / "clip.avi", 3)
    real = core_video.VideoReader

    class NoRate(real):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.info = dataclasses.replace(self.info, fps=0.0)

    monkeypatch.setattr(core_video, "VideoReader", NoRate)
    assert core_video.play_rate(video) == (
        30.0,
        f"{video} states no frame rate; publishing at 30 (set 'rate')",
    )


def test_sim_time_without_a_clock_is_reported_not_silent(ros, wait, tmp_path, source_diagnostics):
    """``bharnet run --use-sim-time --video F`` with nothing publishing /clock: say why no frame comes."""
    node = ros.add(
        VideoSourceNode,
        parameter_overrides=[
            Parameter("video", value=write_clip(tmp_path / "clip.avi", 4)),
            Parameter("use_sim_time", value=True),
            Parameter("diagnostics_period", value=0.1),
        ],
    )
    assert wait(lambda: len(source_diagnostics) >= 3)
    last = source_diagnostics[-1]
    assert last.level == DiagnosticStatus.WARN
    assert "no /clock" in last.message
    assert node.frames_published == 0


def test_a_file_waits_for_a_subscriber_and_then_plays_from_its_first_frame(
    ros, wait, tmp_path, source_diagnostics
):
    """``bharnet run --video F`` lost the clip's first 0.7 s: the lazy pose node subscribes only
    once the recognizer reads its skeletons, and frames published before that went nowhere."""
    video = write_clip(tmp_path / "clip.avi", 5, step=50)
    overrides = [Parameter("video", value=video), Parameter("diagnostics_period", value=0.1)]
    node = ros.add(VideoSourceNode, parameter_overrides=overrides)
    assert wait(lambda: any(_values(s)["state"] == "waiting" for s in source_diagnostics))
    waiting = next(s for s in source_diagnostics if _values(s)["state"] == "waiting")
    assert waiting.level == DiagnosticStatus.OK
    assert waiting.message.startswith("waiting for a subscriber")
    assert node.frames_published == 0
    images = listen(ros)
    assert wait(lambda: node.finished and len(images) == 5)
    assert [round(np.frombuffer(m.data, np.uint8).mean() / 50) for m in images] == [0, 1, 2, 3, 4]


def test_a_camera_publishes_live_with_nobody_listening(ros, wait, monkeypatch, source_diagnostics):
    """A camera is live: holding its frames back for a subscriber would only make them stale."""

    class Camera:
        def read(self) -> tuple[bool, np.ndarray]:
            return True, np.zeros((48, 64, 3), np.uint8)

        def release(self) -> None:
            pass

    monkeypatch.setattr(core_video, "open_camera", lambda number: Camera())
    overrides = [Parameter("video", value="7"), Parameter("diagnostics_period", value=0.1)]
    node = ros.add(VideoSourceNode, parameter_overrides=overrides)
    assert wait(lambda: node.frames_published >= 3)
    assert wait(lambda: any(_values(s)["state"] == "playing" for s in source_diagnostics))
    node.timer.cancel()
