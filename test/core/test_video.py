"""Video reading: frame counts, timestamps, sizes and errors, on a written clip and the shared one."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from bharnet_ros.core.video import VideoError, VideoReader, is_video_file, list_videos


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


def test_unreadable_file_raises_video_error(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("not a video")
    with pytest.raises(VideoError, match="notes.mp4"):
        VideoReader(path)


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
