"""rosbag2 files without ROS: writing camera frames and skeletons, reading topics back (``rosbags``).

Bags are written with ``rosbags`` as real rosbag2 version 9 bags (MCAP or SQLite 3) with
``metadata.yaml``, the message definitions and the standard RIHS01 type hashes, so ``ros2 bag``
and Foxglove read them. The typestore is ROS 2 Kilted's plus this package's own messages, parsed
from ``msg/*.msg``, so bags holding skeletons and actions are read and written the same way.
No rclpy here: the live recorder and the timed replay (``bharnet_ros.nodes.bag_io``) add that.

A bag whose writer never closed (a killed recording) has no ``metadata.yaml``; :func:`reindex_bag`
rebuilds it from the storage files, as ``ros2 bag reindex`` does, recovering the complete records
of an MCAP file that was cut off. :meth:`BagWriter.flush` puts what was recorded on disk, so such
a bag holds everything up to the last flush.
"""

from __future__ import annotations

import functools
import io
import math
import os
import re
import secrets
import shutil
import sqlite3
import struct
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import apsw
import cv2
import numpy as np
import yaml
from rosbags.rosbag2 import Reader, ReaderError, Writer, WriterError, storage_mcap
from rosbags.rosbag2 import reader as rosbags_reader
from rosbags.rosbag2.enums import StoragePlugin
from rosbags.rosbag2.metadata import dump_qos_v9
from rosbags.rosbag2.storage_mcap import McapWriter
from rosbags.rosbag2.storage_sqlite3 import Sqlite3Writer
from rosbags.serde import SerdeError
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore
from ruamel.yaml import YAML, YAMLError

from bharnet_ros.core.closeable import Closeable
from bharnet_ros.core.image import MAX_IMAGE_PIXELS, decode_compressed, decode_image, fit_pixels
from bharnet_ros.core.labels import shown
from bharnet_ros.core.paths import share_file
from bharnet_ros.core.skeleton import SkeletonFrame
from bharnet_ros.core.skeleton_fields import (
    MOST_DECODED_SKELETONS,
    person_fields,
    too_many_skeletons,
)
from bharnet_ros.core.stats import first_repeat

# In dependency order: a message comes after the ones it contains.
PACKAGE_MESSAGES = ("PersonSkeleton", "PersonSkeletonArray", "Action", "ActionClass", "ActionLabels")
IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"
SKELETON_TYPE = "bharnet_ros/msg/PersonSkeletonArray"
ACTION_TYPE = "bharnet_ros/msg/Action"
CAMERA_TYPES = (IMAGE_TYPE, COMPRESSED_TYPE)
STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
ENCODINGS = ("bgr8", "rgb8", "mono8", "jpeg")  # what record-video writes; jpeg = CompressedImage
JPEG_QUALITY = 90
STORAGE_SUFFIXES = {".mcap": "mcap", ".db3": "sqlite3"}
RECOVERED_SUFFIX = ".recovered.mcap"  # the complete records of a cut-off MCAP file, made by reindex_bag
# A storage file written this recently may still be recorded: reindexing it would freeze a partial
# copy that later reads as the whole bag (recorders flush about once a second).
QUIET_SECONDS = 5.0
MAX_STAMP_SECONDS = 2**31 - 1  # builtin_interfaces/Time.sec is an int32 (and never negative here)
# A video's first frame is stamped this many seconds by default: ROS reads a header stamp of 0 as
# "not set", so a recognizer would time that frame by its own clock and then see time run backwards.
VIDEO_START_SECONDS = 1000.0
MIN_RATE, MAX_RATE = 0.01, 1000.0  # frames/s write_video_bag restamps at (0: the video's own times)
MCAP_MAGIC = b"\x89MCAP0\r\n"
MCAP_HEADER, MCAP_FOOTER, MCAP_DATA_END = 0x01, 0x02, 0x0F  # record opcodes (MCAP specification)
# Bounds on what a bag's own fields can make the reader do. A metadata.yaml is a few kB per topic
# (ruamel parses about 1.5 MB/s, so 8 MiB is seconds); one MCAP chunk or one message is held in
# memory whole once decompressed, and a camera frame is at most a few hundred MB.
MAX_METADATA_BYTES = 8 << 20
MAX_RECORD_BYTES = 1 << 30
MAX_HELD_BYTES = 2 << 30  # of MCAP chunks unpacked at once (chunks overlapping in time)
MAX_REASON_CHARS = 300  # of a library's error message quoted in ours


class BagError(ValueError):
    """A bag that cannot be written or read as asked (missing topic, unknown type, bad path)."""


class MessageError(BagError):
    """A stored message whose bytes do not deserialize as its topic's type (a damaged frame)."""


@functools.cache
def typestore() -> Typestore:
    """Kilted's message types plus ``bharnet_ros/msg/*`` from the package's .msg files (built once)."""
    store = get_typestore(Stores.ROS2_KILTED)
    for name in PACKAGE_MESSAGES:
        text = share_file(f"msg/{name}.msg").read_text()
        store.register(get_types_from_msg(text, f"bharnet_ros/msg/{name}"))
    return store


def message_class(msgtype: str) -> Any:
    """The rosbags dataclass of ``msgtype`` such as ``sensor_msgs/msg/Image``; BagError if unknown."""
    store = typestore()
    if msgtype not in store.types:
        raise BagError(f"message type {msgtype} is not known to the rosbags typestore (ROS 2 Kilted + ours)")
    return store.types[msgtype]


def seconds_to_ns(seconds: float) -> int:
    return round(seconds * 1e9)


def stamp_ns(header: Any) -> int:
    """Nanoseconds of a (rosbags) ``std_msgs/Header`` stamp."""
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


CDR_STAMP_BYTES = 12  # the encapsulation and a header's two stamp fields


def cdr_header_stamp(data: bytes | memoryview) -> int:
    """Header stamp (ns) of serialized CDR whose message starts with a ``std_msgs/Header``.

    Reads only the 4-byte encapsulation (byte 1: 1 = little endian) and the two stamp fields, so a
    replay can pair frames with their stamps without deserializing images.
    """
    raw = bytes(data[:CDR_STAMP_BYTES])
    if len(raw) < CDR_STAMP_BYTES:
        raise BagError(f"serialized message of {len(raw)} bytes is too short to hold a header")
    order = "little" if raw[1] & 1 else "big"
    sec = int.from_bytes(raw[4:8], order, signed=True)
    return sec * 1_000_000_000 + int.from_bytes(raw[8:12], order)


def make_header(stamp: int, frame_id: str) -> Any:
    """A rosbags ``std_msgs/msg/Header`` for a stamp in nanoseconds."""
    time_class = message_class("builtin_interfaces/msg/Time")
    sec, nanosec = divmod(stamp, 1_000_000_000)
    return message_class("std_msgs/msg/Header")(stamp=time_class(sec=sec, nanosec=nanosec), frame_id=frame_id)


# --------------------------------------------------------------------------------------------------
# Messages built from arrays
# --------------------------------------------------------------------------------------------------


def image_message(image_bgr: np.ndarray, stamp: int, frame_id: str = "camera", encoding: str = "bgr8") -> Any:
    """A ``sensor_msgs/Image`` (bgr8, rgb8, mono8) or, for ``jpeg``, a ``CompressedImage``."""
    header = make_header(stamp, frame_id)
    if encoding == "jpeg":
        ok, buffer = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise BagError(f"OpenCV could not JPEG-encode an image of shape {image_bgr.shape}")
        return message_class(COMPRESSED_TYPE)(header=header, format="jpeg", data=buffer.reshape(-1))
    pixels = convert_pixels(image_bgr, encoding)
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    height, width = pixels.shape[:2]
    return message_class(IMAGE_TYPE)(
        header=header, height=height, width=width, encoding=encoding, is_bigendian=0,
        step=width * channels, data=np.ascontiguousarray(pixels).reshape(-1),
    )  # fmt: skip


def convert_pixels(image_bgr: np.ndarray, encoding: str) -> np.ndarray:
    """A BGR uint8 image in the pixel layout of ``encoding`` (bgr8, rgb8 or mono8)."""
    if encoding == "bgr8":
        return image_bgr
    if encoding == "rgb8":
        return cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
    if encoding == "mono8":
        return cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
    raise BagError(f"unsupported encoding {encoding!r}; use one of {', '.join(ENCODINGS)}")


def skeleton_array_message(frames: list[SkeletonFrame], stamp: int, frame_id: str = "camera") -> Any:
    """A ``bharnet_ros/PersonSkeletonArray`` for the persons seen in one camera frame."""
    header = make_header(stamp, frame_id)
    person_class = message_class("bharnet_ros/msg/PersonSkeleton")
    persons = [person_class(header=header, **person_fields(f)) for f in frames]
    return message_class(SKELETON_TYPE)(header=header, persons=persons)


# --------------------------------------------------------------------------------------------------
# Arrays from messages
# --------------------------------------------------------------------------------------------------


def decode_camera_message(msg: Any, msgtype: str, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """BGR uint8 from a deserialized Image or CompressedImage, shrunk to ``max_pixels`` as the pose
    node shrinks it (its ``max_image_pixels``); ImageError if its fields are bad."""
    if msgtype == COMPRESSED_TYPE:
        return decode_compressed(msg.data, max_pixels)
    image = decode_image(
        msg.height, msg.width, msg.encoding, msg.step, msg.data, msg.is_bigendian, max_pixels
    )
    return fit_pixels(image, max_pixels)


# --------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------


# What a SQLite URI built from a path without escaping reads otherwise, as rosbags builds it:
# # and ? end the path, and % with two hex digits is another character.
SQLITE_URI_HAZARD = re.compile(r"[#?]|%[0-9A-Fa-f]{2}")


def check_sqlite_path(path: str | Path) -> None:
    """BagError for a SQLite bag whose path holds ``#``, ``?`` or ``%41``: rosbags cuts the path
    there or reads another name, so a recording went to another file outside its folder, reported
    as written."""
    if odd := SQLITE_URI_HAZARD.search(str(Path(path).absolute())):
        raise BagError(
            f"{path}: a SQLite bag's path may not hold {odd.group()!r} (rosbags would read or write "
            "another file); rename it, or use the mcap storage"
        )


class BagWriter(Closeable):
    """A rosbag2 being written: ``add_topic`` once per topic, then ``write`` messages or raw CDR.

    The output folder must not exist yet (rosbag2 never overwrites). Use ``with`` or :meth:`close`.
    """

    def __init__(self, path: str | Path, storage: str = "mcap") -> None:
        if storage not in STORAGES:
            raise BagError(f"unknown storage {storage!r}; use one of {', '.join(STORAGES)}")
        self.path = Path(path)
        if self.path.exists():
            raise BagError(f"{self.path} already exists; choose a new bag folder or delete the old one")
        if storage == "sqlite3":
            check_sqlite_path(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = Writer(self.path, version=9, storage_plugin=STORAGES[storage])
        self._writer.open()
        self._connections: dict[str, Any] = {}
        self.counts: dict[str, int] = {}

    def add_topic(self, topic: str, msgtype: str, qos: Sequence[Any] = ()) -> None:
        """Declare a topic and its type (definition and hash come from the typestore); ``qos``:
        its publishers' profiles (rosbags ``Qos``), which ``ros2 bag play`` replays it with."""
        message_class(msgtype)
        self._connections[topic] = self._writer.add_connection(
            topic, msgtype, typestore=typestore(), offered_qos_profiles=list(qos)
        )
        self.counts[topic] = 0

    def write_raw(self, topic: str, log_time: int, data: bytes | memoryview) -> None:
        """Store already serialized CDR bytes, received at ``log_time`` nanoseconds."""
        self._writer.write(self._connections[topic], log_time, data)
        self.counts[topic] += 1

    def write(self, topic: str, log_time: int, msg: Any) -> None:
        """Serialize a rosbags message of the topic's type and store it."""
        connection = self._connections[topic]
        self.write_raw(topic, log_time, typestore().serialize_cdr(msg, connection.msgtype))

    def flush(self) -> None:
        """Put every message written so far into the storage file, so a killed process loses only
        what came after (the bag is then read back through :func:`reindex_bag`), and mark the file
        as written now: a recording of a quiet topic must not look finished (:data:`QUIET_SECONDS`).

        rosbags keeps MCAP messages in a 1 MiB chunk in memory, and SQLite ones in a transaction,
        until the bag is closed; this closes the chunk or commits early. It reaches into rosbags'
        storage writers, which have no public flush.
        """
        storage = self._writer.storage if self._writer is not None else None
        if isinstance(storage, McapWriter):
            if storage.chunk.msgs:
                storage.close_chunk()
            storage.bio.flush()
        elif isinstance(storage, Sqlite3Writer):
            storage.conn.commit()
        if storage is not None:  # recent even while nothing comes: a bag still recording looks so
            for file in self.path.iterdir():
                if file.suffix in STORAGE_SUFFIXES:
                    os.utime(file)

    def close(self) -> None:
        """Finish the bag (writes metadata.yaml); safe to call twice."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


@dataclass(frozen=True)
class VideoBagSummary:
    """What ``write_video_bag`` stored."""

    path: Path
    topic: str
    msgtype: str
    frames: int
    first_stamp: int  # nanoseconds
    last_stamp: int


def write_video_bag(
    video: str | Path,
    bag: str | Path,
    topic: str = "/camera/image_raw",
    *,
    rate: float = 0.0,
    storage: str = "mcap",
    frame_id: str = "camera",
    encoding: str = "bgr8",
    start_time: float = VIDEO_START_SECONDS,
    max_frames: int = 0,
) -> VideoBagSummary:
    """Store a video's frames as camera messages stamped ``start_time`` + video time (seconds).

    ``rate`` > 0 restamps the frames at that many per second instead of the video's own times.
    Header stamp and log time are equal, as for a camera recorded without delay. Every stamp must
    fit a ROS time (0 to :data:`MAX_STAMP_SECONDS`): a start time or rate that cannot is a BagError,
    raised before the first frame is written where the video's header states its frame count.
    """
    from bharnet_ros.core.video import VideoReader

    msgtype = COMPRESSED_TYPE if encoding == "jpeg" else IMAGE_TYPE
    if encoding not in ENCODINGS:
        raise BagError(f"unsupported encoding {encoding!r}; use one of {', '.join(ENCODINGS)}")
    check_stamping(start_time, rate)
    stamps: list[int] = []
    with VideoReader(video) as reader:
        per_second, counts = rate or reader.info.fps, [n for n in (reader.info.frame_count, max_frames) if n]
        if per_second and counts:  # the last frame's stamp, known before decoding on
            _check_last_stamp(start_time, (min(counts) - 1) / per_second, min(counts))
        with BagWriter(bag, storage) as writer:
            writer.add_topic(topic, msgtype)
            for index, (seconds, image) in enumerate(reader):
                if max_frames and index >= max_frames:
                    break
                video_time = index / rate if rate > 0 else seconds
                _check_last_stamp(start_time, video_time, index + 1)
                stamp = seconds_to_ns(start_time + video_time)
                writer.write(topic, stamp, image_message(image, stamp, frame_id, encoding))
                stamps.append(stamp)
    return VideoBagSummary(Path(bag), topic, msgtype, len(stamps), stamps[0], stamps[-1])


def check_stamping(start_time: float, rate: float) -> None:
    """BagError unless ``start_time`` is a ROS time in seconds and ``rate`` is 0 or a sane frame rate."""
    if not (math.isfinite(start_time) and 0 < start_time <= MAX_STAMP_SECONDS):
        raise BagError(
            f"start time {start_time} s is not above 0 and up to {MAX_STAMP_SECONDS} s (a ROS time, where 0 "
            "means 'not stamped'); give seconds since the epoch"
        )
    if rate != 0 and not (math.isfinite(rate) and MIN_RATE <= rate <= MAX_RATE):
        raise BagError(
            f"rate {rate} is neither 0 (the video's own times) nor {MIN_RATE} to {MAX_RATE:g} frames/s"
        )


def _check_last_stamp(start_time: float, video_time: float, frames: int) -> None:
    """BagError when frame number ``frames``, ``video_time`` s into the video, is stamped past a ROS time."""
    if math.isfinite(video_time) and start_time + video_time <= MAX_STAMP_SECONDS:
        return
    raise BagError(
        f"frame {frames} would be stamped past {MAX_STAMP_SECONDS} s, the latest ROS time; "
        "give an earlier start time or a higher rate"
    )


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BagMessage:
    """One stored message: topic, type, log time (ns) and its serialized CDR bytes."""

    topic: str
    msgtype: str
    log_time: int
    data: bytes

    def decode(self) -> Any:
        """The rosbags message object; MessageError when the bytes are no such message (damaged,
        cut off, or of another type than the topic's), or a skeleton array of more skeletons than
        :data:`MOST_DECODED_SKELETONS` (each becomes Python objects: 120 MB of empty skeletons,
        10 KB compressed in a bag, took 4 GB)."""
        count = too_many_skeletons(self.data) if self.msgtype == SKELETON_TYPE else None
        if count is not None:
            raise MessageError(
                f"a message on {self.topic} (log time {self.log_time} ns) holds {count} skeletons, "
                f"more than the {MOST_DECODED_SKELETONS} a message is read with"
            )
        try:
            return typestore().deserialize_cdr(self.data, self.msgtype)
        except (SerdeError, struct.error, ValueError, IndexError) as err:
            raise MessageError(
                f"a message on {self.topic} (log time {self.log_time} ns) is no {self.msgtype} "
                f"({_reason(err)})"
            ) from None


def bag_topics(path: str | Path) -> dict[str, str]:
    """Topic -> message type of every topic in the bag (BagError if it is no readable bag)."""
    with _open(path) as reader:
        return {c.topic: c.msgtype for c in reader.connections}


def bag_duration(path: str | Path) -> int:
    """Nanoseconds from the bag's first to its last log time (all topics), from its metadata."""
    with _open(path) as reader:
        return reader.duration


def bag_message_counts(path: str | Path) -> dict[str, int]:
    """Topic -> number of stored messages, from the bag's metadata."""
    with _open(path) as reader:
        counts: dict[str, int] = {}
        for c in reader.connections:
            counts[c.topic] = counts.get(c.topic, 0) + c.msgcount
        return counts


def read_messages(path: str | Path, topics: list[str] | None = None) -> Iterator[BagMessage]:
    """Messages of ``topics`` (all when None) in log-time order; BagError for a missing topic."""
    with _open(path) as reader:
        available = {c.topic: c.msgtype for c in reader.connections}
        for topic in topics or []:
            require_topic(available, topic, path)
        wanted = [c for c in reader.connections if topics is None or c.topic in topics]
        for connection, log_time, data in reader.messages(connections=wanted):
            if not isinstance(data, bytes | bytearray | memoryview):  # a number in a .db3's data column
                raise TypeError(f"a message of {connection.topic} holds {type(data).__name__}, not bytes")
            yield BagMessage(
                connection.topic, connection.msgtype, _log_time(log_time, connection.topic), bytes(data)
            )


def _log_time(value: Any, topic: str) -> int:
    """A message's log time as whole nanoseconds; TypeError for text or bytes in a .db3's timestamp
    column (SQLite stores any value there), which the callers' arithmetic would fail on."""
    if isinstance(value, float) and math.isfinite(value):  # SQLite keeps a fraction as REAL
        return int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"a message of {topic} has the log time {shown(value, 40)}, not nanoseconds")
    return value


def candidate_topics(available: dict[str, str], counts: dict[str, int] | None = None) -> list[str]:
    """The topics a reader of skeletons can take by default: the skeleton topics, else the camera
    topics (sorted), of those that hold messages where ``counts`` says (an empty skeleton topic
    beside a camera's would be chosen and found empty), else of all; a caller takes one only where
    it is alone."""

    def of(topics: dict[str, str]) -> list[str]:
        skeletons = sorted(t for t, m in topics.items() if m == SKELETON_TYPE)
        return skeletons or sorted(t for t, m in topics.items() if m in CAMERA_TYPES)

    held = {t: m for t, m in available.items() if counts is None or counts.get(t, 0) > 0}
    return of(held) or of(available)


def require_topic(available: dict[str, str], topic: str, path: str | Path) -> str:
    """The type of ``topic``; BagError naming the topics the bag does have when it is missing."""
    if topic not in available:
        raise BagError(
            f"{path} has no topic {topic}; it has {describe_topics(available)}; pick one with --topic"
        )
    return available[topic]


def describe_topics(available: dict[str, str]) -> str:
    """``/a (sensor_msgs/msg/Image), /b (...)`` or ``no topics``."""
    return ", ".join(f"{t} ({m})" for t, m in sorted(available.items())) or "no topics"


# What rosbags and the storage libraries raise for a damaged file, besides ReaderError.
# KeyError and AttributeError: rosbags looks fields up as written (a schema encoding it lacks, a
# QoS profile without a depth or with a list for a name).
DAMAGED = (
    ReaderError, OSError, ValueError, TypeError, IndexError, KeyError, AttributeError, struct.error,
    OverflowError, sqlite3.Error, apsw.Error, storage_mcap.zstd.ZstdError,
)  # fmt: skip
MOST_NAME = 1000  # characters of a topic or type name: they go into one-line reports
REBUILD = "move metadata.yaml aside and run `bharnet bag info` to rebuild it from the storage files"


@contextmanager
def _open(path: str | Path) -> Iterator[Reader]:
    """An open Reader; a missing, oversized or wrong metadata.yaml or a damaged storage file is a
    one-line BagError."""
    path = Path(path)
    metadata = path / "metadata.yaml"
    if not path.exists():
        raise BagError(f"{path} not found; give the bag's folder")
    if os.path.lexists(metadata) and not metadata.is_file():  # a folder, a device, a dangling link
        raise BagError(f"{metadata} is not a regular file; restore the bag's metadata.yaml")
    if not metadata.is_file():
        fix = "run `bharnet bag info` on it to rebuild it" if storage_files(path) else "give the bag's folder"
        raise BagError(f"{path} is not a rosbag2 folder (no metadata.yaml); {fix}")
    if (size := metadata.stat().st_size) > MAX_METADATA_BYTES:
        raise BagError(
            f"{metadata} holds {size} bytes, more than rosbag2 metadata ever does (at most "
            f"{MAX_METADATA_BYTES} are read); it is not a bag's metadata: {REBUILD}"
        )
    if odd := next((p for p in path.iterdir() if p.exists() and not (p.is_file() or p.is_dir())), None):
        raise BagError(  # opening a pipe waits for a writer forever; a device never ends
            f"{odd} in the bag folder is not a regular file (a pipe, socket or device); "
            "remove it, a bag holds plain files only"
        )
    _check_metadata_before_reading(metadata, path)
    if any(p.suffix == ".db3" for p in path.iterdir()):
        check_sqlite_path(path)
    for file in sorted(path.iterdir()):  # whatever its name: metadata.yaml chooses the storage
        if file.is_file() and _starts_with(file, SQLITE_MAGIC):
            check_sqlite_schema(file)
    try:
        with Reader(path) as reader:
            _check_connections(reader, path)
            _check_times(reader, path)
            _check_chunks_listed_once(reader, path)
            _check_chunks_held(reader, path)
            yield reader
    except BagError:
        raise
    except DAMAGED as err:
        raise BagError(
            f"{path}: the bag cannot be read ({_reason(err)}): its metadata.yaml or storage file is "
            f"damaged or cut off; if the recording was killed, {REBUILD}"
        ) from None


def _check_metadata_before_reading(metadata: Path, path: Path) -> None:
    """BagError for what rosbags would act on before any check after it could: a bag compressed
    file by file (the reader would inflate each whole storage file to disk before reading a
    message, without a bound: 64 kB of zstd wrote 2 GiB), and a storage file named more than once
    (rosbags opens each entry: 300 of them took 4.4 GB).

    The mode is read as rosbags reads it, from the parsed YAML (a search of the text missed flow
    mappings, quoted keys, tags and a nested decoy); metadata it cannot parse is left to rosbags,
    which then refuses it without unpacking anything.
    """
    try:
        info = YAML(typ="safe").load(metadata.read_text())["rosbag2_bagfile_information"]
        mode, files = info.get("compression_mode", ""), info.get("relative_file_paths", [])
    except (YAMLError, OSError, ValueError, TypeError, KeyError, AttributeError):
        return
    if isinstance(mode, str) and mode.lower() == "file":
        raise BagError(
            f"{path} is compressed file by file, which is not read (it unpacks without bound); "
            "convert it first: ros2 bag convert, with compression_mode message or none"
        )
    names = [Path(str(name)).name for name in files] if isinstance(files, list) else []
    if twice := first_repeat(names):  # rosbags opened each
        raise BagError(
            f"{path}: metadata.yaml names {twice} more than once (it would be read twice); {REBUILD}"
        )


def _check_times(reader: Reader, path: Path) -> None:
    """BagError unless metadata.yaml's start time and duration are finite numbers (rosbags takes
    them as written: a NaN duration made a bag 'nan s' long in the labels check)."""
    metadata = getattr(reader.storage, "metadata", None)
    if metadata is None:  # another rosbags release than the pinned one
        return
    for name, value in (("starting_time", metadata.start_time), ("duration", metadata.duration)):
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            raise BagError(
                f"{path}: {name} in metadata.yaml holds {shown(value, 40)}, not nanoseconds; {REBUILD}"
            )


def _check_chunks_listed_once(reader: Reader, path: Path) -> None:
    """BagError where an MCAP file's index lists one chunk twice: rosbags would read its messages
    twice, and every count would double."""
    for storage in getattr(reader.storage, "storages", []):
        offsets = [chunk.chunk_start_offset for chunk in getattr(storage, "chunks", [])]
        if len(set(offsets)) < len(offsets):
            raise BagError(
                f"{path}: {Path(storage.path).name} lists a chunk twice in its index (its messages would "
                "be read twice); rewrite it: ros2 bag convert"
            )


def _check_chunks_held(reader: Reader, path: Path) -> None:
    """BagError if an MCAP file's chunks overlap in time so much that reading it holds more than
    :data:`MAX_HELD_BYTES` unpacked at once: rosbags merges the chunks by log time and keeps each
    one unpacked from its first message to its last. Recorded bags hold a chunk or two at a time."""
    for storage in getattr(reader.storage, "storages", []):
        sizes = [
            (c.message_start_time, c.message_end_time, c.uncompressed_size)
            for c in getattr(storage, "chunks", [])
        ]
        events = sorted(
            [(start, 0, size) for start, _, size in sizes] + [(end, 1, -size) for _, end, size in sizes]
        )
        held = most = 0
        for _, _, change in events:  # at equal times a chunk starts before another ends, as merged
            held += change
            most = max(most, held)
        if most > MAX_HELD_BYTES:
            raise BagError(
                f"{path}: {Path(storage.path).name} has chunks overlapping in time: reading it would "
                f"hold {most} bytes unpacked at once, more than {MAX_HELD_BYTES}; "
                "rewrite it in time order: ros2 bag convert"
            )


def _check_connections(reader: Reader, path: Path) -> None:
    """BagError unless metadata.yaml gives every topic a text name, one text type and a message
    count (rosbags takes it as written: a number where a name belongs, or a topic listed with two
    types, would pass). A topic recorded under two QoS profiles is listed once per profile."""
    types: dict[str, str] = {}
    listed: set[tuple[str, str, str]] = set()
    for c in reader.connections:
        if not (_is_name(c.topic) and _is_name(c.msgtype)):
            raise BagError(
                f"{path}: topic {shown(c.topic, 80)} of type {shown(c.msgtype, 80)} in metadata.yaml is "
                f"not a name (printable, 1 to {MOST_NAME} characters); {REBUILD}"
            )
        if not isinstance(c.msgcount, int) or isinstance(c.msgcount, bool) or c.msgcount < 0:
            raise BagError(f"{path}: message count {c.msgcount!r} of {c.topic} is not a count; {REBUILD}")
        if types.setdefault(c.topic, c.msgtype) != c.msgtype:
            raise BagError(
                f"{path}: metadata.yaml lists topic {c.topic} as {types[c.topic]} and {c.msgtype}, where "
                f"rosbag2 keeps one type per topic; {REBUILD}"
            )
        if (c.topic, c.msgtype, str(c.ext)) in listed:  # its messages would be read twice
            raise BagError(f"{path}: metadata.yaml lists topic {c.topic} twice alike; {REBUILD}")
        listed.add((c.topic, c.msgtype, str(c.ext)))


def _is_name(value: Any) -> bool:
    """Whether a topic or type name fits a one-line report: printable text of 1 to MOST_NAME characters."""
    return isinstance(value, str) and value.isprintable() and 0 < len(value) <= MOST_NAME


def _reason(err: Exception) -> str:
    """A library's error message as one short line (YAML errors, for one, span several); a KeyError
    says which key ("'depth'" alone says little)."""
    text = re.sub(r"\s+", " ", str(err)).strip().rstrip(".") or type(err).__name__
    if isinstance(err, KeyError):
        text = f"KeyError {text}"
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1] + "…"


# --------------------------------------------------------------------------------------------------
# Bounds on rosbags' reading
# --------------------------------------------------------------------------------------------------


def _bound_rosbags() -> None:
    """Keep rosbags' memory within what a bag file holds, whatever its length fields declare.

    rosbags reads an MCAP record with ``file.read(length)``, and Python allocates ``length`` bytes
    before reading (a length of 2**40 in a damaged file is a MemoryError); it decompresses a chunk,
    or a message of a bag compressed per message, whole and unbounded (a few kB of zstd can expand
    to many GB). This replaces three of its module internals: the record read checks the length
    against the file first, and decompression stops past the declared size (at most
    :data:`MAX_RECORD_BYTES`). Either case is a ReaderError, which :func:`_open` reports.
    """
    internals = (getattr(storage_mcap, "read_exact", None), getattr(storage_mcap, "DECOMPRESSORS", None))
    if not (callable(internals[0]) and isinstance(internals[1], dict) and hasattr(rosbags_reader, "zstd")):
        return  # another rosbags release than the pinned one: its reads stay as they are
    if getattr(storage_mcap.read_exact, "bounded", False):
        return
    read_exact = storage_mcap.read_exact

    def read_within_file(stream: BinaryIO, size: int) -> bytes:
        if isinstance(stream, io.BytesIO):  # a chunk: allocates only what it holds
            left = stream.getbuffer().nbytes - stream.tell()
        else:
            left = os.fstat(stream.fileno()).st_size - stream.tell()
        if size > left:  # a length of 2**64 - 1 overflowed seek and read
            raise ReaderError(
                f"Truncated record at offset {stream.tell()}: expected {size} bytes, "
                f"the file holds {left}"
            )
        return read_exact(stream, size)

    read_within_file.bounded = True  # type: ignore[attr-defined]
    storage_mcap.read_exact = read_within_file
    storage_mcap.DECOMPRESSORS["zstd"] = functools.partial(_inflate, "zstd")
    storage_mcap.DECOMPRESSORS["lz4"] = functools.partial(_inflate, "lz4")
    rosbags_reader.zstd = _MessageZstd  # type: ignore[assignment]


def _inflate(compression: str, data: bytes, size: int, declared: bool = True) -> bytes:
    """``data`` decompressed, refused (ReaderError) as soon as it grows past ``size`` bytes."""
    from lz4.frame import LZ4FrameDecompressor

    what = f"{compression} data declared as {size} bytes" if declared else f"a {compression} message"
    if size > MAX_RECORD_BYTES:
        raise ReaderError(f"{what} is more than the {MAX_RECORD_BYTES} bytes read at once")
    factory = storage_mcap.zstd.ZstdDecompressor if compression == "zstd" else LZ4FrameDecompressor
    out = bytearray()
    while data:  # one frame after another, as zstd.decompress does
        decompressor = factory()
        try:
            out += decompressor.decompress(data, max_length=size + 1 - len(out))
        except (storage_mcap.zstd.ZstdError, RuntimeError) as err:
            raise ReaderError(f"{what} cannot be decompressed ({_reason(err)})") from None
        if len(out) > size:
            limit = "" if declared else f" (at most {size} bytes are read at once)"
            raise ReaderError(f"{what} decompresses to more{limit}")
        if not decompressor.eof:
            raise ReaderError(f"{what} is cut off")
        data = decompressor.unused_data
    return bytes(out)


class _MessageZstd:
    """What rosbags' bag reader uses of the zstd module, with bounded per-message decompression."""

    open = staticmethod(storage_mcap.zstd.open)

    @staticmethod
    def decompress(data: bytes) -> bytes:
        return _inflate("zstd", data, MAX_RECORD_BYTES, declared=False)


_bound_rosbags()


# --------------------------------------------------------------------------------------------------
# Reindexing a bag without metadata.yaml
# --------------------------------------------------------------------------------------------------


NOT_STORAGE = re.compile(r"\._|\..*\.(raw|tmp)-[0-9a-f]+")  # AppleDouble, our own temporary copies


def storage_files(folder: str | Path) -> list[Path]:
    """The .mcap and .db3 files of a bag folder, in recording order (``x_2`` before ``x_10``, as
    rosbag2 splits number them); a recovered copy replaces its original, unless the original was
    written after it (the recording went on: the copy is stale, and reindexing says so).

    A reindex's temporary copies (``.<name>.raw-….mcap``, left by a killed run) and macOS's
    AppleDouble files (``._<name>.mcap``) are none: they would be read as more recordings. Other
    names with a leading dot are (``ros2 bag record -o .x`` writes ``.x_0.mcap``).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    files = sorted(
        (
            p
            for p in folder.iterdir()
            if p.suffix in STORAGE_SUFFIXES and not NOT_STORAGE.match(p.name) and p.is_file()
        ),
        key=_recording_order,
    )
    originals = {p.name: p for p in files}
    recovered = {
        p.name.removesuffix(RECOVERED_SUFFIX) + ".mcap": p
        for p in files
        if p.name.endswith(RECOVERED_SUFFIX)
        and (p.name.removesuffix(RECOVERED_SUFFIX) + ".mcap") in originals
    }
    stale = {
        copy for name, copy in recovered.items() if originals[name].stat().st_mtime > copy.stat().st_mtime
    }
    replaced = {name for name, copy in recovered.items() if copy not in stale}
    return [p for p in files if p not in stale and p.name not in replaced]


def _recording_order(path: Path) -> tuple[str, int, str]:
    """Sort key of a storage file: its name's stem, then the split number it ends with."""
    base = path.name.removesuffix(RECOVERED_SUFFIX).removesuffix(path.suffix)
    match = re.fullmatch(r"(.*?)(\d+)", base)
    return (match[1], int(match[2]), path.name) if match else (base, -1, path.name)


def reindex_bag(folder: str | Path) -> str:
    """Write the missing ``metadata.yaml`` of a bag folder from its storage files; returns a note.

    Like ``ros2 bag reindex``, topics, types, QoS and message counts come from the storage files.
    A cut-off MCAP file (no footer: the writer was killed) is not changed: its complete records
    are copied into ``<name>.recovered.mcap``, which the new metadata names instead. Nothing that
    exists is overwritten. Raises BagError when there is nothing to index.
    """
    folder = Path(folder)
    if os.path.lexists(folder / "metadata.yaml"):  # a dangling link too: never written through
        raise BagError(f"{folder} already has a metadata.yaml; nothing to reindex")
    files = storage_files(folder)
    storages = {STORAGE_SUFFIXES[p.suffix] for p in files}
    if not files:
        raise BagError(f"{folder} is not a rosbag2 folder (no metadata.yaml, no .mcap or .db3 file)")
    _check_quiet(files)
    if len(storages) > 1:
        raise BagError(f"{folder} holds both .mcap and .db3 files; keep the files of one bag only")
    readable, notes = [], []
    for file in files:
        usable, note = _readable_storage(file)
        readable.append(usable)
        notes.extend([note] if note else [])
    metadata = _metadata_of(readable, storages.pop())
    if not metadata["topics_with_message_count"]:
        raise BagError(f"{folder}: nothing was stored before the recording stopped (no topic); record again")
    text = yaml.safe_dump({"rosbag2_bagfile_information": metadata}, sort_keys=False)
    _create(folder / "metadata.yaml", lambda out: out.write(text.encode()))
    count, topics = metadata["message_count"], len(metadata["topics_with_message_count"])
    rebuilt = (
        f"no metadata.yaml (the recording was not closed); rebuilt it: {count} messages, {topics} topic(s)"
    )
    return "; ".join([rebuilt, *notes])


def _check_quiet(files: list[Path]) -> None:
    """BagError for a storage file written in the last :data:`QUIET_SECONDS`: a bag still being
    recorded has no metadata.yaml yet, and a copy of it now would be taken for all of it. A time
    further ahead than that is another machine's clock (a copied bag), not a recording."""
    for file in files:
        age = time.time() - file.stat().st_mtime
        if abs(age) < QUIET_SECONDS:
            raise BagError(
                f"{file} was written {max(age, 0.0):.1f} s ago: is it still being recorded? Run this "
                "again once the recorder has stopped"
            )


def _readable_storage(file: Path) -> tuple[Path, str | None]:
    """A storage file rosbags can open: the file itself, or the indexed copy of a cut-off MCAP (its
    complete records) or of an MCAP without index."""
    if file.suffix == ".db3":
        _roll_back_unfinished(file)
        check_sqlite_schema(file)
        _check_sqlite_bag(file)
        return file, None
    recovered = file.with_name(file.stem + RECOVERED_SUFFIX)
    try:
        with Reader(file):
            opened = True
    except DAMAGED as err:
        if file.name.endswith(RECOVERED_SUFFIX):
            raise BagError(f"{file} cannot be read ({_reason(err)}); delete it and reindex again") from None
        opened = False
    if opened and (file.name.endswith(RECOVERED_SUFFIX) or mcap_summary_start(file) != 0):
        return file, None
    if opened:  # complete, but with no index
        index_mcap(file, recovered)
        return recovered, f"{file.name} has no index; its messages were copied to {recovered.name}, indexed"
    raw = recovered.with_name(f".{recovered.stem}.raw-{secrets.token_hex(4)}.mcap")
    kept = recover_mcap(file, raw)  # refuses a name already taken, so what it removes below is its own
    try:
        index_mcap(raw, recovered, origin=file)
    finally:
        raw.unlink(missing_ok=True)
    return (
        recovered,
        f"{file.name} was cut off; its {kept} bytes of complete records were copied to {recovered.name}",
    )


def _roll_back_unfinished(file: Path) -> None:
    """Let SQLite undo a transaction the killed writer left open (its journal), as any client would."""
    try:
        connection = sqlite3.connect(file)
        try:
            connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            connection.close()
    except (sqlite3.Error, ValueError) as err:  # ValueError: a schema that is not UTF-8
        raise BagError(f"{file} is not a readable SQLite bag ({_reason(err)})") from None


SQLITE_MAGIC = b"SQLite format 3\x00"


def check_sqlite_schema(file: Path) -> None:
    """BagError for a SQLite file whose tables run code when read: a view, a trigger, a virtual
    table or a generated column. SQLite runs them inside the reader, out of reach of Ctrl-C and
    SIGTERM: a 188 KB file's endless view filled 45 GB of temporary disk, and a 24 KB file's
    generated column took 23 GB of memory."""
    try:
        connection = sqlite3.connect(file)
        try:
            problem = _schema_problem(connection)
        finally:
            connection.close()
    except (sqlite3.Error, ValueError) as err:  # ValueError: a schema that is not UTF-8
        raise BagError(f"{file} is not a readable SQLite bag ({_reason(err)})") from None
    if problem:
        raise BagError(
            f"{file} {problem}, which SQLite would run while reading it; a rosbag2 file holds plain "
            "tables only: record the bag again"
        )


def _starts_with(file: Path, magic: bytes) -> bool:
    try:
        with file.open("rb") as stream:
            return stream.read(len(magic)) == magic
    except OSError:
        return False  # rosbags names an unreadable file itself


def _schema_problem(connection: sqlite3.Connection) -> str:
    """What in the schema would run code when the bag is read ("" where nothing does)."""
    objects = connection.execute("SELECT type, name, sql FROM sqlite_master").fetchall()
    for kind, name, sql in objects:
        if kind in ("view", "trigger"):
            return f"holds the {kind} {shown(name)}"
        if kind == "table" and (sql or "").lstrip().upper().startswith("CREATE VIRTUAL"):
            return f"holds the virtual table {shown(name)}"
    for kind, name, _ in objects:
        quoted = '"' + str(name).replace('"', '""') + '"'
        columns = connection.execute(f"PRAGMA table_xinfo({quoted})").fetchall() if kind == "table" else []
        if generated := [column[1] for column in columns if column[6] in (2, 3)]:  # hidden: 2, 3 generated
            return f"has the generated column {shown(generated[0])} in its table {shown(name)}"
    return ""


def _check_sqlite_bag(file: Path) -> None:
    """A .db3 file must hold rosbag2's tables; any other SQLite file (or an empty one) is refused."""
    try:
        with Reader(file):
            return
    except DAMAGED as err:
        raise BagError(
            f"{file} is not a rosbag2 SQLite file ({_reason(err)}); move it out of the bag folder"
        ) from None


def mcap_summary_start(file: Path) -> int | None:
    """Where an MCAP file's summary (its index) starts, from its footer: 0 where it has none (a
    recorder's ``noSummary``), whose messages rosbags reads only while their log times never go
    back; None where the file ends in no footer."""
    footer = 1 + 8 + 20  # opcode, length, summary start, summary offset start, CRC
    size = file.stat().st_size
    if size < len(MCAP_MAGIC) + footer + len(MCAP_MAGIC):
        return None
    with file.open("rb") as stream:
        stream.seek(size - len(MCAP_MAGIC) - footer)
        record = stream.read(footer + len(MCAP_MAGIC))
    if record[0] != MCAP_FOOTER or record[footer:] != MCAP_MAGIC:
        return None
    return int.from_bytes(record[9:17], "little")


def mcap_complete_end(file: Path) -> int:
    """Offset just after the last complete record of an MCAP file's data section (0: no header).

    Records are an opcode byte, a little-endian u64 length and the content; scanning stops at the
    data-end or footer record, at an unknown opcode (garbage) or at a record the file cuts off.
    """
    size = file.stat().st_size
    with file.open("rb") as stream:
        if stream.read(len(MCAP_MAGIC)) != MCAP_MAGIC:
            return 0
        end = len(MCAP_MAGIC)
        while len(head := stream.read(9)) == 9:
            opcode, length = head[0], int.from_bytes(head[1:], "little")
            at_start = end == len(MCAP_MAGIC)
            if (at_start and opcode != MCAP_HEADER) or opcode in (MCAP_FOOTER, MCAP_DATA_END):
                break
            if not MCAP_HEADER <= opcode <= MCAP_DATA_END or end + 9 + length > size:
                break
            stream.seek(length, os.SEEK_CUR)
            end += 9 + length
    return end if end > len(MCAP_MAGIC) else 0


def recover_mcap(source: Path, target: Path) -> int:
    """Copy the complete records of a cut-off MCAP file into a new valid (unindexed) MCAP file.

    The copy ends with a data-end record and a footer without summary, which readers accept by
    scanning the records (:func:`index_mcap` then indexes it). ``source`` is left as it is;
    returns the number of bytes kept.
    """
    end = mcap_complete_end(source)
    if not end:
        raise BagError(f"{source}: nothing was stored before the recording stopped (no MCAP header)")
    data_end = struct.pack("<BQI", MCAP_DATA_END, 4, 0)  # opcode, length, data CRC (0: none)
    footer = struct.pack("<BQQQI", MCAP_FOOTER, 20, 0, 0, 0)  # no summary section, no CRC

    def write(out: BinaryIO) -> None:
        with source.open("rb") as stream:
            remaining = end
            while remaining > 0 and (block := stream.read(min(remaining, 1 << 20))):
                out.write(block)
                remaining -= len(block)
        out.write(data_end + footer + MCAP_MAGIC)

    _create(target, write)
    return end


def index_mcap(source: Path, target: Path, origin: Path | None = None) -> None:
    """Rewrite a readable unindexed MCAP file (a recovered one) as a new indexed file, message by message.

    rosbags reads an unindexed file only while its log times never go backwards, and a recorder's
    log times are its wall clock, which can step back (NTP); indexed, each chunk is sorted when
    read and the chunks are merged. Messages are streamed, so memory holds one chunk (1 MiB).
    They are taken in file order with rosbags' record scan (``messages_scan``, which its
    ``messages`` wraps with the order check). Errors name ``origin``, the file ``source`` was
    recovered from, where given. The bag is written in a new hidden folder beside ``target``.
    """
    if target.exists():
        raise BagError(f"{target} already exists; move it aside and reindex again")
    try:
        holder = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    except OSError as err:
        raise BagError(
            f"cannot write {target} ({err.strerror or err}); copy the bag somewhere writable"
        ) from None
    try:
        with (
            Reader(source) as reader,
            Writer(holder / "bag", version=9, storage_plugin=StoragePlugin.MCAP) as writer,
        ):
            by_id = {c.id: _copy_connection(writer, c) for c in reader.connections}
            for connection, log_time, data in reader.storage.messages_scan(reader.connections):
                writer.write(by_id[connection.id], log_time, data)
        os.replace(holder / "bag" / "bag.mcap", target)
    except OSError as err:
        raise BagError(
            f"cannot write {target} ({err.strerror or err}); copy the bag somewhere writable"
        ) from None
    except (*DAMAGED, WriterError) as err:
        named = origin or source
        raise BagError(
            f"{named} cannot be read as a rosbag2 recording ({_reason(err)}): its records are damaged or "
            "of another kind; move it out of the bag folder"
        ) from None
    finally:
        shutil.rmtree(holder, ignore_errors=True)


def _copy_connection(writer: Writer, connection: Any) -> Any:
    """The writer's connection for a reader's: added once per topic, type and QoS (as rosbags requires)."""
    for known in writer.connections:
        if (known.topic, known.msgtype, known.ext) == (connection.topic, connection.msgtype, connection.ext):
            return known
    return writer.add_connection(
        connection.topic, connection.msgtype, msgdef=connection.msgdef.data,
        rihs01=connection.digest or _type_hash(connection.msgtype) or "-",
        serialization_format=connection.ext.serialization_format,
        offered_qos_profiles=connection.ext.offered_qos_profiles,
    )  # fmt: skip


def _create(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write a new file through a temporary name beside it; an existing ``path`` is never replaced,
    and the temporary file is created anew (exclusively), so the one removed is always this run's."""
    if path.exists():
        raise BagError(f"{path} already exists; move it aside and reindex again")
    temporary = path.with_name(f".{path.name}.tmp-{secrets.token_hex(4)}")
    try:
        out = temporary.open("xb")
    except OSError as err:
        raise BagError(
            f"cannot write {path} ({err.strerror or err}); copy the bag somewhere writable"
        ) from None
    try:
        with out:
            write(out)
        os.replace(temporary, path)
    except OSError as err:
        raise BagError(
            f"cannot write {path} ({err.strerror or err}); copy the bag somewhere writable"
        ) from None
    finally:
        temporary.unlink(missing_ok=True)


def _metadata_of(files: list[Path], storage: str) -> dict[str, Any]:
    """rosbag2 version 9 metadata (as rosbags' Writer writes it on close) of readable storage files."""
    topics: dict[tuple[str, str, str], dict[str, Any]] = {}  # one per topic, type and QoS, as rosbag2
    entries, first, last, compressed = [], None, None, False
    for file in files:
        try:  # a file whose index reads can still hold a damaged chunk
            with Reader(file) as reader:
                count = reader.message_count
                compressed = compressed or compressed_by_message(reader)
                if count:  # rosbags' end_time is one past the last message
                    first = reader.start_time if first is None else min(first, reader.start_time)
                    last = reader.end_time - 1 if last is None else max(last, reader.end_time - 1)
                entries.append(_file_entry(file.name, reader.start_time, reader.end_time - 1, count))
                connections = list(reader.connections)
        except DAMAGED as err:
            raise BagError(f"{file} cannot be read ({_reason(err)}); it is damaged") from None
        for connection in connections:
            _check_names(connection, file)
            made = _topic_entry(connection)
            key = (connection.topic, connection.msgtype, str(made["topic_metadata"]["offered_qos_profiles"]))
            topics.setdefault(key, made)["message_count"] += connection.msgcount
    kinds_of: dict[str, dict[str, None]] = {}  # the types of each topic, in the order found
    for name, msgtype, _ in topics:
        kinds_of.setdefault(name, {})[msgtype] = None
    if twice := next((name for name, kinds in kinds_of.items() if len(kinds) > 1), None):
        kinds = " and ".join(kinds_of[twice])
        raise BagError(
            f"{files[0].parent}: the storage files hold topic {twice} as {kinds}, where rosbag2 keeps "
            "one type per topic; they were not written by one rosbag2 recording"
        )
    total = _file_entry("", first or 0, last or 0, int(first is not None))
    return {
        "version": 9,
        "storage_identifier": storage,
        "relative_file_paths": [file.name for file in files],
        "duration": total["duration"],
        "starting_time": total["starting_time"],
        "message_count": sum(entry["message_count"] for entry in entries),
        "topics_with_message_count": list(topics.values()),
        "compression_format": "zstd" if compressed else "",
        "compression_mode": "message" if compressed else "",
        "files": entries,
        "custom_data": None,
        "ros_distro": "rosbags",
    }


ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"  # a zstd frame's first bytes; a CDR message starts 00 01 (or 00 00)


def compressed_by_message(reader: Reader) -> bool:
    """Whether a storage file holds messages compressed one by one (rosbag2's ``compression_mode:
    message``, always zstd): a rebuilt metadata.yaml must say so, or no message would decode."""
    first = next(iter(reader.messages()), None)
    return first is not None and bytes(first[2][:4]) == ZSTD_MAGIC


def _check_names(connection: Any, file: Path) -> None:
    """BagError for a storage file whose topic or type is no name: written into metadata.yaml, it
    would be refused on reading (with advice to reindex, which would write it again)."""
    if not (_is_name(connection.topic) and _is_name(connection.msgtype)):
        raise BagError(
            f"{file}: topic {shown(connection.topic, 80)} of type {shown(connection.msgtype, 80)} is not a "
            f"name (printable, 1 to {MOST_NAME} characters), so it is no rosbag2 recording; "
            "move it out of the bag folder"
        )


def _topic_entry(connection: Any) -> dict[str, Any]:
    return {
        "topic_metadata": {
            "name": connection.topic,
            "type": connection.msgtype,
            "serialization_format": connection.ext.serialization_format,
            "offered_qos_profiles": dump_qos_v9(list(connection.ext.offered_qos_profiles)),
            "type_description_hash": connection.digest or _type_hash(connection.msgtype),
        },
        "message_count": 0,
    }


def _type_hash(msgtype: str) -> str:
    """RIHS01 hash of a type the typestore knows, else empty (readers accept that)."""
    try:
        return typestore().hash_rihs01(msgtype)
    except Exception:  # an unknown or unparsable type just has no hash
        return ""


def _file_entry(name: str, start: int, last: int, count: int) -> dict[str, Any]:
    """A ``files`` entry: start and duration of the messages from ``start`` to ``last`` (ns)."""
    if not count:
        start = last = 0
    return {
        "path": name,
        "starting_time": {"nanoseconds_since_epoch": start},
        "duration": {"nanoseconds": last - start},
        "message_count": count,
    }
