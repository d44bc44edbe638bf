"""Compose test videos from real clips: labelled streams, and several people side by side.

A recognizer is used on a continuous camera stream, but public gesture datasets come as one
short clip per gesture. :func:`compose_stream` plays clips one after another (with "idle" clips
in between) into one video and returns the labelled segments, so the whole graph can be
evaluated on a stream of real people with known truth (``bharnet bag record-video`` and ``bag
eval``). :func:`side_by_side` puts different people's clips next to each other in one frame,
and :func:`compose_people` (:func:`compose_pair` for two) does so with the middle strip of each,
for multi-person tests and the several-people benchmark. Nothing here is committed data: the
videos are written where the caller says, from clips the caller owns.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from bharnet_ros.core.annotations import Segment
from bharnet_ros.core.video import VideoError, VideoReader

FOURCC = "mp4v"
PAIR_HEIGHT = 480
PAIR_CROP = 400  # pixels kept of each 640-wide clip: the person stays large enough for the pose detector
ONSET_SHOULDER_WIDTHS = 0.35  # a wrist this far from its first position: the gesture has started


class ComposeError(ValueError):
    """Clips that cannot be put together (unreadable, or of different sizes or rates)."""


@dataclass(frozen=True)
class Piece:
    """Part of a clip: seconds ``[start, end)`` (end None: to the end); ``label`` None = unscored.

    ``onset`` is where the labelled action really starts, in seconds from ``start`` (people raise
    an arm from rest first); the segment is labelled from there.
    """

    video: Path
    label: str | None = None
    start: float = 0.0
    end: float | None = None
    onset: float = 0.0


def clip_frames(piece: Piece) -> Iterator[tuple[float, np.ndarray]]:
    """The frames of a piece with their times in the clip."""
    with VideoReader(piece.video) as reader:
        for stamp, image in reader:
            if stamp < piece.start - 1e-9:
                continue
            if piece.end is not None and stamp >= piece.end - 1e-9:
                return
            yield stamp, image


def video_format(path: Path) -> tuple[float, tuple[int, int]]:
    """(fps, (width, height)) of a video file."""
    with VideoReader(path) as reader:
        return reader.info.fps, reader.info.size


def check_pieces(pieces: Sequence[Piece]) -> tuple[float, tuple[int, int]]:
    """The stream's (fps, (width, height)); ComposeError unless there are pieces, every clip opens
    and all share frame rate and size (a stream is one camera). Cheap: no frame is decoded."""
    if not pieces:
        raise ComposeError("no clips to compose")
    try:
        formats = [video_format(piece.video) for piece in pieces]
    except VideoError as err:
        raise ComposeError(str(err)) from None
    for piece, found in zip(pieces, formats, strict=True):
        if found != formats[0]:
            raise ComposeError(f"{piece.video} differs in frame rate or size from {pieces[0].video}")
    return formats[0]


def compose_stream(pieces: Sequence[Piece], output: Path) -> list[Segment]:
    """Write the pieces one after another into ``output`` (mp4); returns the labelled segments.

    All clips must share frame rate and size (a stream is one camera). Segment times are seconds
    from the first frame of ``output``.
    """
    fps, size = check_pieces(pieces)
    if bad := next((p for p in pieces if not (math.isfinite(p.onset) and p.onset >= 0)), None):
        raise ComposeError(f"{bad.video}: onset {bad.onset} s is no time in the clip; give 0 or more")
    output.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(output), cv2.VideoWriter_fourcc(*FOURCC), fps, size)
    if not writer.isOpened():  # silent otherwise: the segments came back and no video was written
        raise ComposeError(
            f"the clips' {fps:g} fps and {size[0]}x{size[1]} frames cannot be written as {FOURCC} video "
            "(it takes 0.01 to 65535 fps and frames of at least 2x2); use clips a camera gives"
        )
    frames, written = [], 0  # (label, first frame, end frame) in frames of the stream
    try:
        for piece in pieces:
            first, onset_frame = written, None
            for stamp, image in clip_frames(piece):
                if onset_frame is None and stamp >= piece.start + piece.onset - 1e-9:
                    onset_frame = written  # by the clip's stamps: a clip that dropped frames has gaps
                writer.write(image)
                written += 1
            if piece.label is None or written == first:  # unscored, or no frame of it in the stream
                continue
            if onset_frame is None:
                raise ComposeError(
                    f"{piece.video}: onset {piece.onset:g} s lies past the clip's last frame; "
                    "give the onsets of these clips (their dataset)"
                )
            frames.append((piece.label, onset_frame, written))
    finally:
        writer.release()
    rate = video_format(output)[0]  # as written: the container rounds the rate (14.286 for 100/7)
    return [Segment(round(first / rate, 6), round(end / rate, 6), label) for label, first, end in frames]


def side_by_side(videos: Sequence[Path], output: Path, height: int = 480) -> int:
    """Clips next to each other in one frame (each scaled to ``height``); returns frames written.

    The result lasts as long as the shortest clip and plays at the first clip's rate.
    """
    if not videos:
        raise ComposeError("no clips to put side by side")
    fps, _ = video_format(videos[0])
    writer, written = None, 0
    with contextlib.ExitStack() as open_readers:
        readers = [open_readers.enter_context(VideoReader(v)) for v in videos]
        try:
            for frames in zip(*readers, strict=False):
                tiles = [
                    cv2.resize(image, (round(image.shape[1] * height / image.shape[0]), height))
                    for _, image in frames
                ]
                canvas = np.concatenate(tiles, axis=1)
                if writer is None:
                    writer = _opened_writer(output, fps, canvas.shape[1::-1])
                writer.write(canvas)
                written += 1
        finally:
            if writer is not None:
                writer.release()
    return written


def _opened_writer(output: Path, fps: float, size: tuple[int, int]) -> cv2.VideoWriter:
    """A video writer of ``output``; ComposeError where OpenCV cannot open one (it says nothing)."""
    writer = cv2.VideoWriter(str(output), cv2.VideoWriter_fourcc(*FOURCC), fps, size)
    if not writer.isOpened():
        raise ComposeError(f"cannot write {output} as {FOURCC} video at {fps:g} fps, {size[0]}x{size[1]}")
    return writer


def compose_pair(
    left: Path, right: Path, output: Path, crop: int = PAIR_CROP, height: int = PAIR_HEIGHT
) -> int:
    """Two people's clips side by side in one mp4: the middle ``crop`` pixels of each, scaled to
    ``height`` (:func:`side_by_side`). Returns the frames written.

    Cropping keeps each person large in the frame: the Tasks pose detector sees the whole image at
    224 x 224, and a person in a 1280-pixel-wide frame is often too small for it.
    """
    return compose_people([left, right], output, crop, height)


def compose_people(
    clips: Sequence[Path],
    output: Path,
    crop: int = PAIR_CROP,
    height: int = PAIR_HEIGHT,
    max_frames: int | None = None,
) -> int:
    """Any number of people's clips side by side, as :func:`compose_pair` does for two; at most
    ``max_frames`` frames (the shortest clip ends it anyway). Returns the frames written."""
    with tempfile.TemporaryDirectory() as folder:
        strips = [
            _middle_strip(clip, Path(folder) / f"{index}.avi", crop, max_frames)
            for index, clip in enumerate(clips)
        ]
        return side_by_side(strips, output, height)


def _middle_strip(clip: Path, output: Path, width: int, max_frames: int | None = None) -> Path:
    """The middle ``width`` columns of a clip (its first ``max_frames`` frames), stored losslessly
    (FFV1) at the clip's rate."""
    with VideoReader(clip) as reader:
        clip_width, clip_height = reader.info.size
        start, kept = max(0, (clip_width - width) // 2), min(width, clip_width)
        lossless = cv2.VideoWriter_fourcc(*"FFV1")
        writer = cv2.VideoWriter(str(output), lossless, reader.info.fps or 20.0, (kept, clip_height))
        try:
            for index, (_, image) in enumerate(reader):
                if index == max_frames:
                    break
                writer.write(np.ascontiguousarray(image[:, start : start + kept]))
        finally:
            writer.release()
    return output


def motion_onset(
    timestamps: np.ndarray,
    body: np.ndarray,
    shoulders: tuple[int, int],
    wrists: tuple[int, int],
    aspect: float = 1.0,
) -> float:
    """Seconds from the first frame until a wrist has moved ``ONSET_SHOULDER_WIDTHS`` from its start.

    ``body`` is ``(T, V, C)`` with x, y first; ``aspect`` is the image's width over its height,
    which x is scaled by (image-space x and y are fractions of different lengths: at 4:3 a raised
    arm read as 0.26 shoulder widths). A clip whose wrists never move that far (a pose held from
    the first frame, or standing still) starts at 0.
    """
    xy = np.asarray(body, np.float64)[..., :2] * np.array([aspect, 1.0])
    seen = np.all(xy[:, list(shoulders) + list(wrists)] != 0.0, axis=(1, 2))
    if not seen.any():
        return 0.0
    first = int(np.argmax(seen))
    width = np.linalg.norm(xy[seen, shoulders[0]] - xy[seen, shoulders[1]], axis=-1).mean()
    moved = np.linalg.norm(xy[:, list(wrists)] - xy[first, list(wrists)], axis=-1).max(axis=1)
    started = np.flatnonzero(seen & (moved > ONSET_SHOULDER_WIDTHS * max(width, 1e-6)))
    return float(timestamps[started[0]] - timestamps[0]) if len(started) else 0.0
