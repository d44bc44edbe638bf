"""Composed test videos: streams of clips with their segments, side-by-side people, motion onsets."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from bharnet_ros.core.compose import ComposeError, Piece, compose_stream, motion_onset, side_by_side
from bharnet_ros.core.video import VideoReader


def clip(
    path: Path,
    frames: int,
    value: int,
    fps: float = 10.0,
    size: tuple[int, int] = (64, 48),
    fourcc: str = "mp4v",
) -> Path:
    """A small video whose every pixel of frame i is ``value + i`` (so frames can be told apart)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), value + i, np.uint8))
    writer.release()
    return path


def exact_rate(avi: Path, rate: int, scale: int) -> Path:
    """The AVI with its stream header's rate set to rate/scale exactly (OpenCV writes 3 decimals)."""
    data = bytearray(avi.read_bytes())
    at = data.index(b"strh") + 28  # dwScale, then dwRate
    data[at : at + 8] = scale.to_bytes(4, "little") + rate.to_bytes(4, "little")
    avi.write_bytes(bytes(data))
    return avi


def levels(path: Path) -> list[int]:
    with VideoReader(path) as reader:
        return [int(round(float(image.mean()))) for _, image in reader]


def test_a_stream_plays_the_pieces_in_order_and_labels_their_segments(tmp_path):
    gesture = clip(tmp_path / "wave.mp4", 20, 100)
    still = clip(tmp_path / "still.mp4", 30, 10)
    pieces = [Piece(still, None, 0.0, 1.0), Piece(gesture, "wave", onset=0.5), Piece(still, None, 2.0)]
    segments = compose_stream(pieces, tmp_path / "stream.mp4")
    seen = levels(tmp_path / "stream.mp4")
    assert len(seen) == 10 + 20 + 10
    assert abs(seen[10] - 100) <= 8  # lossy mp4: grey levels move a little
    assert abs(seen[29] - 119) <= 8
    assert [(s.start, s.end, s.label) for s in segments] == [(1.5, 3.0, "wave")]


def test_segments_are_timed_at_the_rate_the_stream_was_written_with(tmp_path):
    """The container keeps 3 decimals (100/7 fps is written 14.286): segment times at the clip's
    exact rate drifted past the stream's frames, a frame a segment after about 30 frames."""
    gesture = exact_rate(clip(tmp_path / "wave.avi", 60, 100, fourcc="MJPG"), 100, 7)
    still = exact_rate(clip(tmp_path / "still.avi", 40, 10, fourcc="MJPG"), 100, 7)
    segments = compose_stream([Piece(still, None), Piece(gesture, "wave")], tmp_path / "stream.mp4")
    with VideoReader(tmp_path / "stream.mp4") as reader:
        stamps = [stamp for stamp, _ in reader]
    assert segments[0].start == pytest.approx(stamps[40], abs=1e-6)  # the gesture's first frame


@pytest.mark.parametrize("onset", [-3.0, float("nan"), 6.0])
def test_an_onset_outside_the_clip_is_refused_not_a_segment_labels_refuse(tmp_path, onset):
    """An onset past the clip's end gave a segment of no length, which bag eval then refused
    after the whole stream was recorded; a negative one a segment before the stream."""
    gesture = clip(tmp_path / "wave.mp4", 20, 100)
    with pytest.raises(ComposeError, match="onset"):
        compose_stream([Piece(gesture, "wave", onset=onset)], tmp_path / "stream.mp4")


def test_clips_of_another_rate_or_size_are_refused(tmp_path):
    first = clip(tmp_path / "a.mp4", 5, 50)
    other_rate = clip(tmp_path / "b.mp4", 5, 50, fps=20.0)
    with pytest.raises(ComposeError, match="frame rate or size"):
        compose_stream([Piece(first, "a"), Piece(other_rate, "b")], tmp_path / "s.mp4")
    with pytest.raises(ComposeError, match="no clips"):
        compose_stream([], tmp_path / "s.mp4")


def test_side_by_side_puts_people_next_to_each_other(tmp_path):
    left = clip(tmp_path / "l.mp4", 12, 40)
    right = clip(tmp_path / "r.mp4", 8, 200, size=(32, 24))
    written = side_by_side([left, right], tmp_path / "both.mp4", height=48)
    assert written == 8  # the shorter clip
    with VideoReader(tmp_path / "both.mp4") as reader:
        assert reader.info.size == (64 + 64, 48)
        _, image = next(iter(reader))
    assert abs(float(image[:, :60].mean()) - 40) < 10
    assert abs(float(image[:, 68:].mean()) - 200) < 10


def test_side_by_side_says_when_it_wrote_nothing(tmp_path):
    left = clip(tmp_path / "l.mp4", 4, 40)
    with pytest.raises(ComposeError, match="cannot write"):
        side_by_side([left, left], tmp_path / "missing" / "both.mp4", height=48)
    with pytest.raises(ComposeError, match="no clips"):
        side_by_side([], tmp_path / "none.mp4")


def test_motion_onset_is_when_a_wrist_leaves_its_first_position():
    t = np.arange(40) / 20.0
    body = np.zeros((40, 33, 4), np.float32)
    body[:, 11, :2] = [0.6, 0.4]  # shoulders 0.2 apart
    body[:, 12, :2] = [0.4, 0.4]
    body[:, 15, :2] = [0.62, 0.8]
    body[:, 16, :2] = [0.38, 0.8]
    body[20:, 16, 1] = np.linspace(0.8, 0.3, 20)  # the right wrist rises from frame 20
    onset = motion_onset(t, body, (11, 12), (15, 16))
    assert 1.0 < onset < 1.3
    assert motion_onset(t, np.zeros_like(body), (11, 12), (15, 16)) == 0.0


def test_motion_onset_measures_shoulder_widths_in_pixels_not_in_fractions():
    """At 4:3 the shoulders' x-distance is 4/3 of what its fraction says: a wrist raised by 0.08 of
    the image's height was 0.4 fraction-widths, but 0.3 shoulder widths."""
    t = np.arange(40) / 20.0
    body = np.zeros((40, 33, 4), np.float32)
    body[:, 11, :2], body[:, 12, :2] = [0.6, 0.4], [0.4, 0.4]  # 0.2 of 640 px: 128 px apart
    body[:, 15, :2], body[:, 16, :2] = [0.62, 0.8], [0.38, 0.8]
    body[20:, 16, 1] = 0.8 - 0.08  # 38 px: 0.4 fraction-widths, 0.3 shoulder widths
    body[30:, 16, 1] = 0.8 - 0.2  # 96 px, 0.75 shoulder widths
    assert motion_onset(t, body, (11, 12), (15, 16)) == 1.0
    assert motion_onset(t, body, (11, 12), (15, 16), aspect=640 / 480) == 1.5


def test_clips_the_stream_writer_cannot_take_are_named_not_written_as_nothing(tmp_path):
    """1x1 frames: the mp4 writer refused them silently, and segments came back for no video."""
    tiny = tmp_path / "tiny.avi"  # MJPG takes 1x1 frames; the stream's mp4 writer does not
    writer = cv2.VideoWriter(str(tiny), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (1, 1))
    for _ in range(5):
        writer.write(np.zeros((1, 1, 3), np.uint8))
    writer.release()
    with pytest.raises(ComposeError, match="1x1 frames cannot be written"):
        compose_stream([Piece(tiny, "wave")], tmp_path / "out.mp4")
