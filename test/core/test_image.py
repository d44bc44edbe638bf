"""Decoding ROS image fields without cv_bridge: encodings, padding and bad input."""

import cv2
import numpy as np
import pytest

from bharnet_ros.core.image import (
    MAX_SIDE,
    ImageError,
    camera_message_size,
    compressed_size,
    decode_compressed,
    decode_image,
    fit_pixels,
    to_rgb,
)


def bgr_image() -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.integers(0, 255, (6, 5, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    ("encoding", "convert"),
    [
        ("bgr8", None),
        ("rgb8", cv2.COLOR_BGR2RGB),
        ("bgra8", cv2.COLOR_BGR2BGRA),
        ("rgba8", cv2.COLOR_BGR2RGBA),
    ],
)
def test_colour_encodings_come_back_as_bgr(encoding, convert):
    bgr = bgr_image()
    raw = bgr if convert is None else cv2.cvtColor(bgr, convert)
    decoded = decode_image(6, 5, encoding, raw.shape[1] * raw.shape[2], raw.tobytes())
    np.testing.assert_array_equal(decoded, bgr)


def test_mono_encodings_and_row_padding():
    gray = bgr_image()[:, :, 0]
    padded = np.zeros((6, 8), np.uint8)  # step 8 > width 5: drivers pad rows
    padded[:, :5] = gray
    decoded = decode_image(6, 5, "mono8", 8, padded.tobytes())
    np.testing.assert_array_equal(decoded[:, :, 2], gray)
    deep = (gray.astype(np.uint16) << 8).astype(">u2")
    decoded16 = decode_image(6, 5, "mono16", 10, deep.tobytes(), is_bigendian=1)
    np.testing.assert_array_equal(decoded16[:, :, 0], gray)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((6, 5, "yuv422", 10, b"\0" * 60), "unsupported image encoding"),
        ((0, 5, "bgr8", 15, b""), "zero size"),
        ((6, 5, "bgr8", 12, b"\0" * 90), "shorter than a row"),
        ((6, 5, "bgr8", 15, b"\0" * 50), "truncated"),
    ],
)
def test_inconsistent_fields_raise_a_clear_error(args, message):
    with pytest.raises(ImageError, match=message):
        decode_image(*args)


def test_compressed_round_trip_and_garbage():
    ok, png = cv2.imencode(".png", bgr_image())
    assert ok
    np.testing.assert_array_equal(decode_compressed(png.tobytes()), bgr_image())
    with pytest.raises(ImageError, match="neither JPEG nor PNG"):
        decode_compressed(b"not an image")
    with pytest.raises(ImageError, match="0 bytes"):
        decode_compressed(b"")


def test_a_huge_jpeg_is_decoded_small_and_fitted():
    big = np.zeros((3000, 4000, 3), np.uint8)
    cv2.rectangle(big, (1000, 1000), (3000, 2000), (255, 255, 255), -1)
    ok, jpeg = cv2.imencode(".jpg", big)
    assert ok
    image = decode_compressed(jpeg.tobytes(), max_pixels=640 * 480)
    assert image.shape[0] * image.shape[1] <= 640 * 480
    assert abs(image.shape[1] / image.shape[0] - 4 / 3) < 0.02  # aspect kept
    assert decode_compressed(jpeg.tobytes(), max_pixels=0).shape == (3000, 4000, 3)  # no limit: full size


def png_header(width: int, height: int, depth: int = 8, colour: int = 2) -> bytes:
    """The first bytes of a PNG declaring ``width`` x ``height`` (what a decompression bomb sends),
    in samples of ``depth`` bits of PNG colour type ``colour`` (2: RGB)."""
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([depth, colour, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + len(ihdr).to_bytes(4, "big") + b"IHDR" + ihdr + b"\0" * 64


def test_a_png_claiming_too_many_pixels_is_refused_unread():
    with pytest.raises(ImageError, match="40000x40000 pixels is too large"):
        decode_compressed(png_header(40000, 40000))


def test_a_png_decoding_to_more_samples_than_8_bit_rgb_at_the_limit_is_refused_unread():
    """Half a MB of 16-bit RGBA zeros claiming 8192 x 8192 held the image callback for 2 s."""
    with pytest.raises(ImageError, match="in 4 channels of 16 bits decodes to 512 MB"):
        decode_compressed(png_header(8192, 8192, 16, 6))
    for depth, colour in [(8, 2), (16, 0), (8, 3), (1, 0)]:
        assert compressed_size(np.frombuffer(png_header(8192, 8192, depth, colour), np.uint8)) == (8192, 8192)


@pytest.mark.parametrize("chunk", ["IHDR", "IDAT"])
def test_a_png_chunk_claiming_gigabytes_is_refused_before_decoding(chunk):
    """OpenCV allocated the claimed 4 GB before it found the data short."""
    ok, png = cv2.imencode(".png", bgr_image())
    data = bytearray(png.tobytes())
    at = data.find(chunk.encode()) - 4
    data[at : at + 4] = (0xFFFFFFF0).to_bytes(4, "big")
    with pytest.raises(ImageError, match="has a chunk beyond its end"):
        decode_compressed(bytes(data))
    with pytest.raises(ImageError, match="has a chunk beyond its end"):
        decode_compressed(png.tobytes()[:40])  # cut inside its first data chunk


@pytest.mark.parametrize(("height", "width"), [(4, 4), (1, 1), (2, 40000)])
def test_tiny_and_extreme_pngs_decode_or_fail_as_image_errors(height, width):
    ok, png = cv2.imencode(".png", np.full((height, width, 3), 128, np.uint8))
    assert ok
    try:
        image = decode_compressed(png.tobytes())
    except ImageError:
        return
    assert max(image.shape[:2]) <= MAX_SIDE


def test_other_compressed_formats_are_refused():
    ok, bmp = cv2.imencode(".bmp", bgr_image())
    assert ok
    with pytest.raises(ImageError, match="neither JPEG nor PNG"):
        decode_compressed(bmp.tobytes())


def test_a_side_longer_than_mediapipe_takes_is_shrunk():
    """MediaPipe aborts the process on a side of 32767 px; every image reaching it is shorter."""
    long = np.zeros((1, 32767, 3), np.uint8)
    assert max(to_rgb(long).shape[:2]) <= MAX_SIDE
    assert fit_pixels(np.zeros((40000, 8, 3), np.uint8), 0).shape[0] == MAX_SIDE


def test_a_shrunk_camera_image_stays_a_camera_image():
    """10000 x 100 (a line camera, as the contract allows) became 8192 x 81: refused as no camera image."""
    from bharnet_ros.core.skeleton import checked_image_size

    for shape, most in (((100, 10000), 8192 * 81), ((10000, 100), 8192 * 81), ((10, 1000), 5000)):
        shrunk = fit_pixels(np.zeros(shape, np.uint8), most)
        checked_image_size((shrunk.shape[1], shrunk.shape[0]))
        assert shrunk.size <= most  # the long side gives back what the short one gained


def test_fit_pixels_leaves_small_images_alone():
    small = np.zeros((48, 64, 3), np.uint8)
    assert fit_pixels(small, 64 * 48) is small
    assert fit_pixels(small, 0) is small
    assert fit_pixels(small, 16 * 12).shape == (12, 16, 3)


def jpeg_claiming(width: int, height: int) -> bytes:
    """A real JPEG whose frame header is rewritten to declare ``width`` x ``height``."""
    ok, jpeg = cv2.imencode(".jpg", bgr_image())
    data = bytearray(jpeg.tobytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


def test_a_jpeg_header_claiming_too_many_pixels_is_refused_unread():
    assert compressed_size(np.frombuffer(jpeg_claiming(640, 480), np.uint8)) == (640, 480)
    with pytest.raises(ImageError, match="JPEG of 65000x65000 pixels is too large"):
        decode_compressed(jpeg_claiming(65000, 65000))


def test_a_jpeg_of_many_scans_is_refused_before_decoding_and_a_progressive_one_decodes():
    ok, progressive = cv2.imencode(".jpg", bgr_image(), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    assert progressive.tobytes().count(b"\xff\xda") > 1
    assert decode_compressed(progressive.tobytes()).shape == bgr_image().shape
    scans = jpeg_claiming(4096, 4096)[:-2] + b"\xff\xda\x00\x08" * 20 + b"\xff\xd9"  # scans repeated
    with pytest.raises(ImageError, match="JPEG of 4096x4096 pixels in 21 scans would take seconds"):
        decode_compressed(scans)


def test_a_progressive_jpeg_claiming_a_huge_frame_is_refused_before_decoding():
    """Its coefficients are kept at full size whatever the decode scale: 300 bytes claiming
    8192 x 8192 took 460 MB. A baseline one of that size decodes at 1/4 scale."""
    ok, progressive = cv2.imencode(".jpg", bgr_image(), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    data = bytearray(progressive.tobytes())
    sof = data.index(b"\xff\xc2")
    data[sof + 5 : sof + 9] = (8192).to_bytes(2, "big") * 2
    with pytest.raises(
        ImageError, match="a progressive JPEG of 67108864 pixels in 3 components needs 384 MB"
    ):
        decode_compressed(bytes(data))
    assert compressed_size(np.frombuffer(jpeg_claiming(8192, 8192), np.uint8)) == (8192, 8192)


def test_a_baseline_jpeg_in_several_scans_claiming_a_huge_frame_is_refused_before_decoding():
    """A baseline JPEG with one scan per component keeps its coefficients at full size too: 200
    bytes claiming 8192 x 8192 in 3 scans took 460 MB. In one scan it decodes at 1/4 scale."""
    scans = jpeg_claiming(8192, 8192)[:-2] + b"\xff\xda\x00\x08" * 2 + b"\xff\xd9"
    with pytest.raises(ImageError, match="a JPEG in 3 scans of 67108864 pixels in 3 components needs 384 MB"):
        decode_compressed(scans)
    small = jpeg_claiming(64, 48)[:-2] + b"\xff\xda\x00\x08" * 2 + b"\xff\xd9"
    assert compressed_size(np.frombuffer(small, np.uint8)) == (64, 48)


def test_a_run_of_fill_bytes_is_read_only_as_far_as_a_jpeg_has_them():
    """Walked byte by byte in Python, 50 MB of 0xFF held the image callback for 4 s: the reader
    now looks for the marker's code within the few fill bytes a real file may have."""
    valid = jpeg_claiming(64, 48)[3:]  # after the first marker's 0xFF
    padded = b"\xff\xd8" + b"\xff" * 10 + valid
    assert compressed_size(np.frombuffer(padded, np.uint8)) == (64, 48)
    flooded = b"\xff\xd8" + b"\xff" * 5000 + valid
    with pytest.raises(ImageError, match="no readable frame header"):
        decode_compressed(flooded)


def jpeg_hiding(width: int, height: int, length_after_rst: bool) -> bytes:
    """A real 64x48 JPEG preceded by a copy of its segments claiming ``width`` x ``height``, after
    an RST marker (which has no length). With ``length_after_rst``, two bytes after the marker give
    the copy's length: a reader that takes them as the marker's length skips the copy and sees the
    small frame, while the decoder steps over them and decodes the copy's huge one."""
    copy = jpeg_claiming(width, height)[2:-2]
    gap = (2 + len(copy)).to_bytes(2, "big") if length_after_rst else b""
    return b"\xff\xd8\xff\xd0" + gap + copy + jpeg_claiming(64, 48)[2:]


@pytest.mark.parametrize("length_after_rst", [False, True])
def test_a_frame_header_hidden_behind_a_marker_without_length_is_not_missed(length_after_rst):
    message = "no readable frame header" if length_after_rst else "JPEG of 16000x16000 pixels is too large"
    with pytest.raises(ImageError, match=message):
        decode_compressed(jpeg_hiding(16000, 16000, length_after_rst))
    hidden = np.frombuffer(jpeg_hiding(640, 480, length_after_rst=False), np.uint8)
    assert compressed_size(hidden) == (640, 480)  # read as the decoder reads it


@pytest.mark.parametrize(
    "data", [b"\xff\xd8", b"\xff\xd8\xff\xda\x00\x08", b"\xff\xd8\x00\x00\x00", b"\xff\xd8\xff\xe0\x00"]
)
def test_a_jpeg_without_a_frame_header_is_an_image_error(data):
    with pytest.raises(ImageError, match="no readable frame header"):
        decode_compressed(data)


def test_a_camera_message_size_is_the_size_sent_before_any_shrinking():
    from types import SimpleNamespace

    ok, jpeg = cv2.imencode(".jpg", np.zeros((48, 64, 3), np.uint8))
    assert ok
    compressed = SimpleNamespace(format="jpeg", data=jpeg.tobytes())
    assert camera_message_size(compressed) == (64, 48)  # from the header, before a reduced decode
    raw = SimpleNamespace(width=640, height=480, encoding="bgr8", data=b"")
    assert camera_message_size(raw) == (640, 480)


def with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    """``jpeg`` with an EXIF segment whose Orientation tag rotates it, as phone cameras write."""
    tiff = b"MM\x00*\x00\x00\x00\x08" + b"\x00\x01" + b"\x01\x12\x00\x03\x00\x00\x00\x01"
    tiff += orientation.to_bytes(2, "big") + b"\x00\x00" + b"\x00\x00\x00\x00"
    body = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + (len(body) + 2).to_bytes(2, "big") + body + jpeg[2:]


@pytest.mark.parametrize("max_pixels", [0, 800])
def test_a_jpeg_s_exif_rotation_is_ignored_so_the_pixels_match_the_size_it_reports(max_pixels):
    """OpenCV turned a JPEG tagged Orientation 6 upright while its size came from the header: x and
    y divided by swapped sides (camera images carry no orientation)."""
    from types import SimpleNamespace

    ok, jpeg = cv2.imencode(".jpg", np.zeros((20, 40, 3), np.uint8))
    rotated = with_exif_orientation(jpeg.tobytes(), 6)
    image = decode_compressed(rotated, max_pixels=max_pixels)
    width, height = camera_message_size(SimpleNamespace(format="jpeg", data=rotated))
    assert (width, height) == (40, 20)
    assert image.shape[1] / image.shape[0] == width / height


@pytest.mark.parametrize(("encoding", "itemsize"), [("mono8", 1), ("mono16", 2), ("bgr8", 1)])
def test_a_huge_raw_image_is_read_sparsely_not_copied_whole(encoding, itemsize):
    """A 16k x 16k mono8 message became 1 GB of copies before it was shrunk: above 4 x max_pixels
    only every n-th row and column is read (rows padded, as a step allows)."""
    channels = 3 if encoding == "bgr8" else 1
    height, width, pad = 300, 400, 7
    step = width * channels * itemsize + pad
    values = np.arange(height * step, dtype=np.uint64) % 251
    data = values.astype(np.uint8).tobytes()
    whole = decode_image(height, width, encoding, step, data, is_bigendian=1)
    sparse = decode_image(height, width, encoding, step, data, is_bigendian=1, max_pixels=100 * 75)
    assert sparse.shape == (150, 200, 3)  # every 2nd row and column: 120000 > 4 x 7500
    np.testing.assert_array_equal(sparse, whole[::2, ::2])
    assert sparse.flags.writeable
    assert decode_image(height, width, encoding, step, data, max_pixels=400 * 75).shape == (300, 400, 3)
