"""Reading video files frame by frame with timestamps in seconds (OpenCV only).

Timestamps are ``index / fps`` whenever the container states a frame rate, because OpenCV's
``CAP_PROP_POS_MSEC`` is not reliable for every container: on ntu_two_person_hug.avi
(OpenCV 4.11, FFmpeg back end) it reports 66.7 ms for the first frame and 0 for the last two.
Only when the frame rate is unknown is ``CAP_PROP_POS_MSEC`` used, kept non-decreasing.

A file that ends well before the frame count its header states (a copy or download cut short) is
reported as damaged when the last frame has been read, rather than passing as a shorter video.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from bharnet_ros.core.closeable import Closeable
from bharnet_ros.core.labels import shorten
from bharnet_ros.core.skeleton import SkeletonError, checked_image_size

# FFmpeg's own lines about a damaged file ("moov atom not found") would come before, and garble,
# the one-line error the tools give; a value the user set is kept.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")
# Frames a decoded video may fall short of its header's count before it counts as truncated: some
# containers estimate the count from the duration, so it can be off by a frame or two.
MISSING_FRAMES_TOLERATED = 2
MISSING_FRACTION_TOLERATED = 0.02
# Frames per second a video source plays at live (the video source node's ``rate``):
MAX_PLAY_RATE = 240.0  # the top of ``rate``, and of a file's own rate
DEFAULT_PLAY_RATE = 30.0  # of a camera, or of a file that states no usable rate
MIN_PLAY_RATE = 0.01  # a slower ``rate`` (other than 0) is refused, not a timer of years


class VideoError(ValueError):
    """A video file that exists but cannot be opened or decoded."""


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video, but for the size, which is that of its frames as
    decoded (upright); ``frame_count`` is the header's estimate (0 if unknown)."""

    path: Path
    frame_count: int
    fps: float  # 0.0 if unknown
    width: int
    height: int

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), the order SkeletonSequence.image_size uses."""
        return (self.width, self.height)


class VideoReader(Closeable):
    """One pass over a video's frames as ``(timestamp_seconds, bgr_uint8_image)`` pairs.

    The first frame is decoded on opening, so a file OpenCV opens but cannot decode fails here
    with a clear error rather than yielding nothing. Iterate once; use ``with`` or :meth:`close`.

    Frames are timed as frame index / stated rate. An AVI may hold empty "drop frame" chunks (a
    capture tool's missed frames), which the decoder skips: in an ``.avi``, while the container's
    own times run forward, a frame they put half a period or more later than its index says moves
    the times of it and all later frames by the gap, and frames the drops account for do not count
    as missing.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.stat()
        except FileNotFoundError:
            raise FileNotFoundError(f"video not found: {self.path}") from None
        except OSError as err:  # a name too long, a folder not to be entered: no FileNotFoundError
            raise VideoError(f"cannot open video {shorten(str(self.path), 120)}: {err.strerror}") from None
        if not self.path.is_file():
            raise VideoError(f"{self.path} is not a regular file (a folder or a device); give a video file")
        try:  # OpenCV crashes the process (SIGSEGV) on a name it cannot pass on as UTF-8
            str(self.path).encode("utf-8")
        except UnicodeEncodeError:
            raise VideoError(
                f"{str(self.path).encode('utf-8', 'backslashreplace').decode()}: the name is not valid "
                "UTF-8, which OpenCV cannot open; rename the file"
            ) from None
        if re.search(r"%\d*d", self.path.name) and self.path.suffix.lower() not in VIDEO_EXTENSIONS:
            raise VideoError(  # FFmpeg reads frame%03d.png as frame000.png, frame001.png, ...
                f"{self.path}: OpenCV reads a name with {re.search(r'%[0-9]*d', self.path.name).group()} "
                "as a numbered image sequence, not this file; rename it"
            )
        level = cv2.getLogLevel()
        cv2.setLogLevel(0)  # a file it cannot read: our one line, not OpenCV's warnings before it
        try:
            # OpenCV's binding keeps a reference to the name it is given: one interned string per
            # name, not a new one stranded at each reopen of a looped file (some 64 bytes a loop)
            self._capture = cv2.VideoCapture(sys.intern(str(self.path)))
        finally:
            cv2.setLogLevel(level)
        if not self._capture.isOpened():
            raise VideoError(f"cannot open {self.path} as a video (unknown format or damaged file)")
        # a phone stores a portrait video on its side with a rotation for players to apply: upright
        self._capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
        self.info = _read_info(self.path, self._capture)
        ok, self._first = self._capture.read()
        if not ok:
            self.close()
            raise VideoError(f"{self.path} opened but no frame could be decoded (damaged or empty video)")
        self.info = self._checked_size(self._first)
        self._container_start = self._container_time()
        self._container_last = 0.0
        # Drop frames are AVI's; elsewhere (a phone's variable-rate MP4) the stated rate is an average
        # and the container's times would ratchet ahead of it. In an AVI, until its times run backwards.
        self._trust_container = self.path.suffix.lower() == ".avi"
        self._dropped = 0  # frames the container's times skip (empty AVI chunks)

    def _checked_size(self, frame: np.ndarray) -> VideoInfo:
        """The info with the size of the frames as decoded (turned upright; the header gives the
        stored size); VideoError for frames no camera gives, so a folder run skips the file."""
        size = (frame.shape[1], frame.shape[0])
        try:
            checked_image_size(size)
        except SkeletonError as err:
            self.close()
            raise VideoError(f"{self.path}: {err}") from None
        return dataclasses.replace(self.info, width=size[0], height=size[1])

    def close(self) -> None:
        """Release the decoder; safe to call twice."""
        self._capture.release()

    def __iter__(self) -> Iterator[tuple[float, np.ndarray]]:
        """Frames in order; VideoError after the last one if the file is clearly cut short."""
        if self._first is None:
            raise VideoError(f"{self.path} has already been read; open it again for a second pass")
        frame, self._first = self._first, None
        index, last = 0, 0.0
        while True:
            last = self._timestamp(index, last)
            yield last, frame
            ok, frame = self._capture.read()
            if not ok:
                self._check_complete(index + 1)
                return
            index += 1

    def _check_complete(self, decoded: int) -> None:
        expected = self.info.frame_count
        tolerated = max(MISSING_FRAMES_TOLERATED, round(MISSING_FRACTION_TOLERATED * expected))
        if expected and decoded + self._dropped < expected - tolerated:
            raise VideoError(
                f"{self.path} ends after {decoded} of the {expected} frames its header states "
                "(truncated or damaged file); copy or export it again"
            )

    def _timestamp(self, index: int, last: float) -> float:
        fps = self.info.fps
        if fps <= 0:
            return max(last, self._capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0)
        if self._trust_container:
            self._count_drops(index, fps)
        return (index + self._dropped) / fps

    def _count_drops(self, index: int, fps: float) -> None:
        """Add the frames the container's time for frame ``index`` puts it behind by (rounded)."""
        container = self._container_time() - self._container_start
        if container < self._container_last:  # e.g. 0 for the last frames of some AVIs
            self._trust_container = False
            return
        self._container_last = container
        self._dropped += max(0, round(container * fps) - (index + self._dropped))

    def _container_time(self) -> float:
        seconds = self._capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        return seconds if np.isfinite(seconds) else 0.0


def _read_info(path: Path, capture: cv2.VideoCapture) -> VideoInfo:
    fps = capture.get(cv2.CAP_PROP_FPS)
    return VideoInfo(
        path=path,
        frame_count=max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT))),
        fps=float(fps) if np.isfinite(fps) and fps > 0 else 0.0,
        width=int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
        height=int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
    )


def camera_number(video: str) -> int | None:
    """The camera a ``video`` option names by its number (``0`` is /dev/video0), else None (a file).
    Up to four ASCII digits: ``str.isdigit`` also takes other scripts' digits and 23-digit numbers."""
    return int(video) if re.fullmatch(r"[0-9]{1,4}", video) else None


def open_camera(number: int) -> cv2.VideoCapture:
    """Camera ``number``, open; VideoError if it is not there. OpenCV's own lines about a missing
    camera are held back, so the error is one line."""
    level = cv2.getLogLevel()
    cv2.setLogLevel(0)  # silent
    try:
        capture = cv2.VideoCapture(number)
    finally:
        cv2.setLogLevel(level)
    if not capture.isOpened():
        capture.release()
        raise VideoError(f"camera {number} could not be opened (is it /dev/video{number}?)")
    # The newest frame, not the oldest of a queue (V4L2 keeps 4): a frame read on a timer slower
    # than the camera would be several periods old and stamped as taken now.
    capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
    return capture


def play_frames(video: str, loop: bool) -> Iterator[np.ndarray]:
    """BGR frames of a file (again and again with ``loop``) or of a camera given by its number.

    A camera that stops delivering frames raises VideoError; closing the iterator releases the
    file or the camera.
    """
    number = camera_number(video)
    if number is not None:
        capture = open_camera(number)
        try:
            while True:
                ok, frame = capture.read()
                if not ok:
                    raise VideoError(f"camera {video} stopped delivering frames")
                yield frame
        finally:
            capture.release()
    while True:
        with VideoReader(video) as reader:
            for _, frame in reader:
                yield frame
        if not loop:
            return


class FramePacer:
    """When a file's frames are due on a clock that may tick slower than they come (a ``/clock`` at
    10 Hz, a timer late on a loaded machine): every frame, stamped on the file's own schedule, as
    many in one tick as are due. Stamped with the tick, a 30 fps file on a 10 Hz clock had played
    its gestures three times slower. More than :data:`MOST_BEHIND_SECONDS` behind, on a clock gone
    back, or after a tick whose frames took longer to publish than they last (:meth:`published`: a
    source slower than its rate, such as a large file decoded on a loaded machine), the schedule
    starts again from the tick: such a source plays slower, as before, not in growing bursts of
    frames stamped late that held the executor, while a clock that ticks coarsely (3 Hz) still
    gets every frame on time."""

    MOST_BEHIND_SECONDS = 1.0

    def __init__(self, rate: float) -> None:
        self.period = 1e9 / rate  # nanoseconds
        self.most_due = max(1, math.ceil(rate * self.MOST_BEHIND_SECONDS))
        self.anchor = 0  # clock time (ns) of the schedule's first frame
        self.count = 0  # frames due since the anchor (0: no schedule yet)
        self.last = -1  # the newest stamp given

    def due(self, now: int) -> list[int]:
        """The stamps (ns, at most ``now``) of the frames to publish at clock time ``now``."""
        if self.count == 0 or now < self.last:
            self.anchor, self.count = now, 0
        # half a period early counts: a tick a little before its frame's time would hold it back
        due = math.floor((now - self.anchor) / self.period + 0.5) + 1 - self.count
        if due > self.most_due:
            self.anchor, self.count, due = now, 0, 1
        early = self.anchor + round((self.count + due - 1) * self.period) - now
        if due > 0 and early > 0 and self.count == 1:  # the first tick was late: the schedule moves
            self.anchor -= early  # once; moved at every early tick, it ran ahead of the file's rate
        stamps = [min(self.anchor + round((self.count + i) * self.period), now) for i in range(due)]
        self.count += len(stamps)
        self.last = stamps[-1] if stamps else self.last
        return stamps

    def published(self, frames: int, seconds: float) -> None:
        """The last tick's ``frames`` took ``seconds`` (a steady clock) to read and publish: slower
        than they last, the source cannot keep the rate, and the next tick starts afresh."""
        if frames > 1 and seconds > frames * self.period * 1e-9:
            self.count = 0


def play_rate(video: str) -> tuple[float, str]:
    """The rate to play ``video`` (a file or a camera number) at when none is given, and a note
    for the log where it is not the file's stated rate ("" otherwise).

    The file's own frame rate, at most :data:`MAX_PLAY_RATE` (some containers state 1000 fps, a
    time base, not a frame rate); :data:`DEFAULT_PLAY_RATE` for a camera, a file that states none,
    or one that states less than :data:`MIN_PLAY_RATE` (a damaged header: at its word the first
    frame would come in hours).
    """
    if camera_number(video) is not None:
        return DEFAULT_PLAY_RATE, ""
    with VideoReader(video) as reader:
        fps = reader.info.fps
    if not fps:
        return (
            DEFAULT_PLAY_RATE,
            f"{video} states no frame rate; publishing at {DEFAULT_PLAY_RATE:g} (set 'rate')",
        )
    stated = f"{video} states {fps:g} frames per second; publishing at"
    if fps > MAX_PLAY_RATE:
        return MAX_PLAY_RATE, f"{stated} {MAX_PLAY_RATE:g} (set 'rate' to choose)"
    if fps < MIN_PLAY_RATE:
        return DEFAULT_PLAY_RATE, f"{stated} {DEFAULT_PLAY_RATE:g} (set 'rate')"
    return fps, ""


def check_camera(number: int) -> None:
    """VideoError unless camera ``number`` opens (opened and released again)."""
    open_camera(number).release()


def check_source(video: str) -> None:
    """VideoError unless ``video`` opens: a camera given by its number, else a video file."""
    number = camera_number(video)
    if number is not None:
        check_camera(number)
        return
    with VideoReader(video):
        pass


def is_video_file(path: str | Path) -> bool:
    """True for an existing file with a common video extension (case-insensitive)."""
    path = Path(path)
    return path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS


def list_videos(directory: str | Path) -> list[Path]:
    """Video files directly inside ``directory`` (not recursive), sorted by name."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"directory not found: {directory}")
    return sorted(p for p in directory.iterdir() if is_video_file(p))
