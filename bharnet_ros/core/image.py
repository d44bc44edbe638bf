"""Images as the pose stage needs them: checked OpenCV arrays, and decoding of ROS image fields.

Decoding works on the plain fields of ``sensor_msgs/Image`` and ``CompressedImage`` (height,
width, encoding, step, data), so nodes, bag readers and tests share it without cv_bridge.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

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


class ImageError(ValueError):
    """An input image the pose stage cannot use (wrong type, dtype, shape or empty)."""


def to_rgb(image: Any) -> np.ndarray:
    """Check an OpenCV-style image and return it as contiguous RGB uint8 (H, W, 3).

    Accepted: BGR (H, W, 3), mono (H, W) or (H, W, 1) and BGRA (H, W, 4), all uint8 and non-empty.
    Anything else raises :class:`ImageError` naming the problem, because MediaPipe's own errors
    for bad input are opaque C++ messages or silent misdetections.
    """
    return cv2.cvtColor(_checked(image), _TO_RGB[_channels(image)])


def to_bgr(image: Any) -> np.ndarray:
    """Like :func:`to_rgb` but returns BGR (H, W, 3); a 3-channel input is returned as a copy."""
    image = _checked(image)
    channels = _channels(image)
    return image.copy() if channels == 3 else cv2.cvtColor(image, _TO_BGR[channels])


def _channels(image: np.ndarray) -> int:
    return 1 if image.ndim == 2 else image.shape[2]


def _checked(image: Any) -> np.ndarray:
    """Raise ImageError unless ``image`` is a non-empty uint8 array with 1, 3 or 4 channels."""
    if not isinstance(image, np.ndarray):
        raise ImageError(f"got {type(image).__name__}, {_EXPECTED}")
    if image.dtype != np.uint8:
        raise ImageError(f"got dtype {image.dtype}; {_EXPECTED} (scale to 0-255 and use astype(np.uint8))")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise ImageError(f"got shape {image.shape}; {_EXPECTED}")
    if image.size == 0:
        raise ImageError(f"got an empty image of shape {image.shape}; {_EXPECTED}")
    return np.ascontiguousarray(image[:, :, 0] if image.ndim == 3 and image.shape[2] == 1 else image)


def decode_image(
    height: int, width: int, encoding: str, step: int, data: Any, is_bigendian: int = 0
) -> np.ndarray:
    """BGR uint8 (H, W, 3) from the fields of a ``sensor_msgs/Image``; ImageError if they are inconsistent."""
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
    rows = buffer[: step * height].reshape(height, step)[:, :row_bytes]
    pixels = rows.copy().view(np.dtype(dtype).newbyteorder(">" if is_bigendian else "<"))
    pixels = pixels.reshape(height, width, channels)
    if pixels.dtype.itemsize == 2:  # 16-bit mono: keep the top byte
        pixels = (pixels >> 8).astype(np.uint8)
    return pixels if conversion is None else cv2.cvtColor(pixels, conversion)


def decode_compressed(data: Any, max_pixels: int = 0) -> np.ndarray:
    """BGR uint8 from the bytes of a ``sensor_msgs/CompressedImage`` (JPEG, PNG, ...).

    With ``max_pixels``, an image larger than that is decoded at 1/2, 1/4 or 1/8 scale (JPEG
    decodes straight to the smaller size, so a huge image never takes its full memory), then
    shrunk to fit.
    """
    buffer = np.frombuffer(data, np.uint8)
    image = cv2.imdecode(buffer, _decode_flag(buffer, max_pixels)) if buffer.size else None
    if image is None:
        raise ImageError(f"compressed image data ({buffer.size} bytes) could not be decoded")
    return fit_pixels(image, max_pixels)


_REDUCED = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}


def _decode_flag(buffer: np.ndarray, max_pixels: int) -> int:
    """The imdecode flag that keeps a decode within about ``max_pixels`` (a peek at 1/8 scale first)."""
    if max_pixels <= 0 or not buffer.size:
        return cv2.IMREAD_COLOR
    peek = cv2.imdecode(buffer, cv2.IMREAD_REDUCED_COLOR_8)
    if peek is None:
        return cv2.IMREAD_COLOR
    full = peek.shape[0] * peek.shape[1] * 64
    for factor in (1, 2, 4):
        if full / factor**2 <= max_pixels:
            return cv2.IMREAD_COLOR if factor == 1 else _REDUCED[factor]
    return _REDUCED[8]


def fit_pixels(image: np.ndarray, max_pixels: int) -> np.ndarray:
    """``image`` shrunk (aspect kept) to at most ``max_pixels`` pixels; unchanged if it fits or 0."""
    pixels = image.shape[0] * image.shape[1]
    if max_pixels <= 0 or pixels <= max_pixels:
        return image
    scale = (max_pixels / pixels) ** 0.5
    size = (max(1, int(image.shape[1] * scale)), max(1, int(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
