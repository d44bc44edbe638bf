"""Images as the pose stage needs them: checked OpenCV arrays, and decoding of ROS image fields.

Decoding works on the plain fields of ``sensor_msgs/Image`` and ``CompressedImage`` (height,
width, encoding, step, data), so nodes, bag readers and tests share it without cv_bridge.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from bharnet_ros.core.skeleton import MAX_ASPECT

_TO_RGB = {1: cv2.COLOR_GRAY2RGB, 3: cv2.COLOR_BGR2RGB, 4: cv2.COLOR_BGRA2RGB}
_TO_BGR = {1: cv2.COLOR_GRAY2BGR, 4: cv2.COLOR_BGRA2BGR}
_EXPECTED = "expected a uint8 BGR image (H, W, 3), mono (H, W) or (H, W, 1), or BGRA (H, W, 4)"
# encoding -> (channels, dtype, conversion to BGR or None)
ENCODINGS: dict[str, tuple[int, type, int | None]] = {
    "bgr8": (3, np.uint8, None),
    "rgb8": (3, np.uint8, cv2.COLOR_RGB2BGR),
    "bgra8": (4, np.uint8, cv2.COLOR_BGRA2BGR),
    "rgba8": (4, np.uint8, cv2.COLOR_RGBA2BGR),
    "mono8": (1, np.uint8, cv2.COLOR_GRAY2BGR),
    "8UC1": (1, np.uint8, cv2.COLOR_GRAY2BGR),
    "8UC3": (3, np.uint8, None),
    "mono16": (1, np.uint16, cv2.COLOR_GRAY2BGR),
}


MAX_IMAGE_PIXELS = 3840 * 2160  # 4K UHD: more detail than MediaPipe uses, a bounded decode
IMAGE_PIXELS_RANGE = (64 * 64, 1 << 30)  # what the pose node's max_image_pixels may be set to
# MediaPipe aborts the whole process (an uncaught C++ exception) on a side of 32767 px or more; no
# camera gives more than 8K, so longer sides are shrunk first, whatever the pixel budget.
MAX_SIDE = 8192
# A compressed image claiming more pixels than an 8K square is refused unread: a PNG decodes at
# full size (about 200 MB as BGR at this limit; a decompression bomb is a few kB), and even at 1/8
# scale a JPEG header claiming 65535 px a side costs 200 MB and seconds of decoding.
MAX_COMPRESSED_PIXELS = MAX_SIDE * MAX_SIDE
# JPEG start-of-frame markers (C0-CF without DHT C4, JPG C8 and DAC CC) carry the image size.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length (TEM, RST0-7), which the decoder steps over; a stuffed 00, SOI or EOI
# before the frame header is not a JPEG the size can be read from.
_JPEG_PARAMETERLESS = frozenset({0x01, *range(0xD0, 0xD8)})
_JPEG_NOT_BEFORE_FRAME = frozenset({0x00, 0xD8, 0xD9})
_JPEG_MAX_SEGMENTS = 4096  # markers read before the frame header; real files need a handful
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_MAX_CHUNKS = 100_000  # a 33-megapixel PNG written in 8 kB chunks has a few thousand
JPEG_SIGNATURE = b"\xff\xd8"
# Start-of-scan marker: entropy-coded data stuffs every 0xFF with 0x00, so each occurrence is a
# scan header. A progressive JPEG may repeat scans without limit, and the decoder walks every block
# of the image in each: a few hundred kB held a node for seconds. Cameras send one scan (baseline).
JPEG_SCAN = b"\xff\xda"
MOST_SCAN_PIXELS = 32 * MAX_IMAGE_PIXELS  # a 4K image in 32 scans, 8192 x 8192 in 3; under 1 s here
# A progressive JPEG (start-of-frame C2, C6, CA, CE), or a baseline one in several scans (one per
# component), keeps every DCT coefficient of the full image, 2 bytes per pixel and component,
# whatever scale it is decoded at: 300 bytes claiming 8192 x 8192 took 460 MB. Held to what a PNG at
# the compressed limit costs as BGR.
_JPEG_PROGRESSIVE = frozenset({0xC2, 0xC6, 0xCA, 0xCE})
MOST_COEFFICIENT_BYTES = 3 * MAX_COMPRESSED_PIXELS
# A PNG decodes every sample at full size before it is shrunk: 8192 x 8192 in 16-bit RGBA (half a
# MB of zeros) held the image callback for 2 s. Held to 8-bit RGB at the compressed limit.
MOST_PNG_SAMPLE_BYTES = 3 * MAX_COMPRESSED_PIXELS
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # by colour type: grey, RGB, palette, grey+alpha, RGBA
_JPEG_MAX_FILL = 1024  # fill bytes before a marker's code; real files have none or a few


class ImageError(ValueError):
    """An input image the pose stage cannot use (wrong type, dtype, shape or empty)."""


def to_rgb(image: Any) -> np.ndarray:
    """Check an OpenCV-style image and return it as contiguous RGB uint8 (H, W, 3).

    Accepted: BGR (H, W, 3), mono (H, W) or (H, W, 1) and BGRA (H, W, 4), all uint8 and non-empty.
    Anything else raises :class:`ImageError` naming the problem, because MediaPipe's own errors
    for bad input are opaque C++ messages or silent misdetections. A side longer than
    :data:`MAX_SIDE` is shrunk (aspect kept), since MediaPipe would abort the process on it.
    """
    return cv2.cvtColor(fit_pixels(_checked(image), 0), _TO_RGB[_channels(image)])


def camera_size(image: np.ndarray) -> tuple[int, int]:
    """(width, height) of an image as the camera gave it, before any shrinking for MediaPipe:
    the size a skeleton frame reports (landmarks are normalized, so shrinking does not move them).
    ImageError for what :func:`to_rgb` refuses."""
    check_image(image)
    return int(image.shape[1]), int(image.shape[0])


def to_bgr(image: Any) -> np.ndarray:
    """Like :func:`to_rgb` but returns BGR (H, W, 3); a 3-channel input is returned as a copy."""
    image = _checked(image)
    channels = _channels(image)
    return image.copy() if channels == 3 else cv2.cvtColor(image, _TO_BGR[channels])


def _channels(image: np.ndarray) -> int:
    return 1 if image.ndim == 2 else image.shape[2]


def _checked(image: Any) -> np.ndarray:
    """``image`` as a contiguous (H, W) or (H, W, 3 or 4) array; ImageError as :func:`check_image`."""
    check_image(image)
    return np.ascontiguousarray(image[:, :, 0] if image.ndim == 3 and image.shape[2] == 1 else image)


def check_image(image: Any) -> None:
    """Raise ImageError unless ``image`` is a non-empty uint8 array with 1, 3 or 4 channels."""
    if not isinstance(image, np.ndarray):
        raise ImageError(f"got {type(image).__name__}, {_EXPECTED}")
    if image.dtype != np.uint8:
        raise ImageError(f"got dtype {image.dtype}; {_EXPECTED} (scale to 0-255 and use astype(np.uint8))")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise ImageError(f"got shape {image.shape}; {_EXPECTED}")
    if image.size == 0:
        raise ImageError(f"got an empty image of shape {image.shape}; {_EXPECTED}")


def decode_image(
    height: int, width: int, encoding: str, step: int, data: Any, is_bigendian: int = 0, max_pixels: int = 0
) -> np.ndarray:
    """BGR uint8 (H, W, 3) from the fields of a ``sensor_msgs/Image``; ImageError if they are inconsistent.

    Above 4 × ``max_pixels`` (0: no limit) only every n-th row and column is read, so a huge
    image is never copied whole (the caller shrinks it to ``max_pixels`` after, as any image).
    """
    if encoding not in ENCODINGS:
        raise ImageError(f"unsupported image encoding {encoding!r}; use one of {sorted(ENCODINGS)}")
    channels, dtype, conversion = ENCODINGS[encoding]
    row_bytes = width * channels * np.dtype(dtype).itemsize
    if height <= 0 or width <= 0:
        raise ImageError(f"image has zero size ({width}x{height})")
    if step < row_bytes:
        raise ImageError(
            f"step {step} is shorter than a row of {width} {encoding} pixels ({row_bytes} bytes)"
        )
    buffer = np.frombuffer(data, np.uint8)
    if buffer.size < step * height:
        raise ImageError(
            f"image data is truncated: {buffer.size} bytes, {encoding} {width}x{height} needs {step * height}"
        )
    every = _read_every(width * height, max_pixels)
    rows = buffer[: step * height].reshape(height, step)[::every, :row_bytes]
    pixels = rows.view(np.dtype(dtype).newbyteorder(">" if is_bigendian else "<"))
    pixels = pixels.reshape(len(rows), width, channels)[:, ::every].copy()  # writable, not the message's
    if pixels.dtype.itemsize == 2:  # 16-bit mono: keep the top byte
        pixels = (pixels >> 8).astype(np.uint8)
    return pixels if conversion is None else cv2.cvtColor(pixels, conversion)


def _read_every(pixels: int, max_pixels: int) -> int:
    """Every how many rows and columns a raw image of ``pixels`` is read: 1 up to 4 × ``max_pixels``."""
    if max_pixels <= 0 or pixels <= 4 * max_pixels:
        return 1
    return math.ceil(math.sqrt(pixels / (4 * max_pixels)))


def decode_compressed(data: Any, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """BGR uint8 from the bytes of a ``sensor_msgs/CompressedImage`` (JPEG or PNG, the formats of
    image_transport's ``compressed``), at most ``max_pixels`` pixels and :data:`MAX_SIDE` a side."""
    return decode_compressed_sized(data, max_pixels)[0]


def decode_compressed_sized(data: Any, max_pixels: int = MAX_IMAGE_PIXELS) -> tuple[np.ndarray, bool]:
    """:func:`decode_compressed`, and whether the image was larger than the limits (so shrunk).

    A baseline JPEG larger than ``max_pixels`` decodes at 1/2, 1/4 or 1/8 scale, so a huge one in
    one scan never takes its full memory (a progressive or multi-scan one does:
    :func:`compressed_size` bounds it); one
    claiming more than :data:`MAX_COMPRESSED_PIXELS` is refused before decoding.
    """
    buffer = np.frombuffer(data, np.uint8)
    width, height = compressed_size(buffer)
    flag = _decode_flag(width * height, max_pixels)
    try:  # EXIF rotation ignored: the pixels must match the header's size, which the message reports
        image = cv2.imdecode(buffer, flag | cv2.IMREAD_IGNORE_ORIENTATION)
    except cv2.error as err:  # e.g. a PNG of under 8 px a side in some OpenCV builds
        raise ImageError(
            f"compressed image ({buffer.size} bytes) could not be decoded: {_opencv_reason(err)}"
        ) from None
    if image is None:
        raise ImageError(f"compressed image data ({buffer.size} bytes) could not be decoded")
    fitted = fit_pixels(image, max_pixels)
    return fitted, fitted is not image or flag != cv2.IMREAD_COLOR


def camera_message_size(msg: Any) -> tuple[int, int]:
    """(width, height) of a ``sensor_msgs/Image`` or ``CompressedImage`` as the camera sent it,
    before any shrinking (a compressed image's from its header)."""
    if hasattr(msg, "format"):  # CompressedImage
        return compressed_size(np.frombuffer(msg.data, np.uint8))
    return int(msg.width), int(msg.height)


def compressed_size(buffer: np.ndarray) -> tuple[int, int]:
    """(width, height) that a JPEG or PNG declares, read from its header without decoding it;
    ImageError if it claims more than :data:`MAX_COMPRESSED_PIXELS`."""
    head, frame, scans = buffer[:24].tobytes(), 0, 1
    if head.startswith(PNG_SIGNATURE):
        size, kind = _png_size(memoryview(buffer)), "PNG"
    elif head.startswith(JPEG_SIGNATURE):
        width, height, frame = _jpeg_size(buffer)
        size, kind, scans = (width, height), "JPEG", _scan_count(buffer[frame:])
    else:
        raise ImageError(
            f"compressed image data ({buffer.size} bytes) is neither JPEG nor PNG; publish image_transport's "
            "compressed format (jpeg or png)"
        )
    if size[0] * size[1] > MAX_COMPRESSED_PIXELS:
        raise ImageError(
            f"a {kind} of {size[0]}x{size[1]} pixels is too large to decode (at most {MAX_COMPRESSED_PIXELS})"
        )
    if kind == "JPEG":
        _check_coefficients(buffer, frame, size[0] * size[1], scans)
    else:
        _check_png_samples(buffer, size[0] * size[1])
    if scans * size[0] * size[1] > MOST_SCAN_PIXELS:
        raise ImageError(
            f"a JPEG of {size[0]}x{size[1]} pixels in {scans} scans would take seconds to decode (each "
            f"scan goes over every pixel, and pixels times scans may be at most {MOST_SCAN_PIXELS}); "
            "send baseline JPEGs (one scan), as cameras do"
        )
    return size


def _png_size(data: memoryview) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR; ImageError unless every chunk lies within the data (a
    chunk claiming gigabytes makes the decoder allocate them before it finds the data short)."""
    at, chunks = len(PNG_SIGNATURE), 0
    while at < len(data):
        length = int.from_bytes(data[at : at + 4], "big")
        kind = bytes(data[at + 4 : at + 8])
        if at + 12 + length > len(data) or chunks >= _PNG_MAX_CHUNKS:
            raise ImageError(f"PNG data ({len(data)} bytes) has a chunk beyond its end, or too many chunks")
        if chunks == 0 and (kind != b"IHDR" or length != 13):
            raise ImageError(f"PNG data ({len(data)} bytes) does not start with its header chunk (IHDR)")
        at, chunks = at + 12 + length, chunks + 1
        if kind == b"IEND":
            break
    if chunks == 0:
        raise ImageError(f"PNG data ({len(data)} bytes) has no header chunk (IHDR)")
    ihdr = len(PNG_SIGNATURE) + 8
    return int.from_bytes(data[ihdr : ihdr + 4], "big"), int.from_bytes(data[ihdr + 4 : ihdr + 8], "big")


def _check_png_samples(buffer: np.ndarray, pixels: int) -> None:
    """ImageError for a PNG whose decoded samples exceed :data:`MOST_PNG_SAMPLE_BYTES`."""
    ihdr = len(PNG_SIGNATURE) + 8
    depth, colour = int(buffer[ihdr + 8]), int(buffer[ihdr + 9])
    channels = _PNG_CHANNELS.get(colour, 4)
    needed = pixels * channels * max(depth, 8) // 8
    if needed > MOST_PNG_SAMPLE_BYTES:
        raise ImageError(
            f"a PNG of {pixels} pixels in {channels} channels of {depth} bits decodes to {needed >> 20} MB "
            f"(at most {MOST_PNG_SAMPLE_BYTES >> 20} MB); send 8-bit RGB or mono PNGs, or smaller ones"
        )


def _scan_count(data: np.ndarray) -> int:
    """Start-of-scan markers in JPEG data after its frame header (a thumbnail before it has its own)."""
    return int(np.count_nonzero((data[:-1] == JPEG_SCAN[0]) & (data[1:] == JPEG_SCAN[1])))


def _check_coefficients(buffer: np.ndarray, frame: int, pixels: int, scans: int) -> None:
    """ImageError for a progressive or multi-scan JPEG whose full-size coefficients exceed
    :data:`MOST_COEFFICIENT_BYTES` (``frame``: where its start-of-frame marker code is)."""
    components = int(buffer[frame + 8]) if frame + 8 < buffer.size else 3
    needed = 2 * pixels * components
    progressive = buffer[frame] in _JPEG_PROGRESSIVE
    if (progressive or scans > 1) and needed > MOST_COEFFICIENT_BYTES:
        kind = "progressive JPEG" if progressive else f"JPEG in {scans} scans"
        raise ImageError(
            f"a {kind} of {pixels} pixels in {components} components needs {needed >> 20} MB "
            f"to decode at any scale (at most {MOST_COEFFICIENT_BYTES >> 20} MB); send baseline JPEGs "
            "in one scan, as cameras do"
        )


def _jpeg_size(data: np.ndarray) -> tuple[int, int, int]:
    """(width, height, where the frame header's marker code is) from a JPEG's start-of-frame
    segment; ImageError if there is none."""
    at = 2
    for _ in range(_JPEG_MAX_SEGMENTS):
        if at >= len(data) or data[at] != 0xFF:  # each segment starts with a marker
            break
        codes = np.flatnonzero(data[at : at + _JPEG_MAX_FILL + 1] != 0xFF)  # fill bytes before the code
        if not len(codes):  # a run of fill bytes, megabytes of them, walked one by one took seconds
            break
        at += int(codes[0])
        if at + 3 > len(data):
            break
        marker, length = data[at], int.from_bytes(data[at + 1 : at + 3], "big")
        if marker in _JPEG_SOF and at + 8 <= len(data):
            width, height = (
                int.from_bytes(data[at + 6 : at + 8], "big"),
                int.from_bytes(data[at + 4 : at + 6], "big"),
            )
            return width, height, at
        if marker in _JPEG_PARAMETERLESS:  # read as the decoder reads it, or a header hides behind
            at += 1
            continue
        if marker == 0xDA or marker in _JPEG_NOT_BEFORE_FRAME or length < 2:  # image data first, or broken
            break
        at += 1 + length
    raise ImageError(f"JPEG data ({len(data)} bytes) has no readable frame header (width and height)")


def _opencv_reason(err: Exception) -> str:
    """What an OpenCV error says went wrong: its last line (the lines before it name OpenCV's
    source file and function), at most 160 characters; the error's type when it says nothing."""
    return str(err).strip().splitlines()[-1][:160] if str(err).strip() else type(err).__name__


_REDUCED = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}


def _decode_flag(full: int, max_pixels: int) -> int:
    """The imdecode flag that keeps a decode of ``full`` pixels within about ``max_pixels`` (the
    reduced flags shrink JPEG while decoding; other formats decode at full size and are shrunk after)."""
    for factor in (1, 2, 4):
        if max_pixels <= 0 or full / factor**2 <= max_pixels:
            return cv2.IMREAD_COLOR if factor == 1 else _REDUCED[factor]
    return _REDUCED[8]


def fit_pixels(image: np.ndarray, max_pixels: int) -> np.ndarray:
    """``image`` shrunk (aspect kept) to at most ``max_pixels`` pixels (0: no pixel limit) and at
    most :data:`MAX_SIDE` a side; the same array if it fits."""
    height, width = image.shape[:2]
    scale = min(1.0, MAX_SIDE / max(height, width))
    if max_pixels > 0:
        scale = min(scale, (max_pixels / (height * width)) ** 0.5)
    if scale >= 1.0:
        return image
    new_width, new_height = max(1, int(width * scale)), max(1, int(height * scale))
    # the short side rounded down must not make a camera's 100:1 frame "no camera image"; the long
    # side then gives back the pixels the short one gained
    long, short = max(new_width, new_height), min(new_width, new_height)
    short = max(short, math.ceil(long / MAX_ASPECT))
    if max_pixels > 0:
        long = max(1, min(long, max_pixels // short))
    size = (long, short) if new_width >= new_height else (short, long)
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
