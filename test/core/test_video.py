"""Video reading: frame counts, timestamps, sizes and errors, on a written clip and the shared one."""

from __future__ import annotations

import math
import struct
import tracemalloc

import cv2
import numpy as np
import pytest

from bharnet_ros.core import video
from bharnet_ros.core.video import (
    DEFAULT_PLAY_RATE,
    MAX_PLAY_RATE,
    VideoError,
    VideoReader,
    is_video_file,
    list_videos,
    play_frames,
    play_rate,
)


def write_clip(path, frames: int = 12, fps: float = 10.0, size: tuple[int, int] = (64, 48)) -> None:
    """A small mp4 whose frame i is filled with grey level 20 * i (brighter as it goes)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), 20 * i, np.uint8))
    writer.release()


def test_reads_every_frame_with_timestamps(tmp_path):
    path = tmp_path / "clip.mp4"
    write_clip(path)
    with VideoReader(path) as reader:
        info = reader.info
        frames = list(reader)
    assert (info.frame_count, info.fps, info.size) == (12, 10.0, (64, 48))
    assert [t for t, _ in frames] == pytest.approx(np.arange(12) / 10.0)
    images = [image for _, image in frames]
    assert all(image.shape == (48, 64, 3) and image.dtype == np.uint8 for image in images)
    assert np.all(np.diff([image.mean() for image in images]) > 5)  # frames come in order (lossy codec)


def test_shared_sign_video(shared_file):
    with VideoReader(shared_file("videos/sign_dobrii_den.mp4")) as reader:
        info = reader.info
        timestamps = [t for t, _ in reader]
    assert (info.frame_count, info.fps, info.size) == (100, 25.0, (320, 240))
    assert len(timestamps) == 100
    assert timestamps[-1] == pytest.approx(3.96)


def test_a_reader_is_single_pass(tmp_path):
    path = tmp_path / "clip.mp4"
    write_clip(path, frames=3)
    with VideoReader(path) as reader:
        assert len(list(reader)) == 3
        with pytest.raises(VideoError, match="already been read"):
            list(reader)


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.mp4"):
        VideoReader(tmp_path / "nope.mp4")


def test_a_name_the_system_cannot_look_up_is_a_video_error(tmp_path):
    """A name too long, or a path through a file: Path.exists raised a bare OSError, and the video
    source node's entry point ended in a traceback (it reports ValueErrors in one line)."""
    with pytest.raises(VideoError, match=r"cannot open video .*/a+\.\.\.: File name too long"):
        VideoReader(tmp_path / ("a" * 300 + ".mp4"))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(VideoError, match="notes.txt/clip.mp4: Not a directory"):
        VideoReader(tmp_path / "notes.txt" / "clip.mp4")


def test_unreadable_file_raises_video_error(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("not a video")
    with pytest.raises(VideoError, match="notes.mp4"):
        VideoReader(path)


def test_an_image_named_like_a_numbered_sequence_is_refused_not_read_as_others(tmp_path):
    """`frame%03d.png` was read as frame000.png, frame001.png, ...: other files than the one named."""
    for name in ("frame%03d.png", "frame000.png", "frame001.png"):
        cv2.imwrite(str(tmp_path / name), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(VideoError, match="as a numbered image sequence, not this file; rename it"):
        VideoReader(tmp_path / "frame%03d.png")


def test_a_name_that_is_not_utf8_is_a_video_error_not_a_crash(tmp_path):
    """cv2.VideoCapture ended the whole process with SIGSEGV on such a name (bharnet run, teach)."""
    import os

    write_clip(tmp_path / "clip.avi")
    odd = os.fsdecode(bytes(tmp_path) + b"/clip\xff.avi")  # a Latin-1 name on a UTF-8 system
    os.rename(tmp_path / "clip.avi", odd)
    with pytest.raises(VideoError, match="not valid UTF-8, which OpenCV cannot open; rename the file"):
        VideoReader(odd)


def test_list_videos_filters_by_extension(tmp_path):
    for name in ("b.mp4", "A.AVI", "c.mkv", "notes.txt", "clip.npz"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub.mp4").mkdir()
    assert [p.name for p in list_videos(tmp_path)] == ["A.AVI", "b.mp4", "c.mkv"]
    assert is_video_file(tmp_path / "b.mp4")
    assert not is_video_file(tmp_path / "sub.mp4")
    with pytest.raises(FileNotFoundError):
        list_videos(tmp_path / "missing")


def test_a_video_cut_short_is_an_error_after_its_last_frame(tmp_path):
    path = tmp_path / "cut.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    for i in range(40):
        writer.write(np.full((48, 64, 3), 5 * i, np.uint8))
    writer.release()
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    decoded = []
    with VideoReader(path) as reader, pytest.raises(VideoError, match="ends after .* of the 40 frames"):
        decoded.extend(reader)
    assert 0 < len(decoded) < 40


def riff(kind: bytes, payload: bytes) -> bytes:
    """A RIFF chunk (``kind``, little-endian size, payload padded to an even length)."""
    return kind + struct.pack("<I", len(payload)) + payload + b"\0" * (len(payload) % 2)


def mjpeg_avi_with_drops(path, frames: int, dropped: set[int], fps: int = 25, size=(64, 48)) -> None:
    """An MJPEG AVI in which the chunks of ``dropped`` frames are empty: the 'drop frames' that
    capture tools write for frames the camera missed, and that decoders skip."""
    width, height = size
    chunks = []
    for i in range(frames):
        image = np.full((height, width, 3), 8 * (i % 30), np.uint8)
        chunks.append(b"" if i in dropped else cv2.imencode(".jpg", image)[1].tobytes())
    avih = struct.pack("<14I", 1_000_000 // fps, 0, 0, 0x10, frames, 0, 1, 0, width, height, 0, 0, 0, 0)
    strh = struct.pack(
        "<4s4sI2H8I4h", b"vids", b"MJPG", 0, 0, 0, 0, 1, fps, 0, frames, 0, 0xFFFFFFFF, 0, 0, 0, width, height
    )
    strf = struct.pack("<I2i2H4s5I", 40, width, height, 1, 24, b"MJPG", width * height * 3, 0, 0, 0, 0)
    streams = b"strl" + riff(b"strh", strh) + riff(b"strf", strf)
    header = b"hdrl" + riff(b"avih", avih) + riff(b"LIST", streams)
    movi, index, offset = b"movi", b"", 4
    for data in chunks:
        index += struct.pack("<4s3I", b"00dc", 0x10 if data else 0, offset, len(data))
        movi += riff(b"00dc", data)
        offset += len(riff(b"00dc", data))
    path.write_bytes(
        riff(b"RIFF", b"AVI " + riff(b"LIST", header) + riff(b"LIST", movi) + riff(b"idx1", index))
    )


def test_an_avi_with_drop_frames_is_complete_and_timed_by_its_container(tmp_path):
    path = tmp_path / "drops.avi"
    dropped = set(range(9, 100, 10))  # every tenth frame missed by the camera
    mjpeg_avi_with_drops(path, 100, dropped)
    with VideoReader(path) as reader:
        stamps = [t for t, _ in reader]  # not 'truncated': the header counts the drops
    kept = [i for i in range(100) if i not in dropped]
    assert stamps == pytest.approx([i / 25 for i in kept])


def test_a_file_plays_once_or_looped(tmp_path):
    path = tmp_path / "clip.mp4"
    write_clip(path, frames=3)
    assert len(list(play_frames(str(path), loop=False))) == 3
    looped = play_frames(str(path), loop=True)
    assert len([next(looped) for _ in range(7)]) == 7  # past the end, from the start again
    looped.close()


def test_reopening_a_looped_file_strands_no_memory(tmp_path):
    """OpenCV keeps a reference to the file name it opens: a new name string at every reopen of a
    looped file was never freed."""
    path = tmp_path / "clip.mp4"
    write_clip(path, frames=1)
    looped = play_frames(str(path), loop=True)
    for _ in range(20):
        next(looped)
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for _ in range(300):
            next(looped)
        grown = tracemalloc.take_snapshot().compare_to(before, "filename")
    finally:
        tracemalloc.stop()
        looped.close()
    assert sum(max(stat.count_diff, 0) for stat in grown) < 100  # a new name at each of the 300


def test_a_camera_that_stops_delivering_is_an_error_and_is_released(monkeypatch):
    class Camera:
        reads, released = 0, False

        def read(self):
            self.reads += 1
            return self.reads <= 2, np.zeros((4, 4, 3), np.uint8)

        def release(self):
            self.released = True

    camera = Camera()
    monkeypatch.setattr(video, "open_camera", lambda number: camera)
    frames = play_frames("3", loop=False)
    assert len([next(frames), next(frames)]) == 2
    with pytest.raises(VideoError, match="camera 3 stopped delivering frames"):
        next(frames)
    assert camera.released


def test_the_play_rate_is_the_files_own_within_bounds(tmp_path):
    path = tmp_path / "clip.mp4"
    write_clip(path, fps=10.0)
    assert play_rate(str(path)) == (10.0, "")
    write_clip(path, fps=1000.0)  # a time base, not a frame rate
    rate, note = play_rate(str(path))
    assert rate == MAX_PLAY_RATE
    assert note == f"{path} states 1000 frames per second; publishing at 240 (set 'rate' to choose)"
    assert play_rate("0") == (DEFAULT_PLAY_RATE, "")  # a camera states no rate


def test_a_camera_is_asked_for_its_newest_frame_not_a_queued_one(monkeypatch):
    """V4L2 queues 4 frames: read on a 30 Hz timer they were ~133 ms old, stamped as taken now."""

    settings = {}

    class Capture:
        def __init__(self, number):
            self.number = number

        def isOpened(self):  # noqa: N802 - OpenCV's name
            return True

        def set(self, key, value):
            settings[key] = value
            return True

    monkeypatch.setattr(video.cv2, "VideoCapture", Capture)
    assert video.open_camera(3).number == 3
    assert settings == {cv2.CAP_PROP_BUFFERSIZE: 1}


def phone_video(path, upright: np.ndarray, frames: int = 3) -> None:
    """``upright`` stored on its side with a 90° rotation in the track header, as a phone stores a
    portrait video (MP4 ``tkhd`` matrix; players and the reader turn it back)."""
    stored = cv2.rotate(upright, cv2.ROTATE_90_CLOCKWISE)
    height, width = stored.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (width, height))
    for _ in range(frames):
        writer.write(stored)
    writer.release()
    data = bytearray(path.read_bytes())
    matrix = data.find(b"tkhd") + 4 + 40  # version 0: flags, times, id, duration, layer... then the matrix
    struct.pack_into(">9i", data, matrix, 0, -65536, 0, 65536, 0, 0, 0, 0, 1 << 30)
    path.write_bytes(bytes(data))


def test_a_phones_portrait_video_is_read_upright(tmp_path):
    upright = np.zeros((96, 64, 3), np.uint8)
    upright[:24] = 255  # a bright band at the top
    phone_video(tmp_path / "phone.mp4", upright)
    with VideoReader(tmp_path / "phone.mp4") as reader:
        assert reader.info.size == (64, 96)
        _, image = next(iter(reader))
    assert image.shape == upright.shape
    assert image[:24].mean() > 200
    assert image[48:].mean() < 50


def test_a_video_of_frames_no_camera_gives_is_a_video_error_naming_it(tmp_path):
    write_clip(tmp_path / "thin.avi", frames=2, size=(640, 4))
    with pytest.raises(VideoError, match="thin.avi: image_size \\(640, 4\\) is no camera image"):
        VideoReader(tmp_path / "thin.avi")


def test_a_files_frames_keep_their_spacing_on_a_clock_that_ticks_slower():
    """One frame per tick of a 10 Hz /clock, stamped with the tick, played a 30 fps file 3x slower."""
    pacer = video.FramePacer(30.0)
    stamps = [stamp for tick in range(10) for stamp in pacer.due(5 * 10**9 + tick * 10**8)]
    assert len(stamps) == 28  # frames 0..27 are due by 0.9 s (27 * 33.3 ms)
    assert np.allclose(np.diff(stamps), 1e9 / 30, atol=1)


def test_a_timer_with_jitter_gives_one_frame_per_tick():
    pacer = video.FramePacer(20.0)
    jitter = np.random.default_rng(0).uniform(-5e6, 5e6, 100).astype(int)  # +-5 ms
    counts = [len(pacer.due(10**9 + i * 50_000_000 + int(j))) for i, j in enumerate(jitter)]
    assert set(counts[1:]) == {1}


def test_frames_after_a_late_first_tick_stay_one_period_apart():
    """Anchored on a first tick 20 ms late, later ticks on time were "early": each stamp was cut
    to its tick, so the stamps followed the timer's jitter (80, 105, 95, 120 ms apart)."""
    pacer = video.FramePacer(10.0)
    ticks = [20, 100, 205, 300, 430, 500, 610, 700, 810, 900]  # ms: late first, then late or on time
    stamps = [stamp for tick in ticks for stamp in pacer.due(10**9 + tick * 10**6)]
    assert len(stamps) == len(ticks)
    assert all(stamp <= 10**9 + tick * 10**6 for stamp, tick in zip(stamps, ticks, strict=True))
    assert np.diff(stamps)[1:].tolist() == [100_000_000] * (len(ticks) - 2)


@pytest.mark.parametrize("ticks", ["clock_40hz", "late_timer"])
def test_a_file_plays_at_its_rate_whatever_the_ticks(ticks):
    """Moved back at every tick that came early, the schedule ran ahead: 1799 frames of a 25 fps
    file in 60 s on a 40 Hz /clock, 6 % too many on a timer firing up to 20 ms late."""
    rng = np.random.default_rng(0)
    if ticks == "clock_40hz":  # a 40 ms timer on a /clock stepping every 25 ms (ros2 bag play --clock)
        rate, times = 25.0, [math.ceil(k * 40 / 25) * 25 for k in range(1500)]
    else:
        rate, times = 30.0, [k * 1000 / 30 + rng.uniform(0, 20) for k in range(3600)]
    pacer = video.FramePacer(rate)
    stamps = [stamp for t in times for stamp in pacer.due(10**9 + round(t * 1e6))]
    assert abs(len(stamps) - rate * times[-1] / 1000) <= 2
    assert np.all(np.diff(stamps) > 0)


def test_a_clock_gone_back_or_far_ahead_starts_the_schedule_again():
    pacer = video.FramePacer(30.0)
    pacer.due(100 * 10**9)
    pacer.due(100 * 10**9 + 10**8)
    assert pacer.due(50 * 10**9) == [50 * 10**9], "a /clock reset: stamps follow it back"
    assert pacer.due(3600 * 10**9) == [3600 * 10**9], "an hour ahead: one frame, no burst of them"
    assert len(pacer.due(3600 * 10**9 + 10**8)) == 3


def test_a_source_slower_than_its_rate_plays_slower_not_in_bursts():
    """Each tick owed more frames than the last until a second was due: one callback then held the
    executor for over a second and sent frames stamped a second late."""
    pacer = video.FramePacer(30.0)
    now, largest, oldest = 10**9, 0, 0
    for _ in range(200):
        stamps = pacer.due(now)
        largest, oldest = max(largest, len(stamps)), max(oldest, now - stamps[0])
        pacer.published(len(stamps), len(stamps) * 0.045)  # 45 ms to read and publish each frame
        now += len(stamps) * 45_000_000 + 33_333_333
    assert largest <= 3
    assert oldest <= 0.1e9


def test_a_clock_ticking_three_times_a_second_still_gets_every_frame():
    """Restarting a quarter second behind played a 30 fps file at 3 frames a second there."""
    pacer = video.FramePacer(30.0)
    sent = 0
    for tick in range(30):  # 10 s of a 3 Hz /clock
        stamps = pacer.due(10**9 + tick * 333_333_333)
        pacer.published(len(stamps), len(stamps) * 0.002)
        sent += len(stamps)
    assert sent == pytest.approx(9.67 * 30, abs=3)
